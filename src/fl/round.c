/* The round controller: the server of a federation as a state machine over bytes (see
 * fr_round in fedrec/fl.h). It owns the global model, the strategy's moments, and per
 * lane the round's integer accumulators; the strategies (FedAvg, FedAvgM, FedProx,
 * FedAdam, FedYogi, FedAdagrad) are applied once per round, at end.
 *
 * Invariants:
 *   - Order independence: clients send n_k * Δ already in 64-bit fixed point
 *     (fr_result_quantize); a lane adds them as integers modulo 2^64 and end sums the
 *     lanes the same way, then divides by the weights in double. So the new model is
 *     bit-identical for any number of lanes, arrival order, assignment of clients to
 *     lanes, or merge of controllers.
 *   - A result is checked whole (round, federation, sampled client, shape) before its
 *     client is marked answered and before anything is added, so a refused result
 *     changes nothing; the answered mark is one atomic operation, so two copies of one
 *     result in two lanes cannot both count.
 *   - A round takes at most `target` results (the clients it wants; with over-selection
 *     it samples more): a slot is taken by a compare-and-swap on the accepted count after
 *     the answered mark, so concurrent lanes never take more, and a result that finds
 *     no slot clears its mark and is refused as late (when the target is every sampled
 *     client, the mark alone bounds the count: each lane counts its own results). The
 *     bound of the round's values is that of `target` results, so their sum cannot
 *     overflow.
 *   - Only the shared prefix of the slab is ever touched: results carry no private rows.
 *     A row no client touched has Δ = 0 (FedAvg); with row_norm a touched row is averaged
 *     over the clients that touched it (their n_k, summed per row from the results' row
 *     ids); with item_sum item rows take the plain sum of the clients' Δ.
 *   - Per-client figures (loss, examples, bytes) are kept by position in the sampled list
 *     and summed in client-id order at end, so they too do not depend on arrival order.
 *   - A robust aggregator (robust.c; fr_fl_config.aggregator) also keeps each accepted
 *     result whole, by position, and at end aggregates from those alone (the lanes'
 *     sums are rebuilt or unused): kept by position and read in client-id order, so
 *     lanes and arrival order still change no bit. Never with DP or merged controllers,
 *     nor with secure aggregation (the server would see what the masks hide) except
 *     normclip:C, whose clients clip themselves: the masked sum then takes FedAvg's rule.
 *   - Differential privacy (dp.c, fri_dp_*) hooks in at four places only: Poisson
 *     sampling and the round's clip at begin, a result's norm check and clip bit at
 *     accept, noise on the summed integers (and the expected count as divisor) at end,
 *     the adaptive clip in the state. Without DP none of them runs. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "fl/fl_internal.h"
#include "model/model_internal.h"

enum { SENT = 1, DONE = 2, ROWS = 4 }; /* bits of a position's status (ROWS: given the rows TASK) */

/* A lane's weight sum and result count, alone in a cache line: the workers that add into
 * lanes side by side do not pass one line between them at every result. */
typedef struct fri_lane_tally {
    _Alignas(64) uint64_t wsum; /* sum n_k */
    atomic_uint accepted;       /* results counted in the lane (counts_in_lanes) */
} fri_lane_tally;

struct fr_round {
    fr_model_config mcfg;   /* the global model's config (n_users 1) */
    fr_fl_config cfg;       /* federation settings */
    uint32_t n_clients;     /* client ids 0..n_clients-1 */
    int n_lanes;            /* accumulators */
    fr_model *g;            /* global model: its shared prefix is w_t */
    size_t n_shared;        /* shared floats */
    uint32_t n_items;       /* item rows */
    uint32_t completed;     /* rounds applied */
    bool open;              /* a round is between begin and end */
    float *m, *v;           /* [n_shared] strategy moments or NULL */
    int table_t[FR_MODEL_MAX_TENSORS];   /* tensor index of item table i */
    int dense_t[FR_MODEL_MAX_TENSORS];   /* tensor index of dense tensor i */
    int n_dense;
    uint32_t widths[FR_MODEL_MAX_TENSORS], nrows[FR_MODEL_MAX_TENSORS];
    fr_update_shape shape;  /* what results must look like */
    uint8_t *config;        /* the config block (TASK, state) */
    size_t config_n;
    uint32_t config_crc;    /* its CRC-32C: names the federation */
    /* accumulators, per lane */
    int64_t *acc;           /* [n_lanes * n_shared] sum of w * Δ, 2^-32 units, modulo 2^64 */
    uint64_t *roww;         /* row_norm: [n_lanes * n_tables * n_items] sum n_k of clients touching a row */
    fri_lane_tally *lanes;  /* [n_lanes] sum n_k and results, a cache line each (64-aligned) */
    /* the open round */
    uint32_t *ids;          /* [n_clients] its sampled clients, increasing; k of them */
    uint32_t k;
    uint32_t target;        /* results it takes (<= k; below k when over-selecting) */
    atomic_uint accepted;   /* results accepted so far (<= target), beyond the lanes' own counts */
    atomic_uchar *status;   /* [n_clients] per position: SENT | DONE bits */
    double *loss;           /* [n_clients] per position: a result's loss sum */
    uint64_t *examples, *up;/* [n_clients] per position: its examples, its bytes */
    fri_buf task;           /* the open round's TASK message */
    fri_buf task_rows;      /* its rows TASK (rows on: fri_round_set_rows), else empty */
    bool rows;              /* encode a rows TASK with every round's TASK */
    _Atomic uint64_t rows_down; /* bytes of the rows blocks given this round (fri_round_count_down) */
    uint64_t bound;         /* the open round's largest |value| (fr_fl_fixed_bound(target):
                               no more results than the target are ever summed) */
    fri_dp_server dp;       /* differential privacy (dp.c); dp.on false without it */
    fr_result **cres;       /* [n_lanes] a compressed RESULT decoded (made on first use) */
    fri_kept *kept;         /* robust aggregators: [n_clients] per position, its result whole */
    bool secure_sum;        /* the open round's results came as a secure sum (normclip:C only) */
};

static bool adaptive(fr_strategy s) {
    return s == FR_STRATEGY_FEDADAM || s == FR_STRATEGY_FEDYOGI || s == FR_STRATEGY_FEDADAGRAD;
}

void fr_round_free(fr_round *r) {
    if (!r) return;
    fr_model_free(r->g);
    fri_free(r->m);
    fri_free(r->v);
    fri_free(r->config);
    fri_free_aligned(r->acc);
    fri_free(r->roww);
    fri_free_aligned(r->lanes);
    fri_free(r->ids);
    fri_free_aligned((void *)r->status);
    fri_free_aligned(r->loss);
    fri_free_aligned(r->examples);
    fri_free_aligned(r->up);
    fri_buf_free(&r->task);
    fri_buf_free(&r->task_rows);
    fri_dp_server_free(&r->dp);
    for (int i = 0; r->cres && i < r->n_lanes; i++) fr_result_free(r->cres[i]);
    fri_free(r->cres);
    for (uint32_t i = 0; r->kept && i < r->n_clients; i++) fri_kept_free(&r->kept[i]);
    fri_free(r->kept);
    fri_free(r);
}

