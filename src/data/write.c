/* Writers: the NCF layout (train.rating, test.rating, test.negative with dense 0-based
 * ids, and users.map, items.map giving each index its raw id) and u.data-style TSV with
 * raw ids.
 * Every file is streamed to a temporary file beside its target, flushed to disk and
 * renamed into place, so a reader never sees a half-written file. Rows come out in
 * user order, each user's rows in CSR order (time, item); ratings print with %g.
 * test.negative has one line per user with a test interaction (users without one are
 * left out), naming that user's last test interaction. */
#include <errno.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "data/dataset.h"
#include "data/text.h"

/* A file being written atomically. */
typedef struct {
    FILE *f;
    char *tmp;        /* temporary path */
    const char *path; /* final path */
    bool lazy;        /* no fsync of its own: derived files, written again after a crash */
} afile;

static fr_err afile_open(afile *a, const char *path) {
    a->path = path;
    a->f = NULL;
    a->lazy = false;
    size_t n = strlen(path) + 32;
    a->tmp = fri_malloc(n);
    if (!a->tmp) return FR_ERR_NOMEM;
    snprintf(a->tmp, n, "%s.tmp.%ld", path, (long)getpid());
    a->f = fopen(a->tmp, "wb");
    if (!a->f) {
        int err = errno;
        char note[48];
        fr_err e = fri_fail(FR_ERR_IO, "%s%s: cannot create: %s%s", FRI_PATH(a->tmp), strerror(err),
                            fri_path_note(note, a->tmp, err));
        fri_free(a->tmp);
        a->tmp = NULL;
        return e;
    }
    return FR_OK;
}

/* Drops a file that failed half way. */
static void afile_abort(afile *a) {
    if (a->f) fclose(a->f);
    if (a->tmp) { unlink(a->tmp); fri_free(a->tmp); }
    a->f = NULL;
    a->tmp = NULL;
}

static fr_err afile_commit(afile *a) {
    fr_err e = FR_OK;
    if (ferror(a->f) || fflush(a->f) != 0 || (!a->lazy && fsync(fileno(a->f)) != 0))
        e = fri_fail(FR_ERR_IO, "%s%s: write failed: %s", FRI_PATH(a->tmp), strerror(errno));
    int rc = fclose(a->f);
    a->f = NULL;
    if (!e && rc != 0) e = fri_fail(FR_ERR_IO, "%s%s: write failed: %s", FRI_PATH(a->tmp), strerror(errno));
    if (!e && rename(a->tmp, a->path) != 0)
        e = fri_fail(FR_ERR_IO, "%s%s: cannot rename into place: %s", FRI_PATH(a->path), strerror(errno));
    if (e) unlink(a->tmp);
    fri_free(a->tmp);
    a->tmp = NULL;
    return e;
}

/* Creates dir and its missing parents. */
static fr_err make_dirs(const char *dir) {
    char *p = fri_strdup(dir);
    if (!p) return FR_ERR_NOMEM;
    size_t n = strlen(p);
    for (size_t i = 1; i <= n; i++) {
        if (p[i] != '/' && p[i] != '\0') continue;
        char c = p[i];
        p[i] = '\0';
        if (mkdir(p, 0755) != 0 && errno != EEXIST) {
            int err = errno;
            char note[48];
            fr_err e = fri_fail(FR_ERR_IO, "%s%s: cannot create directory: %s%s", FRI_PATH(p), strerror(err),
                                fri_path_note(note, p, err));
            fri_free(p);
            return e;
        }
        p[i] = c;
    }
    struct stat st;
    fr_err e = FR_OK;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) e = fri_fail(FR_ERR_IO, "%s%s: not a directory", FRI_PATH(dir));
    fri_free(p);
    return e;
}

static char *join(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = fri_malloc(n);
    if (p) snprintf(p, n, "%s/%s", dir, name);
    return p;
}

