/* Options of `fedrec train` (DESIGN.md's command line). Whether an option was given is
 * its arg_spec's seen flag (args_seen), never its value: an option not given keeps the
 * preset's value, one given is always taken (the parser has checked its range). */
#ifndef FEDREC_SRC_CLI_TRAIN_OPTS_H
#define FEDREC_SRC_CLI_TRAIN_OPTS_H

#include <stdbool.h>
#include <stdint.h>

#include "fedrec/model.h"

typedef struct cli_train_opts {
    const char *cmd;          /* the command parsing them, for messages: "server"; NULL = "train" */
    const char *data;         /* --data PATH: ratings file or NCF directory; NULL = built-in synthetic */
    const char *test;         /* --test PATH: given test file (PATH is then the training file) */
    const char *negatives;    /* --negatives PATH: NCF .negative file */
    const char *split;        /* --split loo|ratio:0.8|temporal:0.8 (default loo) */
    const char *model;        /* --model mf|bpr|gmf|mlp|neumf|lightgcn|lightgcn-full|lightfm|fm|sasrec|pop|bias */
    const char *preset;       /* --preset fedrec|textbook */
    uint64_t dim;             /* --dim D */
    uint64_t layers;          /* --layers K: lightgcn-full's propagation layers */
    uint64_t rounds;          /* --rounds R */
    double clients_per_round; /* --clients-per-round C: a whole count (>= 1) or a fraction (< 1); 0 = all */
    uint64_t local_epochs;    /* --local-epochs E */
    uint64_t batch;           /* --batch B */
    double lr;                /* --lr */
    const char *optimizer;    /* --optimizer sgd|adam|adagrad */
    const char *strategy;     /* --strategy fedavg|fedavgm|fedprox|fedadam|fedyogi|fedadagrad */
    const char *item_agg;     /* --item-agg mean|rows|sum: how item rows are aggregated */
    const char *item_optimizer; /* --item-optimizer same|sgd|adam|adagrad: the client's rule for item rows */
    double item_lr;           /* --item-lr */
    double item_lr_decay;     /* --item-lr-decay: round r steps item rows at item lr * γ^(r-1) */
    bool centralized;         /* --centralized */
    bool secagg;              /* --secagg: rounds under secure aggregation (dense, masked) */
    const char *runtime;      /* --runtime sim|mpi (default sim) */
    bool mpi;                 /* --runtime mpi: MPI is initialised */
    int mpi_rank, mpi_size;   /* this process's rank, the job's ranks */
    uint64_t epochs;          /* --epochs N (centralized) */
    uint64_t threads;         /* --threads T (0 = one per CPU it may use, fr_cpu_count) */
    uint64_t seed;            /* --seed S */
    uint64_t eval_every;      /* --eval-every N (0 = only at the end) */
    const char *out;          /* --out model.fr */
    const char *metrics_out;  /* --metrics-out metrics.jsonl */
    const char *plot;         /* --plot FILE.svg: a chart of the run's metrics and loss */
    bool resume;              /* --resume */
    bool quiet;               /* --quiet: no progress lines */
    /* strategy and federation knobs */
    double server_lr, server_momentum, mu, tau, beta1, beta2, availability;
    uint64_t negatives_per_pos; /* --neg K: sampled training negatives per positive */
    const char *neg_sampler;    /* --neg-sampler uniform|pop: how those negatives are drawn */
    double l2;                  /* --l2 */
    double confidence_alpha;    /* --confidence-alpha: a weighted positive counts 1 + α log(1 + w) */
    double bias_l2;             /* --bias-l2 */
    double lr_decay;            /* --lr-decay (centralized) */
    uint64_t checkpoint_every;  /* --checkpoint-every N */
    const char *partition;      /* --partition user|iid:K|dirichlet:K[:ALPHA] (default user) */
    bool keep_private_optim;    /* --keep-private-optim */
    uint64_t min_results;       /* --min-results N: a round's quorum */
    uint64_t patience;          /* --patience N: stop after N evaluations without a better metric */
    double time_limit;          /* --time-limit S: stop after S seconds */
    /* user-level differential privacy (DP-FedAvg) */
    double dp_noise;            /* --dp-noise σ: noise multiplier */
    const char *dp_clip;        /* --dp-clip C|adaptive[:γ[:C0]] */
    double dp_delta;            /* --dp-delta δ (default 1/N^1.1) */
    double target_epsilon;      /* --target-epsilon E: stop before exceeding it */
    double ldp_noise;           /* --ldp-noise σ: the local-DP baseline */
    bool dp_seeded_noise;       /* --dp-seeded-noise: reproducible noise (tests only) */
    /* hiding which items a user touched */
    const char *hide_items;     /* --hide-items none|dense|decoys[:R]|ldp[:σ] */
    bool private_mode;          /* --private: the default private mode (--hide-items dense) */
    /* robust aggregation */
    const char *aggregator;     /* --aggregator fedavg|median|trimmed:B|normclip[:C]|krum:F|multikrum:F:M|rowtrim[:B] */
    /* compression */
    const char *compress;       /* --compress none|q8|q16|topk:K[,q8|,q16] (uplink) */
    const char *compress_down;  /* --compress-down none|q8|q16 */
    /* side features (lightfm, fm) and cold start */
    const char *user_features;  /* --user-features FILE: id<TAB>feature[:weight] ... */
    const char *item_features;  /* --item-features FILE */
    uint64_t warp;              /* --warp N: WARP with up to N negatives drawn (lightfm, fm) */
    /* the sequence model (sasrec) */
    const char *loss;           /* --loss bce|ce */
    uint64_t heads;             /* --heads H: attention heads (a divisor of --dim) */
    uint64_t ffn;               /* --ffn F: the feed-forward's hidden width */
    double dropout;             /* --dropout P */
    uint64_t max_len;           /* --max-len L: the history it reads */
    uint64_t seq_stride;        /* --seq-stride S: training windows end S items apart */
    const char *norm;           /* --norm pre|post: the blocks' layer-norm placement */
    const char *cold_items;     /* --cold-items F|FILE: hold out a fraction F of items (or those FILE lists) entirely */
    /* simulated attacks and faults (train only) */
    const char *attack;         /* --attack KIND:... (fr_sim_attack_parse) */
    double crash_rate;          /* --crash-rate P */
    const char *straggler;      /* --straggler P[:X] */
    double deadline;            /* --deadline S (simulated seconds) */
    double over_select;         /* --over-select O */
    const char *client_speed;   /* --client-speed SEC_PER_EXAMPLE[:BYTES_PER_S[:LATENCY_S]] */
    uint64_t max_attempts;      /* --max-attempts N */
    const char *exposure_item;  /* --exposure-item ITEM (a raw item id): er@10 of ITEM without an attack */
} cli_train_opts;

