/* The NCF files (the layout of He et al.'s neural collaborative filtering data): the dense
 * id maps of .rating files, whose ids are already 0..n-1 (a stray huge id is an error
 * rather than a giant identity map), and the reader of test.negative, one line per user:
 * "(user,item)" then tab-separated negative items. Every malformed line is an error naming
 * file, line, the value and what was expected. */
#include "data/lreader.h"
#include "data/read.h"
#include "data/text.h"

/* Dense NCF ids: the largest id must be plausible for the number of rows, so a stray
 * huge id is an error rather than a giant identity map. */
fr_err fri_ncf_maps(const char *path, fri_rows *const *rs, int k, fr_idmap **um, fr_idmap **im) {
    *um = *im = NULL;
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
    fr_err e = fri_idmap_identity(um, mu + 1);
    if (!e) e = fri_idmap_identity(im, mi + 1);
    if (e) { fr_idmap_release(*um); fr_idmap_release(*im); *um = *im = NULL; }
    return e;
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
        long cb = fri_text_control_byte(s, n);
        if (cb >= 0) {
            e = fri_fail(FR_ERR_PARSE, "%s%s:%llu: binary data (byte 0x%02x at column %ld); expected a text file", FRI_PATH(path),
                         ln, (unsigned char)s[cb], cb + 1);
            goto fail;
        }
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
            du = fr_idmap_find(like->users, ids[0]);
            int64_t di = fr_idmap_find(like->items, ids[1]);
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
                int64_t di = fr_idmap_find(like->items, it);
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
