/* Secure aggregation in the simulator (fr_sim_set_secagg): rounds whose results are
 * densified, masked and summed by the privacy layer give the plain rounds' model bit for
 * bit (sums modulo 2^64), for each way item rows are aggregated (mean, per-row weights,
 * sum) and under DP-FedAvg (the server's noise on the unmasked sum), for mf and neumf, on
 * 1 and 2 threads; bytes up are the dense masked vectors; a
 * round of one client is refused. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fedrec/fedrec.h"
#include "fedrec/runtime.h"

static fr_dataset *synthetic(void) {
    fr_gen_opts go;
    fr_gen_opts_default(&go);
    go.users = 40;
    go.items = 70;
    go.interactions = 900;
    go.seed = 4;
    fr_dataset *d = NULL;
    cr_assert_eq(fr_dataset_generate(&d, &go), FR_OK);
    return d;
}

typedef struct run_out {
    uint8_t *model;
    size_t n;
    uint64_t bytes_up;
    uint32_t clients;
} run_out;

/* agg: 0 mean, 1 row_norm, 2 item_sum, 3 DP-FedAvg (clip 1, noise 1, seeded noise) */
static run_out train(const fr_dataset *d, fr_model_kind kind, int agg, bool secagg, int threads, int rounds) {
    fr_model_config mc;
    fr_fl_config cfg;
    fr_model_config_default(&mc, kind);
    fr_fl_config_default(&cfg, kind);
    mc.dim = 8;
    cfg.seed = 5;
    cfg.clients_per_round = 0.4;
    cfg.local_epochs = 1;
    cfg.batch = 8;
    cfg.row_norm = agg == 1;
    cfg.item_sum = agg == 2;
    if (agg == 3) cfg.dp_clip = 1, cfg.dp_noise = 1, cfg.dp_seeded_noise = true;
    if (kind == FR_MODEL_NEUMF) cfg.strategy = FR_STRATEGY_FEDADAM, cfg.server_lr = 0.01f;
    fr_pool *pool = NULL;
    cr_assert_eq(fr_pool_create(&pool, threads), FR_OK);
    fr_sim *s = NULL;
    cr_assert_eq(fr_sim_create(&s, &mc, &cfg, d, pool), FR_OK, "%s", fr_errmsg());
    fr_sim_set_secagg(s, secagg);
    run_out o = {0};
    for (int r = 0; r < rounds; r++) {
        fr_round_stats st;
        cr_assert_eq(fr_sim_round(s, &st), FR_OK, "%s", fr_errmsg());
        o.bytes_up += st.bytes_up;
        o.clients += st.clients;
    }
    fr_model_meta meta = {0};
    cr_assert_eq(fr_model_encode(fr_sim_model(s), &meta, &o.model, &o.n), FR_OK);
    fr_sim_free(s);
    fr_pool_free(pool);
    return o;
}

Test(sim_secagg, same_model_as_plain_rounds, .timeout = 600) {
    fr_dataset *d = synthetic();
    const fr_model_kind kinds[2] = {FR_MODEL_MF, FR_MODEL_NEUMF};
    for (int k = 0; k < 2; k++)
        for (int agg = 0; agg < 4; agg++) {
            if (kinds[k] == FR_MODEL_NEUMF && agg >= 2) continue;
            run_out plain = train(d, kinds[k], agg, false, 1, 3);
            for (int threads = 1; threads <= 2; threads++) {
                run_out sec = train(d, kinds[k], agg, true, threads, 3);
                cr_assert_eq(sec.n, plain.n);
                cr_assert(memcmp(sec.model, plain.model, plain.n) == 0, "kind %d agg %d threads %d: models differ",
                          k, agg, threads);
                cr_assert_eq(sec.clients, plain.clients);
                cr_assert_gt(sec.bytes_up, plain.bytes_up); /* dense, 8 bytes a word */
                free(sec.model);
            }
            free(plain.model);
        }
    fr_dataset_free(d);
}

