/* Simulated attacks and faults (src/runtime/sim.c, adversary.c) and the exposure metric
 * (src/eval/exposure.c), each against an independent computation: er@10 against a full
 * sort per user; a compromised client's RESULT against the honest one of the same seed
 * (scale, signflip exactly; noise by its moments); a fake's RESULT against the promotion
 * rule recomputed from the global model and the popularity counted here; the clients a
 * faulty round takes against the crash draws and simulated times recomputed here (with a
 * deadline, stragglers and over-selection); a short round retried and never applied; the
 * same model for 1 and 3 threads; the specs' refusals. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fedrec/fedrec.h"
#include "fedrec/runtime.h"

static fr_dataset *synthetic(uint32_t users, uint32_t items, uint64_t n) {
    fr_gen_opts go;
    fr_gen_opts_default(&go);
    go.users = users;
    go.items = items;
    go.interactions = n;
    go.seed = 4;
    fr_dataset *d = NULL;
    cr_assert_eq(fr_dataset_generate(&d, &go), FR_OK);
    return d;
}

/* ------------------------------------------------------------------ er@10 */

static void tie_score(void *ctx, uint32_t u, const uint32_t *items, size_t n, float *out, int worker) {
    (void)ctx; (void)worker;
    for (size_t i = 0; i < n; i++) out[i] = (float)((u * 31u + items[i] * 17u) % 13u); /* many ties */
}

typedef struct cand { float s; uint32_t i; } cand;
static int by_rank(const void *x, const void *y) {
    const cand *a = x, *b = y;
    if (a->s != b->s) return a->s > b->s ? -1 : 1;
    return (a->i > b->i) - (a->i < b->i);
}

/* The naive ER@K: every candidate scored, sorted (score down, id up), target's position. */
static double naive_er(const fr_dataset *d, uint32_t target, uint32_t K, uint32_t *users_out) {
    uint32_t nu = fr_dataset_n_users(d), ni = fr_dataset_n_items(d), users = 0, hit = 0;
    cand *c = malloc(ni * sizeof *c);
    for (uint32_t u = 0; u < nu; u++) {
        const uint32_t *it;
        size_t n = fr_dataset_user(d, u, &it, NULL, NULL);
        bool has = false;
        for (size_t j = 0; j < n; j++) has |= it[j] == target;
        if (has) continue;
        users++;
        uint32_t m = 0;
        for (uint32_t i = 0; i < ni; i++) {
            bool seen = false;
            for (size_t j = 0; j < n; j++) seen |= it[j] == i;
            if (seen) continue;
            tie_score(NULL, u, &i, 1, &c[m].s, 0);
            c[m++].i = i;
        }
        qsort(c, m, sizeof *c, by_rank);
        for (uint32_t p = 0; p < m && p < K; p++) hit += c[p].i == target;
    }
    free(c);
    *users_out = users;
    return (double)hit / users;
}

Test(adversary, exposure_matches_a_full_sort) {
    fr_dataset *d = synthetic(60, 90, 1200);
    fr_pool *pool = NULL;
    cr_assert_eq(fr_pool_create(&pool, 3), FR_OK);
    uint32_t targets[4] = {0, 5, 44, 89};
    for (int t = 0; t < 4; t++)
        for (uint32_t K = 1; K <= 10; K += 9) {
            fr_eval_result r;
            memset(&r, 0, sizeof r);
            cr_assert_eq(fr_eval_exposure(tie_score, NULL, d, targets[t], K, t % 2 ? pool : NULL, &r), FR_OK, "%s",
                         fr_errmsg());
            uint32_t users;
            double want = naive_er(d, targets[t], K, &users);
            cr_assert(r.has_exposure);
            cr_assert_eq(r.exposure_users, users);
            cr_assert_eq(r.exposure, want, "target %u K %u: %g, naive %g", targets[t], K, r.exposure, want);
        }
    fr_eval_result r;
    cr_assert_eq(fr_eval_exposure(tie_score, NULL, d, 90, 10, NULL, &r), FR_ERR_RANGE);
    cr_assert_eq(fr_eval_exposure(tie_score, NULL, d, 3, 0, NULL, &r), FR_ERR_INVALID);
    fr_pool_free(pool);
    fr_dataset_free(d);
}

/* ------------------------------------------------------------------ attacks */

typedef struct seen_results {
    uint8_t *bytes[512];
    size_t n[512];
} seen_results;

