/* Side features for the kinds that read them (fr_model_kind_uses_features: lightfm, fm):
 * the metadata found beside the data (fr_data_load_meta: ml-100k's u.user and u.item for
 * ml-100k-loo) and the feature files the user gives, attached to the model config. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/features.h"

/* The feature set train builds for data (metadata beside it, then the files), in *out. */
static fr_err build(const char *cmd, fr_data *data, const char *user_file, const char *item_file, bool quiet,
                    fr_features **out) {
    *out = NULL;
    const fr_dataset *tr = fr_data_train(data), *te = fr_data_test(data);
    fr_err e = fr_data_load_meta(data);
    if (e && !quiet) fprintf(stderr, "fedrec %s: note: metadata beside the data not read: %s\n", cmd, fr_errmsg());
    const char *first_bad = NULL;
    uint64_t bad = fr_dataset_meta(tr) ? fr_meta_skipped(fr_dataset_meta(tr), &first_bad) : 0;
    if (bad && !quiet)
        fprintf(stderr, "fedrec %s: note: metadata: %llu malformed line%s skipped (the first: %s)\n", cmd,
                (unsigned long long)bad, cli_s(bad), first_bad ? first_bad : "?");
    uint32_t nu = fr_dataset_n_users(tr), ni = fr_dataset_n_items(tr);
    if (te && fr_dataset_n_users(te) > nu) nu = fr_dataset_n_users(te);
    if (te && fr_dataset_n_items(te) > ni) ni = fr_dataset_n_items(te);
    fr_features *f = NULL;
    if ((e = fr_features_create(&f, nu, ni))) return e;
    e = fr_features_from_meta(f, tr);
    const char *files[2] = {user_file, item_file};
    const fr_feature_side sides[2] = {FR_FEAT_USER, FR_FEAT_ITEM};
    for (int s = 0; s < 2 && !e; s++) {
        if (!files[s]) continue;
        uint64_t skipped = 0;
        e = fr_features_load(f, sides[s], files[s], sides[s] == FR_FEAT_USER ? fr_dataset_users(tr) : fr_dataset_items(tr),
                             &skipped);
        if (!e && skipped && !quiet) {
            const char *first = fr_features_skipped_first(f, sides[s]);
            fprintf(stderr, "fedrec %s: note: %s: %llu line%s name%s %s the data does not have; skipped (the first: %s)\n",
                    cmd, files[s], (unsigned long long)skipped, skipped == 1 ? "" : "s", skipped == 1 ? "s" : "",
                    s ? (skipped == 1 ? "an item" : "items") : (skipped == 1 ? "a user" : "users"), first ? first : "?");
        }
    }
    if (e) { fr_features_free(f); return e; }
    *out = f;
    return FR_OK;
}

int cli_features_attach(const char *cmd, fr_data *data, const char *user_file, const char *item_file,
                        fr_model_config *mc, bool quiet) {
    if (!fr_model_kind_uses_features(mc->kind)) return 0;
    const fr_dataset *tr = fr_data_train(data), *te = fr_data_test(data);
    uint32_t nu = fr_dataset_n_users(tr), ni = fr_dataset_n_items(tr);
    if (te && fr_dataset_n_users(te) > nu) nu = fr_dataset_n_users(te);
    if (te && fr_dataset_n_items(te) > ni) ni = fr_dataset_n_items(te);
    const fr_feature_side sides[2] = {FR_FEAT_USER, FR_FEAT_ITEM};
    fr_features *f = NULL;
    fr_err e = build(cmd, data, user_file, item_file, quiet, &f);
    if (!e) e = fr_model_config_set_features(mc, f);
    if (!e && !quiet) {
        uint64_t nnz[2] = {0, 0}, covered[2] = {0, 0};
        for (int s = 0; s < 2; s++)
            for (uint32_t r = 0; r < fr_features_rows(f, sides[s]); r++) {
                size_t k = fr_features_of(f, sides[s], r, NULL, NULL);
                nnz[s] += k;
                covered[s] += k > 0;
            }
        /* a side with none says why: nothing beside the data, or nothing usable in the file given */
        char why[2][160];
        const char *meta_names[2] = {"u.user or users.dat", "u.item, movies.dat or movies.csv"};
        const char *files[2] = {user_file, item_file};
        for (int s = 0; s < 2; s++) {
            uint32_t rows = s ? ni : nu;
            const char *side = s ? "item" : "user";
            if (nnz[s] && covered[s] < rows) /* a file that covers a few: the mean over all would read 0.0 */
                snprintf(why[s], sizeof why[s], "%.1f per %s on the %" PRIu64 " of %u that have some; %" PRIu64
                         " have none", (double)nnz[s] / (double)covered[s], side, covered[s], rows, rows - covered[s]);
            else if (nnz[s]) snprintf(why[s], sizeof why[s], "%.1f per %s", rows ? (double)nnz[s] / rows : 0.0, side);
            else if (files[s]) snprintf(why[s], sizeof why[s], "none read from %.100s", files[s]);
            else snprintf(why[s], sizeof why[s], "no %s beside the data; --%s-features FILE adds some", meta_names[s],
                          s ? "item" : "user");
        }
        fprintf(stderr, "fedrec %s: features: %u user features (%s), %u item features (%s)%s\n", cmd,
                fr_features_count(f, FR_FEAT_USER), why[0], fr_features_count(f, FR_FEAT_ITEM), why[1],
                nnz[0] + nnz[1] ? "" : ": ids only");
    }
    fr_features_free(f);
    return e ? cli_fail(e, cmd) : 0;
}

