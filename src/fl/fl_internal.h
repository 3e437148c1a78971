/* fedrec fl internals shared by the files of src/fl and with the tests. */
#ifndef FEDREC_SRC_FL_INTERNAL_H
#define FEDREC_SRC_FL_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"
#include "fedrec/fl.h"

/* acc[i] += round(w * val[i] * 2^32) (two's complement, modulo 2^64), rounded half away
 * from zero, each term saturating at +-4.6e18 units, NaN as the lower bound. `vector`
 * false forces the scalar loop (the reference the vector path must match bit for bit). */
void fri_fl_add_fixed(int64_t *acc, const float *val, size_t n, double w, bool vector);
/* The same for `count` rows of `width` values: row i of val added to the row ids[i] of a
 * table acc[rows * width] (the rows of an update added straight into an accumulator). */
void fri_fl_add_fixed_rows(int64_t *acc, const uint32_t *ids, const float *val, size_t count, size_t width, double w);
/* out[i] = round(w * val[i] * 2^32), as above (a client's quantization), into an array or
 * as little-endian bytes at any alignment (straight into a RESULT message). */
void fri_fl_store_fixed(int64_t *out, const float *val, size_t n, double w);
void fri_fl_store_fixed_le(uint8_t *out, const float *val, size_t n, double w);
/* acc[i] += val[i] modulo 2^64 (the server's sum of fixed-point values); the _le form
 * reads the values as little-endian bytes at any alignment (straight from a message). */
void fri_fl_add_ints(int64_t *acc, const int64_t *val, size_t n);
void fri_fl_add_ints_le(int64_t *acc, const uint8_t *p, size_t n);

/* Sets a result's layout (counts 0; arrays reused) and sizes table t for count rows.
 * FR_ERR_INVALID (more than FR_UPDATE_MAX_TABLES tables, a width of 0) and FR_ERR_NOMEM
 * leave the result's layout, counts and values as they were (only capacity may grow). */
FR_NODISCARD fr_err fri_result_reset(fr_result *r, uint32_t dense_len, uint32_t n_tables, const uint32_t *widths);
FR_NODISCARD fr_err fri_result_table_resize(fr_result *r, uint32_t t, uint32_t count);

/* FR_ERR_RANGE naming the first non-finite value of an update (a diverged fit). */
FR_NODISCARD fr_err fri_update_check_finite(const fr_update *u);
/* The same, and FR_ERR_RANGE naming the round if a quantized value would exceed bound
 * (0: fr_fl_fixed_bound(1)). */
FR_NODISCARD fr_err fri_update_check(const fr_update *u, const fr_fl_config *cfg, uint64_t bound);
/* What a RESULT may carry, before it is encoded (plain or compressed): at most
 * FR_UPDATE_MAX_TABLES tables, each of width >= 1 with increasing row ids, and
 * fri_update_check. FR_ERR_INVALID / FR_ERR_RANGE naming what is wrong. */
FR_NODISCARD fr_err fri_result_update_valid(const fr_update *u, const fr_fl_config *cfg, uint64_t bound);
/* The largest |value| of n little-endian int64 at p (any alignment), or of an array. */
uint64_t fri_fl_max_abs_le(const uint8_t *p, size_t n);
uint64_t fri_fl_max_abs(const int64_t *v, size_t n);
/* The RESULT of update u encoded straight from its floats (what fr_result_quantize then
 * fr_result_encode_to would write, without the fr_result in between): exact size first
 * (fri_result_update_size, 0 on overflow), then the bytes. FR_ERR_RANGE (not finite, or
 * cap too small), FR_ERR_INVALID (ids not strictly increasing). */
size_t fri_result_update_size(const fr_update *u);
FR_NODISCARD fr_err fri_result_encode_update(const fr_update *u, const fr_fl_config *cfg, uint64_t bound,
                                             uint32_t config_crc, uint64_t examples, double loss_sum, uint8_t *buf,
                                             size_t cap, size_t *n);
/* The client step straight to bytes: fit, then fri_result_encode_update into the
 * workspace's buffer (*out valid until the next call with ws). */
FR_NODISCARD fr_err fri_client_step_encode(fr_client_ws *ws, const fr_task *task, uint32_t client,
                                           const fr_client_data *data, const fr_client_private *priv,
                                           const uint8_t **out, size_t *out_n);