fr_err fr_round_create(fr_round **out, const fr_model_config *mcfg, const fr_fl_config *cfg, uint32_t n_clients,
                       int n_lanes) {
    *out = NULL;
    fr_err e = fr_fl_config_check(cfg);
    if (e) return e;
    if (n_lanes < 1) return fri_fail(FR_ERR_INVALID, "round controller: %d lanes, expected >= 1", n_lanes);
    if (cfg->min_results > n_clients)
        return fri_fail(FR_ERR_INVALID, "a quorum of %u results, but the federation has %u client%s", cfg->min_results,
                        n_clients, fri_s(n_clients));
    fr_round *r = fri_calloc(1, sizeof *r);
    if (!r) return FR_ERR_NOMEM;
    r->cfg = *cfg;
    r->n_lanes = n_lanes;
    r->n_clients = n_clients;
    r->mcfg = *mcfg;
    r->mcfg.n_users = 1;
    e = fr_model_create(&r->g, &r->mcfg);
    if (e) goto fail;
    r->n_shared = fr_model_n_shared(r->g);
    r->n_items = r->mcfg.n_items;
    uint32_t dense_len = 0, nt = 0;
    for (int t = 0; t < fr_model_n_tensors(r->g); t++) {
        const fr_tensor *tt = fr_model_tensor(r->g, t);
        if (tt->kind == FR_TENSOR_DENSE) { r->dense_t[r->n_dense++] = t; dense_len += tt->rows * tt->cols; }
        else if (tt->kind == FR_TENSOR_ITEM_TABLE) {
            r->table_t[nt] = t; r->widths[nt] = tt->cols; r->nrows[nt] = tt->rows; nt++;
        }
    }
    r->shape = (fr_update_shape){dense_len, nt, r->widths, r->nrows};
    fri_buf cb = {0};
    e = fri_fl_config_block(&cb, &r->mcfg, cfg);
    if (e) { fri_buf_free(&cb); goto fail; }
    r->config = cb.data;
    r->config_n = cb.len;
    r->config_crc = fr_crc32c(0, r->config, r->config_n);
    if ((e = fri_dp_server_init(&r->dp, cfg, n_clients, n_lanes))) goto fail;
    size_t nl = (size_t)n_lanes, nc = n_clients ? n_clients : 1;
    e = FR_ERR_NOMEM;
    size_t acc_n = nl * (r->n_shared ? r->n_shared : 1) * sizeof *r->acc;
    if ((r->acc = fri_aligned_alloc(acc_n))) { /* rows are added at random: huge pages, then zeros */
        fri_advise_huge(r->acc, acc_n);
        memset(r->acc, 0, acc_n);
    }
    if (cfg->row_norm) r->roww = fri_calloc(nl * (nt ? nt : 1) * (size_t)r->n_items, sizeof *r->roww);
    r->lanes = fri_aligned_calloc(nl * sizeof *r->lanes);
    r->ids = fri_malloc(nc * sizeof *r->ids);
    /* per position, on 64-byte boundaries: workers take chunks of 64 consecutive positions
     * (fr_pool_for's grain in the simulator), so each chunk's status bytes fill a cache
     * line of their own instead of straddling one with the neighbouring worker's chunk */
    r->status = fri_aligned_calloc(nc * sizeof *r->status);
    r->loss = fri_aligned_alloc(nc * sizeof *r->loss);
    r->examples = fri_aligned_alloc(nc * sizeof *r->examples);
    r->up = fri_aligned_alloc(nc * sizeof *r->up);
    r->cres = fri_calloc(nl, sizeof *r->cres);
    if (cfg->aggregator && !(r->kept = fri_calloc(nc, sizeof *r->kept))) goto fail;
    if (!r->acc || (cfg->row_norm && !r->roww) || !r->lanes || !r->ids || !r->status || !r->loss || !r->examples ||
        !r->up || !r->cres)
        goto fail;
    bool mom = cfg->strategy == FR_STRATEGY_FEDAVGM || adaptive(cfg->strategy);
    e = FR_ERR_NOMEM;
    if (mom && !(r->m = fri_calloc(r->n_shared ? r->n_shared : 1, sizeof *r->m))) goto fail;
    if (adaptive(cfg->strategy) && !(r->v = fri_calloc(r->n_shared ? r->n_shared : 1, sizeof *r->v))) goto fail;
    if (r->v && cfg->strategy != FR_STRATEGY_FEDADAGRAD) /* Reddi et al.: v_{-1} = tau^2 */
        for (size_t i = 0; i < r->n_shared; i++) r->v[i] = cfg->tau * cfg->tau;
    *out = r;
    return FR_OK;
fail:
    fr_round_free(r);
    return e;
}

uint32_t fr_round_completed(const fr_round *r) { return r->completed; }
bool fr_round_is_open(const fr_round *r) { return r->open; }
uint32_t fr_round_n_clients(const fr_round *r) { return r->n_clients; }
const fr_model *fr_round_model(const fr_round *r) { return r->g; }
const fr_model_config *fr_round_model_config(const fr_round *r) { return &r->mcfg; }
const fr_fl_config *fr_round_fl_config(const fr_round *r) { return &r->cfg; }
const fr_update_shape *fr_round_shape(const fr_round *r) { return &r->shape; }
uint32_t fr_round_config_crc(const fr_round *r) { return r->config_crc; }
double fr_round_dp_clip(const fr_round *r) { return r->dp.on ? r->dp.clip : 0; }
void fr_round_set_pool(fr_round *r, fr_pool *pool) { r->dp.pool = pool; }

static void zero_accumulators(fr_round *r) {
    size_t nl = (size_t)r->n_lanes;
    memset(r->acc, 0, nl * r->n_shared * sizeof *r->acc);
    if (r->roww) memset(r->roww, 0, nl * (r->shape.n_tables ? r->shape.n_tables : 1) * (size_t)r->n_items * sizeof *r->roww);
    for (size_t k = 0; k < nl; k++) r->lanes[k].wsum = 0;
}

/* Opens the next round sampling among avail (NULL: every client). */
static fr_err begin(fr_round *r, const uint32_t *avail, uint32_t n_avail, double over_select,
                    const uint32_t **clients, uint32_t *k) {
    if (clients) *clients = NULL;
    if (k) *k = 0;
    if (r->open) return fri_fail(FR_ERR_STATE, "round %u is open: end or abort it before beginning another", r->completed + 1);
    if (avail && n_avail > r->n_clients)
        return fri_fail(FR_ERR_INVALID, "%u available clients, the federation has %u", n_avail, r->n_clients);
    for (uint32_t i = 0; avail && i < n_avail; i++)
        if (avail[i] >= r->n_clients)
            return fri_fail(FR_ERR_INVALID, "available client %u: out of range, the federation has %u clients",
                            avail[i], r->n_clients);
    uint32_t round = r->completed + 1;
    fr_err e = r->dp.on ? fri_dp_sample(&r->cfg, round, r->n_clients, avail, n_avail, over_select, r->ids, &r->k)
                        : fri_fl_sample_among(&r->cfg, round, avail, n_avail, over_select, r->ids, &r->k, &r->target);
    if (!e && r->dp.on) r->target = r->k; /* every Poisson-sampled client counts */
    if (!e) {
        r->bound = fr_fl_fixed_bound(r->target);
        e = fri_task_encode_q(&r->task, round, r->config, r->config_n, r->config_crc, r->bound,
                              fri_dp_begin(&r->dp, r->bound), r->g, r->cfg.compress_down, r->cfg.seed);
        r->task_rows.len = 0;
        if (!e && r->rows)
            e = fri_task_encode_rows(&r->task_rows, round, r->config, r->config_n, r->config_crc, r->bound,
                                     r->dp.on ? r->dp.round_clip : 0, r->g);
    }
    if (e) { r->k = r->target = 0; return e; }
    zero_accumulators(r);
    r->secure_sum = false;
    for (uint32_t i = 0; i < r->k; i++) atomic_store_explicit(&r->status[i], 0, memory_order_relaxed);
    atomic_store(&r->accepted, 0);
    for (int l = 0; l < r->n_lanes; l++) atomic_store(&r->lanes[l].accepted, 0);
    atomic_store(&r->rows_down, 0);
    r->open = true;
    if (clients) *clients = r->ids;
    if (k) *k = r->k;
    return FR_OK;
}

fr_err fr_round_begin(fr_round *r, const uint32_t **clients, uint32_t *k) {
    return begin(r, NULL, r->n_clients, 0.0, clients, k);
}

