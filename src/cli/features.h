/* Side features for `fedrec train` (features.c). */
#ifndef FEDREC_SRC_CLI_FEATURES_H
#define FEDREC_SRC_CLI_FEATURES_H
#include <stdbool.h>

#include "fedrec/fedrec.h"
#include "fedrec/net_client.h"

/* For a kind that reads side features: builds them from the metadata beside the data and
 * from the feature files given (either may be NULL) and attaches them to mc. Other kinds:
 * nothing. 0, or 1 after printing the error ("fedrec CMD: ..."). */
int cli_features_attach(const char *cmd, fr_data *data, const char *user_file, const char *item_file,
                        fr_model_config *mc, bool quiet);
/* fedrec data shard: the feature set train would build for data (as cli_features_attach)
 * written for a networked federation: DIR/features.txt (the feature names of both sides
 * in id order and the items' lists, public: the server reads it) and DIR/cID/
 * user_features.txt (client c's user's own list in those ids: only that client reads it).
 * Nothing when no feature is found. 0, or 1 after printing. */
int cli_features_write_shards(const char *cmd, fr_data *data, const char *user_file, const char *item_file,
                              const char *dir, bool quiet);
/* fedrec server: for a kind that reads features, DIR/features.txt (when present) as mc's
 * feature set: the vocabularies and item lists of train's, no user's list. 0, or 1 after
 * printing. */
int cli_features_from_shards(const char *cmd, const char *dir, fr_model_config *mc, bool quiet);
/* fedrec client: its users' own lists from a cID/user_features.txt (lines "USER<TAB>ID:W
 * ...", global user ids, ids of the federation's user vocabulary) into c. 0, or 1 after
 * printing. */
int cli_user_features_read(const char *cmd, const char *path, fr_netc *c);
#endif
