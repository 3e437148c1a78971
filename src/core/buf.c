/* Byte buffers for encoders, and whole-file reads and atomic writes. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/core.h"

static int buf_reserve(fri_buf *b, size_t extra) {
    if (b->err) return -1;
    if (extra > SIZE_MAX - b->len) { b->err = FR_ERR_NOMEM; return -1; }
    size_t need = b->len + extra;
    if (need <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need) cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    uint8_t *d = fri_realloc(b->data, cap);
    if (!d) { b->err = FR_ERR_NOMEM; return -1; }
    b->data = d;
    b->cap = cap;
    return 0;
}

void fri_buf_put(fri_buf *b, const void *src, size_t n) {
    if (n == 0 || buf_reserve(b, n)) return;
    memcpy(b->data + b->len, src, n);
    b->len += n;
}
void fri_buf_u32(fri_buf *b, uint32_t v) { uint8_t t[4]; fri_put_u32(t, v); fri_buf_put(b, t, 4); }
void fri_buf_u64(fri_buf *b, uint64_t v) { uint8_t t[8]; fri_put_u64(t, v); fri_buf_put(b, t, 8); }
void fri_buf_f32(fri_buf *b, float v) { uint8_t t[4]; fri_put_f32(t, v); fri_buf_put(b, t, 4); }
void fri_buf_free(fri_buf *b) { fri_free(b->data); b->data = NULL; b->len = b->cap = 0; b->err = FR_OK; }

fr_err fri_write_file_atomic(const char *path, const void *data, size_t n) {
    return fri_write_file_atomic_mode(path, data, n, 0644);
}

fr_err fri_write_file_atomic_mode(const char *path, const void *data, size_t n, unsigned mode) {
    size_t plen = strlen(path);
    char *tmp = fri_malloc(plen + 32);
    if (!tmp) return FR_ERR_NOMEM;
    snprintf(tmp, plen + 32, "%s.tmp.%ld", path, (long)getpid());
    /* a stale temporary file (a killed writer of the same pid) is removed, not reused:
     * truncating it would keep its permissions, and O_EXCL never follows a symlink */
    unlink(tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, (mode_t)mode);
    if (fd < 0) {
        fr_err e = fri_fail(FR_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
        fri_free(tmp);
        return e;
    }
    const uint8_t *p = data;
    size_t left = n;
    while (left) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            fr_err e = fri_fail(FR_ERR_IO, "%s: write failed: %s", tmp, strerror(errno));
            close(fd); unlink(tmp); fri_free(tmp);
            return e;
        }
        p += w;
        left -= (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        fr_err e = fri_fail(FR_ERR_IO, "%s: flush failed: %s", tmp, strerror(errno));
        unlink(tmp); fri_free(tmp);
        return e;
    }
    if (rename(tmp, path) != 0) {
        fr_err e = fri_fail(FR_ERR_IO, "%s: cannot rename into place: %s", path, strerror(errno));
        unlink(tmp); fri_free(tmp);
        return e;
    }
    fri_free(tmp);
    return FR_OK;
}

fr_err fri_read_file(const char *path, uint8_t **data, size_t *n) {
    *data = NULL;
    *n = 0;
    int fd = open(path, O_RDONLY);
    if (fd < 0) return fri_fail(FR_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) { close(fd); return fri_fail(FR_ERR_IO, "%s: cannot stat: %s", path, strerror(errno)); }
    if (S_ISDIR(st.st_mode)) { close(fd); return fri_fail(FR_ERR_IO, "%s: is a directory, expected a file", path); }
    /* a device, FIFO or socket has no size to trust (/dev/zero never ends): only regular
     * files, read up to the size they had when opened */
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return fri_fail(FR_ERR_IO, "%s: is not a regular file (a device, pipe or socket), expected a file", path);
    }
    if ((uint64_t)st.st_size >= (uint64_t)SIZE_MAX) {
        close(fd);
        return fri_fail(FR_ERR_IO, "%s: %lld bytes do not fit in memory", path, (long long)st.st_size);
    }
    size_t cap = st.st_size > 0 ? (size_t)st.st_size : 65536, len = 0;
    uint8_t *buf = fri_malloc(cap + 1);
    if (!buf) { close(fd); return FR_ERR_NOMEM; }
    for (;;) {
        if (len == cap) {
            uint8_t *nb = fri_realloc(buf, cap * 2 + 1);
            if (!nb) { fri_free(buf); close(fd); return FR_ERR_NOMEM; }
            buf = nb;
            cap *= 2;
        }
        ssize_t r = read(fd, buf + len, cap - len);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            fr_err e = fri_fail(FR_ERR_IO, "%s: read failed: %s", path, strerror(errno));
            fri_free(buf); close(fd);
            return e;
        }
        if (r == 0) break;
        len += (size_t)r;
    }
    close(fd);
    buf[len] = 0; /* convenience terminator for text parsers; not counted in n */
    *data = buf;
    *n = len;
    return FR_OK;
}

