/* Synthetic ratings at any scale.
 * Item popularity and user activity follow power laws (fr_zipf over popularity ranks;
 * ranks are dealt to ids by a seeded shuffle). Users and items have latent factors; a
 * user picks items by drawing candidates from the popularity distribution and keeping
 * each with a probability that grows with the user's affinity for it, and rates them
 * with clamp(round(3 + 1.2 z), 1, 5), z the standardised bias + u.v + noise.
 * Invariants: each (user, item) pair appears at most once; each user has at least
 * min(5, items) interactions; a user's timestamps are non-decreasing in draw order within
 * [time_start, time_start + time_span). Global draws (item factors, ranks) use streams
 * (seed, 1, *, FR_PURPOSE_GENERATE); everything about user u uses (seed, 0, u, ...), so
 * the output depends on the seed only, not on the threads that fill blocks of users into
 * their precomputed row offsets. Memory: the rows (20 bytes per interaction) plus
 * O(users + items * dim). */
#include <math.h>

#include "data/dataset.h"

#define BIAS_SD 0.5 /* user and item bias standard deviation */

void fr_gen_opts_default(fr_gen_opts *o) {
    memset(o, 0, sizeof *o);
    o->users = 1000;
    o->items = 1000;
    o->interactions = 50000;
    o->item_zipf = 1.0;
    o->user_zipf = 0.8;
    o->dim = 8;
    o->noise = 0.5;
    o->seed = 42;
    o->time_start = 946684800;          /* 2000-01-01T00:00:00Z */
    o->time_span = 3 * 365 * 86400LL;   /* three years */
}

fr_err fr_gen_opts_check(const fr_gen_opts *o) {
    if (!o) return fri_fail(FR_ERR_INVALID, "generate: options are required");
    if (o->users == 0 || o->users > INT32_MAX)
        return fri_fail(FR_ERR_RANGE, "generate: users = %u; expected 1..%d", o->users, INT32_MAX);
    if (o->items == 0 || o->items > INT32_MAX)
        return fri_fail(FR_ERR_RANGE, "generate: items = %u; expected 1..%d", o->items, INT32_MAX);
    if (o->interactions == 0) return fri_fail(FR_ERR_RANGE, "generate: interactions = 0; expected at least 1");
    uint64_t pairs = (uint64_t)o->users * o->items;
    if (o->interactions > pairs)
        return fri_fail(FR_ERR_RANGE,
                        "generate: %llu interactions but only %u users x %u items = %llu distinct pairs",
                        (unsigned long long)o->interactions, o->users, o->items, (unsigned long long)pairs);
    uint64_t floor_n = (uint64_t)o->users * (o->items < 5 ? o->items : 5);
    uint64_t total = o->interactions > floor_n ? o->interactions : floor_n;
    if (total > SIZE_MAX / 32)
        return fri_fail(FR_ERR_RANGE, "generate: %llu interactions do not fit in memory", (unsigned long long)total);
    if (!(o->item_zipf >= 0 && o->item_zipf <= 10))
        return fri_fail(FR_ERR_RANGE, "generate: item_zipf = %g; expected 0..10", o->item_zipf);
    if (!(o->user_zipf >= 0 && o->user_zipf <= 10))
        return fri_fail(FR_ERR_RANGE, "generate: user_zipf = %g; expected 0..10", o->user_zipf);
    if (o->dim == 0 || o->dim > 1024) return fri_fail(FR_ERR_RANGE, "generate: dim = %u; expected 1..1024", o->dim);
    if (!(o->noise >= 0 && o->noise <= 100))
        return fri_fail(FR_ERR_RANGE, "generate: noise = %g; expected 0..100", o->noise);
    if (o->time_span < 1) return fri_fail(FR_ERR_RANGE, "generate: time_span = %lld; expected >= 1 second",
                                          (long long)o->time_span);
    if (o->time_start < 0 || o->time_start > INT64_MAX - o->time_span)
        return fri_fail(FR_ERR_RANGE, "generate: time_start = %lld; expected >= 0 and start + span to fit",
                        (long long)o->time_start);
    return FR_OK;
}

