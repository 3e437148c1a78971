/* The federation config: defaults, checks, strategy names, its encoding (the TASK's
 * config block and the round state carry it), and client sampling, which depends on the
 * config alone (so every runtime samples the same clients). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "fl/fl_internal.h"
#include "model/model_internal.h"

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
    /* by what the kind is trained on, never by which kind it is */
    fr_model_config m;
    fr_model_config_default(&m, kind);
    c->negatives = m.loss == FR_LOSS_MSE ? 0 : m.loss == FR_LOSS_BPR ? 1 : 4;
    if (fr_model_kind_is_explicit(kind)) {
        fr_optim_config_default(&c->local, FR_OPTIM_SGD);
        c->local.lr = 0.1f;
    } else {
        fr_optim_config_default(&c->local, FR_OPTIM_ADAM);
        c->local.lr = 0.001f;
    }
    c->clients_per_round = 0;
    c->availability = 1.0;
    c->min_results = 0;
    c->seed = 1;
    c->confidence_alpha = 0; /* weights off; the presets turn them on for weighted data */
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
    if (c->neg_sampler > FR_NEG_POPULARITY)
        return fri_fail(FR_ERR_INVALID, "negative sampler %u: expected 0 (uniform) or 1 (pop)", c->neg_sampler);
    if (!(c->neg_pop_exp >= 0 && c->neg_pop_exp <= 4))
        return fri_fail(FR_ERR_INVALID, "popularity exponent %g: expected (0, 4], or 0 for 1", (double)c->neg_pop_exp);
    if (c->neg_sampler == FR_NEG_UNIFORM && c->neg_pop_exp != 0)
        return fri_fail(FR_ERR_INVALID, "popularity exponent %g with uniform negatives: set it with popularity "
                        "negatives only", (double)c->neg_pop_exp);
    if (c->seq_stride > 1024) /* the longest history a model reads; the client checks its model's L */
        return fri_fail(FR_ERR_INVALID, "sequence stride %u: expected 0 (the history length) or 1..1024", c->seq_stride);
    if (!(c->clients_per_round >= 0) || !isfinite(c->clients_per_round))
        return fri_fail(FR_ERR_INVALID, "clients per round %g: expected 0 (all), a fraction < 1 or a count",
                        c->clients_per_round);
    if (!(c->availability > 0 && c->availability <= 1))
        return fri_fail(FR_ERR_INVALID, "availability %g: expected (0, 1]", c->availability);
    if (!(c->item_lr_decay > 0 && c->item_lr_decay <= 1))
        return fri_fail(FR_ERR_INVALID, "item lr decay %g: expected (0, 1]", (double)c->item_lr_decay);
    if (!(c->confidence_alpha >= 0) || !isfinite(c->confidence_alpha))
        return fri_fail(FR_ERR_INVALID, "confidence alpha %g: expected a finite number >= 0",
                        (double)c->confidence_alpha);
    fr_err de = fri_fl_dp_check(c);
    if (de) return de;
    if (!(c->decoys >= 0 && c->decoys <= FR_FL_MAX_DECOYS))
        return fri_fail(FR_ERR_INVALID, "decoys %g: expected 0 (off) or (0, %g] decoy items per interaction",
                        c->decoys, FR_FL_MAX_DECOYS);
    if (c->decoys > 0 && c->row_norm)
        return fri_fail(FR_ERR_INVALID, "decoys with row-normalised item aggregation: each decoy would count in its "
                        "row's divisor; use mean or sum");
    if (c->decoy_zero && c->decoys == 0)
        return fri_fail(FR_ERR_INVALID, "zero-valued decoys without decoys: set decoys > 0");
    if (c->compress_up > FR_COMPRESS_Q16 || c->compress_down > FR_COMPRESS_Q16)
        return fri_fail(FR_ERR_INVALID, "compression %u up, %u down: expected 0 (none), 1 (q8) or 2 (q16)",
                        c->compress_up, c->compress_down);
    if ((c->compress_up || c->compress_topk) && fr_fl_dp_on(c))
        return fri_fail(FR_ERR_INVALID, "uplink compression with DP: a quantized or sparsified update is no longer the "
                        "clipped one the server checks and the noise is calibrated for; compress the downlink only");
    fr_err ae = fri_fl_agg_check(c);
    if (ae) return ae;
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

