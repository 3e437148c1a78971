/* Regression tests of the bad-input probe (issue 10), one or more per defect, each of
 * which failed before its fix:
 *   - a diverging federation stops with a message naming the round and the client, and a
 *     round's integer sum cannot overflow: a RESULT beyond the round's bound is refused,
 *     and k results at the bound sum exactly (defect 3);
 *   - a client for which no example can be made (a pairwise loss, a user with every
 *     item) steps without touching a NULL pointer and weighs nothing (defect 7). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/core.h"
#include "fedrec/fl.h"
#include "fedrec/run.h"
#include "fedrec/runtime.h"
#include "fl/fl_internal.h"
#include "testutil.h"

static fr_dataset *synthetic(uint32_t users, uint32_t items, uint64_t inter) {
    return tu_generate(users, items, inter, 9);
}

/* ------------------------------------------------------------------ 3: overflow */

Test(hardening, a_diverging_run_stops_naming_the_round) {
    fr_dataset *d = synthetic(50, 40, 800);
    fr_model_config mc;
    fr_fl_config fc;
    fr_model_config_default(&mc, FR_MODEL_MF);
    fr_fl_config_default(&fc, FR_MODEL_MF);
    fc.item_sum = true;
    fc.local.lr = 10.0f; /* `fedrec train --lr 10` on a small file */
    fr_sim *s = NULL;
    cr_assert_eq(fr_sim_create(&s, &mc, &fc, d, NULL), FR_OK);
    fr_err e = FR_OK;
    fr_round_stats st;
    int r = 0;
    for (; r < 20 && !e; r++) e = fr_sim_round(s, &st);
    cr_assert_eq(e, FR_ERR_RANGE, "a diverged run went on: %s", fr_errmsg());
    char want[32];
    snprintf(want, sizeof want, "round %d: client ", r);
    cr_assert(strstr(fr_errmsg(), want) != NULL && strstr(fr_errmsg(), "diverged") != NULL, "%s", fr_errmsg());
    cr_assert_eq(fr_round_completed(fr_sim_controller(s)), (uint32_t)r - 1, "the failed round applied nothing");
    fr_sim_free(s);
    fr_dataset_free(d);
}

/* k results at the round's bound (the largest value allowed, on one parameter) sum to
 * k * bound < 2^63: the delta applied is exactly k * bound / 2^32 / sum n_k; one unit more
 * is refused, and a client quantizing past the bound refuses to send. */
Test(hardening, the_rounds_sum_cannot_overflow) {
    fr_model_config mc;
    fr_fl_config fc;
    fr_model_config_default(&mc, FR_MODEL_MF);
    fr_fl_config_default(&fc, FR_MODEL_MF);
    mc.n_items = 2;
    mc.dim = 1;
    fc.item_sum = true; /* item rows: the plain sum of the values */
    for (uint32_t k = 1; k <= 7; k += 3) {
        fr_round *r = NULL;
        cr_assert_eq(fr_round_create(&r, &mc, &fc, k, 1), FR_OK);
        cr_assert_eq(fr_round_begin(r, NULL, NULL), FR_OK);
        uint64_t bound = fr_fl_fixed_bound(k);
        cr_assert(bound <= (uint64_t)INT64_MAX / k);
        double w0 = (double)fr_model_params_const(fr_round_model(r))[0];
        fr_result *res = NULL;
        cr_assert_eq(fr_result_create(&res), FR_OK);
        const uint32_t widths[2] = {1, 1};
        for (uint32_t c = 0; c < k; c++) {
            cr_assert_eq(fri_result_reset(res, 0, 2, widths), FR_OK);
            cr_assert_eq(fri_result_table_resize(res, 0, 1), FR_OK);
            res->tables[0].ids[0] = 0;
            res->tables[0].values[0] = (int64_t)bound + (c == 0 ? 1 : 0);
            res->client = c;
            res->round = 1;
            res->config_crc = fr_round_config_crc(r);
            res->weight = 1;
            if (c == 0) { /* one unit past the bound: refused, nothing counted */
                cr_assert_eq(fr_round_accept(r, res, 0), FR_ERR_RANGE);
                cr_assert(strstr(fr_errmsg(), "beyond round 1's bound") != NULL, "%s", fr_errmsg());
                res->tables[0].values[0] = (int64_t)bound;
            }
            cr_assert_eq(fr_round_accept(r, res, 0), FR_OK, "%s", fr_errmsg());
        }
        cr_assert_eq(fr_round_end(r, NULL), FR_OK);
        double moved = (double)fr_model_params_const(fr_round_model(r))[0] - w0;
        double want = (double)((long double)k * (long double)bound / 4294967296.0L);
        cr_assert(fabs(moved - want) <= 1e-6 * fabs(want), "k=%u: moved %g, want %g", k, moved, want);
        cr_assert(moved > 0, "the sum wrapped");
        fr_result_free(res);
        fr_round_free(r);
    }
}

