/* The graph family (family.h): `lightgcn`, LightGCN's propagation (He et al. 2020:
 * neighbour averaging over the user-item graph with the symmetric degree normalisation,
 * no feature transforms, no nonlinearity, the final embedding the mean of the layers')
 * restricted to what a user's own device can compute, so that the same model trains
 * centrally and federated with the user's items and its embedding private.
 *
 *   e_u^0 = p_u (private),  e_i^0 = q_i (shared)
 *   e_u^1 = d_u^-1/2 * sum_{k in N(u)} q_k          (N(u): the user's training items)
 *   u*    = (e_u^0 + e_u^1) / 2                     (the mean of the user's layers)
 *   score(u, i) = u* . q_i
 * with the BPR loss on (u, pos, neg) (or BCE on labels) and an L2 term l2 * mean over
 * the batch of |p_u|^2 + |q_pos|^2 (+ |q_neg|^2), as the bpr kind. In the loss, an
 * example whose positive is one of u's training items leaves that item out of u's
 * propagation (sum over N(u) minus it, weight (d_u - 1)^-1/2), as FISM leaves out the
 * rated item: otherwise a training positive scores |q_i|^2 / (2 sqrt d_u) from its own
 * edge, which a held-out item never does (validation HR@10 0.682 -> 0.691). Scores
 * propagate all of N(u).
 *
 * What is left out of LightGCN, and why (docs/ARCHITECTURE.md, "The graph model"): the
 * item side of each layer (e_i^1 = sum over the item's users of their p_v) and every path
 * through another user (u -> i -> v -> j), which would need other users' private
 * embeddings or their items; and the item degree in the normalisation (LightGCN's
 * 1/sqrt(d_u d_i)), which would need the item counts of every user (a securely aggregated
 * count round, not built). Every term here is a function of the user's own data and the
 * shared item table, so the loss is a sum over users: one federated round of one
 * full-batch step is one centralized full-batch step (tests/test_lightgcn.c).
 *
 * N(u) is not a parameter: the model reads it through its fr_model_graph binding
 * (model.h), which the trainer's caller, the federated client (its own users, in its
 * compact item rows) and the evaluator set. Without one, loss and score fail.
 *
 * Per batch, the propagation is done once per distinct user of the batch (a small hash
 * from user to slot), not once per example: the sum over N(u) costs d_u * dim, the
 * examples of a user share it (an example subtracts its own item), and its gradient is
 * accumulated over them and scattered to N(u) once. tests/test_lightgcn.c holds
 * this against a naive per-example reference in double.
 *
 * Layout: item_emb [n_items x dim] shared, user_emb [n_users x dim] private.
 * Parameter block in the config section: u32 dim. */
#include <math.h>
#include <string.h>

#include "core/core.h"
#include "model/family.h"
#include "model/layers.h"
#include "model/lightgcn_prop.h"

enum { ITEM_E, USER_E }; /* roles in m->slot */

static void config_default(fr_model_config *c) {
    c->dim = 64;
    c->loss = FR_LOSS_BPR;
    c->l2 = 0.0f;
}

static fr_err config_check(const fr_model_config *c) {
    if (c->dim == 0 || c->dim > 4096) return fri_fail(FR_ERR_INVALID, "lightgcn: dim %u: expected 1..4096", c->dim);
    if (c->loss != FR_LOSS_BPR && c->loss != FR_LOSS_BCE)
        return fri_fail(FR_ERR_INVALID, "lightgcn: loss %s: expected bpr or bce", fri_loss_name(c->loss));
    return FR_OK;
}

static void params_put(fri_buf *b, const fr_model_config *c) { fri_buf_u32(b, c->dim); }
static fr_err params_get(fri_rd *r, fr_model_config *c) { return fri_rd_u32(r, &c->dim, "dim"); }

static fr_err layout(fr_model *m, const fr_model_config *c) {
    fr_err e = fri_model_add_tensor(m, "item_emb", c->n_items, c->dim, FR_TENSOR_ITEM_TABLE, FRI_INIT_NORMAL,
                                    &m->slot[ITEM_E]);
    if (!e)
        e = fri_model_add_tensor(m, "user_emb", c->n_users, c->dim, FR_TENSOR_USER_TABLE, FRI_INIT_NORMAL,
                                 &m->slot[USER_E]);
    return e;
}

/* ---------------------------------------------------------------- workspace */

typedef struct lg_ws {
    uint32_t *hkey, *hval;  /* [H] open-addressing map user -> slot (key UINT32_MAX: empty) */
    size_t H;               /* power of two >= 2 * max batch */
    uint32_t *slot;         /* [B] the slot of example x's user */
    uint32_t *uniq;         /* [B] the user of each slot */
    uint32_t *deg;          /* [B] d_u of each slot */
    float *agg, *dagg;      /* [B, dim] sum_{k in N(u)} q_k of each slot, and its gradient */
    float *ustar, *dustar;  /* [B, dim] u* of each example (score: of each slot), its gradient */
    float *cx;              /* [B] example x's propagation weight (d_u or d_u - 1)^-1/2 */
    uint8_t *excl;          /* [B] example x's item is in N(u) and left out of its propagation */
    float *s, *sn, *ds, *dsn; /* [B] scores (pos, neg) and their gradients */
} lg_ws;

static size_t hash_size(size_t B) {
    size_t H = 16;
    while (H < 2 * B) H *= 2;
    return H;
}

