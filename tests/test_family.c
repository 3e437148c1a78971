/* The model interface from outside the library: a family defined only here ("biasdot":
 * logit = b_u + b_i + p_u.q_i, BCE) and registered at run time must train centrally
 * (fr_trainer), train federated (fr_sim), be evaluated (fr_model_evaluate) and round-trip
 * through the model file (stored by name) with no change to the client, server, eval or
 * CLI code; its gradient passes the central differences of the built-in models. Also:
 * the registry's names, values and refusals. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "fedrec/fedrec.h"
#include "fedrec/model_eval.h"
#include "fedrec/runtime.h"
#include "fedrec/train.h"
#include "gradcheck.h"
#include "model/family.h"
#include "model/layers.h"

/* ------------------------------------------------------------------ the family */

enum { ITEM_V, ITEM_B, USER_V, USER_B };

static void bd_default(fr_model_config *c) {
    c->dim = 4;
    c->loss = FR_LOSS_BCE;
}

static fr_err bd_check(const fr_model_config *c) {
    if (c->dim == 0 || c->dim > 256) return fri_fail(FR_ERR_INVALID, "biasdot: dim %u: expected 1..256", c->dim);
    if (c->loss != FR_LOSS_BCE) return fri_fail(FR_ERR_INVALID, "biasdot: trained with bce");
    return FR_OK;
}

static void bd_put(fri_buf *b, const fr_model_config *c) { fri_buf_u32(b, c->dim); }
static fr_err bd_get(fri_rd *r, fr_model_config *c) { return fri_rd_u32(r, &c->dim, "dim"); }

static fr_err bd_layout(fr_model *m, const fr_model_config *c) {
    fr_err e = fri_model_add_tensor(m, "item_vec", c->n_items, c->dim, FR_TENSOR_ITEM_TABLE, FRI_INIT_NORMAL,
                                    &m->slot[ITEM_V]);
    if (!e) e = fri_model_add_tensor(m, "item_bias", c->n_items, 1, FR_TENSOR_ITEM_TABLE, FRI_INIT_ZERO, &m->slot[ITEM_B]);
    if (!e) e = fri_model_add_tensor(m, "user_vec", c->n_users, c->dim, FR_TENSOR_USER_TABLE, FRI_INIT_NORMAL,
                                     &m->slot[USER_V]);
    if (!e) e = fri_model_add_tensor(m, "user_bias", c->n_users, 1, FR_TENSOR_USER_TABLE, FRI_INIT_ZERO, &m->slot[USER_B]);
    return e;
}

typedef struct bd_ws {
    float *p, *q, *dp, *dq; /* [B,dim] */
    float *bu, *bi, *db;    /* [B] */
    float *s, *ds;          /* [B] */
} bd_ws;

static size_t bd_carve(void *wsp, float *arena, const fr_model_config *c, size_t B) {
    bd_ws tmp, *w = wsp ? wsp : &tmp;
    fri_carver cv = {arena, 0};
    w->p = fri_carve(&cv, B * c->dim); w->q = fri_carve(&cv, B * c->dim);
    w->dp = fri_carve(&cv, B * c->dim); w->dq = fri_carve(&cv, B * c->dim);
    w->bu = fri_carve(&cv, B); w->bi = fri_carve(&cv, B); w->db = fri_carve(&cv, B);
    w->s = fri_carve(&cv, B); w->ds = fri_carve(&cv, B);
    return cv.at;
}

static bool bd_fits(const fr_model_config *a, const fr_model_config *b) { return a->dim == b->dim; }

static void bd_forward(const fr_model *m, bd_ws *w, const uint32_t *users, const uint32_t *items, size_t B) {
    size_t d = m->cfg.dim;
    fri_embedding_forward(w->p, fri_model_data(m, m->slot[USER_V]), users, B, d);
    fri_embedding_forward(w->q, fri_model_data(m, m->slot[ITEM_V]), items, B, d);
    fri_embedding_forward(w->bu, fri_model_data(m, m->slot[USER_B]), users, B, 1);
    fri_embedding_forward(w->bi, fri_model_data(m, m->slot[ITEM_B]), items, B, 1);
    fri_dot_forward(w->s, w->p, w->q, B, d);
    for (size_t i = 0; i < B; i++) w->s[i] += w->bu[i] + w->bi[i];
}

