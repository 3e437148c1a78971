/* The federation's messages: the common header, the RESULT codec and the TASK codec
 * with its decoded form (fr_task). Layouts (little-endian; the header is in fl.h):
 *
 *   TASK (type 1) body:
 *     u32 round | u32 config CRC-32C | u32 config length C | u32 flags (bit 0: DP, bit 1:
 *     the parameters quantized as compress.c says, the config's compress_down)
 *     u64 bound: the largest |value| a RESULT of this round may carry (fr_fl_fixed_bound)
 *     f64 the round's clip C, only with flag bit 0 (a DP federation; 0 flags otherwise)
 *     config block[C]: the model config (n_users 1) then the federation config
 *     zero padding to a multiple of 4 bytes from the start of the message
 *     u64 number of shared parameters P | f32 shared[P] (flag bit 1: quantized blocks)
 *   RESULT (type 2) body:
 *     u32 client | u32 round | u32 config CRC-32C | u32 flags (FR_RESULT_*, 0 without DP)
 *     u64 weight n_k | u64 examples | f64 loss sum
 *     u32 dense length D | u32 number of tables T | i64 dense[D]
 *     T times: u32 width | u32 count | u32 ids[count] | i64 values[count * width]
 *
 * Invariants: decoders check the header (magic, version, type, length, reserved, CRC)
 * before reading the body, then every count against the bytes that remain (fri_rd) and,
 * for a RESULT, against the shape the server expects, before anything is sized; so a
 * message never makes its receiver allocate more than its own size. Encodings are
 * canonical: what decodes re-encodes to the same bytes. */
#include <math.h>
#include <stdio.h>

#include "fedrec/privacy.h"
#include "fl/fl_internal.h"
#include "model/model_internal.h"

size_t fr_msg_header_bytes(void) { return FR_MSG_HEADER_BYTES; }
void fr_msg_free(uint8_t *bytes) { fri_free(bytes); }

void fri_msg_seal(uint8_t *buf, size_t n, uint16_t type) {
    fri_put_u32(buf, FR_MSG_MAGIC);
    fri_put_u16(buf + 4, FR_MSG_VERSION);
    fri_put_u16(buf + 6, type);
    fri_put_u64(buf + 8, (uint64_t)n);
    fri_put_u32(buf + 16, fr_crc32c(0, buf + FR_MSG_HEADER_BYTES, n - FR_MSG_HEADER_BYTES));
    fri_put_u32(buf + 20, 0);
}

static fr_err header(const uint8_t *b, size_t n, const char *what, uint16_t *type) {
    *type = 0;
    if (!b && n) return fri_fail(FR_ERR_INVALID, "%s: NULL bytes", what);
    if (n < FR_MSG_HEADER_BYTES)
        return fri_fail(FR_ERR_FORMAT, "%s: %zu bytes, shorter than the %d-byte header", what, n, FR_MSG_HEADER_BYTES);
    uint32_t magic = fri_get_u32(b);
    if (magic != FR_MSG_MAGIC)
        return fri_fail(FR_ERR_FORMAT, "%s: bad magic 0x%08x, expected 0x%08x (\"FRMS\")", what, magic, FR_MSG_MAGIC);
    unsigned version = fri_get_u16(b + 4);
    if (version != FR_MSG_VERSION)
        return fri_fail(FR_ERR_VERSION, "%s: message format version %u, this build reads version %d", what, version,
                        FR_MSG_VERSION);
    uint64_t total = fri_get_u64(b + 8);
    if (total > n)
        return fri_fail(FR_ERR_FORMAT, "%s: truncated: %zu bytes, the header says %llu", what, n,
                        (unsigned long long)total);
    if (total < n)
        return fri_fail(FR_ERR_FORMAT, "%s: %zu trailing bytes after the %llu the header announces", what,
                        n - (size_t)total, (unsigned long long)total);
    if (fri_get_u32(b + 20) != 0)
        return fri_fail(FR_ERR_FORMAT, "%s: reserved header field is 0x%08x, expected 0", what, fri_get_u32(b + 20));
    *type = fri_get_u16(b + 6);
    return FR_OK;
}

fr_err fr_msg_type(const uint8_t *bytes, size_t n, uint16_t *type) { return header(bytes, n, "message", type); }

fr_err fri_msg_open(const uint8_t *b, size_t n, uint16_t type, const char *what) {
    uint16_t t;
    fr_err e = header(b, n, what, &t);
    if (e) return e;
    if (t != type)
        return fri_fail(FR_ERR_FORMAT, "%s: message type %u, expected %u (%s)", what, t, type, what);
    uint32_t crc = fr_crc32c(0, b + FR_MSG_HEADER_BYTES, n - FR_MSG_HEADER_BYTES), want = fri_get_u32(b + 16);
    if (crc != want)
        return fri_fail(FR_ERR_CHECKSUM, "%s: damaged: body CRC-32C is 0x%08x, the header says 0x%08x", what, crc, want);
    return FR_OK;
}

