/* fedrec runs: a training run as the library sees it — its configuration and presets,
 * the training loop every front end calls, and what a model file records about it.
 *
 * Sections:
 *   loop        the training loop (src/fl/loop.c): steps (federated rounds or centralized
 *               epochs) with evaluation every N steps through the library's one
 *               evaluation (fr_model_evaluate), checkpoints every N steps, resume, a
 *               callback after each step and stop conditions. What a step is comes from a
 *               driver (fr_loop_driver): the `sim` runtime's rounds, the centralized
 *               trainer's epochs (fr_run in fedrec/runtime.h makes both), and later the
 *               network and MPI runtimes. The loop holds no learning math and never
 *               prints. One loop per driver at a time; the callback runs on the caller's
 *               thread.
 *   run config  everything a run is, and the presets it starts from (src/fl/preset.c).
 *   provenance  what a model file records about the run that made it: the fedrec
 *               version, federated or centralized, the data source, and every field of
 *               the model, federation and training configs (src/fl/provenance.c). */
#ifndef FEDREC_RUN_H
#define FEDREC_RUN_H

#include "fedrec/core.h"
#include "fedrec/data.h"
#include "fedrec/eval.h"
#include "fedrec/fl.h"
#include "fedrec/model.h"
#include "fedrec/model_eval.h"
#include "fedrec/train.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ================================================================== loop */

typedef enum fr_loop_unit {
    FR_LOOP_ROUND = 1, /* a federated round */
    FR_LOOP_EPOCH = 2, /* a centralized epoch */
} fr_loop_unit;

/* What one step did, handed to the callback. */
typedef struct fr_loop_step {
    fr_loop_unit unit;
    uint32_t index;         /* 1-based step number (the round or epoch just done) */
    uint32_t total;         /* the configured number of steps */
    double loss;            /* mean training loss of the step */
    fr_round_stats round;   /* FR_LOOP_ROUND: clients, bytes up and down, ... */
    double seconds;         /* wall time of the step, evaluation excluded */
    double elapsed;         /* wall time since the loop began (this process) */
    bool evaluated;         /* eval holds the metrics of the model after this step */
    fr_eval_result eval;
    double eval_seconds;
    bool checkpointed;      /* a checkpoint was written after this step */
    double epsilon;         /* a private driver's epsilon after this step (the accountant's,
                               at the driver's delta); infinity for DP without noise, NaN
                               for a run that is not private or whose epsilon failed */
} fr_loop_step;

/* Return 0 to go on, nonzero to stop after this step. */
typedef int (*fr_loop_callback)(void *user, const fr_loop_step *step);

/* What the loop drives. Every function gets the driver's ctx. */
typedef struct fr_loop_driver {
    fr_loop_unit unit;
    /* Runs the next step, filling loss (and round for FR_LOOP_ROUND). */
    fr_err (*step)(void *ctx, fr_loop_step *out);
    /* Steps completed so far (after a resume: the checkpoint's). */
    uint32_t (*completed)(void *ctx);
    /* The model to evaluate now (global shared parameters and every user's private rows). */
    fr_model *(*model)(void *ctx);
    /* The pool evaluation may use (NULL: the caller's thread). */
    fr_pool *(*pool)(void *ctx);
    /* Checkpoint and resume (NULL: the driver cannot; asking for them is FR_ERR_UNSUPPORTED). */
    fr_err (*save)(void *ctx, const char *path);
    fr_err (*load)(void *ctx, const char *path);
    /* The privacy spent after `steps` steps in *eps (NaN: the run is not private); NULL:
     * a driver that never is. */
    fr_err (*epsilon)(void *ctx, uint32_t steps, double *eps);
} fr_loop_driver;

typedef struct fr_loop_config {
    uint32_t steps;            /* rounds or epochs in all (a resumed run continues to it) */
    uint32_t eval_every;       /* evaluate every N steps (0: only after the last) (1) */
    fr_eval_opts eval;         /* cut-offs and options of the metrics (fr_eval_opts_default) */
    const char *checkpoint;    /* checkpoint file, or NULL: none */
    uint32_t checkpoint_every; /* also every N steps (0: only at the end) */
    bool resume;               /* continue from `checkpoint` */
    uint32_t patience;         /* stop after this many evaluations without a better main
                                  metric (0: never) */
    double max_seconds;        /* stop once this much wall time has passed (0: never) */
    double target_epsilon;     /* a private run stops before the step whose epsilon would
                                  exceed it (0: no budget) */
} fr_loop_config;

