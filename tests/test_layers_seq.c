/* Layers of the self-attention sequential model (src/model/layers_seq.c): each forward
 * equals a naive double-precision reference written from the formulas, each backward
 * matches central differences of its forward, and a deliberately wrong gradient fails
 * the check. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fedrec/model.h"
#include "gradcheck.h"
#include "model/layers.h"
#include "model/layers_seq.h"

static void fill(float *x, size_t n, uint32_t seed, float scale) {
    fr_rng r;
    fr_rng_init(&r, seed, 0, 0, FR_PURPOSE_TEST);
    for (size_t i = 0; i < n; i++) x[i] = (float)((fr_rng_double(&r) * 2.0 - 1.0) * scale);
}

static double wsum(const float *y, const float *r, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)y[i] * (double)r[i];
    return s;
}

/* ---------------------------------------------------------------- naive references */

static void ln_naive(double *out, const float *x, const float *w, const float *b, size_t T, size_t C) {
    for (size_t t = 0; t < T; t++) {
        double m = 0, v = 0;
        for (size_t c = 0; c < C; c++) m += x[t * C + c];
        m /= (double)C;
        for (size_t c = 0; c < C; c++) v += (x[t * C + c] - m) * (x[t * C + c] - m);
        v /= (double)C;
        for (size_t c = 0; c < C; c++) out[t * C + c] = (x[t * C + c] - m) / sqrt(v + FRI_LN_EPS) * w[c] + b[c];
    }
}

/* attention by its definition: scores of every (t, j), a mask, a softmax, a weighted sum */
static void attn_naive(double *out, const float *q, const float *k, const float *v, size_t T, size_t C, size_t NH) {
    size_t D = C / NH;
    double *s = malloc(T * sizeof *s);
    for (size_t h = 0; h < NH; h++)
        for (size_t t = 0; t < T; t++) {
            double mx = -INFINITY, z = 0;
            for (size_t j = 0; j < T; j++) {
                double d = 0;
                for (size_t c = 0; c < D; c++) d += (double)q[t * C + h * D + c] * k[j * C + h * D + c];
                s[j] = j <= t ? d / sqrt((double)D) : -INFINITY;
                mx = fmax(mx, s[j]);
            }
            for (size_t j = 0; j < T; j++) z += s[j] == -INFINITY ? 0 : exp(s[j] - mx);
            for (size_t c = 0; c < D; c++) {
                double o = 0;
                for (size_t j = 0; j <= t; j++) o += exp(s[j] - mx) / z * v[j * C + h * D + c];
                out[t * C + h * D + c] = o;
            }
        }
    free(s);
}

static void ffn_naive(double *out, const float *x, const float *w1, const float *b1, const float *w2, const float *b2,
                      size_t T, size_t C, size_t F) {
    double *h = malloc(F * sizeof *h);
    for (size_t t = 0; t < T; t++) {
        for (size_t f = 0; f < F; f++) {
            double a = b1[f];
            for (size_t c = 0; c < C; c++) a += (double)x[t * C + c] * w1[f * C + c];
            h[f] = a > 0 ? a : 0;
        }
        for (size_t c = 0; c < C; c++) {
            double a = b2[c];
            for (size_t f = 0; f < F; f++) a += h[f] * w2[c * F + f];
            out[t * C + c] = a;
        }
    }
    free(h);
}

/* ---------------------------------------------------------------- layer norm */

enum { T0 = 7, C0 = 8, NH0 = 2, F0 = 12 };

typedef struct ln_ctx {
    float x[T0 * C0], w[C0], b[C0], r[T0 * C0];
    float out[T0 * C0], mean[T0], rstd[T0];
} ln_ctx;

static double ln_loss(void *p) {
    ln_ctx *c = p;
    fri_layernorm_forward(c->out, c->mean, c->rstd, c->x, c->w, c->b, T0, C0);
    return wsum(c->out, c->r, T0 * C0);
}

