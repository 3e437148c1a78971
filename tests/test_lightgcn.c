/* The graph model, lightgcn (src/model/model_lightgcn.c): its gradient against central
 * differences (and a wrong gradient caught), the per-batch propagation against a naive
 * per-example reference in double, the refusal to score without a graph, the model file
 * bit for bit, centralized and federated training (bit-identical across thread counts,
 * better than at random), one federated round of one full-batch SGD step equal to one
 * centralized full-batch step, and silos (several users a client) training too. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fedrec/fedrec.h"
#include "fedrec/model_eval.h"
#include "fedrec/runtime.h"
#include "fedrec/train.h"
#include "gradcheck.h"
#include "testutil.h"

static fr_model_kind kind(void) {
    fr_model_kind k = 0;
    cr_assert_eq(fr_model_kind_parse("lightgcn", &k), FR_OK, "%s", fr_errmsg());
    return k;
}

/* ------------------------------------------------------------------ a small graph */

/* user row r's items: items[start[r], start[r + 1]) */
typedef struct csr {
    const uint32_t *start, *items;
    uint32_t n_users;
} csr;

static size_t csr_items(const void *ctx, uint32_t u, const uint32_t **items) {
    const csr *g = ctx;
    *items = g->items + g->start[u];
    return g->start[u + 1] - g->start[u];
}

/* 5 users, 9 items; user 3 has no item (d_u = 0) */
static const uint32_t G_START[] = {0, 3, 5, 9, 9, 11};
static const uint32_t G_ITEMS[] = {0, 2, 5, 1, 2, 3, 4, 6, 8, 0, 7};
static const csr GRAPH = {G_START, G_ITEMS, 5};

static fr_model *small_model(fr_loss loss, float l2) {
    fr_model_config c;
    fr_model_config_default(&c, kind());
    c.n_users = 5;
    c.n_items = 9;
    c.dim = 4;
    c.loss = loss;
    c.l2 = l2;
    c.init_std = 0.5f;
    c.seed = 3;
    fr_model *m = NULL;
    cr_assert_eq(fr_model_create(&m, &c), FR_OK, "%s", fr_errmsg());
    fr_model_graph g = {csr_items, &GRAPH};
    fr_model_set_graph(m, &g);
    return m;
}

/* a batch with repeated users, the empty user 3, positives in N(u) (left out of the
 * example's propagation) and out of it, a label-0 example on an item of N(u) (kept) */
static uint32_t B_USERS[] = {0, 1, 0, 2, 3, 4, 2, 0};
static uint32_t B_ITEMS[] = {2, 1, 5, 6, 4, 7, 3, 0};
static uint32_t B_NEG[] = {1, 8, 7, 0, 2, 3, 5, 4};
static float B_LABEL[] = {1, 0, 1, 1, 0, 1, 0, 1}; /* x = 1: user 1's own item 1, label 0 */
static float B_WEIGHT[] = {1, 2, 0.5f, 1, 1.5f, 1, 1, 3};
#define BN 8

typedef struct gc_ctx {
    fr_model *m;
    fr_model_ws *ws;
    const fr_batch *b;
} gc_ctx;

static double model_loss(void *p) {
    gc_ctx *c = p;
    double l;
    cr_assert_eq(fr_model_loss(c->m, c->ws, c->b, &l), FR_OK, "%s", fr_errmsg());
    return l;
}

/* ------------------------------------------------------------------ naive reference */

/* The loss and its gradient over the whole slab, in double, one example at a time, each
 * propagating its user from scratch, straight from the formulas of model_lightgcn.c. */
