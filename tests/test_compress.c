/* Compression (src/fl/compress.c): quantized blocks round-trip within their stated bound
 * (checked against a bound computed here from the values alone); stochastic rounding is
 * unbiased (the mean over many streams); top-k keeps exactly the k largest magnitudes,
 * ties to the lower index (against a naive selection); error feedback keeps exactly what
 * was not sent (what was sent plus the residual is the sum of the updates); the config
 * without compression encodes as before; compressed federated runs are bit-identical
 * across thread counts and count the real bytes up and down; the refusals (DP, secure
 * aggregation, a compressed RESULT in a federation that does not compress, bad scales). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fedrec/fedrec.h"
#include "fedrec/runtime.h"
#include "fl/fl_internal.h"

static uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* ------------------------------------------------------------------ blocks */

Test(compress, fixed_blocks_round_trip_within_bound) {
    const uint32_t modes[2] = {FR_COMPRESS_Q8, FR_COMPRESS_Q16};
    const double L[2] = {127, 32767};
    const double mags[6] = {0, 1, 100, 1e6, 4.3e9 * 3, 1e17};
    uint64_t seed = 7;
    int64_t x[70], y[70];
    uint8_t buf[4 + 70 * 2];
    for (int mi = 0; mi < 2; mi++)
        for (int g = 0; g < 6; g++)
            for (int rep = 0; rep < 20; rep++) {
                size_t n = 1 + splitmix(&seed) % 70;
                for (size_t i = 0; i < n; i++) {
                    double u = (double)(splitmix(&seed) >> 11) / 9007199254740992.0 * 2 - 1;
                    x[i] = (int64_t)(u * mags[g]);
                }
                if (rep == 0 && n > 1) x[0] = (int64_t)mags[g], x[1] = -(int64_t)mags[g];
                fr_rng r;
                fr_rng_init(&r, 1, (uint32_t)rep, (uint32_t)g, FR_PURPOSE_COMPRESS_UP);
                size_t nb = fri_q_encode_fixed(buf, x, n, modes[mi], &r);
                cr_assert_eq(nb, 4 + n * (mi ? 2 : 1));
                cr_assert_eq(fri_q_decode_fixed(y, buf, n, modes[mi]), FR_OK, "%s", fr_errmsg());
                /* the bound from the values alone: the scale is ceil(max|x| / L) up to a float's
                 * relative rounding, and the error is below one scale */
                double m = 0;
                for (size_t i = 0; i < n; i++) m = fmax(m, fabs((double)x[i]));
                double bound = ceil(m / L[mi]) * (1 + 1.2e-7);
                for (size_t i = 0; i < n; i++) {
                    double err = fabs((double)y[i] - (double)x[i]);
                    cr_assert(err < bound || (m == 0 && err == 0), "mode %u mag %g: |%lld - %lld| = %g, bound %g",
                              modes[mi], mags[g], (long long)y[i], (long long)x[i], err, bound);
                }
            }
}

Test(compress, float_blocks_round_trip_within_bound) {
    uint64_t seed = 9;
    float x[64], y[64];
    uint8_t buf[4 + 64 * 2];
    for (uint32_t mode = FR_COMPRESS_Q8; mode <= FR_COMPRESS_Q16; mode++)
        for (int rep = 0; rep < 200; rep++) {
            size_t n = 1 + splitmix(&seed) % 64;
            double mag = pow(10, (double)(rep % 9) - 6);
            for (size_t i = 0; i < n; i++)
                x[i] = (float)(((double)(splitmix(&seed) >> 11) / 9007199254740992.0 * 2 - 1) * mag);
            fr_rng r;
            fr_rng_init(&r, 3, (uint32_t)rep, 0, FR_PURPOSE_COMPRESS_DOWN);
            cr_assert_eq(fri_q_encode_float(buf, x, n, mode, &r), FR_OK);
            cr_assert_eq(fri_q_decode_float(y, buf, n, mode), FR_OK);
            double m = 0;
            for (size_t i = 0; i < n; i++) m = fmax(m, fabs((double)x[i]));
            double bound = m / (mode == FR_COMPRESS_Q8 ? 127.0 : 32767.0) * (1 + 1e-6) + 1e-30;
            for (size_t i = 0; i < n; i++)
                cr_assert(fabs((double)y[i] - (double)x[i]) <= bound, "mode %u: %g vs %g, bound %g", mode,
                          (double)y[i], (double)x[i], bound);
        }
}

