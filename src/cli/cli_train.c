/* fedrec train: parse the options, load the data (the library's data-source rules,
 * fr_data_load), start from a preset (fr_run_config_preset) and apply the options over
 * it, run (fr_run: the library's training loop, federated on the `sim` runtime or
 * centralized), print progress from the loop's callback, write --metrics-out (one JSON
 * object per round or epoch, fr_loop_step_json), and save the model with its provenance
 * (fedrec/run.h), so `fedrec eval` and `fedrec recommend` load the same data again.
 * A federated run checkpoints to <out>.ckpt (fedrec-train.ckpt without --out) every
 * --checkpoint-every rounds and at the end, and --resume continues from it; nothing is
 * written without --out, --checkpoint-every or --resume. Only this layer prints. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/args.h"
#include "cli/choose.h"
#include "cli/cli.h"
#include "cli/embed.h"
#include "cli/features.h"
#include "cli/load_opts.h"
#include "cli/plot.h"
#include "cli/progress.h"
#include "cli/summary.h"
#include "cli/train_help.h"
#include "cli/train_opts.h"
#include "fedrec/run.h"
#include "fedrec/runtime.h"

/* The embedded run in progress (cli_train_embedded), or NULL: the command itself. */
static cli_train_embed *embed;

/* ------------------------------------------------------------------ options -> run config */

/* A usage error of fedrec o->cmd (train, or server for the options they share). */
static int usage_err(const cli_train_opts *o, const char *fmt, const char *a) {
    fprintf(stderr, "fedrec %s: ", o->cmd ? o->cmd : "train");
    fprintf(stderr, fmt, a);
    fputc('\n', stderr);
    return 2;
}

/* Whether the user gave the option of field f of o. */
#define GIVEN(f) args_seen(specs, &o->f)

static int parse_sim_opts(const cli_train_opts *o, const arg_spec *specs);

/* Options of one mode only (by their names in the specs). */
static const char *const federated_only[] = {
    "rounds", "clients-per-round", "local-epochs", "strategy", "item-agg", "item-optimizer", "item-lr",
    "item-lr-decay", "server-lr", "server-momentum", "mu", "tau", "beta1", "beta2", "availability",
    "min-results", "partition", "keep-private-optim", "secagg", "hide-items", "private", "compress",
    "compress-down", "aggregator", "attack", "crash-rate", "straggler", "deadline", "over-select", "client-speed",
    "max-attempts", NULL};

/* The options of differential privacy (federated only; all but --dp-clip need it). */
static const char *const dp_opts[] = {"dp-clip", "dp-noise", "dp-delta", "target-epsilon", "ldp-noise",
                                      "dp-seeded-noise", NULL};

/* --dp-clip: C (> 0), or adaptive[:γ[:C0]] (γ in (0, 1), default 0.5; C0 > 0, default 0.1).
 * 0, or 2 after printing (as command cmd: "train", "server"). */
static int parse_dp_clip(const char *cmd, const char *s, double *clip, double *quantile) {
    char *end;
    *quantile = 0;
    if (!strncmp(s, "adaptive", 8) && (s[8] == 0 || s[8] == ':')) {
        *quantile = 0.5;
        *clip = 0.1;
        const char *p = s + 8;
        if (*p == ':') {
            *quantile = strtod(p + 1, &end);
            if (end == p + 1 || !(*quantile > 0 && *quantile < 1) || (*end && *end != ':')) goto bad;
            p = end;
            if (*p == ':') {
                *clip = strtod(p + 1, &end);
                if (end == p + 1 || *end || !(*clip > 0 && *clip <= 65536)) goto bad;
            }
        }
        return 0;
    }
    *clip = strtod(s, &end);
    if (end != s && !*end && *clip > 0 && *clip <= 65536) return 0;
bad:
    fprintf(stderr, "fedrec %s: --dp-clip: expected a clip C in (0, 65536] or adaptive[:γ[:C0]] (0 < γ < 1, the "
            "quantile of the update norms C adapts to; C0 > 0 the first round's clip), got '%s'\n", cmd, s);
    return 2;
}

/* --hide-items: what the server may learn of which items a user touched.
 *   none        sparse rows as they are (the server sees every row a client touched)
 *   dense       secure aggregation over the whole shared prefix (the server sees sums only)
 *   decoys[:R]  R decoy items per interaction (default 1) with pseudo-gradients
 *   ldp[:σ]     FedGNN: decoys (1 per interaction) and local-DP noise σ·C (default 0.05) on
 *               every value, clipped to C (--dp-clip, default 1)
 * 0, or 2 after printing. */
enum { HIDE_NONE, HIDE_DENSE, HIDE_DECOYS, HIDE_LDP };
#define HIDE_LDP_NOISE 0.05
static int parse_hide(const cli_train_opts *o, const char *s, int *mode, double *arg) {
    char *end;
    *arg = 0;
    if (!strcmp(s, "none")) { *mode = HIDE_NONE; return 0; }
    if (!strcmp(s, "dense")) { *mode = HIDE_DENSE; return 0; }
    const char *p = NULL;
    if (!strncmp(s, "decoys", 6) && (s[6] == 0 || s[6] == ':')) { *mode = HIDE_DECOYS; *arg = 1; p = s + 6; }
    else if (!strncmp(s, "ldp", 3) && (s[3] == 0 || s[3] == ':')) { *mode = HIDE_LDP; *arg = HIDE_LDP_NOISE; p = s + 3; }
    if (p && *p == 0) return 0;
    if (p && *p == ':') {
        *arg = strtod(p + 1, &end);
        double hi = *mode == HIDE_DECOYS ? FR_FL_MAX_DECOYS : 16777216;
        if (end != p + 1 && !*end && *arg > 0 && *arg <= hi) return 0;
    }
    return usage_err(o, "--hide-items: expected none, dense, decoys[:R] (0 < R <= 100 decoy items per interaction) or "
                     "ldp[:σ] (σ > 0, local noise σ·C), got '%s'", s);
}

/* The first option of names the user gave, or NULL. */
static const char *first_given(const arg_spec *specs, const char *const *names) {
    for (const char *const *n = names; *n; n++)
        for (const arg_spec *s = specs; s->name; s++)
            if (s->seen && !strcmp(s->name, *n)) return *n;
    return NULL;
}

int cli_dp_check(const char *cmd, const cli_train_opts *o, const arg_spec *specs) {
    const char *dpo = first_given(specs, dp_opts);
    if (dpo && !o->dp_clip) {
        fprintf(stderr, "fedrec %s: --%s needs --dp-clip C|adaptive (the noise is a multiple of the clip C)\n", cmd, dpo);
        return 2;
    }
    double clip, q;
    if (o->dp_clip && parse_dp_clip(cmd, o->dp_clip, &clip, &q)) return 2;
    if (o->dp_clip && GIVEN(target_epsilon) && !(o->dp_noise > 0)) {
        fprintf(stderr, "fedrec %s: --target-epsilon needs --dp-noise σ > 0 (without noise ε is infinite)\n", cmd);
        return 2;
    }
    return 0;
}

/* One of none, q8, q16 as an fr_compress; -1 if it is none of them. */
static int compress_mode(const char *s, size_t n) {
    if (n == 4 && !strncmp(s, "none", 4)) return FR_COMPRESS_NONE;
    if (n == 2 && !strncmp(s, "q8", 2)) return FR_COMPRESS_Q8;
    if (n == 3 && !strncmp(s, "q16", 3)) return FR_COMPRESS_Q16;
    return -1;
}

int cli_compress(const char *cmd, const cli_train_opts *o, bool secagg, fr_fl_config *fc) {
    int up = FR_COMPRESS_NONE, down = FR_COMPRESS_NONE;
    unsigned long long k = 0;
    if (o->compress) { /* comma-separated: none | q8 | q16 | topk:K */
        const char *p = o->compress;
        int seen_q = 0, seen_k = 0;
        for (;;) {
            size_t n = strcspn(p, ",");
            int m = compress_mode(p, n);
            if (m >= 0 && !seen_q) { up = m; seen_q = 1; }
            else if (n > 5 && !strncmp(p, "topk:", 5) && !seen_k) {
                char *end;
                k = strtoull(p + 5, &end, 10);
                if (end != p + n || p[5] == '-' || k < 1 || k > UINT32_MAX) goto bad_up;
                seen_k = 1;
            } else goto bad_up;
            if (!p[n]) break;
            p += n + 1;
        }
    }
    if (o->compress_down && (down = compress_mode(o->compress_down, strlen(o->compress_down))) < 0) {
        fprintf(stderr, "fedrec %s: --compress-down: expected none, q8 or q16, got '%s'\n", cmd, o->compress_down);
        return 2;
    }
    bool dp = o->dp_clip || (o->hide_items && !strncmp(o->hide_items, "ldp", 3));
    if ((up || k) && dp) {
        fprintf(stderr, "fedrec %s: --compress with differential privacy: the server checks each clipped update's "
                "norm exactly and the noise is calibrated to it, which a quantized or sparsified update no longer "
                "keeps (--compress-down is allowed: the broadcast model is public)\n", cmd);
        return 2;
    }
    if ((up || k) && secagg) {
        fprintf(stderr, "fedrec %s: --compress with secure aggregation: pairwise masks cancel only in a sum of words at "
                "the same positions, which per-client scales and top-k positions are not (--compress-down is "
                "allowed)\n", cmd);
        return 2;
    }
    if (fc) {
        fc->compress_up = (uint32_t)up;
        fc->compress_topk = (uint32_t)k;
        fc->compress_down = (uint32_t)down;
    }
    return 0;
bad_up:
    fprintf(stderr, "fedrec %s: --compress: expected none, q8, q16, topk:K (K >= 1 dense values) or topk:K,q8|q16, "
            "got '%s'\n", cmd, o->compress);
    return 2;
}

int cli_aggregator_check(const cli_train_opts *o) {
    if (o->aggregator) { /* its form, then what it cannot be combined with */
        fr_fl_config ac;
        memset(&ac, 0, sizeof ac);
        if (fr_aggregator_parse(o->aggregator, &ac)) return usage_err(o, "--aggregator: %s", fr_errmsg());
        bool hidden = o->secagg || o->private_mode || (o->hide_items && !strcmp(o->hide_items, "dense"));
        bool dp = o->dp_clip || (o->hide_items && !strncmp(o->hide_items, "ldp", 3));
        if (ac.aggregator == FR_AGG_NORMCLIP && ac.agg_clip == 0 && hidden)
            return usage_err(o, "--aggregator %s with secure aggregation (--secagg, --private, --hide-items dense): the "
                             "median norm needs each client's update, and the server sees only their masked sum (give "
                             "a bound, normclip:C: each client then clips itself before masking)", o->aggregator);
        if (ac.aggregator != FR_AGG_FEDAVG && ac.aggregator != FR_AGG_NORMCLIP && hidden)
            return usage_err(o, "--aggregator %s with secure aggregation (--secagg, --private, --hide-items dense): a "
                             "robust rule needs each client's update, and the server sees only their masked sum (use "
                             "fedavg, or normclip:C, which the clients apply before masking)", o->aggregator);
        if (ac.aggregator != FR_AGG_FEDAVG && dp)
            return usage_err(o, "--aggregator %s with differential privacy (--dp-clip, --hide-items ldp): the noise is "
                             "calibrated to the sum of clipped updates, not to a robust statistic (DP-FedAvg already "
                             "bounds each update's norm; use fedavg)", o->aggregator);
        if ((ac.aggregator == FR_AGG_ROWTRIM || ac.aggregator == FR_AGG_ROWGUARD) && o->hide_items &&
            !strncmp(o->hide_items, "decoys", 6))
            return usage_err(o, "--aggregator %s with --hide-items decoys: each decoy row would count among its row's "
                             "contributors (use median or trimmed)", o->aggregator);
    }
    return 0;
}

