/* Counter-based random streams: Philox4x32-10 (Salmon et al., SC'11).
 * A stream is the sequence of blocks Philox_key(seed)(ctr) where the counter carries
 * (block index, purpose, round, client), so any draw is a pure function of its name
 * and position: no state is shared between streams or threads. */
#include <math.h>

#include "core/alias.h"
#include "core/core.h"

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

void fr_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]) {
    uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3];
    uint32_t k0 = key[0], k1 = key[1];
    for (int round = 0; round < 10; round++) {
        uint64_t p0 = (uint64_t)PHILOX_M0 * c0, p1 = (uint64_t)PHILOX_M1 * c2;
        uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
        uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
        c0 = hi1 ^ c1 ^ k0;
        c1 = lo1;
        c2 = hi0 ^ c3 ^ k1;
        c3 = lo0;
        k0 += PHILOX_W0;
        k1 += PHILOX_W1;
    }
    out[0] = c0; out[1] = c1; out[2] = c2; out[3] = c3;
}

void fr_rng_init(fr_rng *r, uint64_t seed, uint32_t round, uint32_t client, uint32_t purpose) {
    r->key[0] = (uint32_t)seed;
    r->key[1] = (uint32_t)(seed >> 32);
    r->ctr[0] = 0;
    r->ctr[1] = (purpose & 0xffffu) << 16; /* low 16 bits: block index bits 32..47 */
    r->ctr[2] = round;
    r->ctr[3] = client;
    r->pos = 4;
    r->has_normal = 0;
    r->normal = 0.0;
}

/* The counter's block index (48 bits: ctr[0] and the low half of ctr[1]) plus k, modulo
 * 2^48 as the one-block increment wraps. */
static void ctr_advance(uint32_t ctr[4], uint64_t k) {
    uint64_t blk = ((uint64_t)(ctr[1] & 0xffffu) << 32 | ctr[0]) + k;
    ctr[0] = (uint32_t)blk;
    ctr[1] = (ctr[1] & 0xffff0000u) | ((uint32_t)(blk >> 32) & 0xffffu);
}

static void refill(fr_rng *r) {
    fr_philox4x32_10(r->ctr, r->key, r->buf);
    if (++r->ctr[0] == 0) r->ctr[1] = (r->ctr[1] & 0xffff0000u) | ((r->ctr[1] + 1) & 0xffffu);
    r->pos = 0;
}

void fri_rng_skip(fr_rng *r, uint64_t k) {
    const unsigned left = r->pos < 4 ? 4 - r->pos : 0;
    if (k <= left) {
        r->pos += (unsigned)k;
        return;
    }
    k -= left; /* words from the blocks at ctr, ctr + 1, ...; the last is word (k-1) % 4 of
                  block ctr + (k-1) / 4, which becomes the buffer as its reading would */
    ctr_advance(r->ctr, (k - 1) / 4);
    refill(r);
    r->pos = (unsigned)((k - 1) % 4 + 1);
}

/* FRI_RNG_BATCH / 4 Philox blocks from counter ctr (advanced past them) into out, block
 * after block. The blocks are independent, so they go side by side: one to each 64-bit
 * lane of a vector register, whose 32 x 32 -> 64-bit multiply (pmuludq) gives a round's
 * high and low halves at once (the upper half of a lane that holds a low half is never
 * read). Integer operations: the words of fr_philox4x32_10. SSE2 on every x86-64, AVX2
 * where the CPU has it, fr_philox4x32_10 block by block elsewhere. */
