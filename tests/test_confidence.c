/* Confidence weights for implicit feedback (issue 11): a positive of weight r counts
 * c = 1 + alpha log(1 + r) in the loss of every example made from it.
 *   - the gradient of weighted examples, for bpr (BPR triples) and neumf (BCE), against
 *     central differences and against the unweighted per-example gradients scaled by c;
 *   - alpha 0, or data without weights, trains bit for bit as before (centralized and
 *     federated, 1 and 2 threads), and the weighted path with every c = 1 too;
 *   - weighted training is deterministic (threads, the fused SGD pass = the generic loop);
 *   - an effect: of two items held by the same users, the one with large counts ranks
 *     above the other for most users, and swapping the counts swaps the order;
 *   - the config block carries alpha only when it is not 0; presets and checks. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fedrec/fedrec.h"
#include "fedrec/runtime.h"
#include "fedrec/train.h"
#include "fl/fl_internal.h"
#include "gradcheck.h"
#include "model/examples.h"
#include "model/model_internal.h"
#include "testutil.h"

/* ------------------------------------------------------------------ data */

/* A deterministic count for (u, i): mostly small, a few large (0 included). */
static unsigned count_of(uint32_t u, uint32_t i) {
    uint32_t h = (u * 2654435761u) ^ (i * 40503u + 0x9e37u);
    h ^= h >> 13;
    h *= 0x5bd1e995u;
    h ^= h >> 15;
    unsigned k = h % 100;
    return k < 5 ? 0 : k < 80 ? 1 + k % 4 : 20 + k;
}

/* The interactions of a generated set as "user\titem\tcount" lines (counts from count_of,
 * or all `fixed` when fixed >= 0). The caller frees. */
static char *counts_text(const fr_dataset *g, int fixed) {
    size_t cap = 64 + (size_t)fr_dataset_n_interactions(g) * 32, at = 0;
    char *t = malloc(cap);
    cr_assert(t);
    for (uint32_t u = 0; u < fr_dataset_n_users(g); u++) {
        const uint32_t *it;
        size_t n = fr_dataset_user(g, u, &it, NULL, NULL);
        for (size_t k = 0; k < n; k++)
            at += (size_t)snprintf(t + at, cap - at, "%u\t%u\t%u\n", u, it[k],
                                   fixed >= 0 ? (unsigned)fixed : count_of(u, it[k]));
    }
    return t;
}

/* Loads text: with its counts as weights (weighted) or as implicit positives of rating 1. */
static fr_dataset *load_counts(const char *text, bool weighted) {
    char *dir = tu_tmpdir();
    fr_load_opts o;
    fr_load_opts_default(&o);
    o.implicit = true;
    o.implicit_weight = weighted;
    fr_load_stats st;
    fr_dataset *d = NULL;
    cr_assert_eq(tu_load_text(&d, dir, "counts.tsv", text, &o, &st), FR_OK, "%s", fr_errmsg());
    cr_assert_eq(fr_dataset_weighted(d), weighted);
    cr_assert(fr_dataset_implicit(d));
    tu_rmtree(dir);
    free(dir);
    return d;
}

typedef struct sets {
    fr_dataset *weighted;   /* counts as weights */
    fr_dataset *plain;      /* the same rows, implicit (rating 1) */
    fr_dataset *zeros;      /* the same rows, every weight 0 (confidence 1) */
} sets;

static sets make_sets(uint32_t users, uint32_t items, uint64_t n) {
    fr_dataset *g = tu_generate(users, items, n, 7);
    char *a = counts_text(g, -1), *z = counts_text(g, 0);
    sets s = {load_counts(a, true), load_counts(a, false), load_counts(z, true)};
    free(a);
    free(z);
    fr_dataset_free(g);
    return s;
}

static void free_sets(sets *s) {
    fr_dataset_free(s->weighted);
    fr_dataset_free(s->plain);
    fr_dataset_free(s->zeros);
}

Test(confidence, loader_marks_weights_and_splits_keep_them) {
    sets s = make_sets(30, 20, 200);
    cr_assert(fr_dataset_weighted(s.weighted) && !fr_dataset_weighted(s.plain));
    fr_dataset *tr, *te;
    cr_assert_eq(fr_dataset_split(s.weighted, FR_SPLIT_LOO, 0, 1, &tr, &te), FR_OK, "%s", fr_errmsg());
    cr_assert(fr_dataset_weighted(tr) && fr_dataset_weighted(te));
    fr_dataset_free(tr);
    fr_dataset_free(te);
    fr_dataset *gen = tu_generate(10, 10, 50, 1);
    cr_assert(!fr_dataset_weighted(gen), "generated ratings are ratings, not weights");
    fr_dataset_free(gen);
    free_sets(&s);
}

