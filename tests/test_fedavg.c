/* Federated training: FedAvg and the server strategies on a hand-computed toy, the
 * equivalence of one FedAvg round with one centralized full-batch gradient step,
 * determinism across thread counts and across checkpoint/resume, isolation of private
 * rows, client sampling, and checkpoint errors. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/core.h"
#include "fedrec/fl.h"
#include "fedrec/runtime.h"
#include "testutil.h"

/* ------------------------------------------------------------------ toy server */

static fr_model_config toy_mcfg(void) {
    fr_model_config m;
    fr_model_config_default(&m, FR_MODEL_MF);
    m.n_users = 1;
    m.n_items = 3;
    m.dim = 1;
    m.seed = 5;
    return m;
}

/* The three updates of the toy (tables: item factors, item biases; width 1 each). */
static void toy_update(fr_update *u, int k) {
    static const uint32_t widths[2] = {1, 1};
    static const uint64_t n[3] = {1, 2, 5};
    static const uint32_t cnt[3] = {2, 2, 1};
    static const uint32_t ids[3][2] = {{0, 1}, {1, 2}, {0, 0}};
    static const float v0[3][2] = {{0.8f, -0.4f}, {0.4f, 1.6f}, {-0.16f, 0}};
    static const float v1[3][2] = {{0.1f, 0.2f}, {-0.2f, 0.4f}, {0.08f, 0}};
    cr_assert_eq(fr_update_reset(u, 0, 2, widths), FR_OK);
    u->weight = n[k];
    u->client = (uint32_t)k;
    for (uint32_t t = 0; t < 2; t++) {
        cr_assert_eq(fr_update_table_resize(u, t, cnt[k]), FR_OK);
        for (uint32_t r = 0; r < cnt[k]; r++) {
            u->tables[t].ids[r] = ids[k][r];
            u->tables[t].values[r] = t == 0 ? v0[k][r] : v1[k][r];
        }
    }
}

/* What the client sends for update u in round `round` of controller s: u weighted and
 * quantized by the client (fr_result_quantize), answering s's federation. */
static fr_err toy_result(fr_result *res, fr_update *u, const fr_round *s, int round) {
    u->round = (uint32_t)round;
    fr_err e = fr_result_quantize(res, u, fr_round_fl_config(s), 0);
    res->config_crc = fr_round_config_crc(s);
    return e;
}

/* Runs `rounds` rounds of the toy (clients spread over workers as given) and returns the
 * shared parameters after minus before (6 floats: factors then biases). */
static void toy_run(fr_fl_config *cfg, int n_workers, const int *worker_of, int rounds, double out[6]) {
    fr_model_config m = toy_mcfg();
    fr_round *s = NULL;
    cr_assert_eq(fr_round_create(&s, &m, cfg, 3, n_workers), FR_OK);
    cr_assert_eq(fr_model_n_shared(fr_round_model(s)), 6);
    float w0[6];
    memcpy(w0, fr_model_params_const(fr_round_model(s)), sizeof w0);
    fr_update *u = NULL;
    cr_assert_eq(fr_update_create(&u), FR_OK);
    fr_result *res = NULL;
    cr_assert_eq(fr_result_create(&res), FR_OK);
    for (int r = 0; r < rounds; r++) {
        cr_assert_eq(fr_round_begin(s, NULL, NULL), FR_OK);
        for (int k = 2; k >= 0; k--) { /* any order */
            toy_update(u, k);
            cr_assert_eq(toy_result(res, u, s, r + 1), FR_OK);
            cr_assert_eq(fr_round_accept(s, res, worker_of[k]), FR_OK);
        }
        cr_assert_eq(fr_round_end(s, NULL), FR_OK);
    }
    cr_assert_eq(fr_round_completed(s), (uint32_t)rounds);
    const float *w = fr_model_params_const(fr_round_model(s));
    for (int i = 0; i < 6; i++) out[i] = (double)w[i] - (double)w0[i];
    fr_result_free(res);
    fr_update_free(u);
    fr_round_free(s);
}

static const int ONE_WORKER[3] = {0, 0, 0};