Test(layers_seq, layernorm_naive_and_gradcheck) {
    ln_ctx c;
    fill(c.x, T0 * C0, 1, 2); fill(c.w, C0, 2, 1.5f); fill(c.b, C0, 3, 1); fill(c.r, T0 * C0, 4, 1);
    for (size_t i = 0; i < C0; i++) c.w[i] += 1.0f;
    double ref[T0 * C0];
    ln_naive(ref, c.x, c.w, c.b, T0, C0);
    ln_loss(&c);
    for (size_t i = 0; i < T0 * C0; i++) cr_assert_float_eq(c.out[i], ref[i], 1e-5 * (1 + fabs(ref[i])));
    float dx[T0 * C0], dw[C0], db[C0];
    for (size_t i = 0; i < T0 * C0; i++) dx[i] = 1; /* += semantics */
    memset(dw, 0, sizeof dw); memset(db, 0, sizeof db);
    fri_layernorm_backward(dx, dw, db, c.r, c.x, c.w, c.mean, c.rstd, T0, C0);
    for (size_t i = 0; i < T0 * C0; i++) dx[i] -= 1;
    cr_assert_eq(gc_check(ln_loss, &c, c.x, dx, T0 * C0, "ln.x"), 0);
    cr_assert_eq(gc_check(ln_loss, &c, c.w, dw, C0, "ln.w"), 0);
    cr_assert_eq(gc_check(ln_loss, &c, c.b, db, C0, "ln.b"), 0);
}

/* ---------------------------------------------------------------- attention */

typedef struct at_ctx {
    size_t T, C, NH;
    float *q, *k, *v, *r, *out, *att;
} at_ctx;

static double at_loss(void *p) {
    at_ctx *c = p;
    fri_attention_forward(c->out, c->att, c->q, c->k, c->v, c->T, c->C, c->NH);
    return wsum(c->out, c->r, c->T * c->C);
}

static void at_make(at_ctx *c, size_t T, size_t C, size_t NH, uint32_t seed) {
    c->T = T; c->C = C; c->NH = NH;
    c->q = malloc(T * C * 4); c->k = malloc(T * C * 4); c->v = malloc(T * C * 4);
    c->r = malloc(T * C * 4); c->out = malloc(T * C * 4); c->att = malloc(NH * T * T * 4);
    fill(c->q, T * C, seed, 1.5f); fill(c->k, T * C, seed + 1, 1.5f); fill(c->v, T * C, seed + 2, 1);
    fill(c->r, T * C, seed + 3, 1);
}

static void at_free(at_ctx *c) { free(c->q); free(c->k); free(c->v); free(c->r); free(c->out); free(c->att); }

/* the analytic gradients of at_loss into dq, dk, dv (zeroed first) */
static void at_grads(at_ctx *c, float *dq, float *dk, float *dv) {
    size_t n = c->T * c->C;
    memset(dq, 0, n * 4); memset(dk, 0, n * 4); memset(dv, 0, n * 4);
    float *tmp = malloc(c->T * 4);
    at_loss(c);
    fri_attention_backward(dq, dk, dv, tmp, c->r, c->att, c->q, c->k, c->v, c->T, c->C, c->NH);
    free(tmp);
}

Test(layers_seq, attention_naive_causal_and_gradcheck) {
    size_t shapes[][3] = {{T0, C0, NH0}, {5, 6, 1}, {1, 4, 2}, {9, 12, 3}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        at_ctx c;
        at_make(&c, shapes[s][0], shapes[s][1], shapes[s][2], 10 + (uint32_t)s * 10);
        size_t n = c.T * c.C;
        double *ref = malloc(n * sizeof *ref);
        attn_naive(ref, c.q, c.k, c.v, c.T, c.C, c.NH);
        at_loss(&c);
        for (size_t i = 0; i < n; i++) cr_assert_float_eq(c.out[i], ref[i], 1e-5 * (1 + fabs(ref[i])), "shape %zu", s);
        /* causal: changing the last position's k and v leaves every earlier output as it was */
        float keep[256];
        memcpy(keep, c.out, (c.T - 1) * c.C * 4);
        for (size_t x = 0; x < c.C; x++) { c.k[(c.T - 1) * c.C + x] += 3; c.v[(c.T - 1) * c.C + x] -= 2; }
        at_loss(&c);
        cr_assert(memcmp(keep, c.out, (c.T - 1) * c.C * 4) == 0, "a position reads a later one");
        for (size_t x = 0; x < c.C; x++) { c.k[(c.T - 1) * c.C + x] -= 3; c.v[(c.T - 1) * c.C + x] += 2; }
        float *dq = malloc(n * 4), *dk = malloc(n * 4), *dv = malloc(n * 4);
        at_grads(&c, dq, dk, dv);
        cr_assert_eq(gc_check(at_loss, &c, c.q, dq, n, "attn.q"), 0, "shape %zu", s);
        cr_assert_eq(gc_check(at_loss, &c, c.k, dk, n, "attn.k"), 0, "shape %zu", s);
        cr_assert_eq(gc_check(at_loss, &c, c.v, dv, n, "attn.v"), 0, "shape %zu", s);
        free(dq); free(dk); free(dv); free(ref);
        at_free(&c);
    }
}

/* ---------------------------------------------------------------- feed-forward */

