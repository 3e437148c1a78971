/* The library side of a networked client process (fr_netc, fedrec/net_client.h): one
 * client's whole state and the client step on the TASK bytes a transport hands it.
 *
 * Invariants:
 *   - The same learning code as the simulator: the step is fri_client_step_encode on the
 *     client's users in the given order (a device: the one-user form of fr_client_data,
 *     as sim.c's run_client), the catalogue is the TASK's, and a user's private rows start
 *     as fr_model_create gives that user's rows in the simulator's full model
 *     (fri_model_user_row_init, one stream per row: nothing the size of the federation is
 *     allocated). So a federation of these clients gives the simulator's model bit for bit.
 *   - A step commits or changes nothing: it works on a scratch copy of the private state
 *     (two buffers, swapped on success) and, on the first TASK, on a federation record
 *     that is installed only when the step succeeds; a load is checked whole and built
 *     aside before it replaces anything.
 *   - The federation is named by its config CRC: the first TASK or a loaded state sets
 *     it, and anything of another federation is refused naming both CRCs.
 *   - Scoring (evaluation, recommendation) puts a user's private rows into the one user
 *     row of the latest global model and scores that model with fr_model_scorer: the
 *     floats the simulator's model gives that user. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "core/core.h"
#include "eval/eval_internal.h"
#include "fedrec/model_eval.h"
#include "fedrec/net_client.h"
#include "fl/fl_internal.h"
#include "model/model_internal.h"
#include "runtime/net/netc_internal.h"

/* A decoded TASK that clients stepped on a scratch keep as their latest global model
 * (fr_netc_step_shared): one per thread and round instead of one copy per client.
 * Read-only once clients hold it; freed with its last reference. */
typedef struct snap {
    atomic_uint refs;
    fr_task *task;
} snap;

static void snap_release(snap *p) {
    if (p && atomic_fetch_sub(&p->refs, 1) == 1) {
        fr_task_free(p->task);
        fri_free(p);
    }
}

/* What a client holds of the federation it has joined. */
typedef struct fed {
    uint32_t crc;              /* config CRC-32C: names the federation */
    uint8_t *config;           /* its config block (for the state's TASK) */
    size_t config_n;
    uint32_t round;            /* the round of the latest global model's TASK */
    uint64_t bound;            /* that TASK's bound */
    fr_model *g;               /* latest global model (n_users 1): shared prefix; user row = scratch;
                                  owned, or borrowed from sn (then read-only) */
    snap *sn;                  /* the snapshot g is borrowed from (a reference), or NULL: g is owned */
    bool partial;              /* g came from a rows TASK: its item rows are not the round's (NaN
                                  or another client's), so it is not scored or recommended from */
    int n_ut;                  /* user tables */
    int ut[FR_MODEL_MAX_TENSORS];       /* their tensor indices */
    size_t uoff[FR_MODEL_MAX_TENSORS];  /* floats before table i's rows in a private buffer */
    size_t n_priv;             /* private floats: U times the user tables' widths */
    bool kept;                 /* keep_private_optim: moments and a step count too */
    bool dp;                   /* the federation is differentially private (dp_clip > 0) */
    size_t n_res;              /* top-k: the error-feedback residual's floats (the dense values), else 0 */
    float *buf[2];             /* [n_priv * (kept ? 3 : 1) + n_res] rows | m1 | m2 | residual; current and
                                  scratch (a step's residual is committed with its rows) */
    uint64_t steps[2];         /* kept step counts of the two */
    int cur;                   /* the current buffer */
    float **ptr[2];            /* [3 * n_ut * U] rows, m1, m2 pointers (t * U + j) into buf[b] */
    fr_client_ws *ws;          /* client scratch, made by the first step */
} fed;

struct fr_netc {
    uint32_t client;           /* its id in the federation */
    const fr_dataset *data;    /* its interactions, global ids (borrowed) */
    uint32_t U;                /* users held */
    uint32_t *users;           /* [U] global ids, row j of the private tables */
    uint32_t *order;           /* [U] positions j by increasing users[j] (lookups) */
    fr_client_user *cu;        /* [U] their interactions */
    char *path;                /* state file, or NULL */
    fed f;                     /* the federation (joined when f.g is set) */
    fr_task *task;             /* the TASK being stepped or loaded */
    const fr_task *last;       /* the TASK of the last step (c->task or a scratch's), or NULL */
    const double *pop;         /* the items' public popularity (decoys), borrowed, or NULL */
    uint32_t pop_n;            /* its items */
    /* its users' side features (lightfm, fm; fr_netc_set_user_features), or uf_off NULL */
    uint64_t *uf_off;          /* [U + 1] */
    uint32_t *uf_ids;          /* [uf_off[U]] ids of the federation's user vocabulary */
    float *uf_w;               /* [uf_off[U]] */
    uint32_t uf_src, uf_h;     /* the last TASK feature set (handle) and it with these lists */
};

static void fed_free(fed *f) {
    if (f->sn) snap_release(f->sn);
    else fr_model_free(f->g);
    fri_free(f->config);
    for (int b = 0; b < 2; b++) {
        fri_free(f->buf[b]);
        fri_free(f->ptr[b]);
    }
    fr_client_ws_free(f->ws);
    memset(f, 0, sizeof *f);
}

/* The private rows and kept moments; then the residual. */
static size_t fed_row_floats(const fed *f) { return f->n_priv * (f->kept ? 3 : 1); }
static size_t fed_floats(const fed *f) { return fed_row_floats(f) + f->n_res; }

/* A federation record for c from a TASK's configs: the global model's layout, the
 * private buffers with the users' initial rows, zero moments and step count. */
