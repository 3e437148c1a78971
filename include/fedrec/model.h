/* fedrec models: the parameter slab, the recommendation models (biased MF, implicit MF
 * with BPR or BCE, GMF, MLP, NeuMF; the baselines pop and bias), their losses and gradients, optimizers over the
 * slab, and the model file.
 *
 * Model kinds. Every function here works for any kind: a kind's family (mf and bpr in
 * src/model/model_mf.c, gmf, mlp and neumf in model_ncf.c, pop and bias in model_base.c) supplies its defaults, checks,
 * layout, workspace, loss, gradient and scoring through one internal ops table, and a
 * registry maps kinds to families (src/model/family.h). The built-in kinds keep the
 * values of fr_model_kind below; fr_model_kind_parse and fr_model_kind_name know every
 * registered kind by name, and the model file stores a kind by name, so adding a family
 * adds no number to any file format.
 *
 * The parameter slab. A model's parameters are one 64-byte aligned float array with
 * named views (the tensor table). SHARED tensors (item tables, MLP and output layers)
 * come first, PRIVATE ones (user tables) last, so:
 *   - the shared prefix is params[0 .. fr_model_n_shared(m)): FedAvg, clipping, masking
 *     and deltas are one pass over it;
 *   - gradients (fr_grad), optimizer moments (fr_optim) and deltas use the same layout;
 *   - the model file is a header plus the slab.
 * Embedding tables are row-major [rows x cols]; linear weights are PyTorch's
 * [out x in] row-major, biases [out].
 *
 * A federated client typically:
 *   (a) fr_model_set_shared(client, global_params)       copy the shared prefix in
 *   (b) write its private rows (fr_model_tensor + fr_model_params, or
 *       fr_model_init_user_row for a first-time user)
 *   (c) loop: fr_grad_zero; fr_model_loss_grad; fr_optim_step  (local minibatch steps),
 *       adding fr_grad_touched(g, t) rows of item tables into its own fr_rowset
 *   (d) fr_model_shared_delta(client, global_params, delta) and its touched item rows.
 *
 * Thread-safety: a model is read-only for fr_model_score (any number of threads, each
 * with its own workspace); every function that writes a model, grad, workspace or
 * optimizer needs exclusive access to that object. Distinct objects are independent. */
#ifndef FEDREC_MODEL_H
#define FEDREC_MODEL_H

#include "fedrec/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ configuration */

typedef enum fr_model_kind {
    FR_MODEL_MF = 1,    /* biased MF for explicit ratings: mu + b_u + b_i + p_u.q_i */
    FR_MODEL_BPR = 2,   /* implicit MF: score p_u.q_i, BPR on (u, pos, neg) or BCE */
    FR_MODEL_GMF = 3,   /* NCF GMF: logit = w.(p_u * q_i) + b */
    FR_MODEL_MLP = 4,   /* NCF MLP: logit = w.MLP([p_u, q_i]) + b */
    FR_MODEL_NEUMF = 5, /* NCF NeuMF: logit = w.[p_u*q_i, MLP([p'_u, q'_i])] + b */
    FR_MODEL_POP = 6,   /* baseline, most popular: score = the item's training users */
    FR_MODEL_BIAS = 7,  /* baseline for ratings: mu + b_u + b_i, regularised, fitted by ALS */
} fr_model_kind;

typedef enum fr_loss {
    FR_LOSS_MSE = 1, /* mean (r - r_hat)^2 (mf) */
    FR_LOSS_BCE = 2, /* mean BCE-with-logits on 0/1 labels (bpr, gmf, mlp, neumf) */
    FR_LOSS_BPR = 3, /* mean -log sigmoid(s_pos - s_neg) (bpr) */
    FR_LOSS_CE = 4,  /* softmax cross-entropy of the next item over every item (sasrec) */
} fr_loss;

/* How a sampled training negative is drawn (fr_train_config.neg_sampler,
 * fr_fl_config.neg_sampler), before the user's own items (and a cold split's absent ones)
 * are rejected and drawn again. */
