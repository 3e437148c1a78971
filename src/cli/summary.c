/* The end-of-run summary of `fedrec train` (see summary.h). It is printed whatever
 * --quiet says: it is the answer to "what did this run do?", in a few lines:
 *
 *   summary: federated neumf on ml-100k-loo (NCF layout): 50 rounds in 41.3 s (training 40.9 s)
 *     final (round 50)   hr@10 0.6023  ndcg@10 0.3345
 *     best  (round 37)   hr@10 0.6140  ndcg@10 0.3401
 *     baseline pop       hr@10 0.3160  ndcg@10 0.1675  (same split; final hr@10 +0.2863)
 *     model: neumf.fr (for fedrec eval and fedrec recommend --model)
 *     checkpoint: neumf.fr.ckpt (the federation after round 50, for --resume)
 *
 * The baseline is fitted and evaluated here, on the run's own training and test data
 * (fr_run_baseline): a rating model is held against bias, a ranking model against pop. */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/summary.h"
#include "fedrec/runtime.h"

static int k10(const fr_eval_result *r) {
    for (size_t i = 0; i < r->n_ks; i++)
        if (r->ks[i] == 10) return (int)i;
    return 0;
}

void cli_metrics_text(const fr_eval_result *r, char *buf, size_t n) {
    int k = k10(r);
    buf[0] = 0;
    if (r->has_rating) snprintf(buf, n, "rmse %.4f  mae %.4f", r->rmse, r->mae);
    else if (r->has_sampled) snprintf(buf, n, "hr@%u %.4f  ndcg@%u %.4f", r->ks[k], r->hr[k], r->ks[k], r->ndcg[k]);
    else if (r->has_full)
        snprintf(buf, n, "hr@%u_full %.4f  ndcg@%u_full %.4f", r->ks[k], r->hr_full[k], r->ks[k], r->ndcg_full[k]);
    size_t at = strlen(buf);
    if (r->has_exposure && at < n) snprintf(buf + at, n - at, "%ser@%u %.4f", at ? "  " : "", r->exposure_k, r->exposure);
}

/* The metric the two are compared by, and the phrase: "rmse 4.1% below" / "hr@10 +0.2863". */
static void versus(const fr_eval_result *a, const fr_eval_result *base, char *buf, size_t n) {
    int k = k10(a);
    buf[0] = 0;
    if (a->has_rating && base->has_rating && base->rmse > 0) {
        double pct = (base->rmse - a->rmse) / base->rmse * 100.0;
        snprintf(buf, n, "final rmse %.1f%% %s the baseline's", fabs(pct), pct >= 0 ? "below" : "above");
    } else if (a->has_sampled && base->has_sampled) {
        snprintf(buf, n, "final hr@%u %+.4f", a->ks[k], a->hr[k] - base->hr[k]);
    } else if (a->has_full && base->has_full) {
        snprintf(buf, n, "final hr@%u_full %+.4f", a->ks[k], a->hr_full[k] - base->hr_full[k]);
    }
}

float cli_confidence_alpha(const fr_run_config *c, const fr_data *data) {
    if (!fr_dataset_weighted(fr_data_train(data)) || fr_model_kind_is_explicit(c->model.kind) ||
        fr_model_kind_is_closed_form(c->model.kind))
        return 0;
    return c->centralized ? c->train.confidence_alpha : c->fl.confidence_alpha;
}

static int json_record(FILE *f, const cli_summary *s, const char *unit, bool has_base, fr_model_kind bk,
                       const fr_eval_result *base) {
    const fr_loop_summary *l = s->loop;
    char ev[4096];
    fprintf(f, "{\"summary\":true,\"model\":");
    cli_json_str(f, fr_model_kind_name(s->run->model.kind));
    fprintf(f, ",\"mode\":\"%s\",\"%ss\":%u,\"stop\":", s->run->centralized ? "centralized" : "federated", unit,
            l->completed);
    cli_json_str(f, fr_loop_stop_name(l->stop));
    fprintf(f, ",\"confidence_alpha\":%g", (double)cli_confidence_alpha(s->run, s->data));
    if (!s->run->centralized && fr_fl_dp_on(&s->run->fl)) { /* a private run: what it spent */
        if (isfinite(l->epsilon)) fprintf(f, ",\"epsilon\":%.6g", l->epsilon);
        else fprintf(f, ",\"epsilon\":null");
        fprintf(f, ",\"delta\":%.6g", fr_fl_dp_delta(&s->run->fl, fr_dataset_n_users(fr_data_train(s->data))));
    }
    fprintf(f, ",\"seconds\":%.3f,\"train_seconds\":%.3f,\"final\":", s->seconds, s->train_seconds);
    if (l->evaluated && fr_eval_result_json(&l->last, ev, sizeof ev, NULL) == FR_OK)
        fprintf(f, "{\"%s\":%u,%s}", unit, l->completed, ev);
    else
        fprintf(f, "null");
    fprintf(f, ",\"best\":");
    if (l->best_step && fr_eval_result_json(&l->best_eval, ev, sizeof ev, NULL) == FR_OK)
        fprintf(f, "{\"%s\":%u,%s}", unit, l->best_step, ev);
    else
        fprintf(f, "null");
    fprintf(f, ",\"baseline\":");
    if (has_base && fr_eval_result_json(base, ev, sizeof ev, NULL) == FR_OK)
        fprintf(f, "{\"model\":\"%s\",%s}", fr_model_kind_name(bk), ev);
    else
        fprintf(f, "null");
    fprintf(f, ",\"out\":");
    cli_json_str(f, s->out);
    fprintf(f, ",\"checkpoint\":");
    cli_json_str(f, s->checkpoint);
    fprintf(f, "}\n");
    return fflush(f) != 0 || ferror(f) ? 1 : 0;
}

