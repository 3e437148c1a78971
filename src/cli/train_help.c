/* The per-model defaults of `fedrec train --help` (see train_help.h). Every value comes
 * from fr_run_config_preset at the time the help is printed; a model kind registered
 * later gets its row without a change here. */
#include "cli/train_help.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "fedrec/run.h"

bool cli_dim_applies(const fr_model_config *cfg) {
    fr_model_config a = *cfg, b = *cfg;
    a.n_users = b.n_users = a.n_items = b.n_items = 1;
    a.dim = 2;
    b.dim = 3;
    fr_model *ma = NULL, *mb = NULL;
    bool applies = true; /* when in doubt, show it */
    if (fr_model_create(&ma, &a) == FR_OK && fr_model_create(&mb, &b) == FR_OK)
        applies = fr_model_n_params(ma) != fr_model_n_params(mb);
    fr_model_free(ma);
    fr_model_free(mb);
    return applies;
}

bool cli_has_bias_rows(const fr_model_config *cfg) {
    fr_model_config c = *cfg;
    c.n_users = c.n_items = 1;
    fr_model *m = NULL;
    if (fr_model_create(&m, &c) != FR_OK) return true; /* when in doubt, allow it */
    bool has = false;
    for (int t = 0; t < fr_model_n_tensors(m); t++) {
        const fr_tensor *x = fr_model_tensor(m, t);
        has |= (x->kind == FR_TENSOR_USER_TABLE || x->kind == FR_TENSOR_ITEM_TABLE) && x->cols == 1 &&
               strstr(x->name, "bias") != NULL;
    }
    fr_model_free(m);
    return has;
}

/* "adam 0.006" */
static const char *optim_text(const fr_optim_config *o, char *buf, size_t n) {
    snprintf(buf, n, "%s %g", fr_optim_kind_name(o->kind), (double)o->lr);
    return buf;
}

static const char *dim_text(const fr_model_config *mc, char *buf, size_t n) {
    if (cli_dim_applies(mc)) snprintf(buf, n, "%u", mc->dim);
    else snprintf(buf, n, "-");
    return buf;
}

static const char *neg_text(const fr_model_config *mc, uint32_t neg, char *buf, size_t n) {
    if (mc->loss == FR_LOSS_MSE || mc->loss == FR_LOSS_CE) snprintf(buf, n, "-"); /* no sampled negative */
    else snprintf(buf, n, "%u", neg);
    return buf;
}

/* "sum, sgd 0.8 x0.96/round" */
static const char *items_text(const fr_fl_config *fc, char *buf, size_t n) {
    char o[48];
    int k = snprintf(buf, n, "%s, %s", fc->item_sum ? "sum" : fc->row_norm ? "rows" : "mean",
                     fc->item_local.kind ? optim_text(&fc->item_local, o, sizeof o) : "as the rest");
    if (fc->item_lr_decay != 1.0f && k > 0 && (size_t)k < n)
        snprintf(buf + k, n - (size_t)k, " x%g/round", (double)fc->item_lr_decay);
    return buf;
}

/* The biases' own L2 ("=l2" when 0); "-" for a model without user and item biases. */
static const char *bias_text(const fr_model_config *mc, char *buf, size_t n) {
    if (!cli_has_bias_rows(mc)) snprintf(buf, n, "-");
    else if (mc->bias_l2 == 0) snprintf(buf, n, "=l2");
    else snprintf(buf, n, "%g", (double)mc->bias_l2);
    return buf;
}

/* The training loss of a model's config: "warp 10 (up to 10 draws a positive)", "bpr" ... */
const char *cli_loss_text(const fr_model_config *mc, char *buf, size_t n) {
    if (mc->warp > 0) snprintf(buf, n, "warp %u (up to %u draw%s a positive)", mc->warp, mc->warp, cli_s(mc->warp));
    else snprintf(buf, n, "%s", mc->loss == FR_LOSS_MSE ? "mse" : mc->loss == FR_LOSS_BCE ? "bce"
                                : mc->loss == FR_LOSS_CE  ? "ce" : "bpr");
    return buf;
}

static const char *clients_text(double c, char *buf, size_t n) {
    if (c == 0) snprintf(buf, n, "all");
    else snprintf(buf, n, "%g", c);
    return buf;
}

