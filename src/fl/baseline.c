/* The baseline of a run (fr_run_baseline, include/fedrec/run.h): the closed-form model a
 * trained model is held against on the same split, bias for rating models and pop for
 * ranking models, fitted and evaluated in-process. It reuses the model layer's fit and the
 * one evaluation (fr_model_evaluate), so its figures are what `fedrec train --model
 * bias|pop --centralized` reports on the same data. */
#include "core/core.h"
#include "fedrec/run.h"

fr_err fr_run_baseline(fr_model_kind kind, const fr_dataset *train, const fr_dataset *test, const fr_negatives *negs,
                       const fr_eval_opts *o, fr_pool *pool, fr_model_kind *baseline, fr_eval_result *r) {
    if (!train || !test || !r) return fri_fail(FR_ERR_INVALID, "fr_run_baseline: no data or no result");
    fr_model_kind b = fr_model_kind_is_explicit(kind) ? FR_MODEL_BIAS : FR_MODEL_POP;
    if (baseline) *baseline = b;
    fr_model_config mc;
    fr_model_config_default(&mc, b);
    mc.n_users = fr_dataset_n_users(train);
    mc.n_items = fr_dataset_n_items(train);
    if (fr_dataset_n_users(test) > mc.n_users) mc.n_users = fr_dataset_n_users(test);
    if (fr_dataset_n_items(test) > mc.n_items) mc.n_items = fr_dataset_n_items(test);
    fr_model *m = NULL;
    fr_err e = fr_model_create(&m, &mc);
    if (!e) e = fr_model_fit(m, train, NULL);
    if (!e) e = fr_model_evaluate(m, train, test, negs, o, pool, r);
    fr_model_free(m);
    return e ? fri_fail_prefix(e, "baseline %s", fr_model_kind_name(b)) : FR_OK;
}