/* Little-endian arrays: one copy on a little-endian host. */
static void put_u32s(uint8_t *p, const uint32_t *v, size_t n) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (n) memcpy(p, v, n * 4);
#else
    for (size_t i = 0; i < n; i++) fri_put_u32(p + 4 * i, v[i]);
#endif
}
static void put_i64s(uint8_t *p, const int64_t *v, size_t n) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (n) memcpy(p, v, n * 8);
#else
    for (size_t i = 0; i < n; i++) fri_put_u64(p + 8 * i, (uint64_t)v[i]);
#endif
}
static void get_i64s(int64_t *v, const uint8_t *p, size_t n) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (n) memcpy(v, p, n * 8);
#else
    for (size_t i = 0; i < n; i++) v[i] = (int64_t)fri_get_u64(p + 8 * i);
#endif
}
static void put_f32s(uint8_t *p, const float *v, size_t n) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (n) memcpy(p, v, n * 4);
#else
    for (size_t i = 0; i < n; i++) fri_put_f32(p + 4 * i, v[i]);
#endif
}
static void get_f32s(float *v, const uint8_t *p, size_t n) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (n) memcpy(v, p, n * 4);
#else
    for (size_t i = 0; i < n; i++) v[i] = fri_get_f32(p + 4 * i);
#endif
}

/* ------------------------------------------------------------------ RESULT */

#define RESULT_FIXED 48 /* client, round, config CRC, reserved, weight, examples, loss, D, T */

/* a += b * c * k with overflow checks. */
static int add_bytes(size_t *a, size_t b, size_t c, size_t k) {
    size_t x;
    if (fri_mul_size(b, c, &x) || fri_mul_size(x, k, &x) || x > SIZE_MAX - *a) return -1;
    *a += x;
    return 0;
}

size_t fr_result_encoded_size(const fr_result *r) {
    size_t n = FR_MSG_HEADER_BYTES + RESULT_FIXED;
    if (add_bytes(&n, r->dense_len, 1, 8)) return 0;
    for (uint32_t t = 0; t < r->n_tables; t++) {
        const fr_result_table *tb = &r->tables[t];
        if (add_bytes(&n, 1, 1, 8) || add_bytes(&n, tb->count, 1, 4) || add_bytes(&n, tb->count, tb->width, 8))
            return 0;
    }
    return n;
}

size_t fri_result_update_size(const fr_update *u) {
    size_t n = FR_MSG_HEADER_BYTES + RESULT_FIXED;
    if (add_bytes(&n, u->dense_len, 1, 8)) return 0;
    for (uint32_t t = 0; t < u->n_tables; t++) {
        const fr_update_table *tb = &u->tables[t];
        if (add_bytes(&n, 1, 1, 8) || add_bytes(&n, tb->count, 1, 4) || add_bytes(&n, tb->count, tb->width, 8))
            return 0;
    }
    return n;
}

fr_err fri_result_update_valid(const fr_update *u, const fr_fl_config *cfg, uint64_t bound) {
    if (u->n_tables > FR_UPDATE_MAX_TABLES)
        return fri_fail(FR_ERR_INVALID, "RESULT: %u tables, at most %d supported", u->n_tables, FR_UPDATE_MAX_TABLES);
    for (uint32_t t = 0; t < u->n_tables; t++) {
        const fr_update_table *tb = &u->tables[t];
        if (tb->width == 0) return fri_fail(FR_ERR_INVALID, "RESULT: table %u has width 0, expected >= 1", t);
        for (uint32_t i = 1; i < tb->count; i++)
            if (tb->ids[i] <= tb->ids[i - 1])
                return fri_fail(FR_ERR_INVALID, "RESULT: table %u: row id %u at %u follows %u, expected increasing ids",
                                t, tb->ids[i], i, tb->ids[i - 1]);
    }
    return fri_update_check(u, cfg, bound);
}

