/* Ratings files of the shapes users bring (issue 11): half-star ratings without
 * timestamps, headers with other names (userID/artistID/weight), counts instead of
 * ratings, CRLF and a byte-order mark, quoted CSV fields, ISO dates, columns given by
 * number or by name, and the messages for a column the header does not place and for a
 * count read as a rating. Generated files only. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fedrec/data.h"
#include "testutil.h"

static char *dir;

static void setup(void) { dir = tu_tmpdir(); }
static void teardown(void) {
    tu_rmtree(dir);
    free(dir);
}

TestSuite(shapes, .init = setup, .fini = teardown);

static fr_err load(fr_dataset **d, const char *name, const char *text, const fr_load_opts *o, fr_load_stats *st) {
    return tu_load_text(d, dir, name, text, o, st);
}

static void expect(const fr_dataset *d, int64_t u, int64_t i, float r, int64_t t) {
    float gr = -1;
    int64_t gt = -1;
    cr_assert(tu_find_row(d, u, i, &gr, &gt), "(%lld, %lld) missing", (long long)u, (long long)i);
    cr_assert_eq(gr, r, "(%lld, %lld): rating %g, expected %g", (long long)u, (long long)i, (double)gr, (double)r);
    cr_assert_eq(gt, t, "(%lld, %lld): time %lld, expected %lld", (long long)u, (long long)i, (long long)gt,
                 (long long)t);
}

Test(shapes, half_stars_without_timestamps) {
    fr_dataset *d = NULL;
    fr_load_stats st;
    cr_assert_eq(load(&d, "r.tsv", "1\t10\t4.5\n1\t11\t0.5\n2\t10\t3\n", NULL, &st), FR_OK, "%s", fr_errmsg());
    expect(d, 1, 10, 4.5f, 0);
    expect(d, 1, 11, 0.5f, 0);
    expect(d, 2, 10, 3.0f, 0);
    cr_assert_not(fr_dataset_has_time(d));
    cr_assert_not(fr_dataset_implicit(d));
    cr_assert_not(st.implicit);
    fr_dataset_free(d);
    /* With a header, CSV with half stars: the rating column by name. */
    cr_assert_eq(load(&d, "r.csv", "movie,user,rating\n7,1,2.5\n8,1,5\n", NULL, &st), FR_OK, "%s", fr_errmsg());
    expect(d, 1, 7, 2.5f, 0);
    expect(d, 1, 8, 5.0f, 0);
    cr_assert_eq(st.format, FR_FORMAT_DELIMITED);
    fr_dataset_free(d);
}

