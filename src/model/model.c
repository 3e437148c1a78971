/* Models over the parameter slab: configuration, layout (shared tensors first, private
 * user tables last), deterministic initialisation, gradients with touched-row sets,
 * workspaces, and the loss/gradient and scoring of mf, bpr, gmf, mlp and neumf.
 * Invariants: the slab layout depends only on the config; fr_model_loss_grad allocates
 * nothing and touches only ws and g; a gradient's untouched table rows are always 0. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/core.h"
#include "model/layers.h"
#include "model/model_internal.h"

/* ---------------------------------------------------------------- config */

void fr_model_config_default(fr_model_config *cfg, fr_model_kind kind) {
    memset(cfg, 0, sizeof *cfg);
    cfg->kind = kind;
    cfg->dim = (kind == FR_MODEL_MF || kind == FR_MODEL_BPR) ? 32 : 8;
    cfg->mlp_dim = 32;
    cfg->n_layers = 3;
    cfg->layers[0] = 32;
    cfg->layers[1] = 16;
    cfg->layers[2] = 8;
    cfg->loss = kind == FR_MODEL_MF ? FR_LOSS_MSE : kind == FR_MODEL_BPR ? FR_LOSS_BPR : FR_LOSS_BCE;
    cfg->l2 = kind == FR_MODEL_MF ? 0.1f : 0.0f; /* the MF anchor's --reg default */
    cfg->bias_l2 = 0.0f;
    cfg->mu = 0.0f;
    cfg->init_std = 0.0f;
    cfg->seed = 1;
}

const char *fr_model_kind_name(fr_model_kind kind) {
    switch (kind) {
    case FR_MODEL_MF: return "mf";
    case FR_MODEL_BPR: return "bpr";
    case FR_MODEL_GMF: return "gmf";
    case FR_MODEL_MLP: return "mlp";
    case FR_MODEL_NEUMF: return "neumf";
    }
    return "?";
}

fr_err fr_model_kind_parse(const char *name, fr_model_kind *out) {
    for (int k = FR_MODEL_MF; k <= FR_MODEL_NEUMF; k++)
        if (name && strcmp(name, fr_model_kind_name((fr_model_kind)k)) == 0) {
            *out = (fr_model_kind)k;
            return FR_OK;
        }
    return fri_fail(FR_ERR_INVALID, "unknown model '%s': expected mf, bpr, gmf, mlp or neumf",
                    name ? name : "(null)");
}

bool fr_model_kind_is_explicit(fr_model_kind kind) { return kind == FR_MODEL_MF; }

static const char *loss_name(fr_loss l) {
    return l == FR_LOSS_MSE ? "mse" : l == FR_LOSS_BCE ? "bce" : l == FR_LOSS_BPR ? "bpr" : "?";
}

static int has_gmf(const fr_model_config *c) {
    return c->kind == FR_MODEL_GMF || c->kind == FR_MODEL_NEUMF;
}
static int has_mlp(const fr_model_config *c) {
    return c->kind == FR_MODEL_MLP || c->kind == FR_MODEL_NEUMF;
}

fr_err fr_model_config_check(const fr_model_config *c) {
    if (!c) return fri_fail(FR_ERR_INVALID, "model config is NULL");
    if (c->kind < FR_MODEL_MF || c->kind > FR_MODEL_NEUMF)
        return fri_fail(FR_ERR_INVALID, "model kind %d is not one of mf, bpr, gmf, mlp, neumf",
                        (int)c->kind);
    const char *k = fr_model_kind_name(c->kind);
    if (c->n_items == 0) return fri_fail(FR_ERR_INVALID, "%s: n_items is 0: a model needs items", k);
    if (c->n_users > (1u << 30) || c->n_items > (1u << 30))
        return fri_fail(FR_ERR_INVALID, "%s: %u users x %u items: at most 2^30 each", k, c->n_users,
                        c->n_items);
    if ((c->kind != FR_MODEL_MLP) && (c->dim == 0 || c->dim > 4096))
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
    switch (c->kind) {
    case FR_MODEL_MF:
        if (c->loss != FR_LOSS_MSE)
            return fri_fail(FR_ERR_INVALID, "mf: loss %s: mf is trained with mse", loss_name(c->loss));
        break;
    case FR_MODEL_BPR:
        if (c->loss != FR_LOSS_BPR && c->loss != FR_LOSS_BCE)
            return fri_fail(FR_ERR_INVALID, "bpr: loss %s: expected bpr or bce", loss_name(c->loss));
        break;
    default:
        if (c->loss != FR_LOSS_BCE)
            return fri_fail(FR_ERR_INVALID, "%s: loss %s: the NCF models are trained with bce", k,
                            loss_name(c->loss));
    }
    if (!(c->l2 >= 0.0f) || !isfinite(c->l2))
        return fri_fail(FR_ERR_INVALID, "%s: l2 %g: expected a finite value >= 0", k, (double)c->l2);
    if (!(c->bias_l2 >= 0.0f) || !isfinite(c->bias_l2))
        return fri_fail(FR_ERR_INVALID, "%s: bias_l2 %g: expected a finite value >= 0 (0 = l2)", k,
                        (double)c->bias_l2);
    if (!isfinite(c->mu)) return fri_fail(FR_ERR_INVALID, "%s: mu is not finite", k);
    if (!(c->init_std >= 0.0f) || !isfinite(c->init_std))
        return fri_fail(FR_ERR_INVALID, "%s: init_std %g: expected >= 0", k, (double)c->init_std);
    return FR_OK;
}

