/* Hiding which items a user touched (src/fl/hide.c, src/fl/attack.c): zero-valued decoys
 * add nothing (the model is bit-identical to the run without decoys, with and without
 * secure aggregation, with and without DP clipping); decoys follow the public popularity
 * (chi-square) and never are the client's own items; pseudo-gradient decoys do reach the
 * RESULT (more rows, more bytes) and change the model; the attack's scores on a small
 * case computed by hand; precision/recall/F1 of a guess; the random-guess F1 against the
 * hypergeometric pmf and a simulation; the config's checks and its TASK encoding. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fedrec/attack.h"
#include "fedrec/fedrec.h"
#include "fedrec/runtime.h"
#include "fl/fl_internal.h"

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
} run_out;

/* agg: 0 mean, 2 item_sum, 3 DP clip 1 (no noise); decoys: 0 none, 1 zero, 2 pseudo */
static run_out train(const fr_dataset *d, fr_model_kind kind, int agg, int decoys, bool secagg, int threads) {
    fr_model_config mc;
    fr_fl_config cfg;
    fr_model_config_default(&mc, kind);
    fr_fl_config_default(&cfg, kind);
    mc.dim = 8;
    cfg.seed = 5;
    cfg.clients_per_round = 0.4;
    cfg.local_epochs = 1;
    cfg.batch = 8;
    cfg.item_sum = agg == 2;
    if (agg == 3) cfg.dp_clip = 1;
    if (decoys) cfg.decoys = 2, cfg.decoy_zero = decoys == 1;
    fr_pool *pool = NULL;
    cr_assert_eq(fr_pool_create(&pool, threads), FR_OK);
    fr_sim *s = NULL;
    cr_assert_eq(fr_sim_create(&s, &mc, &cfg, d, pool), FR_OK, "%s", fr_errmsg());
    fr_sim_set_secagg(s, secagg);
    run_out o = {0};
    for (int r = 0; r < 3; r++) {
        fr_round_stats st;
        cr_assert_eq(fr_sim_round(s, &st), FR_OK, "%s", fr_errmsg());
        o.bytes_up += st.bytes_up;
    }
    fr_model_meta meta = {0};
    cr_assert_eq(fr_model_encode(fr_sim_model(s), &meta, &o.model, &o.n), FR_OK);
    fr_sim_free(s);
    fr_pool_free(pool);
    return o;
}

Test(hide, zero_decoys_add_nothing, .timeout = 600) {
    fr_dataset *d = synthetic();
    const fr_model_kind kinds[2] = {FR_MODEL_BPR, FR_MODEL_NEUMF};
    const int aggs[3] = {0, 2, 3};
    for (int k = 0; k < 2; k++)
        for (int a = 0; a < 3; a++) {
            run_out plain = train(d, kinds[k], aggs[a], 0, false, 1);
            run_out zero = train(d, kinds[k], aggs[a], 1, false, 2);
            run_out zsec = train(d, kinds[k], aggs[a], 1, true, 2);
            run_out sec = train(d, kinds[k], aggs[a], 0, true, 1);
            cr_assert_eq(zero.n, plain.n);
            cr_assert(!memcmp(zero.model, plain.model, plain.n), "kind %d agg %d: zero decoys changed the model", k,
                      aggs[a]);
            cr_assert(!memcmp(zsec.model, plain.model, plain.n), "kind %d agg %d: zero decoys under secagg", k, aggs[a]);
            cr_assert(zero.bytes_up > plain.bytes_up, "decoy rows are sent: %llu vs %llu",
                      (unsigned long long)zero.bytes_up, (unsigned long long)plain.bytes_up);
            cr_assert_eq(zsec.bytes_up, sec.bytes_up, "under secagg the dense vector is the same size");
            if (aggs[a] == 0) { /* pseudo-gradients are real rows to the server: they move the model */
                run_out ps = train(d, kinds[k], aggs[a], 2, false, 1);
                cr_assert(memcmp(ps.model, plain.model, plain.n), "pseudo decoys left the model unchanged");
                free(ps.model);
            }
            free(plain.model), free(zero.model), free(zsec.model), free(sec.model);
        }
    fr_dataset_free(d);
}

