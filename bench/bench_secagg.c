/* Secure aggregation benchmark (privacy layer only): one session of n clients over
 * vectors of len words, every party in this process, one after another. Prints one JSON
 * line per scenario with the seconds of each stage, summed over the clients (the work of
 * a simulated round) and per client (what one device spends), and the server's, beside a
 * plain sum of the same vectors; the unmasked sum is checked against the plain one.
 *   bench_secagg [--n 100] [--len 55506] [--dropout 0.1] [--sigma 40] [--eta E] [--k K --t T] [--reps 3] [--wall]
 * Seconds are the process's CPU time (this thread's, and the server's recovery thread's) unless --wall.
 * (--eta: the correctness target apart from sigma, fr_sa_params_choose_split; default sigma).
 * The critical path of a deployed round, where each client runs on its own device in
 * parallel: the slowest client's own seconds (keys, shares, mask, unmask) plus all of the
 * server's (receiving every message, closing the stages, the recovery), taken one after
 * the other (no overlap counted).
 * Scenarios: no dropout; a fraction `dropout` of the clients gone after ShareKeys (their
 * pairwise masks are rebuilt); the same fraction gone between MaskedInput and Unmasking
 * (their self masks are rebuilt from the others' shares).
 * len 55506 = ml-100k's 1682 items × (32 factors + 1 bias): mf d=32's shared prefix. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fedrec/privacy.h"

static clockid_t g_clock = CLOCK_PROCESS_CPUTIME_ID; /* --wall: CLOCK_MONOTONIC */

/* The process's CPU seconds (default: every party runs on this one thread, and the
 * server's recovery also on a second one, so that is the work each does, which a shared
 * machine's load inflates far less than wall time), or the wall clock with --wall. */
