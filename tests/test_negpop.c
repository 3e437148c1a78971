/* Popularity negatives (fr_neg_sampler FR_NEG_POPULARITY; src/model/examples.c, the
 * federated client's draw in src/fl/client.c): the alias draws follow the weights (a
 * chi-square against the weights, computed here); a user's negatives follow the item
 * counts + 1 over the items the user does not have (a chi-square against expectations
 * computed from the raw interactions, which a uniform draw fails); the batch reader's draws
 * and the stream's are the same items; the centralized trainer and the simulator are
 * bit-identical across thread counts; one federated round of one full-batch SGD step with
 * popularity negatives equals one centralized full-batch step on the same examples; a
 * client without the popularity refuses to step; the TASK's config block carries the
 * choice (uniform writes the bytes of before). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fedrec/fedrec.h"
#include "fedrec/runtime.h"
#include "fedrec/train.h"
#include "fl/fl_internal.h"
#include "model/examples.h"
#include "testutil.h"

/* Upper tail of chi-square with k degrees of freedom at p ~ 1e-4 (Wilson-Hilferty). */
static double chi2_bound(double k) {
    const double z = 3.719; /* the standard normal's 1e-4 quantile */
    double a = 2.0 / (9.0 * k);
    return k * pow(1.0 - a + z * sqrt(a), 3);
}

Test(negpop, alias_draws_follow_the_weights) {
    enum { N = 12, DRAWS = 120000 };
    double w[N], total = 0;
    for (int i = 0; i < N; i++) total += w[i] = i == 3 ? 0.05 : 1.0 + (i * 7 % 5) * 2.5; /* one rare item */
    fri_negpop p = {0};
    cr_assert_eq(fri_negpop_build(&p, w, N, 0), FR_OK, "%s", fr_errmsg());
    fr_rng r, r2;
    fr_rng_init(&r, 3, 0, 0, FR_PURPOSE_NEGATIVES);
    fr_rng_init(&r2, 3, 0, 0, FR_PURPOSE_NEGATIVES);
    uint64_t count[N] = {0};
    fri_rng_batch rb;
    fri_rng_batch_begin(&rb, &r2);
    for (int k = 0; k < DRAWS; k++) {
        uint32_t j = fri_negpop_draw_rng(&p, &r);
        cr_assert_lt(j, N);
        cr_assert_eq(fri_negpop_draw(&p, &rb), j, "the batch reader draws the stream's items (draw %d)", k);
        count[j]++;
    }
    fri_rng_batch_end(&rb);
    cr_assert_eq(fr_rng_u32(&r), fr_rng_u32(&r2), "and leaves the stream where the stream's draws do");
    double chi2 = 0;
    for (int i = 0; i < N; i++) {
        double e = DRAWS * w[i] / total;
        chi2 += (count[i] - e) * (count[i] - e) / e;
    }
    cr_assert_lt(chi2, chi2_bound(N - 1), "chi-square %.2f over %d degrees of freedom", chi2, N - 1);
    /* tempered: weights^0.5 (and the plain weights fail that check) */
    cr_assert_eq(fri_negpop_build(&p, w, N, 0.5), FR_OK, "%s", fr_errmsg());
    memset(count, 0, sizeof count);
    for (int k = 0; k < DRAWS; k++) count[fri_negpop_draw_rng(&p, &r)]++;
    double tot5 = 0, chi5 = 0, chi1 = 0;
    for (int i = 0; i < N; i++) tot5 += sqrt(w[i]);
    for (int i = 0; i < N; i++) {
        double e5 = DRAWS * sqrt(w[i]) / tot5, e1 = DRAWS * w[i] / total;
        chi5 += (count[i] - e5) * (count[i] - e5) / e5;
        chi1 += (count[i] - e1) * (count[i] - e1) / e1;
    }
    cr_assert_lt(chi5, chi2_bound(N - 1), "exponent 0.5: chi-square %.2f over %d degrees of freedom", chi5, N - 1);
    cr_assert_gt(chi1, 10 * chi2_bound(N - 1), "exponent 0.5 against the plain weights: %.2f", chi1);
    cr_assert_eq(fri_negpop_build(&p, w, N, 5), FR_ERR_INVALID);
    /* bad weights are refused, naming the item */
    w[5] = 0;
    cr_assert_eq(fri_negpop_build(&p, w, N, 0), FR_ERR_INVALID);
    cr_assert(strstr(fr_errmsg(), "item 5"), "%s", fr_errmsg());
    cr_assert_null(p.col);
    w[5] = NAN;
    cr_assert_eq(fri_negpop_build(&p, w, N, 0), FR_ERR_INVALID);
    fri_negpop_free(&p);
}

