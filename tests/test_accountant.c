/* The privacy accountant (src/privacy/accountant.c) against independent computations:
 *   - two libraries, opacus and dp-accounting, on a grid of (q, σ, R, δ) with the orders
 *     each uses (tests/ref/dp_ref.txt, made by tests/ref/make_dp_ref.py);
 *   - q = 1: the Gaussian mechanism's closed form α/(2σ²) per step, and a hand-worked ε;
 *   - the subsampled RDP at integer and fractional orders against the Rényi divergence of
 *     (1 − q)N(0, σ²) + qN(1, σ²) from N(0, σ²) by quadrature, and at orders 2 and 3
 *     against their short closed forms where A_α is within 1e-30 of 1;
 * then composition, monotonicity, the σ search, extreme arguments and argument errors. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fedrec/privacy.h"

#define assert_msg(sub) cr_assert(strstr(fr_errmsg(), (sub)) != NULL, "expected \"%s\" in: %s", (sub), fr_errmsg())

#define PI 3.14159265358979323846

static double rel(double a, double b) { return fabs(a - b) / fmax(fabs(b), 1e-300); }

/* ------------------------------------------------------------------ reference libraries */

enum { LIB_OPACUS, LIB_DPACC, LIB_DPACC_INT, N_LIBS };
static const char *const k_libs[N_LIBS] = {"opacus", "dpacc", "dpacc_int"};
#define MAX_REF_ORDERS 512
#define MAX_REF_ROWS 1024

typedef struct {
    int lib;
    double q, sigma, delta, eps, order;
    uint64_t steps;
} ref_row;

typedef struct {
    double orders[N_LIBS][MAX_REF_ORDERS];
    size_t n_orders[N_LIBS];
    ref_row rows[MAX_REF_ROWS];
    size_t n_rows;
} ref_file;

static int lib_index(const char *name) {
    for (int i = 0; i < N_LIBS; i++)
        if (!strcmp(name, k_libs[i])) return i;
    cr_assert_fail("unknown library '%s' in dp_ref.txt", name);
    return -1;
}

static ref_file *read_ref(void) {
    static ref_file r;
    memset(&r, 0, sizeof r);
    const char *path = FR_SOURCE_DIR "/tests/ref/dp_ref.txt";
    FILE *f = fopen(path, "r");
    cr_assert(f, "cannot open %s", path);
    char line[16384], name[32];
    size_t lineno = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        cr_assert(strchr(line, '\n'), "%s:%zu: line too long", path, lineno);
        int used = 0;
        if (line[0] == '#' || line[0] == '\n') continue;
        if (!strncmp(line, "orders ", 7)) {
            size_t n;
            cr_assert_eq(sscanf(line + 7, "%31s %zu%n", name, &n, &used), 2, "%s:%zu", path, lineno);
            int lib = lib_index(name);
            cr_assert(n >= 1 && n <= MAX_REF_ORDERS, "%s:%zu: %zu orders", path, lineno, n);
            const char *p = line + 7 + used;
            for (size_t i = 0; i < n; i++) {
                char *end;
                r.orders[lib][i] = strtod(p, &end);
                cr_assert(end != p, "%s:%zu: order %zu", path, lineno, i);
                p = end;
            }
            r.n_orders[lib] = n;
        } else {
            ref_row *w = &r.rows[r.n_rows];
            unsigned long long steps;
            cr_assert_eq(sscanf(line, "eps %31s %lf %lf %llu %lf %lf %lf", name, &w->q, &w->sigma, &steps, &w->delta,
                                &w->eps, &w->order),
                         7, "%s:%zu: %s", path, lineno, line);
            w->lib = lib_index(name);
            w->steps = steps;
            cr_assert(++r.n_rows < MAX_REF_ROWS, "%s: too many rows", path);
        }
    }
    fclose(f);
    for (int i = 0; i < N_LIBS; i++) cr_assert(r.n_orders[i] > 0, "no orders for %s", k_libs[i]);
    return &r;
}

static bool is_int(double a) { return a == floor(a); }

/* fedrec's ε with each library's orders agrees with that library to 1e-4 relative. For
 * dp-accounting's full order list (integer and fractional), its ε is an upper bound: it
 * sums the absolute values of the fractional-order series, and drops a fractional order
 * whose series has not converged after 1000 terms. So fedrec's ε is never above it, and
 * agrees with it wherever fedrec's best order is an integer (there dp-accounting's value
 * is exact and no lower elsewhere); at its integer orders alone it agrees everywhere. */
