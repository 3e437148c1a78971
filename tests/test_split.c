/* Splits, evaluation negatives and the NCF/TSV writers. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/dataset.h"
#include "testutil.h"

/* Raw id of the item of interaction k of dense user u. */
static int64_t raw_item(const fr_dataset *d, uint32_t u, size_t k) {
    const uint32_t *it;
    fr_dataset_user(d, u, &it, NULL, NULL);
    return fr_idmap_raw(fr_dataset_items(d), it[k]);
}

/* users x items grid where user u rated items i with (u*7 + i*3) % 5 < 3, time (u*13+i*29)%97. */
static fr_dataset *grid(uint32_t users, uint32_t items) {
    size_t cap = (size_t)users * items, n = 0;
    int64_t *u = malloc(cap * sizeof *u), *it = malloc(cap * sizeof *it), *t = malloc(cap * sizeof *t);
    float *r = malloc(cap * sizeof *r);
    for (uint32_t a = 0; a < users; a++)
        for (uint32_t b = 0; b < items; b++) {
            if ((a * 7 + b * 3) % 5 >= 3) continue;
            u[n] = 1000 + a;
            it[n] = 50 + 2 * b;
            r[n] = (float)(1 + (a + b) % 5);
            t[n] = (a * 13 + b * 29) % 97;
            n++;
        }
    fr_dataset *d = NULL;
    cr_assert_eq(fr_dataset_from_arrays(&d, n, u, it, r, t), FR_OK);
    free(u); free(it); free(t); free(r);
    return d;
}

Test(split, loo_latest_with_ties_to_larger_raw_item) {
    /* user 7: times 5, 9, 9 on items 300, 100, 200 -> test (9, 200)
     * user 3: items 900 and 40 both at time 50, 40 listed last -> test 900
     * user 5: a single interaction -> stays in train */
    int64_t u[] = {7, 7, 3, 7, 5, 3, 3};
    int64_t i[] = {300, 200, 900, 100, 40, 40, 100};
    float r[] = {1, 2, 3, 4, 5, 4, 3};
    int64_t t[] = {5, 9, 50, 9, 1, 50, 7};
    fr_dataset *d = NULL, *tr = NULL, *te = NULL;
    cr_assert_eq(fr_dataset_from_arrays(&d, 7, u, i, r, t), FR_OK);
    cr_assert_eq(fr_dataset_split(d, FR_SPLIT_LOO, 0, 0, &tr, &te), FR_OK);
    /* dense users: 3 -> 0, 5 -> 1, 7 -> 2 */
    cr_assert_eq(fr_dataset_n_interactions(tr), 5);
    cr_assert_eq(fr_dataset_n_interactions(te), 2);
    const uint32_t *it;
    const float *rt;
    const int64_t *tt;
    cr_assert_eq(fr_dataset_user(te, 0, &it, &rt, &tt), 1);
    cr_assert_eq(raw_item(te, 0, 0), 900);
    cr_assert_eq(rt[0], 3);
    cr_assert_eq(tt[0], 50);
    cr_assert_eq(fr_dataset_user(te, 1, NULL, NULL, NULL), 0);
    cr_assert_eq(fr_dataset_user(tr, 1, NULL, NULL, NULL), 1);
    cr_assert_eq(fr_dataset_user(te, 2, &it, &rt, &tt), 1);
    cr_assert_eq(raw_item(te, 2, 0), 200);
    cr_assert_eq(rt[0], 2);
    cr_assert_eq(fr_dataset_user(tr, 2, &it, NULL, &tt), 2);
    cr_assert_eq(raw_item(tr, 2, 0), 300);
    cr_assert_eq(raw_item(tr, 2, 1), 100);
    cr_assert_eq(fr_dataset_user(tr, 0, &it, NULL, NULL), 2);
    cr_assert_eq(raw_item(tr, 0, 0), 100);
    cr_assert_eq(raw_item(tr, 0, 1), 40);
    /* One id space: the same map objects as the source. */
    cr_assert_eq(fr_dataset_users(tr), fr_dataset_users(d));
    cr_assert_eq(fr_dataset_items(te), fr_dataset_items(d));
    cr_assert_eq(fr_dataset_n_items(te), 5);
    cr_assert_eq(fr_dataset_n_users(te), 3);
    cr_assert(fr_dataset_has_time(te));
    fr_dataset_free(d); /* the splits keep the maps alive */
    cr_assert_eq(fr_idmap_raw(fr_dataset_users(te), 2), 7);
    fr_dataset_free(tr);
    fr_dataset_free(te);
}

Test(split, every_interaction_lands_once_with_same_ids) {
    fr_dataset *d = grid(40, 30), *tr = NULL, *te = NULL;
    fr_split_kind kinds[4] = {FR_SPLIT_LOO, FR_SPLIT_TEMPORAL, FR_SPLIT_RATIO, FR_SPLIT_TEMPORAL_USER};
    for (int k = 0; k < 4; k++) {
        cr_assert_eq(fr_dataset_split(d, kinds[k], 0.6, 3, &tr, &te), FR_OK);
        cr_assert_eq(fr_dataset_n_interactions(tr) + fr_dataset_n_interactions(te), fr_dataset_n_interactions(d));
        for (uint32_t u = 0; u < fr_dataset_n_users(d); u++) {
            const uint32_t *it;
            const float *rt;
            size_t n = fr_dataset_user(d, u, &it, &rt, NULL);
            for (size_t x = 0; x < n; x++)
                cr_assert(fr_dataset_has(tr, u, it[x]) != fr_dataset_has(te, u, it[x]));
            const uint32_t *a;
            size_t m = fr_dataset_user(te, u, &a, NULL, NULL);
            for (size_t x = 0; x < m; x++) cr_assert(fr_dataset_has(d, u, a[x]));
        }
        fr_dataset_free(tr);
        fr_dataset_free(te);
    }
    fr_dataset_free(d);
}

