/* The federation's messages: the RESULT codec (exact bytes, round trips, reuse without
 * allocation, every truncation and byte flip, each body check behind a valid CRC, an
 * allocation-failure sweep, the named seeds of an independent encoder) and the TASK
 * (made by the round controller, decoded by a client: the same checks), and the
 * quantization of an update into a result against hand-computed fixed point. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/core.h"
#include "fedrec/fl.h"
#include "fl/fl_internal.h"

static const uint32_t W[2] = {4, 1}, ROWS[2] = {16, 1000};
static const fr_update_shape SHAPE = {3, 2, W, ROWS};

/* dense {1, -2, 3}; table 0 rows 1, 4, 15 (width 4); table 1 rows 0, 7, 999 (width 1) */
static fr_result *sample(void) {
    fr_result *r = NULL;
    cr_assert_eq(fr_result_create(&r), FR_OK);
    cr_assert_eq(fri_result_reset(r, 3, 2, W), FR_OK);
    r->client = 42;
    r->round = 7;
    r->config_crc = 0xdeadbeef;
    r->weight = 123456789012ULL;
    r->examples = 99;
    r->loss_sum = 12.25;
    r->dense[0] = 1; r->dense[1] = -2; r->dense[2] = INT64_MAX;
    cr_assert_eq(fri_result_table_resize(r, 0, 3), FR_OK);
    uint32_t id0[3] = {1, 4, 15};
    memcpy(r->tables[0].ids, id0, sizeof id0);
    for (int i = 0; i < 12; i++) r->tables[0].values[i] = (int64_t)i * 1000000007LL - 5;
    cr_assert_eq(fri_result_table_resize(r, 1, 3), FR_OK);
    uint32_t id1[3] = {0, 7, 999};
    memcpy(r->tables[1].ids, id1, sizeof id1);
    for (int i = 0; i < 3; i++) r->tables[1].values[i] = -(int64_t)i;
    return r;
}

static void reseal(uint8_t *b, size_t n) {
    fri_put_u64(b + 8, n);
    fri_put_u32(b + 16, fr_crc32c(0, b + 24, n - 24));
}

static fr_err decode_err(const uint8_t *b, size_t n) {
    fr_result *r = NULL;
    cr_assert_eq(fr_result_create(&r), FR_OK);
    fr_err e = fr_result_decode(r, b, n, &SHAPE);
    fr_result_free(r);
    return e;
}

static uint8_t *encode(const fr_result *r, size_t *n) {
    uint8_t *b = NULL;
    cr_assert_eq(fr_result_encode(r, &b, n), FR_OK, "%s", fr_errmsg());
    return b;
}

Test(result, sizes_match_encoding) {
    fr_result *r = sample();
    /* header 24 + fixed 48 + dense 24 + table 0 (8 + 12 + 96) + table 1 (8 + 12 + 24) = 256 */
    cr_assert_eq(fr_result_encoded_size(r), 256);
    size_t n = 0;
    uint8_t *b = encode(r, &n);
    cr_assert_eq(n, 256);
    cr_assert_eq(fr_msg_header_bytes(), FR_MSG_HEADER_BYTES);
    uint16_t type = 0;
    cr_assert_eq(fr_msg_type(b, n, &type), FR_OK);
    cr_assert_eq(type, FR_MSG_RESULT);
    fr_msg_free(b);
    fr_result_free(r);
}

