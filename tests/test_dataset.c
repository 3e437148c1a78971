/* The CSR build: dense ids in raw order, per-user (time, item) order, lookups. */
#include <criterion/criterion.h>

#include <stdlib.h>

#include "data/dataset.h"
#include "testutil.h"

Test(dataset, from_arrays_builds_csr) {
    int64_t u[] = {10, 5, 10, 10, 5, 7};
    int64_t i[] = {300, 100, 200, 100, 300, 200};
    float r[] = {4, 3, 5, 1, 2, 3};
    int64_t t[] = {50, 10, 40, 40, 9, 1};
    fr_dataset *d = NULL;
    cr_assert_eq(fr_dataset_from_arrays(&d, 6, u, i, r, t), FR_OK);
    cr_assert_eq(fr_dataset_n_users(d), 3);
    cr_assert_eq(fr_dataset_n_items(d), 3);
    cr_assert_eq(fr_dataset_n_interactions(d), 6);
    cr_assert_eq(fr_idmap_raw(fr_dataset_users(d), 0), 5);
    cr_assert_eq(fr_idmap_raw(fr_dataset_users(d), 2), 10);
    cr_assert_eq(fr_idmap_find(fr_dataset_items(d), 200), 1);
    cr_assert_eq(fr_idmap_find(fr_dataset_items(d), 999), -1);
    const uint32_t *it;
    const float *rt;
    const int64_t *tt;
    /* user 10 (dense 2): (40,100) (40,200) (50,300) */
    size_t n = fr_dataset_user(d, 2, &it, &rt, &tt);
    cr_assert_eq(n, 3);
    cr_assert_eq(it[0], 0); cr_assert_eq(rt[0], 1); cr_assert_eq(tt[0], 40);
    cr_assert_eq(it[1], 1); cr_assert_eq(rt[1], 5);
    cr_assert_eq(it[2], 2); cr_assert_eq(tt[2], 50);
    n = fr_dataset_user(d, 0, &it, NULL, &tt); /* user 5: (9,300) (10,100) */
    cr_assert_eq(n, 2);
    cr_assert_eq(it[0], 2);
    cr_assert_eq(it[1], 0);
    cr_assert(fr_dataset_has(d, 0, 0));
    cr_assert(fr_dataset_has(d, 0, 2));
    cr_assert_not(fr_dataset_has(d, 0, 1));
    cr_assert_not(fr_dataset_has(d, 9, 1));
    fr_dataset_info info;
    fr_dataset_info_compute(d, &info);
    cr_assert_eq(info.interactions, 6);
    cr_assert_float_eq(info.density, 6.0 / 9.0, 1e-12);
    cr_assert_eq(info.rating_min, 1);
    cr_assert_eq(info.rating_max, 5);
    cr_assert_eq(info.hist[1], 1); /* one rating in [1, 1.5) */
    cr_assert_eq(info.hist[5], 2); /* two 3s */
    cr_assert_eq(info.per_user_q[0], 1);
    cr_assert_eq(info.per_user_q[4], 3);
    cr_assert_eq(info.time_min, 1);
    cr_assert_eq(info.time_max, 50);
    fr_dataset_free(d);
}

Test(dataset, rejects_out_of_range_ids) {
    int64_t u[] = {1, (int64_t)1 << 31}, i[] = {1, 2};
    fr_dataset *d = NULL;
    cr_assert_eq(fr_dataset_from_arrays(&d, 2, u, i, NULL, NULL), FR_ERR_RANGE);
    cr_assert_null(d);
    cr_assert(strstr(fr_errmsg(), "row 1") != NULL);
}

Test(dataset, every_allocation_failure_is_clean) {
    int64_t u[200], i[200];
    for (int k = 0; k < 200; k++) { u[k] = k % 17; i[k] = (k * 7) % 23; }
    fr_test_fail_alloc(0, false);
    fr_dataset *d = NULL;
    cr_assert_eq(fr_dataset_from_arrays(&d, 200, u, i, NULL, NULL), FR_OK);
    fr_dataset_free(d);
    long total = fr_test_alloc_count();
    cr_assert_gt(total, 5);
    for (long nth = 1; nth <= total; nth++) {
        fr_test_fail_alloc(nth, true);
        d = NULL;
        fr_err e = fr_dataset_from_arrays(&d, 200, u, i, NULL, NULL);
        fr_test_fail_alloc(0, false);
        if (e == FR_OK) fr_dataset_free(d); /* a failed shrink-to-fit is tolerated */
        else { cr_assert_eq(e, FR_ERR_NOMEM, "nth=%ld", nth); cr_assert_null(d); }
    }
}

/* Sparse raw ids take the hash-table path of the id map, dense ones the direct table;
 * both must give dense ids in raw order. */
