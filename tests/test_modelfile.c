/* The model file: round trip of config, slab, meta and ids; damaged, truncated,
 * wrong-magic and wrong-version files give the documented errors naming the file;
 * out-of-memory during decode leaks nothing; version 2's config section (kind by name,
 * a per-kind parameter block) round-trips every hyperparameter and is checked behind the
 * CRC; version 1 files still load. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "fedrec/model.h"
#include "model/model_internal.h"
#include "testutil.h"

static fr_model *make(fr_model_kind kind) {
    fr_model_config c;
    fr_model_config_default(&c, kind);
    c.n_users = 3;
    c.n_items = 5;
    c.seed = 42;
    fr_model *m;
    cr_assert_eq(fr_model_create(&m, &c), FR_OK);
    return m;
}

static void roundtrip(fr_model_kind kind, const char *dir) {
    fr_model *m = make(kind);
    int64_t uids[3] = {10, -20, 30}, iids[5] = {100, 200, 300, 400, 1LL << 40};
    fr_model_meta meta = {7, 3, 99, "{\"lr\":0.001}", uids, iids};
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.fr", dir, fr_model_kind_name(kind));
    cr_assert_eq(fr_model_save(m, path, &meta), FR_OK, "%s", fr_errmsg());
    fr_model *l;
    fr_model_meta got;
    cr_assert_eq(fr_model_load(&l, path, &got), FR_OK, "%s", fr_errmsg());
    cr_assert_eq(fr_model_n_params(l), fr_model_n_params(m));
    cr_assert_eq(memcmp(fr_model_params(l), fr_model_params(m), fr_model_n_params(m) * 4), 0);
    const fr_model_config *a = fr_model_config_of(m), *b = fr_model_config_of(l);
    cr_assert_eq(a->kind, b->kind);
    cr_assert_eq(a->seed, b->seed);
    cr_assert_eq(a->l2, b->l2);
    cr_assert_eq(got.round, 7);
    cr_assert_eq(got.epoch, 3);
    cr_assert_eq(got.seed, 99);
    cr_assert_str_eq(got.config_json, "{\"lr\":0.001}");
    cr_assert_eq(memcmp(got.user_ids, uids, sizeof uids), 0);
    cr_assert_eq(memcmp(got.item_ids, iids, sizeof iids), 0);
    fr_model_meta_destroy(&got);
    fr_model_free(l);
    fr_model_free(m);
}

Test(modelfile, roundtrip_every_kind) {
    char *dir = tu_tmpdir();
    for (int k = FR_MODEL_MF; k <= FR_MODEL_NEUMF; k++) roundtrip((fr_model_kind)k, dir);
    tu_rmtree(dir);
    free(dir);
}

Test(modelfile, no_meta_no_ids) {
    fr_model *m = make(FR_MODEL_BPR), *l;
    uint8_t *bytes;
    size_t n;
    cr_assert_eq(fr_model_encode(m, NULL, &bytes, &n), FR_OK);
    fr_model_meta got;
    cr_assert_eq(fr_model_decode(&l, bytes, n, NULL, &got), FR_OK, "%s", fr_errmsg());
    cr_assert_null(got.user_ids);
    cr_assert_null(got.item_ids);
    cr_assert_str_eq(got.config_json, "");
    fr_model_meta_destroy(&got);
    fr_model_free(l);
    cr_assert_eq(fr_model_decode(&l, bytes, n, NULL, NULL), FR_OK);
    fr_model_free(l);
    fr_model_bytes_free(bytes);
    fr_model_free(m);
}

static fr_err load_bytes(const char *dir, const uint8_t *b, size_t n, char **path_out) {
    char path[4096];
    snprintf(path, sizeof path, "%s/bad.fr", dir);
    FILE *f = fopen(path, "wb");
    cr_assert(f);
    cr_assert_eq(fwrite(b, 1, n, f), n);
    fclose(f);
    *path_out = strdup(path);
    fr_model *m = (fr_model *)b;
    fr_model_meta meta;
    fr_err e = fr_model_load(&m, path, &meta);
    cr_assert_null(m);
    cr_assert_null(meta.config_json);
    return e;
}

Test(modelfile, damage_is_reported) {
    char *dir = tu_tmpdir(), *path;
    fr_model *m = make(FR_MODEL_NEUMF);
    uint8_t *bytes;
    size_t n;
    cr_assert_eq(fr_model_encode(m, NULL, &bytes, &n), FR_OK);
    uint8_t *c = malloc(n);
    /* a flipped byte anywhere after the version: checksum */
    size_t spots[] = {40, 200, n / 2, n - 5, n - 1};
    for (size_t s = 0; s < sizeof spots / sizeof spots[0]; s++) {
        memcpy(c, bytes, n);
        c[spots[s]] ^= 0x10;
        cr_assert_eq(load_bytes(dir, c, n, &path), FR_ERR_CHECKSUM, "byte %zu: %s", spots[s], fr_errmsg());
        cr_assert(strstr(fr_errmsg(), path) && strstr(fr_errmsg(), "damaged"), "%s", fr_errmsg());
        free(path);
    }
    /* truncated */
    cr_assert_eq(load_bytes(dir, bytes, n - 100, &path), FR_ERR_FORMAT);
    cr_assert(strstr(fr_errmsg(), path) && strstr(fr_errmsg(), "truncated"), "%s", fr_errmsg());
    free(path);
    cr_assert_eq(load_bytes(dir, bytes, 10, &path), FR_ERR_FORMAT);
    free(path);
    cr_assert_eq(load_bytes(dir, bytes, 0, &path), FR_ERR_FORMAT);
    free(path);
    /* wrong magic */
    memcpy(c, bytes, n);
    c[0] = 'X';
    cr_assert_eq(load_bytes(dir, c, n, &path), FR_ERR_FORMAT);
    cr_assert(strstr(fr_errmsg(), "magic"), "%s", fr_errmsg());
    free(path);
    /* a version from the future */
    memcpy(c, bytes, n);
    c[8] = 9;
    cr_assert_eq(load_bytes(dir, c, n, &path), FR_ERR_VERSION);
    cr_assert(strstr(fr_errmsg(), "version 9"), "%s", fr_errmsg());
    free(path);
    /* a missing file */
    fr_model *l;
    cr_assert_eq(fr_model_load(&l, "/nonexistent/model.fr", NULL), FR_ERR_IO);
    free(c);
    fr_model_bytes_free(bytes);
    fr_model_free(m);
    tu_rmtree(dir);
    free(dir);
}

