/* Data sources: DESIGN.md's PATH rules, which `fedrec train`, `eval` and `recommend` (and
 * any caller of the library) share. An fr_source names where a run's data comes from;
 * fr_data_load turns it into train and test over one id space, the evaluation negatives
 * and a one-line description:
 *   no data        the built-in synthetic set (FR_SOURCE_SYNTHETIC_*), split;
 *   a directory    NCF layout: train.rating + test.rating (or the given test file), and
 *                  for ranking models test.negative when present (or the given file);
 *   data + test    the two files, read alike, one id space;
 *   data           one ratings file, split;
 * a split source samples eval_negatives per test user for ranking models unless a
 * negatives file is given. Same source, same seed: the same data, bit for bit.
 * Invariants: *out is NULL on failure and nothing leaks; load errors are the readers'
 * (they name the file), split and sampling errors are prefixed with what was split. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "data/dataset.h"
#include "data/text.h"

struct fr_data {
    fr_dataset *train, *test;
    fr_negatives *negs;   /* NULL: none */
    char *describe;
    char *meta_dir;       /* where metadata may sit beside the data; NULL for the synthetic set */
    bool synthetic;
    uint64_t skipped;     /* bad lines skipped in its files (skip_bad_lines) */
    char *first_bad;      /* "path:line" of the first, NULL when none */
};


void fr_source_default(fr_source *s) {
    memset(s, 0, sizeof *s);
    s->split = FR_SPLIT_LOO;
    s->eval_negatives = 99;
    s->seed = 1;
    fr_load_opts_default(&s->load);
}

fr_err fr_source_check(const fr_source *s) {
    if (!s) return fri_fail(FR_ERR_INVALID, "source: NULL");
    if (s->test && !s->data)
        return fri_fail(FR_ERR_INVALID, "source: test file \"%s\" needs a training file (data)", s->test);
    if (s->split != FR_SPLIT_LOO && s->split != FR_SPLIT_RATIO && s->split != FR_SPLIT_TEMPORAL &&
        s->split != FR_SPLIT_TEMPORAL_USER)
        return fri_fail(FR_ERR_INVALID, "source: split kind %d; expected loo (%d), temporal (%d), ratio (%d) or "
                        "temporal-user (%d)", (int)s->split, FR_SPLIT_LOO, FR_SPLIT_TEMPORAL, FR_SPLIT_RATIO,
                        FR_SPLIT_TEMPORAL_USER);
    if (s->split != FR_SPLIT_LOO && !(s->split_ratio > 0 && s->split_ratio < 1))
        return fri_fail(FR_ERR_INVALID, "source: split ratio %g; expected a value strictly between 0 and 1",
                        s->split_ratio);
    return fr_load_opts_check(&s->load);
}

fr_err fr_source_parse_split(const char *text, fr_split_kind *kind, double *ratio) {
    const char *v = NULL;
    fr_split_kind k = FR_SPLIT_LOO;
    if (text && !strcmp(text, "loo")) {
        *kind = FR_SPLIT_LOO;
        *ratio = 0;
        return FR_OK;
    }
    if (text && !strncmp(text, "ratio:", 6)) { k = FR_SPLIT_RATIO; v = text + 6; }
    else if (text && !strncmp(text, "temporal:", 9)) { k = FR_SPLIT_TEMPORAL; v = text + 9; }
    else if (text && !strncmp(text, "temporal-user:", 14)) { k = FR_SPLIT_TEMPORAL_USER; v = text + 14; }
    if (v) {
        char *end = NULL;
        errno = 0;
        double r = strtod(v, &end);
        if (*v && !errno && !*end && r > 0 && r < 1) {
            *kind = k;
            *ratio = r;
            return FR_OK;
        }
    }
    return fri_fail(FR_ERR_INVALID, "split \"%s\"; expected loo, ratio:R, temporal:R or temporal-user:R with 0 < R < 1",
                    text ? text : "(null)");
}

fr_err fr_source_format_split(fr_split_kind kind, double ratio, char *buf, size_t cap) {
    const char *name = kind == FR_SPLIT_LOO ? "loo" : kind == FR_SPLIT_RATIO ? "ratio" :
                       kind == FR_SPLIT_TEMPORAL ? "temporal" : kind == FR_SPLIT_TEMPORAL_USER ? "temporal-user" : NULL;
    if (!name) return fri_fail(FR_ERR_INVALID, "split kind %d; expected loo, ratio, temporal or temporal-user", (int)kind);
    int n;
    if (kind == FR_SPLIT_LOO) {
        n = snprintf(buf, cap, "%s", name);
    } else {
        char num[32];
        for (int prec = 1; prec <= 17; prec++) { /* the shortest decimal that reads back exactly */
            snprintf(num, sizeof num, "%.*g", prec, ratio);
            if (strtod(num, NULL) == ratio) break;
        }
        n = snprintf(buf, cap, "%s:%s", name, num);
    }
    if (n < 0 || (size_t)n >= cap)
        return fri_fail(FR_ERR_RANGE, "split name needs %d bytes; the buffer has %zu", n + 1, cap);
    return FR_OK;
}