Test(fedavg, toy_three_clients_by_hand) {
    fr_fl_config cfg;
    fr_fl_config_default(&cfg, FR_MODEL_MF);
    double d[6];
    toy_run(&cfg, 1, ONE_WORKER, 1, d);
    /* N = 8. factors: row0 (0.8 - 5*0.16)/8 = 0, row1 (-0.4 + 2*0.4)/8 = 0.05, row2 2*1.6/8 = 0.4
     * biases: row0 (0.1 + 5*0.08)/8 = 0.0625, row1 (0.2 - 2*0.2)/8 = -0.025, row2 0.8/8 = 0.1 */
    const double want[6] = {0, 0.05, 0.4, 0.0625, -0.025, 0.1};
    for (int i = 0; i < 6; i++) cr_assert_float_eq(d[i], want[i], 2e-7, "param %d: %g vs %g", i, d[i], want[i]);

    cfg.server_lr = 2;
    toy_run(&cfg, 1, ONE_WORKER, 1, d);
    for (int i = 0; i < 6; i++) cr_assert_float_eq(d[i], 2 * want[i], 4e-7);
}

Test(fedavg, toy_row_normalised) {
    fr_fl_config cfg;
    fr_fl_config_default(&cfg, FR_MODEL_MF);
    cfg.row_norm = true;
    double d[6];
    toy_run(&cfg, 1, ONE_WORKER, 1, d);
    /* each row over its own clients: factors row0 over n = 1 + 5, row1 over 1 + 2, row2 over 2 */
    const double want[6] = {0, 0.4 / 3, 1.6, 0.5 / 6, -0.2 / 3, 0.4};
    for (int i = 0; i < 6; i++) cr_assert_float_eq(d[i], want[i], 2e-7, "param %d: %g vs %g", i, d[i], want[i]);
}

Test(fedavg, toy_item_sum) {
    fr_fl_config cfg;
    fr_fl_config_default(&cfg, FR_MODEL_MF);
    cfg.item_sum = true;
    double d[6];
    toy_run(&cfg, 1, ONE_WORKER, 1, d);
    /* each item row gets the plain sum of the deltas sent for it (no n_k weight):
     * factors row0 0.8 - 0.16, row1 -0.4 + 0.4, row2 1.6; biases row0 0.1 + 0.08,
     * row1 0.2 - 0.2, row2 0.4 */
    const double want[6] = {0.64, 0, 1.6, 0.18, 0, 0.4};
    for (int i = 0; i < 6; i++) cr_assert_float_eq(d[i], want[i], 6e-7, "param %d: %g vs %g", i, d[i], want[i]);
    cfg.row_norm = true;
    fr_round *s = NULL;
    fr_model_config m = toy_mcfg();
    cr_assert_eq(fr_round_create(&s, &m, &cfg, 3, 1), FR_ERR_INVALID);
    cr_assert(strstr(fr_errmsg(), "item_sum") != NULL, "%s", fr_errmsg());
}

Test(fedavg, workers_and_order_do_not_change_bits) {
    fr_fl_config cfg;
    fr_fl_config_default(&cfg, FR_MODEL_MF);
    double a[6], b[6];
    static const int SPREAD[3] = {2, 0, 1};
    toy_run(&cfg, 1, ONE_WORKER, 3, a);
    toy_run(&cfg, 3, SPREAD, 3, b);
    cr_assert(memcmp(a, b, sizeof a) == 0);
}

