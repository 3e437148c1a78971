/* The model interface: one ops table per model family, and the registry of families.
 *
 * A family (src/model/model_<family>.c) is everything that differs between model kinds:
 * the defaults and checks of its kinds' configs, the tensor layout and how each tensor
 * is initialised, the per-batch workspace, the loss and its gradient, scoring, whether a
 * kind predicts ratings, and the kind's parameter block in the model file. Everything
 * else (the slab, tensors, gradients, rowsets, initialisation, batch checks, the model
 * file around the block) is generic code in model.c and modelfile.c, and no code outside
 * the family files and the registry (registry.c) tests which kind a model is.
 *
 * Kind values: the registry numbers the kinds of its families in order, from 1: the
 * built-in list in registry.c gives mf, bpr (model_mf.c), gmf, mlp, neumf
 * (model_ncf.c) and the baselines pop, bias (model_base.c) the values 1..7 of the public
 * fr_model_kind enum (never reorder it:
 * model files of version 1, checkpoints and tests rely on them). A family registered at
 * run time (fri_model_register) gets the next free values. Model files of version 2
 * store a kind by NAME, so a new kind needs no number in any file.
 *
 * Adding a family: one file defining a `const fri_model_family` and one line in the
 * built-in list of registry.c (or fri_model_register, as tests/test_family.c does). */
#ifndef FEDREC_SRC_MODEL_FAMILY_H
#define FEDREC_SRC_MODEL_FAMILY_H

#include "fedrec/data.h"
#include "model/model_internal.h"

#define FRI_MODEL_MAX_KINDS 32    /* kinds registered, built-ins included */
#define FRI_MODEL_KIND_NAME_MAX 32 /* a kind's name is 1..31 bytes of [a-z0-9_-] */
#define FRI_MODEL_V1_KINDS 5      /* version 1 model files number kinds 1..5 (the built-ins) */

typedef struct fri_model_kind_def {
    const char *name;       /* "mf": in model files, on the command line, in messages */
    bool explicit_ratings;  /* predicts ratings (RMSE/MAE), else ranks items (HR, NDCG) */
    bool closed_form;       /* trained only by the family's fit op (a baseline): never by
                               gradient steps, so never federated */
    bool central_only;      /* reads every user's training items at every step (a whole-graph
                               model, lightgcn-full): trained centralized, never federated,
                               where a client knows only its own */
} fri_model_kind_def;

struct fri_examples; /* model/examples.h */
struct fri_client_sgd; /* model/model_internal.h */

