/* The whole-graph LightGCN, lightgcn-full (src/model/model_lightgcn.c): its propagation
 * against powers of the dense normalised adjacency computed here in double, its loss and
 * gradient against the same dense reference and against central differences (and a
 * wrong gradient caught), the score cache following the parameters and the graph, the
 * model file bit for bit, the refusal to train federated, and centralized training
 * (bit-identical across thread counts, better than at random). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fedrec/fedrec.h"
#include "fedrec/model_eval.h"
#include "fedrec/run.h"
#include "fedrec/train.h"
#include "gradcheck.h"
#include "model/lightgcn_prop.h"
#include "model/model_internal.h"
#include "testutil.h"

static fr_model_kind kind(void) {
    fr_model_kind k = 0;
    cr_assert_eq(fr_model_kind_parse("lightgcn-full", &k), FR_OK, "%s", fr_errmsg());
    return k;
}

/* ------------------------------------------------------------------ a small graph */

typedef struct csr {
    const uint32_t *start, *items;
} csr;

static size_t csr_items(const void *ctx, uint32_t u, const uint32_t **items) {
    const csr *g = ctx;
    *items = g->items + g->start[u];
    return g->start[u + 1] - g->start[u];
}

/* 5 users, 9 items; user 3 has no item, item 8 only user 2 (degree 1) */
#define NU 5
#define NI 9
#define D 4
static const uint32_t G_START[] = {0, 3, 5, 9, 9, 11};
static const uint32_t G_ITEMS[] = {0, 2, 5, 1, 2, 3, 4, 6, 8, 0, 7};
static const csr GRAPH = {G_START, G_ITEMS};
/* the same graph without user 0's edge to item 5 */
static const uint32_t H_START[] = {0, 2, 4, 8, 8, 10};
static const uint32_t H_ITEMS[] = {0, 2, 1, 2, 3, 4, 6, 8, 0, 7};
static const csr GRAPH2 = {H_START, H_ITEMS};