static fr_err fed_make(fed *f, const fr_netc *c, const fr_task *t, snap *sn) {
    memset(f, 0, sizeof *f);
    fri_buf cb = {0};
    fr_err e = fri_fl_config_block(&cb, fr_task_model_config(t), fr_task_fl_config(t));
    if (e) { fri_buf_free(&cb); return e; }
    f->config = cb.data;
    f->config_n = cb.len;
    f->crc = fr_crc32c(0, f->config, f->config_n);
    if (f->crc != fr_task_config_crc(t)) { /* encodings are canonical: cannot happen */
        e = fri_fail(FR_ERR_INTERNAL, "client %u: the TASK's config block re-encodes to another CRC", c->client);
        goto fail;
    }
    if (sn) { /* the snapshot's model, borrowed: nothing the size of the model per client */
        f->g = (fr_model *)fr_task_model(sn->task);
        f->sn = sn;
        atomic_fetch_add(&sn->refs, 1);
    } else if ((e = fri_model_alloc(&f->g, fr_task_model_config(t)))) goto fail;
    size_t at = 0;
    for (int i = 0; i < fr_model_n_tensors(f->g); i++) {
        const fr_tensor *tt = fr_model_tensor(f->g, i);
        if (tt->kind != FR_TENSOR_USER_TABLE) continue;
        f->ut[f->n_ut] = i;
        f->uoff[f->n_ut++] = at;
        at += (size_t)c->U * tt->cols;
    }
    f->n_priv = at;
    f->kept = fr_task_fl_config(t)->keep_private_optim;
    f->dp = fr_fl_dp_on(fr_task_fl_config(t));
    if (fr_task_fl_config(t)->compress_topk) /* the round's dense values (fr_round_shape's dense_len) */
        for (int i = 0; i < fr_model_n_tensors(f->g); i++) {
            const fr_tensor *tt = fr_model_tensor(f->g, i);
            if (tt->kind == FR_TENSOR_DENSE) f->n_res += (size_t)tt->rows * tt->cols;
        }
    size_t nf = fed_floats(f), np = 3 * (size_t)f->n_ut * c->U;
    e = FR_ERR_NOMEM;
    for (int b = 0; b < 2; b++) {
        f->buf[b] = fri_calloc(nf ? nf : 1, sizeof *f->buf[b]);
        f->ptr[b] = fri_calloc(np ? np : 1, sizeof *f->ptr[b]);
        if (!f->buf[b] || !f->ptr[b]) goto fail;
        for (int i = 0; i < f->n_ut; i++) {
            uint32_t cols = fr_model_tensor(f->g, f->ut[i])->cols;
            for (uint32_t j = 0; j < c->U; j++) {
                float *row = f->buf[b] + f->uoff[i] + (size_t)j * cols;
                size_t k = (size_t)i * c->U + j, nu = (size_t)f->n_ut * c->U;
                f->ptr[b][k] = row;
                f->ptr[b][nu + k] = f->kept ? row + f->n_priv : NULL;
                f->ptr[b][2 * nu + k] = f->kept ? row + 2 * f->n_priv : NULL;
                if (b == 0) fri_model_user_row_init(f->g, f->ut[i], c->users[j], row);
            }
        }
    }
    return FR_OK;
fail:
    fed_free(f);
    return e;
}

void fr_netc_free(fr_netc *c) {
    if (!c) return;
    fed_free(&c->f);
    fr_task_free(c->task);
    fri_free(c->users);
    fri_free(c->order);
    fri_free(c->cu);
    fri_free(c->path);
    fri_free(c->uf_off);
    fri_free(c->uf_ids);
    fri_free(c->uf_w);
    fri_free(c);
}

fr_err fr_netc_set_user_features(fr_netc *c, const uint64_t *off, const uint32_t *ids, const float *w) {
    fri_free(c->uf_off);
    fri_free(c->uf_ids);
    fri_free(c->uf_w);
    c->uf_off = NULL;
    c->uf_ids = NULL;
    c->uf_w = NULL;
    c->uf_src = c->uf_h = 0;
    if (!off) return FR_OK;
    for (uint32_t j = 0; j < c->U; j++)
        if (off[j + 1] < off[j])
            return fri_fail(FR_ERR_INVALID, "client %u: user features: offsets decrease at its user %u", c->client, j);
    size_t nnz = (size_t)(off[c->U] - off[0]);
    c->uf_off = fri_malloc(((size_t)c->U + 1) * sizeof *c->uf_off);
    c->uf_ids = fri_malloc((nnz ? nnz : 1) * sizeof *c->uf_ids);
    c->uf_w = fri_malloc((nnz ? nnz : 1) * sizeof *c->uf_w);
    if (!c->uf_off || !c->uf_ids || !c->uf_w) {
        fr_err e = fr_netc_set_user_features(c, NULL, NULL, NULL);
        return e ? e : FR_ERR_NOMEM;
    }
    for (uint32_t j = 0; j <= c->U; j++) c->uf_off[j] = off[j] - off[0];
    for (size_t k = 0; k < nnz; k++) {
        c->uf_ids[k] = ids[off[0] + k];
        c->uf_w[k] = w ? w[off[0] + k] : 1.0f;
    }
    return FR_OK;
}

/* The model config a TASK's step and scoring use: the TASK's, with the client's own users'
 * feature lists when it has them (the TASK carries none). */
static fr_err config_for(fr_netc *c, const fr_model_config *tc, fr_model_config *out) {
    *out = *tc;
    if (!c->uf_off || !fr_model_kind_uses_features(tc->kind)) return FR_OK;
    if (c->uf_h && c->uf_src == tc->features) {
        out->features = c->uf_h;
        return FR_OK;
    }
    fr_err e = fri_model_config_user_lists(out, c->users, c->U, c->uf_off, c->uf_ids, c->uf_w);
    if (e) return fri_fail_prefix(e, "client %u", c->client);
    c->uf_src = tc->features;
    c->uf_h = out->features;
    return FR_OK;
}

/* Sorts positions by their user id: a merge sort (a silo may hold many users), stable. */
static void sort_positions(uint32_t *pos, uint32_t *tmp, uint32_t n, const uint32_t *users) {
    if (n < 2) return;
    uint32_t h = n / 2;
    sort_positions(pos, tmp, h, users);
    sort_positions(pos + h, tmp, n - h, users);
    uint32_t i = 0, j = h, k = 0;
    while (i < h && j < n) tmp[k++] = users[pos[j]] < users[pos[i]] ? pos[j++] : pos[i++];
    while (i < h) tmp[k++] = pos[i++];
    while (j < n) tmp[k++] = pos[j++];
    memcpy(pos, tmp, (size_t)n * sizeof *pos);
}