fr_err fri_result_encode_update(const fr_update *u, const fr_fl_config *cfg, uint64_t bound, uint32_t config_crc,
                                uint64_t examples, double loss_sum, uint8_t *buf, size_t cap, size_t *n) {
    *n = 0;
    fr_err e = fri_result_update_valid(u, cfg, bound);
    if (e) return e;
    size_t total = fri_result_update_size(u);
    if (total == 0) return fri_fail(FR_ERR_INVALID, "RESULT: encoded size overflows size_t");
    if (!buf || cap < total) return fri_fail(FR_ERR_RANGE, "RESULT: needs %zu bytes, buffer has %zu", total, cap);
    uint8_t *p = buf + FR_MSG_HEADER_BYTES;
    fri_put_u32(p, u->client);
    fri_put_u32(p + 4, u->round);
    fri_put_u32(p + 8, config_crc);
    fri_put_u32(p + 12, 0);
    fri_put_u64(p + 16, u->weight);
    fri_put_u64(p + 24, examples);
    fri_put_f64(p + 32, loss_sum);
    fri_put_u32(p + 40, u->dense_len);
    fri_put_u32(p + 44, u->n_tables);
    p += RESULT_FIXED;
    double w = (double)u->weight, wi = cfg->item_sum ? 1.0 : w; /* as fr_result_quantize */
    fri_fl_store_fixed_le(p, u->dense, u->dense_len, w);
    p += (size_t)u->dense_len * 8;
    for (uint32_t t = 0; t < u->n_tables; t++) {
        const fr_update_table *tb = &u->tables[t];
        fri_put_u32(p, tb->width);
        fri_put_u32(p + 4, tb->count);
        p += 8;
        put_u32s(p, tb->ids, tb->count);
        p += (size_t)tb->count * 4;
        size_t nv = (size_t)tb->count * tb->width;
        fri_fl_store_fixed_le(p, tb->values, nv, wi);
        p += nv * 8;
    }
    fri_msg_seal(buf, total, FR_MSG_RESULT);
    *n = total;
    return FR_OK;
}

static fr_err check_result(const fr_result *r) {
    if (r->n_tables > FR_UPDATE_MAX_TABLES)
        return fri_fail(FR_ERR_INVALID, "RESULT: %u tables, at most %d supported", r->n_tables, FR_UPDATE_MAX_TABLES);
    for (uint32_t t = 0; t < r->n_tables; t++) {
        const fr_result_table *tb = &r->tables[t];
        if (tb->width == 0) return fri_fail(FR_ERR_INVALID, "RESULT: table %u has width 0, expected >= 1", t);
        for (uint32_t i = 1; i < tb->count; i++)
            if (tb->ids[i] <= tb->ids[i - 1])
                return fri_fail(FR_ERR_INVALID, "RESULT: table %u: row id %u at %u follows %u, expected increasing ids",
                                t, tb->ids[i], i, tb->ids[i - 1]);
    }
    return FR_OK;
}

fr_err fr_result_encode_to(const fr_result *r, uint8_t *buf, size_t cap, size_t *n) {
    if (n) *n = 0;
    if (!r || !n) return fri_fail(FR_ERR_INVALID, "fr_result_encode_to: NULL argument");
    fr_err e = check_result(r);
    if (e) return e;
    size_t total = fr_result_encoded_size(r);
    if (total == 0) return fri_fail(FR_ERR_INVALID, "RESULT: encoded size overflows size_t");
    if (!buf || cap < total) return fri_fail(FR_ERR_RANGE, "RESULT: needs %zu bytes, buffer has %zu", total, cap);
    uint8_t *p = buf + FR_MSG_HEADER_BYTES;
    fri_put_u32(p, r->client);
    fri_put_u32(p + 4, r->round);
    fri_put_u32(p + 8, r->config_crc);
    fri_put_u32(p + 12, r->flags);
    fri_put_u64(p + 16, r->weight);
    fri_put_u64(p + 24, r->examples);
    fri_put_f64(p + 32, r->loss_sum);
    fri_put_u32(p + 40, r->dense_len);
    fri_put_u32(p + 44, r->n_tables);
    p += RESULT_FIXED;
    put_i64s(p, r->dense, r->dense_len);
    p += (size_t)r->dense_len * 8;
    for (uint32_t t = 0; t < r->n_tables; t++) {
        const fr_result_table *tb = &r->tables[t];
        fri_put_u32(p, tb->width);
        fri_put_u32(p + 4, tb->count);
        p += 8;
        put_u32s(p, tb->ids, tb->count);
        p += (size_t)tb->count * 4;
        size_t nv = (size_t)tb->count * tb->width; /* fits: the encoded size did not overflow */
        put_i64s(p, tb->values, nv);
        p += nv * 8;
    }
    fri_msg_seal(buf, total, FR_MSG_RESULT);
    *n = total;
    return FR_OK;
}

fr_err fr_result_encode(const fr_result *r, uint8_t **bytes, size_t *n) {
    if (bytes) *bytes = NULL;
    if (n) *n = 0;
    if (!r || !bytes || !n) return fri_fail(FR_ERR_INVALID, "fr_result_encode: NULL argument");
    fr_err e = check_result(r);
    if (e) return e;
    size_t total = fr_result_encoded_size(r);
    if (total == 0) return fri_fail(FR_ERR_INVALID, "RESULT: encoded size overflows size_t");
    uint8_t *b = fri_malloc(total);
    if (!b) return FR_ERR_NOMEM;
    e = fr_result_encode_to(r, b, total, n);
    if (e) { fri_free(b); return e; }
    *bytes = b;
    return FR_OK;
}

