/* Robust aggregators (fr_fl_config.aggregator, src/fl/robust.c) through the round
 * controller, on hand-made updates:
 *   - a tiny round computed by hand (numbers in the comments);
 *   - every aggregator against a naive reference written here from the definitions (whole
 *     vectors with explicit zeros, bubble sorts, an O(K^2) Krum), over ties, all-equal
 *     inputs, even and odd client counts, a single client, and the three item-row rules;
 *   - selecting every result (multikrum:0:K, normclip with a huge C) is FedAvg bit for bit;
 *   - lanes and arrival order, and the simulator's thread count, change no bit;
 *   - the config: names, checks, the TASK's config block; secure aggregation refused. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fedrec/fl.h"
#include "fedrec/runtime.h"
#include "testutil.h"

#define NI 5      /* items */
#define MAXK 9    /* clients */
#define MAXD 64   /* dense values */
#define MAXT 4    /* tables */
#define MAXW 8    /* row width */

/* A round's hand-made updates. */
typedef struct hand {
    uint32_t K;
    uint64_t n[MAXK];
    uint32_t dense_len, n_tables, widths[MAXT];
    float dense[MAXK][MAXD];
    bool touched[MAXK][MAXT][NI];
    float rows[MAXK][MAXT][NI][MAXW];
} hand;

static fr_model_config model_cfg(void) {
    fr_model_config m;
    fr_model_config_default(&m, FR_MODEL_GMF);
    m.n_users = 1;
    m.n_items = NI;
    m.dim = 2;
    m.seed = 3;
    return m;
}

static void fl_cfg(fr_fl_config *c, int rule) {
    fr_fl_config_default(c, FR_MODEL_GMF);
    c->item_sum = rule == 1;
    c->row_norm = rule == 2;
}

/* xorshift: the test's own values, from a small set so that ties are common. */
static uint64_t rnd(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}
static float pick(uint64_t *s) {
    static const float v[] = {-1.0f, -0.5f, 0.0f, 0.25f, 0.5f, 0.5f, 1.0f, 2.0f, -0.25f};
    return v[rnd(s) % 9];
}

static void shape_of(hand *h, const fr_round *r) {
    const fr_update_shape *sh = fr_round_shape(r);
    h->dense_len = sh->dense_len;
    h->n_tables = sh->n_tables;
    cr_assert(h->dense_len <= MAXD && h->n_tables <= MAXT);
    for (uint32_t t = 0; t < h->n_tables; t++) {
        h->widths[t] = sh->widths[t];
        cr_assert(h->widths[t] <= MAXW);
    }
}

/* K clients of random updates (same == every client the same update). */
static void make(hand *h, uint32_t K, uint64_t seed, bool same) {
    uint64_t s = seed * 2654435761u + 1;
    h->K = K;
    for (uint32_t k = 0; k < K; k++) {
        uint32_t src = same ? 0 : k;
        if (same && k > 0) {
            h->n[k] = h->n[0];
            memcpy(h->dense[k], h->dense[0], sizeof h->dense[0]);
            memcpy(h->touched[k], h->touched[0], sizeof h->touched[0]);
            memcpy(h->rows[k], h->rows[0], sizeof h->rows[0]);
            continue;
        }
        (void)src;
        h->n[k] = 1 + rnd(&s) % 4;
        for (uint32_t i = 0; i < h->dense_len; i++) h->dense[k][i] = pick(&s);
        for (uint32_t t = 0; t < h->n_tables; t++)
            for (uint32_t r = 0; r < NI; r++) {
                h->touched[k][t][r] = rnd(&s) % 2;
                for (uint32_t c = 0; c < h->widths[t]; c++) h->rows[k][t][r][c] = h->touched[k][t][r] ? pick(&s) : 0;
            }
    }
}

/* Runs one round of h through a controller of cfg (lanes, arrival order reversed or
 * not); returns the shared parameters after it in after[] and before it in before[]. */
