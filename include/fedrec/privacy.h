/* fedrec privacy: transforms over plain vectors and bytes that know nothing of rounds
 * (DESIGN.md, layer 5).
 *   - The accountant: Rényi DP of the Poisson-subsampled Gaussian mechanism (Mironov,
 *     Talwar and Zhang 2019), composed over steps and converted to (ε, δ) with the
 *     improved conversion of Balle et al. 2020.
 *   - Clipping: a vector in pieces clipped to an L2 norm and quantized to fixed point
 *     with the bound checked exactly in integers.
 *   - Noise: a sampler of the discrete Gaussian on the integers that is sound for
 *     differential privacy (exact integer arithmetic, ChaCha20 randomness keyed from
 *     libsodium's CSPRNG), and its addition to a fixed-point vector.
 * Later sections (secure aggregation) join this header. */
#ifndef FEDREC_PRIVACY_H
#define FEDREC_PRIVACY_H
#include <stddef.h>
#include <stdint.h>

#include "fedrec/core.h"

/* ------------------------------------------------------------------ accountant */

/* The accountant works with the Rényi DP (RDP) of the Poisson-subsampled Gaussian mechanism:
 * each step samples every record (a client, in federated learning) with probability q and
 * adds Gaussian noise of standard deviation sigma times the sensitivity. RDP is exact at
 * integer and fractional orders (Mironov et al. 2019, section 3.3), adds over steps, and
 * converts to (ε, δ) by Balle et al. 2020, Theorem 21 (the conversion opacus and
 * dp-accounting use), minimised over the orders. Every function here is pure: thread-safe,
 * no allocation. Arguments are checked: FR_ERR_INVALID names the bad one, its value and
 * the allowed range. */

/* The largest Rényi order accepted (the work at order α is O(α)). */
#define FR_DP_MAX_ORDER 1000000
/* The range fr_dp_sigma_for_epsilon searches. */
#define FR_DP_SIGMA_SEARCH_MIN 1e-6
#define FR_DP_SIGMA_SEARCH_MAX 1e6

/* The Rényi orders the accountant evaluates by default (all > 1, increasing), and how
 * many there are: 1.1 to 10.9 by 0.1, 11 to 64, then up to 4096 (a superset of
 * dp-accounting's default orders). */
FR_API const double *fr_dp_default_orders(size_t *n);

/* RDP of one step (q in [0, 1], sigma > 0 finite) at each order: rdp[k] for orders[k]
 * (orders NULL: the default orders, n_orders ignored; rdp must then hold as many). q = 0
 * gives 0, q = 1 gives α/(2σ²). A sigma so small (< 1e-100) that RDP exceeds any double
 * gives +inf. */
FR_API FR_NODISCARD fr_err fr_dp_rdp(double q, double sigma, const double *orders, size_t n_orders, double *rdp);

/* Composition: adds the RDP of `steps` steps (q, sigma) into rdp[0..n_orders) (orders
 * NULL: the defaults). Calls for steps of different q or sigma add up to their
 * heterogeneous composition; start from zeros. */
FR_API FR_NODISCARD fr_err fr_dp_rdp_compose(double q, double sigma, uint64_t steps, const double *orders,
                                             size_t n_orders, double *rdp);

/* ε at δ in (0, 1) of a mechanism with RDP rdp[k] (>= 0) at orders[k] (NULL: the
 * defaults): min over k of r + log(1 − 1/α) − (log δ + log α)/(α − 1), 0 at an order
 * where δ >= sqrt(1 − e^{−r}), never below 0. *order gets the minimising order when not
 * NULL. FR_ERR_RANGE when ε is infinite (every rdp[k] is). */
FR_API FR_NODISCARD fr_err fr_dp_epsilon_from_rdp(const double *orders, const double *rdp, size_t n_orders,
                                                  double delta, double *eps, double *order);

/* ε of `steps` compositions of the Poisson-subsampled Gaussian mechanism with sampling
 * rate q in [0, 1] and noise multiplier sigma > 0 (noise std = sigma * sensitivity), at
 * δ in (0, 1), minimised over the orders (orders NULL: fr_dp_default_orders). *order gets
 * the minimising order when not NULL. steps 0 gives ε = 0. FR_ERR_INVALID naming the
 * bad argument, its value and the allowed range; FR_ERR_RANGE when ε is beyond a double
 * (sigma < 1e-100). */
FR_API FR_NODISCARD fr_err fr_dp_epsilon(double q, double sigma, uint64_t steps, double delta, const double *orders,
                                         size_t n_orders, double *eps, double *order);

/* The smallest noise multiplier whose ε after `steps` at δ is at most target_eps (to a
 * relative 1e-6; the returned sigma always meets the target), over the default orders.
 * FR_ERR_INVALID for bad arguments (and for q = 0 or steps = 0, which meet any target);
 * FR_ERR_RANGE when no sigma up to FR_DP_SIGMA_SEARCH_MAX reaches the target, or when
 * even FR_DP_SIGMA_SEARCH_MIN meets it. */
FR_API FR_NODISCARD fr_err fr_dp_sigma_for_epsilon(double q, uint64_t steps, double delta, double target_eps,
                                                   double *sigma);