Test(fedavg, fedavgm_and_fedadam_by_hand) {
    fr_fl_config cfg;
    fr_fl_config_default(&cfg, FR_MODEL_MF);
    cfg.strategy = FR_STRATEGY_FEDAVGM;
    cfg.server_momentum = 0.9f;
    double d[6];
    toy_run(&cfg, 1, ONE_WORKER, 2, d);
    /* m1 = a, m2 = 0.9 a + a: two rounds move by 2.9 a */
    cr_assert_float_eq(d[2], 2.9 * 0.4, 1e-6);
    cr_assert_float_eq(d[4], 2.9 * -0.025, 1e-6);

    fr_fl_config_default(&cfg, FR_MODEL_MF);
    cfg.strategy = FR_STRATEGY_FEDADAM;
    cfg.server_lr = 0.01f;
    cfg.tau = 1e-3f;
    cfg.beta1 = 0.9f;
    cfg.beta2 = 0.99f;
    toy_run(&cfg, 1, ONE_WORKER, 1, d);
    /* row2 of the factors, delta 0.4: m = 0.04, v = 0.99 * 1e-6 + 0.01 * 0.16 = 0.00160099,
     * step = 0.01 * 0.04 / (sqrt(v) + 1e-3) = 0.0004 / 0.0410124 = 0.00975315 */
    cr_assert_float_eq(d[2], 0.00975315, 2e-7, "%g", d[2]);
    /* row0: delta 0 up to float rounding of the inputs (~4e-9): a negligible move */
    cr_assert_float_eq(d[0], 0.0, 1e-8, "%g", d[0]);

    cfg.strategy = FR_STRATEGY_FEDADAGRAD;
    toy_run(&cfg, 1, ONE_WORKER, 1, d);
    /* v = 0 + 0.16: step = 0.01 * 0.04 / (0.4 + 0.001) = 0.000997506 */
    cr_assert_float_eq(d[2], 0.000997506, 3e-8, "%g", d[2]); /* float ulp of w */
}

Test(fedavg, rejects_updates_of_another_shape) {
    fr_fl_config cfg;
    fr_fl_config_default(&cfg, FR_MODEL_MF);
    fr_model_config m = toy_mcfg();
    fr_round *s = NULL;
    cr_assert_eq(fr_round_create(&s, &m, &cfg, 3, 1), FR_OK);
    fr_update *u = NULL;
    cr_assert_eq(fr_update_create(&u), FR_OK);
    fr_result *res = NULL;
    cr_assert_eq(fr_result_create(&res), FR_OK);
    uint32_t w[1] = {1};
    cr_assert_eq(fr_update_reset(u, 0, 1, w), FR_OK);
    cr_assert_eq(fr_round_begin(s, NULL, NULL), FR_OK);
    cr_assert_eq(toy_result(res, u, s, 1), FR_OK);
    cr_assert_eq(fr_round_accept(s, res, 0), FR_ERR_INVALID);
    cr_assert(strstr(fr_errmsg(), "expected") != NULL, "%s", fr_errmsg());
    toy_update(u, 0);
    u->tables[0].ids[1] = 3;
    cr_assert_eq(toy_result(res, u, s, 1), FR_OK);
    cr_assert_eq(fr_round_accept(s, res, 0), FR_ERR_INVALID);
    cr_assert(strstr(fr_errmsg(), "row 3 out of range") != NULL, "%s", fr_errmsg());
    fr_result_free(res);
    fr_update_free(u);
    fr_round_free(s);
}

/* ------------------------------------------------------------------ equivalence */

static fr_dataset *small_ratings(void) {
    static const int64_t u[] = {10, 10, 10, 20, 20, 30, 30, 30, 30, 40};
    static const int64_t i[] = {1, 2, 3, 2, 4, 1, 3, 4, 5, 5};
    static const float r[] = {5, 3, 4, 2, 1, 4, 4, 5, 3, 2};
    fr_dataset *d = NULL;
    cr_assert_eq(fr_dataset_from_arrays(&d, 10, u, i, r, NULL), FR_OK);
    return d;
}

