/* Updates and results in memory: the float update a client's fit makes (fr_update), the
 * weighted fixed-point result it sends (fr_result), and the quantization between them.
 *
 * Invariants:
 *   - Both own their arrays and only grow them, so one kept across rounds stops
 *     allocating once it has seen its largest round.
 *   - Quantization is the server's old accumulation moved to the client: each value is
 *     round(w * Δ * 2^32) computed in double from the float, saturating; the server then
 *     only adds integers modulo 2^64, so the sum is the same whatever the order, the
 *     split over workers, or whether masks are added and cancelled on the way. */
#include <math.h>
#include <stdio.h>

#include "fl/fl_internal.h"

/* ------------------------------------------------------------ table rows (both kinds) */

/* A table whose row width changes: its values hold cap_rows * old width elements and its
 * ids cap_rows ids, so it keeps the row capacity both arrays can serve at the new width. */
static void rewidth(size_t *cap_rows, uint32_t *width, uint32_t w) {
    if (*width == w) return;
    size_t vals = *cap_rows * *width, rows = vals / w;
    if (rows < *cap_rows) *cap_rows = rows;
    *width = w;
}

/* Room for count rows of width values of elem bytes each in (*ids, *values). */
static fr_err grow_rows(uint32_t **ids, void **values, size_t elem, size_t *cap_rows, uint32_t width, uint32_t count,
                        const char *what, uint32_t t) {
    if (count <= *cap_rows) return FR_OK;
    size_t nv, bv, bi;
    if (fri_mul_size(count, width, &nv) || fri_mul_size(nv, elem, &bv) || fri_mul_size(count, sizeof(uint32_t), &bi))
        return fri_fail(FR_ERR_NOMEM, "%s: table %u: %u rows of width %u overflow memory", what, t, count, width);
    uint32_t *i = fri_realloc(*ids, bi);
    if (!i) return FR_ERR_NOMEM;
    *ids = i; /* larger than cap_rows says: harmless */
    void *v = fri_realloc(*values, bv);
    if (!v) return FR_ERR_NOMEM;
    *values = v;
    *cap_rows = count;
    return FR_OK;
}

/* ------------------------------------------------------------ updates */

fr_err fr_update_create(fr_update **out) {
    *out = fri_calloc(1, sizeof **out);
    return *out ? FR_OK : FR_ERR_NOMEM;
}

void fr_update_free(fr_update *u) {
    if (!u) return;
    for (uint32_t t = 0; t < u->tables_cap; t++) {
        fri_free(u->tables[t].ids);
        fri_free(u->tables[t].values);
    }
    fri_free(u->tables);
    fri_free(u->dense);
    fri_free(u);
}

fr_err fr_update_reset(fr_update *u, uint32_t dense_len, uint32_t n_tables, const uint32_t *widths) {
    if (!u) return fri_fail(FR_ERR_INVALID, "fr_update_reset: NULL update");
    if (n_tables > FR_UPDATE_MAX_TABLES)
        return fri_fail(FR_ERR_INVALID, "update: %u tables, at most %d supported", n_tables, FR_UPDATE_MAX_TABLES);
    if (n_tables > 0 && !widths) return fri_fail(FR_ERR_INVALID, "fr_update_reset: NULL widths");
    for (uint32_t t = 0; t < n_tables; t++)
        if (widths[t] == 0) return fri_fail(FR_ERR_INVALID, "update: table %u has width 0, expected >= 1", t);
    if (dense_len > u->dense_cap) {
        float *d = fri_realloc(u->dense, (size_t)dense_len * sizeof *d);
        if (!d) return FR_ERR_NOMEM;
        u->dense = d;
        u->dense_cap = dense_len;
    }
    if (n_tables > u->tables_cap) {
        fr_update_table *tb = fri_realloc(u->tables, (size_t)n_tables * sizeof *tb);
        if (!tb) return FR_ERR_NOMEM;
        memset(tb + u->tables_cap, 0, (size_t)(n_tables - u->tables_cap) * sizeof *tb);
        u->tables = tb;
        u->tables_cap = n_tables;
    }
    if (dense_len) memset(u->dense, 0, (size_t)dense_len * sizeof *u->dense);
    u->dense_len = dense_len;
    for (uint32_t t = 0; t < n_tables; t++) {
        rewidth(&u->tables[t].cap_rows, &u->tables[t].width, widths[t]);
        u->tables[t].count = 0;
    }
    u->n_tables = n_tables;
    return FR_OK;
}

