/* The federation file `fedrec data shard` writes beside the clients' shards
 * (federation.txt): what a server may know of the data — how many clients and items,
 * the mean rating, whether the data is implicit, its fingerprint, its graph load (one
 * number over all the users, for federated lightgcn's item rate) — and nothing of any
 * client's interactions. Lines "key value" after '#' comments; every key once, each
 * value checked; unknown keys refused (a newer fedrec's file). */
#include <stdio.h>
#include <sys/stat.h>

#include "data/dataset.h"
#include "data/text.h"

enum { K_VERSION, K_CLIENTS, K_ITEMS, K_INTER, K_MEAN, K_IMPLICIT, K_NEGS, K_FP, K_WEIGHTED, K_LOAD, K_N };
static const char *const keys[K_N] = {"version", "clients", "items", "interactions", "mean_rating", "implicit",
                                      "negatives", "fingerprint", "weighted", "graph_load"};

/* Unsigned decimal of at most max; the whole token. */
static bool parse_u(const char *s, size_t n, uint64_t max, uint64_t *out) {
    if (n == 0 || n > 20) return false;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (max - d) / 10) return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

/* The line of d[0, n) at *i (without its '\n' or a '\r' before it) into *s, its length
 * returned; *i moves past it and *line counts it. SIZE_MAX when no line is left. */
static size_t next_line(const uint8_t *d, size_t n, size_t *i, const char **s, size_t *line) {
    if (*i >= n) return SIZE_MAX;
    size_t j = *i;
    while (j < n && d[j] != '\n') j++;
    size_t len = j - *i;
    if (len && d[*i + len - 1] == '\r') len--;
    *s = (const char *)d + *i;
    *i = j + 1;
    ++*line;
    return len;
}

static fr_err parse_line(fr_federation *f, const char *path, size_t line, const char *s, size_t n, bool *seen) {
    size_t k = 0;
    while (k < n && s[k] != ' ' && s[k] != '\t') k++;
    int key = -1;
    for (int i = 0; i < K_N; i++)
        if (strlen(keys[i]) == k && !memcmp(s, keys[i], k)) key = i;
    if (key < 0)
        return fri_fail(FR_ERR_PARSE, "%s%s:%zu: unknown key '%.*s' (expected one of version, clients, items, "
                        "interactions, mean_rating, implicit, negatives, fingerprint, weighted, graph_load)",
                        FRI_PATH(path), line,
                        (int)(k > 40 ? 40 : k), s);
    if (seen[key]) return fri_fail(FR_ERR_PARSE, "%s%s:%zu: '%s' given twice", FRI_PATH(path), line, keys[key]);
    seen[key] = true;
    /* the value's tokens */
    const char *tok[4];
    size_t tn[4], nt = 0;
    for (size_t i = k; i < n;) {
        while (i < n && (s[i] == ' ' || s[i] == '\t')) i++;
        if (i >= n) break;
        size_t j = i;
        while (j < n && s[j] != ' ' && s[j] != '\t') j++;
        if (nt == 4) { nt = 5; break; }
        tok[nt] = s + i;
        tn[nt++] = j - i;
        i = j;
    }
    size_t want = key == K_FP ? 4 : 1;
    if (nt != want)
        return fri_fail(FR_ERR_PARSE, "%s%s:%zu: '%s' takes %zu value%s, found %zu", FRI_PATH(path), line, keys[key],
                        want, want == 1 ? "" : "s", nt > 4 ? (size_t)5 : nt);
    uint64_t v[4] = {0};
    double mean = 0, load = 0;
    bool ok = true;
    if (key == K_MEAN) ok = fri_parse_real(tok[0], tn[0], &mean) == 0 && mean >= -1e6 && mean <= 1e6;
    else if (key == K_LOAD) ok = fri_parse_real(tok[0], tn[0], &load) == 0 && load >= 0 && load <= 1e300;
    else if (key == K_FP)
        ok = parse_u(tok[0], tn[0], UINT32_MAX, &v[0]) && parse_u(tok[1], tn[1], UINT32_MAX, &v[1]) &&
             parse_u(tok[2], tn[2], UINT64_MAX, &v[2]) && parse_u(tok[3], tn[3], UINT32_MAX, &v[3]);
    else ok = parse_u(tok[0], tn[0], key == K_INTER ? UINT64_MAX : UINT32_MAX, &v[0]);
    if (ok && (key == K_IMPLICIT || key == K_NEGS || key == K_WEIGHTED)) ok = v[0] <= 1;
    if (ok && key == K_VERSION && v[0] != 1)
        return fri_fail(FR_ERR_VERSION, "%s%s:%zu: federation file version %llu, this fedrec reads version 1",
                        FRI_PATH(path), line, (unsigned long long)v[0]);
    if (ok && (key == K_CLIENTS || key == K_ITEMS)) ok = v[0] >= 1 && v[0] <= INT32_MAX;
    if (!ok)
        return fri_fail(FR_ERR_PARSE, "%s%s:%zu: bad value '%.*s' for '%s' (expected %s)", FRI_PATH(path), line,
                        (int)(tn[0] > 40 ? 40 : tn[0]), tok[0], keys[key],
                        key == K_MEAN ? "a number" : key == K_LOAD ? "a number >= 0" : key == K_FP ? "users items interactions crc, decimal"
                        : key == K_IMPLICIT || key == K_NEGS || key == K_WEIGHTED ? "0 or 1" : key == K_CLIENTS || key == K_ITEMS
                        ? "a whole number in 1..2147483647" : "a whole number");
    switch (key) {
    case K_CLIENTS: f->clients = (uint32_t)v[0]; break;
    case K_ITEMS: f->items = (uint32_t)v[0]; break;
    case K_INTER: f->interactions = v[0]; break;
    case K_MEAN: f->mean_rating = (float)mean; break;
    case K_IMPLICIT: f->implicit = v[0] != 0; break;
    case K_NEGS: f->negatives = v[0] != 0; break;
    case K_WEIGHTED: f->weighted = v[0] != 0; break;
    case K_LOAD: f->graph_load = load; break;
    case K_FP:
        f->fingerprint.users = (uint32_t)v[0];
        f->fingerprint.items = (uint32_t)v[1];
        f->fingerprint.interactions = v[2];
        f->fingerprint.crc = (uint32_t)v[3];
        break;
    default: break;
    }
    return FR_OK;
}

