/* The field-by-field parse of one ratings line (data/line.h) and the wording of its
 * errors: every malformed line is an error naming the file, the line, the value and what
 * was expected. The one-pass scanners of the usual shape are inline in line.h. */
#include "data/line.h"

/* Whether a timestamp field starts as a date does (YYYY-MM- or YYYY/MM/): its error calls
 * it an invalid date rather than "not a number". */
static bool date_shaped(const char *s, size_t n) {
    fri_text_trim(&s, &n);
    if (n < 8 || (s[4] != '-' && s[4] != '/') || s[7] != s[4]) return false;
    for (int k = 0; k < 7; k++)
        if (k != 4 && (unsigned)(s[k] - '0') > 9) return false;
    return true;
}

/* Whether a value is a number written with a decimal comma ("3,5"). */
static bool decimal_comma(const char *s, size_t n) {
    size_t commas = 0, digits = 0;
    for (size_t k = 0; k < n; k++) {
        if (s[k] == ',') commas++;
        else if ((unsigned)(s[k] - '0') <= 9) digits++;
        else return false;
    }
    return commas == 1 && digits == n - 1 && s[0] != ',' && s[n - 1] != ',';
}

/* The error of a header line met among the data. */
static fr_err mid_header(const fri_rdctx *c, const char *s, size_t n) {
    return fri_fail(FR_ERR_PARSE, "%s%s:%llu: a header line in the middle of the data (files joined?): \"%.*s\"; "
                    "expected a data line (remove the line, or --skip-bad-lines to skip it)", FRI_PATH(c->path),
                    (unsigned long long)c->line, FRI_VAL(s, n));
}

