/* Train/test splits of a dataset: leave-one-out (latest), a global temporal cut and a
 * seeded random ratio.
 * Invariants: train and test are built over the SAME id maps as the source (retained,
 * rows carry raw ids), so a dense id means the same user or item in d, train and test;
 * every source interaction lands in exactly one of train and test; neither is empty (a
 * split that would leave one empty is FR_ERR_EMPTY, saying what the data gives). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "data/dataset.h"

/* Rows sized once for n interactions (n may be 0). */
static fr_err rows_alloc(fri_rows *r, size_t n, bool has_time) {
    memset(r, 0, sizeof *r);
    r->has_time = has_time;
    r->user = fri_malloc(n * sizeof *r->user);
    r->item = fri_malloc(n * sizeof *r->item);
    r->rating = fri_malloc(n * sizeof *r->rating);
    r->time = fri_malloc(n * sizeof *r->time);
    r->cap = n;
    if (!r->user || !r->item || !r->rating || !r->time) { fri_rows_free(r); return FR_ERR_NOMEM; }
    return FR_OK;
}

/* Appends source interaction k of dense user u, with raw ids. */
static void rows_add(fri_rows *r, const fr_dataset *d, uint32_t u, uint64_t k) {
    r->user[r->n] = (uint32_t)fr_idmap_raw(d->users, u);
    r->item[r->n] = (uint32_t)fr_idmap_raw(d->items, d->item[k]);
    r->rating[r->n] = d->rating[k];
    r->time[r->n] = d->time[k];
    r->n++;
}

/* Index in d of the held-out interaction of user u: latest time, ties to the larger
 * raw item id (explicit, not relying on the CSR order). */
static uint64_t loo_pick(const fr_dataset *d, uint32_t u) {
    uint64_t best = d->ptr[u];
    for (uint64_t k = d->ptr[u] + 1; k < d->ptr[u + 1]; k++) {
        if (d->time[k] > d->time[best] ||
            (d->time[k] == d->time[best] &&
             fr_idmap_raw(d->items, d->item[k]) >= fr_idmap_raw(d->items, d->item[best])))
            best = k;
    }
    return best;
}

typedef struct { int64_t t; uint32_t user, item; uint64_t k; } tkey;

static int cmp_tkey(const void *a, const void *b) {
    const tkey *x = a, *y = b;
    if (x->t != y->t) return x->t < y->t ? -1 : 1;
    if (x->user != y->user) return x->user < y->user ? -1 : 1;
    if (x->item != y->item) return x->item < y->item ? -1 : 1;
    return (x->k > y->k) - (x->k < y->k);
}

/* Marks in is_test[k] (0/1) which interactions go to test; returns the test count. */
static fr_err mark(const fr_dataset *d, fr_split_kind kind, double ratio, uint64_t seed, uint8_t *is_test,
                   uint64_t *n_test) {
    uint64_t nt = 0;
    if (kind == FR_SPLIT_LOO) {
        memset(is_test, 0, d->n);
        for (uint32_t u = 0; u < d->n_users; u++) {
            if (d->ptr[u + 1] - d->ptr[u] < 2) continue; /* a single interaction stays in train */
            is_test[loo_pick(d, u)] = 1;
            nt++;
        }
    } else if (kind == FR_SPLIT_TEMPORAL) {
        tkey *keys = fri_malloc((size_t)d->n * sizeof *keys);
        if (!keys) return FR_ERR_NOMEM;
        for (uint32_t u = 0; u < d->n_users; u++)
            for (uint64_t k = d->ptr[u]; k < d->ptr[u + 1]; k++)
                keys[k] = (tkey){d->time[k], u, d->item[k], k};
        qsort(keys, (size_t)d->n, sizeof *keys, cmp_tkey);
        uint64_t n_train = (uint64_t)floor(ratio * (double)d->n + 0.5);
        for (uint64_t j = 0; j < d->n; j++) is_test[keys[j].k] = j >= n_train;
        nt = d->n - n_train;
        fri_free(keys);
    } else {
        for (uint32_t u = 0; u < d->n_users; u++) {
            fr_rng r;
            fr_rng_init(&r, seed, 0, u, FR_PURPOSE_SPLIT);
            for (uint64_t k = d->ptr[u]; k < d->ptr[u + 1]; k++) {
                is_test[k] = !(fr_rng_double(&r) < ratio);
                nt += is_test[k];
            }
        }
    }
    *n_test = nt;
    return FR_OK;
}

