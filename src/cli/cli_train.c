/* fedrec train: option parsing, loading the data a run works on (the library's data
 * source rules, fr_data_load), and the centralized path (epochs of fr_trainer with
 * evaluation between them). The federated path is cli_train_federated (cli_fed.c).
 * The model file records the run's provenance (fedrec/run.h: the data source with absolute
 * paths, every config field), so `fedrec eval` and `fedrec recommend` load the same data
 * again. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "cli/cli_train.h"
#include "fedrec/eval.h"
#include "fedrec/model_eval.h"
#include "fedrec/run.h"
#include "fedrec/train.h"

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* --split: the library's syntax, with the command line's message. Returns 0, or 2 after
 * printing a usage error. */
static int parse_split(const char *s, fr_split_kind *kind, double *ratio) {
    if (fr_source_parse_split(s, kind, ratio) == FR_OK) return 0;
    fprintf(stderr, "fedrec train: --split: expected loo, ratio:R or temporal:R with 0 < R < 1, got '%s'\n", s);
    return 2;
}

cli_train_data cli_train_view(const fr_data *data, const fr_source *src) {
    return (cli_train_data){fr_data_train(data), fr_data_test(data), fr_data_negatives(data), src->explicit_ratings,
                            fr_data_describe(data), data, src};
}

/* ------------------------------------------------------------------ JSON helpers */

void cli_json_str(FILE *f, const char *s) {
    if (!s) { fputs("null", f); return; }
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c < 0x20) fprintf(f, "\\u%04x", c);
        else fputc(c, f);
    }
    fputc('"', f);
}

/* ------------------------------------------------------------------ centralized */

typedef struct run_defaults {
    fr_optim_kind optim;
    double lr, l2;
    uint32_t batch, neg, epochs, dim;
    double bias_l2, init_std; /* mf; 0 = the model's default */
    double lr_decay;          /* lr of epoch e is lr * lr_decay^(e-1); 1 = constant */
} run_defaults;

/* Defaults per model. mf: tuned on ml-100k u1.base/u1.test (docs/ARCHITECTURE.md); the
 * biases are regularised less than the factors (bias_l2 0.01 vs l2 0.07), the factors
 * start at N(0, 0.02) and the lr decays by 0.9 an epoch, which together take the final
 * RMSE from 0.9209 (l2 0.1 on everything, N(0, 0.1), constant lr) to 0.9146. The
 * implicit models: the PyTorch anchor's NCF settings. */
static run_defaults defaults_for(fr_model_kind k) {
    if (k == FR_MODEL_MF) return (run_defaults){FR_OPTIM_ADAM, 0.0007, 0.07, 16, 0, 15, 32, 0.01, 0.02, 0.9};
    return (run_defaults){FR_OPTIM_ADAM, 0.001, NAN, 256, 4, 20, 0, 0, 0, 1};
}

static void print_metrics(FILE *f, const fr_eval_result *r) {
    if (r->has_rating) fprintf(f, "  rmse %.4f  mae %.4f", r->rmse, r->mae);
    for (size_t k = 0; k < r->n_ks; k++)
        if (r->ks[k] == 10) {
            if (r->has_sampled) fprintf(f, "  hr@10 %.4f  ndcg@10 %.4f", r->hr[k], r->ndcg[k]);
            if (r->has_full) fprintf(f, "  hr@10_full %.4f  ndcg@10_full %.4f", r->hr_full[k], r->ndcg_full[k]);
        }
}

/* Saves the model with its provenance (fedrec/run.h): the data source, the model and
 * training configs, the epochs. */
static int save_model(const cli_train_opts *o, const fr_model *m, const cli_train_data *d, uint64_t epochs,
                      const fr_train_config *tc, double lr_decay) {
    fr_provenance p;
    fr_provenance_init(&p);
    p.mode = FR_RUN_CENTRALIZED;
    p.seed = o->seed;
    p.model = *fr_model_config_of(m);
    p.train = *tc;
    p.epochs = epochs;
    p.lr_decay = lr_decay;
    fr_err e = fr_provenance_set_data(&p, d->src, d->data);
    if (!e) e = fr_provenance_save_model(m, o->out, &p, d->data);
    fr_provenance_destroy(&p);
    return e ? cli_fail(e, "saving the model") : 0;
}