static double bd_impl(const fr_model *m, bd_ws *w, const fr_batch *b, fr_grad *g) {
    size_t B = b->n, d = m->cfg.dim;
    double l2s = (double)m->cfg.l2 / (double)B;
    bd_forward(m, w, b->users, b->items, B);
    double L = fri_bce_forward_backward(g ? w->ds : NULL, w->s, b->label, b->weight, B);
    if (g) {
        memset(w->dp, 0, B * d * sizeof(float));
        memset(w->dq, 0, B * d * sizeof(float));
    }
    if (l2s > 0) {
        L += fri_l2_forward_backward(g ? w->dp : NULL, w->p, B, d, l2s);
        L += fri_l2_forward_backward(g ? w->dq : NULL, w->q, B, d, l2s);
    }
    if (!g) return L;
    fri_dot_backward(w->dp, w->dq, w->ds, w->p, w->q, B, d);
    const int iv = m->slot[ITEM_V], uv = m->slot[USER_V], ib = m->slot[ITEM_B], ub = m->slot[USER_B];
    fri_embedding_backward(fri_grad_of(g, uv), &g->rows[uv], w->dp, b->users, B, d);
    fri_embedding_backward(fri_grad_of(g, iv), &g->rows[iv], w->dq, b->items, B, d);
    memcpy(w->db, w->ds, B * sizeof(float));
    fri_embedding_backward(fri_grad_of(g, ub), &g->rows[ub], w->db, b->users, B, 1);
    fri_embedding_backward(fri_grad_of(g, ib), &g->rows[ib], w->db, b->items, B, 1);
    return L;
}

static fr_err bd_loss_grad(const fr_model *m, void *w, const fr_batch *b, fr_grad *g, double *loss) {
    *loss = bd_impl(m, w, b, g);
    return FR_OK;
}

static void bd_score(const fr_model *m, void *w, const uint32_t *users, const uint32_t *items, size_t n, float *out) {
    bd_forward(m, w, users, items, n);
    memcpy(out, ((bd_ws *)w)->s, n * sizeof(float));
}

static const fri_model_kind_def bd_kinds[] = {{"biasdot", false, false}};

static const fri_model_family biasdot = {
    .name = "biased dot product (tests)",
    .kinds = bd_kinds,
    .n_kinds = 1,
    .init_std = 0.1f,
    .config_default = bd_default,
    .config_check = bd_check,
    .params_put = bd_put,
    .params_get = bd_get,
    .layout = bd_layout,
    .ws_size = sizeof(bd_ws),
    .ws_carve = bd_carve,
    .ws_fits = bd_fits,
    .loss_grad = bd_loss_grad,
    .score = bd_score,
};

/* The same family, but its gradient fails on the fail_at-th call (counted over threads):
 * for the error paths of the loops that call it. */
static atomic_int grad_calls, fail_at;
static fr_err bdf_loss_grad(const fr_model *m, void *w, const fr_batch *b, fr_grad *g, double *loss) {
    if (atomic_fetch_add(&grad_calls, 1) + 1 == atomic_load(&fail_at))
        return fri_fail(FR_ERR_RANGE, "biasdot-fail: call %d fails", atomic_load(&fail_at));
    return bd_loss_grad(m, w, b, g, loss);
}
static const fri_model_kind_def bdf_kinds[] = {{"biasdot-fail", false, false}};

static fr_model_kind biasdot_kind(void) {
    fr_model_kind k = 0;
    cr_assert_eq(fri_model_register(&biasdot, &k), FR_OK, "%s", fr_errmsg());
    return k;
}

/* ------------------------------------------------------------------ data */

typedef struct data {
    fr_dataset *all, *train, *test;
    fr_negatives *negs;
} data;

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
    return d;
}

static void data_free(data *d) {
    fr_negatives_free(d->negs);
    fr_dataset_free(d->all);
    fr_dataset_free(d->train);
    fr_dataset_free(d->test);
}

static fr_model_config config(fr_model_kind k, const fr_dataset *train) {
    fr_model_config c;
    fr_model_config_default(&c, k);
    c.n_users = fr_dataset_n_users(train);
    c.n_items = fr_dataset_n_items(train);
    c.dim = 8;
    c.seed = 4;
    return c;
}