static size_t ws_carve(void *wsp, float *arena, const fr_model_config *c, size_t B) {
    lg_ws tmp, *w = wsp ? wsp : &tmp;
    fri_carver cv = {arena, 0};
    size_t d = c->dim;
    w->H = hash_size(B);
    /* the index arrays live in the float arena: allocated storage, only ever accessed as
     * their own type, of a float's size or less */
    w->hkey = (uint32_t *)(void *)fri_carve(&cv, w->H);
    w->hval = (uint32_t *)(void *)fri_carve(&cv, w->H);
    w->slot = (uint32_t *)(void *)fri_carve(&cv, B);
    w->uniq = (uint32_t *)(void *)fri_carve(&cv, B);
    w->deg = (uint32_t *)(void *)fri_carve(&cv, B);
    w->excl = (uint8_t *)(void *)fri_carve(&cv, B);
    w->agg = fri_carve(&cv, B * d);
    w->dagg = fri_carve(&cv, B * d);
    w->ustar = fri_carve(&cv, B * d);
    w->dustar = fri_carve(&cv, B * d);
    w->cx = fri_carve(&cv, B);
    w->s = fri_carve(&cv, B); w->sn = fri_carve(&cv, B); w->ds = fri_carve(&cv, B); w->dsn = fri_carve(&cv, B);
    return cv.at;
}

static bool ws_fits(const fr_model_config *a, const fr_model_config *b) { return a->dim == b->dim; }

/* ---------------------------------------------------------------- propagation */

/* The two loops an epoch spends its time in: o[0, d) = sum of rows it[0, n) of Q, and
 * da[0, d) added to rows it[0, n) of G. Elementwise adds in a fixed order (no
 * reassociation, never fused), so the AVX2 clone GCC makes where the CPU has it gives the
 * bits of the plain one. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define FRI_LG_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define FRI_LG_CLONES
#endif
FRI_LG_CLONES static void rows_sum(float *restrict o, const float *restrict Q, const uint32_t *it, size_t n,
                                   size_t d) {
    memset(o, 0, d * sizeof *o);
    for (size_t j = 0; j < n; j++) {
        const float *q = Q + (size_t)it[j] * d;
        for (size_t c = 0; c < d; c++) o[c] += q[c];
    }
}
FRI_LG_CLONES static void rows_add(float *restrict G, const float *restrict da, const uint32_t *it, size_t n,
                                   size_t d) {
    for (size_t j = 0; j < n; j++) {
        float *g = G + (size_t)it[j] * d;
        for (size_t c = 0; c < d; c++) g[c] += da[c];
    }
}


/* The distinct users of users[0, n) get slots 0.. in order of first appearance
 * (ws->uniq), example x slot ws->slot[x]. Returns the number of slots. */
static size_t dedupe(lg_ws *w, const uint32_t *users, size_t n) {
    memset(w->hkey, 0xff, w->H * sizeof *w->hkey);
    size_t mask = w->H - 1, U = 0;
    for (size_t x = 0; x < n; x++) {
        uint32_t u = users[x];
        size_t h = ((size_t)u * 0x9E3779B1u) & mask;
        while (w->hkey[h] != UINT32_MAX && w->hkey[h] != u) h = (h + 1) & mask;
        if (w->hkey[h] == UINT32_MAX) {
            w->hkey[h] = u;
            w->hval[h] = (uint32_t)U;
            w->uniq[U++] = u;
        }
        w->slot[x] = w->hval[h];
    }
    return U;
}

/* agg and deg of each slot: sum_{k in N(u)} q_k and d_u. FR_ERR_INVALID without a graph,
 * FR_ERR_RANGE for a graph item outside the item table. */
static fr_err propagate(const fr_model *m, lg_ws *w, size_t U) {
    if (!m->graph.items)
        return fri_fail(FR_ERR_INVALID, "lightgcn: no training graph bound (fr_model_set_graph): its scores "
                        "propagate a user's training items");
    size_t d = m->cfg.dim;
    const float *Q = fri_model_data(m, m->slot[ITEM_E]);
    for (size_t k = 0; k < U; k++) {
        const uint32_t *it = NULL;
        size_t n = m->graph.items(m->graph.ctx, w->uniq[k], &it);
        for (size_t j = 0; j < n; j++)
            if (it[j] >= m->cfg.n_items)
                return fri_fail(FR_ERR_RANGE, "lightgcn: user row %u: graph item %u outside %u items", w->uniq[k],
                                it[j], m->cfg.n_items);
        rows_sum(w->agg + k * d, Q, it, n, d);
        w->deg[k] = (uint32_t)n;
    }
    return FR_OK;
}

static inline float rsqrt_n(size_t n) { return n ? (float)(1.0 / sqrt((double)n)) : 0.0f; }

/* Whether item is one of user u's training items (a linear scan: d_u integer compares,
 * against the d_u x dim of the propagation). */
static bool in_graph(const fr_model *m, uint32_t u, uint32_t item) {
    const uint32_t *it = NULL;
    size_t n = m->graph.items(m->graph.ctx, u, &it);
    for (size_t j = 0; j < n; j++)
        if (it[j] == item) return true;
    return false;
}

/* ---------------------------------------------------------------- math */

