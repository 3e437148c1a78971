/* The NCF files (the layout of He et al.'s neural collaborative filtering data): the dense
 * id maps of .rating files, whose ids are already 0..n-1 (a stray huge id is an error
 * rather than a giant identity map), and the reader of test.negative, one line per user:
 * "(user,item)" then tab-separated negative items. Every malformed line is an error naming
 * file, line, the value and what was expected. */
#include <stdio.h>
#include <sys/stat.h>

#include "data/lreader.h"
#include "data/read.h"
#include "data/text.h"

/* ------------------------------------------------------------ id-map files */

/* path of an id-map file of the NCF file `rating`: its name without "train.rating",
 * "test.rating" or "rating" at the end (else the whole name and a '.'), then `which`
 * ("users.map" or "items.map"): dir/train.rating -> dir/users.map, dir/ml.train.rating ->
 * dir/ml.users.map. NULL when out of memory. */
char *fri_ncf_map_path(const char *rating, const char *which) {
    static const char *const ends[3] = {"train.rating", "test.rating", "rating"};
    size_t n = strlen(rating), keep = n;
    const char *slash = strrchr(rating, '/');
    size_t name = slash ? (size_t)(slash - rating) + 1 : 0;
    bool dot = true;
    for (int k = 0; k < 3; k++) {
        size_t m = strlen(ends[k]);
        if (n - name >= m && !strcmp(rating + n - m, ends[k])) { keep = n - m; dot = false; break; }
    }
    size_t len = keep + 1 + strlen(which) + 1;
    char *p = fri_malloc(len);
    if (p) snprintf(p, len, "%.*s%s%s", (int)keep, rating, dot ? "." : "", which);
    return p;
}

static bool file_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

/* Reads an id-map file: "index<TAB>raw id" lines with indices 0, 1, 2... in order; lines
 * starting with '#' are comments, and the first "# source: PATH" names the data the ids
 * came from (*source, allocated; NULL when absent). */
