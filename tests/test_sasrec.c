/* The self-attention sequential model (src/model/model_sasrec.c): its whole-model
 * gradient (every tensor, with dropout on, padded, short and empty histories, the
 * per-position loss and the pointwise one) matches central differences, a wrong one
 * fails, scores read the history causally, and the forward equals a naive
 * double-precision re-computation of the model from its formulas. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fedrec/fedrec.h"
#include "gradcheck.h"

#define NO FR_NO_ITEM

static fr_model *small_model(float dropout) {
    fr_model_kind k;
    cr_assert_eq(fr_model_kind_parse("sasrec", &k), FR_OK);
    fr_model_config c;
    fr_model_config_default(&c, k);
    c.n_users = 1;
    c.n_items = 12;
    c.dim = 8;
    c.n_layers = 2;
    c.heads = 2;
    c.max_len = 5;
    c.ffn_dim = 12;
    c.dropout = dropout;
    c.seed = 3;
    fr_model *m = NULL;
    cr_assert_eq(fr_model_create(&m, &c), FR_OK, "%s", fr_errmsg());
    /* every parameter away from its init (zero biases, unit gains) so each term counts */
    fr_rng r;
    fr_rng_init(&r, 9, 0, 0, FR_PURPOSE_TEST);
    float *p = fr_model_params(m);
    for (size_t i = 0; i < fr_model_n_params(m); i++) p[i] += (float)((fr_rng_double(&r) * 2 - 1) * 0.3);
    return m;
}

/* three examples: a full history, a padded one, an empty one */
static const uint32_t U[3] = {0, 0, 0}, IT[3] = {4, 7, 2};
static const float LAB[3] = {1, 1, 1}, LAB_PW[3] = {1, 0, 1}, WT[3] = {1.0f, 0.5f, 2.0f};
static const uint32_t HIST[15] = {1, 2, 3, 11, 5, /**/ NO, NO, 9, 0, 6, /**/ NO, NO, NO, NO, NO};
static const uint32_t HNEG[15] = {6, 7, 8, 9, 10, /**/ NO, NO, 1, 2, 3, /**/ NO, NO, NO, NO, 5};
static const uint64_t KEY[3] = {101, 202, 303};

typedef struct gctx {
    fr_model *m;
    fr_model_ws *ws;
    fr_batch b;
} gctx;

static double loss_of(void *p) {
    gctx *c = p;
    double l;
    cr_assert_eq(fr_model_loss(c->m, c->ws, &c->b, &l), FR_OK, "%s", fr_errmsg());
    return l;
}

static int check_all(gctx *c, const float *grad) {
    int bad = 0;
    for (int t = 0; t < fr_model_n_tensors(c->m); t++) {
        const fr_tensor *tt = fr_model_tensor(c->m, t);
        bad += gc_check(loss_of, c, fr_model_params(c->m) + tt->offset, grad + tt->offset,
                        (size_t)tt->rows * tt->cols, tt->name);
    }
    return bad;
}

static void run_gradcheck(bool per_position, float dropout) {
    gctx c = {small_model(dropout), NULL, {0}};
    cr_assert_eq(fr_model_ws_create(&c.ws, c.m, 3), FR_OK);
    c.b = (fr_batch){U, IT, per_position ? LAB : LAB_PW, NULL, 3, WT, HIST, per_position ? HNEG : NULL, KEY, 5};
    fr_grad *g = NULL;
    cr_assert_eq(fr_grad_create(&g, c.m), FR_OK);
    double l;
    cr_assert_eq(fr_model_loss_grad(c.m, c.ws, &c.b, g, &l), FR_OK, "%s", fr_errmsg());
    cr_assert(isfinite(l) && l > 0);
    cr_assert_float_eq(l, loss_of(&c), 1e-12, "loss_grad and loss agree");
    cr_assert_eq(check_all(&c, fr_grad_data(g)), 0);
    /* the item rows marked touched are exactly the rows read */
    int t = fr_model_tensor_find(c.m, "item");
    const fr_rowset *rs = fr_grad_touched(g, t);
    bool want[12] = {0};
    for (int i = 0; i < 15; i++) {
        if (HIST[i] != NO) want[HIST[i]] = true;
        if (per_position && HNEG[i] != NO) want[HNEG[i]] = true;
    }
    for (int i = 0; i < 3; i++) want[IT[i]] = true;
    if (per_position) want[9] = want[3] = true; /* hneg of padded positions are skipped: 9 is a history item anyway */
    uint32_t n = 0;
    for (int i = 0; i < 12; i++) n += want[i];
    cr_assert_eq(rs->count, n);
    fr_grad_free(g);
    fr_model_ws_free(c.ws);
    fr_model_free(c.m);
}

