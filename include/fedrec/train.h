/* fedrec centralized training: every user's interactions in one process, epoch by epoch.
 *
 * One epoch: build the examples of every user (NCF negatives drawn from the stream
 * (seed, epoch, user, FR_PURPOSE_NEGATIVES)), shuffle them with (seed, epoch, 0,
 * FR_PURPOSE_SHUFFLE), then walk the minibatches: each minibatch is cut into a FIXED
 * number of shards whose gradients are computed in parallel and combined in shard
 * order, then the optimizer steps over parameter ranges in parallel. Nothing depends on
 * the thread count, so the model is bit-identical for any number of threads.
 *
 * Thread-safety: a trainer is used by one thread at a time (it drives its own pool). */
#ifndef FEDREC_TRAIN_H
#define FEDREC_TRAIN_H

#include "fedrec/core.h"
#include "fedrec/data.h"
#include "fedrec/model.h"

#ifdef __cplusplus
extern "C" {
#endif

#define FR_TRAIN_MAX_SHARDS 16

typedef struct fr_train_config {
    uint32_t batch;        /* examples per minibatch (default 256) */
    uint32_t negatives;    /* sampled negatives per positive, bce/bpr losses (default 4) */
    uint32_t shards;       /* gradient shards per minibatch, 1..FR_TRAIN_MAX_SHARDS (default 2);
                              part of the result: change it and the model changes */
    fr_optim_config optim; /* default: Adam, lr 0.001, dense */
    uint64_t seed;         /* negatives and shuffle streams (default 1) */
    int threads;           /* worker threads; <= 0 = one per CPU (default 0) */
    float confidence_alpha; /* >= 0: with weighted data (fr_dataset_weighted) and a ranking
                              model, a positive of weight r counts with confidence
                              c = 1 + alpha log(1 + r) (Hu, Koren & Volinsky): its BCE term,
                              or each of its BPR triples, is scaled by c; sampled negatives
                              keep 1. 0 (default) or data without weights: every positive
                              counts alike, bit for bit as without this field. The presets
                              set 1 for weighted data (fr_run_config_preset). */
    uint32_t neg_sampler;  /* fr_neg_sampler of the sampled negatives (bce, bpr; WARP's first
                              candidate): FR_NEG_UNIFORM (default) or FR_NEG_POPULARITY (each
                              item's training interactions in the trainer's data + 1) */
    float neg_pop_exp;     /* b of FR_NEG_POPULARITY: weights (interactions + 1)^b, b in (0, 4];
                              0 (default) reads as 1 */
    uint32_t seq_stride;   /* a sequence model (sasrec): a user's training windows of L + 1
                              items end this many items apart, 1..L; a window but the oldest
                              has a loss on its last seq_stride positions only, its earlier
                              ones being context (each target still once an epoch, and read
                              after at least L - seq_stride + 1 items). 0 (default): L,
                              disjoint windows. Another model refuses a nonzero one */
} fr_train_config;

FR_API void fr_train_config_default(fr_train_config *c);

/* Fits a closed-form kind (fr_model_kind_is_closed_form: pop, bias) to d in one call:
 * every parameter is replaced (bias also sets the config's mu to d's mean rating); user u
 * of d is row u of m. *loss (may be NULL) gets the training loss (bias: the mean squared
 * error on d; pop: 0, it minimises nothing). The centralized trainer's epoch calls it for
 * these kinds. Errors: FR_ERR_UNSUPPORTED (a kind trained by gradients), FR_ERR_INVALID
 * (d has more users or items than m has rows), FR_ERR_EMPTY (d has no interaction),
 * FR_ERR_NOMEM. Not thread-safe for one m. */
FR_API FR_NODISCARD fr_err fr_model_fit(fr_model *m, const fr_dataset *d, double *loss);
/* FR_OK, or FR_ERR_INVALID naming the bad field and its allowed range. */
FR_API FR_NODISCARD fr_err fr_train_config_check(const fr_train_config *c);

typedef struct fr_trainer fr_trainer;

/* A trainer for model m on dataset d (user u of d is row u of m; d's items are m's item
 * rows). The trainer keeps m and d by reference: both must outlive it, and m is written
 * by every epoch. Errors: FR_ERR_INVALID (config; d has more users or items than m has
 * rows), FR_ERR_EMPTY (d has no interaction), FR_ERR_NOMEM. A graph kind (lightgcn) with
 * no graph bound gets d's (fr_model_graph_dataset: d must then outlive m's use). */
FR_API FR_NODISCARD fr_err fr_trainer_create(fr_trainer **out, fr_model *m, const fr_dataset *d,
                                      const fr_train_config *cfg);
FR_API void fr_trainer_free(fr_trainer *t);
/* Runs one epoch; *mean_loss (may be NULL) gets the mean training loss over its examples.
 * Errors from the model or optimizer (the model may then be part-way through an epoch). */
FR_API FR_NODISCARD fr_err fr_trainer_epoch(fr_trainer *t, double *mean_loss);
/* Sets the optimizer's learning rate for the following epochs (fr_optim_set_lr). */
FR_API FR_NODISCARD fr_err fr_trainer_set_lr(fr_trainer *t, float lr);
/* Epochs completed. */
FR_API uint64_t fr_trainer_epochs(const fr_trainer *t);
/* The trainer's pool (for evaluating between epochs on the same threads). */
FR_API fr_pool *fr_trainer_pool(fr_trainer *t);

#ifdef __cplusplus
}
#endif
#endif
