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
 *   - Secure aggregation: SecAgg with SecAgg+'s neighbourhood graph, its client and
 *     server as state machines over bytes (the last section). */
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

/* ------------------------------------------------------------ secure aggregation */
/* Secure aggregation (Bonawitz et al. 2017, "Practical Secure Aggregation for
 * Privacy-Preserving Machine Learning") over SecAgg+'s sparse neighbourhood graph (Bell
 * et al. 2020, "Secure Single-Server Aggregation with (Poly)Logarithmic Overhead"): a
 * server learns the sum modulo 2^64 of the int64 vectors of the clients that finished,
 * and nothing else about any one of them, even when clients drop out mid-protocol.
 *
 * Parties are state machines over bytes: every step consumes the message it was sent
 * and produces the one it sends, so the simulator calls them in process and a network
 * runtime carries the same bytes. Per aggregation (a "session"; a round of fl):
 *   0 AdvertiseKeys  client → server   two fresh X25519 public keys (channel, mask)
 *                    server → client   its neighbours' keys          (fr_sa_server_message)
 *   1 ShareKeys      client → server   t-of-k Shamir shares (libgfshare) of its self-mask
 *                                      seed b_u and its mask secret key, one pair per
 *                                      neighbour, each encrypted (XChaCha20-Poly1305) under
 *                                      a key agreed with that neighbour; a hash of b_u
 *                    server → client   the ciphertexts addressed to it
 *   2 MaskedInput    client → server   y_u = x_u + PRG(b_u) + Σ_{v>u} PRG(s_uv) − Σ_{v<u} PRG(s_uv)
 *                                      mod 2^64 over its neighbours v that shared keys;
 *                                      PRG = ChaCha20 keyed by the full 256-bit seed, s_uv
 *                                      a BLAKE2b hash of the X25519 secret of u and v
 *                    server → client   for each such neighbour: survived or dropped
 *   3 Unmasking      client → server   the share of b_v for a survivor v, of v's mask key
 *                                      for a dropped v; never both for one v
 *   the server       rebuilds each survivor's b_v and each dropped client's mask key,
 *                    removes their masks: Σ x_u over the survivors, exact mod 2^64.
 *
 * Threat model: an honest-but-curious server (it follows the protocol but looks at
 * everything it holds) and honest clients. Beyond it, a client refuses an unmasking
 * request that names a neighbour twice (both shares of one client), names a client that
 * is not its neighbour, or leaves a neighbour out, and answers only once; with t > k/2 a
 * server that asks half the neighbours for one share and half for the other still cannot
 * get t of both. Public keys are not signed: a server that substitutes keys (an active
 * attacker) is out of scope, as is collusion of the server with clients.
 *
 * Graph: clients are placed on a ring in an order shuffled by the public graph_seed and
 * each is joined to the k/2 nearest on either side (a random Harary graph, as in SecAgg+),
 * or to every other client when k = n − 1 (SecAgg). A client's secrets are shared among
 * its k neighbours only, so the cost per client is O(k·L) instead of O(n·L).
 *
 * Headroom: every word of a client's vector must satisfy |x| <= bound (default
 * INT64_MAX / n), so the sum of at most n survivors fits in int64 and the result, read
 * as int64, is the true sum. A client refuses a vector outside it (FR_ERR_RANGE).
 *
 * Secrets (key pairs, seeds, shares, agreed keys) live in sodium_malloc'd memory, are
 * wiped when freed and never appear in messages to the library's log. Randomness is
 * libsodium's CSPRNG; test_seed != 0 makes every secret a function of (test_seed,
 * session, client id), for tests only.
 * Neither party is thread-safe; distinct parties may be used from distinct threads. */

/* Stages of a party. */
typedef enum fr_sa_stage {
    FR_SA_ADVERTISE = 0, /* collecting / producing public keys */
    FR_SA_SHARE = 1,     /* collecting / producing encrypted shares */
    FR_SA_MASK = 2,      /* collecting / producing masked inputs */
    FR_SA_UNMASK = 3,    /* collecting / producing unmasking shares */
    FR_SA_DONE = 4,      /* the sum was produced (server) or the last answer sent (client) */
    FR_SA_FAILED = 5     /* a step failed: the party refuses every further call */
} fr_sa_stage;

/* The protocol's parameters, the same for the server and every client of a session. */
typedef struct fr_sa_params {
    uint32_t n;          /* clients; their ids are 0 .. n-1 */
    uint32_t k;          /* neighbours per client: even and < n-1 (SecAgg+), or n-1 (SecAgg) */
    uint32_t t;          /* shares that rebuild a secret: k/2 < t <= k, t <= 255 */
    uint64_t len;        /* words per vector */
    uint64_t bound;      /* largest |x| of a word; 0: INT64_MAX / n */
    uint64_t session;    /* distinct per aggregation (a round number): binds messages and masks */
    uint64_t graph_seed; /* public seed of the neighbourhood graph */
    uint64_t test_seed;  /* 0: libsodium's CSPRNG; else deterministic secrets (tests only) */
} fr_sa_params;

