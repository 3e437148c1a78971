/* Internal view of datasets and id maps, shared by the data layer and by the layers
 * above it that walk the CSR arrays in hot loops (training, evaluation). */
#ifndef FEDREC_SRC_DATA_DATASET_H
#define FEDREC_SRC_DATA_DATASET_H

#include <stdatomic.h>

#include "core/core.h"
#include "fedrec/data.h"

struct fr_idmap {
    atomic_int refs;
    uint32_t n;
    int64_t *raw;      /* [n] dense -> raw, ascending (a map read from an NCF id-map file
                          keeps the file's order) */
    uint32_t cap;      /* hash table size, power of two (0: no hash table) */
    int64_t *keys;     /* [cap] raw ids, -1 = empty */
    uint32_t *vals;    /* [cap] dense ids */
    uint32_t *direct;  /* [span] raw -> dense (UINT32_MAX: absent) when ids are dense-ish */
    uint32_t span;     /* entries of direct; 0 with neither table: raw == dense identity */
    bool indexed;      /* read from an NCF id-map file (users.map, items.map): the data's
                          NCF files name these ids by dense index, not by raw id */
    char **str;        /* [n] dense -> raw string for string ids, else NULL (raw[] then
                          holds the string's interning number) */
    uint32_t scap;     /* string hash table size, power of two */
    uint32_t *sslot;   /* [scap] dense ids by string hash, UINT32_MAX = empty */
};

/* String ids interned to integers in order of first appearance: number k is the k-th
 * distinct string met (k < 2^31). Shared by the files of one load. */
typedef struct fri_strtab {
    char **s;          /* [n] the strings by number */
    uint32_t n, cap;
    uint32_t hcap;     /* hash slots, power of two */
    uint32_t *slot;    /* [hcap] numbers, UINT32_MAX = empty */
} fri_strtab;

/* Number of s[0, len) in t, interning it when new. FR_ERR_NOMEM, FR_ERR_RANGE (2^31). */
FR_NODISCARD fr_err fri_strtab_intern(fri_strtab *t, const char *s, size_t len, uint32_t *out);
void fri_strtab_free(fri_strtab *t);
/* Gives m the strings of its raw numbers (m->raw[d] indexes t). FR_ERR_NOMEM. */
FR_NODISCARD fr_err fri_idmap_set_strs(fr_idmap *m, const fri_strtab *t);
/* Gives m (whose raw[d] == d, n entries) the strings strs[0, n) (taken over, also on
 * failure). A repeated string is FR_ERR_PARSE with its second dense id in *dup. */
FR_NODISCARD fr_err fri_idmap_take_strs(fr_idmap *m, char **strs, uint32_t *dup);

struct fr_meta {
    uint32_t n_items, n_users;
    char **title;      /* [n_items] or NULL entries */
    char **genres;     /* [n_items] "A|B" or NULL entries */
    uint32_t n_attrs;
    char **attr_names; /* [n_attrs] */
    char ***attrs;     /* [n_attrs][n_users] */
    uint64_t skipped;  /* malformed lines skipped */
    char *first_bad;   /* the first one's message, or NULL */
};

struct fr_dataset {
    uint32_t n_users, n_items;
    uint64_t n;
    uint64_t *ptr;       /* [n_users+1] CSR offsets */
    uint32_t *item;      /* [n] per user ordered by (time, item) */
    float *rating;       /* [n] */
    int64_t *time;       /* [n] */
    uint32_t *sorted;    /* [n] per user: the same items ascending by id (for lookups) */
    bool has_time;
    bool implicit;       /* read as implicit feedback: ratings are 1 or weights */
    bool weights;        /* implicit, and the ratings are the weight column's values */
    uint64_t duplicates; /* repeated (user, item) pairs dropped by the build */
    uint64_t skipped;    /* bad lines of its file skipped (skip_bad_lines) when it was loaded */
    uint64_t first_bad;  /* the first one's line number (0: none) */
    fr_idmap *users, *items;
    uint8_t *absent;     /* [n_items] or NULL: 1 for an item that does not exist at training
                          * time (a cold split's held-out items): never a sampled negative */
    uint32_t n_absent;   /* items marked in absent */
    fr_meta *meta;
    char *source;        /* the ratings file it came from, absolute (NCF files with id maps:
                            the file the maps name); NULL when unknown (fr_dataset_source) */
};

