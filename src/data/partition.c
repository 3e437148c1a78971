/* Partitions of a dataset's users into clients: one user per client, IID silos dealt by
 * a seeded shuffle, Dirichlet(alpha) non-IID silos, or one silo per value of a user
 * attribute.
 * Invariants: every user belongs to exactly one client; users are ascending within a
 * client; silo randomness comes from (seed, 0, group, FR_PURPOSE_PARTITION) streams. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "data/dataset.h"

/* Number of user groups for the Dirichlet partition (item-id buckets, a genre proxy). */
#define GROUPS 10

/* Builds the partition from silo[u] (a client index < k for every user), users ascending. */
static fr_err from_assignment(fr_partition **out, const uint32_t *silo, uint32_t nu, uint32_t k) {
    fr_partition *p = fri_calloc(1, sizeof *p);
    if (!p) return FR_ERR_NOMEM;
    p->n_clients = k;
    p->ptr = fri_calloc((size_t)k + 1, sizeof *p->ptr);
    p->users = fri_malloc((size_t)nu * sizeof *p->users);
    if (!p->ptr || !p->users) { fr_partition_free(p); return FR_ERR_NOMEM; }
    for (uint32_t u = 0; u < nu; u++) p->ptr[silo[u] + 1]++;
    for (uint32_t c = 0; c < k; c++) p->ptr[c + 1] += p->ptr[c];
    uint64_t *cur = fri_malloc(((size_t)k + 1) * sizeof *cur);
    if (!cur) { fr_partition_free(p); return FR_ERR_NOMEM; }
    memcpy(cur, p->ptr, ((size_t)k + 1) * sizeof *cur);
    for (uint32_t u = 0; u < nu; u++) p->users[cur[silo[u]]++] = u;
    fri_free(cur);
    *out = p;
    return FR_OK;
}

/* Gamma(shape, 1) by Marsaglia-Tsang; shape < 1 through the boost U^(1/shape). */
static double gamma_draw(fr_rng *r, double shape) {
    double boost = 1;
    if (shape < 1) {
        double u = fr_rng_double(r);
        boost = pow(u > 0 ? u : 1e-300, 1.0 / shape);
        shape += 1;
    }
    double d = shape - 1.0 / 3.0, c = 1.0 / sqrt(9 * d);
    for (;;) {
        double x = fr_rng_normal(r), v = 1 + c * x;
        if (v <= 0) continue;
        v = v * v * v;
        double u = fr_rng_double(r);
        if (u < 1 - 0.0331 * x * x * x * x) return d * v * boost;
        if (u > 0 && log(u) < 0.5 * x * x + d * (1 - v + log(v))) return d * v * boost;
    }
}

/* Group of a user: the most common bucket (dense item id mod GROUPS) among its items,
 * ties to the smaller bucket. */
static uint32_t user_group(const fr_dataset *d, uint32_t u) {
    uint64_t cnt[GROUPS] = {0};
    for (uint64_t k = d->ptr[u]; k < d->ptr[u + 1]; k++) cnt[d->item[k] % GROUPS]++;
    uint32_t g = 0;
    for (uint32_t b = 1; b < GROUPS; b++)
        if (cnt[b] > cnt[g]) g = b;
    return g;
}

