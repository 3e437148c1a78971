/* The matrix-factorisation family (family.h): `mf`, biased MF for explicit ratings
 * (mu + b_u + b_i + p_u.q_i, MSE, the anchor's L2 on the rows and biases an example
 * uses), and `bpr`, implicit MF (p_u.q_i with the BPR loss on (u, pos, neg) or BCE).
 * Layout: item_factor [n_items x dim] (+ item_bias [n_items x 1] for mf) shared, then
 * user_factor [n_users x dim] (+ user_bias for mf) private.
 * Parameter block in the config section: u32 dim; mf adds f32 bias_l2, f32 mu. */
#include <math.h>
#include <string.h>

#include "core/core.h"
#include "model/family.h"
#include "model/examples.h"
#include "model/layers.h"

#define FRI_MF_FUSED_MAX_DIM 512 /* larger factors take the generic loop */

/* The two-pass kernels keep their eight lanes in two SSE registers where the target has
 * them (every x86-64): the same IEEE operations on the same lanes as the scalar code
 * beside them, so the same bits; the compiler kept the scalar lanes in memory. */
#if defined(__SSE2__)
#include <emmintrin.h>
#define FRI_MF_SSE 1
#else
#define FRI_MF_SSE 0
#endif

/* roles in m->slot */
enum { ITEM_F, ITEM_B, USER_F, USER_B };

static void config_default(fr_model_config *c) {
    c->dim = 32;
    c->loss = c->kind == FR_MODEL_MF ? FR_LOSS_MSE : FR_LOSS_BPR;
    c->l2 = c->kind == FR_MODEL_MF ? 0.1f : 0.0f; /* the MF anchor's --reg default */
}

static fr_err config_check(const fr_model_config *c) {
    const char *k = fr_model_kind_name(c->kind);
    if (c->dim == 0 || c->dim > 4096) return fri_fail(FR_ERR_INVALID, "%s: dim %u: expected 1..4096", k, c->dim);
    if (c->kind == FR_MODEL_MF && c->loss != FR_LOSS_MSE)
        return fri_fail(FR_ERR_INVALID, "mf: loss %s: mf is trained with mse", fri_loss_name(c->loss));
    if (c->kind == FR_MODEL_BPR && c->loss != FR_LOSS_BPR && c->loss != FR_LOSS_BCE)
        return fri_fail(FR_ERR_INVALID, "bpr: loss %s: expected bpr or bce", fri_loss_name(c->loss));
    return FR_OK;
}

static void params_put(fri_buf *b, const fr_model_config *c) {
    fri_buf_u32(b, c->dim);
    if (c->kind == FR_MODEL_MF) {
        fri_buf_f32(b, c->bias_l2);
        fri_buf_f32(b, c->mu);
    }
}

static fr_err params_get(fri_rd *r, fr_model_config *c) {
    fr_err e = fri_rd_u32(r, &c->dim, "dim");
    if (!e && c->kind == FR_MODEL_MF && !(e = fri_rd_f32(r, &c->bias_l2, "bias_l2"))) e = fri_rd_f32(r, &c->mu, "mu");
    return e;
}

static fr_err layout(fr_model *m, const fr_model_config *c) {
    bool mf = c->kind == FR_MODEL_MF;
    fr_err e = fri_model_add_tensor(m, "item_factor", c->n_items, c->dim, FR_TENSOR_ITEM_TABLE, FRI_INIT_NORMAL,
                                    &m->slot[ITEM_F]);
    if (!e && mf)
        e = fri_model_add_tensor(m, "item_bias", c->n_items, 1, FR_TENSOR_ITEM_TABLE, FRI_INIT_ZERO, &m->slot[ITEM_B]);
    if (!e)
        e = fri_model_add_tensor(m, "user_factor", c->n_users, c->dim, FR_TENSOR_USER_TABLE, FRI_INIT_NORMAL,
                                 &m->slot[USER_F]);
    if (!e && mf)
        e = fri_model_add_tensor(m, "user_bias", c->n_users, 1, FR_TENSOR_USER_TABLE, FRI_INIT_ZERO, &m->slot[USER_B]);
    return e;
}