Test(accountant, agrees_with_opacus_and_dp_accounting_on_the_reference_grid) {
    ref_file *r = read_ref();
    size_t seen[N_LIBS] = {0}, rows[N_LIBS] = {0}, dpacc_above = 0;
    double dpacc_ratio = 1;
    double worst[N_LIBS] = {0};
    for (size_t i = 0; i < r->n_rows; i++) {
        const ref_row *w = &r->rows[i];
        double eps, order;
        cr_assert_eq(fr_dp_epsilon(w->q, w->sigma, w->steps, w->delta, r->orders[w->lib], r->n_orders[w->lib], &eps,
                                   &order),
                     FR_OK, "%s", fr_errmsg());
        double d = rel(eps, w->eps);
        const char *what = k_libs[w->lib];
        rows[w->lib]++;
        if (w->lib == LIB_DPACC && !is_int(order)) {
            cr_assert(eps <= w->eps * (1 + 1e-4), "%s q=%g sigma=%g R=%llu delta=%g: fedrec %.10g (order %g) above %.10g",
                      what, w->q, w->sigma, (unsigned long long)w->steps, w->delta, eps, order, w->eps);
            if (d > 1e-4) dpacc_above++;
            if (w->eps / eps > dpacc_ratio) dpacc_ratio = w->eps / eps;
            continue;
        }
        cr_assert(d <= 1e-4, "%s q=%g sigma=%g R=%llu delta=%g: fedrec %.10g (order %g), %s %.10g (order %g)", what,
                  w->q, w->sigma, (unsigned long long)w->steps, w->delta, eps, order, what, w->eps, w->order);
        if (d > worst[w->lib]) worst[w->lib] = d;
        seen[w->lib]++;
    }
    /* the whole grid: q in {0.001, 0.01, 0.1, 1}, sigma in {0.5, 0.8, 1, 2, 5},
     * R in {1, 10, 100, 1000, 10000}, delta in {1e-5, 1e-7} */
    cr_assert_eq(seen[LIB_OPACUS], 200);
    cr_assert_eq(seen[LIB_DPACC_INT], 200);
    cr_assert_eq(rows[LIB_DPACC], 200);
    cr_assert_geq(seen[LIB_DPACC], 60, "only %zu of dp-accounting's rows had an integer best order", seen[LIB_DPACC]);
    cr_log_info("worst relative difference: opacus %.2g, dp-accounting %.2g (integer orders %.2g); dp-accounting "
                "above fedrec by > 1e-4 at %zu points (fractional orders), by a factor up to %.3g",
                worst[LIB_OPACUS], worst[LIB_DPACC], worst[LIB_DPACC_INT], dpacc_above, dpacc_ratio);
}

/* ------------------------------------------------------------------ q = 1 */

/* The Gaussian mechanism: RDP α/(2σ²) per step, R steps add. */
Test(accountant, full_sampling_is_the_gaussian_closed_form) {
    size_t n;
    const double *orders = fr_dp_default_orders(&n);
    double *rdp = calloc(n, sizeof *rdp);
    const double sigmas[] = {0.3, 1.0, 4.5, 1e4};
    const uint64_t steps[] = {1, 7, 1000000000};
    for (size_t s = 0; s < 4; s++)
        for (size_t t = 0; t < 3; t++) {
            memset(rdp, 0, n * sizeof *rdp);
            cr_assert_eq(fr_dp_rdp_compose(1.0, sigmas[s], steps[t], NULL, 0, rdp), FR_OK);
            for (size_t i = 0; i < n; i++) {
                double want = (double)steps[t] * orders[i] / (2 * sigmas[s] * sigmas[s]);
                cr_assert(rel(rdp[i], want) < 1e-15, "sigma %g R %llu order %g: %.17g vs %.17g", sigmas[s],
                          (unsigned long long)steps[t], orders[i], rdp[i], want);
            }
        }
    free(rdp);
    /* by hand: sigma = 1, R = 1, delta = 1e-5, orders {2, 4, 8}: rdp = α/2 and
     *   ε(2) = 1 + ln(1/2) − (ln 1e-5 + ln 2)/1 = 11.12663...
     *   ε(4) = 2 + ln(3/4) − (ln 1e-5 + ln 4)/3 = 5.0878617...
     *   ε(8) = 4 + ln(7/8) − (ln 1e-5 + ln 8)/7 = 5.2141105... */
    const double o[] = {2, 4, 8};
    double eps, at;
    cr_assert_eq(fr_dp_epsilon(1.0, 1.0, 1, 1e-5, o, 3, &eps, &at), FR_OK);
    double want = 2 + log(0.75) - (log(1e-5) + log(4.0)) / 3;
    cr_assert(fabs(want - 5.0878617) < 1e-7, "hand value %.10g", want);
    cr_assert(rel(eps, want) < 1e-14, "%.17g vs %.17g", eps, want);
    cr_assert_eq(at, 4.0);
}

