/* String ids (Amazon reviewer ids and ASINs, Yelp business ids, Last.fm user names): the
 * interning table the readers number them with, in order of first appearance, and the
 * strings an id map keeps for them. A string map's raw ids are the interning numbers, so
 * everything that works on raw integers (the CSR build, fingerprints, model files) works
 * unchanged; the strings are what users see and give (fr_idmap_raw_str, fr_idmap_find_str).
 * Invariant: a string map holds each string once, and sslot finds every one of them. */
#include <stdlib.h>

#include "data/dataset.h"
#include "data/text.h"

static uint32_t hash_str(const char *s, size_t n) {
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t k = 0; k < n; k++) h = (h ^ (unsigned char)s[k]) * 16777619u;
    return h;
}

static bool same(const char *a, const char *b, size_t n) { return strncmp(a, b, n) == 0 && a[n] == 0; }

static fr_err strtab_grow(fri_strtab *t) {
    uint32_t nh = t->hcap ? t->hcap * 2 : 1024;
    uint32_t *ns = fri_malloc((size_t)nh * sizeof *ns);
    if (!ns) return FR_ERR_NOMEM;
    memset(ns, 0xff, (size_t)nh * sizeof *ns);
    for (uint32_t k = 0; k < t->n; k++) {
        uint32_t h = hash_str(t->s[k], strlen(t->s[k])) & (nh - 1);
        while (ns[h] != UINT32_MAX) h = (h + 1) & (nh - 1);
        ns[h] = k;
    }
    fri_free(t->slot);
    t->slot = ns;
    t->hcap = nh;
    return FR_OK;
}

fr_err fri_strtab_intern(fri_strtab *t, const char *s, size_t len, uint32_t *out) {
    if (2 * ((uint64_t)t->n + 1) > t->hcap) {
        fr_err e = strtab_grow(t);
        if (e) return e;
    }
    uint32_t h = hash_str(s, len) & (t->hcap - 1);
    while (t->slot[h] != UINT32_MAX) {
        if (same(t->s[t->slot[h]], s, len)) { *out = t->slot[h]; return FR_OK; }
        h = (h + 1) & (t->hcap - 1);
    }
    if (t->n >= INT32_MAX) return fri_fail(FR_ERR_RANGE, "more than 2^31 distinct string ids");
    if (t->n == t->cap) {
        uint32_t nc = t->cap ? t->cap + t->cap / 2 : 1024;
        char **p = fri_realloc(t->s, (size_t)nc * sizeof *p);
        if (!p) return FR_ERR_NOMEM;
        t->s = p;
        t->cap = nc;
    }
    char *c = fri_malloc(len + 1);
    if (!c) return FR_ERR_NOMEM;
    memcpy(c, s, len);
    c[len] = 0;
    t->s[t->n] = c;
    t->slot[h] = t->n;
    *out = t->n++;
    return FR_OK;
}

void fri_strtab_free(fri_strtab *t) {
    for (uint32_t k = 0; k < t->n; k++) fri_free(t->s[k]);
    fri_free(t->s);
    fri_free(t->slot);
    memset(t, 0, sizeof *t);
}

/* The hash slots of m's strings; a repeat is FR_ERR_PARSE with its dense id in *dup. */
static fr_err index_strs(fr_idmap *m, uint32_t *dup) {
    uint32_t cap = 1024;
    while (cap < 2 * (uint64_t)m->n) cap *= 2;
    m->sslot = fri_malloc((size_t)cap * sizeof *m->sslot);
    if (!m->sslot) return FR_ERR_NOMEM;
    memset(m->sslot, 0xff, (size_t)cap * sizeof *m->sslot);
    m->scap = cap;
    for (uint32_t d = 0; d < m->n; d++) {
        size_t len = strlen(m->str[d]);
        uint32_t h = hash_str(m->str[d], len) & (cap - 1);
        while (m->sslot[h] != UINT32_MAX) {
            if (same(m->str[m->sslot[h]], m->str[d], len)) { *dup = d; return FR_ERR_PARSE; }
            h = (h + 1) & (cap - 1);
        }
        m->sslot[h] = d;
    }
    return FR_OK;
}

fr_err fri_idmap_set_strs(fr_idmap *m, const fri_strtab *t) {
    m->str = fri_calloc(m->n ? m->n : 1, sizeof *m->str);
    if (!m->str) return FR_ERR_NOMEM;
    for (uint32_t d = 0; d < m->n; d++)
        if (!(m->str[d] = fri_strdup(t->s[m->raw[d]]))) return FR_ERR_NOMEM;
    uint32_t dup;
    return index_strs(m, &dup); /* distinct numbers have distinct strings */
}

fr_err fri_idmap_take_strs(fr_idmap *m, char **strs, uint32_t *dup) {
    m->str = strs;
    return index_strs(m, dup);
}

const char *fr_idmap_raw_str(const fr_idmap *m, uint32_t dense) {
    return m && m->str && dense < m->n ? m->str[dense] : NULL;
}

bool fr_idmap_is_str(const fr_idmap *m) { return m && m->str; }

int64_t fr_idmap_find_str(const fr_idmap *m, const char *s) {
    if (!m || !s) return -1;
    if (!m->str) {
        uint32_t id;
        return fri_parse_id(s, strlen(s), &id) == FRI_NUM_OK ? fr_idmap_find(m, id) : -1;
    }
    size_t len = strlen(s);
    uint32_t h = hash_str(s, len) & (m->scap - 1);
    while (m->sslot[h] != UINT32_MAX) {
        if (same(m->str[m->sslot[h]], s, len)) return m->sslot[h];
        h = (h + 1) & (m->scap - 1);
    }
    return -1;
}

int fr_idmap_format(const fr_idmap *m, uint32_t dense, char *buf, size_t cap) {
    const char *s = fr_idmap_raw_str(m, dense);
    if (s) return snprintf(buf, cap, "%s", s);
    return snprintf(buf, cap, "%lld", (long long)(m && dense < m->n ? m->raw[dense] : -1));
}