/* ---------------------------------------------------------------- workspace */

typedef struct mf_ws {
    float *p, *q, *qn;      /* [B,dim] gathered user rows, item rows, BPR negative rows */
    float *dp, *dq, *dqn;   /* [B,dim] their gradients */
    float *bu, *bi;         /* [B] mf biases */
    float *dbu, *dbi;       /* [B] their gradients */
    float *s, *sn, *ds, *dsn; /* [B] scores (pos, neg) and their gradients */
} mf_ws;

static size_t ws_carve(void *wsp, float *arena, const fr_model_config *c, size_t B) {
    mf_ws tmp, *w = wsp ? wsp : &tmp;
    fri_carver cv = {arena, 0};
    size_t d = c->dim;
    w->p = fri_carve(&cv, B * d); w->q = fri_carve(&cv, B * d); w->qn = fri_carve(&cv, B * d);
    w->dp = fri_carve(&cv, B * d); w->dq = fri_carve(&cv, B * d); w->dqn = fri_carve(&cv, B * d);
    w->bu = fri_carve(&cv, B); w->bi = fri_carve(&cv, B); w->dbu = fri_carve(&cv, B); w->dbi = fri_carve(&cv, B);
    w->s = fri_carve(&cv, B); w->sn = fri_carve(&cv, B); w->ds = fri_carve(&cv, B); w->dsn = fri_carve(&cv, B);
    return cv.at;
}

static bool ws_fits(const fr_model_config *a, const fr_model_config *b) { return a->dim == b->dim; }

/* ---------------------------------------------------------------- math */

/* scores of (users, items) into ws->s */
static void mf_scores(const fr_model *m, mf_ws *ws, const uint32_t *users, const uint32_t *items, size_t B) {
    size_t d = m->cfg.dim;
    fri_embedding_forward(ws->p, fri_model_data(m, m->slot[USER_F]), users, B, d); /* [B,d] */
    fri_embedding_forward(ws->q, fri_model_data(m, m->slot[ITEM_F]), items, B, d); /* [B,d] */
    fri_dot_forward(ws->s, ws->p, ws->q, B, d);                                  /* [B] */
    if (m->cfg.kind == FR_MODEL_MF) {
        fri_embedding_forward(ws->bu, fri_model_data(m, m->slot[USER_B]), users, B, 1);
        fri_embedding_forward(ws->bi, fri_model_data(m, m->slot[ITEM_B]), items, B, 1);
        for (size_t i = 0; i < B; i++) ws->s[i] += m->cfg.mu + ws->bu[i] + ws->bi[i];
    }
}

