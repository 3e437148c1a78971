/* Core: known-answer tests for Philox and CRC-32C, statistical sanity of the
 * distributions, the thread pool, the allocation hook and the error messages. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/alias.h"
#include "core/core.h"
#include "testutil.h"

Test(philox, known_answers_random123) {
    /* Random123 kat_vectors: counter[4] key[2] -> output[4]. */
    static const uint32_t v[3][10] = {
        {0, 0, 0, 0, 0, 0, 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
        {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0x408f276d, 0x41c83b0e,
         0xa20bc7c6, 0x6d5451fd},
        {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0, 0xd16cfe09, 0x94fdcceb,
         0x5001e420, 0x24126ea1},
    };
    for (int k = 0; k < 3; k++) {
        uint32_t out[4];
        fr_philox4x32_10(v[k], v[k] + 4, out);
        for (int j = 0; j < 4; j++) cr_assert_eq(out[j], v[k][6 + j], "vector %d word %d", k, j);
    }
}

Test(rng, stream_is_function_of_its_name) {
    fr_rng a, b, c;
    fr_rng_init(&a, 42, 3, 7, FR_PURPOSE_NEGATIVES);
    fr_rng_init(&b, 42, 3, 7, FR_PURPOSE_NEGATIVES);
    fr_rng_init(&c, 42, 3, 8, FR_PURPOSE_NEGATIVES);
    int same = 0;
    for (int i = 0; i < 1000; i++) {
        uint32_t x = fr_rng_u32(&a);
        cr_assert_eq(x, fr_rng_u32(&b));
        same += x == fr_rng_u32(&c);
    }
    cr_assert_lt(same, 3);
    /* The first block equals the raw block function at counter (0, purpose<<16, round, client). */
    fr_rng_init(&a, 0x0123456789abcdefull, 5, 9, 2);
    uint32_t ctr[4] = {0, 2u << 16, 5, 9}, key[2] = {0x89abcdef, 0x01234567}, out[4];
    fr_philox4x32_10(ctr, key, out);
    for (int j = 0; j < 4; j++) cr_assert_eq(fr_rng_u32(&a), out[j]);
}

Test(rng, below_is_unbiased_and_in_range) {
    fr_rng r;
    fr_rng_init(&r, 1, 0, 0, FR_PURPOSE_TEST);
    enum { N = 7, DRAWS = 700000 };
    long cnt[N] = {0};
    for (int i = 0; i < DRAWS; i++) {
        uint32_t x = fr_rng_below(&r, N);
        cr_assert_lt(x, N);
        cnt[x]++;
    }
    double chi = 0, e = DRAWS / (double)N;
    for (int k = 0; k < N; k++) chi += (cnt[k] - e) * (cnt[k] - e) / e;
    cr_assert_lt(chi, 22.46, "chi2 %.2f over 6 dof (p=0.001 bound 22.46)", chi); /* chi2(6) 99.9% */
    for (int i = 0; i < 1000; i++) cr_assert_lt(fr_rng_below64(&r, 5000000000ull), 5000000000ull);
    cr_assert_eq(fr_rng_below(&r, 1), 0);
}

Test(rng, floats_and_normals) {
    fr_rng r;
    fr_rng_init(&r, 2, 0, 0, FR_PURPOSE_TEST);
    double s = 0, s2 = 0, m = 0;
    enum { N = 200000 };
    for (int i = 0; i < N; i++) {
        double u = fr_rng_double(&r);
        float f = fr_rng_float(&r);
        cr_assert(u >= 0 && u < 1);
        cr_assert(f >= 0 && f < 1);
        m += u;
        double z = fr_rng_normal(&r);
        s += z;
        s2 += z * z;
    }
    cr_assert_lt(fabs(m / N - 0.5), 0.005);
    cr_assert_lt(fabs(s / N), 0.01);
    cr_assert_lt(fabs(s2 / N - 1.0), 0.02);
}

