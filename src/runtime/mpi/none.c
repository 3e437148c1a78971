/* The `mpi` runtime in a build without Open MPI: every entry point says it is unavailable
 * (CMake compiles this file instead of mpi.c when it finds no MPI). */
#include "core/core.h"
#include "fedrec/runtime.h"

#define UNAVAILABLE                                                                                                 \
    fri_fail(FR_ERR_UNSUPPORTED, "the mpi runtime is unavailable: this fedrec was built without Open MPI "          \
             "(install libopenmpi-dev and openmpi-bin, scripts/install-deps.sh, and build again)")

bool fr_mpi_available(void) { return false; }

fr_err fr_mpi_init(int *rank, int *size) {
    if (rank) *rank = 0;
    if (size) *size = 1;
    return UNAVAILABLE;
}

void fr_mpi_finalize(void) {}

fr_err fr_mpi_shard(const fr_run_config *c, const fr_dataset *train, fr_dataset **out) {
    (void)c; (void)train;
    *out = NULL;
    return UNAVAILABLE;
}
void fr_mpi_abort(int code) { (void)code; }

fr_err fr_run_mpi(const fr_run_config *c, const fr_dataset *train, const fr_dataset *test, const fr_negatives *negs,
                  fr_loop_callback cb, void *user, fr_loop_summary *summary, fr_model **model, fr_mpi_stats *stats) {
    (void)c; (void)train; (void)test; (void)negs; (void)cb; (void)user;
    if (summary) memset(summary, 0, sizeof *summary);
    if (model) *model = NULL;
    if (stats) memset(stats, 0, sizeof *stats);
    return UNAVAILABLE;
}
