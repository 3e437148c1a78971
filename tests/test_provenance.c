/* Provenance (fedrec/run.h): every field of a federated and of a centralized run survives
 * encode and decode bit for bit; the decoding rules (unknown keys, missing keys, a new
 * kind's defaults, wrong types and their messages, nothing changed on failure); the JSON
 * the command line wrote before this format still gives eval its data source; a saved
 * model carries its provenance and raw ids; allocation failure at every step. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fedrec/fedrec.h"
#include "fedrec/run.h"
#include "testutil.h"

static void str_eq(const char *a, const char *b, const char *what) {
    if (!a || !b) cr_assert(a == b, "%s: %s vs %s", what, a ? a : "NULL", b ? b : "NULL");
    else cr_assert_str_eq(a, b, "%s", what);
}

static void assert_same_source(const fr_source *a, const fr_source *b) {
    str_eq(a->data, b->data, "data");
    str_eq(a->test, b->test, "test");
    str_eq(a->negatives, b->negatives, "negatives");
    cr_assert_eq(a->split, b->split);
    cr_assert_eq(a->split_ratio, b->split_ratio);
    cr_assert_eq(a->eval_negatives, b->eval_negatives);
    cr_assert_eq(a->seed, b->seed);
    cr_assert_eq(a->explicit_ratings, b->explicit_ratings);
    const fr_load_opts *x = &a->load, *y = &b->load;
    cr_assert_eq(x->format, y->format);
    cr_assert_eq(x->skip_bad_lines, y->skip_bad_lines);
    str_eq(x->delimiter, y->delimiter, "delimiter");
    cr_assert_eq(x->has_header, y->has_header);
    str_eq(x->col_user, y->col_user, "col_user");
    str_eq(x->col_item, y->col_item, "col_item");
    str_eq(x->col_rating, y->col_rating, "col_rating");
    str_eq(x->col_time, y->col_time, "col_time");
    cr_assert_eq(x->rating_min, y->rating_min);
    cr_assert_eq(x->rating_max, y->rating_max);
    cr_assert(x->implicit_threshold == y->implicit_threshold ||
              (isnan(x->implicit_threshold) && isnan(y->implicit_threshold)));
    cr_assert_eq(x->implicit, y->implicit);
    cr_assert_eq(x->implicit_weight, y->implicit_weight);
    cr_assert_eq(x->no_header, y->no_header);
}

/* Every field but the strings and the private pointer. */
static void assert_same(const fr_provenance *a, const fr_provenance *b) {
    str_eq(a->version, b->version, "version");
    cr_assert_eq(a->mode, b->mode);
    cr_assert_eq(a->seed, b->seed);
    assert_same_source(&a->source, &b->source);
    cr_assert_eq(a->synthetic, b->synthetic);
    str_eq(a->describe, b->describe, "describe");
    cr_assert_eq(memcmp(&a->model, &b->model, sizeof a->model), 0, "model config");
    cr_assert_eq(memcmp(&a->fl, &b->fl, sizeof a->fl), 0, "federation config");
    cr_assert_eq(memcmp(&a->train, &b->train, sizeof a->train), 0, "training config");
    cr_assert_eq(a->rounds, b->rounds);
    str_eq(a->partition, b->partition, "partition");
    str_eq(a->cold_items, b->cold_items, "cold_items");
    cr_assert_eq(a->epochs, b->epochs);
    cr_assert_eq(a->lr_decay, b->lr_decay);
}

static void round_trip(const fr_provenance *p, char **json_out) {
    char *json = NULL;
    cr_assert_eq(fr_provenance_encode(p, &json), FR_OK, "%s", fr_errmsg());
    cr_assert_not_null(json);
    fr_provenance q;
    fr_provenance_init(&q);
    cr_assert_eq(fr_provenance_decode(&q, json), FR_OK, "%s\n%s", fr_errmsg(), json);
    assert_same(p, &q);
    fr_provenance_destroy(&q);
    if (json_out) *json_out = json;
    else fr_provenance_json_free(json);
}