/* The loss, and with g its gradient. */
static double loss_impl(const fr_model *m, mf_ws *ws, const fr_batch *b, fr_grad *g) {
    const fr_model_config *c = &m->cfg;
    size_t B = b->n, d = c->dim;
    double l2s = (double)c->l2 / (double)B, L;
    const int item_f = m->slot[ITEM_F], user_f = m->slot[USER_F];
    mf_scores(m, ws, b->users, b->items, B);
    int bpr = c->loss == FR_LOSS_BPR;
    if (bpr) {
        fri_embedding_forward(ws->qn, fri_model_data(m, item_f), b->neg, B, d);
        fri_dot_forward(ws->sn, ws->p, ws->qn, B, d);
        L = fri_bpr_forward_backward(g ? ws->ds : NULL, g ? ws->dsn : NULL, ws->s, ws->sn, B);
    } else if (c->loss == FR_LOSS_MSE) {
        L = fri_mse_forward_backward(g ? ws->ds : NULL, ws->s, b->label, B);
    } else {
        L = fri_bce_forward_backward(g ? ws->ds : NULL, ws->s, b->label, B);
    }
    float *dp = g ? ws->dp : NULL, *dq = g ? ws->dq : NULL;
    if (g) {
        memset(ws->dp, 0, B * d * sizeof(float));
        memset(ws->dq, 0, B * d * sizeof(float));
    }
    if (l2s > 0) {
        L += fri_l2_forward_backward(dp, ws->p, B, d, l2s);
        L += fri_l2_forward_backward(dq, ws->q, B, d, l2s);
        if (bpr) {
            if (g) memset(ws->dqn, 0, B * d * sizeof(float));
            L += fri_l2_forward_backward(g ? ws->dqn : NULL, ws->qn, B, d, l2s);
        }
    }
    if (c->kind == FR_MODEL_MF) {
        if (g) { memset(ws->dbu, 0, B * sizeof(float)); memset(ws->dbi, 0, B * sizeof(float)); }
        /* bias_l2 = 0 means "as l2", the anchor's single lambda */
        double bl2s = c->bias_l2 > 0.0f ? (double)c->bias_l2 / (double)B : l2s;
        if (bl2s > 0) {
            L += fri_l2_forward_backward(g ? ws->dbu : NULL, ws->bu, B, 1, bl2s);
            L += fri_l2_forward_backward(g ? ws->dbi : NULL, ws->bi, B, 1, bl2s);
        }
    }
    if (g) {
        fri_dot_backward(ws->dp, ws->dq, ws->ds, ws->p, ws->q, B, d);
        if (bpr) {
            if (!(l2s > 0)) memset(ws->dqn, 0, B * d * sizeof(float));
            fri_dot_backward(ws->dp, ws->dqn, ws->dsn, ws->p, ws->qn, B, d);
            fri_embedding_backward(fri_grad_of(g, item_f), &g->rows[item_f], ws->dqn, b->neg, B, d);
        }
        fri_embedding_backward(fri_grad_of(g, user_f), &g->rows[user_f], ws->dp, b->users, B, d);
        fri_embedding_backward(fri_grad_of(g, item_f), &g->rows[item_f], ws->dq, b->items, B, d);
        if (c->kind == FR_MODEL_MF) {
            const int user_b = m->slot[USER_B], item_b = m->slot[ITEM_B];
            for (size_t i = 0; i < B; i++) { ws->dbu[i] += ws->ds[i]; ws->dbi[i] += ws->ds[i]; }
            fri_embedding_backward(fri_grad_of(g, user_b), &g->rows[user_b], ws->dbu, b->users, B, 1);
            fri_embedding_backward(fri_grad_of(g, item_b), &g->rows[item_b], ws->dbi, b->items, B, 1);
        }
    }
    return L;
}

static fr_err loss_grad(const fr_model *m, void *ws, const fr_batch *b, fr_grad *g, double *loss) {
    *loss = loss_impl(m, ws, b, g); /* g NULL: the loss alone */
    return FR_OK;
}

static void score(const fr_model *m, void *wsp, const uint32_t *users, const uint32_t *items, size_t n, float *out) {
    mf_ws *ws = wsp;
    mf_scores(m, ws, users, items, n);
    memcpy(out, ws->s, n * sizeof(float));
}

/* ---------------------------------------------------------------- fused SGD */

/* The operations of loss_impl and fri_examples_fit for one example (B = 1), in their
 * order: the dot product as fri_dot, the loss and its derivative in
 * double, the L2 gradient k * x added to a zero gradient, the dot's backward, then
 * p -= lr * g on every row the example touched (rows are distinct: a BPR negative is
 * never the user's positive, and user and item rows live in different tables). */
/* The pairwise sum of eight lanes, as fri_dot and one chunk of fri_sumsq add them. */
static inline float lanes8(const float *s) { return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7])); }

/* sgd_pass for the common shape (dim a multiple of 8, at most 64, L2 > 0) with every
 * per-example loop fused into two passes over the rows: one reads them (the dot products
 * and the squared norms, each in its own eight lanes: the bits of fri_dot and fri_sumsq),
 * one writes them (each element's gradient, (0 + k x) + ds y, as loss_impl builds it, and
 * its step). Elementwise, so the same bits as the separate loops. */