/* Each user's negatives over `epochs` streams, from uniform or popularity draws: counts per
 * item, and the chi-square against the popularity expectation computed here from the raw
 * interactions (item counts + 1 over the items the user does not have). */
static double user_chi2(const fr_dataset *d, bool pop, int epochs, double *dof) {
    const uint32_t nu = fr_dataset_n_users(d), ni = fr_dataset_n_items(d);
    double *w = calloc(ni, sizeof *w), *want = calloc(ni, sizeof *want), *w2 = calloc(ni, sizeof *w2);
    uint64_t *got = calloc(ni, sizeof *got);
    uint8_t *own = calloc(ni, 1);
    cr_assert(w && want && got && own && w2);
    for (uint32_t i = 0; i < ni; i++) w[i] = 1;
    for (uint32_t u = 0; u < nu; u++) {
        const uint32_t *it;
        size_t n = fr_dataset_user(d, u, &it, NULL, NULL);
        for (size_t x = 0; x < n; x++) w[it[x]] += 1;
    }
    fri_item_popularity(d, w2);
    cr_assert(!memcmp(w, w2, ni * sizeof *w), "fri_item_popularity: the counts + 1");
    fri_negpop p = {0};
    cr_assert_eq(fri_negpop_build(&p, w, ni, 0), FR_OK);
    fri_examples ex = {0};
    ex.pop = pop ? &p : NULL;
    for (int e = 0; e < epochs; e++)
        for (uint32_t u = 0; u < nu; u++) {
            const uint32_t *it;
            size_t n = fr_dataset_user(d, u, &it, NULL, NULL);
            for (size_t x = 0; x < n; x++) own[it[x]] = 1;
            double rest = 0;
            for (uint32_t i = 0; i < ni; i++) rest += own[i] ? 0 : w[i];
            for (uint32_t i = 0; i < ni; i++) want[i] += own[i] ? 0 : (double)n * w[i] / rest;
            fr_rng r;
            fr_rng_init(&r, 5, (uint32_t)e, u, FR_PURPOSE_NEGATIVES);
            fri_examples_clear(&ex);
            cr_assert_eq(fri_examples_add_user(&ex, d, u, u, FR_LOSS_BPR, 1, &r), FR_OK);
            cr_assert_eq(ex.n, n);
            for (size_t k = 0; k < ex.n; k++) {
                cr_assert(!own[ex.neg[k]], "user %u: its own item %u drawn as a negative", u, ex.neg[k]);
                got[ex.neg[k]]++;
            }
            for (size_t x = 0; x < n; x++) own[it[x]] = 0;
        }
    /* cells of expectation >= 5; the rest pooled into one */
    double chi2 = 0, pool_w = 0, pool_g = 0;
    int cells = 0;
    for (uint32_t i = 0; i < ni; i++) {
        if (want[i] < 5) { pool_w += want[i]; pool_g += (double)got[i]; continue; }
        chi2 += ((double)got[i] - want[i]) * ((double)got[i] - want[i]) / want[i];
        cells++;
    }
    if (pool_w >= 5) { chi2 += (pool_g - pool_w) * (pool_g - pool_w) / pool_w; cells++; }
    *dof = cells - 1;
    fri_examples_free(&ex);
    fri_negpop_free(&p);
    free(w); free(w2); free(want); free(got); free(own);
    return chi2;
}

