/* The fast paths of the federated client and the wire checksum against naive references:
 *   - a client's fit (compact rows numbered by first use, dense optimizer step over the
 *     used prefix only) gives the bits of a full-catalogue one-user model trained with
 *     the plain dense step (PyTorch's Adam over every parameter) on the same examples;
 *   - fr_crc32c (hardware path where available) equals a bitwise CRC-32C. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "fedrec/fl.h"
#include "fl/fl_internal.h"
#include "model/examples.h"
#include "testutil.h"

static fr_dataset *synthetic(void) {
    fr_gen_opts go;
    fr_gen_opts_default(&go);
    go.users = 30;
    go.items = 120;
    go.interactions = 900;
    go.seed = 5;
    fr_dataset *d = NULL;
    cr_assert_eq(fr_dataset_generate(&d, &go), FR_OK);
    return d;
}

/* Fits client c once (in round `round`) and checks the update and private rows against
 * the reference. item_lr > 0: item rows use their own plain SGD at item_lr * decay^(round-1),
 * the rest Adam; the reference then steps Adam over the model with the item gradients
 * zeroed (their rows stay put) and moves item rows by hand.
 * Returns how many item rows moved in the reference. */
/* `coast` false: the client's dense steps (cfg.dense_steps), which must give the bits of
 * the reference; true: the default coasting steps, which must give its floats up to the
 * series' and float rounding (relative 1e-5 of the largest Δ of the tensor, and 1e-4 of
 * the element's own Δ: errors of 1e-5 per coast compound over the steps). */
static double worst_rel; /* the largest error seen, in units of the tolerance */

static bool close_enough(float want, float got, float scale, bool coast) {
    if (!coast) return memcmp(&want, &got, 4) == 0;
    double tol = 1e-5 * scale + 1e-4 * fabs((double)want) + 1e-12;
    double r = fabs((double)want - got) / tol;
    if (r > worst_rel) worst_rel = r;
    return r <= 1.0;
}

static float max_abs_delta(const float *a, const float *b, size_t n) {
    float mx = 0;
    for (size_t i = 0; i < n; i++) mx = fmaxf(mx, fabsf(a[i] - b[i]));
    return mx;
}

