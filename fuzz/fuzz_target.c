/* The libFuzzer program for every target of targets.c (readers, messages, model file,
 * server state, checkpoint).
 * The target is chosen once at start-up: by $FEDREC_FUZZ_TARGET, else by the name of
 * the corpus folder given on the command line (fuzz/corpus/<name>), so
 *   ./fuzz_target -max_total_time=120 fuzz/corpus/csv
 * fuzzes the CSV reader with its own corpus. Without either, the first input byte
 * picks the target and the rest is its input. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz/targets.h"

static const fr_fuzz_target *chosen;

static const fr_fuzz_target *by_name(const char *name, size_t n) {
    for (const fr_fuzz_target *t = fr_fuzz_targets; t->name; t++)
        if (strlen(t->name) == n && strncmp(t->name, name, n) == 0) return t;
    return NULL;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    const char *env = getenv("FEDREC_FUZZ_TARGET");
    if (env) chosen = by_name(env, strlen(env));
    for (int k = 1; !chosen && k < *argc; k++) {
        const char *a = (*argv)[k];
        if (a[0] == '-') continue;
        size_t n = strlen(a);
        while (n > 1 && a[n - 1] == '/') n--;
        size_t b = n;
        while (b > 0 && a[b - 1] != '/') b--;
        chosen = by_name(a + b, n - b);
    }
    if (chosen) fprintf(stderr, "fuzz_target: target %s\n", chosen->name);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    if (chosen) return chosen->run(data, n);
    if (n == 0) return 0;
    size_t count = 0;
    while (fr_fuzz_targets[count].name) count++;
    return fr_fuzz_targets[data[0] % count].run(data + 1, n - 1);
}
