/* Layers of the self-attention sequential model (model_sasrec.c) as forward/backward
 * pairs, in the style of layers.h: outputs first, then inputs, then sizes; every pointer
 * carries its shape; backward functions ADD (+=) into the gradients they are given
 * (scratch arguments excepted). All work on ONE sequence of T positions (rows) of C
 * channels: a caller runs a minibatch one sequence at a time, so the workspace is
 * O(T * C) whatever the batch. No allocation. The naive references and the gradient
 * checks are in tests/test_layers_seq.c. */
#ifndef FEDREC_SRC_MODEL_LAYERS_SEQ_H
#define FEDREC_SRC_MODEL_LAYERS_SEQ_H

#include <stddef.h>
#include <stdint.h>

#include "fedrec/core.h"

#define FRI_LN_EPS 1e-6f /* layer norm's variance floor */

/* Layer norm over each row: out[t,c] = (inp[t,c] - mean_t) * rstd_t * w[c] + b[c], with
 * mean_t and rstd_t = 1 / sqrt(var_t + eps) (biased variance) saved in mean[T], rstd[T]. */
void fri_layernorm_forward(float *restrict out, float *restrict mean, float *restrict rstd,
                           const float *restrict inp, const float *restrict w, const float *restrict b, size_t T,
                           size_t C);
/* dinp[T,C] += d/dinp, dw[C] += sum_t dout * xhat, db[C] += sum_t dout. */
void fri_layernorm_backward(float *restrict dinp, float *restrict dw, float *restrict db, const float *restrict dout,
                            const float *restrict inp, const float *restrict w, const float *restrict mean,
                            const float *restrict rstd, size_t T, size_t C);

/* Causal multi-head attention: head h reads columns [h D, (h+1) D) of q, k, v [T,C]
 * (D = C / NH, NH divides C); out[t, head h] = sum_{j <= t} p_h[t,j] v[j, head h] with
 * p_h[t, .] = softmax_j (q_t . k_j / sqrt(D)) over j = 0..t. att[NH,T,T] keeps the
 * probabilities (entries j > t are written 0). out is overwritten. */
void fri_attention_forward(float *restrict out, float *restrict att, const float *restrict q,
                           const float *restrict k, const float *restrict v, size_t T, size_t C, size_t NH);
/* dq, dk, dv [T,C] += the gradients of the forward's output given dout [T,C]; tmp[T] is
 * scratch. */
void fri_attention_backward(float *restrict dq, float *restrict dk, float *restrict dv, float *restrict tmp,
                            const float *restrict dout, const float *restrict att, const float *restrict q,
                            const float *restrict k, const float *restrict v, size_t T, size_t C, size_t NH);

/* Point-wise feed-forward: h[T,F] = relu(inp W1^T + b1) (kept for backward),
 * out[T,C] = h W2^T + b2; w1 [F,C], b1 [F], w2 [C,F], b2 [C]. out and h are overwritten. */
void fri_ffn_forward(float *out, float *h, const float *inp, const float *w1, const float *b1, const float *w2,
                     const float *b2, size_t T, size_t C, size_t F);
/* dinp [T,C], dw1, db1, dw2, db2 += the gradients given dout [T,C]; dh [T,F] is scratch
 * (overwritten). */
void fri_ffn_backward(float *dinp, float *dw1, float *db1, float *dw2, float *db2, float *dh, const float *dout,
                      const float *inp, const float *h, const float *w1, const float *w2, size_t T, size_t C,
                      size_t F);

/* Inverted dropout: mask[N] = 0 with probability p', else 1 / (1 - p'), p' = p rounded to
 * a multiple of 2^-16 (each entry takes 16 bits of one 32-bit draw: a quarter of the
 * generator's work of a double per entry); 0 <= p < 1, and a p' of 0 is all 1 and draws
 * nothing. Applying it is fri_mul_forward/backward. */
void fri_dropout_mask(float *mask, size_t N, float p, fr_rng *r);

/* Softmax cross-entropy of each row of logits [T,N] against its target[t] (< N): returns
 * scale * sum_t (log sum_j exp(logits[t,j]) - logits[t,target[t]]), summed in double
 * (the max is subtracted before exp). With dlogits non-NULL, writes (overwrites, not +=)
 * its gradient dlogits[t,j] = scale * (softmax(logits[t])_j - [j == target[t]]);
 * dlogits may be logits (in place). */
double fri_softmax_xent(float *dlogits, const float *logits, const uint32_t *target, size_t T, size_t N,
                        double scale);

#endif
