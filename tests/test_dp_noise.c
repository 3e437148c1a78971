/* The privacy layer's clipping and noise (privacy.h), against independent computations:
 *   - the discrete Gaussian sampler against its analytic pmf exp(-x^2/2s^2)/Z: a
 *     chi-square over bins (|x| <= 4s, tails merged) for s = 1, 3, 10, 40, and the mean
 *     and variance of large-scale draws (s = 2^20, 2^40, 2^56) within 5 standard errors;
 *   - noise added to a vector is the same for 1, 2 and 3 threads, chunk by chunk;
 *   - the ChaCha20 stream is libsodium's keystream (a reference drawn with the plain
 *     crypto_stream_chacha20 call);
 *   - clipping by hand (3-4-5), rounding toward zero, and an exact 128-bit norm check of
 *     the quantized vector on vectors built to break round-to-nearest. */
#include <criterion/criterion.h>
#include <math.h>
#include <sodium.h>
#include <stdlib.h>

#include "fedrec/core.h"
#include "fedrec/privacy.h"

__extension__ typedef unsigned __int128 u128; /* gcc and clang; -Wpedantic knows it as an extension */
__extension__ typedef __int128 i128;

static fr_dp_stream *stream(uint64_t seed) {
    uint8_t key[FR_DP_KEY_BYTES];
    fr_dp_seeded_key(key, seed, 1, 0, FR_PURPOSE_TEST);
    fr_dp_stream *s = NULL;
    cr_assert_eq(fr_dp_stream_create(&s, key, 0), FR_OK);
    return s;
}

/* Wilson-Hilferty: the chi-square quantile with df degrees of freedom at z sigmas. */
static double chi2_crit(double df, double z) {
    double h = 2.0 / (9.0 * df);
    return df * pow(1.0 - h + z * sqrt(h), 3);
}

static void chi_square(uint64_t sigma, size_t n) {
    fr_dp_stream *s = stream(sigma);
    int64_t lim = (int64_t)(4 * sigma);
    size_t nb = (size_t)(2 * lim + 3); /* (-inf, -lim-1], -lim..lim, [lim+1, inf) */
    double *obs = calloc(nb, sizeof *obs), *p = calloc(nb, sizeof *p);
    /* analytic pmf, normalised over |x| <= 60 s (the rest is below 1e-700) */
    double z = 0;
    for (int64_t x = -60 * (int64_t)sigma; x <= 60 * (int64_t)sigma; x++) z += exp(-(double)x * x / (2.0 * sigma * sigma));
    for (int64_t x = -60 * (int64_t)sigma; x <= 60 * (int64_t)sigma; x++) {
        double px = exp(-(double)x * x / (2.0 * sigma * sigma)) / z;
        size_t b = x < -lim ? 0 : x > lim ? nb - 1 : (size_t)(x + lim + 1);
        p[b] += px;
    }
    double sum = 0, sum2 = 0;
    for (size_t i = 0; i < n; i++) {
        int64_t x = fr_dp_discrete_gaussian(s, sigma);
        size_t b = x < -lim ? 0 : x > lim ? nb - 1 : (size_t)(x + lim + 1);
        obs[b]++;
        sum += (double)x;
        sum2 += (double)x * (double)x;
    }
    double chi = 0;
    size_t df = 0;
    for (size_t b = 0; b < nb; b++) {
        double e = p[b] * (double)n;
        if (e < 5) continue; /* too few expected: left out (and its df) */
        chi += (obs[b] - e) * (obs[b] - e) / e;
        df++;
    }
    df -= 1;
    double crit = chi2_crit((double)df, 4.0); /* p ~ 3e-5 */
    cr_assert(chi < crit, "sigma %llu: chi-square %.1f over %zu df, critical %.1f", (unsigned long long)sigma, chi, df,
              crit);
    /* the exact variance of the discrete Gaussian (sum x^2 p(x)) */
    double var = 0;
    for (int64_t x = -60 * (int64_t)sigma; x <= 60 * (int64_t)sigma; x++)
        var += (double)x * x * exp(-(double)x * x / (2.0 * sigma * sigma)) / z;
    double mean = sum / (double)n, v = sum2 / (double)n - mean * mean;
    cr_assert(fabs(mean) < 5 * sqrt(var / (double)n), "sigma %llu: mean %g", (unsigned long long)sigma, mean);
    cr_assert(fabs(v - var) < 5 * var * sqrt(2.0 / (double)n), "sigma %llu: variance %g, expected %g",
              (unsigned long long)sigma, v, var);
    free(obs);
    free(p);
    fr_dp_stream_free(s);
}

