/* The parallel parse of large files (src/data/read.c) against the serial path: the same
 * rows in the same order, the same datasets, the same errors with the same line numbers
 * (also for a bad line next to a range cut) and the same skip_bad_lines statistics. The
 * parallel threshold is lowered so that small generated files take the parallel path. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/read.h"
#include "testutil.h"

static char *dir;

static void setup(void) { dir = tu_tmpdir(); }
static void teardown(void) {
    fri_read_set_parallel(0, 0);
    tu_rmtree(dir);
    free(dir);
}

TestSuite(read_parallel, .init = setup, .fini = teardown);

#define NLINES 3000

/* A ratings.csv-like text: header, NLINES data lines (some blank lines and CRLF endings
 * mixed in); line bad_at (1-based data line index, 0 = none) is replaced by a bad one.
 * Returns the malloc'd text. */
static char *make_csv(int bad_at, bool unterminated) {
    size_t cap = 64 * (size_t)NLINES + 256, n = 0;
    char *t = malloc(cap);
    cr_assert_not_null(t);
    n += (size_t)sprintf(t + n, "userId,movieId,rating,timestamp\n");
    uint32_t x = 12345;
    for (int k = 1; k <= NLINES; k++) {
        x = x * 1103515245u + 12345u;
        unsigned u = (x >> 8) % 500, i = (x >> 3) % 2000 + k % 7;
        if (bad_at == k)
            n += (size_t)sprintf(t + n, "%u,oops,3.5,100\n", u);
        else
            n += (size_t)sprintf(t + n, "%u,%u,%d.%d,%u%s", u, i, 1 + (int)(x % 5), (int)((x >> 4) % 2) * 5,
                                 1000000 + k, k % 97 == 0 ? "\r\n" : "\n");
        if (k % 211 == 0) n += (size_t)sprintf(t + n, "\n");
    }
    if (unterminated) t[--n] = '\0';
    return t;
}

typedef struct outcome {
    fr_err e;
    char msg[1024];
    fri_rows rows;
    fr_load_stats st;
} outcome;

static void read_with(outcome *out, const char *path, bool skip, uint64_t min_bytes, int ranges) {
    fri_read_set_parallel(min_bytes, ranges);
    fr_load_opts o;
    fr_load_opts_default(&o);
    o.skip_bad_lines = skip;
    memset(out, 0, sizeof *out);
    out->e = fri_read_rows(path, &o, &out->rows, NULL, &out->st);
    snprintf(out->msg, sizeof out->msg, "%s", out->e ? fr_errmsg() : "");
}

static void expect_same(const outcome *a, const outcome *b) {
    cr_assert_eq(a->e, b->e, "error %d vs %d (%s | %s)", a->e, b->e, a->msg, b->msg);
    cr_assert_str_eq(a->msg, b->msg);
    cr_assert_eq(a->st.lines, b->st.lines);
    cr_assert_eq(a->st.skipped, b->st.skipped);
    cr_assert_eq(a->st.first_bad_line, b->st.first_bad_line);
    cr_assert_eq(a->st.bytes, b->st.bytes);
    if (a->e) return;
    cr_assert_eq(a->rows.n, b->rows.n);
    cr_assert_eq(a->rows.has_time, b->rows.has_time);
    for (size_t k = 0; k < a->rows.n; k++) {
        cr_assert_eq(a->rows.user[k], b->rows.user[k], "row %zu", k);
        cr_assert_eq(a->rows.item[k], b->rows.item[k], "row %zu", k);
        cr_assert_eq(a->rows.rating[k], b->rows.rating[k], "row %zu", k);
        cr_assert_eq(a->rows.time[k], b->rows.time[k], "row %zu", k);
    }
}

/* Serial and parallel (ranges 2..7) reads of the text agree; returns the serial outcome's error. */
static fr_err compare(const char *text, bool skip) {
    char *path = tu_write(dir, "r.csv", text);
    outcome s, p;
    read_with(&s, path, skip, UINT64_MAX, 1);
    for (int nr = 2; nr <= 7; nr++) {
        uint64_t before = fri_read_parallel_loads();
        read_with(&p, path, skip, 1, nr);
        expect_same(&s, &p);
        if (!p.e && (!s.st.skipped || skip)) cr_assert_eq(fri_read_parallel_loads(), before + 1, "ranges %d", nr);
        fri_rows_free(&p.rows);
    }
    fri_rows_free(&s.rows);
    free(path);
    return s.e;
}

