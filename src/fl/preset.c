/* Run configurations and their presets (see include/fedrec/run.h). A preset is data: a
 * table of tuned values per model kind name, applied over the library's defaults, so the
 * CLI and Python start from the same place and a kind without tuned values still runs.
 * How the "fedrec" values were found is in docs/ARCHITECTURE.md (federated defaults, mf
 * defaults). */
#include <math.h>
#include <stdio.h>

#include "core/core.h"
#include "fedrec/run.h"

static const char *const presets[] = {"fedrec", "textbook", NULL};

const char *const *fr_run_presets(void) { return presets; }

/* The global mean of the training ratings (a rating model's mu). */
float fr_run_mean_rating(const fr_dataset *d) {
    double sum = 0;
    uint64_t n = 0;
    for (uint32_t u = 0; u < fr_dataset_n_users(d); u++) {
        const float *r;
        size_t k = fr_dataset_user(d, u, NULL, &r, NULL);
        for (size_t i = 0; i < k; i++) sum += r[i];
        n += k;
    }
    return n ? (float)(sum / (double)n) : 0.0f;
}

fr_err fr_run_data_stats_of(const fr_dataset *train, fr_run_data_stats *out) {
    memset(out, 0, sizeof *out);
    out->users = fr_dataset_n_users(train);
    out->interactions = fr_dataset_n_interactions(train);
    out->mean_rating = fr_run_mean_rating(train);
    out->weighted = fr_dataset_weighted(train);
    return fr_dataset_graph_load(train, &out->graph_load);
}

void fr_run_data_stats_of_federation(const fr_federation *fed, fr_run_data_stats *out) {
    memset(out, 0, sizeof *out);
    out->users = fed->clients;
    out->interactions = fed->interactions;
    out->mean_rating = fed->mean_rating;
    out->weighted = fed->weighted;
    out->graph_load = fed->graph_load;
}

static bool is(const char *kind, const char *a, const char *b, const char *c) {
    return !strcmp(kind, a) || (b && !strcmp(kind, b)) || (c && !strcmp(kind, c));
}

uint32_t fr_run_fl_rounds(const fr_run_config *c, uint64_t n_clients) {
    if (!(c->fl_epochs > 0) || n_clients == 0) return c->loop.steps;
    const double cpr = c->fl.clients_per_round;
    double per = cpr >= 1 ? cpr : cpr > 0 ? ceil(cpr * (double)n_clients) : (double)n_clients;
    if (per > (double)n_clients) per = (double)n_clients;
    if (per < 1) per = 1;
    const double r = ceil(c->fl_epochs * (double)n_clients / per - 1e-9);
    return r < 1 ? 1 : r > 4e9 ? 4000000000u : (uint32_t)r;
}

/* The implicit models' federated rule: item rows take the sum of the round's deltas and
 * step by SGD at item_lr decayed by decay a round; Adam 0.006 for the dense layers and
 * the private rows, B = 32, 4 sampled negatives a positive. */
static void summed_item_rows(fr_run_config *c, float item_lr, float decay) {
    c->fl.item_sum = true;
    fr_optim_config_default(&c->fl.local, FR_OPTIM_ADAM);
    c->fl.local.lr = 0.006f;
    c->fl.batch = 32;
    c->fl.negatives = 4;
    fr_optim_config_default(&c->fl.item_local, FR_OPTIM_SGD);
    c->fl.item_local.lr = item_lr;
    c->fl.item_lr_decay = decay;
}

#define SASREC_FL_EPOCHS 40.7 /* sasrec's federated rounds: epochs' worth of clients (1200 on 943 users) */

/* Centralized sasrec's dropout from the training interactions n (fedrec/run.h): its
 * post-norm blocks overfit a small set at 0.2 and underfit a larger one at 0.5 in the
 * preset's 40 epochs. */
static float sasrec_dropout(uint64_t n) {
    const double x = (double)n;
    if (x <= FR_RUN_SASREC_N_SMALL) return (float)FR_RUN_SASREC_DROP_SMALL;
    if (x >= FR_RUN_SASREC_N_LARGE) return (float)FR_RUN_SASREC_DROP_LARGE;
    return (float)(FR_RUN_SASREC_DROP_SMALL + (FR_RUN_SASREC_DROP_LARGE - FR_RUN_SASREC_DROP_SMALL) *
                                                  log(x / FR_RUN_SASREC_N_SMALL) /
                                                  log(FR_RUN_SASREC_N_LARGE / FR_RUN_SASREC_N_SMALL));
}

