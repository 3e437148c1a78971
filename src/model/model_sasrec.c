/* The self-attention sequential family (family.h): `sasrec` (Kang & McAuley 2018,
 * "Self-Attentive Sequential Recommendation"). A user is its history: the items it had,
 * in time order, the latest L. Position t of the history reads item embedding E[s_t]
 * plus a learned position embedding P[t] (positions right-aligned: the latest item is
 * position L-1); blocks of pre-norm causal self-attention and a point-wise feed-forward
 * with residuals and dropout follow; a final layer norm gives y_t, and the score of item
 * j as the item after position t is y_t . E[j] (the item table is shared by input and
 * output, as the paper). Trained with BCE (FR_LOSS_BCE, the paper's): at every position
 * the next item against one sampled negative (fr_batch.hist_neg), or pointwise on
 * (items[i], label[i]) after the whole history when a batch carries no negatives per
 * position; or with softmax cross-entropy (FR_LOSS_CE, RecBole's default): at every
 * position the next item against ALL items, logits S = Y E^T [T, N] by one matrix
 * product a sequence (hist_neg and labels are not read; an empty history has one target,
 * items[i]). CE's gradient reaches every item row, so a federated client loads and
 * updates the whole item table (fri_model_reads_all_items); in a client's compact model
 * the softmax runs over its bound rows, which are then the whole catalogue.
 *
 *   x_0 = drop(E[s] + P)                     per block b:
 *   a = LN1(x); q, k, v = a W_q, a W_k, a W_v (+ biases); o = causal_attention(q, k, v) W_o + b_o
 *   x' = x + drop(o);  x'' = x' + drop(FFN(LN2(x')))      y = LN_f(x_B)
 *
 * Post-norm (cfg.post_norm = 1, `--norm post`; RecBole 1.2.1's SASRec, the original
 * Transformer's placement): the same tensors, out.ln as LN_in on the input and no final norm:
 *   x_0 = drop(LN_in(E[s] + P))              per block b:
 *   h = LN1(x + drop(MHA(x)));  x'' = LN2(h + drop(FFN(h)))      y = x_B
 *
 * Padded positions (FR_NO_ITEM, on the left) are not computed at all: a history of T
 * items runs as T rows. An empty history's output is the last layer norm's bias (LN_f's;
 * under post-norm, the last block's LN2).
 * Per example the loss is (1/L) sum over positions t of softplus(-y_t.E[pos_t]) +
 * softplus(y_t.E[neg_t]) (the paper's sum over positions, scaled by the fixed L so that
 * every position weighs the same in any batch), or the pointwise BCE, or (1/L) sum over
 * positions of logsumexp_j y_t.E[j] - y_t.E[pos_t] under CE; positions whose hist_neg is
 * FR_NO_LOSS (a prefix: context for the later ones, fri_examples' strided windows) are
 * left out of either sum, and CE computes no logits for them; a batch's loss is
 * the mean over its examples (weighted as fr_batch.weight says). A batch runs one
 * sequence at a time, so the workspace is O(L (C + F) blocks + heads L^2), whatever the
 * batch size (CE adds the logits, L x N). Dropout masks come from the example's key
 * (fr_batch.key; none without keys), so a gradient check of a dropped-out model is exact.
 *
 * Layout (all shared; no user table: nothing private but the history, which is data):
 *   item [n_items x C] (N(0, std)), pos [L x C] (N(0, std)), per block b: b.ln [4 x C]
 *   (LN1 gain-1, LN1 bias, LN2 gain-1, LN2 bias: a gain is stored as its offset from 1,
 *   so a zero init is the identity), b.attn [4C x C] (W_q, W_k, W_v, W_o; xavier),
 *   b.ffn1 [F x C], b.ffn2 [C x F] (xavier), b.bias [1 x 5C + F] (b_q, b_k, b_v, b_o,
 *   b_1, b_2; zero); out.ln [2 x C] (LN_f gain-1, bias).
 * Parameter block in the config section: u32 dim, u32 n_layers (blocks), u32 heads,
 * u32 max_len, u32 ffn_dim, f32 dropout, then u32 post_norm (1) under post-norm only: a
 * pre-norm file is as before the option, and a block without the field reads as pre-norm. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/core.h"
#include "model/family.h"
#include "model/layers.h"
#include "model/layers_seq.h"

#define MAX_BLOCKS 4
#define PER_BLOCK 5 /* tensors of a block */
enum { ITEM, POS, OUTLN, BLK0 };   /* roles in m->slot (block b's tensor j is slot[BLK0] + 5b + j) */
enum { B_LN, B_ATTN, B_FFN1, B_FFN2, B_BIAS };

/* ---------------------------------------------------------------- config */

