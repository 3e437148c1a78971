/* Client updates and their wire encoding (format in include/fedrec/fl.h).
 *
 * Invariants:
 *   - An fr_update owns its arrays; capacities only grow, so one update reused across
 *     rounds stops allocating once it has seen its largest round.
 *   - Decoding is two passes: the first reads the whole message and checks every length,
 *     count, id and value against the bytes that remain and against the expected shape,
 *     allocating nothing; the second sizes the update and copies. So no size computed
 *     from the bytes is used before it is checked, and a message can never make the
 *     receiver allocate more than it sent.
 *   - The encoding is canonical: a message that decodes re-encodes to the same bytes. */
#include <math.h>

#include "core/core.h"
#include "fedrec/fl.h"

#define BODY_FIXED 24 /* weight, client, round, dense length, table count */

size_t fr_update_header_bytes(void) { return FR_UPDATE_HEADER_BYTES; }

fr_err fr_update_create(fr_update **out) {
    *out = fri_calloc(1, sizeof **out);
    return *out ? FR_OK : FR_ERR_NOMEM;
}

void fr_update_free(fr_update *u) {
    if (!u) return;
    for (uint32_t t = 0; t < u->tables_cap; t++) {
        fri_free(u->tables[t].ids);
        fri_free(u->tables[t].values);
    }
    fri_free(u->tables);
    fri_free(u->dense);
    fri_free(u);
}

fr_err fr_update_reset(fr_update *u, uint32_t dense_len, uint32_t n_tables, const uint32_t *widths) {
    if (!u) return fri_fail(FR_ERR_INVALID, "fr_update_reset: NULL update");
    if (n_tables > FR_UPDATE_MAX_TABLES)
        return fri_fail(FR_ERR_INVALID, "update: %u tables, at most %d supported", n_tables, FR_UPDATE_MAX_TABLES);
    if (n_tables > 0 && !widths) return fri_fail(FR_ERR_INVALID, "fr_update_reset: NULL widths");
    for (uint32_t t = 0; t < n_tables; t++)
        if (widths[t] == 0) return fri_fail(FR_ERR_INVALID, "update: table %u has width 0, expected >= 1", t);
    if (dense_len > u->dense_cap) {
        float *d = fri_realloc(u->dense, (size_t)dense_len * sizeof *d);
        if (!d) return FR_ERR_NOMEM;
        u->dense = d;
        u->dense_cap = dense_len;
    }
    if (n_tables > u->tables_cap) {
        fr_update_table *tb = fri_realloc(u->tables, (size_t)n_tables * sizeof *tb);
        if (!tb) return FR_ERR_NOMEM;
        memset(tb + u->tables_cap, 0, (size_t)(n_tables - u->tables_cap) * sizeof *tb);
        u->tables = tb;
        u->tables_cap = n_tables;
    }
    if (dense_len) memset(u->dense, 0, (size_t)dense_len * sizeof *u->dense);
    u->dense_len = dense_len;
    for (uint32_t t = 0; t < n_tables; t++) {
        fr_update_table *tb = &u->tables[t];
        if (tb->width != widths[t]) {
            /* values hold cap_rows * old width floats and ids cap_rows ids: keep the
             * row capacity both arrays can serve at the new width */
            size_t floats = tb->cap_rows * tb->width, rows = floats / widths[t];
            if (rows < tb->cap_rows) tb->cap_rows = rows;
            tb->width = widths[t];
        }
        tb->count = 0;
    }
    u->n_tables = n_tables;
    return FR_OK;
}

fr_err fr_update_table_resize(fr_update *u, uint32_t t, uint32_t count) {
    if (!u || t >= u->n_tables)
        return fri_fail(FR_ERR_INVALID, "fr_update_table_resize: table %u, the update has %u", t, u ? u->n_tables : 0);
    fr_update_table *tb = &u->tables[t];
    if (count > tb->cap_rows) {
        size_t nv, bv, bi;
        if (fri_mul_size(count, tb->width, &nv) || fri_mul_size(nv, sizeof(float), &bv) ||
            fri_mul_size(count, sizeof(uint32_t), &bi))
            return fri_fail(FR_ERR_NOMEM, "update: table %u: %u rows of width %u overflow memory", t, count, tb->width);
        uint32_t *ids = fri_realloc(tb->ids, bi);
        if (!ids) return FR_ERR_NOMEM;
        tb->ids = ids; /* larger than cap_rows says: harmless */
        float *v = fri_realloc(tb->values, bv);
        if (!v) return FR_ERR_NOMEM;
        tb->values = v;
        tb->cap_rows = count;
    }
    tb->count = count;
    return FR_OK;
}

/* ------------------------------------------------------------ sizes */

