/* Metadata readers: u.item/u.genre/u.user, movies.dat/users.dat, movies.csv; Latin-1 to
 * UTF-8, unknown ids ignored, missing files, malformed files, allocation failures. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data/dataset.h"
#include "testutil.h"

static char *dir;

static void setup(void) { dir = tu_tmpdir(); }
static void teardown(void) {
    tu_rmtree(dir);
    free(dir);
}

TestSuite(meta, .init = setup, .fini = teardown);

static void put(const char *name, const char *text) { free(tu_write(dir, name, text)); }

/* A dataset over raw users {1, 2, 5} and items {1, 2, 3}. */
static fr_dataset *small(void) {
    int64_t u[] = {1, 2, 5, 1}, i[] = {1, 2, 3, 3};
    fr_dataset *d = NULL;
    cr_assert_eq(fr_dataset_from_arrays(&d, 4, u, i, NULL, NULL), FR_OK);
    return d;
}

static const char *flags(const char *on) { /* 19 flags "0|1|..." with the given indices set */
    static char buf[64];
    for (int g = 0; g < 19; g++) {
        buf[2 * g] = strchr(on, 'a' + g) ? '1' : '0';
        buf[2 * g + 1] = g < 18 ? '|' : '\0';
    }
    return buf;
}

Test(meta, ml100k_files) {
    fr_dataset *d = small();
    char item[2048];
    int n = snprintf(item, sizeof item, "1|Toy Story (1995)|01-Jan-1995||http://x|%s\n", flags("def"));
    n += snprintf(item + n, sizeof item - (size_t)n, "2|Mis\xe9rables, Les (1995)|01-Jan-1995||http://y|%s\r\n",
                  flags("i"));
    n += snprintf(item + n, sizeof item - (size_t)n, "3|No genre (2000)|||http://z|%s\n", flags(""));
    snprintf(item + n, sizeof item - (size_t)n, "99|Not rated (1990)|||http://w|%s\n", flags("a"));
    put("u.item", item);
    put("u.genre", "unknown|0\nAction|1\nAdventure|2\nAnimation|3\nChildren's|4\nComedy|5\nCrime|6\n"
                   "Documentary|7\nDrama|8\nFantasy|9\nFilm-Noir|10\nHorror|11\nMusical|12\nMystery|13\n"
                   "Romance|14\nSci-Fi|15\nThriller|16\nWar|17\nWestern|18\n\n");
    put("u.user", "1|24|M|technician|85711\n2|53|F|other|94043\n3|23|M|writer|32067\n5|33|F|other|15213\n");
    cr_assert_eq(fr_dataset_load_meta(d, dir), FR_OK, "%s", fr_errmsg());
    const fr_meta *m = fr_dataset_meta(d);
    cr_assert_not_null(m);
    cr_assert_str_eq(fr_meta_item_title(m, 0), "Toy Story (1995)");
    cr_assert_str_eq(fr_meta_item_genres(m, 0), "Animation|Children's|Comedy");
    cr_assert_str_eq(fr_meta_item_title(m, 1), "Mis\xc3\xa9rables, Les (1995)");
    cr_assert_str_eq(fr_meta_item_genres(m, 1), "Drama");
    cr_assert_str_eq(fr_meta_item_title(m, 2), "No genre (2000)");
    cr_assert_null(fr_meta_item_genres(m, 2));
    cr_assert_null(fr_meta_item_title(m, 3));
    cr_assert_str_eq(fr_meta_user_attr(m, 0, "age"), "24");
    cr_assert_str_eq(fr_meta_user_attr(m, 1, "gender"), "F");
    cr_assert_str_eq(fr_meta_user_attr(m, 2, "occupation"), "other"); /* raw user 5 */
    cr_assert_str_eq(fr_meta_user_attr(m, 2, "zip"), "15213");
    cr_assert_null(fr_meta_user_attr(m, 2, "height"));
    fr_dataset_free(d);
}

Test(meta, ml1m_files) {
    fr_dataset *d = small();
    put("movies.dat", "1::Toy Story (1995)::Animation|Children's|Comedy\n"
                      "3::Slingshot, The (K\xe5" "disbellan ) (1993)::Comedy|Drama\n"
                      "2::Already UTF-8 \xc3\xa9t\xc3\xa9 (2001)::Drama\n");
    put("users.dat", "1::F::1::10::48067\n5::M::56::16::70072\n7::M::25::15::55117\n");
    cr_assert_eq(fr_dataset_load_meta(d, dir), FR_OK, "%s", fr_errmsg());
    const fr_meta *m = fr_dataset_meta(d);
    cr_assert_str_eq(fr_meta_item_title(m, 2), "Slingshot, The (K\xc3\xa5" "disbellan ) (1993)");
    cr_assert_str_eq(fr_meta_item_genres(m, 2), "Comedy|Drama");
    cr_assert_str_eq(fr_meta_item_title(m, 1), "Already UTF-8 \xc3\xa9t\xc3\xa9 (2001)");
    cr_assert_str_eq(fr_meta_user_attr(m, 0, "gender"), "F");
    cr_assert_str_eq(fr_meta_user_attr(m, 0, "age"), "1");
    cr_assert_str_eq(fr_meta_user_attr(m, 2, "age"), "56");
    cr_assert_str_eq(fr_meta_user_attr(m, 2, "occupation"), "16");
    cr_assert_str_eq(fr_meta_user_attr(m, 2, "zip"), "70072");
    cr_assert_null(fr_meta_user_attr(m, 1, "zip")); /* raw user 2 not in users.dat */
    fr_dataset_free(d);
}

