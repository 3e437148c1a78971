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

/* Returns the number of entries of x[0..n) whose numerical and analytic gradients
 * disagree beyond |a - num| <= GC_ABS + GC_REL * max(|a|, |num|); prints the first few. */
static inline int gc_check(double (*loss)(void *), void *ctx, float *x, const float *grad, size_t n,
                           const char *what) {
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        float keep = x[i];
        x[i] = keep + GC_EPS;
        double lp = loss(ctx);
        x[i] = keep - GC_EPS;
        double lm = loss(ctx);
        x[i] = keep;
        double num = (lp - lm) / (2.0 * (double)GC_EPS), a = grad[i];
        double tol = GC_ABS + GC_REL * fmax(fabs(a), fabs(num));
        if (!(fabs(a - num) <= tol)) {
            if (bad < 5) fprintf(stderr, "gradcheck %s[%zu]: analytic %.6g, numerical %.6g\n", what, i, a, num);
            bad++;
        }
    }
    return bad;
}
#endif
