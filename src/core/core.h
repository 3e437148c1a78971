/* Internal core helpers shared by every layer of the library (not public).
 * Prefix fri_: visible across the library's files, never in include/. */
#ifndef FEDREC_SRC_CORE_CORE_H
#define FEDREC_SRC_CORE_CORE_H

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "fedrec/core.h"

/* Inlined wherever called (a hot helper whose arguments are constants at the call). */
#if defined(__GNUC__)
#define FRI_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define FRI_ALWAYS_INLINE inline
#endif

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
/* fri_aligned_alloc, zeroed. */
void *fri_aligned_calloc(size_t n);
void fri_free(void *p);
void fri_free_aligned(void *p);
/* Asks the kernel to back [p, p + n) with transparent huge pages (madvise
 * MADV_HUGEPAGE on the 2 MiB-aligned pages inside it), for large tables read or added at
 * random rows (the item table, the round's accumulators, the client store): one TLB entry
 * per 2 MiB instead of per 4 KiB. Only a hint: below 4 MiB, where it is unsupported or
 * refused, nothing happens; the memory and its contents are the same either way. Call it
 * before the memory is first written, so the first touch already faults in huge pages. */
void fri_advise_huge(void *p, size_t n);
/* The plural ending of a count's noun in a message: "" for 1, "s" for any other. */
static inline const char *fri_s(uint64_t n) { return n == 1 ? "" : "s"; }
/* Safe size arithmetic: returns 0 and sets *out on success, -1 on overflow. */
static inline int fri_mul_size(size_t a, size_t b, size_t *out) {
    if (b != 0 && a > SIZE_MAX / b) return -1;
    *out = a * b;
    return 0;
}
/* Duplicates a string through fri_malloc. */
char *fri_strdup(const char *s);

void fri_log(int level, const char *fmt, ...) FR_PRINTF(2, 3);

/* A batch reader of a random stream: the words fr_rng_u32(r) would return, in the same
 * order, made FRI_RNG_BATCH at a time (16 Philox blocks side by side in vector registers,
 * rng.c) instead of a call and a block per four. For loops that draw many numbers (a
 * shuffle). Between begin and end only the reader may use r; end leaves r exactly where
 * reading the same words through fr_rng_u32 would have. */
#define FRI_RNG_BATCH 64 /* words; a multiple of 4 */
typedef struct fri_rng_batch {
    fr_rng *r;                 /* the stream (its state is stale until end) */
    uint64_t made;             /* words put in w so far (handed out: made - (n - at)) */
    uint64_t want;             /* words the reader expects to draw in all (a hint) */
    unsigned at, n;            /* next word of w, words in w */
    uint32_t ctr[4];           /* counter of the next block to make */
    uint32_t w[FRI_RNG_BATCH]; /* words made, not all handed out */
} fri_rng_batch;
void fri_rng_batch_begin(fri_rng_batch *b, fr_rng *r);
/* As begin, for a reader that expects to draw about `words` words: the blocks are then
 * made 16, 32 or 64 words at a time, no more than needed where it can (the same words). */
void fri_rng_batch_begin_for(fri_rng_batch *b, fr_rng *r, uint64_t words);
void fri_rng_batch_fill(fri_rng_batch *b); /* the next words (up to FRI_RNG_BATCH) into w */
void fri_rng_batch_end(fri_rng_batch *b);
static inline uint32_t fri_rng_batch_u32(fri_rng_batch *b) {
    if (b->at == b->n) fri_rng_batch_fill(b);
    return b->w[b->at++];
}
/* fr_rng_below(r, n) from the batch: the same value, the same words consumed. */
static inline uint32_t fri_rng_batch_below(fri_rng_batch *b, uint32_t n) {
    uint64_t m = (uint64_t)fri_rng_batch_u32(b) * n;
    uint32_t l = (uint32_t)m;
    if (l < n) {
        uint32_t t = (0u - n) % n;
        while (l < t) {
            m = (uint64_t)fri_rng_batch_u32(b) * n;
            l = (uint32_t)m;
        }
    }
    return (uint32_t)(m >> 32);
}
/* Tests: whether the batch reader may make its blocks with AVX2 (the default, where the
 * CPU has it) or keeps SSE2 (or the scalar blocks off x86). Returns whether AVX2 was in
 * use before the call. Not thread-safe: set it before drawing. */