static int train_centralized(const cli_train_opts *o, const cli_train_data *d, fr_model_kind kind) {
    run_defaults def = defaults_for(kind);
    fr_model_config mc;
    fr_model_config_default(&mc, kind);
    uint32_t nu = fr_dataset_n_users(d->train), ni = fr_dataset_n_items(d->train);
    if (fr_dataset_n_users(d->test) > nu) nu = fr_dataset_n_users(d->test);
    if (fr_dataset_n_items(d->test) > ni) ni = fr_dataset_n_items(d->test);
    mc.n_users = nu;
    mc.n_items = ni;
    mc.seed = o->seed;
    if (o->dim) {
        if (o->dim > 4096) { fprintf(stderr, "fedrec train: --dim: expected 1..4096, got %" PRIu64 "\n", o->dim); return 2; }
        mc.dim = (uint32_t)o->dim;
    } else if (def.dim) {
        mc.dim = def.dim;
    }
    if (!isnan(o->l2)) mc.l2 = (float)o->l2;
    else if (!isnan(def.l2)) mc.l2 = (float)def.l2;
    mc.bias_l2 = (float)(isnan(o->bias_l2) ? def.bias_l2 : o->bias_l2);
    mc.init_std = (float)def.init_std;
    if (kind == FR_MODEL_MF) {
        fr_dataset_info in;
        fr_dataset_info_compute(d->train, &in);
        mc.mu = (float)in.rating_mean;
    }
    fr_train_config tc;
    fr_train_config_default(&tc);
    fr_optim_kind ok = def.optim;
    if (o->optimizer) {
        fr_err pe = fr_optim_kind_parse(o->optimizer, &ok);
        if (pe) { fprintf(stderr, "fedrec train: --optimizer: expected sgd, adam or adagrad, got '%s'\n", o->optimizer); return 2; }
    }
    fr_optim_config_default(&tc.optim, ok);
    if (!o->optimizer || ok == def.optim) tc.optim.lr = (float)def.lr;
    if (!isnan(o->lr)) tc.optim.lr = (float)o->lr;
    tc.batch = o->batch ? (uint32_t)o->batch : def.batch;
    if (o->batch > (1u << 24)) { fprintf(stderr, "fedrec train: --batch: expected 1..16777216, got %" PRIu64 "\n", o->batch); return 2; }
    tc.negatives = o->negatives_per_pos ? (uint32_t)o->negatives_per_pos : def.neg;
    tc.seed = o->seed;
    tc.threads = (int)o->threads;
    uint64_t epochs = o->epochs ? o->epochs : def.epochs;
    double decay = isnan(o->lr_decay) ? def.lr_decay : o->lr_decay;
    fr_model *m = NULL;
    fr_trainer *t = NULL;
    fr_model_scorer *sc = NULL;
    FILE *mf = NULL;
    int rc = 0;
    fr_err e = fr_train_config_check(&tc);
    if (!e) e = fr_model_create(&m, &mc);
    if (!e) e = fr_trainer_create(&t, m, d->train, &tc);
    if (!e) e = fr_model_scorer_create(&sc, m, fr_trainer_pool(t), NULL, NULL);
    if (e) { rc = cli_fail(e, "train"); goto done; }
    if (o->metrics_out && !(mf = fopen(o->metrics_out, "w"))) {
        fprintf(stderr, "fedrec train: --metrics-out: cannot write '%s': %s\n", o->metrics_out, strerror(errno));
        rc = 1;
        goto done;
    }
    if (!o->quiet)
        printf("training %s centrally on %s: %u users, %u items, %" PRIu64 " training interactions; %s lr %g, "
               "batch %u, %u negatives per positive, %d threads\n",
               fr_model_kind_name(kind), d->source, nu, ni, fr_dataset_n_interactions(d->train),
               fr_optim_kind_name(tc.optim.kind), (double)tc.optim.lr, tc.batch, kind == FR_MODEL_MF ? 0 : tc.negatives,
               fr_pool_size(fr_trainer_pool(t)));
    for (uint64_t ep = 1; ep <= epochs; ep++) {
        double loss = 0, t0 = now_s();
        float lr_ep = (float)((double)tc.optim.lr * pow(decay, (double)(ep - 1)));
        /* lr_ep is 0 once the power underflows: the last rate then stays */
        if (decay != 1.0 && ep > 1 && lr_ep > 0) e = fr_trainer_set_lr(t, lr_ep);
        if (!e) e = fr_trainer_epoch(t, &loss);
        if (e) { rc = cli_fail(e, "train"); goto done; }
        double secs = now_s() - t0;
        bool do_eval = ep == epochs || (o->eval_every && ep % o->eval_every == 0);
        fr_eval_result r;
        double es = 0;
        if (do_eval) {
            double t1 = now_s();
            e = fr_model_evaluate_with(sc, m, d->train, d->test, d->negs, NULL, fr_trainer_pool(t), &r);
            if (e) { rc = cli_fail(e, "evaluating"); goto done; }
            es = now_s() - t1;
        }
        if (!o->quiet) {
            printf("epoch %3" PRIu64 "/%" PRIu64 "  loss %.5f", ep, epochs, loss);
            if (do_eval) print_metrics(stdout, &r);
            printf("  %.3f s\n", secs);
            fflush(stdout);
        }
        if (mf) {
            char buf[4096] = "";
            if (do_eval && fr_eval_result_json(&r, buf, sizeof buf, NULL)) buf[0] = 0;
            fprintf(mf, "{\"epoch\":%" PRIu64 ",\"loss\":%.6g%s%s,\"seconds\":%.4f,\"eval_seconds\":%.4f}\n", ep, loss,
                    buf[0] ? "," : "", buf, secs, es);
            fflush(mf);
        }
    }
    if (o->out) rc = save_model(o, m, d, epochs, &tc, decay);
done:
    if (mf && fclose(mf) && !rc) { fprintf(stderr, "fedrec train: writing '%s' failed\n", o->metrics_out); rc = 1; }
    fr_model_scorer_free(sc);
    fr_trainer_free(t);
    fr_model_free(m);
    return rc;
}