Test(split, temporal_cut_by_time_user_item) {
    /* Times 1..10 over two users; 3 and 4 tie at time 6 (users 1 and 2). */
    int64_t u[] = {1, 1, 1, 1, 1, 2, 2, 2, 2, 2};
    int64_t i[] = {1, 2, 3, 4, 5, 1, 2, 3, 4, 5};
    int64_t t[] = {1, 3, 6, 8, 10, 2, 4, 6, 7, 9};
    fr_dataset *d = NULL, *tr = NULL, *te = NULL;
    cr_assert_eq(fr_dataset_from_arrays(&d, 10, u, i, NULL, t), FR_OK);
    /* ratio 0.5: train = times 1,2,3,4 and the (6, user 1) row */
    cr_assert_eq(fr_dataset_split(d, FR_SPLIT_TEMPORAL, 0.5, 0, &tr, &te), FR_OK);
    cr_assert_eq(fr_dataset_n_interactions(tr), 5);
    cr_assert(fr_dataset_has(tr, 0, 2));  /* user 1 item 3 at time 6 */
    cr_assert(fr_dataset_has(te, 1, 2));  /* user 2 item 3 at time 6 */
    cr_assert(fr_dataset_has(te, 1, 3));
    cr_assert(fr_dataset_has(tr, 1, 1));
    fr_dataset_free(tr);
    fr_dataset_free(te);
    cr_assert_eq(fr_dataset_split(d, FR_SPLIT_TEMPORAL, 0.8, 0, &tr, &te), FR_OK);
    cr_assert_eq(fr_dataset_n_interactions(tr), 8);
    cr_assert(fr_dataset_has(te, 0, 4)); /* times 9 and 10 are the latest */
    cr_assert(fr_dataset_has(te, 1, 4));
    fr_dataset_free(tr);
    fr_dataset_free(te);
    fr_dataset_free(d);
}

/* ------------------------------------------------------------ an independent check of splits */

/* One interaction with raw ids, for comparing datasets as multisets. */
typedef struct tup { int64_t u, i, t; float r; } tup;

static int cmp_tup(const void *a, const void *b) {
    const tup *x = a, *y = b;
    if (x->u != y->u) return x->u < y->u ? -1 : 1;
    if (x->i != y->i) return x->i < y->i ? -1 : 1;
    if (x->t != y->t) return x->t < y->t ? -1 : 1;
    return (x->r > y->r) - (x->r < y->r);
}

/* Appends d's interactions as raw tuples to v at *n. */
static void tuples(const fr_dataset *d, tup *v, size_t *n) {
    for (uint32_t u = 0; u < fr_dataset_n_users(d); u++) {
        const uint32_t *it;
        const float *r;
        const int64_t *t;
        size_t m = fr_dataset_user(d, u, &it, &r, &t);
        for (size_t k = 0; k < m; k++)
            v[(*n)++] = (tup){fr_idmap_raw(fr_dataset_users(d), u), fr_idmap_raw(fr_dataset_items(d), it[k]),
                              t[k], r[k]};
    }
}

/* What every per-user split promises, checked from the outside: train and test hold the
 * input exactly once between them (as raw tuples), and user u has want_test(n_u) test
 * interactions. */
static void check_partition(const fr_dataset *d, const fr_dataset *tr, const fr_dataset *te,
                            uint64_t (*want_test)(uint64_t n, double ratio), double ratio) {
    size_t n = (size_t)fr_dataset_n_interactions(d), a = 0, b = 0;
    tup *x = malloc((n + 1) * sizeof *x), *y = malloc((n + 1) * sizeof *y);
    tuples(d, x, &a);
    tuples(tr, y, &b);
    tuples(te, y, &b);
    cr_assert_eq(a, n);
    cr_assert_eq(b, n, "train + test hold %zu interactions; the input %zu", b, n);
    qsort(x, n, sizeof *x, cmp_tup);
    qsort(y, n, sizeof *y, cmp_tup);
    for (size_t k = 0; k < n; k++) cr_assert_eq(cmp_tup(&x[k], &y[k]), 0, "interaction %zu differs", k);
    for (uint32_t u = 0; u < fr_dataset_n_users(d); u++) {
        uint64_t nu = fr_dataset_user(d, u, NULL, NULL, NULL);
        uint64_t nt = fr_dataset_user(te, u, NULL, NULL, NULL), nr = fr_dataset_user(tr, u, NULL, NULL, NULL);
        cr_assert_eq(nt, want_test(nu, ratio), "user %u: %llu of %llu to test", u, (unsigned long long)nt,
                     (unsigned long long)nu);
        cr_assert_eq(nt + nr, nu);
    }
    free(x);
    free(y);
}

/* round((1 - R) n) with halves up, written out with integers where R = p/q exactly would
 * be, then kept in [1, n-1]; a single interaction stays in train. */
static uint64_t share_test(uint64_t n, double ratio) {
    if (n < 2) return 0;
    double want = (1.0 - ratio) * (double)n;
    uint64_t t = 0;
    while ((double)t + 0.5 <= want) t++; /* the smallest t with t + 0.5 > want */
    if (t < 1) t = 1;
    if (t > n - 1) t = n - 1;
    return t;
}

static uint64_t one_test(uint64_t n, double ratio) { (void)ratio; return n >= 2; }

/* The same interactions without timestamps (and so without an order to hold out by). */
static fr_dataset *without_time(const fr_dataset *d) {
    size_t n = (size_t)fr_dataset_n_interactions(d), m = 0;
    tup *v = malloc(n * sizeof *v);
    tuples(d, v, &m);
    int64_t *u = malloc(n * sizeof *u), *it = malloc(n * sizeof *it);
    float *r = malloc(n * sizeof *r);
    for (size_t k = 0; k < n; k++) { u[k] = v[k].u; it[k] = v[k].i; r[k] = v[k].r; }
    fr_dataset *out = NULL;
    cr_assert_eq(fr_dataset_from_arrays(&out, n, u, it, r, NULL), FR_OK);
    cr_assert_not(fr_dataset_has_time(out));
    free(v); free(u); free(it); free(r);
    return out;
}

/* Whether two splits put the same interactions in test. */
static bool same_test(const fr_dataset *a, const fr_dataset *b) {
    for (uint32_t u = 0; u < fr_dataset_n_users(a); u++) {
        const uint32_t *x, *y;
        size_t n = fr_dataset_user(a, u, &x, NULL, NULL);
        if (fr_dataset_user(b, u, &y, NULL, NULL) != n) return false;
        for (size_t k = 0; k < n; k++)
            if (!fr_dataset_has(b, u, x[k])) return false;
    }
    return true;
}