static size_t check_client_run(fr_model_kind kind, float wd, uint32_t E, uint32_t c, uint32_t round, float item_lr,
                               float decay, float mu, bool coast) {
    fr_dataset *d = synthetic();
    fr_model_config mc;
    fr_model_config_default(&mc, kind);
    mc.n_users = fr_dataset_n_users(d);
    mc.n_items = fr_dataset_n_items(d);
    mc.seed = 3;
    fr_fl_config cfg;
    fr_fl_config_default(&cfg, kind);
    cfg.seed = 17;
    cfg.local_epochs = E;
    cfg.batch = 8;
    fr_optim_config_default(&cfg.local, FR_OPTIM_ADAM);
    cfg.local.lr = 0.01f;
    cfg.local.weight_decay = wd;
    cfg.dense_steps = !coast;
    if (mu > 0) {
        cfg.strategy = FR_STRATEGY_FEDPROX;
        cfg.mu = mu;
    }
    if (item_lr > 0) {
        fr_optim_config_default(&cfg.item_local, FR_OPTIM_SGD);
        cfg.item_local.lr = item_lr;
        cfg.item_lr_decay = decay;
    }
    fr_model *global = NULL;
    cr_assert_eq(fr_model_create(&global, &mc), FR_OK);

    /* the client under test */
    const uint32_t *items;
    const float *ratings;
    size_t n = fr_dataset_user(d, c, &items, &ratings, NULL);
    cr_assert(n > 3);
    fr_client_data cd = {c, items, ratings, n, mc.n_items, 0, NULL};
    float prow[FR_MODEL_MAX_TENSORS][64];
    float *priv[FR_MODEL_MAX_TENSORS];
    int nu = 0;
    const float *gw = fr_model_params_const(global);
    for (int t = 0; t < fr_model_n_tensors(global); t++) {
        const fr_tensor *tt = fr_model_tensor(global, t);
        if (tt->kind != FR_TENSOR_USER_TABLE) continue;
        cr_assert(tt->cols <= 64);
        memcpy(prow[nu], gw + tt->offset + (size_t)c * tt->cols, tt->cols * sizeof(float));
        priv[nu] = prow[nu];
        nu++;
    }
    fr_client_ws *ws = NULL;
    fr_update *up = NULL;
    fr_client_report rep;
    cr_assert_eq(fr_client_ws_create(&ws, &mc, &cfg), FR_OK);
    cr_assert_eq(fr_update_create(&up), FR_OK);
    cr_assert_eq(fr_client_fit(ws, round, c, &cd, global, &(fr_client_private){priv, NULL, NULL, NULL}, up, &rep), FR_OK, "%s", fr_errmsg());

    /* the reference: one user, the whole catalogue, the plain dense step */
    fr_model_config rc = mc;
    rc.n_users = 1;
    fr_model *r = NULL;
    fr_grad *g = NULL;
    fr_optim *o = NULL;
    fr_model_ws *mws = NULL;
    cr_assert_eq(fr_model_create(&r, &rc), FR_OK);
    fr_model_set_shared(r, gw);
    float *rw = fr_model_params(r);
    /* the client moved prow: the reference starts from the global's rows */
    for (int t = 0; t < fr_model_n_tensors(r); t++) {
        const fr_tensor *tt = fr_model_tensor(r, t), *gt = fr_model_tensor(global, t);
        if (tt->kind == FR_TENSOR_USER_TABLE)
            memcpy(rw + tt->offset, gw + gt->offset + (size_t)c * tt->cols, tt->cols * sizeof(float));
    }
    fr_optim_config oc = cfg.local;
    oc.sparse_rows = false;
    cr_assert_eq(fr_grad_create(&g, r), FR_OK);
    cr_assert_eq(fr_optim_create(&o, r, &oc), FR_OK);
    cr_assert_eq(fr_model_ws_create(&mws, r, cfg.batch), FR_OK);
    fri_examples ex = {0};
    fr_rng rneg, rshuf;
    fr_rng_init(&rneg, cfg.seed, round, c, FR_PURPOSE_NEGATIVES);
    fr_rng_init(&rshuf, cfg.seed, round, c, FR_PURPOSE_SHUFFLE);
    double loss = 0;
    size_t total = 0;
    float ilr = (float)((double)item_lr * pow((double)decay, (double)(round - 1)));
    float *saved = calloc(fr_model_n_params(r), sizeof *saved);
    cr_assert(saved);
    for (uint32_t ep = 0; ep < E; ep++) {
        fri_examples_clear(&ex);
        cr_assert_eq(fri_examples_add_user(&ex, d, c, 0, mc.loss, cfg.negatives, &rneg), FR_OK);
        fri_examples_shuffle(&ex, &rshuf);
        total += ex.n;
        if (item_lr <= 0 && mu <= 0) {
            cr_assert_eq(fri_examples_fit(&ex, cfg.batch, r, mws, g, o, &loss), FR_OK);
            continue;
        }
        for (size_t s0 = 0; s0 < ex.n; s0 += cfg.batch) {
            size_t nb = ex.n - s0 < cfg.batch ? ex.n - s0 : cfg.batch;
            fr_batch b = {ex.user + s0, ex.item + s0, ex.label + s0, NULL, nb, NULL};
            double l = 0;
            memset(fr_grad_data(g), 0, fr_model_n_params(r) * sizeof(float)); /* the prox term writes every row */
            fr_grad_zero(g);
            cr_assert_eq(fr_model_loss_grad(r, mws, &b, g, &l), FR_OK);
            loss += l * (double)nb;
            float *gg = fr_grad_data(g);
            if (mu > 0) /* FedProx: mu * (w - w_t) on every shared parameter */
                for (size_t i = 0; i < fr_model_n_shared(r); i++) gg[i] += mu * (rw[i] - gw[i]);
            if (item_lr <= 0) {
                cr_assert_eq(fr_optim_step(o, r, g), FR_OK);
                continue;
            }
            for (int t = 0; t < fr_model_n_tensors(r); t++) {
                const fr_tensor *tt = fr_model_tensor(r, t);
                if (tt->kind != FR_TENSOR_ITEM_TABLE) continue;
                size_t len = (size_t)tt->rows * tt->cols;
                memcpy(saved + tt->offset, gg + tt->offset, len * sizeof *gg);
                memset(gg + tt->offset, 0, len * sizeof *gg);
            }
            cr_assert_eq(fr_optim_step(o, r, g), FR_OK);
            for (int t = 0; t < fr_model_n_tensors(r); t++) {
                const fr_tensor *tt = fr_model_tensor(r, t);
                if (tt->kind != FR_TENSOR_ITEM_TABLE) continue;
                for (size_t i = 0; i < (size_t)tt->rows * tt->cols; i++)
                    rw[tt->offset + i] -= ilr * saved[tt->offset + i];
            }
        }
    }
    free(saved);
    cr_assert_eq(rep.examples, total);
    cr_assert(fabs(rep.loss_sum - loss) <= (coast ? 1e-5 : 1e-9) * fabs(loss), "loss %.17g vs %.17g", rep.loss_sum,
              loss);

    /* dense Δ and the rows sent: same bits; rows not sent: the reference left them alone
     * (no weight decay) */
    size_t dpos = 0, moved = 0;
    uint32_t tb = 0;
    nu = 0;
    for (int t = 0; t < fr_model_n_tensors(r); t++) {
        const fr_tensor *tt = fr_model_tensor(r, t);
        float scale = max_abs_delta(rw + tt->offset, gw + tt->offset, (size_t)tt->rows * tt->cols);
        if (tt->kind == FR_TENSOR_DENSE) {
            for (size_t i = 0; i < (size_t)tt->rows * tt->cols; i++) {
                float want = rw[tt->offset + i] - gw[tt->offset + i];
                cr_assert(close_enough(want, up->dense[dpos + i], scale, coast), "dense %zu: %.9g vs %.9g", i, want,
                          up->dense[dpos + i]);
            }
            dpos += (size_t)tt->rows * tt->cols;
        } else if (tt->kind == FR_TENSOR_ITEM_TABLE) {
            const fr_update_table *ut = &up->tables[tb++];
            cr_assert_eq(ut->width, tt->cols);
            size_t k = 0;
            for (uint32_t row = 0; row < tt->rows; row++) {
                const float *a = rw + tt->offset + (size_t)row * tt->cols, *b = gw + tt->offset + (size_t)row * tt->cols;
                if (k < ut->count && ut->ids[k] == row) {
                    for (uint32_t j = 0; j < tt->cols; j++) {
                        float want = a[j] - b[j];
                        cr_assert(close_enough(want, ut->values[k * tt->cols + j], scale, coast),
                                  "table %d row %u col %u: %.9g vs %.9g", t, row, j, want, ut->values[k * tt->cols + j]);
                    }
                    k++;
                    moved++;
                } else if (wd == 0) {
                    cr_assert(memcmp(a, b, tt->cols * sizeof(float)) == 0, "row %u not sent but moved", row);
                }
            }
            cr_assert_eq(k, ut->count);
        } else {
            float pscale = max_abs_delta(rw + tt->offset, gw + tt->offset + (size_t)c * tt->cols, tt->cols);
            for (uint32_t j = 0; j < tt->cols; j++) {
                float want = rw[tt->offset + j] - gw[tt->offset + (size_t)c * tt->cols + j];
                float got = prow[nu][j] - gw[tt->offset + (size_t)c * tt->cols + j];
                cr_assert(close_enough(want, got, pscale, coast), "private row col %u: %.9g vs %.9g", j, want, got);
            }
            nu++;
        }
    }
    cr_assert_eq(dpos, up->dense_len);
    fri_examples_free(&ex);
    fr_model_ws_free(mws);
    fr_optim_free(o);
    fr_grad_free(g);
    fr_model_free(r);
    fr_update_free(up);
    fr_client_ws_free(ws);
    fr_model_free(global);
    fr_dataset_free(d);
    return moved;
}

