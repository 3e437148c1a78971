/* User-level differential privacy in the federation (DP-FedAvg, McMahan et al. 2018, with
 * adaptive clipping of Andrew et al. 2021): the config's DP rules, Poisson sampling, the
 * client's clipped quantization (and the local-DP baseline), and the server's part of a
 * round (noise on the sum, the clip's update). The math is the privacy layer's
 * (fr_dp_clip_quantize, fr_dp_add_noise); this file only wires it to rounds.
 *
 * Invariants:
 *   - DP off (dp_clip 0) changes nothing: no field is encoded, no stream drawn.
 *   - A DP client sends weight 1 and its whole update clipped so that the integers it
 *     sends have L2 norm <= floor(C 2^32) units, checked exactly (the server checks it
 *     again and refuses a RESULT beyond it, unless local noise is on).
 *   - The server's noise has std >= sigma_Delta C 2^32 units (rounded up to an integer
 *     scale) on EVERY shared coordinate, whether any client touched it or not, added to
 *     the integer sum before anything is divided; the divisor is the expected number of
 *     clients q N, never the actual count.
 *   - Sampling is Poisson with rate q, one draw per client from (seed, round, client,
 *     DP_SAMPLE): what the accountant assumes. */
#include <math.h>
#include <stdio.h>

#include "fedrec/privacy.h"
#include "fl/fl_internal.h"

__extension__ typedef unsigned __int128 u128; /* gcc and clang; -Wpedantic knows it as an extension */

#define NOISE_MAX 16777216.0 /* 2^24: sigma * C, so the noise scale in units stays <= 2^56 */
#define CLIP_MAX 65536.0

bool fr_fl_dp_on(const fr_fl_config *c) { return c->dp_clip > 0; }

double fr_fl_dp_rate(const fr_fl_config *c, uint32_t n) {
    double cpr = c->clients_per_round;
    if (cpr >= 1) return n == 0 ? 1.0 : cpr >= (double)n ? 1.0 : cpr / (double)n;
    return cpr > 0 ? cpr : 1.0;
}

double fr_fl_dp_delta(const fr_fl_config *c, uint32_t n) {
    if (c->dp_delta > 0) return c->dp_delta;
    return pow(n > 1 ? (double)n : 2.0, -1.1);
}

fr_err fr_fl_dp_epsilon(const fr_fl_config *c, uint32_t n, uint64_t rounds, double *eps) {
    *eps = NAN;
    if (!fr_fl_dp_on(c)) return fri_fail(FR_ERR_INVALID, "epsilon: the federation is not differentially private");
    if (rounds == 0) { *eps = 0; return FR_OK; }
    if (!(c->dp_noise > 0)) { *eps = INFINITY; return FR_OK; }
    return fr_dp_epsilon(fr_fl_dp_rate(c, n), c->dp_noise, rounds, fr_fl_dp_delta(c, n), NULL, 0, eps, NULL);
}

fr_err fri_fl_dp_check(const fr_fl_config *c) {
    if (!(c->dp_clip >= 0) || !(c->dp_clip <= CLIP_MAX))
        return fri_fail(FR_ERR_INVALID, "DP clip %g: expected 0 (off) or (0, %g]", c->dp_clip, CLIP_MAX);
    if (!fr_fl_dp_on(c)) {
        if (c->dp_noise != 0 || c->dp_quantile != 0 || c->dp_clip_lr != 0 || c->dp_count_noise != 0 ||
            c->dp_delta != 0 || c->ldp_noise != 0 || c->dp_seeded_noise)
            return fri_fail(FR_ERR_INVALID, "DP settings without a clip: differential privacy needs dp_clip > 0 "
                            "(the noise is a multiple of it)");
        return FR_OK;
    }
    if (!(c->dp_noise >= 0) || !(c->dp_noise * c->dp_clip <= NOISE_MAX))
        return fri_fail(FR_ERR_INVALID, "DP noise %g: expected >= 0 with noise x clip <= %g", c->dp_noise, NOISE_MAX);
    if (!(c->ldp_noise >= 0) || !(c->ldp_noise * c->dp_clip <= NOISE_MAX))
        return fri_fail(FR_ERR_INVALID, "local DP noise %g: expected >= 0 with noise x clip <= %g", c->ldp_noise,
                        NOISE_MAX);
    if (!(c->dp_quantile >= 0 && c->dp_quantile < 1))
        return fri_fail(FR_ERR_INVALID, "DP quantile %g: expected 0 (fixed clip) or (0, 1)", c->dp_quantile);
    if (!(c->dp_clip_lr >= 0) || !isfinite(c->dp_clip_lr) || !(c->dp_count_noise >= 0) || !isfinite(c->dp_count_noise))
        return fri_fail(FR_ERR_INVALID, "DP clip lr %g, count noise %g: expected finite values >= 0", c->dp_clip_lr,
                        c->dp_count_noise);
    if (c->dp_quantile == 0 && (c->dp_clip_lr != 0 || c->dp_count_noise != 0))
        return fri_fail(FR_ERR_INVALID, "the DP clip lr and count noise belong to adaptive clipping (a quantile)");
    if (!(c->dp_delta >= 0 && c->dp_delta < 1))
        return fri_fail(FR_ERR_INVALID, "DP delta %g: expected 0 (1/N^1.1) or (0, 1)", c->dp_delta);
    /* what would break the guarantee */
    if (c->row_norm)
        return fri_fail(FR_ERR_INVALID, "DP with row-normalised item aggregation: each row's divisor would count the "
                        "clients that touched it (data-dependent, not covered by the guarantee); use mean or sum");
    if (c->availability < 1)
        return fri_fail(FR_ERR_INVALID, "DP with availability %g: the accountant assumes Poisson sampling at rate q of "
                        "every client; availability < 1 changes it", c->availability);
    if (c->min_results > 0)
        return fri_fail(FR_ERR_INVALID, "DP with a quorum of %u: a round retried for too few results would reveal "
                        "how many took part; DP rounds take any number", c->min_results);
    return FR_OK;
}

