/* fedrec fl: federated learning, the same code in every runtime.
 *
 *   - fr_update: a client's change of the shared parameters after its local fit, in
 *     floats (Δ = w_k - w_t): a dense part (the small shared layers) and, per embedding
 *     table, the rows the client touched. Rows absent from an update mean Δ = 0.
 *   - Messages (the only bytes a runtime carries): the TASK the server sends down (round,
 *     the federation's config, the global shared parameters) and the RESULT a client
 *     sends up (its update weighted and in 64-bit fixed point, n_k, its training
 *     metrics). Every message has a 24-byte header:
 *       u32 magic "FRMS" (bytes 46 52 4d 53) | u16 version = 1 | u16 type (1 TASK, 2 RESULT)
 *       u64 total length of the message, header included
 *       u32 CRC-32C of the body (every byte after the header) | u32 reserved = 0
 *     Decoders trust nothing: every length and count is checked against the bytes that
 *     remain (and a RESULT against the shape the server expects) before anything is
 *     sized, so a message never makes its receiver allocate more than its own size.
 *   - The client step: TASK + the client's own data + its private state -> RESULT.
 *   - The round controller (fr_round): the server, as a state machine over bytes.
 * Body layouts are in src/fl/msg.c. */
#ifndef FEDREC_FL_H
#define FEDREC_FL_H

#include "fedrec/core.h"
#include "fedrec/data.h"
#include "fedrec/model.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ updates (in memory) */

#define FR_UPDATE_MAX_TABLES 64

typedef struct fr_update_table {
    uint32_t width;     /* w_t: floats per row */
    uint32_t count;     /* c_t: rows present */
    uint32_t *ids;      /* [count] strictly increasing row ids */
    float *values;      /* [count * width] row-major */
    size_t cap_rows;    /* rows allocated in ids/values (>= count) */
} fr_update_table;

typedef struct fr_update {
    uint64_t weight;          /* n_k: the client's training interactions */
    uint32_t client;          /* client id */
    uint32_t round;           /* round the update answers */
    uint32_t dense_len;       /* floats in dense */
    float *dense;             /* [dense_len] */
    size_t dense_cap;         /* floats allocated in dense */
    uint32_t n_tables;        /* tables in use */
    fr_update_table *tables;  /* [n_tables] */
    uint32_t tables_cap;      /* tables allocated */
} fr_update;

/* What a receiver expects of an update or a RESULT: anything else is refused. */
typedef struct fr_update_shape {
    uint32_t dense_len;        /* exact dense length */
    uint32_t n_tables;         /* exact number of tables, <= FR_UPDATE_MAX_TABLES */
    const uint32_t *widths;    /* [n_tables] exact row widths */
    const uint32_t *n_rows;    /* [n_tables] row ids must be < n_rows[t] */
} fr_update_shape;

/* An empty update (no dense part, no table). */
FR_API FR_NODISCARD fr_err fr_update_create(fr_update **out);
FR_API void fr_update_free(fr_update *u);

/* Sets the layout: dense length and the tables' widths (counts become 0). Reuses the
 * arrays it already has when they are large enough, so an update kept across rounds does
 * not reallocate. New dense values are zero. FR_ERR_INVALID (n_tables too large or a width
 * of 0), FR_ERR_NOMEM (the update keeps its previous layout). */
FR_API FR_NODISCARD fr_err fr_update_reset(fr_update *u, uint32_t dense_len, uint32_t n_tables, const uint32_t *widths);
/* Makes room for count rows in table t and sets its count; ids and values are then the
 * caller's to fill (contents of rows beyond the old count are unspecified). */
FR_API FR_NODISCARD fr_err fr_update_table_resize(fr_update *u, uint32_t t, uint32_t count);

/* ------------------------------------------------------------------ messages */

#define FR_MSG_MAGIC 0x534d5246u /* "FRMS" read as a little-endian u32 */
#define FR_MSG_VERSION 1
#define FR_MSG_TASK 1
#define FR_MSG_RESULT 2
#define FR_MSG_HEADER_BYTES 24
FR_API size_t fr_msg_header_bytes(void);

/* The type of a message whose header is intact (magic, version, length = n; the body's
 * CRC is not checked here). FR_ERR_FORMAT / FR_ERR_VERSION otherwise. For a receiver
 * that dispatches on the type. */
FR_API FR_NODISCARD fr_err fr_msg_type(const uint8_t *bytes, size_t n, uint16_t *type);

/* 64-bit fixed point: a RESULT carries round(w * Δ * 2^32), w the value's weight, as a
 * two's-complement integer, saturating at +-4.6e18 units. The server only adds integers
 * (modulo 2^64: any order, any split over workers or machines gives the same sum, which
 * is also what pairwise masks of secure aggregation need) and divides once at the end. */
#define FR_FL_FIXED_SCALE 4294967296.0 /* 2^32 */
/* The largest |value| a RESULT may carry in a round of k sampled clients is
 * FR_FL_FIXED_LIMIT / k (fr_fl_fixed_bound; k the results the round takes, its target,
 * fr_round_target): the sum of the round, over any lanes or merged
 * controllers, then stays below 2^63 and cannot overflow. A client whose update goes
 * beyond it has diverged: the client step refuses to send it (FR_ERR_RANGE naming the
 * round), and the controller refuses such a RESULT. */
