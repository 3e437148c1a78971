/* Evaluation negatives: for each user with a test interaction, `per_user` distinct items
 * the user never touched (in `all`, and also in `test`, so passing the training set as
 * `all` is safe too), uniform without replacement, in draw order. A user with fewer
 * untouched items gets them all (counted in n_short); nothing at all to draw is an error.
 * Each user's draws come from its own stream (seed, 0, user, FR_PURPOSE_EVAL_NEG), so
 * the result does not depend on the order users are processed in. Two strategies, one
 * per user: rejection sampling when the user's items are few compared with the catalogue,
 * else a partial Fisher-Yates shuffle over the enumerated complement. */
#include "data/dataset.h"



/* Distinct items in the union of two sorted arrays (each may repeat ids). */
static uint64_t union_count(const uint32_t *a, size_t na, const uint32_t *b, size_t nb) {
    uint64_t c = 0;
    size_t i = 0, j = 0;
    int64_t last = -1;
    while (i < na || j < nb) {
        uint32_t v = (j >= nb || (i < na && a[i] <= b[j])) ? a[i++] : b[j++];
        if ((int64_t)v != last) { c++; last = v; }
    }
    return c;
}

fr_err fr_negatives_sample(fr_negatives **out, const fr_dataset *all, const fr_dataset *test, uint32_t per_user,
                           uint64_t seed) {
    if (out) *out = NULL;
    if (!out || !all || !test) return fri_fail(FR_ERR_INVALID, "negatives: output, dataset and test set are required");
    if (all->n_items != test->n_items || all->n_users != test->n_users)
        return fri_fail(FR_ERR_INVALID,
                        "negatives: dataset (%u users, %u items) and test set (%u users, %u items) "
                        "do not share one id space",
                        all->n_users, all->n_items, test->n_users, test->n_items);
    uint32_t nu = test->n_users, ni = all->n_items;
    fr_err err = FR_OK;
    uint32_t *pool = NULL, *slot = NULL;
    fr_negatives *ng = fri_calloc(1, sizeof *ng);
    if (!ng) return FR_ERR_NOMEM;
    ng->n_users = nu;
    ng->ptr = fri_calloc((size_t)nu + 1, sizeof *ng->ptr);
    if (!ng->ptr) { err = FR_ERR_NOMEM; goto fail; }

    /* Pass 1: how many negatives each user gets. */
    uint32_t test_users = 0;
    ng->fewest = per_user;
    for (uint32_t u = 0; u < nu; u++) {
        uint64_t k = 0;
        if (test->ptr[u + 1] > test->ptr[u]) {
            const uint32_t *a, *b;
            size_t na = fri_dataset_user_sorted(all, u, &a), nb = fri_dataset_user_sorted(test, u, &b);
            uint64_t comp = ni - union_count(a, na, b, nb);
            k = comp < per_user ? comp : per_user;
            test_users++;
            ng->n_short += k < per_user;
            if (k < ng->fewest) ng->fewest = (uint32_t)k;
        }
        ng->ptr[u + 1] = ng->ptr[u] + k;
    }
    if (per_user && !ng->ptr[nu]) {
        err = test_users ? fri_fail(FR_ERR_EMPTY, "negatives: %u per test user asked, but none of the %u test users has "
                                    "an item it never touched (a catalogue of %u items)", per_user, test_users, ni)
                         : fri_fail(FR_ERR_EMPTY, "negatives: %u per test user asked, but the test set has no "
                                    "interaction", per_user);
        goto fail;
    }
    if (!test_users) ng->fewest = 0;
    ng->items = fri_malloc((size_t)ng->ptr[nu] * sizeof *ng->items);
    /* Scratch: the complement (enumeration) and an open-addressing set (rejection). */
    uint32_t cap = 16;
    while (cap < 2 * (uint64_t)(per_user < ni ? per_user : ni) + 2 && cap < (1u << 31)) cap *= 2;
    pool = fri_malloc((size_t)(ni ? ni : 1) * sizeof *pool);
    slot = fri_malloc((size_t)cap * sizeof *slot);
    if (!ng->items || !pool || !slot) { err = FR_ERR_NOMEM; goto fail; }

    /* Pass 2: draw. */
    for (uint32_t u = 0; u < nu; u++) {
        uint32_t k = (uint32_t)(ng->ptr[u + 1] - ng->ptr[u]);
        if (k == 0) continue;
        uint32_t *dst = ng->items + ng->ptr[u];
        const uint32_t *a, *b;
        size_t na = fri_dataset_user_sorted(all, u, &a), nb = fri_dataset_user_sorted(test, u, &b);
        uint64_t touched = union_count(a, na, b, nb);
        fr_rng r;
        fr_rng_init(&r, seed, 0, u, FR_PURPOSE_EVAL_NEG);
        if ((touched + k) * 2 <= ni) {
            /* Rejection: at least half of all draws are accepted. */
            uint32_t mask = 16;
            while (mask < 2 * k + 2) mask *= 2;
            mask -= 1;
            memset(slot, 0xff, ((size_t)mask + 1) * sizeof *slot);
            uint32_t got = 0;
            while (got < k) {
                uint32_t j = fr_rng_below(&r, ni);
                if (fri_sorted_has(a, na, j) || fri_sorted_has(b, nb, j)) continue;
                uint32_t h = (j * 0x9E3779B1u) & mask;
                while (slot[h] != UINT32_MAX && slot[h] != j) h = (h + 1) & mask;
                if (slot[h] == j) continue;
                slot[h] = j;
                dst[got++] = j;
            }
        } else {
            /* Enumerate the complement, then a partial Fisher-Yates shuffle. */
            uint32_t c = 0;
            size_t i = 0, jb = 0;
            for (uint32_t j = 0; j < ni; j++) {
                while (i < na && a[i] < j) i++;
                while (jb < nb && b[jb] < j) jb++;
                if ((i < na && a[i] == j) || (jb < nb && b[jb] == j)) continue;
                pool[c++] = j;
            }
            for (uint32_t x = 0; x < k; x++) {
                uint32_t y = x + fr_rng_below(&r, c - x);
                uint32_t t = pool[x]; pool[x] = pool[y]; pool[y] = t;
                dst[x] = pool[x];
            }
        }
    }
    fri_free(pool);
    fri_free(slot);
    *out = ng;
    return FR_OK;
fail:
    fri_free(pool);
    fri_free(slot);
    fr_negatives_free(ng);
    return err;
}

void fr_negatives_free(fr_negatives *n) {
    if (!n) return;
    fri_free(n->ptr);
    fri_free(n->items);
    fri_free(n);
}

size_t fr_negatives_user(const fr_negatives *n, uint32_t user, const uint32_t **items) {
    if (!n || user >= n->n_users) {
        if (items) *items = NULL;
        return 0;
    }
    if (items) *items = n->items + n->ptr[user];
    return (size_t)(n->ptr[user + 1] - n->ptr[user]);
}

uint32_t fr_negatives_n_users(const fr_negatives *n) { return n ? n->n_users : 0; }

uint32_t fr_negatives_short(const fr_negatives *n, uint32_t *fewest) {
    if (fewest) *fewest = n ? n->fewest : 0;
    return n ? n->n_short : 0;
}