typedef enum fr_neg_sampler {
    FR_NEG_UNIFORM = 0,    /* every item alike (NCF's rule; the default) */
    FR_NEG_POPULARITY = 1, /* item i with probability (c_i + 1)^b / sum_j (c_j + 1)^b, c_i its
                              training interactions and b the configs' neg_pop_exp (0 reads
                              as 1): at b = 1 LightFM's BPR rule (the item of a random
                              training interaction) smoothed by one; federated, from the
                              public popularity (fr_client_ws_set_popularity) */
} fr_neg_sampler;
/* "uniform", "pop"; and back (FR_ERR_INVALID naming the value and the choices). */
FR_API const char *fr_neg_sampler_name(fr_neg_sampler s);
FR_API FR_NODISCARD fr_err fr_neg_sampler_parse(const char *name, fr_neg_sampler *out);

#define FR_MODEL_MAX_LAYERS 8

typedef struct fr_model_config {
    fr_model_kind kind;
    uint32_t n_users;     /* rows of the private user tables (1 on a device) */
    uint32_t n_items;     /* rows of the shared item tables */
    uint32_t dim;         /* factors: mf/bpr (default 32), gmf and NeuMF's GMF part (8) */
    uint32_t mlp_dim;     /* mlp/neumf: embedding per side, MLP input is 2*mlp_dim (32) */
    uint32_t n_layers;    /* mlp/neumf: number of hidden ReLU layers (3) */
    uint32_t layers[FR_MODEL_MAX_LAYERS]; /* their output widths (32, 16, 8) */
    fr_loss loss;         /* MSE for mf; BPR or BCE for bpr; BCE for the NCF models */
    float l2;             /* lambda: + l2 * mean over the batch of the squared norms of
                             the embedding rows (and biases) each example uses; for mf
                             exactly the anchor's reg term (default 0.1 mf, 0 others) */
    float bias_l2;        /* mf: lambda of the b_u^2 + b_i^2 term alone, same mean over the
                             batch; 0 (default) = l2, as the anchor */
    float mu;             /* mf: global mean rating added to every prediction */
    float init_std;       /* std of embedding init; 0 = default (0.1 mf/bpr, 0.01 ncf) */
    uint64_t seed;        /* init stream (seed, tensor, row/0, FR_PURPOSE_INIT) */
    float reg_user;       /* bias: lambda_u of reg_user * sum over users of b_u^2 (15) */
    float reg_item;       /* bias: lambda_i of reg_item * sum over items of b_i^2 (10);
                             the fit minimises sum (r - mu - b_u - b_i)^2 + both terms,
                             as Surprise's BaselineOnly (its defaults) */
    uint32_t features;    /* lightfm/fm: the side features (fr_model_config_set_features),
                             a handle to an immutable copy held by the library; 0: ids only */
    uint32_t warp;        /* lightfm/fm with loss bpr: > 0 trains WARP instead, drawing up
                             to this many negatives per positive (default 0) */
    /* sequence models (sasrec; 0 for the other kinds): */
    uint32_t max_len;     /* L: positions a history holds, the latest items (50) */
    uint32_t heads;       /* attention heads; divides dim (1) */
    uint32_t ffn_dim;     /* width of the point-wise feed-forward's hidden layer (= dim) */
    float dropout;        /* dropout rate in training (0.2); scoring never drops */
    uint32_t post_norm;   /* sasrec: 1 = post-norm blocks (RecBole's: a layer norm after each
                             residual sum, one on the input, none at the end); 0 (default) =
                             pre-norm blocks and a final layer norm */
} fr_model_config;

/* Fills cfg with the defaults of kind (n_users = n_items = 0: the caller sets them).
 * Fields the kind does not use are left 0 (mf) or at their defaults (the NCF kinds). */
FR_API void fr_model_config_default(fr_model_config *cfg, fr_model_kind kind);
/* Gives cfg (a lightfm or fm config) the side features f (fedrec/features.h): an
 * immutable copy is kept by the library for the life of the process (identical feature
 * sets share one copy) and cfg->features names it, so configs stay plain values. f may be
 * freed afterwards; NULL clears them. Thread-safe. FR_ERR_NOMEM, FR_ERR_RANGE (more than
 * 4096 distinct sets in a process). */
