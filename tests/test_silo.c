/* Silo clients (one client holding several users and their private rows) and the local
 * optimizer state kept across rounds (keep_private_optim), against independent
 * references:
 *   - a silo's fit gives the floats of a full-catalogue model holding exactly the silo's
 *     users, trained with the plain dense step on the same examples (bit for bit with
 *     dense_steps; to rounding with the default coasting, user rows coasting too);
 *   - a kept state gives, over two rounds, the floats of two optimizers by hand: one for
 *     the shared parameters that restarts every round, one for the user rows that never
 *     does;
 *   - the sim with a one-user-per-client partition is the sim without one, bit for bit;
 *     silos train, give the same bits for 1, 2 and 4 threads, resume from a checkpoint
 *     (kept state included) as if never stopped; bad partitions and checkpoints of
 *     another partition or state are clear errors. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "fedrec/fl.h"
#include "fedrec/runtime.h"
#include "model/examples.h"
#include "testutil.h"

static fr_dataset *synthetic(uint32_t users, uint32_t items, uint64_t inter) {
    fr_gen_opts go;
    fr_gen_opts_default(&go);
    go.users = users;
    go.items = items;
    go.interactions = inter;
    go.seed = 5;
    fr_dataset *d = NULL;
    cr_assert_eq(fr_dataset_generate(&d, &go), FR_OK);
    return d;
}

static double worst; /* the largest error seen, in units of the tolerance */

/* Bit for bit (tol_rel < 0) or to tol_rel of the tensor's largest change `scale` plus
 * 10 tol_rel of the value's own change. Coasting differs from the dense rule by float
 * rounding, and training amplifies any such difference (Adam turns a tiny change of a
 * tiny gradient into a change of its step, a 1-ulp change of one weight does the same),
 * so the coasting checks keep their fits short (one epoch, a few users) and their lr at
 * the anchors' 1e-3: at 1e-2 a kept state's second round amplifies 1-ulp changes of the
 * weights to the tolerance already. The dense runs check every path of the silo and
 * kept-state code bit for bit. */
static bool close_to(float want, float got, float scale, double tol_rel) {
    if (tol_rel < 0) return memcmp(&want, &got, 4) == 0;
    double tol = tol_rel * scale + 10 * tol_rel * fabs((double)want) + 1e-12;
    double r = fabs((double)want - got) / tol;
    if (r > worst) worst = r;
    return r <= 1.0;
}

typedef struct setup {
    fr_dataset *d;
    fr_model_config mc;
    fr_fl_config cfg;
    fr_model *global;
    uint32_t U;
    uint32_t users[8];
    int ut[4];                  /* user tables of global */
    int n_ut;
    float *rows[4 * 8];         /* the client's private rows: rows[t * U + j] */
    float *m1[4 * 8], *m2[4 * 8];
    uint64_t steps;
} setup;

static void setup_make(setup *s, fr_model_kind kind, const uint32_t *users, uint32_t U, bool dense, bool keep) {
    memset(s, 0, sizeof *s);
    s->d = synthetic(30, 120, 900);
    fr_model_config_default(&s->mc, kind);
    s->mc.n_users = fr_dataset_n_users(s->d);
    s->mc.n_items = fr_dataset_n_items(s->d);
    s->mc.seed = 3;
    fr_fl_config_default(&s->cfg, kind);
    s->cfg.seed = 17;
    s->cfg.local_epochs = 2;
    s->cfg.batch = 8;
    fr_optim_config_default(&s->cfg.local, FR_OPTIM_ADAM);
    s->cfg.local.lr = 0.01f;
    s->cfg.dense_steps = dense;
    s->cfg.keep_private_optim = keep;
    cr_assert_eq(fr_model_create(&s->global, &s->mc), FR_OK);
    s->U = U;
    memcpy(s->users, users, U * sizeof *users);
    for (int t = 0; t < fr_model_n_tensors(s->global); t++)
        if (fr_model_tensor(s->global, t)->kind == FR_TENSOR_USER_TABLE) s->ut[s->n_ut++] = t;
    const float *gw = fr_model_params_const(s->global);
    for (int i = 0; i < s->n_ut; i++) {
        const fr_tensor *tt = fr_model_tensor(s->global, s->ut[i]);
        for (uint32_t j = 0; j < U; j++) {
            float *r = malloc(tt->cols * sizeof *r), *a = calloc(tt->cols, sizeof *a), *b = calloc(tt->cols, sizeof *b);
            cr_assert(r && a && b);
            memcpy(r, gw + tt->offset + (size_t)users[j] * tt->cols, tt->cols * sizeof *r);
            s->rows[i * U + j] = r;
            s->m1[i * U + j] = a;
            s->m2[i * U + j] = b;
        }
    }
}

