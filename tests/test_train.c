/* Centralized trainer, the shared example builder, and the model evaluation glue. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fedrec/fedrec.h"
#include "fedrec/model_eval.h"
#include "fedrec/train.h"
#include "model/examples.h"
#include "model/model_internal.h"

static fr_dataset *gen(uint32_t users, uint32_t items, uint64_t n) {
    fr_gen_opts g;
    fr_gen_opts_default(&g);
    g.users = users;
    g.items = items;
    g.interactions = n;
    g.seed = 5;
    fr_dataset *d = NULL;
    cr_assert_eq(fr_dataset_generate(&d, &g), FR_OK, "%s", fr_errmsg());
    return d;
}

static fr_model *make(fr_model_kind kind, const fr_dataset *d) {
    fr_model_config c;
    fr_model_config_default(&c, kind);
    c.n_users = fr_dataset_n_users(d);
    c.n_items = fr_dataset_n_items(d);
    c.mu = 3.5f;
    fr_model *m = NULL;
    cr_assert_eq(fr_model_create(&m, &c), FR_OK, "%s", fr_errmsg());
    return m;
}

/* Trains `epochs` epochs with `threads` threads; returns the model, losses in loss[]. */
static fr_model *train(fr_model_kind kind, const fr_dataset *d, int threads, bool sparse, int epochs, double *loss) {
    fr_model *m = make(kind, d);
    fr_train_config tc;
    fr_train_config_default(&tc);
    tc.threads = threads;
    tc.batch = 128; /* smaller minibatches run the loop on one thread (train.c) */
    tc.optim.lr = kind == FR_MODEL_MF ? 0.01f : 0.005f;
    tc.optim.sparse_rows = sparse;
    fr_trainer *t = NULL;
    cr_assert_eq(fr_trainer_create(&t, m, d, &tc), FR_OK, "%s", fr_errmsg());
    for (int e = 0; e < epochs; e++) cr_assert_eq(fr_trainer_epoch(t, &loss[e]), FR_OK, "%s", fr_errmsg());
    cr_assert_eq(fr_trainer_epochs(t), (uint64_t)epochs);
    fr_trainer_free(t);
    return m;
}

Test(train, loss_falls_on_generated_data) {
    fr_dataset *d = gen(150, 80, 3000);
    fr_model_kind kinds[] = {FR_MODEL_MF, FR_MODEL_GMF, FR_MODEL_NEUMF};
    for (int k = 0; k < 3; k++) {
        double loss[6];
        fr_model *m = train(kinds[k], d, 2, false, 6, loss);
        cr_assert(isfinite(loss[0]) && isfinite(loss[5]));
        cr_assert_lt(loss[5], 0.9 * loss[0], "%s: loss %g -> %g", fr_model_kind_name(kinds[k]), loss[0], loss[5]);
        fr_model_free(m);
    }
    fr_dataset_free(d);
}

Test(train, identical_models_for_1_2_and_4_threads) {
    fr_dataset *d = gen(120, 60, 2500);
    fr_model_kind kinds[] = {FR_MODEL_MF, FR_MODEL_NEUMF, FR_MODEL_BPR};
    for (int k = 0; k < 3; k++)
        for (int sparse = 0; sparse < 2; sparse++) {
            double l1[2], l2[2], l4[2];
            fr_model *a = train(kinds[k], d, 1, sparse, 2, l1);
            fr_model *b = train(kinds[k], d, 2, sparse, 2, l2);
            fr_model *c = train(kinds[k], d, 4, sparse, 2, l4);
            size_t n = fr_model_n_params(a) * sizeof(float);
            cr_assert(!memcmp(fr_model_params(a), fr_model_params(b), n), "%s sparse=%d: 1 vs 2 threads",
                      fr_model_kind_name(kinds[k]), sparse);
            cr_assert(!memcmp(fr_model_params(a), fr_model_params(c), n), "%s sparse=%d: 1 vs 4 threads",
                      fr_model_kind_name(kinds[k]), sparse);
            cr_assert_eq(l1[1], l2[1]);
            cr_assert_eq(l1[1], l4[1]);
            fr_model_free(a);
            fr_model_free(b);
            fr_model_free(c);
        }
    fr_dataset_free(d);
}

