/* Optimizers: each update rule against numbers from torch.optim (PyTorch 2, float32) on a
 * single parameter p0 = 1 with a fixed gradient sequence; dense vs sparse-row modes. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "fedrec/model.h"

/* An mf model with 2 users, 3 items, dim 1: item_factor [3], item_bias [3],
 * user_factor [2], user_bias [2] -> 10 parameters. */
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

/* Runs 3 steps with gradient seq[k] on parameter 0 (item 0's factor, touched) and checks
 * p after each step against want[k]. */
static void run(fr_optim_config *oc, const float seq[3], const float want[3]) {
    fr_model *m = tiny();
    fr_grad *g;
    fr_optim *o;
    cr_assert_eq(fr_grad_create(&g, m), FR_OK);
    cr_assert_eq(fr_optim_create(&o, m, oc), FR_OK, "%s", fr_errmsg());
    for (int k = 0; k < 3; k++) {
        fr_grad_zero(g);
        fr_grad_data(g)[0] = seq[k];
        fr_grad_touch(g, 0, 0);
        cr_assert_eq(fr_optim_step(o, m, g), FR_OK);
        cr_assert_float_eq(fr_model_params(m)[0], want[k], 2e-6, "%s step %d: %.9g, want %.9g",
                           fr_optim_kind_name(oc->kind), k + 1, fr_model_params(m)[0], want[k]);
    }
    cr_assert_eq(fr_optim_steps(o), 3);
    fr_optim_reset(o);
    cr_assert_eq(fr_optim_steps(o), 0);
    /* after a reset the first step is a first step again */
    for (int i = 0; i < 10; i++) fr_model_params(m)[i] = 1.0f;
    fr_grad_zero(g);
    fr_grad_data(g)[0] = seq[0];
    fr_grad_touch(g, 0, 0);
    cr_assert_eq(fr_optim_step(o, m, g), FR_OK);
    cr_assert_float_eq(fr_model_params(m)[0], want[0], 2e-6);
    fr_optim_free(o);
    fr_grad_free(g);
    fr_model_free(m);
}

Test(optim, sgd_by_hand) {
    fr_optim_config oc;
    fr_optim_config_default(&oc, FR_OPTIM_SGD);
    oc.lr = 0.1f;
    /* 1 - 0.1*0.5 = 0.95; 0.95 - 0.05 = 0.9; 0.9 + 0.1 = 1.0 */
    run(&oc, (float[]){0.5f, 0.5f, -1.0f}, (float[]){0.95f, 0.9f, 1.0f});
    oc.weight_decay = 0.1f; /* g + 0.1 p: 1 - 0.1*(0.5+0.1) = 0.94 */
    run(&oc, (float[]){0.5f, 0.0f, 0.0f}, (float[]){0.94f, 0.9306f, 0.921294f});
}

Test(optim, sgd_momentum_matches_torch) {
    fr_optim_config oc;
    fr_optim_config_default(&oc, FR_OPTIM_SGD);
    oc.lr = 0.1f;
    oc.momentum = 0.9f;
    run(&oc, (float[]){0.5f, 0.5f, -1.0f}, (float[]){0.949999988f, 0.854999960f, 0.869499981f});
}

Test(optim, adam_matches_torch) {
    fr_optim_config oc;
    fr_optim_config_default(&oc, FR_OPTIM_ADAM);
    oc.lr = 0.1f;
    /* step 1 by hand: m = 0.05, v = 0.00025, m^ = 0.5, v^ = 0.25 -> 1 - 0.1 * 0.5/0.5 = 0.9 */
    run(&oc, (float[]){0.5f, -0.25f, 0.0f}, (float[]){0.900000036f, 0.873366356f, 0.852778435f});
    oc.weight_decay = 0.1f;
    run(&oc, (float[]){0.5f, -0.25f, 0.0f}, (float[]){0.900000036f, 0.854441404f, 0.810837626f});
}

Test(optim, adagrad_matches_torch) {
    fr_optim_config oc;
    fr_optim_config_default(&oc, FR_OPTIM_ADAGRAD);
    oc.lr = 0.1f;
    run(&oc, (float[]){0.5f, -0.25f, 1.0f}, (float[]){0.899999976f, 0.944721341f, 0.857434154f});
}

/* Two steps: step 1 touches item 1, step 2 touches only item 0. Dense Adam moves item 1
 * again in step 2 (its moments are non-zero); sparse-row Adam leaves it. Untouched
 * never-used rows never move in either mode. */
static void dense_vs_sparse(int sparse, float *item1_after, float *item2_after) {
    fr_model *m = tiny();
    fr_grad *g;
    fr_optim *o;
    fr_optim_config oc;
    fr_optim_config_default(&oc, FR_OPTIM_ADAM);
    oc.lr = 0.1f;
    oc.sparse_rows = sparse;
    cr_assert_eq(fr_grad_create(&g, m), FR_OK);
    cr_assert_eq(fr_optim_create(&o, m, &oc), FR_OK);
    fr_grad_data(g)[1] = 0.5f;
    fr_grad_touch(g, 0, 1);
    cr_assert_eq(fr_optim_step(o, m, g), FR_OK);
    cr_assert_float_eq(fr_model_params(m)[1], 0.9f, 1e-6);
    fr_grad_zero(g);
    fr_grad_data(g)[0] = 0.5f;
    fr_grad_touch(g, 0, 0);
    cr_assert_eq(fr_optim_step(o, m, g), FR_OK);
    *item1_after = fr_model_params(m)[1];
    *item2_after = fr_model_params(m)[2];
    fr_optim_free(o);
    fr_grad_free(g);
    fr_model_free(m);
}

