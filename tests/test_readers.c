#define _GNU_SOURCE
/* Ratings readers: every format with exact values, detection, CRLF, NCF identity ids,
 * train/test union, the implicit view, every bad-input case with its message,
 * skip_bad_lines, and an allocation-failure sweep. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data/dataset.h"
#include "data/read.h"
#include "testutil.h"

static char *dir;

static void setup(void) { dir = tu_tmpdir(); }
static void teardown(void) {
    tu_rmtree(dir);
    free(dir);
}

TestSuite(readers, .init = setup, .fini = teardown);

/* Frees what fr_negatives_load returns without depending on negatives.c. */
static void negs_free(fr_negatives *n) {
    if (!n) return;
    fri_free(n->ptr);
    fri_free(n->items);
    fri_free(n);
}

static fr_err load(fr_dataset **d, const char *name, const char *text, const fr_load_opts *o, fr_load_stats *st) {
    return tu_load_text(d, dir, name, text, o, st);
}

/* Checks rows (user, item, rating, time) exactly and the totals. */
static void check_rows(const fr_dataset *d, int n, const double rows[][4], uint32_t nu, uint32_t ni) {
    cr_assert_eq(fr_dataset_n_interactions(d), (uint64_t)n);
    cr_assert_eq(fr_dataset_n_users(d), nu);
    cr_assert_eq(fr_dataset_n_items(d), ni);
    for (int k = 0; k < n; k++) {
        float r;
        int64_t t;
        cr_assert(tu_find_row(d, (int64_t)rows[k][0], (int64_t)rows[k][1], &r, &t), "row %d missing", k);
        cr_assert_float_eq(r, rows[k][2], 1e-6, "row %d rating %g", k, (double)r);
        cr_assert_eq(t, (int64_t)rows[k][3], "row %d time %lld", k, (long long)t);
    }
}

static const double small_rows[][4] = {
    {196, 242, 3, 881250949}, {186, 302, 3, 891717742}, {22, 377, 1, 878887116}, {196, 377, 5, 881251000}};

Test(readers, ml100k_exact) {
    fr_dataset *d = NULL;
    fr_load_stats st;
    cr_assert_eq(load(&d, "u.data", "196\t242\t3\t881250949\n186\t302\t3\t891717742\n22\t377\t1\t878887116\n"
                                     "196\t377\t5\t881251000\n", NULL, &st), FR_OK, "%s", fr_errmsg());
    check_rows(d, 4, small_rows, 3, 3);
    cr_assert_eq(st.format, FR_FORMAT_ML100K);
    cr_assert_eq(st.lines, 4);
    cr_assert_eq(st.skipped, 0);
    cr_assert(fr_dataset_has_time(d));
    /* Dense ids in raw order: users 22 186 196. */
    cr_assert_eq(fr_idmap_raw(fr_dataset_users(d), 0), 22);
    cr_assert_eq(fr_idmap_raw(fr_dataset_users(d), 2), 196);
    fr_dataset_free(d);
}

Test(readers, ml1m_exact) {
    fr_dataset *d = NULL;
    fr_load_stats st;
    cr_assert_eq(load(&d, "ratings.dat", "196::242::3::881250949\n186::302::3::891717742\n22::377::1::878887116\n"
                                          "196::377::5::881251000\n", NULL, &st), FR_OK, "%s", fr_errmsg());
    check_rows(d, 4, small_rows, 3, 3);
    cr_assert_eq(st.format, FR_FORMAT_ML1M);
    fr_dataset_free(d);
}

Test(readers, csv_header_halves_crlf) {
    fr_dataset *d = NULL;
    fr_load_stats st;
    cr_assert_eq(load(&d, "ratings.csv", "userId,movieId,rating,timestamp\r\n1,296,5.0,1147880044\r\n"
                                          "1,306,3.5,1147868817\r\n2,296,0.5,1147868828\r\n", NULL, &st), FR_OK,
                 "%s", fr_errmsg());
    static const double rows[][4] = {{1, 296, 5, 1147880044}, {1, 306, 3.5, 1147868817}, {2, 296, 0.5, 1147868828}};
    check_rows(d, 3, rows, 2, 2);
    cr_assert_eq(st.format, FR_FORMAT_CSV);
    cr_assert_eq(st.lines, 3);
    fr_dataset_free(d);
}

Test(readers, crlf_everywhere_and_unterminated_last_line) {
    fr_dataset *d = NULL;
    cr_assert_eq(load(&d, "u.data", "196\t242\t3\t881250949\r\n186\t302\t3\t891717742\r\n22\t377\t1\t878887116\r\n"
                                     "196\t377\t5\t881251000", NULL, NULL), FR_OK, "%s", fr_errmsg());
    check_rows(d, 4, small_rows, 3, 3);
    fr_dataset_free(d);
    cr_assert_eq(load(&d, "r.dat", "196::242::3::881250949\r\n186::302::3::891717742\r\n22::377::1::878887116\r\n"
                                    "196::377::5::881251000\r\n", NULL, NULL), FR_OK, "%s", fr_errmsg());
    check_rows(d, 4, small_rows, 3, 3);
    fr_dataset_free(d);
}

Test(readers, decimals_and_exponent) {
    fr_dataset *d = NULL;
    cr_assert_eq(load(&d, "r.csv", "1,2,4.25,10\n1,3,2e0,11\n1,4,+1.,12\n1,5,.5,13\n", NULL, NULL), FR_OK, "%s",
                 fr_errmsg());
    static const double rows[][4] = {{1, 2, 4.25, 10}, {1, 3, 2, 11}, {1, 4, 1, 12}, {1, 5, 0.5, 13}};
    check_rows(d, 4, rows, 1, 4);
    fr_dataset_free(d);
}

