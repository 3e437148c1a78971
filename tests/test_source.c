/* Data sources (fr_source, fr_data): DESIGN.md's PATH rules as `fedrec train`, `eval` and
 * `recommend` apply them. An NCF directory with and without test.negative, a file and a
 * given test file, a file split by loo, ratio and temporal (the same data as splitting
 * and sampling by hand), the built-in synthetic set, the split syntax, bad inputs and
 * their messages, and allocation failure at every step. */
#define _XOPEN_SOURCE 700 /* realpath */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fedrec/fedrec.h"
#include "testutil.h"

static const char NCF_TRAIN[] = "0\t0\t5\t1\n0\t1\t4\t2\n1\t1\t3\t1\n1\t2\t2\t2\n"
                                "2\t3\t4\t1\n2\t4\t1\t2\n3\t0\t2\t1\n3\t5\t3\t2\n";
static const char NCF_TEST[] = "0\t2\t4\t3\n1\t3\t5\t3\n2\t5\t3\t3\n3\t1\t4\t3\n";
static const char NCF_NEG[] = "(0,2)\t3\t4\n(1,3)\t0\t4\n(2,5)\t0\t1\n(3,1)\t2\t3\n";

/* A ratings file of 12 users with 6 to 9 interactions each over 30 items (raw ids 100 +
 * 3u and 7 + k), timestamps increasing. */
static char *write_ratings(const char *dir, const char *name) {
    char *text = malloc(1 << 16), *p = text;
    for (int u = 0; u < 12; u++)
        for (int k = 0; k < 6 + u % 4; k++)
            p += sprintf(p, "%d\t%d\t%d\t%d\n", 100 + 3 * u, 7 + (u * 5 + k * 3) % 30, 1 + (u + k) % 5, 1000 + 10 * k + u);
    char *path = tu_write(dir, name, text);
    free(text);
    return path;
}

/* Same interactions (items, ratings, times per user) and same id maps. */
static void assert_same_dataset(const fr_dataset *a, const fr_dataset *b) {
    cr_assert_eq(fr_dataset_n_users(a), fr_dataset_n_users(b));
    cr_assert_eq(fr_dataset_n_items(a), fr_dataset_n_items(b));
    cr_assert_eq(fr_dataset_n_interactions(a), fr_dataset_n_interactions(b));
    for (uint32_t u = 0; u < fr_dataset_n_users(a); u++) {
        const uint32_t *ia, *ib;
        const float *ra, *rb;
        const int64_t *ta, *tb;
        size_t na = fr_dataset_user(a, u, &ia, &ra, &ta), nb = fr_dataset_user(b, u, &ib, &rb, &tb);
        cr_assert_eq(na, nb, "user %u", u);
        for (size_t k = 0; k < na; k++) {
            cr_assert_eq(ia[k], ib[k]);
            cr_assert_eq(ra[k], rb[k]);
            cr_assert_eq(ta[k], tb[k]);
        }
        cr_assert_eq(fr_idmap_raw(fr_dataset_users(a), u), fr_idmap_raw(fr_dataset_users(b), u));
    }
    for (uint32_t i = 0; i < fr_dataset_n_items(a); i++)
        cr_assert_eq(fr_idmap_raw(fr_dataset_items(a), i), fr_idmap_raw(fr_dataset_items(b), i));
}

static void assert_same_negatives(const fr_negatives *a, const fr_negatives *b) {
    cr_assert_eq(fr_negatives_n_users(a), fr_negatives_n_users(b));
    for (uint32_t u = 0; u < fr_negatives_n_users(a); u++) {
        const uint32_t *ia, *ib;
        size_t na = fr_negatives_user(a, u, &ia), nb = fr_negatives_user(b, u, &ib);
        cr_assert_eq(na, nb, "user %u", u);
        for (size_t k = 0; k < na; k++) cr_assert_eq(ia[k], ib[k]);
    }
}

static char *ncf_dir(bool with_negatives) {
    char *dir = tu_tmpdir();
    free(tu_write(dir, "train.rating", NCF_TRAIN));
    free(tu_write(dir, "test.rating", NCF_TEST));
    if (with_negatives) free(tu_write(dir, "test.negative", NCF_NEG));
    return dir;
}

/* ------------------------------------------------------------ defaults and the split syntax */

Test(source, defaults) {
    fr_source s;
    memset(&s, 0xab, sizeof s);
    fr_source_default(&s);
    cr_assert_null(s.data);
    cr_assert_null(s.test);
    cr_assert_null(s.negatives);
    cr_assert_eq(s.split, FR_SPLIT_LOO);
    cr_assert_eq(s.eval_negatives, 99);
    cr_assert_eq(s.seed, 1);
    cr_assert_not(s.explicit_ratings);
    cr_assert_eq(s.load.format, FR_FORMAT_AUTO);
    cr_assert_eq(fr_source_check(&s), FR_OK);
}

