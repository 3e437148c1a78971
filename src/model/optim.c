/* Optimizers over the parameter slab: SGD (momentum), Adam and Adagrad with PyTorch's
 * update rules, in a dense mode (every parameter, as torch.optim) or a sparse-row mode
 * (embedding tables: only rows touched this step, lazily, as torch.optim.SparseAdam).
 * Invariants: the moments are in slab layout; the step count is one per fr_optim_step
 * (bias correction uses it in both modes, as SparseAdam does). */
#include <float.h>
#include <math.h>
#include <string.h>

#include "core/core.h"
#include "model/model_internal.h"

/* Scalars of the update rules, computed once per step. */
typedef struct step_consts {
    float lr, wd, mom, b1, b2, eps;
    float step_size;   /* adam: lr / (1 - b1^t) */
    float inv_bc2_sqrt;/* adam: 1 / sqrt(1 - b2^t) */
} step_consts;

struct fr_optim {
    fr_optim_config cfg;                /* as created */
    size_t n_params;                    /* slab length */
    int n_tensors;                      /* as the model */
    fr_tensor t[FR_MODEL_MAX_TENSORS];  /* the model's tensor table */
    float *m1;                          /* [n_params] momentum / Adam first moment, or NULL */
    float *m2;                          /* [n_params] Adam second moment / Adagrad sum, or NULL */
    uint64_t step;                      /* steps since creation or reset */
    step_consts k;                      /* of the current step (fri_optim_step_begin) */
    /* coasting tables, u = 1..tab_cap (index u; entry 0 unused), lr-free */
    double *bc1;                        /* adam: 1 - b1^u, as consts_of computes it */
    double *sbc2;                       /* adam: sqrt(1 - b2^u) */
    float *ibf;                         /* adam: (float)(1 / sqrt(1 - b2^u)), the step's inv_bc2_sqrt */
    uint64_t tab_cap;                   /* steps the tables cover */
};

void fr_optim_config_default(fr_optim_config *cfg, fr_optim_kind kind) {
    memset(cfg, 0, sizeof *cfg);
    cfg->kind = kind;
    cfg->lr = kind == FR_OPTIM_ADAM ? 0.001f : kind == FR_OPTIM_SGD ? 0.1f : 0.01f;
    cfg->beta1 = 0.9f;
    cfg->beta2 = 0.999f;
    cfg->eps = kind == FR_OPTIM_ADAGRAD ? 1e-10f : 1e-8f;
}

const char *fr_optim_kind_name(fr_optim_kind kind) {
    switch (kind) {
    case FR_OPTIM_SGD: return "sgd";
    case FR_OPTIM_ADAM: return "adam";
    case FR_OPTIM_ADAGRAD: return "adagrad";
    }
    return "?";
}

fr_err fr_optim_kind_parse(const char *name, fr_optim_kind *out) {
    for (int k = FR_OPTIM_SGD; k <= FR_OPTIM_ADAGRAD; k++)
        if (name && strcmp(name, fr_optim_kind_name((fr_optim_kind)k)) == 0) {
            *out = (fr_optim_kind)k;
            return FR_OK;
        }
    return fri_fail(FR_ERR_INVALID, "unknown optimizer '%s': expected sgd, adam or adagrad",
                    name ? name : "(null)");
}

fr_err fr_optim_config_check(const fr_optim_config *c) {
    if (!c) return fri_fail(FR_ERR_INVALID, "optimizer config is NULL");
    if (c->kind < FR_OPTIM_SGD || c->kind > FR_OPTIM_ADAGRAD)
        return fri_fail(FR_ERR_INVALID, "optimizer kind %d is not sgd, adam or adagrad", (int)c->kind);
    const char *k = fr_optim_kind_name(c->kind);
    if (!(c->lr > 0.0f) || !isfinite(c->lr))
        return fri_fail(FR_ERR_INVALID, "%s: lr %g: expected a finite value > 0", k, (double)c->lr);
    if (!(c->momentum >= 0.0f && c->momentum < 1.0f))
        return fri_fail(FR_ERR_INVALID, "%s: momentum %g: expected 0 <= momentum < 1", k, (double)c->momentum);
    if (c->kind == FR_OPTIM_ADAM && !(c->beta1 >= 0.0f && c->beta1 < 1.0f && c->beta2 >= 0.0f && c->beta2 < 1.0f))
        return fri_fail(FR_ERR_INVALID, "adam: betas (%g, %g): expected each in [0, 1)", (double)c->beta1,
                        (double)c->beta2);
    if (c->kind != FR_OPTIM_SGD && !(c->eps > 0.0f))
        return fri_fail(FR_ERR_INVALID, "%s: eps %g: expected > 0", k, (double)c->eps);
    if (!(c->weight_decay >= 0.0f) || !isfinite(c->weight_decay))
        return fri_fail(FR_ERR_INVALID, "%s: weight_decay %g: expected >= 0", k, (double)c->weight_decay);
    return FR_OK;
}

fr_err fr_optim_create(fr_optim **out, const fr_model *m, const fr_optim_config *cfg) {
    *out = NULL;
    fr_err e = fr_optim_config_check(cfg);
    if (e) return e;
    fr_optim *o = fri_calloc(1, sizeof *o);
    if (!o) return FR_ERR_NOMEM;
    o->cfg = *cfg;
    o->n_params = m->n_params;
    o->n_tensors = m->n_tensors;
    memcpy(o->t, m->t, sizeof o->t);
    size_t bytes = (m->n_params ? m->n_params : 1) * sizeof(float);
    int need1 = cfg->kind == FR_OPTIM_ADAM || (cfg->kind == FR_OPTIM_SGD && cfg->momentum > 0.0f);
    int need2 = cfg->kind == FR_OPTIM_ADAM || cfg->kind == FR_OPTIM_ADAGRAD;
    if ((need1 && !(o->m1 = fri_aligned_alloc(bytes))) || (need2 && !(o->m2 = fri_aligned_alloc(bytes)))) {
        fr_optim_free(o);
        return FR_ERR_NOMEM;
    }
    fr_optim_reset(o);
    *out = o;
    return FR_OK;
}

void fr_optim_free(fr_optim *o) {
    if (!o) return;
    fri_free(o->bc1);
    fri_free(o->sbc2);
    fri_free(o->ibf);
    fri_free_aligned(o->m1);
    fri_free_aligned(o->m2);
    fri_free(o);
}

