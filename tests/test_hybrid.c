/* The hybrid family (src/model/model_hybrid.c: lightfm, fm) and side features
 * (src/data/features.c): gradients against central differences for every loss (and a
 * wrong gradient caught), FM's O(kn) form against the naive double sum, LightFM's score
 * against a hand composition, feature files and metadata, the model file bit for bit,
 * centralized and federated training (bit-identical across threads; one federated step =
 * one full-batch step). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fedrec/fedrec.h"
#include "fedrec/model_eval.h"
#include "fedrec/runtime.h"
#include "fedrec/train.h"
#include "gradcheck.h"
#include "testutil.h"

double fri_hybrid_fm_naive(const fr_model *m, uint32_t user, uint32_t item);

static fr_model_kind kind_of(const char *name) {
    fr_model_kind k;
    cr_assert_eq(fr_model_kind_parse(name, &k), FR_OK, "%s", fr_errmsg());
    return k;
}

/* n_users x n_items rows; each user 0..2 of 5 user features, each item 0..3 of 7, weights
 * in (0.3, 1.3); deterministic. */
static fr_features *toy_features(uint32_t nu, uint32_t ni, unsigned seed) {
    fr_features *f = NULL;
    cr_assert_eq(fr_features_create(&f, nu, ni), FR_OK);
    srand(seed);
    char nm[32];
    for (uint32_t u = 0; u < nu; u++)
        for (int k = rand() % 3; k > 0; k--) {
            int n = snprintf(nm, sizeof nm, "uf%d", rand() % 5);
            cr_assert_eq(fr_features_add(f, FR_FEAT_USER, u, nm, (size_t)n, 0.3f + (float)(rand() % 100) / 100.0f), FR_OK);
        }
    for (uint32_t i = 0; i < ni; i++)
        for (int k = rand() % 4; k > 0; k--) {
            int n = snprintf(nm, sizeof nm, "if%d", rand() % 7);
            cr_assert_eq(fr_features_add(f, FR_FEAT_ITEM, i, nm, (size_t)n, 0.3f + (float)(rand() % 100) / 100.0f), FR_OK);
        }
    return f;
}

static uint32_t toy_dim = 4; /* 4: the plain code; a multiple of 8: the vector kernel */

static fr_model *toy_model(const char *kind, fr_loss loss, uint32_t warp, uint32_t nu, uint32_t ni, float l2) {
    fr_model_config c;
    fr_model_config_default(&c, kind_of(kind));
    c.n_users = nu;
    c.n_items = ni;
    c.dim = toy_dim;
    c.loss = loss;
    c.warp = warp;
    c.l2 = l2;
    c.init_std = 0.5f;
    c.seed = 5;
    fr_features *f = toy_features(nu, ni, 3);
    cr_assert_eq(fr_model_config_set_features(&c, f), FR_OK, "%s", fr_errmsg());
    fr_features_free(f);
    fr_model *m = NULL;
    cr_assert_eq(fr_model_create(&m, &c), FR_OK, "%s", fr_errmsg());
    /* biases away from 0 */
    float *p = fr_model_params(m);
    for (int t = 0; t < fr_model_n_tensors(m); t++) {
        const fr_tensor *tt = fr_model_tensor(m, t);
        if (tt->cols == 1)
            for (uint32_t r = 0; r < tt->rows; r++) p[tt->offset + r] = 0.1f * (float)(r % 5) - 0.2f;
    }
    return m;
}

typedef struct gc_ctx {
    fr_model *m;
    fr_model_ws *ws;
    const fr_batch *b;
} gc_ctx;

static double model_loss(void *p) {
    gc_ctx *c = p;
    double l;
    cr_assert_eq(fr_model_loss(c->m, c->ws, c->b, &l), FR_OK);
    return l;
}

/* Checks every parameter of m (all touched rows and dense tensors; untouched table rows
 * must have a zero gradient). Returns the entries checked; *bad the disagreements. */
static int check_all(fr_model *m, const fr_batch *b, int *bad, bool corrupt) {
    fr_model_ws *ws = NULL;
    fr_grad *g = NULL;
    cr_assert_eq(fr_model_ws_create(&ws, m, 16), FR_OK);
    cr_assert_eq(fr_grad_create(&g, m), FR_OK);
    double loss, loss2;
    cr_assert_eq(fr_model_loss_grad(m, ws, b, g, &loss), FR_OK, "%s", fr_errmsg());
    cr_assert_eq(fr_model_loss(m, ws, b, &loss2), FR_OK);
    cr_assert_eq(loss, loss2);
    float *gd = fr_grad_data(g), *p = fr_model_params(m);
    if (corrupt) { /* a wrong gradient: one entry of the item feature table off by 0.3 */
        int t = fr_model_tensor_find(m, "item_feat_emb");
        gd[fr_model_tensor(m, t)->offset + 1] += 0.3f;
    }
    gc_ctx ctx = {m, ws, b};
    int checked = 0;
    *bad = 0;
    for (int t = 0; t < fr_model_n_tensors(m); t++) {
        const fr_tensor *tt = fr_model_tensor(m, t);
        const fr_rowset *s = fr_grad_touched(g, t);
        for (uint32_t r = 0; r < tt->rows; r++) {
            size_t o = tt->offset + (size_t)r * tt->cols;
            if (!s || s->mark[r]) {
                *bad += gc_check(model_loss, &ctx, p + o, gd + o, tt->cols, tt->name);
                checked += (int)tt->cols;
            } else {
                for (uint32_t k = 0; k < tt->cols; k++) cr_assert_eq(gd[o + k], 0.0f, "%s row %u untouched", tt->name, r);
            }
        }
    }
    fr_grad_free(g);
    fr_model_ws_free(ws);
    return checked;
}

static void gradcheck_kind(const char *kind, fr_loss loss, uint32_t warp) {
    fr_model *m = toy_model(kind, loss, warp, 5, 9, 0.2f);
    uint32_t users[8] = {0, 1, 3, 4, 2, 1, 0, 3}, items[8] = {2, 5, 6, 0, 3, 8, 7, 1},
             neg[8] = {1, 4, 8, 3, 7, 0, 2, 5};
    float label[8] = {1, 0, 1, 0, 1, 1, 0, 1}, wt[8] = {1, 2, 0.5f, 1, 1.5f, 1, 1, 0.7f};
    fr_batch b = {users, items, label, loss == FR_LOSS_BPR ? neg : NULL, 8, wt};
    int bad;
    int checked = check_all(m, &b, &bad, false);
    cr_assert_eq(bad, 0, "%s %d warp %u", kind, (int)loss, warp);
    cr_log_info("%s loss %d warp %u: %d entries checked", kind, (int)loss, warp, checked);
    cr_assert_gt(checked, 60, "%s: %d entries checked", kind, checked);
    if (warp) { /* the batch has violations, so the check covers WARP's hinge, not only the L2 term */
        fr_model *m0 = toy_model(kind, loss, warp, 5, 9, 0.0f);
        fr_model_ws *ws = NULL;
        double l0;
        cr_assert_eq(fr_model_ws_create(&ws, m0, 8), FR_OK);
        cr_assert_eq(fr_model_loss(m0, ws, &b, &l0), FR_OK);
        cr_assert_gt(l0, 0.1, "%s: WARP loss %g without L2", kind, l0);
        fr_model_ws_free(ws);
        fr_model_free(m0);
    }
    /* the check can fail */
    check_all(m, &b, &bad, true);
    cr_assert_gt(bad, 0, "a wrong gradient must fail the check");
    fr_model_free(m);
}

Test(hybrid, gradients_lightfm_bce_bpr_warp) {
    gradcheck_kind("lightfm", FR_LOSS_BCE, 0);
    gradcheck_kind("lightfm", FR_LOSS_BPR, 0);
    gradcheck_kind("lightfm", FR_LOSS_BPR, 5);
}

Test(hybrid, gradients_fm_bce_bpr_warp) {
    gradcheck_kind("fm", FR_LOSS_BCE, 0);
    gradcheck_kind("fm", FR_LOSS_BPR, 0);
    gradcheck_kind("fm", FR_LOSS_BPR, 5);
}

/* The vector kernel (dims that are a multiple of 8: model_hybrid.c, hy_kernel) against
 * central differences, in its plain copy and in its AVX2 copy. */
int fri_hybrid_kernel(int mode);
Test(hybrid, gradients_of_the_vector_kernel) {
    toy_dim = 8;
    for (int mode = 1; mode <= 2; mode++) {
        fri_hybrid_kernel(mode);
        const char *kinds[2] = {"lightfm", "fm"};
        for (int k = 0; k < 2; k++) {
            gradcheck_kind(kinds[k], FR_LOSS_BCE, 0);
            gradcheck_kind(kinds[k], FR_LOSS_BPR, 0);
            gradcheck_kind(kinds[k], FR_LOSS_BPR, 5);
        }
    }
    fri_hybrid_kernel(2);
    toy_dim = 4;
}

/* The kernel against the plain code (hy_loss_naive): the same loss and gradient up to
 * float rounding (lightfm's scores and rows: the same operations), the same rows touched;
 * both copies of the kernel (the AVX2 one fuses multiplies and adds, one rounding fewer
 * an operation: within the same bounds, not the same bits). Batches of every loss,
 * weighted and not, dims 8, 16 and 32, items with 0 to 3 features. */
static void kernel_vs_plain(const char *kind, fr_loss loss, uint32_t warp, uint32_t dim, bool weighted) {
    toy_dim = dim;
    fr_model *m = toy_model(kind, loss, warp, 5, 9, weighted ? 0.1f : 0.0f);
    toy_dim = 4;
    uint32_t users[8] = {0, 1, 3, 4, 2, 1, 0, 3}, items[8] = {2, 5, 6, 0, 3, 8, 7, 1},
             neg[8] = {1, 4, 8, 3, 7, 0, 2, 5};
    float label[8] = {1, 0, 1, 0, 1, 1, 0, 1}, wt[8] = {1, 2, 0.5f, 1, 1.5f, 1, 1, 0.7f};
    fr_batch b = {users, items, label, loss == FR_LOSS_BPR ? neg : NULL, 8, weighted ? wt : NULL};
    fr_model_ws *ws = NULL;
    cr_assert_eq(fr_model_ws_create(&ws, m, 8), FR_OK);
    fr_grad *g[3];
    double l[3];
    const int modes[3] = {0, 1, 2};
    for (int k = 0; k < 3; k++) {
        cr_assert_eq(fr_grad_create(&g[k], m), FR_OK);
        fri_hybrid_kernel(modes[k]);
        cr_assert_eq(fr_model_loss_grad(m, ws, &b, g[k], &l[k]), FR_OK, "%s", fr_errmsg());
    }
    fri_hybrid_kernel(2);
    size_t np = fr_model_n_params(m);
    const float *g0 = fr_grad_data(g[0]), *g1 = fr_grad_data(g[1]), *g2 = fr_grad_data(g[2]);
    double gmax = 0;
    for (size_t i = 0; i < np; i++) gmax = fmax(gmax, fabs(g0[i]));
    cr_assert_gt(gmax, 1e-3, "%s: a gradient to compare", kind);
    for (int k = 1; k < 3; k++) {
        const float *gk = k == 1 ? g1 : g2;
        cr_assert(fabs(l[k] - l[0]) <= 1e-6 * (1 + fabs(l[0])), "%s: loss kernel (mode %d) %.9g, plain %.9g", kind, k, l[k],
                  l[0]);
        for (size_t i = 0; i < np; i++)
            cr_assert(fabs(gk[i] - g0[i]) <= 1e-5 * gmax,
                      "%s loss %d warp %u dim %u: gradient[%zu] kernel (mode %d) %.9g, plain %.9g", kind, (int)loss, warp,
                      dim, i, k, gk[i], g0[i]);
        for (int t = 0; t < fr_model_n_tensors(m); t++) {
            const fr_rowset *r0 = fr_grad_touched(g[0], t), *r1 = fr_grad_touched(g[k], t);
            if (!r0) continue;
            for (uint32_t r = 0; r < r0->n_rows; r++)
                cr_assert_eq(r0->mark[r], r1->mark[r], "tensor %d row %u touched (mode %d)", t, r, k);
        }
    }
    for (int k = 0; k < 3; k++) fr_grad_free(g[k]);
    fr_model_ws_free(ws);
    fr_model_free(m);
}