/* The file: tab-separated, header userID artistID weight, play counts, no times. */
Test(shapes, counts_under_a_header_are_implicit_weights) {
    const char *text = "\xEF\xBB\xBFuserID\tartistID\tweight\r\n2\t51\t13883\r\n2\t52\t11690\r\n3\t51\t0\r\n";
    fr_dataset *d = NULL;
    fr_load_stats st;
    cr_assert_eq(load(&d, "user_artists.dat", text, NULL, &st), FR_OK, "%s", fr_errmsg());
    cr_assert_eq(fr_dataset_n_interactions(d), 3);
    cr_assert_eq(fr_dataset_n_users(d), 2);
    cr_assert_eq(fr_dataset_n_items(d), 2);
    expect(d, 2, 51, 13883.0f, 0);
    expect(d, 2, 52, 11690.0f, 0);
    expect(d, 3, 51, 0.0f, 0); /* a zero count is still a row */
    cr_assert(fr_dataset_implicit(d));
    cr_assert_not(fr_dataset_has_time(d));
    cr_assert(st.implicit);
    cr_assert(st.weights);
    cr_assert_eq(st.format, FR_FORMAT_DELIMITED);
    /* A split keeps the mark. */
    fr_dataset *tr = NULL, *te = NULL;
    cr_assert_eq(fr_dataset_split(d, FR_SPLIT_RATIO, 0.5, 3, &tr, &te), FR_OK, "%s", fr_errmsg());
    cr_assert(fr_dataset_implicit(tr));
    cr_assert(fr_dataset_implicit(te));
    fr_dataset_free(tr);
    fr_dataset_free(te);
    fr_dataset_free(d);
    /* --implicit: every row a positive, the count ignored (rating 1). */
    fr_load_opts o;
    fr_load_opts_default(&o);
    o.implicit = true;
    cr_assert_eq(load(&d, "user_artists.dat", text, &o, &st), FR_OK, "%s", fr_errmsg());
    expect(d, 2, 51, 1.0f, 0);
    expect(d, 3, 51, 1.0f, 0);
    cr_assert(fr_dataset_implicit(d));
    cr_assert(st.implicit);
    cr_assert_not(st.weights);
    fr_dataset_free(d);
    /* Other count names, any case and separators; a rating name wins over a count name. */
    static const char *const hdrs[] = {"user_id,track_id,PlayCount\n", "Customer ID,Product ID,Quantity\n",
                                       "uid,song,plays\n", "member,book,count\n", "visitor,item-id,clicks\n"};
    for (int k = 0; k < 5; k++) {
        char buf[128];
        snprintf(buf, sizeof buf, "%s5,6,250\n5,7,3\n", hdrs[k]);
        cr_assert_eq(load(&d, "c.csv", buf, NULL, &st), FR_OK, "%s: %s", hdrs[k], fr_errmsg());
        expect(d, 5, 6, 250.0f, 0);
        cr_assert(st.weights, "%s", hdrs[k]);
        fr_dataset_free(d);
    }
    cr_assert_eq(load(&d, "s.csv", "count,user,item,Score\n99,1,2,4.5\n", NULL, &st), FR_OK, "%s", fr_errmsg());
    expect(d, 1, 2, 4.5f, 0);
    cr_assert_not(st.implicit);
    fr_dataset_free(d);
}

Test(shapes, counts_without_a_header) {
    const char *text = "2\t51\t13883\n2\t52\t7\n";
    fr_dataset *d = NULL;
    /* Read as ratings: refused, with the advice to read counts as implicit feedback. */
    cr_assert_eq(load(&d, "plays.tsv", text, NULL, NULL), FR_ERR_RANGE);
    cr_assert(strstr(fr_errmsg(), "plays.tsv:1: rating 13883 is outside the allowed range [0, 10]"), "%s",
              fr_errmsg());
    cr_assert(strstr(fr_errmsg(), "--implicit"), "%s", fr_errmsg());
    cr_assert_null(d);
    /* A rating just out of range that is not a whole number gets no such advice. */
    cr_assert_eq(load(&d, "r.tsv", "1\t2\t10.5\n", NULL, NULL), FR_ERR_RANGE);
    cr_assert_null(strstr(fr_errmsg(), "--implicit"), "%s", fr_errmsg());
    fr_load_opts o;
    fr_load_opts_default(&o);
    o.implicit = true;
    cr_assert_eq(load(&d, "plays.tsv", text, &o, NULL), FR_OK, "%s", fr_errmsg());
    expect(d, 2, 51, 1.0f, 0);
    expect(d, 2, 52, 1.0f, 0);
    fr_dataset_free(d);
    fr_load_opts_default(&o);
    o.implicit_weight = true; /* implies implicit */
    cr_assert_eq(load(&d, "plays.tsv", text, &o, NULL), FR_OK, "%s", fr_errmsg());
    expect(d, 2, 51, 13883.0f, 0);
    expect(d, 2, 52, 7.0f, 0);
    cr_assert(fr_dataset_implicit(d));
    fr_dataset_free(d);
    /* A weight must be >= 0. */
    cr_assert_eq(load(&d, "neg.tsv", "2\t51\t3\n2\t52\t-1\n", &o, NULL), FR_ERR_RANGE);
    cr_assert(strstr(fr_errmsg(), "neg.tsv:2: weight -1 is negative; expected a count or weight >= 0"), "%s",
              fr_errmsg());
    /* The fixed formats take the options too: u.data-shaped counts. */
    cr_assert_eq(load(&d, "u.data", "1\t2\t300\t5\n", &o, NULL), FR_OK, "%s", fr_errmsg());
    expect(d, 1, 2, 300.0f, 5);
    fr_dataset_free(d);
}

