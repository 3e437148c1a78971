/* Packed RESULTs (src/runtime/net/pack.c): the packed bytes against a naive reference
 * packer written here (word by word, the width found by trying each one), the round
 * trip back to the fl encoder's exact bytes, canonical widths, every truncation and every
 * single-bit flip refused by the unpacker or, when it still unpacks, by the fl message's
 * own CRC, and what is not packed. */
#include <criterion/criterion.h>
#include <stdlib.h>

#include "core/core.h"
#include "fedrec/fl.h"
#include "fl/fl_internal.h"
#include "runtime/net/pack.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void) { /* splitmix64 */
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* A value whose magnitude has `bits` bits at most, either sign (bits 0: zero; 63: any). */
static int64_t val(int bits) {
    if (bits == 0) return 0;
    if (bits >= 63) return (int64_t)rnd();
    int64_t v = (int64_t)(rnd() & ((1ull << bits) - 1));
    return (rnd() & 1) ? -v : v;
}

/* The fl bytes of a result with D dense words and T tables, the words of block b having
 * at most bits[b] bits. */
static uint8_t *make(uint32_t D, uint32_t T, const int *bits, size_t *n) {
    fr_result r;
    memset(&r, 0, sizeof r);
    r.client = 7;
    r.round = 3;
    r.config_crc = 0x1234abcd;
    r.weight = 42;
    r.examples = 99;
    r.loss_sum = 12.5;
    r.dense_len = D;
    r.dense = calloc(D ? D : 1, sizeof *r.dense);
    for (uint32_t i = 0; i < D; i++) r.dense[i] = val(bits[0]);
    r.n_tables = T;
    r.tables = calloc(T ? T : 1, sizeof *r.tables);
    for (uint32_t t = 0; t < T; t++) {
        fr_result_table *tb = &r.tables[t];
        tb->width = 1 + (uint32_t)(rnd() % 9);
        tb->count = (uint32_t)(rnd() % 40);
        tb->ids = calloc(tb->count ? tb->count : 1, 4);
        tb->values = calloc((size_t)tb->count * tb->width + 1, 8);
        uint32_t id = 0;
        for (uint32_t i = 0; i < tb->count; i++) tb->ids[i] = id += 1 + (uint32_t)(rnd() % 5);
        for (size_t i = 0; i < (size_t)tb->count * tb->width; i++) tb->values[i] = val(bits[1 + t]);
    }
    uint8_t *b = NULL;
    cr_assert_eq(fr_result_encode(&r, &b, n), FR_OK, "%s", fr_errmsg());
    for (uint32_t t = 0; t < T; t++) {
        free(r.tables[t].ids);
        free(r.tables[t].values);
    }
    free(r.tables);
    free(r.dense);
    return b;
}

/* Does v fit in w bytes (sign-extended)? Tried for each w: the reference's width. */
static int fits(int64_t v, int w) {
    if (w == 8) return 1;
    int64_t lo = -((int64_t)1 << (8 * w - 1)), hi = ((int64_t)1 << (8 * w - 1)) - 1;
    return v >= lo && v <= hi;
}

/* The naive packer: a block's width is the first w in 1..8 that every word fits, and a
 * word is written byte by byte, lowest first. */
static void ref_block(const uint8_t *b, size_t *at, size_t nw, fri_buf *out) {
    int w = 1;
    for (; w < 8; w++) {
        int all = 1;
        for (size_t i = 0; i < nw && all; i++) all = fits((int64_t)fri_get_u64(b + *at + 8 * i), w);
        if (all) break;
    }
    uint8_t wb = (uint8_t)w;
    fri_buf_put(out, &wb, 1);
    for (size_t i = 0; i < nw; i++) {
        uint64_t v = fri_get_u64(b + *at + 8 * i);
        for (int k = 0; k < w; k++) {
            uint8_t c = (uint8_t)(v >> (8 * k));
            fri_buf_put(out, &c, 1);
        }
    }
    *at += 8 * nw;
}