fr_err fr_round_begin_among(fr_round *r, const uint32_t *avail, uint32_t n_avail, double over_select,
                            const uint32_t **clients, uint32_t *k) {
    if (!avail && n_avail) {
        if (clients) *clients = NULL;
        if (k) *k = 0;
        return fri_fail(FR_ERR_INVALID, "%u available clients but no id list", n_avail);
    }
    static const uint32_t none = 0;
    return begin(r, avail ? avail : &none, n_avail, over_select, clients, k);
}

uint32_t fr_round_target(const fr_round *r) { return r->open ? r->target : 0; }

/* Position of client c in the sampled list, or -1. */
static int64_t position(const fr_round *r, uint32_t c) {
    uint32_t lo = 0, hi = r->k;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (r->ids[mid] < c) lo = mid + 1;
        else hi = mid;
    }
    return lo < r->k && r->ids[lo] == c ? (int64_t)lo : -1;
}

/* position(), when the caller's hint (the client's index in the sampled list, or
 * UINT32_MAX) does not already name it. */
static int64_t position_at(const fr_round *r, uint32_t c, uint32_t hint) {
    if (hint < r->k && r->ids[hint] == c) return (int64_t)hint;
    return position(r, c);
}

fr_err fr_round_task(fr_round *r, uint32_t client, const uint8_t **bytes, size_t *n) {
    return fri_round_task_at(r, client, UINT32_MAX, bytes, n);
}

fr_err fri_round_task_at(fr_round *r, uint32_t client, uint32_t hint, const uint8_t **bytes, size_t *n) {
    if (bytes) *bytes = NULL;
    if (n) *n = 0;
    if (!r->open) return fri_fail(FR_ERR_STATE, "TASK for client %u: no round is open", client);
    int64_t pos = position_at(r, client, hint);
    if (pos < 0)
        return fri_fail(FR_ERR_INVALID, "TASK for client %u: not sampled in round %u", client, r->completed + 1);
    atomic_fetch_or(&r->status[pos], (unsigned char)SENT);
    if (bytes) *bytes = r->task.data;
    if (n) *n = r->task.len;
    return FR_OK;
}

void fri_round_set_rows(fr_round *r, bool on) { r->rows = on; }
void fri_round_count_down(fr_round *r, uint64_t bytes) { atomic_fetch_add(&r->rows_down, bytes); }

fr_err fri_round_task_rows_at(fr_round *r, uint32_t client, uint32_t hint, const uint8_t **bytes, size_t *n) {
    if (bytes) *bytes = NULL;
    if (n) *n = 0;
    if (r->open && (!r->rows || r->task_rows.len == 0))
        return fri_fail(FR_ERR_STATE, "rows TASK for client %u: the round has none (rows are off)", client);
    fr_err e = fri_round_task_at(r, client, hint, NULL, NULL);
    if (e) return e;
    atomic_fetch_or(&r->status[position_at(r, client, hint)], (unsigned char)ROWS);
    if (bytes) *bytes = r->task_rows.data;
    if (n) *n = r->task_rows.len;
    return FR_OK;
}

/* The shape checks of a result given in memory (a message's view has passed them). */
static fr_err check_shape(const fr_round *r, const fr_result *res) {
    const fr_update_shape *s = &r->shape;
    if (res->dense_len != s->dense_len || res->n_tables != s->n_tables)
        return fri_fail(FR_ERR_INVALID, "RESULT of client %u: dense %u and %u tables, expected %u and %u", res->client,
                        res->dense_len, res->n_tables, s->dense_len, s->n_tables);
    for (uint32_t t = 0; t < res->n_tables; t++) {
        const fr_result_table *tb = &res->tables[t];
        if (tb->width != s->widths[t])
            return fri_fail(FR_ERR_INVALID, "RESULT of client %u: table %u width %u, expected %u", res->client, t,
                            tb->width, s->widths[t]);
        for (uint32_t i = 0; i < tb->count; i++) {
            if (tb->ids[i] >= s->n_rows[t])
                return fri_fail(FR_ERR_INVALID, "RESULT of client %u: row %u out of range, table has %u", res->client,
                                tb->ids[i], s->n_rows[t]);
            if (i && tb->ids[i] <= tb->ids[i - 1])
                return fri_fail(FR_ERR_INVALID, "RESULT of client %u: table %u: row %u follows %u, expected increasing",
                                res->client, t, tb->ids[i], tb->ids[i - 1]);
        }
    }
    return FR_OK;
}

/* w * Δ values of a view into acc: int64 arrays, or little-endian bytes at any alignment. */
static inline void add_values(int64_t *acc, const fri_result_view *v, const void *vals, size_t at, size_t n) {
    if (v->native) fri_fl_add_ints(acc, (const int64_t *)vals + at, n);
    else fri_fl_add_ints_le(acc, (const uint8_t *)vals + 8 * at, n);
}
static inline uint64_t max_abs(const fri_result_view *v, const void *vals, size_t n) {
    return v->native ? fri_fl_max_abs(vals, n) : fri_fl_max_abs_le(vals, n);
}
static inline uint32_t id_at(const fri_result_view *v, const void *ids, uint32_t i) {
    return v->native ? ((const uint32_t *)ids)[i] : fri_get_u32((const uint8_t *)ids + 4 * (size_t)i);
}

/* The checks of a result's header: a round is open, it answers it, this federation, and
 * its client was sampled (*pos: its position). */
static fr_err admit_head(const fr_round *r, uint32_t client, uint32_t res_round, uint32_t crc, uint32_t hint,
                         int64_t *pos) {
    uint32_t round = r->completed + 1;
    if (!r->open) return fri_fail(FR_ERR_STATE, "RESULT of client %u: no round is open", client);
    if (res_round != round)
        return fri_fail(FR_ERR_STATE, "RESULT of client %u for round %u refused: the open round is %u (%s)", client,
                        res_round, round, res_round < round ? "late" : "from the future");
    if (crc != r->config_crc)
        return fri_fail(FR_ERR_INVALID,
                        "RESULT of client %u refused: it answers another federation (config CRC 0x%08x, this one 0x%08x)",
                        client, crc, r->config_crc);
    *pos = position_at(r, client, hint);
    if (*pos < 0)
        return fri_fail(FR_ERR_INVALID, "RESULT of client %u refused: the client was not sampled in round %u", client,
                        round);
    return FR_OK;
}

/* Results accepted so far: the shared count (over-selection, merges, a restored status)
 * and the lanes' own. */
static unsigned n_accepted(const fr_round *r) {
    unsigned n = atomic_load(&((fr_round *)r)->accepted);
    for (int l = 0; l < r->n_lanes; l++) n += atomic_load_explicit(&r->lanes[l].accepted, memory_order_relaxed);
    return n;
}

/* Every sampled client fits in the target: the DONE bit alone keeps the count within it,
 * so a result is counted in its lane's own line, not in one word every worker's results
 * would pass between the cores (per client, that was the simulator's threads' cost). */
static bool counts_in_lanes(const fr_round *r) { return r->target >= r->k; }

/* The client at pos marked answered (once) and a slot among the target's taken. */
static fr_err admit_slot(fr_round *r, uint32_t client, int64_t pos, int lane) {
    uint32_t round = r->completed + 1;
    unsigned char old = atomic_fetch_or(&r->status[pos], (unsigned char)DONE);
    if (old & DONE)
        return fri_fail(FR_ERR_INVALID, "RESULT of client %u refused: a duplicate (the client already answered round %u)",
                        client, round);
    if (counts_in_lanes(r)) {
        atomic_fetch_add_explicit(&r->lanes[lane].accepted, 1, memory_order_relaxed);
        return FR_OK;
    }
    unsigned n = atomic_load(&r->accepted);
    do {
        if (n >= r->target) {
            atomic_fetch_and(&r->status[pos], (unsigned char)~DONE);
            return fri_fail(FR_ERR_STATE, "RESULT of client %u for round %u refused: late: the round has its %u result%s",
                            client, round, r->target, fri_s(r->target));
        }
    } while (!atomic_compare_exchange_weak(&r->accepted, &n, n + 1));
    return FR_OK;
}