Test(hide, decoys_follow_popularity) {
    enum { N = 10, CLIENTS = 30000 };
    fri_hide *h = NULL;
    cr_assert_eq(fri_hide_create(&h, N), FR_OK);
    double w[N];
    double total = 0;
    for (int i = 0; i < N; i++) total += w[i] = i + 1; /* item i has weight i + 1 */
    cr_assert_eq(fri_hide_set_popularity(h, w, N), FR_OK);
    fr_fl_config cfg;
    fr_fl_config_default(&cfg, FR_MODEL_BPR);
    cfg.seed = 11;
    cfg.decoys = 1;
    /* one decoy per client (n_k = 1) and a client owning item 9: the first draw follows the
     * popularity over the other items */
    uint32_t own = 9;
    fr_client_data cd = {.user = 0, .items = &own, .n = 1, .n_items = N};
    uint64_t count[N] = {0};
    for (uint32_t c = 0; c < CLIENTS; c++) {
        const uint32_t *dec;
        size_t m;
        cr_assert_eq(fri_hide_draw(h, &cfg, c, &cd, 1, &dec, &m), FR_OK);
        cr_assert_eq(m, 1);
        cr_assert_neq(dec[0], own, "a client's own item drawn as a decoy");
        count[dec[0]]++;
    }
    double rest = total - w[own], chi2 = 0;
    for (int i = 0; i < N - 1; i++) {
        double e = CLIENTS * w[i] / rest;
        chi2 += (count[i] - e) * (count[i] - e) / e;
    }
    cr_assert_eq(count[own], 0);
    cr_assert_lt(chi2, 27.88, "chi-square %.2f over 8 degrees of freedom (p = 0.001: 26.12)", chi2); /* 9 cells */
    /* the same client draws the same decoys every time (they repeat round after round),
     * distinct, sorted, never its own */
    cfg.decoys = 3;
    uint32_t mine[4] = {0, 2, 4, 6};
    fr_client_data c4 = {.user = 0, .items = mine, .n = 4, .n_items = N};
    const uint32_t *d1;
    size_t m1;
    cr_assert_eq(fri_hide_draw(h, &cfg, 7, &c4, 2, &d1, &m1), FR_OK);
    cr_assert_eq(m1, 6); /* round(3 x 2) */
    uint32_t keep[6];
    memcpy(keep, d1, sizeof keep);
    for (size_t i = 0; i < m1; i++) {
        cr_assert(keep[i] % 2 == 1 || keep[i] == 8, "decoy %u is the client's own", keep[i]);
        if (i) cr_assert_gt(keep[i], keep[i - 1]);
    }
    cr_assert_eq(fri_hide_draw(h, &cfg, 7, &c4, 2, &d1, &m1), FR_OK);
    cr_assert(!memcmp(keep, d1, sizeof keep));
    /* bad popularity */
    w[3] = -1;
    cr_assert_eq(fri_hide_set_popularity(h, w, N), FR_ERR_INVALID);
    cr_assert_eq(fri_hide_set_popularity(h, w, N - 1), FR_ERR_INVALID);
    fri_hide_free(h);
}

/* A RESULT of one table of width 2 with rows (fixed point) for items 1, 3, 5. */
static fr_result *small_result(uint32_t client) {
    fr_result *r = NULL;
    cr_assert_eq(fr_result_create(&r), FR_OK);
    uint32_t width = 2;
    cr_assert_eq(fri_result_reset(r, 0, 1, &width), FR_OK);
    cr_assert_eq(fri_result_table_resize(r, 0, 3), FR_OK);
    r->client = client;
    const uint32_t ids[3] = {1, 3, 5};
    const int64_t v[6] = {2, 0, -1, 0, 0, 1}; /* R = [[2, 0], [-1, 0], [0, 1]] */
    memcpy(r->tables[0].ids, ids, sizeof ids);
    memcpy(r->tables[0].values, v, sizeof v);
    return r;
}

