/* Training examples for one pass over some users' interactions, and the minibatch loop
 * over them. Shared by centralized training and the federated client, so both sample
 * negatives and walk minibatches the same way.
 *
 * Examples hold GLOBAL item ids and the caller's user row indices; a federated client
 * that trains on a compact local item table remaps items itself (fri_examples_remap).
 * Negatives follow NCF: for each positive, `neg` items drawn uniformly with replacement
 * from the items the user never interacted with in the training data, afresh on every
 * pass. No allocation once the arrays have grown to a pass's size. */
#ifndef FEDREC_SRC_MODEL_EXAMPLES_H
#define FEDREC_SRC_MODEL_EXAMPLES_H

#include "core/core.h"
#include "fedrec/data.h"
#include "fedrec/model.h"

typedef struct fri_examples {
    size_t n, cap;     /* examples held, capacity */
    uint32_t *user;    /* [n] user row in the model being trained */
    uint32_t *item;    /* [n] item (global id until remapped) */
    uint32_t *neg;     /* [n] BPR negative item, else unused */
    float *label;      /* [n] rating (MSE), 1/0 (BCE); unused for BPR */
} fri_examples;

void fri_examples_clear(fri_examples *ex);
void fri_examples_free(fri_examples *ex);
FR_NODISCARD fr_err fri_examples_reserve(fri_examples *ex, size_t n);

/* Appends one pass over dataset user `user`, as model row `row`:
 *   FR_LOSS_MSE: (row, item, rating) for every interaction;
 *   FR_LOSS_BCE: (row, item, 1) and `neg` x (row, j, 0) for every interaction;
 *   FR_LOSS_BPR: `max(neg,1)` x (row, item, j) for every interaction.
 * Negatives j are uniform over [0, n_items) minus the user's items in d; if the user has
 * every item, no negative example is made. */
FR_NODISCARD fr_err fri_examples_add_user(fri_examples *ex, const fr_dataset *d, uint32_t user, uint32_t row,
                                          fr_loss loss, uint32_t neg, fr_rng *rng);

/* Shuffles the examples (Fisher-Yates, all arrays together). */
void fri_examples_shuffle(fri_examples *ex, fr_rng *rng);

/* Runs the minibatches [0,b) [b,2b) ... in order: zero grad, loss_grad, optimizer step.
 * Adds the example-weighted loss sum to *loss_sum (mean loss = loss_sum / ex->n). */
FR_NODISCARD fr_err fri_examples_fit(const fri_examples *ex, size_t batch, fr_model *m, fr_model_ws *ws,
                                     fr_grad *g, fr_optim *o, double *loss_sum);

#endif
