/* fedrec data info | split | generate. Every value is range-checked by the parser
 * (args.h); a config the library refuses (fr_gen_opts_check) is a usage error too. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "cli/features.h"
#include "cli/load_opts.h"

int cli_parse_format(const char *cmd, const char *s, fr_format *out) {
    static const struct { const char *name; fr_format f; } names[] = {
        {"auto", FR_FORMAT_AUTO}, {"ml100k", FR_FORMAT_ML100K}, {"ml1m", FR_FORMAT_ML1M},
        {"csv", FR_FORMAT_CSV},   {"ncf", FR_FORMAT_NCF},       {"delimited", FR_FORMAT_DELIMITED},
    };
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (!strcmp(s, names[i].name)) { *out = names[i].f; return 0; }
    fprintf(stderr, "fedrec %s: --format: expected auto, ml100k, ml1m, csv, ncf or delimited, got '%s'\n", cmd, s);
    return 2;
}

const char *cli_format_name(fr_format f) {
    switch (f) {
    case FR_FORMAT_AUTO: return "auto";
    case FR_FORMAT_ML100K: return "ml100k";
    case FR_FORMAT_ML1M: return "ml1m";
    case FR_FORMAT_CSV: return "csv";
    case FR_FORMAT_NCF: return "ncf";
    case FR_FORMAT_DELIMITED: return "delimited";
    }
    return "?";
}

static void fmt_time(int64_t t, char *buf, size_t n) {
    time_t tt = (time_t)t;
    struct tm tm;
    if (gmtime_r(&tt, &tm)) strftime(buf, n, "%Y-%m-%d", &tm);
    else snprintf(buf, n, "%" PRId64, t);
}

/* The histogram of data info: a bar per rating value when the data has at most 21 (a 1-5
 * or 1-10 scale, half stars), else 10 equal ranges from the least to the largest value
 * (counts, weights, fine-grained scores). Every row is in one bar. */
#define HIST_VALUES 21
typedef struct {
    int n;                      /* bars */
    char label[HIST_VALUES][48];
    uint64_t count[HIST_VALUES];
} histogram;

static void histogram_of(const fr_dataset *d, double lo, double hi, histogram *h) {
    float v[HIST_VALUES];
    int nv = 0;
    bool many = false;
    memset(h, 0, sizeof *h);
    uint32_t nu = fr_dataset_n_users(d);
    for (uint32_t u = 0; u < nu && !many; u++) {
        const float *r = NULL;
        size_t n = fr_dataset_user(d, u, NULL, &r, NULL);
        for (size_t k = 0; k < n && !many; k++) {
            int j = 0;
            while (j < nv && v[j] != r[k]) j++;
            if (j == nv) {
                if (nv == HIST_VALUES) { many = true; break; }
                v[nv++] = r[k];
            }
            h->count[j]++;
        }
    }
    if (!many) { /* the values in increasing order, their counts with them */
        for (int a = 1; a < nv; a++)
            for (int b = a; b > 0 && v[b] < v[b - 1]; b--) {
                float t = v[b]; v[b] = v[b - 1]; v[b - 1] = t;
                uint64_t c = h->count[b]; h->count[b] = h->count[b - 1]; h->count[b - 1] = c;
            }
        h->n = nv;
        for (int j = 0; j < nv; j++) snprintf(h->label[j], sizeof h->label[j], "%g", (double)v[j]);
        return;
    }
    h->n = 10;
    memset(h->count, 0, sizeof h->count);
    double w = (hi - lo) / 10;
    for (int j = 0; j < 10; j++)
        snprintf(h->label[j], sizeof h->label[j], "[%.4g,%.4g%c", lo + j * w, j == 9 ? hi : lo + (j + 1) * w,
                 j == 9 ? ']' : ')');
    for (uint32_t u = 0; u < nu; u++) {
        const float *r = NULL;
        size_t n = fr_dataset_user(d, u, NULL, &r, NULL);
        for (size_t k = 0; k < n; k++) {
            int j = w > 0 ? (int)(((double)r[k] - lo) / w) : 0;
            h->count[j < 0 ? 0 : j > 9 ? 9 : j]++;
        }
    }
}

