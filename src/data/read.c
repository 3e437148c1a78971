/* Ratings readers: MovieLens u.data / ratings.dat / ratings.csv, NCF .rating and generic
 * delimited text, into fri_rows and then the CSR builder. This file is the driver (a file
 * read line by line, the spec chosen from its first non-blank line, rows appended) and the
 * public loaders; the pieces live beside it:
 *   text.h, text.c, number.c  the text toolkit (fields, trimming, control bytes, numbers),
 *                             shared with the metadata readers (meta.c);
 *   lreader.h, lreader.c      the line reader (1 MiB chunks, a NUL sentinel after them);
 *   format.h, format.c        the load options and format detection (the spec, headers);
 *   line.h, line.c            one line into a row: the one-pass scanner of the usual line
 *                             shape straight from the buffer, else the field parser, which
 *                             also words the errors;
 *   parallel.c                regular files of 64 MiB and more, parsed in byte ranges on a
 *                             pool with the same rows, statistics and errors;
 *   ncf.c                     NCF files: dense id maps of .rating files, test.negative.
 * Every malformed line is an error naming file, line, the value and what was expected,
 * unless skip_bad_lines counts it instead. fr_dataset_load_pair detects the training
 * file's format and reads the test file the same way. */
#include "data/line.h"
#include "data/read.h"

/* Whether the user or item field of line s[0, n) under c's spec is not an integer (a
 * string id; an integer out of range stays an error). */
static bool line_has_string_id(const fri_rdctx *c, const char *s, size_t n) {
    fri_fields f;
    fri_spec_split(&c->sp, s, n, &f);
    const int cols[2] = {c->sp.cu, c->sp.ci};
    for (int k = 0; k < 2; k++) {
        if (cols[k] < 0 || cols[k] >= f.n) continue;
        uint32_t id;
        if (fri_parse_id(f.s[cols[k]], f.len[cols[k]], &id) == FRI_NUM_BAD) return true;
    }
    return false;
}

/* Switches string ids on for c and rows when rows allows them (the loader gave tables). */
static void use_strings(fri_rdctx *c, fri_rows *rows, bool *fast) {
    rows->strings = true;
    c->us = rows->us;
    c->is = rows->is;
    c->sp.fast = *fast = false;
}

/* Reads one ratings file into rows (appending). fmt is the format to use (AUTO detects);
 * *used receives the format used. */