/* ---------------------------------------------------------------- layout */

static fr_err add_tensor(fr_model *m, int *idx, const char *name, uint32_t rows, uint32_t cols,
                         fr_tensor_kind kind, fri_init init) {
    if (m->n_tensors >= FR_MODEL_MAX_TENSORS)
        return fri_fail(FR_ERR_INTERNAL, "model has more than %d tensors", FR_MODEL_MAX_TENSORS);
    size_t n;
    if (fri_mul_size(rows, cols, &n) || m->n_params > SIZE_MAX / 8 - n)
        return fri_fail(FR_ERR_INVALID, "tensor %s of %u x %u floats is too large", name, rows, cols);
    fr_tensor *t = &m->t[m->n_tensors];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->offset = m->n_params;
    t->rows = rows;
    t->cols = cols;
    t->kind = kind;
    m->init[m->n_tensors] = init;
    *idx = m->n_tensors++;
    m->n_params += n;
    return FR_OK;
}

fr_err fri_model_layout(fr_model *m, const fr_model_config *c) {
    m->n_tensors = 0;
    m->n_params = 0;
    m->item_f = m->item_b = m->user_f = m->user_b = m->item_m = m->user_m = -1;
    m->out_w = m->out_b = -1;
    for (int l = 0; l < FR_MODEL_MAX_LAYERS; l++) m->lw[l] = m->lb[l] = -1;
    fr_err e = FR_OK;
#define ADD(idx, name, r, cc, kind, init) \
    do { if ((e = add_tensor(m, idx, name, r, cc, kind, init)) != FR_OK) return e; } while (0)
    /* shared */
    if (c->kind == FR_MODEL_MF || c->kind == FR_MODEL_BPR) {
        ADD(&m->item_f, "item_factor", c->n_items, c->dim, FR_TENSOR_ITEM_TABLE, FRI_INIT_NORMAL);
        if (c->kind == FR_MODEL_MF)
            ADD(&m->item_b, "item_bias", c->n_items, 1, FR_TENSOR_ITEM_TABLE, FRI_INIT_ZERO);
    }
    if (has_gmf(c)) ADD(&m->item_f, "item_gmf", c->n_items, c->dim, FR_TENSOR_ITEM_TABLE, FRI_INIT_NORMAL);
    uint32_t head = has_gmf(c) ? c->dim : 0;
    if (has_mlp(c)) {
        ADD(&m->item_m, "item_mlp", c->n_items, c->mlp_dim, FR_TENSOR_ITEM_TABLE, FRI_INIT_NORMAL);
        uint32_t in = 2 * c->mlp_dim;
        for (uint32_t l = 0; l < c->n_layers; l++) {
            char nm[FR_TENSOR_NAME_MAX];
            snprintf(nm, sizeof nm, "mlp.%u.weight", l);
            ADD(&m->lw[l], nm, c->layers[l], in, FR_TENSOR_DENSE, FRI_INIT_XAVIER);
            snprintf(nm, sizeof nm, "mlp.%u.bias", l);
            ADD(&m->lb[l], nm, c->layers[l], 1, FR_TENSOR_DENSE, FRI_INIT_ZERO);
            in = c->layers[l];
        }
        head += in;
    }
    if (head) {
        ADD(&m->out_w, "out.weight", 1, head, FR_TENSOR_DENSE, FRI_INIT_KAIMING);
        ADD(&m->out_b, "out.bias", 1, 1, FR_TENSOR_DENSE, FRI_INIT_ZERO);
    }
    m->n_shared = m->n_params;
    /* private */
    if (c->kind == FR_MODEL_MF || c->kind == FR_MODEL_BPR) {
        ADD(&m->user_f, "user_factor", c->n_users, c->dim, FR_TENSOR_USER_TABLE, FRI_INIT_NORMAL);
        if (c->kind == FR_MODEL_MF)
            ADD(&m->user_b, "user_bias", c->n_users, 1, FR_TENSOR_USER_TABLE, FRI_INIT_ZERO);
    }
    if (has_gmf(c)) ADD(&m->user_f, "user_gmf", c->n_users, c->dim, FR_TENSOR_USER_TABLE, FRI_INIT_NORMAL);
    if (has_mlp(c)) ADD(&m->user_m, "user_mlp", c->n_users, c->mlp_dim, FR_TENSOR_USER_TABLE, FRI_INIT_NORMAL);
#undef ADD
    return FR_OK;
}

