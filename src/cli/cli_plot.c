/* fedrec plot: one SVG chart of the --metrics-out files of one to four runs (a federated
 * and a centralized run side by side: x is the step, round or epoch). See plot.h. */
#include <stdio.h>
#include <string.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "cli/plot.h"

static const char *base_name(const char *path) {
    const char *s = strrchr(path, '/');
    return s && s[1] ? s + 1 : path;
}

int cli_plot(int argc, char **argv) {
    const char *out = NULL, *title = NULL;
    arg_spec specs[] = {
        ARG_SPEC_STR("out", &out, "FILE.svg  the chart to write (required)"),
        ARG_SPEC_STR("title", &title, "TEXT  the chart's title (default: the files' names)"),
        ARG_SPEC_END,
    };
    const char *pos[PLOT_MAX_RUNS + 1];
    int npos;
    const char *usage = "fedrec plot METRICS.jsonl [METRICS2.jsonl ...] --out FILE.svg";
    int rc = args_parse("plot", argc, argv, specs, pos, PLOT_MAX_RUNS, &npos, usage);
    if (rc) return rc < 0 ? 0 : rc;
    if (npos < 1 || !out) {
        fprintf(stderr, "fedrec plot: %s\nusage: %s\n",
                npos < 1 ? "give one to 4 --metrics-out files" : "--out FILE.svg is required", usage);
        return 2;
    }
    for (int i = 0; i < npos; i++)
        if (cli_check_input("plot", "METRICS", pos[i])) return 1;
    if (cli_check_output("plot", "--out", out, false)) return 1;
    plot_run *runs[PLOT_MAX_RUNS] = {0};
    char err[1024], auto_title[512] = "fedrec";
    rc = 0;
    for (int i = 0; i < npos && !rc; i++) {
        if (!(runs[i] = plot_run_new(base_name(pos[i])))) { fprintf(stderr, "fedrec plot: out of memory\n"); rc = 1; break; }
        if (plot_run_read(runs[i], pos[i], err, sizeof err)) { fprintf(stderr, "fedrec plot: %s\n", err); rc = 1; break; }
        size_t k = strlen(auto_title);
        snprintf(auto_title + k, sizeof auto_title - k, "%s%s", i ? " vs " : ": ", base_name(pos[i]));
    }
    if (!rc && plot_write_svg(out, runs, npos, title ? title : auto_title, err, sizeof err)) {
        fprintf(stderr, "fedrec plot: --out: %s\n", err);
        rc = 1;
    }
    for (int i = 0; i < npos; i++) plot_run_free(runs[i]);
    return rc;
}
