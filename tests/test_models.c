/* Models: slab layout and init, hand-computed predictions and losses, gradient checks by
 * central differences for every model over all parameters a small batch touches,
 * touched-row bookkeeping, errors. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fedrec/model.h"
#include "gradcheck.h"

static fr_model *make(fr_model_kind kind, uint32_t users, uint32_t items, void (*tweak)(fr_model_config *)) {
    fr_model_config c;
    fr_model_config_default(&c, kind);
    c.n_users = users;
    c.n_items = items;
    if (tweak) tweak(&c);
    fr_model *m = NULL;
    cr_assert_eq(fr_model_create(&m, &c), FR_OK, "%s", fr_errmsg());
    return m;
}

Test(models, neumf_default_layout_matches_the_anchor) {
    fr_model *m = make(FR_MODEL_NEUMF, 943, 1682, NULL);
    /* item_gmf 1682x8, item_mlp 1682x32, 64->32->16->8 (+biases), out 16 -> 1 */
    size_t shared = 1682 * 8 + 1682 * 32 + (32 * 64 + 32) + (16 * 32 + 16) + (8 * 16 + 8) + 16 + 1;
    cr_assert_eq(fr_model_n_shared(m), shared);
    cr_assert_eq(fr_model_n_params(m), shared + 943 * (8 + 32));
    const char *names[] = {"item_gmf", "item_mlp", "mlp.0.weight", "mlp.0.bias", "mlp.1.weight", "mlp.1.bias",
                           "mlp.2.weight", "mlp.2.bias", "out.weight", "out.bias", "user_gmf", "user_mlp"};
    cr_assert_eq(fr_model_n_tensors(m), 12);
    size_t off = 0;
    for (int i = 0; i < 12; i++) {
        const fr_tensor *t = fr_model_tensor(m, i);
        cr_assert_str_eq(t->name, names[i]);
        cr_assert_eq(t->offset, off);
        off += (size_t)t->rows * t->cols;
        cr_assert_eq(t->kind == FR_TENSOR_USER_TABLE, i >= 10);
    }
    cr_assert_eq(((uintptr_t)fr_model_params(m)) % 64, 0);
    const fr_tensor *w0 = fr_model_tensor(m, fr_model_tensor_find(m, "mlp.0.weight"));
    cr_assert_eq(w0->rows, 32);
    cr_assert_eq(w0->cols, 64);
    /* init statistics */
    const float *p = fr_model_params(m);
    const fr_tensor *ig = fr_model_tensor(m, 0);
    double s2 = 0;
    for (size_t i = 0; i < (size_t)ig->rows * ig->cols; i++) s2 += (double)p[i] * p[i];
    cr_assert_float_eq(sqrt(s2 / (ig->rows * ig->cols)), 0.01, 0.0005);
    double bound = sqrt(6.0 / 96.0), mx = 0;
    for (size_t i = 0; i < 32 * 64; i++) mx = fmax(mx, fabs(p[w0->offset + i]));
    cr_assert(mx <= bound && mx > 0.95 * bound, "xavier max %g bound %g", mx, bound);
    const fr_tensor *ow = fr_model_tensor(m, fr_model_tensor_find(m, "out.weight"));
    for (size_t i = 0; i < 16; i++) cr_assert(fabs(p[ow->offset + i]) <= sqrt(3.0 / 16.0));
    cr_assert_eq(p[fr_model_tensor(m, 3)->offset], 0.0f);
    fr_model_free(m);
}

