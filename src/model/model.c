/* Models over the parameter slab, the generic part: configuration (common fields),
 * layout (built by the kind's family, checked here: shared tensors first, private user
 * tables last), deterministic initialisation, gradients with touched-row sets,
 * workspaces, batch checks, and the entry points that dispatch to the family's ops
 * (family.h; the families are model_mf.c and model_ncf.c, the registry registry.c).
 * Invariants: the slab layout depends only on the config; fr_model_loss_grad allocates
 * nothing and touches only ws and g; a gradient's untouched table rows are always 0;
 * nothing here depends on which kind a model is. */
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "core/core.h"
#include "model/family.h"
#include "model/layers.h"
#include "model/model_internal.h"

/* ---------------------------------------------------------------- config */

void fr_model_config_default(fr_model_config *cfg, fr_model_kind kind) {
    memset(cfg, 0, sizeof *cfg);
    cfg->kind = kind;
    cfg->seed = 1;
    const fri_model_family *f = fri_model_family_of(kind);
    if (f) f->config_default(cfg);
}

const char *fri_loss_name(fr_loss l) {
    return l == FR_LOSS_MSE ? "mse" : l == FR_LOSS_BCE ? "bce" : l == FR_LOSS_BPR ? "bpr" : l == FR_LOSS_CE ? "ce" : "?";
}

