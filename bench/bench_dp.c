/* The discrete Gaussian noise of DP-FedAvg: time to add it to n fixed-point coordinates
 * (fr_dp_add_noise) at a given scale, with 1..T threads, and a single-stream rate.
 *   bench_dp [--n N (2000000)] [--sigma-units S (2^32: sigma * C = 1)] [--threads T (2)] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fedrec/fedrec.h"
#include "fedrec/privacy.h"

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(int argc, char **argv) {
    size_t n = 2000000;
    double su = 4294967296.0;
    int threads = 2;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--n")) n = (size_t)strtoull(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--sigma-units")) su = strtod(argv[i + 1], NULL);
        else if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
    }
    uint64_t sigma = (uint64_t)su;
    int64_t *v = calloc(n, sizeof *v);
    uint8_t key[FR_DP_KEY_BYTES];
    if (!v || fr_dp_random_key(key)) return 1;
    for (int t = 1; t <= threads; t++) {
        fr_pool *p = NULL;
        if (fr_pool_create(&p, t)) return 1;
        double t0 = now_s();
        if (fr_dp_add_noise(v, n, sigma, key, 0, p)) return 1;
        double s = now_s() - t0;
        printf("{\"n\":%zu,\"sigma_units\":%llu,\"threads\":%d,\"seconds\":%.4f,\"ns_per_coord\":%.1f}\n", n,
               (unsigned long long)sigma, t, s, s * 1e9 / (double)n);
        fr_pool_free(p);
    }
    free(v);
    return 0;
}
