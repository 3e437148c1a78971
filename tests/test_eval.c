/* Evaluation metrics: known answers worked out by hand in the comments, a naive
 * full-sort reference against the heap-based full-catalogue ranking, thread-count
 * independence, JSON keys, and an allocation-failure sweep. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>

#include "data/dataset.h"
#include "fedrec/eval.h"

/* ------------------------------------------------------------ helpers */

/* Scores from a table: s[user * n_items + item]. */
typedef struct table_model {
    const float *s;
    uint32_t n_items;
} table_model;

static void table_score(void *ctx, uint32_t user, const uint32_t *items, size_t n, float *out, int worker) {
    (void)worker;
    const table_model *m = ctx;
    for (size_t i = 0; i < n; i++) out[i] = m->s[(size_t)user * m->n_items + items[i]];
}

/* A pure function of (user, item), quantised to 1/8 so that ties happen. */
static float hash_score(uint32_t u, uint32_t i) {
    uint32_t ctr[4] = {u, i, 0, 0}, key[2] = {7, 11}, out[4];
    fr_philox4x32_10(ctr, key, out);
    return (float)(out[0] % 64) / 8.0f;
}
static _Atomic int bad_worker; /* set when a callback sees a worker outside [0, 3) */
static void hash_model(void *ctx, uint32_t user, const uint32_t *items, size_t n, float *out, int worker) {
    (void)ctx;
    if (worker < 0 || worker >= 3) bad_worker = 1;
    for (size_t i = 0; i < n; i++) out[i] = hash_score(user, items[i]);
}

/* A dataset with dense ids equal to the given ids (identity maps over n_users, n_items). */
static fr_dataset *make_ds(uint32_t n_users, uint32_t n_items, size_t n, const uint32_t *u, const uint32_t *it,
                           const float *r) {
    fri_rows rows = {0};
    for (size_t k = 0; k < n; k++) cr_assert_eq(fri_rows_push(&rows, u[k], it[k], r ? r[k] : 1.0f, (int64_t)k), FR_OK);
    fr_idmap *mu = NULL, *mi = NULL;
    cr_assert_eq(fri_idmap_identity(&mu, n_users), FR_OK);
    cr_assert_eq(fri_idmap_identity(&mi, n_items), FR_OK);
    fr_dataset *d = NULL;
    cr_assert_eq(fri_dataset_build(&d, &rows, mu, mi), FR_OK);
    fr_idmap_release(mu);
    fr_idmap_release(mi);
    fri_rows_free(&rows);
    return d;
}

/* Negatives built directly in the struct (the accessors live in another file). */
static fr_negatives *make_negs(uint32_t n_users, const uint32_t *counts, const uint32_t *items) {
    fr_negatives *ng = calloc(1, sizeof *ng);
    ng->n_users = n_users;
    ng->ptr = calloc(n_users + 1, sizeof *ng->ptr);
    size_t total = 0;
    for (uint32_t u = 0; u < n_users; u++) { total += counts[u]; ng->ptr[u + 1] = total; }
    ng->items = calloc(total ? total : 1, sizeof *ng->items);
    memcpy(ng->items, items, total * sizeof *items);
    return ng;
}
static void free_negs(fr_negatives *ng) {
    free(ng->ptr); free(ng->items); free(ng);
}

#define EPS 1e-12
#define near(a, b) cr_assert(fabs((double)(a) - (double)(b)) < EPS, "%s = %.17g, expected %.17g", #a, (double)(a), (double)(b))

/* ------------------------------------------------------------ sampled ranking */

/* 21 items. Negatives of every user: items 1..20, scored 1..20 (score = item id).
 * Test item 0, scored 50 for user 0 (rank 0), 17.5 for user 1 (items 18,19,20 above:
 * rank 3), 8.5 for user 2 (items 9..20 above: rank 12). User 3 has negatives but no test
 * item: skipped.
 *   HR@5 = HR@10 = 2/3, HR@20 = 1
 *   NDCG@10 = (1 + 1/log2(5)) / 3, NDCG@20 = (1 + 1/log2(5) + 1/log2(14)) / 3
 *   MRR@10 = (1 + 1/4) / 3, MRR@20 = (1 + 1/4 + 1/13) / 3
 *   AUC: user 0 20/20, user 1 17/20, user 2 8/20 -> (1 + 0.85 + 0.4) / 3 = 0.75 */