Test(readers, detection) {
    struct { const char *name, *text; fr_format want; } cases[] = {
        {"a.txt", "1\t2\t3\t4\n", FR_FORMAT_ML100K},
        {"b.txt", "1::2::3::4\n", FR_FORMAT_ML1M},
        {"c.txt", "1,2,3,4\n", FR_FORMAT_CSV},
        {"d.txt", "userId,movieId,rating,timestamp\n1,2,3,4\n", FR_FORMAT_CSV},
        {"train.rating", "0\t1\t3\t4\n", FR_FORMAT_NCF},
        {"e.txt", "1;2;3\n", FR_FORMAT_DELIMITED},
        {"f.txt", "1|2\n", FR_FORMAT_DELIMITED},
        {"g.txt", "1,2\n", FR_FORMAT_DELIMITED},
        {"h.txt", "\n\n1\t2\t3\t4\n", FR_FORMAT_ML100K},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        fr_dataset *d = NULL;
        fr_load_stats st;
        cr_assert_eq(load(&d, cases[k].name, cases[k].text, NULL, &st), FR_OK, "%s: %s", cases[k].name, fr_errmsg());
        cr_assert_eq(st.format, cases[k].want, "%s: format %d", cases[k].name, st.format);
        cr_assert_eq(fr_dataset_n_interactions(d), 1);
        fr_dataset_free(d);
    }
    fr_dataset *d = NULL;
    cr_assert_eq(load(&d, "x.txt", "1 2 3 4\n", NULL, NULL), FR_ERR_PARSE);
    cr_assert(strstr(fr_errmsg(), "x.txt:1: cannot detect the format"), "%s", fr_errmsg());
    cr_assert_null(d);
}

/* An NCF test.negative file given as ratings is named for what it is (it was called a
 * header without user and item columns). */
Test(readers, negative_file_is_not_ratings) {
    static const char *const names[] = {"test.negative", "x.txt", "y.rating"};
    static const char *const texts[] = {"(0,25)\t1064\t174\t2791\n(1,133)\t1072\t3154\n", "(3,4)\n", "\n(0,1) 7 8\n"};
    for (int k = 0; k < 3; k++) {
        fr_dataset *d = NULL;
        cr_assert_eq(load(&d, names[k], texts[k], NULL, NULL), FR_ERR_PARSE, "%s", names[k]);
        char want[128];
        snprintf(want, sizeof want, "%s:%d: an NCF .negative file (evaluation negatives), not ratings", names[k],
                 k == 2 ? 2 : 1);
        cr_assert(strstr(fr_errmsg(), want), "%s", fr_errmsg());
        cr_assert_null(d);
    }
    /* Also when a ratings format is named; not when a delimited file declares a header. */
    fr_load_opts o;
    fr_load_opts_default(&o);
    o.format = FR_FORMAT_NCF;
    fr_dataset *d = NULL;
    cr_assert_eq(load(&d, "t.negative", "(0,25)\t1064\n", &o, NULL), FR_ERR_PARSE);
    cr_assert(strstr(fr_errmsg(), "an NCF .negative file"), "%s", fr_errmsg());
    o.format = FR_FORMAT_DELIMITED;
    o.has_header = true;
    o.delimiter = "\t";
    cr_assert_eq(load(&d, "h.txt", "(0,1)\tb\n3\t4\n", &o, NULL), FR_OK, "%s", fr_errmsg());
    fr_dataset_free(d);
    /* A value in parentheses that is not the pair shape is not a .negative file: here, a
     * string user id. */
    cr_assert_eq(load(&d, "p.txt", "(a,1)\t2\t3\t4\n", NULL, NULL), FR_OK, "%s", fr_errmsg());
    cr_assert_str_eq(fr_idmap_raw_str(fr_dataset_users(d), 0), "(a,1)");
    fr_dataset_free(d);
}

Test(readers, delimited_auto_header_and_positions) {
    fr_dataset *d = NULL;
    cr_assert_eq(load(&d, "h.txt", "ts;score;item;user\n100;4.5;7;3\n200;2;8;3\n", NULL, NULL), FR_OK, "%s",
                 fr_errmsg());
    static const double rows[][4] = {{3, 7, 4.5, 100}, {3, 8, 2, 200}};
    check_rows(d, 2, rows, 1, 2);
    fr_dataset_free(d);
    /* Two columns: implicit, no time. */
    cr_assert_eq(load(&d, "p.txt", "5|6\n5|7\n9|6\n", NULL, NULL), FR_OK, "%s", fr_errmsg());
    static const double rows2[][4] = {{5, 6, 1, 0}, {5, 7, 1, 0}, {9, 6, 1, 0}};
    check_rows(d, 3, rows2, 2, 2);
    cr_assert_not(fr_dataset_has_time(d));
    fr_dataset_free(d);
}

Test(readers, delimited_named_and_numbered_columns) {
    fr_load_opts o;
    fr_load_opts_default(&o);
    o.format = FR_FORMAT_DELIMITED;
    o.has_header = true;
    o.col_user = "who";
    o.col_item = "what";
    o.col_rating = "stars";
    fr_dataset *d = NULL;
    cr_assert_eq(load(&d, "n.tsv", "extra\twhat\twho\tstars\nx\t10\t1\t2.5\ny\t11\t1\t4\n", &o, NULL), FR_OK, "%s",
                 fr_errmsg());
    static const double rows[][4] = {{1, 10, 2.5, 0}, {1, 11, 4, 0}};
    check_rows(d, 2, rows, 1, 2);
    cr_assert_not(fr_dataset_has_time(d));
    fr_dataset_free(d);

    fr_load_opts_default(&o);
    o.format = FR_FORMAT_DELIMITED;
    o.delimiter = "::";
    o.col_user = "3";
    o.col_item = "1";
    o.col_time = "2";
    cr_assert_eq(load(&d, "m.txt", "10::555::1\n11::556::1\n11::557::2\n", &o, NULL), FR_OK, "%s", fr_errmsg());
    static const double rows2[][4] = {{1, 10, 1, 555}, {1, 11, 1, 556}, {2, 11, 1, 557}};
    check_rows(d, 3, rows2, 2, 2);
    fr_dataset_free(d);

    /* A named column that the header lacks. */
    fr_load_opts_default(&o);
    o.format = FR_FORMAT_DELIMITED;
    o.has_header = true;
    o.col_user = "uid";
    cr_assert_eq(load(&d, "q.csv", "user,item\n1,2\n", &o, NULL), FR_ERR_PARSE);
    cr_assert(strstr(fr_errmsg(), "no column named \"uid\""), "%s", fr_errmsg());
}