Test(split, ratio_is_a_share_of_each_user) {
    fr_dataset *g = tu_generate(300, 120, 6000, 5), *d = without_time(g);
    fr_dataset *data[2] = {g, d};
    const double ratios[4] = {0.8, 0.5, 0.7, 0.95};
    for (int w = 0; w < 2; w++) {
        for (int k = 0; k < 4; k++) {
            fr_dataset *tr = NULL, *te = NULL, *tr2 = NULL, *te2 = NULL;
            cr_assert_eq(fr_dataset_split(data[w], FR_SPLIT_RATIO, ratios[k], 11, &tr, &te), FR_OK, "%s", fr_errmsg());
            check_partition(data[w], tr, te, share_test, ratios[k]);
            cr_assert_eq(fr_dataset_split(data[w], FR_SPLIT_RATIO, ratios[k], 11, &tr2, &te2), FR_OK);
            cr_assert(same_test(te, te2), "the same seed gives the same split");
            fr_dataset_free(tr2); fr_dataset_free(te2);
            cr_assert_eq(fr_dataset_split(data[w], FR_SPLIT_RATIO, ratios[k], 12, &tr2, &te2), FR_OK);
            cr_assert_not(same_test(te, te2), "another seed gives another split");
            fr_dataset_free(tr2); fr_dataset_free(te2);
            fr_dataset_free(tr); fr_dataset_free(te);
        }
    }
    /* Which rows: user u's test rows are the first t of a Fisher-Yates shuffle of its rows
     * by its own stream (fr_rng(seed, 0, u, SPLIT)), so no user's choice depends on another. */
    fr_dataset *tr = NULL, *te = NULL;
    cr_assert_eq(fr_dataset_split(d, FR_SPLIT_RATIO, 0.8, 11, &tr, &te), FR_OK);
    for (uint32_t u = 0; u < fr_dataset_n_users(d); u++) {
        const uint32_t *it;
        size_t n = fr_dataset_user(d, u, &it, NULL, NULL);
        uint32_t *pos = malloc(n * sizeof *pos);
        for (size_t j = 0; j < n; j++) pos[j] = (uint32_t)j;
        fr_rng r;
        fr_rng_init(&r, 11, 0, u, FR_PURPOSE_SPLIT);
        fr_rng_shuffle_u32(&r, pos, n);
        size_t t = (size_t)share_test(n, 0.8);
        for (size_t j = 0; j < n; j++) cr_assert_eq(fr_dataset_has(te, u, it[pos[j]]), j < t, "user %u", u);
        free(pos);
    }
    fr_dataset_free(tr); fr_dataset_free(te);
    fr_dataset_free(g); fr_dataset_free(d);
}

/* Small users: 1 interaction trains; 2 give one each way whatever the ratio; the rounding
 * is half up (0.5 * 3 = 1.5 -> 2). */
Test(split, ratio_small_users) {
    int64_t u[] = {1, 2, 2, 3, 3, 3, 4, 4, 4, 4, 4};
    int64_t i[] = {9, 1, 2, 1, 2, 3, 1, 2, 3, 4, 5};
    fr_dataset *d = NULL, *tr = NULL, *te = NULL;
    cr_assert_eq(fr_dataset_from_arrays(&d, 11, u, i, NULL, NULL), FR_OK);
    const double ratios[3] = {0.01, 0.5, 0.99};
    const size_t want[3][4] = {{0, 1, 2, 4}, {0, 1, 2, 3}, {0, 1, 1, 1}}; /* test rows of users 1..4 */
    for (int k = 0; k < 3; k++) {
        cr_assert_eq(fr_dataset_split(d, FR_SPLIT_RATIO, ratios[k], 3, &tr, &te), FR_OK, "%s", fr_errmsg());
        for (uint32_t x = 0; x < 4; x++)
            cr_assert_eq(fr_dataset_user(te, x, NULL, NULL, NULL), want[k][x], "ratio %g, user %u", ratios[k], x + 1);
        check_partition(d, tr, te, share_test, ratios[k]);
        fr_dataset_free(tr); fr_dataset_free(te);
    }
    fr_dataset_free(d);
}

Test(split, temporal_user_holds_out_each_users_latest) {
    fr_dataset *d = tu_generate(200, 100, 4000, 9);
    const double ratios[3] = {0.8, 0.5, 0.9};
    for (int k = 0; k < 3; k++) {
        fr_dataset *tr = NULL, *te = NULL;
        cr_assert_eq(fr_dataset_split(d, FR_SPLIT_TEMPORAL_USER, ratios[k], 1, &tr, &te), FR_OK, "%s", fr_errmsg());
        check_partition(d, tr, te, share_test, ratios[k]);
        /* every test row of a user is later than every training row: (time, raw item) */
        for (uint32_t u = 0; u < fr_dataset_n_users(d); u++) {
            const uint32_t *a, *b;
            const int64_t *ta, *tb;
            size_t na = fr_dataset_user(tr, u, &a, NULL, &ta), nb = fr_dataset_user(te, u, &b, NULL, &tb);
            for (size_t x = 0; x < na; x++)
                for (size_t y = 0; y < nb; y++)
                    cr_assert(ta[x] < tb[y] || (ta[x] == tb[y] && fr_idmap_raw(fr_dataset_items(d), a[x]) <
                                                                  fr_idmap_raw(fr_dataset_items(d), b[y])),
                              "user %u: a training row is later than a test row", u);
        }
        fr_dataset_free(tr); fr_dataset_free(te);
    }
    /* With one test row per user it is leave-one-out. */
    fr_dataset *tr = NULL, *te = NULL, *lt = NULL, *le = NULL;
    int64_t u[] = {1, 1, 2, 2, 2}, i[] = {5, 6, 7, 5, 6}, t[] = {3, 3, 1, 2, 9};
    fr_dataset *e = NULL;
    cr_assert_eq(fr_dataset_from_arrays(&e, 5, u, i, NULL, t), FR_OK);
    cr_assert_eq(fr_dataset_split(e, FR_SPLIT_TEMPORAL_USER, 0.6, 1, &tr, &te), FR_OK);
    cr_assert_eq(fr_dataset_split(e, FR_SPLIT_LOO, 0, 1, &lt, &le), FR_OK);
    cr_assert(same_test(te, le));
    cr_assert(fr_dataset_has(te, 0, (uint32_t)fr_idmap_find(fr_dataset_items(e), 6))); /* a tie: the larger item */
    fr_dataset_free(tr); fr_dataset_free(te); fr_dataset_free(lt); fr_dataset_free(le); fr_dataset_free(e);
    /* No timestamps, no temporal split of either kind. */
    fr_dataset *n = without_time(d);
    tr = te = (fr_dataset *)1;
    cr_assert_eq(fr_dataset_split(n, FR_SPLIT_TEMPORAL_USER, 0.8, 1, &tr, &te), FR_ERR_INVALID);
    cr_assert_null(tr);
    cr_assert(strstr(fr_errmsg(), "needs timestamps"), "%s", fr_errmsg());
    fr_dataset_free(n);
    fr_dataset_free(d);
}

