/* The federated client: one round of local training on its own interactions, for a
 * device (one user) or a silo (several users, each with its private rows).
 *
 * Invariants:
 *   - Isolation: the fit sees the client's data (fr_client_data), the global shared
 *     parameters and its own private state; the update it fills has room for the dense
 *     layers and item rows only.
 *   - O(its rows): the client trains a COMPACT model whose item tables hold only the
 *     rows it needs this round (its positives and every negative it sampled for all E
 *     epochs), numbered in order of first use in the examples (so the rows used up to
 *     any step are a prefix), and whose user tables hold its U users; example item ids
 *     are remapped to those rows, and the update lists them by increasing global id.
 *     Per-worker marks over the catalogue (own items, row of an item) are set by a fit
 *     and cleared before it returns. The compact models (by size class: 16 << b item
 *     rows, all with the worker's largest U so far), gradients, optimizers and example
 *     arrays live in the per-worker scratch; once each class a worker needs exists,
 *     nothing is allocated. Rows past the client's L items and U users are never read,
 *     stepped or sent.
 *   - One step rule (fit_pass, run by the library's minibatch loop fri_examples_run) for
 *     every local rule: the dense tensors step with `local`, item rows with the item
 *     optimizer when one is configured (its lr decayed by round), user rows with `local`
 *     (a kept optimizer of their own with keep_private_optim), over the rows a step can
 *     change only: with coasting, the rows a minibatch touched (the others catch up in
 *     closed form), else a prefix.
 *   - Determinism: negatives come from (seed, round, client, NEGATIVES), drawn user by
 *     user in the order of the data, minibatch order from (seed, round, client, SHUFFLE);
 *     nothing depends on the worker. */
#include <float.h>
#include <math.h>
#include <stdlib.h>

#include "core/core.h"
#include "fedrec/fl.h"
#include "fl/fl_internal.h"
#include "model/examples.h"
#include "model/model_internal.h"

/* A compact model of one size class. The optimizer's dense step costs O(rows of the
 * model), so a client uses the smallest class that holds its rows (at most 2x them),
 * never the largest one a worker has seen. */
typedef struct compact {
    uint32_t cap;           /* item rows */
    fr_model *m;
    fr_grad *g;
    fr_optim *o;            /* local: dense tensors (and item rows without oi, user rows without op) */
    fr_optim *oi;           /* item rows, or NULL when they follow o */
    fr_optim *op;           /* user rows with a kept state, or NULL when they follow o */
} compact;

/* Coasting bookkeeping of one kind of table (item or user tables) with one optimizer. */
typedef struct coast_side {
    uint32_t *last;         /* [n_tables * cap] step after which a row's moments are current
                               (0: not stepped yet, moments zero) */
    size_t cap;             /* rows per table in last */
    uint64_t base;          /* the smallest `from` this fit (a kept state's step count) */
    fri_coast *plans;       /* [cap_plans] plans by `from` - base */
    uint64_t *plan_to;      /* [cap_plans] the `to` of each plan */
    uint64_t *plan_fit;     /* [cap_plans] the fit it was made in (lr changes between fits) */
    size_t cap_plans;
} coast_side;

struct fr_client_ws {
    fr_model_config mcfg;   /* the global model's config */
    fr_fl_config cfg;       /* federation settings */
    compact bk[32];         /* compact models by size class: 16 << b item rows */
    uint32_t ucap;          /* user rows of every compact model (grows with the silos met) */
    fr_model *m;            /* the one in use this fit */
    fr_grad *g;             /* its gradient */
    fr_optim *o;            /* its optimizer, reset each round */
    fr_optim *oi;           /* its item-row optimizer (NULL: o), reset each round */
    fr_optim *op;           /* its user-row optimizer with a kept state (NULL: o) */
    bool split;             /* item rows have their own optimizer (item_local or a decay) */
    fr_optim_config item_cfg; /* its config (item lr before the decay) */
    fr_model_ws *mws;       /* forward/backward scratch for batch B */
    float *ref;             /* [ref_cap] the values received (Δ = params - ref) */
    size_t ref_cap;
    fri_examples ex;        /* examples of all E epochs */
    uint8_t *own;           /* [n_items] 1 for the items of the user whose negatives are drawn */
    uint32_t *row_of;       /* [n_items] compact row + 1 of a global item this fit, else 0 */
    uint32_t *byrow;        /* [cap_byrow] global id of each compact row (order of first use) */
    size_t cap_byrow;
    size_t n_byrow;         /* rows assigned (row_of entries to clear) */
    uint32_t *local;        /* [cap_local] global ids of the local item rows, increasing */
    size_t cap_local;
    uint32_t *perm;         /* [cap_perm] compact row of local[j] (rows in order of first use) */
    size_t cap_perm;
    uint32_t *rtmp;         /* [cap_rtmp] the radix sort's other buffers (ids, then rows) */
    size_t cap_rtmp;
    uint32_t *sc_user, *sc_item; /* [cap_sc] fr_client_score's user rows (0) and compact rows */
    size_t cap_sc, cap_sc_item;
    coast_side ci, cu;      /* coasting of item rows and of user rows */
    uint64_t fits;          /* fits run (names the plans of a fit) */
    uint32_t dense_len;     /* floats of the dense tensors */
    uint32_t n_tables;      /* item tables */
    uint32_t n_utables;     /* user tables */
    uint32_t widths[FR_MODEL_MAX_TENSORS]; /* item tables' widths */
    uint32_t config_crc;    /* the federation this workspace is for (its TASKs carry it) */
    fr_update *step_upd;    /* the step's float update (made on first use) */
    fr_result *step_res;    /* a DP step's clipped result before encoding (made on first use) */
    fr_task *step_task;     /* fr_client_step_bytes: the decoded TASK */
    uint8_t *step_buf;      /* fr_client_step_bytes: its bytes */
    size_t step_cap;
    fri_hide *hide;         /* decoys (cfg.decoys > 0) */
    fri_negpop negpop;      /* popularity negatives (cfg.neg_sampler), from the public
                               popularity (fr_client_ws_set_popularity); empty until given */
    bool graph;             /* the kind reads its users' training items (fr_model_graph) */
    bool all_items;         /* its loss reads every item row (a full softmax): it loads them all */
    uint32_t *gstart;       /* [cap_gstart] graph: user j's compact item rows are */
    uint32_t *gitems;       /* gitems[gstart[j], gstart[j + 1]) */
    size_t cap_gstart, cap_gitems;
    fri_compress_ws *cw;    /* a compressed RESULT's scratch (made on first use) */
    float *residual;        /* top-k: the next step's client's residual (then NULL again) */
    uint32_t *uglob;        /* [cap_uglob] global user id of each user row this fit */
    size_t cap_uglob;
    bool lean;              /* the step rule a fused fit can take (lean_rule): plain SGD for
                               every row, nothing added to the gradient or the update */
    float *lean_out;        /* [lean_cap] the fused fit's compact item rows */
    size_t lean_cap;
    void *lean_scratch;     /* its scratch (grown by the model layer) */
    size_t lean_scratch_cap;
};

/* The client's graph for its compact model: user row j's own items, as compact rows. */
static size_t client_graph_items(const void *ctx, uint32_t j, const uint32_t **items) {
    const fr_client_ws *ws = ctx;
    *items = ws->gitems + ws->gstart[j];
    return ws->gstart[j + 1] - ws->gstart[j];
}

static bool sort_by_scan = false; /* tests: every client's rows ordered by the scan of the marks */

bool fri_client_sort_by_scan(bool on) {
    bool was = sort_by_scan;
    sort_by_scan = on;
    return was;
}

/* ids[0, n) (distinct, below n_items) in increasing order into out_id, and where each
 * came from (its index in ids) into out_idx: a least-significant-digit radix sort of 6
 * bits a pass (stable, no comparison to mispredict), through tmp_id/tmp_idx. */
static void radix_rows(const uint32_t *ids, size_t n, uint32_t n_items, uint32_t *out_id, uint32_t *out_idx,
                       uint32_t *tmp_id, uint32_t *tmp_idx) {
    unsigned bits = 0;
    while (bits < 32 && ((uint64_t)(n_items ? n_items - 1 : 0) >> bits)) bits++;
    unsigned passes = bits ? (bits + 5) / 6 : 1;
    const uint32_t *ai = ids, *ax = NULL;
    bool to_out = passes % 2 == 1; /* so that the last pass writes out_* */
    for (unsigned p = 0; p < passes; p++) {
        uint32_t *bi = to_out ? out_id : tmp_id, *bx = to_out ? out_idx : tmp_idx;
        unsigned shift = 6 * p;
        size_t cnt[64] = {0};
        for (size_t i = 0; i < n; i++) cnt[(ai[i] >> shift) & 63]++;
        size_t sum = 0;
        for (int k = 0; k < 64; k++) {
            size_t c = cnt[k];
            cnt[k] = sum;
            sum += c;
        }
        for (size_t i = 0; i < n; i++) {
            size_t at = cnt[(ai[i] >> shift) & 63]++;
            bi[at] = ai[i];
            bx[at] = ax ? ax[i] : (uint32_t)i;
        }
        ai = bi;
        ax = bx;
        to_out = !to_out;
    }
}

