/* Pair sets (fedrec/pairset.h): a Bloom filter over (raw user id, raw item id) pairs.
 * m bits (a multiple of 64), k probes by double hashing: probe j of a pair is bit
 * (h1 + j * h2) mod m, h1 and h2 from a splitmix64 mix of both ids. The mix, the probe
 * rule and the little-endian byte order of the bits are the "bloom1" text form: a file
 * written on one machine is read on any other.
 * Invariants: a decoded filter is checked whole (k, m, the base64 length and alphabet)
 * before use; the false-positive rate is computed from the bits actually set. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/core.h"
#include "fedrec/pairset.h"

struct fr_pairset {
    uint32_t k;        /* probes per pair, 1..FR_PAIRSET_MAX_K */
    uint64_t m;        /* bits, a multiple of 64 */
    uint64_t count;    /* pairs added */
    uint64_t *bits;    /* [m / 64] */
    double fp;         /* (bits set / m)^k */
};

#define MAX_K 16
#define BITS_PER_PAIR 9.5851 /* -ln(0.01) / ln(2)^2: 1% false positives */

size_t fr_pairset_max_bytes(void) { return FR_PAIRSET_MAX_BYTES; }

static uint64_t mix(uint64_t z) {
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void hashes(int64_t user, int64_t item, uint64_t *h1, uint64_t *h2) {
    *h1 = mix((uint64_t)user ^ mix((uint64_t)item ^ 0x5851f42d4c957f2dull));
    *h2 = mix(*h1 ^ 0xc4ceb9fe1a85ec53ull) | 1u;
}

static void add(fr_pairset *s, int64_t user, int64_t item) {
    uint64_t h1, h2;
    hashes(user, item, &h1, &h2);
    for (uint32_t j = 0; j < s->k; j++) {
        uint64_t b = (h1 + j * h2) % s->m;
        s->bits[b >> 6] |= 1ull << (b & 63);
    }
}

bool fr_pairset_has(const fr_pairset *s, int64_t user, int64_t item) {
    uint64_t h1, h2;
    hashes(user, item, &h1, &h2);
    for (uint32_t j = 0; j < s->k; j++) {
        uint64_t b = (h1 + j * h2) % s->m;
        if (!(s->bits[b >> 6] >> (b & 63) & 1u)) return false;
    }
    return true;
}

static void fill_rate(fr_pairset *s) {
    uint64_t set = 0;
    for (uint64_t w = 0; w < s->m / 64; w++) {
        uint64_t x = s->bits[w];
        while (x) { x &= x - 1; set++; }
    }
    s->fp = pow((double)set / (double)s->m, (double)s->k);
}

static fr_err alloc_set(fr_pairset **out, uint32_t k, uint64_t m) {
    fr_pairset *s = fri_calloc(1, sizeof *s);
    if (s && !(s->bits = fri_calloc((size_t)(m / 64), sizeof *s->bits))) { fri_free(s); s = NULL; }
    if (!s) return fri_fail(FR_ERR_NOMEM, "pair set: out of memory for %llu bits", (unsigned long long)m);
    s->k = k;
    s->m = m;
    *out = s;
    return FR_OK;
}

fr_err fr_pairset_build(fr_pairset **out, const fr_dataset *d, size_t max_bytes) {
    *out = NULL;
    if (!max_bytes) max_bytes = FR_PAIRSET_MAX_BYTES;
    uint64_t n = fr_dataset_n_interactions(d);
    double want = ceil((double)n * BITS_PER_PAIR / 64.0) * 64.0, cap = floor((double)max_bytes / 8.0) * 64.0;
    uint64_t m = (uint64_t)(want < cap ? want : cap);
    if (m < 64) m = 64;
    double kk = n ? round((double)m / (double)n * log(2.0)) : 1;
    uint32_t k = kk < 1 ? 1 : kk > MAX_K ? MAX_K : (uint32_t)kk;
    fr_pairset *s = NULL;
    fr_err e = alloc_set(&s, k, m);
    if (e) return e;
    const fr_idmap *um = fr_dataset_users(d), *im = fr_dataset_items(d);
    for (uint32_t u = 0; u < fr_dataset_n_users(d); u++) {
        const uint32_t *items;
        size_t c = fr_dataset_user(d, u, &items, NULL, NULL);
        int64_t ru = fr_idmap_raw(um, u);
        for (size_t i = 0; i < c; i++) add(s, ru, fr_idmap_raw(im, items[i]));
    }
    s->count = n;
    fill_rate(s);
    *out = s;
    return FR_OK;
}

void fr_pairset_free(fr_pairset *s) {
    if (!s) return;
    fri_free(s->bits);
    fri_free(s);
}

uint64_t fr_pairset_count(const fr_pairset *s) { return s->count; }
double fr_pairset_fp_rate(const fr_pairset *s) { return s->fp; }

/* ------------------------------------------------------------------ text form */

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static uint8_t byte_at(const fr_pairset *s, uint64_t i) { return (uint8_t)(s->bits[i >> 3] >> (8 * (i & 7))); }

fr_err fr_pairset_encode(const fr_pairset *s, char **text) {
    *text = NULL;
    uint64_t nb = s->m / 8, groups = (nb + 2) / 3;
    char head[96];
    int h = snprintf(head, sizeof head, "bloom1:%u:%llu:%llu:", s->k, (unsigned long long)s->m,
                     (unsigned long long)s->count);
    char *t = fri_malloc((size_t)h + (size_t)groups * 4 + 1);
    if (!t) return fri_fail(FR_ERR_NOMEM, "pair set: out of memory encoding");
    memcpy(t, head, (size_t)h);
    char *w = t + h;
    for (uint64_t g = 0; g < groups; g++) {
        uint64_t i = 3 * g;
        uint32_t v = (uint32_t)byte_at(s, i) << 16;
        if (i + 1 < nb) v |= (uint32_t)byte_at(s, i + 1) << 8;
        if (i + 2 < nb) v |= byte_at(s, i + 2);
        *w++ = B64[v >> 18 & 63];
        *w++ = B64[v >> 12 & 63];
        *w++ = i + 1 < nb ? B64[v >> 6 & 63] : '=';
        *w++ = i + 2 < nb ? B64[v & 63] : '=';
    }
    *w = 0;
    *text = t;
    return FR_OK;
}

void fr_pairset_text_free(char *text) { fri_free(text); }

static int b64_value(char c) {
    const char *p = c ? strchr(B64, c) : NULL;
    return p ? (int)(p - B64) : -1;
}

/* An unsigned decimal field ending at ':'; advances *p past the colon. */
static bool field(const char **p, uint64_t max, uint64_t *out) {
    const char *q = *p;
    uint64_t v = 0;
    if (*q < '0' || *q > '9') return false;
    for (; *q >= '0' && *q <= '9'; q++) {
        if (v > (max - (uint64_t)(*q - '0')) / 10) return false;
        v = v * 10 + (uint64_t)(*q - '0');
    }
    if (*q != ':') return false;
    *p = q + 1;
    *out = v;
    return true;
}

fr_err fr_pairset_decode(fr_pairset **out, const char *text) {
    *out = NULL;
    if (!text || strncmp(text, "bloom1:", 7))
        return fri_fail(FR_ERR_PARSE, "pair set: expected text starting \"bloom1:\"");
    const char *p = text + 7;
    uint64_t k, m, count;
    uint64_t max_bits = (uint64_t)1 << 40;
    if (!field(&p, MAX_K, &k) || k < 1 || !field(&p, max_bits, &m) || m < 64 || m % 64 || !field(&p, UINT64_MAX, &count))
        return fri_fail(FR_ERR_PARSE, "pair set: expected \"bloom1:K:BITS:COUNT:\" with K in 1..%d and BITS a "
                        "positive multiple of 64", MAX_K);
    uint64_t nb = m / 8, groups = (nb + 2) / 3;
    size_t len = strlen(p);
    if (len != groups * 4)
        return fri_fail(FR_ERR_PARSE, "pair set: %zu base64 characters for %llu bits; expected %llu", len,
                        (unsigned long long)m, (unsigned long long)(groups * 4));
    fr_pairset *s = NULL;
    fr_err e = alloc_set(&s, (uint32_t)k, m);
    if (e) return e;
    for (uint64_t g = 0; g < groups; g++) {
        const char *c = p + 4 * g;
        uint64_t i = 3 * g;
        int v[4];
        bool ok = true;
        for (int j = 0; j < 4; j++) {
            bool pad = c[j] == '=' && ((j == 2 && i + 1 >= nb) || (j == 3 && i + 2 >= nb));
            v[j] = pad ? 0 : b64_value(c[j]);
            if (v[j] < 0 || (!pad && j >= 2 && i + (uint64_t)j - 1 >= nb)) ok = false;
        }
        if (!ok) {
            fr_pairset_free(s);
            return fri_fail(FR_ERR_PARSE, "pair set: bad base64 at character %llu", (unsigned long long)(4 * g));
        }
        uint32_t x = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        uint8_t b[3] = {(uint8_t)(x >> 16), (uint8_t)(x >> 8), (uint8_t)x};
        for (int j = 0; j < 3 && i + (uint64_t)j < nb; j++) s->bits[(i + (uint64_t)j) >> 3] |= (uint64_t)b[j] << (8 * ((i + (uint64_t)j) & 7));
    }
    s->count = count;
    fill_rate(s);
    *out = s;
    return FR_OK;
}

/* ------------------------------------------------------------------ overlap */

void fr_pairset_overlap_of(const fr_pairset *s, const fr_dataset *test, fr_pairset_overlap *out) {
    memset(out, 0, sizeof *out);
    out->fp_rate = s->fp;
    const fr_idmap *um = fr_dataset_users(test), *im = fr_dataset_items(test);
    for (uint32_t u = 0; u < fr_dataset_n_users(test); u++) {
        const uint32_t *items;
        size_t c = fr_dataset_user(test, u, &items, NULL, NULL);
        int64_t ru = fr_idmap_raw(um, u);
        for (size_t i = 0; i < c; i++) out->found += fr_pairset_has(s, ru, fr_idmap_raw(im, items[i]));
        out->total += c;
    }
    if (!out->total) return;
    double n = (double)out->total, fp = s->fp;
    out->share = (double)out->found / n;
    double sd = sqrt(fp * (1 - fp) / n);
    out->clear = out->share >= fp + 0.05 && out->share >= fp + 4 * sd;
}