/* ------------------------------------------------------------------ (a) gradients */

typedef struct gc_ctx {
    const fr_model *m;
    fr_model_ws *ws;
    const fr_batch *b;
} gc_ctx;

static double model_loss(void *p) {
    gc_ctx *c = p;
    double l;
    cr_assert_eq(fr_model_loss(c->m, c->ws, c->b, &l), FR_OK);
    return l;
}

static fr_model *tiny(fr_model_kind kind, float l2) {
    fr_model_config c;
    fr_model_config_default(&c, kind);
    c.n_users = 4;
    c.n_items = 7;
    c.dim = 3;
    c.mlp_dim = 4;
    c.n_layers = 2;
    c.layers[0] = 5;
    c.layers[1] = 3;
    c.init_std = 0.5f;
    c.l2 = l2;
    fr_model *m = NULL;
    cr_assert_eq(fr_model_create(&m, &c), FR_OK, "%s", fr_errmsg());
    /* biases off 0, so that no ReLU input sits on its kink */
    for (int t = 0; t < fr_model_n_tensors(m); t++) {
        const fr_tensor *tt = fr_model_tensor(m, t);
        if (tt->kind == FR_TENSOR_DENSE && strstr(tt->name, ".bias"))
            for (uint32_t i = 0; i < tt->rows; i++) fr_model_params(m)[tt->offset + i] = 0.05f * (float)(i % 3) + 0.02f;
    }
    return m;
}

enum { NB = 6 };
static uint32_t G_USERS[NB] = {0, 1, 3, 0, 1, 0}, G_ITEMS[NB] = {2, 5, 2, 6, 0, 3}, G_NEG[NB] = {1, 4, 0, 5, 6, 2};
static float G_LABEL[NB] = {1, 0, 1, 1, 0, 1};
/* confidences of counts 40, -, 0, 3, 7, 1 at alpha 1.5 (and 1 for a BCE negative) */
static float G_W[NB];

static void weights(void) {
    const float r[NB] = {40, 0, 0, 3, 7, 1};
    for (int i = 0; i < NB; i++) G_W[i] = G_LABEL[i] > 0 ? fri_confidence(1.5f, r[i]) : 1.0f;
}

static fr_batch batch_of(const fr_model *m, size_t lo, size_t n, const float *w) {
    bool bpr = fr_model_config_of(m)->loss == FR_LOSS_BPR;
    fr_batch b = {G_USERS + lo, G_ITEMS + lo, bpr ? NULL : G_LABEL + lo, bpr ? G_NEG + lo : NULL, n,
                  w ? w + lo : NULL};
    return b;
}

/* The weighted minibatch's gradient against central differences of its weighted loss, on
 * every dense tensor and every touched row. */
static int check_by_differences(fr_model_kind kind) {
    weights();
    fr_model *m = tiny(kind, 0.1f);
    fr_batch b = batch_of(m, 0, NB, G_W);
    fr_model_ws *ws;
    fr_grad *g;
    cr_assert_eq(fr_model_ws_create(&ws, m, NB), FR_OK);
    cr_assert_eq(fr_grad_create(&g, m), FR_OK);
    double loss, loss2;
    cr_assert_eq(fr_model_loss_grad(m, ws, &b, g, &loss), FR_OK, "%s", fr_errmsg());
    cr_assert_eq(fr_model_loss(m, ws, &b, &loss2), FR_OK);
    cr_assert_eq(loss, loss2);
    gc_ctx ctx = {m, ws, &b};
    float *p = fr_model_params(m), *gd = fr_grad_data(g);
    int bad = 0, checked = 0;
    for (int t = 0; t < fr_model_n_tensors(m); t++) {
        const fr_tensor *tt = fr_model_tensor(m, t);
        const fr_rowset *s = fr_grad_touched(g, t);
        for (uint32_t r = 0; r < tt->rows; r++) {
            if (s && !s->mark[r]) continue;
            size_t o = tt->offset + (size_t)r * tt->cols;
            bad += gc_check(model_loss, &ctx, p + o, gd + o, tt->cols, tt->name);
            checked += (int)tt->cols;
        }
    }
    cr_assert_gt(checked, 20);
    fr_grad_free(g);
    fr_model_ws_free(ws);
    fr_model_free(m);
    return bad;
}

Test(confidence, weighted_gradient_by_central_differences_bpr) { cr_assert_eq(check_by_differences(FR_MODEL_BPR), 0); }
Test(confidence, weighted_gradient_by_central_differences_neumf) {
    cr_assert_eq(check_by_differences(FR_MODEL_NEUMF), 0);
}