/* ------------------------------------------------------------------ over the network */

static void put_list(FILE *fp, const fr_features *f, fr_feature_side sd, uint32_t row) {
    const uint32_t *ids;
    const float *w;
    size_t n = fr_features_of(f, sd, row, &ids, &w);
    fprintf(fp, "%u", row);
    for (size_t k = 0; k < n; k++) fprintf(fp, "%c%u:%.9g", k ? ' ' : '\t', ids[k], (double)w[k]);
    fputc('\n', fp);
}

int cli_features_write_shards(const char *cmd, fr_data *data, const char *user_file, const char *item_file,
                              const char *dir, bool quiet) {
    fr_features *f = NULL;
    fr_err e = build(cmd, data, user_file, item_file, true, &f);
    if (e) return cli_fail(e, cmd);
    uint32_t vu = fr_features_count(f, FR_FEAT_USER), vi = fr_features_count(f, FR_FEAT_ITEM);
    if (vu + vi == 0) { fr_features_free(f); return 0; } /* nothing found: ids only, no files */
    char path[4400];
    snprintf(path, sizeof path, "%.4200s/features.txt", dir);
    FILE *fp = fopen(path, "wb");
    int rc = 0;
    if (!fp) { fprintf(stderr, "fedrec %s: cannot write '%s'\n", cmd, path); fr_features_free(f); return 1; }
    fprintf(fp, "# fedrec features 1: the federation's feature names (ids in order) and the items' lists; each "
                "client's users' lists are in its cID/user_features.txt\n");
    const fr_feature_side sides[2] = {FR_FEAT_USER, FR_FEAT_ITEM};
    for (int s = 0; s < 2; s++) {
        uint32_t v = fr_features_count(f, sides[s]);
        fprintf(fp, "%s %u\n", s ? "item_names" : "user_names", v);
        for (uint32_t k = 0; k < v; k++) fprintf(fp, "%s\n", fr_features_name(f, sides[s], k));
    }
    uint32_t ni = fr_features_rows(f, FR_FEAT_ITEM);
    fprintf(fp, "items %u\n", ni);
    for (uint32_t i = 0; i < ni; i++) put_list(fp, f, FR_FEAT_ITEM, i);
    if (fclose(fp) != 0) rc = 1;
    /* one user per client (fr_dataset_write_shards: cU holds user U) */
    uint32_t nu = fr_dataset_n_users(fr_data_train(data));
    for (uint32_t u = 0; !rc && u < nu; u++) {
        snprintf(path, sizeof path, "%.4200s/c%u/user_features.txt", dir, u);
        if (!(fp = fopen(path, "wb"))) { rc = 1; break; }
        put_list(fp, f, FR_FEAT_USER, u);
        if (fclose(fp) != 0) rc = 1;
    }
    if (rc) fprintf(stderr, "fedrec %s: cannot write '%s'\n", cmd, path);
    else if (!quiet)
        printf("features: %u user and %u item feature names in %s/features.txt, each client's user's own in "
               "cID/user_features.txt\n", vu, vi, dir);
    fr_features_free(f);
    return rc;
}