Test(models, init_is_deterministic_and_user_rows_match_a_client) {
    fr_model *a = make(FR_MODEL_NEUMF, 20, 30, NULL), *b = make(FR_MODEL_NEUMF, 20, 30, NULL);
    cr_assert_eq(memcmp(fr_model_params(a), fr_model_params(b), fr_model_n_params(a) * 4), 0);
    fr_model *client = make(FR_MODEL_NEUMF, 1, 30, NULL);
    cr_assert_eq(memcmp(fr_model_params(a), fr_model_params(client), fr_model_n_shared(a) * 4), 0);
    cr_assert_eq(fr_model_init_user_row(client, 0, 7), FR_OK);
    for (int t = 10; t < 12; t++) {
        const fr_tensor *ta = fr_model_tensor(a, t), *tc = fr_model_tensor(client, t);
        cr_assert_eq(memcmp(fr_model_params(a) + ta->offset + 7 * ta->cols, fr_model_params(client) + tc->offset,
                            ta->cols * 4), 0);
    }
    cr_assert_eq(fr_model_init_user_row(client, 1, 7), FR_ERR_RANGE);
    fr_model_free(b);
    fr_model_config c = *fr_model_config_of(a);
    c.seed = 2;
    cr_assert_eq(fr_model_create(&b, &c), FR_OK);
    cr_assert_neq(memcmp(fr_model_params(a), fr_model_params(b), 64), 0);
    fr_model_free(a); fr_model_free(b); fr_model_free(client);
}

static void tiny_mf(fr_model_config *c) { c->dim = 2; c->mu = 3.0f; c->l2 = 0.5f; }

Test(models, mf_prediction_and_loss_by_hand) {
    fr_model *m = make(FR_MODEL_MF, 2, 2, tiny_mf);
    float *p = fr_model_params(m);
    /* layout: item_factor [2x2], item_bias [2], user_factor [2x2], user_bias [2] */
    float q[4] = {1, 2, 0.5f, -1}, bi[2] = {0.1f, -0.2f}, pu[4] = {0.3f, 0.4f, -1, 0}, bu[2] = {0.2f, 0.5f};
    memcpy(p, q, 16); memcpy(p + 4, bi, 8); memcpy(p + 6, pu, 16); memcpy(p + 10, bu, 8);
    uint32_t users[2] = {0, 1}, items[2] = {1, 0};
    float r[2] = {4, 2}, s[2];
    cr_assert_eq(fr_model_score(m, NULL, users, items, 2, s), FR_OK);
    /* u0,i1: 3 + 0.2 - 0.2 + (0.3*0.5 + 0.4*-1) = 2.75;  u1,i0: 3 + 0.5 + 0.1 + (-1) = 2.6 */
    cr_assert_float_eq(s[0], 2.75f, 1e-6);
    cr_assert_float_eq(s[1], 2.6f, 1e-6);
    /* mse = (1.25^2 + 0.6^2)/2 = 0.96125; reg terms per example:
       u0,i1: .09+.16 + .25+1 + .04 + .04 = 1.58; u1,i0: 1 + 1+4 + .25 + .01 = 6.26; 0.5*mean = 1.96 */
    fr_model_ws *ws;
    cr_assert_eq(fr_model_ws_create(&ws, m, 4), FR_OK);
    fr_batch b = {users, items, r, NULL, 2, NULL};
    double loss;
    cr_assert_eq(fr_model_loss(m, ws, &b, &loss), FR_OK);
    cr_assert_float_eq(loss, 0.96125 + 1.96, 1e-6);
    fr_model_ws_free(ws);
    fr_model_free(m);
}

static void tiny_mf_bias_l2(fr_model_config *c) { tiny_mf(c); c->bias_l2 = 0.05f; }