static void compact_free(compact *c) {
    fr_model_free(c->m);
    fr_grad_free(c->g);
    fr_optim_free(c->o);
    fr_optim_free(c->oi);
    fr_optim_free(c->op);
    memset(c, 0, sizeof *c);
}

/* Selects (creating on first use) the smallest size class holding n item rows, with
 * room for u users (a larger silo than any before rebuilds the classes, once). */
static fr_err use_compact(fr_client_ws *ws, uint32_t n, uint32_t u) {
    if (u > ws->ucap) {
        for (int b = 0; b < 32; b++) compact_free(&ws->bk[b]);
        ws->ucap = u;
    }
    uint32_t b = 0;
    while (b < 31 && ((uint64_t)16 << b) < n && ((uint64_t)16 << b) < ws->mcfg.n_items) b++;
    compact *c = &ws->bk[b];
    if (!c->m) {
        fr_model_config mc = ws->mcfg;
        mc.n_users = ws->ucap;
        mc.n_items = ((uint64_t)16 << b) < ws->mcfg.n_items ? (uint32_t)16 << b : ws->mcfg.n_items;
        fr_optim_config oc = ws->cfg.local;
        oc.sparse_rows = false; /* fit_pass steps ranges with the dense rule */
        fr_err e = fr_model_create(&c->m, &mc);
        if (!e) e = fr_grad_create(&c->g, c->m);
        if (!e) e = fr_optim_create(&c->o, c->m, &oc);
        if (!e && ws->split) e = fr_optim_create(&c->oi, c->m, &ws->item_cfg);
        if (!e && ws->cfg.keep_private_optim) e = fr_optim_create(&c->op, c->m, &oc);
        if (e) {
            compact_free(c);
            return e;
        }
        c->cap = mc.n_items;
    }
    size_t np = fr_model_n_params(c->m);
    if (np > ws->ref_cap) {
        float *r = fri_realloc(ws->ref, np * sizeof *r);
        if (!r) return FR_ERR_NOMEM;
        ws->ref = r;
        ws->ref_cap = np;
    }
    ws->m = c->m; ws->g = c->g; ws->o = c->o; ws->oi = c->oi; ws->op = c->op;
    return FR_OK;
}

/* Whether the federation's client rule is one a fused fit does (fri_model_client_sgd):
 * plain SGD (no momentum, no weight decay) for the dense part, the item rows and the
 * user's rows alike, no proximal term, steps over touched rows (coasting is then the
 * identity), and an update nothing pads or clips afterwards. */
static bool lean_rule(const fr_fl_config *c) {
    return c->local.kind == FR_OPTIM_SGD && c->local.momentum == 0.0f && c->local.weight_decay == 0.0f &&
           c->item_local.kind == 0 && c->item_lr_decay == 1.0f && !c->keep_private_optim &&
           !(c->strategy == FR_STRATEGY_FEDPROX && c->mu > 0) && !c->dense_steps && c->decoys == 0 &&
           !(c->aggregator == FR_AGG_NORMCLIP && c->agg_clip > 0);
}

fr_err fr_client_ws_create(fr_client_ws **out, const fr_model_config *mcfg, const fr_fl_config *cfg) {
    *out = NULL;
    fr_err e = fr_fl_config_check(cfg);
    if (e) return e;
    if (fr_model_kind_is_central_only(mcfg->kind)) /* its steps read every user's items */
        return fri_fail(FR_ERR_INVALID, "%s propagates over every user's interactions, which a client does not "
                        "have: it trains centralized only (lightgcn is its federated form)",
                        fr_model_kind_name(mcfg->kind));
    /* cache lines of its own: the scratch of another thread's client is written next to it */
    fr_client_ws *ws = fri_aligned_calloc(sizeof *ws);
    if (!ws) return FR_ERR_NOMEM;
    ws->mcfg = *mcfg;
    ws->cfg = *cfg;
    ws->ucap = 1;
    ws->split = cfg->item_local.kind != 0 || cfg->item_lr_decay != 1.0f;
    ws->item_cfg = cfg->item_local.kind != 0 ? cfg->item_local : cfg->local;
    ws->item_cfg.sparse_rows = false;
    e = use_compact(ws, 1, 1);
    if (!e) ws->all_items = fri_model_reads_all_items(ws->m);
    /* a loss over every item row sizes its workspace by the rows: carve it for the whole table */
    if (!e && ws->all_items) e = use_compact(ws, mcfg->n_items, 1);
    if (!e) e = fr_model_ws_create(&ws->mws, ws->m, cfg->batch);
    if (!e) ws->graph = fr_model_needs_graph(ws->m);
    if (!e) {
        ws->own = fri_calloc(mcfg->n_items ? mcfg->n_items : 1, sizeof *ws->own);
        ws->row_of = fri_calloc(mcfg->n_items ? mcfg->n_items : 1, sizeof *ws->row_of);
        if (!ws->own || !ws->row_of) e = FR_ERR_NOMEM;
    }
    if (!e && cfg->decoys > 0) e = fri_hide_create(&ws->hide, mcfg->n_items);
    if (!e) {
        fri_buf cb = {0};
        e = fri_fl_config_block(&cb, mcfg, cfg);
        ws->config_crc = fr_crc32c(0, cb.data, cb.len);
        fri_buf_free(&cb);
    }
    if (e) { fr_client_ws_free(ws); return e; }
    ws->lean = lean_rule(cfg);
    for (int t = 0; t < fr_model_n_tensors(ws->m); t++) {
        const fr_tensor *tt = fr_model_tensor(ws->m, t);
        if (tt->kind == FR_TENSOR_DENSE) ws->dense_len += tt->rows * tt->cols;
        else if (tt->kind == FR_TENSOR_ITEM_TABLE) ws->widths[ws->n_tables++] = tt->cols;
        else ws->n_utables++;
    }
    *out = ws;
    return FR_OK;
}

static void side_free(coast_side *s) {
    fri_free(s->last);
    fri_free(s->plans);
    fri_free(s->plan_to);
    fri_free(s->plan_fit);
}

void fr_client_ws_free(fr_client_ws *ws) {
    if (!ws) return;
    for (int b = 0; b < 32; b++) compact_free(&ws->bk[b]);
    fr_model_ws_free(ws->mws);
    fri_free(ws->ref);
    fri_examples_free(&ws->ex);
    fri_free(ws->own);
    fri_free(ws->row_of);
    fri_free(ws->byrow);
    fri_free(ws->local);
    fri_free(ws->perm);
    fri_free(ws->sc_user);
    fri_free(ws->sc_item);
    side_free(&ws->ci);
    side_free(&ws->cu);
    fr_update_free(ws->step_upd);
    fr_result_free(ws->step_res);
    fr_task_free(ws->step_task);
    fri_free(ws->step_buf);
    fri_hide_free(ws->hide);
    fri_negpop_free(&ws->negpop);
    fri_free(ws->gstart);
    fri_free(ws->gitems);
    fri_compress_ws_free(ws->cw);
    fri_free(ws->uglob);
    fri_free(ws->rtmp);
    fri_free(ws->lean_out);
    fri_free(ws->lean_scratch);
    fri_free_aligned(ws);
}

static fr_err grow_u32(uint32_t **a, size_t *cap, size_t n) {
    if (n <= *cap) return FR_OK;
    size_t c = *cap ? *cap : 64;
    while (c < n) c *= 2;
    uint32_t *p = fri_realloc(*a, c * sizeof *p);
    if (!p) return FR_ERR_NOMEM;
    *a = p;
    *cap = c;
    return FR_OK;
}

/* Room for `rows` rows per table of n_tables and plans up to step `steps`. */
static fr_err side_reserve(coast_side *s, uint32_t n_tables, size_t rows, uint64_t steps) {
    if (s->cap < rows || !s->last) {
        size_t c = rows > 2 * s->cap ? rows : 2 * s->cap;
        uint32_t *la = fri_malloc((n_tables ? n_tables : 1) * (c ? c : 1) * sizeof *la);
        if (!la) return FR_ERR_NOMEM;
        fri_free(s->last);
        s->last = la;
        s->cap = c;
    }
    if (s->cap_plans < steps + 1) {
        size_t c = steps + 1 > 2 * s->cap_plans ? steps + 1 : 2 * s->cap_plans;
        fri_coast *pl = fri_realloc(s->plans, c * sizeof *pl);
        if (!pl) return FR_ERR_NOMEM;
        s->plans = pl;
        uint64_t *pt = fri_realloc(s->plan_to, c * sizeof *pt);
        if (!pt) return FR_ERR_NOMEM;
        s->plan_to = pt;
        uint64_t *pf = fri_realloc(s->plan_fit, c * sizeof *pf);
        if (!pf) return FR_ERR_NOMEM;
        s->plan_fit = pf;
        memset(pf + s->cap_plans, 0, (c - s->cap_plans) * sizeof *pf); /* fit numbers start at 1 */
        s->cap_plans = c;
    }
    return FR_OK;
}