static fr_err loss_grad(const fr_model *m, void *wsp, const fr_batch *b, fr_grad *g, double *loss) {
    lg_ws *w = wsp;
    const fr_model_config *c = &m->cfg;
    size_t B = b->n, d = c->dim;
    size_t U = dedupe(w, b->users, B);
    fr_err e = propagate(m, w, U);
    if (e) return e;
    const int it_t = m->slot[ITEM_E], us_t = m->slot[USER_E];
    const float *P = fri_model_data(m, us_t), *Q = fri_model_data(m, it_t);
    bool bpr = c->loss == FR_LOSS_BPR;
    /* u* of each example: its own item, when a training item of u, is left out of the
     * propagation (the edge being predicted does not predict itself) */
    for (size_t x = 0; x < B; x++) {
        size_t k = w->slot[x];
        uint32_t u = b->users[x], i = b->items[x];
        bool ex = (bpr || b->label[x] > 0) && in_graph(m, u, i);
        w->excl[x] = ex;
        float cx = rsqrt_n(w->deg[k] - (ex ? 1u : 0u));
        w->cx[x] = cx;
        const float *p = P + (size_t)u * d, *a = w->agg + k * d, *q = Q + (size_t)i * d;
        float *us = w->ustar + x * d;
        if (ex)
            for (size_t cc = 0; cc < d; cc++) us[cc] = 0.5f * (p[cc] + cx * (a[cc] - q[cc]));
        else
            for (size_t cc = 0; cc < d; cc++) us[cc] = 0.5f * (p[cc] + cx * a[cc]);
        w->s[x] = fri_dot(us, q, d);
        if (bpr) w->sn[x] = fri_dot(us, Q + (size_t)b->neg[x] * d, d);
    }
    double L = bpr ? fri_bpr_forward_backward(g ? w->ds : NULL, g ? w->dsn : NULL, w->s, w->sn, b->weight, B)
                   : fri_bce_forward_backward(g ? w->ds : NULL, w->s, b->label, b->weight, B);
    double l2s = (double)c->l2 / (double)B;
    if (l2s > 0) {
        double sq = 0;
        for (size_t x = 0; x < B; x++) {
            sq += fri_sumsq(P + (size_t)b->users[x] * d, d) + fri_sumsq(Q + (size_t)b->items[x] * d, d);
            if (bpr) sq += fri_sumsq(Q + (size_t)b->neg[x] * d, d);
        }
        L += l2s * sq;
    }
    *loss = L;
    if (!g) return FR_OK;

    float *GQ = fri_grad_of(g, it_t), *GP = fri_grad_of(g, us_t);
    fr_rowset *rq = &g->rows[it_t], *rp = &g->rows[us_t];
    memset(w->dagg, 0, U * d * sizeof *w->dagg);
    float k2 = (float)(2.0 * l2s);
    for (size_t x = 0; x < B; x++) {
        const float *us = w->ustar + x * d;
        float *dus = w->dustar; /* one example's: [d] */
        uint32_t u = b->users[x], i = b->items[x];
        const float *q = Q + (size_t)i * d;
        float *gq = GQ + (size_t)i * d, ds = w->ds[x];
        /* score -> u* and the scored rows */
        for (size_t cc = 0; cc < d; cc++) {
            dus[cc] = ds * q[cc];
            gq[cc] += ds * us[cc] + k2 * q[cc];
        }
        fr_rowset_add(rq, i);
        if (bpr) {
            uint32_t j = b->neg[x];
            const float *qn = Q + (size_t)j * d;
            float *gn = GQ + (size_t)j * d, dsn = w->dsn[x];
            for (size_t cc = 0; cc < d; cc++) {
                dus[cc] += dsn * qn[cc];
                gn[cc] += dsn * us[cc] + k2 * qn[cc];
            }
            fr_rowset_add(rq, j);
        }
        /* u* -> p_u (1/2), the slot's sum (cx / 2), and minus the left-out item */
        const float *p = P + (size_t)u * d;
        float *gp = GP + (size_t)u * d, *da = w->dagg + (size_t)w->slot[x] * d, h = 0.5f * w->cx[x];
        for (size_t cc = 0; cc < d; cc++) {
            gp[cc] += 0.5f * dus[cc] + k2 * p[cc];
            da[cc] += h * dus[cc];
        }
        if (w->excl[x])
            for (size_t cc = 0; cc < d; cc++) gq[cc] -= h * dus[cc];
        fr_rowset_add(rp, u);
    }
    /* each slot's sum -> every q_k of N(u) */
    for (size_t k = 0; k < U; k++) {
        const float *da = w->dagg + k * d;
        const uint32_t *it = NULL;
        size_t n = m->graph.items(m->graph.ctx, w->uniq[k], &it);
        rows_add(GQ, da, it, n, d);
        for (size_t j = 0; j < n; j++) fr_rowset_add(rq, it[j]);
    }
    return FR_OK;
}

static void score(const fr_model *m, void *wsp, const uint32_t *users, const uint32_t *items, size_t n, float *out) {
    lg_ws *w = wsp;
    size_t d = m->cfg.dim;
    size_t U = dedupe(w, users, n);
    if (propagate(m, w, U)) { /* a bad graph item (fr_model_score checked that one is bound) */
        for (size_t x = 0; x < n; x++) out[x] = NAN;
        return;
    }
    const float *P = fri_model_data(m, m->slot[USER_E]), *Q = fri_model_data(m, m->slot[ITEM_E]);
    for (size_t k = 0; k < U; k++) { /* u* = (p_u + d_u^-1/2 sum_{N(u)} q) / 2 */
        const float *p = P + (size_t)w->uniq[k] * d, *a = w->agg + k * d;
        float *us = w->ustar + k * d, cu = rsqrt_n(w->deg[k]);
        for (size_t cc = 0; cc < d; cc++) us[cc] = 0.5f * (p[cc] + cu * a[cc]);
    }
    for (size_t x = 0; x < n; x++) out[x] = fri_dot(w->ustar + (size_t)w->slot[x] * d, Q + (size_t)items[x] * d, d);
}

static const fri_model_kind_def kinds[] = {{"lightgcn", false, false}};

const fri_model_family fri_model_family_lightgcn = {
    .name = "lightgcn",
    .kinds = kinds,
    .n_kinds = 1,
    .init_std = 0.1f,
    .needs_graph = true,
    .config_default = config_default,
    .config_check = config_check,
    .params_put = params_put,
    .params_get = params_get,
    .layout = layout,
    .ws_size = sizeof(lg_ws),
    .ws_carve = ws_carve,
    .ws_fits = ws_fits,
    .loss_grad = loss_grad,
    .score = score,
};

