/* Secure aggregation internals shared by the client and the server (privacy.h): the
 * message header, the neighbourhood graph, the key agreement, the ChaCha20 mask
 * generator, Shamir sharing over libgfshare and the parties' randomness.
 *
 * Every message: u32 magic "FRSA", u16 version, u16 type, u64 session, u32 sender,
 * u32 recipient (FRI_SA_SERVER for the server), u64 body bytes, then the body. */
#ifndef FEDREC_SRC_PRIVACY_SECAGG_INTERNAL_H
#define FEDREC_SRC_PRIVACY_SECAGG_INTERNAL_H
#include <stdbool.h>
#include <stdint.h>

#include "core/core.h"
#include "fedrec/privacy.h"

#define FRI_SA_MAGIC 0x41535246u /* "FRSA" little-endian */
#define FRI_SA_VERSION 1u
#define FRI_SA_SERVER 0xFFFFFFFFu /* the server as sender or recipient */
#define FRI_SA_ANY 0xFFFFFFFEu    /* fri_sa_open: any client as sender */

enum {
    FRI_SA_MSG_ADVERTISE = 1, /* c→s: c_pk[32] s_pk[32] */
    FRI_SA_MSG_KEYS = 2,      /* s→c: u32 count, count × (u32 id, c_pk[32], s_pk[32]) */
    FRI_SA_MSG_SHARES = 3,    /* c→s: commit[32], u32 count, count × (u32 to, ct[FRI_SA_CT]) */
    FRI_SA_MSG_FORWARD = 4,   /* s→c: u32 count, count × (u32 from, ct[FRI_SA_CT]) */
    FRI_SA_MSG_MASKED = 5,    /* c→s: u64 len, len × u64 */
    FRI_SA_MSG_REQUEST = 6,   /* s→c: u32 count, count × (u32 id, u8 kind) */
    FRI_SA_MSG_ANSWER = 7     /* c→s: u32 count, count × (u32 id, u8 kind, u8 x, share[32]) */
};
enum { FRI_SA_KIND_SEED = 1, FRI_SA_KIND_KEY = 2 }; /* which share an unmasking entry is */

#define FRI_SA_KEY 32u                                   /* X25519 keys, seeds, shares */
#define FRI_SA_PLAIN (4u + 4u + 8u + 1u + 2u * FRI_SA_KEY) /* from, to, session, x, shares */
#define FRI_SA_NONCE 24u
#define FRI_SA_TAG 16u
#define FRI_SA_CT (FRI_SA_NONCE + FRI_SA_PLAIN + FRI_SA_TAG)
#define FRI_SA_ANSWER_ENTRY (4u + 1u + 1u + FRI_SA_KEY)

/* Purposes, for domain separation of hashes and generator nonces. */
enum { FRI_SA_CHANNEL = 1, FRI_SA_PAIR = 2, FRI_SA_SELF = 3 };

/* ---- messages */
/* Starts a message in b (the body length is patched by fri_sa_end). */
void fri_sa_begin(fri_buf *b, uint16_t type, uint64_t session, uint32_t from, uint32_t to);
/* Patches the body length; hands the bytes to *out. FR_ERR_NOMEM if the buffer failed. */
FR_NODISCARD fr_err fri_sa_end(fri_buf *b, uint8_t **out, size_t *out_n);
/* Checks a message's header (magic, version, type, session, recipient, sender: from_expect,
 * or any client id < n for FRI_SA_ANY, body length = what follows) and positions r on its body.
 * *from gets the sender. FR_ERR_FORMAT / FR_ERR_VERSION naming `kind`. */
FR_NODISCARD fr_err fri_sa_open(fri_rd *r, const uint8_t *m, size_t n, uint16_t type, const fr_sa_params *p,
                                uint32_t from_expect, uint32_t to, uint32_t *from, const char *kind);

/* ---- graph: clients on a ring in the order of a shuffle by graph_seed */
typedef struct fri_sa_graph {
    uint32_t n, k;
    uint32_t *perm; /* perm[position] = client */
    uint32_t *pos;  /* pos[client] = position */
} fri_sa_graph;
FR_NODISCARD fr_err fri_sa_graph_init(fri_sa_graph *g, const fr_sa_params *p);
void fri_sa_graph_free(fri_sa_graph *g);
/* The k neighbours of id, ascending. */
void fri_sa_graph_nb(const fri_sa_graph *g, uint32_t id, uint32_t *out);
/* The index of v in the ascending list a[0, k), or -1. */
long fri_sa_find(const uint32_t *a, uint32_t k, uint32_t v);

/* ---- randomness: libsodium's CSPRNG, or a ChaCha20 stream keyed by the test seed */
typedef struct fri_sa_rng {
    bool det;
    uint64_t ctr;
    uint8_t key[32];
} fri_sa_rng;
void fri_sa_rng_init(fri_sa_rng *r, const fr_sa_params *p, uint32_t party);
void fri_sa_random(fri_sa_rng *r, void *buf, size_t n);

/* ---- cryptography */
/* out = BLAKE2b(X25519(sk, their_pk) ‖ lower pk ‖ higher pk ‖ session ‖ purpose): the
 * same on both sides. FR_ERR_FORMAT when their_pk is a low-order point. */
FR_NODISCARD fr_err fri_sa_agree(uint8_t out[32], const uint8_t sk[32], const uint8_t my_pk[32],
                                 const uint8_t their_pk[32], uint64_t session, uint8_t purpose);
/* The commitment to a self-mask seed (a BLAKE2b hash, personalised). */
void fri_sa_commit(uint8_t out[32], const uint8_t seed[32], uint64_t session);
/* y[0, len) += sign · (len words of ChaCha20 keyed by seed, nonce (session, purpose)),
 * modulo 2^64; sign is +1 or -1. */
void fri_sa_prg_add(uint64_t *y, uint64_t len, const uint8_t seed[32], uint64_t session, uint8_t purpose, int sign);
/* The same for words [from, to) of that stream only: y[from, to) += sign · words from..to-1
 * (from a multiple of FRI_SA_PRG_ALIGN words; ChaCha20 is seekable by its block counter),
 * so disjoint ranges can be added by different threads and give fri_sa_prg_add's words. */
#define FRI_SA_PRG_ALIGN 512u
void fri_sa_prg_add_range(uint64_t *y, uint64_t from, uint64_t to, const uint8_t seed[32], uint64_t session,
                          uint8_t purpose, int sign);
/* Shamir t-of-count shares of secret[0, size) at x-coordinates xs (distinct, nonzero)
 * into shares[count][size], coefficients from r. FR_ERR_NOMEM. */
FR_NODISCARD fr_err fri_sa_split(fri_sa_rng *r, const uint8_t *secret, uint32_t size, uint32_t count, uint8_t t,
                                 const uint8_t *xs, uint8_t *shares);
/* The secret[0, size) from count shares shares[count][size] at xs (count >= t of the
 * split: the caller checks). FR_ERR_NOMEM. */
FR_NODISCARD fr_err fri_sa_join(uint32_t count, const uint8_t *xs, const uint8_t *shares, uint32_t size,
                                uint8_t *secret);
/* sodium_malloc'd, zeroed; NULL and the message set on failure. */
void *fri_sa_secret_alloc(size_t n);

#endif