fr_err fr_federation_load(const char *path, fr_federation *f) {
    memset(f, 0, sizeof *f);
    if (!path) return fri_fail(FR_ERR_INVALID, "federation: no path");
    /* a shard directory names its federation.txt */
    char *file = NULL;
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        size_t n = strlen(path) + sizeof "/federation.txt";
        if (!(file = fri_malloc(n))) return FR_ERR_NOMEM;
        snprintf(file, n, "%s/federation.txt", path);
        path = file;
    }
    uint8_t *d = NULL;
    size_t n = 0;
    fr_err e = fri_read_file(path, &d, &n);
    bool seen[K_N] = {0};
    size_t line = 0;
    const char *s;
    for (size_t i = 0, len; !e && (len = next_line(d, n, &i, &s, &line)) != SIZE_MAX;)
        if (len && s[0] != '#') e = parse_line(f, path, line, s, len, seen);
    for (int k = 0; !e && k < K_N; k++)
        if (!seen[k] && k != K_WEIGHTED && k != K_LOAD) /* weighted, graph_load: optional (0) */
            e = fri_fail(FR_ERR_PARSE, "%s%s: no '%s' line (not a federation file written by fedrec data shard?)",
                         FRI_PATH(path), keys[k]);
    if (!e && (f->fingerprint.users != f->clients || f->fingerprint.items != f->items ||
               f->fingerprint.interactions != f->interactions))
        e = fri_fail(FR_ERR_PARSE, "%s%s: the fingerprint (%u users, %u items, %llu interactions) disagrees with "
                     "clients %u, items %u, interactions %llu", FRI_PATH(path), f->fingerprint.users,
                     f->fingerprint.items, (unsigned long long)f->fingerprint.interactions, f->clients, f->items,
                     (unsigned long long)f->interactions);
    fri_free(d);
    fri_free(file);
    if (e) memset(f, 0, sizeof *f);
    return e;
}

fr_err fr_popularity_load(const char *path, uint32_t n_items, double **out) {
    *out = NULL;
    if (!path || n_items == 0) return fri_fail(FR_ERR_INVALID, "item popularity: no path or no items");
    uint8_t *d = NULL;
    size_t n = 0;
    fr_err e = fri_read_file(path, &d, &n);
    if (e) return e;
    double *w = fri_malloc((size_t)n_items * sizeof *w);
    if (!w) e = FR_ERR_NOMEM;
    size_t line = 0;
    uint32_t k = 0;
    const char *s;
    for (size_t i = 0, len; !e && (len = next_line(d, n, &i, &s, &line)) != SIZE_MAX;) {
        if (!len || s[0] == '#') continue;
        double v = 0;
        if (k == n_items)
            e = fri_fail(FR_ERR_PARSE, "%s%s:%zu: more lines than the federation's %u items", FRI_PATH(path), line,
                         n_items);
        else if (fri_parse_real(s, len, &v) != 0 || !(v > 0) || !(v < 1e300))
            e = fri_fail(FR_ERR_PARSE, "%s%s:%zu: bad popularity '%.*s' of item %u (expected a number > 0)",
                         FRI_PATH(path), line, (int)(len > 40 ? 40 : len), s, k);
        else w[k++] = v;
    }
    if (!e && k != n_items)
        e = fri_fail(FR_ERR_PARSE, "%s%s: %u popularity lines; the federation has %u items (a file of another "
                     "federation?)", FRI_PATH(path), k, n_items);
    fri_free(d);
    if (e) fri_free(w);
    else *out = w;
    return e;
}

fr_err fr_source_shard(fr_source *s, const char *dir) {
    fr_source_default(s);
    fr_federation fed; /* the catalogue's size, which the client's own files do not show */
    fr_err e = fr_federation_load(dir, &fed);
    if (e) return e;
    s->data = dir;
    s->load.ncf_items = fed.items;
    s->eval_negatives = 0; /* the shard's own test.negative, or none */
    return FR_OK;
}
