/* The training loop (see include/fedrec/run.h): a driver's steps, the one evaluation,
 * checkpoints, resume, a callback and stop conditions.
 * Invariants: the loop never prints and holds no learning math; every evaluation is
 * fr_model_evaluate on the driver's model, so `fedrec eval` on the saved model reproduces
 * the last evaluated step's figures; the final model is always evaluated once (after
 * the last step, or at once when a resumed run has nothing left to do). */
#include <math.h>
#include <stdio.h>
#include <time.h>

#include "core/core.h"
#include "fedrec/run.h"

void fr_loop_config_default(fr_loop_config *c) {
    memset(c, 0, sizeof *c);
    c->steps = 20;
    c->eval_every = 1;
    fr_eval_opts_default(&c->eval);
}

fr_err fr_loop_config_check(const fr_loop_config *c) {
    if (!c) return fri_fail(FR_ERR_INVALID, "loop config is NULL");
    if (c->steps == 0) return fri_fail(FR_ERR_INVALID, "loop: 0 steps: expected at least 1 round or epoch");
    if ((c->resume || c->checkpoint_every) && !c->checkpoint)
        return fri_fail(FR_ERR_INVALID, "loop: %s needs a checkpoint file",
                        c->resume ? "resuming" : "checkpointing every N steps");
    if (!(c->max_seconds >= 0) || !isfinite(c->max_seconds))
        return fri_fail(FR_ERR_INVALID, "loop: max_seconds %g: expected a finite value >= 0", c->max_seconds);
    if (!(c->target_epsilon >= 0) || !isfinite(c->target_epsilon))
        return fri_fail(FR_ERR_INVALID, "loop: target epsilon %g: expected a finite value >= 0 (0: none)",
                        c->target_epsilon);
    return fr_eval_opts_check(&c->eval);
}

const char *fr_loop_stop_name(fr_loop_stop s) {
    switch (s) {
    case FR_LOOP_DONE: return "done";
    case FR_LOOP_CALLBACK: return "stopped by the callback";
    case FR_LOOP_PATIENCE: return "no better metric within the patience";
    case FR_LOOP_TIME: return "time limit";
    case FR_LOOP_PRIVACY: return "privacy budget (target epsilon)";
    }
    return "?";
}