static fr_err dirichlet_assign(uint32_t *silo, const fr_dataset *d, uint32_t k, double alpha, uint64_t seed) {
    uint32_t nu = d->n_users;
    fr_err err = FR_OK;
    uint32_t *group = fri_malloc((size_t)nu * sizeof *group);
    uint32_t *order = fri_malloc((size_t)nu * sizeof *order);
    double *share = fri_malloc((size_t)k * sizeof *share);
    uint64_t *size = fri_calloc(k, sizeof *size);
    uint64_t *want = fri_malloc((size_t)k * sizeof *want);
    if (!group || !order || !share || !size || !want) { err = FR_ERR_NOMEM; goto done; }
    for (uint32_t u = 0; u < nu; u++) group[u] = user_group(d, u);
    for (uint32_t g = 0; g < GROUPS; g++) {
        uint32_t m = 0;
        for (uint32_t u = 0; u < nu; u++)
            if (group[u] == g) order[m++] = u;
        if (m == 0) continue;
        fr_rng r;
        fr_rng_init(&r, seed, 0, g, FR_PURPOSE_PARTITION);
        double tot = 0;
        for (uint32_t c = 0; c < k; c++) tot += share[c] = gamma_draw(&r, alpha);
        /* Largest remainder: floor of each share, the rest one by one to the largest. */
        uint64_t given = 0;
        for (uint32_t c = 0; c < k; c++) {
            share[c] = tot > 0 ? share[c] / tot * m : (double)m / k;
            want[c] = (uint64_t)floor(share[c]);
            share[c] -= (double)want[c];
            given += want[c];
        }
        while (given < m) {
            uint32_t best = 0;
            for (uint32_t c = 1; c < k; c++)
                if (share[c] > share[best]) best = c;
            want[best]++;
            share[best] = -1;
            given++;
        }
        fr_rng_shuffle_u32(&r, order, m);
        uint32_t pos = 0;
        for (uint32_t c = 0; c < k; c++)
            for (uint64_t x = 0; x < want[c]; x++) { silo[order[pos++]] = c; size[c]++; }
    }
    /* Every silo non-empty: an empty silo takes the largest user id of the largest silo. */
    for (uint32_t c = 0; c < k; c++) {
        if (size[c] > 0) continue;
        uint32_t big = 0;
        for (uint32_t x = 1; x < k; x++)
            if (size[x] > size[big]) big = x;
        if (size[big] < 2) break; /* cannot happen while k <= users */
        for (uint32_t u = nu; u-- > 0;)
            if (silo[u] == big) { silo[u] = c; break; }
        size[big]--;
        size[c]++;
    }
done:
    fri_free(group);
    fri_free(order);
    fri_free(share);
    fri_free(size);
    fri_free(want);
    return err;
}

typedef struct { const char *v; uint32_t u; } attr_row;

static int cmp_attr(const void *a, const void *b) {
    const attr_row *x = a, *y = b;
    if (x->v != y->v) {
        if (!x->v) return 1; /* users without a value form the last silo */
        if (!y->v) return -1;
        int c = strcmp(x->v, y->v);
        if (c) return c;
    }
    return (x->u > y->u) - (x->u < y->u);
}

static fr_err attribute_partition(fr_partition **out, const fr_dataset *d, const char *attr) {
    const fr_meta *m = fr_dataset_meta(d);
    uint32_t nu = d->n_users;
    if (!attr || !*attr) return fri_fail(FR_ERR_INVALID, "partition: the attribute partition needs an attribute name");
    bool found = false;
    for (uint32_t a = 0; m && a < m->n_attrs; a++) found = found || strcmp(m->attr_names[a], attr) == 0;
    if (!found)
        return fri_fail(FR_ERR_UNSUPPORTED, "partition: no user attribute '%s' (the dataset has no such metadata)",
                        attr);
    attr_row *rows = fri_malloc((size_t)nu * sizeof *rows);
    uint32_t *silo = fri_malloc((size_t)nu * sizeof *silo);
    fr_err err = FR_OK;
    if (!rows || !silo) { err = FR_ERR_NOMEM; goto done; }
    for (uint32_t u = 0; u < nu; u++) rows[u] = (attr_row){fr_meta_user_attr(m, u, attr), u};
    qsort(rows, nu, sizeof *rows, cmp_attr);
    uint32_t k = 0;
    for (uint32_t x = 0; x < nu; x++) {
        bool same = x > 0 && (rows[x].v == rows[x - 1].v ||
                              (rows[x].v && rows[x - 1].v && strcmp(rows[x].v, rows[x - 1].v) == 0));
        if (x > 0 && !same) k++;
        silo[rows[x].u] = k;
    }
    err = from_assignment(out, silo, nu, nu ? k + 1 : 0);
done:
    fri_free(rows);
    fri_free(silo);
    return err;
}

