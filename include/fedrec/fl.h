/* fedrec fl: federated learning. This part: the update a client sends, and its bytes.
 *
 * An update carries the client's weight n_k (its training examples), its id, the round,
 * a dense part (the small shared layers, as one float vector) and, for each embedding
 * table, the rows the client touched: a row width w_t, a count c_t, strictly increasing
 * row ids[c_t] and values[c_t * w_t] (row-major). Rows absent from an update mean Δ = 0.
 *
 * Wire format (little-endian), version 1:
 *   header, FR_UPDATE_HEADER_BYTES = 24:
 *     u32 magic "FRUP" (bytes 46 52 55 50) | u16 version = 1 | u16 type = 1 (update)
 *     u64 total length of the message in bytes, header included
 *     u32 CRC-32C of the body (every byte after the header) | u32 reserved = 0
 *   body:
 *     u64 weight | u32 client | u32 round | u32 dense length D | u32 number of tables T
 *     f32 dense[D]
 *     T times: u32 width | u32 count | u32 ids[count] | f32 values[count * width]
 * The decoder trusts nothing in the bytes: it checks every length and count against the
 * bytes that remain and against the shape the server expects before allocating, so a
 * message can never make the receiver allocate more than its own size (plus the shape's
 * fixed table array). */
#ifndef FEDREC_FL_H
#define FEDREC_FL_H

#include "fedrec/core.h"
#include "fedrec/data.h"
#include "fedrec/model.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ updates */

#define FR_UPDATE_MAGIC 0x50555246u /* "FRUP" read as a little-endian u32 */
#define FR_UPDATE_VERSION 1
#define FR_MSG_UPDATE 1
#define FR_UPDATE_HEADER_BYTES 24
#define FR_UPDATE_MAX_TABLES 64
size_t fr_update_header_bytes(void);

typedef struct fr_update_table {
    uint32_t width;     /* w_t: floats per row */
    uint32_t count;     /* c_t: rows present */
    uint32_t *ids;      /* [count] strictly increasing row ids */
    float *values;      /* [count * width] row-major */
    size_t cap_rows;    /* rows allocated in ids/values (>= count) */
} fr_update_table;

typedef struct fr_update {
    uint64_t weight;          /* n_k: the client's training examples */
    uint32_t client;          /* client id */
    uint32_t round;           /* round the update answers */
    uint32_t dense_len;       /* floats in dense */
    float *dense;             /* [dense_len] */
    size_t dense_cap;         /* floats allocated in dense */
    uint32_t n_tables;        /* tables in use */
    fr_update_table *tables;  /* [n_tables] */
    uint32_t tables_cap;      /* tables allocated */
} fr_update;

/* What a receiver expects: the decoder rejects anything else. */
typedef struct fr_update_shape {
    uint32_t dense_len;        /* exact dense length */
    uint32_t n_tables;         /* exact number of tables, <= FR_UPDATE_MAX_TABLES */
    const uint32_t *widths;    /* [n_tables] exact row widths */
    const uint32_t *n_rows;    /* [n_tables] row ids must be < n_rows[t] */
} fr_update_shape;

/* An empty update (no dense part, no table). */
FR_NODISCARD fr_err fr_update_create(fr_update **out);
void fr_update_free(fr_update *u);

/* Sets the layout: dense length and the tables' widths (counts become 0). Reuses the
 * arrays it already has when they are large enough, so an update kept across rounds does
 * not reallocate. New dense values are zero. FR_ERR_INVALID (n_tables too large or a width
 * of 0), FR_ERR_NOMEM (the update keeps its previous layout). */
FR_NODISCARD fr_err fr_update_reset(fr_update *u, uint32_t dense_len, uint32_t n_tables, const uint32_t *widths);
/* Makes room for count rows in table t and sets its count; ids and values are then the
 * caller's to fill (contents of rows beyond the old count are unspecified). */
FR_NODISCARD fr_err fr_update_table_resize(fr_update *u, uint32_t t, uint32_t count);