static fr_err run_round(const fr_fl_config *cfg, const hand *h, int lanes, bool reverse, float *before, float *after,
                        size_t *ns) {
    fr_model_config mc = model_cfg();
    fr_round *r = NULL;
    cr_assert_eq(fr_round_create(&r, &mc, cfg, h->K, lanes), FR_OK, "%s", fr_errmsg());
    *ns = fr_model_n_shared(fr_round_model(r));
    memcpy(before, fr_model_params_const(fr_round_model(r)), *ns * sizeof *before);
    fr_update *u = NULL;
    fr_result *res = NULL;
    cr_assert_eq(fr_update_create(&u), FR_OK);
    cr_assert_eq(fr_result_create(&res), FR_OK);
    cr_assert_eq(fr_round_begin(r, NULL, NULL), FR_OK, "%s", fr_errmsg());
    for (uint32_t j = 0; j < h->K; j++) {
        uint32_t k = reverse ? h->K - 1 - j : j;
        cr_assert_eq(fr_update_reset(u, h->dense_len, h->n_tables, h->widths), FR_OK);
        u->weight = h->n[k];
        u->client = k;
        u->round = 1;
        memcpy(u->dense, h->dense[k], h->dense_len * sizeof(float));
        for (uint32_t t = 0; t < h->n_tables; t++) {
            uint32_t cnt = 0;
            for (uint32_t row = 0; row < NI; row++) cnt += h->touched[k][t][row];
            cr_assert_eq(fr_update_table_resize(u, t, cnt), FR_OK);
            uint32_t i = 0;
            for (uint32_t row = 0; row < NI; row++) {
                if (!h->touched[k][t][row]) continue;
                u->tables[t].ids[i] = row;
                for (uint32_t c = 0; c < h->widths[t]; c++) u->tables[t].values[(size_t)i * h->widths[t] + c] = h->rows[k][t][row][c];
                i++;
            }
        }
        cr_assert_eq(fr_result_quantize(res, u, fr_round_fl_config(r), 0), FR_OK, "%s", fr_errmsg());
        res->config_crc = fr_round_config_crc(r);
        cr_assert_eq(fr_round_accept(r, res, (int)(k % (uint32_t)lanes)), FR_OK, "%s", fr_errmsg());
    }
    fr_err e = fr_round_end(r, NULL);
    memcpy(after, fr_model_params_const(fr_round_model(r)), *ns * sizeof *after);
    fr_result_free(res);
    fr_update_free(u);
    fr_round_free(r);
    return e;
}

/* ------------------------------------------------------------------ the naive reference */

static void bubble(double *x, uint32_t n) {
    for (uint32_t i = 0; i < n; i++)
        for (uint32_t j = 0; j + 1 < n - i; j++)
            if (x[j] > x[j + 1]) { double t = x[j]; x[j] = x[j + 1]; x[j + 1] = t; }
}

static double naive_loc(double *x, uint32_t N, bool median, double beta) {
    if (N == 0) return 0;
    bubble(x, N);
    if (median) return N % 2 ? x[N / 2] : (x[N / 2 - 1] + x[N / 2]) / 2;
    uint32_t t = (uint32_t)floor(beta * N);
    if (2 * t >= N) t = (N - 1) / 2;
    double s = 0;
    for (uint32_t i = t; i < N - t; i++) s += x[i];
    return s / (N - 2 * t);
}

/* Client k's whole delta (dense, then each table's NI rows; zeros where untouched). */
static size_t whole(const hand *h, uint32_t k, double *x) {
    size_t at = 0;
    for (uint32_t i = 0; i < h->dense_len; i++) x[at++] = h->dense[k][i];
    for (uint32_t t = 0; t < h->n_tables; t++)
        for (uint32_t r = 0; r < NI; r++)
            for (uint32_t c = 0; c < h->widths[t]; c++) x[at++] = h->touched[k][t][r] ? h->rows[k][t][r][c] : 0;
    return at;
}

/* FedAvg's rule over the clients with factor f[k] > 0, each delta scaled by f[k]. */
static void naive_fedavg(const fr_fl_config *cfg, const hand *h, const double *f, double *d) {
    double W = 0;
    for (uint32_t k = 0; k < h->K; k++) if (f[k] > 0) W += (double)h->n[k];
    size_t at = 0;
    for (uint32_t i = 0; i < h->dense_len; i++, at++) {
        double s = 0;
        for (uint32_t k = 0; k < h->K; k++) if (f[k] > 0) s += f[k] * (double)h->n[k] * h->dense[k][i];
        d[at] = s / W;
    }
    for (uint32_t t = 0; t < h->n_tables; t++)
        for (uint32_t r = 0; r < NI; r++)
            for (uint32_t c = 0; c < h->widths[t]; c++, at++) {
                double s = 0, rw = 0;
                for (uint32_t k = 0; k < h->K; k++) {
                    if (!(f[k] > 0) || !h->touched[k][t][r]) continue;
                    double wk = cfg->item_sum ? 1.0 : (double)h->n[k];
                    s += f[k] * wk * h->rows[k][t][r][c];
                    rw += (double)h->n[k];
                }
                d[at] = cfg->item_sum ? s : cfg->row_norm ? (rw > 0 ? s / rw : 0) : s / W;
            }
}

/* The median of the positive values of x[0, n), 0 if none. */
static double naive_median_pos(const double *x, uint32_t n) {
    static double y[MAXK * NI];
    uint32_t m = 0;
    for (uint32_t i = 0; i < n; i++)
        if (x[i] > 0) y[m++] = x[i];
    return m ? naive_loc(y, m, true, 0) : 0;
}

/* rowguard:K:COS from its definition (fl.h, robust.c): dense values clipped per client to
 * K x the median dense norm, then n-weighted; per table, tau = K x the median of the
 * non-zero row-delta norms; per row, each contributor j counts as 1 / (1 + the others
 * whose delta of the row has cosine >= COS with it), its delta clipped to tau. */
