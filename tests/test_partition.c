/* Partitions: coverage, sizes, determinism, non-IID skew, attribute silos, errors. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "data/dataset.h"

/* n users; user u rated items (u % 10) + 10 j for j < 3 (so its group is u % 10), and a
 * few more. */
static fr_dataset *users_by_group(uint32_t n) {
    size_t cap = (size_t)n * 5, m = 0;
    int64_t *u = malloc(cap * sizeof *u), *it = malloc(cap * sizeof *it);
    for (uint32_t a = 0; a < n; a++) {
        for (uint32_t j = 0; j < 3; j++) { u[m] = a; it[m] = a % 10 + 10 * j; m++; }
        u[m] = a; it[m] = 100 + a % 7; m++;
    }
    fr_dataset *d = NULL;
    cr_assert_eq(fr_dataset_from_arrays(&d, m, u, it, NULL, NULL), FR_OK);
    free(u); free(it);
    return d;
}

/* Every user exactly once, ascending within each client; returns the sizes' spread. */
static uint64_t check_cover(const fr_partition *p, uint32_t n_users) {
    char *seen = calloc(n_users, 1);
    uint64_t lo = UINT64_MAX, hi = 0;
    cr_assert_eq(p->ptr[0], 0);
    cr_assert_eq(p->ptr[p->n_clients], n_users);
    for (uint32_t c = 0; c < p->n_clients; c++) {
        uint64_t sz = p->ptr[c + 1] - p->ptr[c];
        lo = sz < lo ? sz : lo;
        hi = sz > hi ? sz : hi;
        for (uint64_t k = p->ptr[c]; k < p->ptr[c + 1]; k++) {
            cr_assert_lt(p->users[k], n_users);
            cr_assert_not(seen[p->users[k]], "user %u twice", p->users[k]);
            seen[p->users[k]] = 1;
            if (k > p->ptr[c]) cr_assert_lt(p->users[k - 1], p->users[k]);
        }
    }
    free(seen);
    return hi - lo;
}

Test(partition, one_user_per_client) {
    fr_dataset *d = users_by_group(37);
    fr_partition *p = NULL;
    cr_assert_eq(fr_partition_make(&p, d, FR_PARTITION_USER, 0, 0, NULL, 0), FR_OK);
    cr_assert_eq(p->n_clients, 37);
    check_cover(p, 37);
    for (uint32_t c = 0; c < 37; c++) cr_assert_eq(p->users[p->ptr[c]], c);
    fr_partition_free(p);
    fr_dataset_free(d);
}

Test(partition, iid_silos_balanced_and_seeded) {
    fr_dataset *d = users_by_group(103);
    fr_partition *a = NULL, *b = NULL, *c = NULL;
    cr_assert_eq(fr_partition_make(&a, d, FR_PARTITION_IID, 10, 0, NULL, 5), FR_OK);
    cr_assert_eq(a->n_clients, 10);
    cr_assert_leq(check_cover(a, 103), 1);
    cr_assert_eq(fr_partition_make(&b, d, FR_PARTITION_IID, 10, 0, NULL, 5), FR_OK);
    cr_assert(memcmp(a->users, b->users, 103 * sizeof *a->users) == 0);
    cr_assert(memcmp(a->ptr, b->ptr, 11 * sizeof *a->ptr) == 0);
    cr_assert_eq(fr_partition_make(&c, d, FR_PARTITION_IID, 10, 0, NULL, 6), FR_OK);
    cr_assert(memcmp(a->users, c->users, 103 * sizeof *a->users) != 0);
    /* Not simply consecutive blocks of ids. */
    cr_assert_neq(a->users[a->ptr[1] - 1] - a->users[0], a->ptr[1] - 1);
    fr_partition_free(a); fr_partition_free(b); fr_partition_free(c);
    fr_partition *one = NULL;
    cr_assert_eq(fr_partition_make(&one, d, FR_PARTITION_IID, 103, 0, NULL, 5), FR_OK);
    cr_assert_eq(check_cover(one, 103), 0);
    fr_partition_free(one);
    fr_dataset_free(d);
}

/* Fraction of users of the largest group-in-silo: 1 means each silo holds one group. */
static double purity(const fr_partition *p) {
    double sum = 0;
    for (uint32_t c = 0; c < p->n_clients; c++) {
        unsigned cnt[10] = {0}, best = 0;
        for (uint64_t k = p->ptr[c]; k < p->ptr[c + 1]; k++) cnt[p->users[k] % 10]++;
        for (int g = 0; g < 10; g++) best = cnt[g] > best ? cnt[g] : best;
        sum += best;
    }
    return sum / (double)p->ptr[p->n_clients];
}

