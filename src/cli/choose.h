/* `fedrec train`'s model when --model is not given (choose.c). */
#ifndef FEDREC_SRC_CLI_CHOOSE_H
#define FEDREC_SRC_CLI_CHOOSE_H
#include "fedrec/fedrec.h"

/* After *data was loaded for *kind (src->explicit_ratings set for it). Without --model
 * (model NULL) the data decides: mf for explicit ratings (fr_run_default_kind), neumf for
 * implicit data (fr_run_data_implicit) or data that comes with evaluation negatives
 * (--negatives, an NCF directory's test.negative: ranking data), which is then loaded
 * again with its negatives (*data replaced, src->explicit_ratings false); *why (static
 * text) says why. With --model, a rating model on constant ratings is refused
 * (fr_run_check_data). Returns 0, 1 (a load failed; printed) or 2 (refused; printed). */
int cli_choose_model(const char *model, fr_model_kind *kind, fr_source *src, fr_data **data, const char **why,
                     const char **note);

#endif