static void observe(void *ctx, uint32_t c, const uint8_t *b, size_t n) {
    seen_results *s = ctx;
    if (c >= 512) return;
    free(s->bytes[c]);
    s->bytes[c] = malloc(n);
    memcpy(s->bytes[c], b, n);
    s->n[c] = n;
}

static void seen_free(seen_results *s) {
    for (int i = 0; i < 512; i++) free(s->bytes[i]);
}

static void configs(fr_model_config *mc, fr_fl_config *cfg, bool item_sum) {
    fr_model_config_default(mc, FR_MODEL_BPR);
    fr_fl_config_default(cfg, FR_MODEL_BPR);
    mc->dim = 8;
    cfg->seed = 5;
    cfg->local_epochs = 1;
    cfg->batch = 8;
    cfg->item_sum = item_sum;
}

/* One round of a sim with attack a (NULL: none), its RESULTs observed. */
static fr_sim *one_round(const fr_dataset *d, const fr_sim_attack *a, seen_results *seen, fr_model **before) {
    fr_model_config mc;
    fr_fl_config cfg;
    configs(&mc, &cfg, true);
    fr_sim *s = NULL;
    cr_assert_eq(fr_sim_create(&s, &mc, &cfg, d, NULL), FR_OK, "%s", fr_errmsg());
    if (a) cr_assert_eq(fr_sim_set_attack(s, a), FR_OK, "%s", fr_errmsg());
    fr_sim_set_observer(s, observe, seen);
    if (before) cr_assert_eq(fr_model_clone(before, fr_round_model(fr_sim_controller(s))), FR_OK);
    fr_round_stats st;
    cr_assert_eq(fr_sim_round(s, &st), FR_OK, "%s", fr_errmsg());
    return s;
}

static void check_poisoning(const char *spec) {
    fr_dataset *d = synthetic(50, 70, 800);
    fr_sim_attack a;
    cr_assert_eq(fr_sim_attack_parse(spec, &a), FR_OK, "%s", fr_errmsg());
    seen_results hs = {0}, as = {0};
    fr_sim *h = one_round(d, NULL, &hs, NULL), *s = one_round(d, &a, &as, NULL);
    const fr_update_shape *sh = fr_round_shape(fr_sim_controller(s));
    fr_result *hr = NULL, *ar = NULL;
    cr_assert_eq(fr_result_create(&hr), FR_OK);
    cr_assert_eq(fr_result_create(&ar), FR_OK);
    uint32_t bad = 0;
    double sum = 0, sq = 0, cnt = 0, sigma_units = 0;
    for (uint32_t c = 0; c < 50; c++) {
        bad += fr_sim_is_malicious(s, c);
        if (!hs.bytes[c]) { cr_assert_null(as.bytes[c]); continue; }
        cr_assert_eq(fr_result_decode(hr, hs.bytes[c], hs.n[c], sh), FR_OK, "%s", fr_errmsg());
        cr_assert_eq(fr_result_decode(ar, as.bytes[c], as.n[c], sh), FR_OK, "%s", fr_errmsg());
        cr_assert_eq(hr->weight, ar->weight);
        bool m = fr_sim_is_malicious(s, c);
        for (uint32_t t = 0; t < hr->n_tables; t++) {
            cr_assert_eq(hr->tables[t].count, ar->tables[t].count);
            cr_assert(!memcmp(hr->tables[t].ids, ar->tables[t].ids, hr->tables[t].count * 4));
            size_t nv = (size_t)hr->tables[t].count * hr->tables[t].width;
            for (size_t i = 0; i < nv; i++) {
                int64_t hv = hr->tables[t].values[i], av = ar->tables[t].values[i];
                if (!m) cr_assert_eq(av, hv, "honest client %u changed", c);
                else if (a.kind == FR_ATTACK_SIGNFLIP) cr_assert_eq(av, -hv);
                else if (a.kind == FR_ATTACK_SCALE) cr_assert_eq(av, hv * 3, "client %u: %lld vs 3 x %lld", c, (long long)av, (long long)hv);
                else { sum += (double)av; sq += (double)av * av; cnt++; sigma_units = 0.5 * 4294967296.0; } /* item_sum: w 1 */
            }
        }
        for (uint32_t i = 0; i < hr->dense_len; i++)
            if (!m) cr_assert_eq(ar->dense[i], hr->dense[i]);
            else if (a.kind == FR_ATTACK_SIGNFLIP) cr_assert_eq(ar->dense[i], -hr->dense[i]);
    }
    cr_assert_eq(bad, 10, "round(0.2 x 50) compromised clients, got %u", bad); /* 0.2 of 50 */
    if (a.kind == FR_ATTACK_NOISE) {
        cr_assert_gt(cnt, 500);
        double mean = sum / cnt, sd = sqrt(sq / cnt - mean * mean);
        cr_assert_lt(fabs(mean), 4 * sigma_units / sqrt(cnt), "noise mean %g", mean);
        cr_assert_lt(fabs(sd / sigma_units - 1), 0.1, "noise sd %g, expected %g", sd, sigma_units);
    }
    fr_result_free(hr);
    fr_result_free(ar);
    seen_free(&hs);
    seen_free(&as);
    fr_sim_free(h);
    fr_sim_free(s);
    fr_dataset_free(d);
}

