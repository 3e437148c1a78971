/* Format detection of the ratings readers (data/format.h): the load options (defaults and
 * checks) and the spec a file is read with, from its first non-blank line.
 *
 * FR_FORMAT_AUTO, from the first non-blank line:
 *   1. the file name ends in ".rating"                     -> NCF (dense ids)
 *   2. the line contains "::"                              -> ML1M
 *   3. the line contains a tab: 4 fields -> ML100K, else   -> DELIMITED (tab)
 *   4. the line contains ',': 4 fields -> CSV (a non-numeric first line is its header),
 *      else                                                -> DELIMITED (',')
 *   5. the line contains ';' or '|'                        -> DELIMITED (that char)
 *   otherwise the format cannot be detected (FR_ERR_PARSE).
 * A first line "(user,item)" followed by tabs is an NCF test.negative file, not ratings:
 * an error that says so, whatever the format (unless a delimited file declares a header).
 * An auto-detected DELIMITED file takes its columns from a header (user/userId/user_id,
 * item/itemId/movieId..., rating/score, timestamp/time) when the first line is not numeric,
 * else by position: user, item, [rating, [timestamp]]. FR_FORMAT_DELIMITED takes the
 * options' delimiter (or detects one) and columns ("1".."n" or header names). */
#define _GNU_SOURCE /* memmem */
#include <math.h>
#include <strings.h>

#include "data/format.h"
#include "data/text.h"

/* Whether the string is a column number "1".."n" (returns it) or 0. */
static int col_number(const char *c) {
    if (!c || !*c) return 0;
    long v = 0;
    for (const char *p = c; *p; p++) {
        if (*p < '0' || *p > '9') return 0;
        v = v * 10 + (*p - '0');
        if (v > 100000) return 0;
    }
    return (int)v;
}

void fr_load_opts_default(fr_load_opts *o) {
    memset(o, 0, sizeof *o);
    o->format = FR_FORMAT_AUTO;
    o->rating_min = 0;
    o->rating_max = 10;
    o->implicit_threshold = NAN;
}

fr_err fr_load_opts_check(const fr_load_opts *o) {
    if (!o) return fri_fail(FR_ERR_INVALID, "load options are NULL");
    if ((int)o->format < FR_FORMAT_AUTO || o->format > FR_FORMAT_DELIMITED)
        return fri_fail(FR_ERR_INVALID, "load options: format %d; expected 0..%d", (int)o->format, FR_FORMAT_DELIMITED);
    if (!isfinite(o->rating_min) || !isfinite(o->rating_max) || o->rating_min > o->rating_max)
        return fri_fail(FR_ERR_INVALID, "load options: rating range [%g, %g]; expected finite min <= max",
                        o->rating_min, o->rating_max);
    if (isinf(o->implicit_threshold))
        return fri_fail(FR_ERR_INVALID, "load options: implicit threshold %g; expected a finite number or NaN",
                        o->implicit_threshold);
    if (o->delimiter && *o->delimiter) {
        const char *d = o->delimiter;
        bool ok = strcmp(d, "::") == 0 || (strlen(d) == 1 && d[0] != '\n' && d[0] != '\r' && d[0] != '"' &&
                                           !(d[0] >= '0' && d[0] <= '9') && d[0] != '.' && d[0] != '-');
        if (!ok)
            return fri_fail(FR_ERR_INVALID, "load options: delimiter \"%s\"; expected one character or \"::\"", d);
    }
    const char *cols[4] = {o->col_user, o->col_item, o->col_rating, o->col_time};
    static const char *const what[4] = {"user", "item", "rating", "timestamp"};
    for (int k = 0; k < 4; k++) {
        if (!cols[k]) continue;
        if (!*cols[k]) return fri_fail(FR_ERR_INVALID, "load options: empty %s column; expected a name or 1..n", what[k]);
        bool digits = strspn(cols[k], "0123456789") == strlen(cols[k]);
        if (digits && col_number(cols[k]) <= 0)
            return fri_fail(FR_ERR_INVALID, "load options: %s column \"%s\"; expected a position 1..%d or a name",
                            what[k], cols[k], FRI_MAX_FIELDS);
        if (!digits && !o->has_header)
            return fri_fail(FR_ERR_INVALID, "load options: %s column \"%s\" is a name; set has_header", what[k],
                            cols[k]);
    }
    return FR_OK;
}