Test(provenance, defaults) {
    fr_provenance p;
    memset(&p, 0x5a, sizeof p);
    fr_provenance_init(&p);
    cr_assert_str_eq(p.version, FR_VERSION_STRING);
    cr_assert_eq(p.mode, FR_RUN_FEDERATED);
    cr_assert_eq(p.seed, 1);
    cr_assert_eq(p.model.kind, FR_MODEL_MF);
    cr_assert_eq(p.fl.strategy, FR_STRATEGY_FEDAVG);
    cr_assert_eq(p.train.batch, 256);
    cr_assert_eq(p.lr_decay, 1.0);
    cr_assert_null(p.source.data);
    cr_assert_null(p.partition);
    cr_assert_null(p.owned_);
    cr_assert_str_eq(fr_run_mode_name(FR_RUN_CENTRALIZED), "centralized");
    cr_assert_str_eq(fr_run_mode_name((fr_run_mode)7), "?");
    fr_provenance_destroy(&p);
    fr_provenance_destroy(NULL);
}

Test(provenance, federated_round_trip_every_field) {
    fr_provenance p;
    fr_provenance_init(&p);
    p.mode = FR_RUN_FEDERATED;
    p.seed = 0xFFFFFFFFFFFFFFF1ull; /* above 2^53: a string in JSON */
    p.source.data = "/data/a \"quoted\" \\ path/ratings.csv";
    p.source.test = "/data/t.csv";
    p.source.negatives = NULL;
    p.source.split = FR_SPLIT_RATIO;
    p.source.split_ratio = 0.1 + 0.2;
    p.source.eval_negatives = 50;
    p.source.seed = 77;
    p.source.explicit_ratings = true;
    p.source.load.format = FR_FORMAT_DELIMITED;
    p.source.load.skip_bad_lines = true;
    p.source.load.delimiter = ";";
    p.source.load.has_header = true;
    p.source.load.col_user = "u";
    p.source.load.col_item = "i";
    p.source.load.col_rating = "r";
    p.source.load.rating_min = 0.5;
    p.source.load.rating_max = 5;
    p.source.load.implicit = true;
    p.source.load.implicit_weight = true;
    p.source.load.no_header = false;
    p.synthetic = false;
    p.describe = "ratings.csv (split ratio:0.3)\n\ttab";
    fr_model_config_default(&p.model, FR_MODEL_NEUMF);
    p.model.n_users = 943;
    p.model.n_items = 1682;
    p.model.dim = 16;
    p.model.mlp_dim = 24;
    p.model.n_layers = 2;
    p.model.layers[0] = 48;
    p.model.layers[1] = 12;
    p.model.layers[2] = 0;
    p.model.loss = FR_LOSS_BCE;
    p.model.l2 = 0.1f;
    p.model.bias_l2 = 0.2f;
    p.model.mu = 3.53f;
    p.model.init_std = 0.03f;
    p.model.seed = (1ull << 60) + 3;
    fr_fl_config_default(&p.fl, FR_MODEL_NEUMF);
    p.fl.strategy = FR_STRATEGY_FEDYOGI;
    p.fl.server_lr = 0.013f;
    p.fl.server_momentum = 0.7f;
    p.fl.beta1 = 0.8f;
    p.fl.beta2 = 0.95f;
    p.fl.tau = 1e-4f;
    p.fl.mu = 0.3f;
    p.fl.row_norm = true;
    p.fl.item_sum = false;
    p.fl.local_epochs = 3;
    p.fl.batch = 64;
    p.fl.negatives = 6;
    fr_optim_config_default(&p.fl.local, FR_OPTIM_ADAGRAD);
    p.fl.local.lr = 0.02f;
    p.fl.local.momentum = 0.1f;
    p.fl.local.weight_decay = 1e-5f;
    p.fl.local.sparse_rows = true;
    fr_optim_config_default(&p.fl.item_local, FR_OPTIM_SGD);
    p.fl.item_local.lr = 0.7f;
    p.fl.item_local.momentum = 0.5f;
    p.fl.item_local.eps = 1e-7f;
    p.fl.item_lr_decay = 0.95f;
    p.fl.keep_private_optim = true;
    p.fl.dense_steps = true;
    p.fl.clients_per_round = 0.3;
    p.fl.availability = 0.9;
    p.fl.seed = 9;
    p.rounds = 42;
    p.partition = "dirichlet:20:0.5";
    p.cold_items = "0.2";
    char *json = NULL;
    round_trip(&p, &json);
    cr_assert(strstr(json, "\"cold_items\":\"0.2\""), "%s", json);
    p.cold_items = NULL;
    cr_assert(strstr(json, "\"mode\":\"federated\""), "%s", json);
    cr_assert(strstr(json, "\"seed\":\"18446744073709551601\""), "%s", json);
    cr_assert(strstr(json, "\"kind\":\"neumf\""), "%s", json);
    cr_assert(strstr(json, "\"strategy\":\"fedyogi\""), "%s", json);
    cr_assert_null(strstr(json, "\"train\""), "a federated run writes no training config: %s", json);
    cr_assert_null(strstr(json, "\n"), "one line: %s", json);
    fr_provenance_json_free(json);
    /* An item optimizer that follows the local one. */
    memset(&p.fl.item_local, 0, sizeof p.fl.item_local);
    round_trip(&p, &json);
    cr_assert(strstr(json, "\"kind\":\"same\""), "%s", json);
    fr_provenance_json_free(json);
    fr_provenance_destroy(&p);
}