/* ---------------------------------------------------------------- init */

static float init_std(const fr_model_config *c) {
    if (c->init_std > 0.0f) return c->init_std;
    return (c->kind == FR_MODEL_MF || c->kind == FR_MODEL_BPR) ? 0.1f : 0.01f;
}

static void init_values(float *p, size_t n, fri_init how, float std, uint32_t fan_in,
                        uint32_t fan_out, fr_rng *r) {
    switch (how) {
    case FRI_INIT_ZERO: memset(p, 0, n * sizeof *p); break;
    case FRI_INIT_NORMAL:
        for (size_t i = 0; i < n; i++) p[i] = (float)(fr_rng_normal(r) * std);
        break;
    case FRI_INIT_XAVIER:
    case FRI_INIT_KAIMING: {
        double bound = how == FRI_INIT_XAVIER ? sqrt(6.0 / (double)(fan_in + fan_out))
                                              : sqrt(3.0 / (double)fan_in);
        for (size_t i = 0; i < n; i++) p[i] = (float)((2.0 * fr_rng_double(r) - 1.0) * bound);
        break;
    }
    }
}

static void init_user_row(fr_model *m, uint32_t row, uint32_t global) {
    for (int i = 0; i < m->n_tensors; i++) {
        const fr_tensor *t = &m->t[i];
        if (t->kind != FR_TENSOR_USER_TABLE) continue;
        fr_rng r;
        fr_rng_init(&r, m->cfg.seed, (uint32_t)i, global, FR_PURPOSE_INIT);
        init_values(m->params + t->offset + (size_t)row * t->cols, t->cols, m->init[i],
                    init_std(&m->cfg), 0, 0, &r);
    }
}

static void model_init(fr_model *m) {
    for (int i = 0; i < m->n_tensors; i++) {
        const fr_tensor *t = &m->t[i];
        if (t->kind == FR_TENSOR_USER_TABLE) continue;
        fr_rng r;
        fr_rng_init(&r, m->cfg.seed, (uint32_t)i, 0, FR_PURPOSE_INIT);
        /* weights are [out x in]: fan_in = cols, fan_out = rows */
        init_values(m->params + t->offset, (size_t)t->rows * t->cols, m->init[i], init_std(&m->cfg),
                    t->cols, t->rows, &r);
    }
    for (uint32_t u = 0; u < m->cfg.n_users; u++) init_user_row(m, u, u);
}

/* ---------------------------------------------------------------- model */

fr_err fri_model_alloc(fr_model **out, const fr_model_config *cfg) {
    *out = NULL;
    fr_err e = fr_model_config_check(cfg);
    if (e) return e;
    fr_model *m = fri_calloc(1, sizeof *m);
    if (!m) return FR_ERR_NOMEM;
    m->cfg = *cfg;
    if ((e = fri_model_layout(m, cfg)) != FR_OK) { fri_free(m); return e; }
    m->params = fri_aligned_alloc((m->n_params ? m->n_params : 1) * sizeof(float));
    if (!m->params) { fri_free(m); return FR_ERR_NOMEM; }
    *out = m;
    return FR_OK;
}

fr_err fr_model_create(fr_model **out, const fr_model_config *cfg) {
    fr_err e = fri_model_alloc(out, cfg);
    if (e) return e;
    model_init(*out);
    return FR_OK;
}

fr_err fr_model_clone(fr_model **out, const fr_model *m) {
    fr_err e = fri_model_alloc(out, &m->cfg);
    if (e) return e;
    memcpy((*out)->params, m->params, m->n_params * sizeof(float));
    return FR_OK;
}

void fr_model_free(fr_model *m) {
    if (!m) return;
    fri_free_aligned(m->params);
    fri_free(m);
}

const fr_model_config *fr_model_config_of(const fr_model *m) { return &m->cfg; }
size_t fr_model_n_params(const fr_model *m) { return m->n_params; }
size_t fr_model_n_shared(const fr_model *m) { return m->n_shared; }
float *fr_model_params(fr_model *m) { return m->params; }
const float *fr_model_params_const(const fr_model *m) { return m->params; }
int fr_model_n_tensors(const fr_model *m) { return m->n_tensors; }
const fr_tensor *fr_model_tensor(const fr_model *m, int i) {
    return (i >= 0 && i < m->n_tensors) ? &m->t[i] : NULL;
}
int fr_model_tensor_find(const fr_model *m, const char *name) {
    for (int i = 0; i < m->n_tensors; i++)
        if (strcmp(m->t[i].name, name) == 0) return i;
    return -1;
}

