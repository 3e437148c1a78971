/* Ratings readers: MovieLens u.data / ratings.dat / ratings.csv, NCF .rating and .negative,
 * and generic delimited text, into fri_rows and then the CSR builder.
 *
 * Files are read with read(2) in 1 MiB chunks (never whole, never mmap'd, so the page
 * cache does not show up in RSS); a line may straddle two chunks, the tail is moved to the
 * front before the next read. Numbers are parsed by hand (strtod only for unusual
 * decimals such as "4e0"); the fixed formats first try a one-pass scanner of the usual
 * line shape straight from the buffer (a NUL sentinel after the bytes read ends every
 * scan) and fall back to the field-by-field parser, which also words the errors. Every
 * malformed line is an error naming file, line, the value and what was expected, unless
 * skip_bad_lines counts it instead. Regular files of 64 MiB and more are parsed in
 * parallel byte ranges (see "parallel parse" below) with the same rows, statistics and
 * errors as the serial path.
 *
 * Format detection (FR_FORMAT_AUTO), from the first non-blank line:
 *   1. the file name ends in ".rating"                     -> NCF (dense ids)
 *   2. the line contains "::"                              -> ML1M
 *   3. the line contains a tab: 4 fields -> ML100K, else   -> DELIMITED (tab)
 *   4. the line contains ',': 4 fields -> CSV (a non-numeric first line is its header),
 *      else                                                -> DELIMITED (',')
 *   5. the line contains ';' or '|'                        -> DELIMITED (that char)
 *   otherwise the format cannot be detected (FR_ERR_PARSE).
 * An auto-detected DELIMITED file takes its columns from a header (user/userId/user_id,
 * item/itemId/movieId..., rating/score, timestamp/time) when the first line is not numeric,
 * else by position: user, item, [rating, [timestamp]].
 * fr_dataset_load_pair detects the training file and reads the test file the same way. */
#define _GNU_SOURCE /* memmem */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/read.h"

#define CHUNK ((size_t)1 << 20)   /* bytes per read(2) */
#define MAX_LINE ((size_t)64 << 20) /* longest line accepted */
#define PAD 8                      /* bytes after the sentinel that may be loaded (not used) */
#define MAX_FIELDS 64              /* fields kept per line (more are counted only) */
#define ID_LIMIT 2147483647ull     /* raw ids are in [0, 2^31) */

/* ------------------------------------------------------------ line reader */

typedef struct lreader {
    int fd;
    const char *path;
    char *buf;        /* [cap + 1] */
    size_t cap;
    size_t pos, end;  /* unconsumed bytes are buf[pos, end) */
    size_t scan;      /* bytes in [pos, scan) are known to hold no '\n' */
    bool eof;
    bool ranged;      /* reads [off, stop) with pread on a borrowed fd */
    uint64_t off;     /* file offset of buf[end] */
    uint64_t stop;    /* end of the range when ranged */
    uint64_t line;    /* number of the last line returned (1-based) */
    uint64_t bytes;   /* bytes read so far */
} lreader;

static fr_err lr_open(lreader *r, const char *path) {
    memset(r, 0, sizeof *r);
    r->fd = -1;
    r->path = path;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return fri_fail(FR_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return fri_fail(FR_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
    }
    if (S_ISDIR(st.st_mode)) {
        close(fd);
        return fri_fail(FR_ERR_IO, "%s: is a directory; expected a ratings file", path);
    }
    r->buf = fri_malloc(CHUNK + 1 + PAD);
    if (!r->buf) { close(fd); return FR_ERR_NOMEM; }
    r->buf[0] = '\0';
    r->cap = CHUNK;
    r->fd = fd;
    return FR_OK;
}

/* A reader of the byte range [start, stop) of the open file fd (not closed by lr_close). */
static fr_err lr_open_range(lreader *r, const char *path, int fd, uint64_t start, uint64_t stop) {
    memset(r, 0, sizeof *r);
    r->fd = -1;
    r->path = path;
    r->buf = fri_malloc(CHUNK + 1 + PAD);
    if (!r->buf) return FR_ERR_NOMEM;
    r->buf[0] = '\0';
    r->cap = CHUNK;
    r->fd = fd;
    r->ranged = true;
    r->off = start;
    r->stop = stop;
    return FR_OK;
}

static void lr_close(lreader *r) {
    if (r->fd >= 0 && !r->ranged) close(r->fd);
    fri_free(r->buf);
    r->fd = -1;
    r->buf = NULL;
}

/* Reads more bytes after compacting; at end of file sets eof. */
static fr_err lr_fill(lreader *r) {
    if (r->pos > 0) {
        memmove(r->buf, r->buf + r->pos, r->end - r->pos);
        r->end -= r->pos;
        r->scan -= r->pos;
        r->pos = 0;
    }
    if (r->end == r->cap) {
        if (r->cap >= MAX_LINE)
            return fri_fail(FR_ERR_PARSE, "%s:%llu: line longer than %zu MiB; expected a text file of short lines",
                            r->path, (unsigned long long)r->line + 1, MAX_LINE >> 20);
        char *nb = fri_realloc(r->buf, r->cap * 2 + 1 + PAD);
        if (!nb) return FR_ERR_NOMEM;
        r->buf = nb;
        r->cap *= 2;
    }
    for (;;) {
        size_t want = r->cap - r->end;
        ssize_t k;
        if (r->ranged) {
            if (r->stop - r->off < want) want = (size_t)(r->stop - r->off);
            k = want ? pread(r->fd, r->buf + r->end, want, (off_t)r->off) : 0;
        } else {
            k = read(r->fd, r->buf + r->end, want);
        }
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) return fri_fail(FR_ERR_IO, "%s: read failed: %s", r->path, strerror(errno));
        if (k == 0) r->eof = true;
        r->end += (size_t)k;
        r->buf[r->end] = '\0'; /* a sentinel for fast_row (buf has cap + 1 bytes) */
        r->bytes += (uint64_t)k;
        r->off += (uint64_t)k;
        return FR_OK;
    }
}

/* Next line without its '\n' (and a '\r' before it). Returns 1 with a line, 0 at the end,
 * -1 on error (*err set). *unterminated tells a final line that has no '\n'. The line is
 * NUL-terminated in place and valid until the next call. */
static int lr_next(lreader *r, char **s, size_t *len, bool *unterminated, fr_err *err) {
    for (;;) {
        char *nl = memchr(r->buf + r->scan, '\n', r->end - r->scan);
        if (nl) {
            char *b = r->buf + r->pos;
            size_t n = (size_t)(nl - b);
            r->pos = r->scan = (size_t)(nl - r->buf) + 1;
            if (n && b[n - 1] == '\r') n--;
            b[n] = '\0';
            *s = b;
            *len = n;
            *unterminated = false;
            r->line++;
            return 1;
        }
        r->scan = r->end;
        if (r->eof) {
            if (r->pos == r->end) return 0;
            char *b = r->buf + r->pos;
            size_t n = r->end - r->pos;
            r->pos = r->scan = r->end;
            if (n && b[n - 1] == '\r') n--;
            b[n] = '\0'; /* buf has cap + 1 bytes */
            *s = b;
            *len = n;
            *unterminated = true;
            r->line++;
            return 1;
        }
        fr_err e = lr_fill(r);
        if (e) { *err = e; return -1; }
    }
}