static void config_default(fr_model_config *c) {
    c->dim = 64;
    c->n_layers = 2;
    c->heads = 1;
    c->max_len = 50;
    c->ffn_dim = 64;
    c->dropout = 0.2f;
    c->loss = FR_LOSS_BCE;
}

static fr_err config_check(const fr_model_config *c) {
    if (c->dim == 0 || c->dim > 1024) return fri_fail(FR_ERR_INVALID, "sasrec: dim %u: expected 1..1024", c->dim);
    if (c->n_layers == 0 || c->n_layers > MAX_BLOCKS)
        return fri_fail(FR_ERR_INVALID, "sasrec: n_layers (blocks) %u: expected 1..%d", c->n_layers, MAX_BLOCKS);
    if (c->heads == 0 || c->dim % c->heads)
        return fri_fail(FR_ERR_INVALID, "sasrec: heads %u: expected a divisor of dim %u", c->heads, c->dim);
    if (c->max_len == 0 || c->max_len > 1024)
        return fri_fail(FR_ERR_INVALID, "sasrec: max_len %u: expected 1..1024", c->max_len);
    if (c->ffn_dim == 0 || c->ffn_dim > 4096)
        return fri_fail(FR_ERR_INVALID, "sasrec: ffn_dim %u: expected 1..4096", c->ffn_dim);
    if (!(c->dropout >= 0.0f && c->dropout < 1.0f))
        return fri_fail(FR_ERR_INVALID, "sasrec: dropout %g: expected 0 <= p < 1", (double)c->dropout);
    if (c->loss != FR_LOSS_BCE && c->loss != FR_LOSS_CE)
        return fri_fail(FR_ERR_INVALID, "sasrec: loss %s: expected bce or ce", fri_loss_name(c->loss));
    if (c->l2 != 0.0f) return fri_fail(FR_ERR_INVALID, "sasrec: l2 %g: sasrec takes no l2 term (0)", (double)c->l2);
    if (c->post_norm > 1)
        return fri_fail(FR_ERR_INVALID, "sasrec: post_norm %u: expected 0 (pre-norm) or 1 (post-norm)", c->post_norm);
    return FR_OK;
}

static void params_put(fri_buf *b, const fr_model_config *c) {
    fri_buf_u32(b, c->dim);
    fri_buf_u32(b, c->n_layers);
    fri_buf_u32(b, c->heads);
    fri_buf_u32(b, c->max_len);
    fri_buf_u32(b, c->ffn_dim);
    fri_buf_f32(b, c->dropout);
    if (c->post_norm) fri_buf_u32(b, c->post_norm);
}

static fr_err params_get(fri_rd *r, fr_model_config *c) {
    fr_err e;
    if ((e = fri_rd_u32(r, &c->dim, "dim")) || (e = fri_rd_u32(r, &c->n_layers, "n_layers")) ||
        (e = fri_rd_u32(r, &c->heads, "heads")) || (e = fri_rd_u32(r, &c->max_len, "max_len")) ||
        (e = fri_rd_u32(r, &c->ffn_dim, "ffn_dim")) || (e = fri_rd_f32(r, &c->dropout, "dropout")))
        return e;
    c->post_norm = 0; /* a block without the field: pre-norm */
    if (fri_rd_left(r) && (e = fri_rd_u32(r, &c->post_norm, "post_norm"))) return e;
    return FR_OK;
}

static uint32_t history_len(const fr_model_config *c) { return c->max_len; }

static bool reads_all_items(const fr_model_config *c) { return c->loss == FR_LOSS_CE; }

/* ---------------------------------------------------------------- layout */

static fr_err layout(fr_model *m, const fr_model_config *c) {
    fr_err e;
    const uint32_t C = c->dim, F = c->ffn_dim;
#define ADD(slot, name, r, cc, kind, init) \
    do { if ((e = fri_model_add_tensor(m, name, r, cc, kind, init, slot)) != FR_OK) return e; } while (0)
    ADD(&m->slot[ITEM], "item", c->n_items, C, FR_TENSOR_ITEM_TABLE, FRI_INIT_NORMAL);
    ADD(&m->slot[POS], "pos", c->max_len, C, FR_TENSOR_DENSE, FRI_INIT_NORMAL);
    for (uint32_t b = 0; b < c->n_layers; b++) {
        char nm[FR_TENSOR_NAME_MAX];
        int first;
        snprintf(nm, sizeof nm, "b%u.ln", b);
        ADD(&first, nm, 4, C, FR_TENSOR_DENSE, FRI_INIT_ZERO);
        if (b == 0) m->slot[BLK0] = first;
        snprintf(nm, sizeof nm, "b%u.attn", b);
        ADD(NULL, nm, 4 * C, C, FR_TENSOR_DENSE, FRI_INIT_XAVIER);
        snprintf(nm, sizeof nm, "b%u.ffn1", b);
        ADD(NULL, nm, F, C, FR_TENSOR_DENSE, FRI_INIT_XAVIER);
        snprintf(nm, sizeof nm, "b%u.ffn2", b);
        ADD(NULL, nm, C, F, FR_TENSOR_DENSE, FRI_INIT_XAVIER);
        snprintf(nm, sizeof nm, "b%u.bias", b);
        ADD(NULL, nm, 1, 5 * C + F, FR_TENSOR_DENSE, FRI_INIT_ZERO);
    }
    ADD(&m->slot[OUTLN], "out.ln", 2, C, FR_TENSOR_DENSE, FRI_INIT_ZERO);
#undef ADD
    return FR_OK;
}

