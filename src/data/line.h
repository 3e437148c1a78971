/* One data line of a ratings file into a row (line.c and inline here): the one-pass
 * scanners of the usual line shape, used straight from the line reader's buffer, and the
 * field-by-field parser that handles everything else and words the errors. Inline because
 * the serial driver (read.c) and the parallel parse (parallel.c) call them once a line.
 *
 * Invariants: the scanners stop at the reader's NUL sentinel and may load up to
 * FRI_LR_PAD bytes past it; they accept only lines the field parser would read the same
 * way, and return false (consuming nothing) for anything else. */
#ifndef FEDREC_SRC_DATA_LINE_H
#define FEDREC_SRC_DATA_LINE_H

#include <math.h>

#include "data/format.h"
#include "data/lreader.h"
#include "data/text.h"

/* Parses one data line s[0, n) into a row by fields. On failure sets the message (file,
 * line, the value, what was expected) and returns FR_ERR_PARSE or FR_ERR_RANGE. */
FR_NODISCARD fr_err fri_line_parse(const fri_rdctx *c, const char *s, size_t n, uint32_t *u, uint32_t *i, double *r,
                                   int64_t *t);
/* Rewrites the message of a failed line: binary data first, then a truncated last line. */
fr_err fri_line_explain(const fri_rdctx *c, fr_err e, const char *s, size_t n);

/* The run of leading decimal digits of s, at most maxd (>= 8) of them: their value in
 * *v, the end of the run returned. Eight bytes at a time (SWAR): a digit byte minus '0' is
 * 0..9 and stays below 16 plus 6; the first other byte (the lowest flagged one: borrows
 * and carries only move upwards) ends the run. Reads up to 8 bytes past a NUL (PAD). */
static inline const char *fri_digit_run(const char *s, int maxd, uint64_t *v) {
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

/* The common case of the fixed formats in one pass: id D id D decimal D integer, where D
 * is the delimiter (or "::"), s NUL-terminated at the end. Returns the end of what it
 * read, or NULL for anything else (fewer digits, signs, spaces, exponents, errors...),
 * which fri_line_parse then handles and explains. */
static inline const char *fri_fast_fields(const char *s, char delim, bool dcolon, uint32_t *u, uint32_t *i, double *r,
                                          int64_t *t) {
    uint32_t ids[2];
    for (int k = 0; k < 2; k++) {
        uint64_t v;
        const char *b = s;
        s = fri_digit_run(s, 10, &v);
        if (s == b || v > FRI_ID_LIMIT || *s != delim) return NULL;
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
    s = fri_digit_run(s, 18, &tv);
    if (s == b) return NULL;
    *u = ids[0];
    *i = ids[1];
    *r = (double)ip + (fd ? (double)fp / fri_p10[fd] : 0.0);
    *t = (int64_t)tv;
    return s;
}

/* One data line into rows: 0 when pushed or filtered out, 1 for a bad line (*e holds the
 * explained error), -1 on a fatal error (*e). fast: the spec's format has the usual line
 * shape (ml100k, ml1m, csv, ncf), so the one-pass scanner is tried first. */
static inline int fri_line_push(const fri_rdctx *c, bool fast, const char *s, size_t n, fri_rows *rows, fr_err *e) {
    const fr_load_opts *o = c->o;
    uint32_t u = 0, i = 0;
    double r = 0;
    int64_t t = 0;
    if (!(fast && fri_fast_fields(s, c->sp.delim, c->sp.dcolon, &u, &i, &r, &t) == s + n && r >= c->sp.rmin &&
          r <= c->sp.rmax)) {
        fr_err pe = fri_line_parse(c, s, n, &u, &i, &r, &t);
        if (pe) {
            *e = fri_line_explain(c, pe, s, n);
            return 1;
        }
    }
    if (c->sp.implicit) {
        if (!isnan(o->implicit_threshold) && !(r >= o->implicit_threshold)) return 0;
        if (!c->sp.weight) r = 1.0;
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
 * rating (the spec's range) and rows has room, pushes it (or drops it by the implicit
 * threshold), consumes
 * it and returns true; otherwise consumes nothing (fri_lr_next and fri_line_push take
 * over). The buffer's sentinel NUL stops the scan at the end of the bytes read. */
static inline bool fri_line_fast_row(fri_lreader *lr, const fri_rdctx *c, fri_rows *rows) {
    if (lr->scan != lr->pos || rows->n == rows->cap) return false;
    const char *s = lr->buf + lr->pos;
    uint32_t u, i;
    double r;
    int64_t t;
    const char *e = fri_fast_fields(s, c->sp.delim, c->sp.dcolon, &u, &i, &r, &t);
    if (!e) return false;
    if (*e == '\r') e++;
    if (*e != '\n' || !(r >= c->sp.rmin && r <= c->sp.rmax)) return false;
    lr->pos = lr->scan = (size_t)(e - lr->buf) + 1;
    lr->line++;
    if (c->sp.implicit) {
        if (!isnan(c->o->implicit_threshold) && !(r >= c->o->implicit_threshold)) return true;
        if (!c->sp.weight) r = 1.0;
    }
    rows->user[rows->n] = u;
    rows->item[rows->n] = i;
    rows->rating[rows->n] = (float)r;
    rows->time[rows->n] = t;
    rows->n++;
    return true;
}

#endif
