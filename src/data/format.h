/* Format detection of the ratings readers (format.c): the load options' rules and the
 * spec a file is read with (format, delimiter, accepted field counts, columns, header),
 * chosen from its first non-blank line. Also the context a line is parsed in, shared by
 * the line parser (line.h), the serial driver (read.c) and the parallel parse. */
#ifndef FEDREC_SRC_DATA_FORMAT_H
#define FEDREC_SRC_DATA_FORMAT_H

#include "data/dataset.h"
#include "data/text.h"

typedef struct fri_spec {
    fr_format fmt;
    char delim;         /* single-char delimiter */
    bool dcolon;        /* "::" */
    int nf_min, nf_max; /* accepted field counts (nf_max 0: no upper bound) */
    int cu, ci, cr, ct; /* 0-based columns; -1 none */
    bool header;        /* the first line is a header */
    bool implicit;      /* rows are implicit positives (rating 1, or the weight) */
    bool weight;        /* implicit, and the rating column is kept as the weight */
    bool fast;          /* the one-pass scanner may read lines (user, item, rating, time in order) */
    bool cr_pos;        /* the rating column was taken by position, not given nor named */
    double rmin, rmax;  /* accepted values of the rating column */
    char columns[FR_LOAD_COLUMNS_MAX]; /* a header's placement, as fr_load_stats.columns */
} fri_spec;

/* Where a line is parsed: the file, the options, its spec, the line's number (1-based;
 * 0 inside a parallel range, whose messages are thrown away) and whether it is a final
 * line without '\n'. */
typedef struct fri_rdctx {
    const char *path;
    const fr_load_opts *o;
    fri_spec sp;
    uint64_t line;
    bool unterminated;
    fri_strtab *us, *is; /* string ids: interned here (NULL: integer ids) */
} fri_rdctx;

/* Chooses c->sp from the first non-blank line (first[0, n), line c->line) for format fmt
 * (FR_FORMAT_AUTO detects, see read.c's header). Errors name the file and line:
 * FR_ERR_PARSE (undetectable, binary data, a header that leaves the user or the item
 * column unplaced, an unknown column name), FR_ERR_INVALID (a column position beyond FRI_MAX_FIELDS or a name
 * without a header). */
FR_NODISCARD fr_err fri_spec_make(fri_rdctx *c, fr_format fmt, const char *first, size_t n);
/* Splits a line into fields as the readers do: on the spec's delimiter, and when the line
 * has a '"', quote-aware (a field "..." may hold the delimiter; its content is the field,
 * without the quotes; "" inside stays as it is). */
void fri_spec_split(const fri_spec *sp, const char *s, size_t n, fri_fields *f);
/* True when a line has a quoted field that no '"' closes (the error of a line with too
 * few fields says so). */
bool fri_spec_unclosed_quote(const fri_spec *sp, const char *s, size_t n);
/* True when a line's user and item fields are header names ("user", "movieId"): a header
 * line in the middle of the data (files joined). Asked on the error paths only. */
bool fri_spec_header_like(const fri_spec *sp, const fri_fields *f);
/* The delimiter in messages: "tab", "','", "'::'" ... */
const char *fri_spec_delim_name(const fri_spec *sp);

#endif