Test(train, one_shard_equals_the_plain_minibatch_loop) {
    /* shards = 1 must be exactly fri_examples_fit over the same examples */
    fr_dataset *d = gen(60, 40, 900);
    fr_model *m = make(FR_MODEL_GMF, d), *ref = make(FR_MODEL_GMF, d);
    fr_train_config tc;
    fr_train_config_default(&tc);
    tc.shards = 1;
    tc.threads = 2;
    tc.batch = 32;
    fr_trainer *t = NULL;
    cr_assert_eq(fr_trainer_create(&t, m, d, &tc), FR_OK);
    double loss;
    cr_assert_eq(fr_trainer_epoch(t, &loss), FR_OK);
    /* the reference: examples user by user with the same streams, then the same shuffle */
    fri_examples ex = {0};
    for (uint32_t u = 0; u < fr_dataset_n_users(d); u++) {
        fr_rng r;
        fr_rng_init(&r, tc.seed, 0, u, FR_PURPOSE_NEGATIVES);
        cr_assert_eq(fri_examples_add_user(&ex, d, u, u, FR_LOSS_BCE, tc.negatives, &r), FR_OK);
    }
    fr_rng r;
    fr_rng_init(&r, tc.seed, 0, 0, FR_PURPOSE_SHUFFLE);
    fri_examples_shuffle(&ex, &r);
    fr_model_ws *ws = NULL;
    fr_grad *g = NULL;
    fr_optim *o = NULL;
    cr_assert_eq(fr_model_ws_create(&ws, ref, tc.batch), FR_OK);
    cr_assert_eq(fr_grad_create(&g, ref), FR_OK);
    cr_assert_eq(fr_optim_create(&o, ref, &tc.optim), FR_OK);
    double sum = 0;
    cr_assert_eq(fri_examples_fit(&ex, tc.batch, ref, ws, g, o, &sum), FR_OK);
    cr_assert(!memcmp(fr_model_params(m), fr_model_params(ref), fr_model_n_params(m) * sizeof(float)));
    cr_assert_float_eq(loss, sum / (double)ex.n, 1e-12);
    fri_examples_free(&ex);
    fr_model_ws_free(ws);
    fr_grad_free(g);
    fr_optim_free(o);
    fr_trainer_free(t);
    fr_model_free(m);
    fr_model_free(ref);
    fr_dataset_free(d);
}

/* The one minibatch loop: minibatches in order (the last one short), the rule's callbacks
 * in order for each, the loss kept as sum of mean x examples part by part, added to what
 * the caller's sum held, and the first callback error ends the pass and is returned. */
typedef struct rule_log {
    char calls[64];          /* 'b'efore 'g'radient 'a'fter 's'tep, in order */
    size_t at, sizes[8], n_batches;
    const fri_examples *ex;
    int fail_at;             /* fail the step of this minibatch (-1: never) */
} rule_log;

static void logc(rule_log *l, char c) { if (l->at < sizeof l->calls - 1) l->calls[l->at++] = c; }
static fr_err r_before(void *p, const fr_batch *b) {
    rule_log *l = p;
    logc(l, 'b');
    cr_assert_eq(b->users, l->ex->user + 4 * l->n_batches); /* a view of the examples */
    cr_assert_null(b->neg);                                 /* BCE: labels, no negatives */
    cr_assert_eq(b->label, l->ex->label + 4 * l->n_batches);
    l->sizes[l->n_batches] = b->n;
    return FR_OK;
}
static fr_err r_grad(void *p, const fr_batch *b, fri_step_loss *loss) {
    logc(p, 'g');
    loss->parts = 2; /* as a trainer's shards */
    loss->mean[0] = 0.5;
    loss->n[0] = 1;
    loss->mean[1] = 0.25;
    loss->n[1] = b->n - 1;
    return FR_OK;
}
static fr_err r_after(void *p, const fr_batch *b) { (void)b; logc(p, 'a'); return FR_OK; }
static fr_err r_step(void *p, const fr_batch *b) {
    (void)b;
    rule_log *l = p;
    logc(l, 's');
    if ((int)l->n_batches++ == l->fail_at) return fri_fail(FR_ERR_RANGE, "step %d refused", l->fail_at);
    return FR_OK;
}

