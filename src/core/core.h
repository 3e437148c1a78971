/* Internal core helpers shared by every layer of the library (not public).
 * Prefix fri_: visible across the library's files, never in include/. */
#ifndef FEDREC_SRC_CORE_CORE_H
#define FEDREC_SRC_CORE_CORE_H

#include <stdarg.h>
#include <stdint.h>
#include <string.h>

#include "fedrec/core.h"

/* Sets this thread's detailed message (printf format) and returns code, so a failing
 * path reads `return fri_fail(FR_ERR_PARSE, "%s:%zu: expected ...", path, line);`. */
fr_err fri_fail(fr_err code, const char *fmt, ...) FR_PRINTF(2, 3);
/* Prefixes this thread's current message with more context ("loading X: <old>"). */
fr_err fri_fail_prefix(fr_err code, const char *fmt, ...) FR_PRINTF(2, 3);

/* All allocation goes through these (the test hook can make any of them fail).
 * fri_malloc(0) returns a unique non-NULL pointer. Failure sets the message. */
void *fri_malloc(size_t n);
void *fri_calloc(size_t count, size_t size);
void *fri_realloc(void *p, size_t n);
/* 64-byte aligned; free with fri_free_aligned. */
void *fri_aligned_alloc(size_t n);
void fri_free(void *p);
void fri_free_aligned(void *p);
/* Safe size arithmetic: returns 0 and sets *out on success, -1 on overflow. */
static inline int fri_mul_size(size_t a, size_t b, size_t *out) {
    if (b != 0 && a > SIZE_MAX / b) return -1;
    *out = a * b;
    return 0;
}
/* Duplicates a string through fri_malloc. */
char *fri_strdup(const char *s);

void fri_log(int level, const char *fmt, ...) FR_PRINTF(2, 3);

/* Little-endian encoding, independent of host byte order. */
static inline void fri_put_u16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static inline void fri_put_u32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}
static inline void fri_put_u64(uint8_t *p, uint64_t v) { fri_put_u32(p, (uint32_t)v); fri_put_u32(p + 4, (uint32_t)(v >> 32)); }
static inline void fri_put_f32(uint8_t *p, float f) { uint32_t v; memcpy(&v, &f, 4); fri_put_u32(p, v); }
static inline void fri_put_f64(uint8_t *p, double f) { uint64_t v; memcpy(&v, &f, 8); fri_put_u64(p, v); }
static inline uint16_t fri_get_u16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static inline uint32_t fri_get_u32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static inline uint64_t fri_get_u64(const uint8_t *p) { return (uint64_t)fri_get_u32(p) | ((uint64_t)fri_get_u32(p + 4) << 32); }
static inline float fri_get_f32(const uint8_t *p) { uint32_t v = fri_get_u32(p); float f; memcpy(&f, &v, 4); return f; }
static inline double fri_get_f64(const uint8_t *p) { uint64_t v = fri_get_u64(p); double f; memcpy(&f, &v, 8); return f; }

/* A growable byte buffer for encoders. On allocation failure `err` latches and later
 * writes are dropped, so an encoder checks once at the end. */
typedef struct fri_buf {
    uint8_t *data;
    size_t len, cap;
    fr_err err;
} fri_buf;
void fri_buf_put(fri_buf *b, const void *src, size_t n);
void fri_buf_u32(fri_buf *b, uint32_t v);
void fri_buf_u64(fri_buf *b, uint64_t v);
void fri_buf_f32(fri_buf *b, float v);
void fri_buf_free(fri_buf *b);

/* Writes data to path atomically: a temporary file beside it, fsync, rename. */
FR_NODISCARD fr_err fri_write_file_atomic(const char *path, const void *data, size_t n);
/* Reads a whole file (regular files only; a directory is an error naming it). */
FR_NODISCARD fr_err fri_read_file(const char *path, uint8_t **data, size_t *n);

#endif
