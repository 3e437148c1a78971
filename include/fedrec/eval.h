/* fedrec eval: rating error, ranking on sampled candidates and on the full catalogue,
 * AUC, and top-K recommendation.
 *
 * Metrics see a model only through a scoring callback, so this layer knows no model
 * type. Definitions (they match the reference PyTorch scripts in shared/anchors, except
 * that those rank a tied test item first):
 *   - RMSE / MAE over every interaction of a test set; predictions optionally clipped
 *     to [lo, hi] first (the anchors clip to [1, 5]); the raw (unclipped) figures too.
 *   - Ties take their expected position. A relevant item's rank (0-based) is the number
 *     of candidates scored strictly higher plus half the number of the others scored
 *     exactly as it is: the mean position of its tie group, so a model that scores
 *     everything alike (a collapsed model: a constant, +inf, NaN) ranks like a coin and
 *     never first. The rank may be fractional; HR@K = [rank < K], NDCG@K = 1/log2(rank+2)
 *     and MRR@K = 1/(rank+1) when rank < K, else 0. A NaN score ranks below every number
 *     and ties with -inf.
 *   - Sampled ranking (leave-one-out with evaluation negatives): a test item is ranked
 *     among the user's negatives by the rule above. A user with several test items has
 *     each ranked against the same negatives on its own; the user's figure is the mean
 *     over those test items, and the reported figure is the mean over users. Users
 *     without test items or without negatives are skipped.
 *   - Full-catalogue ranking: the candidates are all items the user did not train on
 *     (a test item is always a candidate, even if it also appears in train); the user's
 *     distinct test items are the relevant set, each ranked among all candidates by the
 *     rule above. HR@K = any relevant item ranked < K; NDCG@K = the sum of 1/log2(rank+2)
 *     over relevant items ranked < K over the ideal DCG of min(|rel|, K) positions;
 *     MRR@K = 1/(rank+1) of the best-ranked relevant item if < K; Precision@K = hits/K (K
 *     even when fewer than K candidates exist); Recall@K = hits/|rel|, hits = the
 *     relevant items ranked < K. (fr_eval_topk, which lists items, breaks ties by the
 *     smaller item id.)
 *   - AUC per user = the fraction of (relevant, non-relevant candidate) pairs with the
 *     relevant item scored higher, ties counting 1/2; averaged over users that have at
 *     least one such pair. `auc` uses the sampled negatives, `auc_full` the catalogue.
 * Every sum is taken in double, over users in fixed blocks reduced in user order, so the
 * figures are bit-identical for any thread count. */
#ifndef FEDREC_EVAL_H
#define FEDREC_EVAL_H

#include "fedrec/core.h"
#include "fedrec/data.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Scores items[0..n) for user into scores_out[0..n). Called concurrently with distinct
 * worker values (worker in [0, fr_pool_size(pool)), 0 without a pool); calls with the
 * same worker never overlap, so ctx may keep per-worker scratch indexed by worker. */
typedef void (*fr_score_fn)(void *ctx, uint32_t user, const uint32_t *items, size_t n, float *scores_out,
                            int worker);

#define FR_EVAL_MAX_K 8

typedef struct fr_eval_opts {
    uint32_t ks[FR_EVAL_MAX_K]; /* cut-offs, each >= 1 (default 5, 10, 20) */
    size_t n_ks;                /* how many of ks are used, 1..FR_EVAL_MAX_K */
    bool clip;                  /* clip rating predictions to [clip_lo, clip_hi] (default on) */
    float clip_lo, clip_hi;     /* default 1 and 5 */
    size_t block;               /* items scored per callback in full-catalogue ranking (default 4096) */
    bool exposure;              /* also the exposure of exposure_item (fr_eval_exposure; default off) */
    uint32_t exposure_item;     /* the target item (dense id) whose exposure is measured */
    uint32_t exposure_k;        /* its cut-off (default 10: er@10) */
} fr_eval_opts;

FR_API void fr_eval_opts_default(fr_eval_opts *o);
FR_API FR_NODISCARD fr_err fr_eval_opts_check(const fr_eval_opts *o);