Test(models, mf_bias_l2_weighs_the_biases_alone) {
    fr_model *m = make(FR_MODEL_MF, 2, 2, tiny_mf_bias_l2);
    float *p = fr_model_params(m);
    float q[4] = {1, 2, 0.5f, -1}, bi[2] = {0.1f, -0.2f}, pu[4] = {0.3f, 0.4f, -1, 0}, bu[2] = {0.2f, 0.5f};
    memcpy(p, q, 16); memcpy(p + 4, bi, 8); memcpy(p + 6, pu, 16); memcpy(p + 10, bu, 8);
    uint32_t users[2] = {0, 1}, items[2] = {1, 0};
    float r[2] = {4, 2};
    /* as above, mse 0.96125; factors: u0,i1 .09+.16+.25+1 = 1.5, u1,i0 1+0+1+4 = 6 -> 0.5*3.75
       = 1.875; biases: u0,i1 .04+.04 = .08, u1,i0 .25+.01 = .26 -> 0.05*0.17 = 0.0085 */
    fr_model_ws *ws;
    cr_assert_eq(fr_model_ws_create(&ws, m, 4), FR_OK);
    fr_batch b = {users, items, r, NULL, 2, NULL};
    double loss;
    cr_assert_eq(fr_model_loss(m, ws, &b, &loss), FR_OK);
    cr_assert_float_eq(loss, 0.96125 + 1.875 + 0.0085, 1e-6);
    fr_model_ws_free(ws);
    fr_model_free(m);
}

Test(models, gmf_score_by_hand) {
    fr_model *m = make(FR_MODEL_GMF, 1, 2, NULL);
    fr_model_config c = *fr_model_config_of(m);
    cr_assert_eq(c.dim, 8);
    float *p = fr_model_params(m);
    /* item_gmf [2x8], out.weight [8], out.bias, user_gmf [1x8] */
    for (int i = 0; i < 8; i++) { p[8 + i] = 0.5f; p[16 + i] = (float)i; p[25 + i] = 2.0f; }
    p[24] = -1.0f;
    uint32_t u = 0, it = 1;
    float s;
    cr_assert_eq(fr_model_score(m, NULL, &u, &it, 1, &s), FR_OK);
    cr_assert_float_eq(s, 28.0f - 1.0f, 1e-5); /* sum_i i * (2 * 0.5) - 1 */
    fr_model_free(m);
}

/* ---------------------------------------------------------------- gradient checks */

typedef struct gc_ctx {
    fr_model *m;
    fr_model_ws *ws;
    fr_batch *b;
} gc_ctx;

static double model_loss(void *p) {
    gc_ctx *c = p;
    double l;
    cr_assert_eq(fr_model_loss(c->m, c->ws, c->b, &l), FR_OK);
    return l;
}

static void tiny(fr_model_config *c) {
    c->dim = 3;
    c->mlp_dim = 4;
    c->n_layers = 2;
    c->layers[0] = 5;
    c->layers[1] = 3;
    c->init_std = 0.5f;
    c->l2 = 0.1f;
}
static void tiny_bce(fr_model_config *c) { tiny(c); c->loss = FR_LOSS_BCE; }
static void tiny_mf2(fr_model_config *c) { tiny(c); c->mu = 3.5f; }
static void tiny_mf3(fr_model_config *c) { tiny_mf2(c); c->bias_l2 = 0.7f; }

