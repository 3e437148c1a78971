/* The parallel parse of the ratings readers (declared in data/read.h). A large regular
 * file is cut at line starts into one byte range per CPU after its first non-blank line
 * (format and header decided serially); each range is parsed on a pool worker into its
 * own rows with pread, then the rows are appended in file order, array by array, freeing
 * each range's array once copied (peak: the rows plus one array). A range that meets a bad
 * line without skip_bad_lines stops; the caller then goes on serially, which reports the
 * same error with its exact line number. With skip_bad_lines the line number of the first
 * bad line is found by counting newlines up to its byte offset. So the rows, statistics
 * and errors are the serial path's. */
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/line.h"
#include "data/read.h"

static _Atomic uint64_t g_par_min = (uint64_t)64 << 20; /* smallest file parsed in parallel */
static _Atomic int g_par_ranges;                         /* ranges (0 = online CPUs) */

static _Atomic uint64_t g_par_loads;                     /* files read in parallel so far */

uint64_t fri_read_parallel_loads(void) { return g_par_loads; }

void fri_read_set_parallel(uint64_t min_bytes, int ranges) {
    g_par_min = min_bytes ? min_bytes : (uint64_t)64 << 20;
    g_par_ranges = ranges > 0 ? ranges : 0;
}

typedef struct range_job {
    fri_lreader lr;
    fri_rows rows;
    uint64_t lines, skipped; /* data lines seen, bad lines skipped */
    uint64_t first_bad;      /* byte offset of the first bad line (valid when skipped or bad) */
    bool bad;                /* stopped at a bad line (skip_bad_lines off) */
    fr_err e;                /* fatal error (not a bad line) */
} range_job;

typedef struct par_ctx {
    const fri_rdctx *c;
    bool fast;
    range_job *jobs;
} par_ctx;

static void par_range(void *ctx, size_t k, int worker) {
    (void)worker;
    par_ctx *p = ctx;
    range_job *j = &p->jobs[k];
    fri_rdctx c = *p->c;
    c.line = 0; /* messages made here are thrown away */
    for (;;) {
        if (p->fast && fri_line_fast_row(&j->lr, &c, &j->rows)) {
            j->lines++;
            continue;
        }
        char *s;
        size_t n;
        bool unterminated;
        int got = fri_lr_next(&j->lr, &s, &n, &unterminated, &j->e);
        if (got <= 0) return;
        if (fri_text_blank(s, n)) continue;
        if (j->rows.n == j->rows.cap) { /* more lines than counted */
            j->e = fri_fail(FR_ERR_IO, "%s%s: the file changed while it was read", FRI_PATH(c.path));
            return;
        }
        c.unterminated = unterminated;
        j->lines++;
        fr_err e = FR_OK;
        int rc = fri_line_push(&c, p->fast, s, n, &j->rows, &e);
        if (rc < 0) { j->e = e; return; }
        if (rc > 0) {
            uint64_t at = j->lr.off - j->lr.end + (uint64_t)(s - j->lr.buf);
            if (!j->skipped && !j->bad) j->first_bad = at;
            if (!c.o->skip_bad_lines) { j->bad = true; return; }
            j->skipped++;
        }
    }
}

/* First line start at or after pos (stop if none before it). */
static fr_err line_start_after(int fd, const char *path, uint64_t pos, uint64_t stop, char *buf, uint64_t *out) {
    while (pos < stop) {
        size_t want = stop - pos < FRI_LR_CHUNK ? (size_t)(stop - pos) : FRI_LR_CHUNK;
        ssize_t k = pread(fd, buf, want, (off_t)pos);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) return fri_fail(FR_ERR_IO, "%s%s: read failed: %s", FRI_PATH(path), strerror(errno));
        if (k == 0) break;
        char *nl = memchr(buf, '\n', (size_t)k);
        if (nl) { *out = pos + (uint64_t)(nl - buf) + 1; return FR_OK; }
        pos += (uint64_t)k;
    }
    *out = stop;
    return FR_OK;
}

/* 1-based number of the line starting at byte off. */
static fr_err line_number_at(int fd, const char *path, uint64_t off, char *buf, uint64_t *out) {
    uint64_t nl = 0, pos = 0;
    while (pos < off) {
        size_t want = off - pos < FRI_LR_CHUNK ? (size_t)(off - pos) : FRI_LR_CHUNK;
        ssize_t k = pread(fd, buf, want, (off_t)pos);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) return fri_fail(FR_ERR_IO, "%s%s: read failed: %s", FRI_PATH(path), strerror(errno));
        if (k == 0) break;
        for (const char *q = buf, *qe = buf + k; (q = memchr(q, '\n', (size_t)(qe - q))) != NULL; q++) nl++;
        pos += (uint64_t)k;
    }
    *out = nl + 1;
    return FR_OK;
}