/* The error for a split with an empty side: what was asked and what the data gives. */
static fr_err empty_side(const fr_dataset *d, fr_split_kind kind, double ratio, uint64_t seed, uint64_t n_test) {
    unsigned long long n = (unsigned long long)d->n, nt = (unsigned long long)n_test;
    if (d->n == 0) return fri_fail(FR_ERR_EMPTY, "split: the dataset has no interaction");
    if (kind == FR_SPLIT_LOO && d->n_users == 1)
        return fri_fail(FR_ERR_EMPTY, "split loo: the one user has a single interaction, so none can be held out; "
                        "expected a user with two or more");
    if (kind == FR_SPLIT_LOO)
        return fri_fail(FR_ERR_EMPTY, "split loo: each of the %u users has a single interaction, so none can be held "
                        "out; expected a user with two or more", d->n_users);
    char seed_note[40] = "";
    if (kind == FR_SPLIT_RATIO) snprintf(seed_note, sizeof seed_note, " (seed %llu)", (unsigned long long)seed);
    return fri_fail(FR_ERR_EMPTY, "split %s:%g%s: %llu interactions give %llu to train and %llu to test; expected at "
                    "least one in each (another ratio or more data)", kind == FR_SPLIT_RATIO ? "ratio" : "temporal",
                    ratio, seed_note, n, n - nt, nt);
}

fr_err fr_dataset_split(const fr_dataset *d, fr_split_kind kind, double ratio, uint64_t seed, fr_dataset **train,
                fr_dataset **test) {
    if (train) *train = NULL;
    if (test) *test = NULL;
    if (!d || !train || !test) return fri_fail(FR_ERR_INVALID, "split: dataset and both outputs are required");
    if (kind != FR_SPLIT_LOO && kind != FR_SPLIT_TEMPORAL && kind != FR_SPLIT_RATIO)
        return fri_fail(FR_ERR_INVALID, "split: unknown kind %d; expected loo (1), temporal (2) or ratio (3)",
                        (int)kind);
    if (kind != FR_SPLIT_LOO && !(ratio > 0 && ratio < 1))
        return fri_fail(FR_ERR_RANGE, "split: train ratio %g; expected a value strictly between 0 and 1", ratio);
    if (kind == FR_SPLIT_TEMPORAL && !d->has_time)
        return fri_fail(FR_ERR_INVALID, "split: a temporal split needs timestamps and this dataset has none");

    fr_err err = FR_OK;
    fri_rows tr = {0}, te = {0};
    fr_dataset *a = NULL, *b = NULL;
    uint64_t n_test = 0;
    uint8_t *is_test = fri_malloc((size_t)d->n);
    if (!is_test) return FR_ERR_NOMEM;
    if ((err = mark(d, kind, ratio, seed, is_test, &n_test))) goto done;
    if (n_test == 0 || n_test == d->n) {
        err = empty_side(d, kind, ratio, seed, n_test);
        goto done;
    }
    if ((err = rows_alloc(&tr, (size_t)(d->n - n_test), d->has_time))) goto done;
    if ((err = rows_alloc(&te, (size_t)n_test, d->has_time))) goto done;
    for (uint32_t u = 0; u < d->n_users; u++)
        for (uint64_t k = d->ptr[u]; k < d->ptr[u + 1]; k++) rows_add(is_test[k] ? &te : &tr, d, u, k);
    tr.implicit = te.implicit = d->implicit;
    if ((err = fri_dataset_build(&a, &tr, d->users, d->items))) goto done;
    if ((err = fri_dataset_build(&b, &te, d->users, d->items))) goto done;
    *train = a;
    *test = b;
    a = b = NULL;
done:
    fri_free(is_test);
    fri_rows_free(&tr);
    fri_rows_free(&te);
    fr_dataset_free(a);
    fr_dataset_free(b);
    return err;
}