Test(train, one_minibatch_loop_calls_the_rule_in_order) {
    fri_examples ex = {0};
    cr_assert_eq(fri_examples_reserve(&ex, 10), FR_OK);
    for (size_t i = 0; i < 10; i++) { ex.user[i] = (uint32_t)i; ex.item[i] = 0; ex.label[i] = 1; ex.neg[i] = 0; }
    ex.n = 10;
    rule_log l = {.ex = &ex, .fail_at = -1};
    fri_step_rule rule = {&l, r_before, r_grad, r_after, r_step};
    double sum = 1.0;
    cr_assert_eq(fri_examples_run(&ex, 4, FR_LOSS_BCE, &rule, &sum), FR_OK);
    cr_assert_str_eq(l.calls, "bgasbgasbgas");
    cr_assert_eq(l.n_batches, 3);
    cr_assert(l.sizes[0] == 4 && l.sizes[1] == 4 && l.sizes[2] == 2);
    double want = 1.0;
    for (int k = 0; k < 3; k++) {
        want += 0.5 * 1.0;
        want += 0.25 * (double)(l.sizes[k] - 1);
    }
    cr_assert_eq(sum, want);
    /* optional callbacks may be NULL */
    memset(l.calls, 0, sizeof l.calls);
    l.at = l.n_batches = 0;
    fri_step_rule bare = {&l, NULL, r_grad, NULL, r_step};
    sum = 0;
    cr_assert_eq(fri_examples_run(&ex, 4, FR_LOSS_BCE, &bare, &sum), FR_OK);
    cr_assert_str_eq(l.calls, "gsgsgs");
    /* an error ends the pass: nothing after it runs, and its loss is not counted */
    memset(l.calls, 0, sizeof l.calls);
    l.at = l.n_batches = 0;
    l.fail_at = 1;
    sum = 0;
    cr_assert_eq(fri_examples_run(&ex, 4, FR_LOSS_BCE, &rule, &sum), FR_ERR_RANGE);
    cr_assert(strstr(fr_errmsg(), "step 1 refused"), "%s", fr_errmsg());
    cr_assert_str_eq(l.calls, "bgasbgas");
    cr_assert_eq(sum, 0.5 + 0.25 * 3);
    cr_assert_eq(fri_examples_run(&ex, 0, FR_LOSS_BCE, &rule, &sum), FR_ERR_INVALID);
    fri_examples_free(&ex);
}

/* A user's negatives (drawn through a batch reader since it made Philox blocks side by
 * side) are fr_rng_below's draws one by one, rejected when the user holds the item, and the
 * stream is left where those draws leave it (bpr: 3 a positive; bce: 2 a positive). */
Test(train, examples_negatives_are_one_by_one_draws_and_leave_the_stream_there) {
    fr_dataset *d = gen(40, 25, 500);
    const uint32_t n_items = fr_dataset_n_items(d);
    for (int k = 0; k < 2; k++) {
        const fr_loss loss = k ? FR_LOSS_BCE : FR_LOSS_BPR;
        const uint32_t per = k ? 2 : 3;
        for (uint32_t u = 0; u < fr_dataset_n_users(d); u++) {
            fri_examples ex = {0};
            fr_rng r, r2;
            fr_rng_init(&r, 7, 1, u, FR_PURPOSE_NEGATIVES);
            fr_rng_init(&r2, 7, 1, u, FR_PURPOSE_NEGATIVES);
            (void)fr_rng_u32(&r); /* a stream already read from (mid-block) */
            (void)fr_rng_u32(&r2);
            cr_assert_eq(fri_examples_add_user(&ex, d, u, u, loss, per, &r), FR_OK);
            size_t deg = fr_dataset_user(d, u, NULL, NULL, NULL), at = 0;
            if (deg >= n_items) { fri_examples_free(&ex); continue; }
            for (size_t x = 0; x < deg; x++) {
                if (k) at++; /* bce: the positive first */
                for (uint32_t q = 0; q < per; q++) {
                    uint32_t j;
                    do j = fr_rng_below(&r2, n_items); while (fr_dataset_has(d, u, j));
                    const uint32_t got = k ? ex.item[at] : ex.neg[at];
                    cr_assert_eq(got, j, "loss %d user %u positive %zu draw %u: %u, one by one %u", k, u, x, q, got, j);
                    at++;
                }
            }
            cr_assert_eq(at, ex.n);
            cr_assert_eq(fr_rng_u32(&r), fr_rng_u32(&r2),
                         "loss %d user %u: the stream continues where one-by-one draws leave it", k, u);
            fri_examples_free(&ex);
        }
    }
    fr_dataset_free(d);
}

