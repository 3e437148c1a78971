/* fedrec data info | split | generate (placeholder until the data commands land). */
#include <stdio.h>

#include "cli/cli.h"

int cli_fail(fr_err e, const char *what) {
    const char *m = fr_errmsg();
    fprintf(stderr, "fedrec: %s: %s\n", what, m && *m ? m : fr_strerror(e));
    return 1;
}

int cli_data(int argc, char **argv) {
    (void)argc; (void)argv;
    fprintf(stderr, "fedrec data: not built yet\n");
    return 1;
}