/* ---------------------------------------------------------------- workspace */

typedef struct blk_ws {
    float *x;                   /* [L,C] the block's input */
    float *a, *mean1, *rstd1;   /* [L,C], [L], [L] LN1 */
    float *q, *k, *v;           /* [L,C] */
    float *att;                 /* [H,L,L] attention probabilities */
    float *ao;                  /* [L,C] attention output before W_o */
    float *m1;                  /* [L,C] dropout mask of the attention branch */
    float *x1;                  /* [L,C] x + drop(o) */
    float *c, *mean2, *rstd2;   /* [L,C], [L], [L] LN2 */
    float *h;                   /* [L,F] feed-forward hidden (after ReLU) */
    float *m2;                  /* [L,C] dropout mask of the feed-forward branch */
} blk_ws;

typedef struct sas_ws {
    blk_ws b[MAX_BLOCKS];
    float *m0;                  /* [L,C] dropout mask of the input */
    float *xb;                  /* [L,C] the last block's output */
    float *y, *meanf, *rstdf;   /* [L,C], [L], [L] LN_f: the outputs */
    float *tmp;                 /* [L,C] a branch's output before dropout / its gradient */
    float *dx, *da, *dc;        /* [L,C] gradients: the residual stream, LN1's and LN2's outputs */
    float *dq, *dk, *dv, *dao;  /* [L,C] */
    float *dh;                  /* [L,F] */
    float *dy;                  /* [L,C] */
    float *gain;                /* [C] 1 + a layer norm's stored gain */
    float *trow;                /* [L] attention backward scratch */
    float *logit;               /* CE: [L,N] logits, then their gradient (N = n_items); else NULL */
    uint32_t *target;           /* CE: [L] each position's next item */
} sas_ws;

static size_t ws_carve(void *wsp, float *arena, const fr_model_config *c, size_t B) {
    (void)B; /* one sequence at a time */
    sas_ws tmp, *w = wsp ? wsp : &tmp;
    fri_carver cv = {arena, 0};
    const size_t L = c->max_len, C = c->dim, F = c->ffn_dim, H = c->heads, LC = L * C;
    for (uint32_t b = 0; b < c->n_layers && b < MAX_BLOCKS; b++) {
        blk_ws *k = &w->b[b];
        k->x = fri_carve(&cv, LC);
        k->a = fri_carve(&cv, LC); k->mean1 = fri_carve(&cv, L); k->rstd1 = fri_carve(&cv, L);
        k->q = fri_carve(&cv, LC); k->k = fri_carve(&cv, LC); k->v = fri_carve(&cv, LC);
        k->att = fri_carve(&cv, H * L * L);
        k->ao = fri_carve(&cv, LC);
        k->m1 = fri_carve(&cv, LC);
        k->x1 = fri_carve(&cv, LC);
        k->c = fri_carve(&cv, LC); k->mean2 = fri_carve(&cv, L); k->rstd2 = fri_carve(&cv, L);
        k->h = fri_carve(&cv, L * F);
        k->m2 = fri_carve(&cv, LC);
    }
    w->m0 = fri_carve(&cv, LC);
    w->xb = fri_carve(&cv, LC);
    w->y = fri_carve(&cv, LC); w->meanf = fri_carve(&cv, L); w->rstdf = fri_carve(&cv, L);
    w->tmp = fri_carve(&cv, LC);
    w->dx = fri_carve(&cv, LC); w->da = fri_carve(&cv, LC); w->dc = fri_carve(&cv, LC);
    w->dq = fri_carve(&cv, LC); w->dk = fri_carve(&cv, LC); w->dv = fri_carve(&cv, LC); w->dao = fri_carve(&cv, LC);
    w->dh = fri_carve(&cv, L * F);
    w->dy = fri_carve(&cv, LC);
    w->gain = fri_carve(&cv, C);
    w->trow = fri_carve(&cv, L);
    const bool ce = c->loss == FR_LOSS_CE;
    w->logit = ce ? fri_carve(&cv, L * (size_t)c->n_items) : NULL;
    w->target = ce ? (uint32_t *)fri_carve(&cv, L) : NULL; /* 4-byte slots of the float arena */
    return cv.at;
}

