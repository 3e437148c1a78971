/* fedrec data: ratings files, id maps, the per-user CSR dataset, splits, negatives,
 * partitions into clients, and a synthetic generator.
 *
 * A dataset holds interactions (user, item, rating, timestamp) in compressed rows by
 * user, each user's items ordered by (timestamp, item), at most one interaction per
 * (user, item) pair (a repeated pair keeps its latest; see fr_dataset_load). Users and
 * items have dense ids 0..n-1; the raw ids of the source file are kept in id maps
 * (fr_idmap), shared by all datasets made from one load (train and test of a split use
 * one id space).
 * Datasets are immutable once built, so they may be read from many threads at once.
 *
 * Text files: every reader here (ratings, NCF .negative, metadata) skips a UTF-8
 * byte-order mark (EF BB BF) at the start of a file; one anywhere else is binary data.
 * Error messages name the file, line, value and what was expected; a path longer than 200
 * bytes appears as "..." and its last 200 bytes, so the reason always fits. */
#ifndef FEDREC_DATA_H
#define FEDREC_DATA_H

#include "fedrec/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ id maps */

/* Raw id <-> dense id. Raw ids are integers in [0, 2^31). Dense ids are assigned in
 * increasing raw-id order, so a file whose ids are 1..n maps them to 0..n-1; NCF files
 * (whose ids are dense indices already) keep their indices, and when id-map files lie
 * beside them (users.map, items.map: see fr_dataset_write_ncf) the raw ids are the ones
 * those give, in the maps' order. Reference counted: fr_idmap_retain / fr_idmap_release.
 * Read-only once built. */
typedef struct fr_idmap fr_idmap;
FR_API uint32_t fr_idmap_size(const fr_idmap *m);
/* Raw id of dense id d (d < size). */
FR_API int64_t fr_idmap_raw(const fr_idmap *m, uint32_t dense);
/* Dense id of a raw id, or -1 if the raw id is unknown. */
FR_API int64_t fr_idmap_find(const fr_idmap *m, int64_t raw);
FR_API fr_idmap *fr_idmap_retain(fr_idmap *m);
FR_API void fr_idmap_release(fr_idmap *m);
/* String ids (see fr_load_opts.string_ids): a map made from string ids keeps the strings.
 * Its raw ids (fr_idmap_raw) are then the strings' interning numbers: the k-th distinct
 * string met in the file (the training file, then the test file) is number k, so dense
 * ids follow the order of first appearance. */
/* Whether m holds string ids. */
FR_API bool fr_idmap_is_str(const fr_idmap *m);
/* The string of dense id d, or NULL for an integer map (or d >= size). Owned by m. */
FR_API const char *fr_idmap_raw_str(const fr_idmap *m, uint32_t dense);
/* Dense id of a raw id given as text, or -1 if unknown: the exact string in a string
 * map; an integer in [0, 2^31) in an integer map. */
FR_API int64_t fr_idmap_find_str(const fr_idmap *m, const char *s);
/* Writes the raw id of dense id d as users see it (the string, or the integer) into buf,
 * snprintf-style: returns the length it needs. */
FR_API int fr_idmap_format(const fr_idmap *m, uint32_t dense, char *buf, size_t cap);

/* ------------------------------------------------------------------ metadata */

/* Optional side information: item titles and genres, user attributes. */
typedef struct fr_meta fr_meta;
/* Title of a dense item id, or NULL if unknown. */
FR_API const char *fr_meta_item_title(const fr_meta *m, uint32_t item);
/* Genres of a dense item id as "Action|Comedy", or NULL. */
FR_API const char *fr_meta_item_genres(const fr_meta *m, uint32_t item);
/* A user attribute by name ("age", "gender", "occupation", "zip"), or NULL. */
FR_API const char *fr_meta_user_attr(const fr_meta *m, uint32_t user, const char *name);
/* Malformed metadata lines that were skipped (fr_dataset_load_meta: a bad line costs that
 * line only), and in *first (may be NULL) the first one's message naming file, line,
 * value and what was expected, or NULL when none; the string belongs to m. */
FR_API uint64_t fr_meta_skipped(const fr_meta *m, const char **first);

/* ------------------------------------------------------------------ datasets */

typedef struct fr_dataset fr_dataset;

typedef enum fr_format {
    FR_FORMAT_AUTO = 0,  /* detect from the content (see "Reading a ratings file" below) */
    FR_FORMAT_ML100K,    /* u.data: user \t item \t rating \t timestamp */
    FR_FORMAT_ML1M,      /* ratings.dat: user::item::rating::timestamp */
    FR_FORMAT_CSV,       /* ratings.csv with header userId,movieId,rating,timestamp */
    FR_FORMAT_NCF,       /* NCF .rating: user \t item \t rating \t timestamp, ids already dense */
    FR_FORMAT_DELIMITED, /* generic delimited text with named or numbered columns, strictly as
                            the options say (no rating column unless col_rating names one) */
} fr_format;

