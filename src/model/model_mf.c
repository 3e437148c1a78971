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
        L = fri_bpr_forward_backward(g ? ws->ds : NULL, g ? ws->dsn : NULL, ws->s, ws->sn, b->weight, B);
    } else if (c->loss == FR_LOSS_MSE) {
        L = fri_mse_forward_backward(g ? ws->ds : NULL, ws->s, b->label, b->weight, B);
    } else {
        L = fri_bce_forward_backward(g ? ws->ds : NULL, ws->s, b->label, b->weight, B);
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

/* sgd_pass does the float operations of loss_impl and fri_examples_fit for one example
 * (B = 1) in their order, in two passes over the example's rows. One reads them: the dot
 * products and the squared norms, each in its own eight lanes with the tail past the last
 * multiple of 8 in lane 0 (the bits of fri_dot, and of fri_sumsq up to its chunk of 64;
 * longer rows take fri_sumsq itself). The other writes them: each element's gradient as
 * loss_impl builds it from a zero gradient, ((0 + k x) with L2) + ds y, and its step
 * p -= lr g. Elementwise, so the same bits as the separate loops; the rows an example
 * touches are distinct (a BPR negative is never the user's positive, and user and item
 * rows live in different tables). The lanes sit in SSE registers where the target has
 * them (every x86-64): the same IEEE operations on the same lanes as the scalar code. */
#if defined(__SSE2__)
#include <emmintrin.h>
#define FRI_MF_SSE 1
#else
#define FRI_MF_SSE 0
#endif

/* The pairwise sum of eight lanes, as fri_dot and one chunk of fri_sumsq add them. */
static inline float lanes8(const float *s) { return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7])); }

/* sum x^2 of a row whose eight lanes hold it when it fits one fri_sumsq chunk. */
static inline double sumsq_of(const float *x, size_t d, const float *lanes) {
    return d <= 64 ? 0.0 + (double)lanes8(lanes) : fri_sumsq(x, d);
}

/* The lanes of a.b, a.a and b.b over rows of d floats. */
static inline void read_pair(const float *restrict a, const float *restrict b, size_t d, float *ab, float *aa,
                             float *bb) {
    const size_t d8 = d & ~(size_t)7;
#if FRI_MF_SSE
    __m128 x0 = _mm_setzero_ps(), x1 = x0, y0 = x0, y1 = x0, z0 = x0, z1 = x0;
    for (size_t i = 0; i < d8; i += 8) {
        const __m128 a0 = _mm_loadu_ps(a + i), a1 = _mm_loadu_ps(a + i + 4);
        const __m128 b0 = _mm_loadu_ps(b + i), b1 = _mm_loadu_ps(b + i + 4);
        x0 = _mm_add_ps(x0, _mm_mul_ps(a0, b0)); x1 = _mm_add_ps(x1, _mm_mul_ps(a1, b1));
        y0 = _mm_add_ps(y0, _mm_mul_ps(a0, a0)); y1 = _mm_add_ps(y1, _mm_mul_ps(a1, a1));
        z0 = _mm_add_ps(z0, _mm_mul_ps(b0, b0)); z1 = _mm_add_ps(z1, _mm_mul_ps(b1, b1));
    }
    _mm_storeu_ps(ab, x0); _mm_storeu_ps(ab + 4, x1);
    _mm_storeu_ps(aa, y0); _mm_storeu_ps(aa + 4, y1);
    _mm_storeu_ps(bb, z0); _mm_storeu_ps(bb + 4, z1);
#else
    for (size_t j = 0; j < 8; j++) ab[j] = aa[j] = bb[j] = 0.0f;
    for (size_t i = 0; i < d8; i += 8)
        for (size_t j = 0; j < 8; j++) {
            ab[j] += a[i + j] * b[i + j];
            aa[j] += a[i + j] * a[i + j];
            bb[j] += b[i + j] * b[i + j];
        }
#endif
    for (size_t i = d8; i < d; i++) {
        ab[0] += a[i] * b[i];
        aa[0] += a[i] * a[i];
        bb[0] += b[i] * b[i];
    }
}