Test(provenance, centralized_round_trip_every_field) {
    fr_provenance p;
    fr_provenance_init(&p);
    p.mode = FR_RUN_CENTRALIZED;
    p.seed = 5;
    p.synthetic = true;
    p.describe = "synthetic data (2000 users, 1000 items, 100000 interactions)";
    p.source.split = FR_SPLIT_TEMPORAL_USER; /* "temporal-user:0.8" in the JSON */
    p.source.split_ratio = 0.8;
    p.source.seed = 5;
    p.source.eval_negatives = 0;
    fr_model_config_default(&p.model, FR_MODEL_MF);
    p.model.n_users = 2000;
    p.model.n_items = 1000;
    p.model.l2 = 0.07f;
    p.model.bias_l2 = 0.01f;
    p.model.mu = 3.5298765f;
    p.model.init_std = 0.02f;
    p.train.batch = 16;
    p.train.negatives = 0;
    p.train.shards = 3;
    fr_optim_config_default(&p.train.optim, FR_OPTIM_ADAM);
    p.train.optim.lr = 0.0007f;
    p.train.optim.beta2 = 0.998f;
    p.train.optim.sparse_rows = true;
    p.train.seed = 5;
    p.train.threads = 2;
    p.epochs = 15;
    p.lr_decay = 0.9;
    char *json = NULL;
    round_trip(&p, &json);
    cr_assert(strstr(json, "\"mode\":\"centralized\""), "%s", json);
    cr_assert(strstr(json, "\"data\":null"), "%s", json);
    cr_assert(strstr(json, "\"synthetic\":true"), "%s", json);
    cr_assert_null(strstr(json, "\"fl\""), "a centralized run writes no federation config: %s", json);
    fr_provenance_json_free(json);
    fr_provenance_destroy(&p);
}

/* ------------------------------------------------------------ decoding rules */

