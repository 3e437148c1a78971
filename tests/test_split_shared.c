/* Acceptance: leave-one-out on ml-100k reproduces the shared NCF files byte for byte
 * (skipped when ../shared/data is absent). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fedrec/data.h"
#include "testutil.h"

Test(split_shared, ml100k_loo_matches_shared_files) {
    char *udata = tu_shared("ml-100k/u.data");
    char *ref_train = tu_shared("ml-100k-loo/train.rating");
    char *ref_test = tu_shared("ml-100k-loo/test.rating");
    if (!udata || !ref_train || !ref_test) {
        free(udata); free(ref_train); free(ref_test);
        cr_skip_test("shared data absent");
    }
    /* A tiny local parser: user item rating timestamp per line. */
    FILE *f = fopen(udata, "r");
    cr_assert_not_null(f);
    size_t cap = 200000, n = 0;
    int64_t *u = malloc(cap * sizeof *u), *it = malloc(cap * sizeof *it), *t = malloc(cap * sizeof *t);
    float *r = malloc(cap * sizeof *r);
    long long a, b, d;
    float c;
    while (n < cap && fscanf(f, "%lld %lld %f %lld", &a, &b, &c, &d) == 4) {
        u[n] = a; /* raw ids 1..n become dense 0..n-1, as the shared files have them */
        it[n] = b;
        r[n] = c;
        t[n] = d;
        n++;
    }
    fclose(f);
    cr_assert_eq(n, 100000);
    fr_dataset *all = NULL, *train = NULL, *test = NULL;
    fr_negatives *negs = NULL;
    cr_assert_eq(fr_dataset_from_arrays(&all, n, u, it, r, t), FR_OK);
    cr_assert_eq(fr_dataset_split(all, FR_SPLIT_LOO, 0, 0, &train, &test), FR_OK);
    cr_assert_eq(fr_dataset_n_interactions(train), 99057);
    cr_assert_eq(fr_dataset_n_interactions(test), 943);
    cr_assert_eq(fr_negatives_sample(&negs, all, test, 99, 7), FR_OK);
    char *dir = tu_tmpdir();
    char out[4096];
    snprintf(out, sizeof out, "%s/ncf", dir);
    cr_assert_eq(fr_dataset_write_ncf(out, train, test, negs), FR_OK, "%s", fr_errmsg());

    const char *names[2] = {"train.rating", "test.rating"};
    const char *refs[2] = {ref_train, ref_test};
    for (int k = 0; k < 2; k++) {
        char p[4200];
        snprintf(p, sizeof p, "%s/%s", out, names[k]);
        size_t la, lb;
        char *x = tu_slurp(p, &la), *y = tu_slurp(refs[k], &lb);
        cr_assert_not_null(x);
        cr_assert_not_null(y);
        cr_assert_eq(la, lb, "%s: %zu bytes, expected %zu", names[k], la, lb);
        cr_assert(memcmp(x, y, la) == 0, "%s differs from the shared file", names[k]);
        free(x);
        free(y);
    }

    /* test.negative: 943 lines of (u,i) and 99 distinct unrated items. */
    char p[4200];
    snprintf(p, sizeof p, "%s/test.negative", out);
    FILE *g = fopen(p, "r");
    cr_assert_not_null(g);
    char line[8192];
    unsigned lines = 0;
    while (fgets(line, sizeof line, g)) {
        unsigned uu, ii;
        cr_assert_eq(sscanf(line, "(%u,%u)", &uu, &ii), 2);
        cr_assert_eq(uu, lines);
        cr_assert(fr_dataset_has(test, uu, ii));
        char *s = strchr(line, '\t');
        unsigned seen[99], m = 0;
        while (s && *s == '\t') {
            char *e;
            unsigned long v = strtoul(s + 1, &e, 10);
            cr_assert(e > s + 1);
            cr_assert_lt(m, 99);
            cr_assert_lt(v, 1682);
            cr_assert_not(fr_dataset_has(all, uu, (uint32_t)v), "user %u rated negative %lu", uu, v);
            for (unsigned q = 0; q < m; q++) cr_assert_neq(seen[q], v);
            seen[m++] = (unsigned)v;
            s = e;
        }
        cr_assert_eq(m, 99);
        lines++;
    }
    fclose(g);
    cr_assert_eq(lines, 943);

    tu_rmtree(dir);
    free(dir);
    fr_negatives_free(negs);
    fr_dataset_free(train);
    fr_dataset_free(test);
    fr_dataset_free(all);
    free(u); free(it); free(t); free(r);
    free(udata); free(ref_train); free(ref_test);
}