/* A uniform item the user never touched, or one drawn from the public popularity
 * (cfg.neg_sampler) (the rule of fri_examples_add_user, on the user's own items, marked
 * in ws->own: the same draws give the same negatives).
 * UINT32_MAX if there is none. */
static uint32_t draw_negative(const fr_client_ws *ws, size_t deg, uint32_t n_items, fr_rng *rng) {
    if (deg >= n_items) return UINT32_MAX;
    const fri_negpop *pop = ws->negpop.col ? &ws->negpop : NULL; /* popularity negatives */
    for (;;) {
        uint32_t j = pop ? fri_negpop_draw_rng(pop, rng) : fr_rng_below(rng, n_items);
        if (!ws->own[j]) return j;
    }
}

/* One pass over one user's interactions as compact user row `row` (see
 * fri_examples_add_user). */
static fr_err add_pass(fr_client_ws *ws, const fr_client_user *d, uint32_t row, uint32_t n_items, fr_rng *rng) {
    fri_examples *ex = &ws->ex;
    fr_loss loss = ws->mcfg.loss;
    uint32_t neg = ws->cfg.negatives;
    size_t per = loss == FR_LOSS_MSE || loss == FR_LOSS_CE ? 1 : loss == FR_LOSS_BCE ? 1 + (size_t)neg : (neg ? neg : 1);
    if (ws->cfg.neg_sampler == FR_NEG_POPULARITY && loss != FR_LOSS_MSE && loss != FR_LOSS_CE &&
        (!ws->negpop.col || ws->negpop.n != n_items))
        return fri_fail(FR_ERR_INVALID, "client: popularity negatives without the items' public popularity over the "
                        "%u items (fr_client_ws_set_popularity; fedrec client --popularity)", n_items);
    fr_err e = fri_examples_reserve(ex, ex->n + d->n * per);
    if (e) return e;
    for (size_t x = 0; x < d->n; x++) ws->own[d->items[x]] = 1;
    size_t k = ex->n;
    for (size_t x = 0; x < d->n; x++) {
        uint32_t it = d->items[x];
        const size_t k0 = k;
        switch (loss) {
        case FR_LOSS_MSE:
            ex->user[k] = row; ex->item[k] = it; ex->label[k] = d->ratings ? d->ratings[x] : 1.0f; ex->neg[k] = 0;
            k++;
            break;
        case FR_LOSS_BCE:
            ex->user[k] = row; ex->item[k] = it; ex->label[k] = 1.0f; ex->neg[k] = 0;
            k++;
            for (uint32_t q = 0; q < neg; q++) {
                uint32_t j = draw_negative(ws, d->n, n_items, rng);
                if (j == UINT32_MAX) break;
                ex->user[k] = row; ex->item[k] = j; ex->label[k] = 0.0f; ex->neg[k] = 0;
                k++;
            }
            break;
        case FR_LOSS_CE: /* a softmax over every item: the positive alone */
            ex->user[k] = row; ex->item[k] = it; ex->label[k] = 1.0f; ex->neg[k] = 0;
            k++;
            break;
        case FR_LOSS_BPR:
            for (size_t q = 0; q < per; q++) {
                uint32_t j = draw_negative(ws, d->n, n_items, rng);
                if (j == UINT32_MAX) break;
                ex->user[k] = row; ex->item[k] = it; ex->neg[k] = j; ex->label[k] = 1.0f;
                k++;
            }
            break;
        }
        if (ex->alpha > 0 && k > k0) { /* as fri_examples_add_user: the positive's confidence */
            const float c = loss == FR_LOSS_MSE || !d->ratings ? 1.0f : fri_confidence(ex->alpha, d->ratings[x]);
            ex->wt[k0] = c;
            for (size_t y = k0 + 1; y < k; y++) ex->wt[y] = loss == FR_LOSS_BPR ? c : 1.0f;
        }
    }
    for (size_t x = 0; x < d->n; x++) ws->own[d->items[x]] = 0;
    ex->n = k;
    return FR_OK;
}

static bool client_had(const void *ctx, uint32_t j) { return ((const uint8_t *)ctx)[j] != 0; }

/* One pass over one user's interactions for a sequence model (ws->ex.hist_len > 0): the
 * windows of fri_examples_add_seq over the user's items in the order given (the sim and
 * the networked client give the data's time order), negatives by the user's own marks. */
static fr_err add_pass_seq(fr_client_ws *ws, const fr_client_user *d, uint32_t row, uint32_t n_items, fr_rng *rng) {
    for (size_t x = 0; x < d->n; x++) ws->own[d->items[x]] = 1;
    fr_err e = fri_examples_add_seq(&ws->ex, d->items, d->n, n_items, client_had, ws->own, row, rng);
    for (size_t x = 0; x < d->n; x++) ws->own[d->items[x]] = 0;
    return e;
}

/* The coasting plan of optimizer o from step `from` to `to`, made once per fit for all
 * the rows that share them. */
static const fri_coast *plan_of(fr_client_ws *ws, coast_side *s, const fr_optim *o, uint64_t from, uint64_t to) {
    size_t k = (size_t)(from - s->base);
    if (s->plan_fit[k] != ws->fits || s->plan_to[k] != to) {
        fri_optim_coast_plan(o, from, to, &s->plans[k]);
        s->plan_to[k] = to;
        s->plan_fit[k] = ws->fits;
    }
    return &s->plans[k];
}

/* The rows of one table kind a minibatch reads: items (and BPR negatives) or users. */
static inline uint32_t batch_row(const fr_batch *b, bool user, int side, size_t x) {
    return user ? b->users[x] : side ? b->neg[x] : b->items[x];
}

/* Coasting, before a minibatch's forward pass: the rows of tables of kind `kind` it
 * reads first take, in closed form, the zero-gradient dense steps they missed since
 * they were last stepped (fri_optim_coast_*), so the forward sees the parameters of the
 * dense rule. */
static void catch_up_rows(fr_client_ws *ws, coast_side *s, fr_tensor_kind kind, const fr_optim *o,
                          const fr_batch *b) {
    fr_model *m = ws->m;
    uint64_t step = fr_optim_steps(o); /* steps done; this minibatch is step + 1 */
    bool user = kind == FR_TENSOR_USER_TABLE;
    uint32_t tb = 0;
    for (int i = 0; i < fr_model_n_tensors(m); i++) {
        const fr_tensor *tt = fr_model_tensor(m, i);
        if (tt->kind != kind) continue;
        uint32_t *last = s->last + (size_t)tb++ * s->cap;
        for (int side = 0; side < (!user && b->neg ? 2 : 1); side++)
            for (size_t x = 0; x < b->n; x++) {
                uint32_t r = batch_row(b, user, side, x);
                if (last[r] && last[r] < step) {
                    fri_optim_coast_range(o, m, tt->offset + (size_t)r * tt->cols, tt->cols,
                                          plan_of(ws, s, o, last[r], step));
                    last[r] = (uint32_t)step;
                }
            }
    }
}

/* Coasting, the step: only the rows the minibatch touched take this step's rule; the
 * others wait. Every row catches up at the end of the fit (coast_all), so the result is
 * the dense rule's up to float rounding, in O(rows touched) per step instead of O(rows
 * used so far). */
static void step_rows(fr_client_ws *ws, coast_side *s, fr_tensor_kind kind, const fr_optim *o, const float *g) {
    fr_model *m = ws->m;
    uint64_t step = fr_optim_steps(o);
    uint32_t tb = 0;
    for (int i = 0; i < fr_model_n_tensors(m); i++) {
        const fr_tensor *tt = fr_model_tensor(m, i);
        if (tt->kind != kind) continue;
        uint32_t *last = s->last + (size_t)tb++ * s->cap;
        const fr_rowset *rs = fr_grad_touched(ws->g, i);
        for (uint32_t k = 0; k < rs->count; k++) {
            uint32_t r = rs->rows[k];
            size_t off = tt->offset + (size_t)r * tt->cols;
            fri_optim_step_range(o, m, g + off, off, tt->cols);
            last[r] = (uint32_t)step;
        }
    }
}