/* A result whose shape has been checked: the checks of the round, then its sums into acc
 * [n_shared], rw (row_norm: [n_tables * n_items], else NULL) and *wsum: a lane's, or a
 * client's dense vector under secure aggregation. */
static fr_err accept_into(fr_round *r, const fri_result_view *v, int lane, int64_t *acc, uint64_t *rw, uint64_t *wsum,
                          uint32_t hint) {
    uint32_t round = r->completed + 1;
    int64_t pos;
    fr_err he = admit_head(r, v->client, v->round, v->config_crc, hint, &pos);
    if (he) return he;
    /* values within the round's bound: the round's sum cannot overflow */
    uint64_t worst = max_abs(v, v->dense, v->dense_len);
    for (uint32_t t = 0; t < v->n_tables; t++) {
        uint64_t m = max_abs(v, v->tables[t].values, (size_t)v->tables[t].count * v->tables[t].width);
        worst = m > worst ? m : worst;
    }
    if (worst > r->bound)
        return fri_fail(FR_ERR_RANGE, "RESULT of client %u refused: a value of %llu units is beyond round %u's bound "
                        "of %llu (the client diverged)", v->client, (unsigned long long)worst, round,
                        (unsigned long long)r->bound);
    fr_err de = fri_dp_check_result(&r->dp, &r->cfg, v);
    if (de) return de;
    fr_err se = admit_slot(r, v->client, pos, lane);
    if (se) return se;
    if (r->kept && acc >= r->acc && acc < r->acc + (size_t)r->n_lanes * r->n_shared) { /* a lane's: kept whole */
        fr_err ke = fri_kept_store(&r->kept[pos], v);
        if (ke) {
            if (counts_in_lanes(r)) atomic_fetch_sub(&r->lanes[lane].accepted, 1);
            else atomic_fetch_sub(&r->accepted, 1);
            atomic_fetch_and(&r->status[pos], (unsigned char)~DONE);
            return ke;
        }
    }
    size_t at = 0;
    for (int i = 0; i < r->n_dense; i++) {
        const fr_tensor *tt = fr_model_tensor(r->g, r->dense_t[i]);
        size_t len = (size_t)tt->rows * tt->cols;
        add_values(acc + tt->offset, v, v->dense, at, len);
        at += len;
    }
    for (uint32_t t = 0; t < v->n_tables; t++) { /* the rows are scattered: ask for all first */
        const fr_tensor *tt = fr_model_tensor(r->g, r->table_t[t]);
        size_t w = v->tables[t].width;
        for (uint32_t i = 0; i < v->tables[t].count; i++) {
            const char *a = (const char *)(acc + tt->offset + id_at(v, v->tables[t].ids, i) * w);
            for (size_t x = 0; x < w * sizeof *acc; x += 64) __builtin_prefetch(a + x, 1);
        }
    }
    for (uint32_t t = 0; t < v->n_tables; t++) {
        const fr_tensor *tt = fr_model_tensor(r->g, r->table_t[t]);
        size_t w = v->tables[t].width;
        for (uint32_t i = 0; i < v->tables[t].count; i++) {
            size_t row = id_at(v, v->tables[t].ids, i);
            add_values(acc + tt->offset + row * w, v, v->tables[t].values, (size_t)i * w, w);
            if (rw) rw[(size_t)t * r->n_items + row] += v->weight;
        }
    }
    *wsum += v->weight;
    fri_dp_count(&r->dp, lane, v->flags);
    r->loss[pos] = v->loss_sum;
    r->examples[pos] = v->examples;
    r->up[pos] = v->bytes;
    return FR_OK;
}

static fr_err accept_view(fr_round *r, const fri_result_view *v, int lane, uint32_t hint) {
    if (lane < 0 || lane >= r->n_lanes)
        return fri_fail(FR_ERR_INVALID, "RESULT: lane %d, expected 0..%d", lane, r->n_lanes - 1);
    uint64_t *rw = r->roww ? r->roww + (size_t)lane * (r->shape.n_tables ? r->shape.n_tables : 1) * r->n_items : NULL;
    return accept_into(r, v, lane, r->acc + (size_t)lane * r->n_shared, rw, &r->lanes[lane].wsum, hint);
}

fr_err fr_round_submit(fr_round *r, const uint8_t *bytes, size_t n, int lane) {
    fri_result_view v;
    if (bytes && fri_result_is_compressed(bytes, n)) { /* decoded into the lane's scratch, then as in memory */
        if (lane < 0 || lane >= r->n_lanes)
            return fri_fail(FR_ERR_INVALID, "RESULT: lane %d, expected 0..%d", lane, r->n_lanes - 1);
        if (!r->cres[lane]) {
            fr_err e = fr_result_create(&r->cres[lane]);
            if (e) return e;
        }
        fr_err e = fri_result_decompress(r->cres[lane], bytes, n, &r->shape);
        if (e) return e;
        fri_result_view_of(&v, r->cres[lane]);
        if (v.flags != fri_result_compress_flags(&r->cfg))
            return fri_fail(FR_ERR_INVALID, "RESULT of client %u refused: compression flags 0x%x, this federation's are "
                            "0x%x", v.client, v.flags, fri_result_compress_flags(&r->cfg));
        v.flags = 0; /* decoded: the values are as an uncompressed RESULT's */
        v.bytes = n;
        return accept_view(r, &v, lane, UINT32_MAX);
    }
    fr_err e = fri_result_view_bytes(&v, bytes, n, &r->shape); /* checked whole, read in place */
    return e ? e : accept_view(r, &v, lane, UINT32_MAX);
}

fr_err fr_round_accept(fr_round *r, const fr_result *res, int lane) { return fri_round_accept_at(r, res, lane, UINT32_MAX); }

fr_err fri_round_accept_at(fr_round *r, const fr_result *res, int lane, uint32_t hint) {
    fri_result_view v;
    fri_result_view_of(&v, res);
    if (r->open && res->round == r->completed + 1 && res->config_crc == r->config_crc) {
        fr_err e = check_shape(r, res);
        if (e) return e;
    }
    return accept_view(r, &v, lane, hint);
}

bool fri_round_takes_updates(const fr_round *r) { return !r->dp.on && !r->kept; }

void fri_round_prefetch_rows(const fr_round *r, int lane, const uint32_t *items, size_t n) {
    if (lane < 0 || lane >= r->n_lanes) return;
    const int64_t *acc = r->acc + (size_t)lane * r->n_shared;
    for (uint32_t t = 0; t < r->shape.n_tables; t++) {
        const fr_tensor *tt = fr_model_tensor(r->g, r->table_t[t]);
        size_t w = r->widths[t];
        for (size_t i = 0; i < n; i++) {
            if (items[i] >= r->n_items) continue;
            const char *a = (const char *)(acc + tt->offset + (size_t)items[i] * w);
            for (size_t x = 0; x < w * sizeof *acc; x += 64) __builtin_prefetch(a + x, 1, 2);
        }
    }
}

