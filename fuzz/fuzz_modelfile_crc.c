/* libFuzzer entry for the modelfile_crc target (the "modelfile_crc" target in targets.c). */
#include <string.h>

#include "fuzz/targets.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    static const fr_fuzz_target *target;
    if (!target)
        for (const fr_fuzz_target *t = fr_fuzz_targets; t->name; t++)
            if (strcmp(t->name, "modelfile_crc") == 0) target = t;
    return target ? target->run(data, n) : 0;
}
