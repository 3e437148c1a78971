/* fedrec server and fedrec client: the networked runtime (fedrec/net.h) for people.
 *
 *   fedrec server --listen URL --federation DIR --tokens FILE [--cert F --key F] ...
 *   fedrec client --connect URL --data DIR/cID --token-file FILE [--ca F] ...
 *   fedrec client --connect URL --shards DIR --clients N ...   (the load generator)
 *   fedrec client recommend --data DIR/cID [-k 10]
 *   fedrec client eval --shards DIR [--json]
 *
 * The server learns what it may know of the data from the federation file `fedrec data
 * shard` wrote (clients, items, the mean rating, implicit or not) and never reads a
 * client's interactions. Model and federation settings are train's options, from the
 * same presets, so a server and `fedrec train` with the same options and seed agree bit
 * for bit. Logs go to standard error with a UTC time, one line per event; a status line
 * per round to standard output (as train's progress); --metrics-out a JSON object per
 * round. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "cli/features.h"
#include "cli/progress.h"
#include "cli/summary.h"
#include "cli/train_opts.h"
#include "fedrec/net.h"
#include "fedrec/net_client.h"
#include "fedrec/run.h"
#include "fedrec/runtime.h"

/* ------------------------------------------------------------------ logging */

static void log_line(void *user, int level, const char *line) {
    const char *who = user;
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    char ts[32];
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
    fprintf(stderr, "%s %s: %s%s\n", ts, who, level ? "warning: " : "", line);
}

/* ------------------------------------------------------------------ tokens */

/* The token of client `id` from a file: one line "ID TOKEN" per client (fedrec tokens'
 * secret file) or a single token alone. Returns a malloc'd string or NULL after printing. */
static char *token_for(const char *cmd, const char *path, uint32_t id) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "fedrec %s: --token-file: cannot read '%s': %s\n", cmd, path, strerror(errno));
        return NULL;
    }
    char line[1024];
    char *found = NULL;
    unsigned lines = 0;
    while (!found && fgets(line, sizeof line, f)) {
        lines++;
        line[strcspn(line, "\r\n")] = 0;
        if (!line[0] || line[0] == '#') continue;
        char *sp = strpbrk(line, " \t");
        if (!sp) { /* a token alone */
            if (lines == 1) found = strdup(line);
            continue;
        }
        *sp = 0;
        char *end;
        errno = 0;
        unsigned long v = strtoul(line, &end, 10);
        if (*end || errno || v != id) continue;
        char *tok = sp + 1;
        tok += strspn(tok, " \t");
        found = strdup(tok);
    }
    fclose(f);
    if (!found) fprintf(stderr, "fedrec %s: --token-file %s holds no token for client %u\n", cmd, path, id);
    return found;
}

/* ------------------------------------------------------------------ server */

typedef struct server_run {
    FILE *mf;
    cli_progress lines;
    uint32_t total;
    bool rating;
    bool secagg;
    double started;
} server_run;

static volatile sig_atomic_t got_signal;
static fr_net_server *the_server;

static void on_signal(int sig) {
    got_signal = sig;
    if (the_server) fr_net_server_interrupt(the_server);
}

/* Ends the process if the server's sockets have not closed within 20 s. */
static void *close_watchdog(void *arg) {
    (void)arg;
    sleep(20);
    fprintf(stderr, "fedrec server: closing the connections hung for 20 s (nng); exiting anyway: the model and the "
            "state were saved\n");
    _exit(got_signal ? 1 : 0);
}

static int on_round(void *user, const fr_net_round_info *in) {
    server_run *r = user;
    char metric[128] = "";
    double hr = in->eval_users ? in->hit_sum / in->eval_users : NAN;
    double ndcg = in->eval_users ? in->ndcg_sum / in->eval_users : NAN;
    double rmse = in->rated ? sqrt(in->sq_err_sum / (double)in->rated) : NAN;
    if (in->rated) snprintf(metric, sizeof metric, "  rmse %.4f", rmse);
    else if (in->eval_users) snprintf(metric, sizeof metric, "  hr@10 %.4f  ndcg@10 %.4f", hr, ndcg);
    char line[512];
    char dp[64] = "";
    if (in->dp_clip > 0) { /* a private run: the privacy spent so far, and the clip (as train's) */
        if (isfinite(in->epsilon)) snprintf(dp, sizeof dp, "  ε %.3g  C %.3g", in->epsilon, in->dp_clip);
        else snprintf(dp, sizeof dp, "  ε %s  C %.3g", isinf(in->epsilon) ? "inf" : "?", in->dp_clip);
    }
    snprintf(line, sizeof line, "round %u/%u%s  loss %.4f%s  clients %u/%u%s  up %.1f MB  down %.1f MB  %.2f s",
             in->st.round, r->total, in->applied ? "" : " (short: retried)", in->st.loss, metric, in->st.clients,
             in->st.sampled, dp, (double)in->st.bytes_up / 1e6, (double)in->st.bytes_down / 1e6, in->seconds);
    cli_progress_line(&r->lines, line);
    if (r->mf) {
        fprintf(r->mf, "{\"round\":%u,\"applied\":%s,\"attempt\":%u,\"loss\":%.9g", in->st.round,
                in->applied ? "true" : "false", in->attempt, in->st.loss);
        if (in->rated) fprintf(r->mf, ",\"rmse\":%.9g,\"eval_ratings\":%" PRIu64, rmse, in->rated);
        if (in->eval_users) fprintf(r->mf, ",\"hr@10\":%.9g,\"ndcg@10\":%.9g,\"eval_users\":%u", hr, ndcg,
                                    in->eval_users);
        if (in->dp_clip > 0) {
            if (isfinite(in->epsilon)) fprintf(r->mf, ",\"epsilon\":%.6g", in->epsilon);
            else fprintf(r->mf, ",\"epsilon\":null");
            fprintf(r->mf, ",\"dp_clip\":%.6g", in->dp_clip);
        }
        if (r->secagg)
            fprintf(r->mf, ",\"secagg_survivors\":%u,\"secagg_seconds\":[%.4f,%.4f,%.4f,%.4f],"
                    "\"secagg_recovery_seconds\":%.4f", in->sa_survivors, in->sa_seconds[0], in->sa_seconds[1],
                    in->sa_seconds[2], in->sa_seconds[3], in->sa_recovery_seconds);
        fprintf(r->mf, ",\"clients\":%u,\"sampled\":%u,\"connected\":%u,\"bytes_up\":%" PRIu64
                ",\"bytes_down\":%" PRIu64 ",\"seconds\":%.4f,\"elapsed\":%.3f}\n", in->st.clients, in->st.sampled,
                in->connected, in->st.bytes_up, in->st.bytes_down, in->seconds, cli_now_s() - r->started);
        fflush(r->mf);
    }
    return 0;
}

/* The dense id of raw item id `raw` in a shard directory's items.map ("index<TAB>raw id"
 * lines after '#' comments), or -1. */