static void naive_rowguard(const fr_fl_config *cfg, const hand *h, double *d) {
    uint32_t K = h->K;
    double Kx = cfg->agg_clip, cosmin = cfg->agg_beta, W = 0, norm[MAXK];
    for (uint32_t k = 0; k < K; k++) W += (double)h->n[k];
    size_t at = 0;
    for (uint32_t k = 0; k < K; k++) {
        double s = 0;
        for (uint32_t i = 0; i < h->dense_len; i++) s += (double)h->dense[k][i] * h->dense[k][i];
        norm[k] = sqrt(s);
    }
    double C = Kx * naive_median_pos(norm, K);
    for (uint32_t i = 0; i < h->dense_len; i++) {
        double s = 0;
        for (uint32_t k = 0; k < K; k++) s += (norm[k] > C ? C / norm[k] : 1.0) * (double)h->n[k] * h->dense[k][i];
        d[at++] = s / W;
    }
    for (uint32_t t = 0; t < h->n_tables; t++) {
        uint32_t w = h->widths[t];
        static double rn[MAXK][NI], all[MAXK * NI];
        uint32_t na = 0;
        for (uint32_t k = 0; k < K; k++)
            for (uint32_t r = 0; r < NI; r++) {
                double s = 0;
                for (uint32_t c = 0; c < w; c++) s += (double)h->rows[k][t][r][c] * h->rows[k][t][r][c];
                rn[k][r] = sqrt(s);
                if (h->touched[k][t][r]) all[na++] = rn[k][r];
            }
        double tau = Kx * naive_median_pos(all, na);
        for (uint32_t r = 0; r < NI; r++) {
            double g[MAXK], den = 0;
            for (uint32_t k = 0; k < K; k++) {
                if (!h->touched[k][t][r]) continue;
                uint32_t alike = 1;
                for (uint32_t j = 0; j < K; j++) {
                    if (j == k || !h->touched[j][t][r] || !(rn[k][r] > 0) || !(rn[j][r] > 0)) continue;
                    double dot = 0;
                    for (uint32_t c = 0; c < w; c++) dot += (double)h->rows[k][t][r][c] * h->rows[j][t][r][c];
                    alike += dot / (rn[k][r] * rn[j][r]) >= cosmin - 1e-5;
                }
                g[k] = 1.0 / alike;
                den += g[k] * (double)h->n[k];
            }
            for (uint32_t c = 0; c < w; c++) {
                double s = 0;
                for (uint32_t k = 0; k < K; k++) {
                    if (!h->touched[k][t][r]) continue;
                    double cl = rn[k][r] > tau ? tau / rn[k][r] : 1.0, wk = cfg->item_sum ? 1.0 : (double)h->n[k];
                    s += g[k] * wk * cl * h->rows[k][t][r][c];
                }
                d[at++] = cfg->item_sum ? s : cfg->row_norm ? (den > 0 ? s / den : 0) : s / W;
            }
        }
    }
}

/* The aggregate delta of every shared value, in the update layout. */
static void naive(const fr_fl_config *cfg, const hand *h, double *d) {
    uint32_t K = h->K, a = cfg->aggregator;
    double x[MAXK];
    if (a == FR_AGG_ROWGUARD) {
        naive_rowguard(cfg, h, d);
        return;
    }
    if (a == FR_AGG_MEDIAN || a == FR_AGG_TRIMMED || a == FR_AGG_ROWTRIM) {
        bool med = a == FR_AGG_MEDIAN;
        size_t at = 0;
        for (uint32_t i = 0; i < h->dense_len; i++) {
            for (uint32_t k = 0; k < K; k++) x[k] = h->dense[k][i];
            d[at++] = naive_loc(x, K, med, cfg->agg_beta);
        }
        for (uint32_t t = 0; t < h->n_tables; t++)
            for (uint32_t r = 0; r < NI; r++)
                for (uint32_t c = 0; c < h->widths[t]; c++) {
                    uint32_t N = 0, nr = 0;
                    for (uint32_t k = 0; k < K; k++) {
                        nr += h->touched[k][t][r];
                        bool in = h->touched[k][t][r] || (a != FR_AGG_ROWTRIM && !cfg->row_norm);
                        if (in) x[N++] = h->touched[k][t][r] ? h->rows[k][t][r][c] : 0.0;
                    }
                    double scale = 1;
                    if (a == FR_AGG_ROWTRIM) scale = cfg->item_sum ? nr : cfg->row_norm ? 1 : (double)nr / K;
                    else if (cfg->item_sum) scale = K;
                    d[at++] = nr ? scale * naive_loc(x, N, med, cfg->agg_beta) : 0;
                }
        return;
    }
    double f[MAXK];
    static double X[MAXK][MAXD + MAXT * NI * MAXW];
    size_t len = 0;
    for (uint32_t k = 0; k < K; k++) len = whole(h, k, X[k]);
    if (a == FR_AGG_NORMCLIP) {
        double norm[MAXK], sorted[MAXK];
        for (uint32_t k = 0; k < K; k++) {
            double s = 0;
            for (size_t j = 0; j < len; j++) s += X[k][j] * X[k][j];
            norm[k] = sorted[k] = sqrt(s);
        }
        double C = cfg->agg_clip > 0 ? cfg->agg_clip : naive_loc(sorted, K, true, 0);
        for (uint32_t k = 0; k < K; k++) f[k] = norm[k] > C * (1 + 1e-6) ? C / norm[k] : 1; /* slack: see fl.h */
    } else if (a == FR_AGG_KRUM || a == FR_AGG_MULTIKRUM) {
        double score[MAXK];
        int nn = (int)K - (int)cfg->agg_f - 2;
        if (nn < 1) nn = 1;
        if (nn > (int)K - 1) nn = (int)K - 1;
        for (uint32_t i = 0; i < K; i++) {
            double ds[MAXK];
            uint32_t m = 0;
            for (uint32_t j = 0; j < K; j++) {
                if (j == i) continue;
                double s = 0;
                for (size_t p = 0; p < len; p++) s += (X[i][p] - X[j][p]) * (X[i][p] - X[j][p]);
                ds[m++] = s;
            }
            bubble(ds, m);
            score[i] = 0;
            for (int j = 0; j < nn; j++) score[i] += ds[j];
        }
        uint32_t m = a == FR_AGG_KRUM ? 1 : cfg->agg_m < K ? cfg->agg_m : K;
        for (uint32_t k = 0; k < K; k++) f[k] = 0;
        for (uint32_t s = 0; s < m; s++) { /* the least score not yet taken; ties: the lower id */
            int best = -1;
            for (uint32_t k = 0; k < K; k++)
                if (f[k] == 0 && (best < 0 || score[k] < score[best])) best = (int)k;
            f[best] = 1;
        }
    } else {
        for (uint32_t k = 0; k < K; k++) f[k] = 1;
    }
    naive_fedavg(cfg, h, f, d);
}

