/* Layers of the self-attention sequential model (see layers_seq.h). Plain loops except
 * the feed-forward's two products, which are fri_linear (BLAS where it pays); every sum
 * runs in a fixed order, so the same inputs give the same bits on every thread. */
#include <math.h>
#include <string.h>

#include "model/layers.h"
#include "model/layers_seq.h"

void fri_layernorm_forward(float *restrict out, float *restrict mean, float *restrict rstd,
                           const float *restrict inp, const float *restrict w, const float *restrict b, size_t T,
                           size_t C) {
    for (size_t t = 0; t < T; t++) {
        const float *x = inp + t * C;
        float m = 0.0f;
        for (size_t c = 0; c < C; c++) m += x[c];
        m /= (float)C;
        float v = 0.0f;
        for (size_t c = 0; c < C; c++) v += (x[c] - m) * (x[c] - m);
        v /= (float)C;
        float s = 1.0f / sqrtf(v + FRI_LN_EPS);
        float *o = out + t * C;
        for (size_t c = 0; c < C; c++) o[c] = (x[c] - m) * s * w[c] + b[c];
        mean[t] = m;
        rstd[t] = s;
    }
}

void fri_layernorm_backward(float *restrict dinp, float *restrict dw, float *restrict db, const float *restrict dout,
                            const float *restrict inp, const float *restrict w, const float *restrict mean,
                            const float *restrict rstd, size_t T, size_t C) {
    for (size_t t = 0; t < T; t++) {
        const float *x = inp + t * C, *d = dout + t * C;
        const float m = mean[t], s = rstd[t];
        /* dxhat = dout * w; dx = s * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)) */
        float sum_d = 0.0f, sum_dx = 0.0f;
        for (size_t c = 0; c < C; c++) {
            float xh = (x[c] - m) * s, dxh = d[c] * w[c];
            sum_d += dxh;
            sum_dx += dxh * xh;
            dw[c] += d[c] * xh;
            db[c] += d[c];
        }
        sum_d /= (float)C;
        sum_dx /= (float)C;
        float *dx = dinp + t * C;
        for (size_t c = 0; c < C; c++) {
            float xh = (x[c] - m) * s;
            dx[c] += s * (d[c] * w[c] - sum_d - xh * sum_dx);
        }
    }
}

void fri_attention_forward(float *restrict out, float *restrict att, const float *restrict q,
                           const float *restrict k, const float *restrict v, size_t T, size_t C, size_t NH) {
    const size_t D = C / NH;
    const float scale = 1.0f / sqrtf((float)D);
    for (size_t h = 0; h < NH; h++) {
        for (size_t t = 0; t < T; t++) {
            const float *qt = q + t * C + h * D;
            float *p = att + (h * T + t) * T;
            float mx = -INFINITY;
            for (size_t j = 0; j <= t; j++) {
                p[j] = fri_dot(qt, k + j * C + h * D, D) * scale;
                if (p[j] > mx) mx = p[j];
            }
            float z = 0.0f;
            for (size_t j = 0; j <= t; j++) {
                p[j] = expf(p[j] - mx);
                z += p[j];
            }
            const float iz = 1.0f / z;
            for (size_t j = 0; j <= t; j++) p[j] *= iz;
            for (size_t j = t + 1; j < T; j++) p[j] = 0.0f;
            float *o = out + t * C + h * D;
            for (size_t c = 0; c < D; c++) o[c] = 0.0f;
            for (size_t j = 0; j <= t; j++) {
                const float *vj = v + j * C + h * D;
                const float pj = p[j];
                for (size_t c = 0; c < D; c++) o[c] += pj * vj[c];
            }
        }
    }
}