Test(provenance, unknown_keys_missing_keys_and_new_kinds) {
    fr_provenance p;
    fr_provenance_init(&p);
    p.model.dim = 99;
    p.fl.batch = 7;
    cr_assert_eq(fr_provenance_decode(&p, "{\"zzz\":[1,{\"a\":null}],\"model\":{\"kind\":\"mf\",\"unknown\":2},"
                                          "\"fl\":{\"later_field\":true}}"), FR_OK, "%s", fr_errmsg());
    cr_assert_eq(p.model.dim, 99);  /* same kind: kept */
    cr_assert_eq(p.fl.batch, 7);
    cr_assert_eq(p.seed, 1);
    cr_assert(isnan(p.source.load.implicit_threshold));
    /* Another model kind: that kind's defaults first, for the model and the federation. */
    cr_assert_eq(fr_provenance_decode(&p, "{\"model\":{\"kind\":\"gmf\",\"n_items\":12}}"), FR_OK);
    fr_model_config mc;
    fr_model_config_default(&mc, FR_MODEL_GMF);
    mc.n_items = 12;
    cr_assert_eq(memcmp(&p.model, &mc, sizeof mc), 0);
    fr_fl_config fc;
    fr_fl_config_default(&fc, FR_MODEL_GMF);
    cr_assert_eq(memcmp(&p.fl, &fc, sizeof fc), 0);
    /* Another optimizer kind: its defaults, then the fields given. */
    cr_assert_eq(fr_provenance_decode(&p, "{\"train\":{\"optim\":{\"kind\":\"sgd\",\"momentum\":0.5}}}"), FR_OK);
    fr_optim_config oc;
    fr_optim_config_default(&oc, FR_OPTIM_SGD);
    oc.momentum = 0.5f;
    cr_assert_eq(memcmp(&p.train.optim, &oc, sizeof oc), 0);
    /* null for a float is NaN; for a path, none. */
    cr_assert_eq(fr_provenance_decode(&p, "{\"data\":\"/x\",\"load\":{\"implicit_threshold\":4}}"), FR_OK);
    cr_assert_str_eq(p.source.data, "/x");
    cr_assert_eq(p.source.load.implicit_threshold, 4);
    cr_assert_eq(fr_provenance_decode(&p, "{\"data\":null,\"load\":{\"implicit_threshold\":null}}"), FR_OK);
    cr_assert_null(p.source.data);
    cr_assert(isnan(p.source.load.implicit_threshold));
    /* Load options newer than a file (implicit_weight, no_header) keep their defaults. */
    fr_provenance_destroy(&p);
    fr_provenance_init(&p);
    cr_assert_eq(fr_provenance_decode(&p, "{\"data\":\"/x\",\"load\":{\"implicit\":true,\"has_header\":true}}"),
                 FR_OK);
    cr_assert(p.source.load.implicit);
    cr_assert(p.source.load.has_header);
    cr_assert_not(p.source.load.implicit_weight);
    cr_assert_not(p.source.load.no_header);
    cr_assert_eq(fr_provenance_decode(&p, "{\"load\":{\"implicit_weight\":true,\"no_header\":true}}"), FR_OK);
    cr_assert(p.source.load.implicit_weight);
    cr_assert(p.source.load.no_header);
    fr_provenance_destroy(&p);
}