void fr_optim_reset(fr_optim *o) {
    if (o->m1) memset(o->m1, 0, o->n_params * sizeof(float));
    if (o->m2) memset(o->m2, 0, o->n_params * sizeof(float));
    o->step = 0;
}

uint64_t fr_optim_steps(const fr_optim *o) { return o->step; }

/* gcc will not vectorise sqrtf without -fno-math-errno (it keeps the errno call), and a
 * function attribute cannot turn that flag off, so the square roots of the Adam and
 * Adagrad loops use SSE directly where available (4 lanes; a scalar tail). The result
 * is identical: sqrtps and sqrtss are both correctly rounded. */
#if defined(__SSE2__)
#include <emmintrin.h>
#define FR_HAVE_SSE 1
#else
#define FR_HAVE_SSE 0
#endif
/* On x86-64 with gcc or clang an AVX copy of the Adam loop is chosen at run time (the
 * library is built for baseline x86-64), doubling the lanes. No FMA, and C11 mode keeps
 * gcc from contracting, so every path gives bit-identical results (the hybrid models' fast
 * Adagrad below is the exception: an estimate, held to the rule within its error). */
#if FR_HAVE_SSE && defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define FR_HAVE_AVX_DISPATCH 1
#else
#define FR_HAVE_AVX_DISPATCH 0
#endif


static void sgd_range(float *restrict p, const float *restrict g, size_t n, const step_consts *k) {
    float lr = k->lr, wd = k->wd;
    for (size_t i = 0; i < n; i++) p[i] -= lr * (g[i] + wd * p[i]);
}

static void sgdm_range(float *restrict p, const float *restrict g, float *restrict buf, size_t n,
                       const step_consts *k) {
    float lr = k->lr, wd = k->wd, mom = k->mom;
    for (size_t i = 0; i < n; i++) {
        buf[i] = mom * buf[i] + (g[i] + wd * p[i]);
        p[i] -= lr * buf[i];
    }
}

#if FR_HAVE_AVX_DISPATCH
__attribute__((target("avx"))) static size_t adam_avx(float *restrict p, const float *restrict g,
                                                      float *restrict m1, float *restrict m2, size_t n,
                                                      const step_consts *k) {
    const __m256 vb1 = _mm256_set1_ps(k->b1), vb2 = _mm256_set1_ps(k->b2),
                 vc1 = _mm256_set1_ps(1.0f - k->b1), vc2 = _mm256_set1_ps(1.0f - k->b2),
                 vwd = _mm256_set1_ps(k->wd), veps = _mm256_set1_ps(k->eps),
                 vss = _mm256_set1_ps(k->step_size), vib = _mm256_set1_ps(k->inv_bc2_sqrt);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 vp = _mm256_loadu_ps(p + i);
        __m256 gi = _mm256_add_ps(_mm256_loadu_ps(g + i), _mm256_mul_ps(vwd, vp));
        __m256 a = _mm256_add_ps(_mm256_mul_ps(vb1, _mm256_loadu_ps(m1 + i)), _mm256_mul_ps(vc1, gi));
        __m256 v = _mm256_add_ps(_mm256_mul_ps(vb2, _mm256_loadu_ps(m2 + i)),
                                 _mm256_mul_ps(vc2, _mm256_mul_ps(gi, gi)));
        _mm256_storeu_ps(m1 + i, a);
        _mm256_storeu_ps(m2 + i, v);
        __m256 den = _mm256_add_ps(_mm256_mul_ps(_mm256_sqrt_ps(v), vib), veps);
        _mm256_storeu_ps(p + i, _mm256_sub_ps(vp, _mm256_div_ps(_mm256_mul_ps(vss, a), den)));
    }
    return i;
}
static int have_avx(void) { return __builtin_cpu_supports("avx"); }
/* the fast Adagrad's copies (fused multiply-adds) */
static int have_avx_fma(void) { return __builtin_cpu_supports("avx") && __builtin_cpu_supports("fma"); }
#endif

static void adam_range(float *restrict p, const float *restrict g, float *restrict m1,
                       float *restrict m2, size_t n, const step_consts *k) {
    float b1 = k->b1, b2 = k->b2, wd = k->wd, eps = k->eps, ss = k->step_size, ib = k->inv_bc2_sqrt;
    size_t i = 0;
#if FR_HAVE_AVX_DISPATCH
    if (n >= 8 && have_avx()) i = adam_avx(p, g, m1, m2, n, k);
#endif
#if FR_HAVE_SSE
    const __m128 vb1 = _mm_set1_ps(b1), vb2 = _mm_set1_ps(b2), vc1 = _mm_set1_ps(1.0f - b1),
                 vc2 = _mm_set1_ps(1.0f - b2), vwd = _mm_set1_ps(wd), veps = _mm_set1_ps(eps),
                 vss = _mm_set1_ps(ss), vib = _mm_set1_ps(ib);
    for (; i + 4 <= n; i += 4) {
        __m128 vp = _mm_loadu_ps(p + i);
        __m128 gi = _mm_add_ps(_mm_loadu_ps(g + i), _mm_mul_ps(vwd, vp));
        __m128 a = _mm_add_ps(_mm_mul_ps(vb1, _mm_loadu_ps(m1 + i)), _mm_mul_ps(vc1, gi));
        __m128 v = _mm_add_ps(_mm_mul_ps(vb2, _mm_loadu_ps(m2 + i)), _mm_mul_ps(vc2, _mm_mul_ps(gi, gi)));
        _mm_storeu_ps(m1 + i, a);
        _mm_storeu_ps(m2 + i, v);
        __m128 den = _mm_add_ps(_mm_mul_ps(_mm_sqrt_ps(v), vib), veps);
        _mm_storeu_ps(p + i, _mm_sub_ps(vp, _mm_div_ps(_mm_mul_ps(vss, a), den)));
    }
#endif
    for (; i < n; i++) {
        float gi = g[i] + wd * p[i];
        m1[i] = b1 * m1[i] + (1.0f - b1) * gi;
        m2[i] = b2 * m2[i] + (1.0f - b2) * (gi * gi); /* the vector paths' order */
        p[i] -= ss * m1[i] / (sqrtf(m2[i]) * ib + eps);
    }
}

