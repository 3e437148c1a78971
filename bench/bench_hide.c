/* Which items did this user touch? Trains a federation on the `sim` runtime under one
 * item-hiding variant and attacks it: an honest-but-curious server (fr_attack) sees every
 * RESULT as the controller decodes it (nothing per client under secure aggregation) and
 * guesses each user's training items. Prints one JSON line: the attack's precision,
 * recall and F1 (mean over the users it observed), the F1 of random guessing of as many
 * items (exact, fr_attack_random_f1), the F1 of guessing the most popular items (what the
 * public popularity alone gives, no update needed), bytes up per client per round, and
 * HR@10 / NDCG@10 of the final model.
 *   bench_hide --ncf DIR [--model bpr] [--rounds R] [--clients C] [--threads T] [--seed S]
 *              [--secagg 1] [--decoys R] [--decoy-zero 1] [--dp-clip C] [--ldp-noise S]
 * Guessers: "ranked" takes the t items of highest score (t = the user's training items:
 * an attacker told the count, which a non-DP RESULT's weight n_k gives exactly);
 * "present" takes every item present non-zero in every round the user was seen in;
 * "seen_popular" the t most popular items among those seen non-zero (the prior within the
 * rows: with decoys the rows hold every real item, so this is never below "popular"). */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fedrec/attack.h"
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

typedef struct spy {
    pthread_mutex_t lock;
    fr_attack *att;
    fr_result *res;
    const fr_update_shape *shape;
    fr_err err;
} spy;

static void observe(void *ctx, uint32_t client, const uint8_t *bytes, size_t n) {
    (void)client;
    spy *s = ctx;
    pthread_mutex_lock(&s->lock);
    fr_err e = fr_result_decode(s->res, bytes, n, s->shape);
    if (!e) e = fr_attack_observe(s->att, s->res);
    if (e && !s->err) s->err = e;
    pthread_mutex_unlock(&s->lock);
}