FR_API void fr_loop_config_default(fr_loop_config *c);
/* FR_OK, or FR_ERR_INVALID naming the field (steps 0, resume or checkpoint_every without
 * a checkpoint, a negative or non-finite time limit, bad eval options). */
FR_API FR_NODISCARD fr_err fr_loop_config_check(const fr_loop_config *c);

/* Why a loop stopped. */
typedef enum fr_loop_stop {
    FR_LOOP_DONE = 0,      /* all steps ran */
    FR_LOOP_CALLBACK = 1,  /* the callback asked */
    FR_LOOP_PATIENCE = 2,  /* no better main metric for `patience` evaluations */
    FR_LOOP_TIME = 3,      /* max_seconds passed */
    FR_LOOP_PRIVACY = 4,   /* the next step would spend more than target_epsilon */
} fr_loop_stop;
FR_API const char *fr_loop_stop_name(fr_loop_stop s);

typedef struct fr_loop_summary {
    uint32_t completed;        /* steps completed (in all, a resumed run's included) */
    uint32_t ran;              /* steps this call ran */
    fr_loop_stop stop;
    bool evaluated;            /* last holds the final model's metrics */
    fr_eval_result last;       /* the final model's metrics (evaluated after the last step
                                  if the schedule had not) */
    uint32_t best_step;        /* the step with the best main metric (0: none evaluated) */
    double best;               /* its value */
    fr_eval_result best_eval;  /* every metric of that step (valid when best_step > 0, in
                                  the steps this call ran; a resumed run's earlier best is
                                  not known) */
    double epsilon;            /* the epsilon spent by the completed steps (NaN: not private) */
} fr_loop_summary;

/* The metric a loop compares steps by, and whether lower is better: rmse for rating
 * models, else hr@K (K the second cut-off, 10 by default) on sampled candidates, else on
 * the full catalogue. NaN if r has none. */
FR_API double fr_loop_main_metric(const fr_eval_result *r, bool *lower_is_better, const char **name);

/* Runs the loop: resumes first if asked, then steps until `steps` are done or a stop
 * condition holds (with target_epsilon, a step whose epsilon would exceed it is not
 * run; FR_ERR_INVALID if the driver is not private or its epsilon fails then), evaluating the driver's model on (train, test, negs) — negs may be
 * NULL (full-catalogue ranking for ranking models) — checkpointing as configured and at
 * the end, and calling cb (may be NULL) after each step. summary may be NULL. Errors of
 * the driver and the evaluation; a step that fails stops the loop with its error (the
 * checkpoint then holds the last good step, if any). */
FR_API FR_NODISCARD fr_err fr_loop_run(const fr_loop_config *c, const fr_loop_driver *d, void *ctx,
                                const fr_dataset *train, const fr_dataset *test, const fr_negatives *negs,
                                fr_loop_callback cb, void *user, fr_loop_summary *summary);

/* One JSON Lines record of a step, as --metrics-out writes it (no newline):
 * {"round":R or "epoch":E,"loss":...,<the metrics, fr_eval_result_json>,"clients":...,
 *  "bytes_up":...,"bytes_down":...,"seconds":...} (rounds) or without the federation keys
 * (epochs), plus "eval_seconds" when evaluated, and for a private run "epsilon" (null
 * when infinite or unknown) and "dp_clip" (the round's clip). FR_ERR_RANGE if cap is too small. */
FR_API FR_NODISCARD fr_err fr_loop_step_json(const fr_loop_step *s, char *buf, size_t cap, size_t *len);

/* ================================================================== run config and presets */

/* Everything a training run is: the model, federated or centralized training and its
 * settings, the loop, and how clients are formed. fr_run (fedrec/runtime.h) runs one;
 * a model file records it (its provenance). */
