/* Format detection of the ratings readers (data/format.h): the load options (defaults and
 * checks) and the spec a file is read with, from its first non-blank line.
 *
 * FR_FORMAT_AUTO, from the first non-blank line (fedrec/data.h says it for users):
 *   a first line "(user,item)" then tabs is an NCF test.negative file: an error that says
 *   so, whatever the format (unless a delimited file declares a header);
 *   with none of delimiter, col_*, has_header, no_header given and a numeric first field:
 *     1. the file name ends in ".rating"                     -> NCF (dense ids)
 *     2. the line contains "::"                              -> ML1M
 *     3. a tab: 4 fields -> ML100K, else                     -> DELIMITED (tab)
 *     4. ',': 4 fields -> CSV, else                          -> DELIMITED (',')
 *     5. ';' or '|'                                          -> DELIMITED (that char)
 *     otherwise the format cannot be detected (FR_ERR_PARSE);
 *   a first line of 3 or more fields, none a known column name, with a numeric third field
 *   and a user or item field that is not a number is data with string ids (read.c then
 *   interns the ids), not a header;
 *   otherwise a non-numeric first field is a header (has_header/no_header decide when given): its
 *   columns are placed by name (the lists below), the MovieLens order user,item,rating,
 *   timestamp with ',' staying CSV; a first line of 4 fields none of which is a known name
 *   keeps the fixed format by position (as before names were placed: CSV skips it as a
 *   header, ML100K and ML1M read it as data and explain why it is not);
 *   any of delimiter, col_*, has_header, no_header given: DELIMITED with the columns given
 *   and the others placed by header name or, without a header, by position.
 *   A delimited spec with the usual column order (user, item, rating, timestamp) lets the
 *   one-pass scanner read its lines (sp.fast).
 * FR_FORMAT_DELIMITED takes the options' delimiter (or detects one) and columns ("1".."n"
 * or header names) strictly: no rating column unless named.
 * The rating column: explicit ratings in [rating_min, rating_max]; implicit (rating 1: any
 * number) or implicit with weights (>= 0) when the options say so, or when the column was
 * placed by a count name (weight, count, plays...). */
#define _GNU_SOURCE /* memmem */
#include <math.h>
#include <strings.h>

#include "data/format.h"
#include "data/text.h"

/* Whether the string is a column number "1".."n" (returns it) or 0. */
static int col_number(const char *c) {
    if (!c || !*c) return 0;
    long v = 0;
    for (const char *p = c; *p; p++) {
        if (*p < '0' || *p > '9') return 0;
        v = v * 10 + (*p - '0');
        if (v > 100000) return 0;
    }
    return (int)v;
}

void fr_load_opts_default(fr_load_opts *o) {
    memset(o, 0, sizeof *o);
    o->format = FR_FORMAT_AUTO;
    o->rating_min = 0;
    o->rating_max = 10;
    o->implicit_threshold = NAN;
}