/* Reading a ratings file (fr_dataset_load and everything that loads ratings).
 *
 * FR_FORMAT_AUTO looks at the first non-blank line. With none of delimiter, col_*,
 * has_header, no_header set, a headerless line picks a fixed format: "::" ML1M; a tab and 4
 * fields ML100K; ',' and 4 fields CSV; a name ending in ".rating" NCF; else delimited by
 * tab, ',', ';' or '|' with columns user, item, [rating, [timestamp]] by position. A first
 * line whose first field is not a number is a header (has_header/no_header decide when
 * set), and its columns are placed by name, case-insensitively, ignoring '_', '-', ' ' and
 * '.': user (user, userId, user_id, uid, customer, customer_id, client, member, visitor,
 * reviewer, account, listener, ...), item (item, itemId, movie, movieId, artist, artistID,
 * track, product, song, business, book, isbn, asin, game, recipe, ...), rating (rating,
 * score, stars, value, grade, ...), a count (weight, count, plays, playcount, listens,
 * clicks, views, quantity, frequency, ...) and timestamp (timestamp, time, date, datetime,
 * ts, ...); where no field has a rating or timestamp name, a name ending in one (rating,
 * stars, score; timestamp, datetime, date, time: Amazon's star_rating and review_date)
 * places that column. A header that leaves the user or the item column unplaced is FR_ERR_PARSE
 * naming that column, listing the header's fields and saying which option names it
 * ("--item-col artistID": col_item). The MovieLens header userId,movieId,rating,timestamp
 * stays CSV. Giving any of delimiter, col_*, has_header or no_header with AUTO reads the
 * file as delimited text: the delimiter given (else detected), the columns given (a name of
 * the header or a position "1".."n"), and the others placed by header name or, without a
 * header, by position (user 1, item 2, rating 3, timestamp 4 when the line has them).
 *
 * Ratings, counts and implicit data. A rating column is explicit: each value must lie in
 * [rating_min, rating_max] (default [0, 10]; half stars are fine) and a value out of range
 * that looks like a count (a whole number above the range) is refused with advice to read
 * it as implicit. Implicit data (every row a positive interaction) comes three ways:
 *   - implicit: the rating column's value is not checked and each row gets rating 1 (the
 *     column is ignored, except for implicit_threshold);
 *   - implicit_weight (implies implicit): the column's value is kept in the rating field as
 *     a confidence weight, which must be a finite number >= 0;
 *   - with neither set, a rating column found in a header under a count name (weight,
 *     count, plays ...) is read as implicit_weight. A column named by col_rating is taken
 *     as the user names it: a rating, unless implicit is set.
 * A file without a rating column is implicit with rating 1. fr_dataset_implicit says which
 * datasets are implicit, fr_dataset_weighted which hold weights; fr_load_stats.implicit/
 * .weights what a load did. The ranking models (bpr, gmf, mlp, neumf) train on every row
 * as a positive; with weights, each positive's loss is scaled by its confidence
 * 1 + alpha log(1 + weight) (fr_train_config.confidence_alpha, fr_fl_config's; alpha 0
 * ignores them). A rating model (mf) would fit the weights as ratings, which is why
 * implicit data is marked.
 *
 * Fields. Spaces around a field are dropped; a field may be quoted ("...", with "" for a
 * quote inside; a delimiter inside quotes is data; a quoted field cannot span lines). Line
 * ends may be "\n" or "\r\n"; a UTF-8 byte-order mark at the start is skipped. Ids are
 * integers in [0, 2^31), or strings (see string_ids). A timestamp is an integer (seconds) or an ISO-8601 date
 * "YYYY-MM-DD", optionally with a time "THH:MM[:SS[.fff]]" (or a space for 'T') and a "Z",
 * read as UTC seconds since 1970. */
typedef struct fr_load_opts {
    fr_format format;      /* FR_FORMAT_AUTO by default */
    bool skip_bad_lines;   /* skip and count malformed lines instead of failing */
    /* The delimiter: one character or "::" (NULL or "" = detect among tab , ; | and "::").
     * Columns: a name in the header line or a position "1".."n". FR_FORMAT_DELIMITED: user
     * and item default to "1" and "2"; NULL rating means implicit data (rating 1); NULL
     * timestamp means none (0). FR_FORMAT_AUTO: see above. */
    const char *delimiter;
    bool has_header;       /* the first line is a header */
    bool no_header;        /* FR_FORMAT_AUTO: the first line is data, even if not numeric */
    const char *col_user, *col_item, *col_rating, *col_time;
    double rating_min, rating_max; /* allowed range of explicit ratings; default [0, 10] */
    /* Implicit view: keep only rows with rating >= threshold (NaN = keep all), and set
     * every kept rating to 1 (or to the value, with implicit_weight). */
    double implicit_threshold;
    bool implicit;
    bool implicit_weight;  /* implicit, with the rating column kept as a weight (>= 0) */
    uint32_t ncf_items;    /* NCF files without id maps: item ids run to at least this (0:
                              the largest found): a client's shard of a federation, whose
                              catalogue is larger than the items it touched */
    /* Ids are strings: every user and item field is interned, as its text (spaces around
     * dropped, quotes removed), in order of first appearance; "42" and "042" are two ids.
     * Also switched on by itself when the first data line of a (training) file has a user
     * or item field that is not an integer in [0, 2^31): a first line with such ids and a
     * numeric third field, none of whose fields is a known column name, is data, not a
     * header. A file whose first data line has integer ids is read with integer ids, and a
     * later string id there is an error (use string_ids). Not for NCF files. */
    bool string_ids;
} fr_load_opts;

