/* The registry of model families (see family.h): which family implements a kind, the
 * kinds' names and whether they predict ratings.
 *
 * Invariants: kind values are positions in the registry, from 1: the built-in families
 * first, in the order of `builtin` (mf, bpr, gmf, mlp, neumf, pop, bias = 1..7, the public enum),
 * then the families registered at run time in registration order. Names are unique.
 * Registered families are only ever appended, so a lookup never sees a value change; the
 * count is published with release/acquire after the entry is written. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "core/core.h"
#include "model/family.h"

/* The built-in families, in kind order. A new family is one line here. */
static const fri_model_family *const builtin[] = {
    &fri_model_family_mf,  /* mf = 1, bpr = 2 */
    &fri_model_family_ncf, /* gmf = 3, mlp = 4, neumf = 5 */
    &fri_model_family_base, /* pop = 6, bias = 7 */
    &fri_model_family_lightgcn, /* lightgcn (no public enum value: files name it) */
    &fri_model_family_hybrid, /* lightfm, fm */
    &fri_model_family_sasrec, /* sasrec = 8 */
    &fri_model_family_lightgcn_full, /* lightgcn-full (last: the kinds before keep their values) */
};
#define N_BUILTIN (sizeof builtin / sizeof builtin[0])

#define MAX_EXTRA 8
static const fri_model_family *extra[MAX_EXTRA]; /* registered at run time, in order */
static atomic_int n_extra;                        /* entries of extra published */
static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER; /* serialises registrations */

/* The i-th registered family (built-ins first), or NULL past the end. */
static const fri_model_family *family_at(size_t i) {
    if (i < N_BUILTIN) return builtin[i];
    i -= N_BUILTIN;
    return i < (size_t)atomic_load_explicit(&n_extra, memory_order_acquire) ? extra[i] : NULL;
}

/* The family of kind and the kind's index in it; NULL if unknown. */
static const fri_model_family *find(fr_model_kind kind, int *index) {
    if ((int)kind < 1) return NULL;
    int k = (int)kind - 1;
    const fri_model_family *f;
    for (size_t i = 0; (f = family_at(i)) != NULL; i++) {
        if (k < f->n_kinds) {
            *index = k;
            return f;
        }
        k -= f->n_kinds;
    }
    return NULL;
}

const fri_model_family *fri_model_family_of(fr_model_kind kind) {
    int i;
    return find(kind, &i);
}

const char *fr_model_kind_name(fr_model_kind kind) {
    int i;
    const fri_model_family *f = find(kind, &i);
    return f ? f->kinds[i].name : "?";
}

bool fr_model_kind_is_explicit(fr_model_kind kind) {
    int i;
    const fri_model_family *f = find(kind, &i);
    return f && f->kinds[i].explicit_ratings;
}

bool fr_model_kind_is_central_only(fr_model_kind kind) {
    int i;
    const fri_model_family *f = find(kind, &i);
    return f && f->kinds[i].central_only;
}

bool fr_model_kind_is_closed_form(fr_model_kind kind) {
    int i;
    const fri_model_family *f = find(kind, &i);
    return f && f->kinds[i].closed_form && f->fit;
}

bool fri_model_kind_needs_graph(fr_model_kind kind) {
    int i;
    const fri_model_family *f = find(kind, &i);
    return f && f->needs_graph;
}

bool fr_model_kind_uses_features(fr_model_kind kind) {
    int i;
    const fri_model_family *f = find(kind, &i);
    return f && f->side_features;
}

fr_model_kind fri_model_kind_find(const char *name, size_t len) {
    const fri_model_family *f;
    int value = 1;
    for (size_t i = 0; (f = family_at(i)) != NULL; i++)
        for (int k = 0; k < f->n_kinds; k++, value++)
            if (strlen(f->kinds[k].name) == len && memcmp(f->kinds[k].name, name, len) == 0)
                return (fr_model_kind)value;
    return (fr_model_kind)0;
}