/* Position j of global user u in the client, or -1. */
static int64_t position_of(const fr_netc *c, uint32_t u) {
    uint32_t lo = 0, hi = c->U;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (c->users[c->order[mid]] < u) lo = mid + 1;
        else hi = mid;
    }
    return lo < c->U && c->users[c->order[lo]] == u ? (int64_t)c->order[lo] : -1;
}

fr_err fr_netc_create(fr_netc **out, const fr_dataset *data, const uint32_t *users, uint32_t n_users, uint32_t client,
                      const char *state_path) {
    *out = NULL;
    if (!data || (n_users && !users)) return fri_fail(FR_ERR_INVALID, "client %u: no data or no user list", client);
    uint32_t nu = fr_dataset_n_users(data);
    fr_netc *c = fri_calloc(1, sizeof *c);
    if (!c) return FR_ERR_NOMEM;
    c->client = client;
    c->data = data;
    fr_err e = FR_OK;
    if (users) {
        c->U = n_users;
    } else {
        for (uint32_t u = 0; u < nu; u++) c->U += fr_dataset_user(data, u, NULL, NULL, NULL) > 0;
    }
    size_t U = c->U ? c->U : 1;
    c->users = fri_malloc(U * sizeof *c->users);
    c->order = fri_malloc(U * sizeof *c->order);
    c->cu = fri_calloc(U, sizeof *c->cu);
    if (!c->users || !c->order || !c->cu || fr_task_create(&c->task)) { e = FR_ERR_NOMEM; goto fail; }
    if (state_path && !(c->path = fri_strdup(state_path))) { e = FR_ERR_NOMEM; goto fail; }
    if (users) {
        memcpy(c->users, users, (size_t)n_users * sizeof *users);
    } else {
        uint32_t j = 0;
        for (uint32_t u = 0; u < nu; u++)
            if (fr_dataset_user(data, u, NULL, NULL, NULL) > 0) c->users[j++] = u;
    }
    for (uint32_t j = 0; j < c->U; j++) c->order[j] = j;
    uint32_t *tmp = fri_malloc(U * sizeof *tmp);
    if (!tmp) { e = FR_ERR_NOMEM; goto fail; }
    sort_positions(c->order, tmp, c->U, c->users);
    fri_free(tmp);
    size_t total = 0;
    for (uint32_t k = 0; k < c->U; k++) {
        uint32_t u = c->users[c->order[k]];
        if (u >= nu) {
            e = fri_fail(FR_ERR_INVALID, "client %u: user %u out of range, the data has %u users", client, u, nu);
            goto fail;
        }
        if (k && u == c->users[c->order[k - 1]]) {
            e = fri_fail(FR_ERR_INVALID, "client %u: user %u given twice", client, u);
            goto fail;
        }
    }
    for (uint32_t j = 0; j < c->U; j++) {
        fr_client_user *cu = &c->cu[j];
        cu->user = c->users[j];
        cu->n = fr_dataset_user(data, cu->user, &cu->items, &cu->ratings, NULL);
        total += cu->n;
    }
    if (total == 0) {
        e = fri_fail(FR_ERR_EMPTY, "client %u: its %u users have no interaction to train on", client, c->U);
        goto fail;
    }
    *out = c;
    return FR_OK;
fail:
    fr_netc_free(c);
    return e;
}

void fr_netc_set_popularity(fr_netc *c, const double *weights, uint32_t n_items) {
    c->pop = weights;
    c->pop_n = weights ? n_items : 0;
}

uint32_t fr_netc_client(const fr_netc *c) { return c->client; }
uint32_t fr_netc_n_users(const fr_netc *c) { return c->U; }
uint32_t fr_netc_user(const fr_netc *c, uint32_t j) { return j < c->U ? c->users[j] : UINT32_MAX; }
uint32_t fr_netc_round(const fr_netc *c) { return c->f.g ? c->f.round : 0; }
uint32_t fr_netc_config_crc(const fr_netc *c) { return c->f.g ? c->f.crc : 0; }
bool fr_netc_dp(const fr_netc *c) { return c->f.g && c->f.dp; }
const fr_model *fr_netc_model(const fr_netc *c) { return c->f.g; }

const float *fr_netc_private_row(const fr_netc *c, uint32_t user, int table) {
    int64_t j = position_of(c, user);
    if (!c->f.g || j < 0 || table < 0 || table >= c->f.n_ut) return NULL;
    return c->f.ptr[c->f.cur][(size_t)table * c->U + (size_t)j];
}

/* ------------------------------------------------------------------ the step */

/* Checks that a decoded TASK is of the federation c has joined (if any) and not older than
 * the latest one it had; *round gets its round. */
static fr_err check_task(const fr_netc *c, const fr_task *t, uint32_t *round) {
    uint32_t crc = fr_task_config_crc(t);
    *round = fr_task_round(t);
    if (c->f.g && crc != c->f.crc)
        return fri_fail(FR_ERR_INVALID,
                        "client %u: the TASK is of another federation (config CRC 0x%08x, this client's 0x%08x)",
                        c->client, crc, c->f.crc);
    if (c->f.g && *round < c->f.round)
        return fri_fail(FR_ERR_STATE, "client %u: a TASK of round %u, but this client has had round %u's (stale)",
                        c->client, *round, c->f.round);
    return FR_OK;
}

/* What clients stepped one at a time on one thread share (fr_netc_scratch): the TASK last
 * decoded (a load generator's clients of one round get the same bytes) and the client
 * step's workspace (as a simulator's worker keeps one for all its clients). */
struct fr_netc_scratch {
    snap *cur;                 /* the TASK last decoded (a reference), or NULL */
    uint8_t *bytes;            /* [n] its bytes, to tell the same TASK again */
    size_t n, cap;
    bool valid;                /* task holds bytes[0, n) decoded */
    fr_client_ws *ws;          /* the client step's workspace, or NULL */
    uint32_t ws_crc;           /* the config CRC it was made for */
    const double *ws_pop;      /* the popularity it was given */
    uint32_t ws_feat;          /* the feature set of its model config */
};