/* Interactions per user: min(5, items) each, the rest of the target shared in proportion
 * to a power law over activity ranks (dealt to users by a seeded shuffle), each capped at
 * the number of items. Sum = max(target, users * min(5, items)). */
static fr_err user_counts(uint32_t *cnt, const fr_gen_opts *o) {
    uint32_t nu = o->users, base = o->items < 5 ? o->items : 5;
    uint32_t *rank = fri_malloc((size_t)nu * sizeof *rank); /* rank[r] = user with activity rank r */
    if (!rank) return FR_ERR_NOMEM;
    for (uint32_t u = 0; u < nu; u++) rank[u] = u;
    fr_rng r;
    fr_rng_init(&r, o->seed, 1, 0, FR_PURPOSE_GENERATE);
    fr_rng_shuffle_u32(&r, rank, nu);
    uint64_t floor_n = (uint64_t)nu * base;
    uint64_t extra = o->interactions > floor_n ? o->interactions - floor_n : 0;
    double wsum = 0;
    for (uint32_t x = 0; x < nu; x++) wsum += pow(x + 1.0, -o->user_zipf);
    uint64_t given = 0;
    for (uint32_t x = 0; x < nu; x++) {
        double share = (double)extra * pow(x + 1.0, -o->user_zipf) / wsum;
        uint64_t c = (uint64_t)share;
        if (c > o->items - base) c = o->items - base;
        if (given + c > extra) c = extra - given;
        cnt[rank[x]] = base + (uint32_t)c;
        given += c;
    }
    /* Rounding and caps leave a remainder: hand it out in rank order where there is room. */
    for (uint32_t x = 0; given < extra; x = (x + 1) % nu) {
        uint32_t u = rank[x];
        uint64_t room = o->items - cnt[u], c = extra - given;
        if (c > room) c = room;
        if (c > 1 + extra / nu) c = 1 + extra / nu;
        cnt[u] += (uint32_t)c;
        given += c;
    }
    fri_free(rank);
    return FR_OK;
}

/* Per-worker scratch (sized for the largest user once). */
typedef struct {
    float *uf;       /* [dim] user factors */
    uint32_t *set;   /* open-addressing set of chosen items, UINT32_MAX = empty */
} scratch;

/* Slot of v in the set: where it is, or the empty slot where it would go. */
static uint32_t set_slot(const uint32_t *set, uint32_t mask, uint32_t v) {
    uint32_t h = (v * 0x9E3779B1u) & mask;
    while (set[h] != UINT32_MAX && set[h] != v) h = (h + 1) & mask;
    return h;
}

static bool set_add(uint32_t *set, uint32_t mask, uint32_t v) {
    uint32_t h = set_slot(set, mask, v);
    if (set[h] == v) return false;
    set[h] = v;
    return true;
}

static double dot_f(const float *a, const float *b, uint32_t n) {
    double s = 0;
    for (uint32_t k = 0; k < n; k++) s += (double)a[k] * b[k];
    return s;
}

/* Generates user u's c interactions into rows[at .. at+c). Works in popularity ranks
 * (item factors and biases are stored by rank, so the popular head stays in cache) and
 * maps ranks to item ids at the end. */