fr_err fr_update_table_resize(fr_update *u, uint32_t t, uint32_t count) {
    if (!u || t >= u->n_tables)
        return fri_fail(FR_ERR_INVALID, "fr_update_table_resize: table %u, the update has %u", t, u ? u->n_tables : 0);
    fr_update_table *tb = &u->tables[t];
    void *v = tb->values;
    fr_err e = grow_rows(&tb->ids, &v, sizeof(float), &tb->cap_rows, tb->width, count, "update", t);
    tb->values = v;
    if (!e) tb->count = count;
    return e;
}

/* ------------------------------------------------------------ fixed point */

/* n_k * Δ in units of 2^-32, rounded half away from zero, saturating (NaN gives the
 * lower bound: fmax returns its non-NaN argument). Branch-free so the loops vectorise. */
static inline int64_t fixed(double x) {
    double v = fmin(fmax(x * FR_FL_FIXED_SCALE, -4.6e18), 4.6e18);
    return (int64_t)(v + copysign(0.5, v));
}

/* a += t modulo 2^64, as the vector lanes add (_mm512_add_epi64) and fri_fl_add_ints: in
 * unsigned arithmetic, where wrapping is defined (a signed overflow is undefined). */
static inline void add_wrap(int64_t *a, int64_t t) { *a = (int64_t)((uint64_t)*a + (uint64_t)t); }

/* The conversion needs AVX-512DQ to vectorise (vcvttpd2qq; AVX2 has no double -> int64),
 * so on x86-64 with gcc or clang a copy doing the same double operations in the same
 * order is chosen at run time: bit-identical to the scalar loop (max(v, lo) returns lo
 * for a NaN v, as fmax does). */
