/* Option parsing for the fedrec program (see args.h). */
#include "cli/args.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void args_help(const char *usage_line, const arg_spec *specs) {
    printf("usage: %s\n\noptions:\n", usage_line);
    for (const arg_spec *s = specs; s->name; s++)
        printf("  %s%-18s %s\n", strlen(s->name) == 1 ? "-" : "--", s->name, s->help ? s->help : "");
    printf("  --%-18s %s\n", "help", "this help");
}

static int bad(const char *cmd, const char *opt, const char *val, const char *what) {
    fprintf(stderr, "fedrec %s: --%s: expected %s, got '%s'\n", cmd, opt, what, val);
    return 2;
}

static int set_value(const char *cmd, arg_spec *s, const char *val) {
    char *end = NULL;
    errno = 0;
    switch (s->type) {
    case ARG_FLAG: break;
    case ARG_STR: *(const char **)s->dst = val; break;
    case ARG_U64: {
        if (!*val || *val == '-') return bad(cmd, s->name, val, "a non-negative integer");
        uint64_t v = strtoull(val, &end, 10);
        if (errno || *end) return bad(cmd, s->name, val, "a non-negative integer");
        *(uint64_t *)s->dst = v;
        break;
    }
    case ARG_I64: {
        int64_t v = strtoll(val, &end, 10);
        if (!*val || errno || *end) return bad(cmd, s->name, val, "an integer");
        *(int64_t *)s->dst = v;
        break;
    }
    case ARG_DBL: {
        double v = strtod(val, &end);
        if (!*val || errno || *end || !isfinite(v)) return bad(cmd, s->name, val, "a number");
        *(double *)s->dst = v;
        break;
    }
    }
    s->seen = true;
    return 0;
}

int args_parse(int argc, char **argv, arg_spec *specs, const char **pos, int max_pos, int *npos,
               const char *usage_line) {
    const char *cmd = argv[0];
    *npos = 0;
    bool only_pos = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (only_pos || a[0] != '-' || a[1] == '\0') {
            if (*npos >= max_pos) {
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
            if (eq) { fprintf(stderr, "fedrec %s: --%s takes no value\n", cmd, s->name); return 2; }
            *(bool *)s->dst = true;
            s->seen = true;
            continue;
        }
        const char *val = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
        if (!val) { fprintf(stderr, "fedrec %s: --%s needs a value\n", cmd, s->name); return 2; }
        int rc = set_value(cmd, s, val);
        if (rc) return rc;
    }
    return 0;
}