static void setup_free(setup *s) {
    for (uint32_t k = 0; k < (uint32_t)s->n_ut * s->U; k++) { free(s->rows[k]); free(s->m1[k]); free(s->m2[k]); }
    fr_model_free(s->global);
    fr_dataset_free(s->d);
}

/* The client under test: `rounds` fits (rounds 1..), the shared part reset to the global
 * model before each (the reference does the same), the private state carried. Returns
 * the last update. */
static fr_update *client_runs(setup *s, uint32_t client, int rounds) {
    fr_client_ws *ws = NULL;
    cr_assert_eq(fr_client_ws_create(&ws, &s->mc, &s->cfg), FR_OK);
    fr_client_user cu[8];
    for (uint32_t j = 0; j < s->U; j++) {
        cu[j].user = s->users[j];
        cu[j].n = fr_dataset_user(s->d, s->users[j], &cu[j].items, &cu[j].ratings, NULL);
    }
    fr_client_data cd = {0, NULL, NULL, 0, s->mc.n_items, s->U, cu};
    fr_client_private priv = {s->rows, s->cfg.keep_private_optim ? s->m1 : NULL,
                              s->cfg.keep_private_optim ? s->m2 : NULL,
                              s->cfg.keep_private_optim ? &s->steps : NULL};
    fr_update *up = NULL;
    cr_assert_eq(fr_update_create(&up), FR_OK);
    fr_client_report rep;
    for (int r = 1; r <= rounds; r++)
        cr_assert_eq(fr_client_fit(ws, (uint32_t)r, client, &cd, s->global, &priv, up, &rep), FR_OK, "%s",
                     fr_errmsg());
    fr_client_ws_free(ws);
    return up;
}

/* The reference: a model of exactly the client's users (row j = users[j]) over the whole
 * catalogue; per round, examples user by user (fri_examples_add_user, the same streams),
 * shuffled per epoch, and per step the plain dense rule: with keep, the shared part by
 * an optimizer reset every round and the user rows by one that is never reset, each
 * stepping the whole model on its part of the gradient (the other part zeroed: zero
 * moments and a zero gradient leave a parameter exactly where it is). */