/* fedrec's tuned federated settings (measured on ml-100k, docs/ARCHITECTURE.md). */
static void fedrec_federated(fr_run_config *c, const char *k) {
    if (is(k, "gmf", "mlp", "neumf")) {
        /* item rows take the sum of the round's deltas and step with plain SGD at an lr
         * decayed by round (a fresh Adam turns each row's first gradient into a step of
         * +-lr whatever its size); Adam for the dense layers and the private rows */
        c->fl.item_sum = true;
        c->fl.local.lr = 0.006f;
        c->fl.batch = 32;
        fr_optim_config_default(&c->fl.item_local, FR_OPTIM_SGD);
        c->fl.item_local.lr = 0.8f;
        c->fl.item_lr_decay = 0.96f;
        c->model.l2 = 2e-4f;
        if (strcmp(k, "mlp")) c->model.dim = 64;
        /* neumf: 30 rounds, its peak on a validation split cut from ml-100k-loo's
         * train.rating (HR@10 0.669 at 25-30 rounds, 0.654 at 50) */
        c->loop.steps = strcmp(k, "neumf") ? 50 : 30;
    } else if (is(k, "bpr", NULL, NULL)) {
        /* the NCF models' item-row rule, and 4 sampled negatives per positive (one
         * negative a positive left the loss at ln 2 for dozens of rounds) */
        summed_item_rows(c, 0.8f, 0.96f);
        c->loop.steps = 40;
    } else if (is(k, "lightgcn", NULL, NULL)) {
        /* bpr's rule with a far smaller item-row rate: every step of a client moves all
         * of its own items' rows (its propagation reads them), so the round's summed
         * deltas are larger (item lr 0.8 and 0.2 diverged); tuned on a leave-one-out
         * validation split of ml-100k-loo's train.rating (docs/ARCHITECTURE.md); scaled
         * down on a busier graph (fr_run_config_preset, FR_RUN_LIGHTGCN_REF_LOAD) */
        summed_item_rows(c, 0.05f, 0.99f);
        c->loop.steps = 60;
    } else if (is(k, "lightfm", "fm", NULL)) {
        /* bpr's federated rule (item rows summed, SGD 0.8 decayed by round; Adam for the
         * feature tables and the private rows), 4 negatives; bpr, not WARP: a client's
         * WARP draws only among the rows it loaded (model_hybrid.c). lightfm 40 rounds,
         * the peak on the validation split (HR@10 0.652 at 40, 0.648 at 60; centralized
         * 0.668); fm 60: at 40 it was 1.7% below centralized on a validation cut of
         * ml-100k and 6.1% on one of the ml-1m partial ratings, at 60 0.5% and 5.1% (80
         * rounds or item decay 0.98 no better on ml-100k; docs/ARCHITECTURE.md). Against
         * the current centralized figures both are 4.8% below on the ml-1m cut; rounds
         * grown with the users (fm 191, lightfm 128 there) were worse: HR@10 falls past
         * round 80 (docs/ARCHITECTURE.md, rounds against the size of the federation) */
        summed_item_rows(c, 0.8f, 0.96f);
        c->loop.steps = strcmp(k, "fm") ? 40 : 60;
    } else if (is(k, "mf", NULL, NULL)) {
        /* item rows take the sum of the clients' deltas (three local epochs of SGD 0.03)
         * as a pseudo-gradient for a server Adam (FedAdam, lr 0.01), which gives every
         * item row its own step size; 64 factors, L2 0.1 on the factors, 0.01 on the
         * biases, 100 rounds. Tuned on validation splits cut from ml-100k u1.base and
         * from the ml-1m partial ratings: L2 0.1 keeps the larger of the two gaps to
         * centralized smallest (docs/ARCHITECTURE.md). */
        c->fl.item_sum = true;
        c->fl.local.lr = 0.03f;
        c->fl.local_epochs = 3;
        c->fl.strategy = FR_STRATEGY_FEDADAM;
        c->fl.server_lr = 0.01f;
        c->model.dim = 64;
        c->model.l2 = 0.10f;
        c->model.bias_l2 = 0.01f;
        c->loop.steps = 100;
    } else if (is(k, "sasrec", NULL, NULL)) {
        /* a round is one minibatch step of the centralized recipe: 32 sampled clients
         * each take ONE full-batch plain-SGD step of lr 1 on its own windows (its update
         * is minus its gradient), FedAvg weighs them by examples, and the server's Adam
         * (FedAdam, lr 0.003, beta2 0.999, tau 1e-7, as the centralized Adam) steps on the
         * average: the centralized minibatch Adam with a batch of 32 users. Tuned on a
         * validation cut of ml-100k's training data (docs/ARCHITECTURE.md, sasrec): 1200
         * rounds are 40 epochs' examples there; 32 clients a round against 128 (4x the
         * rounds, 1.1x the CPU) HR@10 / NDCG@10 0.7561 / 0.4760 against 0.7409 / 0.4620
         * over seeds 1-3, 0.992 of centralized HR@10 there.
         * CE's client loads and sends the whole item table (fri_model_reads_all_items).
         * Pre-norm blocks with dropout 0.2 (the model's defaults): post-norm with dropout
         * 0.5 (--norm post) gave 0.5090 / 0.2817 here on that cut (seed 1) against
         * pre-norm's 0.7593 / 0.4834. */
        c->model.loss = FR_LOSS_CE; /* as centralized */
        fr_optim_config_default(&c->fl.local, FR_OPTIM_SGD);
        c->fl.local.lr = 1.0f;
        c->fl.batch = 1u << 20;
        c->fl.local_epochs = 1;
        c->fl.clients_per_round = 32;
        c->fl.strategy = FR_STRATEGY_FEDADAM;
        c->fl.server_lr = 0.003f;
        c->fl.beta1 = 0.9f;
        c->fl.beta2 = 0.999f;
        c->fl.tau = 1e-7f;
        /* rounds from the data: FL_EPOCHS epochs' worth of clients (1200 rounds on ml-100k's
         * 943 users; a fixed count would be 3x fewer epochs on a set of 3x the users) */
        c->fl_epochs = SASREC_FL_EPOCHS;
        c->loop.steps = 1200;
    }
}

