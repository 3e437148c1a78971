/* The built-in baselines (src/model/model_base.c) and what a run does with them:
 *   bias   its fit is the exact minimiser of the regularised objective, checked against
 *          the normal equations solved by Gaussian elimination (independent of the ALS
 *          passes) and against a case worked by hand; its RMSE from fr_model_evaluate
 *          equals the one computed here from those biases;
 *   pop    scores are training-user counts; HR@K on a hand-made ranking;
 *   both   are registered kinds 6 and 7, round-trip through the model file, train
 *          centralized in one epoch through fr_run, are refused federated, and have no
 *          gradient training (pop) or a checked one (bias);
 *   run    fr_run_baseline picks bias for rating kinds and pop for ranking kinds; the
 *          default model follows the data (fr_run_default_kind) and a rating model on
 *          constant ratings is refused with advice (fr_run_check_data). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fedrec/fedrec.h"
#include "fedrec/model_eval.h"
#include "fedrec/run.h"
#include "fedrec/runtime.h"
#include "fedrec/train.h"
#include "testutil.h"

static fr_dataset *make(size_t n, const int64_t *u, const int64_t *i, const float *r) {
    fr_dataset *d = NULL;
    cr_assert_eq(fr_dataset_from_arrays(&d, n, u, i, r, NULL), FR_OK, "%s", fr_errmsg());
    return d;
}

static fr_model *model_for(fr_model_kind k, const fr_dataset *d, float reg_user, float reg_item) {
    fr_model_config c;
    fr_model_config_default(&c, k);
    c.n_users = fr_dataset_n_users(d);
    c.n_items = fr_dataset_n_items(d);
    if (reg_user >= 0 && k == FR_MODEL_BIAS) c.reg_user = reg_user;
    if (reg_item >= 0 && k == FR_MODEL_BIAS) c.reg_item = reg_item;
    fr_model *m = NULL;
    cr_assert_eq(fr_model_create(&m, &c), FR_OK, "%s", fr_errmsg());
    return m;
}

static float bias_of(const fr_model *m, const char *tensor, uint32_t row) {
    int t = fr_model_tensor_find(m, tensor);
    cr_assert(t >= 0, "no tensor %s", tensor);
    return fr_model_params_const(m)[fr_model_tensor(m, t)->offset + row];
}

/* Solves A x = b (n x n, row-major, A overwritten) by Gaussian elimination with partial
 * pivoting, in double. */
static void solve(double *A, double *b, double *x, int n) {
    for (int c = 0; c < n; c++) {
        int p = c;
        for (int r = c + 1; r < n; r++)
            if (fabs(A[r * n + c]) > fabs(A[p * n + c])) p = r;
        for (int k = 0; k < n; k++) { double t = A[c * n + k]; A[c * n + k] = A[p * n + k]; A[p * n + k] = t; }
        double t = b[c]; b[c] = b[p]; b[p] = t;
        for (int r = c + 1; r < n; r++) {
            double f = A[r * n + c] / A[c * n + c];
            for (int k = c; k < n; k++) A[r * n + k] -= f * A[c * n + k];
            b[r] -= f * b[c];
        }
    }
    for (int c = n - 1; c >= 0; c--) {
        double s = b[c];
        for (int k = c + 1; k < n; k++) s -= A[c * n + k] * x[k];
        x[c] = s / A[c * n + c];
    }
}

/* ------------------------------------------------------------------ bias */

Test(baseline, bias_by_hand) {
    /* one user, two items rated 5 and 3: mu = 4. With reg_user huge the user bias is ~0
     * and each item's bias is (r - mu) / (reg_item + 1): with reg_item 1, +0.5 and -0.5. */
    int64_t u[] = {1, 1}, i[] = {10, 20};
    float r[] = {5, 3};
    fr_dataset *d = make(2, u, i, r);
    fr_model *m = model_for(FR_MODEL_BIAS, d, 1e9f, 1.0f);
    double loss;
    cr_assert_eq(fr_model_fit(m, d, &loss), FR_OK, "%s", fr_errmsg());
    cr_assert_float_eq(fr_model_config_of(m)->mu, 4.0f, 1e-6);
    cr_assert_float_eq(bias_of(m, "item_bias", 0), 0.5f, 1e-6);
    cr_assert_float_eq(bias_of(m, "item_bias", 1), -0.5f, 1e-6);
    cr_assert_float_eq(bias_of(m, "user_bias", 0), 0.0f, 1e-6);
    cr_assert_float_eq(loss, 0.25, 1e-6, "training MSE: each rating off by 0.5");
    /* no regularisation on items, none on the user: any split fits exactly */
    fr_model_free(m);
    fr_dataset_free(d);
}