Test(rng, sample_without_replacement) {
    fr_rng r;
    fr_rng_init(&r, 3, 0, 0, FR_PURPOSE_TEST);
    uint32_t out[100];
    long hits[10] = {0};
    for (int t = 0; t < 20000; t++) {
        cr_assert_eq(fr_rng_sample(&r, 10, 3, out), FR_OK);
        for (int a = 0; a < 3; a++) {
            cr_assert_lt(out[a], 10);
            for (int b = 0; b < a; b++) cr_assert_neq(out[a], out[b]);
            hits[out[a]]++;
        }
    }
    for (int k = 0; k < 10; k++) cr_assert_lt(fabs(hits[k] / 60000.0 - 0.1), 0.01);
    cr_assert_eq(fr_rng_sample(&r, 100, 100, out), FR_OK); /* a permutation */
    int seen[100] = {0};
    for (int a = 0; a < 100; a++) seen[out[a]]++;
    for (int a = 0; a < 100; a++) cr_assert_eq(seen[a], 1);
    cr_assert_eq(fr_rng_sample(&r, 5, 6, out), FR_ERR_INVALID);
}

Test(rng, shuffle_is_permutation) {
    fr_rng r;
    fr_rng_init(&r, 4, 0, 0, FR_PURPOSE_TEST);
    uint32_t a[50];
    for (uint32_t i = 0; i < 50; i++) a[i] = i;
    fr_rng_shuffle_u32(&r, a, 50);
    int seen[50] = {0}, moved = 0;
    for (uint32_t i = 0; i < 50; i++) { seen[a[i]]++; moved += a[i] != i; }
    for (int i = 0; i < 50; i++) cr_assert_eq(seen[i], 1);
    cr_assert_gt(moved, 30);
}

Test(zipf, frequencies_follow_power_law) {
    fr_zipf *z = NULL;
    cr_assert_eq(fr_zipf_create(&z, 100, 1.0), FR_OK);
    fr_rng r;
    fr_rng_init(&r, 5, 0, 0, FR_PURPOSE_TEST);
    long cnt[100] = {0};
    enum { N = 500000 };
    for (int i = 0; i < N; i++) cnt[fr_zipf_draw(z, &r)]++;
    double h = 0;
    for (int k = 1; k <= 100; k++) h += 1.0 / k;
    for (int k = 0; k < 5; k++) {
        double p = 1.0 / (k + 1) / h;
        cr_assert_lt(fabs(cnt[k] / (double)N - p), 0.01 * p + 0.002, "rank %d: %g vs %g", k, cnt[k] / (double)N, p);
    }
    fr_zipf_free(z);
    cr_assert_eq(fr_zipf_create(&z, 0, 1.0), FR_ERR_INVALID);
    cr_assert_null(z);
    double w[3] = {1, -1, 2};
    cr_assert_eq(fr_zipf_create_weights(&z, w, 3), FR_ERR_INVALID);
    cr_assert(strstr(fr_errmsg(), "weight 1") != NULL);
}

/* The alias table of fr_zipf and of the generator's popularity draws: column i keeps i
 * with probability p and gives its alias otherwise, so outcome k has probability
 * (p_k + sum of (1 - p_j) over the columns j aliased to k) / n, which must be w_k / sum w. */
Test(alias, columns_give_the_weights_exactly) {
    static const double w[9] = {5, 0, 1, 1, 0.25, 3, 7, 0.5, 2};
    double sum = 0;
    for (int k = 0; k < 9; k++) sum += w[k];
    fri_alias_col t[9];
    double scaled[9];
    uint32_t small[9], large[9];
    fri_alias_build(t, w, 9, scaled, small, large);
    double got[9] = {0};
    for (int j = 0; j < 9; j++) {
        cr_assert(t[j].p >= 0 && t[j].p <= 1, "column %d: p %g", j, (double)t[j].p);
        cr_assert_lt(t[j].alias, 9u);
        got[j] += t[j].p;
        got[t[j].alias] += 1.0 - t[j].p;
    }
    for (int k = 0; k < 9; k++)
        cr_assert_lt(fabs(got[k] / 9 - w[k] / sum), 1e-6, "outcome %d: %g vs %g", k, got[k] / 9, w[k] / sum);
    /* One outcome: the table keeps it. */
    double one = 3;
    fri_alias_build(t, &one, 1, scaled, small, large);
    cr_assert_eq(t[0].p, 1.0f);
    cr_assert_eq(t[0].alias, 0u);
}