/* Exact size of the encoding of u, or 0 if it does not fit in size_t. */
size_t fr_update_encoded_size(const fr_update *u);
/* The same from the layout alone (byte counting in simulation): counts[t] rows of widths[t]. */
size_t fr_update_wire_size(uint32_t dense_len, uint32_t n_tables, const uint32_t *widths, const uint32_t *counts);

/* Encodes u into a new buffer (*bytes, freed with fr_update_bytes_free). FR_ERR_INVALID if
 * u breaks the format (row ids not strictly increasing, zero width, too many tables),
 * FR_ERR_NOMEM. */
FR_NODISCARD fr_err fr_update_encode(const fr_update *u, uint8_t **bytes, size_t *n);
/* Encodes into buf[0..cap); *n gets the size. FR_ERR_RANGE if cap is too small. */
FR_NODISCARD fr_err fr_update_encode_to(const fr_update *u, uint8_t *buf, size_t cap, size_t *n);
void fr_update_bytes_free(uint8_t *bytes);

/* Decodes a message into a new update. Errors (with a message naming the field, the value
 * and what was expected): FR_ERR_FORMAT (bad magic or type, truncated, trailing bytes,
 * counts or widths not matching the shape, row ids not strictly increasing or out of
 * range), FR_ERR_VERSION (another format version), FR_ERR_CHECKSUM (body damaged),
 * FR_ERR_INVALID (bad shape), FR_ERR_NOMEM. */
FR_NODISCARD fr_err fr_update_decode(fr_update **out, const uint8_t *bytes, size_t n, const fr_update_shape *shape);
/* Decodes into an existing update, reusing its arrays. On failure u is left valid but
 * its contents are unspecified. */
FR_NODISCARD fr_err fr_update_decode_into(fr_update *u, const uint8_t *bytes, size_t n,
                                          const fr_update_shape *shape);


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
const char *fr_strategy_name(fr_strategy s);
FR_NODISCARD fr_err fr_strategy_parse(const char *name, fr_strategy *out);

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
    uint64_t seed;            /* names every stream: (seed, round, client, purpose) */
} fr_fl_config;

/* Defaults for a model kind (the anchors' federated settings). */
void fr_fl_config_default(fr_fl_config *c, fr_model_kind kind);
/* FR_OK, or FR_ERR_INVALID naming the field, its value and the allowed range. */
FR_NODISCARD fr_err fr_fl_config_check(const fr_fl_config *c);

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
    uint64_t bytes_down;    /* wire size of the shared rows and dense part it received */
} fr_client_report;

/* Per-worker scratch of a client: compact local models (only the item rows one client
 * needs; one per size class of 16 << b rows, so a step costs O(the client's rows), not
 * O(the largest client's)), their gradients and optimizers, and the example arrays.
 * Once a worker has met each size class it needs, it allocates nothing. One per thread. */
typedef struct fr_client_ws fr_client_ws;

FR_NODISCARD fr_err fr_client_ws_create(fr_client_ws **out, const fr_model_config *mcfg, const fr_fl_config *cfg);
void fr_client_ws_free(fr_client_ws *ws);

/* One round of local training for client `client`:
 *   gathers from global (a model of mcfg's shape, only its shared prefix is read) the
 *   dense layers and the item rows of its users' positives and of the negatives it
 *   samples for all E epochs (stream (seed, round, client, NEGATIVES); a user's negatives
 *   avoid that user's items), loads its private rows (and kept optimizer state), runs E
 *   shuffled epochs of minibatches with a fresh optimizer for the shared parameters
 *   (+ the FedProx term), writes the private state back and fills upd: weight n_k = its
 *   interactions, dense Δ of the dense tensors (slab order), one table per item table
 *   with the Δ of its rows (ids increasing). Nothing private enters upd. O(its rows),
 *   never O(catalogue). Errors: FR_ERR_INVALID (an item out of range, no interaction,
 *   kept state missing or given when not configured), FR_ERR_NOMEM. */
FR_NODISCARD fr_err fr_client_fit(fr_client_ws *ws, uint32_t round, uint32_t client, const fr_client_data *data,
                                  const fr_model *global, const fr_client_private *priv, fr_update *upd,
                                  fr_client_report *rep);

