/* The baseline family (family.h): two models fitted in closed form, the yardsticks every
 * trained model is held against.
 *   `pop`   most popular: an item's score is the number of training users who have it
 *           (a ranking model). Layout: item_pop [n_items x 1] shared; no private rows.
 *   `bias`  global mean + user bias + item bias (a rating model): mu + b_u + b_i, fitted
 *           by alternating least squares on the training ratings, minimising
 *             sum over (u, i) of (r - mu - b_u - b_i)^2 + reg_user sum b_u^2 + reg_item sum b_i^2
 *           with mu the mean training rating (Surprise's BaselineOnly with ALS; its
 *           defaults reg_u 15, reg_i 10). Layout: item_bias [n_items x 1] shared, then
 *           user_bias [n_users x 1] private.
 * Both are trained by their fit op alone (fr_model_fit; the centralized trainer's epoch):
 * pop has no gradient (loss_grad is FR_ERR_UNSUPPORTED) and neither is trained federated.
 * bias has a loss and gradient all the same (mean squared error of mu + b_u + b_i, plus
 * l2 times the mean of b_u^2 + b_i^2 when l2 > 0), so fr_model_loss reports on it.
 * Parameter block in the config section: pop nothing; bias f32 mu, reg_user, reg_item. */
#include <math.h>
#include <string.h>

#include "core/core.h"
#include "model/family.h"
#include "model/layers.h"

/* roles in m->slot */
enum { POP, ITEM_B, USER_B };

#define BIAS_MAX_PASSES 100 /* alternating passes at most */
#define BIAS_TOL 1e-7       /* stop when no bias moved more than this in a pass */

static bool is_bias(const fr_model_config *c) { return c->kind == FR_MODEL_BIAS; }

static void config_default(fr_model_config *c) {
    c->loss = is_bias(c) ? FR_LOSS_MSE : FR_LOSS_BCE; /* pop has no loss; BCE only names its labels */
    if (is_bias(c)) {
        c->reg_user = 15.0f;
        c->reg_item = 10.0f;
    }
}

static fr_err config_check(const fr_model_config *c) {
    const char *k = fr_model_kind_name(c->kind);
    if (is_bias(c) && c->loss != FR_LOSS_MSE)
        return fri_fail(FR_ERR_INVALID, "bias: loss %s: bias is fitted with mse", fri_loss_name(c->loss));
    if (!is_bias(c) && c->loss != FR_LOSS_BCE)
        return fri_fail(FR_ERR_INVALID, "pop: loss %s: pop has no loss (bce)", fri_loss_name(c->loss));
    if (!(c->reg_user >= 0.0f) || !isfinite(c->reg_user) || !(c->reg_item >= 0.0f) || !isfinite(c->reg_item))
        return fri_fail(FR_ERR_INVALID, "%s: reg_user %g, reg_item %g: expected finite values >= 0", k,
                        (double)c->reg_user, (double)c->reg_item);
    return FR_OK;
}

static void params_put(fri_buf *b, const fr_model_config *c) {
    if (!is_bias(c)) return;
    fri_buf_f32(b, c->mu);
    fri_buf_f32(b, c->reg_user);
    fri_buf_f32(b, c->reg_item);
}

static fr_err params_get(fri_rd *r, fr_model_config *c) {
    if (!is_bias(c)) return FR_OK;
    fr_err e = fri_rd_f32(r, &c->mu, "mu");
    if (!e) e = fri_rd_f32(r, &c->reg_user, "reg_user");
    if (!e) e = fri_rd_f32(r, &c->reg_item, "reg_item");
    return e;
}

static fr_err layout(fr_model *m, const fr_model_config *c) {
    if (!is_bias(c))
        return fri_model_add_tensor(m, "item_pop", c->n_items, 1, FR_TENSOR_ITEM_TABLE, FRI_INIT_ZERO, &m->slot[POP]);
    fr_err e = fri_model_add_tensor(m, "item_bias", c->n_items, 1, FR_TENSOR_ITEM_TABLE, FRI_INIT_ZERO,
                                    &m->slot[ITEM_B]);
    if (!e)
        e = fri_model_add_tensor(m, "user_bias", c->n_users, 1, FR_TENSOR_USER_TABLE, FRI_INIT_ZERO, &m->slot[USER_B]);
    return e;
}