/* a += b * c * 4 with overflow checks. */
static int add_floats(size_t *a, size_t b, size_t c) {
    size_t x;
    if (fri_mul_size(b, c, &x) || fri_mul_size(x, 4, &x) || x > SIZE_MAX - *a) return -1;
    *a += x;
    return 0;
}

size_t fr_update_wire_size(uint32_t dense_len, uint32_t n_tables, const uint32_t *widths, const uint32_t *counts) {
    size_t n = FR_UPDATE_HEADER_BYTES + BODY_FIXED;
    if (add_floats(&n, dense_len, 1)) return 0;
    for (uint32_t t = 0; t < n_tables; t++) {
        if (add_floats(&n, 1, 2) || add_floats(&n, counts[t], 1) || add_floats(&n, counts[t], widths[t])) return 0;
    }
    return n;
}

size_t fr_update_encoded_size(const fr_update *u) {
    size_t n = FR_UPDATE_HEADER_BYTES + BODY_FIXED;
    if (add_floats(&n, u->dense_len, 1)) return 0;
    for (uint32_t t = 0; t < u->n_tables; t++) {
        const fr_update_table *tb = &u->tables[t];
        if (add_floats(&n, 1, 2) || add_floats(&n, tb->count, 1) || add_floats(&n, tb->count, tb->width)) return 0;
    }
    return n;
}

/* ------------------------------------------------------------ encode */

static fr_err check_update(const fr_update *u) {
    if (u->n_tables > FR_UPDATE_MAX_TABLES)
        return fri_fail(FR_ERR_INVALID, "update: %u tables, at most %d supported", u->n_tables, FR_UPDATE_MAX_TABLES);
    for (uint32_t t = 0; t < u->n_tables; t++) {
        const fr_update_table *tb = &u->tables[t];
        if (tb->width == 0) return fri_fail(FR_ERR_INVALID, "update: table %u has width 0, expected >= 1", t);
        for (uint32_t i = 1; i < tb->count; i++)
            if (tb->ids[i] <= tb->ids[i - 1])
                return fri_fail(FR_ERR_INVALID, "update: table %u: row id %u at %u follows %u, expected increasing ids",
                                t, tb->ids[i], i, tb->ids[i - 1]);
    }
    return FR_OK;
}

/* n u32 / f32 values to little-endian bytes: one copy on a little-endian host. */
static void put_u32s(uint8_t *p, const uint32_t *v, size_t n) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (n) memcpy(p, v, n * 4);
#else
    for (size_t i = 0; i < n; i++) fri_put_u32(p + 4 * i, v[i]);
#endif
}
static void put_f32s(uint8_t *p, const float *v, size_t n) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (n) memcpy(p, v, n * 4);
#else
    for (size_t i = 0; i < n; i++) fri_put_f32(p + 4 * i, v[i]);
#endif
}

fr_err fr_update_encode_to(const fr_update *u, uint8_t *buf, size_t cap, size_t *n) {
    if (n) *n = 0;
    if (!u || !n) return fri_fail(FR_ERR_INVALID, "fr_update_encode_to: NULL argument");
    fr_err e = check_update(u);
    if (e) return e;
    size_t total = fr_update_encoded_size(u);
    if (total == 0) return fri_fail(FR_ERR_INVALID, "update: encoded size overflows size_t");
    if (!buf || cap < total) return fri_fail(FR_ERR_RANGE, "update: needs %zu bytes, buffer has %zu", total, cap);
    uint8_t *p = buf + FR_UPDATE_HEADER_BYTES;
    fri_put_u64(p, u->weight);
    fri_put_u32(p + 8, u->client);
    fri_put_u32(p + 12, u->round);
    fri_put_u32(p + 16, u->dense_len);
    fri_put_u32(p + 20, u->n_tables);
    p += BODY_FIXED;
    put_f32s(p, u->dense, u->dense_len);
    p += (size_t)u->dense_len * 4;
    for (uint32_t t = 0; t < u->n_tables; t++) {
        const fr_update_table *tb = &u->tables[t];
        fri_put_u32(p, tb->width);
        fri_put_u32(p + 4, tb->count);
        p += 8;
        put_u32s(p, tb->ids, tb->count);
        p += (size_t)tb->count * 4;
        size_t nv = (size_t)tb->count * tb->width; /* fits: encoded size did not overflow */
        put_f32s(p, tb->values, nv);
        p += nv * 4;
    }
    fri_put_u32(buf, FR_UPDATE_MAGIC);
    fri_put_u16(buf + 4, FR_UPDATE_VERSION);
    fri_put_u16(buf + 6, FR_MSG_UPDATE);
    fri_put_u64(buf + 8, (uint64_t)total);
    fri_put_u32(buf + 16, fr_crc32c(0, buf + FR_UPDATE_HEADER_BYTES, total - FR_UPDATE_HEADER_BYTES));
    fri_put_u32(buf + 20, 0);
    *n = total;
    return FR_OK;
}

