/* Internal layout of models, gradients and workspaces, shared by the files of src/model. */
#ifndef FEDREC_SRC_MODEL_MODEL_INTERNAL_H
#define FEDREC_SRC_MODEL_MODEL_INTERNAL_H

#include "core/core.h"
#include "fedrec/model.h"

typedef enum fri_init {
    FRI_INIT_ZERO = 0,    /* biases */
    FRI_INIT_NORMAL = 1,  /* embeddings: N(0, init_std) */
    FRI_INIT_XAVIER = 2,  /* MLP weights: U(-b, b), b = sqrt(6 / (fan_in + fan_out)) */
    FRI_INIT_KAIMING = 3, /* output layer: kaiming_uniform(a=1, sigmoid): b = sqrt(3 / fan_in) */
} fri_init;

typedef struct fri_model_family fri_model_family;

#define FRI_MODEL_MAX_SLOTS 32 /* tensor roles a family may record (model.slot) */

struct fr_model {
    fr_model_config cfg;                     /* as created (defaults filled in) */
    const fri_model_family *fam;             /* the ops of cfg.kind (family.h) */
    float *params;                           /* [n_params] the slab, 64-byte aligned */
    size_t n_params;                         /* slab length */
    size_t n_shared;                         /* shared prefix length */
    int n_tensors;                           /* entries of t */
    fr_tensor t[FR_MODEL_MAX_TENSORS];       /* tensor table in slab order */
    fri_init init[FR_MODEL_MAX_TENSORS];     /* how each tensor is initialised */
    int slot[FRI_MODEL_MAX_SLOTS];           /* tensor index by role, as the family's layout
                                                numbers roles (-1: none); only it reads them */
    fr_model_graph graph;                    /* training interactions a graph kind scores
                                                through (fr_model_set_graph; items NULL: none) */
    const uint32_t *row_item;                /* global item of each item row (a client's
                                                compact model), or NULL: row = item */
    uint32_t n_row_item;                     /* rows of row_item that are bound */
    const uint32_t *row_user;                /* global user of each user row, or NULL */
    uint32_t n_row_user;                     /* rows of row_user that are bound */
    uint32_t catalogue;                      /* items of the federation (0: cfg.n_items) */
};

/* cfg (a kind that reads side features, with the feature set of a TASK: vocabularies
 * and item lists) with user lists of its own: user users[j] (global ids, j < n_users) has
 * the features ids[off[j], off[j + 1]) of the set's user vocabulary, weights w (NULL: 1);
 * every other user none. The item lists and both vocabularies stay, so the config's
 * encoding for one user row (a TASK's, its config CRC) is unchanged. A kind without
 * features: nothing. FR_ERR_INVALID for a feature id outside the vocabulary or a user
 * given twice, FR_ERR_NOMEM. */
FR_NODISCARD fr_err fri_model_config_user_lists(fr_model_config *cfg, const uint32_t *users, uint32_t n_users,
                                               const uint64_t *off, const uint32_t *ids, const float *w);
/* Tells m which global items and users its rows stand for (a federated client's compact
 * model: row r of its item tables is item items[r], r < n_items). Families whose scores
 * depend on more than the rows (side features: model_hybrid.c) read it; the others
 * ignore it. The arrays are borrowed until the next bind; NULL: rows are global ids.
 * catalogue: the federation's item count. */
void fri_model_bind_rows(fr_model *m, const uint32_t *items, uint32_t n_items, const uint32_t *users,
                         uint32_t n_users, uint32_t catalogue);
/* Tells ws that the model it scores is not written (parameters, graph binding) from now
 * until the call with on false: a family's score cache (lightgcn-full's propagation) is
 * then checked against the model once, not at every call. The evaluator holds its
 * workspaces for the length of an evaluation. ws NULL: nothing. */
void fri_model_ws_hold(fr_model_ws *ws, bool on);
/* True when m's loss reads every row of its item table (a softmax over all items: sasrec
 * with FR_LOSS_CE), so a federated client must load them all, not only the rows of its
 * examples; a compact model's softmax then runs over its bound rows. */
bool fri_model_reads_all_items(const fr_model *m);

