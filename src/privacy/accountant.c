/* The privacy accountant (privacy.h): Rényi DP of the Poisson-subsampled Gaussian
 * mechanism, composed over steps, converted to (ε, δ).
 *
 * One step with sampling rate q and noise multiplier σ has, at order α > 1,
 *     rdp(α) = log(A_α) / (α − 1),  A_α = E_{z~N(0,σ²)} [(1 − q + q·e^{(2z−1)/(2σ²)})^α]
 * (Mironov, Talwar and Zhang 2019, "Rényi Differential Privacy of the Sampled Gaussian
 * Mechanism", section 3.3). Integer α: the binomial expansion, here written as
 *     A_α − 1 = Σ_{i=2..α} C(α,i) (1−q)^{α−i} q^i (e^{(i²−i)/(2σ²)} − 1)
 * (the i = 0, 1 terms cancel against Σ C(α,i)(1−q)^{α−i}q^i = 1), a sum of positive terms
 * summed in log space, so rdp keeps its relative precision however close A_α is to 1 (tiny
 * q, huge σ). Fractional α: the paper's two series split at z0 = σ²·log(1/q − 1) + 1/2,
 * with erfc factors, each term in log space; past i = ⌈α⌉ they alternate in sign and
 * shrink only like i^-(α+2), so that tail is summed apart and accelerated by Euler's
 * transform (log_a_frac). The result is kept within [rdp(⌊α⌋), rdp(⌈α⌉)], which holds
 * exactly because a Rényi divergence does not decrease with its order.
 * Composition: RDP adds over steps. Conversion (Balle et al. 2020, "Hypothesis testing
 * interpretations and Rényi differential privacy", Theorem 21; the form opacus and
 * dp-accounting use):
 *     ε(α) = r + log(1 − 1/α) − (log δ + log α)/(α − 1),
 * and ε = 0 where δ ≥ √(1 − e^{−r}) (total variation bounded through KL ≤ r), the
 * minimum over the orders, never below 0.
 * Everything is a pure function of its arguments: thread-safe, no allocation. */
#include "fedrec/privacy.h"

#include <math.h>

#include "core/core.h"

#define LN2 0.69314718055994530942
#define LN_SQRT_PI 0.57236494292470008707 /* log(√π) */
#define INV_SQRT2 0.70710678118654752440
/* The fractional series' tail stops at a shrinking term below FRAC_TOL of the head, or
 * after FRAC_MAX_TERMS terms (log_a_frac). */
#define FRAC_TOL 0x1p-55
#define FRAC_MAX_TERMS 20000
/* Levels of Euler's transform on the tail's partial sums (log_a_frac). */
#define EULER_K 12
/* Below this σ every order's RDP is beyond 1e199: reported as +inf (ε out of range). */
#define SIGMA_TINY 1e-100

static const double k_orders[] = {
    1.1,  1.2,  1.3,  1.4,  1.5,  1.6,  1.7,  1.8,  1.9,  2.0,  2.1,  2.2,  2.3,  2.4,  2.5,  2.6,  2.7,  2.8,
    2.9,  3.0,  3.1,  3.2,  3.3,  3.4,  3.5,  3.6,  3.7,  3.8,  3.9,  4.0,  4.1,  4.2,  4.3,  4.4,  4.5,  4.6,
    4.7,  4.8,  4.9,  5.0,  5.1,  5.2,  5.3,  5.4,  5.5,  5.6,  5.7,  5.8,  5.9,  6.0,  6.1,  6.2,  6.3,  6.4,
    6.5,  6.6,  6.7,  6.8,  6.9,  7.0,  7.1,  7.2,  7.3,  7.4,  7.5,  7.6,  7.7,  7.8,  7.9,  8.0,  8.1,  8.2,
    8.3,  8.4,  8.5,  8.6,  8.7,  8.8,  8.9,  9.0,  9.1,  9.2,  9.3,  9.4,  9.5,  9.6,  9.7,  9.8,  9.9,  10.0,
    10.1, 10.2, 10.3, 10.4, 10.5, 10.6, 10.7, 10.8, 10.9, 11,   12,   13,   14,   15,   16,   17,   18,   19,
    20,   21,   22,   23,   24,   25,   26,   27,   28,   29,   30,   31,   32,   33,   34,   35,   36,   37,
    38,   39,   40,   41,   42,   43,   44,   45,   46,   47,   48,   49,   50,   51,   52,   53,   54,   55,
    56,   57,   58,   59,   60,   61,   62,   63,   64,   80,   96,   112,  128,  160,  192,  224,  256,  320,
    384,  448,  512,  640,  768,  896,  1024, 1280, 1536, 2048, 3072, 4096,
};