/* The lanes of p.q, p.n, p.p, q.q and n.n (a BPR triple) in one read of the rows. */
static inline void read_triple(const float *restrict p, const float *restrict q, const float *restrict n, size_t d,
                               float *pq, float *pn, float *pp, float *qq, float *nn) {
    const size_t d8 = d & ~(size_t)7;
#if FRI_MF_SSE
    __m128 a0 = _mm_setzero_ps(), a1 = a0, b0 = a0, b1 = a0, c0 = a0, c1 = a0, e0 = a0, e1 = a0, f0 = a0, f1 = a0;
    for (size_t i = 0; i < d8; i += 8) {
        const __m128 p0 = _mm_loadu_ps(p + i), p1 = _mm_loadu_ps(p + i + 4);
        const __m128 q0 = _mm_loadu_ps(q + i), q1 = _mm_loadu_ps(q + i + 4);
        const __m128 n0 = _mm_loadu_ps(n + i), n1 = _mm_loadu_ps(n + i + 4);
        a0 = _mm_add_ps(a0, _mm_mul_ps(p0, q0)); a1 = _mm_add_ps(a1, _mm_mul_ps(p1, q1));
        b0 = _mm_add_ps(b0, _mm_mul_ps(p0, n0)); b1 = _mm_add_ps(b1, _mm_mul_ps(p1, n1));
        c0 = _mm_add_ps(c0, _mm_mul_ps(p0, p0)); c1 = _mm_add_ps(c1, _mm_mul_ps(p1, p1));
        e0 = _mm_add_ps(e0, _mm_mul_ps(q0, q0)); e1 = _mm_add_ps(e1, _mm_mul_ps(q1, q1));
        f0 = _mm_add_ps(f0, _mm_mul_ps(n0, n0)); f1 = _mm_add_ps(f1, _mm_mul_ps(n1, n1));
    }
    _mm_storeu_ps(pq, a0); _mm_storeu_ps(pq + 4, a1);
    _mm_storeu_ps(pn, b0); _mm_storeu_ps(pn + 4, b1);
    _mm_storeu_ps(pp, c0); _mm_storeu_ps(pp + 4, c1);
    _mm_storeu_ps(qq, e0); _mm_storeu_ps(qq + 4, e1);
    _mm_storeu_ps(nn, f0); _mm_storeu_ps(nn + 4, f1);
#else
    for (size_t j = 0; j < 8; j++) pq[j] = pn[j] = pp[j] = qq[j] = nn[j] = 0.0f;
    for (size_t i = 0; i < d8; i += 8)
        for (size_t j = 0; j < 8; j++) {
            pq[j] += p[i + j] * q[i + j];
            pn[j] += p[i + j] * n[i + j];
            pp[j] += p[i + j] * p[i + j];
            qq[j] += q[i + j] * q[i + j];
            nn[j] += n[i + j] * n[i + j];
        }
#endif
    for (size_t i = d8; i < d; i++) {
        pq[0] += p[i] * q[i];
        pn[0] += p[i] * n[i];
        pp[0] += p[i] * p[i];
        qq[0] += q[i] * q[i];
        nn[0] += n[i] * n[i];
    }
}

/* a -= lr * ((0 + k a) + ds b) and b -= lr * ((0 + k b) + ds a) elementwise (without L2:
 * 0 + ds b and 0 + ds a), from the values before the step. */
