/* The server side of a round: federation config, client sampling, the fixed-point
 * accumulation of updates and the strategies (FedAvg, FedAvgM, FedProx, FedAdam, FedYogi,
 * FedAdagrad). Transport-agnostic: a runtime hands it decoded updates.
 *
 * Invariants:
 *   - Order independence: each worker adds n_k * Δ_k, rounded to 64-bit fixed point
 *     (units of 2^-32), into its own accumulator; the round sums the accumulators as
 *     integers (associative), then divides by the weights in double. So the new model is
 *     bit-identical for any thread count, arrival order or assignment of clients to
 *     workers. Values beyond +-4.6e18 units saturate; NaN counts as the lower bound.
 *   - Only the shared prefix of the slab is ever touched: updates carry no private rows.
 *   - A row no client touched has Δ = 0 (FedAvg); with row_norm, a touched row is
 *     averaged over the clients that touched it; with item_sum, item rows take the plain
 *     sum of the deltas (each client's Δ with weight 1), not their mean. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/core.h"
#include "fedrec/fl.h"
#include "fl/fl_internal.h"

static const char *const strategy_names[] = {NULL, "fedavg", "fedavgm", "fedprox", "fedadam", "fedyogi",
                                              "fedadagrad"};

const char *fr_strategy_name(fr_strategy s) {
    return s >= FR_STRATEGY_FEDAVG && s <= FR_STRATEGY_FEDADAGRAD ? strategy_names[s] : "?";
}

fr_err fr_strategy_parse(const char *name, fr_strategy *out) {
    for (int i = FR_STRATEGY_FEDAVG; i <= FR_STRATEGY_FEDADAGRAD; i++)
        if (name && strcmp(name, strategy_names[i]) == 0) { *out = (fr_strategy)i; return FR_OK; }
    return fri_fail(FR_ERR_INVALID,
                    "unknown strategy '%s': expected fedavg, fedavgm, fedprox, fedadam, fedyogi or fedadagrad",
                    name ? name : "(null)");
}

static bool adaptive(fr_strategy s) {
    return s == FR_STRATEGY_FEDADAM || s == FR_STRATEGY_FEDYOGI || s == FR_STRATEGY_FEDADAGRAD;
}

void fr_fl_config_default(fr_fl_config *c, fr_model_kind kind) {
    memset(c, 0, sizeof *c);
    c->strategy = FR_STRATEGY_FEDAVG;
    c->server_lr = 1.0f;
    c->server_momentum = 0.9f;
    c->beta1 = 0.9f;
    c->beta2 = 0.99f;
    c->tau = 1e-3f;
    c->mu = 0.01f;
    c->item_lr_decay = 1.0f;
    c->local_epochs = 1;
    c->batch = 32;
    /* by what the kind is, not which: ratings need no negatives; a pairwise loss one per
     * positive; a pointwise ranking loss the NCF paper's 4 */
    fr_model_config mc;
    fr_model_config_default(&mc, kind);
    bool expl = fr_model_kind_is_explicit(kind);
    c->negatives = expl ? 0 : mc.loss == FR_LOSS_BPR ? 1 : 4;
    if (expl) {
        fr_optim_config_default(&c->local, FR_OPTIM_SGD);
        c->local.lr = 0.1f;
    } else {
        fr_optim_config_default(&c->local, FR_OPTIM_ADAM);
        c->local.lr = 0.001f;
    }
    c->clients_per_round = 0;
    c->availability = 1.0;
    c->seed = 1;
}