Test(provenance, wrong_types_are_errors_and_change_nothing) {
    static const struct { const char *json, *key, *what; } bad[] = {
        {"{\"fl\":{\"batch\":\"x\"}}", "\"fl.batch\"", "is a string; expected an integer in [0, 4294967295]"},
        {"{\"fl\":{\"batch\":-1}}", "\"fl.batch\"", "expected an integer in [0, 4294967295]"},
        {"{\"fl\":{\"local_epochs\":4294967296}}", "\"fl.local_epochs\"", "expected an integer"},
        {"{\"fl\":{\"batch\":1.5}}", "\"fl.batch\"", "expected an integer"},
        {"{\"seed\":-1}", "\"seed\"", "expected an integer in [0, 2^64)"},
        {"{\"seed\":\"12x\"}", "\"seed\"", "expected an integer in [0, 2^64)"},
        {"{\"seed\":\"18446744073709551616\"}", "\"seed\"", "expected an integer in [0, 2^64)"},
        {"{\"model\":{\"kind\":\"nope\"}}", "\"model.kind\"", "\"nope\""},
        {"{\"model\":{\"loss\":3}}", "\"model.loss\"", "is a number; expected"},
        {"{\"model\":{\"layers\":[1,2,3,4,5,6,7,8,9]}}", "\"model.layers\"", "at most 8"},
        {"{\"model\":{\"layers\":[1,\"2\"]}}", "\"model.layers[1]\"", "is a string"},
        {"{\"model\":7}", "\"model\"", "is a number; expected an object or a model kind name"},
        {"{\"fl\":{\"local\":{\"kind\":\"rmsprop\"}}}", "\"fl.local.kind\"", "\"rmsprop\""},
        {"{\"fl\":{\"strategy\":\"fedsgd\"}}", "\"fl.strategy\"", "\"fedsgd\""},
        {"{\"fl\":{\"row_norm\":1}}", "\"fl.row_norm\"", "is a number; expected true or false"},
        {"{\"fl\":{\"server_lr\":\"1\"}}", "\"fl.server_lr\"", "is a string; expected a number"},
        {"{\"fl\":[]}", "\"fl\"", "is an array; expected an object"},
        {"{\"data\":5}", "\"data\"", "is a number; expected a string or null"},
        {"{\"split\":\"half\"}", "\"split\"", "expected loo, ratio:R, temporal:R or temporal-user:R"},
        {"{\"mode\":\"p2p\"}", "\"mode\"", "expected federated or centralized"},
        {"{\"load\":{\"format\":\"xml\"}}", "\"load.format\"", "\"xml\""},
        {"{\"eval_negatives\":true}", "\"eval_negatives\"", "is a boolean"},
        {"[1]", "provenance", "expected a JSON object"},
        {"{\"a\":", "provenance", "not valid JSON"},
        {"", "provenance", "not valid JSON"},
    };
    fr_provenance p;
    fr_provenance_init(&p);
    cr_assert_eq(fr_provenance_decode(&p, "{\"data\":\"/kept\",\"seed\":3}"), FR_OK);
    fr_provenance before = p;
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        cr_assert_eq(fr_provenance_decode(&p, bad[k].json), FR_ERR_PARSE, "%s", bad[k].json);
        const char *m = fr_errmsg();
        cr_assert(strstr(m, bad[k].key) && strstr(m, bad[k].what), "%s: %s", bad[k].json, m);
        cr_assert_eq(memcmp(&p, &before, sizeof p), 0, "%s changed the struct", bad[k].json);
    }
    cr_assert_str_eq(p.source.data, "/kept");
    cr_assert_eq(fr_provenance_decode(&p, NULL), FR_ERR_PARSE);
    fr_provenance_destroy(&p);
}

/* ------------------------------------------------------------ the format before this one */