struct fr_grad {
    size_t n_params;                         /* slab length of the model it was made for */
    int n_tensors;                           /* as the model */
    fr_tensor t[FR_MODEL_MAX_TENSORS];       /* copy of the model's tensor table */
    float *g;                                /* [n_params] gradient, 64-byte aligned */
    fr_rowset rows[FR_MODEL_MAX_TENSORS];    /* touched rows per table (empty for dense) */
};

/* True if g was made for a model with m's layout. */
int fri_grad_matches(const fr_grad *g, const fr_model *m);
/* Builds the tensor table of cfg into m with its family's layout, sets m->fam and
 * n_shared (no allocation). FR_ERR_INVALID for an unknown kind or an overflow. */
fr_err fri_model_layout(fr_model *m, const fr_model_config *cfg);

/* The initial values of global user `global_user`'s row of user table t (m's tensor t,
 * its cols floats) into out: what fr_model_create gives that user's row in a model of
 * any n_users with m's config (one stream per row, (seed, t, user, INIT)), so a client
 * makes its users' rows without the federation's whole table. m's slab is not read: a
 * model of one user row serves. fr_model_create initialises every user row with it. */
void fri_model_user_row_init(const fr_model *m, int t, uint32_t global_user, float *out);

/* Allocates a model with an uninitialised slab (checks the config). */
fr_err fri_model_alloc(fr_model **out, const fr_model_config *cfg);

/* A dense optimizer step split over parameter ranges (for data-parallel training):
 * fri_optim_step_begin checks shapes and counts the step (once per step), then
 * fri_optim_step_range applies the update rule to params[off, off+n) with the gradient
 * g[0, n) of that range (any split gives the same floats as fr_optim_step; distinct
 * ranges may run on distinct threads).
 * Dense mode, or a caller that steps exactly the rows a sparse-row fr_optim_step would
 * (or more, with a rule that keeps rows of zero gradient: fri_optim_zero_keeps). */
fr_err fri_optim_step_begin(fr_optim *o, const fr_model *m, const fr_grad *g);
void fri_optim_step_range(const fr_optim *o, fr_model *m, const float *g, size_t off, size_t n);
bool fri_optim_is_dense(const fr_optim *o);
/* fri_optim_step_range on rows rows[0..n) of the tensor at slab offset off (cols floats a
 * row); g is a whole gradient slab (the rows' gradients at their slab offsets). After
 * fri_optim_step_begin, for a caller that steps the rows a minibatch touched itself (any
 * mode: the rule is elementwise). */
void fri_optim_step_rows(const fr_optim *o, fr_model *m, const float *g, size_t off, uint32_t cols,
                         const uint32_t *rows, uint32_t n);
/* fri_optim_step_rows, then those rows of g zeroed: in one pass for Adagrad on rows of a
 * multiple of 8 floats (the same operations, so the same bits). */
void fri_optim_step_rows_clear(const fr_optim *o, fr_model *m, float *g, size_t off, uint32_t cols,
                               const uint32_t *rows, uint32_t n);
/* fri_optim_step_rows_clear, Adagrad (rows of 1 or 8k floats, AVX) with its square root and
 * division replaced by rsqrt and one Newton step (relative error ~1e-7, other bits); other
 * rules and shapes as fri_optim_step_rows_clear. Returns whether the fast rule ran. */
bool fri_optim_step_rows_clear_fast(const fr_optim *o, fr_model *m, float *g, size_t off, uint32_t cols,
                                    const uint32_t *rows, uint32_t n);
/* fri_optim_step_rows_clear_fast's Adagrad on params [off, off + n) (whole tensors: every
 * element a row of one; the same bits as stepping them as rows). Returns false, doing
 * nothing, where that rule does not run (another rule, no AVX): step them as rows then. */
bool fri_optim_step_range_clear_fast(const fr_optim *o, fr_model *m, float *g, size_t off, size_t n);
/* Whether fri_optim_step_gather_fast runs (Adagrad, AVX). */
bool fri_optim_fast_gather(const fr_optim *o);
/* fri_optim_step_rows_clear_fast's Adagrad on rows rows[0..n) of the tensor at slab offset
 * off (cols floats a row: 1 or a multiple of 8), their gradients packed in gc (row x of gc
 * is the gradient of rows[x]; gc is left as it is): the same bits as stepping them from
 * the slab's gradient rows. Only where fri_optim_fast_gather(o). */
