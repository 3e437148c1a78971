#define _GNU_SOURCE
#include "testutil.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

char *tu_tmpdir(void) {
    const char *base = getenv("TMPDIR");
    char *t = NULL;
    if (asprintf(&t, "%s/fedrec-test-XXXXXX", base && *base ? base : "/tmp") < 0) abort();
    if (!mkdtemp(t)) abort();
    return t;
}

static int rm_cb(const char *p, const struct stat *s, int f, struct FTW *w) {
    (void)s; (void)f; (void)w;
    return remove(p);
}

void tu_rmtree(const char *dir) {
    if (dir) nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

char *tu_write(const char *dir, const char *name, const char *text) {
    char *p = NULL;
    if (asprintf(&p, "%s/%s", dir, name) < 0) abort();
    FILE *f = fopen(p, "wb");
    if (!f) abort();
    fwrite(text, 1, strlen(text), f);
    fclose(f);
    return p;
}

char *tu_shared(const char *rel) {
    char *p = NULL;
    if (asprintf(&p, "%s/data/%s", FR_SHARED_DIR, rel) < 0) abort();
    if (access(p, R_OK) != 0) { free(p); return NULL; }
    return p;
}

char *tu_slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) { free(b); b = NULL; }
    if (b) b[n] = 0;
    fclose(f);
    if (len) *len = (size_t)n;
    return b;
}

fr_dataset *tu_generate(uint32_t users, uint32_t items, uint64_t interactions, uint64_t seed) {
    fr_gen_opts go;
    fr_gen_opts_default(&go);
    go.users = users;
    go.items = items;
    go.interactions = interactions;
    go.seed = seed;
    fr_dataset *d = NULL;
    if (fr_dataset_generate(&d, &go) != FR_OK) {
        fprintf(stderr, "tu_generate: %s\n", fr_errmsg());
        abort();
    }
    return d;
}

fr_err tu_load_text(fr_dataset **d, const char *dir, const char *name, const char *text, const fr_load_opts *o,
                    fr_load_stats *st) {
    char *p = tu_write(dir, name, text);
    fr_err e = fr_dataset_load(d, p, o, st);
    free(p);
    return e;
}

bool tu_find_row(const fr_dataset *d, int64_t ru, int64_t ri, float *r, int64_t *t) {
    int64_t u = fr_idmap_find(fr_dataset_users(d), ru), i = fr_idmap_find(fr_dataset_items(d), ri);
    if (u < 0 || i < 0) return false;
    const uint32_t *it;
    const float *rt;
    const int64_t *tt;
    size_t n = fr_dataset_user(d, (uint32_t)u, &it, &rt, &tt);
    for (size_t k = 0; k < n; k++)
        if (it[k] == (uint32_t)i) {
            if (r) *r = rt[k];
            if (t) *t = tt[k];
            return true;
        }
    return false;
}