fr_err fr_netc_scratch_create(fr_netc_scratch **out) {
    *out = NULL;
    fr_netc_scratch *s = fri_calloc(1, sizeof *s);
    if (!s) return FR_ERR_NOMEM;
    *out = s;
    return FR_OK;
}

void fr_netc_scratch_free(fr_netc_scratch *s) {
    if (!s) return;
    snap_release(s->cur);
    fri_free(s->bytes);
    fr_client_ws_free(s->ws);
    fri_free(s);
}

/* The TASK task[0, n) decoded in s->cur: decoded again only when its bytes differ, into a
 * new snapshot when clients hold the current one. */
static fr_err scratch_task(fr_netc_scratch *s, const uint8_t *task, size_t n, uint32_t client) {
    if (s->cur && s->valid && n == s->n && (n == 0 || memcmp(s->bytes, task, n) == 0)) return FR_OK;
    s->valid = false;
    if (!s->cur || atomic_load(&s->cur->refs) > 1) {
        snap *p = fri_calloc(1, sizeof *p);
        if (!p) return FR_ERR_NOMEM;
        atomic_init(&p->refs, 1);
        if (fr_task_create(&p->task)) { fri_free(p); return FR_ERR_NOMEM; }
        snap_release(s->cur);
        s->cur = p;
    }
    fr_err e = fr_task_decode(s->cur->task, task, n);
    if (e) return fri_fail_prefix(e, "client %u", client);
    if (n > s->cap) {
        uint8_t *b = fri_realloc(s->bytes, n);
        if (!b) return FR_ERR_NOMEM;
        s->bytes = b;
        s->cap = n;
    }
    if (n) memcpy(s->bytes, task, n);
    s->n = n;
    s->valid = true;
    return FR_OK;
}

static fr_err step_on(fr_netc *c, const fr_task *t, snap *sn, fr_client_ws **wsp, const uint8_t **result,
                      size_t *result_n);

/* The client step's workspace for TASK t (model config mc: t's with c's feature lists). */
static fr_err make_ws(const fr_netc *c, const fr_task *t, const fr_model_config *mc, fr_client_ws **ws) {
    const fr_fl_config *fc = fr_task_fl_config(t);
    const bool popneg = fc->neg_sampler == FR_NEG_POPULARITY, needs = fc->decoys > 0 || popneg;
    if (needs && !c->pop)
        return fri_fail(FR_ERR_INVALID, "client %u: the federation %s drawn from the items' "
                        "public popularity, and this client has none (fedrec data shard writes it as "
                        "popularity.txt beside the shards: fedrec client --popularity FILE)", c->client,
                        fc->decoys > 0 ? "hides items with decoys" : "trains on negatives");
    if (needs && c->pop_n != mc->n_items)
        return fri_fail(FR_ERR_INVALID, "client %u: the items' popularity covers %u items, the federation's catalogue "
                        "%u (a popularity file of another federation?)", c->client, c->pop_n, mc->n_items);
    fr_err e = fr_client_ws_create(ws, mc, fc);
    if (!e && needs) e = fr_client_ws_set_popularity(*ws, c->pop, c->pop_n);
    if (e) {
        fr_client_ws_free(*ws);
        *ws = NULL;
    }
    return e;
}

fr_err fri_netc_plan_rows(fr_netc *c, fr_netc_scratch *s, const uint8_t *task, size_t task_n, const uint32_t **ids,
                          size_t *n) {
    *ids = NULL;
    *n = 0;
    fr_err e = scratch_task(s, task, task_n, c->client);
    if (e) return e;
    const fr_task *t = s->cur->task;
    if (!fri_task_rows_only(t)) return FR_OK;
    uint32_t round, crc = fr_task_config_crc(t);
    fr_model_config mc;
    if ((e = check_task(c, t, &round)) || (e = config_for(c, fr_task_model_config(t), &mc))) return e;
    if (fr_dataset_n_items(c->data) > mc.n_items)
        return fri_fail(FR_ERR_INVALID, "client %u: its data has %u items, the federation's catalogue %u", c->client,
                        fr_dataset_n_items(c->data), mc.n_items);
    /* the workspace the step will use (fr_netc_step_shared keeps it) */
    if (s->ws && (s->ws_crc != crc || s->ws_pop != c->pop || s->ws_feat != mc.features)) {
        fr_client_ws_free(s->ws);
        s->ws = NULL;
    }
    if (!s->ws && (e = make_ws(c, t, &mc, &s->ws))) return e;
    s->ws_crc = crc;
    s->ws_pop = c->pop;
    s->ws_feat = mc.features;
    fr_client_data d = {c->cu[0].user, c->cu[0].items, c->cu[0].ratings, c->cu[0].n, mc.n_items,
                        c->U > 1 ? c->U : 0, c->U > 1 ? c->cu : NULL};
    return fri_client_plan_rows(s->ws, t, c->client, &d, ids, n);
}

fr_err fri_netc_fill_rows(fr_netc_scratch *s, const uint32_t *ids, size_t n, const uint8_t *rows, size_t rows_n) {
    if (!s->cur || !s->valid) return fri_fail(FR_ERR_STATE, "rows: no TASK decoded");
    return fri_task_rows_fill(s->cur->task, ids, n, rows, rows_n);
}

fr_err fr_netc_step(fr_netc *c, const uint8_t *task, size_t task_n, const uint8_t **result, size_t *result_n) {
    *result = NULL;
    *result_n = 0;
    fr_err e = fr_task_decode(c->task, task, task_n);
    if (e) return fri_fail_prefix(e, "client %u", c->client);
    return step_on(c, c->task, NULL, NULL, result, result_n);
}