Test(eval_sampled, ranks_0_3_12_by_hand) {
    enum { NU = 4, NI = 21 };
    float s[NU * NI];
    for (uint32_t u = 0; u < NU; u++)
        for (uint32_t i = 1; i < NI; i++) s[u * NI + i] = (float)i;
    s[0 * NI] = 50.0f; s[1 * NI] = 17.5f; s[2 * NI] = 8.5f; s[3 * NI] = 0.0f;
    uint32_t tu[] = {0, 1, 2}, ti[] = {0, 0, 0};
    fr_dataset *test = make_ds(NU, NI, 3, tu, ti, NULL);
    uint32_t counts[NU] = {20, 20, 20, 20}, items[80];
    for (int k = 0; k < 80; k++) items[k] = (uint32_t)(k % 20 + 1);
    fr_negatives *ng = make_negs(NU, counts, items);
    table_model m = {s, NI};
    fr_eval_opts o;
    fr_eval_opts_default(&o); /* K = 5, 10, 20 */
    fr_eval_result r;
    fr_eval_result_init(&r, &o);
    cr_assert_eq(fr_eval_sampled(table_score, &m, test, ng, &o, NULL, &r), FR_OK);
    cr_assert(r.has_sampled);
    cr_assert_eq(r.users_sampled, 3);
    near(r.hr[0], 2.0 / 3);
    near(r.hr[1], 2.0 / 3);
    near(r.hr[2], 1.0);
    near(r.ndcg[1], (1 + 1 / log2(5.0)) / 3);
    near(r.ndcg[2], (1 + 1 / log2(5.0) + 1 / log2(14.0)) / 3);
    near(r.mrr[1], (1 + 0.25) / 3);
    near(r.mrr[2], (1 + 0.25 + 1.0 / 13) / 3);
    near(r.ndcg[0], (1 + 1 / log2(5.0)) / 3);
    near(r.auc, 0.75);
    fr_dataset_free(test);
    free_negs(ng);
}

/* Ties: the test item takes the mean position of its tie group.
 * User 0's test item scored 18: 19 and 20 are strictly higher, one negative ties (18)
 *   -> position 2 + 1/2 = 2.5: HR@1 = 0, HR@5 = 1, NDCG@5 = 1/log2(4.5), MRR@5 = 1/3.5;
 *   AUC = (17 below + 0.5 tie) / 20 = 0.875 */
Test(eval_sampled, ties_take_the_mean_position) {
    enum { NI = 21 };
    float s[NI];
    for (uint32_t i = 1; i < NI; i++) s[i] = (float)i;
    s[0] = 18.0f;
    uint32_t tu[] = {0}, ti[] = {0};
    fr_dataset *test = make_ds(1, NI, 1, tu, ti, NULL);
    uint32_t counts[1] = {20}, items[20];
    for (int k = 0; k < 20; k++) items[k] = (uint32_t)(k + 1);
    fr_negatives *ng = make_negs(1, counts, items);
    table_model m = {s, NI};
    fr_eval_opts o;
    fr_eval_opts_default(&o);
    o.ks[0] = 1; o.ks[1] = 5; o.n_ks = 2;
    fr_eval_result r;
    fr_eval_result_init(&r, &o);
    cr_assert_eq(fr_eval_sampled(table_score, &m, test, ng, &o, NULL, &r), FR_OK);
    near(r.hr[0], 0.0);
    near(r.hr[1], 1.0);
    near(r.ndcg[1], 1.0 / log2(4.5));
    near(r.mrr[1], 1.0 / 3.5);
    near(r.auc, 0.875);
    fr_dataset_free(test);
    free_negs(ng);
}

/* A user with two test items: each is ranked against the negatives on its own, then
 * averaged within the user, then over users. User 0: test items 0 (score 50, rank 0) and
 * 21 (score 8.5, rank 12): HR@10 = 1/2 for the user. User 1: test item 0 (rank 3): 1.
 * HR@10 = (0.5 + 1) / 2 = 0.75; NDCG@10 = ((1 + 0)/2 + 1/log2(5)) / 2. */
Test(eval_sampled, several_test_items_average_within_user) {
    enum { NU = 2, NI = 22 };
    float s[NU * NI];
    for (uint32_t u = 0; u < NU; u++)
        for (uint32_t i = 1; i <= 20; i++) s[u * NI + i] = (float)i;
    s[0] = 50.0f; s[21] = 8.5f;
    s[NI + 0] = 17.5f; s[NI + 21] = 0.0f;
    uint32_t tu[] = {0, 0, 1}, ti[] = {0, 21, 0};
    fr_dataset *test = make_ds(NU, NI, 3, tu, ti, NULL);
    uint32_t counts[NU] = {20, 20}, items[40];
    for (int k = 0; k < 40; k++) items[k] = (uint32_t)(k % 20 + 1);
    fr_negatives *ng = make_negs(NU, counts, items);
    table_model m = {s, NI};
    fr_eval_opts o;
    fr_eval_opts_default(&o);
    fr_eval_result r;
    fr_eval_result_init(&r, &o);
    cr_assert_eq(fr_eval_sampled(table_score, &m, test, ng, &o, NULL, &r), FR_OK);
    cr_assert_eq(r.users_sampled, 2);
    cr_assert_eq(r.tests_sampled, 3);
    near(r.hr[1], 0.75);
    near(r.ndcg[1], (0.5 + 1 / log2(5.0)) / 2);
    fr_dataset_free(test);
    free_negs(ng);
}