const double *fr_dp_default_orders(size_t *n) {
    if (n) *n = sizeof k_orders / sizeof k_orders[0];
    return k_orders;
}

/* ------------------------------------------------------------------ log-space helpers */

/* A running log-sum-exp: the sum is e^m · s. */
typedef struct {
    double m, s;
} lse;

static void lse_add(lse *a, double x) {
    if (x == -INFINITY) return;
    if (x > a->m) {
        a->s = a->s * exp(a->m - x) + 1.0;
        a->m = x;
    } else {
        a->s += exp(x - a->m);
    }
}

static double lse_value(const lse *a) { return a->m == -INFINITY ? -INFINITY : a->m + log(a->s); }

/* log(e^x − 1) for x ≥ 0 */
static double log_expm1(double x) {
    if (x <= 0) return -INFINITY;
    if (x > 0.5) return x + log1p(-exp(-x));
    return log(expm1(x));
}

/* log(1 + e^x) */
static double log1p_exp(double x) { return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x)); }

/* log(erfc(x) / 2), accurate far into the upper tail where erfc underflows. */
static double log_half_erfc(double x) {
    if (x < 25.0) return log(erfc(x)) - LN2;
    /* erfc(x) = e^{−x²}/(x√π) · (1 + Σ_k (−1)^k (2k−1)!!/(2x²)^k); at x ≥ 25 the ninth
     * term is below 1e-20. */
    double u = 1.0 / (2.0 * x * x), t = 1.0, s = 1.0;
    for (int k = 1; k <= 8; k++) {
        t *= -(2.0 * k - 1.0) * u;
        s += t;
    }
    return -x * x - log(x) - LN_SQRT_PI + log(s) - LN2;
}

/* ------------------------------------------------------------------ one step */

/* rdp at integer order n ≥ 2, 0 < q < 1. */
static double rdp_int(double q, double sigma, double n) {
    double lq = log(q), l1q = log1p(-q), c = 0.5 / sigma / sigma;
    lse acc = {-INFINITY, 0.0};
    double lc = log(n); /* log C(n, 1) */
    for (double i = 2; i <= n; i++) {
        lc += log((n - i + 1) / i);
        lse_add(&acc, lc + i * lq + (n - i) * l1q + log_expm1(i * (i - 1) * c));
    }
    return log1p_exp(lse_value(&acc)) / (n - 1);
}

/* The i-th terms of the two series for log(A_α) (section 3.3), as log magnitudes. */
typedef struct {
    double alpha, lq, l1q, c, k, z0;
} frac_series;

static void frac_terms(const frac_series *f, double i, double lc, double *t0, double *t1) {
    double j = f->alpha - i;
    double e0 = i < 2 ? 0.0 : i * (i - 1) * f->c; /* 0 · inf never happens */
    *t0 = lc + i * f->lq + j * f->l1q + e0 + log_half_erfc((i - f->z0) * f->k);
    *t1 = lc + j * f->lq + i * f->l1q + j * (j - 1) * f->c + log_half_erfc((f->z0 - j) * f->k);
}

/* log(A_α) at fractional α > 1, 0 < q < 1. The head i <= ⌈α⌉ (positive terms, the bulk
 * of A) is summed in log space; the tail, where C(α, i) alternates in sign and the terms
 * shrink, in linear space relative to the head, so its many small terms are not rounded
 * against a sum near 1. The tail stops at a shrinking term below 2^-55, adding half of it
 * (the mean of two partial sums); or when Euler's transform of its last partial sums has
 * converged to 2^-55 (the tail's terms fall like i^-(α+2) only, so this saves thousands of
 * terms where the Gaussian tails are wide); or after FRAC_MAX_TERMS terms on a positive
 * term (an alternating tail's partial sum ending so is above its limit). NAN if the sum
 * is not positive (rounding, far beyond realistic arguments). */
