/* A small, strict option parser for the subcommands: "--name value", "--name=value",
 * flags, and positional arguments. Every numeric option carries its range in its spec and
 * the parser checks it, so a value the user gives is either taken exactly or refused with
 * one message form:
 *     fedrec CMD: --OPT: expected <what and range>[ (note)], got '<text>'[ (out of range)]
 * (exit status 2). Nothing wraps, nothing is silently cut, and no value given means
 * "default": whether an option was given is its `seen` flag (args_seen), never its value. */
#ifndef FEDREC_SRC_CLI_ARGS_H
#define FEDREC_SRC_CLI_ARGS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    ARG_FLAG, /* bool */
    ARG_STR,  /* const char * (borrowed from argv) */
    ARG_INT,  /* uint64_t, a decimal integer in [imin, imax] */
    ARG_REAL, /* double, a finite number in [min, max] (ends opened by flags) */
} arg_type;

enum {
    ARG_MIN_OPEN = 1u,    /* ARG_REAL: min is excluded (value > min) */
    ARG_MAX_OPEN = 2u,    /* ARG_REAL: max is excluded (value < max) */
    ARG_WHOLE_COUNT = 4u, /* ARG_REAL: a value >= 1 is a count and must be a whole number
                             (a value in (0, 1) is a fraction): --clients-per-round */
};

typedef struct arg_spec {
    const char *name;  /* long name without dashes; a one-letter name also matches "-k" */
    arg_type type;
    void *dst;         /* bool*, const char**, uint64_t*, double* */
    const char *help;  /* "N  users to generate"; the range is appended by args_help */
    uint64_t imin, imax; /* ARG_INT range, inclusive */
    double min, max;   /* ARG_REAL range; max = INFINITY: any finite value */
    unsigned flags;    /* ARG_MIN_OPEN | ARG_MAX_OPEN | ARG_WHOLE_COUNT */
    const char *note;  /* what a special value means, in help and errors: "0 = all cores" */
    bool seen;         /* set by the parser: the user gave this option */
} arg_spec;

#define ARG_SPEC_FLAG(n, d, h) {.name = (n), .type = ARG_FLAG, .dst = (d), .help = (h)}
#define ARG_SPEC_STR(n, d, h) {.name = (n), .type = ARG_STR, .dst = (d), .help = (h)}
#define ARG_SPEC_INT(n, d, lo, hi, nt, h) \
    {.name = (n), .type = ARG_INT, .dst = (d), .imin = (lo), .imax = (hi), .note = (nt), .help = (h)}
#define ARG_SPEC_REAL(n, d, lo, hi, fl, nt, h) \
    {.name = (n), .type = ARG_REAL, .dst = (d), .min = (lo), .max = (hi), .flags = (fl), .note = (nt), .help = (h)}
#define ARG_SPEC_END {.name = NULL}

/* The largest value a float-valued option takes (its config field is a float). */
#define ARG_FLOAT_MAX 1e30

/* Parses argv[1..argc) of command cmd ("train", "data split": the name in messages).
 * Positional arguments are collected into pos[0..*npos) up to max_pos.
 * Returns 0, or 2 after printing a usage error to stderr; "--help" prints help to stdout
 * and returns -1. */
int args_parse(const char *cmd, int argc, char **argv, arg_spec *specs, const char **pos, int max_pos, int *npos,
               const char *usage_line);
void args_help(const char *usage_line, const arg_spec *specs);
/* Whether the option whose destination is dst was given (its spec's seen flag). */
bool args_seen(const arg_spec *specs, const void *dst);
/* Writes "an integer in 1..4096" / "a number in (0, 1]" ... for s into buf. */
void args_expectation(const arg_spec *s, char *buf, size_t n);
#endif