/* fedrec's centralized settings: mf and bpr take one SGD step per example (Funk's rule,
 * the trainer's fused per-example loop: a few nanoseconds of bookkeeping a step where a
 * minibatch optimizer spends microseconds), tuned on validation splits cut from the
 * training data (docs/ARCHITECTURE.md, mf and bpr defaults); the NCF models keep the
 * anchors' settings. */
static void fedrec_centralized(fr_run_config *c, const char *k) {
    fr_train_config_default(&c->train);
    bool mf = is(k, "mf", NULL, NULL);
    if (mf || is(k, "bpr", NULL, NULL)) {
        fr_optim_config_default(&c->train.optim, FR_OPTIM_SGD);
        c->train.optim.sparse_rows = true;
        c->train.batch = 1;
        c->model.init_std = mf ? 0.02f : 0.0f;
        c->model.dim = 32;
    }
    if (mf) {
        c->train.optim.lr = 0.02f;
        c->train.negatives = 0;
        c->model.l2 = 0.08f;
        c->model.bias_l2 = 0.01f;
        c->lr_decay = 0.92;
        c->loop.steps = 40;
    } else if (is(k, "lightgcn", NULL, NULL)) {
        /* large batches: a batch propagates each of its users once, so an epoch costs
         * about (batches x the graph's edges); Adam 0.03 x0.95 an epoch, one negative a
         * positive, L2 0.005, 50 epochs (tuned on the validation split,
         * docs/ARCHITECTURE.md) */
        c->train.batch = 8192;
        c->train.shards = 1; /* each shard propagates its users again: one is half the work */
        c->train.optim.lr = 0.03f;
        c->train.negatives = 1;
        c->model.l2 = 0.005f;
        c->lr_decay = 0.95;
        c->loop.steps = 50;
    } else if (is(k, "lightgcn-full", NULL, NULL)) {
        /* every batch propagates the whole graph (2 K sweeps over its edges), so large
         * batches; Adam 0.01, one negative a positive, L2 0.001, K = 2 (RecBole's), 60
         * epochs: on the validation cut of ml-100k-loo's train.rating HR@10 rises to 0.688
         * at 60 and stays within 0.68-0.69 to 100 (lr 0.02, batch 8192, L2 1e-4 or 0 peak
         * no higher; L2 0.005 0.625; K = 3 0.668 at 100), docs/ARCHITECTURE.md */
        c->train.batch = 4096;
        c->train.shards = 1; /* every batch propagates the whole graph: a shard would again */
        c->train.optim.lr = 0.01f;
        c->train.negatives = 1;
        c->model.l2 = 0.001f;
        c->loop.steps = 60;
    } else if (is(k, "lightfm", "fm", NULL)) {
        /* WARP with adagrad on the rows a minibatch touches, LightFM's defaults (10 draws,
         * lr 0.05); 25 epochs: the peak of HR@10 on a validation split cut from ml-100k-loo's
         * train.rating (docs/ARCHITECTURE.md, hybrid models) */
        fr_optim_config_default(&c->train.optim, FR_OPTIM_ADAGRAD);
        c->train.optim.sparse_rows = true;
        c->train.optim.lr = 0.05f;
        c->train.batch = 64;
        /* lightfm in one shard: a minibatch under 128 runs on one party whatever the thread
         * count (train.c), so a second shard only adds a combine of the gradients (about
         * 10% of an epoch). On the validation split, seeds 1-4: HR@10 0.6774 (two shards
         * 0.6755), NDCG@10 0.3880 (0.3870); bpr the same to the 4th decimal. fm keeps two:
         * over seeds 1-6 one shard gave HR@10 0.6702 against 0.6716 (NDCG 0.3857, 0.3852) */
        if (!strcmp(k, "lightfm")) c->train.shards = 1;
        /* minibatches of 64 for lightfm WARP too: 128 (half the feature vocabularies' steps
         * an epoch, ~6% less CPU) cost AUC and NDCG@10 on the validation cut, seeds 1-20:
         * 0.8977 and 0.3866 against 0.8987 and 0.3882 (the ninth pass, docs/ARCHITECTURE.md,
         * hybrid) */
        c->train.negatives = 1;
        c->model.warp = 10;
        c->loop.steps = 25;
    } else if (is(k, "sasrec", NULL, NULL)) {
        /* the SASRec paper's recipe (Adam, 128 sequences a batch) with lr 0.003: on a
         * validation cut of ml-100k's training data HR@10 0.737 at 30 epochs against
         * 0.707 with the paper's 0.001 (docs/ARCHITECTURE.md, sasrec); trained with the
         * softmax over all items (CE, RecBole's loss): on the same cut HR@10 / NDCG@10
         * 0.765 / 0.480 at 40 epochs against BCE's 0.742 / 0.452 (2 heads and a feed-forward
         * of 256, dim 128, dropout 0.5 or histories of 200 did no better there); 32
         * sequences a batch (4x the steps at the same CPU): over seeds 1-3 on that cut
         * HR@10 / NDCG@10 0.7625 / 0.4936 against 128's 0.7589 / 0.4838 (64: 0.7635 /
         * 0.4895; 16, seed 1, below 32). Post-norm blocks (RecBole's), their dropout from
         * the data's size (fr_run_config_preset_stats, sasrec_dropout): 0.5 on that cut
         * (seeds 1-5: 0.7739 / 0.4971 against pre-norm 0.2's 0.7595 / 0.4916), 0.2 on the
         * ml-1m partial set's (post-norm 0.5 0.8216 / 0.6178, 0.2 0.8483 / 0.6523, pre-norm
         * 0.2 0.8406 / 0.6435, seed 1), and on a cut of its first 600 users (89000
         * interactions) post-norm 0.5 level with pre-norm 0.2 and 0.2 below them; between,
         * cuts of its first 900 users (139000 interactions: 0.35 best in NDCG@10, seeds 1-2)
         * and 1500 (246000: 0.2 above 0.31, seeds 1-3) */
        c->model.loss = FR_LOSS_CE;
        c->model.post_norm = 1;
        c->train.batch = 32;
        c->train.optim.lr = 0.003f;
        c->loop.steps = 40;
    } else if (is(k, "bpr", NULL, NULL)) {
        c->train.optim.lr = 0.05f;
        c->train.negatives = 4;
        c->model.l2 = 0.01f;
        c->lr_decay = 0.92;
        c->loop.steps = 20;
    }
}