static bool ws_fits(const fr_model_config *a, const fr_model_config *b) {
    return a->dim == b->dim && a->n_layers == b->n_layers && a->heads == b->heads && a->max_len == b->max_len &&
           a->ffn_dim == b->ffn_dim &&
           (b->loss != FR_LOSS_CE || (a->loss == FR_LOSS_CE && a->n_items >= b->n_items)); /* CE's logits */
}

/* ---------------------------------------------------------------- forward/backward */

static const float *P(const fr_model *m, int role) { return fri_model_data(m, m->slot[role]); }
static const float *PB(const fr_model *m, uint32_t b, int j) { return fri_model_data(m, m->slot[BLK0] + PER_BLOCK * (int)b + j); }
static float *G(fr_grad *g, const fr_model *m, int role) { return fri_grad_of(g, m->slot[role]); }
static float *GB(fr_grad *g, const fr_model *m, uint32_t b, int j) { return fri_grad_of(g, m->slot[BLK0] + PER_BLOCK * (int)b + j); }

/* An empty history's output, the bias of the last layer norm (LN_f; post-norm: the last
 * block's LN2), and its gradient row. */
static const float *empty_y(const fr_model *m) {
    const size_t C = m->cfg.dim;
    return m->cfg.post_norm ? PB(m, m->cfg.n_layers - 1, B_LN) + 3 * C : P(m, OUTLN) + C;
}
static float *empty_gy(fr_grad *g, const fr_model *m) {
    const size_t C = m->cfg.dim;
    if (!g) return NULL;
    return m->cfg.post_norm ? GB(g, m, m->cfg.n_layers - 1, B_LN) + 3 * C : G(g, m, OUTLN) + C;
}

static void set_gain(float *gain, const float *w, size_t C) {
    for (size_t c = 0; c < C; c++) gain[c] = 1.0f + w[c];
}

/* The valid rows of a history: T = items after the left padding, p0 = L - T. */
static size_t valid_rows(const uint32_t *hist, size_t L) {
    size_t p0 = 0;
    while (p0 < L && hist[p0] == FR_NO_ITEM) p0++;
    return L - p0;
}

/* Block b's attention branch on its input in [T,C]: q, k, v (kept in the block's
 * workspace), the heads' causal attention, then W_o's output into w->tmp (before dropout). */
static void attn_forward(const fr_model *m, sas_ws *w, uint32_t b, size_t T, const float *in) {
    const size_t C = m->cfg.dim, H = m->cfg.heads;
    blk_ws *k = &w->b[b];
    const float *W = PB(m, b, B_ATTN), *bias = PB(m, b, B_BIAS);
    fri_linear_forward(k->q, in, W, bias, T, C, C);
    fri_linear_forward(k->k, in, W + C * C, bias + C, T, C, C);
    fri_linear_forward(k->v, in, W + 2 * C * C, bias + 2 * C, T, C, C);
    fri_attention_forward(k->ao, k->att, k->q, k->k, k->v, T, C, H);
    fri_linear_forward(w->tmp, k->ao, W + 3 * C * C, bias + 3 * C, T, C, C);
}

/* The blocks under post-norm, from x_0 in w->b[0].x to y in w->y; r non-NULL draws the
 * dropout masks. A block keeps its input x, x1 = x + drop(o) (LN1's input), c = LN1(x1)
 * (the feed-forward's input, LN1's statistics in mean1/rstd1) and a = c + drop(f) (LN2's
 * input; a is LN1's output under pre-norm). */
static void forward_post(const fr_model *m, sas_ws *w, size_t T, fr_rng *r) {
    const fr_model_config *c = &m->cfg;
    const size_t C = c->dim, F = c->ffn_dim, TC = T * C;
    for (uint32_t b = 0; b < c->n_layers; b++) {
        blk_ws *k = &w->b[b];
        const float *ln = PB(m, b, B_LN), *bias = PB(m, b, B_BIAS);
        attn_forward(m, w, b, T, k->x);
        if (r) fri_dropout_mask(k->m1, TC, c->dropout, r);
        for (size_t i = 0; i < TC; i++) k->x1[i] = k->x[i] + (r ? w->tmp[i] * k->m1[i] : w->tmp[i]);
        set_gain(w->gain, ln, C);
        fri_layernorm_forward(k->c, k->mean1, k->rstd1, k->x1, w->gain, ln + C, T, C);
        fri_ffn_forward(w->tmp, k->h, k->c, PB(m, b, B_FFN1), bias + 4 * C, PB(m, b, B_FFN2), bias + 4 * C + F, T, C, F);
        if (r) fri_dropout_mask(k->m2, TC, c->dropout, r);
        for (size_t i = 0; i < TC; i++) k->a[i] = k->c[i] + (r ? w->tmp[i] * k->m2[i] : w->tmp[i]);
        float *xo = b + 1 < c->n_layers ? w->b[b + 1].x : w->y;
        set_gain(w->gain, ln + 2 * C, C);
        fri_layernorm_forward(xo, k->mean2, k->rstd2, k->a, w->gain, ln + 3 * C, T, C);
    }
}