static double sgd_mse_lanes(const fr_model *m, float *P, float *Q, float *BU, float *BI, const struct fri_examples *ex,
                            float lr, double sum) {
    const fr_model_config *c = &m->cfg;
    const size_t d = c->dim;
    const double l2s = (double)c->l2 / 1.0, bl2s = c->bias_l2 > 0.0f ? (double)c->bias_l2 / 1.0 : l2s;
    const float k = (float)(2.0 * l2s), kb = (float)(2.0 * bl2s), mu = c->mu;
    for (size_t x = 0; x < ex->n; x++) {
        const uint32_t u = ex->user[x], i = ex->item[x];
        float *restrict p = P + (size_t)u * d, *restrict q = Q + (size_t)i * d;
        float spq[8], spp[8], sqq[8];
#if FRI_MF_SSE
        {
            __m128 pq0 = _mm_setzero_ps(), pq1 = pq0, pp0 = pq0, pp1 = pq0, qq0 = pq0, qq1 = pq0;
            for (size_t a = 0; a < d; a += 8) {
                const __m128 p0 = _mm_loadu_ps(p + a), p1 = _mm_loadu_ps(p + a + 4);
                const __m128 q0 = _mm_loadu_ps(q + a), q1 = _mm_loadu_ps(q + a + 4);
                pq0 = _mm_add_ps(pq0, _mm_mul_ps(p0, q0)); pq1 = _mm_add_ps(pq1, _mm_mul_ps(p1, q1));
                pp0 = _mm_add_ps(pp0, _mm_mul_ps(p0, p0)); pp1 = _mm_add_ps(pp1, _mm_mul_ps(p1, p1));
                qq0 = _mm_add_ps(qq0, _mm_mul_ps(q0, q0)); qq1 = _mm_add_ps(qq1, _mm_mul_ps(q1, q1));
            }
            _mm_storeu_ps(spq, pq0); _mm_storeu_ps(spq + 4, pq1);
            _mm_storeu_ps(spp, pp0); _mm_storeu_ps(spp + 4, pp1);
            _mm_storeu_ps(sqq, qq0); _mm_storeu_ps(sqq + 4, qq1);
        }
#else
        for (size_t j = 0; j < 8; j++) spq[j] = spp[j] = sqq[j] = 0.0f;
        for (size_t a = 0; a < d; a += 8)
            for (size_t j = 0; j < 8; j++) {
                const float pj = p[a + j], qj = q[a + j];
                spq[j] += pj * qj;
                spp[j] += pj * pj;
                sqq[j] += qj * qj;
            }
#endif
        float s = lanes8(spq);
        const float bu = BU[u], bi = BI[i];
        s += mu + bu + bi;
        const double e = (double)s - (double)ex->label[x];
        double L = e * e / 1.0;
        const float ds = (float)(2.0 * e / 1.0);
        L += l2s * (0.0 + (double)lanes8(spp));
        L += l2s * (0.0 + (double)lanes8(sqq));
        float dbu = 0.0f, dbi = 0.0f;
        if (bl2s > 0) {
            dbu += kb * bu;
            dbi += kb * bi;
            L += bl2s * fri_sumsq(&bu, 1);
            L += bl2s * fri_sumsq(&bi, 1);
        }
        dbu += ds;
        dbi += ds;
#if FRI_MF_SSE
        {
            const __m128 z = _mm_setzero_ps(), vk = _mm_set1_ps(k), vds = _mm_set1_ps(ds), vlr = _mm_set1_ps(lr);
            for (size_t j = 0; j < d; j += 4) {
                const __m128 pj = _mm_loadu_ps(p + j), qj = _mm_loadu_ps(q + j);
                const __m128 gp = _mm_add_ps(_mm_add_ps(z, _mm_mul_ps(vk, pj)), _mm_mul_ps(vds, qj));
                const __m128 gq = _mm_add_ps(_mm_add_ps(z, _mm_mul_ps(vk, qj)), _mm_mul_ps(vds, pj));
                _mm_storeu_ps(p + j, _mm_sub_ps(pj, _mm_mul_ps(vlr, gp)));
                _mm_storeu_ps(q + j, _mm_sub_ps(qj, _mm_mul_ps(vlr, gq)));
            }
        }
#else
        for (size_t j = 0; j < d; j++) {
            const float pj = p[j], qj = q[j];
            const float gp = (0.0f + k * pj) + ds * qj, gq = (0.0f + k * qj) + ds * pj;
            p[j] = pj - lr * gp;
            q[j] = qj - lr * gq;
        }
#endif
        BU[u] = bu - lr * dbu;
        BI[i] = bi - lr * dbi;
        sum += L * 1.0;
    }
    return sum;
}