static int64_t shard_item(const char *dir, const char *raw, uint32_t n_items) {
    char path[4300];
    snprintf(path, sizeof path, "%s/items.map", dir);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char line[512], tok[300];
    int64_t found = -1;
    while (found < 0 && fgets(line, sizeof line, f)) {
        if (line[0] == '#') continue;
        unsigned long long idx;
        if (sscanf(line, "%llu %299s", &idx, tok) == 2 && idx < n_items && !strcmp(tok, raw)) found = (int64_t)idx;
    }
    fclose(f);
    return found;
}

static int cli_server(int argc, char **argv) {
    cli_train_opts o = {0};
    o.cmd = "server";
    o.seed = 1;
    o.eval_every = 1;
    const char *listen = NULL, *fed_path = NULL, *tokens = NULL, *cert = NULL, *key = NULL, *client_ca = NULL;
    const char *state = NULL, *out = NULL, *metrics_out = NULL;
    bool insecure = false, resume = false, quiet = false;
    fr_net_server_config nc;
    fr_net_server_config_default(&nc);
    uint64_t min_clients = 0, max_attempts = 0, contexts = (uint64_t)nc.contexts, max_conns = 0;
    double over = 0, deadline = nc.deadline_ms / 1000.0, retry = nc.retry_ms / 1000.0, linger = nc.linger_ms / 1000.0;
    double presence = nc.presence_ms / 1000.0, idle = nc.idle_ms / 1000.0, sa_deadline = nc.secagg_stage_ms / 1000.0;
    double handshake = nc.handshake_ms / 1000.0;
    const uint64_t U32 = UINT32_MAX;
    const double F = 1e30;
    const unsigned GT = ARG_MIN_OPEN;
    arg_spec specs[] = {
        ARG_SPEC_STR("listen", &listen, "URL  tls+tcp://HOST:PORT (or tcp://HOST:PORT with --insecure)"),
        ARG_SPEC_STR("federation", &fed_path, "DIR  the shard directory of fedrec data shard (its federation.txt)"),
        ARG_SPEC_STR("tokens", &tokens, "FILE  the clients' token hashes (fedrec tokens)"),
        ARG_SPEC_STR("cert", &cert, "FILE  the server's certificate (PEM)"),
        ARG_SPEC_STR("key", &key, "FILE  its private key (PEM)"),
        ARG_SPEC_STR("client-ca", &client_ca, "FILE  require client certificates signed by this CA (mutual TLS)"),
        ARG_SPEC_FLAG("insecure", &insecure, "   allow tcp:// (no encryption)"),
        ARG_SPEC_STR("state", &state, "FILE  the server's state, saved after every round (default: <out>.state)"),
        ARG_SPEC_FLAG("resume", &resume, "   continue from --state after a crash"),
        ARG_SPEC_STR("out", &out, "FILE  save the global model here at the end"),
        ARG_SPEC_STR("metrics-out", &metrics_out, "FILE  JSON Lines metrics per round"),
        ARG_SPEC_FLAG("quiet", &quiet, "   no status lines"),
        ARG_SPEC_INT("min-clients", &min_clients, 0, U32, "0 = the round's target",
                     "N  connected clients a round waits for"),
        ARG_SPEC_REAL("over-select", &over, 0, 10, 0, NULL, "X  sample this fraction more clients than a round needs"),
        ARG_SPEC_REAL("deadline", &deadline, 0.01, 86400, 0, NULL, "S  a round's deadline in seconds (default 60)"),
        ARG_SPEC_REAL("retry", &retry, 0.001, 3600, 0, NULL, "S  how long a waiting client sleeps (default 0.25; one the open round did not sample: up to half the time left until the round is expected to end)"),
        ARG_SPEC_REAL("presence", &presence, 0.01, 86400, 0, NULL,
                      "S  a client counts as connected this long after its last message (default 15)"),
        ARG_SPEC_REAL("linger", &linger, 0, 86400, 0, NULL, "S  after the last round, tell clients DONE this long (default 10)"),
        ARG_SPEC_REAL("idle", &idle, 0.01, 86400, 0, NULL, "S  close connections silent this long (default 30)"),
        ARG_SPEC_INT("max-attempts", &max_attempts, 0, U32, "0 = never", "N  give up after N short rounds in a row"),
        ARG_SPEC_INT("contexts", &contexts, 1, 4096, NULL, "N  requests served at once (default 64)"),
        ARG_SPEC_FLAG("full-downlink", &nc.full_downlink,
                      "   send every client the whole shared model each round (default: a client that does not "
                      "evaluate gets the dense layers and fetches the item rows it trains on, as its RESULT names them; "
                      "always the whole model with secure aggregation, decoys or --compress-down)"),
        ARG_SPEC_INT("max-conns", &max_conns, 0, U32, "0 = no limit",
                     "N  connections served at once; more are told the server is full (they retry), and logged"),
        ARG_SPEC_REAL("handshake-timeout", &handshake, 0, 86400, 0, "0 = none",
                      "S  close a TLS connection whose handshake has not ended this long after it was accepted (default 15)"),
        /* the model and federation, as train takes them */
        ARG_SPEC_STR("model", &o.model, "M  mf | bpr | gmf | mlp | neumf | lightgcn | lightfm | fm | sasrec (default: mf for ratings, "
                     "neumf for implicit data)"),
        ARG_SPEC_STR("preset", &o.preset, "P  fedrec (default) | textbook"),
        ARG_SPEC_INT("dim", &o.dim, 1, 4096, NULL, "D  embedding size"),
        ARG_SPEC_INT("rounds", &o.rounds, 1, U32, NULL, "R  rounds (default: the preset's)"),
        ARG_SPEC_REAL("clients-per-round", &o.clients_per_round, 0, F, 0, "0 = all",
                      "C  clients per round: a fraction in (0, 1) or a whole count"),
        ARG_SPEC_INT("local-epochs", &o.local_epochs, 1, 1000, NULL, "E  local epochs per round"),
        ARG_SPEC_INT("batch", &o.batch, 1, 16777216, NULL, "B  minibatch size"),
        ARG_SPEC_REAL("lr", &o.lr, 0, F, ARG_MIN_OPEN, NULL, "η  learning rate"),
        ARG_SPEC_STR("optimizer", &o.optimizer, "O  the clients' optimizer: sgd | adam | adagrad"),
        ARG_SPEC_STR("item-optimizer", &o.item_optimizer,
                     "O  same | sgd | adam | adagrad: the clients' rule for item rows (same: --optimizer's)"),
        ARG_SPEC_REAL("item-lr", &o.item_lr, 0, F, ARG_MIN_OPEN, NULL, "η  learning rate of item rows (with --item-optimizer)"),
        ARG_SPEC_REAL("item-lr-decay", &o.item_lr_decay, 0, 1, ARG_MIN_OPEN, "1 = constant",
                      "γ  round r steps item rows at item lr · γ^(r-1)"),
        ARG_SPEC_STR("item-agg", &o.item_agg, "A  mean | rows | sum: how the round's item rows are aggregated"),
        ARG_SPEC_FLAG("keep-private-optim", &o.keep_private_optim,
                      "   clients keep their optimizer state for their private rows from round to round"),
        ARG_SPEC_STR("strategy", &o.strategy, "S  fedavg | fedavgm | fedprox | fedadam | fedyogi | fedadagrad"),
        ARG_SPEC_REAL("server-lr", &o.server_lr, 0, F, ARG_MIN_OPEN, NULL, "η  server learning rate"),
        ARG_SPEC_REAL("server-momentum", &o.server_momentum, 0, 1, ARG_MAX_OPEN, NULL, "β  server momentum (fedavgm)"),
        ARG_SPEC_REAL("mu", &o.mu, 0, F, 0, NULL, "μ  proximal term (fedprox)"),
        ARG_SPEC_REAL("tau", &o.tau, 0, F, ARG_MIN_OPEN, NULL, "τ  adaptivity (fedadam, fedyogi, fedadagrad)"),
        ARG_SPEC_REAL("beta1", &o.beta1, 0, 1, ARG_MAX_OPEN, NULL, "β1  server optimizer"),
        ARG_SPEC_REAL("beta2", &o.beta2, 0, 1, ARG_MAX_OPEN, NULL, "β2  server optimizer"),
        ARG_SPEC_REAL("bias-l2", &o.bias_l2, 0, F, 0, "0 = --l2", "λ  L2 of the bias rows"),
        ARG_SPEC_INT("min-results", &o.min_results, 0, U32, "0 = any", "N  a round's quorum"),
        ARG_SPEC_INT("neg", &o.negatives_per_pos, 1, 1000, NULL, "K  sampled training negatives per positive"),
        ARG_SPEC_STR("neg-sampler", &o.neg_sampler,
                     "S  uniform | pop | pop:B: training negatives drawn from the items' public popularity (to the "
                     "power B; each client reads popularity.txt of the shards)"),
        ARG_SPEC_REAL("l2", &o.l2, 0, F, 0, NULL, "λ  L2 regularisation"),
        ARG_SPEC_INT("seed", &o.seed, 0, UINT64_MAX, NULL, "S  random seed (default 1)"),
        CLI_SASREC_SPECS(o),
        ARG_SPEC_REAL("confidence-alpha", &o.confidence_alpha, 0, F, 0, "0 = every positive alike",
                      "α  weighted data: a positive of weight w counts 1 + α log(1 + w) (default 1)"),
        /* differential privacy, as train takes it */
        ARG_SPEC_STR("dp-clip", &o.dp_clip,
                     "C|adaptive[:γ[:C0]]  user-level DP (DP-FedAvg): clip each client's update to L2 norm C; each "
                     "client of the federation is sampled with probability q = --clients-per-round / N (Poisson, "
                     "connected or not: a sampled client that is away is absent)"),
        ARG_SPEC_REAL("dp-noise", &o.dp_noise, 0, 16777216, 0, NULL,
                      "σ  DP: noise multiplier: discrete Gaussian noise of std σ·C on the sum (needs --dp-clip)"),
        ARG_SPEC_REAL("dp-delta", &o.dp_delta, 0, 1, GT | ARG_MAX_OPEN, NULL,
                      "δ  DP: the δ of the reported ε (default 1/N^1.1, N clients)"),
        ARG_SPEC_REAL("target-epsilon", &o.target_epsilon, 0, F, GT, NULL,
                      "ε  DP: stop before the round whose ε would exceed it (needs --dp-noise)"),
        ARG_SPEC_FLAG("dp-seeded-noise", &o.dp_seeded_noise,
                      "   DP noise from --seed: reproducible, for tests only (not private against anyone knowing the seed)"),
        ARG_SPEC_FLAG("secagg", &o.secagg,
                      "   secure aggregation: clients send masked dense updates, the server learns only their sum"),
        ARG_SPEC_STR("hide-items", &o.hide_items,
                     "H  none | dense | decoys[:R]: what the server may learn of which items a client touched "
                     "(dense: secure aggregation, as --private; decoys: R decoy items per interaction drawn from "
                     "the items' public popularity, which the clients read from popularity.txt of the shards)"),
        ARG_SPEC_FLAG("private", &o.private_mode,
                      "   the default private mode (train's --private, --hide-items dense): secure aggregation over "
                      "the whole shared model, so the server learns no client's items, only the round's sum"),
        ARG_SPEC_REAL("secagg-deadline", &sa_deadline, 0.01, 86400, 0, NULL,
                      "S  secure aggregation: the deadline of each stage after the keys' (default 10)"),
        /* compression, as train takes it (top-k's residual is kept in each client's state file) */
        ARG_SPEC_STR("compress", &o.compress,
                     "C  uplink compression: none (default) | q8 | q16 (a scale per item row and per 64 dense values, "
                     "stochastic rounding) | topk:K[,q8|,q16] (the K largest dense values of the update plus what the "
                     "client did not send before, which it keeps in its state file)"),
        ARG_SPEC_STR("compress-down", &o.compress_down, "C  downlink compression of the broadcast model: none | q8 | q16"),
        ARG_SPEC_STR("aggregator", &o.aggregator, CLI_AGGREGATOR_HELP),
        ARG_SPEC_STR("attack", &o.attack,
                     "A  simulated fake users run by the server itself, a FRACTION of all clients, as train's: "
                     "promote:ITEM:FRACTION[:BOOST[:REF]] | promote-pop:ITEM:FRACTION[:BOOST[:REF]] (ITEM its id as in "
                     "the data file; promote-pop reads the shard directory's popularity.txt). Poisoning real clients "
                     "(scale, signflip, noise) is refused: a real client's RESULT is its own bytes"),
        ARG_SPEC_END,
    };
    const char *pos[1];
    int npos;
    const char *usage = "fedrec server --listen URL --federation DIR --tokens FILE (--cert F --key F | --insecure) "
                        "[--rounds R] [--out model.fr] ...";
    int rc = args_parse("server", argc, argv, specs, pos, 0, &npos, usage);
    if (rc) return rc < 0 ? 0 : rc;
    if (!listen || !fed_path || !tokens) {
        fprintf(stderr, "fedrec server: --listen, --federation and --tokens are required\nusage: %s\n", usage);
        return 2;
    }
    if (!insecure && (!cert || !key)) {
        fprintf(stderr, "fedrec server: --cert and --key are required for tls+tcp:// (scripts/make-certs.sh makes "
                "throw-away ones); plain tcp:// needs --insecure\n");
        return 2;
    }
    if (cli_compress("server", &o, o.secagg || o.private_mode || (o.hide_items && !strcmp(o.hide_items, "dense")),
                     NULL))
        return 2;
    if (cli_aggregator_check(&o)) return 2; /* before the federation is read, as --compress */
    fr_sim_attack attack = {0};
    char attack_item[128] = "", attack_spec[300];
    if (o.attack) {
        if (fr_sim_attack_parse(cli_attack_spec_item(o.attack, attack_spec, sizeof attack_spec, attack_item,
                                                     sizeof attack_item), &attack)) {
            fprintf(stderr, "fedrec server: --attack: %s\n", fr_errmsg());
            return 2;
        }
        if (!fr_sim_attack_has_target(&attack)) {
            fprintf(stderr, "fedrec server: --attack %s: poisoning real clients' results is not simulated over the "
                    "network: a real client's RESULT is its own bytes, which the server only checks and adds (run it "
                    "with fedrec train). The server runs the fake users of promote and promote-pop itself\n", o.attack);
            return 2;
        }
        if (!attack_item[0]) {
            fprintf(stderr, "fedrec server: --attack '%s': ITEM: expected the target's item id as in the data file (at "
                    "most 127 characters)\n", o.attack);
            return 2;
        }
        if (o.dp_clip) {
            fprintf(stderr, "fedrec server: --attack %s with --dp-clip: the attack under DP's clip is not simulated\n",
                    o.attack);
            return 2;
        }
        if (o.compress && strcmp(o.compress, "none")) {
            fprintf(stderr, "fedrec server: --attack %s with --compress: the attack under uplink compression is not "
                    "simulated\n", o.attack);
            return 2;
        }
        if (o.secagg || o.private_mode || (o.hide_items && !strcmp(o.hide_items, "dense"))) {
            fprintf(stderr, "fedrec server: --attack %s with secure aggregation: the fake users would have to be parties "
                    "of the masking protocol (not simulated)\n", o.attack);
            return 2;
        }
    }
    if (cli_check_input("server", "--federation", fed_path) || cli_check_input("server", "--tokens", tokens) ||
        (cert && cli_check_input("server", "--cert", cert)) || (key && cli_check_input("server", "--key", key)) ||
        (client_ca && cli_check_input("server", "--client-ca", client_ca)))
        return 1;
    fr_federation fed;
    fr_err e = fr_federation_load(fed_path, &fed);
    if (e) return cli_fail(e, "server: --federation");
    fr_model_kind kind = fed.implicit || fed.negatives ? FR_MODEL_NEUMF : FR_MODEL_MF; /* as train's default */
    if (o.model && fr_model_kind_parse(o.model, &kind)) {
        fprintf(stderr, "fedrec server: --model: %s\n", fr_errmsg());
        return 2;
    }
    if (fr_model_kind_is_closed_form(kind)) {
        fprintf(stderr, "fedrec server: --model %s is a baseline fitted centrally, not a federated model\n", o.model);
        return 2;
    }
    if (fr_model_kind_is_explicit(kind) && fed.implicit) {
        fprintf(stderr, "fedrec server: --model %s predicts ratings, but the federation's data is implicit feedback: "
                "use bpr, gmf, mlp or neumf\n", fr_model_kind_name(kind));
        return 2;
    }
    if (args_seen(specs, &o.confidence_alpha) && !fed.weighted) {
        fprintf(stderr, "fedrec server: --confidence-alpha weighs positives by their counts, but the federation's data "
                "has no weights (shard it with --implicit-weight)\n");
        return 2;
    }
    if ((rc = cli_train_check(&o, specs, kind))) return rc; /* train's rules, as fedrec server */
    if (o.hide_items && !strncmp(o.hide_items, "ldp", 3)) {
        fprintf(stderr, "fedrec server: --hide-items %s: local DP noise on decoys is not supported over the network "
                "yet (use decoys[:R], or dense for secure aggregation)\n", o.hide_items);
        return 2;
    }
    if (o.dp_clip && over != 0) {
        fprintf(stderr, "fedrec server: --over-select with --dp-clip: DP rounds sample every client of the federation "
                "with probability q (Poisson), as the accountant assumes\n");
        return 2;
    }
    /* train's config on the same data: the preset from what the federation file records of
     * it (clients, mean rating, weights, graph load), the options, the rounds sized from it */
    fr_run_config c;
    fr_run_data_stats dst;
    fr_run_data_stats_of_federation(&fed, &dst);
    if ((rc = cli_train_config(&o, specs, kind, &dst, &c))) return rc;
    c.model.n_users = fed.clients;
    c.model.n_items = fed.items;
    /* lightfm/fm: the feature names and items' lists fedrec data shard wrote (no user's list) */
    if ((rc = cli_features_from_shards("server", fed_path, &c.model, quiet))) return rc;
    if ((e = fr_run_config_check(&c))) {
        fprintf(stderr, "fedrec server: %s\n", fr_errmsg());
        return 2;
    }
    char *state_alloc = NULL;
    if (!state && out) {
        size_t n = strlen(out) + 8;
        state_alloc = malloc(n);
        if (state_alloc) snprintf(state_alloc, n, "%s.state", out);
        state = state_alloc;
    }
    if (resume && !state) {
        fprintf(stderr, "fedrec server: --resume needs --state (or --out, whose state is <out>.state)\n");
        return 2;
    }
    if ((state && cli_check_output("server", "--state", state, false)) ||
        (out && cli_check_output("server", "--out", out, false)) ||
        (metrics_out && cli_check_output("server", "--metrics-out", metrics_out, true))) {
        free(state_alloc);
        return 1;
    }
    nc.listen = listen;
    nc.insecure = insecure;
    nc.cert = cert;
    nc.key = key;
    nc.client_ca = client_ca;
    nc.tokens = tokens;
    nc.state = state;
    nc.resume = resume;
    nc.rounds = c.loop.steps;
    nc.min_clients = (uint32_t)min_clients;
    nc.over_select = over;
    nc.deadline_ms = (uint32_t)(deadline * 1000 + 0.5);
    nc.retry_ms = (uint32_t)(retry * 1000 + 0.5);
    nc.presence_ms = (uint32_t)(presence * 1000 + 0.5);
    nc.linger_ms = (uint32_t)(linger * 1000 + 0.5);
    nc.idle_ms = (int)(idle * 1000 + 0.5);
    nc.max_attempts = (uint32_t)max_attempts;
    nc.contexts = (int)contexts;
    nc.max_conns = (uint32_t)max_conns;
    nc.handshake_ms = (uint32_t)(handshake * 1000 + 0.5);
    nc.target_epsilon = c.loop.target_epsilon;
    nc.secagg = c.secagg;
    nc.secagg_stage_ms = (uint32_t)(sa_deadline * 1000 + 0.5);
    double *popularity = NULL;
    if (o.attack) { /* ITEM against the shard directory's items.map; promote-pop's popularity beside it */
        char dir[4200];
        struct stat st;
        snprintf(dir, sizeof dir, "%s", fed_path);
        if (stat(dir, &st) == 0 && !S_ISDIR(st.st_mode)) {
            char *sl = strrchr(dir, '/');
            if (sl) *sl = 0;
            else snprintf(dir, sizeof dir, ".");
        }
        int64_t d = shard_item(dir, attack_item, fed.items);
        if (d < 0) {
            fprintf(stderr, "fedrec server: --attack %s: item '%s' is not in %s/items.map (the federation's items); "
                    "ITEM is an item id as in the data file\n", o.attack, attack_item, dir);
            free(state_alloc);
            return 2;
        }
        attack.target = (uint32_t)d;
        if (attack.kind == FR_ATTACK_PROMOTE_POP) {
            char pp[4300];
            snprintf(pp, sizeof pp, "%s/popularity.txt", dir);
            e = fr_popularity_load(pp, fed.items, &popularity);
            if (e) {
                free(state_alloc);
                return cli_fail(e, "server: --attack promote-pop: the items' popularity");
            }
        }
        nc.attack = &attack;
        nc.popularity = popularity;
    }
    server_run r = {0};
    r.total = nc.rounds;
    r.secagg = nc.secagg;
    r.started = cli_now_s();
    cli_progress_init(&r.lines, quiet ? NULL : stdout);
    if (metrics_out && !(r.mf = fopen(metrics_out, "w"))) {
        fprintf(stderr, "fedrec server: --metrics-out: cannot write '%s': %s\n", metrics_out, strerror(errno));
        free(popularity);
        free(state_alloc);
        return 1;
    }
    fr_net_server *s = NULL;
    e = fr_net_server_create(&s, &nc, &c.model, &c.fl, fed.clients, log_line, "server");
    free(popularity);
    if (e) {
        if (r.mf) fclose(r.mf);
        free(state_alloc);
        return cli_fail(e, "server");
    }
    char host[256];
    snprintf(host, sizeof host, "%s", listen);
    char *colon = strrchr(host, ':');
    if (colon) *colon = 0;
    if (!quiet)
        printf("fedrec server: %s on %s, %u client%s, %u item%s, %u round%s; listening on %s:%d%s\n",
               fr_model_kind_name(kind), fed.implicit ? "implicit feedback" : "ratings", fed.clients, cli_s(fed.clients),
               fed.items, cli_s(fed.items), nc.rounds, cli_s(nc.rounds),
               host, fr_net_server_port(s), resume ? " (resumed)" : "");
    if (!quiet) {
        char settings[512];
        bool weighted = fed.weighted && !fr_model_kind_is_explicit(kind);
        cli_fl_settings(&c, weighted ? c.fl.confidence_alpha : 0, settings, sizeof settings);
        printf("fedrec server: federated %s: %s\n", fr_model_kind_name(kind), settings);
        if (!strcmp(fr_model_kind_name(kind), "lightgcn") && !(fed.graph_load > 0))
            printf("fedrec server: note: %s records no graph load (written by an older fedrec data shard): lightgcn's "
                   "item lr is not scaled down to a busy graph as train's is; shard the data again\n", fed_path);
    }
    if (!quiet && fr_fl_dp_on(&c.fl)) {
        char eps[64] = "";
        if (nc.target_epsilon > 0) snprintf(eps, sizeof eps, ", stops before ε > %g", nc.target_epsilon);
        printf("fedrec server: user-level DP: clip %g, noise σ %g, Poisson q %g over all %u client%s, δ %g%s\n",
               c.fl.dp_clip, c.fl.dp_noise, fr_fl_dp_rate(&c.fl, fed.clients), fed.clients, cli_s(fed.clients),
               fr_fl_dp_delta(&c.fl, fed.clients), eps);
    }
    if (fr_fl_dp_on(&c.fl) && c.fl.dp_seeded_noise)
        fprintf(stderr, "fedrec server: warning: --dp-seeded-noise: the noise follows --seed (tests only: not private "
                "against anyone who knows the seed)\n");
    cli_flush_stdout();
    the_server = s;
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    e = fr_net_server_run(s, on_round, &r);
    cli_progress_finish(&r.lines);
    if (!e && out) {
        char cj[256];
        snprintf(cj, sizeof cj, "{\"runtime\":\"net\",\"model\":\"%s\",\"rounds\":%u,\"clients\":%u}",
                 fr_model_kind_name(kind), fr_net_server_completed(s), fed.clients);
        fr_model_meta meta = {.round = fr_net_server_completed(s), .seed = c.fl.seed, .config_json = cj};
        e = fr_model_save(fr_net_server_model(s), out, &meta);
        if (!e && !quiet)
            printf("model: %s (the global model; each user's own rows stay on its client: rank with fedrec client "
                   "recommend)\n", out);
    }
    if (!quiet && state) printf("server state: %s (fedrec server --resume continues from it)\n", state);
    uint32_t done = fr_net_server_completed(s);
    the_server = NULL;
    if (r.mf) fflush(r.mf);
    cli_flush_stdout();
    /* nng 1.5.2's close can hang while a large reply is stuck on a connection whose peer
     * stopped reading; everything is saved by now, so a stuck close ends the process */
    pthread_t wd;
    bool wd_on = pthread_create(&wd, NULL, close_watchdog, NULL) == 0;
    fr_net_server_free(s);
    if (wd_on) { pthread_cancel(wd); pthread_join(wd, NULL); }
    if (r.mf) fclose(r.mf);
    free(state_alloc);
    if (e) return cli_fail(e, "server");
    if (got_signal) {
        fprintf(stderr, "fedrec server: stopped by signal %d after round %u\n", (int)got_signal, done);
        return 1;
    }
    return 0;
}