void cli_train_defaults_help(const char *preset) {
    if (!preset) preset = "fedrec";
    printf("\ndefaults of the %s preset, per model (options given apply over them; 'fedrec train --preset %s "
           "--help' shows the other preset's):\n",
           preset, strcmp(preset, "fedrec") ? "fedrec" : "textbook");
    printf("  %-13s %4s %6s %3s %5s %3s %-7s %-7s %-13s %-28s %-9s %s\n", "federated", "dim", "rounds", "E", "batch",
           "neg", "l2", "bias-l2", "optimizer", "item rows: aggregate, step", "strategy", "clients/round");
    for (int k = 1; k < 256; k++) {
        const char *name = fr_model_kind_name((fr_model_kind)k);
        if (!strcmp(name, "?")) break;
        fr_run_config c;
        if (fr_run_config_preset(&c, preset, (fr_model_kind)k, false, NULL)) continue;
        if (fr_model_kind_is_central_only((fr_model_kind)k) || fr_model_kind_is_closed_form((fr_model_kind)k)) {
            printf("  %-13s (centralized only: %s)\n", name,
                   fr_model_kind_is_closed_form((fr_model_kind)k) ? "a baseline fitted in one pass over every user's data"
                                                                  : "each step reads every user's items");
            continue;
        }
        char d[16], ng[16], o[48], it[64], cl[24], bl[16];
        printf("  %-13s %4s %6u %3u %5u %3s %-7g %-7s %-13s %-28s %-9s %s\n", name, dim_text(&c.model, d, sizeof d),
               c.loop.steps, c.fl.local_epochs, c.fl.batch, neg_text(&c.model, c.fl.negatives, ng, sizeof ng),
               (double)c.model.l2, bias_text(&c.model, bl, sizeof bl), optim_text(&c.fl.local, o, sizeof o), items_text(&c.fl, it, sizeof it),
               fr_strategy_name(c.fl.strategy), clients_text(c.fl.clients_per_round, cl, sizeof cl));
    }
    for (int k = 1; k < 256; k++) { /* rounds sized from the data */
        const char *name = fr_model_kind_name((fr_model_kind)k);
        if (!strcmp(name, "?")) break;
        fr_run_config c;
        if (fr_run_config_preset(&c, preset, (fr_model_kind)k, false, NULL) || !(c.fl_epochs > 0)) continue;
        printf("  (%s: the rounds are %g epochs' worth of clients, ceil(%g x clients / %g), from the data: %u on\n"
               "  943 users, %u on 2999; --rounds sets them)\n",
               name, c.fl_epochs, c.fl_epochs, c.fl.clients_per_round, fr_run_fl_rounds(&c, 943), fr_run_fl_rounds(&c, 2999));
    }
    printf("  %-13s %4s %6s %5s %3s %-7s %-7s %-13s %s\n", "centralized", "dim", "epochs", "batch", "neg", "l2",
           "bias-l2", "optimizer", "lr-decay");
    for (int k = 1; k < 256; k++) {
        const char *name = fr_model_kind_name((fr_model_kind)k);
        if (!strcmp(name, "?")) break;
        fr_run_config c;
        if (fr_run_config_preset(&c, preset, (fr_model_kind)k, true, NULL)) continue;
        char d[16], ng[16], o[48], bl[16];
        bias_text(&c.model, bl, sizeof bl);
        printf("  %-13s %4s %6u %5u %3s %-7g %-7s %-13s %g\n", name, dim_text(&c.model, d, sizeof d), c.loop.steps,
               c.train.batch, neg_text(&c.model, c.train.negatives, ng, sizeof ng), (double)c.model.l2, bl,
               optim_text(&c.train.optim, o, sizeof o), c.lr_decay);
    }
    for (int k = 1; k < 256; k++) { /* a dropout sized from the data (centralized sasrec) */
        const char *name = fr_model_kind_name((fr_model_kind)k);
        if (!strcmp(name, "?")) break;
        const double nm = sqrt(FR_RUN_SASREC_N_SMALL * FR_RUN_SASREC_N_LARGE); /* halfway on the log scale */
        fr_run_config a, b, m, f;
        fr_run_data_stats sa = {.interactions = (uint64_t)FR_RUN_SASREC_N_SMALL},
                          sb = {.interactions = (uint64_t)FR_RUN_SASREC_N_LARGE}, sm = {.interactions = (uint64_t)nm};
        if (fr_run_config_preset_stats(&a, preset, (fr_model_kind)k, true, &sa) ||
            fr_run_config_preset_stats(&b, preset, (fr_model_kind)k, true, &sb) ||
            fr_run_config_preset_stats(&m, preset, (fr_model_kind)k, true, &sm) ||
            fr_run_config_preset_stats(&f, preset, (fr_model_kind)k, false, &sm) || a.model.dropout == b.model.dropout)
            continue;
        printf("  (%s centralized: %s blocks, dropout from the data's size: %.3g up to %g training interactions, "
               "%.3g at %.0f,\n  %.3g from %g (log-linear between); federated: %s blocks, dropout %.3g; --norm and "
               "--dropout set them)\n",
               name, a.model.post_norm ? "post-norm" : "pre-norm", (double)a.model.dropout, FR_RUN_SASREC_N_SMALL,
               (double)m.model.dropout, nm, (double)b.model.dropout, FR_RUN_SASREC_N_LARGE,
               f.model.post_norm ? "post-norm" : "pre-norm", (double)f.model.dropout);
    }
    for (int k = 1; k < 256; k++) { /* the losses that are not the kind's one (--warp) */
        const char *name = fr_model_kind_name((fr_model_kind)k);
        if (!strcmp(name, "?")) break;
        fr_run_config cc, cf;
        if (!fr_model_kind_uses_features((fr_model_kind)k) || fr_run_config_preset(&cc, preset, (fr_model_kind)k, true, NULL) ||
            fr_run_config_preset(&cf, preset, (fr_model_kind)k, false, NULL))
            continue;
        char lc[64], lf[64];
        printf("  %-13s loss: centralized %s, federated %s (--warp N sets it; 0 = bpr)\n", name,
               cli_loss_text(&cc.model, lc, sizeof lc), cli_loss_text(&cf.model, lf, sizeof lf));
        fr_run_config cb = cc;
        fr_run_config_preset_warp(&cb, 0);
        if (cc.model.warp && (cb.train.optim.lr != cc.train.optim.lr || cb.model.l2 != cc.model.l2 ||
                              cb.train.neg_sampler != cc.train.neg_sampler)) {
            char ns[48] = "";
            if (cb.train.neg_sampler == FR_NEG_POPULARITY)
                snprintf(ns, sizeof ns, ", negatives --neg-sampler pop:%g",
                         cb.train.neg_pop_exp ? (double)cb.train.neg_pop_exp : 1.0);
            printf("  %-13s bpr (--warp 0), centralized: lr %g, l2 %g%s\n", name, (double)cb.train.optim.lr,
                   (double)cb.model.l2, ns);
        }
    }
    printf("  (mf's global mean comes from the training data; '-': the option does not apply to the model)\n");
    printf("  implicit counts (--implicit-weight, or a column headed weight, count, plays ...): the ranking models\n"
           "  count a positive of weight w with confidence 1 + α·log(1 + w), α = --confidence-alpha (default %g;\n"
           "  0 = every positive alike); its sampled negatives count 1\n",
           (double)FR_RUN_CONFIDENCE_ALPHA);
    printf("\nsimulated attacks and faults (federated):\n"
           "  --attack promote:ITEM:F | promote-pop:ITEM:F  fake users (a share F of all clients) push item ITEM\n"
           "      (its id as in the data file) into the real users' top-10 (popularity-blind or towards the\n"
           "      20 most popular items);\n"
           "      the metrics gain er@10: the share of real users not trained on ITEM with it in their top-10\n"
           "  --attack scale:X:F | signflip:F | noise:S:F  a share F of the existing clients sends its update\n"
           "      times X, negated, or Gaussian noise of std S\n"
           "  --crash-rate P, --straggler P[:X] --deadline S, --over-select O: clients crash, straggle in\n"
           "      simulated time against a round deadline; a round short of max(1, --min-results) results\n"
           "      is retried (--max-attempts), never half-applied\n");
}