/* ================================================================ lightgcn-full
 *
 * LightGCN itself (He et al. 2020, eqs. 3, 4, 6), trained centrally: the user-item graph
 * of every user's training items, K layers of propagation over its symmetrically
 * normalised adjacency, the final embedding of every node the mean of its K + 1 layers:
 *
 *   A = D^-1/2 [[0, R^T], [R, 0]] D^-1/2   (R: users x items, D: the node degrees)
 *   E^0 = (q_0 .. q_{I-1}, p_0 .. p_{U-1}) (items first, as in the slab)
 *   E^{l+1} = A E^l,   F = (E^0 + ... + E^K) / (K + 1)
 *   score(u, i) = F_u . F_i
 * with BPR on (u, pos, neg) (or BCE on labels) and the L2 term of `lightgcn` on the
 * layer-0 rows of the batch. A is symmetric, so the gradient of the loss in E^0 is
 * (dF + A dF + ... + A^K dF) / (K + 1): the backward pass is the forward's propagation
 * applied to dF. Every node's row depends on every node within K hops, so each batch
 * propagates the whole graph (2 K sweeps over the edges, forward and backward), as
 * RecBole's LightGCN does; the gradient reaches every row (all are marked).
 *
 * Federated, this model is not available: a client knows only its own edges, so neither
 * an item's degree nor its other users' rows (the item side of a layer, every path
 * u -> i -> v -> j) can be computed on it. `lightgcn` (above) is the federated
 * approximation: one user-side layer over the user's own items (docs/ARCHITECTURE.md,
 * "The graph model"). The kind is marked central_only; the run configuration refuses it
 * federated.
 *
 * Scores reuse the last propagation while the parameters and the graph binding are
 * those it was computed from: the evaluator scores a user's candidates a call at a time.
 * The workspace keeps a copy of E^0 and compares it at every call, exact whoever writes
 * the slab (fr_model_params hands out a pointer the caller may keep and write through),
 * but O(N d) a call: under a hold (fri_model_ws_hold: the evaluator's, for the length of
 * an evaluation, in which the model is not written) only the first call compares.
 *
 * Layout as `lightgcn`. Parameter block: u32 dim, u32 K (n_layers). */

static void full_config_default(fr_model_config *c) {
    c->dim = 64;
    c->n_layers = 2; /* RecBole's default; the paper uses 3 */
    c->loss = FR_LOSS_BPR;
    c->l2 = 0.0f;
}

static fr_err full_config_check(const fr_model_config *c) {
    fr_err e = config_check(c);
    if (e) return e;
    if (c->n_layers > 16) return fri_fail(FR_ERR_INVALID, "lightgcn-full: layers %u: expected 0..16", c->n_layers);
    return FR_OK;
}

static void full_params_put(fri_buf *b, const fr_model_config *c) {
    fri_buf_u32(b, c->dim);
    fri_buf_u32(b, c->n_layers);
}
static fr_err full_params_get(fri_rd *r, fr_model_config *c) {
    fr_err e = fri_rd_u32(r, &c->dim, "dim");
    if (!e) e = fri_rd_u32(r, &c->n_layers, "layers");
    return e;
}

/* The bound graph as the propagation reads it, built when the binding changes: each
 * user's list copied (ustart, uitems), the transpose (istart, iusers: each item's users in
 * user order), and the lists the binding gave (uptr and the counts), by which a later call
 * tells that the binding still gives the same lists. One allocation behind the
 * workspace, freed with it (full_ws_release). */
typedef struct lgf_graph_copy {
    size_t (*fn)(const void *, uint32_t, const uint32_t **); /* the binding it was built from */
    const void *ctx;
    uint32_t n_users, n_items;
    size_t E, cap;           /* edges, and the edges the block has room for */
    const uint32_t **uptr;   /* [n_users] the binding's list of each user */
    uint32_t *ustart;        /* [n_users + 1] */
    uint32_t *istart;        /* [n_items + 1] */
    uint32_t *uitems;        /* [E] */
    uint32_t *iusers;        /* [E] */
} lgf_graph_copy;

typedef struct lgf_ws {
    size_t N;              /* nodes: n_items + n_users */
    float *dinv;           /* [N] D^-1/2 of each node (0 for a node without an edge) */
    float *fin;            /* [N, dim] F */
    float *cur, *nxt;      /* [N, dim] a layer and the next */
    float *dfin;           /* [N, dim] dLoss/dF, then the sum of A^l dF */
    float *e0;             /* [N, dim] the E^0 that fin was computed from (score's cache) */
    float *s, *sn, *ds, *dsn; /* [B] */
    int cached;            /* fin is F of e0 under graph (gfn, gctx) */
    int held;              /* under a hold (full_ws_hold): the model is not written */
    int held_ok;           /* under the hold, the cache was found or made current for src */
    const fr_model *src;   /* the model it was last found or made current for */
    size_t (*gfn)(const void *, uint32_t, const uint32_t **);
    const void *gctx;
    lgf_graph_copy *gc;    /* the graph and dinv, as of the last call (NULL: none yet) */
} lgf_ws;

static size_t full_ws_carve(void *wsp, float *arena, const fr_model_config *c, size_t B) {
    lgf_ws tmp, *w = wsp ? wsp : &tmp;
    fri_carver cv = {arena, 0};
    size_t N = (size_t)c->n_items + c->n_users, d = c->dim;
    w->N = N;
    w->dinv = fri_carve(&cv, N);
    w->fin = fri_carve(&cv, N * d);
    w->cur = fri_carve(&cv, N * d);
    w->nxt = fri_carve(&cv, N * d);
    w->dfin = fri_carve(&cv, N * d);
    w->e0 = fri_carve(&cv, N * d);
    w->s = fri_carve(&cv, B); w->sn = fri_carve(&cv, B); w->ds = fri_carve(&cv, B); w->dsn = fri_carve(&cv, B);
    return cv.at;
}

