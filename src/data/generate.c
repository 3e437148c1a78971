/* Synthetic ratings at any scale.
 * Item popularity and user activity follow power laws (Zipf over popularity ranks, drawn
 * from head and tail alias tables; ranks are dealt to ids by a seeded shuffle). Users and items have latent factors; a
 * user picks items by drawing candidates from the popularity distribution and keeping
 * each with a probability that grows with the user's affinity for it, and rates them
 * with clamp(round(3 + 1.2 z), 1, 5), z the standardised bias + u.v + noise.
 * Invariants: each (user, item) pair appears at most once; each user has at least
 * min(5, items) interactions and at most user_cap (half the catalogue unless the target
 * needs more); a user's timestamps are non-decreasing in draw order within
 * [time_start, time_start + time_span). Global draws (item factors, ranks) use streams
 * (seed, 1, *, FR_PURPOSE_GENERATE); everything about user u uses (seed, 0, u, ...), so
 * the output depends on the seed only, not on the threads that fill blocks of users into
 * their precomputed row offsets. Speed: candidates are drawn in prefetched batches so
 * their cache misses overlap. Memory: the rows (20 bytes per interaction) plus
 * O(users + items * dim). */
#include <math.h>

#include "core/alias.h"
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

/* Most interactions one user may have: half the catalogue (so that every user keeps
 * unrated items, e.g. negatives for leave-one-out), or more when the target needs it
 * (ceil(interactions / users)), and at least min(5, items). */
static uint32_t user_cap(const fr_gen_opts *o) {
    uint64_t cap = ((uint64_t)o->items + 1) / 2, need = (o->interactions + o->users - 1) / o->users;
    if (cap < need) cap = need;
    if (cap < 5) cap = 5;
    return (uint32_t)(cap < o->items ? cap : o->items);
}

/* Interactions per user: min(5, items) each, the rest of the target shared in proportion
 * to a power law over activity ranks (dealt to users by a seeded shuffle), each capped at
 * user_cap. Sum = max(target, users * min(5, items)). */
static fr_err user_counts(uint32_t *cnt, const fr_gen_opts *o) {
    uint32_t nu = o->users, base = o->items < 5 ? o->items : 5, cap = user_cap(o);
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
        if (c > cap - base) c = cap - base;
        if (given + c > extra) c = extra - given;
        cnt[rank[x]] = base + (uint32_t)c;
        given += c;
    }
    /* Rounding and caps leave a remainder: hand it out in rank order where there is room. */
    for (uint32_t x = 0; given < extra; x = (x + 1) % nu) {
        uint32_t u = rank[x];
        uint64_t room = cap - cnt[u], c = extra - given;
        if (c > room) c = room;
        if (c > 1 + extra / nu) c = 1 + extra / nu;
        cnt[u] += (uint32_t)c;
        given += c;
    }
    fri_free(rank);
    return FR_OK;
}

/* ------------------------------------------------------------ popularity draws
 * Zipf over ranks as a mixture of the head (the HEAD most popular ranks) and the tail,
 * each an alias table of 8-byte columns (core/alias.h: probability and alias side by
 * side): three quarters of the draws then stay in a table and item records that live in
 * cache, and a tail draw costs one cache miss for the column instead of two. */

#define HEAD 4096 /* ranks in the head table */
#define BATCH 32  /* candidates drawn and prefetched together */

typedef struct popdraw {
    fri_alias_col *head, *tail; /* [nh], [nt] (tail outcomes are offset by nh) */
    uint32_t nh, nt;
    uint64_t head_below; /* a uniform u32 below this draws from the head (2^32: always) */
} popdraw;