Test(read_parallel, same_rows_and_stats) {
    char *t = make_csv(0, false);
    cr_assert_eq(compare(t, false), FR_OK);
    free(t);
    t = make_csv(0, true);
    cr_assert_eq(compare(t, false), FR_OK);
    free(t);
}

Test(read_parallel, same_dataset) {
    char *t = make_csv(0, false);
    char *path = tu_write(dir, "d.csv", t);
    fr_dataset *a = NULL, *b = NULL;
    fri_read_set_parallel(UINT64_MAX, 1);
    cr_assert_eq(fr_dataset_load(&a, path, NULL, NULL), FR_OK);
    uint64_t before = fri_read_parallel_loads();
    fri_read_set_parallel(1, 3);
    cr_assert_eq(fr_dataset_load(&b, path, NULL, NULL), FR_OK);
    cr_assert_eq(fri_read_parallel_loads(), before + 1);
    cr_assert_eq(fr_dataset_n_users(a), fr_dataset_n_users(b));
    cr_assert_eq(fr_dataset_n_items(a), fr_dataset_n_items(b));
    cr_assert_eq(fr_dataset_n_interactions(a), fr_dataset_n_interactions(b));
    fr_dataset_info in;
    fr_dataset_info_compute(b, &in);
    cr_assert_gt(in.duplicates, 0); /* the generator repeats 247 (user, item) pairs */
    cr_assert_eq(fr_dataset_n_interactions(a) + in.duplicates, NLINES);
    for (uint32_t u = 0; u < fr_dataset_n_users(a); u++) {
        cr_assert_eq(fr_idmap_raw(fr_dataset_users(a), u), fr_idmap_raw(fr_dataset_users(b), u));
        const uint32_t *ia, *ib;
        const float *ra, *rb;
        const int64_t *ta, *tb;
        size_t na = fr_dataset_user(a, u, &ia, &ra, &ta), nb = fr_dataset_user(b, u, &ib, &rb, &tb);
        cr_assert_eq(na, nb);
        for (size_t k = 0; k < na; k++) {
            cr_assert_eq(ia[k], ib[k]);
            cr_assert_eq(ra[k], rb[k]);
            cr_assert_eq(ta[k], tb[k]);
        }
    }
    fr_dataset_free(a);
    fr_dataset_free(b);
    free(path);
    free(t);
}

/* A bad line at every data line around the cuts of 2..7 ranges (every line of the middle
 * third and the ends), with and without skip_bad_lines. */
Test(read_parallel, bad_lines_everywhere_near_cuts) {
    int at[] = {1, 2, NLINES - 1, NLINES};
    for (size_t k = 0; k < sizeof at / sizeof *at; k++) {
        char *t = make_csv(at[k], false);
        fr_err e = compare(t, false);
        cr_assert_eq(e, FR_ERR_PARSE);
        cr_assert_eq(compare(t, true), FR_OK);
        free(t);
    }
    /* lines at and next to each cut k/nr of 2..7 ranges (the cuts fall about there) */
    for (int nr = 2; nr <= 7; nr++) {
        for (int k = 1; k < nr; k++) {
            if (nr % 2 == 0 && k == nr / 2 && nr > 2) continue; /* the cut of 2 ranges again */
            int c = NLINES * k / nr;
            for (int d = -1; d <= 1; d++) {
                char *t = make_csv(c + d, false);
                cr_assert_eq(compare(t, false), FR_ERR_PARSE);
                cr_assert_eq(compare(t, true), FR_OK);
                free(t);
            }
        }
    }
}