/* ------------------------------------------------------------ fields and numbers */

typedef struct fields {
    int n;                       /* fields in the line (may exceed MAX_FIELDS) */
    const char *s[MAX_FIELDS];
    size_t len[MAX_FIELDS];
} fields;

/* Splits on a single char, or on "::" when dcolon. */
static void split(const char *s, size_t n, char delim, bool dcolon, fields *f) {
    const char *end = s + n, *p = s;
    f->n = 0;
    for (;;) {
        const char *q = memchr(p, dcolon ? ':' : delim, (size_t)(end - p));
        while (dcolon && q && !(q + 1 < end && q[1] == ':')) q = memchr(q + 1, ':', (size_t)(end - q - 1));
        const char *fe = q ? q : end;
        if (f->n < MAX_FIELDS) {
            f->s[f->n] = p;
            f->len[f->n] = (size_t)(fe - p);
        }
        f->n++;
        if (!q) break;
        p = q + (dcolon ? 2 : 1);
    }
}

static void trim(const char **s, size_t *n) {
    while (*n && (**s == ' ')) { (*s)++; (*n)--; }
    while (*n && (*s)[*n - 1] == ' ') (*n)--;
}

enum { NUM_OK = 0, NUM_BAD = -1, NUM_RANGE = -2 };

/* An id: decimal digits, value in [0, 2^31). */
static int parse_id(const char *s, size_t n, uint32_t *out) {
    trim(&s, &n);
    if (n == 0) return NUM_BAD;
    bool neg = false;
    if (*s == '-' || *s == '+') { neg = *s == '-'; s++; n--; }
    if (n == 0) return NUM_BAD;
    uint64_t v = 0;
    for (size_t k = 0; k < n; k++) {
        unsigned d = (unsigned char)s[k] - '0';
        if (d > 9) return NUM_BAD;
        if (v <= ID_LIMIT) v = v * 10 + d;
    }
    if (neg && v != 0) return NUM_RANGE;
    if (v > ID_LIMIT) return NUM_RANGE;
    *out = (uint32_t)v;
    return NUM_OK;
}

static int parse_i64(const char *s, size_t n, int64_t *out) {
    trim(&s, &n);
    if (n == 0) return NUM_BAD;
    bool neg = false;
    if (*s == '-' || *s == '+') { neg = *s == '-'; s++; n--; }
    if (n == 0) return NUM_BAD;
    uint64_t v = 0;
    for (size_t k = 0; k < n; k++) {
        unsigned d = (unsigned char)s[k] - '0';
        if (d > 9) return NUM_BAD;
        if (v > (uint64_t)INT64_MAX / 10 - 1) return NUM_RANGE;
        v = v * 10 + d;
    }
    *out = neg ? -(int64_t)v : (int64_t)v;
    return NUM_OK;
}

static const double p10[19] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9,
                                1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18};

/* A finite decimal: [+-]digits[.digits]; anything else goes through strtod. */
static int parse_real(const char *s, size_t n, double *out) {
    trim(&s, &n);
    if (n == 0) return NUM_BAD;
    const char *p = s, *end = s + n;
    bool neg = false;
    if (*p == '-' || *p == '+') { neg = *p == '-'; p++; }
    uint64_t ip = 0, fp = 0;
    int id = 0, fd = 0;
    while (p < end && (unsigned)(*p - '0') <= 9 && id < 18) { ip = ip * 10 + (unsigned)(*p - '0'); p++; id++; }
    if (p < end && *p == '.') {
        p++;
        while (p < end && (unsigned)(*p - '0') <= 9 && fd < 18) { fp = fp * 10 + (unsigned)(*p - '0'); p++; fd++; }
    }
    if (p == end && id + fd > 0) {
        double v = (double)ip + (fd ? (double)fp / p10[fd] : 0.0);
        *out = neg ? -v : v;
        return NUM_OK;
    }
    /* Unusual: exponents, very long digit runs. */
    char tmp[64];
    if (n >= sizeof tmp) return NUM_BAD;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    for (size_t k = 0; k < n; k++) /* strtod would take "inf", "nan", hex: refuse letters other than e */
        if (!strchr("0123456789+-.eE", tmp[k])) return NUM_BAD;
    char *e = NULL;
    errno = 0;
    double v = strtod(tmp, &e);
    if (e != tmp + n || e == tmp) return NUM_BAD;
    if (!isfinite(v)) return NUM_RANGE;
    *out = v;
    return NUM_OK;
}

/* ------------------------------------------------------------ reading rows */

typedef struct spec {
    fr_format fmt;
    char delim;         /* single-char delimiter */
    bool dcolon;        /* "::" */
    int nf_min, nf_max; /* accepted field counts (nf_max 0: no upper bound) */
    int cu, ci, cr, ct; /* 0-based columns; -1 none */
    bool header_auto;   /* skip the first line when its first field is not numeric */
    bool header;        /* the first line is a header */
} spec;

static const char *delim_name(const spec *sp) {
    if (sp->dcolon) return "'::'";
    switch (sp->delim) {
    case '\t': return "tab";
    case ',': return "','";
    case ';': return "';'";
    case '|': return "'|'";
    default: return "the delimiter";
    }
}

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

static bool is_numeric_field(const char *s, size_t n) {
    trim(&s, &n);
    if (n && (*s == '-' || *s == '+')) { s++; n--; }
    return n > 0 && (unsigned)(*s - '0') <= 9;
}

/* Reports the first control byte of a line (binary data), or -1. */
static long control_byte(const char *s, size_t n) {
    for (size_t k = 0; k < n; k++) {
        unsigned char c = (unsigned char)s[k];
        if ((c < 0x20 && c != '\t') || c == 0x7f) return (long)k;
    }
    return -1;
}

/* Quotes a value for a message: at most 40 bytes. */
#define VAL(s, n) (int)((n) > 40 ? 40 : (n)), (s)

typedef struct rdctx {
    const char *path;
    const fr_load_opts *o;
    spec sp;
    uint64_t line;
    bool unterminated;
} rdctx;