Test(split, loo_without_time_is_random_and_seeded) {
    fr_dataset *g = tu_generate(300, 120, 6000, 5), *d = without_time(g);
    fr_dataset *tr = NULL, *te = NULL, *tr2 = NULL, *te2 = NULL;
    cr_assert_eq(fr_dataset_split(d, FR_SPLIT_LOO, 0, 4, &tr, &te), FR_OK, "%s", fr_errmsg());
    check_partition(d, tr, te, one_test, 0);
    /* not the largest item id (the old rule): that would be the last row of each user */
    uint32_t last = 0, users = 0;
    for (uint32_t u = 0; u < fr_dataset_n_users(d); u++) {
        const uint32_t *it;
        size_t n = fr_dataset_user(d, u, &it, NULL, NULL);
        if (n < 2) continue;
        users++;
        last += fr_dataset_has(te, u, it[n - 1]);
    }
    cr_assert_lt(last, users / 4, "%u of %u users held out their largest item id", last, users);
    cr_assert_eq(fr_dataset_split(d, FR_SPLIT_LOO, 0, 4, &tr2, &te2), FR_OK);
    cr_assert(same_test(te, te2), "the same seed gives the same split");
    fr_dataset_free(tr2); fr_dataset_free(te2);
    cr_assert_eq(fr_dataset_split(d, FR_SPLIT_LOO, 0, 5, &tr2, &te2), FR_OK);
    cr_assert_not(same_test(te, te2), "another seed gives another split");
    fr_dataset_free(tr2); fr_dataset_free(te2);
    fr_dataset_free(tr); fr_dataset_free(te);
    /* With timestamps the seed changes nothing: the latest is held out. */
    cr_assert_eq(fr_dataset_split(g, FR_SPLIT_LOO, 0, 4, &tr, &te), FR_OK);
    cr_assert_eq(fr_dataset_split(g, FR_SPLIT_LOO, 0, 5, &tr2, &te2), FR_OK);
    cr_assert(same_test(te, te2));
    fr_dataset_free(tr2); fr_dataset_free(te2); fr_dataset_free(tr); fr_dataset_free(te);
    fr_dataset_free(g); fr_dataset_free(d);
    /* Timestamps that are all equal (an NCF file written from data without them has 0 in
     * every row) order nothing: random as without them, and no temporal split. */
    int64_t uz[] = {1, 1, 1, 2, 2, 2}, iz[] = {5, 6, 7, 5, 6, 7}, tz[] = {0, 0, 0, 0, 0, 0};
    cr_assert_eq(fr_dataset_from_arrays(&d, 6, uz, iz, NULL, tz), FR_OK);
    cr_assert(fr_dataset_has_time(d));
    cr_assert_not(fr_dataset_has_time_order(d));
    bool differ = false;
    for (uint64_t s = 0; s < 20 && !differ; s++) {
        cr_assert_eq(fr_dataset_split(d, FR_SPLIT_LOO, 0, s, &tr, &te), FR_OK);
        differ = !fr_dataset_has(te, 0, 2); /* the old rule: always the largest item, 7 */
        fr_dataset_free(tr); fr_dataset_free(te);
    }
    cr_assert(differ, "equal timestamps: the largest item id held out for 20 seeds");
    cr_assert_eq(fr_dataset_split(d, FR_SPLIT_TEMPORAL_USER, 0.5, 1, &tr, &te), FR_ERR_INVALID);
    cr_assert(strstr(fr_errmsg(), "all 6 of this dataset's are 0"), "%s", fr_errmsg());
    cr_assert_eq(fr_dataset_split(d, FR_SPLIT_TEMPORAL, 0.5, 1, &tr, &te), FR_ERR_INVALID);
    fr_dataset_free(d);
    tz[5] = 1;
    cr_assert_eq(fr_dataset_from_arrays(&d, 6, uz, iz, NULL, tz), FR_OK);
    cr_assert(fr_dataset_has_time_order(d));
    fr_dataset_free(d);
    /* Uniform over a user's interactions: one user with 5, over 5000 seeds. */
    int64_t u[] = {1, 1, 1, 1, 1}, i[] = {10, 20, 30, 40, 50};
    cr_assert_eq(fr_dataset_from_arrays(&d, 5, u, i, NULL, NULL), FR_OK);
    unsigned hits[5] = {0};
    for (uint64_t s = 0; s < 5000; s++) {
        cr_assert_eq(fr_dataset_split(d, FR_SPLIT_LOO, 0, s, &tr, &te), FR_OK);
        const uint32_t *it;
        cr_assert_eq(fr_dataset_user(te, 0, &it, NULL, NULL), 1);
        hits[it[0]]++;
        fr_dataset_free(tr); fr_dataset_free(te);
    }
    for (int k = 0; k < 5; k++) cr_assert(fabs(hits[k] - 1000.0) < 5 * sqrt(800.0), "item %d: %u of 5000", k, hits[k]);
    fr_dataset_free(d);
}

/* The case of issue 11: ids numbered in order of first appearance, no timestamps. The old
 * rule (the largest item id) held out items that mostly never occur in training; a random
 * interaction is an item others have seen about as often as any. */
