/* Train/test splits of a dataset: leave-one-out (each user's latest interaction, or a
 * seeded random one when the data has no timestamps), a global temporal cut, and two
 * per-user shares: each user's latest round((1-R)*n) (temporal-user) or a seeded random
 * round((1-R)*n) (ratio), where a user with two or more interactions keeps at least one
 * on each side and a user with one keeps it in train.
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

/* Test interactions of a user with n of them under a per-user share: round((1-R)*n),
 * half up, kept within [1, n-1] for n >= 2; 0 for n < 2 (a single interaction trains). */
static uint64_t user_test_count(uint64_t n, double ratio) {
    if (n < 2) return 0;
    uint64_t t = (uint64_t)floor((1.0 - ratio) * (double)n + 0.5);
    return t < 1 ? 1 : t > n - 1 ? n - 1 : t;
}

/* Marks in is_test[k] (0/1) which interactions go to test; returns the test count.
 * Random choices use one stream per user, (seed, round 0, client = dense user, SPLIT). */
static fr_err mark(const fr_dataset *d, fr_split_kind kind, double ratio, uint64_t seed, uint8_t *is_test,
                   uint64_t *n_test) {
    uint64_t nt = 0;
    memset(is_test, 0, d->n);
    bool by_time = fr_dataset_has_time_order(d);
    if (kind == FR_SPLIT_LOO) {
        for (uint32_t u = 0; u < d->n_users; u++) {
            uint64_t n = d->ptr[u + 1] - d->ptr[u];
            if (n < 2) continue; /* a single interaction stays in train */
            if (by_time) {
                is_test[loo_pick(d, u)] = 1;
            } else { /* no order to follow: a seeded random one */
                fr_rng r;
                fr_rng_init(&r, seed, 0, u, FR_PURPOSE_SPLIT);
                is_test[d->ptr[u] + fr_rng_below64(&r, n)] = 1;
            }
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
    } else if (kind == FR_SPLIT_TEMPORAL_USER) {
        /* CSR order is (time, dense item): the last t rows are the latest, ties to the
         * larger item id, as for leave-one-out (dense order is raw-id order except under
         * NCF id maps written out of order). */
        for (uint32_t u = 0; u < d->n_users; u++) {
            uint64_t t = user_test_count(d->ptr[u + 1] - d->ptr[u], ratio);
            memset(is_test + d->ptr[u + 1] - t, 1, (size_t)t);
            nt += t;
        }
    } else { /* FR_SPLIT_RATIO: the first t positions of a seeded shuffle of the user's rows */
        uint64_t maxdeg = 0;
        for (uint32_t u = 0; u < d->n_users; u++)
            if (d->ptr[u + 1] - d->ptr[u] > maxdeg) maxdeg = d->ptr[u + 1] - d->ptr[u];
        uint32_t *pos = fri_malloc((size_t)(maxdeg ? maxdeg : 1) * sizeof *pos);
        if (!pos) return FR_ERR_NOMEM;
        for (uint32_t u = 0; u < d->n_users; u++) {
            uint64_t n = d->ptr[u + 1] - d->ptr[u], t = user_test_count(n, ratio);
            if (!t) continue;
            for (uint64_t j = 0; j < n; j++) pos[j] = (uint32_t)j;
            fr_rng r;
            fr_rng_init(&r, seed, 0, u, FR_PURPOSE_SPLIT);
            fr_rng_shuffle_u32(&r, pos, (size_t)n);
            for (uint64_t j = 0; j < t; j++) is_test[d->ptr[u] + pos[j]] = 1;
            nt += t;
        }
        fri_free(pos);
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
    const char *name = kind == FR_SPLIT_RATIO ? "ratio" : kind == FR_SPLIT_TEMPORAL ? "temporal" : "temporal-user";
    return fri_fail(FR_ERR_EMPTY, "split %s:%g%s: %llu interactions give %llu to train and %llu to test; expected at "
                    "least one in each (%s)", name, ratio, seed_note, n, n - nt, nt,
                    kind == FR_SPLIT_TEMPORAL ? "another ratio or more data"
                                              : "a user needs two or more interactions to give one to test");
}

fr_err fr_dataset_split(const fr_dataset *d, fr_split_kind kind, double ratio, uint64_t seed, fr_dataset **train,
                fr_dataset **test) {
    if (train) *train = NULL;
    if (test) *test = NULL;
    if (!d || !train || !test) return fri_fail(FR_ERR_INVALID, "split: dataset and both outputs are required");
    if (kind != FR_SPLIT_LOO && kind != FR_SPLIT_TEMPORAL && kind != FR_SPLIT_RATIO && kind != FR_SPLIT_TEMPORAL_USER)
        return fri_fail(FR_ERR_INVALID, "split: unknown kind %d; expected loo (1), temporal (2), ratio (3) or "
                        "temporal-user (4)", (int)kind);
    if (kind != FR_SPLIT_LOO && !(ratio > 0 && ratio < 1))
        return fri_fail(FR_ERR_RANGE, "split: train ratio %g; expected a value strictly between 0 and 1", ratio);
    if ((kind == FR_SPLIT_TEMPORAL || kind == FR_SPLIT_TEMPORAL_USER) && !d->has_time)
        return fri_fail(FR_ERR_INVALID, "split: a temporal split needs timestamps and this dataset has none "
                        "(a ratio split, ratio:R, needs none)");

    if ((kind == FR_SPLIT_TEMPORAL || kind == FR_SPLIT_TEMPORAL_USER) && d->n > 1 && !fr_dataset_has_time_order(d))
        return fri_fail(FR_ERR_INVALID, "split: a temporal split needs timestamps, and all %llu of this dataset's are "
                        "%lld (a ratio split, ratio:R, needs none)", (unsigned long long)d->n, (long long)d->time[0]);

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
    tr.weights = te.weights = d->weights;
    if ((err = fri_dataset_build(&a, &tr, d->users, d->items))) goto done;
    if ((err = fri_dataset_build(&b, &te, d->users, d->items))) goto done;
    if ((err = fri_dataset_set_source(a, d->source, false)) || (err = fri_dataset_set_source(b, d->source, false)))
        goto done;
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