fr_err fr_load_opts_check(const fr_load_opts *o) {
    if (!o) return fri_fail(FR_ERR_INVALID, "load options are NULL");
    if ((int)o->format < FR_FORMAT_AUTO || o->format > FR_FORMAT_DELIMITED)
        return fri_fail(FR_ERR_INVALID, "load options: format %d; expected 0..%d", (int)o->format, FR_FORMAT_DELIMITED);
    if (!isfinite(o->rating_min) || !isfinite(o->rating_max) || o->rating_min > o->rating_max)
        return fri_fail(FR_ERR_INVALID, "load options: rating range [%g, %g]; expected finite min <= max",
                        o->rating_min, o->rating_max);
    if (isinf(o->implicit_threshold))
        return fri_fail(FR_ERR_INVALID, "load options: implicit threshold %g; expected a finite number or NaN",
                        o->implicit_threshold);
    if (o->has_header && o->no_header)
        return fri_fail(FR_ERR_INVALID, "load options: has_header and no_header both set; expected one of them");
    if (o->delimiter && *o->delimiter) {
        const char *d = o->delimiter;
        bool ok = strcmp(d, "::") == 0 || (strlen(d) == 1 && d[0] != '\n' && d[0] != '\r' && d[0] != '"' &&
                                           !(d[0] >= '0' && d[0] <= '9') && d[0] != '.' && d[0] != '-');
        if (!ok)
            return fri_fail(FR_ERR_INVALID, "load options: delimiter \"%s\"; expected one character or \"::\"", d);
    }
    const char *cols[4] = {o->col_user, o->col_item, o->col_rating, o->col_time};
    static const char *const what[4] = {"user", "item", "rating", "timestamp"};
    for (int k = 0; k < 4; k++) {
        if (!cols[k]) continue;
        if (!*cols[k]) return fri_fail(FR_ERR_INVALID, "load options: empty %s column; expected a name or 1..n", what[k]);
        bool digits = strspn(cols[k], "0123456789") == strlen(cols[k]);
        if (digits && col_number(cols[k]) <= 0)
            return fri_fail(FR_ERR_INVALID, "load options: %s column \"%s\"; expected a position 1..%d or a name",
                            what[k], cols[k], FRI_MAX_FIELDS);
        /* FR_FORMAT_AUTO: a name implies a header line. */
        if (!digits && (o->format == FR_FORMAT_DELIMITED ? !o->has_header : o->no_header))
            return fri_fail(FR_ERR_INVALID, "load options: %s column \"%s\" is a name; set has_header", what[k],
                            cols[k]);
    }
    return FR_OK;
}

const char *fri_spec_delim_name(const fri_spec *sp) {
    if (sp->dcolon) return "'::'";
    switch (sp->delim) {
    case '\t': return "tab";
    case ',': return "','";
    case ';': return "';'";
    case '|': return "'|'";
    default: return "the delimiter";
    }
}

static bool split_quoted(const fri_spec *sp, const char *s, size_t n, fri_fields *f);

void fri_spec_split(const fri_spec *sp, const char *s, size_t n, fri_fields *f) {
    if (!memchr(s, '"', n)) { fri_text_split(s, n, sp->delim, sp->dcolon, f); return; }
    (void)split_quoted(sp, s, n, f);
}

bool fri_spec_unclosed_quote(const fri_spec *sp, const char *s, size_t n) {
    fri_fields f;
    return memchr(s, '"', n) && split_quoted(sp, s, n, &f);
}

/* fri_spec_split of a line with a '"'; true when a quoted field has no closing quote. */
static bool split_quoted(const fri_spec *sp, const char *s, size_t n, fri_fields *f) {
    bool unclosed = false;
    const char *p = s, *end = s + n;
    f->n = 0;
    for (;;) {
        const char *b = p, *q = p;
        while (q < end && *q == ' ') q++;
        const char *fs = b, *fe;
        if (q < end && *q == '"') { /* quoted: up to the closing quote ("" is a quote inside) */
            const char *c = q + 1;
            while (c < end && !(*c == '"' && !(c + 1 < end && c[1] == '"'))) c += *c == '"' ? 2 : 1;
            if (c < end) { fs = q + 1; fe = c; p = c + 1; }
            else { fe = end; p = end; unclosed = true; } /* unclosed: the field as it is, for the messages */
        } else {
            p = q;
            fe = NULL;
        }
        /* the delimiter after the field (anything between a closing quote and it is dropped) */
        const char *d = p;
        for (; d < end; d++)
            if (sp->dcolon ? (*d == ':' && d + 1 < end && d[1] == ':') : *d == sp->delim) break;
        if (!fe) fe = d;
        if (f->n < FRI_MAX_FIELDS) {
            f->s[f->n] = fs;
            f->len[f->n] = (size_t)(fe - fs);
        }
        f->n++;
        if (d >= end) break;
        p = d + (sp->dcolon ? 2 : 1);
    }
    return unclosed;
}

/* Header names, compared after dropping case, '_', '-', ' ' and '.' ("User_ID" is
 * "userid"). The count names make the rating column implicit weights. */
static const char *const user_names[] = {
    "user", "userid", "users", "uid", "usr", "userindex", "customer", "customerid", "custid", "client", "clientid",
    "member", "memberid", "visitor", "visitorid", "reviewer", "reviewerid", "account", "accountid", "person",
    "personid", "listener", "listenerid", "viewer", "viewerid", "player", "playerid", "reader", "readerid",
    "subscriber", "subscriberid", "buyer", "buyerid", "profile", "profileid", NULL};
