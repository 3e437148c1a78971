/* The loading options every command that reads ratings takes (train, eval, recommend,
 * data info, data split), parsed in one place and mapped onto fr_load_opts (fedrec/data.h).
 * A command puts CLI_LOAD_SPECS(&lo) into its arg_spec array and, after args_parse, calls
 * cli_load_opts_apply, which sets only the options the user gave: so `eval` keeps what a
 * model file's provenance recorded and an option given on its command line overrides it. */
#ifndef FEDREC_SRC_CLI_LOAD_OPTS_H
#define FEDREC_SRC_CLI_LOAD_OPTS_H

#include "cli/args.h"
#include "fedrec/data.h"

typedef struct cli_load_opts {
    const char *format;          /* --format auto|ml100k|ml1m|csv|ncf|delimited */
    const char *sep;             /* --sep tab|comma|semicolon|pipe|space|'::'|one character */
    bool header, no_header;      /* --header / --no-header */
    const char *user_col, *item_col, *rating_col, *time_col; /* --user-col ... (a header name or 1..n) */
    bool implicit;               /* --implicit: every row a positive, the rating column ignored */
    bool implicit_weight;        /* --implicit-weight: the same, the column kept as a weight */
    bool skip_bad_lines;         /* --skip-bad-lines */
    bool string_ids;             /* --string-ids */
} cli_load_opts;

/* The arg_spec entries of the loading options, to place inside a command's spec array. */
#define CLI_LOAD_SPECS(lo)                                                                                        \
    ARG_SPEC_STR("format", &(lo)->format, "F  auto | ml100k | ml1m | csv | ncf | delimited (default auto)"),       \
        ARG_SPEC_STR("sep", &(lo)->sep,                                                                           \
                     "D  field delimiter: tab, comma, semicolon, pipe, space, '::' or one character (default: "  \
                     "detected)"),                                                                                \
        ARG_SPEC_FLAG("header", &(lo)->header, "   the first line names the columns (default: detected)"),       \
        ARG_SPEC_FLAG("no-header", &(lo)->no_header, "   the first line is data"),                               \
        ARG_SPEC_STR("user-col", &(lo)->user_col, "C  the user column: a header name or a number from 1"),        \
        ARG_SPEC_STR("item-col", &(lo)->item_col, "C  the item column: a header name or a number from 1"),        \
        ARG_SPEC_STR("rating-col", &(lo)->rating_col, "C  the rating column: a header name or a number from 1"),  \
        ARG_SPEC_STR("time-col", &(lo)->time_col, "C  the timestamp column: a header name or a number from 1"),   \
        ARG_SPEC_FLAG("implicit", &(lo)->implicit,                                                                \
                      "   implicit feedback: every row a positive, the rating/count column ignored"),             \
        ARG_SPEC_FLAG("implicit-weight", &(lo)->implicit_weight,                                                  \
                      "   implicit feedback, the rating/count column kept as a weight >= 0: training counts a "   \
                      "positive 1 + α·log(1 + weight) (--confidence-alpha); the default for a column named "     \
                      "weight, count, plays ..."),                                                                \
        ARG_SPEC_FLAG("skip-bad-lines", &(lo)->skip_bad_lines, "   skip and count malformed lines"),          \
        ARG_SPEC_FLAG("string-ids", &(lo)->string_ids,                                                            \
                      "   ids are strings, numbered in order of first appearance (default: when the first "      \
                      "data line has an id that is not an integer)")

/* Sets in *o the loading options the user gave (specs: the command's parsed array). Returns
 * 0, or 2 after printing "fedrec CMD: --OPT: ..." for a value or a combination refused. */
int cli_load_opts_apply(const char *cmd, const cli_load_opts *lo, const arg_spec *specs, fr_load_opts *o);
/* The first loading option the user gave ("--sep", ...), or NULL: a command without a file
 * to read refuses them rather than ignoring them. */
const char *cli_load_opts_given(const cli_load_opts *lo, const arg_spec *specs);

#endif
