/* The compact client-state store of a share (fri_sim_create_share with at > 0, a user each:
 * the mpi runtime's rank > 0): it keeps only its own users' rows (u % n == at), each
 * starting as the whole model's row of that user (checked against an independently
 * created whole model, fr_model_create), it loads exactly those rows from a whole
 * store's checkpoint and refuses to save one; process 0 and silos keep the whole store. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "fedrec/fedrec.h"
#include "fedrec/runtime.h"
#include "runtime/runtime_internal.h"

static fr_dataset *synthetic(void) {
    fr_gen_opts go;
    fr_gen_opts_default(&go);
    go.users = 23;
    go.items = 40;
    go.interactions = 400;
    go.seed = 9;
    fr_dataset *d = NULL;
    cr_assert_eq(fr_dataset_generate(&d, &go), FR_OK);
    return d;
}

static fr_err no_reduce(void *ctx, fr_round *ctl, fr_err local) {
    (void)ctx, (void)ctl;
    return local;
}

static void configs(fr_model_config *mc, fr_fl_config *cfg) {
    fr_model_config_default(mc, FR_MODEL_MF);
    fr_fl_config_default(cfg, FR_MODEL_MF);
    mc->dim = 6;
    cfg->seed = 11;
    cfg->clients_per_round = 1;
    cfg->local_epochs = 1;
}

/* every user table's rows of user u in m are those of `want` */
static void same_rows(fr_sim *s, const fr_model *want, uint32_t u, bool held) {
    for (int t = 0; t < fr_model_n_tensors(want); t++) {
        const fr_tensor *tt = fr_model_tensor(want, t);
        const float *r = fri_sim_private_row(s, t, u);
        if (tt->kind != FR_TENSOR_USER_TABLE) { cr_assert_null(r); continue; }
        if (!held) { cr_assert_null(r, "user %u is not this share's", u); continue; }
        cr_assert_not_null(r, "user %u", u);
        cr_assert_eq(memcmp(r, fr_model_params_const(want) + tt->offset + (size_t)u * tt->cols, tt->cols * 4), 0,
                     "user %u, tensor %s", u, tt->name);
    }
}

Test(sim_store, compact_rows_start_as_the_whole_models) {
    fr_dataset *d = synthetic();
    fr_model_config mc;
    fr_fl_config cfg;
    configs(&mc, &cfg);
    fr_model_config whole = mc;
    whole.n_users = fr_dataset_n_users(d);
    whole.n_items = fr_dataset_n_items(d);
    whole.seed = cfg.seed;
    fr_model *ref = NULL;
    cr_assert_eq(fr_model_create(&ref, &whole), FR_OK);
    size_t per_user = (fr_model_n_params(ref) - fr_model_n_shared(ref)) / whole.n_users; /* dim + bias */
    cr_assert_eq(per_user, 7);
    for (uint32_t n = 1; n <= 4; n++)
        for (uint32_t at = 0; at < n; at++) {
            fr_sim *s = NULL;
            cr_assert_eq(fri_sim_create_share(&s, &mc, &cfg, d, NULL, NULL, at, n), FR_OK, "%s", fr_errmsg());
            cr_assert_eq(fri_sim_set_share(s, at, n, no_reduce, NULL), FR_OK, "%s", fr_errmsg());
            if (n > 1) /* another share's: refused by a compact store */
                cr_assert_eq(fri_sim_set_share(s, (at + 1) % n, n, no_reduce, NULL), at ? FR_ERR_INVALID : FR_OK);
            uint32_t own = at == 0 ? whole.n_users : (whole.n_users - at + n - 1) / n; /* 23 users */
            cr_assert_eq(fri_sim_store_floats(s), own * per_user, "share %u of %u", at, n);
            for (uint32_t u = 0; u < whole.n_users; u++) same_rows(s, ref, u, at == 0 || u % n == at);
            cr_assert_null(fri_sim_private_row(s, 0, whole.n_users));
            fr_sim_free(s);
        }
    fr_model_free(ref);
    fr_dataset_free(d);
}

Test(sim_store, compact_store_loads_its_rows_from_a_whole_checkpoint) {
    fr_dataset *d = synthetic();
    fr_model_config mc;
    fr_fl_config cfg;
    configs(&mc, &cfg);
    fr_sim *whole = NULL;
    cr_assert_eq(fr_sim_create(&whole, &mc, &cfg, d, NULL), FR_OK, "%s", fr_errmsg());
    fr_round_stats st;
    for (int r = 0; r < 2; r++) cr_assert_eq(fr_sim_round(whole, &st), FR_OK, "%s", fr_errmsg());
    char path[] = "/tmp/fr_sim_store_XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    close(fd);
    cr_assert_eq(fr_sim_checkpoint_save(whole, path), FR_OK, "%s", fr_errmsg());
    fr_model *trained = NULL;
    cr_assert_eq(fr_model_clone(&trained, fr_sim_model(whole)), FR_OK);
    fr_sim *part = NULL;
    cr_assert_eq(fri_sim_create_share(&part, &mc, &cfg, d, NULL, NULL, 2, 3), FR_OK, "%s", fr_errmsg());
    cr_assert_eq(fri_sim_set_share(part, 2, 3, no_reduce, NULL), FR_OK, "%s", fr_errmsg());
    cr_assert_eq(fr_sim_checkpoint_load(part, path), FR_OK, "%s", fr_errmsg());
    for (uint32_t u = 0; u < fr_dataset_n_users(d); u++) same_rows(part, trained, u, u % 3 == 2);
    cr_assert_eq(fr_round_completed(fr_sim_controller(part)), 2);
    cr_assert_eq(fr_sim_checkpoint_save(part, path), FR_ERR_STATE);
    unlink(path);
    fr_model_free(trained);
    fr_sim_free(part);
    fr_sim_free(whole);
    fr_dataset_free(d);
}

