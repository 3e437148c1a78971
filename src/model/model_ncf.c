/* The neural collaborative filtering family (family.h): `gmf` (logit = w.(p_u * q_i) + b),
 * `mlp` (logit = w.MLP([p_u, q_i]) + b, ReLU layers) and `neumf` (logit = w.[p_u * q_i,
 * MLP([p'_u, q'_i])] + b), trained with BCE on 0/1 labels, as the NCF paper and the
 * PyTorch anchor.
 * Layout: item_gmf [n_items x dim] (gmf, neumf), item_mlp [n_items x mlp_dim] and
 * mlp.l.weight [layers[l] x in] / mlp.l.bias (mlp, neumf), out.weight [1 x head] /
 * out.bias shared; then user_gmf, user_mlp private. Embeddings N(0, std), MLP weights
 * xavier_uniform, the output layer kaiming_uniform(a=1), biases 0.
 * Parameter block in the config section: gmf u32 dim; mlp u32 mlp_dim, u32 n_layers,
 * u32 layers[n_layers]; neumf u32 dim, then as mlp. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/core.h"
#include "model/family.h"
#include "model/layers.h"

enum { MAXL = FR_MODEL_MAX_LAYERS };

/* roles in m->slot */
enum { GMF_ITEM, GMF_USER, MLP_ITEM, MLP_USER, OUT_W, OUT_B, LW0, LB0 = LW0 + MAXL };
#define LW(l) (LW0 + (int)(l))
#define LB(l) (LB0 + (int)(l))
_Static_assert(LB0 + MAXL <= FRI_MODEL_MAX_SLOTS, "NCF roles fit the slot table");

static int has_gmf(const fr_model_config *c) { return c->kind == FR_MODEL_GMF || c->kind == FR_MODEL_NEUMF; }
static int has_mlp(const fr_model_config *c) { return c->kind == FR_MODEL_MLP || c->kind == FR_MODEL_NEUMF; }

/* ---------------------------------------------------------------- config */

static void config_default(fr_model_config *c) {
    c->dim = 8;
    c->mlp_dim = 32;
    c->n_layers = 3;
    c->layers[0] = 32;
    c->layers[1] = 16;
    c->layers[2] = 8;
    c->loss = FR_LOSS_BCE;
}

static fr_err config_check(const fr_model_config *c) {
    const char *k = fr_model_kind_name(c->kind);
    if (has_gmf(c) && (c->dim == 0 || c->dim > 4096))
        return fri_fail(FR_ERR_INVALID, "%s: dim %u: expected 1..4096", k, c->dim);
    if (has_mlp(c)) {
        if (c->mlp_dim == 0 || c->mlp_dim > 4096)
            return fri_fail(FR_ERR_INVALID, "%s: mlp_dim %u: expected 1..4096", k, c->mlp_dim);
        if (c->n_layers == 0 || c->n_layers > FR_MODEL_MAX_LAYERS)
            return fri_fail(FR_ERR_INVALID, "%s: n_layers %u: expected 1..%d", k, c->n_layers,
                            FR_MODEL_MAX_LAYERS);
        for (uint32_t l = 0; l < c->n_layers; l++)
            if (c->layers[l] == 0 || c->layers[l] > 4096)
                return fri_fail(FR_ERR_INVALID, "%s: layers[%u] = %u: expected 1..4096", k, l,
                                c->layers[l]);
    }
    if (c->loss != FR_LOSS_BCE)
        return fri_fail(FR_ERR_INVALID, "%s: loss %s: the NCF models are trained with bce", k,
                        fri_loss_name(c->loss));
    return FR_OK;
}

static void params_put(fri_buf *b, const fr_model_config *c) {
    if (has_gmf(c)) fri_buf_u32(b, c->dim);
    if (has_mlp(c)) {
        fri_buf_u32(b, c->mlp_dim);
        fri_buf_u32(b, c->n_layers);
        for (uint32_t l = 0; l < c->n_layers && l < MAXL; l++) fri_buf_u32(b, c->layers[l]);
    }
}