static double naive(const fr_model *m, const fr_batch *b, double *grad) {
    const fr_model_config *c = fr_model_config_of(m);
    size_t d = c->dim;
    const float *w = fr_model_params_const(m);
    size_t qo = fr_model_tensor(m, 0)->offset, po = fr_model_tensor(m, 1)->offset;
    memset(grad, 0, fr_model_n_params(m) * sizeof *grad);
    double L = 0, inv = 1.0 / (double)b->n;
    bool bpr = c->loss == FR_LOSS_BPR;
    for (size_t x = 0; x < b->n; x++) {
        uint32_t u = b->users[x];
        const uint32_t *it;
        size_t n = csr_items(&GRAPH, u, &it);
        /* a positive that is one of u's training items is left out of u's propagation */
        bool ex = false;
        for (size_t j = 0; j < n; j++) ex |= it[j] == b->items[x] && (bpr || b->label[x] > 0);
        size_t nk = n - (ex ? 1 : 0);
        double us[16] = {0}, cu = nk ? 1.0 / sqrt((double)nk) : 0;
        for (size_t k = 0; k < d; k++) {
            double agg = 0;
            for (size_t j = 0; j < n; j++)
                if (!(ex && it[j] == b->items[x])) agg += w[qo + it[j] * d + k];
            us[k] = 0.5 * (w[po + u * d + k] + cu * agg);
        }
        double s = 0, sn = 0, wt = b->weight ? b->weight[x] : 1.0;
        for (size_t k = 0; k < d; k++) {
            s += us[k] * w[qo + b->items[x] * d + k];
            if (bpr) sn += us[k] * w[qo + b->neg[x] * d + k];
        }
        double ds, dsn = 0;
        if (bpr) { /* -log sigmoid(s - sn) */
            double z = s - sn;
            L += wt * inv * log1p(exp(-z));
            ds = -wt * inv / (1 + exp(z));
            dsn = -ds;
        } else { /* BCE with logits */
            double y = b->label[x], p = 1 / (1 + exp(-s));
            L += wt * inv * -(y * log(p) + (1 - y) * log(1 - p));
            ds = wt * inv * (p - y);
        }
        double dus[16] = {0};
        for (size_t k = 0; k < d; k++) {
            dus[k] = ds * w[qo + b->items[x] * d + k] + (bpr ? dsn * w[qo + b->neg[x] * d + k] : 0);
            grad[qo + b->items[x] * d + k] += ds * us[k];
            if (bpr) grad[qo + b->neg[x] * d + k] += dsn * us[k];
            grad[po + u * d + k] += 0.5 * dus[k];
            for (size_t j = 0; j < n; j++)
                if (!(ex && it[j] == b->items[x])) grad[qo + it[j] * d + k] += 0.5 * cu * dus[k];
        }
        /* L2: l2 * mean over the batch of |p_u|^2 + |q_pos|^2 (+ |q_neg|^2) */
        double l2 = (double)c->l2 * inv;
        for (size_t k = 0; k < d; k++) {
            double p = w[po + u * d + k], q = w[qo + b->items[x] * d + k];
            L += l2 * (p * p + q * q);
            grad[po + u * d + k] += 2 * l2 * p;
            grad[qo + b->items[x] * d + k] += 2 * l2 * q;
            if (bpr) {
                double qn = w[qo + b->neg[x] * d + k];
                L += l2 * qn * qn;
                grad[qo + b->neg[x] * d + k] += 2 * l2 * qn;
            }
        }
    }
    return L;
}

static void check_against_naive(fr_loss loss, float l2, const float *weight) {
    fr_model *m = small_model(loss, l2);
    fr_batch b = {B_USERS, B_ITEMS, B_LABEL, loss == FR_LOSS_BPR ? B_NEG : NULL, BN, weight};
    fr_model_ws *ws = NULL;
    fr_grad *g = NULL;
    cr_assert_eq(fr_model_ws_create(&ws, m, 16), FR_OK);
    cr_assert_eq(fr_grad_create(&g, m), FR_OK);
    double l;
    cr_assert_eq(fr_model_loss_grad(m, ws, &b, g, &l), FR_OK, "%s", fr_errmsg());
    size_t np = fr_model_n_params(m);
    double *ref = malloc(np * sizeof *ref);
    double lref = naive(m, &b, ref);
    cr_assert(fabs(l - lref) <= 1e-6 * fabs(lref), "loss %.9g, naive %.9g", l, lref);
    const float *gd = fr_grad_data(g);
    double worst = 0, scale = 0;
    for (size_t i = 0; i < np; i++) {
        worst = fmax(worst, fabs((double)gd[i] - ref[i]));
        scale = fmax(scale, fabs(ref[i]));
    }
    cr_assert_gt(scale, 1e-3);
    cr_assert(worst <= 2e-6 * scale, "gradient off the naive reference by %g (scale %g)", worst, scale);
    /* every row with a gradient is marked touched, and only those */
    for (int t = 0; t < fr_model_n_tensors(m); t++) {
        const fr_tensor *tt = fr_model_tensor(m, t);
        const fr_rowset *s = fr_grad_touched(g, t);
        for (uint32_t r = 0; r < tt->rows; r++) {
            double a = 0;
            for (uint32_t k = 0; k < tt->cols; k++) a += fabs(ref[tt->offset + r * tt->cols + k]);
            if (a > 0) cr_assert(s->mark[r], "%s row %u has a gradient but is not marked", tt->name, r);
        }
    }
    free(ref);
    fr_grad_free(g);
    fr_model_ws_free(ws);
    fr_model_free(m);
}

