/* Subcommands of the fedrec program. Each takes argv starting at its own name and
 * returns the process exit status: 0 success, 1 failure, 2 usage error. */
#ifndef FEDREC_SRC_CLI_CLI_H
#define FEDREC_SRC_CLI_CLI_H
#include "fedrec/fedrec.h"

int cli_data(int argc, char **argv);
int cli_train(int argc, char **argv);     /* cli_train.c */
int cli_eval(int argc, char **argv);      /* cli_eval.c */
int cli_recommend(int argc, char **argv); /* cli_eval.c */

/* --format names. Returns 0, or 2 after printing a usage error. */
int cli_parse_format(const char *s, fr_format *out);
const char *cli_format_name(fr_format f);

/* Prints "fedrec: <what>: <detailed message or strerror>" to stderr and returns 1. */
int cli_fail(fr_err e, const char *what);
#endif