Test(modelfile, out_of_memory_leaks_nothing) {
    fr_model *m = make(FR_MODEL_MLP);
    int64_t uids[3] = {1, 2, 3};
    fr_model_meta meta = {1, 2, 3, "{}", uids, NULL};
    uint8_t *bytes;
    size_t n;
    cr_assert_eq(fr_model_encode(m, &meta, &bytes, &n), FR_OK);
    for (long k = 1;; k++) {
        fr_model *l = NULL;
        fr_model_meta got;
        fr_test_fail_alloc(k, false);
        fr_err e = fr_model_decode(&l, bytes, n, "<memory>", &got);
        fr_test_fail_alloc(0, false);
        if (e == FR_OK) {
            fr_model_meta_destroy(&got);
            fr_model_free(l);
            break;
        }
        cr_assert_eq(e, FR_ERR_NOMEM);
        cr_assert_null(l);
        cr_assert_lt(k, 50);
    }
    fr_model_bytes_free(bytes);
    fr_model_free(m);
}

/* Mutations with a recomputed CRC reach the structural checks behind it: every one
 * must decode or fail with FR_ERR_FORMAT (FR_ERR_RANGE for a parameter made NaN or
 * infinite), never crash (ASan run) or allocate wildly. */
static void fix_crc(uint8_t *b, size_t n) {
    uint32_t c = fr_crc32c(0, b, n - 4);
    b[n - 4] = (uint8_t)c; b[n - 3] = (uint8_t)(c >> 8); b[n - 2] = (uint8_t)(c >> 16); b[n - 1] = (uint8_t)(c >> 24);
}

