/* Layers as forward/backward pairs over plain float arrays (see layers.h).
 * Invariants: backward functions only ever add into gradients; no function allocates;
 * the BLAS and plain-loop linear layers compute the same thing (tests/test_layers.c). */
#include "model/layers.h"

#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <string.h>

/* OpenBLAS would start its own threads for a 256x64x32 product; at these shapes that is
 * 3x slower than one thread (bench/bench_model.c: 1.56 s vs 0.47 s per NeuMF epoch), and
 * fedrec parallelises over clients and batch parts with its own pool. So the first
 * workspace switches OpenBLAS to one thread, once, for the process, and stops the
 * threads the pthread build started at load time: they spin for their first ~0.1 s
 * waiting for work that never comes, which cost a 2-core federated run a third of its
 * first round. (Debian's serial OpenBLAS has no threads but is not safe to call from
 * several threads at once: the same run gave other bits on 2 threads than on 1.)
 * blas_thread_shutdown_ is OpenBLAS's own (it exports it for fork handlers); a weak
 * reference leaves other BLAS builds alone. */
extern int blas_thread_shutdown_(void) __attribute__((weak));
static void blas_one_thread(void) {
    openblas_set_num_threads(1);
    if (blas_thread_shutdown_) blas_thread_shutdown_();
}
void fri_blas_single_thread(void) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, blas_one_thread);
}

/* Rows are short (8 to 64 floats): a copy loop beats a memcpy call per row. */
void fri_embedding_forward_ld(float *restrict out, size_t ldo, const float *restrict table,
                              const uint32_t *idx, size_t B, size_t C) {
    for (size_t b = 0; b < B; b++) {
        const float *restrict src = table + (size_t)idx[b] * C;
        float *restrict dst = out + b * ldo;
        for (size_t c = 0; c < C; c++) dst[c] = src[c];
    }
}

void fri_embedding_forward(float *restrict out, const float *restrict table, const uint32_t *idx,
                           size_t B, size_t C) {
    fri_embedding_forward_ld(out, C, table, idx, B, C);
}

void fri_embedding_backward_ld(float *restrict dtable, fr_rowset *rows, const float *restrict dout,
                               size_t ldd, const uint32_t *idx, size_t B, size_t C) {
    for (size_t b = 0; b < B; b++) {
        float *restrict d = dtable + (size_t)idx[b] * C;
        const float *restrict g = dout + b * ldd;
        for (size_t c = 0; c < C; c++) d[c] += g[c];
        if (rows) fr_rowset_add(rows, idx[b]);
    }
}

void fri_embedding_backward(float *restrict dtable, fr_rowset *rows, const float *restrict dout,
                            const uint32_t *idx, size_t B, size_t C) {
    fri_embedding_backward_ld(dtable, rows, dout, C, idx, B, C);
}

/* ---------------------------------------------------------------- linear */

void fri_linear_forward_naive(float *out, const float *inp, const float *w, const float *b,
                              size_t B, size_t C, size_t OC) {
    for (size_t i = 0; i < B; i++) {
        for (size_t o = 0; o < OC; o++) {
            float s = b ? b[o] : 0.0f;
            for (size_t c = 0; c < C; c++) s += inp[i * C + c] * w[o * C + c];
            out[i * OC + o] = s;
        }
    }
}

void fri_linear_backward_naive(float *dinp, float *dw, float *db, const float *dout,
                               const float *inp, const float *w, size_t B, size_t C, size_t OC) {
    for (size_t i = 0; i < B; i++) {
        for (size_t o = 0; o < OC; o++) {
            float d = dout[i * OC + o];
            if (db) db[o] += d;
            for (size_t c = 0; c < C; c++) {
                if (dinp) dinp[i * C + c] += d * w[o * C + c];
                dw[o * C + c] += d * inp[i * C + c];
            }
        }
    }
}

/* Every row of out[B, OC] starts as the bias; returns the beta a product added on top
 * needs (0 without a bias: the product overwrites). */
static float bias_rows(float *out, const float *b, size_t B, size_t OC) {
    if (!b) return 0.0f;
    for (size_t i = 0; i < B; i++)
        for (size_t o = 0; o < OC; o++) out[i * OC + o] = b[o];
    return 1.0f;
}