Test(eval_sampled, no_rankable_user_is_empty) {
    uint32_t tu[] = {1}, ti[] = {0};
    fr_dataset *test = make_ds(2, 3, 1, tu, ti, NULL);
    uint32_t counts[2] = {2, 0}, items[2] = {1, 2}; /* user 1 has a test item but no negatives */
    fr_negatives *ng = make_negs(2, counts, items);
    float s[6] = {0};
    table_model m = {s, 3};
    fr_eval_opts o;
    fr_eval_opts_default(&o);
    fr_eval_result r;
    fr_eval_result_init(&r, &o);
    cr_assert_eq(fr_eval_sampled(table_score, &m, test, ng, &o, NULL, &r), FR_ERR_EMPTY);
    fr_dataset_free(test);
    free_negs(ng);
}

/* ------------------------------------------------------------ ratings */

/* ratings 4, 2, 5; predictions 4.5, 0, 6.
 * raw errors 0.5, -2, 1: RMSE = sqrt(5.25/3), MAE = 3.5/3
 * clipped to [1,5] -> 4.5, 1, 5: errors 0.5, -1, 0: RMSE = sqrt(1.25/3), MAE = 0.5 */
Test(eval_ratings, rmse_mae_clipped_and_raw) {
    uint32_t tu[] = {0, 0, 1}, ti[] = {0, 1, 1};
    float tr[] = {4, 2, 5};
    fr_dataset *test = make_ds(2, 2, 3, tu, ti, tr);
    float s[4] = {4.5f, 0.0f, 0.0f, 6.0f};
    table_model m = {s, 2};
    fr_eval_opts o;
    fr_eval_opts_default(&o);
    fr_eval_result r;
    fr_eval_result_init(&r, &o);
    cr_assert_eq(fr_eval_ratings(table_score, &m, test, &o, NULL, &r), FR_OK);
    cr_assert_eq(r.ratings, 3);
    near(r.rmse_raw, sqrt(5.25 / 3));
    near(r.mae_raw, 3.5 / 3);
    near(r.rmse, sqrt(1.25 / 3));
    near(r.mae, 0.5);
    o.clip = false;
    cr_assert_eq(fr_eval_ratings(table_score, &m, test, &o, NULL, &r), FR_OK);
    near(r.rmse, sqrt(5.25 / 3));
    fr_dataset_free(test);
}

/* ------------------------------------------------------------ full catalogue */

/* 8 items; user 0 trained on 1 and 3 (excluded), test items 2 and 5.
 * scores: 0:.9 1:1.0 2:.5 3:.95 4:.7 5:.9 6:.1 7:.5
 * candidates by score: 0(.9) 5(.9) 4(.7) 2(.5) 7(.5) 6(.1); a relevant item takes the
 * mean position of its tie group: item 5 ties with 0 at positions 0-1 -> 0.5; item 2 ties
 * with 7 at positions 3-4 -> 3.5.
 *   K=1: HR 1, NDCG = 1/log2(2.5) (ideal 1), MRR 1/1.5, P 1, R 1/2
 *   K=2: HR 1, NDCG = (1/log2 2.5) / (1 + 1/log2 3), MRR 1/1.5, P 1/2, R 1/2
 *   K=5: NDCG = (1/log2 2.5 + 1/log2 5.5) / (1 + 1/log2 3), P 2/5, R 1
 *   K=10 (more than the 6 candidates): P = 2/10, R = 1
 *   AUC: non-relevant 0(.9) 4(.7) 7(.5) 6(.1); item 5 (.9): 3 below + tie with 0 = 3.5;
 *        item 2 (.5): 6 below + tie with 7 = 1.5; (3.5 + 1.5) / 8 = 0.625 */
static const float full_s[8] = {0.9f, 1.0f, 0.5f, 0.95f, 0.7f, 0.9f, 0.1f, 0.5f};

