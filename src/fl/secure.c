/* Secure aggregation, the client's side of the fl layer: a RESULT turned into the dense
 * vector of the round's sums that the controller would add to a lane (round.c's
 * accept_into, written to a vector: fri_round_accept_dense on the server in the
 * simulator), so a networked client can mask it itself and send nothing else of its
 * update. Only the global model's layout (from the TASK) and the config are needed.
 *
 * Invariant: the vector is word for word what fri_round_accept_dense writes for the same
 * result (tests/test_sim_secagg.c holds them together), so the unmasked sum of such
 * vectors gives the plain round's model bit for bit. */
#include "fl/fl_internal.h"

/* The round's layout: dense tensors and item tables in slab order (as fr_round_create). */
typedef struct layout {
    int dense_t[FR_MODEL_MAX_TENSORS], table_t[FR_MODEL_MAX_TENSORS];
    int n_dense;
    uint32_t n_tables, dense_len;
    uint32_t widths[FR_MODEL_MAX_TENSORS], rows[FR_MODEL_MAX_TENSORS];
} layout;

static void layout_of(layout *l, const fr_model *g) {
    memset(l, 0, sizeof *l);
    for (int t = 0; t < fr_model_n_tensors(g); t++) {
        const fr_tensor *tt = fr_model_tensor(g, t);
        if (tt->kind == FR_TENSOR_DENSE) {
            l->dense_t[l->n_dense++] = t;
            l->dense_len += tt->rows * tt->cols;
        } else if (tt->kind == FR_TENSOR_ITEM_TABLE) {
            l->table_t[l->n_tables] = t;
            l->widths[l->n_tables] = tt->cols;
            l->rows[l->n_tables++] = tt->rows;
        }
    }
}

size_t fri_secure_dense_len(const fr_model *g, const fr_fl_config *cfg) {
    layout l;
    layout_of(&l, g);
    size_t n_items = fr_model_config_of(g)->n_items;
    size_t rows = cfg->row_norm ? (size_t)(l.n_tables ? l.n_tables : 1) * n_items : 0;
    return fr_model_n_shared(g) + rows + 1;
}

fr_err fri_secure_densify(const fr_model *g, const fr_fl_config *cfg, const uint8_t *result, size_t n, int64_t *out,
                          size_t len, fri_secure_header *h) {
    layout l;
    layout_of(&l, g);
    if (len != fri_secure_dense_len(g, cfg))
        return fri_fail(FR_ERR_INVALID, "secure aggregation: a vector of %zu words, the round's has %zu", len,
                        fri_secure_dense_len(g, cfg));
    fr_update_shape shape = {l.dense_len, l.n_tables, l.widths, l.rows};
    fri_result_view v;
    fr_err e = fri_result_view_bytes(&v, result, n, &shape);
    if (e) return e;
    memset(out, 0, len * sizeof *out);
    size_t ns = fr_model_n_shared(g), n_items = fr_model_config_of(g)->n_items;
    uint64_t *rw = cfg->row_norm ? (uint64_t *)(out + ns) : NULL;
    size_t at = 0;
    for (int i = 0; i < l.n_dense; i++) {
        const fr_tensor *tt = fr_model_tensor(g, l.dense_t[i]);
        size_t m = (size_t)tt->rows * tt->cols;
        fri_fl_add_ints_le(out + tt->offset, (const uint8_t *)v.dense + 8 * at, m);
        at += m;
    }
    for (uint32_t t = 0; t < v.n_tables; t++) {
        const fr_tensor *tt = fr_model_tensor(g, l.table_t[t]);
        size_t w = v.tables[t].width;
        for (uint32_t i = 0; i < v.tables[t].count; i++) {
            size_t row = fri_get_u32((const uint8_t *)v.tables[t].ids + 4 * (size_t)i);
            fri_fl_add_ints_le(out + tt->offset + row * w, (const uint8_t *)v.tables[t].values + 8 * (size_t)i * w, w);
            if (rw) rw[(size_t)t * n_items + row] += v.weight;
        }
    }
    out[len - 1] = (int64_t)v.weight;
    h->client = v.client;
    h->round = v.round;
    h->config_crc = v.config_crc;
    h->flags = v.flags;
    h->weight = v.weight;
    h->examples = v.examples;
    h->loss_sum = v.loss_sum;
    return FR_OK;
}