static double log_a_frac(double q, double sigma, double alpha) {
    frac_series f = {.alpha = alpha, .lq = log(q), .l1q = log1p(-q), .c = 0.5 / sigma / sigma,
                     .k = INV_SQRT2 / sigma};
    double L = f.l1q - f.lq; /* log(1/q − 1) */
    f.z0 = L == 0 ? 0.5 : sigma * (sigma * L) + 0.5;
    double fl = floor(alpha), lc = 0.0; /* log |C(α, i)| */
    double t0, t1, i;
    lse head = {-INFINITY, 0.0};
    for (i = 0; i <= fl + 1; i++) {
        if (i > 0) lc += log((alpha - i + 1) / i);
        frac_terms(&f, i, lc, &t0, &t1);
        lse_add(&head, t0);
        lse_add(&head, t1);
    }
    double h = lse_value(&head), tail = 0.0, prev = INFINITY;
    double part[EULER_K + 1]; /* the last partial sums of the tail */
    int n_part = 0;
    for (;; i++) {
        lc += log(fabs((alpha - i + 1) / i));
        frac_terms(&f, i, lc, &t0, &t1);
        double u = exp(t0 - h) + exp(t1 - h);
        bool negative = (long)(i - 1 - fl) & 1; /* the number of negative factors α − m, m < i */
        if (u < prev && u < FRAC_TOL) {
            tail += negative ? -u / 2 : u / 2;
            break;
        }
        tail += negative ? -u : u;
        if (i >= FRAC_MAX_TERMS && !negative) break;
        /* Euler's transform: averaging neighbouring partial sums of an alternating series
         * K times cancels its oscillation; done when levels K − 1 and K agree */
        if (n_part == EULER_K + 1) memmove(part, part + 1, EULER_K * sizeof *part), n_part--;
        part[n_part++] = tail;
        if (n_part == EULER_K + 1 && u < prev) {
            double w[EULER_K + 1], before = 0;
            memcpy(w, part, sizeof w);
            for (int lvl = 1; lvl <= EULER_K; lvl++) {
                if (lvl == EULER_K) before = w[0];
                for (int m = 0; m + lvl <= EULER_K; m++) w[m] = (w[m] + w[m + 1]) / 2;
            }
            if (fabs(w[0] - before) < FRAC_TOL) {
                tail = w[0];
                break;
            }
        }
        prev = u;
    }
    if (!(tail > -1)) return NAN;
    return h + log1p(tail);
}

/* RDP of one step at order alpha > 1 (+inf when beyond any double). */
static double rdp_one(double q, double sigma, double alpha) {
    if (q == 0) return 0.0;
    if (sigma < SIGMA_TINY) return INFINITY;
    if (q == 1) return alpha / (2.0 * sigma * sigma);
    double fl = floor(alpha);
    if (fl == alpha) return rdp_int(q, sigma, alpha);
    double lo = fl >= 2 ? rdp_int(q, sigma, fl) : 0.0, hi = rdp_int(q, sigma, fl + 1);
    double r = log_a_frac(q, sigma, alpha) / (alpha - 1);
    if (!(r >= lo)) r = isnan(r) ? hi : lo; /* NAN: the safe side */
    if (r > hi) r = hi;
    return r;
}

/* ------------------------------------------------------------------ checks */

static fr_err check_step(const char *fn, double q, double sigma) {
    if (!(q >= 0 && q <= 1))
        return fri_fail(FR_ERR_INVALID, "%s: sampling rate q = %g: expected a number in [0, 1]", fn, q);
    if (!(sigma > 0) || !isfinite(sigma))
        return fri_fail(FR_ERR_INVALID, "%s: noise multiplier sigma = %g: expected a finite number > 0", fn, sigma);
    return FR_OK;
}

