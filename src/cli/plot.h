/* Charts of training runs: the --metrics-out records of one or more runs (JSON Lines,
 * fr_loop_step_json) drawn as one self-contained SVG file (no script, no external
 * reference: a browser opens it as it is). The top panel holds the evaluation metrics the
 * records have (hr@10 and ndcg@10, rmse and mae, their _full variants), the bottom one
 * the training loss, both against the step (round or epoch); runs are told apart by line
 * style, metrics by colour, and a legend names each curve. */
#ifndef FEDREC_SRC_CLI_PLOT_H
#define FEDREC_SRC_CLI_PLOT_H
#include <stddef.h>

typedef struct plot_run plot_run;

/* Most runs on one chart (line styles). */
#define PLOT_MAX_RUNS 4

/* A run named label (copied; e.g. the file's name). NULL when out of memory. */
plot_run *plot_run_new(const char *label);
void plot_run_free(plot_run *r);
/* Adds one record (one line of text; a blank line is skipped). A step at or before the
 * last one (a resumed run appending to its file) replaces what followed it. Returns 0,
 * or 1 with "FILE:LINE: what is wrong" in err. */
int plot_run_add(plot_run *r, const char *line, const char *file, unsigned long lineno, char *err, size_t errn);
/* Reads every record of a metrics file. Returns 0, or 1 with the message in err (the
 * file and line of a bad record, or why the file could not be read; a file without
 * records is an error). */
int plot_run_read(plot_run *r, const char *path, char *err, size_t errn);
/* Records held. */
size_t plot_run_steps(const plot_run *r);
/* Writes the chart of runs[0..n) to path. Returns 0, or 1 with the reason in err. */
int plot_write_svg(const char *path, plot_run *const *runs, int n, const char *title, char *err, size_t errn);
#endif