Test(meta, movies_csv_quoting) {
    fr_dataset *d = small();
    put("movies.csv", "movieId,title,genres\r\n1,Toy Story (1995),Adventure|Animation\r\n"
                      "2,\"American President, The (1995)\",Comedy|Drama|Romance\r\n"
                      "3,\"Say \"\"Hi\"\", \xc3\xa9\",(no genres listed)\n"
                      "4,\"Two\nlines\",Drama\n");
    cr_assert_eq(fr_dataset_load_meta(d, dir), FR_OK, "%s", fr_errmsg());
    const fr_meta *m = fr_dataset_meta(d);
    cr_assert_str_eq(fr_meta_item_title(m, 0), "Toy Story (1995)");
    cr_assert_str_eq(fr_meta_item_genres(m, 0), "Adventure|Animation");
    cr_assert_str_eq(fr_meta_item_title(m, 1), "American President, The (1995)");
    cr_assert_str_eq(fr_meta_item_title(m, 2), "Say \"Hi\", \xc3\xa9");
    cr_assert_null(fr_meta_item_genres(m, 2));
    cr_assert_null(fr_meta_user_attr(m, 0, "age"));
    fr_dataset_free(d);
}

Test(meta, missing_files_are_fine) {
    fr_dataset *d = small();
    cr_assert_eq(fr_dataset_load_meta(d, dir), FR_OK);
    cr_assert_null(fr_dataset_meta(d));
    fr_dataset_free(d);
}

static void expect_bad(const char *name, const char *text, const char *sub) {
    char sub_dir[4096];
    static int k;
    snprintf(sub_dir, sizeof sub_dir, "%s/case%d", dir, k++);
    cr_assert_eq(mkdir(sub_dir, 0700), 0);
    free(tu_write(sub_dir, name, text));
    fr_dataset *d = small();
    fr_err e = fr_dataset_load_meta(d, sub_dir);
    cr_assert_eq(e, FR_ERR_PARSE, "%s: %d %s", name, e, fr_errmsg());
    cr_assert(strstr(fr_errmsg(), sub), "missing \"%s\" in \"%s\"", sub, fr_errmsg());
    cr_assert_null(fr_dataset_meta(d));
    fr_dataset_free(d);
}

/* A file with a bad line and a good one: the bad line is skipped and counted with its
 * message, the good one loads. (These were errors for the whole file before.) */
static void expect_skipped(const char *name, const char *text, const char *sub) {
    char sub_dir[4096];
    static int k;
    snprintf(sub_dir, sizeof sub_dir, "%s/skip%d", dir, k++);
    cr_assert_eq(mkdir(sub_dir, 0700), 0);
    free(tu_write(sub_dir, name, text));
    if (strcmp(name, "u.genre") == 0) { /* u.genre alone attaches nothing: give it a u.item */
        char item[256];
        snprintf(item, sizeof item, "1|T|||u|%s\n", flags("b"));
        free(tu_write(sub_dir, "u.item", item));
    }
    fr_dataset *d = small();
    fr_err e = fr_dataset_load_meta(d, sub_dir);
    cr_assert_eq(e, FR_OK, "%s: %d %s", name, e, fr_errmsg());
    cr_assert_str_eq(fr_errmsg(), "");
    const char *first = NULL;
    cr_assert_eq(fr_meta_skipped(fr_dataset_meta(d), &first), 1, "%s", name);
    cr_assert_not_null(first);
    cr_assert(strstr(first, sub), "missing \"%s\" in \"%s\"", sub, first);
    fr_dataset_free(d);
}