static fr_err popdraw_init(popdraw *pd, uint32_t n, double s) {
    memset(pd, 0, sizeof *pd);
    pd->nh = n < HEAD ? n : HEAD;
    pd->nt = n - pd->nh;
    double *w = fri_malloc((size_t)n * sizeof *w), *scaled = fri_malloc((size_t)n * sizeof *scaled);
    uint32_t *small = fri_malloc((size_t)n * sizeof *small), *large = fri_malloc((size_t)n * sizeof *large);
    pd->head = fri_malloc((size_t)pd->nh * sizeof *pd->head);
    pd->tail = pd->nt ? fri_malloc((size_t)pd->nt * sizeof *pd->tail) : NULL;
    fr_err e = FR_OK;
    if (!w || !scaled || !small || !large || !pd->head || (pd->nt && !pd->tail)) {
        e = FR_ERR_NOMEM;
    } else {
        double wh = 0, wt = 0;
        for (uint32_t i = 0; i < n; i++) {
            w[i] = pow((double)i + 1.0, -s);
            if (i < pd->nh) wh += w[i]; else wt += w[i];
        }
        fri_alias_build(pd->head, w, pd->nh, scaled, small, large);
        if (pd->nt) fri_alias_build(pd->tail, w + pd->nh, pd->nt, scaled, small, large);
        double ph = wh / (wh + wt);
        pd->head_below = pd->nt ? (uint64_t)(ph * 4294967296.0) : (uint64_t)1 << 32;
        if (pd->nt && pd->head_below > UINT32_MAX) pd->head_below = UINT32_MAX;
    }
    fri_free(w);
    fri_free(scaled);
    fri_free(small);
    fri_free(large);
    if (e) {
        fri_free(pd->head);
        fri_free(pd->tail);
        memset(pd, 0, sizeof *pd);
    }
    return e;
}

static void popdraw_free(popdraw *pd) {
    fri_free(pd->head);
    fri_free(pd->tail);
    memset(pd, 0, sizeof *pd);
}

/* ------------------------------------------------------------ users */