Test(baseline, bias_is_the_exact_regularised_minimum) {
    /* 4 users, 5 items, 12 ratings; the minimiser of
     *   sum (r - mu - b_u - b_i)^2 + lu sum b_u^2 + li sum b_i^2
     * solves (n_u + lu) b_u + sum_{i in I_u} b_i = sum_{i in I_u} (r - mu) and the same for
     * items: a linear system solved here directly. */
    int64_t u[] = {0, 0, 0, 1, 1, 2, 2, 2, 2, 3, 3, 3};
    int64_t i[] = {0, 1, 2, 0, 3, 1, 2, 3, 4, 0, 2, 4};
    float r[] = {5, 3, 4, 4, 1, 2, 5, 2, 3, 5, 4, 1};
    const int n = 12, NU = 4, NI = 5, N = NU + NI;
    const double lu = 2.5, li = 1.5;
    fr_dataset *d = make((size_t)n, u, i, r);
    fr_model *m = model_for(FR_MODEL_BIAS, d, (float)lu, (float)li);
    cr_assert_eq(fr_model_fit(m, d, NULL), FR_OK, "%s", fr_errmsg());
    double mu = 0;
    for (int k = 0; k < n; k++) mu += r[k];
    mu /= n;
    double A[9 * 9] = {0}, b[9] = {0}, x[9];
    for (int k = 0; k < NU; k++) A[k * N + k] = lu;
    for (int k = 0; k < NI; k++) A[(NU + k) * N + NU + k] = li;
    for (int k = 0; k < n; k++) {
        int a = (int)u[k], c = NU + (int)i[k];
        A[a * N + a] += 1; A[a * N + c] += 1; b[a] += r[k] - mu;
        A[c * N + c] += 1; A[c * N + a] += 1; b[c] += r[k] - mu;
    }
    solve(A, b, x, N);
    cr_assert_float_eq(fr_model_config_of(m)->mu, (float)mu, 1e-6);
    for (int k = 0; k < NU; k++) cr_assert_float_eq(bias_of(m, "user_bias", (uint32_t)k), x[k], 2e-6, "user %d", k);
    for (int k = 0; k < NI; k++)
        cr_assert_float_eq(bias_of(m, "item_bias", (uint32_t)k), x[NU + k], 2e-6, "item %d", k);

    /* RMSE on a test set, against the same biases (ids are raw = dense here) */
    int64_t tu[] = {0, 1, 3, 2}, ti[] = {3, 2, 1, 0};
    float tr[] = {2, 5, 4, 3};
    fr_dataset *test = make(4, tu, ti, tr);
    fr_eval_result res;
    fr_eval_opts o;
    fr_eval_opts_default(&o);
    cr_assert_eq(fr_model_evaluate(m, d, test, NULL, &o, NULL, &res), FR_OK, "%s", fr_errmsg());
    double se = 0;
    for (int k = 0; k < 4; k++) {
        double p = mu + x[tu[k]] + x[NU + ti[k]];
        p = p < 1 ? 1 : p > 5 ? 5 : p; /* clipped to the training range, as every evaluation */
        se += (p - tr[k]) * (p - tr[k]);
    }
    cr_assert(res.has_rating);
    cr_assert_float_eq(res.rmse, sqrt(se / 4), 1e-5, "rmse %f vs %f", res.rmse, sqrt(se / 4));

    /* the baseline of a rating run is this model */
    fr_model_kind bk = 0;
    fr_eval_result br;
    cr_assert_eq(fr_run_baseline(FR_MODEL_MF, d, test, NULL, &o, NULL, &bk, &br), FR_OK, "%s", fr_errmsg());
    cr_assert_eq(bk, FR_MODEL_BIAS);
    /* defaults reg 15 / 10 there, so only the kind of metric is compared */
    cr_assert(br.has_rating && !br.has_sampled && br.ratings == 4);
    fr_dataset_free(test);
    fr_model_free(m);
    fr_dataset_free(d);
}