static fr_model *reference_runs(setup *s, uint32_t client, int rounds) {
    fr_model_config rc = s->mc;
    rc.n_users = s->U;
    fr_model *r = NULL;
    cr_assert_eq(fr_model_create(&r, &rc), FR_OK);
    const float *gw = fr_model_params_const(s->global);
    float *rw = fr_model_params(r);
    for (int i = 0; i < s->n_ut; i++) {
        const fr_tensor *tt = fr_model_tensor(r, s->ut[i]), *gt = fr_model_tensor(s->global, s->ut[i]);
        for (uint32_t j = 0; j < s->U; j++)
            memcpy(rw + tt->offset + (size_t)j * tt->cols, gw + gt->offset + (size_t)s->users[j] * gt->cols,
                   tt->cols * sizeof(float));
    }
    fr_optim_config oc = s->cfg.local;
    fr_grad *g = NULL;
    fr_optim *oa = NULL, *ob = NULL;
    fr_model_ws *mws = NULL;
    cr_assert_eq(fr_grad_create(&g, r), FR_OK);
    cr_assert_eq(fr_optim_create(&oa, r, &oc), FR_OK);
    cr_assert_eq(fr_optim_create(&ob, r, &oc), FR_OK);
    cr_assert_eq(fr_model_ws_create(&mws, r, s->cfg.batch), FR_OK);
    size_t np = fr_model_n_params(r), ns = fr_model_n_shared(r);
    float *save = malloc(np * sizeof *save);
    cr_assert(save);
    fri_examples ex = {0};
    for (int round = 1; round <= rounds; round++) {
        fr_model_set_shared(r, gw); /* every round starts from the global shared part */
        fr_optim_reset(oa);
        fr_rng rneg, rshuf;
        fr_rng_init(&rneg, s->cfg.seed, (uint32_t)round, client, FR_PURPOSE_NEGATIVES);
        fr_rng_init(&rshuf, s->cfg.seed, (uint32_t)round, client, FR_PURPOSE_SHUFFLE);
        for (uint32_t ep = 0; ep < s->cfg.local_epochs; ep++) {
            fri_examples_clear(&ex);
            for (uint32_t j = 0; j < s->U; j++)
                cr_assert_eq(fri_examples_add_user(&ex, s->d, s->users[j], j, s->mc.loss, s->cfg.negatives, &rneg),
                             FR_OK);
            fri_examples_shuffle(&ex, &rshuf);
            bool bpr = s->mc.loss == FR_LOSS_BPR;
            for (size_t s0 = 0; s0 < ex.n; s0 += s->cfg.batch) {
                size_t nb = ex.n - s0 < s->cfg.batch ? ex.n - s0 : s->cfg.batch;
                fr_batch b = {ex.user + s0, ex.item + s0, bpr ? NULL : ex.label + s0, bpr ? ex.neg + s0 : NULL, nb, NULL};
                double l;
                memset(fr_grad_data(g), 0, np * sizeof(float));
                fr_grad_zero(g);
                cr_assert_eq(fr_model_loss_grad(r, mws, &b, g, &l), FR_OK);
                float *gg = fr_grad_data(g);
                if (!s->cfg.keep_private_optim) {
                    cr_assert_eq(fr_optim_step(oa, r, g), FR_OK);
                    continue;
                }
                memcpy(save, gg, np * sizeof(float));
                memset(gg + ns, 0, (np - ns) * sizeof(float)); /* shared part only */
                cr_assert_eq(fr_optim_step(oa, r, g), FR_OK);
                memcpy(gg, save, np * sizeof(float));
                memset(gg, 0, ns * sizeof(float)); /* user rows only */
                cr_assert_eq(fr_optim_step(ob, r, g), FR_OK);
            }
        }
    }
    fri_examples_free(&ex);
    free(save);
    fr_model_ws_free(mws);
    fr_optim_free(oa);
    fr_optim_free(ob);
    fr_grad_free(g);
    return r;
}

