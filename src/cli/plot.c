/* Charts of training runs as SVG (see plot.h). The records are read with cJSON; the SVG
 * is plain text: two panels of polylines (one per run and metric, one point per record
 * that has the metric), axes with ticks chosen on 1-2-5 steps, a legend. Every label is
 * escaped for XML, so a file name with '<' or '&' still gives a well-formed file. */
#include "cli/plot.h"

#include <cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

/* The metrics drawn in the top panel, in legend order, with their colours. */
static const struct { const char *key, *colour; } METRICS[] = {
    {"hr@10", "#1f77b4"},      {"ndcg@10", "#ff7f0e"},      {"rmse", "#2ca02c"},
    {"mae", "#d62728"},        {"hr@10_full", "#9467bd"},   {"ndcg@10_full", "#8c564b"},
};
#define N_METRICS (sizeof METRICS / sizeof *METRICS)
#define LOSS N_METRICS /* series index of the loss */
#define N_SERIES (N_METRICS + 1)

typedef struct series {
    size_t n, cap;
    double *x, *y;
} series;

struct plot_run {
    char *label;
    int unit;          /* 0 unknown, 1 round, 2 epoch */
    size_t steps;      /* records */
    double last_x;
    series s[N_SERIES];
};

plot_run *plot_run_new(const char *label) {
    plot_run *r = calloc(1, sizeof *r);
    if (r && !(r->label = strdup(label ? label : "run"))) { free(r); r = NULL; }
    return r;
}

void plot_run_free(plot_run *r) {
    if (!r) return;
    for (size_t k = 0; k < N_SERIES; k++) { free(r->s[k].x); free(r->s[k].y); }
    free(r->label);
    free(r);
}

size_t plot_run_steps(const plot_run *r) { return r->steps; }

static bool push(series *s, double x, double y) {
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 64;
        double *nx = realloc(s->x, cap * sizeof *nx);
        if (!nx) return false;
        s->x = nx;
        double *ny = realloc(s->y, cap * sizeof *ny);
        if (!ny) return false;
        s->y = ny;
        s->cap = cap;
    }
    s->x[s->n] = x;
    s->y[s->n++] = y;
    return true;
}

static const char *json_type(const cJSON *v) {
    return cJSON_IsString(v) ? "a string" : cJSON_IsBool(v) ? "a boolean" : cJSON_IsArray(v) ? "an array"
         : cJSON_IsObject(v) ? "an object" : cJSON_IsNull(v) ? "null" : "a number";
}

int plot_run_add(plot_run *r, const char *line, const char *file, unsigned long lineno, char *err, size_t errn) {
    const char *p = line;
    while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') p++;
    if (!*p) return 0; /* a blank line */
    const char *end = NULL;
    cJSON *o = cJSON_ParseWithOpts(line, &end, false);
    int rc = 1;
    if (!o) {
        snprintf(err, errn, "%s:%lu: not JSON (at byte %ld): expected one --metrics-out record per line", file, lineno,
                 end ? (long)(end - line) + 1 : 1L);
        return 1;
    }
    if (end) while (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n') end++;
    if (end && *end) {
        snprintf(err, errn, "%s:%lu: text after the JSON object (at byte %ld)", file, lineno, (long)(end - line) + 1);
        goto out;
    }
    if (!cJSON_IsObject(o)) {
        snprintf(err, errn, "%s:%lu: %s; expected a JSON object (a --metrics-out record)", file, lineno, json_type(o));
        goto out;
    }
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "summary"))) { /* the run's closing record */
        rc = 0;
        goto out;
    }
    const cJSON *rd = cJSON_GetObjectItemCaseSensitive(o, "round"), *ep = cJSON_GetObjectItemCaseSensitive(o, "epoch");
    if (!rd == !ep) {
        snprintf(err, errn, "%s:%lu: %s; expected a --metrics-out record of a round or an epoch", file, lineno,
                 rd ? "both \"round\" and \"epoch\"" : "no \"round\" or \"epoch\"");
        goto out;
    }
    const cJSON *st = rd ? rd : ep;
    const char *unit = rd ? "round" : "epoch";
    if (!cJSON_IsNumber(st) || !(st->valuedouble >= 0) || st->valuedouble != floor(st->valuedouble) ||
        st->valuedouble > 1e15) {
        snprintf(err, errn, "%s:%lu: \"%s\" is %s; expected a whole number >= 0", file, lineno, unit,
                 cJSON_IsNumber(st) ? "not a whole number >= 0" : json_type(st));
        goto out;
    }
    int u = rd ? 1 : 2;
    if (r->unit && r->unit != u) {
        snprintf(err, errn, "%s:%lu: %s record after %s records: one file holds one run", file, lineno, unit,
                 r->unit == 1 ? "round" : "epoch");
        goto out;
    }
    double x = st->valuedouble, y[N_SERIES];
    bool has[N_SERIES];
    for (size_t k = 0; k < N_SERIES; k++) {
        const char *key = k == LOSS ? "loss" : METRICS[k].key;
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
        has[k] = v && cJSON_IsNumber(v) && isfinite(v->valuedouble);
        y[k] = has[k] ? v->valuedouble : NAN;
        if (v && !cJSON_IsNumber(v) && !cJSON_IsNull(v)) { /* null: a loss that was not finite */
            snprintf(err, errn, "%s:%lu: \"%s\" is %s; expected a number", file, lineno, key, json_type(v));
            goto out;
        }
    }
    if (r->steps && x <= r->last_x) /* a resumed run: what follows this step is replaced */
        for (size_t k = 0; k < N_SERIES; k++)
            while (r->s[k].n && r->s[k].x[r->s[k].n - 1] >= x) r->s[k].n--;
    for (size_t k = 0; k < N_SERIES; k++)
        if (has[k] && !push(&r->s[k], x, y[k])) {
            snprintf(err, errn, "%s:%lu: out of memory", file, lineno);
            goto out;
        }
    r->unit = u;
    r->last_x = x;
    r->steps++;
    rc = 0;
