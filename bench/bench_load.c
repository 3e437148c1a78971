/* Load benchmark: loads a ratings file N times with fr_dataset_load and prints JSON with
 * throughput (MB/s, ratings/s, best of N) and the peak-RSS growth per rating (VmHWM from
 * /proc/self/status after the loads minus VmRSS before them).
 *
 *   bench_load FILE [N]               benchmark (default N = 3)
 *   bench_load --write-csv FILE [M]   write an ml-25m-style ratings.csv of M ratings
 *                                     (default 25,000,000), deterministic
 *
 * Not part of the tests; bench/run_load.sh runs it beside pandas.read_csv. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "data/read.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* A /proc/self/status field in bytes ("VmHWM:", "VmRSS:"), or -1. */
static long long status_kb(const char *key) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    long long v = -1;
    size_t k = strlen(key);
    while (fgets(line, sizeof line, f))
        if (strncmp(line, key, k) == 0) { v = atoll(line + k); break; }
    fclose(f);
    return v * 1024;
}

/* splitmix64: the benchmark's own deterministic stream. */
static uint64_t sm_state = 0x5eed2500;
static uint64_t sm_next(void) {
    uint64_t z = (sm_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static char *put_u(char *p, uint64_t v) {
    char tmp[24];
    int n = 0;
    do { tmp[n++] = (char)('0' + v % 10); v /= 10; } while (v);
    while (n) *p++ = tmp[--n];
    return p;
}

/* ~162k users (ascending, as in ml-25m), ~59k items with skewed popularity and sparse
 * movieIds, half-star ratings, 10-digit timestamps. */
static int write_csv(const char *path, uint64_t m) {
    FILE *f = fopen(path, "wb");
    if (!f) { perror(path); return 1; }
    static char buf[1 << 20];
    char *p = buf;
    p += sprintf(p, "userId,movieId,rating,timestamp\n");
    const uint32_t n_items = 59047;
    uint64_t written = 0;
    for (uint32_t user = 1; written < m; user++) {
        uint64_t cnt = 20 + sm_next() % 270; /* mean ~154: ~162k users for 25M */
        int64_t t = 1000000000 + (int64_t)(sm_next() % 500000000);
        for (uint64_t k = 0; k < cnt && written < m; k++, written++) {
            double x = (double)(sm_next() >> 11) * 0x1.0p-53;
            uint32_t item = (uint32_t)(x * x * x * n_items);
            uint32_t movie = 1 + item * 3 + item % 3;
            uint32_t half = 1 + (uint32_t)(sm_next() % 10); /* 0.5 .. 5.0 */
            t += (int64_t)(sm_next() % 5000);
            p = put_u(p, user);
            *p++ = ',';
            p = put_u(p, movie);
            *p++ = ',';
            p = put_u(p, half / 2);
            *p++ = '.';
            *p++ = half % 2 ? '5' : '0';
            *p++ = ',';
            p = put_u(p, (uint64_t)t);
            *p++ = '\n';
            if (p - buf > (long)sizeof buf - 128) {
                fwrite(buf, 1, (size_t)(p - buf), f);
                p = buf;
            }
        }
    }
    fwrite(buf, 1, (size_t)(p - buf), f);
    if (fclose(f) != 0) { perror(path); return 1; }
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 3 && strcmp(argv[1], "--write-csv") == 0)
        return write_csv(argv[2], argc > 3 ? strtoull(argv[3], NULL, 10) : 25000000ull);
    if (argc < 2) {
        fprintf(stderr, "usage: bench_load FILE [N] | bench_load --write-csv FILE [RATINGS]\n");
        return 2;
    }
    const char *path = argv[1];
    int reps = argc > 2 ? atoi(argv[2]) : 3;
    if (reps < 1) reps = 1;
    long long rss0 = status_kb("VmRSS:");
    double best = 1e300, total = 0;
    uint64_t n = 0, bytes = 0;
    uint32_t users = 0, items = 0;
    for (int r = 0; r < reps; r++) {
        fr_dataset *d = NULL;
        fr_load_stats st;
        double t0 = now();
        fr_err e = fr_dataset_load(&d, path, NULL, &st);
        double dt = now() - t0;
        if (e) {
            fprintf(stderr, "bench_load: %s\n", fr_errmsg());
            return 1;
        }
        n = fr_dataset_n_interactions(d);
        users = fr_dataset_n_users(d);
        items = fr_dataset_n_items(d);
        bytes = st.bytes;
        fr_dataset_free(d);
        total += dt;
        if (dt < best) best = dt;
    }
    long long hwm = status_kb("VmHWM:");
    /* The parse step alone (rows of raw ids, no CSR build). */
    double parse_best = 1e300;
    for (int r = 0; r < reps; r++) {
        fri_rows rows = {0};
        fr_load_opts o;
        fr_load_opts_default(&o);
        double t0 = now();
        fr_err e = fri_read_rows(path, &o, &rows, NULL, NULL);
        double dt = now() - t0;
        fri_rows_free(&rows);
        if (e) { fprintf(stderr, "bench_load: %s\n", fr_errmsg()); return 1; }
        if (dt < parse_best) parse_best = dt;
    }
    double growth = n ? (double)(hwm - rss0) / (double)n : 0;
    printf("{\"file\": \"%s\", \"reps\": %d, \"ratings\": %llu, \"users\": %u, \"items\": %u, \"bytes\": %llu,\n"
           " \"best_s\": %.4f, \"mean_s\": %.4f, \"mb_per_s\": %.1f, \"ratings_per_s\": %.0f,\n"
           " \"peak_rss_growth_bytes\": %lld, \"peak_rss_growth_per_rating\": %.2f,"
           " \"beyond_raw_ids_per_rating\": %.2f,\n"
           " \"parse_only_best_s\": %.4f, \"parse_only_mb_per_s\": %.1f, \"build_s\": %.4f}\n",
           path, reps, (unsigned long long)n, users, items, (unsigned long long)bytes, best, total / reps,
           (double)bytes / 1e6 / best, (double)n / best, hwm - rss0, growth, growth - 8.0, parse_best,
           (double)bytes / 1e6 / parse_best, best - parse_best);
    return 0;
}
