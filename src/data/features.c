/* Side features of users and items (fedrec/features.h): per side a vocabulary of feature
 * names (interned in order of first appearance) and per row a growable list of (feature,
 * weight) pairs; built from a data set's metadata or from a feature file.
 *
 * Invariants: every feature id in a row is < the side's vocabulary size; weights are
 * finite; a row keeps its pairs in the order they were added. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/dataset.h"
#include "data/text.h"
#include "fedrec/features.h"

typedef struct side {
    uint32_t rows;
    fri_strtab names;  /* the vocabulary */
    uint32_t *n, *cap; /* [rows] pairs and room per row */
    uint32_t **ids;    /* [rows] feature ids */
    float **w;         /* [rows] weights */
    char *first_skip;  /* "path:line: item id \"v\"" of the first line fr_features_load skipped */
} side;

struct fr_features {
    side s[2]; /* FR_FEAT_USER, FR_FEAT_ITEM */
};

static fr_err side_init(side *s, uint32_t rows) {
    s->rows = rows;
    size_t r = rows ? rows : 1;
    s->n = fri_calloc(r, sizeof *s->n);
    s->cap = fri_calloc(r, sizeof *s->cap);
    s->ids = fri_calloc(r, sizeof *s->ids);
    s->w = fri_calloc(r, sizeof *s->w);
    return s->n && s->cap && s->ids && s->w ? FR_OK : FR_ERR_NOMEM;
}

static void side_free(side *s) {
    if (s->ids)
        for (uint32_t r = 0; r < s->rows; r++) { fri_free(s->ids[r]); fri_free(s->w[r]); }
    fri_free(s->n);
    fri_free(s->cap);
    fri_free(s->ids);
    fri_free(s->w);
    fri_strtab_free(&s->names);
    fri_free(s->first_skip);
}

fr_err fr_features_create(fr_features **out, uint32_t n_users, uint32_t n_items) {
    *out = NULL;
    fr_features *f = fri_calloc(1, sizeof *f);
    if (!f) return FR_ERR_NOMEM;
    if (side_init(&f->s[0], n_users) || side_init(&f->s[1], n_items)) {
        fr_features_free(f);
        return FR_ERR_NOMEM;
    }
    *out = f;
    return FR_OK;
}

void fr_features_free(fr_features *f) {
    if (!f) return;
    side_free(&f->s[0]);
    side_free(&f->s[1]);
    fri_free(f);
}

static side *side_of(fr_features *f, fr_feature_side sd) { return &f->s[sd == FR_FEAT_ITEM]; }
static const side *cside_of(const fr_features *f, fr_feature_side sd) { return &f->s[sd == FR_FEAT_ITEM]; }

fr_err fr_features_add(fr_features *f, fr_feature_side sd, uint32_t row, const char *name, size_t len, float w) {
    side *s = side_of(f, sd);
    if (row >= s->rows)
        return fri_fail(FR_ERR_RANGE, "features: %s row %u: expected < %u", sd == FR_FEAT_ITEM ? "item" : "user", row,
                        s->rows);
    if (!len) return fri_fail(FR_ERR_INVALID, "features: empty feature name");
    if (!isfinite(w)) return fri_fail(FR_ERR_INVALID, "features: weight %g of \"%.*s\": expected a finite number",
                                      (double)w, FRI_VAL(name, len));
    uint32_t k;
    fr_err e = fri_strtab_intern(&s->names, name, len, &k);
    if (e) return e;
    if (s->n[row] == s->cap[row]) {
        uint32_t c = s->cap[row] ? 2 * s->cap[row] : 4;
        uint32_t *ids = fri_realloc(s->ids[row], c * sizeof *ids);
        if (!ids) return FR_ERR_NOMEM;
        s->ids[row] = ids;
        float *ww = fri_realloc(s->w[row], c * sizeof *ww);
        if (!ww) return FR_ERR_NOMEM;
        s->w[row] = ww;
        s->cap[row] = c;
    }
    s->ids[row][s->n[row]] = k;
    s->w[row][s->n[row]] = w;
    s->n[row]++;
    return FR_OK;
}

fr_err fr_features_declare(fr_features *f, fr_feature_side sd, const char *name, size_t len, uint32_t *id) {
    if (!len) return fri_fail(FR_ERR_INVALID, "features: empty feature name");
    uint32_t k;
    fr_err e = fri_strtab_intern(&side_of(f, sd)->names, name, len, &k);
    if (!e && id) *id = k;
    return e;
}

const char *fr_features_skipped_first(const fr_features *f, fr_feature_side sd) {
    return f ? cside_of(f, sd)->first_skip : NULL;
}

uint32_t fr_features_rows(const fr_features *f, fr_feature_side sd) { return f ? cside_of(f, sd)->rows : 0; }
uint32_t fr_features_count(const fr_features *f, fr_feature_side sd) { return f ? cside_of(f, sd)->names.n : 0; }