/* ------------------------------------------------------------------ 7: no examples */

Test(hardening, a_client_without_examples_sends_weight_zero) {
    /* user 0 has every item: a pairwise loss has no negative to pair with */
    const int64_t u[] = {1, 1, 1, 2, 3, 3};
    const int64_t i[] = {10, 20, 30, 10, 20, 30};
    fr_dataset *d = NULL;
    cr_assert_eq(fr_dataset_from_arrays(&d, 6, u, i, NULL, NULL), FR_OK);
    fr_model_config mc;
    fr_fl_config fc;
    fr_model_config_default(&mc, FR_MODEL_BPR);
    fr_fl_config_default(&fc, FR_MODEL_BPR);
    mc.n_users = 1;
    mc.n_items = 3;
    mc.seed = fc.seed;
    fr_model *g = NULL;
    cr_assert_eq(fr_model_create(&g, &mc), FR_OK);
    fr_client_ws *ws = NULL;
    cr_assert_eq(fr_client_ws_create(&ws, &mc, &fc), FR_OK);
    fr_update *up = NULL;
    cr_assert_eq(fr_update_create(&up), FR_OK);
    const uint32_t *items;
    size_t n = fr_dataset_user(d, 0, &items, NULL, NULL);
    cr_assert_eq(n, 3);
    fr_client_data cd = {0, items, NULL, n, 3, 0, NULL};
    float row[32], row0[32];
    memcpy(row, fr_model_params_const(g) + fr_model_tensor(g, fr_model_tensor_find(g, "user_factor"))->offset,
           sizeof row);
    memcpy(row0, row, sizeof row);
    float *priv[1] = {row};
    fr_client_report rep;
    cr_assert_eq(fr_client_fit(ws, 1, 0, &cd, g, &(fr_client_private){priv, NULL, NULL, NULL}, up, &rep), FR_OK,
                 "%s", fr_errmsg());
    cr_assert_eq(up->weight, 0);
    cr_assert_eq(rep.examples, 0);
    for (uint32_t t = 0; t < up->n_tables; t++) cr_assert_eq(up->tables[t].count, 0);
    cr_assert_eq(memcmp(row, row0, sizeof row), 0, "nothing trained");
    /* in a federation: the round runs, and the other clients' steps count */
    fr_sim *s = NULL;
    fr_model_config_default(&mc, FR_MODEL_BPR);
    cr_assert_eq(fr_sim_create(&s, &mc, &fc, d, NULL), FR_OK);
    fr_round_stats st;
    cr_assert_eq(fr_sim_round(s, &st), FR_OK, "%s", fr_errmsg());
    cr_assert_eq(st.clients, 3);
    cr_assert(st.examples > 0);
    fr_sim_free(s);
    fr_update_free(up);
    fr_client_ws_free(ws);
    fr_model_free(g);
    fr_dataset_free(d);
}

/* ------------------------------------------------------------------ 5: other data */

/* A checkpoint of one training set refuses to resume on another of the same shape (the
 * model sizes agree, so nothing else would notice), naming both fingerprints; a model's
 * provenance refuses other training data the same way. */