fr_err fr_netc_step_shared(fr_netc *c, fr_netc_scratch *s, const uint8_t *task, size_t task_n,
                           const uint8_t **result, size_t *result_n) {
    *result = NULL;
    *result_n = 0;
    fr_err e = scratch_task(s, task, task_n, c->client);
    if (e) return e;
    uint32_t crc = fr_task_config_crc(s->cur->task);
    fr_model_config mc;
    if ((e = config_for(c, fr_task_model_config(s->cur->task), &mc))) return e;
    if (s->ws && (s->ws_crc != crc || s->ws_pop != c->pop || s->ws_feat != mc.features)) {
        fr_client_ws_free(s->ws); /* another federation, or a client with other feature lists */
        s->ws = NULL;
    }
    e = step_on(c, s->cur->task, s->cur, &s->ws, result, result_n);
    if (s->ws) {
        s->ws_crc = crc;
        s->ws_pop = c->pop;
        s->ws_feat = mc.features;
    }
    return e;
}

/* The global model of f owned by f (a copy of the snapshot's it borrowed), in *g (NULL:
 * it is already). */
static fr_err own_model(const fed *f, fr_model **g) {
    *g = NULL;
    if (!f->sn) return FR_OK;
    return fr_model_clone(g, f->g);
}

/* f's latest global model becomes t's: borrowed from snapshot sn, or copied into an owned
 * model (own: one made by own_model for a client that borrowed, or NULL). */
static void adopt_model(fed *f, const fr_task *t, snap *sn, fr_model *own) {
    if (sn) {
        if (f->sn == sn) return;
        if (f->sn) snap_release(f->sn);
        else fr_model_free(f->g);
        f->g = (fr_model *)fr_task_model(sn->task);
        f->sn = sn;
        atomic_fetch_add(&sn->refs, 1);
        return;
    }
    if (own) {
        snap_release(f->sn);
        f->sn = NULL;
        f->g = own;
    }
    fr_model_set_shared(f->g, fr_model_params_const(fr_task_model(t)));
}

/* The step on a decoded TASK t (of snapshot sn, or NULL), with the workspace *wsp (made
 * here when NULL), or with the client's own (wsp NULL). */
static fr_err step_on(fr_netc *c, const fr_task *t, snap *sn, fr_client_ws **wsp, const uint8_t **result,
                      size_t *result_n) {
    uint32_t round = 0;
    fr_err e = check_task(c, t, &round);
    if (e) return e;
    fr_model *own = NULL;
    fr_model_config mcu;
    if ((e = config_for(c, fr_task_model_config(t), &mcu))) return e;
    const fr_model_config *mc = &mcu;
    if (fr_dataset_n_items(c->data) > mc->n_items)
        return fri_fail(FR_ERR_INVALID,
                        "client %u: its data has %u items, the federation's catalogue %u (the data must use the "
                        "federation's item ids)",
                        c->client, fr_dataset_n_items(c->data), mc->n_items);
    fed fresh, *f = &c->f;
    bool joining = !c->f.g;
    if (joining) {
        if ((e = fed_make(&fresh, c, t, sn))) return e;
        f = &fresh;
    } else if (!sn && (e = own_model(f, &own))) return e;
    fr_client_ws **ws = wsp ? wsp : &f->ws;
    if (!*ws && (e = make_ws(c, t, mc, ws))) goto fail;
    int nx = 1 - f->cur;
    memcpy(f->buf[nx], f->buf[f->cur], fed_floats(f) * sizeof *f->buf[nx]);
    f->steps[nx] = f->steps[f->cur];
    size_t nu = (size_t)f->n_ut * c->U;
    fr_client_private priv = {f->ptr[nx], f->kept ? f->ptr[nx] + nu : NULL, f->kept ? f->ptr[nx] + 2 * nu : NULL,
                              f->kept ? &f->steps[nx] : NULL};
    /* a device is the one-user form, a silo its users in order (sim.c's run_client) */
    fr_client_data d = {c->cu[0].user, c->cu[0].items, c->cu[0].ratings, c->cu[0].n, mc->n_items,
                        c->U > 1 ? c->U : 0, c->U > 1 ? c->cu : NULL};
    if (f->n_res) fri_client_ws_set_residual(*ws, f->buf[nx] + fed_row_floats(f)); /* top-k's, this step's */
    e = fri_client_step_encode(*ws, t, c->client, &d, &priv, result, result_n);
    if (e) goto fail;
    f->cur = nx;
    adopt_model(f, t, sn, own);
    f->partial = fri_task_rows_only(t);
    f->round = round;
    f->bound = fr_task_bound(t);
    if (joining) c->f = fresh; /* c->f was empty */
    c->last = t;
    return FR_OK;
fail:
    *result = NULL;
    *result_n = 0;
    if (joining) fed_free(&fresh);
    fr_model_free(own);
    return e;
}

/* Keeps the decoded TASK t (of snapshot sn, or NULL) as the latest global model. */
static fr_err sync_on(fr_netc *c, const fr_task *t, snap *sn) {
    uint32_t round = 0;
    fr_err e = check_task(c, t, &round);
    if (e) return e;
    fr_model *own = NULL;
    if (!c->f.g) {
        fed fresh;
        if ((e = fed_make(&fresh, c, t, sn))) return e;
        c->f = fresh;
    } else if (!sn && (e = own_model(&c->f, &own))) return e;
    adopt_model(&c->f, t, sn, own);
    c->f.partial = fri_task_rows_only(t);
    c->f.round = round;
    c->f.bound = fr_task_bound(t);
    return FR_OK;
}

fr_err fr_netc_sync(fr_netc *c, const uint8_t *task, size_t task_n) {
    fr_err e = fr_task_decode(c->task, task, task_n);
    if (e) return fri_fail_prefix(e, "client %u", c->client);
    return sync_on(c, c->task, NULL);
}

fr_err fr_netc_sync_shared(fr_netc *c, fr_netc_scratch *s, const uint8_t *task, size_t task_n) {
    fr_err e = scratch_task(s, task, task_n, c->client);
    if (e) return e;
    return sync_on(c, s->cur->task, s->cur);
}

/* ------------------------------------------------------------------ scoring */

