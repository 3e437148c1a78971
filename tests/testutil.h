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
/* Path of a file under ../shared/data, or NULL if it is absent. */
char *tu_shared(const char *rel);
/* Whole file as a malloc'd string (NULL on failure). */
char *tu_slurp(const char *path, size_t *len);
/* A generated dataset (fr_dataset_generate with these sizes and seed, the rest default);
 * aborts the test process if generation fails. */
fr_dataset *tu_generate(uint32_t users, uint32_t items, uint64_t interactions, uint64_t seed);
#endif