Test(crc32c, known_answers) {
    cr_assert_eq(fr_crc32c(0, "123456789", 9), 0xE3069283u);
    cr_assert_eq(fr_crc32c(0, "", 0), 0u);
    uint8_t zeros[32] = {0};
    cr_assert_eq(fr_crc32c(0, zeros, 32), 0x8A9136AAu); /* RFC 3720 B.4 */
    /* Chaining equals one pass. */
    const char *s = "The quick brown fox jumps over the lazy dog";
    uint32_t c = fr_crc32c(fr_crc32c(0, s, 10), s + 10, strlen(s) - 10);
    cr_assert_eq(c, fr_crc32c(0, s, strlen(s)));
}

typedef struct { long *out; } pool_ctx;
static void square(void *ctx, size_t i, int w) {
    (void)w;
    ((pool_ctx *)ctx)->out[i] = (long)(i * i);
}

Test(pool, runs_every_index_once) {
    for (int th = 1; th <= 4; th++) {
        fr_pool *p = NULL;
        cr_assert_eq(fr_pool_create(&p, th), FR_OK);
        cr_assert_eq(fr_pool_size(p), th);
        long out[1000];
        pool_ctx c = {out};
        for (int rep = 0; rep < 20; rep++) {
            memset(out, 0xff, sizeof out);
            fr_pool_for(p, 1000, rep % 3, square, &c);
            for (long i = 0; i < 1000; i++) cr_assert_eq(out[i], i * i);
        }
        fr_pool_free(p);
    }
    fr_pool_free(NULL);
}

Test(alloc, hook_fails_nth_and_counts) {
    fr_test_fail_alloc(2, false);
    void *a = fri_malloc(10), *b = fri_malloc(10), *c = fri_malloc(10);
    cr_assert_not_null(a);
    cr_assert_null(b);
    cr_assert_not_null(c);
    cr_assert_eq(fr_test_alloc_count(), 3);
    cr_assert(strstr(fr_errmsg(), "out of memory") != NULL);
    fri_free(a); fri_free(c);
    fr_test_fail_alloc(1, true);
    cr_assert_null(fri_malloc(1));
    cr_assert_null(fri_calloc(1, 1));
    fr_test_fail_alloc(0, false);
    void *d = fri_calloc(SIZE_MAX / 2, 4); /* overflow is refused, not wrapped */
    cr_assert_null(d);
}

Test(errors, strerror_and_messages) {
    for (int e = FR_OK; e <= FR_ERR_INTERNAL; e++) cr_assert_not_null(fr_strerror((fr_err)e));
    cr_assert_str_eq(fr_strerror(FR_ERR_NOMEM), "out of memory");
    cr_assert_eq(fri_fail(FR_ERR_PARSE, "x.dat:%d: expected 4 fields, got %d", 12, 3), FR_ERR_PARSE);
    cr_assert_str_eq(fr_errmsg(), "x.dat:12: expected 4 fields, got 3");
    fri_fail_prefix(FR_ERR_PARSE, "loading %s", "train");
    cr_assert_str_eq(fr_errmsg(), "loading train: x.dat:12: expected 4 fields, got 3");
    fr_errmsg_clear();
    cr_assert_str_eq(fr_errmsg(), "");
}

Test(io, little_endian_and_atomic_write) {
    uint8_t b[8];
    fri_put_u32(b, 0x11223344u);
    cr_assert_eq(b[0], 0x44);
    cr_assert_eq(b[3], 0x11);
    cr_assert_eq(fri_get_u32(b), 0x11223344u);
    fri_put_u64(b, 0x0102030405060708ull);
    cr_assert_eq(b[0], 8);
    cr_assert_eq(fri_get_u64(b), 0x0102030405060708ull);
    fri_put_f32(b, -1.5f);
    cr_assert_eq(fri_get_f32(b), -1.5f);
    char *dir = tu_tmpdir();
    char path[512];
    snprintf(path, sizeof path, "%s/f.bin", dir);
    cr_assert_eq(fri_write_file_atomic(path, "hello", 5), FR_OK);
    uint8_t *data;
    size_t n;
    cr_assert_eq(fri_read_file(path, &data, &n), FR_OK);
    cr_assert_eq(n, 5);
    cr_assert_eq(memcmp(data, "hello", 5), 0);
    fri_free(data);
    cr_assert_eq(fri_read_file(dir, &data, &n), FR_ERR_IO);
    cr_assert(strstr(fr_errmsg(), "directory") != NULL);
    tu_rmtree(dir);
    free(dir);
}