/* At most this many neighbours (libgfshare shares over GF(2^8): x in 1..255). */
#define FR_SA_MAX_K 255u
/* Bytes of a message header. */
#define FR_SA_HEADER_BYTES 32u
FR_API size_t fr_sa_header_bytes(void);

/* Parameters for n clients and vectors of len words, tolerating that a fraction
 * `dropout` in [0, 0.5) of the clients drops out: t = k/2 + 1 and k the smallest even
 * number with n · P[Binomial(k, dropout) > k − t] <= 2^-sigma (the chance that some
 * client keeps fewer than t neighbours to rebuild its secrets; the binomial tail bounds the
 * hypergeometric one of a fixed dropout count), or k = n − 1 (every pair, SecAgg) when that
 * k would reach n − 1. session, graph_seed and test_seed are 0 (set them after). sigma in
 * 1..128 (40 is usual). FR_ERR_INVALID naming the bad argument; FR_ERR_RANGE when no
 * k <= FR_SA_MAX_K reaches the target. */
FR_API FR_NODISCARD fr_err fr_sa_params_choose(fr_sa_params *p, uint32_t n, uint64_t len, double dropout,
                                               uint32_t sigma);
/* The same with the correctness and the security targets apart (Bell et al. 2020 keep a
 * correctness parameter η beside the security parameter σ): t = k/2 + 1 and k the smallest
 * even number with both
 *   n · P[Binomial(k, dropout) > k − t] <= 2^-eta   (correctness: some client keeps fewer
 *       than t neighbours to rebuild its secrets, so the round is aborted with nothing
 *       applied and retried; nothing is revealed), and
 *   n · dropout^(k/2) <= 2^-sigma   (security: a run of k/2 dropped neighbours on the ring,
 *       needed to split the survivors' graph into parts whose sums the server would learn),
 * or k = n − 1 when that k would reach n − 1. eta = sigma is fr_sa_params_choose (the
 * first condition then implies the second). eta and sigma in 1..128. Errors as there. */
FR_API FR_NODISCARD fr_err fr_sa_params_choose_split(fr_sa_params *p, uint32_t n, uint64_t len, double dropout,
                                                     uint32_t sigma, uint32_t eta);
/* What the simulator and the network server choose for a round of n clients: 10% may drop
 * out; correctness 2^-30 per round (a retry), security 2^-40. */
#define FR_SA_ROUND_DROPOUT 0.1
#define FR_SA_ROUND_SIGMA 40u
#define FR_SA_ROUND_ETA 30u
/* FR_OK, or FR_ERR_INVALID explaining what is wrong (n >= 2, k, t, len >= 1, bound). */
FR_API FR_NODISCARD fr_err fr_sa_params_check(const fr_sa_params *p);
/* The neighbours of client id under p, ascending, into out[p->k]. FR_ERR_INVALID for bad
 * parameters or id, FR_ERR_NOMEM. */
FR_API FR_NODISCARD fr_err fr_sa_neighbours(const fr_sa_params *p, uint32_t id, uint32_t *out);

/* Frees a message produced by a party (wiped first: an unmasking answer holds shares).
 * NULL is ignored. */
FR_API void fr_sa_bytes_free(uint8_t *bytes, size_t n);

/* ---- client */
typedef struct fr_sa_client fr_sa_client;

/* A client with this id (0 .. n-1) under checked parameters; draws its key pairs and its
 * self-mask seed. FR_ERR_INVALID, FR_ERR_NOMEM, FR_ERR_INTERNAL (libsodium). */
FR_API FR_NODISCARD fr_err fr_sa_client_create(fr_sa_client **out, const fr_sa_params *p, uint32_t id);
FR_API void fr_sa_client_free(fr_sa_client *c);
FR_API fr_sa_stage fr_sa_client_stage(const fr_sa_client *c);

/* Each step below produces a message in *out (*out_n bytes; free with fr_sa_bytes_free)
 * and moves the client to the next stage. On any error *out is NULL and nothing is to be
 * sent. A call out of order is FR_ERR_STATE and changes nothing; any other error leaves
 * the client FAILED, its secrets wiped (FR_ERR_STATE for every later call). Errors: FR_ERR_FORMAT / FR_ERR_VERSION (a message that is not what it should be:
 * bad header, session, length, count, a client that is not a neighbour, a ciphertext that
 * does not decrypt), FR_ERR_EMPTY (fewer than t neighbours left: the session cannot
 * finish), FR_ERR_RANGE (input outside the bound), FR_ERR_NOMEM. */

/* Stage 0: the public keys. */
FR_API FR_NODISCARD fr_err fr_sa_client_advertise(fr_sa_client *c, uint8_t **out, size_t *out_n);
/* Stage 1: from the server's keys message, the encrypted shares for the neighbours it
 * lists (at least t). */