static bool full_ws_fits(const fr_model_config *a, const fr_model_config *b) {
    return a->dim == b->dim && a->n_users == b->n_users && a->n_items == b->n_items;
}

static void full_ws_release(void *wsp) {
    lgf_ws *w = wsp;
    fri_free(w->gc);
    w->gc = NULL;
}

static void full_ws_hold(void *wsp, bool on) {
    lgf_ws *w = wsp;
    w->held = on;
    w->held_ok = 0; /* a new hold checks once: the model may have changed before it */
}

static size_t copy_items(const void *ctx, uint32_t u, const uint32_t **items) {
    const lgf_graph_copy *c = ctx;
    *items = c->uitems + c->ustart[u];
    return c->ustart[u + 1] - c->ustart[u];
}

/* Whether w->gc holds the bound graph: the same binding giving each user the same list
 * (address and count) as when it was copied. A binding whose lists change in place under
 * the same addresses is read as unchanged (the score cache reads a binding so too). */
static bool graph_copy_current(const fr_model *m, const lgf_ws *w) {
    const lgf_graph_copy *c = w->gc;
    if (!c || c->fn != m->graph.items || c->ctx != m->graph.ctx || c->n_users != m->cfg.n_users ||
        c->n_items != m->cfg.n_items)
        return false;
    for (uint32_t u = 0; u < c->n_users; u++) {
        const uint32_t *it = NULL;
        size_t n = m->graph.items(m->graph.ctx, u, &it);
        if (it != c->uptr[u] || n != c->ustart[u + 1] - c->ustart[u]) return false;
    }
    return true;
}

/* w->gc and dinv of every node from the bound graph, unless they are current.
 * FR_ERR_INVALID without a graph, FR_ERR_RANGE for an item outside the table,
 * FR_ERR_NOMEM. */
static fr_err full_degrees(const fr_model *m, lgf_ws *w) {
    if (!m->graph.items)
        return fri_fail(FR_ERR_INVALID, "lightgcn-full: no training graph bound (fr_model_set_graph): it "
                        "propagates over every user's training items");
    if (graph_copy_current(m, w)) return FR_OK;
    const size_t I = m->cfg.n_items, U = m->cfg.n_users;
    size_t E = 0;
    for (uint32_t u = 0; u < U; u++) {
        const uint32_t *it = NULL;
        size_t n = m->graph.items(m->graph.ctx, u, &it);
        for (size_t j = 0; j < n; j++)
            if (it[j] >= I)
                return fri_fail(FR_ERR_RANGE, "lightgcn-full: user row %u: graph item %u outside %zu items", u,
                                it[j], I);
        E += n;
    }
    if (E > UINT32_MAX) return fri_fail(FR_ERR_RANGE, "lightgcn-full: %zu edges: expected at most 2^32 - 1", E);
    lgf_graph_copy *c = w->gc;
    if (!c || c->n_users != U || c->n_items != I || c->cap < E) { /* one block: header, pointers, then u32s */
        fri_free(w->gc);
        w->gc = NULL;
        size_t hdr = (sizeof *c + 63) / 64 * 64, ptrs = U * sizeof *c->uptr;
        c = fri_malloc(hdr + ptrs + ((U + 1) + (I + 1) + 2 * E) * sizeof(uint32_t));
        if (!c) return FR_ERR_NOMEM;
        c->uptr = (const uint32_t **)(void *)((char *)c + hdr);
        c->ustart = (uint32_t *)(void *)((char *)c + hdr + ptrs);
        c->istart = c->ustart + U + 1;
        c->uitems = c->istart + I + 1;
        c->iusers = c->uitems + E;
        c->cap = E;
        c->n_users = (uint32_t)U;
        c->n_items = (uint32_t)I;
        w->gc = c;
    }
    c->fn = m->graph.items;
    c->ctx = m->graph.ctx;
    c->E = E;
    c->iusers = c->uitems + E;
    memset(c->istart, 0, (I + 1) * sizeof *c->istart);
    c->ustart[0] = 0;
    for (uint32_t u = 0; u < U; u++) {
        const uint32_t *it = NULL;
        size_t n = m->graph.items(m->graph.ctx, u, &it);
        c->uptr[u] = it;
        memcpy(c->uitems + c->ustart[u], it, n * sizeof *it);
        c->ustart[u + 1] = c->ustart[u] + (uint32_t)n;
        for (size_t j = 0; j < n; j++) c->istart[it[j] + 1]++;
    }
    for (size_t i = 0; i < I; i++) c->istart[i + 1] += c->istart[i];
    uint32_t *fill = c->iusers; /* each item's users, in user order: the next slot of item i is
                                   istart[i] + (users placed so far), counted in istart itself */
    for (uint32_t u = 0; u < U; u++)
        for (uint32_t k = c->ustart[u]; k < c->ustart[u + 1]; k++) fill[c->istart[c->uitems[k]]++] = u;
    for (size_t i = I; i > 0; i--) c->istart[i] = c->istart[i - 1]; /* back to the starts */
    c->istart[0] = 0;
    for (size_t i = 0; i < I; i++) {
        size_t n = c->istart[i + 1] - c->istart[i];
        w->dinv[i] = n ? (float)(1.0 / sqrt((double)n)) : 0.0f;
    }
    for (size_t u = 0; u < U; u++) {
        size_t n = c->ustart[u + 1] - c->ustart[u]; /* counts are exact in a double */
        w->dinv[I + u] = n ? (float)(1.0 / sqrt((double)n)) : 0.0f;
    }
    return FR_OK;
}

static fri_lgf_graph lgf_graph(const fr_model *m, const lgf_ws *w) {
    fri_lgf_graph g = {copy_items, w->gc, m->cfg.n_users, m->cfg.n_items, m->cfg.dim, w->dinv, w->gc->istart,
                       w->gc->iusers, w->gc->ustart, w->gc->uitems};
    return g;
}

