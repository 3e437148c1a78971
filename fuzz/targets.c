/* Fuzz entry points (see targets.h). Each writes the input to a private temp file when
 * the code under test reads files, so readers are fuzzed through their real path. */
#include "fuzz/targets.h"

#include <stdlib.h>
#include <string.h>

#include "fedrec/fl.h"
#include "fedrec/model.h"

/* update: the wire decoder against a fixed shape (dense 3, tables of widths 4 and 1 with
 * 16 and 1000 rows), on the raw bytes and again with the header's length and CRC patched
 * so that mutations reach the body parser. Whatever decodes must re-encode to the same
 * bytes (the encoding is canonical). */
static int run_update(const uint8_t *data, size_t n) {
    static const uint32_t widths[2] = {4, 1}, rows[2] = {16, 1000};
    const fr_update_shape shape = {3, 2, widths, rows};
    uint8_t *m = malloc(n ? n : 1);
    if (!m) return 0;
    if (n) memcpy(m, data, n);
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) {
            if (n < FR_UPDATE_HEADER_BYTES) break;
            uint64_t len = n;
            uint32_t crc = fr_crc32c(0, m + FR_UPDATE_HEADER_BYTES, n - FR_UPDATE_HEADER_BYTES);
            for (int i = 0; i < 8; i++) m[8 + i] = (uint8_t)(len >> (8 * i));
            for (int i = 0; i < 4; i++) m[16 + i] = (uint8_t)(crc >> (8 * i));
        }
        fr_update *u = NULL;
        if (fr_update_decode(&u, m, n, &shape) != FR_OK) continue;
        uint8_t *b = NULL;
        size_t bn = 0;
        if (fr_update_encoded_size(u) != n) abort();
        if (fr_update_encode(u, &b, &bn) != FR_OK || bn != n || memcmp(b, m, n) != 0) abort();
        fr_update_bytes_free(b);
        fr_update_free(u);
    }
    free(m);
    return 0;
}

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
    {"update", run_update},
    {"modelfile", fuzz_modelfile},
    {NULL, NULL},
};