static int run_gradcheck(fr_model_kind kind, void (*tweak)(fr_model_config *), int corrupt) {
    fr_model *m = make(kind, 4, 7, tweak);
    /* biases start at 0: an example whose ReLU inputs are all 0 would then sit exactly on
       a kink, where central differences are meaningless. Move them off it. */
    for (int t = 0; t < fr_model_n_tensors(m); t++) {
        const fr_tensor *tt = fr_model_tensor(m, t);
        if (tt->kind == FR_TENSOR_DENSE && strstr(tt->name, ".bias"))
            for (uint32_t i = 0; i < tt->rows; i++) fr_model_params(m)[tt->offset + i] = 0.05f * (float)(i % 3) + 0.02f;
    }
    uint32_t users[6] = {0, 1, 3, 0, 1, 0}, items[6] = {2, 5, 2, 6, 0, 3}, neg[6] = {1, 4, 0, 5, 6, 2};
    float label[6];
    for (int i = 0; i < 6; i++) label[i] = kind == FR_MODEL_MF ? (float)(1 + i % 5) : (float)(i % 2);
    fr_batch b = {users, items, label, fr_model_config_of(m)->loss == FR_LOSS_BPR ? neg : NULL, 6, NULL};
    fr_model_ws *ws;
    fr_grad *g;
    cr_assert_eq(fr_model_ws_create(&ws, m, 8), FR_OK);
    cr_assert_eq(fr_grad_create(&g, m), FR_OK);
    double loss, loss2;
    cr_assert_eq(fr_model_loss_grad(m, ws, &b, g, &loss), FR_OK, "%s", fr_errmsg());
    cr_assert_eq(fr_model_loss(m, ws, &b, &loss2), FR_OK);
    cr_assert_eq(loss, loss2);
    float *gd = fr_grad_data(g);
    if (corrupt) gd[fr_model_tensor(m, 0)->offset + 2 * fr_model_tensor(m, 0)->cols] += 0.05f;
    gc_ctx ctx = {m, ws, &b};
    float *p = fr_model_params(m);
    int bad = 0, checked = 0;
    for (int t = 0; t < fr_model_n_tensors(m); t++) {
        const fr_tensor *tt = fr_model_tensor(m, t);
        if (tt->kind == FR_TENSOR_DENSE) {
            bad += gc_check(model_loss, &ctx, p + tt->offset, gd + tt->offset, (size_t)tt->rows * tt->cols, tt->name);
            checked += (int)(tt->rows * tt->cols);
            continue;
        }
        const fr_rowset *s = fr_grad_touched(g, t);
        cr_assert(s && s->count > 0);
        for (uint32_t r = 0; r < tt->rows; r++) {
            size_t o = tt->offset + (size_t)r * tt->cols;
            if (s->mark[r]) {
                bad += gc_check(model_loss, &ctx, p + o, gd + o, tt->cols, tt->name);
                checked += (int)tt->cols;
            } else {
                /* an untouched row has no gradient, and the loss does not depend on it */
                for (uint32_t c = 0; c < tt->cols; c++) cr_assert_eq(gd[o + c], 0.0f);
            }
        }
    }
    cr_assert_gt(checked, 10);
    /* a client's running set of touched item rows */
    int it0 = 0;
    while (fr_model_tensor(m, it0)->kind != FR_TENSOR_ITEM_TABLE) it0++;
    fr_rowset all;
    cr_assert_eq(fr_rowset_init(&all, 7), FR_OK);
    cr_assert_eq(fr_rowset_merge(&all, fr_grad_touched(g, it0)), FR_OK);
    cr_assert_eq(fr_rowset_merge(&all, fr_grad_touched(g, it0)), FR_OK);
    uint32_t want = fr_model_config_of(m)->loss == FR_LOSS_BPR ? 7 : 5; /* {2,5,6,0,3} (+ negatives {1,4}) */
    cr_assert_eq(all.count, want, "%u rows", all.count);
    fr_rowset_destroy(&all);
    fr_grad_zero(g);
    for (size_t i = 0; i < fr_model_n_params(m); i++) cr_assert_eq(gd[i], 0.0f);
    for (int t = 0; t < fr_model_n_tensors(m); t++)
        if (fr_grad_touched(g, t)) cr_assert_eq(fr_grad_touched(g, t)->count, 0);
    fr_grad_free(g);
    fr_model_ws_free(ws);
    fr_model_free(m);
    return bad;
}

/* A minibatch of one user (a federated client's, >= 8 examples): the MLP's first layer
 * then takes the shared-prefix path; its gradient must pass the same central differences. */