Test(baseline, bias_gradient_matches_central_differences) {
    fr_dataset *d = tu_generate(12, 9, 60, 3);
    fr_model *m = model_for(FR_MODEL_BIAS, d, -1, -1);
    cr_assert_eq(fr_model_fit(m, d, NULL), FR_OK);
    fr_model_config c = *fr_model_config_of(m);
    float *p = fr_model_params(m);
    for (size_t k = 0; k < fr_model_n_params(m); k++) p[k] += 0.05f * (float)((k * 7) % 5) - 0.1f;
    uint32_t us[] = {0, 3, 5, 3}, is[] = {1, 2, 1, 8};
    float lab[] = {4, 2, 5, 1};
    fr_batch b = {us, is, lab, NULL, 4, NULL};
    fr_model_ws *ws = NULL;
    fr_grad *g = NULL;
    cr_assert_eq(fr_model_ws_create(&ws, m, 4), FR_OK);
    cr_assert_eq(fr_grad_create(&g, m), FR_OK);
    double L;
    cr_assert_eq(fr_model_loss_grad(m, ws, &b, g, &L), FR_OK, "%s", fr_errmsg());
    for (size_t k = 0; k < fr_model_n_params(m); k++) {
        float keep = p[k];
        double lp, lm, h = 1e-2;
        p[k] = keep + (float)h;
        cr_assert_eq(fr_model_loss(m, ws, &b, &lp), FR_OK);
        p[k] = keep - (float)h;
        cr_assert_eq(fr_model_loss(m, ws, &b, &lm), FR_OK);
        p[k] = keep;
        cr_assert_float_eq(fr_grad_data(g)[k], (lp - lm) / (2 * h), 1e-3, "param %zu", k);
    }
    (void)c;
    fr_grad_free(g);
    fr_model_ws_free(ws);
    fr_model_free(m);
    fr_dataset_free(d);
}

/* ------------------------------------------------------------------ pop */

Test(baseline, pop_counts_and_ranks) {
    /* items 1, 2 have 3 users each, item 3 one, item 4 two */
    int64_t au[] = {1, 2, 3, 1, 2, 1, 3, 4, 4}, ai[] = {1, 1, 1, 2, 2, 3, 4, 2, 4};
    float ar[] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    fr_dataset *all = make(9, au, ai, ar);
    fr_dataset *train = NULL, *test = NULL;
    cr_assert_eq(fr_dataset_split(all, FR_SPLIT_LOO, 0, 1, &train, &test), FR_OK, "%s", fr_errmsg());
    fr_model *m = model_for(FR_MODEL_POP, all, -1, -1);
    cr_assert_eq(fr_model_fit(m, all, NULL), FR_OK, "%s", fr_errmsg());
    cr_assert_eq(bias_of(m, "item_pop", 0), 3.0f);
    cr_assert_eq(bias_of(m, "item_pop", 1), 3.0f);
    cr_assert_eq(bias_of(m, "item_pop", 2), 1.0f);
    cr_assert_eq(bias_of(m, "item_pop", 3), 2.0f);
    uint32_t us[] = {0, 1, 2, 3}, is[] = {0, 1, 2, 3};
    float s[4];
    cr_assert_eq(fr_model_score(m, NULL, us, is, 4, s), FR_OK);
    cr_assert(s[0] == 3 && s[1] == 3 && s[2] == 1 && s[3] == 2, "a pop score is the item's count, for any user");
    /* no gradient training */
    fr_model_ws *ws = NULL;
    cr_assert_eq(fr_model_ws_create(&ws, m, 4), FR_OK);
    float lab[] = {1, 0, 1, 0};
    fr_batch b = {us, is, lab, NULL, 4, NULL};
    double L;
    cr_assert_eq(fr_model_loss(m, ws, &b, &L), FR_ERR_UNSUPPORTED);
    fr_model_ws_free(ws);
    fr_model_free(m);
    fr_dataset_free(train);
    fr_dataset_free(test);
    fr_dataset_free(all);
}