/* One line's list "ROW<TAB>id:w id:w ..." (ids below vocab): appends to ids/w; *row. */
static int parse_list(const char *cmd, const char *path, unsigned line_no, char *line, uint32_t vocab, uint32_t *row,
                      uint32_t **ids, float **w, size_t *n, size_t *cap) {
    char *p = line, *end;
    errno = 0;
    unsigned long r = strtoul(p, &end, 10);
    if (end == p || errno || r > UINT32_MAX || (*end != '\t' && *end != '\n' && *end != '\r' && *end != '\0')) {
        fprintf(stderr, "fedrec %s: %s:%u: expected ROW<TAB>ID:WEIGHT ..., got '%.60s'\n", cmd, path, line_no, line);
        return 1;
    }
    *row = (uint32_t)r;
    p = end;
    for (;;) {
        while (*p == '\t' || *p == ' ') p++;
        if (*p == '\0' || *p == '\n' || *p == '\r') return 0;
        unsigned long id = strtoul(p, &end, 10);
        if (end == p || *end != ':' || id >= vocab) {
            fprintf(stderr, "fedrec %s: %s:%u: expected ID:WEIGHT with ID < %u, got '%.40s'\n", cmd, path, line_no,
                    vocab, p);
            return 1;
        }
        p = end + 1;
        float x = strtof(p, &end);
        if (end == p || !isfinite(x)) {
            fprintf(stderr, "fedrec %s: %s:%u: expected a finite weight, got '%.40s'\n", cmd, path, line_no, p);
            return 1;
        }
        p = end;
        if (*n == *cap) {
            *cap = *cap ? 2 * *cap : 16;
            uint32_t *a = realloc(*ids, *cap * sizeof *a);
            if (a) *ids = a;
            float *b = realloc(*w, *cap * sizeof *b);
            if (b) *w = b;
            if (!a || !b) { fprintf(stderr, "fedrec %s: out of memory\n", cmd); return 1; }
        }
        (*ids)[*n] = (uint32_t)id;
        (*w)[*n] = x;
        (*n)++;
    }
}

int cli_features_from_shards(const char *cmd, const char *dir, fr_model_config *mc, bool quiet) {
    if (!fr_model_kind_uses_features(mc->kind)) return 0;
    char path[4400];
    snprintf(path, sizeof path, "%.4200s/features.txt", dir);
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        if (!quiet) fprintf(stderr, "fedrec %s: note: no %s: ids only\n", cmd, path);
        return 0;
    }
    fr_features *f = NULL;
    if (fr_features_create(&f, 1, mc->n_items)) { fclose(fp); fprintf(stderr, "fedrec %s: out of memory\n", cmd); return 1; }
    char line[65536];
    unsigned ln = 0;
    int rc = 0;
    uint32_t *ids = NULL;
    float *w = NULL;
    size_t cap = 0;
    const char *heads[3] = {"user_names", "item_names", "items"};
    const fr_feature_side sides[2] = {FR_FEAT_USER, FR_FEAT_ITEM};
    for (int part = 0; part < 3 && !rc; part++) {
        unsigned long cnt = 0;
        do {
            if (!fgets(line, sizeof line, fp)) { line[0] = 0; break; }
            ln++;
        } while (line[0] == '#');
        size_t hl = strlen(heads[part]);
        if (strncmp(line, heads[part], hl) != 0 || line[hl] != ' ' || sscanf(line + hl, "%lu", &cnt) != 1) {
            fprintf(stderr, "fedrec %s: %s:%u: expected '%s N'\n", cmd, path, ln, heads[part]);
            rc = 1;
            break;
        }
        for (unsigned long k = 0; k < cnt && !rc; k++) {
            if (!fgets(line, sizeof line, fp)) {
                fprintf(stderr, "fedrec %s: %s: ends after line %u, %lu line%s of %s expected\n", cmd, path, ln, cnt,
                        cli_s(cnt), heads[part]);
                rc = 1;
                break;
            }
            ln++;
            size_t len = strcspn(line, "\r\n");
            if (part < 2) {
                if (fr_features_declare(f, sides[part], line, len, NULL)) rc = cli_fail(FR_ERR_FORMAT, cmd);
                continue;
            }
            uint32_t row;
            size_t n = 0;
            if (parse_list(cmd, path, ln, line, fr_features_count(f, FR_FEAT_ITEM), &row, &ids, &w, &n, &cap)) rc = 1;
            for (size_t x = 0; !rc && x < n; x++) {
                const char *nm = fr_features_name(f, FR_FEAT_ITEM, ids[x]);
                if (fr_features_add(f, FR_FEAT_ITEM, row, nm, strlen(nm), w[x])) rc = cli_fail(FR_ERR_FORMAT, cmd);
            }
        }
    }
    fclose(fp);
    free(ids);
    free(w);
    if (!rc) {
        fr_err e = fr_model_config_set_features(mc, f);
        if (e) rc = cli_fail(e, cmd);
        else if (!quiet)
            fprintf(stderr, "fedrec %s: features: %u user and %u item feature names (%s); users' lists stay with "
                            "the clients\n", cmd, fr_features_count(f, FR_FEAT_USER), fr_features_count(f, FR_FEAT_ITEM),
                    path);
    }
    fr_features_free(f);
    return rc;
}