fr_err fri_result_shape_check(const fr_update_shape *s) {
    if (!s) return fri_fail(FR_ERR_INVALID, "RESULT decode: NULL shape");
    if (s->n_tables > FR_UPDATE_MAX_TABLES)
        return fri_fail(FR_ERR_INVALID, "RESULT shape: %u tables, at most %d supported", s->n_tables,
                        FR_UPDATE_MAX_TABLES);
    if (s->n_tables > 0 && (!s->widths || !s->n_rows))
        return fri_fail(FR_ERR_INVALID, "RESULT shape: NULL widths or n_rows");
    for (uint32_t t = 0; t < s->n_tables; t++)
        if (s->widths[t] == 0) return fri_fail(FR_ERR_INVALID, "RESULT shape: table %u has width 0", t);
    return FR_OK;
}

fr_err fri_result_table_ids(fri_rd *rd, const fr_update_shape *s, uint32_t t, uint32_t mode, uint32_t *width,
                            uint32_t *count, const uint8_t **ids) {
    fr_err e;
    if ((e = fri_rd_u32(rd, width, "table width")) || (e = fri_rd_u32(rd, count, "table row count"))) return e;
    if (*width != s->widths[t])
        return fri_fail(FR_ERR_FORMAT, "RESULT: table %u: row width %u, expected %u", t, *width, s->widths[t]);
    if (*count > s->n_rows[t])
        return fri_fail(FR_ERR_FORMAT, "RESULT: table %u: %u rows, the table has %u", t, *count, s->n_rows[t]);
    /* ids and values together: count * (4 + a row's values) bytes */
    if ((e = fri_rd_need_n(rd, *count, 4 + fri_q_bytes(mode, *width, *width), "table rows"))) return e;
    const uint8_t *p;
    if ((e = fri_rd_bytes(rd, &p, (size_t)*count * 4, "row ids"))) return e;
    for (uint32_t i = 0; i < *count; i++) {
        uint32_t id = fri_get_u32(p + (size_t)i * 4), prev = i ? fri_get_u32(p + (size_t)(i - 1) * 4) : 0;
        if (id >= s->n_rows[t])
            return fri_fail(FR_ERR_FORMAT, "RESULT: table %u: row id %u out of range (the table has %u rows)", t, id,
                            s->n_rows[t]);
        if (i > 0 && id <= prev)
            return fri_fail(FR_ERR_FORMAT, "RESULT: table %u: row id %u at %u follows %u, expected increasing ids", t,
                            id, i, prev);
    }
    *ids = p;
    return FR_OK;
}

fr_err fri_result_view_bytes(fri_result_view *v, const uint8_t *bytes, size_t n, const fr_update_shape *s) {
    fr_err e = fri_result_shape_check(s);
    if (!e) e = fri_msg_open(bytes, n, FR_MSG_RESULT, "RESULT");
    if (e) return e;
    fri_rd rd;
    fri_rd_init(&rd, bytes + FR_MSG_HEADER_BYTES, n - FR_MSG_HEADER_BYTES, "RESULT", "message");
    uint32_t reserved;
    if ((e = fri_rd_u32(&rd, &v->client, "client")) || (e = fri_rd_u32(&rd, &v->round, "round")) ||
        (e = fri_rd_u32(&rd, &v->config_crc, "config CRC")) || (e = fri_rd_u32(&rd, &reserved, "reserved")) ||
        (e = fri_rd_u64(&rd, &v->weight, "weight")) || (e = fri_rd_u64(&rd, &v->examples, "examples")) ||
        (e = fri_rd_f64(&rd, &v->loss_sum, "loss")) || (e = fri_rd_u32(&rd, &v->dense_len, "dense length")) ||
        (e = fri_rd_u32(&rd, &v->n_tables, "table count")))
        return e;
    if (reserved > FR_RESULT_UNCLIPPED)
        return fri_fail(FR_ERR_FORMAT, "RESULT: flags 0x%x, expected 0 or 1", reserved);
    v->flags = reserved;
    if (!(v->loss_sum >= 0) || !isfinite(v->loss_sum))
        return fri_fail(FR_ERR_FORMAT, "RESULT: loss sum %g, expected a finite value >= 0", v->loss_sum);
    if (v->dense_len != s->dense_len)
        return fri_fail(FR_ERR_FORMAT, "RESULT: dense length %u, expected %u", v->dense_len, s->dense_len);
    if (v->n_tables != s->n_tables)
        return fri_fail(FR_ERR_FORMAT, "RESULT: %u tables, expected %u", v->n_tables, s->n_tables);
    v->native = false;
    v->bytes = n;
    const uint8_t *p;
    if ((e = fri_rd_need_n(&rd, v->dense_len, 8, "dense part")) ||
        (e = fri_rd_bytes(&rd, &p, (size_t)v->dense_len * 8, "dense part")))
        return e;
    v->dense = p;
    for (uint32_t t = 0; t < v->n_tables; t++) {
        uint32_t width, count;
        if ((e = fri_result_table_ids(&rd, s, t, FR_COMPRESS_NONE, &width, &count, &p))) return e;
        v->tables[t].width = width;
        v->tables[t].count = count;
        v->tables[t].ids = p;
        if ((e = fri_rd_bytes(&rd, &p, (size_t)count * width * 8, "row values"))) return e;
        v->tables[t].values = p;
    }
    return fri_rd_end(&rd, "the last table");
}