static fr_err check_delta(const char *fn, double delta) {
    if (!(delta > 0 && delta < 1))
        return fri_fail(FR_ERR_INVALID, "%s: delta = %g: expected a number in (0, 1)", fn, delta);
    return FR_OK;
}

/* Resolves NULL to the default orders and checks every order. */
static fr_err check_orders(const char *fn, const double **orders, size_t *n) {
    if (!*orders) {
        *orders = fr_dp_default_orders(n);
        return FR_OK;
    }
    if (*n == 0) return fri_fail(FR_ERR_INVALID, "%s: n_orders = 0: expected at least one Rényi order", fn);
    for (size_t i = 0; i < *n; i++) {
        double a = (*orders)[i];
        if (!(a > 1 && a <= FR_DP_MAX_ORDER))
            return fri_fail(FR_ERR_INVALID, "%s: orders[%zu] = %g: expected a Rényi order in (1, %g]", fn, i, a,
                            (double)FR_DP_MAX_ORDER);
    }
    return FR_OK;
}

/* ------------------------------------------------------------------ public */

fr_err fr_dp_rdp(double q, double sigma, const double *orders, size_t n_orders, double *rdp) {
    fr_err e = check_step("fr_dp_rdp", q, sigma);
    if (!e) e = check_orders("fr_dp_rdp", &orders, &n_orders);
    if (e) return e;
    if (!rdp) return fri_fail(FR_ERR_INVALID, "fr_dp_rdp: rdp is NULL");
    for (size_t i = 0; i < n_orders; i++) rdp[i] = rdp_one(q, sigma, orders[i]);
    return FR_OK;
}

fr_err fr_dp_rdp_compose(double q, double sigma, uint64_t steps, const double *orders, size_t n_orders,
                         double *rdp) {
    fr_err e = check_step("fr_dp_rdp_compose", q, sigma);
    if (!e) e = check_orders("fr_dp_rdp_compose", &orders, &n_orders);
    if (e) return e;
    if (!rdp) return fri_fail(FR_ERR_INVALID, "fr_dp_rdp_compose: rdp is NULL");
    if (steps == 0 || q == 0) return FR_OK;
    for (size_t i = 0; i < n_orders; i++) rdp[i] += (double)steps * rdp_one(q, sigma, orders[i]);
    return FR_OK;
}

/* ε at one order from its RDP r (+inf when r is). */
static double eps_at(double alpha, double r, double delta) {
    if (!(r < INFINITY)) return INFINITY;
    if (delta * delta + expm1(-r) > 0) return 0.0;
    return r + log1p(-1.0 / alpha) - (log(delta) + log(alpha)) / (alpha - 1);
}

/* The minimum over the orders; *order the first minimiser. Unchecked arguments. */
static double eps_min(const double *orders, const double *rdp, size_t n, double delta, double *order) {
    double best = INFINITY, at = orders[0];
    for (size_t i = 0; i < n; i++) {
        double e = eps_at(orders[i], rdp[i], delta);
        if (e < best) best = e, at = orders[i];
    }
    if (order) *order = at;
    return best > 0 ? best : 0.0;
}

static fr_err finite_eps(const char *fn, double eps) {
    if (eps < INFINITY) return FR_OK;
    return fri_fail(FR_ERR_RANGE, "%s: epsilon is beyond the range of a double (the noise is far too small)", fn);
}

fr_err fr_dp_epsilon_from_rdp(const double *orders, const double *rdp, size_t n_orders, double delta, double *eps,
                              double *order) {
    const char *fn = "fr_dp_epsilon_from_rdp";
    fr_err e = check_orders(fn, &orders, &n_orders);
    if (!e) e = check_delta(fn, delta);
    if (e) return e;
    if (!rdp || !eps) return fri_fail(FR_ERR_INVALID, "%s: %s is NULL", fn, !rdp ? "rdp" : "eps");
    for (size_t i = 0; i < n_orders; i++)
        if (!(rdp[i] >= 0))
            return fri_fail(FR_ERR_INVALID, "%s: rdp[%zu] = %g: expected a number >= 0", fn, i, rdp[i]);
    double x = eps_min(orders, rdp, n_orders, delta, order);
    if ((e = finite_eps(fn, x))) return e;
    *eps = x;
    return FR_OK;
}