const char *fri_spec_delim_name(const fri_spec *sp) {
    if (sp->dcolon) return "'::'";
    switch (sp->delim) {
    case '\t': return "tab";
    case ',': return "','";
    case ';': return "';'";
    case '|': return "'|'";
    default: return "the delimiter";
    }
}

static bool name_in(const char *s, size_t n, const char *const *names) {
    for (; *names; names++)
        if (strlen(*names) == n && strncasecmp(s, *names, n) == 0) return true;
    return false;
}

/* Column index of a spec ("3" or a header name), -1 if absent. */
static fr_err resolve_col(const fri_rdctx *c, const char *want, const char *what, const fri_fields *hdr, int *out) {
    *out = -1;
    if (!want) return FR_OK;
    int num = col_number(want);
    if (num > 0) {
        if (num > FRI_MAX_FIELDS)
            return fri_fail(FR_ERR_INVALID, "%s%s: %s column %d; expected at most %d", FRI_PATH(c->path), what, num, FRI_MAX_FIELDS);
        *out = num - 1;
        return FR_OK;
    }
    if (!hdr) return fri_fail(FR_ERR_INVALID, "%s%s: %s column \"%s\" is a name but the file has no header", FRI_PATH(c->path), what, want);
    for (int k = 0; k < hdr->n && k < FRI_MAX_FIELDS; k++) {
        const char *s = hdr->s[k];
        size_t n = hdr->len[k];
        fri_text_trim(&s, &n);
        if (n >= 2 && s[0] == '"' && s[n - 1] == '"') { s++; n -= 2; }
        if (strlen(want) == n && strncmp(s, want, n) == 0) { *out = k; return FR_OK; }
    }
    return fri_fail(FR_ERR_PARSE, "%s%s:1: no column named \"%s\" (the %s column) in the header", FRI_PATH(c->path), want, what);
}

static int max4(int a, int b, int cc, int d) {
    int m = a > b ? a : b;
    if (cc > m) m = cc;
    return d > m ? d : m;
}

static bool ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

/* Whether a line is an NCF test.negative line: "(digits,digits)" then the end, a tab or
 * a space. */
static bool negative_line(const char *s, size_t n) {
    const char *p = s, *end = s + n;
    while (p < end && *p == ' ') p++;
    if (p == end || *p++ != '(') return false;
    for (int k = 0; k < 2; k++) {
        const char *q = p;
        while (p < end && *p >= '0' && *p <= '9') p++;
        if (p == q || p == end || *p++ != (k ? ')' : ',')) return false;
    }
    return p == end || *p == '\t' || *p == ' ';
}

