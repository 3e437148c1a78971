/* The networked client's side of secure aggregation (src/fl/secure.c): a RESULT turned
 * into the round's dense vector from the TASK alone gives the words the server's
 * controller writes for it (fri_round_accept_dense), with plain item means, per-row
 * weights (row_norm) and for neumf's dense layers; each value lands where a hand
 * computation from the tensors' offsets puts it. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "fedrec/fedrec.h"
#include "fl/fl_internal.h"

static void check(fr_model_kind kind, bool row_norm) {
    fr_model_config mc;
    fr_fl_config cfg;
    fr_model_config_default(&mc, kind);
    fr_fl_config_default(&cfg, kind);
    mc.n_users = 3;
    mc.n_items = 10;
    mc.dim = 2;
    cfg.row_norm = row_norm;
    cfg.clients_per_round = 0;
    fr_round *r = NULL;
    cr_assert_eq(fr_round_create(&r, &mc, &cfg, 3, 1), FR_OK, "%s", fr_errmsg());
    const uint32_t *ids;
    uint32_t k;
    cr_assert_eq(fr_round_begin(r, &ids, &k), FR_OK, "%s", fr_errmsg());
    cr_assert_eq(k, 3);
    const uint8_t *tb;
    size_t tn;
    cr_assert_eq(fr_round_task(r, ids[1], &tb, &tn), FR_OK);
    fr_task *t = NULL;
    cr_assert_eq(fr_task_create(&t), FR_OK);
    cr_assert_eq(fr_task_decode(t, tb, tn), FR_OK, "%s", fr_errmsg());
    /* a result of client ids[1]: dense values, rows 2 and 7 of every item table */
    const fr_update_shape *sh = fr_round_shape(r);
    fr_result *res = NULL;
    cr_assert_eq(fr_result_create(&res), FR_OK);
    cr_assert_eq(fri_result_reset(res, sh->dense_len, sh->n_tables, sh->widths), FR_OK);
    res->client = ids[1];
    res->round = 1;
    res->config_crc = fr_round_config_crc(r);
    res->weight = 5;
    res->examples = 17;
    res->loss_sum = 3.25;
    for (uint32_t i = 0; i < sh->dense_len; i++) res->dense[i] = (int64_t)i * 1000 - 7;
    for (uint32_t tt = 0; tt < sh->n_tables; tt++) {
        cr_assert_eq(fri_result_table_resize(res, tt, 2), FR_OK);
        res->tables[tt].ids[0] = 2;
        res->tables[tt].ids[1] = 7;
        for (uint32_t v = 0; v < 2 * sh->widths[tt]; v++) res->tables[tt].values[v] = -(int64_t)(v + 1) * 65536 + tt;
    }
    uint8_t *bytes = NULL;
    size_t bn = 0;
    cr_assert_eq(fr_result_encode(res, &bytes, &bn), FR_OK);
    size_t len = fri_secure_dense_len(fr_task_model(t), fr_task_fl_config(t));
    cr_assert_eq(len, fri_round_dense_len(r));
    int64_t *mine = calloc(len, sizeof *mine), *theirs = calloc(len, sizeof *theirs);
    fri_secure_header h;
    cr_assert_eq(fri_secure_densify(fr_task_model(t), fr_task_fl_config(t), bytes, bn, mine, len, &h), FR_OK,
                 "%s", fr_errmsg());
    cr_assert(h.client == ids[1] && h.round == 1 && h.weight == 5 && h.examples == 17 && h.loss_sum == 3.25);
    cr_assert_eq(h.config_crc, fr_round_config_crc(r));
    cr_assert_eq(fri_round_accept_dense(r, res, bn, 0, theirs), FR_OK, "%s", fr_errmsg());
    cr_assert(memcmp(mine, theirs, len * sizeof *mine) == 0, "the client's vector differs from the controller's");
    /* by hand: where the tensors put each value */
    const fr_model *g = fr_round_model(r);
    uint32_t at = 0, tt = 0;
    size_t ns = fr_model_n_shared(g), nz = 0;
    for (int i = 0; i < fr_model_n_tensors(g); i++) {
        const fr_tensor *x = fr_model_tensor(g, i);
        if (x->kind == FR_TENSOR_DENSE)
            for (uint32_t j = 0; j < x->rows * x->cols; j++, at++) cr_assert_eq(mine[x->offset + j], res->dense[at]);
        else if (x->kind == FR_TENSOR_ITEM_TABLE) {
            for (uint32_t v = 0; v < 2 * x->cols; v++) {
                size_t row = v < x->cols ? 2 : 7;
                cr_assert_eq(mine[x->offset + row * x->cols + v % x->cols], res->tables[tt].values[v]);
            }
            if (row_norm) {
                cr_assert_eq(mine[ns + (size_t)tt * 10 + 2], 5);
                cr_assert_eq(mine[ns + (size_t)tt * 10 + 7], 5);
            }
            tt++;
        }
    }
    for (size_t i = 0; i < len; i++) nz += mine[i] != 0;
    size_t want = sh->dense_len; /* i * 1000 - 7 is never 0 */
    for (uint32_t q = 0; q < sh->n_tables; q++) want += 2 * sh->widths[q] + (row_norm ? 2 : 0);
    cr_assert_eq(nz, want + 1, "nonzero words %zu, expected %zu (and the weight)", nz, want + 1);
    cr_assert_eq(mine[len - 1], 5);
    /* a vector of another length is refused */
    cr_assert_eq(fri_secure_densify(fr_task_model(t), fr_task_fl_config(t), bytes, bn, mine, len - 1, &h),
                 FR_ERR_INVALID);
    free(mine);
    free(theirs);
    fr_msg_free(bytes);
    fr_result_free(res);
    fr_task_free(t);
    fr_round_abort(r);
    fr_round_free(r);
}

Test(secure_densify, mf_item_means) { check(FR_MODEL_MF, false); }
Test(secure_densify, mf_row_weights) { check(FR_MODEL_MF, true); }
Test(secure_densify, neumf_dense_layers) { check(FR_MODEL_NEUMF, false); }