/* The test part of a split directory, as `train --data DIR` loads it. */
typedef struct split_test {
    bool dir;                 /* data info was given a split directory */
    uint64_t test;            /* its test interactions */
    const char *test_name;    /* test.rating, or test */
    bool has_neg;             /* a negatives file */
    uint32_t neg_min, neg_max; /* negatives per test user */
} split_test;

static fr_err split_test_of(const char *dir, const fr_load_opts *o, split_test *sp) {
    fr_source src;
    fr_source_default(&src);
    src.data = dir;
    src.load = *o;
    fr_data *data = NULL;
    fr_err e = fr_data_load(&data, &src);
    if (e) return e;
    char p[4096];
    int w = snprintf(p, sizeof p, "%s/test.rating", dir);
    sp->dir = true;
    sp->test_name = w > 0 && (size_t)w < sizeof p && access(p, R_OK) == 0 ? "test.rating" : "test";
    const fr_dataset *te = fr_data_test(data);
    sp->test = fr_dataset_n_interactions(te);
    const fr_negatives *ng = fr_data_negatives(data);
    sp->has_neg = ng != NULL;
    sp->neg_min = UINT32_MAX;
    for (uint32_t u = 0; ng && u < fr_dataset_n_users(te); u++) {
        if (!fr_dataset_user(te, u, NULL, NULL, NULL)) continue;
        const uint32_t *items;
        uint32_t k = u < fr_negatives_n_users(ng) ? (uint32_t)fr_negatives_user(ng, u, &items) : 0;
        if (k < sp->neg_min) sp->neg_min = k;
        if (k > sp->neg_max) sp->neg_max = k;
    }
    if (sp->neg_min == UINT32_MAX) sp->neg_min = 0;
    fr_data_free(data);
    return FR_OK;
}

