/* Specs of the simulator's attacks and faults (fedrec/runtime.h): parsing and checks,
 * and the promotion attack's fake clients, shared by the simulator (sim.c) and the
 * networked server (net/server.c), which both run them beside their round controller.
 * What the compromised real clients and the failing ones do is in sim.c, beside the
 * clients' steps. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/core.h"
#include "fedrec/runtime.h"
#include "fl/fl_internal.h"
#include "runtime/runtime_internal.h"

#define SPEC_MAX 6

/* Splits s at ':' into at most SPEC_MAX parts (copied into buf). */
static int split_spec(const char *s, char *buf, size_t cap, char **part) {
    snprintf(buf, cap, "%s", s);
    int n = 0;
    char *p = buf;
    for (;;) {
        if (n == SPEC_MAX) return n + 1;
        part[n++] = p;
        char *c = strchr(p, ':');
        if (!c) break;
        *c = 0;
        p = c + 1;
    }
    return n;
}

static bool num(const char *s, double *v) {
    char *end;
    if (!*s) return false;
    *v = strtod(s, &end);
    return *end == 0 && isfinite(*v);
}

static fr_err bad(fr_sim_attack *out, const char *spec, const char *what, const char *got, const char *expected) {
    memset(out, 0, sizeof *out);
    return fri_fail(FR_ERR_INVALID, "attack '%s': %s '%s', expected %s", spec, what, got, expected);
}

fr_err fr_sim_attack_parse(const char *spec, fr_sim_attack *out) {
    memset(out, 0, sizeof *out);
    if (!spec) return fri_fail(FR_ERR_INVALID, "attack: NULL spec");
    char buf[256], *p[SPEC_MAX];
    if (strlen(spec) >= sizeof buf) return bad(out, "...", "spec of", "more than 255 characters", "a short spec");
    int n = split_spec(spec, buf, sizeof buf, p);
    const char *forms = "promote:ITEM:FRACTION[:BOOST[:REF]], promote-pop:ITEM:FRACTION[:BOOST[:REF]], "
                        "scale:FACTOR:FRACTION, signflip:FRACTION or noise:SIGMA:FRACTION";
    double v, fr;
    const char *k = p[0];
    fr_sim_attack a = {FR_ATTACK_NONE, 0, 0, 1.0, 20};
    const char *fr_s;
    if (!strcmp(k, "promote") || !strcmp(k, "promote-pop")) {
        a.kind = !strcmp(k, "promote") ? FR_ATTACK_PROMOTE : FR_ATTACK_PROMOTE_POP;
        if (n < 3 || n > 5) return bad(out, spec, "kind", k, "promote[-pop]:ITEM:FRACTION[:BOOST[:REF]] (2 to 4 values)");
        if (!num(p[1], &v) || v < 0 || v > 4294967294.0 || v != floor(v))
            return bad(out, spec, "ITEM", p[1], "a dense item id (a whole number >= 0)");
        a.target = (uint32_t)v;
        fr_s = p[2];
        if (n >= 4) {
            if (!num(p[3], &v) || !(v > 0) || v > 1e6) return bad(out, spec, "BOOST", p[3], "a number in (0, 1e6]");
            a.factor = v;
        }
        if (n == 5) {
            if (!num(p[4], &v) || v < 1 || v > 100000 || v != floor(v))
                return bad(out, spec, "REF", p[4], "a whole number of reference items in 1..100000");
            a.n_ref = (uint32_t)v;
        }
    } else if (!strcmp(k, "scale") || !strcmp(k, "noise")) {
        a.kind = !strcmp(k, "scale") ? FR_ATTACK_SCALE : FR_ATTACK_NOISE;
        if (n != 3) return bad(out, spec, "kind", k, a.kind == FR_ATTACK_SCALE ? "scale:FACTOR:FRACTION" : "noise:SIGMA:FRACTION");
        if (a.kind == FR_ATTACK_SCALE && (!num(p[1], &v) || v == 0 || fabs(v) > 1e6))
            return bad(out, spec, "FACTOR", p[1], "a non-zero number in [-1e6, 1e6]");
        if (a.kind == FR_ATTACK_NOISE && (!num(p[1], &v) || !(v > 0) || v > 1e6))
            return bad(out, spec, "SIGMA", p[1], "a number in (0, 1e6]");
        a.factor = v;
        fr_s = p[2];
    } else if (!strcmp(k, "signflip")) {
        a.kind = FR_ATTACK_SIGNFLIP;
        if (n != 2) return bad(out, spec, "kind", k, "signflip:FRACTION");
        a.factor = -1;
        fr_s = p[1];
    } else {
        return bad(out, spec, "kind", k, forms);
    }
    if (!num(fr_s, &fr) || !(fr > 0) || fr > 0.5)
        return bad(out, spec, "FRACTION", fr_s, "the malicious share of the clients, in (0, 0.5]");
    a.fraction = fr;
    *out = a;
    return FR_OK;
}

