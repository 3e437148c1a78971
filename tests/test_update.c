/* The client update and its wire codec: exact bytes, round trips, reuse without
 * allocation, every truncation and byte flip, each body check (with the CRC resealed so
 * the body parser is reached), and an allocation-failure sweep. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/core.h"
#include "fedrec/fl.h"

static const uint32_t W[2] = {4, 1}, ROWS[2] = {16, 1000};
static const fr_update_shape SHAPE = {3, 2, W, ROWS};

/* dense {0.5, -1, 2}; table 0 rows 1, 4, 15 (width 4); table 1 rows 0, 7, 999 (width 1) */
static fr_update *sample(void) {
    fr_update *u = NULL;
    cr_assert_eq(fr_update_create(&u), FR_OK);
    cr_assert_eq(fr_update_reset(u, 3, 2, W), FR_OK);
    u->weight = 123456789012ULL;
    u->client = 42;
    u->round = 7;
    u->dense[0] = 0.5f; u->dense[1] = -1.0f; u->dense[2] = 2.0f;
    cr_assert_eq(fr_update_table_resize(u, 0, 3), FR_OK);
    uint32_t id0[3] = {1, 4, 15};
    memcpy(u->tables[0].ids, id0, sizeof id0);
    for (int i = 0; i < 12; i++) u->tables[0].values[i] = (float)i * 0.25f;
    cr_assert_eq(fr_update_table_resize(u, 1, 3), FR_OK);
    uint32_t id1[3] = {0, 7, 999};
    memcpy(u->tables[1].ids, id1, sizeof id1);
    for (int i = 0; i < 3; i++) u->tables[1].values[i] = -(float)i;
    return u;
}

/* Rewrites the length and CRC of a (modified) message so its body checks are reached. */
static void reseal(uint8_t *b, size_t n) {
    fri_put_u64(b + 8, n);
    fri_put_u32(b + 16, fr_crc32c(0, b + 24, n - 24));
}

static fr_err decode_err(const uint8_t *b, size_t n) {
    fr_update *u = NULL;
    fr_err e = fr_update_decode(&u, b, n, &SHAPE);
    if (e == FR_OK) fr_update_free(u);
    else cr_assert_null(u);
    return e;
}

Test(update, sizes_match_encoding) {
    fr_update *u = sample();
    /* header 24 + fixed body 24 + dense 12 + table 0 (8 + 12 + 48) + table 1 (8 + 12 + 12) = 160 */
    uint32_t counts[2] = {3, 3};
    cr_assert_eq(fr_update_encoded_size(u), 160);
    cr_assert_eq(fr_update_wire_size(3, 2, W, counts), 160);
    cr_assert_eq(fr_update_header_bytes(), FR_UPDATE_HEADER_BYTES);
    uint32_t big[2] = {UINT32_MAX, UINT32_MAX}, huge[2] = {UINT32_MAX, UINT32_MAX};
    if (sizeof(size_t) == 4) cr_assert_eq(fr_update_wire_size(3, 2, big, huge), 0);
    uint8_t *b = NULL;
    size_t n = 0;
    cr_assert_eq(fr_update_encode(u, &b, &n), FR_OK);
    cr_assert_eq(n, 160);
    fr_update_bytes_free(b);
    fr_update_free(u);
}

/* The exact bytes of a minimal message: no table, dense {1.0}, weight 5, client 2, round 3. */
Test(update, exact_bytes_of_a_small_message) {
    fr_update *u = NULL;
    cr_assert_eq(fr_update_create(&u), FR_OK);
    cr_assert_eq(fr_update_reset(u, 1, 0, NULL), FR_OK);
    u->weight = 5; u->client = 2; u->round = 3; u->dense[0] = 1.0f;
    uint8_t b[52];
    size_t n = 0;
    cr_assert_eq(fr_update_encode_to(u, b, sizeof b, &n), FR_OK);
    cr_assert_eq(n, 52);
    const uint8_t body[28] = {5, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0,
                              0x00, 0x00, 0x80, 0x3f}; /* 1.0f = 0x3f800000 */
    cr_assert_eq(memcmp(b, "FRUP", 4), 0);
    cr_assert_eq(b[4], 1); cr_assert_eq(b[5], 0);   /* version 1 */
    cr_assert_eq(b[6], 1); cr_assert_eq(b[7], 0);   /* type 1 */
    cr_assert_eq(fri_get_u64(b + 8), 52);
    cr_assert_eq(fri_get_u32(b + 16), fr_crc32c(0, body, sizeof body));
    cr_assert_eq(fri_get_u32(b + 20), 0);
    cr_assert_eq(memcmp(b + 24, body, sizeof body), 0);
    cr_assert_eq(fr_update_encode_to(u, b, 51, &n), FR_ERR_RANGE);
    const uint32_t none[1] = {0};
    fr_update_shape s = {1, 0, none, none};
    fr_update *d = NULL;
    cr_assert_eq(fr_update_decode(&d, b, 52, &s), FR_OK);
    cr_assert_eq(d->weight, 5); cr_assert_eq(d->client, 2); cr_assert_eq(d->round, 3);
    cr_assert_eq(d->dense[0], 1.0f);
    fr_update_free(d);
    fr_update_free(u);
}