#define FR_FL_FIXED_LIMIT 9223372036854775807.0 /* 2^63 - 1 */
FR_API uint64_t fr_fl_fixed_bound(uint32_t k);

typedef struct fr_result_table {
    uint32_t width;     /* floats per row of the table */
    uint32_t count;     /* rows present */
    uint32_t *ids;      /* [count] strictly increasing row ids */
    int64_t *values;    /* [count * width] fixed point, row-major */
    size_t cap_rows;    /* rows allocated */
} fr_result_table;

/* What a client sends up: its update, weighted and in fixed point, and its metrics. */
typedef struct fr_result {
    uint32_t client;          /* client id */
    uint32_t round;           /* round it answers */
    uint32_t config_crc;      /* the federation it answers (from the TASK) */
    uint64_t weight;          /* n_k: the client's training interactions */
    uint64_t examples;        /* training examples over all local epochs */
    double loss_sum;          /* example-weighted training loss over them */
    uint32_t dense_len;       /* values in dense */
    int64_t *dense;           /* [dense_len] n_k * Δ of the dense tensors, fixed point */
    size_t dense_cap;
    uint32_t n_tables;
    fr_result_table *tables;  /* [n_tables] per item table: w * Δ of its rows, w = n_k
                                 (or 1 when the federation sums item rows, item_sum) */
    uint32_t tables_cap;
    uint32_t flags;           /* FR_RESULT_* bits (0 outside DP) */
} fr_result;

/* A DP client's update had norm <= the round's clip (adaptive clipping counts them). In
 * the RESULT's header word that was reserved (0 without DP). */
#define FR_RESULT_UNCLIPPED 1u
/* Compressed RESULT values (fr_fl_config.compress_up, compress_topk): decoded by the round
 * controller (fr_round_submit); fr_result_decode reads uncompressed RESULTs only. */
#define FR_RESULT_Q8 2u
#define FR_RESULT_Q16 4u
#define FR_RESULT_TOPK 8u

FR_API FR_NODISCARD fr_err fr_result_create(fr_result **out);
FR_API void fr_result_free(fr_result *r);
/* Exact size of the encoding of r, or 0 if it does not fit in size_t. */
FR_API size_t fr_result_encoded_size(const fr_result *r);
/* Encodes r into buf[0..cap); *n gets the size. FR_ERR_RANGE if cap is too small,
 * FR_ERR_INVALID if r breaks the format (ids not strictly increasing, a zero width, too
 * many tables). */
FR_API FR_NODISCARD fr_err fr_result_encode_to(const fr_result *r, uint8_t *buf, size_t cap, size_t *n);
/* The same into a new buffer, freed with fr_msg_free. */
FR_API FR_NODISCARD fr_err fr_result_encode(const fr_result *r, uint8_t **bytes, size_t *n);
FR_API void fr_msg_free(uint8_t *bytes);
/* Decodes a RESULT into r, reusing its arrays (on failure r is valid, its contents
 * unspecified). Errors with a message naming the field, its value and what was expected:
 * FR_ERR_FORMAT (bad magic or type, truncated, trailing bytes, counts or widths not
 * matching the shape, ids not strictly increasing or out of range), FR_ERR_VERSION,
 * FR_ERR_CHECKSUM (damaged body), FR_ERR_NOMEM. */
FR_API FR_NODISCARD fr_err fr_result_decode(fr_result *r, const uint8_t *bytes, size_t n, const fr_update_shape *shape);

/* ------------------------------------------------------------------ federation config */
/* ------------------------------------------------------------------ federation config */

typedef enum fr_strategy {
    FR_STRATEGY_FEDAVG = 1,     /* w += eta_s * sum_k (n_k / sum_j n_j) * delta_k */
    FR_STRATEGY_FEDAVGM = 2,    /* server momentum on the averaged delta */
    FR_STRATEGY_FEDPROX = 3,    /* FedAvg on the server, + (mu/2)|w - w_t|^2 locally */
    FR_STRATEGY_FEDADAM = 4,    /* Reddi et al. 2021, pseudo-gradient -delta */
    FR_STRATEGY_FEDYOGI = 5,
    FR_STRATEGY_FEDADAGRAD = 6,
} fr_strategy;

/* "fedavg", ...; "?" for an unknown value. Parse: FR_ERR_INVALID naming the bad name. */
FR_API const char *fr_strategy_name(fr_strategy s);
FR_API FR_NODISCARD fr_err fr_strategy_parse(const char *name, fr_strategy *out);

#define FR_FL_MAX_LOCAL_EPOCHS 1000