struct fr_features;
FR_API FR_NODISCARD fr_err fr_model_config_set_features(fr_model_config *cfg, const struct fr_features *f);
/* FR_OK, or FR_ERR_INVALID with a message saying which field is wrong and why. */
FR_API FR_NODISCARD fr_err fr_model_config_check(const fr_model_config *cfg);
/* "mf", "bpr", ... : the registered name of kind; "?" for a kind nobody registered. */
FR_API const char *fr_model_kind_name(fr_model_kind kind);
/* Parses a name as above; FR_ERR_INVALID naming it and listing the known names. */
FR_API FR_NODISCARD fr_err fr_model_kind_parse(const char *name, fr_model_kind *out);
/* True if the kind predicts ratings (evaluated by RMSE/MAE on explicit ratings), false if
 * it ranks items (implicit feedback: HR, NDCG, AUC). */
FR_API bool fr_model_kind_is_explicit(fr_model_kind kind);
/* True for the baselines fitted in closed form (pop, bias): fr_model_fit (fedrec/train.h)
 * trains them in one pass over the training data, and the centralized trainer's epoch is
 * that fit. They are not trained by gradient steps, so not federated either. */
FR_API bool fr_model_kind_is_closed_form(fr_model_kind kind);
/* True for the kinds whose every step reads the whole training graph (lightgcn-full: an
 * item's degree and its other users' rows): they train centralized only, since a
 * federated client knows only its own interactions (lightgcn is their federated form). */
FR_API bool fr_model_kind_is_central_only(fr_model_kind kind);

/* True for the kinds that read side features of users and items (lightfm, fm:
 * fr_model_config_set_features); the others ignore them. */
FR_API bool fr_model_kind_uses_features(fr_model_kind kind);

/* ------------------------------------------------------------------ the model */

typedef enum fr_tensor_kind {
    FR_TENSOR_DENSE = 0,      /* shared dense weights or biases */
    FR_TENSOR_ITEM_TABLE = 1, /* shared embedding table, one row per item */
    FR_TENSOR_USER_TABLE = 2, /* private embedding table, one row per user held */
} fr_tensor_kind;

#define FR_TENSOR_NAME_MAX 32
#define FR_MODEL_MAX_TENSORS 32

typedef struct fr_tensor {
    char name[FR_TENSOR_NAME_MAX]; /* "item_gmf", "mlp.0.weight", ... */
    size_t offset;                 /* first float in the slab */
    uint32_t rows, cols;           /* row-major [rows x cols] */
    fr_tensor_kind kind;
} fr_tensor;

typedef struct fr_model fr_model;

/* Creates a model and initialises it like the PyTorch anchors: embeddings N(0, std),
 * MLP weights xavier_uniform, output layer kaiming_uniform(a=1, sigmoid), biases 0.
 * Item tables and dense tensors draw from (seed, tensor index, 0, FR_PURPOSE_INIT);
 * row r of a user table from (seed, tensor index, r, FR_PURPOSE_INIT), so a client
 * model can give its rows the values the global model would (fr_model_init_user_row).
 * Errors: FR_ERR_INVALID (config), FR_ERR_NOMEM. *out is NULL on failure. */
FR_API FR_NODISCARD fr_err fr_model_create(fr_model **out, const fr_model_config *cfg);
/* Frees the model and its slab. Accepts NULL. */
FR_API void fr_model_free(fr_model *m);
/* A deep copy (same config, same parameters). FR_ERR_NOMEM. */
FR_API FR_NODISCARD fr_err fr_model_clone(fr_model **out, const fr_model *m);

/* Accessors: never fail; pointers are owned by the model and live as long as it. */
FR_API const fr_model_config *fr_model_config_of(const fr_model *m);
FR_API size_t fr_model_n_params(const fr_model *m);
/* Length of the shared prefix of the slab. */
FR_API size_t fr_model_n_shared(const fr_model *m);
/* The slab (n_params floats, 64-byte aligned). The caller may read and write it. */
FR_API float *fr_model_params(fr_model *m);
FR_API const float *fr_model_params_const(const fr_model *m);
FR_API int fr_model_n_tensors(const fr_model *m);
/* Tensor i in slab order (0 <= i < n_tensors), NULL otherwise. */
FR_API const fr_tensor *fr_model_tensor(const fr_model *m, int i);
/* Index of the tensor called name, or -1. */
FR_API int fr_model_tensor_find(const fr_model *m, const char *name);