int cli_user_features_read(const char *cmd, const char *path, fr_netc *c) {
    FILE *fp = fopen(path, "rb");
    if (!fp) { fprintf(stderr, "fedrec %s: cannot read '%s'\n", cmd, path); return 1; }
    uint32_t U = fr_netc_n_users(c);
    uint32_t **lid = calloc(U ? U : 1, sizeof *lid);
    float **lw = calloc(U ? U : 1, sizeof *lw);
    size_t *ln_n = calloc(U ? U : 1, sizeof *ln_n), *caps = calloc(U ? U : 1, sizeof *caps);
    int rc = !lid || !lw || !ln_n || !caps;
    char line[65536];
    unsigned ln = 0;
    while (!rc && fgets(line, sizeof line, fp)) {
        ln++;
        if (line[0] == '#' || line[0] == '\n') continue;
        uint32_t row, *ids = NULL;
        float *w = NULL;
        size_t n = 0, cap = 0;
        if (parse_list(cmd, path, ln, line, UINT32_MAX, &row, &ids, &w, &n, &cap)) {
            free(ids);
            free(w);
            rc = 1;
            break;
        }
        /* the client's position of global user `row` */
        uint32_t j = UINT32_MAX;
        for (uint32_t x = 0; x < U; x++)
            if (fr_netc_user(c, x) == row) { j = x; break; }
        if (j == UINT32_MAX) {
            fprintf(stderr, "fedrec %s: %s:%u: user %u is not one of this client's users\n", cmd, path, ln, row);
            rc = 1;
        } else if (lid[j]) {
            fprintf(stderr, "fedrec %s: %s:%u: user %u given twice\n", cmd, path, ln, row);
            rc = 1;
        } else {
            lid[j] = ids;
            lw[j] = w;
            ln_n[j] = n;
            ids = NULL;
            w = NULL;
        }
        free(ids);
        free(w);
    }
    fclose(fp);
    uint64_t *off = calloc((size_t)U + 1, sizeof *off);
    size_t tot = 0;
    for (uint32_t j = 0; j < U; j++) tot += ln_n ? ln_n[j] : 0;
    uint32_t *ids = malloc((tot ? tot : 1) * sizeof *ids);
    float *w = malloc((tot ? tot : 1) * sizeof *w);
    if (!rc && (!off || !ids || !w)) { fprintf(stderr, "fedrec %s: out of memory\n", cmd); rc = 1; }
    if (!rc) {
        for (uint32_t j = 0; j < U; j++) {
            off[j + 1] = off[j] + ln_n[j];
            if (ln_n[j]) {
                memcpy(ids + off[j], lid[j], ln_n[j] * sizeof *ids);
                memcpy(w + off[j], lw[j], ln_n[j] * sizeof *w);
            }
        }
        fr_err e = fr_netc_set_user_features(c, off, ids, w);
        if (e) rc = cli_fail(e, cmd);
    }
    for (uint32_t j = 0; lid && j < U; j++) { free(lid[j]); free(lw[j]); }
    free(lid);
    free(lw);
    free(ln_n);
    free(caps);
    free(off);
    free(ids);
    free(w);
    return rc;
}
