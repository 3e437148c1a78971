/* Option parsing for the fedrec program (see args.h): one parser for every command,
 * integers and reals range-checked from their specs, one message form. */
#include "cli/args.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *dashes(const char *name) { return strlen(name) == 1 ? "-" : "--"; }

/* %g without the exponent's plus sign: 1e30, not 1e+30. */
static const char *num(double v, char *buf, size_t n) {
    snprintf(buf, n, "%g", v);
    char *e = strstr(buf, "e+");
    if (e) memmove(e + 1, e + 2, strlen(e + 2) + 1);
    return buf;
}

/* "1..4096", ">= 0", "> 0", "(0, 1]": the range alone, for the help. */
static void range_text(const arg_spec *s, char *buf, size_t n) {
    char a[32], b[32];
    if (s->type == ARG_INT) {
        if (s->imax == UINT64_MAX) snprintf(buf, n, ">= %" PRIu64, s->imin);
        else snprintf(buf, n, "%" PRIu64 "..%" PRIu64, s->imin, s->imax);
    } else if (s->flags & ARG_WHOLE_COUNT) {
        snprintf(buf, n, "a fraction in (0, 1) or a whole count in 1..%.0f", s->max);
    } else if (isinf(s->max)) {
        snprintf(buf, n, "%s %s", s->flags & ARG_MIN_OPEN ? ">" : ">=", num(s->min, a, sizeof a));
    } else {
        snprintf(buf, n, "%c%s, %s%c", s->flags & ARG_MIN_OPEN ? '(' : '[', num(s->min, a, sizeof a),
                 num(s->max, b, sizeof b), s->flags & ARG_MAX_OPEN ? ')' : ']');
    }
}

void args_expectation(const arg_spec *s, char *buf, size_t n) {
    char r[96];
    range_text(s, r, sizeof r);
    const char *what = s->type == ARG_INT ? "an integer" : "a number";
    if (s->type == ARG_REAL && (s->flags & ARG_WHOLE_COUNT)) snprintf(buf, n, "%s", r);
    else if (r[0] == '>') snprintf(buf, n, "%s %s", what, r);
    else snprintf(buf, n, "%s in %s", what, r);
    if (s->note) {
        size_t k = strlen(buf);
        snprintf(buf + k, n - k, " (%s)", s->note);
    }
}

void args_help(const char *usage_line, const arg_spec *specs) {
    printf("usage: %s\n\noptions:\n", usage_line);
    for (const arg_spec *s = specs; s->name; s++) {
        printf("  %s%-*s %s", dashes(s->name), 20 - (int)strlen(dashes(s->name)), s->name, s->help ? s->help : "");
        if (s->type == ARG_INT || s->type == ARG_REAL) {
            char r[96];
            range_text(s, r, sizeof r);
            printf("; %s%s%s", r, s->note ? ", " : "", s->note ? s->note : "");
        }
        printf("\n");
    }
    printf("  --%-18s %s\n", "help", "this help");
}

bool args_seen(const arg_spec *specs, const void *dst) {
    for (const arg_spec *s = specs; s->name; s++)
        if (s->dst == dst) return s->seen;
    return false;
}

/* why: NULL (not a number of this kind), or what was wrong with a number. */
static int bad(const char *cmd, const arg_spec *s, const char *val, const char *why) {
    char exp[256];
    args_expectation(s, exp, sizeof exp);
    fprintf(stderr, "fedrec %s: %s%s: expected %s, got '%s'%s%s%s\n", cmd, dashes(s->name), s->name, exp, val,
            why ? " (" : "", why ? why : "", why ? ")" : "");
    return 2;
}

/* A decimal integer: [+-]?[0-9]+, nothing else (no spaces, no "1e6", no "0x10"). */
static int set_int(const char *cmd, arg_spec *s, const char *val) {
    const char *p = val;
    bool neg = *p == '-';
    if (*p == '+' || *p == '-') p++;
    if (!*p) return bad(cmd, s, val, NULL);
    uint64_t v = 0;
    bool over = false;
    for (; *p; p++) {
        if (*p < '0' || *p > '9') return bad(cmd, s, val, NULL);
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10) over = true;
        else v = v * 10 + d;
    }
    if (over || (neg && v != 0) || v < s->imin || v > s->imax) return bad(cmd, s, val, "out of range");
    *(uint64_t *)s->dst = v;
    return 0;
}

static int set_real(const char *cmd, arg_spec *s, const char *val) {
    if (!*val || strchr(" \t\n\v\f\r", *val)) return bad(cmd, s, val, NULL);
    char *end = NULL;
    errno = 0;
    double v = strtod(val, &end);
    if (*end || isnan(v)) return bad(cmd, s, val, NULL);
    bool ok = errno != ERANGE && isfinite(v); /* 1e400, 1e-400, inf */
    ok = ok && ((s->flags & ARG_MIN_OPEN) ? v > s->min : v >= s->min);
    ok = ok && ((s->flags & ARG_MAX_OPEN) ? v < s->max : v <= s->max);
    if (!ok) return bad(cmd, s, val, "out of range");
    if ((s->flags & ARG_WHOLE_COUNT) && v >= 1 && v != floor(v)) return bad(cmd, s, val, "not a whole count");
    *(double *)s->dst = v;
    return 0;
}

int args_parse(const char *cmd, int argc, char **argv, arg_spec *specs, const char **pos, int max_pos, int *npos,
               const char *usage_line) {
    *npos = 0;
    bool only_pos = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (only_pos || a[0] != '-' || a[1] == '\0') {
            if (*npos >= max_pos) {
                /* a command that takes its data by option: say which */
                bool data = false;
                for (const arg_spec *t = specs; t->name && !data; t++) data = !strcmp(t->name, "data");
                if (data && !only_pos && max_pos == 0)
                    fprintf(stderr, "fedrec %s: unexpected argument '%s' (the data is given with --data %s)\n", cmd, a, a);
                else
                    fprintf(stderr, "fedrec %s: unexpected argument '%s'\n", cmd, a);
                return 2;
            }
            pos[(*npos)++] = a;
            continue;
        }
        if (!strcmp(a, "--")) { only_pos = true; continue; }
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { args_help(usage_line, specs); return -1; }
        const char *name = a[1] == '-' ? a + 2 : a + 1;
        const char *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        arg_spec *s = NULL;
        for (arg_spec *t = specs; t->name; t++)
            if (strlen(t->name) == len && !strncmp(t->name, name, len)) { s = t; break; }
        if (!s) {
            fprintf(stderr, "fedrec %s: unknown option '%s' (see 'fedrec %s --help')\n", cmd, a, cmd);
            return 2;
        }
        if (s->type == ARG_FLAG) {
            if (eq) { fprintf(stderr, "fedrec %s: %s%s takes no value\n", cmd, dashes(s->name), s->name); return 2; }
            *(bool *)s->dst = true;
            s->seen = true;
            continue;
        }
        const char *val = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
        if (!val) { fprintf(stderr, "fedrec %s: %s%s needs a value\n", cmd, dashes(s->name), s->name); return 2; }
        int rc = 0;
        switch (s->type) {
        case ARG_FLAG: break;
        case ARG_STR: *(const char **)s->dst = val; break;
        case ARG_INT: rc = set_int(cmd, s, val); break;
        case ARG_REAL: rc = set_real(cmd, s, val); break;
        }
        if (rc) return rc;
        s->seen = true;
    }
    return 0;
}
