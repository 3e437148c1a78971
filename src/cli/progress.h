/* Progress lines of a long command (train's rounds and epochs). On a terminal every step
 * gets its line; elsewhere (a pipe, a log file) at most one line every few seconds, plus
 * the first step's and the last one's, so a log shows the run moving without a line per
 * round of a thousand-round run. Lines are written whole and flushed at once: a reader
 * of the pipe sees each line when it is printed, not when the program ends. */
#ifndef FEDREC_SRC_CLI_PROGRESS_H
#define FEDREC_SRC_CLI_PROGRESS_H
#include <stdbool.h>
#include <stdio.h>

/* On a pipe, the least time between two progress lines (seconds). */
#define CLI_PROGRESS_PIPE_SECONDS 5.0

typedef struct cli_progress {
    FILE *f;              /* where the lines go (NULL: nowhere, --quiet) */
    bool every;           /* a terminal: a line per step */
    double interval;      /* otherwise the least time between lines */
    double last;          /* monotonic time of the last line; < 0 before the first */
    char pending[512];    /* the latest line held back (printed by cli_progress_finish) */
} cli_progress;

/* Lines to f (NULL: none); every step when f is a terminal, else every `interval`
 * seconds (FEDREC_PROGRESS_SECONDS in the environment overrides it, for tests). */
void cli_progress_init(cli_progress *p, FILE *f);
/* A step's line (no newline): printed now, or held back until the interval has passed. */
void cli_progress_line(cli_progress *p, const char *line);
/* Prints the line held back, if any (the run's last step when it came too soon). */
void cli_progress_finish(cli_progress *p);
#endif