static void gen_user(const fr_gen_opts *o, uint32_t u, uint32_t c, const fr_zipf *pop, const uint32_t *item_of,
                     const float *vf, const float *ib, double scale, scratch *s, fri_rows *rows, size_t at) {
    fr_rng r;
    fr_rng_init(&r, o->seed, 0, u, FR_PURPOSE_GENERATE);
    uint32_t dim = o->dim, ni = o->items;
    uint32_t *rank = rows->item + at; /* ranks first, item ids at the end */
    double fs = pow((double)dim, -0.25); /* u.v then has variance 1 */
    for (uint32_t k = 0; k < dim; k++) s->uf[k] = (float)(fr_rng_normal(&r) * fs);
    double ub = fr_rng_normal(&r) * BIAS_SD;
    uint32_t mask = 15;
    while (mask + 1 < 2 * (uint64_t)c + 2) mask = mask * 2 + 1;
    memset(s->set, 0xff, ((size_t)mask + 1) * sizeof *s->set);

    /* Items: popularity candidates, kept with probability 0.6 + 0.4 softsign(2 u.v). A very
     * active user exhausts the popular head, where candidates repeat: after a budget of
     * tries the rest are drawn uniformly, and if that stalls too (a user asking for most
     * of the catalogue) taken in popularity order from a random start rank. */
    uint32_t got = 0;
    uint64_t tries = 0, limit = 4 * (uint64_t)c + 64;
    while (got < c && tries < limit) {
        tries++;
        uint32_t k = fr_zipf_draw(pop, &r);
        uint32_t h = set_slot(s->set, mask, k);
        if (s->set[h] == k) continue;
        double x = 2 * dot_f(s->uf, vf + (size_t)k * dim, dim);
        double p = 0.6 + 0.4 * x / (1 + fabs(x)); /* a cheap sigmoid onto (0.2, 1) */
        if (fr_rng_float(&r) >= p) continue;
        s->set[h] = k;
        rank[got++] = k;
    }
    for (tries = 0; got < c && tries < limit && 2 * (uint64_t)c <= ni; tries++) {
        uint32_t k = fr_rng_below(&r, ni);
        if (set_add(s->set, mask, k)) rank[got++] = k;
    }
    for (uint32_t k = fr_rng_below(&r, ni); got < c; k = (k + 1) % ni)
        if (set_add(s->set, mask, k)) rank[got++] = k;

    /* Timestamps: one jittered point in each of c equal strata of the span. */
    for (uint32_t k = 0; k < c; k++) {
        uint32_t q = rank[k];
        double z = (ub + ib[q] + dot_f(s->uf, vf + (size_t)q * dim, dim) + o->noise * fr_rng_normal(&r)) * scale;
        double rating = round(3 + 1.2 * z);
        rating = rating < 1 ? 1 : rating > 5 ? 5 : rating;
        int64_t off = (int64_t)((double)o->time_span * ((k + (double)fr_rng_float(&r)) / c));
        if (off >= o->time_span) off = o->time_span - 1;
        rows->user[at + k] = u;
        rows->item[at + k] = item_of[q];
        rows->rating[at + k] = (float)rating;
        rows->time[at + k] = o->time_start + off;
    }
}

/* Users per pool task. */
#define BLOCK 1024

typedef struct {
    const fr_gen_opts *o;
    const uint32_t *cnt;     /* [users] interactions per user */
    const uint64_t *at;      /* [blocks] first row of each block of users */
    const fr_zipf *pop;
    const uint32_t *item_of; /* [items] popularity rank -> item id */
    const float *vf, *ib;    /* [items * dim], [items] by rank */
    double scale;
    scratch *s;              /* [workers] */
    fri_rows *rows;
} gen_ctx;

static void gen_block(void *ctx, size_t b, int worker) {
    gen_ctx *g = ctx;
    uint64_t at = g->at[b];
    uint32_t end = (uint32_t)((b + 1) * BLOCK < g->o->users ? (b + 1) * BLOCK : g->o->users);
    for (uint32_t u = (uint32_t)(b * BLOCK); u < end; u++) {
        gen_user(g->o, u, g->cnt[u], g->pop, g->item_of, g->vf, g->ib, g->scale, &g->s[worker], g->rows, at);
        at += g->cnt[u];
    }
}