/* ------------------------------------------------------------------ quadrature */

/* D_α((1 − q)N(0,σ²) + qN(1,σ²) ‖ N(0,σ²)) = log(1 + I)/(α − 1) with
 *   I = ∫ φ_σ(z) [(1 − q + q·e^{(2z−1)/(2σ²)})^α − 1] dz,
 * by the trapezoidal rule on [−40σ, α + 40σ]. The integrand is analytic in the strip
 * |Im z| < πσ² (where 1 − q + q·e^w first vanishes) and decays like a Gaussian, so the
 * rule's error is of order e^{−2π·πσ²/h}: step h = min(σ, πσ²)/16 puts it below 1e-40. */
static double rdp_by_quadrature(double q, double sigma, double alpha) {
    double h = fmin(sigma, PI * sigma * sigma) / 16;
    double lo = -40 * sigma, hi = alpha + 40 * sigma, sum = 0, comp = 0;
    for (double z = lo; z <= hi; z += h) {
        double y = q * expm1((2 * z - 1) / (2 * sigma * sigma));
        double lphi = -z * z / (2 * sigma * sigma) - log(sigma * sqrt(2 * PI)), g = alpha * log1p(y);
        double f = g < 50 ? exp(lphi) * expm1(g) : exp(lphi + g); /* no 0 · inf far out */
        double t = f - comp, s2 = sum + t; /* Kahan */
        comp = (s2 - sum) - t;
        sum = s2;
    }
    return log1p(sum * h) / (alpha - 1);
}

Test(accountant, subsampled_rdp_matches_quadrature_at_integer_and_fractional_orders) {
    const double qs[] = {0.001, 0.01, 0.1, 0.5, 0.9};
    const double sigmas[] = {0.7, 1.0, 2.0, 5.0};
    const double orders[] = {1.1, 1.5, 2, 2.5, 3, 4.75, 7.3, 10, 16.5, 32};
    size_t checked = 0;
    double worst = 0;
    for (size_t a = 0; a < 5; a++)
        for (size_t b = 0; b < 4; b++)
            for (size_t c = 0; c < 10; c++) {
                double q = qs[a], s = sigmas[b], al = orders[c], got;
                cr_assert_eq(fr_dp_rdp(q, s, &al, 1, &got), FR_OK);
                /* keep A_α within what the quadrature resolves in doubles: not near 1 to
                 * 1e-8 of the rounding (A − 1 > 1e-7) and not beyond 1e200 */
                if (got * (al - 1) < 1e-7 || got * (al - 1) > 400) continue;
                double want = rdp_by_quadrature(q, s, al);
                cr_assert(rel(got, want) < 1e-8, "q %g sigma %g order %g: %.15g, quadrature %.15g (rel %.2g)", q, s,
                          al, got, want, rel(got, want));
                worst = fmax(worst, rel(got, want));
                checked++;
            }
    cr_assert_geq(checked, 120, "only %zu cases checked", checked);
    cr_log_info("quadrature: %zu cases, worst relative difference %.2g", checked, worst);
}

/* Orders 2 and 3 in closed form, A_2 − 1 = q²(e^{1/σ²} − 1) and
 * A_3 − 1 = 3q²(1 − q)(e^{1/σ²} − 1) + q³(e^{3/σ²} − 1): fedrec keeps the relative
 * precision where A is 1 + 1e-40 (tiny q, huge σ), which log(A) of a rounded A cannot. */