Test(dataset, idmap_sparse_and_dense_ids_agree) {
    enum { N = 3000 };
    static int64_t u[N], i[N], i2[N];
    for (int k = 0; k < N; k++) {
        u[k] = (int64_t)((k * 7919) % 97) * 20000000 + 3; /* sparse: up to ~1.9e9 */
        i[k] = (k * 31) % 500;                             /* dense */
        i2[k] = i[k] * 4000000 + 1;                        /* sparse version of the same */
    }
    fr_dataset *a = NULL, *b = NULL;
    cr_assert_eq(fr_dataset_from_arrays(&a, N, u, i, NULL, NULL), FR_OK);
    cr_assert_eq(fr_dataset_from_arrays(&b, N, u, i2, NULL, NULL), FR_OK);
    cr_assert_eq(fr_dataset_n_users(a), 97);
    cr_assert_eq(fr_dataset_n_items(a), fr_dataset_n_items(b));
    const fr_idmap *ua = fr_dataset_users(a);
    for (uint32_t d = 1; d < fr_idmap_size(ua); d++) cr_assert_lt(fr_idmap_raw(ua, d - 1), fr_idmap_raw(ua, d));
    for (uint32_t d = 0; d < fr_idmap_size(ua); d++) cr_assert_eq(fr_idmap_find(ua, fr_idmap_raw(ua, d)), d);
    cr_assert_eq(fr_idmap_find(ua, 4), -1);
    cr_assert_eq(fr_idmap_find(fr_dataset_items(a), 500), -1);
    cr_assert_eq(fr_idmap_find(fr_dataset_items(a), -1), -1);
    for (uint32_t x = 0; x < fr_dataset_n_users(a); x++) {
        const uint32_t *ia, *ib;
        size_t na = fr_dataset_user(a, x, &ia, NULL, NULL), nb = fr_dataset_user(b, x, &ib, NULL, NULL);
        cr_assert_eq(na, nb);
        for (size_t k = 0; k < na; k++) cr_assert_eq(ia[k], ib[k]);
    }
    fr_dataset_free(a);
    fr_dataset_free(b);
}

static int cmp_ref(const void *x, const void *y) {
    const int64_t *a = x, *b = y; /* (time, item, rating*2) triples */
    for (int k = 0; k < 3; k++)
        if (a[k] != b[k]) return a[k] < b[k] ? -1 : 1;
    return 0;
}

/* One user with many rows in random order: the build's sort against qsort. */
Test(dataset, per_user_order_matches_reference_sort) {
    enum { N = 5000 };
    static int64_t u[N], it[N], t[N], ref[N][3];
    static float r[N];
    fr_rng g;
    fr_rng_init(&g, 9, 0, 0, FR_PURPOSE_TEST);
    for (int k = 0; k < N; k++) {
        u[k] = 1 + (k % 2);
        it[k] = k / 2;                      /* distinct per user */
        t[k] = fr_rng_below(&g, 50);        /* many ties in time */
        r[k] = (float)(1 + fr_rng_below(&g, 5));
    }
    fr_dataset *d = NULL;
    cr_assert_eq(fr_dataset_from_arrays(&d, N, u, it, r, t), FR_OK);
    for (uint32_t user = 0; user < 2; user++) {
        int m = 0;
        for (int k = 0; k < N; k++)
            if (u[k] == user + 1) { ref[m][0] = t[k]; ref[m][1] = it[k]; ref[m][2] = (int64_t)(r[k] * 2); m++; }
        qsort(ref, (size_t)m, sizeof ref[0], cmp_ref);
        const uint32_t *items;
        const float *rt;
        const int64_t *tt;
        cr_assert_eq(fr_dataset_user(d, user, &items, &rt, &tt), (size_t)m);
        for (int k = 0; k < m; k++) {
            cr_assert_eq(tt[k], ref[k][0]);
            cr_assert_eq(fr_idmap_raw(fr_dataset_items(d), items[k]), ref[k][1]);
            cr_assert_eq((int64_t)(rt[k] * 2), ref[k][2]);
        }
        for (int k = 0; k < m; k++) cr_assert(fr_dataset_has(d, user, items[k]));
    }
    fr_dataset_free(d);
}

/* ------------------------------------------------------------ duplicate pairs */

/* A repeated (user, item) pair keeps one interaction: the latest by time, ties to the last
 * in input order (not the largest rating); the ids, the (time, item) order, the sorted copy
 * and the counts follow the kept rows. */
