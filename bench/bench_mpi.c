/* Scale benchmark of the sim and mpi runtimes on a generated population (fr_dataset_generate,
 * in memory on every rank: no text file to read): mf with the fedrec preset's client rule
 * (SGD, item rows summed, FedAdam), one JSON line per round with its seconds and client
 * updates per second and resident memory, then one line per rank with its peak resident
 * memory, what the data's CSR arrays take per client, and what everything else the run
 * holds takes per client of its store: the run's peak resident memory (VmHWM, reset just
 * before the run through /proc/self/clear_refs) less resident memory just before it, over
 * the clients whose private rows the rank keeps (store_clients: every user on rank 0 and
 * in the sim, a rank > 0's own clients c % ranks == rank).
 *   bench_mpi --users N --items M --per-user K [--dim 32] [--rounds 1] [--threads T]
 *             [--local-epochs 1] [--clients-per-round C] [--wire 0|1] [--runtime sim|mpi] [--shard 1|0]
 *             [--gen-share 1|0]
 *   mpirun -np 2 bench_mpi --runtime mpi ...
 * With mpi, a rank > 0 keeps only its clients' interactions: it generates only them
 * (fr_dataset_generate_share; its config's data-made figure, mf's mean, is rank 0's:
 * fr_run_mpi broadcasts it), or with --gen-share 0 generates all and keeps its share once
 * the run's config is made (fr_mpi_shard); --shard 0 keeps all. rss_after_shard_mb and
 * end_rss_mb say what it then holds, peak_rss_mb includes the generation before,
 * run_peak_rss_mb only the run.
 * The evaluation the loop makes after the last round runs on a small generated test set
 * (its figures mean nothing; only time and memory are measured). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "fedrec/fedrec.h"
#include "fedrec/runtime.h"

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Resident memory now and at its peak, in MiB (Linux /proc/self/status). */
static void rss_mb(double *now, double *peak) {
    *now = *peak = NAN;
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return;
    char line[256];
    while (fgets(line, sizeof line, f)) {
        if (!strncmp(line, "VmRSS:", 6)) *now = atof(line + 6) / 1024.0;
        if (!strncmp(line, "VmHWM:", 6)) *peak = atof(line + 6) / 1024.0;
    }
    fclose(f);
}

typedef struct ctx { int rank, size; uint32_t clients; double max_rss, cpu; } ctx;