double fr_loop_main_metric(const fr_eval_result *r, bool *lower_is_better, const char **name) {
    bool lower = false;
    const char *nm = "none";
    double v = NAN;
    size_t k = r->n_ks > 1 ? 1 : 0;
    if (r->has_rating) { lower = true; nm = "rmse"; v = r->rmse; }
    else if (r->has_sampled && r->n_ks) { nm = "hr@K"; v = r->hr[k]; }
    else if (r->has_full && r->n_ks) { nm = "hr@K_full"; v = r->hr_full[k]; }
    if (lower_is_better) *lower_is_better = lower;
    if (name) *name = nm;
    return v;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static fr_err evaluate(const fr_loop_config *c, const fr_loop_driver *d, void *ctx, const fr_dataset *train,
                       const fr_dataset *test, const fr_negatives *negs, fr_eval_result *r, double *secs) {
    double t0 = now_s();
    fr_err e = fr_model_evaluate(d->model(ctx), train, test, negs, &c->eval, d->pool ? d->pool(ctx) : NULL, r);
    *secs = now_s() - t0;
    return e ? fri_fail_prefix(e, "evaluation") : FR_OK;
}

fr_err fr_loop_run(const fr_loop_config *c, const fr_loop_driver *d, void *ctx, const fr_dataset *train,
                   const fr_dataset *test, const fr_negatives *negs, fr_loop_callback cb, void *user,
                   fr_loop_summary *summary) {
    fr_loop_summary sum;
    memset(&sum, 0, sizeof sum);
    sum.best = NAN;
    sum.epsilon = NAN;
    if (summary) *summary = sum;
    fr_err e = fr_loop_config_check(c);
    if (e) return e;
    if (!d || !d->step || !d->completed || !d->model)
        return fri_fail(FR_ERR_INVALID, "loop: the driver lacks step, completed or model");
    if ((c->checkpoint && !d->save) || (c->resume && !d->load))
        return fri_fail(FR_ERR_UNSUPPORTED, "loop: this driver cannot %s", c->resume ? "resume" : "checkpoint");
    if (c->target_epsilon > 0 && !d->epsilon)
        return fri_fail(FR_ERR_INVALID, "loop: a target epsilon for a run that is not differentially private");
    if (c->resume && (e = d->load(ctx, c->checkpoint))) return e;
    double t_begin = now_s();
    uint32_t start = d->completed(ctx);
    bool lower = false, last_saved = false;
    uint32_t since_best = 0;
    fr_loop_step st;
    for (uint32_t i = start + 1; i <= c->steps; i++) {
        memset(&st, 0, sizeof st);
        st.unit = d->unit;
        st.index = i;
        st.total = c->steps;
        st.epsilon = NAN;
        if (d->epsilon) {
            /* the budget is checked before the step: a step that would exceed it never runs */
            fr_err ee = d->epsilon(ctx, i, &st.epsilon);
            if (ee && c->target_epsilon > 0) { e = fri_fail_prefix(ee, "the privacy accountant"); break; }
            if (ee) st.epsilon = NAN;
            if (c->target_epsilon > 0 && isnan(st.epsilon)) {
                e = fri_fail(FR_ERR_INVALID, "loop: a target epsilon for a run that is not differentially private");
                break;
            }
            if (c->target_epsilon > 0 && !(st.epsilon <= c->target_epsilon)) {
                sum.stop = FR_LOOP_PRIVACY;
                break;
            }
        }
        double t0 = now_s();
        if ((e = d->step(ctx, &st))) break;
        st.index = i;
        st.seconds = now_s() - t0;
        sum.ran++;
        sum.evaluated = false;
        last_saved = false;
        if ((c->eval_every && i % c->eval_every == 0) || i == c->steps) {
            if ((e = evaluate(c, d, ctx, train, test, negs, &st.eval, &st.eval_seconds))) break;
            st.evaluated = true;
            sum.last = st.eval;
            sum.evaluated = true;
            double v = fr_loop_main_metric(&st.eval, &lower, NULL);
            if (!isnan(v) && (isnan(sum.best) || (lower ? v < sum.best : v > sum.best))) {
                sum.best = v;
                sum.best_step = i;
                sum.best_eval = st.eval;
                since_best = 0;
            } else {
                since_best++;
            }
        }
        if (c->checkpoint && c->checkpoint_every && i % c->checkpoint_every == 0) {
            if ((e = d->save(ctx, c->checkpoint))) break;
            st.checkpointed = last_saved = true;
        }
        st.elapsed = now_s() - t_begin;
        if (c->patience && since_best >= c->patience) sum.stop = FR_LOOP_PATIENCE;
        if (c->max_seconds > 0 && st.elapsed >= c->max_seconds) sum.stop = FR_LOOP_TIME;
        if (cb && cb(user, &st)) sum.stop = FR_LOOP_CALLBACK;
        if (sum.stop != FR_LOOP_DONE) break;
    }
    sum.completed = d->completed(ctx);
    if (!e && d->epsilon && d->epsilon(ctx, sum.completed, &sum.epsilon)) sum.epsilon = NAN;
    if (!e && !sum.evaluated) { /* the final model's figures, whatever the schedule */
        double secs;
        e = evaluate(c, d, ctx, train, test, negs, &sum.last, &secs);
        if (!e) sum.evaluated = true;
    }
    if (!e && c->checkpoint && !last_saved && sum.ran) e = d->save(ctx, c->checkpoint);
    if (summary) *summary = sum;
    return e;
}

/* ------------------------------------------------------------------ JSON Lines */

fr_err fr_loop_step_json(const fr_loop_step *s, char *buf, size_t cap, size_t *len) {
    if (len) *len = 0;
    if (!s || !buf || cap == 0) return fri_fail(FR_ERR_INVALID, "fr_loop_step_json: NULL or empty buffer");
    char ev[4096] = "";
    if (s->evaluated) {
        fr_err e = fr_eval_result_json(&s->eval, ev, sizeof ev, NULL);
        if (e) return e;
    }
    int n;
    bool round = s->unit == FR_LOOP_ROUND;
    char loss[32];
    if (isfinite(s->loss)) snprintf(loss, sizeof loss, "%.6g", s->loss);
    else snprintf(loss, sizeof loss, "null");
    char dp[96] = "";
    if (round && s->round.dp_clip > 0) { /* a private run: its epsilon (null: infinite or unknown) and clip */
        char eps[32];
        if (isfinite(s->epsilon)) snprintf(eps, sizeof eps, "%.6g", s->epsilon);
        else snprintf(eps, sizeof eps, "null");
        snprintf(dp, sizeof dp, ",\"epsilon\":%s,\"dp_clip\":%.6g", eps, s->round.dp_clip);
    }
    if (round)
        n = snprintf(buf, cap,
                     "{\"round\":%u,\"loss\":%s%s%s,\"clients\":%u,\"bytes_up\":%llu,\"bytes_down\":%llu,"
                     "\"seconds\":%.4f%s",
                     s->index, loss, ev[0] ? "," : "", ev, s->round.clients, (unsigned long long)s->round.bytes_up,
                     (unsigned long long)s->round.bytes_down, s->seconds, dp);
    else
        n = snprintf(buf, cap, "{\"epoch\":%u,\"loss\":%s%s%s,\"seconds\":%.4f", s->index, loss, ev[0] ? "," : "", ev,
                     s->seconds);
    if (n < 0 || (size_t)n >= cap) return fri_fail(FR_ERR_RANGE, "fr_loop_step_json: buffer of %zu bytes too small", cap);
    if (round && s->round.attempts) { /* simulated faults */
        int f = snprintf(buf + n, cap - (size_t)n, ",\"attempts\":%u,\"crashed\":%u,\"late\":%u,\"sim_seconds\":%.4f",
                         s->round.attempts, s->round.crashed, s->round.late, s->round.sim_seconds);
        if (f < 0 || (size_t)(n + f) >= cap)
            return fri_fail(FR_ERR_RANGE, "fr_loop_step_json: buffer of %zu bytes too small", cap);
        n += f;
    }
    int m = s->evaluated ? snprintf(buf + n, cap - (size_t)n, ",\"eval_seconds\":%.4f}", s->eval_seconds)
                         : snprintf(buf + n, cap - (size_t)n, "}");
    if (m < 0 || (size_t)(n + m) >= cap)
        return fri_fail(FR_ERR_RANGE, "fr_loop_step_json: buffer of %zu bytes too small", cap);
    if (len) *len = (size_t)(n + m);
    return FR_OK;
}