static fr_err read_map(const char *path, const char *what, fr_idmap **out, char **source) {
    *out = NULL;
    fri_lreader lr;
    fr_err e = fri_lr_open(&lr, path);
    if (e) return e;
    int64_t *raw = NULL;
    char **strs = NULL; /* "# ids: strings": [cap] the strings, raw[d] = d */
    bool strings = false;
    size_t n = 0, cap = 0;
    for (;;) {
        char *s;
        size_t len;
        bool unterminated;
        int got = fri_lr_next(&lr, &s, &len, &unterminated, &e);
        if (got < 0) goto fail;
        if (got == 0) break;
        if (fri_text_blank(s, len)) continue;
        unsigned long long ln = (unsigned long long)lr.line;
        if ((e = fri_text_check(path, ln, s, len))) goto fail;
        if (s[0] == '#') {
            static const char key[] = "# source: ", skey[] = "# ids: strings";
            if (n == 0 && len >= sizeof skey - 1 && !strncmp(s, skey, sizeof skey - 1)) strings = true;
            if (source && !*source && len > sizeof key - 1 && !strncmp(s, key, sizeof key - 1) &&
                !(*source = fri_strdup(s + sizeof key - 1))) { e = FR_ERR_NOMEM; goto fail; }
            continue;
        }
        const char *a = s, *end = s + len, *sep = a;
        if (strings) { /* "index<TAB>string": the string runs to the end of the line */
            while (sep < end && *sep != '\t') sep++;
            const char *v = sep < end ? sep + 1 : end;
            size_t vn = (size_t)(end - v);
            fri_text_trim(&v, &vn);
            uint32_t idx;
            if (sep == a || !vn || fri_parse_id(a, (size_t)(sep - a), &idx) != FRI_NUM_OK || idx != n) {
                e = fri_fail(FR_ERR_PARSE, "%s%s:%llu: \"%.*s\"; expected \"index<TAB>%s id\" with index %zu%s",
                             FRI_PATH(path), ln, FRI_VAL(s, len), what, n, unterminated ? " (truncated last line?)" : "");
                goto fail;
            }
            if (n == cap) {
                size_t nc = cap ? cap * 2 : 1024;
                int64_t *p = fri_realloc(raw, nc * sizeof *p);
                if (!p) { e = FR_ERR_NOMEM; goto fail; }
                raw = p;
                char **q = fri_realloc(strs, nc * sizeof *q);
                if (!q) { e = FR_ERR_NOMEM; goto fail; }
                strs = q;
                cap = nc;
            }
            if (n >= INT32_MAX) {
                e = fri_fail(FR_ERR_RANGE, "%s%s:%llu: more than 2^31 ids", FRI_PATH(path), ln);
                goto fail;
            }
            if (!(strs[n] = fri_malloc(vn + 1))) { e = FR_ERR_NOMEM; goto fail; }
            memcpy(strs[n], v, vn);
            strs[n][vn] = 0;
            raw[n] = (int64_t)n;
            n++;
            continue;
        }
        while (sep < end && *sep != '\t' && *sep != ' ') sep++;
        const char *b = sep;
        while (b < end && (*b == '\t' || *b == ' ')) b++;
        const char *bend = b;
        while (bend < end && *bend != '\t' && *bend != ' ') bend++;
        const char *rest = bend;
        while (rest < end && (*rest == '\t' || *rest == ' ')) rest++;
        if (sep == a || b == end || rest != end) {
            e = fri_fail(FR_ERR_PARSE, "%s%s:%llu: \"%.*s\"; expected \"index<TAB>raw %s id\"%s", FRI_PATH(path), ln,
                         FRI_VAL(s, len), what, unterminated ? " (truncated last line?)" : "");
            goto fail;
        }
        uint32_t idx, id;
        int rc = fri_parse_id(a, (size_t)(sep - a), &idx);
        if (rc != FRI_NUM_OK || idx != n) {
            e = fri_fail(FR_ERR_PARSE, "%s%s:%llu: index \"%.*s\"; expected %zu (indices 0, 1, 2... in order, one a line)",
                         FRI_PATH(path), ln, FRI_VAL(a, (size_t)(sep - a)), n);
            goto fail;
        }
        if ((rc = fri_parse_id(b, (size_t)(bend - b), &id)) != FRI_NUM_OK) {
            e = fri_fail(FR_ERR_PARSE, "%s%s:%llu: raw %s id \"%.*s\" %s; expected an integer in [0, 2^31)%s",
                         FRI_PATH(path), ln, what, FRI_VAL(b, (size_t)(bend - b)),
                         rc == FRI_NUM_BAD ? "is not a number" : "is out of range",
                         unterminated ? " (truncated last line?)" : "");
            goto fail;
        }
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 1024;
            int64_t *p = fri_realloc(raw, nc * sizeof *p);
            if (!p) { e = FR_ERR_NOMEM; goto fail; }
            raw = p;
            cap = nc;
        }
        if (n >= INT32_MAX) {
            e = fri_fail(FR_ERR_RANGE, "%s%s:%llu: more than 2^31 ids", FRI_PATH(path), ln);
            goto fail;
        }
        raw[n++] = id;
    }
    fri_lr_close(&lr);
    if (n == 0) {
        fri_free(raw);
        return fri_fail(FR_ERR_EMPTY, "%s%s: no ids; expected lines \"index<TAB>raw %s id\"", FRI_PATH(path), what);
    }
    uint32_t dup = 0;
    e = fri_idmap_from_raw(out, raw, (uint32_t)n, &dup); /* raw is taken over */
    if (strings) {
        if (!e) e = fri_idmap_take_strs(*out, strs, &dup);
        else { for (size_t k = 0; k < n; k++) fri_free(strs[k]); fri_free(strs); }
        strs = NULL;
        if (e == FR_ERR_PARSE) {
            fr_idmap_release(*out);
            *out = NULL;
            return fri_fail(FR_ERR_PARSE, "%s%s: index %u repeats the %s id of an earlier index; expected each id "
                            "once", FRI_PATH(path), dup, what);
        }
        if (e) { fr_idmap_release(*out); *out = NULL; return e; }
    }
    if (e == FR_ERR_PARSE)
        return fri_fail(FR_ERR_PARSE, "%s%s: index %u repeats the raw %s id of an earlier index; expected each raw id "
                        "once", FRI_PATH(path), dup, what);
    if (!e) (*out)->indexed = true;
    return e;