bool fri_dp_secagg_plain(const fr_fl_config *c, uint32_t k) { return fr_fl_dp_on(c) && k < 2; }

/* ------------------------------------------------------------------ Poisson sampling */

fr_err fri_dp_sample(const fr_fl_config *c, uint32_t round, uint32_t n_clients, const uint32_t *avail, uint32_t n_avail,
                     double over_select, uint32_t *ids, uint32_t *k) {
    *k = 0;
    if (over_select != 0)
        return fri_fail(FR_ERR_INVALID, "DP rounds sample each client with probability q (Poisson); over-selection "
                        "(%g) would change the rate the accountant assumes", over_select);
    double q = fr_fl_dp_rate(c, n_clients);
    uint32_t m = 0;
    for (uint32_t j = 0; j < n_avail; j++) {
        uint32_t i = avail ? avail[j] : j;
        if (j && avail && avail[j] <= avail[j - 1])
            return fri_fail(FR_ERR_INVALID, "available clients: id %u follows %u, expected increasing ids", avail[j],
                            avail[j - 1]);
        if (q < 1) {
            fr_rng r;
            fr_rng_init(&r, c->seed, round, i, FR_PURPOSE_DP_SAMPLE);
            if (!(fr_rng_double(&r) < q)) continue;
        }
        ids[m++] = i;
    }
    *k = m;
    return FR_OK;
}

/* ------------------------------------------------------------------ the client */

static fr_err noise_key(uint8_t key[FR_DP_KEY_BYTES], const fr_fl_config *c, uint32_t round, uint32_t who,
                        uint32_t purpose) {
    if (c->dp_seeded_noise) {
        fr_dp_seeded_key(key, c->seed, round, who, purpose);
        return FR_OK;
    }
    return fr_dp_random_key(key);
}

/* ceil(sigma * C * 2^32) units, at least 1 for sigma > 0. */
static uint64_t units(double sigma, double clip) {
    if (!(sigma > 0)) return 0;
    double u = ceil(sigma * clip * FR_FL_FIXED_SCALE);
    return u < 1 ? 1 : u >= (double)FR_DP_MAX_SIGMA ? FR_DP_MAX_SIGMA : (uint64_t)u;
}