/* ------------------------------------------------------------------ client */

/* A client: its data (an NCF directory of its own: fedrec data shard's DIR/cID) and its
 * state, resumed from its state file when there is one. */
typedef struct client_box {
    fr_data *data;
    fr_netc *state;
    bool resumed;
} client_box;

static void client_box_free(client_box *b) {
    fr_netc_free(b->state);
    fr_data_free(b->data);
    memset(b, 0, sizeof *b);
}

static fr_err load_client(const char *dir, uint32_t id, const char *state, client_box *b) {
    memset(b, 0, sizeof *b);
    fr_source src;
    fr_err e = fr_source_shard(&src, dir);
    if (!e) e = fr_data_load(&b->data, &src);
    if (!e) e = fr_netc_create(&b->state, fr_data_train(b->data), NULL, 0, id, state);
    if (!e && state) e = fr_netc_load(b->state, &b->resumed);
    if (e) client_box_free(b);
    return e;
}

/* The client's own users' side features (lightfm, fm): the file given, else
 * user_features.txt in its shard directory when there is one. 0, or 1 after printing. */
static int user_features_for(const char *given, const char *dir, client_box *b) {
    char def[4400];
    const char *path = given;
    if (!path) {
        snprintf(def, sizeof def, "%.4200s/user_features.txt", dir);
        if (access(def, R_OK) != 0) return 0;
        path = def;
    } else if (cli_check_input("client", "--user-features", path)) return 1;
    return cli_user_features_read("client", path, b->state);
}