bool fr_sim_attack_has_target(const fr_sim_attack *a) {
    return a && (a->kind == FR_ATTACK_PROMOTE || a->kind == FR_ATTACK_PROMOTE_POP);
}

void fr_sim_faults_default(fr_sim_faults *f) {
    memset(f, 0, sizeof *f);
    f->straggler_slowdown = 10;
    f->sec_per_example = 1e-3;
    f->bandwidth = 1e6;
    f->latency = 0.05;
    f->max_attempts = 10;
}

fr_err fr_sim_faults_check(const fr_sim_faults *f) {
    if (!f) return fri_fail(FR_ERR_INVALID, "faults: NULL");
    if (!(f->crash_rate >= 0 && f->crash_rate < 1))
        return fri_fail(FR_ERR_INVALID, "faults: crash rate %g, expected a probability in [0, 1)", f->crash_rate);
    if (!(f->straggler_rate >= 0 && f->straggler_rate <= 1))
        return fri_fail(FR_ERR_INVALID, "faults: straggler rate %g, expected a probability in [0, 1]", f->straggler_rate);
    if (!(f->straggler_slowdown >= 1 && f->straggler_slowdown <= 1e6))
        return fri_fail(FR_ERR_INVALID, "faults: straggler slowdown %g, expected a factor in [1, 1e6]",
                        f->straggler_slowdown);
    if (!(f->sec_per_example > 0 && f->sec_per_example <= 1e3))
        return fri_fail(FR_ERR_INVALID, "faults: %g seconds per example, expected (0, 1000]", f->sec_per_example);
    if (!(f->bandwidth > 0 && isfinite(f->bandwidth)))
        return fri_fail(FR_ERR_INVALID, "faults: bandwidth %g bytes/s, expected a finite value > 0", f->bandwidth);
    if (!(f->latency >= 0 && f->latency <= 1e6))
        return fri_fail(FR_ERR_INVALID, "faults: latency %g s, expected [0, 1e6]", f->latency);
    if (!(f->deadline >= 0 && isfinite(f->deadline)))
        return fri_fail(FR_ERR_INVALID, "faults: deadline %g s, expected a finite value >= 0 (0: none)", f->deadline);
    if (!(f->over_select >= 0 && f->over_select <= 10))
        return fri_fail(FR_ERR_INVALID, "faults: over-selection %g, expected 0..10", f->over_select);
    if (f->max_attempts < 1 || f->max_attempts > 255)
        return fri_fail(FR_ERR_INVALID, "faults: %u attempts a round, expected 1..255", f->max_attempts);
    return FR_OK;
}

bool fr_sim_faults_on(const fr_sim_faults *f) {
    return f && (f->crash_rate > 0 || f->straggler_rate > 0 || f->deadline > 0 || f->over_select > 0);
}

/* ------------------------------------------------------------------ promotion's fakes */

fr_err fri_attack_fakes(const fr_sim_attack *a, uint32_t n_clients, uint32_t n_items, uint32_t *n_fake) {
    *n_fake = 0;
    if (!fr_sim_attack_has_target(a)) return fri_fail(FR_ERR_INVALID, "attack: no promotion (no fake clients)");
    if (!(a->fraction > 0 && a->fraction <= 0.5))
        return fri_fail(FR_ERR_INVALID, "attack: fraction %g, expected (0, 0.5]", a->fraction);
    if (a->target >= n_items)
        return fri_fail(FR_ERR_INVALID, "attack: target item %u, expected < %u (the training data's items)", a->target,
                        n_items);
    if (a->n_ref < 1 || a->n_ref > n_items - 1)
        return fri_fail(FR_ERR_INVALID, "attack: %u reference items, expected 1..%u", a->n_ref, n_items - 1);
    double nf = floor(a->fraction * n_clients / (1.0 - a->fraction) + 0.5);
    if (nf < 1) nf = 1;
    if (nf + n_clients > (double)UINT32_MAX / 2) return fri_fail(FR_ERR_INVALID, "attack: too many fake clients");
    *n_fake = (uint32_t)nf;
    return FR_OK;
}

