/* String ids (issue 11): ids that are not integers are numbered in order of first
 * appearance, the id maps keep the strings, a pair of files shares one numbering, and the
 * CSR data equals that of the same file with integer ids written in that order. The
 * expected dense ids are worked out by hand from the files below. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/read.h"
#include "fedrec/data.h"
#include "testutil.h"

static char *dir;

static void setup(void) { dir = tu_tmpdir(); }
static void teardown(void) {
    tu_rmtree(dir);
    free(dir);
}

TestSuite(strids, .init = setup, .fini = teardown);

static char *path_of(const char *name, const char *text) {
    char *p = malloc(strlen(dir) + strlen(name) + 2);
    sprintf(p, "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
    return p;
}

/* Every row of a and b (users, items, ratings, times in CSR order) is the same. */
static void same_rows(const fr_dataset *a, const fr_dataset *b) {
    cr_assert_eq(fr_dataset_n_users(a), fr_dataset_n_users(b));
    cr_assert_eq(fr_dataset_n_items(a), fr_dataset_n_items(b));
    for (uint32_t u = 0; u < fr_dataset_n_users(a); u++) {
        const uint32_t *ia, *ib;
        const float *ra, *rb;
        const int64_t *ta, *tb;
        size_t na = fr_dataset_user(a, u, &ia, &ra, &ta), nb = fr_dataset_user(b, u, &ib, &rb, &tb);
        cr_assert_eq(na, nb, "user %u", u);
        for (size_t k = 0; k < na; k++) {
            cr_assert_eq(ia[k], ib[k], "user %u row %zu", u, k);
            cr_assert_eq(ra[k], rb[k]);
            cr_assert_eq(ta[k], tb[k]);
        }
    }
}

Test(strids, amazon_header_crlf) {
    fr_dataset *d = NULL, *di = NULL;
    /* First appearance: users A2, A1, A3 -> 0, 1, 2; items B9, B1, 0042, 42 -> 0..3 ("0042"
     * and "42" are two ids). */
    const char *s = "reviewerID,asin,overall,unixReviewTime\r\n"
                    "A2,B9,5.0,10\r\nA1,B1,3.0,11\r\nA2,0042,4.0,12\r\nA3,42,2.0,13\r\nA1,B9,1.0,14\r\n";
    const char *n = "0,0,5,10\n1,1,3,11\n0,2,4,12\n2,3,2,13\n1,0,1,14\n";
    cr_assert_eq(tu_load_text(&d, dir, "amz.csv", s, NULL, NULL), FR_OK, "%s", fr_errmsg());
    cr_assert_eq(tu_load_text(&di, dir, "int.csv", n, NULL, NULL), FR_OK, "%s", fr_errmsg());
    const fr_idmap *um = fr_dataset_users(d), *im = fr_dataset_items(d);
    cr_assert(fr_idmap_is_str(um) && fr_idmap_is_str(im));
    cr_assert(!fr_idmap_is_str(fr_dataset_users(di)));
    cr_assert_null(fr_idmap_raw_str(fr_dataset_users(di), 0));
    const char *users[] = {"A2", "A1", "A3"}, *items[] = {"B9", "B1", "0042", "42"};
    cr_assert_eq(fr_idmap_size(um), 3);
    cr_assert_eq(fr_idmap_size(im), 4);
    for (uint32_t k = 0; k < 3; k++) {
        cr_assert_str_eq(fr_idmap_raw_str(um, k), users[k]);
        cr_assert_eq(fr_idmap_find_str(um, users[k]), k);
    }
    for (uint32_t k = 0; k < 4; k++) {
        cr_assert_str_eq(fr_idmap_raw_str(im, k), items[k]);
        cr_assert_eq(fr_idmap_find_str(im, items[k]), k);
    }
    cr_assert_eq(fr_idmap_find_str(im, "B2"), -1);
    cr_assert_eq(fr_idmap_find_str(fr_dataset_items(di), "2"), 2);
    cr_assert_eq(fr_idmap_find_str(fr_dataset_items(di), "x"), -1);
    char buf[16];
    cr_assert_eq(fr_idmap_format(im, 2, buf, sizeof buf), 4);
    cr_assert_str_eq(buf, "0042");
    fr_idmap_format(fr_dataset_items(di), 3, buf, sizeof buf);
    cr_assert_str_eq(buf, "3");
    same_rows(d, di);
    /* Fingerprints: the strings count (same rows, other strings: another fingerprint). */
    fr_dataset *d2 = NULL;
    const char *s2 = "reviewerID,asin,overall,unixReviewTime\r\n"
                     "A2,B9,5.0,10\r\nA1,B1,3.0,11\r\nA2,0042,4.0,12\r\nA3,43,2.0,13\r\nA1,B9,1.0,14\r\n";
    cr_assert_eq(tu_load_text(&d2, dir, "amz2.csv", s2, NULL, NULL), FR_OK, "%s", fr_errmsg());
    same_rows(d, d2);
    fr_fingerprint f1, f2, f3;
    fr_dataset_fingerprint(d, &f1);
    fr_dataset_fingerprint(d2, &f2);
    fr_dataset_fingerprint(d, &f3);
    cr_assert(!fr_fingerprint_equal(&f1, &f2));
    cr_assert(fr_fingerprint_equal(&f1, &f3));
    fr_dataset_free(d);
    fr_dataset_free(d2);
    fr_dataset_free(di);
}