fr_err fr_fl_config_check(const fr_fl_config *c) {
    if (!c) return fri_fail(FR_ERR_INVALID, "federation config is NULL");
    if (c->strategy < FR_STRATEGY_FEDAVG || c->strategy > FR_STRATEGY_FEDADAGRAD)
        return fri_fail(FR_ERR_INVALID, "strategy %d unknown", (int)c->strategy);
    if (c->item_sum && c->row_norm)
        return fri_fail(FR_ERR_INVALID, "item_sum and row_norm both set: choose one way to aggregate item rows");
    if (!(c->server_lr > 0) || !isfinite(c->server_lr))
        return fri_fail(FR_ERR_INVALID, "server lr %g: expected a finite value > 0", (double)c->server_lr);
    if (!(c->server_momentum >= 0 && c->server_momentum < 1))
        return fri_fail(FR_ERR_INVALID, "server momentum %g: expected [0, 1)", (double)c->server_momentum);
    if (!(c->beta1 >= 0 && c->beta1 < 1) || !(c->beta2 >= 0 && c->beta2 < 1))
        return fri_fail(FR_ERR_INVALID, "server betas %g, %g: expected [0, 1)", (double)c->beta1, (double)c->beta2);
    if (!(c->tau > 0) || !isfinite(c->tau)) return fri_fail(FR_ERR_INVALID, "tau %g: expected > 0", (double)c->tau);
    if (!(c->mu >= 0) || !isfinite(c->mu)) return fri_fail(FR_ERR_INVALID, "mu %g: expected >= 0", (double)c->mu);
    if (c->local_epochs < 1 || c->local_epochs > FR_FL_MAX_LOCAL_EPOCHS)
        return fri_fail(FR_ERR_INVALID, "local epochs %u: expected 1..%d", c->local_epochs, FR_FL_MAX_LOCAL_EPOCHS);
    if (c->batch < 1 || c->batch > (1u << 24))
        return fri_fail(FR_ERR_INVALID, "batch %u: expected 1..16777216", c->batch);
    if (c->negatives > 1000) return fri_fail(FR_ERR_INVALID, "negatives %u: expected 0..1000", c->negatives);
    if (!(c->clients_per_round >= 0) || !isfinite(c->clients_per_round))
        return fri_fail(FR_ERR_INVALID, "clients per round %g: expected 0 (all), a fraction < 1 or a count",
                        c->clients_per_round);
    if (!(c->availability > 0 && c->availability <= 1))
        return fri_fail(FR_ERR_INVALID, "availability %g: expected (0, 1]", c->availability);
    if (!(c->item_lr_decay > 0 && c->item_lr_decay <= 1))
        return fri_fail(FR_ERR_INVALID, "item lr decay %g: expected (0, 1]", (double)c->item_lr_decay);
    if (c->item_local.kind != 0) {
        fr_err e = fr_optim_config_check(&c->item_local);
        if (e) {
            char msg[256];
            snprintf(msg, sizeof msg, "%s", fr_errmsg()); /* fri_fail writes the same buffer */
            return fri_fail(e, "item optimizer: %s", msg);
        }
    }
    return fr_optim_config_check(&c->local);
}

/* ------------------------------------------------------------------ server */

struct fr_server {
    fr_fl_config cfg;       /* federation settings */
    fr_model *g;            /* global model (n_users 1; its shared prefix is w_t) */
    size_t n_shared;        /* shared floats */
    uint32_t n_items;       /* item rows */
    uint32_t round;         /* rounds completed */
    int n_workers;          /* accumulators */
    int64_t *acc;           /* [n_workers * n_shared] sum n_k * Δ_k in 2^-32 units */
    uint64_t *roww;         /* [n_workers * n_tables * n_items] sum n_k of clients touching a row */
    uint64_t *wsum;         /* [n_workers] sum n_k */
    uint64_t *nacc;         /* [n_workers] updates accepted this round */
    float *m, *v;           /* [n_shared] strategy moments or NULL */
    int table_t[FR_MODEL_MAX_TENSORS];   /* tensor index of item table i */
    int dense_t[FR_MODEL_MAX_TENSORS];   /* tensor index of dense tensor i */
    int n_dense;
    uint32_t widths[FR_MODEL_MAX_TENSORS], nrows[FR_MODEL_MAX_TENSORS];
    fr_update_shape shape;  /* what updates must look like */
};