static int data_info(int argc, char **argv) {
    cli_load_opts lo = {0};
    bool json = false;
    arg_spec specs[] = {
        CLI_LOAD_SPECS(&lo),
        ARG_SPEC_FLAG("json", &json, "   print one JSON object"),
        ARG_SPEC_END,
    };
    const char *pos[1];
    int npos;
    const char *usage = "fedrec data info FILE|DIR [--format F] [--sep D] [--header|--no-header] [--user-col C] "
                        "[--item-col C] [--rating-col C] [--time-col C] [--implicit|--implicit-weight] "
                        "[--skip-bad-lines] [--string-ids] [--json]";
    int rc = args_parse("data info", argc, argv, specs, pos, 1, &npos, usage);
    if (rc) return rc < 0 ? 0 : rc;
    if (npos != 1) { fprintf(stderr, "usage: %s\n", usage); return 2; }
    fr_load_opts o;
    fr_load_opts_default(&o);
    if ((rc = cli_load_opts_apply("data info", &lo, specs, &o))) return rc;
    if (cli_check_input("data info", "FILE", pos[0])) return 1;
    /* a split directory (what train --data DIR reads): its training part, and the test's size */
    const char *path = pos[0];
    char trainp[4096];
    split_test sp = {0};
    struct stat sb;
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        int w = snprintf(trainp, sizeof trainp, "%s/train.rating", path);
        if (w < 0 || (size_t)w >= sizeof trainp || access(trainp, R_OK) != 0) {
            fprintf(stderr, "fedrec data info: %s: is a directory without train.rating; expected a ratings file or a "
                            "split directory (train.rating, test.rating, test.negative: fedrec data split --out DIR)\n",
                    path);
            return 1;
        }
        fr_err e = split_test_of(path, &o, &sp);
        if (e) return cli_fail(e, "data info");
        path = trainp;
    }
    fr_load_stats st;
    fr_dataset *d = NULL;
    fr_err e = fr_dataset_load(&d, path, &o, &st);
    if (e) return cli_fail(e, "data info");
    fr_dataset_info in;
    fr_dataset_info_compute(d, &in);
    char t0[32], t1[32];
    fmt_time(in.time_min, t0, sizeof t0);
    fmt_time(in.time_max, t1, sizeof t1);
    histogram h;
    histogram_of(d, in.rating_min, in.rating_max, &h);
    if (json) {
        printf("{\"file\":");
        cli_json_str(stdout, path);
        printf(",\"format\":\"%s\",\"implicit\":%s,\"weights\":%s,\"users\":%u,\"items\":%u,\"interactions\":%" PRIu64
               ",\"density\":%.6g,\"rating_min\":%g,\"rating_max\":%g,\"rating_mean\":%.6g,\"skipped_lines\":%" PRIu64
               ",\"duplicates\":%" PRIu64 ",\"per_user\":[%g,%g,%g,%g,%g],\"per_item\":[%g,%g,%g,%g,%g],",
               cli_format_name(st.format), st.implicit ? "true" : "false", st.weights ? "true" : "false", in.users, in.items, in.interactions, in.density, in.rating_min,
               in.rating_max, in.rating_mean, st.skipped, in.duplicates, in.per_user_q[0], in.per_user_q[1],
               in.per_user_q[2],
               in.per_user_q[3], in.per_user_q[4], in.per_item_q[0], in.per_item_q[1], in.per_item_q[2],
               in.per_item_q[3], in.per_item_q[4]);
        if (fr_dataset_has_time(d))
            printf("\"time_min\":%" PRId64 ",\"time_max\":%" PRId64 ",", in.time_min, in.time_max);
        else printf("\"time_min\":null,\"time_max\":null,");
        printf("\"histogram\":{");
        for (int b = 0, first = 1; b < h.n; b++)
            if (h.count[b]) {
                printf("%s\"%s\":%" PRIu64, first ? "" : ",", h.label[b], h.count[b]);
                first = 0;
            }
        printf("},\"columns\":");
        cli_json_str(stdout, st.columns);
        if (sp.dir)
            printf(",\"split_dir\":true,\"test_interactions\":%" PRIu64 ",\"test_negatives_min\":%u,"
                   "\"test_negatives_max\":%u", sp.test, sp.neg_min, sp.neg_max);
        printf("}\n");
    } else {
        if (sp.dir) printf("file          %s (%s; the training part of the split in %s)\n", path,
                           cli_format_name(st.format), pos[0]);
        else printf("file          %s (%s)\n", path, cli_format_name(st.format));
        if (st.columns[0]) printf("columns       %s\n", st.columns);
        printf("users         %u\nitems         %u\ninteractions  %" PRIu64 "\n", in.users, in.items,
               in.interactions);
        printf("density       %.4f%%\n", 100 * in.density);
        if (sp.dir) {
            printf("test          %" PRIu64 " interaction%s (%s), ", sp.test, cli_s(sp.test), sp.test_name);
            if (!sp.has_neg) printf("no negatives file: ranked on the whole catalogue\n");
            else if (sp.neg_min == sp.neg_max)
                printf("%u negative%s a user (test.negative)\n", sp.neg_min, cli_s(sp.neg_min));
            else printf("%u-%u negatives a user (test.negative)\n", sp.neg_min, sp.neg_max);
        }
        if (fr_idmap_is_str(fr_dataset_users(d)))
            printf("ids           strings, numbered in order of first appearance\n");
        if (st.skipped)
            printf("skipped       %" PRIu64 " bad line%s (first at line %" PRIu64 ")\n", st.skipped, cli_s(st.skipped),
                   st.first_bad_line);
        if (in.duplicates)
            printf("duplicates    %" PRIu64 " repeated (user, item) pair%s dropped (kept the latest)\n", in.duplicates,
                   cli_s(in.duplicates));
        if (st.implicit)
            printf("feedback      implicit: each row a positive%s\n",
                   st.weights ? "; the count/weight column is kept as the rating field" : ", rating 1");
        printf("%s min %g, max %g, mean %.4f\n", st.weights ? "weights      " : "ratings      ", in.rating_min,
               in.rating_max, in.rating_mean);
        printf("per user      min %g, q25 %g, median %g, q75 %g, max %g\n", in.per_user_q[0], in.per_user_q[1],
               in.per_user_q[2], in.per_user_q[3], in.per_user_q[4]);
        printf("per item      min %g, q25 %g, median %g, q75 %g, max %g\n", in.per_item_q[0], in.per_item_q[1],
               in.per_item_q[2], in.per_item_q[3], in.per_item_q[4]);
        /* 1e11 s is the year 5138: such times are most likely milliseconds (the order, all
         * that splits and sequences use, is the same either way) */
        if (fr_dataset_has_time(d))
            printf("time span     %s .. %s%s\n", t0, t1,
                   in.time_min > 100000000000LL ? " (read as seconds; these look like milliseconds since 1970: the "
                                                  "order is the same)" : "");
        printf("%s histogram:\n", st.weights ? "weight" : "rating");
        uint64_t mx = 1;
        int lw = 4;
        for (int b = 0; b < h.n; b++) {
            if (h.count[b] > mx) mx = h.count[b];
            if ((int)strlen(h.label[b]) > lw) lw = (int)strlen(h.label[b]);
        }
        for (int b = 0; b < h.n; b++) {
            if (!h.count[b]) continue;
            int bar = (int)(40.0 * (double)h.count[b] / (double)mx + 0.5);
            printf("  %-*s %10" PRIu64 "  %.*s\n", lw, h.label[b], h.count[b], bar,
                   "########################################");
        }
    }
    fr_dataset_free(d);
    return 0;
}