struct fr_negatives {
    uint32_t n_users;
    uint64_t *ptr;     /* [n_users+1] offsets into items */
    uint32_t *items;   /* dense item ids */
    uint32_t n_short;  /* sampled: test users given fewer than asked (0 when read) */
    uint32_t fewest;   /* sampled: the fewest any test user got (0 when read) */
};

/* Whether x is in the ascending array a[0..n) (binary search). */
static inline bool fri_sorted_has(const uint32_t *a, size_t n, uint32_t x) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (a[mid] < x) lo = mid + 1; else hi = mid;
    }
    return lo < n && a[lo] == x;
}

/* User u's items in ascending id order (empty for an unknown user); returns the count. */
static inline size_t fri_dataset_user_sorted(const fr_dataset *d, uint32_t u, const uint32_t **s) {
    if (u >= d->n_users) { *s = NULL; return 0; }
    *s = d->sorted + d->ptr[u];
    return (size_t)(d->ptr[u + 1] - d->ptr[u]);
}

/* Rows accumulated by a reader before the dataset is built. Raw ids in [0, 2^31). */
typedef struct fri_rows {
    size_t n, cap;
    uint32_t *user, *item; /* raw ids while reading, dense ids after fri_rows_map */
    float *rating;
    int64_t *time;
    bool has_time;
    bool implicit;         /* the rows are implicit positives (fr_dataset_implicit) */
    bool weights;          /* and their ratings are weights (fr_dataset_weighted) */
    fri_strtab *us, *is;   /* where string ids are interned, owned by the loader (NULL:
                              integer ids only) */
    bool strings;          /* ids are strings, interned into us and is */
} fri_rows;

FR_NODISCARD fr_err fri_rows_push(fri_rows *r, uint32_t user, uint32_t item, float rating, int64_t time);
void fri_rows_free(fri_rows *r);

/* Id map over the union of the raw ids in lists[0..k) (each of n[j] values). */
FR_NODISCARD fr_err fri_idmap_build(fr_idmap **out, const uint32_t *const *lists, const size_t *n, int k);
/* Identity map over 0..n-1 (NCF files whose ids are already dense). */
FR_NODISCARD fr_err fri_idmap_identity(fr_idmap **out, uint32_t n);
/* Map whose dense id d has raw id raw[d] (any order; the array is taken over, also on
 * failure). Raw ids must be distinct and in [0, 2^31): a repeat is FR_ERR_PARSE with the
 * dense id of its second occurrence in *dup (no message: the caller names file and
 * line); FR_ERR_NOMEM. */
FR_NODISCARD fr_err fri_idmap_from_raw(fr_idmap **out, int64_t *raw, uint32_t n, uint32_t *dup);
/* Sets d->source to a copy of path made absolute (realpath; as given when that fails), or
 * to NULL for NULL. FR_ERR_NOMEM leaves it NULL. */
FR_NODISCARD fr_err fri_dataset_set_source(fr_dataset *d, const char *path, bool absolute);

/* Consumes rows (arrays are taken over or freed, rows left empty): maps raw ids through
 * the maps (every raw id must be in them), sorts into CSR and builds the dataset,
 * retaining both maps. A repeated (user, item) pair keeps one row: the latest by time,
 * at equal times the last in the rows' order; the others are counted in d->duplicates.
 * The maps stay as given (a pair's user and item keep a row, so no id is left unused). */
FR_NODISCARD fr_err fri_dataset_build(fr_dataset **out, fri_rows *rows, fr_idmap *users, fr_idmap *items);
/* Builds of at least `rows` rows keep the permutation's destinations in a separate 64-bit
 * array (0: the default, above 2^32 rows, where they no longer fit the user array). For
 * tests; not thread-safe against concurrent builds. */
void fri_dataset_set_wide(size_t rows);
void fri_meta_free(fr_meta *m);

/* Builds from rows with maps made from the rows' own ids. */
FR_NODISCARD fr_err fri_dataset_build_own(fr_dataset **out, fri_rows *rows);

#endif