/* Compares the client's last update and private rows with the reference's last round. */
static void compare(setup *s, const fr_update *up, const fr_model *r, double tol) {
    const float *gw = fr_model_params_const(s->global), *rw = fr_model_params_const(r);
    size_t dpos = 0;
    uint32_t tb = 0;
    int ui = 0;
    for (int t = 0; t < fr_model_n_tensors(r); t++) {
        const fr_tensor *tt = fr_model_tensor(r, t);
        size_t len = (size_t)tt->rows * tt->cols;
        float scale = 0;
        if (tt->kind != FR_TENSOR_USER_TABLE)
            for (size_t i = 0; i < len; i++) scale = fmaxf(scale, fabsf(rw[tt->offset + i] - gw[tt->offset + i]));
        if (tt->kind == FR_TENSOR_DENSE) {
            for (size_t i = 0; i < len; i++) {
                float want = rw[tt->offset + i] - gw[tt->offset + i];
                cr_assert(close_to(want, up->dense[dpos + i], scale, tol), "%s[%zu]: %.9g vs %.9g", tt->name, i, want,
                          up->dense[dpos + i]);
            }
            dpos += len;
        } else if (tt->kind == FR_TENSOR_ITEM_TABLE) {
            const fr_update_table *ut = &up->tables[tb++];
            size_t k = 0;
            for (uint32_t row = 0; row < tt->rows; row++) {
                const float *a = rw + tt->offset + (size_t)row * tt->cols, *b = gw + tt->offset + (size_t)row * tt->cols;
                if (k < ut->count && ut->ids[k] == row) {
                    for (uint32_t j = 0; j < tt->cols; j++)
                        cr_assert(close_to(a[j] - b[j], ut->values[k * tt->cols + j], scale, tol),
                                  "%s row %u col %u: %.9g vs %.9g", tt->name, row, j, a[j] - b[j],
                                  ut->values[k * tt->cols + j]);
                    k++;
                } else {
                    cr_assert(memcmp(a, b, tt->cols * sizeof(float)) == 0, "row %u not sent but moved", row);
                }
            }
            cr_assert_eq(k, ut->count);
        } else {
            const fr_tensor *gt = fr_model_tensor(s->global, t);
            for (uint32_t j = 0; j < s->U; j++) {
                const float *want = rw + tt->offset + (size_t)j * tt->cols, *got = s->rows[ui * s->U + j];
                const float *g0 = gw + gt->offset + (size_t)s->users[j] * gt->cols;
                float sc = 0;
                for (uint32_t q = 0; q < tt->cols; q++) sc = fmaxf(sc, fabsf(want[q] - g0[q]));
                for (uint32_t q = 0; q < tt->cols; q++)
                    cr_assert(close_to(want[q] - g0[q], got[q] - g0[q], sc, tol), "%s user %u col %u: %.9g vs %.9g",
                              tt->name, s->users[j], q, want[q], got[q]);
            }
            ui++;
        }
    }
}

static void check_e(fr_model_kind kind, const uint32_t *users, uint32_t U, bool dense, bool keep, int rounds,
                    uint32_t E) {
    setup s;
    setup_make(&s, kind, users, U, dense, keep);
    s.cfg.local_epochs = E;
    if (!dense) s.cfg.local.lr = 0.001f; /* the anchors' lr: less amplification (see close_to) */
    fr_update *up = client_runs(&s, 4, rounds);
    size_t n = 0;
    for (uint32_t j = 0; j < U; j++) n += fr_dataset_user(s.d, users[j], NULL, NULL, NULL);
    cr_assert_eq(up->weight, n, "n_k = the silo's interactions");
    if (keep) cr_assert(s.steps > 0);
    fr_model *r = reference_runs(&s, 4, rounds);
    compare(&s, up, r, dense ? -1.0 : 1e-5); if (!dense) cr_log_info("worst %.3f", worst);
    fr_model_free(r);
    fr_update_free(up);
    setup_free(&s);
}

static void check(fr_model_kind kind, const uint32_t *users, uint32_t U, bool dense, bool keep, int rounds) {
    check_e(kind, users, U, dense, keep, rounds, 2);
}

static const uint32_t SILO[5] = {3, 11, 0, 27, 8};

Test(silo, fit_equals_dense_reference_bit_for_bit) {
    check(FR_MODEL_NEUMF, SILO, 5, true, false, 1);
    check(FR_MODEL_MF, SILO, 3, true, false, 1);
    check(FR_MODEL_BPR, SILO, 4, true, false, 1);
}

Test(silo, fit_with_coasting_equals_dense_reference) {
    worst = 0;
    check_e(FR_MODEL_NEUMF, SILO, 2, false, false, 1, 1);
    check_e(FR_MODEL_NEUMF, SILO, 3, false, false, 1, 1);
    check_e(FR_MODEL_MF, SILO, 3, false, false, 1, 1);
    check_e(FR_MODEL_GMF, SILO, 4, false, false, 1, 1);
    cr_log_info("largest error: %.3f of the tolerance", worst);
}