/* ------------------------------------------------------------------ sampling */

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

fr_err fr_fl_sample(const fr_fl_config *c, uint32_t round, uint32_t n_clients, uint32_t *ids, uint32_t *k) {
    if (fr_fl_dp_on(c)) return fri_dp_sample(c, round, n_clients, NULL, n_clients, 0.0, ids, k); /* Poisson */
    uint32_t want;
    return fri_fl_sample_among(c, round, NULL, n_clients, 0.0, ids, k, &want);
}

uint32_t fri_fl_want(const fr_fl_config *c, uint32_t n) {
    double cpr = c->clients_per_round;
    if (cpr >= 1) return cpr < (double)n ? (uint32_t)cpr : n;
    if (cpr > 0 && n > 0) {
        double f = ceil(cpr * (double)n);
        return f < 1 ? 1 : f > n ? n : (uint32_t)f;
    }
    return n;
}

fr_err fri_fl_sample_among(const fr_fl_config *c, uint32_t round, const uint32_t *avail, uint32_t n_avail,
                           double over_select, uint32_t *ids, uint32_t *k, uint32_t *want_out) {
    *k = 0;
    *want_out = 0;
    if (!(over_select >= 0) || !isfinite(over_select))
        return fri_fail(FR_ERR_INVALID, "over-selection %g: expected a finite value >= 0", over_select);
    for (uint32_t i = 1; avail && i < n_avail; i++)
        if (avail[i] <= avail[i - 1])
            return fri_fail(FR_ERR_INVALID, "available clients: id %u follows %u, expected increasing ids", avail[i],
                            avail[i - 1]);
    /* the availability draws: a client's own stream, so a subset of ids draws as the whole */
    uint32_t na = 0;
    for (uint32_t j = 0; j < n_avail; j++) {
        uint32_t i = avail ? avail[j] : j;
        if (c->availability < 1) {
            fr_rng r;
            fr_rng_init(&r, c->seed, round, i, FR_PURPOSE_AVAIL);
            if (!(fr_rng_double(&r) < c->availability)) continue;
        }
        ids[na++] = i;
    }
    uint32_t want = fri_fl_want(c, na);
    /* over-selection: ceil((1 + o) * want), capped at the available count; the product
     * is taken as want + ceil(o * want) less a relative 1e-12, so 0.1 of 10 is 1, not 2 */
    uint32_t pick_n = want;
    if (over_select > 0 && want < na) {
        double extra = over_select * (double)want;
        extra = ceil(extra - extra * 1e-12);
        pick_n = extra >= (double)(na - want) ? na : want + (uint32_t)extra;
    }
    if (pick_n < na) {
        uint32_t *pick = fri_malloc((size_t)pick_n * sizeof *pick + 1);
        if (!pick) return FR_ERR_NOMEM;
        fr_rng r;
        fr_rng_init(&r, c->seed, round, 0, FR_PURPOSE_SAMPLE);
        fr_err e = fr_rng_sample(&r, na, pick_n, pick);
        if (e) { fri_free(pick); return e; }
        qsort(pick, pick_n, sizeof *pick, cmp_u32);
        for (uint32_t i = 0; i < pick_n; i++) ids[i] = ids[pick[i]]; /* pick increasing: in place is safe */
        fri_free(pick);
    }
    *k = pick_n;
    *want_out = want;
    return FR_OK;
}

/* ------------------------------------------------------------------ encoding */

static void put_optim(fri_buf *b, const fr_optim_config *o) {
    fri_buf_u32(b, (uint32_t)o->kind);
    fri_buf_f32(b, o->lr);
    fri_buf_f32(b, o->momentum);
    fri_buf_f32(b, o->beta1);
    fri_buf_f32(b, o->beta2);
    fri_buf_f32(b, o->eps);
    fri_buf_f32(b, o->weight_decay);
    fri_buf_u32(b, o->sparse_rows ? 1 : 0);
}