/* A formatted string through fri_malloc (NULL when out of memory). */
static char *dup_printf(const char *fmt, ...) FR_PRINTF(1, 2);
static char *dup_printf(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return NULL;
    char *s = fri_malloc((size_t)n + 1);
    if (!s) return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

/* The directory a file sits in, as dirname(3) gives it ("." for a bare name). */
static char *dir_of(const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash) return fri_strdup(".");
    if (slash == path) return fri_strdup("/");
    return dup_printf("%.*s", (int)(slash - path), path);
}

static bool is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

void fr_data_replace_train(fr_data *d, fr_dataset *train) {
    fr_dataset_free(d->train);
    d->train = train;
}

void fr_data_free(fr_data *d) {
    if (!d) return;
    fr_dataset_free(d->train);
    fr_dataset_free(d->test);
    fr_negatives_free(d->negs);
    fri_free(d->describe);
    fri_free(d->meta_dir);
    fri_free(d->first_bad);
    fri_free(d);
}

/* Counts the lines the loader skipped in x's file (path), and keeps where the first was. */
static fr_err note_skips(fr_data *d, const fr_dataset *x, const char *path) {
    if (!x || !x->skipped) return FR_OK;
    d->skipped += x->skipped;
    if (!d->first_bad && !(d->first_bad = dup_printf("%s:%llu", path, (unsigned long long)x->first_bad)))
        return FR_ERR_NOMEM;
    return FR_OK;
}

/* The NCF directory of s: its train and test files, and its negatives for a ranking model
 * when the directory has them or s names a file. */
static fr_err load_ncf_dir(fr_data *d, const fr_source *s) {
    char *tr = dup_printf("%s/train.rating", s->data), *te = dup_printf("%s/test.rating", s->data);
    char *ng = dup_printf("%s/test.negative", s->data);
    fr_err e = tr && te && ng ? FR_OK : FR_ERR_NOMEM;
    if (!e) e = fr_dataset_load_pair(&d->train, &d->test, tr, s->test ? s->test : te, &s->load);
    if (!e) e = note_skips(d, d->train, tr);
    if (!e) e = note_skips(d, d->test, s->test ? s->test : te);
    const char *negp = s->negatives ? s->negatives : ng;
    if (!e && !s->explicit_ratings && (s->negatives || exists(negp))) e = fr_negatives_load(&d->negs, negp, d->train);
    fri_free(tr);
    fri_free(te);
    fri_free(ng);
    return e;
}

/* Splits all into d's train and test by s, and samples d's evaluation negatives for a
 * ranking model unless s names a file; errors prefixed with what was split. */
static fr_err split_all(fr_data *d, const fr_dataset *all, const fr_source *s) {
    fr_err e = fr_dataset_split(all, s->split, s->split_ratio, s->seed, &d->train, &d->test);
    if (e) return fri_fail_prefix(e, "splitting %s%s", FRI_PATH(d->describe));
    if (!s->explicit_ratings && !s->negatives && s->eval_negatives) {
        e = fr_negatives_sample(&d->negs, all, d->test, s->eval_negatives, s->seed);
        if (e) fri_fail_prefix(e, "sampling evaluation negatives for %s%s", FRI_PATH(d->describe));
    }
    return e;
}