Test(source, parse_and_format_split) {
    fr_split_kind k = 0;
    double r = -1;
    cr_assert_eq(fr_source_parse_split("loo", &k, &r), FR_OK);
    cr_assert_eq(k, FR_SPLIT_LOO);
    cr_assert_eq(r, 0);
    cr_assert_eq(fr_source_parse_split("ratio:0.8", &k, &r), FR_OK);
    cr_assert_eq(k, FR_SPLIT_RATIO);
    cr_assert_eq(r, 0.8);
    cr_assert_eq(fr_source_parse_split("temporal:0.25", &k, &r), FR_OK);
    cr_assert_eq(k, FR_SPLIT_TEMPORAL);
    cr_assert_eq(r, 0.25);
    cr_assert_eq(fr_source_parse_split("temporal-user:0.8", &k, &r), FR_OK);
    cr_assert_eq(k, FR_SPLIT_TEMPORAL_USER);
    cr_assert_eq(r, 0.8);
    static const char *const bad[] = {"", "x", "LOO", "loo ", "ratio", "ratio:", "ratio:0", "ratio:1", "ratio:1.5",
                                      "ratio:-0.5", "ratio:0.5x", "temporal:abc", "temporal:nan", "ratio:inf",
                                      "temporal-user", "temporal-user:1", "temporal_user:0.5", "temporal-user:0.5:", NULL};
    for (int i = 0; bad[i]; i++) {
        k = 77;
        r = 77;
        cr_assert_eq(fr_source_parse_split(bad[i], &k, &r), FR_ERR_INVALID, "'%s'", bad[i]);
        cr_assert_eq(k, 77);
        cr_assert_eq(r, 77);
        char want[64];
        snprintf(want, sizeof want, "\"%s\"", bad[i]);
        cr_assert(strstr(fr_errmsg(), want) && strstr(fr_errmsg(), "expected loo, ratio:R, temporal:R or temporal-user:R"),
                  "%s",
                  fr_errmsg());
    }
    char buf[40];
    cr_assert_eq(fr_source_format_split(FR_SPLIT_LOO, 0, buf, sizeof buf), FR_OK);
    cr_assert_str_eq(buf, "loo");
    cr_assert_eq(fr_source_format_split(FR_SPLIT_RATIO, 0.8, buf, sizeof buf), FR_OK);
    cr_assert_str_eq(buf, "ratio:0.8");
    cr_assert_eq(fr_source_format_split(FR_SPLIT_TEMPORAL, 0.1 + 0.2, buf, sizeof buf), FR_OK);
    cr_assert_str_eq(buf, "temporal:0.30000000000000004"); /* exact: reads back as the same double */
    cr_assert_eq(fr_source_parse_split(buf, &k, &r), FR_OK);
    cr_assert_eq(r, 0.1 + 0.2);
    cr_assert_eq(fr_source_format_split(FR_SPLIT_TEMPORAL_USER, 0.1 + 0.2, buf, sizeof buf), FR_OK);
    cr_assert_str_eq(buf, "temporal-user:0.30000000000000004");
    cr_assert_eq(fr_source_parse_split(buf, &k, &r), FR_OK);
    cr_assert_eq(k, FR_SPLIT_TEMPORAL_USER);
    cr_assert_eq(r, 0.1 + 0.2);
    cr_assert_eq(fr_source_format_split(FR_SPLIT_RATIO, 0.8, buf, 6), FR_ERR_RANGE);
    cr_assert_eq(fr_source_format_split((fr_split_kind)9, 0.8, buf, sizeof buf), FR_ERR_INVALID);
}

Test(source, check_names_the_field) {
    fr_source s;
    fr_source_default(&s);
    s.test = "t.tsv";
    cr_assert_eq(fr_source_check(&s), FR_ERR_INVALID);
    cr_assert(strstr(fr_errmsg(), "t.tsv") && strstr(fr_errmsg(), "training file"), "%s", fr_errmsg());
    fr_source_default(&s);
    s.split = FR_SPLIT_RATIO;
    s.split_ratio = 1.5;
    cr_assert_eq(fr_source_check(&s), FR_ERR_INVALID);
    cr_assert(strstr(fr_errmsg(), "split ratio 1.5"), "%s", fr_errmsg());
    fr_source_default(&s);
    s.split = (fr_split_kind)0;
    cr_assert_eq(fr_source_check(&s), FR_ERR_INVALID);
    cr_assert(strstr(fr_errmsg(), "split kind 0"), "%s", fr_errmsg());
    fr_source_default(&s);
    s.load.rating_min = 5;
    s.load.rating_max = 1;
    cr_assert_eq(fr_source_check(&s), FR_ERR_INVALID);
    cr_assert(strstr(fr_errmsg(), "rating range"), "%s", fr_errmsg());
    fr_data *d = (fr_data *)1;
    cr_assert_eq(fr_data_load(&d, &s), FR_ERR_INVALID);
    cr_assert_null(d);
}

/* ------------------------------------------------------------ NCF directories */

Test(source, ncf_directory_with_negatives) {
    char *dir = ncf_dir(true);
    fr_source s;
    fr_source_default(&s);
    s.data = dir;
    fr_data *d = NULL;
    cr_assert_eq(fr_data_load(&d, &s), FR_OK, "%s", fr_errmsg());
    cr_assert_eq(fr_dataset_n_interactions(fr_data_train(d)), 8);
    cr_assert_eq(fr_dataset_n_interactions(fr_data_test(d)), 4);
    cr_assert_eq(fr_dataset_n_users(fr_data_train(d)), 4);
    cr_assert_eq(fr_dataset_n_items(fr_data_train(d)), 6);
    const fr_negatives *ng = fr_data_negatives(d);
    cr_assert_not_null(ng);
    const uint32_t *it;
    cr_assert_eq(fr_negatives_user(ng, 1, &it), 2);
    cr_assert_eq(it[0], 0);
    cr_assert_eq(it[1], 4);
    char want[4200];
    snprintf(want, sizeof want, "%s (NCF layout)", dir);
    cr_assert_str_eq(fr_data_describe(d), want);
    cr_assert_not(fr_data_is_synthetic(d));
    fr_data_free(d);
    /* A model that predicts ratings needs no negatives. */
    s.explicit_ratings = true;
    cr_assert_eq(fr_data_load(&d, &s), FR_OK);
    cr_assert_null(fr_data_negatives(d));
    fr_data_free(d);
    tu_rmtree(dir);
    free(dir);
}