Test(meta, bad_files) {
    expect_bad("u.item", "1|Toy Story|x\n", "u.item:1: expected 24 fields separated by '|', got 3");
    char line[512];
    snprintf(line, sizeof line, "1|T|||u|%s\nx1|T|||u|%s\n", flags(""), flags(""));
    expect_skipped("u.item", line, "u.item:2: item id \"x1\"");
    snprintf(line, sizeof line, "1|T|||u|%s\n", "0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|2");
    expect_bad("u.item", line, "u.item:1: genre flag 19 \"2\"");
    expect_bad("u.user", "1|24|M|technician\n", "u.user:1: expected 5 fields");
    expect_skipped("users.dat", "1::F::1::10::48067\n\x01\x02\x03\n", "users.dat:2: binary data");
    expect_bad("movies.dat", "1::Toy Story (1995)\n", "movies.dat:1: expected 3 fields separated by '::', got 2");
    expect_bad("movies.csv", "movieId,title,genres\n1,\"open,Drama\n", "movies.csv:2: quoted field never closed");
    expect_bad("movies.csv", "movieId,title,genres\n1,a,b,c\n", "movies.csv:2: expected 3 fields");
    expect_skipped("movies.csv", "movieId,title,genres\n1,a,b\nzz,a,b\n", "movies.csv:3: movie id \"zz\"");
    expect_skipped("u.genre", "Action|1\nBad|40\n", "u.genre:2: genre index \"40\"");
    expect_skipped("movies.csv", "movieId,title,genres\n1,\"a\"x,b\n2,c,d\n", "movies.csv:2: 'x' after a closing quote");
    /* A file of nothing but bad lines is not what its name says: an error for it. */
    expect_bad("u.user", "x|1|M|a|1\ny|2|F|b|2\n", "u.user:1: user id \"x\"");
    cr_assert(strstr(fr_errmsg(), "no line of the file was usable"), "%s", fr_errmsg());
}

/* One control byte in one title costs that item's title, not every title. */
Test(meta, one_bad_line_costs_that_line) {
    fr_dataset *d = small();
    char item[1024];
    int n = snprintf(item, sizeof item, "1|Toy Story (1995)|||u|%s\n", flags("d"));
    n += snprintf(item + n, sizeof item - (size_t)n, "2|Bad\x01title|||u|%s\n", flags("e"));
    snprintf(item + n, sizeof item - (size_t)n, "3|Third (1990)|||u|%s\n", flags("f"));
    put("u.item", item);
    put("u.user", "1|24|M|technician|85711\n2|x|F\n5|33|F|other|15213\n");
    cr_assert_eq(fr_dataset_load_meta(d, dir), FR_OK, "%s", fr_errmsg());
    const fr_meta *m = fr_dataset_meta(d);
    cr_assert_str_eq(fr_meta_item_title(m, 0), "Toy Story (1995)");
    cr_assert_null(fr_meta_item_title(m, 1));
    cr_assert_null(fr_meta_item_genres(m, 1));
    cr_assert_str_eq(fr_meta_item_title(m, 2), "Third (1990)");
    cr_assert_str_eq(fr_meta_item_genres(m, 2), "Comedy");
    cr_assert_str_eq(fr_meta_user_attr(m, 0, "age"), "24");
    cr_assert_null(fr_meta_user_attr(m, 1, "age"));
    cr_assert_str_eq(fr_meta_user_attr(m, 2, "zip"), "15213");
    const char *first = NULL;
    cr_assert_eq(fr_meta_skipped(m, &first), 2);
    cr_assert(strstr(first, "u.item:2: binary data (byte 0x01 at column 6)"), "%s", first);
    cr_assert_eq(fr_meta_skipped(NULL, &first), 0);
    cr_assert_null(first);
    fr_dataset_free(d);
}

/* A UTF-8 byte-order mark at the start of a metadata file is not part of the first id. */
Test(meta, utf8_bom_stripped) {
    fr_dataset *d = small();
    char item[512];
    snprintf(item, sizeof item, "\xEF\xBB\xBF" "1|Toy Story (1995)|||u|%s\n", flags("d"));
    put("u.item", item);
    put("movies.csv", "\xEF\xBB\xBF" "movieId,title,genres\n2,B,Drama\n");
    put("users.dat", "\xEF\xBB\xBF" "1::F::1::10::48067\n");
    cr_assert_eq(fr_dataset_load_meta(d, dir), FR_OK, "%s", fr_errmsg());
    const fr_meta *m = fr_dataset_meta(d);
    cr_assert_str_eq(fr_meta_item_title(m, 0), "Toy Story (1995)");
    cr_assert_str_eq(fr_meta_item_title(m, 1), "B");
    cr_assert_str_eq(fr_meta_user_attr(m, 0, "gender"), "F");
    cr_assert_eq(fr_meta_skipped(m, NULL), 0);
    fr_dataset_free(d);
}

