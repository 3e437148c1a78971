/* `fedrec train --help`: the defaults each model starts from, read from the library's
 * presets (fr_run_config_preset) when the help is printed, so the help cannot drift from
 * what a run uses. */
#ifndef FEDREC_SRC_CLI_TRAIN_HELP_H
#define FEDREC_SRC_CLI_TRAIN_HELP_H
#include <stdbool.h>

#include "fedrec/fedrec.h"

/* Prints to standard output a table of every registered model's defaults under preset
 * (NULL: "fedrec"), federated and centralized. */
void cli_train_defaults_help(const char *preset);
/* Whether cfg's dim sizes any of its tensors (mlp's embeddings are mlp_dim wide). */
bool cli_dim_applies(const fr_model_config *cfg);
/* Whether cfg's model has user or item bias rows (what --bias-l2 regularises). */
bool cli_has_bias_rows(const fr_model_config *cfg);
/* The training loss of a model's config, for people: "warp 10 (up to 10 draws a positive)",
 * "bpr", "bce", "mse". Returns buf. */
const char *cli_loss_text(const fr_model_config *mc, char *buf, size_t n);

#endif
