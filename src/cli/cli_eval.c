/* fedrec eval and fedrec recommend: load a model file, load the data source its
 * provenance records (fedrec/run.h; or the one given on the command line), map the data's
 * raw ids to model rows through the ids stored in the file, then print metrics or a
 * user's top-K. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "cli/embed.h"
#include "cli/load_opts.h"
#include "fedrec/model_eval.h"
#include "fedrec/run.h"

/* ------------------------------------------------------------------ shared loading */

typedef struct loaded {
    fr_model *m;
    fr_model_meta meta;
    fr_provenance prov;                     /* from the model file's config_json */
    fr_data *d;                             /* the data, reloaded */
    uint32_t *user_map, *item_map;          /* data dense id -> model row (UINT32_MAX unknown) */
    size_t *gstart;                         /* graph kinds: [n_users + 1] model user row r's */
    uint32_t *gitems;                       /* training items (model rows) gitems[gstart[r], gstart[r+1]) */
} loaded;

/* The training graph of a graph kind, in the model's rows. */
static size_t loaded_graph_items(const void *ctx, uint32_t r, const uint32_t **items) {
    const loaded *l = ctx;
    *items = l->gitems + l->gstart[r];
    return l->gstart[r + 1] - l->gstart[r];
}

static void loaded_free(loaded *l) {
    fr_model_free(l->m);
    fr_model_meta_destroy(&l->meta);
    fr_data_free(l->d);
    fr_provenance_destroy(&l->prov);
    free(l->user_map); free(l->item_map);
    free(l->gstart); free(l->gitems);
    memset(l, 0, sizeof *l);
}

typedef struct raw_row { int64_t raw; uint32_t row; } raw_row;
static int cmp_raw(const void *a, const void *b) {
    int64_t x = ((const raw_row *)a)->raw, y = ((const raw_row *)b)->raw;
    return x < y ? -1 : x > y;
}

/* map[dense] = model row of the same raw id, UINT32_MAX if the model lacks it. */
static uint32_t *build_map(const fr_idmap *im, const int64_t *model_ids, uint32_t model_rows) {
    uint32_t n = fr_idmap_size(im);
    uint32_t *map = malloc(((size_t)n + 1) * sizeof *map);
    raw_row *rr = malloc(((size_t)model_rows + 1) * sizeof *rr);
    if (!map || !rr) { free(map); free(rr); return NULL; }
    for (uint32_t r = 0; r < model_rows; r++) rr[r] = (raw_row){model_ids ? model_ids[r] : (int64_t)r, r};
    qsort(rr, model_rows, sizeof *rr, cmp_raw);
    for (uint32_t i = 0; i < n; i++) {
        raw_row key = {model_ids ? fr_idmap_raw(im, i) : (int64_t)i, 0};
        raw_row *f = bsearch(&key, rr, model_rows, sizeof *rr, cmp_raw);
        map[i] = f ? f->row : UINT32_MAX;
    }
    free(rr);
    return map;
}