fr_err fri_line_parse(const fri_rdctx *c, const char *s, size_t n, uint32_t *u, uint32_t *i, double *r, int64_t *t) {
    const fri_spec *sp = &c->sp;
    unsigned long long ln = (unsigned long long)c->line;
    fri_fields f;
    fri_spec_split(sp, s, n, &f);
    if (f.n < sp->nf_min || (sp->nf_max && f.n > sp->nf_max)) {
        const char *dn = fri_spec_delim_name(sp);
        if (f.n < sp->nf_min && fri_spec_unclosed_quote(sp, s, n)) /* the likely cause first */
            return fri_fail(FR_ERR_PARSE, "%s%s:%llu: a quoted field is not closed (a '\"' opens it and none ends it on "
                            "the line; a quote inside one is written \"\"): expected %s%d fields separated by %s, "
                            "got %d in \"%.*s\"", FRI_PATH(c->path), ln, sp->nf_max == sp->nf_min ? "" : "at least ",
                            sp->nf_min, dn, f.n, FRI_VAL(s, n));
        if (sp->nf_max == sp->nf_min)
            return fri_fail(FR_ERR_PARSE, "%s%s:%llu: expected %d fields separated by %s, got %d in \"%.*s\"", FRI_PATH(c->path), ln,
                            sp->nf_min, dn, f.n, FRI_VAL(s, n));
        if (sp->nf_max)
            return fri_fail(FR_ERR_PARSE, "%s%s:%llu: expected %d to %d fields separated by %s, got %d in \"%.*s\"",
                            FRI_PATH(c->path), ln, sp->nf_min, sp->nf_max, dn, f.n, FRI_VAL(s, n));
        return fri_fail(FR_ERR_PARSE, "%s%s:%llu: expected at least %d fields separated by %s, got %d in \"%.*s\"",
                        FRI_PATH(c->path), ln, sp->nf_min, dn, f.n, FRI_VAL(s, n));
    }
    static const char *const idname[2] = {"user id", "item id"};
    const int cols[2] = {sp->cu, sp->ci};
    uint32_t ids[2] = {0, 0};
    const char *sv[2] = {NULL, NULL};
    size_t sn[2] = {0, 0};
    for (int k = 0; k < 2; k++) {
        const char *v = f.s[cols[k]];
        size_t vn = f.len[cols[k]];
        if (c->us) { /* interned below, once the line is known to be good */
            fri_text_trim(&v, &vn);
            if (!vn)
                return fri_fail(FR_ERR_PARSE, "%s%s:%llu: %s is empty; expected a string id", FRI_PATH(c->path), ln,
                                idname[k]);
            sv[k] = v;
            sn[k] = vn;
            continue;
        }
        int rc = fri_parse_id(v, vn, &ids[k]);
        if (rc == FRI_NUM_BAD && fri_spec_header_like(sp, &f)) return mid_header(c, s, n);
        if (rc == FRI_NUM_BAD)
            return fri_fail(FR_ERR_PARSE, "%s%s:%llu: %s \"%.*s\" is not a number; expected an integer in [0, 2^31) "
                            "(the file's first data line has integer ids; for string ids: --string-ids, load "
                            "option string_ids)", FRI_PATH(c->path), ln, idname[k], FRI_VAL(v, vn));
        if (rc == FRI_NUM_RANGE)
            return fri_fail(FR_ERR_PARSE, "%s%s:%llu: %s \"%.*s\" is out of range; expected an integer in [0, 2^31)",
                            FRI_PATH(c->path), ln, idname[k], FRI_VAL(v, vn));
    }
    if (c->us) *u = *i = 0;
    else { *u = ids[0]; *i = ids[1]; }
    *i = ids[1];
    *r = 1.0;
    if (sp->cr >= 0) {
        const char *v = f.s[sp->cr];
        size_t vn = f.len[sp->cr];
        int rc = fri_parse_real(v, vn, r);
        fri_text_trim(&v, &vn);
        if (rc != FRI_NUM_OK && fri_spec_header_like(sp, &f)) return mid_header(c, s, n);
        if (rc != FRI_NUM_OK && sp->weight)
            return fri_fail(FR_ERR_PARSE, "%s%s:%llu: weight \"%.*s\" is not a number; expected a count or weight >= 0",
                            FRI_PATH(c->path), ln, FRI_VAL(v, vn));
        char pos[160] = "";
        if (rc != FRI_NUM_OK && sp->cr_pos) /* a column the user did not choose: say which and what else to do */
            snprintf(pos, sizeof pos, " (the rating column is column %d by position; a file without ratings: "
                     "--format delimited reads only the columns given)", sp->cr + 1);
        else if (rc != FRI_NUM_OK && decimal_comma(v, vn))
            snprintf(pos, sizeof pos, " (a decimal comma: write the decimal point '.', as in 3.5)");
        if (rc != FRI_NUM_OK && sp->implicit)
            return fri_fail(FR_ERR_PARSE, "%s%s:%llu: rating \"%.*s\" is not a number; expected a number (implicit: "
                            "every row is a positive, its value unused)%s", FRI_PATH(c->path), ln, FRI_VAL(v, vn),
                            pos[0] ? pos
                            : sp->header ? " (a column of words: --format delimited --header --user-col U --item-col I "
                                           "reads only the columns given)"
                                         : " (a column of words: --format delimited --user-col U --item-col I "
                                           "reads only the columns given)");
        if (rc != FRI_NUM_OK)
            return fri_fail(FR_ERR_PARSE, "%s%s:%llu: rating \"%.*s\" is not a number; expected a decimal in [%g, %g]%s",
                            FRI_PATH(c->path), ln, FRI_VAL(v, vn), c->o->rating_min, c->o->rating_max, pos);
        if (sp->weight && !(*r >= 0))
            return fri_fail(FR_ERR_RANGE, "%s%s:%llu: weight %.*s is negative; expected a count or weight >= 0",
                            FRI_PATH(c->path), ln, FRI_VAL(v, vn));
        if (!(*r >= sp->rmin && *r <= sp->rmax)) {
            /* A whole number above the range is most likely a count (plays, clicks). */
            bool count = *r > sp->rmax && *r == floor(*r);
            return fri_fail(FR_ERR_RANGE, "%s%s:%llu: rating %.*s is outside the allowed range [%g, %g]%s",
                            FRI_PATH(c->path), ln, FRI_VAL(v, vn), sp->rmin, sp->rmax,
                            count ? "; if the column holds counts (plays, clicks), read it as implicit feedback: "
                                    "--implicit (each row a positive) or --implicit-weight (the count kept as a "
                                    "weight); load options implicit, implicit_weight" : "");
        }
    }
    *t = 0;
    if (sp->ct >= 0 && sp->ct < f.n) {
        const char *v = f.s[sp->ct];
        size_t vn = f.len[sp->ct];
        int rc = fri_parse_i64(v, vn, t);
        if (rc == FRI_NUM_BAD) rc = fri_parse_datetime(v, vn, t);
        if (rc == FRI_NUM_BAD && fri_spec_header_like(sp, &f)) return mid_header(c, s, n);
        if (rc == FRI_NUM_BAD)
            return fri_fail(FR_ERR_PARSE, "%s%s:%llu: timestamp \"%.*s\" is not a %s; expected an integer (seconds) "
                            "or a date YYYY-MM-DD[THH:MM[:SS]]", FRI_PATH(c->path), ln, FRI_VAL(v, vn),
                            date_shaped(v, vn) ? "valid date" : "number");
        if (rc == FRI_NUM_RANGE)
            return fri_fail(FR_ERR_PARSE, "%s%s:%llu: timestamp \"%.*s\" is out of range; expected a 64-bit integer",
                            FRI_PATH(c->path), ln, FRI_VAL(v, vn));
    }
    if (c->us) {
        fr_err e = fri_strtab_intern(c->us, sv[0], sn[0], u);
        if (!e) e = fri_strtab_intern(c->is, sv[1], sn[1], i);
        if (e) return e == FR_ERR_NOMEM ? e : fri_fail_prefix(e, "%s%s:%llu", FRI_PATH(c->path), ln);
    }
    return FR_OK;
}

fr_err fri_line_explain(const fri_rdctx *c, fr_err e, const char *s, size_t n) {
    unsigned long long ln = (unsigned long long)c->line;
    fr_err bin = fri_text_check(c->path, ln, s, n);
    if (bin) return bin;
    if (c->unterminated && e == FR_ERR_PARSE)
        return fri_fail_prefix(FR_ERR_PARSE, "%s%s:%llu: truncated last line (no final newline)", FRI_PATH(c->path), ln);
    return e;
}