Test(source, ncf_directory_without_negatives_ranks_the_full_catalogue) {
    char *dir = ncf_dir(false);
    fr_source s;
    fr_source_default(&s);
    s.data = dir;
    fr_data *d = NULL;
    cr_assert_eq(fr_data_load(&d, &s), FR_OK, "%s", fr_errmsg());
    cr_assert_null(fr_data_negatives(d));
    cr_assert_eq(fr_dataset_n_interactions(fr_data_test(d)), 4);
    fr_data_free(d);
    tu_rmtree(dir);
    free(dir);
}

Test(source, ncf_directory_with_given_test_and_negatives) {
    char *dir = ncf_dir(false), *other = tu_tmpdir();
    char *test = tu_write(other, "t.rating", "0\t5\t1\t9\n2\t0\t1\t9\n");
    char *neg = tu_write(other, "t.negative", "(0,5)\t2\n(2,0)\t1\t2\n");
    fr_source s;
    fr_source_default(&s);
    s.data = dir;
    s.test = test;
    s.negatives = neg;
    fr_data *d = NULL;
    cr_assert_eq(fr_data_load(&d, &s), FR_OK, "%s", fr_errmsg());
    cr_assert_eq(fr_dataset_n_interactions(fr_data_test(d)), 2);
    const uint32_t *it;
    cr_assert_eq(fr_negatives_user(fr_data_negatives(d), 2, &it), 2);
    fr_data_free(d);
    tu_rmtree(dir);
    tu_rmtree(other);
    free(dir);
    free(other);
    free(test);
    free(neg);
}

/* ------------------------------------------------------------ files */

Test(source, file_and_given_test_share_one_id_space) {
    char *dir = tu_tmpdir();
    char *tr = tu_write(dir, "a.base", "10\t5\t4\t1\n10\t6\t3\t2\n20\t6\t5\t1\n");
    char *te = tu_write(dir, "a.test", "10\t9\t2\t3\n20\t5\t4\t2\n");
    fr_source s;
    fr_source_default(&s);
    s.data = tr;
    s.test = te;
    fr_data *d = NULL;
    cr_assert_eq(fr_data_load(&d, &s), FR_OK, "%s", fr_errmsg());
    fr_dataset *a = NULL, *b = NULL;
    cr_assert_eq(fr_dataset_load_pair(&a, &b, tr, te, NULL), FR_OK);
    assert_same_dataset(fr_data_train(d), a);
    assert_same_dataset(fr_data_test(d), b);
    cr_assert_eq(fr_dataset_n_items(fr_data_train(d)), 3); /* item 9 is only in the test file */
    cr_assert_null(fr_data_negatives(d));
    char want[4200];
    snprintf(want, sizeof want, "%s + %s", tr, te);
    cr_assert_str_eq(fr_data_describe(d), want);
    fr_data_free(d);
    fr_dataset_free(a);
    fr_dataset_free(b);
    tu_rmtree(dir);
    free(dir);
    free(tr);
    free(te);
}

Test(source, file_split_as_by_hand) {
    char *dir = tu_tmpdir(), *path = write_ratings(dir, "r.tsv");
    static const char *const splits[4] = {"loo", "ratio:0.5", "temporal:0.75", "temporal-user:0.7"};
    fr_dataset *all = NULL;
    cr_assert_eq(fr_dataset_load(&all, path, NULL, NULL), FR_OK);
    for (int k = 0; k < 4; k++) {
        for (int expl = 0; expl < 2; expl++) {
            fr_source s;
            fr_source_default(&s);
            s.data = path;
            s.seed = 7;
            s.explicit_ratings = expl;
            cr_assert_eq(fr_source_parse_split(splits[k], &s.split, &s.split_ratio), FR_OK);
            fr_data *d = NULL;
            cr_assert_eq(fr_data_load(&d, &s), FR_OK, "%s", fr_errmsg());
            fr_dataset *tr = NULL, *te = NULL;
            cr_assert_eq(fr_dataset_split(all, s.split, s.split_ratio, 7, &tr, &te), FR_OK);
            assert_same_dataset(fr_data_train(d), tr);
            assert_same_dataset(fr_data_test(d), te);
            if (expl) {
                cr_assert_null(fr_data_negatives(d));
            } else {
                fr_negatives *ng = NULL;
                cr_assert_eq(fr_negatives_sample(&ng, all, te, 99, 7), FR_OK);
                assert_same_negatives(fr_data_negatives(d), ng);
                fr_negatives_free(ng);
            }
            char want[4200];
            snprintf(want, sizeof want, "%s (split %s)", path, splits[k]);
            cr_assert_str_eq(fr_data_describe(d), want);
            fr_data_free(d);
            fr_dataset_free(tr);
            fr_dataset_free(te);
        }
    }
    /* eval_negatives 0: none sampled; a negatives file: read, not sampled. */
    fr_source s;
    fr_source_default(&s);
    s.data = path;
    s.eval_negatives = 0;
    fr_data *d = NULL;
    cr_assert_eq(fr_data_load(&d, &s), FR_OK);
    cr_assert_null(fr_data_negatives(d));
    fr_data_free(d);
    char *neg = tu_write(dir, "n.negative", "(100,7)\t8\t9\n");
    s.negatives = neg;
    s.eval_negatives = 99;
    cr_assert_eq(fr_data_load(&d, &s), FR_OK, "%s", fr_errmsg());
    const uint32_t *it;
    cr_assert_eq(fr_negatives_user(fr_data_negatives(d), 0, &it), 2);
    cr_assert_eq(fr_negatives_user(fr_data_negatives(d), 1, &it), 0);
    fr_data_free(d);
    fr_dataset_free(all);
    tu_rmtree(dir);
    free(dir);
    free(path);
    free(neg);
}