/* The client step up to its float update (step_fit: the fit, decoys, an honest client's
 * normclip), for fri_round_accept_update: *upd valid until the next call with ws,
 * *config_crc the client's federation. FR_ERR_UNSUPPORTED where the RESULT is not
 * fr_result_quantize of the update (DP, compression): nothing is run. */
FR_NODISCARD fr_err fri_client_step_update(fr_client_ws *ws, const fr_task *task, uint32_t client,
                                           const fr_client_data *data, const fr_client_private *priv,
                                           const fr_update **upd, fr_client_report *rep, uint32_t *config_crc);

/* Top-k error feedback: the residual[dense values] of the client of the next step on ws
 * (its dense update not sent yet; zero at first), kept by the caller across rounds. The
 * step uses it once, fails or not, then forgets it; without one a top-k step fails. */
void fri_client_ws_set_residual(fr_client_ws *ws, float *residual);
/* Tests: whether a fit orders its rows by a scan of the catalogue's marks (the plain
 * reference) instead of ranking (up to 64 rows) or a radix sort of their ids, chosen when
 * the catalogue is over 16 times the rows. Returns the previous setting. Not thread-safe. */
bool fri_client_sort_by_scan(bool on);
/* Asks for the workspace's per-item marks of these items (the compact-row map and the own
 * marks a fit reads at each of its items), a hint to the cache for a client to come. */
void fri_client_ws_prefetch(const fr_client_ws *ws, const uint32_t *items, size_t n);

/* A RESULT seen in place: its fields and where its values are, either in host memory (an
 * fr_result: `native`) or as little-endian bytes in a message (read at any alignment). */
typedef struct fri_result_view {
    uint32_t client, round, config_crc;
    uint64_t weight, examples;
    double loss_sum;
    uint32_t dense_len, n_tables;
    uint32_t flags;         /* FR_RESULT_* */
    bool native;            /* int64/uint32 arrays in memory, else little-endian bytes */
    const void *dense;      /* [dense_len] values */
    struct {
        uint32_t width, count;
        const void *ids;    /* [count] row ids */
        const void *values; /* [count * width] values */
    } tables[FR_UPDATE_MAX_TABLES];
    size_t bytes;           /* its encoded size */
} fri_result_view;
/* Checks a RESULT message whole against shape (every check of fr_result_decode, the same
 * messages) and points v into it: nothing is copied or allocated. */
/* A RESULT's update shape is usable: at most FR_UPDATE_MAX_TABLES tables, widths > 0.
 * FR_ERR_INVALID. */
FR_NODISCARD fr_err fri_result_shape_check(const fr_update_shape *s);
/* Reads table t's head (row width, row count) and its row ids from rd, checked against the
 * shape: the width is the table's, at most its rows, ids increasing and in range, and room
 * for count rows of 4 + fri_q_bytes(mode, width, width) bytes (mode FR_COMPRESS_NONE: the
 * plain 8-byte values). *ids points at the count ids (u32, little-endian) in rd's bytes.
 * FR_ERR_FORMAT naming the table. Used by the plain and the compressed decoders. */
FR_NODISCARD fr_err fri_result_table_ids(fri_rd *rd, const fr_update_shape *s, uint32_t t, uint32_t mode,
                                         uint32_t *width, uint32_t *count, const uint8_t **ids);
FR_NODISCARD fr_err fri_result_view_bytes(fri_result_view *v, const uint8_t *bytes, size_t n,
                                          const fr_update_shape *shape);
/* A view of a result in memory (not checked: fr_round_accept checks its shape). */
void fri_result_view_of(fri_result_view *v, const fr_result *r);

/* The results a round of n available clients wants: clients_per_round of them (all for
 * 0, a whole count capped at n, or a fraction rounded up, at least 1 of n > 0). */