static size_t check_client_full(fr_model_kind kind, float wd, uint32_t E, uint32_t c, uint32_t round, float item_lr,
                                float decay, float mu) {
    size_t a = check_client_run(kind, wd, E, c, round, item_lr, decay, mu, false);
    size_t b = check_client_run(kind, wd, E, c, round, item_lr, decay, mu, true);
    cr_assert_eq(a, b);
    return a;
}

static size_t check_client_items(fr_model_kind kind, float wd, uint32_t E, uint32_t c, uint32_t round, float item_lr,
                                 float decay) {
    return check_client_full(kind, wd, E, c, round, item_lr, decay, 0.0f);
}

static size_t check_client(fr_model_kind kind, float wd, uint32_t E, uint32_t c) {
    return check_client_items(kind, wd, E, c, 1, 0.0f, 1.0f);
}

Test(simspeed, client_score_equals_full_model_score) {
    fr_dataset *d = synthetic();
    fr_model_config mc;
    fr_model_config_default(&mc, FR_MODEL_NEUMF);
    mc.n_users = fr_dataset_n_users(d);
    mc.n_items = fr_dataset_n_items(d);
    mc.seed = 8;
    mc.init_std = 0.3f; /* scores far from ties */
    fr_fl_config cfg;
    fr_fl_config_default(&cfg, FR_MODEL_NEUMF);
    fr_model *global = NULL;
    cr_assert_eq(fr_model_create(&global, &mc), FR_OK);
    fr_client_ws *ws = NULL;
    cr_assert_eq(fr_client_ws_create(&ws, &mc, &cfg), FR_OK);
    const uint32_t c = 5;
    float prow[2][64];
    float *priv[2];
    int nu = 0;
    const float *gw = fr_model_params_const(global);
    for (int t = 0; t < fr_model_n_tensors(global); t++) {
        const fr_tensor *tt = fr_model_tensor(global, t);
        if (tt->kind != FR_TENSOR_USER_TABLE) continue;
        memcpy(prow[nu], gw + tt->offset + (size_t)c * tt->cols, tt->cols * sizeof(float));
        priv[nu] = prow[nu];
        nu++;
    }
    cr_assert_eq(nu, 2);
    uint32_t items[300], users[300];
    for (int i = 0; i < 300; i++) { items[i] = (uint32_t)((i * 37 + 11) % mc.n_items); users[i] = c; }
    items[7] = items[3]; /* a repeat */
    float a[300], b[300];
    cr_assert_eq(fr_client_score(ws, global, priv, items, 300, a), FR_OK, "%s", fr_errmsg());
    /* the same chunks (the client scores in batches of B) give the same floats */
    fr_model_ws *mws = NULL;
    cr_assert_eq(fr_model_ws_create(&mws, global, cfg.batch), FR_OK);
    cr_assert_eq(fr_model_score(global, mws, users, items, 300, b), FR_OK);
    for (int i = 0; i < 300; i++) cr_assert(memcmp(&a[i], &b[i], 4) == 0, "item %d: %.9g vs %.9g", i, a[i], b[i]);
    /* again (the marks were cleared), a short list */
    cr_assert_eq(fr_client_score(ws, global, priv, items + 5, 3, a), FR_OK);
    cr_assert_eq(fr_model_score(global, mws, users, items + 5, 3, b), FR_OK);
    cr_assert(memcmp(a, b, 3 * sizeof(float)) == 0);
    fr_model_ws_free(mws);
    items[0] = mc.n_items;
    cr_assert_eq(fr_client_score(ws, global, priv, items, 2, a), FR_ERR_RANGE);
    cr_assert(strstr(fr_errmsg(), "out of range") != NULL, "%s", fr_errmsg());
    fr_client_ws_free(ws);
    fr_model_free(global);
    fr_dataset_free(d);
}

