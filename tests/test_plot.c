/* fedrec plot and train --plot, end to end (the program FR_FEDREC_BIN): the SVG is
 * well-formed XML (a strict little checker below: one root, nested tags, quoted
 * attributes, only the five named entities and character references, no script and no
 * external reference), it has a curve per metric and run with a point per record, and a
 * garbled metrics file is refused naming its file and line. */
#include <criterion/criterion.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

/* ------------------------------------------------------------ a strict XML checker */

typedef struct xml_stats {
    int elements, polylines, circles, texts;
    int points[64]; /* coordinate pairs of each polyline */
    char err[256];
} xml_stats;

static bool name_char(char c) { return isalnum((unsigned char)c) || c == '-' || c == '_' || c == ':' || c == '.'; }

/* Character data or an attribute value up to stop: entities must be known. */
static bool chars(const char **p, char stop, xml_stats *st) {
    for (; **p && **p != stop; (*p)++) {
        if (**p == '<') { snprintf(st->err, sizeof st->err, "'<' in text"); return false; }
        if (**p == '&') {
            const char *e = strchr(*p, ';');
            static const char *const ok[] = {"&amp;", "&lt;", "&gt;", "&quot;", "&apos;"};
            bool good = false;
            for (int k = 0; k < 5; k++) good |= e && (size_t)(e - *p + 1) == strlen(ok[k]) && !strncmp(*p, ok[k], strlen(ok[k]));
            if (e && (*p)[1] == '#') {
                good = e > *p + 2;
                for (const char *q = *p + 2; q < e; q++) good &= isxdigit((unsigned char)*q) || *q == 'x';
            }
            if (!good) { snprintf(st->err, sizeof st->err, "bad entity near '%.12s'", *p); return false; }
        }
    }
    return true;
}

static int count_pairs(const char *v, size_t n) {
    int pairs = 0;
    for (size_t i = 0; i < n; i++) pairs += v[i] == ',';
    return pairs;
}

static bool xml_check(const char *s, xml_stats *st) {
    memset(st, 0, sizeof *st);
    const char *p = s;
    if (!strncmp(p, "<?xml", 5)) {
        p = strstr(p, "?>");
        if (!p) { snprintf(st->err, sizeof st->err, "unclosed declaration"); return false; }
        p += 2;
    }
    char stack[64][32];
    int depth = 0, roots = 0;
    while (*p) {
        if (*p != '<') {
            if (depth == 0 && !isspace((unsigned char)*p)) { snprintf(st->err, sizeof st->err, "text outside the root"); return false; }
            if (!chars(&p, '<', st)) return false;
            continue;
        }
        p++;
        if (*p == '/') {
            p++;
            size_t n = 0;
            while (name_char(p[n])) n++;
            if (depth == 0 || strlen(stack[depth - 1]) != n || strncmp(stack[depth - 1], p, n) || p[n] != '>') {
                snprintf(st->err, sizeof st->err, "mismatched end tag '%.*s'", (int)n, p);
                return false;
            }
            depth--;
            p += n + 1;
            continue;
        }
        size_t n = 0;
        while (name_char(p[n])) n++;
        if (n == 0 || n >= 32) { snprintf(st->err, sizeof st->err, "bad tag name near '%.12s'", p); return false; }
        if (depth == 0 && roots++) { snprintf(st->err, sizeof st->err, "a second root"); return false; }
        char name[32];
        memcpy(name, p, n);
        name[n] = 0;
        if (!strcmp(name, "script") || !strcmp(name, "image") || !strcmp(name, "use") || !strcmp(name, "foreignObject")) {
            snprintf(st->err, sizeof st->err, "<%s> in a self-contained chart", name);
            return false;
        }
        st->elements++;
        bool poly = !strcmp(name, "polyline");
        st->polylines += poly;
        st->circles += !strcmp(name, "circle");
        st->texts += !strcmp(name, "text");
        p += n;
        for (;;) {
            while (isspace((unsigned char)*p)) p++;
            if (*p == '>' || (p[0] == '/' && p[1] == '>')) break;
            size_t an = 0;
            while (name_char(p[an])) an++;
            if (!an || p[an] != '=' || p[an + 1] != '"') {
                snprintf(st->err, sizeof st->err, "bad attribute in <%s> near '%.16s'", name, p);
                return false;
            }
            bool points = poly && an == 6 && !strncmp(p, "points", 6);
            bool href = (an == 4 && !strncmp(p, "href", 4)) || (an == 10 && !strncmp(p, "xlink:href", 10));
            if (href) { snprintf(st->err, sizeof st->err, "an external reference in <%s>", name); return false; }
            p += an + 2;
            const char *v = p;
            if (!chars(&p, '"', st)) return false;
            if (*p != '"') { snprintf(st->err, sizeof st->err, "unclosed attribute in <%s>", name); return false; }
            if (points && st->polylines <= 64) st->points[st->polylines - 1] = count_pairs(v, (size_t)(p - v));
            p++;
        }
        if (*p == '/') { p += 2; continue; }
        p++;
        if (depth == 64) { snprintf(st->err, sizeof st->err, "too deep"); return false; }
        strcpy(stack[depth++], name);
    }
    if (depth) { snprintf(st->err, sizeof st->err, "<%s> not closed", stack[depth - 1]); return false; }
    if (!roots) { snprintf(st->err, sizeof st->err, "no root element"); return false; }
    return true;
}