/* The batch reader (core.h) hands out fr_rng_u32's words in order and leaves the stream
 * exactly where reading them one by one leaves it; fri_rng_skip moves it the same way.
 * From every position within a block, for counts within one batch and across several,
 * and across the carry from ctr[0] into ctr[1] and the 48-bit block index's wrap. */
static void same_stream(const fr_rng *a, const fr_rng *b, const char *what, size_t k) {
    cr_assert(!memcmp(a->ctr, b->ctr, sizeof a->ctr), "%s, count %zu: counters differ", what, k);
    cr_assert(!memcmp(a->key, b->key, sizeof a->key), "%s, count %zu: keys differ", what, k);
    cr_assert_eq(a->pos, b->pos, "%s, count %zu: position %u vs %u", what, k, a->pos, b->pos);
    for (unsigned i = a->pos; i < 4; i++) cr_assert_eq(a->buf[i], b->buf[i], "%s, count %zu: buffer", what, k);
}

static void batch_reader_follows_the_stream(void) {
    const uint32_t starts[][2] = {{0, 0}, {0xffffffffu - 21, 0}, {0xffffffffu - 2, 0xffffu}}; /* ctr[0], ctr[1] */
    const size_t counts[] = {0, 1, 2, 3, 4, 5, 63, 64, 65, 66, 127, 128, 129, 1000};
    /* what the reader expects to draw (begin_for: 4, 8 or 16 blocks at a time; 0: begin) */
    const uint64_t wants[] = {0, 1, 15, 17, 20, 33, 64, 200};
    for (size_t s = 0; s < sizeof starts / sizeof *starts; s++)
        for (unsigned pre = 0; pre < 5; pre++)
            for (size_t c = 0; c < sizeof counts / sizeof *counts; c++)
            for (size_t wi = 0; wi < sizeof wants / sizeof *wants; wi++) {
                fr_rng a, b, k;
                fr_rng_init(&a, 0x5eed5eed12345ull, 9, 77, FR_PURPOSE_SHUFFLE);
                a.ctr[0] = starts[s][0];
                a.ctr[1] = (a.ctr[1] & 0xffff0000u) | starts[s][1];
                for (unsigned i = 0; i < pre; i++) (void)fr_rng_u32(&a);
                b = a;
                k = a;
                fri_rng_batch bt;
                if (wants[wi]) fri_rng_batch_begin_for(&bt, &a, wants[wi]);
                else fri_rng_batch_begin(&bt, &a);
                for (size_t i = 0; i < counts[c]; i++)
                    cr_assert_eq(fri_rng_batch_u32(&bt), fr_rng_u32(&b), "start %zu pre %u want %llu word %zu", s, pre,
                                 (unsigned long long)wants[wi], i);
                fri_rng_batch_end(&bt);
                same_stream(&a, &b, "batch", counts[c]);
                fri_rng_skip(&k, counts[c]);
                same_stream(&k, &b, "skip", counts[c]);
                for (int i = 0; i < 9; i++) {
                    uint32_t w = fr_rng_u32(&b);
                    cr_assert_eq(fr_rng_u32(&a), w);
                    cr_assert_eq(fr_rng_u32(&k), w);
                }
            }
    /* fr_rng_below's draws, rejections included (n just above 2^31 rejects about half) */
    const uint32_t ns[] = {1, 2, 7, 1000, 80000, 0x80000001u, 0xfffffffbu};
    fr_rng a, b;
    fr_rng_init(&a, 3, 0, 0, FR_PURPOSE_TEST);
    b = a;
    fri_rng_batch bt;
    fri_rng_batch_begin(&bt, &a);
    for (int i = 0; i < 3000; i++) {
        uint32_t n = ns[i % 7];
        cr_assert_eq(fri_rng_batch_below(&bt, n), fr_rng_below(&b, n), "draw %d below %u", i, n);
    }
    fri_rng_batch_end(&bt);
    same_stream(&a, &b, "below", 3000);
}