#if FR_HAVE_AVX_DISPATCH
__attribute__((target("avx"))) static size_t adagrad_avx(float *restrict p, const float *restrict g,
                                                         float *restrict sum, size_t n, const step_consts *k) {
    const __m256 vlr = _mm256_set1_ps(k->lr), vwd = _mm256_set1_ps(k->wd), veps = _mm256_set1_ps(k->eps);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 vp = _mm256_loadu_ps(p + i);
        __m256 gi = _mm256_add_ps(_mm256_loadu_ps(g + i), _mm256_mul_ps(vwd, vp));
        __m256 v = _mm256_add_ps(_mm256_loadu_ps(sum + i), _mm256_mul_ps(gi, gi));
        _mm256_storeu_ps(sum + i, v);
        __m256 den = _mm256_add_ps(_mm256_sqrt_ps(v), veps);
        _mm256_storeu_ps(p + i, _mm256_sub_ps(vp, _mm256_div_ps(_mm256_mul_ps(vlr, gi), den)));
    }
    return i;
}
#endif

static void adagrad_range(float *restrict p, const float *restrict g, float *restrict sum, size_t n,
                          const step_consts *k) {
    float lr = k->lr, wd = k->wd, eps = k->eps;
    size_t i = 0;
#if FR_HAVE_AVX_DISPATCH
    if (n >= 8 && have_avx()) i = adagrad_avx(p, g, sum, n, k);
#endif
#if FR_HAVE_SSE
    const __m128 vlr = _mm_set1_ps(lr), vwd = _mm_set1_ps(wd), veps = _mm_set1_ps(eps);
    for (; i + 4 <= n; i += 4) {
        __m128 vp = _mm_loadu_ps(p + i);
        __m128 gi = _mm_add_ps(_mm_loadu_ps(g + i), _mm_mul_ps(vwd, vp));
        __m128 v = _mm_add_ps(_mm_loadu_ps(sum + i), _mm_mul_ps(gi, gi));
        _mm_storeu_ps(sum + i, v);
        __m128 den = _mm_add_ps(_mm_sqrt_ps(v), veps);
        _mm_storeu_ps(p + i, _mm_sub_ps(vp, _mm_div_ps(_mm_mul_ps(vlr, gi), den)));
    }
#endif
    for (; i < n; i++) {
        float gi = g[i] + wd * p[i];
        sum[i] += gi * gi;
        p[i] -= lr * gi / (sqrtf(sum[i]) + eps);
    }
}

/* One range: params[off, off+n) with gradient ga[0, n) (the gradient at off). */
static void update(const fr_optim *o, float *p, const float *ga, size_t off, size_t n,
                   const step_consts *k) {
    switch (o->cfg.kind) {
    case FR_OPTIM_SGD:
        if (o->m1) sgdm_range(p + off, ga, o->m1 + off, n, k);
        else sgd_range(p + off, ga, n, k);
        break;
    case FR_OPTIM_ADAM: adam_range(p + off, ga, o->m1 + off, o->m2 + off, n, k); break;
    case FR_OPTIM_ADAGRAD: adagrad_range(p + off, ga, o->m2 + off, n, k); break;
    }
}

static step_consts consts_of(const fr_optim *o) {
    step_consts k = {o->cfg.lr, o->cfg.weight_decay, o->cfg.momentum, o->cfg.beta1, o->cfg.beta2,
                     o->cfg.eps, 0.0f, 0.0f};
    if (o->cfg.kind == FR_OPTIM_ADAM) {
        double bc1 = 1.0 - pow((double)o->cfg.beta1, (double)o->step);
        double bc2 = 1.0 - pow((double)o->cfg.beta2, (double)o->step);
        k.step_size = (float)((double)o->cfg.lr / bc1);
        k.inv_bc2_sqrt = (float)(1.0 / sqrt(bc2));
    }
    return k;
}

fr_err fri_optim_step_begin(fr_optim *o, const fr_model *m, const fr_grad *g) {
    if (o->n_params != m->n_params || !fri_grad_matches(g, m))
        return fri_fail(FR_ERR_INVALID, "optimizer step: optimizer (%zu params), model (%zu) and "
                        "gradient (%zu) differ in shape", o->n_params, m->n_params, g->n_params);
    o->step++;
    o->k = consts_of(o);
    return FR_OK;
}

void fri_optim_step_range(const fr_optim *o, fr_model *m, const float *g, size_t off, size_t n) {
    update(o, m->params, g, off, n, &o->k);
}

void fri_optim_step_rows(const fr_optim *o, fr_model *m, const float *g, size_t off, uint32_t cols,
                         const uint32_t *rows, uint32_t n) {
    if (cols == 1 && o->cfg.kind == FR_OPTIM_ADAGRAD) { /* adagrad_range's scalar loop, a value a row */
        float *p = m->params + off, *sum = o->m2 + off;
        const float *gr = g + off;
        const float lr = o->k.lr, wd = o->k.wd, eps = o->k.eps;
        for (uint32_t x = 0; x < n; x++) {
            const uint32_t r = rows[x];
            float gi = gr[r] + wd * p[r];
            sum[r] += gi * gi;
            p[r] -= lr * gi / (sqrtf(sum[r]) + eps);
        }
        return;
    }
    for (uint32_t x = 0; x < n; x++) {
        size_t at = off + (size_t)rows[x] * cols;
        update(o, m->params, g + at, at, cols, &o->k);
    }
}

#if FR_HAVE_AVX_DISPATCH
/* adagrad_avx's operations on whole rows of cols floats (a multiple of 8) at p, g, sum,
 * each row's gradient zeroed after its step: one pass, no dispatch a row. */
