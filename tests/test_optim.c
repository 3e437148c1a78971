/* Optimizers: each update rule against numbers from torch.optim (PyTorch 2, float32) on a
 * single parameter p0 = 1 with a fixed gradient sequence; dense vs sparse-row modes. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "fedrec/model.h"
#include "model/model_internal.h"
#include <stdlib.h>

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

/* Adagrad's vector paths (8 and 4 lanes, a scalar tail) give the scalar rule's bits, with
 * and without weight decay, on 1 + 2 x 37 x 3 + 3 values; with no weight decay a step of
 * zero gradient leaves every value as it is (fri_optim_zero_keeps). */
Test(optim, adagrad_vector_paths_equal_the_scalar_rule) {
    fr_model_config c;
    fr_model_config_default(&c, FR_MODEL_MF);
    c.n_users = 3;
    c.n_items = 2;
    c.dim = 37;
    for (int wdk = 0; wdk < 2; wdk++) {
        fr_model *m;
        cr_assert_eq(fr_model_create(&m, &c), FR_OK);
        size_t n = fr_model_n_params(m);
        fr_grad *g;
        fr_optim *o;
        fr_optim_config oc;
        fr_optim_config_default(&oc, FR_OPTIM_ADAGRAD);
        oc.lr = 0.07f;
        oc.weight_decay = wdk ? 0.03f : 0.0f;
        cr_assert_eq(fr_grad_create(&g, m), FR_OK);
        cr_assert_eq(fr_optim_create(&o, m, &oc), FR_OK);
        cr_assert_eq(fri_optim_zero_keeps(o), !wdk);
        float *p = fr_model_params(m), *want = malloc(n * sizeof(float)), *sum = calloc(n, sizeof(float));
        memcpy(want, p, n * sizeof(float));
        srand(7);
        for (int step = 0; step < 4; step++) {
            float *gd = fr_grad_data(g);
            for (size_t i = 0; i < n; i++) gd[i] = step == 3 ? 0.0f : (float)(rand() % 2001 - 1000) / 997.0f;
            for (size_t i = 0; i < n; i++) { /* the rule, one value at a time */
                float gi = gd[i] + oc.weight_decay * want[i];
                sum[i] += gi * gi;
                want[i] -= oc.lr * gi / (sqrtf(sum[i]) + oc.eps);
            }
            float *before = malloc(n * sizeof(float));
            memcpy(before, p, n * sizeof(float));
            cr_assert_eq(fr_optim_step(o, m, g), FR_OK);
            cr_assert(!memcmp(p, want, n * sizeof(float)), "wd %g step %d: the vector paths differ", (double)oc.weight_decay, step);
            if (step == 3 && !wdk) cr_assert(!memcmp(p, before, n * sizeof(float)), "a zero gradient moved a value");
            free(before);
        }
        free(want);
        free(sum);
        fr_optim_free(o);
        fr_grad_free(g);
        fr_model_free(m);
    }
}

/* fri_optim_step_rows_clear (the rows of a minibatch stepped and their gradient zeroed in
 * one pass; the hybrid models' fused pass) against the rule a value at a time: Adagrad
 * (its whole-row vector path where rows are a multiple of 8 floats: 16; 37 and the bias
 * column 1 the general path) and SGD; rows not listed are neither stepped nor zeroed. */
