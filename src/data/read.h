/* Internal entry of the ratings readers (src/data/read.c): the parse step alone, without
 * the CSR build, for benchmarks and for callers that build datasets their own way. */
#ifndef FEDREC_SRC_DATA_READ_H
#define FEDREC_SRC_DATA_READ_H

#include "data/dataset.h"

/* Appends the ratings of path to rows (raw ids), in o->format (AUTO detects; *used, if
 * not NULL, receives the format used). stats, if not NULL, is added to. On failure rows
 * may hold part of the file; the caller frees them with fri_rows_free. */
FR_NODISCARD fr_err fri_read_rows(const char *path, const fr_load_opts *o, fri_rows *rows, fr_format *used,
                                  fr_load_stats *stats);

/* Files of at least min_bytes (0: the default, 64 MiB) that are regular are parsed in
 * `ranges` byte ranges in parallel (0: one per online CPU). For tests; not thread-safe
 * against concurrent loads. */
void fri_read_set_parallel(uint64_t min_bytes, int ranges);
/* Files read in parallel since the program started (tests check the path was taken). */
uint64_t fri_read_parallel_loads(void);

#endif