Test(fedavg, one_round_equals_one_full_batch_step) {
    fr_dataset *d = small_ratings();
    fr_model_config mc;
    fr_model_config_default(&mc, FR_MODEL_MF);
    mc.dim = 4;
    mc.mu = 3.4f;
    mc.seed = 9;
    mc.init_std = 0.5f;
    fr_fl_config cfg;
    fr_fl_config_default(&cfg, FR_MODEL_MF);
    cfg.seed = 9;
    cfg.batch = 1000;
    fr_optim_config_default(&cfg.local, FR_OPTIM_SGD);
    cfg.local.lr = 0.3f;
    fr_sim *sim = NULL;
    cr_assert_eq(fr_sim_create(&sim, &mc, &cfg, d, NULL), FR_OK);
    fr_round_stats st;
    cr_assert_eq(fr_sim_round(sim, &st), FR_OK);
    cr_assert_eq(st.clients, 4);
    cr_assert_eq(st.examples, 10);
    fr_model *fed = fr_sim_model(sim);

    /* reference: the same model, one step on the mean loss over the union of the data */
    mc.n_users = fr_dataset_n_users(d);
    mc.n_items = fr_dataset_n_items(d);
    fr_model *ref = NULL;
    cr_assert_eq(fr_model_create(&ref, &mc), FR_OK);
    uint32_t users[10], items[10];
    float lab[10];
    size_t n = 0;
    for (uint32_t u = 0; u < fr_dataset_n_users(d); u++) {
        const uint32_t *it;
        const float *ra;
        size_t k = fr_dataset_user(d, u, &it, &ra, NULL);
        for (size_t x = 0; x < k; x++) { users[n] = u; items[n] = it[x]; lab[n] = ra[x]; n++; }
    }
    fr_batch b = {users, items, lab, NULL, n, NULL};
    double maxdiff, maxmove;
    cr_assert(tu_sgd_step_diff(ref, fed, &b, 0.3, &maxdiff, &maxmove), "%s", fr_errmsg());
    cr_assert(maxmove > 1e-3, "the step must move the model (%g)", maxmove);
    cr_assert(maxdiff < 1e-6, "fedavg vs full batch: max diff %g", maxdiff);
    fr_model_free(ref);
    fr_sim_free(sim);
    fr_dataset_free(d);
}

/* ------------------------------------------------------------------ determinism */

static fr_dataset *synthetic(void) {
    fr_gen_opts go;
    fr_gen_opts_default(&go);
    go.users = 60;
    go.items = 90;
    go.interactions = 1500;
    go.seed = 3;
    fr_dataset *d = NULL;
    cr_assert_eq(fr_dataset_generate(&d, &go), FR_OK);
    return d;
}

static void neumf_cfg(fr_model_config *mc, fr_fl_config *cfg) {
    fr_model_config_default(mc, FR_MODEL_NEUMF);
    fr_fl_config_default(cfg, FR_MODEL_NEUMF);
    cfg->seed = 11;
    cfg->strategy = FR_STRATEGY_FEDADAM;
    cfg->server_lr = 0.01f;
    cfg->clients_per_round = 0.5;
    cfg->availability = 0.9;
    cfg->local_epochs = 2;
    cfg->batch = 16;
    cfg->row_norm = true;
}

static uint8_t *model_bytes(fr_sim *s, size_t *n) {
    uint8_t *b = NULL;
    fr_model_meta meta = {0};
    cr_assert_eq(fr_model_encode(fr_sim_model(s), &meta, &b, n), FR_OK);
    return b;
}

static uint8_t *train_w(const fr_dataset *d, int threads, int rounds, bool wire, size_t *n) {
    fr_model_config mc;
    fr_fl_config cfg;
    neumf_cfg(&mc, &cfg);
    fr_pool *pool = NULL;
    cr_assert_eq(fr_pool_create(&pool, threads), FR_OK);
    fr_sim *s = NULL;
    cr_assert_eq(fr_sim_create(&s, &mc, &cfg, d, pool), FR_OK);
    fr_sim_set_wire(s, wire);
    for (int r = 0; r < rounds; r++) {
        fr_round_stats st;
        cr_assert_eq(fr_sim_round(s, &st), FR_OK, "%s", fr_errmsg());
        cr_assert(st.clients > 0 && st.clients < 60);
        cr_assert(st.bytes_up > 0 && st.bytes_down > 0);
        cr_assert(isfinite(st.loss));
    }
    uint8_t *b = model_bytes(s, n);
    fr_sim_free(s);
    fr_pool_free(pool);
    return b;
}

static uint8_t *train(const fr_dataset *d, int threads, int rounds, size_t *n) {
    return train_w(d, threads, rounds, true, n);
}