Test(optim, step_rows_clear_steps_the_rows_and_zeroes_their_gradient) {
    const uint32_t dims[2] = {16, 37};
    for (int kind = 0; kind < 2; kind++)
        for (int di = 0; di < 2; di++)
            for (int bias = 0; bias < 2; bias++) {
                fr_model_config c;
                fr_model_config_default(&c, FR_MODEL_MF);
                c.n_users = 2;
                c.n_items = 9;
                c.dim = dims[di];
                fr_model *m;
                cr_assert_eq(fr_model_create(&m, &c), FR_OK);
                const fr_tensor *t = fr_model_tensor(m, fr_model_tensor_find(m, bias ? "item_bias" : "item_factor"));
                const size_t n = fr_model_n_params(m), off = t->offset, cols = t->cols;
                fr_grad *g;
                fr_optim *o;
                fr_optim_config oc;
                fr_optim_config_default(&oc, kind ? FR_OPTIM_SGD : FR_OPTIM_ADAGRAD);
                oc.lr = 0.07f;
                oc.sparse_rows = true;
                cr_assert_eq(fr_grad_create(&g, m), FR_OK);
                cr_assert_eq(fr_optim_create(&o, m, &oc), FR_OK);
                float *p = fr_model_params(m), *gd = fr_grad_data(g);
                float *want = malloc(n * sizeof(float)), *sum = calloc(n, sizeof(float)), *gw = malloc(n * sizeof(float));
                srand(11 + di);
                for (size_t i = 0; i < n; i++) p[i] = (float)(rand() % 2001 - 1000) / 311.0f;
                memcpy(want, p, n * sizeof(float));
                const uint32_t rows[4] = {7, 2, 5, 0};
                for (int step = 0; step < 3; step++) {
                    for (size_t i = 0; i < n; i++) gw[i] = gd[i] = (float)(rand() % 2001 - 1000) / 997.0f;
                    for (int x = 0; x < 4; x++)
                        for (size_t k = 0; k < cols; k++) { /* the rule, one value at a time */
                            size_t i = off + rows[x] * cols + k;
                            if (kind) want[i] -= oc.lr * gd[i];
                            else {
                                sum[i] += gd[i] * gd[i];
                                want[i] -= oc.lr * gd[i] / (sqrtf(sum[i]) + oc.eps);
                            }
                            gw[i] = 0.0f;
                        }
                    cr_assert_eq(fri_optim_step_begin(o, m, g), FR_OK);
                    fri_optim_step_rows_clear(o, m, gd, off, (uint32_t)cols, rows, 4);
                    cr_assert(!memcmp(p, want, n * sizeof(float)), "kind %d dim %u bias %d step %d: values differ",
                              kind, c.dim, bias, step);
                    cr_assert(!memcmp(gd, gw, n * sizeof(float)), "kind %d dim %u bias %d step %d: gradients differ",
                              kind, c.dim, bias, step);
                }
                free(want);
                free(sum);
                free(gw);
                fr_optim_free(o);
                fr_grad_free(g);
                fr_model_free(m);
            }
}

/* The fast Adagrad steps' fixture: an mf model of 2 users, 9 items, dim 16, its gradient,
 * and sparse-row Adagrad at lr 0.07 with `weight_decay` (its config in *oc). */
static void adagrad_fixture(float weight_decay, fr_model **m, fr_grad **g, fr_optim **o, fr_optim_config *oc) {
    fr_model_config c;
    fr_model_config_default(&c, FR_MODEL_MF);
    c.n_users = 2;
    c.n_items = 9;
    c.dim = 16;
    cr_assert_eq(fr_model_create(m, &c), FR_OK);
    fr_optim_config_default(oc, FR_OPTIM_ADAGRAD);
    oc->lr = 0.07f;
    oc->weight_decay = weight_decay;
    oc->sparse_rows = true;
    cr_assert_eq(fr_grad_create(g, *m), FR_OK);
    cr_assert_eq(fr_optim_create(o, *m, oc), FR_OK);
}

/* The fast Adagrad's 1 / sqrt(v) is the hardware's estimate (rsqrtps, no Newton step): its
 * relative error is at most 1.5 x 2^-12 (Intel's bound; AMD's is within it), so a step
 * lr g / (sqrt(v) + eps) is off by at most that fraction of itself (eps, 1e-10 next to
 * sqrt(v), is below float's resolution), plus the fused multiply-adds' roundings. */
#define RSQRT_REL 0x1.8p-12

/* fri_optim_step_rows_clear_fast (the hybrid models' rows_pass: Adagrad with rsqrt in
 * place of the square root and the division) against the rule in double: each value
 * within RSQRT_REL of its step (lr g / (sqrt(v) + eps)), 1e-6 of the largest step and two
 * float roundings of the value itself, on rows of 16 floats and the bias column; a value
 * whose gradient has always been 0 stays as it is (no 0 * inf), the rows' gradients are
 * zeroed and rows not listed are left alone. (A step 0.1% off its rule fails.) */
