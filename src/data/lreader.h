/* The line reader of the ratings readers (lreader.c): a file read with read(2) (or
 * pread(2) over a byte range, for the parallel parse) in 1 MiB chunks, never whole and
 * never mmap'd, so the page cache does not show up in RSS. A line may straddle two
 * chunks: the unconsumed tail moves to the front before the next read.
 *
 * A UTF-8 byte-order mark (EF BB BF) at the start of a file is skipped: it is not data
 * (ranges, which never start a file, keep every byte).
 *
 * Invariants: buf holds cap + 1 + FRI_LR_PAD bytes and buf[end] is always a NUL, a
 * sentinel that ends any scan of the bytes read (the one-pass row scanners rely on it and
 * may load up to FRI_LR_PAD bytes past it); bytes in [pos, scan) hold no '\n'. */
#ifndef FEDREC_SRC_DATA_LREADER_H
#define FEDREC_SRC_DATA_LREADER_H

#include "core/core.h"

#define FRI_LR_CHUNK ((size_t)1 << 20)     /* bytes per read(2) */
#define FRI_LR_MAX_LINE ((size_t)64 << 20) /* longest line accepted */
#define FRI_LR_PAD 8                       /* bytes after the sentinel that may be loaded (not used) */

typedef struct fri_lreader {
    int fd;
    const char *path;
    char *buf;        /* [cap + 1 + FRI_LR_PAD] */
    size_t cap;
    size_t pos, end;  /* unconsumed bytes are buf[pos, end) */
    size_t scan;      /* bytes in [pos, scan) are known to hold no '\n' */
    bool eof;
    bool bom_done;    /* the file's start was checked for a byte-order mark */
    bool ranged;      /* reads [off, stop) with pread on a borrowed fd */
    uint64_t off;     /* file offset of buf[end] */
    uint64_t stop;    /* end of the range when ranged */
    uint64_t line;    /* number of the last line returned (1-based) */
    uint64_t bytes;   /* bytes read so far */
} fri_lreader;

/* Opens path for reading: FR_ERR_IO naming it (cannot open or stat, is a directory),
 * FR_ERR_NOMEM. On failure nothing is left open. */
FR_NODISCARD fr_err fri_lr_open(fri_lreader *r, const char *path);
/* A reader of the byte range [start, stop) of the open file fd (not closed by
 * fri_lr_close); path names it in messages. FR_ERR_NOMEM. */
FR_NODISCARD fr_err fri_lr_open_range(fri_lreader *r, const char *path, int fd, uint64_t start, uint64_t stop);
void fri_lr_close(fri_lreader *r);
/* Reads more bytes after compacting (growing the buffer for a line longer than it, up to
 * FRI_LR_MAX_LINE); at end of file sets eof. */
FR_NODISCARD fr_err fri_lr_fill(fri_lreader *r);

/* Next line without its '\n' (and a '\r' before it). Returns 1 with a line, 0 at the end,
 * -1 on error (*err set). *unterminated tells a final line that has no '\n'. The line is
 * NUL-terminated in place and valid until the next call. Inline: the readers call it once
 * a line. */
static inline int fri_lr_next(fri_lreader *r, char **s, size_t *len, bool *unterminated, fr_err *err) {
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
        fr_err e = fri_lr_fill(r);
        if (e) { *err = e; return -1; }
    }
}

#endif