typedef struct ff_ctx {
    float x[T0 * C0], w1[F0 * C0], b1[F0], w2[C0 * F0], b2[C0], r[T0 * C0];
    float out[T0 * C0], h[T0 * F0];
} ff_ctx;

static double ff_loss(void *p) {
    ff_ctx *c = p;
    fri_ffn_forward(c->out, c->h, c->x, c->w1, c->b1, c->w2, c->b2, T0, C0, F0);
    return wsum(c->out, c->r, T0 * C0);
}

Test(layers_seq, ffn_naive_and_gradcheck) {
    ff_ctx c;
    fill(c.x, T0 * C0, 31, 1); fill(c.w1, F0 * C0, 32, 0.6f); fill(c.b1, F0, 33, 0.3f);
    fill(c.w2, C0 * F0, 34, 0.6f); fill(c.b2, C0, 35, 0.3f); fill(c.r, T0 * C0, 36, 1);
    double ref[T0 * C0];
    ffn_naive(ref, c.x, c.w1, c.b1, c.w2, c.b2, T0, C0, F0);
    ff_loss(&c);
    for (size_t i = 0; i < T0 * C0; i++) cr_assert_float_eq(c.out[i], ref[i], 1e-5 * (1 + fabs(ref[i])));
    float dx[T0 * C0] = {0}, dw1[F0 * C0] = {0}, db1[F0] = {0}, dw2[C0 * F0] = {0}, db2[C0] = {0}, dh[T0 * F0];
    fri_ffn_backward(dx, dw1, db1, dw2, db2, dh, c.r, c.x, c.h, c.w1, c.w2, T0, C0, F0);
    cr_assert_eq(gc_check(ff_loss, &c, c.x, dx, T0 * C0, "ffn.x"), 0);
    cr_assert_eq(gc_check(ff_loss, &c, c.w1, dw1, F0 * C0, "ffn.w1"), 0);
    cr_assert_eq(gc_check(ff_loss, &c, c.b1, db1, F0, "ffn.b1"), 0);
    cr_assert_eq(gc_check(ff_loss, &c, c.w2, dw2, C0 * F0, "ffn.w2"), 0);
    cr_assert_eq(gc_check(ff_loss, &c, c.b2, db2, C0, "ffn.b2"), 0);
}

/* ---------------------------------------------------------------- dropout */

Test(layers_seq, dropout_mask_rate_and_scale) {
    enum { N = 20000 };
    static float m[N];
    fr_rng r;
    fr_rng_init(&r, 5, 0, 0, FR_PURPOSE_TEST);
    fri_dropout_mask(m, N, 0.25f, &r);
    size_t zeros = 0;
    for (size_t i = 0; i < N; i++) {
        cr_assert(m[i] == 0.0f || m[i] == (float)(65536.0 / (65536.0 - 16384.0)));
        zeros += m[i] == 0.0f;
    }
    cr_assert(zeros > N * 0.23 && zeros < N * 0.27, "%zu zeros of %d", zeros, N);
    fri_dropout_mask(m, N, 0.0f, &r);
    for (size_t i = 0; i < N; i++) cr_assert(m[i] == 1.0f);
}

/* ---------------------------------------------------------------- the check has teeth */

Test(layers_seq, wrong_gradients_fail_the_check) {
    at_ctx c;
    at_make(&c, T0, C0, NH0, 50);
    size_t n = c.T * c.C;
    float *dq = malloc(n * 4), *dk = malloc(n * 4), *dv = malloc(n * 4);
    at_grads(&c, dq, dk, dv);
    cr_assert_eq(gc_check(at_loss, &c, c.k, dk, n, "attn.k"), 0);
    /* a softmax backward that forgets the normaliser's term: ds_j = p_j dp_j */
    memset(dk, 0, n * 4);
    at_loss(&c);
    size_t D = c.C / c.NH;
    for (size_t h = 0; h < c.NH; h++)
        for (size_t t = 0; t < c.T; t++)
            for (size_t j = 0; j <= t; j++) {
                double dp = 0;
                for (size_t x = 0; x < D; x++) dp += (double)c.r[t * c.C + h * D + x] * c.v[j * c.C + h * D + x];
                float ds = (float)(c.att[(h * c.T + t) * c.T + j] * dp / sqrt((double)D));
                for (size_t x = 0; x < D; x++) dk[j * c.C + h * D + x] += ds * c.q[t * c.C + h * D + x];
            }
    fprintf(stderr, "(expected) ");
    cr_assert_gt(gc_check(at_loss, &c, c.k, dk, n, "attn.k wrong"), 0, "a softmax gradient without its normaliser passed");
    /* one entry of dv off by 5% */
    at_grads(&c, dq, dk, dv);
    dv[3] *= 1.05f;
    dv[3] += 0.01f;
    cr_assert_gt(gc_check(at_loss, &c, c.v, dv, n, "attn.v wrong"), 0, "a wrong dv entry passed");
    free(dq); free(dk); free(dv);
    at_free(&c);
    /* layer norm without its mean term */
    ln_ctx l;
    fill(l.x, T0 * C0, 1, 2); fill(l.w, C0, 2, 1.5f); fill(l.b, C0, 3, 1); fill(l.r, T0 * C0, 4, 1);
    ln_loss(&l);
    float dx[T0 * C0];
    for (size_t t = 0; t < T0; t++)
        for (size_t x = 0; x < C0; x++) dx[t * C0 + x] = l.r[t * C0 + x] * l.w[x] * l.rstd[t];
    cr_assert_gt(gc_check(ln_loss, &l, l.x, dx, T0 * C0, "ln.x wrong"), 0, "layer norm without its centring passed");
}

