/* fedrec core: errors, allocation hooks, counter-based random streams, thread pool,
 * checksums and logging. Everything else in the library stands on this header.
 *
 * Conventions used across the whole public API:
 *   - Functions return fr_err (FR_OK == 0). A constructor hands its object back through
 *     an out-parameter and leaves it NULL on failure, having leaked nothing.
 *   - Destructors accept NULL.
 *   - The detailed message of the last failure on the calling thread is fr_errmsg()
 *     ("ratings.dat:1042: expected 4 fields separated by '::', got 3").
 *   - The library never prints and never exits. */
#ifndef FEDREC_CORE_H
#define FEDREC_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FR_VERSION_STRING "0.1.0"

/* FR_API marks what the shared library exports: the library is built with hidden
 * visibility, so only the fr_ functions of these headers are its interface (internal
 * fri_ functions stay inside it). */
#if defined(__GNUC__) || defined(__clang__)
#define FR_API __attribute__((visibility("default")))
#define FR_NODISCARD __attribute__((warn_unused_result))
#define FR_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define FR_API
#define FR_NODISCARD
#define FR_PRINTF(a, b)
#endif

/* ------------------------------------------------------------------ errors */

typedef enum fr_err {
    FR_OK = 0,
    FR_ERR_NOMEM,       /* an allocation failed */
    FR_ERR_IO,          /* a file could not be opened, read, written or renamed */
    FR_ERR_PARSE,       /* malformed text input (names file and line) */
    FR_ERR_FORMAT,      /* malformed binary input: magic, length, count */
    FR_ERR_CHECKSUM,    /* checksum mismatch: damaged data */
    FR_ERR_VERSION,     /* a format version this build cannot read */
    FR_ERR_INVALID,     /* an invalid argument or configuration */
    FR_ERR_RANGE,       /* a value outside its allowed range */
    FR_ERR_EMPTY,       /* no data where some is needed */
    FR_ERR_UNSUPPORTED, /* a feature this build or object does not have */
    FR_ERR_STATE,       /* call not allowed in the object's current state */
    FR_ERR_INTERNAL,    /* a bug: please report */
} fr_err;

/* A short fixed description of an error code ("out of memory"). Never NULL. */
FR_API const char *fr_strerror(fr_err err);

/* The detailed message of the last failing call on this thread, or "" if none.
 * Valid until the next fedrec call on this thread. Thread-safe (thread-local). */
FR_API const char *fr_errmsg(void);

/* Forget the last message on this thread. */
FR_API void fr_errmsg_clear(void);

/* ------------------------------------------------------------------ allocation */

/* Every allocation in the library goes through one function. These hooks exist for
 * tests (SQLite-style out-of-memory testing):
 *   fr_test_fail_alloc(n)  makes the n-th allocation from now fail (n >= 1), and with
 *                          sticky also every one after it; n = 0 turns it off.
 *   fr_test_alloc_count()  counts allocations since the last fr_test_fail_alloc call.
 * Thread-safe (atomics), but meant for single-threaded tests. */
FR_API void fr_test_fail_alloc(long n, bool sticky);
FR_API long fr_test_alloc_count(void);

/* ------------------------------------------------------------------ random streams */

/* A counter-based random stream (Philox4x32-10). A stream is named by
 * (seed, round, client, purpose); the i-th output of a stream depends on nothing else,
 * so results never depend on thread scheduling or on which other streams were used.
 * Up to 2^48 blocks of 128 bits per stream. Not cryptographic: masks for secure
 * aggregation come from libsodium, never from here. */
typedef struct fr_rng {
    uint32_t key[2];   /* from seed */
    uint32_t ctr[4];   /* [0..1] block index (48 bits) | purpose (16 bits), [2] round, [3] client */
    uint32_t buf[4];   /* the current block's output */
    unsigned pos;      /* next unread word of buf; 4 = empty */
    int has_normal;    /* Box-Muller keeps its second value */
    double normal;
} fr_rng;

/* Purposes: each random use in the library has its own stream. */
enum fr_purpose {
    FR_PURPOSE_TEST = 0,
    FR_PURPOSE_INIT = 1,      /* parameter initialisation */
    FR_PURPOSE_NEGATIVES = 2, /* negative sampling during training */
    FR_PURPOSE_SHUFFLE = 3,   /* minibatch order */
    FR_PURPOSE_SAMPLE = 4,    /* client sampling */
    FR_PURPOSE_SPLIT = 5,     /* random train/test splits */
    FR_PURPOSE_EVAL_NEG = 6,  /* negatives for evaluation */
    FR_PURPOSE_GENERATE = 7,  /* synthetic data */
    FR_PURPOSE_PARTITION = 8, /* silo partitions */
    FR_PURPOSE_AVAIL = 9,     /* client availability */
    FR_PURPOSE_DP = 10,       /* differential-privacy noise (simulation only) */
    FR_PURPOSE_DP_SAMPLE = 11,/* Poisson sampling of clients under DP */
    FR_PURPOSE_LDP = 12,      /* a client's local-DP noise (simulation only) */
    FR_PURPOSE_DECOYS = 13,   /* a client's decoy items (hiding which items it touched) */
    FR_PURPOSE_DECOY_VALUES = 14, /* the pseudo-gradients of its decoy rows */
    FR_PURPOSE_COMPRESS_UP = 20,   /* a client's stochastic rounding of its RESULT */
    FR_PURPOSE_COMPRESS_DOWN = 21, /* the server's stochastic rounding of a round's TASK */
    FR_PURPOSE_DROPOUT = 15,  /* dropout masks of a training example (sequence models) */
    FR_PURPOSE_ATTACK = 22,   /* simulated attacks: who is malicious, their reference items, noise */
    FR_PURPOSE_FAULT = 23,    /* simulated faults: crashes, stragglers, compute and network times */
    FR_PURPOSE_USER = 1000    /* first free value for applications */
};