typedef struct fr_eval_result {
    size_t n_ks;                      /* copied from the options */
    uint32_t ks[FR_EVAL_MAX_K];
    /* sampled candidates (fr_eval_sampled) */
    bool has_sampled;
    double hr[FR_EVAL_MAX_K];         /* hr@K */
    double ndcg[FR_EVAL_MAX_K];       /* ndcg@K */
    double mrr[FR_EVAL_MAX_K];        /* mrr@K */
    double auc;                       /* auc */
    uint32_t users_sampled;           /* users ranked */
    uint64_t tests_sampled;           /* test items ranked */
    /* full catalogue (fr_eval_full) */
    bool has_full;
    double hr_full[FR_EVAL_MAX_K];        /* hr@K_full */
    double ndcg_full[FR_EVAL_MAX_K];      /* ndcg@K_full */
    double mrr_full[FR_EVAL_MAX_K];       /* mrr@K_full */
    double precision_full[FR_EVAL_MAX_K]; /* precision@K_full */
    double recall_full[FR_EVAL_MAX_K];    /* recall@K_full */
    double auc_full;                      /* auc_full */
    uint32_t users_full;                  /* users ranked */
    /* ratings (fr_eval_ratings) */
    bool has_rating;
    double rmse, mae;                 /* on clipped predictions (raw when clipping is off) */
    double rmse_raw, mae_raw;         /* on raw predictions */
    uint64_t ratings;                 /* test interactions scored */
    /* exposure of a target item (fr_eval_exposure) */
    bool has_exposure;
    uint32_t exposure_k;              /* its cut-off K (er@K) */
    double exposure;                  /* er@K */
    uint32_t exposure_users;          /* users counted (those who never trained on the target) */
} fr_eval_result;

/* Empties r and copies the cut-offs of o. */
FR_API void fr_eval_result_init(fr_eval_result *r, const fr_eval_opts *o);

/* RMSE/MAE over every interaction of test. Fills the rating part of r. pool may be NULL
 * (the caller's thread, worker 0). FR_ERR_EMPTY if test has no interaction,
 * FR_ERR_INVALID for bad options, FR_ERR_NOMEM. */
FR_API FR_NODISCARD fr_err fr_eval_ratings(fr_score_fn score, void *ctx, const fr_dataset *test, const fr_eval_opts *o,
                                    fr_pool *pool, fr_eval_result *r);

/* Ranking of each user's test items against that user's negatives. Fills the sampled
 * part of r. FR_ERR_EMPTY if no user could be ranked. */
FR_API FR_NODISCARD fr_err fr_eval_sampled(fr_score_fn score, void *ctx, const fr_dataset *test,
                                    const fr_negatives *negs, const fr_eval_opts *o, fr_pool *pool,
                                    fr_eval_result *r);

/* Ranking of each user's test items against every item the user did not train on. Scores
 * in blocks of o->block items: memory O(block + K + test items) per worker, and a partial
 * selection (a bounded heap), not a sort. train and test share one id space (train gives
 * the catalogue size). FR_ERR_EMPTY if no user has a test item. */
FR_API FR_NODISCARD fr_err fr_eval_full(fr_score_fn score, void *ctx, const fr_dataset *train, const fr_dataset *test,
                                 const fr_eval_opts *o, fr_pool *pool, fr_eval_result *r);

/* The exposure of item target (ER@K, as in item-promotion attacks): the share of the users
 * of train (0 .. n_users(train) - 1; a federation's fake clients hold no data and are not
 * among them) who have target in their top-K, ranked over every item they did not train
 * on. A user who trained on target is left out of the count (it is not a candidate for
 * them). Target's rank is the number of candidates scored strictly higher, plus those
 * scored exactly as it is with a smaller item id (fr_eval_topk's tie rule); a NaN score
 * is never ahead, and a NaN target is never exposed. Each user counts 0 or 1 (an
 * integer sum): bit-identical for any thread count. Fills r's exposure part. FR_ERR_RANGE
 * (target beyond the catalogue), FR_ERR_INVALID (k == 0), FR_ERR_EMPTY (every user
 * trained on target), FR_ERR_NOMEM. */