static const char *const item_names[] = {
    "item", "itemid", "items", "iid", "itemindex", "movie", "movieid", "film", "filmid", "artist", "artistid",
    "track", "trackid", "product", "productid", "song", "songid", "business", "businessid", "book", "bookid", "isbn",
    "asin", "game", "gameid", "anime", "animeid", "recipe", "recipeid", "article", "articleid", "video", "videoid",
    "album", "albumid", "show", "showid", "news", "newsid", "app", "appid", "course", "courseid", "beer", "beerid",
    "venue", "venueid", "restaurant", "restaurantid", "hotel", "hotelid", "place", "placeid", "poi", "poiid", "sku",
    "doc", "docid", "document", "documentid", "page", "pageid", "post", "postid", "photo", "photoid", "episode",
    "episodeid", "podcast", "podcastid", "station", "stationid", "jokeid", "joke", NULL};
static const char *const rating_names[] = {"rating", "ratings", "score", "stars", "star", "value", "rate", "grade",
                                           "overall", "preference", "ratingvalue", "userrating", NULL};
static const char *const count_names[] = {
    "weight", "weights", "count", "counts", "plays", "playcount", "plays", "listens", "listencount", "clicks",
    "clickcount", "views", "viewcount", "quantity", "qty", "frequency", "freq", "times", "purchases", "visits",
    "interactions", "confidence", "implicit", NULL};
static const char *const time_names[] = {"timestamp", "time", "date", "datetime", "ts", "unixtime", "unixtimestamp",
                                         "epoch", "created", "createdat", "utc", "when", "unixreviewtime",
                                         "dateadded", "datecreated", "addedat", "ratedat", NULL};

/* Suffixes of prefixed rating and time names ("star_rating", "review_date"), taken only
 * where no field has one of the names above. */
static const char *const rating_suffixes[] = {"rating", "stars", "score", NULL};
static const char *const time_suffixes[] = {"timestamp", "datetime", "date", "time", NULL};

/* The field without surrounding spaces and quotes. */
static void field_bare(const char **s, size_t *n) {
    fri_text_trim(s, n);
    if (*n >= 2 && (*s)[0] == '"' && (*s)[*n - 1] == '"') { (*s)++; *n -= 2; }
}

/* A header name as the lists above spell it: lower case, without '_', '-', ' ' and '.'
 * ("User_ID" is "userid"); its length, or -1 when longer than any name. */
static int name_key(const char *s, size_t n, char key[48]) {
    int k = 0;
    for (size_t j = 0; j < n; j++) {
        char ch = s[j];
        if (ch == '_' || ch == '-' || ch == ' ' || ch == '.') continue;
        if (k + 1 >= 48) return -1;
        key[k++] = (char)(ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch);
    }
    key[k] = 0;
    return k;
}

static bool name_in(const char *s, size_t n, const char *const *names) {
    char key[48];
    if (name_key(s, n, key) < 0) return false;
    for (; *names; names++)
        if (!strcmp(key, *names)) return true;
    return false;
}

/* Whether a header name ends in one of `suffixes` after at least one character of its own. */
static bool name_ends_in(const char *s, size_t n, const char *const *suffixes) {
    char key[48];
    int k = name_key(s, n, key);
    for (; k > 0 && *suffixes; suffixes++) {
        size_t m = strlen(*suffixes);
        if ((size_t)k > m && !memcmp(key + (size_t)k - m, *suffixes, m)) return true;
    }
    return false;
}

/* The header's fields as "a", "b", "c" into buf (at most 8 fields of 40 bytes). */
static void list_fields(const fri_fields *h, char *buf, size_t cap) {
    size_t o = 0;
    buf[0] = 0;
    for (int k = 0; k < h->n && k < FRI_MAX_FIELDS && k < 8 && o + 1 < cap; k++) {
        const char *s = h->s[k];
        size_t n = h->len[k];
        field_bare(&s, &n);
        int w = snprintf(buf + o, cap - o, "%s\"%.*s\"", k ? ", " : "", FRI_VAL(s, n));
        if (w < 0) break;
        o += (size_t)w;
    }
    if (h->n > 8 && o + 1 < cap) snprintf(buf + o, cap - o, ", ... (%d fields)", h->n);
}