/* The mean of q S over N independent streams is x: |mean - x| within 5 standard errors
 * (the variance of a stochastic rounding is at most S^2 / 4). */
Test(compress, stochastic_rounding_is_unbiased) {
    const int64_t x[6] = {1000000007, -777777777, 5, 0, 12345678901, -12345678901};
    const int N = 20000;
    for (uint32_t mode = FR_COMPRESS_Q8; mode <= FR_COMPRESS_Q16; mode++) {
        double sum[6] = {0};
        uint8_t buf[4 + 6 * 2];
        int64_t y[6];
        for (int k = 0; k < N; k++) {
            fr_rng r;
            fr_rng_init(&r, 11, 1, (uint32_t)k, FR_PURPOSE_COMPRESS_UP);
            fri_q_encode_fixed(buf, x, 6, mode, &r);
            cr_assert_eq(fri_q_decode_fixed(y, buf, 6, mode), FR_OK);
            for (int i = 0; i < 6; i++) sum[i] += (double)y[i];
        }
        double S = ceil(12345678901.0 / (mode == FR_COMPRESS_Q8 ? 127 : 32767)) * (1 + 1.2e-7);
        for (int i = 0; i < 6; i++) {
            double mean = sum[i] / N, se = S / 2 / sqrt(N);
            cr_assert(fabs(mean - (double)x[i]) <= 5 * se, "mode %u: x %lld, mean %.1f, 5 se %.1f", mode,
                      (long long)x[i], mean, 5 * se);
        }
        /* a value that is a multiple of the scale is exact, always */
        cr_assert_eq(sum[3], 0.0);
    }
    /* the float downlink too */
    const float f[4] = {0.3f, -0.0071f, 1.0f, 0.5f};
    double fs[4] = {0};
    for (int k = 0; k < N; k++) {
        fr_rng r;
        fr_rng_init(&r, 12, (uint32_t)k, 0, FR_PURPOSE_COMPRESS_DOWN);
        uint8_t buf[4 + 4];
        float y[4];
        cr_assert_eq(fri_q_encode_float(buf, f, 4, FR_COMPRESS_Q8, &r), FR_OK);
        cr_assert_eq(fri_q_decode_float(y, buf, 4, FR_COMPRESS_Q8), FR_OK);
        for (int i = 0; i < 4; i++) fs[i] += y[i];
    }
    for (int i = 0; i < 4; i++)
        cr_assert(fabs(fs[i] / N - f[i]) <= 5 * (1.0 / 127 / 2) / sqrt(N), "%g vs %g", fs[i] / N, (double)f[i]);
}

/* ------------------------------------------------------------------ top-k */

Test(compress, topk_keeps_the_largest_ties_to_the_lower_index) {
    const float a[7] = {1, -5, 3, 5, -3, 0, 5};
    uint32_t order[7], idx[7];
    fri_topk_select(a, 7, 3, order, idx);
    cr_assert(idx[0] == 1 && idx[1] == 3 && idx[2] == 6, "%u %u %u", idx[0], idx[1], idx[2]);
    fri_topk_select(a, 7, 4, order, idx);
    cr_assert(idx[0] == 1 && idx[1] == 2 && idx[2] == 3 && idx[3] == 6);
    fri_topk_select(a, 7, 9, order, idx); /* k > n: all of them */
    for (uint32_t i = 0; i < 7; i++) cr_assert_eq(idx[i], i);
    /* random, with many ties, against a naive selection: repeatedly the first largest left */
    uint64_t seed = 5;
    for (int rep = 0; rep < 300; rep++) {
        uint32_t n = 1 + (uint32_t)(splitmix(&seed) % 200), k = (uint32_t)(splitmix(&seed) % (n + 1));
        float v[200];
        bool taken[200] = {0};
        for (uint32_t i = 0; i < n; i++) v[i] = (float)((int)(splitmix(&seed) % 21) - 10);
        uint32_t o2[200], got[200];
        fri_topk_select(v, n, k, o2, got);
        for (uint32_t j = 0; j < k; j++) {
            int best = -1;
            for (uint32_t i = 0; i < n; i++)
                if (!taken[i] && (best < 0 || fabsf(v[i]) > fabsf(v[best]))) best = (int)i;
            taken[best] = true;
        }
        uint32_t c = 0;
        for (uint32_t i = 0; i < n; i++)
            if (taken[i]) cr_assert_eq(got[c++], i, "rep %d: the %u-th index", rep, c);
        cr_assert_eq(c, k);
    }
}

