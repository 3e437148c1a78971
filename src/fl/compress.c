/* Compression of the federation's messages (fr_fl_config.compress_up, compress_topk,
 * compress_down): quantized blocks, top-k of the dense part with error feedback, the
 * compressed RESULT's codec and the quantized parameters of a TASK.
 *
 * A quantized block is a little-endian f32 scale S then n integers q (int8 in [-127, 127]
 * or int16 in [-32767, 32767]). Up, in a RESULT, the values are the fixed-point words
 * x = round(w Δ 2^32) and S is a whole number of units (ceil(max|x| / L), rounded up to a
 * float): a value decodes to q S exactly, in integers, so the server's sums stay what
 * they were, and the stochastic rounding q = floor(x / S) + [u < x mod S], u uniform in
 * [0, S), is exactly unbiased, |q S - x| < S. Down, in a TASK, the values are the floats
 * of the global model and S = max|x| / L (a float): x decodes to (float)(q S),
 * |decoded - x| <= S (plus the float rounding of the product).
 *
 * Compressed RESULT (flags FR_RESULT_Q8 or Q16 and/or TOPK; the fixed part as msg.c's):
 *   dense: with TOPK: u32 K | u32 idx[K] (increasing) | K values, else dense[D] values;
 *          values in blocks of FR_COMPRESS_BLOCK (one scale each) when quantized, else i64
 *   T times: u32 width | u32 count | u32 ids[count] | count rows, one scale per row when
 *          quantized, else i64[width]
 * Stochastic rounding draws from (seed, round, client, COMPRESS_UP), dense values first
 * then the rows in order; the TASK's from (seed, round, 0, COMPRESS_DOWN). */
#include <float.h>
#include <math.h>
#include <stdlib.h>

#include "fl/fl_internal.h"
#include "model/model_internal.h"

#define RESULT_FIXED 48

uint32_t fri_q_levels(uint32_t mode) { return mode == FR_COMPRESS_Q8 ? 127u : 32767u; }
static size_t qb(uint32_t mode) { return mode == FR_COMPRESS_Q8 ? 1 : 2; }

size_t fri_q_bytes(uint32_t mode, size_t n, size_t block) {
    if (mode == FR_COMPRESS_NONE) return 8 * n;
    size_t blocks = block ? (n + block - 1) / block : 0;
    return 4 * blocks + n * qb(mode);
}

uint64_t fri_q_scale(uint64_t m, uint32_t levels) {
    if (m == 0) return 0;
    uint64_t s = m / levels + (m % levels != 0);
    float f = (float)s;
    if ((uint64_t)f < s) f = nextafterf(f, INFINITY);
    return (uint64_t)f;
}

static void put_q(uint8_t *p, uint32_t mode, int64_t q) {
    if (mode == FR_COMPRESS_Q8) *p = (uint8_t)(int8_t)q;
    else fri_put_u16(p, (uint16_t)(int16_t)q);
}

static int64_t get_q(const uint8_t *p, uint32_t mode) {
    return mode == FR_COMPRESS_Q8 ? (int64_t)(int8_t)*p : (int64_t)(int16_t)fri_get_u16(p);
}

size_t fri_q_encode_fixed(uint8_t *out, const int64_t *x, size_t n, uint32_t mode, fr_rng *rng) {
    uint64_t m = fri_fl_max_abs(x, n);
    uint64_t s = fri_q_scale(m, fri_q_levels(mode));
    fri_put_f32(out, (float)s);
    uint8_t *p = out + 4;
    size_t w = qb(mode);
    for (size_t i = 0; i < n; i++, p += w) {
        int64_t q = 0;
        if (s) {
            int64_t a = x[i] / (int64_t)s, b = x[i] % (int64_t)s; /* floor division */
            if (b < 0) { a -= 1; b += (int64_t)s; }
            q = a + (fr_rng_below64(rng, s) < (uint64_t)b);
        }
        put_q(p, mode, q);
    }
    return 4 + n * w;
}