Test(meta, alloc_failure_sweep) {
    fr_dataset *d = small();
    char item[1024];
    snprintf(item, sizeof item, "1|Toy Story (1995)|||u|%s\n2|B\xe9|||u|%s\n", flags("de"), flags("a"));
    put("u.item", item);
    put("u.user", "1|24|M|technician|85711\n5|33|F|other|15213\n");
    put("movies.csv", "movieId,title,genres\n3,\"C, c\",Drama\n");
    fr_test_fail_alloc(0, false);
    cr_assert_eq(fr_dataset_load_meta(d, dir), FR_OK);
    long count = fr_test_alloc_count();
    cr_assert_gt(count, 10);
    int fails = 0;
    for (long nth = 1; nth <= count; nth++) {
        fr_dataset *x = small();
        fr_test_fail_alloc(nth, true);
        fr_err e = fr_dataset_load_meta(x, dir);
        fr_test_fail_alloc(0, false);
        if (e != FR_OK) {
            cr_assert_eq(e, FR_ERR_NOMEM, "nth %ld: %d %s", nth, e, fr_errmsg());
            cr_assert_null(fr_dataset_meta(x));
            fails++;
        } else {
            cr_assert_str_eq(fr_meta_item_title(fr_dataset_meta(x), 2), "C, c");
        }
        fr_dataset_free(x);
    }
    cr_assert_eq(fails, count);
    fr_dataset_free(d);
}

Test(meta, shared_ml100k) {
    char *p = tu_shared("ml-100k/u.data");
    if (!p) cr_skip_test("no shared data");
    fr_dataset *d = NULL;
    cr_assert_eq(fr_dataset_load(&d, p, NULL, NULL), FR_OK, "%s", fr_errmsg());
    char *slash = strrchr(p, '/');
    *slash = '\0';
    cr_assert_eq(fr_dataset_load_meta(d, p), FR_OK, "%s", fr_errmsg());
    const fr_meta *m = fr_dataset_meta(d);
    int64_t toy = fr_idmap_find(fr_dataset_items(d), 1);
    cr_assert_str_eq(fr_meta_item_title(m, (uint32_t)toy), "Toy Story (1995)");
    cr_assert_str_eq(fr_meta_item_genres(m, (uint32_t)toy), "Animation|Children's|Comedy");
    int64_t mis = fr_idmap_find(fr_dataset_items(d), 543);
    cr_assert_str_eq(fr_meta_item_title(m, (uint32_t)mis), "Mis\xc3\xa9rables, Les (1995)");
    int64_t u1 = fr_idmap_find(fr_dataset_users(d), 1);
    cr_assert_str_eq(fr_meta_user_attr(m, (uint32_t)u1, "occupation"), "technician");
    cr_assert_str_eq(fr_meta_user_attr(m, (uint32_t)u1, "age"), "24");
    /* Every title is valid UTF-8 (no raw Latin-1 byte survives). */
    for (uint32_t i = 0; i < fr_dataset_n_items(d); i++) {
        const unsigned char *t = (const unsigned char *)fr_meta_item_title(m, i);
        cr_assert_not_null(t);
        for (; *t; t++) {
            if (*t < 0x80) continue;
            cr_assert(*t >= 0xC2 && *t <= 0xC3 && (t[1] & 0xC0) == 0x80, "item %u: bad UTF-8", i);
            t++;
        }
    }
    fr_dataset_free(d);
    free(p);
}

/* A directory path of ~4000 bytes (the system's limit is 4096): allocated, not built in a
 * fixed buffer; past the system's limit, an error that names the path's length. */
Test(meta, long_directory_path) {
    size_t cap = strlen(dir) + 5000;
    char *p = malloc(cap);
    cr_assert_not_null(p);
    strcpy(p, dir);
    char part[201];
    memset(part, 'd', 200);
    part[200] = '\0';
    while (strlen(p) < 3800) {
        strcat(p, "/");
        strcat(p, part);
        cr_assert_eq(mkdir(p, 0700), 0, "%zu", strlen(p));
    }
    char item[512];
    snprintf(item, sizeof item, "1|Toy Story (1995)|||u|%s\n", flags("d"));
    free(tu_write(p, "u.item", item));
    fr_dataset *d = small();
    cr_assert_eq(fr_dataset_load_meta(d, p), FR_OK, "%s", fr_errmsg());
    cr_assert_str_eq(fr_meta_item_title(fr_dataset_meta(d), 0), "Toy Story (1995)");
    while (strlen(p) < 4200) { /* past 4096 bytes: the system refuses it */
        strcat(p, "/");
        strcat(p, part);
    }
    cr_assert_eq(fr_dataset_load_meta(d, p), FR_ERR_IO);
    cr_assert(strstr(fr_errmsg(), "u.genre: cannot stat: File name too long (a path of "), "%s", fr_errmsg());
    cr_assert_lt(strlen(fr_errmsg()), 1000);
    cr_assert_str_eq(fr_meta_item_title(fr_dataset_meta(d), 0), "Toy Story (1995)"); /* unchanged */
    fr_dataset_free(d);
    free(p);
}