/* Parses one data line into a row. On failure sets the message and returns the code. */
static fr_err parse_line(const rdctx *c, const char *s, size_t n, uint32_t *u, uint32_t *i, double *r, int64_t *t) {
    const spec *sp = &c->sp;
    unsigned long long ln = (unsigned long long)c->line;
    fields f;
    split(s, n, sp->delim, sp->dcolon, &f);
    if (f.n < sp->nf_min || (sp->nf_max && f.n > sp->nf_max)) {
        if (sp->nf_max == sp->nf_min)
            return fri_fail(FR_ERR_PARSE, "%s:%llu: expected %d fields separated by %s, got %d in \"%.*s\"", c->path, ln,
                            sp->nf_min, delim_name(sp), f.n, VAL(s, n));
        if (sp->nf_max)
            return fri_fail(FR_ERR_PARSE, "%s:%llu: expected %d to %d fields separated by %s, got %d in \"%.*s\"",
                            c->path, ln, sp->nf_min, sp->nf_max, delim_name(sp), f.n, VAL(s, n));
        return fri_fail(FR_ERR_PARSE, "%s:%llu: expected at least %d fields separated by %s, got %d in \"%.*s\"",
                        c->path, ln, sp->nf_min, delim_name(sp), f.n, VAL(s, n));
    }
    static const char *const idname[2] = {"user id", "item id"};
    const int cols[2] = {sp->cu, sp->ci};
    uint32_t ids[2];
    for (int k = 0; k < 2; k++) {
        const char *v = f.s[cols[k]];
        size_t vn = f.len[cols[k]];
        int rc = parse_id(v, vn, &ids[k]);
        if (rc == NUM_BAD)
            return fri_fail(FR_ERR_PARSE, "%s:%llu: %s \"%.*s\" is not a number; expected an integer in [0, 2^31)",
                            c->path, ln, idname[k], VAL(v, vn));
        if (rc == NUM_RANGE)
            return fri_fail(FR_ERR_PARSE, "%s:%llu: %s \"%.*s\" is out of range; expected an integer in [0, 2^31)",
                            c->path, ln, idname[k], VAL(v, vn));
    }
    *u = ids[0];
    *i = ids[1];
    *r = 1.0;
    if (sp->cr >= 0) {
        const char *v = f.s[sp->cr];
        size_t vn = f.len[sp->cr];
        int rc = parse_real(v, vn, r);
        if (rc != NUM_OK)
            return fri_fail(FR_ERR_PARSE, "%s:%llu: rating \"%.*s\" is not a number; expected a decimal in [%g, %g]",
                            c->path, ln, VAL(v, vn), c->o->rating_min, c->o->rating_max);
        if (!(*r >= c->o->rating_min && *r <= c->o->rating_max))
            return fri_fail(FR_ERR_RANGE, "%s:%llu: rating %.*s is outside the allowed range [%g, %g]", c->path, ln,
                            VAL(v, vn), c->o->rating_min, c->o->rating_max);
    }
    *t = 0;
    if (sp->ct >= 0 && sp->ct < f.n) {
        const char *v = f.s[sp->ct];
        size_t vn = f.len[sp->ct];
        int rc = parse_i64(v, vn, t);
        if (rc == NUM_BAD)
            return fri_fail(FR_ERR_PARSE, "%s:%llu: timestamp \"%.*s\" is not a number; expected an integer",
                            c->path, ln, VAL(v, vn));
        if (rc == NUM_RANGE)
            return fri_fail(FR_ERR_PARSE, "%s:%llu: timestamp \"%.*s\" is out of range; expected a 64-bit integer",
                            c->path, ln, VAL(v, vn));
    }
    return FR_OK;
}

/* The common case of the fixed formats in one pass: id D id D decimal D integer, where D
 * is the delimiter (or "::"), s NUL-terminated at end. Returns false for anything else
 * (fewer digits, signs, spaces, exponents, errors...), which parse_line then handles and
 * explains. */
/* The run of leading decimal digits of s, at most maxd (>= 8) of them: their value in
 * *v, the end of the run returned. Eight bytes at a time (SWAR): a digit byte minus '0' is
 * 0..9 and stays below 16 plus 6; the first other byte (the lowest flagged one: borrows
 * and carries only move upwards) ends the run. Reads up to 8 bytes past a NUL (PAD). */
static inline const char *digit_run(const char *s, int maxd, uint64_t *v) {
    uint64_t x;
    memcpy(&x, s, 8);
    uint64_t t = x - 0x3030303030303030ull;
    uint64_t bad = (t | (t + 0x0606060606060606ull)) & 0xF0F0F0F0F0F0F0F0ull;
    int n = bad ? __builtin_ctzll(bad) >> 3 : 8;
    if (n == 0) { *v = 0; return s; }
    t <<= 8 * (8 - n); /* the digits in the top n bytes, zeros below */
    t = (t * 10 + (t >> 8)) & 0x00FF00FF00FF00FFull;
    t = (t * 100 + (t >> 16)) & 0x0000FFFF0000FFFFull;
    t = (t * 10000 + (t >> 32)) & 0xFFFFFFFFull;
    s += n;
    if (n == 8)
        while ((unsigned)(*s - '0') <= 9 && n < maxd) { t = t * 10 + (unsigned)(*s++ - '0'); n++; }
    *v = t;
    return s;
}

static inline const char *fast_fields(const char *s, char delim, bool dcolon, uint32_t *u, uint32_t *i, double *r,
                                      int64_t *t) {
    uint32_t ids[2];
    for (int k = 0; k < 2; k++) {
        uint64_t v;
        const char *b = s;
        s = digit_run(s, 10, &v);
        if (s == b || v > ID_LIMIT || *s != delim) return NULL;
        if (dcolon) { if (s[1] != ':') return NULL; s += 2; } else s++;
        ids[k] = (uint32_t)v;
    }
    uint64_t ip = 0, fp = 0;
    const char *b = s;
    while ((unsigned)(*s - '0') <= 9 && s - b < 9) ip = ip * 10 + (unsigned)(*s++ - '0');
    if (s == b) return NULL;
    int fd = 0;
    if (*s == '.') {
        s++;
        while ((unsigned)(*s - '0') <= 9 && fd < 9) { fp = fp * 10 + (unsigned)(*s++ - '0'); fd++; }
    }
    if (*s != delim) return NULL;
    if (dcolon) { if (s[1] != ':') return NULL; s += 2; } else s++;
    uint64_t tv;
    b = s;
    s = digit_run(s, 18, &tv);
    if (s == b) return NULL;
    *u = ids[0];
    *i = ids[1];
    *r = (double)ip + (fd ? (double)fp / p10[fd] : 0.0);
    *t = (int64_t)tv;
    return s;
}

static inline bool fast_line(const char *s, const char *end, char delim, bool dcolon, uint32_t *u, uint32_t *i,
                             double *r, int64_t *t) {
    return fast_fields(s, delim, dcolon, u, i, r, t) == end;
}