Test(optim, step_rows_clear_fast_is_adagrad_within_rounding) {
    for (int bias = 0; bias < 2; bias++) {
        fr_model *m;
        fr_grad *g;
        fr_optim *o;
        fr_optim_config oc;
        adagrad_fixture(0.0f, &m, &g, &o, &oc);
        const fr_tensor *t = fr_model_tensor(m, fr_model_tensor_find(m, bias ? "item_bias" : "item_factor"));
        const size_t n = fr_model_n_params(m), off = t->offset, cols = t->cols;
        float *p = fr_model_params(m), *gd = fr_grad_data(g);
        double *want = malloc(n * sizeof(double)), *sum = calloc(n, sizeof(double)), *stp = calloc(n, sizeof(double));
        srand(5);
        for (size_t i = 0; i < n; i++) want[i] = p[i] = (float)(rand() % 2001 - 1000) / 311.0f;
        const uint32_t rows[4] = {7, 2, 5, 0};
        for (int step = 0; step < 4; step++) {
            for (size_t i = 0; i < n; i++) gd[i] = (float)(rand() % 2001 - 1000) / 997.0f;
            gd[off + 2 * cols] = 0.0f; /* row 2's first value: never a gradient */
            double lim = 0.0;
            for (int x = 0; x < 4; x++)
                for (size_t k = 0; k < cols; k++) {
                    size_t i = off + rows[x] * cols + k;
                    sum[i] += (double)gd[i] * gd[i];
                    double st = oc.lr * (double)gd[i] / (sqrt(sum[i]) + oc.eps);
                    want[i] -= st;
                    stp[i] = fabs(st);
                    if (fabs(st) > lim) lim = fabs(st);
                }
            cr_assert_eq(fri_optim_step_begin(o, m, g), FR_OK);
            bool fast = fri_optim_step_rows_clear_fast(o, m, gd, off, (uint32_t)cols, rows, 4);
            for (size_t i = 0; i < n; i++) {
                bool listed = false;
                for (int x = 0; x < 4; x++) listed |= i >= off + rows[x] * cols && i < off + (rows[x] + 1) * cols;
                if (!listed) {
                    cr_assert_eq(p[i], (float)want[i], "bias %d step %d: value %zu moved", bias, step, i);
                    continue;
                }
                cr_assert(fabs(p[i] - want[i]) <= (fast ? RSQRT_REL * stp[i] : 0.0) + 1e-6 * lim + 0x1p-22 * fabs(want[i]),
                          "bias %d step %d (fast %d): value %zu %.9g, want %.9g",
                          bias, step, fast, i, p[i], want[i]);
                cr_assert_eq(gd[i], 0.0f, "the gradient of a listed row is zeroed");
            }
            cr_assert_eq(p[off + 2 * cols], (float)want[off + 2 * cols], "a value of no gradient is kept");
            for (size_t i = 0; i < n; i++) want[i] = p[i]; /* the next step from the same floats */
        }
        free(want);
        free(sum);
        free(stp);
        fr_optim_free(o);
        fr_grad_free(g);
        fr_model_free(m);
    }
}

/* fri_optim_step_range_clear_fast (the hybrid models' feature tables, stepped whole) skips
 * eight gradients that are all +0 when there is no weight decay: those values and their
 * accumulators keep their bits and the gradient stays 0; every other value takes the
 * Adagrad step (within rounding of the rule in double, as the rows above), also a run of
 * eight holding a -0 (not every bit zero: stepped, a step of 0); with weight decay the
 * values of zero gradient move too (the decay is their gradient). */