Test(adversary, signflip_negates_the_compromised_updates) { check_poisoning("signflip:0.2"); }
Test(adversary, scale_multiplies_the_compromised_updates) { check_poisoning("scale:3:0.2"); }
Test(adversary, noise_replaces_the_values_with_gaussian_noise) { check_poisoning("noise:0.5:0.2"); }

Test(adversary, promotion_fakes_follow_the_rule) {
    fr_dataset *d = synthetic(50, 70, 800);
    uint32_t ni = fr_dataset_n_items(d), target = 60;
    for (int pop = 0; pop < 2; pop++) {
        fr_sim_attack a;
        cr_assert_eq(fr_sim_attack_parse(pop ? "promote-pop:60:0.1:2:5" : "promote:60:0.1:2:5", &a), FR_OK);
        seen_results ss = {0};
        fr_model *g0 = NULL;
        fr_sim *s = one_round(d, &a, &ss, &g0);
        cr_assert_eq(fr_sim_n_fake(s), 6); /* round(0.1 x 50 / 0.9) = round(5.56) */
        uint32_t ntot = fr_round_n_clients(fr_sim_controller(s));
        cr_assert_eq(ntot, 56);
        /* the popular reference items, counted here */
        uint32_t cnt[256] = {0}, ref[5];
        for (uint32_t u = 0; u < fr_dataset_n_users(d); u++) {
            const uint32_t *it;
            size_t n = fr_dataset_user(d, u, &it, NULL, NULL);
            for (size_t j = 0; j < n; j++) cnt[it[j]]++;
        }
        uint8_t used[256] = {0};
        used[target] = 1;
        for (int r = 0; r < 5; r++) {
            int best = -1;
            for (uint32_t i = 0; i < ni; i++)
                if (!used[i] && (best < 0 || cnt[i] > cnt[best])) best = (int)i;
            used[best] = 1;
            ref[r] = (uint32_t)best;
        }
        const fr_update_shape *sh = fr_round_shape(fr_sim_controller(s));
        fr_result *r = NULL;
        cr_assert_eq(fr_result_create(&r), FR_OK);
        const float *P = fr_model_params_const(g0);
        double m = 6.0 * ntot / ntot; /* every client is sampled: all 6 fakes a round */
        for (uint32_t c = 50; c < 56; c++) {
            cr_assert(fr_sim_is_malicious(s, c));
            cr_assert_not_null(ss.bytes[c], "fake %u sent nothing", c);
            cr_assert_eq(fr_result_decode(r, ss.bytes[c], ss.n[c], sh), FR_OK, "%s", fr_errmsg());
            cr_assert_eq(r->weight, 6);
            for (uint32_t i = 0; i < r->dense_len; i++) cr_assert_eq(r->dense[i], 0);
            uint32_t t = 0;
            for (int ti = 0; ti < fr_model_n_tensors(g0); ti++) {
                const fr_tensor *tt = fr_model_tensor(g0, ti);
                if (tt->kind != FR_TENSOR_ITEM_TABLE) continue;
                cr_assert_eq(r->tables[t].count, 1);
                cr_assert_eq(r->tables[t].ids[0], target);
                for (uint32_t x = 0; x < tt->cols && pop; x++) {
                    double cm = 0;
                    for (int k = 0; k < 5; k++) cm += P[tt->offset + (size_t)ref[k] * tt->cols + x];
                    double want = (2.0 * cm / 5 - P[tt->offset + (size_t)target * tt->cols + x]) / m;
                    double got = (double)r->tables[t].values[x] / 4294967296.0;
                    cr_assert_lt(fabs(got - want), 1e-6 + 1e-6 * fabs(want), "fake %u table %u col %u: %g vs %g", c, t, x, got, want);
                }
                t++;
            }
        }
        for (uint32_t c = 0; c < 50; c++) cr_assert(!fr_sim_is_malicious(s, c));
        fr_result_free(r);
        fr_model_free(g0);
        seen_free(&ss);
        fr_sim_free(s);
    }
    fr_dataset_free(d);
}

