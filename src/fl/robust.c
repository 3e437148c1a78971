/* Robust aggregators (fr_fl_config.aggregator): the round controller keeps each accepted
 * result whole (fri_kept) and, at the round's end, either computes a robust location of
 * every shared value (median, trimmed, rowtrim; rowguard's per-row weighted sums) or a
 * factor per result (normclip, krum, multikrum) with which the results then enter
 * FedAvg's own integer sums.
 *
 * Conventions (docs/ARCHITECTURE.md, "Robust aggregators"):
 *   - A client's delta is recovered from what it sent: Δ = value / 2^32 / w, w = n_k for
 *     the dense values and for item rows (1 for item rows when the federation sums them,
 *     item_sum). A client of weight 0 trained nothing and is not a voter.
 *   - Location rules count each client once (n_k is self-reported: a robust rule must not
 *     let a client buy weight). A coordinate's population is the clients the table rule
 *     averages over: every client for the dense values and for item rows under the mean
 *     and sum rules (a row a client did not touch is a 0), the row's contributors under
 *     the rows rule; the location then takes FedAvg's scale: x K (the clients) for summed
 *     rows. rowtrim takes every item row over its own contributors (n_r of them) and scales
 *     by n_r for summed rows, n_r / K for averaged ones, 1 for row-averaged ones.
 *   - Determinism: the kept results are ordered by client id, every coordinate and every
 *     pair of clients is computed alone from them, so the pool's size changes no bit. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "fl/fl_internal.h"
#include "model/layers.h"

/* ------------------------------------------------------------------ names */

static const char *const agg_names[] = {"fedavg", "median", "trimmed", "normclip", "krum", "multikrum", "rowtrim", "rowguard"};

/* rowguard's defaults: the row bound's multiple of the median row-delta norm, and the
 * cosine from which two deltas of a row count as alike */
#define ROWGUARD_K 8.0
#define ROWGUARD_COS 0.9

/* A non-negative integer of n characters at p (no sign, no spaces). */
static bool parse_u32(const char *p, size_t n, uint32_t *out) {
    if (n == 0 || n > 10) return false;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') return false;
        v = v * 10 + (uint64_t)(p[i] - '0');
    }
    if (v > UINT32_MAX) return false;
    *out = (uint32_t)v;
    return true;
}

/* A finite number of all n characters at p. */
static bool parse_num(const char *p, size_t n, double *out) {
    char buf[64], *end;
    if (n == 0 || n >= sizeof buf) return false;
    memcpy(buf, p, n);
    buf[n] = 0;
    *out = strtod(buf, &end);
    return end == buf + n && isfinite(*out);
}

fr_err fr_aggregator_parse(const char *s, fr_fl_config *c) {
    if (!s || !c) return fri_fail(FR_ERR_INVALID, "aggregator: NULL");
    const char *colon = strchr(s, ':');
    size_t nl = colon ? (size_t)(colon - s) : strlen(s);
    const char *arg = colon ? colon + 1 : NULL;
    int kind = -1;
    for (int i = 0; i <= FR_AGG_LAST; i++)
        if (strlen(agg_names[i]) == nl && !strncmp(s, agg_names[i], nl)) kind = i;
    fr_fl_config t = *c;
    t.aggregator = kind < 0 ? 0 : (uint32_t)kind;
    t.agg_beta = t.agg_clip = 0;
    t.agg_f = t.agg_m = 0;
    bool ok = false;
    switch (kind) {
    case FR_AGG_FEDAVG:
    case FR_AGG_MEDIAN: ok = !arg; break;
    case FR_AGG_TRIMMED: ok = arg && parse_num(arg, strlen(arg), &t.agg_beta) && t.agg_beta >= 0 && t.agg_beta < 0.5; break;
    case FR_AGG_ROWTRIM:
        t.agg_beta = 0.2;
        ok = !arg || (parse_num(arg, strlen(arg), &t.agg_beta) && t.agg_beta >= 0 && t.agg_beta < 0.5);
        break;
    case FR_AGG_NORMCLIP: ok = !arg || (parse_num(arg, strlen(arg), &t.agg_clip) && t.agg_clip > 0); break;
    case FR_AGG_ROWGUARD: {
        t.agg_clip = ROWGUARD_K;
        t.agg_beta = ROWGUARD_COS;
        const char *c2 = arg ? strchr(arg, ':') : NULL;
        ok = !arg || (parse_num(arg, c2 ? (size_t)(c2 - arg) : strlen(arg), &t.agg_clip) && t.agg_clip > 0 &&
                      t.agg_clip <= 1e6 && (!c2 || (parse_num(c2 + 1, strlen(c2 + 1), &t.agg_beta) &&
                                                     t.agg_beta > 0 && t.agg_beta <= 1)));
        break;
    }
    case FR_AGG_KRUM: ok = arg && parse_u32(arg, strlen(arg), &t.agg_f); break;
    case FR_AGG_MULTIKRUM: {
        const char *c2 = arg ? strchr(arg, ':') : NULL;
        ok = c2 && parse_u32(arg, (size_t)(c2 - arg), &t.agg_f) && parse_u32(c2 + 1, strlen(c2 + 1), &t.agg_m) &&
             t.agg_m >= 1;
        break;
    }
    default: break;
    }
    if (!ok)
        return fri_fail(FR_ERR_INVALID,
                        "aggregator '%s': expected fedavg, median, trimmed:BETA (0 <= BETA < 0.5), normclip[:C] "
                        "(C > 0; without it the median of the round's update norms), krum:F, multikrum:F:M (F >= 0 "
                        "Byzantine clients, M >= 1 selected), rowtrim[:BETA] (per item row, 0.2) or rowguard[:K[:COS]] (per "
                        "item row: each client's delta clipped to K times the median, 0 < K <= 1e6, default 8; "
                        "clients alike to cosine COS counted as one, 0 < COS <= 1, default 0.9)", s);
    *c = t;
    return FR_OK;
}