/* --neg-sampler S: uniform | pop | pop:B (0 < B <= 4); *b is 0 (read as 1) unless B is
 * given, and 0 for uniform. 0, or -1 for anything else. */
static int neg_sampler_opt(const char *s, fr_neg_sampler *k, float *b) {
    *b = 0;
    const char *colon = strchr(s, ':');
    if (!colon) return fr_neg_sampler_parse(s, k) ? -1 : 0;
    if ((size_t)(colon - s) != 3 || strncmp(s, "pop", 3)) return -1;
    char *end;
    double v = strtod(colon + 1, &end);
    if (end == colon + 1 || *end || !(v > 0 && v <= 4)) return -1;
    *k = FR_NEG_POPULARITY;
    *b = (float)v;
    return 0;
}

/* The checks the parser cannot make (one value's range is the parser's): names, options
 * that belong to the other mode, to another strategy or to another kind of model.
 * Returns 0, or 2 after printing. */
int cli_train_check(const cli_train_opts *o, const arg_spec *specs, fr_model_kind kind) {
    fr_optim_kind ok;
    if (o->optimizer && fr_optim_kind_parse(o->optimizer, &ok))
        return usage_err(o, "--optimizer: expected sgd, adam or adagrad, got '%s'", o->optimizer);
    if (o->item_optimizer && strcmp(o->item_optimizer, "same") && fr_optim_kind_parse(o->item_optimizer, &ok))
        return usage_err(o, "--item-optimizer: expected same, sgd, adam or adagrad, got '%s'", o->item_optimizer);
    if (o->item_agg && strcmp(o->item_agg, "mean") && strcmp(o->item_agg, "rows") && strcmp(o->item_agg, "sum"))
        return usage_err(o, "--item-agg: expected mean, rows or sum, got '%s'", o->item_agg);
    fr_strategy st;
    if (o->strategy && fr_strategy_parse(o->strategy, &st))
        return usage_err(o, "--strategy: expected fedavg, fedavgm, fedprox, fedadam, fedyogi or fedadagrad, got '%s'",
                         o->strategy);
    if (o->partition && fr_partition_parse(o->partition, NULL, NULL, NULL))
        return usage_err(o, "--partition: expected user, iid:K or dirichlet:K[:ALPHA] (K >= 1 silos, ALPHA > 0), got '%s'",
                         o->partition);
    if (cli_aggregator_check(o)) return 2;
    const char *dpo = first_given(specs, dp_opts);
    if (dpo && o->centralized)
        return usage_err(o, "--%s is user-level differential privacy for federated training (DP-FedAvg: each client's "
                         "update clipped and the sum noised); --centralized has no client updates to protect", dpo);
    if (cli_dp_check(o->cmd ? o->cmd : "train", o, specs)) return 2;
    if (o->dp_clip) {
        if (o->partition && strcmp(o->partition, "user"))
            return usage_err(o, "--partition %s with --dp-clip: the guarantee is user-level, one user per client; a "
                             "silo's update mixes many users (use --partition user)", o->partition);
        if (o->item_agg && !strcmp(o->item_agg, "rows"))
            return usage_err(o, "%s", "--item-agg rows with --dp-clip: each row's divisor would count the clients "
                             "that touched it, which the guarantee does not cover (use mean or sum)");
        if (GIVEN(availability) && o->availability < 1)
            return usage_err(o, "%s", "--availability < 1 with --dp-clip: the accountant assumes every client is "
                             "sampled with probability q (Poisson); use --clients-per-round for q");
        if (GIVEN(min_results) && o->min_results > 0)
            return usage_err(o, "%s", "--min-results with --dp-clip: a round retried for too few results would reveal "
                             "how many took part");
    }
    if (o->hide_items || o->private_mode) {
        int hm = HIDE_DENSE;
        double ha;
        if (o->hide_items && o->private_mode)
            return usage_err(o, "%s", "--private is --hide-items dense: give one of them");
        if (o->hide_items && parse_hide(o, o->hide_items, &hm, &ha)) return 2;
        const char *hn = o->private_mode ? "--private" : "--hide-items";
        if (hm == HIDE_NONE && o->secagg)
            return usage_err(o, "%s", "--hide-items none with --secagg: secure aggregation hides every row (that is "
                             "--hide-items dense)");
        if ((hm == HIDE_DECOYS || hm == HIDE_LDP) && o->secagg)
            return usage_err(o, "--hide-items %s with --secagg: under secure aggregation the server sees no row, so decoys "
                             "and local noise only cost accuracy (use --hide-items dense)", o->hide_items);
        if ((hm == HIDE_DECOYS || hm == HIDE_LDP) && o->item_agg && !strcmp(o->item_agg, "rows"))
            return usage_err(o, "--hide-items %s with --item-agg rows: each decoy would count in its row's divisor (use "
                             "mean or sum)", o->hide_items);
        if (hm == HIDE_LDP && GIVEN(ldp_noise))
            return usage_err(o, "%s", "--hide-items ldp[:σ] sets the local noise: drop --ldp-noise");
        if (hm != HIDE_LDP && GIVEN(ldp_noise))
            return usage_err(o, "--ldp-noise with %s other than ldp: use --hide-items ldp:σ", hn);
        if (hm == HIDE_LDP && !o->dp_clip && (GIVEN(dp_noise) || GIVEN(dp_delta) || GIVEN(target_epsilon)))
            return usage_err(o, "%s", "--hide-items ldp clips to C 1 by default; with central DP options give --dp-clip");
    }
    if (o->centralized) {
        if (o->resume || GIVEN(checkpoint_every))
            return usage_err(o, "%s applies to federated training; centralized runs do not checkpoint",
                             o->resume ? "--resume" : "--checkpoint-every");
        const char *fed = first_given(specs, federated_only);
        if (fed) return usage_err(o, "--%s applies to federated training, not --centralized", fed);
    } else {
        if (GIVEN(epochs))
            return usage_err(o, "%s", "--epochs applies to --centralized training; federated training runs --rounds");
        if (GIVEN(lr_decay))
            return usage_err(o, "%s", "--lr-decay applies to --centralized training; federated item rows use --item-lr-decay");
        /* the server's knobs belong to their strategies (the preset's when not given) */
        fr_run_config pc;
        if (fr_run_config_preset(&pc, o->preset, kind, false, NULL) == FR_OK) {
            if (o->strategy && fr_strategy_parse(o->strategy, &pc.fl.strategy)) return 2; /* checked above */
            const char *sn = fr_strategy_name(pc.fl.strategy);
            bool adaptive = pc.fl.strategy == FR_STRATEGY_FEDADAM || pc.fl.strategy == FR_STRATEGY_FEDYOGI ||
                            pc.fl.strategy == FR_STRATEGY_FEDADAGRAD;
            const char *knob = GIVEN(server_momentum) && pc.fl.strategy != FR_STRATEGY_FEDAVGM ? "--server-momentum applies to --strategy fedavgm"
                               : GIVEN(mu) && pc.fl.strategy != FR_STRATEGY_FEDPROX ? "--mu applies to --strategy fedprox"
                               : (GIVEN(tau) || GIVEN(beta1)) && !adaptive
                                   ? "--tau and --beta1 apply to --strategy fedadam, fedyogi or fedadagrad"
                               : GIVEN(beta2) && pc.fl.strategy != FR_STRATEGY_FEDADAM && pc.fl.strategy != FR_STRATEGY_FEDYOGI
                                   ? "--beta2 applies to --strategy fedadam or fedyogi"
                                   : NULL;
            if (knob) {
                fprintf(stderr, "fedrec %s: %s, not %s\n", o->cmd ? o->cmd : "train", knob, sn);
                return 2;
            }
        }
    }
    fr_run_config pc;
    /* the model's own options, when --model is given (a default model may follow the data) */
    if (o->model && GIVEN(negatives_per_pos) && fr_run_config_preset(&pc, o->preset, kind, o->centralized, NULL) == FR_OK &&
        pc.model.loss == FR_LOSS_MSE)
        return usage_err(o, "--neg applies to ranking models (sampled negatives); %s learns from the ratings alone",
                         fr_model_kind_name(kind));
    if (o->model && GIVEN(negatives_per_pos) && fr_run_config_preset(&pc, o->preset, kind, o->centralized, NULL) == FR_OK &&
        pc.model.max_len > 0)
        return usage_err(o, "--neg does not apply to %s: it learns each position's next item against all items "
                         "(--loss ce, its default) or one sampled negative (--loss bce)", fr_model_kind_name(kind));
    if (o->model && (GIVEN(loss) || GIVEN(heads) || GIVEN(ffn) || GIVEN(dropout) || GIVEN(max_len) || GIVEN(seq_stride) || o->norm) &&
        fr_run_config_preset(&pc, o->preset, kind, o->centralized, NULL) == FR_OK && pc.model.max_len == 0) {
        fprintf(stderr, "fedrec %s: --%s applies to the sequence model (sasrec), not %s\n", o->cmd ? o->cmd : "train",
                GIVEN(loss) ? "loss" : GIVEN(heads) ? "heads" : GIVEN(ffn) ? "ffn" : GIVEN(dropout) ? "dropout"
                : GIVEN(max_len) ? "max-len" : GIVEN(seq_stride) ? "seq-stride" : "norm",
                fr_model_kind_name(kind));
        return 2;
    }
    if (o->model && GIVEN(seq_stride) && fr_run_config_preset(&pc, o->preset, kind, o->centralized, NULL) == FR_OK &&
        o->seq_stride > (GIVEN(max_len) ? o->max_len : pc.model.max_len)) {
        fprintf(stderr, "fedrec %s: --seq-stride %llu: expected 1..%llu (at most the history length, --max-len)\n",
                o->cmd ? o->cmd : "train", (unsigned long long)o->seq_stride,
                (unsigned long long)(GIVEN(max_len) ? o->max_len : pc.model.max_len));
        return 2;
    }
    fr_neg_sampler nsamp;
    float nexp;
    if (o->neg_sampler && neg_sampler_opt(o->neg_sampler, &nsamp, &nexp))
        return usage_err(o, "--neg-sampler: expected uniform, pop or pop:B (an exponent 0 < B <= 4), got '%s'",
                         o->neg_sampler);
    if (o->model && o->neg_sampler && fr_run_config_preset(&pc, o->preset, kind, o->centralized, NULL) == FR_OK &&
        (pc.model.loss == FR_LOSS_MSE || pc.model.max_len > 0 || fr_model_kind_is_closed_form(kind)))
        return usage_err(o, "--neg-sampler applies to the models trained on sampled negatives (bpr, gmf, mlp, neumf, "
                         "lightgcn, lightfm, fm); %s draws none", fr_model_kind_name(kind));
    if (o->loss && strcmp(o->loss, "bce") && strcmp(o->loss, "ce"))
        return usage_err(o, "--loss: expected bce or ce, got '%s'", o->loss);
    if (o->norm && strcmp(o->norm, "pre") && strcmp(o->norm, "post"))
        return usage_err(o, "--norm: expected pre or post, got '%s'", o->norm);
    if (o->model && GIVEN(dim) && fr_run_config_preset(&pc, o->preset, kind, o->centralized, NULL) == FR_OK &&
        !cli_dim_applies(&pc.model))
        return usage_err(o, "--dim does not size any part of %s (its embeddings are set by its MLP layout)",
                         fr_model_kind_name(kind));
    if (GIVEN(layers) && !(o->model && fr_model_kind_is_central_only(kind)))
        return usage_err(o, "--layers sets the propagation depth of a whole-graph model (--model lightgcn-full); %s "
                         "has none to set (lightgcn, the federated form, propagates one user-side layer)",
                         o->model ? fr_model_kind_name(kind) : "the default model");
    if (o->model && GIVEN(bias_l2) && fr_run_config_preset(&pc, o->preset, kind, o->centralized, NULL) == FR_OK &&
        !cli_has_bias_rows(&pc.model))
        return usage_err(o, "--bias-l2 applies to models with user and item biases; %s has none", fr_model_kind_name(kind));
    /* the side-feature options belong to the kinds that read features (the default model
     * never does: mf or neumf) */
    const char *fopt = o->user_features ? "--user-features" : o->item_features ? "--item-features"
                       : GIVEN(warp)    ? "--warp" : o->cold_items ? "--cold-items" : NULL;
    if (fopt && !(o->model && fr_model_kind_uses_features(kind))) {
        char msg[400];
        snprintf(msg, sizeof msg, "%s applies to the models with side features, lightfm and fm; %s reads none%s", fopt,
                 o->model ? fr_model_kind_name(kind) : "the default model (chosen from the data)",
                 !strcmp(fopt, "--cold-items") ? " (a cold item, never trained, would have nothing to be ranked by)" : "");
        return usage_err(o, "%s", msg);
    }
    if (o->model && GIVEN(confidence_alpha) &&
        (fr_model_kind_is_explicit(kind) || fr_model_kind_is_closed_form(kind)))
        return usage_err(o, fr_model_kind_is_explicit(kind)
                             ? "--confidence-alpha weighs implicit positives by their counts; %s predicts ratings "
                               "(use a ranking model: bpr, gmf, mlp or neumf)"
                             : "--confidence-alpha weighs the positives of a model trained by gradient steps; %s is a "
                               "baseline fitted in closed form",
                         fr_model_kind_name(kind));
    if (o->model && o->negatives && fr_model_kind_is_explicit(kind))
        return usage_err(o, "--negatives applies to ranking models; %s is evaluated by RMSE on the test ratings",
                         fr_model_kind_name(kind));
    if (!o->cmd && parse_sim_opts(o, specs)) return 2;
    if (o->split && o->test) return usage_err(o, "%s", "--split applies to one ratings file; with --test the test set is given");
    struct stat sb;
    if (o->split && o->data && stat(o->data, &sb) == 0 && S_ISDIR(sb.st_mode))
        return usage_err(o, "--split applies to one ratings file; %s is a directory in NCF layout (split already)", o->data);
    if (o->test && !o->data) return usage_err(o, "%s", "--test needs --data (the training file)");
    return 0;
}

