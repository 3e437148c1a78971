/* Metadata readers: item titles and genres, user attributes, from the files MovieLens
 * ships beside its ratings (u.item + u.genre + u.user; movies.dat + users.dat;
 * movies.csv). These files are small, so each is read whole.
 *
 * Invariants: strings in fr_meta are UTF-8 (u.item and movies.dat are Latin-1 and are
 * converted, unless a value already is valid UTF-8); entries are indexed by the dataset's
 * dense ids, and rows whose raw id the dataset does not know are ignored. A missing file
 * is not an error; a malformed one is, naming file, line, value and what was expected.
 * On any error the dataset's metadata is left as it was. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "data/dataset.h"

#define META_FIELDS 32 /* fields kept per line */

typedef struct mfields {
    int n;
    const char *s[META_FIELDS];
    size_t len[META_FIELDS];
} mfields;

/* Splits on one char, or on "::" when dcolon. */
static void msplit(const char *s, size_t n, char delim, bool dcolon, mfields *f) {
    const char *end = s + n, *p = s;
    f->n = 0;
    for (;;) {
        const char *q = p;
        while (q < end && !(dcolon ? (q[0] == ':' && q + 1 < end && q[1] == ':') : *q == delim)) q++;
        if (f->n < META_FIELDS) { f->s[f->n] = p; f->len[f->n] = (size_t)(q - p); }
        f->n++;
        if (q == end) break;
        p = q + (dcolon ? 2 : 1);
    }
}

static bool valid_utf8(const unsigned char *s, size_t n) {
    size_t k = 0;
    while (k < n) {
        unsigned char c = s[k];
        size_t m;
        if (c < 0x80) m = 0;
        else if (c >= 0xC2 && c <= 0xDF) m = 1; /* 0xC0, 0xC1: overlong */
        else if ((c >> 4) == 0xE) m = 2;
        else if (c >= 0xF0 && c <= 0xF4) m = 3;
        else return false;
        if (m > n - k - 1) return false;
        for (size_t j = 1; j <= m; j++)
            if ((s[k + j] & 0xC0) != 0x80) return false;
        k += m + 1;
    }
    return true;
}

/* A copy of s as UTF-8: Latin-1 bytes are converted unless s already is valid UTF-8. */
static char *text_dup(const char *s, size_t n, bool latin1) {
    const unsigned char *u = (const unsigned char *)s;
    bool convert = latin1 && !valid_utf8(u, n);
    size_t extra = 0;
    if (convert)
        for (size_t k = 0; k < n; k++) extra += u[k] >= 0x80;
    char *d = fri_malloc(n + extra + 1);
    if (!d) return NULL;
    size_t o = 0;
    for (size_t k = 0; k < n; k++) {
        if (convert && u[k] >= 0x80) {
            d[o++] = (char)(0xC0 | (u[k] >> 6));
            d[o++] = (char)(0x80 | (u[k] & 0x3F));
        } else {
            d[o++] = s[k];
        }
    }
    d[o] = '\0';
    return d;
}

static void mtrim(const char **s, size_t *n) {
    while (*n && **s == ' ') { (*s)++; (*n)--; }
    while (*n && (*s)[*n - 1] == ' ') (*n)--;
}

/* A raw id in [0, 2^31). */
static bool mparse_id(const char *s, size_t n, uint32_t *out) {
    mtrim(&s, &n);
    if (n == 0 || n > 10) return false;
    uint64_t v = 0;
    for (size_t k = 0; k < n; k++) {
        if (s[k] < '0' || s[k] > '9') return false;
        v = v * 10 + (uint64_t)(s[k] - '0');
    }
    if (v > INT32_MAX) return false;
    *out = (uint32_t)v;
    return true;
}

#define MV(s, n) (int)((n) > 40 ? 40 : (n)), (s)

/* One file's text, split into lines by the caller. */
typedef struct mfile {
    const char *path;
    uint8_t *data;
    size_t n, pos;
    unsigned long long line;
} mfile;

