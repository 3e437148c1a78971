/* Layers: BLAS vs plain-loop linear layers agree; every layer's backward matches central
 * differences of its forward; losses match hand values and stay finite at extremes. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fedrec/model.h"
#include "gradcheck.h"
#include "model/layers.h"

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

Test(linear, blas_loops_naive_agree) {
    size_t shapes[][3] = {{32, 64, 32}, {256, 64, 32}, {32, 32, 16}, {256, 16, 8}, {32, 16, 1}, {5, 3, 7}, {1, 1, 1}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        size_t B = shapes[s][0], C = shapes[s][1], OC = shapes[s][2];
        float *x = malloc(B * C * 4), *w = malloc(OC * C * 4), *b = malloc(OC * 4), *d = malloc(B * OC * 4);
        fill(x, B * C, 1, 1); fill(w, OC * C, 2, 1); fill(b, OC, 3, 1); fill(d, B * OC, 4, 1);
        float *y[4], *dx[4], *dw[4], *db[4];
        for (int v = 0; v < 4; v++) {
            y[v] = calloc(B * OC, 4); dx[v] = calloc(B * C, 4); dw[v] = calloc(OC * C, 4); db[v] = calloc(OC, 4);
            /* start gradients at 1 so the += semantics are checked too */
            for (size_t i = 0; i < B * C; i++) dx[v][i] = 1;
            for (size_t i = 0; i < OC * C; i++) dw[v][i] = 1;
            for (size_t i = 0; i < OC; i++) db[v][i] = 1;
        }
        fri_linear_forward_naive(y[0], x, w, b, B, C, OC);
        fri_linear_backward_naive(dx[0], dw[0], db[0], d, x, w, B, C, OC);
        fri_linear_forward_blas(y[1], x, w, b, B, C, OC);
        fri_linear_backward_blas(dx[1], dw[1], db[1], d, x, w, B, C, OC);
        fri_linear_forward_loops(y[2], x, w, b, B, C, OC);
        fri_linear_backward_loops(dx[2], dw[2], db[2], d, x, w, B, C, OC);
        fri_linear_forward(y[3], x, w, b, B, C, OC);
        fri_linear_backward(dx[3], dw[3], db[3], d, x, w, B, C, OC);
        /* an independent double-precision value for one output */
        double ref = b[OC - 1];
        for (size_t c = 0; c < C; c++) ref += (double)x[(B - 1) * C + c] * w[(OC - 1) * C + c];
        cr_assert_float_eq(y[0][B * OC - 1], ref, 1e-4);
        for (int v = 1; v < 4; v++) {
            for (size_t i = 0; i < B * OC; i++) cr_assert_float_eq(y[v][i], y[0][i], 1e-4 * (1 + fabsf(y[0][i])), "y v%d", v);
            for (size_t i = 0; i < B * C; i++) cr_assert_float_eq(dx[v][i], dx[0][i], 1e-4 * (1 + fabsf(dx[0][i])));
            for (size_t i = 0; i < OC * C; i++) cr_assert_float_eq(dw[v][i], dw[0][i], 1e-3 * (1 + fabsf(dw[0][i])));
            for (size_t i = 0; i < OC; i++) cr_assert_float_eq(db[v][i], db[0][i], 1e-3 * (1 + fabsf(db[0][i])));
        }
        for (int v = 0; v < 4; v++) { free(y[v]); free(dx[v]); free(dw[v]); free(db[v]); }
        free(x); free(w); free(b); free(d);
    }
}

/* The shared-prefix linear layer (one user per minibatch) against the naive layer on the
 * same input: rows share their first P values. dinp: the shared part's gradient summed
 * over rows must equal row 0 of the fast version's (which puts it all there); the rest
 * of dinp elementwise. */
/* The transpose against its definition, on block (4x4 SSE) and odd shapes, with a row
 * stride larger than the block. */