void fri_result_view_of(fri_result_view *v, const fr_result *r) {
    v->client = r->client;
    v->round = r->round;
    v->config_crc = r->config_crc;
    v->flags = r->flags;
    v->weight = r->weight;
    v->examples = r->examples;
    v->loss_sum = r->loss_sum;
    v->dense_len = r->dense_len;
    v->n_tables = r->n_tables < FR_UPDATE_MAX_TABLES ? r->n_tables : FR_UPDATE_MAX_TABLES;
    v->native = true;
    v->bytes = fr_result_encoded_size(r);
    v->dense = r->dense;
    for (uint32_t t = 0; t < v->n_tables; t++) {
        v->tables[t].width = r->tables[t].width;
        v->tables[t].count = r->tables[t].count;
        v->tables[t].ids = r->tables[t].ids;
        v->tables[t].values = r->tables[t].values;
    }
}

fr_err fr_result_decode(fr_result *r, const uint8_t *bytes, size_t n, const fr_update_shape *s) {
    if (!r) return fri_fail(FR_ERR_INVALID, "fr_result_decode: NULL result");
    fri_result_view v;
    fr_err e = fri_result_view_bytes(&v, bytes, n, s); /* every check, nothing sized yet */
    if (!e) e = fri_result_reset(r, s->dense_len, s->n_tables, s->widths);
    if (e) return e;
    r->client = v.client;
    r->round = v.round;
    r->config_crc = v.config_crc;
    r->flags = v.flags;
    r->weight = v.weight;
    r->examples = v.examples;
    r->loss_sum = v.loss_sum;
    get_i64s(r->dense, v.dense, v.dense_len);
    for (uint32_t t = 0; t < v.n_tables; t++) {
        if ((e = fri_result_table_resize(r, t, v.tables[t].count))) return e;
        fr_result_table *tb = &r->tables[t];
        const uint8_t *ids = v.tables[t].ids;
        for (uint32_t i = 0; i < tb->count; i++) tb->ids[i] = fri_get_u32(ids + (size_t)i * 4);
        get_i64s(tb->values, v.tables[t].values, (size_t)tb->count * tb->width);
    }
    return FR_OK;
}

/* ------------------------------------------------------------------ TASK */

#define TASK_FIXED 24 /* round, config CRC, config length, reserved, bound */

struct fr_task {
    uint32_t round;         /* the round to compute */
    uint32_t config_crc;    /* CRC-32C of the config block */
    uint64_t bound;         /* the largest |value| of a RESULT this round */
    double clip;            /* DP: the round's clip (0 without DP) */
    fr_model_config mcfg;   /* n_users 1 */
    fr_fl_config cfg;
    fr_model *g;            /* the global parameters (shared prefix), or NULL when empty */
    bool rows_only;         /* a rows TASK: g's dense tensors are the round's, its item rows
                               NaN until fri_task_rows_fill gives those a client asked for */
};

fr_err fr_task_create(fr_task **out) {
    *out = fri_calloc(1, sizeof **out);
    return *out ? FR_OK : FR_ERR_NOMEM;
}

void fr_task_free(fr_task *t) {
    if (!t) return;
    fr_model_free(t->g);
    fri_free(t);
}

uint32_t fr_task_round(const fr_task *t) { return t->round; }
uint64_t fr_task_bound(const fr_task *t) { return t->bound; }
uint32_t fr_task_config_crc(const fr_task *t) { return t->config_crc; }
const fr_model_config *fr_task_model_config(const fr_task *t) { return &t->mcfg; }
const fr_fl_config *fr_task_fl_config(const fr_task *t) { return &t->cfg; }
const fr_model *fr_task_model(const fr_task *t) { return t->g; }
double fr_task_dp_clip(const fr_task *t) { return t->clip; }
bool fri_task_rows_only(const fr_task *t) { return t->rows_only; }

