/* Progress lines, throttled off a terminal (see progress.h). */
#include "cli/progress.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"

void cli_progress_init(cli_progress *p, FILE *f) {
    memset(p, 0, sizeof *p);
    p->f = f;
    p->every = f && isatty(fileno(f));
    p->interval = CLI_PROGRESS_PIPE_SECONDS;
    const char *env = getenv("FEDREC_PROGRESS_SECONDS");
    if (env && *env) {
        char *end;
        double v = strtod(env, &end);
        if (!*end && v >= 0) p->interval = v;
    }
    p->last = -1;
}

static void emit(cli_progress *p, const char *line) {
    fputs(line, p->f);
    fputc('\n', p->f);
    if (p->f == stdout) cli_flush_stdout(); /* remembers a failure for the end */
    else fflush(p->f);
    p->last = cli_now_s();
    p->pending[0] = 0;
}

void cli_progress_line(cli_progress *p, const char *line) {
    if (!p->f) return;
    if (p->every || p->last < 0 || cli_now_s() - p->last >= p->interval) {
        emit(p, line);
        return;
    }
    snprintf(p->pending, sizeof p->pending, "%s", line);
}

void cli_progress_finish(cli_progress *p) {
    if (p->f && p->pending[0]) emit(p, p->pending);
}