static void check_full_by_hand(size_t block) {
    uint32_t au[] = {0, 0}, ai[] = {1, 3}, bu[] = {0, 0}, bi[] = {5, 2};
    fr_dataset *train = make_ds(1, 8, 2, au, ai, NULL), *test = make_ds(1, 8, 2, bu, bi, NULL);
    table_model m = {full_s, 8};
    fr_eval_opts o;
    fr_eval_opts_default(&o);
    o.ks[0] = 1; o.ks[1] = 2; o.ks[2] = 5; o.ks[3] = 10; o.n_ks = 4;
    o.block = block;
    fr_eval_result r;
    fr_eval_result_init(&r, &o);
    cr_assert_eq(fr_eval_full(table_score, &m, train, test, &o, NULL, &r), FR_OK);
    cr_assert_eq(r.users_full, 1);
    double l3 = 1 / log2(3.0), a = 1 / log2(2.5), b = 1 / log2(5.5);
    near(r.hr_full[0], 1); near(r.ndcg_full[0], a); near(r.mrr_full[0], 1 / 1.5);
    near(r.precision_full[0], 1); near(r.recall_full[0], 0.5);
    near(r.hr_full[1], 1); near(r.ndcg_full[1], a / (1 + l3)); near(r.mrr_full[1], 1 / 1.5);
    near(r.precision_full[1], 0.5); near(r.recall_full[1], 0.5);
    near(r.hr_full[2], 1); near(r.ndcg_full[2], (a + b) / (1 + l3)); near(r.mrr_full[2], 1 / 1.5);
    near(r.precision_full[2], 0.4); near(r.recall_full[2], 1);
    near(r.precision_full[3], 0.2); near(r.recall_full[3], 1);
    near(r.auc_full, 0.625);
    fr_dataset_free(train);
    fr_dataset_free(test);
}

Test(eval_full, exclusion_ties_precision_recall_by_hand) { check_full_by_hand(4096); }
Test(eval_full, same_answer_with_tiny_blocks) { check_full_by_hand(3); check_full_by_hand(1); }

Test(eval_topk, order_ties_and_exclusion) {
    uint32_t au[] = {0, 0}, ai[] = {1, 3};
    fr_dataset *train = make_ds(1, 8, 2, au, ai, NULL);
    table_model m = {full_s, 8};
    uint32_t it[16];
    float sc[16];
    size_t n = 0;
    cr_assert_eq(fr_eval_topk(table_score, &m, train, 0, 3, true, it, sc, &n), FR_OK);
    cr_assert_eq(n, 3);
    cr_assert_eq(it[0], 0); cr_assert_eq(it[1], 5); cr_assert_eq(it[2], 4);
    cr_assert_eq(sc[0], 0.9f); cr_assert_eq(sc[2], 0.7f);
    cr_assert_eq(fr_eval_topk(table_score, &m, train, 0, 3, false, it, NULL, &n), FR_OK);
    cr_assert_eq(it[0], 1); cr_assert_eq(it[1], 3); cr_assert_eq(it[2], 0);
    cr_assert_eq(fr_eval_topk(table_score, &m, train, 0, 16, true, it, sc, &n), FR_OK);
    cr_assert_eq(n, 6); /* only 6 candidates */
    uint32_t want[6] = {0, 5, 4, 2, 7, 6};
    for (int i = 0; i < 6; i++) cr_assert_eq(it[i], want[i], "position %d: %u, expected %u", i, it[i], want[i]);
    cr_assert_eq(fr_eval_topk(table_score, &m, train, 0, 0, true, it, sc, &n), FR_ERR_INVALID);
    fr_dataset_free(train);
}

/* ------------------------------------------------------------ naive reference */