/* y [T,C] of hist's T valid rows (T >= 1); key non-NULL draws dropout masks from it. */
static void forward(const fr_model *m, sas_ws *w, const uint32_t *hist, size_t T, const uint64_t *key) {
    const fr_model_config *c = &m->cfg;
    const size_t L = c->max_len, C = c->dim, F = c->ffn_dim, p0 = L - T, TC = T * C;
    const bool drop = key && c->dropout > 0.0f;
    fr_rng r;
    if (drop) fr_rng_init(&r, *key, 0, 0, FR_PURPOSE_DROPOUT);
    const float *E = P(m, ITEM), *Pos = P(m, POS);
    float *x = c->post_norm ? w->xb : w->b[0].x; /* post-norm: E[s] + P is LN_in's input */
    for (size_t t = 0; t < T; t++) {
        const float *e = E + (size_t)hist[p0 + t] * C, *p = Pos + (p0 + t) * C;
        for (size_t k = 0; k < C; k++) x[t * C + k] = e[k] + p[k];
    }
    if (c->post_norm) {
        const float *lf = P(m, OUTLN);
        x = w->b[0].x;
        set_gain(w->gain, lf, C);
        fri_layernorm_forward(x, w->meanf, w->rstdf, w->xb, w->gain, lf + C, T, C);
    }
    if (drop) {
        fri_dropout_mask(w->m0, TC, c->dropout, &r);
        for (size_t i = 0; i < TC; i++) x[i] *= w->m0[i];
    }
    if (c->post_norm) {
        forward_post(m, w, T, drop ? &r : NULL);
        return;
    }
    for (uint32_t b = 0; b < c->n_layers; b++) {
        blk_ws *k = &w->b[b];
        const float *ln = PB(m, b, B_LN), *bias = PB(m, b, B_BIAS);
        set_gain(w->gain, ln, C);
        fri_layernorm_forward(k->a, k->mean1, k->rstd1, k->x, w->gain, ln + C, T, C);
        attn_forward(m, w, b, T, k->a);
        if (drop) fri_dropout_mask(k->m1, TC, c->dropout, &r);
        for (size_t i = 0; i < TC; i++) k->x1[i] = k->x[i] + (drop ? w->tmp[i] * k->m1[i] : w->tmp[i]);
        set_gain(w->gain, ln + 2 * C, C);
        fri_layernorm_forward(k->c, k->mean2, k->rstd2, k->x1, w->gain, ln + 3 * C, T, C);
        fri_ffn_forward(w->tmp, k->h, k->c, PB(m, b, B_FFN1), bias + 4 * C, PB(m, b, B_FFN2), bias + 4 * C + F, T, C, F);
        if (drop) fri_dropout_mask(k->m2, TC, c->dropout, &r);
        float *xo = b + 1 < c->n_layers ? w->b[b + 1].x : w->xb;
        for (size_t i = 0; i < TC; i++) xo[i] = k->x1[i] + (drop ? w->tmp[i] * k->m2[i] : w->tmp[i]);
    }
    const float *lf = P(m, OUTLN);
    set_gain(w->gain, lf, C);
    fri_layernorm_forward(w->y, w->meanf, w->rstdf, w->xb, w->gain, lf + C, T, C);
}

/* Block b's attention branch backward, from w->tmp [T,C] (the gradient of its output
 * W_o's, after dropout's mask): into W_o and the heads, then through q, k, v's projections
 * of `in` (the branch's input) into din [T,C] (added) and their weights. */
static void attn_backward(const fr_model *m, sas_ws *w, uint32_t b, size_t T, const float *in, float *din, fr_grad *g) {
    const size_t C = m->cfg.dim, H = m->cfg.heads, TC = T * C;
    const blk_ws *k = &w->b[b];
    const float *W = PB(m, b, B_ATTN);
    float *gW = GB(g, m, b, B_ATTN), *gbias = GB(g, m, b, B_BIAS);
    memset(w->dao, 0, TC * sizeof(float));
    fri_linear_backward(w->dao, gW + 3 * C * C, gbias + 3 * C, w->tmp, k->ao, W + 3 * C * C, T, C, C);
    memset(w->dq, 0, TC * sizeof(float));
    memset(w->dk, 0, TC * sizeof(float));
    memset(w->dv, 0, TC * sizeof(float));
    fri_attention_backward(w->dq, w->dk, w->dv, w->trow, w->dao, k->att, k->q, k->k, k->v, T, C, H);
    fri_linear_backward(din, gW, gbias, w->dq, in, W, T, C, C);
    fri_linear_backward(din, gW + C * C, gbias + C, w->dk, in, W + C * C, T, C, C);
    fri_linear_backward(din, gW + 2 * C * C, gbias + 2 * C, w->dv, in, W + 2 * C * C, T, C, C);
}