/* Leave-one-out on a file without timestamps holds out a seeded random interaction per
 * user, and the description says so (it goes into messages and the model's provenance). */
Test(source, loo_without_timestamps_says_random) {
    char *dir = tu_tmpdir();
    char *text = malloc(1 << 16), *p = text;
    for (int u = 0; u < 12; u++) /* ids in order of first appearance, no time column */
        for (int k = 0; k < 6 + u % 4; k++) p += sprintf(p, "%d\t%d\t1\n", 1 + u, 1 + (u * 5 + k * 3) % 30);
    char *path = tu_write(dir, "plays.tsv", text);
    free(text);
    fr_dataset *all = NULL, *tr = NULL, *te = NULL;
    cr_assert_eq(fr_dataset_load(&all, path, NULL, NULL), FR_OK, "%s", fr_errmsg());
    cr_assert_not(fr_dataset_has_time(all));
    fr_source s;
    fr_source_default(&s);
    s.data = path;
    s.seed = 9;
    fr_data *d = NULL;
    cr_assert_eq(fr_data_load(&d, &s), FR_OK, "%s", fr_errmsg());
    char want[4200];
    snprintf(want, sizeof want, "%s (split loo, random: no timestamps)", path);
    cr_assert_str_eq(fr_data_describe(d), want);
    cr_assert_eq(fr_dataset_split(all, FR_SPLIT_LOO, 0, 9, &tr, &te), FR_OK);
    assert_same_dataset(fr_data_test(d), te);
    fr_data_free(d);
    /* other splits and timestamped data are described as before */
    s.split = FR_SPLIT_RATIO;
    s.split_ratio = 0.8;
    cr_assert_eq(fr_data_load(&d, &s), FR_OK, "%s", fr_errmsg());
    snprintf(want, sizeof want, "%s (split ratio:0.8)", path);
    cr_assert_str_eq(fr_data_describe(d), want);
    fr_data_free(d);
    fr_dataset_free(tr); fr_dataset_free(te); fr_dataset_free(all);
    tu_rmtree(dir);
    free(dir);
    free(path);
}

Test(source, synthetic_set_is_fixed) {
    fr_source s;
    fr_source_default(&s);
    s.seed = 3;
    fr_data *d = NULL;
    cr_assert_eq(fr_data_load(&d, &s), FR_OK, "%s", fr_errmsg());
    cr_assert(fr_data_is_synthetic(d));
    cr_assert_str_eq(fr_data_describe(d), "synthetic data (2000 users, 1000 items, 100000 interactions)");
    const fr_dataset *tr = fr_data_train(d), *te = fr_data_test(d);
    cr_assert_eq(fr_dataset_n_users(tr), FR_SOURCE_SYNTHETIC_USERS);
    cr_assert_eq(fr_dataset_n_items(tr), FR_SOURCE_SYNTHETIC_ITEMS);
    cr_assert_eq(fr_dataset_n_interactions(tr) + fr_dataset_n_interactions(te), FR_SOURCE_SYNTHETIC_INTERACTIONS);
    fr_gen_opts g;
    fr_gen_opts_default(&g);
    g.users = FR_SOURCE_SYNTHETIC_USERS;
    g.items = FR_SOURCE_SYNTHETIC_ITEMS;
    g.interactions = FR_SOURCE_SYNTHETIC_INTERACTIONS;
    g.seed = FR_SOURCE_SYNTHETIC_SEED;
    fr_dataset *all = NULL, *a = NULL, *b = NULL;
    cr_assert_eq(fr_dataset_generate(&all, &g), FR_OK);
    cr_assert_eq(fr_dataset_split(all, FR_SPLIT_LOO, 0, 3, &a, &b), FR_OK);
    assert_same_dataset(tr, a);
    assert_same_dataset(te, b);
    fr_negatives *ng = NULL;
    cr_assert_eq(fr_negatives_sample(&ng, all, b, 99, 3), FR_OK);
    assert_same_negatives(fr_data_negatives(d), ng);
    cr_assert_eq(fr_data_load_meta(d), FR_OK); /* nothing to attach */
    cr_assert_null(fr_dataset_meta(fr_data_train(d)));
    fr_negatives_free(ng);
    fr_dataset_free(all);
    fr_dataset_free(a);
    fr_dataset_free(b);
    fr_data_free(d);
}

Test(source, metadata_beside_the_data) {
    char *dir = tu_tmpdir(), *path = write_ratings(dir, "r.tsv");
    free(tu_write(dir, "u.item", "7|Toy Story (1995)|01-Jan-1995||http://x|0|0|0|1|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0\n"));
    fr_source s;
    fr_source_default(&s);
    s.data = path;
    fr_data *d = NULL;
    cr_assert_eq(fr_data_load(&d, &s), FR_OK);
    cr_assert_eq(fr_data_load_meta(d), FR_OK, "%s", fr_errmsg());
    const fr_dataset *tr = fr_data_train(d);
    int64_t i7 = fr_idmap_find(fr_dataset_items(tr), 7);
    cr_assert_geq(i7, 0);
    cr_assert_str_eq(fr_meta_item_title(fr_dataset_meta(tr), (uint32_t)i7), "Toy Story (1995)");
    fr_data_free(d);
    tu_rmtree(dir);
    free(dir);
    free(path);
}