/* Applies the options the user gave (their specs' seen flags) over a preset's run config
 * (cli_train.c; also fedrec server's). 0, or 2 after printing a usage error. */
struct arg_spec;
struct fr_run_config;
int cli_train_overrides(const cli_train_opts *o, const struct arg_spec *specs, struct fr_run_config *c);
/* The run config of fedrec train and of fedrec server, one function for both so that they
 * start alike on the same data: the preset from the stats of the data (the training set's,
 * or those the federation file records: fr_run_data_stats), the options given over it
 * (cli_train_overrides), then the rounds sized from the data again for the clients a
 * round samples and the partition the options gave (fr_run_config_rounds). 0, or 2 after
 * printing "fedrec <o->cmd>: ...". */
struct fr_run_data_stats;
int cli_train_config(const cli_train_opts *o, const struct arg_spec *specs, fr_model_kind kind,
                     const struct fr_run_data_stats *st, struct fr_run_config *c);
/* A federated run's settings for a header line: "strategy S, E=.. B=.. OPT lr .., item
 * rows: ... of deltas, steps ...; R rounds (preset P)", with the confidence weights of
 * alpha when > 0 (train's header and the server's). */
void cli_fl_settings(const struct fr_run_config *c, float alpha, char *buf, size_t n);
/* The checks of the options given that the parser cannot make (names, options of another
 * mode, strategy or kind of model, DP and item hiding rules), for fedrec o->cmd with a
 * model of kind `kind`. 0, or 2 after printing. */
int cli_train_check(const cli_train_opts *o, const struct arg_spec *specs, fr_model_kind kind);
/* The differential-privacy options' own rules, for fedrec CMD ("train", "server"): every
 * other DP option needs --dp-clip, --dp-clip's form, --target-epsilon needs --dp-noise.
 * 0, or 2 after printing. */
int cli_dp_check(const char *cmd, const cli_train_opts *o, const struct arg_spec *specs);
/* --compress and --compress-down for fedrec CMD: their forms, and their refusals with DP
 * (--dp-clip, --private/--hide-items ldp) and secure aggregation (secagg: the run's).
 * Fills fc's compression fields when fc is not NULL. 0, or 2 after printing. */
struct fr_fl_config;
/* --aggregator for fedrec o->cmd: its form, and its refusals with secure aggregation, DP
 * and (rowtrim) decoys. 0, or 2 after printing. */
int cli_aggregator_check(const cli_train_opts *o);
/* A promotion spec "KIND:ITEM:REST" split into ITEM (a raw item id, copied into item; ""
 * for other kinds) and the spec with ITEM replaced by 0 (into buf) for
 * fr_sim_attack_parse. Returns the spec to parse. */
const char *cli_attack_spec_item(const char *spec, char *buf, size_t cap, char *item, size_t icap);
int cli_compress(const char *cmd, const cli_train_opts *o, bool secagg, struct fr_fl_config *fc);

/* The help of --aggregator (train and server). */
#define CLI_AGGREGATOR_HELP                                                                                         \
    "A  the server's rule over the round's results: fedavg (the n_k-weighted mean, default) | median | "              \
    "trimmed:B (drop the B fraction, 0 <= B < 0.5, at each end of every coordinate) | normclip[:C] (each "            \
    "client's delta clipped to L2 norm C, default the round's median norm, then fedavg; with C the clients also "    \
    "clip themselves, so normclip:C runs under --secagg, unchecked there) | krum:F | multikrum:F:M "                  \
    "(the M results nearest their n-F-2 neighbours, then fedavg over them) | rowtrim[:B] (each item row a trimmed "   \
    "mean over the clients that touched it, B 0.2; dense values as trimmed) | rowguard[:K[:COS]] (per item row, "    \
    "each client's delta clipped to K x the round's median row-delta norm, K 8, and clients whose deltas of the "    \
    "row have cosine >= COS, 0.9, with each other counted as one client there: against fake users pushing an "      \
    "item; dense values clipped to K x the median norm, then fedavg). median, trimmed and rowtrim count "            \
    "each client once (n_k is self-reported); normclip and (multi)krum keep fedavg's weights n_k. Item rows a "       \
    "client did not touch are zeros (mean and sum rows) and summed rows are scaled as fedavg's. Not with DP, "         \
    "nor (but normclip:C) with --secagg/--private/--hide-items dense; works with --compress"
#endif
