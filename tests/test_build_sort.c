/* The CSR build's per-user item order (src/data/dataset.c): the item-sorted copy behind
 * fr_dataset_has is right for long users (radix sort, 1 to 3 byte digits) and short ones
 * (quicksort), checked against a naive membership table. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "data/dataset.h"

/* users x (up to) per items drawn from ni, distinct per user; every (u, i) checked. */
static void check(uint32_t users, uint32_t per, uint32_t ni) {
    size_t cap = (size_t)users * per, n = 0;
    int64_t *u = malloc(cap * sizeof *u), *it = malloc(cap * sizeof *it), *t = malloc(cap * sizeof *t);
    unsigned char *mark = calloc((size_t)users * ni, 1);
    cr_assert(u && it && t && mark);
    uint64_t x = 88172645463325252ull;
    for (uint32_t k = 0; k < per * users; k++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        uint32_t uu = k % users, ii = (uint32_t)(x % ni);
        if (mark[(size_t)uu * ni + ii]) continue;
        mark[(size_t)uu * ni + ii] = 1;
        u[n] = uu;
        it[n] = ii;
        t[n] = (int64_t)(x >> 40); /* times in random order: the rows are re-sorted */
        n++;
    }
    fr_dataset *d = NULL;
    cr_assert_eq(fr_dataset_from_arrays(&d, n, u, it, NULL, t), FR_OK);
    cr_assert_eq(fr_dataset_n_interactions(d), n);
    if (per > 65536) cr_assert_gt(fr_dataset_n_items(d), 65536, "n %zu items %u", n, fr_dataset_n_items(d));
    const fr_idmap *um = fr_dataset_users(d), *im = fr_dataset_items(d);
    size_t hits = 0;
    for (uint32_t du = 0; du < fr_dataset_n_users(d); du++) {
        int64_t ru = fr_idmap_raw(um, du);
        for (uint32_t di = 0; di < fr_dataset_n_items(d); di++) {
            int64_t ri = fr_idmap_raw(im, di);
            bool want = mark[(size_t)ru * ni + (size_t)ri] != 0;
            cr_assert_eq(fr_dataset_has(d, du, di), want, "user %lld item %lld", (long long)ru, (long long)ri);
            hits += want;
        }
    }
    cr_assert_eq(hits, n);
    fr_dataset_free(d);
    free(u);
    free(it);
    free(t);
    free(mark);
}

Test(build_sort, long_and_short_users) {
    check(3, 200, 250);    /* one-byte ids, long users: radix, 1 pass */
    check(4, 300, 3000);   /* two-byte ids: radix, 2 passes */
    check(3, 100000, 200000); /* over 65536 distinct items (three-byte ids): radix, 3 passes */
    check(50, 20, 70000);  /* short users: quicksort */
}