Test(silo, kept_private_state_equals_two_optimizers_by_hand) {
    const uint32_t one[1] = {6};
    check(FR_MODEL_NEUMF, one, 1, true, true, 3);
    check(FR_MODEL_NEUMF, SILO, 5, true, true, 2);
    check(FR_MODEL_MF, SILO, 2, true, true, 3);
    worst = 0;
    check_e(FR_MODEL_NEUMF, one, 1, false, true, 2, 1);
    check_e(FR_MODEL_NEUMF, SILO, 2, false, true, 2, 1);
    check_e(FR_MODEL_MF, SILO, 3, false, true, 2, 1);
    cr_log_info("largest error with coasting: %.3f of the tolerance", worst);
}

Test(silo, kept_state_must_match_the_config) {
    setup s;
    setup_make(&s, FR_MODEL_GMF, SILO, 2, false, false);
    fr_client_ws *ws = NULL;
    cr_assert_eq(fr_client_ws_create(&ws, &s.mc, &s.cfg), FR_OK);
    fr_client_user cu[2];
    for (uint32_t j = 0; j < 2; j++) {
        cu[j].user = SILO[j];
        cu[j].n = fr_dataset_user(s.d, SILO[j], &cu[j].items, &cu[j].ratings, NULL);
    }
    fr_client_data cd = {0, NULL, NULL, 0, s.mc.n_items, 2, cu};
    fr_update *up = NULL;
    cr_assert_eq(fr_update_create(&up), FR_OK);
    fr_client_report rep;
    fr_client_private with = {s.rows, s.m1, s.m2, &s.steps};
    cr_assert_eq(fr_client_fit(ws, 1, 0, &cd, s.global, &with, up, &rep), FR_ERR_INVALID);
    cr_assert(strstr(fr_errmsg(), "keep_private_optim is off") != NULL, "%s", fr_errmsg());
    fr_client_ws_free(ws);
    s.cfg.keep_private_optim = true;
    cr_assert_eq(fr_client_ws_create(&ws, &s.mc, &s.cfg), FR_OK);
    fr_client_private without = {s.rows, NULL, NULL, NULL};
    cr_assert_eq(fr_client_fit(ws, 1, 0, &cd, s.global, &without, up, &rep), FR_ERR_INVALID);
    cr_assert(strstr(fr_errmsg(), "missing") != NULL, "%s", fr_errmsg());
    /* a silo whose users have nothing to train on */
    cu[0].n = cu[1].n = 0;
    cr_assert_eq(fr_client_fit(ws, 1, 0, &cd, s.global, &with, up, &rep), FR_ERR_INVALID);
    cr_assert(strstr(fr_errmsg(), "no interaction") != NULL, "%s", fr_errmsg());
    fr_client_ws_free(ws);
    fr_update_free(up);
    setup_free(&s);
}

/* ------------------------------------------------------------------ the sim with silos */

static void sim_cfg(fr_model_config *mc, fr_fl_config *cfg, bool keep) {
    fr_model_config_default(mc, FR_MODEL_NEUMF);
    fr_fl_config_default(cfg, FR_MODEL_NEUMF);
    cfg->seed = 21;
    cfg->local_epochs = 2;
    cfg->batch = 16;
    cfg->clients_per_round = 0.6;
    cfg->item_sum = true;
    cfg->keep_private_optim = keep;
}

static uint8_t *run_sim(const fr_dataset *d, const fr_partition *p, bool keep, int threads, int rounds,
                        double *first_loss, double *last_loss, size_t *n) {
    fr_model_config mc;
    fr_fl_config cfg;
    sim_cfg(&mc, &cfg, keep);
    fr_pool *pool = NULL;
    cr_assert_eq(fr_pool_create(&pool, threads), FR_OK);
    fr_sim *s = NULL;
    cr_assert_eq(fr_sim_create_silos(&s, &mc, &cfg, d, p, pool), FR_OK, "%s", fr_errmsg());
    for (int r = 0; r < rounds; r++) {
        fr_round_stats st;
        cr_assert_eq(fr_sim_round(s, &st), FR_OK, "%s", fr_errmsg());
        if (r == 0 && first_loss) *first_loss = st.loss;
        if (last_loss) *last_loss = st.loss;
    }
    uint8_t *b = NULL;
    fr_model_meta meta = {0};
    cr_assert_eq(fr_model_encode(fr_sim_model(s), &meta, &b, n), FR_OK);
    fr_sim_free(s);
    fr_pool_free(pool);
    return b;
}

