/* A small fork-join thread pool: fr_pool_for hands out index chunks from one atomic
 * counter; the caller works too. Which worker runs which index varies run to run, so
 * callers that need determinism write results by index and reduce in index order. */
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include "core/core.h"

struct fr_pool {
    int n;                  /* workers including the caller */
    pthread_t *threads;     /* [n-1] */
    pthread_mutex_t mu;
    pthread_cond_t go, done;
    uint64_t generation;    /* bumped for every job */
    int active;             /* helper threads still on the current job */
    int quit;
    /* the current job */
    fr_task_fn fn;
    void *ctx;
    size_t total, grain;
    atomic_size_t next;
};

typedef struct { fr_pool *p; int id; } worker_arg;

static void run_chunks(fr_pool *p, int worker) {
    for (;;) {
        size_t i = atomic_fetch_add(&p->next, p->grain);
        if (i >= p->total) break;
        size_t end = i + p->grain < p->total ? i + p->grain : p->total;
        for (; i < end; i++) p->fn(p->ctx, i, worker);
    }
}

static void *worker_main(void *argp) {
    worker_arg a = *(worker_arg *)argp;
    fri_free(argp);
    fr_pool *p = a.p;
    uint64_t seen = 0;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->quit && p->generation == seen) pthread_cond_wait(&p->go, &p->mu);
        if (p->quit) break;
        seen = p->generation;
        pthread_mutex_unlock(&p->mu);
        run_chunks(p, a.id);
        pthread_mutex_lock(&p->mu);
        if (--p->active == 0) pthread_cond_signal(&p->done);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

fr_err fr_pool_create(fr_pool **out, int nthreads) {
    *out = NULL;
    if (nthreads <= 0) {
        nthreads = fr_cpu_count();
    }
    if (nthreads > 1024) return fri_fail(FR_ERR_INVALID, "thread count %d; expected 1..1024", nthreads);
    fr_pool *p = fri_calloc(1, sizeof *p);
    if (!p) return FR_ERR_NOMEM;
    p->n = 1;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->go, NULL);
    pthread_cond_init(&p->done, NULL);
    if (nthreads > 1) {
        p->threads = fri_calloc((size_t)nthreads - 1, sizeof *p->threads);
        if (!p->threads) { fr_pool_free(p); return FR_ERR_NOMEM; }
        for (int i = 1; i < nthreads; i++) {
            worker_arg *a = fri_malloc(sizeof *a);
            if (!a) { fr_pool_free(p); return FR_ERR_NOMEM; }
            a->p = p;
            a->id = i;
            if (pthread_create(&p->threads[i - 1], NULL, worker_main, a) != 0) {
                fri_free(a);
                fr_pool_free(p);
                return fri_fail(FR_ERR_NOMEM, "could not start thread %d of %d", i + 1, nthreads);
            }
            p->n++;
        }
    }
    *out = p;
    return FR_OK;
}

void fr_pool_free(fr_pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->quit = 1;
    pthread_cond_broadcast(&p->go);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->n; i++) pthread_join(p->threads[i - 1], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->go);
    pthread_cond_destroy(&p->done);
    fri_free(p->threads);
    fri_free(p);
}

int fr_pool_size(const fr_pool *p) { return p ? p->n : 1; }

void fr_pool_for(fr_pool *p, size_t n, size_t grain, fr_task_fn fn, void *ctx) {
    if (n == 0) return;
    int workers = p ? p->n : 1;
    if (grain == 0) {
        grain = n / ((size_t)workers * 8);
        if (grain == 0) grain = 1;
    }
    if (!p || p->n == 1 || n <= grain) {
        for (size_t i = 0; i < n; i++) fn(ctx, i, 0);
        return;
    }
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->ctx = ctx;
    p->total = n;
    p->grain = grain;
    atomic_store(&p->next, 0);
    p->active = p->n - 1;
    p->generation++;
    pthread_cond_broadcast(&p->go);
    pthread_mutex_unlock(&p->mu);
    run_chunks(p, 0);
    pthread_mutex_lock(&p->mu);
    while (p->active > 0) pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}