/* ------------------------------------------------------------------ streamed atomic writes */

#define WFILE_BUF ((size_t)1 << 20)

fr_err fri_wfile_open(fri_wfile *w, const char *path, unsigned mode) {
    memset(w, 0, sizeof *w);
    w->fd = -1;
    w->path = path;
    size_t plen = strlen(path);
    w->tmp = fri_malloc(plen + 32);
    w->buf = fri_malloc(WFILE_BUF);
    if (!w->tmp || !w->buf) {
        fri_free(w->tmp);
        fri_free(w->buf);
        memset(w, 0, sizeof *w);
        return FR_ERR_NOMEM;
    }
    snprintf(w->tmp, plen + 32, "%s.tmp.%ld", path, (long)getpid());
    unlink(w->tmp); /* a stale one (a killed writer of the same pid): removed, not reused */
    w->fd = open(w->tmp, O_WRONLY | O_CREAT | O_EXCL, (mode_t)mode);
    if (w->fd < 0) {
        fr_err e = fri_fail(FR_ERR_IO, "%s: cannot create: %s", w->tmp, strerror(errno));
        fri_free(w->tmp);
        fri_free(w->buf);
        memset(w, 0, sizeof *w);
        return e;
    }
    return FR_OK;
}

static void wfile_flush(fri_wfile *w) {
    const uint8_t *p = w->buf;
    size_t left = w->len;
    while (left && !w->err) {
        ssize_t n = write(w->fd, p, left);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            w->err = fri_fail(FR_ERR_IO, "%s: write failed: %s", w->tmp, strerror(errno));
            break;
        }
        p += n;
        left -= (size_t)n;
    }
    w->len = 0;
}

void fri_wfile_put(fri_wfile *w, const void *src, size_t n) {
    if (w->err || n == 0) return;
    w->crc = fr_crc32c(w->crc, src, n);
    w->total += n;
    const uint8_t *p = src;
    while (n && !w->err) {
        size_t c = WFILE_BUF - w->len < n ? WFILE_BUF - w->len : n;
        memcpy(w->buf + w->len, p, c);
        w->len += c;
        p += c;
        n -= c;
        if (w->len == WFILE_BUF) wfile_flush(w);
    }
}

void fri_wfile_u32(fri_wfile *w, uint32_t v) { uint8_t t[4]; fri_put_u32(t, v); fri_wfile_put(w, t, 4); }
void fri_wfile_u64(fri_wfile *w, uint64_t v) { uint8_t t[8]; fri_put_u64(t, v); fri_wfile_put(w, t, 8); }

void fri_wfile_f32s(fri_wfile *w, const float *v, size_t n) {
    uint8_t t[4096];
    for (size_t i = 0; i < n && !w->err;) {
        size_t c = 0;
        for (; i < n && c < sizeof t; i++, c += 4) fri_put_f32(t + c, v[i]);
        fri_wfile_put(w, t, c);
    }
}

fr_err fri_wfile_close(fri_wfile *w, fr_err fail) {
    if (!w->tmp) return fail ? fail : FR_ERR_STATE;
    if (!fail && !w->err) wfile_flush(w);
    fr_err e = fail ? fail : w->err;
    if (!e && fsync(w->fd) != 0) e = fri_fail(FR_ERR_IO, "%s: flush failed: %s", w->tmp, strerror(errno));
    if (close(w->fd) != 0 && !e) e = fri_fail(FR_ERR_IO, "%s: flush failed: %s", w->tmp, strerror(errno));
    if (!e && rename(w->tmp, w->path) != 0)
        e = fri_fail(FR_ERR_IO, "%s: cannot rename into place: %s", w->path, strerror(errno));
    if (e) unlink(w->tmp);
    fri_free(w->tmp);
    fri_free(w->buf);
    memset(w, 0, sizeof *w);
    w->fd = -1;
    return e;
}