static fr_model *small_model(fr_loss loss, float l2, uint32_t layers) {
    fr_model_config c;
    fr_model_config_default(&c, kind());
    cr_assert_eq(c.n_layers, 2, "RecBole's default depth");
    c.n_users = NU;
    c.n_items = NI;
    c.dim = D;
    c.n_layers = layers;
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

/* ------------------------------------------------------------------ dense reference */

#define NN (NI + NU) /* nodes: items 0..NI-1, then users */

/* M = (I + A + ... + A^K) / (K + 1) of graph g, A = D^-1/2 Adj D^-1/2, all dense, in double. */
static void dense_mean_power(const csr *g, uint32_t K, double M[NN][NN]) {
    static double A[NN][NN], P[NN][NN], T[NN][NN];
    double deg[NN] = {0};
    memset(A, 0, sizeof A);
    for (uint32_t u = 0; u < NU; u++)
        for (uint32_t k = g->start[u]; k < g->start[u + 1]; k++) {
            A[NI + u][g->items[k]] = A[g->items[k]][NI + u] = 1;
            deg[NI + u] += 1;
            deg[g->items[k]] += 1;
        }
    for (int a = 0; a < NN; a++)
        for (int b = 0; b < NN; b++)
            if (A[a][b] != 0) A[a][b] /= sqrt(deg[a] * deg[b]);
    memset(P, 0, sizeof P);
    for (int a = 0; a < NN; a++) P[a][a] = 1;
    memcpy(M, P, sizeof P);
    for (uint32_t l = 0; l < K; l++) {
        for (int a = 0; a < NN; a++)
            for (int b = 0; b < NN; b++) {
                double s = 0;
                for (int c = 0; c < NN; c++) s += A[a][c] * P[c][b];
                T[a][b] = s;
            }
        memcpy(P, T, sizeof P);
        for (int a = 0; a < NN; a++)
            for (int b = 0; b < NN; b++) M[a][b] += P[a][b];
    }
    for (int a = 0; a < NN; a++)
        for (int b = 0; b < NN; b++) M[a][b] /= (double)(K + 1);
}

/* F = M E^0 of m's parameters (E^0: item rows, then user rows). */
static void dense_final(const fr_model *m, double M[NN][NN], double F[NN][D]) {
    const float *w = fr_model_params_const(m);
    size_t qo = fr_model_tensor(m, 0)->offset, po = fr_model_tensor(m, 1)->offset;
    for (int a = 0; a < NN; a++)
        for (int k = 0; k < D; k++) {
            double s = 0;
            for (int b = 0; b < NN; b++) s += M[a][b] * w[(b < NI ? qo + (size_t)b * D : po + (size_t)(b - NI) * D) + k];
            F[a][k] = s;
        }
}

static void check_scores(const fr_model *m, const csr *g, uint32_t K) {
    static double M[NN][NN], F[NN][D];
    dense_mean_power(g, K, M);
    dense_final(m, M, F);
    uint32_t us[NU * NI], is[NU * NI];
    float out[NU * NI];
    for (uint32_t u = 0; u < NU; u++)
        for (uint32_t i = 0; i < NI; i++) us[u * NI + i] = u, is[u * NI + i] = i;
    fr_model_ws *ws = NULL;
    cr_assert_eq(fr_model_ws_create(&ws, m, 7), FR_OK, "%s", fr_errmsg()); /* several calls: the cache */
    cr_assert_eq(fr_model_score(m, ws, us, is, NU * NI, out), FR_OK, "%s", fr_errmsg());
    double worst = 0, scale = 0;
    for (uint32_t x = 0; x < NU * NI; x++) {
        double s = 0;
        for (int k = 0; k < D; k++) s += F[NI + us[x]][k] * F[is[x]][k];
        worst = fmax(worst, fabs(s - out[x]));
        scale = fmax(scale, fabs(s));
    }
    cr_assert_gt(scale, 1e-3);
    cr_assert(worst <= 1e-5 * scale, "K = %u: scores off the dense reference by %g (scale %g)", K, worst, scale);
    fr_model_ws_free(ws);
}

Test(lightgcn_full, scores_equal_dense_adjacency_powers) {
    for (uint32_t K = 0; K <= 4; K++) {
        fr_model *m = small_model(FR_LOSS_BPR, 0.0f, K);
        check_scores(m, &GRAPH, K);
        fr_model_free(m);
    }
}

/* The workspace's propagation is reused only while the parameters and the graph are
 * those it came from. */
Test(lightgcn_full, score_cache_follows_parameters_and_graph) {
    fr_model *m = small_model(FR_LOSS_BPR, 0.0f, 3);
    fr_model_ws *ws = NULL;
    cr_assert_eq(fr_model_ws_create(&ws, m, 16), FR_OK);
    uint32_t u[2] = {2, 0}, i[2] = {8, 2}; /* in the two components of the graph */
    float s0[2], s1[2], s2[2];
    cr_assert_eq(fr_model_score(m, ws, u, i, 2, s0), FR_OK);
    fr_model_params(m)[fr_model_tensor(m, 0)->offset + 4 * D] += 0.25f; /* item 4: user 2's */
    cr_assert_eq(fr_model_score(m, ws, u, i, 2, s1), FR_OK);
    cr_assert_neq(s0[0], s1[0], "a parameter changed: the score must too");
    check_scores(m, &GRAPH, 3);
    fr_model_graph g2 = {csr_items, &GRAPH2}; /* user 0 without item 5 */
    fr_model_set_graph(m, &g2);
    cr_assert_eq(fr_model_score(m, ws, u, i, 2, s2), FR_OK);
    cr_assert_neq(s1[1], s2[1], "another graph: another score");
    check_scores(m, &GRAPH2, 3);
    fr_model_ws_free(ws);
    fr_model_free(m);
}

/* Every pair's score of m through ws, and through a workspace of its own (no cache). */
static void score_all(const fr_model *m, fr_model_ws *ws, float *out, float *fresh) {
    uint32_t us[NU * NI], is[NU * NI];
    for (uint32_t u = 0; u < NU; u++)
        for (uint32_t i = 0; i < NI; i++) us[u * NI + i] = u, is[u * NI + i] = i;
    cr_assert_eq(fr_model_score(m, ws, us, is, NU * NI, out), FR_OK, "%s", fr_errmsg());
    if (fresh) cr_assert_eq(fr_model_score(m, NULL, us, is, NU * NI, fresh), FR_OK, "%s", fr_errmsg());
}

/* Under a hold (the evaluator's, for the length of an evaluation) the cache is checked
 * once; a change made between holds, through a pointer taken before them, or another
 * model of the same shape scored under the same hold, is seen: each time the scores are
 * bit for bit those of a workspace without a cache. */
Test(lightgcn_full, score_cache_under_a_hold_sees_every_change_between_holds) {
    fr_model *m = small_model(FR_LOSS_BPR, 0.0f, 3), *other = small_model(FR_LOSS_BPR, 0.0f, 3);
    float *w = fr_model_params(m); /* kept, and written through later */
    const size_t item4 = fr_model_tensor(m, 0)->offset + 4 * D, user0 = fr_model_tensor(m, 1)->offset;
    fr_model_params(other)[item4] -= 0.5f;
    fr_model_ws *ws = NULL;
    cr_assert_eq(fr_model_ws_create(&ws, m, 7), FR_OK); /* several calls a scoring */
    static float a[NU * NI], b[NU * NI], fresh[NU * NI];
    fri_model_ws_hold(ws, true);
    score_all(m, ws, a, fresh);
    cr_assert(!memcmp(a, fresh, sizeof a));
    score_all(m, ws, b, NULL);
    cr_assert(!memcmp(a, b, sizeof a), "under the hold: the same scores");
    fri_model_ws_hold(ws, false);
    for (int held = 1; held >= 0; held--) { /* seen by the next hold, and without one */
        w[item4] += 0.25f;   /* item 4: user 2's */
        w[user0 + 1] *= -2;  /* and user 0's factor */
        fri_model_ws_hold(ws, held);
        score_all(m, ws, b, fresh);
        cr_assert(!memcmp(b, fresh, sizeof b), "hold %d: the scores of the changed model", held);
        cr_assert(a[2 * NI + 8] != b[2 * NI + 8] && a[0 * NI + 2] != b[0 * NI + 2], "the change is visible");
        fri_model_ws_hold(ws, false);
        memcpy(a, b, sizeof a);
    }
    /* another model of the same shape under the same hold */
    fri_model_ws_hold(ws, true);
    score_all(m, ws, a, NULL);
    score_all(other, ws, b, fresh);
    cr_assert(!memcmp(b, fresh, sizeof b), "another model: its own scores");
    cr_assert(memcmp(a, b, sizeof a) != 0);
    fri_model_ws_hold(ws, false);
    check_scores(m, &GRAPH, 3); /* and the changed model's scores are the dense reference's */
    fr_model_ws_free(ws);
    fr_model_free(other);
    fr_model_free(m);
}

/* The kind's defaults, sized for d, with dim and seed. */
static fr_model_config config_for(const fr_dataset *d, uint32_t dim, uint64_t seed) {
    fr_model_config c;
    fr_model_config_default(&c, kind());
    c.n_users = fr_dataset_n_users(d);
    c.n_items = fr_dataset_n_items(d);
    c.dim = dim;
    c.seed = seed;
    return c;
}

/* A scorer kept across evaluations (a training loop's) sees the parameters of each: after
 * a change, its metrics are those of a new scorer, bit for bit, and not the old ones. */
Test(lightgcn_full, a_kept_scorer_evaluates_the_changed_model) {
    fr_dataset *all = tu_generate(60, 50, 1200, 7), *train = NULL, *test = NULL;
    cr_assert_eq(fr_dataset_split(all, FR_SPLIT_LOO, 0, 1, &train, &test), FR_OK, "%s", fr_errmsg());
    fr_model_config c = config_for(train, 8, 4);
    fr_model *m = NULL, *m2 = NULL;
    cr_assert_eq(fr_model_create(&m, &c), FR_OK);
    c.seed = 5;
    cr_assert_eq(fr_model_create(&m2, &c), FR_OK);
    fr_model_graph g = fr_model_graph_dataset(train);
    fr_model_set_graph(m, &g);
    fr_model_scorer *s = NULL;
    cr_assert_eq(fr_model_scorer_create(&s, m, NULL, NULL, NULL), FR_OK);
    fr_eval_result r0, r1, r2;
    cr_assert_eq(fr_model_evaluate_with(s, m, train, test, NULL, NULL, NULL, &r0), FR_OK, "%s", fr_errmsg());
    /* other parameters, written in place (as an optimizer or a FedAvg merge writes them) */
    memcpy(fr_model_params(m), fr_model_params_const(m2), fr_model_n_params(m) * sizeof(float));
    cr_assert_eq(fr_model_evaluate_with(s, m, train, test, NULL, NULL, NULL, &r1), FR_OK, "%s", fr_errmsg());
    cr_assert_eq(fr_model_evaluate(m, train, test, NULL, NULL, NULL, &r2), FR_OK, "%s", fr_errmsg());
    cr_assert(r1.has_full && r2.has_full && r1.n_ks == r2.n_ks && r1.auc_full == r2.auc_full);
    bool moved = false;
    for (size_t j = 0; j < r1.n_ks; j++) {
        cr_assert(r1.hr_full[j] == r2.hr_full[j] && r1.ndcg_full[j] == r2.ndcg_full[j],
                  "@%u: %g %g against a new scorer's %g %g", r1.ks[j], r1.hr_full[j], r1.ndcg_full[j], r2.hr_full[j],
                  r2.ndcg_full[j]);
        moved |= r0.ndcg_full[j] != r1.ndcg_full[j];
    }
    cr_assert(moved, "the change moved no metric: the test shows nothing");
    fr_model_scorer_free(s);
    fr_model_free(m2);
    fr_model_free(m);
    fr_dataset_free(all);
    fr_dataset_free(train);
    fr_dataset_free(test);
}

/* ------------------------------------------------------------------ fast and naive propagation */

typedef struct rgraph {
    uint32_t U, I, *start, *items, *istart, *iusers;
    float *dinv;
} rgraph;

static size_t rg_items(const void *ctx, uint32_t u, const uint32_t **items) {
    const rgraph *g = ctx;
    *items = g->items + g->start[u];
    return g->start[u + 1] - g->start[u];
}

/* A random bipartite graph (an xorshift stream): user u has each item with probability
 * about p, users 0 and U - 1 and item I - 1 none; items in a shuffled order per user. */
static void rgraph_make(rgraph *g, uint32_t U, uint32_t I, uint32_t pct, uint32_t seed) {
    uint32_t x = seed * 2654435761u + 1;
#define XS() (x ^= x << 13, x ^= x >> 17, x ^= x << 5, x)
    g->U = U;
    g->I = I;
    g->start = calloc(U + 1, 4);
    g->items = malloc((size_t)U * I * 4);
    g->istart = calloc(I + 1, 4);
    g->dinv = calloc(U + I, sizeof(float));
    size_t E = 0;
    for (uint32_t u = 0; u < U; u++) {
        size_t s = E;
        for (uint32_t i = 0; i + 1 < I; i++)
            if (u != 0 && u + 1 != U && XS() % 100 < pct) g->items[E++] = i;
        for (size_t k = E; k > s + 1; k--) { /* shuffle the user's list */
            size_t r = s + XS() % (k - s);
            uint32_t t = g->items[k - 1];
            g->items[k - 1] = g->items[r];
            g->items[r] = t;
        }
        g->start[u + 1] = (uint32_t)E;
    }
    g->iusers = malloc((E ? E : 1) * 4);
    for (size_t k = 0; k < E; k++) g->istart[g->items[k] + 1]++;
    for (uint32_t i = 0; i < I; i++) g->istart[i + 1] += g->istart[i];
    uint32_t *fill = calloc(I, 4);
    for (uint32_t u = 0; u < U; u++)
        for (uint32_t k = g->start[u]; k < g->start[u + 1]; k++) {
            uint32_t i = g->items[k];
            g->iusers[g->istart[i] + fill[i]++] = u;
        }
    free(fill);
    for (uint32_t i = 0; i < I; i++) {
        uint32_t n = g->istart[i + 1] - g->istart[i];
        g->dinv[i] = n ? (float)(1.0 / sqrt(n)) : 0.0f;
    }
    for (uint32_t u = 0; u < U; u++) {
        uint32_t n = g->start[u + 1] - g->start[u];
        g->dinv[I + u] = n ? (float)(1.0 / sqrt(n)) : 0.0f;
    }
#undef XS
}

static void rgraph_free(rgraph *g) {
    free(g->start);
    free(g->items);
    free(g->istart);
    free(g->iusers);
    free(g->dinv);
}

/* The fast propagation (sums of D^-1/2-scaled rows, gathers) against the naive one it
 * replaced (each edge's dinv_u dinv_i times the row, a scatter), on random graphs with
 * empty users and items, for dims that take each column path (blocks of 64, of 16, single
 * columns) and K = 0..3, in place and added into gradients: within 1e-5 of the largest
 * entry (float rounding of sums over up to ~50 terms per layer), and the fast one is the
 * same on a second run. */
Test(lightgcn_full, fast_propagation_equals_the_naive_one) {
    const size_t dims[] = {1, 4, 16, 64, 83, 128};
    for (int gi = 0; gi < 2; gi++) {
        rgraph rg;
        rgraph_make(&rg, gi ? 40 : 7, gi ? 70 : 11, gi ? 30 : 50, 5 + (uint32_t)gi);
        for (size_t di = 0; di < sizeof dims / sizeof *dims; di++) {
            const size_t d = dims[di], N = (size_t)rg.U + rg.I, nd = N * d;
            fri_lgf_graph g = {rg_items, &rg, rg.U, rg.I, d, rg.dinv, rg.istart, rg.iusers, rg.start, rg.items};
            float *x = malloc(nd * 4), *a = malloc(nd * 4), *b = malloc(nd * 4), *s1 = malloc(nd * 4),
                  *s2 = malloc(nd * 4), *ga = malloc(nd * 4), *gb = malloc(nd * 4);
            uint32_t r = 12345;
            for (size_t k = 0; k < nd; k++) {
                r = r * 1664525u + 1013904223u;
                x[k] = (float)(r >> 8) / (float)(1u << 24) - 0.5f;
            }
            for (uint32_t K = 0; K <= 3; K++)
                for (int add = 0; add < 2; add++) {
                    memcpy(a, x, nd * 4);
                    memcpy(b, x, nd * 4);
                    for (size_t k = 0; k < nd; k++) ga[k] = gb[k] = 0.25f * x[nd - 1 - k];
                    fri_lgf_smooth(&g, K, a, add ? ga : NULL, add ? ga + (size_t)rg.I * d : NULL, s1, s2);
                    fri_lgf_smooth_naive(&g, K, b, add ? gb : NULL, add ? gb + (size_t)rg.I * d : NULL, s1, s2);
                    const float *fa = add ? ga : a, *fb = add ? gb : b;
                    double worst = 0, scale = 0;
                    for (size_t k = 0; k < nd; k++) {
                        worst = fmax(worst, fabs((double)fa[k] - fb[k]));
                        scale = fmax(scale, fabs((double)fb[k]));
                    }
                    cr_assert_gt(scale, 0.05);
                    cr_assert(worst <= 1e-5 * scale, "graph %d dim %zu K %u add %d: fast off naive by %g (scale %g)",
                              gi, d, K, add, worst, scale);
                    if (K == 2 && !add) { /* deterministic: a second run gives the same bits */
                        float *c = malloc(nd * 4);
                        memcpy(c, x, nd * 4);
                        fri_lgf_smooth(&g, K, c, NULL, NULL, s1, s2);
                        cr_assert(!memcmp(c, a, nd * 4));
                        free(c);
                    }
                }
            free(x); free(a); free(b); free(s1); free(s2); free(ga); free(gb);
        }
        rgraph_free(&rg);
    }
}

/* a batch with repeated users, the empty user 3, weights */
static uint32_t B_USERS[] = {0, 1, 0, 2, 3, 4, 2, 0};
static uint32_t B_ITEMS[] = {2, 1, 5, 6, 4, 7, 3, 0};
static uint32_t B_NEG[] = {1, 3, 7, 0, 2, 3, 5, 4};
static float B_LABEL[] = {1, 0, 1, 1, 0, 1, 0, 1};
static float B_WEIGHT[] = {1, 2, 0.5f, 1, 1.5f, 1, 1, 3};
#define BN 8

/* The graph copy behind the workspace follows lists that change under the same binding
 * (the binding now gives GRAPH2's lists, at other addresses): the loss on the old
 * workspace is the loss on a fresh one bound to GRAPH2. */
Test(lightgcn_full, graph_copy_follows_changed_lists) {
    fr_model *m = small_model(FR_LOSS_BPR, 0.0f, 2);
    uint32_t start[NU + 1], items[11];
    memcpy(start, G_START, sizeof start);
    memcpy(items, G_ITEMS, sizeof items);
    csr mut = {start, items};
    fr_model_graph g = {csr_items, &mut};
    fr_model_set_graph(m, &g);
    fr_batch b = {B_USERS, B_ITEMS, NULL, B_NEG, BN, NULL};
    fr_model_ws *ws = NULL, *fresh = NULL;
    cr_assert_eq(fr_model_ws_create(&ws, m, 16), FR_OK);
    double l0, l1, l2;
    cr_assert_eq(fr_model_loss(m, ws, &b, &l0), FR_OK, "%s", fr_errmsg());
    uint32_t items2[10];
    memcpy(items2, H_ITEMS, sizeof items2);
    memcpy(start, H_START, sizeof start);
    mut.items = items2;
    cr_assert_eq(fr_model_loss(m, ws, &b, &l1), FR_OK, "%s", fr_errmsg());
    fr_model_graph g2 = {csr_items, &GRAPH2};
    fr_model_set_graph(m, &g2);
    cr_assert_eq(fr_model_ws_create(&fresh, m, 16), FR_OK);
    cr_assert_eq(fr_model_loss(m, fresh, &b, &l2), FR_OK, "%s", fr_errmsg());
    cr_assert_neq(l0, l1, "another graph: another loss");
    cr_assert_eq(l1, l2, "the copy was rebuilt: %.17g, fresh %.17g", l1, l2);
    fr_model_ws_free(fresh);
    fr_model_ws_free(ws);
    fr_model_free(m);
}

/* Loss and gradient in double: F = M E^0; BPR -log sigmoid(s - sn) or BCE with logits,
 * weighted mean over the batch; + l2 * mean of the squared layer-0 rows of each example;
 * dE^0 = M dF (M symmetric). */
static double dense_loss_grad(const fr_model *m, const fr_batch *b, uint32_t K, double *grad) {
    static double M[NN][NN], F[NN][D], dF[NN][D];
    dense_mean_power(&GRAPH, K, M);
    dense_final(m, M, F);
    const fr_model_config *c = fr_model_config_of(m);
    const float *w = fr_model_params_const(m);
    size_t qo = fr_model_tensor(m, 0)->offset, po = fr_model_tensor(m, 1)->offset;
    bool bpr = c->loss == FR_LOSS_BPR;
    double L = 0, inv = 1.0 / (double)b->n;
    memset(dF, 0, sizeof dF);
    memset(grad, 0, fr_model_n_params(m) * sizeof *grad);
    for (size_t x = 0; x < b->n; x++) {
        int pu = NI + (int)b->users[x], pi = (int)b->items[x], pj = bpr ? (int)b->neg[x] : 0;
        double s = 0, sn = 0, wt = b->weight ? b->weight[x] : 1.0, ds, dsn = 0;
        for (int k = 0; k < D; k++) {
            s += F[pu][k] * F[pi][k];
            if (bpr) sn += F[pu][k] * F[pj][k];
        }
        if (bpr) {
            L += wt * inv * log1p(exp(-(s - sn)));
            ds = -wt * inv / (1 + exp(s - sn));
            dsn = -ds;
        } else {
            double y = b->label[x], p = 1 / (1 + exp(-s));
            L += wt * inv * -(y * log(p) + (1 - y) * log(1 - p));
            ds = wt * inv * (p - y);
        }
        for (int k = 0; k < D; k++) {
            dF[pu][k] += ds * F[pi][k] + (bpr ? dsn * F[pj][k] : 0);
            dF[pi][k] += ds * F[pu][k];
            if (bpr) dF[pj][k] += dsn * F[pu][k];
        }
        double l2 = (double)c->l2 * inv;
        for (int k = 0; k < D; k++) {
            size_t ou = po + b->users[x] * D + k, oi = qo + b->items[x] * D + k;
            L += l2 * ((double)w[ou] * w[ou] + (double)w[oi] * w[oi]);
            grad[ou] += 2 * l2 * w[ou];
            grad[oi] += 2 * l2 * w[oi];
            if (bpr) {
                size_t oj = qo + b->neg[x] * D + k;
                L += l2 * (double)w[oj] * w[oj];
                grad[oj] += 2 * l2 * w[oj];
            }
        }
    }
    for (int a = 0; a < NN; a++)
        for (int k = 0; k < D; k++) {
            double s = 0;
            for (int bb = 0; bb < NN; bb++) s += M[a][bb] * dF[bb][k];
            grad[(a < NI ? qo + (size_t)a * D : po + (size_t)(a - NI) * D) + k] += s;
        }
    return L;
}

static void check_against_dense(fr_loss loss, float l2, const float *weight, uint32_t K) {
    fr_model *m = small_model(loss, l2, K);
    fr_batch b = {B_USERS, B_ITEMS, B_LABEL, loss == FR_LOSS_BPR ? B_NEG : NULL, BN, weight};
    fr_model_ws *ws = NULL;
    fr_grad *g = NULL;
    cr_assert_eq(fr_model_ws_create(&ws, m, 16), FR_OK);
    cr_assert_eq(fr_grad_create(&g, m), FR_OK);
    double l;
    cr_assert_eq(fr_model_loss_grad(m, ws, &b, g, &l), FR_OK, "%s", fr_errmsg());
    size_t np = fr_model_n_params(m);
    double *ref = malloc(np * sizeof *ref);
    double lref = dense_loss_grad(m, &b, K, ref);
    cr_assert(fabs(l - lref) <= 1e-6 * fabs(lref), "K = %u: loss %.9g, dense %.9g", K, l, lref);
    const float *gd = fr_grad_data(g);
    double worst = 0, scale = 0;
    for (size_t i = 0; i < np; i++) {
        worst = fmax(worst, fabs((double)gd[i] - ref[i]));
        scale = fmax(scale, fabs(ref[i]));
    }
    cr_assert_gt(scale, 1e-3);
    cr_assert(worst <= 5e-6 * scale, "K = %u: gradient off the dense reference by %g (scale %g)", K, worst, scale);
    for (int t = 0; t < fr_model_n_tensors(m); t++) { /* every row with a gradient is marked */
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

Test(lightgcn_full, loss_and_gradient_equal_the_dense_reference) {
    for (uint32_t K = 0; K <= 3; K++) {
        check_against_dense(FR_LOSS_BPR, 0.0f, NULL, K);
        check_against_dense(FR_LOSS_BPR, 0.3f, B_WEIGHT, K);
        check_against_dense(FR_LOSS_BCE, 0.2f, B_WEIGHT, K);
    }
}

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

static void gradcheck(fr_loss loss) {
    fr_model *m = small_model(loss, 0.25f, 3);
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
    cr_assert_eq(gc_check(model_loss, &ctx, p, gd, fr_model_n_params(m), "lightgcn-full"), 0);
    /* a wrong gradient fails it: item 8 (degree 1, never scored) gets its gradient only
     * through the propagation; halving it, as a backward pass that forgot a layer would
     * shrink it, is caught (with BPR, where it is well above the check's tolerance) */
    if (loss != FR_LOSS_BPR) goto done;
    size_t o8 = fr_model_tensor(m, 0)->offset + 8 * D;
    double mag = 0;
    for (int k = 0; k < D; k++) mag += fabs(gd[o8 + k]);
    cr_assert_gt(mag, 1e-3, "item 8 must have a gradient through the propagation");
    for (int k = 0; k < D; k++) gd[o8 + k] *= 0.5f;
    cr_assert_gt(gc_check(model_loss, &ctx, p + o8, gd + o8, D, "wrong (expected to fail)"), 0);
done:
    fr_grad_free(g);
    fr_model_ws_free(ws);
    fr_model_free(m);
}

Test(lightgcn_full, gradient_passes_central_differences_bpr) { gradcheck(FR_LOSS_BPR); }
Test(lightgcn_full, gradient_passes_central_differences_bce) { gradcheck(FR_LOSS_BCE); }

Test(lightgcn_full, refuses_without_a_graph_and_federated) {
    fr_model *m = small_model(FR_LOSS_BPR, 0.0f, 2);
    cr_assert(fr_model_needs_graph(m));
    fr_model_set_graph(m, NULL);
    uint32_t u = 0, i = 1;
    float s;
    cr_assert_eq(fr_model_score(m, NULL, &u, &i, 1, &s), FR_ERR_INVALID);
    cr_assert(strstr(fr_errmsg(), "graph") != NULL, "%s", fr_errmsg());
    fr_model_free(m);
    /* a client knows only its own edges: central only */
    cr_assert(fr_model_kind_is_central_only(kind()));
    fr_model_kind lg;
    cr_assert_eq(fr_model_kind_parse("lightgcn", &lg), FR_OK);
    cr_assert(!fr_model_kind_is_central_only(lg));
    cr_assert(!fr_model_kind_is_central_only(FR_MODEL_BPR));
    fr_run_config rc;
    cr_assert_eq(fr_run_config_preset(&rc, "fedrec", kind(), false, NULL), FR_OK, "%s", fr_errmsg());
    cr_assert_eq(fr_run_config_check(&rc), FR_ERR_INVALID);
    cr_assert(strstr(fr_errmsg(), "centralized only") != NULL, "%s", fr_errmsg());
    cr_assert_eq(fr_run_config_preset(&rc, "fedrec", kind(), true, NULL), FR_OK, "%s", fr_errmsg());
    cr_assert_eq(fr_run_config_check(&rc), FR_OK, "%s", fr_errmsg());
    fr_model_config mc;
    fr_model_config_default(&mc, kind());
    mc.n_users = 1;
    mc.n_items = 4;
    fr_fl_config fc;
    fr_fl_config_default(&fc, kind());
    fr_client_ws *cw = NULL;
    cr_assert_eq(fr_client_ws_create(&cw, &mc, &fc), FR_ERR_INVALID);
    cr_assert_null(cw);
}

Test(lightgcn_full, model_file_round_trip) {
    fr_model *m = small_model(FR_LOSS_BCE, 0.125f, 3);
    uint8_t *bytes;
    size_t n;
    cr_assert_eq(fr_model_encode(m, NULL, &bytes, &n), FR_OK, "%s", fr_errmsg());
    fr_model *l = NULL;
    cr_assert_eq(fr_model_decode(&l, bytes, n, "<mem>", NULL), FR_OK, "%s", fr_errmsg());
    const fr_model_config *a = fr_model_config_of(l);
    cr_assert_str_eq(fr_model_kind_name(a->kind), "lightgcn-full");
    cr_assert_eq(a->dim, D);
    cr_assert_eq(a->n_layers, 3);
    cr_assert_eq(a->loss, FR_LOSS_BCE);
    cr_assert_eq(a->l2, 0.125f);
    cr_assert_eq(fr_model_n_params(l), fr_model_n_params(m));
    cr_assert(!memcmp(fr_model_params(l), fr_model_params(m), fr_model_n_params(m) * sizeof(float)));
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

Test(lightgcn_full, trains_centrally_the_same_on_any_thread_count) {
    fr_dataset *all = tu_generate(120, 80, 3000, 11), *train = NULL, *test = NULL;
    fr_negatives *negs = NULL;
    cr_assert_eq(fr_dataset_split(all, FR_SPLIT_LOO, 0, 1, &train, &test), FR_OK, "%s", fr_errmsg());
    cr_assert_eq(fr_negatives_sample(&negs, all, test, 30, 3), FR_OK, "%s", fr_errmsg());
    fr_model_config c = config_for(train, 8, 4);
    fr_train_config tc;
    fr_train_config_default(&tc);
    tc.batch = 256;
    tc.negatives = 1;
    tc.optim.lr = 0.02f;
    fr_model *m[3] = {NULL};
    double hr[2] = {0}, loss[3][10];
    for (int k = 0; k < 3; k++) {
        cr_assert_eq(fr_model_create(&m[k], &c), FR_OK);
        fr_trainer *t = NULL;
        tc.threads = k == 2 ? 4 : k + 1;
        cr_assert_eq(fr_trainer_create(&t, m[k], train, &tc), FR_OK, "%s", fr_errmsg());
        if (k == 0) {
            fr_eval_result r;
            cr_assert_eq(fr_model_evaluate(m[0], train, test, negs, NULL, NULL, &r), FR_OK, "%s", fr_errmsg());
            for (size_t j = 0; j < r.n_ks; j++)
                if (r.ks[j] == 10) hr[0] = r.hr[j];
        }
        for (int e = 0; e < 10; e++) cr_assert_eq(fr_trainer_epoch(t, &loss[k][e]), FR_OK, "%s", fr_errmsg());
        fr_trainer_free(t);
    }
    cr_assert_lt(loss[0][9], 0.8 * loss[0][0], "loss %g -> %g", loss[0][0], loss[0][9]);
    for (int k = 1; k < 3; k++)
        cr_assert(!memcmp(fr_model_params(m[0]), fr_model_params(m[k]), fr_model_n_params(m[0]) * sizeof(float)),
                  "1 thread and %d give the same bits", k == 2 ? 4 : 2);
    fr_eval_result r;
    cr_assert_eq(fr_model_evaluate(m[0], train, test, negs, NULL, NULL, &r), FR_OK, "%s", fr_errmsg());
    for (size_t j = 0; j < r.n_ks; j++)
        if (r.ks[j] == 10) hr[1] = r.hr[j];
    /* 30 negatives: ranking at random gives hr@10 = 10/31 */
    cr_assert(hr[1] > hr[0] && hr[1] > 0.45, "hr@10 %g -> %g", hr[0], hr[1]);
    for (int k = 0; k < 3; k++) fr_model_free(m[k]);
    fr_negatives_free(negs);
    fr_dataset_free(all);
    fr_dataset_free(train);
    fr_dataset_free(test);
}

/* Training on the fast propagation follows training on the naive one: the same data,
 * seed and steps, per-epoch losses within 1e-6 (relative) over 10 epochs of Adam, and
 * parameters within 1e-5 of their largest at the end (measured: 3e-7; float roundings
 * that differ and compound over the 120 steps, far below what training moves). */
Test(lightgcn_full, trains_on_the_fast_propagation_as_on_the_naive_one) {
    fr_dataset *all = tu_generate(120, 80, 3000, 11);
    fr_model_config c = config_for(all, 20, 4); /* dim 20: a 16-column block and single columns */
    fr_train_config tc;
    fr_train_config_default(&tc);
    tc.batch = 256;
    tc.negatives = 1;
    tc.optim.lr = 0.02f;
    tc.threads = 1;
    fr_model *m[2] = {NULL};
    double loss[2][10];
    for (int k = 0; k < 2; k++) {
        bool was = fri_lgf_allow_fast(k == 0);
        cr_assert_eq(fr_model_create(&m[k], &c), FR_OK);
        fr_trainer *t = NULL;
        cr_assert_eq(fr_trainer_create(&t, m[k], all, &tc), FR_OK, "%s", fr_errmsg());
        for (int e = 0; e < 10; e++) cr_assert_eq(fr_trainer_epoch(t, &loss[k][e]), FR_OK, "%s", fr_errmsg());
        fr_trainer_free(t);
        fri_lgf_allow_fast(was);
    }
    cr_assert_lt(loss[0][9], 0.8 * loss[0][0], "loss %g -> %g", loss[0][0], loss[0][9]);
    for (int e = 0; e < 10; e++)
        cr_assert(fabs(loss[0][e] - loss[1][e]) <= 1e-6 * loss[1][e], "epoch %d: fast %.9g, naive %.9g", e,
                  loss[0][e], loss[1][e]);
    const float *a = fr_model_params(m[0]), *b = fr_model_params(m[1]);
    double worst = 0, scale = 0;
    for (size_t i = 0; i < fr_model_n_params(m[0]); i++) {
        worst = fmax(worst, fabs((double)a[i] - b[i]));
        scale = fmax(scale, fabs((double)b[i]));
    }
    cr_assert(worst <= 1e-5 * scale, "parameters: fast off naive by %g (scale %g)", worst, scale);
    cr_assert(worst > 0, "the two propagations round differently (else this test compares nothing)");
    fr_model_free(m[0]);
    fr_model_free(m[1]);
    fr_dataset_free(all);
}