static int data_split(int argc, char **argv) {
    bool loo = false;
    cli_load_opts lo = {0};
    double temporal = 0, temporal_user = 0, ratio = 0;
    uint64_t negatives = 99, seed = 1;
    const char *out = NULL;
    arg_spec specs[] = {
        ARG_SPEC_FLAG("loo", &loo, "   leave-one-out: each user's latest interaction is test (without "
                      "timestamps a random one)"),
        ARG_SPEC_REAL("temporal", &temporal, 0, 1, ARG_MIN_OPEN | ARG_MAX_OPEN, NULL,
                      "R  global time cut: earliest fraction R is train"),
        ARG_SPEC_REAL("temporal-user", &temporal_user, 0, 1, ARG_MIN_OPEN | ARG_MAX_OPEN, NULL,
                      "R  per user: the latest round((1-R)*n) of each user's rows are test"),
        ARG_SPEC_REAL("ratio", &ratio, 0, 1, ARG_MIN_OPEN | ARG_MAX_OPEN, NULL,
                      "R  per user: a random round((1-R)*n) of each user's rows are test"),
        ARG_SPEC_INT("negatives", &negatives, 0, UINT32_MAX, "0 = none", "N  evaluation negatives per user (default 99)"),
        ARG_SPEC_INT("seed", &seed, 0, UINT64_MAX, NULL, "S  random seed (default 1)"),
        ARG_SPEC_STR("out", &out, "DIR  output directory (NCF layout)"),
        CLI_LOAD_SPECS(&lo),
        ARG_SPEC_END,
    };
    const char *pos[1];
    int npos;
    const char *usage = "fedrec data split FILE (--loo | --temporal R | --temporal-user R | --ratio R) [--negatives N] "
                        "[--seed S] --out DIR";
    int rc = args_parse("data split", argc, argv, specs, pos, 1, &npos, usage);
    if (rc) return rc < 0 ? 0 : rc;
    bool by_time = args_seen(specs, &temporal), by_ratio = args_seen(specs, &ratio);
    bool by_user_time = args_seen(specs, &temporal_user);
    int kinds = loo + by_time + by_ratio + by_user_time;
    if (npos != 1 || !out || kinds > 1) { fprintf(stderr, "usage: %s\n", usage); return 2; }
    fr_split_kind kind = FR_SPLIT_LOO;
    double r = 0;
    if (by_time) { kind = FR_SPLIT_TEMPORAL; r = temporal; }
    if (by_ratio) { kind = FR_SPLIT_RATIO; r = ratio; }
    if (by_user_time) { kind = FR_SPLIT_TEMPORAL_USER; r = temporal_user; }
    fr_load_opts o;
    fr_load_opts_default(&o);
    if ((rc = cli_load_opts_apply("data split", &lo, specs, &o))) return rc;
    if (cli_check_input("data split", "FILE", pos[0])) return 1;
    fr_dataset *d = NULL, *train = NULL, *test = NULL;
    fr_negatives *negs = NULL;
    fr_load_stats st;
    fr_err e = fr_dataset_load(&d, pos[0], &o, &st);
    if (e) return cli_fail(e, "data split");
    e = fr_dataset_split(d, kind, r, seed, &train, &test);
    if (!e && negatives) e = fr_negatives_sample(&negs, d, test, (uint32_t)negatives, seed);
    if (!e) e = fr_dataset_write_ncf(out, train, test, negs);
    if (!e)
        printf("wrote %s/train.rating (%" PRIu64 "), test.rating (%" PRIu64 ")%s; raw ids in users.map, items.map\n",
               out, fr_dataset_n_interactions(train), fr_dataset_n_interactions(test), negs ? ", test.negative" : "");
    if (!e && st.implicit) /* NCF files have no room to say so */
        fprintf(stderr, "fedrec data split: note: the data is implicit feedback; the rating column of the .rating "
                "files holds %s: give --%s when you train on %s\n", st.weights ? "its weights (counts)" : "1s",
                st.weights ? "implicit-weight" : "implicit", out);
    if (!e && kind == FR_SPLIT_LOO && !fr_dataset_has_time_order(d))
        fprintf(stderr, "fedrec data split: note: %s has no timestamps%s, so leave-one-out held out a random "
                "interaction per user (seed %" PRIu64 "), not the latest\n", pos[0],
                fr_dataset_has_time(d) ? " (all are equal)" : "", seed);
    uint32_t fewest = 0, shortn = !e && negs ? fr_negatives_short(negs, &fewest) : 0;
    if (shortn)
        fprintf(stderr, "fedrec data split: note: %u test user%s fewer than %" PRIu64 " item%s %s never touched; %s "
                "got all of %s, as few as %u\n", shortn, shortn == 1 ? " has" : "s have", negatives, cli_s(negatives),
                shortn == 1 ? "it" : "they", shortn == 1 ? "it" : "they", shortn == 1 ? "its" : "theirs", fewest);
    fr_negatives_free(negs);
    fr_dataset_free(train);
    fr_dataset_free(test);
    fr_dataset_free(d);
    return e ? cli_fail(e, "data split") : 0;
}