void fri_optim_step_gather_fast(const fr_optim *o, fr_model *m, size_t off, uint32_t cols, const uint32_t *rows,
                                uint32_t n, const float *gc);
/* fri_optim_step_gather_fast on two tensors with the same rows in one pass: rows of cols
 * floats (a multiple of 8) at slab offset off with gradients gc, and rows of one float (a
 * row's bias) at off1 with gradients gc1 (row x of each the gradient of rows[x]): each
 * element's step is the two calls' (the same bits), a row's index and its lines asked for
 * once. Only where fri_optim_fast_gather(o). */
void fri_optim_step_gather2_fast(const fr_optim *o, fr_model *m, size_t off, uint32_t cols, size_t off1,
                                 const uint32_t *rows, uint32_t n, const float *gc, const float *gc1);
/* fri_optim_step_gather2_fast's steps (the same bits), each row's change also added to a
 * mirror of the rows: hm (rows of cols IEEE half floats, slab row r at hm + r * cols; each
 * h = half(float(h) + (new - old)), round to nearest even) and bm (a float a row: b += new -
 * old): the hybrid's screening table kept up with its item rows. Only where
 * fri_optim_fast_gather(o), at cols 32 with F16C; false (nothing done) elsewhere. */
bool fri_optim_step_gather2_mirror_fast(const fr_optim *o, fr_model *m, size_t off, uint32_t cols, size_t off1,
                                        const uint32_t *rows, uint32_t n, const float *gc, const float *gc1,
                                        uint16_t *hm, float *bm);
/* Zeroes the moments of params [off, off + n) and the step count: a fresh optimizer for
 * a caller that will step only such ranges (O(n), not O(the model)). */
void fri_optim_reset_range(fr_optim *o, size_t off, size_t n);
/* The moment arrays (slab layout; NULL where the rule has none: m1 for SGD with momentum
 * and Adam, m2 for Adam and Adagrad), for a caller that keeps part of the state across
 * resets; and setting the step count such a kept state carries (bias correction). */
void fri_optim_moments(fr_optim *o, float **m1, float **m2);
void fri_optim_set_steps(fr_optim *o, uint64_t steps);
/* True, with the current lr in *lr, if o is plain SGD (no momentum, no weight decay): a
 * step is then p -= lr * g on the rows g touched and nothing else, which a fused
 * per-example loop can take itself (fri_model_family.sgd_pass). */
bool fri_optim_plain_sgd(const fr_optim *o, float *lr);
/* True if a step of o leaves bit for bit every parameter whose gradient is +0 (plain
 * SGD or Adagrad, no weight decay: p - lr * 0 / (sqrt(s) + eps) with eps > 0, and s + 0),
 * so a caller that steps only the rows a minibatch touched takes the steps of
 * fr_optim_step (fri_model_family.rows_pass). */
bool fri_optim_zero_keeps(const fr_optim *o);
/* Tests: the trainer always runs the generic minibatch loop (the reference the fused
 * per-example SGD loop is checked against). */
struct fr_trainer;
void fri_trainer_no_fused(struct fr_trainer *t);
/* A federated client's local fit of ONE user, fused (fri_model_family.client_sgd): the
 * float operations of the client's generic loop (fr_client_fit: minibatches of `batch`
 * through the family's loss_grad, gradients from zero, plain SGD p -= lr * (g + wd * p)
 * on the user's rows and on the item rows a minibatch touched) in their order, so the
 * same bits, on a compact copy of the item rows the client reads instead of a compact
 * model, gradient and optimizer. In: rows[L] the global item of each compact row, the
 * examples (item: compact rows; label) of every epoch, epoch k being [starts[k],
 * starts[k + 1]) in its shuffled order; priv the user's private rows, one per user table
 * in slab order (updated in place). Out: out[L * (sum of the item tables' widths)] the
 * item tables' compact rows after the fit, table after table in slab order (the global
 * rows' values are copied in first), *loss_sum += each minibatch's mean loss x its size.
 * scratch/scratch_cap: the caller's buffer, grown here (fri_realloc) and kept.
 * FR_ERR_UNSUPPORTED (no message, nothing changed): a kind it does not fuse, or a
 * non-finite value among the rows it would read (the generic loop then steps differently);
 * FR_ERR_NOMEM. */