Test(fedavg, same_bits_with_and_without_the_wire) {
    fr_dataset *d = synthetic();
    size_t n1, n2;
    uint8_t *a = train_w(d, 2, 3, true, &n1), *b = train_w(d, 2, 3, false, &n2);
    cr_assert(n1 == n2 && memcmp(a, b, n1) == 0);
    fr_model_bytes_free(a); fr_model_bytes_free(b);
    fr_dataset_free(d);
}

Test(fedavg, same_bits_for_1_2_4_threads) {
    fr_dataset *d = synthetic();
    size_t n1, n2, n4;
    uint8_t *a = train(d, 1, 4, &n1), *b = train(d, 2, 4, &n2), *c = train(d, 4, 4, &n4);
    cr_assert(n1 == n2 && n1 == n4);
    cr_assert(memcmp(a, b, n1) == 0, "1 vs 2 threads");
    cr_assert(memcmp(a, c, n1) == 0, "1 vs 4 threads");
    fr_model_bytes_free(a); fr_model_bytes_free(b); fr_model_bytes_free(c);
    fr_dataset_free(d);
}

Test(fedavg, resume_equals_uninterrupted) {
    fr_dataset *d = synthetic();
    size_t n10, n55;
    uint8_t *a = train(d, 2, 10, &n10);
    char *dir = tu_tmpdir();
    char path[1024];
    snprintf(path, sizeof path, "%s/run.ckpt", dir);
    fr_model_config mc;
    fr_fl_config cfg;
    neumf_cfg(&mc, &cfg);
    fr_sim *s = NULL;
    fr_round_stats st;
    cr_assert_eq(fr_sim_create(&s, &mc, &cfg, d, NULL), FR_OK);
    for (int r = 0; r < 5; r++) cr_assert_eq(fr_sim_round(s, &st), FR_OK);
    cr_assert_eq(fr_sim_checkpoint_save(s, path), FR_OK, "%s", fr_errmsg());
    fr_sim_free(s);
    s = NULL;
    cr_assert_eq(fr_sim_create(&s, &mc, &cfg, d, NULL), FR_OK);
    cr_assert_eq(fr_sim_checkpoint_load(s, path), FR_OK, "%s", fr_errmsg());
    cr_assert_eq(fr_round_completed(fr_sim_controller(s)), 5);
    for (int r = 0; r < 5; r++) cr_assert_eq(fr_sim_round(s, &st), FR_OK);
    cr_assert_eq(st.round, 10);
    uint8_t *b = model_bytes(s, &n55);
    cr_assert(n10 == n55 && memcmp(a, b, n10) == 0, "10 rounds vs 5 + resume + 5");

    /* a damaged checkpoint is a clear error, so is another run's */
    size_t len;
    char *bytes = tu_slurp(path, &len);
    cr_assert(bytes && len > 100);
    bytes[len / 2] ^= 0x10;
    FILE *f = fopen(path, "wb");
    fwrite(bytes, 1, len, f);
    fclose(f);
    cr_assert_eq(fr_sim_checkpoint_load(s, path), FR_ERR_CHECKSUM);
    cr_assert(strstr(fr_errmsg(), "damaged") != NULL, "%s", fr_errmsg());
    free(bytes);
    cr_assert_eq(fr_sim_checkpoint_save(s, path), FR_OK);
    fr_sim_free(s);
    cfg.seed = 12;
    cr_assert_eq(fr_sim_create(&s, &mc, &cfg, d, NULL), FR_OK);
    cr_assert_eq(fr_sim_checkpoint_load(s, path), FR_ERR_INVALID);
    cr_assert(strstr(fr_errmsg(), "seed 11") != NULL, "%s", fr_errmsg());
    snprintf(path, sizeof path, "%s/missing.ckpt", dir);
    cr_assert_eq(fr_sim_checkpoint_load(s, path), FR_ERR_IO);
    fr_sim_free(s);
    fr_model_bytes_free(a); fr_model_bytes_free(b);
    tu_rmtree(dir);
    free(dir);
    fr_dataset_free(d);
}

/* ------------------------------------------------------------------ isolation */