static bool lgf_fast = true; /* tests: false runs the model on the naive propagation */

bool fri_lgf_allow_fast(bool allow) {
    bool was = lgf_fast;
    lgf_fast = allow;
    return was;
}

/* ---- the naive propagation: the kernel of before, kept as the reference of the fast one
 * (lightgcn_prop.h; tests/test_lightgcn_full.c holds them together) */

/* out = A x over the nodes (x, out: [N, dim]); a sweep over each user's edges in user
 * order, each edge adding (dinv_u dinv_i) x to both of its ends. */
static void lgf_spmm_naive(const fri_lgf_graph *g, float *restrict out, const float *restrict x) {
    const size_t I = g->n_items, d = g->dim;
    memset(out, 0, (I + g->n_users) * d * sizeof *out);
    for (uint32_t u = 0; u < g->n_users; u++) {
        const uint32_t *it = NULL;
        size_t n = g->items(g->ctx, u, &it);
        const size_t pu = I + u;
        const float du = g->dinv[pu];
        float *ou = out + pu * d;
        const float *xu = x + pu * d;
        for (size_t j = 0; j < n; j++) {
            const size_t i = it[j];
            const float a = du * g->dinv[i];
            float *oi = out + i * d;
            const float *xi = x + i * d;
            for (size_t c = 0; c < d; c++) {
                ou[c] += a * xi[c];
                oi[c] += a * xu[c];
            }
        }
    }
}

void fri_lgf_smooth_naive(const fri_lgf_graph *g, uint32_t K, float *acc, float *add_items, float *add_users,
                          float *cur, float *nxt) {
    const size_t nI = (size_t)g->n_items * g->dim, nd = nI + (size_t)g->n_users * g->dim;
    memcpy(cur, acc, nd * sizeof *acc);
    for (uint32_t l = 0; l < K; l++) {
        lgf_spmm_naive(g, nxt, cur);
        for (size_t k = 0; k < nd; k++) acc[k] += nxt[k];
        float *t = cur;
        cur = nxt;
        nxt = t;
    }
    const float s = 1.0f / (float)(K + 1);
    for (size_t k = 0; k < nd; k++) acc[k] *= s;
    if (!add_items) return;
    for (size_t k = 0; k < nI; k++) add_items[k] += acc[k];
    for (size_t k = nI; k < nd; k++) add_users[k - nI] += acc[k];
}

/* ---- the fast propagation
 *
 * A x = D^-1/2 Adj (D^-1/2 x): with y = D^-1/2 x, a layer sums rows of y over each node's
 * edges, S_u = sum_{i in N(u)} y_i over the user's list and S_i = sum_{u in N(i)} y_u
 * over the item's (the transposed lists), then E^{l+1} = D^-1/2 S. Both sides are
 * gathers into register accumulators (one add per edge and column, no multiply, no
 * store), the next rows prefetched; each row, once summed, gives its E^{l+1}, adds it
 * to the layer mean, writes the next layer's y (D^-1/2 E^{l+1}, into the other y
 * buffer), and after the last layer is divided by K + 1 and stored or added into the
 * gradient, all in the same pass. The columns go in blocks of 64 (four 16-float vectors:
 * AVX-512 registers in the avx512f clone), then 16, then one at a time; every column
 * sees the same adds in the same order in each, so neither the blocking nor the clone
 * changes the bits. */

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define FRI_LGF_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define FRI_LGF_CLONES
#endif

#if defined(__GNUC__)
#define LGF_V16 1
#ifndef LGF_AHEAD
#define LGF_AHEAD 12
#endif
typedef float lgf_v16 __attribute__((vector_size(64)));
/* static and inlined: no call passes a vector, so no ABI to keep */
#pragma GCC diagnostic ignored "-Wpsabi"
static inline __attribute__((always_inline)) lgf_v16 v16_ld(const float *p) {
    lgf_v16 v;
    memcpy(&v, p, sizeof v);
    return v;
}
/* a macro, not a function: a 64-byte vector passed by value draws GCC's ABI note */
#define v16_st(p, v)                                                                                               \
    do {                                                                                                           \
        const lgf_v16 v16_t_ = (v);                                                                                \
        memcpy((p), &v16_t_, sizeof v16_t_);                                                                       \
    } while (0)
#else
#define LGF_V16 0
#endif

/* Row v's columns [c, c + n) of E^{l+1} = dv S (S in e, overwritten): the mean's sum
 * and y, or after the last layer (last) the mean times sc into acc or added into add. */
static inline __attribute__((always_inline)) void lgf_finish(float *restrict e, size_t n, float dv, float *restrict f,
                                                              float *restrict yv, float *restrict add, bool last,
                                                              float sc) {
    for (size_t c = 0; c < n; c++) e[c] = dv * e[c];
    if (!last) {
        for (size_t c = 0; c < n; c++) {
            f[c] += e[c];
            yv[c] = dv * e[c];
        }
    } else if (add) {
        for (size_t c = 0; c < n; c++) add[c] += (f[c] + e[c]) * sc;
    } else {
        for (size_t c = 0; c < n; c++) f[c] = (f[c] + e[c]) * sc;
    }
}

/* Row v of the next layer from the rows base + L[0, n) of yin: S = their sum (in
 * registers, 64 columns at a time), then lgf_finish into acc's row f, yout's row yv and
 * add's row. L[0, nrem) may be read (the lists are one array): the rows LGF_AHEAD
 * entries on are prefetched, into the next node's list. */