int cli_train(int argc, char **argv) {
    cli_train_opts o;
    memset(&o, 0, sizeof o);
    o.lr = o.server_lr = o.server_momentum = o.mu = o.tau = o.beta1 = o.beta2 = o.availability = o.l2 = NAN;
    o.bias_l2 = o.lr_decay = o.item_lr = o.item_lr_decay = NAN;
    o.seed = 1;
    o.eval_every = 1;
    arg_spec specs[] = {
        {"data", ARG_STR, &o.data, "PATH  ratings file or NCF directory (default: built-in synthetic data)", false},
        {"test", ARG_STR, &o.test, "PATH  given test file (PATH is then the training file)", false},
        {"negatives", ARG_STR, &o.negatives, "PATH  NCF .negative file for evaluation", false},
        {"split", ARG_STR, &o.split, "S  loo | ratio:R | temporal:R (default loo)", false},
        {"model", ARG_STR, &o.model, "M  mf | bpr | gmf | mlp | neumf (default mf)", false},
        {"dim", ARG_U64, &o.dim, "D  embedding size (default per model)", false},
        {"rounds", ARG_U64, &o.rounds, "R  federated rounds", false},
        {"clients-per-round", ARG_DBL, &o.clients_per_round, "C  clients per round: count or fraction (0 = all)", false},
        {"local-epochs", ARG_U64, &o.local_epochs, "E  local epochs per round", false},
        {"batch", ARG_U64, &o.batch, "B  minibatch size (default per model)", false},
        {"lr", ARG_DBL, &o.lr, "η  learning rate (default per model and optimizer)", false},
        {"optimizer", ARG_STR, &o.optimizer, "O  sgd | adam | adagrad", false},
        {"strategy", ARG_STR, &o.strategy, "S  fedavg | fedavgm | fedprox | fedadam | fedyogi | fedadagrad", false},
        {"centralized", ARG_FLAG, &o.centralized, "   train on all data in one process (no federation)", false},
        {"epochs", ARG_U64, &o.epochs, "N  centralized epochs (default per model)", false},
        {"threads", ARG_I64, &o.threads, "T  worker threads (0 = all cores)", false},
        {"seed", ARG_U64, &o.seed, "S  random seed (default 1)", false},
        {"eval-every", ARG_U64, &o.eval_every, "N  evaluate every N epochs/rounds (0 = at the end; default 1)", false},
        {"out", ARG_STR, &o.out, "FILE  save the model here", false},
        {"metrics-out", ARG_STR, &o.metrics_out, "FILE  JSON Lines metrics per epoch/round", false},
        {"resume", ARG_FLAG, &o.resume, "   resume from the last checkpoint", false},
        {"quiet", ARG_FLAG, &o.quiet, "   no progress lines", false},
        {"item-agg", ARG_STR, &o.item_agg, "A  item rows: mean (exact FedAvg) | rows (over clients that touched the row) | sum", false},
        {"item-optimizer", ARG_STR, &o.item_optimizer, "O  the client's rule for item rows: same (as --optimizer) | sgd | adam | adagrad", false},
        {"item-lr", ARG_DBL, &o.item_lr, "η  learning rate of item rows (with --item-optimizer)", false},
        {"item-lr-decay", ARG_DBL, &o.item_lr_decay, "γ  round r steps item rows at item lr * γ^(r-1) (1 = constant)", false},
        {"server-lr", ARG_DBL, &o.server_lr, "η  server learning rate", false},
        {"server-momentum", ARG_DBL, &o.server_momentum, "β  server momentum (fedavgm)", false},
        {"mu", ARG_DBL, &o.mu, "μ  proximal term (fedprox)", false},
        {"tau", ARG_DBL, &o.tau, "τ  adaptivity (fedadam, fedyogi, fedadagrad)", false},
        {"beta1", ARG_DBL, &o.beta1, "β1  server optimizer", false},
        {"beta2", ARG_DBL, &o.beta2, "β2  server optimizer", false},
        {"availability", ARG_DBL, &o.availability, "P  probability a client is available", false},
        {"neg", ARG_U64, &o.negatives_per_pos, "K  sampled training negatives per positive (default 4; 0 = default)", false},
        {"l2", ARG_DBL, &o.l2, "λ  L2 regularisation (default per model)", false},
        {"lr-decay", ARG_DBL, &o.lr_decay, "γ  centralized: epoch e trains at lr * γ^(e-1) (default 1, mf 0.9)",
         false},
        {"bias-l2", ARG_DBL, &o.bias_l2, "λ  mf, centralized: L2 of the biases alone (0 = --l2; default 0.01)",
         false},
        {"checkpoint-every", ARG_U64, &o.checkpoint_every, "N  checkpoint every N rounds", false},
        {"partition", ARG_STR, &o.partition,
         "P  who holds which users: user (a client each, default) | iid:K (K silos) | dirichlet:K[:ALPHA] "
         "(K non-IID silos, ALPHA 0.5)", false},
        {"keep-private-optim", ARG_FLAG, &o.keep_private_optim,
         "   clients keep their optimizer state for their private rows from round to round", false},
        {NULL, 0, NULL, NULL, false},
    };
    const char *pos[1];
    int npos;
    const char *usage = "fedrec train [--data PATH] [--test PATH] [--model mf|bpr|gmf|mlp|neumf] [--centralized] ...";
    int rc = args_parse(argc, argv, specs, pos, 0, &npos, usage);
    if (rc) return rc < 0 ? 0 : rc;
    fr_model_kind kind = FR_MODEL_MF;
    if (o.model && fr_model_kind_parse(o.model, &kind)) {
        fprintf(stderr, "fedrec train: --model: expected mf, bpr, gmf, mlp or neumf, got '%s'\n", o.model);
        return 2;
    }
    if (!o.model) o.model = "mf";
    fr_source src;
    fr_source_default(&src);
    if (o.split && parse_split(o.split, &src.split, &src.split_ratio)) return 2;
    if (o.optimizer) {
        fr_optim_kind ok;
        if (fr_optim_kind_parse(o.optimizer, &ok)) {
            fprintf(stderr, "fedrec train: --optimizer: expected sgd, adam or adagrad, got '%s'\n", o.optimizer);
            return 2;
        }
    }
    if (o.item_optimizer && strcmp(o.item_optimizer, "same")) {
        fr_optim_kind ok;
        if (fr_optim_kind_parse(o.item_optimizer, &ok)) {
            fprintf(stderr, "fedrec train: --item-optimizer: expected same, sgd, adam or adagrad, got '%s'\n",
                    o.item_optimizer);
            return 2;
        }
    }
    if (!isnan(o.item_lr) && !(o.item_lr > 0 && o.item_lr < INFINITY)) {
        fprintf(stderr, "fedrec train: --item-lr: expected a positive number, got %g\n", o.item_lr);
        return 2;
    }
    if (!isnan(o.item_lr_decay) && !(o.item_lr_decay > 0 && o.item_lr_decay <= 1)) {
        fprintf(stderr, "fedrec train: --item-lr-decay: expected a number in (0, 1], got %g\n", o.item_lr_decay);
        return 2;
    }
    if (o.item_agg && strcmp(o.item_agg, "mean") && strcmp(o.item_agg, "rows") && strcmp(o.item_agg, "sum")) {
        fprintf(stderr, "fedrec train: --item-agg: expected mean, rows or sum, got '%s'\n", o.item_agg);
        return 2;
    }
    if (o.strategy) {
        static const char *const names[] = {"fedavg", "fedavgm", "fedprox", "fedadam", "fedyogi", "fedadagrad"};
        bool ok = false;
        for (size_t i = 0; i < sizeof names / sizeof *names; i++) ok |= !strcmp(o.strategy, names[i]);
        if (!ok) {
            fprintf(stderr, "fedrec train: --strategy: expected fedavg, fedavgm, fedprox, fedadam, fedyogi or "
                            "fedadagrad, got '%s'\n", o.strategy);
            return 2;
        }
    }
    if (o.threads < 0 || o.threads > 1024) {
        fprintf(stderr, "fedrec train: --threads: expected 0..1024 (0 = all cores), got %" PRId64 "\n", o.threads);
        return 2;
    }
    if (!isnan(o.lr) && !(o.lr > 0)) { fprintf(stderr, "fedrec train: --lr: expected a positive number, got %g\n", o.lr); return 2; }
    if (!isnan(o.lr_decay) && !(o.lr_decay > 0 && o.lr_decay <= 1)) {
        fprintf(stderr, "fedrec train: --lr-decay: expected a number in (0, 1], got %g\n", o.lr_decay);
        return 2;
    }
    if (!isnan(o.bias_l2) && !(o.bias_l2 >= 0 && o.bias_l2 < INFINITY)) {
        fprintf(stderr, "fedrec train: --bias-l2: expected a number >= 0 (0 = --l2), got %g\n", o.bias_l2);
        return 2;
    }
    if (!isnan(o.l2) && !(o.l2 >= 0)) { fprintf(stderr, "fedrec train: --l2: expected a number >= 0, got %g\n", o.l2); return 2; }
    if (o.negatives_per_pos > 1000) {
        fprintf(stderr, "fedrec train: --neg: expected 0..1000, got %" PRIu64 "\n", o.negatives_per_pos);
        return 2;
    }
    if (o.centralized && (o.item_optimizer || !isnan(o.item_lr) || !isnan(o.item_lr_decay))) {
        fprintf(stderr, "fedrec train: --item-optimizer, --item-lr and --item-lr-decay apply to federated training, "
                        "not --centralized\n");
        return 2;
    }
    if (o.partition && cli_parse_partition(o.partition, NULL, NULL, NULL)) return 2;
    if (o.centralized && (o.partition || o.keep_private_optim)) {
        fprintf(stderr, "fedrec train: --partition and --keep-private-optim apply to federated training, not "
                        "--centralized\n");
        return 2;
    }
    if (o.centralized && o.resume) {
        fprintf(stderr, "fedrec train: --resume applies to federated training; centralized runs do not checkpoint\n");
        return 2;
    }
    if (o.test && !o.data) { fprintf(stderr, "fedrec train: --test needs --data (the training file)\n"); return 2; }
    if (o.clients_per_round < 0) {
        fprintf(stderr, "fedrec train: --clients-per-round: expected a count >= 1 or a fraction in (0, 1), got %g\n",
                o.clients_per_round);
        return 2;
    }
    src.data = o.data;
    src.test = o.test;
    src.negatives = o.negatives;
    src.seed = o.seed;
    src.explicit_ratings = fr_model_kind_is_explicit(kind);
    fr_data *data = NULL;
    fr_err e = fr_data_load(&data, &src);
    if (e) return cli_fail(e, "train");
    cli_train_data d = cli_train_view(data, &src);
    if (o.centralized) rc = train_centralized(&o, &d, kind);
    else rc = cli_train_federated(&o, &d);
    fr_data_free(data);
    return rc;
}