typedef struct fri_model_family {
    const char *name;                /* the family, for messages */
    const fri_model_kind_def *kinds; /* [n_kinds], numbered in this order by the registry */
    int n_kinds;
    float init_std;                  /* N(0, std) of embeddings when the config's init_std is 0 */
    bool needs_graph;                /* its kinds' losses and scores read a user's training items
                                        through the model's fr_model_graph (model.h): a graph
                                        model (lightgcn); false for the others */
    bool side_features;              /* its kinds read user and item features (cfg.features):
                                        the CLI builds them from the data's metadata and files */

    /* --- config */
    /* c is zeroed, with kind and seed (1) set: fill in the kind's defaults. */
    void (*config_default)(fr_model_config *c);
    /* The family's part of fr_model_config_check, called after the generic fields (n_items,
     * sizes) pass: FR_ERR_INVALID (fri_fail) naming the field and the allowed values. */
    fr_err (*config_check)(const fr_model_config *c);
    /* The kind's parameter block of the config section (model file, TASK message): every
     * field of c that scoring or training needs and that is not a common field (kind name,
     * loss, n_users, n_items, seed, l2, init_std). get reads what put wrote, through r,
     * which is bounded to the block (a short block is FR_ERR_FORMAT from the reader; bytes
     * left over are refused by the caller), into c, which holds the kind's defaults and the
     * common fields already. get checks counts before using them (c is checked after). */
    void (*params_put)(fri_buf *b, const fr_model_config *c);
    fr_err (*params_get)(fri_rd *r, fr_model_config *c);

    /* --- layout */
    /* Adds the tensors of c (fri_model_add_tensor) in slab order: shared tensors first,
     * the private user tables last (fri_model_layout checks it), each with its init kind;
     * records in m->slot[] the tensor indices its ops look up. No allocation. */
    fr_err (*layout)(fr_model *m, const fr_model_config *c);

    /* --- workspace */
    size_t ws_size; /* bytes of the family's workspace struct (zeroed before ws_carve) */
    /* The floats of the workspace arena for batches of up to max_batch examples. With ws
     * NULL (and arena NULL), only counts them; else points ws's buffers into arena (zeroed,
     * 64-byte aligned) and returns the same count. fri_carve keeps every buffer aligned. */
    size_t (*ws_carve)(void *ws, float *arena, const fr_model_config *c, size_t max_batch);
    /* True if a workspace carved for config a serves a model of config b (same kind; n_users
     * and n_items may differ). */
    bool (*ws_fits)(const fr_model_config *a, const fr_model_config *b);
    /* Optional (NULL: nothing to do): frees what the family's ops allocated behind its
     * workspace struct (lightgcn-full's copy of the bound graph, built once per binding);
     * fr_model_ws_free calls it before freeing the arena. */
    void (*ws_release)(void *ws);
    /* Optional (NULL: the family keeps no cache that needs it): on, the caller promises that
     * the model's parameters and graph binding stay as they are until it calls again with
     * off (an evaluation: the model is not written while it runs), so a cache checked
     * once under the hold need not be checked again; off, every use checks it again.
     * fri_model_ws_hold calls it. */
    void (*ws_hold)(void *ws, bool on);

    /* --- math: the batch has been checked (1 <= n <= max batch, every index in range,
     * label or neg present as the loss needs; g has m's layout) */
    /* The mean loss over b plus the L2 term in *loss; with g non-NULL, also ADDS the gradient
     * into g and marks the embedding rows it adds to (fr_grad.rows); with g NULL the loss
     * alone. No allocation, but for a cache built once per graph binding and freed by
     * ws_release (lightgcn-full's copy of the graph). */
    fr_err (*loss_grad)(const fr_model *m, void *ws, const fr_batch *b, fr_grad *g, double *loss);
    /* Scores of n <= max batch (user, item) pairs into out: the predicted rating for an
     * explicit kind, else a logit (higher ranks first). */
    void (*score)(const fr_model *m, void *ws, const uint32_t *users, const uint32_t *items, size_t n,
                  float *out);

    /* --- closed-form fit (optional; NULL for families trained by gradients) */
    /* Fits m to d (user u of d is row u of m; d has no more users or items than m has rows)
     * in closed form, replacing every parameter, and may set data-derived config fields
     * (bias: mu); *loss gets the fit's training loss. FR_ERR_NOMEM. fr_model_fit and the
     * centralized trainer's epoch call it. */
    fr_err (*fit)(fr_model *m, const fr_dataset *d, double *loss);

    /* --- fused per-example SGD (optional; NULL: the generic minibatch loop) */
    /* One pass over ex in order, each example its own step of plain SGD (p -= lr * grad,
     * no momentum or weight decay): the same float operations in the same order as
     * fri_examples_fit with batch 1 and that optimizer, so the same bits, without the
     * loop's gather, gradient and row bookkeeping; with ex->alpha > 0 each example's loss
     * and gradient are scaled by its weight (wt) as fr_batch.weight scales them. Adds each
     * example's loss to *loss_sum.
     * FR_ERR_UNSUPPORTED (no message) for a loss it does not fuse (the caller then runs
     * the generic loop); indices are in range (the trainer built the examples). */
    fr_err (*sgd_pass)(fr_model *m, const struct fri_examples *ex, float lr, double *loss_sum);

    /* --- a federated client's fused local fit (optional; NULL: the client's generic loop) */
    /* See fri_client_sgd (model_internal.h): the operations of the generic loop for one
     * user, on a compact copy of its item rows. FR_ERR_UNSUPPORTED (no message). */
    fr_err (*client_sgd)(const fr_model *global, const struct fri_client_sgd *a, double *loss_sum);

    /* --- fused minibatch pass with a sparse-row optimizer (optional; NULL: the generic loop) */
    /* One pass over ex in minibatches of `batch` examples, each cut into `shards` shards
     * as the centralized trainer cuts them (train.c), with the trainer's float operations
     * in its order: shard s's gradient (loss_grad on examples [n s / S, n (s+1) / S))
     * into g[s], the shards combined in shard order as combine_and_step does
     * (fr_grad_combine), one fr_optim_step of o. But only the rows a minibatch touched
     * are combined, stepped and zeroed, dense tensors' rows included: o is in sparse-row
     * mode and leaves a row of zero gradient unchanged (fri_optim_zero_keeps), so the
     * bits are the generic loop's. g[0..shards) have m's layout and are zero on entry
     * (fr_grad_zero); they are left zero. Adds each shard's mean loss x its examples, in
     * shard order, to *loss_sum. FR_ERR_UNSUPPORTED (no message): the caller runs the
     * generic loop. */
    fr_err (*rows_pass)(fr_model *m, const struct fri_examples *ex, size_t batch, uint32_t shards, fr_grad *const *g,
                        fr_optim *o, double *loss_sum);
    /* Whether rows_pass draws the negatives of m's BPR examples itself (optional; NULL: it
     * does not). The centralized trainer then builds them without any (fri_examples.no_negs:
     * nothing drawn, neg unread) and gives the users' items as bits (fri_examples.pos), which
     * the draws avoid as the trainer's do; rows_pass refuses such examples where it would not
     * draw them or has no bits. */
    bool (*rows_pass_draws)(const fr_model *m);

    /* --- sequence models (optional; NULL for families that read no history) */
    /* The history length L the kind reads (fr_batch.hist); 0: none. The trainers then
     * build each example's history from the data's time order (fri_examples_add_user_seq). */
    uint32_t (*history_len)(const fr_model_config *c);
    /* Scores of n <= max batch items as the next item after hist[L] (FR_NO_ITEM-padded on
     * the left; every index checked). */
    void (*score_history)(const fr_model *m, void *ws, const uint32_t *hist, const uint32_t *items, size_t n,
                          float *out);
    /* Optional (NULL: false): whether the loss of config c reads every item row (a full
     * softmax), so a federated client loads them all (fri_model_reads_all_items). Such a
     * loss runs over the first m->n_row_item rows of a bound compact model. */
    bool (*reads_all_items)(const fr_model_config *c);
} fri_model_family;