Test(hide, attack_scores_by_hand) {
    /* R^T R = diag(5, 1): v = (1, 0); cos = +1 (item 1), -1 (item 3), 0 (item 5). Items 1
     * and 5 lie on v's non-negative side (mean log(1 + popularity) (log 11 + log 2) / 2 >
     * log 2 of item 3's side): that is the positives' side. Scores per round: 1 + 1 = 2,
     * 1 - 1 = 0, 1 + 0 = 1. */
    double pop[6] = {0, 10, 0, 1, 0, 1};
    fr_attack *a = NULL;
    cr_assert_eq(fr_attack_create(&a, 2, 6, pop), FR_OK);
    fr_result *r = small_result(1);
    cr_assert_eq(fr_attack_observe(a, r), FR_OK);
    cr_assert_eq(fr_attack_observe(a, r), FR_OK);
    cr_assert_float_eq(fr_attack_item_score(a, 1, 1), 4.0, 1e-6);
    cr_assert_float_eq(fr_attack_item_score(a, 1, 3), 0.0, 1e-6);
    cr_assert_float_eq(fr_attack_item_score(a, 1, 5), 2.0, 1e-6);
    cr_assert_eq(fr_attack_item_score(a, 1, 0), 0.0);
    cr_assert_eq(fr_attack_rounds(a, 1), 2);
    cr_assert_eq(fr_attack_rounds(a, 0), 0);
    uint32_t out[6], n;
    cr_assert_eq(fr_attack_guess(a, 1, 2, out, &n), FR_OK);
    cr_assert_eq(n, 2);
    cr_assert_eq(out[0], 1);
    cr_assert_eq(out[1], 5);
    cr_assert_eq(fr_attack_guess(a, 1, 6, out, &n), FR_OK);
    cr_assert_eq(n, 3, "only seen items are guessed"); /* 1, 5, then 3 (score 0 but seen) */
    cr_assert_eq(out[2], 3);
    cr_assert_eq(fr_attack_guess(a, 1, 0, out, &n), FR_OK); /* present in every round */
    cr_assert_eq(n, 3);
    cr_assert_eq(fr_attack_guess(a, 0, 0, out, &n), FR_OK);
    cr_assert_eq(n, 0);
    /* a zero row tells nothing; without popularity the side with more rows is the positives' */
    r->tables[0].values[0] = 0; /* item 1's row now (0, 0) */
    fr_attack *b = NULL;
    cr_assert_eq(fr_attack_create(&b, 2, 6, NULL), FR_OK);
    cr_assert_eq(fr_attack_observe(b, r), FR_OK);
    cr_assert_eq(fr_attack_item_score(b, 1, 1), 0.0);
    cr_assert_eq(fr_attack_guess(b, 1, 0, out, &n), FR_OK);
    cr_assert_eq(n, 2, "the zero row is not 'present'");
    /* rows (-1, 0) and (0, 1): v = either axis (equal singular values; the start (1, 1)
     * converges to neither); each row's score is 1 +- |cos| <= 2 */
    cr_assert_leq(fr_attack_item_score(b, 1, 3), 2.0 + 1e-9);
    r->client = 2;
    cr_assert_eq(fr_attack_observe(b, r), FR_ERR_RANGE);
    fr_result_free(r);
    fr_attack_free(a);
    fr_attack_free(b);
}