/* Column index of a spec ("3" or a header name: exact, else ignoring case), -1 if absent. */
static fr_err resolve_col(const fri_rdctx *c, const char *want, const char *what, const fri_fields *hdr, int *out) {
    *out = -1;
    if (!want) return FR_OK;
    int num = col_number(want);
    if (num > 0) {
        if (num > FRI_MAX_FIELDS)
            return fri_fail(FR_ERR_INVALID, "%s%s: %s column %d; expected at most %d", FRI_PATH(c->path), what, num, FRI_MAX_FIELDS);
        *out = num - 1;
        return FR_OK;
    }
    if (!hdr) return fri_fail(FR_ERR_INVALID, "%s%s: %s column \"%s\" is a name but the file has no header", FRI_PATH(c->path), what, want);
    for (int pass = 0; pass < 2; pass++)
        for (int k = 0; k < hdr->n && k < FRI_MAX_FIELDS; k++) {
            const char *s = hdr->s[k];
            size_t n = hdr->len[k];
            field_bare(&s, &n);
            if (strlen(want) == n && (pass ? strncasecmp(s, want, n) : strncmp(s, want, n)) == 0) { *out = k; return FR_OK; }
        }
    char list[400];
    list_fields(hdr, list, sizeof list);
    return fri_fail(FR_ERR_PARSE, "%s%s:%llu: no column named \"%s\" (the %s column) in the header; its fields are %s",
                    FRI_PATH(c->path), (unsigned long long)c->line, want, what, list);
}

static int max4(int a, int b, int cc, int d) {
    int m = a > b ? a : b;
    if (cc > m) m = cc;
    return d > m ? d : m;
}

static bool ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

/* Whether a line is an NCF test.negative line: "(digits,digits)" then the end, a tab or
 * a space. */
static bool negative_line(const char *s, size_t n) {
    const char *p = s, *end = s + n;
    while (p < end && *p == ' ') p++;
    if (p == end || *p++ != '(') return false;
    for (int k = 0; k < 2; k++) {
        const char *q = p;
        while (p < end && *p >= '0' && *p <= '9') p++;
        if (p == q || p == end || *p++ != (k ? ')' : ',')) return false;
    }
    return p == end || *p == '\t' || *p == ' ';
}

/* The delimiter of a first line: "::", tab, ',', ';' or '|'; false if none. */
static bool detect_delim(fri_spec *sp, const char *first, size_t n) {
    if (memmem(first, n, "::", 2)) sp->dcolon = true;
    else if (memchr(first, '\t', n)) sp->delim = '\t';
    else if (memchr(first, ',', n)) sp->delim = ',';
    else if (memchr(first, ';', n)) sp->delim = ';';
    else if (memchr(first, '|', n)) sp->delim = '|';
    else return false;
    return true;
}

/* Whether field k of a header is one of the placed columns cols[0..3]. */
static bool col_taken(int *const cols[4], int k) {
    for (int j = 0; j < 4; j++)
        if (*cols[j] == k) return true;
    return false;
}

/* Places the columns of a header by name: those already placed (given) are kept and
 * their fields not reused. *count: the rating column came from a count name. */