#define BLOCKS (FRI_RNG_BATCH / 4)
#if defined(__SSE2__) && defined(__GNUC__)
static void next_counters(uint32_t ctr[4], uint64_t c[][4], unsigned n) {
    for (unsigned b = 0; b < n; b++) {
        for (unsigned w = 0; w < 4; w++) c[b][w] = ctr[w];
        ctr_advance(ctr, 1);
    }
}
#include <immintrin.h>
#define LO32 0xffffffffll
static void philox_batch_sse2(uint32_t ctr[4], const uint32_t key[2], uint32_t *out, unsigned blocks) {
    uint64_t c[BLOCKS][4];
    next_counters(ctr, c, blocks);
    for (unsigned g = 0; g < blocks; g += 2) {
        __m128i x0 = _mm_set_epi64x((long long)c[g + 1][0], (long long)c[g][0]);
        __m128i x1 = _mm_set_epi64x((long long)c[g + 1][1], (long long)c[g][1]);
        __m128i x2 = _mm_set_epi64x((long long)c[g + 1][2], (long long)c[g][2]);
        __m128i x3 = _mm_set_epi64x((long long)c[g + 1][3], (long long)c[g][3]);
        const __m128i m0 = _mm_set1_epi64x(PHILOX_M0), m1 = _mm_set1_epi64x(PHILOX_M1);
        uint32_t k0 = key[0], k1 = key[1];
        for (int round = 0; round < 10; round++) {
            const __m128i p0 = _mm_mul_epu32(x0, m0), p1 = _mm_mul_epu32(x2, m1);
            x0 = _mm_xor_si128(_mm_xor_si128(_mm_srli_epi64(p1, 32), x1), _mm_set1_epi64x(k0));
            x1 = p1;
            x2 = _mm_xor_si128(_mm_xor_si128(_mm_srli_epi64(p0, 32), x3), _mm_set1_epi64x(k1));
            x3 = p0;
            k0 += PHILOX_W0;
            k1 += PHILOX_W1;
        }
        const __m128i lo = _mm_set1_epi64x(LO32);
        const __m128i ab = _mm_or_si128(_mm_and_si128(x0, lo), _mm_slli_epi64(x1, 32));
        const __m128i cd = _mm_or_si128(_mm_and_si128(x2, lo), _mm_slli_epi64(x3, 32));
        _mm_storeu_si128((__m128i *)(void *)(out + 4 * g), _mm_unpacklo_epi64(ab, cd));
        _mm_storeu_si128((__m128i *)(void *)(out + 4 * g + 4), _mm_unpackhi_epi64(ab, cd));
    }
}

/* V registers of four blocks each, side by side to hide latency (V a constant where inlined) */
__attribute__((target("avx2"), always_inline)) static inline void philox_avx2_v(uint32_t ctr[4], const uint32_t key[2],
                                                                                uint32_t *out, const unsigned V) {
    __m256i x0[BLOCKS / 4], x1[BLOCKS / 4], x2[BLOCKS / 4], x3[BLOCKS / 4];
    if (ctr[0] <= UINT32_MAX - 4 * V) { /* no carry into ctr[1] in this batch */
        for (unsigned v = 0; v < V; v++) {
            x0[v] = _mm256_add_epi64(_mm256_set1_epi64x(ctr[0]), _mm256_set_epi64x(4 * v + 3, 4 * v + 2, 4 * v + 1, 4 * v));
            x1[v] = _mm256_set1_epi64x(ctr[1]);
            x2[v] = _mm256_set1_epi64x(ctr[2]);
            x3[v] = _mm256_set1_epi64x(ctr[3]);
        }
        ctr[0] += 4 * V;
    } else {
        uint64_t c[BLOCKS][4];
        next_counters(ctr, c, 4 * V);
        for (unsigned v = 0; v < V; v++) {
            const unsigned g = 4 * v;
            x0[v] = _mm256_set_epi64x((long long)c[g + 3][0], (long long)c[g + 2][0], (long long)c[g + 1][0], (long long)c[g][0]);
            x1[v] = _mm256_set_epi64x((long long)c[g + 3][1], (long long)c[g + 2][1], (long long)c[g + 1][1], (long long)c[g][1]);
            x2[v] = _mm256_set_epi64x((long long)c[g + 3][2], (long long)c[g + 2][2], (long long)c[g + 1][2], (long long)c[g][2]);
            x3[v] = _mm256_set_epi64x((long long)c[g + 3][3], (long long)c[g + 2][3], (long long)c[g + 1][3], (long long)c[g][3]);
        }
    }
    const __m256i m0 = _mm256_set1_epi64x(PHILOX_M0), m1 = _mm256_set1_epi64x(PHILOX_M1);
    uint32_t k0 = key[0], k1 = key[1];
    for (int round = 0; round < 10; round++) {
        const __m256i vk0 = _mm256_set1_epi64x(k0), vk1 = _mm256_set1_epi64x(k1);
        for (unsigned v = 0; v < V; v++) {
            const __m256i p0 = _mm256_mul_epu32(x0[v], m0), p1 = _mm256_mul_epu32(x2[v], m1);
            x0[v] = _mm256_xor_si256(_mm256_xor_si256(_mm256_srli_epi64(p1, 32), x1[v]), vk0);
            x1[v] = p1;
            x2[v] = _mm256_xor_si256(_mm256_xor_si256(_mm256_srli_epi64(p0, 32), x3[v]), vk1);
            x3[v] = p0;
        }
        k0 += PHILOX_W0;
        k1 += PHILOX_W1;
    }
    const __m256i lo = _mm256_set1_epi64x(LO32);
    for (unsigned v = 0; v < V; v++) {
        const __m256i ab = _mm256_or_si256(_mm256_and_si256(x0[v], lo), _mm256_slli_epi64(x1[v], 32));
        const __m256i cd = _mm256_or_si256(_mm256_and_si256(x2[v], lo), _mm256_slli_epi64(x3[v], 32));
        const __m256i b02 = _mm256_unpacklo_epi64(ab, cd), b13 = _mm256_unpackhi_epi64(ab, cd);
        _mm256_storeu_si256((__m256i *)(void *)(out + 16 * v), _mm256_permute2x128_si256(b02, b13, 0x20));
        _mm256_storeu_si256((__m256i *)(void *)(out + 16 * v + 8), _mm256_permute2x128_si256(b02, b13, 0x31));
    }
}