/* The simulated attack and faults of fedrec train (fr_run_config points at these). */
static fr_sim_attack cli_attack;
static fr_sim_faults cli_faults;
/* The raw item id an attack names (promote:ITEM:...), resolved against the training data
 * once it is loaded (resolve_items); "" when the attack names none. */
static char cli_attack_item[128];

/* Splits a promotion spec "KIND:ITEM:REST" into ITEM (copied into item) and the spec with
 * ITEM replaced by 0 (into buf), which fr_sim_attack_parse then checks: ITEM is a raw id
 * of the data file, looked up once the data is loaded. Returns the spec to parse. */
const char *cli_attack_spec_item(const char *spec, char *buf, size_t cap, char *item, size_t icap) {
    item[0] = 0;
    const char *c1 = strchr(spec, ':');
    if (!c1) return spec;
    size_t kl = (size_t)(c1 - spec);
    if (!((kl == 7 && !strncmp(spec, "promote", 7)) || (kl == 11 && !strncmp(spec, "promote-pop", 11)))) return spec;
    const char *c2 = strchr(c1 + 1, ':');
    size_t il = c2 ? (size_t)(c2 - c1 - 1) : strlen(c1 + 1);
    if (il >= icap) return spec; /* the parser names the bad ITEM; an empty one is refused after */
    memcpy(item, c1 + 1, il);
    item[il] = 0;
    snprintf(buf, cap, "%.*s:0%s", (int)kl, spec, c2 ? c2 : "");
    return buf;
}

/* "A[:B[:C]]" into up to 3 numbers; how many were read, or -1. */
static int numbers(const char *s, double *v, int max) {
    int n = 0;
    const char *p = s;
    for (;;) {
        char *end;
        if (n == max || !*p) return -1;
        v[n++] = strtod(p, &end);
        if (end == p || !isfinite(v[n - 1])) return -1;
        if (*end == 0) return n;
        if (*end != ':') return -1;
        p = end + 1;
    }
}

/* --attack and the fault options into cli_attack / cli_faults. 0, or 2 after printing. */
static int parse_sim_opts(const cli_train_opts *o, const arg_spec *specs) {
    memset(&cli_attack, 0, sizeof cli_attack);
    fr_sim_faults_default(&cli_faults);
    char spec[300];
    if (o->attack && fr_sim_attack_parse(cli_attack_spec_item(o->attack, spec, sizeof spec, cli_attack_item,
                                                          sizeof cli_attack_item), &cli_attack))
        return usage_err(o, "--attack: %s", fr_errmsg());
    if (fr_sim_attack_has_target(&cli_attack) && !cli_attack_item[0])
        return usage_err(o, "--attack '%s': ITEM: expected the target's item id as in the data file (at most 127 "
                         "characters)", o->attack);
    if (GIVEN(crash_rate)) cli_faults.crash_rate = o->crash_rate;
    if (GIVEN(deadline)) cli_faults.deadline = o->deadline;
    if (GIVEN(over_select)) cli_faults.over_select = o->over_select;
    if (GIVEN(max_attempts)) cli_faults.max_attempts = (uint32_t)o->max_attempts;
    double v[3];
    int n;
    if (o->straggler) {
        if ((n = numbers(o->straggler, v, 2)) < 1 || !(v[0] >= 0 && v[0] <= 1) || (n == 2 && !(v[1] >= 1 && v[1] <= 1e6)))
            return usage_err(o, "--straggler: expected P[:X], the share P in [0, 1] of a round's clients that are slow "
                             "and their slowdown X in [1, 1e6] (default 10), got '%s'", o->straggler);
        cli_faults.straggler_rate = v[0];
        if (n == 2) cli_faults.straggler_slowdown = v[1];
    }
    if (o->client_speed) {
        if ((n = numbers(o->client_speed, v, 3)) < 1 || !(v[0] > 0 && v[0] <= 1e3) || (n >= 2 && !(v[1] > 0)) ||
            (n == 3 && !(v[2] >= 0 && v[2] <= 1e6)))
            return usage_err(o, "--client-speed: expected SEC_PER_EXAMPLE[:BYTES_PER_S[:LATENCY_S]] with seconds in "
                             "(0, 1000], bytes/s > 0 and latency in [0, 1e6] s, got '%s'", o->client_speed);
        cli_faults.sec_per_example = v[0];
        if (n >= 2) cli_faults.bandwidth = v[1];
        if (n == 3) cli_faults.latency = v[2];
    }
    if ((o->straggler || o->client_speed) && !(cli_faults.deadline > 0))
        return usage_err(o, "%s", "--straggler and --client-speed shape the simulated time, which matters only "
                         "against a round deadline: add --deadline SECONDS");
    if (fr_sim_faults_on(&cli_faults) && (o->secagg || o->private_mode || (o->hide_items && !strcmp(o->hide_items, "dense"))))
        return usage_err(o, "%s", "simulated faults (--crash-rate, --deadline, --over-select) with secure aggregation: "
                         "its dropouts are the protocol's, not simulated");
    if (o->attack && o->dp_clip)
        return usage_err(o, "--attack %s with --dp-clip: the attack under DP's clip is not simulated", o->attack);
    if (o->attack && o->compress && strcmp(o->compress, "none"))
        return usage_err(o, "--attack %s with --compress: the attack under uplink compression is not simulated", o->attack);
    if (o->attack && o->partition && strcmp(o->partition, "user"))
        return usage_err(o, "--attack %s with --partition: attacks are simulated with one user per client", o->attack);
    return 0;
}