/* The items' public popularity for decoys: the file given, else popularity.txt in dir
 * (the shard directory) when there is one, else NULL with *rc 0 (a federation that needs
 * it then says so). On a bad file *rc is 1 after printing. */
static double *popularity_for(const char *given, const char *dir, uint32_t n_items, int *rc) {
    *rc = 0;
    char def[4400];
    const char *path = given;
    if (!path) {
        if ((size_t)snprintf(def, sizeof def, "%.4200s/popularity.txt", dir) >= sizeof def) return NULL;
        if (access(def, R_OK) != 0) return NULL;
        path = def;
    } else if (cli_check_input("client", "--popularity", path)) {
        *rc = 1;
        return NULL;
    }
    double *w = NULL;
    fr_err e = fr_popularity_load(path, n_items, &w);
    if (e) {
        *rc = cli_fail(e, "client: --popularity");
        return NULL;
    }
    return w;
}

static fr_net_member member_of(const client_box *b, uint32_t id, const char *token) {
    fr_net_member m = {b->state, fr_data_test(b->data), fr_data_negatives(b->data), id, token};
    return m;
}

/* The id of a shard directory named ".../cID". */
static bool id_of_dir(const char *dir, uint32_t *id) {
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/') n--;
    size_t b = n;
    while (b > 0 && dir[b - 1] != '/') b--;
    if (n - b < 2 || dir[b] != 'c') return false;
    uint64_t v = 0;
    for (size_t i = b + 1; i < n; i++) {
        if (dir[i] < '0' || dir[i] > '9' || v > UINT32_MAX / 10) return false;
        v = v * 10 + (uint64_t)(dir[i] - '0');
    }
    if (v > UINT32_MAX) return false;
    *id = (uint32_t)v;
    return true;
}