Test(provenance, legacy_json_gives_eval_its_data_source) {
    char *dir = tu_tmpdir();
    char text[4096], *q = text;
    for (int u = 0; u < 8; u++)
        for (int k = 0; k < 5; k++) q += sprintf(q, "%d\t%d\t%d\t%d\n", u + 1, (u + 2 * k) % 11 + 1, 1 + (u + k) % 5, 100 + k);
    char *path = tu_write(dir, "u.data", text);
    /* What src/cli/cli_train.c's save_model wrote (centralized). */
    char json[8192];
    snprintf(json, sizeof json,
             "{\"data\":\"%s\",\"test\":null,\"negatives\":null,\"split\":\"ratio:0.8\",\"synthetic\":false,"
             "\"source\":\"%s (split ratio:0.8)\",\"model\":\"mf\",\"centralized\":true,\"seed\":7,\"epochs\":15,"
             "\"dim\":32,\"l2\":0.07,\"bias_l2\":0.01,\"batch\":16,\"negatives_per_pos\":0,\"optimizer\":\"adam\","
             "\"lr\":0.0007,\"shards\":2}", path, path);
    fr_provenance p;
    fr_provenance_init(&p);
    cr_assert_eq(fr_provenance_decode(&p, json), FR_OK, "%s", fr_errmsg());
    cr_assert_eq(p.mode, FR_RUN_CENTRALIZED);
    cr_assert_str_eq(p.source.data, path);
    cr_assert_null(p.source.test);
    cr_assert_eq(p.source.split, FR_SPLIT_RATIO);
    cr_assert_eq(p.source.split_ratio, 0.8);
    cr_assert_eq(p.source.seed, 7);
    cr_assert_eq(p.seed, 7);
    cr_assert_eq(p.epochs, 15);
    cr_assert_eq(p.model.kind, FR_MODEL_MF);
    cr_assert_not(p.synthetic);
    /* The data eval reloads from it is the data the run split. */
    p.source.explicit_ratings = true;
    fr_data *a = NULL, *b = NULL;
    cr_assert_eq(fr_data_load(&a, &p.source), FR_OK, "%s", fr_errmsg());
    fr_source s;
    fr_source_default(&s);
    s.data = path;
    s.split = FR_SPLIT_RATIO;
    s.split_ratio = 0.8;
    s.seed = 7;
    s.explicit_ratings = true;
    cr_assert_eq(fr_data_load(&b, &s), FR_OK);
    cr_assert_str_eq(fr_data_describe(a), fr_data_describe(b));
    const fr_dataset *ta = fr_data_test(a), *tb = fr_data_test(b);
    cr_assert_eq(fr_dataset_n_interactions(ta), fr_dataset_n_interactions(tb));
    for (uint32_t u = 0; u < fr_dataset_n_users(ta); u++) {
        const uint32_t *ia, *ib;
        size_t na = fr_dataset_user(ta, u, &ia, NULL, NULL), nb = fr_dataset_user(tb, u, &ib, NULL, NULL);
        cr_assert_eq(na, nb);
        for (size_t k = 0; k < na; k++) cr_assert_eq(ia[k], ib[k]);
    }
    fr_data_free(a);
    fr_data_free(b);
    fr_provenance_destroy(&p);
    /* What src/cli/cli_fed.c's save_model wrote (federated, synthetic data). */
    fr_provenance_init(&p);
    cr_assert_eq(fr_provenance_decode(&p,
        "{\"data\":null,\"test\":null,\"negatives\":null,\"split\":\"loo\",\"synthetic\":true,"
        "\"source\":\"synthetic data (2000 users, 1000 items, 100000 interactions)\",\"mode\":\"federated\","
        "\"model\":\"neumf\",\"seed\":3,\"strategy\":\"fedavg\",\"item_agg\":\"sum\",\"server_lr\":1,"
        "\"local_epochs\":1,\"batch\":32,\"optimizer\":\"adam\",\"lr\":0.006,\"item_rows\":\"sgd lr 0.8 decay "
        "0.96/round\",\"l2\":0.0002,\"negatives_per_pos\":4,\"clients_per_round\":0,\"partition\":\"user\","
        "\"keep_private_optim\":false}"), FR_OK, "%s", fr_errmsg());
    cr_assert_eq(p.mode, FR_RUN_FEDERATED);
    cr_assert_null(p.source.data);
    cr_assert(p.synthetic);
    cr_assert_eq(p.source.split, FR_SPLIT_LOO);
    cr_assert_eq(p.source.seed, 3);
    cr_assert_eq(p.model.kind, FR_MODEL_NEUMF);
    cr_assert_str_eq(p.partition, "user");
    cr_assert_str_eq(p.describe, "synthetic data (2000 users, 1000 items, 100000 interactions)");
    fr_provenance_destroy(&p);
    tu_rmtree(dir);
    free(dir);
    free(path);
}

/* ------------------------------------------------------------ with data and models */

