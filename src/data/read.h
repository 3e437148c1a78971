/* Internal entries of the ratings readers (src/data/read.c and the files beside it): the
 * parse step alone, without the CSR build, for benchmarks and for callers that build
 * datasets their own way; and the pieces the reader files call across each other. */
#ifndef FEDREC_SRC_DATA_READ_H
#define FEDREC_SRC_DATA_READ_H

#include "data/dataset.h"
#include "data/format.h"

/* Appends the ratings of path to rows (raw ids), in o->format (AUTO detects; *used, if
 * not NULL, receives the format used). stats, if not NULL, is added to. On failure rows
 * may hold part of the file; the caller frees them with fri_rows_free. */
FR_NODISCARD fr_err fri_read_rows(const char *path, const fr_load_opts *o, fri_rows *rows, fr_format *used,
                                  fr_load_stats *stats);

/* ------------------------------------------------------------ parallel parse (parallel.c) */

/* Files of at least min_bytes (0: the default, 64 MiB) that are regular are parsed in
 * `ranges` byte ranges in parallel (0: one per online CPU). For tests; not thread-safe
 * against concurrent loads. */
void fri_read_set_parallel(uint64_t min_bytes, int ranges);
/* Files read in parallel since the program started (tests check the path was taken). */
uint64_t fri_read_parallel_loads(void);
/* The ranges the open file fd is parsed in (0 or 1: serially) and, when it is parsed in
 * parallel, its size in *size (else 0). */
int fri_read_parallel_ranges(int fd, uint64_t *size);
/* Parses [start, size) of the open file fd in nr ranges in parallel with c's spec,
 * appending to rows. Returns FR_OK with *done set when the file is read (counts in
 * *lines, *skipped, *first_bad), FR_OK with *done false when a range met a bad line
 * (rows->n untouched: the caller goes on serially and words the error), or a fatal
 * error. fast as for fri_line_push. */
FR_NODISCARD fr_err fri_read_parallel(const fri_rdctx *c, bool fast, int fd, uint64_t start, uint64_t size, int nr,
                                      fri_rows *rows, bool *done, uint64_t *lines, uint64_t *skipped,
                                      uint64_t *first_bad);

/* ------------------------------------------------------------ NCF files (ncf.c) */

/* The id maps of the NCF rows rs[0, k) of path, whose ids are dense indices. With id-map
 * files beside path (fri_ncf_map_path: users.map and items.map, "index<TAB>raw id"), the
 * rows' ids are translated to the raw ids the maps give, the maps (marked `indexed`) are
 * returned and *source (when not NULL) receives the "# source: PATH" they record
 * (allocated, or NULL). Without them: identity maps, the largest id plausible for the
 * number of rows (FR_ERR_RANGE naming path otherwise). One map file without the other,
 * a malformed map (file and line), an index a map lacks: errors. *um and *im are NULL on
 * failure. min_items: without maps, the item map covers at least this many ids. */
FR_NODISCARD fr_err fri_ncf_maps(const char *path, fri_rows *const *rs, int k, uint32_t min_items, fr_idmap **um,
                                 fr_idmap **im, char **source);
/* The id-map file `which` ("users.map", "items.map") of the NCF file rating: its name
 * without "train.rating", "test.rating" or "rating" at the end (else the name and "."),
 * then which. Allocated; NULL when out of memory. */
char *fri_ncf_map_path(const char *rating, const char *which);

#endif