void fr_aggregator_format(const fr_fl_config *c, char *buf, size_t n) {
    const char *name = c->aggregator <= FR_AGG_LAST ? agg_names[c->aggregator] : "?";
    switch (c->aggregator) {
    case FR_AGG_TRIMMED:
    case FR_AGG_ROWTRIM: snprintf(buf, n, "%s:%g", name, c->agg_beta); break;
    case FR_AGG_NORMCLIP:
        if (c->agg_clip > 0) snprintf(buf, n, "%s:%g", name, c->agg_clip);
        else snprintf(buf, n, "%s", name);
        break;
    case FR_AGG_ROWGUARD: snprintf(buf, n, "%s:%g:%g", name, c->agg_clip, c->agg_beta); break;
    case FR_AGG_KRUM: snprintf(buf, n, "%s:%u", name, c->agg_f); break;
    case FR_AGG_MULTIKRUM: snprintf(buf, n, "%s:%u:%u", name, c->agg_f, c->agg_m); break;
    default: snprintf(buf, n, "%s", name); break;
    }
}

fr_err fri_fl_agg_check(const fr_fl_config *c) {
    uint32_t a = c->aggregator;
    if (a > FR_AGG_LAST) return fri_fail(FR_ERR_INVALID, "aggregator %u unknown", a);
    bool beta = a == FR_AGG_TRIMMED || a == FR_AGG_ROWTRIM, krum = a == FR_AGG_KRUM || a == FR_AGG_MULTIKRUM;
    if (a == FR_AGG_ROWGUARD) {
        if (!(c->agg_clip > 0 && c->agg_clip <= 1e6) || !(c->agg_beta > 0 && c->agg_beta <= 1))
            return fri_fail(FR_ERR_INVALID, "aggregator rowguard:%g:%g: expected 0 < K <= 1e6 and 0 < COS <= 1",
                            c->agg_clip, c->agg_beta);
    } else if (beta ? !(c->agg_beta >= 0 && c->agg_beta < 0.5) : c->agg_beta != 0)
        return fri_fail(FR_ERR_INVALID, "aggregator beta %g: expected [0, 0.5) for trimmed and rowtrim, 0 otherwise",
                        c->agg_beta);
    if (a == FR_AGG_ROWGUARD) {
    } else if (a == FR_AGG_NORMCLIP ? !(c->agg_clip >= 0 && isfinite(c->agg_clip)) : c->agg_clip != 0)
        return fri_fail(FR_ERR_INVALID, "aggregator clip %g: expected >= 0 for normclip (0: the median norm), 0 otherwise",
                        c->agg_clip);
    if (!krum && c->agg_f) return fri_fail(FR_ERR_INVALID, "aggregator f %u: only krum and multikrum take one", c->agg_f);
    if (a == FR_AGG_MULTIKRUM ? c->agg_m < 1 : c->agg_m != 0)
        return fri_fail(FR_ERR_INVALID, "aggregator m %u: expected >= 1 for multikrum, 0 otherwise", c->agg_m);
    if (a && fr_fl_dp_on(c))
        return fri_fail(FR_ERR_INVALID, "aggregator %s with differential privacy: the noise is calibrated to the clipped "
                        "sum, and the robust rules need each client's update (use fedavg)", agg_names[a]);
    if ((a == FR_AGG_ROWTRIM || a == FR_AGG_ROWGUARD) && c->decoys > 0)
        return fri_fail(FR_ERR_INVALID, "aggregator %s with decoys: each decoy row would count among its row's "
                        "contributors (use median or trimmed)", agg_names[a]);
    return FR_OK;
}

/* ------------------------------------------------------------------ kept results */