Test(provenance, set_data_makes_paths_absolute) {
    char *dir = tu_tmpdir();
    char *path = tu_write(dir, "r.tsv", "1\t1\t5\t1\n1\t2\t4\t2\n2\t1\t3\t1\n2\t3\t2\t2\n");
    char cwd[PATH_MAX], real[PATH_MAX], want[PATH_MAX + 16];
    cr_assert_not_null(getcwd(cwd, sizeof cwd));
    cr_assert_not_null(realpath(dir, real));
    cr_assert_eq(chdir(dir), 0);
    fr_source s;
    fr_source_default(&s);
    s.data = "r.tsv";
    s.negatives = "nosuch.negative"; /* does not resolve: kept as given */
    s.eval_negatives = 0;
    fr_data *d = NULL;
    s.negatives = NULL;
    cr_assert_eq(fr_data_load(&d, &s), FR_OK, "%s", fr_errmsg());
    s.negatives = "nosuch.negative";
    fr_provenance p;
    fr_provenance_init(&p);
    cr_assert_eq(fr_provenance_set_data(&p, &s, d), FR_OK);
    cr_assert_eq(chdir(cwd), 0);
    snprintf(want, sizeof want, "%s/r.tsv", real);
    cr_assert_str_eq(p.source.data, want);
    cr_assert_str_eq(p.source.negatives, "nosuch.negative");
    cr_assert_null(p.source.test);
    cr_assert_eq(p.source.eval_negatives, 0);
    cr_assert_str_eq(p.describe, "r.tsv (split loo)");
    cr_assert_not(p.synthetic);
    /* Set again: the old strings are replaced, nothing leaks (ASan). */
    cr_assert_eq(fr_provenance_set_data(&p, &s, NULL), FR_OK);
    cr_assert_null(p.describe);
    fr_provenance_destroy(&p);
    fr_data_free(d);
    tu_rmtree(dir);
    free(dir);
    free(path);
}

Test(provenance, saved_model_carries_it) {
    char *dir = tu_tmpdir();
    char *path = tu_write(dir, "r.tsv", "10\t7\t5\t1\n10\t9\t4\t2\n20\t7\t3\t1\n20\t8\t2\t2\n30\t9\t1\t1\n30\t8\t4\t2\n");
    fr_source s;
    fr_source_default(&s);
    s.data = path;
    s.explicit_ratings = true;
    fr_data *d = NULL;
    cr_assert_eq(fr_data_load(&d, &s), FR_OK, "%s", fr_errmsg());
    fr_model_config mc;
    fr_model_config_default(&mc, FR_MODEL_MF);
    mc.n_users = 4; /* one row more than the data has users: its id is -1 */
    mc.n_items = 3;
    fr_model *m = NULL;
    cr_assert_eq(fr_model_create(&m, &mc), FR_OK);
    fr_provenance p;
    fr_provenance_init(&p);
    p.mode = FR_RUN_FEDERATED;
    p.model = mc;
    p.rounds = 12;
    p.seed = 4;
    p.partition = "iid:2";
    cr_assert_eq(fr_provenance_set_data(&p, &s, d), FR_OK);
    char *out = NULL;
    cr_assert_neq(asprintf(&out, "%s/m.fr", dir), -1);
    cr_assert_eq(fr_provenance_save_model(m, out, &p, d), FR_OK, "%s", fr_errmsg());
    fr_model *m2 = NULL;
    fr_model_meta meta;
    cr_assert_eq(fr_model_load(&m2, out, &meta), FR_OK);
    cr_assert_eq(meta.round, 12);
    cr_assert_eq(meta.epoch, 0);
    cr_assert_eq(meta.seed, 4);
    static const int64_t users[4] = {10, 20, 30, -1}, items[3] = {7, 8, 9};
    for (int k = 0; k < 4; k++) cr_assert_eq(meta.user_ids[k], users[k]);
    for (int k = 0; k < 3; k++) cr_assert_eq(meta.item_ids[k], items[k]);
    fr_provenance q;
    fr_provenance_init(&q);
    cr_assert_eq(fr_provenance_decode(&q, meta.config_json), FR_OK, "%s", fr_errmsg());
    assert_same(&p, &q);
    fr_provenance_destroy(&q);
    fr_model_meta_destroy(&meta);
    fr_model_free(m2);
    /* Centralized: the epochs go to the meta's epoch. */
    p.mode = FR_RUN_CENTRALIZED;
    p.epochs = 6;
    cr_assert_eq(fr_provenance_save_model(m, out, &p, NULL), FR_OK);
    cr_assert_eq(fr_model_load(&m2, out, &meta), FR_OK);
    cr_assert_eq(meta.round, 0);
    cr_assert_eq(meta.epoch, 6);
    cr_assert_null(meta.user_ids);
    fr_model_meta_destroy(&meta);
    fr_model_free(m2);
    fr_provenance_destroy(&p);
    fr_model_free(m);
    fr_data_free(d);
    tu_rmtree(dir);
    free(dir);
    free(path);
    free(out);
}

