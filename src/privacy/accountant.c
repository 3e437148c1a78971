/* The privacy accountant (privacy.h). Not yet implemented: every call says so. */
#include "fedrec/privacy.h"

#include "core/core.h"

static const double k_orders[] = {2.0};

const double *fr_dp_default_orders(size_t *n) {
    if (n) *n = sizeof k_orders / sizeof k_orders[0];
    return k_orders;
}

fr_err fr_dp_epsilon(double q, double sigma, uint64_t steps, double delta, const double *orders, size_t n_orders,
                     double *eps, double *order) {
    (void)q, (void)sigma, (void)steps, (void)delta, (void)orders, (void)n_orders, (void)eps, (void)order;
    return fri_fail(FR_ERR_UNSUPPORTED, "the privacy accountant is not built yet");
}

fr_err fr_dp_sigma_for_epsilon(double q, uint64_t steps, double delta, double target_eps, double *sigma) {
    (void)q, (void)steps, (void)delta, (void)target_eps, (void)sigma;
    return fri_fail(FR_ERR_UNSUPPORTED, "the privacy accountant is not built yet");
}