fr_err fri_round_accept_update(fr_round *r, const fr_update *u, uint64_t bound, uint32_t config_crc,
                               uint64_t examples, double loss_sum, int lane, uint32_t hint) {
    if (!fri_round_takes_updates(r))
        return fri_fail(FR_ERR_UNSUPPORTED, "RESULT of client %u: this round takes results (DP, or kept whole)",
                        u->client);
    if (lane < 0 || lane >= r->n_lanes)
        return fri_fail(FR_ERR_INVALID, "RESULT: lane %d, expected 0..%d", lane, r->n_lanes - 1);
    /* the client's own check first, as fr_result_quantize makes it: every value finite and
     * within the bound once quantized (with fri_update_check's margin the integers are then
     * at most r->bound, which accept_into checks again) */
    if (bound != r->bound)
        return fri_fail(FR_ERR_INVALID, "RESULT of client %u: checked against a bound of %llu units, round %u's is %llu",
                        u->client, (unsigned long long)bound, r->completed + 1, (unsigned long long)r->bound);
    fr_err e = fri_update_check(u, &r->cfg, bound);
    if (e) return e;
    int64_t pos;
    if ((e = admit_head(r, u->client, u->round, config_crc, hint, &pos))) return e;
    /* the shape (check_shape's, on the update) */
    const fr_update_shape *sh = &r->shape;
    if (u->dense_len != sh->dense_len || u->n_tables != sh->n_tables)
        return fri_fail(FR_ERR_INVALID, "RESULT of client %u: dense %u and %u tables, expected %u and %u", u->client,
                        u->dense_len, u->n_tables, sh->dense_len, sh->n_tables);
    for (uint32_t t = 0; t < u->n_tables; t++) {
        const fr_update_table *tb = &u->tables[t];
        if (tb->width != sh->widths[t])
            return fri_fail(FR_ERR_INVALID, "RESULT of client %u: table %u width %u, expected %u", u->client, t,
                            tb->width, sh->widths[t]);
        for (uint32_t i = 0; i < tb->count; i++) {
            if (tb->ids[i] >= sh->n_rows[t])
                return fri_fail(FR_ERR_INVALID, "RESULT of client %u: row %u out of range, table has %u", u->client,
                                tb->ids[i], sh->n_rows[t]);
            if (i && tb->ids[i] <= tb->ids[i - 1])
                return fri_fail(FR_ERR_INVALID, "RESULT of client %u: table %u: row %u follows %u, expected increasing",
                                u->client, t, tb->ids[i], tb->ids[i - 1]);
        }
    }
    if ((e = admit_slot(r, u->client, pos, lane))) return e;
    int64_t *acc = r->acc + (size_t)lane * r->n_shared;
    uint64_t *rw = r->roww ? r->roww + (size_t)lane * (r->shape.n_tables ? r->shape.n_tables : 1) * r->n_items : NULL;
    double wn = (double)u->weight, wi = r->cfg.item_sum ? 1.0 : wn; /* as fr_result_quantize */
    size_t at = 0;
    for (int i = 0; i < r->n_dense; i++) {
        const fr_tensor *tt = fr_model_tensor(r->g, r->dense_t[i]);
        size_t len = (size_t)tt->rows * tt->cols;
        fri_fl_add_fixed(acc + tt->offset, u->dense + at, len, wn, true);
        at += len;
    }
    for (uint32_t t = 0; t < u->n_tables; t++) {
        const fr_tensor *tt = fr_model_tensor(r->g, r->table_t[t]);
        const fr_update_table *tb = &u->tables[t];
        fri_fl_add_fixed_rows(acc + tt->offset, tb->ids, tb->values, tb->count, tb->width, wi);
        for (uint32_t i = 0; rw && i < tb->count; i++) rw[(size_t)t * r->n_items + tb->ids[i]] += u->weight;
    }
    r->lanes[lane].wsum += u->weight;
    r->loss[pos] = loss_sum;
    r->examples[pos] = examples;
    r->up[pos] = fri_result_update_size(u);
    return FR_OK;
}

uint32_t fr_round_results(const fr_round *r) { return r->open ? n_accepted(r) : 0; }

/* The strategy's step on parameter p with averaged delta d. */
static inline void apply(fr_round *r, float *w, size_t p, double d) {
    const fr_fl_config *c = &r->cfg;
    double lr = c->server_lr;
    switch (c->strategy) {
    case FR_STRATEGY_FEDAVG:
    case FR_STRATEGY_FEDPROX:
        w[p] = (float)((double)w[p] + lr * d);
        break;
    case FR_STRATEGY_FEDAVGM: {
        double m = (double)c->server_momentum * r->m[p] + d;
        r->m[p] = (float)m;
        w[p] = (float)((double)w[p] + lr * m);
        break;
    }
    default: {
        double m = (double)c->beta1 * r->m[p] + (1.0 - c->beta1) * d;
        double v = r->v[p], d2 = d * d;
        if (c->strategy == FR_STRATEGY_FEDADAM) v = (double)c->beta2 * v + (1.0 - c->beta2) * d2;
        else if (c->strategy == FR_STRATEGY_FEDYOGI) v = v - (1.0 - c->beta2) * d2 * (v - d2 > 0 ? 1 : v - d2 < 0 ? -1 : 0);
        else v = v + d2;
        r->m[p] = (float)m;
        r->v[p] = (float)v;
        w[p] = (float)((double)w[p] + lr * m / (sqrt(v) + c->tau));
        break;
    }
    }
}

/* A fixed-point value times a factor in (0, 1], rounded half away from zero (1: itself). */
static inline int64_t scaled(int64_t v, double f) {
    if (f == 1.0) return v;
    double x = (double)v * f;
    return (int64_t)(x + copysign(0.5, x));
}
static inline void add_scaled(int64_t *acc, int64_t v, double f) { /* modulo 2^64, as the lanes */
    *acc = (int64_t)((uint64_t)*acc + (uint64_t)scaled(v, f));
}

/* Sums the lanes and applies the strategy to the global model. */
static void aggregate(fr_round *r) {
    uint64_t wsum = 0;
    for (int k = 0; k < r->n_lanes; k++) wsum += r->lanes[k].wsum;
    /* DP divides by the expected number of clients, never by who came */
    double W = r->dp.on ? r->dp.expected : (double)wsum;
    if (W == 0) return;
    float *w = fr_model_params(r->g);
    size_t nl = (size_t)r->n_lanes, ns = r->n_shared;
    size_t tstride = (r->shape.n_tables ? r->shape.n_tables : 1) * (size_t)r->n_items;
    for (int t = 0; t < fr_model_n_tensors(r->g); t++) {
        const fr_tensor *tt = fr_model_tensor(r->g, t);
        if (tt->kind == FR_TENSOR_USER_TABLE) continue;
        int ti = -1;
        for (uint32_t i = 0; i < r->shape.n_tables; i++) if (r->table_t[i] == t) ti = (int)i;
        for (size_t row = 0; row < tt->rows; row++) {
            double denom = W;
            if (ti >= 0 && r->cfg.item_sum) denom = 1.0;
            if (ti >= 0 && r->cfg.row_norm) {
                uint64_t rw = 0;
                for (size_t k = 0; k < nl; k++) rw += r->roww[k * tstride + (size_t)ti * r->n_items + row];
                denom = rw ? (double)rw : 0;
            }
            for (size_t c = 0; c < tt->cols; c++) {
                size_t p = tt->offset + row * tt->cols + c;
                uint64_t sum = 0; /* modulo 2^64, then read as two's complement */
                for (size_t k = 0; k < nl; k++) sum += (uint64_t)r->acc[k * ns + p];
                double d = denom > 0 ? (double)(int64_t)sum / FR_FL_FIXED_SCALE / denom : 0.0;
                apply(r, w, p, d);
            }
        }
    }
}

/* A robust aggregator's round (robust.c): the kept results of weight > 0 in client-id
 * order; a location rule's delta applied to every shared value, or a factor per result
 * with which the results enter FedAvg's integer sums (factor 1: the value as sent, so
 * selecting every result is FedAvg bit for bit). */