fr_err fri_dp_quantize(fr_result *res, const fr_update *u, const fr_fl_config *cfg, double clip, uint64_t bound) {
    if (!(clip > 0)) return fri_fail(FR_ERR_INVALID, "client %u: a DP round without a clip", u->client);
    fr_err e = fri_update_check_finite(u);
    if (e) return e;
    uint32_t widths[FR_UPDATE_MAX_TABLES];
    for (uint32_t t = 0; t < u->n_tables && t < FR_UPDATE_MAX_TABLES; t++) widths[t] = u->tables[t].width;
    if ((e = fri_result_reset(res, u->dense_len, u->n_tables, widths))) return e;
    res->weight = 1; /* user-level DP: every client counts alike */
    res->client = u->client;
    res->round = u->round;
    fr_dp_part parts[FR_UPDATE_MAX_TABLES + 1];
    parts[0] = (fr_dp_part){u->dense, res->dense, u->dense_len};
    for (uint32_t t = 0; t < u->n_tables; t++) {
        const fr_update_table *tb = &u->tables[t];
        if ((e = fri_result_table_resize(res, t, tb->count))) return e;
        if (tb->count) memcpy(res->tables[t].ids, tb->ids, (size_t)tb->count * sizeof *tb->ids);
        parts[t + 1] = (fr_dp_part){tb->values, res->tables[t].values, (size_t)tb->count * tb->width};
    }
    double norm;
    if ((e = fr_dp_clip_quantize(parts, u->n_tables + 1, clip, FR_FL_FIXED_SCALE, &norm)))
        return fri_fail_prefix(e, "client %u", u->client);
    res->flags = norm <= clip ? FR_RESULT_UNCLIPPED : 0;
    if (bound == 0) bound = fr_fl_fixed_bound(1);
    if (cfg->ldp_noise > 0) { /* the local baseline: noise on everything the client sends */
        uint8_t key[FR_DP_KEY_BYTES];
        if ((e = noise_key(key, cfg, u->round, u->client, FR_PURPOSE_LDP))) return e;
        uint64_t nonce = 0, s = units(cfg->ldp_noise, clip);
        for (uint32_t p = 0; p <= u->n_tables && !e; p++) {
            e = fr_dp_add_noise(parts[p].q, parts[p].n, s, key, nonce, NULL);
            nonce += fr_dp_noise_chunks(parts[p].n);
        }
        memset(key, 0, sizeof key);
        if (e) return e;
        /* within the round's bound (post-processing of the noisy values) */
        for (uint32_t p = 0; p <= u->n_tables; p++)
            for (size_t i = 0; i < parts[p].n; i++) {
                int64_t v = parts[p].q[i];
                parts[p].q[i] = v > (int64_t)bound ? (int64_t)bound : v < -(int64_t)bound ? -(int64_t)bound : v;
            }
    }
    for (uint32_t p = 0; p <= u->n_tables; p++)
        if (fri_fl_max_abs(parts[p].q, parts[p].n) > bound)
            return fri_fail(FR_ERR_RANGE, "client %u: its clipped update is beyond round %u's fixed-point bound",
                            u->client, u->round);
    return FR_OK;
}

/* ------------------------------------------------------------------ the server */

fr_err fri_dp_server_init(fri_dp_server *d, const fr_fl_config *c, uint32_t n_clients, int n_lanes) {
    memset(d, 0, sizeof *d);
    if (!fr_fl_dp_on(c)) return FR_OK;
    d->on = true;
    d->clip = c->dp_clip;
    d->expected = fr_fl_dp_rate(c, n_clients) * (double)n_clients;
    if (d->expected <= 0) d->expected = 1;
    d->sigma_delta = c->dp_noise;
    if (c->dp_quantile > 0 && c->dp_noise > 0) {
        d->sigma_count = c->dp_count_noise > 0 ? c->dp_count_noise : d->expected / 20.0;
        /* Andrew et al.: the count (bits centred to +-1/2, sensitivity 1/2) and the sum
         * compose to the noise multiplier sigma: sigma_Delta^-2 + (2 sigma_b)^-2 = sigma^-2 */
        double a = 1.0 / (c->dp_noise * c->dp_noise), b = 1.0 / (4.0 * d->sigma_count * d->sigma_count);
        if (!(a > b))
            return fri_fail(FR_ERR_INVALID, "adaptive clipping: the count's noise %g is too small for noise %g (it "
                            "needs 2 x count noise > noise; default: expected clients / 20 = %g)", d->sigma_count,
                            c->dp_noise, d->expected / 20.0);
        d->sigma_delta = 1.0 / sqrt(a - b);
    }
    d->n_lanes = n_lanes;
    d->unclipped = fri_calloc((size_t)n_lanes, sizeof *d->unclipped);
    return d->unclipped ? FR_OK : FR_ERR_NOMEM;
}

void fri_dp_server_free(fri_dp_server *d) {
    fri_free(d->unclipped);
    d->unclipped = NULL;
}