Test(lightgcn, propagation_equals_the_naive_reference) {
    check_against_naive(FR_LOSS_BPR, 0.0f, NULL);
    check_against_naive(FR_LOSS_BPR, 0.3f, B_WEIGHT);
    check_against_naive(FR_LOSS_BCE, 0.2f, NULL);
    check_against_naive(FR_LOSS_BCE, 0.0f, B_WEIGHT);
}

/* The scores are u* . q_i with u* the propagated user: a hand computation for user 1
 * (items 1, 2), and a batch of one user's candidates equals the same pairs scored apart. */
Test(lightgcn, scores_by_hand_and_by_chunks) {
    fr_model *m = small_model(FR_LOSS_BPR, 0.0f);
    const float *w = fr_model_params_const(m);
    size_t qo = fr_model_tensor(m, 0)->offset, po = fr_model_tensor(m, 1)->offset;
    uint32_t users[9], items[9];
    for (uint32_t i = 0; i < 9; i++) { users[i] = 1; items[i] = i; }
    float out[9], one;
    cr_assert_eq(fr_model_score(m, NULL, users, items, 9, out), FR_OK, "%s", fr_errmsg());
    for (uint32_t i = 0; i < 9; i++) {
        double s = 0;
        for (int k = 0; k < 4; k++) {
            double us = 0.5 * (w[po + 4 + k] + (w[qo + 4 + k] + w[qo + 8 + k]) / sqrt(2.0));
            s += us * w[qo + i * 4 + k];
        }
        cr_assert(fabs(s - out[i]) < 1e-6, "item %u: %g vs %g", i, (double)out[i], s);
        cr_assert_eq(fr_model_score(m, NULL, &users[i], &items[i], 1, &one), FR_OK);
        cr_assert_eq(one, out[i]);
    }
    fr_model_free(m);
}

static void gradcheck(fr_loss loss) {
    fr_model *m = small_model(loss, 0.25f);
    fr_batch b = {B_USERS, B_ITEMS, B_LABEL, loss == FR_LOSS_BPR ? B_NEG : NULL, BN, B_WEIGHT};
    fr_model_ws *ws = NULL;
    fr_grad *g = NULL;
    cr_assert_eq(fr_model_ws_create(&ws, m, 16), FR_OK);
    cr_assert_eq(fr_grad_create(&g, m), FR_OK);
    double loss1, loss2;
    cr_assert_eq(fr_model_loss_grad(m, ws, &b, g, &loss1), FR_OK, "%s", fr_errmsg());
    cr_assert_eq(fr_model_loss(m, ws, &b, &loss2), FR_OK);
    cr_assert_eq(loss1, loss2);
    float *p = fr_model_params(m), *gd = fr_grad_data(g);
    gc_ctx ctx = {m, ws, &b};
    int bad = 0;
    bad += gc_check(model_loss, &ctx, p, gd, fr_model_n_params(m), "lightgcn");
    cr_assert_eq(bad, 0);
    /* and a wrong gradient fails it: item 8 is only reached through user 2's propagation
     * (never a batch positive or negative); halving its gradient, as a propagation that
     * forgot the 1/2 of the layer mean would, is caught */
    size_t o8 = fr_model_tensor(m, 0)->offset + 8 * 4;
    double mag = 0;
    for (int k = 0; k < 4; k++) mag += fabs(gd[o8 + k]);
    cr_assert_gt(mag, 1e-2, "item 8 must have a gradient through the propagation");
    for (int k = 0; k < 4; k++) gd[o8 + k] *= 0.5f;
    cr_assert_gt(gc_check(model_loss, &ctx, p + o8, gd + o8, 4, "wrong (expected to fail)"), 0);
    fr_grad_free(g);
    fr_model_ws_free(ws);
    fr_model_free(m);
}