void fri_linear_forward_blas(float *out, const float *inp, const float *w, const float *b,
                             size_t B, size_t C, size_t OC) {
    float beta = bias_rows(out, b, B, OC);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)B, (int)OC, (int)C, 1.0f, inp,
                (int)C, w, (int)C, beta, out, (int)OC);
}

void fri_linear_backward_blas(float *dinp, float *dw, float *db, const float *dout,
                              const float *inp, const float *w, size_t B, size_t C, size_t OC) {
    if (dinp)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)B, (int)C, (int)OC, 1.0f, dout,
                    (int)OC, w, (int)C, 1.0f, dinp, (int)C);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)OC, (int)C, (int)B, 1.0f, dout,
                (int)OC, inp, (int)C, 1.0f, dw, (int)C);
    if (db)
        for (size_t i = 0; i < B; i++)
            for (size_t o = 0; o < OC; o++) db[o] += dout[i * OC + o];
}

/* The loop versions used where BLAS loses: inner loops are contiguous and free of
 * reductions, so gcc -O3 vectorises them without -ffast-math. */
void fri_linear_forward_loops(float *restrict out, const float *restrict inp,
                                 const float *restrict w, const float *restrict b, size_t B,
                                 size_t C, size_t OC) {
    for (size_t i = 0; i < B; i++) {
        const float *restrict x = inp + i * C;
        float *restrict y = out + i * OC;
        for (size_t o = 0; o < OC; o++) {
            const float *restrict wr = w + o * C;
            float s = 0.0f;
            for (size_t c = 0; c < C; c++) s += x[c] * wr[c];
            y[o] = s + (b ? b[o] : 0.0f);
        }
    }
}

void fri_linear_backward_loops(float *restrict dinp, float *restrict dw, float *restrict db,
                                  const float *restrict dout, const float *restrict inp,
                                  const float *restrict w, size_t B, size_t C, size_t OC) {
    for (size_t i = 0; i < B; i++) {
        const float *restrict d = dout + i * OC;
        const float *restrict x = inp + i * C;
        float *restrict dx = dinp ? dinp + i * C : NULL;
        for (size_t o = 0; o < OC; o++) {
            float g = d[o];
            const float *restrict wr = w + o * C;
            float *restrict dwr = dw + o * C;
            if (dx)
                for (size_t c = 0; c < C; c++) dx[c] += g * wr[c];
            for (size_t c = 0; c < C; c++) dwr[c] += g * x[c];
        }
        if (db)
            for (size_t o = 0; o < OC; o++) db[o] += d[o];
    }
}

/* Which is faster per shape, measured by bench/bench_model.c (forward + backward, one
 * thread, OpenBLAS 0.3 on an AVX-512 core, gcc -O3 without -march):
 *              B=32: BLAS     loops         B=256: BLAS     loops
 *   64x32         7.4 us     92.2 us               48.9 us   699.3 us
 *   32x16         2.8 us     23.4 us               17.2 us   181.4 us
 *   16x8          1.7 us      6.3 us                9.1 us    58.6 us
 *   16x1 (head)   1.1 us      1.0 us                7.1 us     8.1 us
 * OpenBLAS wins by 4-14x wherever OC >= 8 (its AVX-512 kernels are picked at run time;
 * our portable loops are SSE2 only, and the forward's dot products are reductions gcc
 * will not vectorise without -ffast-math). For a one-output head the call overhead
 * cancels the gain, so the loops stay there. */
static int use_blas(size_t B, size_t C, size_t OC) { return OC >= 8 && B * C * OC >= 1024; }

void fri_linear_forward(float *out, const float *inp, const float *w, const float *b, size_t B,
                        size_t C, size_t OC) {
    if (use_blas(B, C, OC)) fri_linear_forward_blas(out, inp, w, b, B, C, OC);
    else fri_linear_forward_loops(out, inp, w, b, B, C, OC);
}

void fri_linear_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                         const float *w, size_t B, size_t C, size_t OC) {
    if (use_blas(B, C, OC)) fri_linear_backward_blas(dinp, dw, db, dout, inp, w, B, C, OC);
    else fri_linear_backward_loops(dinp, dw, db, dout, inp, w, B, C, OC);
}