/* Per-worker scratch (sized for the largest user once). */
typedef struct {
    float *uf;       /* [dim] user factors */
    uint32_t *set;   /* open-addressing set of chosen items, UINT32_MAX = empty */
    float *uv;       /* [largest user] u.v of each pick, or NAN when not computed yet */
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

static inline float dot_f(const float *a, const float *b, uint32_t n) {
    float s = 0;
    for (uint32_t k = 0; k < n; k++) s += a[k] * b[k];
    return s;
}

/* A standard normal by Marsaglia's polar method (one log and no trigonometry per pair);
 * *spare holds the pair's second value, NAN when there is none. */
static inline double polar_normal(fr_rng *r, double *spare) {
    if (!isnan(*spare)) {
        double v = *spare;
        *spare = NAN;
        return v;
    }
    double a, b, q;
    do {
        a = (double)fr_rng_u32(r) * 0x1.0p-31 - 1.0;
        b = (double)fr_rng_u32(r) * 0x1.0p-31 - 1.0;
        q = a * a + b * b;
    } while (q >= 1.0 || q == 0.0);
    double f = sqrt(-2.0 * log(q) / q);
    *spare = b * f;
    return a * f;
}

/* Item records by popularity rank, stride dim + 2 floats: factors, bias, item id (bits). */
#define REC(vf, k, stride) ((vf) + (size_t)(k) * (stride))

/* Generates user u's c interactions into rows[at .. at+c). Works in popularity ranks
 * (item records are stored by rank, so the popular head stays in cache) and maps ranks
 * to item ids at the end. */
static void gen_user(const fr_gen_opts *o, uint32_t u, uint32_t c, const popdraw *pop, const float *vf,
                     double scale, scratch *s, fri_rows *rows, size_t at) {
    fr_rng r;
    fr_rng_init(&r, o->seed, 0, u, FR_PURPOSE_GENERATE);
    uint32_t dim = o->dim, ni = o->items, stride = dim + 2;
    uint32_t *rank = rows->item + at; /* ranks first, item ids at the end */
    double fs = pow((double)dim, -0.25); /* u.v then has variance 1 */
    double spare = NAN;
    for (uint32_t k = 0; k < dim; k++) s->uf[k] = (float)(polar_normal(&r, &spare) * fs);
    double ub = polar_normal(&r, &spare) * BIAS_SD;
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
        /* A batch of candidates in three passes, so that the cache misses of a batch (alias
         * columns, then item records) overlap: draw and prefetch the columns, resolve the
         * ranks and prefetch the records, then judge the candidates in order. */
        uint32_t nb = BATCH, want = 2 * (c - got) + 2;
        if (nb > want) nb = want;
        if (nb > limit - tries) nb = (uint32_t)(limit - tries);
        const fri_alias_col *col[BATCH];
        uint32_t base[BATCH], cand[BATCH];
        double coin[BATCH];
        for (uint32_t b = 0; b < nb; b++) {
            /* One u32 picks head or tail; its position within the chosen side is a fresh
             * uniform for the alias coin, and its position within the coin's outcome a
             * fresh uniform again for keeping the candidate. */
            uint32_t x = fr_rng_u32(&r);
            if (x < pop->head_below) {
                col[b] = &pop->head[fr_rng_below(&r, pop->nh)];
                base[b] = 0;
                coin[b] = (double)x / (double)pop->head_below;
            } else {
                col[b] = &pop->tail[fr_rng_below(&r, pop->nt)];
                base[b] = pop->nh;
                coin[b] = (double)(x - pop->head_below) / (4294967296.0 - (double)pop->head_below);
            }
            __builtin_prefetch(col[b]);
        }
        for (uint32_t b = 0; b < nb; b++) {
            const fri_alias_col *a = col[b];
            const fri_alias_col *t0 = base[b] ? pop->tail : pop->head;
            double q = coin[b], p = a->p;
            uint32_t k = base[b] + (q < p ? (uint32_t)(a - t0) : a->alias);
            coin[b] = q < p ? q / p : (q - p) / (1 - p); /* uniform again: the acceptance draw */
            cand[b] = k;
            const float *rec = REC(vf, k, stride);
            __builtin_prefetch(rec);
            __builtin_prefetch(rec + stride - 1);
        }
        for (uint32_t b = 0; b < nb && got < c; b++) {
            tries++;
            uint32_t k = cand[b];
            uint32_t h = set_slot(s->set, mask, k);
            if (s->set[h] == k) continue;
            float uv = dot_f(s->uf, REC(vf, k, stride), dim);
            float x = 2 * uv;
            float p = 0.6f + 0.4f * x / (1 + fabsf(x)); /* a cheap sigmoid onto (0.2, 1) */
            if (coin[b] >= p) continue;
            s->set[h] = k;
            s->uv[got] = uv;
            rank[got++] = k;
        }
    }
    for (tries = 0; got < c && tries < limit && 2 * (uint64_t)c <= ni; tries++) {
        uint32_t k = fr_rng_below(&r, ni);
        if (set_add(s->set, mask, k)) { s->uv[got] = NAN; rank[got++] = k; }
    }
    for (uint32_t k = fr_rng_below(&r, ni); got < c; k = (k + 1) % ni)
        if (set_add(s->set, mask, k)) { s->uv[got] = NAN; rank[got++] = k; }

    /* Timestamps: one jittered point in each of c equal strata of the span. */
    for (uint32_t k = 0; k < c; k++) {
        const float *rec = REC(vf, rank[k], stride);
        float uv = isnan(s->uv[k]) ? dot_f(s->uf, rec, dim) : s->uv[k];
        double z = (ub + rec[dim] + uv + o->noise * polar_normal(&r, &spare)) * scale;
        double rating = round(3 + 1.2 * z);
        rating = rating < 1 ? 1 : rating > 5 ? 5 : rating;
        int64_t off = (int64_t)((double)o->time_span * ((k + (double)fr_rng_float(&r)) / c));
        if (off >= o->time_span) off = o->time_span - 1;
        uint32_t id;
        memcpy(&id, rec + dim + 1, sizeof id);
        rows->user[at + k] = u;
        rows->item[at + k] = id;
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
    const popdraw *pop;
    const float *vf;         /* [items * (dim + 2)] item records by rank */
    double scale;
    scratch *s;              /* [workers] */
    fri_rows *rows;
} gen_ctx;

static void gen_block(void *ctx, size_t b, int worker) {
    gen_ctx *g = ctx;
    uint64_t at = g->at[b];
    uint32_t end = (uint32_t)((b + 1) * BLOCK < g->o->users ? (b + 1) * BLOCK : g->o->users);
    for (uint32_t u = (uint32_t)(b * BLOCK); u < end; u++) {
        if (g->cnt[u] == 0) continue; /* a user outside the share (every user has at least one) */
        gen_user(g->o, u, g->cnt[u], g->pop, g->vf, g->scale, &g->s[worker], g->rows, at);
        at += g->cnt[u];
    }
}

static fr_err generate(fr_dataset **out, const fr_gen_opts *o, uint32_t share_at, uint32_t share_n);

fr_err fr_dataset_generate(fr_dataset **out, const fr_gen_opts *o) { return generate(out, o, 0, 1); }

fr_err fr_dataset_generate_share(fr_dataset **out, const fr_gen_opts *o, uint32_t at, uint32_t n) {
    if (out) *out = NULL;
    if (n == 0 || at >= n) return fri_fail(FR_ERR_INVALID, "generate: share %u of %u; expected 0..n-1 of n >= 1", at, n);
    return generate(out, o, at, n);
}

/* The users u % share_n == share_at keep their interactions (share 0 of 1: all); each
 * user's are made from its own stream whatever the share, so a share is the whole set's
 * users selected (the others empty, the ids the same). */
static fr_err generate(fr_dataset **out, const fr_gen_opts *o, uint32_t share_at, uint32_t share_n) {
    if (out) *out = NULL;
    if (!out) return fri_fail(FR_ERR_INVALID, "generate: output is required");
    fr_err err = fr_gen_opts_check(o);
    if (err) return err;
    uint32_t nu = o->users, ni = o->items, dim = o->dim, stride = dim + 2;
    size_t nblocks = ((size_t)nu + BLOCK - 1) / BLOCK;
    fri_rows rows = {0};
    popdraw pop = {0};
    fr_idmap *um = NULL, *im = NULL;
    fr_pool *pool = NULL;
    scratch *s = NULL;
    int workers = 0;
    uint32_t *cnt = fri_malloc((size_t)nu * sizeof *cnt);
    uint64_t *at = fri_malloc(nblocks * sizeof *at);
    uint32_t *item_of = fri_malloc((size_t)ni * sizeof *item_of);
    float *vf = fri_malloc((size_t)ni * stride * sizeof *vf);
    if (!cnt || !at || !item_of || !vf) { err = FR_ERR_NOMEM; goto done; }
    if ((err = user_counts(cnt, o))) goto done;
    if (share_n > 1)
        for (uint32_t u = 0; u < nu; u++)
            if (u % share_n != share_at) cnt[u] = 0;
    uint64_t total = 0;
    uint32_t maxc = 0;
    for (uint32_t u = 0; u < nu; u++) {
        if (u % BLOCK == 0) at[u / BLOCK] = total;
        total += cnt[u];
        if (cnt[u] > maxc) maxc = cnt[u];
    }

    /* Items: popularity ranks dealt to ids; records (factors, bias, id) stored by rank. */
    fr_rng r;
    fr_rng_init(&r, o->seed, 1, 1, FR_PURPOSE_GENERATE);
    for (uint32_t i = 0; i < ni; i++) item_of[i] = i;
    fr_rng_shuffle_u32(&r, item_of, ni);
    fr_rng_init(&r, o->seed, 1, 2, FR_PURPOSE_GENERATE);
    double fs = pow((double)dim, -0.25);
    for (uint32_t i = 0; i < ni; i++)
        for (uint32_t k = 0; k < dim; k++) REC(vf, i, stride)[k] = (float)(fr_rng_normal(&r) * fs);
    for (uint32_t i = 0; i < ni; i++) {
        REC(vf, i, stride)[dim] = (float)(fr_rng_normal(&r) * BIAS_SD);
        memcpy(REC(vf, i, stride) + dim + 1, &item_of[i], sizeof item_of[i]);
    }
    if ((err = popdraw_init(&pop, ni, o->item_zipf))) goto done;

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
        s[w].uv = fri_malloc((size_t)maxc * sizeof *s[w].uv);
        if (!s[w].uf || !s[w].set || !s[w].uv) { err = FR_ERR_NOMEM; goto done; }
    }
    rows.user = fri_malloc((size_t)total * sizeof *rows.user);
    rows.item = fri_malloc((size_t)total * sizeof *rows.item);
    rows.rating = fri_malloc((size_t)total * sizeof *rows.rating);
    rows.time = fri_malloc((size_t)total * sizeof *rows.time);
    if (!rows.user || !rows.item || !rows.rating || !rows.time) { err = FR_ERR_NOMEM; goto done; }
    rows.cap = rows.n = (size_t)total;
    rows.has_time = true;
    gen_ctx g = {o, cnt, at, &pop, vf, 1 / sqrt(2 * BIAS_SD * BIAS_SD + 1 + o->noise * o->noise), s, &rows};
    fr_pool_for(pool, nblocks, 1, gen_block, &g);

    /* Free the generator's tables before the build to keep the peak low. */
    popdraw_free(&pop);
    fri_free(vf);
    vf = NULL;
    if ((err = fri_idmap_identity(&um, nu))) goto done;
    if ((err = fri_idmap_identity(&im, ni))) goto done;
    err = fri_dataset_build(out, &rows, um, im);
done:
    fri_rows_free(&rows);
    fr_idmap_release(um);
    fr_idmap_release(im);
    popdraw_free(&pop);
    for (int w = 0; s && w < workers; w++) {
        fri_free(s[w].uf);
        fri_free(s[w].set);
        fri_free(s[w].uv);
    }
    fri_free(s);
    fr_pool_free(pool);
    fri_free(cnt);
    fri_free(at);
    fri_free(item_of);
    fri_free(vf);
    return err;
}
