/* Training examples for one pass over some users' interactions, and the one minibatch
 * loop over them (with a step rule per trainer). Shared by centralized training and the
 * federated client, so both sample negatives and walk minibatches the same way.
 *
 * Examples hold GLOBAL item ids and the caller's user row indices; a federated client
 * that trains on a compact local item table remaps items itself (fri_examples_remap).
 * Negatives follow NCF: for each positive, `neg` items drawn uniformly with replacement
 * from the items the user never interacted with in the training data, afresh on every
 * pass. No allocation once the arrays have grown to a pass's size.
 *
 * Confidence weights (implicit feedback with counts, Hu, Koren & Volinsky 2008): with
 * alpha > 0 a positive whose rating field holds the weight r has confidence
 * c = 1 + alpha log(1 + r), computed once when its examples are made, and the loss term
 * of every example formed from it is scaled by c (wt, passed on as fr_batch.weight): its
 * own pointwise term (BCE; its sampled negatives keep weight 1) or each of its BPR
 * triples. With alpha = 0 nothing is weighted, wt is not written and the batches carry
 * no weights: the operations of unweighted training. */
#ifndef FEDREC_SRC_MODEL_EXAMPLES_H
#define FEDREC_SRC_MODEL_EXAMPLES_H

#include <math.h>

#include "core/alias.h"
#include "core/core.h"
#include "fedrec/data.h"
#include "fedrec/model.h"

/* Popularity negatives (FR_NEG_POPULARITY): Walker's alias table over the items' weights.
 * A draw is two words of the stream: a column below n (fr_rng_below's rule) and a float
 * coin (fr_rng_float's) kept against the column's p, else its alias. So the centralized
 * examples (a batch reader) and a federated client (fr_rng_below, fr_rng_float) read the
 * same words and draw the same items from the same weights. */
typedef struct fri_negpop {
    uint32_t n;         /* items */
    fri_alias_col *col; /* [n], fri_malloc'd; NULL: uniform draws */
} fri_negpop;
/* Builds p over w[0, n)^b (each w finite and > 0, so every item can be drawn: a user with
 * items left always gets a negative, as with uniform draws; b in (0, 4], 0 or 1: w as it
 * is, 0.5: sqrt(w), the same table on every IEEE machine; else pow(w, b): the same
 * table wherever libm's pow gives the same bits).
 * FR_ERR_INVALID naming the first bad weight or the exponent, FR_ERR_NOMEM; p is left empty
 * on error. Frees what p held. */
FR_NODISCARD fr_err fri_negpop_build(fri_negpop *p, const double *w, uint32_t n, double b);
void fri_negpop_free(fri_negpop *p);
/* w[0, fr_dataset_n_items(d)) = each item's interactions in d + 1: the public popularity
 * (the simulator's, and `fedrec data shard`'s popularity.txt). */
void fri_item_popularity(const fr_dataset *d, double *w);
/* A draw from p (p->col set) through a batch reader. */
static inline uint32_t fri_negpop_draw(const fri_negpop *p, fri_rng_batch *rb) {
    const uint32_t i = fri_rng_batch_below(rb, p->n);
    const float coin = (float)(fri_rng_batch_u32(rb) >> 8) * 0x1.0p-24f;
    return coin < p->col[i].p ? i : p->col[i].alias;
}
/* The same draw from a stream (the same words: the same item). */
static inline uint32_t fri_negpop_draw_rng(const fri_negpop *p, fr_rng *r) {
    const uint32_t i = fr_rng_below(r, p->n);
    return fr_rng_float(r) < p->col[i].p ? i : p->col[i].alias;
}

typedef struct fri_examples {
    size_t n, cap;     /* examples held, capacity */
    uint32_t *user;    /* [n] user row in the model being trained */
    uint32_t *item;    /* [n] item (global id until remapped) */
    uint32_t *neg;     /* [n] BPR negative item, else unused */
    float *label;      /* [n] rating (MSE), 1/0 (BCE); unused for BPR */
    float *wt;         /* [n] the example's weight in the loss when alpha > 0, else unused */
    float alpha;       /* confidence scale (see above); 0 = unweighted. Set by the owner
                          before adding examples; a view (fri_examples_view) copies it */
    uint32_t hist_len; /* L > 0: each example carries a history (a sequence model's,
                          fr_batch.hist): hist and hneg [n * L], key [n]. Set by the owner
                          before adding examples (fri_examples_add_user_seq); a view copies it */
    uint32_t stride;   /* S in 1..L: consecutive windows of a sequence pass end S items
                          apart (fri_examples_add_seq); 0 means L (disjoint windows). Set by
                          the owner before adding examples; a view copies it */
    uint32_t *hist;    /* [n * L] the user's items before `item`, the latest last, FR_NO_ITEM-padded */
    uint32_t *hneg;    /* [n * L] a negative for the item after each history position */
    uint64_t *key;     /* [n] the example's dropout key */
    const fri_negpop *pop; /* popularity negatives (borrowed; a table over the catalogue), or
                          NULL: uniform. Set by the owner before adding examples */
    uint64_t *mark;    /* scratch: a bit per item, set for the user whose negatives are
                          being drawn (all clear between users), or NULL */
    size_t mark_bits;  /* items mark covers */
    bool no_negs;      /* BPR examples without their negative (neg 0, nothing drawn): for a fused
                          pass that draws its own (family.h, rows_pass_draws). Set by the owner;
                          a user whose items and the absent ones are the whole catalogue gets
                          no example (as where the negatives are drawn: none to draw) */
    const uint64_t *pos; /* with no_negs: a bit per (user row, item), row u at pos + u * pos_words,
                          set for the user's items and the absent ones (what a drawn negative
                          may not be: draw_negative's rule). Borrowed; set by the owner */
    size_t pos_words;  /* 64-bit words a user row of pos */
} fri_examples;