static void ref_pack(const uint8_t *b, size_t n, fri_buf *out) {
    (void)n;
    out->len = 0;
    fri_buf_put(out, b, 72);
    size_t at = 72;
    uint32_t D = fri_get_u32(b + 64), T = fri_get_u32(b + 68);
    ref_block(b, &at, D, out);
    for (uint32_t t = 0; t < T; t++) {
        uint32_t w = fri_get_u32(b + at), c = fri_get_u32(b + at + 4);
        fri_buf_put(out, b + at, 8 + 4 * (size_t)c);
        at += 8 + 4 * (size_t)c;
        ref_block(b, &at, (size_t)c * w, out);
    }
}

Test(net_pack, packs_as_the_naive_reference_and_round_trips) {
    static const int widths[] = {0, 1, 7, 8, 9, 15, 16, 23, 31, 32, 33, 40, 47, 55, 56, 62, 63};
    const int nw = (int)(sizeof widths / sizeof *widths);
    fri_buf p = {0}, q = {0}, u = {0};
    for (int k = 0; k < 300; k++) {
        uint32_t D = (uint32_t)(k % 7 == 0 ? 0 : rnd() % 300), T = (uint32_t)(rnd() % 4);
        int bits[5];
        for (int i = 0; i < 5; i++) bits[i] = widths[rnd() % (uint64_t)nw];
        size_t n = 0;
        uint8_t *b = make(D, T, bits, &n);
        cr_assert(fri_pack_result(b, n, &p), "sample %d", k);
        cr_assert_eq(p.err, FR_OK);
        ref_pack(b, n, &q);
        cr_assert_eq(p.len, q.len, "sample %d: %zu bytes, the reference %zu", k, p.len, q.len);
        cr_assert(memcmp(p.data, q.data, p.len) == 0, "sample %d: bytes differ from the reference", k);
        cr_assert(p.len <= n + 1 + T);
        cr_assert_eq(fri_unpack_result(p.data, p.len, n, &u), FR_OK, "sample %d: %s", k, fr_errmsg());
        cr_assert(u.len == n && memcmp(u.data, b, n) == 0, "sample %d: unpacks to other bytes", k);
        cr_assert_eq(fri_msg_open(u.data, u.len, FR_MSG_RESULT, "RESULT"), FR_OK);
        /* one byte less of room: refused with the size, before allocating it */
        cr_assert_eq(fri_unpack_result(p.data, p.len, n - 1, &u), FR_ERR_RANGE);
        free(b);
    }
    fri_buf_free(&p);
    fri_buf_free(&q);
    fri_buf_free(&u);
}

/* Small values (the usual case) pack to about a quarter; the widest take 8 bytes. */
Test(net_pack, sizes_follow_the_widths) {
    int small[5] = {20, 20, 20, 20, 20}, wide[5] = {63, 63, 63, 63, 63};
    fri_buf p = {0};
    size_t n = 0;
    uint8_t *b = make(1000, 0, small, &n);
    cr_assert(fri_pack_result(b, n, &p));
    cr_assert_eq(p.len, 72 + 1 + 1000 * 3); /* 20 bits and a sign: 3 bytes */
    free(b);
    b = make(1000, 0, wide, &n);
    cr_assert(fri_pack_result(b, n, &p));
    cr_assert_eq(p.len, 72 + 1 + 1000 * 8);
    free(b);
    fri_buf_free(&p);
}

/* Every truncation is refused; every single-bit flip is refused by the unpacker or, when
 * the damaged bytes still unpack, by the fl message's CRC: never a different RESULT. */
