/* Fuzz entry points (see targets.h). Each writes the input to a private temp file when
 * the code under test reads files, so readers are fuzzed through their real path. */
#include "fuzz/targets.h"

const fr_fuzz_target fr_fuzz_targets[] = {
    {NULL, NULL},
};