Test(lightgcn, gradient_passes_central_differences_bpr) { gradcheck(FR_LOSS_BPR); }
Test(lightgcn, gradient_passes_central_differences_bce) { gradcheck(FR_LOSS_BCE); }

Test(lightgcn, refuses_to_score_without_a_graph) {
    fr_model *m = small_model(FR_LOSS_BPR, 0.0f);
    cr_assert(fr_model_needs_graph(m));
    fr_model_graph old = fr_model_set_graph(m, NULL);
    cr_assert(old.items == csr_items && old.ctx == &GRAPH);
    uint32_t u = 0, i = 1;
    float s;
    cr_assert_eq(fr_model_score(m, NULL, &u, &i, 1, &s), FR_ERR_INVALID);
    cr_assert(strstr(fr_errmsg(), "graph") != NULL, "%s", fr_errmsg());
    fr_batch b = {B_USERS, B_ITEMS, NULL, B_NEG, BN, NULL};
    fr_model_ws *ws = NULL;
    cr_assert_eq(fr_model_ws_create(&ws, m, 16), FR_OK);
    double l;
    cr_assert_eq(fr_model_loss(m, ws, &b, &l), FR_ERR_INVALID);
    fr_model_ws_free(ws);
    /* other kinds need none */
    fr_model_config c;
    fr_model_config_default(&c, FR_MODEL_BPR);
    c.n_users = 2;
    c.n_items = 2;
    fr_model *o = NULL;
    cr_assert_eq(fr_model_create(&o, &c), FR_OK);
    cr_assert(!fr_model_needs_graph(o));
    fr_model_free(o);
    fr_model_free(m);
}

Test(lightgcn, model_file_round_trip) {
    fr_model *m = small_model(FR_LOSS_BCE, 0.125f);
    uint8_t *bytes;
    size_t n;
    cr_assert_eq(fr_model_encode(m, NULL, &bytes, &n), FR_OK, "%s", fr_errmsg());
    fr_model *l = NULL;
    cr_assert_eq(fr_model_decode(&l, bytes, n, "<mem>", NULL), FR_OK, "%s", fr_errmsg());
    const fr_model_config *a = fr_model_config_of(l), *c = fr_model_config_of(m);
    cr_assert_eq(a->kind, c->kind);
    cr_assert_str_eq(fr_model_kind_name(a->kind), "lightgcn");
    cr_assert_eq(a->dim, 4);
    cr_assert_eq(a->loss, FR_LOSS_BCE);
    cr_assert_eq(a->l2, 0.125f);
    cr_assert_eq(a->seed, 3);
    cr_assert_eq(fr_model_n_params(l), fr_model_n_params(m));
    cr_assert(!memcmp(fr_model_params(l), fr_model_params(m), fr_model_n_params(m) * sizeof(float)));
    /* and back to the same bytes */
    uint8_t *again;
    size_t n2;
    cr_assert_eq(fr_model_encode(l, NULL, &again, &n2), FR_OK);
    cr_assert(n2 == n && !memcmp(again, bytes, n));
    fr_model_bytes_free(again);
    fr_model_bytes_free(bytes);
    fr_model_free(l);
    fr_model_free(m);
}

/* ------------------------------------------------------------------ training */

typedef struct data {
    fr_dataset *all, *train, *test;
    fr_negatives *negs;
} data;

static data gen(void) {
    fr_gen_opts g;
    fr_gen_opts_default(&g);
    g.users = 120;
    g.items = 80;
    g.interactions = 3000;
    g.seed = 11;
    data d = {0};
    cr_assert_eq(fr_dataset_generate(&d.all, &g), FR_OK, "%s", fr_errmsg());
    cr_assert_eq(fr_dataset_split(d.all, FR_SPLIT_LOO, 0, 1, &d.train, &d.test), FR_OK, "%s", fr_errmsg());
    cr_assert_eq(fr_negatives_sample(&d.negs, d.all, d.test, 30, 3), FR_OK, "%s", fr_errmsg());
    return d;
}

static void data_free(data *d) {
    fr_negatives_free(d->negs);
    fr_dataset_free(d->all);
    fr_dataset_free(d->train);
    fr_dataset_free(d->test);
}

static fr_model_config config(const fr_dataset *train) {
    fr_model_config c;
    fr_model_config_default(&c, kind());
    c.n_users = fr_dataset_n_users(train);
    c.n_items = fr_dataset_n_items(train);
    c.dim = 8;
    c.seed = 4;
    return c;
}