Test(hybrid, vector_kernel_equals_the_plain_code) {
    const char *kinds[2] = {"lightfm", "fm"};
    const uint32_t dims[3] = {8, 16, 32};
    for (int k = 0; k < 2; k++)
        for (int d = 0; d < 3; d++)
            for (int wtd = 0; wtd < 2; wtd++) {
                kernel_vs_plain(kinds[k], FR_LOSS_BCE, 0, dims[d], wtd);
                kernel_vs_plain(kinds[k], FR_LOSS_BPR, 0, dims[d], wtd);
                kernel_vs_plain(kinds[k], FR_LOSS_BPR, 10, dims[d], wtd);
            }
}

Test(hybrid, warp_violations_cost_and_non_violations_do_not) {
    /* with a huge margin gap (positive far above every item) WARP costs nothing */
    fr_model *m = toy_model("lightfm", FR_LOSS_BPR, 10, 3, 6, 0.0f);
    float *p = fr_model_params(m);
    int tb = fr_model_tensor_find(m, "item_bias");
    p[fr_model_tensor(m, tb)->offset + 2] = 100.0f;
    uint32_t u[1] = {1}, it[1] = {2}, ng[1] = {4};
    fr_batch b = {u, it, NULL, ng, 1, NULL};
    fr_model_ws *ws = NULL;
    cr_assert_eq(fr_model_ws_create(&ws, m, 4), FR_OK);
    double l;
    cr_assert_eq(fr_model_loss(m, ws, &b, &l), FR_OK);
    cr_assert_eq(l, 0.0);
    /* the negative far above the positive: violated at the first trial, L = ln(5) */
    p[fr_model_tensor(m, tb)->offset + 2] = 0.0f;
    p[fr_model_tensor(m, tb)->offset + 4] = 50.0f;
    float s[2];
    uint32_t uu[2] = {1, 1}, ii[2] = {2, 4};
    cr_assert_eq(fr_model_score(m, ws, uu, ii, 2, s), FR_OK);
    cr_assert_eq(fr_model_loss(m, ws, &b, &l), FR_OK);
    cr_assert_float_eq(l, log(5.0) * (1.0 - s[0] + s[1]), 1e-3 * l);
    fr_model_ws_free(ws);
    fr_model_free(m);
}

Test(hybrid, fm_fast_form_equals_naive_double_sum) {
    fr_model *m = toy_model("fm", FR_LOSS_BCE, 0, 6, 11, 0.0f);
    fr_model_ws *ws = NULL;
    cr_assert_eq(fr_model_ws_create(&ws, m, 80), FR_OK);
    uint32_t users[66], items[66];
    for (uint32_t u = 0; u < 6; u++)
        for (uint32_t i = 0; i < 11; i++) { users[u * 11 + i] = u; items[u * 11 + i] = i; }
    float s[66];
    cr_assert_eq(fr_model_score(m, ws, users, items, 66, s), FR_OK);
    for (int k = 0; k < 66; k++) {
        double want = fri_hybrid_fm_naive(m, users[k], items[k]);
        cr_assert(fabs(want - s[k]) <= 1e-4 * (1 + fabs(want)), "pair %d: fast %g, naive %g", k, s[k], want);
    }
    fr_model_ws_free(ws);
    fr_model_free(m);
}

/* LightFM's logit by hand from the tensors and the feature lists. */
Test(hybrid, lightfm_score_is_the_composed_dot_product) {
    const uint32_t nu = 4, ni = 7;
    fr_model *m = toy_model("lightfm", FR_LOSS_BCE, 0, nu, ni, 0.0f);
    fr_features *f = toy_features(nu, ni, 3); /* the same lists as the model's */
    const float *p = fr_model_params(m);
    const fr_tensor *ue = fr_model_tensor(m, fr_model_tensor_find(m, "user_emb")),
                    *ub = fr_model_tensor(m, fr_model_tensor_find(m, "user_bias")),
                    *ie = fr_model_tensor(m, fr_model_tensor_find(m, "item_emb")),
                    *ib = fr_model_tensor(m, fr_model_tensor_find(m, "item_bias")),
                    *ufe = fr_model_tensor(m, fr_model_tensor_find(m, "user_feat_emb")),
                    *ufb = fr_model_tensor(m, fr_model_tensor_find(m, "user_feat_bias")),
                    *ife = fr_model_tensor(m, fr_model_tensor_find(m, "item_feat_emb")),
                    *ifb = fr_model_tensor(m, fr_model_tensor_find(m, "item_feat_bias"));
    cr_assert_eq(fr_model_tensor_find(m, "bias"), -1, "lightfm has no global bias");
    fr_model_ws *ws = NULL;
    cr_assert_eq(fr_model_ws_create(&ws, m, 8), FR_OK);
    for (uint32_t u = 0; u < nu; u++)
        for (uint32_t i = 0; i < ni; i++) {
            double pu[4], qi[4], bu = p[ub->offset + u], bi = p[ib->offset + i];
            for (int k = 0; k < 4; k++) { pu[k] = p[ue->offset + u * 4 + k]; qi[k] = p[ie->offset + i * 4 + k]; }
            const uint32_t *id;
            const float *w;
            size_t n = fr_features_of(f, FR_FEAT_USER, u, &id, &w);
            for (size_t j = 0; j < n; j++) {
                for (int k = 0; k < 4; k++) pu[k] += w[j] * p[ufe->offset + id[j] * 4 + k];
                bu += w[j] * p[ufb->offset + id[j]];
            }
            n = fr_features_of(f, FR_FEAT_ITEM, i, &id, &w);
            for (size_t j = 0; j < n; j++) {
                for (int k = 0; k < 4; k++) qi[k] += w[j] * p[ife->offset + id[j] * 4 + k];
                bi += w[j] * p[ifb->offset + id[j]];
            }
            double want = bu + bi;
            for (int k = 0; k < 4; k++) want += pu[k] * qi[k];
            float s;
            cr_assert_eq(fr_model_score(m, ws, &u, &i, 1, &s), FR_OK);
            cr_assert(fabs(want - s) < 1e-5 * (1 + fabs(want)), "(%u,%u): %g vs %g", u, i, s, want);
        }
    fr_features_free(f);
    fr_model_ws_free(ws);
    fr_model_free(m);
}

/* ------------------------------------------------------------------ features */

static char *write_tmp(const char *dir, const char *name, const char *text) {
    static char path[4][512];
    static int k;
    char *p = path[k++ % 4];
    snprintf(p, 512, "%s/%s", dir, name);
    FILE *fp = fopen(p, "wb");
    cr_assert(fp);
    fputs(text, fp);
    fclose(fp);
    return p;
}

static fr_dataset *ds_of(const int64_t *u, const int64_t *i, size_t n) {
    fr_dataset *d = NULL;
    cr_assert_eq(fr_dataset_from_arrays(&d, n, u, i, NULL, NULL), FR_OK, "%s", fr_errmsg());
    return d;
}

Test(hybrid, feature_file_reads_ids_weights_and_refuses_bad_lines) {
    char dir[] = "/tmp/fr_hybrid_XXXXXX";
    cr_assert(mkdtemp(dir));
    static const int64_t u[] = {10, 10, 20, 30}, i[] = {100, 200, 200, 300};
    fr_dataset *d = ds_of(u, i, 4);
    fr_features *f = NULL;
    cr_assert_eq(fr_features_create(&f, 3, 3), FR_OK);
    const char *p = write_tmp(dir, "items.tsv",
                              "# item features\n"
                              "200\tgenre=Drama genre=War:0.5\tyear=1995\n"
                              "\n"
                              "999\tgenre=Drama\n"
                              "100\tgenre=War:2\r\n"
                              "300\n");
    uint64_t skipped;
    cr_assert_eq(fr_features_load(f, FR_FEAT_ITEM, p, fr_dataset_items(d), &skipped), FR_OK, "%s", fr_errmsg());
    cr_assert_eq(skipped, 1, "the unknown id 999");
    cr_assert_eq(fr_features_count(f, FR_FEAT_ITEM), 3);
    const uint32_t *id;
    const float *w;
    int64_t r200 = fr_idmap_find(fr_dataset_items(d), 200), r100 = fr_idmap_find(fr_dataset_items(d), 100);
    cr_assert_eq(fr_features_of(f, FR_FEAT_ITEM, (uint32_t)r200, &id, &w), 3);
    cr_assert_str_eq(fr_features_name(f, FR_FEAT_ITEM, id[0]), "genre=Drama");
    cr_assert_str_eq(fr_features_name(f, FR_FEAT_ITEM, id[1]), "genre=War");
    cr_assert_eq(w[1], 0.5f);
    cr_assert_str_eq(fr_features_name(f, FR_FEAT_ITEM, id[2]), "year=1995");
    cr_assert_eq(w[2], 1.0f);
    cr_assert_eq(fr_features_of(f, FR_FEAT_ITEM, (uint32_t)r100, &id, &w), 1);
    cr_assert_eq(w[0], 2.0f);
    cr_assert_str_eq(fr_features_name(f, FR_FEAT_ITEM, id[0]), "genre=War");
    /* bad input: file:line, the value, what was expected */
    p = write_tmp(dir, "bad1.tsv", "100\tx\nabc\tgenre=War\n");
    cr_assert_eq(fr_features_load(f, FR_FEAT_ITEM, p, fr_dataset_items(d), NULL), FR_ERR_PARSE);
    cr_assert(strstr(fr_errmsg(), "bad1.tsv:2:") && strstr(fr_errmsg(), "\"abc\"") && strstr(fr_errmsg(), "expected"),
              "%s", fr_errmsg());
    p = write_tmp(dir, "bad2.tsv", "100\tgenre=War:inf\n");
    cr_assert_eq(fr_features_load(f, FR_FEAT_ITEM, p, fr_dataset_items(d), NULL), FR_ERR_PARSE);
    cr_assert(strstr(fr_errmsg(), "bad2.tsv:1:") && strstr(fr_errmsg(), "\"inf\"") && strstr(fr_errmsg(), "finite"),
              "%s", fr_errmsg());
    p = write_tmp(dir, "bad3.tsv", "100\t:2\n");
    cr_assert_eq(fr_features_load(f, FR_FEAT_ITEM, p, fr_dataset_items(d), NULL), FR_ERR_PARSE);
    cr_assert(strstr(fr_errmsg(), "bad3.tsv:1:") && strstr(fr_errmsg(), "name"), "%s", fr_errmsg());
    p = write_tmp(dir, "bad4.tsv", "100\tgenre\x01x\n");
    cr_assert_eq(fr_features_load(f, FR_FEAT_ITEM, p, fr_dataset_items(d), NULL), FR_ERR_PARSE);
    cr_assert(strstr(fr_errmsg(), "bad4.tsv:1:") && strstr(fr_errmsg(), "0x01"), "%s", fr_errmsg());
    cr_assert_eq(fr_features_load(f, FR_FEAT_ITEM, "/nonexistent/x.tsv", fr_dataset_items(d), NULL), FR_ERR_IO);
    /* a weight that starts as a number must be one; an empty weight is refused; other
     * text after the last ':' is part of the name */
    static const char *const bad_w[][3] = {{"100\tvip:1,5\n", "\"1,5\"", "expected a number"},
                                           {"100\tvip:0.5x\n", "\"0.5x\"", "expected a number"},
                                           {"100\tvip:-\n", "\"-\"", "expected a number"},
                                           {"100\tok\n300\tvip:\n", "\"vip:\"", "expected a weight after ':'"}};
    for (size_t k = 0; k < sizeof bad_w / sizeof bad_w[0]; k++) {
        p = write_tmp(dir, "badw.tsv", bad_w[k][0]);
        cr_assert_eq(fr_features_load(f, FR_FEAT_ITEM, p, fr_dataset_items(d), NULL), FR_ERR_PARSE, "%s", bad_w[k][0]);
        cr_assert(strstr(fr_errmsg(), k == 3 ? "badw.tsv:2:" : "badw.tsv:1:") && strstr(fr_errmsg(), bad_w[k][1]) &&
                      strstr(fr_errmsg(), bad_w[k][2]),
                  "%s", fr_errmsg());
    }
    fr_features_free(f);
    cr_assert_eq(fr_features_create(&f, 3, 3), FR_OK);
    p = write_tmp(dir, "names.tsv", "300\turl:http lang:en:0.25\n");
    cr_assert_eq(fr_features_load(f, FR_FEAT_ITEM, p, fr_dataset_items(d), NULL), FR_OK, "%s", fr_errmsg());
    int64_t r300 = fr_idmap_find(fr_dataset_items(d), 300);
    cr_assert_eq(fr_features_of(f, FR_FEAT_ITEM, (uint32_t)r300, &id, &w), 2);
    cr_assert_str_eq(fr_features_name(f, FR_FEAT_ITEM, id[0]), "url:http");
    cr_assert_eq(w[0], 1.0f);
    cr_assert_str_eq(fr_features_name(f, FR_FEAT_ITEM, id[1]), "lang:en");
    cr_assert_eq(w[1], 0.25f);
    /* unknown ids: skipped, counted, the first named with its file and line */
    cr_assert_null(fr_features_skipped_first(f, FR_FEAT_ITEM));
    p = write_tmp(dir, "unk.tsv", "100\ta\n# c\n777\ta\n778\ta\n");
    cr_assert_eq(fr_features_load(f, FR_FEAT_ITEM, p, fr_dataset_items(d), &skipped), FR_OK, "%s", fr_errmsg());
    cr_assert_eq(skipped, 2);
    const char *first = fr_features_skipped_first(f, FR_FEAT_ITEM);
    cr_assert(first && strstr(first, "unk.tsv:3: item id \"777\""), "%s", first ? first : "(null)");
    cr_assert_null(fr_features_skipped_first(f, FR_FEAT_USER));
    fr_features_free(f);
    fr_dataset_free(d);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}