__attribute__((target("avx"))) static void adagrad_rows_avx(float *restrict p, float *restrict g,
                                                            float *restrict sum, size_t cols,
                                                            const uint32_t *rows, uint32_t n,
                                                            const step_consts *k) {
    const __m256 vlr = _mm256_set1_ps(k->lr), vwd = _mm256_set1_ps(k->wd), veps = _mm256_set1_ps(k->eps),
                 zero = _mm256_setzero_ps();
    for (uint32_t x = 0; x < n; x++) {
        const size_t at = (size_t)rows[x] * cols;
        float *pr = p + at, *gr = g + at, *sr = sum + at;
        for (size_t i = 0; i < cols; i += 8) {
            __m256 vp = _mm256_loadu_ps(pr + i);
            __m256 gi = _mm256_add_ps(_mm256_loadu_ps(gr + i), _mm256_mul_ps(vwd, vp));
            __m256 v = _mm256_add_ps(_mm256_loadu_ps(sr + i), _mm256_mul_ps(gi, gi));
            _mm256_storeu_ps(sr + i, v);
            __m256 den = _mm256_add_ps(_mm256_sqrt_ps(v), veps);
            _mm256_storeu_ps(pr + i, _mm256_sub_ps(vp, _mm256_div_ps(_mm256_mul_ps(vlr, gi), den)));
            _mm256_storeu_ps(gr + i, zero);
        }
    }
}
#endif

void fri_optim_step_rows_clear(const fr_optim *o, fr_model *m, float *g, size_t off, uint32_t cols,
                               const uint32_t *rows, uint32_t n) {
#if FR_HAVE_AVX_DISPATCH
    if (o->cfg.kind == FR_OPTIM_ADAGRAD && cols % 8 == 0 && have_avx()) {
        adagrad_rows_avx(m->params + off, g + off, o->m2 + off, cols, rows, n, &o->k);
        return;
    }
#endif
    fri_optim_step_rows(o, m, g, off, cols, rows, n);
    float *d = g + off;
    for (uint32_t x = 0; x < n; x++) {
        if (cols == 1) d[rows[x]] = 0.0f;
        else memset(d + (size_t)rows[x] * cols, 0, cols * sizeof *d);
    }
}

#if FR_HAVE_AVX_DISPATCH
/* Adagrad's step with 1 / (sqrt(v) + eps) as the hardware's estimate rsqrt(max(v, eps^2)),
 * no Newton step (relative error at most 1.5 x 2^-12 where v >> eps^2: Adagrad's rate
 * needs no more; where v is 0 so is the gradient, hence the step), and fused
 * multiply-adds: no square root or division. Rows of cols floats (a multiple of 8), each
 * row's gradient zeroed after its step. These copies need AVX and FMA (have_avx_fma). */
/* One float's step: its gradient g (weight decay not added yet), its parameter and its
 * accumulator updated in place. */
static inline void rsqrt_step1(float *restrict p, float *restrict sum, float g, float lr, float wd, float fl) {
    const float gi = g + wd * *p, v = *sum + gi * gi, vv = v > fl ? v : fl;
    *sum = v;
    const float y = _mm_cvtss_f32(_mm_rsqrt_ss(_mm_set_ss(vv)));
    *p -= (lr * gi) * y;
}

/* The same on eight floats. */
typedef struct rsqrt8 {
    __m256 lr, wd, floor;
    int wd0; /* no weight decay: g + 0 p is g, the same values, skipped */
} rsqrt8;

__attribute__((target("avx,fma"))) static inline void rsqrt8_init(rsqrt8 *c, const step_consts *k) {
    c->lr = _mm256_set1_ps(k->lr);
    c->wd = _mm256_set1_ps(k->wd);
    c->floor = _mm256_set1_ps(k->eps * k->eps);
    c->wd0 = k->wd == 0.0f;
}

__attribute__((target("avx,fma"))) static inline __attribute__((always_inline)) void
rsqrt_step8w(float *restrict p, float *restrict sum, __m256 gi, const rsqrt8 *c, int wd0) {
    __m256 vp = _mm256_loadu_ps(p);
    if (wd0 == 0) gi = _mm256_fmadd_ps(c->wd, vp, gi);
    const __m256 v = _mm256_fmadd_ps(gi, gi, _mm256_loadu_ps(sum));
    _mm256_storeu_ps(sum, v);
    const __m256 y = _mm256_rsqrt_ps(_mm256_max_ps(v, c->floor));
    _mm256_storeu_ps(p, _mm256_fnmadd_ps(_mm256_mul_ps(c->lr, gi), y, vp));
}

/* (rsqrt_step8w with the flag a loop's callers test once: see the gather and range loops) */
__attribute__((target("avx,fma"))) static inline void rsqrt_step8(float *restrict p, float *restrict sum, __m256 gi,
                                                             const rsqrt8 *c) {
    rsqrt_step8w(p, sum, gi, c, c->wd0);
}

__attribute__((target("avx,fma"))) static void adagrad_rows_rsqrt_avx(float *restrict p, float *restrict g,
                                                                 float *restrict sum, size_t cols,
                                                                 const uint32_t *rows, uint32_t n,
                                                                 const step_consts *k) {
    rsqrt8 c;
    rsqrt8_init(&c, k);
    const __m256 zero = _mm256_setzero_ps();
    for (uint32_t x = 0; x < n; x++) {
        const size_t at = (size_t)rows[x] * cols;
        float *pr = p + at, *gr = g + at, *sr = sum + at;
        if (x + 4 < n) { /* the rows are scattered: ask for a later row's lines now */
            const size_t an = (size_t)rows[x + 4] * cols;
            for (size_t i = 0; i < cols; i += 16) {
                _mm_prefetch((const char *)(p + an + i), _MM_HINT_T0);
                _mm_prefetch((const char *)(g + an + i), _MM_HINT_T0);
                _mm_prefetch((const char *)(sum + an + i), _MM_HINT_T0);
            }
        }
        for (size_t i = 0; i < cols; i += 8) {
            rsqrt_step8(pr + i, sr + i, _mm256_loadu_ps(gr + i), &c);
            _mm256_storeu_ps(gr + i, zero);
        }
    }
}

/* The same for rows of one float (biases). */
static void adagrad_rows1_rsqrt(float *restrict p, float *restrict g, float *restrict sum, const uint32_t *rows,
                                uint32_t n, const step_consts *k) {
    const float lr = k->lr, wd = k->wd, fl = k->eps * k->eps;
    for (uint32_t x = 0; x < n; x++) {
        const uint32_t r = rows[x];
        if (x + 4 < n) {
            _mm_prefetch((const char *)(p + rows[x + 4]), _MM_HINT_T0);
            _mm_prefetch((const char *)(g + rows[x + 4]), _MM_HINT_T0);
            _mm_prefetch((const char *)(sum + rows[x + 4]), _MM_HINT_T0);
        }
        rsqrt_step1(p + r, sum + r, g[r], lr, wd, fl);
        g[r] = 0.0f;
    }
}