static double hr10(const fr_model *m, const data *d) {
    fr_eval_result r;
    cr_assert_eq(fr_model_evaluate(m, d->train, d->test, d->negs, NULL, NULL, &r), FR_OK, "%s", fr_errmsg());
    cr_assert(r.has_sampled && !r.has_rating);
    for (size_t i = 0; i < r.n_ks; i++)
        if (r.ks[i] == 10) return r.hr[i];
    cr_assert_fail("no hr@10");
    return 0;
}

Test(lightgcn, trains_centrally_the_same_on_any_thread_count) {
    data d = gen();
    fr_model_config c = config(d.train);
    fr_model *m[3] = {NULL};
    fr_train_config tc;
    fr_train_config_default(&tc);
    tc.batch = 128;
    tc.negatives = 1;
    tc.optim.lr = 0.01f;
    double before = 0, loss[3][8];
    for (int k = 0; k < 3; k++) {
        cr_assert_eq(fr_model_create(&m[k], &c), FR_OK);
        if (k == 0) {
            fr_model_graph g = fr_model_graph_dataset(d.train);
            fr_model_set_graph(m[0], &g);
            before = hr10(m[0], &d);
        }
        fr_trainer *t = NULL;
        tc.threads = k == 2 ? 4 : k + 1;
        cr_assert_eq(fr_trainer_create(&t, m[k], d.train, &tc), FR_OK, "%s", fr_errmsg());
        cr_assert(fr_model_graph_of(m[k]).items != NULL, "the trainer binds its data");
        for (int e = 0; e < 8; e++) cr_assert_eq(fr_trainer_epoch(t, &loss[k][e]), FR_OK, "%s", fr_errmsg());
        fr_trainer_free(t);
    }
    cr_assert_lt(loss[0][7], 0.8 * loss[0][0], "loss %g -> %g", loss[0][0], loss[0][7]);
    for (int k = 1; k < 3; k++)
        cr_assert(!memcmp(fr_model_params(m[0]), fr_model_params(m[k]), fr_model_n_params(m[0]) * sizeof(float)),
                  "1 thread and %d give the same bits", k == 2 ? 4 : 2);
    double after = hr10(m[0], &d);
    /* 30 negatives: ranking at random gives hr@10 = 10/31 */
    cr_assert(after > before && after > 0.45, "hr@10 %g -> %g", before, after);
    for (int k = 0; k < 3; k++) fr_model_free(m[k]);
    data_free(&d);
}

static void federated(const fr_partition *part, double *hr_out) {
    data d = gen();
    fr_model_config c = config(d.train);
    fr_fl_config fc;
    fr_fl_config_default(&fc, c.kind);
    fc.local.lr = 0.05f;
    fc.local_epochs = 2;
    fc.negatives = 2;
    float *first = NULL;
    double before = 0, after = 0;
    for (int threads = 1; threads <= 3; threads += 2) {
        fr_pool *pool = NULL;
        cr_assert_eq(fr_pool_create(&pool, threads), FR_OK);
        fr_sim *s = NULL;
        cr_assert_eq(fr_sim_create_silos(&s, &c, &fc, d.train, part, pool), FR_OK, "%s", fr_errmsg());
        if (threads == 1) before = hr10(fr_sim_model(s), &d);
        fr_round_stats st, st1;
        for (int r = 0; r < 12; r++) cr_assert_eq(fr_sim_round(s, r == 0 ? &st1 : &st), FR_OK, "%s", fr_errmsg());
        cr_assert_lt(st.loss, 0.9 * st1.loss, "round loss %g -> %g", st1.loss, st.loss);
        fr_model *m = fr_sim_model(s);
        size_t np = fr_model_n_params(m);
        if (threads == 1) {
            after = hr10(m, &d);
            first = malloc(np * sizeof(float));
            memcpy(first, fr_model_params(m), np * sizeof(float));
        } else {
            cr_assert(!memcmp(first, fr_model_params(m), np * sizeof(float)), "1 and 3 threads give the same bits");
        }
        fr_sim_free(s);
        fr_pool_free(pool);
    }
    cr_assert(after > before && after > 0.45, "hr@10 %g -> %g", before, after);
    *hr_out = after;
    free(first);
    data_free(&d);
}