Test(hybrid, features_from_movielens_metadata) {
    char dir[] = "/tmp/fr_hybrid_XXXXXX";
    cr_assert(mkdtemp(dir));
    write_tmp(dir, "u.data", "1\t1\t5\t881250949\n1\t2\t3\t881250950\n2\t1\t4\t881250951\n");
    write_tmp(dir, "u.user", "1|24|M|technician|85711\n2|53|F|other|94043\n");
    write_tmp(dir, "u.item",
              "1|Toy Story (1995)|01-Jan-1995||http://x|0|0|0|1|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0\n"
              "2|GoldenEye (1995)|01-Jan-1995||http://x|0|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0|1|0|0\n");
    char path[600];
    snprintf(path, sizeof path, "%s/u.data", dir);
    fr_dataset *d = NULL;
    cr_assert_eq(fr_dataset_load(&d, path, NULL, NULL), FR_OK, "%s", fr_errmsg());
    cr_assert_eq(fr_dataset_load_meta(d, dir), FR_OK, "%s", fr_errmsg());
    fr_features *f = NULL;
    cr_assert_eq(fr_features_create(&f, fr_dataset_n_users(d), fr_dataset_n_items(d)), FR_OK);
    cr_assert_eq(fr_features_from_meta(f, d), FR_OK, "%s", fr_errmsg());
    const uint32_t *id;
    uint32_t u1 = (uint32_t)fr_idmap_find(fr_dataset_users(d), 1), u2 = (uint32_t)fr_idmap_find(fr_dataset_users(d), 2);
    cr_assert_eq(fr_features_of(f, FR_FEAT_USER, u1, &id, NULL), 3);
    cr_assert_str_eq(fr_features_name(f, FR_FEAT_USER, id[0]), "age=18");
    cr_assert_str_eq(fr_features_name(f, FR_FEAT_USER, id[1]), "gender=M");
    cr_assert_str_eq(fr_features_name(f, FR_FEAT_USER, id[2]), "occupation=technician");
    cr_assert_eq(fr_features_of(f, FR_FEAT_USER, u2, &id, NULL), 3);
    cr_assert_str_eq(fr_features_name(f, FR_FEAT_USER, id[0]), "age=50");
    uint32_t i1 = (uint32_t)fr_idmap_find(fr_dataset_items(d), 1), i2 = (uint32_t)fr_idmap_find(fr_dataset_items(d), 2);
    cr_assert_eq(fr_features_of(f, FR_FEAT_ITEM, i1, &id, NULL), 4, "Animation, Children's, Comedy, year");
    cr_assert_str_eq(fr_features_name(f, FR_FEAT_ITEM, id[0]), "genre=Animation");
    cr_assert_str_eq(fr_features_name(f, FR_FEAT_ITEM, id[3]), "year=1995");
    cr_assert_eq(fr_features_of(f, FR_FEAT_ITEM, i2, &id, NULL), 4, "Action, Adventure, Thriller, year");
    cr_assert_str_eq(fr_features_name(f, FR_FEAT_ITEM, id[0]), "genre=Action");
    cr_assert_str_eq(fr_features_name(f, FR_FEAT_ITEM, id[2]), "genre=Thriller");
    fr_features_free(f);
    fr_dataset_free(d);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}

/* ------------------------------------------------------------------ model file */

Test(hybrid, model_file_round_trips_bit_for_bit) {
    const char *kinds[2] = {"lightfm", "fm"};
    for (int k = 0; k < 2; k++) {
        fr_model *m = toy_model(kinds[k], FR_LOSS_BPR, 7, 5, 9, 0.1f);
        uint8_t *bytes, *bytes2;
        size_t n, n2;
        cr_assert_eq(fr_model_encode(m, NULL, &bytes, &n), FR_OK, "%s", fr_errmsg());
        fr_model *l = NULL;
        cr_assert_eq(fr_model_decode(&l, bytes, n, "<mem>", NULL), FR_OK, "%s", fr_errmsg());
        const fr_model_config *a = fr_model_config_of(l), *b = fr_model_config_of(m);
        cr_assert_eq(a->kind, b->kind);
        cr_assert_eq(a->warp, 7);
        cr_assert_eq(a->dim, 4);
        cr_assert_eq(a->features, b->features, "the same feature set (interned once)");
        cr_assert_eq(memcmp(a, b, sizeof *a), 0);
        cr_assert_eq(fr_model_n_params(l), fr_model_n_params(m));
        cr_assert_eq(memcmp(fr_model_params(l), fr_model_params(m), fr_model_n_params(m) * sizeof(float)), 0);
        cr_assert_eq(fr_model_encode(l, NULL, &bytes2, &n2), FR_OK);
        cr_assert_eq(n2, n);
        cr_assert_eq(memcmp(bytes, bytes2, n), 0, "re-encoding gives the same bytes");
        /* scores are the same */
        uint32_t uu[3] = {0, 2, 4}, ii[3] = {8, 1, 3};
        float s1[3], s2[3];
        cr_assert_eq(fr_model_score(m, NULL, uu, ii, 3, s1), FR_OK);
        cr_assert_eq(fr_model_score(l, NULL, uu, ii, 3, s2), FR_OK);
        cr_assert_eq(memcmp(s1, s2, sizeof s1), 0);
        /* a corrupt feature id is refused: flip bytes inside the block until decode fails
         * (CRC first) */
        bytes[n / 3] ^= 0x55;
        fr_model *bad = NULL;
        cr_assert_neq(fr_model_decode(&bad, bytes, n, "<mem>", NULL), FR_OK);
        cr_assert_null(bad);
        fr_model_bytes_free(bytes);
        fr_model_bytes_free(bytes2);
        fr_model_free(l);
        fr_model_free(m);
    }
}

/* ------------------------------------------------------------------ training */

typedef struct data {
    fr_dataset *all, *train, *test;
    fr_negatives *negs;
    fr_features *feat;
} data;

/* Generated interactions whose items carry a feature that predicts them: user u likes
 * items with feature (u % 4), and has that as a user feature. */
static data gen(void) {
    fr_gen_opts g;
    fr_gen_opts_default(&g);
    g.users = 120;
    g.items = 80;
    g.interactions = 3000;
    g.seed = 11;
    data d = {0};
    cr_assert_eq(fr_dataset_generate(&d.all, &g), FR_OK, "%s", fr_errmsg());
    cr_assert_eq(fr_dataset_split(d.all, FR_SPLIT_LOO, 0, 1, &d.train, &d.test), FR_OK, "%s", fr_errmsg());
    cr_assert_eq(fr_negatives_sample(&d.negs, d.all, d.test, 30, 3), FR_OK, "%s", fr_errmsg());
    d.feat = toy_features(fr_dataset_n_users(d.train), fr_dataset_n_items(d.train), 9);
    return d;
}

static void data_free(data *d) {
    fr_negatives_free(d->negs);
    fr_dataset_free(d->all);
    fr_dataset_free(d->train);
    fr_dataset_free(d->test);
    fr_features_free(d->feat);
}

static fr_model_config config(const char *kind, const data *d, fr_loss loss, uint32_t warp) {
    fr_model_config c;
    fr_model_config_default(&c, kind_of(kind));
    c.n_users = fr_dataset_n_users(d->train);
    c.n_items = fr_dataset_n_items(d->train);
    c.dim = 8;
    c.seed = 4;
    c.loss = loss;
    c.warp = warp;
    cr_assert_eq(fr_model_config_set_features(&c, d->feat), FR_OK);
    return c;
}

static double hr10(const fr_model *m, const data *d) {
    fr_eval_result r;
    cr_assert_eq(fr_model_evaluate(m, d->train, d->test, d->negs, NULL, NULL, &r), FR_OK, "%s", fr_errmsg());
    for (size_t i = 0; i < r.n_ks; i++)
        if (r.ks[i] == 10) return r.hr[i];
    cr_assert_fail("no hr@10");
    return 0;
}