FR_API void fr_load_opts_default(fr_load_opts *o);
FR_API FR_NODISCARD fr_err fr_load_opts_check(const fr_load_opts *o);

/* Load statistics, filled by the loaders when non-NULL. */
#define FR_LOAD_COLUMNS_MAX 256
typedef struct fr_load_stats {
    fr_format format;       /* the format actually used */
    uint64_t lines;         /* data lines read */
    uint64_t skipped;       /* bad lines skipped (skip_bad_lines) */
    uint64_t first_bad_line;/* line number of the first skipped line, 0 if none */
    uint64_t bytes;         /* bytes read */
    uint64_t duplicates;    /* repeated (user, item) pairs dropped (see fr_dataset_load) */
    bool implicit;          /* rows were read as implicit positives (see fr_load_opts) */
    bool weights;           /* and their rating field holds the weight column's values */
    /* a delimited file with a header: which of its fields were read as what, e.g.
     * "user customer_id, item product_id, rating star_rating, time review_date; not read:
     * marketplace, review_id" (shortened with "..." past its size); "" without a header */
    char columns[FR_LOAD_COLUMNS_MAX];
} fr_load_stats;

/* Loads one ratings file. A (user, item) pair that appears more than once keeps one
 * interaction, the latest by timestamp (at equal timestamps, or without timestamps, the
 * last in the file), and stats->duplicates counts the rows dropped; every dataset is built
 * this way (fr_dataset_load_pair, fr_dataset_from_arrays: "in the file" is "in the
 * arrays"), so a dataset never holds a pair twice. Errors name the file and line:
 * FR_ERR_IO (cannot open, is a directory), FR_ERR_PARSE (wrong field count, non-numeric,
 * id >= 2^31, truncated last line, binary data, an NCF .negative file, a header that
 * leaves the user or item column unplaced, a column name the header lacks), FR_ERR_RANGE
 * (rating outside [rating_min, rating_max], with advice when it looks like a count; a
 * negative weight), FR_ERR_EMPTY (no interaction), FR_ERR_NOMEM. How the file is read:
 * "Reading a ratings file" above.
 * An NCF file (P.train.rating, train.rating, X.rating) with id-map files beside it
 * (P.users.map and P.items.map; users.map and items.map; X.users.map and X.items.map:
 * fr_dataset_write_ncf) takes its raw ids from them; one map without the other, a
 * malformed map (file and line) or an index a map lacks is an error. */
FR_API FR_NODISCARD fr_err fr_dataset_load(fr_dataset **out, const char *path, const fr_load_opts *o,
                                    fr_load_stats *stats);

/* The ratings file d was read from, as an absolute path (fr_dataset_load, the training
 * or test file of fr_dataset_load_pair; a split inherits its source's). For NCF files with
 * id maps it is the data the maps record ("# source:"), the file that was split (maps
 * that name none: the .rating file). NULL when unknown (generated data,
 * fr_dataset_from_arrays). The string belongs to d. */
FR_API const char *fr_dataset_source(const fr_dataset *d);

/* Loads a training file and a test file into one id space (ml-100k's u1.base/u1.test,
 * NCF's train.rating/test.rating). Items or users seen only in the test file get ids
 * too, so every test interaction can be scored. Repeated pairs are dropped within each
 * file as fr_dataset_load does (fr_dataset_info_compute counts them); a pair in both
 * files stays in both. Both datasets are implicit (fr_dataset_implicit) when either file
 * was read as implicit feedback. */
FR_API FR_NODISCARD fr_err fr_dataset_load_pair(fr_dataset **train, fr_dataset **test, const char *train_path,
                                         const char *test_path, const fr_load_opts *o);

/* Builds a dataset from arrays of raw ids (copied). ratings may be NULL (all 1),
 * times may be NULL (all 0). A repeated (user, item) pair keeps its latest row (equal
 * times: the last in the arrays), as fr_dataset_load. */
FR_API FR_NODISCARD fr_err fr_dataset_from_arrays(fr_dataset **out, size_t n, const int64_t *users,
                                           const int64_t *items, const float *ratings,
                                           const int64_t *times);
/* Gives a dataset from fr_dataset_from_arrays the strings of its ids, as a file read with
 * string ids has them (fr_load_opts.string_ids): the raw ids of that side are then the
 * strings' interning numbers, raw id r the string strs[r] (copied), so the dataset, its
 * splits and its fingerprint are those of the same rows read from a file whose k-th
 * distinct string of the column is strs[k] (the Python package numbers a data frame's
 * string ids in order of first appearance, as the readers do). users or items NULL leaves
 * that side as it is. FR_ERR_STATE (the side has strings already, or its map is shared),
 * FR_ERR_RANGE (a raw id r >= n), FR_ERR_INVALID (NULL or a repeated string, named),
 * FR_ERR_NOMEM. */