static fr_err params_get(fri_rd *r, fr_model_config *c) {
    fr_err e = FR_OK;
    if (has_gmf(c) && (e = fri_rd_u32(r, &c->dim, "dim"))) return e;
    if (!has_mlp(c)) return FR_OK;
    if ((e = fri_rd_u32(r, &c->mlp_dim, "mlp_dim")) || (e = fri_rd_u32(r, &c->n_layers, "n_layers"))) return e;
    if (c->n_layers == 0 || c->n_layers > MAXL)
        return fri_fail(FR_ERR_FORMAT, "%s: %s: n_layers %u: expected 1..%d", r->name, r->kind, c->n_layers, MAXL);
    memset(c->layers, 0, sizeof c->layers);
    for (uint32_t l = 0; l < c->n_layers; l++)
        if ((e = fri_rd_u32(r, &c->layers[l], "layers"))) return e;
    return FR_OK;
}

/* ---------------------------------------------------------------- layout */

static fr_err layout(fr_model *m, const fr_model_config *c) {
    fr_err e = FR_OK;
#define ADD(role, name, r, cc, kind, init) \
    do { if ((e = fri_model_add_tensor(m, name, r, cc, kind, init, &m->slot[role])) != FR_OK) return e; } while (0)
    /* shared */
    if (has_gmf(c)) ADD(GMF_ITEM, "item_gmf", c->n_items, c->dim, FR_TENSOR_ITEM_TABLE, FRI_INIT_NORMAL);
    uint32_t head = has_gmf(c) ? c->dim : 0;
    if (has_mlp(c)) {
        ADD(MLP_ITEM, "item_mlp", c->n_items, c->mlp_dim, FR_TENSOR_ITEM_TABLE, FRI_INIT_NORMAL);
        uint32_t in = 2 * c->mlp_dim;
        for (uint32_t l = 0; l < c->n_layers; l++) {
            char nm[FR_TENSOR_NAME_MAX];
            snprintf(nm, sizeof nm, "mlp.%u.weight", l);
            ADD(LW(l), nm, c->layers[l], in, FR_TENSOR_DENSE, FRI_INIT_XAVIER);
            snprintf(nm, sizeof nm, "mlp.%u.bias", l);
            ADD(LB(l), nm, c->layers[l], 1, FR_TENSOR_DENSE, FRI_INIT_ZERO);
            in = c->layers[l];
        }
        head += in;
    }
    ADD(OUT_W, "out.weight", 1, head, FR_TENSOR_DENSE, FRI_INIT_KAIMING);
    ADD(OUT_B, "out.bias", 1, 1, FR_TENSOR_DENSE, FRI_INIT_ZERO);
    /* private */
    if (has_gmf(c)) ADD(GMF_USER, "user_gmf", c->n_users, c->dim, FR_TENSOR_USER_TABLE, FRI_INIT_NORMAL);
    if (has_mlp(c)) ADD(MLP_USER, "user_mlp", c->n_users, c->mlp_dim, FR_TENSOR_USER_TABLE, FRI_INIT_NORMAL);
#undef ADD
    return FR_OK;
}

/* ---------------------------------------------------------------- workspace */

typedef struct ncf_ws {
    /* gmf part: gathered rows and their gradients */
    float *p, *q;                           /* [B,dim] user_gmf, item_gmf rows */
    float *dp, *dq;
    float *gmf, *dgmf;                      /* [B,dim] p*q */
    float *s, *ds;                          /* [B] logits and their gradients */
    /* mlp part */
    float *x0, *dx0;                        /* [B,2*mlp_dim] [user_mlp row, item_mlp row] */
    float *act[MAXL], *dact[MAXL];          /* [B,layers[l]] post-ReLU and its gradient */
    float *dpre;                            /* [B,max layer] gradient before ReLU */
    float *z, *dz;                          /* [B,head] output layer input (neumf) */
    float *wt;                              /* [max layers[l] * in_l] a layer's weights transposed */
    bool one_user;                          /* the last forward's batch had one user (backward reads it) */
} ncf_ws;

