/* Training examples and the minibatch loop (see examples.h). */
#include "model/examples.h"

void fri_examples_clear(fri_examples *ex) { ex->n = 0; }

void fri_examples_free(fri_examples *ex) {
    fri_free(ex->user);
    fri_free(ex->item);
    fri_free(ex->neg);
    fri_free(ex->label);
    memset(ex, 0, sizeof *ex);
}

fr_err fri_examples_reserve(fri_examples *ex, size_t n) {
    if (n <= ex->cap) return FR_OK;
    size_t cap = ex->cap ? ex->cap : 256;
    while (cap < n) cap = cap > SIZE_MAX / 4 ? n : cap * 2;
    uint32_t *u = fri_realloc(ex->user, cap * sizeof *u);
    if (!u) return FR_ERR_NOMEM;
    ex->user = u;
    uint32_t *i = fri_realloc(ex->item, cap * sizeof *i);
    if (!i) return FR_ERR_NOMEM;
    ex->item = i;
    uint32_t *g = fri_realloc(ex->neg, cap * sizeof *g);
    if (!g) return FR_ERR_NOMEM;
    ex->neg = g;
    float *l = fri_realloc(ex->label, cap * sizeof *l);
    if (!l) return FR_ERR_NOMEM;
    ex->label = l;
    ex->cap = cap;
    return FR_OK;
}

/* A uniform item the user never touched; UINT32_MAX if there is none. */
static uint32_t draw_negative(const fr_dataset *d, uint32_t user, size_t deg, fr_rng *rng) {
    uint32_t n_items = fr_dataset_n_items(d);
    if (deg >= n_items) return UINT32_MAX;
    for (;;) {
        uint32_t j = fr_rng_below(rng, n_items);
        if (!fr_dataset_has(d, user, j)) return j;
    }
}

fr_err fri_examples_add_user(fri_examples *ex, const fr_dataset *d, uint32_t user, uint32_t row, fr_loss loss,
                             uint32_t neg, fr_rng *rng) {
    const uint32_t *items;
    const float *ratings;
    size_t deg = fr_dataset_user(d, user, &items, &ratings, NULL);
    size_t per = loss == FR_LOSS_MSE ? 1 : loss == FR_LOSS_BCE ? 1 + (size_t)neg : (neg ? neg : 1);
    fr_err e = fri_examples_reserve(ex, ex->n + deg * per);
    if (e) return e;
    size_t k = ex->n;
    for (size_t x = 0; x < deg; x++) {
        switch (loss) {
        case FR_LOSS_MSE:
            ex->user[k] = row; ex->item[k] = items[x]; ex->label[k] = ratings[x]; ex->neg[k] = 0;
            k++;
            break;
        case FR_LOSS_BCE:
            ex->user[k] = row; ex->item[k] = items[x]; ex->label[k] = 1.0f; ex->neg[k] = 0;
            k++;
            for (uint32_t q = 0; q < neg; q++) {
                uint32_t j = draw_negative(d, user, deg, rng);
                if (j == UINT32_MAX) break;
                ex->user[k] = row; ex->item[k] = j; ex->label[k] = 0.0f; ex->neg[k] = 0;
                k++;
            }
            break;
        case FR_LOSS_BPR:
            for (size_t q = 0; q < per; q++) {
                uint32_t j = draw_negative(d, user, deg, rng);
                if (j == UINT32_MAX) break;
                ex->user[k] = row; ex->item[k] = items[x]; ex->neg[k] = j; ex->label[k] = 1.0f;
                k++;
            }
            break;
        }
    }
    ex->n = k;
    return FR_OK;
}

void fri_examples_shuffle(fri_examples *ex, fr_rng *rng) {
    for (size_t i = ex->n; i > 1; i--) {
        size_t j = (size_t)fr_rng_below64(rng, i);
        uint32_t t;
        t = ex->user[i - 1]; ex->user[i - 1] = ex->user[j]; ex->user[j] = t;
        t = ex->item[i - 1]; ex->item[i - 1] = ex->item[j]; ex->item[j] = t;
        t = ex->neg[i - 1]; ex->neg[i - 1] = ex->neg[j]; ex->neg[j] = t;
        float l = ex->label[i - 1]; ex->label[i - 1] = ex->label[j]; ex->label[j] = l;
    }
}

fr_err fri_examples_fit(const fri_examples *ex, size_t batch, fr_model *m, fr_model_ws *ws, fr_grad *g,
                        fr_optim *o, double *loss_sum) {
    if (batch == 0) return fri_fail(FR_ERR_INVALID, "batch size 0");
    bool bpr = fr_model_config_of(m)->loss == FR_LOSS_BPR;
    for (size_t s = 0; s < ex->n; s += batch) {
        size_t n = ex->n - s < batch ? ex->n - s : batch;
        fr_batch b = {ex->user + s, ex->item + s, bpr ? NULL : ex->label + s, bpr ? ex->neg + s : NULL, n};
        double loss = 0;
        fr_grad_zero(g);
        fr_err e = fr_model_loss_grad(m, ws, &b, g, &loss);
        if (!e) e = fr_optim_step(o, m, g);
        if (e) return e;
        *loss_sum += loss * (double)n;
    }
    return FR_OK;
}