Test(silo, one_user_partition_is_the_default_sim) {
    fr_dataset *d = synthetic(40, 80, 1200);
    fr_partition *p = NULL;
    cr_assert_eq(fr_partition_make(&p, d, FR_PARTITION_USER, 0, 0, NULL, 1), FR_OK);
    size_t na, nb;
    uint8_t *a = run_sim(d, NULL, false, 2, 3, NULL, NULL, &na), *b = run_sim(d, p, false, 2, 3, NULL, NULL, &nb);
    cr_assert(na == nb && memcmp(a, b, na) == 0);
    fr_model_bytes_free(a);
    fr_model_bytes_free(b);
    fr_partition_free(p);
    fr_dataset_free(d);
}

Test(silo, silos_train_deterministically_for_any_thread_count) {
    fr_dataset *d = synthetic(40, 80, 1200);
    fr_partition *p = NULL;
    cr_assert_eq(fr_partition_make(&p, d, FR_PARTITION_IID, 6, 0, NULL, 4), FR_OK);
    for (int keep = 0; keep < 2; keep++) {
        size_t n1, n2, n4;
        double l0, l1;
        uint8_t *a = run_sim(d, p, keep, 1, 8, &l0, &l1, &n1);
        uint8_t *b = run_sim(d, p, keep, 2, 8, NULL, NULL, &n2), *c = run_sim(d, p, keep, 4, 8, NULL, NULL, &n4);
        cr_assert(n1 == n2 && n1 == n4);
        cr_assert(memcmp(a, b, n1) == 0 && memcmp(a, c, n1) == 0, "keep %d: 1, 2, 4 threads differ", keep);
        cr_assert(l1 < l0, "keep %d: training loss %g -> %g", keep, l0, l1);
        fr_model_bytes_free(a); fr_model_bytes_free(b); fr_model_bytes_free(c);
    }
    fr_partition_free(p);
    fr_dataset_free(d);
}

Test(silo, resume_with_silos_and_kept_state_equals_uninterrupted) {
    fr_dataset *d = synthetic(40, 80, 1200);
    fr_partition *p = NULL, *q = NULL;
    cr_assert_eq(fr_partition_make(&p, d, FR_PARTITION_DIRICHLET, 5, 0.5, NULL, 2), FR_OK);
    cr_assert_eq(fr_partition_make(&q, d, FR_PARTITION_IID, 5, 0, NULL, 2), FR_OK);
    size_t n8, n44;
    uint8_t *a = run_sim(d, p, true, 2, 8, NULL, NULL, &n8);
    char *dir = tu_tmpdir();
    char path[1024];
    snprintf(path, sizeof path, "%s/silo.ckpt", dir);
    fr_model_config mc;
    fr_fl_config cfg;
    sim_cfg(&mc, &cfg, true);
    fr_sim *s = NULL;
    fr_round_stats st;
    cr_assert_eq(fr_sim_create_silos(&s, &mc, &cfg, d, p, NULL), FR_OK);
    for (int r = 0; r < 4; r++) cr_assert_eq(fr_sim_round(s, &st), FR_OK);
    cr_assert_eq(fr_sim_checkpoint_save(s, path), FR_OK, "%s", fr_errmsg());
    fr_sim_free(s);
    cr_assert_eq(fr_sim_create_silos(&s, &mc, &cfg, d, p, NULL), FR_OK);
    cr_assert_eq(fr_sim_checkpoint_load(s, path), FR_OK, "%s", fr_errmsg());
    for (int r = 0; r < 4; r++) cr_assert_eq(fr_sim_round(s, &st), FR_OK);
    uint8_t *b = NULL;
    fr_model_meta meta = {0};
    cr_assert_eq(fr_model_encode(fr_sim_model(s), &meta, &b, &n44), FR_OK);
    cr_assert(n8 == n44 && memcmp(a, b, n8) == 0, "8 rounds vs 4 + resume + 4");
    fr_sim_free(s);
    /* another partition, or no kept state, is another run */
    cr_assert_eq(fr_sim_create_silos(&s, &mc, &cfg, d, q, NULL), FR_OK);
    cr_assert_eq(fr_sim_checkpoint_load(s, path), FR_ERR_INVALID);
    cr_assert(strstr(fr_errmsg(), "partition") != NULL, "%s", fr_errmsg());
    fr_sim_free(s);
    cfg.keep_private_optim = false;
    cr_assert_eq(fr_sim_create_silos(&s, &mc, &cfg, d, p, NULL), FR_OK);
    cr_assert_eq(fr_sim_checkpoint_load(s, path), FR_ERR_INVALID);
    cr_assert(strstr(fr_errmsg(), "kept optimizer state") != NULL, "%s", fr_errmsg());
    fr_sim_free(s);
    fr_model_bytes_free(a);
    fr_model_bytes_free(b);
    tu_rmtree(dir);
    free(dir);
    fr_partition_free(p);
    fr_partition_free(q);
    fr_dataset_free(d);
}