Test(optim, step_range_clear_fast_skips_zero_gradients_only_without_decay) {
    for (int decay = 0; decay < 2; decay++) {
        fr_model *m;
        fr_grad *g;
        fr_optim *o;
        fr_optim_config oc;
        adagrad_fixture(decay ? 0.01f : 0.0f, &m, &g, &o, &oc);
        const fr_tensor *t = fr_model_tensor(m, fr_model_tensor_find(m, "item_factor"));
        const size_t off = t->offset, n = (size_t)t->rows * t->cols; /* 144: 18 runs of eight */
        float *p = fr_model_params(m), *gd = fr_grad_data(g), *m1, *acc;
        fri_optim_moments(o, &m1, &acc);
        cr_assert_not_null(acc);
        srand(9);
        for (size_t i = 0; i < n; i++) p[off + i] = (float)(rand() % 2001 - 1000) / 311.0f;
        for (int step = 0; step < 3; step++) {
            for (size_t i = 0; i < n; i++) gd[off + i] = (float)(rand() % 2001 - 1000) / 997.0f;
            for (size_t i = 16; i < 24; i++) gd[off + i] = 0.0f;      /* run 2: every bit zero */
            for (size_t i = 64 + 8 * (size_t)step; i < 72 + 8 * (size_t)step; i++) gd[off + i] = 0.0f;
            for (size_t i = 40; i < 48; i++) gd[off + i] = i == 43 ? -0.0f : 0.0f; /* run 5: a -0 */
            float p0[144], a0[144], g0[144];
            memcpy(p0, p + off, sizeof p0);
            memcpy(a0, acc + off, sizeof a0);
            memcpy(g0, gd + off, sizeof g0);
            cr_assert_eq(fri_optim_step_begin(o, m, g), FR_OK);
            if (!fri_optim_step_range_clear_fast(o, m, gd, off, n)) break; /* no AVX: nothing to hold */
            for (size_t i = 0; i < n; i++) {
                const size_t run = i / 8;
                bool zero = true;
                const float pz = 0.0f;
                for (size_t k = 8 * run; k < 8 * run + 8; k++) zero &= memcmp(&g0[k], &pz, sizeof pz) == 0;
                cr_assert_eq(gd[off + i], 0.0f, "decay %d step %d: gradient %zu left", decay, step, i);
                if (zero && !decay) {
                    cr_assert(memcmp(&p[off + i], &p0[i], sizeof(float)) == 0, "step %d: value %zu of a zero run moved",
                              step, i);
                    cr_assert(memcmp(&acc[off + i], &a0[i], sizeof(float)) == 0, "step %d: accumulator moved", step);
                    continue;
                }
                const double gi = (double)g0[i] + (double)oc.weight_decay * p0[i], v = (double)a0[i] + gi * gi;
                const double want = p0[i] - oc.lr * gi / (sqrt(v) + oc.eps); /* the rule in double */
                const double st = oc.lr * gi / (sqrt(v) + oc.eps);
                cr_assert(fabs(p[off + i] - want) <= RSQRT_REL * fabs(st) + 0x1p-22 * fabs(want) + 1e-30,
                          "decay %d step %d: value %zu %.9g, want %.9g", decay, step, i, p[off + i], want);
                if (decay && g0[i] == 0.0f)
                    cr_assert_neq(p[off + i], p0[i], "decay: value %zu of zero gradient kept", i);
            }
        }
        fr_optim_free(o);
        fr_grad_free(g);
        fr_model_free(m);
    }
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

/* Coasting (fri_optim_coast_*) against its reference: the same optimizer stepped densely
 * with a zero gradient k times. Parameters first take a few steps with gradients of every
 * magnitude (1e-12 .. 1, some exactly 0, so m = 0 and v tiny occur: the element-by-element
 * fallback and the series both run), then the dense model takes k zero-gradient steps and
 * the coasted copy one closed-form jump from step `warm` to `warm + k`. */
static void check_coast(fr_optim_kind kind, float momentum, uint64_t warm, uint64_t k) {
    fr_model_config c;
    fr_model_config_default(&c, FR_MODEL_MF);
    c.n_users = 1;
    c.n_items = 40;
    c.dim = 8;
    fr_model *a, *b;
    fr_grad *g;
    fr_optim *oa, *ob;
    fr_optim_config oc;
    fr_optim_config_default(&oc, kind);
    oc.momentum = momentum;
    cr_assert_eq(fr_model_create(&a, &c), FR_OK);
    cr_assert_eq(fr_model_create(&b, &c), FR_OK);
    cr_assert_eq(fr_grad_create(&g, a), FR_OK);
    cr_assert_eq(fr_optim_create(&oa, a, &oc), FR_OK);
    cr_assert_eq(fr_optim_create(&ob, b, &oc), FR_OK);
    fr_model *c1;
    fr_optim *oc1;
    cr_assert_eq(fr_model_create(&c1, &c), FR_OK);
    cr_assert_eq(fr_optim_create(&oc1, c1, &oc), FR_OK);
    size_t n = fr_model_n_params(a);
    fr_rng r;
    fr_rng_init(&r, 9, 0, 0, FR_PURPOSE_TEST);
    for (uint64_t s = 0; s < warm; s++) {
        float *gg = fr_grad_data(g);
        for (size_t i = 0; i < n; i++) {
            double mag = pow(10.0, -12.0 * fr_rng_double(&r)); /* 1e-12 .. 1 */
            gg[i] = (i % 7 == 3) ? 0.0f : (float)((fr_rng_double(&r) - 0.5) * mag);
            if (s > 0 && i % 11 == 5) gg[i] = 0.0f; /* touched once, then coasting already */
        }
        cr_assert_eq(fr_optim_step(oa, a, g), FR_OK);
        cr_assert_eq(fr_optim_step(ob, b, g), FR_OK);
        cr_assert_eq(fr_optim_step(oc1, c1, g), FR_OK);
    }
    float *pa = fr_model_params(a), *pb = fr_model_params(b);
    cr_assert_eq(memcmp(pa, pb, n * 4), 0);
    float *before = malloc(n * sizeof *before);
    double *coasted = malloc(n * sizeof *coasted);
    cr_assert(before && coasted);
    memcpy(before, pa, n * 4);
    memset(fr_grad_data(g), 0, n * 4);
    for (uint64_t s = 0; s < k; s++) cr_assert_eq(fr_optim_step(oa, a, g), FR_OK);
    /* the coasted copy: its step count moves on, then the jump */
    for (uint64_t s = 0; s < k; s++) cr_assert_eq(fri_optim_step_begin(ob, b, g), FR_OK); /* counts only */
    cr_assert_eq(fri_optim_coast_reserve(ob, warm + k), FR_OK);
    fri_coast plan;
    fri_optim_coast_plan(ob, warm, warm + k, &plan);
    fri_optim_coast_range(ob, b, 0, n / 2, &plan); /* any split of the ranges */
    fri_optim_coast_range(ob, b, n / 2, n - n / 2, &plan);
    /* the vector path (ranges of 8 and more) gives the bits of the scalar one (ranges of 1) */
    for (uint64_t s = 0; s < k; s++) cr_assert_eq(fri_optim_step_begin(oc1, c1, g), FR_OK);
    cr_assert_eq(fri_optim_coast_reserve(oc1, warm + k), FR_OK);
    for (size_t i = 0; i < n; i++) fri_optim_coast_range(oc1, c1, i, 1, &plan);
    cr_assert_eq(memcmp(fr_model_params(c1), pb, n * 4), 0, "scalar and vector coasting differ");
    size_t moved = 0;
    for (size_t i = 0; i < n; i++) {
        double da = (double)pa[i] - before[i], db = (double)pb[i] - before[i];
        if (da != 0) moved++;
        /* the displacement to the series' bound (1.2e-5 of itself, + float rounding), plus
         * the reference's own rounding: each of its k float steps rounds p by up to half
         * an ulp (6e-8 relative) */
        double tol = 1.3e-5 * fabs(da) + 6e-8 * (double)(k + 1) * fabs((double)pa[i]) + 1e-30;
        coasted[i] = da;
        cr_assert(fabs(da - db) <= tol, "%s k=%llu param %zu: dense moved %.9g, coast %.9g",
                  fr_optim_kind_name(kind), (unsigned long long)k, i, da, db);
    }
    if ((kind == FR_OPTIM_ADAM || momentum > 0) && k > 0) cr_assert(moved > n / 2, "moved %zu of %zu", moved, n);
    if (kind == FR_OPTIM_SGD && momentum == 0) cr_assert_eq(memcmp(pa, pb, n * 4), 0);
    /* the moments too: a following real step gives (nearly) the same parameters */
    for (size_t i = 0; i < n; i++) fr_grad_data(g)[i] = (float)(i % 5) * 0.01f - 0.02f;
    cr_assert_eq(fr_optim_step(oa, a, g), FR_OK);
    cr_assert_eq(fr_optim_step(ob, b, g), FR_OK);
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)pa[i] - pb[i]), s = fabs((double)pa[i] - before[i]);
        cr_assert(d <= 1.3e-5 * (s + fabs(coasted[i])) + 6e-8 * (double)(k + 2) * fabs((double)pa[i]) + 1e-30, "%s warm %llu k %llu: after the next step, param %zu: %.9g vs %.9g (before %.9g)", fr_optim_kind_name(kind), (unsigned long long)warm, (unsigned long long)k,
                  i, pa[i], pb[i], before[i]);
    }
    free(before);
    free(coasted);
    fr_optim_free(oc1);
    fr_model_free(c1);
    fr_optim_free(oa);
    fr_optim_free(ob);
    fr_grad_free(g);
    fr_model_free(a);
    fr_model_free(b);
}

Test(optim, coasting_equals_dense_zero_gradient_steps) {
    const uint64_t ks[] = {0, 1, 2, 5, 37, 130, 900};
    for (size_t i = 0; i < sizeof ks / sizeof *ks; i++) {
        check_coast(FR_OPTIM_ADAM, 0.0f, 3, ks[i]);
        check_coast(FR_OPTIM_ADAM, 0.0f, 1, ks[i]);
        check_coast(FR_OPTIM_ADAM, 0.0f, 60, ks[i]);
        check_coast(FR_OPTIM_SGD, 0.9f, 4, ks[i]);
        check_coast(FR_OPTIM_SGD, 0.0f, 4, ks[i]);
        check_coast(FR_OPTIM_ADAGRAD, 0.0f, 4, ks[i]);
    }
}
