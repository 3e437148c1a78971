/* Noise for differential privacy (privacy.h): a ChaCha20 keystream and an exact sampler
 * of the discrete Gaussian on the integers (Canonne, Kamath and Steinke, "The Discrete
 * Gaussian for Differential Privacy", 2020).
 *
 * Invariants:
 *   - Sound for DP: every accept/reject decision is a comparison of uniform integers
 *     with exact rationals (Bernoulli(p/q) = [uniform below q < p]); exp(-gamma) is
 *     sampled by the alternating-series construction (CKS Algorithm 1), never computed
 *     in floating point, so no rounding shapes the output distribution (the classic
 *     floating-point Gaussian's holes, Mironov 2012, cannot occur).
 *   - The numbers of a decision fit in 256 bits for sigma <= 2^56: the proposal is cut at
 *     |x| < 2^62 (see fr_dp_discrete_gaussian), (|x|·t - sigma^2)^2 < 2^238 and
 *     2 sigma^2 t^2 < 2^227. Uniforms below a 256-bit bound are drawn lazily from the
 *     top word down and stop as soon as the comparison is decided: the same decision a
 *     full draw would make, at about one word.
 *   - Randomness is libsodium's ChaCha20 under a key from randombytes_buf (or, for tests,
 *     a key derived from the seed); the noise added to a vector is cut in fixed chunks,
 *     each with its own nonce, so it is the same whatever the threads. */
#include <sodium.h>

#include "core/core.h"
#include "fedrec/privacy.h"

__extension__ typedef unsigned __int128 u128; /* gcc and clang; -Wpedantic knows it as an extension */

/* ------------------------------------------------------------------ the stream */

#define STREAM_WORDS 256 /* 2 KiB of keystream per refill: 32 ChaCha20 blocks */

struct fr_dp_stream {
    uint8_t key[FR_DP_KEY_BYTES];
    uint8_t nonce[8];
    uint64_t block;              /* next block counter */
    unsigned pos;                /* next unread word of buf */
    uint64_t bits;               /* unused random bits of the last word taken for small draws */
    unsigned nbits;              /* how many */
    uint64_t buf[STREAM_WORDS];
};

static const uint8_t zeros[STREAM_WORDS * 8];

static void stream_init(fr_dp_stream *s, const uint8_t *key, uint64_t nonce) {
    memcpy(s->key, key, FR_DP_KEY_BYTES);
    fri_put_u64(s->nonce, nonce);
    s->block = 0;
    s->pos = STREAM_WORDS;
    s->bits = 0;
    s->nbits = 0;
}

static void refill(fr_dp_stream *s) {
    uint8_t *b = (uint8_t *)s->buf;
    crypto_stream_chacha20_xor_ic(b, zeros, sizeof zeros, s->nonce, s->block, s->key);
    s->block += sizeof zeros / 64;
    for (unsigned i = 0; i < STREAM_WORDS; i++) s->buf[i] = fri_get_u64(b + 8 * i); /* little-endian words */
    s->pos = 0;
}

static inline uint64_t next(fr_dp_stream *s) {
    if (s->pos == STREAM_WORDS) refill(s);
    return s->buf[s->pos++];
}

fr_err fr_dp_stream_create(fr_dp_stream **out, const uint8_t *key, uint64_t nonce) {
    *out = NULL;
    if (!key) return fri_fail(FR_ERR_INVALID, "noise stream: NULL key");
    fr_err e = fri_sodium_init();
    if (e) return e;
    fr_dp_stream *s = fri_malloc(sizeof *s);
    if (!s) return FR_ERR_NOMEM;
    stream_init(s, key, nonce);
    *out = s;
    return FR_OK;
}

void fr_dp_stream_free(fr_dp_stream *s) {
    if (!s) return;
    sodium_memzero(s, sizeof *s);
    fri_free(s);
}

uint64_t fr_dp_stream_u64(fr_dp_stream *s) { return next(s); }

fr_err fr_dp_random_key(uint8_t key[FR_DP_KEY_BYTES]) {
    fr_err e = fri_sodium_init();
    if (e) return e;
    randombytes_buf(key, FR_DP_KEY_BYTES);
    return FR_OK;
}

void fr_dp_seeded_key(uint8_t key[FR_DP_KEY_BYTES], uint64_t seed, uint32_t round, uint32_t client, uint32_t purpose) {
    fr_rng r;
    fr_rng_init(&r, seed, round, client, purpose);
    for (int i = 0; i < FR_DP_KEY_BYTES / 4; i++) fri_put_u32(key + 4 * i, fr_rng_u32(&r));
}

/* ------------------------------------------------------------------ exact Bernoullis */

/* k in [1, 63] fresh random bits: small draws share a word (the bits left in a word too
 * short for a draw are dropped, which keeps every draw independent and uniform). */