FR_API FR_NODISCARD fr_err fr_sa_client_share(fr_sa_client *c, const uint8_t *keys, size_t keys_n, uint8_t **out,
                                              size_t *out_n);
/* Stage 2: from the server's forwarded shares (at least t neighbours), the masked vector
 * of x[0, len). */
FR_API FR_NODISCARD fr_err fr_sa_client_mask(fr_sa_client *c, const int64_t *x, const uint8_t *fwd, size_t fwd_n,
                                             uint8_t **out, size_t *out_n);
/* Stage 3: from the server's unmasking request, the shares it asks for. The request must
 * name each neighbour whose shares this client holds exactly once, as survived or dropped;
 * one asking for both shares of a neighbour, for a client that is not one, or leaving one
 * out is refused (FR_ERR_FORMAT); so is one naming fewer than t survivors (FR_ERR_EMPTY:
 * this client's own seed could not be rebuilt, so the session cannot finish, and no mask
 * key share is given away for nothing). */
FR_API FR_NODISCARD fr_err fr_sa_client_unmask(fr_sa_client *c, const uint8_t *req, size_t req_n, uint8_t **out,
                                               size_t *out_n);

/* ---- server */
typedef struct fr_sa_server fr_sa_server;

FR_API FR_NODISCARD fr_err fr_sa_server_create(fr_sa_server **out, const fr_sa_params *p);
FR_API void fr_sa_server_free(fr_sa_server *s);
/* The stage whose messages the server collects. */
FR_API fr_sa_stage fr_sa_server_stage(const fr_sa_server *s);
/* Takes one client's message of the current stage. A message that is malformed, of
 * another session or stage, or a second one from the same client is refused
 * (FR_ERR_FORMAT, FR_ERR_VERSION, FR_ERR_STATE) and changes nothing: the server carries on. */
FR_API FR_NODISCARD fr_err fr_sa_server_receive(fr_sa_server *s, const uint8_t *msg, size_t n);
/* A masked input (stage MASK) taken in three steps, for a server that adds its O(len)
 * words outside its own lock while it answers other requests; the sum is the same
 * whatever the order of the adds (modulo 2^64). Begin checks msg as fr_sa_server_receive
 * would (refused: the same errors, nothing changed; FR_ERR_STATE outside stage MASK) and
 * marks the input of its client, *id, as arriving: another message of that client is
 * refused and fr_sa_server_close fails with FR_ERR_STATE until it ends. *words points into
 * msg, which must live until the add. Add sums them: it touches the sum only, so it may
 * run while other calls are made on s, but not beside another add, a close or a finish
 * (the caller orders them). End (after the add, or instead of it with added false: the
 * client then has not sent it) makes the client masked. FR_ERR_STATE if id has none begun. */
FR_API FR_NODISCARD fr_err fr_sa_server_masked_begin(fr_sa_server *s, const uint8_t *msg, size_t n, uint32_t *id,
                                                     const uint8_t **words);
FR_API void fr_sa_server_masked_add(fr_sa_server *s, const uint8_t *words);
FR_API FR_NODISCARD fr_err fr_sa_server_masked_end(fr_sa_server *s, uint32_t id, bool added);
/* Closes the current stage (its deadline passed or every client answered): whoever has
 * not sent its message by now has dropped out. After AdvertiseKeys, ShareKeys and
 * MaskedInput; FR_ERR_STATE otherwise. FR_ERR_EMPTY (and FAILED) when no client is left. */
FR_API FR_NODISCARD fr_err fr_sa_server_close(fr_sa_server *s);
/* Whether client id is still in the session (sent every message so far). */
FR_API bool fr_sa_server_has(const fr_sa_server *s, uint32_t id);
/* The message for client id after a stage was closed: its neighbours' keys (stage SHARE),
 * the ciphertexts addressed to it (MASK) or its unmasking request (UNMASK).
 * FR_ERR_STATE if id dropped out or there is no message now. */
FR_API FR_NODISCARD fr_err fr_sa_server_message(fr_sa_server *s, uint32_t id, uint8_t **out, size_t *out_n);
/* After the unmasking answers: the sum over the survivors (the clients whose masked input
 * arrived), sum[0, len) as int64, and their number in *survivors (may be NULL). Needs t
 * shares of every survivor's seed and of every dropped neighbour's mask key: with fewer
 * FR_ERR_EMPTY naming the client, the session FAILED and sum untouched. FR_ERR_FORMAT if
 * a rebuilt secret does not match what its owner committed to. */
FR_API FR_NODISCARD fr_err fr_sa_server_finish(fr_sa_server *s, int64_t *sum, uint32_t *survivors);
/* In the unmasking stage: whether the answers so far already hold t shares of every secret
 * fr_sa_server_finish needs (every survivor's seed, every dropped neighbour's mask key), so
 * finishing now gives the same sum as waiting for the rest (the survivors were fixed when
 * the masked inputs' stage closed; later answers only add shares). false otherwise. */
FR_API bool fr_sa_server_can_finish(const fr_sa_server *s);

#endif
