/* The synthetic generator: determinism, counts, ranges, ordering, power laws, errors. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "data/dataset.h"

static fr_gen_opts small(uint64_t seed) {
    fr_gen_opts o;
    fr_gen_opts_default(&o);
    o.users = 300;
    o.items = 200;
    o.interactions = 9000;
    o.seed = seed;
    return o;
}

static bool same(const fr_dataset *a, const fr_dataset *b) {
    return a->n == b->n && a->n_users == b->n_users && a->n_items == b->n_items &&
           memcmp(a->ptr, b->ptr, (a->n_users + 1) * sizeof *a->ptr) == 0 &&
           memcmp(a->item, b->item, a->n * sizeof *a->item) == 0 &&
           memcmp(a->rating, b->rating, a->n * sizeof *a->rating) == 0 &&
           memcmp(a->time, b->time, a->n * sizeof *a->time) == 0;
}

Test(generate, deterministic_by_seed) {
    fr_gen_opts o = small(7);
    fr_dataset *a = NULL, *b = NULL, *c = NULL;
    cr_assert_eq(fr_dataset_generate(&a, &o), FR_OK);
    cr_assert_eq(fr_dataset_generate(&b, &o), FR_OK);
    cr_assert(same(a, b));
    o.seed = 8;
    cr_assert_eq(fr_dataset_generate(&c, &o), FR_OK);
    cr_assert_not(same(a, c));
    fr_dataset_free(a); fr_dataset_free(b); fr_dataset_free(c);
}

Test(generate, counts_ranges_and_order) {
    fr_gen_opts o = small(1);
    fr_dataset *d = NULL;
    cr_assert_eq(fr_dataset_generate(&d, &o), FR_OK);
    cr_assert_eq(fr_dataset_n_users(d), 300);
    cr_assert_eq(fr_dataset_n_items(d), 200);
    cr_assert_eq(fr_dataset_n_interactions(d), 9000);
    cr_assert(fr_dataset_has_time(d));
    unsigned hist[6] = {0};
    size_t maxdeg = 0;
    for (uint32_t u = 0; u < 300; u++) {
        const uint32_t *it;
        const float *r;
        const int64_t *t;
        size_t n = fr_dataset_user(d, u, &it, &r, &t);
        cr_assert_geq(n, 5, "user %u has %zu interactions", u, n);
        maxdeg = n > maxdeg ? n : maxdeg;
        for (size_t k = 0; k < n; k++) {
            cr_assert_lt(it[k], 200);
            cr_assert(r[k] == 1 || r[k] == 2 || r[k] == 3 || r[k] == 4 || r[k] == 5, "rating %g", r[k]);
            hist[(int)r[k]]++;
            cr_assert_geq(t[k], o.time_start);
            cr_assert_lt(t[k], o.time_start + o.time_span);
            if (k) {
                cr_assert(t[k - 1] < t[k] || (t[k - 1] == t[k] && it[k - 1] < it[k]), "user %u order", u);
            }
            for (size_t j = 0; j < k; j++) cr_assert_neq(it[j], it[k], "user %u has item %u twice", u, it[k]);
        }
    }
    /* Ratings centred on 3 with both tails used. */
    for (int s = 1; s <= 5; s++) cr_assert_gt(hist[s], 100, "rating %d: %u", s, hist[s]);
    cr_assert_gt(hist[3], hist[1]);
    cr_assert_gt(hist[3], hist[5]);
    /* Activity is a power law: the busiest user far above the floor of 5, up to the cap of
     * half the catalogue (200 / 2; the target needs only 9000 / 300 = 30 a user). */
    cr_assert_eq(maxdeg, 100);
    fr_dataset_free(d);
}

static int cmp_desc(const void *a, const void *b) {
    unsigned x = *(const unsigned *)a, y = *(const unsigned *)b;
    return (x < y) - (x > y);
}

Test(generate, item_popularity_is_heavy_tailed) {
    fr_gen_opts o;
    fr_gen_opts_default(&o);
    o.users = 2000;
    o.items = 1000;
    o.interactions = 40000;
    fr_dataset *d = NULL;
    cr_assert_eq(fr_dataset_generate(&d, &o), FR_OK);
    unsigned *cnt = calloc(1000, sizeof *cnt);
    for (uint64_t k = 0; k < d->n; k++) cnt[d->item[k]]++;
    qsort(cnt, 1000, sizeof *cnt, cmp_desc);
    cr_assert_gt(cnt[0], 20 * (cnt[500] + 1), "top %u, median %u", cnt[0], cnt[500]);
    cr_assert_gt(cnt[9], 4 * (cnt[500] + 1), "10th %u, median %u", cnt[9], cnt[500]);
    free(cnt);
    fr_dataset_free(d);
}

Test(generate, dense_and_tiny_catalogues) {
    /* Every pair taken: each user rates every item exactly once. */
    fr_gen_opts o;
    fr_gen_opts_default(&o);
    o.users = 20;
    o.items = 30;
    o.interactions = 600;
    fr_dataset *d = NULL;
    cr_assert_eq(fr_dataset_generate(&d, &o), FR_OK);
    for (uint32_t u = 0; u < 20; u++) {
        cr_assert_eq(fr_dataset_user(d, u, NULL, NULL, NULL), 30);
        for (uint32_t i = 0; i < 30; i++) cr_assert(fr_dataset_has(d, u, i));
    }
    fr_dataset_free(d);
    /* 3 items: min(5, items) = 3 each, even for a smaller target. */
    o.items = 3;
    o.interactions = 10;
    cr_assert_eq(fr_dataset_generate(&d, &o), FR_OK);
    cr_assert_eq(fr_dataset_n_interactions(d), 60);
    fr_dataset_free(d);
}

