/* The curious server's guess of which items a client touched (include/fedrec/attack.h).
 * Per observed RESULT: the rows present with a non-zero value, their top singular
 * direction v (power iteration on R^T R, in double), and per row 1 + |cos(row, v)| * side
 * added to its item's score. Deterministic: v starts from the sum of the rows' absolute
 * values, the iteration count is fixed. */
#include <math.h>
#include <stdlib.h>

#include "fedrec/attack.h"
#include "fl/fl_internal.h"

#define POWER_ITERS 30

struct fr_attack {
    uint32_t n_clients, n_items;
    double *pop;        /* [n_items] or NULL */
    float *score;       /* [n_clients * n_items] */
    uint16_t *seen;     /* [n_clients * n_items] rounds present, non-zero */
    uint32_t *rounds;   /* [n_clients] results observed */
    double *rows;       /* [cap] one RESULT's rows, side by side */
    size_t cap;
};

fr_err fr_attack_create(fr_attack **out, uint32_t n_clients, uint32_t n_items, const double *popularity) {
    *out = NULL;
    if (!n_clients || !n_items) return fri_fail(FR_ERR_INVALID, "attack: %u clients, %u items", n_clients, n_items);
    fr_attack *a = fri_calloc(1, sizeof *a);
    if (!a) return FR_ERR_NOMEM;
    a->n_clients = n_clients;
    a->n_items = n_items;
    size_t n = (size_t)n_clients * n_items;
    a->score = fri_calloc(n, sizeof *a->score);
    a->seen = fri_calloc(n, sizeof *a->seen);
    a->rounds = fri_calloc(n_clients, sizeof *a->rounds);
    if (popularity && (a->pop = fri_malloc((size_t)n_items * sizeof *a->pop)))
        memcpy(a->pop, popularity, (size_t)n_items * sizeof *a->pop);
    if (!a->score || !a->seen || !a->rounds || (popularity && !a->pop)) {
        fr_attack_free(a);
        return FR_ERR_NOMEM;
    }
    *out = a;
    return FR_OK;
}

void fr_attack_free(fr_attack *a) {
    if (!a) return;
    fri_free(a->pop);
    fri_free(a->score);
    fri_free(a->seen);
    fri_free(a->rounds);
    fri_free(a->rows);
    fri_free(a);
}

fr_err fr_attack_observe(fr_attack *a, const fr_result *r) {
    if (r->client >= a->n_clients)
        return fri_fail(FR_ERR_RANGE, "attack: client %u, expected < %u", r->client, a->n_clients);
    a->rounds[r->client]++;
    if (r->n_tables == 0) return FR_OK;
    /* tables share their ids (every item table holds the rows of the same items) */
    uint32_t c = r->tables[0].count, W = 0;
    for (uint32_t t = 0; t < r->n_tables; t++) {
        if (r->tables[t].count != c || memcmp(r->tables[t].ids, r->tables[0].ids, (size_t)c * sizeof(uint32_t)))
            return fri_fail(FR_ERR_RANGE, "attack: client %u's item tables hold different rows", r->client);
        W += r->tables[t].width;
    }
    if (c == 0) return FR_OK;
    size_t need = (size_t)c * W + 2 * (size_t)W + c;
    if (need > a->cap) {
        double *p = fri_realloc(a->rows, need * sizeof *p);
        if (!p) return FR_ERR_NOMEM;
        a->rows = p;
        a->cap = need;
    }
    double *R = a->rows, *v = R + (size_t)c * W, *y = v + W, *proj = y + W;
    for (uint32_t i = 0; i < c; i++) {
        if (r->tables[0].ids[i] >= a->n_items)
            return fri_fail(FR_ERR_RANGE, "attack: item %u, expected < %u", r->tables[0].ids[i], a->n_items);
        uint32_t o = 0;
        for (uint32_t t = 0; t < r->n_tables; t++) {
            const fr_result_table *tb = &r->tables[t];
            for (uint32_t x = 0; x < tb->width; x++) R[(size_t)i * W + o + x] = (double)tb->values[(size_t)i * tb->width + x];
            o += tb->width;
        }
    }
    /* v: top right singular vector of R */
    for (uint32_t x = 0; x < W; x++) v[x] = 0;
    for (uint32_t i = 0; i < c; i++)
        for (uint32_t x = 0; x < W; x++) v[x] += fabs(R[(size_t)i * W + x]);
    for (int it = 0; it < POWER_ITERS; it++) {
        double nn = 0;
        for (uint32_t x = 0; x < W; x++) nn += v[x] * v[x];
        if (!(nn > 0)) break;
        nn = sqrt(nn);
        for (uint32_t x = 0; x < W; x++) { v[x] /= nn; y[x] = 0; }
        for (uint32_t i = 0; i < c; i++) {
            const double *row = R + (size_t)i * W;
            double p = 0;
            for (uint32_t x = 0; x < W; x++) p += row[x] * v[x];
            for (uint32_t x = 0; x < W; x++) y[x] += p * row[x];
        }
        memcpy(v, y, (size_t)W * sizeof *v);
    }
    double vn = 0;
    for (uint32_t x = 0; x < W; x++) vn += v[x] * v[x];
    vn = sqrt(vn);
    /* cosines and the positives' side */
    double side_pop[2] = {0, 0};
    uint32_t side_n[2] = {0, 0};
    for (uint32_t i = 0; i < c; i++) {
        const double *row = R + (size_t)i * W;
        double p = 0, rn = 0;
        for (uint32_t x = 0; x < W; x++) { p += row[x] * v[x]; rn += row[x] * row[x]; }
        proj[i] = rn > 0 && vn > 0 ? p / (sqrt(rn) * vn) : NAN; /* NaN: a zero row */
        if (isnan(proj[i])) continue;
        int s = proj[i] >= 0 ? 0 : 1;
        side_n[s]++;
        side_pop[s] += a->pop ? log(a->pop[r->tables[0].ids[i]] + 1) : 0;
    }
    double m0 = side_n[0] ? side_pop[0] / side_n[0] : -INFINITY, m1 = side_n[1] ? side_pop[1] / side_n[1] : -INFINITY;
    /* without popularity: the side with more rows */
    int pos = a->pop ? (m0 >= m1 ? 0 : 1) : (side_n[0] >= side_n[1] ? 0 : 1);
    size_t base = (size_t)r->client * a->n_items;
    for (uint32_t i = 0; i < c; i++) {
        if (isnan(proj[i])) continue; /* a zero row tells nothing */
        int s = proj[i] >= 0 ? 0 : 1;
        double sc = 1.0 + fabs(proj[i]) * (s == pos ? 1.0 : -1.0);
        uint32_t it = r->tables[0].ids[i];
        a->score[base + it] += (float)sc;
        if (a->seen[base + it] < UINT16_MAX) a->seen[base + it]++;
    }
    return FR_OK;
}