Test(optim, dense_and_sparse_rows) {
    float d1, d2, s1, s2;
    dense_vs_sparse(0, &d1, &d2);
    dense_vs_sparse(1, &s1, &s2);
    /* dense step 2 on item 1: m = 0.045, v = 0.00024975, bc1 = 0.19, bc2 = 0.001999
       -> 0.9 - 0.1 * (0.045/0.19) / sqrt(0.00024975/0.001999) = 0.9 - 0.0670045 */
    cr_assert_float_eq(d1, 0.9f - 0.0670045f, 1e-5, "dense %.9g", d1);
    cr_assert_float_eq(s1, 0.9f, 1e-7, "sparse %.9g", s1);
    cr_assert_eq(d2, 1.0f);
    cr_assert_eq(s2, 1.0f);
}

Test(optim, config_errors) {
    fr_optim_config oc;
    fr_optim_config_default(&oc, FR_OPTIM_ADAM);
    cr_assert_eq(fr_optim_config_check(&oc), FR_OK);
    oc.lr = 0;
    cr_assert_eq(fr_optim_config_check(&oc), FR_ERR_INVALID);
    cr_assert(strstr(fr_errmsg(), "lr"));
    fr_optim_config_default(&oc, FR_OPTIM_ADAM);
    oc.beta2 = 1.0f;
    cr_assert_eq(fr_optim_config_check(&oc), FR_ERR_INVALID);
    fr_optim_kind k;
    cr_assert_eq(fr_optim_kind_parse("adagrad", &k), FR_OK);
    cr_assert_eq(k, FR_OPTIM_ADAGRAD);
    cr_assert_eq(fr_optim_kind_parse("rmsprop", &k), FR_ERR_INVALID);
    /* an optimizer for one shape refuses another */
    fr_model *m = tiny(), *other;
    fr_model_config c = *fr_model_config_of(m);
    c.n_items = 4;
    cr_assert_eq(fr_model_create(&other, &c), FR_OK);
    fr_optim *o;
    fr_grad *g;
    fr_optim_config_default(&oc, FR_OPTIM_SGD);
    cr_assert_eq(fr_optim_create(&o, m, &oc), FR_OK);
    cr_assert_eq(fr_grad_create(&g, other), FR_OK);
    cr_assert_eq(fr_optim_step(o, other, g), FR_ERR_INVALID);
    cr_assert_eq(fr_optim_step(o, m, g), FR_ERR_INVALID);
    fr_grad_free(g);
    fr_optim_free(o);
    fr_model_free(other);
    fr_model_free(m);
}

/* The SIMD paths (AVX 8 lanes, SSE 4, scalar tail) give the same bits as the plain
 * float formula, whatever the row width: results never depend on the CPU. */
Test(optim, adam_simd_paths_are_bit_identical_to_scalar) {
    fr_model_config c;
    fr_model_config_default(&c, FR_MODEL_BPR);
    c.n_users = 1;
    c.n_items = 2;
    c.dim = 13;
    fr_model *m;
    fr_grad *g;
    fr_optim *o;
    fr_optim_config oc;
    fr_optim_config_default(&oc, FR_OPTIM_ADAM);
    oc.weight_decay = 0.01f;
    cr_assert_eq(fr_model_create(&m, &c), FR_OK);
    cr_assert_eq(fr_grad_create(&g, m), FR_OK);
    cr_assert_eq(fr_optim_create(&o, m, &oc), FR_OK);
    size_t n = fr_model_n_params(m);
    float p[64], m1[64] = {0}, m2[64] = {0};
    memcpy(p, fr_model_params(m), n * 4);
    fr_rng r;
    fr_rng_init(&r, 3, 0, 0, FR_PURPOSE_TEST);
    for (int step = 1; step <= 4; step++) {
        for (size_t i = 0; i < n; i++) fr_grad_data(g)[i] = fr_rng_float(&r) - 0.5f;
        cr_assert_eq(fr_optim_step(o, m, g), FR_OK);
        double bc1 = 1.0 - pow((double)0.9f, step), bc2 = 1.0 - pow((double)0.999f, step);
        float ss = (float)((double)0.001f / bc1), ib = (float)(1.0 / sqrt(bc2));
        for (size_t i = 0; i < n; i++) {
            float gi = fr_grad_data(g)[i] + 0.01f * p[i];
            m1[i] = 0.9f * m1[i] + (1.0f - 0.9f) * gi;
            m2[i] = 0.999f * m2[i] + (1.0f - 0.999f) * (gi * gi);
            p[i] = p[i] - (ss * m1[i]) / (sqrtf(m2[i]) * ib + 1e-8f);
        }
        cr_assert_eq(memcmp(p, fr_model_params(m), n * 4), 0, "step %d", step);
    }
    fr_optim_free(o);
    fr_grad_free(g);
    fr_model_free(m);
}