static inline uint64_t take_bits(fr_dp_stream *s, unsigned k) {
    if (s->nbits < k) {
        s->bits = next(s);
        s->nbits = 64;
    }
    uint64_t v = s->bits & ((UINT64_C(1) << k) - 1);
    s->bits >>= k;
    s->nbits -= k;
    return v;
}

/* Uniform in [0, n), n >= 1: the bits of n - 1, rejected when >= n (exact). */
static inline uint64_t below(fr_dp_stream *s, uint64_t n) {
    if (n == 1) return 0;
    unsigned k = 64 - (unsigned)__builtin_clzll(n - 1);
    for (;;) {
        uint64_t v = k == 64 ? next(s) : take_bits(s, k);
        if (v < n) return v;
    }
}

/* Bernoulli(exp(-1)) (CKS Algorithm 1 with gamma = 1: Bernoulli(1/K) until one fails). */
static inline bool bern_exp_one(fr_dp_stream *s) {
    uint64_t k = 1;
    while (below(s, k) == 0) k++;
    return (k & 1) == 1;
}

/* Bernoulli(exp(-num/den)) for 0 <= num <= den < 2^64: Bernoulli(gamma / K) drawn as
 * Bernoulli(1/K) and Bernoulli(num/den) together. */
static inline bool bern_exp_small(fr_dp_stream *s, uint64_t num, uint64_t den) {
    uint64_t k = 1;
    while (below(s, k) == 0 && below(s, den) < num) k++;
    return (k & 1) == 1;
}

/* 256-bit unsigned integers, 4 little-endian limbs. */
typedef struct { uint64_t w[4]; } u256;

static u256 mul128(u128 a, u128 b) {
    uint64_t a0 = (uint64_t)a, a1 = (uint64_t)(a >> 64), b0 = (uint64_t)b, b1 = (uint64_t)(b >> 64);
    u128 p00 = (u128)a0 * b0, p01 = (u128)a0 * b1,
                      p10 = (u128)a1 * b0, p11 = (u128)a1 * b1;
    u256 r;
    r.w[0] = (uint64_t)p00;
    u128 mid = (p00 >> 64) + (uint64_t)p01 + (uint64_t)p10; /* < 3 * 2^64 */
    r.w[1] = (uint64_t)mid;
    u128 hi = (mid >> 64) + (p01 >> 64) + (p10 >> 64) + (uint64_t)p11;
    r.w[2] = (uint64_t)hi;
    r.w[3] = (uint64_t)((hi >> 64) + (p11 >> 64));
    return r;
}

static int cmp256(const u256 *a, const u256 *b) {
    for (int i = 3; i >= 0; i--)
        if (a->w[i] != b->w[i]) return a->w[i] < b->w[i] ? -1 : 1;
    return 0;
}

static void sub256(u256 *a, const u256 *b) { /* a -= b, a >= b */
    uint64_t borrow = 0;
    for (int i = 0; i < 4; i++) {
        uint64_t x = a->w[i], y = b->w[i];
        uint64_t d = x - y - borrow;
        borrow = (x < y) || (x == y && borrow) ? 1 : 0;
        a->w[i] = d;
    }
}

/* Bernoulli(num/den), num < den, den > 0: a uniform V below den, drawn lazily from the
 * top limb down, compared with num. A limb decides V < den (or rejects V >= den: the
 * whole draw restarts) and V < num as soon as it differs from theirs; the lower limbs,
 * unread, could not change either comparison, so this is the full draw's decision. */
static bool bern_frac256(fr_dp_stream *s, const u256 *num, const u256 *den) {
    int top = 3;
    while (top > 0 && den->w[top] == 0) top--;
    uint64_t mask = den->w[top] ? UINT64_MAX >> __builtin_clzll(den->w[top]) : 0;
    for (;;) {
        int st_d = 0, st_n = 0; /* 0: equal so far; -1: V below; +1: V above */
        bool reject = false;
        for (int i = top; i >= 0; i--) {
            uint64_t v = next(s);
            if (i == top) v &= mask;
            if (st_d == 0) {
                if (v > den->w[i]) { reject = true; break; }
                if (v < den->w[i]) st_d = -1;
            }
            if (st_n == 0 && v != num->w[i]) st_n = v < num->w[i] ? -1 : 1;
            if (st_d == -1 && st_n != 0) return st_n < 0;
        }
        if (reject || st_d == 0) continue; /* V >= den */
        return st_n < 0;                   /* V == num when st_n is 0: not below */
    }
}

/* Bernoulli(exp(-num/den)) for any num >= 0, den > 0: one Bernoulli(exp(-1)) per whole
 * unit of gamma (stopping at the first failure), then CKS Algorithm 1 on the fraction. */
static bool bern_exp256(fr_dp_stream *s, u256 num, const u256 *den) {
    while (cmp256(&num, den) >= 0) {
        if (!bern_exp_one(s)) return false;
        sub256(&num, den);
    }
    uint64_t k = 1;
    while (below(s, k) == 0 && bern_frac256(s, &num, den)) k++;
    return (k & 1) == 1;
}