Test(readers, opts_check) {
    fr_load_opts o;
    fr_load_opts_default(&o);
    cr_assert_eq(fr_load_opts_check(&o), FR_OK);
    cr_assert(isnan(o.implicit_threshold));
    cr_assert_eq(o.rating_max, 10);
    o.rating_min = 6;
    o.rating_max = 5;
    cr_assert_eq(fr_load_opts_check(&o), FR_ERR_INVALID);
    fr_load_opts_default(&o);
    o.delimiter = "ab";
    cr_assert_eq(fr_load_opts_check(&o), FR_ERR_INVALID);
    fr_load_opts_default(&o);
    o.format = FR_FORMAT_DELIMITED; /* with AUTO a name implies a header (test_read_shapes.c) */
    o.col_user = "name";
    cr_assert_eq(fr_load_opts_check(&o), FR_ERR_INVALID);
    cr_assert(strstr(fr_errmsg(), "has_header"), "%s", fr_errmsg());
    fr_load_opts_default(&o);
    o.col_item = "0";
    cr_assert_eq(fr_load_opts_check(&o), FR_ERR_INVALID);
    fr_load_opts_default(&o);
    o.format = (fr_format)42;
    cr_assert_eq(fr_load_opts_check(&o), FR_ERR_INVALID);
}

Test(readers, ncf_identity_ids) {
    fr_dataset *d = NULL;
    /* Raw ids 0..3 for users, item 5 max: 6 items (ids 1..4 unused but present). */
    cr_assert_eq(load(&d, "train.rating", "0\t5\t1\t100\n3\t0\t1\t101\n2\t2\t4\t102\n", NULL, NULL), FR_OK, "%s",
                 fr_errmsg());
    cr_assert_eq(fr_dataset_n_users(d), 4);
    cr_assert_eq(fr_dataset_n_items(d), 6);
    for (uint32_t k = 0; k < 6; k++) cr_assert_eq(fr_idmap_find(fr_dataset_items(d), k), k);
    cr_assert_eq(fr_idmap_raw(fr_dataset_users(d), 3), 3);
    const uint32_t *it;
    cr_assert_eq(fr_dataset_user(d, 3, &it, NULL, NULL), 1);
    cr_assert_eq(it[0], 0);
    cr_assert_eq(fr_dataset_user(d, 0, &it, NULL, NULL), 1);
    cr_assert_eq(it[0], 5);
    cr_assert_eq(fr_dataset_user(d, 1, NULL, NULL, NULL), 0);
    fr_dataset_free(d);
    /* Forced NCF on any name; a huge id is refused rather than allocating 2^31 slots. */
    fr_load_opts o;
    fr_load_opts_default(&o);
    o.format = FR_FORMAT_NCF;
    cr_assert_eq(load(&d, "x.tsv", "0\t1\t1\n1\t0\t1\n", &o, NULL), FR_OK, "%s", fr_errmsg());
    cr_assert_eq(fr_dataset_n_items(d), 2);
    fr_dataset_free(d);
    cr_assert_eq(load(&d, "y.tsv", "0\t2000000000\t1\n", &o, NULL), FR_ERR_RANGE);
    cr_assert(strstr(fr_errmsg(), "2000000000"), "%s", fr_errmsg());
}

Test(readers, load_pair_union) {
    char *a = tu_write(dir, "u1.base", "1\t10\t4\t100\n2\t10\t3\t101\n2\t20\t5\t102\n");
    char *b = tu_write(dir, "u1.test", "1\t30\t2\t103\n3\t20\t1\t104\n");
    fr_dataset *tr = NULL, *te = NULL;
    cr_assert_eq(fr_dataset_load_pair(&tr, &te, a, b, NULL), FR_OK, "%s", fr_errmsg());
    cr_assert_eq(fr_dataset_users(tr), fr_dataset_users(te));
    cr_assert_eq(fr_dataset_items(tr), fr_dataset_items(te));
    cr_assert_eq(fr_dataset_n_users(tr), 3); /* user 3 only in test */
    cr_assert_eq(fr_dataset_n_items(te), 3); /* item 30 only in test */
    cr_assert_eq(fr_idmap_find(fr_dataset_items(tr), 30), 2);
    cr_assert_eq(fr_dataset_n_interactions(tr), 3);
    cr_assert_eq(fr_dataset_n_interactions(te), 2);
    float r;
    int64_t t;
    cr_assert(tu_find_row(te, 1, 30, &r, &t));
    cr_assert_eq(r, 2);
    cr_assert_eq(t, 103);
    cr_assert(tu_find_row(tr, 2, 20, &r, NULL));
    cr_assert_eq(r, 5);
    cr_assert_not(tu_find_row(tr, 1, 30, NULL, NULL));
    fr_dataset_free(tr);
    fr_dataset_free(te);
    free(a);
    free(b);
    /* NCF pair: identity maps sized by the max over both files. */
    a = tu_write(dir, "train.rating", "0\t1\t5\t1\n1\t0\t5\t2\n");
    b = tu_write(dir, "test.rating", "0\t4\t5\t3\n2\t1\t5\t4\n");
    cr_assert_eq(fr_dataset_load_pair(&tr, &te, a, b, NULL), FR_OK, "%s", fr_errmsg());
    cr_assert_eq(fr_dataset_n_items(tr), 5);
    cr_assert_eq(fr_dataset_n_users(tr), 3);
    const uint32_t *it;
    cr_assert_eq(fr_dataset_user(te, 0, &it, NULL, NULL), 1);
    cr_assert_eq(it[0], 4);
    fr_dataset_free(tr);
    fr_dataset_free(te);
    /* An error in the test file names it. */
    char *c = tu_write(dir, "bad.test", "1\t2\n");
    cr_assert_eq(fr_dataset_load_pair(&tr, &te, a, c, NULL), FR_ERR_PARSE);
    cr_assert(strstr(fr_errmsg(), "bad.test:1:"), "%s", fr_errmsg());
    cr_assert_null(tr);
    cr_assert_null(te);
    free(a);
    free(b);
    free(c);
}

Test(readers, load_pair_auto_delimited_header) {
    char *a = tu_write(dir, "tr.txt", "item;user;score\n7;1;4.5\n8;2;3\n");
    char *b = tu_write(dir, "te.txt", "item;user;score\n9;1;2.5\n");
    fr_dataset *tr = NULL, *te = NULL;
    cr_assert_eq(fr_dataset_load_pair(&tr, &te, a, b, NULL), FR_OK, "%s", fr_errmsg());
    float r;
    cr_assert(tu_find_row(te, 1, 9, &r, NULL));
    cr_assert_eq(r, 2.5f);
    cr_assert(tu_find_row(tr, 2, 8, &r, NULL));
    cr_assert_eq(r, 3.0f);
    cr_assert_eq(fr_dataset_n_items(tr), 3);
    fr_dataset_free(tr);
    fr_dataset_free(te);
    free(a);
    free(b);
}

