/* fedrec fl internals shared with the tests. */
#ifndef FEDREC_SRC_FL_INTERNAL_H
#define FEDREC_SRC_FL_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* acc[i] += w * val[i] in units of 2^-32, rounded half away from zero, saturating at
 * +-4.6e18 units, NaN as the lower bound: the server's accumulation. `vector` false
 * forces the scalar loop (the reference the vector path must match bit for bit). */
void fri_fl_add_fixed(int64_t *acc, const float *val, size_t n, double w, bool vector);

#endif