static inline void step_pair(float *restrict a, float *restrict b, size_t d, bool l2, float k, float ds, float lr) {
    size_t i = 0;
#if FRI_MF_SSE
    const __m128 z = _mm_setzero_ps(), vk = _mm_set1_ps(k), vds = _mm_set1_ps(ds), vlr = _mm_set1_ps(lr);
    for (; i + 4 <= d; i += 4) {
        const __m128 ai = _mm_loadu_ps(a + i), bi = _mm_loadu_ps(b + i);
        const __m128 ga = _mm_add_ps(l2 ? _mm_add_ps(z, _mm_mul_ps(vk, ai)) : z, _mm_mul_ps(vds, bi));
        const __m128 gb = _mm_add_ps(l2 ? _mm_add_ps(z, _mm_mul_ps(vk, bi)) : z, _mm_mul_ps(vds, ai));
        _mm_storeu_ps(a + i, _mm_sub_ps(ai, _mm_mul_ps(vlr, ga)));
        _mm_storeu_ps(b + i, _mm_sub_ps(bi, _mm_mul_ps(vlr, gb)));
    }
#endif
    for (; i < d; i++) {
        const float ai = a[i], bi = b[i];
        const float ga = (l2 ? 0.0f + k * ai : 0.0f) + ds * bi, gb = (l2 ? 0.0f + k * bi : 0.0f) + ds * ai;
        a[i] = ai - lr * ga;
        b[i] = bi - lr * gb;
    }
}

/* A BPR triple's step: p's gradient ((0 + k p) + ds q) + dsn n, q's (0 + k q) + ds p,
 * n's (0 + k n) + dsn p (without L2 the k terms are 0), from the values before the step. */
static inline void step_triple(float *restrict p, float *restrict q, float *restrict n, size_t d, bool l2, float k,
                               float ds, float dsn, float lr) {
    size_t i = 0;
#if FRI_MF_SSE
    const __m128 z = _mm_setzero_ps(), vk = _mm_set1_ps(k), vds = _mm_set1_ps(ds), vdn = _mm_set1_ps(dsn),
                 vlr = _mm_set1_ps(lr);
    for (; i + 4 <= d; i += 4) {
        const __m128 pi = _mm_loadu_ps(p + i), qi = _mm_loadu_ps(q + i), ni = _mm_loadu_ps(n + i);
        const __m128 gp = _mm_add_ps(_mm_add_ps(l2 ? _mm_add_ps(z, _mm_mul_ps(vk, pi)) : z, _mm_mul_ps(vds, qi)),
                                     _mm_mul_ps(vdn, ni));
        const __m128 gq = _mm_add_ps(l2 ? _mm_add_ps(z, _mm_mul_ps(vk, qi)) : z, _mm_mul_ps(vds, pi));
        const __m128 gn = _mm_add_ps(l2 ? _mm_add_ps(z, _mm_mul_ps(vk, ni)) : z, _mm_mul_ps(vdn, pi));
        _mm_storeu_ps(p + i, _mm_sub_ps(pi, _mm_mul_ps(vlr, gp)));
        _mm_storeu_ps(q + i, _mm_sub_ps(qi, _mm_mul_ps(vlr, gq)));
        _mm_storeu_ps(n + i, _mm_sub_ps(ni, _mm_mul_ps(vlr, gn)));
    }
#endif
    for (; i < d; i++) {
        const float pi = p[i], qi = q[i], ni = n[i];
        const float gp = ((l2 ? 0.0f + k * pi : 0.0f) + ds * qi) + dsn * ni;
        const float gq = (l2 ? 0.0f + k * qi : 0.0f) + ds * pi, gn = (l2 ? 0.0f + k * ni : 0.0f) + dsn * pi;
        p[i] = pi - lr * gp;
        q[i] = qi - lr * gq;
        n[i] = ni - lr * gn;
    }
}