Test(net_pack, damage_never_yields_another_result) {
    int bits[5] = {33, 20, 40, 7, 0};
    size_t n = 0;
    uint8_t *b = make(50, 3, bits, &n);
    fri_buf p = {0}, u = {0};
    cr_assert(fri_pack_result(b, n, &p));
    for (size_t cut = 0; cut < p.len; cut++)
        cr_assert_neq(fri_unpack_result(p.data, cut, 1u << 24, &u), FR_OK, "cut to %zu", cut);
    uint8_t *longer = malloc(p.len + 1);
    memcpy(longer, p.data, p.len);
    longer[p.len] = 0;
    cr_assert_eq(fri_unpack_result(longer, p.len + 1, 1u << 24, &u), FR_ERR_FORMAT);
    free(longer);
    long unpacked = 0;
    for (size_t i = 0; i < p.len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            p.data[i] ^= (uint8_t)(1u << bit);
            if (fri_unpack_result(p.data, p.len, 1u << 24, &u) == FR_OK) {
                unpacked++;
                cr_assert(u.len != n || memcmp(u.data, b, n) != 0);
                cr_assert_neq(fri_msg_open(u.data, u.len, FR_MSG_RESULT, "RESULT"), FR_OK, "byte %zu bit %d", i, bit);
            }
            p.data[i] ^= (uint8_t)(1u << bit);
        }
    }
    cr_assert_gt(unpacked, 0); /* value bits: caught by the fl CRC */
    free(b);
    fri_buf_free(&p);
    fri_buf_free(&u);
}

/* A width that is not the smallest, or outside 1..8, is refused (the packing is canonical). */
Test(net_pack, widths_must_be_the_smallest) {
    int bits[5] = {10, 0, 0, 0, 0};
    size_t n = 0;
    uint8_t *b = make(20, 0, bits, &n);
    fri_buf p = {0}, u = {0}, wide = {0};
    cr_assert(fri_pack_result(b, n, &p));
    cr_assert_eq(p.data[72], 2); /* 10 bits and a sign */
    /* the same words at 3 bytes each: unpacks to the same values, but is not canonical */
    fri_buf_put(&wide, p.data, 72);
    uint8_t w3 = 3;
    fri_buf_put(&wide, &w3, 1);
    for (int i = 0; i < 20; i++) fri_buf_put(&wide, b + 72 + 8 * i, 3);
    cr_assert_eq(fri_unpack_result(wide.data, wide.len, n, &u), FR_ERR_FORMAT);
    cr_assert(strstr(fr_errmsg(), "need 2") != NULL, "%s", fr_errmsg());
    p.data[72] = 0;
    cr_assert_eq(fri_unpack_result(p.data, p.len, n, &u), FR_ERR_FORMAT);
    p.data[72] = 9;
    cr_assert_eq(fri_unpack_result(p.data, p.len, n, &u), FR_ERR_FORMAT);
    free(b);
    fri_buf_free(&p);
    fri_buf_free(&u);
    fri_buf_free(&wide);
}

/* Not packed: a RESULT with flags (quantized, top-k, DP), a cut or lengthened one, or
 * bytes that are no RESULT; and an unpacker given flags or too many tables refuses. */
Test(net_pack, what_is_not_packed) {
    int bits[5] = {30, 30, 30, 30, 30};
    size_t n = 0;
    uint8_t *b = make(10, 2, bits, &n);
    fri_buf p = {0}, u = {0};
    cr_assert(fri_pack_result(b, n, &p));
    cr_assert(!fri_pack_result(b, n - 1, &p));
    cr_assert_eq(p.len, 0);
    cr_assert(!fri_pack_result(b, 71, &p));
    uint8_t *c = malloc(n + 1);
    memcpy(c, b, n);
    c[n] = 0;
    cr_assert(!fri_pack_result(c, n + 1, &p));
    fri_put_u32(c + 36, 1); /* flags */
    cr_assert(!fri_pack_result(c, n, &p));
    memcpy(c, b, n);
    fri_put_u32(c + 68, 65); /* tables */
    cr_assert(!fri_pack_result(c, n, &p));
    cr_assert(fri_pack_result(b, n, &p));
    fri_put_u32(p.data + 36, 1);
    cr_assert_eq(fri_unpack_result(p.data, p.len, n, &u), FR_ERR_FORMAT);
    fri_put_u32(p.data + 36, 0);
    fri_put_u32(p.data + 68, 65);
    cr_assert_eq(fri_unpack_result(p.data, p.len, n, &u), FR_ERR_FORMAT);
    cr_assert(!fri_pack_result(NULL, 0, &p));
    cr_assert_eq(fri_unpack_result(NULL, 0, n, &u), FR_ERR_FORMAT);
    free(c);
    free(b);
    fri_buf_free(&p);
    fri_buf_free(&u);
}