Test(split, loo_without_time_holds_out_seen_items) {
    const uint32_t n_items = 6000; /* a long tail: many items have a user or two */
    fr_dataset *g = tu_generate(400, n_items, 8000, 2);
    size_t n = (size_t)fr_dataset_n_interactions(g), m = 0;
    tup *v = malloc(n * sizeof *v);
    tuples(g, v, &m);
    qsort(v, n, sizeof *v, cmp_tup); /* the file, user by user */
    int64_t next = 0, *ren = malloc(n_items * sizeof *ren); /* dense item -> id by first appearance */
    for (uint32_t k = 0; k < n_items; k++) ren[k] = -1;
    int64_t *u = malloc(n * sizeof *u), *it = malloc(n * sizeof *it);
    for (size_t k = 0; k < n; k++) {
        int64_t *slot = &ren[fr_idmap_find(fr_dataset_items(g), v[k].i)];
        if (*slot < 0) *slot = next++;
        u[k] = v[k].u;
        it[k] = *slot;
    }
    fr_dataset *d = NULL, *tr = NULL, *te = NULL;
    cr_assert_eq(fr_dataset_from_arrays(&d, n, u, it, NULL, NULL), FR_OK);
    cr_assert_eq(fr_dataset_split(d, FR_SPLIT_LOO, 0, 1, &tr, &te), FR_OK);
    uint32_t held = 0, unseen = 0, old_unseen = 0;
    double expect = 0; /* held-out items no other user has, if each is a uniform pick */
    for (uint32_t x = 0; x < fr_dataset_n_users(d); x++) {
        const uint32_t *ti, *all;
        size_t na = fr_dataset_user(d, x, &all, NULL, NULL);
        if (fr_dataset_user(te, x, &ti, NULL, NULL) != 1) continue;
        held++;
        uint32_t largest = all[0], own = 0;
        for (size_t k = 1; k < na; k++) if (all[k] > largest) largest = all[k];
        bool seen = false, old_seen = false;
        for (size_t k = 0; k < na; k++) {
            bool other = false;
            for (uint32_t y = 0; y < fr_dataset_n_users(d) && !other; y++) other = y != x && fr_dataset_has(d, y, all[k]);
            own += !other;
        }
        for (uint32_t y = 0; y < fr_dataset_n_users(d); y++) {
            seen = seen || fr_dataset_has(tr, y, ti[0]);
            old_seen = old_seen || (y != x && fr_dataset_has(d, y, largest));
        }
        expect += (double)own / (double)na;
        unseen += !seen;
        old_unseen += !old_seen;
    }
    cr_assert_gt(held, 300);
    cr_assert(fabs(unseen - expect) < 5 * sqrt(expect) + 1, "%u of %u test items never occur in training; a uniform "
              "pick gives %.1f", unseen, held, expect);
    cr_assert_gt(old_unseen, 2 * unseen, "the old rule held out %u unseen items, the new %u", old_unseen, unseen);
    free(v); free(ren); free(u); free(it);
    fr_dataset_free(tr); fr_dataset_free(te); fr_dataset_free(d); fr_dataset_free(g);
}

Test(split, rejects_bad_arguments) {
    fr_dataset *d = grid(5, 5), *tr = (fr_dataset *)1, *te = (fr_dataset *)1;
    cr_assert_eq(fr_dataset_split(d, FR_SPLIT_RATIO, 1.0, 0, &tr, &te), FR_ERR_RANGE);
    cr_assert_null(tr);
    cr_assert_null(te);
    cr_assert(strstr(fr_errmsg(), "ratio 1"), "%s", fr_errmsg());
    cr_assert_eq(fr_dataset_split(d, FR_SPLIT_TEMPORAL, 0.0, 0, &tr, &te), FR_ERR_RANGE);
    cr_assert_eq(fr_dataset_split(d, FR_SPLIT_TEMPORAL, NAN, 0, &tr, &te), FR_ERR_RANGE);
    cr_assert_eq(fr_dataset_split(d, (fr_split_kind)9, 0.5, 0, &tr, &te), FR_ERR_INVALID);
    cr_assert(strstr(fr_errmsg(), "unknown kind 9; expected loo (1), temporal (2), ratio (3) or temporal-user (4)"),
              "%s", fr_errmsg());
    cr_assert_eq(fr_dataset_split(d, FR_SPLIT_LOO, 0, 0, NULL, &te), FR_ERR_INVALID);
    fr_dataset_free(d);
    int64_t u[] = {1, 2}, i[] = {3, 4};
    cr_assert_eq(fr_dataset_from_arrays(&d, 2, u, i, NULL, NULL), FR_OK);
    cr_assert_eq(fr_dataset_split(d, FR_SPLIT_TEMPORAL, 0.5, 0, &tr, &te), FR_ERR_INVALID);
    cr_assert(strstr(fr_errmsg(), "timestamps"), "%s", fr_errmsg());
    fr_dataset_free(d);
}

/* A split with an empty side is refused with what was asked and what the data allows (an
 * all-singleton LOO wrote an empty test file with exit 0). */
Test(split, empty_side_is_an_error) {
    int64_t u[] = {1, 2, 3}, i[] = {4, 5, 6}, t[] = {10, 20, 30};
    fr_dataset *d = NULL, *tr = (fr_dataset *)1, *te = (fr_dataset *)1;
    cr_assert_eq(fr_dataset_from_arrays(&d, 3, u, i, NULL, t), FR_OK);
    cr_assert_eq(fr_dataset_split(d, FR_SPLIT_LOO, 0, 0, &tr, &te), FR_ERR_EMPTY);
    cr_assert_null(tr);
    cr_assert_null(te);
    cr_assert(strstr(fr_errmsg(), "split loo: each of the 3 users has a single interaction, so none can be held out"),
              "%s", fr_errmsg());
    /* temporal: 3 rows at 0.9 keep all 3 in train; at 0.1 none */
    cr_assert_eq(fr_dataset_split(d, FR_SPLIT_TEMPORAL, 0.9, 0, &tr, &te), FR_ERR_EMPTY);
    cr_assert(strstr(fr_errmsg(), "split temporal:0.9: 3 interactions give 3 to train and 0 to test; expected at least "
                                  "one in each"), "%s", fr_errmsg());
    cr_assert_eq(fr_dataset_split(d, FR_SPLIT_TEMPORAL, 0.1, 0, &tr, &te), FR_ERR_EMPTY);
    cr_assert(strstr(fr_errmsg(), "give 0 to train and 3 to test"), "%s", fr_errmsg());
    /* ratio and temporal-user: a user with one interaction keeps it in train */
    cr_assert_eq(fr_dataset_split(d, FR_SPLIT_RATIO, 0.5, 5, &tr, &te), FR_ERR_EMPTY);
    cr_assert(strstr(fr_errmsg(), "split ratio:0.5 (seed 5): 3 interactions give 3 to train and 0 to test; expected at "
                                  "least one in each (a user needs two or more interactions to give one to test)"),
              "%s", fr_errmsg());
    cr_assert_eq(fr_dataset_split(d, FR_SPLIT_TEMPORAL_USER, 0.5, 5, &tr, &te), FR_ERR_EMPTY);
    cr_assert(strstr(fr_errmsg(), "split temporal-user:0.5: 3 interactions give 3 to train and 0 to test"), "%s",
              fr_errmsg());
    cr_assert_null(tr);
    cr_assert_null(te);
    fr_dataset_free(d);
    int64_t u1[] = {1}, i1[] = {4};
    cr_assert_eq(fr_dataset_from_arrays(&d, 1, u1, i1, NULL, t), FR_OK);
    cr_assert_eq(fr_dataset_split(d, FR_SPLIT_LOO, 0, 0, &tr, &te), FR_ERR_EMPTY);
    cr_assert(strstr(fr_errmsg(), "split loo: the one user has a single interaction"), "%s", fr_errmsg());
    fr_dataset_free(d);
    /* One user with two interactions is enough for LOO. */
    int64_t u2[] = {1, 2, 2}, i2[] = {4, 5, 6};
    cr_assert_eq(fr_dataset_from_arrays(&d, 3, u2, i2, NULL, t), FR_OK);
    cr_assert_eq(fr_dataset_split(d, FR_SPLIT_LOO, 0, 0, &tr, &te), FR_OK);
    cr_assert_eq(fr_dataset_n_interactions(te), 1);
    fr_dataset_free(tr);
    fr_dataset_free(te);
    fr_dataset_free(d);
}