static int data_generate(int argc, char **argv) {
    fr_gen_opts g;
    fr_gen_opts_default(&g);
    uint64_t users = g.users, items = g.items, inter = g.interactions, seed = g.seed, dim = g.dim;
    const char *out = NULL;
    arg_spec specs[] = { /* the ranges of fr_gen_opts_check */
        ARG_SPEC_INT("users", &users, 1, INT32_MAX, NULL, "N  users"),
        ARG_SPEC_INT("items", &items, 1, INT32_MAX, NULL, "M  items"),
        ARG_SPEC_INT("interactions", &inter, 1, UINT64_MAX, NULL, "K  interactions in all (at most users x items; every user gets at least min(5, items), so at least users x that)"),
        ARG_SPEC_REAL("item-zipf", &g.item_zipf, 0, 10, 0, NULL, "S  item popularity exponent"),
        ARG_SPEC_REAL("user-zipf", &g.user_zipf, 0, 10, 0, NULL, "S  user activity exponent"),
        ARG_SPEC_INT("dim", &dim, 1, 1024, NULL, "D  latent factors behind the ratings"),
        ARG_SPEC_REAL("noise", &g.noise, 0, 100, 0, NULL, "X  rating noise"),
        ARG_SPEC_INT("seed", &seed, 0, UINT64_MAX, NULL, "S  random seed"),
        ARG_SPEC_STR("out", &out, "FILE  output ratings file (u.data format: user item rating time)"),
        ARG_SPEC_END,
    };
    const char *pos[1];
    int npos;
    const char *usage = "fedrec data generate --users N --items M --interactions K [--seed S] --out FILE";
    int rc = args_parse("data generate", argc, argv, specs, pos, 0, &npos, usage);
    if (rc) return rc < 0 ? 0 : rc;
    if (!out) { fprintf(stderr, "usage: %s\n", usage); return 2; }
    g.users = (uint32_t)users;
    g.items = (uint32_t)items;
    g.interactions = inter;
    g.seed = seed;
    g.dim = (uint32_t)dim;
    if (fr_gen_opts_check(&g)) { /* what the options ask for together (interactions > users x items) */
        fprintf(stderr, "fedrec data generate: %s\n", fr_errmsg());
        return 2;
    }
    if (cli_check_output("data generate", "--out", out, false)) return 1;
    fr_dataset *d = NULL;
    fr_err e = fr_dataset_generate(&d, &g);
    if (!e) e = fr_dataset_write_tsv(d, out);
    if (!e)
        printf("wrote %s: %u user%s, %u item%s, %" PRIu64 " interaction%s\n", out, fr_dataset_n_users(d),
               cli_s(fr_dataset_n_users(d)), fr_dataset_n_items(d), cli_s(fr_dataset_n_items(d)),
               fr_dataset_n_interactions(d), cli_s(fr_dataset_n_interactions(d)));
    if (!e && fr_dataset_n_interactions(d) > inter) /* the floor per user, not the count asked */
        fprintf(stderr, "fedrec data generate: note: %" PRIu64 " interactions, not the %" PRIu64 " asked: every user "
                "gets at least min(5, items) = %u\n", fr_dataset_n_interactions(d), inter,
                (unsigned)(items < 5 ? items : 5));
    fr_dataset_free(d);
    return e ? cli_fail(e, "data generate") : 0;
}