/* Local evaluation and on-device recommendation: the client's scores for items[0, n)
 * (global ids, any order, repeats allowed) with the global dense layers and item rows and
 * one user's private rows priv[t] (one pointer per user table), computed on its compact model in chunks
 * of the batch B: the floats fr_model_score gives on a full model holding those private
 * rows with a workspace of max batch B (BLAS may round otherwise per chunk size). Reads only
 * the rows of the items asked for. Errors: FR_ERR_RANGE (an item out of range),
 * FR_ERR_INVALID (another catalogue), FR_ERR_NOMEM. */
FR_NODISCARD fr_err fr_client_score(fr_client_ws *ws, const fr_model *global, float *const *priv,
                                    const uint32_t *items, size_t n, float *out);

/* ------------------------------------------------------------------ server (round controller) */

typedef struct fr_server fr_server;

/* What one round did (filled by a runtime). */
typedef struct fr_round_stats {
    uint32_t round;         /* the round just finished (1-based) */
    uint32_t clients;       /* updates aggregated */
    double loss;            /* example-weighted mean training loss of those clients */
    uint64_t examples;      /* their training examples (all local epochs) */
    uint64_t bytes_up;      /* encoded updates */
    uint64_t bytes_down;    /* shared rows and dense parts sent to clients */
} fr_round_stats;

/* Creates the server: the global model (mcfg with n_users = 1: only its shared prefix is
 * used), strategy state, and n_workers fixed-point accumulators. Errors FR_ERR_INVALID,
 * FR_ERR_NOMEM. */
FR_NODISCARD fr_err fr_server_create(fr_server **out, const fr_model_config *mcfg, const fr_fl_config *cfg,
                                     int n_workers);
void fr_server_free(fr_server *s);
/* The global model (shared prefix = the global parameters). Owned by the server. */
fr_model *fr_server_model(fr_server *s);
const fr_fl_config *fr_server_config(const fr_server *s);
/* Rounds completed. */
uint32_t fr_server_round(const fr_server *s);
/* The shape a decoder must enforce on this server's updates (arrays owned by s). */
const fr_update_shape *fr_server_shape(const fr_server *s);

/* Clients for round `round` (1-based) out of n_clients, in increasing id order: the
 * available ones (availability, stream (seed, round, client, AVAIL)) then a uniform
 * sample without replacement of the configured count (stream (seed, round, 0, SAMPLE)).
 * ids must hold n_clients entries. *k gets the count (may be 0). FR_ERR_NOMEM. */
FR_NODISCARD fr_err fr_server_sample(const fr_server *s, uint32_t round, uint32_t n_clients, uint32_t *ids,
                                     uint32_t *k);

/* Starts a round: zeroes the accumulators. */
void fr_server_begin_round(fr_server *s);
/* Adds n_k * Δ_k of one decoded update to worker's accumulator (64-bit fixed point,
 * FR_FL_FIXED_SCALE). Calls with distinct workers may run concurrently. FR_ERR_INVALID
 * if the update does not have the server's shape. */
FR_NODISCARD fr_err fr_server_accept(fr_server *s, const fr_update *u, int worker);
/* Sums the accumulators (integer: any order gives the same bits), divides by the weights
 * in double and applies the strategy to the global model; the round count goes up.
 * A round with no update leaves the model as it is (the count still goes up). */
FR_NODISCARD fr_err fr_server_end_round(fr_server *s);

#define FR_FL_FIXED_SCALE 4294967296.0 /* 2^32: n_k * Δ in units of 2^-32 */

/* Server state for checkpoints: round, strategy moments (n_shared floats each, NULL when
 * the strategy has none). */
typedef struct fr_server_state {
    uint32_t round;
    float *m, *v;
} fr_server_state;
/* Pointers into the server's own state (read or overwrite; lengths n_shared). */
void fr_server_state_get(fr_server *s, fr_server_state *st);
void fr_server_set_round(fr_server *s, uint32_t round);

#ifdef __cplusplus
}
#endif
#endif