fr_err fr_data_load(fr_data **out, const fr_source *s) {
    if (!out) return fri_fail(FR_ERR_INVALID, "data: the output is required");
    *out = NULL;
    fr_err e = fr_source_check(s);
    if (e) return e;
    char split[40];
    e = fr_source_format_split(s->split, s->split_ratio, split, sizeof split);
    if (e) return e;
    fr_data *d = fri_calloc(1, sizeof *d);
    if (!d) return FR_ERR_NOMEM;
    fr_dataset *all = NULL; /* the data to split, when it is split */
    if (!s->data) {
        d->synthetic = true;
        d->describe = dup_printf("synthetic data (%d users, %d items, %d interactions)", FR_SOURCE_SYNTHETIC_USERS,
                                 FR_SOURCE_SYNTHETIC_ITEMS, FR_SOURCE_SYNTHETIC_INTERACTIONS);
        if (!d->describe) { e = FR_ERR_NOMEM; goto done; }
        fr_gen_opts g;
        fr_gen_opts_default(&g);
        g.users = FR_SOURCE_SYNTHETIC_USERS;
        g.items = FR_SOURCE_SYNTHETIC_ITEMS;
        g.interactions = FR_SOURCE_SYNTHETIC_INTERACTIONS;
        g.seed = FR_SOURCE_SYNTHETIC_SEED;
        if ((e = fr_dataset_generate(&all, &g))) fri_fail_prefix(e, "generating %s%s", FRI_PATH(d->describe));
    } else if (is_dir(s->data)) {
        d->describe = dup_printf("%s (NCF layout)", s->data);
        d->meta_dir = fri_strdup(s->data);
        if (!d->describe || !d->meta_dir) { e = FR_ERR_NOMEM; goto done; }
        e = load_ncf_dir(d, s);
        if (!e && d->train->users->indexed) { /* say where the ids people see come from */
            char *x = dup_printf("%s (NCF layout, raw ids from users.map, items.map)", s->data);
            if (!x) { e = FR_ERR_NOMEM; goto done; }
            fri_free(d->describe);
            d->describe = x;
        }
    } else {
        d->describe = s->test ? dup_printf("%s + %s", s->data, s->test) : dup_printf("%s (split %s)", s->data, split);
        d->meta_dir = dir_of(s->data);
        if (!d->describe || !d->meta_dir) { e = FR_ERR_NOMEM; goto done; }
        if (s->test) e = fr_dataset_load_pair(&d->train, &d->test, s->data, s->test, &s->load);
        else e = fr_dataset_load(&all, s->data, &s->load, NULL);
        if (!e) e = note_skips(d, all ? all : d->train, s->data);
        if (!e && s->test) e = note_skips(d, d->test, s->test);
    }
    if (!e && all && s->split == FR_SPLIT_LOO && !fr_dataset_has_time_order(all)) {
        /* say how the held-out interaction was chosen: there is no latest to take */
        char *x = dup_printf("%s (split loo, random: no timestamps)", s->data ? s->data : "synthetic data");
        if (!x) { e = FR_ERR_NOMEM; goto done; }
        fri_free(d->describe);
        d->describe = x;
    }
    if (!e && all) e = split_all(d, all, s);
    if (!e && s->negatives && !d->negs && !s->explicit_ratings) e = fr_negatives_load(&d->negs, s->negatives, d->train);
done:
    fr_dataset_free(all);
    if (e) {
        fr_data_free(d);
        return e;
    }
    *out = d;
    return FR_OK;
}

fr_err fr_data_from_dataset(fr_data **out, const fr_dataset *all, const fr_source *s, const char *describe) {
    if (!out) return fri_fail(FR_ERR_INVALID, "data: the output is required");
    *out = NULL;
    if (!all) return fri_fail(FR_ERR_INVALID, "data: the dataset is required");
    if (s->data || s->test)
        return fri_fail(FR_ERR_INVALID, "data: a dataset in memory is split by the source's rules; the source must name "
                        "no data or test file");
    fr_err e = fr_source_check(s);
    if (e) return e;
    char split[40];
    if ((e = fr_source_format_split(s->split, s->split_ratio, split, sizeof split))) return e;
    fr_data *d = fri_calloc(1, sizeof *d);
    if (!d) return FR_ERR_NOMEM;
    const char *what = describe ? describe : "data in memory";
    d->describe = fr_dataset_has_time_order(all) || s->split != FR_SPLIT_LOO
                      ? dup_printf("%s (split %s)", what, split)
                      : dup_printf("%s (split loo, random: no timestamps)", what);
    if (!d->describe) e = FR_ERR_NOMEM;
    if (!e) e = split_all(d, all, s);
    if (!e && s->negatives && !s->explicit_ratings) e = fr_negatives_load(&d->negs, s->negatives, d->train);
    if (e) {
        fr_data_free(d);
        return e;
    }
    *out = d;
    return FR_OK;
}

const fr_dataset *fr_data_train(const fr_data *d) { return d->train; }
const fr_dataset *fr_data_test(const fr_data *d) { return d->test; }
const fr_negatives *fr_data_negatives(const fr_data *d) { return d->negs; }
const char *fr_data_describe(const fr_data *d) { return d->describe; }
bool fr_data_is_synthetic(const fr_data *d) { return d->synthetic; }

fr_err fr_data_load_meta(fr_data *d) {
    fr_err e = d->meta_dir ? fr_dataset_load_meta(d->train, d->meta_dir) : FR_OK;
    const char *src = fr_dataset_source(d->train);
    if (e || fr_dataset_meta(d->train) || !src || d->synthetic) return e;
    /* none beside the data: an NCF split's id maps name the file it was split from, and
     * its directory may hold the metadata (u.item beside u.data) */
    char *dir = dir_of(src);
    if (!dir) return FR_ERR_NOMEM;
    if (!d->meta_dir || strcmp(dir, d->meta_dir)) e = fr_dataset_load_meta(d->train, dir);
    fri_free(dir);
    return e;
}

uint64_t fr_data_skipped(const fr_data *d, const char **first) {
    if (first) *first = d ? d->first_bad : NULL;
    return d ? d->skipped : 0;
}