/* Scratch for fri_examples_concat_shuffled: the examples as rows, grown as needed. A
 * caller that shuffles several example sets one at a time needs one. */
typedef struct fri_example_rows {
    void *p;      /* fri_malloc'd, or NULL */
    size_t bytes; /* its size */
} fri_example_rows;
void fri_example_rows_free(fri_example_rows *r);

void fri_examples_clear(fri_examples *ex);
void fri_examples_free(fri_examples *ex);
FR_NODISCARD fr_err fri_examples_reserve(fri_examples *ex, size_t n);

/* The confidence of a positive with weight r: 1 + alpha log(1 + r), in double rounded
 * to float once (r >= 0, the loader's check of a weight column). */
static inline float fri_confidence(float alpha, float r) { return (float)(1.0 + (double)alpha * log1p((double)r)); }

/* Appends one pass over dataset user `user`, as model row `row`:
 *   FR_LOSS_MSE: (row, item, rating) for every interaction;
 *   FR_LOSS_BCE: (row, item, 1) and `neg` x (row, j, 0) for every interaction;
 *   FR_LOSS_BPR: `max(neg,1)` x (row, item, j) for every interaction;
 *   FR_LOSS_CE: (row, item, 1) for every interaction (a softmax over all items needs no
 *   sampled negative).
 * Negatives j are uniform over [0, n_items) minus the user's items in d (with ex->pop,
 * drawn from its popularity table instead, then rejected the same way); if the user has
 * every item, no negative example is made. With ex->alpha > 0 each example gets its
 * weight in wt: the confidence of its positive (the user's rating of item) for BCE and
 * BPR, 1 for a BCE negative and for MSE (a rating is a label: the trainers leave alpha 0
 * there); the draws are the same either way. */
FR_NODISCARD fr_err fri_examples_add_user(fri_examples *ex, const fr_dataset *d, uint32_t user, uint32_t row,
                                          fr_loss loss, uint32_t neg, fr_rng *rng);

/* Appends one pass over dataset user `user` for a sequence model, as model row `row`
 * (ex->hist_len = L > 0): the user's items s_0..s_{n-1} in the data's time order
 * (fr_dataset_user's order: timestamp, then item) are cut from the latest backwards into
 * windows of L + 1 items, ending at s_{n-1}, s_{n-1-S}, s_{n-1-2S}, ... (S = ex->stride,
 * L when 0) while an end >= 1 is left, the last (oldest) being the first end <= L.
 * A window ending at s_e is one example: item s_e with label 1, hist s_{e-L}..s_{e-1}
 * (FR_NO_ITEM before s_0), and for each history position a negative drawn uniformly from
 * the items the user never had (hneg; FR_NO_ITEM at padding), then a dropout key. A
 * window but the oldest has a loss on its last S positions only (targets s_{e-S+1}..s_e);
 * its earlier positions are context (hneg FR_NO_LOSS, no draw): their targets are the
 * next window's. So each of s_1..s_{n-1} is a next-item target exactly once per pass
 * (the SASRec paper's objective, with histories longer than L cut instead of dropped),
 * and a target outside the oldest window reads at least L - S + 1 items before it (S = L:
 * disjoint windows, every position a target). A user with one item gives no example. wt
 * is 1 when ex->alpha > 0. */
FR_NODISCARD fr_err fri_examples_add_user_seq(fri_examples *ex, const fr_dataset *d, uint32_t user, uint32_t row,
                                              fr_rng *rng);
/* The same for a user given as its items in time order (a federated client's own data):
 * had(ctx, j) says whether the user had item j (the negatives' rule). The same items,
 * membership and rng give the same examples as fri_examples_add_user_seq. */