/* The controller's round against the naive reference: the model moved by d (lr 1). */
static void check(const fr_fl_config *cfg, const hand *h, const char *what) {
    static float before[4096], after[4096];
    static double d[MAXD + MAXT * NI * MAXW];
    size_t ns;
    cr_assert_eq(run_round(cfg, h, 1, false, before, after, &ns), FR_OK, "%s: %s", what, fr_errmsg());
    naive(cfg, h, d);
    fr_model_config mc = model_cfg();
    fr_model *m = NULL;
    cr_assert_eq(fr_model_create(&m, &mc), FR_OK);
    size_t at = 0;
    for (int pass = 0; pass < 2; pass++) /* dense tensors first, then the item tables: the update's layout */
        for (int t = 0; t < fr_model_n_tensors(m); t++) {
            const fr_tensor *tt = fr_model_tensor(m, t);
            if (tt->kind != (pass ? FR_TENSOR_ITEM_TABLE : FR_TENSOR_DENSE)) continue;
            for (size_t j = 0; j < (size_t)tt->rows * tt->cols; j++, at++) {
                size_t p = tt->offset + j;
                float want = (float)((double)before[p] + d[at]);
                cr_assert(fabsf(after[p] - want) <= 2e-6f * (1 + fabsf(want)),
                          "%s: K %u, value %zu (tensor %s): %.9g, the reference %.9g (delta %.9g)", what, h->K, at,
                          tt->name, (double)after[p], (double)want, d[at]);
            }
        }
    fr_model_free(m);
}

static void set_agg(fr_fl_config *c, const char *s) { cr_assert_eq(fr_aggregator_parse(s, c), FR_OK, "%s", fr_errmsg()); }

static const char *const ALL[] = {"median", "trimmed:0.2", "trimmed:0.34", "trimmed:0", "rowtrim:0.2", "rowtrim:0",
                                  "rowtrim:0.45", "normclip", "normclip:0.7", "krum:0", "krum:1", "krum:5",
                                  "multikrum:1:2", "multikrum:0:3", "multikrum:2:50", "rowguard", "rowguard:1:0.8",
                                  "rowguard:0.5:1", "rowguard:1e6:0.9", "rowguard:2:0.3", NULL};

/* ------------------------------------------------------------------ tests */