Test(shapes, column_numbers_and_names) {
    fr_load_opts o;
    fr_load_opts_default(&o);
    o.col_user = "3";
    o.col_item = "1";
    o.col_rating = "2";
    fr_dataset *d = NULL;
    fr_load_stats st;
    /* AUTO with columns: delimited; no header, the others by position (no timestamp: 3 fields). */
    cr_assert_eq(load(&d, "n.txt", "10;4;1\n11;3.5;1\n", &o, &st), FR_OK, "%s", fr_errmsg());
    cr_assert_eq(st.format, FR_FORMAT_DELIMITED);
    expect(d, 1, 10, 4.0f, 0);
    expect(d, 1, 11, 3.5f, 0);
    fr_dataset_free(d);
    /* By name: a column the header names with no known word, the rest found by name. */
    fr_load_opts_default(&o);
    o.col_item = "band";
    cr_assert_eq(load(&d, "b.tsv", "user\tband\tplays\n1\t7\t40\n", &o, &st), FR_OK, "%s", fr_errmsg());
    expect(d, 1, 7, 40.0f, 0);
    cr_assert(st.weights);
    fr_dataset_free(d);
    /* The same by number, header and all (a named count column still implicit). */
    o.col_item = "2";
    o.has_header = true;
    cr_assert_eq(load(&d, "b.tsv", "user\tband\tplays\n1\t7\t40\n", &o, &st), FR_OK, "%s", fr_errmsg());
    expect(d, 1, 7, 40.0f, 0);
    fr_dataset_free(d);
    /* A rating column the user names is a rating: counts then need implicit. */
    fr_load_opts_default(&o);
    o.col_rating = "plays";
    cr_assert_eq(load(&d, "b.tsv", "user\titem\tplays\n1\t7\t40\n", &o, &st), FR_ERR_RANGE);
    cr_assert(strstr(fr_errmsg(), "--implicit"), "%s", fr_errmsg());
    /* A delimiter given; "::" too. A name matches ignoring case when nothing matches exactly. */
    fr_load_opts_default(&o);
    o.delimiter = "::";
    o.col_time = "WHEN";
    cr_assert_eq(load(&d, "m.dat", "user::item::rating::when\n1::2::3::44\n", &o, &st), FR_OK, "%s", fr_errmsg());
    expect(d, 1, 2, 3.0f, 44);
    fr_dataset_free(d);
    /* no_header: a first line that is not numeric is data: its ids are strings ("user" and
     * "1" are two users). */
    fr_load_opts_default(&o);
    o.no_header = true;
    cr_assert_eq(load(&d, "h.csv", "user,item\n1,2\n", &o, NULL), FR_OK, "%s", fr_errmsg());
    cr_assert_eq(fr_dataset_n_users(d), 2);
    cr_assert_str_eq(fr_idmap_raw_str(fr_dataset_users(d), 0), "user");
    cr_assert_str_eq(fr_idmap_raw_str(fr_dataset_users(d), 1), "1");
    fr_dataset_free(d);
    d = NULL;
    /* A name the header lacks: the message lists the header's fields. */
    fr_load_opts_default(&o);
    o.col_item = "artist";
    cr_assert_eq(load(&d, "x.tsv", "userID\tband\tweight\n1\t2\t3\n", &o, NULL), FR_ERR_PARSE);
    cr_assert(strstr(fr_errmsg(), "x.tsv:1: no column named \"artist\" (the item column) in the header; its fields "
                                  "are \"userID\", \"band\", \"weight\""), "%s", fr_errmsg());
}