/* The same on n contiguous floats (whole tensors): eight at a time, the rest as a row of one. */
__attribute__((target("avx,fma"))) static inline __attribute__((always_inline)) size_t
adagrad_range8(float *restrict p, float *restrict g, float *restrict sum, size_t n, const rsqrt8 *c, int wd0) {
    const __m256 zero = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 gv = _mm256_loadu_ps(g + i);
        /* eight gradients of +0 (every bit zero) and no weight decay: the step would keep every
         * value (v + 0 * 0 is v, p - lr 0 y is p) and g is zero already, so it is skipped (a
         * vocabulary stepped whole has many rows no example of the minibatch touched) */
        if (wd0 && _mm256_testz_si256(_mm256_castps_si256(gv), _mm256_castps_si256(gv))) continue;
        rsqrt_step8w(p + i, sum + i, gv, c, wd0);
        _mm256_storeu_ps(g + i, zero);
    }
    return i;
}

__attribute__((target("avx,fma"))) static void adagrad_range_rsqrt_avx(float *restrict p, float *restrict g,
                                                                  float *restrict sum, size_t n, const step_consts *k) {
    rsqrt8 c;
    rsqrt8_init(&c, k);
    size_t i = c.wd0 ? adagrad_range8(p, g, sum, n, &c, 1) : adagrad_range8(p, g, sum, n, &c, 0); /* wd0 a constant */
    const float lr = k->lr, wd = k->wd, fl = k->eps * k->eps;
    for (; i < n; i++) {
        rsqrt_step1(p + i, sum + i, g[i], lr, wd, fl);
        g[i] = 0.0f;
    }
}

/* The rsqrt rule on rows rows[x] of cols floats (1 or a multiple of 8) whose gradients are
 * packed in gc ([n x cols], row x the gradient of rows[x]; left as it is). */
__attribute__((target("avx,fma"))) static void adagrad_gather_rsqrt_avx(float *restrict p, float *restrict sum,
                                                                   size_t cols, const uint32_t *rows, uint32_t n,
                                                                   const float *restrict gc, const step_consts *k) {
    rsqrt8 c;
    rsqrt8_init(&c, k);
    const float lr = k->lr, wd = k->wd, fl = k->eps * k->eps;
    for (uint32_t x = 0; x < n; x++) {
        const size_t at = (size_t)rows[x] * cols;
        float *pr = p + at, *sr = sum + at;
        const float *gr = gc + (size_t)x * cols;
        if (x + 4 < n) { /* the rows are scattered: ask for a later row's lines now */
            const size_t an = (size_t)rows[x + 4] * cols;
            for (size_t i = 0; i < cols; i += 16) {
                _mm_prefetch((const char *)(p + an + i), _MM_HINT_T0);
                _mm_prefetch((const char *)(sum + an + i), _MM_HINT_T0);
            }
        }
        if (cols == 1) rsqrt_step1(pr, sr, gr[0], lr, wd, fl);
        else
            for (size_t i = 0; i < cols; i += 8) rsqrt_step8(pr + i, sr + i, _mm256_loadu_ps(gr + i), &c);
    }
}

/* The adagrad_gather2 steps' later row rn asked for now (the rows are scattered): its cols
 * floats of p and sum, and its one float of p1 and sum1. */
static inline void prefetch_gather2_row(const float *p, const float *sum, const float *p1, const float *sum1,
                                        uint32_t rn, size_t cols) {
    const size_t an = (size_t)rn * cols;
    for (size_t i = 0; i < cols; i += 16) {
        _mm_prefetch((const char *)(p + an + i), _MM_HINT_T0);
        _mm_prefetch((const char *)(sum + an + i), _MM_HINT_T0);
    }
    _mm_prefetch((const char *)(p1 + rn), _MM_HINT_T0);
    _mm_prefetch((const char *)(sum1 + rn), _MM_HINT_T0);
}

/* adagrad_gather_rsqrt_avx on rows of cols floats (a multiple of 8) and, row by row, on the
 * rows' one-float tensor (p1, sum1, gradients gc1). */
__attribute__((target("avx,fma"))) static void adagrad_gather2_rsqrt_avx(float *restrict p, float *restrict sum,
                                                                    size_t cols, float *restrict p1,
                                                                    float *restrict sum1, const uint32_t *rows,
                                                                    uint32_t n, const float *restrict gc,
                                                                    const float *restrict gc1, const step_consts *k) {
    rsqrt8 c;
    rsqrt8_init(&c, k);
    const float lr = k->lr, wd = k->wd, fl = k->eps * k->eps;
    for (uint32_t x = 0; x < n; x++) {
        const uint32_t r = rows[x];
        const size_t at = (size_t)r * cols;
        float *pr = p + at, *sr = sum + at;
        const float *gr = gc + (size_t)x * cols;
        if (x + 4 < n) prefetch_gather2_row(p, sum, p1, sum1, rows[x + 4], cols); /* the rows are scattered */
        if (c.wd0) /* (a loop invariant) */
            for (size_t i = 0; i < cols; i += 8) rsqrt_step8w(pr + i, sr + i, _mm256_loadu_ps(gr + i), &c, 1);
        else
            for (size_t i = 0; i < cols; i += 8) rsqrt_step8w(pr + i, sr + i, _mm256_loadu_ps(gr + i), &c, 0);
        rsqrt_step1(p1 + r, sum1 + r, gc1[x], lr, wd, fl);
    }
}

/* adagrad_gather2_rsqrt_avx's steps (the same bits) at cols 32, each row's change also
 * added to its mirror: hm's row (IEEE halves: h = half(float(h) + (new - old)), rounded to
 * nearest even) and bm's float (b += new - old). */