/* The built-in families (model_mf.c, model_ncf.c, model_base.c). */
extern const fri_model_family fri_model_family_mf;
extern const fri_model_family fri_model_family_ncf;
extern const fri_model_family fri_model_family_base;
extern const fri_model_family fri_model_family_lightgcn;
extern const fri_model_family fri_model_family_hybrid; /* model_hybrid.c: lightfm, fm */
extern const fri_model_family fri_model_family_sasrec; /* model_sasrec.c */
extern const fri_model_family fri_model_family_lightgcn_full; /* model_lightgcn.c: lightgcn-full */

/* ------------------------------------------------------------------ registry */

/* The family of kind, or NULL for a kind nobody registered. */
const fri_model_family *fri_model_family_of(fr_model_kind kind);
/* Whether kind's scores need the model's training graph (fri_model_kind_def.needs_graph). */
bool fri_model_kind_needs_graph(fr_model_kind kind);
/* The kind called name[0, len) (not NUL-terminated), or 0 if none is. */
fr_model_kind fri_model_kind_find(const char *name, size_t len);
/* The registered kind names, ", "-separated, into buf (for messages; truncated to n). */
void fri_model_kind_list(char *buf, size_t n);
/* Registers a family: its kinds get the next free values, the first in *first, the
 * others following. Registering the same table again gives the same values.
 * FR_ERR_INVALID: a kind name taken or malformed, an op missing, no kinds, or more than
 * FRI_MODEL_MAX_KINDS kinds in all. Thread-safe against other registrations; register
 * before creating models of the family (lookups do not lock). */
FR_NODISCARD fr_err fri_model_register(const fri_model_family *f, fr_model_kind *first);

/* ------------------------------------------------------------------ helpers for families */

/* Appends a tensor to m's table: rows x cols floats at the end of the slab, initialised
 * as `init` says. *idx (may be NULL) gets its index. FR_ERR_INVALID if it would overflow
 * the slab, FR_ERR_INTERNAL past FR_MODEL_MAX_TENSORS. */
fr_err fri_model_add_tensor(fr_model *m, const char *name, uint32_t rows, uint32_t cols, fr_tensor_kind kind,
                            fri_init init, int *idx);

/* The values of tensor t, and its gradient in g. */
static inline const float *fri_model_data(const fr_model *m, int t) { return m->params + m->t[t].offset; }
static inline float *fri_grad_of(fr_grad *g, int t) { return g->g + g->t[t].offset; }

/* Carving a workspace arena: each buffer starts on a 64-byte boundary. With base NULL it
 * only counts (fri_model_family.ws_carve). */
typedef struct fri_carver {
    float *base; /* the arena, or NULL when counting */
    size_t at;   /* floats used so far */
} fri_carver;
static inline float *fri_carve(fri_carver *c, size_t n) {
    float *p = c->base ? c->base + c->at : NULL;
    c->at += (n + 15) / 16 * 16;
    return p;
}

/* "mse", "bce", "bpr", "?" */
const char *fri_loss_name(fr_loss l);

#endif