Test(shapes, unplaceable_column_message) {
    fr_dataset *d = NULL;
    cr_assert_eq(load(&d, "ua.tsv", "userID\tfoo\tweight\n2\t51\t13883\n", NULL, NULL), FR_ERR_PARSE);
    const char *m = fr_errmsg();
    cr_assert(strstr(m, "ua.tsv:1: cannot place the item column of the header: its fields are \"userID\", \"foo\", "
                        "\"weight\", and none is a known item name"), "%s", m);
    cr_assert(strstr(m, "name it: --item-col foo (or --item-col 2"), "%s", m);
    cr_assert_null(d);
    /* The user column. */
    cr_assert_eq(load(&d, "ub.csv", "who,movieId,rating\n1,2,3\n", NULL, NULL), FR_ERR_PARSE);
    cr_assert(strstr(fr_errmsg(), "cannot place the user column of the header: its fields are \"who\", \"movieId\", "
                                  "\"rating\""), "%s", fr_errmsg());
    cr_assert(strstr(fr_errmsg(), "--user-col who"), "%s", fr_errmsg());
    /* Neither. */
    cr_assert_eq(load(&d, "uc.tsv", "a\tb\tc\n1\t2\t3\n", NULL, NULL), FR_ERR_PARSE);
    cr_assert(strstr(fr_errmsg(), "cannot place the user and item columns"), "%s", fr_errmsg());
    cr_assert(strstr(fr_errmsg(), "--user-col NAME --item-col NAME"), "%s", fr_errmsg());
    cr_assert_null(strstr(fr_errmsg(), "if this line is data"), "%s", fr_errmsg());
    /* String ids with a numeric third field are data, not a header of unknown names. */
    cr_assert_eq(load(&d, "amz.csv", "A2SUAM1J3GNN3B,0000013714,5.0\n", NULL, NULL), FR_OK, "%s", fr_errmsg());
    cr_assert_str_eq(fr_idmap_raw_str(fr_dataset_users(d), 0), "A2SUAM1J3GNN3B");
    cr_assert_str_eq(fr_idmap_raw_str(fr_dataset_items(d), 0), "0000013714");
    fr_dataset_free(d);
    d = NULL;
    /* A line of names and numbers that is no such data: the message says how to read it as data. */
    cr_assert_eq(load(&d, "hn.csv", "a,7,b\n1,2,3\n", NULL, NULL), FR_ERR_PARSE);
    cr_assert(strstr(fr_errmsg(), "if this line is data (string ids are read as such): --no-header"), "%s", fr_errmsg());
    /* What was refused reads once the column is named. */
    fr_load_opts o;
    fr_load_opts_default(&o);
    o.col_item = "foo";
    cr_assert_eq(load(&d, "ua.tsv", "userID\tfoo\tweight\n2\t51\t13883\n", &o, NULL), FR_OK, "%s", fr_errmsg());
    expect(d, 2, 51, 13883.0f, 0);
    fr_dataset_free(d);
}

/* Goodreads' export writes its dates year first with slashes (2020/01/02): the same date
 * as 2020-01-02 (epoch seconds computed by hand: 18263 days). Mixed separators and a day
 * first are refused, a day that does not exist is called an invalid date. */
Test(shapes, slash_dates) {
    fr_dataset *d = NULL;
    cr_assert_eq(load(&d, "gr.csv", "Book Id,User,My Rating,Date Added\n10,1,5,2020/01/02\n11,1,4,2020/02/29 10:00\n",
                      NULL, NULL), FR_OK, "%s", fr_errmsg());
    expect(d, 1, 10, 5.0f, 18263LL * 86400);
    expect(d, 1, 11, 4.0f, (18263LL + 58) * 86400 + 36000);
    fr_dataset_free(d);
    cr_assert_eq(load(&d, "gr.csv", "user,item,rating,date\n1,2,3,2020/01-02\n", NULL, NULL), FR_ERR_PARSE);
    cr_assert(strstr(fr_errmsg(), "gr.csv:2: timestamp \"2020/01-02\" is not a number"), "%s", fr_errmsg());
    cr_assert_eq(load(&d, "gr.csv", "user,item,rating,date\n1,2,3,02/01/2020\n", NULL, NULL), FR_ERR_PARSE);
    cr_assert_eq(load(&d, "gr.csv", "user,item,rating,date\n1,2,3,2021/02/29\n", NULL, NULL), FR_ERR_PARSE);
    cr_assert(strstr(fr_errmsg(), "gr.csv:2: timestamp \"2021/02/29\" is not a valid date"), "%s", fr_errmsg());
}

