/* fedrec tokens: one secret token per client of a networked federation, and the file of
 * their hashes the server checks HELLOs against (src/runtime/net/token.h). Tokens are
 * written to DIR/tokens.secret only, never printed. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "runtime/net/token.h"

int cli_tokens(int argc, char **argv) {
    uint64_t clients = 0;
    const char *out = NULL;
    bool force = false;
    arg_spec specs[] = {
        ARG_SPEC_INT("clients", &clients, 1, FRI_TOKEN_MAX_CLIENTS, NULL,
                     "N  clients to make tokens for (ids 0..N-1; required)"),
        ARG_SPEC_STR("out", &out, "DIR  where to write tokens.secret and tokens.hash (required; made if missing)"),
        ARG_SPEC_FLAG("force", &force, "   replace the files of an earlier run (its tokens stop working)"),
        ARG_SPEC_END,
    };
    const char *pos[1];
    int npos;
    const char *usage = "fedrec tokens --clients N --out DIR [--force]";
    int rc = args_parse("tokens", argc, argv, specs, pos, 0, &npos, usage);
    if (rc) return rc < 0 ? 0 : rc;
    if (!args_seen(specs, &clients) || !out) {
        fprintf(stderr, "fedrec tokens: %s is required\nusage: %s\n", !out ? "--out DIR" : "--clients N", usage);
        return 2;
    }
    if (mkdir(out, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "fedrec tokens: --out: cannot make directory '%s': %s\n", out, strerror(errno));
        return 1;
    }
    size_t dn = strlen(out) + 32;
    char *secret = malloc(dn), *hash = malloc(dn);
    uint32_t *ids = malloc((size_t)clients * sizeof *ids);
    if (!secret || !hash || !ids) {
        fprintf(stderr, "fedrec tokens: out of memory\n");
        free(secret); free(hash); free(ids);
        return 1;
    }
    snprintf(secret, dn, "%s/%s", out, FRI_TOKEN_SECRET_FILE);
    snprintf(hash, dn, "%s/%s", out, FRI_TOKEN_HASH_FILE);
    const char *paths[2] = {secret, hash};
    for (int i = 0; i < 2 && !rc; i++) {
        struct stat st;
        if (!force && lstat(paths[i], &st) == 0) {
            fprintf(stderr, "fedrec tokens: '%s' already exists: the clients of an earlier run may hold its tokens; "
                    "add --force to replace it, or choose another --out\n", paths[i]);
            rc = 1;
        } else if (cli_check_output("tokens", "--out", paths[i], false)) {
            rc = 1;
        }
    }
    if (!rc) {
        for (uint64_t i = 0; i < clients; i++) ids[i] = (uint32_t)i;
        fr_err e = fri_tokens_write(secret, hash, ids, (size_t)clients);
        if (e) rc = cli_fail(e, "tokens");
    }
    if (!rc) {
        char range[64] = "id 0";
        if (clients > 1) snprintf(range, sizeof range, "ids 0..%" PRIu64, clients - 1);
        printf("wrote %s for %" PRIu64 " client%s (%s):\n"
               "  %s  the secret token%s, one line per client (mode 0600)\n"
               "  %s  their hashes, for the server\n",
               clients == 1 ? "a token" : "tokens", clients, cli_s(clients), range, secret, cli_s(clients), hash);
        fprintf(stderr, "fedrec tokens: warning: %s holds every client's secret: give each client its own line only, "
                "then delete the file; it must never be kept on the server, which needs only %s\n", secret, hash);
    }
    free(secret);
    free(hash);
    free(ids);
    return rc;
}
