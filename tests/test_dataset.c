/* The CSR build: dense ids in raw order, per-user (time, item) order, lookups. */
#include <criterion/criterion.h>

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