/* The raw item ids of a shard directory's items.map ("index<TAB>raw id" lines after '#'
 * comments), beside the client's directory: a malloc'd array of n_items (-1 where the map
 * says nothing), or NULL without a readable map. */
static int64_t *raw_items(const char *client_dir, uint32_t n_items) {
    char path[4200];
    snprintf(path, sizeof path, "%s/../items.map", client_dir);
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    int64_t *raw = malloc((n_items ? n_items : 1) * sizeof *raw);
    for (uint32_t i = 0; raw && i < n_items; i++) raw[i] = -1;
    char line[256];
    while (raw && fgets(line, sizeof line, f)) {
        if (line[0] == '#') continue;
        unsigned long long idx;
        long long r;
        if (sscanf(line, "%llu %lld", &idx, &r) == 2 && idx < n_items) raw[idx] = r;
    }
    fclose(f);
    return raw;
}

static int client_recommend(int argc, char **argv) {
    const char *data = NULL, *state = NULL;
    uint64_t k = 10, id = UINT64_MAX;
    arg_spec specs[] = {
        ARG_SPEC_STR("data", &data, "DIR  the client's own data (fedrec data shard's DIR/cID)"),
        ARG_SPEC_STR("state", &state, "FILE  its state (default DIR/client.state)"),
        ARG_SPEC_INT("id", &id, 0, UINT32_MAX, NULL, "ID  the client's id (default: from DIR's name cID)"),
        ARG_SPEC_INT("k", &k, 1, 100000, NULL, "K  items to recommend (default 10)"),
        ARG_SPEC_END,
    };
    const char *pos[1];
    int npos;
    const char *usage = "fedrec client recommend --data DIR [-k 10]";
    int rc = args_parse("client recommend", argc, argv, specs, pos, 0, &npos, usage);
    if (rc) return rc < 0 ? 0 : rc;
    if (!data) { fprintf(stderr, "usage: %s\n", usage); return 2; }
    uint32_t cid;
    if (id != UINT64_MAX) cid = (uint32_t)id;
    else if (!id_of_dir(data, &cid)) {
        fprintf(stderr, "fedrec client recommend: give --id: '%s' is not named cID\n", data);
        return 2;
    }
    char def[4096];
    if (!state) { snprintf(def, sizeof def, "%s/client.state", data); state = def; }
    if (cli_check_input("client recommend", "--data", data) || cli_check_input("client recommend", "--state", state))
        return 1;
    client_box b;
    fr_err e = load_client(data, cid, state, &b);
    if (e) return cli_fail(e, "client recommend");
    if (!b.resumed) {
        client_box_free(&b);
        fprintf(stderr, "fedrec client recommend: %s has no state yet: run fedrec client first\n", state);
        return 1;
    }
    uint32_t *items = calloc(k, sizeof *items);
    float *scores = calloc(k, sizeof *scores);
    size_t n = 0;
    if (!items || !scores) e = FR_ERR_NOMEM;
    if (!e) e = fr_netc_recommend(b.state, cid, (size_t)k, items, scores, &n);
    if (!e) {
        const fr_model *gm = fr_netc_model(b.state);
        uint32_t ni = gm ? fr_model_config_of(gm)->n_items : 0;
        int64_t *raw = raw_items(data, ni);
        printf("top %zu for client %u (global model after round %u%s):\n", n, cid, fr_netc_round(b.state) - 1,
               raw ? "; items by their ids in the data" : "; items by index");
        for (size_t i = 0; i < n; i++) {
            if (raw && items[i] < ni && raw[items[i]] >= 0)
                printf("%2zu. item %lld  %.4f\n", i + 1, (long long)raw[items[i]], (double)scores[i]);
            else printf("%2zu. item %u  %.4f\n", i + 1, items[i], (double)scores[i]);
        }
        free(raw);
    }
    free(items);
    free(scores);
    client_box_free(&b);
    return e ? cli_fail(e, "client recommend") : 0;
}