static fr_err place_by_name(const fri_rdctx *c, fri_spec *sp, const fri_fields *h, const char *first, size_t n,
                            bool *count) {
    int *cols[4] = {&sp->cu, &sp->ci, &sp->cr, &sp->ct};
    bool given[4];
    for (int j = 0; j < 4; j++) given[j] = *cols[j] >= 0;
    int rating_kind = 0; /* 1: a rating name, 2: a count name */
    for (int k = 0; k < h->n && k < FRI_MAX_FIELDS; k++) {
        if (col_taken(cols, k)) continue;
        const char *s = h->s[k];
        size_t ln = h->len[k];
        field_bare(&s, &ln);
        if (sp->cu < 0 && name_in(s, ln, user_names)) sp->cu = k;
        else if (sp->ci < 0 && name_in(s, ln, item_names)) sp->ci = k;
        else if (!given[2] && rating_kind != 1 && name_in(s, ln, rating_names)) { sp->cr = k; rating_kind = 1; }
        else if (!given[2] && !rating_kind && name_in(s, ln, count_names)) { sp->cr = k; rating_kind = 2; }
        else if (sp->ct < 0 && name_in(s, ln, time_names)) sp->ct = k;
    }
    /* then prefixed names, for the columns still unplaced */
    for (int k = 0; k < h->n && k < FRI_MAX_FIELDS && (sp->cr < 0 || sp->ct < 0); k++) {
        if (col_taken(cols, k)) continue;
        const char *s = h->s[k];
        size_t ln = h->len[k];
        field_bare(&s, &ln);
        if (sp->cr < 0 && name_ends_in(s, ln, rating_suffixes)) { sp->cr = k; rating_kind = 1; }
        else if (sp->ct < 0 && name_ends_in(s, ln, time_suffixes)) sp->ct = k;
    }
    *count = rating_kind == 2;
    if (sp->cu >= 0 && sp->ci >= 0) return FR_OK;
    /* Which column could not be placed, the header's fields, and how to name it. */
    const char *example = NULL;
    size_t exn = 0;
    int exk = 0;
    for (int k = 0; k < h->n && k < FRI_MAX_FIELDS && !example; k++) {
        if (col_taken(cols, k)) continue;
        const char *s = h->s[k];
        size_t ln = h->len[k];
        field_bare(&s, &ln);
        if (ln) { example = s; exn = ln; exk = k + 1; }
    }
    char list[400], how[224];
    list_fields(h, list, sizeof list);
    bool both = sp->cu < 0 && sp->ci < 0;
    const char *which = both ? "user and item columns" : sp->cu < 0 ? "user column" : "item column";
    const char *flag = sp->cu < 0 ? "--user-col" : "--item-col";
    bool numbers = false; /* a line of data with ids that are not numbers looks like this too */
    for (int k = 0; k < h->n && k < FRI_MAX_FIELDS; k++) {
        const char *s = h->s[k];
        size_t ln = h->len[k];
        field_bare(&s, &ln);
        numbers |= fri_text_is_numeric(s, ln);
    }
    if (both)
        snprintf(how, sizeof how, "name them: --user-col NAME --item-col NAME (load options col_user, col_item)%s",
                 numbers ? "; if this line is data (string ids are read as such): --no-header (load option "
                           "no_header)" : "");
    else if (example)
        snprintf(how, sizeof how, "name it: %s %.*s (or %s %d; load option %s)", flag, FRI_VAL(example, exn), flag,
                 exk, sp->cu < 0 ? "col_user" : "col_item");
    else snprintf(how, sizeof how, "name it: %s NAME (load option %s)", flag, sp->cu < 0 ? "col_user" : "col_item");
    (void)first; (void)n;
    return fri_fail(FR_ERR_PARSE, "%s%s:%llu: cannot place the %s of the header: its fields are %s, and none is a "
                    "known %s name (%s); %s", FRI_PATH(c->path), (unsigned long long)c->line, which, list,
                    both ? "user or item" : sp->cu < 0 ? "user" : "item",
                    sp->cu < 0 ? "user, userId, user_id, uid, customer, client, member, visitor, ..."
                               : "item, itemId, movieId, artist, track, product, song, business, book, ...",
                    how);
}

/* Writes into sp->columns which header field each column was read from, and the fields
 * not read (see fr_load_stats.columns). */
static void describe_columns(fri_spec *sp, const fri_fields *h, bool weight) {
    static const char *const what[4] = {"user", "item", "rating", "time"};
    int cols[4] = {sp->cu, sp->ci, sp->cr, sp->ct};
    char *b = sp->columns;
    size_t cap = sizeof sp->columns, o = 0;
    b[0] = 0;
#define DESC_ADD(...) \
    do { \
        if (o < cap) { \
            int w_ = snprintf(b + o, cap - o, __VA_ARGS__); \
            o = w_ < 0 ? cap : o + (size_t)w_; \
        } \
    } while (0)
    for (int j = 0; j < 4; j++) {
        if (cols[j] < 0 || cols[j] >= h->n) continue;
        const char *s = h->s[cols[j]];
        size_t ln = h->len[cols[j]];
        field_bare(&s, &ln);
        DESC_ADD("%s%s %.*s", o ? ", " : "", j == 2 && weight ? "weight" : what[j], FRI_VAL(s, ln));
    }
    int unread = 0;
    for (int k = 0; k < h->n && k < FRI_MAX_FIELDS; k++) {
        if (k == cols[0] || k == cols[1] || k == cols[2] || k == cols[3]) continue;
        const char *s = h->s[k];
        size_t ln = h->len[k];
        field_bare(&s, &ln);
        DESC_ADD("%s%.*s", unread++ ? ", " : "; not read: ", FRI_VAL(s, ln));
    }
#undef DESC_ADD
    if (o >= cap) memcpy(b + cap - 4, "...", 4); /* cut: say so */
}