/* ------------------------------------------------------------ raw ids through an NCF split */

/* The same interactions under raw ids (dense ids may differ). */
static void assert_same_raw(const fr_dataset *a, const fr_dataset *b) {
    cr_assert_eq(fr_dataset_n_interactions(a), fr_dataset_n_interactions(b));
    for (uint32_t u = 0; u < fr_dataset_n_users(a); u++) {
        const uint32_t *ia;
        const float *ra;
        const int64_t *ta;
        size_t na = fr_dataset_user(a, u, &ia, &ra, &ta);
        if (!na) continue;
        int64_t bu = fr_idmap_find(fr_dataset_users(b), fr_idmap_raw(fr_dataset_users(a), u));
        cr_assert_geq(bu, 0, "raw user %lld", (long long)fr_idmap_raw(fr_dataset_users(a), u));
        cr_assert_eq(fr_dataset_user(b, (uint32_t)bu, NULL, NULL, NULL), na);
        for (size_t k = 0; k < na; k++) {
            int64_t bi = fr_idmap_find(fr_dataset_items(b), fr_idmap_raw(fr_dataset_items(a), ia[k]));
            cr_assert_geq(bi, 0);
            cr_assert(fr_dataset_has(b, (uint32_t)bu, (uint32_t)bi));
        }
    }
}

/* A file split and written in NCF layout, loaded again: the users and items a person sees
 * are the file's raw ids (users.map, items.map beside the .rating files), the interactions
 * and negatives are the same, and the maps name the file that was split. */
Test(source, ncf_split_keeps_raw_ids) {
    char *dir = tu_tmpdir(), *path = write_ratings(dir, "r.tsv");
    fr_source s;
    fr_source_default(&s);
    s.data = path;
    s.split = FR_SPLIT_RATIO;
    s.split_ratio = 0.7;
    s.eval_negatives = 5;
    fr_data *a = NULL, *b = NULL;
    cr_assert_eq(fr_data_load(&a, &s), FR_OK, "%s", fr_errmsg());
    char out[4200];
    snprintf(out, sizeof out, "%s/split", dir);
    cr_assert_eq(fr_dataset_write_ncf(out, fr_data_train(a), fr_data_test(a), fr_data_negatives(a)), FR_OK, "%s",
                 fr_errmsg());
    char *real = realpath(path, NULL);
    cr_assert_str_eq(fr_dataset_source(fr_data_train(a)), real);
    char mp[4300];
    snprintf(mp, sizeof mp, "%s/users.map", out);
    char *m = tu_slurp(mp, NULL), want[4400];
    snprintf(want, sizeof want, "\n# source: %s\n0\t100\n1\t103\n", real);
    cr_assert(strstr(m, want), "%s", m);
    free(m);
    fr_source_default(&s);
    s.data = out;
    cr_assert_eq(fr_data_load(&b, &s), FR_OK, "%s", fr_errmsg());
    snprintf(want, sizeof want, "%s (NCF layout, raw ids from users.map, items.map)", out);
    cr_assert_str_eq(fr_data_describe(b), want);
    assert_same_dataset(fr_data_train(a), fr_data_train(b)); /* ids, raw ids, rows, times */
    assert_same_dataset(fr_data_test(a), fr_data_test(b));
    assert_same_negatives(fr_data_negatives(a), fr_data_negatives(b));
    cr_assert_str_eq(fr_dataset_source(fr_data_train(b)), real);
    cr_assert_eq(fr_idmap_find(fr_dataset_users(fr_data_train(b)), 103), 1);
    cr_assert_eq(fr_idmap_find(fr_dataset_users(fr_data_train(b)), 1), -1); /* an index is not a raw id */
    fr_data_free(b);
    /* The .rating files alone, as a file and its test file, and one file by itself. */
    char tr[4300], te[4300];
    snprintf(tr, sizeof tr, "%s/train.rating", out);
    snprintf(te, sizeof te, "%s/test.rating", out);
    s.data = tr;
    s.test = te;
    s.explicit_ratings = true;
    cr_assert_eq(fr_data_load(&b, &s), FR_OK, "%s", fr_errmsg());
    assert_same_dataset(fr_data_train(a), fr_data_train(b));
    fr_data_free(b);
    fr_dataset *one = NULL;
    cr_assert_eq(fr_dataset_load(&one, te, NULL, NULL), FR_OK, "%s", fr_errmsg());
    assert_same_raw(fr_data_test(a), one);
    fr_dataset_free(one);
    /* The data split again (a split of a split) keeps the raw ids and the first source. */
    fr_source_default(&s);
    s.data = tr;
    cr_assert_eq(fr_data_load(&b, &s), FR_OK, "%s", fr_errmsg());
    assert_same_raw(fr_data_train(b), fr_data_train(b));
    char out2[4300];
    snprintf(out2, sizeof out2, "%s/again", dir);
    cr_assert_eq(fr_dataset_write_ncf(out2, fr_data_train(b), fr_data_test(b), NULL), FR_OK, "%s", fr_errmsg());
    fr_data_free(b);
    fr_source_default(&s);
    s.data = out2;
    cr_assert_eq(fr_data_load(&b, &s), FR_OK, "%s", fr_errmsg());
    cr_assert_str_eq(fr_dataset_source(fr_data_train(b)), real);
    cr_assert_eq(fr_idmap_raw(fr_dataset_users(fr_data_train(b)), 0), 100);
    fr_data_free(b);
    fr_data_free(a);
    free(real);
    tu_rmtree(dir);
    free(dir);
    free(path);
}