static inline __attribute__((always_inline)) void lgf_gather(const float *restrict yin, size_t base, const uint32_t *L,
                                                              size_t n, size_t nrem, size_t d, float dv,
                                                              float *restrict f, float *restrict yv,
                                                              float *restrict add, bool last, float sc) {
    float tmp[64];
    size_t c = 0;
#if LGF_V16
    for (; c + 64 <= d; c += 64) {
        lgf_v16 a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
        for (size_t j = 0; j < n; j++) {
            const float *r = yin + (base + L[j]) * d + c;
            if (j + LGF_AHEAD < nrem) { /* across the end of the list: the next node's rows */
                const float *p = yin + (base + L[j + LGF_AHEAD]) * d + c;
                __builtin_prefetch(p);
                __builtin_prefetch(p + 16);
                __builtin_prefetch(p + 32);
                __builtin_prefetch(p + 48);
            }
            a0 += v16_ld(r);
            a1 += v16_ld(r + 16);
            a2 += v16_ld(r + 32);
            a3 += v16_ld(r + 48);
        }
        v16_st(tmp, a0);
        v16_st(tmp + 16, a1);
        v16_st(tmp + 32, a2);
        v16_st(tmp + 48, a3);
        lgf_finish(tmp, 64, dv, f + c, yv + c, add ? add + c : NULL, last, sc);
    }
    for (; c + 16 <= d; c += 16) {
        lgf_v16 a0 = {0};
        for (size_t j = 0; j < n; j++) a0 += v16_ld(yin + (base + L[j]) * d + c);
        v16_st(tmp, a0);
        lgf_finish(tmp, 16, dv, f + c, yv + c, add ? add + c : NULL, last, sc);
    }
#endif
    for (; c < d; c++) {
        float a = 0.0f;
        for (size_t j = 0; j < n; j++) a += yin[(base + L[j]) * d + c];
        tmp[0] = a;
        lgf_finish(tmp, 1, dv, f + c, yv + c, add ? add + c : NULL, last, sc);
    }
}

/* One layer, by gathers on both sides: yin holds D^-1/2 E^l, yout gets D^-1/2 E^{l+1}
 * (not written after the last layer); acc gains E^{l+1}, or after the last layer becomes
 * (acc + E^{l+1}) * sc or has that added into add_items/add_users. */
FRI_LGF_CLONES static void lgf_layer(const fri_lgf_graph *g, float *restrict acc, const float *restrict yin,
                                       float *restrict yout, float *add_items, float *add_users, bool last,
                                       float sc) {
    const size_t I = g->n_items, d = g->dim;
    const size_t U = g->n_users, E = g->ustart[U];
    for (size_t u = 0; u < U; u++) {
        const size_t pu = I + u, j0 = g->ustart[u];
        lgf_gather(yin, 0, g->uitems + j0, g->ustart[u + 1] - j0, E - j0, d, g->dinv[pu], acc + pu * d,
                   yout + pu * d, add_users ? add_users + u * d : NULL, last, sc);
    }
    for (size_t i = 0; i < I; i++) {
        const size_t j0 = g->istart[i];
        lgf_gather(yin, I, g->iusers + j0, g->istart[i + 1] - j0, E - j0, d, g->dinv[i], acc + i * d, yout + i * d,
                   add_items ? add_items + i * d : NULL, last, sc);
    }
}

/* fri_lgf_smooth's body: static, as a cloned function's resolver of an extern one would
 * be an exported symbol (tests/exports.sh) */
FRI_LGF_CLONES static void lgf_smooth(const fri_lgf_graph *g, uint32_t K, float *acc, float *add_items,
                                      float *add_users, float *y, float *s) {
    const size_t I = g->n_items, d = g->dim, N = I + g->n_users;
    const float sc = 1.0f / (float)(K + 1);
    if (K == 0) {
        for (size_t v = 0; v < N; v++) {
            float *f = acc + v * d, *a = !add_items ? NULL : v < I ? add_items + v * d : add_users + (v - I) * d;
            for (size_t c = 0; c < d; c++) {
                if (a) a[c] += f[c] * sc;
                else f[c] *= sc;
            }
        }
        return;
    }
    for (size_t v = 0; v < N; v++) {
        const float dv = g->dinv[v];
        for (size_t c = 0; c < d; c++) y[v * d + c] = dv * acc[v * d + c];
    }
    for (uint32_t l = 0; l < K; l++) {
        lgf_layer(g, acc, y, s, add_items, add_users, l + 1 == K, sc);
        float *t = y;
        y = s;
        s = t;
    }
}

void fri_lgf_smooth(const fri_lgf_graph *g, uint32_t K, float *acc, float *add_items, float *add_users, float *y,
                    float *s) {
    lgf_smooth(g, K, acc, add_items, add_users, y, s);
}

/* w->fin = F of the model's parameters. */
static fr_err full_forward(const fr_model *m, lgf_ws *w) {
    fr_err e = full_degrees(m, w);
    if (e) return e;
    const size_t I = m->cfg.n_items, d = m->cfg.dim;
    memcpy(w->fin, fri_model_data(m, m->slot[ITEM_E]), I * d * sizeof *w->fin);
    memcpy(w->fin + I * d, fri_model_data(m, m->slot[USER_E]), (size_t)m->cfg.n_users * d * sizeof *w->fin);
    fri_lgf_graph gr = lgf_graph(m, w);
    (lgf_fast ? fri_lgf_smooth : fri_lgf_smooth_naive)(&gr, m->cfg.n_layers, w->fin, NULL, NULL, w->cur, w->nxt);
    return FR_OK;
}