FR_API FR_NODISCARD fr_err fr_dataset_set_id_strings(fr_dataset *d, const char *const *users, uint32_t n_users,
                                              const char *const *items, uint32_t n_items);

/* The interactions of users[0, n_users) of d alone, in d's id space: the same number of
 * users and items, the same ids (its id maps are d's), every other user without an
 * interaction; each user's interactions in d's order. For a client process holding its
 * own users' data in the federation's ids. FR_ERR_RANGE (a user out of range),
 * FR_ERR_INVALID (a user twice), FR_ERR_NOMEM. */
FR_API FR_NODISCARD fr_err fr_dataset_select_users(fr_dataset **out, const fr_dataset *d, const uint32_t *users,
                                                   size_t n_users);
FR_API void fr_dataset_free(fr_dataset *d);

FR_API uint32_t fr_dataset_n_users(const fr_dataset *d);
FR_API uint32_t fr_dataset_n_items(const fr_dataset *d);
FR_API uint64_t fr_dataset_n_interactions(const fr_dataset *d);
/* Bad lines of d's file that fr_dataset_load or fr_dataset_load_pair skipped
 * (fr_load_opts.skip_bad_lines), and the first one's line number in *first_line (0: none;
 * may be NULL). 0 for a dataset that was not read from a file (a split, arrays). */
FR_API uint64_t fr_dataset_skipped(const fr_dataset *d, uint64_t *first_line);
FR_API bool fr_dataset_has_time(const fr_dataset *d);
/* Whether d holds implicit feedback read as such (fr_load_opts: implicit, implicit_weight,
 * a count column, or no rating column): every row is a positive and its rating is 1 or a
 * weight, not a rating. Kept by splits. false for fr_dataset_from_arrays and the generator. */
FR_API bool fr_dataset_implicit(const fr_dataset *d);
/* Whether d's ratings are confidence weights: implicit data whose weight column was kept
 * (fr_load_opts.implicit_weight, or a column under a count name; fr_load_stats.weights).
 * Only then do the trainers weight each positive by its confidence
 * (fr_train_config.confidence_alpha, fr_fl_config.confidence_alpha). Kept by splits;
 * fr_dataset_load_pair marks both when either file had weights. false for
 * fr_dataset_from_arrays and the generator. */
FR_API bool fr_dataset_weighted(const fr_dataset *d);
/* The graph load of d's interactions: the largest sum, over an item's users u, of
 * sqrt(d_u) (d_u: u's interactions in d); 0 for no interaction. What federated lightgcn's
 * item rate is scaled by (FR_RUN_LIGHTGCN_REF_LOAD, fedrec/run.h), and what
 * fr_dataset_write_shards records for a server (fr_federation.graph_load). Summed in item
 * order per user, users in order: the same value everywhere. FR_ERR_NOMEM. */
FR_API FR_NODISCARD fr_err fr_dataset_graph_load(const fr_dataset *d, double *out);
/* Whether d's timestamps order its interactions: it has them and they are not all equal
 * (an NCF file written from data without timestamps has 0 in every row). Without such an
 * order leave-one-out holds out a random interaction and the temporal splits refuse d
 * (fr_dataset_split). O(interactions). */
FR_API bool fr_dataset_has_time_order(const fr_dataset *d);
/* One user's interactions, ordered by (timestamp, item), each item once. Returns the count; any of the
 * out pointers may be NULL. The arrays belong to the dataset. */
FR_API size_t fr_dataset_user(const fr_dataset *d, uint32_t user, const uint32_t **items, const float **ratings,
                       const int64_t **times);
/* Whether the user interacted with the item (binary search in the user's sorted item set). */
FR_API bool fr_dataset_has(const fr_dataset *d, uint32_t user, uint32_t item);
FR_API const fr_idmap *fr_dataset_users(const fr_dataset *d);
FR_API const fr_idmap *fr_dataset_items(const fr_dataset *d);
FR_API const fr_meta *fr_dataset_meta(const fr_dataset *d);
/* Attaches item/user metadata found beside the ratings file (u.item + u.genre + u.user,
 * movies.dat + users.dat, movies.csv), replacing what d had. Missing files are not an
 * error. A malformed line (binary data, a wrong field count, a bad id, genre flag or
 * genre index) is skipped: its item or user gets nothing from it, the rest of the file
 * loads, and fr_meta_skipped counts it and keeps the first message. A file with bad lines
 * and no usable line is FR_ERR_PARSE (the first bad line's message), as are FR_ERR_IO
 * and FR_ERR_NOMEM errors; d's metadata is then unchanged. A UTF-8 byte-order mark at the
 * start of a file is skipped. Paths have no length limit. */
FR_API FR_NODISCARD fr_err fr_dataset_load_meta(fr_dataset *d, const char *dir);

/* What a checkpoint or a model file records of its training data, so a resume or an
 * evaluation on other data is refused (src/data/fingerprint.c): the sizes and a CRC-32C
 * of the content (raw ids, every interaction). Catches mistakes, not forgeries. */
