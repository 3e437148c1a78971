/* fedrec attack: which items did this user touch? An honest-but-curious server's guess
 * from what it receives, and its score (a harness for measuring the item-hiding modes of
 * docs/ARCHITECTURE.md, "Which items did this user touch?"; not part of a federation).
 *
 * The attacker observes each client's RESULTs (fr_result_decode of the bytes, as the
 * server decodes them) over the rounds and scores every item of the client: for each
 * round the item's row was present with a non-zero value, 1 + a * side, where a =
 * |cos(row, v)| with v the top singular direction of that RESULT's rows (all item tables
 * side by side) and side = +1 on the side of v whose rows are more popular on average
 * (the positives' side: sampled negatives are uniform, a user's items are not), -1 on the
 * other. So real items (present every round, on the positives' side, along the user's
 * direction) outrank sampled negatives (present in one round) and isotropic noise. Under
 * secure aggregation there is no per-client RESULT and nothing to observe.
 *
 * Memory: a float and a count per (client, item): a harness for benchmarks. */
#ifndef FEDREC_ATTACK_H
#define FEDREC_ATTACK_H

#include "fedrec/fl.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct fr_attack fr_attack;

/* An attacker for n_clients clients and n_items items; popularity[n_items] (copied; NULL:
 * the side of v with more rows counts as the positives') is the public per-item count.
 * FR_ERR_INVALID (zero sizes), FR_ERR_NOMEM. */
FR_API FR_NODISCARD fr_err fr_attack_create(fr_attack **out, uint32_t n_clients, uint32_t n_items,
                                            const double *popularity);
FR_API void fr_attack_free(fr_attack *a);
/* Takes one client's RESULT. Not thread-safe (the caller locks). FR_ERR_RANGE (a client
 * or item id out of range), FR_ERR_NOMEM. */
FR_API FR_NODISCARD fr_err fr_attack_observe(fr_attack *a, const fr_result *r);
/* Client c's score of item i (0 for an item never seen), and the rounds it was observed. */
FR_API double fr_attack_item_score(const fr_attack *a, uint32_t c, uint32_t i);
FR_API uint32_t fr_attack_rounds(const fr_attack *a, uint32_t c);
/* Client c's guess: the g items of highest score among those it has seen non-zero (ties:
 * lower id first; fewer when fewer were seen), into out[g]; *n the count. g = 0: the items present (non-zero) in EVERY round c
 * was observed in (out must hold n_items). FR_ERR_RANGE (c), FR_ERR_NOMEM. */
FR_API FR_NODISCARD fr_err fr_attack_guess(const fr_attack *a, uint32_t c, uint32_t g, uint32_t *out, uint32_t *n);

/* Precision, recall and F1 of a guess against the truth (sets of distinct ids). */
typedef struct fr_attack_score {
    uint32_t hits;    /* |guess ∩ truth| */
    double precision; /* hits / |guess| (0 for an empty guess) */
    double recall;    /* hits / |truth| (0 for an empty truth) */
    double f1;        /* 2 hits / (|guess| + |truth|) */
} fr_attack_score;
FR_API void fr_attack_score_sets(const uint32_t *guess, size_t g, const uint32_t *truth, size_t t,
                                 fr_attack_score *out);
/* The expected F1 of guessing g distinct items uniformly at random among n_items against
 * a truth of t items: the hits are hypergeometric with mean g t / n, and F1 = 2 hits /
 * (g + t), so E[F1] = 2 g t / (n (g + t)) exactly. 0 when g + t = 0 or n = 0. */
FR_API double fr_attack_random_f1(uint32_t n_items, uint32_t t, uint32_t g);

#ifdef __cplusplus
}
#endif
#endif