typedef struct fr_fl_config {
    fr_strategy strategy;     /* server rule (fedavg) */
    float server_lr;          /* eta_s (1 for fedavg/fedavgm/fedprox, 0.01 for adaptive ones) */
    float server_momentum;    /* fedavgm beta (0.9) */
    float beta1, beta2;       /* fedadam/fedyogi moments (0.9, 0.99) */
    float tau;                /* adaptivity of fedadam/fedyogi/fedadagrad (1e-3) */
    float mu;                 /* fedprox proximal weight (0.01; other strategies ignore it) */
    bool row_norm;            /* average each item row over the clients that touched it only
                                 (weights n_k / sum_{j touched row} n_j); off = exact FedAvg */
    bool item_sum;            /* item rows take the plain SUM of the round's deltas, sum_k Δ_k,
                                 as if each client's change landed on the row (a client's
                                 Δ already grows with its examples, so no n_k weight; the
                                 sum of item gradients of federated CF). Excludes row_norm. */
    uint32_t local_epochs;    /* E (1), at most FR_FL_MAX_LOCAL_EPOCHS */
    uint32_t batch;           /* B (32) */
    uint32_t negatives;       /* training negatives per positive (4 bce, 1 bpr, 0 mse) */
    uint32_t neg_sampler;     /* fr_neg_sampler of those negatives: FR_NEG_UNIFORM (default:
                                 the TASK's config block is byte for byte that of a build
                                 without it) or FR_NEG_POPULARITY, drawn from the public item
                                 popularity each client is given (fr_client_ws_set_popularity;
                                 a client without it refuses to step) */
    float neg_pop_exp;        /* b of FR_NEG_POPULARITY: weights popularity^b, b in (0, 4]; 0
                                 (default) reads as 1. Not written with uniform negatives */
    uint32_t seq_stride;      /* a sequence model (sasrec): consecutive training windows of a
                                 user end this many items apart, 1..L (fri_examples_add_seq,
                                 fr_train_config.seq_stride); 0 (default): L, disjoint
                                 windows, and the TASK's config block is byte for byte that
                                 of a build without it. Another model refuses a nonzero one */
    fr_optim_config local;    /* the client's optimizer, fresh every round (adam 1e-3) */
    fr_optim_config item_local; /* the client's optimizer for item-table rows, fresh every
                                 round; kind 0 (the default): item rows follow `local` */
    float item_lr_decay;      /* round r steps item rows at item lr * decay^(r-1) (1: none);
                                 with `local` for items when item_local.kind is 0 */
    bool keep_private_optim;  /* the local optimizer's state for the private rows (moments,
                                 step count) is kept client-side from round to round
                                 (fr_client_private); off: fresh every round, as the
                                 shared parameters' state always is (it would cost each
                                 client a copy of the shared model) */
    bool dense_steps;         /* true: the client's optimizer steps every item row it has
                                 used at every step (PyTorch's dense rule, bit for bit,
                                 O(rows) per step); false (default): only the rows a
                                 minibatch touched, the others catching up in closed form
                                 when next touched and at the end (the same rule up to
                                 float rounding, O(rows touched) per step). Either way
                                 weight decay or FedProx make every row step densely. */
    double clients_per_round; /* 0: all; >= 1: that many; in (0, 1): that fraction (rounded
                                 up, at least 1) of the available clients */
    double availability;      /* probability a client is available in a round (1) */
    uint32_t min_results;     /* quorum: a round with fewer results applies nothing and is
                                 retried (0, the default: any number, none included) */
    uint64_t seed;            /* names every stream: (seed, round, client, purpose) */
    float confidence_alpha;   /* >= 0: with a ranking model, a client counts each positive
                                 whose rating field holds the weight r with confidence
                                 1 + alpha log(1 + r) in its local fit (its BCE term, or
                                 each of its BPR triples, scaled; sampled negatives keep
                                 1), as fr_train_config.confidence_alpha; a user without
                                 ratings (NULL) counts every positive 1. So alpha > 0 says
                                 the clients' ratings ARE weights: the sim runs with 0 on
                                 data without weights (fr_dataset_weighted). 0 (default):
                                 every positive alike, and the TASK's config block is byte
                                 for byte that of a build without weights */
    /* User-level differential privacy (DP-FedAvg, McMahan et al. 2018), on when dp_clip
     * > 0 (fr_fl_dp_on). Each client's whole update (dense part and its item rows) is
     * clipped to L2 norm C with weight 1 (not n_k), clients take part by Poisson sampling
     * with rate q = clients_per_round / N (fr_fl_dp_rate), the server adds discrete
     * Gaussian noise of std dp_noise * C to the sum over every shared coordinate and
     * divides by the expected number of clients q N. Off (all 0): the TASK's config block
     * is byte for byte that of a build without DP. */
    double dp_clip;           /* C > 0: DP on; the initial C with adaptive clipping (0: off) */
    double dp_noise;          /* sigma >= 0: the noise multiplier (the accountant's) */
    double dp_quantile;       /* gamma in (0, 1): adaptive clipping to that quantile of the
                                 update norms (Andrew et al. 2021); 0: C fixed */
    double dp_clip_lr;        /* eta_C of adaptive clipping: C *= exp(-eta_C (b - gamma)) (0.2) */
    double dp_count_noise;    /* sigma_b, the std of the noise on the unclipped count (0: the
                                 expected clients / 20, Andrew et al.'s choice) */
    double dp_delta;          /* delta of the reported epsilon (0: 1 / N^1.1) */
    double ldp_noise;         /* local DP baseline: each client adds discrete Gaussian noise of
                                 std ldp_noise * C to every value it sends (needs dp_clip) */
    bool dp_seeded_noise;     /* noise keyed from (seed, round, purpose): reproducible, for
                                 tests only; false (default): libsodium's CSPRNG */
    /* Hiding which items a client touched (docs/ARCHITECTURE.md, "Which items did this user
     * touch?"). Off (decoys 0): the TASK's config block is byte for byte that of a build
     * without it. */
    double decoys;            /* >= 0: each client pads its item rows with round(decoys x its
                                 interactions) decoy items (at least 1), drawn ONCE per client
                                 (stream (seed, 0, client, DECOYS)) from the public item
                                 popularity (fr_client_ws_set_popularity) without its own
                                 items, so they repeat round after round as its real items do.
                                 0 (default): off. At most FR_FL_MAX_DECOYS */
    bool decoy_zero;          /* decoy rows carry 0: under secure aggregation they add nothing
                                 (the model is bit-identical; so it is without, but a server
                                 that sees the rows drops the zero ones); false (default):
                                 pseudo-gradients that look like the client's real positive
                                 rows (a random one, scaled by exp(N(0, 1/4)), 0.3% noise;
                                 stream (seed, round, client, DECOY_VALUES)), which DO change
                                 the model, as FedGNN's pseudo items do (src/fl/hide.c) */
    /* Compression (docs/ARCHITECTURE.md, "Fewer bytes per round"; src/fl/compress.c). Off
     * (all 0): the TASK's config block is byte for byte that of a build without it. */
    uint32_t compress_up;     /* fr_compress of a RESULT's values: FR_COMPRESS_Q8/Q16 send each
                                 item row (and each block of FR_COMPRESS_BLOCK dense values)
                                 as one scale and 8- or 16-bit integers, stochastically
                                 rounded from (seed, round, client, COMPRESS_UP); the
                                 server decodes them into the same fixed-point sums. Not
                                 with DP (a quantized value can leave the clip ball) */
    uint32_t compress_topk;   /* K > 0: a client sends only the K dense values of largest
                                 magnitude (ties: the lower index), with error feedback:
                                 what it did not send is added to its next round's dense
                                 update (the client's residual: fri_client_ws_set_residual).
                                 0 (default): off */
    uint32_t compress_down;   /* fr_compress of the TASK's shared parameters: item rows one
                                 scale each, dense tensors per block, stochastic rounding
                                 from (seed, round, 0, COMPRESS_DOWN); clients train from
                                 the decoded model, the server keeps the exact one */
    /* Robust aggregation (src/fl/robust.c; docs/ARCHITECTURE.md, "Robust aggregators").
     * FR_AGG_FEDAVG (0, the default) is the strategy's weighted mean and the TASK's config
     * block is byte for byte that of a build without robust aggregators. Any other keeps
     * each accepted result whole on the server until the round ends: not with secure
     * aggregation (the server sees only a sum) nor with DP (the noise is calibrated to the
     * clipped sum). The aggregate replaces the averaged delta, so the strategy (fedadam,
     * ...) then steps on it as on FedAvg's. */
    uint32_t aggregator;      /* fr_aggregator */
    double agg_beta;          /* trimmed / rowtrim: fraction trimmed from each end, [0, 0.5);
                                 rowguard: the cosine of alike deltas, (0, 1] */
    double agg_clip;          /* normclip: the L2 bound C of each client's delta; 0: the median
                                 of the round's delta norms; rowguard: the row bound's
                                 multiple of the median row-delta norm, > 0 */
    uint32_t agg_f;           /* krum / multikrum: the Byzantine clients assumed, f */
    uint32_t agg_m;           /* multikrum: the clients selected, m >= 1 (krum: 1) */
} fr_fl_config;