Test(read_parallel, error_message_names_the_line) {
    char *t = make_csv(1500, false);
    char *path = tu_write(dir, "m.csv", t);
    outcome p;
    read_with(&p, path, false, 1, 2);
    cr_assert_eq(p.e, FR_ERR_PARSE);
    /* header + 1499 good lines + the blank lines after data lines 211, 422, ... 1266 */
    char want[64];
    snprintf(want, sizeof want, "m.csv:%d: item id \"oops\"", 1 + 1500 + 1500 / 211);
    cr_assert_not_null(strstr(p.msg, want), "%s", p.msg);
    fri_rows_free(&p.rows); /* rows may hold part of the file after an error */
    read_with(&p, path, true, 1, 2);
    cr_assert_eq(p.e, FR_OK);
    cr_assert_eq(p.st.skipped, 1);
    cr_assert_eq(p.st.first_bad_line, (uint64_t)(1 + 1500 + 1500 / 211));
    cr_assert_eq(p.st.lines, NLINES);
    cr_assert_eq(p.rows.n, NLINES - 1);
    fri_rows_free(&p.rows);
    free(path);
    free(t);
}

Test(read_parallel, truncated_last_line) {
    char *t = make_csv(NLINES, true);
    cr_assert_eq(compare(t, false), FR_ERR_PARSE);
    free(t);
}

/* Every allocation of a parallel load may fail: an error, nothing leaked (ASan checks). */
Test(read_parallel, allocation_failures_leak_nothing) {
    char *t = make_csv(0, false);
    char *path = tu_write(dir, "a.csv", t);
    fri_read_set_parallel(1, 3);
    for (long nth = 1;; nth++) {
        fr_dataset *d = (fr_dataset *)1;
        fr_test_fail_alloc(nth, true);
        fr_err e = fr_dataset_load(&d, path, NULL, NULL);
        fr_test_fail_alloc(0, false);
        if (e == FR_OK) {
            cr_assert_gt(nth, 5);
            fr_dataset_info in;
            fr_dataset_info_compute(d, &in);
            cr_assert_eq(fr_dataset_n_interactions(d) + in.duplicates, NLINES);
            fr_dataset_free(d);
            break;
        }
        cr_assert_eq(e, FR_ERR_NOMEM, "allocation %ld: %s", nth, fr_errmsg());
        cr_assert_null(d);
    }
    free(path);
    free(t);
}

/* The fast path's digit runs (8 bytes at a time, then one by one) against values written
 * with printf: every length of id (1..10 digits) and timestamp (1..18), leading zeros. */
Test(read_parallel, digit_runs_of_every_length) {
    char text[16384];
    size_t n = (size_t)sprintf(text, "user,item,rating,timestamp\n");
    uint64_t want_u[40], want_t[40];
    int rows = 0;
    uint64_t p10 = 1;
    for (int d = 1; d <= 18; d++, p10 *= 10) {
        uint64_t id = d <= 10 ? (p10 * 7 / 3 + (uint64_t)d) % 2147483648ull : 2147483647ull;
        uint64_t ts = p10 * 9 - 1 - (uint64_t)d; /* d digits, mostly 8s and 9s */
        if (d == 1) ts = 5;
        want_u[rows] = id;
        want_t[rows] = ts;
        n += (size_t)sprintf(text + n, "%llu,%d,4.5,%llu\n", (unsigned long long)id, d, (unsigned long long)ts);
        rows++;
    }
    want_u[rows] = 42;
    want_t[rows] = 7;
    n += (size_t)sprintf(text + n, "00000000042,0000000000019,3,000000000000000007\n"); /* leading zeros: slow path */
    rows++;
    (void)n;
    char *path = tu_write(dir, "digits.csv", text);
    outcome s;
    read_with(&s, path, false, UINT64_MAX, 1);
    cr_assert_eq(s.e, FR_OK, "%s", s.msg);
    cr_assert_eq(s.rows.n, (size_t)rows);
    for (int k = 0; k < rows; k++) {
        cr_assert_eq(s.rows.user[k], want_u[k], "row %d: %u", k, s.rows.user[k]);
        cr_assert_eq((uint64_t)s.rows.time[k], want_t[k], "row %d: %lld", k, (long long)s.rows.time[k]);
    }
    fri_rows_free(&s.rows);
    free(path);
}