Test(split, allocation_failures_leak_nothing) {
    fr_dataset *d = grid(20, 10);
    fr_split_kind kinds[4] = {FR_SPLIT_LOO, FR_SPLIT_TEMPORAL, FR_SPLIT_RATIO, FR_SPLIT_TEMPORAL_USER};
    for (int k = 0; k < 4; k++) {
        for (long nth = 1;; nth++) {
            fr_dataset *tr = (fr_dataset *)1, *te = (fr_dataset *)1;
            fr_test_fail_alloc(nth, true);
            fr_err e = fr_dataset_split(d, kinds[k], 0.5, 1, &tr, &te);
            fr_test_fail_alloc(0, false);
            if (e == FR_OK) {
                cr_assert_gt(nth, 3);
                fr_dataset_free(tr);
                fr_dataset_free(te);
                break;
            }
            cr_assert_eq(e, FR_ERR_NOMEM, "kind %d, allocation %ld", k, nth);
            cr_assert_null(tr);
            cr_assert_null(te);
        }
    }
    fr_dataset_free(d);
}

/* ------------------------------------------------------------ negatives */

static void check_negatives(const fr_negatives *ng, const fr_dataset *all, const fr_dataset *test, uint32_t per) {
    cr_assert_eq(fr_negatives_n_users(ng), fr_dataset_n_users(test));
    uint32_t ni = fr_dataset_n_items(all);
    for (uint32_t u = 0; u < fr_dataset_n_users(test); u++) {
        const uint32_t *it;
        size_t n = fr_negatives_user(ng, u, &it);
        if (fr_dataset_user(test, u, NULL, NULL, NULL) == 0) { cr_assert_eq(n, 0); continue; }
        uint32_t comp = 0;
        for (uint32_t i = 0; i < ni; i++) comp += !fr_dataset_has(all, u, i) && !fr_dataset_has(test, u, i);
        cr_assert_eq(n, comp < per ? comp : per, "user %u: %zu negatives, complement %u", u, n, comp);
        for (size_t x = 0; x < n; x++) {
            cr_assert_lt(it[x], ni);
            cr_assert_not(fr_dataset_has(all, u, it[x]));
            cr_assert_not(fr_dataset_has(test, u, it[x]));
            for (size_t y = 0; y < x; y++) cr_assert_neq(it[x], it[y]);
        }
    }
}

Test(negatives, distinct_untouched_and_seeded) {
    fr_dataset *d = grid(60, 40), *tr = NULL, *te = NULL;
    cr_assert_eq(fr_dataset_split(d, FR_SPLIT_LOO, 0, 0, &tr, &te), FR_OK);
    fr_negatives *a = NULL, *b = NULL, *c = NULL, *e = NULL;
    /* Each user touched ~24 of 40 items: the enumeration path (uniformity tests below cover
     * both paths). */
    cr_assert_eq(fr_negatives_sample(&a, d, te, 5, 1), FR_OK);
    check_negatives(a, d, te, 5);
    cr_assert_eq(fr_negatives_sample(&e, d, te, 20, 1), FR_OK);
    check_negatives(e, d, te, 20);
    /* The training set as `all`: test items are still excluded. */
    cr_assert_eq(fr_negatives_sample(&b, tr, te, 5, 1), FR_OK);
    check_negatives(b, d, te, 5);
    for (uint32_t u = 0; u < fr_negatives_n_users(a); u++) {
        const uint32_t *x, *y;
        size_t n = fr_negatives_user(a, u, &x);
        cr_assert_eq(fr_negatives_user(b, u, &y), n);
        cr_assert(memcmp(x, y, n * sizeof *x) == 0, "same seed, same negatives");
    }
    cr_assert_eq(fr_negatives_sample(&c, d, te, 5, 2), FR_OK);
    bool differ = false;
    for (uint32_t u = 0; u < fr_negatives_n_users(a); u++) {
        const uint32_t *x, *y;
        size_t n = fr_negatives_user(a, u, &x);
        fr_negatives_user(c, u, &y);
        differ = differ || memcmp(x, y, n * sizeof *x) != 0;
    }
    cr_assert(differ);
    const uint32_t *none;
    cr_assert_eq(fr_negatives_user(a, 9999, &none), 0);
    cr_assert_null(none);
    fr_negatives_free(a); fr_negatives_free(b); fr_negatives_free(c); fr_negatives_free(e);
    fr_dataset_free(tr); fr_dataset_free(te); fr_dataset_free(d);
}