Test(dp_noise, discrete_gaussian_matches_its_pmf) {
    chi_square(1, 200000);
    chi_square(3, 200000);
    chi_square(10, 200000);
    chi_square(40, 400000);
}

Test(dp_noise, large_scales_have_the_right_mean_and_variance) {
    const uint64_t sig[] = {(uint64_t)1 << 20, (uint64_t)1 << 40, FR_DP_MAX_SIGMA};
    for (int k = 0; k < 3; k++) {
        fr_dp_stream *s = stream(100 + (uint64_t)k);
        size_t n = 200000;
        double sd = (double)sig[k], sum = 0, sum2 = 0;
        for (size_t i = 0; i < n; i++) {
            double x = (double)fr_dp_discrete_gaussian(s, sig[k]) / sd;
            sum += x;
            sum2 += x * x;
        }
        double mean = sum / (double)n, var = sum2 / (double)n - mean * mean;
        cr_assert(fabs(mean) < 5 / sqrt((double)n), "sigma 2^%d: mean %g sigmas", k, mean);
        cr_assert(fabs(var - 1) < 5 * sqrt(2.0 / (double)n), "sigma %g: variance %g sigma^2", sd, var);
        fr_dp_stream_free(s);
    }
}

Test(dp_noise, vector_noise_is_the_same_on_any_threads) {
    size_t n = 3 * FR_DP_NOISE_CHUNK + 123;
    int64_t *a = calloc(n, 8), *b = calloc(n, 8), *c = calloc(n, 8);
    uint8_t key[FR_DP_KEY_BYTES];
    fr_dp_seeded_key(key, 5, 2, 0, FR_PURPOSE_DP);
    for (size_t i = 0; i < n; i++) a[i] = b[i] = c[i] = (int64_t)i - 7;
    fr_pool *p2 = NULL, *p3 = NULL;
    cr_assert_eq(fr_pool_create(&p2, 2), FR_OK);
    cr_assert_eq(fr_pool_create(&p3, 3), FR_OK);
    uint64_t sigma = (uint64_t)3 << 32;
    cr_assert_eq(fr_dp_add_noise(a, n, sigma, key, 0, NULL), FR_OK);
    cr_assert_eq(fr_dp_add_noise(b, n, sigma, key, 0, p2), FR_OK);
    cr_assert_eq(fr_dp_add_noise(c, n, sigma, key, 0, p3), FR_OK);
    cr_assert(memcmp(a, b, n * 8) == 0 && memcmp(a, c, n * 8) == 0);
    /* chunk 1 is the stream of nonce 1 */
    fr_dp_stream *s = NULL;
    cr_assert_eq(fr_dp_stream_create(&s, key, 1), FR_OK);
    for (size_t i = FR_DP_NOISE_CHUNK; i < FR_DP_NOISE_CHUNK + 100; i++)
        cr_assert_eq(a[i], (int64_t)i - 7 + fr_dp_discrete_gaussian(s, sigma));
    /* the noise's spread over all the coordinates */
    double s2 = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)(a[i] - ((int64_t)i - 7)) / (double)sigma;
        s2 += d * d;
    }
    cr_assert(fabs(s2 / (double)n - 1) < 5 * sqrt(2.0 / (double)n), "std %g", sqrt(s2 / (double)n));
    cr_assert_eq(fr_dp_add_noise(a, n, FR_DP_MAX_SIGMA + 1, key, 0, NULL), FR_ERR_INVALID);
    fr_dp_stream_free(s);
    fr_pool_free(p2);
    fr_pool_free(p3);
    free(a);
    free(b);
    free(c);
}

Test(dp_noise, stream_is_libsodium_chacha20) {
    uint8_t key[FR_DP_KEY_BYTES], nonce[8] = {9, 0, 0, 0, 0, 0, 0, 0};
    for (int i = 0; i < FR_DP_KEY_BYTES; i++) key[i] = (uint8_t)(3 * i + 1);
    cr_assert_eq(sodium_init() >= 0, 1);
    uint8_t ref[8 * 600];
    crypto_stream_chacha20(ref, sizeof ref, nonce, key);
    fr_dp_stream *s = NULL;
    cr_assert_eq(fr_dp_stream_create(&s, key, 9), FR_OK);
    for (int i = 0; i < 600; i++) {
        uint64_t w = 0;
        for (int b = 7; b >= 0; b--) w = (w << 8) | ref[8 * i + b];
        cr_assert_eq(fr_dp_stream_u64(s), w, "word %d", i);
    }
    fr_dp_stream_free(s);
    /* the default key: libsodium's CSPRNG, two keys differ */
    uint8_t k1[FR_DP_KEY_BYTES], k2[FR_DP_KEY_BYTES];
    cr_assert_eq(fr_dp_random_key(k1), FR_OK);
    cr_assert_eq(fr_dp_random_key(k2), FR_OK);
    cr_assert(memcmp(k1, k2, sizeof k1) != 0);
}