/* fr_fl_config.aggregator. Each client counts once (its n_k is self-reported, so a
 * robust rule does not let it buy weight) except where FedAvg's weights are kept: normclip,
 * krum and multikrum aggregate the clipped / selected results with FedAvg's exact rule
 * (weights n_k; item rows by the table rule: mean, rows or sum). */
typedef enum fr_aggregator {
    FR_AGG_FEDAVG = 0,        /* the weighted mean (the strategy's own rule) */
    FR_AGG_MEDIAN = 1,        /* coordinate-wise median of the clients' deltas */
    FR_AGG_TRIMMED = 2,       /* coordinate-wise beta-trimmed mean */
    FR_AGG_NORMCLIP = 3,      /* each client's delta clipped to L2 norm C, then FedAvg */
    FR_AGG_KRUM = 4,          /* the client of least Krum score (Blanchard et al. 2017) */
    FR_AGG_MULTIKRUM = 5,     /* the m clients of least Krum score, FedAvg over them */
    FR_AGG_ROWTRIM = 6,       /* item rows: beta-trimmed mean over the clients that touched
                                 each row (its own few contributors); dense: trimmed */
    FR_AGG_ROWGUARD = 7,      /* item rows: each client's row delta clipped to agg_clip times
                                 the round's median row-delta norm, and a group of clients
                                 whose deltas of a row point alike (cosine >= agg_beta) counted
                                 as one client; dense: normclip at the median, FedAvg */
} fr_aggregator;
#define FR_AGG_LAST FR_AGG_ROWGUARD

/* Parses an aggregator as the command line writes it: fedavg | median | trimmed:BETA |
 * normclip[:C] | krum:F | multikrum:F:M | rowtrim:BETA | rowguard[:K[:COS]], into c's aggregator fields (the
 * others untouched). FR_ERR_INVALID naming what is wrong. */
FR_API FR_NODISCARD fr_err fr_aggregator_parse(const char *s, fr_fl_config *c);
/* The aggregator of c written as fr_aggregator_parse reads it, into buf (cap n). */
FR_API void fr_aggregator_format(const fr_fl_config *c, char *buf, size_t n);