static fr_err get_optim(fri_rd *r, fr_optim_config *o, const char *what) {
    uint32_t kind, sparse;
    fr_err e;
    if ((e = fri_rd_u32(r, &kind, what)) || (e = fri_rd_f32(r, &o->lr, what)) ||
        (e = fri_rd_f32(r, &o->momentum, what)) || (e = fri_rd_f32(r, &o->beta1, what)) ||
        (e = fri_rd_f32(r, &o->beta2, what)) || (e = fri_rd_f32(r, &o->eps, what)) ||
        (e = fri_rd_f32(r, &o->weight_decay, what)) || (e = fri_rd_u32(r, &sparse, what)))
        return e;
    if (sparse > 1) return fri_fail(FR_ERR_FORMAT, "%s: %s: sparse flag %u, expected 0 or 1", r->name, what, sparse);
    o->kind = (fr_optim_kind)kind;
    o->sparse_rows = sparse != 0;
    return FR_OK;
}

/* Flag bit 4: a confidence alpha (f32, > 0) follows the seed. Without it alpha is 0, so
 * a federation without weights encodes as builds before weights did (the same TASK bytes
 * and config CRC: their checkpoints resume), and each config has one encoding. */
#define FLAG_ALPHA 16u
/* Flag bit 5: differential privacy; after the alpha (if any): f64 clip, noise, quantile,
 * clip lr, count noise, delta, local noise, then u32 DP flags (bit 0: seeded noise).
 * Without DP every DP field is 0 (fri_fl_dp_check), so again one encoding per config and
 * the bytes of builds before DP. */
#define FLAG_DP 32u
#define FLAG_HIDE 64u /* decoys: f64 decoys | u32 decoy flags (bit 0: zero values) */
#define FLAG_COMPRESS 128u /* compression: u32 up | u32 top-k | u32 down (not all 0) */
#define FLAG_ROBUST 256u /* a robust aggregator: u32 aggregator | f64 beta | f64 clip | u32 f | u32 m */
#define FLAG_POPNEG 512u /* popularity negatives (FR_NEG_POPULARITY): f32 exponent */
#define FLAG_STRIDE 1024u /* a sequence model's window stride (seq_stride > 0): u32, last */

static bool compressed(const fr_fl_config *c) { return c->compress_up || c->compress_topk || c->compress_down; }