/* Loads the model and its data; returns 0 or the exit status after printing. */
static int load_all(const char *cmd, const char *model_path, const char *data, const char *test,
                    const char *negatives, const cli_load_opts *lo, const arg_spec *specs, bool embedded, loaded *l) {
    memset(l, 0, sizeof *l);
    if (cli_check_input(cmd, "--model", model_path) || cli_check_input(cmd, "--data", data) ||
        cli_check_input(cmd, "--test", test) || cli_check_input(cmd, "--negatives", negatives))
        return 1;
    fr_err e = fr_model_load(&l->m, model_path, &l->meta);
    if (e) {
        char what[64]; /* cmd is "eval" or "recommend" */
        snprintf(what, sizeof what, "%s: loading the model", cmd);
        return cli_fail(e, what);
    }
    const fr_model_config *mc = fr_model_config_of(l->m);
    const char *cj = l->meta.config_json;
    fr_provenance_init(&l->prov);
    if (!cj && !data) {
        fprintf(stderr, "fedrec %s: %s records no data; give --data\n", cmd, model_path);
        return 1;
    }
    if (cj && strstr(cj, "\"runtime\":\"net\"")) { /* fedrec server's global model */
        fprintf(stderr, "fedrec %s: %s is the global model of a networked federation (fedrec server): each user's "
                "own rows stayed on its client, so it cannot be %s here. The server's --metrics-out holds the "
                "clients' own evaluation; with every shard at hand, fedrec client eval --shards DIR evaluates the "
                "model as its clients hold it, and fedrec client recommend --data DIR/cID ranks items for a "
                "client's user\n",
                cmd, model_path, strcmp(cmd, "eval") ? "used to rank for a user" : "evaluated");
        return 1;
    }
    l->prov.seed = l->prov.source.seed = l->meta.seed;
    if (cj && (e = fr_provenance_decode(&l->prov, cj))) {
        fprintf(stderr, "fedrec %s: %s: %s\n", cmd, model_path, fr_errmsg());
        return 1;
    }
    /* The data source the model records, or the one given on the command line. A model
     * that names no data and does not say it was trained on the built-in synthetic set
     * (an empty provenance) has no data to fall back on. */
    fr_source src = l->prov.source;
    if (!data && !src.data && !l->prov.synthetic && !embedded) {
        fprintf(stderr, "fedrec %s: %s records no data source; give --data (and --test, --negatives)\n", cmd,
                model_path);
        return 1;
    }
    src.explicit_ratings = fr_model_kind_is_explicit(mc->kind);
    if (data) { src.data = data; src.test = test; src.negatives = negatives; }
    else { if (test) src.test = test; if (negatives) src.negatives = negatives; }
    /* the loading options the model was trained with, overridden by those given */
    int rc = cli_load_opts_apply(cmd, lo, specs, &src.load);
    if (rc) return rc;
    if ((e = cli_data_load(&l->d, &src))) return cli_fail(e, cmd);
    /* the training data must be the model's (a fingerprint in its provenance) */
    if ((e = fr_provenance_check_data(&l->prov, l->d))) {
        fprintf(stderr, "fedrec %s: %s: %s\n", cmd, model_path, fr_errmsg());
        return 1;
    }
    const fr_dataset *tr = fr_data_train(l->d);
    l->user_map = build_map(fr_dataset_users(tr), l->meta.user_ids, mc->n_users);
    l->item_map = build_map(fr_dataset_items(tr), l->meta.item_ids, mc->n_items);
    if (!l->user_map || !l->item_map) { fprintf(stderr, "fedrec %s: out of memory\n", cmd); return 1; }
    if (fr_model_needs_graph(l->m)) { /* its scores propagate each user's training items */
        uint32_t nu = mc->n_users;
        l->gstart = calloc((size_t)nu + 1, sizeof *l->gstart);
        l->gitems = malloc((fr_dataset_n_interactions(tr) + 1) * sizeof *l->gitems);
        if (!l->gstart || !l->gitems) { fprintf(stderr, "fedrec %s: out of memory\n", cmd); return 1; }
        for (uint32_t u = 0; u < fr_dataset_n_users(tr); u++) {
            const uint32_t *it;
            size_t n = fr_dataset_user(tr, u, &it, NULL, NULL);
            if (l->user_map[u] == UINT32_MAX) continue;
            for (size_t k = 0; k < n; k++) l->gstart[l->user_map[u] + 1] += l->item_map[it[k]] != UINT32_MAX;
        }
        for (uint32_t r = 0; r < nu; r++) l->gstart[r + 1] += l->gstart[r];
        size_t *at = calloc((size_t)nu + 1, sizeof *at);
        if (!at) { fprintf(stderr, "fedrec %s: out of memory\n", cmd); return 1; }
        memcpy(at, l->gstart, ((size_t)nu + 1) * sizeof *at);
        for (uint32_t u = 0; u < fr_dataset_n_users(tr); u++) {
            const uint32_t *it;
            size_t n = fr_dataset_user(tr, u, &it, NULL, NULL);
            uint32_t r = l->user_map[u];
            if (r == UINT32_MAX) continue;
            for (size_t k = 0; k < n; k++)
                if (l->item_map[it[k]] != UINT32_MAX) l->gitems[at[r]++] = l->item_map[it[k]];
        }
        free(at);
        fr_model_graph g = {loaded_graph_items, l};
        fr_model_set_graph(l->m, &g);
    }
    return 0;
}

/* A test user or item the model does not know is a model/data mismatch. */
static int check_test_known(const char *cmd, const loaded *l, const char *model_path) {
    const fr_dataset *t = fr_data_test(l->d);
    for (uint32_t u = 0; u < fr_dataset_n_users(t); u++) {
        const uint32_t *items;
        size_t n = fr_dataset_user(t, u, &items, NULL, NULL);
        if (!n) continue;
        if (l->user_map[u] == UINT32_MAX) {
            char id[256];
            fr_idmap_format(fr_dataset_users(t), u, id, sizeof id);
            fprintf(stderr, "fedrec %s: model/data mismatch: user %s of the test data is not in %s (%s)\n", cmd, id,
                    model_path, fr_data_describe(l->d));
            return 1;
        }
        for (size_t k = 0; k < n; k++)
            if (l->item_map[items[k]] == UINT32_MAX) {
                char id[256];
                fr_idmap_format(fr_dataset_items(t), items[k], id, sizeof id);
                fprintf(stderr, "fedrec %s: model/data mismatch: item %s of the test data is not in %s (%s)\n", cmd,
                        id, model_path, fr_data_describe(l->d));
                return 1;
            }
    }
    return 0;
}

