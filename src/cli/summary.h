/* The end-of-run summary of `fedrec train` (summary.c): what the run reached, against the
 * baseline on the same split, how long it took and what it wrote. */
#ifndef FEDREC_SRC_CLI_SUMMARY_H
#define FEDREC_SRC_CLI_SUMMARY_H
#include <stdbool.h>
#include <stdio.h>

#include "fedrec/run.h"

typedef struct cli_summary {
    const fr_run_config *run;     /* the run's config (model kind, mode, loop, threads) */
    const fr_loop_summary *loop;  /* what the loop did */
    const fr_data *data;          /* the run's data (the baseline is fitted on its train) */
    const char *chosen;           /* why the model was chosen when --model was not given, or NULL */
    double seconds;               /* the whole command, loading included */
    double train_seconds;         /* fr_run alone */
    const char *out;              /* --out, or NULL: no model file */
    const char *checkpoint;       /* the checkpoint written, or NULL */
    const fr_dataset *train, *test; /* what the model trained and was evaluated on, when not the data's
                                     * (--cold-items: the warm part); the baseline is fitted on the same */
} cli_summary;

/* Computes the baseline (fr_run_baseline: bias for a rating model, pop for a ranking
 * model; none when the model is a baseline itself), prints the summary to standard
 * output, and appends it to metrics (may be NULL) as one JSON line:
 *   {"summary":true,"model":"neumf","mode":"federated","rounds":50 | "epochs":15,
 *    "stop":"done","confidence_alpha":1 (0: unweighted),["epsilon":E|null,"delta":D (a DP run),]
 *    "seconds":..,"train_seconds":..,
 *    "final":{"round"|"epoch":N,<metrics>},"best":{"round"|"epoch":N,<metrics>},
 *    "baseline":{"model":"pop",<metrics>} | null,"out":PATH|null,"checkpoint":PATH|null}
 * with <metrics> as fr_eval_result_json writes them ("best" is null when no step of this
 * call was evaluated: a resumed run with nothing left to do). Returns 0, or 1 after
 * printing why (a failed baseline, a failed --metrics-out write: errno in *err). */
int cli_summary_print(const cli_summary *s, FILE *metrics, int *err);

/* The confidence alpha the run weighs positives with: its config's (train or fl, by the
 * mode) when the training data's ratings are weights and the model is trained by
 * gradients on implicit data, else 0 (every positive alike). */
float cli_confidence_alpha(const fr_run_config *c, const fr_data *data);

/* The main metrics of r at the cut-off 10 (else the first): "rmse 0.9123  mae 0.7201",
 * "hr@10 0.6000  ndcg@10 0.3000", "hr@10_full ..."; "" when r holds none. For the
 * summary and the progress lines alike. */
void cli_metrics_text(const fr_eval_result *r, char *buf, size_t n);

#endif