/* Rewrites the message of a failed line: binary data first, then a truncated last line. */
static fr_err explain_bad_line(const rdctx *c, fr_err e, const char *s, size_t n) {
    long k = control_byte(s, n);
    unsigned long long ln = (unsigned long long)c->line;
    if (k >= 0)
        return fri_fail(FR_ERR_PARSE, "%s:%llu: binary data (byte 0x%02x at column %ld); expected a text file", c->path,
                        ln, (unsigned char)s[k], k + 1);
    if (c->unterminated && e == FR_ERR_PARSE)
        return fri_fail_prefix(FR_ERR_PARSE, "%s:%llu: truncated last line (no final newline)", c->path, ln);
    return e;
}

static bool name_in(const char *s, size_t n, const char *const *names) {
    for (; *names; names++)
        if (strlen(*names) == n && strncasecmp(s, *names, n) == 0) return true;
    return false;
}

/* Column index of a spec ("3" or a header name), -1 if absent. */
static fr_err resolve_col(const rdctx *c, const char *want, const char *what, const fields *hdr, int *out) {
    *out = -1;
    if (!want) return FR_OK;
    int num = col_number(want);
    if (num > 0) {
        if (num > MAX_FIELDS)
            return fri_fail(FR_ERR_INVALID, "%s: %s column %d; expected at most %d", c->path, what, num, MAX_FIELDS);
        *out = num - 1;
        return FR_OK;
    }
    if (!hdr) return fri_fail(FR_ERR_INVALID, "%s: %s column \"%s\" is a name but the file has no header", c->path, what, want);
    for (int k = 0; k < hdr->n && k < MAX_FIELDS; k++) {
        const char *s = hdr->s[k];
        size_t n = hdr->len[k];
        trim(&s, &n);
        if (n >= 2 && s[0] == '"' && s[n - 1] == '"') { s++; n -= 2; }
        if (strlen(want) == n && strncmp(s, want, n) == 0) { *out = k; return FR_OK; }
    }
    return fri_fail(FR_ERR_PARSE, "%s:1: no column named \"%s\" (the %s column) in the header", c->path, want, what);
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

/* Chooses the format and the columns from the first non-blank line. */
static fr_err make_spec(rdctx *c, fr_format fmt, const char *first, size_t n) {
    spec *sp = &c->sp;
    const fr_load_opts *o = c->o;
    memset(sp, 0, sizeof *sp);
    sp->cu = 0; sp->ci = 1; sp->cr = 2; sp->ct = 3;
    sp->nf_min = sp->nf_max = 4;
    fields f;
    if (fmt == FR_FORMAT_AUTO) {
        if (ends_with(c->path, ".rating")) fmt = FR_FORMAT_NCF;
        else if (memmem(first, n, "::", 2)) fmt = FR_FORMAT_ML1M;
        else if (memchr(first, '\t', n)) {
            split(first, n, '\t', false, &f);
            fmt = f.n == 4 ? FR_FORMAT_ML100K : FR_FORMAT_DELIMITED;
            sp->delim = '\t';
        } else if (memchr(first, ',', n)) {
            split(first, n, ',', false, &f);
            fmt = f.n == 4 ? FR_FORMAT_CSV : FR_FORMAT_DELIMITED;
            sp->delim = ',';
        } else if (memchr(first, ';', n)) { fmt = FR_FORMAT_DELIMITED; sp->delim = ';'; }
        else if (memchr(first, '|', n)) { fmt = FR_FORMAT_DELIMITED; sp->delim = '|'; }
        else {
            long k = control_byte(first, n);
            if (k >= 0)
                return fri_fail(FR_ERR_PARSE, "%s:%llu: binary data (byte 0x%02x at column %ld); expected a text file",
                                c->path, (unsigned long long)c->line, (unsigned char)first[k], k + 1);
            return fri_fail(FR_ERR_PARSE,
                            "%s:%llu: cannot detect the format from \"%.*s\"; expected fields separated by tab, "
                            "',', ';', '|' or '::'", c->path, (unsigned long long)c->line, VAL(first, n));
        }
        if (fmt == FR_FORMAT_DELIMITED) {
            /* Auto columns: header names or positions. */
            split(first, n, sp->delim, false, &f);
            static const char *const un[] = {"user", "userid", "user_id", "uid", "users", NULL};
            static const char *const in[] = {"item", "itemid", "item_id", "movieid", "movie_id", "iid", "movie", NULL};
            static const char *const rn[] = {"rating", "ratings", "score", NULL};
            static const char *const tn[] = {"timestamp", "time", "ts", NULL};
            sp->nf_min = 2;
            sp->nf_max = 0;
            if (!is_numeric_field(f.s[0], f.len[0])) {
                sp->header = true;
                sp->cu = sp->ci = sp->cr = sp->ct = -1;
                for (int k = 0; k < f.n && k < MAX_FIELDS; k++) {
                    const char *s = f.s[k];
                    size_t ln = f.len[k];
                    trim(&s, &ln);
                    if (sp->cu < 0 && name_in(s, ln, un)) sp->cu = k;
                    else if (sp->ci < 0 && name_in(s, ln, in)) sp->ci = k;
                    else if (sp->cr < 0 && name_in(s, ln, rn)) sp->cr = k;
                    else if (sp->ct < 0 && name_in(s, ln, tn)) sp->ct = k;
                }
                if (sp->cu < 0 || sp->ci < 0)
                    return fri_fail(FR_ERR_PARSE, "%s:%llu: header \"%.*s\" names no user and item columns; "
                                    "expected e.g. userId and movieId (or set the columns)",
                                    c->path, (unsigned long long)c->line, VAL(first, n));
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
        const fields *hdr = NULL;
        if (sp->header) { split(first, n, sp->delim, sp->dcolon, &f); hdr = &f; }
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

static bool blank(const char *s, size_t n) {
    for (size_t k = 0; k < n; k++)
        if (s[k] != ' ' && s[k] != '\t') return false;
    return true;
}

/* One data line into rows: 0 when pushed or filtered out, 1 for a bad line (*e holds the
 * explained error), -1 on a fatal error (*e). */
static inline int data_line(const rdctx *c, bool fast, const char *s, size_t n, fri_rows *rows, fr_err *e) {
    const fr_load_opts *o = c->o;
    uint32_t u = 0, i = 0;
    double r = 0;
    int64_t t = 0;
    if (!(fast && fast_line(s, s + n, c->sp.delim, c->sp.dcolon, &u, &i, &r, &t) && r >= o->rating_min &&
          r <= o->rating_max)) {
        fr_err pe = parse_line(c, s, n, &u, &i, &r, &t);
        if (pe) {
            *e = explain_bad_line(c, pe, s, n);
            return 1;
        }
    }
    if (o->implicit) {
        if (!isnan(o->implicit_threshold) && !(r >= o->implicit_threshold)) return 0;
        r = 1.0;
    }
    if (rows->n < rows->cap) { /* inline push */
        rows->user[rows->n] = u;
        rows->item[rows->n] = i;
        rows->rating[rows->n] = (float)r;
        rows->time[rows->n] = t;
        rows->n++;
        return 0;
    }
    *e = fri_rows_push(rows, u, i, (float)r, t);
    return *e ? -1 : 0;
}

/* The common line straight from the reader's buffer, without looking for its end first:
 * when the next line is id D id D decimal D integer '\n' (or "\r\n") with an accepted
 * rating and rows has room, pushes it (or drops it by the implicit threshold), consumes
 * it and returns true; otherwise consumes nothing (lr_next and data_line take over). The
 * buffer's sentinel NUL stops the scan at the end of the bytes read. */
static inline bool fast_row(lreader *lr, const rdctx *c, fri_rows *rows) {
    if (lr->scan != lr->pos || rows->n == rows->cap) return false;
    const char *s = lr->buf + lr->pos;
    uint32_t u, i;
    double r;
    int64_t t;
    const char *e = fast_fields(s, c->sp.delim, c->sp.dcolon, &u, &i, &r, &t);
    if (!e) return false;
    if (*e == '\r') e++;
    if (*e != '\n' || !(r >= c->o->rating_min && r <= c->o->rating_max)) return false;
    lr->pos = lr->scan = (size_t)(e - lr->buf) + 1;
    lr->line++;
    if (c->o->implicit) {
        if (!isnan(c->o->implicit_threshold) && !(r >= c->o->implicit_threshold)) return true;
        r = 1.0;
    }
    rows->user[rows->n] = u;
    rows->item[rows->n] = i;
    rows->rating[rows->n] = (float)r;
    rows->time[rows->n] = t;
    rows->n++;
    return true;
}

/* ------------------------------------------------------------ parallel parse
 * A large regular file is cut at line starts into one byte range per CPU after its first
 * non-blank line (format and header decided serially); each range is parsed on a pool
 * worker into its own rows with pread, then the rows are appended in file order, array by
 * array, freeing each range's array once copied (peak: the rows plus one array). A range
 * that meets a bad line without skip_bad_lines stops; the caller then goes on serially,
 * which reports the same error with its exact line number. With skip_bad_lines the line
 * number of the first bad line is found by counting newlines up to its byte offset. */

static _Atomic uint64_t g_par_min = (uint64_t)64 << 20; /* smallest file parsed in parallel */
static _Atomic int g_par_ranges;                         /* ranges (0 = online CPUs) */

static _Atomic uint64_t g_par_loads;                     /* files read in parallel so far */

uint64_t fri_read_parallel_loads(void) { return g_par_loads; }

void fri_read_set_parallel(uint64_t min_bytes, int ranges) {
    g_par_min = min_bytes ? min_bytes : (uint64_t)64 << 20;
    g_par_ranges = ranges > 0 ? ranges : 0;
}

typedef struct range_job {
    lreader lr;
    fri_rows rows;
    uint64_t lines, skipped; /* data lines seen, bad lines skipped */
    uint64_t first_bad;      /* byte offset of the first bad line (valid when skipped or bad) */
    bool bad;                /* stopped at a bad line (skip_bad_lines off) */
    fr_err e;                /* fatal error (not a bad line) */
} range_job;

typedef struct par_ctx {
    const rdctx *c;
    bool fast;
    range_job *jobs;
} par_ctx;

static void par_range(void *ctx, size_t k, int worker) {
    (void)worker;
    par_ctx *p = ctx;
    range_job *j = &p->jobs[k];
    rdctx c = *p->c;
    c.line = 0; /* messages made here are thrown away */
    for (;;) {
        if (p->fast && fast_row(&j->lr, &c, &j->rows)) {
            j->lines++;
            continue;
        }
        char *s;
        size_t n;
        bool unterminated;
        int got = lr_next(&j->lr, &s, &n, &unterminated, &j->e);
        if (got <= 0) return;
        if (blank(s, n)) continue;
        if (j->rows.n == j->rows.cap) { /* more lines than counted */
            j->e = fri_fail(FR_ERR_IO, "%s: the file changed while it was read", c.path);
            return;
        }
        c.unterminated = unterminated;
        j->lines++;
        fr_err e = FR_OK;
        int rc = data_line(&c, p->fast, s, n, &j->rows, &e);
        if (rc < 0) { j->e = e; return; }
        if (rc > 0) {
            uint64_t at = j->lr.off - j->lr.end + (uint64_t)(s - j->lr.buf);
            if (!j->skipped && !j->bad) j->first_bad = at;
            if (!c.o->skip_bad_lines) { j->bad = true; return; }
            j->skipped++;
        }
    }
}

/* First line start at or after pos (stop if none before it). */
static fr_err line_start_after(int fd, const char *path, uint64_t pos, uint64_t stop, char *buf, uint64_t *out) {
    while (pos < stop) {
        size_t want = stop - pos < CHUNK ? (size_t)(stop - pos) : CHUNK;
        ssize_t k = pread(fd, buf, want, (off_t)pos);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) return fri_fail(FR_ERR_IO, "%s: read failed: %s", path, strerror(errno));
        if (k == 0) break;
        char *nl = memchr(buf, '\n', (size_t)k);
        if (nl) { *out = pos + (uint64_t)(nl - buf) + 1; return FR_OK; }
        pos += (uint64_t)k;
    }
    *out = stop;
    return FR_OK;
}

/* 1-based number of the line starting at byte off. */
static fr_err line_number_at(int fd, const char *path, uint64_t off, char *buf, uint64_t *out) {
    uint64_t nl = 0, pos = 0;
    while (pos < off) {
        size_t want = off - pos < CHUNK ? (size_t)(off - pos) : CHUNK;
        ssize_t k = pread(fd, buf, want, (off_t)pos);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) return fri_fail(FR_ERR_IO, "%s: read failed: %s", path, strerror(errno));
        if (k == 0) break;
        for (const char *q = buf, *qe = buf + k; (q = memchr(q, '\n', (size_t)(qe - q))) != NULL; q++) nl++;
        pos += (uint64_t)k;
    }
    *out = nl + 1;
    return FR_OK;
}

static void par_count(void *ctx, size_t k, int worker) {
    (void)worker;
    par_ctx *p = ctx;
    range_job *j = &p->jobs[k];
    uint64_t nl = 0, pos = j->lr.off;
    while (pos < j->lr.stop) {
        size_t want = j->lr.stop - pos < CHUNK ? (size_t)(j->lr.stop - pos) : CHUNK;
        ssize_t got = pread(j->lr.fd, j->lr.buf, want, (off_t)pos);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) { j->e = fri_fail(FR_ERR_IO, "%s: read failed: %s", j->lr.path, strerror(errno)); return; }
        if (got == 0) break;
        const char *q = j->lr.buf, *qe = q + got;
        while ((q = memchr(q, '\n', (size_t)(qe - q))) != NULL) { nl++; q++; }
        pos += (uint64_t)got;
    }
    j->rows.cap = (size_t)nl + 1; /* lines in the range: an upper bound on its rows */
}

/* Parses [start, size) of the open file fd in parallel, appending to rows. Returns FR_OK
 * with *done set when the file is read (counts in *lines, *skipped, *first_bad), FR_OK with
 * *done false when a range met a bad line (rows->n untouched: the caller goes on
 * serially), or a fatal error. The ranges' lines are counted first so that every range
 * writes its rows straight into its slice of rows; the slices are then closed up. */
static fr_err read_parallel(const rdctx *c, bool fast, int fd, uint64_t start, uint64_t size, int nr, fri_rows *rows,
                            bool *done, uint64_t *lines, uint64_t *skipped, uint64_t *first_bad) {
    *done = false;
    fr_pool *pool = NULL;
    range_job *jobs = fri_calloc((size_t)nr, sizeof *jobs);
    if (!jobs) return FR_ERR_NOMEM;
    for (int k = 0; k < nr; k++) jobs[k].lr.fd = -1;
    fr_err e = FR_OK;
    for (int k = 0; k < nr && !e; k++) e = lr_open_range(&jobs[k].lr, c->path, fd, 0, 0);
    uint64_t prev = start;
    for (int k = 0; k < nr && !e; k++) {
        uint64_t b = size;
        if (k + 1 < nr) { /* the first line start at or after the nominal cut */
            uint64_t nominal = start + (size - start) * (uint64_t)(k + 1) / (uint64_t)nr;
            if (nominal < prev) nominal = prev;
            e = line_start_after(fd, c->path, nominal ? nominal - 1 : 0, size, jobs[0].lr.buf, &b);
        }
        jobs[k].lr.off = prev;
        jobs[k].lr.stop = b;
        prev = b;
    }
    if (!e) e = fr_pool_create(&pool, nr);
    par_ctx p = {c, fast, jobs};
    if (!e) {
        fr_pool_for(pool, (size_t)nr, 1, par_count, &p);
        for (int k = 0; k < nr && !e; k++) e = jobs[k].e;
    }
    size_t need = rows->n;
    for (int k = 0; k < nr; k++) need += jobs[k].rows.cap;
    if (!e && need > rows->cap) { /* arrays larger than rows->cap on failure are harmless */
        void **arr[4] = {(void **)&rows->user, (void **)&rows->item, (void **)&rows->rating, (void **)&rows->time};
        static const size_t sz[4] = {sizeof(uint32_t), sizeof(uint32_t), sizeof(float), sizeof(int64_t)};
        for (int a = 0; a < 4 && !e; a++) {
            void *q = fri_realloc(*arr[a], need * sz[a]);
            if (!q) e = FR_ERR_NOMEM;
            else *arr[a] = q;
        }
        if (!e) rows->cap = need;
    }
    if (!e) {
        size_t base = rows->n;
        for (int k = 0; k < nr; k++) { /* each range's view of its slice */
            fri_rows *v = &jobs[k].rows;
            v->user = rows->user + base;
            v->item = rows->item + base;
            v->rating = rows->rating + base;
            v->time = rows->time + base;
            base += v->cap;
            jobs[k].lr.buf[0] = '\0'; /* the sentinel (the buffers served as scratch so far) */
        }
        fr_pool_for(pool, (size_t)nr, 1, par_range, &p);
        for (int k = 0; k < nr && !e; k++) e = jobs[k].e;
    }
    bool bad = false;
    for (int k = 0; k < nr; k++) bad = bad || jobs[k].bad;
    if (!e && !bad) {
        *lines = *skipped = *first_bad = 0;
        size_t n = rows->n;
        for (int k = 0; k < nr && !e; k++) {
            fri_rows *v = &jobs[k].rows;
            memmove(rows->user + n, v->user, v->n * sizeof *v->user);
            memmove(rows->item + n, v->item, v->n * sizeof *v->item);
            memmove(rows->rating + n, v->rating, v->n * sizeof *v->rating);
            memmove(rows->time + n, v->time, v->n * sizeof *v->time);
            n += v->n;
            *lines += jobs[k].lines;
            if (jobs[k].skipped && !*skipped)
                e = line_number_at(fd, c->path, jobs[k].first_bad, jobs[0].lr.buf, first_bad);
            *skipped += jobs[k].skipped;
        }
        if (!e) {
            rows->n = n;
            *done = true;
            g_par_loads++;
        }
    }
    for (int k = 0; k < nr; k++) lr_close(&jobs[k].lr); /* the views are not freed */
    fri_free(jobs);
    fr_pool_free(pool);
    return e;
}

/* Reads one ratings file into rows (appending). fmt is the format to use (AUTO detects);
 * *used receives the format used. */
static fr_err read_rows(const char *path, const fr_load_opts *o, fr_format fmt, fri_rows *rows, fr_format *used,
                        fr_load_stats *stats) {
    lreader lr;
    fr_err e = lr_open(&lr, path);
    if (e) return e;
    rdctx c = {.path = path, .o = o};
    bool have_spec = false, fast = false, par_done = false;
    uint64_t lines = 0, skipped = 0, first_bad = 0, file_size = 0;
    size_t rows_before = rows->n;
    int nr = 0;
    {
        struct stat st;
        if (fstat(lr.fd, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size >= g_par_min) {
            file_size = (uint64_t)st.st_size;
            nr = g_par_ranges;
            if (nr <= 0) {
                long cpus = sysconf(_SC_NPROCESSORS_ONLN);
                nr = cpus > 0 ? (int)(cpus > 64 ? 64 : cpus) : 1;
            }
        }
    }
    for (;;) {
        if (fast && fast_row(&lr, &c, rows)) {
            lines++;
            continue;
        }
        char *s;
        size_t n;
        bool unterminated;
        int got = lr_next(&lr, &s, &n, &unterminated, &e);
        if (got < 0) goto done;
        if (got == 0) break;
        if (blank(s, n)) continue;
        c.line = lr.line;
        c.unterminated = unterminated;
        if (!have_spec) {
            e = make_spec(&c, fmt, s, n);
            if (e) goto done;
            have_spec = true;
            rows->has_time = rows->has_time || c.sp.ct >= 0;
            fast = c.sp.fmt == FR_FORMAT_ML100K || c.sp.fmt == FR_FORMAT_ML1M || c.sp.fmt == FR_FORMAT_CSV ||
                   c.sp.fmt == FR_FORMAT_NCF;
            bool header = c.sp.header || (c.sp.header_auto && !is_numeric_field(s, n));
            if (header) {
                long k = control_byte(s, n);
                if (k >= 0) { e = explain_bad_line(&c, FR_ERR_PARSE, s, n); goto done; }
            }
            if (nr > 1 && !unterminated) {
                uint64_t at = lr.off - lr.end + (uint64_t)(header ? lr.pos : (size_t)(s - lr.buf));
                e = read_parallel(&c, fast, lr.fd, at, file_size, nr, rows, &par_done, &lines, &skipped, &first_bad);
                if (e) goto done;
                if (par_done) break;
            }
            if (header) continue;
        }
        lines++;
        int rc = data_line(&c, fast, s, n, rows, &e);
        if (rc < 0) goto done;
        if (rc > 0) {
            if (!o->skip_bad_lines) goto done;
            if (!skipped) first_bad = c.line;
            skipped++;
            e = FR_OK;
        }
    }
    if (skipped) fr_errmsg_clear();
    if (!have_spec)
        e = fri_fail(FR_ERR_EMPTY, "%s: empty file; expected ratings", path);
    else if (rows->n == rows_before)
        e = fri_fail(FR_ERR_EMPTY, "%s: no ratings (%llu lines, %llu skipped as bad)", path,
                     (unsigned long long)lines, (unsigned long long)skipped);
done:
    if (stats) {
        stats->format = have_spec ? c.sp.fmt : fmt;
        stats->lines += lines;
        stats->skipped += skipped;
        if (!stats->first_bad_line) stats->first_bad_line = first_bad;
        stats->bytes += par_done ? file_size : lr.bytes;
    }
    if (used) *used = have_spec ? c.sp.fmt : fmt;
    lr_close(&lr);
    return e;
}

fr_err fri_read_rows(const char *path, const fr_load_opts *o, fri_rows *rows, fr_format *used,
                     fr_load_stats *stats) {
    fr_err e = fr_load_opts_check(o);
    return e ? e : read_rows(path, o, o->format, rows, used, stats);
}

/* ------------------------------------------------------------ public */

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
                            what[k], cols[k], MAX_FIELDS);
        if (!digits && !o->has_header)
            return fri_fail(FR_ERR_INVALID, "load options: %s column \"%s\" is a name; set has_header", what[k],
                            cols[k]);
    }
    return FR_OK;
}