Test(strids, headerless_tsv_and_explicit_option) {
    fr_dataset *d = NULL;
    /* No header: the first line is data with string ids (a numeric third field). */
    cr_assert_eq(tu_load_text(&d, dir, "s.tsv", "userX\titemA\t5\nuserY\titemB\t3\nuserX\titemB\t4\n", NULL, NULL), FR_OK,
                 "%s", fr_errmsg());
    cr_assert_eq(fr_dataset_n_users(d), 2);
    cr_assert_str_eq(fr_idmap_raw_str(fr_dataset_users(d), 1), "userY");
    cr_assert_str_eq(fr_idmap_raw_str(fr_dataset_items(d), 0), "itemA");
    fr_dataset_free(d);
    d = NULL;
    /* Integer first line, a string later: an error naming the option... */
    cr_assert_eq(tu_load_text(&d, dir, "m.csv", "1,2,5\nuserY,3,4\n", NULL, NULL), FR_ERR_PARSE);
    cr_assert(strstr(fr_errmsg(), "m.csv:2: user id \"userY\" is not a number"), "%s", fr_errmsg());
    cr_assert(strstr(fr_errmsg(), "string_ids"), "%s", fr_errmsg());
    /* ...which reads it: "1" is a string like any other, numbered first. */
    fr_load_opts o;
    fr_load_opts_default(&o);
    o.string_ids = true;
    cr_assert_eq(tu_load_text(&d, dir, "m.csv", "1,2,5\nuserY,3,4\n", &o, NULL), FR_OK, "%s", fr_errmsg());
    cr_assert_str_eq(fr_idmap_raw_str(fr_dataset_users(d), 0), "1");
    cr_assert_eq(fr_idmap_find_str(fr_dataset_users(d), "userY"), 1);
    fr_dataset_free(d);
}

Test(strids, pair_shares_one_numbering) {
    char *tr = path_of("tr.csv", "user,item,rating\nu2,i5,4\nu1,i6,3\n");
    char *te = path_of("te.csv", "user,item,rating\nu3,i6,5\nu1,i7,2\n");
    fr_dataset *a = NULL, *b = NULL;
    cr_assert_eq(fr_dataset_load_pair(&a, &b, tr, te, NULL), FR_OK, "%s", fr_errmsg());
    const fr_idmap *um = fr_dataset_users(a), *im = fr_dataset_items(a);
    cr_assert_eq(um, fr_dataset_users(b));
    cr_assert_eq(fr_idmap_size(um), 3);
    cr_assert_str_eq(fr_idmap_raw_str(um, 2), "u3");
    cr_assert_str_eq(fr_idmap_raw_str(im, 2), "i7");
    const uint32_t *items;
    cr_assert_eq(fr_dataset_user(b, 1, &items, NULL, NULL), 1); /* u1 (dense 1) rated i7 (dense 2) */
    cr_assert_eq(items[0], 2);
    fr_dataset_free(a);
    fr_dataset_free(b);
    /* A test file with string ids beside an integer training file is refused. */
    char *ti = path_of("ti.csv", "user,item,rating\n1,5,4\n2,6,3\n");
    cr_assert_eq(fr_dataset_load_pair(&a, &b, ti, te, NULL), FR_ERR_PARSE);
    cr_assert(strstr(fr_errmsg(), "user id \"u3\" is not a number"), "%s", fr_errmsg());
    free(tr);
    free(te);
    free(ti);
}