void fr_model_set_shared(fr_model *m, const float *src) {
    memcpy(m->params, src, m->n_shared * sizeof(float));
}

void fr_model_shared_delta(const fr_model *m, const float *restrict ref, float *restrict delta) {
    const float *restrict p = m->params;
    for (size_t i = 0; i < m->n_shared; i++) delta[i] = p[i] - ref[i];
}

fr_err fr_model_init_user_row(fr_model *m, uint32_t row, uint32_t global_user) {
    if (row >= m->cfg.n_users)
        return fri_fail(FR_ERR_RANGE, "user row %u: the model holds %u user rows", row, m->cfg.n_users);
    init_user_row(m, row, global_user);
    return FR_OK;
}

/* ---------------------------------------------------------------- rowsets, grads */

fr_err fr_rowset_init(fr_rowset *s, uint32_t n_rows) {
    memset(s, 0, sizeof *s);
    s->n_rows = n_rows;
    s->rows = fri_malloc((n_rows ? n_rows : 1) * sizeof(uint32_t));
    s->mark = fri_calloc(n_rows ? n_rows : 1, 1);
    if (!s->rows || !s->mark) {
        fr_rowset_destroy(s);
        return FR_ERR_NOMEM;
    }
    return FR_OK;
}

void fr_rowset_destroy(fr_rowset *s) {
    if (!s) return;
    fri_free(s->rows);
    fri_free(s->mark);
    memset(s, 0, sizeof *s);
}

void fr_rowset_clear(fr_rowset *s) {
    for (uint32_t i = 0; i < s->count; i++) s->mark[s->rows[i]] = 0;
    s->count = 0;
}

fr_err fr_rowset_merge(fr_rowset *dst, const fr_rowset *src) {
    if (dst->n_rows != src->n_rows)
        return fri_fail(FR_ERR_INVALID, "merging a set over %u rows into one over %u", src->n_rows, dst->n_rows);
    for (uint32_t i = 0; i < src->count; i++) fr_rowset_add(dst, src->rows[i]);
    return FR_OK;
}

static int is_table(fr_tensor_kind k) { return k == FR_TENSOR_ITEM_TABLE || k == FR_TENSOR_USER_TABLE; }

fr_err fr_grad_create(fr_grad **out, const fr_model *m) {
    *out = NULL;
    fr_grad *g = fri_calloc(1, sizeof *g);
    if (!g) return FR_ERR_NOMEM;
    g->n_params = m->n_params;
    g->n_tensors = m->n_tensors;
    memcpy(g->t, m->t, sizeof g->t);
    g->g = fri_aligned_alloc((m->n_params ? m->n_params : 1) * sizeof(float));
    if (!g->g) { fr_grad_free(g); return FR_ERR_NOMEM; }
    memset(g->g, 0, m->n_params * sizeof(float));
    for (int i = 0; i < m->n_tensors; i++)
        if (is_table(m->t[i].kind) && fr_rowset_init(&g->rows[i], m->t[i].rows) != FR_OK) {
            fr_grad_free(g);
            return FR_ERR_NOMEM;
        }
    *out = g;
    return FR_OK;
}

void fr_grad_free(fr_grad *g) {
    if (!g) return;
    for (int i = 0; i < g->n_tensors; i++) fr_rowset_destroy(&g->rows[i]);
    fri_free_aligned(g->g);
    fri_free(g);
}

void fr_grad_zero(fr_grad *g) {
    for (int i = 0; i < g->n_tensors; i++) {
        const fr_tensor *t = &g->t[i];
        float *p = g->g + t->offset;
        if (!is_table(t->kind)) {
            memset(p, 0, (size_t)t->rows * t->cols * sizeof(float));
            continue;
        }
        fr_rowset *s = &g->rows[i];
        for (uint32_t k = 0; k < s->count; k++) { /* short rows: a loop, not a memset call each */
            float *r = p + (size_t)s->rows[k] * t->cols;
            for (uint32_t c = 0; c < t->cols; c++) r[c] = 0.0f;
        }
        fr_rowset_clear(s);
    }
}

float *fr_grad_data(fr_grad *g) { return g->g; }
const float *fr_grad_data_const(const fr_grad *g) { return g->g; }
const fr_rowset *fr_grad_touched(const fr_grad *g, int t) {
    return (t >= 0 && t < g->n_tensors && is_table(g->t[t].kind)) ? &g->rows[t] : NULL;
}
void fr_grad_touch(fr_grad *g, int t, uint32_t row) {
    if (t >= 0 && t < g->n_tensors && is_table(g->t[t].kind) && row < g->t[t].rows)
        fr_rowset_add(&g->rows[t], row);
}

