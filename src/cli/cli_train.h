/* Helpers of cli_train.c shared with cli_eval.c. */
#ifndef FEDREC_SRC_CLI_CLI_TRAIN_H
#define FEDREC_SRC_CLI_CLI_TRAIN_H
#include <stdio.h>

/* Writes s as a JSON string (null for NULL). */
void cli_json_str(FILE *f, const char *s);
#endif