void fri_kept_free(fri_kept *k) {
    if (!k) return;
    fri_free(k->dense);
    for (int t = 0; t < FR_UPDATE_MAX_TABLES; t++) {
        fri_free(k->ids[t]);
        fri_free(k->vals[t]);
    }
    memset(k, 0, sizeof *k);
}

static inline int64_t value_at(const fri_result_view *v, const void *vals, size_t i) {
    return v->native ? ((const int64_t *)vals)[i] : (int64_t)fri_get_u64((const uint8_t *)vals + 8 * i);
}

fr_err fri_kept_store(fri_kept *k, const fri_result_view *v) {
    if (v->dense_len > k->dense_cap) {
        int64_t *d = fri_realloc(k->dense, (size_t)v->dense_len * sizeof *d);
        if (!d) return FR_ERR_NOMEM;
        k->dense = d;
        k->dense_cap = v->dense_len;
    }
    for (size_t i = 0; i < v->dense_len; i++) k->dense[i] = value_at(v, v->dense, i);
    for (uint32_t t = 0; t < v->n_tables; t++) {
        uint32_t cnt = v->tables[t].count, w = v->tables[t].width;
        if (cnt > k->cap[t]) {
            size_t nv;
            if (fri_mul_size(cnt, w, &nv) || nv > SIZE_MAX / 8) return FR_ERR_NOMEM;
            uint32_t *ids = fri_realloc(k->ids[t], (size_t)cnt * sizeof *ids);
            if (!ids) return FR_ERR_NOMEM;
            k->ids[t] = ids;
            int64_t *vals = fri_realloc(k->vals[t], nv * sizeof *vals);
            if (!vals) return FR_ERR_NOMEM;
            k->vals[t] = vals;
            k->cap[t] = cnt;
        }
        for (uint32_t i = 0; i < cnt; i++)
            k->ids[t][i] = v->native ? ((const uint32_t *)v->tables[t].ids)[i]
                                     : fri_get_u32((const uint8_t *)v->tables[t].ids + 4 * (size_t)i);
        for (size_t i = 0; i < (size_t)cnt * w; i++) k->vals[t][i] = value_at(v, v->tables[t].values, i);
        k->count[t] = cnt;
    }
    k->weight = v->weight;
    return FR_OK;
}

/* ------------------------------------------------------------------ locations */

size_t fri_robust_len(const fri_robust_round *rr) {
    size_t n = rr->dense_len;
    for (uint32_t t = 0; t < rr->n_tables; t++) n += (size_t)rr->n_items * rr->widths[t];
    return n;
}

enum { RULE_MEAN, RULE_SUM, RULE_ROWS };
static int table_rule(const fr_fl_config *c) { return c->item_sum ? RULE_SUM : c->row_norm ? RULE_ROWS : RULE_MEAN; }