fr_err fr_grad_combine(fr_grad *dst, float a, const fr_grad *src, float b) {
    if (dst->n_params != src->n_params || dst->n_tensors != src->n_tensors)
        return fri_fail(FR_ERR_INVALID, "combining gradients of %zu and %zu parameters", src->n_params,
                        dst->n_params);
    for (int i = 0; i < dst->n_tensors; i++) {
        const fr_tensor *t = &dst->t[i];
        if (t->rows != src->t[i].rows || t->cols != src->t[i].cols)
            return fri_fail(FR_ERR_INVALID, "combining gradients: tensor %s differs in shape", t->name);
    }
    for (int i = 0; i < dst->n_tensors; i++) {
        const fr_tensor *t = &dst->t[i];
        float *restrict d = dst->g + t->offset;
        const float *restrict s = src->g + t->offset;
        if (!is_table(t->kind)) {
            for (size_t k = 0; k < (size_t)t->rows * t->cols; k++) d[k] = a * d[k] + b * s[k];
            continue;
        }
        fr_rowset *rd = &dst->rows[i];
        const fr_rowset *rs = &src->rows[i];
        if (a != 1.0f)
            for (uint32_t r = 0; r < rd->count; r++)
                for (uint32_t c = 0; c < t->cols; c++) d[(size_t)rd->rows[r] * t->cols + c] *= a;
        for (uint32_t r = 0; r < rs->count; r++) {
            size_t o = (size_t)rs->rows[r] * t->cols;
            for (uint32_t c = 0; c < t->cols; c++) d[o + c] += b * s[o + c];
            fr_rowset_add(rd, rs->rows[r]);
        }
    }
    return FR_OK;
}

int fri_grad_matches(const fr_grad *g, const fr_model *m) {
    if (g->n_params != m->n_params || g->n_tensors != m->n_tensors) return 0;
    for (int i = 0; i < m->n_tensors; i++)
        if (g->t[i].offset != m->t[i].offset || g->t[i].rows != m->t[i].rows ||
            g->t[i].cols != m->t[i].cols)
            return 0;
    return 1;
}

/* ---------------------------------------------------------------- workspace */

enum { MAXL = FR_MODEL_MAX_LAYERS };

struct fr_model_ws {
    fr_model_config shape;  /* the config it was sized for */
    size_t max_batch;       /* examples per call */
    float *arena;           /* one allocation carved into the buffers below */
    /* mf / bpr / gmf part: gathered rows and their gradients */
    float *p, *q, *qn, *bu, *bi;            /* [B,dim] x3, [B] x2 */
    float *dp, *dq, *dqn, *dbu, *dbi;
    float *s, *sn, *ds, *dsn;               /* [B] scores (pos, neg) and their gradients */
    float *gmf, *dgmf;                      /* [B,dim] p*q */
    /* mlp part */
    float *x0, *dx0;                        /* [B,2*mlp_dim] [user_mlp row, item_mlp row] */
    float *act[MAXL], *dact[MAXL];          /* [B,layers[l]] post-ReLU and its gradient */
    float *dpre;                            /* [B,max layer] gradient before ReLU */
    float *z, *dz;                          /* [B,head] output layer input */
    float *wt;                              /* [max layers[l] * in_l] a layer's weights transposed */
    bool one_user;                          /* the last forward's batch had one user (backward reads it) */
};

static size_t ws_floats_per_example(const fr_model_config *c, size_t *head_out) {
    size_t d = c->dim, n = 0, head = 0;
    n += 10 * d + 4 + 4; /* p q qn dp dq dqn gmf dgmf (+2 spare), bu bi dbu dbi, s sn ds dsn */
    if (has_gmf(c)) head += d;
    if (has_mlp(c)) {
        size_t md = c->mlp_dim, mx = 0;
        n += 4 * md;
        for (uint32_t l = 0; l < c->n_layers; l++) {
            n += 2 * (size_t)c->layers[l];
            if (c->layers[l] > mx) mx = c->layers[l];
        }
        n += mx;
        head += c->layers[c->n_layers - 1];
    }
    n += 2 * head;
    *head_out = head;
    return n + 16; /* slack for alignment rounding of each buffer */
}

/* Floats of the transposed-weights scratch: the largest MLP layer. */
static size_t ws_wt_floats(const fr_model_config *c) {
    size_t mx = 0, in = 2 * (size_t)c->mlp_dim;
    if (!has_mlp(c)) return 0;
    for (uint32_t l = 0; l < c->n_layers; l++) {
        size_t k = (size_t)c->layers[l] * in;
        if (k > mx) mx = k;
        in = c->layers[l];
    }
    return mx;
}