Test(train, examples_counts_and_negatives_outside_the_users_items) {
    fr_dataset *d = gen(50, 30, 600);
    fr_loss losses[] = {FR_LOSS_MSE, FR_LOSS_BCE, FR_LOSS_BPR};
    for (int k = 0; k < 3; k++) {
        fri_examples ex = {0};
        size_t expect = 0;
        for (uint32_t u = 0; u < fr_dataset_n_users(d); u++) {
            fr_rng r;
            fr_rng_init(&r, 3, 0, u, FR_PURPOSE_NEGATIVES);
            size_t before = ex.n;
            const float *ratings;
            size_t deg = fr_dataset_user(d, u, NULL, &ratings, NULL);
            cr_assert_eq(fri_examples_add_user(&ex, d, u, u, losses[k], 3, &r), FR_OK);
            /* a user holding every item gets no negative (and no BPR example) */
            bool full = deg >= fr_dataset_n_items(d);
            size_t per = losses[k] == FR_LOSS_MSE ? 1 : losses[k] == FR_LOSS_BCE ? (full ? 1 : 4) : (full ? 0 : 3);
            cr_assert_eq(ex.n - before, deg * per, "loss %d user %u: %zu examples for %zu interactions", k, u,
                         ex.n - before, deg);
            expect += deg * per;
            for (size_t x = before; x < ex.n; x++) {
                cr_assert_eq(ex.user[x], u);
                if (losses[k] == FR_LOSS_BCE && ex.label[x] == 0.0f) cr_assert(!fr_dataset_has(d, u, ex.item[x]));
                if (losses[k] == FR_LOSS_BCE && ex.label[x] == 1.0f) cr_assert(fr_dataset_has(d, u, ex.item[x]));
                if (losses[k] == FR_LOSS_BPR) {
                    cr_assert(fr_dataset_has(d, u, ex.item[x]));
                    cr_assert(!fr_dataset_has(d, u, ex.neg[x]), "user %u negative %u is one of its items", u, ex.neg[x]);
                }
            }
        }
        cr_assert_eq(ex.n, expect);
        fri_examples_free(&ex);
    }
    fr_dataset_free(d);
}

/* The shuffles against a naive reference: Fisher-Yates with fr_rng_below64, swapping
 * every array (the weights too when weighted). fri_examples_shuffle and
 * fri_examples_concat_shuffled (rows in scratch, several sources, empty ones among them)
 * give its examples and leave the stream where its draws do. */
static void ref_shuffle(fri_examples *ex, fr_rng *r) {
    for (size_t i = ex->n; i > 1; i--) {
        size_t j = (size_t)fr_rng_below64(r, i);
        uint32_t t;
        t = ex->user[i - 1]; ex->user[i - 1] = ex->user[j]; ex->user[j] = t;
        t = ex->item[i - 1]; ex->item[i - 1] = ex->item[j]; ex->item[j] = t;
        t = ex->neg[i - 1]; ex->neg[i - 1] = ex->neg[j]; ex->neg[j] = t;
        float l = ex->label[i - 1]; ex->label[i - 1] = ex->label[j]; ex->label[j] = l;
        if (ex->alpha > 0) { l = ex->wt[i - 1]; ex->wt[i - 1] = ex->wt[j]; ex->wt[j] = l; }
    }
}

static void same_examples(const fri_examples *a, const fri_examples *b, const char *what) {
    cr_assert_eq(a->n, b->n, "%s: %zu vs %zu examples", what, a->n, b->n);
    for (size_t x = 0; x < a->n; x++) {
        cr_assert(a->user[x] == b->user[x] && a->item[x] == b->item[x] && a->neg[x] == b->neg[x] &&
                      a->label[x] == b->label[x], "%s: example %zu differs", what, x);
        if (a->alpha > 0) cr_assert(a->wt[x] == b->wt[x], "%s: weight %zu differs", what, x);
    }
}