fr_err fri_q_decode_fixed(int64_t *x, const uint8_t *p, size_t n, uint32_t mode) {
    float f = fri_get_f32(p);
    uint32_t L = fri_q_levels(mode);
    if (!(f >= 0) || !isfinite(f) || f != floorf(f) || (double)f * L >= 9.2e18)
        return fri_fail(FR_ERR_FORMAT, "RESULT: block scale %g, expected a whole number of units below %g", (double)f,
                        9.2e18 / L);
    int64_t s = (int64_t)f;
    p += 4;
    size_t w = qb(mode);
    for (size_t i = 0; i < n; i++, p += w) {
        int64_t q = get_q(p, mode);
        if (q < -(int64_t)L || (s == 0 && q != 0))
            return fri_fail(FR_ERR_FORMAT, "RESULT: quantized value %lld with scale %lld, expected [-%u, %u] (0 with "
                            "scale 0)", (long long)q, (long long)s, L, L);
        x[i] = q * s;
    }
    return FR_OK;
}

fr_err fri_q_encode_float(uint8_t *out, const float *x, size_t n, uint32_t mode, fr_rng *rng) {
    float m = 0;
    for (size_t i = 0; i < n; i++) {
        float a = fabsf(x[i]);
        if (!(a <= FLT_MAX)) return fri_fail(FR_ERR_RANGE, "TASK: parameter %g is not finite", (double)x[i]);
        m = a > m ? a : m;
    }
    const double L = fri_q_levels(mode);
    float s = (float)(m / L);
    if (m > 0 && s == 0) s = FLT_TRUE_MIN;
    fri_put_f32(out, s);
    uint8_t *p = out + 4;
    size_t w = qb(mode);
    for (size_t i = 0; i < n; i++, p += w) {
        double q = 0;
        if (s > 0) {
            double t = (double)x[i] / s, fl = floor(t);
            q = fl + (fr_rng_double(rng) < t - fl);
            q = q > L ? L : q < -L ? -L : q;
        }
        put_q(p, mode, (int64_t)q);
    }
    return FR_OK;
}

fr_err fri_q_decode_float(float *x, const uint8_t *p, size_t n, uint32_t mode) {
    float s = fri_get_f32(p);
    int64_t L = fri_q_levels(mode);
    if (!(s >= 0) || !isfinite(s))
        return fri_fail(FR_ERR_FORMAT, "TASK: block scale %g, expected a finite value >= 0", (double)s);
    p += 4;
    size_t w = qb(mode);
    for (size_t i = 0; i < n; i++, p += w) {
        int64_t q = get_q(p, mode);
        if (q < -L || (s == 0 && q != 0))
            return fri_fail(FR_ERR_FORMAT, "TASK: quantized value %lld with scale %g, expected [-%lld, %lld] (0 with "
                            "scale 0)", (long long)q, (double)s, (long long)L, (long long)L);
        x[i] = (float)((double)q * s);
    }
    return FR_OK;
}

/* ------------------------------------------------------------------ top-k */

static _Thread_local const float *t_mag; /* qsort has no context argument in C11 */