/* The exact bytes of a small message: no table, dense {5}, client 2, round 3. */
Test(result, exact_bytes_of_a_small_message) {
    fr_result *r = NULL;
    cr_assert_eq(fr_result_create(&r), FR_OK);
    cr_assert_eq(fri_result_reset(r, 1, 0, NULL), FR_OK);
    r->client = 2; r->round = 3; r->config_crc = 0x01020304; r->weight = 5; r->examples = 6; r->loss_sum = 0.5;
    r->dense[0] = -1;
    uint8_t b[80];
    size_t n = 0;
    cr_assert_eq(fr_result_encode_to(r, b, sizeof b, &n), FR_OK);
    cr_assert_eq(n, 80);
    const uint8_t body[56] = {2, 0, 0, 0, 3, 0, 0, 0, 4, 3, 2, 1, 0, 0, 0, 0,     /* client round crc reserved */
                              5, 0, 0, 0, 0, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0,     /* weight examples */
                              0, 0, 0, 0, 0, 0, 0xe0, 0x3f,                       /* 0.5 */
                              1, 0, 0, 0, 0, 0, 0, 0,                             /* D = 1, T = 0 */
                              0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};    /* -1 */
    cr_assert_eq(memcmp(b, "FRMS", 4), 0);
    cr_assert_eq(b[4], 1); cr_assert_eq(b[5], 0);   /* version 1 */
    cr_assert_eq(b[6], 2); cr_assert_eq(b[7], 0);   /* type 2: RESULT */
    cr_assert_eq(fri_get_u64(b + 8), 80);
    cr_assert_eq(fri_get_u32(b + 16), fr_crc32c(0, body, sizeof body));
    cr_assert_eq(fri_get_u32(b + 20), 0);
    cr_assert_eq(memcmp(b + 24, body, sizeof body), 0);
    cr_assert_eq(fr_result_encode_to(r, b, 79, &n), FR_ERR_RANGE);
    const uint32_t none[1] = {0};
    fr_update_shape s = {1, 0, none, none};
    fr_result *d = NULL;
    cr_assert_eq(fr_result_create(&d), FR_OK);
    cr_assert_eq(fr_result_decode(d, b, 80, &s), FR_OK);
    cr_assert(d->client == 2 && d->round == 3 && d->config_crc == 0x01020304 && d->weight == 5 && d->examples == 6);
    cr_assert(d->loss_sum == 0.5 && d->dense[0] == -1);
    fr_result_free(d);
    fr_result_free(r);
}

Test(result, round_trip_is_canonical) {
    fr_result *r = sample();
    size_t n = 0;
    uint8_t *b = encode(r, &n);
    fr_result *d = NULL;
    cr_assert_eq(fr_result_create(&d), FR_OK);
    cr_assert_eq(fr_result_decode(d, b, n, &SHAPE), FR_OK, "%s", fr_errmsg());
    cr_assert(d->weight == 123456789012ULL && d->client == 42 && d->round == 7 && d->config_crc == 0xdeadbeef);
    cr_assert(d->examples == 99 && d->loss_sum == 12.25);
    cr_assert_eq(memcmp(d->dense, r->dense, 3 * sizeof(int64_t)), 0);
    for (uint32_t t = 0; t < 2; t++) {
        cr_assert_eq(d->tables[t].count, 3);
        cr_assert_eq(memcmp(d->tables[t].ids, r->tables[t].ids, 12), 0);
        cr_assert_eq(memcmp(d->tables[t].values, r->tables[t].values, 3 * W[t] * 8), 0);
    }
    size_t n2 = 0;
    uint8_t *b2 = encode(d, &n2);
    cr_assert(n2 == n && memcmp(b, b2, n) == 0, "re-encoding is not canonical");
    fr_msg_free(b2);
    fr_msg_free(b);
    fr_result_free(d);
    fr_result_free(r);
}

Test(result, reuse_across_rounds_does_not_allocate) {
    fr_result *r = sample();
    size_t n = 0;
    uint8_t *b = encode(r, &n);
    fr_result *d = NULL;
    cr_assert_eq(fr_result_create(&d), FR_OK);
    cr_assert_eq(fr_result_decode(d, b, n, &SHAPE), FR_OK);
    fr_test_fail_alloc(0, false); /* resets the counter */
    uint8_t buf[512];
    for (int round = 0; round < 3; round++) {
        cr_assert_eq(fr_result_decode(d, b, n, &SHAPE), FR_OK);
        size_t k = 0;
        cr_assert_eq(fr_result_encode_to(d, buf, sizeof buf, &k), FR_OK);
    }
    cr_assert_eq(fr_test_alloc_count(), 0, "%ld allocations while reusing", fr_test_alloc_count());
    /* a narrower table keeps a row capacity that both ids and values can hold */
    const uint32_t w2[2] = {1, 8};
    cr_assert_eq(fri_result_reset(d, 0, 2, w2), FR_OK);
    cr_assert_leq(d->tables[0].cap_rows, 3);
    cr_assert_leq(d->tables[1].cap_rows * 8, 3);
    fr_msg_free(b);
    fr_result_free(d);
    fr_result_free(r);
}

/* A reset refused for a width of 0 (in any table, the last too) changes nothing: the
 * layout, the counts and the row capacities are those of before, and the result encodes
 * to the same bytes. */