fr_err fr_model_config_check(const fr_model_config *c) {
    if (!c) return fri_fail(FR_ERR_INVALID, "model config is NULL");
    const fri_model_family *f = fri_model_family_of(c->kind);
    if (!f) {
        char known[512];
        fri_model_kind_list(known, sizeof known);
        return fri_fail(FR_ERR_INVALID, "model kind %d is not one of %s", (int)c->kind, known);
    }
    const char *k = fr_model_kind_name(c->kind);
    if (c->n_items == 0) return fri_fail(FR_ERR_INVALID, "%s: n_items is 0: a model needs items", k);
    if (c->n_users > (1u << 30) || c->n_items > (1u << 30))
        return fri_fail(FR_ERR_INVALID, "%s: %u users x %u items: at most 2^30 each", k, c->n_users,
                        c->n_items);
    fr_err e = f->config_check(c);
    if (e) return e;
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

fr_err fri_model_add_tensor(fr_model *m, const char *name, uint32_t rows, uint32_t cols, fr_tensor_kind kind,
                            fri_init init, int *idx) {
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
    if (idx) *idx = m->n_tensors;
    m->n_tensors++;
    m->n_params += n;
    return FR_OK;
}

fr_err fri_model_layout(fr_model *m, const fr_model_config *c) {
    m->fam = fri_model_family_of(c->kind);
    if (!m->fam) return fri_fail(FR_ERR_INVALID, "model kind %d is not registered", (int)c->kind);
    m->n_tensors = 0;
    m->n_params = 0;
    for (int i = 0; i < FRI_MODEL_MAX_SLOTS; i++) m->slot[i] = -1;
    fr_err e = m->fam->layout(m, c);
    if (e) return e;
    /* the shared prefix ends where the first user table starts; none may follow it but
     * user tables (FedAvg, masks and deltas are one pass over the prefix) */
    m->n_shared = m->n_params;
    for (int i = 0; i < m->n_tensors; i++)
        if (m->t[i].kind == FR_TENSOR_USER_TABLE) {
            if (m->n_shared == m->n_params) m->n_shared = m->t[i].offset;
        } else if (m->n_shared != m->n_params) {
            return fri_fail(FR_ERR_INTERNAL, "%s: shared tensor %s after a user table", m->fam->name, m->t[i].name);
        }
    return FR_OK;
}

/* ---------------------------------------------------------------- init */

static float init_std(const fr_model *m) { return m->cfg.init_std > 0.0f ? m->cfg.init_std : m->fam->init_std; }

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

void fri_model_user_row_init(const fr_model *m, int t, uint32_t global_user, float *out) {
    fr_rng r;
    fr_rng_init(&r, m->cfg.seed, (uint32_t)t, global_user, FR_PURPOSE_INIT);
    init_values(out, m->t[t].cols, m->init[t], init_std(m), 0, 0, &r);
}

static void init_user_row(fr_model *m, uint32_t row, uint32_t global) {
    for (int i = 0; i < m->n_tensors; i++) {
        const fr_tensor *t = &m->t[i];
        if (t->kind != FR_TENSOR_USER_TABLE) continue;
        fri_model_user_row_init(m, i, global, m->params + t->offset + (size_t)row * t->cols);
    }
}

static void model_init(fr_model *m) {
    for (int i = 0; i < m->n_tensors; i++) {
        const fr_tensor *t = &m->t[i];
        if (t->kind == FR_TENSOR_USER_TABLE) continue;
        fr_rng r;
        fr_rng_init(&r, m->cfg.seed, (uint32_t)i, 0, FR_PURPOSE_INIT);
        /* weights are [out x in]: fan_in = cols, fan_out = rows */
        init_values(m->params + t->offset, (size_t)t->rows * t->cols, m->init[i], init_std(m),
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
    fri_advise_huge(m->params, m->n_params * sizeof(float)); /* rows are read at random */
    *out = m;
    return FR_OK;
}

fr_err fr_model_create(fr_model **out, const fr_model_config *cfg) {
    fr_err e = fri_model_alloc(out, cfg);
    if (e) return e;
    model_init(*out);
    return FR_OK;
}

void fri_model_bind_rows(fr_model *m, const uint32_t *items, uint32_t n_items, const uint32_t *users,
                         uint32_t n_users, uint32_t catalogue) {
    m->row_item = items;
    m->n_row_item = items ? n_items : 0;
    m->row_user = users;
    m->n_row_user = users ? n_users : 0;
    m->catalogue = catalogue;
}

static bool client_lean = true; /* tests: false keeps every client on the generic loop */
static atomic_ullong lean_fits;  /* fused fits done (tests: that the fused path ran) */

bool fri_client_lean_allow(bool allow) {
    bool was = client_lean;
    client_lean = allow;
    return was;
}

fr_err fri_model_client_sgd(const fr_model *global, const fri_client_sgd *a, double *loss_sum) {
    if (!client_lean || !global->fam->client_sgd || a->batch == 0) return FR_ERR_UNSUPPORTED;
    fr_err e = global->fam->client_sgd(global, a, loss_sum);
    if (!e) atomic_fetch_add_explicit(&lean_fits, 1, memory_order_relaxed);
    return e;
}
uint64_t fri_client_lean_fits(void) { return atomic_load(&lean_fits); }

fr_err fr_model_clone(fr_model **out, const fr_model *m) {
    fr_err e = fri_model_alloc(out, &m->cfg);
    if (e) return e;
    memcpy((*out)->params, m->params, m->n_params * sizeof(float));
    (*out)->graph = m->graph;
    return FR_OK;
}

/* ------------------------------------------------------------------ the training graph */

bool fr_model_needs_graph(const fr_model *m) { return fri_model_kind_needs_graph(m->cfg.kind); }

fr_model_graph fr_model_set_graph(fr_model *m, const fr_model_graph *g) {
    fr_model_graph old = m->graph;
    if (g) m->graph = *g;
    else memset(&m->graph, 0, sizeof m->graph);
    return old;
}

fr_model_graph fr_model_graph_of(const fr_model *m) { return m->graph; }

static size_t dataset_items(const void *ctx, uint32_t user, const uint32_t **items) {
    const fr_dataset *d = ctx;
    if (user >= fr_dataset_n_users(d)) { *items = NULL; return 0; }
    return fr_dataset_user(d, user, items, NULL, NULL);
}

fr_model_graph fr_model_graph_dataset(const fr_dataset *dataset) {
    fr_model_graph g = {dataset_items, dataset};
    return g;
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

fr_err fr_model_forget_items(fr_model *m, const uint32_t *items, size_t n) {
    for (size_t k = 0; k < n; k++)
        if (items[k] >= m->cfg.n_items)
            return fri_fail(FR_ERR_RANGE, "forget items: item %u (at %zu): expected < %u, the model's items", items[k],
                            k, m->cfg.n_items);
    for (int t = 0; t < m->n_tensors; t++) {
        const fr_tensor *x = &m->t[t];
        if (x->kind != FR_TENSOR_ITEM_TABLE) continue;
        for (size_t k = 0; k < n; k++)
            memset(m->params + x->offset + (size_t)items[k] * x->cols, 0, x->cols * sizeof(float));
    }
    return FR_OK;
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

/* A workspace: the family's struct of buffer views (ws_size bytes, after this header)
 * into one zeroed arena. */
struct fr_model_ws {
    fr_model_config shape;        /* the config it was sized for */
    const fri_model_family *fam;  /* its family */
    size_t max_batch;             /* examples per call */
    float *arena;                 /* one allocation the family carves */
    void *fws;                    /* the family's workspace struct */
};

#define WS_HEAD ((sizeof(struct fr_model_ws) + 63) / 64 * 64) /* the family struct's offset */

fr_err fr_model_ws_create(fr_model_ws **out, const fr_model *m, size_t max_batch) {
    *out = NULL;
    if (max_batch == 0 || max_batch > ((size_t)1 << 24))
        return fri_fail(FR_ERR_INVALID, "workspace max_batch %zu: expected 1..%zu", max_batch,
                        (size_t)1 << 24);
    fri_blas_single_thread();
    const fri_model_family *f = m->fam;
    size_t total = f->ws_carve(NULL, NULL, &m->cfg, max_batch);
    fr_model_ws *ws = fri_calloc(1, WS_HEAD + f->ws_size);
    if (!ws) return FR_ERR_NOMEM;
    ws->arena = fri_aligned_alloc((total ? total : 1) * sizeof(float));
    if (!ws->arena) { fri_free(ws); return FR_ERR_NOMEM; }
    memset(ws->arena, 0, total * sizeof(float));
    ws->shape = m->cfg;
    ws->fam = f;
    ws->max_batch = max_batch;
    ws->fws = (char *)ws + WS_HEAD;
    f->ws_carve(ws->fws, ws->arena, &m->cfg, max_batch);
    *out = ws;
    return FR_OK;
}

void fr_model_ws_free(fr_model_ws *ws) {
    if (!ws) return;
    if (ws->fam->ws_release) ws->fam->ws_release(ws->fws);
    fri_free_aligned(ws->arena);
    fri_free(ws);
}

size_t fr_model_ws_max_batch(const fr_model_ws *ws) { return ws->max_batch; }

void fri_model_ws_hold(fr_model_ws *ws, bool on) {
    if (ws && ws->fam->ws_hold) ws->fam->ws_hold(ws->fws, on);
}

static int ws_matches(const fr_model_ws *ws, const fr_model *m) {
    return ws->shape.kind == m->cfg.kind && m->fam->ws_fits(&ws->shape, &m->cfg);
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
        return fri_fail(FR_ERR_INVALID, "%s loss needs labels (batch.label)", fri_loss_name(m->cfg.loss));
    const uint32_t L = m->fam->history_len ? m->fam->history_len(&m->cfg) : 0;
    if (L && b->hist_neg && !b->hist)
        return fri_fail(FR_ERR_INVALID, "batch with history negatives but no history");
    if (L && b->hist) {
        if (b->hist_len != L)
            return fri_fail(FR_ERR_INVALID, "batch history of %u items: the model reads %u", b->hist_len, L);
        bool loss_seen = false; /* a position of this example with a loss term */
        for (size_t i = 0; i < b->n * L; i++) {
            if (i % L == 0) loss_seen = false;
            if (b->hist[i] >= m->cfg.n_items && b->hist[i] != FR_NO_ITEM)
                return fri_fail(FR_ERR_RANGE, "batch example %zu: history item %u, the model has %u items", i / L,
                                b->hist[i], m->cfg.n_items);
            if (!b->hist_neg) continue;
            const uint32_t hn = b->hist_neg[i];
            if (hn >= m->cfg.n_items && hn != FR_NO_ITEM && hn != FR_NO_LOSS)
                return fri_fail(FR_ERR_RANGE, "batch example %zu: history negative %u, the model has %u items",
                                i / L, hn, m->cfg.n_items);
            if (hn == FR_NO_LOSS && loss_seen)
                return fri_fail(FR_ERR_INVALID,
                                "batch example %zu: context-only position %zu after a position with a loss "
                                "(expected the context-only positions first)", i / L, i % L);
            if (hn != FR_NO_LOSS && b->hist[i] != FR_NO_ITEM) loss_seen = true;
        }
    }
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

fr_err fr_model_loss_grad(const fr_model *m, fr_model_ws *ws, const fr_batch *b, fr_grad *g,
                          double *loss) {
    if (!g) return fri_fail(FR_ERR_INVALID, "fr_model_loss_grad without a gradient");
    fr_err e = check_batch(m, ws, b);
    if (e) return e;
    if (!fri_grad_matches(g, m)) return fri_fail(FR_ERR_INVALID, "gradient made for another model shape");
    return m->fam->loss_grad(m, ws->fws, b, g, loss);
}

fr_err fr_model_loss(const fr_model *m, fr_model_ws *ws, const fr_batch *b, double *loss) {
    fr_err e = check_batch(m, ws, b);
    if (e) return e;
    return m->fam->loss_grad(m, ws->fws, b, NULL, loss);
}

bool fri_model_reads_all_items(const fr_model *m) {
    return m->fam->reads_all_items && m->fam->reads_all_items(&m->cfg);
}

uint32_t fr_model_history_len(const fr_model *m) {
    return m->fam->history_len ? m->fam->history_len(&m->cfg) : 0;
}

/* The workspace a scoring call of n pairs uses: ws, checked against m, or (ws NULL) a
 * new one in *own, for the caller to free. */
static fr_err ws_for(const fr_model *m, fr_model_ws **ws, size_t n, fr_model_ws **own) {
    *own = NULL;
    if (!*ws) {
        fr_err e = fr_model_ws_create(own, m, n < 256 ? (n ? n : 1) : 256);
        if (e) return e;
        *ws = *own;
    } else if (!ws_matches(*ws, m)) {
        return fri_fail(FR_ERR_INVALID, "workspace made for another model shape");
    }
    return FR_OK;
}

fr_err fr_model_score_history(const fr_model *m, fr_model_ws *ws, const uint32_t *hist, uint32_t hist_len,
                              const uint32_t *items, size_t n, float *out) {
    const uint32_t L = fr_model_history_len(m);
    if (!L || !m->fam->score_history)
        return fri_fail(FR_ERR_UNSUPPORTED, "%s reads no history", fr_model_kind_name(m->cfg.kind));
    if (hist_len != L) return fri_fail(FR_ERR_INVALID, "a history of %u items: the model reads %u", hist_len, L);
    for (uint32_t t = 0; t < L; t++)
        if (hist[t] >= m->cfg.n_items && hist[t] != FR_NO_ITEM)
            return fri_fail(FR_ERR_RANGE, "history position %u: item %u, the model has %u items", t, hist[t],
                            m->cfg.n_items);
    for (size_t i = 0; i < n; i++)
        if (items[i] >= m->cfg.n_items)
            return fri_fail(FR_ERR_RANGE, "score item %zu: %u, the model has %u items", i, items[i], m->cfg.n_items);
    fr_model_ws *own = NULL;
    fr_err e = ws_for(m, &ws, n, &own);
    if (e) return e;
    for (size_t at = 0; at < n; at += ws->max_batch) {
        size_t B = n - at < ws->max_batch ? n - at : ws->max_batch;
        m->fam->score_history(m, ws->fws, hist, items + at, B, out + at);
    }
    fr_model_ws_free(own);
    return FR_OK;
}

fr_err fr_model_score(const fr_model *m, fr_model_ws *ws, const uint32_t *users,
                      const uint32_t *items, size_t n, float *out) {
    if (!m->graph.items && fri_model_kind_needs_graph(m->cfg.kind))
        return fri_fail(FR_ERR_INVALID, "%s: no training graph bound (fr_model_set_graph): its scores propagate "
                        "a user's training items", fr_model_kind_name(m->cfg.kind));
    for (size_t i = 0; i < n; i++) {
        if (users[i] >= m->cfg.n_users)
            return fri_fail(FR_ERR_RANGE, "score pair %zu: user %u, the model has %u user rows", i,
                            users[i], m->cfg.n_users);
        if (items[i] >= m->cfg.n_items)
            return fri_fail(FR_ERR_RANGE, "score pair %zu: item %u, the model has %u items", i,
                            items[i], m->cfg.n_items);
    }
    fr_model_ws *own = NULL;
    fr_err e = ws_for(m, &ws, n, &own);
    if (e) return e;
    for (size_t at = 0; at < n; at += ws->max_batch) {
        size_t B = n - at < ws->max_batch ? n - at : ws->max_batch;
        m->fam->score(m, ws->fws, users + at, items + at, B, out + at);
    }
    fr_model_ws_free(own);
    return FR_OK;
}