static size_t ws_carve(void *wsp, float *arena, const fr_model_config *c, size_t B) {
    ncf_ws tmp, *w = wsp ? wsp : &tmp;
    fri_carver cv = {arena, 0};
    size_t d = c->dim, head = 0, wt = 0;
    if (has_gmf(c)) {
        w->p = fri_carve(&cv, B * d); w->q = fri_carve(&cv, B * d);
        w->dp = fri_carve(&cv, B * d); w->dq = fri_carve(&cv, B * d);
        w->gmf = fri_carve(&cv, B * d); w->dgmf = fri_carve(&cv, B * d);
        head += d;
    }
    w->s = fri_carve(&cv, B); w->ds = fri_carve(&cv, B);
    if (has_mlp(c)) {
        size_t md = c->mlp_dim, mx = 0, in = 2 * md;
        w->x0 = fri_carve(&cv, B * 2 * md); w->dx0 = fri_carve(&cv, B * 2 * md);
        for (uint32_t l = 0; l < c->n_layers; l++) {
            w->act[l] = fri_carve(&cv, B * c->layers[l]);
            w->dact[l] = fri_carve(&cv, B * c->layers[l]);
            if (c->layers[l] > mx) mx = c->layers[l];
            if ((size_t)c->layers[l] * in > wt) wt = (size_t)c->layers[l] * in;
            in = c->layers[l];
        }
        w->dpre = fri_carve(&cv, B * mx);
        head += c->layers[c->n_layers - 1];
    }
    if (has_gmf(c) && has_mlp(c)) { w->z = fri_carve(&cv, B * head); w->dz = fri_carve(&cv, B * head); }
    w->wt = fri_carve(&cv, wt);
    return cv.at;
}

static bool ws_fits(const fr_model_config *a, const fr_model_config *b) {
    if (has_gmf(b) && a->dim != b->dim) return false;
    if (has_mlp(b)) {
        if (a->mlp_dim != b->mlp_dim || a->n_layers != b->n_layers) return false;
        for (uint32_t l = 0; l < b->n_layers; l++)
            if (a->layers[l] != b->layers[l]) return false;
    }
    return true;
}

/* ---------------------------------------------------------------- forward/backward */

static const float *P(const fr_model *m, int role) { return fri_model_data(m, m->slot[role]); }
static float *G(fr_grad *g, const fr_model *m, int role) { return fri_grad_of(g, m->slot[role]); }
#define ROWS(g, m, role) (&(g)->rows[(m)->slot[role]])

/* True if a minibatch has one user (a federated client's): the first MLP layer then
 * computes that user's half once (fri_linear_forward_shared). Below 8 examples the
 * general layer is as fast. */
static bool one_user(const uint32_t *users, size_t B) {
    if (B < 8) return false;
    for (size_t i = 1; i < B; i++)
        if (users[i] != users[0]) return false;
    return true;
}