Test(sasrec, gradcheck_per_position_with_dropout) { run_gradcheck(true, 0.3f); }
Test(sasrec, gradcheck_pointwise_no_dropout) { run_gradcheck(false, 0.0f); }

Test(sasrec, wrong_gradient_fails) {
    gctx c = {small_model(0.0f), NULL, {0}};
    cr_assert_eq(fr_model_ws_create(&c.ws, c.m, 3), FR_OK);
    c.b = (fr_batch){U, IT, LAB, NULL, 3, NULL, HIST, HNEG, NULL, 5};
    fr_grad *g = NULL;
    cr_assert_eq(fr_grad_create(&g, c.m), FR_OK);
    double l;
    cr_assert_eq(fr_model_loss_grad(c.m, c.ws, &c.b, g, &l), FR_OK);
    int t = fr_model_tensor_find(c.m, "b1.attn");
    float *gd = fr_grad_data(g) + fr_model_tensor(c.m, t)->offset;
    gd[70] += 0.05f; /* one W_q/W_k entry of the last block off */
    fprintf(stderr, "(expected) ");
    cr_assert_gt(check_all(&c, fr_grad_data(g)), 0, "a wrong gradient passed the check");
    fr_grad_free(g);
    fr_model_ws_free(c.ws);
    fr_model_free(c.m);
}

/* The model recomputed from its formulas in double, for one history: the score of item j. */
static double naive_score(const fr_model *m, const uint32_t *hist, uint32_t j) {
    const fr_model_config *c = fr_model_config_of(m);
    const size_t L = c->max_len, C = c->dim, F = c->ffn_dim, H = c->heads, D = C / H;
    const float *E = fr_model_params_const(m) + fr_model_tensor(m, fr_model_tensor_find(m, "item"))->offset;
    const float *Pp = fr_model_params_const(m) + fr_model_tensor(m, fr_model_tensor_find(m, "pos"))->offset;
    size_t p0 = 0;
    while (p0 < L && hist[p0] == NO) p0++;
    size_t T = L - p0;
    double x[8][8], a[8][8], q[8][8], k[8][8], v[8][8], o[8][8], h[8][16];
    for (size_t t = 0; t < T; t++)
        for (size_t d = 0; d < C; d++) x[t][d] = (double)E[hist[p0 + t] * C + d] + Pp[(p0 + t) * C + d];
    for (uint32_t b = 0; b < c->n_layers; b++) {
        char nm[32];
        snprintf(nm, sizeof nm, "b%u.ln", b);
        const float *ln = fr_model_params_const(m) + fr_model_tensor(m, fr_model_tensor_find(m, nm))->offset;
        snprintf(nm, sizeof nm, "b%u.attn", b);
        const float *W = fr_model_params_const(m) + fr_model_tensor(m, fr_model_tensor_find(m, nm))->offset;
        snprintf(nm, sizeof nm, "b%u.ffn1", b);
        const float *W1 = fr_model_params_const(m) + fr_model_tensor(m, fr_model_tensor_find(m, nm))->offset;
        snprintf(nm, sizeof nm, "b%u.ffn2", b);
        const float *W2 = fr_model_params_const(m) + fr_model_tensor(m, fr_model_tensor_find(m, nm))->offset;
        snprintf(nm, sizeof nm, "b%u.bias", b);
        const float *bs = fr_model_params_const(m) + fr_model_tensor(m, fr_model_tensor_find(m, nm))->offset;
        for (int half = 0; half < 2; half++) {
            /* a = LN(x) with gain 1 + ln[2 half], bias ln[2 half + 1] */
            for (size_t t = 0; t < T; t++) {
                double mu = 0, var = 0;
                for (size_t d = 0; d < C; d++) mu += x[t][d];
                mu /= (double)C;
                for (size_t d = 0; d < C; d++) var += (x[t][d] - mu) * (x[t][d] - mu);
                var /= (double)C;
                for (size_t d = 0; d < C; d++)
                    a[t][d] = (x[t][d] - mu) / sqrt(var + 1e-6) * (1.0 + ln[2 * half * C + d]) + ln[(2 * half + 1) * C + d];
            }
            if (half == 0) {
                for (size_t t = 0; t < T; t++)
                    for (size_t d = 0; d < C; d++) {
                        double sq = bs[d], sk = bs[C + d], sv = bs[2 * C + d];
                        for (size_t e = 0; e < C; e++) {
                            sq += a[t][e] * W[d * C + e];
                            sk += a[t][e] * W[(C + d) * C + e];
                            sv += a[t][e] * W[(2 * C + d) * C + e];
                        }
                        q[t][d] = sq; k[t][d] = sk; v[t][d] = sv;
                    }
                for (size_t hh = 0; hh < H; hh++)
                    for (size_t t = 0; t < T; t++) {
                        double s[8], mx = -INFINITY, z = 0;
                        for (size_t u = 0; u <= t; u++) {
                            s[u] = 0;
                            for (size_t d = 0; d < D; d++) s[u] += q[t][hh * D + d] * k[u][hh * D + d];
                            s[u] /= sqrt((double)D);
                            mx = fmax(mx, s[u]);
                        }
                        for (size_t u = 0; u <= t; u++) z += exp(s[u] - mx);
                        for (size_t d = 0; d < D; d++) {
                            double acc = 0;
                            for (size_t u = 0; u <= t; u++) acc += exp(s[u] - mx) / z * v[u][hh * D + d];
                            o[t][hh * D + d] = acc;
                        }
                    }
                for (size_t t = 0; t < T; t++)
                    for (size_t d = 0; d < C; d++) {
                        double acc = bs[3 * C + d];
                        for (size_t e = 0; e < C; e++) acc += o[t][e] * W[(3 * C + d) * C + e];
                        a[t][d] = acc; /* reuse a for the branch output */
                    }
            } else {
                for (size_t t = 0; t < T; t++) {
                    for (size_t f = 0; f < F; f++) {
                        double acc = bs[4 * C + f];
                        for (size_t e = 0; e < C; e++) acc += a[t][e] * W1[f * C + e];
                        h[t][f] = acc > 0 ? acc : 0;
                    }
                }
                for (size_t t = 0; t < T; t++)
                    for (size_t d = 0; d < C; d++) {
                        double acc = bs[4 * C + F + d];
                        for (size_t f = 0; f < F; f++) acc += h[t][f] * W2[d * F + f];
                        a[t][d] = acc;
                    }
            }
            for (size_t t = 0; t < T; t++)
                for (size_t d = 0; d < C; d++) x[t][d] += a[t][d];
        }
    }
    const float *lf = fr_model_params_const(m) + fr_model_tensor(m, fr_model_tensor_find(m, "out.ln"))->offset;
    double mu = 0, var = 0, s = 0;
    for (size_t d = 0; d < C; d++) mu += x[T - 1][d];
    mu /= (double)C;
    for (size_t d = 0; d < C; d++) var += (x[T - 1][d] - mu) * (x[T - 1][d] - mu);
    var /= (double)C;
    for (size_t d = 0; d < C; d++)
        s += ((x[T - 1][d] - mu) / sqrt(var + 1e-6) * (1.0 + lf[d]) + lf[C + d]) * E[j * C + d];
    return s;
}