/* Rows of d; raw ids when `raw`, else dense. */
static fr_err write_rows(const fr_dataset *d, const char *path, bool raw) {
    afile a;
    fr_err e = afile_open(&a, path);
    if (e) return e;
    bool strs = raw && (fr_idmap_is_str(d->users) || fr_idmap_is_str(d->items));
    for (uint32_t u = 0; u < d->n_users; u++) {
        long long ou = raw ? (long long)fr_idmap_raw(d->users, u) : (long long)u;
        for (uint64_t k = d->ptr[u]; k < d->ptr[u + 1]; k++) {
            long long oi = raw ? (long long)fr_idmap_raw(d->items, d->item[k]) : (long long)d->item[k];
            if (strs) { /* string ids as they were read (the map's integers otherwise) */
                char bu[32], bi[32];
                const char *su = fr_idmap_raw_str(d->users, u), *si = fr_idmap_raw_str(d->items, d->item[k]);
                if (!su) { snprintf(bu, sizeof bu, "%lld", ou); su = bu; }
                if (!si) { snprintf(bi, sizeof bi, "%lld", oi); si = bi; }
                fprintf(a.f, "%s\t%s\t%g\t%lld\n", su, si, (double)d->rating[k], (long long)d->time[k]);
                continue;
            }
            fprintf(a.f, "%lld\t%lld\t%g\t%lld\n", ou, oi, (double)d->rating[k], (long long)d->time[k]);
        }
    }
    if (ferror(a.f)) {
        e = fri_fail(FR_ERR_IO, "%s%s: write failed: %s", FRI_PATH(a.tmp), strerror(errno));
        afile_abort(&a);
        return e;
    }
    return afile_commit(&a);
}

/* An id map as "index<TAB>raw id" lines (string ids: a "# ids: strings" line first, then
 * "index<TAB>string") under a comment header naming what the ids are
 * and, when known, the data they came from ("# source: PATH", read back by the NCF
 * reader). */
static fr_err write_map(const fr_idmap *m, const char *what, const char *source, const char *path) {
    afile a;
    fr_err e = afile_open(&a, path);
    if (e) return e;
    fprintf(a.f, "# fedrec id map: the %s ids of train.rating, test.rating and test.negative (an index) and the "
            "raw id of the data, tab-separated\n", what);
    if (source && !strpbrk(source, "\r\n")) fprintf(a.f, "# source: %s\n", source);
    if (m->str) { /* string ids: the string is the rest of the line after the tab */
        fprintf(a.f, "# ids: strings\n");
        for (uint32_t k = 0; k < m->n; k++) fprintf(a.f, "%u\t%s\n", k, m->str[k]);
    } else {
        for (uint32_t k = 0; k < m->n; k++) fprintf(a.f, "%u\t%lld\n", k, (long long)m->raw[k]);
    }
    return afile_commit(&a);
}

static fr_err write_negatives(const fr_dataset *test, const fr_negatives *negs, const char *path) {
    afile a;
    fr_err e = afile_open(&a, path);
    if (e) return e;
    for (uint32_t u = 0; u < test->n_users; u++) {
        if (test->ptr[u + 1] == test->ptr[u]) continue;
        fprintf(a.f, "(%u,%u)", u, test->item[test->ptr[u + 1] - 1]);
        for (uint64_t k = negs->ptr[u]; k < negs->ptr[u + 1]; k++) fprintf(a.f, "\t%u", negs->items[k]);
        fputc('\n', a.f);
    }
    return afile_commit(&a);
}