typedef struct fr_run_config {
    bool centralized;             /* train on all data in one process (no federation) */
    fr_model_config model;        /* n_users, n_items: set by fr_run from the data */
    fr_fl_config fl;              /* federated training */
    fr_train_config train;        /* centralized training */
    double lr_decay;              /* centralized: epoch e trains at lr * lr_decay^(e-1) (1) */
    fr_loop_config loop;          /* steps: rounds (federated) or epochs (centralized) */
    fr_partition_kind partition;  /* who holds which users (FR_PARTITION_USER: a client each) */
    uint32_t partition_k;         /* silos (IID, Dirichlet) */
    double partition_alpha;       /* Dirichlet concentration (0.5) */
    int threads;                  /* workers (0: one per core) */
    bool wire;                    /* the simulator encodes every RESULT (true) */
    bool secagg;                  /* rounds under secure aggregation (fr_sim_set_secagg; false) */
    char preset[16];              /* the preset it started from (for provenance) */
    struct fr_sim_attack *attack; /* simulated attack (fedrec/runtime.h), or NULL; federated only */
    struct fr_sim_faults *faults; /* simulated faults, or NULL; federated only */
    double fl_epochs;             /* federated, > 0: the rounds are this many epochs' worth of
                                     clients (fr_run_fl_rounds), set from the data by the preset
                                     and by the CLI; 0: loop.steps as it is (the fedrec preset's
                                     sasrec: 40; an explicit --rounds sets 0) */
} fr_run_config;

/* The presets' confidence alpha on weighted implicit data: a positive of weight r counts
 * 1 + log(1 + r) (Hu, Koren & Volinsky's log scaling with epsilon 1). */
#define FR_RUN_CONFIDENCE_ALPHA 1.0f

/* The graph load where the "fedrec" preset's federated lightgcn item rate (0.05) was
 * tuned: the largest sum over an item's users u of sqrt(d_u) (d_u: the user's training
 * items) on ml-100k-loo's train.rating, 6393.2, rounded up. A round's summed delta of an
 * item row grows with that sum (each local step moves every own item's row by d_u^-1/2 of
 * the user's gradient, and a client takes about d_u steps), so on data with a larger
 * load the rate is scaled by FR_RUN_LIGHTGCN_REF_LOAD / load (fr_run_config_preset). */
#define FR_RUN_LIGHTGCN_REF_LOAD 6400.0

/* The "fedrec" preset's centralized sasrec (post-norm blocks) takes its dropout from the
 * training interactions n: FR_RUN_SASREC_DROP_SMALL up to FR_RUN_SASREC_N_SMALL,
 * FR_RUN_SASREC_DROP_LARGE from FR_RUN_SASREC_N_LARGE, log-linear in n between; without
 * data, the small set's. Chosen on validation cuts of the training data (ml-100k's ~98000
 * interactions best at 0.5, cuts of the ml-1m partial set of ~139000 near 0.35 and of
 * ~246000 and ~482000 at 0.2; docs/ARCHITECTURE.md, SASRec). */
#define FR_RUN_SASREC_N_SMALL 100000.0
#define FR_RUN_SASREC_N_LARGE 200000.0
#define FR_RUN_SASREC_DROP_SMALL 0.5
#define FR_RUN_SASREC_DROP_LARGE 0.2

/* Presets: named starting points, filled per model kind.
 *   "fedrec"    fedrec's tuned settings (the default; docs/ARCHITECTURE.md says how they
 *               were found): NCF models sum item-row deltas, step item rows with SGD 0.8
 *               decayed by 0.96 a round and the rest with Adam 0.006, L2 2e-4, GMF factor
 *               64, 50 rounds (neumf 30); bpr the same item rule with 4 negatives, 40 rounds; mf sums
 *               item rows after 3 local epochs of SGD 0.03 and steps them with FedAdam
 *               (server lr 0.01), factor 64, L2 0.12 (biases 0.01), 100 rounds;
 *               centralized mf and bpr one SGD step per example (batch 1, the fused
 *               loop): mf lr 0.02, L2 0.08 (biases 0.01), init N(0, 0.02), lr x 0.92 an
 *               epoch, 40 epochs; bpr lr 0.05, L2 0.01, 4 negatives, lr x 0.92, 20
 *               epochs; the NCF models the anchors' settings.
 *   "textbook"  FedAvg as the PyTorch anchors run it (shared/anchors): item rows averaged,
 *               one local optimizer (Adam 0.001 for NCF, SGD 0.1 for mf), E = 1, B = 32, the
 *               models' own defaults (GMF factor 8), 100 rounds; centralized as the anchors
 *               (NCF: Adam 0.001, batch 256, 4 negatives, 20 epochs; mf: SGD 0.1, batch 32,
 *               L2 0.1, 150 epochs).
 * train (may be NULL) gives the data-dependent values: the global mean rating of a
 * rating model (model.mu), and for a ranking model trained by gradients on data whose
 * ratings are weights (fr_dataset_weighted), confidence weights with alpha
 * FR_RUN_CONFIDENCE_ALPHA (train.confidence_alpha and fl.confidence_alpha; 0 otherwise),
 * federated lightgcn's item rate scaled down on a graph whose load exceeds
 * FR_RUN_LIGHTGCN_REF_LOAD, and centralized sasrec's dropout from the training
 * interactions (FR_RUN_SASREC_N_SMALL).
 * Kinds without tuned settings get the library's defaults.
 * FR_ERR_INVALID naming an unknown preset (and listing the known ones). */