const char *fr_features_name(const fr_features *f, fr_feature_side sd, uint32_t k) {
    const side *s = f ? cside_of(f, sd) : NULL;
    return s && k < s->names.n ? s->names.s[k] : NULL;
}

size_t fr_features_of(const fr_features *f, fr_feature_side sd, uint32_t row, const uint32_t **ids, const float **w) {
    const side *s = f ? cside_of(f, sd) : NULL;
    if (!s || row >= s->rows) {
        if (ids) *ids = NULL;
        if (w) *w = NULL;
        return 0;
    }
    if (ids) *ids = s->ids[row];
    if (w) *w = s->w[row];
    return s->n[row];
}

/* ------------------------------------------------------------ from metadata */

/* ML-1M's age buckets; an age of u.user falls in the bucket that starts at or below it. */
static int age_bucket(const char *v) {
    static const int starts[] = {1, 18, 25, 35, 45, 50, 56};
    char *end;
    long a = strtol(v, &end, 10);
    if (end == v || *end) return -1;
    int b = 1;
    for (size_t i = 0; i < sizeof starts / sizeof starts[0]; i++)
        if (a >= starts[i]) b = starts[i];
    return b;
}

static fr_err add_fmt(fr_features *f, fr_feature_side sd, uint32_t row, const char *key, const char *v, size_t vn) {
    char buf[160];
    int n = snprintf(buf, sizeof buf, "%s=%.*s", key, (int)(vn > 120 ? 120 : vn), v);
    return fr_features_add(f, sd, row, buf, (size_t)n, 1.0f);
}

fr_err fr_features_from_meta(fr_features *f, const fr_dataset *d) {
    const fr_meta *m = fr_dataset_meta(d);
    if (!m) return FR_OK;
    fr_err e = FR_OK;
    uint32_t nu = fr_dataset_n_users(d), ni = fr_dataset_n_items(d);
    for (uint32_t u = 0; u < nu && u < f->s[0].rows && !e; u++) {
        const char *age = fr_meta_user_attr(m, u, "age");
        if (age && *age) {
            int b = age_bucket(age);
            char bb[16];
            int bn = snprintf(bb, sizeof bb, "%d", b);
            e = b >= 0 ? add_fmt(f, FR_FEAT_USER, u, "age", bb, (size_t)bn) : add_fmt(f, FR_FEAT_USER, u, "age", age, strlen(age));
        }
        const char *keys[2] = {"gender", "occupation"};
        for (int k = 0; k < 2 && !e; k++) {
            const char *v = fr_meta_user_attr(m, u, keys[k]);
            if (v && *v) e = add_fmt(f, FR_FEAT_USER, u, keys[k], v, strlen(v));
        }
    }
    for (uint32_t i = 0; i < ni && i < f->s[1].rows && !e; i++) {
        const char *g = fr_meta_item_genres(m, i);
        while (g && *g && !e) {
            const char *bar = strchr(g, '|');
            size_t n = bar ? (size_t)(bar - g) : strlen(g);
            if (n) e = add_fmt(f, FR_FEAT_ITEM, i, "genre", g, n);
            g = bar ? bar + 1 : NULL;
        }
        const char *t = fr_meta_item_title(m, i);
        size_t tn = t ? strlen(t) : 0;
        while (tn && t[tn - 1] == ' ') tn--;
        if (!e && tn >= 6 && t[tn - 1] == ')' && t[tn - 6] == '(' && isdigit((unsigned char)t[tn - 5]) &&
            isdigit((unsigned char)t[tn - 4]) && isdigit((unsigned char)t[tn - 3]) && isdigit((unsigned char)t[tn - 2]))
            e = add_fmt(f, FR_FEAT_ITEM, i, "year", t + tn - 5, 4);
    }
    return e;
}

/* ------------------------------------------------------------ feature files */

static bool parse_weight(const char *s, size_t n, float *w) {
    char buf[64];
    if (!n || n >= sizeof buf) return false;
    memcpy(buf, s, n);
    buf[n] = 0;
    char *end;
    double v = strtod(buf, &end);
    if (end != buf + n) return false;
    *w = (float)v;
    return true;
}

