/* A small, strict option parser for the subcommands: "--name value", "--name=value",
 * flags, and positional arguments. Unknown options and malformed numbers are usage
 * errors that name the option, the value and what was expected. */
#ifndef FEDREC_SRC_CLI_ARGS_H
#define FEDREC_SRC_CLI_ARGS_H
#include <stdbool.h>
#include <stdint.h>

typedef enum { ARG_FLAG, ARG_STR, ARG_U64, ARG_I64, ARG_DBL } arg_type;

typedef struct arg_spec {
    const char *name;  /* long name without dashes; "k" also matches "-k" */
    arg_type type;
    void *dst;         /* bool*, const char**, uint64_t*, int64_t*, double* */
    const char *help;  /* "N  users to generate" */
    bool seen;         /* set by the parser */
} arg_spec;

/* Parses argv[1..argc) (argv[0] is the subcommand name). Positional arguments are
 * collected into pos[0..*npos) up to max_pos. Returns 0, or 2 after printing a usage
 * error to stderr; "--help" prints help and returns -1. */
int args_parse(int argc, char **argv, arg_spec *specs, const char **pos, int max_pos, int *npos,
               const char *usage_line);
void args_help(const char *usage_line, const arg_spec *specs);
#endif
