/* Helpers shared by the test programs. */
#ifndef FEDREC_TESTS_TESTUTIL_H
#define FEDREC_TESTS_TESTUTIL_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fedrec/data.h"

/* A fresh empty directory under $TMPDIR for one test; removed by tu_rmtree. */
char *tu_tmpdir(void);
void tu_rmtree(const char *dir);
/* Writes text to dir/name and returns the malloc'd path. */
char *tu_write(const char *dir, const char *name, const char *text);
/* Writes text to dir/name (tu_write) and loads it with fr_dataset_load. */
fr_err tu_load_text(fr_dataset **d, const char *dir, const char *name, const char *text, const fr_load_opts *o,
                    fr_load_stats *st);
/* The rating and time of raw (user, item) in d (either pointer may be NULL); false if absent. */
bool tu_find_row(const fr_dataset *d, int64_t ru, int64_t ri, float *r, int64_t *t);
/* Path of a file under ../shared/data, or NULL if it is absent. */
char *tu_shared(const char *rel);
/* Whole file as a malloc'd string (NULL on failure). */
char *tu_slurp(const char *path, size_t *len);
/* A generated dataset (fr_dataset_generate with these sizes and seed, the rest default);
 * aborts the test process if generation fails. */
fr_dataset *tu_generate(uint32_t users, uint32_t items, uint64_t interactions, uint64_t seed);
#endif
