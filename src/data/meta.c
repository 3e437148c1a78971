/* Metadata readers: item titles and genres, user attributes, from the files MovieLens
 * ships beside its ratings (u.item + u.genre + u.user; movies.dat + users.dat;
 * movies.csv). These files are small, so each is read whole.
 *
 * Invariants: strings in fr_meta are UTF-8 (u.item and movies.dat are Latin-1 and are
 * converted, unless a value already is valid UTF-8); entries are indexed by the dataset's
 * dense ids, and rows whose raw id the dataset does not know are ignored. A missing file
 * is not an error. A malformed line (binary data, a wrong field count, a bad id or flag)
 * costs that line only: it is skipped and counted (fr_meta_skipped keeps the count and the
 * first one's message, naming file, line, value and what was expected). A file with bad
 * lines and no good one is not the file its name says: that is an error with the first
 * bad line's message. A UTF-8 byte-order mark at the start of a file is skipped. On any
 * error the dataset's metadata is left as it was. */
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

/* One file's text, split into lines by the caller, and its bad-line books. */
typedef struct mfile {
    char *path;       /* dir/name, allocated (no length limit) */
    uint8_t *data;
    size_t n, pos;
    unsigned long long line;
    uint64_t good, bad; /* lines used and lines skipped */
    char *first_bad;  /* message of the first skipped line */
} mfile;

static void mfile_close(mfile *f) {
    fri_free(f->path);
    fri_free(f->data);
    fri_free(f->first_bad);
    memset(f, 0, sizeof *f);
}

/* Reads dir/name if it exists: *found false when it does not. */
static fr_err mfile_open(mfile *f, const char *dir, const char *name, bool *found) {
    memset(f, 0, sizeof *f);
    *found = false;
    size_t n = strlen(dir) + strlen(name) + 2;
    f->path = fri_malloc(n);
    if (!f->path) return FR_ERR_NOMEM;
    snprintf(f->path, n, "%s/%s", dir, name);
    struct stat st;
    if (stat(f->path, &st) != 0) {
        int err = errno;
        if (err == ENOENT || err == ENOTDIR) return FR_OK; /* not there */
        char note[48];
        return fri_fail(FR_ERR_IO, "%s%s: cannot stat: %s%s", FRI_PATH(f->path), strerror(err),
                        fri_path_note(note, f->path, err));
    }
    *found = true;
    fr_err e = fri_read_file(f->path, &f->data, &f->n);
    if (!e && f->n >= 3 && memcmp(f->data, "\xEF\xBB\xBF", 3) == 0) f->pos = 3; /* a byte-order mark */
    return e;
}

/* A line's error e: out of memory stops the load; anything else skips the line, counted
 * in the file and in m with the first message kept. */
static fr_err skip_line(mfile *f, fr_meta *m, fr_err e) {
    if (e == FR_ERR_NOMEM) return e;
    f->bad++;
    m->skipped++;
    if (!f->first_bad && !(f->first_bad = fri_strdup(fr_errmsg()))) return FR_ERR_NOMEM;
    if (!m->first_bad && !(m->first_bad = fri_strdup(fr_errmsg()))) return FR_ERR_NOMEM;
    return FR_OK;
}

/* The end of a file: bad lines and no good one make it an error. */
static fr_err mfile_done(const mfile *f) {
    if (f->bad && !f->good)
        return fri_fail(FR_ERR_PARSE, "%s (no line of the file was usable)", f->first_bad);
    return FR_OK;
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
    return fri_text_check(f->path, f->line, s, n);
}

static fr_err bad_count(const mfile *f, int want, bool at_least, const char *delim, int got, const char *s, size_t n) {
    return fri_fail(FR_ERR_PARSE, "%s%s:%llu: expected %s%d fields separated by %s, got %d in \"%.*s\"", FRI_PATH(f->path), f->line,
                    at_least ? "at least " : "", want, delim, got, FRI_VAL(s, n));
}