typedef struct scoring {
    fr_netc *c;
    fr_model_scorer *s;
    fr_model *m;               /* the model scored: the client's own global model, or tmp */
    fr_model *tmp;             /* a copy of a borrowed (read-only) global model, or NULL */
    int64_t loaded;            /* the position whose rows are in the model's user row (-1: none) */
    bool unknown;              /* a user the client does not hold was asked for */
} scoring;

/* Puts position j's private rows into the scored model's one user row. */
static void load_user(scoring *sc, uint32_t j) {
    fr_netc *c = sc->c;
    fed *f = &c->f;
    float *w = fr_model_params(sc->m);
    for (int i = 0; i < f->n_ut; i++) {
        const fr_tensor *tt = fr_model_tensor(sc->m, f->ut[i]);
        memcpy(w + tt->offset, f->ptr[f->cur][(size_t)i * c->U + j], tt->cols * sizeof *w);
    }
    /* the one user row stands for this user (its side features are looked up by global id) */
    if (fr_model_kind_uses_features(fr_model_config_of(sc->m)->kind))
        fri_model_bind_rows(sc->m, NULL, 0, &c->users[j], 1, fr_model_config_of(sc->m)->n_items);
}

static void score_user(void *ctx, uint32_t user, const uint32_t *items, size_t n, float *out, int worker) {
    scoring *sc = ctx;
    int64_t j = position_of(sc->c, user);
    if (j < 0) {
        sc->unknown = true;
        for (size_t i = 0; i < n; i++) out[i] = NAN;
        return;
    }
    if (j != sc->loaded) {
        load_user(sc, (uint32_t)j);
        sc->loaded = j;
    }
    fr_model_scorer_fn(sc->s, 0, items, n, out, worker);
}

/* A graph kind's training graph for the model's one user row: the items of the user
 * whose rows are loaded (global ids, as the global model's item rows). */
static size_t scoring_items(const void *ctx, uint32_t row, const uint32_t **items) {
    const scoring *sc = ctx;
    *items = NULL;
    if (row != 0 || sc->loaded < 0) return 0;
    return fr_dataset_user(sc->c->data, sc->c->users[sc->loaded], items, NULL, NULL);
}

static fr_err scoring_begin(fr_netc *c, scoring *sc) {
    memset(sc, 0, sizeof *sc);
    sc->c = c;
    sc->loaded = -1;
    if (!c->f.g || c->f.round == 0)
        return fri_fail(FR_ERR_STATE, "client %u: no global model yet (no TASK stepped, no state loaded)", c->client);
    if (c->f.partial)
        return fri_fail(FR_ERR_STATE, "client %u: its latest TASK (round %u) carried only the item rows it trained on, "
                        "not the whole model (the server's DONE brings it; fedrec client --no-fetch-rows, or a server "
                        "with --full-downlink, sends it every round)", c->client, c->f.round);
    fr_model_config mc;
    fr_err e = config_for(c, fr_model_config_of(c->f.g), &mc);
    if (e) return e;
    if (mc.features != fr_model_config_of(c->f.g)->features) { /* a copy with the users' own lists */
        e = fri_model_alloc(&sc->tmp, &mc);
        if (!e) memcpy(fr_model_params(sc->tmp), fr_model_params_const(c->f.g),
                       fr_model_n_params(c->f.g) * sizeof(float));
    } else e = own_model(&c->f, &sc->tmp);
    if (e) return e;
    sc->m = sc->tmp ? sc->tmp : c->f.g;
    if (fr_model_needs_graph(sc->m)) {
        fr_model_graph g = {scoring_items, sc};
        fr_model_set_graph(sc->m, &g);
    }
    e = fr_model_scorer_create(&sc->s, sc->m, NULL, NULL, NULL);
    if (e) {
        fr_model_set_graph(sc->m, NULL);
        fr_model_free(sc->tmp);
    }
    return e;
}

static void scoring_end(scoring *sc) {
    fr_model_scorer_free(sc->s);
    if (sc->m) fr_model_set_graph(sc->m, NULL); /* sc is going out of scope */
    if (sc->m && fr_model_kind_uses_features(fr_model_config_of(sc->m)->kind))
        fri_model_bind_rows(sc->m, NULL, 0, NULL, 0, 0);
    fr_model_free(sc->tmp);
}

fr_err fr_netc_recommend(fr_netc *c, uint32_t user, size_t k, uint32_t *items, float *scores, size_t *n) {
    *n = 0;
    if (position_of(c, user) < 0)
        return fri_fail(FR_ERR_INVALID, "client %u: user %u is not one of its users", c->client, user);
    scoring sc;
    fr_err e = scoring_begin(c, &sc);
    if (!e) e = fri_eval_topk_n(score_user, &sc, c->data, fr_model_config_of(c->f.g)->n_items, user, k, true, items,
                                scores, n);
    if (!e) e = fr_model_scorer_status(sc.s);
    scoring_end(&sc);
    return e;
}

