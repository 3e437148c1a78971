/* Specs of the simulator's attacks and faults (fedrec/runtime.h): parsing and checks.
 * What the malicious and failing clients do is in sim.c, beside the clients' steps. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/core.h"
#include "fedrec/runtime.h"

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