static int run_gradcheck_one_user(fr_model_kind kind, int corrupt) {
    fr_model *m = make(kind, 4, 7, tiny);
    for (int t = 0; t < fr_model_n_tensors(m); t++) {
        const fr_tensor *tt = fr_model_tensor(m, t);
        if (tt->kind == FR_TENSOR_DENSE && strstr(tt->name, ".bias"))
            for (uint32_t i = 0; i < tt->rows; i++) fr_model_params(m)[tt->offset + i] = 0.05f * (float)(i % 3) + 0.02f;
    }
    uint32_t users[10], items[10] = {2, 5, 2, 6, 0, 3, 1, 4, 6, 5};
    float label[10];
    for (int i = 0; i < 10; i++) { users[i] = 2; label[i] = (float)(i % 2); }
    fr_batch b = {users, items, label, NULL, 10, NULL};
    fr_model_ws *ws;
    fr_grad *g;
    cr_assert_eq(fr_model_ws_create(&ws, m, 16), FR_OK);
    cr_assert_eq(fr_grad_create(&g, m), FR_OK);
    double loss;
    cr_assert_eq(fr_model_loss_grad(m, ws, &b, g, &loss), FR_OK, "%s", fr_errmsg());
    float *gd = fr_grad_data(g), *p = fr_model_params(m);
    if (corrupt) { /* the user half of the first MLP layer's weights */
        for (int t = 0; t < fr_model_n_tensors(m); t++)
            if (strstr(fr_model_tensor(m, t)->name, "mlp.0.weight")) gd[fr_model_tensor(m, t)->offset] += 0.05f;
    }
    gc_ctx ctx = {m, ws, &b};
    int bad = 0;
    for (int t = 0; t < fr_model_n_tensors(m); t++) {
        const fr_tensor *tt = fr_model_tensor(m, t);
        if (tt->kind == FR_TENSOR_DENSE) {
            bad += gc_check(model_loss, &ctx, p + tt->offset, gd + tt->offset, (size_t)tt->rows * tt->cols, tt->name);
            continue;
        }
        const fr_rowset *s = fr_grad_touched(g, t);
        for (uint32_t r = 0; r < tt->rows; r++)
            if (s->mark[r]) bad += gc_check(model_loss, &ctx, p + tt->offset + (size_t)r * tt->cols,
                                            gd + tt->offset + (size_t)r * tt->cols, tt->cols, tt->name);
    }
    fr_grad_free(g);
    fr_model_ws_free(ws);
    fr_model_free(m);
    return bad;
}

Test(gradcheck, mlp_one_user_batch) { cr_assert_eq(run_gradcheck_one_user(FR_MODEL_MLP, 0), 0); }
Test(gradcheck, neumf_one_user_batch) { cr_assert_eq(run_gradcheck_one_user(FR_MODEL_NEUMF, 0), 0); }
Test(gradcheck, one_user_batch_fails_on_a_wrong_gradient) {
    cr_assert_gt(run_gradcheck_one_user(FR_MODEL_NEUMF, 1), 0);
}

Test(gradcheck, mf) { cr_assert_eq(run_gradcheck(FR_MODEL_MF, tiny_mf2, 0), 0); }
Test(gradcheck, mf_with_bias_l2) { cr_assert_eq(run_gradcheck(FR_MODEL_MF, tiny_mf3, 0), 0); }
Test(gradcheck, bpr_with_bpr_loss) { cr_assert_eq(run_gradcheck(FR_MODEL_BPR, tiny, 0), 0); }
Test(gradcheck, bpr_with_bce_loss) { cr_assert_eq(run_gradcheck(FR_MODEL_BPR, tiny_bce, 0), 0); }
Test(gradcheck, gmf) { cr_assert_eq(run_gradcheck(FR_MODEL_GMF, tiny, 0), 0); }
Test(gradcheck, mlp) { cr_assert_eq(run_gradcheck(FR_MODEL_MLP, tiny, 0), 0); }
Test(gradcheck, neumf) { cr_assert_eq(run_gradcheck(FR_MODEL_NEUMF, tiny, 0), 0); }
Test(gradcheck, fails_on_a_wrong_gradient) { cr_assert_gt(run_gradcheck(FR_MODEL_NEUMF, tiny, 1), 0); }