Test(rng, batch_reader_and_skip_follow_the_stream) {
    batch_reader_follows_the_stream(); /* AVX2 where the CPU has it */
    (void)fri_rng_batch_allow_avx2(false);
    batch_reader_follows_the_stream(); /* SSE2 (or scalar) */
    (void)fri_rng_batch_allow_avx2(true);
}

/* fr_rng_shuffle_u32 is the textbook Fisher-Yates with fr_rng_below64 (a naive reference
 * here), and leaves the stream where those draws do. */
Test(rng, shuffle_is_fisher_yates_with_below64) {
    for (uint32_t n = 0; n < 300; n += 37) {
        uint32_t a[300], b[300];
        for (uint32_t i = 0; i < n; i++) a[i] = b[i] = i * 7 + 1;
        fr_rng r1, r2;
        fr_rng_init(&r1, 8, n, 0, FR_PURPOSE_SHUFFLE);
        r2 = r1;
        fr_rng_shuffle_u32(&r1, a, n);
        for (size_t i = n; i > 1; i--) {
            size_t j = (size_t)fr_rng_below64(&r2, i);
            uint32_t t = b[i - 1];
            b[i - 1] = b[j];
            b[j] = t;
        }
        cr_assert(!memcmp(a, b, n * sizeof *a), "n %u", n);
        cr_assert_eq(fr_rng_u32(&r1), fr_rng_u32(&r2));
    }
}

/* The streamed atomic writer: pieces of every size, past its 1 MiB buffer, give the file
 * of their concatenation and its CRC-32C (computed here in one call over the whole); a
 * failure handed to close leaves neither the file nor the temporary one. */
Test(io, streamed_atomic_write) {
    char *dir = tu_tmpdir();
    char path[512];
    snprintf(path, sizeof path, "%s/s.bin", dir);
    size_t total = 3 * ((size_t)1 << 20) + 12345;
    uint8_t *want = malloc(total);
    cr_assert_not_null(want);
    for (size_t i = 0; i < total; i++) want[i] = (uint8_t)(i * 7 + (i >> 9));
    fri_wfile w;
    cr_assert_eq(fri_wfile_open(&w, path, 0644), FR_OK);
    size_t at = 0, step = 1;
    while (at < total) {
        size_t n = step < total - at ? step : total - at;
        fri_wfile_put(&w, want + at, n);
        at += n;
        step = step * 3 + 1; /* 1, 4, 13, ... up to past the buffer */
    }
    cr_assert_eq(w.total, total);
    cr_assert_eq(w.crc, fr_crc32c(0, want, total));
    cr_assert_eq(fri_wfile_close(&w, FR_OK), FR_OK, "%s", fr_errmsg());
    uint8_t *got;
    size_t n;
    cr_assert_eq(fri_read_file(path, &got, &n), FR_OK);
    cr_assert_eq(n, total);
    cr_assert_eq(memcmp(got, want, total), 0);
    fri_free(got);
    /* floats as little-endian f32 */
    float f[3] = {-1.5f, 0.0f, 3.25f};
    cr_assert_eq(fri_wfile_open(&w, path, 0644), FR_OK);
    fri_wfile_f32s(&w, f, 3);
    fri_wfile_u32(&w, 0xA1B2C3D4u);
    cr_assert_eq(fri_wfile_close(&w, FR_OK), FR_OK);
    cr_assert_eq(fri_read_file(path, &got, &n), FR_OK);
    cr_assert_eq(n, 16);
    cr_assert_eq(fri_get_f32(got), -1.5f);
    cr_assert_eq(fri_get_f32(got + 8), 3.25f);
    cr_assert_eq(fri_get_u32(got + 12), 0xA1B2C3D4u);
    fri_free(got);
    /* a failure: the old file stays, no temporary file is left */
    snprintf(path, sizeof path, "%s/t.bin", dir);
    cr_assert_eq(fri_wfile_open(&w, path, 0644), FR_OK);
    fri_wfile_put(&w, "abc", 3);
    cr_assert_eq(fri_wfile_close(&w, FR_ERR_NOMEM), FR_ERR_NOMEM);
    cr_assert_eq(fri_read_file(path, &got, &n), FR_ERR_IO);
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s/t.bin.tmp.%ld", dir, (long)getpid());
    cr_assert_eq(fri_read_file(tmp, &got, &n), FR_ERR_IO);
    free(want);
    tu_rmtree(dir);
    free(dir);
}