/* sum q^2 in 128 bits, computed here. */
static u128 sq(const int64_t *q, size_t n) {
    u128 s = 0;
    for (size_t i = 0; i < n; i++) s += (u128)((i128)q[i] * q[i]);
    return s;
}

Test(dp_noise, clipping_by_hand) {
    const double S = 4294967296.0;
    float x[2] = {3, 4};
    int64_t q[2];
    fr_dp_part p = {x, q, 2};
    double nrm;
    cr_assert_eq(fr_dp_clip_quantize(&p, 1, 1.0, S, &nrm), FR_OK);
    cr_assert_eq(nrm, 5.0);
    /* 0.6 * 2^32 = 2576980377.6 and 0.8 * 2^32 = 3435973836.8, toward zero */
    cr_assert_eq(q[0], 2576980377);
    cr_assert_eq(q[1], 3435973836);
    /* inside the ball: unchanged, truncated toward zero (also for negatives) */
    float y[3] = {0.5f, -0.25f, 1e-10f};
    int64_t r[3];
    fr_dp_part py = {y, r, 3};
    cr_assert_eq(fr_dp_clip_quantize(&py, 1, 1.0, S, &nrm), FR_OK);
    cr_assert_eq(r[0], 2147483648);
    cr_assert_eq(r[1], -1073741824);
    cr_assert_eq(r[2], 0); /* 1e-10 * 2^32 = 0.43 */
    /* two parts are one vector: (3) and (4) clip as (3, 4) */
    float a = 3, b = -4;
    int64_t qa, qb;
    fr_dp_part two[2] = {{&a, &qa, 1}, {&b, &qb, 1}};
    cr_assert_eq(fr_dp_clip_quantize(two, 2, 2.0, S, &nrm), FR_OK);
    cr_assert_eq(qa, 5153960755); /* 1.2 * 2^32 = 5153960755.2 */
    cr_assert_eq(qb, -6871947673); /* -1.6 * 2^32 = -6871947673.6 */
    /* errors */
    cr_assert_eq(fr_dp_clip_quantize(&p, 1, 0, S, NULL), FR_ERR_INVALID);
    cr_assert_eq(fr_dp_clip_quantize(&p, 1, 2e9, S, NULL), FR_ERR_INVALID);
    x[1] = NAN;
    cr_assert_eq(fr_dp_clip_quantize(&p, 1, 1, S, NULL), FR_ERR_RANGE);
}

Test(dp_noise, quantized_norm_never_exceeds_the_clip) {
    const double S = 4294967296.0;
    size_t n = 100000;
    float *x = malloc(n * sizeof *x);
    int64_t *q = malloc(n * 8);
    fr_rng r;
    fr_rng_init(&r, 3, 0, 0, FR_PURPOSE_TEST);
    for (int trial = 0; trial < 40; trial++) {
        double clip = trial < 20 ? 0.1 + trial : 1e-3 * (trial - 19);
        size_t m = trial % 3 == 0 ? n : 1 + (size_t)fr_rng_below(&r, 5000);
        for (size_t i = 0; i < m; i++) x[i] = (float)(fr_rng_normal(&r) * (trial % 2 ? 10.0 : 1e-3));
        if (trial % 5 == 4) /* every value equal, the norm a hair above the clip */
            for (size_t i = 0; i < m; i++) x[i] = (float)(clip / sqrt((double)m) * (1 + 1e-7));
        fr_dp_part p = {x, q, m};
        double nrm;
        cr_assert_eq(fr_dp_clip_quantize(&p, 1, clip, S, &nrm), FR_OK);
        uint64_t lim = (uint64_t)floor(clip * S);
        cr_assert(sq(q, m) <= (u128)lim * lim, "trial %d: the quantized norm exceeds the clip", trial);
        /* and clipping is tight: the norm reaches the clip to a part in 10^6 when clipped */
        long double got = sqrtl((long double)sq(q, m)) / S;
        if (nrm > clip) cr_assert(got > clip * (1 - 1e-6) - 1e-9 * sqrt((double)m), "trial %d: %Lg", trial, got);
    }
    free(x);
    free(q);
}