Test(robust, a_round_by_hand) {
    /* GMF, 3 dense values (2 output weights and a bias), one item table of width 2; four
     * clients; only dense value 0 and item 0's first column are looked at. dense[0]:
     * 1, 2, 3, 10 (n 1, 1, 1, 1). Item 0, column 0: clients 0 and 1 touched it with 4
     * and 6, the others did not (zeros).
     *   median:        dense (2 + 3) / 2 = 2.5; item (sum rule) 4 x median{4, 6, 0, 0} = 4 x 2 = 8
     *   trimmed:0.25:  t = 1: dense (2 + 3) / 2 = 2.5; item 4 x (0 + 4) / 2 = 8
     *   rowtrim:0.25:  dense as trimmed 2.5; item over its 2 contributors: t = 0, mean 5, x 2 = 10
     *   krum:0:        n - f - 2 = 2 neighbours. Dense-only distances dominate; see the
     *                  reference test for the rest; here the mean check is enough.
     *   fedavg:        dense 16 / 4 = 4; item 4 + 6 = 10 */
    fr_fl_config c;
    fl_cfg(&c, 1);
    fr_model_config mc = model_cfg();
    fr_round *r = NULL;
    cr_assert_eq(fr_round_create(&r, &mc, &c, 4, 1), FR_OK);
    hand h;
    memset(&h, 0, sizeof h);
    shape_of(&h, r);
    fr_round_free(r);
    cr_assert_eq(h.n_tables, 1);
    cr_assert_eq(h.widths[0], 2);
    h.K = 4;
    const float dv[4] = {1, 2, 3, 10};
    for (uint32_t k = 0; k < 4; k++) {
        h.n[k] = 1;
        h.dense[k][0] = dv[k];
    }
    h.touched[0][0][0] = h.touched[1][0][0] = true;
    h.rows[0][0][0][0] = 4;
    h.rows[1][0][0][0] = 6;
    static const struct { const char *agg; double dense0, item0; } want[] = {
        {"median", 2.5, 8}, {"trimmed:0.25", 2.5, 8}, {"rowtrim:0.25", 2.5, 10}, {"fedavg", 4, 10}};
    static float before[4096], after[4096];
    for (int i = 0; i < 4; i++) {
        set_agg(&c, want[i].agg);
        size_t ns;
        cr_assert_eq(run_round(&c, &h, 1, false, before, after, &ns), FR_OK, "%s", fr_errmsg());
        fr_model *m = NULL;
        cr_assert_eq(fr_model_create(&m, &mc), FR_OK);
        size_t pd = SIZE_MAX, pi = SIZE_MAX;
        for (int t = 0; t < fr_model_n_tensors(m); t++) {
            const fr_tensor *tt = fr_model_tensor(m, t);
            if (tt->kind == FR_TENSOR_DENSE && pd == SIZE_MAX) pd = tt->offset;
            if (tt->kind == FR_TENSOR_ITEM_TABLE) pi = tt->offset;
        }
        fr_model_free(m);
        cr_assert_float_eq((double)after[pd] - before[pd], want[i].dense0, 1e-5, "%s dense: %g", want[i].agg,
                           (double)after[pd] - before[pd]);
        cr_assert_float_eq((double)after[pi] - before[pi], want[i].item0, 1e-5, "%s item: %g", want[i].agg,
                           (double)after[pi] - before[pi]);
    }
}

Test(robust, rowguard_by_hand) {
    /* GMF (item table of width 2), item rows summed, five clients on item 0 (nothing else):
     * clients 0-2 send the same row (3, 0) (a coordinated group), client 3 (0, 1), client
     * 4 (1, 1) (cosine 0.707 with both: not alike at 0.9).
     *   fedavg:              (9 + 0 + 1, 0 + 1 + 1) = (10, 2)
     *   rowguard:1e6:0.9:    the group counts once: 3 x (3, 0) / 3 + (0, 1) + (1, 1) = (4, 2)
     *   rowguard:0.5:0.9:    tau = 0.5 x median{3, 3, 3, 1, 1.414} = 1.5: the group's rows
     *                        clipped to (1.5, 0), once: (1.5 + 0 + 1, 0 + 1 + 1) = (2.5, 2)
     *   rowguard:1e6:1:      as 0.9 (the group is exactly alike)
     *   rowguard:1e6:0.5:    every pair but (3, 0)-(0, 1) is alike: the group's members have
     *                        3 alike others (2 + client 4), so 1/4 each: 9/4 = 2.25; client 3
     *                        has 1 (client 4): (0, 1)/2; client 4 has 4: (1, 1)/5.
     *                        (2.25 + 0.2, 0.5 + 0.2) = (2.45, 0.7) */
    fr_fl_config c;
    fl_cfg(&c, 1);
    fr_model_config mc = model_cfg();
    fr_round *r = NULL;
    cr_assert_eq(fr_round_create(&r, &mc, &c, 5, 1), FR_OK);
    static hand h;
    memset(&h, 0, sizeof h);
    shape_of(&h, r);
    fr_round_free(r);
    h.K = 5;
    const float rows[5][2] = {{3, 0}, {3, 0}, {3, 0}, {0, 1}, {1, 1}};
    for (uint32_t k = 0; k < 5; k++) {
        h.n[k] = 1 + k;
        h.touched[k][0][0] = true;
        h.rows[k][0][0][0] = rows[k][0];
        h.rows[k][0][0][1] = rows[k][1];
    }
    static const struct { const char *agg; double x, y; } want[] = {{"fedavg", 10, 2}, {"rowguard:1e6:0.9", 4, 2},
        {"rowguard:0.5:0.9", 2.5, 2}, {"rowguard:1e6:1", 4, 2}, {"rowguard:1e6:0.5", 2.45, 0.7}};
    static float before[4096], after[4096];
    for (int i = 0; i < 5; i++) {
        set_agg(&c, want[i].agg);
        size_t ns;
        cr_assert_eq(run_round(&c, &h, 1, false, before, after, &ns), FR_OK, "%s", fr_errmsg());
        fr_model *m = NULL;
        cr_assert_eq(fr_model_create(&m, &mc), FR_OK);
        size_t pi = SIZE_MAX;
        for (int t = 0; t < fr_model_n_tensors(m); t++)
            if (fr_model_tensor(m, t)->kind == FR_TENSOR_ITEM_TABLE) pi = fr_model_tensor(m, t)->offset;
        fr_model_free(m);
        cr_assert_float_eq((double)after[pi] - before[pi], want[i].x, 1e-5, "%s: %g", want[i].agg,
                           (double)after[pi] - before[pi]);
        cr_assert_float_eq((double)after[pi + 1] - before[pi + 1], want[i].y, 1e-5, "%s: %g", want[i].agg,
                           (double)after[pi + 1] - before[pi + 1]);
    }
}