Test(fedavg, update_holds_only_shared_rows_and_private_rows_stay) {
    fr_dataset *d = synthetic();
    fr_model_config mc;
    fr_fl_config cfg;
    neumf_cfg(&mc, &cfg);
    mc.n_users = 1;
    mc.n_items = fr_dataset_n_items(d);
    mc.seed = cfg.seed;
    fr_model *global = NULL;
    cr_assert_eq(fr_model_create(&global, &mc), FR_OK);
    fr_client_ws *ws = NULL;
    cr_assert_eq(fr_client_ws_create(&ws, &mc, &cfg), FR_OK);
    fr_update *u = NULL;
    cr_assert_eq(fr_update_create(&u), FR_OK);
    const uint32_t *items;
    const float *ratings;
    size_t n = fr_dataset_user(d, 7, &items, &ratings, NULL);
    fr_client_data cd = {7, items, ratings, n, mc.n_items, 0, NULL};
    float gmf[8], mlp[32], gmf0[8];
    cr_assert_eq(fr_model_init_user_row(global, 0, 7), FR_OK);
    const fr_tensor *tg = fr_model_tensor(global, fr_model_tensor_find(global, "user_gmf"));
    const fr_tensor *tm = fr_model_tensor(global, fr_model_tensor_find(global, "user_mlp"));
    cr_assert(tg && tm && tg->cols == 8 && tm->cols == 32);
    memcpy(gmf, fr_model_params(global) + tg->offset, sizeof gmf);
    memcpy(mlp, fr_model_params(global) + tm->offset, sizeof mlp);
    memcpy(gmf0, gmf, sizeof gmf);
    float *priv[2] = {gmf, mlp};
    fr_client_report rep;
    cr_assert_eq(fr_client_fit(ws, 1, 7, &cd, global, &(fr_client_private){priv, NULL, NULL, NULL}, u, &rep), FR_OK, "%s", fr_errmsg());
    cr_assert(memcmp(gmf, gmf0, sizeof gmf) != 0, "private rows trained and kept by the client");
    cr_assert_eq(u->weight, n);
    cr_assert_eq(rep.examples, n * 5 * 2); /* 4 negatives, 2 epochs */
    /* dense part + item tables = the shared prefix; no room for user rows */
    size_t dense = 0, widths = 0;
    for (int t = 0; t < fr_model_n_tensors(global); t++) {
        const fr_tensor *tt = fr_model_tensor(global, t);
        if (tt->kind == FR_TENSOR_DENSE) dense += (size_t)tt->rows * tt->cols;
        if (tt->kind == FR_TENSOR_ITEM_TABLE) widths += tt->cols;
    }
    cr_assert_eq(u->dense_len, dense);
    cr_assert_eq(u->n_tables, 2);
    cr_assert_eq(u->tables[0].width + u->tables[1].width, widths);
    cr_assert_eq(dense + widths * mc.n_items, fr_model_n_shared(global));
    /* the rows: the client's positives are all there, and fewer than the catalogue */
    cr_assert(u->tables[0].count >= n && u->tables[0].count < mc.n_items);
    for (size_t x = 0; x < n; x++) {
        bool found = false;
        for (uint32_t r = 0; r < u->tables[0].count; r++) found |= u->tables[0].ids[r] == items[x];
        cr_assert(found, "positive %u in the update", items[x]);
    }
    /* an item outside the catalogue is refused */
    uint32_t bad[1] = {mc.n_items};
    fr_client_data cb = {7, bad, NULL, 1, mc.n_items, 0, NULL};
    cr_assert_eq(fr_client_fit(ws, 1, 7, &cb, global, &(fr_client_private){priv, NULL, NULL, NULL}, u, &rep), FR_ERR_INVALID);
    fr_update_free(u);
    fr_client_ws_free(ws);
    fr_model_free(global);
    fr_dataset_free(d);
}

/* ------------------------------------------------------------------ sampling */