/* Dense NCF ids: the largest id must be plausible for the number of rows, so a stray
 * huge id is an error rather than a giant identity map. */
static fr_err ncf_maps(const char *path, fri_rows *const *rs, int k, fr_idmap **um, fr_idmap **im) {
    *um = *im = NULL;
    uint32_t mu = 0, mi = 0;
    size_t total = 0;
    for (int j = 0; j < k; j++) {
        total += rs[j]->n;
        for (size_t x = 0; x < rs[j]->n; x++) {
            if (rs[j]->user[x] > mu) mu = rs[j]->user[x];
            if (rs[j]->item[x] > mi) mi = rs[j]->item[x];
        }
    }
    uint64_t limit = 16 * (uint64_t)total + 65536;
    if ((uint64_t)mu >= limit || (uint64_t)mi >= limit)
        return fri_fail(FR_ERR_RANGE, "%s: NCF ids are dense 0..n-1, but the largest id is %u with only %zu ratings; "
                        "expected ids below %llu (use the ml100k format for sparse ids)", path,
                        mu > mi ? mu : mi, total, (unsigned long long)limit);
    fr_err e = fri_idmap_identity(um, mu + 1);
    if (!e) e = fri_idmap_identity(im, mi + 1);
    if (e) { fr_idmap_release(*um); fr_idmap_release(*im); *um = *im = NULL; }
    return e;
}