fr_err fr_netc_evaluate(fr_netc *c, const fr_dataset *test, const fr_negatives *negs, const fr_eval_opts *o,
                        fr_eval_sums *sums) {
    fr_eval_opts opts;
    if (o) opts = *o;
    else fr_eval_opts_default(&opts);
    fr_err e = fr_eval_opts_check(&opts);
    if (e) return e;
    if (!test) return fri_fail(FR_ERR_INVALID, "client %u: evaluation without test data", c->client);
    scoring sc;
    if ((e = scoring_begin(c, &sc))) return e;
    const fr_model_config *mc = fr_model_config_of(c->f.g);
    for (uint32_t u = 0; !e && u < fr_dataset_n_users(test); u++)
        if (fr_dataset_user(test, u, NULL, NULL, NULL) && position_of(c, u) < 0)
            e = fri_fail(FR_ERR_INVALID, "client %u: the test data holds user %u, not one of its users", c->client, u);
    if (!e && fr_dataset_n_items(test) > mc->n_items)
        e = fri_fail(FR_ERR_INVALID, "client %u: the test data has %u items, the federation's catalogue %u",
                     c->client, fr_dataset_n_items(test), mc->n_items);
    if (e) { scoring_end(&sc); return e; }
    if (fr_model_kind_is_explicit(mc->kind)) {
        if (!o) { /* as fr_model_evaluate: clipped to the training ratings' range */
            fr_dataset_info in;
            fr_dataset_info_compute(c->data, &in);
            if (in.interactions && in.rating_max > in.rating_min) {
                opts.clip = true;
                opts.clip_lo = (float)in.rating_min;
                opts.clip_hi = (float)in.rating_max;
            }
        }
        fr_eval_sums_init(sums, FR_EVAL_SUMS_RATING, &opts);
        e = fri_eval_ratings_sums(score_user, &sc, test, &opts, NULL, sums);
    } else if (negs) {
        fr_eval_sums_init(sums, FR_EVAL_SUMS_SAMPLED, &opts);
        e = fri_eval_sampled_sums(score_user, &sc, test, negs, &opts, NULL, sums);
    } else {
        fr_eval_sums_init(sums, FR_EVAL_SUMS_FULL, &opts);
        e = fri_eval_full_sums(score_user, &sc, c->data, test, mc->n_items, &opts, NULL, sums);
    }
    if (!e) e = fr_model_scorer_status(sc.s);
    if (!e && sc.unknown) e = fri_fail(FR_ERR_INVALID, "client %u: scored a user it does not hold", c->client);
    scoring_end(&sc);
    return e;
}

/* ------------------------------------------------------------------ state */

#define STATE_MAGIC "FRNETC\0\0"
/* Version 2 adds the top-k residual (its count and floats after the step count); version 1
 * files (no residual) are read for federations that keep none. */
#define STATE_VERSION 2

fr_err fr_netc_save_bytes(const fr_netc *c, uint8_t **bytes, size_t *n) {
    *bytes = NULL;
    *n = 0;
    const fed *f = &c->f;
    bool joined = f->g != NULL;
    fri_buf b = {0}, task = {0};
    fr_err e = FR_OK;
    /* a partial model is saved as a rows TASK: its dense part, and loaded back as partial */
    if (joined && (e = f->partial ? fri_task_encode_rows(&task, f->round, f->config, f->config_n, f->crc, f->bound, 0,
                                                         f->g)
                                  : fri_task_encode(&task, f->round, f->config, f->config_n, f->crc, f->bound, f->g))) {
        fri_buf_free(&task);
        return e;
    }
    fri_buf_put(&b, STATE_MAGIC, 8);
    fri_buf_u32(&b, STATE_VERSION);
    fri_buf_u32(&b, c->client);
    fri_buf_u32(&b, joined ? f->crc : 0);
    fri_buf_u32(&b, joined ? f->round : 0);
    fri_buf_u32(&b, c->U);
    for (uint32_t j = 0; j < c->U; j++) fri_buf_u32(&b, c->users[j]);
    fri_buf_u64(&b, joined ? f->n_priv : 0);
    fri_buf_u32(&b, joined && f->kept ? 1 : 0);
    size_t nf = joined ? fed_row_floats(f) : 0, nr = joined ? f->n_res : 0;
    for (size_t i = 0; i < nf; i++) fri_buf_f32(&b, f->buf[f->cur][i]);
    if (joined && f->kept) fri_buf_u64(&b, f->steps[f->cur]);
    fri_buf_u64(&b, nr);
    for (size_t i = 0; i < nr; i++) fri_buf_f32(&b, f->buf[f->cur][nf + i]);
    fri_buf_u64(&b, task.len);
    fri_buf_put(&b, task.data, task.len);
    fri_buf_free(&task);
    if (!b.err) fri_buf_u32(&b, fr_crc32c(0, b.data, b.len));
    if (b.err) { fri_buf_free(&b); return FR_ERR_NOMEM; }
    *bytes = b.data;
    *n = b.len;
    return FR_OK;
}