Test(accountant, integer_orders_keep_precision_when_a_is_near_one) {
    const double qs[] = {1e-12, 1e-6, 0.3};
    const double sigmas[] = {0.9, 1e3, 1e6};
    for (size_t a = 0; a < 3; a++)
        for (size_t b = 0; b < 3; b++) {
            double q = qs[a], s = sigmas[b], e1 = expm1(1 / (s * s)), e3 = expm1(3 / (s * s));
            double o[2] = {2, 3}, r[2];
            cr_assert_eq(fr_dp_rdp(q, s, o, 2, r), FR_OK);
            double w2 = log1p(q * q * e1), w3 = log1p(3 * q * q * (1 - q) * e1 + q * q * q * e3) / 2;
            cr_assert(w2 > 0 && rel(r[0], w2) < 1e-13, "q %g sigma %g: order 2 %.17g vs %.17g", q, s, r[0], w2);
            cr_assert(w3 > 0 && rel(r[1], w3) < 1e-13, "q %g sigma %g: order 3 %.17g vs %.17g", q, s, r[1], w3);
        }
}

/* ------------------------------------------------------------------ structure */

/* RDP adds over steps: a heterogeneous run composed step group by step group equals the
 * sum of its parts, and fr_dp_epsilon is the conversion of the composed vector. */
Test(accountant, composition_adds_and_epsilon_converts_it) {
    size_t n;
    const double *orders = fr_dp_default_orders(&n);
    double *acc = calloc(n, sizeof *acc), *one = calloc(n, sizeof *one), *two = calloc(n, sizeof *two);
    cr_assert_eq(fr_dp_rdp_compose(0.01, 1.1, 300, NULL, 0, acc), FR_OK);
    cr_assert_eq(fr_dp_rdp_compose(0.05, 2.0, 40, NULL, 0, acc), FR_OK);
    cr_assert_eq(fr_dp_rdp(0.01, 1.1, orders, n, one), FR_OK);
    cr_assert_eq(fr_dp_rdp(0.05, 2.0, NULL, 0, two), FR_OK);
    for (size_t i = 0; i < n; i++) {
        double want = 300 * one[i] + 40 * two[i];
        cr_assert(rel(acc[i], want) < 1e-14, "order %g", orders[i]);
    }
    double e1, e2, o1, o2;
    memset(acc, 0, n * sizeof *acc);
    cr_assert_eq(fr_dp_rdp_compose(0.02, 0.9, 2500, orders, n, acc), FR_OK);
    cr_assert_eq(fr_dp_epsilon_from_rdp(orders, acc, n, 1e-6, &e1, &o1), FR_OK);
    cr_assert_eq(fr_dp_epsilon(0.02, 0.9, 2500, 1e-6, NULL, 0, &e2, &o2), FR_OK);
    cr_assert_eq(e1, e2);
    cr_assert_eq(o1, o2);
    /* the conversion, written out at the best order */
    size_t k = 0;
    while (orders[k] != o1) k++;
    double want = acc[k] + log1p(-1 / o1) - (log(1e-6) + log(o1)) / (o1 - 1);
    cr_assert(rel(e1, want) < 1e-15);
    for (size_t i = 0; i < n; i++)
        cr_assert(acc[i] + log1p(-1 / orders[i]) - (log(1e-6) + log(orders[i])) / (orders[i] - 1) >= e1);
    free(acc);
    free(one);
    free(two);
}

/* What privacy means: more noise, fewer steps, rarer sampling or a larger δ never cost
 * more ε; a Rényi divergence never decreases with its order. */