#if defined(__SSE__) || defined(__x86_64__)
#include <xmmintrin.h>
#define FR_HAVE_SSE_T 1
#else
#define FR_HAVE_SSE_T 0
#endif

#if FR_HAVE_SSE_T && defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
/* 8x8 blocks with AVX (a data move: the same bits on every path). */
__attribute__((target("avx"))) static void transpose_avx(float *restrict wt, const float *restrict w, size_t rows,
                                                          size_t cols, size_t ldw) {
    for (size_t r = 0; r < rows; r += 8)
        for (size_t c = 0; c < cols; c += 8) {
            __m256 a[8], t[8];
            for (int i = 0; i < 8; i++) a[i] = _mm256_loadu_ps(w + (r + (size_t)i) * ldw + c);
            for (int i = 0; i < 8; i += 2) {
                t[i] = _mm256_unpacklo_ps(a[i], a[i + 1]);
                t[i + 1] = _mm256_unpackhi_ps(a[i], a[i + 1]);
            }
            for (int i = 0; i < 8; i += 4) {
                a[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
                a[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
                a[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
                a[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
            }
            for (int i = 0; i < 4; i++) {
                t[i] = _mm256_permute2f128_ps(a[i], a[i + 4], 0x20);
                t[i + 4] = _mm256_permute2f128_ps(a[i], a[i + 4], 0x31);
            }
            /* t[i] is column c + i of the block, rows r..r+7 */
            for (int i = 0; i < 8; i++) _mm256_storeu_ps(wt + (c + (size_t)i) * rows + r, t[i]);
        }
}
static int have_avx_t(void) { return __builtin_cpu_supports("avx"); }
#define FR_HAVE_AVX_T 1
#else
#define FR_HAVE_AVX_T 0
#endif

void fri_transpose(float *restrict wt, const float *restrict w, size_t rows, size_t cols, size_t ldw) {
#if FR_HAVE_AVX_T
    if (rows % 8 == 0 && cols % 8 == 0 && have_avx_t()) {
        transpose_avx(wt, w, rows, cols, ldw);
        return;
    }
#endif
#if FR_HAVE_SSE_T
    if (rows % 4 == 0 && cols % 4 == 0) {
        for (size_t r = 0; r < rows; r += 4)
            for (size_t c = 0; c < cols; c += 4) {
                __m128 a = _mm_loadu_ps(w + r * ldw + c), b = _mm_loadu_ps(w + (r + 1) * ldw + c),
                       d = _mm_loadu_ps(w + (r + 2) * ldw + c), e = _mm_loadu_ps(w + (r + 3) * ldw + c);
                _MM_TRANSPOSE4_PS(a, b, d, e);
                _mm_storeu_ps(wt + c * rows + r, a);
                _mm_storeu_ps(wt + (c + 1) * rows + r, b);
                _mm_storeu_ps(wt + (c + 2) * rows + r, d);
                _mm_storeu_ps(wt + (c + 3) * rows + r, e);
            }
        return;
    }
#endif
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < cols; c++) wt[c * rows + r] = w[r * ldw + c];
}

/* out[B, OC] (+)= inp[B, C] (row stride ldi) @ wt[C, OC] */
static void gemm_nn(float *out, const float *inp, size_t ldi, const float *wt, size_t B, size_t C, size_t OC,
                    float beta) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)B, (int)OC, (int)C, 1.0f, inp, (int)ldi, wt, (int)OC,
                beta, out, (int)OC);
}

void fri_linear_forward_ws(float *out, const float *inp, const float *w, const float *b, size_t B, size_t C,
                           size_t OC, float *wt) {
    if (!use_blas(B, C, OC)) {
        fri_linear_forward_loops(out, inp, w, b, B, C, OC);
        return;
    }
    if (C * OC < 512) { /* 16x8: the transpose costs more than it saves */
        fri_linear_forward_blas(out, inp, w, b, B, C, OC);
        return;
    }
    float beta = bias_rows(out, b, B, OC);
    fri_transpose(wt, w, OC, C, C);
    gemm_nn(out, inp, C, wt, B, C, OC, beta);
}