/* Zeroes rows items[0..n) of every item table (fr_tensor kind FR_TENSOR_ITEM_TABLE) of a
 * model whose rows are global item ids: what it learned of those items' ids. For cold
 * start: an item with no training interaction learned nothing by its id, and what its id
 * rows hold is their random init (or, had it been drawn as a negative, pushes from users
 * who never saw it); zeroed, the hybrid kinds (lightfm, fm) score it from its features
 * alone. Other kinds then score such an item from their other parameters (mf: its bias
 * and factors are 0). FR_ERR_RANGE (an item >= n_items; nothing is changed then). */
FR_API FR_NODISCARD fr_err fr_model_forget_items(fr_model *m, const uint32_t *items, size_t n);

/* Copies the shared prefix (n_shared floats) from src into the model: step (a) of a
 * client. src may be another model's params with the same config but any n_users. */
FR_API void fr_model_set_shared(fr_model *m, const float *src);
/* delta[0 .. n_shared) = params - ref (the client's update). */
FR_API void fr_model_shared_delta(const fr_model *m, const float *ref, float *delta);
/* Re-initialises local user row `row` with the values the global model gives user
 * `global_user` at creation (same seed and config). FR_ERR_RANGE if row >= n_users. */
FR_API FR_NODISCARD fr_err fr_model_init_user_row(fr_model *m, uint32_t row, uint32_t global_user);

/* ------------------------------------------------------------------ the training graph */

/* Graph models (lightgcn) score a user through the items it trained on: a user's vector
 * is propagated from its own interactions. Those are not parameters, so they are not in
 * the slab or the model file; whoever trains or scores such a model tells it where they
 * are (the centralized trainer's caller, the federated client for its own users, the
 * evaluator). items(ctx, r, &list) gives the training items of user row r of the model
 * (item rows of the model, any order, each once) and returns their count. */
typedef struct fr_model_graph {
    size_t (*items)(const void *ctx, uint32_t user_row, const uint32_t **items);
    const void *ctx; /* borrowed: must outlive the binding */
} fr_model_graph;

/* True if the model's kind needs a graph (fr_model_set_graph) to train or score: its
 * losses and scores then fail with FR_ERR_INVALID while none is set. */
FR_API bool fr_model_needs_graph(const fr_model *m);
/* Binds g (copied; g->ctx is borrowed) to m, or unbinds with g NULL; returns the binding
 * it replaces (items NULL: none), so a caller can restore it. fr_model_clone copies the
 * binding. Not thread-safe against users of m. */
FR_API fr_model_graph fr_model_set_graph(fr_model *m, const fr_model_graph *g);
/* The binding of m (items NULL: none). */
FR_API fr_model_graph fr_model_graph_of(const fr_model *m);
/* A graph over a dataset whose user u and item i are row u and row i of the model (the
 * centralized trainer's rows, the federated simulation's global model); the dataset must
 * outlive the binding. */
struct fr_dataset;
FR_API fr_model_graph fr_model_graph_dataset(const struct fr_dataset *dataset);

/* ------------------------------------------------------------------ rows touched */

/* A set of rows of one table, with O(1) insert and a list in first-insert order. */
typedef struct fr_rowset {
    uint32_t n_rows; /* rows of the table */
    uint32_t count;  /* rows in the set */
    uint32_t *rows;  /* [count] the rows, in first-insert order */
    uint8_t *mark;   /* [n_rows] 1 if in the set */
} fr_rowset;

/* Allocates an empty set over n_rows rows (FR_ERR_NOMEM; s is then zeroed). */
FR_API FR_NODISCARD fr_err fr_rowset_init(fr_rowset *s, uint32_t n_rows);
/* Frees the arrays and zeroes s. Accepts NULL and a zeroed set. */
FR_API void fr_rowset_destroy(fr_rowset *s);
/* Inserts row (< n_rows; not checked: this is the hot path). */
static inline void fr_rowset_add(fr_rowset *s, uint32_t row) {
    if (!s->mark[row]) { s->mark[row] = 1; s->rows[s->count++] = row; }
}
/* Empties the set in O(count). */
FR_API void fr_rowset_clear(fr_rowset *s);
/* dst |= src (same n_rows; FR_ERR_INVALID otherwise). For a client collecting the item
 * rows it touched over all its local steps from fr_grad_touched after each step. */
FR_API FR_NODISCARD fr_err fr_rowset_merge(fr_rowset *dst, const fr_rowset *src);

/* ------------------------------------------------------------------ gradients */

/* A gradient in slab layout, plus the rows of each embedding table that the losses
 * added to since the last fr_grad_zero. */