/* End of the fit: rows [0, n) of the tables of `kind` coast to the last step. */
static void coast_all(fr_client_ws *ws, coast_side *s, fr_tensor_kind kind, const fr_optim *o, uint32_t n) {
    fr_model *m = ws->m;
    uint64_t step = fr_optim_steps(o);
    uint32_t tb = 0;
    for (int i = 0; i < fr_model_n_tensors(m); i++) {
        const fr_tensor *tt = fr_model_tensor(m, i);
        if (tt->kind != kind) continue;
        const uint32_t *last = s->last + (size_t)tb++ * s->cap;
        for (uint32_t r = 0; r < n; r++)
            if (last[r] && last[r] < step)
                fri_optim_coast_range(o, m, tt->offset + (size_t)r * tt->cols, tt->cols,
                                      plan_of(ws, s, o, last[r], step));
    }
}

/* What one fit steps, and how. */
typedef struct pass_ctx {
    uint32_t L, U;          /* item rows and user rows in use */
    bool lazy;              /* item rows: the dense rule over the prefix used so far */
    bool coast;             /* item rows (and user rows of a silo) step when touched */
    bool coast_users;       /* user rows step when touched (a silo with coasting) */
    float mu;               /* FedProx */
    fr_optim *oi, *op;      /* item and user rows' optimizers (ws->o when they follow it) */
} pass_ctx;

/* One epoch of minibatches through the one minibatch loop (fri_examples_run) with the
 * client's step rule: before the gradient, coasting brings the rows the minibatch reads up
 * to date; the gradient; after it, with FedProx, mu * (w - w_t) added to the gradient of
 * every local shared parameter (the dense tensors and item rows [0, L)); then the step.
 * Every row of the dense tensors steps with ws->o; item rows with c->oi, user rows
 * [0, U) with c->op, in one of three ways:
 *   - `coast`: the rows the minibatch touched, after coasting (step_rows); user rows too
 *     with `coast_users` (for one user its row is touched at every step anyway);
 *   - `lazy`: the dense rule over item rows [0, *T), the rows used so far. Compact rows
 *     are numbered in order of first use, so a row past *T has a zero gradient and zero
 *     moments (a fresh optimizer), and with no weight decay and finite values the dense
 *     rule leaves it bit-for-bit unchanged (g = 0 + 0 * p = 0, m1 = m2 = 0,
 *     p -= lr * 0 / (0 + eps)): the floats of the full dense step;
 *   - otherwise (weight decay, FedProx, non-finite values) item rows [0, L): *T = L.
 * Rows past L items and U users are never read or sent either way. */
typedef struct pass_rule {
    fr_client_ws *ws;
    const pass_ctx *c;
    uint32_t *T;            /* item rows [0, *T) step with the dense rule (lazy) */
} pass_rule;

static fr_err pass_before(void *ctx, const fr_batch *b) {
    pass_rule *p = ctx;
    if (p->c->coast) catch_up_rows(p->ws, &p->ws->ci, FR_TENSOR_ITEM_TABLE, p->c->oi, b);
    if (p->c->coast_users) catch_up_rows(p->ws, &p->ws->cu, FR_TENSOR_USER_TABLE, p->c->op, b);
    return FR_OK;
}

static fr_err pass_gradient(void *ctx, const fr_batch *b, fri_step_loss *l) {
    pass_rule *p = ctx;
    fr_grad_zero(p->ws->g);
    l->parts = 1;
    l->n[0] = b->n;
    return fr_model_loss_grad(p->ws->m, p->ws->mws, b, p->ws->g, &l->mean[0]);
}

/* FedProx: the proximal term's gradient. */
static fr_err pass_prox(void *ctx, const fr_batch *b) {
    (void)b;
    pass_rule *p = ctx;
    fr_client_ws *ws = p->ws;
    const fr_model *m = ws->m;
    float *g = fr_grad_data(ws->g), mu = p->c->mu;
    const float *w = fr_model_params_const(m);
    for (int t = 0; t < fr_model_n_tensors(m); t++) {
        const fr_tensor *tt = fr_model_tensor(m, t);
        if (tt->kind == FR_TENSOR_USER_TABLE) continue;
        size_t len = (tt->kind == FR_TENSOR_ITEM_TABLE ? p->c->L : tt->rows) * (size_t)tt->cols;
        for (size_t i = 0; i < len; i++) g[tt->offset + i] += mu * (w[tt->offset + i] - ws->ref[tt->offset + i]);
        if (tt->kind == FR_TENSOR_ITEM_TABLE) /* so the next fr_grad_zero clears them */
            for (uint32_t r = 0; r < p->c->L; r++) fr_grad_touch(ws->g, t, r);
    }
    return FR_OK;
}

static fr_err pass_step(void *ctx, const fr_batch *b) {
    pass_rule *p = ctx;
    fr_client_ws *ws = p->ws;
    const pass_ctx *c = p->c;
    fr_model *m = ws->m;
    int nt = fr_model_n_tensors(m);
    fr_err e = fri_optim_step_begin(ws->o, m, ws->g);
    if (!e && c->oi != ws->o) e = fri_optim_step_begin(c->oi, m, ws->g);
    if (!e && c->op != ws->o) e = fri_optim_step_begin(c->op, m, ws->g);
    if (e) return e;
    uint32_t *T = p->T;
    if (c->coast) {
        *T = 0; /* no item row in the ranges below: step_rows steps them */
    } else if (c->lazy && !b->hist) {
        uint32_t t = *T;
        for (size_t i = 0; i < b->n; i++) {
            if (b->items[i] >= t) t = b->items[i] + 1;
            if (b->neg && b->neg[i] >= t) t = b->neg[i] + 1;
        }
        *T = t;
    } else {
        *T = c->L;
    }
    /* contiguous ranges of one optimizer are stepped together */
    const float *g = fr_grad_data_const(ws->g);
    const fr_optim *po = NULL; /* the pending range's optimizer */
    size_t off = 0, len = 0;
    for (int i = 0; i < nt; i++) {
        const fr_tensor *tt = fr_model_tensor(m, i);
        bool item = tt->kind == FR_TENSOR_ITEM_TABLE, user = tt->kind == FR_TENSOR_USER_TABLE;
        const fr_optim *to = item ? c->oi : user ? c->op : ws->o;
        uint32_t rows = item ? *T : user ? (c->coast_users ? 0 : c->U) : tt->rows;
        size_t o = tt->offset, k = rows * (size_t)tt->cols;
        if (len && po == to && off + len == o) {
            len += k;
        } else {
            if (len) fri_optim_step_range(po, m, g + off, off, len);
            po = to;
            off = o;
            len = k;
        }
        if (rows < tt->rows) { /* the rest of this table is skipped: flush */
            if (len) fri_optim_step_range(po, m, g + off, off, len);
            len = 0;
        }
    }
    if (len) fri_optim_step_range(po, m, g + off, off, len);
    if (c->coast) step_rows(ws, &ws->ci, FR_TENSOR_ITEM_TABLE, c->oi, g);
    if (c->coast_users) step_rows(ws, &ws->cu, FR_TENSOR_USER_TABLE, c->op, g);
    return FR_OK;
}

static fr_err fit_pass(fr_client_ws *ws, const fri_examples *ex, const pass_ctx *c, uint32_t *T, double *loss_sum) {
    pass_rule p = {ws, c, T};
    fri_step_rule rule = {&p, c->coast || c->coast_users ? pass_before : NULL, pass_gradient,
                          c->mu > 0 ? pass_prox : NULL, pass_step};
    return fri_examples_run(ex, ws->cfg.batch, ws->mcfg.loss, &rule, loss_sum);
}

static fr_err fit(fr_client_ws *ws, uint32_t round, uint32_t client, const fr_client_data *data, uint32_t U,
                  size_t n_inter, const fr_model *global, const fr_client_private *priv, fr_update *upd,
                  fr_client_report *rep);

static inline uint32_t row_for(fr_client_ws *ws, uint32_t it);

/* Receive: the compact model gets the global dense layers, global item rows byrow[0, L)
 * as its rows [0, L), and the private rows of its U users (rows[t * U + j]). */
static void load_model(fr_client_ws *ws, const fr_model *global, float *const *rows, size_t L, uint32_t U) {
    fr_model *m = ws->m;
    float *w = fr_model_params(m);
    const float *gw = fr_model_params_const(global);
    uint32_t ut = 0;
    for (int t = 0; t < fr_model_n_tensors(m); t++) {
        const fr_tensor *lt = fr_model_tensor(m, t), *gt = fr_model_tensor(global, t);
        size_t cols = lt->cols;
        if (lt->kind == FR_TENSOR_DENSE) {
            memcpy(w + lt->offset, gw + gt->offset, (size_t)lt->rows * cols * sizeof *w);
        } else if (lt->kind == FR_TENSOR_ITEM_TABLE) {
            float *dst = w + lt->offset;
            const float *src = gw + gt->offset;
            for (size_t r = 0; r < L; r++) {
                const float *a = src + (size_t)ws->byrow[r] * cols;
                for (size_t i = 0; i < cols; i++) dst[r * cols + i] = a[i];
            }
        } else {
            for (uint32_t j = 0; j < U; j++) memcpy(w + lt->offset + j * cols, rows[ut * U + j], cols * sizeof *w);
            ut++;
        }
    }
}