Test(generate, options_explain_what_is_wrong) {
    fr_gen_opts o = small(1);
    cr_assert_eq(fr_gen_opts_check(&o), FR_OK);
    o.users = 0;
    cr_assert_eq(fr_gen_opts_check(&o), FR_ERR_RANGE);
    cr_assert(strstr(fr_errmsg(), "users = 0"), "%s", fr_errmsg());
    o = small(1);
    o.interactions = 300ull * 200 + 1;
    cr_assert_eq(fr_gen_opts_check(&o), FR_ERR_RANGE);
    cr_assert(strstr(fr_errmsg(), "60001 interactions"), "%s", fr_errmsg());
    o = small(1);
    o.dim = 0;
    cr_assert_eq(fr_gen_opts_check(&o), FR_ERR_RANGE);
    o = small(1);
    o.item_zipf = -1;
    cr_assert_eq(fr_gen_opts_check(&o), FR_ERR_RANGE);
    o = small(1);
    o.time_span = 0;
    cr_assert_eq(fr_gen_opts_check(&o), FR_ERR_RANGE);
    fr_dataset *d = (fr_dataset *)1;
    o = small(1);
    o.items = 0;
    cr_assert_eq(fr_dataset_generate(&d, &o), FR_ERR_RANGE);
    cr_assert_null(d);
}

Test(generate, allocation_failures_leak_nothing) {
    fr_gen_opts o = small(3);
    o.users = 40;
    o.items = 30;
    o.interactions = 400;
    for (long nth = 1;; nth++) {
        fr_dataset *d = (fr_dataset *)1;
        fr_test_fail_alloc(nth, true);
        fr_err e = fr_dataset_generate(&d, &o);
        fr_test_fail_alloc(0, false);
        if (e == FR_OK) { cr_assert_gt(nth, 5); fr_dataset_free(d); break; }
        cr_assert_eq(e, FR_ERR_NOMEM, "allocation %ld", nth);
        cr_assert_null(d);
    }
}

/* Each user keeps at most half the catalogue unless the target needs more a user. */
Test(generate, activity_capped_at_half_the_catalogue) {
    fr_gen_opts o;
    fr_gen_opts_default(&o);
    o.users = 50;
    o.items = 101;
    o.interactions = 2000; /* 40 a user on average: a power law would give the top user more than 51 */
    o.user_zipf = 2.0;
    fr_dataset *d = NULL;
    cr_assert_eq(fr_dataset_generate(&d, &o), FR_OK);
    cr_assert_eq(fr_dataset_n_interactions(d), 2000);
    size_t maxdeg = 0;
    for (uint32_t u = 0; u < 50; u++) {
        size_t n = fr_dataset_user(d, u, NULL, NULL, NULL);
        maxdeg = n > maxdeg ? n : maxdeg;
    }
    cr_assert_eq(maxdeg, 51); /* ceil(101 / 2) */
    fr_dataset_free(d);
    /* 60 a user on average: the cap rises to what the target needs */
    o.interactions = 3000;
    cr_assert_eq(fr_dataset_generate(&d, &o), FR_OK);
    cr_assert_eq(fr_dataset_n_interactions(d), 3000);
    for (uint32_t u = 0; u < 50; u++) cr_assert_leq(fr_dataset_user(d, u, NULL, NULL, NULL), 60);
    fr_dataset_free(d);
}

/* A share (users u % n == at) is the whole set's users selected: fr_dataset_select_users of
 * the whole generation, an independent path, gives the same arrays, ids and fingerprint. */
Test(generate, share_is_the_whole_set_selected) {
    fr_gen_opts o = small(3);
    fr_dataset *all = NULL;
    cr_assert_eq(fr_dataset_generate(&all, &o), FR_OK);
    uint32_t users[300];
    for (uint32_t n = 1; n <= 4; n++)
        for (uint32_t at = 0; at < n; at++) {
            size_t k = 0;
            for (uint32_t u = at; u < o.users; u += n) users[k++] = u;
            fr_dataset *sel = NULL, *sh = NULL;
            cr_assert_eq(fr_dataset_select_users(&sel, all, users, k), FR_OK);
            cr_assert_eq(fr_dataset_generate_share(&sh, &o, at, n), FR_OK, "%u of %u: %s", at, n, fr_errmsg());
            cr_assert(same(sel, sh), "share %u of %u", at, n);
            cr_assert_eq(memcmp(sel->sorted, sh->sorted, sel->n * sizeof *sel->sorted), 0);
            fr_fingerprint a, b;
            fr_dataset_fingerprint(sel, &a);
            fr_dataset_fingerprint(sh, &b);
            cr_assert(fr_fingerprint_equal(&a, &b));
            uint64_t mine = 0;
            for (size_t j = 0; j < k; j++) mine += all->ptr[users[j] + 1] - all->ptr[users[j]];
            cr_assert_eq(sh->n, mine);
            cr_assert_eq(sh->n_users, o.users);
            fr_dataset_free(sel);
            fr_dataset_free(sh);
        }
    fr_dataset *x = NULL;
    cr_assert_eq(fr_dataset_generate_share(&x, &o, 2, 2), FR_ERR_INVALID);
    cr_assert_eq(fr_dataset_generate_share(&x, &o, 0, 0), FR_ERR_INVALID);
    cr_assert_null(x);
    fr_dataset_free(all);
}