fr_err fr_dataset_write_ncf(const char *dir, const fr_dataset *train, const fr_dataset *test, const fr_negatives *negs) {
    if (!dir || !train || !test) return fri_fail(FR_ERR_INVALID, "write ncf: directory, train and test are required");
    if (train->n_users != test->n_users || train->n_items != test->n_items)
        return fri_fail(FR_ERR_INVALID,
                        "write ncf: train (%u users, %u items) and test (%u users, %u items) "
                        "do not share one id space",
                        train->n_users, train->n_items, test->n_users, test->n_items);
    if (negs && negs->n_users != test->n_users)
        return fri_fail(FR_ERR_INVALID, "write ncf: negatives cover %u users; expected %u", negs->n_users,
                        test->n_users);
    fr_err e = make_dirs(dir);
    if (e) return e;
    char *p = join(dir, "train.rating");
    if (!p) return FR_ERR_NOMEM;
    e = write_rows(train, p, false);
    fri_free(p);
    if (e) return e;
    if (!(p = join(dir, "test.rating"))) return FR_ERR_NOMEM;
    e = write_rows(test, p, false);
    fri_free(p);
    if (e) return e;
    if (negs) {
        if (!(p = join(dir, "test.negative"))) return FR_ERR_NOMEM;
        e = write_negatives(test, negs, p);
        fri_free(p);
        if (e) return e;
    }
    static const char *const names[2] = {"users.map", "items.map"}, *const what[2] = {"user", "item"};
    const fr_idmap *maps[2] = {train->users, train->items};
    for (int k = 0; k < 2 && !e; k++) {
        if (!(p = join(dir, names[k]))) return FR_ERR_NOMEM;
        e = write_map(maps[k], what[k], train->source, p);
        fri_free(p);
    }
    return e;
}

fr_err fr_dataset_write_tsv(const fr_dataset *d, const char *path) {
    if (!d || !path) return fri_fail(FR_ERR_INVALID, "write tsv: dataset and path are required");
    return write_rows(d, path, true);
}

/* ------------------------------------------------------------------ shards */

/* One user's rows of d (dense ids) into f. */
static void user_rows(FILE *f, const fr_dataset *d, uint32_t u) {
    if (u >= d->n_users) return;
    for (uint64_t k = d->ptr[u]; k < d->ptr[u + 1]; k++)
        fprintf(f, "%u\t%u\t%g\t%lld\n", u, d->item[k], (double)d->rating[k], (long long)d->time[k]);
}

/* dir/name, written atomically: user u's rows of d, or (negs given) its test.negative line. */
static fr_err write_user_file(const char *dir, const char *name, const fr_dataset *d, const fr_dataset *test,
                              const fr_negatives *negs, uint32_t u) {
    char *p = join(dir, name);
    if (!p) return FR_ERR_NOMEM;
    afile a;
    fr_err e = afile_open(&a, p);
    a.lazy = true; /* shards are derived files (fr_dataset_write_shards) */
    if (!e) {
        if (!negs) user_rows(a.f, d, u);
        else if (u < test->n_users && test->ptr[u + 1] > test->ptr[u]) {
            fprintf(a.f, "(%u,%u)", u, test->item[test->ptr[u + 1] - 1]);
            for (uint64_t k = negs->ptr[u]; k < negs->ptr[u + 1]; k++) fprintf(a.f, "\t%u", negs->items[k]);
            fputc('\n', a.f);
        }
        e = afile_commit(&a);
    }
    fri_free(p);
    return e;
}

/* path <- text, atomically (lazy: without its own fsync). */
static fr_err write_text(const char *path, const char *text, bool lazy) {
    afile a;
    fr_err e = afile_open(&a, path);
    if (e) return e;
    a.lazy = lazy;
    fputs(text, a.f);
    return afile_commit(&a);
}

/* The items' public popularity (fr_popularity_load): each item's training interactions + 1,
 * the weights the simulator draws decoys from (src/runtime/sim.c). */
