/* The loading options shared by every command that reads ratings (cli/load_opts.h): the
 * words of --sep, --header against --no-header, a column name implying a header, and the
 * library's own check of the result (fr_load_opts_check) as a usage error. */
#include "cli/load_opts.h"

#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

/* The delimiter --sep names, or NULL. */
static const char *sep_value(const char *s) {
    static const struct { const char *word, *sep; } words[] = {
        {"tab", "\t"}, {"\\t", "\t"}, {"\t", "\t"}, {"comma", ","}, {"semicolon", ";"}, {"pipe", "|"},
        {"space", " "}, {"colons", "::"}, {"::", "::"},
    };
    for (size_t k = 0; k < sizeof words / sizeof *words; k++)
        if (!strcmp(s, words[k].word)) return words[k].sep;
    if (strlen(s) == 1 && !strchr("\"\r\n0123456789.-", s[0])) return s;
    return NULL;
}

/* A column option: a name, or a number 1..n. */
static bool is_number(const char *s) { return *s && strspn(s, "0123456789") == strlen(s); }
/* A column number the readers take: 1..64. */
static bool column_number_ok(const char *s) {
    if (strlen(s) > 2 || s[0] == '0') return false;
    int v = s[1] ? (s[0] - '0') * 10 + (s[1] - '0') : s[0] - '0';
    return v >= 1 && v <= 64;
}

const char *cli_load_opts_given(const cli_load_opts *lo, const arg_spec *specs) {
    const struct { const void *field; const char *name; } opts[] = {
        {&lo->format, "--format"},         {&lo->sep, "--sep"},           {&lo->header, "--header"},
        {&lo->no_header, "--no-header"},   {&lo->user_col, "--user-col"}, {&lo->item_col, "--item-col"},
        {&lo->rating_col, "--rating-col"}, {&lo->time_col, "--time-col"}, {&lo->implicit, "--implicit"},
        {&lo->implicit_weight, "--implicit-weight"}, {&lo->skip_bad_lines, "--skip-bad-lines"},
        {&lo->string_ids, "--string-ids"},
    };
    for (size_t i = 0; i < sizeof opts / sizeof *opts; i++)
        if (args_seen(specs, opts[i].field)) return opts[i].name;
    return NULL;
}

int cli_load_opts_apply(const char *cmd, const cli_load_opts *lo, const arg_spec *specs, fr_load_opts *o) {
    if (args_seen(specs, &lo->format) && cli_parse_format(cmd, lo->format, &o->format)) return 2;
    if (args_seen(specs, &lo->sep)) {
        const char *d = sep_value(lo->sep);
        if (!d) {
            fprintf(stderr, "fedrec %s: --sep: expected tab, comma, semicolon, pipe, space, '::' or one character "
                    "(not a digit, '.', '-' or '\"'), got '%s'\n", cmd, lo->sep);
            return 2;
        }
        o->delimiter = d;
    }
    /* The fixed formats have fixed columns: a delimiter, header or column option would be ignored. */
    bool fixed = o->format != FR_FORMAT_AUTO && o->format != FR_FORMAT_DELIMITED;
    const void *shape[7] = {&lo->sep, &lo->header, &lo->no_header, &lo->user_col, &lo->item_col, &lo->rating_col,
                            &lo->time_col};
    static const char *const shape_name[7] = {"--sep", "--header", "--no-header", "--user-col", "--item-col",
                                              "--rating-col", "--time-col"};
    for (int k = 0; fixed && k < 7; k++)
        if (args_seen(specs, shape[k])) {
            fprintf(stderr, "fedrec %s: %s does not apply to --format %s, whose columns are fixed; use --format "
                    "auto or delimited\n", cmd, shape_name[k], cli_format_name(o->format));
            return 2;
        }
    if (lo->header && lo->no_header) {
        fprintf(stderr, "fedrec %s: --header and --no-header contradict each other; give one\n", cmd);
        return 2;
    }
    if (lo->header) { o->has_header = true; o->no_header = false; }
    if (lo->no_header) { o->no_header = true; o->has_header = false; }
    const char *const *cols[4] = {&lo->user_col, &lo->item_col, &lo->rating_col, &lo->time_col};
    const char **dst[4] = {&o->col_user, &o->col_item, &o->col_rating, &o->col_time};
    static const char *const flag[4] = {"--user-col", "--item-col", "--rating-col", "--time-col"};
    for (int k = 0; k < 4; k++) {
        if (!args_seen(specs, cols[k])) continue;
        const char *c = *cols[k];
        if (!*c || (is_number(c) && !column_number_ok(c))) {
            fprintf(stderr, "fedrec %s: %s: expected a header name or a column number in 1..64, got '%s'\n", cmd,
                    flag[k], c);
            return 2;
        }
        if (!is_number(c) && lo->no_header) {
            fprintf(stderr, "fedrec %s: %s %s names a header column, but --no-header says there is none; give a "
                    "column number\n", cmd, flag[k], c);
            return 2;
        }
        /* A name refers to the header line. */
        if (!is_number(c) && !o->no_header) o->has_header = true;
        *dst[k] = c;
    }
    if (lo->implicit) { o->implicit = true; o->implicit_weight = lo->implicit_weight; }
    if (lo->implicit_weight) o->implicit = o->implicit_weight = true;
    if (lo->skip_bad_lines) o->skip_bad_lines = true;
    if (lo->string_ids) o->string_ids = true;
    if (fr_load_opts_check(o)) {
        fprintf(stderr, "fedrec %s: %s\n", cmd, fr_errmsg()); /* "load options: ..." */
        return 2;
    }
    return 0;
}