Test(update, round_trip) {
    fr_update *u = sample();
    uint8_t *b = NULL;
    size_t n = 0;
    cr_assert_eq(fr_update_encode(u, &b, &n), FR_OK);
    fr_update *d = NULL;
    cr_assert_eq(fr_update_decode(&d, b, n, &SHAPE), FR_OK);
    cr_assert_eq(d->weight, 123456789012ULL);
    cr_assert_eq(d->client, 42);
    cr_assert_eq(d->round, 7);
    cr_assert_eq(d->dense_len, 3);
    cr_assert_eq(memcmp(d->dense, u->dense, 3 * sizeof(float)), 0);
    cr_assert_eq(d->n_tables, 2);
    for (uint32_t t = 0; t < 2; t++) {
        cr_assert_eq(d->tables[t].width, W[t]);
        cr_assert_eq(d->tables[t].count, 3);
        cr_assert_eq(memcmp(d->tables[t].ids, u->tables[t].ids, 3 * 4), 0);
        cr_assert_eq(memcmp(d->tables[t].values, u->tables[t].values, 3 * W[t] * 4), 0);
    }
    uint8_t *b2 = NULL;
    size_t n2 = 0;
    cr_assert_eq(fr_update_encode(d, &b2, &n2), FR_OK);
    cr_assert_eq(n2, n);
    cr_assert_eq(memcmp(b, b2, n), 0, "re-encoding is not canonical");
    fr_update_bytes_free(b2);
    fr_update_bytes_free(b);
    fr_update_free(d);
    fr_update_free(u);
}

Test(update, reuse_across_rounds_does_not_allocate) {
    fr_update *u = sample();
    uint8_t *b = NULL;
    size_t n = 0;
    cr_assert_eq(fr_update_encode(u, &b, &n), FR_OK);
    fr_update *d = NULL;
    cr_assert_eq(fr_update_decode(&d, b, n, &SHAPE), FR_OK);
    fr_test_fail_alloc(0, false); /* resets the counter */
    for (int round = 0; round < 3; round++) {
        cr_assert_eq(fr_update_decode_into(d, b, n, &SHAPE), FR_OK);
        cr_assert_eq(fr_update_reset(u, 3, 2, W), FR_OK);
        cr_assert_eq(fr_update_table_resize(u, 0, 2), FR_OK);
        cr_assert_eq(fr_update_table_resize(u, 1, 3), FR_OK);
    }
    cr_assert_eq(fr_test_alloc_count(), 0, "%ld allocations while reusing", fr_test_alloc_count());
    cr_assert_eq(d->tables[0].count, 3);
    /* a narrower table keeps a row capacity that both ids and values can hold */
    const uint32_t w2[2] = {1, 8};
    cr_assert_eq(fr_update_reset(u, 0, 2, w2), FR_OK);
    cr_assert_leq(u->tables[0].cap_rows, 3);
    cr_assert_leq(u->tables[1].cap_rows * 8, 3);
    cr_assert_eq(fr_update_table_resize(u, 1, 2), FR_OK);
    cr_assert_eq(u->tables[1].cap_rows, 2);
    fr_update_bytes_free(b);
    fr_update_free(d);
    fr_update_free(u);
}

Test(update, encoder_rejects_unsorted_ids) {
    fr_update *u = sample();
    u->tables[1].ids[2] = 7; /* 0, 7, 7 */
    uint8_t *b = NULL;
    size_t n = 0;
    cr_assert_eq(fr_update_encode(u, &b, &n), FR_ERR_INVALID);
    cr_assert_null(b);
    cr_assert(strstr(fr_errmsg(), "row id 7 at 2 follows 7") != NULL, "%s", fr_errmsg());
    const uint32_t bad[1] = {0};
    cr_assert_eq(fr_update_reset(u, 1, 1, bad), FR_ERR_INVALID);
    cr_assert_eq(fr_update_reset(u, 1, FR_UPDATE_MAX_TABLES + 1, W), FR_ERR_INVALID);
    fr_update_free(u);
}