static void par_count(void *ctx, size_t k, int worker) {
    (void)worker;
    par_ctx *p = ctx;
    range_job *j = &p->jobs[k];
    uint64_t nl = 0, pos = j->lr.off;
    while (pos < j->lr.stop) {
        size_t want = j->lr.stop - pos < FRI_LR_CHUNK ? (size_t)(j->lr.stop - pos) : FRI_LR_CHUNK;
        ssize_t got = pread(j->lr.fd, j->lr.buf, want, (off_t)pos);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) { j->e = fri_fail(FR_ERR_IO, "%s%s: read failed: %s", FRI_PATH(j->lr.path), strerror(errno)); return; }
        if (got == 0) break;
        const char *q = j->lr.buf, *qe = q + got;
        while ((q = memchr(q, '\n', (size_t)(qe - q))) != NULL) { nl++; q++; }
        pos += (uint64_t)got;
    }
    j->rows.cap = (size_t)nl + 1; /* lines in the range: an upper bound on its rows */
}

/* The ranges' lines are counted first so that every range writes its rows straight into
 * its slice of rows; the slices are then closed up. */
fr_err fri_read_parallel(const fri_rdctx *c, bool fast, int fd, uint64_t start, uint64_t size, int nr, fri_rows *rows,
                         bool *done, uint64_t *lines, uint64_t *skipped, uint64_t *first_bad) {
    *done = false;
    fr_pool *pool = NULL;
    range_job *jobs = fri_calloc((size_t)nr, sizeof *jobs);
    if (!jobs) return FR_ERR_NOMEM;
    for (int k = 0; k < nr; k++) jobs[k].lr.fd = -1;
    fr_err e = FR_OK;
    for (int k = 0; k < nr && !e; k++) e = fri_lr_open_range(&jobs[k].lr, c->path, fd, 0, 0);
    uint64_t prev = start;
    for (int k = 0; k < nr && !e; k++) {
        uint64_t b = size;
        if (k + 1 < nr) { /* the first line start at or after the nominal cut */
            uint64_t nominal = start + (size - start) * (uint64_t)(k + 1) / (uint64_t)nr;
            if (nominal < prev) nominal = prev;
            e = line_start_after(fd, c->path, nominal ? nominal - 1 : 0, size, jobs[0].lr.buf, &b);
        }
        jobs[k].lr.off = prev;
        jobs[k].lr.stop = b;
        prev = b;
    }
    if (!e) e = fr_pool_create(&pool, nr);
    par_ctx p = {c, fast, jobs};
    if (!e) {
        fr_pool_for(pool, (size_t)nr, 1, par_count, &p);
        for (int k = 0; k < nr && !e; k++) e = jobs[k].e;
    }
    size_t need = rows->n;
    for (int k = 0; k < nr; k++) need += jobs[k].rows.cap;
    if (!e && need > rows->cap) { /* arrays larger than rows->cap on failure are harmless */
        void **arr[4] = {(void **)&rows->user, (void **)&rows->item, (void **)&rows->rating, (void **)&rows->time};
        static const size_t sz[4] = {sizeof(uint32_t), sizeof(uint32_t), sizeof(float), sizeof(int64_t)};
        for (int a = 0; a < 4 && !e; a++) {
            void *q = fri_realloc(*arr[a], need * sz[a]);
            if (!q) e = FR_ERR_NOMEM;
            else *arr[a] = q;
        }
        if (!e) rows->cap = need;
    }
    if (!e) {
        size_t base = rows->n;
        for (int k = 0; k < nr; k++) { /* each range's view of its slice */
            fri_rows *v = &jobs[k].rows;
            v->user = rows->user + base;
            v->item = rows->item + base;
            v->rating = rows->rating + base;
            v->time = rows->time + base;
            base += v->cap;
            jobs[k].lr.buf[0] = '\0'; /* the sentinel (the buffers served as scratch so far) */
        }
        fr_pool_for(pool, (size_t)nr, 1, par_range, &p);
        for (int k = 0; k < nr && !e; k++) e = jobs[k].e;
    }
    bool bad = false;
    for (int k = 0; k < nr; k++) bad = bad || jobs[k].bad;
    if (!e && !bad) {
        *lines = *skipped = *first_bad = 0;
        size_t n = rows->n;
        for (int k = 0; k < nr && !e; k++) {
            fri_rows *v = &jobs[k].rows;
            memmove(rows->user + n, v->user, v->n * sizeof *v->user);
            memmove(rows->item + n, v->item, v->n * sizeof *v->item);
            memmove(rows->rating + n, v->rating, v->n * sizeof *v->rating);
            memmove(rows->time + n, v->time, v->n * sizeof *v->time);
            n += v->n;
            *lines += jobs[k].lines;
            if (jobs[k].skipped && !*skipped)
                e = line_number_at(fd, c->path, jobs[k].first_bad, jobs[0].lr.buf, first_bad);
            *skipped += jobs[k].skipped;
        }
        if (!e) {
            rows->n = n;
            *done = true;
            g_par_loads++;
        }
    }
    for (int k = 0; k < nr; k++) fri_lr_close(&jobs[k].lr); /* the views are not freed */
    fri_free(jobs);
    fr_pool_free(pool);
    return e;
}

int fri_read_parallel_ranges(int fd, uint64_t *size) {
    struct stat st;
    *size = 0;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size < g_par_min) return 0;
    *size = (uint64_t)st.st_size;
    int nr = g_par_ranges;
    if (nr <= 0) {
        int cpus = fr_cpu_count();
        nr = cpus > 64 ? 64 : cpus;
    }
    return nr;
}