/* Reads path if it exists: *found false when it does not. */
static fr_err mfile_open(mfile *f, const char *dir, const char *name, char *pathbuf, size_t cap, bool *found) {
    memset(f, 0, sizeof *f);
    *found = false;
    int w = snprintf(pathbuf, cap, "%s/%s", dir, name);
    if (w < 0 || (size_t)w >= cap) return fri_fail(FR_ERR_INVALID, "%s: directory path too long", dir);
    struct stat st;
    if (stat(pathbuf, &st) != 0) return FR_OK;
    *found = true;
    f->path = pathbuf;
    return fri_read_file(pathbuf, &f->data, &f->n);
}

/* Next non-blank line (without "\r\n"); false at the end. */
static bool mfile_line(mfile *f, const char **s, size_t *n) {
    while (f->pos < f->n) {
        const char *b = (const char *)f->data + f->pos;
        const char *nl = memchr(b, '\n', f->n - f->pos);
        size_t len = nl ? (size_t)(nl - b) : f->n - f->pos;
        f->pos += len + (nl ? 1 : 0);
        f->line++;
        if (len && b[len - 1] == '\r') len--;
        size_t k = 0;
        while (k < len && (b[k] == ' ' || b[k] == '\t')) k++;
        if (k == len) continue;
        *s = b;
        *n = len;
        return true;
    }
    return false;
}

static fr_err check_text(const mfile *f, const char *s, size_t n) {
    for (size_t k = 0; k < n; k++) {
        unsigned char c = (unsigned char)s[k];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return fri_fail(FR_ERR_PARSE, "%s:%llu: binary data (byte 0x%02x at column %zu); expected a text file",
                            f->path, f->line, c, k + 1);
    }
    return FR_OK;
}

static fr_err bad_count(const mfile *f, int want, bool at_least, const char *delim, int got, const char *s, size_t n) {
    return fri_fail(FR_ERR_PARSE, "%s:%llu: expected %s%d fields separated by %s, got %d in \"%.*s\"", f->path, f->line,
                    at_least ? "at least " : "", want, delim, got, MV(s, n));
}

static fr_err bad_id(const mfile *f, const char *what, const char *s, size_t n) {
    return fri_fail(FR_ERR_PARSE, "%s:%llu: %s \"%.*s\" is not a valid id; expected an integer in [0, 2^31)", f->path,
                    f->line, what, MV(s, n));
}

/* Sets a string slot (replacing what was there). */
static fr_err set_str(char **slot, const char *s, size_t n, bool latin1) {
    char *c = text_dup(s, n, latin1);
    if (!c) return FR_ERR_NOMEM;
    fri_free(*slot);
    *slot = c;
    return FR_OK;
}

/* ------------------------------------------------------------ items */

static const char *const ml100k_genres[19] = {
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama", "Fantasy",
    "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western"};

/* u.genre: "name|index"; names[] are pointers into the file's buffer (or the defaults). */
static fr_err read_u_genre(mfile *f, const char *names[19], size_t lens[19]) {
    const char *s;
    size_t n;
    while (mfile_line(f, &s, &n)) {
        fr_err e = check_text(f, s, n);
        if (e) return e;
        mfields fl;
        msplit(s, n, '|', false, &fl);
        if (fl.n != 2) return bad_count(f, 2, false, "'|'", fl.n, s, n);
        uint32_t idx;
        if (!mparse_id(fl.s[1], fl.len[1], &idx) || idx >= 19)
            return fri_fail(FR_ERR_PARSE, "%s:%llu: genre index \"%.*s\"; expected 0..18", f->path, f->line,
                            MV(fl.s[1], fl.len[1]));
        names[idx] = fl.s[0];
        lens[idx] = fl.len[0];
    }
    return FR_OK;
}