/* Independently of the weighted code: without L2, the weighted minibatch's gradient is
 * sum_i (c_i / B) g_i, g_i the UNWEIGHTED gradient of example i alone (B = 1). */
static void check_by_decomposition(fr_model_kind kind) {
    weights();
    fr_model *m = tiny(kind, 0.0f);
    fr_model_ws *ws;
    fr_grad *g, *gi;
    cr_assert_eq(fr_model_ws_create(&ws, m, NB), FR_OK);
    cr_assert_eq(fr_grad_create(&g, m), FR_OK);
    cr_assert_eq(fr_grad_create(&gi, m), FR_OK);
    size_t np = fr_model_n_params(m);
    double *want = calloc(np, sizeof *want), lw = 0;
    cr_assert(want);
    for (size_t i = 0; i < NB; i++) {
        fr_batch one = batch_of(m, i, 1, NULL);
        double l;
        fr_grad_zero(gi);
        cr_assert_eq(fr_model_loss_grad(m, ws, &one, gi, &l), FR_OK, "%s", fr_errmsg());
        const float *x = fr_grad_data_const(gi);
        for (size_t k = 0; k < np; k++) want[k] += (double)G_W[i] / NB * (double)x[k];
        lw += (double)G_W[i] * l / NB;
    }
    fr_batch b = batch_of(m, 0, NB, G_W);
    double loss;
    cr_assert_eq(fr_model_loss_grad(m, ws, &b, g, &loss), FR_OK, "%s", fr_errmsg());
    cr_assert_float_eq(loss, lw, 1e-6 * fabs(lw), "%s: loss %.9g, the weighted sum %.9g", fr_model_kind_name(kind), loss, lw);
    const float *got = fr_grad_data_const(g);
    double big = 0;
    for (size_t k = 0; k < np; k++) big = fmax(big, fabs(want[k]));
    cr_assert_gt(big, 1e-3);
    for (size_t k = 0; k < np; k++)
        cr_assert(fabs((double)got[k] - want[k]) <= 1e-5 * big, "%s: gradient[%zu] %.9g, want %.9g",
                  fr_model_kind_name(kind), k, (double)got[k], want[k]);
    free(want);
    fr_grad_free(gi);
    fr_grad_free(g);
    fr_model_ws_free(ws);
    fr_model_free(m);
}

Test(confidence, weighted_gradient_is_the_scaled_sum_bpr) { check_by_decomposition(FR_MODEL_BPR); }
Test(confidence, weighted_gradient_is_the_scaled_sum_neumf) { check_by_decomposition(FR_MODEL_NEUMF); }

/* By hand, for one BPR triple of weight c: dL/dp = c * -sigmoid(-(p.q - p.n)) * (q - n). */
Test(confidence, bpr_triple_by_hand) {
    fr_model *m = tiny(FR_MODEL_BPR, 0.0f);
    const fr_model_config *mc = fr_model_config_of(m);
    cr_assert_eq(mc->loss, FR_LOSS_BPR);
    int ut = fr_model_tensor_find(m, "user_factor"), it = fr_model_tensor_find(m, "item_factor");
    cr_assert(ut >= 0 && it >= 0, "tensors user_factor/item_factor");
    const float *P = fr_model_params(m) + fr_model_tensor(m, ut)->offset;
    const float *Q = fr_model_params(m) + fr_model_tensor(m, it)->offset;
    uint32_t u = 2, i = 4, j = 1;
    float c = fri_confidence(1.0f, 9.0f); /* 1 + ln 10 */
    cr_assert_float_eq(c, 1.0 + log(10.0), 1e-6);
    fr_batch b = {&u, &i, NULL, &j, 1, &c};
    fr_model_ws *ws;
    fr_grad *g;
    cr_assert_eq(fr_model_ws_create(&ws, m, 1), FR_OK);
    cr_assert_eq(fr_grad_create(&g, m), FR_OK);
    double loss;
    cr_assert_eq(fr_model_loss_grad(m, ws, &b, g, &loss), FR_OK);
    size_t d = mc->dim;
    const float *p = P + u * d, *q = Q + i * d, *n = Q + j * d;
    double x = 0;
    for (size_t k = 0; k < d; k++) x += (double)p[k] * q[k] - (double)p[k] * n[k];
    double sig = 1 / (1 + exp(x)); /* sigmoid(-x) */
    cr_assert_float_eq(loss, c * log1p(exp(-x)), 1e-6);
    const float *gp = fr_grad_data_const(g) + fr_model_tensor(m, ut)->offset + u * d;
    const float *gq = fr_grad_data_const(g) + fr_model_tensor(m, it)->offset + i * d;
    for (size_t k = 0; k < d; k++) {
        cr_assert_float_eq(gp[k], -c * sig * (q[k] - n[k]), 1e-5);
        cr_assert_float_eq(gq[k], -c * sig * p[k], 1e-5);
    }
    fr_grad_free(g);
    fr_model_ws_free(ws);
    fr_model_free(m);
}

