/* Seconds per epoch of centralized NeuMF training (Adam 0.001, batch 256, 4 negatives) on
 * ml-100k-loo's train.rating for 1, 2 and 4 threads, and whether the models agree bit for
 * bit. Usage: bench_train [DIR] (default ../shared/data/ml-100k-loo). Not part of the tests. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fedrec/fedrec.h"
#include "fedrec/model.h"
#include "fedrec/train.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(int argc, char **argv) {
    char path[1024];
    snprintf(path, sizeof path, "%s/train.rating", argc > 1 ? argv[1] : "../shared/data/ml-100k-loo");
    fr_dataset *d = NULL;
    fr_load_opts lo;
    fr_load_opts_default(&lo);
    if (fr_dataset_load(&d, path, &lo, NULL)) { printf("bench_train: %s (skipped)\n", fr_errmsg()); return 0; }
    int shards = argc > 2 ? atoi(argv[2]) : 2;
    float *ref = NULL;
    int threads[] = {1, 2, 4};
    for (int k = 0; k < 3; k++) {
        fr_model_config mc;
        fr_model_config_default(&mc, FR_MODEL_NEUMF);
        mc.n_users = fr_dataset_n_users(d);
        mc.n_items = fr_dataset_n_items(d);
        fr_model *m = NULL;
        fr_trainer *t = NULL;
        fr_train_config tc;
        fr_train_config_default(&tc);
        tc.threads = threads[k];
        tc.shards = (uint32_t)shards;
        if (fr_model_create(&m, &mc) || fr_trainer_create(&t, m, d, &tc)) { printf("error: %s\n", fr_errmsg()); return 1; }
        double best = 1e9, loss = 0;
        for (int ep = 0; ep < 3; ep++) {
            double t0 = now();
            if (fr_trainer_epoch(t, &loss)) { printf("error: %s\n", fr_errmsg()); return 1; }
            double s = now() - t0;
            if (s < best) best = s;
        }
        size_t np = fr_model_n_params(m);
        int same = 1;
        if (!ref) { ref = malloc(np * 4); memcpy(ref, fr_model_params(m), np * 4); }
        else same = !memcmp(ref, fr_model_params(m), np * 4);
        printf("neumf threads %d shards %d: best %.3f s/epoch over 3 epochs, loss %.5f, %s\n", threads[k], shards,
               best, loss, same ? "bit-identical to 1 thread" : "DIFFERS from 1 thread");
        fr_trainer_free(t);
        fr_model_free(m);
    }
    free(ref);
    fr_dataset_free(d);
    return 0;
}
