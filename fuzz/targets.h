/* The fuzz entry points, shared by the libFuzzer programs (fuzz_*.c) and the corpus
 * replay in the ordinary test run. Each must accept any bytes without crashing. */
#ifndef FEDREC_FUZZ_TARGETS_H
#define FEDREC_FUZZ_TARGETS_H
#include <stddef.h>
#include <stdint.h>

typedef struct fr_fuzz_target {
    const char *name; /* corpus folder name */
    int (*run)(const uint8_t *data, size_t n);
} fr_fuzz_target;

extern const fr_fuzz_target fr_fuzz_targets[]; /* ends with {NULL, NULL} */

/* Writes valid seeds for the state and checkpoint targets (the federation they load
 * into, after two rounds) under dir/state and dir/checkpoint. 0 on success. */
int fuzz_seed_state_and_checkpoint(const char *dir);
/* Writes a valid seed for each entry of the secagg target under dir/secagg. 0 on success. */
int fuzz_seed_secagg(const char *dir);
#endif