Test(robust, every_aggregator_matches_the_naive_reference) {
    static const uint32_t Ks[] = {1, 2, 3, 4, 5, 8, 9};
    int cases = 0;
    for (int rule = 0; rule < 3; rule++)
        for (const char *const *a = ALL; *a; a++)
            for (size_t ki = 0; ki < sizeof Ks / sizeof *Ks; ki++)
                for (uint64_t seed = 1; seed <= 3; seed++) {
                    fr_fl_config c;
                    fl_cfg(&c, rule);
                    set_agg(&c, *a);
                    fr_model_config mc = model_cfg();
                    fr_round *r = NULL;
                    cr_assert_eq(fr_round_create(&r, &mc, &c, Ks[ki], 1), FR_OK);
                    static hand h;
                    shape_of(&h, r);
                    fr_round_free(r);
                    make(&h, Ks[ki], seed + 10 * ki, seed == 3); /* seed 3: every client the same update */
                    char what[96];
                    snprintf(what, sizeof what, "%s, item rule %s, seed %llu", *a,
                             rule == 1 ? "sum" : rule == 2 ? "rows" : "mean", (unsigned long long)seed);
                    check(&c, &h, what);
                    cases++;
                }
    cr_assert_gt(cases, 300);
}

Test(robust, selecting_every_result_is_fedavg_bit_for_bit) {
    for (int rule = 0; rule < 3; rule++)
        for (uint32_t K = 1; K <= 9; K += 4) {
            fr_fl_config c;
            fl_cfg(&c, rule);
            fr_model_config mc = model_cfg();
            fr_round *r = NULL;
            cr_assert_eq(fr_round_create(&r, &mc, &c, K, 1), FR_OK);
            static hand h;
            shape_of(&h, r);
            fr_round_free(r);
            make(&h, K, 77 + K, false);
            static float b0[4096], a0[4096], b1[4096], a1[4096];
            size_t ns;
            cr_assert_eq(run_round(&c, &h, 2, true, b0, a0, &ns), FR_OK);
            const char *sel[] = {"multikrum:0:9", "normclip:1e30", "multikrum:3:100"};
            for (int i = 0; i < 3; i++) {
                set_agg(&c, sel[i]);
                cr_assert_eq(run_round(&c, &h, 1, false, b1, a1, &ns), FR_OK);
                cr_assert(!memcmp(a0, a1, ns * sizeof *a0), "%s, K %u, rule %d: not fedavg's model", sel[i], K, rule);
                c.aggregator = 0;
                c.agg_clip = 0;
                c.agg_f = c.agg_m = 0;
            }
        }
}

Test(robust, lanes_and_arrival_order_change_no_bit) {
    for (const char *const *a = ALL; *a; a++) {
        fr_fl_config c;
        fl_cfg(&c, 1);
        set_agg(&c, *a);
        fr_model_config mc = model_cfg();
        fr_round *r = NULL;
        cr_assert_eq(fr_round_create(&r, &mc, &c, 8, 1), FR_OK);
        static hand h;
        shape_of(&h, r);
        fr_round_free(r);
        make(&h, 8, 5, false);
        static float b0[4096], a0[4096], b1[4096], a1[4096];
        size_t ns;
        cr_assert_eq(run_round(&c, &h, 1, false, b0, a0, &ns), FR_OK);
        cr_assert_eq(run_round(&c, &h, 3, true, b1, a1, &ns), FR_OK);
        cr_assert(!memcmp(a0, a1, ns * sizeof *a0), "%s: lanes or order changed the model", *a);
    }
}

/* The simulator on generated data: a few rounds with 1 and with 2 threads. */
static uint8_t *sim_model(const fr_dataset *d, const char *agg, int threads, size_t *n) {
    fr_model_config mc;
    fr_fl_config cfg;
    fr_model_config_default(&mc, FR_MODEL_NEUMF);
    fr_fl_config_default(&cfg, FR_MODEL_NEUMF);
    cfg.item_sum = true;
    cfg.clients_per_round = 20;
    set_agg(&cfg, agg);
    mc.n_users = fr_dataset_n_users(d);
    mc.n_items = fr_dataset_n_items(d);
    mc.seed = cfg.seed;
    fr_pool *pool = NULL;
    cr_assert_eq(fr_pool_create(&pool, threads), FR_OK);
    fr_sim *s = NULL;
    cr_assert_eq(fr_sim_create(&s, &mc, &cfg, d, pool), FR_OK, "%s", fr_errmsg());
    for (int i = 0; i < 3; i++) {
        fr_round_stats st;
        cr_assert_eq(fr_sim_round(s, &st), FR_OK, "%s: %s", agg, fr_errmsg());
    }
    uint8_t *b = NULL;
    fr_model_meta meta = {0};
    cr_assert_eq(fr_model_encode(fr_sim_model(s), &meta, &b, n), FR_OK);
    fr_sim_free(s);
    fr_pool_free(pool);
    return b;
}