/* logits of (users, items) into ws->s; returns the output layer's input width */
static size_t ncf_forward(const fr_model *m, ncf_ws *ws, const uint32_t *users,
                          const uint32_t *items, size_t B) {
    const fr_model_config *c = &m->cfg;
    size_t d = c->dim, head = 0;
    const float *hin = NULL;
    if (has_gmf(c)) {
        fri_embedding_forward(ws->p, P(m, GMF_USER), users, B, d);     /* [B,d] */
        fri_embedding_forward(ws->q, P(m, GMF_ITEM), items, B, d);     /* [B,d] */
        fri_mul_forward(ws->gmf, ws->p, ws->q, B * d);                  /* [B,d] */
        hin = ws->gmf;
        head = d;
    }
    if (has_mlp(c)) {
        size_t md = c->mlp_dim, in = 2 * md;
        /* x0 = concat(user_mlp[u], item_mlp[i]), gathered in place: [B,2md] */
        fri_embedding_forward_ld(ws->x0, 2 * md, P(m, MLP_USER), users, B, md);
        fri_embedding_forward_ld(ws->x0 + md, 2 * md, P(m, MLP_ITEM), items, B, md);
        const float *x = ws->x0;
        ws->one_user = one_user(users, B);
        for (uint32_t l = 0; l < c->n_layers; l++) {
            size_t oc = c->layers[l];
            if (l == 0 && ws->one_user) /* one user: its half of the first layer once */
                fri_linear_forward_shared(ws->act[l], x, P(m, LW(l)), P(m, LB(l)), B, in, oc, md, ws->wt);
            else
                fri_linear_forward_ws(ws->act[l], x, P(m, LW(l)), P(m, LB(l)), B, in, oc, ws->wt); /* [B,oc] */
            fri_relu_forward(ws->act[l], ws->act[l], B * oc);
            x = ws->act[l];
            in = oc;
        }
        if (has_gmf(c)) {
            fri_concat_forward(ws->z, ws->gmf, x, B, d, in);            /* [B,d+in] */
            hin = ws->z;
            head = d + in;
        } else {
            hin = x;
            head = in;
        }
    }
    fri_linear_forward(ws->s, hin, P(m, OUT_W), P(m, OUT_B), B, head, 1); /* [B,1] */
    return head;
}


/* dlogit[B] in ws->ds; adds into g */
static void ncf_backward(const fr_model *m, ncf_ws *ws, const uint32_t *users,
                         const uint32_t *items, size_t B, fr_grad *g, double l2s) {
    const fr_model_config *c = &m->cfg;
    size_t d = c->dim;
    const float *hin;
    float *dh;
    size_t head;
    size_t last = has_mlp(c) ? c->layers[c->n_layers - 1] : 0;
    if (has_gmf(c) && has_mlp(c)) { hin = ws->z; dh = ws->dz; head = d + last; }
    else if (has_gmf(c)) { hin = ws->gmf; dh = ws->dgmf; head = d; }
    else { hin = ws->act[c->n_layers - 1]; dh = ws->dact[c->n_layers - 1]; head = last; }
    memset(dh, 0, B * head * sizeof(float));
    fri_linear_backward(dh, G(g, m, OUT_W), G(g, m, OUT_B), ws->ds, hin, P(m, OUT_W), B, head, 1);
    if (has_gmf(c) && has_mlp(c)) {
        memset(ws->dgmf, 0, B * d * sizeof(float));
        memset(ws->dact[c->n_layers - 1], 0, B * last * sizeof(float));
        fri_concat_backward(ws->dgmf, ws->dact[c->n_layers - 1], ws->dz, B, d, last);
    }
    if (has_gmf(c)) {
        memset(ws->dp, 0, B * d * sizeof(float));
        memset(ws->dq, 0, B * d * sizeof(float));
        fri_mul_backward(ws->dp, ws->dq, ws->dgmf, ws->p, ws->q, B * d);
        if (l2s > 0) {
            fri_l2_forward_backward(ws->dp, ws->p, B, d, l2s);
            fri_l2_forward_backward(ws->dq, ws->q, B, d, l2s);
        }
        fri_embedding_backward(G(g, m, GMF_USER), ROWS(g, m, GMF_USER), ws->dp, users, B, d);
        fri_embedding_backward(G(g, m, GMF_ITEM), ROWS(g, m, GMF_ITEM), ws->dq, items, B, d);
    }
    if (has_mlp(c)) {
        size_t md = c->mlp_dim;
        for (uint32_t l = c->n_layers; l-- > 0;) {
            size_t oc = c->layers[l], in = l ? c->layers[l - 1] : 2 * md;
            const float *x = l ? ws->act[l - 1] : ws->x0;
            float *dx = l ? ws->dact[l - 1] : ws->dx0;
            memset(ws->dpre, 0, B * oc * sizeof(float));
            fri_relu_backward(ws->dpre, ws->dact[l], ws->act[l], B * oc);
            memset(dx, 0, B * in * sizeof(float));
            if (l == 0 && ws->one_user) /* the user half's gradient lands on row 0 of dx0 */
                fri_linear_backward_shared(dx, G(g, m, LW(l)), G(g, m, LB(l)), ws->dpre, x, P(m, LW(l)), B,
                                           in, oc, md);
            else
                fri_linear_backward(dx, G(g, m, LW(l)), G(g, m, LB(l)), ws->dpre, x, P(m, LW(l)), B, in, oc);
        }
        if (l2s > 0) fri_l2_forward_backward(ws->dx0, ws->x0, B, 2 * md, l2s);
        /* the concat's backward is a strided scatter of dx0's halves */
        fri_embedding_backward_ld(G(g, m, MLP_USER), ROWS(g, m, MLP_USER), ws->dx0, 2 * md, users, B, md);
        fri_embedding_backward_ld(G(g, m, MLP_ITEM), ROWS(g, m, MLP_ITEM), ws->dx0 + md, 2 * md, items, B, md);
    }
}