Test(lightgcn, trains_federated_the_same_on_any_thread_count) {
    double hr;
    federated(NULL, &hr);
}

Test(lightgcn, trains_federated_in_silos) {
    data d = gen();
    fr_partition *p = NULL;
    cr_assert_eq(fr_partition_make(&p, d.train, FR_PARTITION_IID, 7, 0, NULL, 5), FR_OK, "%s", fr_errmsg());
    data_free(&d);
    double hr;
    federated(p, &hr);
    fr_partition_free(p);
}

/* One round of FedAvg, every client one full-batch step of plain SGD on its own users'
 * examples (BCE on the positives, no negatives: no random draw differs between the two
 * sides), equals one full-batch SGD step of the centralized model on the union: the loss
 * is a sum over users of terms that read only the user's own items. */
Test(lightgcn, one_round_equals_one_full_batch_step) {
    static const int64_t ru[] = {10, 10, 10, 20, 20, 30, 30, 30, 30, 40, 40};
    static const int64_t ri[] = {1, 2, 3, 2, 4, 1, 3, 4, 5, 5, 2};
    fr_dataset *d = NULL;
    cr_assert_eq(fr_dataset_from_arrays(&d, 11, ru, ri, NULL, NULL), FR_OK, "%s", fr_errmsg());
    fr_model_config mc;
    fr_model_config_default(&mc, kind());
    mc.dim = 4;
    mc.loss = FR_LOSS_BCE;
    mc.l2 = 0.1f;
    mc.seed = 9;
    mc.init_std = 0.5f;
    fr_fl_config cfg;
    fr_fl_config_default(&cfg, mc.kind);
    cfg.seed = 9;
    cfg.batch = 1000;
    cfg.negatives = 0;
    fr_optim_config_default(&cfg.local, FR_OPTIM_SGD);
    cfg.local.lr = 0.3f;
    fr_sim *sim = NULL;
    cr_assert_eq(fr_sim_create(&sim, &mc, &cfg, d, NULL), FR_OK, "%s", fr_errmsg());
    fr_round_stats st;
    cr_assert_eq(fr_sim_round(sim, &st), FR_OK, "%s", fr_errmsg());
    cr_assert_eq(st.clients, 4);
    cr_assert_eq(st.examples, 11);
    fr_model *fed = fr_sim_model(sim);

    mc.n_users = fr_dataset_n_users(d);
    mc.n_items = fr_dataset_n_items(d);
    fr_model *ref = NULL;
    cr_assert_eq(fr_model_create(&ref, &mc), FR_OK);
    fr_model_graph gr = fr_model_graph_dataset(d);
    fr_model_set_graph(ref, &gr);
    uint32_t users[11], items[11];
    float lab[11];
    size_t n = 0;
    for (uint32_t u = 0; u < fr_dataset_n_users(d); u++) {
        const uint32_t *it;
        size_t k = fr_dataset_user(d, u, &it, NULL, NULL);
        for (size_t x = 0; x < k; x++) { users[n] = u; items[n] = it[x]; lab[n] = 1; n++; }
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

/* A device's fr_client_score is given no item list: a graph kind refuses it instead of
 * scoring through a stale binding. */
Test(lightgcn, client_score_is_refused) {
    fr_model *m = small_model(FR_LOSS_BPR, 0.0f);
    fr_fl_config fc;
    fr_fl_config_default(&fc, kind());
    fr_client_ws *ws = NULL;
    cr_assert_eq(fr_client_ws_create(&ws, fr_model_config_of(m), &fc), FR_OK, "%s", fr_errmsg());
    float row[4] = {0}, *priv[1] = {row}, out[2];
    uint32_t items[2] = {1, 3};
    cr_assert_eq(fr_client_score(ws, m, priv, items, 2, out), FR_ERR_UNSUPPORTED);
    cr_assert(strstr(fr_errmsg(), "lightgcn"), "%s", fr_errmsg());
    fr_client_ws_free(ws);
    fr_model_free(m);
}

/* A complete bipartite graph of nu users and ni items (every user has every item). */
static fr_dataset *complete_graph(uint32_t nu, uint32_t ni) {
    size_t n = (size_t)nu * ni;
    int64_t *u = malloc(n * sizeof *u), *i = malloc(n * sizeof *i);
    cr_assert(u && i);
    for (size_t k = 0; k < n; k++) { u[k] = (int64_t)(k / ni); i[k] = (int64_t)(k % ni); }
    fr_dataset *d = NULL;
    cr_assert_eq(fr_dataset_from_arrays(&d, n, u, i, NULL, NULL), FR_OK, "%s", fr_errmsg());
    free(u);
    free(i);
    return d;
}

/* The federated preset's item-row rate follows the data: a round's summed delta of an item
 * row grows with sum over its users u of sqrt(d_u) (each of a client's steps moves every
 * own item's row by d_u^-1/2 of the user's gradient, and a client makes ~d_u steps), so the
 * rate tuned on ml-100k-loo (0.05, where that sum peaks at FR_RUN_LIGHTGCN_REF_LOAD) is
 * scaled down where it is larger (the ml-1m partial ratings, ~3.5x: 0.05 diverged there)
 * and kept where it is not. Checked against the sum in closed form for a complete graph:
 * every item has nu users of degree ni, so its load is nu * sqrt(ni). */
Test(lightgcn, federated_item_rate_follows_the_graph_load) {
    fr_run_config c0, c;
    cr_assert_eq(fr_run_config_preset(&c0, "fedrec", kind(), false, NULL), FR_OK, "%s", fr_errmsg());
    cr_assert_float_eq(c0.fl.item_local.lr, 0.05f, 0, "the tuned rate without data");
    fr_dataset *small = complete_graph(50, 50); /* load 50 * sqrt(50) = 354: below the reference */
    cr_assert_eq(fr_run_config_preset(&c, "fedrec", kind(), false, small), FR_OK, "%s", fr_errmsg());
    cr_assert_eq(memcmp(&c.fl.item_local.lr, &c0.fl.item_local.lr, sizeof(float)), 0, "kept: the same bits");
    fr_dataset *big = complete_graph(700, 300); /* load 700 * sqrt(300) = 12124.4 */
    cr_assert_eq(fr_run_config_preset(&c, "fedrec", kind(), false, big), FR_OK, "%s", fr_errmsg());
    double want = 0.05 * FR_RUN_LIGHTGCN_REF_LOAD / (700.0 * sqrt(300.0));
    cr_assert(fabs(c.fl.item_local.lr - want) <= 1e-6 * want, "item lr %.9g, expected %.9g", c.fl.item_local.lr, want);
    /* the centralized preset and the other kinds do not read it */
    fr_run_config cc, bb;
    cr_assert_eq(fr_run_config_preset(&cc, "fedrec", kind(), true, big), FR_OK);
    cr_assert_eq(fr_run_config_preset(&c0, "fedrec", kind(), true, NULL), FR_OK);
    cr_assert_eq(memcmp(&cc.fl.item_local, &c0.fl.item_local, sizeof cc.fl.item_local), 0);
    cr_assert_eq(fr_run_config_preset(&bb, "fedrec", FR_MODEL_BPR, false, big), FR_OK);
    cr_assert_float_eq(bb.fl.item_local.lr, 0.8f, 0);
    fr_dataset_free(small);
    fr_dataset_free(big);
}

/* A server holds no interaction but the federation file fedrec data shard writes: the
 * stats it records (clients, mean rating, weights, the graph load written with 17
 * digits) are the training set's, bit for bit, so the preset a server takes from them
 * (fr_run_config_preset_stats) is train's (fr_run_config_preset on the data): federated
 * lightgcn's item rate scaled to the load, sasrec's rounds sized from the clients, and
 * again after the options changed the clients a round samples (fr_run_config_rounds). A
 * file without a graph load (an older fedrec's) leaves the rate unscaled. */
Test(lightgcn, server_and_train_presets_agree_from_the_federation_file, .timeout = 120) {
    fr_dataset *d = complete_graph(400, 300); /* load 400 * sqrt(300) = 6928.2: above the reference */
    double load = 0;
    cr_assert_eq(fr_dataset_graph_load(d, &load), FR_OK);
    cr_assert(fabs(load - 400.0 * sqrt(300.0)) <= 1e-9 * load, "load %.17g", load);
    char *dir = tu_tmpdir();
    cr_assert_eq(fr_dataset_write_shards(dir, d, d, NULL, fr_run_mean_rating(d)), FR_OK, "%s", fr_errmsg());
    fr_federation fed;
    cr_assert_eq(fr_federation_load(dir, &fed), FR_OK, "%s", fr_errmsg());
    cr_assert_eq(memcmp(&fed.graph_load, &load, sizeof load), 0, "graph load %.17g, the data's %.17g", fed.graph_load, load);
    fr_run_data_stats a, b;
    cr_assert_eq(fr_run_data_stats_of(d, &a), FR_OK);
    fr_run_data_stats_of_federation(&fed, &b);
    cr_assert_eq(a.users, 400);
    cr_assert_eq(b.users, a.users);
    cr_assert_eq(memcmp(&a.mean_rating, &b.mean_rating, sizeof a.mean_rating), 0);
    cr_assert_eq(a.weighted, b.weighted);
    cr_assert_eq(memcmp(&a.graph_load, &b.graph_load, sizeof a.graph_load), 0);
    fr_model_kind sas;
    cr_assert_eq(fr_model_kind_parse("sasrec", &sas), FR_OK);
    const fr_model_kind kinds[3] = {kind(), sas, FR_MODEL_MF};
    for (int k = 0; k < 3; k++) {
        fr_run_config t, s;
        cr_assert_eq(fr_run_config_preset(&t, "fedrec", kinds[k], false, d), FR_OK, "%s", fr_errmsg());
        cr_assert_eq(fr_run_config_preset_stats(&s, "fedrec", kinds[k], false, &b), FR_OK, "%s", fr_errmsg());
        const char *name = fr_model_kind_name(kinds[k]);
        cr_assert_eq(s.loop.steps, t.loop.steps, "%s: rounds %u, train's %u", name, s.loop.steps, t.loop.steps);
        cr_assert_eq(memcmp(&s.fl, &t.fl, sizeof s.fl), 0, "%s: the federation's config differs", name);
        cr_assert_eq(memcmp(&s.model.mu, &t.model.mu, sizeof s.model.mu), 0, "%s: mu", name);
        /* the options change the clients a round samples: the rounds follow, alike */
        s.fl.clients_per_round = t.fl.clients_per_round = 50;
        cr_assert_eq(fr_run_config_rounds(&s, &b), fr_run_config_rounds(&t, &a));
        if (k == 1) {
            cr_assert_eq(t.loop.steps, (uint32_t)ceil(t.fl_epochs * 400 / 32 - 1e-9), "sasrec: sized from 400 clients");
            cr_assert_eq(fr_run_config_rounds(&s, &b), (uint32_t)ceil(t.fl_epochs * 400 / 50 - 1e-9));
            cr_assert_eq(fr_run_config_rounds(&s, NULL), s.loop.steps, "no stats: the rounds as they are");
        }
        if (k == 0) {
            double want = 0.05 * FR_RUN_LIGHTGCN_REF_LOAD / load;
            cr_assert(fabs(s.fl.item_local.lr - want) <= 1e-6 * want, "item lr %.9g, expected %.9g", s.fl.item_local.lr,
                      want);
        }
    }
    /* an older fedrec's federation file: no graph_load line, the rate as tuned */
    char *fp = NULL;
    size_t n = 0;
    char path[4200];
    snprintf(path, sizeof path, "%s/federation.txt", dir);
    cr_assert((fp = tu_slurp(path, &n)) != NULL);
    char *gl = strstr(fp, "graph_load ");
    cr_assert(gl);
    *gl = 0;
    char *old = tu_write(dir, "old.txt", fp);
    cr_assert_eq(fr_federation_load(old, &fed), FR_OK, "%s", fr_errmsg());
    cr_assert_eq(fed.graph_load, 0);
    fr_run_data_stats_of_federation(&fed, &b);
    fr_run_config s;
    cr_assert_eq(fr_run_config_preset_stats(&s, "fedrec", kind(), false, &b), FR_OK);
    cr_assert_float_eq(s.fl.item_local.lr, 0.05f, 0, "unscaled without a load");
    /* a bad value is refused, naming it */
    strcpy(gl, "graph_load -3\n");
    char *bad = tu_write(dir, "bad.txt", fp);
    cr_assert_eq(fr_federation_load(bad, &fed), FR_ERR_PARSE);
    cr_assert(strstr(fr_errmsg(), "bad value '-3' for 'graph_load' (expected a number >= 0)"), "%s", fr_errmsg());
    free(fp);
    free(old);
    free(bad);
    tu_rmtree(dir);
    free(dir);
    fr_dataset_free(d);
}