Test(update, every_truncation_and_trailing_bytes_fail) {
    fr_update *u = sample();
    uint8_t *b = NULL;
    size_t n = 0;
    cr_assert_eq(fr_update_encode(u, &b, &n), FR_OK);
    for (size_t k = 0; k < n; k++) {
        cr_assert_eq(decode_err(b, k), FR_ERR_FORMAT, "truncated to %zu bytes", k);
        if (k >= 24) cr_assert(strstr(fr_errmsg(), "truncated") != NULL, "%s", fr_errmsg());
    }
    uint8_t *longer = malloc(n + 1);
    memcpy(longer, b, n);
    longer[n] = 0;
    cr_assert_eq(decode_err(longer, n + 1), FR_ERR_FORMAT);
    cr_assert(strstr(fr_errmsg(), "trailing") != NULL, "%s", fr_errmsg());
    /* the same extra byte announced in the header and covered by the CRC */
    reseal(longer, n + 1);
    cr_assert_eq(decode_err(longer, n + 1), FR_ERR_FORMAT);
    cr_assert(strstr(fr_errmsg(), "1 bytes left after the last table") != NULL, "%s", fr_errmsg());
    free(longer);
    fr_update_bytes_free(b);
    fr_update_free(u);
}

/* Every byte flipped (three patterns): the header fields fail with their own error, the
 * body fails its CRC. Nothing decodes, because nothing CRC-valid can come of one flip. */
Test(update, every_byte_flip_fails_with_the_right_error) {
    fr_update *u = sample();
    uint8_t *b = NULL;
    size_t n = 0;
    cr_assert_eq(fr_update_encode(u, &b, &n), FR_OK);
    const uint8_t pats[3] = {0x01, 0x80, 0xff};
    for (size_t k = 0; k < n; k++)
        for (int p = 0; p < 3; p++) {
            b[k] ^= pats[p];
            fr_err want = k < 4 ? FR_ERR_FORMAT          /* magic */
                          : k < 6 ? FR_ERR_VERSION       /* version */
                          : k < 16 ? FR_ERR_FORMAT       /* type, length */
                          : k < 20 ? FR_ERR_CHECKSUM     /* crc */
                          : k < 24 ? FR_ERR_FORMAT       /* reserved */
                                   : FR_ERR_CHECKSUM;    /* body */
            cr_assert_eq(decode_err(b, n), want, "byte %zu ^ 0x%02x: %s", k, pats[p], fr_errmsg());
            b[k] ^= pats[p];
        }
    cr_assert_eq(decode_err(b, n), FR_OK);
    b[4] = 2;
    cr_assert_eq(decode_err(b, n), FR_ERR_VERSION);
    cr_assert_str_eq(fr_errmsg(), "update: format version 2, this build reads version 1");
    fr_update_bytes_free(b);
    fr_update_free(u);
}

/* Offsets in the sample message: body at 24; dense length at 40, table count at 44; dense
 * at 48; table 0 header at 60 (width 60, count 64), ids at 68, values at 80; table 1
 * header at 128 (width 128, count 132), ids at 136, values at 148. */
typedef struct body_case {
    size_t off;
    uint32_t value;
    const char *msg;
} body_case;