typedef struct fr_fingerprint {
    uint32_t users, items;
    uint64_t interactions;
    uint32_t crc;
} fr_fingerprint;
FR_API void fr_dataset_fingerprint(const fr_dataset *d, fr_fingerprint *f);
FR_API bool fr_fingerprint_equal(const fr_fingerprint *a, const fr_fingerprint *b);
/* "943 users, 1682 items, 99057 interactions, CRC-32C 1a2b3c4d" (buf of 96 bytes suffices). */
FR_API void fr_fingerprint_describe(const fr_fingerprint *f, char *buf, size_t cap);

/* Summary statistics for `fedrec data info`. */
typedef struct fr_dataset_info {
    uint32_t users, items;
    uint64_t interactions;
    double density;              /* interactions / (users * items) */
    double rating_min, rating_max, rating_mean;
    uint64_t hist[10];           /* ratings in [0.5,1), [1,1.5) ... [5,5.5): bins of 0.5 from 0.5 */
    uint64_t hist_other;         /* ratings outside those bins */
    double per_user_q[5];        /* interactions per user: min, 25%, median, 75%, max */
    double per_item_q[5];
    int64_t time_min, time_max;  /* 0, 0 when there are no timestamps */
    uint64_t duplicates;         /* repeated (user, item) pairs dropped when d was built */
} fr_dataset_info;
FR_API void fr_dataset_info_compute(const fr_dataset *d, fr_dataset_info *info);

/* ------------------------------------------------------------------ splits */

typedef enum fr_split_kind {
    FR_SPLIT_LOO = 1,      /* one interaction per user: the latest (ties: the larger raw item
                              id); without timestamps a seeded random one */
    FR_SPLIT_TEMPORAL = 2, /* global cut: the earliest `ratio` of all interactions train */
    FR_SPLIT_RATIO = 3,    /* per user: a seeded random round((1-ratio)*n_u) to test */
    FR_SPLIT_TEMPORAL_USER = 4, /* per user: the latest round((1-ratio)*n_u) to test */
} fr_split_kind;

/* Splits d into train and test over the same id space.
 *   LOO            each user with two or more interactions gives one to test: the latest
 *                  by (timestamp, raw item id); when d has no timestamps, or all are
 *                  equal (fr_dataset_has_time_order false), a uniformly random one,
 *                  seeded (callers should say so: fr_data_describe does).
 *   TEMPORAL       all interactions ordered by (time, user, item); the first
 *                  round(ratio*n) train, the rest test (some users may have no test rows).
 *   RATIO          per user, round((1-ratio)*n_u) (half up) test interactions, the first
 *                  of a seeded shuffle of the user's interactions.
 *   TEMPORAL_USER  per user, the latest round((1-ratio)*n_u) in CSR order (time, then dense
 *                  item id, which is raw-id order except under NCF id maps written out of
 *                  order), so with one test row per user it is LOO.
 * In the per-user splits (LOO, RATIO, TEMPORAL_USER) a user with two or more interactions
 * keeps at least one in train and one in test, and a user with one keeps it in train.
 * Random choices draw from one stream per user, fr_rng(seed, 0, dense user, FR_PURPOSE_SPLIT):
 * the same data and seed give the same split. TEMPORAL and TEMPORAL_USER need timestamps
 * that are not all equal (FR_ERR_INVALID otherwise). A split that would leave train or test empty is FR_ERR_EMPTY,
 * naming what was asked and what the data gives ("split loo: each of the 3 users has a
 * single interaction...", "split temporal:0.9: 3 interactions give 3 to train and 0 to
 * test..."); FR_ERR_INVALID, FR_ERR_RANGE (bad arguments), FR_ERR_NOMEM. Both outputs are
 * NULL on failure. */
FR_API FR_NODISCARD fr_err fr_dataset_split(const fr_dataset *d, fr_split_kind kind, double ratio, uint64_t seed,
                             fr_dataset **train, fr_dataset **test);

/* Evaluation negatives: for each user, `per_user` items. */
typedef struct fr_negatives fr_negatives;
/* Samples per_user distinct items for each user with a test interaction, uniformly from
 * those the user never touched in `all` (train + test), seeded. A user with fewer such
 * items gets all of them: a partial result, counted by fr_negatives_short for the caller
 * to report. FR_ERR_EMPTY when per_user > 0 and nothing can be drawn (the test set has no
 * interaction, or no test user has an untouched item), naming what was asked and the
 * catalogue's size; FR_ERR_INVALID (NULL arguments, two id spaces), FR_ERR_NOMEM. *out is
 * NULL on failure. */
FR_API FR_NODISCARD fr_err fr_negatives_sample(fr_negatives **out, const fr_dataset *all, const fr_dataset *test,
                                        uint32_t per_user, uint64_t seed);
/* Test users that got fewer negatives than fr_negatives_sample was asked for, and in
 * *fewest (may be NULL) the fewest any test user got. 0 and 0 for NULL and for negatives
 * read from a file (nothing was asked). */
FR_API uint32_t fr_negatives_short(const fr_negatives *n, uint32_t *fewest);
/* Reads an NCF test.negative file ("(user,item)\tneg1\tneg2..."). Raw ids are mapped to
 * dense ids through the id maps of `like` (the training set the negatives go with; an id
 * it does not know is FR_ERR_RANGE naming file and line); like NULL: the ids are dense
 * already. When like was read from NCF files with id maps, the file's ids are indices as
 * in those files (checked against like's sizes). FR_ERR_IO, FR_ERR_PARSE (file and line), FR_ERR_NOMEM. */