/* ---------------------------------------------------------------- workspace */

typedef struct base_ws {
    float *bu, *bi;   /* [B] gathered biases (pop: bi holds the counts) */
    float *s, *ds;    /* [B] scores and their gradients */
    float *dbu, *dbi; /* [B] bias gradients */
} base_ws;

static size_t ws_carve(void *wsp, float *arena, const fr_model_config *c, size_t B) {
    base_ws tmp, *w = wsp ? wsp : &tmp;
    fri_carver cv = {arena, 0};
    (void)c;
    w->bu = fri_carve(&cv, B); w->bi = fri_carve(&cv, B); w->s = fri_carve(&cv, B); w->ds = fri_carve(&cv, B);
    w->dbu = fri_carve(&cv, B); w->dbi = fri_carve(&cv, B);
    return cv.at;
}

static bool ws_fits(const fr_model_config *a, const fr_model_config *b) { return a->kind == b->kind; }

/* ---------------------------------------------------------------- math */

static void scores(const fr_model *m, base_ws *w, const uint32_t *users, const uint32_t *items, size_t B) {
    if (!is_bias(&m->cfg)) {
        fri_embedding_forward(w->s, fri_model_data(m, m->slot[POP]), items, B, 1);
        return;
    }
    fri_embedding_forward(w->bu, fri_model_data(m, m->slot[USER_B]), users, B, 1);
    fri_embedding_forward(w->bi, fri_model_data(m, m->slot[ITEM_B]), items, B, 1);
    for (size_t i = 0; i < B; i++) w->s[i] = m->cfg.mu + w->bu[i] + w->bi[i];
}

static fr_err loss_grad(const fr_model *m, void *wsp, const fr_batch *b, fr_grad *g, double *loss) {
    *loss = NAN;
    if (!is_bias(&m->cfg))
        return fri_fail(FR_ERR_UNSUPPORTED, "pop counts its training users (fr_model_fit); it has no loss or gradient");
    base_ws *w = wsp;
    size_t B = b->n;
    scores(m, w, b->users, b->items, B);
    double L = fri_mse_forward_backward(g ? w->ds : NULL, w->s, b->label, b->weight, B);
    double l2s = (double)m->cfg.l2 / (double)B;
    if (g) { memset(w->dbu, 0, B * sizeof(float)); memset(w->dbi, 0, B * sizeof(float)); }
    if (l2s > 0) {
        L += fri_l2_forward_backward(g ? w->dbu : NULL, w->bu, B, 1, l2s);
        L += fri_l2_forward_backward(g ? w->dbi : NULL, w->bi, B, 1, l2s);
    }
    if (g) {
        const int ub = m->slot[USER_B], ib = m->slot[ITEM_B];
        for (size_t i = 0; i < B; i++) { w->dbu[i] += w->ds[i]; w->dbi[i] += w->ds[i]; }
        fri_embedding_backward(fri_grad_of(g, ub), &g->rows[ub], w->dbu, b->users, B, 1);
        fri_embedding_backward(fri_grad_of(g, ib), &g->rows[ib], w->dbi, b->items, B, 1);
    }
    *loss = L;
    return FR_OK;
}

static void score(const fr_model *m, void *wsp, const uint32_t *users, const uint32_t *items, size_t n, float *out) {
    base_ws *w = wsp;
    scores(m, w, users, items, n);
    memcpy(out, w->s, n * sizeof(float));
}

/* ---------------------------------------------------------------- closed-form fits */

/* pop: item i scores the number of users of d who have it. */
static fr_err fit_pop(fr_model *m, const fr_dataset *d, double *loss) {
    float *pop = m->params + m->t[m->slot[POP]].offset;
    memset(pop, 0, m->cfg.n_items * sizeof(float));
    for (uint32_t u = 0; u < fr_dataset_n_users(d); u++) {
        const uint32_t *it;
        size_t k = fr_dataset_user(d, u, &it, NULL, NULL);
        for (size_t j = 0; j < k; j++) pop[it[j]] += 1.0f;
    }
    *loss = 0; /* nothing is minimised */
    return FR_OK;
}

/* bias: alternating exact minimisation over the item biases (users fixed), then the user
 * biases (items fixed), in double, until no bias moves by more than BIAS_TOL; each pass
 * lowers the objective, which is strictly convex for positive regs, so it converges to
 * the one minimum whatever the order. A user or item without training ratings keeps 0. */