/* ---------------------------------------------------------------- softmax cross-entropy */

enum { XT = 4, XN = 9 };
typedef struct xe_ctx {
    float s[XT * XN];
    uint32_t tg[XT];
    double scale;
} xe_ctx;

static double xe_loss(void *p) {
    xe_ctx *c = p;
    return fri_softmax_xent(NULL, c->s, c->tg, XT, XN, c->scale);
}

/* the definition in double: log of the sum of exps (no max taken out), minus the target */
static double xe_naive(const xe_ctx *c, double *d) {
    double loss = 0;
    for (size_t t = 0; t < XT; t++) {
        double z = 0;
        for (size_t j = 0; j < XN; j++) z += exp((double)c->s[t * XN + j]);
        loss += log(z) - c->s[t * XN + c->tg[t]];
        for (size_t j = 0; j < XN; j++)
            d[t * XN + j] = c->scale * (exp((double)c->s[t * XN + j]) / z - (j == c->tg[t] ? 1.0 : 0.0));
    }
    return c->scale * loss;
}

Test(layers_seq, softmax_xent_naive_in_place_and_gradcheck) {
    xe_ctx c = {.tg = {0, 8, 3, 3}, .scale = 0.7};
    fill(c.s, XT * XN, 21, 4);
    double dref[XT * XN];
    double ref = xe_naive(&c, dref);
    float d[XT * XN];
    double l = fri_softmax_xent(d, c.s, c.tg, XT, XN, c.scale);
    cr_assert_float_eq(l, ref, 1e-6 * fabs(ref), "loss %.9g vs naive %.9g", l, ref);
    cr_assert_float_eq(xe_loss(&c), ref, 1e-6 * fabs(ref), "the loss alone agrees");
    for (size_t i = 0; i < XT * XN; i++) cr_assert_float_eq(d[i], dref[i], 1e-6, "dlogits[%zu] %g vs %g", i, d[i], dref[i]);
    /* each row's gradient sums to 0 (the softmax sums to 1) */
    for (size_t t = 0; t < XT; t++) {
        double s = 0;
        for (size_t j = 0; j < XN; j++) s += d[t * XN + j];
        cr_assert(fabs(s) < 1e-6, "row %zu sums to %g", t, s);
    }
    /* in place: the same loss and the same gradient bits */
    float inp[XT * XN];
    memcpy(inp, c.s, sizeof inp);
    double l2 = fri_softmax_xent(inp, inp, c.tg, XT, XN, c.scale);
    cr_assert_eq(l2, l);
    cr_assert(!memcmp(inp, d, sizeof d));
    /* large logits do not overflow (the max is taken out) */
    xe_ctx big = c;
    for (size_t i = 0; i < XT * XN; i++) big.s[i] += 200.0f;
    cr_assert(isfinite(xe_loss(&big)) && fabs(xe_loss(&big) - ref) < 1e-3 * fabs(ref));
    cr_assert_eq(gc_check(xe_loss, &c, c.s, d, XT * XN, "xent"), 0);
    /* the check has teeth: a gradient without the normaliser (softmax numerators, unnormalised) fails */
    float bad[XT * XN];
    for (size_t t = 0; t < XT; t++)
        for (size_t j = 0; j < XN; j++)
            bad[t * XN + j] = (float)(c.scale * (exp((double)c.s[t * XN + j]) - (j == c.tg[t] ? 1.0 : 0.0)));
    fprintf(stderr, "(expected) ");
    cr_assert_gt(gc_check(xe_loss, &c, c.s, bad, XT * XN, "xent wrong"), 0, "a softmax gradient without its normaliser passed");
}
