/* The line reader's buffer management (data/lreader.h): opening a file or a byte range
 * of one, and refilling the buffer; the per-line step, fri_lr_next, is inline in the
 * header. The buffer ends with a NUL sentinel after the bytes read at every moment. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/lreader.h"
#include "data/text.h"

fr_err fri_lr_open(fri_lreader *r, const char *path) {
    memset(r, 0, sizeof *r);
    r->fd = -1;
    r->path = path;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int err = errno;
        char note[48];
        return fri_fail(FR_ERR_IO, "%s%s: cannot open: %s%s", FRI_PATH(path), strerror(err),
                        fri_path_note(note, path, err));
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return fri_fail(FR_ERR_IO, "%s%s: cannot stat: %s", FRI_PATH(path), strerror(errno));
    }
    if (S_ISDIR(st.st_mode)) {
        close(fd);
        return fri_fail(FR_ERR_IO, "%s%s: is a directory; expected a ratings file", FRI_PATH(path));
    }
    r->buf = fri_malloc(FRI_LR_CHUNK + 1 + FRI_LR_PAD);
    if (!r->buf) { close(fd); return FR_ERR_NOMEM; }
    r->buf[0] = '\0';
    r->cap = FRI_LR_CHUNK;
    r->fd = fd;
    return FR_OK;
}

fr_err fri_lr_open_range(fri_lreader *r, const char *path, int fd, uint64_t start, uint64_t stop) {
    memset(r, 0, sizeof *r);
    r->fd = -1;
    r->path = path;
    r->buf = fri_malloc(FRI_LR_CHUNK + 1 + FRI_LR_PAD);
    if (!r->buf) return FR_ERR_NOMEM;
    r->buf[0] = '\0';
    r->cap = FRI_LR_CHUNK;
    r->fd = fd;
    r->ranged = true;
    r->off = start;
    r->stop = stop;
    return FR_OK;
}

void fri_lr_close(fri_lreader *r) {
    if (r->fd >= 0 && !r->ranged) close(r->fd);
    fri_free(r->buf);
    r->fd = -1;
    r->buf = NULL;
}

/* Skips a UTF-8 byte-order mark at the start of the file once three bytes (or the end)
 * are in, before any line was returned. */
static void skip_bom(fri_lreader *r) {
    size_t have = r->end - r->pos;
    if (r->ranged || r->line > 0 || r->bytes != have) { r->bom_done = true; return; } /* not the start */
    if (have < 3 && !r->eof) return;
    if (have >= 3 && memcmp(r->buf + r->pos, "\xEF\xBB\xBF", 3) == 0) {
        r->pos += 3;
        if (r->scan < r->pos) r->scan = r->pos;
    }
    r->bom_done = true;
}

fr_err fri_lr_fill(fri_lreader *r) {
    if (r->pos > 0) {
        memmove(r->buf, r->buf + r->pos, r->end - r->pos);
        r->end -= r->pos;
        r->scan -= r->pos;
        r->pos = 0;
    }
    if (r->end == r->cap) {
        if (r->cap >= FRI_LR_MAX_LINE)
            return fri_fail(FR_ERR_PARSE, "%s%s:%llu: line longer than %zu MiB; expected a text file of short lines",
                            FRI_PATH(r->path), (unsigned long long)r->line + 1, FRI_LR_MAX_LINE >> 20);
        char *nb = fri_realloc(r->buf, r->cap * 2 + 1 + FRI_LR_PAD);
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
        if (k < 0) return fri_fail(FR_ERR_IO, "%s%s: read failed: %s", FRI_PATH(r->path), strerror(errno));
        if (k == 0) r->eof = true;
        r->end += (size_t)k;
        r->buf[r->end] = '\0'; /* the sentinel (buf has cap + 1 bytes) */
        r->bytes += (uint64_t)k;
        r->off += (uint64_t)k;
        if (!r->bom_done) skip_bom(r);
        return FR_OK;
    }
}
