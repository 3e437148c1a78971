/* Helpers of cli_train.c shared with cli_eval.c (eval and recommend load the same data). */
#ifndef FEDREC_SRC_CLI_CLI_TRAIN_H
#define FEDREC_SRC_CLI_CLI_TRAIN_H
#include <stdio.h>

#include "cli/train_opts.h"

/* --split values. Returns 0, or 2 after printing a usage error. */
int cli_parse_split(const char *s, fr_split_kind *kind, double *ratio);
/* Loads the data o names for a model of `kind`. Returns 0, or 1/2 after printing. */
int cli_train_load(const cli_train_opts *o, fr_model_kind kind, cli_train_data *d);
void cli_train_data_free(cli_train_data *d);
/* Writes s as a JSON string (null for NULL). */
void cli_json_str(FILE *f, const char *s);
#endif