/* fedrec client eval: the federation's model as its clients hold it (each client's saved
 * state: its private rows and the final global model) evaluated on each client's own
 * held-out data, the sums added over the clients: what one machine holding every shard
 * (a researcher's) can report after a networked run. */
static int client_eval(int argc, char **argv) {
    const char *shards = NULL;
    bool json = false;
    arg_spec specs[] = {
        ARG_SPEC_STR("shards", &shards, "DIR  the shard directory (fedrec data shard), each cID with its client.state"),
        ARG_SPEC_FLAG("json", &json, "   the metrics as one JSON object"),
        ARG_SPEC_END,
    };
    const char *pos[1];
    int npos;
    const char *usage = "fedrec client eval --shards DIR [--json]";
    int rc = args_parse("client eval", argc, argv, specs, pos, 0, &npos, usage);
    if (rc) return rc < 0 ? 0 : rc;
    if (!shards) { fprintf(stderr, "usage: %s\n", usage); return 2; }
    fr_federation fed;
    fr_err e = fr_federation_load(shards, &fed);
    if (e) return cli_fail(e, "client eval: --shards");
    fr_eval_opts o;
    fr_eval_opts_default(&o);
    fr_eval_sums total;
    bool have = false;
    uint32_t done = 0, fresh = 0, rounds = 0;
    for (uint32_t c = 0; !e && c < fed.clients; c++) {
        char dir[4096], st[4200];
        snprintf(dir, sizeof dir, "%s/c%u", shards, c);
        snprintf(st, sizeof st, "%s/client.state", dir);
        client_box b;
        if ((e = load_client(dir, c, st, &b))) break;
        if (!b.resumed) { fresh++; client_box_free(&b); continue; } /* never took part */
        fr_eval_sums s;
        e = fr_netc_evaluate(b.state, fr_data_test(b.data), fr_data_negatives(b.data), &o, &s);
        if (e == FR_ERR_EMPTY) e = FR_OK; /* no test rows */
        else if (!e) {
            if (!have) { total = s; have = true; }
            else e = fr_eval_sums_add(&total, &s);
            done++;
            if (fr_netc_round(b.state) > rounds) rounds = fr_netc_round(b.state);
        }
        client_box_free(&b);
    }
    if (e) return cli_fail(e, "client eval");
    if (!have) {
        fprintf(stderr, "fedrec client eval: no client under %s has a state with test data: run the clients first\n",
                shards);
        return 1;
    }
    fr_eval_result r;
    fr_eval_result_init(&r, &o);
    if ((e = fr_eval_sums_result(&total, &r))) return cli_fail(e, "client eval");
    char buf[4096];
    if (json) {
        if ((e = fr_eval_result_json(&r, buf, sizeof buf, NULL))) return cli_fail(e, "client eval");
        printf("{\"clients\":%u,%s}\n", done, buf);
    } else {
        cli_metrics_text(&r, buf, sizeof buf);
        printf("%u client%s (global model after round %u): %s\n", done, cli_s(done), rounds ? rounds - 1 : 0, buf);
        if (fresh) printf("(%u client%s never took part: no state)\n", fresh, cli_s(fresh));
    }
    return 0;
}