Test(partition, dirichlet_skews_with_small_alpha) {
    fr_dataset *d = users_by_group(1000);
    fr_partition *lo = NULL, *hi = NULL, *again = NULL;
    cr_assert_eq(fr_partition_make(&lo, d, FR_PARTITION_DIRICHLET, 8, 0.05, NULL, 1), FR_OK);
    cr_assert_eq(fr_partition_make(&hi, d, FR_PARTITION_DIRICHLET, 8, 1000, NULL, 1), FR_OK);
    check_cover(lo, 1000);
    check_cover(hi, 1000);
    for (uint32_t c = 0; c < 8; c++) cr_assert_gt(lo->ptr[c + 1], lo->ptr[c], "silo %u empty", c);
    double plo = purity(lo), phi = purity(hi);
    /* IID-like: ~1/10 + noise; skewed: most of a silo from one or two groups. */
    cr_assert_lt(phi, 0.25, "alpha 1000 purity %g", phi);
    cr_assert_gt(plo, 0.45, "alpha 0.05 purity %g", plo);
    cr_assert_eq(fr_partition_make(&again, d, FR_PARTITION_DIRICHLET, 8, 0.05, NULL, 1), FR_OK);
    cr_assert(memcmp(lo->users, again->users, 1000 * sizeof *lo->users) == 0);
    fr_partition_free(lo); fr_partition_free(hi); fr_partition_free(again);
    /* As many silos as users: still every silo gets one. */
    fr_dataset *s = users_by_group(12);
    fr_partition *p = NULL;
    cr_assert_eq(fr_partition_make(&p, s, FR_PARTITION_DIRICHLET, 12, 0.1, NULL, 3), FR_OK);
    cr_assert_eq(check_cover(p, 12), 0);
    fr_partition_free(p);
    fr_dataset_free(s);
    fr_dataset_free(d);
}

Test(partition, attribute_silos) {
    fr_dataset *d = users_by_group(6);
    fr_partition *p = (fr_partition *)1;
    cr_assert_eq(fr_partition_make(&p, d, FR_PARTITION_ATTRIBUTE, 0, 0, "gender", 0), FR_ERR_UNSUPPORTED);
    cr_assert_null(p);
    cr_assert(strstr(fr_errmsg(), "gender"), "%s", fr_errmsg());
    /* Attach metadata by hand: gender F M F - M F (user 3 unknown). */
    fr_meta *m = fri_calloc(1, sizeof *m);
    m->n_users = 6;
    m->n_attrs = 1;
    m->attr_names = fri_calloc(1, sizeof *m->attr_names);
    m->attr_names[0] = fri_strdup("gender");
    m->attrs = fri_calloc(1, sizeof *m->attrs);
    m->attrs[0] = fri_calloc(6, sizeof **m->attrs);
    const char *g[6] = {"F", "M", "F", NULL, "M", "F"};
    for (int u = 0; u < 6; u++) m->attrs[0][u] = g[u] ? fri_strdup(g[u]) : NULL;
    d->meta = m;
    cr_assert_eq(fr_partition_make(&p, d, FR_PARTITION_ATTRIBUTE, 0, 0, "gender", 0), FR_OK);
    cr_assert_eq(p->n_clients, 3);
    uint64_t ptr[4] = {0, 3, 5, 6};
    uint32_t users[6] = {0, 2, 5, 1, 4, 3};
    cr_assert(memcmp(p->ptr, ptr, sizeof ptr) == 0);
    cr_assert(memcmp(p->users, users, sizeof users) == 0);
    fr_partition_free(p);
    cr_assert_eq(fr_partition_make(&p, d, FR_PARTITION_ATTRIBUTE, 0, 0, "age", 0), FR_ERR_UNSUPPORTED);
    fr_dataset_free(d);
}

Test(partition, rejects_bad_arguments) {
    fr_dataset *d = users_by_group(5);
    fr_partition *p = (fr_partition *)1;
    cr_assert_eq(fr_partition_make(&p, d, FR_PARTITION_IID, 0, 0, NULL, 0), FR_ERR_RANGE);
    cr_assert_null(p);
    cr_assert_eq(fr_partition_make(&p, d, FR_PARTITION_IID, 6, 0, NULL, 0), FR_ERR_RANGE);
    cr_assert(strstr(fr_errmsg(), "6 silos for 5 users"), "%s", fr_errmsg());
    cr_assert_eq(fr_partition_make(&p, d, FR_PARTITION_DIRICHLET, 2, 0, NULL, 0), FR_ERR_RANGE);
    cr_assert(strstr(fr_errmsg(), "alpha"), "%s", fr_errmsg());
    cr_assert_eq(fr_partition_make(&p, d, FR_PARTITION_DIRICHLET, 2, -1, NULL, 0), FR_ERR_RANGE);
    cr_assert_eq(fr_partition_make(&p, d, (fr_partition_kind)7, 2, 1, NULL, 0), FR_ERR_INVALID);
    fr_dataset_free(d);
}

Test(partition, allocation_failures_leak_nothing) {
    fr_dataset *d = users_by_group(30);
    fr_partition_kind kinds[3] = {FR_PARTITION_USER, FR_PARTITION_IID, FR_PARTITION_DIRICHLET};
    for (int k = 0; k < 3; k++)
        for (long nth = 1;; nth++) {
            fr_partition *p = (fr_partition *)1;
            fr_test_fail_alloc(nth, true);
            fr_err e = fr_partition_make(&p, d, kinds[k], 4, 0.5, NULL, 1);
            fr_test_fail_alloc(0, false);
            if (e == FR_OK) { fr_partition_free(p); break; }
            cr_assert_eq(e, FR_ERR_NOMEM);
            cr_assert_null(p);
        }
    fr_dataset_free(d);
}