/* ------------------------------------------------------------------ examples */

Test(confidence, examples_carry_the_positive_confidence) {
    sets s = make_sets(12, 15, 80);
    fr_loss losses[2] = {FR_LOSS_BCE, FR_LOSS_BPR};
    for (int li = 0; li < 2; li++) {
        fri_examples a = {0}, b = {0};
        b.alpha = 0.5f;
        for (uint32_t u = 0; u < fr_dataset_n_users(s.weighted); u++) {
            fr_rng r1, r2;
            fr_rng_init(&r1, 3, 1, u, FR_PURPOSE_NEGATIVES);
            fr_rng_init(&r2, 3, 1, u, FR_PURPOSE_NEGATIVES);
            cr_assert_eq(fri_examples_add_user(&a, s.weighted, u, u, losses[li], 3, &r1), FR_OK);
            cr_assert_eq(fri_examples_add_user(&b, s.weighted, u, u, losses[li], 3, &r2), FR_OK);
        }
        cr_assert_eq(a.n, b.n);
        cr_assert(!memcmp(a.item, b.item, a.n * 4) && !memcmp(a.neg, b.neg, a.n * 4), "the same draws");
        size_t heavy = 0;
        for (size_t k = 0; k < b.n; k++) {
            float r;
            const fr_idmap *um = fr_dataset_users(s.weighted), *im = fr_dataset_items(s.weighted);
            cr_assert(tu_find_row(s.weighted, fr_idmap_raw(um, b.user[k]), fr_idmap_raw(im, b.item[k]), &r, NULL) ||
                      b.label[k] == 0.0f);
            float want = losses[li] == FR_LOSS_BCE && b.label[k] == 0.0f ? 1.0f : (float)(1.0 + 0.5 * log1p((double)r));
            cr_assert_float_eq(b.wt[k], want, 1e-6, "example %zu", k);
            heavy += b.wt[k] > 2.5f;
        }
        cr_assert_gt(heavy, 0, "some large counts");
        /* the shuffle moves the weights with their examples, with the same draws */
        fr_rng r1, r2;
        fr_rng_init(&r1, 3, 1, 0, FR_PURPOSE_SHUFFLE);
        fr_rng_init(&r2, 3, 1, 0, FR_PURPOSE_SHUFFLE);
        float *before = malloc(b.n * sizeof *before);
        uint32_t *items = malloc(b.n * sizeof *items);
        memcpy(before, b.wt, b.n * sizeof *before);
        memcpy(items, b.item, b.n * sizeof *items);
        fri_examples_shuffle(&a, &r1);
        fri_examples_shuffle(&b, &r2);
        cr_assert(!memcmp(a.item, b.item, a.n * 4) && !memcmp(a.user, b.user, a.n * 4));
        for (size_t k = 0; k < b.n; k++) {
            float r;
            const fr_idmap *um = fr_dataset_users(s.weighted), *im = fr_dataset_items(s.weighted);
            bool pos = tu_find_row(s.weighted, fr_idmap_raw(um, b.user[k]), fr_idmap_raw(im, b.item[k]), &r, NULL);
            if (losses[li] == FR_LOSS_BPR || b.label[k] > 0) {
                cr_assert(pos);
                cr_assert_float_eq(b.wt[k], (float)(1.0 + 0.5 * log1p((double)r)), 1e-6);
            }
        }
        free(before);
        free(items);
        fri_examples_free(&a);
        fri_examples_free(&b);
    }
    free_sets(&s);
}

/* ------------------------------------------------------------------ (b) the bits without weights */

typedef struct central_opts {
    fr_model_kind kind;
    int threads;
    float alpha;
    bool no_fused;
    int epochs;
} central_opts;

/* Trains like the fedrec presets: bpr one SGD step per example (the fused pass), the NCF
 * models Adam on minibatches (the generic loop on shards). */