Test(train, shuffles_are_fisher_yates_over_every_array) {
    for (int weighted = 0; weighted < 2; weighted++) {
        enum { S = 5 };
        const size_t sizes[S] = {700, 0, 1, 2100, 37}; /* the sources, one of them empty */
        fri_examples src[S], all = {0}, ref = {0}, got = {0};
        fri_example_rows rows = {0};
        memset(src, 0, sizeof src);
        float alpha = weighted ? 0.5f : 0.0f;
        all.alpha = ref.alpha = got.alpha = alpha;
        uint32_t v = 1;
        for (int s = 0; s < S; s++) {
            src[s].alpha = alpha;
            cr_assert_eq(fri_examples_reserve(&src[s], sizes[s]), FR_OK);
            cr_assert_eq(fri_examples_reserve(&all, all.n + sizes[s]), FR_OK);
            for (size_t x = 0; x < sizes[s]; x++, v++) { /* every field distinct */
                src[s].user[x] = all.user[all.n] = v;
                src[s].item[x] = all.item[all.n] = v + 100000;
                src[s].neg[x] = all.neg[all.n] = v + 200000;
                src[s].label[x] = all.label[all.n] = (float)v * 0.5f;
                if (weighted) src[s].wt[x] = all.wt[all.n] = (float)v * 0.25f;
                all.n++;
            }
            src[s].n = sizes[s];
        }
        cr_assert_eq(fri_examples_reserve(&ref, all.n), FR_OK);
        memcpy(ref.user, all.user, all.n * sizeof *all.user);
        memcpy(ref.item, all.item, all.n * sizeof *all.item);
        memcpy(ref.neg, all.neg, all.n * sizeof *all.neg);
        memcpy(ref.label, all.label, all.n * sizeof *all.label);
        if (weighted) memcpy(ref.wt, all.wt, all.n * sizeof *all.wt);
        ref.n = all.n;
        fr_rng r0, r1, r2;
        fr_rng_init(&r0, 11, 4, 0, FR_PURPOSE_SHUFFLE);
        (void)fr_rng_u32(&r0); /* start inside a block */
        r1 = r2 = r0;
        ref_shuffle(&ref, &r0);
        const uint32_t next = fr_rng_u32(&r0); /* the stream's next word after the draws */
        fri_examples_shuffle(&all, &r1);
        same_examples(&all, &ref, "fri_examples_shuffle");
        cr_assert_eq(fr_rng_u32(&r1), next);
        cr_assert_eq(fri_examples_concat_shuffled(&got, src, S, &r2, &rows), FR_OK);
        same_examples(&got, &ref, "fri_examples_concat_shuffled");
        cr_assert_eq(fr_rng_u32(&r2), next);
        /* a second call reuses the scratch; no source: no example */
        fr_rng_init(&r2, 11, 5, 0, FR_PURPOSE_SHUFFLE);
        cr_assert_eq(fri_examples_concat_shuffled(&got, src, 1, &r2, &rows), FR_OK);
        cr_assert_eq(got.n, sizes[0]);
        cr_assert_eq(fri_examples_concat_shuffled(&got, src, 0, &r2, &rows), FR_OK);
        cr_assert_eq(got.n, 0);
        for (int s = 0; s < S; s++) fri_examples_free(&src[s]);
        fri_examples_free(&all);
        fri_examples_free(&ref);
        fri_examples_free(&got);
        fri_example_rows_free(&rows);
    }
}

/* Rating examples draw nothing, so the trainer builds them once; every epoch is still the
 * plain loop over that epoch's shuffle of freshly built examples (the naive reference:
 * the users' examples in order, Fisher-Yates with the epoch's shuffle stream). */