Test(plot, the_checker_refuses_what_a_browser_would) {
    xml_stats st;
    cr_assert(xml_check("<?xml version=\"1.0\"?>\n<svg a=\"1\"><g><text>a &amp; b</text></g></svg>\n", &st), "%s", st.err);
    const char *bad[] = {"<svg><g></svg>", "<svg a=1></svg>", "<svg>a & b</svg>", "<svg></svg><svg></svg>",
                         "<svg><text>x</text>", "<svg><script>x</script></svg>", "<svg><a href=\"x\">y</a></svg>",
                         "<svg a=\"<\"></svg>"};
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) cr_assert_not(xml_check(bad[k], &st), "accepted %s", bad[k]);
}

/* ------------------------------------------------------------ the program */

static int run(const char *fmt, const char *dir) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, fmt, FR_FEDREC_BIN, dir, dir, dir, dir, dir, dir);
    return WEXITSTATUS(system(cmd));
}

static char *slurp(const char *dir, const char *name) {
    char path[2048];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    char *s = tu_slurp(path, NULL);
    cr_assert_not_null(s, "%s was not written", path);
    return s;
}

Test(plot, federated_and_centralized_runs_on_one_chart) {
    char *dir = tu_tmpdir();
    cr_assert_eq(run("%s data generate --users 50 --items 30 --interactions 900 --seed 2 --out %s/r.tsv >/dev/null", dir), 0);
    cr_assert_eq(run("%s train --data %s/r.tsv --model gmf --rounds 4 --threads 1 --quiet --metrics-out %s/fed.jsonl "
                     "--plot %s/fed.svg", dir), 0);
    cr_assert_eq(run("%s train --data %s/r.tsv --model gmf --centralized --epochs 3 --eval-every 2 --threads 1 --quiet "
                     "--metrics-out %s/cen.jsonl", dir), 0);
    cr_assert_eq(run("%s plot %s/fed.jsonl %s/cen.jsonl --out %s/both.svg", dir), 0);
    xml_stats st;
    char *svg = slurp(dir, "fed.svg");
    cr_assert(xml_check(svg, &st), "train --plot: %s", st.err);
    /* hr@10, ndcg@10 and the loss, 4 rounds each */
    cr_assert_eq(st.polylines, 3);
    for (int k = 0; k < 3; k++) cr_assert_eq(st.points[k], 4, "curve %d has %d points", k, st.points[k]);
    cr_assert_eq(st.circles, 12);
    cr_assert(strstr(svg, ">round</text>"), "the x axis is labelled");
    cr_assert(strstr(svg, ">training loss</text>") && strstr(svg, ">evaluation metric</text>"));
    cr_assert(strstr(svg, "federated: hr@10</text>"), "the legend names the curves");
    free(svg);
    svg = slurp(dir, "both.svg");
    cr_assert(xml_check(svg, &st), "plot: %s", st.err);
    /* federated: hr@10, ndcg@10, loss (4 points); centralized: hr@10, ndcg@10 (epochs 2 and 3:
       every 2nd and the last) and the loss (3) */
    cr_assert_eq(st.polylines, 6);
    int want[6] = {4, 4, 4, 2, 2, 3};
    for (int k = 0; k < 6; k++) cr_assert_eq(st.points[k], want[k], "curve %d has %d points, expected %d", k, st.points[k], want[k]);
    cr_assert(strstr(svg, "round (federated) / epoch (centralized)"), "mixed steps are labelled");
    cr_assert(strstr(svg, "cen.jsonl: loss</text>") && strstr(svg, "fed.jsonl: ndcg@10</text>"));
    cr_assert(strstr(svg, "stroke-dasharray"), "the second run is dashed");
    free(svg);
    /* rating models: rmse and mae */
    cr_assert_eq(run("%s train --data %s/r.tsv --model mf --centralized --epochs 2 --threads 1 --quiet --plot %s/mf.svg", dir), 0);
    svg = slurp(dir, "mf.svg");
    cr_assert(xml_check(svg, &st), "%s", st.err);
    cr_assert_eq(st.polylines, 3);
    cr_assert(strstr(svg, "centralized: rmse</text>") && strstr(svg, "centralized: mae</text>"));
    free(svg);
    tu_rmtree(dir);
    free(dir);
}