/* Value encodings of fr_fl_config.compress_up / compress_down. */
typedef enum fr_compress {
    FR_COMPRESS_NONE = 0,     /* int64 fixed point up, float32 down */
    FR_COMPRESS_Q8 = 1,       /* a scale per row/block, int8 in [-127, 127] */
    FR_COMPRESS_Q16 = 2,      /* a scale per row/block, int16 in [-32767, 32767] */
} fr_compress;
#define FR_COMPRESS_BLOCK 64  /* dense values per scale */

#define FR_FL_MAX_DECOYS 100.0

/* Defaults for a model kind (the anchors' federated settings). */
FR_API void fr_fl_config_default(fr_fl_config *c, fr_model_kind kind);
/* FR_OK, or FR_ERR_INVALID naming the field, its value and the allowed range. */
FR_API FR_NODISCARD fr_err fr_fl_config_check(const fr_fl_config *c);

/* Whether c asks for differential privacy (dp_clip > 0). */
FR_API bool fr_fl_dp_on(const fr_fl_config *c);
/* The Poisson sampling rate of a DP federation of n_clients: clients_per_round / N for a
 * count, the fraction itself for one below 1, 1 for 0 (all). */
FR_API double fr_fl_dp_rate(const fr_fl_config *c, uint32_t n_clients);
/* The delta epsilon is reported at: dp_delta, or 1 / N^1.1 when it is 0. */
FR_API double fr_fl_dp_delta(const fr_fl_config *c, uint32_t n_clients);
/* The epsilon of `rounds` rounds of a DP federation of n_clients (the accountant,
 * fr_dp_epsilon, with q = fr_fl_dp_rate, sigma = dp_noise, delta = fr_fl_dp_delta);
 * infinity without noise. FR_ERR_INVALID if c is not a DP config; the accountant's
 * errors. */
FR_API FR_NODISCARD fr_err fr_fl_dp_epsilon(const fr_fl_config *c, uint32_t n_clients, uint64_t rounds, double *eps);

/* Clients for round `round` (1-based) out of n_clients, in increasing id order: the
 * available ones (availability, stream (seed, round, client, AVAIL)) then a uniform
 * sample without replacement of the configured count (stream (seed, round, 0, SAMPLE)).
 * A DP federation samples each client on its own with probability fr_fl_dp_rate
 * (Poisson sampling, stream (seed, round, client, DP_SAMPLE)): the count varies.
 * ids must hold n_clients entries. *k gets the count (may be 0). FR_ERR_NOMEM. */
FR_API FR_NODISCARD fr_err fr_fl_sample(const fr_fl_config *c, uint32_t round, uint32_t n_clients, uint32_t *ids,
                                 uint32_t *k);

/* ------------------------------------------------------------------ client */

/* One user's interactions inside a client. */
typedef struct fr_client_user {
    uint32_t user;          /* global user id (names its private rows' init stream) */
    const uint32_t *items;  /* [n] global item ids, any order */
    const float *ratings;   /* [n] or NULL for implicit data */
    size_t n;               /* interactions (0: the user sits this fit out) */
} fr_client_user;

/* A client's own data: the only interactions its fit can see. A device holds one user
 * (n_users = 0: the first four fields); a silo (a shop, a hospital) holds several
 * (n_users > 0: users[], the first four fields are then ignored). Each user is row j of
 * the client's private tables (fr_client_private). */
typedef struct fr_client_data {
    uint32_t user;          /* one user: its global user id */
    const uint32_t *items;  /* [n] global item ids (any order) */
    const float *ratings;   /* [n] or NULL (implicit data) */
    size_t n;               /* interactions */
    uint32_t n_items;       /* catalogue size (negatives are drawn from [0, n_items)) */
    uint32_t n_users;       /* 0: one user, above; > 0: a silo of users[n_users] */
    const fr_client_user *users; /* [n_users] */
} fr_client_data;

/* A client's private state, kept client-side across rounds and never sent. With U users
 * (1 for a device) and T user tables (slab order; NeuMF has two), rows[t * U + j] is
 * user j's row of table t (its cols floats), read before the fit and written after it.
 * With fr_fl_config.keep_private_optim, m1 and m2 (same layout) hold the local
 * optimizer's moments of those rows and *steps its step count, carried from fit to fit
 * (both moments are given; a rule with one ignores the other); otherwise all three are
 * NULL and the optimizer starts fresh every round. */
typedef struct fr_client_private {
    float *const *rows;
    float *const *m1;
    float *const *m2;
    uint64_t *steps;
} fr_client_private;

/* What a client reports besides its update. */
typedef struct fr_client_report {
    double loss_sum;        /* example-weighted training loss over all local steps */
    uint64_t examples;      /* examples seen over all local epochs */
    uint64_t bytes_down;    /* what the rows this fit read would weigh on the wire (dense
                               part + its item rows): the downlink if a client fetched only
                               its rows, which would tell the server its items; the TASK
                               sends the whole shared prefix instead (docs/ARCHITECTURE.md) */
} fr_client_report;

/* Per-worker scratch of a client: compact local models (only the item rows one client
 * needs; one per size class of 16 << b rows, so a step costs O(the client's rows), not
 * O(the largest client's)), their gradients and optimizers, and the example arrays.
 * Once a worker has met each size class it needs, it allocates nothing. One per thread. */