void fri_linear_forward_shared(float *out, const float *inp, const float *w, const float *b, size_t B, size_t C,
                               size_t OC, size_t P, float *wt) {
    /* row 0 of out: b + W[:, :P] inp[0, :P], copied to every row, then the rest added */
    if (b) memcpy(out, b, OC * sizeof(float));
    cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)OC, (int)P, 1.0f, w, (int)C, inp, 1, b ? 1.0f : 0.0f, out, 1);
    for (size_t i = 1; i < B; i++)
        for (size_t o = 0; o < OC; o++) out[i * OC + o] = out[o];
    fri_transpose(wt, w + P, OC, C - P, C);
    gemm_nn(out, inp + P, C, wt, B, C - P, OC, 1.0f);
}

void fri_linear_backward_shared(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                                const float *w, size_t B, size_t C, size_t OC, size_t P) {
    float sp[256]; /* sum_b dout_b */
    if (OC > 256) { /* wider than fedrec's MLP layers: the general layer (same maths) */
        fri_linear_backward(dinp, dw, db, dout, inp, w, B, C, OC);
        return;
    }
    memcpy(sp, dout, OC * sizeof(float));
    for (size_t i = 1; i < B; i++)
        for (size_t o = 0; o < OC; o++) sp[o] += dout[i * OC + o];
    if (db)
        for (size_t o = 0; o < OC; o++) db[o] += sp[o];
    cblas_sger(CblasRowMajor, (int)OC, (int)P, 1.0f, sp, 1, inp, 1, dw, (int)C);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)OC, (int)(C - P), (int)B, 1.0f, dout, (int)OC, inp + P,
                (int)C, 1.0f, dw + P, (int)C);
    if (dinp) {
        cblas_sgemv(CblasRowMajor, CblasTrans, (int)OC, (int)P, 1.0f, w, (int)C, sp, 1, 1.0f, dinp, 1);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)B, (int)(C - P), (int)OC, 1.0f, dout, (int)OC,
                    w + P, (int)C, 1.0f, dinp + P, (int)C);
    }
}

/* ---------------------------------------------------------------- elementwise */

void fri_relu_forward(float *out, const float *inp, size_t N) { /* may be in place: no restrict */
    for (size_t i = 0; i < N; i++) out[i] = inp[i] > 0.0f ? inp[i] : 0.0f;
}

void fri_relu_backward(float *restrict dinp, const float *restrict dout, const float *restrict out,
                       size_t N) {
    /* unconditional loads, then a select: gcc turns it into a vector blend. Written as
       `cond ? dout[i] : 0` the load is conditional and the loop stays scalar with a
       mispredicted branch per element (it was 10% of a NeuMF step). */
    for (size_t i = 0; i < N; i++) {
        float d = dout[i], o = out[i];
        dinp[i] += o > 0.0f ? d : 0.0f;
    }
}

void fri_sigmoid_forward(float *out, const float *inp, size_t N) {
    for (size_t i = 0; i < N; i++) {
        float x = inp[i];
        /* stable in both tails */
        if (x >= 0.0f) out[i] = 1.0f / (1.0f + expf(-x));
        else { float e = expf(x); out[i] = e / (1.0f + e); }
    }
}

void fri_sigmoid_backward(float *dinp, const float *dout, const float *out, size_t N) {
    for (size_t i = 0; i < N; i++) dinp[i] += dout[i] * out[i] * (1.0f - out[i]);
}

void fri_mul_forward(float *restrict out, const float *restrict a, const float *restrict b, size_t N) {
    for (size_t i = 0; i < N; i++) out[i] = a[i] * b[i];
}

void fri_mul_backward(float *restrict da, float *restrict db, const float *restrict dout,
                      const float *restrict a, const float *restrict b, size_t N) {
    for (size_t i = 0; i < N; i++) {
        da[i] += dout[i] * b[i];
        db[i] += dout[i] * a[i];
    }
}

void fri_dot_forward(float *restrict out, const float *restrict a, const float *restrict b, size_t B,
                     size_t C) {
    for (size_t i = 0; i < B; i++) out[i] = fri_dot(a + i * C, b + i * C, C);
}

void fri_dot_backward(float *restrict da, float *restrict db, const float *restrict dout,
                      const float *restrict a, const float *restrict b, size_t B, size_t C) {
    for (size_t i = 0; i < B; i++) {
        float d = dout[i];
        for (size_t c = 0; c < C; c++) {
            da[i * C + c] += d * b[i * C + c];
            db[i * C + c] += d * a[i * C + c];
        }
    }
}

