/* The library training loop and fr_run: the step schedule (evaluation, checkpoints,
 * callback, stop conditions), resume giving the uninterrupted run's bits, centralized
 * epochs equal to the trainer driven by hand, the final model's metrics equal to
 * fr_model_evaluate on the returned model, presets, and the JSON Lines records. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/core.h"
#include "fedrec/run.h"
#include "fedrec/runtime.h"
#include "testutil.h"

typedef struct data3 {
    fr_dataset *all, *train, *test;
    fr_negatives *negs;
} data3;

static data3 load(bool negatives) {
    data3 d = {0};
    d.all = tu_generate(60, 80, 1500, 4);
    cr_assert_eq(fr_dataset_split(d.all, FR_SPLIT_LOO, 0, 1, &d.train, &d.test), FR_OK);
    if (negatives) cr_assert_eq(fr_negatives_sample(&d.negs, d.all, d.test, 20, 1), FR_OK);
    return d;
}

static void unload(data3 *d) {
    fr_dataset_free(d->all);
    fr_dataset_free(d->train);
    fr_dataset_free(d->test);
    fr_negatives_free(d->negs);
}

typedef struct seen {
    int n;
    uint32_t index[64];
    bool evaluated[64], checkpointed[64];
    double hr[64];
    int stop_at; /* stop after this step (0: never) */
} seen;

static int record(void *user, const fr_loop_step *st) {
    seen *s = user;
    cr_assert(s->n < 64);
    s->index[s->n] = st->index;
    s->evaluated[s->n] = st->evaluated;
    s->checkpointed[s->n] = st->checkpointed;
    s->hr[s->n] = st->evaluated && st->eval.has_sampled ? st->eval.hr[1] : NAN;
    s->n++;
    return s->stop_at && (int)st->index == s->stop_at;
}

static uint8_t *bytes_of(const fr_model *m, size_t *n) {
    uint8_t *b = NULL;
    fr_model_meta meta = {0};
    cr_assert_eq(fr_model_encode(m, &meta, &b, n), FR_OK);
    return b;
}

Test(loop, schedule_stop_resume_and_final_metrics) {
    data3 d = load(true);
    char *dir = tu_tmpdir(), path[1024];
    snprintf(path, sizeof path, "%s/run.ckpt", dir);
    fr_run_config c;
    cr_assert_eq(fr_run_config_preset(&c, "fedrec", FR_MODEL_GMF, false, d.train), FR_OK);
    cr_assert_eq(c.loop.steps, 50);
    c.loop.steps = 6;
    c.loop.eval_every = 2;
    c.threads = 2;
    /* the uninterrupted run */
    seen a = {0};
    fr_loop_summary sa;
    fr_model *ma = NULL;
    cr_assert_eq(fr_run(&c, d.train, d.test, d.negs, record, &a, &sa, &ma), FR_OK, "%s", fr_errmsg());
    cr_assert_eq(a.n, 6);
    for (int i = 0; i < 6; i++) {
        cr_assert_eq(a.index[i], (uint32_t)i + 1);
        cr_assert_eq(a.evaluated[i], (i + 1) % 2 == 0, "step %d", i + 1);
        cr_assert(!a.checkpointed[i]);
    }
    cr_assert(sa.stop == FR_LOOP_DONE && sa.completed == 6 && sa.ran == 6 && sa.evaluated);
    cr_assert_eq(sa.last.hr[1], a.hr[5]);
    /* the final metrics are fr_model_evaluate's on the returned model */
    fr_eval_result r;
    cr_assert_eq(fr_model_evaluate(ma, d.train, d.test, d.negs, NULL, NULL, &r), FR_OK);
    cr_assert(r.hr[1] == sa.last.hr[1] && r.ndcg[1] == sa.last.ndcg[1] && r.auc == sa.last.auc);
    /* stopped by the callback after 4 steps, checkpointing every 3 and at the stop */
    c.loop.checkpoint = path;
    c.loop.checkpoint_every = 3;
    seen b = {0};
    b.stop_at = 4;
    fr_loop_summary sb;
    cr_assert_eq(fr_run(&c, d.train, d.test, d.negs, record, &b, &sb, NULL), FR_OK, "%s", fr_errmsg());
    cr_assert(b.n == 4 && sb.stop == FR_LOOP_CALLBACK && sb.completed == 4);
    cr_assert(b.checkpointed[2] && !b.checkpointed[3]);
    cr_assert(sb.evaluated, "the final model is evaluated even off the schedule");
    /* resume: steps 5 and 6, the same bits and figures as the uninterrupted run */
    c.loop.resume = true;
    seen e = {0};
    fr_loop_summary se;
    fr_model *me = NULL;
    cr_assert_eq(fr_run(&c, d.train, d.test, d.negs, record, &e, &se, &me), FR_OK, "%s", fr_errmsg());
    cr_assert(e.n == 2 && e.index[0] == 5 && e.index[1] == 6);
    cr_assert(se.completed == 6 && se.ran == 2);
    cr_assert_eq(e.hr[1], a.hr[5]);
    size_t n1, n2;
    uint8_t *x = bytes_of(ma, &n1), *y = bytes_of(me, &n2);
    cr_assert(n1 == n2 && memcmp(x, y, n1) == 0, "6 rounds vs 4 + resume + 2");
    /* a finished run resumed again: nothing to do, its metrics reported */
    seen f = {0};
    fr_loop_summary sf;
    cr_assert_eq(fr_run(&c, d.train, d.test, d.negs, record, &f, &sf, NULL), FR_OK);
    cr_assert(f.n == 0 && sf.ran == 0 && sf.completed == 6 && sf.evaluated && sf.last.hr[1] == a.hr[5]);
    fr_model_bytes_free(x);
    fr_model_bytes_free(y);
    fr_model_free(ma);
    fr_model_free(me);
    tu_rmtree(dir);
    free(dir);
    unload(&d);
}