static double now_s(void) {
    struct timespec t;
    clock_gettime(g_clock, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int die(const char *what) {
    fprintf(stderr, "bench_secagg: %s: %s\n", what, fr_errmsg());
    return 1;
}

typedef struct times {
    double c[4], s[4]; /* clients' and server's seconds per stage: keys, shares, mask, unmask+finish */
    double c_max;      /* the slowest client's own seconds over the four stages (the critical path's) */
    double plain;
    uint32_t survivors;
} times;

/* stop[u]: 0 to the end, 3 gone before its masked input, 4 gone before its answer. */
static int session(const fr_sa_params *p, int64_t **x, const uint8_t *stop, times *tm) {
    fr_sa_server *s = NULL;
    fr_sa_client **c = calloc(p->n, sizeof *c);
    int64_t *sum = malloc(p->len * 8), *want = calloc(p->len, 8);
    bool *in = calloc(p->n, 1);
    double *own = calloc(p->n, sizeof *own); /* each client's seconds */
    memset(tm, 0, sizeof *tm);
    double t0 = now_s();
    if (fr_sa_server_create(&s, p)) return die("server");
    tm->s[0] += now_s() - t0;
    for (int st = 0; st < 4; st++) {
        for (uint32_t u = 0; u < p->n; u++) {
            if (st == 0) {
                t0 = now_s();
                if (fr_sa_client_create(&c[u], p, u)) return die("client");
                tm->c[0] += now_s() - t0;
                own[u] += now_s() - t0;
            }
            if (stop[u] == st + 1 || !fr_sa_server_has(s, u)) continue;
            uint8_t *m = NULL, *out = NULL;
            size_t mn = 0, on = 0;
            t0 = now_s();
            if (st > 0 && fr_sa_server_message(s, u, &m, &mn)) return die("server message");
            double t1 = now_s();
            fr_err e = st == 0 ? fr_sa_client_advertise(c[u], &out, &on)
                     : st == 1 ? fr_sa_client_share(c[u], m, mn, &out, &on)
                     : st == 2 ? fr_sa_client_mask(c[u], x[u], m, mn, &out, &on)
                               : fr_sa_client_unmask(c[u], m, mn, &out, &on);
            double t2 = now_s();
            if (e) return die("client step");
            if (fr_sa_server_receive(s, out, on)) return die("server receive");
            double t3 = now_s();
            tm->c[st] += t2 - t1;
            own[u] += t2 - t1;
            tm->s[st] += (t1 - t0) + (t3 - t2);
            if (st == 2) in[u] = true;
            fr_sa_bytes_free(m, mn);
            fr_sa_bytes_free(out, on);
        }
        t0 = now_s();
        if (st < 3 && fr_sa_server_close(s)) return die("close");
        if (st == 3 && fr_sa_server_finish(s, sum, &tm->survivors)) return die("finish");
        tm->s[st] += now_s() - t0;
    }
    /* the plain sum of the survivors' vectors, for time and for the check */
    t0 = now_s();
    for (uint32_t u = 0; u < p->n; u++) {
        if (!in[u]) continue;
        uint64_t *w = (uint64_t *)want;
        for (uint64_t i = 0; i < p->len; i++) w[i] += (uint64_t)x[u][i];
    }
    tm->plain = now_s() - t0;
    int bad = memcmp(sum, want, p->len * 8) != 0;
    for (uint32_t u = 0; u < p->n; u++)
        if (own[u] > tm->c_max) tm->c_max = own[u];
    free(own);
    for (uint32_t u = 0; u < p->n; u++) fr_sa_client_free(c[u]);
    fr_sa_server_free(s);
    free(c);
    free(sum);
    free(want);
    free(in);
    if (bad) { fprintf(stderr, "bench_secagg: the unmasked sum differs from the plain sum\n"); return 1; }
    return 0;
}

int main(int argc, char **argv) {
    uint32_t n = 100, sigma = 40, eta = 0, k = 0, t = 0;
    uint64_t len = 55506;
    double dropout = 0.1;
    int reps = 3;
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--wall")) {
            g_clock = CLOCK_MONOTONIC;
            memmove(argv + i, argv + i + 1, (size_t)(argc - i) * sizeof *argv);
            argc--;
            break;
        }
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *a = argv[i], *v = argv[i + 1];
        if (!strcmp(a, "--n")) n = (uint32_t)atol(v);
        else if (!strcmp(a, "--len")) len = (uint64_t)atoll(v);
        else if (!strcmp(a, "--dropout")) dropout = atof(v);
        else if (!strcmp(a, "--sigma")) sigma = (uint32_t)atol(v);
        else if (!strcmp(a, "--eta")) eta = (uint32_t)atol(v);
        else if (!strcmp(a, "--k")) k = (uint32_t)atol(v);
        else if (!strcmp(a, "--t")) t = (uint32_t)atol(v);
        else if (!strcmp(a, "--reps")) reps = atoi(v);
        else { fprintf(stderr, "bench_secagg: unknown option %s\n", a); return 2; }
    }
    fr_sa_params p;
    if (fr_sa_params_choose_split(&p, n, len, dropout, sigma, eta ? eta : sigma)) return die("params");
    if (k) { p.k = k; p.t = t ? t : k / 2 + 1; }
    p.graph_seed = 1;
    if (fr_sa_params_check(&p)) return die("params");
    int64_t **x = malloc(n * sizeof *x);
    uint64_t st = 12345, bound = (uint64_t)INT64_MAX / n;
    for (uint32_t u = 0; u < n; u++) {
        x[u] = malloc(len * 8);
        for (uint64_t i = 0; i < len; i++) {
            st = st * 6364136223846793005ULL + 1442695040888963407ULL;
            x[u][i] = (int64_t)((st >> 1) % (2 * bound + 1)) - (int64_t)bound;
        }
    }
    uint8_t *stop = calloc(n, 1);
    const char *names[3] = {"none", "after_share", "before_unmask"};
    uint32_t gone = (uint32_t)(dropout * n + 0.5);
    for (int sc = 0; sc < 3; sc++) {
        memset(stop, 0, n);
        for (uint32_t i = 0; sc > 0 && i < gone; i++) stop[(i * 7919u) % n] = sc == 1 ? 3 : 4; /* spread out */
        times best = {0}, tm;
        double best_total = 1e300;
        for (int r = 0; r < reps; r++) {
            p.session = (uint64_t)(sc * 100 + r + 1);
            if (session(&p, x, stop, &tm)) return 1;
            double tot = 0;
            for (int j = 0; j < 4; j++) tot += tm.c[j] + tm.s[j];
            if (tot < best_total) { best_total = tot; best = tm; }
        }
        double keys_c = best.c[0] + best.c[1], keys_s = best.s[0] + best.s[1];
        printf("{\"scenario\":\"%s\",\"n\":%u,\"k\":%u,\"t\":%u,\"len\":%llu,\"dropped\":%u,\"survivors\":%u,"
               "\"keys_clients_s\":%.4f,\"keys_server_s\":%.4f,\"mask_clients_s\":%.4f,\"mask_server_s\":%.4f,"
               "\"unmask_clients_s\":%.4f,\"recovery_server_s\":%.4f,\"total_s\":%.4f,"
               "\"per_client_s\":%.5f,\"slowest_client_s\":%.5f,\"server_s\":%.4f,\"critical_path_s\":%.4f,"
               "\"plain_sum_s\":%.5f,\"exact\":true}\n",
               names[sc], p.n, p.k, p.t, (unsigned long long)p.len, sc ? gone : 0, best.survivors, keys_c, keys_s,
               best.c[2], best.s[2], best.c[3], best.s[3], best_total, (keys_c + best.c[2] + best.c[3]) / n,
               best.c_max, keys_s + best.s[2] + best.s[3], best.c_max + keys_s + best.s[2] + best.s[3], best.plain);
        fflush(stdout);
    }
    for (uint32_t u = 0; u < n; u++) free(x[u]);
    free(x);
    free(stop);
    return 0;
}