static double sgd_mse(const fr_model *m, float *P, float *Q, float *BU, float *BI, const struct fri_examples *ex,
                      float lr, double sum) {
    const fr_model_config *c = &m->cfg;
    const size_t d = c->dim;
    const double l2s = (double)c->l2 / 1.0, bl2s = c->bias_l2 > 0.0f ? (double)c->bias_l2 / 1.0 : l2s;
    const bool l2 = l2s > 0;
    const float k = (float)(2.0 * l2s), kb = (float)(2.0 * bl2s), mu = c->mu;
    for (size_t x = 0; x < ex->n; x++) {
        const uint32_t u = ex->user[x], i = ex->item[x];
        float *restrict p = P + (size_t)u * d, *restrict q = Q + (size_t)i * d;
        float spq[8], spp[8], sqq[8];
        read_pair(p, q, d, spq, spp, sqq);
        float s = lanes8(spq);
        const float bu = BU[u], bi = BI[i];
        s += mu + bu + bi;
        const double e = (double)s - (double)ex->label[x];
        double L = e * e / 1.0;
        const float ds = (float)(2.0 * e / 1.0);
        if (l2) {
            L += l2s * sumsq_of(p, d, spp);
            L += l2s * sumsq_of(q, d, sqq);
        }
        float dbu = 0.0f, dbi = 0.0f;
        if (bl2s > 0) {
            dbu += kb * bu;
            dbi += kb * bi;
            L += bl2s * fri_sumsq(&bu, 1);
            L += bl2s * fri_sumsq(&bi, 1);
        }
        dbu += ds;
        dbi += ds;
        step_pair(p, q, d, l2, k, ds, lr);
        BU[u] = bu - lr * dbu;
        BI[i] = bi - lr * dbi;
        sum += L * 1.0;
    }
    return sum;
}

/* wt: the examples' weights (confidence), or NULL. Called with a constant NULL for
 * unweighted examples, so that loop keeps the operations it had before weights. */
static inline double sgd_bpr(const fr_model *m, float *P, float *Q, const struct fri_examples *ex,
                             const float *restrict wt, float lr, double sum) {
    const fr_model_config *c = &m->cfg;
    const size_t d = c->dim;
    const double l2s = (double)c->l2 / 1.0;
    const bool l2 = l2s > 0;
    const float k = (float)(2.0 * l2s);
    for (size_t x = 0; x < ex->n; x++) {
        float *restrict p = P + (size_t)ex->user[x] * d, *restrict q = Q + (size_t)ex->item[x] * d,
                        *restrict n = Q + (size_t)ex->neg[x] * d;
        float spq[8], spn[8], spp[8], sqq[8], snn[8];
        read_triple(p, q, n, d, spq, spn, spp, sqq, snn);
        const double dd = (double)lanes8(spq) - (double)lanes8(spn);
        /* fri_softplus(-dd) and fri_sigmoid(-dd), sharing their exp(-|dd|) */
        const double ex1 = exp(-fabs(dd));
        double L = (-dd > 0.0 ? -dd : 0.0) + log1p(ex1);
        double g = -(-dd >= 0.0 ? 1.0 / (1.0 + ex1) : ex1 / (1.0 + ex1)) / 1.0;
        if (wt) { /* fri_bpr_forward_backward's weighted terms: c * softplus, c * (-sigmoid / B) */
            const double cw = wt[x];
            L = cw * L;
            g = cw * g;
        }
        const float ds = (float)g, dsn = (float)-g;
        if (l2) {
            L += l2s * sumsq_of(p, d, spp);
            L += l2s * sumsq_of(q, d, sqq);
            L += l2s * sumsq_of(n, d, snn);
        }
        step_triple(p, q, n, d, l2, k, ds, dsn, lr);
        sum += L * 1.0;
    }
    return sum;
}

static fr_err sgd_pass(fr_model *m, const struct fri_examples *ex, float lr, double *loss_sum) {
    const fr_model_config *c = &m->cfg;
    float *P = m->params + m->t[m->slot[USER_F]].offset, *Q = m->params + m->t[m->slot[ITEM_F]].offset;
    if (c->loss == FR_LOSS_MSE)
        *loss_sum = sgd_mse(m, P, Q, m->params + m->t[m->slot[USER_B]].offset, m->params + m->t[m->slot[ITEM_B]].offset,
                            ex, lr, *loss_sum);
    else if (c->loss == FR_LOSS_BPR)
        *loss_sum = ex->alpha > 0 ? sgd_bpr(m, P, Q, ex, ex->wt, lr, *loss_sum) : sgd_bpr(m, P, Q, ex, NULL, lr, *loss_sum);
    else
        return FR_ERR_UNSUPPORTED; /* no message: not an error */
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