Test(loop, patience_and_time_limit) {
    data3 d = load(true);
    fr_run_config c;
    cr_assert_eq(fr_run_config_preset(&c, "fedrec", FR_MODEL_GMF, false, d.train), FR_OK);
    c.loop.steps = 40;
    c.loop.patience = 2;
    c.fl.item_local.lr = 1e-9f; /* nothing improves: stops after 1 + 2 evaluations */
    c.fl.local.lr = 1e-9f;
    fr_loop_summary s;
    seen a = {0};
    cr_assert_eq(fr_run(&c, d.train, d.test, d.negs, record, &a, &s, NULL), FR_OK, "%s", fr_errmsg());
    cr_assert_eq(s.stop, FR_LOOP_PATIENCE);
    cr_assert(s.ran >= 3 && s.ran < 40, "%u steps", s.ran);
    cr_assert(s.best_step >= 1 && s.best_step <= s.ran);
    c.loop.patience = 0;
    c.loop.max_seconds = 1e-9;
    cr_assert_eq(fr_run(&c, d.train, d.test, d.negs, NULL, NULL, &s, NULL), FR_OK);
    cr_assert(s.stop == FR_LOOP_TIME && s.ran == 1);
    c.loop.max_seconds = -1;
    cr_assert_eq(fr_run(&c, d.train, d.test, d.negs, NULL, NULL, &s, NULL), FR_ERR_INVALID);
    cr_assert(strstr(fr_errmsg(), "max_seconds -1") != NULL, "%s", fr_errmsg());
    c.loop.max_seconds = 0;
    c.loop.resume = true;
    cr_assert_eq(fr_run(&c, d.train, d.test, d.negs, NULL, NULL, &s, NULL), FR_ERR_INVALID);
    cr_assert(strstr(fr_errmsg(), "resuming needs a checkpoint file") != NULL, "%s", fr_errmsg());
    unload(&d);
}

/* Centralized epochs through the loop are the trainer's epochs by hand, lr decay included. */
Test(loop, centralized_equals_the_trainer_by_hand) {
    data3 d = load(false);
    fr_run_config c;
    cr_assert_eq(fr_run_config_preset(&c, "fedrec", FR_MODEL_MF, true, d.train), FR_OK);
    cr_assert(c.lr_decay == 0.92 && c.train.batch == 1 && c.loop.steps == 40 && c.train.optim.kind == FR_OPTIM_SGD && c.model.mu > 1);
    c.loop.steps = 3;
    c.threads = 2;
    fr_loop_summary s;
    fr_model *m = NULL;
    cr_assert_eq(fr_run(&c, d.train, d.test, NULL, NULL, NULL, &s, &m), FR_OK, "%s", fr_errmsg());
    cr_assert(s.last.has_rating && !s.last.has_sampled);
    fr_model_config mc = c.model;
    mc.n_users = fr_dataset_n_users(d.train);
    mc.n_items = fr_dataset_n_items(d.train);
    fr_model *ref = NULL;
    fr_trainer *t = NULL;
    fr_train_config tc = c.train;
    tc.threads = 1;
    cr_assert_eq(fr_model_create(&ref, &mc), FR_OK);
    cr_assert_eq(fr_trainer_create(&t, ref, d.train, &tc), FR_OK);
    for (int ep = 1; ep <= 3; ep++) {
        if (ep > 1) cr_assert_eq(fr_trainer_set_lr(t, (float)((double)tc.optim.lr * pow(c.lr_decay, ep - 1))), FR_OK);
        double loss;
        cr_assert_eq(fr_trainer_epoch(t, &loss), FR_OK);
    }
    size_t n1, n2;
    uint8_t *x = bytes_of(m, &n1), *y = bytes_of(ref, &n2);
    cr_assert(n1 == n2 && memcmp(x, y, n1) == 0, "fr_run centralized vs the trainer by hand");
    fr_eval_result r;
    cr_assert_eq(fr_model_evaluate(ref, d.train, d.test, NULL, NULL, NULL, &r), FR_OK);
    cr_assert(r.rmse == s.last.rmse && r.mae == s.last.mae);
    /* centralized training does not checkpoint */
    c.loop.checkpoint = "x.ckpt";
    c.loop.resume = true;
    cr_assert_eq(fr_run(&c, d.train, d.test, NULL, NULL, NULL, &s, NULL), FR_ERR_INVALID);
    fr_model_bytes_free(x);
    fr_model_bytes_free(y);
    fr_trainer_free(t);
    fr_model_free(ref);
    fr_model_free(m);
    unload(&d);
}