static double hr10(const fr_model *m, const data *d) {
    fr_eval_result r;
    cr_assert_eq(fr_model_evaluate(m, d->train, d->test, d->negs, NULL, NULL, &r), FR_OK, "%s", fr_errmsg());
    cr_assert(r.has_sampled && !r.has_rating, "a ranking kind is evaluated by ranking");
    cr_assert_gt(r.users_sampled, 100);
    for (size_t i = 0; i < r.n_ks; i++)
        if (r.ks[i] == 10) return r.hr[i];
    cr_assert_fail("no hr@10");
    return 0;
}

/* ------------------------------------------------------------------ tests */

Test(family, registry_names_values_and_refusals) {
    /* the built-ins keep their public values */
    const char *names[] = {"mf", "bpr", "gmf", "mlp", "neumf"};
    for (int k = FR_MODEL_MF; k <= FR_MODEL_NEUMF; k++) {
        cr_assert_str_eq(fr_model_kind_name((fr_model_kind)k), names[k - 1]);
        fr_model_kind got;
        cr_assert_eq(fr_model_kind_parse(names[k - 1], &got), FR_OK);
        cr_assert_eq(got, (fr_model_kind)k);
    }
    cr_assert(fr_model_kind_is_explicit(FR_MODEL_MF));
    cr_assert(!fr_model_kind_is_explicit(FR_MODEL_NEUMF));
    fr_model_kind got;
    cr_assert_eq(fr_model_kind_parse("biasdot", &got), FR_ERR_INVALID);

    /* the first value past the built-ins (bias = 7 and the built-in families after it) */
    int first_free = FR_MODEL_BIAS + 1;
    while (strcmp(fr_model_kind_name((fr_model_kind)first_free), "?")) first_free++;
    fr_model_kind k = biasdot_kind();
    cr_assert_eq(k, (fr_model_kind)first_free);
    cr_assert_eq(biasdot_kind(), k, "registering again gives the same value");
    cr_assert_str_eq(fr_model_kind_name(k), "biasdot");
    cr_assert_eq(fr_model_kind_parse("biasdot", &got), FR_OK);
    cr_assert_eq(got, k);
    cr_assert(!fr_model_kind_is_explicit(k));
    cr_assert_str_eq(fr_model_kind_name((fr_model_kind)(k + 1)), "?");
    /* the message lists every registered name */
    cr_assert_eq(fr_model_kind_parse("nope", &got), FR_ERR_INVALID);
    cr_assert(strstr(fr_errmsg(), "'nope'") && strstr(fr_errmsg(), "neumf") && strstr(fr_errmsg(), "biasdot"), "%s",
              fr_errmsg());
    fr_model_config c;
    fr_model_config_default(&c, (fr_model_kind)(k + 1));
    c.n_items = 3;
    cr_assert_eq(fr_model_config_check(&c), FR_ERR_INVALID);
    cr_assert(strstr(fr_errmsg(), "biasdot"), "%s", fr_errmsg());

    /* a name already taken, a malformed one, a missing op */
    static const fri_model_kind_def taken[] = {{"mf", false, false}}, bad[] = {{"Big Name", false, false}};
    fri_model_family f = biasdot;
    fr_model_kind k2 = 0;
    f.kinds = taken;
    cr_assert_eq(fri_model_register(&f, &k2), FR_ERR_INVALID);
    cr_assert(strstr(fr_errmsg(), "'mf'"), "%s", fr_errmsg());
    f.kinds = bad;
    cr_assert_eq(fri_model_register(&f, &k2), FR_ERR_INVALID);
    f = biasdot;
    f.score = NULL;
    cr_assert_eq(fri_model_register(&f, &k2), FR_ERR_INVALID);
    cr_assert_eq(k2, 0);
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

Test(family, gradient_passes_central_differences) {
    fr_model_config c;
    fr_model_config_default(&c, biasdot_kind());
    c.n_users = 4;
    c.n_items = 7;
    c.dim = 3;
    c.l2 = 0.3f;
    c.init_std = 0.5f;
    fr_model *m = NULL;
    cr_assert_eq(fr_model_create(&m, &c), FR_OK, "%s", fr_errmsg());
    float *p = fr_model_params(m);
    for (int t = 0; t < fr_model_n_tensors(m); t++) { /* biases away from 0 */
        const fr_tensor *tt = fr_model_tensor(m, t);
        if (tt->cols == 1)
            for (uint32_t r = 0; r < tt->rows; r++) p[tt->offset + r] = 0.1f * (float)(r % 4) - 0.15f;
    }
    uint32_t users[6] = {0, 1, 3, 0, 1, 3}, items[6] = {2, 5, 6, 0, 3, 2};
    float label[6] = {1, 0, 1, 0, 1, 1};
    fr_batch b = {users, items, label, NULL, 6, NULL};
    fr_model_ws *ws = NULL;
    fr_grad *g = NULL;
    cr_assert_eq(fr_model_ws_create(&ws, m, 8), FR_OK);
    cr_assert_eq(fr_grad_create(&g, m), FR_OK);
    double loss, loss2;
    cr_assert_eq(fr_model_loss_grad(m, ws, &b, g, &loss), FR_OK, "%s", fr_errmsg());
    cr_assert_eq(fr_model_loss(m, ws, &b, &loss2), FR_OK);
    cr_assert_eq(loss, loss2);
    float *gd = fr_grad_data(g);
    gc_ctx ctx = {m, ws, &b};
    int bad = 0, checked = 0;
    for (int t = 0; t < fr_model_n_tensors(m); t++) {
        const fr_tensor *tt = fr_model_tensor(m, t);
        const fr_rowset *s = fr_grad_touched(g, t);
        cr_assert(s && s->count > 0);
        for (uint32_t r = 0; r < tt->rows; r++) {
            size_t o = tt->offset + (size_t)r * tt->cols;
            if (s->mark[r]) {
                bad += gc_check(model_loss, &ctx, p + o, gd + o, tt->cols, tt->name);
                checked += (int)tt->cols;
            } else {
                for (uint32_t k = 0; k < tt->cols; k++) cr_assert_eq(gd[o + k], 0.0f);
            }
        }
    }
    cr_assert_eq(bad, 0);
    cr_assert_gt(checked, 20);
    /* and the check can fail: a wrong gradient entry is caught */
    gd[fr_model_tensor(m, 0)->offset + 2 * 3] += 0.5f;
    cr_assert_gt(gc_check(model_loss, &ctx, p + fr_model_tensor(m, 0)->offset + 6, gd + fr_model_tensor(m, 0)->offset + 6, 3,
                          "corrupted"), 0);
    fr_grad_free(g);
    fr_model_ws_free(ws);
    fr_model_free(m);
}

Test(family, trains_centrally_and_is_evaluated) {
    data d = gen();
    fr_model_config c = config(biasdot_kind(), d.train);
    fr_model *m = NULL, *m2 = NULL;
    cr_assert_eq(fr_model_create(&m, &c), FR_OK, "%s", fr_errmsg());
    cr_assert_eq(fr_model_create(&m2, &c), FR_OK);
    double before = hr10(m, &d);
    fr_train_config tc;
    fr_train_config_default(&tc);
    tc.batch = 128;
    tc.optim.lr = 0.01f;
    double loss[8];
    for (int threads = 1; threads <= 2; threads++) {
        fr_trainer *t = NULL;
        tc.threads = threads;
        cr_assert_eq(fr_trainer_create(&t, threads == 1 ? m : m2, d.train, &tc), FR_OK, "%s", fr_errmsg());
        for (int e = 0; e < 8; e++) cr_assert_eq(fr_trainer_epoch(t, &loss[e]), FR_OK, "%s", fr_errmsg());
        fr_trainer_free(t);
    }
    cr_assert_lt(loss[7], 0.8 * loss[0], "loss %g -> %g", loss[0], loss[7]);
    cr_assert(!memcmp(fr_model_params(m), fr_model_params(m2), fr_model_n_params(m) * sizeof(float)),
              "1 and 2 threads give the same bits");
    double after = hr10(m, &d);
    /* 30 negatives: ranking at random gives hr@10 = 10/31 */
    cr_assert(after > before && after > 0.45, "hr@10 %g -> %g", before, after);
    fr_model_free(m);
    fr_model_free(m2);
    data_free(&d);
}

Test(family, trains_federated_and_is_evaluated) {
    data d = gen();
    fr_model_config c = config(biasdot_kind(), d.train);
    fr_fl_config fc;
    fr_fl_config_default(&fc, c.kind);
    cr_assert_eq(fc.negatives, 4, "a pointwise ranking kind gets the NCF negatives");
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
        for (int r = 0; r < 12; r++) cr_assert_eq(fr_sim_round(s, r == 0 ? &st1 : &st), FR_OK, "%s", fr_errmsg());
        cr_assert_eq(st.clients, fr_dataset_n_users(d.train));
        cr_assert_lt(st.loss, 0.9 * st1.loss, "round loss %g -> %g", st1.loss, st.loss);
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
    /* 30 negatives: ranking at random gives hr@10 = 10/31 */
    cr_assert(after > before && after > 0.45, "hr@10 %g -> %g", before, after);
    free(first);
    data_free(&d);
}

Test(family, model_file_round_trip) {
    fr_model_config c;
    fr_model_config_default(&c, biasdot_kind());
    c.n_users = 5;
    c.n_items = 9;
    c.dim = 6;
    c.l2 = 0.25f;
    c.seed = 77;
    fr_model *m = NULL, *l = NULL;
    cr_assert_eq(fr_model_create(&m, &c), FR_OK);
    uint8_t *bytes;
    size_t n;
    cr_assert_eq(fr_model_encode(m, NULL, &bytes, &n), FR_OK, "%s", fr_errmsg());
    /* the kind travels by name */
    bool named = false;
    for (size_t i = 0; i + 7 <= n && !named; i++) named = memcmp(bytes + i, "biasdot", 7) == 0;
    cr_assert(named);
    cr_assert_eq(fr_model_decode(&l, bytes, n, "<mem>", NULL), FR_OK, "%s", fr_errmsg());
    const fr_model_config *a = fr_model_config_of(l);
    cr_assert_eq(a->kind, c.kind);
    cr_assert_eq(a->dim, 6);
    cr_assert_eq(a->l2, 0.25f);
    cr_assert_eq(a->seed, 77);
    cr_assert_eq(fr_model_n_params(l), fr_model_n_params(m));
    cr_assert(!memcmp(fr_model_params(l), fr_model_params(m), fr_model_n_params(m) * sizeof(float)));
    fr_model_free(l);
    fr_model_bytes_free(bytes);
    fr_model_free(m);
}

/* A gradient that fails mid-epoch on one shard: every thread of the trainer leaves the
 * loop (no deadlock at the barriers) and the epoch returns that error and its message;
 * a federated round returns it too. */
Test(family, a_failing_gradient_stops_every_loop) {
    fri_model_family f = biasdot;
    f.kinds = bdf_kinds;
    f.loss_grad = bdf_loss_grad;
    static fri_model_family failing;
    failing = f;
    fr_model_kind k = 0;
    cr_assert_eq(fri_model_register(&failing, &k), FR_OK, "%s", fr_errmsg());
    data d = gen();
    fr_model_config c = config(k, d.train);
    for (int sparse = 0; sparse < 2; sparse++) {
        fr_model *m = NULL;
        cr_assert_eq(fr_model_create(&m, &c), FR_OK);
        fr_train_config tc;
        fr_train_config_default(&tc);
        tc.batch = 256; /* two threads take part from 128 on */
        tc.threads = 2;
        tc.optim.sparse_rows = sparse;
        fr_trainer *t = NULL;
        cr_assert_eq(fr_trainer_create(&t, m, d.train, &tc), FR_OK);
        atomic_store(&grad_calls, 0);
        atomic_store(&fail_at, 7);
        double loss;
        cr_assert_eq(fr_trainer_epoch(t, &loss), FR_ERR_RANGE);
        cr_assert(strstr(fr_errmsg(), "call 7 fails"), "%s", fr_errmsg());
        cr_assert_eq(fr_trainer_epochs(t), 0);
        atomic_store(&fail_at, -1);
        cr_assert_eq(fr_trainer_epoch(t, &loss), FR_OK, "%s", fr_errmsg()); /* and it recovers */
        fr_trainer_free(t);
        fr_model_free(m);
    }
    fr_fl_config fc;
    fr_fl_config_default(&fc, k);
    fr_sim *s = NULL;
    cr_assert_eq(fr_sim_create(&s, &c, &fc, d.train, NULL), FR_OK);
    atomic_store(&grad_calls, 0);
    atomic_store(&fail_at, 30);
    fr_round_stats st;
    cr_assert_eq(fr_sim_round(s, &st), FR_ERR_RANGE);
    cr_assert(strstr(fr_errmsg(), "call 30 fails"), "%s", fr_errmsg());
    fr_sim_free(s);
    data_free(&d);
}