/* Error feedback, with values in 1/8 (sums exact in floats and in fixed point): after each
 * round the residual is exactly the dense update plus the previous residual where it was
 * not sent, the RESULT carries the other k values, and over all rounds what was sent plus
 * the residual is the sum of the updates. */
Test(compress, error_feedback_keeps_what_was_dropped) {
    enum { D = 12, K = 3, R = 8 };
    fr_fl_config cfg;
    fr_fl_config_default(&cfg, FR_MODEL_NEUMF);
    cfg.compress_topk = K;
    fr_update *u = NULL;
    fr_result *res = NULL;
    cr_assert_eq(fr_update_create(&u), FR_OK);
    cr_assert_eq(fr_result_create(&res), FR_OK);
    fri_compress_ws *cw = NULL;
    uint8_t *buf = NULL;
    size_t cap = 0, n;
    float resid[D] = {0}, prev[D];
    double total[D] = {0}, sent[D] = {0};
    uint64_t seed = 3;
    fr_update_shape shape = {D, 0, NULL, NULL};
    for (uint32_t r = 1; r <= R; r++) {
        cr_assert_eq(fr_update_reset(u, D, 0, NULL), FR_OK);
        u->weight = 1;
        u->client = 4;
        u->round = r;
        for (int i = 0; i < D; i++) {
            u->dense[i] = (float)((int)(splitmix(&seed) % 33) - 16) / 8.0f;
            total[i] += u->dense[i];
        }
        memcpy(prev, resid, sizeof prev);
        cr_assert_eq(fri_result_encode_compressed(u, &cfg, fr_fl_fixed_bound(1), 0, 1, 0, resid, &cw, &buf, &cap, &n),
                     FR_OK, "%s", fr_errmsg());
        cr_assert_eq(n, FR_MSG_HEADER_BYTES + 48 + 4 + K * 4 + K * 8);
        cr_assert_eq(fri_result_decompress(res, buf, n, &shape), FR_OK, "%s", fr_errmsg());
        int nonzero_slots = 0;
        for (int i = 0; i < D; i++) {
            double a = (double)u->dense[i] + prev[i], s = (double)res->dense[i] / FR_FL_FIXED_SCALE;
            sent[i] += s;
            if (s != 0) nonzero_slots++;
            /* each coordinate is either sent whole (residual 0) or kept whole */
            cr_assert((s == a && resid[i] == 0) || (s == 0 && resid[i] == a), "round %u coord %d: a %g sent %g kept %g",
                      r, i, a, s, (double)resid[i]);
        }
        cr_assert_leq(nonzero_slots, K);
        /* the kept ones are no larger than the sent ones */
        for (int i = 0; i < D; i++)
            for (int j = 0; j < D; j++)
                if (res->dense[i] != 0 && resid[j] != 0)
                    cr_assert_geq(fabs((double)res->dense[i] / FR_FL_FIXED_SCALE), fabs((double)resid[j]));
    }
    for (int i = 0; i < D; i++)
        cr_assert_eq(sent[i] + resid[i], total[i], "coord %d: sent %g + residual %g, the updates sum to %g", i, sent[i],
                     (double)resid[i], total[i]);
    /* without a residual a top-k step is refused */
    cr_assert_eq(fri_result_encode_compressed(u, &cfg, fr_fl_fixed_bound(1), 0, 1, 0, NULL, &cw, &buf, &cap, &n),
                 FR_ERR_INVALID);
    fri_compress_ws_free(cw);
    free(buf);
    fr_update_free(u);
    fr_result_free(res);
}

/* ------------------------------------------------------------------ config and messages */