Test(train, mse_epochs_are_the_plain_loop_over_fresh_shuffles) {
    fr_dataset *d = gen(80, 50, 1500);
    fr_model *m = make(FR_MODEL_MF, d), *ref = make(FR_MODEL_MF, d);
    fr_train_config tc;
    fr_train_config_default(&tc);
    tc.shards = 1;
    tc.threads = 1;
    tc.batch = 16;
    fr_optim_config_default(&tc.optim, FR_OPTIM_SGD);
    tc.optim.lr = 0.01f;
    fr_trainer *t = NULL;
    cr_assert_eq(fr_trainer_create(&t, m, d, &tc), FR_OK);
    fr_model_ws *ws = NULL;
    fr_grad *g = NULL;
    fr_optim *o = NULL;
    cr_assert_eq(fr_model_ws_create(&ws, ref, tc.batch), FR_OK);
    cr_assert_eq(fr_grad_create(&g, ref), FR_OK);
    cr_assert_eq(fr_optim_create(&o, ref, &tc.optim), FR_OK);
    for (uint32_t ep = 0; ep < 3; ep++) {
        double loss;
        cr_assert_eq(fr_trainer_epoch(t, &loss), FR_OK, "%s", fr_errmsg());
        fri_examples ex = {0};
        for (uint32_t u = 0; u < fr_dataset_n_users(d); u++) {
            fr_rng r;
            fr_rng_init(&r, tc.seed, ep, u, FR_PURPOSE_NEGATIVES);
            cr_assert_eq(fri_examples_add_user(&ex, d, u, u, FR_LOSS_MSE, tc.negatives, &r), FR_OK);
        }
        fr_rng r;
        fr_rng_init(&r, tc.seed, ep, 0, FR_PURPOSE_SHUFFLE);
        ref_shuffle(&ex, &r);
        double sum = 0;
        cr_assert_eq(fri_examples_fit(&ex, tc.batch, ref, ws, g, o, &sum), FR_OK);
        cr_assert(!memcmp(fr_model_params(m), fr_model_params(ref), fr_model_n_params(m) * sizeof(float)),
                  "epoch %u: the models differ", ep);
        cr_assert_float_eq(loss, sum / (double)ex.n, 1e-12);
        fri_examples_free(&ex);
    }
    fr_model_ws_free(ws);
    fr_grad_free(g);
    fr_optim_free(o);
    fr_trainer_free(t);
    fr_model_free(m);
    fr_model_free(ref);
    fr_dataset_free(d);
}

Test(train, config_errors_name_the_field) {
    fr_train_config c;
    fr_train_config_default(&c);
    cr_assert_eq(fr_train_config_check(&c), FR_OK);
    c.shards = 0;
    cr_assert_eq(fr_train_config_check(&c), FR_ERR_INVALID);
    cr_assert(strstr(fr_errmsg(), "shards 0"), "%s", fr_errmsg());
    fr_train_config_default(&c);
    c.batch = 0;
    cr_assert_eq(fr_train_config_check(&c), FR_ERR_INVALID);
    cr_assert(strstr(fr_errmsg(), "batch 0"), "%s", fr_errmsg());
    /* a model too small for the data */
    fr_dataset *d = gen(40, 20, 300);
    fr_model_config mc;
    fr_model_config_default(&mc, FR_MODEL_MF);
    mc.n_users = 10;
    mc.n_items = 20;
    fr_model *m = NULL;
    cr_assert_eq(fr_model_create(&m, &mc), FR_OK);
    fr_train_config_default(&c);
    fr_trainer *t = (fr_trainer *)1;
    cr_assert_eq(fr_trainer_create(&t, m, d, &c), FR_ERR_INVALID);
    cr_assert_null(t);
    fr_model_free(m);
    fr_dataset_free(d);
}

Test(train, out_of_memory_leaks_nothing) {
    fr_dataset *d = gen(30, 20, 200);
    fr_model *m = make(FR_MODEL_GMF, d);
    for (long n = 1;; n++) {
        fr_train_config c;
        fr_train_config_default(&c);
        c.threads = 2;
        fr_trainer *t = NULL;
        fr_test_fail_alloc(n, false);
        fr_err e = fr_trainer_create(&t, m, d, &c);
        double loss;
        if (!e) e = fr_trainer_epoch(t, &loss);
        fr_test_fail_alloc(0, false);
        fr_trainer_free(t);
        if (e == FR_OK) break;
        cr_assert_eq(e, FR_ERR_NOMEM, "allocation %ld: %s", n, fr_errmsg());
        cr_assert_lt(n, 1000);
    }
    fr_model_free(m);
    fr_dataset_free(d);
}