Test(linear, transpose_by_definition) {
    const size_t shapes[][3] = {{32, 32, 64}, {16, 8, 8}, {5, 7, 9}, {8, 12, 12}};
    for (size_t k = 0; k < sizeof shapes / sizeof *shapes; k++) {
        size_t R = shapes[k][0], Cc = shapes[k][1], ld = shapes[k][2];
        float *w = malloc(R * ld * 4), *t = malloc(R * Cc * 4);
        cr_assert(w && t);
        fill(w, R * ld, 21, 1.0f);
        fri_transpose(t, w, R, Cc, ld);
        for (size_t r = 0; r < R; r++)
            for (size_t c = 0; c < Cc; c++) cr_assert_eq(t[c * R + r], w[r * ld + c], "(%zu, %zu) of %zux%zu", r, c, R, Cc);
        free(w); free(t);
    }
}

Test(linear, shared_prefix_equals_naive) {
    const size_t shapes[][4] = {{32, 64, 32, 32}, {8, 16, 8, 5}, {33, 20, 7, 19}, {256, 64, 32, 32}};
    for (size_t k = 0; k < sizeof shapes / sizeof *shapes; k++) {
        size_t B = shapes[k][0], C = shapes[k][1], OC = shapes[k][2], P = shapes[k][3];
        float *x = malloc(B * C * 4), *w = malloc(OC * C * 4), *b = malloc(OC * 4), *d = malloc(B * OC * 4);
        float *y0 = malloc(B * OC * 4), *y1 = malloc(B * OC * 4);
        float *dx0 = calloc(B * C, 4), *dx1 = calloc(B * C, 4), *dw0 = calloc(OC * C, 4), *dw1 = calloc(OC * C, 4);
        float *db0 = calloc(OC, 4), *db1 = calloc(OC, 4), *wt = malloc(OC * C * 4), *y2 = malloc(B * OC * 4);
        cr_assert(x && w && b && d && y0 && y1 && dx0 && dx1 && dw0 && dw1 && db0 && db1 && wt && y2);
        fill(x, B * C, 11 + (uint32_t)k, 1.0f);
        for (size_t i = 1; i < B; i++) memcpy(x + i * C, x, P * 4); /* the shared prefix */
        fill(w, OC * C, 12, 0.3f);
        fill(b, OC, 13, 0.1f);
        fill(d, B * OC, 14, 1.0f);
        fri_linear_forward_naive(y0, x, w, b, B, C, OC);
        fri_linear_backward_naive(dx0, dw0, db0, d, x, w, B, C, OC);
        fri_linear_forward_shared(y1, x, w, b, B, C, OC, P, wt);
        fri_linear_backward_shared(dx1, dw1, db1, d, x, w, B, C, OC, P);
        for (size_t i = 0; i < B * OC; i++) cr_assert_float_eq(y1[i], y0[i], 1e-5 * (1 + fabsf(y0[i])), "y %zu", i);
        /* the transposed-weights forward on the whole layer */
        fri_linear_forward_ws(y2, x, w, b, B, C, OC, wt);
        for (size_t i = 0; i < B * OC; i++) cr_assert_float_eq(y2[i], y0[i], 1e-5 * (1 + fabsf(y0[i])), "y ws %zu", i);
        for (size_t i = 0; i < OC * C; i++) cr_assert_float_eq(dw1[i], dw0[i], 1e-4 * (1 + fabsf(dw0[i])), "dw %zu", i);
        for (size_t i = 0; i < OC; i++) cr_assert_float_eq(db1[i], db0[i], 1e-4 * (1 + fabsf(db0[i])), "db %zu", i);
        for (size_t c = 0; c < C; c++) {
            if (c < P) {
                double sum = 0;
                for (size_t i = 0; i < B; i++) sum += dx0[i * C + c];
                cr_assert_float_eq(dx1[c], sum, 1e-4 * (1 + fabs(sum)), "dinp shared col %zu", c);
                for (size_t i = 1; i < B; i++) cr_assert_eq(dx1[i * C + c], 0.0f, "dinp row %zu col %zu", i, c);
            } else {
                for (size_t i = 0; i < B; i++)
                    cr_assert_float_eq(dx1[i * C + c], dx0[i * C + c], 1e-5 * (1 + fabsf(dx0[i * C + c])));
            }
        }
        free(x); free(w); free(b); free(d); free(y0); free(y1);
        free(dx0); free(dx1); free(dw0); free(dw1); free(db0); free(db1); free(wt); free(y2);
    }
}

