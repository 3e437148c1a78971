/* Client tokens: the secret each client of a networked federation shows in its HELLO,
 * and the table of their hashes the server checks them against.
 *
 * A token is "frt_" and 43 base64url characters (32 bytes from libsodium's CSPRNG). The
 * server never holds a token: its hash file is
 *     # fedrec token hashes v1 salt=<64 hex digits>
 *     <client id> <64 hex digits: BLAKE2b-256 keyed by the salt, over the token>
 *     ...
 * one line per client (a fresh random salt per file; blank lines and lines starting with
 * '#' after the header are comments). The tokens themselves go once into a secret file,
 * "<client id> <token>" per line, mode 0600, to be handed out one line per client and
 * deleted from the server. Tokens are 256-bit random, so a fast keyed hash is enough (no
 * password hashing): a check costs one BLAKE2b of 47 bytes and a binary search.
 *
 * Invariants: a token is never written anywhere but the secret file and never appears in
 * an error message; the loaded table lives in libsodium guarded memory (locked, read-only
 * once loaded, wiped when freed); tokens are compared in constant time. */
#ifndef FEDREC_SRC_RUNTIME_NET_TOKEN_H
#define FEDREC_SRC_RUNTIME_NET_TOKEN_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

#define FRI_TOKEN_PREFIX "frt_"
#define FRI_TOKEN_RANDOM_BYTES 32
#define FRI_TOKEN_LEN 47                  /* "frt_" + 43 base64url characters */
#define FRI_TOKEN_SALT_BYTES 32
#define FRI_TOKEN_HASH_BYTES 32
#define FRI_TOKEN_MAX_CLIENTS (1u << 24)
#define FRI_TOKEN_HEADER "# fedrec token hashes v1 salt=" /* then 64 hex digits */
#define FRI_TOKEN_SECRET_FILE "tokens.secret" /* the names `fedrec tokens --out DIR` writes */
#define FRI_TOKEN_HASH_FILE "tokens.hash"

/* A fresh token into out (FRI_TOKEN_LEN characters and a NUL). The caller wipes it
 * (sodium_memzero) when done with it. */
FR_NODISCARD fr_err fri_token_generate(char out[FRI_TOKEN_LEN + 1]);

/* Whether s[0, len) has the form of a token ("frt_" + 43 base64url characters): a client
 * can check what it was given before sending it. Says nothing about whose it is. */
bool fri_token_well_formed(const uint8_t *s, size_t len);

/* The hash a server keeps: BLAKE2b-256 keyed by salt, over tok[0, len). */
FR_NODISCARD fr_err fri_token_hash(const uint8_t salt[FRI_TOKEN_SALT_BYTES], const uint8_t *tok, size_t len,
                                   uint8_t out[FRI_TOKEN_HASH_BYTES]);

/* Generates a token for each client of ids[0, n) (distinct; 1 <= n <= 2^24) and writes,
 * each atomically (temporary file, fsync, rename): secret_path, "<id> <token>" per line,
 * mode 0600 (created so from the start), then hash_path, the header with a fresh salt and
 * "<id> <hash>" per line, in the order of ids. If the hash file cannot be written the
 * secret file is removed again. The tokens exist only in guarded memory, wiped after. */
FR_NODISCARD fr_err fri_tokens_write(const char *secret_path, const char *hash_path, const uint32_t *ids, size_t n);

/* The server's table of token hashes (opaque). Read-only once loaded: any number of
 * threads may check tokens at once. */
typedef struct fri_tokens fri_tokens;

/* Loads a hash file. Errors name the file and line and say what was expected
 * (FR_ERR_PARSE: a bad header, hex, id, a duplicate client, a CR of a CRLF file, more
 * than 2^24 clients; FR_ERR_EMPTY: no client; FR_ERR_IO; FR_ERR_NOMEM). *out is NULL on
 * failure. */
FR_NODISCARD fr_err fri_tokens_load(fri_tokens **out, const char *path);
/* Wipes and frees the table. NULL is fine. */
void fri_tokens_free(fri_tokens *t);
/* Clients in the table, and the i-th client id in increasing order (i < count). */
size_t fri_tokens_count(const fri_tokens *t);
uint32_t fri_tokens_client(const fri_tokens *t, size_t i);

typedef enum fri_token_verdict {
    FRI_TOKEN_OK = 0,             /* the token is this client's */
    FRI_TOKEN_UNKNOWN_CLIENT = 1, /* no such client in the table (REFUSE 2) */
    FRI_TOKEN_WRONG = 2,          /* a known client, another token (REFUSE 1) */
} fri_token_verdict;

/* Checks tok[0, len) (any bytes, any length, from a HELLO) for client: one keyed hash
 * (always computed, whether or not the client is known) compared in constant time. */
fri_token_verdict fri_tokens_check(const fri_tokens *t, uint32_t client, const uint8_t *tok, size_t len);

#endif