Test(loop, presets) {
    fr_run_config c;
    cr_assert_eq(fr_run_config_preset(&c, "textbook", FR_MODEL_NEUMF, false, NULL), FR_OK);
    fr_fl_config lib;
    fr_fl_config_default(&lib, FR_MODEL_NEUMF);
    cr_assert_eq(memcmp(&c.fl, &lib, sizeof lib), 0, "textbook federated NCF is the library's FedAvg");
    cr_assert(c.model.dim == 8 && c.loop.steps == 100 && !strcmp(c.preset, "textbook"));
    cr_assert_eq(fr_run_config_preset(&c, "fedrec", FR_MODEL_NEUMF, false, NULL), FR_OK);
    cr_assert(c.fl.item_sum && c.fl.item_local.kind == FR_OPTIM_SGD && c.fl.item_local.lr == 0.8f);
    cr_assert(c.fl.item_lr_decay == 0.96f && c.fl.local.lr == 0.006f && c.model.dim == 64 && c.loop.steps == 30);
    cr_assert(c.model.l2 == 2e-4f);
    cr_assert_eq(fr_run_config_preset(&c, "textbook", FR_MODEL_MF, true, NULL), FR_OK);
    cr_assert(c.train.optim.kind == FR_OPTIM_SGD && c.train.optim.lr == 0.1f && c.loop.steps == 150);
    cr_assert_eq(fr_run_config_preset(&c, "fast", FR_MODEL_MF, true, NULL), FR_ERR_INVALID);
    cr_assert(strstr(fr_errmsg(), "unknown preset 'fast': expected fedrec or textbook") != NULL, "%s", fr_errmsg());
    cr_assert_str_eq(fr_run_presets()[0], "fedrec");
    cr_assert_null(fr_run_presets()[2]);
}

Test(loop, step_json) {
    fr_loop_step s;
    memset(&s, 0, sizeof s);
    s.unit = FR_LOOP_ROUND;
    s.index = 3;
    s.loss = 0.5;
    s.round.clients = 7;
    s.round.bytes_up = 100;
    s.round.bytes_down = 2000;
    s.seconds = 0.25;
    char buf[8192];
    size_t n = 0;
    cr_assert_eq(fr_loop_step_json(&s, buf, sizeof buf, &n), FR_OK);
    cr_assert_str_eq(buf, "{\"round\":3,\"loss\":0.5,\"clients\":7,\"bytes_up\":100,\"bytes_down\":2000,\"seconds\":0.2500}");
    cr_assert_eq(n, strlen(buf));
    s.unit = FR_LOOP_EPOCH;
    s.evaluated = true;
    fr_eval_opts o;
    fr_eval_opts_default(&o);
    fr_eval_result_init(&s.eval, &o);
    s.eval.has_rating = true;
    s.eval.rmse = 0.9;
    s.eval.mae = 0.7;
    s.eval_seconds = 0.125;
    s.loss = NAN;
    cr_assert_eq(fr_loop_step_json(&s, buf, sizeof buf, &n), FR_OK);
    cr_assert(strncmp(buf, "{\"epoch\":3,\"loss\":null,\"rmse\":0.9", 33) == 0, "%s", buf);
    cr_assert(strstr(buf, ",\"seconds\":0.2500,\"eval_seconds\":0.1250}") != NULL, "%s", buf);
    cr_assert_eq(fr_loop_step_json(&s, buf, 20, &n), FR_ERR_RANGE);
}