Test(strids, ncf_round_trip) {
    fr_dataset *d = NULL, *tr = NULL, *te = NULL;
    cr_assert_eq(tu_load_text(&d, dir, "s.csv", "user,item,rating,time\nbob,x y,4,1\nann,z,3,2\nbob,z,5,3\nann,q,2,4\n",
                              NULL, NULL), FR_OK, "%s", fr_errmsg());
    /* "x y": spaces inside an id are kept; the map file holds it after the tab. */
    cr_assert_str_eq(fr_idmap_raw_str(fr_dataset_items(d), 0), "x y");
    char out[4096];
    snprintf(out, sizeof out, "%s/ncf", dir);
    cr_assert_eq(fr_dataset_write_ncf(out, d, d, NULL), FR_OK, "%s", fr_errmsg());
    char trp[4200], tep[4200];
    snprintf(trp, sizeof trp, "%s/train.rating", out);
    snprintf(tep, sizeof tep, "%s/test.rating", out);
    cr_assert_eq(fr_dataset_load_pair(&tr, &te, trp, tep, NULL), FR_OK, "%s", fr_errmsg());
    for (uint32_t k = 0; k < 2; k++)
        cr_assert_str_eq(fr_idmap_raw_str(fr_dataset_users(tr), k), fr_idmap_raw_str(fr_dataset_users(d), k));
    for (uint32_t k = 0; k < 3; k++)
        cr_assert_str_eq(fr_idmap_raw_str(fr_dataset_items(tr), k), fr_idmap_raw_str(fr_dataset_items(d), k));
    cr_assert_eq(fr_idmap_find_str(fr_dataset_items(tr), "x y"), 0);
    same_rows(d, tr);
    fr_dataset_free(d);
    fr_dataset_free(tr);
    fr_dataset_free(te);
}

/* Files the parallel reader would take (here: every file, in 4 ranges) read string ids
 * serially, so the numbering is the file's order whatever the ranges: with a header (the
 * ranges meet the strings and hand back) and without. */
Test(strids, parallel_reader_keeps_file_order) {
    size_t cap = 1 << 16, len = 0;
    char *hdr = malloc(cap), *txt = malloc(cap);
    len = (size_t)sprintf(hdr, "user,item,rating\n");
    size_t tl = 0;
    for (int k = 0; k < 600; k++) {
        int n = sprintf(txt + tl, "u%d,i%d,%d\n", (k * 7) % 97, (k * 13) % 89, 1 + k % 5);
        tl += (size_t)n;
    }
    memcpy(hdr + len, txt, tl + 1);
    fr_dataset *serial = NULL, *par = NULL, *par2 = NULL;
    cr_assert_eq(tu_load_text(&serial, dir, "a.csv", hdr, NULL, NULL), FR_OK, "%s", fr_errmsg());
    fri_read_set_parallel(1, 4);
    fr_err e1 = tu_load_text(&par, dir, "b.csv", hdr, NULL, NULL);
    fr_err e2 = tu_load_text(&par2, dir, "c.csv", txt, NULL, NULL);
    fr_load_opts o;
    fr_load_opts_default(&o);
    o.skip_bad_lines = true; /* a range would skip the string lines as bad: none may be */
    fr_dataset *par3 = NULL;
    fr_load_stats st;
    fr_err e3 = tu_load_text(&par3, dir, "d.csv", hdr, &o, &st);
    fri_read_set_parallel(0, 0);
    cr_assert_eq(e1, FR_OK, "%s", fr_errmsg());
    cr_assert_eq(e2, FR_OK, "%s", fr_errmsg());
    same_rows(serial, par);
    same_rows(serial, par2);
    cr_assert_eq(e3, FR_OK, "%s", fr_errmsg());
    cr_assert_eq(st.skipped, 0);
    same_rows(serial, par3);
    fr_dataset_free(par3);
    /* the first user met is u0, then u7, u14 ... */
    cr_assert_str_eq(fr_idmap_raw_str(fr_dataset_users(par), 0), "u0");
    cr_assert_str_eq(fr_idmap_raw_str(fr_dataset_users(par), 1), "u7");
    cr_assert_str_eq(fr_idmap_raw_str(fr_dataset_users(par2), 2), "u14");
    fr_dataset_free(serial);
    fr_dataset_free(par);
    fr_dataset_free(par2);
    free(hdr);
    free(txt);
}