/* Whether a first line is data with string ids rather than a header: at least 3 fields,
 * none a known column name, a numeric third field (the rating or count), and a user or
 * item field that is not a number ("A2SUAM1J3GNN3B,0000013714,5.0"). */
static bool string_id_line(const fri_fields *f) {
    if (f->n < 3) return false;
    for (int k = 0; k < f->n && k < FRI_MAX_FIELDS; k++) {
        const char *s = f->s[k];
        size_t ln = f->len[k];
        field_bare(&s, &ln);
        if (name_in(s, ln, user_names) || name_in(s, ln, item_names) || name_in(s, ln, rating_names) ||
            name_in(s, ln, count_names) || name_in(s, ln, time_names))
            return false;
    }
    const char *v[3];
    size_t vn[3];
    for (int k = 0; k < 3; k++) { v[k] = f->s[k]; vn[k] = f->len[k]; field_bare(&v[k], &vn[k]); }
    return fri_text_is_numeric(v[2], vn[2]) && vn[0] && vn[1] &&
           (!fri_text_is_numeric(v[0], vn[0]) || !fri_text_is_numeric(v[1], vn[1]));
}

/* Whether a first line is data because a column given by number holds what it names: a
 * number in the rating column, an integer or a date in the time column (a header has their
 * names there). Last.fm 1K's log starts "user_000001<TAB>2009-05-04T23:08:57Z<TAB>...". */
static bool numbered_value_line(const fr_load_opts *o, const fri_fields *f) {
    int cr = col_number(o->col_rating), ct = col_number(o->col_time);
    if (cr >= 1 && cr <= f->n && cr <= FRI_MAX_FIELDS) {
        const char *s = f->s[cr - 1];
        size_t ln = f->len[cr - 1];
        double r;
        field_bare(&s, &ln);
        if (ln && fri_parse_real(s, ln, &r) == FRI_NUM_OK) return true;
    }
    if (ct >= 1 && ct <= f->n && ct <= FRI_MAX_FIELDS) {
        const char *s = f->s[ct - 1];
        size_t ln = f->len[ct - 1];
        int64_t t;
        field_bare(&s, &ln);
        if (ln && (fri_parse_i64(s, ln, &t) == FRI_NUM_OK || fri_parse_datetime(s, ln, &t) == FRI_NUM_OK)) return true;
    }
    return false;
}

bool fri_spec_header_like(const fri_spec *sp, const fri_fields *f) {
    if (sp->cu >= f->n || sp->ci >= f->n || sp->cu >= FRI_MAX_FIELDS || sp->ci >= FRI_MAX_FIELDS) return false;
    const char *u = f->s[sp->cu], *i = f->s[sp->ci];
    size_t un = f->len[sp->cu], in = f->len[sp->ci];
    field_bare(&u, &un);
    field_bare(&i, &in);
    return name_in(u, un, user_names) && name_in(i, in, item_names);
}