static int die(const char *what) {
    fprintf(stderr, "bench_hide: %s: %s\n", what, fr_errmsg());
    return 1;
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

typedef struct pop_rank { double p; uint32_t i; } pop_rank;
static int by_pop(const void *x, const void *y) {
    const pop_rank *a = x, *b = y;
    if (a->p != b->p) return a->p > b->p ? -1 : 1;
    return (a->i > b->i) - (a->i < b->i);
}

int main(int argc, char **argv) {
    const char *ncf = NULL, *model = "bpr";
    int rounds = 0, threads = 2, secagg = 0, decoy_zero = 0;
    double clients = 0, decoys = 0, clip = 0, ldp = 0;
    uint64_t seed = 1;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "--ncf")) ncf = v;
        else if (!strcmp(k, "--model")) model = v;
        else if (!strcmp(k, "--rounds")) rounds = atoi(v);
        else if (!strcmp(k, "--clients")) clients = atof(v);
        else if (!strcmp(k, "--threads")) threads = atoi(v);
        else if (!strcmp(k, "--seed")) seed = strtoull(v, NULL, 10);
        else if (!strcmp(k, "--secagg")) secagg = atoi(v);
        else if (!strcmp(k, "--decoys")) decoys = atof(v);
        else if (!strcmp(k, "--decoy-zero")) decoy_zero = atoi(v);
        else if (!strcmp(k, "--dp-clip")) clip = atof(v);
        else if (!strcmp(k, "--ldp-noise")) ldp = atof(v);
        else { fprintf(stderr, "bench_hide: unknown option %s\n", k); return 2; }
    }
    if (!ncf) { fprintf(stderr, "usage: bench_hide --ncf DIR [options]\n"); return 2; }
    char a[4096], b[4096], c[4096];
    fr_load_opts lo;
    fr_load_opts_default(&lo);
    fr_dataset *train = NULL, *test = NULL;
    fr_negatives *negs = NULL;
    snprintf(a, sizeof a, "%s/train.rating", ncf);
    snprintf(b, sizeof b, "%s/test.rating", ncf);
    snprintf(c, sizeof c, "%s/test.negative", ncf);
    if (fr_dataset_load_pair(&train, &test, a, b, &lo)) return die("load");
    if (fr_negatives_load(&negs, c, train)) return die("negatives");
    fr_model_kind kind;
    if (fr_model_kind_parse(model, &kind)) return die("model");
    fr_run_config rc;
    if (fr_run_config_preset(&rc, "fedrec", kind, false, train)) return die("preset");
    fr_fl_config fc = rc.fl;
    fr_model_config mc = rc.model;
    fc.seed = mc.seed = seed;
    fc.clients_per_round = clients;
    fc.decoys = decoys;
    fc.decoy_zero = decoy_zero != 0;
    fc.dp_clip = clip;
    fc.ldp_noise = ldp;
    if (rounds <= 0) rounds = (int)rc.loop.steps;
    uint32_t U = fr_dataset_n_users(train), N = fr_dataset_n_items(train);
    double *pop = malloc(N * sizeof *pop);
    for (uint32_t i = 0; i < N; i++) pop[i] = 1;
    for (uint32_t u = 0; u < U; u++) {
        const uint32_t *it;
        size_t n = fr_dataset_user(train, u, &it, NULL, NULL);
        for (size_t j = 0; j < n; j++) pop[it[j]] += 1;
    }
    fr_pool *pool = NULL;
    fr_sim *sim = NULL;
    if (fr_pool_create(&pool, threads)) return die("pool");
    if (fr_sim_create(&sim, &mc, &fc, train, pool)) return die("sim");
    fr_sim_set_secagg(sim, secagg != 0);
    spy sp = {.err = FR_OK};
    pthread_mutex_init(&sp.lock, NULL);
    if (fr_attack_create(&sp.att, U, N, pop) || fr_result_create(&sp.res)) return die("attack");
    sp.shape = fr_round_shape(fr_sim_controller(sim));
    fr_sim_set_observer(sim, observe, &sp);
    uint64_t up = 0, took = 0;
    double t0 = now_s();
    for (int r = 1; r <= rounds; r++) {
        fr_round_stats st;
        if (fr_sim_round(sim, &st)) return die("round");
        if (sp.err) return die("observe");
        up += st.bytes_up;
        took += st.clients;
    }
    double secs = now_s() - t0;
    int nw = fr_pool_size(pool);
    sc s = {fr_sim_model(sim), calloc((size_t)nw, sizeof(fr_model_ws *)), calloc((size_t)nw, sizeof(uint32_t *))};
    for (int i = 0; i < nw; i++) {
        if (fr_model_ws_create(&s.ws[i], s.m, 1024)) return die("ws");
        s.u[i] = malloc(1024 * sizeof(uint32_t));
    }
    fr_eval_opts eo;
    fr_eval_opts_default(&eo);
    fr_eval_result er;
    fr_eval_result_init(&er, &eo);
    if (fr_eval_sampled(score, &s, test, negs, &eo, pool, &er)) return die("eval");
    /* the attack */
    pop_rank *pr = malloc(N * sizeof *pr);
    for (uint32_t i = 0; i < N; i++) pr[i] = (pop_rank){pop[i], i};
    qsort(pr, N, sizeof *pr, by_pop);
    uint32_t *guess = malloc(N * sizeof *guess), *prior = malloc(N * sizeof *prior);
    for (uint32_t i = 0; i < N; i++) prior[i] = pr[i].i;
    double rk_p = 0, rk_r = 0, rk_f = 0, rk_rand = 0, pr_f = 0, pr_f_all = 0, ps_p = 0, ps_r = 0, ps_f = 0, ps_rand = 0,
           all_rand = 0, ps_pop = 0;
    uint32_t seen = 0;
    for (uint32_t u = 0; u < U; u++) {
        const uint32_t *it;
        size_t t = fr_dataset_user(train, u, &it, NULL, NULL);
        if (!t) continue;
        fr_attack_score sr;
        fr_attack_score_sets(prior, t, it, t, &sr);
        pr_f_all += sr.f1;
        all_rand += fr_attack_random_f1(N, (uint32_t)t, (uint32_t)t);
        if (fr_attack_rounds(sp.att, u) == 0) continue;
        seen++;
        pr_f += sr.f1;
        uint32_t g;
        if (fr_attack_guess(sp.att, u, (uint32_t)t, guess, &g)) return die("guess");
        fr_attack_score_sets(guess, g, it, t, &sr);
        rk_p += sr.precision, rk_r += sr.recall, rk_f += sr.f1;
        rk_rand += fr_attack_random_f1(N, (uint32_t)t, (uint32_t)t);
        if (fr_attack_guess(sp.att, u, 0, guess, &g)) return die("guess");
        fr_attack_score_sets(guess, g, it, t, &sr);
        ps_p += sr.precision, ps_r += sr.recall, ps_f += sr.f1;
        ps_rand += fr_attack_random_f1(N, (uint32_t)t, g);
        /* the prior within what was seen: every item seen non-zero, most popular first */
        if (fr_attack_guess(sp.att, u, N, guess, &g)) return die("guess");
        uint32_t m = 0;
        for (uint32_t j = 0; j < g; j++) pr[m++] = (pop_rank){pop[guess[j]], guess[j]};
        qsort(pr, m, sizeof *pr, by_pop);
        for (uint32_t j = 0; j < m; j++) guess[j] = pr[j].i;
        fr_attack_score_sets(guess, m < t ? m : t, it, t, &sr);
        ps_pop += sr.f1;
    }
    uint32_t users = 0;
    for (uint32_t u = 0; u < U; u++) users += fr_dataset_user(train, u, NULL, NULL, NULL) > 0;
    double k = seen ? seen : 1;
    printf("{\"model\":\"%s\",\"rounds\":%d,\"clients_per_round\":%g,\"secagg\":%d,\"decoys\":%g,\"decoy_zero\":%d,"
           "\"dp_clip\":%g,\"ldp_noise\":%g,\"users_observed\":%u,\"users\":%u,"
           "\"ranked\":{\"precision\":%.4f,\"recall\":%.4f,\"f1\":%.4f,\"random_f1\":%.4f},"
           "\"present\":{\"precision\":%.4f,\"recall\":%.4f,\"f1\":%.4f,\"random_f1\":%.4f},"
           "\"seen_popular_f1\":%.4f,\"popular_f1\":%.4f,\"random_f1_all\":%.4f,\"bytes_up_per_client\":%.0f,\"hr@10\":%.4f,\"ndcg@10\":%.4f,"
           "\"train_s\":%.1f}\n",
           model, rounds, clients, secagg, decoys, decoy_zero, clip, ldp, seen, users, rk_p / k, rk_r / k, rk_f / k,
           rk_rand / k, ps_p / k, ps_r / k, ps_f / k, ps_rand / k, ps_pop / k, seen ? pr_f / k : pr_f_all / (users ? users : 1),
           all_rand / (users ? users : 1), took ? (double)up / (double)took : 0, er.hr[1], er.ndcg[1], secs);
    return 0;
}