Test(sasrec, scores_equal_naive_model_and_are_causal) {
    fr_model *m = small_model(0.3f); /* dropout never applies to scoring */
    uint32_t items[12];
    for (uint32_t i = 0; i < 12; i++) items[i] = i;
    float s[12], s2[12];
    const uint32_t *hs[2] = {HIST, HIST + 5};
    for (int h = 0; h < 2; h++) {
        cr_assert_eq(fr_model_score_history(m, NULL, hs[h], 5, items, 12, s), FR_OK, "%s", fr_errmsg());
        for (uint32_t i = 0; i < 12; i++) {
            double ref = naive_score(m, hs[h], i);
            cr_assert_float_eq(s[i], ref, 1e-4 * (1 + fabs(ref)), "hist %d item %u: %g vs %g", h, i, s[i], ref);
        }
    }
    /* the last position reads every earlier item: changing the first changes the scores;
     * the history as a whole is read, not the user row */
    uint32_t h2[5] = {8, 2, 3, 11, 5};
    cr_assert_eq(fr_model_score_history(m, NULL, HIST, 5, items, 12, s), FR_OK);
    cr_assert_eq(fr_model_score_history(m, NULL, h2, 5, items, 12, s2), FR_OK);
    cr_assert(memcmp(s, s2, sizeof s) != 0);
    /* a wrong length and an item out of range are refused */
    cr_assert_eq(fr_model_score_history(m, NULL, HIST, 4, items, 12, s), FR_ERR_INVALID);
    uint32_t bad[5] = {1, 2, 99, 3, 4};
    cr_assert_eq(fr_model_score_history(m, NULL, bad, 5, items, 12, s), FR_ERR_RANGE);
    fr_model_free(m);
}