fr_err fr_generate(fr_dataset **out, const fr_gen_opts *o) {
    if (out) *out = NULL;
    if (!out) return fri_fail(FR_ERR_INVALID, "generate: output is required");
    fr_err err = fr_gen_opts_check(o);
    if (err) return err;
    uint32_t nu = o->users, ni = o->items, dim = o->dim;
    size_t nblocks = ((size_t)nu + BLOCK - 1) / BLOCK;
    fri_rows rows = {0};
    fr_zipf *pop = NULL;
    fr_idmap *um = NULL, *im = NULL;
    fr_pool *pool = NULL;
    scratch *s = NULL;
    int workers = 0;
    uint32_t *cnt = fri_malloc((size_t)nu * sizeof *cnt);
    uint64_t *at = fri_malloc(nblocks * sizeof *at);
    uint32_t *item_of = fri_malloc((size_t)ni * sizeof *item_of);
    float *vf = fri_malloc((size_t)ni * dim * sizeof *vf);
    float *ib = fri_malloc((size_t)ni * sizeof *ib);
    if (!cnt || !at || !item_of || !vf || !ib) { err = FR_ERR_NOMEM; goto done; }
    if ((err = user_counts(cnt, o))) goto done;
    uint64_t total = 0;
    uint32_t maxc = 0;
    for (uint32_t u = 0; u < nu; u++) {
        if (u % BLOCK == 0) at[u / BLOCK] = total;
        total += cnt[u];
        if (cnt[u] > maxc) maxc = cnt[u];
    }

    /* Items: popularity ranks dealt to ids; factors and biases stored by rank. */
    fr_rng r;
    fr_rng_init(&r, o->seed, 1, 1, FR_PURPOSE_GENERATE);
    for (uint32_t i = 0; i < ni; i++) item_of[i] = i;
    fr_rng_shuffle_u32(&r, item_of, ni);
    fr_rng_init(&r, o->seed, 1, 2, FR_PURPOSE_GENERATE);
    double fs = pow((double)dim, -0.25);
    for (size_t x = 0; x < (size_t)ni * dim; x++) vf[x] = (float)(fr_rng_normal(&r) * fs);
    for (uint32_t i = 0; i < ni; i++) ib[i] = (float)(fr_rng_normal(&r) * BIAS_SD);
    if ((err = fr_zipf_create(&pop, ni, o->item_zipf))) goto done;

    /* Threads only pay off on large outputs; the result is the same either way. */
    if ((err = fr_pool_create(&pool, total >= 1000000 ? 0 : 1))) goto done;
    workers = fr_pool_size(pool);
    s = fri_calloc((size_t)workers, sizeof *s);
    if (!s) { err = FR_ERR_NOMEM; goto done; }
    uint32_t setn = 16;
    while (setn < 2 * (uint64_t)maxc + 2) setn *= 2;
    for (int w = 0; w < workers; w++) {
        s[w].uf = fri_malloc((size_t)dim * sizeof *s[w].uf);
        s[w].set = fri_malloc((size_t)setn * sizeof *s[w].set);
        if (!s[w].uf || !s[w].set) { err = FR_ERR_NOMEM; goto done; }
    }
    rows.user = fri_malloc((size_t)total * sizeof *rows.user);
    rows.item = fri_malloc((size_t)total * sizeof *rows.item);
    rows.rating = fri_malloc((size_t)total * sizeof *rows.rating);
    rows.time = fri_malloc((size_t)total * sizeof *rows.time);
    if (!rows.user || !rows.item || !rows.rating || !rows.time) { err = FR_ERR_NOMEM; goto done; }
    rows.cap = rows.n = (size_t)total;
    rows.has_time = true;
    gen_ctx g = {o, cnt, at, pop, item_of, vf, ib, 1 / sqrt(2 * BIAS_SD * BIAS_SD + 1 + o->noise * o->noise),
                 s, &rows};
    fr_pool_for(pool, nblocks, 1, gen_block, &g);

    /* Free the generator's tables before the build to keep the peak low. */
    fr_zipf_free(pop);
    pop = NULL;
    fri_free(vf);
    vf = NULL;
    if ((err = fri_idmap_identity(&um, nu))) goto done;
    if ((err = fri_idmap_identity(&im, ni))) goto done;
    err = fri_dataset_build(out, &rows, um, im);
done:
    fri_rows_free(&rows);
    fr_idmap_release(um);
    fr_idmap_release(im);
    fr_zipf_free(pop);
    for (int w = 0; s && w < workers; w++) {
        fri_free(s[w].uf);
        fri_free(s[w].set);
    }
    fri_free(s);
    fr_pool_free(pool);
    fri_free(cnt);
    fri_free(at);
    fri_free(item_of);
    fri_free(vf);
    fri_free(ib);
    return err;
}