Test(accountant, epsilon_and_rdp_are_monotone) {
    size_t n;
    const double *orders = fr_dp_default_orders(&n);
    double *r = calloc(n, sizeof *r);
    const double qs[] = {1e-4, 0.003, 0.05, 0.3, 0.5, 0.77};
    const double sigmas[] = {0.6, 1.0, 3.0, 40.0};
    for (size_t a = 0; a < 6; a++)
        for (size_t b = 0; b < 4; b++) {
            cr_assert_eq(fr_dp_rdp(qs[a], sigmas[b], NULL, 0, r), FR_OK);
            for (size_t i = 1; i < n; i++)
                cr_assert(r[i] >= r[i - 1] * (1 - 1e-12), "q %g sigma %g: rdp(%g) = %.17g < rdp(%g) = %.17g", qs[a],
                          sigmas[b], orders[i], r[i], orders[i - 1], r[i - 1]);
        }
    free(r);
    double prev = INFINITY, e;
    for (double s = 0.4; s < 50; s *= 1.3) {
        cr_assert_eq(fr_dp_epsilon(0.01, s, 1000, 1e-5, NULL, 0, &e, NULL), FR_OK);
        cr_assert(e <= prev, "sigma %g: %g > %g", s, e, prev);
        prev = e;
    }
    prev = 0;
    for (uint64_t t = 1; t < 100000000; t *= 7) {
        cr_assert_eq(fr_dp_epsilon(0.01, 1.0, t, 1e-5, NULL, 0, &e, NULL), FR_OK);
        cr_assert(e >= prev, "steps %llu", (unsigned long long)t);
        prev = e;
    }
    prev = 0;
    for (double q = 1e-6; q <= 1; q *= 3) {
        cr_assert_eq(fr_dp_epsilon(q, 1.0, 100, 1e-5, NULL, 0, &e, NULL), FR_OK);
        cr_assert(e >= prev, "q %g", q);
        prev = e;
    }
    prev = INFINITY;
    for (double d = 1e-15; d < 0.5; d *= 10) {
        cr_assert_eq(fr_dp_epsilon(0.01, 1.0, 100, d, NULL, 0, &e, NULL), FR_OK);
        cr_assert(e <= prev, "delta %g", d);
        prev = e;
    }
}

Test(accountant, nothing_spent_gives_zero) {
    double e = -1, o;
    cr_assert_eq(fr_dp_epsilon(0.3, 1.0, 0, 1e-5, NULL, 0, &e, &o), FR_OK);
    cr_assert_eq(e, 0.0);
    cr_assert_eq(fr_dp_epsilon(0.0, 1.0, 1000, 1e-5, NULL, 0, &e, &o), FR_OK);
    cr_assert_eq(e, 0.0);
    double r[3] = {9, 9, 9}, ord[3] = {1.5, 2, 300};
    cr_assert_eq(fr_dp_rdp(0.0, 0.5, ord, 3, r), FR_OK);
    cr_assert(r[0] == 0 && r[1] == 0 && r[2] == 0);
    /* δ above the total variation bound √(1 − e^{−KL}) <= √(1 − e^{−rdp}): ε = 0 */
    cr_assert_eq(fr_dp_epsilon(1e-6, 100.0, 1, 0.01, NULL, 0, &e, &o), FR_OK);
    cr_assert_eq(e, 0.0);
}

/* ------------------------------------------------------------------ σ for a target ε */

Test(accountant, sigma_for_epsilon_is_the_smallest_that_meets_the_target) {
    const struct {
        double q, delta, target;
        uint64_t steps;
    } c[] = {{0.01, 1e-5, 1.0, 1000}, {0.001, 1e-7, 0.3, 100000}, {0.1, 1e-5, 8.0, 50},
             {1.0, 1e-6, 2.0, 1},     {0.02, 1e-12, 8.0, 1000000000}, {0.5, 1e-5, 3.0, 20}};
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        double s, e, below;
        cr_assert_eq(fr_dp_sigma_for_epsilon(c[i].q, c[i].steps, c[i].delta, c[i].target, &s), FR_OK, "%s",
                     fr_errmsg());
        cr_assert_eq(fr_dp_epsilon(c[i].q, s, c[i].steps, c[i].delta, NULL, 0, &e, NULL), FR_OK);
        cr_assert(e <= c[i].target, "case %zu: sigma %.10g gives %.10g > %g", i, s, e, c[i].target);
        cr_assert_eq(fr_dp_epsilon(c[i].q, s * (1 - 1e-6), c[i].steps, c[i].delta, NULL, 0, &below, NULL), FR_OK);
        cr_assert(below > c[i].target, "case %zu: sigma %.10g is not the smallest (%.10g at 1e-6 less)", i, s, below);
    }
    /* a round trip through a known sigma */
    double e, s;
    cr_assert_eq(fr_dp_epsilon(0.01, 1.3, 5000, 1e-5, NULL, 0, &e, NULL), FR_OK);
    cr_assert_eq(fr_dp_sigma_for_epsilon(0.01, 5000, 1e-5, e, &s), FR_OK);
    cr_assert(rel(s, 1.3) < 2e-6, "%.10g", s);
    /* out of reach */
    cr_assert_eq(fr_dp_sigma_for_epsilon(1.0, 1, 1e-12, 1e-4, &s), FR_ERR_RANGE);
    assert_msg("no noise multiplier up to 1e+06 reaches epsilon 0.0001 (q = 1, 1 steps, delta = 1e-12)");
    cr_assert_eq(fr_dp_sigma_for_epsilon(1.0, 1, 1e-5, 1e15, &s), FR_ERR_RANGE);
    assert_msg("is met even with noise multiplier");
}

