/* Subcommands of the fedrec program. Each takes argv starting at its own name and
 * returns the process exit status: 0 success, 1 failure, 2 usage error (an option's
 * value, or a config the library refuses: it is what the user wrote). */
#ifndef FEDREC_SRC_CLI_CLI_H
#define FEDREC_SRC_CLI_CLI_H
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "fedrec/fedrec.h"

int cli_data(int argc, char **argv);      /* cli_data.c */
int cli_train(int argc, char **argv);     /* cli_train.c */
int cli_eval(int argc, char **argv);      /* cli_eval.c */
int cli_recommend(int argc, char **argv); /* cli_eval.c */
int cli_plot(int argc, char **argv);      /* cli_plot.c */
int cli_net(int argc, char **argv);       /* cli_net.c: server and client */
int cli_tokens(int argc, char **argv);    /* cli_tokens.c */
int cli_privacy(int argc, char **argv);   /* cli_privacy.c */

/* --format names. Returns 0, or 2 after printing a usage error. */
int cli_parse_format(const char *cmd, const char *s, fr_format *out);
const char *cli_format_name(fr_format f);

/* The plural ending of a count's noun: "" for 1, "s" for any other ("1 round",
 * "0 rounds", "2 rounds"). */
static inline const char *cli_s(uint64_t n) { return n == 1 ? "" : "s"; }

/* util.c */
/* Prints "fedrec: <what>: <detailed message or strerror>" to stderr and returns 1. A
 * message the library had to cut (a very long path) keeps its reason: fr_strerror(e). */
int cli_fail(fr_err e, const char *what);
/* Writes s as a JSON string (null for NULL): quotes, backslashes and control characters
 * escaped, valid UTF-8 kept, any other byte read as Latin-1 (\u00XX). */
void cli_json_str(FILE *f, const char *s);
/* Seconds on the monotonic clock (for durations). */
double cli_now_s(void);
/* The largest --threads: 4 per online core, at most 1024. */
uint64_t cli_max_threads(void);
/* Before any work: 0 if path (a file or a directory; NULL: none) can be read, else 1
 * after printing "fedrec CMD: OPT: cannot read 'PATH': REASON" (whole: the library's
 * messages are cut at ~1000 bytes, and a long path would lose the reason). */
int cli_check_input(const char *cmd, const char *opt, const char *path);
/* Before any work: 0 if path can be written, else 1 after printing "fedrec CMD: OPT:
 * cannot write 'PATH': ...". path must not be a directory; a file the library writes
 * whole (a temporary file renamed into place) needs a writable directory; a file opened
 * in place (in_place) needs only itself to be writable if it exists (/dev/stdout). */
int cli_check_output(const char *cmd, const char *opt, const char *path, bool in_place);
/* Flushes standard output mid-command (progress lines), remembering why it failed. */
void cli_flush_stdout(void);
/* After a command: flushes standard output; if that or any earlier write to it failed,
 * prints "fedrec CMD: writing to standard output failed: REASON" and returns rc or 1. */
int cli_finish_stdout(const char *cmd, int rc);
#endif