fr_err fri_attack_ref_pop(const fr_sim_attack *a, const double *pop, uint32_t n_items, uint32_t *ref) {
    uint8_t *used = fri_calloc(n_items, 1);
    if (!used) return FR_ERR_NOMEM;
    used[a->target] = 1;
    for (uint32_t r = 0; r < a->n_ref; r++) { /* the most popular left, ties to the smaller id */
        uint32_t best = UINT32_MAX;
        for (uint32_t i = 0; i < n_items; i++)
            if (!used[i] && (best == UINT32_MAX || pop[i] > pop[best])) best = i;
        used[best] = 1;
        ref[r] = best;
    }
    fri_free(used);
    return FR_OK;
}

/* Fake c's reference items in round `round` (promote: drawn into scratch; promote-pop:
 * ref_pop). */
static fr_err fake_refs(const fr_sim_attack *a, uint64_t seed, uint32_t n_items, const uint32_t *ref_pop,
                        uint32_t *scratch, uint32_t round, uint32_t c, const uint32_t **out) {
    if (a->kind == FR_ATTACK_PROMOTE_POP) { *out = ref_pop; return FR_OK; }
    fr_rng r;
    fr_rng_init(&r, seed, round, c, FR_PURPOSE_ATTACK);
    fr_err e = fr_rng_sample(&r, n_items - 1, a->n_ref, scratch); /* among the items but the target */
    if (e) return e;
    for (uint32_t i = 0; i < a->n_ref; i++) scratch[i] += scratch[i] >= a->target;
    *out = scratch;
    return FR_OK;
}

/* Δ = (BOOST * the mean of the reference rows - the target's row) / m on the target's row
 * of every item table, nothing else; m the fakes expected in a round (n_fake * target /
 * clients, at least 1), so that together they steer the target to BOOST times the
 * reference items' centroid. */
fr_err fri_attack_fake_result(fr_round *ctl, const fr_sim_attack *a, uint32_t n_fake, const uint32_t *ref_pop,
                              uint32_t *scratch, uint32_t c, fr_update *u, fr_result *res) {
    const fr_fl_config *cfg = fr_round_fl_config(ctl);
    uint32_t round = fr_round_completed(ctl) + 1, n_items = fr_round_model_config(ctl)->n_items;
    fr_err e = fr_round_task(ctl, c, NULL, NULL); /* it is sent the TASK (and reads the model from it) */
    if (e) return e;
    const fr_update_shape *sh = fr_round_shape(ctl);
    const fr_model *g = fr_round_model(ctl);
    const float *P = fr_model_params_const(g);
    const uint32_t *ref;
    if ((e = fake_refs(a, cfg->seed, n_items, ref_pop, scratch, round, c, &ref))) return e;
    if ((e = fr_update_reset(u, sh->dense_len, sh->n_tables, sh->widths))) return e;
    uint32_t nref = a->n_ref, t = 0, T = a->target;
    u->weight = (uint64_t)nref + 1;
    u->client = c;
    u->round = round;
    /* the fakes share the step: each sends 1/share of it, share the fakes expected in a round */
    double share = (double)n_fake * (double)fr_round_target(ctl) / (double)fr_round_n_clients(ctl);
    if (share < 1) share = 1;
    double wi = cfg->item_sum ? 1.0 : (double)u->weight, bound = (double)fr_fl_fixed_bound(fr_round_target(ctl));
    for (int ti = 0; ti < fr_model_n_tensors(g) && t < sh->n_tables; ti++) {
        const fr_tensor *tt = fr_model_tensor(g, ti);
        if (tt->kind != FR_TENSOR_ITEM_TABLE) continue;
        if ((e = fr_update_table_resize(u, t, 1))) return e;
        fr_update_table *ut = &u->tables[t];
        ut->ids[0] = T;
        uint32_t W = tt->cols;
        for (uint32_t x = 0; x < W; x++) {
            double m = 0;
            for (uint32_t i = 0; i < nref; i++) m += P[tt->offset + (size_t)ref[i] * W + x];
            m /= nref;
            double d = (a->factor * m - (double)P[tt->offset + (size_t)T * W + x]) / share;
            double lim = 0.99 * bound / (wi * FR_FL_FIXED_SCALE); /* within the round's bound */
            ut->values[x] = (float)(d > lim ? lim : d < -lim ? -lim : d);
        }
        t++;
    }
    if ((e = fr_result_quantize(res, u, cfg, fr_fl_fixed_bound(fr_round_target(ctl))))) return e;
    res->config_crc = fr_round_config_crc(ctl);
    res->examples = 0;
    res->loss_sum = 0;
    return FR_OK;
}