Test(result, refused_reset_leaves_the_result_unchanged) {
    fr_result *r = sample();
    size_t n0 = 0;
    uint8_t *b0 = encode(r, &n0);
    const fr_result_table t0 = r->tables[0], t1 = r->tables[1];
    const uint32_t bad[3][3] = {{0, 4, 1}, {4, 0, 1}, {2, 8, 0}};
    for (int k = 0; k < 3; k++) {
        cr_assert_eq(fri_result_reset(r, 5, 3, bad[k]), FR_ERR_INVALID);
        cr_assert(strstr(fr_errmsg(), "has width 0") != NULL, "%s", fr_errmsg());
        cr_assert_eq(r->dense_len, 3);
        cr_assert_eq(r->n_tables, 2);
        cr_assert_eq(r->tables[0].width, t0.width);
        cr_assert_eq(r->tables[0].count, t0.count);
        cr_assert_eq(r->tables[0].cap_rows, t0.cap_rows);
        cr_assert_eq(r->tables[1].width, t1.width);
        cr_assert_eq(r->tables[1].count, t1.count);
        cr_assert_eq(r->tables[1].cap_rows, t1.cap_rows);
        size_t n = 0;
        uint8_t *b = encode(r, &n);
        cr_assert_eq(n, n0);
        cr_assert(!memcmp(b, b0, n0), "reset %d changed the result's bytes", k);
        fr_msg_free(b);
    }
    /* too many tables: refused the same way */
    uint32_t many[FR_UPDATE_MAX_TABLES + 1];
    for (int i = 0; i <= FR_UPDATE_MAX_TABLES; i++) many[i] = 1;
    cr_assert_eq(fri_result_reset(r, 5, FR_UPDATE_MAX_TABLES + 1, many), FR_ERR_INVALID);
    cr_assert_eq(r->dense_len, 3);
    cr_assert_eq(r->n_tables, 2);
    fr_msg_free(b0);
    fr_result_free(r);
}

Test(result, encoder_rejects_unsorted_ids) {
    fr_result *r = sample();
    r->tables[1].ids[2] = 7; /* 0, 7, 7 */
    uint8_t *b = NULL;
    size_t n = 0;
    cr_assert_eq(fr_result_encode(r, &b, &n), FR_ERR_INVALID);
    cr_assert_null(b);
    cr_assert(strstr(fr_errmsg(), "row id 7 at 2 follows 7") != NULL, "%s", fr_errmsg());
    fr_result_free(r);
}

Test(result, every_truncation_and_trailing_bytes_fail) {
    fr_result *r = sample();
    size_t n = 0;
    uint8_t *b = encode(r, &n);
    for (size_t k = 0; k < n; k++) {
        cr_assert_eq(decode_err(b, k), FR_ERR_FORMAT, "truncated to %zu bytes", k);
        if (k >= 24) cr_assert(strstr(fr_errmsg(), "truncated") != NULL, "%s", fr_errmsg());
    }
    uint8_t *longer = malloc(n + 1);
    memcpy(longer, b, n);
    longer[n] = 0;
    cr_assert_eq(decode_err(longer, n + 1), FR_ERR_FORMAT);
    cr_assert(strstr(fr_errmsg(), "trailing") != NULL, "%s", fr_errmsg());
    reseal(longer, n + 1); /* the extra byte announced and covered by the CRC */
    cr_assert_eq(decode_err(longer, n + 1), FR_ERR_FORMAT);
    cr_assert(strstr(fr_errmsg(), "1 unexpected bytes after the last table") != NULL, "%s", fr_errmsg());
    free(longer);
    fr_msg_free(b);
    fr_result_free(r);
}

/* Every byte flipped (three patterns): header fields fail with their own error, the body
 * fails its CRC. */
Test(result, every_byte_flip_fails_with_the_right_error) {
    fr_result *r = sample();
    size_t n = 0;
    uint8_t *b = encode(r, &n);
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
    cr_assert_str_eq(fr_errmsg(), "RESULT: message format version 2, this build reads version 1");
    b[4] = 1;
    b[6] = 1;
    cr_assert_eq(decode_err(b, n), FR_ERR_FORMAT);
    cr_assert(strstr(fr_errmsg(), "message type 1, expected 2") != NULL, "%s", fr_errmsg());
    fr_msg_free(b);
    fr_result_free(r);
}

/* Offsets in the sample: body at 24: reserved at 36, loss at 56, dense length at 64,
 * table count at 68, dense at 72; table 0 header at 96 (width 96, count 100), ids at 104,
 * values at 116; table 1 header at 212 (width 212, count 216), ids at 220, values at 232. */
