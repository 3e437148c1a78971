/* Federated training benchmark on the `sim` runtime: one JSON line per round with the
 * seconds, the training loss, the bytes and the test metric.
 *   bench_fed --ncf DIR [--model neumf] [--rounds R] [--threads T] ...    (HR@10 / NDCG@10)
 *   bench_fed --train u1.base --test u1.test --model mf ...               (RMSE / MAE)
 *   bench_fed --synthetic USERS,ITEMS,INTERACTIONS --model mf ...         (time only)
 * Options: --wire 0 (skip encode/decode) --dense-steps 1 (item rows step densely, bit for bit) --strategy S --item-agg mean|rows|sum --server-lr X --optimizer sgd|adam|adagrad --lr X
 *          --local-epochs E --batch B --clients C --dim D --l2 X --seed S */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "fedrec/eval.h"
#include "fedrec/fedrec.h"
#include "fedrec/runtime.h"

typedef struct sc { fr_model *m; fr_model_ws **ws; uint32_t **u; } sc;

static void score(void *ctx, uint32_t user, const uint32_t *items, size_t n, float *out, int worker) {
    sc *s = ctx;
    for (size_t at = 0; at < n; at += 1024) {
        size_t k = n - at < 1024 ? n - at : 1024;
        for (size_t i = 0; i < k; i++) s->u[worker][i] = user;
        if (fr_model_score(s->m, s->ws[worker], s->u[worker], items + at, k, out + at))
            for (size_t i = 0; i < k; i++) out[at + i] = NAN;
    }
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Peak resident memory of the process so far, in MB. */
static double peak_mb(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0;
}

static int die(const char *what) {
    fprintf(stderr, "bench_fed: %s: %s\n", what, fr_errmsg());
    return 1;
}

int main(int argc, char **argv) {
    const char *ncf = NULL, *trainp = NULL, *testp = NULL, *model = "neumf", *strategy = "fedavg", *optim = NULL, *item_agg = "mean";
    int rounds = 3, threads = 0, E = 0, B = 0, dim = 0;
    double slr = NAN, lr = NAN, clients = 0, l2 = NAN;
    uint64_t seed = 1;
    int wire = 1;             /* --wire 0: no encode/decode (bytes still counted) */
    int dense_steps = 0;      /* --dense-steps 1: the client's bit-exact dense item-row steps */
    const char *synth = NULL; /* "USERS,ITEMS,INTERACTIONS": fr_dataset_generate, no evaluation */
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "--ncf")) ncf = v;
        else if (!strcmp(k, "--train")) trainp = v;
        else if (!strcmp(k, "--test")) testp = v;
        else if (!strcmp(k, "--model")) model = v;
        else if (!strcmp(k, "--rounds")) rounds = atoi(v);
        else if (!strcmp(k, "--threads")) threads = atoi(v);
        else if (!strcmp(k, "--strategy")) strategy = v;
        else if (!strcmp(k, "--item-agg")) item_agg = v;
        else if (!strcmp(k, "--server-lr")) slr = atof(v);
        else if (!strcmp(k, "--optimizer")) optim = v;
        else if (!strcmp(k, "--lr")) lr = atof(v);
        else if (!strcmp(k, "--local-epochs")) E = atoi(v);
        else if (!strcmp(k, "--batch")) B = atoi(v);
        else if (!strcmp(k, "--clients")) clients = atof(v);
        else if (!strcmp(k, "--dim")) dim = atoi(v);
        else if (!strcmp(k, "--l2")) l2 = atof(v);
        else if (!strcmp(k, "--seed")) seed = strtoull(v, NULL, 10);
        else if (!strcmp(k, "--synthetic")) synth = v;
        else if (!strcmp(k, "--wire")) wire = atoi(v);
        else if (!strcmp(k, "--dense-steps")) dense_steps = atoi(v);
        else { fprintf(stderr, "bench_fed: unknown option %s\n", k); return 2; }
    }
    char a[4096], b[4096], c[4096];
    fr_load_opts lo;
    fr_load_opts_default(&lo);
    fr_dataset *train = NULL, *test = NULL;
    fr_negatives *negs = NULL;
    if (ncf) {
        snprintf(a, sizeof a, "%s/train.rating", ncf);
        snprintf(b, sizeof b, "%s/test.rating", ncf);
        snprintf(c, sizeof c, "%s/test.negative", ncf);
        if (fr_dataset_load_pair(&train, &test, a, b, &lo)) return die("load");
        if (fr_negatives_load(&negs, c, train)) return die("negatives");
    } else if (synth) {
        fr_gen_opts go;
        fr_gen_opts_default(&go);
        unsigned long long nu = 0, ni = 0, nx = 0;
        if (sscanf(synth, "%llu,%llu,%llu", &nu, &ni, &nx) != 3) { fprintf(stderr, "bench_fed: --synthetic U,I,N\n"); return 2; }
        go.users = (uint32_t)nu; go.items = (uint32_t)ni; go.interactions = nx;
        double tg = now_s();
        if (fr_dataset_generate(&train, &go)) return die("generate");
        fprintf(stderr, "bench_fed: generated %llu interactions in %.1f s\n",
                (unsigned long long)fr_dataset_n_interactions(train), now_s() - tg);
    } else if (trainp && testp) {
        if (fr_dataset_load_pair(&train, &test, trainp, testp, &lo)) return die("load");
    } else {
        fprintf(stderr, "usage: bench_fed --ncf DIR | --train F --test F [options]\n");
        return 2;
    }
    fr_model_kind kind;
    if (fr_model_kind_parse(model, &kind)) return die("model");
    fr_model_config mc;
    fr_model_config_default(&mc, kind);
    if (dim) mc.dim = (uint32_t)dim;
    if (!isnan(l2)) mc.l2 = (float)l2;
    if (kind == FR_MODEL_MF) {
        double s = 0; uint64_t n = 0;
        for (uint32_t u = 0; u < fr_dataset_n_users(train); u++) {
            const float *r; size_t k = fr_dataset_user(train, u, NULL, &r, NULL);
            for (size_t i = 0; i < k; i++) s += r[i];
            n += k;
        }
        mc.mu = (float)(s / (double)n);
    }
    fr_fl_config fc;
    fr_fl_config_default(&fc, kind);
    fc.seed = seed;
    if (fr_strategy_parse(strategy, &fc.strategy)) return die("strategy");
    if (strcmp(item_agg, "mean") && strcmp(item_agg, "rows") && strcmp(item_agg, "sum")) {
        fprintf(stderr, "bench_fed: --item-agg: expected mean, rows or sum, got '%s'\n", item_agg);
        return 2;
    }
    fc.row_norm = !strcmp(item_agg, "rows");
    fc.item_sum = !strcmp(item_agg, "sum");
    if (fc.strategy >= FR_STRATEGY_FEDADAM) fc.server_lr = 0.01f;
    if (!isnan(slr)) fc.server_lr = (float)slr;
    if (optim) {
        fr_optim_kind ok;
        if (fr_optim_kind_parse(optim, &ok)) return die("optimizer");
        if (ok != fc.local.kind) fr_optim_config_default(&fc.local, ok);
    }
    if (!isnan(lr)) fc.local.lr = (float)lr;
    if (E) fc.local_epochs = (uint32_t)E;
    if (B) fc.batch = (uint32_t)B;
    fc.clients_per_round = clients;
    fc.dense_steps = dense_steps != 0;
    fr_pool *pool = NULL;
    fr_sim *sim = NULL;
    if (fr_pool_create(&pool, threads)) return die("pool");
    if (fr_sim_create(&sim, &mc, &fc, train, pool)) return die("sim");
    fr_sim_set_wire(sim, wire != 0);
    int nw = fr_pool_size(pool);
    sc s = {fr_sim_model(sim), calloc((size_t)nw, sizeof(fr_model_ws *)), calloc((size_t)nw, sizeof(uint32_t *))};
    for (int i = 0; i < nw; i++) {
        if (fr_model_ws_create(&s.ws[i], s.m, 1024)) return die("ws");
        s.u[i] = malloc(1024 * sizeof(uint32_t));
    }
    fprintf(stderr, "bench_fed: %s, %u clients, %u items, %d threads, %s (item rows %s) lr_s %g, %s lr %g, E=%u B=%u\n",
            model, fr_dataset_n_users(train), fr_dataset_n_items(train), nw, fr_strategy_name(fc.strategy), item_agg,
            (double)fc.server_lr, fr_optim_kind_name(fc.local.kind),
            (double)fc.local.lr, fc.local_epochs, fc.batch);
    fr_eval_opts eo;
    fr_eval_opts_default(&eo);
    double total = 0;
    for (int r = 1; r <= rounds; r++) {
        double t0 = now_s();
        fr_round_stats st;
        if (fr_sim_round(sim, &st)) return die("round");
        double t1 = now_s();
        fr_eval_result er;
        fr_eval_result_init(&er, &eo);
        s.m = fr_sim_model(sim);
        fr_err e = !test ? FR_OK
                   : negs ? fr_eval_sampled(score, &s, test, negs, &eo, pool, &er)
                          : fr_eval_ratings(score, &s, test, &eo, pool, &er);
        if (e) return die("eval");
        double t2 = now_s();
        total += t2 - t0;
        if (!test)
            printf("{\"round\":%d,\"loss\":%.5f,\"clients\":%u,\"bytes_up\":%llu,\"bytes_down\":%llu,"
                   "\"seconds\":%.4f,\"updates_per_s\":%.0f,\"peak_rss_mb\":%.1f}\n", r, st.loss, st.clients,
                   (unsigned long long)st.bytes_up, (unsigned long long)st.bytes_down, t1 - t0,
                   (double)st.clients / (t1 - t0), peak_mb());
        else if (negs)
            printf("{\"round\":%d,\"loss\":%.5f,\"hr@10\":%.4f,\"ndcg@10\":%.4f,\"clients\":%u,\"bytes_up\":%llu,"
                   "\"bytes_down\":%llu,\"train_s\":%.4f,\"seconds\":%.4f}\n",
                   r, st.loss, er.hr[1], er.ndcg[1], st.clients, (unsigned long long)st.bytes_up,
                   (unsigned long long)st.bytes_down, t1 - t0, t2 - t0);
        else
            printf("{\"round\":%d,\"loss\":%.5f,\"rmse\":%.4f,\"mae\":%.4f,\"clients\":%u,\"bytes_up\":%llu,"
                   "\"bytes_down\":%llu,\"train_s\":%.4f,\"seconds\":%.4f}\n",
                   r, st.loss, er.rmse, er.mae, st.clients, (unsigned long long)st.bytes_up,
                   (unsigned long long)st.bytes_down, t1 - t0, t2 - t0);
        fflush(stdout);
    }
    if (rounds > 0) fprintf(stderr, "bench_fed: mean %.4f s/round\n", total / rounds);
    for (int i = 0; i < nw; i++) { fr_model_ws_free(s.ws[i]); free(s.u[i]); }
    free(s.ws); free(s.u);
    fr_sim_free(sim);
    fr_pool_free(pool);
    fr_negatives_free(negs);
    fr_dataset_free(train);
    fr_dataset_free(test);
    return 0;
}