Test(update, body_checks_behind_a_valid_crc) {
    fr_update *u = sample();
    uint8_t *b = NULL;
    size_t n = 0;
    cr_assert_eq(fr_update_encode(u, &b, &n), FR_OK);
    const body_case cases[] = {
        {40, 4, "dense length 4, expected 3"},
        {44, 3, "3 tables, expected 2"},
        {60, 5, "table 0: row width 5, expected 4"},
        {64, 17, "table 0: 17 rows, the table has 16"},
        {64, 5, "table 0: 5 rows of width 4, only 92 bytes left"},
        {132, 2, "8 bytes left after the last table"},
        {72, 1, "table 0: row id 1 at 1 follows 1"},
        {76, 3, "table 0: row id 3 at 2 follows 4"},
        {76, 16, "table 0: row id 16 out of range"},
        {144, 1000, "table 1: row id 1000 out of range"},
        {52, 0x7fc00000, "dense part 0: value 1 is not finite"},
        {152, 0x7f800000, "table 1: value 1 is not finite"},
        {132, 1000, "table 1: 1000 row ids, only 24 bytes left"},
        {132, UINT32_MAX, "table 1: 4294967295 rows, the table has 1000"},
        {20, 1, "reserved header field"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        uint8_t *m = malloc(n);
        memcpy(m, b, n);
        fri_put_u32(m + cases[c].off, cases[c].value);
        if (cases[c].off >= 24) reseal(m, n);
        cr_assert_eq(decode_err(m, n), FR_ERR_FORMAT, "case %zu", c);
        cr_assert(strstr(fr_errmsg(), cases[c].msg) != NULL, "case %zu: \"%s\" lacks \"%s\"", c, fr_errmsg(),
                  cases[c].msg);
        free(m);
    }
    /* a claim of 2^32-1 rows is refused before anything is sized for it: the decoder
     * allocates the empty update and the parts before the bad table (dense part, table
     * array, table 0's ids and values), nothing for the claim */
    const uint32_t big_rows[2] = {UINT32_MAX, UINT32_MAX};
    fr_update_shape big = {3, 2, W, big_rows};
    fri_put_u32(b + 132, UINT32_MAX);
    reseal(b, n);
    fr_test_fail_alloc(0, false);
    fr_update *d = NULL;
    cr_assert_eq(fr_update_decode(&d, b, n, &big), FR_ERR_FORMAT);
    cr_assert(fr_test_alloc_count() <= 5, "%ld allocations", fr_test_alloc_count());
    cr_assert_null(d);
    fr_update_shape bad = {3, FR_UPDATE_MAX_TABLES + 1, W, ROWS};
    cr_assert_eq(fr_update_decode(&d, b, n, &bad), FR_ERR_INVALID);
    cr_assert_eq(fr_update_decode(&d, b, n, NULL), FR_ERR_INVALID);
    fr_update_bytes_free(b);
    fr_update_free(u);
}

Test(update, allocation_failure_sweep) {
    fr_update *u = sample();
    uint8_t *b = NULL;
    size_t n = 0;
    cr_assert_eq(fr_update_encode(u, &b, &n), FR_OK);
    int done = 0;
    for (long k = 1; k < 100 && !done; k++) {
        fr_update *d = NULL, *e = NULL;
        uint8_t *b2 = NULL;
        size_t n2 = 0;
        fr_test_fail_alloc(k, false);
        fr_err r1 = fr_update_decode(&d, b, n, &SHAPE);
        fr_err r2 = r1 ? r1 : fr_update_encode(d, &b2, &n2);
        fr_err r3 = r2;
        if (!r2) {
            r3 = fr_update_create(&e);
            if (!r3) r3 = fr_update_reset(e, 3, 2, W);
            if (!r3) r3 = fr_update_table_resize(e, 1, 500);
        }
        fr_test_fail_alloc(0, false);
        cr_assert(r1 == FR_OK || r1 == FR_ERR_NOMEM);
        cr_assert(r2 == FR_OK || r2 == FR_ERR_NOMEM);
        cr_assert(r3 == FR_OK || r3 == FR_ERR_NOMEM);
        if (r1) cr_assert_null(d);
        if (!r3) {
            done = 1;
            cr_assert_eq(n2, n);
            cr_assert_eq(memcmp(b, b2, n), 0);
        }
        fr_update_free(d);
        fr_update_free(e);
        fr_update_bytes_free(b2);
    }
    cr_assert(done);
    fr_update_bytes_free(b);
    fr_update_free(u);
}

/* The named seeds of the fuzz corpus (written by an independent Python encoder) decode
 * or fail as their names say. */
Test(update, fuzz_seeds_decode_as_named) {
    const char *valid[] = {"valid_sample", "valid_empty_tables", "valid_full_table0"};
    const char *bad[] = {"bad_truncated", "bad_crc", "bad_version", "bad_unsorted_ids", "bad_width", "bad_short"};
    const fr_err bad_err[] = {FR_ERR_FORMAT, FR_ERR_CHECKSUM, FR_ERR_VERSION, FR_ERR_FORMAT, FR_ERR_FORMAT,
                              FR_ERR_FORMAT};
    for (int k = 0; k < 9; k++) {
        const char *name = k < 3 ? valid[k] : bad[k - 3];
        char path[4096];
        snprintf(path, sizeof path, "%s/fuzz/corpus/update/%s", FR_SOURCE_DIR, name);
        uint8_t *b = NULL;
        size_t n = 0;
        cr_assert_eq(fri_read_file(path, &b, &n), FR_OK, "%s", fr_errmsg());
        fr_err e = decode_err(b, n);
        cr_assert_eq(e, k < 3 ? FR_OK : bad_err[k - 3], "%s: %s", name, fr_errmsg());
        if (k == 0) {
            fr_update *d = NULL;
            cr_assert_eq(fr_update_decode(&d, b, n, &SHAPE), FR_OK);
            cr_assert_eq(d->weight, 100);
            cr_assert_eq(d->client, 3);
            cr_assert_eq(d->tables[1].ids[2], 999);
            cr_assert_eq(d->tables[0].values[11], 2.75f);
            fr_update_free(d);
        }
        fri_free(b);
    }
}
