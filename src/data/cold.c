/* The cold-start split (fedrec/features.h, fr_dataset_cold_split): items held out
 * entirely, so a model must rank them by their features alone.
 * Invariants: every output is built over train's id maps (a dense id means the same user
 * or item everywhere); every interaction of train and test lands in exactly one of warm
 * train, warm test and cold. */
#include <stdlib.h>

#include "data/dataset.h"
#include "fedrec/features.h"

static fr_err rows_init(fri_rows *r, bool has_time) {
    memset(r, 0, sizeof *r);
    r->has_time = has_time;
    return FR_OK;
}

/* Pushes dense user u's interaction k of d with raw ids. */
static fr_err push(fri_rows *r, const fr_dataset *d, uint32_t u, uint64_t k) {
    return fri_rows_push(r, (uint32_t)fr_idmap_raw(d->users, u), (uint32_t)fr_idmap_raw(d->items, d->item[k]),
                         d->rating[k], d->time ? d->time[k] : 0);
}

static fr_err build(fr_dataset **out, fri_rows *r, const fr_dataset *like) {
    *out = NULL;
    if (r->n == 0) { fri_rows_free(r); return FR_OK; }
    r->implicit = like->implicit;
    r->weights = like->weights;
    fr_err e = fri_dataset_build(out, r, like->users, like->items);
    if (!e) e = fri_dataset_set_source(*out, like->source, false);
    return e;
}

/* The split for the cold marks is_cold[n_items] (want of them). */
static fr_err split_marked(const fr_dataset *train, const fr_dataset *test, const uint8_t *is_cold,
                           fr_dataset **warm_train, fr_dataset **warm_test, fr_dataset **cold, fr_dataset **exclude);

fr_err fr_dataset_cold_split(const fr_dataset *train, const fr_dataset *test, double frac, uint64_t seed,
                             fr_dataset **warm_train, fr_dataset **warm_test, fr_dataset **cold,
                             fr_dataset **exclude, uint32_t *n_cold) {
    *warm_train = *warm_test = *cold = *exclude = NULL;
    *n_cold = 0;
    if (!(frac > 0 && frac < 1))
        return fri_fail(FR_ERR_RANGE, "cold items: fraction %g; expected a value strictly between 0 and 1", frac);
    uint32_t ni = train->n_items;
    uint8_t *is_cold = fri_calloc(ni ? ni : 1, 1);
    uint32_t *cand = fri_malloc((ni ? ni : 1) * sizeof *cand);
    fr_err e = is_cold && cand ? FR_OK : FR_ERR_NOMEM;
    /* the items with training interactions, in id order, then a seeded partial shuffle */
    uint32_t nc = 0;
    if (!e) {
        for (uint64_t k = 0; k < train->n; k++) is_cold[train->item[k]] = 1;
        for (uint32_t i = 0; i < ni; i++)
            if (is_cold[i]) cand[nc++] = i;
        memset(is_cold, 0, ni);
    }
    uint32_t want = (uint32_t)(frac * nc + 0.5);
    if (!e && (want == 0 || want >= nc))
        e = fri_fail(FR_ERR_EMPTY, "cold items: %g of %u trained items is %u: expected at least one cold item and one "
                     "warm one", frac, nc, want);
    if (!e) {
        fr_rng r;
        fr_rng_init(&r, seed, 0, 0xC01D, FR_PURPOSE_SPLIT);
        for (uint32_t k = 0; k < want; k++) {
            uint32_t j = k + fr_rng_below(&r, nc - k);
            uint32_t t = cand[k]; cand[k] = cand[j]; cand[j] = t;
            is_cold[cand[k]] = 1;
        }
        e = split_marked(train, test, is_cold, warm_train, warm_test, cold, exclude);
        if (!e) *n_cold = want;
    }
    fri_free(is_cold);
    fri_free(cand);
    return e;
}