Test(modelfile, structural_checks_behind_the_crc) {
    fr_model *m = make(FR_MODEL_NEUMF);
    int64_t iids[5] = {1, 2, 3, 4, 5};
    fr_model_meta meta = {1, 2, 3, "{}", NULL, iids};
    uint8_t *bytes;
    size_t n;
    cr_assert_eq(fr_model_encode(m, &meta, &bytes, &n), FR_OK);
    uint8_t *c = malloc(n);
    fr_rng r;
    fr_rng_init(&r, 5, 0, 0, FR_PURPOSE_TEST);
    int ok = 0, fmt = 0;
    for (size_t pos = 20; pos < n - 4; pos += pos < 700 ? 1 : 97) { /* the header densely */
        for (int v = 0; v < 3; v++) {
            memcpy(c, bytes, n);
            c[pos] = v == 0 ? 0xff : v == 1 ? 0 : (uint8_t)fr_rng_u32(&r);
            fix_crc(c, n);
            fr_model *l = NULL;
            fr_model_meta got;
            fr_err e = fr_model_decode(&l, c, n, "<mut>", &got);
            if (e == FR_OK) { ok++; fr_model_meta_destroy(&got); fr_model_free(l); }
            else if (e == FR_ERR_RANGE) { /* a parameter made NaN or infinite: refused too */
                cr_assert(strstr(fr_errmsg(), "the model diverged") != NULL, "pos %zu: %s", pos, fr_errmsg());
            } else { cr_assert_eq(e, FR_ERR_FORMAT, "pos %zu: %s", pos, fr_errmsg()); fmt++; }
        }
    }
    cr_assert_gt(ok, 0);  /* parameter bytes may take any value */
    cr_assert_gt(fmt, 0); /* header fields may not */
    free(c);
    fr_model_bytes_free(bytes);
    fr_model_free(m);
}

/* ------------------------------------------------------------------ version 2 */

/* The config section alone (the model part of a federation's TASK too): every kind's
 * config comes back field for field, and the reader stops exactly at its end. */
Test(modelfile, config_section_round_trips_every_kind) {
    for (int k = FR_MODEL_MF; k <= FR_MODEL_NEUMF; k++) {
        fr_model_config c, got;
        fr_model_config_default(&c, (fr_model_kind)k);
        c.n_users = 11;
        c.n_items = 13;
        c.seed = 1234567890123ULL;
        c.l2 = 0.07f;
        c.init_std = 0.02f;
        if (k == FR_MODEL_MF) { c.bias_l2 = 0.01f; c.mu = 3.5f; c.dim = 7; }
        if (k == FR_MODEL_BPR) c.loss = FR_LOSS_BCE;
        if (k == FR_MODEL_MLP || k == FR_MODEL_NEUMF) {
            c.mlp_dim = 6;
            c.n_layers = 4;
            c.layers[0] = 12; c.layers[1] = 9; c.layers[2] = 5; c.layers[3] = 2;
        }
        if (k == FR_MODEL_GMF || k == FR_MODEL_NEUMF) c.dim = 5;
        fri_buf b = {0};
        fri_model_config_put(&b, &c);
        fri_buf_u32(&b, 0xabcdef01u); /* what follows the section */
        cr_assert_eq(b.err, FR_OK);
        fri_rd r;
        fri_rd_init(&r, b.data, b.len, "<mem>", "TASK message");
        cr_assert_eq(fri_model_config_get(&r, &got), FR_OK, "%s: %s", fr_model_kind_name((fr_model_kind)k), fr_errmsg());
        cr_assert_eq(memcmp(&c, &got, sizeof c), 0, "%s: the config differs", fr_model_kind_name((fr_model_kind)k));
        cr_assert_eq(fri_rd_left(&r), 4);
        /* the kind travels by name */
        cr_assert_eq(fri_get_u32(b.data), strlen(fr_model_kind_name((fr_model_kind)k)));
        cr_assert_eq(memcmp(b.data + 4, fr_model_kind_name((fr_model_kind)k), fri_get_u32(b.data)), 0);
        /* cut anywhere inside, it is refused */
        for (size_t cut = 0; cut < b.len - 4; cut++) {
            fri_rd_init(&r, b.data, cut, "<mem>", "TASK message");
            cr_assert_eq(fri_model_config_get(&r, &got), FR_ERR_FORMAT, "cut at %zu", cut);
        }
        fri_buf_free(&b);
    }
}

