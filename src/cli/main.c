/* The fedrec program: subcommand dispatch. The only code that prints or exits. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static void usage(FILE *f) {
    fprintf(f,
            "fedrec %s: federated learning for recommender systems\n\n"
            "usage: fedrec <command> [options]\n\n"
            "commands:\n"
            "  data info FILE                  counts, sparsity, rating histogram\n"
            "  data split FILE --loo ...       NCF-format train/test/negative files\n"
            "  data generate --users N ...     a synthetic ratings file\n"
            "  data shard [--data PATH] --out DIR   a directory per client, for server and client\n"
            "  train [--data PATH] [--centralized] ...   train a model (federated by default)\n"
            "  eval --model FILE [--json]      metrics of a saved model on its data\n"
            "  recommend --model FILE --user ID   top-K unseen items for a user\n"
            "  server --listen URL ...         a federation's server over TLS (networked runtime)\n"
            "  client --connect URL ...        a client process (or many: --shards, the load generator)\n"
            "  client recommend --data DIR     top-K items for a client's own user, offline\n"
            "  client eval --shards DIR        a networked run's model as its clients hold it, evaluated\n"
            "  plot METRICS.jsonl ... --out F.svg  chart of --metrics-out files (SVG)\n"
            "  tokens --clients N --out DIR    secret client tokens and their hashes (networked runtime)\n"
            "  privacy --noise σ --sample-rate q --rounds R --delta δ   ε of DP-FedAvg (or --target-epsilon E: σ)\n"
            "  version                         print the version\n\n"
            "Run 'fedrec <command> --help' for a command's options.\n",
            FR_VERSION_STRING);
}

/* Runs the command; then standard output must have taken everything it printed. */
int main(int argc, char **argv) {
    if (argc < 2) { usage(stderr); return 2; }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
        usage(stdout);
        return cli_finish_stdout("--help", 0);
    }
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
        printf("fedrec %s\n", FR_VERSION_STRING);
        return cli_finish_stdout("version", 0);
    }
    if (!strcmp(cmd, "data")) {
        static const char *const sub[] = {"data info", "data split", "data generate", "data shard"};
        const char *name = "data";
        for (size_t i = 0; argc > 2 && i < sizeof sub / sizeof *sub; i++)
            if (!strcmp(argv[2], sub[i] + 5)) name = sub[i];
        return cli_finish_stdout(name, cli_data(argc - 1, argv + 1));
    }
    if (!strcmp(cmd, "train")) return cli_finish_stdout(cmd, cli_train(argc - 1, argv + 1));
    if (!strcmp(cmd, "eval")) return cli_finish_stdout(cmd, cli_eval(argc - 1, argv + 1));
    if (!strcmp(cmd, "plot")) return cli_finish_stdout(cmd, cli_plot(argc - 1, argv + 1));
    if (!strcmp(cmd, "server") || !strcmp(cmd, "client"))
        return cli_finish_stdout(argc > 2 && !strcmp(argv[2], "recommend") ? "client recommend"
                                 : argc > 2 && !strcmp(argv[2], "eval")    ? "client eval"
                                                                           : cmd,
                                 cli_net(argc - 1, argv + 1));
    if (!strcmp(cmd, "tokens")) return cli_finish_stdout(cmd, cli_tokens(argc - 1, argv + 1));
    if (!strcmp(cmd, "privacy")) return cli_finish_stdout(cmd, cli_privacy(argc - 1, argv + 1));
    if (!strcmp(cmd, "recommend")) return cli_finish_stdout(cmd, cli_recommend(argc - 1, argv + 1));
    fprintf(stderr, "fedrec: unknown command '%s'\n\n", cmd);
    usage(stderr);
    return 2;
}