fr_err fr_update_encode(const fr_update *u, uint8_t **bytes, size_t *n) {
    if (bytes) *bytes = NULL;
    if (n) *n = 0;
    if (!u || !bytes || !n) return fri_fail(FR_ERR_INVALID, "fr_update_encode: NULL argument");
    fr_err e = check_update(u);
    if (e) return e;
    size_t total = fr_update_encoded_size(u);
    if (total == 0) return fri_fail(FR_ERR_INVALID, "update: encoded size overflows size_t");
    uint8_t *b = fri_malloc(total);
    if (!b) return FR_ERR_NOMEM;
    e = fr_update_encode_to(u, b, total, n);
    if (e) { fri_free(b); return e; }
    *bytes = b;
    return FR_OK;
}

void fr_update_bytes_free(uint8_t *bytes) { fri_free(bytes); }

/* ------------------------------------------------------------ decode */

static fr_err check_shape(const fr_update_shape *s) {
    if (!s) return fri_fail(FR_ERR_INVALID, "update decode: NULL shape");
    if (s->n_tables > FR_UPDATE_MAX_TABLES)
        return fri_fail(FR_ERR_INVALID, "update shape: %u tables, at most %d supported", s->n_tables,
                        FR_UPDATE_MAX_TABLES);
    if (s->n_tables > 0 && (!s->widths || !s->n_rows))
        return fri_fail(FR_ERR_INVALID, "update shape: NULL widths or n_rows");
    for (uint32_t t = 0; t < s->n_tables; t++)
        if (s->widths[t] == 0) return fri_fail(FR_ERR_INVALID, "update shape: table %u has width 0", t);
    return FR_OK;
}

/* Reads n little-endian floats at p into out; FR_ERR_FORMAT on a non-finite one. On a
 * little-endian host one copy, then a branch-free scan of the exponent bits (both
 * vectorise); the index of a bad value is looked for only when there is one. */
static fr_err get_floats(const uint8_t *p, size_t n, float *out, const char *what, uint32_t t) {
    if (n == 0) return FR_OK; /* out may be NULL then (no dense part) */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    memcpy(out, p, n * sizeof *out);
    if (fri_all_finite(out, n)) return FR_OK;
#else
    for (size_t i = 0; i < n; i++) out[i] = fri_get_f32(p + 4 * i);
#endif
    for (size_t i = 0; i < n; i++)
        if (!isfinite(out[i]))
            return fri_fail(FR_ERR_FORMAT, "update: %s %u: value %zu is not finite (%g)", what, t, i, (double)out[i]);
    return FR_OK;
}

/* One pass: checks every field against the bytes that remain and the shape before it
 * sizes anything in u, then copies it. */