/* Post-norm's blocks backward, from dy [T,C] (the gradient of y) to dx [T,C], the gradient
 * of x_0 (forward_post's state in w). */
static void backward_post(const fr_model *m, sas_ws *w, size_t T, bool drop, fr_grad *g) {
    const fr_model_config *c = &m->cfg;
    const size_t C = c->dim, F = c->ffn_dim, TC = T * C;
    memcpy(w->dx, w->dy, TC * sizeof(float));
    for (uint32_t b = c->n_layers; b-- > 0;) {
        blk_ws *k = &w->b[b];
        const float *ln = PB(m, b, B_LN);
        float *gln = GB(g, m, b, B_LN), *gbias = GB(g, m, b, B_BIAS);
        /* x'' = LN2(a): dc becomes the gradient of a = c + drop(f) */
        memset(w->dc, 0, TC * sizeof(float));
        set_gain(w->gain, ln + 2 * C, C);
        fri_layernorm_backward(w->dc, gln + 2 * C, gln + 3 * C, w->dx, k->a, w->gain, k->mean2, k->rstd2, T, C);
        /* feed-forward branch: dc gains the gradient through f, so it is c's */
        for (size_t i = 0; i < TC; i++) w->tmp[i] = drop ? w->dc[i] * k->m2[i] : w->dc[i];
        fri_ffn_backward(w->dc, GB(g, m, b, B_FFN1), gbias + 4 * C, GB(g, m, b, B_FFN2), gbias + 4 * C + F, w->dh,
                         w->tmp, k->c, k->h, PB(m, b, B_FFN1), PB(m, b, B_FFN2), T, C, F);
        /* c = LN1(x1): dx becomes the gradient of x1 = x + drop(o) */
        memset(w->dx, 0, TC * sizeof(float));
        set_gain(w->gain, ln, C);
        fri_layernorm_backward(w->dx, gln, gln + C, w->dc, k->x1, w->gain, k->mean1, k->rstd1, T, C);
        /* attention branch: q, k, v read x, so dx gains their gradients and becomes x's */
        for (size_t i = 0; i < TC; i++) w->tmp[i] = drop ? w->dx[i] * k->m1[i] : w->dx[i];
        attn_backward(m, w, b, T, k->x, w->dx, g);
    }
}

static void add_input_grad(const fr_model *m, sas_ws *w, const uint32_t *hist, size_t T, bool drop, fr_grad *g);

/* Adds the gradient of the loss given dy [T,C] into g (the forward's state in w). */
static void backward(const fr_model *m, sas_ws *w, const uint32_t *hist, size_t T, bool drop, fr_grad *g) {
    const fr_model_config *c = &m->cfg;
    const size_t C = c->dim, F = c->ffn_dim, TC = T * C;
    const float *lf = P(m, OUTLN);
    float *glf = G(g, m, OUTLN);
    if (c->post_norm) {
        backward_post(m, w, T, drop, g);
        /* x_0 = drop(LN_in(E[s] + P)): dx becomes the gradient of E[s] + P */
        for (size_t i = 0; i < TC; i++) w->tmp[i] = drop ? w->dx[i] * w->m0[i] : w->dx[i];
        memset(w->dx, 0, TC * sizeof(float));
        set_gain(w->gain, lf, C);
        fri_layernorm_backward(w->dx, glf, glf + C, w->tmp, w->xb, w->gain, w->meanf, w->rstdf, T, C);
        add_input_grad(m, w, hist, T, false, g);
        return;
    }
    memset(w->dx, 0, TC * sizeof(float));
    set_gain(w->gain, lf, C);
    fri_layernorm_backward(w->dx, glf, glf + C, w->dy, w->xb, w->gain, w->meanf, w->rstdf, T, C);
    for (uint32_t b = c->n_layers; b-- > 0;) {
        blk_ws *k = &w->b[b];
        const float *ln = PB(m, b, B_LN);
        float *gln = GB(g, m, b, B_LN), *gbias = GB(g, m, b, B_BIAS);
        /* feed-forward branch: dx is the gradient of x'' = x' + drop(f) */
        for (size_t i = 0; i < TC; i++) w->tmp[i] = drop ? w->dx[i] * k->m2[i] : w->dx[i];
        memset(w->dc, 0, TC * sizeof(float));
        fri_ffn_backward(w->dc, GB(g, m, b, B_FFN1), gbias + 4 * C, GB(g, m, b, B_FFN2), gbias + 4 * C + F, w->dh,
                         w->tmp, k->c, k->h, PB(m, b, B_FFN1), PB(m, b, B_FFN2), T, C, F);
        set_gain(w->gain, ln + 2 * C, C);
        fri_layernorm_backward(w->dx, gln + 2 * C, gln + 3 * C, w->dc, k->x1, w->gain, k->mean2, k->rstd2, T, C);
        /* attention branch: dx is now the gradient of x' = x + drop(o) */
        for (size_t i = 0; i < TC; i++) w->tmp[i] = drop ? w->dx[i] * k->m1[i] : w->dx[i];
        memset(w->da, 0, TC * sizeof(float));
        attn_backward(m, w, b, T, k->a, w->da, g);
        set_gain(w->gain, ln, C);
        fri_layernorm_backward(w->dx, gln, gln + C, w->da, k->x, w->gain, k->mean1, k->rstd1, T, C);
    }
    add_input_grad(m, w, hist, T, drop, g);
}