Test(simspeed, client_fedprox_equals_prox_term_by_hand) {
    cr_assert(check_client_full(FR_MODEL_NEUMF, 0.0f, 2, 4, 2, 0.0f, 1.0f, 0.5f) > 10);
    cr_assert(check_client_full(FR_MODEL_NEUMF, 0.0f, 1, 7, 1, 0.3f, 0.9f, 0.2f) > 10);
}

Test(simspeed, client_fit_with_item_sgd_equals_adam_plus_sgd_by_hand) {
    cr_assert(check_client_items(FR_MODEL_NEUMF, 0.0f, 2, 4, 3, 0.5f, 0.9f) > 10);
    cr_assert(check_client_items(FR_MODEL_NEUMF, 0.0f, 1, 7, 1, 0.2f, 1.0f) > 10);
    cr_assert(check_client_items(FR_MODEL_MF, 0.0f, 1, 2, 5, 0.05f, 0.5f) > 3);
}

Test(simspeed, client_fit_equals_full_dense_adam_neumf) {
    size_t moved = check_client(FR_MODEL_NEUMF, 0.0f, 2, 4);
    cr_assert(moved > 10, "rows sent %zu", moved);
}

Test(simspeed, client_fit_equals_full_dense_adam_with_weight_decay) {
    cr_assert(check_client(FR_MODEL_NEUMF, 0.01f, 1, 7) > 10);
}