void fri_fl_config_put(fri_buf *b, const fr_fl_config *c) {
    fri_buf_u32(b, (uint32_t)c->strategy);
    fri_buf_f32(b, c->server_lr);
    fri_buf_f32(b, c->server_momentum);
    fri_buf_f32(b, c->beta1);
    fri_buf_f32(b, c->beta2);
    fri_buf_f32(b, c->tau);
    fri_buf_f32(b, c->mu);
    fri_buf_u32(b, (c->row_norm ? 1u : 0u) | (c->item_sum ? 2u : 0u) | (c->keep_private_optim ? 4u : 0u) |
                       (c->dense_steps ? 8u : 0u) | (c->confidence_alpha != 0 ? FLAG_ALPHA : 0u) |
                       (fr_fl_dp_on(c) ? FLAG_DP : 0u) | (c->decoys > 0 ? FLAG_HIDE : 0u) |
                       (compressed(c) ? FLAG_COMPRESS : 0u) | (c->aggregator ? FLAG_ROBUST : 0u) |
                       (c->neg_sampler == FR_NEG_POPULARITY ? FLAG_POPNEG : 0u) |
                       (c->seq_stride ? FLAG_STRIDE : 0u));
    fri_buf_u32(b, c->local_epochs);
    fri_buf_u32(b, c->batch);
    fri_buf_u32(b, c->negatives);
    put_optim(b, &c->local);
    put_optim(b, &c->item_local);
    fri_buf_f32(b, c->item_lr_decay);
    uint8_t d[8];
    fri_put_f64(d, c->clients_per_round);
    fri_buf_put(b, d, 8);
    fri_put_f64(d, c->availability);
    fri_buf_put(b, d, 8);
    fri_buf_u32(b, c->min_results);
    fri_buf_u64(b, c->seed);
    if (c->confidence_alpha != 0) fri_buf_f32(b, c->confidence_alpha);
    if (fr_fl_dp_on(c)) {
        const double v[7] = {c->dp_clip, c->dp_noise, c->dp_quantile, c->dp_clip_lr, c->dp_count_noise, c->dp_delta,
                             c->ldp_noise};
        for (int i = 0; i < 7; i++) {
            fri_put_f64(d, v[i]);
            fri_buf_put(b, d, 8);
        }
        fri_buf_u32(b, c->dp_seeded_noise ? 1u : 0u);
    }
    if (c->decoys > 0) {
        fri_put_f64(d, c->decoys);
        fri_buf_put(b, d, 8);
        fri_buf_u32(b, c->decoy_zero ? 1u : 0u);
    }
    if (compressed(c)) {
        fri_buf_u32(b, c->compress_up);
        fri_buf_u32(b, c->compress_topk);
        fri_buf_u32(b, c->compress_down);
    }
    if (c->aggregator) {
        fri_buf_u32(b, c->aggregator);
        fri_put_f64(d, c->agg_beta);
        fri_buf_put(b, d, 8);
        fri_put_f64(d, c->agg_clip);
        fri_buf_put(b, d, 8);
        fri_buf_u32(b, c->agg_f);
        fri_buf_u32(b, c->agg_m);
    }
    if (c->neg_sampler == FR_NEG_POPULARITY) fri_buf_f32(b, c->neg_pop_exp);
    if (c->seq_stride) fri_buf_u32(b, c->seq_stride);
}

