/* Side features for `fedrec train` (features.c). */
#ifndef FEDREC_SRC_CLI_FEATURES_H
#define FEDREC_SRC_CLI_FEATURES_H
#include <stdbool.h>

#include "fedrec/fedrec.h"

/* For a kind that reads side features: builds them from the metadata beside the data and
 * from the feature files given (either may be NULL) and attaches them to mc. Other kinds:
 * nothing. 0, or 1 after printing the error ("fedrec CMD: ..."). */
int cli_features_attach(const char *cmd, fr_data *data, const char *user_file, const char *item_file,
                        fr_model_config *mc, bool quiet);
#endif