fr_err fr_netc_load_bytes(fr_netc *c, const uint8_t *bytes, size_t n, const char *name) {
    if (!name) name = "<memory>";
    if (n < 8 + 4 + 4 || memcmp(bytes, STATE_MAGIC, 8) != 0)
        return fri_fail(FR_ERR_FORMAT, "%s: not a fedrec client state (bad magic or %zu bytes)", name, n);
    if (fri_get_u32(bytes + n - 4) != fr_crc32c(0, bytes, n - 4))
        return fri_fail(FR_ERR_CHECKSUM, "%s: client state is damaged (CRC-32C mismatch)", name);
    fri_rd rd;
    fri_rd_init(&rd, bytes, n - 4, name, "client state");
    rd.at = 8;
    uint32_t ver, id, crc, round, U, kept;
    uint64_t np, tl, steps = 0, nr = 0;
    const uint8_t *users, *floats, *tb, *res = NULL;
    fr_err e;
    if ((e = fri_rd_u32(&rd, &ver, "version"))) return e;
    if (ver != 1 && ver != STATE_VERSION)
        return fri_fail(FR_ERR_VERSION, "%s: client state version %u, this build reads versions 1 and %d", name, ver,
                        STATE_VERSION);
    if ((e = fri_rd_u32(&rd, &id, "client id")) || (e = fri_rd_u32(&rd, &crc, "config CRC")) ||
        (e = fri_rd_u32(&rd, &round, "round")) || (e = fri_rd_u32(&rd, &U, "user count")) ||
        (e = fri_rd_need_n(&rd, U, 4, "users")) || (e = fri_rd_bytes(&rd, &users, (size_t)U * 4, "users")) ||
        (e = fri_rd_u64(&rd, &np, "private floats")) || (e = fri_rd_u32(&rd, &kept, "kept flag")))
        return e;
    if (kept > 1) return fri_fail(FR_ERR_FORMAT, "%s: kept flag %u, expected 0 or 1", name, kept);
    uint64_t nf = np * (kept ? 3 : 1);
    if (np > UINT64_MAX / 3 || (e = fri_rd_need_n(&rd, nf, 4, "private rows")) ||
        (e = fri_rd_bytes(&rd, &floats, (size_t)nf * 4, "private rows")))
        return e ? e : fri_fail(FR_ERR_FORMAT, "%s: %llu private floats", name, (unsigned long long)np);
    if (kept && (e = fri_rd_u64(&rd, &steps, "step count"))) return e;
    if (ver >= 2 && ((e = fri_rd_u64(&rd, &nr, "residual floats")) || (e = fri_rd_need_n(&rd, nr, 4, "residual")) ||
                     (e = fri_rd_bytes(&rd, &res, (size_t)nr * 4, "residual"))))
        return e;
    if ((e = fri_rd_u64(&rd, &tl, "global model length")) || (e = fri_rd_need_n(&rd, tl, 1, "global model")) ||
        (e = fri_rd_bytes(&rd, &tb, (size_t)tl, "global model")) || (e = fri_rd_end(&rd, "the global model")))
        return e;
    /* whose state it is */
    if (id != c->client)
        return fri_fail(FR_ERR_INVALID, "%s: the state of client %u, this is client %u", name, id, c->client);
    bool same = U == c->U;
    for (uint32_t j = 0; same && j < U; j++) same = fri_get_u32(users + 4 * (size_t)j) == c->users[j];
    if (!same)
        return fri_fail(FR_ERR_INVALID, "%s: the state of a client holding other users (%u users; this one %u)", name,
                        U, c->U);
    if (c->f.g && crc != c->f.crc)
        return fri_fail(FR_ERR_INVALID,
                        "%s: the state of another federation (config CRC 0x%08x, this client's 0x%08x)", name, crc,
                        c->f.crc);
    if (tl == 0) { /* a fresh client's state */
        if (crc != 0 || round != 0 || np != 0 || kept != 0 || nr != 0)
            return fri_fail(FR_ERR_FORMAT, "%s: a state without a global model, but config CRC 0x%08x, round %u, "
                            "%llu private floats", name, crc, round, (unsigned long long)np);
        fed_free(&c->f);
        return FR_OK;
    }
    if ((e = fr_task_decode(c->task, tb, (size_t)tl))) return fri_fail_prefix(e, "%s: the global model", name);
    if (fr_task_config_crc(c->task) != crc || fr_task_round(c->task) != round)
        return fri_fail(FR_ERR_FORMAT, "%s: the global model is of config CRC 0x%08x round %u, the state says 0x%08x "
                        "round %u", name, fr_task_config_crc(c->task), fr_task_round(c->task), crc, round);
    fed fresh;
    if ((e = fed_make(&fresh, c, c->task, NULL))) return e;
    if (fresh.n_priv != np || fresh.kept != (kept != 0)) {
        e = fri_fail(FR_ERR_FORMAT, "%s: %llu private floats%s, but the federation's config makes %zu%s", name,
                     (unsigned long long)np, kept ? " with kept state" : "", fresh.n_priv,
                     fresh.kept ? " with kept state" : "");
        fed_free(&fresh);
        return e;
    }
    if (fresh.n_res != nr) {
        if (ver == 1)
            e = fri_fail(FR_ERR_VERSION, "%s: a version 1 client state keeps no top-k residual, and this federation "
                         "compresses with top-k (error feedback): the client's unsent updates are lost; start it with "
                         "a fresh state file", name);
        else
            e = fri_fail(FR_ERR_FORMAT, "%s: a top-k residual of %llu floats, but the federation's config makes %zu",
                         name, (unsigned long long)nr, fresh.n_res);
        fed_free(&fresh);
        return e;
    }
    for (size_t i = 0; i < (size_t)nf; i++) fresh.buf[0][i] = fri_get_f32(floats + 4 * i);
    for (size_t i = 0; i < (size_t)nr; i++) fresh.buf[0][nf + i] = fri_get_f32(res + 4 * i);
    fresh.steps[0] = steps;
    fr_model_set_shared(fresh.g, fr_model_params_const(fr_task_model(c->task)));
    fresh.round = round;
    fresh.bound = fr_task_bound(c->task);
    fresh.partial = fri_task_rows_only(c->task);
    fed_free(&c->f);
    c->f = fresh;
    return FR_OK;
}

fr_err fr_netc_save(const fr_netc *c) {
    if (!c->path) return fri_fail(FR_ERR_INVALID, "client %u: no state file to save to", c->client);
    uint8_t *b = NULL;
    size_t n = 0;
    fr_err e = fr_netc_save_bytes(c, &b, &n);
    if (!e) e = fri_write_file_atomic(c->path, b, n);
    fr_msg_free(b);
    return e;
}

fr_err fr_netc_load(fr_netc *c, bool *resumed) {
    if (resumed) *resumed = false;
    if (!c->path) return fri_fail(FR_ERR_INVALID, "client %u: no state file to load", c->client);
    struct stat st;
    if (stat(c->path, &st) != 0) {
        if (errno == ENOENT) return FR_OK; /* a fresh client */
        return fri_fail(FR_ERR_IO, "%s: cannot stat: %s", c->path, strerror(errno));
    }
    uint8_t *d = NULL;
    size_t n = 0;
    fr_err e = fri_read_file(c->path, &d, &n);
    if (!e) e = fr_netc_load_bytes(c, d, n, c->path);
    fri_free(d);
    if (!e && resumed) *resumed = true;
    return e;
}

/* ------------------------------------------------------------------ secure aggregation */

size_t fri_netc_dense_len(const fr_netc *c) {
    const fr_model *g = c->last ? fr_task_model(c->last) : NULL;
    return g ? fri_secure_dense_len(g, fr_task_fl_config(c->last)) : 0;
}

fr_err fri_netc_densify(const fr_netc *c, const uint8_t *result, size_t n, int64_t *out, size_t len,
                        fri_secure_header *h) {
    const fr_model *g = c->last ? fr_task_model(c->last) : NULL;
    if (!g) return fri_fail(FR_ERR_STATE, "client %u: no TASK stepped", c->client);
    return fri_secure_densify(g, fr_task_fl_config(c->last), result, n, out, len, h);
}