static fr_err fit_bias(fr_model *m, const fr_dataset *d, double *loss) {
    uint32_t nu = fr_dataset_n_users(d), ni = m->cfg.n_items;
    double lu = m->cfg.reg_user, li = m->cfg.reg_item;
    double *bu = fri_calloc((size_t)m->cfg.n_users + 1, sizeof *bu);
    double *bi = fri_calloc((size_t)ni + 1, sizeof *bi);
    double *num = fri_calloc((size_t)ni + 1, sizeof *num);
    uint32_t *cnt = fri_calloc((size_t)ni + 1, sizeof *cnt);
    if (!bu || !bi || !num || !cnt) {
        fri_free(bu); fri_free(bi); fri_free(num); fri_free(cnt);
        return FR_ERR_NOMEM;
    }
    double sum = 0;
    uint64_t n = 0;
    for (uint32_t u = 0; u < nu; u++) {
        const uint32_t *it;
        const float *r;
        size_t k = fr_dataset_user(d, u, &it, &r, NULL);
        for (size_t j = 0; j < k; j++) { sum += r[j]; cnt[it[j]]++; }
        n += k;
    }
    double mu = n ? sum / (double)n : 0.0;
    for (int pass = 0; pass < BIAS_MAX_PASSES; pass++) {
        double moved = 0;
        memset(num, 0, (size_t)ni * sizeof *num);
        for (uint32_t u = 0; u < nu; u++) {
            const uint32_t *it;
            const float *r;
            size_t k = fr_dataset_user(d, u, &it, &r, NULL);
            for (size_t j = 0; j < k; j++) num[it[j]] += r[j] - mu - bu[u];
        }
        for (uint32_t i = 0; i < ni; i++) {
            double v = cnt[i] ? num[i] / (li + cnt[i]) : 0.0;
            moved = fmax(moved, fabs(v - bi[i]));
            bi[i] = v;
        }
        for (uint32_t u = 0; u < nu; u++) {
            const uint32_t *it;
            const float *r;
            size_t k = fr_dataset_user(d, u, &it, &r, NULL);
            double s = 0;
            for (size_t j = 0; j < k; j++) s += r[j] - mu - bi[it[j]];
            double v = k ? s / (lu + (double)k) : 0.0;
            moved = fmax(moved, fabs(v - bu[u]));
            bu[u] = v;
        }
        if (moved < BIAS_TOL) break;
    }
    double se = 0;
    for (uint32_t u = 0; u < nu; u++) {
        const uint32_t *it;
        const float *r;
        size_t k = fr_dataset_user(d, u, &it, &r, NULL);
        for (size_t j = 0; j < k; j++) {
            double e = r[j] - mu - bu[u] - bi[it[j]];
            se += e * e;
        }
    }
    m->cfg.mu = (float)mu;
    float *pb = m->params + m->t[m->slot[ITEM_B]].offset, *pu = m->params + m->t[m->slot[USER_B]].offset;
    for (uint32_t i = 0; i < ni; i++) pb[i] = (float)bi[i];
    for (uint32_t u = 0; u < m->cfg.n_users; u++) pu[u] = (float)bu[u];
    *loss = n ? se / (double)n : 0.0; /* the training MSE */
    fri_free(bu); fri_free(bi); fri_free(num); fri_free(cnt);
    return FR_OK;
}

static fr_err fit(fr_model *m, const fr_dataset *d, double *loss) {
    return is_bias(&m->cfg) ? fit_bias(m, d, loss) : fit_pop(m, d, loss);
}

static const fri_model_kind_def kinds[] = {
    {"pop", false, true}, /* FR_MODEL_POP */
    {"bias", true, true}, /* FR_MODEL_BIAS */
};

const fri_model_family fri_model_family_base = {
    .name = "baselines",
    .kinds = kinds,
    .n_kinds = 2,
    .init_std = 0.0f,
    .config_default = config_default,
    .config_check = config_check,
    .params_put = params_put,
    .params_get = params_get,
    .layout = layout,
    .ws_size = sizeof(base_ws),
    .ws_carve = ws_carve,
    .ws_fits = ws_fits,
    .loss_grad = loss_grad,
    .score = score,
    .fit = fit,
};