static void central(const char *kind, fr_loss loss, uint32_t warp) {
    data d = gen();
    fr_model_config c = config(kind, &d, loss, warp);
    fr_model *m = NULL, *m2 = NULL;
    cr_assert_eq(fr_model_create(&m, &c), FR_OK, "%s", fr_errmsg());
    cr_assert_eq(fr_model_create(&m2, &c), FR_OK);
    double before = hr10(m, &d);
    fr_train_config tc;
    fr_train_config_default(&tc);
    tc.batch = 128;
    tc.optim.lr = 0.01f;
    tc.negatives = loss == FR_LOSS_BCE ? 4 : 1;
    double loss_e[6];
    for (int threads = 1; threads <= 2; threads++) {
        fr_trainer *t = NULL;
        tc.threads = threads;
        cr_assert_eq(fr_trainer_create(&t, threads == 1 ? m : m2, d.train, &tc), FR_OK, "%s", fr_errmsg());
        for (int e = 0; e < 6; e++) cr_assert_eq(fr_trainer_epoch(t, &loss_e[e]), FR_OK, "%s", fr_errmsg());
        fr_trainer_free(t);
    }
    cr_assert_lt(loss_e[5], loss_e[0], "%s: loss %g -> %g", kind, loss_e[0], loss_e[5]);
    cr_assert(!memcmp(fr_model_params(m), fr_model_params(m2), fr_model_n_params(m) * sizeof(float)),
              "1 and 2 threads give the same bits");
    double after = hr10(m, &d);
    cr_assert(after > before && after > 0.4, "%s: hr@10 %g -> %g", kind, before, after);
    fr_model_free(m);
    fr_model_free(m2);
    data_free(&d);
}

Test(hybrid, lightfm_trains_centrally_bit_identical_across_threads) { central("lightfm", FR_LOSS_BPR, 0); }
Test(hybrid, fm_trains_centrally_bit_identical_across_threads) { central("fm", FR_LOSS_BCE, 0); }
Test(hybrid, warp_trains_centrally) { central("lightfm", FR_LOSS_BPR, 10); }

static void federated(const char *kind, fr_loss loss) {
    data d = gen();
    fr_model_config c = config(kind, &d, loss, 0);
    fr_fl_config fc;
    fr_fl_config_default(&fc, c.kind);
    fc.local.lr = 0.05f;
    fc.local_epochs = 2;
    float *first = NULL;
    double before = 0, after = 0;
    for (int threads = 1; threads <= 2; threads++) {
        fr_pool *pool = NULL;
        cr_assert_eq(fr_pool_create(&pool, threads), FR_OK);
        fr_sim *s = NULL;
        cr_assert_eq(fr_sim_create(&s, &c, &fc, d.train, pool), FR_OK, "%s", fr_errmsg());
        if (threads == 1) before = hr10(fr_sim_model(s), &d);
        fr_round_stats st, st1;
        for (int r = 0; r < 10; r++) cr_assert_eq(fr_sim_round(s, r == 0 ? &st1 : &st), FR_OK, "%s", fr_errmsg());
        cr_assert_lt(st.loss, st1.loss, "round loss %g -> %g", st1.loss, st.loss);
        fr_model *m = fr_sim_model(s);
        size_t np = fr_model_n_params(m);
        if (threads == 1) {
            after = hr10(m, &d);
            first = malloc(np * sizeof(float));
            memcpy(first, fr_model_params(m), np * sizeof(float));
        } else {
            cr_assert(!memcmp(first, fr_model_params(m), np * sizeof(float)), "1 and 2 threads give the same bits");
        }
        fr_sim_free(s);
        fr_pool_free(pool);
    }
    cr_assert(after > before && after > 0.4, "%s: hr@10 %g -> %g", kind, before, after);
    free(first);
    data_free(&d);
}

Test(hybrid, lightfm_trains_federated_bit_identical_across_threads) { federated("lightfm", FR_LOSS_BPR); }
Test(hybrid, fm_trains_federated_bit_identical_across_threads) { federated("fm", FR_LOSS_BCE); }

/* One FedAvg round of one full-batch SGD step per client = one centralized full-batch
 * step on the union (bce on the positives alone: no random negatives). */
static void one_step(const char *kind) {
    static const int64_t u[] = {10, 10, 10, 20, 20, 30, 30, 30, 30, 40};
    static const int64_t i[] = {1, 2, 3, 2, 4, 1, 3, 4, 5, 5};
    fr_dataset *d = ds_of(u, i, 10);
    fr_features *f = toy_features(fr_dataset_n_users(d), fr_dataset_n_items(d), 17);
    fr_model_config mc;
    fr_model_config_default(&mc, kind_of(kind));
    mc.dim = 4;
    mc.seed = 9;
    mc.init_std = 0.5f;
    mc.loss = FR_LOSS_BCE;
    cr_assert_eq(fr_model_config_set_features(&mc, f), FR_OK);
    fr_fl_config cfg;
    fr_fl_config_default(&cfg, mc.kind);
    cfg.seed = 9;
    cfg.batch = 1000;
    cfg.negatives = 0;
    fr_optim_config_default(&cfg.local, FR_OPTIM_SGD);
    cfg.local.lr = 0.3f;
    fr_sim *sim = NULL;
    cr_assert_eq(fr_sim_create(&sim, &mc, &cfg, d, NULL), FR_OK, "%s", fr_errmsg());
    fr_round_stats st;
    cr_assert_eq(fr_sim_round(sim, &st), FR_OK, "%s", fr_errmsg());
    cr_assert_eq(st.clients, 4);
    cr_assert_eq(st.examples, 10);
    fr_model *fed = fr_sim_model(sim);

    mc.n_users = fr_dataset_n_users(d);
    mc.n_items = fr_dataset_n_items(d);
    fr_model *ref = NULL;
    cr_assert_eq(fr_model_create(&ref, &mc), FR_OK);
    uint32_t users[10], items[10];
    float lab[10];
    size_t n = 0;
    for (uint32_t uu = 0; uu < fr_dataset_n_users(d); uu++) {
        const uint32_t *it;
        size_t k = fr_dataset_user(d, uu, &it, NULL, NULL);
        for (size_t x = 0; x < k; x++) { users[n] = uu; items[n] = it[x]; lab[n] = 1.0f; n++; }
    }
    fr_batch b = {users, items, lab, NULL, n, NULL};
    double maxdiff, maxmove;
    cr_assert(tu_sgd_step_diff(ref, fed, &b, 0.3, &maxdiff, &maxmove), "%s", fr_errmsg());
    cr_assert(maxmove > 1e-3, "the step must move the model (%g)", maxmove);
    cr_assert(maxdiff < 1e-6, "%s: fedavg vs full batch: max diff %g", kind, maxdiff);
    fr_model_free(ref);
    fr_sim_free(sim);
    fr_features_free(f);
    fr_dataset_free(d);
}

Test(hybrid, lightfm_one_federated_step_equals_full_batch_step) { one_step("lightfm"); }
Test(hybrid, fm_one_federated_step_equals_full_batch_step) { one_step("fm"); }

/* ------------------------------------------------------------------ cold start */

Test(hybrid, cold_split_holds_items_out_entirely) {
    data d = gen();
    fr_dataset *wt, *we, *co, *ex;
    uint32_t nc;
    cr_assert_eq(fr_dataset_cold_split(d.train, d.test, 0.25, 7, &wt, &we, &co, &ex, &nc), FR_OK, "%s", fr_errmsg());
    uint32_t ni = fr_dataset_n_items(d.train), nu = fr_dataset_n_users(d.train);
    cr_assert_eq(fr_dataset_n_items(wt), ni, "the same id maps");
    /* the cold items: those of co; none in warm train or warm test */
    uint8_t *cold = calloc(ni, 1);
    uint32_t seen = 0;
    for (uint32_t u = 0; u < fr_dataset_n_users(co); u++) {
        const uint32_t *it;
        size_t k = fr_dataset_user(co, u, &it, NULL, NULL);
        for (size_t x = 0; x < k; x++) seen += !cold[it[x]], cold[it[x]] = 1;
    }
    cr_assert_eq(seen, nc);
    uint32_t trained = 0;
    uint8_t *in_train = calloc(ni, 1);
    for (uint32_t u = 0; u < nu; u++) {
        const uint32_t *it;
        size_t k = fr_dataset_user(d.train, u, &it, NULL, NULL);
        for (size_t x = 0; x < k; x++) trained += !in_train[it[x]], in_train[it[x]] = 1;
    }
    cr_assert_eq(nc, (uint32_t)(0.25 * trained + 0.5));
    /* every interaction in exactly one part */
    cr_assert_eq(fr_dataset_n_interactions(wt) + fr_dataset_n_interactions(we) + fr_dataset_n_interactions(co),
                 fr_dataset_n_interactions(d.train) + fr_dataset_n_interactions(d.test));
    const fr_dataset *parts[2] = {wt, we};
    for (int p = 0; p < 2; p++)
        for (uint32_t u = 0; u < fr_dataset_n_users(parts[p]); u++) {
            const uint32_t *it;
            size_t k = fr_dataset_user(parts[p], u, &it, NULL, NULL);
            for (size_t x = 0; x < k; x++) cr_assert(!cold[it[x]], "cold item %u in a warm part", it[x]);
            for (size_t x = 0; x < k; x++) cr_assert(fr_dataset_has(p ? d.test : d.train, u, it[x]));
        }
    /* exclude: every warm item, for exactly the users with a cold interaction */
    for (uint32_t u = 0; u < nu; u++) {
        size_t k = u < fr_dataset_n_users(ex) ? fr_dataset_user(ex, u, NULL, NULL, NULL) : 0;
        size_t kc = u < fr_dataset_n_users(co) ? fr_dataset_user(co, u, NULL, NULL, NULL) : 0;
        cr_assert_eq(k, kc ? ni - nc : 0, "user %u", u);
    }
    /* the same seed, the same split; a file naming the cold items gives it too */
    char path[] = "/tmp/fr_cold_XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    FILE *fp = fdopen(fd, "w");
    fprintf(fp, "# cold items\n");
    for (uint32_t i = 0; i < ni; i++)
        if (cold[i]) fprintf(fp, "%lld\n", (long long)fr_idmap_raw(fr_dataset_items(d.train), i));
    fclose(fp);
    fr_dataset *wt2, *we2, *co2, *ex2;
    uint32_t nc2;
    cr_assert_eq(fr_dataset_cold_split_file(d.train, d.test, path, &wt2, &we2, &co2, &ex2, &nc2), FR_OK, "%s", fr_errmsg());
    cr_assert_eq(nc2, nc);
    /* the warm train marks exactly the cold items absent (both forms); other data none */
    const fr_dataset *warms[2] = {wt, wt2};
    for (int w = 0; w < 2; w++) {
        uint32_t na = 0;
        const uint8_t *ab = fr_dataset_absent_items(warms[w], &na);
        cr_assert_not_null(ab);
        cr_assert_eq(na, nc);
        for (uint32_t i = 0; i < ni; i++) cr_assert_eq(ab[i], cold[i], "item %u", i);
    }
    uint32_t na0 = 7;
    cr_assert_null(fr_dataset_absent_items(d.train, &na0));
    cr_assert_eq(na0, 0);
    cr_assert_eq(fr_dataset_n_interactions(co2), fr_dataset_n_interactions(co));
    cr_assert_eq(fr_dataset_n_interactions(wt2), fr_dataset_n_interactions(wt));
    /* a model ranks cold items by their features: with features that predict the cold
     * items, training on the warm part beats chance on them (auc 0.5) */
    fr_dataset *all[] = {wt2, we2, co2, ex2};
    for (int k = 0; k < 4; k++) fr_dataset_free(all[k]);
    cr_assert_eq(fr_dataset_cold_split(d.train, d.test, 1.5, 7, &wt2, &we2, &co2, &ex2, &nc2), FR_ERR_RANGE);
    cr_assert_null(wt2);
    fp = fopen(path, "w");
    fprintf(fp, "3\n4x\n");
    fclose(fp);
    cr_assert_eq(fr_dataset_cold_split_file(d.train, d.test, path, &wt2, &we2, &co2, &ex2, &nc2), FR_ERR_PARSE);
    cr_assert(strstr(fr_errmsg(), ":2: item id \"4x\"; expected"), "%s", fr_errmsg());
    unlink(path);
    free(cold);
    free(in_train);
    fr_dataset *mine[] = {wt, we, co, ex};
    for (int k = 0; k < 4; k++) fr_dataset_free(mine[k]);
    data_free(&d);
}