#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define FR_HAVE_AVX512_DISPATCH 1
/* dst: int64 values to add to (add) or to overwrite (little-endian, any alignment: x86). */
__attribute__((target("avx512f,avx512dq"))) static size_t fixed_avx512(void *restrict dst, const float *restrict val,
                                                                      size_t n, double w, bool add) {
    const __m512d vw = _mm512_set1_pd(w), vs = _mm512_set1_pd(FR_FL_FIXED_SCALE), lo = _mm512_set1_pd(-4.6e18),
                  hi = _mm512_set1_pd(4.6e18), half = _mm512_set1_pd(0.5);
    const __m512i sign = _mm512_set1_epi64((long long)0x8000000000000000ull);
    uint8_t *out = dst;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m512d x = _mm512_mul_pd(_mm512_mul_pd(vw, _mm512_cvtps_pd(_mm256_loadu_ps(val + i))), vs);
        x = _mm512_min_pd(_mm512_max_pd(x, lo), hi);
        __m512d h = _mm512_castsi512_pd(_mm512_or_si512(_mm512_and_si512(_mm512_castpd_si512(x), sign),
                                                        _mm512_castpd_si512(half)));
        __m512i q = _mm512_cvttpd_epi64(_mm512_add_pd(x, h));
        if (add) q = _mm512_add_epi64(_mm512_loadu_si512(out + 8 * i), q);
        _mm512_storeu_si512(out + 8 * i, q);
    }
    return i;
}
static int have_avx512(void) { return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq"); }
#else
#define FR_HAVE_AVX512_DISPATCH 0
#endif

void fri_fl_add_fixed(int64_t *restrict acc, const float *restrict val, size_t n, double w, bool vector) {
    size_t i = 0;
#if FR_HAVE_AVX512_DISPATCH
    if (vector && n >= 8 && have_avx512()) i = fixed_avx512(acc, val, n, w, true);
#else
    (void)vector;
#endif
    for (; i < n; i++) add_wrap(&acc[i], fixed(w * (double)val[i]));
}

void fri_fl_add_fixed_rows(int64_t *restrict acc, const uint32_t *ids, const float *restrict val, size_t count,
                           size_t width, double w) {
    if (width == 1) { /* a bias column: one term a row */
        for (size_t i = 0; i < count; i++) add_wrap(&acc[ids[i]], fixed(w * (double)val[i]));
        return;
    }
#if FR_HAVE_AVX512_DISPATCH
    if (width >= 8 && have_avx512()) { /* the same terms (fixed_avx512), added as 64-bit lanes */
        for (size_t i = 0; i < count; i++) {
            int64_t *a = acc + (size_t)ids[i] * width;
            const float *v = val + i * width;
            for (size_t x = fixed_avx512(a, v, width, w, true); x < width; x++) add_wrap(&a[x], fixed(w * (double)v[x]));
        }
        return;
    }
#endif
    for (size_t i = 0; i < count; i++) {
        int64_t *a = acc + (size_t)ids[i] * width;
        const float *v = val + i * width;
        for (size_t x = 0; x < width; x++) add_wrap(&a[x], fixed(w * (double)v[x]));
    }
}

void fri_fl_store_fixed(int64_t *restrict out, const float *restrict val, size_t n, double w) {
    size_t i = 0;
#if FR_HAVE_AVX512_DISPATCH
    if (n >= 8 && have_avx512()) i = fixed_avx512(out, val, n, w, false);
#endif
    for (; i < n; i++) out[i] = fixed(w * (double)val[i]);
}

void fri_fl_store_fixed_le(uint8_t *restrict out, const float *restrict val, size_t n, double w) {
    size_t i = 0;
#if FR_HAVE_AVX512_DISPATCH
    if (n >= 8 && have_avx512()) i = fixed_avx512(out, val, n, w, false);
#endif
    for (; i < n; i++) fri_put_u64(out + 8 * i, (uint64_t)fixed(w * (double)val[i]));
}

void fri_fl_add_ints(int64_t *restrict acc, const int64_t *restrict val, size_t n) {
    /* unsigned: wrapping is defined, and is what masked sums need */
    uint64_t *restrict a = (uint64_t *)acc;
    const uint64_t *restrict v = (const uint64_t *)val;
    for (size_t i = 0; i < n; i++) a[i] += v[i];
}

/* The largest |v| of n int64 values (plain loads: any alignment on x86, where the AVX-512
 * copy is compiled; elsewhere int64 arrays only) and of n floats as bits (|x|'s bits order
 * as |x| for every non-NaN x; an infinity or NaN gives 0x7f800000 or more). The same loops
 * compiled for AVX-512 where the CPU has it (integer operations: the same result), as the
 * plain build cannot vectorise a 64-bit unsigned max. */
#define MAX_ABS_I64_BODY(LOAD)                                      \
    uint64_t m = 0;                                                 \
    for (size_t i = 0; i < n; i++) {                                \
        uint64_t u = LOAD;                                          \
        uint64_t a = (int64_t)u < 0 ? 0 - u : u;                    \
        m = a > m ? a : m;                                          \
    }                                                               \
    return m;
#define MAX_ABS_BITS_BODY                                           \
    uint32_t m = 0;                                                 \
    for (size_t i = 0; i < n; i++) {                                \
        uint32_t b;                                                 \
        memcpy(&b, &v[i], 4);                                       \
        b &= 0x7fffffffu;                                           \
        m = b > m ? b : m;                                          \
    }                                                               \
    return m;

static inline uint64_t load64(const uint8_t *p) { /* an unaligned load (x86 is little-endian) */
    uint64_t x;
    memcpy(&x, p, 8);
    return x;
}
static uint64_t max_abs_i64(const int64_t *v, size_t n) { MAX_ABS_I64_BODY((uint64_t)v[i]) }
static uint32_t max_abs_bits(const float *v, size_t n) { MAX_ABS_BITS_BODY }
#if FR_HAVE_AVX512_DISPATCH
__attribute__((target("avx512f"))) static uint64_t max_abs_i64_avx512(const uint8_t *p, size_t n) {
    MAX_ABS_I64_BODY(load64(p + 8 * i))
}
__attribute__((target("avx512f"))) static uint32_t max_abs_bits_avx512(const float *v, size_t n) { MAX_ABS_BITS_BODY }
#endif

uint64_t fri_fl_max_abs(const int64_t *v, size_t n) {
#if FR_HAVE_AVX512_DISPATCH
    if (n >= 16 && have_avx512()) return max_abs_i64_avx512((const uint8_t *)v, n);
#endif
    return max_abs_i64(v, n);
}

uint64_t fri_fl_max_abs_le(const uint8_t *p, size_t n) {
#if FR_HAVE_AVX512_DISPATCH
    if (n >= 16 && have_avx512()) return max_abs_i64_avx512(p, n);
#endif
    MAX_ABS_I64_BODY(fri_get_u64(p + 8 * i))
}

/* The largest |x| bits of v[0, n) (see above). */
static uint32_t max_abs_bits_of(const float *v, size_t n) {
#if FR_HAVE_AVX512_DISPATCH
    if (n >= 32 && have_avx512()) return max_abs_bits_avx512(v, n);
#endif
    return max_abs_bits(v, n);
}

void fri_fl_add_ints_le(int64_t *restrict acc, const uint8_t *restrict p, size_t n) {
    uint64_t *restrict a = (uint64_t *)acc;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    for (size_t i = 0; i < n; i++) {
        uint64_t v;
        memcpy(&v, p + 8 * i, 8); /* unaligned load */
        a[i] += v;
    }
#else
    for (size_t i = 0; i < n; i++) a[i] += fri_get_u64(p + 8 * i);
#endif
}

/* ------------------------------------------------------------ results */

fr_err fr_result_create(fr_result **out) {
    *out = fri_calloc(1, sizeof **out);
    return *out ? FR_OK : FR_ERR_NOMEM;
}

void fr_result_free(fr_result *r) {
    if (!r) return;
    for (uint32_t t = 0; t < r->tables_cap; t++) {
        fri_free(r->tables[t].ids);
        fri_free(r->tables[t].values);
    }
    fri_free(r->tables);
    fri_free(r->dense);
    fri_free(r);
}

fr_err fri_result_reset(fr_result *r, uint32_t dense_len, uint32_t n_tables, const uint32_t *widths) {
    if (n_tables > FR_UPDATE_MAX_TABLES)
        return fri_fail(FR_ERR_INVALID, "result: %u tables, at most %d supported", n_tables, FR_UPDATE_MAX_TABLES);
    for (uint32_t t = 0; t < n_tables; t++) /* before anything changes: a refused reset leaves r as it was */
        if (widths[t] == 0) return fri_fail(FR_ERR_INVALID, "result: table %u has width 0, expected >= 1", t);
    if (dense_len > r->dense_cap) {
        int64_t *d = fri_realloc(r->dense, (size_t)dense_len * sizeof *d);
        if (!d) return FR_ERR_NOMEM;
        r->dense = d;
        r->dense_cap = dense_len;
    }
    if (n_tables > r->tables_cap) {
        fr_result_table *tb = fri_realloc(r->tables, (size_t)n_tables * sizeof *tb);
        if (!tb) return FR_ERR_NOMEM;
        memset(tb + r->tables_cap, 0, (size_t)(n_tables - r->tables_cap) * sizeof *tb);
        r->tables = tb;
        r->tables_cap = n_tables;
    }
    r->dense_len = dense_len;
    for (uint32_t t = 0; t < n_tables; t++) {
        rewidth(&r->tables[t].cap_rows, &r->tables[t].width, widths[t]);
        r->tables[t].count = 0;
    }
    r->n_tables = n_tables;
    r->flags = 0;
    return FR_OK;
}

fr_err fri_result_table_resize(fr_result *r, uint32_t t, uint32_t count) {
    fr_result_table *tb = &r->tables[t];
    void *v = tb->values;
    fr_err e = grow_rows(&tb->ids, &v, sizeof(int64_t), &tb->cap_rows, tb->width, count, "result", t);
    tb->values = v;
    if (!e) tb->count = count;
    return e;
}

/* The first non-finite value of v[0, n), for the message. */
static size_t first_bad(const float *v, size_t n) {
    size_t i = 0;
    while (i < n && isfinite(v[i])) i++;
    return i;
}

uint64_t fr_fl_fixed_bound(uint32_t k) {
    /* also never above the kernels' saturation (4.6e18), so a value within the bound is
     * exactly what was quantized */
    uint64_t b = (uint64_t)INT64_MAX / (k ? k : 1), sat = (uint64_t)4.6e18;
    return b < sat ? b : sat;
}

static float of_bits(uint32_t b) {
    float f;
    memcpy(&f, &b, 4);
    return f;
}

fr_err fri_update_check(const fr_update *u, const fr_fl_config *cfg, uint64_t bound) {
    /* one pass per part: the largest |value| as bits, which also says whether every value
     * is finite (below 0x7f800000); a non-finite one is found again for the message */
    uint32_t bd = max_abs_bits_of(u->dense, u->dense_len), bt[FR_UPDATE_MAX_TABLES], bad = bd;
    for (uint32_t t = 0; t < u->n_tables && t < FR_UPDATE_MAX_TABLES; t++) {
        bt[t] = max_abs_bits_of(u->tables[t].values, (size_t)u->tables[t].count * u->tables[t].width);
        bad = bt[t] > bad ? bt[t] : bad;
    }
    if (bad >= 0x7f800000u || u->n_tables > FR_UPDATE_MAX_TABLES) {
        fr_err e = fri_update_check_finite(u);
        if (e) return e;
    }
    if (bound == 0) bound = fr_fl_fixed_bound(1);
    /* |round(w * v * 2^32)| <= bound for every value: checked in double with a margin of a
     * part in 10^9, so rounding can never carry a value past it */
    double lim = (double)bound * (1.0 - 1e-9) / FR_FL_FIXED_SCALE, w = (double)u->weight;
    double wi = cfg->item_sum ? 1.0 : w;
    double worst = w * (double)of_bits(bd);
    const char *where = "the dense part";
    uint32_t wt = 0;
    for (uint32_t t = 0; t < u->n_tables && t < FR_UPDATE_MAX_TABLES; t++) {
        double x = wi * (double)of_bits(bt[t]);
        if (x > worst) { worst = x; where = "table"; wt = t; }
    }
    if (worst > lim) {
        char at[32];
        if (where[0] == 't') snprintf(at, sizeof at, "table %u", wt);
        else snprintf(at, sizeof at, "%s", where);
        return fri_fail(FR_ERR_RANGE,
                        "client %u: its update is beyond this round's fixed-point range (weight x |delta| = %.4g in "
                        "%s, at most %.4g): the local fit diverged (try a smaller learning rate)",
                        u->client, worst, at, lim);
    }
    return FR_OK;
}

fr_err fri_update_check_finite(const fr_update *u) {
    if (u->dense_len && !fri_all_finite(u->dense, u->dense_len)) {
        size_t i = first_bad(u->dense, u->dense_len);
        return fri_fail(FR_ERR_RANGE, "client %u: its update is not finite (dense value %zu is %g): "
                        "the local fit diverged", u->client, i, (double)u->dense[i]);
    }
    for (uint32_t t = 0; t < u->n_tables; t++) {
        const fr_update_table *tb = &u->tables[t];
        size_t nv = (size_t)tb->count * tb->width;
        if (!fri_all_finite(tb->values, nv)) {
            size_t i = first_bad(tb->values, nv);
            return fri_fail(FR_ERR_RANGE, "client %u: its update is not finite (table %u, row %u is %g): "
                            "the local fit diverged", u->client, t, tb->ids[i / tb->width], (double)tb->values[i]);
        }
    }
    return FR_OK;
}

fr_err fr_result_quantize(fr_result *res, const fr_update *u, const fr_fl_config *cfg, uint64_t bound) {
    if (!res || !u || !cfg) return fri_fail(FR_ERR_INVALID, "fr_result_quantize: NULL argument");
    fr_err e0 = fri_update_check(u, cfg, bound);
    if (e0) return e0;
    uint32_t widths[FR_UPDATE_MAX_TABLES];
    for (uint32_t t = 0; t < u->n_tables && t < FR_UPDATE_MAX_TABLES; t++) widths[t] = u->tables[t].width;
    fr_err e = fri_result_reset(res, u->dense_len, u->n_tables, widths);
    if (e) return e;
    res->weight = u->weight;
    res->client = u->client;
    res->round = u->round;
    double n = (double)u->weight, ni = cfg->item_sum ? 1.0 : n; /* item rows: the plain sum, or n_k-weighted */
    fri_fl_store_fixed(res->dense, u->dense, u->dense_len, n);
    for (uint32_t t = 0; t < u->n_tables; t++) {
        const fr_update_table *tb = &u->tables[t];
        e = fri_result_table_resize(res, t, tb->count);
        if (e) return e;
        fr_result_table *rt = &res->tables[t];
        size_t nv = (size_t)tb->count * tb->width;
        if (tb->count) memcpy(rt->ids, tb->ids, (size_t)tb->count * sizeof *rt->ids);
        fri_fl_store_fixed(rt->values, tb->values, nv, ni);
    }
    return FR_OK;
}
