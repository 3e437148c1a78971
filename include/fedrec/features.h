/* Side features of users and items for the hybrid models (lightfm, fm): each user row and
 * each item row of a data set has a list of (feature, weight) pairs, the features of a
 * side numbered 0.. in order of first appearance (a vocabulary of names such as
 * "occupation=writer", "genre=Comedy", "year=1995"). A user's or item's own id is not in
 * the lists: the models add it themselves (src/model/model_hybrid.c).
 *
 * Sources: the metadata the readers attach to a data set (fr_features_from_meta: u.user /
 * users.dat give age bucket, gender and occupation; u.item / movies.dat / movies.csv give
 * genres and the year in the title), and a generic feature file per side
 * (fr_features_load):
 *     # comment
 *     RAW_ID<TAB>feature[:weight] feature[:weight] ...
 * features separated by tabs or spaces; a weight is what follows the last ':' when it
 * reads as a finite number (so "year:1995" is feature "year" with weight 1995: name such
 * features "year=1995"); without one the weight is 1. What follows the last ':' and starts
 * like a number (a digit, a sign, a '.') must be one ("0.5x", "1,5" are errors), and an
 * empty one is an error; other text there is part of the name ("url:http"). A raw id the
 * data set does not know is skipped (counted, and the first such line remembered:
 * fr_features_skipped_first). Errors name file, line, value and what was expected.
 *
 * Not thread-safe while being built; read-only afterwards (any number of readers). */
#ifndef FEDREC_FEATURES_H
#define FEDREC_FEATURES_H

#include "fedrec/core.h"
#include "fedrec/data.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum fr_feature_side {
    FR_FEAT_USER = 0,
    FR_FEAT_ITEM = 1,
} fr_feature_side;

typedef struct fr_features fr_features;

/* Empty lists for n_users user rows and n_items item rows. FR_ERR_NOMEM. */
FR_API FR_NODISCARD fr_err fr_features_create(fr_features **out, uint32_t n_users, uint32_t n_items);
/* Frees f. Accepts NULL. */
FR_API void fr_features_free(fr_features *f);
/* Appends feature name[0, len) (interned in the side's vocabulary) with weight w to row
 * `row` of side. FR_ERR_RANGE (row), FR_ERR_INVALID (empty name, weight not finite),
 * FR_ERR_NOMEM. */
FR_API FR_NODISCARD fr_err fr_features_add(fr_features *f, fr_feature_side side, uint32_t row, const char *name,
                                           size_t len, float w);
/* Puts name[0, len) into the side's vocabulary without adding it to a row (*id, may be
 * NULL: its id; a name already there keeps its id): a vocabulary read back in id order
 * gives the same ids. FR_ERR_INVALID for an empty name, FR_ERR_NOMEM. */
FR_API FR_NODISCARD fr_err fr_features_declare(fr_features *f, fr_feature_side side, const char *name, size_t len,
                                               uint32_t *id);
/* Adds the features of d's metadata (fr_dataset_meta; nothing when it has none): users
 * "age=<bucket>" (ML-1M's buckets: 1, 18, 25, 35, 45, 50, 56; ML-1M's codes map to
 * themselves), "gender=<g>", "occupation=<o>"; items "genre=<g>" for each genre and
 * "year=<yyyy>" from a title ending in "(yyyy)". Rows past f's sizes are ignored. */
FR_API FR_NODISCARD fr_err fr_features_from_meta(fr_features *f, const fr_dataset *d);
/* Reads a feature file of side (format above), raw ids mapped by ids (the data's user or
 * item map). *skipped (may be NULL) gets the lines whose id ids does not know.
 * FR_ERR_IO, FR_ERR_PARSE ("path:line: ...: expected ..."), FR_ERR_NOMEM. On error f
 * may hold the lines before the bad one. */
FR_API FR_NODISCARD fr_err fr_features_load(fr_features *f, fr_feature_side side, const char *path,
                                            const fr_idmap *ids, uint64_t *skipped);
/* "path:line: item id \"v\"" (or user id) of the first line fr_features_load skipped on
 * side because the data set does not know its id, or NULL when none was. Owned by f. */
FR_API const char *fr_features_skipped_first(const fr_features *f, fr_feature_side side);
/* Rows of side. */
FR_API uint32_t fr_features_rows(const fr_features *f, fr_feature_side side);
/* Size of side's vocabulary. */
FR_API uint32_t fr_features_count(const fr_features *f, fr_feature_side side);
/* Name of feature k of side, or NULL out of range. */
FR_API const char *fr_features_name(const fr_features *f, fr_feature_side side, uint32_t k);
/* The features of a row: returns their count, *ids and *w (may be NULL) point into f. A
 * row out of range has none. */
FR_API size_t fr_features_of(const fr_features *f, fr_feature_side side, uint32_t row, const uint32_t **ids,
                             const float **w);

/* ------------------------------------------------------------------ cold start */

/* A cold-start split: a fraction `frac` (0 < frac < 1) of the catalogue's items, drawn
 * uniformly from the items train has interactions for (stream (seed, 0, 0xC01D,
 * FR_PURPOSE_SPLIT)), is held out entirely: every interaction of a cold item, in train or
 * test, goes to *cold (none is left to train on); *warm_train and *warm_test keep the
 * others (*warm_test may be empty: NULL then). *exclude lists, for every user with a cold
 * interaction, every item that is not cold, so that full-catalogue ranking with
 * `exclude` as the training set ranks each user's cold items among the cold items alone
 * (fr_model_evaluate(m, exclude, cold, NULL, ...): auc_full, precision@K_full). All
 * share the id maps of train. *n_cold gets the items held out. The cold items do not exist
 * for training: *warm_train marks them absent (fr_dataset_absent_items), so no training
 * example draws one as a negative (a cold item's id rows are then never trained, and its
 * features are not pushed down by an item no user chose; fr_model_forget_items clears
 * what init left in its id rows before it is ranked). FR_ERR_RANGE (frac),
 * FR_ERR_EMPTY (no cold item, or nothing left warm), FR_ERR_NOMEM; outputs NULL on error. */
FR_API FR_NODISCARD fr_err fr_dataset_cold_split(const fr_dataset *train, const fr_dataset *test, double frac,
                                                 uint64_t seed, fr_dataset **warm_train, fr_dataset **warm_test,
                                                 fr_dataset **cold, fr_dataset **exclude, uint32_t *n_cold);

/* As fr_dataset_cold_split with the cold items listed in a file: one raw item id per
 * line (blank lines and '#' comments skipped; ids the data does not have are ignored).
 * FR_ERR_IO, FR_ERR_PARSE (path:line: the value, expected), FR_ERR_EMPTY. */
FR_API FR_NODISCARD fr_err fr_dataset_cold_split_file(const fr_dataset *train, const fr_dataset *test,
                                                      const char *path, fr_dataset **warm_train,
                                                      fr_dataset **warm_test, fr_dataset **cold,
                                                      fr_dataset **exclude, uint32_t *n_cold);

/* The items of d that do not exist at training time ([n_items] flags, 1 = absent: a cold
 * split's held-out items on its warm train), or NULL when every item exists (any other
 * dataset). Negative sampling for training (centralized) never draws an absent item.
 * *n_absent (may be NULL) gets their count. */
FR_API const uint8_t *fr_dataset_absent_items(const fr_dataset *d, uint32_t *n_absent);

#ifdef __cplusplus
}
#endif
#endif