/* recommend's titles: none beside the NCF split, so those beside the file it came from. */
Test(source, ncf_split_finds_metadata_of_its_source) {
    char *dir = tu_tmpdir(), *path = write_ratings(dir, "r.tsv");
    free(tu_write(dir, "u.item", "7|Toy Story (1995)|01-Jan-1995||http://x|0|0|0|1|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0\n"));
    fr_source s;
    fr_source_default(&s);
    s.data = path;
    fr_data *a = NULL, *b = NULL;
    cr_assert_eq(fr_data_load(&a, &s), FR_OK, "%s", fr_errmsg());
    char out[4200];
    snprintf(out, sizeof out, "%s/elsewhere/split", dir);
    cr_assert_eq(fr_dataset_write_ncf(out, fr_data_train(a), fr_data_test(a), fr_data_negatives(a)), FR_OK);
    s.data = out;
    cr_assert_eq(fr_data_load(&b, &s), FR_OK, "%s", fr_errmsg());
    cr_assert_eq(fr_data_load_meta(b), FR_OK, "%s", fr_errmsg());
    const fr_dataset *tr = fr_data_train(b);
    int64_t i7 = fr_idmap_find(fr_dataset_items(tr), 7);
    cr_assert_geq(i7, 0);
    cr_assert_not_null(fr_dataset_meta(tr));
    cr_assert_str_eq(fr_meta_item_title(fr_dataset_meta(tr), (uint32_t)i7), "Toy Story (1995)");
    fr_data_free(b);
    /* the source moved away: no titles, and no error */
    char moved[4300];
    snprintf(moved, sizeof moved, "%s/u.item", dir);
    cr_assert_eq(unlink(moved), 0);
    cr_assert_eq(fr_data_load(&b, &s), FR_OK);
    cr_assert_eq(fr_data_load_meta(b), FR_OK);
    cr_assert_null(fr_dataset_meta(fr_data_train(b)));
    fr_data_free(b);
    fr_data_free(a);
    tu_rmtree(dir);
    free(dir);
    free(path);
}

/* Broken id maps are errors naming the file (and line), never ids silently wrong. */
Test(source, bad_id_maps) {
    static const struct { const char *users, *items, *msg; fr_err e; } cases[] = {
        {"0\t100\n1\t103\n2\t106\n3\t109\n", NULL, "items.map is missing; expected both id maps or neither", FR_ERR_IO},
        {"0\t100\n2\t103\n", "", "users.map:2: index \"2\"; expected 1 (indices 0, 1, 2... in order", FR_ERR_PARSE},
        {"0\t100\n1\tabc\n", "", "users.map:2: raw user id \"abc\" is not a number", FR_ERR_PARSE},
        {"# x\n0\t100\n1\n", "", "users.map:3: \"1\"; expected \"index<TAB>raw user id\"", FR_ERR_PARSE},
        {"0\t100\n1\t7\n2\t100\n3\t1\n", "", "users.map: index 2 repeats the raw user id of an earlier index", FR_ERR_PARSE},
        {"0\t100\n1\t103\n", "", "user index 2, but ", FR_ERR_RANGE},
        {"# only comments\n", "", "users.map: no ids", FR_ERR_EMPTY},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        char *dir = ncf_dir(false);
        free(tu_write(dir, "users.map", cases[c].users));
        if (cases[c].items) {
            char items[256] = "";
            for (int i = 0; i < 6; i++) sprintf(items + strlen(items), "%d\t%d\n", i, 50 + i);
            free(tu_write(dir, "items.map", cases[c].items[0] ? cases[c].items : items));
        }
        fr_source s;
        fr_source_default(&s);
        s.data = dir;
        fr_data *d = (fr_data *)1;
        cr_assert_eq(fr_data_load(&d, &s), cases[c].e, "case %zu: %s", c, fr_errmsg());
        cr_assert_null(d);
        cr_assert(strstr(fr_errmsg(), cases[c].msg), "case %zu: %s", c, fr_errmsg());
        tu_rmtree(dir);
        free(dir);
    }
    /* a good pair: raw ids, and test.negative still names indices */
    char *dir = ncf_dir(true);
    free(tu_write(dir, "users.map", "# fedrec id map\n0\t100\n1\t103\n2\t106\n3\t109\n"));
    char items[256] = "";
    for (int i = 0; i < 6; i++) sprintf(items + strlen(items), "%d\t%d\n", i, 50 - i);
    free(tu_write(dir, "items.map", items));
    fr_source s;
    fr_source_default(&s);
    s.data = dir;
    fr_data *d = NULL;
    cr_assert_eq(fr_data_load(&d, &s), FR_OK, "%s", fr_errmsg());
    const fr_dataset *tr = fr_data_train(d);
    cr_assert_eq(fr_idmap_raw(fr_dataset_users(tr), 3), 109);
    cr_assert_eq(fr_idmap_raw(fr_dataset_items(tr), 5), 45); /* the maps' order, not raw-id order */
    cr_assert_eq(fr_idmap_find(fr_dataset_items(tr), 45), 5);
    char *rp = realpath(dir, NULL), want[4300];
    snprintf(want, sizeof want, "%s/train.rating", rp);
    cr_assert_str_eq(fr_dataset_source(tr), want); /* the maps name no source: the file read */
    free(rp);
    const uint32_t *it;
    cr_assert_eq(fr_negatives_user(fr_data_negatives(d), 1, &it), 2); /* "(1,3)\t0\t4" */
    cr_assert_eq(it[0], 0);
    cr_assert_eq(it[1], 4);
    cr_assert(fr_dataset_has(tr, 0, 1)); /* "0\t1\t4\t2": user index 0, item index 1 */
    fr_data_free(d);
    tu_rmtree(dir);
    free(dir);
}

