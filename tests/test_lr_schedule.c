/* Learning-rate schedules: fr_optim_set_lr changes the rate of the following steps and
 * keeps the moments (numbers by hand); fr_trainer_set_lr is the same as creating the
 * trainer with that rate; bad rates are refused with a message. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "fedrec/core.h"
#include "fedrec/data.h"
#include "fedrec/model.h"
#include "fedrec/train.h"

/* mf with 2 users, 3 items, dim 1 (10 parameters, all 1); parameter 0 is item 0's factor */
static fr_model *tiny(void) {
    fr_model_config c;
    fr_model_config_default(&c, FR_MODEL_MF);
    c.n_users = 2;
    c.n_items = 3;
    c.dim = 1;
    fr_model *m;
    cr_assert_eq(fr_model_create(&m, &c), FR_OK);
    for (int i = 0; i < 10; i++) fr_model_params(m)[i] = 1.0f;
    return m;
}

static void step(fr_optim *o, fr_model *m, fr_grad *g, float g0) {
    fr_grad_zero(g);
    fr_grad_data(g)[0] = g0;
    fr_grad_touch(g, 0, 0);
    cr_assert_eq(fr_optim_step(o, m, g), FR_OK);
}

Test(lr_schedule, sgd_takes_the_new_rate) {
    fr_model *m = tiny();
    fr_grad *g;
    fr_optim *o;
    fr_optim_config oc;
    fr_optim_config_default(&oc, FR_OPTIM_SGD);
    oc.lr = 0.1f;
    cr_assert_eq(fr_grad_create(&g, m), FR_OK);
    cr_assert_eq(fr_optim_create(&o, m, &oc), FR_OK);
    step(o, m, g, 0.5f); /* 1 - 0.1*0.5 = 0.95 */
    cr_assert_float_eq(fr_model_params(m)[0], 0.95f, 1e-6);
    cr_assert_eq(fr_optim_set_lr(o, 0.02f), FR_OK);
    step(o, m, g, 0.5f); /* 0.95 - 0.02*0.5 = 0.94 */
    cr_assert_float_eq(fr_model_params(m)[0], 0.94f, 1e-6);
    cr_assert_eq(fr_optim_set_lr(o, 0.0f), FR_ERR_INVALID);
    cr_assert(strstr(fr_errmsg(), "lr 0"), "%s", fr_errmsg());
    cr_assert_eq(fr_optim_set_lr(o, NAN), FR_ERR_INVALID);
    step(o, m, g, 0.5f); /* the refused rates left 0.02: 0.94 - 0.01 = 0.93 */
    cr_assert_float_eq(fr_model_params(m)[0], 0.93f, 1e-6);
    fr_optim_free(o);
    fr_grad_free(g);
    fr_model_free(m);
}

Test(lr_schedule, adam_keeps_its_moments) {
    fr_model *m = tiny();
    fr_grad *g;
    fr_optim *o;
    fr_optim_config oc;
    fr_optim_config_default(&oc, FR_OPTIM_ADAM);
    oc.lr = 0.1f;
    cr_assert_eq(fr_grad_create(&g, m), FR_OK);
    cr_assert_eq(fr_optim_create(&o, m, &oc), FR_OK);
    step(o, m, g, 1.0f); /* m = 0.1, v = 0.001, mhat = vhat = 1: 1 - 0.1 = 0.9 */
    cr_assert_float_eq(fr_model_params(m)[0], 0.9f, 1e-6);
    cr_assert_eq(fr_optim_set_lr(o, 0.01f), FR_OK);
    /* g = -1: m = 0.09 - 0.1 = -0.01, v = 0.000999 + 0.001 = 0.001999; mhat = -0.01/0.19,
       vhat = 0.001999/(1 - 0.999^2) = 1: p = 0.9 + 0.01 * 0.01/0.19 = 0.900526316
       (a fresh Adam would give 0.91) */
    step(o, m, g, -1.0f);
    cr_assert_float_eq(fr_model_params(m)[0], 0.900526316f, 2e-6, "%.9g", fr_model_params(m)[0]);
    fr_optim_free(o);
    fr_grad_free(g);
    fr_model_free(m);
}

/* One epoch on a small rating set, the trainer created with lr0 and, if lr1 > 0, set to
 * lr1 before the epoch; the parameters into out[n]. */
static void one_epoch(float lr0, float lr1, float *out, size_t n) {
    int64_t us[12], is[12];
    float rs[12];
    for (int k = 0; k < 12; k++) { us[k] = k % 4; is[k] = (k * 7) % 5; rs[k] = (float)(1 + (k * 3) % 5); }
    fr_dataset *d;
    cr_assert_eq(fr_dataset_from_arrays(&d, 12, us, is, rs, NULL), FR_OK, "%s", fr_errmsg());
    fr_model_config c;
    fr_model_config_default(&c, FR_MODEL_MF);
    c.n_users = fr_dataset_n_users(d);
    c.n_items = fr_dataset_n_items(d);
    c.dim = 4;
    c.mu = 3.0f;
    fr_model *m;
    cr_assert_eq(fr_model_create(&m, &c), FR_OK);
    cr_assert_eq(fr_model_n_params(m), n);
    fr_train_config tc;
    fr_train_config_default(&tc);
    tc.batch = 4;
    tc.threads = 1;
    tc.optim.lr = lr0;
    fr_trainer *t;
    cr_assert_eq(fr_trainer_create(&t, m, d, &tc), FR_OK, "%s", fr_errmsg());
    if (lr1 > 0) cr_assert_eq(fr_trainer_set_lr(t, lr1), FR_OK);
    cr_assert_eq(fr_trainer_set_lr(t, -1.0f), FR_ERR_INVALID);
    cr_assert_eq(fr_trainer_epoch(t, NULL), FR_OK);
    memcpy(out, fr_model_params(m), n * sizeof *out);
    fr_trainer_free(t);
    fr_model_free(m);
    fr_dataset_free(d);
}

Test(lr_schedule, trainer_set_lr_equals_creating_with_it) {
    /* 4 users, 5 items, dim 4: (5 + 4) * (4 + 1) = 45 parameters */
    float a[45], b[45], c[45];
    one_epoch(0.01f, 0, a, 45);
    one_epoch(0.05f, 0.01f, b, 45);
    one_epoch(0.05f, 0, c, 45);
    cr_assert_eq(memcmp(a, b, sizeof a), 0);
    cr_assert_neq(memcmp(a, c, sizeof a), 0);
}
