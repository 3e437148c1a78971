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
#include "data/text.h"

/* A raw id in [0, 2^31): unsigned digits only, at most 10 of them (stricter than the
 * ratings readers' ids, which may carry a sign). */
static bool mparse_id(const char *s, size_t n, uint32_t *out) {
    fri_text_trim(&s, &n);
    if (n == 0 || n > 10 || (unsigned)(*s - '0') > 9) return false;
    return fri_parse_id(s, n, out) == FRI_NUM_OK;
}

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
        if (fri_text_blank(b, len)) continue;
        *s = b;
        *n = len;
        return true;
    }
    return false;
}

static fr_err check_text(const mfile *f, const char *s, size_t n) {
    long k = fri_text_control_byte(s, n);
    if (k >= 0)
        return fri_fail(FR_ERR_PARSE, "%s:%llu: binary data (byte 0x%02x at column %ld); expected a text file",
                        f->path, f->line, (unsigned char)s[k], k + 1);
    return FR_OK;
}

static fr_err bad_count(const mfile *f, int want, bool at_least, const char *delim, int got, const char *s, size_t n) {
    return fri_fail(FR_ERR_PARSE, "%s:%llu: expected %s%d fields separated by %s, got %d in \"%.*s\"", f->path, f->line,
                    at_least ? "at least " : "", want, delim, got, FRI_VAL(s, n));
}

static fr_err bad_id(const mfile *f, const char *what, const char *s, size_t n) {
    return fri_fail(FR_ERR_PARSE, "%s:%llu: %s \"%.*s\" is not a valid id; expected an integer in [0, 2^31)", f->path,
                    f->line, what, FRI_VAL(s, n));
}

/* Sets a string slot (replacing what was there). */
static fr_err set_str(char **slot, const char *s, size_t n, bool latin1) {
    char *c = fri_text_dup(s, n, latin1);
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
        fri_fields fl;
        fri_text_split(s, n, '|', false, &fl);
        if (fl.n != 2) return bad_count(f, 2, false, "'|'", fl.n, s, n);
        uint32_t idx;
        if (!mparse_id(fl.s[1], fl.len[1], &idx) || idx >= 19)
            return fri_fail(FR_ERR_PARSE, "%s:%llu: genre index \"%.*s\"; expected 0..18", f->path, f->line,
                            FRI_VAL(fl.s[1], fl.len[1]));
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
        fri_fields fl;
        fri_text_split(s, n, '|', false, &fl);
        if (fl.n != 24) return bad_count(f, 24, false, "'|'", fl.n, s, n);
        uint32_t id;
        if (!mparse_id(fl.s[0], fl.len[0], &id)) return bad_id(f, "item id", fl.s[0], fl.len[0]);
        char gbuf[512];
        size_t gn_len = 0;
        for (int g = 0; g < 19; g++) {
            const char *v = fl.s[5 + g];
            size_t vn = fl.len[5 + g];
            fri_text_trim(&v, &vn);
            if (vn != 1 || (v[0] != '0' && v[0] != '1'))
                return fri_fail(FR_ERR_PARSE, "%s:%llu: genre flag %d \"%.*s\"; expected 0 or 1", f->path, f->line,
                                g + 1, FRI_VAL(v, vn));
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
        fri_fields fl;
        fri_text_split(s, n, ':', true, &fl);
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
static fr_err csv_record(mfile *f, char *out, size_t cap, fri_fields *fl, bool *got) {
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
        if (fl->n < FRI_MAX_FIELDS) { fl->s[fl->n] = out + fs; fl->len[fl->n] = o - fs; }
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
        fri_fields fl;
        bool got;
        e = csv_record(f, rec, f->n, &fl, &got);
        if (e || !got) break;
        size_t total = 0;
        for (int k = 0; k < fl.n && k < FRI_MAX_FIELDS; k++) total += fl.len[k];
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
        fri_fields fl;
        fri_text_split(s, n, '|', dat, &fl);
        if (fl.n != 5) return bad_count(f, 5, false, dat ? "'::'" : "'|'", fl.n, s, n);
        uint32_t id;
        if (!mparse_id(fl.s[0], fl.len[0], &id)) return bad_id(f, "user id", fl.s[0], fl.len[0]);
        int64_t du = fr_idmap_find(d->users, id);
        if (du < 0) continue;
        for (int a = 0; a < 4; a++) {
            const char *v = fl.s[at[a]];
            size_t vn = fl.len[at[a]];
            fri_text_trim(&v, &vn);
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