static fr_err read_rows(const char *path, const fr_load_opts *o, fr_format fmt, fri_rows *rows, fr_format *used,
                        fr_load_stats *stats) {
    fri_lreader lr;
    fr_err e = fri_lr_open(&lr, path);
    if (e) return e;
    fri_rdctx c = {.path = path, .o = o};
    bool have_spec = false, fast = false, par_done = false;
    uint64_t lines = 0, skipped = 0, first_bad = 0, file_size = 0;
    size_t rows_before = rows->n;
    int nr = fri_read_parallel_ranges(lr.fd, &file_size);
    for (;;) {
        if (fast && fri_line_fast_row(&lr, &c, rows)) {
            lines++;
            continue;
        }
        char *s;
        size_t n;
        bool unterminated;
        int got = fri_lr_next(&lr, &s, &n, &unterminated, &e);
        if (got < 0) goto done;
        if (got == 0) break;
        if (fri_text_blank(s, n)) continue;
        c.line = lr.line;
        c.unterminated = unterminated;
        if (!have_spec) {
            e = fri_spec_make(&c, fmt, s, n);
            if (e) goto done;
            have_spec = true;
            rows->has_time = rows->has_time || c.sp.ct >= 0;
            rows->implicit = rows->implicit || c.sp.implicit;
            rows->weights = rows->weights || c.sp.weight;
            fast = c.sp.fast;
            bool header = c.sp.header;
            /* String ids: asked for, already on (the training file's), or a first line of
             * data with them; a file with a header decides on its first data line. */
            if (rows->us && c.sp.fmt != FR_FORMAT_NCF &&
                (rows->strings || o->string_ids || (!header && line_has_string_id(&c, s, n))))
                use_strings(&c, rows, &fast);
            if (header && rows->us && !rows->strings && nr > 1 && c.sp.fmt != FR_FORMAT_NCF) {
                /* The first data line, when the buffer holds it whole, decides before the
                 * ranges start (a range with skip_bad_lines would skip string lines); one
                 * not in the buffer: serially, to be sure. */
                const char *d = lr.buf + lr.pos, *nl = memchr(d, '\n', lr.end - lr.pos);
                if (!nl) nr = 1;
                else {
                    size_t dn = (size_t)(nl - d);
                    if (dn && d[dn - 1] == '\r') dn--;
                    if (line_has_string_id(&c, d, dn)) use_strings(&c, rows, &fast);
                }
            }
            if (rows->strings) nr = 1; /* interning is serial: numbers follow the file's order */
            if (header) {
                long k = fri_text_control_byte(s, n);
                if (k >= 0) { e = fri_line_explain(&c, FR_ERR_PARSE, s, n); goto done; }
            }
            if (nr > 1 && !unterminated) {
                uint64_t at = lr.off - lr.end + (uint64_t)(header ? lr.pos : (size_t)(s - lr.buf));
                e = fri_read_parallel(&c, fast, lr.fd, at, file_size, nr, rows, &par_done, &lines, &skipped, &first_bad);
                if (e) goto done;
                if (par_done) break;
            }
            if (header) continue;
        }
        if (rows->us && !rows->strings && rows->n == rows_before && c.sp.fmt != FR_FORMAT_NCF &&
            line_has_string_id(&c, s, n))
            use_strings(&c, rows, &fast); /* the first data line after a header */
        lines++;
        int rc = fri_line_push(&c, fast, s, n, rows, &e);
        if (rc < 0) goto done;
        if (rc > 0) {
            if (!o->skip_bad_lines) goto done;
            if (!skipped) first_bad = c.line;
            skipped++;
            e = FR_OK;
        }
    }
    if (skipped) fr_errmsg_clear();
    if (!have_spec)
        e = fri_fail(FR_ERR_EMPTY, "%s%s: empty file; expected ratings", FRI_PATH(path));
    else if (rows->n == rows_before)
        e = fri_fail(FR_ERR_EMPTY, "%s%s: no ratings (%llu lines, %llu skipped as bad)", FRI_PATH(path),
                     (unsigned long long)lines, (unsigned long long)skipped);
done:
    if (stats) {
        stats->format = have_spec ? c.sp.fmt : fmt;
        stats->implicit = stats->implicit || (have_spec && c.sp.implicit);
        stats->weights = stats->weights || (have_spec && c.sp.weight);
        if (have_spec && !stats->columns[0]) memcpy(stats->columns, c.sp.columns, sizeof stats->columns);
        stats->lines += lines;
        stats->skipped += skipped;
        if (!stats->first_bad_line) stats->first_bad_line = first_bad;
        stats->bytes += par_done ? file_size : lr.bytes;
    }
    if (used) *used = have_spec ? c.sp.fmt : fmt;
    fri_lr_close(&lr);
    return e;
}

fr_err fri_read_rows(const char *path, const fr_load_opts *o, fri_rows *rows, fr_format *used,
                     fr_load_stats *stats) {
    fr_err e = fr_load_opts_check(o);
    return e ? e : read_rows(path, o, o->format, rows, used, stats);
}

/* ------------------------------------------------------------ public */

fr_err fr_dataset_load(fr_dataset **out, const char *path, const fr_load_opts *o, fr_load_stats *stats) {
    *out = NULL;
    fr_load_opts def;
    if (!o) { fr_load_opts_default(&def); o = &def; }
    fr_err e = fr_load_opts_check(o);
    if (e) return e;
    fr_load_stats own;
    if (!stats) stats = &own;
    memset(stats, 0, sizeof *stats);
    fri_strtab us = {0}, is = {0};
    fri_rows rows = {.us = &us, .is = &is};
    fr_format used = o->format;
    e = read_rows(path, o, o->format, &rows, &used, stats);
    if (e) { fri_rows_free(&rows); fri_strtab_free(&us); fri_strtab_free(&is); return e; }
    char *source = NULL; /* what NCF id maps record as the data's origin */
    if (used != FR_FORMAT_NCF) {
        fr_idmap *um = NULL, *im = NULL;
        const uint32_t *ul[1] = {rows.user}, *il[1] = {rows.item};
        size_t nn[1] = {rows.n};
        e = fri_idmap_build(&um, ul, nn, 1);
        if (!e) e = fri_idmap_build(&im, il, nn, 1);
        if (!e && rows.strings) e = fri_idmap_set_strs(um, &us);
        if (!e && rows.strings) e = fri_idmap_set_strs(im, &is);
        fri_strtab_free(&us);
        fri_strtab_free(&is);
        if (!e) e = fri_dataset_build(out, &rows, um, im);
        else fri_rows_free(&rows);
        fr_idmap_release(um);
        fr_idmap_release(im);
    } else {
        fri_strtab_free(&us);
        fri_strtab_free(&is);
        fr_idmap *um, *im;
        fri_rows *rs[1] = {&rows};
        e = fri_ncf_maps(path, rs, 1, o->ncf_items, &um, &im, &source);
        if (e) { fri_rows_free(&rows); return e; }
        e = fri_dataset_build(out, &rows, um, im);
        fr_idmap_release(um);
        fr_idmap_release(im);
    }
    if (!e) e = fri_dataset_set_source(*out, source ? source : path, !source);
    fri_free(source);
    if (e) { fr_dataset_free(*out); *out = NULL; return e; }
    stats->duplicates = (*out)->duplicates;
    (*out)->skipped = stats->skipped;
    (*out)->first_bad = stats->first_bad_line;
    return e;
}