typedef struct body_case {
    size_t off;
    uint32_t value;
    const char *msg;
} body_case;

Test(result, body_checks_behind_a_valid_crc) {
    fr_result *r = sample();
    size_t n = 0;
    uint8_t *b = encode(r, &n);
    const body_case cases[] = {
        {36, 2, "flags 0x2, expected 0 or 1"},
        {60, 0x7ff80000, "loss sum nan"},
        {60, 0xbff00000, "loss sum -1"},
        {64, 4, "dense length 4, expected 3"},
        {68, 3, "3 tables, expected 2"},
        {96, 5, "table 0: row width 5, expected 4"},
        {100, 17, "table 0: 17 rows, the table has 16"},
        {100, 5, "table rows: 5 entries of 36 bytes"},
        {216, 2, "12 unexpected bytes after the last table"},
        {108, 1, "table 0: row id 1 at 1 follows 1"},
        {112, 3, "table 0: row id 3 at 2 follows 4"},
        {112, 16, "table 0: row id 16 out of range"},
        {228, 1000, "table 1: row id 1000 out of range"},
        {216, 1000, "table rows: 1000 entries of 12 bytes"},
        {216, UINT32_MAX, "table 1: 4294967295 rows, the table has 1000"},
        {20, 1, "reserved header field"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        uint8_t *m = malloc(n);
        memcpy(m, b, n);
        fri_put_u32(m + cases[c].off, cases[c].value);
        if (cases[c].off >= 24) reseal(m, n);
        cr_assert_eq(decode_err(m, n), FR_ERR_FORMAT, "case %zu: %s", c, fr_errmsg());
        cr_assert(strstr(fr_errmsg(), cases[c].msg) != NULL, "case %zu: \"%s\" lacks \"%s\"", c, fr_errmsg(),
                  cases[c].msg);
        free(m);
    }
    /* a claim of 2^32-1 rows is refused before anything is sized for it */
    const uint32_t big_rows[2] = {UINT32_MAX, UINT32_MAX};
    fr_update_shape big = {3, 2, W, big_rows};
    fri_put_u32(b + 216, UINT32_MAX);
    reseal(b, n);
    fr_result *d = NULL;
    cr_assert_eq(fr_result_create(&d), FR_OK);
    fr_test_fail_alloc(0, false);
    cr_assert_eq(fr_result_decode(d, b, n, &big), FR_ERR_FORMAT);
    cr_assert(fr_test_alloc_count() <= 5, "%ld allocations", fr_test_alloc_count());
    fr_update_shape bad = {3, FR_UPDATE_MAX_TABLES + 1, W, ROWS};
    cr_assert_eq(fr_result_decode(d, b, n, &bad), FR_ERR_INVALID);
    cr_assert_eq(fr_result_decode(d, b, n, NULL), FR_ERR_INVALID);
    fr_result_free(d);
    fr_msg_free(b);
    fr_result_free(r);
}

Test(result, allocation_failure_sweep) {
    fr_result *r = sample();
    size_t n = 0;
    uint8_t *b = encode(r, &n);
    int done = 0;
    for (long k = 1; k < 100 && !done; k++) {
        fr_result *d = NULL;
        uint8_t *b2 = NULL;
        size_t n2 = 0;
        fr_test_fail_alloc(k, false);
        fr_err r1 = fr_result_create(&d);
        if (!r1) r1 = fr_result_decode(d, b, n, &SHAPE);
        fr_err r2 = r1 ? r1 : fr_result_encode(d, &b2, &n2);
        fr_test_fail_alloc(0, false);
        cr_assert(r1 == FR_OK || r1 == FR_ERR_NOMEM);
        cr_assert(r2 == FR_OK || r2 == FR_ERR_NOMEM);
        if (!r2) {
            done = 1;
            cr_assert(n2 == n && memcmp(b, b2, n) == 0);
        }
        fr_result_free(d);
        fr_msg_free(b2);
    }
    cr_assert(done);
    fr_msg_free(b);
    fr_result_free(r);
}

/* The named seeds of the corpus (written by fuzz/make_seeds.py, an independent encoder)
 * decode or fail as their names say. */
Test(result, fuzz_seeds_decode_as_named) {
    const char *names[] = {"valid_sample", "valid_empty_tables", "valid_full_table0", "bad_truncated", "bad_crc",
                           "bad_version", "bad_unsorted_ids", "bad_width", "bad_short", "bad_type_task"};
    const fr_err want[] = {FR_OK, FR_OK, FR_OK, FR_ERR_FORMAT, FR_ERR_CHECKSUM, FR_ERR_VERSION, FR_ERR_FORMAT,
                           FR_ERR_FORMAT, FR_ERR_FORMAT, FR_ERR_FORMAT};
    for (int k = 0; k < 10; k++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/fuzz/corpus/result/%s", FR_SOURCE_DIR, names[k]);
        uint8_t *b = NULL;
        size_t n = 0;
        cr_assert_eq(fri_read_file(path, &b, &n), FR_OK, "%s", fr_errmsg());
        fr_result *d = NULL;
        cr_assert_eq(fr_result_create(&d), FR_OK);
        fr_err e = fr_result_decode(d, b, n, &SHAPE);
        cr_assert_eq(e, want[k], "%s: %s", names[k], fr_errmsg());
        if (k == 0) {
            cr_assert(d->weight == 100 && d->client == 3 && d->round == 2 && d->config_crc == 0x1234);
            cr_assert(d->examples == 500 && d->loss_sum == 12.5);
            cr_assert(d->dense[0] == 1 && d->dense[1] == -2 && d->dense[2] == 3);
            cr_assert_eq(d->tables[1].ids[2], 999);
            cr_assert_eq(d->tables[0].values[11], (1000 + 11) * (INT64_C(1) << 32) / 4);
        }
        fr_result_free(d);
        fri_free(b);
    }
}

/* ------------------------------------------------------------------ quantization */

Test(result, quantize_weights_and_rounds_as_fixed_point) {
    fr_update *u = NULL;
    cr_assert_eq(fr_update_create(&u), FR_OK);
    const uint32_t w[1] = {2};
    cr_assert_eq(fr_update_reset(u, 2, 1, w), FR_OK);
    u->weight = 3; u->client = 9; u->round = 4;
    u->dense[0] = 0.25f; u->dense[1] = -1.0f / 3.0f;
    cr_assert_eq(fr_update_table_resize(u, 0, 1), FR_OK);
    u->tables[0].ids[0] = 5;
    u->tables[0].values[0] = 1e-10f;
    u->tables[0].values[1] = -2.5f;
    fr_fl_config cfg;
    fr_fl_config_default(&cfg, FR_MODEL_MF);
    fr_result *r = NULL;
    cr_assert_eq(fr_result_create(&r), FR_OK);
    cr_assert_eq(fr_result_quantize(r, u, &cfg, 0), FR_OK);
    cr_assert(r->weight == 3 && r->client == 9 && r->round == 4);
    /* round(3 * v * 2^32) half away from zero, computed here in long double */
    const float vals[4] = {0.25f, -1.0f / 3.0f, 1e-10f, -2.5f};
    int64_t want[4];
    for (int i = 0; i < 4; i++) want[i] = (int64_t)llroundl(3.0L * (long double)vals[i] * 4294967296.0L);
    cr_assert_eq(r->dense[0], want[0]);
    cr_assert_eq(r->dense[1], want[1]);
    cr_assert_eq(r->tables[0].ids[0], 5);
    cr_assert_eq(r->tables[0].values[0], want[2]);
    cr_assert_eq(r->tables[0].values[1], want[3]);
    cfg.item_sum = true; /* item rows with weight 1, the dense part still with n_k */
    cr_assert_eq(fr_result_quantize(r, u, &cfg, 0), FR_OK);
    cr_assert_eq(r->dense[0], want[0]);
    cr_assert_eq(r->tables[0].values[1], (int64_t)llroundl(-2.5L * 4294967296.0L));
    u->tables[0].values[1] = NAN; /* a diverged fit sends nothing */
    cr_assert_eq(fr_result_quantize(r, u, &cfg, 0), FR_ERR_RANGE);
    cr_assert(strstr(fr_errmsg(), "client 9: its update is not finite (table 0, row 5") != NULL, "%s",
              fr_errmsg());
    /* a value beyond the round's bound is a diverged fit: refused, never saturated (a
     * round of k clients sums at most k values of the bound: no overflow) */
    u->tables[0].values[1] = 1e30f;
    cr_assert_eq(fr_result_quantize(r, u, &cfg, 0), FR_ERR_RANGE);
    cr_assert(strstr(fr_errmsg(), "client 9: its update is beyond this round's fixed-point range") != NULL, "%s",
              fr_errmsg());
    u->tables[0].values[1] = 1e6f; /* 1e6 * 2^32 = 4.3e15: within the bound of 1 client, not of 10000 */
    cr_assert_eq(fr_result_quantize(r, u, &cfg, fr_fl_fixed_bound(1)), FR_OK);
    cr_assert_eq(r->tables[0].values[1], (int64_t)1e6 * 4294967296LL);
    cr_assert_eq(fr_result_quantize(r, u, &cfg, fr_fl_fixed_bound(10000)), FR_ERR_RANGE);
    cr_assert_eq(fr_fl_fixed_bound(1), (uint64_t)4.6e18);
    cr_assert_eq(fr_fl_fixed_bound(10000), (uint64_t)INT64_MAX / 10000);
    fr_result_free(r);
    fr_update_free(u);
}

/* The fast path (the client's update encoded straight into a RESULT) gives the bytes of
 * the reference path (quantize into an fr_result, then encode), on updates of every
 * length around the vector width, both item weightings, and refuses what quantize refuses. */
Test(result, encoding_an_update_directly_equals_quantize_then_encode) {
    fr_rng rng;
    fr_rng_init(&rng, 7, 0, 0, FR_PURPOSE_TEST);
    fr_update *u = NULL;
    fr_result *r = NULL;
    cr_assert_eq(fr_update_create(&u), FR_OK);
    cr_assert_eq(fr_result_create(&r), FR_OK);
    fr_fl_config cfg;
    fr_fl_config_default(&cfg, FR_MODEL_NEUMF);
    for (int trial = 0; trial < 60; trial++) {
        uint32_t widths[3] = {1 + fr_rng_below(&rng, 17), 1 + fr_rng_below(&rng, 9), 8};
        uint32_t dense = fr_rng_below(&rng, 40);
        cr_assert_eq(fr_update_reset(u, dense, 3, widths), FR_OK);
        u->weight = 1 + fr_rng_below(&rng, 500);
        u->client = (uint32_t)trial;
        u->round = 3;
        for (uint32_t i = 0; i < dense; i++) u->dense[i] = (float)(fr_rng_normal(&rng) * 0.01);
        for (uint32_t t = 0; t < 3; t++) {
            uint32_t c = fr_rng_below(&rng, 20);
            cr_assert_eq(fr_update_table_resize(u, t, c), FR_OK);
            for (uint32_t i = 0; i < c; i++) u->tables[t].ids[i] = 3 * i + t;
            for (size_t i = 0; i < (size_t)c * widths[t]; i++) u->tables[t].values[i] = (float)(fr_rng_normal(&rng) * 0.1);
        }
        cfg.item_sum = trial % 2;
        cr_assert_eq(fr_result_quantize(r, u, &cfg, 0), FR_OK);
        r->config_crc = 0xabcdef01;
        r->examples = 77;
        r->loss_sum = 1.5;
        size_t n1 = 0, n2 = 0;
        uint8_t *a = encode(r, &n1);
        cr_assert_eq(fri_result_update_size(u), n1);
        uint8_t *b = malloc(n1 + 3), *bb = b + 3; /* an odd address: the values are unaligned */
        cr_assert_eq(fri_result_encode_update(u, &cfg, 0, 0xabcdef01, 77, 1.5, bb, n1, &n2), FR_OK, "%s", fr_errmsg());
        cr_assert(n1 == n2 && memcmp(a, bb, n1) == 0, "trial %d: direct encoding differs", trial);
        cr_assert_eq(fri_result_encode_update(u, &cfg, 0, 0, 0, 0, bb, n1 - 1, &n2), FR_ERR_RANGE);
        fr_msg_free(a);
        free(b);
    }
    u->tables[2].count = 2;
    u->tables[2].ids[0] = 0;
    u->tables[2].ids[1] = 1;
    u->tables[2].values[9] = INFINITY;
    uint8_t buf[4096];
    size_t n = 0;
    cr_assert_eq(fri_result_encode_update(u, &cfg, 0, 0, 0, 0, buf, sizeof buf, &n), FR_ERR_RANGE);
    cr_assert(strstr(fr_errmsg(), "table 2, row 1 is inf") != NULL, "%s", fr_errmsg());
    fr_result_free(r);
    fr_update_free(u);
}