void fri_attention_backward(float *restrict dq, float *restrict dk, float *restrict dv, float *restrict tmp,
                            const float *restrict dout, const float *restrict att, const float *restrict q,
                            const float *restrict k, const float *restrict v, size_t T, size_t C, size_t NH) {
    const size_t D = C / NH;
    const float scale = 1.0f / sqrtf((float)D);
    for (size_t h = 0; h < NH; h++) {
        for (size_t t = 0; t < T; t++) {
            const float *p = att + (h * T + t) * T;
            const float *dot = dout + t * C + h * D;
            /* dp_j = dout_t . v_j; dv_j += p_j dout_t */
            float pdp = 0.0f;
            for (size_t j = 0; j <= t; j++) {
                tmp[j] = fri_dot(dot, v + j * C + h * D, D);
                pdp += p[j] * tmp[j];
                float *dvj = dv + j * C + h * D;
                for (size_t c = 0; c < D; c++) dvj[c] += p[j] * dot[c];
            }
            /* ds_j = p_j (dp_j - sum_i p_i dp_i); dq_t += scale ds_j k_j; dk_j += scale ds_j q_t */
            const float *qt = q + t * C + h * D;
            float *dqt = dq + t * C + h * D;
            for (size_t j = 0; j <= t; j++) {
                const float ds = p[j] * (tmp[j] - pdp) * scale;
                const float *kj = k + j * C + h * D;
                float *dkj = dk + j * C + h * D;
                for (size_t c = 0; c < D; c++) {
                    dqt[c] += ds * kj[c];
                    dkj[c] += ds * qt[c];
                }
            }
        }
    }
}

void fri_ffn_forward(float *out, float *h, const float *inp, const float *w1, const float *b1, const float *w2,
                     const float *b2, size_t T, size_t C, size_t F) {
    fri_linear_forward(h, inp, w1, b1, T, C, F);   /* [T,F] */
    fri_relu_forward(h, h, T * F);
    fri_linear_forward(out, h, w2, b2, T, F, C);   /* [T,C] */
}

void fri_ffn_backward(float *dinp, float *dw1, float *db1, float *dw2, float *db2, float *dh, const float *dout,
                      const float *inp, const float *h, const float *w1, const float *w2, size_t T, size_t C,
                      size_t F) {
    memset(dh, 0, T * F * sizeof *dh);
    fri_linear_backward(dh, dw2, db2, dout, h, w2, T, F, C);
    /* relu in place: h > 0 where the pre-activation was */
    for (size_t i = 0; i < T * F; i++)
        if (!(h[i] > 0.0f)) dh[i] = 0.0f;
    fri_linear_backward(dinp, dw1, db1, dh, inp, w1, T, C, F);
}

void fri_dropout_mask(float *mask, size_t N, float p, fr_rng *r) {
    const uint32_t thr = (uint32_t)lrint((double)p * 65536.0); /* drop when 16 random bits < thr */
    if (thr == 0) {
        for (size_t i = 0; i < N; i++) mask[i] = 1.0f;
        return;
    }
    const float keep = (float)(65536.0 / (65536.0 - (double)thr)); /* the mean stays 1 */
    for (size_t i = 0; i < N; i += 2) {
        const uint32_t x = fr_rng_u32(r);
        mask[i] = (x & 0xffffu) < thr ? 0.0f : keep;
        if (i + 1 < N) mask[i + 1] = (x >> 16) < thr ? 0.0f : keep;
    }
}

double fri_softmax_xent(float *dlogits, const float *logits, const uint32_t *target, size_t T, size_t N,
                        double scale) {
    double loss = 0.0;
    for (size_t t = 0; t < T; t++) {
        const float *s = logits + t * N;
        float mx = s[0];
        for (size_t j = 1; j < N; j++) mx = s[j] > mx ? s[j] : mx;
        const float st = s[target[t]];
        double z = 0.0;
        if (dlogits) { /* exp once, kept in dlogits (which may be logits) and normalised below */
            float *d = dlogits + t * N;
            for (size_t j = 0; j < N; j++) {
                d[j] = expf(s[j] - mx);
                z += (double)d[j];
            }
            const float k = (float)(scale / z);
            for (size_t j = 0; j < N; j++) d[j] *= k;
            d[target[t]] -= (float)scale;
        } else {
            for (size_t j = 0; j < N; j++) z += (double)expf(s[j] - mx);
        }
        loss += log(z) + (double)mx - (double)st;
    }
    return scale * loss;
}