Test(hide, score_sets) {
    const uint32_t g[3] = {1, 2, 3}, t[4] = {5, 3, 4, 2};
    fr_attack_score s;
    fr_attack_score_sets(g, 3, t, 4, &s);
    cr_assert_eq(s.hits, 2);
    cr_assert_float_eq(s.precision, 2.0 / 3, 1e-15);
    cr_assert_float_eq(s.recall, 0.5, 1e-15);
    cr_assert_float_eq(s.f1, 4.0 / 7, 1e-15);
    fr_attack_score_sets(NULL, 0, NULL, 0, &s);
    cr_assert_eq(s.f1, 0);
}

static double lchoose(double n, double k) { return lgamma(n + 1) - lgamma(k + 1) - lgamma(n - k + 1); }

Test(hide, random_f1) {
    /* against the hypergeometric pmf, summed independently */
    const uint32_t cases[][3] = {{20, 5, 7}, {1682, 60, 60}, {100, 1, 99}, {10, 10, 3}, {50, 7, 0}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        double N = cases[c][0], t = cases[c][1], g = cases[c][2], e = 0;
        for (double h = 0; h <= fmin(t, g); h++) {
            if (g - h > N - t) continue;
            double p = exp(lchoose(t, h) + lchoose(N - t, g - h) - lchoose(N, g));
            e += p * 2 * h / (g + t);
        }
        cr_assert_float_eq(fr_attack_random_f1(cases[c][0], cases[c][1], cases[c][2]), e, 1e-12, "case %zu", c);
    }
    /* and a simulation: 200,000 uniform guesses of 7 among 20, truth {0..4} */
    fr_rng r;
    fr_rng_init(&r, 3, 0, 0, FR_PURPOSE_TEST);
    double sum = 0, sum2 = 0;
    const uint32_t truth[5] = {0, 1, 2, 3, 4};
    for (int k = 0; k < 200000; k++) {
        uint32_t gs[7];
        cr_assert_eq(fr_rng_sample(&r, 20, 7, gs), FR_OK);
        fr_attack_score s;
        fr_attack_score_sets(gs, 7, truth, 5, &s);
        sum += s.f1;
        sum2 += s.f1 * s.f1;
    }
    double mean = sum / 200000, sd = sqrt((sum2 / 200000 - mean * mean) / 200000);
    cr_assert_lt(fabs(mean - fr_attack_random_f1(20, 5, 7)), 4 * sd, "simulated %g, exact %g", mean,
                 fr_attack_random_f1(20, 5, 7));
}

Test(hide, config) {
    fr_fl_config c;
    fr_fl_config_default(&c, FR_MODEL_BPR);
    c.decoys = -1;
    cr_assert_eq(fr_fl_config_check(&c), FR_ERR_INVALID);
    c.decoys = 101;
    cr_assert_eq(fr_fl_config_check(&c), FR_ERR_INVALID);
    c.decoys = 0;
    c.decoy_zero = true;
    cr_assert_eq(fr_fl_config_check(&c), FR_ERR_INVALID);
    c.decoys = 1;
    c.row_norm = true;
    c.item_sum = false;
    cr_assert_eq(fr_fl_config_check(&c), FR_ERR_INVALID);
    c.row_norm = false;
    cr_assert_eq(fr_fl_config_check(&c), FR_OK, "%s", fr_errmsg());
    /* the config block: off writes nothing; on round-trips */
    fri_buf b0 = {0}, b1 = {0};
    fr_fl_config off;
    fr_fl_config_default(&off, FR_MODEL_BPR);
    fri_fl_config_put(&b0, &off);
    fri_fl_config_put(&b1, &c);
    cr_assert_eq(b1.len, b0.len + 12);
    fri_rd rd = {.p = b1.data, .n = b1.len, .name = "test", .kind = "config"};
    fr_fl_config back;
    cr_assert_eq(fri_fl_config_get(&rd, &back), FR_OK, "%s", fr_errmsg());
    cr_assert_eq(back.decoys, 1);
    cr_assert(back.decoy_zero);
    fri_buf_free(&b0);
    fri_buf_free(&b1);
}