static fr_err aggregate_robust(fr_round *r) {
    const fri_kept **kept = fri_malloc(((size_t)r->k + 1) * sizeof *kept);
    if (!kept) return FR_ERR_NOMEM;
    uint32_t n = 0;
    for (uint32_t i = 0; i < r->k; i++)
        if ((atomic_load(&r->status[i]) & DONE) && r->kept[i].weight > 0) kept[n++] = &r->kept[i];
    fri_robust_round rr = {&r->cfg, kept, n, r->shape.dense_len, r->shape.n_tables, r->n_items, r->widths, r->dp.pool};
    fr_err e = FR_OK;
    uint32_t a = r->cfg.aggregator;
    if (a == FR_AGG_MEDIAN || a == FR_AGG_TRIMMED || a == FR_AGG_ROWTRIM || a == FR_AGG_ROWGUARD) {
        double *d = n ? fri_malloc((fri_robust_len(&rr) + 1) * sizeof *d) : NULL;
        if (n && !d) e = FR_ERR_NOMEM;
        if (!e && n) e = fri_robust_location(&rr, d);
        if (!e && n) {
            float *w = fr_model_params(r->g);
            size_t at = 0;
            for (int i = 0; i < r->n_dense; i++) {
                const fr_tensor *tt = fr_model_tensor(r->g, r->dense_t[i]);
                for (size_t j = 0; j < (size_t)tt->rows * tt->cols; j++) apply(r, w, tt->offset + j, d[at++]);
            }
            for (uint32_t t = 0; t < r->shape.n_tables; t++) {
                const fr_tensor *tt = fr_model_tensor(r->g, r->table_t[t]);
                for (size_t j = 0; j < (size_t)tt->rows * tt->cols; j++) apply(r, w, tt->offset + j, d[at++]);
            }
        }
        fri_free(d);
    } else {
        double *f = fri_malloc(((size_t)n + 1) * sizeof *f);
        if (!f) e = FR_ERR_NOMEM;
        if (!e) e = fri_robust_factors(&rr, f);
        if (!e) { /* FedAvg's sums over the scaled results, in lane 0 */
            zero_accumulators(r);
            for (uint32_t k = 0; k < n; k++) {
                if (f[k] == 0) continue;
                const fri_kept *kp = kept[k];
                double fk = f[k];
                size_t at = 0;
                for (int i = 0; i < r->n_dense; i++) {
                    const fr_tensor *tt = fr_model_tensor(r->g, r->dense_t[i]);
                    for (size_t j = 0; j < (size_t)tt->rows * tt->cols; j++) add_scaled(&r->acc[tt->offset + j], kp->dense[at++], fk);
                }
                for (uint32_t t = 0; t < r->shape.n_tables; t++) {
                    const fr_tensor *tt = fr_model_tensor(r->g, r->table_t[t]);
                    size_t wd = tt->cols;
                    for (uint32_t i = 0; i < kp->count[t]; i++) {
                        size_t row = kp->ids[t][i];
                        for (size_t c = 0; c < wd; c++)
                            add_scaled(&r->acc[tt->offset + row * wd + c], kp->vals[t][(size_t)i * wd + c], fk);
                        if (r->roww) r->roww[(size_t)t * r->n_items + row] += kp->weight;
                    }
                }
                r->lanes[0].wsum += kp->weight;
            }
            aggregate(r);
        }
        fri_free(f);
    }
    fri_free(kept);
    return e;
}

fr_err fr_round_end(fr_round *r, fr_round_stats *st) {
    fr_round_stats s = {0};
    if (st) *st = s;
    if (!r->open) return fri_fail(FR_ERR_STATE, "no round is open to end");
    uint32_t round = r->completed + 1;
    double loss = 0;
    uint32_t sent = 0, sent_rows = 0;
    for (uint32_t i = 0; i < r->k; i++) {
        unsigned char b = atomic_load(&r->status[i]);
        sent += (b & SENT) != 0;
        sent_rows += (b & ROWS) != 0;
        if (!(b & DONE)) continue;
        s.clients++;
        loss += r->loss[i];
        s.examples += r->examples[i];
        s.bytes_up += r->up[i];
    }
    s.round = round;
    s.sampled = r->k;
    s.loss = s.examples ? loss / (double)s.examples : NAN;
    /* the TASKs given (a rows TASK where one was) and the rows blocks asked for */
    s.bytes_down = (uint64_t)(sent - sent_rows) * r->task.len + (uint64_t)sent_rows * r->task_rows.len +
                   atomic_load(&r->rows_down);
    r->open = false;
    if (st) *st = s;
    if (s.clients < r->cfg.min_results)
        return fri_fail(FR_ERR_EMPTY, "round %u: %u result%s of %u sampled client%s, the quorum is %u: nothing applied",
                        round, s.clients, fri_s(s.clients), r->k, fri_s(r->k), r->cfg.min_results);
    if (r->dp.on) { /* the sum is released with noise on every coordinate, even with no client */
        for (int k = 1; k < r->n_lanes; k++) { /* lanes folded into lane 0 (integers: the same sum) */
            fri_fl_add_ints(r->acc, r->acc + (size_t)k * r->n_shared, r->n_shared);
            memset(r->acc + (size_t)k * r->n_shared, 0, r->n_shared * sizeof *r->acc);
        }
        fr_err e = fri_dp_end(&r->dp, &r->cfg, round, r->acc, r->n_shared, s.clients, &s);
        if (st) *st = s;
        if (e) return fri_fail_prefix(e, "round %u: DP noise", round);
        aggregate(r);
    } else if (s.clients && r->kept && !r->secure_sum) {
        fr_err e = aggregate_robust(r);
        if (e) return fri_fail_prefix(e, "round %u: aggregator", round);
    } else if (s.clients) {
        aggregate(r);
    }
    r->completed = round;
    return FR_OK;
}

void fr_round_abort(fr_round *r) { r->open = false; }

fr_err fr_round_merge(fr_round *dst, const fr_round *src) {
    if (!dst->open || !src->open)
        return fri_fail(FR_ERR_STATE, "merge: both controllers need an open round");
    if (dst->kept || src->kept)
        return fri_fail(FR_ERR_INVALID, "merge: a robust aggregator keeps each result in its own controller; run one "
                        "controller with lanes instead");
    if (dst->config_crc != src->config_crc || dst->completed != src->completed || dst->k != src->k ||
        dst->target != src->target || dst->n_shared != src->n_shared || dst->n_clients != src->n_clients)
        return fri_fail(FR_ERR_INVALID, "merge: another federation or round (round %u vs %u, config 0x%08x vs 0x%08x)",
                        dst->completed + 1, src->completed + 1, dst->config_crc, src->config_crc);
    for (uint32_t i = 0; i < src->k; i++) {
        if (dst->ids[i] != src->ids[i])
            return fri_fail(FR_ERR_INVALID, "merge: the rounds sampled different clients");
        if ((atomic_load(&dst->status[i]) & DONE) && (atomic_load(&((fr_round *)src)->status[i]) & DONE))
            return fri_fail(FR_ERR_INVALID, "merge: client %u answered in both controllers", src->ids[i]);
    }
    unsigned na = n_accepted(dst), nb = n_accepted(src);
    if (na + nb > dst->target)
        return fri_fail(FR_ERR_STATE, "merge: %u + %u results, but round %u takes %u (the rest are late)", na, nb,
                        dst->completed + 1, dst->target);
    for (int k = 0; k < src->n_lanes; k++) {
        fri_fl_add_ints(dst->acc, src->acc + (size_t)k * src->n_shared, dst->n_shared);
        if (dst->roww && src->roww) {
            size_t n = (dst->shape.n_tables ? dst->shape.n_tables : 1) * (size_t)dst->n_items;
            for (size_t i = 0; i < n; i++) dst->roww[i] += src->roww[(size_t)k * n + i];
        }
        dst->lanes[0].wsum += src->lanes[k].wsum;
        if (dst->dp.on && src->dp.on) dst->dp.unclipped[0] += src->dp.unclipped[k];
    }
    for (uint32_t i = 0; i < src->k; i++) {
        unsigned char b = atomic_load(&((fr_round *)src)->status[i]);
        if (b & DONE) {
            dst->loss[i] = src->loss[i];
            dst->examples[i] = src->examples[i];
            dst->up[i] = src->up[i];
        }
        atomic_fetch_or(&dst->status[i], b);
    }
    atomic_fetch_add(&dst->accepted, nb);
    return FR_OK;
}

/* ------------------------------------------------------------------ state */