Test(fedavg, client_sampling) {
    fr_fl_config cfg;
    fr_fl_config_default(&cfg, FR_MODEL_MF);
    uint32_t ids[100], ids2[100], k, k2;
    cfg.clients_per_round = 10;
    cr_assert_eq(fr_fl_sample(&cfg, 3, 100, ids, &k), FR_OK);
    cr_assert_eq(k, 10);
    for (uint32_t i = 1; i < k; i++) cr_assert(ids[i - 1] < ids[i], "increasing, distinct");
    cr_assert_eq(fr_fl_sample(&cfg, 3, 100, ids2, &k2), FR_OK);
    cr_assert(k2 == k && memcmp(ids, ids2, k * sizeof *ids) == 0, "seeded by round");
    cr_assert_eq(fr_fl_sample(&cfg, 4, 100, ids2, &k2), FR_OK);
    cr_assert(memcmp(ids, ids2, k * sizeof *ids) != 0, "another round, another sample");

    cfg.clients_per_round = 0.25;
    cr_assert_eq(fr_fl_sample(&cfg, 1, 10, ids, &k), FR_OK);
    cr_assert_eq(k, 3); /* ceil(2.5) */

    cfg.clients_per_round = 0;
    cfg.availability = 0.5;
    uint64_t total = 0;
    for (uint32_t r = 1; r <= 20; r++) {
        cr_assert_eq(fr_fl_sample(&cfg, r, 100, ids, &k), FR_OK);
        total += k;
    }
    cr_assert(total > 850 && total < 1150, "about half available: %llu of 2000", (unsigned long long)total);

    cfg.availability = 1.5;
    cr_assert_eq(fr_fl_config_check(&cfg), FR_ERR_INVALID);
    cr_assert(strstr(fr_errmsg(), "availability 1.5") != NULL, "%s", fr_errmsg());
    fr_strategy st;
    cr_assert_eq(fr_strategy_parse("fedyogi", &st), FR_OK);
    cr_assert_eq(st, FR_STRATEGY_FEDYOGI);
    cr_assert_eq(fr_strategy_parse("fedsgd", &st), FR_ERR_INVALID);

    cfg.availability = 1;
    cfg.item_lr_decay = 0;
    cr_assert_eq(fr_fl_config_check(&cfg), FR_ERR_INVALID);
    cr_assert(strstr(fr_errmsg(), "item lr decay 0: expected (0, 1]") != NULL, "%s", fr_errmsg());
    cfg.item_lr_decay = 1.5f;
    cr_assert_eq(fr_fl_config_check(&cfg), FR_ERR_INVALID);
    cfg.item_lr_decay = 0.9f;
    cr_assert_eq(fr_fl_config_check(&cfg), FR_OK);
    fr_optim_config_default(&cfg.item_local, FR_OPTIM_SGD);
    cfg.item_local.lr = -1;
    cr_assert_eq(fr_fl_config_check(&cfg), FR_ERR_INVALID);
    cr_assert(strstr(fr_errmsg(), "item optimizer: sgd: lr -1") != NULL, "%s", fr_errmsg());
}

/* ------------------------------------------------------------------ allocation */

Test(fedavg, rounds_reuse_their_scratch) {
    fr_dataset *d = small_ratings();
    fr_model_config mc;
    fr_model_config_default(&mc, FR_MODEL_MF);
    fr_fl_config cfg;
    fr_fl_config_default(&cfg, FR_MODEL_MF);
    fr_sim *s = NULL;
    fr_round_stats st;
    cr_assert_eq(fr_sim_create(&s, &mc, &cfg, d, NULL), FR_OK);
    cr_assert_eq(fr_sim_round(s, &st), FR_OK);
    fr_test_fail_alloc(0, false);
    cr_assert_eq(fr_sim_round(s, &st), FR_OK);
    cr_assert_eq(fr_test_alloc_count(), 0, "%ld allocations in a steady round", fr_test_alloc_count());
    fr_sim_free(s);
    fr_dataset_free(d);
}

