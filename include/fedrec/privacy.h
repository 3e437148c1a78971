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

/* The Rényi orders the accountant evaluates by default (all > 1, increasing), and how
 * many there are. */
FR_API const double *fr_dp_default_orders(size_t *n);

/* ε of `steps` compositions of the Poisson-subsampled Gaussian mechanism with sampling
 * rate q in [0, 1] and noise multiplier sigma > 0 (noise std = sigma * sensitivity), at
 * δ in (0, 1), minimised over the orders (orders NULL: fr_dp_default_orders). *order gets
 * the minimising order when not NULL. steps 0 gives ε = 0. FR_ERR_INVALID naming the
 * bad argument, its value and the allowed range. */
FR_API FR_NODISCARD fr_err fr_dp_epsilon(double q, double sigma, uint64_t steps, double delta, const double *orders,
                                         size_t n_orders, double *eps, double *order);

/* The smallest noise multiplier whose ε after `steps` at δ is at most target_eps (to a
 * relative 1e-6), over the default orders. FR_ERR_INVALID for bad arguments, FR_ERR_RANGE
 * when no sigma up to 1e6 reaches the target. */
FR_API FR_NODISCARD fr_err fr_dp_sigma_for_epsilon(double q, uint64_t steps, double delta, double target_eps,
                                                   double *sigma);

#endif