/* ------------------------------------------------------------------ extremes */

Test(accountant, extreme_arguments_stay_finite) {
    const double qs[] = {1e-12, 1e-6, 0.5, 0.999999, 1.0};
    const double sigmas[] = {1e-3, 0.1, 1.0, 1e3, 1e6, 1e12, 1e200};
    const uint64_t steps[] = {1, 1000000000, UINT64_MAX};
    const double deltas[] = {1e-12, 0.5};
    const double orders[] = {1.0000001, 1.01, 2.5, 1024, 4096.5, 100000, 1000000};
    for (size_t a = 0; a < 5; a++)
        for (size_t b = 0; b < 7; b++) {
            double r[7];
            cr_assert_eq(fr_dp_rdp(qs[a], sigmas[b], orders, 7, r), FR_OK);
            for (size_t i = 0; i < 7; i++)
                cr_assert(isfinite(r[i]) && r[i] >= 0, "q %g sigma %g order %g: %g", qs[a], sigmas[b], orders[i], r[i]);
            for (size_t t = 0; t < 3; t++)
                for (size_t d = 0; d < 2; d++) {
                    double e = -1, o = 0;
                    fr_err err = fr_dp_epsilon(qs[a], sigmas[b], steps[t], deltas[d], NULL, 0, &e, &o);
                    cr_assert_eq(err, FR_OK, "q %g sigma %g steps %llu: %s", qs[a], sigmas[b],
                                 (unsigned long long)steps[t], fr_errmsg());
                    cr_assert(isfinite(e) && e >= 0 && o > 1, "q %g sigma %g: %g at %g", qs[a], sigmas[b], e, o);
                }
        }
    /* huge σ and tiny q: rdp ≈ q²α/(2σ²)·... stays positive and tiny, not rounded to 0 */
    double r, o = 2;
    cr_assert_eq(fr_dp_rdp(1e-9, 1e6, &o, 1, &r), FR_OK);
    cr_assert(rel(r, 1e-30) < 1e-9, "%g", r);
    /* so small a σ that ε leaves the doubles: a range error, not inf */
    double e;
    cr_assert_eq(fr_dp_epsilon(0.5, 1e-160, 10, 1e-5, NULL, 0, &e, NULL), FR_ERR_RANGE);
    assert_msg("beyond the range of a double");
}

/* ------------------------------------------------------------------ errors */