Test(baseline, pop_hr_on_sampled_candidates) {
    /* 27 users; item k (1..9) is held by the users below 3k, so popularity grows with k;
     * every user also holds item 10 last: its test item, so no training user has it */
    int64_t u[400], it[400], t[400];
    float r[400];
    size_t n = 0;
    for (int us = 0; us < 27; us++) {
        for (int k = 1; k < 10; k++)
            if (us < 3 * k) { u[n] = us; it[n] = k; r[n] = 1; t[n] = 1; n++; }
        u[n] = us; it[n] = 10; r[n] = 1; t[n] = 2; n++;
    }
    fr_dataset *all = NULL, *train = NULL, *test = NULL;
    cr_assert_eq(fr_dataset_from_arrays(&all, n, u, it, r, t), FR_OK, "%s", fr_errmsg());
    cr_assert_eq(fr_dataset_split(all, FR_SPLIT_LOO, 0, 1, &train, &test), FR_OK, "%s", fr_errmsg());
    fr_eval_opts o;
    fr_eval_opts_default(&o);
    fr_eval_result res;
    fr_model_kind bk = 0;
    /* full catalogue: a user's training items are excluded; item 10 (count 0) ranks below
     * the items k with 3k <= user the user has not seen (counts >= 3): at position
     * floor(user / 3), so hr@5 = 15 of 27 users, hr@10 = all (with a 28th user holding
     * item 10 alone, LOO would keep it in training and tie it with item 1) */
    cr_assert_eq(fr_run_baseline(FR_MODEL_NEUMF, train, test, NULL, &o, NULL, &bk, &res), FR_OK, "%s", fr_errmsg());
    cr_assert_eq(bk, FR_MODEL_POP);
    cr_assert(res.has_full && !res.has_rating);
    cr_assert(res.ks[0] == 5 && res.ks[1] == 10);
    cr_assert_float_eq(res.hr_full[0], 15.0 / 27.0, 1e-12, "hr@5_full %f", res.hr_full[0]);
    cr_assert_float_eq(res.hr_full[1], 1.0, 1e-12, "hr@10_full %f", res.hr_full[1]);
    fr_dataset_free(all);
    fr_dataset_free(train);
    fr_dataset_free(test);
}

/* ------------------------------------------------------------------ registry, file, run */

Test(baseline, kinds_and_model_file) {
    fr_model_kind k;
    cr_assert_eq(fr_model_kind_parse("pop", &k), FR_OK);
    cr_assert_eq(k, FR_MODEL_POP);
    cr_assert_eq(fr_model_kind_parse("bias", &k), FR_OK);
    cr_assert_eq(k, FR_MODEL_BIAS);
    cr_assert(fr_model_kind_is_explicit(FR_MODEL_BIAS) && !fr_model_kind_is_explicit(FR_MODEL_POP));
    cr_assert(fr_model_kind_is_closed_form(FR_MODEL_BIAS) && fr_model_kind_is_closed_form(FR_MODEL_POP));
    cr_assert(!fr_model_kind_is_closed_form(FR_MODEL_MF) && !fr_model_kind_is_closed_form(FR_MODEL_NEUMF));
    fr_dataset *d = tu_generate(20, 15, 120, 5);
    for (int kind = FR_MODEL_POP; kind <= FR_MODEL_BIAS; kind++) {
        fr_model *m = model_for((fr_model_kind)kind, d, 7.0f, 3.0f);
        cr_assert_eq(fr_model_fit(m, d, NULL), FR_OK);
        uint8_t *bytes = NULL;
        size_t nb;
        cr_assert_eq(fr_model_encode(m, NULL, &bytes, &nb), FR_OK);
        fr_model *back = NULL;
        cr_assert_eq(fr_model_decode(&back, bytes, nb, "<memory>", NULL), FR_OK, "%s", fr_errmsg());
        const fr_model_config *a = fr_model_config_of(m), *b = fr_model_config_of(back);
        cr_assert_eq(b->kind, kind);
        cr_assert(a->mu == b->mu && a->reg_user == b->reg_user && a->reg_item == b->reg_item);
        cr_assert_eq(fr_model_n_params(back), fr_model_n_params(m));
        cr_assert(!memcmp(fr_model_params_const(back), fr_model_params_const(m), fr_model_n_params(m) * sizeof(float)));
        fr_model_bytes_free(bytes);
        fr_model_free(back);
        fr_model_free(m);
    }
    /* a kind trained by gradients is not fitted */
    fr_model *mf = model_for(FR_MODEL_MF, d, -1, -1);
    cr_assert_eq(fr_model_fit(mf, d, NULL), FR_ERR_UNSUPPORTED);
    fr_model_free(mf);
    fr_dataset_free(d);
}

