/* Rows on request (docs/ARCHITECTURE.md, "The downlink"): a client given the round's rows
 * TASK (the dense tensors only) plans the item rows its step reads, gets exactly those rows
 * of the round's model, and its RESULT is byte for byte the one it sends after the whole
 * TASK; the rows it asks for are exactly the rows its RESULT names (so the request tells
 * the server nothing more); a row it did not fetch is NaN, so reading one cannot pass
 * unseen; the round counts the bytes each client was given; bad rows blocks are refused. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "fedrec/fl.h"
#include "fedrec/runtime.h"
#include "fl/fl_internal.h"
#include "testutil.h"

static void configs(fr_model_kind kind, fr_model_config *mc, fr_fl_config *cfg, const fr_dataset *d) {
    fr_model_config_default(mc, kind);
    fr_fl_config_default(cfg, kind);
    cfg->seed = 11;
    cfg->clients_per_round = 0.6;
    cfg->local_epochs = 2;
    cfg->batch = 8;
    mc->n_users = fr_dataset_n_users(d);
    mc->n_items = fr_dataset_n_items(d);
    mc->seed = cfg->seed;
}

/* The float stored little-endian at p. */
static float f32_at(const uint8_t *p) {
    uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static void rows_equal_the_broadcast(fr_model_kind kind, bool dp) {
    fr_dataset *d = tu_generate(40, 90, 700, 3);
    fr_model_config mc;
    fr_fl_config cfg;
    configs(kind, &mc, &cfg, d);
    if (dp) { /* the rows TASK carries the round's clip too */
        cfg.clients_per_round = 20;
        cfg.dp_clip = 0.5;
        cfg.dp_noise = 0.8;
        cfg.dp_seeded_noise = true;
    }
    fr_model *full = NULL; /* every user's private rows */
    cr_assert_eq(fr_model_create(&full, &mc), FR_OK);
    fr_round *r = NULL;
    cr_assert_eq(fr_round_create(&r, &mc, &cfg, fr_dataset_n_users(d), 1), FR_OK);
    fri_round_set_rows(r, true);
    fr_task *tf = NULL, *tr = NULL;
    cr_assert_eq(fr_task_create(&tf), FR_OK);
    cr_assert_eq(fr_task_create(&tr), FR_OK);
    fr_client_ws *wf = NULL, *wr = NULL;
    fr_result *res = NULL;
    cr_assert_eq(fr_result_create(&res), FR_OK);
    for (int round = 1; round <= 3; round++) {
        const uint32_t *ids;
        uint32_t k;
        cr_assert_eq(fr_round_begin(r, &ids, &k), FR_OK, "%s", fr_errmsg());
        const uint8_t *fb, *rb;
        size_t fn, rn;
        cr_assert_eq(fr_round_task(r, ids[0], &fb, &fn), FR_OK);
        cr_assert_eq(fri_round_task_rows_at(r, ids[0], UINT32_MAX, &rb, &rn), FR_OK, "%s", fr_errmsg());
        cr_assert_lt(rn, fn, "the rows TASK is smaller than the whole one");
        cr_assert_eq(fr_task_decode(tf, fb, fn), FR_OK, "%s", fr_errmsg());
        cr_assert_eq(fr_task_decode(tr, rb, rn), FR_OK, "%s", fr_errmsg());
        cr_assert(!fri_task_rows_only(tf) && fri_task_rows_only(tr));
        cr_assert_eq(fr_task_config_crc(tr), fr_task_config_crc(tf));
        cr_assert_eq(fr_task_dp_clip(tr), fr_task_dp_clip(tf));
        cr_assert_eq(fr_task_dp_clip(tr) > 0, dp);
        if (!wf) {
            cr_assert_eq(fr_client_ws_create(&wf, fr_task_model_config(tf), fr_task_fl_config(tf)), FR_OK);
            cr_assert_eq(fr_client_ws_create(&wr, fr_task_model_config(tr), fr_task_fl_config(tr)), FR_OK);
        }
        const fr_model *g = fr_round_model(r);
        /* the dense tensors of the rows TASK are the round's; its item rows NaN */
        for (int t = 0; t < fr_model_n_tensors(g); t++) {
            const fr_tensor *x = fr_model_tensor(g, t);
            if (x->kind == FR_TENSOR_USER_TABLE) continue;
            const float *a = fr_model_params_const(g) + x->offset, *b = fr_model_params_const(fr_task_model(tr)) + x->offset;
            for (size_t i = 0; i < (size_t)x->rows * x->cols; i++)
                cr_assert(x->kind == FR_TENSOR_DENSE ? memcmp(&a[i], &b[i], 4) == 0 : isnan(b[i]), "tensor %s", x->name);
        }
        uint64_t want_down = 0;
        for (uint32_t i = 0; i < k; i++) {
            uint32_t c = ids[i];
            const uint32_t *items;
            const float *ratings;
            size_t n = fr_dataset_user(d, c, &items, &ratings, NULL);
            if (!n) continue;
            fr_client_data cd = {c, items, ratings, n, fr_dataset_n_items(d), 0, NULL};
            float *prow[FR_MODEL_MAX_TENSORS], keep[FR_MODEL_MAX_TENSORS][256];
            size_t cols[FR_MODEL_MAX_TENSORS];
            int nu = 0;
            for (int t = 0; t < fr_model_n_tensors(full); t++) {
                const fr_tensor *x = fr_model_tensor(full, t);
                if (x->kind != FR_TENSOR_USER_TABLE) continue;
                cr_assert_leq(x->cols, 256);
                prow[nu] = fr_model_params(full) + x->offset + (size_t)c * x->cols;
                cols[nu] = x->cols;
                memcpy(keep[nu], prow[nu], x->cols * sizeof(float));
                nu++;
            }
            fr_client_private priv = {prow, NULL, NULL, NULL};
            /* the broadcast step */
            cr_assert_eq(fr_round_task(r, c, &fb, &fn), FR_OK);
            const uint8_t *out;
            size_t on;
            cr_assert_eq(fri_client_step_encode(wf, tf, c, &cd, &priv, &out, &on), FR_OK, "%s", fr_errmsg());
            uint8_t *a = malloc(on);
            memcpy(a, out, on);
            size_t an = on;
            float after[FR_MODEL_MAX_TENSORS][256];
            for (int u = 0; u < nu; u++) { /* the private rows after it, then back */
                memcpy(after[u], prow[u], cols[u] * sizeof(float));
                memcpy(prow[u], keep[u], cols[u] * sizeof(float));
            }
            /* the rows step: plan, fetch (as the server answers), fill, step */
            cr_assert_eq(fri_round_task_rows_at(r, c, i, &rb, &rn), FR_OK, "%s", fr_errmsg());
            const uint32_t *want;
            size_t L;
            cr_assert_eq(fri_client_plan_rows(wr, tr, c, &cd, &want, &L), FR_OK, "%s", fr_errmsg());
            cr_assert_gt(L, 0);
            uint32_t *rows = malloc(L * sizeof *rows);
            memcpy(rows, want, L * sizeof *rows);
            /* the rows asked for are exactly the rows the RESULT names (every table) */
            cr_assert_eq(fr_result_decode(res, a, an, fr_round_shape(r)), FR_OK, "%s", fr_errmsg());
            for (uint32_t t = 0; t < res->n_tables; t++) {
                cr_assert_eq(res->tables[t].count, L, "client %u table %u", c, t);
                cr_assert(memcmp(res->tables[t].ids, rows, L * sizeof *rows) == 0, "client %u table %u", c, t);
            }
            /* and its positives are among them (an independent look at the data) */
            for (size_t x = 0; x < n; x++) {
                bool found = false;
                for (size_t j = 0; j < L && !found; j++) found = rows[j] == items[x];
                cr_assert(found, "client %u: its item %u is not asked for", c, items[x]);
            }
            size_t bn = fri_task_rows_bytes(g, L);
            uint8_t *block = malloc(bn);
            fri_task_rows_put(block, g, rows, L);
            /* the block by hand: table after table, the rows in order, little-endian floats */
            const uint8_t *p = block;
            for (int t = 0; t < fr_model_n_tensors(g); t++) {
                const fr_tensor *x = fr_model_tensor(g, t);
                if (x->kind != FR_TENSOR_ITEM_TABLE) continue;
                for (size_t j = 0; j < L; j++)
                    for (uint32_t col = 0; col < x->cols; col++, p += 4) {
                        float v = f32_at(p), w = fr_model_params_const(g)[x->offset + (size_t)rows[j] * x->cols + col];
                        cr_assert(memcmp(&v, &w, 4) == 0);
                    }
            }
            cr_assert_eq((size_t)(p - block), bn);
            fri_round_count_down(r, bn);
            want_down += rn + bn;
            cr_assert_eq(fri_task_rows_fill(tr, rows, L, block, bn), FR_OK, "%s", fr_errmsg());
            cr_assert_eq(fri_client_step_encode(wr, tr, c, &cd, &priv, &out, &on), FR_OK, "%s", fr_errmsg());
            cr_assert(on == an && memcmp(out, a, an) == 0, "client %u round %d: the RESULT differs", c, round);
            for (int u = 0; u < nu; u++)
                cr_assert(memcmp(after[u], prow[u], cols[u] * sizeof(float)) == 0, "client %u: private rows differ", c);
            cr_assert_eq(fr_round_submit(r, a, an, 0), FR_OK, "%s", fr_errmsg());
            free(a);
            free(rows);
            free(block);
        }
        fr_round_stats st;
        cr_assert_eq(fr_round_end(r, &st), FR_OK, "%s", fr_errmsg());
        cr_assert_eq(st.bytes_down, want_down, "bytes down: the rows TASKs and the blocks given");
    }
    fr_result_free(res);
    fr_client_ws_free(wf);
    fr_client_ws_free(wr);
    fr_task_free(tf);
    fr_task_free(tr);
    fr_round_free(r);
    fr_model_free(full);
    fr_dataset_free(d);
}

Test(rows, neumf_step_on_fetched_rows_is_the_broadcast_step) { rows_equal_the_broadcast(FR_MODEL_NEUMF, false); }
Test(rows, mf_step_on_fetched_rows_is_the_broadcast_step) { rows_equal_the_broadcast(FR_MODEL_MF, false); }
Test(rows, bpr_step_on_fetched_rows_is_the_broadcast_step) { rows_equal_the_broadcast(FR_MODEL_BPR, false); }
Test(rows, dp_step_on_fetched_rows_is_the_broadcast_step) { rows_equal_the_broadcast(FR_MODEL_NEUMF, true); }

Test(rows, bad_rows_and_unfetched_rows_are_refused) {
    fr_dataset *d = tu_generate(20, 50, 300, 4);
    fr_model_config mc;
    fr_fl_config cfg;
    configs(FR_MODEL_NEUMF, &mc, &cfg, d);
    cfg.clients_per_round = 0;
    fr_round *r = NULL;
    cr_assert_eq(fr_round_create(&r, &mc, &cfg, fr_dataset_n_users(d), 1), FR_OK);
    const uint8_t *rb;
    size_t rn;
    cr_assert_eq(fr_round_begin(r, NULL, NULL), FR_OK);
    cr_assert_eq(fri_round_task_rows_at(r, 0, UINT32_MAX, &rb, &rn), FR_ERR_STATE, "rows are off");
    fr_round_abort(r);
    fri_round_set_rows(r, true);
    cr_assert_eq(fr_round_begin(r, NULL, NULL), FR_OK);
    cr_assert_eq(fri_round_task_rows_at(r, 0, UINT32_MAX, &rb, &rn), FR_OK, "%s", fr_errmsg());
    fr_task *t = NULL;
    cr_assert_eq(fr_task_create(&t), FR_OK);
    cr_assert_eq(fr_task_decode(t, rb, rn), FR_OK);
    const fr_model *g = fr_round_model(r);
    uint32_t ok[2] = {3, 9}, unsorted[2] = {9, 3}, out[2] = {3, 50};
    size_t bn = fri_task_rows_bytes(g, 2);
    uint8_t *block = calloc(1, bn + 4);
    cr_assert_eq(fri_task_rows_fill(t, ok, 2, block, bn - 4), FR_ERR_FORMAT);
    cr_assert(strstr(fr_errmsg(), "expected") != NULL, "%s", fr_errmsg());
    cr_assert_eq(fri_task_rows_fill(t, unsorted, 2, block, bn), FR_ERR_FORMAT);
    cr_assert(strstr(fr_errmsg(), "item 3 follows 9, expected increasing") != NULL, "%s", fr_errmsg());
    cr_assert_eq(fri_task_rows_fill(t, out, 2, block, bn), FR_ERR_FORMAT);
    cr_assert(strstr(fr_errmsg(), "item 50 out of range, the catalogue has 50") != NULL, "%s", fr_errmsg());
    /* a step on a rows TASK whose rows were never fetched reads NaN: refused, not trained */
    fr_client_ws *ws = NULL;
    cr_assert_eq(fr_client_ws_create(&ws, fr_task_model_config(t), fr_task_fl_config(t)), FR_OK);
    fr_model *full = NULL;
    cr_assert_eq(fr_model_create(&full, &mc), FR_OK);
    const uint32_t *items;
    const float *ratings;
    size_t n = fr_dataset_user(d, 0, &items, &ratings, NULL);
    cr_assert_gt(n, 0);
    fr_client_data cd = {0, items, ratings, n, fr_dataset_n_items(d), 0, NULL};
    float *prow[FR_MODEL_MAX_TENSORS];
    int nu = 0;
    for (int k = 0; k < fr_model_n_tensors(full); k++) {
        const fr_tensor *x = fr_model_tensor(full, k);
        if (x->kind == FR_TENSOR_USER_TABLE) prow[nu++] = fr_model_params(full) + x->offset;
    }
    fr_client_private priv = {prow, NULL, NULL, NULL};
    const uint8_t *o;
    size_t on;
    cr_assert_neq(fri_client_step_encode(ws, t, 0, &cd, &priv, &o, &on), FR_OK, "a step on NaN rows passed");
    /* a rows TASK's flag with quantized parameters is refused */
    uint8_t *bad = malloc(rn);
    memcpy(bad, rb, rn);
    fri_put_u32(bad + FR_MSG_HEADER_BYTES + 12, 6);
    fri_msg_seal(bad, rn, FR_MSG_TASK);
    cr_assert_eq(fr_task_decode(t, bad, rn), FR_ERR_FORMAT);
    cr_assert(strstr(fr_errmsg(), "flags 0x6") != NULL, "%s", fr_errmsg());
    /* rows for a TASK with the whole model: refused */
    const uint8_t *fb;
    size_t fn;
    cr_assert_eq(fr_round_task(r, 0, &fb, &fn), FR_OK);
    cr_assert_eq(fr_task_decode(t, fb, fn), FR_OK);
    cr_assert_eq(fri_task_rows_fill(t, ok, 2, block, bn), FR_ERR_STATE);
    free(bad);
    free(block);
    fr_client_ws_free(ws);
    fr_model_free(full);
    fr_task_free(t);
    fr_round_free(r);
    fr_dataset_free(d);
}

/* The corpus seed of a rows TASK (fuzz/corpus/task/valid_rows_neumf, the rows TASK of
 * valid_neumf): it decodes as a rows TASK whose dense tensors are valid_neumf's. */
Test(rows, the_corpus_seed_is_the_rows_task_of_valid_neumf) {
    char pa[4200], pb[4200];
    snprintf(pa, sizeof pa, "%s/fuzz/corpus/task/valid_neumf", FR_SOURCE_DIR);
    snprintf(pb, sizeof pb, "%s/fuzz/corpus/task/valid_rows_neumf", FR_SOURCE_DIR);
    size_t na, nb;
    uint8_t *a = (uint8_t *)tu_slurp(pa, &na), *b = (uint8_t *)tu_slurp(pb, &nb);
    cr_assert(a && b);
    fr_task *ta = NULL, *tb = NULL;
    cr_assert_eq(fr_task_create(&ta), FR_OK);
    cr_assert_eq(fr_task_create(&tb), FR_OK);
    cr_assert_eq(fr_task_decode(ta, a, na), FR_OK, "%s", fr_errmsg());
    cr_assert_eq(fr_task_decode(tb, b, nb), FR_OK, "%s", fr_errmsg());
    cr_assert(!fri_task_rows_only(ta) && fri_task_rows_only(tb));
    const fr_model *ga = fr_task_model(ta), *gb = fr_task_model(tb);
    size_t dense = 0, items = 0;
    for (int t = 0; t < fr_model_n_tensors(ga); t++) {
        const fr_tensor *x = fr_model_tensor(ga, t);
        size_t len = (size_t)x->rows * x->cols;
        const float *pa_ = fr_model_params_const(ga) + x->offset, *pb_ = fr_model_params_const(gb) + x->offset;
        if (x->kind == FR_TENSOR_DENSE) {
            cr_assert(memcmp(pa_, pb_, len * sizeof(float)) == 0, "%s", x->name);
            dense += len;
        } else if (x->kind == FR_TENSOR_ITEM_TABLE) {
            for (size_t i = 0; i < len; i++) cr_assert(isnan(pb_[i]));
            items += len;
        }
    }
    cr_assert_eq(na - nb, 4 * items, "the rows TASK is the TASK without its item rows");
    cr_assert_gt(dense, 0);
    fr_task_free(ta);
    fr_task_free(tb);
    free(a);
    free(b);
}