FR_API FR_NODISCARD fr_err fr_run_config_preset(fr_run_config *c, const char *preset, fr_model_kind kind, bool centralized,
                                         const fr_dataset *train);

/* What the presets read of the training data (fr_run_config_preset_stats): enough for a
 * server that holds no interaction to start where train starts on the same data. */
typedef struct fr_run_data_stats {
    uint64_t users;        /* training users: the clients of a federation of a user each */
    uint64_t interactions; /* training interactions (centralized sasrec's dropout) */
    float mean_rating;     /* fr_run_mean_rating (a rating model's mu) */
    bool weighted;         /* fr_dataset_weighted: positives weighted by their confidence */
    double graph_load;     /* fr_dataset_graph_load (federated lightgcn's item rate); 0: unknown,
                           the rate is not scaled */
} fr_run_data_stats;
/* The stats of a training set, or of the federation file a server reads (which records
 * them: fr_dataset_write_shards): the same numbers for the same data. FR_ERR_NOMEM. */
FR_API FR_NODISCARD fr_err fr_run_data_stats_of(const fr_dataset *train, fr_run_data_stats *out);
FR_API void fr_run_data_stats_of_federation(const fr_federation *fed, fr_run_data_stats *out);
/* fr_run_config_preset from the stats of the data (NULL: none, as train NULL): what
 * fr_run_config_preset does with train is this with fr_run_data_stats_of(train). */
FR_API FR_NODISCARD fr_err fr_run_config_preset_stats(fr_run_config *c, const char *preset, fr_model_kind kind,
                                                      bool centralized, const fr_run_data_stats *stats);
/* The rounds of a federated run of c over the training users of stats (fr_run_fl_rounds
 * over the clients c's partition makes of them: the users one each, or partition_k
 * silos) when its rounds are sized from the data (fl_epochs > 0); else c->loop.steps.
 * After options changed c (the clients a round samples, the partition): train and the
 * server call it on the same stats, so they run the same rounds. */
FR_API uint32_t fr_run_config_rounds(const fr_run_config *c, const fr_run_data_stats *stats);
/* Sets the WARP draws of a hybrid model (c->model.warp; 0: bpr) with the settings of c's
 * preset that go with the loss: under "fedrec", centralized lightfm with bpr trains at lr
 * 0.1 with L2 0.01 on negatives drawn by popularity^0.5 (WARP's preset: lr 0.05, no L2,
 * uniform negatives). Call it after fr_run_config_preset and before the caller's own
 * overrides of lr, L2 and the negative sampler. */
FR_API void fr_run_config_preset_warp(fr_run_config *c, uint32_t warp);
/* FR_OK, or FR_ERR_INVALID naming what is wrong (model, federation, training or loop
 * config; a partition without silos). */
FR_API FR_NODISCARD fr_err fr_run_config_check(const fr_run_config *c);
/* The rounds that make c->fl_epochs epochs' worth of clients in a federation of n_clients:
 * ceil(fl_epochs x n_clients / the clients a round samples (fl.clients_per_round: a
 * count >= 1, a share of n_clients below 1, 0 = all)), at least 1; c->loop.steps when
 * fl_epochs is 0 or n_clients is 0. */
FR_API uint32_t fr_run_fl_rounds(const fr_run_config *c, uint64_t n_clients);
/* The mean of train's ratings, as the presets set a rating model's mu (0 for no data). */
FR_API float fr_run_mean_rating(const fr_dataset *train);
/* The preset names, NULL-terminated. */
FR_API const char *const *fr_run_presets(void);

/* True when every rating of train and test (either may be NULL) is the same value:
 * implicit feedback (a file of interactions, or read with every row a positive). *value
 * (may be NULL) gets that value (0 for no interactions). */
FR_API bool fr_run_data_implicit(const fr_dataset *train, const fr_dataset *test, float *value);
/* The model a run on this data defaults to: mf for explicit ratings, neumf for implicit
 * data (fr_run_data_implicit). */