double fri_dp_begin(fri_dp_server *d, uint64_t bound) {
    if (!d->on) return 0;
    memset(d->unclipped, 0, (size_t)d->n_lanes * sizeof *d->unclipped);
    /* every value and the round's sum stay within the bound; the noise's scale within
     * the sampler's: a smaller clip is always safe (less sensitivity, noise follows it) */
    double c = d->clip, cap = (double)bound * (1.0 - 1e-9) / FR_FL_FIXED_SCALE;
    if (c > cap) c = cap;
    if (d->sigma_delta > 0 && d->sigma_delta * c > NOISE_MAX) c = NOISE_MAX / d->sigma_delta;
    d->round_clip = c;
    return c;
}

/* sum of squares of a view's values (native or little-endian), saturating. */
static u128 view_norm2(const fri_result_view *v) {
    u128 s = 0, cap = ~(u128)0;
    const void *arrs[FR_UPDATE_MAX_TABLES + 1];
    size_t ns[FR_UPDATE_MAX_TABLES + 1];
    arrs[0] = v->dense;
    ns[0] = v->dense_len;
    for (uint32_t t = 0; t < v->n_tables; t++) {
        arrs[t + 1] = v->tables[t].values;
        ns[t + 1] = (size_t)v->tables[t].count * v->tables[t].width;
    }
    for (uint32_t p = 0; p <= v->n_tables; p++)
        for (size_t i = 0; i < ns[p]; i++) {
            int64_t x = v->native ? ((const int64_t *)arrs[p])[i]
                                  : (int64_t)fri_get_u64((const uint8_t *)arrs[p] + 8 * i);
            uint64_t a = x < 0 ? 0 - (uint64_t)x : (uint64_t)x;
            u128 sq = (u128)a * a;
            s = s > cap - sq ? cap : s + sq;
        }
    return s;
}

fr_err fri_dp_check_result(const fri_dp_server *d, const fr_fl_config *c, const fri_result_view *v) {
    if (!d->on) {
        if (v->flags)
            return fri_fail(FR_ERR_INVALID, "RESULT of client %u refused: flags 0x%x in a federation without DP",
                            v->client, v->flags);
        return FR_OK;
    }
    if (c->ldp_noise > 0) return FR_OK; /* noisy values: their norm is not bounded */
    uint64_t lim = (uint64_t)floor(d->round_clip * FR_FL_FIXED_SCALE);
    if (view_norm2(v) > (u128)lim * lim)
        return fri_fail(FR_ERR_RANGE, "RESULT of client %u refused: its update's norm is beyond the round's clip %g",
                        v->client, d->round_clip);
    return FR_OK;
}

void fri_dp_count(fri_dp_server *d, int lane, uint32_t flags) {
    if (d->on && (flags & FR_RESULT_UNCLIPPED)) d->unclipped[lane]++;
}

fr_err fri_dp_end(fri_dp_server *d, const fr_fl_config *c, uint32_t round, int64_t *sum, size_t n, uint32_t results,
                  fr_round_stats *st) {
    st->dp_clip = d->round_clip;
    st->dp_unclipped = NAN;
    uint8_t key[FR_DP_KEY_BYTES];
    fr_err e = FR_OK;
    if (d->sigma_delta > 0) {
        if ((e = noise_key(key, c, round, 0, FR_PURPOSE_DP))) return e;
        e = fr_dp_add_noise(sum, n, units(d->sigma_delta, d->round_clip), key, 0, d->pool);
        memset(key, 0, sizeof key);
        if (e) return e;
    }
    if (c->dp_quantile > 0) {
        uint64_t u = 0;
        for (uint32_t k = 0; k < d->n_lanes; k++) u += d->unclipped[k];
        /* sum of (b - 1/2), doubled to stay on the integers, plus N_Z(0, (2 sigma_b)^2) */
        int64_t twice = 2 * (int64_t)u - (int64_t)results;
        if (d->sigma_count > 0) {
            if ((e = noise_key(key, c, round, 1, FR_PURPOSE_DP))) return e;
            fr_dp_stream *s = NULL;
            e = fr_dp_stream_create(&s, key, 0);
            memset(key, 0, sizeof key);
            if (e) return e;
            uint64_t sc = (uint64_t)ceil(2.0 * d->sigma_count);
            twice += fr_dp_discrete_gaussian(s, sc < 1 ? 1 : sc);
            fr_dp_stream_free(s);
        }
        double frac = (double)twice / 2.0 / d->expected + 0.5;
        double lr = c->dp_clip_lr > 0 ? c->dp_clip_lr : 0.2;
        d->clip = d->clip * exp(-lr * (frac - c->dp_quantile));
        if (d->clip > CLIP_MAX) d->clip = CLIP_MAX;
        if (d->clip < 1e-9) d->clip = 1e-9;
        st->dp_unclipped = frac;
    }
    return FR_OK;
}