Test(silo, a_user_held_twice_is_an_error) {
    fr_dataset *d = synthetic(40, 80, 1200);
    uint64_t ptr[3] = {0, 2, 4};
    uint32_t users[4] = {1, 5, 7, 5};
    fr_partition p = {2, ptr, users};
    fr_model_config mc;
    fr_fl_config cfg;
    sim_cfg(&mc, &cfg, false);
    fr_sim *s = NULL;
    cr_assert_eq(fr_sim_create_silos(&s, &mc, &cfg, d, &p, NULL), FR_ERR_INVALID);
    cr_assert_null(s);
    cr_assert(strstr(fr_errmsg(), "user 5") && strstr(fr_errmsg(), "another client"), "%s", fr_errmsg());
    users[3] = 4000;
    cr_assert_eq(fr_sim_create_silos(&s, &mc, &cfg, d, &p, NULL), FR_ERR_INVALID);
    cr_assert(strstr(fr_errmsg(), "out of range") != NULL, "%s", fr_errmsg());
    fr_dataset_free(d);
}

/* Every allocation of a silo run with kept state may fail: a clear FR_ERR_NOMEM, nothing
 * leaked (the sanitizer build checks), and the first allocation count that is not failed
 * gives a working run. */
Test(silo, allocation_failure_sweep) {
    fr_dataset *d = synthetic(12, 20, 120);
    fr_partition *p = NULL;
    cr_assert_eq(fr_partition_make(&p, d, FR_PARTITION_IID, 3, 0, NULL, 1), FR_OK);
    char *dir = tu_tmpdir();
    char path[1024];
    snprintf(path, sizeof path, "%s/s.ckpt", dir);
    fr_model_config mc;
    fr_fl_config cfg;
    sim_cfg(&mc, &cfg, true);
    cfg.local_epochs = 1;
    bool done = false;
    for (long k = 1; k < 4000 && !done; k++) {
        fr_test_fail_alloc(k, false);
        fr_sim *s = NULL;
        fr_round_stats st;
        fr_err e = fr_sim_create_silos(&s, &mc, &cfg, d, p, NULL);
        if (!e) e = fr_sim_round(s, &st);
        if (!e) e = fr_sim_round(s, &st);
        if (!e) e = fr_sim_checkpoint_save(s, path);
        if (!e) e = fr_sim_checkpoint_load(s, path);
        fr_test_fail_alloc(0, false);
        cr_assert(e == FR_OK || e == FR_ERR_NOMEM || e == FR_ERR_IO, "k=%ld: %s: %s", k, fr_strerror(e),
                  fr_errmsg());
        if (e == FR_OK) done = true;
        fr_sim_free(s);
    }
    cr_assert(done);
    tu_rmtree(dir);
    free(dir);
    fr_partition_free(p);
    fr_dataset_free(d);
}