/* ------------------------------------------------------------------ discrete Gaussian */

#define X_LIMIT ((uint64_t)1 << 62)

/* The discrete Laplace of scale t, P(x) proportional to exp(-|x|/t) (CKS Algorithm 2),
 * cut at |x| < 2^62 (a draw beyond is redrawn). */
static int64_t discrete_laplace(fr_dp_stream *s, uint64_t t) {
    for (;;) {
        uint64_t u = below(s, t);
        if (!bern_exp_small(s, u, t)) continue;
        uint64_t v = 0;
        while (bern_exp_one(s)) v++;
        if (v > (X_LIMIT - 1 - u) / t) continue;
        uint64_t x = u + t * v;
        bool neg = take_bits(s, 1) != 0;
        if (neg && x == 0) continue;
        return neg ? -(int64_t)x : (int64_t)x;
    }
}

/* sigma^2 = s^2 and t = s + 1 (CKS: t = floor(sigma) + 1); accept y with probability
 * exp(-(|y| - sigma^2/t)^2 / (2 sigma^2)) = exp(-(|y| t - s^2)^2 / (2 s^2 t^2)). */
static int64_t dgauss(fr_dp_stream *s, uint64_t sigma, const u256 *den) {
    uint64_t t = sigma + 1;
    u128 ss = (u128)sigma * sigma;
    for (;;) {
        int64_t y = discrete_laplace(s, t);
        uint64_t a = y < 0 ? (uint64_t)(-y) : (uint64_t)y;
        u128 at = (u128)a * t;
        u128 d = at >= ss ? at - ss : ss - at;
        if (bern_exp256(s, mul128(d, d), den)) return y;
    }
}

static u256 dgauss_den(uint64_t sigma) {
    u128 st = (u128)sigma * (sigma + 1);
    u256 d = mul128(st, st);
    /* times 2: d < 2^227, no carry out */
    for (int i = 3; i > 0; i--) d.w[i] = (d.w[i] << 1) | (d.w[i - 1] >> 63);
    d.w[0] <<= 1;
    return d;
}

int64_t fr_dp_discrete_gaussian(fr_dp_stream *s, uint64_t sigma) {
    if (sigma == 0) return 0;
    if (sigma > FR_DP_MAX_SIGMA) sigma = FR_DP_MAX_SIGMA;
    u256 den = dgauss_den(sigma);
    return dgauss(s, sigma, &den);
}

/* ------------------------------------------------------------------ noise on a vector */

typedef struct noise_ctx {
    int64_t *v;
    size_t n;
    uint64_t sigma;
    u256 den;
    const uint8_t *key;
    uint64_t nonce0;
} noise_ctx;

static void noise_chunk(void *ctx, size_t c, int worker) {
    (void)worker;
    noise_ctx *x = ctx;
    fr_dp_stream s;
    stream_init(&s, x->key, x->nonce0 + (uint64_t)c);
    size_t lo = c * (size_t)FR_DP_NOISE_CHUNK, hi = lo + FR_DP_NOISE_CHUNK < x->n ? lo + FR_DP_NOISE_CHUNK : x->n;
    uint64_t *v = (uint64_t *)x->v; /* modulo 2^64 */
    for (size_t i = lo; i < hi; i++) v[i] += (uint64_t)dgauss(&s, x->sigma, &x->den);
    sodium_memzero(&s, sizeof s);
}

fr_err fr_dp_add_noise(int64_t *v, size_t n, uint64_t sigma, const uint8_t key[FR_DP_KEY_BYTES], uint64_t nonce0,
                       fr_pool *pool) {
    if (sigma == 0 || n == 0) return FR_OK;
    if (sigma > FR_DP_MAX_SIGMA)
        return fri_fail(FR_ERR_INVALID, "noise: sigma %llu units, at most %llu", (unsigned long long)sigma,
                        (unsigned long long)FR_DP_MAX_SIGMA);
    if (!v || !key) return fri_fail(FR_ERR_INVALID, "noise: NULL vector or key");
    fr_err e = fri_sodium_init();
    if (e) return e;
    noise_ctx x = {v, n, sigma, dgauss_den(sigma), key, nonce0};
    size_t chunks = (n + FR_DP_NOISE_CHUNK - 1) / FR_DP_NOISE_CHUNK;
    if (pool) fr_pool_for(pool, chunks, 1, noise_chunk, &x);
    else
        for (size_t c = 0; c < chunks; c++) noise_chunk(&x, c, 0);
    return FR_OK;
}

uint64_t fr_dp_noise_chunks(size_t n) { return ((uint64_t)n + FR_DP_NOISE_CHUNK - 1) / FR_DP_NOISE_CHUNK; }