/* 16 blocks (the full batch), 8 or 4: a small shuffle needs few words */
__attribute__((target("avx2"))) static void philox_batch_avx2(uint32_t ctr[4], const uint32_t key[2], uint32_t *out,
                                                              unsigned blocks) {
    if (blocks == BLOCKS) philox_avx2_v(ctr, key, out, BLOCKS / 4);
    else if (blocks == 8) philox_avx2_v(ctr, key, out, 2);
    else philox_avx2_v(ctr, key, out, 1);
}

static bool batch_avx2_allowed = true; /* tests: false keeps the SSE2 copy */

bool fri_rng_batch_allow_avx2(bool allow) {
    bool was = batch_avx2_allowed;
    batch_avx2_allowed = allow;
    return was && __builtin_cpu_supports("avx2");
}

static void philox_batch(uint32_t ctr[4], const uint32_t key[2], uint32_t *out, unsigned blocks) {
    if (batch_avx2_allowed && __builtin_cpu_supports("avx2")) philox_batch_avx2(ctr, key, out, blocks);
    else philox_batch_sse2(ctr, key, out, blocks);
}
#else
bool fri_rng_batch_allow_avx2(bool allow) {
    (void)allow;
    return false;
}

static void philox_batch(uint32_t ctr[4], const uint32_t key[2], uint32_t *out, unsigned blocks) {
    for (unsigned b = 0; b < blocks; b++) {
        fr_philox4x32_10(ctr, key, out + 4 * b);
        ctr_advance(ctr, 1);
    }
}
#endif

void fri_rng_batch_begin(fri_rng_batch *b, fr_rng *r) { fri_rng_batch_begin_for(b, r, UINT64_MAX); }

void fri_rng_batch_begin_for(fri_rng_batch *b, fr_rng *r, uint64_t words) {
    b->r = r;
    b->want = words;
    b->at = 0;
    b->n = 0;
    for (unsigned i = r->pos; i < 4; i++) b->w[b->n++] = r->buf[i]; /* the block being read */
    b->made = b->n;
    memcpy(b->ctr, r->ctr, sizeof b->ctr);
}

void fri_rng_batch_fill(fri_rng_batch *b) {
    /* the words still expected (all handed out now), in 16s: 4, 8 or 16 blocks */
    uint64_t left = b->want > b->made ? b->want - b->made : 0;
    unsigned blocks = left > 32 ? BLOCKS : left > 16 ? 8 : 4;
    philox_batch(b->ctr, b->r->key, b->w, blocks);
    b->at = 0;
    b->n = 4 * blocks;
    b->made += 4 * blocks;
}