typedef struct fri_client_sgd {
    const uint32_t *rows;   /* [L] global item of each compact row */
    uint32_t L;
    float *const *priv;     /* [user tables] the user's rows */
    const uint32_t *item;   /* [n] examples: compact item rows */
    const float *label;     /* [n] their labels */
    const size_t *starts;   /* [epochs + 1] */
    uint32_t epochs;
    size_t batch;           /* minibatch size (>= 1) */
    float lr, wd;           /* the step rule's (wd 0: the caller checks) */
    float *out;             /* see above */
    void **scratch;
    size_t *scratch_cap;    /* bytes */
} fri_client_sgd;
FR_NODISCARD fr_err fri_model_client_sgd(const fr_model *global, const fri_client_sgd *a, double *loss_sum);
/* Tests: whether federated clients may take the fused fit (fri_model_client_sgd; the
 * default) or always run the generic loop (the reference it is checked against). Returns
 * the previous setting. Not thread-safe: set it before training. */
bool fri_client_lean_allow(bool allow);
/* Fused fits done by this process so far (tests: that the fused path ran). */
uint64_t fri_client_lean_fits(void);

/* Tests: whether the mf family's fused SGD pass may take its AVX2 copy (model_mf.c; the
 * default, where the CPU has AVX2) or keeps its plain one. Returns whether the AVX2 copy was
 * in use before the call. Not thread-safe: set it before training. */
bool fri_mf_sgd_allow_avx(bool allow);

/* Coasting: the steps a dense optimizer takes on parameters whose gradient is zero, in
 * closed form, so a caller that steps only the rows a minibatch touched still gets the
 * dense rule's result. A row whose moments are those after step `from` is advanced to
 * after step `to` (from < to <= the optimizer's step count):
 *   plain SGD, Adagrad: nothing moves (a zero gradient is a zero step);
 *   SGD with momentum:  p -= lr * buf * sum_{j=1..k} mom^j,  buf *= mom^k  (k = to - from);
 *   Adam:               m *= b1^k, v *= b2^k, and p moves by the sum over j = 1..k of
 *     lr/bc1(u) * b1^j m / (b2^(j/2) sqrt(v) / sqrt(bc2(u)) + eps),  u = from + j,
 *     = (m / sqrt v) * sum_n (-y)^n S_n,  y = eps / sqrt(v),  n = 0..4:
 *     the expansion of 1 / (1 + x_j) with x_j = y * sqrt(bc2(u)) / b2^(j/2); the series
 *     S_n are shared by every element of every row with the same (from, to). Where
 *     x_j <= 0.1 for every j (sqrt(v) >= 10 eps X, X the largest sqrt(bc2(u)) / b2^(j/2))
 *     the relative error is <= 1.2e-5; an element with a smaller v (or v = 0 with m != 0)
 *     takes the k dense steps one by one, bit for bit.
 * The result equals the k dense steps up to that and float rounding (tested against them).
 * Only without weight decay (a zero gradient is then not a zero step: the caller steps
 * densely). fri_optim_coast_reserve tabulates the bias corrections of `steps` steps (up
 * to 65536; later ones are computed; FR_ERR_NOMEM); plan computes the series of
 * (from, to) once for any number of ranges. */
typedef struct fri_coast {
    uint64_t from, to;      /* steps */
    float s[5];             /* adam: S_0..S_4; sgd momentum: s[0] = lr * sum mom^j */
    float m1_scale;         /* b1^k or mom^k */
    float m2_scale;         /* b2^k */
    float vmin;             /* adam: elements with v below it take the exact steps */
    bool moves;             /* false: nothing to do (plain SGD, Adagrad, k = 0) */
} fri_coast;
FR_NODISCARD fr_err fri_optim_coast_reserve(fr_optim *o, uint64_t steps);
void fri_optim_coast_plan(const fr_optim *o, uint64_t from, uint64_t to, fri_coast *c);
void fri_optim_coast_range(const fr_optim *o, fr_model *m, size_t off, size_t n, const fri_coast *c);

/* The model config as bytes (the model file's config section, and the model part of a
 * federation's TASK): put appends it, get reads it back through a bounded reader and
 * checks it (FR_ERR_FORMAT naming the field). */
void fri_model_config_put(fri_buf *b, const fr_model_config *c);
FR_NODISCARD fr_err fri_model_config_get(fri_rd *r, fr_model_config *c);
#endif