fr_err fr_client_score(fr_client_ws *ws, const fr_model *global, float *const *priv, const uint32_t *items, size_t n,
                       float *out) {
    uint32_t ni = ws->mcfg.n_items;
    if (ws->graph) /* its scores read the user's items, which this call is not given */
        return fri_fail(FR_ERR_UNSUPPORTED, "client score: %s scores through the user's training items; score "
                        "a model bound to them (fr_model_set_graph) instead", fr_model_kind_name(ws->mcfg.kind));
    if (fr_model_config_of(global)->n_items != ni)
        return fri_fail(FR_ERR_INVALID, "client score: the model has %u items, the client %u",
                        fr_model_config_of(global)->n_items, ni);
    for (size_t i = 0; i < n; i++)
        if (items[i] >= ni)
            return fri_fail(FR_ERR_RANGE, "client score: item %u out of range, catalogue has %u", items[i], ni);
    size_t most = n < ni ? n : ni;
    fr_err e = grow_u32(&ws->byrow, &ws->cap_byrow, most);
    if (!e) e = grow_u32(&ws->sc_user, &ws->cap_sc, n ? n : 1);
    if (!e && ws->cap_sc_item < ws->cap_sc) {
        size_t c = ws->cap_sc_item;
        e = grow_u32(&ws->sc_item, &c, ws->cap_sc);
        ws->cap_sc_item = c;
    }
    if (e) return e;
    ws->n_byrow = 0;
    for (size_t i = 0; i < n; i++) {
        ws->sc_user[i] = 0;
        ws->sc_item[i] = row_for(ws, items[i]);
    }
    size_t L = ws->n_byrow;
    e = use_compact(ws, (uint32_t)(L ? L : 1), 1);
    if (!e) {
        load_model(ws, global, priv, L, 1);
        fri_model_bind_rows(ws->m, ws->byrow, (uint32_t)L, NULL, 0, ni); /* rows -> items (model_hybrid.c) */
        e = fr_model_score(ws->m, ws->mws, ws->sc_user, ws->sc_item, n, out);
    }
    for (size_t r = 0; r < ws->n_byrow; r++) ws->row_of[ws->byrow[r]] = 0;
    ws->n_byrow = 0;
    return e;
}

/* User j of a client (a device is its own one user). */
static fr_client_user user_of(const fr_client_data *d, uint32_t j) {
    if (d->n_users) return d->users[j];
    fr_client_user u = {d->user, d->items, d->ratings, d->n};
    return u;
}

/* The checks of a client's data against ws and the global model; *U its users, *total
 * their interactions (> 0). */
static fr_err data_checks(const fr_client_ws *ws, uint32_t client, const fr_client_data *data, const fr_model *global,
                          uint32_t *Up, size_t *totalp) {
    if (data->n_items != ws->mcfg.n_items || fr_model_config_of(global)->n_items != data->n_items)
        return fri_fail(FR_ERR_INVALID, "client %u: catalogue of %u items, the model has %u", client, data->n_items,
                        fr_model_config_of(global)->n_items);
    if (data->n_users && !data->users)
        return fri_fail(FR_ERR_INVALID, "client %u: %u users but no user list", client, data->n_users);
    uint32_t U = data->n_users ? data->n_users : 1;
    size_t total = 0;
    for (uint32_t j = 0; j < U; j++) {
        fr_client_user u = user_of(data, j);
        if (u.n && !u.items) return fri_fail(FR_ERR_INVALID, "client %u: user %u has no item array", client, u.user);
        for (size_t i = 0; i < u.n; i++)
            if (u.items[i] >= data->n_items)
                return fri_fail(FR_ERR_INVALID, "client %u: user %u: item %u out of range, catalogue has %u", client,
                                u.user, u.items[i], data->n_items);
        total += u.n;
    }
    if (total == 0) return fri_fail(FR_ERR_INVALID, "client %u: no interaction to train on", client);
    *Up = U;
    *totalp = total;
    return FR_OK;
}

fr_err fr_client_fit(fr_client_ws *ws, uint32_t round, uint32_t client, const fr_client_data *data,
                     const fr_model *global, const fr_client_private *priv, fr_update *upd, fr_client_report *rep) {
    memset(rep, 0, sizeof *rep);
    uint32_t U;
    size_t total;
    fr_err e = data_checks(ws, client, data, global, &U, &total);
    if (e) return e;
    if (!priv || !priv->rows) return fri_fail(FR_ERR_INVALID, "client %u: no private rows", client);
    bool kept = priv->m1 || priv->m2 || priv->steps;
    if (ws->cfg.keep_private_optim && !(priv->m1 && priv->m2 && priv->steps))
        return fri_fail(FR_ERR_INVALID, "client %u: keep_private_optim is set but its kept state is missing", client);
    if (!ws->cfg.keep_private_optim && kept)
        return fri_fail(FR_ERR_INVALID, "client %u: kept optimizer state given, but keep_private_optim is off",
                        client);
    /* the marks are set inside fit and cleared here on every path */
    ws->n_byrow = 0;
    e = fit(ws, round, client, data, U, total, global, priv, upd, rep);
    for (size_t r = 0; r < ws->n_byrow; r++) ws->row_of[ws->byrow[r]] = 0;
    ws->n_byrow = 0;
    return e;
}

/* The compact row of global item `it`, assigned on first use. */
static inline uint32_t row_for(fr_client_ws *ws, uint32_t it) {
    uint32_t r = ws->row_of[it];
    if (!r) {
        ws->byrow[ws->n_byrow] = it;
        r = ws->row_of[it] = (uint32_t)++ws->n_byrow;
    }
    return r - 1;
}

/* Copies the kept moments of the private rows into (to_opt) or out of the user-row
 * optimizer. */
static void kept_state(fr_client_ws *ws, const fr_client_private *priv, uint32_t U, bool to_opt) {
    float *om[2];
    fri_optim_moments(ws->op, &om[0], &om[1]);
    float *const *pm[2] = {priv->m1, priv->m2};
    uint32_t ut = 0;
    for (int t = 0; t < fr_model_n_tensors(ws->m); t++) {
        const fr_tensor *lt = fr_model_tensor(ws->m, t);
        if (lt->kind != FR_TENSOR_USER_TABLE) continue;
        for (int k = 0; k < 2; k++) {
            if (!om[k]) continue;
            for (uint32_t j = 0; j < U; j++) {
                float *o = om[k] + lt->offset + (size_t)j * lt->cols, *p = pm[k][ut * U + j];
                memcpy(to_opt ? o : p, to_opt ? p : o, lt->cols * sizeof(float));
            }
        }
        ut++;
    }
}

/* The fused fit of one user (fri_model_client_sgd) on the examples and compact rows fit
 * made, then the update as fit makes it: Δ = rows after - rows before for the local rows
 * by increasing id, the user's rows written back. FR_ERR_UNSUPPORTED: nothing changed,
 * the generic loop runs. */
static fr_err lean_fit(fr_client_ws *ws, uint32_t round, uint32_t client, const fr_model *global,
                       const fr_client_private *priv, size_t L, size_t n_inter, const size_t *starts, uint32_t E,
                       fr_update *upd, fr_client_report *rep) {
    size_t wsum = 0;
    for (uint32_t t = 0; t < ws->n_tables; t++) wsum += ws->widths[t];
    size_t need = L * wsum;
    if (need > ws->lean_cap) {
        float *o = fri_realloc(ws->lean_out, need * sizeof *o);
        if (!o) return FR_ERR_NOMEM;
        ws->lean_out = o;
        ws->lean_cap = need;
    }
    fri_client_sgd a = {ws->byrow, (uint32_t)L, priv->rows, ws->ex.item, ws->ex.label, starts, E, ws->cfg.batch,
                        ws->cfg.local.lr, ws->cfg.local.weight_decay, ws->lean_out, &ws->lean_scratch,
                        &ws->lean_scratch_cap};
    double loss_sum = 0;
    fr_err e = fri_model_client_sgd(global, &a, &loss_sum);
    if (e) return e;
    uint64_t down = 4 * (uint64_t)ws->dense_len;
    for (uint32_t t = 0; t < ws->n_tables; t++) down += (uint64_t)L * (4 + 4 * (uint64_t)ws->widths[t]);
    rep->bytes_down = down;
    rep->loss_sum = loss_sum;
    rep->examples = ws->ex.n;
    if ((e = fr_update_reset(upd, ws->dense_len, ws->n_tables, ws->widths))) return e;
    upd->weight = n_inter;
    upd->client = client;
    upd->round = round;
    const float *gw = fr_model_params_const(global), *lo = ws->lean_out;
    uint32_t tb = 0;
    for (int t = 0; t < fr_model_n_tensors(global) && tb < ws->n_tables; t++) {
        const fr_tensor *gt = fr_model_tensor(global, t);
        if (gt->kind != FR_TENSOR_ITEM_TABLE) continue;
        if ((e = fr_update_table_resize(upd, tb, (uint32_t)L))) return e;
        fr_update_table *ut = &upd->tables[tb];
        size_t cols = gt->cols;
        memcpy(ut->ids, ws->local, L * sizeof *ut->ids);
        for (size_t j = 0; j < L; j++) {
            const float *after = lo + (size_t)ws->perm[j] * cols, *before = gw + gt->offset + (size_t)ws->local[j] * cols;
            float *dst = ut->values + j * cols;
            for (size_t i = 0; i < cols; i++) dst[i] = after[i] - before[i];
        }
        lo += L * cols;
        tb++;
    }
    return FR_OK;
}