fr_err fri_fl_config_get(fri_rd *r, fr_fl_config *c) {
    memset(c, 0, sizeof *c);
    uint32_t strategy, flags;
    fr_err e;
    if ((e = fri_rd_u32(r, &strategy, "strategy")) || (e = fri_rd_f32(r, &c->server_lr, "server lr")) ||
        (e = fri_rd_f32(r, &c->server_momentum, "server momentum")) || (e = fri_rd_f32(r, &c->beta1, "beta1")) ||
        (e = fri_rd_f32(r, &c->beta2, "beta2")) || (e = fri_rd_f32(r, &c->tau, "tau")) ||
        (e = fri_rd_f32(r, &c->mu, "mu")) || (e = fri_rd_u32(r, &flags, "flags")) ||
        (e = fri_rd_u32(r, &c->local_epochs, "local epochs")) || (e = fri_rd_u32(r, &c->batch, "batch")) ||
        (e = fri_rd_u32(r, &c->negatives, "negatives")) || (e = get_optim(r, &c->local, "local optimizer")) ||
        (e = get_optim(r, &c->item_local, "item optimizer")) ||
        (e = fri_rd_f32(r, &c->item_lr_decay, "item lr decay")) ||
        (e = fri_rd_f64(r, &c->clients_per_round, "clients per round")) ||
        (e = fri_rd_f64(r, &c->availability, "availability")) ||
        (e = fri_rd_u32(r, &c->min_results, "min results")) || (e = fri_rd_u64(r, &c->seed, "seed")))
        return e;
    if (flags > 2047) return fri_fail(FR_ERR_FORMAT, "%s: federation flags 0x%x, expected 0..0x7ff", r->name, flags);
    if (flags & FLAG_ALPHA) {
        if ((e = fri_rd_f32(r, &c->confidence_alpha, "confidence alpha"))) return e;
        if (!(c->confidence_alpha > 0) || !isfinite(c->confidence_alpha))
            return fri_fail(FR_ERR_FORMAT, "%s: confidence alpha %g, expected a finite number > 0 (0 is not written)",
                            r->name, (double)c->confidence_alpha);
    }
    if (flags & FLAG_DP) {
        double *v[7] = {&c->dp_clip, &c->dp_noise, &c->dp_quantile, &c->dp_clip_lr, &c->dp_count_noise, &c->dp_delta,
                        &c->ldp_noise};
        uint32_t dpf;
        for (int i = 0; i < 7; i++)
            if ((e = fri_rd_f64(r, v[i], "DP settings"))) return e;
        if ((e = fri_rd_u32(r, &dpf, "DP flags"))) return e;
        if (dpf > 1) return fri_fail(FR_ERR_FORMAT, "%s: DP flags 0x%x, expected 0 or 1", r->name, dpf);
        if (!(c->dp_clip > 0))
            return fri_fail(FR_ERR_FORMAT, "%s: DP clip %g, expected > 0 (no DP is not written)", r->name, c->dp_clip);
        c->dp_seeded_noise = dpf & 1;
    }
    if (flags & FLAG_HIDE) {
        uint32_t hf;
        if ((e = fri_rd_f64(r, &c->decoys, "decoys")) || (e = fri_rd_u32(r, &hf, "decoy flags"))) return e;
        if (hf > 1) return fri_fail(FR_ERR_FORMAT, "%s: decoy flags 0x%x, expected 0 or 1", r->name, hf);
        if (!(c->decoys > 0))
            return fri_fail(FR_ERR_FORMAT, "%s: decoys %g, expected > 0 (none is not written)", r->name, c->decoys);
        c->decoy_zero = hf & 1;
    }
    if (flags & FLAG_COMPRESS) {
        if ((e = fri_rd_u32(r, &c->compress_up, "uplink compression")) ||
            (e = fri_rd_u32(r, &c->compress_topk, "top-k")) || (e = fri_rd_u32(r, &c->compress_down, "downlink compression")))
            return e;
        if (!compressed(c))
            return fri_fail(FR_ERR_FORMAT, "%s: compression flag without compression (none is not written)", r->name);
    }
    if (flags & FLAG_ROBUST) {
        if ((e = fri_rd_u32(r, &c->aggregator, "aggregator")) || (e = fri_rd_f64(r, &c->agg_beta, "aggregator beta")) ||
            (e = fri_rd_f64(r, &c->agg_clip, "aggregator clip")) || (e = fri_rd_u32(r, &c->agg_f, "aggregator f")) ||
            (e = fri_rd_u32(r, &c->agg_m, "aggregator m")))
            return e;
        if (c->aggregator == FR_AGG_FEDAVG)
            return fri_fail(FR_ERR_FORMAT, "%s: robust flag with fedavg (fedavg is not written)", r->name);
    }
    if (flags & FLAG_POPNEG) {
        if ((e = fri_rd_f32(r, &c->neg_pop_exp, "popularity exponent"))) return e;
        c->neg_sampler = FR_NEG_POPULARITY;
    }
    if (flags & FLAG_STRIDE) {
        if ((e = fri_rd_u32(r, &c->seq_stride, "sequence stride"))) return e;
        if (c->seq_stride == 0)
            return fri_fail(FR_ERR_FORMAT, "%s: sequence stride 0 (the default is not written)", r->name);
    }
    c->strategy = (fr_strategy)strategy;
    c->row_norm = flags & 1;
    c->item_sum = (flags >> 1) & 1;
    c->keep_private_optim = (flags >> 2) & 1;
    c->dense_steps = (flags >> 3) & 1;
    if (fr_fl_config_check(c)) return fri_fail_prefix(FR_ERR_FORMAT, "%s: bad federation config", r->name);
    return FR_OK;
}

fr_err fri_fl_config_block(fri_buf *b, const fr_model_config *mcfg, const fr_fl_config *cfg) {
    fr_model_config m = *mcfg;
    m.n_users = 1;
    fri_model_config_put(b, &m);
    fri_fl_config_put(b, cfg);
    return b->err;
}

fr_err fri_fl_config_block_get(fri_rd *r, fr_model_config *mcfg, fr_fl_config *cfg) {
    fr_err e = fri_model_config_get(r, mcfg);
    if (!e) e = fri_fl_config_get(r, cfg);
    if (!e) e = fri_rd_end(r, "the config block");
    return e;
}