out:
    cJSON_Delete(o);
    return rc;
}

int plot_run_read(plot_run *r, const char *path, char *err, size_t errn) {
    FILE *f = fopen(path, "r");
    if (!f) { snprintf(err, errn, "cannot read '%s': %s", path, strerror(errno)); return 1; }
    char *line = NULL;
    size_t cap = 0;
    unsigned long no = 0;
    int rc = 0;
    for (;;) {
        /* getline is POSIX 2008 */
        errno = 0;
        ssize_t len = getline(&line, &cap, f);
        if (len < 0) {
            if (ferror(f)) { snprintf(err, errn, "reading '%s' failed: %s", path, strerror(errno)); rc = 1; }
            break;
        }
        no++;
        if (memchr(line, 0, (size_t)len)) {
            snprintf(err, errn, "%s:%lu: a NUL byte: not a --metrics-out file", path, no);
            rc = 1;
            break;
        }
        if ((rc = plot_run_add(r, line, path, no, err, errn))) break;
    }
    free(line);
    fclose(f);
    if (!rc && !r->steps) {
        snprintf(err, errn, "%s: no records (a --metrics-out file has one JSON object per round or epoch)", path);
        rc = 1;
    }
    return rc;
}

/* ------------------------------------------------------------------ SVG */

/* Chart geometry (pixels). */
#define W 900
#define H 640
#define LEFT 80
#define RIGHT 640       /* plot area's right edge; the legend is beyond it */
#define TOP1 50         /* metrics panel */
#define BOT1 320
#define TOP2 380        /* loss panel */
#define BOT2 580

typedef struct axis { double lo, hi, step; } axis;

/* A range with ticks on 1-2-5 steps covering [lo, hi]. */
static axis nice_axis(double lo, double hi, int ticks) {
    if (!(hi > lo)) { double c = isfinite(lo) ? lo : 0; lo = c - 1; hi = c + 1; }
    double raw = (hi - lo) / ticks, mag = pow(10, floor(log10(raw))), f = raw / mag;
    double step = (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
    axis a = {floor(lo / step) * step, ceil(hi / step) * step, step};
    return a;
}

static void xml_text(FILE *f, const char *s) {
    for (; *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&apos;", f); break;
        default:
            if ((unsigned char)*s < 0x20) fputc(' ', f); /* no control characters in XML 1.0 */
            else fputc(*s, f);
        }
    }
}

/* A tick label: "%.6g", with a value within rounding of 0 shown as 0 (not 1.2e-17). */
static void tick_label(double v, double step, char *buf, size_t n) {
    snprintf(buf, n, "%.6g", fabs(v) < step * 1e-9 ? 0.0 : v);
}

static double px(const axis *a, double v, double p0, double p1) { return p0 + (v - a->lo) / (a->hi - a->lo) * (p1 - p0); }

static void panel(FILE *f, const axis *ax, const axis *ay, int top, int bot, const char *ylabel, const char *xlabel) {
    fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#999\"/>\n", LEFT, top,
            RIGHT - LEFT, bot - top);
    char b[48];
    for (double v = ax->lo; v <= ax->hi + ax->step * 1e-6; v += ax->step) {
        double x = px(ax, v, LEFT, RIGHT);
        tick_label(v, ax->step, b, sizeof b);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#eee\"/>", x, top, x, bot);
        fprintf(f, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%s</text>\n", x, bot + 16, b);
    }
    for (double v = ay->lo; v <= ay->hi + ay->step * 1e-6; v += ay->step) {
        double y = px(ay, v, bot, top);
        tick_label(v, ay->step, b, sizeof b);
        fprintf(f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#eee\"/>", LEFT, y, RIGHT, y);
        fprintf(f, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n", LEFT - 6, y + 4, b);
    }
    fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">", (LEFT + RIGHT) / 2, bot + 34);
    xml_text(f, xlabel);
    fprintf(f, "</text>\n<text transform=\"translate(%d %d) rotate(-90)\" text-anchor=\"middle\">", LEFT - 54,
            (top + bot) / 2);
    xml_text(f, ylabel);
    fprintf(f, "</text>\n");
}

static const char *const DASH[PLOT_MAX_RUNS] = {"", " stroke-dasharray=\"8 5\"", " stroke-dasharray=\"2 4\"",
                                                " stroke-dasharray=\"10 4 2 4\""};

static void curve(FILE *f, const series *s, const axis *ax, const axis *ay, int top, int bot, const char *colour,
                  int run, const char *name) {
    fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\"%s points=\"", colour, DASH[run]);
    for (size_t i = 0; i < s->n; i++)
        fprintf(f, "%s%.1f,%.1f", i ? " " : "", px(ax, s->x[i], LEFT, RIGHT), px(ay, s->y[i], bot, top));
    fprintf(f, "\"><title>");
    xml_text(f, name);
    fprintf(f, "</title></polyline>\n");
    if (s->n <= 60) /* markers where they can be told apart (and a lone point is seen) */
        for (size_t i = 0; i < s->n; i++)
            fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" fill=\"%s\"/>", px(ax, s->x[i], LEFT, RIGHT),
                    px(ay, s->y[i], bot, top), colour);
    if (s->n <= 60) fputc('\n', f);
}