typedef struct ref_item { float s; uint32_t id; } ref_item;
static int ref_cmp(const void *a, const void *b) {
    const ref_item *x = a, *y = b;
    if (x->s != y->s) return x->s > y->s ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

/* Random train/test over NU users x NI items; full sort of all candidates per user. */
Test(eval_full, heap_matches_full_sort_reference) {
    enum { NU = 40, NI = 500 };
    fr_rng g;
    fr_rng_init(&g, 42, 0, 0, FR_PURPOSE_TEST);
    uint32_t *au = malloc(NU * NI * sizeof *au), *ai = malloc(NU * NI * sizeof *ai);
    uint32_t *bu = malloc(NU * NI * sizeof *bu), *bi = malloc(NU * NI * sizeof *bi);
    size_t na = 0, nb = 0;
    for (uint32_t u = 0; u < NU; u++)
        for (uint32_t i = 0; i < NI; i++) {
            uint32_t x = fr_rng_below(&g, 100);
            if (x < 10) { au[na] = u; ai[na++] = i; }
            else if (x < 11 && u % 7 != 3) { bu[nb] = u; bi[nb++] = i; } /* users 3, 10, ... have no test */
        }
    fr_dataset *train = make_ds(NU, NI, na, au, ai, NULL), *test = make_ds(NU, NI, nb, bu, bi, NULL);
    fr_eval_opts o;
    fr_eval_opts_default(&o);
    o.ks[0] = 1; o.ks[1] = 5; o.ks[2] = 10; o.ks[3] = 50; o.n_ks = 4;
    o.block = 37;
    fr_eval_result r;
    fr_eval_result_init(&r, &o);
    cr_assert_eq(fr_eval_full(hash_model, NULL, train, test, &o, NULL, &r), FR_OK);

    double hr[4] = {0}, nd[4] = {0}, mr[4] = {0}, pr[4] = {0}, rc[4] = {0}, auc = 0;
    uint32_t users = 0, auc_users = 0;
    ref_item *c = malloc(NI * sizeof *c);
    uint32_t top[NI];
    for (uint32_t u = 0; u < NU; u++) {
        size_t nrel = 0;
        for (uint32_t i = 0; i < NI; i++) nrel += fr_dataset_has(test, u, i);
        if (nrel == 0) continue;
        users++;
        size_t nc = 0;
        for (uint32_t i = 0; i < NI; i++) {
            if (fr_dataset_has(train, u, i) && !fr_dataset_has(test, u, i)) continue;
            c[nc].s = hash_score(u, i);
            c[nc++].id = i;
        }
        qsort(c, nc, sizeof *c, ref_cmp);
        for (size_t i = 0; i < nc; i++) top[i] = c[i].id;
        (void)top;
        /* each relevant item at the mean sorted position of its tie group */
        for (size_t k = 0; k < 4; k++) {
            size_t K = o.ks[k];
            double hits = 0, dcg = 0, idcg = 0, best = INFINITY;
            for (size_t i = 0; i < nc; i++) {
                if (!fr_dataset_has(test, u, c[i].id)) continue;
                size_t lo = i, hi = i;
                while (lo > 0 && c[lo - 1].s == c[i].s) lo--;
                while (hi + 1 < nc && c[hi + 1].s == c[i].s) hi++;
                double pos = ((double)lo + (double)hi) / 2;
                if (pos < best) best = pos;
                if (pos < (double)K) { hits++; dcg += 1 / log2(pos + 2); }
            }
            for (size_t i = 0; i < K && i < nrel; i++) idcg += 1 / log2((double)i + 2);
            hr[k] += hits > 0; nd[k] += dcg / idcg; mr[k] += best < (double)K ? 1 / (best + 1) : 0;
            pr[k] += hits / (double)K; rc[k] += hits / (double)nrel;
        }
        double good = 0, pairs = 0;
        for (size_t a = 0; a < nc; a++) {
            if (!fr_dataset_has(test, u, c[a].id)) continue;
            for (size_t b = 0; b < nc; b++) {
                if (fr_dataset_has(test, u, c[b].id)) continue;
                pairs++;
                good += c[a].s > c[b].s ? 1.0 : c[a].s == c[b].s ? 0.5 : 0.0;
            }
        }
        if (pairs > 0) { auc += good / pairs; auc_users++; }
    }
    cr_assert_eq(r.users_full, users);
    for (size_t k = 0; k < 4; k++) {
        near(r.hr_full[k], hr[k] / users);
        near(r.ndcg_full[k], nd[k] / users);
        near(r.mrr_full[k], mr[k] / users);
        near(r.precision_full[k], pr[k] / users);
        near(r.recall_full[k], rc[k] / users);
    }
    near(r.auc_full, auc / auc_users);
    /* top-K against the same reference, for a user with exclusions */
    size_t nc = 0;
    for (uint32_t i = 0; i < NI; i++) {
        if (fr_dataset_has(train, 5, i)) continue;
        c[nc].s = hash_score(5, i);
        c[nc++].id = i;
    }
    qsort(c, nc, sizeof *c, ref_cmp);
    uint32_t it[60];
    size_t n = 0;
    cr_assert_eq(fr_eval_topk(hash_model, NULL, train, 5, 60, true, it, NULL, &n), FR_OK);
    cr_assert_eq(n, 60);
    for (size_t i = 0; i < 60; i++) cr_assert_eq(it[i], c[i].id, "top-K position %zu", i);
    free(c); free(au); free(ai); free(bu); free(bi);
    fr_dataset_free(train);
    fr_dataset_free(test);
}

/* ------------------------------------------------------------ determinism */

static void eval_all(int threads, const fr_dataset *train, const fr_dataset *test, const fr_negatives *ng,
                     fr_eval_result *r) {
    fr_pool *p = NULL;
    cr_assert_eq(fr_pool_create(&p, threads), FR_OK);
    fr_eval_opts o;
    fr_eval_opts_default(&o);
    o.block = 100;
    fr_eval_result_init(r, &o);
    cr_assert_eq(fr_eval_sampled(hash_model, NULL, test, ng, &o, p, r), FR_OK);
    cr_assert_eq(fr_eval_full(hash_model, NULL, train, test, &o, p, r), FR_OK);
    o.clip_lo = 2; o.clip_hi = 6;
    cr_assert_eq(fr_eval_ratings(hash_model, NULL, test, &o, p, r), FR_OK);
    fr_pool_free(p);
}

Test(eval, bit_identical_for_1_and_3_threads) {
    enum { NU = 500, NI = 300 };
    fr_rng g;
    fr_rng_init(&g, 9, 0, 0, FR_PURPOSE_TEST);
    uint32_t *au = malloc(NU * NI * sizeof *au), *ai = malloc(NU * NI * sizeof *ai);
    uint32_t *bu = malloc(NU * NI * sizeof *bu), *bi = malloc(NU * NI * sizeof *bi);
    float *br = malloc(NU * NI * sizeof *br);
    size_t na = 0, nb = 0;
    for (uint32_t u = 0; u < NU; u++)
        for (uint32_t i = 0; i < NI; i++) {
            uint32_t x = fr_rng_below(&g, 100);
            if (x < 8) { au[na] = u; ai[na++] = i; }
            else if (x < 10) { bu[nb] = u; bi[nb] = i; br[nb++] = (float)(1 + fr_rng_below(&g, 5)); }
        }
    fr_dataset *train = make_ds(NU, NI, na, au, ai, NULL), *test = make_ds(NU, NI, nb, bu, bi, br);
    free(au); free(ai); free(bu); free(bi); free(br);
    uint32_t nu = test->n_users, *counts = malloc(nu * sizeof *counts), *items = malloc(nu * 30 * sizeof *items);
    for (uint32_t u = 0; u < nu; u++) {
        counts[u] = 30;
        for (uint32_t k = 0; k < 30; k++) items[u * 30 + k] = (u * 7 + k * 11) % 300;
    }
    fr_negatives *ng = make_negs(nu, counts, items);
    fr_eval_result a, b;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    eval_all(1, train, test, ng, &a);
    eval_all(3, train, test, ng, &b);
    cr_assert(a.users_full > 100);
    cr_assert(a.hr_full[2] > 0 && a.hr_full[2] < 1);
    cr_assert_eq(memcmp(&a, &b, sizeof a), 0, "results differ between 1 and 3 threads");
    cr_assert_eq(bad_worker, 0, "a callback got a worker index outside the pool");
    free(counts); free(items);
    free_negs(ng);
    fr_dataset_free(train); fr_dataset_free(test);
}

/* ------------------------------------------------------------ JSON, options, OOM */

Test(eval_json, keys_and_values) {
    fr_eval_opts o;
    fr_eval_opts_default(&o);
    o.ks[0] = 10; o.n_ks = 1;
    fr_eval_result r;
    fr_eval_result_init(&r, &o);
    r.has_sampled = true; r.hr[0] = 0.5; r.ndcg[0] = 0.25; r.mrr[0] = 0.125; r.auc = 0.75; r.users_sampled = 4;
    r.has_full = true; r.hr_full[0] = 1; r.precision_full[0] = 0.1; r.recall_full[0] = 0.5; r.auc_full = NAN;
    r.users_full = 3;
    r.has_rating = true; r.rmse = 0.875; r.mae = 0.5; r.rmse_raw = 1; r.mae_raw = 0.75; r.ratings = 12;
    char buf[1024];
    size_t len = 0;
    cr_assert_eq(fr_eval_result_json(&r, buf, sizeof buf, &len), FR_OK);
    cr_assert_eq(len, strlen(buf));
    cr_assert_str_eq(buf, "\"hr@10\":0.5,\"ndcg@10\":0.25,\"mrr@10\":0.125,\"auc\":0.75,\"eval_users\":4,"
                          "\"hr@10_full\":1,\"ndcg@10_full\":0,\"mrr@10_full\":0,\"precision@10_full\":0.10000000000000001,"
                          "\"recall@10_full\":0.5,\"auc_full\":null,\"eval_users_full\":3,"
                          "\"rmse\":0.875,\"mae\":0.5,\"rmse_raw\":1,\"mae_raw\":0.75,\"eval_ratings\":12");
    char small[20];
    cr_assert_eq(fr_eval_result_json(&r, small, sizeof small, &len), FR_ERR_RANGE);
    cr_assert(strlen(small) < sizeof small);
    fr_eval_result_init(&r, &o);
    cr_assert_eq(fr_eval_result_json(&r, buf, sizeof buf, &len), FR_OK);
    cr_assert_str_eq(buf, "");
}

Test(eval_opts, check_explains) {
    fr_eval_opts o;
    fr_eval_opts_default(&o);
    cr_assert_eq(fr_eval_opts_check(&o), FR_OK);
    o.ks[1] = 0;
    cr_assert_eq(fr_eval_opts_check(&o), FR_ERR_INVALID);
    cr_assert(strstr(fr_errmsg(), "ks[1] = 0") != NULL, "%s", fr_errmsg());
    fr_eval_opts_default(&o);
    o.n_ks = 9;
    cr_assert_eq(fr_eval_opts_check(&o), FR_ERR_INVALID);
    fr_eval_opts_default(&o);
    o.clip_lo = 5; o.clip_hi = 1;
    cr_assert_eq(fr_eval_opts_check(&o), FR_ERR_INVALID);
}

Test(eval, allocation_failure_sweep) {
    uint32_t au[] = {0, 0}, ai[] = {1, 3}, bu[] = {0, 0}, bi[] = {5, 2};
    fr_dataset *train = make_ds(1, 8, 2, au, ai, NULL), *test = make_ds(1, 8, 2, bu, bi, NULL);
    uint32_t counts[1] = {3}, items[3] = {0, 4, 6};
    fr_negatives *ng = make_negs(1, counts, items);
    table_model m = {full_s, 8};
    fr_eval_opts o;
    fr_eval_opts_default(&o);
    fr_pool *p = NULL;
    cr_assert_eq(fr_pool_create(&p, 2), FR_OK);
    for (int which = 0; which < 4; which++) {
        int ok = 0;
        for (long n = 1; n < 200 && !ok; n++) {
            fr_eval_result r;
            fr_eval_result_init(&r, &o);
            uint32_t it[4];
            size_t nt;
            fr_test_fail_alloc(n, false);
            fr_err e = which == 0   ? fr_eval_full(table_score, &m, train, test, &o, p, &r)
                       : which == 1 ? fr_eval_sampled(table_score, &m, test, ng, &o, p, &r)
                       : which == 2 ? fr_eval_ratings(table_score, &m, test, &o, p, &r)
                                    : fr_eval_topk(table_score, &m, train, 0, 4, true, it, NULL, &nt);
            fr_test_fail_alloc(0, false);
            cr_assert(e == FR_OK || e == FR_ERR_NOMEM, "case %d, failing allocation %ld: %s", which, n,
                      fr_strerror(e));
            if (e == FR_OK) {
                ok = 1;
                cr_assert(n > 1, "case %d never allocates?", which);
            }
        }
        cr_assert(ok);
    }
    fr_pool_free(p);
    free_negs(ng);
    fr_dataset_free(train);
    fr_dataset_free(test);
}

/* A diverged model: NaN ranks below every number and ties with -inf; ties take the mean
 * position of their group. User 0 scores NaN everywhere (its test item ties with the 5
 * negatives: position 2.5); user 1 scores its test item 5 and the negatives NaN
 * (position 0); user 2 scores its test item NaN and the negatives 1 (position 5).
 *   sampled HR@1 = HR@2 = 1/3; AUC = (1/2 all ties + 1 + 0) / 3 = 1/2;
 *   full (user 0 trained on item 5: 5 candidates, position 2): HR@1 = HR@2 = 1/3. */
static void nan_score(void *ctx, uint32_t user, const uint32_t *items, size_t n, float *out, int worker) {
    (void)ctx; (void)worker;
    for (size_t k = 0; k < n; k++) {
        if (user == 0) out[k] = NAN;
        else if (user == 1) out[k] = items[k] == 0 ? 5.0f : NAN;
        else out[k] = items[k] == 0 ? NAN : 1.0f;
    }
}

Test(eval_sampled, nan_scores_rank_last_and_ties_take_the_mean) {
    enum { NU = 3, NI = 6 };
    uint32_t tu[] = {0, 1, 2}, ti[] = {0, 0, 0};
    fr_dataset *test = make_ds(NU, NI, 3, tu, ti, NULL);
    uint32_t counts[NU] = {5, 5, 5}, items[15];
    for (int k = 0; k < 15; k++) items[k] = (uint32_t)(k % 5 + 1);
    fr_negatives *ng = make_negs(NU, counts, items);
    fr_eval_opts o;
    fr_eval_opts_default(&o);
    o.ks[0] = 1; o.ks[1] = 2; o.n_ks = 2;
    fr_eval_result r;
    fr_eval_result_init(&r, &o);
    cr_assert_eq(fr_eval_sampled(nan_score, NULL, test, ng, &o, NULL, &r), FR_OK);
    near(r.hr[0], 1.0 / 3);
    near(r.hr[1], 1.0 / 3);
    near(r.auc, 0.5);
    uint32_t nu[] = {0}, ni[] = {5};
    fr_dataset *train = make_ds(NU, NI, 1, nu, ni, NULL);
    fr_eval_result_init(&r, &o);
    cr_assert_eq(fr_eval_full(nan_score, NULL, train, test, &o, NULL, &r), FR_OK);
    near(r.hr_full[0], 1.0 / 3);
    near(r.hr_full[1], 1.0 / 3);
    fr_dataset_free(train);
    fr_dataset_free(test);
    free_negs(ng);
}

/* A collapsed model (every score the same: a finite constant, +inf or -inf) ranks like a
 * coin, never first: with 99 negatives the test item sits at position 49.5, so HR@10 =
 * NDCG@10 = 0 and AUC = 1/2, in sampled and full-catalogue ranking. Partly tied: with 3
 * negatives at +inf, 96 at the test item's score and none below, the test item is at
 * 3 + 96/2 = 51. */
static float const_value;
static void const_score(void *ctx, uint32_t user, const uint32_t *items, size_t n, float *out, int worker) {
    (void)ctx; (void)user; (void)worker; (void)items;
    for (size_t k = 0; k < n; k++) out[k] = const_value;
}
static void partly_tied(void *ctx, uint32_t user, const uint32_t *items, size_t n, float *out, int worker) {
    (void)ctx; (void)user; (void)worker;
    for (size_t k = 0; k < n; k++) out[k] = items[k] >= 1 && items[k] <= 3 ? INFINITY : 0.5f;
}

Test(eval_sampled, collapsed_models_rank_like_a_coin) {
    enum { NI = 100 };
    uint32_t tu[] = {0}, ti[] = {0};
    fr_dataset *test = make_ds(1, NI, 1, tu, ti, NULL);
    uint32_t counts[1] = {99}, items[99];
    for (int k = 0; k < 99; k++) items[k] = (uint32_t)(k + 1);
    fr_negatives *ng = make_negs(1, counts, items);
    uint32_t nu[] = {0}, ni[] = {50};
    fr_dataset *train = make_ds(1, NI, 1, nu, ni, NULL); /* excludes item 50: 98 non-relevant candidates */
    fr_eval_opts o;
    fr_eval_opts_default(&o);
    const float values[3] = {0.25f, INFINITY, -INFINITY};
    for (int v = 0; v < 3; v++) {
        const_value = values[v];
        fr_eval_result r;
        fr_eval_result_init(&r, &o);
        cr_assert_eq(fr_eval_sampled(const_score, NULL, test, ng, &o, NULL, &r), FR_OK);
        for (size_t k = 0; k < 3; k++) {
            near(r.hr[k], 0.0);
            near(r.ndcg[k], 0.0);
            near(r.mrr[k], 0.0);
        }
        near(r.auc, 0.5);
        fr_eval_result_init(&r, &o);
        cr_assert_eq(fr_eval_full(const_score, NULL, train, test, &o, NULL, &r), FR_OK);
        for (size_t k = 0; k < 3; k++) {
            near(r.hr_full[k], 0.0);
            near(r.ndcg_full[k], 0.0);
        }
        near(r.auc_full, 0.5);
    }
    o.ks[0] = 51; o.ks[1] = 52; o.n_ks = 2;
    fr_eval_result r;
    fr_eval_result_init(&r, &o);
    cr_assert_eq(fr_eval_sampled(partly_tied, NULL, test, ng, &o, NULL, &r), FR_OK);
    near(r.hr[0], 0.0); /* position 51 is not < 51 */
    near(r.hr[1], 1.0);
    near(r.ndcg[1], 1 / log2(53.0));
    near(r.mrr[1], 1 / 52.0);
    near(r.auc, 0.5 * 96 / 99);
    fr_dataset_free(train);
    fr_dataset_free(test);
    free_negs(ng);
}