Test(readers, implicit_threshold) {
    fr_load_opts o;
    fr_load_opts_default(&o);
    o.implicit = true;
    o.implicit_threshold = 4;
    fr_dataset *d = NULL;
    cr_assert_eq(load(&d, "u.data", "1\t1\t5\t1\n1\t2\t3.5\t2\n2\t1\t4\t3\n2\t3\t1\t4\n", &o, NULL), FR_OK);
    static const double rows[][4] = {{1, 1, 1, 1}, {2, 1, 1, 3}};
    check_rows(d, 2, rows, 2, 1);
    fr_dataset_free(d);
    o.implicit_threshold = NAN; /* keep all, ratings 1 */
    cr_assert_eq(load(&d, "u.data", "1\t1\t5\t1\n1\t2\t3.5\t2\n", &o, NULL), FR_OK);
    static const double rows2[][4] = {{1, 1, 1, 1}, {1, 2, 1, 2}};
    check_rows(d, 2, rows2, 1, 2);
    fr_dataset_free(d);
    o.implicit_threshold = 6; /* nothing left */
    cr_assert_eq(load(&d, "u.data", "1\t1\t5\t1\n", &o, NULL), FR_ERR_EMPTY);
}

/* ------------------------------------------------------------ bad input */

static void expect_bad(const char *name, const char *text, fr_err code, const char *sub1, const char *sub2) {
    fr_dataset *d = (fr_dataset *)1;
    fr_err e = load(&d, name, text, NULL, NULL);
    cr_assert_eq(e, code, "%s: got %d (%s), want %d", name, e, fr_errmsg(), code);
    cr_assert_null(d);
    cr_assert(strstr(fr_errmsg(), sub1), "missing \"%s\" in \"%s\"", sub1, fr_errmsg());
    if (sub2) cr_assert(strstr(fr_errmsg(), sub2), "missing \"%s\" in \"%s\"", sub2, fr_errmsg());
}

#define OK2 "1\t1\t5\t1\n2\t2\t4\t2\n"

Test(readers, bad_field_count) {
    expect_bad("u.data", OK2 "3\t3\t3\n", FR_ERR_PARSE, "u.data:3:", "expected 4 fields separated by tab, got 3");
    expect_bad("ratings.dat", "1::1::5::1\n1::2::5\n", FR_ERR_PARSE, "ratings.dat:2:", "expected 4 fields");
    expect_bad("ratings.csv", "userId,movieId,rating,timestamp\n1,2,3,4\n1,2,3,4,5\n", FR_ERR_PARSE, "ratings.csv:3:",
               "got 5");
}

Test(readers, bad_numbers) {
    expect_bad("u.data", OK2 "x7\t3\t3\t3\n", FR_ERR_PARSE, "u.data:3: user id \"x7\" is not a number", NULL);
    expect_bad("u.data", OK2 "7\t3z\t3\t3\n", FR_ERR_PARSE, "u.data:3: item id \"3z\"", "expected an integer");
    expect_bad("u.data", OK2 "7\t3\tfour\t3\n", FR_ERR_PARSE, "u.data:3: rating \"four\" is not a number", NULL);
    expect_bad("u.data", OK2 "7\t3\tnan\t3\n", FR_ERR_PARSE, "u.data:3: rating \"nan\"", NULL);
    expect_bad("u.data", OK2 "7\t3\t4\t12:00\n", FR_ERR_PARSE, "u.data:3: timestamp \"12:00\"", NULL);
    expect_bad("u.data", OK2 "7\t\t4\t1\n", FR_ERR_PARSE, "u.data:3: item id \"\"", NULL);
}

Test(readers, bad_rating_range) {
    expect_bad("u.data", OK2 "7\t3\t11\t3\n", FR_ERR_RANGE, "u.data:3: rating 11 is outside", "[0, 10]");
    expect_bad("u.data", OK2 "7\t3\t-0.5\t3\n", FR_ERR_RANGE, "u.data:3: rating -0.5", NULL);
    fr_load_opts o;
    fr_load_opts_default(&o);
    o.rating_min = 1;
    o.rating_max = 5;
    fr_dataset *d = NULL;
    cr_assert_eq(load(&d, "u.data", "1\t1\t5.5\t1\n", &o, NULL), FR_ERR_RANGE);
    cr_assert(strstr(fr_errmsg(), "[1, 5]"), "%s", fr_errmsg());
}

Test(readers, bad_ids_out_of_range) {
    expect_bad("u.data", OK2 "2147483648\t3\t3\t3\n", FR_ERR_PARSE, "u.data:3: user id \"2147483648\" is out of range",
               NULL);
    expect_bad("u.data", OK2 "1\t99999999999999999999\t3\t3\n", FR_ERR_PARSE, "u.data:3: item id", "out of range");
    expect_bad("u.data", OK2 "-1\t3\t3\t3\n", FR_ERR_PARSE, "u.data:3: user id \"-1\" is out of range", NULL);
    fr_dataset *d = NULL;
    cr_assert_eq(load(&d, "u.data", "2147483647\t0\t1\t1\n", NULL, NULL), FR_OK, "%s", fr_errmsg());
    cr_assert_eq(fr_idmap_raw(fr_dataset_users(d), 0), 2147483647);
    fr_dataset_free(d);
}

Test(readers, empty_files) {
    expect_bad("u.data", "", FR_ERR_EMPTY, "u.data: empty file", NULL);
    expect_bad("u.data", "\n\r\n  \n", FR_ERR_EMPTY, "u.data: empty file", NULL);
    expect_bad("ratings.csv", "userId,movieId,rating,timestamp\n", FR_ERR_EMPTY, "ratings.csv: no ratings", NULL);
}

Test(readers, truncated_last_line) {
    expect_bad("u.data", OK2 "3\t3\t", FR_ERR_PARSE, "u.data:3: truncated last line", "got 3");
    expect_bad("ratings.dat", "1::1::5::1\n2::2:", FR_ERR_PARSE, "ratings.dat:2: truncated last line", NULL);
}