Test(negatives, small_complement_gives_all_of_it) {
    /* 6 items; user 1 touched 4 of them, so asks for 99 and gets the other 2. */
    int64_t u[] = {1, 1, 1, 1, 2, 2, 3};
    int64_t i[] = {10, 11, 12, 13, 14, 15, 10};
    int64_t t[] = {1, 2, 3, 4, 1, 2, 1};
    fr_dataset *d = NULL, *tr = NULL, *te = NULL;
    cr_assert_eq(fr_dataset_from_arrays(&d, 7, u, i, NULL, t), FR_OK);
    cr_assert_eq(fr_dataset_split(d, FR_SPLIT_LOO, 0, 0, &tr, &te), FR_OK);
    fr_negatives *n = NULL;
    cr_assert_eq(fr_negatives_sample(&n, d, te, 99, 3), FR_OK);
    const uint32_t *it;
    cr_assert_eq(fr_negatives_user(n, 0, &it), 2);
    cr_assert((it[0] == 4 && it[1] == 5) || (it[0] == 5 && it[1] == 4));
    cr_assert_eq(fr_negatives_user(n, 1, &it), 4);
    cr_assert_eq(fr_negatives_user(n, 2, &it), 0); /* single interaction: no test item */
    fr_negatives_free(n);
    fr_dataset_free(tr); fr_dataset_free(te); fr_dataset_free(d);
}

/* Fewer untouched items than asked: every test user gets all it has and the shortfall is
 * counted for the caller to report; none at all is an error (a 5-item catalogue with 99
 * asked wrote an empty test.negative with exit 0). */
Test(negatives, shortfall_counted_and_none_is_an_error) {
    int64_t u[] = {1, 1, 1, 1, 2, 2, 3, 3, 3, 3, 3};
    int64_t i[] = {10, 11, 12, 13, 14, 15, 10, 11, 12, 13, 14};
    int64_t t[] = {1, 2, 3, 4, 1, 2, 1, 2, 3, 4, 5};
    fr_dataset *d = NULL, *tr = NULL, *te = NULL;
    cr_assert_eq(fr_dataset_from_arrays(&d, 11, u, i, NULL, t), FR_OK);
    cr_assert_eq(fr_dataset_split(d, FR_SPLIT_LOO, 0, 0, &tr, &te), FR_OK);
    fr_negatives *n = NULL;
    cr_assert_eq(fr_negatives_sample(&n, d, te, 3, 3), FR_OK);
    uint32_t fewest = 99;
    cr_assert_eq(fr_negatives_short(n, &fewest), 2); /* users 1 (2 untouched) and 3 (1) */
    cr_assert_eq(fewest, 1);
    cr_assert_eq(fr_negatives_user(n, 1, NULL), 3);
    fr_negatives_free(n);
    cr_assert_eq(fr_negatives_sample(&n, d, te, 1, 3), FR_OK);
    cr_assert_eq(fr_negatives_short(n, &fewest), 0);
    cr_assert_eq(fewest, 1);
    fr_negatives_free(n);
    cr_assert_eq(fr_negatives_short(NULL, NULL), 0);
    fr_dataset_free(tr); fr_dataset_free(te); fr_dataset_free(d);
    /* Every test user touched the whole catalogue: nothing to draw. */
    int64_t u2[] = {1, 1, 2, 2}, i2[] = {7, 8, 7, 8}, t2[] = {1, 2, 1, 2};
    cr_assert_eq(fr_dataset_from_arrays(&d, 4, u2, i2, NULL, t2), FR_OK);
    cr_assert_eq(fr_dataset_split(d, FR_SPLIT_LOO, 0, 0, &tr, &te), FR_OK);
    n = (fr_negatives *)1;
    cr_assert_eq(fr_negatives_sample(&n, d, te, 99, 3), FR_ERR_EMPTY);
    cr_assert_null(n);
    cr_assert(strstr(fr_errmsg(), "negatives: 99 per test user asked, but none of the 2 test users has an item it never "
                                  "touched (a catalogue of 2 items)"), "%s", fr_errmsg());
    fr_dataset_free(tr); fr_dataset_free(te); fr_dataset_free(d);
}

/* Each untouched item is equally likely under both strategies. */
static void uniformity(uint32_t n_items, uint32_t touched, uint32_t per) {
    fr_dataset *d = NULL, *tr = NULL, *te = NULL;
    int64_t *ui = malloc((touched + n_items) * sizeof *ui), *ii = malloc((touched + n_items) * sizeof *ii);
    int64_t *ti = malloc((touched + n_items) * sizeof *ti);
    size_t n = 0;
    for (uint32_t k = 0; k < touched; k++) { ui[n] = 0; ii[n] = 3 * k; ti[n] = k; n++; } /* user 0: items 0, 3, 6.. */
    for (uint32_t k = 0; k < n_items; k++) { ui[n] = 1; ii[n] = k; ti[n] = 0; n++; } /* user 1: the catalogue */
    cr_assert_eq(fr_dataset_from_arrays(&d, n, ui, ii, NULL, ti), FR_OK);
    cr_assert_eq(fr_dataset_n_items(d), n_items);
    cr_assert_eq(fr_dataset_split(d, FR_SPLIT_LOO, 0, 0, &tr, &te), FR_OK);
    unsigned *hits = calloc(n_items, sizeof *hits);
    const int trials = 3000;
    for (int s = 0; s < trials; s++) {
        fr_negatives *ng = NULL;
        cr_assert_eq(fr_negatives_sample(&ng, d, te, per, (uint64_t)s), FR_OK);
        const uint32_t *x;
        size_t m = fr_negatives_user(ng, 0, &x);
        cr_assert_eq(m, per);
        for (size_t k = 0; k < m; k++) hits[x[k]]++;
        fr_negatives_free(ng);
    }
    double expect = (double)trials * per / (n_items - touched);
    for (uint32_t k = 0; k < n_items; k++) {
        if (k % 3 == 0 && k / 3 < touched) { cr_assert_eq(hits[k], 0); continue; }
        cr_assert(fabs(hits[k] - expect) < 5 * sqrt(expect), "item %u: %u hits, expected %g", k, hits[k], expect);
    }
    free(hits); free(ui); free(ii); free(ti);
    fr_dataset_free(tr); fr_dataset_free(te); fr_dataset_free(d);
}

Test(negatives, uniform_by_rejection) { uniformity(60, 4, 3); }
Test(negatives, uniform_by_enumeration) { uniformity(24, 8, 10); }