typedef struct fr_grad fr_grad;

/* A zero gradient for models shaped like m. FR_ERR_NOMEM. Frees accept NULL. */
FR_API FR_NODISCARD fr_err fr_grad_create(fr_grad **out, const fr_model *m);
FR_API void fr_grad_free(fr_grad *g);
/* Zeroes the gradient: the dense tensors and the touched rows only (untouched rows
 * are zero already), then empties the touched sets. */
FR_API void fr_grad_zero(fr_grad *g);
/* The gradient (n_params floats, slab layout). */
FR_API float *fr_grad_data(fr_grad *g);
FR_API const float *fr_grad_data_const(const fr_grad *g);
/* Rows of table tensor t touched since the last zero (NULL for a dense tensor). */
FR_API const fr_rowset *fr_grad_touched(const fr_grad *g, int t);
/* dst = a * dst + b * src, over the dense tensors and the union of both touched sets
 * (which dst then holds). For data-parallel steps: split a batch into parts of n_k
 * examples, one fr_model_loss_grad per part into its own grad (own workspace, own
 * thread), then combine with weights n_k / n to get the gradient of the whole batch's
 * mean. FR_ERR_INVALID if the two differ in shape. */
FR_API FR_NODISCARD fr_err fr_grad_combine(fr_grad *dst, float a, const fr_grad *src, float b);
/* Marks a row as touched (for callers that write gradients themselves). */
FR_API void fr_grad_touch(fr_grad *g, int t, uint32_t row);

/* ------------------------------------------------------------------ training */

/* A batch. users/items are dense indices into the model's tables (local user rows).
 * label: the rating (mse) or 0/1 (bce); unused for bpr. neg: negative items (bpr
 * loss only, else NULL). weight: each example's weight in the loss, which is then
 * (1/n) sum_i weight[i] * loss_i (+ the L2 term, unweighted), so example i's gradient is
 * weight[i] times its own; NULL is
 * weight 1 for all, bit for bit the unweighted loss. The trainers put an implicit
 * positive's confidence here (fr_train_config.confidence_alpha). Not checked: finite
 * values >= 0 are the caller's to give. */
typedef struct fr_batch {
    const uint32_t *users; /* [n] */
    const uint32_t *items; /* [n] */
    const float *label;    /* [n] or NULL for the BPR loss */
    const uint32_t *neg;   /* [n] BPR negatives, else NULL */
    size_t n;
    const float *weight;   /* [n] weights of the examples' loss terms, or NULL: all 1 */
    /* Sequence models only (kinds with fr_model_history_len L > 0); the other kinds
     * ignore these, and a batch that leaves them zero gives them no history. */
    const uint32_t *hist;     /* [n * hist_len] example i's history: the items its user had
                                 before items[i], in time order, the latest last,
                                 left-padded with FR_NO_ITEM */
    const uint32_t *hist_neg; /* [n * hist_len] or NULL: at each history position t an item
                                 the user never had, the sampled negative of the item that
                                 follows t (hist[t+1], or items[i] after the last). Given,
                                 the loss covers every position's next item (label[i] is
                                 then 1); NULL, only items[i] with label[i]. FR_NO_LOSS at
                                 a position makes it context only: no loss term for its
                                 next item (under BCE or CE); such positions are a prefix
                                 of the example's valid positions (the loss covers a
                                 contiguous suffix of them), each position's weight
                                 stays 1/L */
    const uint64_t *key;      /* [n] or NULL: a random key per example for stochastic layers
                                 (dropout); NULL: none drops (deterministic) */
    uint32_t hist_len;        /* L of hist (the model's fr_model_history_len) */
} fr_batch;

#define FR_NO_ITEM UINT32_MAX /* padding in fr_batch.hist */
#define FR_NO_LOSS (UINT32_MAX - 1) /* in fr_batch.hist_neg: a context-only position */

/* The history length L a sequence model reads (fr_batch.hist, fr_model_score_history),
 * 0 for the kinds that read none. */
FR_API uint32_t fr_model_history_len(const fr_model *m);

/* Per-batch scratch (activations and their gradients) sized once for max_batch
 * examples. A workspace belongs to one thread at a time. Creating the first workspace
 * sets OpenBLAS to one thread for the process: at these small shapes its own threads
 * make a NeuMF step 3x slower, and fedrec parallelises with its own pool. */