uint32_t fri_fl_want(const fr_fl_config *c, uint32_t n);
/* fr_fl_sample among the clients avail[0, n_avail) (increasing ids, checked; NULL: the
 * ids 0..n_avail-1), over-selecting: the availability draws of fr_fl_sample on each
 * given id, want = the configured count of those available, then a uniform sample of
 * ceil((1 + over_select) * want) of them (capped at their count; over_select >= 0,
 * finite) from the stream of fr_fl_sample. With every id and over_select 0 it is
 * fr_fl_sample. ids must hold n_avail entries; *k gets the sampled count, *want the
 * results the round needs. FR_ERR_INVALID (ids not increasing, a bad over_select),
 * FR_ERR_NOMEM. */
FR_NODISCARD fr_err fri_fl_sample_among(const fr_fl_config *c, uint32_t round, const uint32_t *avail, uint32_t n_avail,
                                        double over_select, uint32_t *ids, uint32_t *k, uint32_t *want);

/* The federation config as bytes (every field, little-endian), for the TASK's config
 * block and the round state. get checks the config (FR_ERR_FORMAT naming the field). */
void fri_fl_config_put(fri_buf *b, const fr_fl_config *c);
FR_NODISCARD fr_err fri_fl_config_get(fri_rd *r, fr_fl_config *c);

/* The config block of a federation: the model config (n_users 1) then the fl config. */
FR_NODISCARD fr_err fri_fl_config_block(fri_buf *b, const fr_model_config *mcfg, const fr_fl_config *cfg);
/* Reads a config block (the whole of r). */
FR_NODISCARD fr_err fri_fl_config_block_get(fri_rd *r, fr_model_config *mcfg, fr_fl_config *cfg);

/* A TASK message: header, round, config CRC, config block, the round's bound, the shared
 * prefix of g; the _dp form with a DP round's clip (> 0). */
FR_NODISCARD fr_err fri_task_encode(fri_buf *b, uint32_t round, const uint8_t *config, size_t config_n,
                                    uint32_t config_crc, uint64_t bound, const fr_model *g);
FR_NODISCARD fr_err fri_task_encode_dp(fri_buf *b, uint32_t round, const uint8_t *config, size_t config_n,
                                       uint32_t config_crc, uint64_t bound, double dp_clip, const fr_model *g);

/* The same with the parameters quantized (qmode: fr_compress, 0 for floats) from the
 * stream (seed, round, 0, COMPRESS_DOWN). */
FR_NODISCARD fr_err fri_task_encode_q(fri_buf *b, uint32_t round, const uint8_t *config, size_t config_n,
                                      uint32_t config_crc, uint64_t bound, double dp_clip, const fr_model *g,
                                      uint32_t qmode, uint64_t seed);

/* Rows on request (docs/ARCHITECTURE.md, "The downlink"): a rows TASK is a TASK whose
 * parameters are the dense tensors only (flag 4 of its reserved word; not with quantized
 * parameters), the item rows following on the client's request. Decoded (fr_task_decode),
 * its model's dense tensors are the round's and every item row is NaN until
 * fri_task_rows_fill gives the rows the client asked for, so a read of a row it did not
 * fetch poisons its update (refused as non-finite) instead of passing unseen. */
FR_NODISCARD fr_err fri_task_encode_rows(fri_buf *b, uint32_t round, const uint8_t *config, size_t config_n,
                                         uint32_t config_crc, uint64_t bound, double dp_clip, const fr_model *g);
bool fri_task_rows_only(const fr_task *t);
/* The rows block of n rows: per item table in tensor order, the rows ids[0, n) as
 * little-endian floats. Its size (SIZE_MAX on overflow); ids checked (< n_items, strictly
 * increasing: FR_ERR_FORMAT); written from g; read into a rows TASK's model (FR_ERR_STATE
 * for another TASK, FR_ERR_FORMAT for a wrong size or ids). */
size_t fri_task_rows_bytes(const fr_model *g, size_t n);
FR_NODISCARD fr_err fri_task_rows_check(const fr_model *g, const uint32_t *ids, size_t n);
void fri_task_rows_put(uint8_t *out, const fr_model *g, const uint32_t *ids, size_t n);
FR_NODISCARD fr_err fri_task_rows_fill(fr_task *t, const uint32_t *ids, size_t n, const uint8_t *b, size_t len);
/* The item rows the client step on task t will read, increasing (ws-owned, valid until the
 * next call with ws): its positives and the negatives it draws for all E epochs, the same
 * draws as the step's (the same streams). Errors of fr_client_fit's checks. */
