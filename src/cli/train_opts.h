/* Options of `fedrec train` (DESIGN.md's command line) and the data they load, shared by
 * the centralized path (cli_train.c) and the federated path (cli_fed.c). */
#ifndef FEDREC_SRC_CLI_TRAIN_OPTS_H
#define FEDREC_SRC_CLI_TRAIN_OPTS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "fedrec/fedrec.h"
#include "fedrec/model.h"

typedef struct cli_train_opts {
    const char *data;         /* --data PATH: ratings file or NCF directory; NULL = built-in synthetic */
    const char *test;         /* --test PATH: given test file (PATH is then the training file) */
    const char *negatives;    /* --negatives PATH: NCF .negative file */
    const char *split;        /* --split loo|ratio:0.8|temporal:0.8 (default loo) */
    const char *model;        /* --model mf|bpr|gmf|mlp|neumf */
    uint64_t dim;             /* --dim D (0 = the model's default) */
    uint64_t rounds;          /* --rounds R */
    double clients_per_round; /* --clients-per-round C: a count (>= 1) or a fraction (< 1); 0 = all */
    uint64_t local_epochs;    /* --local-epochs E */
    uint64_t batch;           /* --batch B */
    double lr;                /* --lr (NaN = default for the optimizer/model) */
    const char *optimizer;    /* --optimizer sgd|adam|adagrad */
    const char *strategy;     /* --strategy fedavg|fedavgm|fedprox|fedadam|fedyogi|fedadagrad */
    const char *item_agg;     /* --item-agg mean|rows|sum: how item rows are aggregated */
    const char *item_optimizer; /* --item-optimizer same|sgd|adam|adagrad: the client's rule for item rows */
    double item_lr;           /* --item-lr (NaN = default) */
    double item_lr_decay;     /* --item-lr-decay: round r steps item rows at item lr * γ^(r-1) (NaN = default) */
    bool centralized;         /* --centralized */
    uint64_t epochs;          /* --epochs N (centralized) */
    int64_t threads;          /* --threads T (0 = all cores) */
    uint64_t seed;            /* --seed S */
    uint64_t eval_every;      /* --eval-every N (0 = only at the end) */
    const char *out;          /* --out model.fr */
    const char *metrics_out;  /* --metrics-out metrics.jsonl */
    bool resume;              /* --resume */
    bool quiet;               /* --quiet: no progress lines */
    /* strategy and federation knobs; NaN / 0 = default */
    double server_lr, server_momentum, mu, tau, beta1, beta2, availability;
    uint64_t negatives_per_pos; /* --neg K: sampled training negatives per positive */
    double l2;                  /* --l2 */
    double bias_l2;             /* --bias-l2 (mf, centralized) */
    double lr_decay;            /* --lr-decay (centralized) */
    uint64_t checkpoint_every;  /* --checkpoint-every N */
    const char *partition;      /* --partition user|iid:K|dirichlet:K[:ALPHA] (default user) */
    bool keep_private_optim;    /* --keep-private-optim */
} cli_train_opts;

/* The data a training run works on: views into the fr_data the library loaded from the
 * options (fr_data_load), owned by cli_train. */
typedef struct cli_train_data {
    const fr_dataset *train;  /* training interactions */
    const fr_dataset *test;   /* test interactions (same id space) */
    const fr_negatives *negs; /* evaluation negatives, or NULL (full-catalogue ranking) */
    bool explicit_ratings;    /* rating metrics (rmse/mae) rather than ranking */
    const char *source;       /* what was loaded (fr_data_describe), for messages */
    const fr_data *data;      /* the whole */
    const fr_source *src;     /* where it came from */
} cli_train_data;

/* The view of data loaded from src. */
cli_train_data cli_train_view(const fr_data *data, const fr_source *src);

/* Parses --partition (user | iid:K | dirichlet:K[:ALPHA]); any out-parameter may be NULL.
 * Returns 0, or 2 after printing a usage error. */
int cli_parse_partition(const char *s, fr_partition_kind *kind, uint32_t *k, double *alpha);

/* Federated training (src/cli/cli_fed.c). Returns the exit status. */
int cli_train_federated(const cli_train_opts *o, cli_train_data *d);

#endif