Test(hardening, a_checkpoint_or_model_of_other_data_is_refused) {
    fr_dataset *a = synthetic(30, 20, 300), *b = tu_generate(30, 20, 300, 10); /* same shape, other interactions */
    cr_assert(fr_dataset_n_users(a) == fr_dataset_n_users(b) && fr_dataset_n_items(a) == fr_dataset_n_items(b));
    fr_model_config mc;
    fr_fl_config fc;
    fr_model_config_default(&mc, FR_MODEL_MF);
    fr_fl_config_default(&fc, FR_MODEL_MF);
    char *dir = tu_tmpdir(), path[1024];
    snprintf(path, sizeof path, "%s/a.ckpt", dir);
    fr_sim *s = NULL;
    fr_round_stats st;
    cr_assert_eq(fr_sim_create(&s, &mc, &fc, a, NULL), FR_OK);
    cr_assert_eq(fr_sim_round(s, &st), FR_OK);
    cr_assert_eq(fr_sim_checkpoint_save(s, path), FR_OK);
    fr_sim_free(s);
    cr_assert_eq(fr_sim_create(&s, &mc, &fc, b, NULL), FR_OK);
    cr_assert_eq(fr_sim_checkpoint_load(s, path), FR_ERR_INVALID);
    cr_assert(strstr(fr_errmsg(), "checkpoint of other training data") != NULL, "%s", fr_errmsg());
    cr_assert_eq(fr_round_completed(fr_sim_controller(s)), 0, "nothing loaded");
    fr_sim_free(s);
    cr_assert_eq(fr_sim_create(&s, &mc, &fc, a, NULL), FR_OK);
    cr_assert_eq(fr_sim_checkpoint_load(s, path), FR_OK, "%s", fr_errmsg());
    fr_sim_free(s);
    tu_rmtree(dir);
    free(dir);
    fr_dataset_free(a);
    fr_dataset_free(b);
}

Test(hardening, provenance_checks_the_training_data) {
    char *dir = tu_tmpdir();
    char *f1 = tu_write(dir, "a.tsv", "1\t1\t5\t1\n1\t2\t3\t2\n2\t1\t4\t1\n2\t3\t1\t2\n3\t2\t2\t1\n3\t3\t5\t2\n");
    char *f2 = tu_write(dir, "b.tsv", "1\t1\t4\t1\n1\t2\t3\t2\n2\t1\t4\t1\n2\t3\t1\t2\n3\t2\t2\t1\n3\t3\t5\t2\n");
    fr_source src;
    fr_source_default(&src);
    src.data = f1;
    src.explicit_ratings = true;
    fr_data *d1 = NULL, *d2 = NULL;
    cr_assert_eq(fr_data_load(&d1, &src), FR_OK, "%s", fr_errmsg());
    src.data = f2; /* one rating differs */
    cr_assert_eq(fr_data_load(&d2, &src), FR_OK);
    fr_provenance p, q;
    fr_provenance_init(&p);
    fr_provenance_init(&q);
    cr_assert_eq(fr_provenance_set_data(&p, &src, d1), FR_OK);
    char *json = NULL;
    cr_assert_eq(fr_provenance_encode(&p, &json), FR_OK);
    cr_assert(strstr(json, "\"train_fingerprint\"") != NULL, "%s", json);
    cr_assert_eq(fr_provenance_decode(&q, json), FR_OK);
    cr_assert(q.has_fingerprint && fr_fingerprint_equal(&q.fingerprint, &p.fingerprint));
    cr_assert_eq(fr_provenance_check_data(&q, d1), FR_OK);
    cr_assert_eq(fr_provenance_check_data(&q, d2), FR_ERR_INVALID);
    cr_assert(strstr(fr_errmsg(), "model/data mismatch: the model was trained on 3 users, 3 items") != NULL, "%s",
              fr_errmsg());
    fr_provenance_json_free(json);
    fr_provenance_destroy(&p);
    fr_provenance_destroy(&q);
    fr_data_free(d1);
    fr_data_free(d2);
    free(f1);
    free(f2);
    tu_rmtree(dir);
    free(dir);
}