/* Items whose features say who likes them are ranked by those features when no one has
 * rated them: user u and item i share feature "g=(u % 3)" / "g=(i % 3)", and u's
 * interactions are with items of its group. A lightfm trained on the warm items ranks
 * each user's cold items above the other cold items (auc well above 0.5). */
Test(hybrid, cold_items_ranked_by_their_features) {
    enum { NU = 90, NI = 60 };
    int64_t u[NU * 12], it[NU * 12];
    size_t n = 0;
    srand(5);
    for (int a = 0; a < NU; a++)
        for (int k = 0; k < 12; k++) {
            int i = 3 * (rand() % (NI / 3)) + a % 3;
            u[n] = a; it[n] = i; n++;
        }
    fr_dataset *d = ds_of(u, it, n);
    fr_features *f = NULL;
    cr_assert_eq(fr_features_create(&f, fr_dataset_n_users(d), fr_dataset_n_items(d)), FR_OK);
    char nm[8];
    for (uint32_t x = 0; x < fr_dataset_n_users(d); x++) {
        int g = (int)(fr_idmap_raw(fr_dataset_users(d), x) % 3);
        snprintf(nm, sizeof nm, "g=%d", g);
        cr_assert_eq(fr_features_add(f, FR_FEAT_USER, x, nm, 3, 1.0f), FR_OK);
    }
    for (uint32_t x = 0; x < fr_dataset_n_items(d); x++) {
        int g = (int)(fr_idmap_raw(fr_dataset_items(d), x) % 3);
        snprintf(nm, sizeof nm, "g=%d", g);
        cr_assert_eq(fr_features_add(f, FR_FEAT_ITEM, x, nm, 3, 1.0f), FR_OK);
    }
    fr_dataset *wt, *we, *co, *ex;
    uint32_t nc;
    cr_assert_eq(fr_dataset_cold_split(d, NULL, 0.3, 3, &wt, &we, &co, &ex, &nc), FR_OK, "%s", fr_errmsg());
    cr_assert_null(we);
    fr_model_config c;
    fr_model_config_default(&c, kind_of("lightfm"));
    c.n_users = fr_dataset_n_users(d);
    c.n_items = fr_dataset_n_items(d);
    c.dim = 8;
    cr_assert_eq(fr_model_config_set_features(&c, f), FR_OK);
    fr_model *m = NULL, *m2 = NULL, *init = NULL;
    cr_assert_eq(fr_model_create(&m, &c), FR_OK);
    cr_assert_eq(fr_model_create(&m2, &c), FR_OK);
    cr_assert_eq(fr_model_create(&init, &c), FR_OK);
    fr_train_config tc;
    fr_train_config_default(&tc);
    tc.batch = 64;
    tc.optim.lr = 0.02f;
    tc.negatives = 1;
    for (int threads = 1; threads <= 2; threads++) {
        fr_trainer *t = NULL;
        tc.threads = threads;
        cr_assert_eq(fr_trainer_create(&t, threads == 1 ? m : m2, wt, &tc), FR_OK, "%s", fr_errmsg());
        double l;
        for (int e = 0; e < 10; e++) cr_assert_eq(fr_trainer_epoch(t, &l), FR_OK);
        fr_trainer_free(t);
    }
    cr_assert(!memcmp(fr_model_params(m), fr_model_params(m2), fr_model_n_params(m) * sizeof(float)),
              "1 and 2 threads give the same bits on a cold split");
    /* no negative drew a cold item (the warm train marks them absent): its id rows are
     * still their init, every other item's moved (each was drawn or trained) */
    const uint8_t *absent = fr_dataset_absent_items(wt, NULL);
    const fr_tensor *ie = fr_model_tensor(m, fr_model_tensor_find(m, "item_emb")),
                    *ib = fr_model_tensor(m, fr_model_tensor_find(m, "item_bias"));
    const float *pm = fr_model_params(m), *p0 = fr_model_params(init);
    uint32_t cold_ids[NI], ncold = 0;
    for (uint32_t i = 0; i < c.n_items; i++) {
        bool same = !memcmp(pm + ie->offset + (size_t)i * c.dim, p0 + ie->offset + (size_t)i * c.dim, c.dim * sizeof(float)) &&
                    pm[ib->offset + i] == p0[ib->offset + i];
        cr_assert_eq(same, absent[i] != 0, "item %u: absent %d, rows untouched %d", i, absent[i], same);
        if (absent[i]) cold_ids[ncold++] = i;
    }
    cr_assert_eq(ncold, nc);
    /* forgotten, a cold item is scored from its features alone: p_u . sum_g w_g F_g +
     * b_u + sum_g w_g c_g, composed here by hand */
    uint32_t bad = c.n_items;
    cr_assert_eq(fr_model_forget_items(m, &bad, 1), FR_ERR_RANGE);
    cr_assert(strstr(fr_errmsg(), "expected <"), "%s", fr_errmsg());
    cr_assert_eq(fr_model_forget_items(m, cold_ids, ncold), FR_OK);
    for (uint32_t x = 0; x < ncold; x++) {
        for (uint32_t k = 0; k < c.dim; k++) cr_assert_eq(pm[ie->offset + (size_t)cold_ids[x] * c.dim + k], 0.0f);
        cr_assert_eq(pm[ib->offset + cold_ids[x]], 0.0f);
    }
    const fr_tensor *ue = fr_model_tensor(m, fr_model_tensor_find(m, "user_emb")),
                    *ub = fr_model_tensor(m, fr_model_tensor_find(m, "user_bias")),
                    *ufe = fr_model_tensor(m, fr_model_tensor_find(m, "user_feat_emb")),
                    *ufb = fr_model_tensor(m, fr_model_tensor_find(m, "user_feat_bias")),
                    *ife = fr_model_tensor(m, fr_model_tensor_find(m, "item_feat_emb")),
                    *ifb = fr_model_tensor(m, fr_model_tensor_find(m, "item_feat_bias"));
    fr_model_ws *ws = NULL;
    cr_assert_eq(fr_model_ws_create(&ws, m, 8), FR_OK);
    for (uint32_t us = 0; us < 5; us++)
        for (uint32_t x = 0; x < ncold; x++) {
            uint32_t i = cold_ids[x];
            double pu[8], qi[8] = {0}, bu = pm[ub->offset + us], bi = 0.0, want;
            for (int k = 0; k < 8; k++) pu[k] = pm[ue->offset + us * 8 + k];
            const uint32_t *id;
            const float *w;
            size_t nf = fr_features_of(f, FR_FEAT_USER, us, &id, &w);
            for (size_t j = 0; j < nf; j++) {
                for (int k = 0; k < 8; k++) pu[k] += w[j] * pm[ufe->offset + id[j] * 8 + k];
                bu += w[j] * pm[ufb->offset + id[j]];
            }
            nf = fr_features_of(f, FR_FEAT_ITEM, i, &id, &w);
            for (size_t j = 0; j < nf; j++) {
                for (int k = 0; k < 8; k++) qi[k] += w[j] * pm[ife->offset + id[j] * 8 + k];
                bi += w[j] * pm[ifb->offset + id[j]];
            }
            want = bu + bi;
            for (int k = 0; k < 8; k++) want += pu[k] * qi[k];
            float sc;
            cr_assert_eq(fr_model_score(m, ws, &us, &i, 1, &sc), FR_OK);
            cr_assert(fabs(want - sc) < 1e-5 * (1 + fabs(want)), "(%u,%u): %g vs %g", us, i, sc, want);
        }
    fr_model_ws_free(ws);
    fr_eval_result r;
    cr_assert_eq(fr_model_evaluate(m, ex, co, NULL, NULL, NULL, &r), FR_OK, "%s", fr_errmsg());
    cr_assert(r.has_full);
    cr_assert_gt(r.auc_full, 0.8, "cold auc %g", r.auc_full);
    fr_model_free(m);
    fr_model_free(m2);
    fr_model_free(init);
    fr_dataset *all[] = {wt, co, ex, d};
    for (int k = 0; k < 4; k++) fr_dataset_free(all[k]);
    fr_features_free(f);
}

/* The fused per-example SGD pass gives the generic minibatch loop's bits at batch 1. */
struct fr_trainer;
void fri_trainer_no_fused(struct fr_trainer *t);
static void fused_vs_generic(const char *kind, fr_loss loss, uint32_t warp) {
    data d = gen();
    fr_model_config c = config(kind, &d, loss, warp);
    fr_model *a = NULL, *b = NULL;
    cr_assert_eq(fr_model_create(&a, &c), FR_OK);
    cr_assert_eq(fr_model_create(&b, &c), FR_OK);
    fr_train_config tc;
    fr_train_config_default(&tc);
    fr_optim_config_default(&tc.optim, FR_OPTIM_SGD);
    tc.optim.lr = 0.05f;
    tc.optim.sparse_rows = true;
    tc.batch = 1;
    tc.negatives = loss == FR_LOSS_BCE ? 2 : 1;
    tc.threads = 1;
    double la[2], lb[2];
    fr_trainer *t = NULL;
    cr_assert_eq(fr_trainer_create(&t, a, d.train, &tc), FR_OK, "%s", fr_errmsg());
    for (int e = 0; e < 2; e++) cr_assert_eq(fr_trainer_epoch(t, &la[e]), FR_OK);
    fr_trainer_free(t);
    cr_assert_eq(fr_trainer_create(&t, b, d.train, &tc), FR_OK);
    fri_trainer_no_fused(t);
    for (int e = 0; e < 2; e++) cr_assert_eq(fr_trainer_epoch(t, &lb[e]), FR_OK);
    fr_trainer_free(t);
    cr_assert(!memcmp(fr_model_params(a), fr_model_params(b), fr_model_n_params(a) * sizeof(float)),
              "%s: fused and generic differ", kind);
    cr_assert_float_eq(la[1], lb[1], 1e-9 * fabs(lb[1]) + 1e-12);
    fr_model_free(a);
    fr_model_free(b);
    data_free(&d);
}

Test(hybrid, fused_sgd_equals_generic_loop) {
    fused_vs_generic("lightfm", FR_LOSS_BPR, 10);
    fused_vs_generic("fm", FR_LOSS_BCE, 0);
    fused_vs_generic("fm", FR_LOSS_BPR, 0);
}

/* The fused minibatch pass with a sparse-row optimizer (rows_pass: only the rows a
 * minibatch touched are combined, stepped and zeroed) gives the generic loop's bits:
 * Adagrad (the centralized preset's) and plain SGD, several shards, a last minibatch
 * smaller than the shards (empty shards), and two threads against one. */
