/* Layers of the models as forward/backward pairs (llm.c style), internal to the library.
 * Arguments: outputs first, then inputs, then sizes; every pointer carries its shape.
 * Backward functions ADD (+=) into the gradients they are given. No allocation. */
#ifndef FEDREC_SRC_MODEL_LAYERS_H
#define FEDREC_SRC_MODEL_LAYERS_H

#include <stddef.h>
#include <stdint.h>

#include "fedrec/model.h"

/* Sets OpenBLAS to one thread, once per process (see layers.c). Thread-safe. */
void fri_blas_single_thread(void);

/* out[b * ldo + c] = table[idx[b], c]: gathers straight into a wider row, so a concat of
 * two embeddings costs no extra copy. */
void fri_embedding_forward_ld(float *restrict out, size_t ldo, const float *restrict table,
                              const uint32_t *idx, size_t B, size_t C);
/* dtable[idx[b], c] += dout[b * ldd + c]; touched rows go into rows (may be NULL). */
void fri_embedding_backward_ld(float *restrict dtable, fr_rowset *rows, const float *restrict dout,
                               size_t ldd, const uint32_t *idx, size_t B, size_t C);
/* out[B,C] = table[idx[b], :] */
void fri_embedding_forward(float *restrict out, const float *restrict table, const uint32_t *idx,
                           size_t B, size_t C);
/* dtable[idx[b], :] += dout[b, :]; touched rows go into rows (may be NULL). */
void fri_embedding_backward(float *restrict dtable, fr_rowset *rows, const float *restrict dout,
                            const uint32_t *idx, size_t B, size_t C);

/* out[B,OC] = inp[B,C] @ w[OC,C]^T + b[OC]  (b may be NULL). Picks BLAS or loops by shape. */
void fri_linear_forward(float *out, const float *inp, const float *w, const float *b, size_t B,
                        size_t C, size_t OC);
/* dinp[B,C] += dout @ w (dinp may be NULL); dw[OC,C] += dout^T @ inp; db[OC] += sum_b dout */
void fri_linear_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                         const float *w, size_t B, size_t C, size_t OC);
/* The linear layer when every row of inp starts with the same P values (a federated
 * client's minibatch: one user, so the user half of the MLP input is shared): that part
 * of the product is one matrix-vector product instead of B, in the forward
 * (out = b + W[:, :P] inp[0, :P] + inp[:, P:] W[:, P:]^T) and in the backward
 * (dW[:, :P] += (sum_b dout_b) inp[0, :P]^T, db += sum_b dout_b,
 * dinp[0, :P] += W[:, :P]^T sum_b dout_b: the whole gradient of the shared part lands on
 * row 0; the rest of dinp[:, :P] is left as it is). The same maths as
 * fri_linear_forward/backward up to float rounding (tests/test_layers.c). 0 < P < C. */
void fri_linear_forward_shared(float *out, const float *inp, const float *w, const float *b, size_t B, size_t C,
                               size_t OC, size_t P, float *wt);
void fri_linear_backward_shared(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                                const float *w, size_t B, size_t C, size_t OC, size_t P);
/* fri_linear_forward with scratch wt[OC*C]: OpenBLAS's small-matrix kernel for
 * inp @ w^T (both operands read along C) takes twice the time of the plain product, so
 * w is first transposed into wt (SSE 4x4 blocks) and multiplied as inp @ wt: at B=32,
 * 64->32 a 1.5 us product becomes 0.6 us + 0.1 us. The same maths; BLAS rounds in its
 * own order either way. fri_linear_forward_shared uses wt the same way. */
void fri_linear_forward_ws(float *out, const float *inp, const float *w, const float *b, size_t B, size_t C,
                           size_t OC, float *wt);
/* wt[cols, rows] = the rows x cols block of w with row stride ldw, transposed. */
void fri_transpose(float *restrict wt, const float *restrict w, size_t rows, size_t cols, size_t ldw);
/* The plain-loop references, and the BLAS versions, for tests and the benchmark. */
void fri_linear_forward_naive(float *out, const float *inp, const float *w, const float *b,
                              size_t B, size_t C, size_t OC);
void fri_linear_backward_naive(float *dinp, float *dw, float *db, const float *dout,
                               const float *inp, const float *w, size_t B, size_t C, size_t OC);
void fri_linear_forward_loops(float *restrict out, const float *restrict inp, const float *restrict w,
                              const float *restrict b, size_t B, size_t C, size_t OC);
void fri_linear_backward_loops(float *restrict dinp, float *restrict dw, float *restrict db,
                               const float *restrict dout, const float *restrict inp,
                               const float *restrict w, size_t B, size_t C, size_t OC);
void fri_linear_forward_blas(float *out, const float *inp, const float *w, const float *b,
                             size_t B, size_t C, size_t OC);