Test(negpop, user_negatives_follow_the_item_counts_plus_one) {
    fr_dataset *d = tu_generate(200, 150, 6000, 7);
    double dof, chi2 = user_chi2(d, true, 6, &dof);
    cr_assert_gt(dof, 50);
    cr_assert_lt(chi2, chi2_bound(dof), "popularity negatives: chi-square %.1f over %.0f degrees of freedom", chi2, dof);
    /* the check can fail: uniform draws do not follow the counts */
    double dof_u, chi2_u = user_chi2(d, false, 6, &dof_u);
    cr_assert_gt(chi2_u, 3 * chi2_bound(dof_u), "uniform negatives: chi-square %.1f over %.0f", chi2_u, dof_u);
    fr_dataset_free(d);
}

/* Centralized: 1 and 2 threads give the same bits with popularity negatives, which differ
 * from the uniform ones. */
Test(negpop, trainer_bit_identical_across_threads) {
    fr_dataset *d = tu_generate(60, 80, 1500, 7);
    fr_model_config mc;
    fr_model_config_default(&mc, FR_MODEL_BPR);
    mc.n_users = fr_dataset_n_users(d);
    mc.n_items = fr_dataset_n_items(d);
    mc.dim = 8;
    float *bits[3] = {0};
    size_t np = 0;
    for (int run = 0; run < 3; run++) {
        fr_model *m = NULL;
        cr_assert_eq(fr_model_create(&m, &mc), FR_OK);
        fr_train_config tc;
        fr_train_config_default(&tc);
        tc.batch = 256; /* two parties on two threads */
        tc.negatives = 2;
        tc.threads = run == 1 ? 2 : 1;
        tc.neg_sampler = run < 2 ? FR_NEG_POPULARITY : FR_NEG_UNIFORM;
        fr_trainer *t = NULL;
        cr_assert_eq(fr_trainer_create(&t, m, d, &tc), FR_OK, "%s", fr_errmsg());
        double loss;
        for (int e = 0; e < 3; e++) cr_assert_eq(fr_trainer_epoch(t, &loss), FR_OK, "%s", fr_errmsg());
        fr_trainer_free(t);
        np = fr_model_n_params(m);
        bits[run] = malloc(np * sizeof(float));
        memcpy(bits[run], fr_model_params(m), np * sizeof(float));
        fr_model_free(m);
    }
    cr_assert(!memcmp(bits[0], bits[1], np * sizeof(float)), "1 and 2 threads: the same bits");
    cr_assert(memcmp(bits[0], bits[2], np * sizeof(float)), "popularity and uniform negatives differ");
    for (int run = 0; run < 3; run++) free(bits[run]);
    fr_train_config tc;
    fr_train_config_default(&tc);
    tc.neg_sampler = 2;
    cr_assert_eq(fr_train_config_check(&tc), FR_ERR_INVALID);
    fr_dataset_free(d);
}

static float *sim_bits(const fr_dataset *d, const fr_model_config *mc, const fr_fl_config *fc, int threads, size_t *np) {
    fr_pool *pool = NULL;
    cr_assert_eq(fr_pool_create(&pool, threads), FR_OK);
    fr_sim *s = NULL;
    cr_assert_eq(fr_sim_create(&s, mc, fc, d, pool), FR_OK, "%s", fr_errmsg());
    fr_round_stats st;
    for (int r = 0; r < 3; r++) cr_assert_eq(fr_sim_round(s, &st), FR_OK, "%s", fr_errmsg());
    *np = fr_model_n_params(fr_sim_model(s));
    float *b = malloc(*np * sizeof(float));
    memcpy(b, fr_model_params(fr_sim_model(s)), *np * sizeof(float));
    fr_sim_free(s);
    fr_pool_free(pool);
    return b;
}

Test(negpop, simulator_bit_identical_across_threads) {
    fr_dataset *d = tu_generate(60, 80, 1500, 7);
    fr_model_config mc;
    fr_model_config_default(&mc, FR_MODEL_BPR);
    mc.dim = 8;
    fr_fl_config fc;
    fr_fl_config_default(&fc, FR_MODEL_BPR);
    fc.clients_per_round = 0.5;
    fc.negatives = 2;
    fc.neg_sampler = FR_NEG_POPULARITY;
    size_t np;
    float *a = sim_bits(d, &mc, &fc, 1, &np), *b = sim_bits(d, &mc, &fc, 2, &np);
    cr_assert(!memcmp(a, b, np * sizeof(float)), "1 and 2 threads: the same bits");
    fc.neg_sampler = FR_NEG_UNIFORM;
    float *u = sim_bits(d, &mc, &fc, 1, &np);
    cr_assert(memcmp(a, u, np * sizeof(float)), "popularity and uniform negatives differ");
    free(a); free(b); free(u);
    fr_dataset_free(d);
}