double fr_attack_item_score(const fr_attack *a, uint32_t c, uint32_t i) {
    return c < a->n_clients && i < a->n_items ? a->score[(size_t)c * a->n_items + i] : 0;
}

uint32_t fr_attack_rounds(const fr_attack *a, uint32_t c) { return c < a->n_clients ? a->rounds[c] : 0; }

typedef struct ranked { float s; uint32_t i; } ranked;

static int by_score(const void *x, const void *y) {
    const ranked *a = x, *b = y;
    if (a->s != b->s) return a->s > b->s ? -1 : 1;
    return (a->i > b->i) - (a->i < b->i);
}

fr_err fr_attack_guess(const fr_attack *a, uint32_t c, uint32_t g, uint32_t *out, uint32_t *n) {
    *n = 0;
    if (c >= a->n_clients) return fri_fail(FR_ERR_RANGE, "attack: client %u, expected < %u", c, a->n_clients);
    const float *sc = a->score + (size_t)c * a->n_items;
    const uint16_t *seen = a->seen + (size_t)c * a->n_items;
    if (g == 0) {
        uint32_t R = a->rounds[c];
        for (uint32_t i = 0; R && i < a->n_items; i++)
            if (seen[i] >= (R < UINT16_MAX ? R : UINT16_MAX)) out[(*n)++] = i;
        return FR_OK;
    }
    /* selection of the top g among the non-zero scores (a small heap would do; the
     * harness sorts the seen items) */
    uint32_t m = 0;
    for (uint32_t i = 0; i < a->n_items; i++) m += seen[i] != 0;
    ranked *rk = fri_malloc((m ? m : 1) * sizeof *rk);
    if (!rk) return FR_ERR_NOMEM;
    m = 0;
    for (uint32_t i = 0; i < a->n_items; i++)
        if (seen[i] != 0) rk[m++] = (ranked){sc[i], i};
    qsort(rk, m, sizeof *rk, by_score);
    for (uint32_t k = 0; k < m && k < g; k++) out[(*n)++] = rk[k].i;
    fri_free(rk);
    return FR_OK;
}

static int cmp_u32(const void *x, const void *y) {
    uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;
    return (a > b) - (a < b);
}

void fr_attack_score_sets(const uint32_t *guess, size_t g, const uint32_t *truth, size_t t, fr_attack_score *out) {
    uint32_t *s = fri_malloc((t ? t : 1) * sizeof *s);
    size_t hits = 0;
    if (s) {
        if (t) memcpy(s, truth, t * sizeof *s);
        qsort(s, t, sizeof *s, cmp_u32);
        for (size_t i = 0; i < g; i++)
            if (bsearch(&guess[i], s, t, sizeof *s, cmp_u32)) hits++;
        fri_free(s);
    } else { /* no memory: the quadratic count */
        for (size_t i = 0; i < g; i++)
            for (size_t j = 0; j < t; j++)
                if (guess[i] == truth[j]) { hits++; break; }
    }
    out->hits = (uint32_t)hits;
    out->precision = g ? (double)hits / (double)g : 0;
    out->recall = t ? (double)hits / (double)t : 0;
    out->f1 = g + t ? 2.0 * (double)hits / (double)(g + t) : 0;
}

double fr_attack_random_f1(uint32_t n_items, uint32_t t, uint32_t g) {
    if (n_items == 0 || (uint64_t)g + t == 0) return 0;
    if (g > n_items) g = n_items;
    return 2.0 * (double)g * (double)t / ((double)n_items * ((double)g + (double)t));
}