__attribute__((target("avx,fma,f16c"))) static void adagrad_gather2_mirror_avx32(
    float *restrict p, float *restrict sum, float *restrict p1, float *restrict sum1, const uint32_t *rows, uint32_t n,
    const float *restrict gc, const float *restrict gc1, const step_consts *k, uint16_t *restrict hm,
    float *restrict bm) {
    enum { cols = 32 };
    rsqrt8 c;
    rsqrt8_init(&c, k);
    const float lr = k->lr, wd = k->wd, fl = k->eps * k->eps;
    for (uint32_t x = 0; x < n; x++) {
        const uint32_t r = rows[x];
        const size_t at = (size_t)r * cols;
        float *pr = p + at, *sr = sum + at;
        uint16_t *hr = hm + at;
        const float *gr = gc + (size_t)x * cols;
        if (x + 4 < n) {
            prefetch_gather2_row(p, sum, p1, sum1, rows[x + 4], cols);
            _mm_prefetch((const char *)(hm + (size_t)rows[x + 4] * cols), _MM_HINT_T0);
        }
        for (size_t i = 0; i < cols; i += 8) {
            const __m256 old = _mm256_loadu_ps(pr + i);
            if (c.wd0) rsqrt_step8w(pr + i, sr + i, _mm256_loadu_ps(gr + i), &c, 1);
            else rsqrt_step8w(pr + i, sr + i, _mm256_loadu_ps(gr + i), &c, 0);
            const __m256 h = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(hr + i)));
            const __m256 nh = _mm256_add_ps(h, _mm256_sub_ps(_mm256_loadu_ps(pr + i), old));
            _mm_storeu_si128((__m128i *)(hr + i), _mm256_cvtps_ph(nh, _MM_FROUND_TO_NEAREST_INT));
        }
        const float b0 = p1[r];
        rsqrt_step1(p1 + r, sum1 + r, gc1[x], lr, wd, fl);
        bm[r] += p1[r] - b0;
    }
}

__attribute__((target("avx,fma"))) static void adagrad_gather2_rsqrt_avx32(float *restrict p, float *restrict sum,
                                                                      float *restrict p1, float *restrict sum1,
                                                                      const uint32_t *rows, uint32_t n,
                                                                      const float *restrict gc,
                                                                      const float *restrict gc1,
                                                                      const step_consts *k) {
    adagrad_gather2_rsqrt_avx(p, sum, 32, p1, sum1, rows, n, gc, gc1, k); /* cols a constant */
}
#endif

bool fri_optim_fast_gather(const fr_optim *o) {
#if FR_HAVE_AVX_DISPATCH
    return o->cfg.kind == FR_OPTIM_ADAGRAD && have_avx_fma();
#else
    (void)o;
    return false;
#endif
}

void fri_optim_step_gather_fast(const fr_optim *o, fr_model *m, size_t off, uint32_t cols, const uint32_t *rows,
                                uint32_t n, const float *gc) {
#if FR_HAVE_AVX_DISPATCH
    if (cols == 1 || cols % 8 == 0) adagrad_gather_rsqrt_avx(m->params + off, o->m2 + off, cols, rows, n, gc, &o->k);
#else
    (void)o; (void)m; (void)off; (void)cols; (void)rows; (void)n; (void)gc;
#endif
}

void fri_optim_step_gather2_fast(const fr_optim *o, fr_model *m, size_t off, uint32_t cols, size_t off1,
                                 const uint32_t *rows, uint32_t n, const float *gc, const float *gc1) {
#if FR_HAVE_AVX_DISPATCH
    if (cols == 32)
        adagrad_gather2_rsqrt_avx32(m->params + off, o->m2 + off, m->params + off1, o->m2 + off1, rows, n, gc, gc1,
                                    &o->k);
    else if (cols % 8 == 0)
        adagrad_gather2_rsqrt_avx(m->params + off, o->m2 + off, cols, m->params + off1, o->m2 + off1, rows, n, gc,
                                  gc1, &o->k);
#else
    (void)o; (void)m; (void)off; (void)cols; (void)off1; (void)rows; (void)n; (void)gc; (void)gc1;
#endif
}

bool fri_optim_step_gather2_mirror_fast(const fr_optim *o, fr_model *m, size_t off, uint32_t cols, size_t off1,
                                        const uint32_t *rows, uint32_t n, const float *gc, const float *gc1,
                                        uint16_t *hm, float *bm) {
#if FR_HAVE_AVX_DISPATCH
    if (cols == 32 && __builtin_cpu_supports("f16c")) {
        adagrad_gather2_mirror_avx32(m->params + off, o->m2 + off, m->params + off1, o->m2 + off1, rows, n, gc, gc1,
                                     &o->k, hm, bm);
        return true;
    }
#endif
    (void)o; (void)m; (void)off; (void)cols; (void)off1; (void)rows; (void)n; (void)gc; (void)gc1; (void)hm; (void)bm;
    return false;
}

bool fri_optim_step_range_clear_fast(const fr_optim *o, fr_model *m, float *g, size_t off, size_t n) {
#if FR_HAVE_AVX_DISPATCH
    if (o->cfg.kind == FR_OPTIM_ADAGRAD && have_avx_fma()) {
        adagrad_range_rsqrt_avx(m->params + off, g + off, o->m2 + off, n, &o->k);
        return true;
    }
#endif
    (void)o; (void)m; (void)g; (void)off; (void)n;
    return false;
}

bool fri_optim_step_rows_clear_fast(const fr_optim *o, fr_model *m, float *g, size_t off, uint32_t cols,
                                    const uint32_t *rows, uint32_t n) {
#if FR_HAVE_AVX_DISPATCH
    if (o->cfg.kind == FR_OPTIM_ADAGRAD && (cols == 1 || cols % 8 == 0) && have_avx_fma()) {
        if (cols == 1) adagrad_rows1_rsqrt(m->params + off, g + off, o->m2 + off, rows, n, &o->k);
        else adagrad_rows_rsqrt_avx(m->params + off, g + off, o->m2 + off, cols, rows, n, &o->k);
        return true;
    }
#endif
    fri_optim_step_rows_clear(o, m, g, off, cols, rows, n);
    return false;
}

void fri_optim_reset_range(fr_optim *o, size_t off, size_t n) {
    if (o->m1) memset(o->m1 + off, 0, n * sizeof(float));
    if (o->m2) memset(o->m2 + off, 0, n * sizeof(float));
    o->step = 0;
}

void fri_optim_moments(fr_optim *o, float **m1, float **m2) {
    *m1 = o->m1;
    *m2 = o->m2;
}

void fri_optim_set_steps(fr_optim *o, uint64_t steps) { o->step = steps; }