/* A checkpoint's head alone (the mpi runtime's resume on a rank > 0: rank 0 sends it, then
 * each rank's rows): the head ends right before the rows (its length read from the
 * file's own layout: magic 8, version 4, state length 8, state, then 36 bytes up to and
 * with the row count), loads the controller's state (the round) into a compact store,
 * leaves the rows to the caller, is refused by a whole store, and a head of other data
 * (the fingerprint changed) is refused as the whole file would be. */
Test(sim_store, compact_store_loads_a_checkpoints_head) {
    fr_dataset *d = synthetic();
    fr_model_config mc;
    fr_fl_config cfg;
    configs(&mc, &cfg);
    fr_sim *whole = NULL;
    cr_assert_eq(fr_sim_create(&whole, &mc, &cfg, d, NULL), FR_OK, "%s", fr_errmsg());
    fr_round_stats st;
    for (int r = 0; r < 3; r++) cr_assert_eq(fr_sim_round(whole, &st), FR_OK, "%s", fr_errmsg());
    char path[] = "/tmp/fr_sim_store_XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    close(fd);
    cr_assert_eq(fr_sim_checkpoint_save(whole, path), FR_OK, "%s", fr_errmsg());
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f);
    static uint8_t bytes[1 << 16];
    size_t n = fread(bytes, 1, sizeof bytes, f);
    fclose(f);
    cr_assert_lt(n, sizeof bytes);
    uint64_t sn = 0;
    memcpy(&sn, bytes + 12, 8); /* little-endian host */
    size_t head = 8 + 4 + 8 + (size_t)sn + 36;
    cr_assert_eq(fri_sim_checkpoint_head_len(bytes, n), head);
    uint64_t np = 0;
    memcpy(&np, bytes + head - 8, 8);
    cr_assert_eq(np, (uint64_t)fr_dataset_n_users(d) * 7); /* dim 6 + the bias, every user */
    fr_sim *part = NULL;
    cr_assert_eq(fri_sim_create_share(&part, &mc, &cfg, d, NULL, NULL, 1, 2), FR_OK, "%s", fr_errmsg());
    cr_assert_eq(fri_sim_set_share(part, 1, 2, no_reduce, NULL), FR_OK, "%s", fr_errmsg());
    fr_model *fresh = NULL;
    cr_assert_eq(fr_model_clone(&fresh, fr_sim_model(part)), FR_OK);
    cr_assert_eq(fri_sim_checkpoint_decode_head(part, bytes, head, "head"), FR_OK, "%s", fr_errmsg());
    cr_assert_eq(fr_round_completed(fr_sim_controller(part)), 3);
    /* the rows are untouched: still the fresh ones */
    const fr_model *pm = fr_sim_model(part);
    for (int t = 0; t < fr_model_n_tensors(pm); t++) {
        const fr_tensor *tt = fr_model_tensor(pm, t);
        if (tt->kind != FR_TENSOR_USER_TABLE) continue;
        cr_assert_eq(memcmp(fr_model_params_const(pm) + tt->offset, fr_model_params_const(fresh) + tt->offset,
                            (size_t)tt->rows * tt->cols * 4), 0);
        float *row = fri_sim_private_row_mut(part, t, 3);
        cr_assert_eq(row, fri_sim_private_row(part, t, 3));
        cr_assert_null(fri_sim_private_row_mut(part, t, 2));
    }
    /* the shared prefix is the trained one */
    cr_assert_eq(memcmp(fr_model_params_const(pm), fr_model_params_const(fr_sim_model(whole)),
                        fr_model_n_shared(pm) * 4), 0);
    cr_assert_eq(fri_sim_checkpoint_decode_head(whole, bytes, head, "head"), FR_ERR_STATE);
    bytes[head - 12] ^= 1; /* the data's CRC in the fingerprint */
    cr_assert_eq(fri_sim_checkpoint_decode_head(part, bytes, head, "head"), FR_ERR_INVALID);
    cr_assert(strstr(fr_errmsg(), "other training data") != NULL, "%s", fr_errmsg());
    cr_assert_eq(fri_sim_checkpoint_head_len(bytes, 10), 0);
    unlink(path);
    fr_model_free(fresh);
    fr_sim_free(part);
    fr_sim_free(whole);
    fr_dataset_free(d);
}