int cli_summary_print(const cli_summary *s, FILE *metrics, int *err) {
    const fr_run_config *c = s->run;
    const fr_loop_summary *l = s->loop;
    fr_model_kind kind = c->model.kind;
    const char *unit = c->centralized ? "epoch" : "round";
    *err = 0;

    /* the baseline, unless the model is one */
    fr_eval_result base;
    fr_model_kind bk = 0;
    bool has_base = false;
    if (!fr_model_kind_is_closed_form(kind) && l->evaluated) {
        fr_pool *pool = NULL;
        fr_err e = fr_pool_create(&pool, c->threads);
        const fr_dataset *tr = s->train ? s->train : fr_data_train(s->data);
        const fr_dataset *te = s->test ? s->test : fr_data_test(s->data);
        if (!e) e = fr_run_baseline(kind, tr, te, fr_data_negatives(s->data), &c->loop.eval, pool, &bk, &base);
        fr_pool_free(pool);
        if (e) return cli_fail(e, "train: the baseline");
        has_base = true;
    }

    char m[160], v[96];
    printf("summary: %s %s on %s: %u %s%s in %.1f s (training %.1f s)\n", c->centralized ? "centralized" : "federated",
           fr_model_kind_name(kind), fr_data_describe(s->data), l->completed, unit, cli_s(l->completed),
           s->seconds, s->train_seconds);
    if (s->chosen) printf("  model %s chosen from the data: %s\n", fr_model_kind_name(kind), s->chosen);
    float alpha = cli_confidence_alpha(c, s->data);
    if (alpha > 0)
        printf("  positives weighted by their counts: confidence 1 + %g·log(1 + weight) (--confidence-alpha)\n",
               (double)alpha);
    if (l->evaluated) {
        cli_metrics_text(&l->last, m, sizeof m);
        char at[32];
        snprintf(at, sizeof at, "(%s %u)", unit, l->completed);
        if (l->stop != FR_LOOP_DONE) printf("  final %-13s %s  (stopped early: %s)\n", at, m, fr_loop_stop_name(l->stop));
        else printf("  final %-13s %s\n", at, m);
    }
    /* "best" only when it beats the final step: a tie (the first of equal steps is the
     * best one recorded) would name an earlier step as if the run had lost ground */
    bool lower = false;
    double fin = l->evaluated ? fr_loop_main_metric(&l->last, &lower, NULL) : NAN;
    bool better = isnan(fin) || (lower ? l->best < fin : l->best > fin);
    if (l->best_step && l->best_step != l->completed && better) {
        cli_metrics_text(&l->best_eval, m, sizeof m);
        char at[32];
        snprintf(at, sizeof at, "(%s %u)", unit, l->best_step);
        printf("  best  %-13s %s\n", at, m);
    }
    if (has_base) {
        cli_metrics_text(&base, m, sizeof m);
        versus(&l->last, &base, v, sizeof v);
        printf("  baseline %-10s %s  (%s on the same split%s%s)\n", fr_model_kind_name(bk), m,
               fr_model_kind_is_explicit(bk) ? "mean + user and item biases" : "most popular", v[0] ? "; " : "", v);
    }
    if (!c->centralized && fr_fl_dp_on(&c->fl)) {
        double delta = fr_fl_dp_delta(&c->fl, fr_dataset_n_users(fr_data_train(s->data)));
        char eps[32];
        if (isfinite(l->epsilon)) snprintf(eps, sizeof eps, "%.4g", l->epsilon);
        else snprintf(eps, sizeof eps, "%s", isinf(l->epsilon) ? "infinite (no noise)" : "unknown");
        printf("  privacy: user-level (ε = %s, δ = %.3g) after %u round%s: noise σ %g, clip %s%g, Poisson rate %.4g\n",
               eps, delta, l->completed, cli_s(l->completed), c->fl.dp_noise, c->fl.dp_quantile > 0 ? "adaptive from " : "",
               c->fl.dp_clip, fr_fl_dp_rate(&c->fl, fr_dataset_n_users(fr_data_train(s->data))));
        if (l->stop == FR_LOOP_PRIVACY)
            printf("  stopped at the privacy budget: round %u would have spent more than ε %g\n", l->completed + 1,
                   c->loop.target_epsilon);
    }
    if (fr_model_kind_is_closed_form(kind))
        printf("  baseline: this model (%s is what %s models are held against)\n", fr_model_kind_name(kind),
               fr_model_kind_is_explicit(kind) ? "rating" : "ranking");
    if (s->out) printf("  model: %s (for fedrec eval and fedrec recommend --model)\n", s->out);
    else printf("  model: not saved (no --out)\n");
    if (s->checkpoint)
        printf("  checkpoint: %s (the federation's state after round %u, for --resume)\n", s->checkpoint, l->completed);
    cli_flush_stdout();
    if (metrics) {
        errno = 0;
        if (json_record(metrics, s, unit, has_base, bk, &base)) {
            *err = errno ? errno : EIO;
            return 1;
        }
    }
    return 0;
}
