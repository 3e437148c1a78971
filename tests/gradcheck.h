/* Central-difference gradient checking shared by test_layers.c and test_models.c.
 * loss(ctx) recomputes the scalar loss (summed in double) from the current values;
 * the caller has already computed the analytic gradient. */
#ifndef FEDREC_TESTS_GRADCHECK_H
#define FEDREC_TESTS_GRADCHECK_H
#include <math.h>
#include <stdio.h>

#define GC_EPS 1e-3f
#define GC_REL 2e-2
#define GC_ABS 1e-3

static inline double gc_numerical(double (*loss)(void *), void *ctx, float *x, float eps) {
    float keep = *x;
    *x = keep + eps;
    double lp = loss(ctx);
    *x = keep - eps;
    double lm = loss(ctx);
    *x = keep;
    return (lp - lm) / (2.0 * (double)eps);
}

/* Returns the number of entries of x[0..n) whose numerical and analytic gradients
 * disagree beyond |a - num| <= GC_ABS + GC_REL * max(|a|, |num|); prints the first few.
 * A ReLU kink closer than eps to the point spoils the central difference, so a
 * disagreement is retried with eps / 8 (looser absolute bound for float rounding) and
 * counts only if both disagree: a wrong gradient fails both. */
static inline int gc_check(double (*loss)(void *), void *ctx, float *x, const float *grad, size_t n,
                           const char *what) {
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        double a = grad[i], num = gc_numerical(loss, ctx, &x[i], GC_EPS);
        if (fabs(a - num) <= GC_ABS + GC_REL * fmax(fabs(a), fabs(num))) continue;
        double num2 = gc_numerical(loss, ctx, &x[i], GC_EPS / 8);
        if (fabs(a - num2) <= 4 * GC_ABS + GC_REL * fmax(fabs(a), fabs(num2))) continue;
        if (bad < 5)
            fprintf(stderr, "gradcheck %s[%zu]: analytic %.6g, numerical %.6g (eps/8: %.6g)\n", what, i, a,
                    num, num2);
        bad++;
    }
    return bad;
}
#endif