static void textbook(fr_run_config *c, bool centralized) {
    if (!centralized) {
        c->loop.steps = 100;
        return;
    }
    fr_train_config_default(&c->train); /* Adam 0.001, batch 256, 4 negatives */
    if (fr_model_kind_is_explicit(c->model.kind)) {
        fr_optim_config_default(&c->train.optim, FR_OPTIM_SGD);
        c->train.optim.lr = 0.1f;
        c->train.batch = 32;
        c->train.negatives = 0;
        c->loop.steps = 150;
    }
}

fr_err fr_run_config_preset(fr_run_config *c, const char *preset, fr_model_kind kind, bool centralized,
                            const fr_dataset *train) {
    fr_run_data_stats st;
    if (train) {
        fr_err e = fr_run_data_stats_of(train, &st);
        if (e) return e;
    }
    return fr_run_config_preset_stats(c, preset, kind, centralized, train ? &st : NULL);
}

uint32_t fr_run_config_rounds(const fr_run_config *c, const fr_run_data_stats *stats) {
    if (c->centralized || !(c->fl_epochs > 0) || !stats) return c->loop.steps;
    return fr_run_fl_rounds(c, c->partition == FR_PARTITION_USER ? stats->users : c->partition_k);
}

fr_err fr_run_config_preset_stats(fr_run_config *c, const char *preset, fr_model_kind kind, bool centralized,
                                  const fr_run_data_stats *train) {
    if (!preset) preset = "fedrec";
    bool fedrec = !strcmp(preset, "fedrec"), text = !strcmp(preset, "textbook");
    if (!fedrec && !text) return fri_fail(FR_ERR_INVALID, "unknown preset '%s': expected fedrec or textbook", preset);
    memset(c, 0, sizeof *c);
    fr_model_config_default(&c->model, kind);
    if (!strcmp(fr_model_kind_name(kind), "?"))
        return fri_fail(FR_ERR_INVALID, "preset %s: model kind %d is unknown", preset, (int)kind);
    fr_fl_config_default(&c->fl, kind);
    fr_train_config_default(&c->train);
    fr_loop_config_default(&c->loop);
    c->centralized = centralized;
    c->lr_decay = 1.0;
    c->partition = FR_PARTITION_USER;
    c->partition_alpha = 0.5;
    c->wire = true;
    snprintf(c->preset, sizeof c->preset, "%s", preset);
    const char *k = fr_model_kind_name(kind);
    if (fedrec && centralized) fedrec_centralized(c, k);
    else if (fedrec) fedrec_federated(c, k);
    else textbook(c, centralized);
    if (fr_model_kind_is_closed_form(kind)) c->loop.steps = 1; /* a baseline's fit is one pass, done at once */
    c->loop.steps = fr_run_config_rounds(c, train);
    if (train && fr_model_kind_is_explicit(kind)) c->model.mu = train->mean_rating;
    /* centralized sasrec: the dropout from the data's size (without data, the small set's) */
    if (fedrec && centralized && !strcmp(k, "sasrec")) c->model.dropout = sasrec_dropout(train ? train->interactions : 0);
    /* federated lightgcn: the item rate where its graph is busier than ml-100k's */
    if (train && fedrec && !centralized && !strcmp(k, "lightgcn") && train->graph_load > FR_RUN_LIGHTGCN_REF_LOAD)
        c->fl.item_local.lr = (float)(c->fl.item_local.lr * (FR_RUN_LIGHTGCN_REF_LOAD / train->graph_load));
    /* counts or weights: each positive by its confidence (a gradient-trained ranking model) */
    if (train && train->weighted && !fr_model_kind_is_explicit(kind) && !fr_model_kind_is_closed_form(kind))
        c->train.confidence_alpha = c->fl.confidence_alpha = FR_RUN_CONFIDENCE_ALPHA;
    return FR_OK;
}

