/* fedrec train, federated path: builds the model and federation configs from the
 * options, runs rounds on the `sim` runtime, evaluates every N rounds, prints a progress
 * line per round on a terminal, writes --metrics-out (JSON Lines, one object per round),
 * checkpoints every --checkpoint-every rounds and at the end (to <out>.ckpt, or
 * fedrec-train.ckpt without --out; nothing is written without --out, --checkpoint-every
 * or --resume), continues from that checkpoint with --resume, and saves the model.
 * Only this layer prints. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/train_opts.h"
#include "fedrec/eval.h"
#include "fedrec/model_eval.h"
#include "fedrec/run.h"
#include "fedrec/runtime.h"

int cli_parse_partition(const char *s, fr_partition_kind *kind, uint32_t *k, double *alpha) {
    fr_partition_kind kk = FR_PARTITION_USER;
    unsigned long long n = 0;
    double a = 0.5;
    char tail;
    if (!strcmp(s, "user")) {
        kk = FR_PARTITION_USER;
    } else if (!strncmp(s, "iid:", 4) && sscanf(s + 4, "%llu%c", &n, &tail) == 1 && n >= 1 && n <= UINT32_MAX) {
        kk = FR_PARTITION_IID;
    } else if (!strncmp(s, "dirichlet:", 10) &&
               (sscanf(s + 10, "%llu%c", &n, &tail) == 1 ||
                (sscanf(s + 10, "%llu:%lf%c", &n, &a, &tail) == 2 && a > 0 && isfinite(a))) &&
               n >= 1 && n <= UINT32_MAX) {
        kk = FR_PARTITION_DIRICHLET;
    } else {
        fprintf(stderr, "fedrec train: --partition: expected user, iid:K or dirichlet:K[:ALPHA] (K >= 1 silos, "
                        "ALPHA > 0), got '%s'\n", s);
        return 2;
    }
    if (kind) *kind = kk;
    if (k) *k = (uint32_t)n;
    if (alpha) *alpha = a;
    return 0;
}

/* --item-agg name of a config: how item-table rows are aggregated. */
static const char *item_agg_name(const fr_fl_config *fc) {
    return fc->item_sum ? "sum" : fc->row_norm ? "rows" : "mean";
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static bool set(double x) { return !isnan(x) && x != 0; }

static int k10(const fr_eval_result *r) {
    for (size_t i = 0; i < r->n_ks; i++)
        if (r->ks[i] == 10) return (int)i;
    return 0;
}

/* The client's rule for item rows, for messages and the model file. */
static void item_rule(const fr_fl_config *fc, char *buf, size_t n) {
    if (fc->item_local.kind == 0) snprintf(buf, n, "as the rest");
    else snprintf(buf, n, "%s lr %g", fr_optim_kind_name(fc->item_local.kind), (double)fc->item_local.lr);
    if (fc->item_lr_decay != 1.0f) {
        size_t k = strlen(buf);
        snprintf(buf + k, n - k, " decay %g/round", (double)fc->item_lr_decay);
    }
}

/* Builds the configs from the options; returns 0 or 2 after printing a usage error. */
static int configs(const cli_train_opts *o, const cli_train_data *d, fr_model_config *mc, fr_fl_config *fc) {
    fr_model_kind kind = d->explicit_ratings ? FR_MODEL_MF : FR_MODEL_NEUMF;
    if (o->model && fr_model_kind_parse(o->model, &kind)) {
        fprintf(stderr, "fedrec train: %s\n", fr_errmsg());
        return 2;
    }
    fr_model_config_default(mc, kind);
    if (o->dim) mc->dim = (uint32_t)o->dim;
    if (!isnan(o->l2)) mc->l2 = (float)o->l2; /* NaN = the model default; 0 is a real choice */
    mc->seed = o->seed;
    if (kind == FR_MODEL_MF) { /* global mean of the training ratings */
        double sum = 0;
        uint64_t n = 0;
        for (uint32_t u = 0; u < fr_dataset_n_users(d->train); u++) {
            const float *r;
            size_t k = fr_dataset_user(d->train, u, NULL, &r, NULL);
            for (size_t i = 0; i < k; i++) sum += r[i];
            n += k;
        }
        mc->mu = n ? (float)(sum / (double)n) : 0;
    }
    fr_fl_config_default(fc, kind);
    fc->seed = o->seed;
    /* fedrec's defaults where the library's (the textbook FedAvg of the PyTorch anchors)
     * crawl for recommendation; measured on ml-100k (docs/ARCHITECTURE.md, federated):
     * implicit NCF models sum item-row deltas over the round's clients, step item rows
     * with plain SGD (a fresh Adam turns each row's first gradient into a step of +-lr
     * whatever its size, and the sum of those over hundreds of clients is noise) at an lr
     * decayed by round, and keep Adam for the dense layers and the private rows, with a
     * light L2; mf sums item-row deltas too, with small local steps (the anchor's server
     * lr 300 reaches RMSE 0.926 on ml-100k u1 but diverges on data with heavier users,
     * such as the built-in synthetic set). */
    if (kind == FR_MODEL_GMF || kind == FR_MODEL_MLP || kind == FR_MODEL_NEUMF) {
        fc->item_sum = true;
        fc->local.lr = 0.006f;
        fc->batch = 32;
        fr_optim_config_default(&fc->item_local, FR_OPTIM_SGD);
        fc->item_local.lr = 0.8f;
        fc->item_lr_decay = 0.96f;
        if (isnan(o->l2)) mc->l2 = 2e-4f;
        if (!o->dim && kind != FR_MODEL_MLP) mc->dim = 64;
    } else if (kind == FR_MODEL_MF) {
        fc->item_sum = true;
        fc->local.lr = 0.01f;
    }
    if (o->strategy) {
        if (fr_strategy_parse(o->strategy, &fc->strategy)) {
            fprintf(stderr, "fedrec train: %s\n", fr_errmsg());
            return 2;
        }
        if (fc->strategy >= FR_STRATEGY_FEDADAM) fc->server_lr = 0.01f;
    }
    if (o->optimizer) {
        fr_optim_kind ok;
        if (fr_optim_kind_parse(o->optimizer, &ok)) {
            fprintf(stderr, "fedrec train: %s\n", fr_errmsg());
            return 2;
        }
        if (ok != fc->local.kind) fr_optim_config_default(&fc->local, ok); /* else keep the model's lr */
    }
    if (!isnan(o->lr) && o->lr > 0) fc->local.lr = (float)o->lr;
    if (o->local_epochs) fc->local_epochs = (uint32_t)o->local_epochs;
    if (o->batch) fc->batch = (uint32_t)o->batch;
    fc->clients_per_round = o->clients_per_round > 0 ? o->clients_per_round : 0;
    if (set(o->server_lr)) fc->server_lr = (float)o->server_lr;
    if (set(o->server_momentum)) fc->server_momentum = (float)o->server_momentum;
    if (set(o->mu)) fc->mu = (float)o->mu;
    if (set(o->tau)) fc->tau = (float)o->tau;
    if (set(o->beta1)) fc->beta1 = (float)o->beta1;
    if (set(o->beta2)) fc->beta2 = (float)o->beta2;
    if (set(o->availability)) fc->availability = o->availability;
    if (o->negatives_per_pos) fc->negatives = (uint32_t)o->negatives_per_pos;
    if (o->item_optimizer) {
        if (!strcmp(o->item_optimizer, "same")) {
            fc->item_local.kind = 0;
        } else {
            fr_optim_kind ok;
            if (fr_optim_kind_parse(o->item_optimizer, &ok)) {
                fprintf(stderr, "fedrec train: %s\n", fr_errmsg());
                return 2;
            }
            if (ok != fc->item_local.kind) fr_optim_config_default(&fc->item_local, ok);
        }
    }
    if (!isnan(o->item_lr)) {
        if (fc->item_local.kind == 0) {
            fprintf(stderr, "fedrec train: --item-lr needs an item optimizer (--item-optimizer sgd|adam|adagrad); "
                            "with 'same', item rows use --lr\n");
            return 2;
        }
        fc->item_local.lr = (float)o->item_lr;
    }
    if (!isnan(o->item_lr_decay)) fc->item_lr_decay = (float)o->item_lr_decay;
    fc->keep_private_optim = o->keep_private_optim;
    if (o->item_agg) {
        fc->row_norm = !strcmp(o->item_agg, "rows");
        fc->item_sum = !strcmp(o->item_agg, "sum");
    }
    if (fr_fl_config_check(fc)) {
        fprintf(stderr, "fedrec train: %s\n", fr_errmsg());
        return 2;
    }
    return 0;
}

/* The library's scorer and metric dispatch, as `fedrec eval` uses them: the sim's model
 * holds the global shared parameters and every client's private rows. */
static fr_err evaluate(fr_sim *sim, const cli_train_data *d, fr_model_scorer *sc, fr_pool *pool, fr_eval_result *r) {
    return fr_model_evaluate_with(sc, fr_sim_model(sim), d->train, d->test, d->negs, NULL, pool, r);
}

/* Saves the sim's model (shared + every client's private rows) with its provenance. */
static fr_err save_model(fr_sim *sim, const cli_train_opts *o, const cli_train_data *d, const fr_fl_config *fc) {
    fr_provenance p;
    fr_provenance_init(&p);
    p.mode = FR_RUN_FEDERATED;
    p.seed = o->seed;
    p.model = *fr_model_config_of(fr_sim_model(sim));
    p.fl = *fc;
    p.rounds = fr_round_completed(fr_sim_controller(sim));
    p.partition = o->partition ? o->partition : "user";
    fr_err e = fr_provenance_set_data(&p, d->src, d->data);
    if (!e) e = fr_provenance_save_model(fr_sim_model(sim), o->out, &p, d->data);
    fr_provenance_destroy(&p);
    return e;
}

int cli_train_federated(const cli_train_opts *o, cli_train_data *d) {
    fr_model_config mc;
    fr_fl_config fc;
    int rc = configs(o, d, &mc, &fc);
    if (rc) return rc;
    char ckpt[4096];
    snprintf(ckpt, sizeof ckpt, "%s.ckpt", o->out ? o->out : "fedrec-train");
    fr_pool *pool = NULL;
    fr_sim *sim = NULL;
    fr_partition *part = NULL;
    FILE *mf = NULL;
    fr_model_scorer *sc = NULL;
    fr_err e = fr_pool_create(&pool, (int)o->threads);
    if (e) { rc = cli_fail(e, "train"); goto done; }
    uint32_t n_clients = fr_dataset_n_users(d->train);
    if (o->partition && strcmp(o->partition, "user")) {
        fr_partition_kind pk;
        uint32_t pkn;
        double pa;
        cli_parse_partition(o->partition, &pk, &pkn, &pa); /* checked by cli_train */
        e = fr_partition_make(&part, d->train, pk, pkn, pa, NULL, o->seed);
        if (e) { rc = cli_fail(e, "train --partition"); goto done; }
        n_clients = part->n_clients;
    }
    e = fr_sim_create_silos(&sim, &mc, &fc, d->train, part, pool);
    if (e) { rc = cli_fail(e, "train"); goto done; }
    e = fr_model_scorer_create(&sc, fr_sim_model(sim), pool, NULL, NULL);
    if (e) { rc = cli_fail(e, "train"); goto done; }
    if (o->resume) {
        e = fr_sim_checkpoint_load(sim, ckpt);
        if (e) { rc = cli_fail(e, "train --resume"); goto done; }
    }
    if (o->metrics_out) {
        mf = fopen(o->metrics_out, o->resume ? "a" : "w");
        if (!mf) { fprintf(stderr, "fedrec train: cannot open %s for writing\n", o->metrics_out); rc = 1; goto done; }
    }
    bool tty = isatty(2) && !o->quiet;
    uint32_t start = fr_round_completed(fr_sim_controller(sim));
    bool ncf = mc.kind == FR_MODEL_GMF || mc.kind == FR_MODEL_MLP || mc.kind == FR_MODEL_NEUMF;
    uint64_t rounds = o->rounds ? o->rounds : ncf ? 50 : 20;
    char rule[96];
    item_rule(&fc, rule, sizeof rule);
    double t_begin = now_s();
    fr_eval_result last = {0};
    bool have_eval = false;
    if (!o->quiet)
        fprintf(stderr,
                "fedrec train: federated %s on %s: %u clients (%s), %u items, strategy %s, E=%u B=%u %s lr %g,"
                " item rows: %s of deltas, steps %s; %u rounds%s\n",
                fr_model_kind_name(mc.kind), d->source, n_clients,
                part ? o->partition : "a user each", fr_dataset_n_items(d->train),
                fr_strategy_name(fc.strategy), fc.local_epochs, fc.batch, fr_optim_kind_name(fc.local.kind),
                (double)fc.local.lr, item_agg_name(&fc), rule, (unsigned)rounds,
                start ? " (resumed)" : "");
    for (uint64_t r = start + 1; r <= rounds; r++) {
        double t0 = now_s();
        fr_round_stats st;
        e = fr_sim_round(sim, &st);
        if (e) { rc = cli_fail(e, "train"); goto done; }
        bool ev = (o->eval_every && r % o->eval_every == 0) || r == rounds;
        fr_eval_result er;
        if (ev) {
            e = evaluate(sim, d, sc, pool, &er);
            if (e) { rc = cli_fail(e, "train: evaluation"); goto done; }
            last = er;
            have_eval = true;
        }
        double secs = now_s() - t0;
        if (o->checkpoint_every && r % o->checkpoint_every == 0) {
            e = fr_sim_checkpoint_save(sim, ckpt);
            if (e) { rc = cli_fail(e, "train: checkpoint"); goto done; }
        }
        char metric[96] = "";
        if (ev && er.has_sampled)
            snprintf(metric, sizeof metric, "  hr@10 %.4f  ndcg@10 %.4f", er.hr[k10(&er)], er.ndcg[k10(&er)]);
        else if (ev && er.has_full)
            snprintf(metric, sizeof metric, "  hr@10 %.4f  ndcg@10 %.4f", er.hr_full[k10(&er)], er.ndcg_full[k10(&er)]);
        else if (ev && er.has_rating)
            snprintf(metric, sizeof metric, "  rmse %.4f  mae %.4f", er.rmse, er.mae);
        if (tty) {
            double el = now_s() - t_begin;
            double eta = el / (double)(r - start) * (double)(rounds - r);
            fprintf(stderr, "round %" PRIu64 "/%" PRIu64 "  loss %.4f%s  clients %u  up %.1f MB  down %.1f MB  %.2f s  ETA %.0f s\n",
                    r, rounds, st.loss, metric, st.clients, (double)st.bytes_up / 1e6, (double)st.bytes_down / 1e6,
                    secs, eta);
        }
        if (mf) {
            fprintf(mf, "{\"round\":%" PRIu64 ",\"loss\":%.6f", r, st.loss);
            if (ev) {
                char js[4096];
                if (fr_eval_result_json(&er, js, sizeof js, NULL) == FR_OK && js[0]) fprintf(mf, ",%s", js);
            }
            fprintf(mf, ",\"clients\":%u,\"bytes_up\":%" PRIu64 ",\"bytes_down\":%" PRIu64 ",\"seconds\":%.4f}\n",
                    st.clients, st.bytes_up, st.bytes_down, secs);
            fflush(mf);
        }
    }
    if (o->out || o->checkpoint_every || o->resume) { /* no unasked-for file in the working directory */
        e = fr_sim_checkpoint_save(sim, ckpt);
        if (e) { rc = cli_fail(e, "train: checkpoint"); goto done; }
    }
    if (o->out) {
        e = save_model(sim, o, d, &fc);
        if (e) { rc = cli_fail(e, "train: saving the model"); goto done; }
    }
    if (have_eval && !o->quiet) {
        if (last.has_sampled) printf("round %u: hr@10 %.4f ndcg@10 %.4f\n", fr_round_completed(fr_sim_controller(sim)),
                                     last.hr[k10(&last)], last.ndcg[k10(&last)]);
        else if (last.has_full) printf("round %u: hr@10_full %.4f ndcg@10_full %.4f\n", fr_round_completed(fr_sim_controller(sim)),
                                       last.hr_full[k10(&last)], last.ndcg_full[k10(&last)]);
        else if (last.has_rating) printf("round %u: rmse %.4f mae %.4f\n", fr_round_completed(fr_sim_controller(sim)), last.rmse,
                                         last.mae);
    }
    rc = 0;
done:
    if (mf) fclose(mf);
    fr_model_scorer_free(sc);
    fr_sim_free(sim);
    fr_partition_free(part);
    fr_pool_free(pool);
    return rc;
}
