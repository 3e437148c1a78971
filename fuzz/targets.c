/* Fuzz entry points (see targets.h). Each writes the input to a private temp file when
 * the code under test reads files, so readers are fuzzed through their real path. */
#include "fuzz/targets.h"

#include "fedrec/model.h"

/* The model-file decoder on arbitrary bytes (decoded in memory, as fr_model_load does
 * after reading the file). */
static int fuzz_modelfile(const uint8_t *data, size_t n) {
    fr_model *m = NULL;
    fr_model_meta meta;
    if (fr_model_decode(&m, data, n, "<fuzz>", &meta) == FR_OK) {
        fr_model_meta_destroy(&meta);
        fr_model_free(m);
    }
    return 0;
}

const fr_fuzz_target fr_fuzz_targets[] = {
    { "modelfile", fuzz_modelfile },
    {NULL, NULL},
};