fail:
    fri_free(raw);
    for (size_t k = 0; k < n && strs; k++) fri_free(strs[k]);
    fri_free(strs);
    fri_lr_close(&lr);
    return e;
}

/* Translates the index ids of rows rs[0, k) of path through the maps (raw = map[index]);
 * an index beyond a map is FR_ERR_RANGE naming both files. */
static fr_err to_raw(const char *path, fri_rows *const *rs, int k, const fr_idmap *um, const fr_idmap *im,
                     const char *up, const char *ip) {
    for (int j = 0; j < k; j++) {
        for (size_t x = 0; x < rs[j]->n; x++) {
            uint32_t u = rs[j]->user[x], i = rs[j]->item[x];
            if (u >= um->n || i >= im->n) {
                bool user = u >= um->n;
                return fri_fail(FR_ERR_RANGE, "%s%s: %s index %u, but %s%s has %u ids (indices 0..%u); expected the id "
                                "map written with the file", FRI_PATH(path), user ? "user" : "item", user ? u : i,
                                FRI_PATH(user ? up : ip), user ? um->n : im->n, (user ? um->n : im->n) - 1);
            }
            rs[j]->user[x] = (uint32_t)um->raw[u];
            rs[j]->item[x] = (uint32_t)im->raw[i];
        }
    }
    return FR_OK;
}

/* Dense NCF ids: with id-map files beside path (fri_ncf_map_path), the rows' indices
 * become the raw ids the maps give and the maps are the dataset's; without them the
 * largest id must be plausible for the number of rows, so a stray huge id is an error
 * rather than a giant identity map. */
fr_err fri_ncf_maps(const char *path, fri_rows *const *rs, int k, uint32_t min_items, fr_idmap **um, fr_idmap **im,
                    char **source) {
    *um = *im = NULL;
    if (source) *source = NULL;
    char *up = fri_ncf_map_path(path, "users.map"), *ip = fri_ncf_map_path(path, "items.map");
    fr_err e = up && ip ? FR_OK : FR_ERR_NOMEM;
    bool hu = !e && file_exists(up), hi = !e && file_exists(ip);
    if (!e && hu != hi)
        e = fri_fail(FR_ERR_IO, "%s%s: found beside %s%s, but %s%s is missing; expected both id maps or neither",
                     FRI_PATH(hu ? up : ip), FRI_PATH(path), FRI_PATH(hu ? ip : up));
    if (!e && hu) {
        e = read_map(up, "user", um, source);
        if (!e) e = read_map(ip, "item", im, NULL);
        if (!e) e = to_raw(path, rs, k, *um, *im, up, ip);
        fri_free(up);
        fri_free(ip);
        if (e) {
            fr_idmap_release(*um);
            fr_idmap_release(*im);
            *um = *im = NULL;
            if (source) { fri_free(*source); *source = NULL; }
        }
        return e;
    }
    fri_free(up);
    fri_free(ip);
    if (e) return e;
    uint32_t mu = 0, mi = 0;
    size_t total = 0;
    for (int j = 0; j < k; j++) {
        total += rs[j]->n;
        for (size_t x = 0; x < rs[j]->n; x++) {
            if (rs[j]->user[x] > mu) mu = rs[j]->user[x];
            if (rs[j]->item[x] > mi) mi = rs[j]->item[x];
        }
    }
    uint64_t limit = 16 * (uint64_t)total + 65536;
    if ((uint64_t)mu >= limit || (uint64_t)mi >= limit)
        return fri_fail(FR_ERR_RANGE, "%s%s: NCF ids are dense 0..n-1, but the largest id is %u with only %zu ratings; "
                        "expected ids below %llu (use the ml100k format for sparse ids)", FRI_PATH(path),
                        mu > mi ? mu : mi, total, (unsigned long long)limit);
    e = fri_idmap_identity(um, mu + 1);
    if (!e) e = fri_idmap_identity(im, mi + 1 > min_items ? mi + 1 : min_items);
    if (e) { fr_idmap_release(*um); fr_idmap_release(*im); *um = *im = NULL; }
    return e;
}