static fr_err write_popularity(const char *path, const fr_dataset *train) {
    uint64_t *cnt = fri_calloc(train->n_items ? train->n_items : 1, sizeof *cnt);
    if (!cnt) return FR_ERR_NOMEM;
    for (uint32_t u = 0; u < train->n_users; u++) {
        const uint32_t *it;
        size_t n = fr_dataset_user(train, u, &it, NULL, NULL);
        for (size_t j = 0; j < n; j++) cnt[it[j]]++;
    }
    afile a;
    fr_err e = afile_open(&a, path);
    if (!e) {
        a.lazy = true;
        fprintf(a.f, "# fedrec item popularity (fedrec data shard): public weights decoy items are drawn from "
                     "(--hide-items decoys): each item's training interactions + 1, one line per item id, 0 first\n");
        for (uint32_t i = 0; i < train->n_items; i++) fprintf(a.f, "%llu\n", (unsigned long long)cnt[i] + 1);
        e = afile_commit(&a);
    }
    fri_free(cnt);
    return e;
}

fr_err fr_dataset_write_shards(const char *dir, const fr_dataset *train, const fr_dataset *test,
                               const fr_negatives *negs, float mean_rating) {
    if (!dir || !train || !test) return fri_fail(FR_ERR_INVALID, "write shards: directory, train and test are required");
    if (train->n_users != test->n_users || train->n_items != test->n_items)
        return fri_fail(FR_ERR_INVALID, "write shards: train (%u users, %u items) and test (%u users, %u items) do "
                        "not share one id space", train->n_users, train->n_items, test->n_users, test->n_items);
    if (negs && negs->n_users != test->n_users)
        return fri_fail(FR_ERR_INVALID, "write shards: negatives cover %u users; expected %u", negs->n_users,
                        test->n_users);
    /* the federation: the server's file, and a copy in every client's directory (a client
     * reads the catalogue's size from it) */
    fr_fingerprint fp;
    fr_dataset_fingerprint(train, &fp);
    double load;
    fr_err le = fr_dataset_graph_load(train, &load);
    if (le) return le;
    char fed[1100];
    snprintf(fed, sizeof fed,
             "# fedrec federation (fedrec data shard): what a server knows of the data; client ID's own "
             "interactions are in cID/, raw item ids in items.map\n"
             "version 1\nclients %u\nitems %u\ninteractions %llu\nmean_rating %.9g\nimplicit %d\n"
             "negatives %d\nfingerprint %u %u %llu %u\nweighted %d\ngraph_load %.17g\n", train->n_users, train->n_items,
             (unsigned long long)train->n, (double)mean_rating, train->implicit ? 1 : 0, negs ? 1 : 0, fp.users,
             fp.items, (unsigned long long)fp.interactions, fp.crc, fr_dataset_weighted(train) ? 1 : 0, load);
    fr_err e = make_dirs(dir);
    char name[32];
    for (uint32_t u = 0; !e && u < train->n_users; u++) {
        snprintf(name, sizeof name, "c%u", u);
        char *cd = join(dir, name), *fp_path = NULL;
        if (!cd) return FR_ERR_NOMEM;
        e = make_dirs(cd);
        if (!e) e = write_user_file(cd, "train.rating", train, test, NULL, u);
        if (!e) e = write_user_file(cd, "test.rating", test, test, NULL, u);
        if (!e && negs) e = write_user_file(cd, "test.negative", train, test, negs, u);
        if (!e && !(fp_path = join(cd, "federation.txt"))) e = FR_ERR_NOMEM;
        if (!e) e = write_text(fp_path, fed, true);
        fri_free(fp_path);
        fri_free(cd);
    }
    char *p = NULL;
    if (!e && !(p = join(dir, "items.map"))) e = FR_ERR_NOMEM;
    if (!e) e = write_map(train->items, "item", train->source, p);
    fri_free(p);
    p = NULL;
    if (!e && !(p = join(dir, "popularity.txt"))) e = FR_ERR_NOMEM;
    if (!e) e = write_popularity(p, train);
    fri_free(p);
    p = NULL;
    if (!e && !(p = join(dir, "federation.txt"))) e = FR_ERR_NOMEM;
    if (!e) e = write_text(p, fed, false);
    fri_free(p);
    return e; /* derived files: renamed into place whole, not fsync'd one by one (a crash may
                 lose recent ones; write the shards again) */
}