Test(simspeed, client_fit_equals_full_dense_adam_mf) {
    cr_assert(check_client(FR_MODEL_MF, 0.0f, 1, 2) > 3);
}

/* Coasting over many steps and epochs, for every model kind, with a small batch (long
 * gaps between a row's touches) and a heavy client. */
Test(simspeed, client_coasting_equals_dense_adam_over_many_steps) {
    worst_rel = 0;
    cr_assert(check_client_run(FR_MODEL_NEUMF, 0.0f, 5, 4, 2, 0.0f, 1.0f, 0.0f, true) > 10);
    cr_assert(check_client_run(FR_MODEL_GMF, 0.0f, 3, 9, 1, 0.0f, 1.0f, 0.0f, true) > 10);
    cr_assert(check_client_run(FR_MODEL_MLP, 0.0f, 3, 11, 1, 0.0f, 1.0f, 0.0f, true) > 10);
    cr_assert(check_client_run(FR_MODEL_BPR, 0.0f, 4, 3, 1, 0.0f, 1.0f, 0.0f, true) > 10);
    cr_assert(check_client_run(FR_MODEL_MF, 0.0f, 8, 2, 1, 0.0f, 1.0f, 0.0f, true) > 3);
    cr_log_info("largest coasting error: %.3f of the tolerance", worst_rel);
}

Test(simspeed, server_fixed_point_vector_path_equals_scalar) {
    enum { N = 1003 };
    static float val[N];
    static int64_t a[N], b[N];
    fr_rng r;
    fr_rng_init(&r, 1, 2, 3, FR_PURPOSE_INIT);
    for (int i = 0; i < N; i++) val[i] = (float)((fr_rng_double(&r) - 0.5) * 4.0);
    /* edges: exact halves of a unit, NaN, infinities, saturation, signed zeros */
    val[0] = 0.5f / 4294967296.0f; val[1] = -0.5f / 4294967296.0f; val[2] = 1.5f / 4294967296.0f;
    val[3] = NAN; val[4] = INFINITY; val[5] = -INFINITY; val[6] = 3e38f; val[7] = -0.0f; val[9] = 2.5e9f;
    static const double ws[] = {1, 3, 737, 0.25, 1e6};
    for (size_t w = 0; w < sizeof ws / sizeof *ws; w++) {
        for (size_t off = 0; off < 9; off++) { /* every alignment and tail; one add each so
                                                    saturated values never overflow the sum */
            for (int i = 0; i < N; i++) a[i] = b[i] = (int64_t)i * 977 - 400000;
            fri_fl_add_fixed(a + off, val + off, N - off - (off & 3), ws[w], true);
            fri_fl_add_fixed(b + off, val + off, N - off - (off & 3), ws[w], false);
            cr_assert(memcmp(a, b, sizeof a) == 0, "weight %g offset %zu", ws[w], off);
        }
    }
    /* the scalar rule itself on the edges, by hand (weight 1) */
    int64_t c[10] = {0};
    fri_fl_add_fixed(c, val, 10, 1.0, false);
    cr_assert_eq(c[0], 1);          /* 0.5 unit rounds away from zero */
    cr_assert_eq(c[1], -1);
    cr_assert_eq(c[2], 2);
    cr_assert_eq(c[3], (int64_t)-4.6e18); /* NaN: the lower bound */
    cr_assert_eq(c[4], (int64_t)4.6e18);
    cr_assert_eq(c[5], (int64_t)-4.6e18);
    cr_assert_eq(c[6], (int64_t)4.6e18);
    cr_assert_eq(c[7], 0);
}

/* The accumulator wraps modulo 2^64 (the masked sums of secure aggregation need it) in the
 * scalar loop and the vector one alike: sums past INT64_MAX and below INT64_MIN, against
 * the true sum in 128 bits brought back by hand into [-2^63, 2^63). Under the sanitize
 * build a signed overflow here fails the test (UBSan, no recover). */
