/* Micro-benchmark of lightgcn-full's per-batch work on a real graph: the propagation
 * (M x with K layers, lightgcn_prop.h) fast and naive, and a whole fr_model_loss_grad at
 * a batch size, each the minimum over repetitions of the thread's CPU time (a shared
 * machine's load only ever adds to it). Prints microseconds a call and the largest
 * difference between the two propagations. Not part of the tests.
 *
 *   build/bench_lightgcn [train.rating] [K] [dim] [reps]   (default: ml-100k-loo, 2, 64, 60) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fedrec/data.h"
#include "fedrec/model.h"
#include "model/lightgcn_prop.h"

static double cpu_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static size_t ds_items(const void *ctx, uint32_t u, const uint32_t **items) {
    return fr_dataset_user(ctx, u, items, NULL, NULL);
}

int main(int argc, char **argv) {
    const char *path = argc > 1 ? argv[1] : "/work/shared/data/ml-100k-loo/train.rating";
    uint32_t K = argc > 2 ? (uint32_t)atoi(argv[2]) : 2;
    size_t d = argc > 3 ? (size_t)atoi(argv[3]) : 64;
    int reps = argc > 4 ? atoi(argv[4]) : 60;
    fr_load_opts lo;
    fr_load_opts_default(&lo);
    fr_dataset *ds = NULL;
    if (fr_dataset_load(&ds, path, &lo, NULL)) {
        fprintf(stderr, "%s: %s\n", path, fr_errmsg());
        return 1;
    }
    uint32_t U = fr_dataset_n_users(ds), I = fr_dataset_n_items(ds);
    size_t N = (size_t)U + I, E = 0;
    float *dinv = calloc(N, sizeof *dinv);
    for (uint32_t u = 0; u < U; u++) {
        const uint32_t *it;
        size_t n = ds_items(ds, u, &it);
        for (size_t j = 0; j < n; j++) dinv[it[j]] += 1;
        dinv[I + u] = (float)n;
        E += n;
    }
    for (size_t v = 0; v < N; v++) dinv[v] = dinv[v] > 0 ? (float)(1.0 / sqrt((double)dinv[v])) : 0.0f;
    uint32_t *istart = calloc(I + 1, sizeof *istart), *iusers = malloc(E * sizeof *iusers), *fill = calloc(I, 4);
    for (uint32_t u = 0; u < U; u++) {
        const uint32_t *it;
        size_t n = ds_items(ds, u, &it);
        for (size_t j = 0; j < n; j++) istart[it[j] + 1]++;
    }
    for (uint32_t i = 0; i < I; i++) istart[i + 1] += istart[i];
    for (uint32_t u = 0; u < U; u++) {
        const uint32_t *it;
        size_t n = ds_items(ds, u, &it);
        for (size_t j = 0; j < n; j++) iusers[istart[it[j]] + fill[it[j]]++] = u;
    }
    uint32_t *ustart = calloc(U + 1, 4), *uitems = malloc(E * 4);
    for (uint32_t u = 0; u < U; u++) {
        const uint32_t *it;
        size_t n = ds_items(ds, u, &it);
        memcpy(uitems + ustart[u], it, n * 4);
        ustart[u + 1] = ustart[u] + (uint32_t)n;
    }
    fri_lgf_graph g = {ds_items, ds, U, I, d, dinv, istart, iusers, ustart, uitems};
    float *x = malloc(N * d * sizeof *x), *acc = malloc(N * d * sizeof *x), *ref = malloc(N * d * sizeof *x);
    float *a = malloc(N * d * sizeof *x), *b = malloc(N * d * sizeof *x);
    srand(1);
    for (size_t k = 0; k < N * d; k++) x[k] = (float)rand() / (float)RAND_MAX - 0.5f;
    double best[2] = {1e9, 1e9};
    for (int r = 0; r < reps; r++)
        for (int v = 0; v < 2; v++) {
            memcpy(acc, x, N * d * sizeof *x);
            double t0 = cpu_now();
            (v ? fri_lgf_smooth_naive : fri_lgf_smooth)(&g, K, acc, NULL, NULL, a, b);
            double t = cpu_now() - t0;
            if (t < best[v]) best[v] = t;
            if (v) memcpy(ref, acc, N * d * sizeof *x);
        }
    memcpy(acc, x, N * d * sizeof *x);
    fri_lgf_smooth(&g, K, acc, NULL, NULL, a, b);
    double worst = 0, scale = 0;
    for (size_t k = 0; k < N * d; k++) {
        worst = fmax(worst, fabs((double)acc[k] - ref[k]));
        scale = fmax(scale, fabs((double)ref[k]));
    }
    printf("graph %u users, %u items, %zu edges; K %u, dim %zu\n", U, I, E, K, d);
    printf("propagation M x: fast %8.1f us  naive %8.1f us  (%.2fx); max |fast - naive| %.3g of max |M x| %.3g\n",
           best[0] * 1e6, best[1] * 1e6, best[1] / best[0], worst, scale);

    /* a whole loss_grad at batch B, fast and naive */
    fr_model_kind kind = 0;
    if (fr_model_kind_parse("lightgcn-full", &kind)) return 1;
    fr_model_config c;
    fr_model_config_default(&c, kind);
    c.n_users = U;
    c.n_items = I;
    c.dim = (uint32_t)d;
    c.n_layers = K;
    c.l2 = 0.001f;
    fr_model *m = NULL;
    if (fr_model_create(&m, &c)) return 1;
    fr_model_graph mg = fr_model_graph_dataset(ds);
    fr_model_set_graph(m, &mg);
    size_t bs[2] = {2048, 4096};
    for (int q = 0; q < 2; q++) {
        size_t B = bs[q];
        uint32_t *bu = malloc(B * 4), *bi = malloc(B * 4), *bn = malloc(B * 4);
        for (size_t k = 0; k < B; k++) {
            bu[k] = (uint32_t)rand() % U;
            const uint32_t *it;
            size_t n = ds_items(ds, bu[k], &it);
            bi[k] = n ? it[(size_t)rand() % n] : 0;
            bn[k] = (uint32_t)rand() % I;
        }
        fr_batch bb = {bu, bi, NULL, bn, B, NULL};
        fr_model_ws *ws = NULL;
        fr_grad *gr = NULL;
        if (fr_model_ws_create(&ws, m, B) || fr_grad_create(&gr, m)) return 1;
        double lb[2] = {1e9, 1e9};
        for (int r = 0; r < reps / 2 + 1; r++)
            for (int v = 0; v < 2; v++) {
                fri_lgf_allow_fast(v == 0);
                double loss, t0 = cpu_now();
                fr_grad_zero(gr);
                if (fr_model_loss_grad(m, ws, &bb, gr, &loss)) return 1;
                double t = cpu_now() - t0;
                if (t < lb[v]) lb[v] = t;
            }
        fri_lgf_allow_fast(true);
        printf("batch %4zu: grad zero + loss_grad fast %8.1f us  naive %8.1f us  (%.2fx)\n", B, lb[0] * 1e6,
               lb[1] * 1e6, lb[1] / lb[0]);
        fr_grad_free(gr);
        fr_model_ws_free(ws);
        free(bu);
        free(bi);
        free(bn);
    }
    fr_model_free(m);
    free(x); free(acc); free(ref); free(a); free(b); free(dinv);
    free(istart); free(iusers); free(fill); free(ustart); free(uitems);
    fr_dataset_free(ds);
    return 0;
}