Test(robust, the_simulator_is_bit_identical_across_thread_counts) {
    fr_dataset *d = tu_generate(60, 80, 1500, 9);
    size_t nf;
    uint8_t *fed = sim_model(d, "fedavg", 1, &nf);
    const char *aggs[] = {"median", "trimmed:0.2", "rowtrim:0.2", "normclip", "krum:2", "multikrum:2:10", "rowguard:1:0.5"};
    for (int i = 0; i < 7; i++) {
        size_t n1, n2;
        uint8_t *a = sim_model(d, aggs[i], 1, &n1), *b = sim_model(d, aggs[i], 2, &n2);
        cr_assert(n1 == n2 && !memcmp(a, b, n1), "%s: 1 and 2 threads differ", aggs[i]);
        cr_assert(n1 != nf || memcmp(a, fed, n1), "%s gave fedavg's model: did it run?", aggs[i]);
        free(a);
        free(b);
    }
    free(fed);
    fr_dataset_free(d);
}

Test(robust, names_checks_and_the_config_block) {
    fr_fl_config c;
    fr_fl_config_default(&c, FR_MODEL_NEUMF);
    const char *ok[] = {"fedavg", "median", "trimmed:0.1", "normclip", "normclip:2.5", "krum:3", "multikrum:2:7",
                        "rowtrim:0.3", "rowtrim", "rowguard", "rowguard:3", "rowguard:2.5:0.75", "rowguard:1e6:1", NULL};
    for (const char *const *s = ok; *s; s++) {
        set_agg(&c, *s);
        cr_assert_eq(fr_fl_config_check(&c), FR_OK, "%s: %s", *s, fr_errmsg());
        char buf[64];
        fr_aggregator_format(&c, buf, sizeof buf);
        fr_fl_config c2;
        fr_fl_config_default(&c2, FR_MODEL_NEUMF);
        set_agg(&c2, buf);
        cr_assert(c2.aggregator == c.aggregator && c2.agg_beta == c.agg_beta && c2.agg_clip == c.agg_clip &&
                      c2.agg_f == c.agg_f && c2.agg_m == c.agg_m,
                  "%s -> %s does not read back", *s, buf);
    }
    const char *bad[] = {"", "mean", "median:1", "trimmed", "trimmed:0.5", "trimmed:-0.1", "trimmed:x", "normclip:0",
                         "normclip:-1", "krum", "krum:-1", "krum:1:2", "multikrum:1", "multikrum:1:0", "rowtrim:0.5",
                         "fedavg:1", "rowguard:0", "rowguard:-1", "rowguard:2:0", "rowguard:2:1.5", "rowguard:2:0.9:1",
                         "rowguard:x", "rowguard:", "rowguard:2:", NULL};
    for (const char *const *s = bad; *s; s++) {
        fr_fl_config t = c;
        cr_assert_eq(fr_aggregator_parse(*s, &t), FR_ERR_INVALID, "'%s' accepted", *s);
        cr_assert(!memcmp(&t, &c, sizeof t), "'%s' changed the config", *s);
    }
    /* DP and robust rules do not mix; rowtrim counts decoys as contributors */
    set_agg(&c, "median");
    c.dp_clip = 1;
    cr_assert_eq(fr_fl_config_check(&c), FR_ERR_INVALID);
    cr_assert(strstr(fr_errmsg(), "differential privacy"), "%s", fr_errmsg());
    c.dp_clip = 0;
    set_agg(&c, "rowtrim:0.1");
    c.decoys = 1;
    cr_assert_eq(fr_fl_config_check(&c), FR_ERR_INVALID);
    cr_assert(strstr(fr_errmsg(), "decoy"), "%s", fr_errmsg());
    set_agg(&c, "rowguard");
    cr_assert_eq(fr_fl_config_check(&c), FR_ERR_INVALID);
    cr_assert(strstr(fr_errmsg(), "rowguard with decoys"), "%s", fr_errmsg());
    c.decoys = 0;
    /* the TASK carries the aggregator, and fedavg's config is the one without it */
    fr_model_config mc = model_cfg();
    set_agg(&c, "multikrum:2:5");
    fr_round *r = NULL, *r0 = NULL;
    cr_assert_eq(fr_round_create(&r, &mc, &c, 4, 1), FR_OK);
    fr_fl_config c0 = c;
    c0.aggregator = 0;
    c0.agg_f = c0.agg_m = 0;
    cr_assert_eq(fr_round_create(&r0, &mc, &c0, 4, 1), FR_OK);
    cr_assert_neq(fr_round_config_crc(r), fr_round_config_crc(r0));
    const uint8_t *tb;
    size_t tn;
    cr_assert_eq(fr_round_begin(r, NULL, NULL), FR_OK);
    cr_assert_eq(fr_round_task(r, 0, &tb, &tn), FR_OK);
    fr_task *t = NULL;
    cr_assert_eq(fr_task_create(&t), FR_OK);
    cr_assert_eq(fr_task_decode(t, tb, tn), FR_OK, "%s", fr_errmsg());
    const fr_fl_config *tc = fr_task_fl_config(t);
    cr_assert(tc->aggregator == FR_AGG_MULTIKRUM && tc->agg_f == 2 && tc->agg_m == 5);
    /* a saved state of one aggregator is refused by another, naming it */
    fr_round_abort(r);
    uint8_t *st;
    size_t sn;
    cr_assert_eq(fr_round_save(r, &st, &sn), FR_OK);
    cr_assert_eq(fr_round_load(r0, st, sn, "state"), FR_ERR_INVALID);
    cr_assert(strstr(fr_errmsg(), "aggregator"), "%s", fr_errmsg());
    free(st);
    fr_task_free(t);
    fr_round_free(r);
    fr_round_free(r0);
}