/* One FedAvg round of one full-batch SGD step per client (a user each) with popularity
 * negatives = one centralized full-batch step on the union of the examples the centralized
 * rule draws from each user's stream (seed, round 1, user, NEGATIVES) and the popularity of
 * the training data. */
static void one_step(fr_model_kind kind) {
    fr_dataset *d = tu_generate(30, 40, 400, 7);
    fr_model_config mc;
    fr_model_config_default(&mc, kind);
    mc.dim = 4;
    mc.seed = 9;
    mc.init_std = 0.5f;
    mc.loss = FR_LOSS_BPR;
    fr_fl_config cfg;
    fr_fl_config_default(&cfg, kind);
    cfg.seed = 9;
    cfg.batch = 100000;
    cfg.negatives = 1;
    cfg.neg_sampler = FR_NEG_POPULARITY;
    cfg.neg_pop_exp = 0.5f; /* tempered, as the reference's table */
    fr_optim_config_default(&cfg.local, FR_OPTIM_SGD);
    cfg.local.lr = 0.3f;
    fr_sim *sim = NULL;
    cr_assert_eq(fr_sim_create(&sim, &mc, &cfg, d, NULL), FR_OK, "%s", fr_errmsg());
    fr_round_stats st;
    cr_assert_eq(fr_sim_round(sim, &st), FR_OK, "%s", fr_errmsg());
    fr_model *fed = fr_sim_model(sim);

    mc.n_users = fr_dataset_n_users(d);
    mc.n_items = fr_dataset_n_items(d);
    fr_model *ref = NULL;
    cr_assert_eq(fr_model_create(&ref, &mc), FR_OK);
    double *w = malloc(mc.n_items * sizeof *w);
    fri_item_popularity(d, w);
    fri_negpop p = {0};
    cr_assert_eq(fri_negpop_build(&p, w, mc.n_items, 0.5), FR_OK);
    fri_examples ex = {0};
    ex.pop = &p;
    for (uint32_t u = 0; u < mc.n_users; u++) {
        fr_rng r;
        fr_rng_init(&r, 9, 1, u, FR_PURPOSE_NEGATIVES);
        cr_assert_eq(fri_examples_add_user(&ex, d, u, u, FR_LOSS_BPR, 1, &r), FR_OK);
    }
    cr_assert_eq(st.examples, ex.n);
    fr_batch b = {ex.user, ex.item, NULL, ex.neg, ex.n, NULL};
    double maxdiff, maxmove;
    cr_assert(tu_sgd_step_diff(ref, fed, &b, 0.3, &maxdiff, &maxmove), "%s", fr_errmsg());
    cr_assert(maxmove > 1e-3, "the step must move the model (%g)", maxmove);
    cr_assert(maxdiff < 1e-6, "%s: fedavg vs full batch: max diff %g", fr_model_kind_name(kind), maxdiff);
    fri_examples_free(&ex);
    fri_negpop_free(&p);
    free(w);
    fr_model_free(ref);
    fr_sim_free(sim);
    fr_dataset_free(d);
}

Test(negpop, bpr_one_federated_step_equals_full_batch_step) { one_step(FR_MODEL_BPR); }
Test(negpop, lightfm_one_federated_step_equals_full_batch_step) {
    fr_model_kind k;
    cr_assert_eq(fr_model_kind_parse("lightfm", &k), FR_OK);
    one_step(k);
}