/* ------------------------------------------------------------------ eval */

/* A warning when the test interactions were trained on: the model file's record of its
 * training pairs (provenance train_pairs; files from before it have none) holds clearly
 * more of them than its false-positive rate would find. Never fails the evaluation. */
static void warn_trained_on_test(const loaded *l) {
    if (!l->prov.train_pairs) return;
    fr_pairset *ps = NULL;
    if (fr_pairset_decode(&ps, l->prov.train_pairs)) {
        fprintf(stderr, "fedrec eval: note: the model's record of its training pairs is unreadable (%s); the test set "
                "was not checked against it\n", fr_errmsg());
        return;
    }
    fr_pairset_overlap ov;
    fr_pairset_overlap_of(ps, fr_data_test(l->d), &ov);
    fr_pairset_free(ps);
    if (ov.clear)
        fprintf(stderr, "fedrec eval: warning: %.0f%% of the test interactions (%" PRIu64 " of %" PRIu64 ") were in the "
                "model's training data: the metrics are not a held-out evaluation\n", 100 * ov.share, ov.found, ov.total);
}

int cli_eval(int argc, char **argv) {
    const char *model = NULL, *data = NULL, *test = NULL, *negatives = NULL;
    bool json = false;
    uint64_t threads = 0;
    cli_load_opts lo = {0};
    arg_spec specs[] = {
        ARG_SPEC_STR("model", &model, "FILE  the model file (required)"),
        ARG_SPEC_STR("data", &data, "PATH  evaluate on this data instead of the model's"),
        ARG_SPEC_STR("test", &test, "PATH  given test file (PATH is then the training file)"),
        ARG_SPEC_STR("negatives", &negatives, "PATH  NCF .negative file"),
        CLI_LOAD_SPECS(&lo),
        ARG_SPEC_INT("threads", &threads, 0, cli_max_threads(), "0 = one per CPU it may use; at most 4 per online core",
                     "T  worker threads"),
        ARG_SPEC_FLAG("json", &json, "   print one JSON object"),
        ARG_SPEC_END,
    };
    const char *pos[1];
    int npos;
    const char *usage = "fedrec eval --model FILE [--data PATH --test PATH --negatives PATH] [LOADING OPTIONS] [--json]";
    int rc = args_parse("eval", argc, argv, specs, pos, 0, &npos, usage);
    if (rc) return rc < 0 ? 0 : rc;
    if (!model) { fprintf(stderr, "fedrec eval: --model FILE is required\nusage: %s\n", usage); return 2; }
    loaded l;
    rc = load_all("eval", model, data, test, negatives, &lo, specs, false, &l);
    if (!rc) rc = check_test_known("eval", &l, model);
    if (!rc) warn_trained_on_test(&l);
    if (!rc && l.prov.cold_items) /* training held items out and scored the rest: not these figures */
        fprintf(stderr, "fedrec eval: note: %s was trained with --cold-items %s: its training figures are on the warm "
                "part; these are on every test interaction, the held-out items' too (never trained)\n", model,
                l.prov.cold_items);
    fr_pool *pool = NULL;
    fr_model_scorer *sc = NULL;
    if (!rc) {
        fr_err e = fr_pool_create(&pool, (int)threads);
        if (!e) e = fr_model_scorer_create(&sc, l.m, pool, l.user_map, l.item_map);
        fr_eval_result r;
        if (!e) e = fr_model_evaluate_with(sc, l.m, fr_data_train(l.d), fr_data_test(l.d), fr_data_negatives(l.d), NULL, pool, &r);
        if (e) {
            rc = cli_fail(e, "eval");
        } else if (json) {
            char buf[4096];
            if (fr_eval_result_json(&r, buf, sizeof buf, NULL)) buf[0] = 0;
            printf("{\"model\":");
            cli_json_str(stdout, model);
            printf(",\"kind\":\"%s\",\"epoch\":%" PRIu64 ",\"round\":%" PRIu64 "%s%s}\n",
                   fr_model_kind_name(fr_model_config_of(l.m)->kind), l.meta.epoch, l.meta.round, buf[0] ? "," : "", buf);
        } else {
            /* a centralized model has epochs, a federated one rounds: the step that applies */
            char step[64];
            if (l.meta.round == 0) snprintf(step, sizeof step, "epoch %" PRIu64, l.meta.epoch);
            else if (l.meta.epoch == 0) snprintf(step, sizeof step, "round %" PRIu64, l.meta.round);
            else snprintf(step, sizeof step, "epoch %" PRIu64 ", round %" PRIu64, l.meta.epoch, l.meta.round);
            printf("model         %s (%s, %s)\n", model, fr_model_kind_name(fr_model_config_of(l.m)->kind), step);
            printf("data          %s\n", fr_data_describe(l.d));
            if (r.has_rating)
                printf("rmse          %.4f\nmae           %.4f\nrmse_raw      %.4f\nratings       %" PRIu64 "\n", r.rmse,
                       r.mae, r.rmse_raw, r.ratings);
            if (r.has_sampled) {
                for (size_t k = 0; k < r.n_ks; k++)
                    printf("hr@%-2u %.4f  ndcg@%-2u %.4f  mrr@%-2u %.4f\n", r.ks[k], r.hr[k], r.ks[k], r.ndcg[k], r.ks[k],
                           r.mrr[k]);
                printf("auc           %.4f\nusers         %u (sampled candidates)\n", r.auc, r.users_sampled);
            }
            if (r.has_full) {
                for (size_t k = 0; k < r.n_ks; k++) {
                    char h[24], n[24], c[24]; /* "hr@5_full" padded, not "hr@5 _full" */
                    snprintf(h, sizeof h, "hr@%u_full", r.ks[k]);
                    snprintf(n, sizeof n, "ndcg@%u_full", r.ks[k]);
                    snprintf(c, sizeof c, "recall@%u_full", r.ks[k]);
                    printf("%-11s %.4f  %-13s %.4f  %-15s %.4f\n", h, r.hr_full[k], n, r.ndcg_full[k], c,
                           r.recall_full[k]);
                }
                printf("auc_full      %.4f\nusers         %u (full catalogue)\n", r.auc_full, r.users_full);
            }
        }
    }
    fr_model_scorer_free(sc);
    fr_pool_free(pool);
    loaded_free(&l);
    return rc;
}

