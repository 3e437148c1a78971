/* Walker's alias table (Vose's construction), built once and shared by the public
 * discrete sampler (fr_zipf, rng.c) and the synthetic generator's popularity draws
 * (data/generate.c), which prefetch its 8-byte columns directly. */
#ifndef FEDREC_SRC_CORE_ALIAS_H
#define FEDREC_SRC_CORE_ALIAS_H

#include <stdint.h>

/* One column: a draw that lands on column i keeps i with probability p, else gives
 * alias. 8 bytes, so a column is one load. */
typedef struct fri_alias_col {
    float p;        /* keep the column's own outcome with this probability */
    uint32_t alias; /* the other outcome */
} fri_alias_col;

/* Fills t[0, n) so that outcome k is drawn with probability w[k] / sum(w): n >= 1,
 * weights finite and >= 0 with a positive sum (the caller checks). scaled, small and large
 * are scratch of n entries each. O(n), no allocation. */
void fri_alias_build(fri_alias_col *t, const double *w, uint32_t n, double *scaled, uint32_t *small, uint32_t *large);

#endif