Test(plot, garbled_records_name_file_and_line) {
    char *dir = tu_tmpdir();
    const char *cases[][2] = {
        {"{\"round\":1,\"loss\":0.5}\nnot json\n", "bad.jsonl:2: not JSON (at byte 1)"},
        {"{\"round\":1,\"loss\":0.5}\n\n{\"round\":2,\"loss\":\"x\"}\n", "bad.jsonl:3: \"loss\" is a string; expected a number"},
        {"{\"loss\":0.5}\n", "bad.jsonl:1: no \"round\" or \"epoch\""},
        {"{\"round\":1.5,\"loss\":0.5}\n", "bad.jsonl:1: \"round\" is not a whole number"},
        {"{\"round\":1}\n{\"epoch\":2}\n", "bad.jsonl:2: epoch record after round records"},
        {"[1,2]\n", "bad.jsonl:1: an array; expected a JSON object"},
        {"{\"round\":1} x\n", "bad.jsonl:1: text after the JSON object"},
        {"", "bad.jsonl: no records"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        char *path = tu_write(dir, "bad.jsonl", cases[k][0]);
        free(path);
        cr_assert_eq(run("%s plot %s/bad.jsonl --out %s/bad.svg 2>%s/err", dir), 1, "case %zu", k);
        char *err = slurp(dir, "err");
        cr_assert(strstr(err, cases[k][1]) && !strncmp(err, "fedrec plot: ", 13), "case %zu: '%s'", k, err);
        free(err);
    }
    /* a resumed run's appended records replace the steps they repeat */
    char *path = tu_write(dir, "re.jsonl", "{\"round\":1,\"loss\":3}\n{\"round\":2,\"loss\":2}\n{\"round\":3,\"loss\":9}\n"
                                           "{\"round\":3,\"loss\":1}\n{\"round\":4,\"loss\":0.5}\n");
    free(path);
    cr_assert_eq(run("%s plot %s/re.jsonl --out %s/re.svg", dir), 0);
    char *svg = slurp(dir, "re.svg");
    xml_stats st;
    cr_assert(xml_check(svg, &st), "%s", st.err);
    cr_assert_eq(st.polylines, 1);
    cr_assert_eq(st.points[0], 4);
    cr_assert(strstr(svg, "no evaluation metrics"), "a chart without metrics says so");
    free(svg);
    tu_rmtree(dir);
    free(dir);
}