/* Positions the stream at its start. purpose < 65536. */
FR_API void fr_rng_init(fr_rng *r, uint64_t seed, uint32_t round, uint32_t client, uint32_t purpose);

FR_API uint32_t fr_rng_u32(fr_rng *r);
FR_API uint64_t fr_rng_u64(fr_rng *r);
/* Uniform in [0, n), without modulo bias (Lemire's method). n must be > 0. */
FR_API uint32_t fr_rng_below(fr_rng *r, uint32_t n);
FR_API uint64_t fr_rng_below64(fr_rng *r, uint64_t n);
/* Uniform in [0, 1): 53 random bits for double, 24 for float. */
FR_API double fr_rng_double(fr_rng *r);
FR_API float fr_rng_float(fr_rng *r);
/* Standard normal N(0, 1) (Box-Muller on two doubles, caches the pair's second). */
FR_API double fr_rng_normal(fr_rng *r);
/* Fisher-Yates shuffle of a[0..n). */
FR_API void fr_rng_shuffle_u32(fr_rng *r, uint32_t *a, size_t n);
/* k distinct values from [0, n), k <= n, in random order. Uses O(k) memory it
 * allocates, so it can fail with FR_ERR_NOMEM. */
FR_API FR_NODISCARD fr_err fr_rng_sample(fr_rng *r, uint32_t n, uint32_t k, uint32_t *out);

/* The raw Philox4x32-10 block function, for known-answer tests. */
FR_API void fr_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

/* Zipf / power-law sampler over {0..n-1}: P(k) proportional to 1/(k+1)^s, s >= 0.
 * Walker alias table: O(n) to build, O(1) per draw. */
typedef struct fr_zipf fr_zipf;
FR_API FR_NODISCARD fr_err fr_zipf_create(fr_zipf **out, uint32_t n, double s);
/* Any discrete distribution over {0..n-1} given by non-negative weights. */
FR_API FR_NODISCARD fr_err fr_zipf_create_weights(fr_zipf **out, const double *w, uint32_t n);
FR_API uint32_t fr_zipf_draw(const fr_zipf *z, fr_rng *r);
FR_API void fr_zipf_free(fr_zipf *z);

/* ------------------------------------------------------------------ thread pool */

typedef struct fr_pool fr_pool;
/* Called once for every index in [0, n); worker is in [0, fr_pool_size(p)). */
typedef void (*fr_task_fn)(void *ctx, size_t index, int worker);

/* The CPUs this process may use: the online CPUs, narrowed by its affinity mask (taskset,
 * cpusets) and by a cgroup CPU quota (v2 cpu.max, v1 cpu.cfs_quota_us / cfs_period_us,
 * rounded up: a container limited to 1.5 CPUs gets 2); at least 1, at most 1024. */
FR_API int fr_cpu_count(void);

/* nthreads <= 0 means one per CPU this process may use (fr_cpu_count). nthreads == 1
 * starts no thread. */
FR_API FR_NODISCARD fr_err fr_pool_create(fr_pool **out, int nthreads);
FR_API void fr_pool_free(fr_pool *p);
FR_API int fr_pool_size(const fr_pool *p);
/* Runs fn over [0, n) on the pool (the caller takes part as worker 0) and returns when
 * all are done. Indices are handed out in chunks of `grain` (0 = automatic).
 * Not reentrant: one fr_pool_for at a time per pool. */
FR_API void fr_pool_for(fr_pool *p, size_t n, size_t grain, fr_task_fn fn, void *ctx);

/* ------------------------------------------------------------------ checksums */

/* CRC-32C (Castagnoli). Start with crc = 0; chain calls by passing the last result. */
FR_API uint32_t fr_crc32c(uint32_t crc, const void *data, size_t n);

/* ------------------------------------------------------------------ logging */

enum fr_log_level { FR_LOG_DEBUG = 0, FR_LOG_INFO = 1, FR_LOG_WARN = 2, FR_LOG_ERROR = 3 };
typedef void (*fr_log_fn)(void *user, int level, const char *message);
/* Installs the process-wide log handler (NULL: drop messages). Not thread-safe with
 * concurrent logging; set it once at start-up. */
FR_API void fr_set_log_handler(fr_log_fn fn, void *user, int min_level);

#ifdef __cplusplus
}
#endif
#endif