fr_err fr_server_create(fr_server **out, const fr_model_config *mcfg, const fr_fl_config *cfg, int n_workers) {
    *out = NULL;
    fr_err e = fr_fl_config_check(cfg);
    if (e) return e;
    if (n_workers < 1) return fri_fail(FR_ERR_INVALID, "server: %d workers, expected >= 1", n_workers);
    fr_server *s = fri_calloc(1, sizeof *s);
    if (!s) return FR_ERR_NOMEM;
    s->cfg = *cfg;
    s->n_workers = n_workers;
    fr_model_config c = *mcfg;
    c.n_users = 1;
    e = fr_model_create(&s->g, &c);
    if (e) { fr_server_free(s); return e; }
    s->n_shared = fr_model_n_shared(s->g);
    s->n_items = c.n_items;
    uint32_t dense_len = 0, nt = 0;
    for (int t = 0; t < fr_model_n_tensors(s->g); t++) {
        const fr_tensor *tt = fr_model_tensor(s->g, t);
        if (tt->kind == FR_TENSOR_DENSE) { s->dense_t[s->n_dense++] = t; dense_len += tt->rows * tt->cols; }
        else if (tt->kind == FR_TENSOR_ITEM_TABLE) {
            s->table_t[nt] = t; s->widths[nt] = tt->cols; s->nrows[nt] = tt->rows; nt++;
        }
    }
    s->shape = (fr_update_shape){dense_len, nt, s->widths, s->nrows};
    size_t nw = (size_t)n_workers;
    s->acc = fri_calloc(nw * s->n_shared, sizeof *s->acc);
    s->roww = fri_calloc(nw * (nt ? nt : 1) * (size_t)s->n_items, sizeof *s->roww);
    s->wsum = fri_calloc(nw, sizeof *s->wsum);
    s->nacc = fri_calloc(nw, sizeof *s->nacc);
    bool mom = cfg->strategy == FR_STRATEGY_FEDAVGM || adaptive(cfg->strategy);
    if (mom) s->m = fri_calloc(s->n_shared, sizeof *s->m);
    if (adaptive(cfg->strategy)) s->v = fri_calloc(s->n_shared, sizeof *s->v);
    if (!s->acc || !s->roww || !s->wsum || !s->nacc || (mom && !s->m) || (adaptive(cfg->strategy) && !s->v)) {
        fr_server_free(s);
        return FR_ERR_NOMEM;
    }
    if (s->v && cfg->strategy != FR_STRATEGY_FEDADAGRAD) /* Reddi et al.: v_{-1} = tau^2 */
        for (size_t i = 0; i < s->n_shared; i++) s->v[i] = cfg->tau * cfg->tau;
    *out = s;
    return FR_OK;
}

void fr_server_free(fr_server *s) {
    if (!s) return;
    fr_model_free(s->g);
    fri_free(s->acc);
    fri_free(s->roww);
    fri_free(s->wsum);
    fri_free(s->nacc);
    fri_free(s->m);
    fri_free(s->v);
    fri_free(s);
}