__extension__ typedef __int128 i128; /* gcc and clang: the true sum */
Test(simspeed, server_fixed_point_sum_wraps_modulo_2_64) {
    enum { N = 19 }; /* two vectors of 8 and a tail of 3 */
    float val[N];
    i128 term[N]; /* each value's units of 2^-32 (weight 1), by hand */
    int64_t start[N];
    for (int i = 0; i < N; i++) {
        switch (i % 4) {
        case 0: val[i] = 1.0f; term[i] = (i128)1 << 32; break;
        case 1: val[i] = 3e38f; term[i] = (i128)4600000000000000000LL; break;   /* saturated */
        case 2: val[i] = -3e38f; term[i] = -(i128)4600000000000000000LL; break; /* saturated */
        default: val[i] = 0.25f; term[i] = (i128)1 << 30; break;
        }
        /* close to the top for the positive terms, the bottom for the negative ones */
        start[i] = term[i] > 0 ? INT64_MAX - 5 * i : INT64_MIN + 7 * i;
    }
    for (int vector = 0; vector < 2; vector++) {
        int64_t acc[N];
        memcpy(acc, start, sizeof acc);
        for (int rep = 0; rep < 3; rep++) fri_fl_add_fixed(acc, val, N, 1.0, vector);
        for (int i = 0; i < N; i++) {
            i128 t = (i128)start[i] + 3 * term[i], two64 = (i128)1 << 64;
            while (t > INT64_MAX) t -= two64;
            while (t < INT64_MIN) t += two64;
            cr_assert(t != (i128)start[i] + 3 * term[i], "value %d never wrapped", i);
            cr_assert_eq(acc[i], (int64_t)t, "%s path, value %d: %lld, expected %lld", vector ? "vector" : "scalar", i,
                         (long long)acc[i], (long long)t);
        }
    }
}

static uint32_t crc_bitwise(const uint8_t *p, size_t n) {
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1u)));
    }
    return ~c;
}

/* Long buffers take the three-stream path (3 blocks of 4096 bytes at a time, joined by
 * GF(2) multiplication): against the bitwise CRC around every block boundary. */
Test(simspeed, crc32c_three_streams_equal_bitwise) {
    enum { N = 3 * 4096 * 3 + 100 };
    uint8_t *buf = malloc(N + 8);
    cr_assert(buf);
    fr_rng r;
    fr_rng_init(&r, 2, 0, 0, FR_PURPOSE_TEST);
    for (size_t i = 0; i < N + 8; i++) buf[i] = (uint8_t)fr_rng_below(&r, 256);
    const size_t lens[] = {3 * 4096 - 1, 3 * 4096, 3 * 4096 + 1, 3 * 4096 + 7, 2 * 3 * 4096, 2 * 3 * 4096 + 13,
                           3 * 3 * 4096 + 99, N};
    for (size_t off = 0; off < 8; off += 3)
        for (size_t k = 0; k < sizeof lens / sizeof *lens; k++) {
            size_t n = lens[k];
            uint32_t want = crc_bitwise(buf + off, n);
            cr_assert_eq(fr_crc32c(0, buf + off, n), want, "offset %zu length %zu", off, n);
            cr_assert_eq(fr_crc32c(fr_crc32c(0, buf + off, 5), buf + off + 5, n - 5), want, "chained, length %zu", n);
        }
    free(buf);
}

Test(simspeed, crc32c_equals_bitwise_for_every_length_and_alignment) {
    uint8_t buf[512 + 8];
    fr_rng r;
    fr_rng_init(&r, 1, 0, 0, FR_PURPOSE_TEST);
    for (size_t i = 0; i < sizeof buf; i++) buf[i] = (uint8_t)fr_rng_below(&r, 256);
    for (size_t off = 0; off < 8; off++)
        for (size_t n = 0; n <= 512; n += (n < 40 ? 1 : 37)) {
            uint32_t want = crc_bitwise(buf + off, n);
            cr_assert_eq(fr_crc32c(0, buf + off, n), want, "offset %zu length %zu", off, n);
            size_t h = n / 3; /* chained */
            cr_assert_eq(fr_crc32c(fr_crc32c(0, buf + off, h), buf + off + h, n - h), want);
        }
}