/* ε of steps × (q, sigma) at delta over the orders, arguments checked; +inf beyond doubles. */
static double eps_of(double q, double sigma, uint64_t steps, double delta, const double *orders, size_t n,
                     double *order) {
    double best = INFINITY, at = orders[0];
    for (size_t i = 0; i < n; i++) {
        double r = steps == 0 ? 0.0 : (double)steps * rdp_one(q, sigma, orders[i]);
        double e = eps_at(orders[i], r, delta);
        if (e < best) best = e, at = orders[i];
    }
    if (order) *order = at;
    return best > 0 ? best : 0.0;
}

fr_err fr_dp_epsilon(double q, double sigma, uint64_t steps, double delta, const double *orders, size_t n_orders,
                     double *eps, double *order) {
    const char *fn = "fr_dp_epsilon";
    fr_err e = check_step(fn, q, sigma);
    if (!e) e = check_delta(fn, delta);
    if (!e) e = check_orders(fn, &orders, &n_orders);
    if (e) return e;
    if (!eps) return fri_fail(FR_ERR_INVALID, "%s: eps is NULL", fn);
    double x = eps_of(q, sigma, steps, delta, orders, n_orders, order);
    if ((e = finite_eps(fn, x))) return e;
    *eps = x;
    return FR_OK;
}

fr_err fr_dp_sigma_for_epsilon(double q, uint64_t steps, double delta, double target_eps, double *sigma) {
    const char *fn = "fr_dp_sigma_for_epsilon";
    fr_err e = check_step(fn, q, 1.0);
    if (!e) e = check_delta(fn, delta);
    if (e) return e;
    if (!(target_eps > 0) || !isfinite(target_eps))
        return fri_fail(FR_ERR_INVALID, "%s: target epsilon = %g: expected a finite number > 0", fn, target_eps);
    if (!sigma) return fri_fail(FR_ERR_INVALID, "%s: sigma is NULL", fn);
    if (q == 0 || steps == 0)
        return fri_fail(FR_ERR_INVALID, "%s: %s spends no privacy: every noise multiplier meets the target", fn,
                        q == 0 ? "sampling rate q = 0" : "steps = 0");
    size_t n;
    const double *orders = fr_dp_default_orders(&n);
    /* ε does not increase with σ (each order's RDP falls), so bracket [lo, hi] with
     * ε(lo) > target >= ε(hi), then bisect on log σ; hi is returned, the safe end. */
    double hi = 1.0, lo;
    if (eps_of(q, hi, steps, delta, orders, n, NULL) <= target_eps) {
        for (lo = hi / 2; eps_of(q, lo, steps, delta, orders, n, NULL) <= target_eps; lo /= 2) {
            hi = lo;
            if (lo < FR_DP_SIGMA_SEARCH_MIN)
                return fri_fail(FR_ERR_RANGE, "%s: target epsilon %g is met even with noise multiplier %g", fn,
                                target_eps, lo);
        }
    } else {
        do {
            lo = hi;
            hi = fmin(2 * hi, FR_DP_SIGMA_SEARCH_MAX);
            if (hi == lo)
                return fri_fail(FR_ERR_RANGE,
                                "%s: no noise multiplier up to %g reaches epsilon %g (q = %g, %llu steps, delta = %g)",
                                fn, (double)FR_DP_SIGMA_SEARCH_MAX, target_eps, q, (unsigned long long)steps, delta);
        } while (eps_of(q, hi, steps, delta, orders, n, NULL) > target_eps);
    }
    while (hi / lo - 1 > 1e-7) {
        double mid = sqrt(lo * hi);
        if (eps_of(q, mid, steps, delta, orders, n, NULL) <= target_eps)
            hi = mid;
        else
            lo = mid;
    }
    *sigma = hi;
    return FR_OK;
}
