/* Packed RESULTs (pack.h): the fl RESULT's int64 words in the fewest bytes per block. */
#include <stdio.h>
#include <string.h>

#include "fedrec/fl.h"
#include "runtime/net/pack.h"

#define FIXED_AT 24     /* FR_MSG_HEADER_BYTES: the RESULT's fixed fields start here */
#define FLAGS_AT (FIXED_AT + 12)
#define DENSE_AT (FIXED_AT + 40)
#define TABLES_AT (FIXED_AT + 44)

_Static_assert(FIXED_AT == FR_MSG_HEADER_BYTES, "the fl header's size");
_Static_assert(FRI_PACK_HEAD == FR_MSG_HEADER_BYTES + 48, "the RESULT's fixed part");

/* The fewest bytes (1..8) that hold every int64 whose |v ^ (v >> 63)| bits are in m. */
static unsigned width_of(uint64_t m) {
    unsigned bits = m ? 64u - (unsigned)__builtin_clzll(m) : 0u;
    return (bits + 8u) / 8u; /* bits + a sign bit, rounded up to bytes */
}

/* The OR of v ^ (v >> 63) over n little-endian int64 words at p. */
static uint64_t block_mag(const uint8_t *p, size_t n) {
    uint64_t m = 0;
    for (size_t i = 0; i < n; i++) {
        int64_t v = (int64_t)fri_get_u64(p + 8 * i);
        m |= (uint64_t)(v ^ (v >> 63));
    }
    return m;
}

#define PACK_W(W)                                                                                                      \
    case W:                                                                                                            \
        for (size_t i = 0; i < n; i++) memcpy(o + (size_t)(W) * i, p + 8 * i, W);                                     \
        break;

/* n words at p into o, w bytes each (their low bytes: little-endian). */
static void pack_words(uint8_t *o, const uint8_t *p, size_t n, unsigned w) {
    switch (w) {
        PACK_W(1) PACK_W(2) PACK_W(3) PACK_W(4) PACK_W(5) PACK_W(6) PACK_W(7) PACK_W(8)
    default: break;
    }
}

/* n words of w bytes at p into o, sign-extended to 8 bytes; returns the OR of
 * v ^ (v >> 63) over them (the width check). avail: the bytes readable from p (>= n * w):
 * a word is read as the 8 bytes at its start, shifted, while 8 bytes are there. */
static uint64_t unpack_words(uint8_t *o, const uint8_t *p, size_t n, unsigned w, size_t avail) {
    const unsigned sh = 64u - 8u * w;
    uint64_t m = 0;
    size_t fast = avail >= 8 ? (avail - 8) / w + 1 : 0; /* words whose 8-byte read stays inside */
    if (fast > n) fast = n;
    size_t i = 0;
    for (; i < fast; i++) {
        int64_t v = (int64_t)(fri_get_u64(p + (size_t)w * i) << sh) >> sh;
        m |= (uint64_t)(v ^ (v >> 63));
        fri_put_u64(o + 8 * i, (uint64_t)v);
    }
    for (; i < n; i++) {
        uint8_t t[8] = {0};
        memcpy(t, p + (size_t)w * i, w);
        int64_t v = (int64_t)(fri_get_u64(t) << sh) >> sh;
        m |= (uint64_t)(v ^ (v >> 63));
        fri_put_u64(o + 8 * i, (uint64_t)v);
    }
    return m;
}

/* One block of n words at b + *at (checked present) appended to out. */
static void pack_block(const uint8_t *b, size_t *at, size_t n, fri_buf *out) {
    unsigned w = width_of(block_mag(b + *at, n));
    uint8_t wb = (uint8_t)w;
    fri_buf_put(out, &wb, 1);
    size_t need = n * w; /* n * 8 <= the RESULT's size: no overflow */
    if (out->err) return;
    if (out->cap - out->len < need) {
        size_t cap = out->len + need;
        uint8_t *d = fri_realloc(out->data, cap);
        if (!d) { out->err = FR_ERR_NOMEM; return; }
        out->data = d;
        out->cap = cap;
    }
    pack_words(out->data + out->len, b + *at, n, w);
    out->len += need;
    *at += 8 * n;
}