/* The shared floats outside the item tables: a rows TASK's parameters. */
static size_t dense_floats(const fr_model *g) {
    size_t n = 0;
    for (int t = 0; t < fr_model_n_tensors(g); t++) {
        const fr_tensor *x = fr_model_tensor(g, t);
        if (x->kind == FR_TENSOR_DENSE) n += (size_t)x->rows * x->cols;
    }
    return n;
}

/* The floats of one row of every item table. */
static size_t item_width(const fr_model *g) {
    size_t w = 0;
    for (int t = 0; t < fr_model_n_tensors(g); t++)
        if (fr_model_tensor(g, t)->kind == FR_TENSOR_ITEM_TABLE) w += fr_model_tensor(g, t)->cols;
    return w;
}

/* Offset of the parameter count: after the header, the fixed fields (and the DP clip) and
 * the config, padded so the floats start 4-aligned in the message (and 8-aligned count). */
static size_t params_at(size_t config_n, bool dp) {
    size_t at = FR_MSG_HEADER_BYTES + TASK_FIXED + (dp ? 8 : 0) + config_n;
    return (at + 7) & ~(size_t)7;
}

fr_err fri_task_encode(fri_buf *b, uint32_t round, const uint8_t *config, size_t config_n, uint32_t config_crc,
                       uint64_t bound, const fr_model *g) {
    return fri_task_encode_dp(b, round, config, config_n, config_crc, bound, 0, g);
}

fr_err fri_task_encode_dp(fri_buf *b, uint32_t round, const uint8_t *config, size_t config_n, uint32_t config_crc,
                          uint64_t bound, double dp_clip, const fr_model *g) {
    return fri_task_encode_q(b, round, config, config_n, config_crc, bound, dp_clip, g, 0, 0);
}

static fr_err task_encode(fri_buf *b, uint32_t round, const uint8_t *config, size_t config_n, uint32_t config_crc,
                          uint64_t bound, double dp_clip, const fr_model *g, uint32_t qmode, uint64_t seed, bool rows);

fr_err fri_task_encode_q(fri_buf *b, uint32_t round, const uint8_t *config, size_t config_n, uint32_t config_crc,
                         uint64_t bound, double dp_clip, const fr_model *g, uint32_t qmode, uint64_t seed) {
    return task_encode(b, round, config, config_n, config_crc, bound, dp_clip, g, qmode, seed, false);
}

fr_err fri_task_encode_rows(fri_buf *b, uint32_t round, const uint8_t *config, size_t config_n, uint32_t config_crc,
                            uint64_t bound, double dp_clip, const fr_model *g) {
    return task_encode(b, round, config, config_n, config_crc, bound, dp_clip, g, 0, 0, true);
}

static fr_err task_encode(fri_buf *b, uint32_t round, const uint8_t *config, size_t config_n, uint32_t config_crc,
                          uint64_t bound, double dp_clip, const fr_model *g, uint32_t qmode, uint64_t seed, bool rows) {
    bool dp = dp_clip > 0;
    size_t ns = rows ? dense_floats(g) : fr_model_n_shared(g), at = params_at(config_n, dp), total;
    if (qmode) total = fri_task_q_bytes(g, qmode);
    else if (fri_mul_size(ns, 4, &total)) total = SIZE_MAX;
    if (total > SIZE_MAX - at - 8)
        return fri_fail(FR_ERR_NOMEM, "TASK: %zu shared parameters do not fit in memory", ns);
    total += at + 8;
    b->len = 0;
    uint8_t hdr[FR_MSG_HEADER_BYTES + TASK_FIXED] = {0};
    fri_put_u32(hdr + FR_MSG_HEADER_BYTES, round);
    fri_put_u32(hdr + FR_MSG_HEADER_BYTES + 4, config_crc);
    fri_put_u32(hdr + FR_MSG_HEADER_BYTES + 8, (uint32_t)config_n);
    fri_put_u32(hdr + FR_MSG_HEADER_BYTES + 12, (dp ? 1u : 0u) | (qmode ? 2u : 0u) | (rows ? 4u : 0u));
    fri_put_u64(hdr + FR_MSG_HEADER_BYTES + 16, bound);
    fri_buf_put(b, hdr, sizeof hdr);
    if (dp) {
        uint8_t c8[8];
        fri_put_f64(c8, dp_clip);
        fri_buf_put(b, c8, 8);
    }
    fri_buf_put(b, config, config_n);
    static const uint8_t zero[8] = {0};
    fri_buf_put(b, zero, at - b->len);
    fri_buf_u64(b, ns);
    if (b->err) return b->err;
    if (b->cap < total) { /* the floats are copied in place below */
        uint8_t *d = fri_realloc(b->data, total);
        if (!d) return FR_ERR_NOMEM;
        b->data = d;
        b->cap = total;
    }
    if (qmode) {
        fr_err e = fri_task_q_encode(b->data + b->len, g, qmode, seed, round);
        if (e) return e;
    } else if (rows) { /* the dense tensors in order */
        uint8_t *p = b->data + b->len;
        for (int t = 0; t < fr_model_n_tensors(g); t++) {
            const fr_tensor *x = fr_model_tensor(g, t);
            if (x->kind != FR_TENSOR_DENSE) continue;
            size_t len = (size_t)x->rows * x->cols;
            put_f32s(p, fr_model_params_const(g) + x->offset, len);
            p += 4 * len;
        }
    } else {
        put_f32s(b->data + b->len, fr_model_params_const(g), ns);
    }
    b->len = total;
    fri_msg_seal(b->data, total, FR_MSG_TASK);
    return FR_OK;
}