bool fri_optim_zero_keeps(const fr_optim *o) {
    if (o->cfg.weight_decay != 0.0f) return false;
    if (o->cfg.kind == FR_OPTIM_SGD) return o->cfg.momentum == 0.0f;
    return o->cfg.kind == FR_OPTIM_ADAGRAD && o->cfg.eps > 0.0f;
}

bool fri_optim_plain_sgd(const fr_optim *o, float *lr) {
    if (o->cfg.kind != FR_OPTIM_SGD || o->cfg.momentum != 0.0f || o->cfg.weight_decay != 0.0f) return false;
    *lr = o->cfg.lr;
    return true;
}

fr_err fr_optim_set_lr(fr_optim *o, float lr) {
    if (!(lr > 0.0f) || !isfinite(lr))
        return fri_fail(FR_ERR_INVALID, "optimizer: lr %g: expected a finite value > 0", (double)lr);
    o->cfg.lr = lr;
    return FR_OK;
}

bool fri_optim_is_dense(const fr_optim *o) { return !o->cfg.sparse_rows; }

fr_err fr_optim_step(fr_optim *o, fr_model *m, const fr_grad *g) {
    if (o->n_params != m->n_params || !fri_grad_matches(g, m))
        return fri_fail(FR_ERR_INVALID, "optimizer step: optimizer (%zu params), model (%zu) and "
                        "gradient (%zu) differ in shape", o->n_params, m->n_params, g->n_params);
    o->step++;
    step_consts k = consts_of(o);
    float *p = m->params;
    if (!o->cfg.sparse_rows) {
        update(o, p, g->g, 0, o->n_params, &k);
        return FR_OK;
    }
    for (int i = 0; i < o->n_tensors; i++) {
        const fr_tensor *t = &o->t[i];
        if (t->kind == FR_TENSOR_DENSE) {
            update(o, p, g->g + t->offset, t->offset, (size_t)t->rows * t->cols, &k);
            continue;
        }
        const fr_rowset *s = &g->rows[i];
        for (uint32_t r = 0; r < s->count; r++) {
            size_t off = t->offset + (size_t)s->rows[r] * t->cols;
            update(o, p, g->g + off, off, t->cols, &k);
        }
    }
    return FR_OK;
}

/* ------------------------------------------------------------------ coasting */

#define COAST_TAB_MAX 65536  /* adam: steps whose bias corrections are tabulated */
#define COAST_TERMS 600       /* adam: series terms; b1^j / b2^(j/2) < 1e-27 beyond */
#define COAST_MAX_X 0.1       /* adam: largest x_j = eps / (b2^(j/2) sqrt(v) / sqrt(bc2(u))) */
#define COAST_ORDER 5         /* adam: series S_0..S_4, relative error <= x^5 / (1 - x) */

/* Bias corrections of step u: from the tables, or computed past them (a kept state's
 * step count can grow without bound; the tables stop at COAST_TAB_MAX). */
static double bc1_at(const fr_optim *o, uint64_t u) {
    return u <= o->tab_cap ? o->bc1[u] : 1.0 - pow((double)o->cfg.beta1, (double)u);
}
static double sbc2_at(const fr_optim *o, uint64_t u) {
    return u <= o->tab_cap ? o->sbc2[u] : sqrt(1.0 - pow((double)o->cfg.beta2, (double)u));
}
static float ibf_at(const fr_optim *o, uint64_t u) {
    return u <= o->tab_cap ? o->ibf[u] : (float)(1.0 / sqrt(1.0 - pow((double)o->cfg.beta2, (double)u)));
}

fr_err fri_optim_coast_reserve(fr_optim *o, uint64_t steps) {
    if (steps > COAST_TAB_MAX) steps = COAST_TAB_MAX;
    if (o->cfg.kind != FR_OPTIM_ADAM || steps <= o->tab_cap) return FR_OK;
    uint64_t cap = o->tab_cap ? o->tab_cap : 256;
    while (cap < steps) cap *= 2;
    if (cap > SIZE_MAX / sizeof(double) - 1) return FR_ERR_NOMEM;
    double *a = fri_realloc(o->bc1, (size_t)(cap + 1) * sizeof *a);
    if (!a) return FR_ERR_NOMEM;
    o->bc1 = a;
    double *b = fri_realloc(o->sbc2, (size_t)(cap + 1) * sizeof *b);
    if (!b) return FR_ERR_NOMEM;
    o->sbc2 = b;
    float *c = fri_realloc(o->ibf, (size_t)(cap + 1) * sizeof *c);
    if (!c) return FR_ERR_NOMEM;
    o->ibf = c;
    for (uint64_t u = o->tab_cap + 1; u <= cap; u++) {
        double bc2 = 1.0 - pow((double)o->cfg.beta2, (double)u);
        o->bc1[u] = 1.0 - pow((double)o->cfg.beta1, (double)u);
        o->sbc2[u] = sqrt(bc2);
        o->ibf[u] = (float)(1.0 / sqrt(bc2));
    }
    o->bc1[0] = o->sbc2[0] = 0.0;
    o->ibf[0] = 0.0f;
    o->tab_cap = cap;
    return FR_OK;
}