/* The examples of all E epochs (epoch ep is ws->ex[starts[ep], starts[ep + 1])), their
 * item ids turned into compact rows (marks set: the caller clears them), ws->local[0, *L)
 * the rows' global ids increasing and perm[j] the row of local[j]. *L is 0 when no example
 * could be made. */
static fr_err plan(fr_client_ws *ws, uint32_t round, uint32_t client, const fr_client_data *data, uint32_t U,
                   size_t n_inter, uint32_t hist_len, size_t *starts, uint32_t *Gp, size_t *Lp) {
    fr_err e;
    *Gp = 0;
    *Lp = 0;
    uint64_t seed = ws->cfg.seed;
    fr_rng rneg, rshuf;
    fr_rng_init(&rneg, seed, round, client, FR_PURPOSE_NEGATIVES);
    fr_rng_init(&rshuf, seed, round, client, FR_PURPOSE_SHUFFLE);
    uint32_t E = ws->cfg.local_epochs;
    fri_examples_clear(&ws->ex);
    /* confidence weights: the federation's (a ranking model's; the ratings are weights) */
    /* a sequence model: examples carry histories (and the item rows they read) */
    if (ws->ex.hist_len != hist_len) {
        fri_examples_free(&ws->ex); /* its arrays were sized for the other shape */
        ws->ex.hist_len = hist_len;
    }
    ws->ex.stride = ws->cfg.seq_stride; /* 0: the history length */
    ws->ex.alpha = ws->mcfg.loss != FR_LOSS_MSE ? ws->cfg.confidence_alpha : 0.0f;
    for (uint32_t ep = 0; ep < E; ep++) {
        starts[ep] = ws->ex.n;
        for (uint32_t j = 0; j < U; j++) {
            fr_client_user u = user_of(data, j);
            e = hist_len ? add_pass_seq(ws, &u, j, data->n_items, &rneg) : add_pass(ws, &u, j, data->n_items, &rneg);
            if (e) return e;
        }
        fri_examples ex = fri_examples_view(&ws->ex, starts[ep], ws->ex.n);
        fri_examples_shuffle(&ex, &rshuf);
    }
    starts[E] = ws->ex.n;

    /* compact rows in order of first use in the examples (see fit_pass); `local` lists
     * their global ids increasing, perm[j] is the row of local[j] */
    bool bpr = ws->mcfg.loss == FR_LOSS_BPR;
    size_t nex = ws->ex.n;
    if (nex == 0) return FR_OK;
    size_t most = (bpr ? 2 * nex : nex) + (ws->graph ? n_inter : 0);
    if (hist_len) most = nex * (1 + 2 * (size_t)hist_len);
    const bool all = ws->all_items; /* a loss over every item row: the whole table, row r = item r */
    if (most > ws->mcfg.n_items || all) most = ws->mcfg.n_items;
    e = grow_u32(&ws->byrow, &ws->cap_byrow, most);
    if (!e) e = grow_u32(&ws->local, &ws->cap_local, most);
    if (!e) e = grow_u32(&ws->perm, &ws->cap_perm, most);
    if (e) return e;
    /* a graph kind reads every own item of its users at every step: they take the first
     * compact rows, [0, G), which every step's lazy range then covers */
    uint32_t G = 0;
    if (ws->graph) {
        e = grow_u32(&ws->gstart, &ws->cap_gstart, (size_t)U + 1);
        if (!e) e = grow_u32(&ws->gitems, &ws->cap_gitems, n_inter);
        if (e) return e;
        size_t k = 0;
        for (uint32_t j = 0; j < U; j++) {
            fr_client_user u = user_of(data, j);
            ws->gstart[j] = (uint32_t)k;
            for (size_t x = 0; x < u.n; x++) ws->gitems[k++] = row_for(ws, u.items[x]);
        }
        ws->gstart[U] = (uint32_t)k;
        G = (uint32_t)ws->n_byrow;
    }
    if (all) /* first, so compact row r is item r (the update is then the dense table) */
        for (uint32_t it = 0; it < ws->mcfg.n_items; it++) (void)row_for(ws, it);
    for (size_t i = 0; i < nex; i++) {
        ws->ex.item[i] = row_for(ws, ws->ex.item[i]);
        if (bpr) ws->ex.neg[i] = row_for(ws, ws->ex.neg[i]);
        for (size_t x = i * hist_len; x < (i + 1) * hist_len; x++) { /* a history's rows */
            if (ws->ex.hist[x] != FR_NO_ITEM) ws->ex.hist[x] = row_for(ws, ws->ex.hist[x]);
            if (ws->ex.hneg[x] != FR_NO_ITEM && ws->ex.hneg[x] != FR_NO_LOSS) /* both pass through */
                ws->ex.hneg[x] = row_for(ws, ws->ex.hneg[x]);
        }
    }
    size_t L = ws->n_byrow;
    uint32_t *perm = ws->perm;
    if (sort_by_scan || (size_t)ws->mcfg.n_items <= 16 * L) { /* a scan of the marks beats a sort */
        size_t k = 0;
        for (uint32_t it = 0; it < ws->mcfg.n_items; it++)
            if (ws->row_of[it]) { ws->local[k] = it; perm[k] = ws->row_of[it] - 1; k++; }
    } else if (L <= 64) { /* by rank: byrow's ids are distinct, so row r goes to the place of its rank */
        for (size_t r = 0; r < L; r++) {
            uint32_t x = ws->byrow[r];
            size_t rank = 0;
            for (size_t j = 0; j < L; j++) rank += ws->byrow[j] < x; /* no branch to mispredict */
            ws->local[rank] = x;
            perm[rank] = (uint32_t)r;
        }
    } else { /* byrow's ids by radix, each with its compact row (its index in byrow) */
        if ((e = grow_u32(&ws->rtmp, &ws->cap_rtmp, 2 * L))) return e;
        radix_rows(ws->byrow, L, ws->mcfg.n_items, ws->local, perm, ws->rtmp, ws->rtmp + L);
    }
    *Gp = G;
    *Lp = L;
    return FR_OK;
}

/* A TASK a client can step on: decoded (its model g) and of this client's federation. */
static fr_err task_check(const fr_client_ws *ws, const fr_task *task, const fr_model *g, uint32_t client) {
    if (!g) return fri_fail(FR_ERR_INVALID, "client %u: the TASK is empty (not decoded)", client);
    if (fr_task_config_crc(task) != ws->config_crc)
        return fri_fail(FR_ERR_INVALID,
                        "client %u: the TASK is of another federation (config CRC 0x%08x, this client's 0x%08x)",
                        client, fr_task_config_crc(task), ws->config_crc);
    return FR_OK;
}

fr_err fri_client_plan_rows(fr_client_ws *ws, const fr_task *task, uint32_t client, const fr_client_data *data,
                            const uint32_t **ids, size_t *n) {
    *ids = NULL;
    *n = 0;
    const fr_model *g = fr_task_model(task);
    fr_err bad = task_check(ws, task, g, client);
    if (bad) return bad;
    uint32_t U, G;
    size_t total, L = 0, starts[FR_FL_MAX_LOCAL_EPOCHS + 1];
    fr_err e = data_checks(ws, client, data, g, &U, &total);
    if (e) return e;
    ws->n_byrow = 0;
    e = plan(ws, fr_task_round(task), client, data, U, total, fr_model_history_len(g), starts, &G, &L);
    for (size_t r = 0; r < ws->n_byrow; r++) ws->row_of[ws->byrow[r]] = 0;
    ws->n_byrow = 0;
    if (e) return e;
    *ids = ws->local;
    *n = L;
    return FR_OK;
}