Test(negatives, allocation_failures_leak_nothing) {
    fr_dataset *d = grid(20, 10), *tr = NULL, *te = NULL;
    cr_assert_eq(fr_dataset_split(d, FR_SPLIT_LOO, 0, 0, &tr, &te), FR_OK);
    for (long nth = 1;; nth++) {
        fr_negatives *n = (fr_negatives *)1;
        fr_test_fail_alloc(nth, true);
        fr_err e = fr_negatives_sample(&n, d, te, 3, 1);
        fr_test_fail_alloc(0, false);
        if (e == FR_OK) { fr_negatives_free(n); break; }
        cr_assert_eq(e, FR_ERR_NOMEM);
        cr_assert_null(n);
    }
    fr_dataset_free(tr); fr_dataset_free(te); fr_dataset_free(d);
}

/* ------------------------------------------------------------ writers */

Test(write, ncf_and_tsv_exact_bytes) {
    /* raw users 10, 20; raw items 5, 7, 9 (dense 0, 1, 2) */
    int64_t u[] = {20, 10, 10, 20, 10};
    int64_t i[] = {9, 7, 5, 5, 9};
    float r[] = {3.5f, 4, 5, 1, 2};
    int64_t t[] = {100, 30, 10, 90, 30};
    fr_dataset *d = NULL, *tr = NULL, *te = NULL;
    cr_assert_eq(fr_dataset_from_arrays(&d, 5, u, i, r, t), FR_OK);
    cr_assert_eq(fr_dataset_split(d, FR_SPLIT_LOO, 0, 0, &tr, &te), FR_OK);
    fr_negatives *ng = NULL;
    cr_assert_eq(fr_negatives_sample(&ng, d, te, 5, 1), FR_OK);
    char *dir = tu_tmpdir(), out[4096], p[4200];
    snprintf(out, sizeof out, "%s/a/b", dir); /* parents are created */
    cr_assert_eq(fr_dataset_write_ncf(out, tr, te, ng), FR_OK, "%s", fr_errmsg());
    /* user 10: (10,5,5) (30,7,4) (30,9,2) -> test (30, 9); user 20: (90,5,1) (100,9,3.5) */
    const char *want_train = "0\t0\t5\t10\n0\t1\t4\t30\n1\t0\t1\t90\n";
    const char *want_test = "0\t2\t2\t30\n1\t2\t3.5\t100\n";
    const char *want_neg = "(0,2)\n(1,2)\t1\n"; /* user 0 touched all; user 1 misses item 7 */
    /* the id maps: index -> raw id, no "# source:" for data made from arrays */
    const char *head = "# fedrec id map: the %s ids of train.rating, test.rating and test.negative (an index) and the "
                       "raw id of the data, tab-separated\n";
    char want_users[256], want_items[256];
    snprintf(want_users, sizeof want_users, head, "user");
    strcat(want_users, "0\t10\n1\t20\n");
    snprintf(want_items, sizeof want_items, head, "item");
    strcat(want_items, "0\t5\n1\t7\n2\t9\n");
    const char *names[5] = {"train.rating", "test.rating", "test.negative", "users.map", "items.map"};
    const char *wants[5] = {want_train, want_test, want_neg, want_users, want_items};
    for (int k = 0; k < 5; k++) {
        snprintf(p, sizeof p, "%s/%s", out, names[k]);
        char *s = tu_slurp(p, NULL);
        cr_assert_not_null(s, "%s", names[k]);
        cr_assert_str_eq(s, wants[k], "%s", names[k]);
        free(s);
    }
    snprintf(p, sizeof p, "%s/u.tsv", dir);
    cr_assert_eq(fr_dataset_write_tsv(d, p), FR_OK);
    char *s = tu_slurp(p, NULL);
    cr_assert_str_eq(s, "10\t5\t5\t10\n10\t7\t4\t30\n10\t9\t2\t30\n20\t5\t1\t90\n20\t9\t3.5\t100\n");
    free(s);
    /* No write without a usable directory, and a clear message. */
    snprintf(p, sizeof p, "%s/u.tsv/x", dir);
    cr_assert_eq(fr_dataset_write_ncf(p, tr, te, NULL), FR_ERR_IO);
    cr_assert(strstr(fr_errmsg(), "u.tsv"), "%s", fr_errmsg());
    tu_rmtree(dir);
    free(dir);
    fr_negatives_free(ng);
    fr_dataset_free(tr); fr_dataset_free(te); fr_dataset_free(d);
}

/* Long output paths: written when the system takes them (no fixed buffer), and past its
 * limit an error that keeps its reason and names the length. */
Test(write, long_paths) {
    fr_dataset *d = grid(6, 5), *tr = NULL, *te = NULL;
    cr_assert_eq(fr_dataset_split(d, FR_SPLIT_LOO, 0, 0, &tr, &te), FR_OK);
    char *dir = tu_tmpdir();
    char *out = malloc(5000);
    strcpy(out, dir);
    while (strlen(out) < 3700) strcat(out, "/dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd");
    cr_assert_eq(fr_dataset_write_ncf(out, tr, te, NULL), FR_OK, "%s", fr_errmsg());
    char *p = malloc(strlen(out) + 32);
    sprintf(p, "%s/train.rating", out);
    char *txt = tu_slurp(p, NULL);
    cr_assert_not_null(txt);
    free(txt);
    while (strlen(out) < 4300) strcat(out, "/dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd");
    cr_assert_eq(fr_dataset_write_ncf(out, tr, te, NULL), FR_ERR_IO);
    cr_assert(strncmp(fr_errmsg(), "...", 3) == 0, "%s", fr_errmsg());
    cr_assert(strstr(fr_errmsg(), ": cannot create directory: File name too long (a path of "), "%s", fr_errmsg());
    tu_rmtree(dir);
    free(dir);
    free(out);
    free(p);
    fr_dataset_free(tr); fr_dataset_free(te); fr_dataset_free(d);
}

Test(write, rejects_mismatched_id_spaces) {
    fr_dataset *a = grid(5, 5), *b = grid(6, 5);
    cr_assert_eq(fr_dataset_write_ncf("/tmp/never-written", a, b, NULL), FR_ERR_INVALID);
    fr_negatives *n = (fr_negatives *)1;
    cr_assert_eq(fr_negatives_sample(&n, a, b, 3, 0), FR_ERR_INVALID);
    cr_assert_null(n);
    fr_dataset_free(a); fr_dataset_free(b);
}