FR_API FR_NODISCARD fr_err fr_eval_exposure(fr_score_fn score, void *ctx, const fr_dataset *train, uint32_t target,
                                            uint32_t k, fr_pool *pool, fr_eval_result *r);

/* The k best items for user among the n_items of train's catalogue, highest score first,
 * ties by smaller item id; with exclude_seen, the user's training items are left out.
 * Writes *out_n <= k items (fewer when fewer candidates exist); out_scores may be NULL.
 * Calls score with worker 0. FR_ERR_INVALID (k == 0), FR_ERR_NOMEM. */
FR_API FR_NODISCARD fr_err fr_eval_topk(fr_score_fn score, void *ctx, const fr_dataset *train, uint32_t user, size_t k,
                            bool exclude_seen, uint32_t *out_items, float *out_scores, size_t *out_n);

/* The sums behind one part of an fr_eval_result, before the division by the count: what
 * evaluating a part of the users gives (a client evaluating its own users), so that a
 * server adds the sums of its clients (fr_eval_sums_add) and divides once
 * (fr_eval_sums_result), the same division as fr_eval_ratings / _sampled / _full. */
typedef enum fr_eval_sums_kind {
    FR_EVAL_SUMS_RATING = 1,  /* fr_eval_ratings */
    FR_EVAL_SUMS_SAMPLED = 2, /* fr_eval_sampled */
    FR_EVAL_SUMS_FULL = 3,    /* fr_eval_full */
} fr_eval_sums_kind;

typedef struct fr_eval_sums {
    fr_eval_sums_kind kind;
    size_t n_ks;                      /* cut-offs, as the options */
    uint32_t ks[FR_EVAL_MAX_K];
    uint64_t users;                   /* users ranked (sampled, full) or with a rating scored */
    uint64_t tests;                   /* test items ranked */
    double hr[FR_EVAL_MAX_K];         /* per cut-off: the sum over users of HR@K */
    double ndcg[FR_EVAL_MAX_K];       /* ... of NDCG@K */
    double mrr[FR_EVAL_MAX_K];        /* ... of MRR@K */
    double precision[FR_EVAL_MAX_K];  /* ... of Precision@K (full) */
    double recall[FR_EVAL_MAX_K];     /* ... of Recall@K (full) */
    double auc;                       /* the sum of per-user AUC */
    uint64_t auc_users;               /* users with an AUC */
    uint64_t ratings;                 /* rated pairs scored */
    double se, ae;                    /* squared / absolute errors (clipped predictions) */
    double se_raw, ae_raw;            /* on raw predictions */
} fr_eval_sums;

/* Empty sums of a kind with o's cut-offs. */
FR_API void fr_eval_sums_init(fr_eval_sums *s, fr_eval_sums_kind kind, const fr_eval_opts *o);
/* dst += src. FR_ERR_INVALID (another kind or other cut-offs; dst unchanged). */
FR_API FR_NODISCARD fr_err fr_eval_sums_add(fr_eval_sums *dst, const fr_eval_sums *src);
/* Fills r's part of the sums' kind (r made by fr_eval_result_init with the same cut-offs:
 * FR_ERR_INVALID otherwise): the means the evaluation functions report. FR_ERR_EMPTY when
 * nothing was ranked or rated, with their messages. */
FR_API FR_NODISCARD fr_err fr_eval_sums_result(const fr_eval_sums *s, fr_eval_result *r);

/* Writes the filled parts of r as JSON object members, without braces:
 *   "hr@10":0.5,"ndcg@10":0.3,"mrr@10":...,"auc":...,"hr@10_full":...,"precision@10_full":...,
 *   "recall@10_full":...,"auc_full":...,"rmse":...,"mae":...,"rmse_raw":...,"mae_raw":...
 * plus counts "eval_users", "eval_users_full", "eval_ratings". Non-finite values are
 * written as null. NUL-terminates; *len (may be NULL) gets the length without the NUL.
 * FR_ERR_RANGE if cap is too small (buf then holds a truncated, NUL-terminated prefix). */
FR_API FR_NODISCARD fr_err fr_eval_result_json(const fr_eval_result *r, char *buf, size_t cap, size_t *len);

#ifdef __cplusplus
}
#endif
#endif