/* A date-time with a UTC offset (pandas writes "+00:00" for tz-aware times) is that
 * instant: 10:00 at +02:00 is 08:00 UTC (1577923200 + 8 h, by hand); -05:30 adds 5.5 h.
 * An offset without a time, or out of range, is refused. */
Test(shapes, utc_offsets) {
    fr_dataset *d = NULL;
    cr_assert_eq(load(&d, "tz.csv", "user,item,rating,date\n1,2,3,2020-01-02T10:00:00+02:00\n1,3,4,2020-01-02 10:00-05:30\n"
                      "1,4,5,2020-01-02T10:00:00+0000\n", NULL, NULL), FR_OK, "%s", fr_errmsg());
    expect(d, 1, 2, 3.0f, 1577923200 + 8 * 3600);
    expect(d, 1, 3, 4.0f, 1577923200 + 15 * 3600 + 1800);
    expect(d, 1, 4, 5.0f, 1577923200 + 10 * 3600);
    fr_dataset_free(d);
    cr_assert_eq(load(&d, "tz.csv", "user,item,rating,date\n1,2,3,2020-01-02+02:00\n", NULL, NULL), FR_ERR_PARSE);
    cr_assert_eq(load(&d, "tz.csv", "user,item,rating,date\n1,2,3,2020-01-02T10:00+25:00\n", NULL, NULL), FR_ERR_PARSE);
    cr_assert_eq(load(&d, "tz.csv", "user,item,rating,date\n1,2,3,2020-01-02T10:00+02:0\n", NULL, NULL), FR_ERR_PARSE);
}

Test(shapes, quoted_fields_and_dates) {
    fr_dataset *d = NULL;
    fr_load_stats st;
    const char *text = "\"user_id\",\"business_id\",\"title\",\"stars\",\"date\"\r\n"
                       "\"1\",\"20\",\"Heat, 1995\",\"4.5\",\"2020-01-02\"\r\n"
                       "1,21,\"say \"\"hi\"\"\",3,2020-01-03T10:00:05Z\r\n"
                       "2,20,plain,1.5,2020-02-29 00:00\r\n";
    cr_assert_eq(load(&d, "reviews.csv", text, NULL, &st), FR_OK, "%s", fr_errmsg());
    expect(d, 1, 20, 4.5f, 1577923200);
    expect(d, 1, 21, 3.0f, 1578045605);
    expect(d, 2, 20, 1.5f, 1582934400);
    cr_assert(fr_dataset_has_time(d));
    fr_dataset_free(d);
    /* Quoted MovieLens CSV: the first line is data (its first field a quoted number). */
    cr_assert_eq(load(&d, "q.csv", "\"1\",\"2\",\"3.5\",\"100\"\n\"1\",\"3\",\"4\",\"101\"\n", NULL, &st), FR_OK, "%s",
                 fr_errmsg());
    cr_assert_eq(st.format, FR_FORMAT_CSV);
    cr_assert_eq(fr_dataset_n_interactions(d), 2);
    expect(d, 1, 2, 3.5f, 100);
    fr_dataset_free(d);
    /* A bad date names the line, the value and what was expected. */
    cr_assert_eq(load(&d, "bad.csv", "user,item,rating,date\n1,2,3,2020-02-30\n", NULL, NULL), FR_ERR_PARSE);
    cr_assert(strstr(fr_errmsg(), "bad.csv:2: timestamp \"2020-02-30\" is not a valid date; expected an integer "
                                  "(seconds) or a date"), "%s", fr_errmsg());
    /* A reversed MovieLens-like header is read by name, not by position. */
    cr_assert_eq(load(&d, "rev.csv", "movieId,userId,timestamp,rating\n5,1,99,2.5\n", NULL, &st), FR_OK, "%s",
                 fr_errmsg());
    expect(d, 1, 5, 2.5f, 99);
    fr_dataset_free(d);
}