/* Client k's value i of table t (or the dense part, t < 0) as a delta. */
static inline double delta_of(const fri_robust_round *rr, const fri_kept *k, int64_t v, bool table) {
    double wt = table && rr->cfg->item_sum ? 1.0 : (double)k->weight;
    return (double)v / FR_FL_FIXED_SCALE / wt;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Element j of the ascending multiset x[0, n) (sorted) plus z zeros; neg: the x below 0. */
static inline double elem(const double *x, uint32_t neg, uint32_t z, uint32_t j) {
    return j < neg ? x[j] : j < neg + z ? 0.0 : x[j - z];
}

/* The median (median) or beta-trimmed mean of x[0, n) and z zeros; x is sorted here. */
static double location(double *x, uint32_t n, uint32_t z, bool median, double beta) {
    uint32_t N = n + z;
    if (N == 0) return 0;
    qsort(x, n, sizeof *x, cmp_double);
    uint32_t neg = 0;
    while (neg < n && x[neg] < 0) neg++;
    if (median) return N % 2 ? elem(x, neg, z, N / 2) : (elem(x, neg, z, N / 2 - 1) + elem(x, neg, z, N / 2)) / 2;
    uint32_t t = (uint32_t)floor(beta * (double)N);
    if (2 * (uint64_t)t >= N) t = (N - 1) / 2;
    double s = 0;
    for (uint32_t j = t; j < N - t; j++) s += elem(x, neg, z, j);
    return s / (double)(N - 2 * t);
}

/* The contributors of each item row of one table: CSR over rows, entries (kept, row). */
typedef struct rows_index {
    uint32_t *start;      /* [n_items + 1] */
    uint32_t *who, *at;   /* [total] kept index, its row position */
} rows_index;

typedef struct loc_ctx {
    const fri_robust_round *rr;
    double *out;
    double *scratch;      /* [workers * n] */
    uint32_t t;           /* the table (location_rows) */
    size_t base;          /* its offset in out */
    rows_index ix;
    int rule;
    bool median;
    double beta;
} loc_ctx;

static void location_dense(void *vctx, size_t p, int worker) {
    loc_ctx *c = vctx;
    const fri_robust_round *rr = c->rr;
    double *x = c->scratch + (size_t)worker * rr->n;
    for (uint32_t k = 0; k < rr->n; k++)
        x[k] = (double)rr->kept[k]->dense[p] / FR_FL_FIXED_SCALE / (double)rr->kept[k]->weight;
    c->out[p] = location(x, rr->n, 0, c->median, c->beta);
}

static void location_rows(void *vctx, size_t row, int worker) {
    loc_ctx *c = vctx;
    const fri_robust_round *rr = c->rr;
    uint32_t w = rr->widths[c->t], s0 = c->ix.start[row], nr = c->ix.start[row + 1] - s0;
    double *x = c->scratch + (size_t)worker * rr->n, *out = c->out + c->base + row * (size_t)w;
    bool rowtrim = rr->cfg->aggregator == FR_AGG_ROWTRIM;
    /* the population's zeros and FedAvg's scale (file comment) */
    uint32_t z = rowtrim || c->rule == RULE_ROWS ? 0 : rr->n - nr;
    double scale = 1;
    if (rowtrim) scale = c->rule == RULE_SUM ? nr : c->rule == RULE_MEAN ? (double)nr / rr->n : 1;
    else if (c->rule == RULE_SUM) scale = rr->n;
    for (uint32_t col = 0; col < w; col++) {
        if (!nr) { out[col] = 0; continue; }
        for (uint32_t j = 0; j < nr; j++) {
            const fri_kept *k = rr->kept[c->ix.who[s0 + j]];
            double wt = c->rule == RULE_SUM ? 1.0 : (double)k->weight;
            x[j] = (double)k->vals[c->t][(size_t)c->ix.at[s0 + j] * w + col] / FR_FL_FIXED_SCALE / wt;
        }
        out[col] = scale * location(x, nr, z, c->median, c->beta);
    }
}

static void run(fr_pool *pool, size_t n, fr_task_fn fn, void *ctx) {
    if (pool) fr_pool_for(pool, n, 0, fn, ctx);
    else for (size_t i = 0; i < n; i++) fn(ctx, i, 0);
}

/* The contributors of table t's rows into ix (its arrays grown to the table's entries):
 * for each row, its kept results in client-id order. */
static fr_err build_index(const fri_robust_round *rr, uint32_t t, rows_index *ix) {
    uint32_t *st = ix->start;
    memset(st, 0, ((size_t)rr->n_items + 1) * sizeof *st);
    size_t total = 0;
    for (uint32_t k = 0; k < rr->n; k++) {
        for (uint32_t i = 0; i < rr->kept[k]->count[t]; i++) st[rr->kept[k]->ids[t][i] + 1]++;
        total += rr->kept[k]->count[t];
    }
    for (uint32_t i = 0; i < rr->n_items; i++) st[i + 1] += st[i];
    fri_free(ix->who);
    fri_free(ix->at);
    ix->who = fri_malloc((total + 1) * sizeof *ix->who);
    ix->at = fri_malloc((total + 1) * sizeof *ix->at);
    if (!ix->who || !ix->at) return FR_ERR_NOMEM;
    for (uint32_t k = 0; k < rr->n; k++) /* client-id order within each row */
        for (uint32_t i = 0; i < rr->kept[k]->count[t]; i++) {
            uint32_t row = rr->kept[k]->ids[t][i], at = st[row]++;
            ix->who[at] = k;
            ix->at[at] = i;
        }
    for (uint32_t i = rr->n_items; i > 0; i--) st[i] = st[i - 1]; /* back to the starts */
    st[0] = 0;
    return FR_OK;
}

static fr_err rowguard_location(const fri_robust_round *rr, double *out);

fr_err fri_robust_location(const fri_robust_round *rr, double *out) {
    uint32_t a = rr->cfg->aggregator;
    if (a == FR_AGG_ROWGUARD) return rowguard_location(rr, out);
    if (a != FR_AGG_MEDIAN && a != FR_AGG_TRIMMED && a != FR_AGG_ROWTRIM)
        return fri_fail(FR_ERR_INVALID, "aggregator %u has no location rule", a);
    int workers = rr->pool ? fr_pool_size(rr->pool) : 1;
    loc_ctx c = {rr, out, NULL, 0, 0, {NULL, NULL, NULL}, table_rule(rr->cfg), a == FR_AGG_MEDIAN, rr->cfg->agg_beta};
    c.scratch = fri_malloc(((size_t)workers * rr->n + 1) * sizeof *c.scratch);
    c.ix.start = fri_malloc(((size_t)rr->n_items + 1) * sizeof *c.ix.start);
    fr_err e = FR_ERR_NOMEM;
    if (!c.scratch || !c.ix.start) goto done;
    run(rr->pool, rr->dense_len, location_dense, &c);
    c.base = rr->dense_len;
    for (uint32_t t = 0; t < rr->n_tables; t++) {
        if ((e = build_index(rr, t, &c.ix))) goto done;
        e = FR_ERR_NOMEM;
        c.t = t;
        run(rr->pool, rr->n_items, location_rows, &c);
        c.base += (size_t)rr->n_items * rr->widths[t];
    }
    e = FR_OK;
done:
    fri_free(c.scratch);
    fri_free(c.ix.start);
    fri_free(c.ix.who);
    fri_free(c.ix.at);
    return e;
}

/* ------------------------------------------------------------------ rowguard */
/* rowguard:K:COS, per item table and row r, over the row's contributors j (the clients
 * whose result holds r), each delta d_j = value / 2^32 / w (w as FedAvg's table rule):
 *   - the bound: tau = K x the median of |d_j| over every (client, row) of the table in the
 *     round (non-zero ones), learned from the round as normclip's C; c_j = min(1, tau/|d_j|);
 *   - the coordination: a_j = the contributors of r, j among them, whose deltas of r have
 *     cosine >= COS with d_j (1 + the others: alike clients); g_j = 1 / a_j, so a group of
 *     clients sending the same direction for a row counts as one client there;
 *   - the row's step: FedAvg's rule over g_j c_j d_j with the weights g_j n_j: sum (item
 *     sum), sum g_j n_j c_j d_j / sum_all n (mean), / sum_r g_j n_j (rows).
 * Dense values: each client's dense delta clipped to K x the round's median dense norm,
 * then FedAvg's n_k-weighted mean. With no alike pair and no delta above the bound this is
 * FedAvg (in double, so not its integer sums bit for bit). Determinism: each row alone, its
 * contributors in client-id order, pairs in (j, k) order. */

typedef struct rg_ctx {
    const fri_robust_round *rr;
    double *out;
    uint32_t t;
    size_t base;
    rows_index ix;
    int rule;
    double tau, wall;     /* the bound, sum of every kept weight */
    double *nrm;          /* [entries] |d| per (row, contributor) in index order */
    float *unit;          /* [workers * n * width] unit deltas */
    uint32_t *alike;      /* [workers * n] */
    uint32_t maxw;
} rg_ctx;

static inline double rg_delta(const rg_ctx *c, const fri_kept *k, int64_t v) {
    return (double)v / FR_FL_FIXED_SCALE / (c->rule == RULE_SUM ? 1.0 : (double)k->weight);
}

static void rg_norms(void *vctx, size_t row, int worker) {
    (void)worker;
    rg_ctx *c = vctx;
    uint32_t w = c->rr->widths[c->t];
    for (uint32_t s = c->ix.start[row]; s < c->ix.start[row + 1]; s++) {
        const fri_kept *k = c->rr->kept[c->ix.who[s]];
        const int64_t *v = k->vals[c->t] + (size_t)c->ix.at[s] * w;
        double q = 0;
        for (uint32_t x = 0; x < w; x++) {
            double d = rg_delta(c, k, v[x]);
            q += d * d;
        }
        c->nrm[s] = sqrt(q);
    }
}


static void rg_row(void *vctx, size_t row, int worker) {
    rg_ctx *c = vctx;
    const fri_robust_round *rr = c->rr;
    uint32_t w = rr->widths[c->t], s0 = c->ix.start[row], nr = c->ix.start[row + 1] - s0;
    double *out = c->out + c->base + row * (size_t)w;
    for (uint32_t x = 0; x < w; x++) out[x] = 0;
    if (!nr) return;
    float *u = c->unit + (size_t)worker * rr->n * c->maxw;
    uint32_t *al = c->alike + (size_t)worker * rr->n;
    for (uint32_t j = 0; j < nr; j++) {
        const fri_kept *k = rr->kept[c->ix.who[s0 + j]];
        const int64_t *v = k->vals[c->t] + (size_t)c->ix.at[s0 + j] * w;
        double n = c->nrm[s0 + j];
        for (uint32_t x = 0; x < w; x++) u[(size_t)j * w + x] = n > 0 ? (float)(rg_delta(c, k, v[x]) / n) : 0.0f;
        al[j] = 1;
    }
    float cos = (float)(rr->cfg->agg_beta - 1e-5); /* identical directions pass COS = 1 despite rounding */
    for (uint32_t j = 0; j < nr; j++) {
        if (!(c->nrm[s0 + j] > 0)) continue;
        for (uint32_t k = j + 1; k < nr; k++)
            if (c->nrm[s0 + k] > 0 && fri_dot(u + (size_t)j * w, u + (size_t)k * w, w) >= cos) {
                al[j]++;
                al[k]++;
            }
    }
    double den = c->rule == RULE_MEAN ? c->wall : 0;
    for (uint32_t j = 0; j < nr; j++) {
        const fri_kept *k = rr->kept[c->ix.who[s0 + j]];
        double g = 1.0 / al[j], n = c->nrm[s0 + j], cl = n > c->tau ? c->tau / n : 1.0;
        double wt = c->rule == RULE_SUM ? 1.0 : (double)k->weight;
        if (c->rule == RULE_ROWS) den += g * wt;
        const int64_t *v = k->vals[c->t] + (size_t)c->ix.at[s0 + j] * w;
        for (uint32_t x = 0; x < w; x++) out[x] += g * wt * cl * rg_delta(c, k, v[x]);
    }
    if (c->rule != RULE_SUM && den > 0)
        for (uint32_t x = 0; x < w; x++) out[x] /= den;
}

/* The median of the positive values of x[0, n) (sorted in place here), 0 if none. */
static double median_pos(double *x, size_t n) {
    qsort(x, n, sizeof *x, cmp_double);
    size_t z = 0;
    while (z < n && !(x[z] > 0)) z++;
    size_t m = n - z;
    if (!m) return 0;
    return m % 2 ? x[z + m / 2] : (x[z + m / 2 - 1] + x[z + m / 2]) / 2;
}

static fr_err rowguard_location(const fri_robust_round *rr, double *out) {
    int workers = rr->pool ? fr_pool_size(rr->pool) : 1;
    double K = rr->cfg->agg_clip;
    rg_ctx c = {rr, out, 0, 0, {NULL, NULL, NULL}, table_rule(rr->cfg), 0, 0, NULL, NULL, NULL, 1};
    for (uint32_t t = 0; t < rr->n_tables; t++)
        if (rr->widths[t] > c.maxw) c.maxw = rr->widths[t];
    size_t total = 0;
    for (uint32_t t = 0; t < rr->n_tables; t++) {
        size_t e = 0;
        for (uint32_t k = 0; k < rr->n; k++) e += rr->kept[k]->count[t];
        if (e > total) total = e;
    }
    if (total < rr->n) total = rr->n;
    c.ix.start = fri_malloc(((size_t)rr->n_items + 1) * sizeof *c.ix.start);
    c.nrm = fri_malloc((2 * total + 1) * sizeof *c.nrm);
    c.unit = fri_malloc(((size_t)workers * rr->n * c.maxw + 1) * sizeof *c.unit);
    c.alike = fri_malloc(((size_t)workers * rr->n + 1) * sizeof *c.alike);
    fr_err e = FR_ERR_NOMEM;
    if (!c.ix.start || !c.nrm || !c.unit || !c.alike) goto done;
    for (uint32_t k = 0; k < rr->n; k++) c.wall += (double)rr->kept[k]->weight;
    /* dense: normclip at K x the median norm, then the n_k-weighted mean */
    if (rr->dense_len) {
        double *dn = c.nrm, *sorted = c.nrm + rr->n;
        for (uint32_t k = 0; k < rr->n; k++) {
            const fri_kept *kp = rr->kept[k];
            double q = 0;
            for (uint32_t p = 0; p < rr->dense_len; p++) {
                double d = delta_of(rr, kp, kp->dense[p], false);
                q += d * d;
            }
            dn[k] = sorted[k] = sqrt(q);
        }
        double C = K * median_pos(sorted, rr->n);
        for (uint32_t p = 0; p < rr->dense_len; p++) out[p] = 0;
        for (uint32_t k = 0; k < rr->n; k++) {
            const fri_kept *kp = rr->kept[k];
            double f = dn[k] > C ? C / dn[k] : 1.0;
            for (uint32_t p = 0; p < rr->dense_len; p++) out[p] += f * (double)kp->dense[p] / FR_FL_FIXED_SCALE;
        }
        for (uint32_t p = 0; p < rr->dense_len; p++) out[p] /= c.wall;
    }
    c.base = rr->dense_len;
    for (uint32_t t = 0; t < rr->n_tables; t++) {
        if ((e = build_index(rr, t, &c.ix))) goto done;
        e = FR_ERR_NOMEM;
        size_t ne = c.ix.start[rr->n_items];
        c.t = t;
        run(rr->pool, rr->n_items, rg_norms, &c);
        memcpy(c.nrm + total, c.nrm, ne * sizeof *c.nrm);
        c.tau = K * median_pos(c.nrm + total, ne);
        run(rr->pool, rr->n_items, rg_row, &c);
        c.base += (size_t)rr->n_items * rr->widths[t];
    }
    e = FR_OK;
done:
    fri_free(c.ix.start);
    fri_free(c.ix.who);
    fri_free(c.ix.at);
    fri_free(c.nrm);
    fri_free(c.unit);
    fri_free(c.alike);
    return e;
}

/* ------------------------------------------------------------------ factors */

double fri_normclip_factor(double norm, double C) { return norm > C * (1 + 1e-6) ? C / norm : 1.0; }

void fri_normclip_update(fr_update *u, double C) {
    double s = 0;
    for (uint32_t i = 0; i < u->dense_len; i++) s += (double)u->dense[i] * u->dense[i];
    for (uint32_t t = 0; t < u->n_tables; t++)
        for (size_t i = 0; i < (size_t)u->tables[t].count * u->tables[t].width; i++)
            s += (double)u->tables[t].values[i] * u->tables[t].values[i];
    double norm = sqrt(s);
    if (!(norm > C)) return;
    double f = C / norm;
    for (uint32_t i = 0; i < u->dense_len; i++) u->dense[i] = (float)(u->dense[i] * f);
    for (uint32_t t = 0; t < u->n_tables; t++)
        for (size_t i = 0; i < (size_t)u->tables[t].count * u->tables[t].width; i++)
            u->tables[t].values[i] = (float)(u->tables[t].values[i] * f);
}


typedef struct krum_ctx {
    const fri_robust_round *rr;
    double *dist;          /* [n * n] squared distances */
    double *sq;            /* [n] squared norm of each client's item rows (from rows) */
    double *dense;         /* [n * dense_len] each client's dense delta */
    float *rows;           /* each client's item-row deltas, table after table */
    size_t *at;            /* [n * n_tables] where each client's table starts in rows */
    int32_t *pos;          /* [workers * n_tables * n_items] a row's place in client i's list, or -1 */
} krum_ctx;

static double sq_norm(const fri_robust_round *rr, const fri_kept *k) {
    double s = 0;
    for (uint32_t i = 0; i < rr->dense_len; i++) {
        double d = delta_of(rr, k, k->dense[i], false);
        s += d * d;
    }
    for (uint32_t t = 0; t < rr->n_tables; t++)
        for (size_t i = 0; i < (size_t)k->count[t] * rr->widths[t]; i++) {
            double d = delta_of(rr, k, k->vals[t][i], true);
            s += d * d;
        }
    return s;
}

/* sum (a - b)^2 in four fixed lanes (the same order whatever the machine's threads). */
static double sq_dist(const double *a, const double *b, size_t n) {
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        double d0 = a[i] - b[i], d1 = a[i + 1] - b[i + 1], d2 = a[i + 2] - b[i + 2], d3 = a[i + 3] - b[i + 3];
        s0 += d0 * d0;
        s1 += d1 * d1;
        s2 += d2 * d2;
        s3 += d3 * d3;
    }
    for (; i < n; i++) s0 += (a[i] - b[i]) * (a[i] - b[i]);
    return (s0 + s1) + (s2 + s3);
}