void fr_run_config_preset_warp(fr_run_config *c, uint32_t warp) {
    c->model.warp = warp;
    /* centralized lightfm with bpr (warp 0): lr 0.1 and L2 0.001 on the validation cut of
     * ml-100k-loo's train.rating (docs/ARCHITECTURE.md, hybrid: bpr's precision@10), seeds
     * 1-6: full-catalogue precision@10 0.01205 against 0.01121 with WARP's lr 0.05 and no L2,
     * HR@10 0.6638 against 0.6529 (LightFM's BPR there, seeds 1-3: 0.01050); the same CPU
     * an epoch to ~2% (one negative a positive: 4 negatives gave 0.01226, at 4x the epoch).
     * Then negatives by popularity^0.5 with L2 0.01 (hybrid: popularity negatives), on the
     * same cut, seeds 1-6: precision@10 0.01299 against 0.01205, HR@10 0.6725 against
     * 0.6638, AUC 0.8994 against 0.8962 (LightFM's rule, popularity^1: 0.01004, 0.5960,
     * 0.8622 at seeds 1-3; with L2 0.01 0.01181) */
    if (warp == 0 && c->centralized && !strcmp(c->preset, "fedrec") &&
        !strcmp(fr_model_kind_name(c->model.kind), "lightfm")) {
        c->train.optim.lr = 0.1f;
        c->model.l2 = 0.01f;
        c->train.neg_sampler = FR_NEG_POPULARITY;
        c->train.neg_pop_exp = 0.5f;
    }
}