FR_API FR_NODISCARD fr_err fr_negatives_load(fr_negatives **out, const char *path, const fr_dataset *like);
FR_API void fr_negatives_free(fr_negatives *n);
/* The user's negatives; returns the count. */
FR_API size_t fr_negatives_user(const fr_negatives *n, uint32_t user, const uint32_t **items);
FR_API uint32_t fr_negatives_n_users(const fr_negatives *n);

/* Writes NCF layout into dir: train.rating, test.rating and (if negs) test.negative, whose
 * users and items are dense indices (0..n-1), and the id maps users.map and items.map:
 * after '#' comment lines (the first says what the file is; "# source: PATH" names the
 * data the ids came from, fr_dataset_source(train), when known), one line per index,
 * "index<TAB>raw id", indices 0, 1, 2... in order. Loading the directory again (or its
 * .rating files, in the NCF format) reads the maps back, so the dataset's id maps give
 * the raw ids: raw ids survive a split end to end. Parent directories are created; every
 * file is written to a temporary name, flushed and renamed into place. FR_ERR_INVALID
 * (train and test of different id spaces, negatives of another size), FR_ERR_IO naming the
 * path, FR_ERR_NOMEM. */
FR_API FR_NODISCARD fr_err fr_dataset_write_ncf(const char *dir, const fr_dataset *train, const fr_dataset *test,
                                 const fr_negatives *negs);
/* Shards for a networked federation (one per client, a client per user): dir/cU/ holds
 * user U's train.rating, test.rating and (negs given) test.negative in the NCF layout
 * with global dense ids — what `fedrec client --data dir/cU` trains on and nothing
 * more; dir/items.map the raw item ids; dir/federation.txt what a server may know
 * (fr_federation: counts, the mean rating, the graph load; no client's interactions);
 * dir/popularity.txt the items' public popularity (fr_popularity_load). Every file is
 * written atomically. Errors as fr_dataset_write_ncf. */
FR_API FR_NODISCARD fr_err fr_dataset_write_shards(const char *dir, const fr_dataset *train, const fr_dataset *test,
                                                   const fr_negatives *negs, float mean_rating);
/* A federation file (fr_dataset_write_shards), as a server reads it. */
typedef struct fr_federation {
    uint32_t clients;          /* one per user */
    uint32_t items;
    uint64_t interactions;     /* training interactions in all */
    float mean_rating;         /* the training ratings' mean (a rating model's mu) */
    bool implicit;             /* implicit feedback */
    bool negatives;            /* clients hold evaluation negatives */
    bool weighted;             /* the ratings are confidence weights (counts) */
    fr_fingerprint fingerprint;/* the training set's */
    double graph_load;         /* fr_dataset_graph_load of the training set (for federated
                                  lightgcn's item rate); 0: the file has none (written by an
                                  older fedrec) */
} fr_federation;
/* Reads path (a federation.txt, or the shard directory holding it). FR_ERR_IO,
 * FR_ERR_PARSE naming file, line and value, FR_ERR_VERSION; *f zeroed on failure. */
FR_API FR_NODISCARD fr_err fr_federation_load(const char *path, fr_federation *f);
/* The items' public popularity that fr_dataset_write_shards writes as dir/popularity.txt
 * ('#' comments, then one weight > 0 per line for items 0..n_items-1: each item's training
 * interactions + 1), the weights a client draws decoy items from (fr_fl_config.decoys,
 * fr_client_ws_set_popularity). *out gets n_items weights (malloc'd: the caller frees them
 * with free). FR_ERR_IO, FR_ERR_PARSE naming file, line and value (or the count of lines
 * against n_items), FR_ERR_NOMEM; *out NULL on failure. */
FR_API FR_NODISCARD fr_err fr_popularity_load(const char *path, uint32_t n_items, double **out);
/* Writes a dataset as a u.data-style tab file (raw ids). */
FR_API FR_NODISCARD fr_err fr_dataset_write_tsv(const fr_dataset *d, const char *path);

/* ------------------------------------------------------------------ partitions */

/* Which users each client holds. One user per client is the default. */
typedef enum fr_partition_kind {
    FR_PARTITION_USER = 0,      /* client k holds user k */
    FR_PARTITION_IID = 1,       /* K silos, users dealt at random */
    FR_PARTITION_DIRICHLET = 2, /* K silos, non-IID: silo shares per user group ~ Dir(alpha) */
    FR_PARTITION_ATTRIBUTE = 3, /* one silo per value of a user attribute */
} fr_partition_kind;

typedef struct fr_partition {
    uint32_t n_clients;
    uint64_t *ptr;   /* [n_clients+1] offsets into users */
    uint32_t *users; /* [n_users] dense user ids, ascending within a client */
} fr_partition;

/* k: number of silos (IID, Dirichlet); alpha: Dirichlet concentration; attr: user
 * attribute name (needs metadata). */