/* normclip:C under secure aggregation: the clients clip themselves before masking, so the
 * masked run is the plain one bit for bit (where the server re-checks each norm and finds
 * nothing above C), and the clip binds (not fedavg's model). */
static uint8_t *sim_secure(const fr_dataset *d, const char *agg, bool secure, size_t *n) {
    fr_model_config mc;
    fr_fl_config cfg;
    fr_model_config_default(&mc, FR_MODEL_BPR);
    fr_fl_config_default(&cfg, FR_MODEL_BPR);
    cfg.clients_per_round = 10;
    set_agg(&cfg, agg);
    mc.n_users = fr_dataset_n_users(d);
    mc.n_items = fr_dataset_n_items(d);
    mc.seed = cfg.seed;
    fr_pool *pool = NULL;
    cr_assert_eq(fr_pool_create(&pool, 2), FR_OK);
    fr_sim *s = NULL;
    cr_assert_eq(fr_sim_create(&s, &mc, &cfg, d, pool), FR_OK, "%s", fr_errmsg());
    fr_sim_set_secagg(s, secure);
    for (int i = 0; i < 2; i++) {
        fr_round_stats st;
        cr_assert_eq(fr_sim_round(s, &st), FR_OK, "%s%s: %s", agg, secure ? " secure" : "", fr_errmsg());
    }
    uint8_t *b = NULL;
    fr_model_meta meta = {0};
    cr_assert_eq(fr_model_encode(fr_sim_model(s), &meta, &b, n), FR_OK);
    fr_sim_free(s);
    fr_pool_free(pool);
    return b;
}

Test(robust, normclip_with_a_bound_runs_under_secure_aggregation) {
    fr_dataset *d = tu_generate(30, 40, 600, 4);
    size_t n0, n1, n2;
    uint8_t *fed = sim_secure(d, "fedavg", false, &n0), *plain = sim_secure(d, "normclip:0.0001", false, &n1),
            *masked = sim_secure(d, "normclip:0.0001", true, &n2);
    cr_assert(n1 == n2 && !memcmp(plain, masked, n1), "normclip:C masked differs from plain");
    cr_assert(n0 != n1 || memcmp(fed, plain, n1), "normclip:0.0001 clipped nothing");
    free(fed);
    free(plain);
    free(masked);
    fr_dataset_free(d);
}

Test(robust, secure_aggregation_and_merging_are_refused) {
    fr_dataset *d = tu_generate(30, 40, 600, 4);
    fr_model_config mc;
    fr_fl_config cfg;
    fr_model_config_default(&mc, FR_MODEL_BPR);
    fr_fl_config_default(&cfg, FR_MODEL_BPR);
    set_agg(&cfg, "median");
    mc.n_users = fr_dataset_n_users(d);
    mc.n_items = fr_dataset_n_items(d);
    fr_pool *pool = NULL;
    cr_assert_eq(fr_pool_create(&pool, 1), FR_OK);
    fr_sim *s = NULL;
    cr_assert_eq(fr_sim_create(&s, &mc, &cfg, d, pool), FR_OK, "%s", fr_errmsg());
    fr_sim_set_secagg(s, true);
    fr_round_stats st;
    cr_assert_neq(fr_sim_round(s, &st), FR_OK);
    cr_assert(strstr(fr_errmsg(), "secure aggregation"), "%s", fr_errmsg());
    fr_sim_free(s);
    fr_round *a = NULL, *b = NULL;
    cr_assert_eq(fr_round_create(&a, &mc, &cfg, mc.n_users, 1), FR_OK);
    cr_assert_eq(fr_round_create(&b, &mc, &cfg, mc.n_users, 1), FR_OK);
    cr_assert_eq(fr_round_begin(a, NULL, NULL), FR_OK);
    cr_assert_eq(fr_round_begin(b, NULL, NULL), FR_OK);
    cr_assert_eq(fr_round_merge(a, b), FR_ERR_INVALID);
    cr_assert(strstr(fr_errmsg(), "robust"), "%s", fr_errmsg());
    fr_round_free(a);
    fr_round_free(b);
    fr_pool_free(pool);
    fr_dataset_free(d);
}