static void block_of(const fr_fl_config *c, fri_buf *b) {
    fr_model_config mc;
    fr_model_config_default(&mc, FR_MODEL_BPR);
    mc.n_items = 30;
    b->len = 0;
    cr_assert_eq(fri_fl_config_block(b, &mc, c), FR_OK);
}

Test(compress, config_without_compression_encodes_as_before) {
    fr_fl_config c;
    fr_fl_config_default(&c, FR_MODEL_BPR);
    fri_buf a = {0}, b = {0};
    block_of(&c, &a);
    /* the block of today: the flags word has no bit 7 and nothing follows the seed */
    c.compress_up = FR_COMPRESS_Q8;
    c.compress_topk = 17;
    c.compress_down = FR_COMPRESS_Q16;
    block_of(&c, &b);
    cr_assert_eq(b.len, a.len + 12);
    fri_rd r;
    fri_rd_init(&r, b.data, b.len, "test", "block");
    fr_model_config mc;
    fr_fl_config got;
    cr_assert_eq(fri_fl_config_block_get(&r, &mc, &got), FR_OK, "%s", fr_errmsg());
    cr_assert(got.compress_up == FR_COMPRESS_Q8 && got.compress_topk == 17 && got.compress_down == FR_COMPRESS_Q16);
    c.compress_up = c.compress_topk = c.compress_down = 0;
    block_of(&c, &b);
    cr_assert(b.len == a.len && !memcmp(a.data, b.data, a.len));
    /* the checks */
    c.compress_up = 3;
    cr_assert_eq(fr_fl_config_check(&c), FR_ERR_INVALID);
    c.compress_up = FR_COMPRESS_Q8;
    c.dp_clip = 1;
    cr_assert_eq(fr_fl_config_check(&c), FR_ERR_INVALID);
    c.compress_up = 0;
    c.compress_topk = 4;
    cr_assert_eq(fr_fl_config_check(&c), FR_ERR_INVALID);
    c.compress_topk = 0;
    c.compress_down = FR_COMPRESS_Q8; /* the broadcast is public: allowed with DP */
    cr_assert_eq(fr_fl_config_check(&c), FR_OK, "%s", fr_errmsg());
    fri_buf_free(&a);
    fri_buf_free(&b);
}

/* ------------------------------------------------------------------ federated runs */

typedef struct run_out {
    uint8_t *model;
    size_t n;
    uint64_t bytes_up, bytes_down, seen_up, expect_down, sampled;
} run_out;

static void observe(void *ctx, uint32_t client, const uint8_t *bytes, size_t n) {
    (void)client;
    (void)bytes;
    __atomic_fetch_add(&((run_out *)ctx)->seen_up, n, __ATOMIC_RELAXED);
}

/* The bytes of a TASK's parameters quantized, from the tensor shapes alone: an item row
 * is a 4-byte scale and its values, a dense tensor a scale per 64 values. */
static uint64_t q_params_bytes(const fr_model *g, uint32_t mode) {
    uint64_t b = 0, w = mode == FR_COMPRESS_Q8 ? 1 : 2;
    for (int t = 0; t < fr_model_n_tensors(g); t++) {
        const fr_tensor *tt = fr_model_tensor(g, t);
        if (tt->kind == FR_TENSOR_ITEM_TABLE) b += (uint64_t)tt->rows * (4 + w * tt->cols);
        else if (tt->kind == FR_TENSOR_DENSE) {
            uint64_t n = (uint64_t)tt->rows * tt->cols;
            b += 4 * ((n + 63) / 64) + w * n;
        }
    }
    return b;
}