void fri_linear_backward_blas(float *dinp, float *dw, float *db, const float *dout,
                              const float *inp, const float *w, size_t B, size_t C, size_t OC);

/* out[N] = max(inp, 0) (in place allowed) */
void fri_relu_forward(float *out, const float *inp, size_t N);
/* dinp[N] += dout * (out > 0), using the forward's output */
void fri_relu_backward(float *restrict dinp, const float *restrict dout, const float *restrict out,
                       size_t N);
/* out[N] = 1 / (1 + exp(-inp)) */
void fri_sigmoid_forward(float *out, const float *inp, size_t N);
/* dinp[N] += dout * out * (1 - out) */
void fri_sigmoid_backward(float *dinp, const float *dout, const float *out, size_t N);
/* out[N] = a * b */
void fri_mul_forward(float *restrict out, const float *restrict a, const float *restrict b, size_t N);
/* da[N] += dout * b; db[N] += dout * a */
void fri_mul_backward(float *restrict da, float *restrict db, const float *restrict dout,
                      const float *restrict a, const float *restrict b, size_t N);
/* out[B] = sum_c a[B,C] * b[B,C], each as fri_dot */
void fri_dot_forward(float *restrict out, const float *restrict a, const float *restrict b, size_t B,
                     size_t C);
/* da[B,C] += dout[b] * b; db[B,C] += dout[b] * a */
void fri_dot_backward(float *restrict da, float *restrict db, const float *restrict dout,
                      const float *restrict a, const float *restrict b, size_t B, size_t C);
/* out[B, CA+CB] = [a[B,CA], b[B,CB]] */
void fri_concat_forward(float *restrict out, const float *restrict a, const float *restrict b,
                        size_t B, size_t CA, size_t CB);
/* da[B,CA] += dout[:, :CA]; db[B,CB] += dout[:, CA:] (either may be NULL) */
void fri_concat_backward(float *restrict da, float *restrict db, const float *restrict dout,
                         size_t B, size_t CA, size_t CB);

/* Losses return the MEAN over B in double and write d(mean)/d(pred) into dpred[B]
 * (dpred may be NULL: loss only). w[B] weighs each example's term: the mean is
 * (1/B) sum_i w_i l_i and example i's gradient is w_i times its unweighted one; w NULL
 * is all 1, with the operations (and bits) of an unweighted loss. */
/* mean (pred - y)^2 */
double fri_mse_forward_backward(float *dpred, const float *pred, const float *y, const float *w, size_t B);
/* mean BCE with logits, stable: max(x,0) - x*y + log1p(exp(-|x|)); d = sigmoid(x) - y */
double fri_bce_forward_backward(float *dlogit, const float *logit, const float *y, const float *w, size_t B);
/* mean -log sigmoid(pos - neg) = softplus(neg - pos); dpos = -sigmoid(neg - pos) = -dneg */
double fri_bpr_forward_backward(float *dpos, float *dneg, const float *pos, const float *neg, const float *w,
                                size_t B);
/* returns scale * sum_b sum_c x[B,C]^2 (fri_sumsq); dx[B,C] += 2 * scale * x (dx may be NULL) */
double fri_l2_forward_backward(float *dx, const float *x, size_t B, size_t C, double scale);
/* sum_i x[i]^2: chunks of 64 summed in float in eight interleaved lanes (lane i mod 8;
 * a tail past the last multiple of 8 goes to lane 0) added pairwise, the chunks added in
 * double. A fixed order, so every caller and every build gets the same bits, with no
 * serial chain of additions (the lanes fit vector registers) and at most 8 float
 * additions per lane before the double sum. For loss values only, never a gradient. */
static inline double fri_sumsq(const float *restrict x, size_t n) {
    double total = 0.0;
    for (size_t at = 0; at < n; at += 64) {
        size_t m = n - at < 64 ? n - at : 64, i = 0;
        const float *restrict y = x + at;
        float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        for (; i + 8 <= m; i += 8)
            for (size_t j = 0; j < 8; j++) s[j] += y[i + j] * y[i + j];
        for (; i < m; i++) s[0] += y[i] * y[i];
        total += (double)(((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7])));
    }
    return total;
}
/* sum_c a[c] * b[c] in float, in eight lanes added pairwise as one chunk of fri_sumsq */
static inline float fri_dot(const float *restrict a, const float *restrict b, size_t n) {
    float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (size_t j = 0; j < 8; j++) s[j] += a[i + j] * b[i + j];
    for (; i < n; i++) s[0] += a[i] * b[i];
    return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}
/* log(1 + exp(x)) without overflow, and the logistic sigmoid, in double */
double fri_softplus(double x);
double fri_sigmoid(double x);

#endif