/* ---- gradient checks: L = sum(out * r) so dout = r ---- */
enum { B = 3, C = 4, OC = 5 };
static float X[B * C], W[OC * C], BI[OC], A2[B * (C + 1)], R[B * OC > B * C * 2 ? B * OC : B * C * 2], Y[B * C * 2];
static float TABLE[6 * C];
static const float *LW; /* the losses' example weights: NULL, or WT */
static float WT[B * C];
static uint32_t IDX[B] = {4, 1, 4};

static double l_linear(void *c) { (void)c; fri_linear_forward_naive(Y, X, W, BI, B, C, OC); return wsum(Y, R, B * OC); }
static double l_embed(void *c) { (void)c; fri_embedding_forward(Y, TABLE, IDX, B, C); return wsum(Y, R, B * C); }
static double l_relu(void *c) { (void)c; fri_relu_forward(Y, X, B * C); return wsum(Y, R, B * C); }
static double l_sigmoid(void *c) { (void)c; fri_sigmoid_forward(Y, X, B * C); return wsum(Y, R, B * C); }
static double l_mul(void *c) { (void)c; fri_mul_forward(Y, X, A2, B * C); return wsum(Y, R, B * C); }
static double l_dot(void *c) { (void)c; fri_dot_forward(Y, X, A2, B, C); return wsum(Y, R, B); }
static double l_concat(void *c) { (void)c; fri_concat_forward(Y, X, A2, B, C - 1, C + 1); return wsum(Y, R, B * C * 2); }
static double l_mse(void *c) { (void)c; return fri_mse_forward_backward(NULL, X, A2, LW, B * C); }
static double l_bce(void *c) { (void)c; return fri_bce_forward_backward(NULL, X, A2, LW, B * C); }
static double l_bpr(void *c) { (void)c; return fri_bpr_forward_backward(NULL, NULL, X, A2, LW, B * C); }
static double l_l2(void *c) { (void)c; return fri_l2_forward_backward(NULL, X, B, C, 0.7); }

static void setup_gc(void) {
    fill(X, B * C, 11, 2); fill(W, OC * C, 12, 1); fill(BI, OC, 13, 1); fill(A2, B * (C + 1), 14, 2);
    fill(R, sizeof R / 4, 15, 1); fill(TABLE, 6 * C, 16, 1);
    for (size_t i = 0; i < B * C; i++) if (fabsf(X[i]) < 0.05f) X[i] = 0.3f; /* away from the ReLU kink */
}

Test(gradcheck, linear) {
    setup_gc();
    float dx[B * C] = {0}, dw[OC * C] = {0}, db[OC] = {0};
    fri_linear_backward(dx, dw, db, R, X, W, B, C, OC);
    cr_assert_eq(gc_check(l_linear, NULL, X, dx, B * C, "dx"), 0);
    cr_assert_eq(gc_check(l_linear, NULL, W, dw, OC * C, "dw"), 0);
    cr_assert_eq(gc_check(l_linear, NULL, BI, db, OC, "db"), 0);
}

Test(gradcheck, embedding_touches_only_used_rows) {
    setup_gc();
    float dt[6 * C] = {0};
    fr_rowset rows;
    cr_assert_eq(fr_rowset_init(&rows, 6), FR_OK);
    fri_embedding_backward(dt, &rows, R, IDX, B, C);
    cr_assert_eq(gc_check(l_embed, NULL, TABLE, dt, 6 * C, "dtable"), 0);
    cr_assert_eq(rows.count, 2);
    cr_assert_eq(rows.rows[0], 4);
    cr_assert_eq(rows.rows[1], 1);
    for (int r = 0; r < 6; r++)
        if (r != 4 && r != 1)
            for (int c = 0; c < C; c++) cr_assert_eq(dt[r * C + c], 0.0f);
    fr_rowset_clear(&rows);
    cr_assert_eq(rows.count, 0);
    cr_assert_eq(rows.mark[4], 0);
    fr_rowset_destroy(&rows);
}