static run_out train(const fr_dataset *d, fr_model_kind kind, uint32_t up, uint32_t topk, uint32_t down, int threads,
                     bool secagg, fr_err *err) {
    fr_model_config mc;
    fr_fl_config cfg;
    fr_model_config_default(&mc, kind);
    fr_fl_config_default(&cfg, kind);
    mc.dim = 8;
    cfg.seed = 5;
    cfg.clients_per_round = 0.5;
    cfg.batch = 8;
    cfg.compress_up = up;
    cfg.compress_topk = topk;
    cfg.compress_down = down;
    fr_pool *pool = NULL;
    cr_assert_eq(fr_pool_create(&pool, threads), FR_OK);
    fr_sim *s = NULL;
    cr_assert_eq(fr_sim_create(&s, &mc, &cfg, d, pool), FR_OK, "%s", fr_errmsg());
    fr_sim_set_secagg(s, secagg);
    run_out o = {0};
    fr_sim_set_observer(s, observe, &o);
    for (int r = 0; r < 4; r++) {
        fr_round_stats st;
        fr_err e = fr_sim_round(s, &st);
        if (err) { *err = e; if (e) break; }
        cr_assert_eq(e, FR_OK, "%s", fr_errmsg());
        o.bytes_up += st.bytes_up;
        o.bytes_down += st.bytes_down;
        o.sampled += st.sampled;
        if (down) { /* the TASK's header and config as the float TASK's, its parameters quantized */
            const fr_model *g = fr_sim_model(s);
            fri_buf cb = {0};
            fr_model_config m1 = *fr_model_config_of(g);
            cr_assert_eq(fri_fl_config_block(&cb, &m1, &cfg), FR_OK);
            size_t at = FR_MSG_HEADER_BYTES + 24 + cb.len;
            at = (at + 7) & ~(size_t)7; /* the parameter count's alignment */
            o.expect_down += (uint64_t)st.sampled * (at + 8 + q_params_bytes(g, down));
            fri_buf_free(&cb);
        }
    }
    fr_model_meta meta = {0};
    if (!err || !*err) cr_assert_eq(fr_model_encode(fr_sim_model(s), &meta, &o.model, &o.n), FR_OK);
    fr_sim_free(s);
    fr_pool_free(pool);
    return o;
}

Test(compress, federated_runs_bit_identical_across_threads_and_real_bytes, .timeout = 300) {
    fr_dataset *d = NULL;
    fr_gen_opts go;
    fr_gen_opts_default(&go);
    go.users = 40;
    go.items = 70;
    go.interactions = 900;
    go.seed = 4;
    cr_assert_eq(fr_dataset_generate(&d, &go), FR_OK);
    const struct { fr_model_kind kind; uint32_t up, topk, down; } cases[] = {
        {FR_MODEL_BPR, FR_COMPRESS_Q8, 0, FR_COMPRESS_Q8},  {FR_MODEL_BPR, FR_COMPRESS_Q16, 0, 0},
        {FR_MODEL_NEUMF, 0, 20, 0},                         {FR_MODEL_NEUMF, FR_COMPRESS_Q8, 20, FR_COMPRESS_Q16},
        {FR_MODEL_NEUMF, FR_COMPRESS_Q8, 0, 0},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        run_out one = train(d, cases[c].kind, cases[c].up, cases[c].topk, cases[c].down, 1, false, NULL);
        run_out three = train(d, cases[c].kind, cases[c].up, cases[c].topk, cases[c].down, 3, false, NULL);
        run_out plain = train(d, cases[c].kind, 0, 0, 0, 2, false, NULL);
        cr_assert(one.n == three.n && !memcmp(one.model, three.model, one.n), "case %zu: 1 and 3 threads differ", c);
        cr_assert(one.n == plain.n && memcmp(one.model, plain.model, one.n), "case %zu: compression changed nothing", c);
        /* bytes up: exactly the RESULT messages sent, fewer than uncompressed */
        cr_assert_eq(one.bytes_up, one.seen_up, "case %zu", c);
        cr_assert_eq(three.bytes_up, three.seen_up, "case %zu", c);
        cr_assert_eq(plain.bytes_up, plain.seen_up);
        if (cases[c].up == FR_COMPRESS_Q8 && cases[c].kind == FR_MODEL_BPR)
            /* dim 8: a row's 68 bytes become 16, less the 72 bytes of each message's fixed part */
            cr_assert_lt(one.bytes_up * 3.5, plain.bytes_up, "case %zu: q8 %llu bytes, none %llu", c,
                         (unsigned long long)one.bytes_up, (unsigned long long)plain.bytes_up);
        if (cases[c].up) cr_assert_lt(one.bytes_up, plain.bytes_up);
        if (cases[c].down) cr_assert_eq(one.bytes_down, one.expect_down, "case %zu: %llu bytes down, expected %llu", c,
                                        (unsigned long long)one.bytes_down, (unsigned long long)one.expect_down);
        else { /* the floats of before; the config block says what is compressed (12 bytes, then
                  padding to 8 before the parameters) */
            uint64_t more = one.bytes_down - plain.bytes_down;
            cr_assert(more == 8 * one.sampled || more == 16 * one.sampled, "case %zu: %llu more bytes down", c,
                      (unsigned long long)more);
        }
        free(one.model);
        free(three.model);
        free(plain.model);
    }
    /* secure aggregation refuses uplink compression, takes the downlink's */
    fr_err e;
    run_out r = train(d, FR_MODEL_BPR, FR_COMPRESS_Q8, 0, 0, 1, true, &e);
    cr_assert_eq(e, FR_ERR_INVALID);
    r = train(d, FR_MODEL_BPR, 0, 0, FR_COMPRESS_Q8, 1, true, &e);
    cr_assert_eq(e, FR_OK, "%s", fr_errmsg());
    free(r.model);
    fr_dataset_free(d);
}