FR_API FR_NODISCARD fr_err fr_partition_make(fr_partition **out, const fr_dataset *d, fr_partition_kind kind,
                                      uint32_t k, double alpha, const char *attr, uint64_t seed);
FR_API void fr_partition_free(fr_partition *p);
/* Parses a partition spec: "user" (a client each), "iid:K" or "dirichlet:K[:ALPHA]" (K >= 1
 * silos, ALPHA > 0, default 0.5). FR_ERR_INVALID naming the text otherwise (the outputs
 * are then untouched); any output may be NULL. */
FR_API FR_NODISCARD fr_err fr_partition_parse(const char *text, fr_partition_kind *kind, uint32_t *k, double *alpha);
/* Writes the spec fr_partition_parse reads ("user", "iid:20", "dirichlet:20:0.5"); buf of
 * 48 bytes always suffices. FR_ERR_INVALID (a kind without a spec), FR_ERR_RANGE (cap). */
FR_API FR_NODISCARD fr_err fr_partition_format(fr_partition_kind kind, uint32_t k, double alpha, char *buf, size_t cap);

/* ------------------------------------------------------------------ synthetic data */

typedef struct fr_gen_opts {
    uint32_t users, items;
    uint64_t interactions;   /* target total; each (user,item) pair appears at most once */
    double item_zipf;        /* item popularity exponent (default 1.0) */
    double user_zipf;        /* user activity exponent (default 0.8) */
    uint32_t dim;            /* latent factors behind ratings (default 8) */
    double noise;            /* rating noise std (default 0.5) */
    uint64_t seed;
    int64_t time_start;      /* first timestamp (default 2000-01-01) */
    int64_t time_span;       /* seconds (default 3 years) */
} fr_gen_opts;
FR_API void fr_gen_opts_default(fr_gen_opts *o);
FR_API FR_NODISCARD fr_err fr_gen_opts_check(const fr_gen_opts *o);
/* Generates a dataset: power-law item popularity and user activity (each user at least
 * min(5, items) interactions and at most half the catalogue, ceil(items / 2), so that every
 * user keeps unrated items, e.g. for leave-one-out negatives; the cap rises to
 * ceil(interactions / users) when the target needs denser rows), latent-factor preferences
 * decide which popular items a user picks and their 1-5 ratings, timestamps increasing per
 * user. Deterministic: the same options give the same dataset for any thread count. */
FR_API FR_NODISCARD fr_err fr_dataset_generate(fr_dataset **out, const fr_gen_opts *o);
/* Share `at` of n of the same data set: the interactions of the users u % n == at only,
 * every other user empty, in the same ids (o->users users, o->items items): the very
 * dataset fr_dataset_select_users makes of fr_dataset_generate's with those users, made
 * without the others' rows (a process of an mpi run generating only its clients' data).
 * FR_ERR_INVALID (at >= n), then as fr_dataset_generate. */
FR_API FR_NODISCARD fr_err fr_dataset_generate_share(fr_dataset **out, const fr_gen_opts *o, uint32_t at, uint32_t n);

/* ------------------------------------------------------------------ data sources */

/* The built-in synthetic data set a run uses when it names no data: fixed, so a model
 * trained on it can be evaluated again (fr_dataset_generate with these sizes and seed). */
#define FR_SOURCE_SYNTHETIC_USERS 2000
#define FR_SOURCE_SYNTHETIC_ITEMS 1000
#define FR_SOURCE_SYNTHETIC_INTERACTIONS 100000
#define FR_SOURCE_SYNTHETIC_SEED 1

/* Where a run's data comes from (DESIGN.md's PATH rules), as `fedrec train`, `eval` and
 * `recommend` take it. The strings are borrowed: they must outlive fr_data_load.
 *   data NULL            the built-in synthetic set, split by `split`;
 *   data a directory     NCF layout: train.rating and test.rating (or `test`), and for a
 *                        ranking model test.negative when present (or `negatives`);
 *                        users.map and items.map, when present, give the raw ids
 *                        (fr_dataset_write_ncf);
 *   data + test          data is the training file, test the test file (one id space);
 *   data alone           a ratings file split by `split`.
 * When the data is split, a ranking model gets eval_negatives sampled negatives per test
 * user unless `negatives` names a file. A rating model (explicit_ratings) gets none. */
typedef struct fr_source {
    const char *data;         /* ratings file, NCF directory, or NULL: the synthetic set */
    const char *test;         /* a given test file (needs data) */
    const char *negatives;    /* an NCF .negative file for evaluation */
    fr_split_kind split;      /* how data is split when no test is given (FR_SPLIT_LOO) */
    double split_ratio;       /* train share for ratio and temporal splits, in (0, 1) */
    uint32_t eval_negatives;  /* negatives sampled per test user (99); 0: none (a ranking
                                 model is then evaluated on the full catalogue) */
    uint64_t seed;            /* split and sampled negatives (1) */
    bool explicit_ratings;    /* the model predicts ratings: no evaluation negatives */
    fr_load_opts load;        /* reader options for every file (fr_load_opts_default); a
                                 model file's provenance records them */
} fr_source;

