/* Evaluating an fr_model with the metrics of fedrec/eval.h: a scoring adapter (one model
 * workspace per pool worker) and one call that runs the metrics that fit the model kind.
 * Thread-safety: a scorer is used by one evaluation at a time; the model must not be
 * written while it runs. */
#ifndef FEDREC_MODEL_EVAL_H
#define FEDREC_MODEL_EVAL_H

#include "fedrec/eval.h"
#include "fedrec/model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct fr_model_scorer fr_model_scorer;

/* A scorer for m with one workspace per worker of pool (pool may be NULL: one worker).
 * user_map / item_map (may be NULL = identity) translate the dense ids the metrics pass
 * (the evaluation data's) into model rows; they are borrowed and must outlive the
 * scorer; UINT32_MAX marks an id the model does not know (scored -infinity, counted).
 * FR_ERR_NOMEM. */
FR_API FR_NODISCARD fr_err fr_model_scorer_create(fr_model_scorer **out, const fr_model *m, fr_pool *pool,
                                           const uint32_t *user_map, const uint32_t *item_map);
FR_API void fr_model_scorer_free(fr_model_scorer *s);
/* For a sequence model (fr_model_history_len > 0): each user's history is its items in
 * d, in d's time order (the latest L the model knows), d in the ids the metrics pass (as
 * user_map / item_map read them); borrowed. fr_model_evaluate_with sets its train set
 * when none is set. Without it a sequence model scores every user as an empty history. */
FR_API void fr_model_scorer_set_history(fr_model_scorer *s, const fr_dataset *d);
/* The fr_score_fn; ctx is the scorer. */
FR_API void fr_model_scorer_fn(void *ctx, uint32_t user, const uint32_t *items, size_t n, float *scores_out, int worker);
/* The first error a scoring call met since creation (FR_OK if none), with its message set. */
FR_API FR_NODISCARD fr_err fr_model_scorer_status(const fr_model_scorer *s);

/* Runs the metrics for m's kind: mf (explicit) gives RMSE/MAE with predictions clipped
 * to the rating range of train (fr_eval_ratings); the implicit models give sampled
 * ranking when negs is non-NULL (fr_eval_sampled), else full-catalogue ranking
 * (fr_eval_full). o may be NULL (defaults). Errors from the metrics and the scorer. */
FR_API FR_NODISCARD fr_err fr_model_evaluate(const fr_model *m, const fr_dataset *train, const fr_dataset *test,
                                      const fr_negatives *negs, const fr_eval_opts *o, fr_pool *pool,
                                      fr_eval_result *r);
/* As fr_model_evaluate with a scorer made by the caller (for id maps). */
FR_API FR_NODISCARD fr_err fr_model_evaluate_with(fr_model_scorer *s, const fr_model *m, const fr_dataset *train,
                                           const fr_dataset *test, const fr_negatives *negs,
                                           const fr_eval_opts *o, fr_pool *pool, fr_eval_result *r);

#ifdef __cplusplus
}
#endif
#endif