fr_err fri_spec_make(fri_rdctx *c, fr_format fmt, const char *first, size_t n) {
    fri_spec *sp = &c->sp;
    const fr_load_opts *o = c->o;
    if (!(fmt == FR_FORMAT_DELIMITED && o->has_header) && negative_line(first, n))
        return fri_fail(FR_ERR_PARSE, "%s%s:%llu: an NCF .negative file (evaluation negatives), not ratings: the line "
                        "starts \"%.*s\"; expected a ratings file (user, item, rating, timestamp)", FRI_PATH(c->path),
                        (unsigned long long)c->line, FRI_VAL(first, n));
    memset(sp, 0, sizeof *sp);
    sp->cu = 0; sp->ci = 1; sp->cr = 2; sp->ct = 3;
    sp->nf_min = sp->nf_max = 4;
    fri_fields f;
    if (fmt == FR_FORMAT_AUTO) {
        if (ends_with(c->path, ".rating")) fmt = FR_FORMAT_NCF;
        else if (memmem(first, n, "::", 2)) fmt = FR_FORMAT_ML1M;
        else if (memchr(first, '\t', n)) {
            fri_text_split(first, n, '\t', false, &f);
            fmt = f.n == 4 ? FR_FORMAT_ML100K : FR_FORMAT_DELIMITED;
            sp->delim = '\t';
        } else if (memchr(first, ',', n)) {
            fri_text_split(first, n, ',', false, &f);
            fmt = f.n == 4 ? FR_FORMAT_CSV : FR_FORMAT_DELIMITED;
            sp->delim = ',';
        } else if (memchr(first, ';', n)) { fmt = FR_FORMAT_DELIMITED; sp->delim = ';'; }
        else if (memchr(first, '|', n)) { fmt = FR_FORMAT_DELIMITED; sp->delim = '|'; }
        else {
            long k = fri_text_control_byte(first, n);
            if (k >= 0)
                return fri_fail(FR_ERR_PARSE, "%s%s:%llu: binary data (byte 0x%02x at column %ld); expected a text file",
                                FRI_PATH(c->path), (unsigned long long)c->line, (unsigned char)first[k], k + 1);
            return fri_fail(FR_ERR_PARSE,
                            "%s%s:%llu: cannot detect the format from \"%.*s\"; expected fields separated by tab, "
                            "',', ';', '|' or '::'", FRI_PATH(c->path), (unsigned long long)c->line, FRI_VAL(first, n));
        }
        if (fmt == FR_FORMAT_DELIMITED) {
            /* Auto columns: header names or positions. */
            fri_text_split(first, n, sp->delim, false, &f);
            static const char *const un[] = {"user", "userid", "user_id", "uid", "users", NULL};
            static const char *const in[] = {"item", "itemid", "item_id", "movieid", "movie_id", "iid", "movie", NULL};
            static const char *const rn[] = {"rating", "ratings", "score", NULL};
            static const char *const tn[] = {"timestamp", "time", "ts", NULL};
            sp->nf_min = 2;
            sp->nf_max = 0;
            if (!fri_text_is_numeric(f.s[0], f.len[0])) {
                sp->header = true;
                sp->cu = sp->ci = sp->cr = sp->ct = -1;
                for (int k = 0; k < f.n && k < FRI_MAX_FIELDS; k++) {
                    const char *s = f.s[k];
                    size_t ln = f.len[k];
                    fri_text_trim(&s, &ln);
                    if (sp->cu < 0 && name_in(s, ln, un)) sp->cu = k;
                    else if (sp->ci < 0 && name_in(s, ln, in)) sp->ci = k;
                    else if (sp->cr < 0 && name_in(s, ln, rn)) sp->cr = k;
                    else if (sp->ct < 0 && name_in(s, ln, tn)) sp->ct = k;
                }
                if (sp->cu < 0 || sp->ci < 0)
                    return fri_fail(FR_ERR_PARSE, "%s%s:%llu: header \"%.*s\" names no user and item columns; "
                                    "expected e.g. userId and movieId (or set the columns)",
                                    FRI_PATH(c->path), (unsigned long long)c->line, FRI_VAL(first, n));
            } else {
                sp->cr = f.n >= 3 ? 2 : -1;
                sp->ct = f.n >= 4 ? 3 : -1;
            }
            sp->nf_min = max4(sp->cu, sp->ci, sp->cr, sp->ct) + 1;
        }
    } else if (fmt == FR_FORMAT_DELIMITED) {
        const char *d = o->delimiter;
        if (!d || !*d) {
            if (memmem(first, n, "::", 2)) sp->dcolon = true;
            else if (memchr(first, '\t', n)) sp->delim = '\t';
            else if (memchr(first, ',', n)) sp->delim = ',';
            else if (memchr(first, ';', n)) sp->delim = ';';
            else if (memchr(first, '|', n)) sp->delim = '|';
            else sp->delim = ','; /* a single column: the field count check explains */
        } else if (strcmp(d, "::") == 0) sp->dcolon = true;
        else sp->delim = d[0];
        sp->header = o->has_header;
        const fri_fields *hdr = NULL;
        if (sp->header) { fri_text_split(first, n, sp->delim, sp->dcolon, &f); hdr = &f; }
        fr_err e = resolve_col(c, o->col_user ? o->col_user : "1", "user", hdr, &sp->cu);
        if (!e) e = resolve_col(c, o->col_item ? o->col_item : "2", "item", hdr, &sp->ci);
        if (!e) e = resolve_col(c, o->col_rating, "rating", hdr, &sp->cr);
        if (!e) e = resolve_col(c, o->col_time, "timestamp", hdr, &sp->ct);
        if (e) return e;
        sp->nf_min = max4(sp->cu, sp->ci, sp->cr, sp->ct) + 1;
        sp->nf_max = 0;
    }
    sp->fmt = fmt;
    switch (fmt) {
    case FR_FORMAT_ML100K: sp->delim = '\t'; sp->dcolon = false; break;
    case FR_FORMAT_ML1M: sp->dcolon = true; break;
    case FR_FORMAT_CSV: sp->delim = ','; sp->dcolon = false; sp->header_auto = true; break;
    case FR_FORMAT_NCF: sp->delim = '\t'; sp->dcolon = false; sp->nf_min = 3; break;
    default: break;
    }
    return FR_OK;
}