fr_err fr_features_load(fr_features *f, fr_feature_side sd, const char *path, const fr_idmap *ids, uint64_t *skipped) {
    if (skipped) *skipped = 0;
    uint8_t *data = NULL;
    size_t n = 0;
    fr_err e = fri_read_file(path, &data, &n);
    if (e) return e;
    const char *p = (const char *)data, *end = p + n;
    if (n >= 3 && (uint8_t)p[0] == 0xEF && (uint8_t)p[1] == 0xBB && (uint8_t)p[2] == 0xBF) p += 3;
    unsigned long long line = 0;
    const char *what = sd == FR_FEAT_ITEM ? "item id" : "user id";
    while (p < end && !e) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *s = p, *le = nl ? nl : end;
        p = nl ? nl + 1 : end;
        line++;
        while (le > s && le[-1] == '\r') le--;
        if (le == s || *s == '#') continue;
        for (const char *q = s; q < le; q++)
            if ((unsigned char)*q < 0x20 && *q != '\t') {
                e = fri_fail(FR_ERR_PARSE, "%s%s:%llu: byte 0x%02x; expected text", FRI_PATH(path), line,
                             (unsigned)(unsigned char)*q);
                break;
            }
        if (e) break;
        const char *t = memchr(s, '\t', (size_t)(le - s));
        const char *ide = t ? t : le;
        const char *is = s;
        size_t in = (size_t)(ide - is);
        fri_text_trim(&is, &in);
        int64_t row = -1;
        if (fr_idmap_is_str(ids)) {
            char buf[256];
            if (!in || in >= sizeof buf) {
                e = fri_fail(FR_ERR_PARSE, "%s%s:%llu: %s \"%.*s\"; expected 1..255 bytes before a tab",
                             FRI_PATH(path), line, what, FRI_VAL(is, in));
                break;
            }
            memcpy(buf, is, in);
            buf[in] = 0;
            row = fr_idmap_find_str(ids, buf);
        } else {
            int64_t raw = 0;
            bool ok = in > 0 && in <= 18;
            size_t k = 0;
            if (ok && is[0] == '-') k = 1;
            ok = ok && k < in;
            for (; ok && k < in; k++) {
                if (!isdigit((unsigned char)is[k])) ok = false;
                else raw = raw * 10 + (is[k] - '0');
            }
            if (!ok) {
                e = fri_fail(FR_ERR_PARSE, "%s%s:%llu: %s \"%.*s\"; expected an integer id, then a tab and features",
                             FRI_PATH(path), line, what, FRI_VAL(is, in));
                break;
            }
            if (is[0] == '-') raw = -raw;
            row = fr_idmap_find(ids, raw);
        }
        if (row < 0 || (uint64_t)row >= side_of(f, sd)->rows) {
            if (skipped) (*skipped)++;
            side *sk = side_of(f, sd);
            if (!sk->first_skip) {
                char buf[512];
                snprintf(buf, sizeof buf, "%s%s:%llu: %s \"%.*s\"", FRI_PATH(path), line, what, FRI_VAL(is, in));
                if (!(sk->first_skip = fri_strdup(buf))) e = FR_ERR_NOMEM;
            }
            continue;
        }
        const char *q = t ? t + 1 : le;
        while (q < le && !e) {
            while (q < le && (*q == ' ' || *q == '\t')) q++;
            const char *ts = q;
            while (q < le && *q != ' ' && *q != '\t') q++;
            size_t tn = (size_t)(q - ts);
            if (!tn) break;
            size_t nn = tn;
            float w = 1.0f;
            const char *colon = NULL;
            for (size_t k = tn; k-- > 0;)
                if (ts[k] == ':') { colon = ts + k; break; }
            const char *ws = colon ? colon + 1 : NULL;
            size_t wn = colon ? (size_t)(ts + tn - colon - 1) : 0;
            if (colon && !wn) {
                e = fri_fail(FR_ERR_PARSE, "%s%s:%llu: feature \"%.*s\"; expected a weight after ':' (a number), or "
                             "no ':'", FRI_PATH(path), line, FRI_VAL(ts, tn));
                break;
            }
            const bool weighted = colon && parse_weight(ws, wn, &w);
            /* what reads as the start of a number is a weight, and must be one ("1,5",
             * "0.5x" are mistakes); other text after ':' is part of the name ("url:http") */
            if (colon && !weighted && (isdigit((unsigned char)ws[0]) || ws[0] == '-' || ws[0] == '+' || ws[0] == '.')) {
                e = fri_fail(FR_ERR_PARSE, "%s%s:%llu: weight \"%.*s\" of feature \"%.*s\"; expected a number",
                             FRI_PATH(path), line, FRI_VAL(ws, wn), FRI_VAL(ts, (size_t)(colon - ts)));
                break;
            }
            if (weighted) {
                nn = (size_t)(colon - ts);
                if (!isfinite(w)) {
                    e = fri_fail(FR_ERR_PARSE, "%s%s:%llu: weight \"%.*s\" of feature \"%.*s\"; expected a finite number",
                                 FRI_PATH(path), line, FRI_VAL(ws, wn), FRI_VAL(ts, nn));
                    break;
                }
                if (!nn) {
                    e = fri_fail(FR_ERR_PARSE, "%s%s:%llu: feature \"%.*s\"; expected a name before ':'",
                                 FRI_PATH(path), line, FRI_VAL(ts, tn));
                    break;
                }
            } else {
                w = 1.0f;
            }
            e = fr_features_add(f, sd, (uint32_t)row, ts, nn, w);
        }
    }
    fri_free(data);
    return e;
}