Test(gradcheck, elementwise) {
    setup_gc();
    float d1[B * C] = {0}, d2[B * (C + 1)] = {0};
    l_relu(NULL);
    fri_relu_backward(d1, R, Y, B * C);
    cr_assert_eq(gc_check(l_relu, NULL, X, d1, B * C, "relu"), 0);
    memset(d1, 0, sizeof d1);
    l_sigmoid(NULL);
    fri_sigmoid_backward(d1, R, Y, B * C);
    cr_assert_eq(gc_check(l_sigmoid, NULL, X, d1, B * C, "sigmoid"), 0);
    memset(d1, 0, sizeof d1);
    fri_mul_backward(d1, d2, R, X, A2, B * C);
    cr_assert_eq(gc_check(l_mul, NULL, X, d1, B * C, "mul a"), 0);
    cr_assert_eq(gc_check(l_mul, NULL, A2, d2, B * C, "mul b"), 0);
    memset(d1, 0, sizeof d1); memset(d2, 0, sizeof d2);
    fri_dot_backward(d1, d2, R, X, A2, B, C);
    cr_assert_eq(gc_check(l_dot, NULL, X, d1, B * C, "dot a"), 0);
    cr_assert_eq(gc_check(l_dot, NULL, A2, d2, B * C, "dot b"), 0);
    memset(d1, 0, sizeof d1); memset(d2, 0, sizeof d2);
    fri_concat_backward(d1, d2, R, B, C - 1, C + 1);
    cr_assert_eq(gc_check(l_concat, NULL, X, d1, B * (C - 1), "concat a"), 0);
    cr_assert_eq(gc_check(l_concat, NULL, A2, d2, B * (C + 1), "concat b"), 0);
}

Test(gradcheck, losses) {
    setup_gc();
    LW = NULL;
    float d1[B * C] = {0}, d2[B * C] = {0};
    for (size_t i = 0; i < B * C; i++) A2[i] = (float)(i % 2); /* 0/1 labels for bce */
    fri_mse_forward_backward(d1, X, A2, LW, B * C);
    cr_assert_eq(gc_check(l_mse, NULL, X, d1, B * C, "mse"), 0);
    fri_bce_forward_backward(d1, X, A2, LW, B * C);
    cr_assert_eq(gc_check(l_bce, NULL, X, d1, B * C, "bce"), 0);
    fill(A2, B * (C + 1), 14, 2);
    fri_bpr_forward_backward(d1, d2, X, A2, LW, B * C);
    cr_assert_eq(gc_check(l_bpr, NULL, X, d1, B * C, "bpr pos"), 0);
    cr_assert_eq(gc_check(l_bpr, NULL, A2, d2, B * C, "bpr neg"), 0);
    memset(d1, 0, sizeof d1);
    fri_l2_forward_backward(d1, X, B, C, 0.7);
    cr_assert_eq(gc_check(l_l2, NULL, X, d1, B * C, "l2"), 0);
}

/* Weighted losses: the gradient of (1/B) sum w_i l_i by central differences, with weights
 * far from 1 (confidences of implicit counts, and a 0). */
Test(gradcheck, weighted_losses) {
    setup_gc();
    for (size_t i = 0; i < B * C; i++) WT[i] = i == 5 ? 0.0f : 1.0f + 0.75f * (float)log1p((double)(i * 7 % 11));
    LW = WT;
    float d1[B * C] = {0}, d2[B * C] = {0};
    for (size_t i = 0; i < B * C; i++) A2[i] = (float)(i % 2);
    fri_mse_forward_backward(d1, X, A2, LW, B * C);
    cr_assert_eq(gc_check(l_mse, NULL, X, d1, B * C, "weighted mse"), 0);
    fri_bce_forward_backward(d1, X, A2, LW, B * C);
    cr_assert_eq(gc_check(l_bce, NULL, X, d1, B * C, "weighted bce"), 0);
    cr_assert_eq(d1[5], 0.0f, "weight 0: no gradient");
    fill(A2, B * (C + 1), 14, 2);
    fri_bpr_forward_backward(d1, d2, X, A2, LW, B * C);
    cr_assert_eq(gc_check(l_bpr, NULL, X, d1, B * C, "weighted bpr pos"), 0);
    cr_assert_eq(gc_check(l_bpr, NULL, A2, d2, B * C, "weighted bpr neg"), 0);
    LW = NULL;
}

/* Weights are a scale of each example's own term: by hand, and weights of 1 give the bits
 * of no weights. */