bool fri_pack_result(const uint8_t *b, size_t n, fri_buf *out) {
    out->len = 0;
    if (!b || n < FRI_PACK_HEAD || fri_get_u32(b + FLAGS_AT) != 0) return false;
    /* the layout must add up to n exactly before anything is written */
    uint32_t D = fri_get_u32(b + DENSE_AT), T = fri_get_u32(b + TABLES_AT);
    if (T > FR_UPDATE_MAX_TABLES) return false;
    size_t at = FRI_PACK_HEAD;
    if ((n - at) / 8 < D) return false;
    at += (size_t)D * 8;
    for (uint32_t t = 0; t < T; t++) {
        if (n - at < 8) return false;
        uint32_t width = fri_get_u32(b + at), count = fri_get_u32(b + at + 4);
        at += 8;
        if ((n - at) / 4 < count) return false;
        at += (size_t)count * 4;
        if (width && (n - at) / 8 / width < count) return false;
        at += (size_t)count * width * 8;
    }
    if (at != n) return false;
    if (out->cap < n + 1 + T) { /* the most it can take: every block at 8 bytes a word */
        uint8_t *d = fri_realloc(out->data, n + 1 + T);
        if (!d) { out->err = FR_ERR_NOMEM; return true; }
        out->data = d;
        out->cap = n + 1 + T;
    }
    fri_buf_put(out, b, FRI_PACK_HEAD);
    at = FRI_PACK_HEAD;
    pack_block(b, &at, D, out);
    for (uint32_t t = 0; t < T; t++) {
        uint32_t width = fri_get_u32(b + at), count = fri_get_u32(b + at + 4);
        fri_buf_put(out, b + at, 8 + (size_t)count * 4);
        at += 8 + (size_t)count * 4;
        pack_block(b, &at, (size_t)count * width, out);
    }
    return true;
}

/* One block of nw words at p + *at into out: its width byte, then the words. */
static fr_err unpack_block(const uint8_t *p, size_t n, size_t *at, size_t nw, size_t max_out, fri_buf *out,
                           const char *what) {
    if (*at >= n) return fri_fail(FR_ERR_FORMAT, "packed RESULT: %s: no width byte at %zu (%zu bytes)", what, *at, n);
    unsigned w = p[*at];
    if (w < 1 || w > 8) return fri_fail(FR_ERR_FORMAT, "packed RESULT: %s: word width %u, expected 1..8", what, w);
    *at += 1;
    if ((n - *at) / w < nw)
        return fri_fail(FR_ERR_FORMAT, "packed RESULT: %s: %zu words of %u bytes, %zu bytes left", what, nw, w,
                        n - *at);
    if ((max_out - out->len) / 8 < nw)
        return fri_fail(FR_ERR_RANGE, "packed RESULT: unpacks to more than %zu bytes", max_out);
    size_t need = nw * 8;
    if (out->cap - out->len < need) {
        size_t cap = out->len + need;
        uint8_t *d = fri_realloc(out->data, cap);
        if (!d) return FR_ERR_NOMEM;
        out->data = d;
        out->cap = cap;
    }
    uint8_t *o = out->data + out->len;
    unsigned need_w = nw ? width_of(unpack_words(o, p + *at, nw, w, n - *at)) : 1;
    if (need_w != w)
        return fri_fail(FR_ERR_FORMAT, "packed RESULT: %s: word width %u, but its words need %u", what, w, need_w);
    out->len += need;
    *at += nw * w;
    return FR_OK;
}

fr_err fri_unpack_result(const uint8_t *p, size_t n, size_t max_out, fri_buf *out) {
    out->len = 0;
    if (!p || n < FRI_PACK_HEAD)
        return fri_fail(FR_ERR_FORMAT, "packed RESULT: %zu bytes, shorter than its %d-byte head", n, FRI_PACK_HEAD);
    if (fri_get_u32(p + FLAGS_AT) != 0)
        return fri_fail(FR_ERR_FORMAT, "packed RESULT: flags 0x%x, expected 0 (only a plain RESULT is packed)",
                        fri_get_u32(p + FLAGS_AT));
    uint32_t D = fri_get_u32(p + DENSE_AT), T = fri_get_u32(p + TABLES_AT);
    if (T > FR_UPDATE_MAX_TABLES)
        return fri_fail(FR_ERR_FORMAT, "packed RESULT: %u tables, at most %d", T, FR_UPDATE_MAX_TABLES);
    if (max_out < FRI_PACK_HEAD)
        return fri_fail(FR_ERR_RANGE, "packed RESULT: unpacks to more than %zu bytes", max_out);
    fri_buf_put(out, p, FRI_PACK_HEAD);
    if (out->err) return out->err;
    size_t at = FRI_PACK_HEAD;
    fr_err e = unpack_block(p, n, &at, D, max_out, out, "dense part");
    char what[32];
    for (uint32_t t = 0; !e && t < T; t++) {
        snprintf(what, sizeof what, "table %u", t);
        if (n - at < 8) return fri_fail(FR_ERR_FORMAT, "packed RESULT: %s: cut short at %zu", what, at);
        uint32_t width = fri_get_u32(p + at), count = fri_get_u32(p + at + 4);
        size_t idb = (size_t)count * 4;
        if ((n - at - 8) < idb) return fri_fail(FR_ERR_FORMAT, "packed RESULT: %s: %u ids cut short", what, count);
        if ((max_out - out->len) < 8 + idb)
            return fri_fail(FR_ERR_RANGE, "packed RESULT: unpacks to more than %zu bytes", max_out);
        fri_buf_put(out, p + at, 8 + idb);
        if (out->err) return out->err;
        at += 8 + idb;
        e = unpack_block(p, n, &at, (size_t)count * width, max_out, out, what);
    }
    if (e) return e;
    if (at != n) return fri_fail(FR_ERR_FORMAT, "packed RESULT: %zu bytes after the last table", n - at);
    return FR_OK;
}
