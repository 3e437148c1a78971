/* fedrec train, federated path (placeholder until the federated runtime lands). */
#include <stdio.h>

#include "cli/train_opts.h"

int cli_train_federated(const cli_train_opts *o, cli_train_data *d) {
    (void)o; (void)d;
    fprintf(stderr, "fedrec train: federated training is not built yet; use --centralized\n");
    return 1;
}