Test(dataset, duplicate_pairs_keep_the_latest) {
    int64_t u[] = {1, 1, 1, 2, 1, 1, 2, 1, 3};
    int64_t i[] = {10, 20, 10, 30, 20, 20, 30, 40, 10};
    float r[] = {3, 5, 4, 1, 2, 1, 4, 2, 5};
    int64_t t[] = {5, 7, 9, 3, 7, 7, 3, 1, 2};
    /* user 1: item 10 at t 5 (r 3) and t 9 (r 4) -> (9, 4); item 20 three times at t 7
     * (r 5, 2, 1) -> the last, r 1; item 40 once. user 2: item 30 twice at t 3 -> r 4. */
    fr_dataset *d = NULL;
    cr_assert_eq(fr_dataset_from_arrays(&d, 9, u, i, r, t), FR_OK, "%s", fr_errmsg());
    cr_assert_eq(fr_dataset_n_interactions(d), 5);
    cr_assert_eq(fr_dataset_n_users(d), 3);
    cr_assert_eq(fr_dataset_n_items(d), 4);
    float rr;
    int64_t tt;
    cr_assert(tu_find_row(d, 1, 10, &rr, &tt)); cr_assert_eq(rr, 4); cr_assert_eq(tt, 9);
    cr_assert(tu_find_row(d, 1, 20, &rr, &tt)); cr_assert_eq(rr, 1); cr_assert_eq(tt, 7);
    cr_assert(tu_find_row(d, 1, 40, &rr, &tt)); cr_assert_eq(rr, 2); cr_assert_eq(tt, 1);
    cr_assert(tu_find_row(d, 2, 30, &rr, &tt)); cr_assert_eq(rr, 4); cr_assert_eq(tt, 3);
    cr_assert(tu_find_row(d, 3, 10, &rr, &tt)); cr_assert_eq(rr, 5);
    const uint32_t *it;
    const int64_t *ts;
    cr_assert_eq(fr_dataset_user(d, 0, &it, NULL, &ts), 3); /* (1,40) (7,20) (9,10) */
    cr_assert_eq(it[0], 3); cr_assert_eq(ts[0], 1);
    cr_assert_eq(it[1], 1); cr_assert_eq(ts[1], 7);
    cr_assert_eq(it[2], 0); cr_assert_eq(ts[2], 9);
    cr_assert_eq(fr_dataset_user(d, 1, &it, NULL, NULL), 1);
    cr_assert_eq(fr_dataset_user(d, 2, &it, NULL, NULL), 1);
    for (uint32_t x = 0; x < 4; x++)
        cr_assert_eq(fr_dataset_has(d, 0, x), x != 2, "item %u", x);
    fr_dataset_info info;
    fr_dataset_info_compute(d, &info);
    cr_assert_eq(info.interactions, 5);
    cr_assert_eq(info.duplicates, 4);
    cr_assert_float_eq(info.density, 5.0 / 12.0, 1e-12);
    cr_assert_eq(info.per_user_q[4], 3);
    cr_assert_eq(info.rating_max, 5);
    cr_assert_eq(info.hist[1], 1); /* one 1 (the kept r of item 20) */
    /* A split of it holds each pair once: the LOO test item is not also in train. */
    fr_dataset *tr = NULL, *te = NULL;
    cr_assert_eq(fr_dataset_split(d, FR_SPLIT_LOO, 0, 0, &tr, &te), FR_OK, "%s", fr_errmsg());
    cr_assert_eq(fr_dataset_n_interactions(tr) + fr_dataset_n_interactions(te), 5);
    cr_assert(fr_dataset_has(te, 0, 0));
    cr_assert_not(fr_dataset_has(tr, 0, 0));
    fr_dataset_info_compute(tr, &info);
    cr_assert_eq(info.duplicates, 0);
    fr_dataset_free(tr);
    fr_dataset_free(te);
    fr_dataset_free(d);

    /* Without times every repeat ties: the last in input order wins. */
    int64_t u2[] = {7, 7, 8, 7};
    int64_t i2[] = {1, 2, 1, 1};
    float r2[] = {5, 3, 2, 1};
    cr_assert_eq(fr_dataset_from_arrays(&d, 4, u2, i2, r2, NULL), FR_OK);
    cr_assert_eq(fr_dataset_n_interactions(d), 3);
    cr_assert(tu_find_row(d, 7, 1, &rr, &tt)); cr_assert_eq(rr, 1);
    cr_assert(tu_find_row(d, 7, 2, &rr, &tt)); cr_assert_eq(rr, 3);
    fr_dataset_info_compute(d, &info);
    cr_assert_eq(info.duplicates, 1);
    cr_assert_leq(info.density, 1.0);
    fr_dataset_free(d);
}

/* Many repeats in random order, on the parallel build (over 2^20 rows), against a naive
 * reference: for each (user, item), the row with the largest (time, input position). */