/* --compute-log: one JSON line per client step, from the load generator's threads. */
typedef struct compute_log_box {
    pthread_mutex_t mu;
    FILE *f;
} compute_log_box;

static void compute_logged(void *user, const fr_net_compute *r) {
    static const char *const names[] = {"train", "keys", "share", "mask", "unmask"};
    compute_log_box *b = user;
    pthread_mutex_lock(&b->mu);
    fprintf(b->f, "{\"client\":%u,\"round\":%u,\"thread\":%d,\"step\":\"%s\",\"wall\":%.6f,\"cpu\":%.6f,\"end\":%.6f}\n",
            r->client, r->round, r->thread, (unsigned)r->step < 5 ? names[r->step] : "?", r->wall_seconds,
            r->cpu_seconds, r->end_seconds);
    pthread_mutex_unlock(&b->mu);
}

static int client_main(int argc, char **argv, compute_log_box *clog);

static int cli_client(int argc, char **argv) {
    compute_log_box clog = {.mu = PTHREAD_MUTEX_INITIALIZER};
    int rc = client_main(argc, argv, &clog);
    if (clog.f && fclose(clog.f) != 0 && rc == 0) {
        fprintf(stderr, "fedrec client: --compute-log: %s\n", strerror(errno));
        rc = 1;
    }
    return rc;
}