fr_err fr_run_config_check(const fr_run_config *c) {
    if (!c) return fri_fail(FR_ERR_INVALID, "run config is NULL");
    if (!c->centralized && fr_model_kind_is_closed_form(c->model.kind))
        return fri_fail(FR_ERR_INVALID, "%s is a baseline fitted in closed form on the whole training set: it trains "
                        "centralized (one pass), not federated", fr_model_kind_name(c->model.kind));
    if (!c->centralized && fr_model_kind_is_central_only(c->model.kind))
        return fri_fail(FR_ERR_INVALID, "%s propagates over every user's interactions, which a federated client does "
                        "not have: it trains centralized only (lightgcn is its federated form)",
                        fr_model_kind_name(c->model.kind));
    fr_err e = c->centralized ? fr_train_config_check(&c->train) : fr_fl_config_check(&c->fl);
    if (!e) e = fr_loop_config_check(&c->loop);
    if (e) return e;
    if (c->centralized && (c->loop.resume || c->loop.checkpoint_every))
        return fri_fail(FR_ERR_INVALID, "centralized training does not checkpoint: resume and checkpoint_every apply "
                                        "to federated training");
    if (c->centralized && c->partition != FR_PARTITION_USER)
        return fri_fail(FR_ERR_INVALID, "a partition into silos applies to federated training");
    if (!(c->lr_decay > 0 && c->lr_decay <= 1))
        return fri_fail(FR_ERR_INVALID, "lr decay %g: expected a number in (0, 1]", c->lr_decay);
    if ((c->partition == FR_PARTITION_IID || c->partition == FR_PARTITION_DIRICHLET) && c->partition_k == 0)
        return fri_fail(FR_ERR_INVALID, "a partition into silos needs at least 1 silo");
    if (c->partition == FR_PARTITION_DIRICHLET && !(c->partition_alpha > 0 && isfinite(c->partition_alpha)))
        return fri_fail(FR_ERR_INVALID, "dirichlet alpha %g: expected a finite value > 0", c->partition_alpha);
    if (c->threads < 0 || c->threads > 1024)
        return fri_fail(FR_ERR_INVALID, "threads %d: expected 0..1024 (0 = one per core)", c->threads);
    return FR_OK;
}

/* ------------------------------------------------------------------ the model the data asks for */

/* True when every rating of d is the same value (or d is empty). */
static bool ratings_constant(const fr_dataset *d, bool *any, float *value) {
    for (uint32_t u = 0; u < fr_dataset_n_users(d); u++) {
        const float *r;
        size_t k = fr_dataset_user(d, u, NULL, &r, NULL);
        for (size_t i = 0; i < k; i++) {
            if (!*any) { *any = true; *value = r[i]; }
            else if (r[i] != *value) return false;
        }
    }
    return true;
}

bool fr_run_data_implicit(const fr_dataset *train, const fr_dataset *test, float *value) {
    bool any = false;
    float v = 0;
    bool constant = (!train || ratings_constant(train, &any, &v)) && (!test || ratings_constant(test, &any, &v));
    if (value) *value = any ? v : 0.0f;
    return constant;
}

fr_model_kind fr_run_default_kind(const fr_dataset *train, const fr_dataset *test) {
    return fr_run_data_implicit(train, test, NULL) ? FR_MODEL_NEUMF : FR_MODEL_MF;
}

fr_err fr_run_check_data(fr_model_kind kind, const fr_dataset *train, const fr_dataset *test) {
    float v;
    if (!fr_model_kind_is_explicit(kind) || !fr_run_data_implicit(train, test, &v)) return FR_OK;
    return fri_fail(FR_ERR_INVALID, "%s predicts ratings, and every rating of this data is %g (implicit feedback): "
                    "there is nothing to predict (RMSE would only measure how close to %g it stays); use a ranking "
                    "model such as neumf, bpr or gmf (or pop, the most-popular baseline)",
                    fr_model_kind_name(kind), (double)v, (double)v);
}