fr_err fr_dataset_load(fr_dataset **out, const char *path, const fr_load_opts *o, fr_load_stats *stats) {
    *out = NULL;
    fr_load_opts def;
    if (!o) { fr_load_opts_default(&def); o = &def; }
    fr_err e = fr_load_opts_check(o);
    if (e) return e;
    if (stats) memset(stats, 0, sizeof *stats);
    fri_rows rows = {0};
    fr_format used = o->format;
    e = read_rows(path, o, o->format, &rows, &used, stats);
    if (e) { fri_rows_free(&rows); return e; }
    if (used != FR_FORMAT_NCF) return fri_dataset_build_own(out, &rows);
    fr_idmap *um, *im;
    fri_rows *rs[1] = {&rows};
    e = ncf_maps(path, rs, 1, &um, &im);
    if (e) { fri_rows_free(&rows); return e; }
    e = fri_dataset_build(out, &rows, um, im);
    fr_idmap_release(um);
    fr_idmap_release(im);
    return e;
}

fr_err fr_dataset_load_pair(fr_dataset **train, fr_dataset **test, const char *train_path, const char *test_path,
                            const fr_load_opts *o) {
    *train = *test = NULL;
    fr_load_opts def;
    if (!o) { fr_load_opts_default(&def); o = &def; }
    fr_err e = fr_load_opts_check(o);
    if (e) return e;
    fri_rows a = {0}, b = {0};
    fr_idmap *um = NULL, *im = NULL;
    fr_format used = o->format;
    e = read_rows(train_path, o, o->format, &a, &used, NULL);
    /* The test file is read as the training file was; an auto-detected delimited file
     * is detected again, since its columns came from its own first line. */
    if (!e) e = read_rows(test_path, o, used == FR_FORMAT_DELIMITED ? o->format : used, &b, NULL, NULL);
    if (e) goto fail;
    b.has_time = a.has_time = a.has_time || b.has_time;
    if (used == FR_FORMAT_NCF) {
        fri_rows *rs[2] = {&a, &b};
        e = ncf_maps(train_path, rs, 2, &um, &im);
    } else {
        const uint32_t *ul[2] = {a.user, b.user}, *il[2] = {a.item, b.item};
        size_t nn[2] = {a.n, b.n};
        e = fri_idmap_build(&um, ul, nn, 2);
        if (!e) e = fri_idmap_build(&im, il, nn, 2);
    }
    if (e) goto fail;
    e = fri_dataset_build(train, &a, um, im);
    if (!e) e = fri_dataset_build(test, &b, um, im);
    if (e) {
        fr_dataset_free(*train);
        *train = NULL;
        goto fail;
    }
    fr_idmap_release(um);
    fr_idmap_release(im);
    return FR_OK;
fail:
    fri_rows_free(&a);
    fri_rows_free(&b);
    fr_idmap_release(um);
    fr_idmap_release(im);
    return e;
}