void fri_model_kind_list(char *buf, size_t n) {
    if (!n) return;
    buf[0] = 0;
    size_t at = 0;
    const fri_model_family *f;
    for (size_t i = 0; (f = family_at(i)) != NULL; i++)
        for (int k = 0; k < f->n_kinds && at < n; k++) {
            int w = snprintf(buf + at, n - at, "%s%s", at ? ", " : "", f->kinds[k].name);
            at = w < 0 ? n : at + (size_t)w;
        }
}

fr_err fr_model_kind_parse(const char *name, fr_model_kind *out) {
    fr_model_kind k = name ? fri_model_kind_find(name, strlen(name)) : (fr_model_kind)0;
    if (k) {
        *out = k;
        return FR_OK;
    }
    char known[512];
    fri_model_kind_list(known, sizeof known);
    return fri_fail(FR_ERR_INVALID, "unknown model '%s': expected one of %s", name ? name : "(null)", known);
}

/* A kind marked closed_form in a family without a fit op could never be trained. */
static bool closed_without_fit(const fri_model_family *f) {
    for (int k = 0; k < f->n_kinds; k++)
        if (f->kinds[k].closed_form) return true;
    return false;
}

static bool good_name(const char *s) {
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n >= FRI_MODEL_KIND_NAME_MAX) return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '-'))
            return false;
    return true;
}

/* The number of kinds of the families before index `upto`. */
static int kinds_before(size_t upto) {
    int n = 0;
    for (size_t i = 0; i < upto; i++) n += family_at(i)->n_kinds;
    return n;
}

fr_err fri_model_register(const fri_model_family *f, fr_model_kind *first) {
    if (!f || !f->kinds || f->n_kinds < 1 || !f->config_default || !f->config_check || !f->params_put ||
        !f->params_get || !f->layout || !f->ws_carve || !f->ws_fits || !f->loss_grad || !f->score ||
        (!f->fit && f->kinds && f->n_kinds >= 1 && closed_without_fit(f)))
        return fri_fail(FR_ERR_INVALID, "model family %s: no kinds or an op missing", f && f->name ? f->name : "?");
    pthread_mutex_lock(&reg_mu);
    fr_err e = FR_OK;
    size_t n = N_BUILTIN + (size_t)atomic_load(&n_extra);
    for (size_t i = 0; i < n; i++)
        if (family_at(i) == f) { /* registered before: the same values */
            *first = (fr_model_kind)(kinds_before(i) + 1);
            goto done;
        }
    if (n - N_BUILTIN >= MAX_EXTRA || kinds_before(n) + f->n_kinds > FRI_MODEL_MAX_KINDS) {
        e = fri_fail(FR_ERR_INVALID, "model family %s: the registry is full (%d kinds)", f->name,
                     FRI_MODEL_MAX_KINDS);
        goto done;
    }
    for (int k = 0; k < f->n_kinds; k++) {
        const char *nm = f->kinds[k].name;
        if (!good_name(nm)) {
            e = fri_fail(FR_ERR_INVALID, "model family %s: kind name '%s': expected 1..%d of [a-z0-9_-]", f->name,
                         nm ? nm : "(null)", FRI_MODEL_KIND_NAME_MAX - 1);
            goto done;
        }
        bool dup = fri_model_kind_find(nm, strlen(nm)) != 0;
        for (int j = 0; j < k; j++) dup |= strcmp(f->kinds[j].name, nm) == 0;
        if (dup) {
            e = fri_fail(FR_ERR_INVALID, "model family %s: a model kind is already called '%s'", f->name, nm);
            goto done;
        }
    }
    *first = (fr_model_kind)(kinds_before(n) + 1);
    extra[n - N_BUILTIN] = f;
    atomic_store_explicit(&n_extra, (int)(n - N_BUILTIN + 1), memory_order_release);
done:
    pthread_mutex_unlock(&reg_mu);
    return e;
}