void fri_concat_forward(float *restrict out, const float *restrict a, const float *restrict b,
                        size_t B, size_t CA, size_t CB) {
    for (size_t i = 0; i < B; i++) {
        float *restrict o = out + i * (CA + CB);
        for (size_t c = 0; c < CA; c++) o[c] = a[i * CA + c];
        for (size_t c = 0; c < CB; c++) o[CA + c] = b[i * CB + c];
    }
}

void fri_concat_backward(float *restrict da, float *restrict db, const float *restrict dout,
                         size_t B, size_t CA, size_t CB) {
    for (size_t i = 0; i < B; i++) {
        const float *restrict d = dout + i * (CA + CB);
        if (da)
            for (size_t c = 0; c < CA; c++) da[i * CA + c] += d[c];
        if (db)
            for (size_t c = 0; c < CB; c++) db[i * CB + c] += d[CA + c];
    }
}

/* ---------------------------------------------------------------- losses */

double fri_mse_forward_backward(float *dpred, const float *pred, const float *y, const float *w, size_t B) {
    double s = 0.0;
    if (w) { /* a separate loop: without weights, the bits of before */
        for (size_t i = 0; i < B; i++) {
            double e = (double)pred[i] - (double)y[i], c = w[i];
            s += c * (e * e);
            if (dpred) dpred[i] = (float)(c * (2.0 * e / (double)B));
        }
        return s / (double)B;
    }
    for (size_t i = 0; i < B; i++) {
        double e = (double)pred[i] - (double)y[i];
        s += e * e;
        if (dpred) dpred[i] = (float)(2.0 * e / (double)B);
    }
    return s / (double)B;
}

/* log(1 + exp(-|x|)) + max(x, 0): softplus without overflow */
double fri_softplus(double x) { return (x > 0.0 ? x : 0.0) + log1p(exp(-fabs(x))); }

double fri_sigmoid(double x) {
    if (x >= 0.0) return 1.0 / (1.0 + exp(-x));
    double e = exp(x);
    return e / (1.0 + e);
}

double fri_bce_forward_backward(float *dlogit, const float *logit, const float *y, const float *w, size_t B) {
    double s = 0.0;
    if (w) {
        for (size_t i = 0; i < B; i++) {
            double x = logit[i], t = y[i], c = w[i];
            s += c * (fri_softplus(x) - x * t);
            if (dlogit) dlogit[i] = (float)(c * ((fri_sigmoid(x) - t) / (double)B));
        }
        return s / (double)B;
    }
    for (size_t i = 0; i < B; i++) {
        double x = logit[i], t = y[i];
        s += fri_softplus(x) - x * t;
        if (dlogit) dlogit[i] = (float)((fri_sigmoid(x) - t) / (double)B);
    }
    return s / (double)B;
}

double fri_bpr_forward_backward(float *dpos, float *dneg, const float *pos, const float *neg, const float *w,
                                size_t B) {
    double s = 0.0;
    if (w) { /* model_mf.c's fused sgd_bpr does these operations for B = 1 */
        for (size_t i = 0; i < B; i++) {
            double d = (double)pos[i] - (double)neg[i], c = w[i];
            s += c * fri_softplus(-d);
            double g = c * (-fri_sigmoid(-d) / (double)B);
            if (dpos) dpos[i] = (float)g;
            if (dneg) dneg[i] = (float)-g;
        }
        return s / (double)B;
    }
    for (size_t i = 0; i < B; i++) {
        double d = (double)pos[i] - (double)neg[i];
        s += fri_softplus(-d);
        double g = -fri_sigmoid(-d) / (double)B;
        if (dpos) dpos[i] = (float)g;
        if (dneg) dneg[i] = (float)-g;
    }
    return s / (double)B;
}

double fri_l2_forward_backward(float *dx, const float *x, size_t B, size_t C, double scale) {
    float k = (float)(2.0 * scale);
    if (dx)
        for (size_t i = 0; i < B * C; i++) dx[i] += k * x[i];
    return scale * fri_sumsq(x, B * C);
}