FR_API fr_model_kind fr_run_default_kind(const fr_dataset *train, const fr_dataset *test);
/* FR_OK, or FR_ERR_INVALID when kind predicts ratings (mf, bias) and the data's ratings
 * are all equal: the message says so and names the ranking models to use instead. */
FR_API FR_NODISCARD fr_err fr_run_check_data(fr_model_kind kind, const fr_dataset *train, const fr_dataset *test);

/* The baseline a model of `kind` is held against, fitted on train (fr_model_fit) and
 * evaluated on test and negs as fr_model_evaluate does (o may be NULL: defaults; pool may
 * be NULL): bias for a rating kind, pop for a ranking kind. Its model has rows for the
 * users and items of train and test, as a centralized run's. *baseline (may be NULL) gets
 * the baseline's kind; r its metrics. Cheap: one pass to fit, one evaluation. Errors of
 * the fit and the evaluation (FR_ERR_EMPTY: no training interaction), FR_ERR_NOMEM. */
FR_API FR_NODISCARD fr_err fr_run_baseline(fr_model_kind kind, const fr_dataset *train, const fr_dataset *test,
                                           const fr_negatives *negs, const fr_eval_opts *o, fr_pool *pool,
                                           fr_model_kind *baseline, fr_eval_result *r);

/* ================================================================== provenance
 * A model file's config_json (fr_model_meta) is one JSON object:
 *   "fedrec_version"   the version that wrote it ("0.1.0")
 *   "mode"             "federated" | "centralized"
 *   "seed"             the run's seed
 *   the data source:   "data", "test", "negatives" (absolute paths, or null), "split"
 *                      ("loo", "ratio:R", "temporal:R"), "split_seed", "eval_negatives",
 *                      "explicit_ratings", "load" {the reader options}, "synthetic",
 *                      "source" (what was loaded, fr_data_describe), "train_fingerprint"
 *                      {"users", "items", "interactions", "crc"} of the training set,
 *                      "train_pairs" (its pairs: fr_pairset_encode text, ~1% false
 *                      positives, at most FR_PAIRSET_MAX_BYTES of bits)
 *   "model"            {every field of fr_model_config; enums by name: "kind": "neumf"}
 *   federated runs:    "fl" {every field of fr_fl_config; optimizers as objects, an item
 *                      optimizer that follows the local one is "kind": "same"},
 *                      "rounds", "partition" ("user", "iid:K", "dirichlet:K[:ALPHA]"),
 *                      with DP also "dp_epsilon" and "dp_delta" (the privacy spent)
 *   centralized runs:  "train" {every field of fr_train_config}, "epochs", "lr_decay"
 * A 64-bit integer above 2^53 is written as a decimal string (JSON numbers are doubles);
 * a float that is not finite as null. Decoding ignores unknown keys, keeps the values the
 * struct held for missing keys (a "kind" other than the struct's first resets that
 * config to the kind's defaults: fr_model_config_default, fr_fl_config_default,
 * fr_optim_config_default), and fails on a value of the wrong type or an unknown name.
 * The files fedrec wrote before this format (flat keys "data", "test", "negatives",
 * "split", "synthetic", "source", "seed", "model": a kind name, "centralized" or "mode",
 * "epochs") decode to their data source, mode, model kind and seed. */

typedef enum fr_run_mode {
    FR_RUN_FEDERATED = 1,   /* clients train locally, a server aggregates (fr_fl_config) */
    FR_RUN_CENTRALIZED = 2, /* all data in one process (fr_train_config) */
} fr_run_mode;

/* A run's provenance. The strings are borrowed when the caller sets them and owned by the
 * struct when fr_provenance_set_data or fr_provenance_decode set them: release with
 * fr_provenance_destroy either way. */