/* The options given over the preset. Returns 0, or 2 after printing. */
int cli_train_overrides(const cli_train_opts *o, const arg_spec *specs, fr_run_config *c) {
    fr_model_config *mc = &c->model;
    if (GIVEN(dim)) mc->dim = (uint32_t)o->dim;
    if (GIVEN(layers)) mc->n_layers = (uint32_t)o->layers;
    if (GIVEN(l2)) mc->l2 = (float)o->l2;
    if (GIVEN(bias_l2)) mc->bias_l2 = (float)o->bias_l2;
    if (o->loss) mc->loss = strcmp(o->loss, "ce") ? FR_LOSS_BCE : FR_LOSS_CE; /* checked by cli_train_check */
    if (GIVEN(heads)) mc->heads = (uint32_t)o->heads;
    if (GIVEN(ffn)) mc->ffn_dim = (uint32_t)o->ffn;
    if (GIVEN(dropout)) mc->dropout = (float)o->dropout;
    if (GIVEN(max_len)) mc->max_len = (uint32_t)o->max_len;
    if (GIVEN(seq_stride)) c->train.seq_stride = c->fl.seq_stride = (uint32_t)o->seq_stride;
    if (o->norm) mc->post_norm = !strcmp(o->norm, "post"); /* checked above */
    if (GIVEN(confidence_alpha)) c->train.confidence_alpha = c->fl.confidence_alpha = (float)o->confidence_alpha;
    mc->seed = c->fl.seed = c->train.seed = o->seed;
    c->threads = (int)o->threads;
    c->secagg = o->secagg;
    c->loop.eval_every = (uint32_t)o->eval_every;
    c->loop.patience = (uint32_t)o->patience;
    c->loop.max_seconds = GIVEN(time_limit) ? o->time_limit : 0;
    fr_optim_kind ok;
    if (o->centralized) {
        fr_train_config *tc = &c->train;
        if (o->optimizer && !fr_optim_kind_parse(o->optimizer, &ok) && ok != tc->optim.kind)
            fr_optim_config_default(&tc->optim, ok); /* the same kind keeps the preset's lr */
        if (GIVEN(lr)) tc->optim.lr = (float)o->lr;
        if (GIVEN(batch)) tc->batch = (uint32_t)o->batch;
        if (GIVEN(negatives_per_pos)) tc->negatives = (uint32_t)o->negatives_per_pos;
        fr_neg_sampler ns;
        float nb;
        if (o->neg_sampler && !neg_sampler_opt(o->neg_sampler, &ns, &nb)) tc->neg_sampler = ns, tc->neg_pop_exp = nb;
        if (GIVEN(epochs)) c->loop.steps = (uint32_t)o->epochs;
        if (GIVEN(lr_decay)) c->lr_decay = o->lr_decay;
        return 0;
    }
    fr_fl_config *fc = &c->fl;
    if (GIVEN(rounds)) {
        c->loop.steps = (uint32_t)o->rounds;
        c->fl_epochs = 0; /* rounds given, not sized from the data */
    }
    if (o->strategy && !fr_strategy_parse(o->strategy, &fc->strategy) && fc->strategy >= FR_STRATEGY_FEDADAM)
        fc->server_lr = 0.01f;
    if (o->optimizer && !fr_optim_kind_parse(o->optimizer, &ok) && ok != fc->local.kind)
        fr_optim_config_default(&fc->local, ok); /* the same kind keeps the preset's lr */
    if (GIVEN(lr)) fc->local.lr = (float)o->lr;
    if (GIVEN(local_epochs)) fc->local_epochs = (uint32_t)o->local_epochs;
    if (GIVEN(batch)) fc->batch = (uint32_t)o->batch;
    if (GIVEN(clients_per_round)) fc->clients_per_round = o->clients_per_round;
    if (GIVEN(server_lr)) fc->server_lr = (float)o->server_lr;
    if (GIVEN(server_momentum)) fc->server_momentum = (float)o->server_momentum;
    if (GIVEN(mu)) fc->mu = (float)o->mu;
    if (GIVEN(tau)) fc->tau = (float)o->tau;
    if (GIVEN(beta1)) fc->beta1 = (float)o->beta1;
    if (GIVEN(beta2)) fc->beta2 = (float)o->beta2;
    if (GIVEN(availability)) fc->availability = o->availability;
    if (GIVEN(negatives_per_pos)) fc->negatives = (uint32_t)o->negatives_per_pos;
    fr_neg_sampler ns;
    float nb;
    if (o->neg_sampler && !neg_sampler_opt(o->neg_sampler, &ns, &nb)) fc->neg_sampler = ns, fc->neg_pop_exp = nb;
    if (o->item_optimizer) {
        if (!strcmp(o->item_optimizer, "same")) fc->item_local.kind = 0;
        else if (!fr_optim_kind_parse(o->item_optimizer, &ok) && ok != fc->item_local.kind)
            fr_optim_config_default(&fc->item_local, ok);
    }
    if (GIVEN(item_lr)) {
        if (fc->item_local.kind == 0)
            return usage_err(o, "%s", "--item-lr needs an item optimizer (--item-optimizer sgd|adam|adagrad); with "
                                   "'same', item rows use --lr");
        fc->item_local.lr = (float)o->item_lr;
    }
    if (GIVEN(item_lr_decay)) fc->item_lr_decay = (float)o->item_lr_decay;
    if (o->keep_private_optim) fc->keep_private_optim = true;
    if (GIVEN(min_results)) fc->min_results = (uint32_t)o->min_results;
    if (o->item_agg) {
        fc->row_norm = !strcmp(o->item_agg, "rows");
        fc->item_sum = !strcmp(o->item_agg, "sum");
    }
    if (o->partition && fr_partition_parse(o->partition, &c->partition, &c->partition_k, &c->partition_alpha))
        return 2; /* checked before */
    if (o->aggregator && fr_aggregator_parse(o->aggregator, fc)) return usage_err(o, "--aggregator: %s", fr_errmsg());
    if (o->dp_clip) {
        if (parse_dp_clip(o->cmd ? o->cmd : "train", o->dp_clip, &fc->dp_clip, &fc->dp_quantile)) return 2; /* checked before */
        fc->dp_noise = o->dp_noise;
        fc->dp_delta = GIVEN(dp_delta) ? o->dp_delta : 0;
        fc->ldp_noise = o->ldp_noise;
        fc->dp_seeded_noise = o->dp_seeded_noise;
        c->loop.target_epsilon = GIVEN(target_epsilon) ? o->target_epsilon : 0;
    }
    if (!o->cmd && !o->centralized) { /* fedrec train: the simulator's attack and faults */
        if (parse_sim_opts(o, specs)) return 2; /* checked before */
        if (cli_attack.kind != FR_ATTACK_NONE) c->attack = &cli_attack;
        if (fr_sim_faults_on(&cli_faults)) c->faults = &cli_faults;
    }
    if (!o->cmd && o->exposure_item) { /* the item: resolve_items, once the data is loaded */
        c->loop.eval.exposure = true;
        c->loop.eval.exposure_k = 10;
    }
    if (!o->centralized &&
        cli_compress(o->cmd ? o->cmd : "train", o, o->secagg || o->private_mode || (o->hide_items && !strcmp(o->hide_items, "dense")),
                     fc))
        return 2;
    if (o->hide_items || o->private_mode) {
        int hm = HIDE_DENSE;
        double ha = 0;
        if (o->hide_items && parse_hide(o, o->hide_items, &hm, &ha)) return 2; /* checked before */
        if (hm == HIDE_DENSE) c->secagg = true;
        if (hm == HIDE_DECOYS) fc->decoys = ha;
        if (hm == HIDE_LDP) {
            fc->decoys = 1;
            if (!o->dp_clip) fc->dp_clip = 1;
            fc->ldp_noise = ha;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ progress */

typedef struct progress {
    const cli_train_opts *o;
    FILE *mf;               /* --metrics-out */
    cli_progress lines;     /* a line per step on a terminal, every few seconds on a pipe */
    plot_run *plot;         /* --plot: the steps of this run */
    char plot_err[512];     /* why a step could not be added (out of memory) */
    int err;                /* errno of a failed --metrics-out write (stops the run) */
    bool failed;            /* a --metrics-out write failed */
} progress;

static int on_step(void *user, const fr_loop_step *s) {
    progress *p = user;
    char metric[96] = "";
    if (s->evaluated) {
        metric[0] = metric[1] = ' '; /* "  rmse 0.9123  mae 0.7201" after the loss */
        cli_metrics_text(&s->eval, metric + 2, sizeof metric - 2);
        if (!metric[2]) metric[0] = 0;
    }
    char line[512];
    if (s->unit == FR_LOOP_EPOCH) {
        snprintf(line, sizeof line, "epoch %3u/%u  loss %.5f%s  %.3f s", s->index, s->total, s->loss, metric,
                 s->seconds);
    } else {
        double eta = s->elapsed / (double)(s->index ? s->index : 1) * (double)(s->total - s->index);
        char dp[64] = "";
        if (s->round.dp_clip > 0) { /* a private run: the privacy spent so far, and the clip */
            if (isfinite(s->epsilon)) snprintf(dp, sizeof dp, "  ε %.3g  C %.3g", s->epsilon, s->round.dp_clip);
            else snprintf(dp, sizeof dp, "  ε %s  C %.3g", isinf(s->epsilon) ? "inf" : "?", s->round.dp_clip);
        }
        snprintf(line, sizeof line,
                 "round %u/%u  loss %.4f%s  clients %u%s  up %.1f MB  down %.1f MB  %.2f s  ETA %.0f s", s->index,
                 s->total, s->loss, metric, s->round.clients, dp, (double)s->round.bytes_up / 1e6,
                 (double)s->round.bytes_down / 1e6, s->seconds + s->eval_seconds, eta);
    }
    cli_progress_line(&p->lines, line);
    if (p->plot) {
        char buf[8192];
        if (fr_loop_step_json(s, buf, sizeof buf, NULL) != FR_OK ||
            plot_run_add(p->plot, buf, "--plot", s->index, p->plot_err, sizeof p->plot_err)) {
            if (!p->plot_err[0]) snprintf(p->plot_err, sizeof p->plot_err, "a step's record: %s", fr_errmsg());
            plot_run_free(p->plot); /* the run goes on; the chart is reported missing at the end */
            p->plot = NULL;
        }
    }
    if (p->mf) {
        char buf[8192];
        errno = 0;
        if (fr_loop_step_json(s, buf, sizeof buf, NULL) != FR_OK || fputs(buf, p->mf) == EOF ||
            fputc('\n', p->mf) == EOF || fflush(p->mf) != 0 || ferror(p->mf)) {
            p->err = errno;
            p->failed = true;
            return 1;
        }
    }
    if (embed && embed->on_step) return embed->on_step(embed->user, s);
    return 0;
}

/* The client's rule for item rows, for the header line. */
static void item_rule(const fr_fl_config *fc, char *buf, size_t n) {
    if (fc->item_local.kind == 0) snprintf(buf, n, "as the rest");
    else snprintf(buf, n, "%s lr %g", fr_optim_kind_name(fc->item_local.kind), (double)fc->item_local.lr);
    if (fc->item_lr_decay != 1.0f) {
        size_t k = strlen(buf);
        snprintf(buf + k, n - k, " decay %g/round", (double)fc->item_lr_decay);
    }
}

/* A sequence model's training in words, for both headers: its loss, its dropout, its
 * training windows when they overlap and its blocks' norm placement when not pre-norm. */
static void seq_text(const fr_run_config *c, uint32_t stride, char *buf, size_t n) {
    char st[48] = "";
    if (stride && stride < c->model.max_len) snprintf(st, sizeof st, ", windows every %u items", stride);
    snprintf(buf, n, "%s, dropout %g%s%s",
             c->model.loss == FR_LOSS_CE ? "loss ce (a softmax over all items at each position)"
                                         : "loss bce, one negative per position",
             (double)c->model.dropout, st, c->model.post_norm ? ", post-norm blocks" : "");
}

void cli_fl_settings(const fr_run_config *c, float alpha, char *buf, size_t n) {
    const fr_fl_config *fc = &c->fl;
    char rule[96], loss[160], conf[128] = "";
    item_rule(fc, rule, sizeof rule);
    char lt[64];
    if (c->model.max_len > 0) seq_text(c, fc->seq_stride, loss, sizeof loss);
    else if (fr_model_kind_uses_features(c->model.kind))
        snprintf(loss, sizeof loss, "loss %s", cli_loss_text(&c->model, lt, sizeof lt));
    else loss[0] = 0;
    if (alpha > 0) snprintf(conf, sizeof conf, ", positives weighted 1 + %g·log(1 + weight)", (double)alpha);
    if (fc->neg_sampler == FR_NEG_POPULARITY) {
        size_t k = strlen(conf);
        snprintf(conf + k, sizeof conf - k, ", negatives by popularity^%g",
                 fc->neg_pop_exp ? (double)fc->neg_pop_exp : 1.0);
    }
    snprintf(buf, n, "strategy %s, E=%u B=%u %s lr %g%s%s, item rows: %s of deltas, steps %s%s; %u round%s (preset %s)",
             fr_strategy_name(fc->strategy), fc->local_epochs, fc->batch, fr_optim_kind_name(fc->local.kind),
             (double)fc->local.lr, loss[0] ? ", " : "", loss,
             fc->item_sum ? "sum" : fc->row_norm ? "rows" : "mean", rule, conf, c->loop.steps, cli_s(c->loop.steps),
             c->preset);
}

int cli_train_config(const cli_train_opts *o, const arg_spec *specs, fr_model_kind kind, const fr_run_data_stats *st,
                     fr_run_config *c) {
    if (fr_run_config_preset_stats(c, o->preset, kind, o->centralized, st)) {
        fprintf(stderr, "fedrec %s: --preset: %s\n", o->cmd ? o->cmd : "train", fr_errmsg());
        return 2;
    }
    if (GIVEN(warp)) fr_run_config_preset_warp(c, (uint32_t)o->warp); /* before --lr, --l2 */
    int rc = cli_train_overrides(o, specs, c);
    if (rc) return rc;
    /* rounds sized from the data (the preset's epochs' worth), again for the clients a round
     * samples and the partition the options gave */
    c->loop.steps = fr_run_config_rounds(c, st);
    return 0;
}

/* The run's header: the model, the data and what it trains on (tr: the training part, the
 * warm part under --cold-items), the settings. */
static void header(const fr_run_config *c, const fr_data *data, const fr_dataset *tr) {
    const char *kind = fr_model_kind_name(c->model.kind);
    if (fr_model_kind_is_closed_form(c->model.kind)) {
        printf("fitting %s (a baseline, in closed form) on %s: %u user%s, %u item%s, %" PRIu64 " training interaction%s\n",
               kind, fr_data_describe(data), fr_dataset_n_users(tr), cli_s(fr_dataset_n_users(tr)),
               fr_dataset_n_items(tr), cli_s(fr_dataset_n_items(tr)), fr_dataset_n_interactions(tr),
               cli_s(fr_dataset_n_interactions(tr)));
        cli_flush_stdout();
        return;
    }
    char conf[96] = "";
    float alpha = cli_confidence_alpha(c, data);
    if (alpha > 0) snprintf(conf, sizeof conf, ", positives weighted 1 + %g·log(1 + weight)", (double)alpha);
    if (c->centralized) {
        char negs[192];
        if (c->model.max_len > 0) /* a sequence model: each position's next item against one negative, or all items */
            seq_text(c, c->train.seq_stride, negs, sizeof negs);
        else if (c->model.warp > 0) /* WARP draws its own negatives */
            snprintf(negs, sizeof negs, "loss warp (up to %u draw%s a positive)", c->model.warp, cli_s(c->model.warp));
        else {
            uint32_t nn = c->model.loss == FR_LOSS_MSE ? 0 : c->train.negatives;
            char pop[40] = "";
            if (c->train.neg_sampler == FR_NEG_POPULARITY && nn)
                snprintf(pop, sizeof pop, " (by popularity^%g)", c->train.neg_pop_exp ? (double)c->train.neg_pop_exp : 1.0);
            snprintf(negs, sizeof negs, "%s%u negative%s per positive%s",
                     fr_model_kind_uses_features(c->model.kind) ? (c->model.loss == FR_LOSS_BCE ? "loss bce, " : "loss bpr, ") : "",
                     nn, cli_s(nn), pop);
        }
        printf("training %s centrally on %s: %u user%s, %u item%s, %" PRIu64 " training interaction%s; %s lr %g, "
               "batch %u, %s%s, %u epoch%s\n",
               kind, fr_data_describe(data), fr_dataset_n_users(tr), cli_s(fr_dataset_n_users(tr)),
               fr_dataset_n_items(tr), cli_s(fr_dataset_n_items(tr)), fr_dataset_n_interactions(tr),
               cli_s(fr_dataset_n_interactions(tr)), fr_optim_kind_name(c->train.optim.kind), (double)c->train.optim.lr,
               c->train.batch, negs, conf, c->loop.steps, cli_s(c->loop.steps));
        cli_flush_stdout();
        return;
    }
    const fr_fl_config *fc = &c->fl;
    char part[64], settings[512];
    uint32_t clients = fr_dataset_n_users(tr);
    if (c->partition == FR_PARTITION_USER) snprintf(part, sizeof part, "a user each");
    else if (fr_partition_format(c->partition, c->partition_k, c->partition_alpha, part, sizeof part)) part[0] = 0;
    if (c->partition != FR_PARTITION_USER) clients = c->partition_k;
    cli_fl_settings(c, alpha, settings, sizeof settings);
    fprintf(stderr, "fedrec train: federated %s on %s: %u client%s (%s), %u item%s, %s\n", kind, fr_data_describe(data),
            clients, cli_s(clients), part, fr_dataset_n_items(tr), cli_s(fr_dataset_n_items(tr)), settings);
    if (fc->decoys > 0)
        fprintf(stderr, "fedrec train: hiding items: each client pads its rows with %g decoy item%s per interaction "
                "(drawn once from the items' popularity, pseudo-gradients)\n", fc->decoys, fc->decoys == 1 ? "" : "s");
    if (c->secagg)
        fprintf(stderr, "fedrec train: secure aggregation: dense masked updates, the server sees only each round's sum\n");
    if (fc->aggregator != FR_AGG_FEDAVG) {
        char an[64];
        fr_aggregator_format(fc, an, sizeof an);
        fprintf(stderr, "fedrec train: robust aggregation: %s (each client's update kept whole until the round ends)\n", an);
    }
    if (fr_fl_dp_on(fc)) {
        char clip[64], eps[64] = "";
        if (fc->dp_quantile > 0) snprintf(clip, sizeof clip, "adaptive to the %g quantile from %g", fc->dp_quantile, fc->dp_clip);
        else snprintf(clip, sizeof clip, "%g", fc->dp_clip);
        if (c->loop.target_epsilon > 0) snprintf(eps, sizeof eps, ", stops before ε > %g", c->loop.target_epsilon);
        fprintf(stderr, "fedrec train: user-level DP (DP-FedAvg): clip %s, noise σ %g, Poisson rate q %.4g, δ %.3g%s\n",
                clip, fc->dp_noise, fr_fl_dp_rate(fc, clients), fr_fl_dp_delta(fc, clients), eps);
        if (fc->ldp_noise > 0) fprintf(stderr, "fedrec train: local DP baseline: each client adds noise of std %g·C\n", fc->ldp_noise);
        if (fc->dp_seeded_noise)
            fprintf(stderr, "fedrec train: warning: --dp-seeded-noise: the noise follows --seed (tests only: not "
                    "private against anyone who knows the seed)\n");
    }
}

/* ------------------------------------------------------------------ the command */

/* --plot: the chart of this run's steps, or of the whole --metrics-out file when the run
 * resumed and appended to it (the rounds before the resume are there). 0, or 1 after
 * printing. */
static int write_plot(const cli_train_opts *o, const fr_run_config *c, const fr_data *data, plot_run *steps,
                      const char *why) {
    char err[1024], title[512];
    snprintf(title, sizeof title, "fedrec train: %s %s on %s", c->centralized ? "centralized" : "federated",
             fr_model_kind_name(c->model.kind), data ? fr_data_describe(data) : "?");
    plot_run *whole = NULL;
    if (o->resume && o->metrics_out) {
        if (!(whole = plot_run_new(c->centralized ? "centralized" : "federated")) ||
            plot_run_read(whole, o->metrics_out, err, sizeof err)) {
            fprintf(stderr, "fedrec train: --plot: %s\n", whole ? err : "out of memory");
            plot_run_free(whole);
            return 1;
        }
        steps = whole;
    }
    int rc = 0;
    if (!steps) {
        fprintf(stderr, "fedrec train: --plot: no chart: %s\n", why[0] ? why : "out of memory");
        rc = 1;
    } else if (plot_write_svg(o->plot, &steps, 1, title, err, sizeof err)) {
        fprintf(stderr, "fedrec train: --plot: %s\n", err);
        rc = 1;
    }
    plot_run_free(whole);
    return rc;
}

/* "<out>.ckpt" (fedrec-train.ckpt without --out) when a federated run checkpoints, else
 * NULL; *err on out of memory. */
static char *checkpoint_path(const cli_train_opts *o, const arg_spec *specs, bool *err) {
    *err = false;
    if (o->centralized || !(o->out || GIVEN(checkpoint_every) || o->resume)) return NULL; /* no unasked-for file */
    const char *base = o->out ? o->out : "fedrec-train";
    char *p = malloc(strlen(base) + sizeof ".ckpt");
    if (!p) { *err = true; return NULL; }
    strcpy(p, base);
    strcat(p, ".ckpt");
    return p;
}

/* --cold-items: the split's parts */
typedef struct cold_parts {
    fr_dataset *train, *test, *cold, *exclude;
    uint32_t n;
} cold_parts;

static void cold_free(cold_parts *c) {
    fr_dataset_free(c->train);
    fr_dataset_free(c->test);
    fr_dataset_free(c->cold);
    fr_dataset_free(c->exclude);
}

/* Ranks each user's held-out items among the cold items alone (their features are all a
 * model knows of them): prints the line and writes {"cold_items": N, "auc_cold": ...,
 * "precision@10_cold": ..., "hr@10_cold": ..., "ndcg@10_cold": ...} to the metrics. */
static int cold_report(const cold_parts *c, fr_model *m, FILE *mf) {
    fr_eval_result r;
    /* nothing was learned of a cold item's id (never trained: no interaction, and the warm
     * train marks it absent, so no negative drew it): its id rows are zeroed, and the
     * hybrid kinds rank it by its features alone (fr_model_forget_items) */
    uint32_t na = 0;
    const uint8_t *absent = fr_dataset_absent_items(c->train, &na);
    uint32_t *items = na ? malloc(na * sizeof *items) : NULL;
    if (na && !items) return cli_fail(FR_ERR_NOMEM, "train: cold-start evaluation");
    for (uint32_t i = 0, k = 0; absent && i < fr_dataset_n_items(c->train); i++)
        if (absent[i]) items[k++] = i;
    fr_err e = fr_model_forget_items(m, items, na);
    free(items);
    if (e) return cli_fail(e, "train: cold-start evaluation");
    e = fr_model_evaluate(m, c->exclude, c->cold, NULL, NULL, NULL, &r);
    if (e) return cli_fail(e, "train: cold-start evaluation");
    size_t k10 = 0;
    for (size_t k = 0; k < r.n_ks; k++)
        if (r.ks[k] == 10) k10 = k;
    printf("cold start: %u item%s held out, ranked among themselves for %u user%s: auc %.4f  precision@%u %.4f  "
           "hr@%u %.4f  ndcg@%u %.4f\n", c->n, cli_s(c->n), r.users_full, cli_s(r.users_full), r.auc_full, r.ks[k10], r.precision_full[k10], r.ks[k10],
           r.hr_full[k10], r.ks[k10], r.ndcg_full[k10]);
    if (mf)
        fprintf(mf, "{\"cold_items\":%u,\"users\":%u,\"auc_cold\":%.6f,\"precision@%u_cold\":%.6f,\"hr@%u_cold\":%.6f,"
                "\"ndcg@%u_cold\":%.6f}\n", c->n, r.users_full, r.auc_full, r.ks[k10], r.precision_full[k10], r.ks[k10],
                r.hr_full[k10], r.ks[k10], r.ndcg_full[k10]);
    return 0;
}

/* The end of an --runtime mpi run on this rank: MPI finalized after a success; after a
 * failure the whole job is ended (MPI_Abort), so no rank waits for one that gave up. */
static int mpi_end(const cli_train_opts *o, int rc) {
    if (!o->mpi) return rc;
    fflush(stdout);
    fflush(stderr);
    if (rc) fr_mpi_abort(rc);
    fr_mpi_finalize();
    return rc;
}

/* The raw item ids of --attack and --exposure-item as dense ids of the training data tr
 * (as fedrec recommend looks a user up). 0, or 2 after printing. */
static int resolve_items(const cli_train_opts *o, const fr_data *data, const fr_dataset *tr, fr_run_config *c) {
    const fr_idmap *im = fr_dataset_items(tr);
    if (c->attack && fr_sim_attack_has_target(c->attack)) {
        int64_t d = fr_idmap_find_str(im, cli_attack_item);
        if (d < 0) {
            fprintf(stderr, "fedrec train: --attack %s: item '%s' is not in the training data (%s); ITEM is an item "
                    "id as in the data file\n", o->attack, cli_attack_item, fr_data_describe(data));
            return 2;
        }
        cli_attack.target = (uint32_t)d;
    }
    if (!o->cmd && o->exposure_item) {
        int64_t d = fr_idmap_find_str(im, o->exposure_item);
        if (d < 0) {
            fprintf(stderr, "fedrec train: --exposure-item: item '%s' is not in the training data (%s); ITEM is an "
                    "item id as in the data file\n", o->exposure_item, fr_data_describe(data));
            return 2;
        }
        c->loop.eval.exposure_item = (uint32_t)d;
    }
    return 0;
}

/* A note when the test set is largely unknown to training: test users without training
 * interactions, or most test interactions on items no training interaction has (the
 * wrong --test file, or ids numbered otherwise). Its metrics would measure nothing. */
static void note_unknown_test(const fr_data *data) {
    const fr_dataset *tr = fr_data_train(data), *te = fr_data_test(data);
    if (!tr || !te) return;
    uint32_t ni = fr_dataset_n_items(tr) > fr_dataset_n_items(te) ? fr_dataset_n_items(tr) : fr_dataset_n_items(te);
    uint8_t *seen = calloc(ni ? ni : 1, 1);
    if (!seen) return;
    for (uint32_t u = 0; u < fr_dataset_n_users(tr); u++) {
        const uint32_t *it = NULL;
        size_t n = fr_dataset_user(tr, u, &it, NULL, NULL);
        for (size_t k = 0; k < n; k++) seen[it[k]] = 1;
    }
    uint64_t users = 0, cold_users = 0, inter = 0, cold_inter = 0;
    for (uint32_t u = 0; u < fr_dataset_n_users(te); u++) {
        const uint32_t *it = NULL;
        size_t n = fr_dataset_user(te, u, &it, NULL, NULL);
        if (!n) continue;
        users++;
        cold_users += u >= fr_dataset_n_users(tr) || fr_dataset_user(tr, u, NULL, NULL, NULL) == 0;
        inter += n;
        for (size_t k = 0; k < n; k++) cold_inter += !seen[it[k]];
    }
    free(seen);
    bool items = cold_inter && 2 * cold_inter > inter;
    if (!cold_users && !items) return;
    char a[96] = "", b[128] = "";
    if (cold_users)
        snprintf(a, sizeof a, "%" PRIu64 " of %" PRIu64 " test user%s no training interactions", cold_users, users,
                 users == 1 ? " has" : "s have");
    if (items)
        snprintf(b, sizeof b, "%" PRIu64 " of %" PRIu64 " test interactions are of items no training interaction has",
                 cold_inter, inter);
    fprintf(stderr, "fedrec train: note: %s%s%s (%s): the metrics say little of them\n", a, a[0] && b[0] ? ", and " : "",
            b, fr_data_describe(data));
}

static int run(const cli_train_opts *o, const arg_spec *specs, fr_model_kind kind, fr_source *src,
               const char *ckpt) {
    double t_start = cli_now_s();
    fr_data *data = NULL;
    const char *why = NULL, *kind_note = NULL;
    fr_err e = cli_data_load(&data, src);
    if (e) return cli_fail(e, "train");
    int rc0 = cli_choose_model(o->model, &kind, src, &data, &why, &kind_note);
    if (rc0) { fr_data_free(data); return rc0; }
    if (why && !o->quiet) fprintf(stderr, "fedrec train: no --model: %s chosen: %s\n", fr_model_kind_name(kind), why);
    if (kind_note && !o->quiet) fprintf(stderr, "fedrec train: note: --model %s: %s\n", fr_model_kind_name(kind), kind_note);
    const char *first_bad = NULL;
    uint64_t nbad = fr_data_skipped(data, &first_bad);
    if (nbad && !o->quiet)
        fprintf(stderr, "fedrec train: note: %" PRIu64 " bad line%s skipped (--skip-bad-lines): the first is %s\n", nbad,
                cli_s(nbad), first_bad);
    if (GIVEN(confidence_alpha) && !fr_dataset_weighted(fr_data_train(data))) {
        fprintf(stderr, "fedrec train: --confidence-alpha weighs each positive by its count or weight, but %s has "
                "none: %s\n", fr_data_describe(data),
                o->data ? "read its count column with --implicit-weight (a column headed weight, count, plays ... is "
                          "read so by itself)"
                        : "the built-in synthetic data has no counts; give --data FILE --implicit-weight");
        fr_data_free(data);
        return 2;
    }
    if (!o->quiet) note_unknown_test(data);
    uint32_t fewest = 0, shortn = fr_negatives_short(fr_data_negatives(data), &fewest);
    if (shortn && !o->quiet)
        fprintf(stderr, "fedrec train: note: %u test user%s fewer than %u item%s %s never touched; %s ranked "
                "against all of theirs, as few as %u\n", shortn, shortn == 1 ? " has" : "s have", src->eval_negatives,
                cli_s(src->eval_negatives), shortn == 1 ? "it" : "they", shortn == 1 ? "it is" : "they are", fewest);
    fr_run_config c;
    int rc = 0;
    FILE *mf = NULL;
    cold_parts cold = {0};
    fr_model *m = NULL;
    progress p = {o, NULL, {0}, NULL, "", 0, false};
    fr_run_data_stats st;
    fr_err se = fr_run_data_stats_of(fr_data_train(data), &st);
    if (se) {
        rc = cli_fail(se, "train");
        goto done;
    }
    if ((rc = cli_train_config(o, specs, kind, &st, &c))) goto done; /* as fedrec server's */
    if (c.model.max_len > 0 && !o->quiet && !fr_dataset_has_time_order(fr_data_train(data)))
        fprintf(stderr, "fedrec train: note: %s has no timestamps (or all are equal): %s reads each user's items "
                "in item-id order, not in the order they happened%s\n", o->data ? o->data : "the built-in synthetic data",
                fr_model_kind_name(kind), o->data ? " (a time column: --time-col C)" : "");
    if (ckpt) {
        c.loop.checkpoint = ckpt;
        c.loop.checkpoint_every = (uint32_t)o->checkpoint_every;
        c.loop.resume = o->resume;
    }
    if ((rc = cli_features_attach("train", data, o->user_features, o->item_features, &c.model, o->quiet))) goto done;
    fr_model_config sized = c.model; /* the model's sizes come from the data: check the rest */
    sized.n_users = sized.n_items = 1;
    if (fr_run_config_check(&c) || fr_model_config_check(&sized)) { /* what the options ask for together */
        fprintf(stderr, "fedrec train: %s\n", fr_errmsg());
        rc = 2;
        goto done;
    }
    if (o->metrics_out && !(mf = fopen(o->metrics_out, o->resume ? "a" : "w"))) {
        fprintf(stderr, "fedrec train: --metrics-out: cannot write '%s': %s\n", o->metrics_out, strerror(errno));
        rc = 1;
        goto done;
    }
    /* --cold-items: items held out entirely; training and the per-round metrics see the
     * warm part, the cold items are ranked at the end (features.h) */
    const fr_dataset *tr = fr_data_train(data), *te = fr_data_test(data);
    if (GIVEN(cold_items)) {
        char *end;
        double frac = strtod(o->cold_items, &end);
        e = *end == 0 && end != o->cold_items
                ? fr_dataset_cold_split(tr, te, frac, o->seed, &cold.train, &cold.test, &cold.cold, &cold.exclude,
                                        &cold.n)
                : fr_dataset_cold_split_file(tr, te, o->cold_items, &cold.train, &cold.test, &cold.cold, &cold.exclude,
                                             &cold.n);
        if (e) { rc = cli_fail(e, "train: --cold-items"); goto done; }
        tr = cold.train;
        te = cold.test ? cold.test : cold.cold;
        if (!o->quiet)
            fprintf(stderr, "fedrec train: cold start: %u item%s (--cold-items %s) held out with %s %llu interaction%s\n",
                    cold.n, cli_s(cold.n), o->cold_items, cold.n == 1 ? "its" : "their",
                    (unsigned long long)fr_dataset_n_interactions(cold.cold),
                    cli_s(fr_dataset_n_interactions(cold.cold)));
    }
    if (!o->quiet && !(embed && embed->silent)) header(&c, data, tr);
    p.mf = mf;
    if (o->plot && !(p.plot = plot_run_new(c.centralized ? "centralized" : "federated"))) {
        fprintf(stderr, "fedrec train: out of memory\n");
        rc = 1;
        goto done;
    }
    /* epochs print on standard output, rounds on standard error (beside the header) */
    cli_progress_init(&p.lines, o->quiet || (embed && embed->silent) ? NULL : c.centralized ? stdout : stderr);
    fr_loop_summary sum;
    if ((rc = resolve_items(o, data, tr, &c))) goto done;
    if (o->mpi && !GIVEN(cold_items)) { /* a rank > 0 keeps only its clients' interactions (fr_mpi_shard) */
        fr_dataset *share = NULL;
        if ((e = fr_mpi_shard(&c, tr, &share))) { rc = cli_fail(e, "train: --runtime mpi"); goto done; }
        if (share) {
            fr_data_replace_train(data, share);
            tr = fr_data_train(data);
        }
    }
    double t_train = cli_now_s();
    fr_mpi_stats ms;
    e = o->mpi ? fr_run_mpi(&c, tr, te, fr_data_negatives(data), on_step, &p, &sum, &m, &ms)
               : fr_run(&c, tr, te, fr_data_negatives(data), on_step, &p, &sum, &m);
    if (o->mpi && o->mpi_rank != 0) goto done; /* rank 0 reports and writes */
    if (o->mpi && !e)
        fprintf(stderr, "fedrec train: mpi: %u rank%s; %llu round%s reduced, %llu over the whole shared prefix, the "
                "others over the item rows some rank touched; %llu word%s of sums per rank\n", ms.ranks, cli_s(ms.ranks),
                (unsigned long long)ms.rounds, cli_s(ms.rounds), (unsigned long long)ms.dense_rounds,
                (unsigned long long)ms.words_reduced, cli_s(ms.words_reduced));
    cli_progress_finish(&p.lines); /* the last step's line, if it came too soon after the one before */
    if (p.failed) {
        fprintf(stderr, "fedrec train: --metrics-out: writing '%s' failed: %s\n", o->metrics_out,
                p.err ? strerror(p.err) : "a write failed");
        rc = 1;
        goto done;
    }
    t_train = cli_now_s() - t_train;
    if (e) { rc = cli_fail(e, "train"); goto done; }
    if (o->resume && sum.ran == 0) /* nothing left to do: say so (exit 0, README: resuming a finished run) */
        fprintf(stderr, "fedrec train: the checkpoint is at round %u, %s %u %s already done; nothing was trained%s%s\n",
                sum.completed, GIVEN(rounds) ? "--rounds" : "the preset's", c.loop.steps,
                GIVEN(rounds) ? "is" : c.loop.steps == 1 ? "round is" : "rounds are", o->out ? ", the checkpoint's model is saved to " : "",
                o->out ? o->out : "");
    if (o->out) {
        fr_provenance pv;
        fr_provenance_init(&pv);
        e = fr_provenance_set_data(&pv, src, data);
        if (!e) e = fr_provenance_set_run(&pv, &c, sum.completed);
        pv.cold_items = o->cold_items; /* eval says its figures are not the warm split's */
        if (fr_fl_dp_on(&c.fl) && !c.centralized) { /* the privacy the saved model spent */
            pv.dp_epsilon = sum.epsilon;
            pv.dp_delta = fr_fl_dp_delta(&c.fl, fr_dataset_n_users(fr_data_train(data)));
        }
        if (!e) e = fr_provenance_save_model(m, o->out, &pv, data);
        fr_provenance_destroy(&pv);
        if (e) { rc = cli_fail(e, "train: saving the model"); goto done; }
    }
    if (cold.cold && (rc = cold_report(&cold, m, mf))) goto done;
    if (embed) { /* hand the model back, with what --out would record */
        fr_provenance_init(&embed->prov);
        e = fr_provenance_set_data(&embed->prov, src, data);
        if (!e) e = fr_provenance_set_run(&embed->prov, &c, sum.completed);
        if (fr_fl_dp_on(&c.fl) && !c.centralized) {
            embed->prov.dp_epsilon = sum.epsilon;
            embed->prov.dp_delta = fr_fl_dp_delta(&c.fl, fr_dataset_n_users(fr_data_train(data)));
        }
        if (e) {
            fr_provenance_destroy(&embed->prov);
            rc = cli_fail(e, "train");
            goto done;
        }
        embed->summary = sum;
        embed->model = m;
        embed->data = data;
        m = NULL;
        data = NULL;
        if (embed->silent) goto done;
    }
    /* the summary, --quiet or not: final and best metrics, the baseline, time, files */
    cli_summary cs = {&c, &sum, embed ? embed->data : data, why, cli_now_s() - t_start, t_train, o->out, ckpt,
                      cold.cold ? cold.train : NULL, cold.cold ? te : NULL};
    int werr = 0;
    if (cli_summary_print(&cs, mf, &werr)) {
        if (werr) fprintf(stderr, "fedrec train: --metrics-out: writing '%s' failed: %s\n", o->metrics_out, strerror(werr));
        rc = 1;
    }
done:
    if (mf && fclose(mf) && !rc) {
        fprintf(stderr, "fedrec train: --metrics-out: writing '%s' failed: %s\n", o->metrics_out, strerror(errno));
        rc = 1;
    }
    if (o->plot && !rc) rc = write_plot(o, &c, data ? data : embed && embed->data ? embed->data : NULL, p.plot, p.plot_err);
    plot_run_free(p.plot);
    fr_model_free(m);
    cold_free(&cold);
    fr_data_free(data);
    return rc;
}

int cli_train(int argc, char **argv) {
    cli_train_opts o;
    memset(&o, 0, sizeof o);
    cli_load_opts lo = {0};
    o.seed = 1;
    o.eval_every = 1;
    const double F = ARG_FLOAT_MAX, INF = INFINITY;
    const unsigned GT = ARG_MIN_OPEN;
    const uint64_t U32 = UINT32_MAX;
    arg_spec specs[] = {
        ARG_SPEC_STR("data", &o.data, "PATH  ratings file or NCF directory (default: built-in synthetic data)"),
        ARG_SPEC_STR("test", &o.test, "PATH  given test file (PATH is then the training file)"),
        ARG_SPEC_STR("negatives", &o.negatives, "PATH  NCF .negative file for evaluation"),
        CLI_LOAD_SPECS(&lo),
        ARG_SPEC_STR("split", &o.split, "S  loo | ratio:R | temporal:R | temporal-user:R (default loo)"),
        ARG_SPEC_STR("model", &o.model,
                     "M  mf | bpr | gmf | mlp | neumf | lightgcn | lightgcn-full | lightfm | fm | sasrec | pop | bias "
                     "(default: mf for explicit ratings, neumf when every rating is equal or the data has evaluation "
                     "negatives); lightgcn is a graph model (one user-side layer over the user's own items: it "
                     "trains federated), lightgcn-full LightGCN over the whole graph (--centralized only), lightfm and fm read side features, sasrec a user's items in time "
                     "order; pop and bias are baselines, with --centralized"),
        ARG_SPEC_STR("preset", &o.preset, "P  fedrec (tuned, default) | textbook (FedAvg as the PyTorch anchors)"),
        ARG_SPEC_INT("dim", &o.dim, 1, 4096, NULL, "D  embedding size (default: the table below)"),
        ARG_SPEC_INT("layers", &o.layers, 0, 16, NULL,
                     "K  lightgcn-full: propagation layers over the whole user-item graph (default 2)"),
        ARG_SPEC_INT("rounds", &o.rounds, 1, U32, NULL, "R  federated rounds (default: the table below)"),
        ARG_SPEC_REAL("clients-per-round", &o.clients_per_round, 0, U32, ARG_WHOLE_COUNT, "0 = all",
                      "C  clients per round (default all)"),
        ARG_SPEC_INT("local-epochs", &o.local_epochs, 1, FR_FL_MAX_LOCAL_EPOCHS, NULL, "E  local epochs per round (default: the table below)"),
        ARG_SPEC_INT("batch", &o.batch, 1, 1u << 24, NULL, "B  minibatch size (default: the table below)"),
        ARG_SPEC_REAL("lr", &o.lr, 0, F, GT, NULL, "η  learning rate (default: the table below; a new --optimizer starts from its own)"),
        ARG_SPEC_STR("optimizer", &o.optimizer, "O  sgd | adam | adagrad (default: the table below)"),
        ARG_SPEC_STR("strategy", &o.strategy, "S  fedavg | fedavgm | fedprox | fedadam | fedyogi | fedadagrad (default: the table below)"),
        ARG_SPEC_FLAG("centralized", &o.centralized, "   train on all data in one process (no federation)"),
        ARG_SPEC_STR("runtime", &o.runtime,
                     "R  sim (clients in this process, default) | mpi (clients spread over the ranks of "
                     "`mpirun -np N fedrec train --runtime mpi ...`; the same model bit for bit)"),
        ARG_SPEC_FLAG("secagg", &o.secagg, "   secure aggregation: dense masked updates, the server sees only their sum"),
        ARG_SPEC_INT("epochs", &o.epochs, 1, U32, NULL, "N  centralized epochs (default: the table below)"),
        ARG_SPEC_INT("threads", &o.threads, 0, cli_max_threads(), "0 = one per CPU it may use; at most 4 per online core",
                     "T  worker threads (default 0)"),
        ARG_SPEC_INT("seed", &o.seed, 0, UINT64_MAX, NULL, "S  random seed (default 1)"),
        ARG_SPEC_INT("eval-every", &o.eval_every, 0, U32, "0 = at the end", "N  evaluate every N epochs/rounds (default 1)"),
        ARG_SPEC_STR("out", &o.out, "FILE  save the model here"),
        ARG_SPEC_STR("metrics-out", &o.metrics_out, "FILE  JSON Lines metrics per epoch/round"),
        ARG_SPEC_STR("plot", &o.plot, "FILE.svg  a chart of the metrics and the loss per round/epoch"),
        ARG_SPEC_FLAG("resume", &o.resume, "   resume from the last checkpoint (<out>.ckpt)"),
        ARG_SPEC_FLAG("quiet", &o.quiet, "   no header and no progress lines"),
        ARG_SPEC_INT("patience", &o.patience, 0, U32, "0 = never",
                     "N  stop after N evaluations without a better metric (default 0)"),
        ARG_SPEC_REAL("time-limit", &o.time_limit, 0, INF, GT, NULL, "S  stop after S seconds"),
        ARG_SPEC_STR("item-agg", &o.item_agg,
                     "A  item rows: mean (exact FedAvg) | rows (over clients that touched the row) | sum"),
        ARG_SPEC_STR("item-optimizer", &o.item_optimizer,
                     "O  the client's rule for item rows: same (as --optimizer) | sgd | adam | adagrad"),
        ARG_SPEC_REAL("item-lr", &o.item_lr, 0, F, GT, NULL, "η  learning rate of item rows (with --item-optimizer)"),
        ARG_SPEC_REAL("item-lr-decay", &o.item_lr_decay, 0, 1, GT, "1 = constant",
                      "γ  round r steps item rows at item lr * γ^(r-1)"),
        ARG_SPEC_REAL("server-lr", &o.server_lr, 0, F, GT, NULL, "η  server learning rate"),
        ARG_SPEC_REAL("server-momentum", &o.server_momentum, 0, 1, ARG_MAX_OPEN, NULL, "β  server momentum (fedavgm)"),
        ARG_SPEC_REAL("mu", &o.mu, 0, F, 0, NULL, "μ  proximal term (fedprox)"),
        ARG_SPEC_REAL("tau", &o.tau, 0, F, GT, NULL, "τ  adaptivity (fedadam, fedyogi, fedadagrad)"),
        ARG_SPEC_REAL("beta1", &o.beta1, 0, 1, ARG_MAX_OPEN, NULL, "β1  server optimizer"),
        ARG_SPEC_REAL("beta2", &o.beta2, 0, 1, ARG_MAX_OPEN, NULL, "β2  server optimizer"),
        ARG_SPEC_REAL("availability", &o.availability, 0, 1, GT, NULL, "P  probability a client is available"),
        ARG_SPEC_INT("min-results", &o.min_results, 0, U32, "0 = any",
                     "N  a round's quorum: fewer results apply nothing (default 0)"),
        ARG_SPEC_INT("neg", &o.negatives_per_pos, 1, 1000, NULL,
                     "K  sampled training negatives per positive (default: the table below)"),
        ARG_SPEC_STR("neg-sampler", &o.neg_sampler,
                     "S  how a sampled training negative is drawn: uniform (every item alike) | pop (as LightFM's "
                     "BPR: item i with probability proportional to its training interactions + 1, the public "
                     "popularity a federated client is given) | pop:B (that popularity to the power B, 0 < B <= 4) "
                     "(default: the table below)"),
        ARG_SPEC_REAL("l2", &o.l2, 0, F, 0, NULL, "λ  L2 regularisation (default: the table below)"),
        ARG_SPEC_REAL("confidence-alpha", &o.confidence_alpha, 0, F, 0, "0 = every positive alike",
                      "α  weighted implicit data (--implicit-weight, or a count column): a positive of weight w "
                      "counts 1 + α·log(1 + w) (default 1)"),
        ARG_SPEC_REAL("lr-decay", &o.lr_decay, 0, 1, GT, NULL,
                      "γ  centralized: epoch e trains at lr * γ^(e-1) (default: the table below)"),
        ARG_SPEC_REAL("bias-l2", &o.bias_l2, 0, F, 0, "0 = --l2",
                      "λ  mf: L2 of the biases alone (default: the table below)"),
        ARG_SPEC_INT("checkpoint-every", &o.checkpoint_every, 1, U32, NULL, "N  checkpoint every N rounds"),
        ARG_SPEC_STR("partition", &o.partition,
                     "P  who holds which users: user (a client each, default) | iid:K (K silos) | dirichlet:K[:ALPHA] "
                     "(K non-IID silos, ALPHA 0.5)"),
        ARG_SPEC_FLAG("keep-private-optim", &o.keep_private_optim,
                      "   clients keep their optimizer state for their private rows from round to round"),
        ARG_SPEC_STR("dp-clip", &o.dp_clip,
                     "C|adaptive[:γ[:C0]]  user-level DP (DP-FedAvg): clip each client's update to L2 norm C, or "
                     "adapt C to the γ quantile of the norms (γ 0.5, from C0 0.1); clients take part with "
                     "probability q = --clients-per-round / N"),
        ARG_SPEC_REAL("dp-noise", &o.dp_noise, 0, 16777216, 0, NULL,
                      "σ  DP: noise multiplier: discrete Gaussian noise of std σ·C on the sum (needs --dp-clip)"),
        ARG_SPEC_REAL("dp-delta", &o.dp_delta, 0, 1, GT | ARG_MAX_OPEN, NULL,
                      "δ  DP: the δ of the reported ε (default 1/N^1.1, N clients)"),
        ARG_SPEC_REAL("target-epsilon", &o.target_epsilon, 0, F, GT, NULL,
                      "ε  DP: stop before the round whose ε would exceed it (needs --dp-noise)"),
        ARG_SPEC_REAL("ldp-noise", &o.ldp_noise, 0, 16777216, GT, NULL,
                      "σ  local DP baseline: each client adds noise of std σ·C to every value it sends (needs --dp-clip)"),
        ARG_SPEC_STR("compress", &o.compress,
                     "C  uplink compression: none (int64 fixed point, default) | q8 | q16 (a scale per item row and "
                     "per 64 dense values, stochastic rounding) | topk:K (the K largest dense values, the rest kept "
                     "for the next round: error feedback) | topk:K,q8 | topk:K,q16"),
        ARG_SPEC_STR("compress-down", &o.compress_down,
                     "C  downlink compression of the broadcast model: none (float32, default) | q8 | q16"),
        ARG_SPEC_STR("aggregator", &o.aggregator, CLI_AGGREGATOR_HELP),
        ARG_SPEC_STR("hide-items", &o.hide_items,
                     "H  what the server learns of which items a user touched: none (sparse rows, default) | dense "
                     "(secure aggregation: sums only) | decoys[:R] (R decoy items per interaction, 1) | ldp[:σ] "
                     "(decoys + local noise σ·C, 0.05, clip C 1 or --dp-clip)"),
        ARG_SPEC_FLAG("private", &o.private_mode,
                      "   the default private mode: --hide-items dense (the server sees only sums: an attack does "
                      "no better than guessing popular items; 3.8x the bytes up on ml-100k bpr, the same model)"),
        ARG_SPEC_STR("user-features", &o.user_features,
                     "FILE  lightfm, fm: user features, lines 'RAW_ID<TAB>feature[:weight] ...' (added to those of the "
                     "metadata beside the data: u.user, users.dat)"),
        ARG_SPEC_STR("item-features", &o.item_features,
                     "FILE  lightfm, fm: item features, as --user-features (added to u.item, movies.dat, movies.csv's "
                     "genres and years)"),
        ARG_SPEC_STR("cold-items", &o.cold_items,
                     "F|FILE  lightfm, fm: cold start: hold out a fraction F (0 < F < 1) of the items, or the raw item ids FILE "
                     "lists, entirely (no interaction in training), and rank them at the end among themselves, by "
                     "their features (auc, precision@10)"),
        ARG_SPEC_INT("warp", &o.warp, 0, 1000, "0 = bpr",
                     "N  lightfm, fm: the WARP loss, drawing up to N negatives a positive (default: the table below)"),
        CLI_SASREC_SPECS(o),
        ARG_SPEC_STR("attack", &o.attack,
                     "A  simulated malicious clients, a FRACTION of all clients: promote:ITEM:FRACTION[:BOOST[:REF]] "
                     "(fake users pushing item ITEM, its id as in the data file, into others' top-10, knowing no "
                     "popularity) | "
                     "promote-pop:ITEM:FRACTION[:BOOST[:REF]] (the same steering towards the REF most popular items, "
                     "20) | scale:FACTOR:FRACTION | signflip:FRACTION | noise:SIGMA:FRACTION (compromised real "
                     "clients); a target adds er@10 to the metrics"),
        ARG_SPEC_STR("exposure-item", &o.exposure_item,
                     "ITEM  measure er@10 of ITEM (its id as in the data file) on every evaluation, attack or not (an "
                     "attack's target is measured anyway)"),
        ARG_SPEC_REAL("crash-rate", &o.crash_rate, 0, 1, ARG_MAX_OPEN, NULL,
                      "P  simulated faults: a sampled client crashes mid-fit with probability P (its result never arrives)"),
        ARG_SPEC_STR("straggler", &o.straggler,
                     "P[:X]  simulated faults: a share P of a round's clients computes X times slower (10); needs --deadline"),
        ARG_SPEC_REAL("deadline", &o.deadline, 0, F, GT, NULL,
                      "S  simulated faults: a round takes no result arriving after S simulated seconds (compute + network)"),
        ARG_SPEC_STR("client-speed", &o.client_speed,
                     "T[:BW[:LAT]]  simulated time: T seconds per training example (1e-3), BW bytes/s each way (1e6), "
                     "LAT seconds each way (0.05)"),
        ARG_SPEC_REAL("over-select", &o.over_select, 0, 10, 0, NULL,
                      "O  sample ceil((1 + O) x wanted) clients a round and take the first wanted results"),
        ARG_SPEC_INT("max-attempts", &o.max_attempts, 1, 255, NULL,
                     "N  tries of a round that falls short of its quorum (max(1, --min-results)) before failing (10)"),
        ARG_SPEC_FLAG("dp-seeded-noise", &o.dp_seeded_noise,
                      "   DP noise from --seed: reproducible, for tests only (not private against anyone knowing the seed)"),
        ARG_SPEC_END,
    };
    const char *pos[1];
    int npos;
    const char *usage =
        "fedrec train [--data PATH] [--test PATH] [--model mf|bpr|gmf|mlp|neumf|lightgcn|lightgcn-full|lightfm|fm|sasrec|pop|bias] "
        "[--centralized] ...";
    int rc = args_parse("train", argc, argv, specs, pos, 0, &npos, usage);
    if (rc < 0) cli_train_defaults_help(o.preset); /* --help: the table of every model's defaults */
    if (rc) return rc < 0 ? 0 : rc;
    fr_model_kind kind = FR_MODEL_MF;
    if (o.model && fr_model_kind_parse(o.model, &kind)) {
        const char *exp = strstr(fr_errmsg(), "expected "); /* the library lists the registered kinds */
        fprintf(stderr, "fedrec train: --model: %s, got '%s'\n", exp ? exp : fr_errmsg(), o.model);
        return 2;
    }
    if (fr_model_kind_is_closed_form(kind) && !o.centralized)
        return usage_err(&o, "--model %s is a baseline fitted in closed form on all the training data: add --centralized "
                         "(it is not trained federated)", o.model);
    if (fr_model_kind_is_central_only(kind) && !o.centralized)
        return usage_err(&o, "--model %s propagates over every user's interactions, which a federated client does not "
                         "have: add --centralized (--model lightgcn is its federated form)", o.model);
    fr_source src;
    fr_source_default(&src);
    if ((rc = cli_load_opts_apply("train", &lo, specs, &src.load))) return rc;
    const char *load_opt = cli_load_opts_given(&lo, specs);
    if (load_opt && !o.data)
        return usage_err(&o, "%s says how to read a --data file; without --data, train uses the built-in synthetic data",
                         load_opt);
    if (o.split && fr_source_parse_split(o.split, &src.split, &src.split_ratio))
        return usage_err(&o, "--split: expected loo, ratio:R, temporal:R or temporal-user:R with 0 < R < 1, got '%s'",
                         o.split);
    if (o.preset) {
        bool known = false;
        for (const char *const *p = fr_run_presets(); *p; p++) known |= !strcmp(*p, o.preset);
        if (!known) return usage_err(&o, "--preset: expected fedrec or textbook, got '%s'", o.preset);
    }
    if ((rc = cli_train_check(&o, specs, kind))) return rc;
    if (cli_check_input("train", "--data", o.data) || cli_check_input("train", "--test", o.test) ||
        cli_check_input("train", "--negatives", o.negatives))
        return 1;
    if (o.runtime && strcmp(o.runtime, "sim") && strcmp(o.runtime, "mpi"))
        return usage_err(&o, "--runtime: expected sim or mpi, got '%s'", o.runtime);
    if (o.runtime && !strcmp(o.runtime, "mpi")) {
        if (o.centralized) return usage_err(&o, "--runtime %s runs a federation: --centralized has no clients", "mpi");
        if (fr_mpi_init(&o.mpi_rank, &o.mpi_size)) {
            fprintf(stderr, "fedrec train: --runtime mpi: %s\n", fr_errmsg());
            return 2;
        }
        o.mpi = true;
    }
    /* Every file the run will write must be writable before the data is loaded. */
    bool nomem;
    char *ckpt = checkpoint_path(&o, specs, &nomem);
    if (nomem) { fprintf(stderr, "fedrec train: out of memory\n"); return mpi_end(&o, 1); }
    if (o.mpi && o.mpi_rank != 0) { /* rank 0 prints and writes; the others only train */
        o.out = o.metrics_out = o.plot = NULL;
        o.quiet = true;
    }
    if ((o.out && cli_check_output("train", "--out", o.out, false)) ||
        (ckpt && cli_check_output("train", "the checkpoint", ckpt, false)) ||
        (o.metrics_out && cli_check_output("train", "--metrics-out", o.metrics_out, true)) ||
        (o.plot && cli_check_output("train", "--plot", o.plot, true))) {
        free(ckpt);
        return mpi_end(&o, 1);
    }
    src.data = o.data;
    src.test = o.test;
    src.negatives = o.negatives;
    src.seed = o.seed;
    src.explicit_ratings = fr_model_kind_is_explicit(kind);
    rc = run(&o, specs, kind, &src, ckpt);
    free(ckpt);
    return mpi_end(&o, rc);
}


int cli_train_embedded(int argc, char **argv, cli_train_embed *e) {
    e->model = NULL;
    e->data = NULL;
    memset(&e->summary, 0, sizeof e->summary);
    fr_provenance_init(&e->prov);
    embed = e;
    cli_embed_set_dataset(e->dataset, e->describe);
    int rc = cli_train(argc, argv);
    cli_embed_set_dataset(NULL, NULL);
    embed = NULL;
    if (rc) { /* a failure after the hand-over (the summary, --metrics-out, --plot) */
        cli_train_embed_free(e);
    }
    return rc;
}

void cli_train_embed_free(cli_train_embed *e) {
    fr_model_free(e->model);
    fr_data_free(e->data);
    fr_provenance_destroy(&e->prov);
    e->model = NULL;
    e->data = NULL;
}