static void rows_vs_generic(const char *kind, fr_loss loss, uint32_t warp, fr_optim_kind ok, uint32_t batch,
                            uint32_t shards) {
    data d = gen();
    fr_model_config c = config(kind, &d, loss, warp);
    fr_model *a = NULL, *b = NULL, *a2 = NULL;
    cr_assert_eq(fr_model_create(&a, &c), FR_OK);
    cr_assert_eq(fr_model_create(&b, &c), FR_OK);
    cr_assert_eq(fr_model_create(&a2, &c), FR_OK);
    fr_train_config tc;
    fr_train_config_default(&tc);
    fr_optim_config_default(&tc.optim, ok);
    tc.optim.lr = ok == FR_OPTIM_SGD ? 0.5f : 0.05f;
    tc.optim.sparse_rows = true;
    tc.batch = batch;
    tc.shards = shards;
    tc.negatives = loss == FR_LOSS_BCE ? 2 : 1;
    tc.threads = 1;
    double la[3], lb[3], la2[3];
    fr_trainer *t = NULL;
    cr_assert_eq(fr_trainer_create(&t, a, d.train, &tc), FR_OK, "%s", fr_errmsg());
    for (int e = 0; e < 3; e++) cr_assert_eq(fr_trainer_epoch(t, &la[e]), FR_OK);
    fr_trainer_free(t);
    cr_assert_eq(fr_trainer_create(&t, b, d.train, &tc), FR_OK);
    fri_trainer_no_fused(t);
    for (int e = 0; e < 3; e++) cr_assert_eq(fr_trainer_epoch(t, &lb[e]), FR_OK);
    fr_trainer_free(t);
    tc.threads = 2;
    cr_assert_eq(fr_trainer_create(&t, a2, d.train, &tc), FR_OK);
    for (int e = 0; e < 3; e++) cr_assert_eq(fr_trainer_epoch(t, &la2[e]), FR_OK);
    fr_trainer_free(t);
    size_t np = fr_model_n_params(a);
    cr_assert(!memcmp(fr_model_params(a), fr_model_params(b), np * sizeof(float)),
              "%s warp %u batch %u shards %u: fused and generic differ", kind, warp, batch, shards);
    cr_assert(!memcmp(fr_model_params(a), fr_model_params(a2), np * sizeof(float)), "1 and 2 threads differ");
    for (int e = 0; e < 3; e++) {
        cr_assert_eq(la[e], lb[e], "epoch %d loss: fused %.17g, generic %.17g", e, la[e], lb[e]);
        cr_assert_eq(la[e], la2[e]);
    }
    cr_assert_lt(la[2], la[0], "%s: the loss falls (%g -> %g)", kind, la[0], la[2]);
    /* the training moved the feature tables (the rows the pass steps itself) */
    fr_model *fresh = NULL;
    cr_assert_eq(fr_model_create(&fresh, &c), FR_OK);
    const fr_tensor *ft = fr_model_tensor(a, fr_model_tensor_find(a, "item_feat_emb"));
    cr_assert(memcmp(fr_model_params(a) + ft->offset, fr_model_params(fresh) + ft->offset,
                     (size_t)ft->rows * ft->cols * sizeof(float)),
              "item feature rows moved");
    fr_model_free(fresh);
    fr_model_free(a);
    fr_model_free(b);
    fr_model_free(a2);
    data_free(&d);
}

uint32_t fri_hybrid_stale(uint32_t every);
bool fri_hybrid_splitmix(bool on);
void fri_hybrid_draws_count(uint64_t seed, uint32_t keys, uint32_t per, uint32_t n, uint64_t *count);

Test(hybrid, rows_pass_equals_generic_loop) {
    /* rows_pass's exact path (fri_hybrid_stale(0): every WARP candidate composed, Adagrad's
     * square root and division); both copies of the pass (and of the kernel): plain (mode 1),
     * AVX2 where the CPU has it */
    const uint32_t was = fri_hybrid_stale(0);
    for (int mode = 1; mode <= 2; mode++) {
        fri_hybrid_kernel(mode);
        rows_vs_generic("lightfm", FR_LOSS_BPR, 10, FR_OPTIM_ADAGRAD, 64, 1); /* the centralized preset */
        rows_vs_generic("lightfm", FR_LOSS_BPR, 10, FR_OPTIM_ADAGRAD, 64, 2); /* the preset before one shard */
        rows_vs_generic("lightfm", FR_LOSS_BPR, 0, FR_OPTIM_ADAGRAD, 7, 3);   /* the chain; empty shards */
        rows_vs_generic("lightfm", FR_LOSS_BPR, 10, FR_OPTIM_ADAGRAD, 1, 1);  /* vocabularies over 4 a minibatch:
                                                                                * their touched rows listed */
        rows_vs_generic("fm", FR_LOSS_BPR, 0, FR_OPTIM_ADAGRAD, 1, 2);
        rows_vs_generic("lightfm", FR_LOSS_BCE, 0, FR_OPTIM_SGD, 32, 1);
        rows_vs_generic("fm", FR_LOSS_BPR, 10, FR_OPTIM_ADAGRAD, 64, 2); /* its preset */
        rows_vs_generic("fm", FR_LOSS_BCE, 0, FR_OPTIM_ADAGRAD, 50, 4);
    }
    fri_hybrid_kernel(2);
    fri_hybrid_stale(was);
}

/* The one-thread, one-shard Adagrad (lr 0.05, sparse rows) the path comparisons train with. */
static fr_train_config adagrad_config(uint32_t batch, uint32_t negatives) {
    fr_train_config tc;
    fr_train_config_default(&tc);
    fr_optim_config_default(&tc.optim, FR_OPTIM_ADAGRAD);
    tc.optim.lr = 0.05f;
    tc.optim.sparse_rows = true;
    tc.batch = batch;
    tc.shards = 1;
    tc.negatives = negatives;
    tc.threads = 1;
    return tc;
}

/* A new model of config c trained 3 epochs on d.train; the epochs' losses in loss. */
static fr_model *train_3_epochs(const fr_model_config *c, const data *d, const fr_train_config *tc, double loss[3]) {
    fr_model *m = NULL;
    cr_assert_eq(fr_model_create(&m, c), FR_OK);
    fr_trainer *t = NULL;
    cr_assert_eq(fr_trainer_create(&t, m, d->train, tc), FR_OK, "%s", fr_errmsg());
    for (int e = 0; e < 3; e++) cr_assert_eq(fr_trainer_epoch(t, &loss[e]), FR_OK);
    fr_trainer_free(t);
    return m;
}

/* rows_pass's fast path (the default) against its exact path: Adagrad by rsqrt, and
 * lightfm's WARP candidates screened by a table of the items' feature parts and drawn by
 * splitmix64. With the table refreshed every minibatch (it is then the current model's,
 * up to rounding) and the Philox draws, the three epochs' parameters are the exact path's
 * within 1e-3 of the largest (rsqrt's estimate errs by up to 3.7e-4 of a step, no Newton
 * step: measured 2.4-4.5e-4) and the losses within 1e-5 (relative); bpr and fm (no
 * screening) likewise. As the default runs (refreshed every 64 minibatches: the table lags
 * the feature rows; splitmix64 draws) the loss falls and hr@10 is within 0.1 of the exact
 * path's. */
static void fast_vs_exact(const char *kind, uint32_t warp, uint32_t every, double ptol) {
    data d = gen();
    fr_model_config c = config(kind, &d, FR_LOSS_BPR, warp);
    fr_model *m[2] = {NULL, NULL};
    double l[2][3];
    const fr_train_config tc = adagrad_config(16, 1);
    const uint32_t was = fri_hybrid_stale(0);
    const bool smx = fri_hybrid_splitmix(ptol == 0); /* held to the exact path: its (Philox) draws */
    for (int k = 0; k < 2; k++) {
        fri_hybrid_stale(k ? every : 0);
        m[k] = train_3_epochs(&c, &d, &tc, l[k]);
    }
    fri_hybrid_stale(was);
    fri_hybrid_splitmix(smx);
    const size_t np = fr_model_n_params(m[0]);
    const float *a = fr_model_params(m[0]), *b = fr_model_params(m[1]);
    double amax = 0.0, dmax = 0.0;
    for (size_t i = 0; i < np; i++) {
        cr_assert(isfinite(b[i]));
        if (fabs(a[i]) > amax) amax = fabs(a[i]);
        if (fabs(a[i] - b[i]) > dmax) dmax = fabs(a[i] - b[i]);
    }
    cr_assert_lt(l[1][2], l[1][0], "%s warp %u every %u: the loss falls (%g -> %g)", kind, warp, every, l[1][0], l[1][2]);
    if (ptol > 0) {
        cr_assert(dmax <= ptol * amax, "%s warp %u every %u: parameters differ by %g (largest %g)", kind, warp, every, dmax, amax);
        for (int e = 0; e < 3; e++) {
            cr_assert(fabs(l[1][e] - l[0][e]) <= 1e-5 * fabs(l[0][e]), "%s epoch %d loss fast %.9g exact %.9g", kind, e,
                      l[1][e], l[0][e]);
        }
    } else {
        double h0 = hr10(m[0], &d), h1 = hr10(m[1], &d);
        cr_assert(fabs(h1 - h0) <= 0.1, "%s warp %u every %u: hr@10 fast %g exact %g", kind, warp, every, h1, h0);
        cr_assert(dmax > 0.0, "the lagging table changes the training");
    }
    fr_model_free(m[0]);
    fr_model_free(m[1]);
    data_free(&d);
}

/* The fast path's WARP draws (model_hybrid.c, hy_draws): 7 values equally often over
 * 20000 sequences of 10 (each count within 3% of 200000 / 7, ~6 standard deviations), and
 * another seed gives other counts. */
Test(hybrid, splitmix_draws_are_uniform) {
    uint64_t c[7] = {0}, c2[7] = {0};
    fri_hybrid_draws_count(4, 20000, 10, 7, c);
    fri_hybrid_draws_count(5, 20000, 10, 7, c2);
    uint64_t tot = 0;
    bool same = true;
    for (int k = 0; k < 7; k++) {
        tot += c[k];
        same &= c[k] == c2[k];
        cr_assert(fabs((double)c[k] - 200000.0 / 7) <= 0.03 * 200000.0 / 7, "value %d drawn %llu times", k,
                  (unsigned long long)c[k]);
    }
    cr_assert_eq(tot, 200000);
    cr_assert(!same, "another seed, other draws");
}

/* The screening table's half floats (model_hybrid.c, hy_f2h / hy_h2f, the plain copies'
 * conversions): values at the edges by hand (round to nearest even, a carry into the
 * exponent, overflow at 65520, subnormals, signs), a half read back exactly, and the
 * software's halves the hardware's (F16C, where the CPU has it) bit for bit over a sweep. */
bool fri_hybrid_halves(const float *in, size_t n, uint16_t *sw, uint16_t *hw, float *back);
Test(hybrid, screening_halves_round_to_nearest_even) {
    const float in[16] = {1.0f, -2.0f, 1.0f + 0x1p-11f, 1.0f + 3 * 0x1p-11f, 2047.0f / 1024 + 0x1p-11f, 65504.0f,
                          65519.0f, 65520.0f, 0x1p-24f, 0x1p-25f, 3 * 0x1p-26f, 0x1p-14f, -0.0f, 0.1f, 1e-8f, 0x1.8p-24f};
    const uint16_t want[16] = {0x3c00, 0xc000, 0x3c00, 0x3c02, 0x4000, 0x7bff, 0x7bff, 0x7c00,
                               0x0001, 0x0000, 0x0001, 0x0400, 0x8000, 0x2e66, 0x0000, 0x0002};
    uint16_t sw[16], hw[16];
    float back[16];
    fri_hybrid_halves(in, 16, sw, hw, back);
    for (int k = 0; k < 16; k++) cr_assert_eq(sw[k], want[k], "value %d (%a): half %#06x, want %#06x", k, in[k], sw[k], want[k]);
    cr_assert_eq(back[0], 1.0f);
    cr_assert_eq(back[3], 1.0f + 2 * 0x1p-10f);
    cr_assert_eq(back[8], 0x1p-24f);
    cr_assert_eq(back[13], 0x1.998p-4f, "0.1 as a half: %a", back[13]);
    enum { N = 4096 };
    static float x[N], bx[N];
    static uint16_t s1[N], h1[N];
    srand(3);
    for (int k = 0; k < N; k++) /* magnitudes 2^-30 .. 2^17, both signs, every low bit pattern */
        x[k] = ldexpf((float)(rand() % 0x1000000) / 0x1p24f + 0.5f, rand() % 48 - 30) * (k % 2 ? -1.0f : 1.0f);
    if (!fri_hybrid_halves(x, N, s1, h1, bx)) return;
    for (int k = 0; k < N; k++) {
        cr_assert_eq(s1[k], h1[k], "%a: software %#06x, F16C %#06x", x[k], s1[k], h1[k]);
        if (fabsf(x[k]) >= 0x1p-14f && fabsf(x[k]) < 65504.0f)
            cr_assert(fabsf(bx[k] - x[k]) <= 0x1p-11f * fabsf(x[k]), "%a read back as %a", x[k], bx[k]);
    }
}