/* A compressed RESULT is refused by a federation that does not compress, by
 * fr_result_decode (which reads uncompressed RESULTs only), and with a bad scale. */
Test(compress, refusals) {
    fr_fl_config cfg;
    fr_fl_config_default(&cfg, FR_MODEL_BPR);
    cfg.compress_up = FR_COMPRESS_Q8;
    fr_update *u = NULL;
    cr_assert_eq(fr_update_create(&u), FR_OK);
    uint32_t widths[1] = {4}, rows[1] = {10};
    cr_assert_eq(fr_update_reset(u, 3, 1, widths), FR_OK);
    cr_assert_eq(fr_update_table_resize(u, 0, 2), FR_OK);
    u->weight = 2;
    u->round = 1;
    u->tables[0].ids[0] = 1;
    u->tables[0].ids[1] = 7;
    for (int i = 0; i < 8; i++) u->tables[0].values[i] = 0.01f * (float)(i - 3);
    for (int i = 0; i < 3; i++) u->dense[i] = 0.5f * (float)i;
    fri_compress_ws *cw = NULL;
    uint8_t *buf = NULL;
    size_t cap = 0, n;
    cr_assert_eq(fri_result_encode_compressed(u, &cfg, fr_fl_fixed_bound(1), 0, 1, 0, NULL, &cw, &buf, &cap, &n), FR_OK);
    cr_assert_eq(n, FR_MSG_HEADER_BYTES + 48 + (4 + 3) + 8 + 2 * 4 + 2 * (4 + 4));
    fr_update_shape shape = {3, 1, widths, rows};
    fr_result *res = NULL;
    cr_assert_eq(fr_result_create(&res), FR_OK);
    cr_assert_eq(fri_result_decompress(res, buf, n, &shape), FR_OK, "%s", fr_errmsg());
    cr_assert_eq(res->tables[0].count, 2);
    cr_assert_eq(res->tables[0].ids[1], 7);
    cr_assert_neq(fr_result_decode(res, buf, n, &shape), FR_OK);
    /* a scale that is not a whole number, re-sealed so only it is wrong */
    uint8_t *bad = malloc(n);
    memcpy(bad, buf, n);
    fri_put_f32(bad + FR_MSG_HEADER_BYTES + 48, 2.5f);
    fri_msg_seal(bad, n, FR_MSG_RESULT);
    cr_assert_eq(fri_result_decompress(res, bad, n, &shape), FR_ERR_FORMAT);
    /* a round of a federation without compression refuses it */
    fr_fl_config plain;
    fr_fl_config_default(&plain, FR_MODEL_BPR);
    fr_model_config mc;
    fr_model_config_default(&mc, FR_MODEL_BPR);
    mc.n_items = 10;
    mc.n_users = 1;
    fr_round *r = NULL;
    cr_assert_eq(fr_round_create(&r, &mc, &plain, 1, 1), FR_OK, "%s", fr_errmsg());
    const uint32_t *ids;
    uint32_t k;
    cr_assert_eq(fr_round_begin(r, &ids, &k), FR_OK);
    cr_assert_neq(fr_round_submit(r, buf, n, 0), FR_OK);
    fr_round_free(r);
    free(bad);
    fri_compress_ws_free(cw);
    free(buf);
    fr_result_free(res);
    fr_update_free(u);
}

