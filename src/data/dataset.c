/* Datasets: id maps and the per-user CSR build.
 * The build permutes the reader's arrays in place (a stable counting sort by user whose
 * destinations live in the user array) so peak memory stays near the size of the rows
 * themselves, then orders each user's interactions by (time, item, input order), keeps
 * one interaction per (user, item) (the latest; ties: the last in input order) and keeps a
 * second, item-sorted copy of the ids for O(log n) membership tests. */
#define _XOPEN_SOURCE 700 /* realpath */
#include <math.h>
#include <stdlib.h>

#include "data/dataset.h"

/* ------------------------------------------------------------ rows */

fr_err fri_rows_push(fri_rows *r, uint32_t user, uint32_t item, float rating, int64_t time) {
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap + r->cap / 2 : 4096;
        uint32_t *u = fri_realloc(r->user, cap * sizeof *u);
        if (!u) return FR_ERR_NOMEM;
        r->user = u;
        uint32_t *i = fri_realloc(r->item, cap * sizeof *i);
        if (!i) return FR_ERR_NOMEM;
        r->item = i;
        float *ra = fri_realloc(r->rating, cap * sizeof *ra);
        if (!ra) return FR_ERR_NOMEM;
        r->rating = ra;
        int64_t *t = fri_realloc(r->time, cap * sizeof *t);
        if (!t) return FR_ERR_NOMEM;
        r->time = t;
        r->cap = cap;
    }
    r->user[r->n] = user;
    r->item[r->n] = item;
    r->rating[r->n] = rating;
    r->time[r->n] = time;
    r->n++;
    return FR_OK;
}

void fri_rows_free(fri_rows *r) {
    fri_free(r->user);
    fri_free(r->item);
    fri_free(r->rating);
    fri_free(r->time);
    memset(r, 0, sizeof *r);
}

/* ------------------------------------------------------------ id maps */