typedef struct fr_model_ws fr_model_ws;

/* FR_ERR_INVALID (max_batch 0 or > 2^24), FR_ERR_NOMEM. Usable with any model of the
 * same kind and dimensions (n_users, n_items may differ). Free accepts NULL. */
FR_API FR_NODISCARD fr_err fr_model_ws_create(fr_model_ws **out, const fr_model *m, size_t max_batch);
FR_API void fr_model_ws_free(fr_model_ws *ws);
FR_API size_t fr_model_ws_max_batch(const fr_model_ws *ws);

/* Computes the mean loss over the batch (+ the L2 term), stores it in *loss, and ADDS
 * its gradient into g, marking the embedding rows used. No allocation.
 * Errors: FR_ERR_INVALID (n = 0 or > ws max batch, missing label/neg for the loss,
 * workspace or grad of another shape), FR_ERR_RANGE (a user or item index out of
 * range; nothing has been added to g then). */
FR_API FR_NODISCARD fr_err fr_model_loss_grad(const fr_model *m, fr_model_ws *ws, const fr_batch *b,
                                       fr_grad *g, double *loss);
/* Same loss without gradients (and without touching any grad). Same errors. */
FR_API FR_NODISCARD fr_err fr_model_loss(const fr_model *m, fr_model_ws *ws, const fr_batch *b, double *loss);

/* Scores n (user, item) pairs: the predicted rating (mf) or the logit (others; higher
 * is better). Processes any n in chunks of the workspace's max batch. ws may be NULL:
 * a temporary one is allocated (FR_ERR_NOMEM possible). Thread-safe with one ws per
 * thread. FR_ERR_RANGE for an index out of range. */
FR_API FR_NODISCARD fr_err fr_model_score(const fr_model *m, fr_model_ws *ws, const uint32_t *users,
                                   const uint32_t *items, size_t n, float *out);
/* A sequence model's scores of n items as the next item after hist[hist_len] (the
 * user's items in time order, the latest last, left-padded with FR_NO_ITEM; hist_len
 * must be the model's fr_model_history_len). ws as fr_model_score. A kind that reads
 * no history: FR_ERR_UNSUPPORTED.
 * FR_ERR_RANGE for an index out of range, FR_ERR_INVALID for another hist_len. */
FR_API FR_NODISCARD fr_err fr_model_score_history(const fr_model *m, fr_model_ws *ws, const uint32_t *hist,
                                                  uint32_t hist_len, const uint32_t *items, size_t n, float *out);

/* ------------------------------------------------------------------ optimizers */

typedef enum fr_optim_kind {
    FR_OPTIM_SGD = 1,     /* p -= lr * (g [+ momentum buffer]) */
    FR_OPTIM_ADAM = 2,    /* PyTorch Adam (bias-corrected, eps after sqrt) */
    FR_OPTIM_ADAGRAD = 3, /* PyTorch Adagrad (sum of squares, eps after sqrt) */
} fr_optim_kind;

typedef struct fr_optim_config {
    fr_optim_kind kind;
    float lr;           /* default 0.001 adam, 0.1 sgd, 0.01 adagrad */
    float momentum;     /* sgd: 0 = plain SGD */
    float beta1, beta2; /* adam: 0.9, 0.999 */
    float eps;          /* adam 1e-8, adagrad 1e-10 */
    float weight_decay; /* L2 added to the gradient, g += wd * p (PyTorch) */
    bool sparse_rows;   /* true: embedding tables update only the rows touched this
                           step (lazy, like torch SparseAdam; weight decay only on those
                           rows); false: every parameter, exactly PyTorch's dense step */
} fr_optim_config;

typedef struct fr_optim fr_optim;

/* The defaults of kind (PyTorch's, with lr as above; dense mode). */
FR_API void fr_optim_config_default(fr_optim_config *cfg, fr_optim_kind kind);
/* FR_OK, or FR_ERR_INVALID naming the bad field and its allowed range. */
FR_API FR_NODISCARD fr_err fr_optim_config_check(const fr_optim_config *cfg);
/* "sgd", "adam", "adagrad"; parse gives FR_ERR_INVALID naming an unknown name. */
FR_API const char *fr_optim_kind_name(fr_optim_kind kind);
FR_API FR_NODISCARD fr_err fr_optim_kind_parse(const char *name, fr_optim_kind *out);