/* Layout (little-endian), version 1:
 *   "FRROUND\0" | u32 version | u32 config CRC | u32 config length C | config block[C]
 *   | u32 clients | u32 rounds completed | u64 shared parameters P | u32 has m | u32 has v
 *   | f64 the next round's clip, in a DP federation only (the config says)
 *   | f32 m[P] if has m | f32 v[P] if has v | f32 shared[P] | u32 CRC-32C of all before */
#define STATE_MAGIC "FRROUND\0"
#define STATE_VERSION 1

fr_err fr_round_save(const fr_round *r, uint8_t **bytes, size_t *n) {
    *bytes = NULL;
    *n = 0;
    if (r->open) return fri_fail(FR_ERR_STATE, "saving the server state: round %u is open", r->completed + 1);
    fri_buf b = {0};
    fri_buf_put(&b, STATE_MAGIC, 8);
    fri_buf_u32(&b, STATE_VERSION);
    fri_buf_u32(&b, r->config_crc);
    fri_buf_u32(&b, (uint32_t)r->config_n);
    fri_buf_put(&b, r->config, r->config_n);
    fri_buf_u32(&b, r->n_clients);
    fri_buf_u32(&b, r->completed);
    fri_buf_u64(&b, r->n_shared);
    fri_buf_u32(&b, r->m ? 1 : 0);
    fri_buf_u32(&b, r->v ? 1 : 0);
    if (r->dp.on) {
        uint8_t c8[8];
        fri_put_f64(c8, r->dp.clip);
        fri_buf_put(&b, c8, 8);
    }
    for (size_t i = 0; r->m && i < r->n_shared; i++) fri_buf_f32(&b, r->m[i]);
    for (size_t i = 0; r->v && i < r->n_shared; i++) fri_buf_f32(&b, r->v[i]);
    const float *w = fr_model_params_const(r->g);
    for (size_t i = 0; i < r->n_shared; i++) fri_buf_f32(&b, w[i]);
    if (!b.err) fri_buf_u32(&b, fr_crc32c(0, b.data, b.len));
    if (b.err) { fri_buf_free(&b); return FR_ERR_NOMEM; }
    *bytes = b.data;
    *n = b.len;
    return FR_OK;
}

/* The names of the settings in which a stored config differs from r's, for messages. */
static void differing(char *buf, size_t cap, const fr_model_config *mc, const fr_fl_config *fc, const fr_round *r) {
    const fr_fl_config *c = &r->cfg;
    size_t at = 0;
    buf[0] = 0;
#define DIFF(cond, name) \
    do { if ((cond) && at < cap) at += (size_t)snprintf(buf + at, cap - at, "%s%s", at ? ", " : "", name); } while (0)
    DIFF(memcmp(mc, &r->mcfg, sizeof *mc) != 0, "the model config");
    DIFF(fc->seed != c->seed, "seed");
    DIFF(fc->strategy != c->strategy, "strategy");
    DIFF(fc->server_lr != c->server_lr || fc->server_momentum != c->server_momentum || fc->beta1 != c->beta1 ||
             fc->beta2 != c->beta2 || fc->tau != c->tau,
         "the server optimizer");
    DIFF(fc->mu != c->mu, "mu");
    DIFF(fc->row_norm != c->row_norm || fc->item_sum != c->item_sum, "item aggregation");
    DIFF(fc->keep_private_optim != c->keep_private_optim, "keep_private_optim");
    DIFF(fc->dense_steps != c->dense_steps, "dense_steps");
    DIFF(fc->local_epochs != c->local_epochs || fc->batch != c->batch || fc->negatives != c->negatives,
         "local epochs, batch or negatives");
    DIFF(fc->seq_stride != c->seq_stride, "seq_stride");
    DIFF(memcmp(&fc->local, &c->local, sizeof fc->local) != 0, "the local optimizer");
    DIFF(memcmp(&fc->item_local, &c->item_local, sizeof fc->item_local) != 0 || fc->item_lr_decay != c->item_lr_decay,
         "the item optimizer");
    DIFF(fc->clients_per_round != c->clients_per_round || fc->availability != c->availability ||
             fc->min_results != c->min_results,
         "client sampling");
    DIFF(fc->dp_clip != c->dp_clip || fc->dp_noise != c->dp_noise || fc->dp_quantile != c->dp_quantile ||
             fc->dp_clip_lr != c->dp_clip_lr || fc->dp_count_noise != c->dp_count_noise ||
             fc->dp_delta != c->dp_delta || fc->ldp_noise != c->ldp_noise || fc->dp_seeded_noise != c->dp_seeded_noise,
         "differential privacy");
    DIFF(fc->decoys != c->decoys || fc->decoy_zero != c->decoy_zero, "decoys");
    DIFF(fc->compress_up != c->compress_up || fc->compress_topk != c->compress_topk ||
             fc->compress_down != c->compress_down,
         "compression");
    DIFF(fc->aggregator != c->aggregator || fc->agg_beta != c->agg_beta || fc->agg_clip != c->agg_clip ||
             fc->agg_f != c->agg_f || fc->agg_m != c->agg_m,
         "aggregator");
#undef DIFF
    if (!at) snprintf(buf, cap, "nothing (another fedrec version?)");
}

fr_err fr_round_load(fr_round *r, const uint8_t *bytes, size_t n, const char *name) {
    if (!name) name = "<memory>";
    if (r->open) return fri_fail(FR_ERR_STATE, "%s: loading the server state: round %u is open", name, r->completed + 1);
    if (n < 8 + 4 || memcmp(bytes, STATE_MAGIC, 8) != 0)
        return fri_fail(FR_ERR_FORMAT, "%s: not a fedrec server state (bad magic or %zu bytes)", name, n);
    if (fri_get_u32(bytes + n - 4) != fr_crc32c(0, bytes, n - 4))
        return fri_fail(FR_ERR_CHECKSUM, "%s: server state is damaged (CRC-32C mismatch)", name);
    fri_rd rd;
    fri_rd_init(&rd, bytes, n - 4, name, "server state");
    rd.at = 8;
    uint32_t ver, crc, cn, nc, done, has_m, has_v;
    uint64_t ns;
    const uint8_t *cb;
    fr_err e;
    if ((e = fri_rd_u32(&rd, &ver, "version"))) return e;
    if (ver != STATE_VERSION)
        return fri_fail(FR_ERR_VERSION, "%s: server state version %u, this build reads version %d", name, ver,
                        STATE_VERSION);
    if ((e = fri_rd_u32(&rd, &crc, "config CRC")) || (e = fri_rd_u32(&rd, &cn, "config length")) ||
        (e = fri_rd_bytes(&rd, &cb, cn, "config block")))
        return e;
    if (fr_crc32c(0, cb, cn) != crc) return fri_fail(FR_ERR_FORMAT, "%s: the config block's CRC does not match", name);
    if (crc != r->config_crc) {
        fri_rd cr;
        fri_rd_init(&cr, cb, cn, name, "config block");
        fr_model_config mc;
        fr_fl_config fc;
        if ((e = fri_fl_config_block_get(&cr, &mc, &fc))) return e;
        fr_model sized;
        memset(&sized, 0, sizeof sized);
        size_t their = fri_model_layout(&sized, &mc) == FR_OK ? sized.n_shared : 0;
        char diff[256];
        differing(diff, sizeof diff, &mc, &fc, r);
        return fri_fail(FR_ERR_INVALID,
                        "%s: the state of another run (seed %llu, strategy %s, %s, %zu shared parameters; this run: "
                        "seed %llu, strategy %s, %s, %zu; differing: %s)",
                        name, (unsigned long long)fc.seed, fr_strategy_name(fc.strategy), fr_model_kind_name(mc.kind),
                        their, (unsigned long long)r->cfg.seed, fr_strategy_name(r->cfg.strategy),
                        fr_model_kind_name(r->mcfg.kind), r->n_shared, diff);
    }
    if ((e = fri_rd_u32(&rd, &nc, "client count")) || (e = fri_rd_u32(&rd, &done, "rounds")) ||
        (e = fri_rd_u64(&rd, &ns, "parameter count")) || (e = fri_rd_u32(&rd, &has_m, "moment flag")) ||
        (e = fri_rd_u32(&rd, &has_v, "moment flag")))
        return e;
    if (nc != r->n_clients)
        return fri_fail(FR_ERR_INVALID, "%s: the state of a federation of %u clients, this one has %u", name, nc,
                        r->n_clients);
    if (ns != r->n_shared || has_m > 1 || has_v > 1 || (has_m != 0) != (r->m != NULL) || (has_v != 0) != (r->v != NULL))
        return fri_fail(FR_ERR_FORMAT, "%s: %llu parameters and moments %u/%u do not match the config", name,
                        (unsigned long long)ns, has_m, has_v);
    double clip = 0;
    if (r->dp.on) {
        if ((e = fri_rd_f64(&rd, &clip, "DP clip"))) return e;
        if (!(clip > 0 && clip <= 65536))
            return fri_fail(FR_ERR_FORMAT, "%s: DP clip %g, expected (0, 65536]", name, clip);
    }
    uint64_t arrays = 1 + (uint64_t)has_m + has_v;
    if ((e = fri_rd_need_n(&rd, arrays * ns, 4, "parameters"))) return e;
    if (rd.n - rd.at != arrays * ns * 4)
        return fri_fail(FR_ERR_FORMAT, "%s: %zu unexpected bytes after the parameters", name,
                        (size_t)(rd.n - rd.at - arrays * ns * 4));
    const uint8_t *p = rd.p + rd.at;
    for (size_t i = 0; has_m && i < ns; i++) r->m[i] = fri_get_f32(p + 4 * i);
    p += has_m ? 4 * ns : 0;
    for (size_t i = 0; has_v && i < ns; i++) r->v[i] = fri_get_f32(p + 4 * i);
    p += has_v ? 4 * ns : 0;
    float *w = fr_model_params(r->g);
    for (size_t i = 0; i < ns; i++) w[i] = fri_get_f32(p + 4 * i);
    r->completed = done;
    if (r->dp.on) r->dp.clip = clip;
    return FR_OK;
}