/* The dense id of an id of a .negative file: an index when the data's NCF files name ids
 * by index (maps read from id-map files), else a raw id. -1 when unknown. */
static int64_t find_id(const fr_idmap *m, uint32_t id) {
    if (m->indexed) return id < m->n ? (int64_t)id : -1;
    return fr_idmap_find(m, id);
}

/* Grows a uint32 array to hold at least need values. */
static fr_err grow_u32(uint32_t **a, size_t *cap, size_t need) {
    if (need <= *cap) return FR_OK;
    size_t nc = *cap ? *cap + *cap / 2 : 1024;
    if (nc < need) nc = need;
    uint32_t *p = fri_realloc(*a, nc * sizeof *p);
    if (!p) return FR_ERR_NOMEM;
    *a = p;
    *cap = nc;
    return FR_OK;
}

fr_err fr_negatives_load(fr_negatives **out, const char *path, const fr_dataset *like) {
    *out = NULL;
    fri_lreader lr;
    fr_err e = fri_lr_open(&lr, path);
    if (e) return e;
    uint32_t *lu = NULL, *items = NULL; /* per line: user; all negatives in line order */
    uint32_t *lcount = NULL;            /* per line: negatives */
    size_t nl = 0, cap_l = 0, cap_c = 0, ni = 0, cap_i = 0;
    uint32_t *seen = NULL;              /* per user: 1 + line index */
    fr_negatives *ng = NULL;
    uint32_t maxu = 0;
    for (;;) {
        char *s;
        size_t n;
        bool unterminated;
        int got = fri_lr_next(&lr, &s, &n, &unterminated, &e);
        if (got < 0) goto fail;
        if (got == 0) break;
        if (fri_text_blank(s, n)) continue;
        unsigned long long ln = (unsigned long long)lr.line;
        if ((e = fri_text_check(path, ln, s, n))) goto fail;
        /* "(user,item)" */
        const char *p = s, *end = s + n;
        const char *close = memchr(p, ')', n);
        const char *comma = close ? memchr(p, ',', (size_t)(close - p)) : NULL;
        if (n < 5 || p[0] != '(' || !close || !comma) {
            e = fri_fail(FR_ERR_PARSE, "%s%s:%llu: line starts \"%.*s\"; expected \"(user,item)\" then tab-separated "
                         "negative items%s", FRI_PATH(path), ln, FRI_VAL(s, n), unterminated ? " (truncated last line?)" : "");
            goto fail;
        }
        uint32_t ids[2];
        const char *vs[2] = {p + 1, comma + 1};
        size_t vl[2] = {(size_t)(comma - p - 1), (size_t)(close - comma - 1)};
        static const char *const what[2] = {"user id", "item id"};
        for (int k = 0; k < 2; k++) {
            int rc = fri_parse_id(vs[k], vl[k], &ids[k]);
            if (rc != FRI_NUM_OK) {
                e = fri_fail(FR_ERR_PARSE, "%s%s:%llu: %s \"%.*s\" %s; expected an integer in [0, 2^31)", FRI_PATH(path), ln,
                             what[k], FRI_VAL(vs[k], vl[k]), rc == FRI_NUM_BAD ? "is not a number" : "is out of range");
                goto fail;
            }
        }
        int64_t du = ids[0];
        if (like) {
            du = find_id(like->users, ids[0]);
            int64_t di = find_id(like->items, ids[1]);
            if (du < 0 || di < 0) {
                e = fri_fail(FR_ERR_RANGE, "%s%s:%llu: %s %u is not in the dataset; expected a known id", FRI_PATH(path), ln,
                             du < 0 ? "user" : "item", du < 0 ? ids[0] : ids[1]);
                goto fail;
            }
        }
        if (grow_u32(&lu, &cap_l, nl + 1) || grow_u32(&lcount, &cap_c, nl + 1)) { e = FR_ERR_NOMEM; goto fail; }
        uint32_t cnt = 0;
        p = close + 1;
        while (p < end) {
            if (*p != '\t' && *p != ' ') {
                e = fri_fail(FR_ERR_PARSE, "%s%s:%llu: \"%.*s\" after the (user,item) pair; expected a tab", FRI_PATH(path), ln,
                             FRI_VAL(p, (size_t)(end - p)));
                goto fail;
            }
            p++;
            const char *q = p;
            while (q < end && *q != '\t' && *q != ' ') q++;
            if (q == p) continue; /* repeated or trailing separators */
            uint32_t it;
            int rc = fri_parse_id(p, (size_t)(q - p), &it);
            if (rc != FRI_NUM_OK) {
                e = fri_fail(FR_ERR_PARSE, "%s%s:%llu: negative item \"%.*s\" %s; expected an integer in [0, 2^31)%s",
                             FRI_PATH(path), ln, FRI_VAL(p, (size_t)(q - p)), rc == FRI_NUM_BAD ? "is not a number" : "is out of range",
                             unterminated ? " (truncated last line?)" : "");
                goto fail;
            }
            if (like) {
                int64_t di = find_id(like->items, it);
                if (di < 0) {
                    e = fri_fail(FR_ERR_RANGE, "%s%s:%llu: negative item %u is not in the dataset; expected a known id",
                                 FRI_PATH(path), ln, it);
                    goto fail;
                }
                it = (uint32_t)di;
            }
            if (grow_u32(&items, &cap_i, ni + 1)) { e = FR_ERR_NOMEM; goto fail; }
            items[ni++] = it;
            cnt++;
            p = q;
        }
        lu[nl] = (uint32_t)du;
        lcount[nl] = cnt;
        nl++;
        if ((uint32_t)du > maxu) maxu = (uint32_t)du;
    }
    if (nl == 0) { e = fri_fail(FR_ERR_EMPTY, "%s%s: empty file; expected lines \"(user,item)\\tneg...\"", FRI_PATH(path)); goto fail; }
    uint32_t nu;
    if (like) nu = like->n_users;
    else {
        if ((uint64_t)maxu >= 16 * (uint64_t)nl + 65536) {
            e = fri_fail(FR_ERR_RANGE, "%s%s: user id %u with only %zu lines; expected dense ids 0..n-1", FRI_PATH(path), maxu, nl);
            goto fail;
        }
        nu = maxu + 1;
    }
    ng = fri_calloc(1, sizeof *ng);
    seen = fri_calloc((size_t)nu + 1, sizeof *seen);
    if (!ng || !seen) { e = FR_ERR_NOMEM; goto fail; }
    ng->n_users = nu;
    ng->ptr = fri_calloc((size_t)nu + 1, sizeof *ng->ptr);
    ng->items = fri_malloc((ni ? ni : 1) * sizeof *ng->items);
    if (!ng->ptr || !ng->items) { e = FR_ERR_NOMEM; goto fail; }
    for (size_t l = 0; l < nl; l++) {
        if (seen[lu[l]]) {
            e = fri_fail(FR_ERR_PARSE, "%s%s: user (dense %u) has two lines of negatives; expected one line per user",
                         FRI_PATH(path), lu[l]);
            goto fail;
        }
        seen[lu[l]] = (uint32_t)l + 1;
        ng->ptr[lu[l] + 1] = lcount[l];
    }
    for (uint32_t u = 0; u < nu; u++) ng->ptr[u + 1] += ng->ptr[u];
    /* Line l's items start at the running sum of earlier lines' counts. */
    size_t off = 0;
    for (size_t l = 0; l < nl; l++) {
        if (lcount[l]) memcpy(ng->items + ng->ptr[lu[l]], items + off, (size_t)lcount[l] * sizeof *items);
        off += lcount[l];
    }
    fri_free(lu);
    fri_free(lcount);
    fri_free(items);
    fri_free(seen);
    fri_lr_close(&lr);
    *out = ng;
    return FR_OK;
fail:
    fri_free(lu);
    fri_free(lcount);
    fri_free(items);
    fri_free(seen);
    fr_negatives_free(ng);
    fri_lr_close(&lr);
    return e;
}