Test(sim_secagg, bytes_up_are_the_dense_masked_vectors) {
    fr_dataset *d = synthetic();
    run_out o = train(d, FR_MODEL_MF, 0, true, 1, 1);
    /* mf d=8, 70 items: shared prefix 70 × (8 + 1) = 630 words, + n_k; header 32 + length 8 */
    uint32_t items = fr_dataset_n_items(d);
    cr_assert_eq(o.bytes_up, (uint64_t)o.clients * (32 + 8 + 8 * ((uint64_t)items * 9 + 1)));
    free(o.model);
    fr_dataset_free(d);
}

Test(sim_secagg, one_client_rounds_refused) {
    fr_dataset *d = synthetic();
    fr_model_config mc;
    fr_fl_config cfg;
    fr_model_config_default(&mc, FR_MODEL_MF);
    fr_fl_config_default(&cfg, FR_MODEL_MF);
    cfg.clients_per_round = 1;
    fr_sim *s = NULL;
    cr_assert_eq(fr_sim_create(&s, &mc, &cfg, d, NULL), FR_OK);
    fr_sim_set_secagg(s, true);
    fr_round_stats st;
    cr_assert_eq(fr_sim_round(s, &st), FR_ERR_INVALID);
    cr_assert(strstr(fr_errmsg(), "at least 2 clients"), "%s", fr_errmsg());
    fr_sim_set_secagg(s, false);
    cr_assert_eq(fr_sim_round(s, &st), FR_OK, "%s", fr_errmsg()); /* the failed round applied nothing */
    fr_sim_free(s);
    fr_dataset_free(d);
}

/* Silos, two of them empty: sampled, they take part in the key exchange but send no
 * masked input (dropouts after ShareKeys): their pairwise masks are rebuilt from their
 * neighbours' shares, and the model is still the plain one. */
Test(sim_secagg, empty_silos_drop_out_and_are_recovered) {
    fr_dataset *d = synthetic();
    uint32_t nu = fr_dataset_n_users(d), silos = 8;
    uint64_t ptr[9];
    uint32_t *users = malloc(nu * sizeof *users);
    for (uint32_t u = 0; u < nu; u++) users[u] = u;
    /* silos 2 and 5 are empty; the others share the users evenly */
    uint32_t per = nu / 6, at = 0;
    for (uint32_t c = 0, full = 0; c < silos; c++) {
        ptr[c] = at;
        if (c != 2 && c != 5) at = ++full == 6 ? nu : at + per;
    }
    ptr[silos] = nu;
    fr_partition part = {silos, ptr, users};
    uint8_t *models[2];
    size_t sizes[2];
    for (int sec = 0; sec < 2; sec++) {
        fr_model_config mc;
        fr_fl_config cfg;
        fr_model_config_default(&mc, FR_MODEL_MF);
        fr_fl_config_default(&cfg, FR_MODEL_MF);
        mc.dim = 4;
        cfg.seed = 3;
        cfg.clients_per_round = 0; /* every silo, the empty ones too */
        fr_sim *s = NULL;
        cr_assert_eq(fr_sim_create_silos(&s, &mc, &cfg, d, &part, NULL), FR_OK, "%s", fr_errmsg());
        fr_sim_set_secagg(s, sec);
        for (int r = 0; r < 2; r++) {
            fr_round_stats st;
            cr_assert_eq(fr_sim_round(s, &st), FR_OK, "%s", fr_errmsg());
            cr_assert_eq(st.sampled, 8);
            cr_assert_eq(st.clients, 6);
        }
        fr_model_meta meta = {0};
        cr_assert_eq(fr_model_encode(fr_sim_model(s), &meta, &models[sec], &sizes[sec]), FR_OK);
        fr_sim_free(s);
    }
    cr_assert_eq(sizes[0], sizes[1]);
    cr_assert(memcmp(models[0], models[1], sizes[0]) == 0, "models differ");
    free(models[0]);
    free(models[1]);
    free(users);
    fr_dataset_free(d);
}
