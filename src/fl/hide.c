/* Hiding which items a client touched: decoy rows (fr_fl_config.decoys).
 *
 * After its fit, a client pads the item rows of its update with decoy items: m =
 * max(1, round(decoys x n_k)) items drawn from the public popularity (the weights the
 * server publishes, fr_client_ws_set_popularity; uniform without them), distinct, none of
 * the client's own items. They are drawn once per client (stream (seed, 0, client,
 * DECOYS)), not per round: decoys redrawn every round would be told apart from the real
 * items, which come back every round, by intersecting the rounds.
 * A decoy that is already a row of the update (a sampled negative of this round) is not
 * added twice: its pseudo-gradient is added to that row. Decoy values are 0 (decoy_zero: under secure aggregation the padding adds
 * nothing, bit for bit) or pseudo-gradients: each value N(0, s_t^2), s_t the RMS of the
 * real rows' values of table t, from (seed, round, client, DECOY_VALUES).
 *
 * Invariants: ids stay strictly increasing; O(m log m + rows) per step plus
 * O(log n_items) per draw, never O(catalogue) (the marks are cleared one by one). */
#include <math.h>
#include <stdlib.h>

#include "fl/fl_internal.h"

struct fri_hide {
    double *cum;        /* [n_items] cumulative popularity, or NULL (uniform) */
    uint32_t n_items;
    uint8_t *mark;      /* [n_items] 1: own item or drawn */
    uint32_t *dec;      /* [cap] the decoys, sorted */
    size_t cap;
    float *vals;        /* [vcap] a table's decoy rows before the merge */
    size_t vcap;
    uint32_t *pos;      /* [pcap] indices of a table's positive rows */
    size_t pcap;
};

void fri_hide_free(fri_hide *h) {
    if (!h) return;
    fri_free(h->cum);
    fri_free(h->mark);
    fri_free(h->dec);
    fri_free(h->vals);
    fri_free(h->pos);
    fri_free(h);
}

fr_err fri_hide_create(fri_hide **out, uint32_t n_items) {
    fri_hide *h = fri_calloc(1, sizeof *h);
    if (!h) return FR_ERR_NOMEM;
    h->n_items = n_items;
    h->mark = fri_calloc(n_items ? n_items : 1, 1);
    if (!h->mark) { fri_hide_free(h); return FR_ERR_NOMEM; }
    *out = h;
    return FR_OK;
}

fr_err fri_hide_set_popularity(fri_hide *h, const double *w, uint32_t n) {
    if (n != h->n_items)
        return fri_fail(FR_ERR_INVALID, "popularity of %u items, expected the catalogue's %u", n, h->n_items);
    double *c = fri_malloc((size_t)(n ? n : 1) * sizeof *c);
    if (!c) return FR_ERR_NOMEM;
    double s = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (!(w[i] >= 0) || !isfinite(w[i])) {
            fri_free(c);
            return fri_fail(FR_ERR_INVALID, "popularity of item %u: %g, expected a finite weight >= 0", i, w[i]);
        }
        s += w[i];
        c[i] = s;
    }
    if (!(s > 0) || !isfinite(s)) {
        fri_free(c);
        return fri_fail(FR_ERR_INVALID, "popularity: the weights sum to %g, expected a finite sum > 0", s);
    }
    fri_free(h->cum);
    h->cum = c;
    return FR_OK;
}

static uint32_t draw(const fri_hide *h, fr_rng *r) {
    if (!h->cum) return fr_rng_below(r, h->n_items);
    double x = fr_rng_double(r) * h->cum[h->n_items - 1];
    uint32_t lo = 0, hi = h->n_items - 1; /* first i with cum[i] > x */
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (h->cum[mid] > x) hi = mid;
        else lo = mid + 1;
    }
    return lo;
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static void mark_own(fri_hide *h, const fr_client_data *d, uint8_t v) {
    uint32_t nu = d->n_users ? d->n_users : 1;
    for (uint32_t j = 0; j < nu; j++) {
        const uint32_t *it = d->n_users ? d->users[j].items : d->items;
        size_t n = d->n_users ? d->users[j].n : d->n;
        for (size_t i = 0; i < n; i++)
            if (it[i] < h->n_items) h->mark[it[i]] = v;
    }
}

/* Draws the decoys with the client's own items marked 1; leaves them marked. */
static fr_err draw_decoys(fri_hide *h, const fr_fl_config *cfg, uint32_t client, uint64_t n_k, size_t *m_out) {
    *m_out = 0;
    double want = floor(cfg->decoys * (double)n_k + 0.5);
    size_t m = want < 1 ? 1 : want > (double)h->n_items ? h->n_items : (size_t)want;
    if (m > h->cap) {
        uint32_t *p = fri_realloc(h->dec, m * sizeof *p);
        if (!p) return FR_ERR_NOMEM;
        h->dec = p;
        h->cap = m;
    }
    fr_rng r;
    fr_rng_init(&r, cfg->seed, 0, client, FR_PURPOSE_DECOYS);
    size_t got = 0;
    /* rejection of own and repeated items; a bounded number of tries (a client that owns
     * almost the whole catalogue gets fewer decoys) */
    for (uint64_t tries = 0; got < m && tries < 64 * (uint64_t)m + 1024; tries++) {
        uint32_t i = draw(h, &r);
        if (h->mark[i]) continue;
        h->mark[i] = 2;
        h->dec[got++] = i;
    }
    for (size_t i = 0; i < got; i++) h->mark[h->dec[i]] = 0;
    qsort(h->dec, got, sizeof *h->dec, cmp_u32);
    *m_out = got;
    return FR_OK;
}

