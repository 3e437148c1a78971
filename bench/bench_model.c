/* Micro-benchmark of the model kernels: the linear layer (BLAS vs loops) at the shapes
 * NeuMF uses, and fr_model_loss_grad + an Adam step for NeuMF on random data
 * (943 users, 1682 items) at batch 256 and 32. Prints samples/s. Not part of the tests. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "fedrec/model.h"
#include "model/layers.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void bench_linear(size_t B, size_t C, size_t OC) {
    float *x = calloc(B * C, 4), *w = calloc(OC * C, 4), *b = calloc(OC, 4), *y = calloc(B * OC, 4);
    float *dx = calloc(B * C, 4), *dw = calloc(OC * C, 4), *db = calloc(OC, 4);
    for (size_t i = 0; i < B * C; i++) x[i] = (float)(i % 7) * 0.1f;
    for (size_t i = 0; i < OC * C; i++) w[i] = (float)(i % 5) * 0.1f;
    double t[3];
    int reps = (int)(2e8 / (double)(B * C * OC)) + 10;
    for (int v = 0; v < 3; v++) {
        double t0 = now();
        for (int r = 0; r < reps; r++) {
            if (v == 0) { fri_linear_forward_blas(y, x, w, b, B, C, OC); fri_linear_backward_blas(dx, dw, db, y, x, w, B, C, OC); }
            else if (v == 1) { fri_linear_forward_loops(y, x, w, b, B, C, OC); fri_linear_backward_loops(dx, dw, db, y, x, w, B, C, OC); }
            else { fri_linear_forward_naive(y, x, w, b, B, C, OC); fri_linear_backward_naive(dx, dw, db, y, x, w, B, C, OC); }
        }
        t[v] = (now() - t0) / reps * 1e6;
    }
    printf("linear B=%3zu %2zux%-2zu fwd+bwd: blas %7.2f us  loops %7.2f us  naive %7.2f us\n", B, C, OC, t[0], t[1], t[2]);
    free(x); free(w); free(b); free(y); free(dx); free(dw); free(db);
}

static int bench_model(size_t B, int sparse, fr_model_kind kind) {
    fr_model_config cfg;
    fr_model_config_default(&cfg, kind);
    cfg.n_users = 943;
    cfg.n_items = 1682;
    fr_model *m = NULL;
    fr_model_ws *ws = NULL;
    fr_grad *g = NULL;
    fr_optim *o = NULL;
    fr_optim_config oc;
    fr_optim_config_default(&oc, FR_OPTIM_ADAM);
    oc.sparse_rows = sparse;
    if (fr_model_create(&m, &cfg) || fr_model_ws_create(&ws, m, B) || fr_grad_create(&g, m) ||
        fr_optim_create(&o, m, &oc)) {
        fprintf(stderr, "bench: %s\n", fr_errmsg());
        return 1;
    }
    size_t N = 495285;
    uint32_t *u = malloc(N * 4), *it = malloc(N * 4);
    float *y = malloc(N * 4);
    fr_rng r;
    fr_rng_init(&r, 7, 0, 0, FR_PURPOSE_TEST);
    for (size_t i = 0; i < N; i++) {
        u[i] = fr_rng_below(&r, 943);
        it[i] = fr_rng_below(&r, 1682);
        y[i] = (float)(i % 5 == 0);
    }
    double t0 = now(), tot = 0;
    for (size_t at = 0; at + B <= N; at += B) {
        fr_batch b = {u + at, it + at, y + at, NULL, B, NULL};
        double loss;
        fr_grad_zero(g);
        if (fr_model_loss_grad(m, ws, &b, g, &loss) || fr_optim_step(o, m, g)) return 1;
        tot += loss;
    }
    double dt = now() - t0;
    printf("%-5s batch %3zu adam %-6s: one epoch of %zu samples in %.3f s = %.2f M samples/s "
           "(%.3f us/sample, mean loss %.4f)\n", fr_model_kind_name(kind), B, sparse ? "sparse" : "dense", N,
           dt, (double)N / dt * 1e-6, dt / (double)N * 1e6, tot / (double)(N / B));
    free(u); free(it); free(y);
    fr_optim_free(o); fr_grad_free(g); fr_model_ws_free(ws); fr_model_free(m);
    return 0;
}

/* Data-parallel steps on a pool: each worker takes a part of the batch into its own
 * workspace and gradient; the parts are combined (weights n_k / B) and one Adam step is
 * taken. This is the shape a centralized trainer on T threads can use. */
typedef struct par_ctx {
    const fr_model *m;
    fr_model_ws *ws[8];
    fr_grad *g[8];
    fr_batch part[8];
    double loss[8];
    int failed;
} par_ctx;

static void par_task(void *vctx, size_t index, int worker) {
    par_ctx *c = vctx;
    (void)worker;
    fr_grad_zero(c->g[index]);
    if (fr_model_loss_grad(c->m, c->ws[index], &c->part[index], c->g[index], &c->loss[index])) c->failed = 1;
}