static double ncf_l2(const fr_model *m, const ncf_ws *ws, size_t B, double l2s) {
    double s = 0.0;
    if (has_gmf(&m->cfg)) {
        s += fri_l2_forward_backward(NULL, ws->p, B, m->cfg.dim, l2s);
        s += fri_l2_forward_backward(NULL, ws->q, B, m->cfg.dim, l2s);
    }
    if (has_mlp(&m->cfg)) s += fri_l2_forward_backward(NULL, ws->x0, B, 2 * (size_t)m->cfg.mlp_dim, l2s);
    return s;
}

/* ---------------------------------------------------------------- entry points */

static double loss_impl(const fr_model *m, ncf_ws *ws, const fr_batch *b, fr_grad *g) {
    size_t B = b->n;
    double l2s = (double)m->cfg.l2 / (double)B;
    ncf_forward(m, ws, b->users, b->items, B);
    double L = fri_bce_forward_backward(g ? ws->ds : NULL, ws->s, b->label, b->weight, B);
    if (l2s > 0) L += ncf_l2(m, ws, B, l2s);
    if (g) ncf_backward(m, ws, b->users, b->items, B, g, l2s);
    return L;
}

static fr_err loss_grad(const fr_model *m, void *ws, const fr_batch *b, fr_grad *g, double *loss) {
    *loss = loss_impl(m, ws, b, g); /* g NULL: the loss alone */
    return FR_OK;
}

static void score(const fr_model *m, void *wsp, const uint32_t *users, const uint32_t *items, size_t n, float *out) {
    ncf_ws *ws = wsp;
    ncf_forward(m, ws, users, items, n);
    memcpy(out, ws->s, n * sizeof(float));
}

static const fri_model_kind_def kinds[] = {
    {"gmf", false, false},   /* FR_MODEL_GMF */
    {"mlp", false, false},   /* FR_MODEL_MLP */
    {"neumf", false, false}, /* FR_MODEL_NEUMF */
};

const fri_model_family fri_model_family_ncf = {
    .name = "neural collaborative filtering",
    .kinds = kinds,
    .n_kinds = 3,
    .init_std = 0.01f,
    .config_default = config_default,
    .config_check = config_check,
    .params_put = params_put,
    .params_get = params_get,
    .layout = layout,
    .ws_size = sizeof(ncf_ws),
    .ws_carve = ws_carve,
    .ws_fits = ws_fits,
    .loss_grad = loss_grad,
    .score = score,
};
