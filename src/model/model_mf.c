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
 * rows live in different tables).
 *
 * The eight lanes are one vector of the compiler's (GNU vector extensions): two SSE
 * registers on a plain x86-64 build, one AVX register in the copy of the loop compiled
 * for AVX2 (its register broadcast), taken when the CPU has it. Every lane sees the same
 * IEEE operations (a multiply, then an add; never a fused multiply-add, which the ISO C
 * mode and the "avx2" target without "fma" both rule out) in the same order, so both
 * copies and the scalar code give the same bits; tests/test_train.c checks each copy
 * against the generic loop. The sums of the lanes are shuffles and vector adds pairing
 * the lanes as lanes8 does.
 * The pass prefetches the rows of the examples up to AHEAD past those it is reading:
 * the shuffle makes their addresses random, and the tables fit in L2, not in L1. Neither
 * the copy taken nor the prefetches change a value. */
#include "model/v8.h"
#define FRI_MF_V8 FRI_V8
#if FRI_MF_V8 && (defined(__x86_64__) || defined(__i386__))
#define FRI_MF_AVX 1
#else
#define FRI_MF_AVX 0
#endif

#define GROUP 2 /* examples read before any of them is written (see sgd_mse_body) */
#define AHEAD 2 /* examples between a prefetch of rows and the read of them */

static bool mf_avx_allowed = true; /* tests: false keeps the plain copy (fri_mf_sgd_allow_avx) */

bool fri_mf_sgd_allow_avx(bool allow) {
    bool was = mf_avx_allowed;
    mf_avx_allowed = allow;
#if FRI_MF_AVX
    return was && __builtin_cpu_supports("avx2");
#else
    return false;
#endif
}

#if !FRI_MF_V8
/* The pairwise sum of eight lanes, as fri_dot and one chunk of fri_sumsq add them (the
 * vector code's v8_sum3). */
static inline float lanes8(const float *s) { return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7])); }
#endif

/* sum x^2 of a row: its lanes8 sum when it fits one fri_sumsq chunk. */
static inline double sumsq_of(const float *x, size_t d, float lanes_sum) {
    return d <= 64 ? 0.0 + (double)lanes_sum : fri_sumsq(x, d);
}

/* Brings a row of d floats towards L1 (no effect on any value). */
static FRI_ALWAYS_INLINE void prefetch_row(const float *x, size_t d) {
#if defined(__GNUC__)
    for (size_t i = 0; i < d; i += 16) __builtin_prefetch(x + i, 1, 3);
#else
    (void)x;
    (void)d;
#endif
}

/* a.b, a.a and b.b over rows of d floats, each summed in eight lanes (the tail past the
 * last multiple of 8 in lane 0) that are then added as lanes8 adds them. */
static FRI_ALWAYS_INLINE void read_pair(const float *restrict a, const float *restrict b, size_t d, float *ab,
                                        float *aa, float *bb) {
    const size_t d8 = d & ~(size_t)7;
#if FRI_MF_V8
    v8f x = {0}, y = {0}, z = {0};
    for (size_t i = 0; i < d8; i += 8) {
        const v8f va = v8_load(a + i), vb = v8_load(b + i);
        const v8f tab = va * vb, taa = va * va, tbb = vb * vb; /* apart from the adds: no contraction */
        x += tab;
        y += taa;
        z += tbb;
    }
    for (size_t i = d8; i < d; i++) {
        const float tab = a[i] * b[i], taa = a[i] * a[i], tbb = b[i] * b[i];
        x[0] += tab;
        y[0] += taa;
        z[0] += tbb;
    }
    v8_sum3(x, y, z, ab, aa, bb);
#else
    float sab[8] = {0}, saa[8] = {0}, sbb[8] = {0};
    for (size_t i = 0; i < d8; i += 8)
        for (size_t j = 0; j < 8; j++) {
            sab[j] += a[i + j] * b[i + j];
            saa[j] += a[i + j] * a[i + j];
            sbb[j] += b[i + j] * b[i + j];
        }
    for (size_t i = d8; i < d; i++) {
        sab[0] += a[i] * b[i];
        saa[0] += a[i] * a[i];
        sbb[0] += b[i] * b[i];
    }
    *ab = lanes8(sab);
    *aa = lanes8(saa);
    *bb = lanes8(sbb);
#endif
}

/* p.q, p.n, p.p, q.q and n.n (a BPR triple) in one read of the rows, summed as read_pair
 * sums. */