/* Headers of public review dumps whose rating and time columns carry a prefix (Amazon
 * Customer Reviews' star_rating and review_date): a name that ends in a rating or time
 * word is taken when no column has the exact name, and an exact name still wins. */
Test(shapes, prefixed_rating_and_date_names) {
    fr_dataset *d = NULL;
    fr_load_stats st;
    const char *text = "marketplace\tcustomer_id\treview_id\tproduct_id\tproduct_title\tstar_rating\t"
                       "helpful_votes\treview_date\n"
                       "US\t7\tR1\t30\tA title\t4\t0\t2015-08-31\n"
                       "US\t8\tR2\t31\tAnother\t2\t3\t2015-09-01\n";
    cr_assert_eq(load(&d, "amazon_reviews.tsv", text, NULL, &st), FR_OK, "%s", fr_errmsg());
    cr_assert_not(st.implicit, "star_rating was not read as the rating");
    cr_assert_str_eq(st.columns, "user customer_id, item product_id, rating star_rating, time review_date; not read: "
                                 "marketplace, review_id, product_title, helpful_votes");
    expect(d, 7, 30, 4.0f, 1440979200);
    expect(d, 8, 31, 2.0f, 1441065600);
    cr_assert(fr_dataset_has_time(d));
    fr_dataset_free(d);
    /* the exact names win over the prefixed ones, wherever they stand */
    cr_assert_eq(load(&d, "both.csv", "user,item,book_rating,rating,update_time,date\n1,2,9,3,1,2020-01-02\n", NULL,
                      &st), FR_OK, "%s", fr_errmsg());
    expect(d, 1, 2, 3.0f, 1577923200);
    cr_assert_str_eq(st.columns, "user user, item item, rating rating, time date; not read: book_rating, update_time");
    fr_dataset_free(d);
    /* a count column is named as the weight; a headerless file has nothing to name */
    cr_assert_eq(load(&d, "ua.tsv", "userID\tartistID\tweight\n2\t51\t13883\n", NULL, &st), FR_OK, "%s", fr_errmsg());
    cr_assert_str_eq(st.columns, "user userID, item artistID, weight weight");
    fr_dataset_free(d);
    cr_assert_eq(load(&d, "plain.tsv", "2\t51\t3\n", NULL, &st), FR_OK, "%s", fr_errmsg());
    cr_assert_str_eq(st.columns, "");
    fr_dataset_free(d);
    /* a header too long for the text is cut, and says so */
    char big[4096] = "user,item";
    for (int k = 0; k < 40; k++) snprintf(big + strlen(big), sizeof big - strlen(big), ",unused_field_%02d", k);
    strcat(big, "\n1,2");
    for (int k = 0; k < 40; k++) strcat(big, ",0");
    strcat(big, "\n");
    cr_assert_eq(load(&d, "wide.csv", big, NULL, &st), FR_OK, "%s", fr_errmsg());
    cr_assert_eq(strlen(st.columns), FR_LOAD_COLUMNS_MAX - 1);
    cr_assert_str_eq(st.columns + FR_LOAD_COLUMNS_MAX - 4, "...");
    cr_assert(!strncmp(st.columns, "user user, item item; not read: unused_field_00, ", 49), "%s", st.columns);
    fr_dataset_free(d);
}