fr_err fr_model_ws_create(fr_model_ws **out, const fr_model *m, size_t max_batch) {
    *out = NULL;
    if (max_batch == 0 || max_batch > ((size_t)1 << 24))
        return fri_fail(FR_ERR_INVALID, "workspace max_batch %zu: expected 1..%zu", max_batch,
                        (size_t)1 << 24);
    fri_blas_single_thread();
    const fr_model_config *c = &m->cfg;
    size_t head, per = ws_floats_per_example(c, &head);
    /* each buffer is rounded up to 16 floats: at most 40 buffers */
    size_t total = per * max_batch + ws_wt_floats(c) + 64 * 16;
    fr_model_ws *ws = fri_calloc(1, sizeof *ws);
    if (!ws) return FR_ERR_NOMEM;
    ws->arena = fri_aligned_alloc(total * sizeof(float));
    if (!ws->arena) { fri_free(ws); return FR_ERR_NOMEM; }
    memset(ws->arena, 0, total * sizeof(float));
    ws->shape = *c;
    ws->max_batch = max_batch;
    float *cur = ws->arena;
    size_t B = max_batch, d = c->dim;
#define CARVE(ptr, n) do { (ptr) = cur; cur += (((n) + 15) / 16) * 16; } while (0)
    CARVE(ws->p, B * d); CARVE(ws->q, B * d); CARVE(ws->qn, B * d);
    CARVE(ws->dp, B * d); CARVE(ws->dq, B * d); CARVE(ws->dqn, B * d);
    CARVE(ws->gmf, B * d); CARVE(ws->dgmf, B * d);
    CARVE(ws->bu, B); CARVE(ws->bi, B); CARVE(ws->dbu, B); CARVE(ws->dbi, B);
    CARVE(ws->s, B); CARVE(ws->sn, B); CARVE(ws->ds, B); CARVE(ws->dsn, B);
    if (has_mlp(c)) {
        size_t md = c->mlp_dim, mx = 0;
        CARVE(ws->x0, B * 2 * md); CARVE(ws->dx0, B * 2 * md);
        for (uint32_t l = 0; l < c->n_layers; l++) {
            CARVE(ws->act[l], B * c->layers[l]);
            CARVE(ws->dact[l], B * c->layers[l]);
            if (c->layers[l] > mx) mx = c->layers[l];
        }
        CARVE(ws->dpre, B * mx);
    }
    CARVE(ws->z, B * head); CARVE(ws->dz, B * head);
    CARVE(ws->wt, ws_wt_floats(c));
#undef CARVE
    *out = ws;
    return FR_OK;
}

void fr_model_ws_free(fr_model_ws *ws) {
    if (!ws) return;
    fri_free_aligned(ws->arena);
    fri_free(ws);
}

size_t fr_model_ws_max_batch(const fr_model_ws *ws) { return ws->max_batch; }

static int ws_matches(const fr_model_ws *ws, const fr_model *m) {
    const fr_model_config *a = &ws->shape, *b = &m->cfg;
    if (a->kind != b->kind || a->dim != b->dim) return 0;
    if (has_mlp(b)) {
        if (a->mlp_dim != b->mlp_dim || a->n_layers != b->n_layers) return 0;
        for (uint32_t l = 0; l < b->n_layers; l++)
            if (a->layers[l] != b->layers[l]) return 0;
    }
    return 1;
}

/* ---------------------------------------------------------------- NCF forward/backward */

static const float *P(const fr_model *m, int t) { return m->params + m->t[t].offset; }

/* logits of (users, items) into ws->s; returns the output layer's input width */
/* True if a minibatch has one user (a federated client's): the first MLP layer then
 * computes that user's half once (fri_linear_forward_shared). Below 8 examples the
 * general layer is as fast. */
static bool one_user(const uint32_t *users, size_t B) {
    if (B < 8) return false;
    for (size_t i = 1; i < B; i++)
        if (users[i] != users[0]) return false;
    return true;
}