/* The evaluation glue against a naive computation through fr_model_score. */
Test(train, evaluate_mf_is_clipped_rmse_over_the_test_set) {
    fr_dataset *all = gen(80, 40, 1500), *tr = NULL, *te = NULL;
    cr_assert_eq(fr_dataset_split(all, FR_SPLIT_RATIO, 0.8, 2, &tr, &te), FR_OK);
    fr_model *m = make(FR_MODEL_MF, tr);
    fr_dataset_info in;
    fr_dataset_info_compute(tr, &in);
    double se = 0, ae = 0;
    uint64_t n = 0;
    for (uint32_t u = 0; u < fr_dataset_n_users(te); u++) {
        const uint32_t *items;
        const float *r;
        size_t k = fr_dataset_user(te, u, &items, &r, NULL);
        for (size_t x = 0; x < k; x++) {
            float p;
            cr_assert_eq(fr_model_score(m, NULL, &u, &items[x], 1, &p), FR_OK);
            double c = fmin(fmax(p, in.rating_min), in.rating_max);
            se += (c - r[x]) * (c - r[x]);
            ae += fabs(c - r[x]);
            n++;
        }
    }
    fr_pool *pool = NULL;
    cr_assert_eq(fr_pool_create(&pool, 2), FR_OK);
    fr_eval_result res;
    cr_assert_eq(fr_model_evaluate(m, tr, te, NULL, NULL, pool, &res), FR_OK, "%s", fr_errmsg());
    cr_assert(res.has_rating && !res.has_sampled && !res.has_full);
    cr_assert_eq(res.ratings, n);
    cr_assert_float_eq(res.rmse, sqrt(se / (double)n), 1e-6);
    cr_assert_float_eq(res.mae, ae / (double)n, 1e-6);
    fr_pool_free(pool);
    fr_model_free(m);
    fr_dataset_free(tr);
    fr_dataset_free(te);
    fr_dataset_free(all);
}

Test(train, evaluate_implicit_uses_sampled_or_full_ranking) {
    fr_dataset *all = gen(60, 50, 1200), *tr = NULL, *te = NULL;
    cr_assert_eq(fr_dataset_split(all, FR_SPLIT_LOO, 0, 2, &tr, &te), FR_OK);
    fr_negatives *negs = NULL;
    cr_assert_eq(fr_negatives_sample(&negs, all, te, 20, 3), FR_OK);
    fr_model *m = make(FR_MODEL_GMF, tr);
    fr_eval_result a, b;
    cr_assert_eq(fr_model_evaluate(m, tr, te, negs, NULL, NULL, &a), FR_OK, "%s", fr_errmsg());
    cr_assert(a.has_sampled && !a.has_full && !a.has_rating);
    cr_assert_eq(fr_model_evaluate(m, tr, te, NULL, NULL, NULL, &b), FR_OK, "%s", fr_errmsg());
    cr_assert(b.has_full && !b.has_sampled);
    /* an identity user map gives the same figures as no map */
    uint32_t *umap = malloc(fr_dataset_n_users(tr) * sizeof *umap);
    for (uint32_t u = 0; u < fr_dataset_n_users(tr); u++) umap[u] = u;
    fr_model_scorer *s = NULL;
    cr_assert_eq(fr_model_scorer_create(&s, m, NULL, umap, NULL), FR_OK);
    fr_eval_result c;
    cr_assert_eq(fr_model_evaluate_with(s, m, tr, te, negs, NULL, NULL, &c), FR_OK);
    cr_assert_eq(c.hr[1], a.hr[1]);
    cr_assert_eq(c.ndcg[1], a.ndcg[1]);
    fr_model_scorer_free(s);
    free(umap);
    fr_negatives_free(negs);
    fr_model_free(m);
    fr_dataset_free(tr);
    fr_dataset_free(te);
    fr_dataset_free(all);
}

/* Batch 1 with plain SGD takes the family's fused per-example loop (model_mf.c,
 * sgd_pass); the generic minibatch loop is its reference: the same bits and the same
 * losses, for mf (with and without L2 and a bias L2 of its own) and bpr (one and four
 * negatives), over epochs with the lr changed between them. */