/* ------------------------------------------------------------ NCF test.negative */

static void negatives_drop(fr_negatives *n) {
    if (!n) return;
    fri_free(n->ptr);
    fri_free(n->items);
    fri_free(n);
}

/* Grows a uint32 array to hold at least need values. */
static fr_err grow_u32(uint32_t **a, size_t *cap, size_t need) {
    if (need <= *cap) return FR_OK;
    size_t nc = *cap ? *cap + *cap / 2 : 1024;
    if (nc < need) nc = need;
    uint32_t *p = fri_realloc(*a, nc * sizeof *p);
    if (!p) return FR_ERR_NOMEM;
    *a = p;
    *cap = nc;
    return FR_OK;
}

fr_err fr_negatives_load(fr_negatives **out, const char *path, const fr_dataset *like) {
    *out = NULL;
    lreader lr;
    fr_err e = lr_open(&lr, path);
    if (e) return e;
    uint32_t *lu = NULL, *items = NULL; /* per line: user; all negatives in line order */
    uint32_t *lcount = NULL;            /* per line: negatives */
    size_t nl = 0, cap_l = 0, cap_c = 0, ni = 0, cap_i = 0;
    uint32_t *seen = NULL;              /* per user: 1 + line index */
    fr_negatives *ng = NULL;
    uint32_t maxu = 0;
    for (;;) {
        char *s;
        size_t n;
        bool unterminated;
        int got = lr_next(&lr, &s, &n, &unterminated, &e);
        if (got < 0) goto fail;
        if (got == 0) break;
        if (blank(s, n)) continue;
        unsigned long long ln = (unsigned long long)lr.line;
        long cb = control_byte(s, n);
        if (cb >= 0) {
            e = fri_fail(FR_ERR_PARSE, "%s:%llu: binary data (byte 0x%02x at column %ld); expected a text file", path,
                         ln, (unsigned char)s[cb], cb + 1);
            goto fail;
        }
        /* "(user,item)" */
        const char *p = s, *end = s + n;
        const char *close = memchr(p, ')', n);
        const char *comma = close ? memchr(p, ',', (size_t)(close - p)) : NULL;
        if (n < 5 || p[0] != '(' || !close || !comma) {
            e = fri_fail(FR_ERR_PARSE, "%s:%llu: line starts \"%.*s\"; expected \"(user,item)\" then tab-separated "
                         "negative items%s", path, ln, VAL(s, n), unterminated ? " (truncated last line?)" : "");
            goto fail;
        }
        uint32_t ids[2];
        const char *vs[2] = {p + 1, comma + 1};
        size_t vl[2] = {(size_t)(comma - p - 1), (size_t)(close - comma - 1)};
        static const char *const what[2] = {"user id", "item id"};
        for (int k = 0; k < 2; k++) {
            int rc = parse_id(vs[k], vl[k], &ids[k]);
            if (rc != NUM_OK) {
                e = fri_fail(FR_ERR_PARSE, "%s:%llu: %s \"%.*s\" %s; expected an integer in [0, 2^31)", path, ln,
                             what[k], VAL(vs[k], vl[k]), rc == NUM_BAD ? "is not a number" : "is out of range");
                goto fail;
            }
        }
        int64_t du = ids[0];
        if (like) {
            du = fr_idmap_find(like->users, ids[0]);
            int64_t di = fr_idmap_find(like->items, ids[1]);
            if (du < 0 || di < 0) {
                e = fri_fail(FR_ERR_RANGE, "%s:%llu: %s %u is not in the dataset; expected a known id", path, ln,
                             du < 0 ? "user" : "item", du < 0 ? ids[0] : ids[1]);
                goto fail;
            }
        }
        if (grow_u32(&lu, &cap_l, nl + 1) || grow_u32(&lcount, &cap_c, nl + 1)) { e = FR_ERR_NOMEM; goto fail; }
        uint32_t cnt = 0;
        p = close + 1;
        while (p < end) {
            if (*p != '\t' && *p != ' ') {
                e = fri_fail(FR_ERR_PARSE, "%s:%llu: \"%.*s\" after the (user,item) pair; expected a tab", path, ln,
                             VAL(p, (size_t)(end - p)));
                goto fail;
            }
            p++;
            const char *q = p;
            while (q < end && *q != '\t' && *q != ' ') q++;
            if (q == p) continue; /* repeated or trailing separators */
            uint32_t it;
            int rc = parse_id(p, (size_t)(q - p), &it);
            if (rc != NUM_OK) {
                e = fri_fail(FR_ERR_PARSE, "%s:%llu: negative item \"%.*s\" %s; expected an integer in [0, 2^31)%s",
                             path, ln, VAL(p, (size_t)(q - p)), rc == NUM_BAD ? "is not a number" : "is out of range",
                             unterminated ? " (truncated last line?)" : "");
                goto fail;
            }
            if (like) {
                int64_t di = fr_idmap_find(like->items, it);
                if (di < 0) {
                    e = fri_fail(FR_ERR_RANGE, "%s:%llu: negative item %u is not in the dataset; expected a known id",
                                 path, ln, it);
                    goto fail;
                }
                it = (uint32_t)di;
            }
            if (grow_u32(&items, &cap_i, ni + 1)) { e = FR_ERR_NOMEM; goto fail; }
            items[ni++] = it;
            cnt++;
            p = q;
        }
        lu[nl] = (uint32_t)du;
        lcount[nl] = cnt;
        nl++;
        if ((uint32_t)du > maxu) maxu = (uint32_t)du;
    }
    if (nl == 0) { e = fri_fail(FR_ERR_EMPTY, "%s: empty file; expected lines \"(user,item)\\tneg...\"", path); goto fail; }
    uint32_t nu;
    if (like) nu = like->n_users;
    else {
        if ((uint64_t)maxu >= 16 * (uint64_t)nl + 65536) {
            e = fri_fail(FR_ERR_RANGE, "%s: user id %u with only %zu lines; expected dense ids 0..n-1", path, maxu, nl);
            goto fail;
        }
        nu = maxu + 1;
    }
    ng = fri_calloc(1, sizeof *ng);
    seen = fri_calloc((size_t)nu + 1, sizeof *seen);
    if (!ng || !seen) { e = FR_ERR_NOMEM; goto fail; }
    ng->n_users = nu;
    ng->ptr = fri_calloc((size_t)nu + 1, sizeof *ng->ptr);
    ng->items = fri_malloc((ni ? ni : 1) * sizeof *ng->items);
    if (!ng->ptr || !ng->items) { e = FR_ERR_NOMEM; goto fail; }
    for (size_t l = 0; l < nl; l++) {
        if (seen[lu[l]]) {
            e = fri_fail(FR_ERR_PARSE, "%s: user (dense %u) has two lines of negatives; expected one line per user",
                         path, lu[l]);
            goto fail;
        }
        seen[lu[l]] = (uint32_t)l + 1;
        ng->ptr[lu[l] + 1] = lcount[l];
    }
    for (uint32_t u = 0; u < nu; u++) ng->ptr[u + 1] += ng->ptr[u];
    /* Line l's items start at the running sum of earlier lines' counts. */
    size_t off = 0;
    for (size_t l = 0; l < nl; l++) {
        if (lcount[l]) memcpy(ng->items + ng->ptr[lu[l]], items + off, (size_t)lcount[l] * sizeof *items);
        off += lcount[l];
    }
    fri_free(lu);
    fri_free(lcount);
    fri_free(items);
    fri_free(seen);
    lr_close(&lr);
    *out = ng;
    return FR_OK;
fail:
    fri_free(lu);
    fri_free(lcount);
    fri_free(items);
    fri_free(seen);
    negatives_drop(ng);
    lr_close(&lr);
    return e;
}