static fr_err read_u_item(mfile *f, const fr_dataset *d, fr_meta *m, const char *const gn[19], const size_t gl[19]) {
    const char *s;
    size_t n;
    while (mfile_line(f, &s, &n)) {
        fr_err e = check_text(f, s, n);
        if (e) return e;
        mfields fl;
        msplit(s, n, '|', false, &fl);
        if (fl.n != 24) return bad_count(f, 24, false, "'|'", fl.n, s, n);
        uint32_t id;
        if (!mparse_id(fl.s[0], fl.len[0], &id)) return bad_id(f, "item id", fl.s[0], fl.len[0]);
        char gbuf[512];
        size_t gn_len = 0;
        for (int g = 0; g < 19; g++) {
            const char *v = fl.s[5 + g];
            size_t vn = fl.len[5 + g];
            mtrim(&v, &vn);
            if (vn != 1 || (v[0] != '0' && v[0] != '1'))
                return fri_fail(FR_ERR_PARSE, "%s:%llu: genre flag %d \"%.*s\"; expected 0 or 1", f->path, f->line,
                                g + 1, MV(v, vn));
            if (v[0] == '1' && gn_len + gl[g] + 1 < sizeof gbuf) {
                if (gn_len) gbuf[gn_len++] = '|';
                memcpy(gbuf + gn_len, gn[g], gl[g]);
                gn_len += gl[g];
            }
        }
        int64_t di = fr_idmap_find(d->items, id);
        if (di < 0) continue;
        e = set_str(&m->title[di], fl.s[1], fl.len[1], true);
        if (!e && gn_len) e = set_str(&m->genres[di], gbuf, gn_len, true);
        if (e) return e;
    }
    return FR_OK;
}

/* movies.dat: "id::Title (Year)::Genre|Genre" in Latin-1. */
static fr_err read_movies_dat(mfile *f, const fr_dataset *d, fr_meta *m) {
    const char *s;
    size_t n;
    while (mfile_line(f, &s, &n)) {
        fr_err e = check_text(f, s, n);
        if (e) return e;
        mfields fl;
        msplit(s, n, ':', true, &fl);
        if (fl.n != 3) return bad_count(f, 3, false, "'::'", fl.n, s, n);
        uint32_t id;
        if (!mparse_id(fl.s[0], fl.len[0], &id)) return bad_id(f, "movie id", fl.s[0], fl.len[0]);
        int64_t di = fr_idmap_find(d->items, id);
        if (di < 0) continue;
        e = set_str(&m->title[di], fl.s[1], fl.len[1], true);
        if (!e && fl.len[2]) e = set_str(&m->genres[di], fl.s[2], fl.len[2], true);
        if (e) return e;
    }
    return FR_OK;
}

/* One RFC 4180 record from f (quoted fields may hold commas, "" and newlines), decoded
 * into out (cap bytes); fields point into out. Returns false at the end. */
static fr_err csv_record(mfile *f, char *out, size_t cap, mfields *fl, bool *got) {
    *got = false;
    fl->n = 0;
    const char *p = (const char *)f->data + f->pos, *end = (const char *)f->data + f->n;
    /* Skip blank lines. */
    while (p < end && (*p == '\n' || *p == '\r')) { if (*p == '\n') f->line++; p++; }
    if (p >= end) { f->pos = f->n; return FR_OK; }
    f->line++;
    unsigned long long start_line = f->line;
    size_t o = 0;
    for (;;) {
        size_t fs = o;
        if (p < end && *p == '"') {
            p++;
            for (;;) {
                if (p >= end)
                    return fri_fail(FR_ERR_PARSE, "%s:%llu: quoted field never closed; expected a closing '\"'", f->path,
                                    start_line);
                if (*p == '"') {
                    if (p + 1 < end && p[1] == '"') { if (o < cap) out[o++] = '"'; p += 2; continue; }
                    p++;
                    break;
                }
                if (*p == '\n') f->line++;
                if (o < cap) out[o++] = *p;
                p++;
            }
            if (p < end && *p != ',' && *p != '\n' && *p != '\r')
                return fri_fail(FR_ERR_PARSE, "%s:%llu: '%c' after a closing quote; expected ',' or end of line",
                                f->path, f->line, *p);
        } else {
            while (p < end && *p != ',' && *p != '\n' && *p != '\r') { if (o < cap) out[o++] = *p; p++; }
        }
        if (fl->n < META_FIELDS) { fl->s[fl->n] = out + fs; fl->len[fl->n] = o - fs; }
        fl->n++;
        if (p < end && *p == ',') { p++; continue; }
        while (p < end && *p == '\r') p++;
        if (p < end && *p == '\n') p++;
        break;
    }
    f->pos = (size_t)(p - (const char *)f->data);
    *got = true;
    return FR_OK;
}

