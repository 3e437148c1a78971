/* fedrec privacy: transforms over plain vectors and bytes that know nothing of rounds
 * (DESIGN.md, layer 5).
 *   - The accountant: Rényi DP of the Poisson-subsampled Gaussian mechanism (Mironov,
 *     Talwar and Zhang 2019), composed over steps and converted to (ε, δ) with the
 *     improved conversion of Balle et al. 2020.
 * Later sections (clipping, noise, secure aggregation) join this header. */
#ifndef FEDREC_PRIVACY_H
#define FEDREC_PRIVACY_H
#include <stddef.h>
#include <stdint.h>

#include "fedrec/core.h"

/* ------------------------------------------------------------------ accountant */

/* The accountant works with the Rényi DP (RDP) of the Poisson-subsampled Gaussian mechanism:
 * each step samples every record (a client, in federated learning) with probability q and
 * adds Gaussian noise of standard deviation sigma times the sensitivity. RDP is exact at
 * integer and fractional orders (Mironov et al. 2019, section 3.3), adds over steps, and
 * converts to (ε, δ) by Balle et al. 2020, Theorem 21 (the conversion opacus and
 * dp-accounting use), minimised over the orders. Every function here is pure: thread-safe,
 * no allocation. Arguments are checked: FR_ERR_INVALID names the bad one, its value and
 * the allowed range. */

/* The largest Rényi order accepted (the work at order α is O(α)). */
#define FR_DP_MAX_ORDER 1000000
/* The range fr_dp_sigma_for_epsilon searches. */
#define FR_DP_SIGMA_SEARCH_MIN 1e-6
#define FR_DP_SIGMA_SEARCH_MAX 1e6

/* The Rényi orders the accountant evaluates by default (all > 1, increasing), and how
 * many there are: 1.1 to 10.9 by 0.1, 11 to 64, then up to 4096 (a superset of
 * dp-accounting's default orders). */
FR_API const double *fr_dp_default_orders(size_t *n);

/* RDP of one step (q in [0, 1], sigma > 0 finite) at each order: rdp[k] for orders[k]
 * (orders NULL: the default orders, n_orders ignored; rdp must then hold as many). q = 0
 * gives 0, q = 1 gives α/(2σ²). A sigma so small (< 1e-100) that RDP exceeds any double
 * gives +inf. */
FR_API FR_NODISCARD fr_err fr_dp_rdp(double q, double sigma, const double *orders, size_t n_orders, double *rdp);

/* Composition: adds the RDP of `steps` steps (q, sigma) into rdp[0..n_orders) (orders
 * NULL: the defaults). Calls for steps of different q or sigma add up to their
 * heterogeneous composition; start from zeros. */
FR_API FR_NODISCARD fr_err fr_dp_rdp_compose(double q, double sigma, uint64_t steps, const double *orders,
                                             size_t n_orders, double *rdp);

/* ε at δ in (0, 1) of a mechanism with RDP rdp[k] (>= 0) at orders[k] (NULL: the
 * defaults): min over k of r + log(1 − 1/α) − (log δ + log α)/(α − 1), 0 at an order
 * where δ >= sqrt(1 − e^{−r}), never below 0. *order gets the minimising order when not
 * NULL. FR_ERR_RANGE when ε is infinite (every rdp[k] is). */
FR_API FR_NODISCARD fr_err fr_dp_epsilon_from_rdp(const double *orders, const double *rdp, size_t n_orders,
                                                  double delta, double *eps, double *order);

/* ε of `steps` compositions of the Poisson-subsampled Gaussian mechanism with sampling
 * rate q in [0, 1] and noise multiplier sigma > 0 (noise std = sigma * sensitivity), at
 * δ in (0, 1), minimised over the orders (orders NULL: fr_dp_default_orders). *order gets
 * the minimising order when not NULL. steps 0 gives ε = 0. FR_ERR_INVALID naming the
 * bad argument, its value and the allowed range; FR_ERR_RANGE when ε is beyond a double
 * (sigma < 1e-100). */
FR_API FR_NODISCARD fr_err fr_dp_epsilon(double q, double sigma, uint64_t steps, double delta, const double *orders,
                                         size_t n_orders, double *eps, double *order);

/* The smallest noise multiplier whose ε after `steps` at δ is at most target_eps (to a
 * relative 1e-6; the returned sigma always meets the target), over the default orders.
 * FR_ERR_INVALID for bad arguments (and for q = 0 or steps = 0, which meet any target);
 * FR_ERR_RANGE when no sigma up to FR_DP_SIGMA_SEARCH_MAX reaches the target, or when
 * even FR_DP_SIGMA_SEARCH_MIN meets it. */
FR_API FR_NODISCARD fr_err fr_dp_sigma_for_epsilon(double q, uint64_t steps, double delta, double target_eps,
                                                   double *sigma);

#endif