Test(adversary, refusals_name_the_value_and_what_was_expected) {
    fr_sim_attack a;
    const char *bad[] = {"promote", "promote:x:0.1", "promote:3:0.7", "promote:3:0", "scale:0:0.1", "signflip:0.1:2",
                         "noise:-1:0.1", "flood:0.1", "promote-pop:3:0.1:0", "promote:3:0.1:1:0", NULL};
    for (int i = 0; bad[i]; i++) {
        cr_assert_eq(fr_sim_attack_parse(bad[i], &a), FR_ERR_INVALID, "'%s' accepted", bad[i]);
        cr_assert(strstr(fr_errmsg(), "expected"), "'%s': %s", bad[i], fr_errmsg());
        cr_assert_eq(a.kind, FR_ATTACK_NONE);
    }
    cr_assert_eq(fr_sim_attack_parse("promote:3:0.1", &a), FR_OK);
    cr_assert_eq(a.kind, FR_ATTACK_PROMOTE);
    cr_assert_eq(a.target, 3);
    cr_assert_eq(a.fraction, 0.1);
    cr_assert_eq(a.factor, 1.0);
    cr_assert_eq(a.n_ref, 20);
    /* a target beyond the catalogue */
    fr_dataset *d = synthetic(20, 30, 200);
    fr_model_config mc;
    fr_fl_config cfg;
    configs(&mc, &cfg, true);
    fr_sim *s = NULL;
    cr_assert_eq(fr_sim_create(&s, &mc, &cfg, d, NULL), FR_OK);
    cr_assert_eq(fr_sim_attack_parse("promote:30:0.1", &a), FR_OK);
    cr_assert_eq(fr_sim_set_attack(s, &a), FR_ERR_INVALID);
    cr_assert(strstr(fr_errmsg(), "target item 30, expected < 30"), "%s", fr_errmsg());
    fr_sim_faults f;
    fr_sim_faults_default(&f);
    f.crash_rate = 1;
    cr_assert_eq(fr_sim_set_faults(s, &f), FR_ERR_INVALID);
    cr_assert(strstr(fr_errmsg(), "expected a probability in [0, 1)"), "%s", fr_errmsg());
    fr_sim_free(s);
    fr_dataset_free(d);
}

/* ------------------------------------------------------------------ faults */

static fr_sim *faulty(const fr_dataset *d, const fr_sim_faults *f, double cpr, uint32_t quorum, int threads,
                      fr_pool **pool, seen_results *seen) {
    fr_model_config mc;
    fr_fl_config cfg;
    configs(&mc, &cfg, true);
    cfg.clients_per_round = cpr;
    cfg.min_results = quorum;
    cr_assert_eq(fr_pool_create(pool, threads), FR_OK);
    fr_sim *s = NULL;
    cr_assert_eq(fr_sim_create(&s, &mc, &cfg, d, *pool), FR_OK, "%s", fr_errmsg());
    cr_assert_eq(fr_sim_set_faults(s, f), FR_OK, "%s", fr_errmsg());
    if (seen) fr_sim_set_observer(s, observe, seen);
    return s;
}

