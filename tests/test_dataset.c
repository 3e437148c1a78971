/* The CSR build: dense ids in raw order, per-user (time, item) order, lookups. */
#include <criterion/criterion.h>

#include <stdlib.h>

#include "data/dataset.h"

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