Test(modelfile, every_hyperparameter_is_stored) {
    fr_model_config c;
    fr_model_config_default(&c, FR_MODEL_MF);
    c.n_users = 3;
    c.n_items = 4;
    c.bias_l2 = 0.01f;
    c.mu = 3.5f;
    c.l2 = 0.07f;
    c.init_std = 0.02f;
    fr_model *m, *l;
    cr_assert_eq(fr_model_create(&m, &c), FR_OK);
    uint8_t *bytes;
    size_t n;
    cr_assert_eq(fr_model_encode(m, NULL, &bytes, &n), FR_OK);
    cr_assert_eq(fri_get_u32(bytes + 8), FR_MODEL_FILE_VERSION);
    cr_assert_eq(FR_MODEL_FILE_VERSION, 2);
    cr_assert_eq(fr_model_decode(&l, bytes, n, NULL, NULL), FR_OK, "%s", fr_errmsg());
    cr_assert_eq(memcmp(fr_model_config_of(l), &c, sizeof c), 0);
    /* so the loaded model scores and trains as the saved one */
    uint32_t u[2] = {0, 2}, i[2] = {3, 1};
    float r[2] = {4, 1}, s1[2], s2[2];
    double l1, l2;
    cr_assert_eq(fr_model_score(m, NULL, u, i, 2, s1), FR_OK);
    cr_assert_eq(fr_model_score(l, NULL, u, i, 2, s2), FR_OK);
    cr_assert_eq(memcmp(s1, s2, sizeof s1), 0);
    fr_model_ws *ws;
    cr_assert_eq(fr_model_ws_create(&ws, m, 2), FR_OK);
    fr_batch b = {u, i, r, NULL, 2, NULL};
    cr_assert_eq(fr_model_loss(m, ws, &b, &l1), FR_OK);
    cr_assert_eq(fr_model_loss(l, ws, &b, &l2), FR_OK);
    cr_assert_eq(l1, l2);
    fr_model_ws_free(ws);
    fr_model_free(l);
    fr_model_bytes_free(bytes);
    fr_model_free(m);
}

/* Version 1 files (kind by number, no bias_l2) still load, with bias_l2 = 0 ("as l2"),
 * and are written back as version 2 with the same parameters. */
Test(modelfile, reads_version_1) {
    const char *names[] = {"mf.fr", "gmf.fr", "neumf.fr"};
    const fr_model_kind kinds[] = {FR_MODEL_MF, FR_MODEL_GMF, FR_MODEL_NEUMF};
    for (int f = 0; f < 3; f++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/fuzz/corpus/modelfile/%s", FR_SOURCE_DIR, names[f]);
        fr_model *m, *l;
        fr_model_meta meta;
        cr_assert_eq(fr_model_load(&m, path, &meta), FR_OK, "%s", fr_errmsg());
        const fr_model_config *c = fr_model_config_of(m);
        cr_assert_eq(c->kind, kinds[f]);
        cr_assert_eq(c->bias_l2, 0.0f);
        cr_assert_eq(c->n_users, 2);
        cr_assert_eq(c->n_items, 3);
        cr_assert_str_eq(meta.config_json, "{\"k\":1}");
        if (kinds[f] == FR_MODEL_MF) cr_assert_eq(c->l2, 0.02f);
        uint8_t *bytes;
        size_t n;
        cr_assert_eq(fr_model_encode(m, &meta, &bytes, &n), FR_OK);
        cr_assert_eq(fri_get_u32(bytes + 8), 2);
        cr_assert_eq(fr_model_decode(&l, bytes, n, NULL, NULL), FR_OK, "%s", fr_errmsg());
        cr_assert_eq(fr_model_n_params(l), fr_model_n_params(m));
        cr_assert_eq(memcmp(fr_model_params(l), fr_model_params(m), fr_model_n_params(m) * 4), 0);
        fr_model_bytes_free(bytes);
        fr_model_meta_destroy(&meta);
        fr_model_free(l);
        fr_model_free(m);
    }
}

/* Behind a valid CRC: a kind name nobody registered, a name length out of range, a
 * parameter block longer or shorter than its fields, all FR_ERR_FORMAT with a message. */