/* ------------------------------------------------------------ bad inputs */

static fr_err load_fails(const fr_source *s) {
    fr_data *d = (fr_data *)1;
    fr_err e = fr_data_load(&d, s);
    cr_assert_neq(e, FR_OK);
    cr_assert_null(d);
    return e;
}

static void assert_msg(const char *a, const char *b) {
    const char *m = fr_errmsg();
    cr_assert(strstr(m, a) && (!b || strstr(m, b)), "message: %s", m);
}

Test(source, bad_inputs_name_the_file) {
    char *dir = tu_tmpdir(), *nc = ncf_dir(false);
    char path[4200];
    fr_source s;
    fr_source_default(&s);
    snprintf(path, sizeof path, "%s/nosuch.tsv", dir);
    s.data = path;
    cr_assert_eq(load_fails(&s), FR_ERR_IO);
    assert_msg(path, "cannot open");
    /* An NCF directory without train.rating. */
    s.data = dir;
    cr_assert_eq(load_fails(&s), FR_ERR_IO);
    snprintf(path, sizeof path, "%s/train.rating", dir);
    assert_msg(path, "cannot open");
    /* A malformed line. */
    char *bad = tu_write(dir, "bad.tsv", "1\t2\t3\t4\n1\tx\t3\t4\n");
    s.data = bad;
    cr_assert_eq(load_fails(&s), FR_ERR_PARSE);
    assert_msg("bad.tsv:2: item id \"x\" is not a number", NULL);
    /* A given test file that is missing. */
    char *good = write_ratings(dir, "r.tsv");
    snprintf(path, sizeof path, "%s/nosuch.test", dir);
    s.data = good;
    s.test = path;
    cr_assert_eq(load_fails(&s), FR_ERR_IO);
    assert_msg(path, NULL);
    /* Negatives naming a user the data does not have. */
    char *neg = tu_write(dir, "x.negative", "(999,7)\t8\n");
    s.test = NULL;
    s.negatives = neg;
    cr_assert_eq(load_fails(&s), FR_ERR_RANGE);
    assert_msg("x.negative:1: user 999 is not in the dataset", NULL);
    /* The NCF directory's own negatives, broken. */
    free(tu_write(nc, "test.negative", "(0,2)\t3\n0,1\n"));
    fr_source_default(&s);
    s.data = nc;
    cr_assert_eq(load_fails(&s), FR_ERR_PARSE);
    assert_msg("test.negative:2: line starts", "expected \"(user,item)\"");
    /* A split that cannot be made says what was being split. */
    char *one = tu_write(dir, "notime.tsv", "1\t2\t3\n2\t3\t4\n");
    fr_source_default(&s);
    s.data = one;
    s.split = FR_SPLIT_TEMPORAL;
    s.split_ratio = 0.5;
    cr_assert_eq(load_fails(&s), FR_ERR_INVALID);
    assert_msg("splitting ", "notime.tsv (split temporal:0.5): split: a temporal split needs timestamps");
    /* Every user with one interaction: LOO has nothing to hold out (it gave an empty test
     * set); a catalogue the test users have seen whole gives no negatives. */
    char *single = tu_write(dir, "single.tsv", "1\t2\t3\t4\n2\t3\t4\t5\n3\t2\t1\t1\n");
    fr_source_default(&s);
    s.data = single;
    cr_assert_eq(load_fails(&s), FR_ERR_EMPTY);
    assert_msg("splitting ", "single.tsv (split loo): split loo: each of the 3 users has a single interaction");
    char *whole = tu_write(dir, "whole.tsv", "1\t2\t3\t4\n1\t3\t4\t5\n2\t2\t1\t1\n2\t3\t1\t2\n");
    s.data = whole;
    cr_assert_eq(load_fails(&s), FR_ERR_EMPTY);
    assert_msg("sampling evaluation negatives for ", "whole.tsv (split loo): negatives: 99 per test user asked, but none");
    s.explicit_ratings = true; /* a rating model needs no negatives */
    fr_data *ok = NULL;
    cr_assert_eq(fr_data_load(&ok, &s), FR_OK, "%s", fr_errmsg());
    fr_data_free(ok);
    free(single);
    free(whole);
    tu_rmtree(dir);
    tu_rmtree(nc);
    free(dir);
    free(nc);
    free(bad);
    free(good);
    free(neg);
    free(one);
}

/* ------------------------------------------------------------ out of memory */

static void sweep(const fr_source *s, const char *what) {
    for (long nth = 1;; nth++) {
        fr_data *d = (fr_data *)1;
        fr_test_fail_alloc(nth, true);
        fr_err e = fr_data_load(&d, s);
        fr_test_fail_alloc(0, false);
        if (e == FR_OK) {
            cr_assert_gt(nth, 3, "%s", what);
            fr_data_free(d);
            return;
        }
        cr_assert_eq(e, FR_ERR_NOMEM, "%s, allocation %ld: %s", what, nth, fr_errmsg());
        cr_assert_null(d);
    }
}