/* The gradient dx [T,C] of E[s] + P (times x_0's dropout mask when drop) into the item
 * and position rows the history read. */
static void add_input_grad(const fr_model *m, sas_ws *w, const uint32_t *hist, size_t T, bool drop, fr_grad *g) {
    const size_t L = m->cfg.max_len, C = m->cfg.dim, p0 = L - T;
    float *gE = G(g, m, ITEM), *gP = G(g, m, POS);
    fr_rowset *rows = &g->rows[m->slot[ITEM]];
    for (size_t t = 0; t < T; t++) {
        const uint32_t it = hist[p0 + t];
        float *ge = gE + (size_t)it * C, *gp = gP + (p0 + t) * C;
        const float *d = w->dx + t * C, *m0 = w->m0 + t * C;
        for (size_t k = 0; k < C; k++) {
            const float v = drop ? d[k] * m0[k] : d[k];
            ge[k] += v;
            gp[k] += v;
        }
        fr_rowset_add(rows, it);
    }
}

/* One BCE term on logit s = y . E[item] with label: its loss (times scale, in double);
 * with g, d(scale * loss)/ds spread to dy and to the item's gradient row. */
static double term(const fr_model *m, const float *y, float *dy, uint32_t item, float label, double scale, fr_grad *g) {
    const size_t C = m->cfg.dim;
    const float *e = P(m, ITEM) + (size_t)item * C;
    const double s = (double)fri_dot(y, e, C);
    const double loss = label > 0.5f ? fri_softplus(-s) : fri_softplus(s);
    if (g) {
        const float d = (float)(scale * (fri_sigmoid(s) - (double)label));
        float *ge = G(g, m, ITEM) + (size_t)item * C;
        for (size_t k = 0; k < C; k++) {
            dy[k] += d * e[k];
            ge[k] += d * y[k];
        }
        fr_rowset_add(&g->rows[m->slot[ITEM]], item);
    }
    return scale * loss;
}

/* CE over the T rows of y [T,C] with targets w->target: (scale times) the sum of each row's
 * softmax cross-entropy over the first N item rows; with g, its gradient added to dy [T,C]
 * and to every one of those rows (all marked touched). */
static double ce_rows(const fr_model *m, sas_ws *w, const float *y, float *dy, size_t T, double scale, fr_grad *g) {
    const size_t C = m->cfg.dim, N = m->row_item ? m->n_row_item : m->cfg.n_items;
    const float *E = P(m, ITEM);
    fri_linear_forward(w->logit, y, E, NULL, T, C, N);                        /* [T,N] = y E^T */
    const double loss = fri_softmax_xent(g ? w->logit : NULL, w->logit, w->target, T, N, scale);
    if (g) {
        fri_linear_backward(dy, G(g, m, ITEM), NULL, w->logit, y, E, T, C, N); /* dy += dS E, dE += dS^T y */
        fr_rowset *rows = &g->rows[m->slot[ITEM]];
        if (rows->count < N)
            for (uint32_t r = 0; r < N; r++) fr_rowset_add(rows, r);
    }
    return loss;
}

/* ---------------------------------------------------------------- entry points */

