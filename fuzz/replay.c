/* Replays every fuzz corpus under fuzz/corpus/<target>/ through the same entry points
 * the libFuzzer targets use, in the ordinary test run (no clang needed). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz/targets.h"

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "--seed")) /* fuzz_replay --seed fuzz/corpus */
        return fuzz_seed_state_and_checkpoint(argv[2]);
    if (argc == 3 && !strcmp(argv[1], "--seed-secagg")) /* fuzz_replay --seed-secagg fuzz/corpus */
        return fuzz_seed_secagg(argv[2]);
    if (argc != 2) { fprintf(stderr, "usage: fuzz_replay CORPUS_DIR | --seed CORPUS_DIR | --seed-secagg CORPUS_DIR\n"); return 2; }
    long files = 0;
    for (const fr_fuzz_target *t = fr_fuzz_targets; t->name; t++) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/%s", argv[1], t->name);
        DIR *d = opendir(dir);
        if (!d) continue;
        struct dirent *e;
        while ((e = readdir(d))) {
            if (e->d_name[0] == '.') continue;
            char path[8192];
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            FILE *f = fopen(path, "rb");
            if (!f) continue;
            fseek(f, 0, SEEK_END);
            long n = ftell(f);
            fseek(f, 0, SEEK_SET);
            unsigned char *buf = malloc(n > 0 ? (size_t)n : 1);
            if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) { fclose(f); free(buf); return 1; }
            fclose(f);
            t->run(buf, (size_t)n);
            free(buf);
            files++;
        }
        closedir(d);
    }
    printf("fuzz_replay: %ld corpus files replayed without a crash\n", files);
    return 0;
}