Test(source, allocation_failure_sweep) {
    char *nc = ncf_dir(true), *dir = tu_tmpdir(), *path = write_ratings(dir, "r.tsv");
    char *te = tu_write(dir, "t.tsv", "100\t7\t4\t1\n103\t8\t3\t1\n");
    char *neg = tu_write(dir, "n.negative", "(100,7)\t8\t9\n");
    fr_source s;
    fr_source_default(&s);
    s.data = nc;
    sweep(&s, "NCF directory");
    char *nm = ncf_dir(true);
    free(tu_write(nm, "users.map", "# source: /nowhere/u.data\n0\t100\n1\t103\n2\t106\n3\t109\n"));
    free(tu_write(nm, "items.map", "0\t9\n1\t8\n2\t7\n3\t6\n4\t5\n5\t4\n"));
    s.data = nm;
    sweep(&s, "NCF directory with id maps");
    tu_rmtree(nm);
    free(nm);
    fr_source_default(&s);
    s.data = path;
    s.split = FR_SPLIT_RATIO;
    s.split_ratio = 0.6;
    sweep(&s, "file split, sampled negatives");
    s.split = FR_SPLIT_TEMPORAL;
    s.negatives = neg;
    sweep(&s, "file split, negatives file");
    fr_source_default(&s);
    s.data = path;
    s.test = te;
    s.negatives = neg;
    sweep(&s, "file and test");
    tu_rmtree(nc);
    tu_rmtree(dir);
    free(nc);
    free(dir);
    free(path);
    free(te);
    free(neg);
}

/* A dataset in memory (fr_dataset_from_arrays, as the Python package builds one from a data
 * frame) split by a source: the same train, test and negatives as fr_data_load gives for a
 * file of the same rows, for every split, explicit or not; bad sources are refused. */
Test(source, dataset_in_memory_as_the_file) {
    char *dir = tu_tmpdir(), *path = write_ratings(dir, "r.tsv");
    int64_t users[200], items[200], times[200];
    float ratings[200];
    size_t n = 0;
    for (int u = 0; u < 12; u++) /* the rows of write_ratings, in reverse (order does not matter) */
        for (int k = 0; k < 6 + u % 4; k++, n++) {
            users[n] = 100 + 3 * u;
            items[n] = 7 + (u * 5 + k * 3) % 30;
            ratings[n] = (float)(1 + (u + k) % 5);
            times[n] = 1000 + 10 * k + u;
        }
    fr_dataset *all = NULL;
    cr_assert_eq(fr_dataset_from_arrays(&all, n, users, items, ratings, times), FR_OK);
    static const char *const splits[3] = {"loo", "ratio:0.5", "temporal-user:0.7"};
    for (int k = 0; k < 3; k++)
        for (int expl = 0; expl < 2; expl++) {
            fr_source s;
            fr_source_default(&s);
            s.seed = 5;
            s.explicit_ratings = expl;
            cr_assert_eq(fr_source_parse_split(splits[k], &s.split, &s.split_ratio), FR_OK);
            fr_data *mem = NULL, *file = NULL;
            cr_assert_eq(fr_data_from_dataset(&mem, all, &s, "frame"), FR_OK, "%s", fr_errmsg());
            s.data = path;
            cr_assert_eq(fr_data_load(&file, &s), FR_OK, "%s", fr_errmsg());
            assert_same_dataset(fr_data_train(mem), fr_data_train(file));
            assert_same_dataset(fr_data_test(mem), fr_data_test(file));
            cr_assert_eq(!fr_data_negatives(mem), !!expl);
            if (!expl) assert_same_negatives(fr_data_negatives(mem), fr_data_negatives(file));
            char want[64];
            snprintf(want, sizeof want, "frame (split %s)", splits[k]);
            cr_assert_str_eq(fr_data_describe(mem), want);
            cr_assert_not(fr_data_is_synthetic(mem));
            fr_data_free(mem);
            fr_data_free(file);
        }
    fr_source s;
    fr_source_default(&s);
    s.data = path;
    fr_data *d = (fr_data *)1;
    cr_assert_eq(fr_data_from_dataset(&d, all, &s, NULL), FR_ERR_INVALID);
    cr_assert_null(d);
    cr_assert(strstr(fr_errmsg(), "no data or test file"), "%s", fr_errmsg());
    s.data = NULL;
    s.split = FR_SPLIT_RATIO;
    s.split_ratio = 1.5;
    cr_assert_eq(fr_data_from_dataset(&d, all, &s, NULL), FR_ERR_INVALID);
    cr_assert_eq(fr_data_from_dataset(&d, NULL, &s, NULL), FR_ERR_INVALID);
    /* no timestamps: loo holds out a random interaction, and says so */
    fr_dataset *nt = NULL;
    cr_assert_eq(fr_dataset_from_arrays(&nt, n, users, items, ratings, NULL), FR_OK);
    fr_source_default(&s);
    cr_assert_eq(fr_data_from_dataset(&d, nt, &s, NULL), FR_OK, "%s", fr_errmsg());
    cr_assert_str_eq(fr_data_describe(d), "data in memory (split loo, random: no timestamps)");
    fr_data_free(d);
    fr_dataset_free(nt);
    fr_dataset_free(all);
    tu_rmtree(dir);
    free(dir);
    free(path);
}