/* n_inter: the interactions of the client's U users (its weight n_k), checked > 0. */
static fr_err fit(fr_client_ws *ws, uint32_t round, uint32_t client, const fr_client_data *data, uint32_t U,
                  size_t n_inter, const fr_model *global, const fr_client_private *priv, fr_update *upd,
                  fr_client_report *rep) {
    const uint32_t hist_len = fr_model_history_len(global);
    uint32_t E = ws->cfg.local_epochs, G = 0;
    size_t starts[FR_FL_MAX_LOCAL_EPOCHS + 1], L = 0;
    fr_err e = plan(ws, round, client, data, U, n_inter, hist_len, starts, &G, &L);
    if (e) return e;
    size_t nex = ws->ex.n;
    if (nex == 0) {
        /* no example could be made (a pairwise loss for a user who has every item: no
         * negative exists): nothing is trained, and the update weighs 0, so it changes no
         * average; the private rows stay as they are */
        e = fr_update_reset(upd, ws->dense_len, ws->n_tables, ws->widths);
        if (e) return e;
        upd->weight = 0;
        upd->client = client;
        upd->round = round;
        return FR_OK;
    }
    uint32_t *perm = ws->perm;
    if (ws->lean && U == 1 && !ws->graph && !hist_len) { /* the fused fit, when the model has one */
        e = lean_fit(ws, round, client, global, priv, L, n_inter, starts, E, upd, rep);
        if (e != FR_ERR_UNSUPPORTED) return e;
    }
    e = use_compact(ws, (uint32_t)L, U);
    if (e) return e;
    ws->fits++;

    /* receive: gather the dense layers and the local rows, load the private rows */
    fr_model *m = ws->m;
    float *w = fr_model_params(m);
    load_model(ws, global, priv->rows, L, U);
    /* which items and users the rows stand for (families with side features read it) */
    if ((e = grow_u32(&ws->uglob, &ws->cap_uglob, U))) return e;
    for (uint32_t j = 0; j < U; j++) ws->uglob[j] = user_of(data, j).user;
    fri_model_bind_rows(m, ws->byrow, (uint32_t)L, ws->uglob, U, ws->mcfg.n_items);
    /* the reference of what is read later: the dense layers and rows [0, L) */
    for (int t = 0; t < fr_model_n_tensors(m); t++) {
        const fr_tensor *lt = fr_model_tensor(m, t);
        if (lt->kind == FR_TENSOR_USER_TABLE) continue;
        size_t rows = lt->kind == FR_TENSOR_ITEM_TABLE ? L : lt->rows;
        memcpy(ws->ref + lt->offset, w + lt->offset, rows * lt->cols * sizeof *w);
    }
    /* what a rows-on-request downlink would carry: the dense part, and per item table its
     * L row ids and rows */
    uint64_t down = 4 * (uint64_t)ws->dense_len;
    for (uint32_t t = 0; t < ws->n_tables; t++) down += (uint64_t)L * (4 + 4 * (uint64_t)ws->widths[t]);
    rep->bytes_down = down;

    /* local fit: E epochs of minibatches with fresh optimizers for the shared part
     * (moments zeroed over what a step can touch: the dense tensors, item rows [0, L)),
     * and for the user rows [0, U) too unless their state is kept */
    pass_ctx c = {(uint32_t)L, U, false, false, false, 0.0f, ws->oi ? ws->oi : ws->o, ws->op ? ws->op : ws->o};
    for (int t = 0; t < fr_model_n_tensors(m); t++) {
        const fr_tensor *lt = fr_model_tensor(m, t);
        if (lt->kind == FR_TENSOR_USER_TABLE && ws->op) continue;
        uint32_t rows = lt->kind == FR_TENSOR_ITEM_TABLE ? (uint32_t)L : lt->kind == FR_TENSOR_USER_TABLE ? U : lt->rows;
        fri_optim_reset_range(lt->kind == FR_TENSOR_ITEM_TABLE ? c.oi : ws->o, lt->offset, rows * (size_t)lt->cols);
    }
    uint64_t kept_steps = ws->op ? *priv->steps : 0;
    if (ws->op) {
        kept_state(ws, priv, U, true);
        fri_optim_set_steps(ws->op, kept_steps);
    }
    if (ws->oi) {
        double lr = (double)ws->item_cfg.lr * pow((double)ws->cfg.item_lr_decay, (double)(round ? round - 1 : 0));
        e = fr_optim_set_lr(ws->oi, (float)lr > 0 ? (float)lr : FLT_MIN);
        if (e) return e;
    }
    c.mu = ws->cfg.strategy == FR_STRATEGY_FEDPROX ? ws->cfg.mu : 0.0f;
    /* skipping unused rows is exact only without weight decay or a proximal term and with
     * finite values (0 * inf is NaN in the dense rule) */
    c.lazy = ws->cfg.local.weight_decay == 0 && ws->item_cfg.weight_decay == 0 && !(c.mu > 0);
    /* only what a step can read: the dense layers, rows [0, L), the private rows [0, U) */
    for (int t = 0; c.lazy && t < fr_model_n_tensors(m); t++) {
        const fr_tensor *lt = fr_model_tensor(m, t);
        size_t rows = lt->kind == FR_TENSOR_ITEM_TABLE ? L : lt->kind == FR_TENSOR_USER_TABLE ? U : lt->rows;
        c.lazy = fri_all_finite(w + lt->offset, rows * lt->cols);
    }
    /* coasting: rows step when touched and catch up in closed form (the dense rule up to
     * rounding); off for the bit-exact dense steps, or where lazy is not exact. A
     * silo's user rows coast too. */
    /* (not for a graph model, whose step reads rows past its batch, nor a sequence model:
     * its minibatches read history rows that coasting does not see; the dense rule over
     * rows [0, L) steps them) */
    c.coast = c.lazy && !ws->cfg.dense_steps && !ws->graph && !hist_len;
    c.coast_users = c.coast && U > 1;
    if (c.coast) {
        size_t steps = 0;
        for (uint32_t ep = 0; ep < E; ep++) steps += (starts[ep + 1] - starts[ep] + ws->cfg.batch - 1) / ws->cfg.batch;
        e = fri_optim_coast_reserve(c.oi, steps);
        if (!e) e = side_reserve(&ws->ci, ws->n_tables, L, steps);
        if (!e && c.coast_users) e = fri_optim_coast_reserve(c.op, kept_steps + steps);
        if (!e && c.coast_users) e = side_reserve(&ws->cu, ws->n_utables, U, steps);
        if (e) return e;
        for (uint32_t t = 0; t < ws->n_tables; t++) memset(ws->ci.last + t * ws->ci.cap, 0, L * sizeof *ws->ci.last);
        ws->ci.base = 0;
        ws->cu.base = kept_steps;
        /* user rows: a kept state is current as of its step count */
        for (uint32_t t = 0; c.coast_users && t < ws->n_utables; t++)
            for (uint32_t j = 0; j < U; j++) ws->cu.last[t * ws->cu.cap + j] = (uint32_t)kept_steps;
    }
    uint32_t T = G;
    double loss_sum = 0;
    if (ws->graph) {
        fr_model_graph cg = {client_graph_items, ws};
        fr_model_set_graph(m, &cg);
    }
    for (uint32_t ep = 0; ep < E; ep++) {
        fri_examples ex = fri_examples_view(&ws->ex, starts[ep], starts[ep + 1]);
        if (ex.n == 0) continue;
        e = fit_pass(ws, &ex, &c, &T, &loss_sum);
        if (e) return e;
    }
    if (c.coast) coast_all(ws, &ws->ci, FR_TENSOR_ITEM_TABLE, c.oi, (uint32_t)L);
    if (c.coast_users) coast_all(ws, &ws->cu, FR_TENSOR_USER_TABLE, c.op, U);
    rep->loss_sum = loss_sum;
    rep->examples = nex;

    /* private state stays with the client; the update gets Δ of the shared part */
    e = fr_update_reset(upd, ws->dense_len, ws->n_tables, ws->widths);
    if (e) return e;
    /* a sequence model's examples are windows of a user's history, not proportional to its
     * interactions: it weighs by its examples (one epoch's), so one round of full-batch
     * steps is one centralized full-batch step */
    upd->weight = hist_len ? starts[1] - starts[0] : n_inter;
    upd->client = client;
    upd->round = round;
    size_t dpos = 0;
    uint32_t tb = 0, ut = 0;
    for (int t = 0; t < fr_model_n_tensors(m); t++) {
        const fr_tensor *lt = fr_model_tensor(m, t);
        size_t cols = lt->cols;
        if (lt->kind == FR_TENSOR_DENSE) {
            size_t len = (size_t)lt->rows * cols;
            for (size_t i = 0; i < len; i++) upd->dense[dpos + i] = w[lt->offset + i] - ws->ref[lt->offset + i];
            dpos += len;
        } else if (lt->kind == FR_TENSOR_ITEM_TABLE) {
            e = fr_update_table_resize(upd, tb, (uint32_t)L);
            if (e) return e;
            fr_update_table *ut_ = &upd->tables[tb++];
            memcpy(ut_->ids, ws->local, L * sizeof *ut_->ids);
            for (size_t j = 0; j < L; j++) {
                size_t src = lt->offset + (size_t)perm[j] * cols;
                float *dst = ut_->values + j * cols;
                for (size_t i = 0; i < cols; i++) dst[i] = w[src + i] - ws->ref[src + i];
            }
        } else {
            for (uint32_t j = 0; j < U; j++) memcpy(priv->rows[ut * U + j], w + lt->offset + j * cols, cols * sizeof *w);
            ut++;
        }
    }
    if (ws->op) {
        kept_state(ws, priv, U, false);
        *priv->steps = fr_optim_steps(ws->op);
    }
    return FR_OK;
}