fr_model *fr_server_model(fr_server *s) { return s->g; }
const fr_fl_config *fr_server_config(const fr_server *s) { return &s->cfg; }
uint32_t fr_server_round(const fr_server *s) { return s->round; }
const fr_update_shape *fr_server_shape(const fr_server *s) { return &s->shape; }
void fr_server_set_round(fr_server *s, uint32_t round) { s->round = round; }
void fr_server_state_get(fr_server *s, fr_server_state *st) {
    st->round = s->round;
    st->m = s->m;
    st->v = s->v;
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

fr_err fr_server_sample(const fr_server *s, uint32_t round, uint32_t n_clients, uint32_t *ids, uint32_t *k) {
    *k = 0;
    uint32_t na = 0;
    for (uint32_t c = 0; c < n_clients; c++) {
        if (s->cfg.availability < 1) {
            fr_rng r;
            fr_rng_init(&r, s->cfg.seed, round, c, FR_PURPOSE_AVAIL);
            if (!(fr_rng_double(&r) < s->cfg.availability)) continue;
        }
        ids[na++] = c;
    }
    double cpr = s->cfg.clients_per_round;
    uint32_t want = na;
    if (cpr >= 1) want = cpr < (double)na ? (uint32_t)cpr : na;
    else if (cpr > 0) {
        double f = ceil(cpr * (double)na);
        want = f < 1 ? 1 : f > na ? na : (uint32_t)f;
        if (na == 0) want = 0;
    }
    if (want < na) {
        uint32_t *pick = fri_malloc((size_t)want * sizeof *pick + 1);
        if (!pick) return FR_ERR_NOMEM;
        fr_rng r;
        fr_rng_init(&r, s->cfg.seed, round, 0, FR_PURPOSE_SAMPLE);
        fr_err e = fr_rng_sample(&r, na, want, pick);
        if (e) { fri_free(pick); return e; }
        qsort(pick, want, sizeof *pick, cmp_u32);
        for (uint32_t i = 0; i < want; i++) ids[i] = ids[pick[i]]; /* pick increasing: in place is safe */
        fri_free(pick);
    }
    *k = want;
    return FR_OK;
}

void fr_server_begin_round(fr_server *s) {
    size_t nw = (size_t)s->n_workers;
    memset(s->acc, 0, nw * s->n_shared * sizeof *s->acc);
    memset(s->roww, 0, nw * (s->shape.n_tables ? s->shape.n_tables : 1) * (size_t)s->n_items * sizeof *s->roww);
    memset(s->wsum, 0, nw * sizeof *s->wsum);
    memset(s->nacc, 0, nw * sizeof *s->nacc);
}

/* n_k * Δ in units of 2^-32, rounded half away from zero, saturating (NaN gives the
 * lower bound: fmax returns its non-NaN argument). Branch-free so the loops vectorise. */
static inline int64_t fixed(double x) {
    double v = fmin(fmax(x * FR_FL_FIXED_SCALE, -4.6e18), 4.6e18);
    return (int64_t)(v + copysign(0.5, v));
}

/* The conversion needs AVX-512DQ to vectorise (vcvttpd2qq; AVX2 has no double -> int64),
 * so on x86-64 with gcc or clang a copy doing the same double operations in the same
 * order is chosen at run time: bit-identical to the scalar loop (max(v, lo) returns lo
 * for a NaN v, as fmax does). */
#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define FR_HAVE_AVX512_DISPATCH 1
__attribute__((target("avx512f,avx512dq"))) static size_t add_fixed_avx512(int64_t *restrict acc,
                                                                          const float *restrict val, size_t n,
                                                                          double w) {
    const __m512d vw = _mm512_set1_pd(w), vs = _mm512_set1_pd(FR_FL_FIXED_SCALE), lo = _mm512_set1_pd(-4.6e18),
                  hi = _mm512_set1_pd(4.6e18), half = _mm512_set1_pd(0.5);
    const __m512i sign = _mm512_set1_epi64((long long)0x8000000000000000ull);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m512d x = _mm512_mul_pd(_mm512_mul_pd(vw, _mm512_cvtps_pd(_mm256_loadu_ps(val + i))), vs);
        x = _mm512_min_pd(_mm512_max_pd(x, lo), hi);
        __m512d h = _mm512_castsi512_pd(_mm512_or_si512(_mm512_and_si512(_mm512_castpd_si512(x), sign),
                                                        _mm512_castpd_si512(half)));
        __m512i q = _mm512_cvttpd_epi64(_mm512_add_pd(x, h));
        _mm512_storeu_si512(acc + i, _mm512_add_epi64(_mm512_loadu_si512(acc + i), q));
    }
    return i;
}
static int have_avx512(void) { return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq"); }
#else
#define FR_HAVE_AVX512_DISPATCH 0
#endif

void fri_fl_add_fixed(int64_t *restrict acc, const float *restrict val, size_t n, double w, bool vector) {
    size_t i = 0;
#if FR_HAVE_AVX512_DISPATCH
    if (vector && n >= 8 && have_avx512()) i = add_fixed_avx512(acc, val, n, w);
#else
    (void)vector;
#endif
    for (; i < n; i++) acc[i] += fixed(w * (double)val[i]);
}

static void add_fixed(int64_t *restrict acc, const float *restrict val, size_t n, double w) {
    fri_fl_add_fixed(acc, val, n, w, true);
}

fr_err fr_server_accept(fr_server *s, const fr_update *u, int worker) {
    if (worker < 0 || worker >= s->n_workers)
        return fri_fail(FR_ERR_INVALID, "server: worker %d, expected 0..%d", worker, s->n_workers - 1);
    if (u->dense_len != s->shape.dense_len || u->n_tables != s->shape.n_tables)
        return fri_fail(FR_ERR_INVALID, "update of client %u: dense %u and %u tables, expected %u and %u", u->client,
                        u->dense_len, u->n_tables, s->shape.dense_len, s->shape.n_tables);
    for (uint32_t t = 0; t < u->n_tables; t++) {
        if (u->tables[t].width != s->widths[t])
            return fri_fail(FR_ERR_INVALID, "update of client %u: table %u width %u, expected %u", u->client, t,
                            u->tables[t].width, s->widths[t]);
        for (uint32_t r = 0; r < u->tables[t].count; r++)
            if (u->tables[t].ids[r] >= s->nrows[t])
                return fri_fail(FR_ERR_INVALID, "update of client %u: row %u out of range, table has %u", u->client,
                                u->tables[t].ids[r], s->nrows[t]);
    }
    int64_t *acc = s->acc + (size_t)worker * s->n_shared;
    uint64_t *rw = s->roww + (size_t)worker * (s->shape.n_tables ? s->shape.n_tables : 1) * s->n_items;
    double n = (double)u->weight;
    s->wsum[worker] += u->weight;
    s->nacc[worker]++;
    size_t pos = 0;
    for (int i = 0; i < s->n_dense; i++) {
        const fr_tensor *tt = fr_model_tensor(s->g, s->dense_t[i]);
        size_t len = (size_t)tt->rows * tt->cols;
        add_fixed(acc + tt->offset, u->dense + pos, len, n);
        pos += len;
    }
    double ni = s->cfg.item_sum ? 1.0 : n; /* item rows: the plain sum, or n_k-weighted */
    for (uint32_t t = 0; t < u->n_tables; t++) {
        const fr_tensor *tt = fr_model_tensor(s->g, s->table_t[t]);
        const fr_update_table *ut = &u->tables[t];
        size_t w = ut->width;
        for (uint32_t r = 0; r < ut->count; r++) {
            size_t row = ut->ids[r];
            add_fixed(acc + tt->offset + row * w, ut->values + (size_t)r * w, w, ni);
            rw[(size_t)t * s->n_items + row] += u->weight;
        }
    }
    return FR_OK;
}

/* The strategy's step on parameter p with averaged delta d. */
static inline void apply(fr_server *s, float *w, size_t p, double d) {
    const fr_fl_config *c = &s->cfg;
    double lr = c->server_lr;
    switch (c->strategy) {
    case FR_STRATEGY_FEDAVG:
    case FR_STRATEGY_FEDPROX:
        w[p] = (float)((double)w[p] + lr * d);
        break;
    case FR_STRATEGY_FEDAVGM: {
        double m = (double)c->server_momentum * s->m[p] + d;
        s->m[p] = (float)m;
        w[p] = (float)((double)w[p] + lr * m);
        break;
    }
    default: {
        double m = (double)c->beta1 * s->m[p] + (1.0 - c->beta1) * d;
        double v = s->v[p], d2 = d * d;
        if (c->strategy == FR_STRATEGY_FEDADAM) v = (double)c->beta2 * v + (1.0 - c->beta2) * d2;
        else if (c->strategy == FR_STRATEGY_FEDYOGI) v = v - (1.0 - c->beta2) * d2 * (v - d2 > 0 ? 1 : v - d2 < 0 ? -1 : 0);
        else v = v + d2;
        s->m[p] = (float)m;
        s->v[p] = (float)v;
        w[p] = (float)((double)w[p] + lr * m / (sqrt(v) + c->tau));
        break;
    }
    }
}

fr_err fr_server_end_round(fr_server *s) {
    s->round++;
    uint64_t W = 0, K = 0;
    for (int k = 0; k < s->n_workers; k++) { W += s->wsum[k]; K += s->nacc[k]; }
    if (W == 0 || K == 0) return FR_OK;
    float *w = fr_model_params(s->g);
    size_t nw = (size_t)s->n_workers, ns = s->n_shared;
    size_t tstride = (s->shape.n_tables ? s->shape.n_tables : 1) * (size_t)s->n_items;
    for (int t = 0; t < fr_model_n_tensors(s->g); t++) {
        const fr_tensor *tt = fr_model_tensor(s->g, t);
        if (tt->kind == FR_TENSOR_USER_TABLE) continue;
        int ti = -1;
        for (uint32_t i = 0; i < s->shape.n_tables; i++) if (s->table_t[i] == t) ti = (int)i;
        for (size_t r = 0; r < tt->rows; r++) {
            double denom = (double)W;
            if (ti >= 0 && s->cfg.item_sum) denom = 1.0;
            if (ti >= 0 && s->cfg.row_norm) {
                uint64_t rw = 0;
                for (size_t k = 0; k < nw; k++) rw += s->roww[k * tstride + (size_t)ti * s->n_items + r];
                denom = rw ? (double)rw : 0;
            }
            for (size_t c = 0; c < tt->cols; c++) {
                size_t p = tt->offset + r * tt->cols + c;
                int64_t sum = 0;
                for (size_t k = 0; k < nw; k++) sum += s->acc[k * ns + p];
                double d = denom > 0 ? (double)sum / FR_FL_FIXED_SCALE / denom : 0.0;
                apply(s, w, p, d);
            }
        }
    }
    return FR_OK;
}