bool fri_rng_batch_allow_avx2(bool allow);
/* Moves r forward by k words, as k calls of fr_rng_u32 would (O(1): the stream is a
 * function of its counter). */
void fri_rng_skip(fr_rng *r, uint64_t k);

/* Little-endian encoding, independent of host byte order. */
static inline void fri_put_u16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static inline void fri_put_u32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}
static inline void fri_put_u64(uint8_t *p, uint64_t v) { fri_put_u32(p, (uint32_t)v); fri_put_u32(p + 4, (uint32_t)(v >> 32)); }
static inline void fri_put_f32(uint8_t *p, float f) { uint32_t v; memcpy(&v, &f, 4); fri_put_u32(p, v); }
static inline void fri_put_f64(uint8_t *p, double f) { uint64_t v; memcpy(&v, &f, 8); fri_put_u64(p, v); }
static inline uint16_t fri_get_u16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
/* The CRC-32C of A then B (fr_crc32c(0, A B)) from crc_a = fr_crc32c(0, A), crc_b =
 * fr_crc32c(0, B) and B's length: a message whose long body is the same for many
 * receivers costs the body's CRC once. */
uint32_t fri_crc32c_combine(uint32_t crc_a, uint32_t crc_b, uint64_t len_b);

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
/* The same with the file's permission bits (0600 for a secret: the temporary file is
 * created with them, so the data is never readable by others, even briefly). */
FR_NODISCARD fr_err fri_write_file_atomic_mode(const char *path, const void *data, size_t n, unsigned mode);

/* A file written atomically as a stream (a temporary file beside it, then fsync and rename,
 * as fri_write_file_atomic), so a large file is never held in memory whole: bytes go
 * through a 1 MiB buffer, and the CRC-32C of everything put so far is kept (`crc`, for a
 * trailing checksum). The first failure latches in `err` and later puts are dropped;
 * fri_wfile_close then removes the temporary file and returns it. */
typedef struct fri_wfile {
    int fd;
    char *tmp;
    const char *path;
    uint8_t *buf;
    size_t len;
    uint64_t total; /* bytes put */
    uint32_t crc;   /* fr_crc32c(0, every byte put) */
    fr_err err;
} fri_wfile;
FR_NODISCARD fr_err fri_wfile_open(fri_wfile *w, const char *path, unsigned mode);
void fri_wfile_put(fri_wfile *w, const void *src, size_t n);
void fri_wfile_u32(fri_wfile *w, uint32_t v);
void fri_wfile_u64(fri_wfile *w, uint64_t v);
/* n floats as little-endian f32 */
void fri_wfile_f32s(fri_wfile *w, const float *v, size_t n);
/* Writes what is buffered, fsyncs and renames into place (fail = an error to report
 * instead, e.g. the caller's own: the temporary file is removed). Frees w's memory. */
FR_NODISCARD fr_err fri_wfile_close(fri_wfile *w, fr_err fail);

/* libsodium's sodium_init, once per process (thread-safe): every user of libsodium in
 * the library calls this first. FR_ERR_INTERNAL if libsodium cannot start. */
FR_NODISCARD fr_err fri_sodium_init(void);
/* Reads a whole file: regular files only (a directory, device, pipe or socket is
 * FR_ERR_IO naming it: /dev/zero would never end). */
FR_NODISCARD fr_err fri_read_file(const char *path, uint8_t **data, size_t *n);