FR_NODISCARD fr_err fri_client_plan_rows(fr_client_ws *ws, const fr_task *task, uint32_t client,
                                         const fr_client_data *data, const uint32_t **ids, size_t *n);
/* The rows TASK of the open round (fri_round_set_rows on), as fri_round_task_at. */
void fri_round_set_rows(fr_round *r, bool on);
FR_NODISCARD fr_err fri_round_task_rows_at(fr_round *r, uint32_t client, uint32_t hint, const uint8_t **bytes,
                                           size_t *n);
/* Counts bytes of rows blocks given this round in its bytes_down (thread-safe). */
void fri_round_count_down(fr_round *r, uint64_t bytes);

/* Message header: writes it over buf[0, FR_MSG_HEADER_BYTES) for a message of n bytes
 * whose body follows; checks one (magic, version, type, length, reserved, CRC), naming
 * `what` ("TASK", "RESULT") in messages. */
void fri_msg_seal(uint8_t *buf, size_t n, uint16_t type);
FR_NODISCARD fr_err fri_msg_open(const uint8_t *b, size_t n, uint16_t type, const char *what);

/* ------------------------------------------------------------------ differential privacy (dp.c) */

/* The DP fields' checks (part of fr_fl_config_check). */
FR_NODISCARD fr_err fri_fl_dp_check(const fr_fl_config *c);
/* Secure aggregation with central DP (Poisson sampling): whether a round of k sampled
 * clients runs without masks. A DP round may sample 0 or 1 clients. With 1 the server
 * learns that client's update from the sum anyway (the noise is the server's, added after
 * the sum), so masks hide nothing and the round runs plain; with 0 the server adds noise
 * only. The simulator and the network server both follow this rule (bit for bit). Without
 * DP the round sizes are fixed and below 2 is refused where the federation is made. */
bool fri_dp_secagg_plain(const fr_fl_config *c, uint32_t k);
/* Poisson sampling of a DP round: each of avail[0, n_avail) (NULL: 0..n_avail-1) with
 * probability fr_fl_dp_rate(c, n_clients), from (seed, round, client, DP_SAMPLE). ids
 * must hold n_avail entries. FR_ERR_INVALID (over_select not 0, ids not increasing). */
FR_NODISCARD fr_err fri_dp_sample(const fr_fl_config *c, uint32_t round, uint32_t n_clients, const uint32_t *avail,
                                  uint32_t n_avail, double over_select, uint32_t *ids, uint32_t *k);
/* A DP client's quantization: weight 1, the whole update clipped to clip (exactly, in
 * integers: fr_dp_clip_quantize), the UNCLIPPED flag, local noise when configured.
 * FR_ERR_RANGE (not finite), FR_ERR_NOMEM. */
/* Decoy rows (src/fl/hide.c). */
typedef struct fri_hide fri_hide;
FR_NODISCARD fr_err fri_hide_create(fri_hide **out, uint32_t n_items);
void fri_hide_free(fri_hide *h);
FR_NODISCARD fr_err fri_hide_set_popularity(fri_hide *h, const double *w, uint32_t n);
/* The client's decoys (sorted, owned by h, valid until the next call). */
FR_NODISCARD fr_err fri_hide_draw(fri_hide *h, const fr_fl_config *cfg, uint32_t client, const fr_client_data *d,
                                  uint64_t n_k, const uint32_t **dec, size_t *m);
/* Pads every item table of u with the client's decoys (fr_fl_config.decoys). */
FR_NODISCARD fr_err fri_hide_pad(fri_hide *h, const fr_fl_config *cfg, const fr_client_data *d, fr_update *u);

FR_NODISCARD fr_err fri_dp_quantize(fr_result *res, const fr_update *u, const fr_fl_config *cfg, double clip,
                                    uint64_t bound);