typedef struct fr_client_ws fr_client_ws;

FR_API FR_NODISCARD fr_err fr_client_ws_create(fr_client_ws **out, const fr_model_config *mcfg, const fr_fl_config *cfg);
FR_API void fr_client_ws_free(fr_client_ws *ws);
/* The public per-item popularity decoys (fr_fl_config.decoys) and popularity negatives
 * (fr_fl_config.neg_sampler) are drawn from: weights[i] >= 0 for item i of n_items (> 0
 * with popularity negatives; the server publishes it with the federation; the sim uses
 * each item's training interactions + 1). Copied; ignored by a workspace with neither.
 * Without it decoys are uniform over the catalogue, and a client with popularity
 * negatives refuses to step. FR_ERR_INVALID (n_items not the model's, a negative or
 * non-finite weight, all zero, a zero one with popularity negatives), FR_ERR_NOMEM. */
FR_API FR_NODISCARD fr_err fr_client_ws_set_popularity(fr_client_ws *ws, const double *weights, uint32_t n_items);

/* One round of local training for client `client`:
 *   gathers from global (a model of mcfg's shape, only its shared prefix is read) the
 *   dense layers and the item rows of its users' positives and of the negatives it
 *   samples for all E epochs (stream (seed, round, client, NEGATIVES); a user's negatives
 *   avoid that user's items), loads its private rows (and kept optimizer state), runs E
 *   shuffled epochs of minibatches with a fresh optimizer for the shared parameters
 *   (+ the FedProx term), writes the private state back and fills upd: weight n_k = its
 *   interactions, dense Δ of the dense tensors (slab order), one table per item table
 *   with the Δ of its rows (ids increasing); a client for which no example can be made (a
 *   pairwise loss and a user who has every item) trains nothing and sends weight 0 and no
 *   rows. Nothing private enters upd. O(its rows),
 *   never O(catalogue). Errors: FR_ERR_INVALID (an item out of range, no interaction,
 *   kept state missing or given when not configured), FR_ERR_NOMEM. */
FR_API FR_NODISCARD fr_err fr_client_fit(fr_client_ws *ws, uint32_t round, uint32_t client, const fr_client_data *data,
                                  const fr_model *global, const fr_client_private *priv, fr_update *upd,
                                  fr_client_report *rep);

/* Local evaluation and on-device recommendation: the client's scores for items[0, n)
 * (global ids, any order, repeats allowed) with the global dense layers and item rows and
 * one user's private rows priv[t] (one pointer per user table), computed on its compact model in chunks
 * of the batch B: the floats fr_model_score gives on a full model holding those private
 * rows with a workspace of max batch B (BLAS may round otherwise per chunk size). Reads only
 * the rows of the items asked for. Errors: FR_ERR_RANGE (an item out of range),
 * FR_ERR_INVALID (another catalogue), FR_ERR_NOMEM, FR_ERR_UNSUPPORTED (a graph kind:
 * its scores need the user's items). */
FR_API FR_NODISCARD fr_err fr_client_score(fr_client_ws *ws, const fr_model *global, float *const *priv,
                                    const uint32_t *items, size_t n, float *out);

/* ------------------------------------------------------------------ TASK and client step */

/* A decoded TASK: the round to compute, the federation's configs, and the global model
 * (its shared prefix is the global parameters; its one user row is unused). */
typedef struct fr_task fr_task;

FR_API FR_NODISCARD fr_err fr_task_create(fr_task **out);
FR_API void fr_task_free(fr_task *t);
/* Decodes a TASK message into t, reusing its model when the shape is unchanged (a client
 * receiving every round allocates nothing). Errors: FR_ERR_FORMAT (bad magic or type,
 * truncated, trailing bytes, a config that does not check, a parameter count that is not
 * the config's shared prefix), FR_ERR_VERSION, FR_ERR_CHECKSUM, FR_ERR_NOMEM; t is then
 * empty (fr_task_model returns NULL). */
FR_API FR_NODISCARD fr_err fr_task_decode(fr_task *t, const uint8_t *bytes, size_t n);
FR_API uint32_t fr_task_round(const fr_task *t);
/* The round's largest |value| of a RESULT (fr_fl_fixed_bound of its sampled clients). */
FR_API uint64_t fr_task_bound(const fr_task *t);
/* CRC-32C of the task's config block: names the federation a RESULT answers. */
FR_API uint32_t fr_task_config_crc(const fr_task *t);
FR_API const fr_model_config *fr_task_model_config(const fr_task *t); /* n_users = 1 */
FR_API const fr_fl_config *fr_task_fl_config(const fr_task *t);
FR_API const fr_model *fr_task_model(const fr_task *t);
/* The round's clip C of a DP federation (the TASK carries it: adaptive clipping changes
 * it every round); 0 without DP. */
FR_API double fr_task_dp_clip(const fr_task *t);

/* The client step, one round of one client: local fit on the task's global parameters
 * (fr_client_fit with the task's round), its decoy rows added when the federation has
 * decoys (fr_fl_config.decoys), then its update weighted and quantized into res
 * (n_k * Δ; item rows with weight 1 when the federation sums them), with the client's id,
 * the round, the task's config CRC, n_k and its training metrics. ws must have been made
 * with the task's configs (fr_client_ws_create(&ws, fr_task_model_config(t),
 * fr_task_fl_config(t))): a task of another federation is FR_ERR_INVALID. A non-finite
 * update (a diverged fit) is FR_ERR_RANGE and sends nothing. Errors of fr_client_fit. */