void fri_rng_batch_end(fri_rng_batch *b) { fri_rng_skip(b->r, b->made - (b->n - b->at)); }

uint32_t fr_rng_u32(fr_rng *r) {
    if (r->pos >= 4) refill(r);
    return r->buf[r->pos++];
}

uint64_t fr_rng_u64(fr_rng *r) {
    uint64_t lo = fr_rng_u32(r);
    return lo | ((uint64_t)fr_rng_u32(r) << 32);
}

uint32_t fr_rng_below(fr_rng *r, uint32_t n) {
    /* Lemire (2019): multiply, reject the biased low region. */
    uint64_t m = (uint64_t)fr_rng_u32(r) * n;
    uint32_t l = (uint32_t)m;
    if (l < n) {
        uint32_t t = (0u - n) % n;
        while (l < t) {
            m = (uint64_t)fr_rng_u32(r) * n;
            l = (uint32_t)m;
        }
    }
    return (uint32_t)(m >> 32);
}

uint64_t fr_rng_below64(fr_rng *r, uint64_t n) {
    if (n <= UINT32_MAX) return fr_rng_below(r, (uint32_t)n);
    /* Rejection on the smallest covering power of two: unbiased, expected < 2 draws. */
    uint64_t mask = n - 1;
    mask |= mask >> 1; mask |= mask >> 2; mask |= mask >> 4;
    mask |= mask >> 8; mask |= mask >> 16; mask |= mask >> 32;
    uint64_t x;
    do x = fr_rng_u64(r) & mask; while (x >= n);
    return x;
}

double fr_rng_double(fr_rng *r) { return (double)(fr_rng_u64(r) >> 11) * 0x1.0p-53; }

float fr_rng_float(fr_rng *r) { return (float)(fr_rng_u32(r) >> 8) * 0x1.0p-24f; }

double fr_rng_normal(fr_rng *r) {
    if (r->has_normal) {
        r->has_normal = 0;
        return r->normal;
    }
    double u1 = 1.0 - fr_rng_double(r); /* (0, 1]: log is finite */
    double u2 = fr_rng_double(r);
    double rad = sqrt(-2.0 * log(u1));
    double th = 6.283185307179586476925 * u2;
    r->normal = rad * sin(th);
    r->has_normal = 1;
    return rad * cos(th);
}

void fr_rng_shuffle_u32(fr_rng *r, uint32_t *a, size_t n) {
    size_t i = n;
    for (; i > UINT32_MAX; i--) { /* fr_rng_below64's 64-bit draws */
        size_t j = (size_t)fr_rng_below64(r, i);
        uint32_t t = a[i - 1];
        a[i - 1] = a[j];
        a[j] = t;
    }
    fri_rng_batch b; /* the rest: fr_rng_below's draws, from a batch */
    fri_rng_batch_begin(&b, r);
    for (; i > 1; i--) {
        size_t j = fri_rng_batch_below(&b, (uint32_t)i);
        uint32_t t = a[i - 1];
        a[i - 1] = a[j];
        a[j] = t;
    }
    fri_rng_batch_end(&b);
}

/* Floyd's algorithm with an open-addressing set of size >= 2k, then a shuffle so the
 * order is uniform too. */
fr_err fr_rng_sample(fr_rng *r, uint32_t n, uint32_t k, uint32_t *out) {
    if (k > n) return fri_fail(FR_ERR_INVALID, "cannot sample %u distinct values from %u", k, n);
    if (k == 0) return FR_OK;
    size_t cap = 16;
    while (cap < 2 * (size_t)k) cap <<= 1;
    uint32_t *set = fri_malloc(cap * sizeof *set);
    if (!set) return FR_ERR_NOMEM;
    memset(set, 0xff, cap * sizeof *set); /* UINT32_MAX = empty; values are < n <= UINT32_MAX */
    size_t mask = cap - 1, m = 0;
    for (uint64_t j = (uint64_t)n - k; j < n; j++) {
        uint32_t t = fr_rng_below(r, (uint32_t)j + 1);
        for (int pass = 0; pass < 2; pass++) {
            size_t h = ((uint64_t)t * 0x9E3779B97F4A7C15ull) >> 20 & mask;
            while (set[h] != UINT32_MAX && set[h] != t) h = (h + 1) & mask;
            if (set[h] == UINT32_MAX) {
                set[h] = t;
                out[m++] = t;
                break;
            }
            t = (uint32_t)j; /* t was taken: j is certainly not */
        }
    }
    fri_free(set);
    fr_rng_shuffle_u32(r, out, k);
    return FR_OK;
}