Test(adversary, crashes_drop_exactly_the_drawn_clients) {
    fr_dataset *d = synthetic(50, 70, 800);
    fr_sim_faults f;
    fr_sim_faults_default(&f);
    f.crash_rate = 0.3;
    fr_pool *pool;
    fr_sim *s = faulty(d, &f, 0, 0, 2, &pool, NULL);
    for (uint32_t round = 1; round <= 2; round++) {
        fr_round_stats st;
        cr_assert_eq(fr_sim_round(s, &st), FR_OK, "%s", fr_errmsg());
        uint32_t taken[64], n = fr_sim_last_taken(s, taken, 64), want = 0, crashed = 0;
        for (uint32_t c = 0; c < 50; c++) {
            fr_rng r;
            fr_rng_init(&r, 5, round, c, FR_PURPOSE_FAULT); /* attempt 0 */
            bool crash = fr_rng_double(&r) < 0.3;
            const uint32_t *it;
            bool data = fr_dataset_user(d, c, &it, NULL, NULL) > 0;
            crashed += crash;
            if (crash || !data) continue;
            cr_assert_lt(want, n);
            cr_assert_eq(taken[want], c, "round %u: taken %u, expected %u", round, taken[want], c);
            want++;
        }
        cr_assert_eq(n, want);
        cr_assert_eq(st.clients, want);
        cr_assert_eq(st.crashed, crashed);
        cr_assert_eq(st.attempts, 1);
    }
    fr_sim_free(s);
    fr_pool_free(pool);
    fr_dataset_free(d);
}

/* The simulated time of a client, recomputed (see fedrec/runtime.h). */
static double client_time(const fr_sim_faults *f, uint32_t round, uint32_t c, uint64_t work, size_t tn, size_t rn) {
    fr_rng r;
    fr_rng_init(&r, 5, round, c, FR_PURPOSE_FAULT);
    (void)fr_rng_double(&r);
    double u = 1.0 + 0.5 * fr_rng_double(&r);
    bool slow = fr_rng_double(&r) < f->straggler_rate;
    return (double)work * f->sec_per_example * u * (slow ? f->straggler_slowdown : 1.0) + 2 * f->latency +
           (double)(tn + rn) / f->bandwidth;
}

typedef struct arr { double t; uint32_t c; } arr;
static int by_t(const void *x, const void *y) {
    const arr *a = x, *b = y;
    if (a->t != b->t) return a->t < b->t ? -1 : 1;
    return (a->c > b->c) - (a->c < b->c);
}

static void check_deadline(double over) {
    fr_dataset *d = synthetic(50, 70, 800);
    fr_sim_faults f;
    fr_sim_faults_default(&f);
    f.straggler_rate = 0.3;
    f.deadline = 0.09;
    f.sec_per_example = 1e-3;
    f.bandwidth = 5e6;
    f.latency = 0.01;
    f.over_select = over;
    fr_pool *pool;
    seen_results ss = {0};
    fr_sim *s = faulty(d, &f, over > 0 ? 20 : 0, 0, 3, &pool, &ss);
    fr_round_stats st;
    cr_assert_eq(fr_sim_round(s, &st), FR_OK, "%s", fr_errmsg());
    size_t tn = (size_t)(st.bytes_down / st.sampled);
    arr a[64];
    uint32_t n = 0;
    for (uint32_t c = 0; c < 50; c++) {
        if (!ss.bytes[c]) continue;
        const uint32_t *it;
        uint64_t work = fr_dataset_user(d, c, &it, NULL, NULL); /* one local epoch */
        a[n++] = (arr){client_time(&f, 1, c, work, tn, ss.n[c]), c};
    }
    qsort(a, n, sizeof *a, by_t);
    uint32_t want[64], nw = 0, cap = over > 0 ? 20 : 64;
    for (uint32_t i = 0; i < n; i++)
        if (a[i].t <= f.deadline && nw < cap) want[nw++] = a[i].c;
    for (uint32_t i = 1; i < nw; i++) /* increasing ids */
        for (uint32_t j = i; j > 0 && want[j - 1] > want[j]; j--) { uint32_t x = want[j]; want[j] = want[j - 1]; want[j - 1] = x; }
    uint32_t taken[64], nt = fr_sim_last_taken(s, taken, 64);
    cr_assert_gt(nw, 0);
    cr_assert_lt(nw, n, "the deadline dropped nobody: the test proves nothing");
    if (over > 0) cr_assert_eq(st.sampled, 30, "ceil(1.5 x 20) sampled, got %u", st.sampled);
    cr_assert_eq(nt, nw, "taken %u, expected %u", nt, nw);
    for (uint32_t i = 0; i < nw; i++) cr_assert_eq(taken[i], want[i]);
    cr_assert_eq(st.late, n - nw);
    seen_free(&ss);
    fr_sim_free(s);
    fr_pool_free(pool);
    fr_dataset_free(d);
}

Test(adversary, a_deadline_takes_the_results_in_time) { check_deadline(0); }
Test(adversary, over_selection_takes_the_first_wanted) { check_deadline(0.5); }