/* The server's DP state, inside fr_round. */
typedef struct fri_dp_server {
    bool on;                /* the federation is DP */
    double clip;            /* C of the next round (adaptive clipping moves it) */
    double round_clip;      /* the open round's C */
    double expected;        /* q N: the divisor of the noisy sum */
    double sigma_delta;     /* the sum's noise multiplier (raised under adaptive clipping) */
    double sigma_count;     /* std of the unclipped count's noise (adaptive clipping) */
    uint32_t n_lanes;
    uint64_t *unclipped;    /* [n_lanes] results with FR_RESULT_UNCLIPPED this round */
    fr_pool *pool;          /* for the noise, or NULL */
} fri_dp_server;
FR_NODISCARD fr_err fri_dp_server_init(fri_dp_server *d, const fr_fl_config *c, uint32_t n_clients, int n_lanes);
void fri_dp_server_free(fri_dp_server *d);
/* Opens a round whose values are bounded by bound: its clip (0 without DP). */
double fri_dp_begin(fri_dp_server *d, uint64_t bound);
/* A RESULT's DP checks: flags only in a DP federation, its norm within the round's clip
 * (exact; skipped under local noise). */
FR_NODISCARD fr_err fri_dp_check_result(const fri_dp_server *d, const fr_fl_config *c, const fri_result_view *v);
void fri_dp_count(fri_dp_server *d, int lane, uint32_t flags);
/* Releases the round's integer sum of n coordinates (results accepted): noise on every
 * coordinate, then the adaptive clip's update; fills st's DP fields. */
FR_NODISCARD fr_err fri_dp_end(fri_dp_server *d, const fr_fl_config *c, uint32_t round, int64_t *sum, size_t n,
                               uint32_t results, fr_round_stats *st);

/* fr_round_task and fr_round_accept with a hint: `hint` is the client's index in the
 * sampled list if the caller knows it (the sim does), which saves the search; a wrong or
 * UINT32_MAX hint only costs the search. */
FR_NODISCARD fr_err fri_round_task_at(fr_round *r, uint32_t client, uint32_t hint, const uint8_t **bytes, size_t *n);
FR_NODISCARD fr_err fri_round_accept_at(fr_round *r, const fr_result *res, int lane, uint32_t hint);
/* In process, without a RESULT (the sim with results in memory): client u's float update
 * taken as fr_result_quantize(u, bound) then fri_round_accept_at would take it: every check
 * of both (bound: the TASK's, checked against the round's; fri_update_check), the same
 * integers added straight into the lane, the same figures kept (its upload: the RESULT's
 * encoded size). Only where the round keeps no result whole and adds no DP noise
 * (fri_round_takes_updates; else FR_ERR_UNSUPPORTED). Thread-safe as fr_round_accept
 * (one lane per thread). */
bool fri_round_takes_updates(const fr_round *r);
FR_NODISCARD fr_err fri_round_accept_update(fr_round *r, const fr_update *u, uint64_t bound, uint32_t config_crc,
                                            uint64_t examples, double loss_sum, int lane, uint32_t hint);
/* Asks for the lane's accumulator rows of these item ids in every item table (a hint to
 * the cache, so they arrive while the client trains; ids out of range are skipped). */
void fri_round_prefetch_rows(const fr_round *r, int lane, const uint32_t *items, size_t n);
/* Secure aggregation over dense vectors (round.c). The words of a client's vector in the
 * open round: the shared prefix (w·Δ in 2^-32 units), then with row_norm the per-row
 * weights of each item table (n_tables × n_items), then the weight n_k. */
size_t fri_round_dense_len(const fr_round *r);
/* Takes res as fr_round_accept would on `lane` (every check, the client counted as
 * answered, its loss, examples and DP flags kept, `bytes` as its upload) but writes its
 * sums to out[fri_round_dense_len] instead of the lane's. Thread-safe as fr_round_accept
 * (one lane per thread). */
FR_NODISCARD fr_err fri_round_accept_dense(fr_round *r, const fr_result *res, uint64_t bytes, int lane, int64_t *out);
/* Adds the (unmasked) sum of the dense vectors of the round's results to lane 0. */
FR_NODISCARD fr_err fri_round_add_dense_sum(fr_round *r, const int64_t *sum);

/* Across processes (round.c; the MPI runtime): the open round's sums after folding the
 * lanes into lane 0, as arrays a runtime reduces elementwise across processes and writes
 * back in place: acc and roww and *wsum by integer sum modulo 2^64; loss, examples, up
 * (per position; 0 where this controller has no result) by sum; the status bytes
 * (fri_round_status_get / _set) by bitwise OR. Then fr_round_end gives every process the
 * model one controller with every result would give. */