Test(hybrid, rows_pass_fast_path_against_the_exact_one) {
    fast_vs_exact("lightfm", 10, 1, 1e-3);
    fast_vs_exact("lightfm", 0, 1, 1e-3);
    fast_vs_exact("fm", 10, 1, 1e-3);
    fast_vs_exact("lightfm", 10, 64, 0);
}

/* --warp 0 under the fedrec preset: centralized lightfm's bpr settings (lr 0.1, L2 0.01,
 * negatives by popularity^0.5, tuned on a validation cut of training data); WARP (uniform
 * negatives), fm, the federated preset and the textbook one keep theirs. */
Test(hybrid, preset_warp_zero_gives_lightfm_bpr_its_settings) {
    fr_run_config c;
    cr_assert_eq(fr_run_config_preset(&c, NULL, kind_of("lightfm"), true, NULL), FR_OK);
    cr_assert_eq(c.model.warp, 10);
    cr_assert_float_eq(c.train.optim.lr, 0.05f, 1e-9);
    cr_assert_eq(c.model.l2, 0.0f);
    fr_run_config_preset_warp(&c, 0);
    cr_assert_eq(c.model.warp, 0);
    cr_assert_float_eq(c.train.optim.lr, 0.1f, 1e-9);
    cr_assert_float_eq(c.model.l2, 0.01f, 1e-9);
    cr_assert_eq(c.train.neg_sampler, FR_NEG_POPULARITY);
    cr_assert_float_eq(c.train.neg_pop_exp, 0.5f, 1e-9);
    cr_assert_eq(fr_run_config_preset(&c, NULL, kind_of("lightfm"), true, NULL), FR_OK);
    fr_run_config_preset_warp(&c, 5);
    cr_assert_eq(c.model.warp, 5);
    cr_assert_float_eq(c.train.optim.lr, 0.05f, 1e-9);
    cr_assert_eq(c.model.l2, 0.0f);
    cr_assert_eq(c.train.neg_sampler, FR_NEG_UNIFORM);
    const struct { const char *kind, *preset; bool central; } same[3] = {
        {"fm", "fedrec", true}, {"lightfm", "fedrec", false}, {"lightfm", "textbook", true}};
    for (int k = 0; k < 3; k++) {
        fr_run_config a, b;
        cr_assert_eq(fr_run_config_preset(&a, same[k].preset, kind_of(same[k].kind), same[k].central, NULL), FR_OK);
        b = a;
        fr_run_config_preset_warp(&b, 0);
        cr_assert_eq(b.model.warp, 0);
        b.model.warp = a.model.warp;
        cr_assert(!memcmp(&a, &b, sizeof a), "%s %s: only warp changes", same[k].kind, same[k].preset);
    }
}

bool fri_hybrid_compact(bool on);
uint64_t fri_hybrid_compact_passes(void);

/* rows_pass's fast path with the compact gradient (the id tables' gradient rows packed in
 * slots taken in order of first touch, stepped from there) gives the bits of the same
 * path on the slab's gradient rows: lightfm WARP (the preset), bpr and bce, fm, over 3
 * epochs; and the compact mode ran. */
static void compact_vs_rows(const char *kind, fr_loss loss, uint32_t warp, uint32_t batch) {
    data d = gen();
    fr_model_config c = config(kind, &d, loss, warp);
    fr_model *m[2] = {NULL, NULL};
    double l[2][3];
    const fr_train_config tc = adagrad_config(batch, loss == FR_LOSS_BCE ? 2 : 1);
    const uint64_t ran = fri_hybrid_compact_passes();
    for (int k = 0; k < 2; k++) {
        const bool was = fri_hybrid_compact(k == 0);
        m[k] = train_3_epochs(&c, &d, &tc, l[k]);
        fri_hybrid_compact(was);
    }
#if defined(__x86_64__)
    if (__builtin_cpu_supports("avx2"))
        cr_assert_gt(fri_hybrid_compact_passes(), ran, "%s: the compact gradient did not run", kind);
#endif
    cr_assert(!memcmp(fr_model_params(m[0]), fr_model_params(m[1]), fr_model_n_params(m[0]) * sizeof(float)),
              "%s loss %d warp %u batch %u: compact and slab rows differ", kind, (int)loss, warp, batch);
    for (int e = 0; e < 3; e++) cr_assert_eq(l[0][e], l[1][e], "epoch %d loss", e);
    fr_model_free(m[0]);
    fr_model_free(m[1]);
    data_free(&d);
}

Test(hybrid, rows_pass_compact_gradient_equals_the_slab_rows) {
    compact_vs_rows("lightfm", FR_LOSS_BPR, 10, 64);
    compact_vs_rows("lightfm", FR_LOSS_BPR, 10, 16);
    compact_vs_rows("lightfm", FR_LOSS_BPR, 0, 64);
    compact_vs_rows("lightfm", FR_LOSS_BCE, 0, 32);
    compact_vs_rows("fm", FR_LOSS_BPR, 10, 64);
    compact_vs_rows("fm", FR_LOSS_BCE, 0, 16);
}

/* The centralized preset of lightfm and fm: minibatches of 64 for lightfm WARP (one shard,
 * so one party runs them whatever the thread count; a second shard only adds a combine of
 * the gradients; 128 cost AUC on the validation cut), for its bpr (--warp 0, where bpr's
 * settings were tuned) and for fm (in two shards: its validation HR@10 was 0.001 lower with
 * one), Adagrad on the rows touched (the fused rows_pass). */
Test(hybrid, centralized_preset_minibatches) {
    const char *kinds[2] = {"lightfm", "fm"};
    for (int k = 0; k < 2; k++) {
        fr_run_config c;
        cr_assert_eq(fr_run_config_preset(&c, NULL, kind_of(kinds[k]), true, NULL), FR_OK);
        cr_assert_eq(c.train.shards, k ? 2u : 1u, "%s", kinds[k]);
        cr_assert_eq(c.train.batch, 64u, "%s", kinds[k]);
        fr_run_config b = c;
        fr_run_config_preset_warp(&b, 0);
        cr_assert_eq(b.train.batch, 64, "%s --warp 0", kinds[k]);
        cr_assert_eq(c.train.optim.kind, FR_OPTIM_ADAGRAD, "%s", kinds[k]);
        cr_assert(c.train.optim.sparse_rows, "%s", kinds[k]);
        cr_assert_eq(c.model.warp, 10, "%s", kinds[k]);
    }
}

uint32_t *fri_hybrid_cand_trace(uint32_t *buf, size_t cap);

/* Trains lightfm WARP (the fast path: the kernel draws each example's first candidate) for
 * `epochs` epochs on train, tracing the candidates it screens; checks each against an
 * enumeration of the user's items in train and its absent items: never one of them (the
 * first candidate drawn again, a later trial spent, as LightFM's), every other item drawn
 * first for every user with examples, one first candidate an example, and no example for a
 * user who has no other item. Returns the candidates traced. */
static size_t check_candidates_dim(const fr_dataset *train, int epochs, uint32_t dim) {
    const uint32_t nu = fr_dataset_n_users(train), ni = fr_dataset_n_items(train);
    fr_features *f = toy_features(nu, ni, 9);
    fr_model_config c;
    fr_model_config_default(&c, kind_of("lightfm"));
    c.n_users = nu;
    c.n_items = ni;
    c.dim = dim;
    c.seed = 4;
    c.loss = FR_LOSS_BPR;
    c.warp = 10;
    cr_assert_eq(fr_model_config_set_features(&c, f), FR_OK);
    fr_features_free(f);
    fr_model *m = NULL;
    cr_assert_eq(fr_model_create(&m, &c), FR_OK, "%s", fr_errmsg());
    const size_t cap = 4 * 100000 + 1;
    uint32_t *tr = calloc(cap, sizeof *tr);
    cr_assert(tr);
    fr_train_config tc = adagrad_config(4, 1);
    fr_trainer *t = NULL;
    cr_assert_eq(fr_trainer_create(&t, m, train, &tc), FR_OK, "%s", fr_errmsg());
    uint32_t *was = fri_hybrid_cand_trace(tr, cap);
    for (int e = 0; e < epochs; e++) {
        double l;
        cr_assert_eq(fr_trainer_epoch(t, &l), FR_OK, "%s", fr_errmsg());
    }
    fri_hybrid_cand_trace(was, 0);
    fr_trainer_free(t);
    const size_t n = tr[0];
    cr_assert_lt(4 * n + 5, cap, "the trace is full");
    /* the enumeration: item j is the user's when it is in the user's list in train */
    uint32_t n_absent = 0;
    const uint8_t *absent = fr_dataset_absent_items(train, &n_absent);
    uint8_t *seen = calloc((size_t)nu * ni, 1);
    size_t want = 0, firsts = 0, spent = 0; /* examples an epoch: the positives of users with another item */
    for (uint32_t u = 0; u < nu; u++) {
        const uint32_t *items;
        const float *r;
        size_t deg = fr_dataset_user(train, u, &items, &r, NULL);
        if (deg + n_absent < ni) want += deg;
    }
    for (size_t k = 0; k < n; k++) {
        const uint32_t *q = tr + 1 + 4 * k, u = q[0], i = q[1], j = q[2], tt = q[3];
        cr_assert_lt(u, nu);
        cr_assert_lt(j, ni);
        cr_assert(tt >= 1 && tt <= c.warp, "trial %u", tt);
        const uint32_t *items;
        const float *r;
        size_t deg = fr_dataset_user(train, u, &items, &r, NULL);
        bool has_i = false;
        for (size_t x = 0; x < deg; x++) {
            cr_assert_neq(items[x], j, "user %u: candidate %u (trial %u) is one of the user's items (positive %u)", u, j,
                          tt, i);
            has_i |= items[x] == i;
        }
        cr_assert(has_i, "user %u: positive %u is not the user's", u, i);
        cr_assert(!absent || !absent[j], "user %u: candidate %u (trial %u) is an absent item", u, j, tt);
        if (tt == 1) {
            firsts++;
            seen[(size_t)u * ni + j] = 1;
        } else if (k && tr[1 + 4 * (k - 1) + 3] + 1 < tt) spent++; /* a trial between them was rejected */
    }
    cr_assert_eq(firsts, want * (size_t)epochs, "%zu first candidates traced, expected %zu examples x %d epochs",
                 firsts, want, epochs);
    cr_assert_gt(spent, 0, "no trial was spent on one of the user's items");
    for (uint32_t u = 0; u < nu; u++) { /* every other item was drawn first for the user */
        const uint32_t *items;
        const float *r;
        size_t deg = fr_dataset_user(train, u, &items, &r, NULL);
        if (deg + n_absent >= ni) continue;
        for (uint32_t j = 0; j < ni; j++) {
            bool mine = absent && absent[j];
            for (size_t x = 0; x < deg; x++) mine |= items[x] == j;
            cr_assert(mine || seen[(size_t)u * ni + j], "user %u: item %u never drawn first", u, j);
        }
    }
    free(seen);
    free(tr);
    fr_model_free(m);
    return n;
}

