/* The model file: round trip of config, slab, meta and ids; damaged, truncated,
 * wrong-magic and wrong-version files give the documented errors naming the file;
 * out-of-memory during decode leaks nothing. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fedrec/model.h"
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
 * must decode or fail with FR_ERR_FORMAT, never crash (ASan run) or allocate wildly. */
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
            else { cr_assert_eq(e, FR_ERR_FORMAT, "pos %zu: %s", pos, fr_errmsg()); fmt++; }
        }
    }
    cr_assert_gt(ok, 0);  /* parameter bytes may take any value */
    cr_assert_gt(fmt, 0); /* header fields may not */
    free(c);
    fr_model_bytes_free(bytes);
    fr_model_free(m);
}