Test(readers, binary_data) {
    static const char nul[] = "1\t1\t5\t1\n2\t2\t4\t2\n\x7f" "ELF\x02\x01\x01\0\0\0\n";
    char *p = NULL;
    if (asprintf(&p, "%s/u.data", dir) < 0) abort();
    FILE *f = fopen(p, "wb");
    fwrite(nul, 1, sizeof nul - 1, f);
    fclose(f);
    fr_dataset *d = NULL;
    cr_assert_eq(fr_dataset_load(&d, p, NULL, NULL), FR_ERR_PARSE);
    cr_assert(strstr(fr_errmsg(), "u.data:3: binary data"), "%s", fr_errmsg());
    free(p);
    expect_bad("u.data", OK2 "1\t2\x01\t3\t4\n", FR_ERR_PARSE, "u.data:3: binary data (byte 0x01", NULL);
    expect_bad("g.bin", "\x01\x02\x03\x04\n", FR_ERR_PARSE, "g.bin:1: binary data", NULL);
}

Test(readers, directory_and_missing) {
    char *sub = NULL;
    if (asprintf(&sub, "%s/sub.csv", dir) < 0) abort();
    mkdir(sub, 0700);
    fr_dataset *d = NULL;
    cr_assert_eq(fr_dataset_load(&d, sub, NULL, NULL), FR_ERR_IO);
    cr_assert(strstr(fr_errmsg(), "sub.csv: is a directory"), "%s", fr_errmsg());
    cr_assert_null(d);
    free(sub);
    if (asprintf(&sub, "%s/sub.csv.none", dir) < 0) abort();
    cr_assert_eq(fr_dataset_load(&d, sub, NULL, NULL), FR_ERR_IO);
    cr_assert(strstr(fr_errmsg(), "sub.csv.none: cannot open"), "%s", fr_errmsg());
    free(sub);
}

Test(readers, skip_bad_lines_counts) {
    fr_load_opts o;
    fr_load_opts_default(&o);
    o.skip_bad_lines = true;
    fr_dataset *d = NULL;
    fr_load_stats st;
    cr_assert_eq(load(&d, "u.data", "1\t1\t5\t1\n2\t2\t4\n2\tx\t4\t1\n3\t3\t11\t1\n\x01\x02\n4\t4\t4\t4\n"
                                     "5\t5\t5\t5\n9\t9", &o, &st), FR_OK, "%s", fr_errmsg());
    cr_assert_eq(st.lines, 8);
    cr_assert_eq(st.skipped, 5);
    cr_assert_eq(st.first_bad_line, 2);
    cr_assert_gt(st.bytes, 30);
    static const double rows[][4] = {{1, 1, 5, 1}, {4, 4, 4, 4}, {5, 5, 5, 5}};
    check_rows(d, 3, rows, 3, 3);
    cr_assert_str_eq(fr_errmsg(), "");
    fr_dataset_free(d);
    /* Everything bad: nothing to build. */
    cr_assert_eq(load(&d, "u.data", "a\tb\tc\td\n", &o, &st), FR_ERR_EMPTY);
    cr_assert_eq(st.skipped, 1);
}

/* A file that repeats (user, item) pairs: one interaction each, the latest (equal times:
 * the last line), counted in the load statistics and the dataset's info; a density of
 * 150% was reported before. */
Test(readers, duplicate_pairs_counted_and_dropped) {
    fr_dataset *d = NULL;
    fr_load_stats st;
    cr_assert_eq(load(&d, "u.data", "1\t1\t5\t10\n1\t1\t3\t20\n1\t2\t4\t5\n2\t1\t2\t7\n1\t2\t1\t5\n1\t1\t4\t15\n",
                      NULL, &st), FR_OK, "%s", fr_errmsg());
    cr_assert_eq(st.lines, 6);
    cr_assert_eq(st.duplicates, 3);
    static const double rows[][4] = {{1, 1, 3, 20}, {1, 2, 1, 5}, {2, 1, 2, 7}};
    check_rows(d, 3, rows, 2, 2);
    fr_dataset_info in;
    fr_dataset_info_compute(d, &in);
    cr_assert_eq(in.duplicates, 3);
    cr_assert_float_eq(in.density, 0.75, 1e-12);
    fr_dataset_free(d);
    /* Every reader path: CSV with a header, NCF dense ids, implicit delimited without times. */
    cr_assert_eq(load(&d, "r.csv", "userId,movieId,rating,timestamp\n3,4,2.5,9\n3,4,4.5,9\n", NULL, &st), FR_OK);
    cr_assert_eq(st.duplicates, 1);
    static const double csv_rows[][4] = {{3, 4, 4.5, 9}};
    check_rows(d, 1, csv_rows, 1, 1);
    fr_dataset_free(d);
    cr_assert_eq(load(&d, "x.rating", "0\t0\t1\t3\n0\t1\t1\t3\n0\t0\t5\t3\n1\t1\t1\t1\n", NULL, &st), FR_OK);
    cr_assert_eq(st.duplicates, 1);
    cr_assert_eq(fr_idmap_raw(fr_dataset_items(d), 1), 1); /* dense ids as before */
    static const double ncf_rows[][4] = {{0, 0, 5, 3}, {0, 1, 1, 3}, {1, 1, 1, 1}};
    check_rows(d, 3, ncf_rows, 2, 2);
    fr_dataset_free(d);
    cr_assert_eq(load(&d, "pairs.txt", "7;8\n7;9\n7;8\n", NULL, &st), FR_OK, "%s", fr_errmsg());
    cr_assert_eq(st.duplicates, 1);
    cr_assert_eq(fr_dataset_n_interactions(d), 2);
    fr_dataset_free(d);
    /* No repeats: nothing counted. */
    cr_assert_eq(load(&d, "u.data", "1\t1\t5\t10\n1\t2\t3\t10\n", NULL, &st), FR_OK);
    cr_assert_eq(st.duplicates, 0);
    fr_dataset_free(d);
    /* A pair: each file on its own; a pair in both files stays in both. */
    fr_dataset *tr = NULL, *te = NULL;
    char *a = tu_write(dir, "a.tsv", "1\t1\t5\t1\n1\t1\t4\t2\n1\t2\t3\t1\n");
    char *b = tu_write(dir, "b.tsv", "1\t2\t2\t3\n1\t2\t1\t3\n");
    cr_assert_eq(fr_dataset_load_pair(&tr, &te, a, b, NULL), FR_OK, "%s", fr_errmsg());
    cr_assert_eq(fr_dataset_n_interactions(tr), 2);
    cr_assert_eq(fr_dataset_n_interactions(te), 1);
    fr_dataset_info_compute(te, &in);
    cr_assert_eq(in.duplicates, 1);
    static const double te_rows[][4] = {{1, 2, 1, 3}};
    check_rows(te, 1, te_rows, 1, 2);
    fr_dataset_free(tr);
    fr_dataset_free(te);
    free(a);
    free(b);
}