static fr_err parse(fr_update *u, const uint8_t *b, size_t n, const fr_update_shape *s) {
    if (n < FR_UPDATE_HEADER_BYTES)
        return fri_fail(FR_ERR_FORMAT, "update: %zu bytes, shorter than the %d-byte header", n, FR_UPDATE_HEADER_BYTES);
    uint32_t magic = fri_get_u32(b);
    if (magic != FR_UPDATE_MAGIC)
        return fri_fail(FR_ERR_FORMAT, "update: bad magic 0x%08x, expected 0x%08x (\"FRUP\")", magic, FR_UPDATE_MAGIC);
    unsigned version = fri_get_u16(b + 4), type = fri_get_u16(b + 6);
    if (version != FR_UPDATE_VERSION)
        return fri_fail(FR_ERR_VERSION, "update: format version %u, this build reads version %d", version,
                        FR_UPDATE_VERSION);
    if (type != FR_MSG_UPDATE)
        return fri_fail(FR_ERR_FORMAT, "update: message type %u, expected %d (update)", type, FR_MSG_UPDATE);
    uint64_t total = fri_get_u64(b + 8);
    if (total > n)
        return fri_fail(FR_ERR_FORMAT, "update: truncated: %zu bytes, the header says %llu", n,
                        (unsigned long long)total);
    if (total < n)
        return fri_fail(FR_ERR_FORMAT, "update: %zu trailing bytes after the %llu the header announces",
                        n - (size_t)total, (unsigned long long)total);
    if (fri_get_u32(b + 20) != 0)
        return fri_fail(FR_ERR_FORMAT, "update: reserved header field is 0x%08x, expected 0", fri_get_u32(b + 20));
    uint32_t crc = fr_crc32c(0, b + FR_UPDATE_HEADER_BYTES, n - FR_UPDATE_HEADER_BYTES), want = fri_get_u32(b + 16);
    if (crc != want)
        return fri_fail(FR_ERR_CHECKSUM, "update: body CRC-32C is 0x%08x, the header says 0x%08x", crc, want);

    const uint8_t *p = b + FR_UPDATE_HEADER_BYTES;
    size_t rem = n - FR_UPDATE_HEADER_BYTES;
    if (rem < BODY_FIXED)
        return fri_fail(FR_ERR_FORMAT, "update: body of %zu bytes, shorter than its %d fixed bytes", rem, BODY_FIXED);
    uint32_t dense_len = fri_get_u32(p + 16), n_tables = fri_get_u32(p + 20);
    if (dense_len != s->dense_len)
        return fri_fail(FR_ERR_FORMAT, "update: dense length %u, expected %u", dense_len, s->dense_len);
    if (n_tables != s->n_tables)
        return fri_fail(FR_ERR_FORMAT, "update: %u tables, expected %u", n_tables, s->n_tables);
    fr_err e = fr_update_reset(u, s->dense_len, s->n_tables, s->widths);
    if (e) return e;
    u->weight = fri_get_u64(p);
    u->client = fri_get_u32(p + 8);
    u->round = fri_get_u32(p + 12);
    p += BODY_FIXED;
    rem -= BODY_FIXED;
    if (rem / 4 < dense_len)
        return fri_fail(FR_ERR_FORMAT, "update: dense part of %u floats, only %zu bytes left", dense_len, rem);
    e = get_floats(p, dense_len, u->dense, "dense part", 0);
    if (e) return e;
    p += (size_t)dense_len * 4;
    rem -= (size_t)dense_len * 4;
    for (uint32_t t = 0; t < n_tables; t++) {
        if (rem < 8) return fri_fail(FR_ERR_FORMAT, "update: table %u: header truncated (%zu bytes left)", t, rem);
        uint32_t width = fri_get_u32(p), count = fri_get_u32(p + 4);
        p += 8;
        rem -= 8;
        if (width != s->widths[t])
            return fri_fail(FR_ERR_FORMAT, "update: table %u: row width %u, expected %u", t, width, s->widths[t]);
        if (count > s->n_rows[t])
            return fri_fail(FR_ERR_FORMAT, "update: table %u: %u rows, the table has %u", t, count, s->n_rows[t]);
        if (rem / 4 < count)
            return fri_fail(FR_ERR_FORMAT, "update: table %u: %u row ids, only %zu bytes left", t, count, rem);
        size_t nv;
        if (fri_mul_size(count, width, &nv) || rem / 4 - count < nv)
            return fri_fail(FR_ERR_FORMAT, "update: table %u: %u rows of width %u, only %zu bytes left", t, count,
                            width, rem);
        e = fr_update_table_resize(u, t, count); /* count and its bytes checked above */
        if (e) return e;
        uint32_t prev = 0;
        for (uint32_t i = 0; i < count; i++) {
            uint32_t id = fri_get_u32(p + (size_t)i * 4);
            if (id >= s->n_rows[t])
                return fri_fail(FR_ERR_FORMAT, "update: table %u: row id %u out of range (the table has %u rows)", t,
                                id, s->n_rows[t]);
            if (i > 0 && id <= prev)
                return fri_fail(FR_ERR_FORMAT, "update: table %u: row id %u at %u follows %u, expected increasing ids",
                                t, id, i, prev);
            prev = id;
            u->tables[t].ids[i] = id;
        }
        p += (size_t)count * 4;
        rem -= (size_t)count * 4;
        e = get_floats(p, nv, u->tables[t].values, "table", t);
        if (e) return e;
        p += nv * 4;
        rem -= nv * 4;
    }
    if (rem != 0)
        return fri_fail(FR_ERR_FORMAT, "update: %zu bytes left after the last table, expected none", rem);
    return FR_OK;
}

fr_err fr_update_decode_into(fr_update *u, const uint8_t *bytes, size_t n, const fr_update_shape *shape) {
    if (!u || (!bytes && n)) return fri_fail(FR_ERR_INVALID, "fr_update_decode_into: NULL argument");
    fr_err e = check_shape(shape);
    if (e) return e;
    return parse(u, bytes, n, shape);
}

fr_err fr_update_decode(fr_update **out, const uint8_t *bytes, size_t n, const fr_update_shape *shape) {
    if (!out) return fri_fail(FR_ERR_INVALID, "fr_update_decode: NULL out");
    *out = NULL;
    fr_update *u = NULL;
    fr_err e = fr_update_create(&u);
    if (e) return e;
    e = fr_update_decode_into(u, bytes, n, shape);
    if (e) { fr_update_free(u); return e; }
    *out = u;
    return FR_OK;
}