Test(dataset, duplicate_pairs_large_against_reference) {
    enum { USERS = 1500, ITEMS = 700, N = 1100000 };
    int64_t *u = malloc(N * sizeof *u), *it = malloc(N * sizeof *it), *t = malloc(N * sizeof *t);
    float *r = malloc(N * sizeof *r);
    int64_t *best = malloc((size_t)USERS * ITEMS * sizeof *best); /* index of the kept row, -1 */
    cr_assert(u && it && t && r && best);
    for (size_t k = 0; k < (size_t)USERS * ITEMS; k++) best[k] = -1;
    fr_rng g;
    fr_rng_init(&g, 5, 0, 0, FR_PURPOSE_TEST);
    uint64_t distinct = 0;
    for (int64_t k = 0; k < N; k++) {
        u[k] = fr_rng_below(&g, USERS);
        it[k] = fr_rng_below(&g, ITEMS) * 3;
        t[k] = fr_rng_below(&g, 20); /* many ties */
        r[k] = (float)(k % 10) * 0.5f;
        int64_t *b = &best[u[k] * ITEMS + it[k] / 3];
        if (*b < 0) distinct++;
        if (*b < 0 || t[k] >= t[*b]) *b = k;
    }
    fr_dataset *d = NULL;
    cr_assert_eq(fr_dataset_from_arrays(&d, N, u, it, r, t), FR_OK, "%s", fr_errmsg());
    cr_assert_eq(fr_dataset_n_interactions(d), distinct);
    fr_dataset_info info;
    fr_dataset_info_compute(d, &info);
    cr_assert_eq(info.duplicates, N - distinct);
    const fr_idmap *um = fr_dataset_users(d), *im = fr_dataset_items(d);
    for (uint32_t du = 0; du < fr_dataset_n_users(d); du++) {
        int64_t ru = fr_idmap_raw(um, du);
        const uint32_t *items;
        const float *rt;
        const int64_t *tt;
        size_t n = fr_dataset_user(d, du, &items, &rt, &tt);
        size_t want = 0;
        for (int x = 0; x < ITEMS; x++) want += best[ru * ITEMS + x] >= 0;
        cr_assert_eq(n, want, "user %lld", (long long)ru);
        for (size_t k = 0; k < n; k++) {
            int64_t ri = fr_idmap_raw(im, items[k]);
            int64_t b = best[ru * ITEMS + ri / 3];
            cr_assert_geq(b, 0);
            cr_assert_eq(tt[k], t[b]);
            cr_assert_eq(rt[k], r[b], "user %lld item %lld: %g, want row %lld's %g", (long long)ru, (long long)ri,
                         (double)rt[k], (long long)b, (double)r[b]);
            if (k) cr_assert(tt[k - 1] < tt[k] || (tt[k - 1] == tt[k] && items[k - 1] < items[k]));
            cr_assert(fr_dataset_has(d, du, items[k]));
        }
    }
    fr_dataset_free(d);
    free(u); free(it); free(t); free(r); free(best);
}

/* The permutation's destinations in a separate 64-bit array (builds over 2^32 rows) give
 * the same dataset as in the user array. */
Test(dataset, wide_destinations_same_dataset) {
    enum { N = 20000 };
    static int64_t u[N], it[N], t[N];
    static float r[N];
    fr_rng g;
    fr_rng_init(&g, 6, 0, 0, FR_PURPOSE_TEST);
    for (int k = 0; k < N; k++) {
        u[k] = fr_rng_below(&g, 300);
        it[k] = fr_rng_below(&g, 200);
        t[k] = k % 3 ? fr_rng_below(&g, 5) : (int64_t)fr_rng_below(&g, 5) << 40; /* both sort paths */
        r[k] = (float)(k % 9);
    }
    fr_dataset *a = NULL, *b = NULL;
    cr_assert_eq(fr_dataset_from_arrays(&a, N, u, it, r, t), FR_OK);
    fri_dataset_set_wide(1);
    cr_assert_eq(fr_dataset_from_arrays(&b, N, u, it, r, t), FR_OK);
    fri_dataset_set_wide(0);
    cr_assert_eq(a->n, b->n);
    cr_assert_eq(a->duplicates, b->duplicates);
    cr_assert_gt(a->duplicates, 0);
    cr_assert(memcmp(a->ptr, b->ptr, (a->n_users + 1) * sizeof *a->ptr) == 0);
    cr_assert(memcmp(a->item, b->item, a->n * sizeof *a->item) == 0);
    cr_assert(memcmp(a->rating, b->rating, a->n * sizeof *a->rating) == 0);
    cr_assert(memcmp(a->time, b->time, a->n * sizeof *a->time) == 0);
    cr_assert(memcmp(a->sorted, b->sorted, a->n * sizeof *a->sorted) == 0);
    fr_dataset_free(a);
    fr_dataset_free(b);
}