Test(shapes, pair_with_count_headers) {
    char *a = tu_write(dir, "train.tsv", "userID\tartistID\tweight\n1\t10\t500\n2\t10\t20\n");
    char *b = tu_write(dir, "test.tsv", "userID\tartistID\tweight\n1\t11\t7\n");
    fr_dataset *tr = NULL, *te = NULL;
    cr_assert_eq(fr_dataset_load_pair(&tr, &te, a, b, NULL), FR_OK, "%s", fr_errmsg());
    cr_assert(fr_dataset_implicit(tr));
    cr_assert(fr_dataset_implicit(te));
    expect(te, 1, 11, 7.0f, 0);
    fr_dataset_free(tr);
    fr_dataset_free(te);
    free(a);
    free(b);
}

Test(shapes, opts_check_headers) {
    fr_load_opts o;
    fr_load_opts_default(&o);
    o.has_header = o.no_header = true;
    cr_assert_eq(fr_load_opts_check(&o), FR_ERR_INVALID);
    fr_load_opts_default(&o);
    o.col_user = "name"; /* AUTO: a name implies a header */
    cr_assert_eq(fr_load_opts_check(&o), FR_OK, "%s", fr_errmsg());
    o.no_header = true;
    cr_assert_eq(fr_load_opts_check(&o), FR_ERR_INVALID);
    fr_load_opts_default(&o);
    o.format = FR_FORMAT_DELIMITED;
    o.col_user = "name";
    cr_assert_eq(fr_load_opts_check(&o), FR_ERR_INVALID);
    cr_assert(strstr(fr_errmsg(), "has_header"), "%s", fr_errmsg());
}

/* skip_bad_lines: the dataset keeps how many lines of its file were skipped and where the
 * first was (fr_dataset_skipped), for each file of a pair, and fr_data_load adds them up
 * for `train` to say (its note names the first as path:line). */
Test(shapes, skipped_lines_are_kept) {
    fr_load_opts o;
    fr_load_opts_default(&o);
    o.skip_bad_lines = true;
    fr_dataset *d = NULL;
    uint64_t first = 99;
    cr_assert_eq(load(&d, "s.csv", "user,item,rating\n1,2,3\n1,x,3\n2,2,4\n3\n", &o, NULL), FR_OK, "%s", fr_errmsg());
    cr_assert_eq(fr_dataset_n_interactions(d), 2);
    cr_assert_eq(fr_dataset_skipped(d, &first), 2);
    cr_assert_eq(first, 3);
    fr_dataset_free(d);
    o.skip_bad_lines = false;
    cr_assert_eq(load(&d, "s.csv", "user,item,rating\n1,2,3\n2,2,4\n", &o, NULL), FR_OK, "%s", fr_errmsg());
    cr_assert_eq(fr_dataset_skipped(d, &first), 0);
    cr_assert_eq(first, 0);
    fr_dataset_free(d);
    /* a pair: each file its own count; fr_data_load their sum and the first's place */
    char *tr = tu_write(dir, "tr.csv", "user,item,rating\n1,2,3\n1,3,4\n2,2,4\n2,3,1\n");
    char *te = tu_write(dir, "te.csv", "user,item,rating\n1,4,3\nbad\n2,4,4\n2,5\n");
    fr_source src;
    fr_source_default(&src);
    src.data = tr;
    src.test = te;
    src.load.skip_bad_lines = true;
    src.explicit_ratings = true;
    fr_data *data = NULL;
    cr_assert_eq(fr_data_load(&data, &src), FR_OK, "%s", fr_errmsg());
    cr_assert_eq(fr_dataset_skipped(fr_data_train(data), NULL), 0);
    cr_assert_eq(fr_dataset_skipped(fr_data_test(data), &first), 2);
    cr_assert_eq(first, 3);
    const char *where = NULL;
    cr_assert_eq(fr_data_skipped(data, &where), 2);
    char want[4096];
    snprintf(want, sizeof want, "%s:3", te);
    cr_assert_str_eq(where, want);
    fr_data_free(data);
    free(tr);
    free(te);
}