/* A bounded reader over bytes: every decoder of the library (model file, checkpoint,
 * round state, TASK and RESULT messages) reads through one, so a length or count taken
 * from the bytes is checked against what remains before it is used, without overflow
 * (`k > left`, never `at + k > n`). Failures are FR_ERR_FORMAT with a message naming the
 * input (`name`), what it is (`kind`: "model file", "TASK message"), the field, the
 * offset and the bytes left. */
typedef struct fri_rd {
    const uint8_t *p;   /* the bytes */
    size_t n;           /* readable length (a trailing CRC may be excluded) */
    size_t at;          /* next byte */
    const char *name;   /* the input in messages (a path, "<memory>") */
    const char *kind;   /* what it is, in messages */
} fri_rd;
void fri_rd_init(fri_rd *r, const void *p, size_t n, const char *name, const char *kind);
static inline size_t fri_rd_left(const fri_rd *r) { return r->n - r->at; }
/* FR_OK if k more bytes can be read, else FR_ERR_FORMAT naming `what`. */
FR_NODISCARD fr_err fri_rd_need(fri_rd *r, size_t k, const char *what);
/* count elements of elem bytes each (count from the input: any value is checked). */
FR_NODISCARD fr_err fri_rd_need_n(fri_rd *r, uint64_t count, size_t elem, const char *what);
FR_NODISCARD fr_err fri_rd_u16(fri_rd *r, uint16_t *v, const char *what);
FR_NODISCARD fr_err fri_rd_u32(fri_rd *r, uint32_t *v, const char *what);
FR_NODISCARD fr_err fri_rd_u64(fri_rd *r, uint64_t *v, const char *what);
FR_NODISCARD fr_err fri_rd_f32(fri_rd *r, float *v, const char *what);
FR_NODISCARD fr_err fri_rd_f64(fri_rd *r, double *v, const char *what);
/* A view of the next k bytes (not copied), then skips them. */
FR_NODISCARD fr_err fri_rd_bytes(fri_rd *r, const uint8_t **p, size_t k, const char *what);
/* FR_ERR_FORMAT unless every byte has been read ("N unexpected bytes after what"). */
FR_NODISCARD fr_err fri_rd_end(const fri_rd *r, const char *what);

/* The first error of a parallel loop: workers call fri_latch_set (the first code and its
 * thread-local message win; later ones are dropped), the caller reads it after the loop
 * with fri_latch_get, which re-raises the message on the caller's thread. A latch is
 * reset before each loop. Lock-free; safe from any number of threads. */
typedef struct fri_latch {
    atomic_int err;     /* FR_OK or the first error */
    atomic_int ready;   /* the message of err is written */
    char msg[8192];     /* its message, with the prefix given to fri_latch_set */
} fri_latch;
void fri_latch_reset(fri_latch *l);
/* Records e (if it is the first) with "prefix: <this thread's message>" (prefix may be
 * NULL). Returns e. */
fr_err fri_latch_set(fri_latch *l, fr_err e, const char *prefix);
/* True once an error is recorded (a cheap check for workers to stop early). */
static inline bool fri_latch_failed(fri_latch *l) { return atomic_load_explicit(&l->err, memory_order_relaxed) != 0; }
/* FR_OK, or the recorded error with its message set on this thread. */
fr_err fri_latch_get(fri_latch *l);

/* True if no value of w[0, n) is an infinity or NaN (exponent bits all ones); vectorises. */
bool fri_all_finite(const float *w, size_t n);

/* The CPUs a cgroup quota allows (quota / period), from the text of v2's cpu.max ("max
 * 100000" or "150000 100000") or, when that is NULL, of v1's cpu.cfs_quota_us and
 * cpu.cfs_period_us; 0 when there is no limit or the text is not one (cpus.c). */
double fri_cgroup_cpus(const char *v2_cpu_max, const char *v1_quota, const char *v1_period);

#endif