FRI_LGF_CLONES static fr_err full_loss_grad(const fr_model *m, void *wsp, const fr_batch *b, fr_grad *g, double *loss) {
    lgf_ws *w = wsp;
    const fr_model_config *c = &m->cfg;
    w->cached = 0; /* fin is overwritten, and the parameters are about to change */
    fr_err e = full_forward(m, w);
    if (e) return e;
    const size_t B = b->n, d = c->dim, I = c->n_items;
    const bool bpr = c->loss == FR_LOSS_BPR;
    const float *F = w->fin;
    for (size_t x = 0; x < B; x++) {
        const float *fu = F + (I + b->users[x]) * d;
        w->s[x] = fri_dot(fu, F + (size_t)b->items[x] * d, d);
        if (bpr) w->sn[x] = fri_dot(fu, F + (size_t)b->neg[x] * d, d);
    }
    double L = bpr ? fri_bpr_forward_backward(g ? w->ds : NULL, g ? w->dsn : NULL, w->s, w->sn, b->weight, B)
                   : fri_bce_forward_backward(g ? w->ds : NULL, w->s, b->label, b->weight, B);
    const int it_t = m->slot[ITEM_E], us_t = m->slot[USER_E];
    const float *P = fri_model_data(m, us_t), *Q = fri_model_data(m, it_t);
    double l2s = (double)c->l2 / (double)B;
    if (l2s > 0) {
        double sq = 0;
        for (size_t x = 0; x < B; x++) {
            sq += fri_sumsq(P + (size_t)b->users[x] * d, d) + fri_sumsq(Q + (size_t)b->items[x] * d, d);
            if (bpr) sq += fri_sumsq(Q + (size_t)b->neg[x] * d, d);
        }
        L += l2s * sq;
    }
    *loss = L;
    if (!g) return FR_OK;

    /* dF of the scored rows, then through the propagation to E^0 */
    float *dF = w->dfin;
    memset(dF, 0, w->N * d * sizeof *dF);
    for (size_t x = 0; x < B; x++) {
        const size_t pu = I + b->users[x], i = b->items[x];
        const float *fu = F + pu * d, *fi = F + i * d, ds = w->ds[x];
        float *gu = dF + pu * d, *gi = dF + i * d;
        for (size_t cc = 0; cc < d; cc++) {
            gu[cc] += ds * fi[cc];
            gi[cc] += ds * fu[cc];
        }
        if (bpr) {
            const size_t j = b->neg[x];
            const float *fj = F + j * d, dsn = w->dsn[x];
            float *gj = dF + j * d;
            for (size_t cc = 0; cc < d; cc++) {
                gu[cc] += dsn * fj[cc];
                gj[cc] += dsn * fu[cc];
            }
        }
    }
    float *GQ = fri_grad_of(g, it_t), *GP = fri_grad_of(g, us_t);
    fri_lgf_graph gr = lgf_graph(m, w);
    /* dE^0 = M dF, added into g */
    (lgf_fast ? fri_lgf_smooth : fri_lgf_smooth_naive)(&gr, c->n_layers, dF, GQ, GP, w->cur, w->nxt);
    if (l2s > 0) {
        float k2 = (float)(2.0 * l2s);
        for (size_t x = 0; x < B; x++) {
            const uint32_t u = b->users[x], i = b->items[x];
            for (size_t cc = 0; cc < d; cc++) {
                GP[(size_t)u * d + cc] += k2 * P[(size_t)u * d + cc];
                GQ[(size_t)i * d + cc] += k2 * Q[(size_t)i * d + cc];
            }
            if (bpr) {
                const uint32_t j = b->neg[x];
                for (size_t cc = 0; cc < d; cc++) GQ[(size_t)j * d + cc] += k2 * Q[(size_t)j * d + cc];
            }
        }
    }
    for (uint32_t i = 0; i < I; i++) fr_rowset_add(&g->rows[it_t], i);
    for (uint32_t u = 0; u < c->n_users; u++) fr_rowset_add(&g->rows[us_t], u);
    return FR_OK;
}

static void full_score(const fr_model *m, void *wsp, const uint32_t *users, const uint32_t *items, size_t n,
                       float *out) {
    lgf_ws *w = wsp;
    const size_t I = m->cfg.n_items, d = m->cfg.dim, nI = I * d, nU = (size_t)m->cfg.n_users * d;
    const float *Q = fri_model_data(m, m->slot[ITEM_E]), *P = fri_model_data(m, m->slot[USER_E]);
    bool hit = w->cached && w->gfn == m->graph.items && w->gctx == m->graph.ctx &&
               ((w->held && w->held_ok && w->src == m) ||
                (!memcmp(w->e0, Q, nI * sizeof *Q) && !memcmp(w->e0 + nI, P, nU * sizeof *P)));
    if (!hit) {
        w->cached = 0;
        w->held_ok = 0;
        if (full_forward(m, w)) { /* a bad graph item (fr_model_score checked that one is bound) */
            for (size_t x = 0; x < n; x++) out[x] = NAN;
            return;
        }
        memcpy(w->e0, Q, nI * sizeof *Q);
        memcpy(w->e0 + nI, P, nU * sizeof *P);
        w->gfn = m->graph.items;
        w->gctx = m->graph.ctx;
        w->cached = 1;
    }
    w->held_ok = w->held;
    w->src = m;
    for (size_t x = 0; x < n; x++)
        out[x] = fri_dot(w->fin + (I + users[x]) * d, w->fin + (size_t)items[x] * d, d);
}

static const fri_model_kind_def full_kinds[] = {{"lightgcn-full", false, false, true}};

const fri_model_family fri_model_family_lightgcn_full = {
    .name = "lightgcn-full",
    .kinds = full_kinds,
    .n_kinds = 1,
    .init_std = 0.1f,
    .needs_graph = true,
    .config_default = full_config_default,
    .config_check = full_config_check,
    .params_put = full_params_put,
    .params_get = full_params_get,
    .layout = layout,
    .ws_size = sizeof(lgf_ws),
    .ws_carve = full_ws_carve,
    .ws_fits = full_ws_fits,
    .ws_release = full_ws_release,
    .ws_hold = full_ws_hold,
    .loss_grad = full_loss_grad,
    .score = full_score,
};