static fr_model *central(const fr_dataset *d, central_opts o, double *loss) {
    fr_model_config mc;
    fr_model_config_default(&mc, o.kind);
    mc.n_users = fr_dataset_n_users(d);
    mc.n_items = fr_dataset_n_items(d);
    mc.dim = 8;
    mc.l2 = 0.01f;
    fr_model *m = NULL;
    cr_assert_eq(fr_model_create(&m, &mc), FR_OK, "%s", fr_errmsg());
    fr_train_config tc;
    fr_train_config_default(&tc);
    tc.threads = o.threads;
    tc.confidence_alpha = o.alpha;
    if (o.kind == FR_MODEL_BPR) {
        fr_optim_config_default(&tc.optim, FR_OPTIM_SGD);
        tc.optim.lr = 0.05f;
        tc.optim.sparse_rows = true;
        tc.batch = 1;
    } else {
        tc.batch = 128;
        tc.optim.lr = 0.005f;
    }
    fr_trainer *t = NULL;
    cr_assert_eq(fr_trainer_create(&t, m, d, &tc), FR_OK, "%s", fr_errmsg());
    if (o.no_fused) fri_trainer_no_fused(t);
    for (int e = 0; e < o.epochs; e++) cr_assert_eq(fr_trainer_epoch(t, loss), FR_OK, "%s", fr_errmsg());
    fr_trainer_free(t);
    return m;
}

static bool same(const fr_model *a, const fr_model *b) {
    return fr_model_n_params(a) == fr_model_n_params(b) &&
           !memcmp(fr_model_params_const(a), fr_model_params_const(b), fr_model_n_params(a) * sizeof(float));
}

Test(confidence, centralized_without_weights_is_bit_identical) {
    sets s = make_sets(60, 40, 700);
    fr_model_kind kinds[2] = {FR_MODEL_BPR, FR_MODEL_NEUMF};
    for (int k = 0; k < 2; k++)
        for (int th = 1; th <= 2; th++) {
            const char *kn = fr_model_kind_name(kinds[k]);
            double l0, l1, l2, l3;
            central_opts o = {kinds[k], th, 0.0f, false, 2};
            fr_model *ref = central(s.plain, o, &l0);          /* unweighted data, alpha 0: as before */
            fr_model *w0 = central(s.weighted, o, &l1);        /* weights with alpha 0: ignored */
            o.alpha = 1.0f;
            fr_model *p1 = central(s.plain, o, &l2);           /* alpha without weights: ignored */
            fr_model *z1 = central(s.zeros, o, &l3);           /* the weighted path, every c = 1 */
            cr_assert(same(ref, w0), "%s %d threads: weighted data, alpha 0", kn, th);
            cr_assert(same(ref, p1), "%s %d threads: data without weights, alpha 1", kn, th);
            cr_assert(same(ref, z1), "%s %d threads: weights 0 (confidence 1), alpha 1", kn, th);
            cr_assert(l0 == l1 && l0 == l2 && l0 == l3);
            fr_model *w1 = central(s.weighted, o, &l1);        /* the weights do change the model */
            cr_assert(!same(ref, w1), "%s: alpha 1 on counts changed nothing", kn);
            fr_model_free(ref);
            fr_model_free(w0);
            fr_model_free(p1);
            fr_model_free(z1);
            fr_model_free(w1);
        }
    free_sets(&s);
}

Test(confidence, centralized_weighted_is_deterministic_and_fused_is_the_generic_loop) {
    sets s = make_sets(60, 40, 700);
    fr_model_kind kinds[2] = {FR_MODEL_BPR, FR_MODEL_NEUMF};
    for (int k = 0; k < 2; k++) {
        double l1, l2, l3;
        central_opts o = {kinds[k], 1, 0.8f, false, 2};
        fr_model *a = central(s.weighted, o, &l1);
        o.threads = 2;
        fr_model *b = central(s.weighted, o, &l2);
        o.no_fused = true;
        fr_model *c = central(s.weighted, o, &l3);
        cr_assert(same(a, b), "%s: weighted, 1 vs 2 threads", fr_model_kind_name(kinds[k]));
        cr_assert(same(a, c), "%s: weighted, the fused pass vs the generic loop", fr_model_kind_name(kinds[k]));
        cr_assert(l1 == l2 && l1 == l3);
        fr_model_free(a);
        fr_model_free(b);
        fr_model_free(c);
    }
    free_sets(&s);
}

typedef struct fed_opts {
    fr_model_kind kind;
    int threads;
    float alpha;
    int rounds;
    bool wire;
} fed_opts;

/* The fedrec preset's federation (item rows: the sum of the deltas, stepped by SGD: a
 * fresh Adam would turn any row's first gradient, weighted or not, into a step of +-lr),
 * with small embeddings. */