fr_err fr_dataset_load_pair(fr_dataset **train, fr_dataset **test, const char *train_path, const char *test_path,
                            const fr_load_opts *o) {
    *train = *test = NULL;
    fr_load_opts def;
    if (!o) { fr_load_opts_default(&def); o = &def; }
    fr_err e = fr_load_opts_check(o);
    if (e) return e;
    fri_strtab us = {0}, is = {0};
    fri_rows a = {.us = &us, .is = &is}, b = {0};
    fr_idmap *um = NULL, *im = NULL;
    char *source = NULL; /* what NCF id maps record as the data's origin */
    fr_format used = o->format;
    fr_load_stats sa = {0}, sb = {0}; /* each file's skipped lines */
    e = read_rows(train_path, o, o->format, &a, &used, &sa);
    /* The test file is read as the training file was; an auto-detected delimited file
     * is detected again, since its columns came from its own first line. Its string ids
     * are numbered on from the training file's; integer training ids keep it integer. */
    if (a.strings) { b.us = &us; b.is = &is; b.strings = true; }
    if (!e) e = read_rows(test_path, o, used == FR_FORMAT_DELIMITED ? o->format : used, &b, NULL, &sb);
    if (e) goto fail;
    b.has_time = a.has_time = a.has_time || b.has_time;
    b.implicit = a.implicit = a.implicit || b.implicit;
    b.weights = a.weights = a.weights || b.weights;
    if (used == FR_FORMAT_NCF) {
        fri_rows *rs[2] = {&a, &b};
        e = fri_ncf_maps(train_path, rs, 2, o->ncf_items, &um, &im, &source);
    } else {
        const uint32_t *ul[2] = {a.user, b.user}, *il[2] = {a.item, b.item};
        size_t nn[2] = {a.n, b.n};
        e = fri_idmap_build(&um, ul, nn, 2);
        if (!e) e = fri_idmap_build(&im, il, nn, 2);
        if (!e && a.strings) e = fri_idmap_set_strs(um, &us);
        if (!e && a.strings) e = fri_idmap_set_strs(im, &is);
    }
    fri_strtab_free(&us);
    fri_strtab_free(&is);
    if (e) goto fail;
    e = fri_dataset_build(train, &a, um, im);
    if (!e) e = fri_dataset_build(test, &b, um, im);
    if (!e) e = fri_dataset_set_source(*train, source ? source : train_path, !source);
    if (!e) e = fri_dataset_set_source(*test, source ? source : test_path, !source);
    if (!e) {
        (*train)->skipped = sa.skipped;
        (*train)->first_bad = sa.first_bad_line;
        (*test)->skipped = sb.skipped;
        (*test)->first_bad = sb.first_bad_line;
    }
    if (e) {
        fr_dataset_free(*train);
        fr_dataset_free(*test);
        *train = *test = NULL;
        goto fail;
    }
    fr_idmap_release(um);
    fr_idmap_release(im);
    fri_free(source);
    return FR_OK;
fail:
    fri_strtab_free(&us);
    fri_strtab_free(&is);
    fri_rows_free(&a);
    fri_rows_free(&b);
    fr_idmap_release(um);
    fr_idmap_release(im);
    fri_free(source);
    return e;
}