typedef bool (*fri_item_had)(const void *ctx, uint32_t item);
FR_NODISCARD fr_err fri_examples_add_seq(fri_examples *ex, const uint32_t *items, size_t deg, uint32_t n_items,
                                         fri_item_had had, const void *ctx, uint32_t row, fr_rng *rng);

/* Shuffles the examples (Fisher-Yates, all arrays together; wt when alpha > 0). The
 * draws do not depend on alpha. rng is left where its draws leave it (a caller may draw
 * on from it). */
void fri_examples_shuffle(fri_examples *ex, fr_rng *rng);

/* dst = src[0], src[1], ..., src[nsrc-1] concatenated, then shuffled: exactly the
 * examples (and the rng's state) of concatenating them into dst and calling
 * fri_examples_shuffle, but faster: the swaps move one 16-byte row (20 with weights) in
 * `rows` instead of an element of each of four arrays, which on a shuffle larger than L1
 * is one cache miss a swap instead of four. The cost is the scratch: n rows. dst owns its
 * arrays (not a view) and is none of the sources; the sources share dst's alpha.
 * FR_ERR_NOMEM if dst or rows cannot grow. */
FR_NODISCARD fr_err fri_examples_concat_shuffled(fri_examples *dst, const fri_examples *src, size_t nsrc,
                                                 fr_rng *rng, fri_example_rows *rows);

/* Examples [lo, hi) of ex as a view (its arrays point into ex's; never freed or grown). */
static inline fri_examples fri_examples_view(const fri_examples *ex, size_t lo, size_t hi) {
    fri_examples v = {0};
    v.n = v.cap = hi - lo;
    v.user = ex->user + lo;
    v.item = ex->item + lo;
    v.neg = ex->neg + lo;
    v.label = ex->label + lo;
    v.wt = ex->wt + lo;
    v.alpha = ex->alpha;
    v.hist_len = ex->hist_len;
    v.stride = ex->stride;
    if (ex->hist_len) {
        v.hist = ex->hist + lo * ex->hist_len;
        v.hneg = ex->hneg + lo * ex->hist_len;
        v.key = ex->key + lo;
    }
    return v;
}

/* ------------------------------------------------------------------ the minibatch loop
 *
 * One loop walks minibatches for every trainer: fri_examples_fit (plain steps), the
 * centralized trainer (shards on several threads meeting at barriers) and the federated
 * client (coasting rows, the FedProx term, several optimizers over slab ranges). What
 * differs is the step rule; the slicing and the loss bookkeeping are here, once. */

#define FRI_STEP_MAX_PARTS 16 /* parts of a minibatch's gradient (a trainer's shards) */

/* The loss of one minibatch as its gradient computed it: the mean loss and examples of
 * each part, in part order (one part unless the rule splits the batch; none on a thread
 * that does not keep the books). */
typedef struct fri_step_loss {
    uint32_t parts;
    double mean[FRI_STEP_MAX_PARTS];
    size_t n[FRI_STEP_MAX_PARTS];
} fri_step_loss;

/* A step rule: what happens to each minibatch b, in this order. before and after may be
 * NULL. A callback's error ends the pass and is returned; a rule run by several threads in
 * lockstep must make every thread return the same way at the same point. */
typedef struct fri_step_rule {
    void *ctx;
    /* before the gradient (coasting: bring the rows b reads up to date) */
    fr_err (*before)(void *ctx, const fr_batch *b);
    /* the gradient of b, from zero, and its loss */
    fr_err (*gradient)(void *ctx, const fr_batch *b, fri_step_loss *loss);
    /* changes to the gradient (FedProx's proximal term) */
    fr_err (*after)(void *ctx, const fr_batch *b);
    /* the update */
    fr_err (*step)(void *ctx, const fr_batch *b);
} fri_step_rule;

/* Runs the minibatches [0,batch) [batch,2 batch) ... of ex in order through rule (the
 * batches carry labels, or BPR negatives when loss is FR_LOSS_BPR, and the weights when
 * ex->alpha > 0). Adds mean x examples
 * of each part of each stepped minibatch, in order, to *loss_sum (not zeroed first: a
 * caller sums several passes). FR_ERR_INVALID for batch 0, else the rule's errors. */
FR_NODISCARD fr_err fri_examples_run(const fri_examples *ex, size_t batch, fr_loss loss, const fri_step_rule *rule,
                                     double *loss_sum);

/* The plain rule: zero grad, loss_grad, optimizer step, through fri_examples_run.
 * Adds the example-weighted loss sum to *loss_sum (mean loss = loss_sum / ex->n). */
FR_NODISCARD fr_err fri_examples_fit(const fri_examples *ex, size_t batch, fr_model *m, fr_model_ws *ws,
                                     fr_grad *g, fr_optim *o, double *loss_sum);

#endif