static fr_model *federated(const fr_dataset *d, fed_opts o) {
    fr_run_config rc;
    cr_assert_eq(fr_run_config_preset(&rc, NULL, o.kind, false, NULL), FR_OK);
    fr_model_config mc = rc.model;
    mc.dim = 8;
    fr_fl_config fc = rc.fl;
    fc.confidence_alpha = o.alpha;
    fc.batch = 16;
    fr_pool *pool = NULL;
    cr_assert_eq(fr_pool_create(&pool, o.threads), FR_OK);
    fr_sim *sim = NULL;
    cr_assert_eq(fr_sim_create(&sim, &mc, &fc, d, pool), FR_OK, "%s", fr_errmsg());
    fr_sim_set_wire(sim, o.wire);
    for (int r = 0; r < o.rounds; r++) {
        fr_round_stats st;
        cr_assert_eq(fr_sim_round(sim, &st), FR_OK, "%s", fr_errmsg());
    }
    fr_model *m = NULL;
    cr_assert_eq(fr_model_clone(&m, fr_sim_model(sim)), FR_OK);
    fr_sim_free(sim);
    fr_pool_free(pool);
    return m;
}

Test(confidence, federated_without_weights_is_bit_identical) {
    sets s = make_sets(40, 30, 400);
    fr_model_kind kinds[2] = {FR_MODEL_BPR, FR_MODEL_NEUMF};
    for (int k = 0; k < 2; k++)
        for (int th = 1; th <= 2; th++) {
            const char *kn = fr_model_kind_name(kinds[k]);
            fed_opts o = {kinds[k], th, 0.0f, 2, true};
            fr_model *ref = federated(s.plain, o);
            fr_model *w0 = federated(s.weighted, o);
            o.alpha = 1.0f;
            fr_model *p1 = federated(s.plain, o);
            fr_model *z1 = federated(s.zeros, o);
            fr_model *w1 = federated(s.weighted, o);
            cr_assert(same(ref, w0), "%s %d threads: weighted data, alpha 0", kn, th);
            cr_assert(same(ref, p1), "%s %d threads: data without weights, alpha 1", kn, th);
            cr_assert(same(ref, z1), "%s %d threads: weights 0 (confidence 1), alpha 1", kn, th);
            cr_assert(!same(ref, w1), "%s: alpha 1 on counts changed nothing", kn);
            fr_model_free(ref);
            fr_model_free(w0);
            fr_model_free(p1);
            fr_model_free(z1);
            fr_model_free(w1);
        }
    free_sets(&s);
}

Test(confidence, federated_weighted_is_deterministic) {
    sets s = make_sets(40, 30, 400);
    fr_model_kind kinds[2] = {FR_MODEL_BPR, FR_MODEL_NEUMF};
    for (int k = 0; k < 2; k++) {
        fed_opts o = {kinds[k], 1, 1.0f, 2, true};
        fr_model *a = federated(s.weighted, o);
        o.threads = 2;
        fr_model *b = federated(s.weighted, o);
        o.wire = false;
        fr_model *c = federated(s.weighted, o);
        cr_assert(same(a, b), "%s: weighted, 1 vs 2 threads", fr_model_kind_name(kinds[k]));
        cr_assert(same(a, c), "%s: weighted, RESULT bytes vs in memory", fr_model_kind_name(kinds[k]));
        fr_model_free(a);
        fr_model_free(b);
        fr_model_free(c);
    }
    free_sets(&s);
}

/* ------------------------------------------------------------------ (c) the effect */

enum { EU = 120, EI = 30, HOT = 0, COLD = 1 };

/* Users 0..EU-1 each hold items HOT and COLD (equally frequent, the same users) and 6
 * others; the count of `heavy` is 30 for every user, the other counts are 1. */
static fr_dataset *effect_data(int heavy, bool weighted) {
    size_t cap = (size_t)EU * 8 * 24, at = 0;
    char *t = malloc(cap);
    cr_assert(t);
    for (uint32_t u = 0; u < EU; u++) {
        at += (size_t)snprintf(t + at, cap - at, "%u\t%u\t%u\n%u\t%u\t%u\n", u, HOT, heavy == HOT ? 30 : 1, u, COLD,
                               heavy == COLD ? 30 : 1);
        for (uint32_t k = 0; k < 6; k++) at += (size_t)snprintf(t + at, cap - at, "%u\t%u\t1\n", u, 2 + (u * 7 + k * 5) % (EI - 2));
    }
    fr_dataset *d = load_counts(t, weighted);
    free(t);
    return d;
}

/* The share of users whose score of raw item a is above raw item b's. */
static double share_above(const fr_model *m, const fr_dataset *d, int64_t a, int64_t b) {
    uint32_t ia = (uint32_t)fr_idmap_find(fr_dataset_items(d), a), ib = (uint32_t)fr_idmap_find(fr_dataset_items(d), b);
    uint32_t n = fr_dataset_n_users(d), users[2 * EU], items[2 * EU];
    for (uint32_t u = 0; u < n; u++) {
        users[2 * u] = users[2 * u + 1] = u;
        items[2 * u] = ia;
        items[2 * u + 1] = ib;
    }
    float s[2 * EU];
    cr_assert_eq(fr_model_score(m, NULL, users, items, 2 * n, s), FR_OK);
    uint32_t above = 0;
    for (uint32_t u = 0; u < n; u++) above += s[2 * u] > s[2 * u + 1];
    return (double)above / n;
}