fr_err fri_spec_make(fri_rdctx *c, fr_format fmt, const char *first, size_t n) {
    fri_spec *sp = &c->sp;
    const fr_load_opts *o = c->o;
    if (!(fmt == FR_FORMAT_DELIMITED && o->has_header) && negative_line(first, n))
        return fri_fail(FR_ERR_PARSE, "%s%s:%llu: an NCF .negative file (evaluation negatives), not ratings: the line "
                        "starts \"%.*s\"; expected a ratings file (user, item, rating, timestamp)", FRI_PATH(c->path),
                        (unsigned long long)c->line, FRI_VAL(first, n));
    memset(sp, 0, sizeof *sp);
    sp->cu = 0; sp->ci = 1; sp->cr = 2; sp->ct = 3;
    sp->nf_min = sp->nf_max = 4;
    fri_fields f;
    bool count = false; /* the rating column was placed by a count name */
    bool by_name = false; /* the header's names placed the columns */
    bool named_cols = false;
    const char *given[4] = {o->col_user, o->col_item, o->col_rating, o->col_time};
    for (int k = 0; k < 4; k++) named_cols |= given[k] && !col_number(given[k]);
    bool opts = (o->delimiter && *o->delimiter) || o->has_header || o->no_header || given[0] || given[1] ||
                given[2] || given[3];
    if (fmt == FR_FORMAT_AUTO) {
        bool found = false;
        if (o->delimiter && *o->delimiter) {
            found = true;
            if (!strcmp(o->delimiter, "::")) sp->dcolon = true;
            else sp->delim = o->delimiter[0];
        } else {
            found = detect_delim(sp, first, n);
        }
        if (!found && !opts) {
            fr_err bin = fri_text_check(c->path, (unsigned long long)c->line, first, n);
            if (bin) return bin;
            return fri_fail(FR_ERR_PARSE,
                            "%s%s:%llu: cannot detect the format from \"%.*s\"; expected fields separated by tab, "
                            "',', ';', '|' or '::' (or give the delimiter: --sep)", FRI_PATH(c->path),
                            (unsigned long long)c->line, FRI_VAL(first, n));
        }
        if (!found) sp->delim = ','; /* a single column: the field count check explains */
        fri_spec_split(sp, first, n, &f);
        const char *f0 = f.s[0];
        size_t f0n = f.len[0];
        field_bare(&f0, &f0n);
        bool strdata = !o->has_header && !named_cols && string_id_line(&f);
        bool header = !strdata && (o->has_header || named_cols || (!o->no_header && !fri_text_is_numeric(f0, f0n)));
        if (header && !o->has_header && !named_cols && numbered_value_line(o, &f)) header = false;
        if (!opts && !header) {
            if (ends_with(c->path, ".rating")) fmt = FR_FORMAT_NCF;
            else if (sp->dcolon) fmt = FR_FORMAT_ML1M;
            else if (sp->delim == '\t' && f.n == 4) fmt = FR_FORMAT_ML100K;
            else if (sp->delim == ',' && f.n == 4) fmt = FR_FORMAT_CSV;
            else fmt = FR_FORMAT_DELIMITED;
        } else {
            fmt = FR_FORMAT_DELIMITED;
        }
        if (fmt == FR_FORMAT_DELIMITED) {
            sp->header = header;
            const fri_fields *hdr = header ? &f : NULL;
            fr_err e = resolve_col(c, given[0], "user", hdr, &sp->cu);
            if (!e) e = resolve_col(c, given[1], "item", hdr, &sp->ci);
            if (!e) e = resolve_col(c, given[2], "rating", hdr, &sp->cr);
            if (!e) e = resolve_col(c, given[3], "timestamp", hdr, &sp->ct);
            if (e) return e;
            if (header) {
                /* A ',' header of 4 unknown names, nothing given: CSV by position, as before. */
                bool known = false;
                for (int k = 0; k < f.n && k < FRI_MAX_FIELDS && !known; k++) {
                    const char *s = f.s[k];
                    size_t ln = f.len[k];
                    field_bare(&s, &ln);
                    known = name_in(s, ln, user_names) || name_in(s, ln, item_names) ||
                            name_in(s, ln, rating_names) || name_in(s, ln, count_names) || name_in(s, ln, time_names);
                }
                if (!opts && !known && f.n == 4 && (sp->dcolon || sp->delim == ',' || sp->delim == '\t')) {
                    /* 4 fields, no known name: the fixed format by position, as before names
                     * were placed (CSV skips such a first line; the others read it as data) */
                    fmt = sp->dcolon ? FR_FORMAT_ML1M : sp->delim == ',' ? FR_FORMAT_CSV : FR_FORMAT_ML100K;
                    sp->cu = 0; sp->ci = 1; sp->cr = 2; sp->ct = 3;
                    sp->header = false;
                } else {
                    e = place_by_name(c, sp, &f, first, n, &count);
                    if (e) return e;
                    by_name = true;
                    /* The MovieLens header with ',' is the CSV format. */
                    if (!opts && !count && sp->delim == ',' && f.n == 4 && sp->cu == 0 && sp->ci == 1 &&
                        sp->cr == 2 && sp->ct == 3) {
                        fmt = FR_FORMAT_CSV;
                    }
                }
            } else {
                /* By position: user 1, item 2, then rating 3 and timestamp 4 when the line has them. */
                int *cols[4] = {&sp->cu, &sp->ci, &sp->cr, &sp->ct};
                int next = 0;
                for (int j = 0; j < 4; j++) {
                    if (*cols[j] >= 0) continue;
                    for (;; next++) {
                        bool taken = false;
                        for (int q = 0; q < 4; q++) taken |= *cols[q] == next;
                        if (!taken) break;
                    }
                    if (j < 2 || next < f.n) {
                        *cols[j] = next++;
                        if (j == 2) sp->cr_pos = true;
                    }
                    if (j == 2 && *cols[2] < 0) break; /* no rating column: no timestamp by position */
                }
            }
            sp->nf_min = max4(sp->cu, sp->ci, sp->cr, sp->ct) + 1;
            sp->nf_max = 0;
        }
    } else if (fmt == FR_FORMAT_DELIMITED) {
        const char *d = o->delimiter;
        if (!d || !*d) {
            if (!detect_delim(sp, first, n)) sp->delim = ','; /* a single column: the field count check explains */
        } else if (strcmp(d, "::") == 0) sp->dcolon = true;
        else sp->delim = d[0];
        sp->header = o->has_header;
        const fri_fields *hdr = NULL;
        if (sp->header) { fri_spec_split(sp, first, n, &f); hdr = &f; }
        fr_err e = resolve_col(c, o->col_user ? o->col_user : "1", "user", hdr, &sp->cu);
        if (!e) e = resolve_col(c, o->col_item ? o->col_item : "2", "item", hdr, &sp->ci);
        if (!e) e = resolve_col(c, o->col_rating, "rating", hdr, &sp->cr);
        if (!e) e = resolve_col(c, o->col_time, "timestamp", hdr, &sp->ct);
        if (e) return e;
        sp->nf_min = max4(sp->cu, sp->ci, sp->cr, sp->ct) + 1;
        sp->nf_max = 0;
    }
    sp->fmt = fmt;
    if (fmt != FR_FORMAT_DELIMITED) { sp->nf_min = sp->nf_max = 4; }
    switch (fmt) {
    case FR_FORMAT_ML100K: sp->delim = '\t'; sp->dcolon = false; break;
    case FR_FORMAT_ML1M: sp->dcolon = true; break;
    case FR_FORMAT_CSV: { /* a header when the first field is not a number */
        sp->delim = ',';
        sp->dcolon = false;
        fri_spec_split(sp, first, n, &f);
        const char *f0 = f.s[0];
        size_t f0n = f.len[0];
        field_bare(&f0, &f0n);
        sp->header = !fri_text_is_numeric(f0, f0n) && !string_id_line(&f);
        break;
    }
    case FR_FORMAT_NCF: sp->delim = '\t'; sp->dcolon = false; sp->nf_min = 3; break;
    default: break;
    }
    sp->fast = fmt != FR_FORMAT_DELIMITED || (sp->cu == 0 && sp->ci == 1 && sp->cr == 2 && sp->ct == 3);
    /* What the rating column holds. */
    bool imp = o->implicit || o->implicit_weight;
    sp->implicit = imp || count || sp->cr < 0;
    sp->weight = sp->cr >= 0 && (imp ? o->implicit_weight : count);
    sp->rmin = sp->weight ? 0 : imp ? -INFINITY : o->rating_min;
    sp->rmax = imp || sp->weight ? INFINITY : o->rating_max;
    if (sp->header && (fmt == FR_FORMAT_DELIMITED || by_name)) describe_columns(sp, &f, sp->weight); /* f: the header */
    return FR_OK;
}