Test(baseline, run_centralized_one_epoch_and_refused_federated) {
    fr_dataset *all = tu_generate(40, 30, 500, 7), *train = NULL, *test = NULL;
    cr_assert_eq(fr_dataset_split(all, FR_SPLIT_LOO, 0, 1, &train, &test), FR_OK);
    fr_run_config c;
    cr_assert_eq(fr_run_config_preset(&c, "fedrec", FR_MODEL_BIAS, true, train), FR_OK);
    cr_assert_eq(c.loop.steps, 1u, "a baseline is one pass");
    c.threads = 1;
    fr_loop_summary s;
    fr_model *m = NULL;
    cr_assert_eq(fr_run(&c, train, test, NULL, NULL, NULL, &s, &m), FR_OK, "%s", fr_errmsg());
    cr_assert(s.completed == 1 && s.evaluated && s.last.has_rating && s.best_step == 1);
    cr_assert_eq(s.best_eval.rmse, s.last.rmse);
    fr_eval_result br;
    cr_assert_eq(fr_run_baseline(FR_MODEL_MF, train, test, NULL, NULL, NULL, NULL, &br), FR_OK);
    cr_assert_eq(br.rmse, s.last.rmse, "the baseline is what training bias gives: %f %f", br.rmse, s.last.rmse);
    fr_model_free(m);

    cr_assert_eq(fr_run_config_preset(&c, "fedrec", FR_MODEL_POP, false, train), FR_OK);
    cr_assert_eq(fr_run_config_check(&c), FR_ERR_INVALID);
    cr_assert(strstr(fr_errmsg(), "closed form") && strstr(fr_errmsg(), "not federated"), "%s", fr_errmsg());
    cr_assert_eq(fr_run(&c, train, test, NULL, NULL, NULL, NULL, &m), FR_ERR_INVALID);
    cr_assert_null(m);
    fr_dataset_free(all);
    fr_dataset_free(train);
    fr_dataset_free(test);
}

Test(baseline, default_model_follows_the_data) {
    int64_t u[] = {1, 1, 2, 2}, i[] = {1, 2, 1, 3};
    float ones[] = {1, 1, 1, 1}, stars[] = {1, 4, 5, 2};
    fr_dataset *imp = make(4, u, i, ones), *exp = make(4, u, i, stars);
    float v = 0;
    cr_assert(fr_run_data_implicit(imp, NULL, &v) && v == 1.0f);
    cr_assert(!fr_run_data_implicit(exp, NULL, NULL));
    cr_assert(!fr_run_data_implicit(imp, exp, NULL), "the test ratings count too");
    cr_assert_eq(fr_run_default_kind(imp, NULL), FR_MODEL_NEUMF);
    cr_assert_eq(fr_run_default_kind(exp, NULL), FR_MODEL_MF);
    cr_assert_eq(fr_run_check_data(FR_MODEL_MF, imp, NULL), FR_ERR_INVALID);
    cr_assert(strstr(fr_errmsg(), "every rating of this data is 1") && strstr(fr_errmsg(), "neumf"), "%s",
              fr_errmsg());
    cr_assert_eq(fr_run_check_data(FR_MODEL_BIAS, imp, NULL), FR_ERR_INVALID);
    cr_assert_eq(fr_run_check_data(FR_MODEL_BPR, imp, NULL), FR_OK);
    cr_assert_eq(fr_run_check_data(FR_MODEL_MF, exp, NULL), FR_OK);
    fr_dataset_free(imp);
    fr_dataset_free(exp);
}

/* ------------------------------------------------------------------ the loop's best step */

typedef struct steps {
    int n;
    double rmse[16];
} steps;

static int on_step(void *user, const fr_loop_step *st) {
    steps *s = user;
    cr_assert(st->evaluated && s->n < 16);
    s->rmse[s->n++] = st->eval.rmse;
    return 0;
}

Test(baseline, loop_summary_keeps_the_best_steps_metrics) {
    fr_dataset *all = tu_generate(40, 30, 500, 9), *train = NULL, *test = NULL;
    cr_assert_eq(fr_dataset_split(all, FR_SPLIT_LOO, 0, 1, &train, &test), FR_OK);
    fr_run_config c;
    cr_assert_eq(fr_run_config_preset(&c, "textbook", FR_MODEL_MF, true, train), FR_OK);
    c.loop.steps = 6;
    c.train.optim.lr = 0.5f; /* large steps: the RMSE goes up and down, so the best is not the last */
    c.threads = 1;
    steps seen = {0};
    fr_loop_summary s;
    cr_assert_eq(fr_run(&c, train, test, NULL, on_step, &seen, &s, NULL), FR_OK, "%s", fr_errmsg());
    cr_assert_eq(seen.n, 6);
    int best = 0;
    for (int k = 1; k < 6; k++)
        if (seen.rmse[k] < seen.rmse[best]) best = k;
    cr_assert(best < 5, "the schedule should make a step before the last the best");
    cr_assert_eq(s.best_step, (uint32_t)best + 1);
    cr_assert_eq(s.best_eval.rmse, seen.rmse[best], "the best step's metrics, not the last's");
    cr_assert_eq(s.best, seen.rmse[best]);
    cr_assert_eq(s.last.rmse, seen.rmse[5]);
    fr_dataset_free(all);
    fr_dataset_free(train);
    fr_dataset_free(test);
}