FR_API FR_NODISCARD fr_err fr_client_step(fr_client_ws *ws, const fr_task *task, uint32_t client,
                                   const fr_client_data *data, const fr_client_private *priv, fr_result *res);
/* The same from bytes to bytes, as a networked client runs it: decodes the TASK (into
 * the workspace's own fr_task), steps, and encodes the RESULT into a buffer the workspace
 * owns (*out, valid until the next call with ws). Errors of fr_task_decode and
 * fr_client_step. */
FR_API FR_NODISCARD fr_err fr_client_step_bytes(fr_client_ws *ws, const uint8_t *task, size_t task_n, uint32_t client,
                                         const fr_client_data *data, const fr_client_private *priv,
                                         const uint8_t **out, size_t *out_n);
/* Quantizes an update into a result: n_k * Δ for the dense part, w * Δ for item rows
 * (w = n_k, or 1 with cfg->item_sum), in fixed point; copies weight, client and round;
 * leaves config_crc, examples and loss_sum to the caller. bound is the round's largest
 * |value| (fr_task_bound; 0: fr_fl_fixed_bound(1)). FR_ERR_RANGE naming the first
 * non-finite value or a value beyond the bound (a diverged fit), FR_ERR_NOMEM. */
FR_API FR_NODISCARD fr_err fr_result_quantize(fr_result *res, const fr_update *u, const fr_fl_config *cfg,
                                              uint64_t bound);

/* ------------------------------------------------------------------ round controller */

/* The server, as a transport-agnostic state machine over bytes. It owns the global model,
 * the strategy's state and the round's integer accumulators; a runtime (in-process
 * simulation, network, MPI) only moves its messages and schedules clients:
 *
 *   begin   samples the round's clients (fr_fl_sample; or, for a networked server, among
 *           the clients connected, over-selecting: fr_round_begin_among) and makes the
 *           round's TASK;
 *   task    gives a sampled client the TASK (the same bytes for every client: the whole
 *           shared prefix, so the server never learns which items a client uses);
 *   submit  decodes a RESULT and accepts it: one for the open round, of this federation
 *           (config CRC), from a sampled client that has not answered yet, while the
 *           round has fewer results than its target. Anything else (late, foreign,
 *           unknown, duplicate, damaged, misshapen, beyond the target) is refused with a
 *           message saying which, and changes nothing;
 *   end     with at least min_results results, sums the lanes' integers, divides by the
 *           weights, applies the strategy and advances the round; below the quorum it
 *           applies nothing, closes the round and leaves the round number as it was (the
 *           next begin retries it);
 *   merge   adds another controller's results of the same round (an MPI reduction);
 *   save / load  the whole server state between rounds, so any runtime resumes.
 *
 * Thread-safety: task, submit and accept may be called concurrently, each caller with
 * its own lane (0 <= lane < n_lanes); everything else needs exclusive access. Sums are
 * integer, so the model is bit-identical for any lane, order or split of the results. */
typedef struct fr_round fr_round;

/* What one round did. */
typedef struct fr_round_stats {
    uint32_t round;         /* the round just finished (1-based) */
    uint32_t clients;       /* results aggregated */
    uint32_t sampled;       /* clients sampled */
    double loss;            /* example-weighted mean training loss of those clients */
    uint64_t examples;      /* their training examples (all local epochs) */
    uint64_t bytes_up;      /* RESULT messages accepted */
    uint64_t bytes_down;    /* TASK messages given to clients */
    double dp_clip;         /* DP: the clip C of the round (0 without DP) */
    double dp_unclipped;    /* DP, adaptive clipping: the noisy fraction of clients whose
                               update was within C (NaN without it; 0 without DP) */
    uint32_t attempts;      /* simulated faults (fr_sim_set_faults): tries the round took (0 without) */
    uint32_t crashed, late; /* simulated faults: clients that crashed, results dropped as late (the
                               applied attempt) */
    double sim_seconds;     /* simulated faults: the applied attempt's simulated duration */
} fr_round_stats;

/* A controller for n_clients clients (ids 0..n_clients-1) with n_lanes accumulators.
 * mcfg's n_users is ignored (the global model holds the shared part only). Errors
 * FR_ERR_INVALID (configs, n_lanes < 1), FR_ERR_NOMEM. */
FR_API FR_NODISCARD fr_err fr_round_create(fr_round **out, const fr_model_config *mcfg, const fr_fl_config *cfg,
                                    uint32_t n_clients, int n_lanes);
FR_API void fr_round_free(fr_round *r);
/* Rounds completed (applied). */
FR_API uint32_t fr_round_completed(const fr_round *r);
FR_API bool fr_round_is_open(const fr_round *r);
FR_API uint32_t fr_round_n_clients(const fr_round *r);
/* The global model: its shared prefix is the global parameters. Owned by r. */
FR_API const fr_model *fr_round_model(const fr_round *r);
FR_API const fr_model_config *fr_round_model_config(const fr_round *r);
FR_API const fr_fl_config *fr_round_fl_config(const fr_round *r);
/* The shape a RESULT must have. */
FR_API const fr_update_shape *fr_round_shape(const fr_round *r);
FR_API uint32_t fr_round_config_crc(const fr_round *r);
/* DP: the clip C the next round will use (adaptive clipping moves it); 0 without DP. */
FR_API double fr_round_dp_clip(const fr_round *r);
/* A pool the controller may use for its own work at end (the DP noise over every shared
 * coordinate); NULL (default): the caller's thread. The result does not depend on it. The
 * pool must not be running another loop during fr_round_end. */