static double sgd_bpr_lanes(const fr_model *m, float *P, float *Q, const struct fri_examples *ex, float lr,
                            double sum) {
    const fr_model_config *c = &m->cfg;
    const size_t d = c->dim;
    const double l2s = (double)c->l2 / 1.0;
    const float k = (float)(2.0 * l2s);
    for (size_t x = 0; x < ex->n; x++) {
        float *restrict p = P + (size_t)ex->user[x] * d, *restrict q = Q + (size_t)ex->item[x] * d,
                        *restrict n = Q + (size_t)ex->neg[x] * d;
        float spq[8], spn[8], spp[8], sqq[8], snn[8];
#if FRI_MF_SSE
        {
            __m128 pq0 = _mm_setzero_ps(), pq1 = pq0, pn0 = pq0, pn1 = pq0, pp0 = pq0, pp1 = pq0, qq0 = pq0, qq1 = pq0,
                   nn0 = pq0, nn1 = pq0;
            for (size_t a = 0; a < d; a += 8) {
                const __m128 p0 = _mm_loadu_ps(p + a), p1 = _mm_loadu_ps(p + a + 4);
                const __m128 q0 = _mm_loadu_ps(q + a), q1 = _mm_loadu_ps(q + a + 4);
                const __m128 n0 = _mm_loadu_ps(n + a), n1 = _mm_loadu_ps(n + a + 4);
                pq0 = _mm_add_ps(pq0, _mm_mul_ps(p0, q0)); pq1 = _mm_add_ps(pq1, _mm_mul_ps(p1, q1));
                pn0 = _mm_add_ps(pn0, _mm_mul_ps(p0, n0)); pn1 = _mm_add_ps(pn1, _mm_mul_ps(p1, n1));
                pp0 = _mm_add_ps(pp0, _mm_mul_ps(p0, p0)); pp1 = _mm_add_ps(pp1, _mm_mul_ps(p1, p1));
                qq0 = _mm_add_ps(qq0, _mm_mul_ps(q0, q0)); qq1 = _mm_add_ps(qq1, _mm_mul_ps(q1, q1));
                nn0 = _mm_add_ps(nn0, _mm_mul_ps(n0, n0)); nn1 = _mm_add_ps(nn1, _mm_mul_ps(n1, n1));
            }
            _mm_storeu_ps(spq, pq0); _mm_storeu_ps(spq + 4, pq1);
            _mm_storeu_ps(spn, pn0); _mm_storeu_ps(spn + 4, pn1);
            _mm_storeu_ps(spp, pp0); _mm_storeu_ps(spp + 4, pp1);
            _mm_storeu_ps(sqq, qq0); _mm_storeu_ps(sqq + 4, qq1);
            _mm_storeu_ps(snn, nn0); _mm_storeu_ps(snn + 4, nn1);
        }
#else
        for (size_t j = 0; j < 8; j++) spq[j] = spn[j] = spp[j] = sqq[j] = snn[j] = 0.0f;
        for (size_t a = 0; a < d; a += 8)
            for (size_t j = 0; j < 8; j++) {
                const float pj = p[a + j], qj = q[a + j], nj = n[a + j];
                spq[j] += pj * qj;
                spn[j] += pj * nj;
                spp[j] += pj * pj;
                sqq[j] += qj * qj;
                snn[j] += nj * nj;
            }
#endif
        const double dd = (double)lanes8(spq) - (double)lanes8(spn);
        const double ex1 = exp(-fabs(dd));
        double L = (-dd > 0.0 ? -dd : 0.0) + log1p(ex1);
        const double g = -(-dd >= 0.0 ? 1.0 / (1.0 + ex1) : ex1 / (1.0 + ex1)) / 1.0;
        const float ds = (float)g, dsn = (float)-g;
        L += l2s * (0.0 + (double)lanes8(spp));
        L += l2s * (0.0 + (double)lanes8(sqq));
        L += l2s * (0.0 + (double)lanes8(snn));
#if FRI_MF_SSE
        {
            const __m128 z = _mm_setzero_ps(), vk = _mm_set1_ps(k), vds = _mm_set1_ps(ds), vdn = _mm_set1_ps(dsn),
                         vlr = _mm_set1_ps(lr);
            for (size_t j = 0; j < d; j += 4) {
                const __m128 pj = _mm_loadu_ps(p + j), qj = _mm_loadu_ps(q + j), nj = _mm_loadu_ps(n + j);
                const __m128 gp = _mm_add_ps(_mm_add_ps(_mm_add_ps(z, _mm_mul_ps(vk, pj)), _mm_mul_ps(vds, qj)),
                                             _mm_mul_ps(vdn, nj));
                const __m128 gq = _mm_add_ps(_mm_add_ps(z, _mm_mul_ps(vk, qj)), _mm_mul_ps(vds, pj));
                const __m128 gn = _mm_add_ps(_mm_add_ps(z, _mm_mul_ps(vk, nj)), _mm_mul_ps(vdn, pj));
                _mm_storeu_ps(p + j, _mm_sub_ps(pj, _mm_mul_ps(vlr, gp)));
                _mm_storeu_ps(q + j, _mm_sub_ps(qj, _mm_mul_ps(vlr, gq)));
                _mm_storeu_ps(n + j, _mm_sub_ps(nj, _mm_mul_ps(vlr, gn)));
            }
        }
#else
        for (size_t j = 0; j < d; j++) {
            const float pj = p[j], qj = q[j], nj = n[j];
            const float gp = ((0.0f + k * pj) + ds * qj) + dsn * nj;
            const float gq = (0.0f + k * qj) + ds * pj, gn = (0.0f + k * nj) + dsn * pj;
            p[j] = pj - lr * gp;
            q[j] = qj - lr * gq;
            n[j] = nj - lr * gn;
        }
#endif
        sum += L * 1.0;
    }
    return sum;
}

