/* The bounded reader every decoder uses, the first-error latch of parallel loops, and a
 * finiteness scan (see core.h). */
#include <stdio.h>

#include "core/core.h"

void fri_rd_init(fri_rd *r, const void *p, size_t n, const char *name, const char *kind) {
    r->p = p;
    r->n = n;
    r->at = 0;
    r->name = name ? name : "<memory>";
    r->kind = kind ? kind : "input";
}

fr_err fri_rd_need(fri_rd *r, size_t k, const char *what) {
    if (k > r->n - r->at)
        return fri_fail(FR_ERR_FORMAT, "%s: truncated %s: %s needs %zu bytes at offset %zu, %zu left", r->name,
                        r->kind, what, k, r->at, r->n - r->at);
    return FR_OK;
}

fr_err fri_rd_need_n(fri_rd *r, uint64_t count, size_t elem, const char *what) {
    size_t left = r->n - r->at;
    if (elem && count > left / elem)
        return fri_fail(FR_ERR_FORMAT, "%s: truncated %s: %s: %llu entries of %zu bytes at offset %zu, %zu left",
                        r->name, r->kind, what, (unsigned long long)count, elem, r->at, left);
    return FR_OK;
}

fr_err fri_rd_u16(fri_rd *r, uint16_t *v, const char *what) {
    fr_err e = fri_rd_need(r, 2, what);
    if (!e) { *v = fri_get_u16(r->p + r->at); r->at += 2; }
    return e;
}

fr_err fri_rd_u32(fri_rd *r, uint32_t *v, const char *what) {
    fr_err e = fri_rd_need(r, 4, what);
    if (!e) { *v = fri_get_u32(r->p + r->at); r->at += 4; }
    return e;
}

fr_err fri_rd_u64(fri_rd *r, uint64_t *v, const char *what) {
    fr_err e = fri_rd_need(r, 8, what);
    if (!e) { *v = fri_get_u64(r->p + r->at); r->at += 8; }
    return e;
}

fr_err fri_rd_f32(fri_rd *r, float *v, const char *what) {
    fr_err e = fri_rd_need(r, 4, what);
    if (!e) { *v = fri_get_f32(r->p + r->at); r->at += 4; }
    return e;
}

fr_err fri_rd_f64(fri_rd *r, double *v, const char *what) {
    fr_err e = fri_rd_need(r, 8, what);
    if (!e) { *v = fri_get_f64(r->p + r->at); r->at += 8; }
    return e;
}

fr_err fri_rd_bytes(fri_rd *r, const uint8_t **p, size_t k, const char *what) {
    fr_err e = fri_rd_need(r, k, what);
    if (!e) { *p = r->p + r->at; r->at += k; }
    return e;
}

fr_err fri_rd_end(const fri_rd *r, const char *what) {
    if (r->at != r->n)
        return fri_fail(FR_ERR_FORMAT, "%s: %zu unexpected bytes after %s in the %s", r->name, r->n - r->at, what,
                        r->kind);
    return FR_OK;
}

/* ------------------------------------------------------------------ latch */

void fri_latch_reset(fri_latch *l) {
    atomic_store(&l->err, 0);
    atomic_store(&l->ready, 0);
    l->msg[0] = 0;
}

fr_err fri_latch_set(fri_latch *l, fr_err e, const char *prefix) {
    if (e == FR_OK) return e;
    int none = 0;
    if (atomic_compare_exchange_strong(&l->err, &none, (int)e)) {
        const char *m = fr_errmsg();
        if (prefix && *prefix) snprintf(l->msg, sizeof l->msg, "%s: %s", prefix, *m ? m : fr_strerror(e));
        else snprintf(l->msg, sizeof l->msg, "%s", *m ? m : fr_strerror(e));
        atomic_store_explicit(&l->ready, 1, memory_order_release);
    }
    return e;
}

fr_err fri_latch_get(fri_latch *l) {
    int e = atomic_load(&l->err);
    if (!e) return FR_OK;
    /* the loop has ended when this is called, so the winner has written its message */
    while (!atomic_load_explicit(&l->ready, memory_order_acquire)) {}
    return fri_fail((fr_err)e, "%s", l->msg);
}

bool fri_all_finite(const float *w, size_t n) {
    uint32_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t b;
        memcpy(&b, &w[i], 4);
        bad |= (uint32_t)((b & 0x7f800000u) == 0x7f800000u);
    }
    return !bad;
}