Test(negpop, client_without_popularity_refuses_and_config_carries_it) {
    fr_model_config mc;
    fr_model_config_default(&mc, FR_MODEL_BPR);
    mc.n_users = 1;
    mc.n_items = 10;
    mc.dim = 4;
    fr_fl_config fc;
    fr_fl_config_default(&fc, FR_MODEL_BPR);
    fc.neg_sampler = FR_NEG_POPULARITY;
    fc.neg_pop_exp = 0.75f;
    fr_model *global = NULL;
    cr_assert_eq(fr_model_create(&global, &mc), FR_OK);
    fr_client_ws *ws = NULL;
    cr_assert_eq(fr_client_ws_create(&ws, &mc, &fc), FR_OK, "%s", fr_errmsg());
    uint32_t items[] = {1, 4};
    fr_client_data cd = {.user = 0, .items = items, .n = 2, .n_items = 10};
    fr_update *up = NULL;
    cr_assert_eq(fr_update_create(&up), FR_OK);
    fr_client_report rep;
    float row[4] = {0};
    float *rows[] = {row};
    fr_client_private priv = {rows, NULL, NULL, NULL};
    cr_assert_eq(fr_client_fit(ws, 1, 0, &cd, global, &priv, up, &rep), FR_ERR_INVALID);
    cr_assert(strstr(fr_errmsg(), "popularity"), "%s", fr_errmsg());
    double w[10];
    for (int i = 0; i < 10; i++) w[i] = 1 + i;
    cr_assert_eq(fr_client_ws_set_popularity(ws, w, 9), FR_ERR_INVALID); /* another catalogue */
    w[2] = 0;
    cr_assert_eq(fr_client_ws_set_popularity(ws, w, 10), FR_ERR_INVALID); /* an item never drawn */
    w[2] = 3;
    cr_assert_eq(fr_client_ws_set_popularity(ws, w, 10), FR_OK, "%s", fr_errmsg());
    cr_assert_eq(fr_client_fit(ws, 1, 0, &cd, global, &priv, up, &rep), FR_OK, "%s", fr_errmsg());
    cr_assert_eq(rep.examples, 2);
    fr_update_free(up);
    fr_client_ws_free(ws);
    fr_model_free(global);

    /* the config block: uniform writes the bytes of before, pop one flag bit */
    fri_buf b0 = {0}, b1 = {0};
    fr_fl_config off;
    fr_fl_config_default(&off, FR_MODEL_BPR);
    fri_fl_config_put(&b0, &off);
    fri_fl_config_put(&b1, &fc);
    cr_assert_eq(b1.len, b0.len + 4, "the flag and the exponent");
    fri_rd rd = {.p = b1.data, .n = b1.len, .name = "test", .kind = "config"};
    fr_fl_config back;
    cr_assert_eq(fri_fl_config_get(&rd, &back), FR_OK, "%s", fr_errmsg());
    cr_assert_eq(back.neg_sampler, FR_NEG_POPULARITY);
    cr_assert_eq(back.neg_pop_exp, 0.75f);
    fri_rd rd0 = {.p = b0.data, .n = b0.len, .name = "test", .kind = "config"};
    cr_assert_eq(fri_fl_config_get(&rd0, &back), FR_OK);
    cr_assert_eq(back.neg_sampler, FR_NEG_UNIFORM);
    fri_buf_free(&b0);
    fri_buf_free(&b1);
    fc.neg_pop_exp = 4.5f;
    cr_assert_eq(fr_fl_config_check(&fc), FR_ERR_INVALID);
    fc.neg_pop_exp = 0.5f;
    fc.neg_sampler = FR_NEG_UNIFORM; /* an exponent without popularity negatives: refused, not ignored */
    cr_assert_eq(fr_fl_config_check(&fc), FR_ERR_INVALID);
    fc.neg_sampler = 5;
    cr_assert_eq(fr_fl_config_check(&fc), FR_ERR_INVALID);
    fr_neg_sampler s;
    cr_assert_eq(fr_neg_sampler_parse("pop", &s), FR_OK);
    cr_assert_eq(s, FR_NEG_POPULARITY);
    cr_assert_str_eq(fr_neg_sampler_name(s), "pop");
    cr_assert_eq(fr_neg_sampler_parse("zipf", &s), FR_ERR_INVALID);
    cr_assert(strstr(fr_errmsg(), "zipf"));
}
