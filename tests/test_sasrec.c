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
#include "testutil.h"

#define NO FR_NO_ITEM

static fr_model *small_model_norm(float dropout, fr_loss loss, uint32_t post_norm) {
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
    c.loss = loss;
    c.post_norm = post_norm;
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

static fr_model *small_model_loss(float dropout, fr_loss loss) { return small_model_norm(dropout, loss, 0); }
static fr_model *small_model(float dropout) { return small_model_loss(dropout, FR_LOSS_BCE); }

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

static void run_gradcheck_norm(bool per_position, float dropout, fr_loss loss, uint32_t post_norm) {
    const bool ce = loss == FR_LOSS_CE;
    gctx c = {small_model_norm(dropout, loss, post_norm), NULL, {0}};
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
    for (int i = 0; i < 12; i++) n += want[i] || ce; /* CE's softmax reaches every row */
    cr_assert_eq(rs->count, n);
    fr_grad_free(g);
    fr_model_ws_free(c.ws);
    fr_model_free(c.m);
}

static void run_gradcheck_loss(bool per_position, float dropout, fr_loss loss) {
    run_gradcheck_norm(per_position, dropout, loss, 0);
}
static void run_gradcheck(bool per_position, float dropout) { run_gradcheck_loss(per_position, dropout, FR_LOSS_BCE); }

Test(sasrec, gradcheck_per_position_with_dropout) { run_gradcheck(true, 0.3f); }
/* CE reads neither hist_neg nor the labels: the per-position batch and the pointwise one give the same loss */
Test(sasrec, gradcheck_ce_with_dropout) { run_gradcheck_loss(true, 0.3f, FR_LOSS_CE); }
Test(sasrec, gradcheck_ce_without_negatives) { run_gradcheck_loss(false, 0.0f, FR_LOSS_CE); }

/* The model's gradient with one entry of tensor name moved by delta: the check must fail. */
static void wrong_gradient_case(fr_model *m, const char *name, size_t at, float delta) {
    gctx c = {m, NULL, {0}};
    cr_assert_eq(fr_model_ws_create(&c.ws, c.m, 3), FR_OK);
    c.b = (fr_batch){U, IT, LAB, NULL, 3, NULL, HIST, HNEG, NULL, 5};
    fr_grad *g = NULL;
    cr_assert_eq(fr_grad_create(&g, c.m), FR_OK);
    double l;
    cr_assert_eq(fr_model_loss_grad(c.m, c.ws, &c.b, g, &l), FR_OK);
    int t = fr_model_tensor_find(c.m, name);
    float *gd = fr_grad_data(g) + fr_model_tensor(c.m, t)->offset;
    gd[at] += delta;
    fprintf(stderr, "(expected) ");
    cr_assert_gt(check_all(&c, fr_grad_data(g)), 0, "a wrong gradient passed the check");
    fr_grad_free(g);
    fr_model_ws_free(c.ws);
    fr_model_free(c.m);
}

/* item 10 is in no history and no target: its gradient is the softmax's alone */
Test(sasrec, ce_wrong_gradient_fails) { wrong_gradient_case(small_model_loss(0.0f, FR_LOSS_CE), "item", 10 * 8 + 3, 0.02f); }
Test(sasrec, gradcheck_pointwise_no_dropout) { run_gradcheck(false, 0.0f); }

/* one W_q/W_k entry of the last block off */
Test(sasrec, wrong_gradient_fails) { wrong_gradient_case(small_model(0.0f), "b1.attn", 70, 0.05f); }

/* Post-norm (RecBole's placement): the same checks, every tensor, dropout on, both losses,
 * the full, padded and empty histories (the empty one scores with the last LN2's bias). */
Test(sasrec, post_norm_gradcheck_per_position_with_dropout) { run_gradcheck_norm(true, 0.3f, FR_LOSS_BCE, 1); }
Test(sasrec, post_norm_gradcheck_pointwise_no_dropout) { run_gradcheck_norm(false, 0.0f, FR_LOSS_BCE, 1); }
Test(sasrec, post_norm_gradcheck_ce_with_dropout) { run_gradcheck_norm(true, 0.3f, FR_LOSS_CE, 1); }
Test(sasrec, post_norm_gradcheck_ce_without_negatives) { run_gradcheck_norm(false, 0.0f, FR_LOSS_CE, 1); }
/* LN_in's gain (out.ln, read only by the input under post-norm) and the first block's W_q */
Test(sasrec, post_norm_wrong_gradient_fails) {
    wrong_gradient_case(small_model_norm(0.0f, FR_LOSS_BCE, 1), "out.ln", 2, 0.05f);
}
Test(sasrec, post_norm_wrong_attention_gradient_fails) {
    wrong_gradient_case(small_model_norm(0.0f, FR_LOSS_CE, 1), "b0.attn", 9, 0.05f);
}

/* out = LN(x) row by row in double, gain 1 + ln[0..C), bias ln[C..2C) (out may be x) */
static void naive_ln(double out[8][8], double x[8][8], size_t T, size_t C, const float *ln) {
    for (size_t t = 0; t < T; t++) {
        double mu = 0, var = 0;
        for (size_t d = 0; d < C; d++) mu += x[t][d];
        mu /= (double)C;
        for (size_t d = 0; d < C; d++) var += (x[t][d] - mu) * (x[t][d] - mu);
        var /= (double)C;
        for (size_t d = 0; d < C; d++) out[t][d] = (x[t][d] - mu) / sqrt(var + 1e-6) * (1.0 + ln[d]) + ln[C + d];
    }
}

/* The model recomputed from its formulas in double, for one history: the outputs y [T,C]
 * of its T valid positions (T returned; 0: an empty history, y[0] = LN_f's bias, or the
 * last block's LN2 bias under post-norm). Pre-norm: a = LN(x), x += branch(a), y = LN_f(x);
 * post-norm: x = LN_in(E + P), x = LN(x + branch(x)), y = x. */
static size_t naive_y(const fr_model *m, const uint32_t *hist, double y[8][8]) {
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
    const bool post = c->post_norm;
    const float *lf = fr_model_params_const(m) + fr_model_tensor(m, fr_model_tensor_find(m, "out.ln"))->offset;
    const float *ln = NULL;
    if (post) naive_ln(x, x, T, C, lf);
    for (uint32_t b = 0; b < c->n_layers; b++) {
        char nm[32];
        snprintf(nm, sizeof nm, "b%u.ln", b);
        ln = fr_model_params_const(m) + fr_model_tensor(m, fr_model_tensor_find(m, nm))->offset;
        snprintf(nm, sizeof nm, "b%u.attn", b);
        const float *W = fr_model_params_const(m) + fr_model_tensor(m, fr_model_tensor_find(m, nm))->offset;
        snprintf(nm, sizeof nm, "b%u.ffn1", b);
        const float *W1 = fr_model_params_const(m) + fr_model_tensor(m, fr_model_tensor_find(m, nm))->offset;
        snprintf(nm, sizeof nm, "b%u.ffn2", b);
        const float *W2 = fr_model_params_const(m) + fr_model_tensor(m, fr_model_tensor_find(m, nm))->offset;
        snprintf(nm, sizeof nm, "b%u.bias", b);
        const float *bs = fr_model_params_const(m) + fr_model_tensor(m, fr_model_tensor_find(m, nm))->offset;
        for (int half = 0; half < 2; half++) {
            /* a = LN(x) with gain 1 + ln[2 half], bias ln[2 half + 1] (post-norm: a = x) */
            if (post)
                memcpy(a, x, sizeof a);
            else
                naive_ln(a, x, T, C, ln + 2 * half * C);
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
            if (post) naive_ln(x, x, T, C, ln + 2 * half * C);
        }
    }
    if (T == 0)
        for (size_t d = 0; d < C; d++) y[0][d] = post ? ln[3 * C + d] : lf[C + d];
    if (post)
        for (size_t t = 0; t < T; t++)
            for (size_t d = 0; d < C; d++) y[t][d] = x[t][d];
    else
        naive_ln(y, x, T, C, lf);
    return T;
}

static const float *tensor_of(const fr_model *m, const char *name) {
    return fr_model_params_const(m) + fr_model_tensor(m, fr_model_tensor_find(m, name))->offset;
}

/* the score of item j after the whole history */
static double naive_score(const fr_model *m, const uint32_t *hist, uint32_t j) {
    const size_t C = fr_model_config_of(m)->dim;
    const float *E = tensor_of(m, "item");
    double y[8][8], s = 0;
    size_t T = naive_y(m, hist, y);
    for (size_t d = 0; d < C; d++) s += y[T ? T - 1 : 0][d] * E[j * C + d];
    return s;
}

/* CE from its definition in double: per example wt/(n L) times the sum over positions of
 * log sum_j exp(y_t.E[j]) - y_t.E[next item]; an empty history has the one target items[i];
 * a position whose hist_neg is FR_NO_LOSS has no term. */
static double naive_ce(const fr_model *m, const fr_batch *b) {
    const fr_model_config *c = fr_model_config_of(m);
    const size_t L = c->max_len, C = c->dim, N = c->n_items;
    const float *E = tensor_of(m, "item");
    double total = 0;
    for (size_t i = 0; i < b->n; i++) {
        const uint32_t *h = b->hist + i * L;
        double y[8][8], li = 0;
        size_t T = naive_y(m, h, y), p0 = L - T;
        for (size_t t = 0; t < (T ? T : 1); t++) {
            uint32_t tg = T == 0 || p0 + t + 1 == L ? b->items[i] : h[p0 + t + 1];
            if (b->hist_neg && b->hist_neg[i * L + (T ? p0 + t : L - 1)] == FR_NO_LOSS) continue;
            double z = 0, st = 0;
            for (size_t j = 0; j < N; j++) {
                double s = 0;
                for (size_t d = 0; d < C; d++) s += y[t][d] * E[j * C + d];
                z += exp(s);
                if (j == tg) st = s;
            }
            li += log(z) - st;
        }
        total += (b->weight ? b->weight[i] : 1.0) / ((double)b->n * (double)L) * li;
    }
    return total;
}

Test(sasrec, ce_loss_equals_naive_definition) {
    fr_model *m = small_model_loss(0.3f, FR_LOSS_CE); /* no keys: no dropout */
    fr_model_ws *ws = NULL;
    cr_assert_eq(fr_model_ws_create(&ws, m, 3), FR_OK);
    fr_batch b = {U, IT, LAB, NULL, 3, WT, HIST, NULL, NULL, 5};
    double l, ref = naive_ce(m, &b);
    cr_assert_eq(fr_model_loss(m, ws, &b, &l), FR_OK, "%s", fr_errmsg());
    cr_assert(ref > 0.5, "ln 12 a position at random (%g)", ref);
    cr_assert_float_eq(l, ref, 1e-5 * ref, "ce %.9g vs naive %.9g", l, ref);
    fr_model_ws_free(ws);
    fr_model_free(m);
}

/* Context-only positions (hist_neg FR_NO_LOSS, a prefix of an example's valid positions:
 * the strided windows of fri_examples_add_seq): example 0 trains its last three positions,
 * example 1 (padded) its last two, the empty one its one target. */
#define NL FR_NO_LOSS
static const uint32_t HNEG_MASK[15] = {NL, NL, 8, 9, 10, /**/ NO, NO, NL, 2, 3, /**/ NO, NO, NO, NO, 5};
/* another mask: example 0 trains four positions */
static const uint32_t HNEG_MASK2[15] = {NL, 7, 8, 9, 10, /**/ NO, NO, NL, 2, 3, /**/ NO, NO, NO, NO, 5};

/* BCE from its definition in double, per position (hist_neg given): wt/(n L) times the sum
 * over the positions with a loss of softplus(-y.E[next]) + softplus(y.E[neg]). */
static double naive_bce(const fr_model *m, const fr_batch *b) {
    const fr_model_config *c = fr_model_config_of(m);
    const size_t L = c->max_len, C = c->dim;
    const float *E = tensor_of(m, "item");
    double total = 0;
    for (size_t i = 0; i < b->n; i++) {
        const uint32_t *h = b->hist + i * L;
        double y[8][8], li = 0;
        size_t T = naive_y(m, h, y), p0 = L - T;
        for (size_t t = 0; t < (T ? T : 1); t++) {
            const uint32_t pos = T == 0 || p0 + t + 1 == L ? b->items[i] : h[p0 + t + 1];
            const uint32_t neg = b->hist_neg[i * L + (T ? p0 + t : L - 1)];
            if (neg == FR_NO_LOSS) continue;
            double sp = 0, sn = 0;
            for (size_t d = 0; d < C; d++) {
                sp += y[t][d] * E[pos * C + d];
                if (neg != NO) sn += y[t][d] * E[neg * C + d];
            }
            li += log1p(exp(-sp)) + (neg != NO ? log1p(exp(sn)) : 0);
        }
        total += (b->weight ? b->weight[i] : 1.0) / ((double)b->n * (double)L) * li;
    }
    return total;
}

static void masked_case(fr_loss loss) {
    const bool ce = loss == FR_LOSS_CE;
    /* without dropout: the loss against its definition */
    gctx c = {small_model_loss(0.0f, loss), NULL, {0}};
    cr_assert_eq(fr_model_ws_create(&c.ws, c.m, 3), FR_OK);
    c.b = (fr_batch){U, IT, LAB, NULL, 3, WT, HIST, HNEG_MASK, NULL, 5};
    double l, lfull, ref = ce ? naive_ce(c.m, &c.b) : naive_bce(c.m, &c.b);
    cr_assert_eq(fr_model_loss(c.m, c.ws, &c.b, &l), FR_OK, "%s", fr_errmsg());
    cr_assert_float_eq(l, ref, 1e-5 * ref, "masked loss %.9g vs naive %.9g", l, ref);
    c.b.hist_neg = HNEG;
    cr_assert_eq(fr_model_loss(c.m, c.ws, &c.b, &lfull), FR_OK);
    cr_assert(l < lfull - 1e-3, "the mask drops terms (%g vs %g)", l, lfull);
    fr_model_ws_free(c.ws);
    fr_model_free(c.m);
    /* with dropout: the gradient of the masked loss */
    c = (gctx){small_model_loss(0.3f, loss), NULL, {0}};
    cr_assert_eq(fr_model_ws_create(&c.ws, c.m, 3), FR_OK);
    c.b = (fr_batch){U, IT, LAB, NULL, 3, WT, HIST, HNEG_MASK, KEY, 5};
    fr_grad *g = NULL;
    cr_assert_eq(fr_grad_create(&g, c.m), FR_OK);
    cr_assert_eq(fr_model_loss_grad(c.m, c.ws, &c.b, g, &l), FR_OK, "%s", fr_errmsg());
    cr_assert_float_eq(l, loss_of(&c), 1e-12);
    cr_assert_eq(check_all(&c, fr_grad_data(g)), 0);
    /* that gradient against another mask's loss, and against no mask: both must fail */
    c.b.hist_neg = HNEG_MASK2;
    fprintf(stderr, "(expected) ");
    cr_assert_gt(check_all(&c, fr_grad_data(g)), 0, "a wrong mask passed the check");
    c.b.hist_neg = HNEG;
    fprintf(stderr, "(expected) ");
    cr_assert_gt(check_all(&c, fr_grad_data(g)), 0, "no mask passed the check");
    fr_grad_free(g);
    fr_model_ws_free(c.ws);
    fr_model_free(c.m);
}

Test(sasrec, gradcheck_masked_positions_bce) { masked_case(FR_LOSS_BCE); }
Test(sasrec, gradcheck_masked_positions_ce) { masked_case(FR_LOSS_CE); }

/* A context-only position after one with a loss is refused, naming the example. */
Test(sasrec, mask_after_a_loss_position_is_refused) {
    fr_model *m = small_model(0.0f);
    fr_model_ws *ws = NULL;
    cr_assert_eq(fr_model_ws_create(&ws, m, 3), FR_OK);
    uint32_t hn[15];
    memcpy(hn, HNEG_MASK, sizeof hn);
    hn[8] = NL; /* example 1: 7 context, 8 context, 9 with a loss: fine */
    fr_batch b = {U, IT, LAB, NULL, 3, NULL, HIST, hn, NULL, 5};
    double l;
    cr_assert_eq(fr_model_loss(m, ws, &b, &l), FR_OK, "%s", fr_errmsg());
    hn[3] = NL; /* example 0: 2 with a loss, then 3 context */
    cr_assert_eq(fr_model_loss(m, ws, &b, &l), FR_ERR_INVALID);
    cr_assert(strstr(fr_errmsg(), "example 0") && strstr(fr_errmsg(), "context-only"), "%s", fr_errmsg());
    fr_model_ws_free(ws);
    fr_model_free(m);
}

static void scores_naive(uint32_t post_norm) {
    fr_model *m = small_model_norm(0.3f, FR_LOSS_BCE, post_norm); /* dropout never applies to scoring */
    uint32_t items[12];
    for (uint32_t i = 0; i < 12; i++) items[i] = i;
    float s[12], s2[12];
    const uint32_t *hs[3] = {HIST, HIST + 5, HIST + 10};
    for (int h = 0; h < 3; h++) {
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

Test(sasrec, scores_equal_naive_model_and_are_causal) { scores_naive(0); }
/* RecBole's post-norm forward: LN_in on the input, a layer norm after each residual sum */
Test(sasrec, post_norm_scores_equal_naive_model_and_are_causal) { scores_naive(1); }

Test(sasrec, post_norm_ce_loss_equals_naive_definition) {
    fr_model *m = small_model_norm(0.3f, FR_LOSS_CE, 1);
    fr_model_ws *ws = NULL;
    cr_assert_eq(fr_model_ws_create(&ws, m, 3), FR_OK);
    fr_batch b = {U, IT, LAB, NULL, 3, WT, HIST, NULL, NULL, 5};
    double l, ref = naive_ce(m, &b);
    cr_assert_eq(fr_model_loss(m, ws, &b, &l), FR_OK, "%s", fr_errmsg());
    cr_assert_float_eq(l, ref, 1e-5 * ref, "ce %.9g vs naive %.9g", l, ref);
    fr_model_ws_free(ws);
    fr_model_free(m);
}

/* ------------------------------------------------------------------ training */

#include "fedrec/model_eval.h"
#include "fedrec/runtime.h"
#include "fedrec/train.h"
#include "model/examples.h"
#include "fl/fl_internal.h"

/* 24 users walking a ring of 60 items: user u starts at 5u mod 60 and steps +1 (+2 after
 * an even item for odd users), 14 items each, time increasing; the next item is read
 * from the history, never from the user's id. */
enum { NU = 24, NI = 60, LEN = 14 };

typedef struct data {
    fr_dataset *all, *train, *test;
    fr_negatives *negs;
} data;

static data gen(void) {
    static int64_t u[NU * LEN], it[NU * LEN], ts[NU * LEN];
    static float r[NU * LEN];
    size_t n = 0;
    for (int x = 0; x < NU; x++) {
        int cur = (5 * x) % NI;
        for (int k = 0; k < LEN; k++, n++) {
            u[n] = x; it[n] = cur; r[n] = 1; ts[n] = 1000 + 10 * k + x;
            cur = (cur + ((x & 1) && !(cur & 1) ? 2 : 1)) % NI;
        }
    }
    data d = {0};
    cr_assert_eq(fr_dataset_from_arrays(&d.all, n, u, it, r, ts), FR_OK, "%s", fr_errmsg());
    cr_assert_eq(fr_dataset_split(d.all, FR_SPLIT_LOO, 0, 1, &d.train, &d.test), FR_OK);
    cr_assert_eq(fr_negatives_sample(&d.negs, d.all, d.test, 30, 4), FR_OK);
    return d;
}

static void data_free(data *d) {
    fr_negatives_free(d->negs);
    fr_dataset_free(d->test);
    fr_dataset_free(d->train);
    fr_dataset_free(d->all);
}

/* the tests' small sasrec on d, with the loss and the blocks' norm given */
static fr_model_config config(const data *d, fr_loss loss, uint32_t post_norm) {
    fr_model_kind k;
    cr_assert_eq(fr_model_kind_parse("sasrec", &k), FR_OK);
    fr_model_config c;
    fr_model_config_default(&c, k);
    c.n_users = fr_dataset_n_users(d->train);
    c.n_items = fr_dataset_n_items(d->train);
    c.dim = 16;
    c.n_layers = 1;
    c.heads = 2;
    c.max_len = 6;
    c.ffn_dim = 16;
    c.dropout = 0.1f;
    c.seed = 5;
    c.loss = loss;
    c.post_norm = post_norm;
    return c;
}

/* epochs of centralized training of m on d's training set with tc, the epochs' losses in
 * loss (NULL: not kept) */
static void train_epochs(fr_model *m, const data *d, const fr_train_config *tc, int epochs, double *loss) {
    fr_trainer *t = NULL;
    cr_assert_eq(fr_trainer_create(&t, m, d->train, tc), FR_OK, "%s", fr_errmsg());
    for (int e = 0; e < epochs; e++) cr_assert_eq(fr_trainer_epoch(t, loss ? &loss[e] : NULL), FR_OK, "%s", fr_errmsg());
    fr_trainer_free(t);
}

static bool had_own(const void *ctx, uint32_t j) { return ((const uint8_t *)ctx)[j] != 0; }

/* fri_examples_add_seq's windows with stride S against an enumeration from their
 * definition: a user of deg distinct items gives windows ending at deg-1, deg-1-S, ...
 * down to the first end <= L; each holds the L items before its end (FR_NO_ITEM before
 * the first); every item but the first is a target (a position with a loss) exactly
 * once, with at least min(j, L - S + 1) items before it in its window; the context-only
 * positions (FR_NO_LOSS, no negative drawn) are a prefix; a loss position's negative is
 * an item the user never had. S = L gives the bits of stride 0 (the disjoint windows). */
Test(sasrec, strided_windows_train_every_target_once_with_context) {
    enum { NIT = 80, MAXDEG = 41 };
    uint32_t items[MAXDEG], where[NIT];
    uint8_t own[NIT];
    size_t cases = 0, masked = 0;
    for (size_t L = 1; L <= 7; L++)
        for (size_t S = 1; S <= L; S++)
            for (size_t deg = 0; deg <= MAXDEG; deg += deg < 20 ? 1 : 7) {
                memset(own, 0, sizeof own);
                for (size_t x = 0; x < deg; x++) { /* distinct: 37 is prime to 80 */
                    items[x] = (uint32_t)((x * 37 + 11 + L) % NIT);
                    own[items[x]] = 1;
                    where[items[x]] = (uint32_t)x;
                }
                fri_examples ex = {0}, ex0 = {0};
                ex.hist_len = ex0.hist_len = (uint32_t)L;
                ex.stride = (uint32_t)S;
                fr_rng r, r0;
                fr_rng_init(&r, 5, (uint32_t)deg, (uint32_t)(8 * L + S), FR_PURPOSE_NEGATIVES);
                r0 = r;
                cr_assert_eq(fri_examples_add_seq(&ex, items, deg, NIT, had_own, own, 3, &r), FR_OK, "%s", fr_errmsg());
                /* the ends, from the definition */
                size_t ends[MAXDEG], n_ends = 0;
                if (deg >= 2)
                    for (size_t e = deg - 1;; e -= S) {
                        ends[n_ends++] = e;
                        if (e <= L) break;
                    }
                cr_assert_eq(ex.n, n_ends, "L %zu S %zu deg %zu: %zu windows, expected %zu", L, S, deg, ex.n, n_ends);
                int seen[MAXDEG] = {0};
                for (size_t k = 0; k < ex.n; k++) {
                    const size_t e = ends[k];
                    cr_assert_eq(ex.item[k], items[e]);
                    cr_assert_eq(ex.user[k], 3);
                    const uint32_t *h = ex.hist + k * L, *hn = ex.hneg + k * L;
                    bool loss_seen = false;
                    for (size_t t = 0; t < L; t++) {
                        if (e + t < L) { /* before the first item */
                            cr_assert(h[t] == NO && hn[t] == NO);
                            continue;
                        }
                        const size_t idx = e + t - L, j = idx + 1; /* position t holds s_idx, predicts s_j */
                        cr_assert_eq(h[t], items[idx]);
                        if (hn[t] == FR_NO_LOSS) {
                            cr_assert(!loss_seen, "context-only positions are a prefix");
                            masked++;
                            continue;
                        }
                        loss_seen = true;
                        cr_assert(hn[t] < NIT && !own[hn[t]], "negative %u", hn[t]);
                        seen[j]++;
                        const size_t before = j - (e > L ? e - L : 0); /* items of the window before s_j */
                        cr_assert_geq(before, j < L - S + 1 ? j : L - S + 1, "L %zu S %zu deg %zu: target %zu", L, S,
                                      deg, j);
                    }
                    cr_assert(loss_seen, "a window without a target");
                    (void)where;
                }
                for (size_t j = 0; j < deg; j++) cr_assert_eq(seen[j], j > 0, "L %zu S %zu deg %zu: target %zu", L, S, deg, j);
                if (S == L) { /* the disjoint windows: stride 0's bits and streams */
                    cr_assert_eq(fri_examples_add_seq(&ex0, items, deg, NIT, had_own, own, 3, &r0), FR_OK);
                    cr_assert_eq(ex0.n, ex.n);
                    cr_assert(!ex.n || (!memcmp(ex0.hist, ex.hist, ex.n * L * 4) && !memcmp(ex0.hneg, ex.hneg, ex.n * L * 4) &&
                                        !memcmp(ex0.key, ex.key, ex.n * 8) && !memcmp(ex0.item, ex.item, ex.n * 4)));
                    cr_assert(!memcmp(&r0, &r, sizeof r), "the same draws");
                }
                fri_examples_free(&ex);
                fri_examples_free(&ex0);
                cases++;
            }
    cr_assert(cases > 500 && masked > 1000, "%zu cases, %zu context positions", cases, masked);
    /* a stride longer than the history is refused */
    fri_examples ex = {0};
    ex.hist_len = 4;
    ex.stride = 5;
    fr_rng r;
    fr_rng_init(&r, 5, 0, 0, FR_PURPOSE_NEGATIVES);
    cr_assert_eq(fri_examples_add_seq(&ex, items, 10, NIT, had_own, own, 0, &r), FR_ERR_INVALID);
    fri_examples_free(&ex);
}

static double hr10(const fr_model *m, const data *d) {
    fr_eval_result r;
    cr_assert_eq(fr_model_evaluate(m, d->train, d->test, d->negs, NULL, NULL, &r), FR_OK, "%s", fr_errmsg());
    return r.hr[0];
}

static void central_threads(fr_loss lossk, uint32_t stride, uint32_t post_norm) {
    data d = gen();
    fr_model_config c = config(&d, lossk, post_norm);
    fr_model *m[2] = {NULL, NULL};
    for (int i = 0; i < 2; i++) cr_assert_eq(fr_model_create(&m[i], &c), FR_OK, "%s", fr_errmsg());
    double before = hr10(m[0], &d);
    fr_train_config tc;
    fr_train_config_default(&tc);
    tc.batch = 8;
    tc.optim.lr = 0.01f;
    tc.seq_stride = stride;
    double loss[30];
    for (int threads = 1; threads <= 2; threads++) {
        tc.threads = threads;
        train_epochs(m[threads - 1], &d, &tc, 30, loss);
    }
    cr_assert_lt(loss[29], 0.7 * loss[0], "loss %g -> %g", loss[0], loss[29]);
    cr_assert(!memcmp(fr_model_params(m[0]), fr_model_params(m[1]), fr_model_n_params(m[0]) * sizeof(float)),
              "1 and 2 threads give the same bits");
    double after = hr10(m[0], &d);
    /* 30 negatives: ranking at random gives hr@10 = 10/31 */
    cr_assert(after > before && after > 0.8, "hr@10 %g -> %g", before, after);
    fr_model_free(m[0]);
    fr_model_free(m[1]);
    data_free(&d);
}

Test(sasrec, trains_centrally_bit_identical_across_threads) { central_threads(FR_LOSS_BCE, 0, 0); }
Test(sasrec, ce_trains_centrally_bit_identical_across_threads) { central_threads(FR_LOSS_CE, 0, 0); }
/* overlapping windows (13 training items, L = 6: stride 2 makes 4 windows a user, 3 makes 3; not 2) */
Test(sasrec, strided_trains_centrally_bit_identical_across_threads) { central_threads(FR_LOSS_BCE, 3, 0); }
Test(sasrec, ce_strided_trains_centrally_bit_identical_across_threads) { central_threads(FR_LOSS_CE, 2, 0); }
Test(sasrec, post_norm_trains_centrally_bit_identical_across_threads) { central_threads(FR_LOSS_BCE, 0, 1); }
Test(sasrec, post_norm_ce_trains_centrally_bit_identical_across_threads) { central_threads(FR_LOSS_CE, 0, 1); }

static void federated_threads(fr_loss loss, uint32_t stride, uint32_t post_norm) {
    data d = gen();
    fr_model_config c = config(&d, loss, post_norm);
    fr_fl_config fc;
    fr_fl_config_default(&fc, c.kind);
    fc.seq_stride = stride;
    fc.local.lr = 0.02f;
    fc.local_epochs = 2;
    fc.batch = 4;
    float *first = NULL;
    for (int threads = 1; threads <= 2; threads++) {
        fr_pool *pool = NULL;
        cr_assert_eq(fr_pool_create(&pool, threads), FR_OK);
        fr_sim *s = NULL;
        cr_assert_eq(fr_sim_create(&s, &c, &fc, d.train, pool), FR_OK, "%s", fr_errmsg());
        fr_round_stats st, st1;
        for (int r = 0; r < 10; r++) cr_assert_eq(fr_sim_round(s, r == 0 ? &st1 : &st), FR_OK, "%s", fr_errmsg());
        cr_assert_eq(st.clients, fr_dataset_n_users(d.train));
        cr_assert_lt(st.loss, 0.9 * st1.loss, "round loss %g -> %g", st1.loss, st.loss);
        fr_model *m = fr_sim_model(s);
        size_t np = fr_model_n_params(m);
        if (threads == 1) {
            first = malloc(np * sizeof(float));
            memcpy(first, fr_model_params(m), np * sizeof(float));
        } else {
            cr_assert(!memcmp(first, fr_model_params(m), np * sizeof(float)), "1 and 2 threads give the same bits");
        }
        fr_sim_free(s);
        fr_pool_free(pool);
    }
    free(first);
    data_free(&d);
}

Test(sasrec, trains_federated_bit_identical_across_threads) { federated_threads(FR_LOSS_BCE, 0, 0); }
Test(sasrec, ce_trains_federated_bit_identical_across_threads) { federated_threads(FR_LOSS_CE, 0, 0); }
Test(sasrec, strided_trains_federated_bit_identical_across_threads) { federated_threads(FR_LOSS_BCE, 2, 0); }
Test(sasrec, ce_strided_trains_federated_bit_identical_across_threads) { federated_threads(FR_LOSS_CE, 3, 0); }
Test(sasrec, post_norm_trains_federated_bit_identical_across_threads) { federated_threads(FR_LOSS_BCE, 0, 1); }
Test(sasrec, post_norm_ce_trains_federated_bit_identical_across_threads) { federated_threads(FR_LOSS_CE, 0, 1); }

/* One federated round of full-batch plain SGD (one local step per client) is one
 * centralized full-batch gradient step on the union of the clients' examples: FedAvg
 * weighs each client by its examples, and the clients draw the negatives and dropout
 * keys that the same streams give the reference here. */
static void one_round_full_batch(fr_loss lossk, uint32_t stride, uint32_t post_norm) {
    data d = gen();
    fr_model_config c = config(&d, lossk, post_norm);
    c.dropout = 0.2f;
    fr_fl_config fc;
    fr_fl_config_default(&fc, c.kind);
    fc.seq_stride = stride;
    fc.seed = 9;
    fc.batch = 100000;
    fc.local_epochs = 1;
    fr_optim_config_default(&fc.local, FR_OPTIM_SGD);
    fc.local.lr = 0.5f;
    fr_optim_config_default(&fc.item_local, FR_OPTIM_SGD);
    fc.item_local.lr = 0.5f;
    fc.item_sum = false;
    fc.item_lr_decay = 1.0f;
    fc.strategy = FR_STRATEGY_FEDAVG;
    fc.server_lr = 1.0f;
    fr_sim *sim = NULL;
    cr_assert_eq(fr_sim_create(&sim, &c, &fc, d.train, NULL), FR_OK, "%s", fr_errmsg());
    fr_model *ref = NULL;
    cr_assert_eq(fr_model_clone(&ref, fr_sim_model(sim)), FR_OK);
    fr_round_stats st;
    cr_assert_eq(fr_sim_round(sim, &st), FR_OK, "%s", fr_errmsg());
    const fr_model *fed = fr_sim_model(sim);

    fri_examples ex = {0};
    ex.hist_len = c.max_len;
    ex.stride = stride;
    for (uint32_t u = 0; u < fr_dataset_n_users(d.train); u++) {
        fr_rng r;
        fr_rng_init(&r, fc.seed, 1, u, FR_PURPOSE_NEGATIVES);
        cr_assert_eq(fri_examples_add_user_seq(&ex, d.train, u, u, &r), FR_OK);
    }
    cr_assert_eq(st.examples, ex.n);
    if (stride) { /* overlapping windows: more of them, with context-only positions */
        size_t ctx = 0;
        for (size_t x = 0; x < ex.n * ex.hist_len; x++) ctx += ex.hneg[x] == FR_NO_LOSS;
        cr_assert(ex.n > 2 * fr_dataset_n_users(d.train) && ctx > 0, "%zu windows, %zu context positions", ex.n, ctx);
    }
    fr_batch b = {ex.user, ex.item, ex.label, NULL, ex.n, NULL, ex.hist, ex.hneg, ex.key, ex.hist_len};
    double maxdiff, maxmove;
    cr_assert(tu_sgd_step_diff(ref, fed, &b, 0.5, &maxdiff, &maxmove), "%s", fr_errmsg());
    const float *w = fr_model_params(ref), *wf = fr_model_params_const(fed);
    cr_assert(maxmove > 1e-3, "the step must move the model (%g)", maxmove);
    cr_assert(maxdiff < 2e-6, "fedavg vs full batch: max diff %g (largest move %g)", maxdiff, maxmove);
    if (lossk == FR_LOSS_CE) { /* the softmax moved every item row, the ones no user had included */
        const fr_tensor *it = fr_model_tensor(ref, fr_model_tensor_find(ref, "item"));
        const float *w0 = w + it->offset, *w1 = wf + it->offset;
        for (uint32_t r = 0; r < it->rows; r++) {
            double mv = 0;
            for (uint32_t k = 0; k < it->cols; k++) mv = fmax(mv, fabs((double)w1[r * it->cols + k] - w0[r * it->cols + k]));
            cr_assert(mv > 0, "item row %u did not move", r);
        }
    }
    fri_examples_free(&ex);
    fr_model_free(ref);
    fr_sim_free(sim);
    data_free(&d);
}

Test(sasrec, one_round_equals_one_full_batch_step) { one_round_full_batch(FR_LOSS_BCE, 0, 0); }
Test(sasrec, ce_one_round_equals_one_full_batch_step) { one_round_full_batch(FR_LOSS_CE, 0, 0); }
Test(sasrec, strided_one_round_equals_one_full_batch_step) { one_round_full_batch(FR_LOSS_BCE, 2, 0); }
Test(sasrec, ce_strided_one_round_equals_one_full_batch_step) { one_round_full_batch(FR_LOSS_CE, 4, 0); }

Test(sasrec, post_norm_one_round_equals_one_full_batch_step) { one_round_full_batch(FR_LOSS_BCE, 0, 1); }
Test(sasrec, post_norm_ce_one_round_equals_one_full_batch_step) { one_round_full_batch(FR_LOSS_CE, 0, 1); }

static void file_round_trip(fr_loss loss, uint32_t stride, uint32_t post_norm) {
    data d = gen();
    fr_model_config c = config(&d, loss, post_norm);
    c.heads = 4;
    c.max_len = 9;
    c.ffn_dim = 24;
    c.n_layers = 3;
    c.dropout = 0.35f;
    fr_model *m = NULL, *l = NULL;
    cr_assert_eq(fr_model_create(&m, &c), FR_OK);
    fr_train_config tc;
    fr_train_config_default(&tc);
    tc.seq_stride = stride; /* a training setting: not in the model file */
    train_epochs(m, &d, &tc, 1, NULL);
    uint8_t *bytes;
    size_t n;
    cr_assert_eq(fr_model_encode(m, NULL, &bytes, &n), FR_OK, "%s", fr_errmsg());
    cr_assert_eq(fr_model_decode(&l, bytes, n, "<mem>", NULL), FR_OK, "%s", fr_errmsg());
    const fr_model_config *a = fr_model_config_of(l);
    cr_assert_eq(a->kind, c.kind);
    cr_assert_eq(a->loss, loss);
    cr_assert(a->dim == 16 && a->n_layers == 3 && a->heads == 4 && a->max_len == 9 && a->ffn_dim == 24);
    cr_assert_eq(a->dropout, 0.35f);
    cr_assert_eq(a->post_norm, post_norm);
    cr_assert_eq(fr_model_history_len(l), 9);
    cr_assert_eq(fr_model_n_params(l), fr_model_n_params(m));
    cr_assert(!memcmp(fr_model_params(l), fr_model_params(m), fr_model_n_params(m) * sizeof(float)));
    uint8_t *again;
    size_t n2;
    cr_assert_eq(fr_model_encode(l, NULL, &again, &n2), FR_OK);
    cr_assert(n2 == n && !memcmp(bytes, again, n), "encode(decode(x)) == x");
    /* the field is written under post-norm only: a pre-norm file is the same bytes as one
     * written before the option (4 bytes shorter than its post-norm twin), and reads as pre */
    fr_model *o = NULL;
    uint8_t *other;
    size_t n3;
    fr_model_config c2 = *fr_model_config_of(l);
    c2.post_norm = !post_norm;
    cr_assert_eq(fr_model_create(&o, &c2), FR_OK);
    cr_assert_eq(fr_model_encode(o, NULL, &other, &n3), FR_OK);
    cr_assert_eq(n3 + (post_norm ? 4 : 0), n + (post_norm ? 0 : 4), "post-norm adds one u32");
    fr_model_bytes_free(other);
    fr_model_free(o);
    fr_model_bytes_free(again);
    fr_model_bytes_free(bytes);
    fr_model_free(l);
    fr_model_free(m);
    data_free(&d);
}

Test(sasrec, model_file_round_trip_bit_for_bit) { file_round_trip(FR_LOSS_BCE, 0, 0); }
Test(sasrec, ce_model_file_round_trip_bit_for_bit) { file_round_trip(FR_LOSS_CE, 0, 0); }
Test(sasrec, strided_model_file_round_trip_bit_for_bit) { file_round_trip(FR_LOSS_CE, 4, 0); }
Test(sasrec, post_norm_model_file_round_trip_bit_for_bit) { file_round_trip(FR_LOSS_BCE, 0, 1); }
Test(sasrec, post_norm_ce_model_file_round_trip_bit_for_bit) { file_round_trip(FR_LOSS_CE, 0, 1); }

/* The stride in the federation's config block: 0 writes the bytes of a build without it,
 * another value one flag and a u32 that read back; the trainer refuses one longer than
 * the history or for a model that reads none. */
Test(sasrec, stride_travels_in_the_config_and_is_checked) {
    fr_model_kind k;
    cr_assert_eq(fr_model_kind_parse("sasrec", &k), FR_OK);
    fr_fl_config off, on;
    fr_fl_config_default(&off, k);
    on = off;
    on.seq_stride = 7;
    fri_buf b0 = {0}, b1 = {0};
    fri_fl_config_put(&b0, &off);
    fri_fl_config_put(&b1, &on);
    cr_assert_eq(b1.len, b0.len + 4);
    fr_fl_config back;
    fri_rd rd = {.p = b1.data, .n = b1.len, .name = "test", .kind = "config"};
    cr_assert_eq(fri_fl_config_get(&rd, &back), FR_OK, "%s", fr_errmsg());
    cr_assert_eq(back.seq_stride, 7);
    fri_rd rd0 = {.p = b0.data, .n = b0.len, .name = "test", .kind = "config"};
    cr_assert_eq(fri_fl_config_get(&rd0, &back), FR_OK);
    cr_assert_eq(back.seq_stride, 0);
    fri_buf_free(&b0);
    fri_buf_free(&b1);
    on.seq_stride = 2000;
    cr_assert_eq(fr_fl_config_check(&on), FR_ERR_INVALID);

    data d = gen();
    fr_model_config c = config(&d, FR_LOSS_BCE, 0); /* max_len 6 */
    fr_model *m = NULL;
    cr_assert_eq(fr_model_create(&m, &c), FR_OK);
    fr_train_config tc;
    fr_train_config_default(&tc);
    tc.seq_stride = 7;
    fr_trainer *t = NULL;
    cr_assert_eq(fr_trainer_create(&t, m, d.train, &tc), FR_ERR_INVALID);
    cr_assert(strstr(fr_errmsg(), "stride 7"), "%s", fr_errmsg());
    fr_model_free(m);
    fr_model_config_default(&c, FR_MODEL_BPR);
    c.n_users = fr_dataset_n_users(d.train);
    c.n_items = fr_dataset_n_items(d.train);
    cr_assert_eq(fr_model_create(&m, &c), FR_OK);
    tc.seq_stride = 1;
    cr_assert_eq(fr_trainer_create(&t, m, d.train, &tc), FR_ERR_INVALID);
    cr_assert(strstr(fr_errmsg(), "sasrec only"), "%s", fr_errmsg());
    fr_model_free(m);
    data_free(&d);
}

/* The fedrec preset's federated sasrec sizes its rounds from the data: fl_epochs epochs'
 * worth of clients (ceil(E x users / clients a round)), so a set of 3x the users gets 3x
 * the rounds; without data the fixed count; a share of clients a round counts too. */
Test(sasrec, preset_rounds_follow_the_users) {
    fr_model_kind k;
    cr_assert_eq(fr_model_kind_parse("sasrec", &k), FR_OK);
    fr_run_config c;
    cr_assert_eq(fr_run_config_preset(&c, "fedrec", k, false, NULL), FR_OK);
    cr_assert(c.fl_epochs > 0);
    const uint32_t fixed = c.loop.steps;
    cr_assert_eq(fr_run_fl_rounds(&c, 943), (uint32_t)ceil(c.fl_epochs * 943 / 32 - 1e-9));
    cr_assert_eq(fr_run_fl_rounds(&c, 943), fixed, "the fixed count is ml-100k's (943 users)");
    cr_assert_eq(fr_run_fl_rounds(&c, 2999), (uint32_t)ceil(c.fl_epochs * 2999 / 32 - 1e-9));
    cr_assert_eq(fr_run_fl_rounds(&c, 0), fixed);
    cr_assert_eq(fr_run_fl_rounds(&c, 10), (uint32_t)ceil(c.fl_epochs - 1e-9), "fewer users than a round samples");
    c.fl.clients_per_round = 0.25; /* a share: 250 of 1000 */
    cr_assert_eq(fr_run_fl_rounds(&c, 1000), (uint32_t)ceil(c.fl_epochs * 4 - 1e-9));
    c.fl_epochs = 0;
    cr_assert_eq(fr_run_fl_rounds(&c, 1000), fixed, "fl_epochs 0: the rounds as they are");
    /* with data: the preset sets them */
    data d = gen();
    cr_assert_eq(fr_run_config_preset(&c, "fedrec", k, false, d.train), FR_OK);
    cr_assert_eq(c.loop.steps, (uint32_t)ceil(c.fl_epochs * NU / NU - 1e-9), "24 users, all in each round");
    cr_assert(c.model.post_norm == 0 && c.model.dropout == 0.2f, "federated: pre-norm blocks, dropout 0.2");
    cr_assert_eq(fr_run_config_preset(&c, "fedrec", k, true, d.train), FR_OK);
    cr_assert_eq(c.fl_epochs, 0, "centralized: epochs, not rounds");
    /* the centralized recipe: CE, Adam 0.003 on 32 windows a batch, 40 epochs (tuned on a
     * validation cut of ml-100k, docs/ARCHITECTURE.md), post-norm blocks with the dropout
     * from the data's size */
    cr_assert(c.model.post_norm == 1 && c.model.dropout == 0.5f, "a small set: post-norm blocks, dropout 0.5");
    /* the size rule: 0.5 up to 100000 training interactions, 0.2 from 200000, log-linear
     * in between: 100000·2^0.5 is halfway on the log scale (0.35), 100000·2^0.25 a quarter
     * (0.425), 100000·2^0.75 three quarters (0.275) */
    const struct { uint64_t n; double dropout; } sizes[] = {
        {0, 0.5}, {99057, 0.5}, {100000, 0.5}, {118921, 0.425}, {141421, 0.35}, {168179, 0.275},
        {200000, 0.2}, {245579, 0.2}, {100000000, 0.2},
    };
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        fr_run_data_stats st = {.users = 943, .interactions = sizes[i].n};
        cr_assert_eq(fr_run_config_preset_stats(&c, "fedrec", k, true, &st), FR_OK);
        cr_assert(c.model.post_norm == 1 && fabs(c.model.dropout - sizes[i].dropout) < 2e-6,
                  "%llu interactions: dropout %.7f, expected %.7f", (unsigned long long)sizes[i].n,
                  (double)c.model.dropout, sizes[i].dropout);
        cr_assert_eq(fr_run_config_preset_stats(&c, "fedrec", k, false, &st), FR_OK);
        cr_assert(c.model.post_norm == 0 && c.model.dropout == 0.2f, "federated: pre-norm, 0.2 whatever the size");
        cr_assert_eq(fr_run_config_preset_stats(&c, "textbook", k, true, &st), FR_OK);
        cr_assert(c.model.post_norm == 0 && c.model.dropout == 0.2f, "textbook: the model's own defaults");
    }
    cr_assert_eq(fr_run_config_preset(&c, "fedrec", k, true, NULL), FR_OK);
    cr_assert(c.model.post_norm == 1 && c.model.dropout == 0.5f, "no data: the small set's 0.5");
    cr_assert_eq(fr_run_config_preset(&c, "fedrec", k, true, d.train), FR_OK);
    cr_assert(c.model.loss == FR_LOSS_CE && c.train.batch == 32 && c.train.optim.kind == FR_OPTIM_ADAM &&
              c.train.optim.lr == 0.003f && c.loop.steps == 40 && c.lr_decay == 1.0);
    data_free(&d);
}