/* movies.csv: "movieId,title,genres" with RFC 4180 quoting, UTF-8. */
static fr_err read_movies_csv(mfile *f, const fr_dataset *d, fr_meta *m) {
    char *rec = fri_malloc(f->n + 1);
    if (!rec) return FR_ERR_NOMEM;
    fr_err e = FR_OK;
    bool first = true;
    for (;;) {
        mfields fl;
        bool got;
        e = csv_record(f, rec, f->n, &fl, &got);
        if (e || !got) break;
        size_t total = 0;
        for (int k = 0; k < fl.n && k < META_FIELDS; k++) total += fl.len[k];
        if (fl.n != 3) { e = bad_count(f, 3, false, "','", fl.n, fl.s[0], total); break; }
        if ((e = check_text(f, fl.s[0], fl.len[0])) || (e = check_text(f, fl.s[2], fl.len[2]))) break;
        for (size_t k = 0; k < fl.len[1]; k++) /* a title may hold a newline from quoting; others are binary */
            if ((unsigned char)fl.s[1][k] < 0x20 && fl.s[1][k] != '\n' && fl.s[1][k] != '\t') {
                e = check_text(f, fl.s[1], fl.len[1]);
                break;
            }
        if (e) break;
        uint32_t id;
        if (!mparse_id(fl.s[0], fl.len[0], &id)) {
            if (first) { first = false; continue; } /* the header */
            e = bad_id(f, "movie id", fl.s[0], fl.len[0]);
            break;
        }
        first = false;
        int64_t di = fr_idmap_find(d->items, id);
        if (di < 0) continue;
        e = set_str(&m->title[di], fl.s[1], fl.len[1], false);
        static const char none[] = "(no genres listed)";
        if (!e && fl.len[2] && !(fl.len[2] == sizeof none - 1 && memcmp(fl.s[2], none, fl.len[2]) == 0))
            e = set_str(&m->genres[di], fl.s[2], fl.len[2], false);
        if (e) break;
    }
    fri_free(rec);
    return e;
}

/* ------------------------------------------------------------ users */

static const char *const attr_names[4] = {"age", "gender", "occupation", "zip"};

static fr_err ensure_attrs(fr_meta *m) {
    if (m->attrs) return FR_OK;
    m->attr_names = fri_calloc(4, sizeof *m->attr_names);
    m->attrs = fri_calloc(4, sizeof *m->attrs);
    if (!m->attr_names || !m->attrs) return FR_ERR_NOMEM;
    for (int a = 0; a < 4; a++) {
        m->attr_names[a] = fri_strdup(attr_names[a]);
        m->attrs[a] = fri_calloc(m->n_users ? m->n_users : 1, sizeof **m->attrs);
        m->n_attrs = (uint32_t)a + 1; /* counted as soon as its slot exists, for fri_meta_free */
        if (!m->attr_names[a] || !m->attrs[a]) return FR_ERR_NOMEM;
    }
    return FR_OK;
}

/* u.user "id|age|gender|occupation|zip" (order: age gender occupation zip) or users.dat
 * "UserID::Gender::Age::Occupation::Zip". */