Test(fedavg, allocation_failure_sweep) {
    fr_dataset *d = small_ratings();
    char *dir = tu_tmpdir();
    char path[1024];
    snprintf(path, sizeof path, "%s/a.ckpt", dir);
    fr_model_config mc;
    fr_model_config_default(&mc, FR_MODEL_MF);
    fr_fl_config cfg;
    fr_fl_config_default(&cfg, FR_MODEL_MF);
    cfg.strategy = FR_STRATEGY_FEDADAM;
    cfg.clients_per_round = 2;
    bool done = false;
    for (long k = 1; k < 2000 && !done; k++) {
        fr_test_fail_alloc(k, false);
        fr_sim *s = NULL;
        fr_round_stats st;
        fr_err e = fr_sim_create(&s, &mc, &cfg, d, NULL);
        if (!e) e = fr_sim_round(s, &st);
        if (!e) e = fr_sim_round(s, &st);
        if (!e) e = fr_sim_checkpoint_save(s, path);
        if (!e) e = fr_sim_checkpoint_load(s, path);
        fr_test_fail_alloc(0, false);
        cr_assert(e == FR_OK || e == FR_ERR_NOMEM || e == FR_ERR_IO, "k=%ld: %s", k, fr_strerror(e));
        if (e == FR_OK) done = true;
        fr_sim_free(s);
    }
    cr_assert(done);
    tu_rmtree(dir);
    free(dir);
    fr_dataset_free(d);
}

/* ------------------------------------------------------------------ fedprox */

static double fit_norm(fr_strategy strategy, float mu) {
    fr_dataset *d = synthetic();
    fr_model_config mc;
    fr_model_config_default(&mc, FR_MODEL_GMF);
    fr_fl_config cfg;
    fr_fl_config_default(&cfg, FR_MODEL_GMF);
    cfg.strategy = strategy;
    cfg.mu = mu;
    cfg.batch = 4;
    cfg.local_epochs = 3;
    fr_optim_config_default(&cfg.local, FR_OPTIM_SGD);
    cfg.local.lr = 0.5f;
    mc.n_users = 1;
    mc.n_items = fr_dataset_n_items(d);
    mc.seed = cfg.seed;
    mc.init_std = 0.3f;
    fr_model *global = NULL;
    cr_assert_eq(fr_model_create(&global, &mc), FR_OK);
    fr_client_ws *ws = NULL;
    cr_assert_eq(fr_client_ws_create(&ws, &mc, &cfg), FR_OK);
    fr_update *u = NULL;
    cr_assert_eq(fr_update_create(&u), FR_OK);
    const uint32_t *items;
    size_t n = fr_dataset_user(d, 3, &items, NULL, NULL);
    fr_client_data cd = {3, items, NULL, n, mc.n_items, 0, NULL};
    float row[8];
    memcpy(row, fr_model_params(global) + fr_model_tensor(global, fr_model_tensor_find(global, "user_gmf"))->offset,
           sizeof row);
    float *priv[1] = {row};
    fr_client_report rep;
    cr_assert_eq(fr_client_fit(ws, 1, 3, &cd, global, &(fr_client_private){priv, NULL, NULL, NULL}, u, &rep), FR_OK, "%s", fr_errmsg());
    double s = 0;
    for (uint32_t t = 0; t < u->n_tables; t++)
        for (size_t i = 0; i < (size_t)u->tables[t].count * u->tables[t].width; i++)
            s += (double)u->tables[t].values[i] * u->tables[t].values[i];
    for (uint32_t i = 0; i < u->dense_len; i++) s += (double)u->dense[i] * u->dense[i];
    fr_update_free(u);
    fr_client_ws_free(ws);
    fr_model_free(global);
    fr_dataset_free(d);
    return sqrt(s);
}

Test(fedavg, fedprox_pulls_the_client_towards_the_global_model) {
    double plain = fit_norm(FR_STRATEGY_FEDAVG, 5.0f), prox0 = fit_norm(FR_STRATEGY_FEDPROX, 0.0f),
           prox = fit_norm(FR_STRATEGY_FEDPROX, 1.0f);
    cr_assert(plain > 0);
    cr_assert_eq(plain, prox0, "mu = 0 is FedAvg's local fit");
    cr_assert(prox < 0.9 * plain, "|delta| %g with mu 1 vs %g without", prox, plain);
}