typedef struct fr_provenance {
    const char *version;     /* fedrec version (FR_VERSION_STRING after init) */
    fr_run_mode mode;        /* (federated) */
    uint64_t seed;           /* the run's seed; the model file's meta seed (1) */
    fr_source source;        /* where the data came from: paths absolute after set_data,
                                split, its seed, eval negatives, reader options */
    bool synthetic;          /* the built-in synthetic set */
    const char *describe;    /* what was loaded (fr_data_describe), or NULL */
    bool has_fingerprint;    /* the training data's fingerprint is known (set_data, or a
                                file written since it was recorded) */
    fr_fingerprint fingerprint; /* of the training set the model was trained on */
    const char *train_pairs; /* the training set's (raw user, raw item) pairs as a pair set
                                (fedrec/pairset.h, fr_pairset_encode text), or NULL: a file
                                from before it was recorded */
    fr_model_config model;   /* every field (fr_model_config_default(FR_MODEL_MF) after init) */
    fr_fl_config fl;         /* federated runs (fr_fl_config_default of the model's kind) */
    fr_train_config train;   /* centralized runs (fr_train_config_default) */
    uint64_t rounds;         /* federated: rounds completed */
    const char *partition;   /* federated: who held which users ("user", "iid:K",
                                "dirichlet:K[:ALPHA]"); NULL: "user" */
    uint64_t epochs;         /* centralized: epochs completed */
    double lr_decay;         /* centralized: epoch e trained at lr * lr_decay^(e-1) (1) */
    double dp_epsilon;       /* federated with DP (fl.dp_clip > 0): the epsilon spent by its
                                rounds ("dp_epsilon"; NaN: unknown or infinite, null in JSON) */
    double dp_delta;         /* ... at this delta ("dp_delta"; NaN: unknown) */
    const char *cold_items;  /* --cold-items of the run (a fraction or a file of item ids): the
                                items it held out entirely ("cold_items"); NULL: none */
    void *owned_;            /* private: the strings the struct owns */
} fr_provenance;

/* Defaults as listed above; owns nothing yet. */
FR_API void fr_provenance_init(fr_provenance *p);
/* Frees the strings p owns and re-initialises it. Accepts NULL. */
FR_API void fr_provenance_destroy(fr_provenance *p);
/* "federated", "centralized"; "?" for an unknown value. */
FR_API const char *fr_run_mode_name(fr_run_mode mode);

/* Records the data source of a run: a copy of s whose data, test and negatives paths are
 * made absolute (realpath; a path that does not resolve is kept as given), and from d
 * whether it is the synthetic set, its description, its training set's fingerprint and
 * its pairs (train_pairs; d may be NULL). The strings are
 * owned by p. FR_ERR_NOMEM (p then keeps its previous source). */
FR_API FR_NODISCARD fr_err fr_provenance_set_data(fr_provenance *p, const fr_source *s, const fr_data *d);

/* Records a run: its mode, seed, model, federation and training configs, lr decay,
 * partition spec, and `completed` as its rounds (federated) or epochs (centralized).
 * FR_ERR_NOMEM, FR_ERR_INVALID (a partition kind without a spec). */
FR_API FR_NODISCARD fr_err fr_provenance_set_run(fr_provenance *p, const fr_run_config *c, uint64_t completed);

/* FR_OK if d's training set is the one p's model was trained on (or p records no
 * fingerprint: a file from before it was recorded), else FR_ERR_INVALID: "model/data
 * mismatch: ..." naming both fingerprints. */
FR_API FR_NODISCARD fr_err fr_provenance_check_data(const fr_provenance *p, const fr_data *d);

/* Encodes p as one line of JSON into *json (NUL-terminated; release it with
 * fr_provenance_json_free). Writes "fl", "rounds" and "partition" for a federated run,
 * "train", "epochs" and "lr_decay" for a centralized one. FR_ERR_INVALID (an unknown mode
 * or enum value), FR_ERR_NOMEM. *json is NULL on failure. */
FR_API FR_NODISCARD fr_err fr_provenance_encode(const fr_provenance *p, char **json);
FR_API void fr_provenance_json_free(char *json);

/* Decodes JSON text into p, over the values p holds (fr_provenance_init for the
 * defaults). Errors: FR_ERR_PARSE (not a JSON object; a key of the wrong type, an
 * integer out of its field's range, an unknown name: the message names the key, e.g.
 * "provenance: \"fl.batch\" is a string; expected an integer in [0, 4294967295]"),
 * FR_ERR_NOMEM. On failure p is unchanged. */
FR_API FR_NODISCARD fr_err fr_provenance_decode(fr_provenance *p, const char *json);

/* Saves m to path (fr_model_save) with its provenance: config_json = fr_provenance_encode(p),
 * seed = p->seed, round = p->rounds (federated) or epoch = p->epochs (centralized), and the
 * raw id of every user and item row from d's training maps (-1 for a row beyond them; no
 * ids when d is NULL). Errors of fr_provenance_encode and fr_model_save. */
FR_API FR_NODISCARD fr_err fr_provenance_save_model(const fr_model *m, const char *path, const fr_provenance *p,
                                             const fr_data *d);

#ifdef __cplusplus
}
#endif
#endif