static void effect(bool fed, fr_model_kind kind) {
    const char *kn = fr_model_kind_name(kind);
    fr_model *m[2][2]; /* [heavy item][weighted] */
    fr_dataset *d[2][2];
    for (int h = 0; h < 2; h++)
        for (int w = 0; w < 2; w++) {
            d[h][w] = effect_data(h == 0 ? HOT : COLD, w);
            double l;
            m[h][w] = fed ? federated(d[h][w], (fed_opts){kind, 2, 1.0f, 8, true})
                          : central(d[h][w], (central_opts){kind, 2, 1.0f, false, 8}, &l);
        }
    double hot_w = share_above(m[0][1], d[0][1], HOT, COLD), cold_w = share_above(m[1][1], d[1][1], COLD, HOT);
    cr_log_info("%s %s: heavy item above the other for %.2f and %.2f of the users", fed ? "federated" : "centralized",
                kn, hot_w, cold_w);
    cr_assert_geq(hot_w, 0.8, "%s: item %d (counts 30) above item %d for %.2f of the users", kn, HOT, COLD, hot_w);
    cr_assert_geq(cold_w, 0.8, "%s: item %d (counts 30) above item %d for %.2f of the users", kn, COLD, HOT, cold_w);
    /* without weights the counts are not seen: the same model whichever item had them, so
     * its order of the two cannot follow the counts */
    cr_assert(same(m[0][0], m[1][0]), "%s: unweighted models differ with the counts", kn);
    cr_log_info("%s %s without weights: item %d above item %d for %.2f of the users", fed ? "federated" : "centralized",
                kn, HOT, COLD, share_above(m[0][0], d[0][0], HOT, COLD));
    for (int h = 0; h < 2; h++)
        for (int w = 0; w < 2; w++) {
            fr_model_free(m[h][w]);
            fr_dataset_free(d[h][w]);
        }
}

Test(confidence, heavy_counts_rank_first_centralized_bpr) { effect(false, FR_MODEL_BPR); }
Test(confidence, heavy_counts_rank_first_centralized_neumf) { effect(false, FR_MODEL_NEUMF); }
Test(confidence, heavy_counts_rank_first_federated_bpr) { effect(true, FR_MODEL_BPR); }
Test(confidence, heavy_counts_rank_first_federated_neumf) { effect(true, FR_MODEL_NEUMF); }

/* ------------------------------------------------------------------ config */

Test(confidence, config_block_carries_alpha_only_when_set) {
    fr_model_config mc;
    fr_model_config_default(&mc, FR_MODEL_NEUMF);
    mc.n_items = 10;
    fr_fl_config fc;
    fr_fl_config_default(&fc, FR_MODEL_NEUMF);
    cr_assert_eq(fc.confidence_alpha, 0.0f, "off by default");
    fri_buf a = {0}, b = {0};
    cr_assert_eq(fri_fl_config_block(&a, &mc, &fc), FR_OK);
    fc.confidence_alpha = 0.75f;
    cr_assert_eq(fri_fl_config_block(&b, &mc, &fc), FR_OK);
    cr_assert_eq(b.len, a.len + 4, "alpha is 4 bytes, only when set");
    fr_model_config m2;
    fr_fl_config f2;
    fri_rd r;
    fri_rd_init(&r, b.data, b.len, "<test>", "config block");
    cr_assert_eq(fri_fl_config_block_get(&r, &m2, &f2), FR_OK, "%s", fr_errmsg());
    cr_assert_eq(f2.confidence_alpha, 0.75f);
    fri_rd_init(&r, a.data, a.len, "<test>", "config block");
    cr_assert_eq(fri_fl_config_block_get(&r, &m2, &f2), FR_OK, "%s", fr_errmsg());
    cr_assert_eq(f2.confidence_alpha, 0.0f);
    cr_assert_neq(fr_crc32c(0, a.data, a.len), fr_crc32c(0, b.data, b.len), "another federation");
    /* the flag with an alpha of 0 is not an encoding: refused */
    size_t at = b.len - 4;
    memset(b.data + at, 0, 4);
    fri_rd_init(&r, b.data, b.len, "<test>", "config block");
    cr_assert_eq(fri_fl_config_block_get(&r, &m2, &f2), FR_ERR_FORMAT);
    cr_assert(strstr(fr_errmsg(), "confidence alpha"), "%s", fr_errmsg());
    fri_buf_free(&a);
    fri_buf_free(&b);
    fc.confidence_alpha = -1;
    cr_assert_eq(fr_fl_config_check(&fc), FR_ERR_INVALID);
    fc.confidence_alpha = NAN;
    cr_assert_eq(fr_fl_config_check(&fc), FR_ERR_INVALID);
    fr_train_config tc;
    fr_train_config_default(&tc);
    cr_assert_eq(tc.confidence_alpha, 0.0f);
    tc.confidence_alpha = INFINITY;
    cr_assert_eq(fr_train_config_check(&tc), FR_ERR_INVALID);
    cr_assert(strstr(fr_errmsg(), "confidence alpha"), "%s", fr_errmsg());
}