/* sum a * b of float rows, in double, in four fixed lanes. */
static double dot_f(const float *a, const float *b, size_t n) {
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += (double)a[i] * (double)b[i];
        s1 += (double)a[i + 1] * (double)b[i + 1];
        s2 += (double)a[i + 2] * (double)b[i + 2];
        s3 += (double)a[i + 3] * (double)b[i + 3];
    }
    for (; i < n; i++) s0 += (double)a[i] * (double)b[i];
    return (s0 + s1) + (s2 + s3);
}

/* Row i of the distance matrix against every j > i (each pair computed once, by i). The
 * item rows as |a|^2 + |b|^2 - 2 a.b, the product over the rows both touched: client i's
 * rows are placed in pos (the worker's), then each j's rows looked up there. */
static void krum_row(void *vctx, size_t i, int worker) {
    krum_ctx *c = vctx;
    const fri_robust_round *rr = c->rr;
    const fri_kept *a = rr->kept[i];
    size_t dl = rr->dense_len, nt = rr->n_tables;
    int32_t *pos = c->pos + (size_t)worker * nt * rr->n_items;
    for (uint32_t t = 0; t < nt; t++)
        for (uint32_t x = 0; x < a->count[t]; x++) pos[(size_t)t * rr->n_items + a->ids[t][x]] = (int32_t)x;
    for (uint32_t j = (uint32_t)i + 1; j < rr->n; j++) {
        const fri_kept *b = rr->kept[j];
        double s = sq_dist(c->dense + i * dl, c->dense + j * dl, dl), dot = 0;
        for (uint32_t t = 0; t < nt; t++) {
            uint32_t w = rr->widths[t];
            const int32_t *pt = pos + (size_t)t * rr->n_items;
            const float *ra = c->rows + c->at[i * nt + t], *rb = c->rows + c->at[(size_t)j * nt + t];
            for (uint32_t y = 0; y < b->count[t]; y++) {
                int32_t x = pt[b->ids[t][y]];
                if (x >= 0) dot += dot_f(ra + (size_t)x * w, rb + (size_t)y * w, w);
            }
        }
        double rows = c->sq[i] + c->sq[j] - 2 * dot;
        s += rows > 0 ? rows : 0;
        c->dist[i * rr->n + j] = c->dist[(size_t)j * rr->n + i] = s;
    }
    for (uint32_t t = 0; t < nt; t++) /* the place map back to empty */
        for (uint32_t x = 0; x < a->count[t]; x++) pos[(size_t)t * rr->n_items + a->ids[t][x]] = -1;
}