static fr_err read_users(mfile *f, const fr_dataset *d, fr_meta *m, bool dat) {
    fr_err e = ensure_attrs(m);
    if (e) return e;
    const char *s;
    size_t n;
    /* Field index of age, gender, occupation, zip. */
    const int at[4] = {dat ? 2 : 1, dat ? 1 : 2, 3, 4};
    while (mfile_line(f, &s, &n)) {
        if ((e = check_text(f, s, n))) return e;
        mfields fl;
        msplit(s, n, '|', dat, &fl);
        if (fl.n != 5) return bad_count(f, 5, false, dat ? "'::'" : "'|'", fl.n, s, n);
        uint32_t id;
        if (!mparse_id(fl.s[0], fl.len[0], &id)) return bad_id(f, "user id", fl.s[0], fl.len[0]);
        int64_t du = fr_idmap_find(d->users, id);
        if (du < 0) continue;
        for (int a = 0; a < 4; a++) {
            const char *v = fl.s[at[a]];
            size_t vn = fl.len[at[a]];
            mtrim(&v, &vn);
            if ((e = set_str(&m->attrs[a][du], v, vn, true))) return e;
        }
    }
    return FR_OK;
}

/* ------------------------------------------------------------ public */

fr_err fr_dataset_load_meta(fr_dataset *d, const char *dir) {
    fr_err e = FR_OK;
    fr_meta *m = fri_calloc(1, sizeof *m);
    if (!m) return FR_ERR_NOMEM;
    m->n_items = d->n_items;
    m->n_users = d->n_users;
    m->title = fri_calloc(d->n_items ? d->n_items : 1, sizeof *m->title);
    m->genres = fri_calloc(d->n_items ? d->n_items : 1, sizeof *m->genres);
    if (!m->title || !m->genres) { fri_meta_free(m); return FR_ERR_NOMEM; }
    char path[4096], gpath[4096];
    mfile f = {0}, g = {0};
    bool found, any = false;

    /* Items: u.item (genre names from u.genre), movies.dat, movies.csv; later files
     * overwrite the fields they give. */
    const char *gn[19];
    size_t gl[19];
    for (int k = 0; k < 19; k++) { gn[k] = ml100k_genres[k]; gl[k] = strlen(gn[k]); }
    if ((e = mfile_open(&g, dir, "u.genre", gpath, sizeof gpath, &found))) goto done;
    if (found && (e = read_u_genre(&g, gn, gl))) goto done;
    if ((e = mfile_open(&f, dir, "u.item", path, sizeof path, &found))) goto done;
    if (found) { any = true; if ((e = read_u_item(&f, d, m, gn, gl))) goto done; }
    fri_free(f.data); f.data = NULL;
    fri_free(g.data); g.data = NULL;
    if ((e = mfile_open(&f, dir, "movies.dat", path, sizeof path, &found))) goto done;
    if (found) { any = true; if ((e = read_movies_dat(&f, d, m))) goto done; }
    fri_free(f.data); f.data = NULL;
    if ((e = mfile_open(&f, dir, "movies.csv", path, sizeof path, &found))) goto done;
    if (found) { any = true; if ((e = read_movies_csv(&f, d, m))) goto done; }
    fri_free(f.data); f.data = NULL;
    /* Users. */
    if ((e = mfile_open(&f, dir, "u.user", path, sizeof path, &found))) goto done;
    if (found) { any = true; if ((e = read_users(&f, d, m, false))) goto done; }
    fri_free(f.data); f.data = NULL;
    if ((e = mfile_open(&f, dir, "users.dat", path, sizeof path, &found))) goto done;
    if (found) { any = true; if ((e = read_users(&f, d, m, true))) goto done; }
done:
    fri_free(f.data);
    fri_free(g.data);
    if (e || !any) { fri_meta_free(m); return e; }
    fri_meta_free(d->meta);
    d->meta = m;
    return FR_OK;
}
