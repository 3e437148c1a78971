/* Internals shared by the files of src/runtime. */
#ifndef FEDREC_SRC_RUNTIME_INTERNAL_H
#define FEDREC_SRC_RUNTIME_INTERNAL_H
#include "fedrec/runtime.h"

/* The pool a sim schedules its clients on (a loop driver's pool; s is an fr_sim). */
fr_pool *fri_sim_pool(void *s);
/* fr_sim_checkpoint_load on bytes in memory (name in messages): every length checked
 * against what remains; on failure the sim is unchanged. */
FR_NODISCARD fr_err fri_sim_checkpoint_decode(fr_sim *s, const uint8_t *bytes, size_t n, const char *name);
#endif