/* The named seeds of fuzz/corpus/cresult, written by fuzz/make_seeds.py (an encoder
 * independent of the C code): the valid one decodes to the values it was built from (top
 * 2 of 3 dense values q 5, -7 at 0 and 2 with scale 1000; rows of scale 3 and q 1, 2, 3,
 * -4; rows of scale 0), the others are refused. */
Test(compress, named_seeds_decode_as_written) {
    static const uint32_t widths[2] = {4, 1}, rows[2] = {16, 1000};
    const fr_update_shape shape = {3, 2, widths, rows};
    const char *names[] = {"valid_q8_topk", "bad_scale_fraction", "bad_q_minus_128", "bad_topk_order",
                           "bad_q8_and_q16", "bad_truncated"};
    fr_result *r = NULL;
    cr_assert_eq(fr_result_create(&r), FR_OK);
    for (size_t k = 0; k < sizeof names / sizeof *names; k++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/fuzz/corpus/cresult/%s", FR_SOURCE_DIR, names[k]);
        FILE *f = fopen(path, "rb");
        cr_assert(f, "%s missing", path);
        uint8_t buf[1024];
        size_t n = fread(buf, 1, sizeof buf, f);
        fclose(f);
        fr_err e = fri_result_decompress(r, buf, n, &shape);
        if (k > 0) { cr_assert_neq(e, FR_OK, "%s decoded", names[k]); continue; }
        cr_assert_eq(e, FR_OK, "%s: %s", names[k], fr_errmsg());
        cr_assert(r->dense[0] == 5000 && r->dense[1] == 0 && r->dense[2] == -7000);
        cr_assert(r->tables[0].count == 3 && r->tables[0].ids[2] == 15 && r->tables[1].ids[2] == 999);
        const int64_t row[4] = {3, 6, 9, -12};
        for (uint32_t i = 0; i < 12; i++) cr_assert_eq(r->tables[0].values[i], row[i % 4]);
        for (uint32_t i = 0; i < 3; i++) cr_assert_eq(r->tables[1].values[i], 0);
        cr_assert(r->weight == 100 && r->examples == 500 && r->loss_sum == 12.5 && r->client == 3);
    }
    fr_result_free(r);
}

/* A top-k run resumed from a checkpoint is the uninterrupted run bit for bit: the
 * clients' residuals are in the checkpoint. */
Test(compress, topk_resume_is_bit_identical, .timeout = 120) {
    fr_dataset *d = NULL;
    fr_gen_opts go;
    fr_gen_opts_default(&go);
    go.users = 30;
    go.items = 50;
    go.interactions = 600;
    go.seed = 8;
    cr_assert_eq(fr_dataset_generate(&d, &go), FR_OK);
    fr_model_config mc;
    fr_fl_config cfg;
    fr_model_config_default(&mc, FR_MODEL_NEUMF);
    fr_fl_config_default(&cfg, FR_MODEL_NEUMF);
    mc.dim = 8;
    cfg.seed = 2;
    cfg.clients_per_round = 0.5;
    cfg.compress_up = FR_COMPRESS_Q8;
    cfg.compress_topk = 10;
    char path[256];
    snprintf(path, sizeof path, "%s/fedrec_test_compress_%d.ckpt", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp",
             (int)getpid());
    uint8_t *model[2];
    size_t mn[2];
    for (int resumed = 0; resumed < 2; resumed++) {
        fr_sim *s = NULL;
        cr_assert_eq(fr_sim_create(&s, &mc, &cfg, d, NULL), FR_OK, "%s", fr_errmsg());
        fr_round_stats st;
        for (int r = 0; r < 4; r++) {
            if (resumed && r == 2) {
                cr_assert_eq(fr_sim_checkpoint_save(s, path), FR_OK, "%s", fr_errmsg());
                fr_sim_free(s);
                cr_assert_eq(fr_sim_create(&s, &mc, &cfg, d, NULL), FR_OK);
                cr_assert_eq(fr_sim_checkpoint_load(s, path), FR_OK, "%s", fr_errmsg());
            }
            cr_assert_eq(fr_sim_round(s, &st), FR_OK, "%s", fr_errmsg());
        }
        fr_model_meta meta = {0};
        cr_assert_eq(fr_model_encode(fr_sim_model(s), &meta, &model[resumed], &mn[resumed]), FR_OK);
        fr_sim_free(s);
    }
    remove(path);
    cr_assert(mn[0] == mn[1] && !memcmp(model[0], model[1], mn[0]), "the resumed top-k run differs");
    free(model[0]);
    free(model[1]);
    fr_dataset_free(d);
}