/* A dataset built from arrays of interning numbers (as the Python package numbers a data
 * frame's string ids, by first appearance) and given the strings is the file's dataset:
 * the same rows, the same strings for every dense id, the same fingerprint (which covers
 * the strings), so the command line accepts a model trained on either. Misuse is refused. */
Test(strids, arrays_given_their_strings_equal_the_file) {
    char *p = path_of("mixed.tsv", "bob\t93\t4\t10\nann\t7\t5\t11\nbob\t7\t3\t12\ncid\t93\t2\t13\nann\t12\t1\t14\n");
    fr_load_opts o;
    fr_load_opts_default(&o);
    fr_dataset *file = NULL, *mem = NULL;
    cr_assert_eq(fr_dataset_load(&file, p, &o, NULL), FR_OK, "%s", fr_errmsg());
    cr_assert(fr_idmap_is_str(fr_dataset_users(file)) && fr_idmap_is_str(fr_dataset_items(file)));
    /* by hand: users bob 0, ann 1, cid 2; items "93" 0, "7" 1, "12" 2 (first appearance) */
    const int64_t users[] = {0, 1, 0, 2, 1}, items[] = {0, 1, 1, 0, 2}, times[] = {10, 11, 12, 13, 14};
    const float ratings[] = {4, 5, 3, 2, 1};
    const char *const ustr[] = {"bob", "ann", "cid"}, *const istr[] = {"93", "7", "12"};
    cr_assert_eq(fr_dataset_from_arrays(&mem, 5, users, items, ratings, times), FR_OK);
    fr_fingerprint fa, fb;
    fr_dataset_fingerprint(file, &fa);
    fr_dataset_fingerprint(mem, &fb);
    cr_assert_not(fr_fingerprint_equal(&fa, &fb), "without the strings the fingerprints differ");
    cr_assert_eq(fr_dataset_set_id_strings(mem, ustr, 3, istr, 3), FR_OK, "%s", fr_errmsg());
    same_rows(file, mem);
    for (int side = 0; side < 2; side++) {
        const fr_idmap *a = side ? fr_dataset_items(file) : fr_dataset_users(file);
        const fr_idmap *b = side ? fr_dataset_items(mem) : fr_dataset_users(mem);
        cr_assert(fr_idmap_is_str(b));
        cr_assert_eq(fr_idmap_size(a), fr_idmap_size(b));
        for (uint32_t d = 0; d < fr_idmap_size(a); d++)
            cr_assert_str_eq(fr_idmap_raw_str(a, d), fr_idmap_raw_str(b, d), "side %d dense %u", side, d);
        cr_assert_eq(fr_idmap_find_str(b, side ? "12" : "cid"), fr_idmap_find_str(a, side ? "12" : "cid"));
    }
    fr_dataset_fingerprint(mem, &fb);
    cr_assert(fr_fingerprint_equal(&fa, &fb));
    /* refused: twice, too few strings, a repeated string; one side alone is allowed */
    cr_assert_eq(fr_dataset_set_id_strings(mem, ustr, 3, NULL, 0), FR_ERR_STATE);
    fr_dataset *m2 = NULL;
    cr_assert_eq(fr_dataset_from_arrays(&m2, 5, users, items, ratings, times), FR_OK);
    cr_assert_eq(fr_dataset_set_id_strings(m2, ustr, 2, NULL, 0), FR_ERR_RANGE);
    cr_assert(strstr(fr_errmsg(), "user"), "%s", fr_errmsg());
    const char *const twice[] = {"bob", "ann", "bob"};
    cr_assert_eq(fr_dataset_set_id_strings(m2, twice, 3, NULL, 0), FR_ERR_INVALID);
    cr_assert(strstr(fr_errmsg(), "bob"), "%s", fr_errmsg());
    cr_assert_eq(fr_dataset_set_id_strings(m2, NULL, 0, istr, 3), FR_OK, "%s", fr_errmsg());
    cr_assert_not(fr_idmap_is_str(fr_dataset_users(m2)));
    cr_assert_str_eq(fr_idmap_raw_str(fr_dataset_items(m2), 2), "12");
    fr_dataset_free(m2);
    fr_dataset_free(mem);
    fr_dataset_free(file);
    free(p);
}
