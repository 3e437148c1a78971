/* lightgcn-full's propagation (model_lightgcn.c), on plain arrays so that a test can hold
 * the fast kernel against the naive one it replaced (tests/test_lightgcn_full.c).
 *
 * The nodes are the graph's items (rows 0..n_items-1) then its users (rows n_items..),
 * each a row of dim floats; A = D^-1/2 [[0, R^T], [R, 0]] D^-1/2 with dinv = D^-1/2 per
 * node (0 for a node without an edge). Both functions compute
 *   M x = (x + A x + ... + A^K x) / (K + 1)
 * of the rows in acc ([n_items + n_users, dim], x on entry), and either leave it in acc
 * (add_items and add_users NULL) or ADD its item rows to add_items ([n_items, dim]) and
 * its user rows to add_users ([n_users, dim]), acc then clobbered. scr_a and scr_b are
 * scratch of [n_items + n_users, dim] each. No allocation.
 *
 * The naive one is the kernel of before: out = A x as a sweep over each user's edges,
 * each edge adding (dinv_u dinv_i) x to both of its ends (the transposed lists unused).
 * The fast one sums the rows of y = D^-1/2 x over each node's list, users' and items'
 * (gathers, no scatter), and scales the sum by the node's dinv: the same A x with the
 * product dinv_u dinv_i taken apart and the sums in another order, so other roundings.
 * They agree within float rounding: tests/test_lightgcn_full.c holds them within 1e-5
 * of the largest entry of the result. Each is deterministic (one thread, a fixed
 * order, no contraction into a fused multiply-add), and its bits do not depend on the
 * CPU's vector width. */
#ifndef FEDREC_SRC_MODEL_LIGHTGCN_PROP_H
#define FEDREC_SRC_MODEL_LIGHTGCN_PROP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct fri_lgf_graph {
    size_t (*items)(const void *ctx, uint32_t user, const uint32_t **items); /* user's items, each once */
    const void *ctx;
    uint32_t n_users, n_items;
    size_t dim;
    const float *dinv; /* [n_items + n_users] */
    const uint32_t *istart, *iusers; /* the transpose: item i's users are
                                        iusers[istart[i], istart[i + 1]) (the fast one's) */
    const uint32_t *ustart, *uitems; /* the lists as arrays: user u's items are uitems[ustart[u],
                                        ustart[u + 1]), as items() gives them (the fast one's);
                                        ustart[n_users] = istart[n_items], the edges */
} fri_lgf_graph;

void fri_lgf_smooth(const fri_lgf_graph *g, uint32_t K, float *acc, float *add_items, float *add_users,
                    float *scr_a, float *scr_b);
void fri_lgf_smooth_naive(const fri_lgf_graph *g, uint32_t K, float *acc, float *add_items, float *add_users,
                          float *scr_a, float *scr_b);
/* Whether lightgcn-full's loss and scores use the fast propagation (true, the default) or
 * the naive one; returns the previous setting. For tests; not thread-safe. */
bool fri_lgf_allow_fast(bool allow);

#endif