/* ------------------------------------------------------------------ recommend */

/* Columns of a UTF-8 string: its bytes but continuation bytes (10xxxxxx). */
static int utf8_width(const char *s) {
    int w = 0;
    for (; *s; s++) w += ((unsigned char)*s & 0xC0) != 0x80;
    return w;
}

int cli_recommend(int argc, char **argv) {
    const char *model = NULL, *data = NULL;
    uint64_t k = 10;
    const char *user = NULL;
    bool json = false;
    cli_load_opts lo = {0};
    arg_spec specs[] = {
        ARG_SPEC_STR("model", &model, "FILE  the model file (required)"),
        ARG_SPEC_STR("user", &user, "ID  the user (required): a raw id as in the data, an integer or a string id"),
        ARG_SPEC_INT("k", &k, 1, 100000, NULL, "K  how many items (default 10)"),
        ARG_SPEC_STR("data", &data, "PATH  the training data, if not the model's"),
        CLI_LOAD_SPECS(&lo),
        ARG_SPEC_FLAG("json", &json, "   print one JSON object"),
        ARG_SPEC_END,
    };
    const char *pos[1];
    int npos;
    const char *usage = "fedrec recommend --model FILE --user RAW_ID [-k 10] [--data PATH [LOADING OPTIONS]] [--json]";
    int rc = args_parse("recommend", argc, argv, specs, pos, 0, &npos, usage);
    if (rc) return rc < 0 ? 0 : rc;
    if (!model || !user) {
        fprintf(stderr, "fedrec recommend: --model and --user are required\nusage: %s\n", usage);
        return 2;
    }
    loaded l;
    rc = load_all("recommend", model, data, NULL, NULL, &lo, specs, false, &l);
    if (rc) { loaded_free(&l); return rc; }
    const fr_dataset *tr = fr_data_train(l.d);
    const fr_idmap *um = fr_dataset_users(tr);
    if (!fr_idmap_is_str(um)) { /* integer ids are in [0, 2^31): the readers refuse others */
        char *end;
        errno = 0;
        long long v = strtoll(user, &end, 10);
        if (!*user || *end || errno || v < 0 || v > INT32_MAX) {
            fprintf(stderr, "fedrec recommend: --user: expected an integer in 0..2147483647 (the data's user ids are "
                    "integers), got '%s'%s\n", user, *user && !*end ? " (out of range)" : "");
            loaded_free(&l);
            return 2;
        }
    }
    int64_t du = fr_idmap_find_str(um, user);
    if (du < 0 || l.user_map[du] == UINT32_MAX) {
        fprintf(stderr, "fedrec recommend: user %s is not in the model's training data (%s)\n", user,
                fr_data_describe(l.d));
        loaded_free(&l);
        return 1;
    }
    if (fr_data_load_meta(l.d)) { /* titles (from the data's directory) are optional */ }
    uint32_t *items = malloc(k * sizeof *items);
    float *scores = malloc(k * sizeof *scores);
    size_t n = 0;
    fr_model_scorer *sc = NULL;
    fr_err e = items && scores ? FR_OK : FR_ERR_NOMEM;
    if (!e) e = fr_model_scorer_create(&sc, l.m, NULL, l.user_map, l.item_map);
    if (!e) fr_model_scorer_set_history(sc, tr); /* a sequence model ranks the item after the user's */
    if (!e) e = fr_eval_topk(fr_model_scorer_fn, sc, tr, (uint32_t)du, k, true, items, scores, &n);
    if (!e) e = fr_model_scorer_status(sc);
    if (e) {
        rc = cli_fail(e, "recommend");
    } else {
        const fr_meta *meta = fr_dataset_meta(tr);
        const fr_idmap *im = fr_dataset_items(tr);
        /* ids as the data has them: integers, or strings (JSON strings) */
        const char *ustr = fr_idmap_raw_str(um, (uint32_t)du);
        if (json) {
            printf("{\"user\":");
            if (ustr) cli_json_str(stdout, ustr);
            else printf("%" PRId64, fr_idmap_raw(um, (uint32_t)du));
            printf(",\"items\":[");
        } else printf("top %zu for user %s (%s):\n", n, user, fr_data_describe(l.d));
        /* string ids padded to the widest shown, in letters (UTF-8: continuation bytes
         * take no column), so the scores line up */
        int width = 8;
        for (size_t i = 0; i < n && !json; i++) {
            const char *istr = fr_idmap_raw_str(im, items[i]);
            if (istr && utf8_width(istr) > width) width = utf8_width(istr);
        }
        for (size_t i = 0; i < n; i++) {
            const char *title = meta ? fr_meta_item_title(meta, items[i]) : NULL;
            const char *istr = fr_idmap_raw_str(im, items[i]);
            if (json) {
                printf("%s{\"item\":", i ? "," : "");
                if (istr) cli_json_str(stdout, istr);
                else printf("%" PRId64, fr_idmap_raw(im, items[i]));
                printf(",\"score\":%.6g,\"title\":", (double)scores[i]);
                cli_json_str(stdout, title);
                printf("}");
            } else if (istr) {
                printf("%3zu. item %s%*s score %8.4f%s%s\n", i + 1, istr, width - utf8_width(istr), "",
                       (double)scores[i], title ? "  " : "", title ? title : "");
            } else {
                printf("%3zu. item %-8" PRId64 " score %8.4f%s%s\n", i + 1, fr_idmap_raw(im, items[i]), (double)scores[i],
                       title ? "  " : "", title ? title : "");
            }
        }
        if (json) printf("]}\n");
    }
    fr_model_scorer_free(sc);
    free(items);
    free(scores);
    loaded_free(&l);
    return rc;
}

int cli_load_embedded(const char *model_path, const char *data, const fr_dataset *dataset, const char *describe,
                      cli_model_embed *out) {
    memset(out, 0, sizeof *out);
    loaded *l = calloc(1, sizeof *l);
    if (!l) { fprintf(stderr, "fedrec load: out of memory\n"); return 1; }
    cli_load_opts lo = {0};
    arg_spec specs[] = {CLI_LOAD_SPECS(&lo), ARG_SPEC_END};
    cli_embed_set_dataset(dataset, describe);
    int rc = load_all("load", model_path, data, NULL, NULL, &lo, specs, dataset != NULL, l);
    cli_embed_set_dataset(NULL, NULL);
    if (rc) {
        loaded_free(l);
        free(l);
        return rc;
    }
    *out = (cli_model_embed){l->m, &l->meta, l->d, l->user_map, l->item_map, l};
    return 0;
}

void cli_load_embed_free(cli_model_embed *m) {
    if (m->priv_) {
        loaded_free(m->priv_);
        free(m->priv_);
    }
    memset(m, 0, sizeof *m);
}