Test(adversary, a_short_round_is_retried_and_never_applied) {
    fr_dataset *d = synthetic(50, 70, 800);
    fr_sim_faults f;
    fr_sim_faults_default(&f);
    f.crash_rate = 0.6;
    f.max_attempts = 3;
    fr_pool *pool;
    fr_sim *s = faulty(d, &f, 0, 45, 2, &pool, NULL); /* a quorum of 45 of 50: never met */
    fr_model *g0 = NULL;
    cr_assert_eq(fr_model_clone(&g0, fr_round_model(fr_sim_controller(s))), FR_OK);
    fr_round_stats st;
    cr_assert_eq(fr_sim_round(s, &st), FR_ERR_EMPTY);
    cr_assert(strstr(fr_errmsg(), "in each of 3 attempts"), "%s", fr_errmsg());
    const fr_model *g = fr_round_model(fr_sim_controller(s));
    cr_assert_eq(fr_round_completed(fr_sim_controller(s)), 0);
    cr_assert(!memcmp(fr_model_params_const(g), fr_model_params_const(g0), fr_model_n_shared(g) * sizeof(float)));
    fr_sim_fault_stats fs;
    fr_sim_fault_stats_get(s, &fs);
    cr_assert_eq(fs.attempts, 3);
    fr_model_free(g0);
    fr_sim_free(s);
    fr_pool_free(pool);
    /* a quorum met on a later attempt: the attempts are fresh draws */
    f.crash_rate = 0.5;
    f.max_attempts = 50;
    s = faulty(d, &f, 0, 30, 2, &pool, NULL);
    cr_assert_eq(fr_sim_round(s, &st), FR_OK, "%s", fr_errmsg());
    cr_assert_geq(st.clients, 30);
    cr_assert_gt(st.attempts, 1, "the quorum was met at once: the test proves nothing");
    fr_sim_free(s);
    fr_pool_free(pool);
    fr_dataset_free(d);
}

/* ------------------------------------------------------------------ determinism */

static uint8_t *run_threads(const fr_dataset *d, int threads, size_t *n) {
    fr_sim_faults f;
    fr_sim_faults_default(&f);
    f.crash_rate = 0.2;
    f.straggler_rate = 0.3;
    f.deadline = 0.5;
    f.over_select = 0.3;
    fr_pool *pool = NULL;
    cr_assert_eq(fr_pool_create(&pool, threads), FR_OK);
    fr_sim_attack a;
    cr_assert_eq(fr_sim_attack_parse("promote-pop:7:0.1:2", &a), FR_OK);
    fr_model_config mc;
    fr_fl_config cfg;
    configs(&mc, &cfg, true);
    cfg.clients_per_round = 20;
    fr_sim *s = NULL;
    cr_assert_eq(fr_sim_create(&s, &mc, &cfg, d, pool), FR_OK);
    if (threads == 1) { /* either order of setting them: the same sim */
        cr_assert_eq(fr_sim_set_attack(s, &a), FR_OK, "%s", fr_errmsg());
        cr_assert_eq(fr_sim_set_faults(s, &f), FR_OK, "%s", fr_errmsg());
    } else {
        cr_assert_eq(fr_sim_set_faults(s, &f), FR_OK, "%s", fr_errmsg());
        cr_assert_eq(fr_sim_set_attack(s, &a), FR_OK, "%s", fr_errmsg());
    }
    uint32_t dropped = 0;
    for (int r = 0; r < 3; r++) {
        fr_round_stats st;
        cr_assert_eq(fr_sim_round(s, &st), FR_OK, "%s", fr_errmsg());
        dropped += st.crashed + st.late;
    }
    cr_assert_gt(dropped, 0, "no fault happened: the test proves nothing");
    uint8_t *out = NULL;
    fr_model_meta meta = {0};
    cr_assert_eq(fr_model_encode(fr_sim_model(s), &meta, &out, n), FR_OK);
    fr_sim_free(s);
    fr_pool_free(pool);
    return out;
}

Test(adversary, attack_and_faults_are_the_same_for_any_thread_count) {
    fr_dataset *d = synthetic(50, 70, 800);
    size_t n1, n3;
    uint8_t *m1 = run_threads(d, 1, &n1), *m3 = run_threads(d, 3, &n3);
    cr_assert_eq(n1, n3);
    cr_assert(!memcmp(m1, m3, n1), "1 and 3 threads gave different models");
    free(m1);
    free(m3);
    fr_dataset_free(d);
}