Test(models, neumf_score_matches_a_naive_forward) {
    fr_model *m = make(FR_MODEL_NEUMF, 3, 5, tiny);
    const float *p = fr_model_params(m);
    uint32_t u = 2, it = 4;
    float s;
    cr_assert_eq(fr_model_score(m, NULL, &u, &it, 1, &s), FR_OK);
#define T(name) (p + fr_model_tensor(m, fr_model_tensor_find(m, name))->offset)
    double x[8], h1[5], h2[3], out = T("out.bias")[0];
    for (int k = 0; k < 3; k++) out += T("out.weight")[k] * (double)T("user_gmf")[u * 3 + k] * T("item_gmf")[it * 3 + k];
    for (int k = 0; k < 4; k++) { x[k] = T("user_mlp")[u * 4 + k]; x[4 + k] = T("item_mlp")[it * 4 + k]; }
    for (int o = 0; o < 5; o++) {
        double a = T("mlp.0.bias")[o];
        for (int k = 0; k < 8; k++) a += T("mlp.0.weight")[o * 8 + k] * x[k];
        h1[o] = a > 0 ? a : 0;
    }
    for (int o = 0; o < 3; o++) {
        double a = T("mlp.1.bias")[o];
        for (int k = 0; k < 5; k++) a += T("mlp.1.weight")[o * 5 + k] * h1[k];
        h2[o] = a > 0 ? a : 0;
    }
    for (int k = 0; k < 3; k++) out += T("out.weight")[3 + k] * h2[k];
#undef T
    cr_assert_float_eq(s, out, 1e-5);
    fr_model_free(m);
}

Test(models, shared_prefix_helpers) {
    fr_model *a = make(FR_MODEL_MF, 3, 4, NULL), *b = make(FR_MODEL_MF, 1, 4, NULL);
    fr_model_params(a)[0] += 1.0f;
    fr_model_set_shared(b, fr_model_params(a));
    cr_assert_eq(memcmp(fr_model_params(a), fr_model_params(b), fr_model_n_shared(a) * 4), 0);
    float *d = calloc(fr_model_n_shared(a), 4), *ref = malloc(fr_model_n_shared(a) * 4);
    memcpy(ref, fr_model_params(a), fr_model_n_shared(a) * 4);
    fr_model_params(b)[1] += 0.5f;
    fr_model_shared_delta(b, ref, d);
    cr_assert_float_eq(d[1], 0.5f, 1e-6);
    cr_assert_eq(d[0], 0.0f);
    free(d); free(ref);
    fr_model_free(a); fr_model_free(b);
}

Test(models, errors_are_explained) {
    fr_model_config c;
    fr_model_config_default(&c, FR_MODEL_MF);
    c.n_users = 3;
    cr_assert_eq(fr_model_config_check(&c), FR_ERR_INVALID);
    cr_assert(strstr(fr_errmsg(), "n_items"));
    c.n_items = 4;
    c.loss = FR_LOSS_BCE;
    cr_assert_eq(fr_model_config_check(&c), FR_ERR_INVALID);
    cr_assert(strstr(fr_errmsg(), "mse"), "%s", fr_errmsg());
    c.loss = FR_LOSS_MSE;
    c.bias_l2 = -0.5f;
    cr_assert_eq(fr_model_config_check(&c), FR_ERR_INVALID);
    cr_assert(strstr(fr_errmsg(), "bias_l2 -0.5"), "%s", fr_errmsg());
    fr_model_config_default(&c, FR_MODEL_NEUMF);
    c.n_items = 4;
    c.n_layers = 0;
    fr_model *m = (fr_model *)&c;
    cr_assert_eq(fr_model_create(&m, &c), FR_ERR_INVALID);
    cr_assert_null(m);
    fr_model_kind k;
    cr_assert_eq(fr_model_kind_parse("neumf", &k), FR_OK);
    cr_assert_eq(k, FR_MODEL_NEUMF);
    cr_assert_eq(fr_model_kind_parse("svd", &k), FR_ERR_INVALID);

    m = make(FR_MODEL_GMF, 2, 3, NULL);
    fr_model_ws *ws;
    fr_grad *g;
    cr_assert_eq(fr_model_ws_create(&ws, m, 2), FR_OK);
    cr_assert_eq(fr_grad_create(&g, m), FR_OK);
    uint32_t u[3] = {0, 1, 0}, it[3] = {0, 3, 1};
    float y[3] = {1, 0, 1};
    double l;
    fr_batch b = {u, it, y, NULL, 2, NULL};
    cr_assert_eq(fr_model_loss_grad(m, ws, &b, g, &l), FR_ERR_RANGE);
    cr_assert(strstr(fr_errmsg(), "item 3"), "%s", fr_errmsg());
    for (size_t i = 0; i < fr_model_n_params(m); i++) cr_assert_eq(fr_grad_data(g)[i], 0.0f);
    b.n = 3;
    cr_assert_eq(fr_model_loss_grad(m, ws, &b, g, &l), FR_ERR_INVALID);
    b.n = 1;
    b.label = NULL;
    cr_assert_eq(fr_model_loss_grad(m, ws, &b, g, &l), FR_ERR_INVALID);
    fr_model *other = make(FR_MODEL_MLP, 2, 3, NULL);
    b.label = y;
    cr_assert_eq(fr_model_loss_grad(other, ws, &b, g, &l), FR_ERR_INVALID);
    fr_model_free(other);
    fr_grad_free(g);
    fr_model_ws_free(ws);
    fr_model_free(m);
}