static size_t ncf_forward(const fr_model *m, fr_model_ws *ws, const uint32_t *users,
                          const uint32_t *items, size_t B) {
    const fr_model_config *c = &m->cfg;
    size_t d = c->dim, head = 0;
    const float *hin = NULL;
    if (has_gmf(c)) {
        fri_embedding_forward(ws->p, P(m, m->user_f), users, B, d);     /* [B,d] */
        fri_embedding_forward(ws->q, P(m, m->item_f), items, B, d);     /* [B,d] */
        fri_mul_forward(ws->gmf, ws->p, ws->q, B * d);                  /* [B,d] */
        hin = ws->gmf;
        head = d;
    }
    if (has_mlp(c)) {
        size_t md = c->mlp_dim, in = 2 * md;
        /* x0 = concat(user_mlp[u], item_mlp[i]), gathered in place: [B,2md] */
        fri_embedding_forward_ld(ws->x0, 2 * md, P(m, m->user_m), users, B, md);
        fri_embedding_forward_ld(ws->x0 + md, 2 * md, P(m, m->item_m), items, B, md);
        const float *x = ws->x0;
        ws->one_user = one_user(users, B);
        for (uint32_t l = 0; l < c->n_layers; l++) {
            size_t oc = c->layers[l];
            if (l == 0 && ws->one_user) /* one user: its half of the first layer once */
                fri_linear_forward_shared(ws->act[l], x, P(m, m->lw[l]), P(m, m->lb[l]), B, in, oc, md, ws->wt);
            else
                fri_linear_forward_ws(ws->act[l], x, P(m, m->lw[l]), P(m, m->lb[l]), B, in, oc, ws->wt); /* [B,oc] */
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
    fri_linear_forward(ws->s, hin, P(m, m->out_w), P(m, m->out_b), B, head, 1); /* [B,1] */
    return head;
}

static float *G(fr_grad *g, const fr_model *m, int t) { return g->g + m->t[t].offset; }

/* dlogit[B] in ws->ds; adds into g */
static void ncf_backward(const fr_model *m, fr_model_ws *ws, const uint32_t *users,
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
    fri_linear_backward(dh, G(g, m, m->out_w), G(g, m, m->out_b), ws->ds, hin, P(m, m->out_w), B, head, 1);
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
        fri_embedding_backward(G(g, m, m->user_f), &g->rows[m->user_f], ws->dp, users, B, d);
        fri_embedding_backward(G(g, m, m->item_f), &g->rows[m->item_f], ws->dq, items, B, d);
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
                fri_linear_backward_shared(dx, G(g, m, m->lw[l]), G(g, m, m->lb[l]), ws->dpre, x, P(m, m->lw[l]), B,
                                           in, oc, md);
            else
                fri_linear_backward(dx, G(g, m, m->lw[l]), G(g, m, m->lb[l]), ws->dpre, x, P(m, m->lw[l]), B, in, oc);
        }
        if (l2s > 0) fri_l2_forward_backward(ws->dx0, ws->x0, B, 2 * md, l2s);
        /* the concat's backward is a strided scatter of dx0's halves */
        fri_embedding_backward_ld(G(g, m, m->user_m), &g->rows[m->user_m], ws->dx0, 2 * md, users, B, md);
        fri_embedding_backward_ld(G(g, m, m->item_m), &g->rows[m->item_m], ws->dx0 + md, 2 * md, items, B, md);
    }
}

static double ncf_l2(const fr_model *m, const fr_model_ws *ws, size_t B, double l2s) {
    double s = 0.0;
    if (has_gmf(&m->cfg)) {
        s += fri_l2_forward_backward(NULL, ws->p, B, m->cfg.dim, l2s);
        s += fri_l2_forward_backward(NULL, ws->q, B, m->cfg.dim, l2s);
    }
    if (has_mlp(&m->cfg)) s += fri_l2_forward_backward(NULL, ws->x0, B, 2 * (size_t)m->cfg.mlp_dim, l2s);
    return s;
}

/* ---------------------------------------------------------------- MF / BPR */

static void mf_scores(const fr_model *m, fr_model_ws *ws, const uint32_t *users,
                      const uint32_t *items, size_t B) {
    size_t d = m->cfg.dim;
    fri_embedding_forward(ws->p, P(m, m->user_f), users, B, d);   /* [B,d] */
    fri_embedding_forward(ws->q, P(m, m->item_f), items, B, d);   /* [B,d] */
    fri_dot_forward(ws->s, ws->p, ws->q, B, d);                   /* [B] */
    if (m->cfg.kind == FR_MODEL_MF) {
        fri_embedding_forward(ws->bu, P(m, m->user_b), users, B, 1);
        fri_embedding_forward(ws->bi, P(m, m->item_b), items, B, 1);
        for (size_t i = 0; i < B; i++) ws->s[i] += m->cfg.mu + ws->bu[i] + ws->bi[i];
    }
}

/* ---------------------------------------------------------------- entry points */

static fr_err check_batch(const fr_model *m, const fr_model_ws *ws, const fr_batch *b) {
    if (!b || !b->users || !b->items) return fri_fail(FR_ERR_INVALID, "batch without users or items");
    if (b->n == 0) return fri_fail(FR_ERR_INVALID, "empty batch");
    if (b->n > ws->max_batch)
        return fri_fail(FR_ERR_INVALID, "batch of %zu examples: the workspace holds %zu", b->n,
                        ws->max_batch);
    if (!ws_matches(ws, m)) return fri_fail(FR_ERR_INVALID, "workspace made for another model shape");
    int bpr = m->cfg.loss == FR_LOSS_BPR;
    if (bpr && !b->neg) return fri_fail(FR_ERR_INVALID, "bpr loss needs negative items (batch.neg)");
    if (!bpr && !b->label)
        return fri_fail(FR_ERR_INVALID, "%s loss needs labels (batch.label)", loss_name(m->cfg.loss));
    for (size_t i = 0; i < b->n; i++) {
        if (b->users[i] >= m->cfg.n_users)
            return fri_fail(FR_ERR_RANGE, "batch example %zu: user %u, the model has %u user rows", i,
                            b->users[i], m->cfg.n_users);
        if (b->items[i] >= m->cfg.n_items)
            return fri_fail(FR_ERR_RANGE, "batch example %zu: item %u, the model has %u items", i,
                            b->items[i], m->cfg.n_items);
        if (bpr && b->neg[i] >= m->cfg.n_items)
            return fri_fail(FR_ERR_RANGE, "batch example %zu: negative item %u, the model has %u items",
                            i, b->neg[i], m->cfg.n_items);
    }
    return FR_OK;
}