/* ------------------------------------------------------------ out of memory */

Test(provenance, allocation_failure_sweep) {
    char *dir = tu_tmpdir();
    char *path = tu_write(dir, "r.tsv", "10\t7\t5\t1\n10\t9\t4\t2\n20\t7\t3\t1\n20\t8\t2\t2\n");
    fr_source s;
    fr_source_default(&s);
    s.data = path;
    s.load.delimiter = "\t";
    s.load.format = FR_FORMAT_DELIMITED;
    fr_data *d = NULL;
    cr_assert_eq(fr_data_load(&d, &s), FR_OK, "%s", fr_errmsg());
    fr_model_config mc;
    fr_model_config_default(&mc, FR_MODEL_MF);
    mc.n_users = 2;
    mc.n_items = 3;
    fr_model *m = NULL;
    cr_assert_eq(fr_model_create(&m, &mc), FR_OK);
    char *out = NULL;
    cr_assert_neq(asprintf(&out, "%s/m.fr", dir), -1);
    fr_provenance p;
    fr_provenance_init(&p);
    p.partition = "user";
    /* set_data */
    for (long nth = 1;; nth++) {
        fr_test_fail_alloc(nth, true);
        fr_err e = fr_provenance_set_data(&p, &s, d);
        fr_test_fail_alloc(0, false);
        if (e == FR_OK) { cr_assert_gt(nth, 2); break; }
        cr_assert_eq(e, FR_ERR_NOMEM);
        cr_assert_null(p.source.data, "a failed set_data keeps the previous source");
    }
    /* encode */
    char *good = NULL;
    cr_assert_eq(fr_provenance_encode(&p, &good), FR_OK);
    for (long nth = 1;; nth++) {
        char *json = (char *)1;
        fr_test_fail_alloc(nth, true);
        fr_err e = fr_provenance_encode(&p, &json);
        fr_test_fail_alloc(0, false);
        if (e == FR_OK) {
            cr_assert_gt(nth, 10);
            cr_assert_str_eq(json, good);
            fr_provenance_json_free(json);
            break;
        }
        cr_assert_eq(e, FR_ERR_NOMEM);
        cr_assert_null(json);
    }
    /* decode */
    for (long nth = 1;; nth++) {
        fr_provenance q;
        fr_provenance_init(&q);
        fr_test_fail_alloc(nth, true);
        fr_err e = fr_provenance_decode(&q, good);
        fr_test_fail_alloc(0, false);
        if (e == FR_OK) {
            cr_assert_gt(nth, 10);
            assert_same(&p, &q);
            fr_provenance_destroy(&q);
            break;
        }
        cr_assert_eq(e, FR_ERR_NOMEM);
        cr_assert_null(q.source.data);
        cr_assert_null(q.owned_);
    }
    /* save */
    for (long nth = 1;; nth++) {
        fr_test_fail_alloc(nth, true);
        fr_err e = fr_provenance_save_model(m, out, &p, d);
        fr_test_fail_alloc(0, false);
        if (e == FR_OK) { cr_assert_gt(nth, 3); break; }
        cr_assert_eq(e, FR_ERR_NOMEM);
    }
    fr_provenance_json_free(good);
    fr_provenance_destroy(&p);
    fr_model_free(m);
    fr_data_free(d);
    tu_rmtree(dir);
    free(dir);
    free(path);
    free(out);
}