Test(confidence, presets_weigh_weighted_data_only) {
    sets s = make_sets(20, 15, 120);
    fr_run_config c;
    fr_model_kind kinds[4] = {FR_MODEL_BPR, FR_MODEL_GMF, FR_MODEL_MLP, FR_MODEL_NEUMF};
    for (int k = 0; k < 4; k++)
        for (int cen = 0; cen < 2; cen++) {
            cr_assert_eq(fr_run_config_preset(&c, NULL, kinds[k], cen, s.weighted), FR_OK);
            cr_assert_eq(c.train.confidence_alpha, FR_RUN_CONFIDENCE_ALPHA);
            cr_assert_eq(c.fl.confidence_alpha, FR_RUN_CONFIDENCE_ALPHA);
            cr_assert_eq(fr_run_config_preset(&c, "textbook", kinds[k], cen, s.weighted), FR_OK);
            cr_assert_eq(c.fl.confidence_alpha, FR_RUN_CONFIDENCE_ALPHA);
            cr_assert_eq(fr_run_config_preset(&c, NULL, kinds[k], cen, s.plain), FR_OK);
            cr_assert(c.train.confidence_alpha == 0 && c.fl.confidence_alpha == 0);
            cr_assert_eq(fr_run_config_preset(&c, NULL, kinds[k], cen, NULL), FR_OK);
            cr_assert(c.train.confidence_alpha == 0 && c.fl.confidence_alpha == 0);
        }
    cr_assert_eq(fr_run_config_preset(&c, NULL, FR_MODEL_POP, true, s.weighted), FR_OK);
    cr_assert(c.train.confidence_alpha == 0, "pop is fitted, not trained by gradients");
    free_sets(&s);
}

/* fr_run with the preset on counts: the alpha reaches the trainers (the model differs
 * from alpha 0's) and the provenance records it. */
Test(confidence, run_and_provenance) {
    sets s = make_sets(40, 30, 400);
    fr_dataset *tr, *te;
    cr_assert_eq(fr_dataset_split(s.weighted, FR_SPLIT_LOO, 0, 1, &tr, &te), FR_OK, "%s", fr_errmsg());
    for (int cen = 0; cen < 2; cen++) {
        fr_run_config c;
        cr_assert_eq(fr_run_config_preset(&c, NULL, FR_MODEL_BPR, cen, tr), FR_OK);
        c.loop.steps = 2;
        c.loop.eval_every = 0;
        fr_model *a = NULL, *b = NULL;
        cr_assert_eq(fr_run(&c, tr, te, NULL, NULL, NULL, NULL, &a), FR_OK, "%s", fr_errmsg());
        fr_provenance pv;
        fr_provenance_init(&pv);
        cr_assert_eq(fr_provenance_set_run(&pv, &c, 2), FR_OK);
        char *json = NULL;
        cr_assert_eq(fr_provenance_encode(&pv, &json), FR_OK, "%s", fr_errmsg());
        cr_assert(strstr(json, "\"confidence_alpha\":1"), "%s", json);
        fr_provenance q;
        fr_provenance_init(&q);
        cr_assert_eq(fr_provenance_decode(&q, json), FR_OK, "%s", fr_errmsg());
        cr_assert_eq(cen ? q.train.confidence_alpha : q.fl.confidence_alpha, 1.0f);
        fr_provenance_destroy(&q);
        fr_provenance_json_free(json);
        fr_provenance_destroy(&pv);
        c.train.confidence_alpha = c.fl.confidence_alpha = 0;
        cr_assert_eq(fr_run(&c, tr, te, NULL, NULL, NULL, NULL, &b), FR_OK, "%s", fr_errmsg());
        cr_assert(!same(a, b), "%s: the preset's alpha did not reach the trainer", cen ? "centralized" : "federated");
        fr_model_free(a);
        fr_model_free(b);
    }
    fr_dataset_free(tr);
    fr_dataset_free(te);
    free_sets(&s);
}