static fr_err loss_impl(const fr_model *m, fr_model_ws *ws, const fr_batch *b, fr_grad *g,
                        double *loss) {
    fr_err e = check_batch(m, ws, b);
    if (e) return e;
    if (g && !fri_grad_matches(g, m)) return fri_fail(FR_ERR_INVALID, "gradient made for another model shape");
    const fr_model_config *c = &m->cfg;
    size_t B = b->n, d = c->dim;
    double l2s = (double)c->l2 / (double)B, L = 0.0;
    if (c->kind == FR_MODEL_MF || c->kind == FR_MODEL_BPR) {
        mf_scores(m, ws, b->users, b->items, B);
        int bpr = c->loss == FR_LOSS_BPR;
        if (bpr) {
            fri_embedding_forward(ws->qn, P(m, m->item_f), b->neg, B, d);
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
                fri_embedding_backward(G(g, m, m->item_f), &g->rows[m->item_f], ws->dqn, b->neg, B, d);
            }
            fri_embedding_backward(G(g, m, m->user_f), &g->rows[m->user_f], ws->dp, b->users, B, d);
            fri_embedding_backward(G(g, m, m->item_f), &g->rows[m->item_f], ws->dq, b->items, B, d);
            if (c->kind == FR_MODEL_MF) {
                for (size_t i = 0; i < B; i++) { ws->dbu[i] += ws->ds[i]; ws->dbi[i] += ws->ds[i]; }
                fri_embedding_backward(G(g, m, m->user_b), &g->rows[m->user_b], ws->dbu, b->users, B, 1);
                fri_embedding_backward(G(g, m, m->item_b), &g->rows[m->item_b], ws->dbi, b->items, B, 1);
            }
        }
    } else {
        ncf_forward(m, ws, b->users, b->items, B);
        L = fri_bce_forward_backward(g ? ws->ds : NULL, ws->s, b->label, B);
        if (l2s > 0) L += ncf_l2(m, ws, B, l2s);
        if (g) ncf_backward(m, ws, b->users, b->items, B, g, l2s);
    }
    *loss = L;
    return FR_OK;
}

fr_err fr_model_loss_grad(const fr_model *m, fr_model_ws *ws, const fr_batch *b, fr_grad *g,
                          double *loss) {
    if (!g) return fri_fail(FR_ERR_INVALID, "fr_model_loss_grad without a gradient");
    return loss_impl(m, ws, b, g, loss);
}

fr_err fr_model_loss(const fr_model *m, fr_model_ws *ws, const fr_batch *b, double *loss) {
    return loss_impl(m, ws, b, NULL, loss);
}

fr_err fr_model_score(const fr_model *m, fr_model_ws *ws, const uint32_t *users,
                      const uint32_t *items, size_t n, float *out) {
    for (size_t i = 0; i < n; i++) {
        if (users[i] >= m->cfg.n_users)
            return fri_fail(FR_ERR_RANGE, "score pair %zu: user %u, the model has %u user rows", i,
                            users[i], m->cfg.n_users);
        if (items[i] >= m->cfg.n_items)
            return fri_fail(FR_ERR_RANGE, "score pair %zu: item %u, the model has %u items", i,
                            items[i], m->cfg.n_items);
    }
    fr_model_ws *own = NULL;
    if (!ws) {
        fr_err e = fr_model_ws_create(&own, m, n < 256 ? (n ? n : 1) : 256);
        if (e) return e;
        ws = own;
    } else if (!ws_matches(ws, m)) {
        return fri_fail(FR_ERR_INVALID, "workspace made for another model shape");
    }
    for (size_t at = 0; at < n; at += ws->max_batch) {
        size_t B = n - at < ws->max_batch ? n - at : ws->max_batch;
        if (m->cfg.kind == FR_MODEL_MF || m->cfg.kind == FR_MODEL_BPR) mf_scores(m, ws, users + at, items + at, B);
        else ncf_forward(m, ws, users + at, items + at, B);
        memcpy(out + at, ws->s, B * sizeof(float));
    }
    fr_model_ws_free(own);
    return FR_OK;
}