static fr_model *train_sgd1(fr_model_kind kind, const fr_dataset *d, float l2, float bias_l2, uint32_t neg,
                            uint32_t dim, bool fused, int threads, double *loss) {
    fr_model_config c;
    fr_model_config_default(&c, kind);
    c.dim = dim;
    c.n_users = fr_dataset_n_users(d);
    c.n_items = fr_dataset_n_items(d);
    c.mu = 3.5f;
    c.l2 = l2;
    c.bias_l2 = bias_l2;
    c.init_std = 0.05f;
    fr_model *m = NULL;
    cr_assert_eq(fr_model_create(&m, &c), FR_OK, "%s", fr_errmsg());
    fr_train_config tc;
    fr_train_config_default(&tc);
    tc.batch = 1;
    tc.threads = threads;
    tc.negatives = neg;
    fr_optim_config_default(&tc.optim, FR_OPTIM_SGD);
    tc.optim.lr = 0.01f;
    tc.optim.sparse_rows = true;
    fr_trainer *t = NULL;
    cr_assert_eq(fr_trainer_create(&t, m, d, &tc), FR_OK, "%s", fr_errmsg());
    if (!fused) fri_trainer_no_fused(t);
    for (int e = 0; e < 3; e++) {
        cr_assert_eq(fr_trainer_set_lr(t, 0.01f * powf(0.8f, (float)e)), FR_OK);
        cr_assert_eq(fr_trainer_epoch(t, &loss[e]), FR_OK, "%s", fr_errmsg());
    }
    fr_trainer_free(t);
    return m;
}

Test(train, fused_sgd_is_the_generic_loop_bit_for_bit) {
    fr_dataset *d = gen(120, 70, 2500);
    /* dims that are and are not multiples of 8, one below 8 (no full lane group), the
     * specialised 32 and 64, and one past fri_sumsq's chunk of 64. 120 users and 70 items:
     * consecutive shuffled examples share a user or an item dozens of times an epoch, so
     * mf's pass takes both its paired and its single steps. */
    struct { fr_model_kind kind; float l2, bias_l2; uint32_t neg, dim; } cases[] = {
        {FR_MODEL_MF, 0.05f, 0.01f, 0, 32}, {FR_MODEL_MF, 0.05f, 0.0f, 0, 64}, {FR_MODEL_MF, 0.0f, 0.0f, 0, 32},
        {FR_MODEL_MF, 0.05f, 0.01f, 0, 12}, {FR_MODEL_BPR, 0.01f, 0.0f, 1, 32}, {FR_MODEL_BPR, 0.0f, 0.0f, 4, 32},
        {FR_MODEL_BPR, 0.01f, 0.0f, 4, 20}, {FR_MODEL_MF, 0.05f, 0.01f, 0, 72}, {FR_MODEL_BPR, 0.01f, 0.0f, 1, 70},
        {FR_MODEL_MF, 0.05f, 0.01f, 0, 4},  {FR_MODEL_BPR, 0.01f, 0.0f, 4, 64}, {FR_MODEL_MF, 0.0f, 0.0f, 0, 64},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        double la[3], lb[3], lc[3];
        fr_model *b = train_sgd1(cases[k].kind, d, cases[k].l2, cases[k].bias_l2, cases[k].neg, cases[k].dim, false, 1, lb);
        size_t np = fr_model_n_params(b);
        /* the fused pass's AVX copy (where the CPU has it), then its plain one */
        for (int avx = 1; avx >= 0; avx--) {
            (void)fri_mf_sgd_allow_avx(avx);
            fr_model *a = train_sgd1(cases[k].kind, d, cases[k].l2, cases[k].bias_l2, cases[k].neg, cases[k].dim, true, 1, la);
            /* two threads: the next epoch's examples are built while this one steps */
            fr_model *c2 = train_sgd1(cases[k].kind, d, cases[k].l2, cases[k].bias_l2, cases[k].neg, cases[k].dim, true, 2, lc);
            cr_assert(!memcmp(fr_model_params(a), fr_model_params(c2), np * sizeof(float)),
                      "case %zu avx %d: 1 and 2 threads differ", k, avx);
            for (int e = 0; e < 3; e++) cr_assert(la[e] == lc[e]);
            fr_model_free(c2);
            cr_assert(np == fr_model_n_params(a));
            cr_assert(!memcmp(fr_model_params(a), fr_model_params(b), np * sizeof(float)), "case %zu avx %d: models differ",
                      k, avx);
            for (int e = 0; e < 3; e++)
                cr_assert(la[e] == lb[e], "case %zu avx %d epoch %d: loss %.17g vs %.17g", k, avx, e, la[e], lb[e]);
            cr_assert(la[2] < la[0], "case %zu: the loss falls (%g -> %g)", k, la[0], la[2]);
            fr_model_free(a);
        }
        (void)fri_mf_sgd_allow_avx(true);
        fr_model_free(b);
    }
    fr_dataset_free(d);
}