Test(readers, long_file_crosses_chunks) {
    /* ~3 MiB: lines straddle the 1 MiB read boundaries; every value is checked. */
    char *p = NULL;
    if (asprintf(&p, "%s/big.dat", dir) < 0) abort();
    FILE *f = fopen(p, "wb");
    const int n = 120000;
    for (int k = 0; k < n; k++) fprintf(f, "%d::%d::%d.5::%d\r\n", k % 1000, k / 1000 * 7 + 3, k % 5, 1000000 + k);
    fclose(f);
    fr_dataset *d = NULL;
    fr_load_stats st;
    cr_assert_eq(fr_dataset_load(&d, p, NULL, &st), FR_OK, "%s", fr_errmsg());
    cr_assert_eq(fr_dataset_n_interactions(d), (uint64_t)n);
    cr_assert_eq(fr_dataset_n_users(d), 1000);
    cr_assert_eq(fr_dataset_n_items(d), 120);
    cr_assert_gt(st.bytes, 2 * 1048576 + 1000);
    for (int k = 0; k < n; k += 997) {
        float r;
        int64_t t;
        cr_assert(tu_find_row(d, k % 1000, k / 1000 * 7 + 3, &r, &t));
        cr_assert_eq(r, (float)(k % 5) + 0.5f);
        cr_assert_eq(t, 1000000 + k);
    }
    fr_dataset_free(d);
    free(p);
}

/* A UTF-8 byte-order mark (EF BB BF) at the start of a file is not data: every reader
 * skips it (a tab file took it for part of the first user id; a header-less CSV dropped
 * its first row as a header). Only at the start: one elsewhere is still an error. */
Test(readers, utf8_bom_stripped) {
    fr_dataset *d = NULL;
    fr_load_stats st;
    cr_assert_eq(load(&d, "u.data", "\xEF\xBB\xBF" "196\t242\t3\t881250949\n186\t302\t3\t891717742\n"
                      "22\t377\t1\t878887116\n196\t377\t5\t881251000\n", NULL, &st), FR_OK, "%s", fr_errmsg());
    cr_assert_eq(st.format, FR_FORMAT_ML100K);
    cr_assert_eq(st.bytes, 3 + 79); /* the mark is read, not parsed */
    check_rows(d, 4, small_rows, 3, 3);
    fr_dataset_free(d);
    cr_assert_eq(load(&d, "r.csv", "\xEF\xBB\xBF" "196,242,3,881250949\n186,302,3,891717742\n22,377,1,878887116\n"
                      "196,377,5,881251000\n", NULL, &st), FR_OK, "%s", fr_errmsg());
    check_rows(d, 4, small_rows, 3, 3);
    fr_dataset_free(d);
    cr_assert_eq(load(&d, "h.csv", "\xEF\xBB\xBF" "userId,movieId,rating,timestamp\n196,242,3,881250949\n", NULL, &st),
                 FR_OK, "%s", fr_errmsg());
    cr_assert_eq(fr_dataset_n_interactions(d), 1);
    fr_dataset_free(d);
    cr_assert_eq(load(&d, "x.rating", "\xEF\xBB\xBF" "0\t1\t5\t9\n1\t0\t4\t9\n", NULL, &st), FR_OK, "%s", fr_errmsg());
    cr_assert_eq(fr_dataset_n_interactions(d), 2);
    fr_dataset_free(d);
    /* Delimited with a named header column: the first name is "user", not BOM + "user". */
    fr_load_opts o;
    fr_load_opts_default(&o);
    o.format = FR_FORMAT_DELIMITED;
    o.has_header = true;
    o.col_user = "user";
    o.col_item = "item";
    cr_assert_eq(load(&d, "n.txt", "\xEF\xBB\xBF" "user;item\n4;5\n", &o, &st), FR_OK, "%s", fr_errmsg());
    cr_assert_eq(fr_dataset_n_interactions(d), 1);
    fr_dataset_free(d);
    /* A BOM alone is an empty file; one after the start is binary data as before. */
    cr_assert_eq(load(&d, "e.data", "\xEF\xBB\xBF", NULL, &st), FR_ERR_EMPTY);
    cr_assert_eq(load(&d, "m.data", "1\t2\t3\t4\n\xEF\xBB\xBF" "1\t3\t3\t4\n", NULL, &st), FR_ERR_PARSE);
    cr_assert(strstr(fr_errmsg(), "m.data:2:"), "%s", fr_errmsg());
    /* Parallel ranges start after the first line: the same rows. */
    char *p = tu_write(dir, "big.data", "\xEF\xBB\xBF" "1\t2\t3\t4\n5\t6\t7\t8\n9\t10\t1\t12\n13\t14\t5\t16\n");
    uint64_t before = fri_read_parallel_loads();
    fri_read_set_parallel(1, 3);
    cr_assert_eq(fr_dataset_load(&d, p, NULL, &st), FR_OK, "%s", fr_errmsg());
    fri_read_set_parallel(0, 0);
    cr_assert_eq(fri_read_parallel_loads(), before + 1);
    cr_assert_eq(fr_dataset_n_interactions(d), 4);
    cr_assert(tu_find_row(d, 1, 2, NULL, NULL));
    fr_dataset_free(d);
    free(p);
    /* test.negative */
    fr_negatives *ng = NULL;
    p = tu_write(dir, "t.negative", "\xEF\xBB\xBF" "(0,1)\t2\t3\n(1,0)\t2\n");
    cr_assert_eq(fr_negatives_load(&ng, p, NULL), FR_OK, "%s", fr_errmsg());
    const uint32_t *it;
    cr_assert_eq(fr_negatives_user(ng, 0, &it), 2);
    negs_free(ng);
    free(p);
}