/* A quantized TASK decodes to the server's model within the bound of each row (item
 * tables) or block of 64 (dense tensors): max|w| / L of that row or block; the same model
 * and config without compress_down sends the floats exactly. */
Test(compress, quantized_task_within_bound) {
    for (uint32_t mode = FR_COMPRESS_Q8; mode <= FR_COMPRESS_Q16; mode++) {
        fr_model_config mc;
        fr_fl_config cfg;
        fr_model_config_default(&mc, FR_MODEL_NEUMF);
        fr_fl_config_default(&cfg, FR_MODEL_NEUMF);
        mc.dim = 8;
        mc.n_items = 40;
        mc.n_users = 5;
        cfg.compress_down = mode;
        fr_round *r = NULL;
        cr_assert_eq(fr_round_create(&r, &mc, &cfg, 5, 1), FR_OK, "%s", fr_errmsg());
        const uint32_t *ids;
        uint32_t k;
        cr_assert_eq(fr_round_begin(r, &ids, &k), FR_OK);
        const uint8_t *tb;
        size_t tn;
        cr_assert_eq(fr_round_task(r, ids[0], &tb, &tn), FR_OK);
        fr_task *t = NULL;
        cr_assert_eq(fr_task_create(&t), FR_OK);
        cr_assert_eq(fr_task_decode(t, tb, tn), FR_OK, "%s", fr_errmsg());
        const fr_model *g = fr_round_model(r);
        const float *w = fr_model_params_const(g), *v = fr_model_params_const(fr_task_model(t));
        double L = mode == FR_COMPRESS_Q8 ? 127 : 32767;
        int checked = 0;
        for (int ti = 0; ti < fr_model_n_tensors(g); ti++) {
            const fr_tensor *tt = fr_model_tensor(g, ti);
            if (tt->kind == FR_TENSOR_USER_TABLE) continue;
            size_t len = (size_t)tt->rows * tt->cols, block = tt->kind == FR_TENSOR_ITEM_TABLE ? tt->cols : 64;
            for (size_t at = 0; at < len; at += block) {
                size_t m = len - at < block ? len - at : block;
                double mx = 0;
                for (size_t i = 0; i < m; i++) mx = fmax(mx, fabs((double)w[tt->offset + at + i]));
                for (size_t i = 0; i < m; i++, checked++)
                    cr_assert_leq(fabs((double)v[tt->offset + at + i] - w[tt->offset + at + i]), mx / L * (1 + 1e-6),
                                  "tensor %d at %zu", ti, at + i);
            }
        }
        cr_assert_eq((size_t)checked, fr_model_n_shared(g));
        /* a TASK saying it is quantized in a federation that compresses no downlink is refused:
         * clear compress_down in the config block (its last word) and fix both CRCs */
        uint8_t *bad = malloc(tn);
        memcpy(bad, tb, tn);
        uint32_t cn = fri_get_u32(bad + FR_MSG_HEADER_BYTES + 8);
        size_t cb = FR_MSG_HEADER_BYTES + 24;
        cr_assert_eq(fri_get_u32(bad + cb + cn - 4), mode);
        fri_put_u32(bad + cb + cn - 4, 0);
        fri_put_u32(bad + cb + cn - 12, FR_COMPRESS_Q8); /* a valid config: q8 up, nothing down */
        fri_put_u32(bad + FR_MSG_HEADER_BYTES + 4, fr_crc32c(0, bad + cb, cn));
        fri_msg_seal(bad, tn, FR_MSG_TASK);
        cr_assert_eq(fr_task_decode(t, bad, tn), FR_ERR_FORMAT);
        cr_assert(strstr(fr_errmsg(), "compresses no downlink"), "%s", fr_errmsg());
        free(bad);
        fr_task_free(t);
        fr_round_free(r);
    }
}