Test(accountant, bad_arguments_are_named) {
    double e, s, r[2], o[2] = {2, 3};
    cr_assert_eq(fr_dp_epsilon(-0.1, 1, 1, 1e-5, NULL, 0, &e, NULL), FR_ERR_INVALID);
    assert_msg("sampling rate q = -0.1: expected a number in [0, 1]");
    cr_assert_eq(fr_dp_epsilon(1.5, 1, 1, 1e-5, NULL, 0, &e, NULL), FR_ERR_INVALID);
    assert_msg("q = 1.5");
    cr_assert_eq(fr_dp_epsilon(NAN, 1, 1, 1e-5, NULL, 0, &e, NULL), FR_ERR_INVALID);
    assert_msg("q = nan");
    cr_assert_eq(fr_dp_epsilon(0.1, 0, 1, 1e-5, NULL, 0, &e, NULL), FR_ERR_INVALID);
    assert_msg("noise multiplier sigma = 0: expected a finite number > 0");
    cr_assert_eq(fr_dp_epsilon(0.1, -2, 1, 1e-5, NULL, 0, &e, NULL), FR_ERR_INVALID);
    assert_msg("sigma = -2");
    cr_assert_eq(fr_dp_epsilon(0.1, INFINITY, 1, 1e-5, NULL, 0, &e, NULL), FR_ERR_INVALID);
    assert_msg("sigma = inf");
    cr_assert_eq(fr_dp_epsilon(0.1, 1, 1, 0, NULL, 0, &e, NULL), FR_ERR_INVALID);
    assert_msg("delta = 0: expected a number in (0, 1)");
    cr_assert_eq(fr_dp_epsilon(0.1, 1, 1, 1, NULL, 0, &e, NULL), FR_ERR_INVALID);
    assert_msg("delta = 1: expected");
    double bad[3] = {2, 1.0, 3};
    cr_assert_eq(fr_dp_epsilon(0.1, 1, 1, 1e-5, bad, 3, &e, NULL), FR_ERR_INVALID);
    assert_msg("orders[1] = 1: expected a Rényi order in (1, 1e+06]");
    bad[1] = 2e6;
    cr_assert_eq(fr_dp_rdp(0.1, 1, bad, 3, r), FR_ERR_INVALID);
    assert_msg("fr_dp_rdp: orders[1] = 2e+06");
    cr_assert_eq(fr_dp_epsilon(0.1, 1, 1, 1e-5, o, 0, &e, NULL), FR_ERR_INVALID);
    assert_msg("n_orders = 0: expected at least one Rényi order");
    cr_assert_eq(fr_dp_epsilon(0.1, 1, 1, 1e-5, NULL, 0, NULL, NULL), FR_ERR_INVALID);
    assert_msg("eps is NULL");
    r[0] = 0.5, r[1] = -1;
    cr_assert_eq(fr_dp_epsilon_from_rdp(o, r, 2, 1e-5, &e, NULL), FR_ERR_INVALID);
    assert_msg("rdp[1] = -1: expected a number >= 0");
    r[1] = INFINITY;
    cr_assert_eq(fr_dp_epsilon_from_rdp(o, r, 2, 1e-5, &e, NULL), FR_OK); /* order 2 still counts */
    cr_assert(isfinite(e));
    r[0] = INFINITY;
    cr_assert_eq(fr_dp_epsilon_from_rdp(o, r, 2, 1e-5, &e, NULL), FR_ERR_RANGE);
    cr_assert_eq(fr_dp_rdp_compose(0.1, 1, 5, o, 2, NULL), FR_ERR_INVALID);
    assert_msg("rdp is NULL");
    cr_assert_eq(fr_dp_sigma_for_epsilon(0.1, 10, 1e-5, 0, &s), FR_ERR_INVALID);
    assert_msg("target epsilon = 0: expected a finite number > 0");
    cr_assert_eq(fr_dp_sigma_for_epsilon(0.1, 10, 1e-5, INFINITY, &s), FR_ERR_INVALID);
    cr_assert_eq(fr_dp_sigma_for_epsilon(0.0, 10, 1e-5, 1, &s), FR_ERR_INVALID);
    assert_msg("sampling rate q = 0 spends no privacy");
    cr_assert_eq(fr_dp_sigma_for_epsilon(0.1, 0, 1e-5, 1, &s), FR_ERR_INVALID);
    assert_msg("steps = 0 spends no privacy");
    cr_assert_eq(fr_dp_sigma_for_epsilon(2, 10, 1e-5, 1, &s), FR_ERR_INVALID);
    assert_msg("q = 2");
    cr_assert_eq(fr_dp_sigma_for_epsilon(0.1, 10, 2, 1, &s), FR_ERR_INVALID);
    assert_msg("delta = 2");
}

Test(accountant, default_orders_cover_dp_accountings) {
    size_t n;
    const double *o = fr_dp_default_orders(&n);
    cr_assert_geq(n, 150);
    for (size_t i = 1; i < n; i++) cr_assert(o[i] > o[i - 1]);
    cr_assert(o[0] > 1 && o[n - 1] >= 1024 && o[n - 1] <= FR_DP_MAX_ORDER);
    ref_file *r = read_ref();
    for (size_t k = 0; k < r->n_orders[LIB_DPACC]; k++) {
        bool found = false;
        for (size_t i = 0; i < n && !found; i++) found = o[i] == r->orders[LIB_DPACC][k];
        cr_assert(found, "dp-accounting's order %.17g is not a default order", r->orders[LIB_DPACC][k]);
    }
}