static FRI_ALWAYS_INLINE void read_triple(const float *restrict p, const float *restrict q, const float *restrict n,
                                          size_t d, float *pq, float *pn, float *pp, float *qq, float *nn) {
    const size_t d8 = d & ~(size_t)7;
#if FRI_MF_V8
    v8f a = {0}, b = {0}, c = {0}, e = {0}, f = {0};
    for (size_t i = 0; i < d8; i += 8) {
        const v8f vp = v8_load(p + i), vq = v8_load(q + i), vn = v8_load(n + i);
        const v8f tpq = vp * vq, tpn = vp * vn, tpp = vp * vp, tqq = vq * vq, tnn = vn * vn;
        a += tpq;
        b += tpn;
        c += tpp;
        e += tqq;
        f += tnn;
    }
    for (size_t i = d8; i < d; i++) {
        const float tpq = p[i] * q[i], tpn = p[i] * n[i], tpp = p[i] * p[i], tqq = q[i] * q[i], tnn = n[i] * n[i];
        a[0] += tpq;
        b[0] += tpn;
        c[0] += tpp;
        e[0] += tqq;
        f[0] += tnn;
    }
    float unused;
    v8_sum3(a, b, c, pq, pn, pp);
    v8_sum3(e, f, f, qq, nn, &unused);
#else
    float spq[8] = {0}, spn[8] = {0}, spp[8] = {0}, sqq[8] = {0}, snn[8] = {0};
    for (size_t i = 0; i < d8; i += 8)
        for (size_t j = 0; j < 8; j++) {
            spq[j] += p[i + j] * q[i + j];
            spn[j] += p[i + j] * n[i + j];
            spp[j] += p[i + j] * p[i + j];
            sqq[j] += q[i + j] * q[i + j];
            snn[j] += n[i + j] * n[i + j];
        }
    for (size_t i = d8; i < d; i++) {
        spq[0] += p[i] * q[i];
        spn[0] += p[i] * n[i];
        spp[0] += p[i] * p[i];
        sqq[0] += q[i] * q[i];
        snn[0] += n[i] * n[i];
    }
    *pq = lanes8(spq);
    *pn = lanes8(spn);
    *pp = lanes8(spp);
    *qq = lanes8(sqq);
    *nn = lanes8(snn);
#endif
}

/* a -= lr * ((0 + k a) + ds b) and b -= lr * ((0 + k b) + ds a) elementwise (without L2:
 * 0 + ds b and 0 + ds a), from the values before the step. One operation a statement:
 * nothing for a compiler to contract. */
