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

#ifdef __cplusplus
}
#endif
#endif