fr_err fr_task_decode(fr_task *t, const uint8_t *bytes, size_t n) {
    if (!t) return fri_fail(FR_ERR_INVALID, "fr_task_decode: NULL task");
    fr_err e = fri_msg_open(bytes, n, FR_MSG_TASK, "TASK");
    if (e) goto fail;
    fri_rd rd;
    fri_rd_init(&rd, bytes, n, "TASK", "message");
    rd.at = FR_MSG_HEADER_BYTES;
    uint32_t round, crc, config_n, reserved;
    uint64_t bound;
    if ((e = fri_rd_u32(&rd, &round, "round")) || (e = fri_rd_u32(&rd, &crc, "config CRC")) ||
        (e = fri_rd_u32(&rd, &config_n, "config length")) || (e = fri_rd_u32(&rd, &reserved, "reserved")) ||
        (e = fri_rd_u64(&rd, &bound, "bound")))
        goto fail;
    if (reserved > 7 || (reserved & 6) == 6) {
        e = fri_fail(FR_ERR_FORMAT, "TASK: flags 0x%x, expected 0..7 without both 2 and 4", reserved);
        goto fail;
    }
    const bool quantized = reserved & 2, rows_only = reserved & 4;
    reserved &= 1;
    double clip = 0;
    if (reserved && (e = fri_rd_f64(&rd, &clip, "DP clip"))) goto fail;
    if (reserved && !(clip > 0 && clip <= FR_DP_MAX_CLIP)) {
        e = fri_fail(FR_ERR_FORMAT, "TASK: DP clip %g, expected (0, %g]", clip, FR_DP_MAX_CLIP);
        goto fail;
    }
    if (bound == 0 || bound > fr_fl_fixed_bound(1)) {
        e = fri_fail(FR_ERR_FORMAT, "TASK: bound %llu, expected 1..%llu", (unsigned long long)bound,
                     (unsigned long long)fr_fl_fixed_bound(1));
        goto fail;
    }
    if (round == 0) { e = fri_fail(FR_ERR_FORMAT, "TASK: round 0, expected >= 1"); goto fail; }
    const uint8_t *cb;
    if ((e = fri_rd_bytes(&rd, &cb, config_n, "config block"))) goto fail;
    if (fr_crc32c(0, cb, config_n) != crc) {
        e = fri_fail(FR_ERR_FORMAT, "TASK: the config block's CRC-32C is 0x%08x, the task says 0x%08x",
                     fr_crc32c(0, cb, config_n), crc);
        goto fail;
    }
    fri_rd cr;
    fri_rd_init(&cr, cb, config_n, "TASK config", "config block");
    fr_model_config mc;
    fr_fl_config fc;
    if ((e = fri_fl_config_block_get(&cr, &mc, &fc))) goto fail;
    /* a DP federation's model without a clip is no round to compute (the networked
     * server's final model, DONE): a step on it is refused */
    if (reserved && !fr_fl_dp_on(&fc)) {
        e = fri_fail(FR_ERR_FORMAT, "TASK: a DP clip for a federation without DP");
        goto fail;
    }
    size_t at = params_at(config_n, reserved != 0);
    if ((e = fri_rd_need(&rd, at - rd.at, "padding"))) goto fail;
    for (size_t i = rd.at; i < at; i++)
        if (bytes[i]) { e = fri_fail(FR_ERR_FORMAT, "TASK: padding byte %zu is %u, expected 0", i, bytes[i]); goto fail; }
    rd.at = at;
    if (quantized && !fc.compress_down) {
        e = fri_fail(FR_ERR_FORMAT, "TASK: quantized parameters, but the federation compresses no downlink");
        goto fail;
    }
    uint64_t np;
    if ((e = fri_rd_u64(&rd, &np, "parameter count")) ||
        (!quantized && (e = fri_rd_need_n(&rd, np, 4, "shared parameters"))))
        goto fail;
    /* the model the config gives: its shared prefix must be exactly what was sent */
    bool same = t->g && memcmp(&t->mcfg, &mc, sizeof mc) == 0;
    if (!same) {
        fr_model_free(t->g);
        t->g = NULL;
        fr_model *g = NULL;
        if ((e = fri_model_alloc(&g, &mc))) goto fail;
        memset(fr_model_params(g), 0, fr_model_n_params(g) * sizeof(float));
        t->g = g;
    }
    size_t want = rows_only ? dense_floats(t->g) : fr_model_n_shared(t->g);
    if (np != want) {
        e = fri_fail(FR_ERR_FORMAT, "TASK: %llu %s parameters, its model config gives %zu", (unsigned long long)np,
                     rows_only ? "dense" : "shared", want);
        goto fail;
    }
    const uint8_t *p;
    size_t pn = quantized ? fri_task_q_bytes(t->g, fc.compress_down) : (size_t)np * 4;
    if ((e = fri_rd_bytes(&rd, &p, pn, "shared parameters")) || (e = fri_rd_end(&rd, "the parameters"))) goto fail;
    if (quantized) {
        if ((e = fri_task_q_decode(t->g, p, fc.compress_down))) goto fail;
    } else if (rows_only) { /* dense tensors from the message; item rows NaN until filled, so a
                               read of a row the client did not fetch cannot pass unseen */
        float *w = fr_model_params(t->g);
        for (int k = 0; k < fr_model_n_tensors(t->g); k++) {
            const fr_tensor *x = fr_model_tensor(t->g, k);
            size_t len = (size_t)x->rows * x->cols;
            if (x->kind == FR_TENSOR_DENSE) {
                get_f32s(w + x->offset, p, len);
                p += 4 * len;
            } else if (x->kind == FR_TENSOR_ITEM_TABLE) {
                for (size_t i = 0; i < len; i++) w[x->offset + i] = NAN;
            }
        }
    } else {
        get_f32s(fr_model_params(t->g), p, (size_t)np);
    }
    t->rows_only = rows_only;
    t->round = round;
    t->config_crc = crc;
    t->bound = bound;
    t->clip = clip;
    t->mcfg = mc;
    t->cfg = fc;
    return FR_OK;
fail:
    fr_model_free(t->g);
    t->g = NULL;
    t->round = 0;
    t->rows_only = false;
    return e;
}

