/* Internals shared by the files of src/runtime. */
#ifndef FEDREC_SRC_RUNTIME_INTERNAL_H
#define FEDREC_SRC_RUNTIME_INTERNAL_H
#include "fedrec/runtime.h"

/* The pool a sim schedules its clients on (a loop driver's pool; s is an fr_sim). */
fr_pool *fri_sim_pool(void *s);
#endif
