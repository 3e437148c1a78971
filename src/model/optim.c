/* Optimizers over the parameter slab: SGD (momentum), Adam and Adagrad with PyTorch's
 * update rules, in a dense mode (every parameter, as torch.optim) or a sparse-row mode
 * (embedding tables: only rows touched this step, lazily, as torch.optim.SparseAdam).
 * Invariants: the moments are in slab layout; the step count is one per fr_optim_step
 * (bias correction uses it in both modes, as SparseAdam does). */
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
 * gcc from contracting, so every path gives bit-identical results. */
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

static void adagrad_range(float *restrict p, const float *restrict g, float *restrict sum, size_t n,
                          const step_consts *k) {
    float lr = k->lr, wd = k->wd, eps = k->eps;
    for (size_t i = 0; i < n; i++) {
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

void fri_optim_reset_range(fr_optim *o, size_t off, size_t n) {
    if (o->m1) memset(o->m1 + off, 0, n * sizeof(float));
    if (o->m2) memset(o->m2 + off, 0, n * sizeof(float));
    o->step = 0;
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