/* Defaults: synthetic data, leave-one-out, 99 negatives, seed 1, default reader options. */
FR_API void fr_source_default(fr_source *s);
/* FR_OK, or FR_ERR_INVALID saying which field is wrong (a test file without data, a split
 * kind or ratio out of range, bad reader options). */
FR_API FR_NODISCARD fr_err fr_source_check(const fr_source *s);
/* Parses "loo", "ratio:R", "temporal:R" or "temporal-user:R" (0 < R < 1; ratio 0 for loo):
 * FR_SPLIT_LOO, _RATIO, _TEMPORAL (a global time cut), _TEMPORAL_USER. FR_ERR_INVALID
 * naming the text otherwise; *kind and *ratio are then untouched. */
FR_API FR_NODISCARD fr_err fr_source_parse_split(const char *text, fr_split_kind *kind, double *ratio);
/* Writes the split as fr_source_parse_split reads it ("loo", "ratio:0.8": the shortest
 * decimal that reads back as the same double) into buf. FR_ERR_INVALID for an unknown
 * kind, FR_ERR_RANGE if cap is too small (buf of 40 bytes always suffices). */
FR_API FR_NODISCARD fr_err fr_source_format_split(fr_split_kind kind, double ratio, char *buf, size_t cap);
/* The source of one client's shard dir (fedrec data shard's DIR/cID): its NCF files, the
 * item ids spanning the federation's catalogue (its federation.txt), its own negatives or
 * none. Errors of fr_federation_load; s is the default source then. */
FR_API FR_NODISCARD fr_err fr_source_shard(fr_source *s, const char *dir);

/* The data of a run: train and test over one id space, evaluation negatives or none,
 * and a one-line description of what was loaded. Immutable once loaded, except for
 * fr_data_load_meta. */
typedef struct fr_data fr_data;

/* Loads what s names. Errors name the file and what was expected, as the readers do
 * (FR_ERR_IO, FR_ERR_PARSE, FR_ERR_RANGE, FR_ERR_EMPTY); a split or sampling failure is
 * prefixed with what was being split; FR_ERR_INVALID (fr_source_check), FR_ERR_NOMEM.
 * *out is NULL on failure. Thread-safe for distinct outputs. */
FR_API FR_NODISCARD fr_err fr_data_load(fr_data **out, const fr_source *s);
/* The data of a run from a dataset in memory (fr_dataset_from_arrays: a Python data
 * frame, say), as fr_data_load makes it from a ratings file: all is split by s (split,
 * split_ratio, seed) and a ranking model (!s->explicit_ratings) gets s->eval_negatives
 * sampled negatives per test user, or those of the file s->negatives names. all is not
 * kept (the parts are copies over its id maps). describe names the data in fr_data_describe
 * ("data in memory" if NULL; " (split S)" is appended). Not synthetic, no metadata
 * directory. FR_ERR_INVALID (s names a data or test file, or fails fr_source_check), the
 * split's and the sampling's errors (prefixed with what was split), FR_ERR_NOMEM. *out is
 * NULL on failure. */
FR_API FR_NODISCARD fr_err fr_data_from_dataset(fr_data **out, const fr_dataset *all, const fr_source *s,
                                                const char *describe);
FR_API void fr_data_free(fr_data *d);
/* Replaces d's training set by train (taken over; the old one is freed): for an mpi rank
 * that keeps only its own clients' interactions (fr_mpi_shard) once everything that reads
 * all of them (the run's config, its header) is done. */
FR_API void fr_data_replace_train(fr_data *d, fr_dataset *train);
/* The parts (owned by d): training and test interactions, the evaluation negatives
 * (NULL: none, so a ranking model is evaluated on the full catalogue). */
FR_API const fr_dataset *fr_data_train(const fr_data *d);
FR_API const fr_dataset *fr_data_test(const fr_data *d);
FR_API const fr_negatives *fr_data_negatives(const fr_data *d);
/* What was loaded, for messages and provenance: "ml-100k-loo (NCF layout)",
 * "u1.base + u1.test", "u.data (split loo)", "plays.tsv (split loo, random: no
 * timestamps)" (leave-one-out on data without timestamps holds out a random interaction
 * per user), "u.data (split temporal-user:0.8)", "synthetic data (2000 users, ...)". */
FR_API const char *fr_data_describe(const fr_data *d);
/* Bad lines skipped in the files fr_data_load read (fr_load_opts.skip_bad_lines: the
 * ratings file, or the training and test files), and "path:line" of the first in *first
 * (NULL when none; may be NULL; owned by d). */
FR_API uint64_t fr_data_skipped(const fr_data *d, const char **first);
/* Whether the data is the built-in synthetic set. */
FR_API bool fr_data_is_synthetic(const fr_data *d);
/* Attaches item titles and user attributes found beside the data (the NCF directory, or
 * the directory of the ratings file) to the training set, as fr_dataset_load_meta; when
 * there are none, those beside fr_dataset_source(train) (for an NCF split with id maps,
 * the file it was split from: ml-100k/u.item for a split of ml-100k/u.data). The synthetic
 * set has none; missing files are not an error. */
FR_API FR_NODISCARD fr_err fr_data_load_meta(fr_data *d);

#ifdef __cplusplus
}
#endif
#endif