fr_err fr_partition_make(fr_partition **out, const fr_dataset *d, fr_partition_kind kind, uint32_t k, double alpha,
                         const char *attr, uint64_t seed) {
    if (out) *out = NULL;
    if (!out || !d) return fri_fail(FR_ERR_INVALID, "partition: output and dataset are required");
    uint32_t nu = d->n_users;
    if (kind == FR_PARTITION_ATTRIBUTE) return attribute_partition(out, d, attr);
    if (kind != FR_PARTITION_USER && kind != FR_PARTITION_IID && kind != FR_PARTITION_DIRICHLET)
        return fri_fail(FR_ERR_INVALID, "partition: unknown kind %d; expected user, iid, dirichlet or attribute",
                        (int)kind);
    if (kind != FR_PARTITION_USER) {
        if (k < 1 || k > nu)
            return fri_fail(FR_ERR_RANGE, "partition: %u silos for %u users; expected 1..%u", k, nu, nu);
        if (kind == FR_PARTITION_DIRICHLET && !(alpha > 0 && isfinite(alpha)))
            return fri_fail(FR_ERR_RANGE, "partition: Dirichlet alpha %g; expected a finite value > 0", alpha);
    }
    uint32_t *silo = fri_malloc((size_t)nu * sizeof *silo);
    if (!silo) return FR_ERR_NOMEM;
    fr_err err = FR_OK;
    if (kind == FR_PARTITION_USER) {
        for (uint32_t u = 0; u < nu; u++) silo[u] = u;
        k = nu;
    } else if (kind == FR_PARTITION_IID) {
        for (uint32_t u = 0; u < nu; u++) silo[u] = u;
        fr_rng r;
        fr_rng_init(&r, seed, 0, 0, FR_PURPOSE_PARTITION);
        fr_rng_shuffle_u32(&r, silo, nu); /* silo[] holds the deal order for now */
        uint32_t *dealt = fri_malloc((size_t)nu * sizeof *dealt);
        if (!dealt) { fri_free(silo); return FR_ERR_NOMEM; }
        for (uint32_t p = 0; p < nu; p++) dealt[silo[p]] = p % k;
        fri_free(silo);
        silo = dealt;
    } else {
        err = dirichlet_assign(silo, d, k, alpha, seed);
    }
    if (!err) err = from_assignment(out, silo, nu, k);
    fri_free(silo);
    return err;
}

void fr_partition_free(fr_partition *p) {
    if (!p) return;
    fri_free(p->ptr);
    fri_free(p->users);
    fri_free(p);
}

/* ------------------------------------------------------------------ specs */

fr_err fr_partition_parse(const char *s, fr_partition_kind *kind, uint32_t *k, double *alpha) {
    fr_partition_kind kk = FR_PARTITION_USER;
    unsigned long long n = 0;
    double a = 0.5;
    char tail;
    if (s && !strcmp(s, "user")) {
        kk = FR_PARTITION_USER;
    } else if (s && !strncmp(s, "iid:", 4) && s[4] >= '0' && s[4] <= '9' && sscanf(s + 4, "%llu%c", &n, &tail) == 1 &&
               n >= 1 && n <= UINT32_MAX) {
        kk = FR_PARTITION_IID;
    } else if (s && !strncmp(s, "dirichlet:", 10) && s[10] >= '0' && s[10] <= '9' &&
               (sscanf(s + 10, "%llu%c", &n, &tail) == 1 ||
                (sscanf(s + 10, "%llu:%lf%c", &n, &a, &tail) == 2 && a > 0 && isfinite(a))) &&
               n >= 1 && n <= UINT32_MAX) {
        kk = FR_PARTITION_DIRICHLET;
    } else {
        return fri_fail(FR_ERR_INVALID, "partition '%s': expected user, iid:K or dirichlet:K[:ALPHA] (K >= 1 silos, "
                                        "ALPHA > 0)", s ? s : "(null)");
    }
    if (kind) *kind = kk;
    if (k) *k = (uint32_t)n;
    if (alpha) *alpha = a;
    return FR_OK;
}

fr_err fr_partition_format(fr_partition_kind kind, uint32_t k, double alpha, char *buf, size_t cap) {
    int n;
    switch (kind) {
    case FR_PARTITION_USER: n = snprintf(buf, cap, "user"); break;
    case FR_PARTITION_IID: n = snprintf(buf, cap, "iid:%u", k); break;
    case FR_PARTITION_DIRICHLET: n = snprintf(buf, cap, "dirichlet:%u:%.17g", k, alpha); break;
    default: return fri_fail(FR_ERR_INVALID, "partition kind %d has no spec", (int)kind);
    }
    if (n < 0 || (size_t)n >= cap) return fri_fail(FR_ERR_RANGE, "partition spec: buffer of %zu bytes too small", cap);
    /* the shortest decimal that reads back as alpha */
    if (kind == FR_PARTITION_DIRICHLET)
        for (int prec = 1; prec <= 17; prec++) {
            char t[48];
            snprintf(t, sizeof t, "%.*g", prec, alpha);
            if (strtod(t, NULL) == alpha) { snprintf(buf, cap, "dirichlet:%u:%s", k, t); break; }
        }
    return FR_OK;
}