/* fedrec data shard: the data a `fedrec train` run would load (same options), written as
 * one directory per client for a networked federation (fr_dataset_write_shards). */
static int data_shard(int argc, char **argv) {
    cli_load_opts lo = {0};
    const char *data = NULL, *test = NULL, *negatives = NULL, *split = NULL, *out = NULL;
    const char *user_features = NULL, *item_features = NULL;
    uint64_t seed = 1;
    arg_spec specs[] = {
        ARG_SPEC_STR("user-features", &user_features, "FILE  users' side features (as train's), each written to its "
                     "client's cID/user_features.txt"),
        ARG_SPEC_STR("item-features", &item_features, "FILE  items' side features (as train's), in DIR/features.txt"),
        ARG_SPEC_STR("data", &data, "PATH  ratings file or NCF directory (default: built-in synthetic data)"),
        ARG_SPEC_STR("test", &test, "PATH  given test file (PATH is then the training file)"),
        ARG_SPEC_STR("negatives", &negatives, "PATH  NCF .negative file for evaluation"),
        ARG_SPEC_STR("split", &split, "S  loo | ratio:R | temporal:R | temporal-user:R (default loo)"),
        ARG_SPEC_INT("seed", &seed, 0, UINT64_MAX, NULL, "S  random seed of the split and negatives (default 1)"),
        ARG_SPEC_STR("out", &out, "DIR  output directory: DIR/cID/ per client, DIR/federation.txt for the server, DIR/popularity.txt "
                     "(the items' public popularity, for decoys)"),
        CLI_LOAD_SPECS(&lo),
        ARG_SPEC_END,
    };
    const char *pos[1];
    int npos;
    const char *usage = "fedrec data shard [--data PATH] [--test PATH] [--split S] [--seed S] --out DIR";
    int rc = args_parse("data shard", argc, argv, specs, pos, 0, &npos, usage);
    if (rc) return rc < 0 ? 0 : rc;
    if (!out) { fprintf(stderr, "usage: %s\n", usage); return 2; }
    fr_source src;
    fr_source_default(&src);
    if ((rc = cli_load_opts_apply("data shard", &lo, specs, &src.load))) return rc;
    const char *load_opt = cli_load_opts_given(&lo, specs);
    if (load_opt && !data) {
        fprintf(stderr, "fedrec data shard: %s says how to read a --data file; without --data the built-in synthetic "
                "data is sharded\n", load_opt);
        return 2;
    }
    if (split && fr_source_parse_split(split, &src.split, &src.split_ratio)) {
        fprintf(stderr, "fedrec data shard: --split: expected loo, ratio:R, temporal:R or temporal-user:R with 0 < R "
                "< 1, got '%s'\n", split);
        return 2;
    }
    if (cli_check_input("data shard", "--data", data) || cli_check_input("data shard", "--test", test) ||
        cli_check_input("data shard", "--negatives", negatives))
        return 1;
    src.data = data;
    src.test = test;
    src.negatives = negatives;
    src.seed = seed;
    /* evaluation negatives for implicit data or data that comes with them (a ranking model's), as train has them */
    src.explicit_ratings = true;
    fr_data *d = NULL;
    fr_err e = fr_data_load(&d, &src);
    bool has_negs = negatives != NULL;
    if (data && !test) { /* an NCF directory with its own test.negative */
        char p[4096];
        snprintf(p, sizeof p, "%s/test.negative", data);
        has_negs |= access(p, R_OK) == 0;
    }
    if (!e && (fr_dataset_implicit(fr_data_train(d)) || has_negs)) {
        fr_data_free(d);
        d = NULL;
        src.explicit_ratings = false;
        e = fr_data_load(&d, &src);
    }
    if (e) return cli_fail(e, "data shard");
    const fr_dataset *train = fr_data_train(d);
    float mean = fr_run_mean_rating(train);
    e = fr_dataset_write_shards(out, train, fr_data_test(d), fr_data_negatives(d), mean);
    if (!e)
        printf("wrote %u client shard%s of %s under %s (c0 .. c%u), and %s/federation.txt for the server\n",
               fr_dataset_n_users(train), cli_s(fr_dataset_n_users(train)), fr_data_describe(d), out,
               fr_dataset_n_users(train) - 1, out);
    /* side features for lightfm/fm, as train finds them (metadata beside the data, the files) */
    if (!e && (user_features || item_features || data)) {
        if ((user_features && cli_check_input("data shard", "--user-features", user_features)) ||
            (item_features && cli_check_input("data shard", "--item-features", item_features)) ||
            cli_features_write_shards("data shard", d, user_features, item_features, out, false)) {
            fr_data_free(d);
            return 1;
        }
    }
    fr_data_free(d);
    return e ? cli_fail(e, "data shard") : 0;
}

int cli_data(int argc, char **argv) {
    const char *usage =
        "usage: fedrec data <info|split|generate|shard> ...\n"
        "  fedrec data info FILE                                  counts, sparsity, rating histogram\n"
        "  fedrec data split FILE --loo --negatives 99 --out DIR  NCF-format train/test/negative\n"
        "  fedrec data generate --users N --items M --interactions K --out FILE\n"
        "  fedrec data shard [--data PATH] [--split S] --out DIR    a directory per client, for fedrec client\n";
    if (argc < 2) { fputs(usage, stderr); return 2; }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) { fputs(usage, stdout); return 0; }
    if (!strcmp(argv[1], "info")) return data_info(argc - 1, argv + 1);
    if (!strcmp(argv[1], "split")) return data_split(argc - 1, argv + 1);
    if (!strcmp(argv[1], "generate")) return data_generate(argc - 1, argv + 1);
    if (!strcmp(argv[1], "shard")) return data_shard(argc - 1, argv + 1);
    fprintf(stderr, "fedrec data: unknown subcommand '%s'\n%s", argv[1], usage);
    return 2;
}