typedef struct fri_round_sums {
    int64_t *acc;           /* [n_shared] sum of w * Δ */
    size_t n_shared;
    uint64_t *roww;         /* row_norm: [n_roww] per-row weights, else NULL */
    size_t n_roww;
    uint64_t *wsum;         /* the sum of n_k */
    uint32_t k;             /* sampled positions */
    double *loss;           /* [k] */
    uint64_t *examples, *up;/* [k] */
} fri_round_sums;
/* Folds the lanes and points s at the sums. FR_ERR_STATE (no open round),
 * FR_ERR_UNSUPPORTED (a DP federation: its clip counts are per lane). */
FR_NODISCARD fr_err fri_round_fold(fr_round *r, fri_round_sums *s);
/* The status byte of each sampled position (out[k]): bit 1 sent, bit 2 answered. */
void fri_round_status_get(const fr_round *r, uint8_t *out);
/* Sets them (in[k], the OR across processes) and the accepted count from them;
 * FR_ERR_STATE when more than the target answered. */
FR_NODISCARD fr_err fri_round_status_set(fr_round *r, const uint8_t *in);

/* The networked client's side (secure.c): what a RESULT says besides its values. */
typedef struct fri_secure_header {
    uint32_t client, round, config_crc, flags;
    uint64_t weight, examples;
    double loss_sum;
} fri_secure_header;
/* The words of a round's dense vector for the global model g (a TASK's) and config cfg:
 * fri_round_dense_len of that round's controller. */
size_t fri_secure_dense_len(const fr_model *g, const fr_fl_config *cfg);
/* The RESULT bytes result[0, n) (checked whole against g's shape) as the dense vector
 * out[len] that fri_round_accept_dense would write for it, and its header in *h.
 * FR_ERR_INVALID (len is not the round's), the RESULT's decoding errors. */
FR_NODISCARD fr_err fri_secure_densify(const fr_model *g, const fr_fl_config *cfg, const uint8_t *result, size_t n,
                                       int64_t *out, size_t len, fri_secure_header *h);

/* ------------------------------------------------------------------ compression (compress.c) */

/* The largest |q| of a mode (127 for q8, 32767 for q16). */
uint32_t fri_q_levels(uint32_t mode);
/* Bytes of n values in blocks of `block` (one f32 scale each); 8 n uncompressed. */
size_t fri_q_bytes(uint32_t mode, size_t n, size_t block);
/* The scale of fixed-point values of max |x| = m: ceil(m / levels) rounded up to a float
 * (0 for m = 0), a whole number of units. */
uint64_t fri_q_scale(uint64_t m, uint32_t levels);
/* One block of fixed-point values: scale then q, stochastically rounded from rng (one draw
 * per value); returns the bytes written. Decode: q * scale, FR_ERR_FORMAT on a bad scale
 * or a q out of range. */
size_t fri_q_encode_fixed(uint8_t *out, const int64_t *x, size_t n, uint32_t mode, fr_rng *rng);
FR_NODISCARD fr_err fri_q_decode_fixed(int64_t *x, const uint8_t *p, size_t n, uint32_t mode);
/* One block of floats: scale max|x| / levels then q (FR_ERR_RANGE if not finite). */
FR_NODISCARD fr_err fri_q_encode_float(uint8_t *out, const float *x, size_t n, uint32_t mode, fr_rng *rng);
FR_NODISCARD fr_err fri_q_decode_float(float *x, const uint8_t *p, size_t n, uint32_t mode);
/* The k largest |a[i]| of a[0, n) (ties: the lower index), as increasing indices idx[k];
 * order[n] is scratch. */
void fri_topk_select(const float *a, uint32_t n, uint32_t k, uint32_t *order, uint32_t *idx);

typedef struct fri_compress_ws fri_compress_ws;
void fri_compress_ws_free(fri_compress_ws *w);
/* The FR_RESULT_* compression bits of a config (0: RESULTs are not compressed). */
uint32_t fri_result_compress_flags(const fr_fl_config *c);
/* The compressed RESULT of u (see compress.c for the layout) into *buf (grown to *cap),
 * *n bytes. With compress_topk, residual[u->dense_len] is added to the dense update
 * first and keeps what is not sent. *cw: scratch, made on first use. */