fr_err fri_hide_draw(fri_hide *h, const fr_fl_config *cfg, uint32_t client, const fr_client_data *d, uint64_t n_k,
                     const uint32_t **dec, size_t *m) {
    mark_own(h, d, 1);
    fr_err e = draw_decoys(h, cfg, client, n_k, m);
    mark_own(h, d, 0);
    *dec = e ? NULL : h->dec;
    return e;
}

/* A pseudo-gradient for a decoy row: a real positive row of the table (one of the
 * client's own items, picked at random) scaled by exp(N(0, 1/4)), each value plus
 * N(0, (0.003 r)^2) (r the RMS of that row), so it points where the client's positives
 * point without being an exact multiple of one. Measured (bench/run_hide.sh): on bpr a
 * user's real rows are so nearly collinear (all move along the user's embedding) that
 * 10% of noise, or N(0, s^2) rows (FedGNN's generated gradients), let the direction
 * attack pick the real items with F1 ~0.9; at 0.3-1% it cannot (F1 ~0.55 with as many
 * decoys as items, 0.5 being blind between them). Without a positive row: N(0, s^2). */
static void pseudo_row(float *v, const fr_update_table *tb, const uint32_t *pos, size_t n_pos, double s, fr_rng *r) {
    uint32_t w = tb->width;
    if (n_pos == 0) {
        for (uint32_t x = 0; x < w; x++) v[x] = (float)(s * fr_rng_normal(r));
        return;
    }
    const float *src = tb->values + (size_t)pos[fr_rng_below(r, (uint32_t)n_pos)] * w;
    double lam = exp(0.5 * fr_rng_normal(r)), ss = 0;
    for (uint32_t x = 0; x < w; x++) ss += (double)src[x] * src[x];
    double sd = 0.003 * sqrt(ss / w); /* the copy's own scale: it stays as aligned as a real row */
    for (uint32_t x = 0; x < w; x++) v[x] = (float)(lam * (src[x] + sd * fr_rng_normal(r)));
}

fr_err fri_hide_pad(fri_hide *h, const fr_fl_config *cfg, const fr_client_data *d, fr_update *u) {
    if (u->weight == 0) return FR_OK; /* trained nothing, sends no rows */
    size_t m;
    mark_own(h, d, 1);
    fr_err e = draw_decoys(h, cfg, u->client, u->weight, &m);
    const uint32_t *dec = h->dec;
    fr_rng r;
    fr_rng_init(&r, cfg->seed, u->round, u->client, FR_PURPOSE_DECOY_VALUES);
    for (uint32_t t = 0; !e && m && t < u->n_tables; t++) {
        fr_update_table *tb = &u->tables[t];
        uint32_t c = tb->count, w = tb->width;
        /* the decoys not already present */
        size_t extra = 0;
        for (size_t k = 0, i = 0; k < m; k++) {
            while (i < c && tb->ids[i] < dec[k]) i++;
            if (i == c || tb->ids[i] != dec[k]) extra++;
        }
        if (extra == 0 && cfg->decoy_zero) continue;
        double ss = 0;
        for (size_t i = 0; i < (size_t)c * w; i++) ss += (double)tb->values[i] * tb->values[i];
        double s = c ? sqrt(ss / ((double)c * w)) : 0;
        /* the decoys' values first (pseudo rows read the real ones, still in place) */
        if (m * w > h->vcap) {
            float *p = fri_realloc(h->vals, m * w * sizeof *p);
            if (!p) { e = FR_ERR_NOMEM; break; }
            h->vals = p;
            h->vcap = m * w;
        }
        float *tmp = h->vals; /* [m * w] */
        size_t n_pos = 0;
        if (!cfg->decoy_zero) {
            if (c > h->pcap) {
                uint32_t *p = fri_realloc(h->pos, (size_t)c * sizeof *p);
                if (!p) { e = FR_ERR_NOMEM; break; }
                h->pos = p;
                h->pcap = c;
            }
            for (uint32_t i = 0; i < c; i++)
                if (h->mark[tb->ids[i]] == 1) h->pos[n_pos++] = i;
        }
        for (size_t k = 0; k < m; k++) {
            float *v = tmp + k * w;
            if (cfg->decoy_zero) memset(v, 0, (size_t)w * sizeof *v);
            else pseudo_row(v, tb, h->pos, n_pos, s, &r);
        }
        if ((e = fr_update_table_resize(u, t, c + (uint32_t)extra))) break;
        /* merge from the back, in place: rows move up, decoys come from tmp; a decoy that
         * is already a row (a sampled negative this round) gets its pseudo-gradient added
         * (else it would sit on the negatives' side, where a real item never is) */
        size_t i = c, k = m, o = c + extra;
        while (k > 0) {
            if (i > 0 && tb->ids[i - 1] >= dec[k - 1]) {
                o--;
                i--;
                if (o != i) {
                    tb->ids[o] = tb->ids[i];
                    memmove(tb->values + o * w, tb->values + i * w, (size_t)w * sizeof *tb->values);
                }
                if (tb->ids[o] == dec[k - 1]) { /* already a row */
                    k--;
                    float *v = tb->values + o * w;
                    const float *x = tmp + k * w;
                    for (uint32_t j = 0; j < w; j++) v[j] += x[j];
                }
            } else {
                o--;
                k--;
                tb->ids[o] = dec[k];
                memcpy(tb->values + o * w, tmp + k * w, (size_t)w * sizeof *tb->values);
            }
        }
    }
    mark_own(h, d, 0);
    return e;
}
