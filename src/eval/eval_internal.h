/* fedrec eval internals shared with the layers above (a networked client's local
 * evaluation and recommendation). */
#ifndef FEDREC_SRC_EVAL_INTERNAL_H
#define FEDREC_SRC_EVAL_INTERNAL_H

#include "core/core.h"
#include "fedrec/eval.h"

/* The sums of fr_eval_ratings / fr_eval_sampled / fr_eval_full, ADDED into s (made by
 * fr_eval_sums_init with that kind and o's cut-offs: FR_ERR_INVALID otherwise). No
 * FR_ERR_EMPTY: a test set without users to rank adds nothing. The full ranking's
 * catalogue is the larger of the data's and `catalogue` (0: the data's). */
FR_NODISCARD fr_err fri_eval_ratings_sums(fr_score_fn score, void *ctx, const fr_dataset *test, const fr_eval_opts *o,
                                          fr_pool *pool, fr_eval_sums *s);
FR_NODISCARD fr_err fri_eval_sampled_sums(fr_score_fn score, void *ctx, const fr_dataset *test,
                                          const fr_negatives *negs, const fr_eval_opts *o, fr_pool *pool,
                                          fr_eval_sums *s);
FR_NODISCARD fr_err fri_eval_full_sums(fr_score_fn score, void *ctx, const fr_dataset *train, const fr_dataset *test,
                                       uint32_t catalogue, const fr_eval_opts *o, fr_pool *pool, fr_eval_sums *s);
/* fr_eval_topk over the catalogue [0, n_items) (train may know fewer items). */
FR_NODISCARD fr_err fri_eval_topk_n(fr_score_fn score, void *ctx, const fr_dataset *train, uint32_t n_items,
                                    uint32_t user, size_t k, bool exclude_seen, uint32_t *out_items, float *out_scores,
                                    size_t *out_n);
#endif
