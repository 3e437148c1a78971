/* fedrec pair sets: a compact, approximate record of which (user, item) pairs a dataset
 * holds, by their raw ids (a Bloom filter). A model file keeps one of its training set
 * (fedrec/run.h, provenance "train_pairs") so an evaluation can tell when its test
 * interactions were trained on: a query never misses a pair that was added and wrongly
 * finds one that was not with a small probability (about 1% at the default size; more
 * when the size cap binds on a large training set; fr_pairset_fp_rate says how much).
 * Immutable once built; thread-safe to query. */
#ifndef FEDREC_PAIRSET_H
#define FEDREC_PAIRSET_H

#include "fedrec/core.h"
#include "fedrec/data.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct fr_pairset fr_pairset;

/* The largest filter fr_pairset_build makes by default (bytes of bits): 384 KiB, ~512 KiB
 * of text; about 1% false positives up to ~320,000 pairs. */
#define FR_PAIRSET_MAX_BYTES (384u * 1024u)
FR_API size_t fr_pairset_max_bytes(void);

/* A filter of every (raw user id, raw item id) pair of d, sized for ~1% false positives
 * and at most max_bytes of bits (0: FR_PAIRSET_MAX_BYTES). FR_ERR_NOMEM. */
FR_API FR_NODISCARD fr_err fr_pairset_build(fr_pairset **out, const fr_dataset *d, size_t max_bytes);
FR_API void fr_pairset_free(fr_pairset *s);
/* Whether the pair may be in the set (false: it certainly is not). */
FR_API bool fr_pairset_has(const fr_pairset *s, int64_t user, int64_t item);
/* The pairs added, and the probability that a pair not added is found, from how full
 * the filter is. */
FR_API uint64_t fr_pairset_count(const fr_pairset *s);
FR_API double fr_pairset_fp_rate(const fr_pairset *s);

/* The text form, for JSON: "bloom1:K:BITS:COUNT:" and the bits in base64 (the hash of a
 * pair is part of the form: stable across builds and platforms). *text is released with
 * fr_pairset_text_free. FR_ERR_NOMEM. */
FR_API FR_NODISCARD fr_err fr_pairset_encode(const fr_pairset *s, char **text);
FR_API void fr_pairset_text_free(char *text);
/* Reads the text form back. FR_ERR_PARSE naming what is wrong, FR_ERR_NOMEM. */
FR_API FR_NODISCARD fr_err fr_pairset_decode(fr_pairset **out, const char *text);

/* How many of test's interactions s holds, by raw ids. */
typedef struct fr_pairset_overlap {
    uint64_t found;   /* test pairs found in s */
    uint64_t total;   /* test pairs */
    double share;     /* found / total (0 when there are none) */
    double fp_rate;   /* s's false-positive rate: the share a disjoint test set shows */
    bool clear;       /* share is clearly above fp_rate (by 5 points and by 4 standard
                         deviations of a disjoint set's share): the test set overlaps */
} fr_pairset_overlap;
FR_API void fr_pairset_overlap_of(const fr_pairset *s, const fr_dataset *test, fr_pairset_overlap *out);

#ifdef __cplusplus
}
#endif
#endif