Test(models, out_of_memory_leaks_nothing) {
    for (long n = 1;; n++) {
        fr_test_fail_alloc(n, false);
        fr_model *m = NULL;
        fr_model_ws *ws = NULL;
        fr_grad *g = NULL;
        fr_model_config c;
        fr_model_config_default(&c, FR_MODEL_NEUMF);
        c.n_users = 3;
        c.n_items = 5;
        fr_err e = fr_model_create(&m, &c);
        if (!e) e = fr_model_ws_create(&ws, m, 4);
        if (!e) e = fr_grad_create(&g, m);
        fr_test_fail_alloc(0, false);
        fr_grad_free(g);
        fr_model_ws_free(ws);
        fr_model_free(m);
        if (e == FR_OK) break;
        cr_assert_eq(e, FR_ERR_NOMEM);
        cr_assert_lt(n, 100);
    }
}

Test(models, split_batch_gradients_combine_to_the_whole) {
    fr_model *m = make(FR_MODEL_NEUMF, 4, 9, tiny);
    uint32_t u[7] = {0, 1, 2, 3, 0, 1, 2}, it[7] = {0, 8, 3, 3, 5, 1, 8};
    float y[7] = {1, 0, 0, 1, 1, 0, 1};
    fr_model_ws *ws;
    fr_grad *whole, *g1, *g2;
    cr_assert_eq(fr_model_ws_create(&ws, m, 7), FR_OK);
    cr_assert_eq(fr_grad_create(&whole, m), FR_OK);
    cr_assert_eq(fr_grad_create(&g1, m), FR_OK);
    cr_assert_eq(fr_grad_create(&g2, m), FR_OK);
    double l, l1, l2;
    fr_batch b = {u, it, y, NULL, 7, NULL}, b1 = {u, it, y, NULL, 3, NULL}, b2 = {u + 3, it + 3, y + 3, NULL, 4, NULL};
    cr_assert_eq(fr_model_loss_grad(m, ws, &b, whole, &l), FR_OK);
    cr_assert_eq(fr_model_loss_grad(m, ws, &b1, g1, &l1), FR_OK);
    cr_assert_eq(fr_model_loss_grad(m, ws, &b2, g2, &l2), FR_OK);
    cr_assert_float_eq(l, (3 * l1 + 4 * l2) / 7, 1e-6);
    cr_assert_eq(fr_grad_combine(g1, 3.0f / 7, g2, 4.0f / 7), FR_OK);
    for (size_t i = 0; i < fr_model_n_params(m); i++)
        cr_assert_float_eq(fr_grad_data(g1)[i], fr_grad_data(whole)[i], 1e-6, "param %zu", i);
    for (int t = 0; t < fr_model_n_tensors(m); t++)
        if (fr_grad_touched(whole, t)) cr_assert_eq(fr_grad_touched(g1, t)->count, fr_grad_touched(whole, t)->count);
    fr_grad_free(whole); fr_grad_free(g1); fr_grad_free(g2);
    fr_model_ws_free(ws);
    fr_model_free(m);
}