static int bench_parallel(size_t B, int T) {
    fr_model_config cfg;
    fr_model_config_default(&cfg, FR_MODEL_NEUMF);
    cfg.n_users = 943;
    cfg.n_items = 1682;
    fr_model *m = NULL;
    fr_optim *o = NULL;
    fr_pool *pool = NULL;
    fr_optim_config oc;
    fr_optim_config_default(&oc, FR_OPTIM_ADAM);
    oc.sparse_rows = true;
    par_ctx c = {0};
    if (fr_model_create(&m, &cfg) || fr_optim_create(&o, m, &oc) || fr_pool_create(&pool, T)) return 1;
    c.m = m;
    for (int t = 0; t < T; t++)
        if (fr_model_ws_create(&c.ws[t], m, B) || fr_grad_create(&c.g[t], m)) return 1;
    size_t N = 495285;
    uint32_t *u = malloc(N * 4), *it = malloc(N * 4);
    float *y = malloc(N * 4);
    fr_rng r;
    fr_rng_init(&r, 7, 0, 0, FR_PURPOSE_TEST);
    for (size_t i = 0; i < N; i++) {
        u[i] = fr_rng_below(&r, 943);
        it[i] = fr_rng_below(&r, 1682);
        y[i] = (float)(i % 5 == 0);
    }
    double t0 = now(), tot = 0;
    for (size_t at = 0; at + B <= N; at += B) {
        size_t off = 0;
        for (int t = 0; t < T; t++) {
            size_t n = B / (size_t)T + ((size_t)t < B % (size_t)T);
            c.part[t] = (fr_batch){u + at + off, it + at + off, y + at + off, NULL, n, NULL};
            off += n;
        }
        fr_pool_for(pool, (size_t)T, 1, par_task, &c);
        if (c.failed) return 1;
        double l = c.loss[0] * (double)c.part[0].n;
        for (int t = 1; t < T; t++) {
            if (fr_grad_combine(c.g[0], t == 1 ? (float)c.part[0].n / (float)B : 1.0f, c.g[t],
                                (float)c.part[t].n / (float)B))
                return 1;
            l += c.loss[t] * (double)c.part[t].n;
        }
        if (fr_optim_step(o, m, c.g[0])) return 1;
        tot += l / (double)B;
    }
    double dt = now() - t0;
    printf("neumf batch %3zu adam sparse, %d threads: one epoch in %.3f s = %.2f M samples/s (mean loss %.4f)\n", B, T,
           dt, (double)N / dt * 1e-6, tot / (double)(N / B));
    free(u); free(it); free(y);
    for (int t = 0; t < T; t++) { fr_model_ws_free(c.ws[t]); fr_grad_free(c.g[t]); }
    fr_pool_free(pool); fr_optim_free(o); fr_model_free(m);
    return 0;
}

/* One FedAvg round of the anchor's shape, kernels only (no sampling, no aggregation):
 * 943 clients, each with a 1-user model, ~105 positives x (1 + 4) samples, batch 32,
 * a fresh Adam (reset) per client: set shared prefix, local epoch, shared delta. */
static int bench_fl_round(int sparse) {
    fr_model_config cfg;
    fr_model_config_default(&cfg, FR_MODEL_NEUMF);
    cfg.n_users = 1;
    cfg.n_items = 1682;
    fr_model *global = NULL, *m = NULL;
    fr_model_ws *ws = NULL;
    fr_grad *g = NULL;
    fr_optim *o = NULL;
    fr_optim_config oc;
    fr_optim_config_default(&oc, FR_OPTIM_ADAM);
    oc.sparse_rows = sparse;
    if (fr_model_create(&global, &cfg) || fr_model_create(&m, &cfg) || fr_model_ws_create(&ws, m, 32) ||
        fr_grad_create(&g, m) || fr_optim_create(&o, m, &oc))
        return 1;
    size_t ns = fr_model_n_shared(m), per = 525;
    float *delta = malloc(ns * 4);
    uint32_t u[525] = {0}, it[525];
    float y[525];
    fr_rng r;
    fr_rng_init(&r, 9, 0, 0, FR_PURPOSE_TEST);
    double t0 = now(), tot = 0;
    for (int client = 0; client < 943; client++) {
        for (size_t i = 0; i < per; i++) { it[i] = fr_rng_below(&r, 1682); y[i] = (float)(i % 5 == 0); }
        fr_model_set_shared(m, fr_model_params(global));
        fr_optim_reset(o);
        for (size_t at = 0; at < per; at += 32) {
            size_t n = per - at < 32 ? per - at : 32;
            fr_batch b = {u + at, it + at, y + at, NULL, n, NULL};
            double loss;
            fr_grad_zero(g);
            if (fr_model_loss_grad(m, ws, &b, g, &loss) || fr_optim_step(o, m, g)) return 1;
            tot += loss;
        }
        fr_model_shared_delta(m, fr_model_params(global), delta);
    }
    double dt = now() - t0;
    printf("neumf FL round (943 clients x 525 samples, batch 32, adam %s): %.3f s\n", sparse ? "sparse" : "dense ", dt);
    free(delta);
    fr_optim_free(o); fr_grad_free(g); fr_model_ws_free(ws); fr_model_free(m); fr_model_free(global);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 2 && argv[1][0] == 'f') return bench_fl_round(0) | bench_fl_round(1);
    if (argc == 2) return bench_parallel(256, atoi(argv[1]));
    if (argc == 3) return bench_model((size_t)atoi(argv[1]), atoi(argv[2]), FR_MODEL_NEUMF);
    size_t Bs[] = {32, 256};
    size_t shapes[][2] = {{64, 32}, {32, 16}, {16, 8}, {16, 1}};
    for (int i = 0; i < 2; i++)
        for (int s = 0; s < 4; s++) bench_linear(Bs[i], shapes[s][0], shapes[s][1]);
    int rc = 0;
    for (int i = 0; i < 2; i++)
        for (int sp = 0; sp < 2; sp++) rc |= bench_model(Bs[1 - i], sp, FR_MODEL_NEUMF);
    rc |= bench_model(256, 1, FR_MODEL_MF);
    rc |= bench_parallel(256, 2);
    rc |= bench_fl_round(0);
    rc |= bench_fl_round(1);
    return rc;
}
