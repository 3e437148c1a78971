/* A whole training run (fr_run, see include/fedrec/runtime.h): the configs and the data
 * become a simulator or a centralized trainer, wrapped as a loop driver, run by the
 * library's one training loop (fr_loop_run). This is the only place that chooses between
 * federated and centralized training; it holds no learning math and never prints. */
#include <math.h>
#include <stdio.h>

#include "core/core.h"
#include "fedrec/runtime.h"
#include "runtime/runtime_internal.h"

/* ------------------------------------------------------------------ the sim as a driver */

static fr_err sim_step(void *ctx, fr_loop_step *out) {
    fr_err e = fr_sim_round(ctx, &out->round);
    out->loss = out->round.loss;
    return e;
}
static uint32_t sim_completed(void *ctx) { return fr_round_completed(fr_sim_controller(ctx)); }
static fr_model *sim_model(void *ctx) { return fr_sim_model(ctx); }
static fr_err sim_save(void *ctx, const char *path) { return fr_sim_checkpoint_save(ctx, path); }
static fr_err sim_load(void *ctx, const char *path) { return fr_sim_checkpoint_load(ctx, path); }
static fr_err sim_epsilon(void *ctx, uint32_t steps, double *eps) {
    const fr_fl_config *c = fr_round_fl_config(fr_sim_controller(ctx));
    *eps = NAN;
    return fr_fl_dp_on(c) ? fr_fl_dp_epsilon(c, fr_sim_n_clients(ctx), steps, eps) : FR_OK;
}

void fr_sim_driver(fr_loop_driver *d) {
    memset(d, 0, sizeof *d);
    d->unit = FR_LOOP_ROUND;
    d->step = sim_step;
    d->completed = sim_completed;
    d->model = sim_model;
    d->pool = fri_sim_pool;
    d->save = sim_save;
    d->load = sim_load;
    d->epsilon = sim_epsilon;
}

/* ------------------------------------------------------------------ centralized epochs */

typedef struct central {
    fr_trainer *t;
    fr_model *m;
    float lr;         /* the epoch-1 learning rate */
    double decay;     /* epoch e trains at lr * decay^(e-1) */
} central;

static fr_err central_step(void *ctx, fr_loop_step *out) {
    central *c = ctx;
    uint64_t ep = fr_trainer_epochs(c->t) + 1;
    float lr = (float)((double)c->lr * pow(c->decay, (double)(ep - 1)));
    /* lr is 0 once the power underflows: the last rate then stays */
    if (c->decay != 1.0 && ep > 1 && lr > 0) {
        fr_err e = fr_trainer_set_lr(c->t, lr);
        if (e) return e;
    }
    return fr_trainer_epoch(c->t, &out->loss);
}
static uint32_t central_completed(void *ctx) { return (uint32_t)fr_trainer_epochs(((central *)ctx)->t); }
static fr_model *central_model(void *ctx) { return ((central *)ctx)->m; }
static fr_pool *central_pool(void *ctx) { return fr_trainer_pool(((central *)ctx)->t); }

static fr_err run_central(const fr_run_config *c, const fr_dataset *train, const fr_dataset *test,
                          const fr_negatives *negs, fr_loop_callback cb, void *user, fr_loop_summary *summary,
                          fr_model **model) {
    fr_model_config mc = c->model;
    mc.n_users = fr_dataset_n_users(train);
    mc.n_items = fr_dataset_n_items(train);
    if (fr_dataset_n_users(test) > mc.n_users) mc.n_users = fr_dataset_n_users(test);
    if (fr_dataset_n_items(test) > mc.n_items) mc.n_items = fr_dataset_n_items(test);
    fr_train_config tc = c->train;
    tc.threads = c->threads;
    central ct = {NULL, NULL, tc.optim.lr, c->lr_decay};
    fr_err e = fr_model_create(&ct.m, &mc);
    if (!e) e = fr_trainer_create(&ct.t, ct.m, train, &tc);
    if (!e) {
        fr_loop_driver d = {FR_LOOP_EPOCH, central_step, central_completed, central_model, central_pool, NULL, NULL, NULL};
        e = fr_loop_run(&c->loop, &d, &ct, train, test, negs, cb, user, summary);
    }
    fr_trainer_free(ct.t);
    if (!e && model) *model = ct.m;
    else fr_model_free(ct.m);
    return e;
}

/* ------------------------------------------------------------------ federated rounds */

static fr_err run_federated(const fr_run_config *c, const fr_dataset *train, const fr_dataset *test,
                            const fr_negatives *negs, fr_loop_callback cb, void *user, fr_loop_summary *summary,
                            fr_model **model) {
    fr_model_config mc = c->model;
    fr_pool *pool = NULL;
    fr_partition *part = NULL;
    fr_sim *sim = NULL;
    fr_err e = fr_pool_create(&pool, c->threads);
    if (!e && c->partition != FR_PARTITION_USER)
        e = fr_partition_make(&part, train, c->partition, c->partition_k, c->partition_alpha, NULL, c->fl.seed);
    if (!e) e = fr_sim_create_silos(&sim, &mc, &c->fl, train, part, pool);
    if (!e) {
        fr_sim_set_wire(sim, c->wire);
        fr_sim_set_secagg(sim, c->secagg);
        if (c->attack) e = fr_sim_set_attack(sim, c->attack);
        if (!e && c->faults) e = fr_sim_set_faults(sim, c->faults);
        fr_loop_config lc = c->loop;
        if (fr_sim_attack_has_target(c->attack)) { /* er@K of the target on every evaluation */
            lc.eval.exposure = true;
            lc.eval.exposure_item = c->attack->target;
            if (!lc.eval.exposure_k) lc.eval.exposure_k = 10;
        }
        fr_loop_driver d;
        fr_sim_driver(&d);
        if (!e) e = fr_loop_run(&lc, &d, sim, train, test, negs, cb, user, summary);
    }
    if (!e && model) *model = fri_sim_take_model(sim); /* not a copy: the store may be most of memory */
    fr_sim_free(sim);
    fr_partition_free(part);
    fr_pool_free(pool);
    return e;
}

fr_err fr_run(const fr_run_config *c, const fr_dataset *train, const fr_dataset *test, const fr_negatives *negs,
              fr_loop_callback cb, void *user, fr_loop_summary *summary, fr_model **model) {
    if (model) *model = NULL;
    fr_err e = fr_run_config_check(c);
    if (e) return e;
    if (!train || !test) return fri_fail(FR_ERR_INVALID, "fr_run: no training or test data");
    /* A rating model would fit implicit feedback's 1s or weights (counts) as ratings. */
    if (fr_model_kind_is_explicit(c->model.kind) && fr_dataset_implicit(train))
        return fri_fail(FR_ERR_INVALID, "%s predicts ratings, but the training data was read as implicit feedback "
                        "(every row a positive; a count or weight column is not a rating): use a ranking model "
                        "(bpr, gmf, mlp, neumf), or name a column of ratings (--rating-col)",
                        fr_model_kind_name(c->model.kind));
    if (c->centralized && ((c->attack && c->attack->kind != FR_ATTACK_NONE) || fr_sim_faults_on(c->faults)))
        return fri_fail(FR_ERR_INVALID, "simulated %s apply to federated training, not centralized",
                        c->attack && c->attack->kind != FR_ATTACK_NONE ? "attacks" : "faults");
    return c->centralized ? run_central(c, train, test, negs, cb, user, summary, model)
                          : run_federated(c, train, test, negs, cb, user, summary, model);
}