FR_API void fr_round_set_pool(fr_round *r, fr_pool *pool);

/* Opens round fr_round_completed(r) + 1: samples its clients (*clients, *k: increasing
 * ids, owned by r, valid until the round closes; either may be NULL), zeroes the
 * accumulators and encodes the TASK. The round's target is k. FR_ERR_STATE if a round is
 * open, FR_ERR_NOMEM. The same as fr_round_begin_among with every id and no
 * over-selection. */
FR_API FR_NODISCARD fr_err fr_round_begin(fr_round *r, const uint32_t **clients, uint32_t *k);
/* The same sampling among the clients avail[0, n_avail) only (increasing ids < n_clients:
 * a networked server's connected clients), over-selecting: the availability draws of
 * fr_fl_sample on those ids, `want` = the configured clients_per_round of the available
 * ones, then a uniform sample of ceil((1 + over_select) * want) of them (capped at their
 * count) from fr_fl_sample's stream. The round's target stays `want` (fr_round_target):
 * once it has that many results the runtime may end it; later ones are refused. With
 * every id and over_select 0 it samples exactly what fr_round_begin samples (the same
 * TASK bytes). Errors of fr_round_begin; FR_ERR_INVALID (ids not increasing or out of
 * range, more ids than clients, avail NULL with n_avail > 0, over_select negative or not
 * finite). */
FR_API FR_NODISCARD fr_err fr_round_begin_among(fr_round *r, const uint32_t *avail, uint32_t n_avail,
                                                double over_select, const uint32_t **clients, uint32_t *k);
/* The results the open round takes (its `want`, <= the sampled count; 0 when no round is
 * open). */
FR_API uint32_t fr_round_target(const fr_round *r);
/* The TASK for `client` (*bytes owned by r, valid until the round closes; the same bytes
 * for every client of the round). Counted in bytes_down once per client.
 * FR_ERR_STATE (no open round), FR_ERR_INVALID (client not sampled this round). */
FR_API FR_NODISCARD fr_err fr_round_task(fr_round *r, uint32_t client, const uint8_t **bytes, size_t *n);
/* Decodes a RESULT (with lane's scratch) and accepts it. Errors of fr_result_decode, then
 * as fr_round_accept. */
FR_API FR_NODISCARD fr_err fr_round_submit(fr_round *r, const uint8_t *bytes, size_t n, int lane);
/* Accepts a decoded result into lane's accumulator (a runtime that passes results in
 * memory; counts fr_result_encoded_size as bytes up). Refused, with nothing changed:
 * FR_ERR_STATE (no open round, a result of another round, or one that finds the round
 * with its target's results already: "late: the round has its N results"), FR_ERR_INVALID
 * (another federation's config CRC, a client not sampled this round, a second result of
 * one client, a shape that is not the model's, a lane out of range). */
FR_API FR_NODISCARD fr_err fr_round_accept(fr_round *r, const fr_result *res, int lane);
/* Results accepted in the open round (0 when none is open). May be called concurrently
 * with submit and accept (a runtime closing the round once fr_round_target is reached). */
FR_API uint32_t fr_round_results(const fr_round *r);
/* Closes the open round. With at least min_results results: aggregates, applies the
 * strategy, advances the round, fills st (may be NULL) and returns FR_OK. Below the quorum:
 * applies nothing, does not advance, fills st with what arrived and returns
 * FR_ERR_EMPTY saying how many results came of how many needed. FR_ERR_STATE if no
 * round is open. */
FR_API FR_NODISCARD fr_err fr_round_end(fr_round *r, fr_round_stats *st);
/* Closes the open round (if any) applying nothing. */
FR_API void fr_round_abort(fr_round *r);
/* Adds src's results of the open round into dst: same federation, same open round (same
 * sampled clients and target), no client answered in both (FR_ERR_INVALID naming it;
 * nothing changes then), together no more results than the target (FR_ERR_STATE). src is
 * not modified. */
FR_API FR_NODISCARD fr_err fr_round_merge(fr_round *dst, const fr_round *src);
/* The server's whole state between rounds (magic "FRROUND\0", version, config, round,
 * strategy moments, global shared parameters, CRC-32C): a new buffer freed with
 * fr_msg_free. FR_ERR_STATE while a round is open. */
FR_API FR_NODISCARD fr_err fr_round_save(const fr_round *r, uint8_t **bytes, size_t *n);
/* Restores a state saved by a controller of the same federation (FR_ERR_INVALID naming
 * the seed, strategy and sizes that differ; FR_ERR_FORMAT, FR_ERR_VERSION,
 * FR_ERR_CHECKSUM for damaged bytes; name is used in messages). FR_ERR_STATE while a round
 * is open. On failure r is unchanged. */
FR_API FR_NODISCARD fr_err fr_round_load(fr_round *r, const uint8_t *bytes, size_t n, const char *name);

#ifdef __cplusplus
}
#endif
#endif