Test(modelfile, kind_name_and_parameter_block_are_checked) {
    fr_model *m = make(FR_MODEL_NEUMF), *l = NULL;
    uint8_t *bytes;
    size_t n;
    cr_assert_eq(fr_model_encode(m, NULL, &bytes, &n), FR_OK);
    uint8_t *c = malloc(n);
    const size_t name_at = 20, block_len_at = name_at + 4 + 5 + 4 * 3 + 8 + 4 + 4;
    cr_assert_eq(fri_get_u32(bytes + name_at), 5);
    cr_assert_eq(memcmp(bytes + name_at + 4, "neumf", 5), 0);
    cr_assert_eq(fri_get_u32(bytes + block_len_at), 4 * 6); /* dim, mlp_dim, n_layers, 3 layers */
    struct { size_t at; uint32_t v; bool word; const char *msg; } cases[] = {
        {name_at + 4 + 4, 'x', false, "'neumx' is unknown"},
        {name_at, 0, true, "kind name of 0 bytes"},
        {name_at, 32, true, "kind name of 32 bytes"},
        {name_at, 4, true, "unknown"},                     /* "neum" */
        {block_len_at, 4 * 6 + 1, true, "unexpected bytes in the neumf parameter block"},
        {block_len_at, 4 * 6 - 4, true, "truncated"},
        {block_len_at, 0xffffffffu, true, "truncated"},
        {block_len_at + 4 + 8, 9, true, "n_layers 9"},     /* n_layers past FR_MODEL_MAX_LAYERS */
        {block_len_at + 4 + 8, 2, true, "unexpected bytes"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        memcpy(c, bytes, n);
        if (cases[k].word) fri_put_u32(c + cases[k].at, cases[k].v);
        else c[cases[k].at] = (uint8_t)cases[k].v;
        fix_crc(c, n);
        cr_assert_eq(fr_model_decode(&l, c, n, "<case>", NULL), FR_ERR_FORMAT, "case %zu", k);
        cr_assert_null(l);
        cr_assert(strstr(fr_errmsg(), cases[k].msg), "case %zu: %s", k, fr_errmsg());
    }
    free(c);
    fr_model_bytes_free(bytes);
    fr_model_free(m);
}

/* A model holding a NaN or an infinity (a diverged run) is refused on load, naming where. */
Test(modelfile, non_finite_weights_are_refused) {
    fr_model *m = make(FR_MODEL_MF);
    int t = fr_model_tensor_find(m, "item_bias");
    const fr_tensor *tt = fr_model_tensor(m, t);
    fr_model_params(m)[tt->offset + 2] = INFINITY;
    uint8_t *bytes;
    size_t n;
    cr_assert_eq(fr_model_encode(m, NULL, &bytes, &n), FR_OK);
    fr_model *l = NULL;
    cr_assert_eq(fr_model_decode(&l, bytes, n, "d.fr", NULL), FR_ERR_RANGE);
    cr_assert_null(l);
    cr_assert_str_eq(fr_errmsg(), "d.fr: tensor item_bias, row 2, column 0 holds inf: the model diverged, it is refused");
    fr_model_bytes_free(bytes);
    fr_model_free(m);
}

/* A model file is read from regular files only: a device never ends (/dev/zero). */
Test(modelfile, only_regular_files_are_read) {
    fr_model *l = NULL;
    cr_assert_eq(fr_model_load(&l, "/dev/zero", NULL), FR_ERR_IO);
    cr_assert(strstr(fr_errmsg(), "/dev/zero: is not a regular file") != NULL, "%s", fr_errmsg());
    cr_assert_null(l);
}

/* fr_model_save streams the parameters to the file: the file is fr_model_encode's bytes
 * (the in-memory encoder: length field, parameters and CRC-32C made there), for a model
 * of 1.6 MB of parameters (past the writer's 1 MiB buffer) and for a small one. */
Test(modelfile, saved_file_is_the_encoders_bytes) {
    char *dir = tu_tmpdir();
    for (int big = 0; big < 2; big++) {
        fr_model_config c;
        fr_model_config_default(&c, FR_MODEL_MF);
        c.n_users = big ? 7001 : 3;
        c.n_items = big ? 5003 : 5;
        c.dim = big ? 32 : c.dim;
        c.seed = 9;
        fr_model *m;
        cr_assert_eq(fr_model_create(&m, &c), FR_OK);
        cr_assert(!big || fr_model_n_params(m) * 4 > ((size_t)1 << 20));
        fr_model_meta meta = {4, 0, 5, "{\"x\":1}", NULL, NULL};
        char path[4096];
        snprintf(path, sizeof path, "%s/m%d.fr", dir, big);
        cr_assert_eq(fr_model_save(m, path, &meta), FR_OK, "%s", fr_errmsg());
        uint8_t *want;
        size_t wn, gn;
        cr_assert_eq(fr_model_encode(m, &meta, &want, &wn), FR_OK);
        char *got = tu_slurp(path, &gn);
        cr_assert_not_null(got);
        cr_assert_eq(gn, wn);
        cr_assert_eq(memcmp(got, want, wn), 0);
        free(got);
        fri_free(want);
        fr_model_free(m);
    }
    /* a file it cannot create: an error naming it, nothing left behind */
    fr_model *m = make(FR_MODEL_MF);
    char path[4096];
    snprintf(path, sizeof path, "%s/no/such/dir/m.fr", dir);
    cr_assert_eq(fr_model_save(m, path, NULL), FR_ERR_IO);
    cr_assert(strstr(fr_errmsg(), "no/such/dir") != NULL, "%s", fr_errmsg());
    fr_model_free(m);
    tu_rmtree(dir);
    free(dir);
}