/* dir + "/ddd.../ddd" (directories made) until the path is at least len bytes. */
static char *deep_dir(const char *base, size_t len, bool make) {
    char *p = malloc(len + 512);
    cr_assert_not_null(p);
    strcpy(p, base);
    while (strlen(p) < len) {
        strcat(p, "/");
        size_t at = strlen(p);
        memset(p + at, 'd', 200);
        p[at + 200] = '\0';
        if (make) cr_assert_eq(mkdir(p, 0700), 0);
    }
    return p;
}

/* A long path never pushes the line number and the reason out of the message (the
 * message holds 1 KiB: a 1500-byte path used to leave nothing but the path). */
Test(readers, long_paths_keep_the_reason) {
    char *deep = deep_dir(dir, 1500, true);
    char *p = tu_write(deep, "u.data", "1\t2\t3\t4\n1\tx\t3\t4\n");
    fr_dataset *d = NULL;
    cr_assert_eq(fr_dataset_load(&d, p, NULL, NULL), FR_ERR_PARSE);
    const char *m = fr_errmsg();
    cr_assert(strncmp(m, "...", 3) == 0, "%s", m);
    cr_assert(strstr(m, "dd/u.data:2: item id \"x\" is not a number; expected an integer"), "%s", m);
    cr_assert_lt(strlen(m), 400);
    free(p);
    if (asprintf(&p, "%s/none.data", deep) < 0) abort();
    cr_assert_eq(fr_dataset_load(&d, p, NULL, NULL), FR_ERR_IO);
    cr_assert(strstr(fr_errmsg(), "dd/none.data: cannot open: No such file or directory"), "%s", fr_errmsg());
    free(p);
    /* Past the system's limit: the reason says so, with the path's length. */
    char *deeper = deep_dir(deep, 4300, false);
    if (asprintf(&p, "%s/u.data", deeper) < 0) abort();
    cr_assert_eq(fr_dataset_load(&d, p, NULL, NULL), FR_ERR_IO);
    char want[96];
    snprintf(want, sizeof want, "cannot open: File name too long (a path of %zu bytes)", strlen(p));
    cr_assert(strstr(fr_errmsg(), want), "%s", fr_errmsg());
    fr_negatives *ng = NULL;
    cr_assert_eq(fr_negatives_load(&ng, p, NULL), FR_ERR_IO);
    cr_assert(strstr(fr_errmsg(), want), "%s", fr_errmsg());
    free(p);
    free(deeper);
    free(deep);
}

/* ------------------------------------------------------------ negatives */

Test(readers, negatives_through_maps) {
    char *a = tu_write(dir, "u.data", "10\t100\t5\t1\n20\t200\t4\t2\n30\t300\t3\t3\n");
    fr_dataset *d = NULL;
    cr_assert_eq(fr_dataset_load(&d, a, NULL, NULL), FR_OK);
    char *n = tu_write(dir, "test.negative", "(20,200)\t100\t300\n(10,100)\t200\r\n");
    fr_negatives *ng = NULL;
    cr_assert_eq(fr_negatives_load(&ng, n, d), FR_OK, "%s", fr_errmsg());
    cr_assert_eq(ng->n_users, 3);
    cr_assert_eq(ng->ptr[0], 0);
    cr_assert_eq(ng->ptr[1], 1); /* user 10 (dense 0): item 200 -> 1 */
    cr_assert_eq(ng->items[0], 1);
    cr_assert_eq(ng->ptr[2], 3); /* user 20 (dense 1): 100, 300 -> 0, 2 */
    cr_assert_eq(ng->items[1], 0);
    cr_assert_eq(ng->items[2], 2);
    cr_assert_eq(ng->ptr[3], 3); /* user 30: none */
    negs_free(ng);
    free(n);
    n = tu_write(dir, "bad.negative", "(10,100)\t200\n(20,200)\t999\n");
    cr_assert_eq(fr_negatives_load(&ng, n, d), FR_ERR_RANGE);
    cr_assert(strstr(fr_errmsg(), "bad.negative:2:"), "%s", fr_errmsg());
    cr_assert(strstr(fr_errmsg(), "999"), "%s", fr_errmsg());
    cr_assert_null(ng);
    free(n);
    n = tu_write(dir, "bad2.negative", "(10,100)\t200\n(77,200)\t100\n");
    cr_assert_eq(fr_negatives_load(&ng, n, d), FR_ERR_RANGE);
    cr_assert(strstr(fr_errmsg(), "bad2.negative:2: user 77"), "%s", fr_errmsg());
    free(n);
    struct { const char *text, *sub; fr_err code; } bad[] = {
        {"10,100\t200\n", "bad.n:1: line starts", FR_ERR_PARSE},
        {"(10,100)\t2x0\n", "bad.n:1: negative item \"2x0\"", FR_ERR_PARSE},
        {"(10,100)\t200\n(10,100)\t300\n", "two lines", FR_ERR_PARSE},
        {"", "empty file", FR_ERR_EMPTY},
        {"(10,100)\t200\n(2\0", "bad.n:2: binary data", FR_ERR_PARSE},
        {"(10,100)\t200\n(20,2", "bad.n:2:", FR_ERR_PARSE},
    };
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        n = tu_write(dir, "bad.n", bad[k].text);
        if (k == 4) { /* embed the NUL */
            FILE *f = fopen(n, "ab");
            fwrite("\0x\n", 1, 3, f);
            fclose(f);
        }
        cr_assert_eq(fr_negatives_load(&ng, n, d), bad[k].code, "case %zu: %s", k, fr_errmsg());
        cr_assert(strstr(fr_errmsg(), bad[k].sub), "case %zu: %s", k, fr_errmsg());
        free(n);
    }
    fr_dataset_free(d);
    free(a);
}

Test(readers, negatives_dense_without_dataset) {
    char *n = tu_write(dir, "test.negative", "(0,5)\t1\t2\t3\n(2,1)\t4\n");
    fr_negatives *ng = NULL;
    cr_assert_eq(fr_negatives_load(&ng, n, NULL), FR_OK, "%s", fr_errmsg());
    cr_assert_eq(ng->n_users, 3);
    cr_assert_eq(ng->ptr[1], 3);
    cr_assert_eq(ng->ptr[2], 3);
    cr_assert_eq(ng->ptr[3], 4);
    cr_assert_eq(ng->items[2], 3);
    cr_assert_eq(ng->items[3], 4);
    negs_free(ng);
    free(n);
    /* Lines without negatives (found by the fuzzer: memcpy from an empty array). */
    n = tu_write(dir, "none.negative", "(0,5)\n(1,1)\n");
    cr_assert_eq(fr_negatives_load(&ng, n, NULL), FR_OK, "%s", fr_errmsg());
    cr_assert_eq(ng->n_users, 2);
    cr_assert_eq(ng->ptr[2], 0);
    negs_free(ng);
    free(n);
}

