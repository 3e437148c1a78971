/* fedrec privacy: the accountant from the command line (include/fedrec/privacy.h). ε of R
 * rounds of the Poisson-subsampled Gaussian mechanism at δ, or, with --target-epsilon, the
 * smallest noise multiplier that keeps ε within a target. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "fedrec/privacy.h"

/* A double in JSON: the shortest of %.15g..%.17g that reads back as the same value. */
static void json_num(double v) {
    char buf[40];
    for (int p = 15; p <= 17; p++) {
        snprintf(buf, sizeof buf, "%.*g", p, v);
        if (strtod(buf, NULL) == v) break;
    }
    fputs(buf, stdout);
}

/* The library's message without its function-name prefix ("fr_dp_epsilon: "). */
static int privacy_fail(fr_err e) {
    const char *m = fr_errmsg();
    if (!m || !*m) m = fr_strerror(e);
    if (!strncmp(m, "fr_dp_", 6) && strstr(m, ": ")) m = strstr(m, ": ") + 2;
    fprintf(stderr, "fedrec privacy: %s\n", m);
    return 1;
}

int cli_privacy(int argc, char **argv) {
    double noise = 0, q = 0, delta = 0, target = 0;
    uint64_t rounds = 0;
    bool json = false;
    arg_spec specs[] = {
        ARG_SPEC_REAL("noise", &noise, 0, INFINITY, ARG_MIN_OPEN, NULL,
                      "σ  noise multiplier: noise std / clipping norm (or --target-epsilon)"),
        ARG_SPEC_REAL("target-epsilon", &target, 0, INFINITY, ARG_MIN_OPEN, NULL,
                      "E  solve for the smallest noise multiplier with ε <= E (instead of --noise)"),
        ARG_SPEC_REAL("sample-rate", &q, 0, 1, 0, NULL,
                      "q  probability that a client takes part in a round (required)"),
        ARG_SPEC_INT("rounds", &rounds, 0, UINT64_MAX, NULL, "R  rounds (required)"),
        ARG_SPEC_REAL("delta", &delta, 0, 1, ARG_MIN_OPEN | ARG_MAX_OPEN, NULL,
                      "δ  of (ε, δ)-DP, e.g. below 1/clients (required)"),
        ARG_SPEC_FLAG("json", &json, "   print one JSON object"),
        ARG_SPEC_END,
    };
    const char *pos[1];
    int npos;
    const char *usage = "fedrec privacy (--noise σ | --target-epsilon E) --sample-rate q --rounds R --delta δ [--json]";
    int rc = args_parse("privacy", argc, argv, specs, pos, 0, &npos, usage);
    if (rc) return rc < 0 ? 0 : rc;
    bool by_noise = args_seen(specs, &noise), by_target = args_seen(specs, &target);
    const char *missing = by_noise && by_target    ? "give either --noise σ or --target-epsilon E, not both"
                          : !by_noise && !by_target ? "--noise σ or --target-epsilon E is required"
                          : !args_seen(specs, &q)   ? "--sample-rate q is required"
                          : !args_seen(specs, &rounds) ? "--rounds R is required"
                          : !args_seen(specs, &delta)  ? "--delta δ is required"
                                                       : NULL;
    if (missing) {
        fprintf(stderr, "fedrec privacy: %s\nusage: %s\n", missing, usage);
        return 2;
    }
    if (by_target && (q == 0 || rounds == 0)) {
        fprintf(stderr, "fedrec privacy: --target-epsilon: %s spends no privacy, so any noise meets the target\n",
                q == 0 ? "--sample-rate 0" : "--rounds 0");
        return 2;
    }
    double eps, order;
    fr_err e = FR_OK;
    if (by_target) e = fr_dp_sigma_for_epsilon(q, rounds, delta, target, &noise);
    if (!e) e = fr_dp_epsilon(q, noise, rounds, delta, NULL, 0, &eps, &order);
    if (e) return privacy_fail(e);
    if (json) {
        printf("{\"epsilon\":");
        json_num(eps);
        printf(",\"delta\":");
        json_num(delta);
        printf(",\"noise\":");
        json_num(noise);
        printf(",\"sample_rate\":");
        json_num(q);
        printf(",\"rounds\":%" PRIu64 ",\"order\":", rounds);
        json_num(order);
        if (by_target) {
            printf(",\"target_epsilon\":");
            json_num(target);
        }
        printf("}\n");
    } else {
        char best[64] = ""; /* at ε = 0 every order is best */
        if (eps > 0) snprintf(best, sizeof best, ", best Rényi order %g", order);
        if (by_target)
            printf("noise multiplier %.7g: epsilon %.6g at delta %g (target %g; sample rate %g, %" PRIu64
                   " round%s%s)\n",
                   noise, eps, delta, target, q, rounds, cli_s(rounds), best);
        else
            printf("epsilon %.6g at delta %g (noise multiplier %g, sample rate %g, %" PRIu64 " round%s%s)\n", eps,
                   delta, noise, q, rounds, cli_s(rounds), best);
    }
    return 0;
}