typedef struct scored {
    double score;
    uint32_t k;
} scored;

static int cmp_scored(const void *pa, const void *pb) {
    const scored *a = pa, *b = pb;
    if (a->score != b->score) return a->score < b->score ? -1 : 1;
    return (a->k > b->k) - (a->k < b->k); /* ties: the lower client id */
}

fr_err fri_robust_factors(const fri_robust_round *rr, double *factor) {
    uint32_t a = rr->cfg->aggregator, n = rr->n;
    if (!n) return FR_OK;
    if (a == FR_AGG_NORMCLIP) {
        double *norm = fri_malloc(2 * (size_t)n * sizeof *norm);
        if (!norm) return FR_ERR_NOMEM;
        for (uint32_t k = 0; k < n; k++) {
            norm[k] = sqrt(sq_norm(rr, rr->kept[k]));
            norm[n + k] = norm[k];
        }
        double C = rr->cfg->agg_clip;
        if (!(C > 0)) C = location(norm + n, n, 0, true, 0); /* the median norm */
        for (uint32_t k = 0; k < n; k++) factor[k] = fri_normclip_factor(norm[k], C);
        fri_free(norm);
        return FR_OK;
    }
    if (a != FR_AGG_KRUM && a != FR_AGG_MULTIKRUM) return fri_fail(FR_ERR_INVALID, "aggregator %u has no factors", a);
    int workers = rr->pool ? fr_pool_size(rr->pool) : 1;
    size_t nt = rr->n_tables, total = 0;
    for (uint32_t k = 0; k < n; k++)
        for (uint32_t t = 0; t < nt; t++) total += (size_t)rr->kept[k]->count[t] * rr->widths[t];
    krum_ctx c = {rr, fri_calloc((size_t)n * n, sizeof(double)), fri_malloc((size_t)n * sizeof(double)),
                  fri_malloc(((size_t)n * rr->dense_len + 1) * sizeof(double)), fri_malloc((total + 1) * sizeof(float)),
                  fri_malloc(((size_t)n * nt + 1) * sizeof(size_t)),
                  fri_malloc(((size_t)workers * nt * rr->n_items + 1) * sizeof(int32_t))};
    scored *sc = fri_malloc((size_t)n * sizeof *sc);
    double *row = fri_malloc((size_t)n * sizeof *row);
    fr_err e = FR_ERR_NOMEM;
    if (!c.dist || !c.sq || !c.dense || !c.rows || !c.at || !c.pos || !sc || !row) goto done;
    for (size_t i = 0; i < (size_t)workers * nt * rr->n_items; i++) c.pos[i] = -1;
    size_t off = 0;
    for (uint32_t k = 0; k < n; k++) {
        const fri_kept *kp = rr->kept[k];
        for (uint32_t p = 0; p < rr->dense_len; p++) c.dense[(size_t)k * rr->dense_len + p] = delta_of(rr, kp, kp->dense[p], false);
        double sq = 0;
        for (uint32_t t = 0; t < nt; t++) {
            c.at[(size_t)k * nt + t] = off;
            for (size_t i = 0; i < (size_t)kp->count[t] * rr->widths[t]; i++, off++) {
                c.rows[off] = (float)delta_of(rr, kp, kp->vals[t][i], true);
                sq += (double)c.rows[off] * (double)c.rows[off];
            }
        }
        c.sq[k] = sq;
    }
    run(rr->pool, n, krum_row, &c);
    /* score: the sum of the squared distances to the n - f - 2 nearest others (at least
     * one neighbour, at most all of them) */
    int64_t nn = (int64_t)n - (int64_t)rr->cfg->agg_f - 2;
    if (nn < 1) nn = 1;
    if (nn > (int64_t)n - 1) nn = (int64_t)n - 1;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t m = 0;
        for (uint32_t j = 0; j < n; j++)
            if (j != i) row[m++] = c.dist[(size_t)i * n + j];
        qsort(row, m, sizeof *row, cmp_double);
        double s = 0;
        for (int64_t j = 0; j < nn; j++) s += row[j];
        sc[i] = (scored){s, i};
    }
    qsort(sc, n, sizeof *sc, cmp_scored);
    uint32_t m = a == FR_AGG_KRUM ? 1 : rr->cfg->agg_m < n ? rr->cfg->agg_m : n;
    for (uint32_t k = 0; k < n; k++) factor[k] = 0;
    for (uint32_t k = 0; k < m; k++) factor[sc[k].k] = 1;
    e = FR_OK;
done:
    fri_free(c.dist);
    fri_free(c.sq);
    fri_free(c.dense);
    fri_free(c.rows);
    fri_free(c.at);
    fri_free(c.pos);
    fri_free(sc);
    fri_free(row);
    return e;
}