static fr_err sgd_pass(fr_model *m, const struct fri_examples *ex, float lr, double *loss_sum) {
    const fr_model_config *c = &m->cfg;
    if (c->loss != FR_LOSS_MSE && c->loss != FR_LOSS_BPR) return FR_ERR_UNSUPPORTED; /* no message: not an error */
    const size_t d = c->dim;
    float *P = m->params + m->t[m->slot[USER_F]].offset, *Q = m->params + m->t[m->slot[ITEM_F]].offset;
    const double l2s = (double)c->l2 / 1.0;
    const bool l2 = l2s > 0;
    const float k = (float)(2.0 * l2s);
    float dp[FRI_MF_FUSED_MAX_DIM], dq[FRI_MF_FUSED_MAX_DIM], dn[FRI_MF_FUSED_MAX_DIM];
    if (d > FRI_MF_FUSED_MAX_DIM) return FR_ERR_UNSUPPORTED;
    double sum = *loss_sum;
    if (l2 && d % 8 == 0 && d <= 64) { /* the common shape, in two passes over the rows */
        if (c->loss == FR_LOSS_MSE)
            *loss_sum = sgd_mse_lanes(m, P, Q, m->params + m->t[m->slot[USER_B]].offset,
                                      m->params + m->t[m->slot[ITEM_B]].offset, ex, lr, sum);
        else
            *loss_sum = sgd_bpr_lanes(m, P, Q, ex, lr, sum);
        return FR_OK;
    }
    if (c->loss == FR_LOSS_MSE) {
        float *BU = m->params + m->t[m->slot[USER_B]].offset, *BI = m->params + m->t[m->slot[ITEM_B]].offset;
        const double bl2s = c->bias_l2 > 0.0f ? (double)c->bias_l2 / 1.0 : l2s;
        const float kb = (float)(2.0 * bl2s);
        for (size_t x = 0; x < ex->n; x++) {
            const uint32_t u = ex->user[x], i = ex->item[x];
            float *restrict p = P + (size_t)u * d, *restrict q = Q + (size_t)i * d;
            float s = fri_dot(p, q, d);
            const float bu = BU[u], bi = BI[i];
            s += c->mu + bu + bi;
            const double e = (double)s - (double)ex->label[x];
            double L = e * e / 1.0;
            const float ds = (float)(2.0 * e / 1.0);
            for (size_t j = 0; j < d; j++) { dp[j] = 0.0f; dq[j] = 0.0f; }
            if (l2) {
                for (size_t j = 0; j < d; j++) { dp[j] += k * p[j]; dq[j] += k * q[j]; }
                L += l2s * fri_sumsq(p, d);
                L += l2s * fri_sumsq(q, d);
            }
            float dbu = 0.0f, dbi = 0.0f;
            if (bl2s > 0) {
                dbu += kb * bu;
                dbi += kb * bi;
                L += bl2s * fri_sumsq(&bu, 1);
                L += bl2s * fri_sumsq(&bi, 1);
            }
            for (size_t j = 0; j < d; j++) { dp[j] += ds * q[j]; dq[j] += ds * p[j]; }
            dbu += ds;
            dbi += ds;
            for (size_t j = 0; j < d; j++) { p[j] -= lr * dp[j]; q[j] -= lr * dq[j]; }
            BU[u] = bu - lr * dbu;
            BI[i] = bi - lr * dbi;
            sum += L * 1.0;
        }
    } else {
        for (size_t x = 0; x < ex->n; x++) {
            float *restrict p = P + (size_t)ex->user[x] * d, *restrict q = Q + (size_t)ex->item[x] * d,
                            *restrict n = Q + (size_t)ex->neg[x] * d;
            const float s = fri_dot(p, q, d), sn = fri_dot(p, n, d);
            const double dd = (double)s - (double)sn;
            /* fri_softplus(-dd) and fri_sigmoid(-dd), sharing their exp(-|dd|) */
            const double ex1 = exp(-fabs(dd));
            double L = (-dd > 0.0 ? -dd : 0.0) + log1p(ex1);
            const double g = -(-dd >= 0.0 ? 1.0 / (1.0 + ex1) : ex1 / (1.0 + ex1)) / 1.0;
            const float ds = (float)g, dsn = (float)-g;
            for (size_t j = 0; j < d; j++) { dp[j] = 0.0f; dq[j] = 0.0f; dn[j] = 0.0f; }
            if (l2) {
                for (size_t j = 0; j < d; j++) { dp[j] += k * p[j]; dq[j] += k * q[j]; dn[j] += k * n[j]; }
                L += l2s * fri_sumsq(p, d);
                L += l2s * fri_sumsq(q, d);
                L += l2s * fri_sumsq(n, d);
            }
            for (size_t j = 0; j < d; j++) { dp[j] += ds * q[j]; dq[j] += ds * p[j]; }
            for (size_t j = 0; j < d; j++) { dp[j] += dsn * n[j]; dn[j] += dsn * p[j]; }
            for (size_t j = 0; j < d; j++) { p[j] -= lr * dp[j]; q[j] -= lr * dq[j]; n[j] -= lr * dn[j]; }
            sum += L * 1.0;
        }
    }
    *loss_sum = sum;
    return FR_OK;
}

static const fri_model_kind_def kinds[] = {
    {"mf", true, false},   /* FR_MODEL_MF */
    {"bpr", false, false}, /* FR_MODEL_BPR */
};

const fri_model_family fri_model_family_mf = {
    .name = "matrix factorisation",
    .kinds = kinds,
    .n_kinds = 2,
    .init_std = 0.1f,
    .config_default = config_default,
    .config_check = config_check,
    .params_put = params_put,
    .params_get = params_get,
    .layout = layout,
    .ws_size = sizeof(mf_ws),
    .ws_carve = ws_carve,
    .ws_fits = ws_fits,
    .loss_grad = loss_grad,
    .score = score,
    .sgd_pass = sgd_pass,
};
