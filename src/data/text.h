/* The data layer's text toolkit, shared by the ratings readers (read.c and the files beside
 * it) and the metadata readers (meta.c): field splitting, trimming, blank lines, control
 * bytes, UTF-8 checks and Latin-1 conversion (text.c), and number parsing (number.c).
 *
 * Invariants: nothing here allocates except fri_text_dup; every function takes a pointer
 * and a length (the bytes need not be NUL-terminated) and reads only s[0, n). */
#ifndef FEDREC_SRC_DATA_TEXT_H
#define FEDREC_SRC_DATA_TEXT_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "fedrec/core.h"

#define FRI_MAX_FIELDS 64             /* fields kept per line (more are counted only) */
#define FRI_ID_LIMIT 2147483647ull    /* raw ids are in [0, 2^31) */

/* Quotes a value in a message: "%.*s" with at most 40 bytes of it. */
#define FRI_VAL(s, n) (int)((n) > 40 ? 40 : (n)), (s)

/* A path in a message: "%s%s" with FRI_PATH(p) gives the whole path up to FRI_PATH_SHOW
 * bytes, else "..." and its last FRI_PATH_SHOW bytes or fewer (from a UTF-8 character
 * boundary), so that a long path never pushes the line number and the reason out of the
 * 1 KiB message (fr_errmsg): they were cut off after ~1000 bytes of path. */
#define FRI_PATH_SHOW 200
static inline const char *fri_path_tail(const char *p) {
    size_t n = strlen(p);
    if (n <= FRI_PATH_SHOW) return p;
    const char *t = p + n - FRI_PATH_SHOW;
    while (((unsigned char)*t & 0xC0) == 0x80) t++;
    return t;
}
#define FRI_PATH(p) (strlen(p) > FRI_PATH_SHOW ? "..." : ""), fri_path_tail(p)
/* " (a path of N bytes)" in buf when the system refused path p for its length (err is
 * ENAMETOOLONG), else "": the note for "cannot open" messages. */
static inline const char *fri_path_note(char buf[48], const char *p, int err) {
    buf[0] = '\0';
    if (err == ENAMETOOLONG) snprintf(buf, 48, " (a path of %zu bytes)", strlen(p));
    return buf;
}

/* The fields of one line: s[k], len[k] for k < min(n, FRI_MAX_FIELDS). */
typedef struct fri_fields {
    int n;                           /* fields in the line (may exceed FRI_MAX_FIELDS) */
    const char *s[FRI_MAX_FIELDS];
    size_t len[FRI_MAX_FIELDS];
} fri_fields;

/* Splits s[0, n) on the single char delim, or on "::" when dcolon (a lone ':' is data).
 * A line always has at least one field; "a,,b" has three. */
void fri_text_split(const char *s, size_t n, char delim, bool dcolon, fri_fields *f);
/* Drops leading and trailing spaces (not tabs: they delimit). */
static inline void fri_text_trim(const char **s, size_t *n) {
    while (*n && (**s == ' ')) { (*s)++; (*n)--; }
    while (*n && (*s)[*n - 1] == ' ') (*n)--;
}
/* True if s[0, n) holds only spaces and tabs. */
bool fri_text_blank(const char *s, size_t n);
/* The index of the first control byte (below 0x20 except tab, or 0x7f: binary data), or
 * -1 if there is none. */
long fri_text_control_byte(const char *s, size_t n);
/* FR_ERR_PARSE "PATH:LINE: binary data (byte 0x.. at column C); expected a text file" when
 * s[0, n) holds a control byte (fri_text_control_byte), else FR_OK. */
fr_err fri_text_check(const char *path, unsigned long long line, const char *s, size_t n);
/* True if s[0, n) is well-formed UTF-8 (no overlong two-byte forms). */
bool fri_text_valid_utf8(const unsigned char *s, size_t n);
/* A NUL-terminated copy of s[0, n) through fri_malloc (NULL when out of memory): with
 * latin1, bytes >= 0x80 are converted from Latin-1 to UTF-8 unless s already is valid
 * UTF-8; otherwise the bytes are copied as they are. */
char *fri_text_dup(const char *s, size_t n, bool latin1);

/* ------------------------------------------------------------ numbers (number.c) */

enum { FRI_NUM_OK = 0, FRI_NUM_BAD = -1, FRI_NUM_RANGE = -2 };

/* Powers of ten 1e0 .. 1e18 (the readers' decimal scanners). */
extern const double fri_p10[19];

/* A raw id: [+-]decimal digits (spaces around are trimmed), value in [0, 2^31); "-0" is 0.
 * FRI_NUM_BAD when not a number, FRI_NUM_RANGE when negative or too large. */
int fri_parse_id(const char *s, size_t n, uint32_t *out);
/* A 64-bit integer: [+-]digits, trimmed. FRI_NUM_RANGE when it does not fit. */
int fri_parse_i64(const char *s, size_t n, int64_t *out);
/* An ISO-8601 date or date-time, UTC: "YYYY-MM-DD" (or "YYYY/MM/DD"), then optionally 'T' or ' ' and
 * "HH:MM[:SS[.fraction]]", then optionally 'Z' or, after a time, a UTC offset "+HH:MM"
 * ("+HHMM", '-' too) that is subtracted (trimmed; a quoted value is not). Seconds
 * since 1970-01-01 in *out, the fraction dropped. FRI_NUM_BAD otherwise. */
int fri_parse_datetime(const char *s, size_t n, int64_t *out);
/* A finite decimal: [+-]digits[.digits] parsed by hand; exponents and long digit runs go
 * through strtod, which may not see "inf", "nan" or hex. FRI_NUM_RANGE when infinite. */
int fri_parse_real(const char *s, size_t n, double *out);
/* True if the trimmed field starts like a number ([+-]digit): tells a header line. */
bool fri_text_is_numeric(const char *s, size_t n);

#endif