/* ------------------------------------------------------------------ the client step */

/* The fit of a step: the task's round and global parameters, into ws->step_upd. */
static fr_err step_fit(fr_client_ws *ws, const fr_task *task, uint32_t client, const fr_client_data *data,
                       const fr_client_private *priv, fr_client_report *rep) {
    const fr_model *g = fr_task_model(task);
    fr_err bad = task_check(ws, task, g, client);
    if (bad) return bad;
    if (!ws->step_upd) {
        fr_err e = fr_update_create(&ws->step_upd);
        if (e) return e;
    }
    fr_err e = fr_client_fit(ws, fr_task_round(task), client, data, g, priv, ws->step_upd, rep);
    if (!e && ws->hide) e = fri_hide_pad(ws->hide, &ws->cfg, data, ws->step_upd);
    if (!e && ws->cfg.aggregator == FR_AGG_NORMCLIP && ws->cfg.agg_clip > 0)
        fri_normclip_update(ws->step_upd, ws->cfg.agg_clip); /* an honest client bounds itself (masks hide it) */
    return e;
}

void fri_client_ws_set_residual(fr_client_ws *ws, float *residual) { ws->residual = residual; }

void fri_client_ws_prefetch(const fr_client_ws *ws, const uint32_t *items, size_t n) {
    if (!ws->row_of || !ws->own) return;
    for (size_t i = 0; i < n; i++) {
        if (items[i] >= ws->mcfg.n_items) continue;
        __builtin_prefetch(&ws->row_of[items[i]], 1, 3);
        __builtin_prefetch(&ws->own[items[i]], 1, 3);
    }
}

fr_err fr_client_ws_set_popularity(fr_client_ws *ws, const double *weights, uint32_t n_items) {
    if (ws->cfg.neg_sampler == FR_NEG_POPULARITY) { /* popularity negatives */
        if (n_items != ws->mcfg.n_items)
            return fri_fail(FR_ERR_INVALID, "popularity of %u items, expected the catalogue's %u", n_items,
                            ws->mcfg.n_items);
        fr_err e = fri_negpop_build(&ws->negpop, weights, n_items, ws->cfg.neg_pop_exp);
        if (e) return e;
    }
    if (!ws->hide) return FR_OK; /* no decoys: nothing else draws from it */
    return fri_hide_set_popularity(ws->hide, weights, n_items);
}

fr_err fr_client_step(fr_client_ws *ws, const fr_task *task, uint32_t client, const fr_client_data *data,
                      const fr_client_private *priv, fr_result *res) {
    if (fri_result_compress_flags(&ws->cfg)) { /* what the bytes would carry, decoded */
        const uint8_t *b;
        size_t n;
        fr_err e = fri_client_step_encode(ws, task, client, data, priv, &b, &n);
        uint32_t rows[FR_MODEL_MAX_TENSORS];
        for (uint32_t t = 0; t < ws->n_tables; t++) rows[t] = ws->mcfg.n_items;
        fr_update_shape sh = {ws->dense_len, ws->n_tables, ws->widths, rows};
        return e ? e : fri_result_decompress(res, b, n, &sh);
    }
    fr_client_report rep;
    fr_err e = step_fit(ws, task, client, data, priv, &rep);
    if (!e) e = fr_fl_dp_on(&ws->cfg) ? fri_dp_quantize(res, ws->step_upd, &ws->cfg, fr_task_dp_clip(task),
                                                        fr_task_bound(task))
                                      : fr_result_quantize(res, ws->step_upd, &ws->cfg, fr_task_bound(task));
    if (e) return e;
    res->config_crc = ws->config_crc;
    res->examples = rep.examples;
    res->loss_sum = rep.loss_sum;
    return FR_OK;
}

fr_err fri_client_step_update(fr_client_ws *ws, const fr_task *task, uint32_t client, const fr_client_data *data,
                              const fr_client_private *priv, const fr_update **upd, fr_client_report *rep,
                              uint32_t *config_crc) {
    *upd = NULL;
    if (fr_fl_dp_on(&ws->cfg) || fri_result_compress_flags(&ws->cfg))
        return fri_fail(FR_ERR_UNSUPPORTED, "client %u: a DP or compressed RESULT is made from the update", client);
    fr_err e = step_fit(ws, task, client, data, priv, rep);
    if (e) return e;
    *upd = ws->step_upd;
    *config_crc = ws->config_crc;
    return FR_OK;
}

fr_err fri_client_step_encode(fr_client_ws *ws, const fr_task *task, uint32_t client, const fr_client_data *data,
                              const fr_client_private *priv, const uint8_t **out, size_t *out_n) {
    *out = NULL;
    *out_n = 0;
    float *residual = ws->residual;
    ws->residual = NULL; /* one step's */
    fr_client_report rep;
    fr_err e = step_fit(ws, task, client, data, priv, &rep);
    if (e) return e;
    if (fr_fl_dp_on(&ws->cfg)) { /* clipped in integers first, then encoded */
        if (!ws->step_res && (e = fr_result_create(&ws->step_res))) return e;
        fr_result *res = ws->step_res;
        e = fri_dp_quantize(res, ws->step_upd, &ws->cfg, fr_task_dp_clip(task), fr_task_bound(task));
        if (e) return e;
        res->config_crc = ws->config_crc;
        res->examples = rep.examples;
        res->loss_sum = rep.loss_sum;
        size_t n = fr_result_encoded_size(res);
        if (n == 0) return fri_fail(FR_ERR_INVALID, "client %u: its RESULT overflows size_t", client);
        if (n > ws->step_cap) {
            uint8_t *b = fri_realloc(ws->step_buf, n);
            if (!b) return FR_ERR_NOMEM;
            ws->step_buf = b;
            ws->step_cap = n;
        }
        if ((e = fr_result_encode_to(res, ws->step_buf, ws->step_cap, out_n))) return e;
        *out = ws->step_buf;
        return FR_OK;
    }
    if (fri_result_compress_flags(&ws->cfg)) {
        e = fri_result_encode_compressed(ws->step_upd, &ws->cfg, fr_task_bound(task), ws->config_crc, rep.examples,
                                         rep.loss_sum, residual, &ws->cw, &ws->step_buf, &ws->step_cap, out_n);
        if (e) return e;
        *out = ws->step_buf;
        return FR_OK;
    }
    size_t need = fri_result_update_size(ws->step_upd);
    if (need == 0) return fri_fail(FR_ERR_INVALID, "client %u: its RESULT overflows size_t", client);
    if (need > ws->step_cap) {
        uint8_t *b = fri_realloc(ws->step_buf, need);
        if (!b) return FR_ERR_NOMEM;
        ws->step_buf = b;
        ws->step_cap = need;
    }
    e = fri_result_encode_update(ws->step_upd, &ws->cfg, fr_task_bound(task), ws->config_crc, rep.examples,
                                 rep.loss_sum, ws->step_buf, ws->step_cap, out_n);
    if (e) return e;
    *out = ws->step_buf;
    return FR_OK;
}

fr_err fr_client_step_bytes(fr_client_ws *ws, const uint8_t *task, size_t task_n, uint32_t client,
                            const fr_client_data *data, const fr_client_private *priv, const uint8_t **out,
                            size_t *out_n) {
    *out = NULL;
    *out_n = 0;
    fr_err e = FR_OK;
    if (!ws->step_task) e = fr_task_create(&ws->step_task);
    if (!e) e = fr_task_decode(ws->step_task, task, task_n);
    if (!e) e = fri_client_step_encode(ws, ws->step_task, client, data, priv, out, out_n);
    return e;
}