/* CPU seconds this process has used (every thread), user + system. */
static double cpu_s(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + 1e-6 * (double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_sec +
           1e-6 * (double)ru.ru_stime.tv_usec;
}

static int on_step(void *user, const fr_loop_step *s) {
    ctx *c = user;
    double now, peak;
    rss_mb(&now, &peak);
    /* on a shared machine the wall clock counts other people's jobs: also the CPU time
     * rank 0 spent on its share of the clients (its round and the loop's bookkeeping) */
    double cpu = cpu_s() - c->cpu;
    c->cpu = cpu_s();
    printf("{\"round\":%u,\"clients\":%u,\"seconds\":%.3f,\"updates_per_s\":%.0f,\"cpu_s_rank0\":%.3f,"
           "\"updates_per_cpu_s\":%.0f,\"loss\":%.5f,\"rss_mb\":%.0f}\n",
           s->index, s->round.clients, s->seconds, (double)s->round.clients / s->seconds, cpu,
           (double)s->round.clients / c->size / cpu, s->loss, now);
    fflush(stdout);
    if (!(now <= c->max_rss)) c->max_rss = now;
    return 0;
}

static int die(const char *what) {
    fprintf(stderr, "bench_mpi: %s: %s\n", what, fr_errmsg());
    return 1;
}

int main(int argc, char **argv) {
    uint32_t users = 100000, items = 100000, per = 20, dim = 32, rounds = 1, epochs = 1;
    int threads = 1, wire = 0, shard = 1, gen_share_opt = 1;
    double cpr = 0;
    const char *runtime = "sim";
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "--users")) users = (uint32_t)strtoul(v, NULL, 10);
        else if (!strcmp(k, "--items")) items = (uint32_t)strtoul(v, NULL, 10);
        else if (!strcmp(k, "--per-user")) per = (uint32_t)strtoul(v, NULL, 10);
        else if (!strcmp(k, "--dim")) dim = (uint32_t)strtoul(v, NULL, 10);
        else if (!strcmp(k, "--rounds")) rounds = (uint32_t)strtoul(v, NULL, 10);
        else if (!strcmp(k, "--local-epochs")) epochs = (uint32_t)strtoul(v, NULL, 10);
        else if (!strcmp(k, "--threads")) threads = atoi(v);
        else if (!strcmp(k, "--wire")) wire = atoi(v);
        else if (!strcmp(k, "--clients-per-round")) cpr = atof(v);
        else if (!strcmp(k, "--runtime")) runtime = v;
        else if (!strcmp(k, "--shard")) shard = atoi(v);
        else if (!strcmp(k, "--gen-share")) gen_share_opt = atoi(v);
        else { fprintf(stderr, "bench_mpi: unknown option %s\n", k); return 2; }
    }
    bool mpi = !strcmp(runtime, "mpi");
    int rank = 0, size = 1;
    if (mpi && fr_mpi_init(&rank, &size)) return die("--runtime mpi");
    double base, peak0;
    rss_mb(&base, &peak0);
    fr_gen_opts go;
    fr_gen_opts_default(&go);
    go.users = users;
    go.items = items;
    go.interactions = (uint64_t)users * per;
    fr_dataset *train = NULL, *test = NULL;
    double t0 = now_s();
    /* a rank > 0 of mpi makes only its clients' data (--gen-share 1, the default with
     * --shard 1): the users c % ranks == rank, as fr_mpi_shard would keep them */
    bool gen_share = mpi && shard && gen_share_opt && rank > 0 && size > 1;
    if (gen_share ? fr_dataset_generate_share(&train, &go, (uint32_t)rank, (uint32_t)size)
                  : fr_dataset_generate(&train, &go))
        return die("generate");
    double tgen = now_s() - t0, after_data, peak_data;
    rss_mb(&after_data, &peak_data);
    go.users = 200;
    go.interactions = 2000;
    go.seed = 7;
    if (fr_dataset_generate(&test, &go)) return die("generate the test set");
    fr_run_config c;
    if (fr_run_config_preset(&c, "fedrec", FR_MODEL_MF, false, train)) return die("preset");
    c.model.dim = dim;
    c.fl.local_epochs = epochs;
    c.fl.clients_per_round = cpr;
    c.loop.steps = rounds;
    c.loop.eval_every = 0;
    c.threads = threads;
    c.wire = wire != 0;
    if (rank == 0)
        fprintf(stderr, "bench_mpi: %s, %d rank(s) x %d thread(s): mf d=%u, %u clients, %u items, %llu interactions "
                "(generated in %.1f s), E=%u, wire %d\n", runtime, size, threads, dim, fr_dataset_n_users(train),
                fr_dataset_n_items(train), (unsigned long long)fr_dataset_n_interactions(train), tgen, epochs, wire);
    /* a rank > 0 keeps only its clients' interactions (fr_mpi_shard); --shard 0 keeps all */
    double shard_rss = NAN, shard_peak;
    if (mpi && shard && !gen_share) {
        fr_dataset *share = NULL;
        if (fr_mpi_shard(&c, train, &share)) return die("shard");
        if (share) {
            fr_dataset_free(train);
            train = share;
        }
        rss_mb(&shard_rss, &shard_peak);
    }
    if (gen_share) rss_mb(&shard_rss, &shard_peak);
    /* the run's own peak: VmHWM reset to VmRSS now (Linux; NAN where it cannot be reset) */
    double before_run, ignore;
    rss_mb(&before_run, &ignore);
    bool hwm_reset = false;
    FILE *cr = fopen("/proc/self/clear_refs", "w");
    if (cr) {
        hwm_reset = fputs("5", cr) >= 0;
        hwm_reset = (fclose(cr) == 0) && hwm_reset;
    }
    ctx cx = {rank, size, users, 0, 0};
    fr_loop_summary sum;
    fr_mpi_stats ms = {0};
    double tr = now_s();
    cx.cpu = cpu_s();
    fr_err e = mpi ? fr_run_mpi(&c, train, test, NULL, rank == 0 ? on_step : NULL, &cx, &sum, NULL, &ms)
                   : fr_run(&c, train, test, NULL, on_step, &cx, &sum, NULL);
    if (e) return die("run");
    tr = now_s() - tr;
    double now, peak;
    rss_mb(&now, &peak);
    double run_peak = hwm_reset ? peak : NAN;
    /* the clients whose private rows this rank keeps: a rank > 0 of mpi, its own */
    uint32_t store_clients = users;
    if (mpi && rank > 0) store_clients = (uint32_t)rank < users ? (users - (uint32_t)rank + (uint32_t)size - 1) / (uint32_t)size : 0;
    double held = (hwm_reset ? run_peak : (rank == 0 ? cx.max_rss : now)) - before_run;
    uint64_t data_bytes = (uint64_t)(fr_dataset_n_users(train) + 1) * 8 + fr_dataset_n_interactions(train) * 20;
    printf("{\"rank\":%d,\"ranks\":%d,\"clients\":%u,\"peak_rss_mb\":%.0f,\"gen_peak_mb\":%.0f,\"data_rss_mb\":%.0f,"
           "\"rss_after_shard_mb\":%.0f,\"run_peak_rss_mb\":%.0f,\"end_rss_mb\":%.0f,"
           "\"data_csr_bytes_per_client\":%.0f,\"store_clients\":%u,\"store_bytes_per_client\":%.0f,\"run_s\":%.1f,"
           "\"words_reduced\":%llu}\n",
           rank, size, users, peak, peak_data, after_data - base, shard_rss, run_peak, now, (double)data_bytes / users,
           store_clients, store_clients ? held * 1048576.0 / store_clients : 0.0, tr,
           (unsigned long long)ms.words_reduced);
    fflush(stdout);
    fr_dataset_free(train);
    fr_dataset_free(test);
    if (mpi) fr_mpi_finalize();
    return 0;
}