Test(models, a_server_model_may_hold_no_users) {
    fr_model *m = make(FR_MODEL_NEUMF, 0, 9, NULL);
    cr_assert_eq(fr_model_n_params(m), fr_model_n_shared(m));
    fr_grad *g;
    cr_assert_eq(fr_grad_create(&g, m), FR_OK);
    fr_grad_free(g);
    fr_model_free(m);
}

/* End to end: each model fits a small planted pattern with Adam (sparse rows and dense),
 * so model, gradient, touched rows and optimizer are wired together correctly. */
static double fit(fr_model_kind kind, int sparse) {
    fr_model_config c;
    fr_model_config_default(&c, kind);
    c.n_users = 12;
    c.n_items = 15;
    c.init_std = 0.1f;
    if (kind == FR_MODEL_MF) c.mu = 3.0f;
    fr_model *m;
    fr_model_ws *ws;
    fr_grad *g;
    fr_optim *o;
    fr_optim_config oc;
    fr_optim_config_default(&oc, FR_OPTIM_ADAM);
    oc.lr = 0.02f;
    oc.sparse_rows = sparse;
    cr_assert_eq(fr_model_create(&m, &c), FR_OK);
    cr_assert_eq(fr_model_ws_create(&ws, m, 180), FR_OK);
    cr_assert_eq(fr_grad_create(&g, m), FR_OK);
    cr_assert_eq(fr_optim_create(&o, m, &oc), FR_OK);
    uint32_t u[180], it[180], neg[180];
    float y[180];
    for (uint32_t k = 0; k < 180; k++) {
        u[k] = k / 15;
        it[k] = k % 15;
        int pos = (u[k] + it[k]) % 3 == 0;
        y[k] = kind == FR_MODEL_MF ? (pos ? 5.0f : 1.0f) : (float)pos;
        neg[k] = (it[k] + 1) % 15; /* (u + i + 1) % 3 != 0 whenever i is a positive */
    }
    fr_batch b = {u, it, y, c.loss == FR_LOSS_BPR ? neg : NULL, 180, NULL};
    if (c.loss == FR_LOSS_BPR) {
        /* BPR: only positives, each against a negative */
        size_t n = 0;
        for (uint32_t k = 0; k < 180; k++)
            if (y[k] > 0) { u[n] = u[k]; it[n] = it[k]; neg[n] = neg[k]; n++; }
        b.n = n;
    }
    double first = 0, loss = 0;
    for (int step = 0; step < 300; step++) {
        fr_grad_zero(g);
        cr_assert_eq(fr_model_loss_grad(m, ws, &b, g, &loss), FR_OK, "%s", fr_errmsg());
        if (step == 0) first = loss;
        cr_assert_eq(fr_optim_step(o, m, g), FR_OK);
    }
    fr_optim_free(o);
    fr_grad_free(g);
    fr_model_ws_free(ws);
    fr_model_free(m);
    return loss / first;
}

Test(models, every_model_fits_a_planted_pattern) {
    for (int k = FR_MODEL_MF; k <= FR_MODEL_NEUMF; k++)
        for (int sparse = 0; sparse < 2; sparse++) {
            double ratio = fit((fr_model_kind)k, sparse);
            cr_assert_lt(ratio, 0.3, "%s (%s): loss only fell to %.3f of its start",
                         fr_model_kind_name((fr_model_kind)k), sparse ? "sparse" : "dense", ratio);
        }
}