/* ------------------------------------------------------------ allocation failures */

Test(readers, alloc_failure_sweep) {
    char *p = NULL;
    if (asprintf(&p, "%s/sweep.dat", dir) < 0) abort();
    FILE *f = fopen(p, "wb");
    for (int k = 0; k < 9000; k++) fprintf(f, "%d::%d::%d::%d\n", k % 37, (k * 7) % 101, 1 + k % 5, k);
    fclose(f);
    char *q = tu_write(dir, "t.dat", "1::1::1::1\n500::500::2::2\n");
    fr_dataset *d = NULL, *t2 = NULL;
    fr_test_fail_alloc(0, false);
    (void)fr_test_alloc_count();
    fr_test_fail_alloc(0, false);
    cr_assert_eq(fr_dataset_load(&d, p, NULL, NULL), FR_OK);
    long count = fr_test_alloc_count();
    fr_dataset_free(d);
    cr_assert_gt(count, 5);
    int ok = 0, nomem = 0;
    for (long nth = 1; nth <= count; nth++) {
        fr_test_fail_alloc(nth, true);
        fr_err e = fr_dataset_load(&d, p, NULL, NULL);
        fr_test_fail_alloc(0, false);
        if (e == FR_OK) { ok++; fr_dataset_free(d); continue; }
        cr_assert_eq(e, FR_ERR_NOMEM, "nth %ld: %d %s", nth, e, fr_errmsg());
        cr_assert_null(d);
        nomem++;
    }
    cr_assert_gt(nomem, 0);
    /* The pair loader too. */
    fr_test_fail_alloc(0, false);
    cr_assert_eq(fr_dataset_load_pair(&d, &t2, p, q, NULL), FR_OK);
    count = fr_test_alloc_count();
    fr_dataset_free(d);
    fr_dataset_free(t2);
    for (long nth = 1; nth <= count; nth++) {
        fr_test_fail_alloc(nth, true);
        fr_err e = fr_dataset_load_pair(&d, &t2, p, q, NULL);
        fr_test_fail_alloc(0, false);
        if (e == FR_OK) { fr_dataset_free(d); fr_dataset_free(t2); continue; }
        cr_assert_eq(e, FR_ERR_NOMEM, "pair nth %ld: %d %s", nth, e, fr_errmsg());
        cr_assert_null(d);
        cr_assert_null(t2);
    }
    /* Negatives. */
    char *n = tu_write(dir, "t.negative", "(1,1)\t5\t6\n(500,500)\t1\n");
    cr_assert_eq(fr_dataset_load(&d, p, NULL, NULL), FR_OK);
    fr_negatives *ng = NULL;
    fr_test_fail_alloc(0, false);
    cr_assert_eq(fr_negatives_load(&ng, n, NULL), FR_OK);
    count = fr_test_alloc_count();
    negs_free(ng);
    for (long nth = 1; nth <= count; nth++) {
        fr_test_fail_alloc(nth, true);
        fr_err e = fr_negatives_load(&ng, n, NULL);
        fr_test_fail_alloc(0, false);
        if (e == FR_OK) { negs_free(ng); continue; }
        cr_assert_eq(e, FR_ERR_NOMEM);
        cr_assert_null(ng);
    }
    fr_dataset_free(d);
    free(n);
    free(p);
    free(q);
}

/* ------------------------------------------------------------ the real file */

Test(readers, shared_ml100k) {
    char *p = tu_shared("ml-100k/u.data");
    if (!p) cr_skip_test("no shared data");
    fr_dataset *d = NULL;
    fr_load_stats st;
    cr_assert_eq(fr_dataset_load(&d, p, NULL, &st), FR_OK, "%s", fr_errmsg());
    cr_assert_eq(st.format, FR_FORMAT_ML100K);
    cr_assert_eq(fr_dataset_n_users(d), 943);
    cr_assert_eq(fr_dataset_n_items(d), 1682);
    cr_assert_eq(fr_dataset_n_interactions(d), 100000);
    /* First line of u.data: 196 242 3 881250949. */
    float r;
    int64_t t;
    cr_assert(tu_find_row(d, 196, 242, &r, &t));
    cr_assert_eq(r, 3);
    cr_assert_eq(t, 881250949);
    fr_dataset_free(d);
    free(p);
}

/* The items' public popularity (popularity.txt of fedrec data shard): the weights as
 * written, comments skipped; a bad value, too many or too few lines refused naming the
 * file and line (or the counts). */
Test(readers, popularity_file) {
    char *p = tu_write(dir, "pop.txt", "# popularity\n3\n1\r\n\n2.5\n");
    double *w = NULL;
    cr_assert_eq(fr_popularity_load(p, 3, &w), FR_OK, "%s", fr_errmsg());
    cr_assert(w[0] == 3 && w[1] == 1 && w[2] == 2.5, "%g %g %g", w[0], w[1], w[2]);
    free(w);
    free(p);
    p = tu_write(dir, "bad.txt", "# popularity\n3\n-1\n2\n");
    cr_assert_eq(fr_popularity_load(p, 3, &w), FR_ERR_PARSE);
    cr_assert_null(w);
    cr_assert(strstr(fr_errmsg(), "bad.txt:3:") && strstr(fr_errmsg(), "'-1'"), "%s", fr_errmsg());
    free(p);
    p = tu_write(dir, "long.txt", "1\n2\n3\n4\n");
    cr_assert_eq(fr_popularity_load(p, 3, &w), FR_ERR_PARSE);
    cr_assert(strstr(fr_errmsg(), "long.txt:4:") && strstr(fr_errmsg(), "3 items"), "%s", fr_errmsg());
    free(p);
    p = tu_write(dir, "short.txt", "1\n2\n");
    cr_assert_eq(fr_popularity_load(p, 3, &w), FR_ERR_PARSE);
    cr_assert(strstr(fr_errmsg(), "2 popularity lines") && strstr(fr_errmsg(), "3 items"), "%s", fr_errmsg());
    free(p);
}
