/* fedrec runs: a training run as the library sees it, and what it records.
 *
 * Sections:
 *   provenance  what a model file records about the run that made it: the fedrec
 *               version, federated or centralized, the data source, and every field of
 *               the model, federation and training configs (src/fl/provenance.c).
 * (The library training loop will join this header in its own section.) */
#ifndef FEDREC_RUN_H
#define FEDREC_RUN_H

#include "fedrec/core.h"
#include "fedrec/data.h"
#include "fedrec/fl.h"
#include "fedrec/model.h"
#include "fedrec/train.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ================================================================== provenance
 * A model file's config_json (fr_model_meta) is one JSON object:
 *   "fedrec_version"   the version that wrote it ("0.1.0")
 *   "mode"             "federated" | "centralized"
 *   "seed"             the run's seed
 *   the data source:   "data", "test", "negatives" (absolute paths, or null), "split"
 *                      ("loo", "ratio:R", "temporal:R"), "split_seed", "eval_negatives",
 *                      "explicit_ratings", "load" {the reader options}, "synthetic",
 *                      "source" (what was loaded, fr_data_describe)
 *   "model"            {every field of fr_model_config; enums by name: "kind": "neumf"}
 *   federated runs:    "fl" {every field of fr_fl_config; optimizers as objects, an item
 *                      optimizer that follows the local one is "kind": "same"},
 *                      "rounds", "partition" ("user", "iid:K", "dirichlet:K[:ALPHA]")
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
    fr_model_config model;   /* every field (fr_model_config_default(FR_MODEL_MF) after init) */
    fr_fl_config fl;         /* federated runs (fr_fl_config_default of the model's kind) */
    fr_train_config train;   /* centralized runs (fr_train_config_default) */
    uint64_t rounds;         /* federated: rounds completed */
    const char *partition;   /* federated: who held which users ("user", "iid:K",
                                "dirichlet:K[:ALPHA]"); NULL: "user" */
    uint64_t epochs;         /* centralized: epochs completed */
    double lr_decay;         /* centralized: epoch e trained at lr * lr_decay^(e-1) (1) */
    void *owned_;            /* private: the strings the struct owns */
} fr_provenance;

/* Defaults as listed above; owns nothing yet. */
void fr_provenance_init(fr_provenance *p);
/* Frees the strings p owns and re-initialises it. Accepts NULL. */
void fr_provenance_destroy(fr_provenance *p);
/* "federated", "centralized"; "?" for an unknown value. */
const char *fr_run_mode_name(fr_run_mode mode);

/* Records the data source of a run: a copy of s whose data, test and negatives paths are
 * made absolute (realpath; a path that does not resolve is kept as given), and from d
 * whether it is the synthetic set and its description (d may be NULL). The strings are
 * owned by p. FR_ERR_NOMEM (p then keeps its previous source). */
FR_NODISCARD fr_err fr_provenance_set_data(fr_provenance *p, const fr_source *s, const fr_data *d);

/* Encodes p as one line of JSON into *json (NUL-terminated; release it with
 * fr_provenance_json_free). Writes "fl", "rounds" and "partition" for a federated run,
 * "train", "epochs" and "lr_decay" for a centralized one. FR_ERR_INVALID (an unknown mode
 * or enum value), FR_ERR_NOMEM. *json is NULL on failure. */
FR_NODISCARD fr_err fr_provenance_encode(const fr_provenance *p, char **json);
void fr_provenance_json_free(char *json);

/* Decodes JSON text into p, over the values p holds (fr_provenance_init for the
 * defaults). Errors: FR_ERR_PARSE (not a JSON object; a key of the wrong type, an
 * integer out of its field's range, an unknown name: the message names the key, e.g.
 * "provenance: \"fl.batch\" is a string; expected an integer in [0, 4294967295]"),
 * FR_ERR_NOMEM. On failure p is unchanged. */
FR_NODISCARD fr_err fr_provenance_decode(fr_provenance *p, const char *json);

/* Saves m to path (fr_model_save) with its provenance: config_json = fr_provenance_encode(p),
 * seed = p->seed, round = p->rounds (federated) or epoch = p->epochs (centralized), and the
 * raw id of every user and item row from d's training maps (-1 for a row beyond them; no
 * ids when d is NULL). Errors of fr_provenance_encode and fr_model_save. */
FR_NODISCARD fr_err fr_provenance_save_model(const fr_model *m, const char *path, const fr_provenance *p,
                                             const fr_data *d);

#ifdef __cplusplus
}
#endif
#endif