static inline uint32_t hash_id(int64_t k, uint32_t mask) {
    return (uint32_t)(((uint64_t)k * 0x9E3779B97F4A7C15ull) >> 32) & mask;
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static fr_idmap *idmap_alloc(uint32_t n) {
    fr_idmap *m = fri_calloc(1, sizeof *m);
    if (!m) return NULL;
    atomic_init(&m->refs, 1);
    m->n = n;
    m->raw = fri_malloc((size_t)(n ? n : 1) * sizeof *m->raw);
    if (!m->raw) { fri_free(m); return NULL; }
    return m;
}

fr_err fri_idmap_identity(fr_idmap **out, uint32_t n) {
    *out = idmap_alloc(n);
    if (!*out) return FR_ERR_NOMEM;
    for (uint32_t i = 0; i < n; i++) (*out)->raw[i] = i;
    return FR_OK;
}

/* Ids are "dense-ish" when a direct table of max+1 entries costs little more than
 * the hash table would: then distinct ids come from a mark pass and lookups are one
 * array read. Otherwise an open-addressing hash set collects them. */
static fr_err idmap_build_direct(fr_idmap **out, const uint32_t *const *lists, const size_t *n, int k,
                                 uint32_t span) {
    uint32_t *direct = fri_malloc((size_t)span * sizeof *direct);
    if (!direct) return FR_ERR_NOMEM;
    memset(direct, 0xff, (size_t)span * sizeof *direct);
    for (int j = 0; j < k; j++)
        for (size_t x = 0; x < n[j]; x++) direct[lists[j][x]] = 0;
    uint32_t count = 0;
    for (uint32_t v = 0; v < span; v++)
        if (direct[v] == 0) direct[v] = count++;
    fr_idmap *m = idmap_alloc(count);
    if (!m) { fri_free(direct); return FR_ERR_NOMEM; }
    for (uint32_t v = 0; v < span; v++)
        if (direct[v] != UINT32_MAX) m->raw[direct[v]] = v;
    m->direct = direct;
    m->span = span;
    *out = m;
    return FR_OK;
}

fr_err fri_idmap_build(fr_idmap **out, const uint32_t *const *lists, const size_t *n, int k) {
    *out = NULL;
    size_t total = 0;
    uint32_t maxv = 0;
    for (int j = 0; j < k; j++) {
        total += n[j];
        for (size_t x = 0; x < n[j]; x++)
            if (lists[j][x] > maxv) maxv = lists[j][x];
    }
    if ((uint64_t)maxv + 1 <= 4 * (uint64_t)total + (1u << 16))
        return idmap_build_direct(out, lists, n, k, maxv + 1);
    /* Distinct values through a growing open-addressing set. */
    uint32_t cap = 1024, count = 0;
    int64_t *set = fri_malloc(cap * sizeof *set);
    if (!set) return FR_ERR_NOMEM;
    memset(set, 0xff, cap * sizeof *set);
    for (int j = 0; j < k; j++) {
        for (size_t x = 0; x < n[j]; x++) {
            int64_t v = lists[j][x];
            uint32_t h = hash_id(v, cap - 1);
            while (set[h] != -1 && set[h] != v) h = (h + 1) & (cap - 1);
            if (set[h] == v) continue;
            set[h] = v;
            if (++count * 2 > cap) {
                if (cap >= (1u << 31)) { fri_free(set); return fri_fail(FR_ERR_RANGE, "more than 2^30 distinct ids"); }
                uint32_t ncap = cap * 2;
                int64_t *ns = fri_malloc(ncap * sizeof *ns);
                if (!ns) { fri_free(set); return FR_ERR_NOMEM; }
                memset(ns, 0xff, ncap * sizeof *ns);
                for (uint32_t y = 0; y < cap; y++) {
                    if (set[y] == -1) continue;
                    uint32_t g = hash_id(set[y], ncap - 1);
                    while (ns[g] != -1) g = (g + 1) & (ncap - 1);
                    ns[g] = set[y];
                }
                fri_free(set);
                set = ns;
                cap = ncap;
            }
        }
    }
    fr_idmap *m = idmap_alloc(count);
    uint32_t *vals = fri_malloc(cap * sizeof *vals);
    if (!m || !vals) { fri_free(set); fri_free(vals); fr_idmap_release(m); return FR_ERR_NOMEM; }
    uint32_t c = 0;
    for (uint32_t y = 0; y < cap; y++)
        if (set[y] != -1) m->raw[c++] = set[y];
    qsort(m->raw, count, sizeof *m->raw, cmp_i64);
    for (uint32_t d = 0; d < count; d++) {
        uint32_t h = hash_id(m->raw[d], cap - 1);
        while (set[h] != m->raw[d]) h = (h + 1) & (cap - 1);
        vals[h] = d;
    }
    m->cap = cap;
    m->keys = set;
    m->vals = vals;
    *out = m;
    return FR_OK;
}

fr_err fri_idmap_from_raw(fr_idmap **out, int64_t *raw, uint32_t n, uint32_t *dup) {
    *out = NULL;
    fr_idmap *m = fri_calloc(1, sizeof *m);
    if (!m) { fri_free(raw); return FR_ERR_NOMEM; }
    atomic_init(&m->refs, 1);
    m->n = n;
    m->raw = raw;
    int64_t maxv = -1;
    for (uint32_t d = 0; d < n; d++)
        if (raw[d] > maxv) maxv = raw[d];
    if ((uint64_t)(maxv + 1) <= 4 * (uint64_t)n + (1u << 16)) { /* dense-ish: a direct table */
        m->span = (uint32_t)(maxv + 1);
        m->direct = fri_malloc((size_t)(m->span ? m->span : 1) * sizeof *m->direct);
        if (!m->direct) { fr_idmap_release(m); return FR_ERR_NOMEM; }
        memset(m->direct, 0xff, (size_t)m->span * sizeof *m->direct);
        for (uint32_t d = 0; d < n; d++) {
            if (m->direct[raw[d]] != UINT32_MAX) { *dup = d; fr_idmap_release(m); return FR_ERR_PARSE; }
            m->direct[raw[d]] = d;
        }
    } else { /* open addressing, at most half full */
        uint32_t cap = 1024;
        while (cap < 2 * (uint64_t)n) cap *= 2;
        m->cap = cap;
        m->keys = fri_malloc(cap * sizeof *m->keys);
        m->vals = fri_malloc(cap * sizeof *m->vals);
        if (!m->keys || !m->vals) { fr_idmap_release(m); return FR_ERR_NOMEM; }
        memset(m->keys, 0xff, cap * sizeof *m->keys);
        for (uint32_t d = 0; d < n; d++) {
            uint32_t h = hash_id(raw[d], cap - 1);
            while (m->keys[h] != -1 && m->keys[h] != raw[d]) h = (h + 1) & (cap - 1);
            if (m->keys[h] == raw[d]) { *dup = d; fr_idmap_release(m); return FR_ERR_PARSE; }
            m->keys[h] = raw[d];
            m->vals[h] = d;
        }
    }
    *out = m;
    return FR_OK;
}

uint32_t fr_idmap_size(const fr_idmap *m) { return m ? m->n : 0; }

int64_t fr_idmap_raw(const fr_idmap *m, uint32_t dense) { return dense < m->n ? m->raw[dense] : -1; }

int64_t fr_idmap_find(const fr_idmap *m, int64_t raw) {
    if (m->span) return raw >= 0 && raw < m->span && m->direct[raw] != UINT32_MAX ? (int64_t)m->direct[raw] : -1;
    if (m->cap == 0) return raw >= 0 && raw < m->n ? raw : -1;
    uint32_t h = hash_id(raw, m->cap - 1);
    while (m->keys[h] != -1) {
        if (m->keys[h] == raw) return m->vals[h];
        h = (h + 1) & (m->cap - 1);
    }
    return -1;
}

fr_idmap *fr_idmap_retain(fr_idmap *m) {
    if (m) atomic_fetch_add(&m->refs, 1);
    return m;
}

void fr_idmap_release(fr_idmap *m) {
    if (!m || atomic_fetch_sub(&m->refs, 1) != 1) return;
    fri_free(m->raw);
    fri_free(m->keys);
    fri_free(m->vals);
    fri_free(m->direct);
    if (m->str)
        for (uint32_t d = 0; d < m->n; d++) fri_free(m->str[d]);
    fri_free(m->str);
    fri_free(m->sslot);
    fri_free(m);
}

/* ------------------------------------------------------------ build */

/* A row while its user is sorted; pos is its input position within the user (the
 * permutation by user is stable), the tie-break that makes "the last repeat in the input"
 * well defined. */
typedef struct { int64_t t; uint32_t item; float r; uint32_t pos; } row_key;

/* Per-user sorts with inline comparisons (qsort's callback was most of the build):
 * insertion sort for short runs, quicksort with median-of-three above, recursing into
 * the smaller side so the stack stays O(log n). One template, three element types. */
static inline int row_less(const row_key *x, const row_key *y) {
    if (x->t != y->t) return x->t < y->t;
    if (x->item != y->item) return x->item < y->item;
    return x->pos < y->pos;
}
#define ROW_LESS(x, y) row_less(&(x), &(y))
#define U32_LESS(x, y) ((x) < (y))

#define DEFINE_SORT(name, T, LESS)                                                       \
    static void name(T *a, size_t n) {                                                   \
        while (n > 16) {                                                                 \
            size_t mid = n / 2;                                                          \
            T t;                                                                         \
            if (LESS(a[mid], a[0])) { t = a[mid]; a[mid] = a[0]; a[0] = t; }             \
            if (LESS(a[n - 1], a[0])) { t = a[n - 1]; a[n - 1] = a[0]; a[0] = t; }       \
            if (LESS(a[n - 1], a[mid])) { t = a[n - 1]; a[n - 1] = a[mid]; a[mid] = t; } \
            T p = a[mid];                                                                \
            size_t i = 0, j = n - 1;                                                     \
            for (;;) {                                                                   \
                while (LESS(a[i], p)) i++;                                               \
                while (LESS(p, a[j])) j--;                                               \
                if (i >= j) break;                                                       \
                t = a[i]; a[i] = a[j]; a[j] = t;                                         \
                i++;                                                                     \
                j--;                                                                     \
            }                                                                            \
            /* [0, j] <= p <= [j+1, n) */                                                \
            if (j + 1 < n - j - 1) { name(a, j + 1); a += j + 1; n -= j + 1; }           \
            else { name(a + j + 1, n - j - 1); n = j + 1; }                              \
        }                                                                                \
        for (size_t i = 1; i < n; i++) {                                                 \
            T v = a[i];                                                                  \
            size_t j = i;                                                                \
            while (j > 0 && LESS(v, a[j - 1])) { a[j] = a[j - 1]; j--; }                 \
            a[j] = v;                                                                    \
        }                                                                                \
    }

DEFINE_SORT(sort_rows, row_key, ROW_LESS)

/* The common case: a user's time span fits 32 bits, so (time - t0, item) packs into one
 * 64-bit key and the sort compares integers (ties, i.e. repeated pairs at one time, by
 * input position, which sits in the struct's padding). */
typedef struct { uint64_t key; float r; uint32_t pos; } packed_key;
#define PACKED_LESS(x, y) ((x).key < (y).key || ((x).key == (y).key && (x).pos < (y).pos))
DEFINE_SORT(sort_packed, packed_key, PACKED_LESS)
DEFINE_SORT(sort_u32, uint32_t, U32_LESS)

/* LSD radix sort of a[0..n) on `passes` 8-bit digits (values below 2^(8 passes)), with
 * scratch tmp[n]; the result ends in a. */
static void radix_u32(uint32_t *a, uint32_t *tmp, size_t n, int passes) {
    uint32_t *src = a, *dst = tmp;
    for (int p = 0; p < passes; p++) {
        unsigned sh = 8u * (unsigned)p;
        size_t cnt[256] = {0};
        for (size_t k = 0; k < n; k++) cnt[(src[k] >> sh) & 255]++;
        size_t at = 0;
        for (int b = 0; b < 256; b++) { size_t c = cnt[b]; cnt[b] = at; at += c; }
        for (size_t k = 0; k < n; k++) dst[cnt[(src[k] >> sh) & 255]++] = src[k];
        uint32_t *t = src; src = dst; dst = t;
    }
    if (src != a) memcpy(a, src, n * sizeof *a);
}

typedef struct sort_ctx {
    const uint64_t *ptr; /* CSR offsets */
    int item_passes;     /* 8-bit digits of the largest item id */
    fri_rows *rows;      /* bucketed by user, each user's rows in input order */
    size_t stride;       /* scratch rows per worker (max degree) */
    row_key *tmp;        /* [workers * stride] */
    uint64_t *kept;      /* [users] rows each user keeps after dropping repeated pairs */
} sort_ctx;

/* Drops the repeats of a user's (time, item)-ordered rows [lo, lo + m): of each item's
 * rows the last one (the latest; at one time the last in input order) stays. The items
 * that repeat are few: listed ascending from the item-sorted copy s, each row is looked up
 * among them only (a 1024-bit hash filter, then a binary search over the short list),
 * walking the rows latest first.
 * scratch holds at least 5 m bytes. Compacts the rows and s in place; returns the rows
 * kept. Only users with a repeat come here. */
static size_t drop_repeats(fri_rows *rows, size_t lo, size_t m, uint32_t *s, void *scratch) {
    uint32_t *rep = scratch; /* [nr] items seen more than once, ascending */
    size_t nr = 0, first_rep = 0;
    for (size_t x = 1; x < m; x++)
        if (s[x] == s[x - 1] && (nr == 0 || rep[nr - 1] != s[x])) {
            if (!nr) first_rep = x;
            rep[nr++] = s[x];
        }
    uint8_t *seen = (uint8_t *)(rep + nr);
    memset(seen, 0, nr);
    uint64_t filter[16] = {0}; /* 1024 bits of a hash of the repeated items: most rows miss */
#define REP_BIT(it) (((it) * 0x9E3779B1u) >> 22)
    for (size_t j = 0; j < nr; j++) filter[REP_BIT(rep[j]) >> 6] |= 1ull << (REP_BIT(rep[j]) & 63);
    size_t keep_to = m; /* rows before the earliest drop stay where they are */
    for (size_t x = m; x-- > 0;) {
        uint32_t it = rows->item[lo + x];
        if (!(filter[REP_BIT(it) >> 6] >> (REP_BIT(it) & 63) & 1)) continue;
        size_t a = 0, b = nr;
        while (a < b) {
            size_t mid = a + (b - a) / 2;
            if (rep[mid] < it) a = mid + 1; else b = mid;
        }
        if (a == nr || rep[a] != it) continue;
        if (seen[a]) { rows->item[lo + x] = UINT32_MAX; keep_to = x; } /* dense ids are < 2^31: a free mark */
        seen[a] = 1;
    }
#undef REP_BIT
    size_t k = keep_to;
    for (size_t x = keep_to; x < m; x++) {
        if (rows->item[lo + x] == UINT32_MAX) continue;
        rows->item[lo + k] = rows->item[lo + x];
        rows->rating[lo + k] = rows->rating[lo + x];
        rows->time[lo + k] = rows->time[lo + x];
        k++;
    }
    size_t j = first_rep; /* s[0, first_rep) holds no repeat */
    for (size_t x = first_rep; x < m; x++)
        if (s[x] != s[j - 1]) s[j++] = s[x];
    return k;
}

/* Orders one user's rows by (time, item, input position), writes the item-sorted copy
 * into the user array (its values are no longer needed) and drops repeated pairs. */
static void sort_user(void *ctxp, size_t u, int worker) {
    sort_ctx *c = ctxp;
    fri_rows *rows = c->rows;
    row_key *tmp = c->tmp + (size_t)worker * c->stride;
    size_t lo = c->ptr[u], m = c->ptr[u + 1] - lo;
    int64_t t0 = m ? rows->time[lo] : 0, t1 = t0;
    for (size_t x = 1; x < m; x++) {
        int64_t t = rows->time[lo + x];
        if (t < t0) t0 = t;
        if (t > t1) t1 = t;
    }
    if ((uint64_t)t1 - (uint64_t)t0 <= UINT32_MAX) {
        packed_key *pk = (packed_key *)tmp; /* 16 bytes a row fit in row_key's 24 */
        int in_order = 1;
        for (size_t x = 0; x < m; x++) {
            pk[x].key = ((uint64_t)(rows->time[lo + x] - t0) << 32) | rows->item[lo + x];
            pk[x].r = rows->rating[lo + x];
            pk[x].pos = (uint32_t)x;
            if (x && PACKED_LESS(pk[x], pk[x - 1])) in_order = 0;
        }
        if (!in_order) sort_packed(pk, m);
        for (size_t x = 0; x < m; x++) {
            rows->time[lo + x] = t0 + (int64_t)(pk[x].key >> 32);
            rows->item[lo + x] = (uint32_t)pk[x].key;
            rows->rating[lo + x] = pk[x].r;
            rows->user[lo + x] = (uint32_t)pk[x].key;
        }
    } else {
        for (size_t x = 0; x < m; x++) {
            tmp[x].t = rows->time[lo + x];
            tmp[x].item = rows->item[lo + x];
            tmp[x].r = rows->rating[lo + x];
            tmp[x].pos = (uint32_t)x; /* a user of 2^32 rows or more: ties wrap (not reached) */
        }
        size_t sorted = 1;
        while (sorted < m && !row_less(&tmp[sorted], &tmp[sorted - 1])) sorted++;
        if (sorted < m) sort_rows(tmp, m);
        for (size_t x = 0; x < m; x++) {
            rows->time[lo + x] = tmp[x].t;
            rows->item[lo + x] = tmp[x].item;
            rows->rating[lo + x] = tmp[x].r;
            rows->user[lo + x] = tmp[x].item;
        }
    }
    /* tmp is copied out: its bytes (24 a row) serve as radix and repeat-list scratch. */
    uint32_t *s = rows->user + lo;
    if (m >= 64 * (size_t)c->item_passes && c->item_passes <= 3)
        radix_u32(s, (uint32_t *)tmp, m, c->item_passes);
    else
        sort_u32(s, m);
    bool repeats = false;
    for (size_t x = 1; x < m; x++) repeats |= s[x] == s[x - 1];
    c->kept[u] = repeats ? drop_repeats(rows, lo, m, s, tmp) : m;
}

/* Destinations above this many rows take a separate 64-bit array (tests lower it). */
static size_t wide_from = (size_t)UINT32_MAX + 1;

void fri_dataset_set_wide(size_t rows) { wide_from = rows ? rows : (size_t)UINT32_MAX + 1; }

/* Moves row k to dest[k] for every k, following each cycle of the permutation with swaps
 * (dest is permuted along, so each swap puts one row in its place for good). */
#define APPLY_PERMUTATION(rows, dest, n)                                                  \
    for (size_t k = 0; k < (n); k++) {                                                   \
        while ((size_t)(dest)[k] != k) {                                                 \
            size_t j = (size_t)(dest)[k];                                                \
            uint32_t ti = (rows)->item[j]; (rows)->item[j] = (rows)->item[k]; (rows)->item[k] = ti; \
            float tr = (rows)->rating[j]; (rows)->rating[j] = (rows)->rating[k]; (rows)->rating[k] = tr; \
            int64_t tt = (rows)->time[j]; (rows)->time[j] = (rows)->time[k]; (rows)->time[k] = tt; \
            (dest)[k] = (dest)[j];                                                       \
            (dest)[j] = j;                                                               \
        }                                                                                \
    }

fr_err fri_dataset_build(fr_dataset **out, fri_rows *rows, fr_idmap *users, fr_idmap *items) {
    *out = NULL;
    fr_err err = FR_OK;
    size_t n = rows->n;
    uint32_t nu = users->n, ni = items->n;
    uint64_t *wide = NULL;
    fr_dataset *d = fri_calloc(1, sizeof *d);
    uint64_t *cursor = fri_calloc((size_t)nu + 1, sizeof *cursor);
    if (!d || !cursor) { err = FR_ERR_NOMEM; goto fail; }
    d->ptr = fri_calloc((size_t)nu + 1, sizeof *d->ptr);
    if (!d->ptr) { err = FR_ERR_NOMEM; goto fail; }

    /* Raw -> dense, in place. */
    for (size_t k = 0; k < n; k++) {
        int64_t u = fr_idmap_find(users, rows->user[k]), i = fr_idmap_find(items, rows->item[k]);
        if (u < 0 || i < 0) { err = fri_fail(FR_ERR_INTERNAL, "id missing from id map"); goto fail; }
        rows->user[k] = (uint32_t)u;
        rows->item[k] = (uint32_t)i;
        d->ptr[u + 1]++;
    }
    for (uint32_t u = 0; u < nu; u++) d->ptr[u + 1] += d->ptr[u];
    memcpy(cursor, d->ptr, ((size_t)nu + 1) * sizeof *cursor);

    /* Stable in-place permutation by user: each row's destination (its user's next slot,
     * in input order) replaces its user id, which the CSR offsets imply from now on. */
    if (n < wide_from) {
        for (size_t k = 0; k < n; k++) rows->user[k] = (uint32_t)cursor[rows->user[k]]++;
        APPLY_PERMUTATION(rows, rows->user, n);
    } else {
        wide = fri_malloc(n * sizeof *wide);
        if (!wide) { err = FR_ERR_NOMEM; goto fail; }
        for (size_t k = 0; k < n; k++) wide[k] = cursor[rows->user[k]]++;
        APPLY_PERMUTATION(rows, wide, n);
        fri_free(wide);
        wide = NULL;
    }

    /* Per user: order by (time, item, input order), the item-sorted copy, repeats out. */
    uint64_t maxdeg = 0;
    for (uint32_t u = 0; u < nu; u++)
        if (d->ptr[u + 1] - d->ptr[u] > maxdeg) maxdeg = d->ptr[u + 1] - d->ptr[u];
    /* Large builds sort users on a pool; each user's result is the same either way. */
    fr_pool *pool = NULL;
    if (n >= ((size_t)1 << 20) && fr_pool_create(&pool, 0) != FR_OK) pool = NULL;
    int workers = fr_pool_size(pool);
    sort_ctx sc = {d->ptr, ni <= 256 ? 1 : ni <= 65536 ? 2 : ni <= (1u << 24) ? 3 : 4, rows,
                   (size_t)(maxdeg ? maxdeg : 1), NULL, cursor};
    sc.tmp = fri_malloc((size_t)workers * sc.stride * sizeof *sc.tmp);
    if (!sc.tmp) { fr_pool_free(pool); err = FR_ERR_NOMEM; goto fail; }
    fr_pool_for(pool, nu, 64, sort_user, &sc);
    fr_pool_free(pool);
    fri_free(sc.tmp);
    fr_errmsg_clear(); /* a pool that could not start is not an error */

    /* Close the gaps repeats left (users in order: every move is to a lower address). */
    uint64_t kept = 0;
    for (uint32_t u = 0; u < nu; u++) kept += cursor[u];
    if (kept < n) {
        uint64_t w = 0;
        for (uint32_t u = 0; u < nu; u++) {
            uint64_t lo = d->ptr[u], m = cursor[u];
            d->ptr[u] = w;
            if (lo != w) {
                memmove(rows->item + w, rows->item + lo, (size_t)m * sizeof *rows->item);
                memmove(rows->rating + w, rows->rating + lo, (size_t)m * sizeof *rows->rating);
                memmove(rows->time + w, rows->time + lo, (size_t)m * sizeof *rows->time);
                memmove(rows->user + w, rows->user + lo, (size_t)m * sizeof *rows->user);
            }
            w += m;
        }
        d->ptr[nu] = w;
        d->duplicates = n - w;
        n = (size_t)w;
    }

    d->n_users = nu;
    d->n_items = ni;
    d->n = n;
    d->has_time = rows->has_time;
    d->implicit = rows->implicit;
    d->weights = rows->weights;
    /* Shrink to fit (a failed shrink keeps the larger block). */
    d->item = n ? fri_realloc(rows->item, n * sizeof *d->item) : NULL;
    if (!d->item) d->item = rows->item; else if (!n) fri_free(rows->item);
    d->rating = n ? fri_realloc(rows->rating, n * sizeof *d->rating) : NULL;
    if (!d->rating) d->rating = rows->rating; else if (!n) fri_free(rows->rating);
    d->time = n ? fri_realloc(rows->time, n * sizeof *d->time) : NULL;
    if (!d->time) d->time = rows->time; else if (!n) fri_free(rows->time);
    d->sorted = n ? fri_realloc(rows->user, n * sizeof *d->sorted) : NULL;
    if (!d->sorted) d->sorted = rows->user; else if (!n) fri_free(rows->user);
    memset(rows, 0, sizeof *rows);
    fr_errmsg_clear(); /* a failed shrink is not an error */
    d->users = fr_idmap_retain(users);
    d->items = fr_idmap_retain(items);
    fri_free(cursor);
    *out = d;
    return FR_OK;
fail:
    fri_free(wide);
    fri_free(cursor);
    if (d) fri_free(d->ptr);
    fri_free(d);
    fri_rows_free(rows);
    return err;
}

fr_err fri_dataset_build_own(fr_dataset **out, fri_rows *rows) {
    *out = NULL;
    fr_idmap *um = NULL, *im = NULL;
    const uint32_t *ul[1] = {rows->user}, *il[1] = {rows->item};
    size_t nn[1] = {rows->n};
    fr_err e = fri_idmap_build(&um, ul, nn, 1);
    if (!e) e = fri_idmap_build(&im, il, nn, 1);
    if (!e) e = fri_dataset_build(out, rows, um, im);
    else fri_rows_free(rows);
    fr_idmap_release(um);
    fr_idmap_release(im);
    return e;
}

fr_err fr_dataset_from_arrays(fr_dataset **out, size_t n, const int64_t *users, const int64_t *items,
                              const float *ratings, const int64_t *times) {
    *out = NULL;
    fri_rows rows = {0};
    rows.has_time = times != NULL;
    for (size_t k = 0; k < n; k++) {
        if (users[k] < 0 || users[k] > INT32_MAX || items[k] < 0 || items[k] > INT32_MAX) {
            fri_rows_free(&rows);
            return fri_fail(FR_ERR_RANGE, "row %zu: ids (%lld, %lld); expected 0..2^31-1", k,
                            (long long)users[k], (long long)items[k]);
        }
        fr_err e = fri_rows_push(&rows, (uint32_t)users[k], (uint32_t)items[k], ratings ? ratings[k] : 1.0f,
                                 times ? times[k] : 0);
        if (e) { fri_rows_free(&rows); return e; }
    }
    return fri_dataset_build_own(out, &rows);
}

static void drop_strings(fr_idmap *m) {
    for (uint32_t d = 0; m->str && d < m->n; d++) fri_free(m->str[d]);
    fri_free(m->str);
    fri_free(m->sslot);
    m->str = NULL;
    m->sslot = NULL;
    m->scap = 0;
}

static fr_err side_strings(fr_idmap *m, const char *what, const char *const *strs, uint32_t n) {
    if (m->str || atomic_load(&m->refs) != 1)
        return fri_fail(FR_ERR_STATE, "the %s ids: %s", what,
                        m->str ? "they have their strings already" : "the id map is shared with another dataset");
    for (uint32_t d = 0; d < m->n; d++)
        if (m->raw[d] < 0 || m->raw[d] >= (int64_t)n)
            return fri_fail(FR_ERR_RANGE, "the %s ids: raw id %lld has no string (%u given); expected the strings of "
                            "raw ids 0..n-1", what, (long long)m->raw[d], n);
    char **own = fri_calloc(m->n ? m->n : 1, sizeof *own);
    if (!own) return FR_ERR_NOMEM;
    for (uint32_t d = 0; d < m->n; d++) {
        const char *t = strs[m->raw[d]];
        if (!t) {
            for (uint32_t k = 0; k < d; k++) fri_free(own[k]);
            fri_free(own);
            return fri_fail(FR_ERR_INVALID, "the %s ids: the string of raw id %lld is NULL", what,
                            (long long)m->raw[d]);
        }
        if (!(own[d] = fri_strdup(t))) {
            for (uint32_t k = 0; k < d; k++) fri_free(own[k]);
            fri_free(own);
            return FR_ERR_NOMEM;
        }
    }
    uint32_t dup = 0;
    fr_err e = fri_idmap_take_strs(m, own, &dup);
    if (e == FR_ERR_PARSE) {
        e = fri_fail(FR_ERR_INVALID, "the %s ids: \"%s\" is given for two ids (raw %lld and another)", what,
                     m->str[dup], (long long)m->raw[dup]);
    }
    if (e) drop_strings(m); /* take_strs took them: the map is left as it was */
    return e;
}

fr_err fr_dataset_set_id_strings(fr_dataset *d, const char *const *users, uint32_t n_users, const char *const *items,
                                 uint32_t n_items) {
    if (!d) return fri_fail(FR_ERR_INVALID, "fr_dataset_set_id_strings: NULL dataset");
    if (users && d->users->str) return fri_fail(FR_ERR_STATE, "the user ids: they have their strings already");
    if (items && d->items->str) return fri_fail(FR_ERR_STATE, "the item ids: they have their strings already");
    fr_err e = users ? side_strings(d->users, "user", users, n_users) : FR_OK;
    if (!e && items && (e = side_strings(d->items, "item", items, n_items)) && users)
        drop_strings(d->users); /* all or nothing */
    return e;
}

fr_err fr_dataset_select_users(fr_dataset **out, const fr_dataset *d, const uint32_t *users, size_t n_users) {
    *out = NULL;
    if (!d || (n_users && !users)) return fri_fail(FR_ERR_INVALID, "fr_dataset_select_users: NULL argument");
    uint8_t *pick = fri_calloc(d->n_users ? d->n_users : 1, 1);
    fr_dataset *s = fri_calloc(1, sizeof *s);
    fr_err e = FR_OK;
    if (!pick || !s) { e = FR_ERR_NOMEM; goto fail; }
    for (size_t k = 0; k < n_users; k++) {
        if (users[k] >= d->n_users) {
            e = fri_fail(FR_ERR_RANGE, "selecting users: user %u out of range, the data has %u", users[k], d->n_users);
            goto fail;
        }
        if (pick[users[k]]) { e = fri_fail(FR_ERR_INVALID, "selecting users: user %u given twice", users[k]); goto fail; }
        pick[users[k]] = 1;
    }
    uint64_t n = 0;
    for (uint32_t u = 0; u < d->n_users; u++)
        if (pick[u]) n += d->ptr[u + 1] - d->ptr[u];
    size_t m = n ? (size_t)n : 1;
    s->ptr = fri_calloc((size_t)d->n_users + 1, sizeof *s->ptr);
    s->item = fri_malloc(m * sizeof *s->item);
    s->rating = fri_malloc(m * sizeof *s->rating);
    s->time = fri_malloc(m * sizeof *s->time);
    s->sorted = fri_malloc(m * sizeof *s->sorted);
    if (!s->ptr || !s->item || !s->rating || !s->time || !s->sorted) { e = FR_ERR_NOMEM; goto fail; }
    uint64_t w = 0;
    for (uint32_t u = 0; u < d->n_users; u++) {
        s->ptr[u] = w;
        if (!pick[u]) continue;
        uint64_t lo = d->ptr[u];
        size_t c = (size_t)(d->ptr[u + 1] - lo);
        memcpy(s->item + w, d->item + lo, c * sizeof *s->item);
        memcpy(s->rating + w, d->rating + lo, c * sizeof *s->rating);
        if (d->time) memcpy(s->time + w, d->time + lo, c * sizeof *s->time);
        else memset(s->time + w, 0, c * sizeof *s->time);
        memcpy(s->sorted + w, d->sorted + lo, c * sizeof *s->sorted);
        w += c;
    }
    s->ptr[d->n_users] = w;
    s->n_users = d->n_users;
    s->n_items = d->n_items;
    s->n = n;
    s->has_time = d->has_time;
    s->implicit = d->implicit;
    s->weights = d->weights; /* the ratings are still weights (fr_dataset_weighted) */
    if (d->source && !(s->source = fri_strdup(d->source))) { e = FR_ERR_NOMEM; goto fail; }
    s->users = d->users ? fr_idmap_retain(d->users) : NULL;
    s->items = d->items ? fr_idmap_retain(d->items) : NULL;
    fri_free(pick);
    *out = s;
    return FR_OK;
fail:
    fri_free(pick);
    fr_dataset_free(s);
    return e;
}

void fr_dataset_free(fr_dataset *d) {
    if (!d) return;
    fri_free(d->ptr);
    fri_free(d->item);
    fri_free(d->rating);
    fri_free(d->time);
    fri_free(d->sorted);
    fri_free(d->absent);
    fr_idmap_release(d->users);
    fr_idmap_release(d->items);
    fri_meta_free(d->meta);
    fri_free(d->source);
    fri_free(d);
}

fr_err fri_dataset_set_source(fr_dataset *d, const char *path, bool absolute) {
    fri_free(d->source);
    d->source = NULL;
    if (!path) return FR_OK;
    char *abs = absolute ? realpath(path, NULL) : NULL; /* malloc'd by libc */
    d->source = fri_strdup(abs ? abs : path);
    free(abs);
    return d->source ? FR_OK : FR_ERR_NOMEM;
}

const char *fr_dataset_source(const fr_dataset *d) { return d->source; }

uint32_t fr_dataset_n_users(const fr_dataset *d) { return d->n_users; }
uint32_t fr_dataset_n_items(const fr_dataset *d) { return d->n_items; }
uint64_t fr_dataset_n_interactions(const fr_dataset *d) { return d->n; }
uint64_t fr_dataset_skipped(const fr_dataset *d, uint64_t *first_line) {
    if (first_line) *first_line = d->first_bad;
    return d->skipped;
}
bool fr_dataset_has_time(const fr_dataset *d) { return d->has_time; }
bool fr_dataset_implicit(const fr_dataset *d) { return d->implicit; }
bool fr_dataset_weighted(const fr_dataset *d) { return d->weights; }

fr_err fr_dataset_graph_load(const fr_dataset *d, double *out) {
    *out = 0;
    uint32_t ni = fr_dataset_n_items(d);
    double *load = fri_calloc(ni ? ni : 1, sizeof *load), top = 0;
    if (!load) return FR_ERR_NOMEM;
    for (uint32_t u = 0; u < fr_dataset_n_users(d); u++) {
        const uint32_t *it;
        size_t k = fr_dataset_user(d, u, &it, NULL, NULL);
        double w = sqrt((double)k);
        for (size_t j = 0; j < k; j++) load[it[j]] += w;
    }
    for (uint32_t i = 0; i < ni; i++)
        if (load[i] > top) top = load[i];
    fri_free(load);
    *out = top;
    return FR_OK;
}

bool fr_dataset_has_time_order(const fr_dataset *d) {
    if (!d->has_time) return false;
    for (uint64_t k = 1; k < d->n; k++)
        if (d->time[k] != d->time[0]) return true;
    return false;
}
const fr_idmap *fr_dataset_users(const fr_dataset *d) { return d->users; }
const fr_idmap *fr_dataset_items(const fr_dataset *d) { return d->items; }
const fr_meta *fr_dataset_meta(const fr_dataset *d) { return d->meta; }

size_t fr_dataset_user(const fr_dataset *d, uint32_t user, const uint32_t **items, const float **ratings,
                       const int64_t **times) {
    if (user >= d->n_users) {
        if (items) *items = NULL;
        if (ratings) *ratings = NULL;
        if (times) *times = NULL;
        return 0;
    }
    uint64_t lo = d->ptr[user];
    if (items) *items = d->item + lo;
    if (ratings) *ratings = d->rating + lo;
    if (times) *times = d->time + lo;
    return (size_t)(d->ptr[user + 1] - lo);
}

bool fr_dataset_has(const fr_dataset *d, uint32_t user, uint32_t item) {
    const uint32_t *s;
    size_t n = fri_dataset_user_sorted(d, user, &s);
    return fri_sorted_has(s, n, item);
}

/* ------------------------------------------------------------ info */

static int cmp_dbl(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void quantiles(double *v, size_t n, double q[5]) {
    if (n == 0) { memset(q, 0, 5 * sizeof *q); return; }
    qsort(v, n, sizeof *v, cmp_dbl);
    static const double at[5] = {0, 0.25, 0.5, 0.75, 1};
    for (int k = 0; k < 5; k++) {
        double pos = at[k] * (double)(n - 1);
        size_t i = (size_t)pos;
        double f = pos - (double)i;
        q[k] = i + 1 < n ? v[i] * (1 - f) + v[i + 1] * f : v[i];
    }
}

void fr_dataset_info_compute(const fr_dataset *d, fr_dataset_info *info) {
    memset(info, 0, sizeof *info);
    info->users = d->n_users;
    info->items = d->n_items;
    info->interactions = d->n;
    info->duplicates = d->duplicates;
    info->density = d->n_users && d->n_items ? (double)d->n / ((double)d->n_users * d->n_items) : 0;
    double sum = 0;
    info->rating_min = d->n ? INFINITY : 0;
    info->rating_max = d->n ? -INFINITY : 0;
    info->time_min = d->n && d->has_time ? INT64_MAX : 0;
    info->time_max = d->n && d->has_time ? INT64_MIN : 0;
    for (uint64_t k = 0; k < d->n; k++) {
        double r = d->rating[k];
        sum += r;
        if (r < info->rating_min) info->rating_min = r;
        if (r > info->rating_max) info->rating_max = r;
        double b = floor(r * 2) - 1; /* [0.5,1) -> 0 ... [5,5.5) -> 9 */
        if (b >= 0 && b < 10) info->hist[(int)b]++; else info->hist_other++;
        if (d->has_time) {
            if (d->time[k] < info->time_min) info->time_min = d->time[k];
            if (d->time[k] > info->time_max) info->time_max = d->time[k];
        }
    }
    info->rating_mean = d->n ? sum / (double)d->n : 0;
    size_t m = d->n_users > d->n_items ? d->n_users : d->n_items;
    double *v = fri_malloc((m ? m : 1) * sizeof *v); /* best effort: quantiles stay 0 on OOM */
    uint64_t *cnt = fri_calloc(d->n_items ? d->n_items : 1, sizeof *cnt);
    if (v && cnt) {
        for (uint32_t u = 0; u < d->n_users; u++) v[u] = (double)(d->ptr[u + 1] - d->ptr[u]);
        quantiles(v, d->n_users, info->per_user_q);
        for (uint64_t k = 0; k < d->n; k++) cnt[d->item[k]]++;
        for (uint32_t i = 0; i < d->n_items; i++) v[i] = (double)cnt[i];
        quantiles(v, d->n_items, info->per_item_q);
    }
    fri_free(v);
    fri_free(cnt);
    fr_errmsg_clear();
}

/* ------------------------------------------------------------ metadata accessors */

void fri_meta_free(fr_meta *m) {
    if (!m) return;
    for (uint32_t i = 0; i < m->n_items; i++) {
        if (m->title) fri_free(m->title[i]);
        if (m->genres) fri_free(m->genres[i]);
    }
    fri_free(m->title);
    fri_free(m->genres);
    for (uint32_t a = 0; a < m->n_attrs; a++) {
        fri_free(m->attr_names[a]);
        if (m->attrs && m->attrs[a]) {
            for (uint32_t u = 0; u < m->n_users; u++) fri_free(m->attrs[a][u]);
            fri_free(m->attrs[a]);
        }
    }
    fri_free(m->attr_names);
    fri_free(m->attrs);
    fri_free(m->first_bad);
    fri_free(m);
}

const char *fr_meta_item_title(const fr_meta *m, uint32_t item) {
    return m && m->title && item < m->n_items ? m->title[item] : NULL;
}

const char *fr_meta_item_genres(const fr_meta *m, uint32_t item) {
    return m && m->genres && item < m->n_items ? m->genres[item] : NULL;
}

uint64_t fr_meta_skipped(const fr_meta *m, const char **first) {
    if (first) *first = m ? m->first_bad : NULL;
    return m ? m->skipped : 0;
}

const char *fr_meta_user_attr(const fr_meta *m, uint32_t user, const char *name) {
    if (!m || user >= m->n_users) return NULL;
    for (uint32_t a = 0; a < m->n_attrs; a++)
        if (strcmp(m->attr_names[a], name) == 0) return m->attrs[a][user];
    return NULL;
}