static FRI_ALWAYS_INLINE void step_pair(float *restrict a, float *restrict b, size_t d, bool l2, float k, float ds,
                                        float lr) {
    size_t i = 0;
#if FRI_MF_V8
    const v8f z = {0}, vk = v8_splat(k), vds = v8_splat(ds), vlr = v8_splat(lr);
    for (; i + 8 <= d; i += 8) {
        const v8f ai = v8_load(a + i), bi = v8_load(b + i);
        v8f ka = z, kb = z;
        if (l2) {
            const v8f ta = vk * ai, tb = vk * bi;
            ka = z + ta;
            kb = z + tb;
        }
        const v8f sb = vds * bi, sa = vds * ai;
        const v8f ga = ka + sb, gb = kb + sa;
        const v8f ua = vlr * ga, ub = vlr * gb;
        v8_store(a + i, ai - ua);
        v8_store(b + i, bi - ub);
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
static FRI_ALWAYS_INLINE void step_triple(float *restrict p, float *restrict q, float *restrict n, size_t d,
                                          bool l2, float k, float ds, float dsn, float lr) {
    size_t i = 0;
#if FRI_MF_V8
    const v8f z = {0}, vk = v8_splat(k), vds = v8_splat(ds), vdn = v8_splat(dsn), vlr = v8_splat(lr);
    for (; i + 8 <= d; i += 8) {
        const v8f pi = v8_load(p + i), qi = v8_load(q + i), ni = v8_load(n + i);
        v8f kp = z, kq = z, kn = z;
        if (l2) {
            const v8f tp = vk * pi, tq = vk * qi, tn = vk * ni;
            kp = z + tp;
            kq = z + tq;
            kn = z + tn;
        }
        const v8f sq = vds * qi, sn = vdn * ni, sp = vds * pi, snp = vdn * pi;
        const v8f gp0 = kp + sq;
        const v8f gp = gp0 + sn, gq = kq + sp, gn = kn + snp;
        const v8f up = vlr * gp, uq = vlr * gq, un = vlr * gn;
        v8_store(p + i, pi - up);
        v8_store(q + i, qi - uq);
        v8_store(n + i, ni - un);
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

/* One mf example between reading its rows and writing them. */
typedef struct mse_step {
    float *p, *q;    /* its user and item rows */
    uint32_t u, i;   /* its user and item */
    float bu, bi;    /* their biases before the step */
    float ds;        /* d loss / d score */
    double L;        /* its loss */
} mse_step;

/* The constants of an mf pass. */
typedef struct mse_pass {
    double l2s, bl2s; /* L2 of the rows and of the biases (per example: B = 1) */
    bool l2;          /* l2s > 0 */
    float k, kb, mu;  /* 2 l2s, 2 bl2s, the global mean */
} mse_pass;

/* Reads example x: its score, loss and d loss / d score, from the rows as they are. */
static FRI_ALWAYS_INLINE void mse_read(const mse_pass *c, float *P, float *Q, const float *BU, const float *BI,
                                       const struct fri_examples *ex, size_t x, size_t d, mse_step *st) {
    const uint32_t u = ex->user[x], i = ex->item[x];
    float *restrict p = P + (size_t)u * d, *restrict q = Q + (size_t)i * d;
    float s, spp, sqq;
    read_pair(p, q, d, &s, &spp, &sqq);
    const float bu = BU[u], bi = BI[i];
    s += c->mu + bu + bi;
    const double e = (double)s - (double)ex->label[x];
    double L = e * e / 1.0;
    if (c->l2) {
        L += c->l2s * sumsq_of(p, d, spp);
        L += c->l2s * sumsq_of(q, d, sqq);
    }
    if (c->bl2s > 0) {
        L += c->bl2s * fri_sumsq(&bu, 1);
        L += c->bl2s * fri_sumsq(&bi, 1);
    }
    *st = (mse_step){p, q, u, i, bu, bi, (float)(2.0 * e / 1.0), L};
}

/* Writes the step of an example read by mse_read. */
static FRI_ALWAYS_INLINE void mse_write(const mse_pass *c, float *BU, float *BI, const mse_step *st, float lr,
                                        size_t d) {
    float dbu = 0.0f, dbi = 0.0f;
    if (c->bl2s > 0) {
        dbu += c->kb * st->bu;
        dbi += c->kb * st->bi;
    }
    dbu += st->ds;
    dbi += st->ds;
    step_pair(st->p, st->q, d, c->l2, c->k, st->ds, lr);
    BU[st->u] = st->bu - lr * dbu;
    BI[st->i] = st->bi - lr * dbi;
}

/* The mf pass over rows of d floats (a constant where the caller specialises it).
 * Consecutive examples with different users and different items touch disjoint rows and
 * biases, so the later ones can be read before the earlier are written without changing a
 * bit: up to GROUP such examples are read, then written in order, which gives the CPU
 * independent chains (dot product, score, step) to overlap where one example's chain
 * would leave its units idle. An example sharing a user or an item with one read before
 * it waits for the next group. The loss terms are added in example order. */
static FRI_ALWAYS_INLINE double sgd_mse_body(const fr_model_config *cfg, float *P, float *Q, float *BU, float *BI,
                                             const struct fri_examples *ex, float lr, double sum, size_t d) {
    mse_pass c;
    c.l2s = (double)cfg->l2 / 1.0;
    c.bl2s = cfg->bias_l2 > 0.0f ? (double)cfg->bias_l2 / 1.0 : c.l2s;
    c.l2 = c.l2s > 0;
    c.k = (float)(2.0 * c.l2s);
    c.kb = (float)(2.0 * c.bl2s);
    c.mu = cfg->mu;
    const uint32_t *user = ex->user, *item = ex->item;
    const size_t n = ex->n;
    size_t pf = 0; /* the next example whose rows to prefetch */
    for (size_t x = 0; x < n;) {
        for (; pf < n && pf < x + GROUP + AHEAD; pf++) {
            prefetch_row(P + (size_t)user[pf] * d, d);
            prefetch_row(Q + (size_t)item[pf] * d, d);
        }
        mse_step st[GROUP];
        size_t g;
        mse_read(&c, P, Q, BU, BI, ex, x, d, &st[0]);
        g = 1;
        while (g < GROUP && x + g < n) {
            const uint32_t u = user[x + g], i = item[x + g];
            bool apart = true;
            for (size_t h = 0; h < g; h++) apart &= st[h].u != u && st[h].i != i;
            if (!apart) break;
            mse_read(&c, P, Q, BU, BI, ex, x + g, d, &st[g]);
            g++;
        }
        for (size_t h = 0; h < g; h++) mse_write(&c, BU, BI, &st[h], lr, d);
        for (size_t h = 0; h < g; h++) sum += st[h].L * 1.0;
        x += g;
    }
    return sum;
}

/* One BPR triple between reading its rows and writing them. */
typedef struct bpr_step {
    float *p, *q, *n;     /* its user, positive and negative rows */
    uint32_t u, i, j;     /* its user, positive and negative */
    float ds, dsn;        /* d loss / d score of the positive and of the negative */
    double L;             /* its loss */
} bpr_step;

/* Reads triple x: its scores, loss and gradients, from the rows as they are. */
static FRI_ALWAYS_INLINE void bpr_read(double l2s, float *P, float *Q, const struct fri_examples *ex,
                                       const float *restrict wt, size_t x, size_t d, bpr_step *st) {
    const uint32_t u = ex->user[x], i = ex->item[x], j = ex->neg[x];
    float *restrict p = P + (size_t)u * d, *restrict q = Q + (size_t)i * d, *restrict n = Q + (size_t)j * d;
    float spq, spn, spp, sqq, snn;
    read_triple(p, q, n, d, &spq, &spn, &spp, &sqq, &snn);
    const double dd = (double)spq - (double)spn;
    /* fri_softplus(-dd) and fri_sigmoid(-dd), sharing their exp(-|dd|) */
    const double ex1 = exp(-fabs(dd));
    double L = (-dd > 0.0 ? -dd : 0.0) + log1p(ex1);
    double g = -(-dd >= 0.0 ? 1.0 / (1.0 + ex1) : ex1 / (1.0 + ex1)) / 1.0;
    if (wt) { /* fri_bpr_forward_backward's weighted terms: c * softplus, c * (-sigmoid / B) */
        const double cw = wt[x];
        L = cw * L;
        g = cw * g;
    }
    if (l2s > 0) {
        L += l2s * sumsq_of(p, d, spp);
        L += l2s * sumsq_of(q, d, sqq);
        L += l2s * sumsq_of(n, d, snn);
    }
    *st = (bpr_step){p, q, n, u, i, j, (float)g, (float)-g, L};
}

/* The BPR pass. wt: the examples' weights (confidence), or NULL; a constant NULL for
 * unweighted examples keeps the operations that loop had before weights. As the mf pass,
 * up to GROUP consecutive triples whose rows are pairwise disjoint (users differ, and no
 * item of one is an item of another) are read before any is written. */
static FRI_ALWAYS_INLINE double sgd_bpr_body(const fr_model_config *c, float *P, float *Q,
                                             const struct fri_examples *ex, const float *restrict wt, float lr,
                                             double sum, size_t d) {
    const double l2s = (double)c->l2 / 1.0;
    const bool l2 = l2s > 0;
    const float k = (float)(2.0 * l2s);
    const uint32_t *user = ex->user, *item = ex->item, *neg = ex->neg;
    const size_t nx = ex->n;
    size_t pf = 0; /* the next example whose rows to prefetch */
    for (size_t x = 0; x < nx;) {
        for (; pf < nx && pf < x + GROUP + AHEAD; pf++) {
            prefetch_row(P + (size_t)user[pf] * d, d);
            prefetch_row(Q + (size_t)item[pf] * d, d);
            prefetch_row(Q + (size_t)neg[pf] * d, d);
        }
        bpr_step st[GROUP];
        size_t g;
        bpr_read(l2s, P, Q, ex, wt, x, d, &st[0]);
        g = 1;
        while (g < GROUP && x + g < nx) {
            const uint32_t u = user[x + g], i = item[x + g], j = neg[x + g];
            bool apart = true;
            for (size_t h = 0; h < g; h++)
                apart &= st[h].u != u && st[h].i != i && st[h].i != j && st[h].j != i && st[h].j != j;
            if (!apart) break;
            bpr_read(l2s, P, Q, ex, wt, x + g, d, &st[g]);
            g++;
        }
        for (size_t h = 0; h < g; h++) step_triple(st[h].p, st[h].q, st[h].n, d, l2, k, st[h].ds, st[h].dsn, lr);
        for (size_t h = 0; h < g; h++) sum += st[h].L * 1.0;
        x += g;
    }
    return sum;
}

/* One pass (mf or bpr, weighted or not) with the row length a constant for the common
 * dims, so the lane loops unroll. The same source is compiled twice: plain, and for AVX2. */
#define MF_PASS_BODY                                                                                                   \
    if (bpr) {                                                                                                         \
        if (ex->alpha > 0)                                                                                             \
            return sgd_bpr_body(c, P, Q, ex, ex->wt, lr, sum, c->dim);                                                 \
        switch (c->dim) {                                                                                              \
        case 32: return sgd_bpr_body(c, P, Q, ex, NULL, lr, sum, 32);                                                  \
        case 64: return sgd_bpr_body(c, P, Q, ex, NULL, lr, sum, 64);                                                  \
        default: return sgd_bpr_body(c, P, Q, ex, NULL, lr, sum, c->dim);                                              \
        }                                                                                                              \
    }                                                                                                                  \
    switch (c->dim) {                                                                                                  \
    case 32: return sgd_mse_body(c, P, Q, BU, BI, ex, lr, sum, 32);                                                    \
    case 64: return sgd_mse_body(c, P, Q, BU, BI, ex, lr, sum, 64);                                                    \
    default: return sgd_mse_body(c, P, Q, BU, BI, ex, lr, sum, c->dim);                                                \
    }

static double mf_pass_plain(const fr_model_config *c, bool bpr, float *P, float *Q, float *BU, float *BI,
                            const struct fri_examples *ex, float lr, double sum) {
    MF_PASS_BODY
}

#if FRI_MF_AVX
__attribute__((target("avx2"))) static double mf_pass_avx(const fr_model_config *c, bool bpr, float *P, float *Q,
                                                          float *BU, float *BI, const struct fri_examples *ex,
                                                          float lr, double sum) {
    MF_PASS_BODY
}
#endif

static fr_err sgd_pass(fr_model *m, const struct fri_examples *ex, float lr, double *loss_sum) {
    const fr_model_config *c = &m->cfg;
    float *P = m->params + m->t[m->slot[USER_F]].offset, *Q = m->params + m->t[m->slot[ITEM_F]].offset;
    float *BU = NULL, *BI = NULL;
    if (c->loss == FR_LOSS_MSE) {
        BU = m->params + m->t[m->slot[USER_B]].offset;
        BI = m->params + m->t[m->slot[ITEM_B]].offset;
    } else if (c->loss != FR_LOSS_BPR) {
        return FR_ERR_UNSUPPORTED; /* no message: not an error */
    }
    const bool bpr = c->loss == FR_LOSS_BPR;
#if FRI_MF_AVX
    if (mf_avx_allowed && __builtin_cpu_supports("avx2")) {
        *loss_sum = mf_pass_avx(c, bpr, P, Q, BU, BI, ex, lr, *loss_sum);
        return FR_OK;
    }
#endif
    *loss_sum = mf_pass_plain(c, bpr, P, Q, BU, BI, ex, lr, *loss_sum);
    return FR_OK;
}

/* ---------------------------------------------------------------- a federated client's fit */

/* client_sgd (fri_client_sgd, model_internal.h): loss_impl's operations for a minibatch
 * of one user, on the compact rows Q, BI (from out) and the user's rows P, BU, with the
 * generic client loop's gradient and step: each table's gradient starts at +0 and takes
 * the minibatch's rows in example order (fri_embedding_backward), then every element the
 * minibatch touched steps p -= lr * (g + wd * p) once (sgd_range's expression), the
 * user's rows at every minibatch. Plain SGD leaves an untouched row as it is, so nothing
 * else moves (the generic loop's coasting is the identity for it). */
typedef struct lean_ws {
    float *p, *q, *dp, *dq;    /* [B,d] */
    float *bu, *bi, *dbu, *dbi, *s, *ds; /* [B] */
    float *gq, *gb;            /* [L,d], [L] gradients of the compact rows */
    float *gp;                 /* [d] the user's factor's */
    uint8_t *mark;             /* [L] a row's gradient is live this minibatch */
} lean_ws;

static fr_err lean_carve(lean_ws *w, const fri_client_sgd *a, size_t B, size_t d) {
    size_t L = a->L, nf = 4 * B * d + 6 * B + L * d + L + d;
    size_t bytes = nf * sizeof(float) + L + 64;
    if (bytes > *a->scratch_cap) {
        void *p = fri_realloc(*a->scratch, bytes);
        if (!p) return FR_ERR_NOMEM;
        *a->scratch = p;
        *a->scratch_cap = bytes;
    }
    float *f = *a->scratch;
    w->p = f; f += B * d; w->q = f; f += B * d; w->dp = f; f += B * d; w->dq = f; f += B * d;
    w->bu = f; f += B; w->bi = f; f += B; w->dbu = f; f += B; w->dbi = f; f += B; w->s = f; f += B; w->ds = f; f += B;
    w->gq = f; f += L * d; w->gb = f; f += L; w->gp = f; f += d;
    w->mark = (uint8_t *)f;
    memset(w->mark, 0, L);
    return FR_OK;
}

/* layers.c's fri_dot_forward, fri_dot_backward, fri_l2_forward_backward and
 * fri_mse_forward_backward (no weights), the same operations in the same order, inlined
 * here so that the AVX2 copy of the fit compiles them for AVX2 too (same bits: see the
 * note on the copies above). */
static FRI_ALWAYS_INLINE void lean_dot_forward(float *restrict out, const float *restrict a, const float *restrict b,
                                               size_t B, size_t C) {
    for (size_t i = 0; i < B; i++) out[i] = fri_dot(a + i * C, b + i * C, C);
}
static FRI_ALWAYS_INLINE void lean_dot_backward(float *restrict da, float *restrict db, const float *restrict dout,
                                                const float *restrict a, const float *restrict b, size_t B, size_t C) {
    for (size_t i = 0; i < B; i++) {
        float d = dout[i];
        for (size_t x = 0; x < C; x++) {
            da[i * C + x] += d * b[i * C + x];
            db[i * C + x] += d * a[i * C + x];
        }
    }
}
static FRI_ALWAYS_INLINE double lean_l2(float *restrict dx, const float *restrict x, size_t B, size_t C, double scale) {
    float k = (float)(2.0 * scale);
    for (size_t i = 0; i < B * C; i++) dx[i] += k * x[i];
    return scale * fri_sumsq(x, B * C);
}
static FRI_ALWAYS_INLINE double lean_mse(float *restrict dpred, const float *restrict pred, const float *restrict y,
                                         size_t B) {
    double s = 0.0;
    for (size_t i = 0; i < B; i++) {
        double e = (double)pred[i] - (double)y[i];
        s += e * e;
        dpred[i] = (float)(2.0 * e / (double)B);
    }
    return s / (double)B;
}

/* The biases' L2 terms and gradients of a minibatch (the memset zeros, the L2 term, then
 * += ds): L with the terms added, in loss_impl's order. */
static FRI_ALWAYS_INLINE double lean_bias_grad(const fr_model_config *c, lean_ws *w, size_t B, double l2s, double L) {
    memset(w->dbu, 0, B * sizeof(float));
    memset(w->dbi, 0, B * sizeof(float));
    double bl2s = c->bias_l2 > 0.0f ? (double)c->bias_l2 / (double)B : l2s;
    if (bl2s > 0) {
        L += lean_l2(w->dbu, w->bu, B, 1, bl2s);
        L += lean_l2(w->dbi, w->bi, B, 1, bl2s);
    }
    for (size_t i = 0; i < B; i++) { w->dbu[i] += w->ds[i]; w->dbi[i] += w->ds[i]; }
    return L;
}

/* The end of a minibatch: the biases' gradients summed from +0 in example order, then the
 * step (sgd_range's expression) on the user's rows (gp: its factor's gradient [d]) and on
 * every item row the minibatch marked, each once, its mark cleared. d is a constant where
 * lean_batch32 inlines it. */
static FRI_ALWAYS_INLINE void lean_step(const fri_client_sgd *a, lean_ws *w, const uint32_t *it, size_t B, size_t d,
                                        const float *gp, float *P, float *BU, float *Q, float *BI) {
    float gpb = 0.0f;
    for (size_t i = 0; i < B; i++) gpb += w->dbu[i];
    for (size_t i = 0; i < B; i++) w->gb[it[i]] += w->dbi[i];
    const float lr = a->lr, wd = a->wd;
    for (size_t x = 0; x < d; x++) P[x] -= lr * (gp[x] + wd * P[x]);
    BU[0] -= lr * (gpb + wd * BU[0]);
    for (size_t i = 0; i < B; i++) {
        uint32_t r = it[i];
        if (!w->mark[r]) continue;
        w->mark[r] = 0;
        float *restrict q = Q + (size_t)r * d;
        const float *restrict gq = w->gq + (size_t)r * d;
        for (size_t x = 0; x < d; x++) q[x] -= lr * (gq[x] + wd * q[x]);
        BI[r] -= lr * (w->gb[r] + wd * BI[r]);
    }
}

/* One minibatch [s, s + B) (loss_impl with a gradient, then the step). */
static FRI_ALWAYS_INLINE double lean_batch(const fr_model_config *c, const fri_client_sgd *a, lean_ws *w, float *P,
                                           float *BU, float *Q, float *BI, size_t s, size_t B) {
    const size_t d = c->dim;
    const uint32_t *it = a->item + s;
    /* mf_scores */
    for (size_t i = 0; i < B; i++) {
        float *restrict pp = w->p + i * d, *restrict qq = w->q + i * d;
        const float *restrict qs = Q + (size_t)it[i] * d;
        for (size_t x = 0; x < d; x++) pp[x] = P[x];
        for (size_t x = 0; x < d; x++) qq[x] = qs[x];
    }
    lean_dot_forward(w->s, w->p, w->q, B, d);
    for (size_t i = 0; i < B; i++) { w->bu[i] = BU[0]; w->bi[i] = BI[it[i]]; }
    for (size_t i = 0; i < B; i++) w->s[i] += c->mu + w->bu[i] + w->bi[i];
    double L = lean_mse(w->ds, w->s, a->label + s, B);
    double l2s = (double)c->l2 / (double)B;
    memset(w->dp, 0, B * d * sizeof(float));
    memset(w->dq, 0, B * d * sizeof(float));
    if (l2s > 0) {
        L += lean_l2(w->dp, w->p, B, d, l2s);
        L += lean_l2(w->dq, w->q, B, d, l2s);
    }
    L = lean_bias_grad(c, w, B, l2s, L);
    lean_dot_backward(w->dp, w->dq, w->ds, w->p, w->q, B, d);
    /* gradients from +0, rows in example order (fri_embedding_backward) */
    float *restrict gp = w->gp;
    for (size_t x = 0; x < d; x++) gp[x] = 0.0f;
    for (size_t i = 0; i < B; i++) {
        const float *restrict g = w->dp + i * d;
        for (size_t x = 0; x < d; x++) gp[x] += g[x];
    }
    for (size_t i = 0; i < B; i++) {
        uint32_t r = it[i];
        float *restrict gq = w->gq + (size_t)r * d;
        if (!w->mark[r]) {
            w->mark[r] = 1;
            for (size_t x = 0; x < d; x++) gq[x] = 0.0f;
            w->gb[r] = 0.0f;
        }
        const float *restrict g = w->dq + i * d;
        for (size_t x = 0; x < d; x++) gq[x] += g[x];
    }
    lean_step(a, w, it, B, d, gp, P, BU, Q, BI);
    return L;
}

#if FRI_MF_V8
/* lean_batch for d = 32 with its rows in registers (four v8f a row): the same operations
 * on every element in the same order, without the [B, d] copies of the user's row and of
 * the item rows, their gradients and L2 terms written out and read back:
 *   score     s_i = fri_dot(P, q_i) + ((mu + bu) + bi_i)   (eight lanes, lanes8)
 *   loss      mse, then l2s * fri_sumsq over the B copies of P (chunks of 64 floats: two
 *             rows a chunk, the same two rows each time), then over the q_i (two
 *             consecutive examples a chunk), then the biases' terms (lean_l2 on [B])
 *   gradient  dp_i = (0 + k P) + ds_i q_i, dq_i = (0 + k q_i) + ds_i P (without L2:
 *             0 + ds_i q_i, 0 + ds_i P: the memset zeros, then +=), summed from +0 in
 *             example order into the user's gradient and each row's
 *   step      as lean_batch. */
static FRI_ALWAYS_INLINE double lean_batch32(const fr_model_config *c, const fri_client_sgd *a, lean_ws *w, float *P,
                                             float *BU, float *Q, float *BI, size_t s, size_t B) {
    enum { D = 32 };
    const uint32_t *it = a->item + s;
    const v8f z = v8_splat(0.0f);
    v8f p[4];
    for (int g = 0; g < 4; g++) p[g] = v8_load(P + 8 * g);
    /* scores (mf_scores, fri_dot's lanes), and the q rows' sum of squares in chunks of two */
    double sq = 0.0;
    v8f qs = z;
    for (size_t i = 0; i < B; i++) {
        const float *q = Q + (size_t)it[i] * D;
        v8f acc = z;
        for (int g = 0; g < 4; g++) acc = acc + p[g] * v8_load(q + 8 * g);
        w->bu[i] = BU[0];
        w->bi[i] = BI[it[i]];
        w->s[i] = v8_sum1(acc);
        w->s[i] += c->mu + w->bu[i] + w->bi[i];
        if (!(i & 1)) qs = z;
        for (int g = 0; g < 4; g++) {
            v8f x = v8_load(q + 8 * g);
            qs = qs + x * x;
        }
        if ((i & 1) || i + 1 == B) sq += (double)v8_sum1(qs);
    }
    double L = lean_mse(w->ds, w->s, a->label + s, B);
    double l2s = (double)c->l2 / (double)B;
    const float k = (float)(2.0 * l2s);
    if (l2s > 0) {
        /* fri_sumsq over B copies of P: a chunk of two rows, a last chunk of one if B is odd */
        v8f two = z;
        for (int r = 0; r < 2; r++)
            for (int g = 0; g < 4; g++) two = two + p[g] * p[g];
        v8f one = z;
        for (int g = 0; g < 4; g++) one = one + p[g] * p[g];
        double sp = 0.0;
        const float c2 = v8_sum1(two), c1 = v8_sum1(one);
        for (size_t i = 0; i + 1 < B; i += 2) sp += (double)c2;
        if (B & 1) sp += (double)c1;
        L += l2s * sp;
        L += l2s * sq;
    }
    L = lean_bias_grad(c, w, B, l2s, L);
    /* gradients from +0, examples in order */
    const v8f kv = v8_splat(k);
    v8f kp[4], gp[4];
    for (int g = 0; g < 4; g++) { kp[g] = l2s > 0 ? z + kv * p[g] : z; gp[g] = z; }
    for (size_t i = 0; i < B; i++) {
        uint32_t r = it[i];
        const float *q = Q + (size_t)r * D;
        float *restrict gq = w->gq + (size_t)r * D;
        /* a row's first example this minibatch adds to the +0 the generic loop zeroes it
         * to (added here, not stored and loaded back) */
        const bool first = !w->mark[r];
        if (first) {
            w->mark[r] = 1;
            w->gb[r] = 0.0f;
        }
        const v8f d = v8_splat(w->ds[i]);
        for (int g = 0; g < 4; g++) {
            v8f qv = v8_load(q + 8 * g);
            v8f dp = kp[g] + d * qv;
            v8f dq = (l2s > 0 ? z + kv * qv : z) + d * p[g];
            gp[g] = gp[g] + dp;
            v8_store(gq + 8 * g, (first ? z : v8_load(gq + 8 * g)) + dq);
        }
    }
    float gpf[D];
    for (int g = 0; g < 4; g++) v8_store(gpf + 8 * g, gp[g]);
    lean_step(a, w, it, B, D, gpf, P, BU, Q, BI);
    return L;
}
#define LEAN_BATCH(c, a, w, P, BU, Q, BI, s, B) \
    ((c)->dim == 32 ? lean_batch32(c, a, w, P, BU, Q, BI, s, B) : lean_batch(c, a, w, P, BU, Q, BI, s, B))
#else
#define LEAN_BATCH lean_batch
#endif

/* Every epoch's minibatches, in a plain copy and one compiled for AVX2 (the same bits). */
#define LEAN_EPOCHS_BODY                                                                     \
    for (uint32_t ep = 0; ep < a->epochs; ep++)                                              \
        for (size_t s = a->starts[ep]; s < a->starts[ep + 1]; s += a->batch) {               \
            size_t B = a->starts[ep + 1] - s < a->batch ? a->starts[ep + 1] - s : a->batch;  \
            sum += LEAN_BATCH(c, a, w, P, BU, Q, BI, s, B) * (double)B;                      \
        }                                                                                    \
    return sum;
static double lean_epochs_plain(const fr_model_config *c, const fri_client_sgd *a, lean_ws *w, float *P, float *BU,
                                float *Q, float *BI, double sum) {
    LEAN_EPOCHS_BODY
}
#if FRI_MF_AVX
__attribute__((target("avx2"))) static double lean_epochs_avx(const fr_model_config *c, const fri_client_sgd *a,
                                                              lean_ws *w, float *P, float *BU, float *Q, float *BI,
                                                              double sum) {
    LEAN_EPOCHS_BODY
}
#endif

static fr_err client_sgd(const fr_model *g, const fri_client_sgd *a, double *loss_sum) {
    const fr_model_config *c = &g->cfg;
    if (g->cfg.kind != FR_MODEL_MF || c->loss != FR_LOSS_MSE) return FR_ERR_UNSUPPORTED;
    const size_t d = c->dim, L = a->L;
    /* item tables in slab order: item_factor, item_bias; user tables: user_factor, user_bias */
    const float *GQ = g->params + g->t[g->slot[ITEM_F]].offset, *GB = g->params + g->t[g->slot[ITEM_B]].offset;
    float *Q = a->out, *BI = a->out + L * d, *P = a->priv[0], *BU = a->priv[1];
    /* the rows are scattered over tables larger than L2: ask for all of them first */
    for (size_t r = 0; r < L; r++) {
        const char *q = (const char *)(GQ + (size_t)a->rows[r] * d);
        for (size_t x = 0; x < d * sizeof(float); x += 64) __builtin_prefetch(q + x);
        __builtin_prefetch(GB + a->rows[r]);
    }
    /* the generic loop steps only touched rows when every value it reads is finite: the
     * check (fri_all_finite's, an exponent of all ones) made on the values as they are copied */
    uint32_t inf = 0;
    for (size_t r = 0; r < L; r++) {
        const float *restrict src = GQ + (size_t)a->rows[r] * d;
        float *restrict dst = Q + r * d;
        for (size_t x = 0; x < d; x++) {
            uint32_t b;
            memcpy(&b, &src[x], 4);
            inf |= (uint32_t)((b & 0x7f800000u) == 0x7f800000u);
            dst[x] = src[x];
        }
        BI[r] = GB[a->rows[r]];
    }
    if (inf || !fri_all_finite(BI, L) || !fri_all_finite(P, d) || !fri_all_finite(BU, 1)) return FR_ERR_UNSUPPORTED;
    size_t most = 0;
    for (uint32_t e = 0; e < a->epochs; e++) {
        size_t n = a->starts[e + 1] - a->starts[e];
        if (n > most) most = n;
    }
    size_t Bmax = most < a->batch ? most : a->batch;
    lean_ws w;
    fr_err e = lean_carve(&w, a, Bmax ? Bmax : 1, d);
    if (e) return e;
#if FRI_MF_AVX
    if (mf_avx_allowed && __builtin_cpu_supports("avx2")) {
        *loss_sum = lean_epochs_avx(c, a, &w, P, BU, Q, BI, *loss_sum);
        return FR_OK;
    }
#endif
    *loss_sum = lean_epochs_plain(c, a, &w, P, BU, Q, BI, *loss_sum);
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
    .client_sgd = client_sgd,
};