/* ------------------------------------------------------------------ rows on request */

size_t fri_task_rows_bytes(const fr_model *g, size_t n) {
    size_t w = item_width(g), r;
    if (fri_mul_size(n, w, &r) || fri_mul_size(r, 4, &r)) return SIZE_MAX;
    return r;
}

fr_err fri_task_rows_check(const fr_model *g, const uint32_t *ids, size_t n) {
    uint32_t ni = fr_model_config_of(g)->n_items;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] >= ni) return fri_fail(FR_ERR_FORMAT, "rows: item %u out of range, the catalogue has %u", ids[i], ni);
        if (i && ids[i] <= ids[i - 1])
            return fri_fail(FR_ERR_FORMAT, "rows: item %u follows %u, expected increasing", ids[i], ids[i - 1]);
    }
    return FR_OK;
}

void fri_task_rows_put(uint8_t *out, const fr_model *g, const uint32_t *ids, size_t n) {
    const float *w = fr_model_params_const(g);
    for (int t = 0; t < fr_model_n_tensors(g); t++) {
        const fr_tensor *x = fr_model_tensor(g, t);
        if (x->kind != FR_TENSOR_ITEM_TABLE) continue;
        for (size_t i = 0; i < n; i++) {
            put_f32s(out, w + x->offset + (size_t)ids[i] * x->cols, x->cols);
            out += 4 * (size_t)x->cols;
        }
    }
}

fr_err fri_task_rows_fill(fr_task *t, const uint32_t *ids, size_t n, const uint8_t *b, size_t len) {
    if (!t->g || !t->rows_only) return fri_fail(FR_ERR_STATE, "rows: the TASK is not a rows TASK");
    fr_err e = fri_task_rows_check(t->g, ids, n);
    if (e) return e;
    size_t want = fri_task_rows_bytes(t->g, n);
    if (len != want) return fri_fail(FR_ERR_FORMAT, "rows: %zu bytes for %zu rows, expected %zu", len, n, want);
    float *w = fr_model_params(t->g);
    for (int k = 0; k < fr_model_n_tensors(t->g); k++) {
        const fr_tensor *x = fr_model_tensor(t->g, k);
        if (x->kind != FR_TENSOR_ITEM_TABLE) continue;
        for (size_t i = 0; i < n; i++) {
            get_f32s(w + x->offset + (size_t)ids[i] * x->cols, b, x->cols);
            b += 4 * (size_t)x->cols;
        }
    }
    return FR_OK;
}