/* ------------------------------------------------------------------ secure aggregation */
/* Under secure aggregation the controller never sees a client's sums, only their total:
 * each result is turned into a dense vector of the round's sums (what accept_view would
 * add to a lane), the vectors are masked and summed by the privacy layer, and the
 * unmasked total is added to lane 0. Integer sums modulo 2^64 in any grouping: the same
 * model, bit for bit, as the plain round over the same results. */

size_t fri_round_dense_len(const fr_round *r) {
    size_t rows = r->roww ? (size_t)(r->shape.n_tables ? r->shape.n_tables : 1) * r->n_items : 0;
    return r->n_shared + rows + 1;
}

fr_err fri_round_accept_dense(fr_round *r, const fr_result *res, uint64_t bytes, int lane, int64_t *out) {
    if (lane < 0 || lane >= r->n_lanes)
        return fri_fail(FR_ERR_INVALID, "RESULT: lane %d, expected 0..%d", lane, r->n_lanes - 1);
    if (r->kept && !(r->cfg.aggregator == FR_AGG_NORMCLIP && r->cfg.agg_clip > 0)) {
        char name[64];
        fr_aggregator_format(&r->cfg, name, sizeof name);
        return fri_fail(FR_ERR_INVALID, "RESULT under secure aggregation: aggregator %s needs each client's update, and "
                        "the server sees only their sum (use fedavg, or normclip:C: the clients clip themselves)", name);
    }
    size_t len = fri_round_dense_len(r);
    memset(out, 0, len * sizeof *out);
    if (r->open && res->round == r->completed + 1 && res->config_crc == r->config_crc) {
        fr_err e = check_shape(r, res);
        if (e) return e;
    }
    fri_result_view v;
    fri_result_view_of(&v, res);
    uint64_t *rw = r->roww ? (uint64_t *)(out + r->n_shared) : NULL, wsum = 0;
    fr_err e = accept_into(r, &v, lane, out, rw, &wsum, UINT32_MAX);
    if (e) return e;
    out[len - 1] = (int64_t)wsum;
    r->up[position(r, res->client)] = bytes;
    return FR_OK;
}

fr_err fri_round_add_dense_sum(fr_round *r, const int64_t *sum) {
    if (!r->open) return fri_fail(FR_ERR_STATE, "a secure sum: no round is open");
    size_t len = fri_round_dense_len(r), rows = len - 1 - r->n_shared;
    for (size_t i = 0; i < r->n_shared; i++) r->acc[i] = (int64_t)((uint64_t)r->acc[i] + (uint64_t)sum[i]);
    for (size_t i = 0; i < rows; i++) r->roww[i] += (uint64_t)sum[r->n_shared + i];
    r->lanes[0].wsum += (uint64_t)sum[len - 1];
    r->secure_sum = true; /* normclip:C: the clients clipped themselves; FedAvg's rule on the sum */
    return FR_OK;
}

/* ------------------------------------------------------------------ across processes */
/* A runtime whose clients run in several processes (MPI ranks), each with its own
 * controller of the same federation, meets their sums here: each folds its lanes into
 * lane 0 and hands out the round's sums as plain arrays; the runtime reduces them across
 * processes (integer sums modulo 2^64, bitwise OR of the status bits) and writes them
 * back; then every controller's end sees what one controller that took every result
 * would have seen. */

fr_err fri_round_fold(fr_round *r, fri_round_sums *s) {
    memset(s, 0, sizeof *s);
    if (!r->open) return fri_fail(FR_ERR_STATE, "folding a round's sums: no round is open");
    if (r->dp.on)
        return fri_fail(FR_ERR_UNSUPPORTED, "differential privacy across processes: its noise and clip counts are "
                        "summed by one controller (run it on the sim runtime)");
    size_t nl = (size_t)r->n_lanes, ns = r->n_shared;
    size_t nrw = r->roww ? (size_t)(r->shape.n_tables ? r->shape.n_tables : 1) * r->n_items : 0;
    for (size_t k = 1; k < nl; k++) {
        fri_fl_add_ints(r->acc, r->acc + k * ns, ns);
        memset(r->acc + k * ns, 0, ns * sizeof *r->acc);
        for (size_t i = 0; i < nrw; i++) { r->roww[i] += r->roww[k * nrw + i]; r->roww[k * nrw + i] = 0; }
        r->lanes[0].wsum += r->lanes[k].wsum;
        r->lanes[k].wsum = 0;
    }
    for (uint32_t i = 0; i < r->k; i++) /* what a position without a result holds is stale: 0 for the sums */
        if (!(atomic_load(&r->status[i]) & DONE)) { r->loss[i] = 0; r->examples[i] = 0; r->up[i] = 0; }
    s->acc = r->acc;
    s->n_shared = ns;
    s->roww = r->roww;
    s->n_roww = nrw;
    s->wsum = &r->lanes[0].wsum;
    s->k = r->k;
    s->loss = r->loss;
    s->examples = r->examples;
    s->up = r->up;
    return FR_OK;
}

void fri_round_status_get(const fr_round *r, uint8_t *out) {
    for (uint32_t i = 0; i < r->k; i++) out[i] = atomic_load(&((fr_round *)r)->status[i]);
}

fr_err fri_round_status_set(fr_round *r, const uint8_t *in) {
    unsigned n = 0;
    for (uint32_t i = 0; i < r->k; i++) n += (in[i] & DONE) != 0;
    if (n > r->target)
        return fri_fail(FR_ERR_STATE, "round %u: %u results across processes, the round takes %u", r->completed + 1, n,
                        r->target);
    for (uint32_t i = 0; i < r->k; i++) atomic_store(&r->status[i], in[i]);
    atomic_store(&r->accepted, n);
    for (int l = 0; l < r->n_lanes; l++) atomic_store(&r->lanes[l].accepted, 0);
    return FR_OK;
}