int plot_write_svg(const char *path, plot_run *const *runs, int n, const char *title, char *err, size_t errn) {
    if (n < 1 || n > PLOT_MAX_RUNS) { snprintf(err, errn, "1 to %d runs on a chart, not %d", PLOT_MAX_RUNS, n); return 1; }
    double xlo = INFINITY, xhi = -INFINITY, mlo = INFINITY, mhi = -INFINITY, llo = INFINITY, lhi = -INFINITY;
    bool units[3] = {false, false, false};
    for (int r = 0; r < n; r++) {
        units[runs[r]->unit] = true;
        for (size_t k = 0; k < N_SERIES; k++) {
            const series *s = &runs[r]->s[k];
            for (size_t i = 0; i < s->n; i++) {
                xlo = fmin(xlo, s->x[i]);
                xhi = fmax(xhi, s->x[i]);
                if (k == LOSS) { llo = fmin(llo, s->y[i]); lhi = fmax(lhi, s->y[i]); }
                else { mlo = fmin(mlo, s->y[i]); mhi = fmax(mhi, s->y[i]); }
            }
        }
    }
    if (!isfinite(xlo)) { xlo = 0; xhi = 1; }
    axis ax = nice_axis(xlo, xhi, 8), am = nice_axis(mlo, mhi, 5), al = nice_axis(llo, lhi, 4);
    if (ax.step < 1) ax = nice_axis(xlo, xlo + 8, 8); /* steps are whole */
    const char *xlabel = units[1] && units[2] ? "round (federated) / epoch (centralized)" : units[2] ? "epoch" : "round";
    FILE *f = fopen(path, "w");
    if (!f) { snprintf(err, errn, "cannot write '%s': %s", path, strerror(errno)); return 1; }
    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
               "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
               "font-family=\"sans-serif\" font-size=\"12\">\n<title>", W, H, W, H);
    xml_text(f, title);
    fprintf(f, "</title>\n<rect width=\"%d\" height=\"%d\" fill=\"white\"/>\n", W, H);
    fprintf(f, "<text x=\"%d\" y=\"28\" text-anchor=\"middle\" font-size=\"15\">", (LEFT + RIGHT) / 2);
    xml_text(f, title);
    fprintf(f, "</text>\n");
    bool any_metric = isfinite(mlo);
    panel(f, &ax, &am, TOP1, BOT1, "evaluation metric", xlabel);
    panel(f, &ax, &al, TOP2, BOT2, "training loss", xlabel);
    if (!any_metric)
        fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" fill=\"#777\">no evaluation metrics in the "
                   "records</text>\n", (LEFT + RIGHT) / 2, (TOP1 + BOT1) / 2);
    int ly = TOP1 + 4; /* legend */
    char name[512];
    for (int r = 0; r < n; r++)
        for (size_t k = 0; k < N_SERIES; k++) {
            const series *s = &runs[r]->s[k];
            if (!s->n) continue;
            const char *key = k == LOSS ? "loss" : METRICS[k].key, *colour = k == LOSS ? "#333333" : METRICS[k].colour;
            snprintf(name, sizeof name, "%s: %s", runs[r]->label, key);
            if (k == LOSS) curve(f, s, &ax, &al, TOP2, BOT2, colour, r, name);
            else curve(f, s, &ax, &am, TOP1, BOT1, colour, r, name);
            fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\" stroke-width=\"2\"%s/>", RIGHT + 14,
                    ly, RIGHT + 44, ly, colour, DASH[r]);
            fprintf(f, "<text x=\"%d\" y=\"%d\">", RIGHT + 50, ly + 4);
            xml_text(f, name);
            fprintf(f, "</text>\n");
            ly += 18;
        }
    fprintf(f, "</svg>\n");
    bool bad = ferror(f) != 0;
    int saved = errno;
    if (fclose(f) != 0 && !bad) { bad = true; saved = errno; }
    if (bad) {
        snprintf(err, errn, "writing '%s' failed: %s", path, saved ? strerror(saved) : "a write failed");
        return 1;
    }
    return 0;
}