static fr_err bad_id(const mfile *f, const char *what, const char *s, size_t n) {
    return fri_fail(FR_ERR_PARSE, "%s%s:%llu: %s \"%.*s\" is not a valid id; expected an integer in [0, 2^31)", FRI_PATH(f->path),
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

/* Runs one line parser over every line of f: a line it refuses is skipped and counted
 * (skip_line), a line it takes counts as good. */
#define EACH_LINE(f, m, parse)                                                           \
    do {                                                                                 \
        const char *s_;                                                                  \
        size_t n_;                                                                       \
        while (mfile_line((f), &s_, &n_)) {                                              \
            fr_err e_ = parse;                                                           \
            if (!e_) (f)->good += 1;                                                     \
            else if ((e_ = skip_line((f), (m), e_))) return e_;                          \
        }                                                                                \
    } while (0)

/* u.genre: "name|index"; names[] are pointers into the file's buffer (or the defaults). */
static fr_err genre_line(const mfile *f, const char *s, size_t n, const char *names[19], size_t lens[19]) {
    fr_err e = check_text(f, s, n);
    if (e) return e;
    fri_fields fl;
    fri_text_split(s, n, '|', false, &fl);
    if (fl.n != 2) return bad_count(f, 2, false, "'|'", fl.n, s, n);
    uint32_t idx;
    if (!mparse_id(fl.s[1], fl.len[1], &idx) || idx >= 19)
        return fri_fail(FR_ERR_PARSE, "%s%s:%llu: genre index \"%.*s\"; expected 0..18", FRI_PATH(f->path), f->line,
                        FRI_VAL(fl.s[1], fl.len[1]));
    names[idx] = fl.s[0];
    lens[idx] = fl.len[0];
    return FR_OK;
}

static fr_err read_u_genre(mfile *f, fr_meta *m, const char *names[19], size_t lens[19]) {
    EACH_LINE(f, m, genre_line(f, s_, n_, names, lens));
    return mfile_done(f);
}

/* u.item: "id|title|date|video date|url|19 genre flags" in Latin-1. */
static fr_err item_line(const mfile *f, const char *s, size_t n, const fr_dataset *d, fr_meta *m,
                        const char *const gn[19], const size_t gl[19]) {
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
            return fri_fail(FR_ERR_PARSE, "%s%s:%llu: genre flag %d \"%.*s\"; expected 0 or 1", FRI_PATH(f->path), f->line,
                            g + 1, FRI_VAL(v, vn));
        if (v[0] == '1' && gn_len + gl[g] + 1 < sizeof gbuf) {
            if (gn_len) gbuf[gn_len++] = '|';
            memcpy(gbuf + gn_len, gn[g], gl[g]);
            gn_len += gl[g];
        }
    }
    int64_t di = fr_idmap_find(d->items, id);
    if (di < 0) return FR_OK;
    e = set_str(&m->title[di], fl.s[1], fl.len[1], true);
    if (!e && gn_len) e = set_str(&m->genres[di], gbuf, gn_len, true);
    return e;
}

static fr_err read_u_item(mfile *f, const fr_dataset *d, fr_meta *m, const char *const gn[19], const size_t gl[19]) {
    EACH_LINE(f, m, item_line(f, s_, n_, d, m, gn, gl));
    return mfile_done(f);
}

/* movies.dat: "id::Title (Year)::Genre|Genre" in Latin-1. */
static fr_err movie_dat_line(const mfile *f, const char *s, size_t n, const fr_dataset *d, fr_meta *m) {
    fr_err e = check_text(f, s, n);
    if (e) return e;
    fri_fields fl;
    fri_text_split(s, n, ':', true, &fl);
    if (fl.n != 3) return bad_count(f, 3, false, "'::'", fl.n, s, n);
    uint32_t id;
    if (!mparse_id(fl.s[0], fl.len[0], &id)) return bad_id(f, "movie id", fl.s[0], fl.len[0]);
    int64_t di = fr_idmap_find(d->items, id);
    if (di < 0) return FR_OK;
    e = set_str(&m->title[di], fl.s[1], fl.len[1], true);
    if (!e && fl.len[2]) e = set_str(&m->genres[di], fl.s[2], fl.len[2], true);
    return e;
}

static fr_err read_movies_dat(mfile *f, const fr_dataset *d, fr_meta *m) {
    EACH_LINE(f, m, movie_dat_line(f, s_, n_, d, m));
    return mfile_done(f);
}

/* One RFC 4180 record from f (quoted fields may hold commas, "" and newlines), decoded
 * into out (cap bytes); fields point into out. *got false at the end. A malformed record
 * is an error with f past it: past the end of its line after a stray character behind a
 * closing quote, at the end of the file after a quote that never closes. */
static fr_err csv_record(mfile *f, char *out, size_t cap, fri_fields *fl, bool *got) {
    *got = false;
    fl->n = 0;
    const char *p = (const char *)f->data + f->pos, *end = (const char *)f->data + f->n;
    /* Skip blank lines. */
    while (p < end && (*p == '\n' || *p == '\r')) { if (*p == '\n') f->line++; p++; }
    if (p >= end) { f->pos = f->n; return FR_OK; }
    *got = true;
    f->line++;
    unsigned long long start_line = f->line;
    size_t o = 0;
    for (;;) {
        size_t fs = o;
        if (p < end && *p == '"') {
            p++;
            for (;;) {
                if (p >= end) {
                    f->pos = f->n;
                    return fri_fail(FR_ERR_PARSE, "%s%s:%llu: quoted field never closed; expected a closing '\"'", FRI_PATH(f->path),
                                    start_line);
                }
                if (*p == '"') {
                    if (p + 1 < end && p[1] == '"') { if (o < cap) out[o++] = '"'; p += 2; continue; }
                    p++;
                    break;
                }
                if (*p == '\n') f->line++;
                if (o < cap) out[o++] = *p;
                p++;
            }
            if (p < end && *p != ',' && *p != '\n' && *p != '\r') {
                char c = *p;
                const char *nl = memchr(p, '\n', (size_t)(end - p));
                f->pos = nl ? (size_t)(nl + 1 - (const char *)f->data) : f->n;
                return fri_fail(FR_ERR_PARSE, "%s%s:%llu: '%c' after a closing quote; expected ',' or end of line",
                                FRI_PATH(f->path), f->line, c);
            }
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
    return FR_OK;
}

/* One movies.csv record; *header set when it is the header (the first record, its id not
 * a number). */
static fr_err movie_csv_record(const mfile *f, const fri_fields *fl, bool first, bool *header, const fr_dataset *d,
                               fr_meta *m) {
    *header = false;
    size_t total = 0;
    for (int k = 0; k < fl->n && k < FRI_MAX_FIELDS; k++) total += fl->len[k];
    if (fl->n != 3) return bad_count(f, 3, false, "','", fl->n, fl->s[0], total);
    fr_err e;
    if ((e = check_text(f, fl->s[0], fl->len[0])) || (e = check_text(f, fl->s[2], fl->len[2]))) return e;
    for (size_t k = 0; k < fl->len[1]; k++) /* a title may hold a newline from quoting; others are binary */
        if ((unsigned char)fl->s[1][k] < 0x20 && fl->s[1][k] != '\n' && fl->s[1][k] != '\t')
            return check_text(f, fl->s[1], fl->len[1]);
    uint32_t id;
    if (!mparse_id(fl->s[0], fl->len[0], &id)) {
        if (first) { *header = true; return FR_OK; }
        return bad_id(f, "movie id", fl->s[0], fl->len[0]);
    }
    int64_t di = fr_idmap_find(d->items, id);
    if (di < 0) return FR_OK;
    e = set_str(&m->title[di], fl->s[1], fl->len[1], false);
    static const char none[] = "(no genres listed)";
    if (!e && fl->len[2] && !(fl->len[2] == sizeof none - 1 && memcmp(fl->s[2], none, fl->len[2]) == 0))
        e = set_str(&m->genres[di], fl->s[2], fl->len[2], false);
    return e;
}

/* movies.csv: "movieId,title,genres" with RFC 4180 quoting, UTF-8. */
static fr_err read_movies_csv(mfile *f, const fr_dataset *d, fr_meta *m) {
    char *rec = fri_malloc(f->n + 1);
    if (!rec) return FR_ERR_NOMEM;
    fr_err e = FR_OK;
    bool first = true;
    for (;;) {
        fri_fields fl;
        bool got, header = false;
        e = csv_record(f, rec, f->n, &fl, &got);
        if (!got) break;
        if (!e) e = movie_csv_record(f, &fl, first, &header, d, m);
        first = false;
        if (!e) f->good += !header;
        else if ((e = skip_line(f, m, e))) break;
    }
    fri_free(rec);
    return e ? e : mfile_done(f);
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
static fr_err user_line(const mfile *f, const char *s, size_t n, const fr_dataset *d, fr_meta *m, bool dat) {
    fr_err e = check_text(f, s, n);
    if (e) return e;
    /* Field index of age, gender, occupation, zip. */
    const int at[4] = {dat ? 2 : 1, dat ? 1 : 2, 3, 4};
    fri_fields fl;
    fri_text_split(s, n, '|', dat, &fl);
    if (fl.n != 5) return bad_count(f, 5, false, dat ? "'::'" : "'|'", fl.n, s, n);
    uint32_t id;
    if (!mparse_id(fl.s[0], fl.len[0], &id)) return bad_id(f, "user id", fl.s[0], fl.len[0]);
    int64_t du = fr_idmap_find(d->users, id);
    if (du < 0) return FR_OK;
    for (int a = 0; a < 4; a++) {
        const char *v = fl.s[at[a]];
        size_t vn = fl.len[at[a]];
        fri_text_trim(&v, &vn);
        if ((e = set_str(&m->attrs[a][du], v, vn, true))) return e;
    }
    return FR_OK;
}

static fr_err read_users(mfile *f, const fr_dataset *d, fr_meta *m, bool dat) {
    fr_err e = ensure_attrs(m);
    if (e) return e;
    EACH_LINE(f, m, user_line(f, s_, n_, d, m, dat));
    return mfile_done(f);
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
    mfile f = {0}, g = {0};
    bool found, any = false;

    /* Items: u.item (genre names from u.genre), movies.dat, movies.csv; later files
     * overwrite the fields they give. */
    const char *gn[19];
    size_t gl[19];
    for (int k = 0; k < 19; k++) { gn[k] = ml100k_genres[k]; gl[k] = strlen(gn[k]); }
    if ((e = mfile_open(&g, dir, "u.genre", &found))) goto done;
    if (found && (e = read_u_genre(&g, m, gn, gl))) goto done;
    if ((e = mfile_open(&f, dir, "u.item", &found))) goto done;
    if (found) { any = true; if ((e = read_u_item(&f, d, m, gn, gl))) goto done; }
    mfile_close(&f);
    mfile_close(&g);
    if ((e = mfile_open(&f, dir, "movies.dat", &found))) goto done;
    if (found) { any = true; if ((e = read_movies_dat(&f, d, m))) goto done; }
    mfile_close(&f);
    if ((e = mfile_open(&f, dir, "movies.csv", &found))) goto done;
    if (found) { any = true; if ((e = read_movies_csv(&f, d, m))) goto done; }
    mfile_close(&f);
    /* Users. */
    if ((e = mfile_open(&f, dir, "u.user", &found))) goto done;
    if (found) { any = true; if ((e = read_users(&f, d, m, false))) goto done; }
    mfile_close(&f);
    if ((e = mfile_open(&f, dir, "users.dat", &found))) goto done;
    if (found) { any = true; if ((e = read_users(&f, d, m, true))) goto done; }
done:
    mfile_close(&f);
    mfile_close(&g);
    if (e || !any) { fri_meta_free(m); return e; }
    if (m->skipped) fr_errmsg_clear();
    fri_meta_free(d->meta);
    d->meta = m;
    return FR_OK;
}
