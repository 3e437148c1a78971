/* The one allocation path of the library, with a fault-injection hook for tests.
 * Invariant: every fri_* allocator consults the hook exactly once per call, so a test
 * can sweep "fail the N-th allocation" over any operation and reach every failure path. */
#define _DEFAULT_SOURCE /* madvise, MADV_HUGEPAGE */
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "core/core.h"

static atomic_long g_count;   /* allocations since the hook was last set */
static atomic_long g_fail_at; /* 0 = off, else fail the allocation with this number */
static atomic_bool g_sticky;

void fr_test_fail_alloc(long n, bool sticky) {
    atomic_store(&g_count, 0);
    atomic_store(&g_sticky, sticky);
    atomic_store(&g_fail_at, n < 0 ? 0 : n);
}

long fr_test_alloc_count(void) { return atomic_load(&g_count); }

static int should_fail(void) {
    long k = atomic_fetch_add(&g_count, 1) + 1;
    long at = atomic_load(&g_fail_at);
    if (at == 0) return 0;
    return k == at || (k > at && atomic_load(&g_sticky));
}

static void *oom(size_t n) {
    fri_fail(FR_ERR_NOMEM, "out of memory allocating %zu bytes", n);
    return NULL;
}

void *fri_malloc(size_t n) {
    if (should_fail()) return oom(n);
    void *p = malloc(n ? n : 1);
    return p ? p : oom(n);
}

void *fri_calloc(size_t count, size_t size) {
    size_t n;
    if (fri_mul_size(count, size, &n)) return oom(SIZE_MAX);
    if (should_fail()) return oom(n);
    void *p = calloc(n ? count : 1, n ? size : 1);
    return p ? p : oom(n);
}

void *fri_realloc(void *old, size_t n) {
    if (should_fail()) return oom(n);
    void *p = realloc(old, n ? n : 1);
    return p ? p : oom(n);
}

void *fri_aligned_alloc(size_t n) {
    if (should_fail()) return oom(n);
    void *p = NULL;
    /* large tables start on a 2 MiB boundary, so fri_advise_huge can cover them whole */
    size_t align = n >= ((size_t)8 << 20) ? (size_t)2 << 20 : 64;
    if (posix_memalign(&p, align, n ? (n + 63) & ~(size_t)63 : 64) != 0) return oom(n);
    return p;
}

void *fri_aligned_calloc(size_t n) {
    void *p = fri_aligned_alloc(n);
    if (p) memset(p, 0, n);
    return p;
}

void fri_advise_huge(void *p, size_t n) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    const uintptr_t huge = (uintptr_t)2 << 20;
    if (!p || n < 2 * huge) return;
    uintptr_t a = ((uintptr_t)p + huge - 1) & ~(huge - 1), b = ((uintptr_t)p + n) & ~(huge - 1);
    if (b > a) (void)madvise((void *)a, b - a, MADV_HUGEPAGE); /* a hint: its failure changes nothing */
#else
    (void)p;
    (void)n;
#endif
}

void fri_free(void *p) { free(p); }
void fri_free_aligned(void *p) { free(p); }

char *fri_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = fri_malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}