static int client_main(int argc, char **argv, compute_log_box *clog) {
    if (argc >= 2 && !strcmp(argv[1], "recommend")) return client_recommend(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "eval")) return client_eval(argc - 1, argv + 1);
    fr_net_client_config cc;
    fr_net_client_config_default(&cc);
    const char *data = NULL, *shards = NULL, *token_file = NULL, *state = NULL, *popularity = NULL;
    const char *user_features = NULL, *compute_log = NULL;
    uint64_t id = UINT64_MAX, clients = 0, threads = 2, first = 0;
    bool no_eval = false, no_state = false, no_long_poll = false, no_fetch = false, drop_unmask = false;
    double timeout = cc.timeout_ms / 1000.0, give_up = cc.give_up_ms / 1000.0, delay = 0, delay_unmask = 0;
    arg_spec specs[] = {
        ARG_SPEC_STR("connect", &cc.connect, "URL  the server: tls+tcp://HOST:PORT"),
        ARG_SPEC_STR("ca", &cc.ca, "FILE  the CA that signed the server's certificate"),
        ARG_SPEC_STR("server-name", &cc.server_name, "NAME  the name on the server's certificate (default: URL's host)"),
        ARG_SPEC_STR("cert", &cc.cert, "FILE  own certificate, for a server that asks (mutual TLS)"),
        ARG_SPEC_STR("key", &cc.key, "FILE  its key"),
        ARG_SPEC_FLAG("insecure", &cc.insecure, "   allow tcp://"),
        ARG_SPEC_STR("token-file", &token_file, "FILE  the client's token: a line 'ID TOKEN' (fedrec tokens) or the token"),
        ARG_SPEC_STR("data", &data, "DIR  this client's own data (fedrec data shard's DIR/cID)"),
        ARG_SPEC_INT("id", &id, 0, UINT32_MAX, NULL, "ID  the client's id (default: from DIR's name cID)"),
        ARG_SPEC_STR("state", &state, "FILE  the client's state (default DIR/client.state)"),
        ARG_SPEC_STR("shards", &shards, "DIR  load generator: run the clients of this shard directory in one process"),
        ARG_SPEC_STR("popularity", &popularity,
                     "FILE  the items' public popularity, for a federation that hides items with decoys (default: "
                     "popularity.txt of the shard directory, when there is one)"),
        ARG_SPEC_STR("user-features", &user_features,
                     "FILE  lightfm/fm: the client's own user's side features, lines 'USER<TAB>ID:WEIGHT ...' in the "
                     "federation's ids (default: user_features.txt of its shard directory, as fedrec data shard "
                     "writes it)"),
        ARG_SPEC_INT("clients", &clients, 0, UINT32_MAX, "0 = all", "N  load generator: this many clients"),
        ARG_SPEC_INT("first", &first, 0, UINT32_MAX, NULL, "ID  load generator: starting at this id (default 0)"),
        ARG_SPEC_INT("threads", &threads, 1, 1024, NULL, "T  load generator: threads (default 2)"),
        ARG_SPEC_FLAG("no-state", &no_state, "   load generator: keep the clients' state in memory only"),
        ARG_SPEC_FLAG("no-eval", &no_eval, "   do not report the client's own evaluation"),
        ARG_SPEC_FLAG("no-fetch-rows", &no_fetch,
                      "   take the whole shared model with every TASK, not only the item rows it trains on (a client "
                      "that evaluates always does)"),
        ARG_SPEC_REAL("delay", &delay, 0, 3600, 0, NULL, "S  wait S seconds after each TASK: a slow device (tests)"),
        ARG_SPEC_REAL("delay-unmask", &delay_unmask, 0, 3600, 0, NULL,
                      "S  secure aggregation: wait S seconds before each unmasking answer (tests)"),
        ARG_SPEC_FLAG("drop-unmask", &drop_unmask,
                      "   secure aggregation: leave each session after masking, without an unmasking answer, and go on "
                      "to the next round (a device that drops out mid-round; tests and benchmarks)"),
        ARG_SPEC_STR("compute-log", &compute_log,
                     "FILE  write each client's compute per round and step as JSON lines (client, round, thread, "
                     "step, wall and CPU seconds): benchmarks"),
        ARG_SPEC_FLAG("no-long-poll", &no_long_poll,
                      "   secure aggregation: poll for the next stage instead of asking the server to hold the "
                      "request until it opens (for a server that predates it)"),
        ARG_SPEC_REAL("timeout", &timeout, 0.01, 86400, 0, NULL, "S  wait this long for a reply (default 30)"),
        ARG_SPEC_REAL("give-up", &give_up, 0, 864000, 0, "0 = never", "S  stop after this long without a reply (default 300)"),
        ARG_SPEC_END,
    };
    const char *pos[1];
    int npos;
    const char *usage = "fedrec client --connect URL --ca FILE --token-file FILE --data DIR/cID\n"
                        "       fedrec client --connect URL ... --shards DIR [--clients N] [--threads T]  (load generator)\n"
                        "       fedrec client recommend --data DIR/cID [-k 10]\n"
                        "       fedrec client eval --shards DIR [--json]";
    int rc = args_parse("client", argc, argv, specs, pos, 0, &npos, usage);
    if (rc) return rc < 0 ? 0 : rc;
    if (!cc.connect || !token_file || (!data == !shards)) {
        fprintf(stderr, "fedrec client: --connect, --token-file and one of --data or --shards are required\nusage: %s\n",
                usage);
        return 2;
    }
    if (!cc.insecure && !cc.ca) {
        fprintf(stderr, "fedrec client: --ca is required to verify the server (plain tcp:// needs --insecure)\n");
        return 2;
    }
    cc.evaluate = !no_eval;
    cc.long_poll = !no_long_poll;
    if (compute_log) {
        if (!(clog->f = fopen(compute_log, "w"))) {
            fprintf(stderr, "fedrec client: --compute-log %s: %s\n", compute_log, strerror(errno));
            return 1;
        }
        cc.on_compute = compute_logged;
        cc.compute_user = clog;
    }
    cc.fetch_rows = !no_fetch;
    cc.delay_ms = (uint32_t)(delay * 1000 + 0.5);
    cc.delay_unmask_ms = (uint32_t)(delay_unmask * 1000 + 0.5);
    cc.drop_unmask = drop_unmask;
    cc.timeout_ms = (int)(timeout * 1000 + 0.5);
    cc.give_up_ms = (uint32_t)(give_up * 1000 + 0.5);
    if (cli_check_input("client", "--token-file", token_file) || (cc.ca && cli_check_input("client", "--ca", cc.ca)))
        return 1;
    fr_err e = FR_OK;
    fr_net_client_stats st;
    if (data) {
        uint32_t cid;
        if (id != UINT64_MAX) cid = (uint32_t)id;
        else if (!id_of_dir(data, &cid)) {
            fprintf(stderr, "fedrec client: give --id: '%s' is not named cID\n", data);
            return 2;
        }
        if (cli_check_input("client", "--data", data)) return 1;
        char def[4096];
        if (!state) { snprintf(def, sizeof def, "%s/client.state", data); state = def; }
        char *tok = token_for("client", token_file, cid);
        if (!tok) return 1;
        client_box b;
        e = load_client(data, cid, state, &b);
        if (!e && user_features_for(user_features, data, &b)) {
            client_box_free(&b);
            free(tok);
            return 1;
        }
        double *pop = NULL;
        if (!e) { /* the shard directory DIR holds DIR/cID and DIR/popularity.txt */
            char parent[4200];
            snprintf(parent, sizeof parent, "%s/..", data);
            pop = popularity_for(popularity, parent, fr_dataset_n_items(fr_data_train(b.data)), &rc);
            if (rc) {
                client_box_free(&b);
                free(tok);
                return rc;
            }
            fr_netc_set_popularity(b.state, pop, fr_dataset_n_items(fr_data_train(b.data)));
        }
        if (!e) {
            char who[32];
            snprintf(who, sizeof who, "client %u", cid);
            if (b.resumed) log_line(who, 0, "resumed from its state file");
            fr_net_member m = member_of(&b, cid, tok);
            e = fr_net_client_run(&cc, &m, log_line, who, &st);
        }
        if (!e)
            printf("client %u: done after round %u: trained %" PRIu64 " round%s, %" PRIu64 " result%s accepted, %.1f s "
                   "computing; state in %s\n", cid, st.rounds_done, st.tasks, cli_s(st.tasks), st.results,
                   cli_s(st.results), st.compute_seconds, state);
        client_box_free(&b);
        free(pop);
        free(tok);
        return e ? cli_fail(e, "client") : 0;
    }
    /* the load generator: a thousand clients dialling at once can take a long time to be
     * answered, and abandoning a live handshake wedges nng 1.5.2 */
    cc.dial_stall_ms = 120000;
    fr_federation fed;
    if ((e = fr_federation_load(shards, &fed))) return cli_fail(e, "client: --shards");
    if (first >= fed.clients) {
        fprintf(stderr, "fedrec client: --first %" PRIu64 ": the federation has %u client%s\n", first, fed.clients,
                cli_s(fed.clients));
        return 2;
    }
    uint32_t n = clients ? (uint32_t)clients : fed.clients - (uint32_t)first;
    if ((uint64_t)first + n > fed.clients) n = fed.clients - (uint32_t)first;
    double *pop = popularity_for(popularity, shards, fed.items, &rc);
    if (rc) return rc;
    client_box *bs = calloc(n, sizeof *bs);
    fr_net_member *ms = calloc(n, sizeof *ms);
    char **toks = calloc(n, sizeof *toks);
    if (!bs || !ms || !toks) { fprintf(stderr, "fedrec client: out of memory\n"); free(pop); return 1; }
    cc.save_state = !no_state;
    for (uint32_t i = 0; !e && i < n; i++) {
        uint32_t cid2 = (uint32_t)first + i;
        char dir[4096], st_path[4200];
        snprintf(dir, sizeof dir, "%s/c%u", shards, cid2);
        snprintf(st_path, sizeof st_path, "%s/client.state", dir);
        if (!(toks[i] = token_for("client", token_file, cid2))) { rc = 1; break; }
        e = load_client(dir, cid2, no_state ? NULL : st_path, &bs[i]);
        if (!e && user_features_for(NULL, dir, &bs[i])) { rc = 1; break; }
        if (!e) fr_netc_set_popularity(bs[i].state, pop, fed.items);
        if (!e) ms[i] = member_of(&bs[i], cid2, toks[i]);
    }
    double t0 = cli_now_s();
    if (!e && !rc) {
        printf("fedrec client: %u client%s (%u .. %u) on %d thread%s\n", n, cli_s(n), ms[0].id, ms[n - 1].id,
               (int)threads, cli_s(threads));
        cli_flush_stdout();
        e = fr_net_clients_run(&cc, ms, n, (int)threads, log_line, "loadgen", &st);
        if (!e)
            printf("fedrec client: %u client%s done after round %u in %.1f s: %" PRIu64 " task%s, %" PRIu64
                   " result%s, %" PRIu64 " late, %.1f s computing, %.1f MB up, %.1f MB down\n", n, cli_s(n),
                   st.rounds_done, cli_now_s() - t0, st.tasks, cli_s(st.tasks), st.results, cli_s(st.results), st.late, st.compute_seconds, (double)st.bytes_up / 1e6,
                   (double)st.bytes_down / 1e6);
        if (!e && (st.sa_done || st.sa_dropped))
            printf("fedrec client: secure aggregation: %" PRIu64 " session%s finished, %" PRIu64 " dropped; compute "
                   "%.2f s key agreement, %.2f s masking, %.2f s unmasking (summed over the clients)\n", st.sa_done,
                   cli_s(st.sa_done),
                   st.sa_dropped, st.sa_key_seconds, st.sa_mask_seconds, st.sa_unmask_seconds);
    }
    for (uint32_t i = 0; i < n; i++) { client_box_free(&bs[i]); free(toks[i]); }
    free(bs);
    free(ms);
    free(toks);
    free(pop);
    if (rc) return rc;
    return e ? cli_fail(e, "client") : 0;
}

int cli_net(int argc, char **argv) {
    if (!strcmp(argv[0], "server")) return cli_server(argc, argv);
    return cli_client(argc, argv);
}