/* ------------------------------------------------------------ alias sampler */

void fri_alias_build(fri_alias_col *t, const double *w, uint32_t n, double *scaled, uint32_t *small, uint32_t *large) {
    double sum = 0;
    for (uint32_t i = 0; i < n; i++) sum += w[i];
    size_t ns = 0, nl = 0;
    for (uint32_t i = 0; i < n; i++) {
        scaled[i] = w[i] * n / sum;
        if (scaled[i] < 1.0) small[ns++] = i; else large[nl++] = i;
    }
    while (ns && nl) {
        uint32_t sm = small[--ns], l = large[nl - 1];
        t[sm].p = (float)scaled[sm];
        t[sm].alias = l;
        scaled[l] -= 1.0 - scaled[sm];
        if (scaled[l] < 1.0) { nl--; small[ns++] = l; }
    }
    /* Leftovers (rounding) keep their own outcome. */
    while (nl) { uint32_t l = large[--nl]; t[l].p = 1.0f; t[l].alias = l; }
    while (ns) { uint32_t sm = small[--ns]; t[sm].p = 1.0f; t[sm].alias = sm; }
}

struct fr_zipf {
    uint32_t n;
    fri_alias_col *col; /* [n] */
};

fr_err fr_zipf_create_weights(fr_zipf **out, const double *w, uint32_t n) {
    *out = NULL;
    if (n == 0) return fri_fail(FR_ERR_INVALID, "discrete sampler over an empty set");
    double sum = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (!(w[i] >= 0) || !isfinite(w[i]))
            return fri_fail(FR_ERR_INVALID, "sampler weight %u is %g; expected a finite value >= 0", i, w[i]);
        sum += w[i];
    }
    if (!(sum > 0)) return fri_fail(FR_ERR_INVALID, "sampler weights sum to 0");
    fr_zipf *z = fri_calloc(1, sizeof *z);
    double *scaled = fri_malloc((size_t)n * sizeof *scaled);
    uint32_t *small = fri_malloc((size_t)n * sizeof *small), *large = fri_malloc((size_t)n * sizeof *large);
    if (z) {
        z->n = n;
        z->col = fri_malloc((size_t)n * sizeof *z->col);
    }
    if (!z || !z->col || !scaled || !small || !large) {
        fri_free(scaled); fri_free(small); fri_free(large);
        fr_zipf_free(z);
        return FR_ERR_NOMEM;
    }
    fri_alias_build(z->col, w, n, scaled, small, large);
    fri_free(scaled); fri_free(small); fri_free(large);
    *out = z;
    return FR_OK;
}

fr_err fr_zipf_create(fr_zipf **out, uint32_t n, double s) {
    *out = NULL;
    if (n == 0 || !(s >= 0) || !isfinite(s))
        return fri_fail(FR_ERR_INVALID, "zipf over %u values with exponent %g; expected n > 0 and s >= 0", n, s);
    double *w = fri_malloc((size_t)n * sizeof *w);
    if (!w) return FR_ERR_NOMEM;
    for (uint32_t i = 0; i < n; i++) w[i] = pow((double)i + 1.0, -s);
    fr_err e = fr_zipf_create_weights(out, w, n);
    fri_free(w);
    return e;
}

uint32_t fr_zipf_draw(const fr_zipf *z, fr_rng *r) {
    uint32_t i = fr_rng_below(r, z->n);
    return fr_rng_float(r) < z->col[i].p ? i : z->col[i].alias;
}

void fr_zipf_free(fr_zipf *z) {
    if (!z) return;
    fri_free(z->col);
    fri_free(z);
}