static fr_err loss_grad(const fr_model *m, void *wsp, const fr_batch *b, fr_grad *g, double *loss) {
    sas_ws *w = wsp;
    const fr_model_config *c = &m->cfg;
    const size_t L = c->max_len, C = c->dim;
    const bool ce = c->loss == FR_LOSS_CE;
    double total = 0.0;
    for (size_t i = 0; i < b->n; i++) {
        const uint32_t *hist = b->hist ? b->hist + i * L : NULL;
        const size_t T = hist ? valid_rows(hist, L) : 0;
        const double wt = b->weight ? (double)b->weight[i] : 1.0;
        const bool drop = b->key && c->dropout > 0.0f;
        double li = 0.0;
        if (ce) { /* every position's next item against all items; an empty history: items[i] after LN_f's bias */
            const double s = wt / ((double)b->n * (double)L);
            if (T == 0) {
                if (b->hist && b->hist_neg && b->hist_neg[i * L + L - 1] == FR_NO_LOSS) continue;
                w->target[0] = b->items[i];
                total += ce_rows(m, w, empty_y(m), empty_gy(g, m), 1, s, g);
                continue;
            }
            const size_t p0 = L - T;
            size_t q0 = 0; /* the leading context-only rows: no loss, so no logits */
            if (b->hist_neg)
                while (q0 < T && b->hist_neg[i * L + p0 + q0] == FR_NO_LOSS) q0++;
            if (q0 == T) continue;
            forward(m, w, hist, T, b->key ? b->key + i : NULL);
            for (size_t t = q0; t < T; t++) w->target[t - q0] = p0 + t + 1 < L ? hist[p0 + t + 1] : b->items[i];
            if (g) memset(w->dy, 0, T * C * sizeof(float));
            total += ce_rows(m, w, w->y + q0 * C, w->dy + q0 * C, T - q0, s, g);
            if (g) backward(m, w, hist, T, drop, g);
            continue;
        }
        if (T == 0) { /* no history: y = the last layer norm's bias, the final item only */
            const float *yb = empty_y(m);
            float *dyb = empty_gy(g, m);
            if (b->hist && b->hist_neg) {
                if (b->hist_neg[i * L + L - 1] == FR_NO_LOSS) continue;
                const double s = wt / ((double)b->n * (double)L);
                li += term(m, yb, dyb, b->items[i], 1.0f, s, g);
                if (b->hist_neg[i * L + L - 1] != FR_NO_ITEM)
                    li += term(m, yb, dyb, b->hist_neg[i * L + L - 1], 0.0f, s, g);
            } else {
                li += term(m, yb, dyb, b->items[i], b->label[i], wt / (double)b->n, g);
            }
            total += li;
            continue;
        }
        const size_t p0 = L - T;
        if (b->hist_neg && b->hist_neg[i * L + L - 1] == FR_NO_LOSS) continue; /* context only, all of it */
        forward(m, w, hist, T, b->key ? b->key + i : NULL);
        if (g) memset(w->dy, 0, T * C * sizeof(float));
        if (b->hist_neg) {
            const double s = wt / ((double)b->n * (double)L);
            for (size_t t = 0; t < T; t++) {
                const size_t p = p0 + t;
                const uint32_t pos = p + 1 < L ? hist[p + 1] : b->items[i], neg = b->hist_neg[i * L + p];
                if (neg == FR_NO_LOSS) continue; /* context only */
                li += term(m, w->y + t * C, w->dy + t * C, pos, 1.0f, s, g);
                if (neg != FR_NO_ITEM) li += term(m, w->y + t * C, w->dy + t * C, neg, 0.0f, s, g);
            }
        } else {
            li += term(m, w->y + (T - 1) * C, w->dy + (T - 1) * C, b->items[i], b->label[i], wt / (double)b->n, g);
        }
        total += li;
        if (g) backward(m, w, hist, T, drop, g);
    }
    *loss = total;
    return FR_OK;
}

static void score_history(const fr_model *m, void *wsp, const uint32_t *hist, const uint32_t *items, size_t n,
                          float *out) {
    sas_ws *w = wsp;
    const size_t L = m->cfg.max_len, C = m->cfg.dim, T = valid_rows(hist, L);
    const float *y = empty_y(m);
    if (T) {
        forward(m, w, hist, T, NULL);
        y = w->y + (T - 1) * C;
    }
    const float *E = P(m, ITEM);
    for (size_t i = 0; i < n; i++) out[i] = fri_dot(y, E + (size_t)items[i] * C, C);
}

/* Without a history (fr_model_score): every user is an empty history. */
static void score(const fr_model *m, void *wsp, const uint32_t *users, const uint32_t *items, size_t n, float *out) {
    (void)users;
    (void)wsp;
    const size_t C = m->cfg.dim;
    const float *y = empty_y(m), *E = P(m, ITEM);
    for (size_t i = 0; i < n; i++) out[i] = fri_dot(y, E + (size_t)items[i] * C, C);
}

static const fri_model_kind_def kinds[] = {
    {"sasrec", false, false},
};

const fri_model_family fri_model_family_sasrec = {
    .name = "self-attention sequential",
    .kinds = kinds,
    .n_kinds = 1,
    .init_std = 0.05f,
    .config_default = config_default,
    .config_check = config_check,
    .params_put = params_put,
    .params_get = params_get,
    .layout = layout,
    .ws_size = sizeof(sas_ws),
    .ws_carve = ws_carve,
    .ws_fits = ws_fits,
    .loss_grad = loss_grad,
    .score = score,
    .history_len = history_len,
    .score_history = score_history,
    .reads_all_items = reads_all_items,
};