Test(losses, weighted_by_hand) {
    float x0 = 0, y1 = 1, w3 = 3, d;
    cr_assert_float_eq(fri_bce_forward_backward(&d, &x0, &y1, &w3, 1), 3 * log(2.0), 1e-12);
    cr_assert_float_eq(d, -1.5f, 1e-7);
    /* two examples, weights 2 and 1: mean (2 l_0 + l_1) / 2 */
    float x2[2] = {0.5f, -1.0f}, y2[2] = {1, 0}, w2[2] = {2, 1}, d2[2];
    double l0 = log1p(exp(-0.5)), l1 = log1p(exp(-1.0));
    cr_assert_float_eq(fri_bce_forward_backward(d2, x2, y2, w2, 2), (2 * l0 + l1) / 2, 1e-12);
    cr_assert_float_eq(d2[0], (float)(2 * (1 / (1 + exp(-0.5)) - 1) / 2), 1e-7);
    cr_assert_float_eq(d2[1], (float)((1 / (1 + exp(1.0))) / 2), 1e-7);
    float pos = 1, neg = 0, dp, dn, w = 2.5f;
    cr_assert_float_eq(fri_bpr_forward_backward(&dp, &dn, &pos, &neg, &w, 1), 2.5 * 0.31326168751822286, 1e-9);
    cr_assert_float_eq(dp, -2.5f * 0.2689414f, 1e-6);
    cr_assert_float_eq(dn, 2.5f * 0.2689414f, 1e-6);
    float p[12], t[12], ones[12], ga[12], gb[12], na[12], nb[12];
    for (int i = 0; i < 12; i++) { p[i] = 0.3f * (float)i - 1.7f; t[i] = (float)(i % 2); ones[i] = 1.0f; }
    double a, b;
    a = fri_bce_forward_backward(ga, p, t, ones, 12); b = fri_bce_forward_backward(gb, p, t, NULL, 12);
    cr_assert(a == b && !memcmp(ga, gb, sizeof ga), "bce: weights of 1 are no weights");
    a = fri_mse_forward_backward(ga, p, t, ones, 12); b = fri_mse_forward_backward(gb, p, t, NULL, 12);
    cr_assert(a == b && !memcmp(ga, gb, sizeof ga), "mse: weights of 1 are no weights");
    a = fri_bpr_forward_backward(ga, na, p, t, ones, 12); b = fri_bpr_forward_backward(gb, nb, p, t, NULL, 12);
    cr_assert(a == b && !memcmp(ga, gb, sizeof ga) && !memcmp(na, nb, sizeof na), "bpr: weights of 1 are no weights");
}

Test(gradcheck, detects_a_wrong_gradient) {
    setup_gc();
    float dx[B * C] = {0}, dw[OC * C] = {0}, db[OC] = {0};
    fri_linear_backward(dx, dw, db, R, X, W, B, C, OC);
    dw[3] *= 1.1f;
    cr_assert_eq(gc_check(l_linear, NULL, W, dw, OC * C, "dw (corrupted on purpose)"), 1);
}

Test(losses, hand_values_and_extremes) {
    float x0 = 0, y1 = 1, d;
    cr_assert_float_eq(fri_bce_forward_backward(&d, &x0, &y1, NULL, 1), log(2.0), 1e-12);
    cr_assert_float_eq(d, -0.5f, 1e-7);
    float big = 100, y0 = 0;
    double l = fri_bce_forward_backward(&d, &big, &y0, NULL, 1);
    cr_assert(isfinite(l));
    cr_assert_float_eq(l, 100.0, 1e-9);
    cr_assert_float_eq(d, 1.0f, 1e-7);
    float nbig = -100;
    cr_assert_float_eq(fri_bce_forward_backward(&d, &nbig, &y1, NULL, 1), 100.0, 1e-9);
    float pos = 1, neg = 0, dp, dn;
    cr_assert_float_eq(fri_bpr_forward_backward(&dp, &dn, &pos, &neg, NULL, 1), 0.31326168751822286, 1e-9);
    cr_assert_float_eq(dp, -0.2689414f, 1e-6);
    cr_assert_float_eq(dn, 0.2689414f, 1e-6);
    float p2[2] = {3, 1}, t2[2] = {1, 2};
    cr_assert_float_eq(fri_mse_forward_backward(NULL, p2, t2, NULL, 2), 2.5, 1e-12);
    float s, in = -200;
    fri_sigmoid_forward(&s, &in, 1);
    cr_assert(s >= 0 && s < 1e-30);
}