FR_NODISCARD fr_err fri_result_encode_compressed(const fr_update *u, const fr_fl_config *cfg, uint64_t bound,
                                                 uint32_t config_crc, uint64_t examples, double loss_sum,
                                                 float *residual, fri_compress_ws **cw, uint8_t **buf, size_t *cap,
                                                 size_t *n);
/* Whether RESULT bytes carry compression flags (their header unchecked). */
bool fri_result_is_compressed(const uint8_t *b, size_t n);
/* A compressed RESULT, checked whole against shape, decoded into r (int64 fixed point:
 * what the uncompressed RESULT of those values would decode to). */
FR_NODISCARD fr_err fri_result_decompress(fr_result *r, const uint8_t *bytes, size_t n, const fr_update_shape *shape);
/* The shared prefix of g quantized (item rows one scale each, dense tensors per block):
 * its size, the encoding (stream (seed, round, 0, COMPRESS_DOWN)) and the decoding into
 * g (the bytes checked present by the caller). */
size_t fri_task_q_bytes(const fr_model *g, uint32_t mode);
FR_NODISCARD fr_err fri_task_q_encode(uint8_t *out, const fr_model *g, uint32_t mode, uint64_t seed, uint32_t round);
FR_NODISCARD fr_err fri_task_q_decode(fr_model *g, const uint8_t *p, uint32_t mode);

/* ------------------------------------------------------------ robust aggregation (robust.c) */

/* fr_fl_config's aggregator fields: FR_OK, or FR_ERR_INVALID naming the field (with DP,
 * rowtrim with decoys, a beta outside [0, 0.5), ...). */
FR_NODISCARD fr_err fri_fl_agg_check(const fr_fl_config *c);

/* One accepted result kept whole for a robust aggregator, its values as sent (w * Δ in
 * fixed point). Grows only, so one kept across rounds stops allocating. */
typedef struct fri_kept {
    uint64_t weight;                        /* n_k */
    int64_t *dense;                         /* [dense_len] */
    size_t dense_cap;
    uint32_t count[FR_UPDATE_MAX_TABLES];   /* rows per table */
    uint32_t *ids[FR_UPDATE_MAX_TABLES];    /* [count] increasing row ids */
    int64_t *vals[FR_UPDATE_MAX_TABLES];    /* [count * width] */
    size_t cap[FR_UPDATE_MAX_TABLES];       /* rows allocated */
} fri_kept;
FR_NODISCARD fr_err fri_kept_store(fri_kept *k, const fri_result_view *v);
void fri_kept_free(fri_kept *k);

/* A round's kept results (weight > 0, in client-id order) and the update's layout. */
typedef struct fri_robust_round {
    const fr_fl_config *cfg;
    const fri_kept *const *kept;            /* [n] */
    uint32_t n;
    uint32_t dense_len, n_tables, n_items;
    const uint32_t *widths;                 /* [n_tables] */
    fr_pool *pool;                          /* or NULL: where the work is spread (the
                                               result does not depend on it) */
} fri_robust_round;
/* The value count of the result layout: dense_len + n_tables * n_items * width. */
size_t fri_robust_len(const fri_robust_round *rr);
/* median, trimmed, rowtrim: the round's aggregated delta of every shared value, in the
 * result layout (the dense values, then each table's n_items rows), into out. */
FR_NODISCARD fr_err fri_robust_location(const fri_robust_round *rr, double *out);
/* normclip, krum, multikrum: per kept result the factor its values take in FedAvg's rule:
 * 0 (left out), 1, or the clip's scale in (0, 1). */
FR_NODISCARD fr_err fri_robust_factors(const fri_robust_round *rr, double *factor);
/* normclip:C on the client: u's whole delta (dense values and rows) scaled to L2 norm C
 * when above it, so under secure aggregation an honest client's update is bounded as the
 * server would bound it (which it cannot check there). */
void fri_normclip_update(fr_update *u, double C);
/* The server's normclip factor of a delta of L2 norm `norm`: 1 up to C (1 + 1e-6), the
 * slack of the fixed-point rounding of an update a client clipped to C itself, else C / norm. */
double fri_normclip_factor(double norm, double C);

#endif