static size_t check_candidates(const fr_dataset *train, int epochs) { return check_candidates_dim(train, epochs, 8); }

/* A 24-item catalogue whose users hold most of it (20, 12, 4, 22 items) and one all of it. */
static fr_dataset *crowded_catalogue(void) {
    int64_t u[128], it[128];
    size_t n = 0;
    for (int j = 0; j < 20; j++) u[n] = 0, it[n++] = j;
    for (int j = 0; j < 12; j++) u[n] = 1, it[n++] = j;
    for (int j = 5; j < 20; j += 4) u[n] = 2, it[n++] = j;
    for (int j = 2; j < 24; j++) u[n] = 3, it[n++] = j;
    for (int j = 0; j < 24; j++) u[n] = 4, it[n++] = j;
    fr_dataset *d = NULL;
    cr_assert_eq(fr_dataset_from_arrays(&d, n, u, it, NULL, NULL), FR_OK, "%s", fr_errmsg());
    return d;
}

/* The kernel's WARP candidates (rows_pass_draws) are never one of the user's items nor an
 * absent (cold) item, as the trainer's drawn negatives are not: users whose items are most
 * of a 24-item catalogue (20, 22 of 24), and one who has all of it (no example) */
Test(hybrid, fast_warp_candidates_are_never_the_users_items) {
    fr_dataset *d = crowded_catalogue();
    cr_assert_eq(fr_dataset_n_items(d), 24);
    size_t traced = check_candidates(d, 60);
    cr_log_info("%zu candidates checked", traced);
    /* a cold split: its held-out items are absent from the warm train, never drawn either */
    fr_dataset *wt = NULL, *we = NULL, *co = NULL, *ex = NULL;
    uint32_t nc = 0;
    cr_assert_eq(fr_dataset_cold_split(d, NULL, 0.25, 3, &wt, &we, &co, &ex, &nc), FR_OK, "%s", fr_errmsg());
    cr_assert_gt(nc, 0);
    check_candidates(wt, 60);
    fr_dataset_free(wt);
    fr_dataset_free(we);
    fr_dataset_free(co);
    fr_dataset_free(ex);
    fr_dataset_free(d);
}

/* lightfm WARP on rows_pass's fast path draws each example's first candidate itself
 * (rows_pass_draws): the trainer builds its examples without negatives, once (nothing is
 * drawn, so every epoch's are the same but for the shuffle). The model is the same bits on
 * 1 and 2 threads (the next epoch's examples built on the second), the loss falls and hr@10
 * is the exact path's within 0.1 (whose examples carry negatives: fri_trainer_no_fused gives
 * the generic loop its negatives back). */
Test(hybrid, fast_warp_draws_its_own_first_candidates) {
    data d = gen();
    fr_model_config c = config("lightfm", &d, FR_LOSS_BPR, 10);
    fr_model *m[3] = {NULL, NULL, NULL};
    double l[3][3];
    for (int k = 0; k < 3; k++) {
        fr_train_config tc = adagrad_config(16, 1);
        tc.threads = k == 1 ? 2 : 1;
        const uint32_t was = fri_hybrid_stale(k == 2 ? 0 : 64);
        m[k] = train_3_epochs(&c, &d, &tc, l[k]);
        fri_hybrid_stale(was);
    }
    const size_t np = fr_model_n_params(m[0]);
    cr_assert(!memcmp(fr_model_params(m[0]), fr_model_params(m[1]), np * sizeof(float)), "1 and 2 threads differ");
    cr_assert_eq(l[0][2], l[1][2]);
    cr_assert_lt(l[0][2], l[0][0], "the loss falls (%g -> %g)", l[0][0], l[0][2]);
    const double h0 = hr10(m[0], &d), h2 = hr10(m[2], &d);
    cr_assert(fabs(h0 - h2) <= 0.1, "hr@10 own draws %g, exact path %g", h0, h2);
    /* the generic loop (no fused pass) trains on examples with negatives: the same model
     * whether or not rows_pass would have drawn them (fri_trainer_no_fused gives them back) */
    fr_model *g[2] = {NULL, NULL};
    for (int k = 0; k < 2; k++) {
        cr_assert_eq(fr_model_create(&g[k], &c), FR_OK);
        fr_train_config tc = adagrad_config(16, 1);
        fr_trainer *t = NULL;
        const uint32_t was = fri_hybrid_stale(k ? 0 : 64);
        cr_assert_eq(fr_trainer_create(&t, g[k], d.train, &tc), FR_OK, "%s", fr_errmsg());
        fri_hybrid_stale(was);
        fri_trainer_no_fused(t);
        double lg;
        cr_assert_eq(fr_trainer_epoch(t, &lg), FR_OK, "%s", fr_errmsg());
        fr_trainer_free(t);
    }
    cr_assert(!memcmp(fr_model_params(g[0]), fr_model_params(g[1]), np * sizeof(float)),
              "the generic loop's examples lack their negatives");
    fr_model_free(g[0]);
    fr_model_free(g[1]);
    for (int k = 0; k < 3; k++) fr_model_free(m[k]);
    data_free(&d);
}

uint64_t fri_hybrid_warp_calls(int avx512);
bool fri_hybrid_warp_kernel(bool on);
bool fri_hybrid_warp512(bool on);

/* lightfm WARP at dim 32 on the fast path drawing its own candidates runs a kernel of its own
 * (hy_kernel_avx_warp, and hy_kernel_avx512_warp where the CPU has AVX-512F: model_hybrid.c,
 * tenth pass). Held to the general kernel's copy of that path (fri_hybrid_warp_kernel(false)),
 * from the same start: the same candidates screened over the first epoch, in the same trials
 * (traced); after three epochs the parameters within 1e-3 of the largest and the losses within
 * 1e-4 (the copies differ only in which products are fused and the order of a sum's lanes);
 * and, like the general kernel, against the naive exact path (the plain code, every candidate
 * composed, Philox draws): the loss falls and hr@10 within 0.1. The kernels are seen to run. Its
 * candidates are never the user's items (check_candidates at dim 32). */
Test(hybrid, warp_kernels_hold_to_the_general_kernel) {
    data d = gen();
    fr_model_config c = config("lightfm", &d, FR_LOSS_BPR, 10);
    c.dim = 32;
    const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl");
    const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
    /* 0 the general kernel, 1 the AVX2 copy, 2 the AVX-512 copy, 3 the naive exact path */
    fr_model *m[4] = {NULL, NULL, NULL, NULL};
    double l[4][3];
    const size_t cap = 4 * 200000 + 1;
    uint32_t *tr[3];
    for (int k = 0; k < 4; k++) {
        const bool w = fri_hybrid_warp_kernel(k == 1 || k == 2), w5 = fri_hybrid_warp512(k == 2);
        const uint32_t stale = fri_hybrid_stale(k == 3 ? 0 : 64);
        const int mode = fri_hybrid_kernel(k == 3 ? 0 : 2);
        const bool smx = fri_hybrid_splitmix(k != 3);
        const uint64_t calls[2] = {fri_hybrid_warp_calls(0), fri_hybrid_warp_calls(1)};
        fr_train_config tc = adagrad_config(16, 1);
        cr_assert_eq(fr_model_create(&m[k], &c), FR_OK);
        fr_trainer *t = NULL;
        cr_assert_eq(fr_trainer_create(&t, m[k], d.train, &tc), FR_OK, "%s", fr_errmsg());
        if (k < 3) {
            tr[k] = calloc(cap, sizeof *tr[k]);
            cr_assert(tr[k]);
        }
        for (int e = 0; e < 3; e++) {
            uint32_t *was = k < 3 && e == 0 ? fri_hybrid_cand_trace(tr[k], cap) : NULL;
            cr_assert_eq(fr_trainer_epoch(t, &l[k][e]), FR_OK, "%s", fr_errmsg());
            if (k < 3 && e == 0) fri_hybrid_cand_trace(was, 0);
        }
        fr_trainer_free(t);
        if (k == 1 && avx2) cr_assert_gt(fri_hybrid_warp_calls(0), calls[0], "the AVX2 warp kernel did not run");
        if (k == 2 && avx512) cr_assert_gt(fri_hybrid_warp_calls(1), calls[1], "the AVX-512 warp kernel did not run");
        if (k == 0 || k == 3)
            cr_assert(fri_hybrid_warp_calls(0) == calls[0] && fri_hybrid_warp_calls(1) == calls[1],
                      "run %d took a warp kernel", k);
        fri_hybrid_splitmix(smx);
        fri_hybrid_kernel(mode);
        fri_hybrid_stale(stale);
        fri_hybrid_warp512(w5);
        fri_hybrid_warp_kernel(w);
    }
    const size_t np = fr_model_n_params(m[0]);
    const float *a = fr_model_params(m[0]);
    double amax = 0.0;
    for (size_t i = 0; i < np; i++)
        if (fabs(a[i]) > amax) amax = fabs(a[i]);
    for (int k = 1; k < 3; k++) {
        cr_assert_gt(tr[0][0], 1000, "%u candidates traced", tr[0][0]);
        cr_assert_eq(tr[k][0], tr[0][0], "kernel %d: %u candidates screened, the general kernel %u", k, tr[k][0],
                     tr[0][0]);
        cr_assert(!memcmp(tr[k], tr[0], (4 * (size_t)tr[0][0] + 1) * sizeof(uint32_t)), "kernel %d: other candidates",
                  k);
        const float *b = fr_model_params(m[k]);
        double dmax = 0.0;
        for (size_t i = 0; i < np; i++) {
            cr_assert(isfinite(b[i]));
            if (fabs(a[i] - b[i]) > dmax) dmax = fabs(a[i] - b[i]);
        }
        cr_assert(dmax <= 1e-3 * amax, "kernel %d: parameters differ by %g (largest %g)", k, dmax, amax);
        for (int e = 0; e < 3; e++)
            cr_assert(fabs(l[k][e] - l[0][e]) <= 1e-4 * fabs(l[0][e]), "kernel %d epoch %d loss %.9g, general %.9g", k,
                      e, l[k][e], l[0][e]);
        cr_assert_lt(l[k][2], l[k][0], "kernel %d: the loss falls (%g -> %g)", k, l[k][0], l[k][2]);
        const double h = hr10(m[k], &d), h3 = hr10(m[3], &d);
        cr_assert(fabs(h - h3) <= 0.1, "kernel %d: hr@10 %g, the naive exact path %g", k, h, h3);
    }
    for (int k = 0; k < 3; k++) free(tr[k]);
    for (int k = 0; k < 4; k++) fr_model_free(m[k]);
    data_free(&d);
    /* the candidates of the 24-item catalogue (fast_warp_candidates_are_never_the_users_items) at dim 32 */
    fr_dataset *dd = crowded_catalogue();
    const uint64_t calls = fri_hybrid_warp_calls(0) + fri_hybrid_warp_calls(1);
    check_candidates_dim(dd, 60, 32);
    if (avx2) cr_assert_gt(fri_hybrid_warp_calls(0) + fri_hybrid_warp_calls(1), calls, "no warp kernel ran");
    fr_dataset_free(dd);
}