fr_err fr_dataset_cold_split_file(const fr_dataset *train, const fr_dataset *test, const char *path,
                                  fr_dataset **warm_train, fr_dataset **warm_test, fr_dataset **cold,
                                  fr_dataset **exclude, uint32_t *n_cold) {
    *warm_train = *warm_test = *cold = *exclude = NULL;
    *n_cold = 0;
    uint8_t *data = NULL;
    size_t n = 0;
    fr_err e = fri_read_file(path, &data, &n);
    if (e) return e;
    uint32_t ni = train->n_items;
    uint8_t *is_cold = fri_calloc(ni ? ni : 1, 1);
    if (!is_cold) { fri_free(data); return FR_ERR_NOMEM; }
    const char *p = (const char *)data, *end = p + n;
    unsigned long long line = 0;
    uint32_t count = 0;
    while (p < end && !e) {
        const char *nl = memchr(p, '\n', (size_t)(end - p)), *s = p, *le = nl ? nl : end;
        p = nl ? nl + 1 : end;
        line++;
        while (le > s && (le[-1] == '\r' || le[-1] == ' ' || le[-1] == '\t')) le--;
        while (s < le && (*s == ' ' || *s == '\t')) s++;
        if (s == le || *s == '#') continue;
        int64_t raw = 0, row = -1;
        bool ok = le - s <= 18;
        for (const char *q = s; ok && q < le; q++) {
            if (*q < '0' || *q > '9') ok = false;
            else raw = raw * 10 + (*q - '0');
        }
        if (!ok) {
            e = fri_fail(FR_ERR_PARSE, "%s:%llu: item id \"%.*s\"; expected one raw item id per line", path, line,
                         (int)(le - s > 40 ? 40 : le - s), s);
            break;
        }
        row = fr_idmap_find(train->items, raw);
        if (row >= 0 && !is_cold[row]) { is_cold[row] = 1; count++; }
    }
    if (!e && count == 0) e = fri_fail(FR_ERR_EMPTY, "%s: no item of the data is listed", path);
    if (!e) e = split_marked(train, test, is_cold, warm_train, warm_test, cold, exclude);
    if (!e) *n_cold = count;
    fri_free(is_cold);
    fri_free(data);
    return e;
}

static fr_err split_marked(const fr_dataset *train, const fr_dataset *test, const uint8_t *is_cold,
                           fr_dataset **warm_train, fr_dataset **warm_test, fr_dataset **cold, fr_dataset **exclude) {
    uint32_t ni = train->n_items;
    fri_rows wt, we, co, ex;
    rows_init(&wt, train->has_time);
    rows_init(&we, train->has_time);
    rows_init(&co, train->has_time);
    rows_init(&ex, false);
    fr_err e = FR_OK;
    for (uint32_t u = 0; u < train->n_users && !e; u++)
        for (uint64_t k = train->ptr[u]; k < train->ptr[u + 1] && !e; k++)
            e = push(is_cold[train->item[k]] ? &co : &wt, train, u, k);
    for (uint32_t u = 0; test && u < test->n_users && !e; u++)
        for (uint64_t k = test->ptr[u]; k < test->ptr[u + 1] && !e; k++)
            e = push(is_cold[test->item[k]] ? &co : &we, test, u, k);
    if (!e && (wt.n == 0 || co.n == 0))
        e = fri_fail(FR_ERR_EMPTY, "cold items: %s", wt.n ? "the cold items have no interaction" : "nothing is left to train on");
    /* exclusion: every warm item for each user with a cold interaction */
    if (!e) {
        uint8_t *has = fri_calloc(train->n_users ? train->n_users : 1, 1);
        if (!has) e = FR_ERR_NOMEM;
        for (size_t k = 0; !e && k < co.n; k++) {
            int64_t du = fr_idmap_find(train->users, co.user[k]);
            if (du >= 0) has[du] = 1;
        }
        for (uint32_t u = 0; !e && u < train->n_users; u++) {
            if (!has[u]) continue;
            for (uint32_t i = 0; i < ni && !e; i++)
                if (!is_cold[i])
                    e = fri_rows_push(&ex, (uint32_t)fr_idmap_raw(train->users, u), (uint32_t)fr_idmap_raw(train->items, i),
                                      1.0f, 0);
        }
        fri_free(has);
    }
    if (!e) e = build(warm_train, &wt, train);
    if (!e && *warm_train) { /* the cold items do not exist for training: no negative draws one */
        uint32_t na = 0;
        for (uint32_t i = 0; i < ni; i++) na += is_cold[i] != 0;
        if (na && !((*warm_train)->absent = fri_malloc(ni))) e = FR_ERR_NOMEM;
        if (na && !e) {
            for (uint32_t i = 0; i < ni; i++) (*warm_train)->absent[i] = is_cold[i] != 0;
            (*warm_train)->n_absent = na;
        }
    }
    if (!e) e = build(warm_test, &we, test ? test : train);
    if (!e) e = build(cold, &co, train);
    if (!e) e = build(exclude, &ex, train);
    fri_rows_free(&wt);
    fri_rows_free(&we);
    fri_rows_free(&co);
    fri_rows_free(&ex);
    if (e) {
        fr_dataset_free(*warm_train);
        fr_dataset_free(*warm_test);
        fr_dataset_free(*cold);
        fr_dataset_free(*exclude);
        *warm_train = *warm_test = *cold = *exclude = NULL;
    }
    return e;
}

const uint8_t *fr_dataset_absent_items(const fr_dataset *d, uint32_t *n_absent) {
    if (n_absent) *n_absent = d && d->absent ? d->n_absent : 0;
    return d ? d->absent : NULL;
}