/* ------------------------------------------------------------------ clipping */

/* One piece of a vector that is clipped as a whole (a client's dense part, each of its
 * item rows' value arrays): n floats at x, their fixed-point values written to q. */
typedef struct fr_dp_part {
    const float *x;   /* [n] the values */
    int64_t *q;       /* [n] out: the clipped values in units of 1/scale */
    size_t n;
} fr_dp_part;

#define FR_DP_MAX_CLIP 1073741824.0 /* 2^30: clip * 2^32 must fit in an int64 */

/* L2 clipping of the vector made of parts[0, n_parts) (one vector, whatever its pieces)
 * to norm `clip`, then quantization to the grid of 1/scale: q = trunc(f * x * scale) with
 * f = min(1, clip / ||x||) (rounded toward zero, so no value grows). The guarantee is
 * checked in exact integer arithmetic, not in floats: sum q^2 <= floor(clip * scale)^2
 * (a 128-bit sum); when a product's rounding would break it, f shrinks by a part in 2^40
 * and q is recomputed until it holds. *norm (may be NULL) gets ||x|| (in double, the
 * parts in order). scale in [1, 2^32], clip in (0, FR_DP_MAX_CLIP], clip * scale < 2^62.
 * FR_ERR_INVALID (a bad clip or scale, NULL pieces), FR_ERR_RANGE (a value not finite).
 * Thread-safe (no state). */
FR_API FR_NODISCARD fr_err fr_dp_clip_quantize(const fr_dp_part *parts, size_t n_parts, double clip, double scale,
                                               double *norm);

/* ------------------------------------------------------------------ noise */

/* A ChaCha20 keystream (libsodium's crypto_stream_chacha20, 64-bit nonce and block
 * counter) read as 64-bit words: the randomness of the noise samplers. */
typedef struct fr_dp_stream fr_dp_stream;

#define FR_DP_KEY_BYTES 32

/* A stream of key (FR_DP_KEY_BYTES) and nonce. FR_ERR_NOMEM, FR_ERR_INTERNAL (libsodium
 * could not start). */
FR_API FR_NODISCARD fr_err fr_dp_stream_create(fr_dp_stream **out, const uint8_t *key, uint64_t nonce);
FR_API void fr_dp_stream_free(fr_dp_stream *s);
FR_API uint64_t fr_dp_stream_u64(fr_dp_stream *s);

/* A fresh key from libsodium's CSPRNG (randombytes_buf): the default for every noise.
 * FR_ERR_INTERNAL if libsodium could not start. */
FR_API FR_NODISCARD fr_err fr_dp_random_key(uint8_t key[FR_DP_KEY_BYTES]);
/* A key derived from (seed, round, client, purpose) (the library's counter-based stream,
 * not cryptographic): for reproducible tests and simulations only, never a deployment. */
FR_API void fr_dp_seeded_key(uint8_t key[FR_DP_KEY_BYTES], uint64_t seed, uint32_t round, uint32_t client,
                             uint32_t purpose);

/* The largest scale the discrete Gaussian sampler takes: its arithmetic is exact in 256
 * bits up to it. */
#define FR_DP_MAX_SIGMA 72057594037927936ull /* 2^56 */

/* One draw of the discrete Gaussian N_Z(0, sigma^2) on the integers, P(x) proportional
 * to exp(-x^2 / (2 sigma^2)), for an integer sigma in [1, FR_DP_MAX_SIGMA] (Canonne,
 * Kamath and Steinke 2020, Algorithm 3: a discrete Laplace proposal of scale sigma + 1
 * and an exact Bernoulli(exp(-gamma)) acceptance, all in integer arithmetic on uniform
 * draws from s; no floating point decides anything). Outcomes |x| >= 2^62 are redrawn,
 * which changes the distribution by less than exp(-2^123 / sigma^2) (e^-2048 at the
 * largest sigma). */
FR_API int64_t fr_dp_discrete_gaussian(fr_dp_stream *s, uint64_t sigma);

/* Adds an independent N_Z(0, sigma^2) to each v[i], modulo 2^64 (v is a fixed-point sum
 * being released). The coordinates are cut in chunks of FR_DP_NOISE_CHUNK, chunk c drawn
 * from the stream (key, nonce0 + c): the result does not depend on pool (may be NULL:
 * the caller's thread) or its size. Several vectors noised under one key must use
 * disjoint nonce ranges (fr_dp_noise_chunks(n) each). sigma 0 adds nothing. FR_ERR_INVALID (sigma above
 * FR_DP_MAX_SIGMA), FR_ERR_NOMEM, FR_ERR_INTERNAL. */
#define FR_DP_NOISE_CHUNK 65536
FR_API FR_NODISCARD fr_err fr_dp_add_noise(int64_t *v, size_t n, uint64_t sigma, const uint8_t key[FR_DP_KEY_BYTES],
                                           uint64_t nonce0, fr_pool *pool);
/* The nonces fr_dp_add_noise uses for n coordinates. */
FR_API uint64_t fr_dp_noise_chunks(size_t n);

#endif