static int cmp_mag(const void *a, const void *b) {
    uint32_t i = *(const uint32_t *)a, j = *(const uint32_t *)b;
    float x = fabsf(t_mag[i]), y = fabsf(t_mag[j]);
    if (x != y) return x > y ? -1 : 1;
    return (i > j) - (i < j);
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

void fri_topk_select(const float *a, uint32_t n, uint32_t k, uint32_t *order, uint32_t *idx) {
    if (k > n) k = n;
    for (uint32_t i = 0; i < n; i++) order[i] = i;
    t_mag = a;
    qsort(order, n, sizeof *order, cmp_mag);
    t_mag = NULL;
    memcpy(idx, order, (size_t)k * sizeof *idx);
    qsort(idx, k, sizeof *idx, cmp_u32);
}

/* ------------------------------------------------------------------ the compressed RESULT */

struct fri_compress_ws {
    float *a;               /* [D] the dense update plus the residual */
    int64_t *x;             /* [cap_x] fixed-point values of a block or row */
    uint32_t *order, *idx;  /* [D] top-k scratch */
    size_t cap_d, cap_x;
};

void fri_compress_ws_free(fri_compress_ws *w) {
    if (!w) return;
    fri_free(w->a);
    fri_free(w->x);
    fri_free(w->order);
    fri_free(w->idx);
    fri_free(w);
}

static fr_err reserve(fri_compress_ws *w, size_t d, size_t x) {
    if (d > w->cap_d) {
        float *a = fri_realloc(w->a, d * sizeof *a);
        if (a) w->a = a;
        uint32_t *o = a ? fri_realloc(w->order, d * sizeof *o) : NULL;
        if (o) w->order = o;
        uint32_t *i = o ? fri_realloc(w->idx, d * sizeof *i) : NULL;
        if (!i) return FR_ERR_NOMEM;
        w->idx = i;
        w->cap_d = d;
    }
    if (x > w->cap_x) {
        int64_t *p = fri_realloc(w->x, x * sizeof *p);
        if (!p) return FR_ERR_NOMEM;
        w->x = p;
        w->cap_x = x;
    }
    return FR_OK;
}

uint32_t fri_result_compress_flags(const fr_fl_config *c) {
    return (c->compress_up == FR_COMPRESS_Q8 ? FR_RESULT_Q8 : c->compress_up == FR_COMPRESS_Q16 ? FR_RESULT_Q16 : 0) |
           (c->compress_topk ? FR_RESULT_TOPK : 0);
}

/* n values vals (floats, times w in fixed point) in blocks of `block`, at p. */
static uint8_t *put_values(uint8_t *p, fri_compress_ws *cw, const float *vals, size_t n, size_t block, double w,
                           uint32_t mode, fr_rng *rng) {
    if (mode == FR_COMPRESS_NONE) {
        fri_fl_store_fixed_le(p, vals, n, w);
        return p + 8 * n;
    }
    for (size_t at = 0; at < n; at += block) {
        size_t len = n - at < block ? n - at : block;
        fri_fl_store_fixed(cw->x, vals + at, len, w);
        p += fri_q_encode_fixed(p, cw->x, len, mode, rng);
    }
    return p;
}

fr_err fri_result_encode_compressed(const fr_update *u, const fr_fl_config *cfg, uint64_t bound, uint32_t config_crc,
                                    uint64_t examples, double loss_sum, float *residual, fri_compress_ws **cwp,
                                    uint8_t **buf, size_t *cap, size_t *n) {
    *n = 0;
    fr_err e = fri_result_update_valid(u, cfg, bound);
    if (e) return e;
    uint32_t maxw = FR_COMPRESS_BLOCK;
    for (uint32_t t = 0; t < u->n_tables; t++) maxw = u->tables[t].width > maxw ? u->tables[t].width : maxw;
    const uint32_t mode = cfg->compress_up, D = u->dense_len;
    const bool topk = cfg->compress_topk > 0;
    if (topk && D && !residual)
        return fri_fail(FR_ERR_INVALID, "client %u: top-k compression needs the client's residual "
                        "(fri_client_ws_set_residual): this client keeps none", u->client);
    if (!*cwp && !(*cwp = fri_calloc(1, sizeof **cwp))) return FR_ERR_NOMEM;
    fri_compress_ws *cw = *cwp;
    if ((e = reserve(cw, D ? D : 1, maxw))) return e;
    const double w = (double)u->weight, wi = cfg->item_sum ? 1.0 : w; /* as fr_result_quantize */
    /* the dense values sent: all of them, or the top K of the update plus the residual */
    uint32_t k = D;
    const float *dv = u->dense;
    if (topk && D == 0) k = 0;
    if (topk && D) {
        for (uint32_t i = 0; i < D; i++) cw->a[i] = u->dense[i] + residual[i];
        if (!fri_all_finite(cw->a, D))
            return fri_fail(FR_ERR_RANGE, "client %u: its update plus its residual is not finite", u->client);
        k = cfg->compress_topk < D ? cfg->compress_topk : D;
        fri_topk_select(cw->a, D, k, cw->order, cw->idx);
        uint64_t worst = 0;
        for (uint32_t j = 0; j < k; j++) {
            float v = cw->a[cw->idx[j]];
            fri_fl_store_fixed(cw->x, &v, 1, w);
            uint64_t m = fri_fl_max_abs(cw->x, 1);
            worst = m > worst ? m : worst;
        }
        if (worst > bound)
            return fri_fail(FR_ERR_RANGE, "client %u: round %u: its update plus its residual is beyond the round's bound",
                            u->client, u->round);
        /* the residual keeps what is not sent; the sent values move to the front of a */
        memcpy(residual, cw->a, (size_t)D * sizeof *residual);
        for (uint32_t j = 0; j < k; j++) {
            residual[cw->idx[j]] = 0;
            cw->a[j] = cw->a[cw->idx[j]]; /* idx increasing: idx[j] >= j, read before overwritten */
        }
        dv = cw->a;
    }
    size_t total = FR_MSG_HEADER_BYTES + RESULT_FIXED + (topk ? 4 + 4 * (size_t)k : 0) +
                   fri_q_bytes(mode, k, FR_COMPRESS_BLOCK);
    for (uint32_t t = 0; t < u->n_tables; t++) {
        const fr_update_table *tb = &u->tables[t];
        total += 8 + 4 * (size_t)tb->count + (size_t)tb->count * fri_q_bytes(mode, tb->width, tb->width);
    }
    if (total > *cap) {
        uint8_t *b = fri_realloc(*buf, total);
        if (!b) return FR_ERR_NOMEM;
        *buf = b;
        *cap = total;
    }
    fr_rng rng;
    fr_rng_init(&rng, cfg->seed, u->round, u->client, FR_PURPOSE_COMPRESS_UP);
    uint8_t *p = *buf + FR_MSG_HEADER_BYTES;
    fri_put_u32(p, u->client);
    fri_put_u32(p + 4, u->round);
    fri_put_u32(p + 8, config_crc);
    fri_put_u32(p + 12, fri_result_compress_flags(cfg));
    fri_put_u64(p + 16, u->weight);
    fri_put_u64(p + 24, examples);
    fri_put_f64(p + 32, loss_sum);
    fri_put_u32(p + 40, D);
    fri_put_u32(p + 44, u->n_tables);
    p += RESULT_FIXED;
    if (topk) {
        fri_put_u32(p, k);
        p += 4;
        for (uint32_t j = 0; j < k; j++, p += 4) fri_put_u32(p, cw->idx[j]);
    }
    p = put_values(p, cw, dv, k, FR_COMPRESS_BLOCK, w, mode, &rng);
    for (uint32_t t = 0; t < u->n_tables; t++) {
        const fr_update_table *tb = &u->tables[t];
        fri_put_u32(p, tb->width);
        fri_put_u32(p + 4, tb->count);
        p += 8;
        for (uint32_t i = 0; i < tb->count; i++, p += 4) fri_put_u32(p, tb->ids[i]);
        for (uint32_t i = 0; i < tb->count; i++)
            p = put_values(p, cw, tb->values + (size_t)i * tb->width, tb->width, tb->width, wi, mode, &rng);
    }
    fri_msg_seal(*buf, total, FR_MSG_RESULT);
    *n = total;
    return FR_OK;
}

/* n values at p (checked present) into x. */
static fr_err get_values(int64_t *x, const uint8_t *p, size_t n, size_t block, uint32_t mode) {
    if (mode == FR_COMPRESS_NONE) {
        for (size_t i = 0; i < n; i++) x[i] = (int64_t)fri_get_u64(p + 8 * i);
        return FR_OK;
    }
    for (size_t at = 0; at < n; at += block) {
        size_t len = n - at < block ? n - at : block;
        fr_err e = fri_q_decode_fixed(x + at, p, len, mode);
        if (e) return e;
        p += 4 + len * qb(mode);
    }
    return FR_OK;
}

bool fri_result_is_compressed(const uint8_t *b, size_t n) {
    return n >= FR_MSG_HEADER_BYTES + 16 &&
           (fri_get_u32(b + FR_MSG_HEADER_BYTES + 12) & (FR_RESULT_Q8 | FR_RESULT_Q16 | FR_RESULT_TOPK)) != 0;
}

fr_err fri_result_decompress(fr_result *r, const uint8_t *bytes, size_t n, const fr_update_shape *s) {
    fr_err e = fri_result_shape_check(s);
    if (!e) e = fri_msg_open(bytes, n, FR_MSG_RESULT, "RESULT");
    if (e) return e;
    fri_rd rd;
    fri_rd_init(&rd, bytes + FR_MSG_HEADER_BYTES, n - FR_MSG_HEADER_BYTES, "RESULT", "message");
    uint32_t client, round, crc, flags, D, T;
    uint64_t weight, examples;
    double loss;
    if ((e = fri_rd_u32(&rd, &client, "client")) || (e = fri_rd_u32(&rd, &round, "round")) ||
        (e = fri_rd_u32(&rd, &crc, "config CRC")) || (e = fri_rd_u32(&rd, &flags, "flags")) ||
        (e = fri_rd_u64(&rd, &weight, "weight")) || (e = fri_rd_u64(&rd, &examples, "examples")) ||
        (e = fri_rd_f64(&rd, &loss, "loss")) || (e = fri_rd_u32(&rd, &D, "dense length")) ||
        (e = fri_rd_u32(&rd, &T, "table count")))
        return e;
    if ((flags & ~(FR_RESULT_Q8 | FR_RESULT_Q16 | FR_RESULT_TOPK)) || (flags & FR_RESULT_Q8 && flags & FR_RESULT_Q16) ||
        !flags)
        return fri_fail(FR_ERR_FORMAT, "RESULT: flags 0x%x, expected a compression (2 q8 or 4 q16, and/or 8 top-k)",
                        flags);
    const uint32_t mode = flags & FR_RESULT_Q8 ? FR_COMPRESS_Q8 : flags & FR_RESULT_Q16 ? FR_COMPRESS_Q16 : 0;
    if (!(loss >= 0) || !isfinite(loss))
        return fri_fail(FR_ERR_FORMAT, "RESULT: loss sum %g, expected a finite value >= 0", loss);
    if (D != s->dense_len) return fri_fail(FR_ERR_FORMAT, "RESULT: dense length %u, expected %u", D, s->dense_len);
    if (T != s->n_tables) return fri_fail(FR_ERR_FORMAT, "RESULT: %u tables, expected %u", T, s->n_tables);
    if ((e = fri_result_reset(r, D, T, s->widths))) return e;
    r->client = client;
    r->round = round;
    r->config_crc = crc;
    r->flags = flags;
    r->weight = weight;
    r->examples = examples;
    r->loss_sum = loss;
    const uint8_t *p;
    uint32_t k = D;
    if (flags & FR_RESULT_TOPK) {
        if ((e = fri_rd_u32(&rd, &k, "top-k count"))) return e;
        if (k > D) return fri_fail(FR_ERR_FORMAT, "RESULT: top %u of %u dense values", k, D);
        if ((e = fri_rd_bytes(&rd, &p, 4 * (size_t)k, "top-k indices"))) return e;
        for (uint32_t j = 0; j < k; j++) {
            uint32_t id = fri_get_u32(p + 4 * (size_t)j);
            if (id >= D || (j && id <= fri_get_u32(p + 4 * (size_t)(j - 1))))
                return fri_fail(FR_ERR_FORMAT, "RESULT: top-k index %u at %u, expected increasing indices below %u", id,
                                j, D);
        }
    }
    const uint8_t *ix = flags & FR_RESULT_TOPK ? p : NULL;
    size_t nb = fri_q_bytes(mode, k, FR_COMPRESS_BLOCK);
    if ((e = fri_rd_bytes(&rd, &p, nb, "dense values"))) return e;
    if (D) memset(r->dense, 0, (size_t)D * sizeof *r->dense);
    if ((e = get_values(r->dense, p, k, FR_COMPRESS_BLOCK, mode))) return e;
    if (ix) /* scatter from the back: index j goes to idx[j] >= j, never over an unread one */
        for (uint32_t j = k; j-- > 0;) {
            int64_t v = r->dense[j];
            r->dense[j] = 0;
            r->dense[fri_get_u32(ix + 4 * (size_t)j)] = v;
        }
    for (uint32_t t = 0; t < T; t++) {
        uint32_t width, count;
        if ((e = fri_result_table_ids(&rd, s, t, mode, &width, &count, &p))) return e;
        size_t row = fri_q_bytes(mode, width, width);
        if ((e = fri_result_table_resize(r, t, count))) return e;
        fr_result_table *tb = &r->tables[t];
        for (uint32_t i = 0; i < count; i++) tb->ids[i] = fri_get_u32(p + (size_t)i * 4);
        if ((e = fri_rd_bytes(&rd, &p, (size_t)count * row, "row values"))) return e;
        for (uint32_t i = 0; i < count; i++)
            if ((e = get_values(tb->values + (size_t)i * width, p + (size_t)i * row, width, width, mode))) return e;
    }
    return fri_rd_end(&rd, "the last table");
}

/* ------------------------------------------------------------------ the TASK's parameters */

size_t fri_task_q_bytes(const fr_model *g, uint32_t mode) {
    size_t n = 0;
    for (int t = 0; t < fr_model_n_tensors(g); t++) {
        const fr_tensor *tt = fr_model_tensor(g, t);
        if (tt->kind == FR_TENSOR_USER_TABLE) continue;
        if (tt->kind == FR_TENSOR_ITEM_TABLE) n += (size_t)tt->rows * fri_q_bytes(mode, tt->cols, tt->cols);
        else n += fri_q_bytes(mode, (size_t)tt->rows * tt->cols, FR_COMPRESS_BLOCK);
    }
    return n;
}

fr_err fri_task_q_encode(uint8_t *out, const fr_model *g, uint32_t mode, uint64_t seed, uint32_t round) {
    fr_rng rng;
    fr_rng_init(&rng, seed, round, 0, FR_PURPOSE_COMPRESS_DOWN);
    const float *w = fr_model_params_const(g);
    for (int t = 0; t < fr_model_n_tensors(g); t++) {
        const fr_tensor *tt = fr_model_tensor(g, t);
        if (tt->kind == FR_TENSOR_USER_TABLE) continue;
        size_t len = (size_t)tt->rows * tt->cols, block = tt->kind == FR_TENSOR_ITEM_TABLE ? tt->cols : FR_COMPRESS_BLOCK;
        for (size_t at = 0; at < len; at += block) {
            size_t m = len - at < block ? len - at : block;
            fr_err e = fri_q_encode_float(out, w + tt->offset + at, m, mode, &rng);
            if (e) return e;
            out += 4 + m * qb(mode);
        }
    }
    return FR_OK;
}

fr_err fri_task_q_decode(fr_model *g, const uint8_t *p, uint32_t mode) {
    float *w = fr_model_params(g);
    for (int t = 0; t < fr_model_n_tensors(g); t++) {
        const fr_tensor *tt = fr_model_tensor(g, t);
        if (tt->kind == FR_TENSOR_USER_TABLE) continue;
        size_t len = (size_t)tt->rows * tt->cols, block = tt->kind == FR_TENSOR_ITEM_TABLE ? tt->cols : FR_COMPRESS_BLOCK;
        for (size_t at = 0; at < len; at += block) {
            size_t m = len - at < block ? len - at : block;
            fr_err e = fri_q_decode_float(w + tt->offset + at, p, m, mode);
            if (e) return e;
            p += 4 + m * qb(mode);
        }
    }
    return FR_OK;
}