void fri_optim_coast_plan(const fr_optim *o, uint64_t from, uint64_t to, fri_coast *c) {
    memset(c, 0, sizeof *c);
    c->from = from;
    c->to = to;
    if (to <= from) return;
    uint64_t k = to - from;
    double lr = o->cfg.lr;
    if (o->cfg.kind == FR_OPTIM_SGD && o->m1) {
        double mom = o->cfg.momentum, mk = pow(mom, (double)k);
        c->s[0] = (float)(lr * mom * (1.0 - mk) / (1.0 - mom));
        c->m1_scale = (float)mk;
        c->moves = true;
        return;
    }
    if (o->cfg.kind != FR_OPTIM_ADAM) return;
    /* term j of S_n: lr b1^j / bc1(u) * (sqrt(bc2(u)) / b2^(j/2))^(n+1) */
    double b1 = o->cfg.beta1, sb2 = sqrt((double)o->cfg.beta2);
    uint64_t J = k < COAST_TERMS ? k : COAST_TERMS;
    double s[COAST_ORDER] = {0}, b1j = 1, ib2j = 1; /* b1^j, b2^(-j/2) */
    for (uint64_t j = 1; j <= J; j++) {
        uint64_t u = from + j;
        b1j *= b1;
        ib2j /= sb2;
        double xu = sbc2_at(o, u) * ib2j, t = lr * b1j / bc1_at(o, u);
        for (int n = 0; n < COAST_ORDER; n++) {
            t *= xu;
            s[n] += t;
        }
    }
    for (int n = 0; n < COAST_ORDER; n++) c->s[n] = (float)s[n];
    /* b1^k and b2^k: the loop's running powers when it ran all k terms */
    c->m1_scale = (float)(J == k ? b1j : pow(b1, (double)k));
    c->m2_scale = (float)(J == k ? 1.0 / (ib2j * ib2j) : pow((double)o->cfg.beta2, (double)k));
    /* x_j = y sqrt(bc2(u)) / b2^(j/2), largest at j = J: x <= COAST_MAX_X needs
     * sqrt(v) >= eps X / COAST_MAX_X */
    double X = sbc2_at(o, from + J) * ib2j;
    double rv = (double)o->cfg.eps * X / COAST_MAX_X;
    c->vmin = (float)(rv * rv);
    if (!(c->vmin > 0)) c->vmin = FLT_MIN;
    c->moves = true;
}

/* The k dense steps of one Adam element with a zero gradient, one by one (the floats of
 * adam_range with g = 0 and no weight decay). */
static void adam_exact_steps(const fr_optim *o, float *p, float *m1, float *m2, uint64_t from, uint64_t to) {
    float b1 = o->cfg.beta1, b2 = o->cfg.beta2, eps = o->cfg.eps;
    float x = *p, a = *m1, v = *m2;
    for (uint64_t u = from + 1; u <= to; u++) {
        float ss = (float)((double)o->cfg.lr / bc1_at(o, u));
        a = b1 * a + (1.0f - b1) * 0.0f;
        v = b2 * v + (1.0f - b2) * 0.0f;
        x -= ss * a / (sqrtf(v) * ibf_at(o, u) + eps);
    }
    *p = x; *m1 = a; *m2 = v;
}

/* One element of the closed form (the vector path does the same float operations). */
static inline void adam_coast1(const fr_optim *o, float *p, float *m1, float *m2, const fri_coast *c) {
    float a = *m1, v = *m2;
    if (a != 0.0f && !(v >= c->vmin)) { /* eps matters (or v underflowed): step by step */
        adam_exact_steps(o, p, m1, m2, c->from, c->to);
        return;
    }
    /* a = 0: p stays (r is finite: v >= vmin > 0 after the max) */
    float r = 1.0f / sqrtf(v > c->vmin ? v : c->vmin), y = o->cfg.eps * r;
    float poly = c->s[0] - y * (c->s[1] - y * (c->s[2] - y * (c->s[3] - y * c->s[4])));
    *p = *p - (a * r) * poly;
    *m1 = a * c->m1_scale;
    *m2 = v * c->m2_scale;
}

#if FR_HAVE_AVX_DISPATCH
/* Eight elements at a time where none needs the exact steps; returns how many were done. */
__attribute__((target("avx"))) static size_t adam_coast_avx(const fr_optim *o, float *restrict p,
                                                            float *restrict m1, float *restrict m2, size_t n,
                                                            const fri_coast *c) {
    const __m256 vmin = _mm256_set1_ps(c->vmin), one = _mm256_set1_ps(1.0f), eps = _mm256_set1_ps(o->cfg.eps),
                 s0 = _mm256_set1_ps(c->s[0]), s1 = _mm256_set1_ps(c->s[1]), s2 = _mm256_set1_ps(c->s[2]),
                 s3 = _mm256_set1_ps(c->s[3]), s4 = _mm256_set1_ps(c->s[4]),
                 k1 = _mm256_set1_ps(c->m1_scale), k2 = _mm256_set1_ps(c->m2_scale), zero = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 a = _mm256_loadu_ps(m1 + i), v = _mm256_loadu_ps(m2 + i);
        /* a != 0 and not v >= vmin: this chunk goes element by element */
        __m256 bad = _mm256_and_ps(_mm256_cmp_ps(a, zero, _CMP_NEQ_UQ), _mm256_cmp_ps(v, vmin, _CMP_NGE_UQ));
        if (_mm256_movemask_ps(bad)) {
            for (size_t q = i; q < i + 8; q++) adam_coast1(o, p + q, m1 + q, m2 + q, c);
            continue;
        }
        __m256 r = _mm256_div_ps(one, _mm256_sqrt_ps(_mm256_max_ps(v, vmin)));
        __m256 y = _mm256_mul_ps(eps, r);
        __m256 poly = _mm256_sub_ps(s3, _mm256_mul_ps(y, s4));
        poly = _mm256_sub_ps(s2, _mm256_mul_ps(y, poly));
        poly = _mm256_sub_ps(s1, _mm256_mul_ps(y, poly));
        poly = _mm256_sub_ps(s0, _mm256_mul_ps(y, poly));
        __m256 vp = _mm256_loadu_ps(p + i);
        _mm256_storeu_ps(p + i, _mm256_sub_ps(vp, _mm256_mul_ps(_mm256_mul_ps(a, r), poly)));
        _mm256_storeu_ps(m1 + i, _mm256_mul_ps(a, k1));
        _mm256_storeu_ps(m2 + i, _mm256_mul_ps(v, k2));
    }
    return i;
}
#endif

void fri_optim_coast_range(const fr_optim *o, fr_model *m, size_t off, size_t n, const fri_coast *c) {
    if (!c->moves) return;
    float *p = m->params + off, *m1 = o->m1 + off;
    if (o->cfg.kind == FR_OPTIM_SGD) {
        for (size_t i = 0; i < n; i++) {
            p[i] -= m1[i] * c->s[0];
            m1[i] *= c->m1_scale;
        }
        return;
    }
    float *m2 = o->m2 + off;
    size_t i = 0;
#if FR_HAVE_AVX_DISPATCH
    if (n >= 8 && have_avx()) i = adam_coast_avx(o, p, m1, m2, n, c);
#endif
    for (; i < n; i++) adam_coast1(o, p + i, m1 + i, m2 + i, c);
}