/* Creates an optimizer for models shaped like m (state: moments in slab layout, zero).
 * FR_ERR_INVALID (config), FR_ERR_NOMEM. Free accepts NULL. One optimizer per thread. */
FR_API FR_NODISCARD fr_err fr_optim_create(fr_optim **out, const fr_model *m, const fr_optim_config *cfg);
FR_API void fr_optim_free(fr_optim *o);
/* Zeroes the moments and the step count (a fresh optimizer, as a client each round). */
FR_API void fr_optim_reset(fr_optim *o);
/* One step on m with gradient g. Does not zero g. FR_ERR_INVALID if shapes differ.
 * Dense mode costs O(n_params) per step (as PyTorch); sparse-row mode O(dense tensors
 * + touched rows), which is what makes small client batches cheap. Results are
 * bit-identical on every x86-64 (SSE, AVX and scalar paths do the same float ops). */
FR_API FR_NODISCARD fr_err fr_optim_step(fr_optim *o, fr_model *m, const fr_grad *g);
/* Steps taken since creation or the last reset. */
FR_API uint64_t fr_optim_steps(const fr_optim *o);
/* Changes the learning rate of the following steps (a schedule); the moments are kept.
 * FR_ERR_INVALID unless lr is finite and > 0. */
FR_API FR_NODISCARD fr_err fr_optim_set_lr(fr_optim *o, float lr);

/* ------------------------------------------------------------------ model file */

#define FR_MODEL_FILE_VERSION 2

/* Training information stored with a model. On save every pointer may be NULL. On
 * load the pointers are allocated (free with fr_model_meta_destroy). */
typedef struct fr_model_meta {
    uint64_t round, epoch;  /* where training stopped */
    uint64_t seed;          /* the run's seed */
    char *config_json;      /* free-form training config (NUL-terminated), or NULL */
    int64_t *user_ids;      /* [n_users] raw user id of each row, or NULL */
    int64_t *item_ids;      /* [n_items] raw item id of each row, or NULL */
} fr_model_meta;

FR_API void fr_model_meta_destroy(fr_model_meta *meta);

/* Encodes: magic "FRMODEL\0", version, length, config (the kind's NAME, the fields every
 * kind has, and the kind's own parameter block with its length: every hyperparameter
 * that scoring or further training needs, bias_l2 and mu included), tensor table, meta,
 * ids, the little-endian slab, and a CRC-32C of all that (layout in
 * src/model/modelfile.c). A new model kind needs no new version.
 * *bytes is allocated; release it with fr_model_bytes_free. FR_ERR_NOMEM, FR_ERR_INVALID
 * (config_json longer than 1 MiB). Thread-safe for a model nobody writes. */
FR_API FR_NODISCARD fr_err fr_model_encode(const fr_model *m, const fr_model_meta *meta, uint8_t **bytes,
                                    size_t *n);
FR_API void fr_model_bytes_free(uint8_t *bytes);
/* Decodes bytes made by fr_model_encode (version 2, or version 1 of earlier builds, which
 * did not store bias_l2: those load with bias_l2 = 0, "as l2"); every length
 * and count is checked before use. name is used in messages (a path, or "<memory>").
 * meta may be NULL. Errors: FR_ERR_FORMAT (magic, truncation, bad field, a kind this
 * build does not know), FR_ERR_VERSION, FR_ERR_CHECKSUM, FR_ERR_RANGE (a weight is NaN or
 * infinite: a diverged model, refused naming the tensor, row and column), FR_ERR_NOMEM.
 * On failure *out is NULL and meta is zeroed. */
FR_API FR_NODISCARD fr_err fr_model_decode(fr_model **out, const uint8_t *bytes, size_t n, const char *name,
                                    fr_model_meta *meta);
/* Writes the model file atomically (temporary file, fsync, rename). FR_ERR_IO. */
FR_API FR_NODISCARD fr_err fr_model_save(const fr_model *m, const char *path, const fr_model_meta *meta);
/* Reads a model file; errors as fr_model_decode plus FR_ERR_IO, messages name path. */
FR_API FR_NODISCARD fr_err fr_model_load(fr_model **out, const char *path, fr_model_meta *meta);

#ifdef __cplusplus
}
#endif
#endif
