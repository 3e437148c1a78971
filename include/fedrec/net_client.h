/* fedrec networked client: the library side of a client process (src/runtime/net/
 * client_core.c). A client process holds one client of a federation — a device with one
 * user, or a silo of several — and only that client's data. fr_netc keeps its whole
 * state: its users' interactions, the private rows of its users (and their kept optimizer
 * state), the latest global model it received, and a state file so that a restarted
 * process carries on where it stopped. It moves no bytes itself: the transport gives it
 * the round controller's TASK bytes and sends back the RESULT bytes it returns.
 *
 * The client step is fr_client_step's (the same code as the simulator's clients), and a
 * client's private rows start as fr_model_create gives those users' rows in the
 * simulator's full model, so a federation of fr_netc clients that all take part gives the
 * simulator's model bit for bit (tests/test_netc.c).
 *
 * Thread-safety: one fr_netc is used by one thread at a time; distinct ones are
 * independent. */
#ifndef FEDREC_NET_CLIENT_H
#define FEDREC_NET_CLIENT_H

#include "fedrec/eval.h"
#include "fedrec/fl.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct fr_netc fr_netc;

/* A client `client` holding users[0, n_users) of `data` (global user ids of the
 * federation, in the order of the client's private tables: a silo's partition order),
 * or, with users NULL, every user of data with an interaction, in increasing id order.
 * data holds the client's interactions in the federation's ids (user and item indices
 * are the global ones; fr_dataset_select_users makes one from a whole dataset); it is
 * borrowed and must outlive the client. state_path (copied; may be NULL: no state file)
 * is where fr_netc_save / fr_netc_load keep the client's state. The client is fresh: it
 * joins a federation with its first TASK (or a state file). Errors: FR_ERR_INVALID (a
 * user out of range or given twice), FR_ERR_EMPTY (no interaction among its users),
 * FR_ERR_NOMEM; *out is NULL then. */
FR_API FR_NODISCARD fr_err fr_netc_create(fr_netc **out, const fr_dataset *data, const uint32_t *users,
                                          uint32_t n_users, uint32_t client, const char *state_path);
FR_API void fr_netc_free(fr_netc *c);

/* One round: decodes the TASK (as fr_round_task gives it), checks that it is of the
 * federation this client has joined (the first TASK or a loaded state names it), makes
 * the client's scratch and private rows on first use, runs the client step on its users'
 * data and private state (fr_client_step: local fit, update, RESULT) and returns the
 * RESULT bytes (*result owned by c, valid until the next call with c). On success the
 * new private rows (and kept optimizer state) replace the old ones and the TASK's shared
 * parameters become the latest global model (fr_netc_round gives its round); on failure
 * nothing of the client changes. Errors: those of fr_task_decode, FR_ERR_INVALID (a TASK
 * of another federation, naming both config CRCs; data with items beyond the
 * federation's catalogue), FR_ERR_STATE (a TASK of a round older than the latest one
 * stepped: stale), those of the client step (FR_ERR_RANGE for a diverged fit),
 * FR_ERR_NOMEM. To answer at most once per state, a process saves (fr_netc_save) before
 * sending the RESULT. */
FR_API FR_NODISCARD fr_err fr_netc_step(fr_netc *c, const uint8_t *task, size_t task_n, const uint8_t **result,
                                        size_t *result_n);

/* The side features of the client's own users, for the kinds that read them (lightfm,
 * fm): the TASK carries the item lists and the vocabularies but no user's list (users'
 * features stay on their devices), so a client supplies its own. The features of its
 * j-th user (fr_netc_create's order) are ids[off[j], off[j + 1]) of the federation's user
 * vocabulary (the ids fedrec train's feature set gives them), weights w (NULL: 1);
 * off[0..U] (U = fr_netc_n_users). Copied. Steps and scoring then use them, as the
 * simulator gives each client its users' lists; off NULL removes them. A feature id
 * beyond the vocabulary is refused by the next step (FR_ERR_INVALID). FR_ERR_INVALID for
 * decreasing offsets, FR_ERR_NOMEM. */
FR_API FR_NODISCARD fr_err fr_netc_set_user_features(fr_netc *c, const uint64_t *off, const uint32_t *ids,
                                                     const float *w);

/* Scratch shared by clients that are stepped one at a time on one thread (a load
 * generator's thread, hosting many clients): the TASK last decoded, decoded again only
 * when a client is given other bytes (the clients of one round get the same TASK), and
 * the client step's workspace, as a simulator's worker keeps one for all its clients.
 * Nothing of a client lives in it between steps, so the models are those of
 * fr_netc_step bit for bit. The clients it stepped keep the decoded TASK as their latest
 * global model by reference (read-only, freed with its last client), so a process hosting
 * many clients holds one global model per thread, not per client. Not thread-safe: one
 * scratch per thread; a client stepped on it is not used on another thread meanwhile. */
typedef struct fr_netc_scratch fr_netc_scratch;
FR_API FR_NODISCARD fr_err fr_netc_scratch_create(fr_netc_scratch **out);
FR_API void fr_netc_scratch_free(fr_netc_scratch *s);

/* fr_netc_step with the TASK decoded in, and the workspace of, scratch s: the client
 * keeps no workspace and no decoded TASK of its own between rounds. *result is valid
 * until the next call with s (or c). The same errors. */
FR_API FR_NODISCARD fr_err fr_netc_step_shared(fr_netc *c, fr_netc_scratch *s, const uint8_t *task, size_t task_n,
                                               const uint8_t **result, size_t *result_n);
/* fr_netc_sync with the TASK decoded in scratch s. */
FR_API FR_NODISCARD fr_err fr_netc_sync_shared(fr_netc *c, fr_netc_scratch *s, const uint8_t *task, size_t task_n);

/* Keeps a TASK's global model as the latest one without training: for a client the
 * round did not sample, or the final model a server hands out after its last round
 * (the TASK of the round it would run next). Joins the federation if the client is fresh
 * (its private rows start as in fr_netc_step); the private rows are not touched.
 * Errors as fr_netc_step's before the step (decoding, another federation, stale). */
FR_API FR_NODISCARD fr_err fr_netc_sync(fr_netc *c, const uint8_t *task, size_t task_n);

/* Local evaluation with the latest global model and the client's private rows: test
 * (and negs, may be NULL) hold held-out interactions of the client's users only, in the
 * federation's ids. Rating models give the sums of fr_eval_ratings (predictions clipped
 * as o says; o NULL: the defaults, clipped to the rating range of the client's own
 * training data as fr_model_evaluate does); ranking models those of fr_eval_sampled with
 * negs, else of fr_eval_full over the federation's catalogue without the user's training
 * items. *sums (fr_eval_sums_init'ed here) is what a server adds over its clients
 * (fr_eval_sums_add, then fr_eval_sums_result). Errors: FR_ERR_STATE (no global model
 * yet), FR_ERR_INVALID (test holds a user the client does not, items beyond the
 * catalogue), errors of the metrics and the model, FR_ERR_NOMEM. */
FR_API FR_NODISCARD fr_err fr_netc_evaluate(fr_netc *c, const fr_dataset *test, const fr_negatives *negs,
                                            const fr_eval_opts *o, fr_eval_sums *sums);

/* On-device recommendation: the k best items of the federation's catalogue for the
 * client's user `user` (a global id), scored with the latest global model and that
 * user's private rows, without the items the user has in the client's data; highest
 * score first, ties by smaller item id (fr_eval_topk). items holds k entries, scores (may
 * be NULL) too; *n gets the count (< k when fewer candidates exist). No network.
 * Errors: FR_ERR_STATE (no global model yet), FR_ERR_INVALID (not one of its users, k = 0),
 * FR_ERR_NOMEM. */
FR_API FR_NODISCARD fr_err fr_netc_recommend(fr_netc *c, uint32_t user, size_t k, uint32_t *items, float *scores,
                                             size_t *n);

/* The client's state as bytes (a new buffer freed with fr_msg_free), little-endian:
 *   "FRNETC\0\0" | u32 version = 1 | u32 client | u32 config CRC (0: fresh) | u32 round
 *   | u32 users U | u32 users[U] | u64 private floats P | u32 kept (0/1)
 *   | f32 private rows[P] | if kept: f32 m1[P] | f32 m2[P] | u64 step count
 *   | u64 length L | the latest global model as a TASK message[L] (round, config block,
 *     bound, shared parameters; L = 0: fresh) | u32 CRC-32C of everything before.
 * The private rows are table by table (slab order), user by user (the client's order). */
FR_API FR_NODISCARD fr_err fr_netc_save_bytes(const fr_netc *c, uint8_t **bytes, size_t *n);
/* Restores a state saved by this client (name is used in messages). Every length and
 * count is checked before use. Refused, with c unchanged: FR_ERR_FORMAT (not a client
 * state, truncated, inconsistent), FR_ERR_CHECKSUM (damaged bytes), FR_ERR_VERSION,
 * FR_ERR_INVALID (the state of another client id, of a client holding other users, or,
 * once c has joined a federation, of another federation: naming both config CRCs);
 * FR_ERR_NOMEM. */
FR_API FR_NODISCARD fr_err fr_netc_load_bytes(fr_netc *c, const uint8_t *bytes, size_t n, const char *name);
/* The same with the state file: written to a temporary file beside it, fsync'd and
 * renamed into place; loading a state file that does not exist leaves c as it is and
 * sets *resumed (may be NULL) false (a fresh client), else true. FR_ERR_INVALID if the
 * client has no state path, FR_ERR_IO. */
FR_API FR_NODISCARD fr_err fr_netc_save(const fr_netc *c);
FR_API FR_NODISCARD fr_err fr_netc_load(fr_netc *c, bool *resumed);

/* Accessors. */
/* The items' public popularity (fr_popularity_load: n_items weights > 0), which a
 * federation that hides items with decoys (fr_fl_config.decoys) draws them from, as the
 * simulator does from its training data. Borrowed: it must outlive c. Without it, a step
 * of such a federation fails with FR_ERR_INVALID saying so; other federations ignore it. */
FR_API void fr_netc_set_popularity(fr_netc *c, const double *weights, uint32_t n_items);
FR_API uint32_t fr_netc_client(const fr_netc *c);
FR_API uint32_t fr_netc_n_users(const fr_netc *c);
/* The global id of its j-th user (j < fr_netc_n_users), or UINT32_MAX. */
FR_API uint32_t fr_netc_user(const fr_netc *c, uint32_t j);
/* The round of the latest global model's TASK (0: none yet). */
FR_API uint32_t fr_netc_round(const fr_netc *c);
/* The config CRC of the federation joined (0: none yet). */
FR_API uint32_t fr_netc_config_crc(const fr_netc *c);
/* Whether the federation joined is differentially private (false before the first TASK):
 * such a client reports no evaluation of its own to the server, whose figures the
 * guarantee does not cover. */
FR_API bool fr_netc_dp(const fr_netc *c);
/* The latest global model (its shared prefix; one user row, used as scratch when
 * scoring), or NULL before the first TASK. Owned by c, valid until c changes. */
FR_API const fr_model *fr_netc_model(const fr_netc *c);
/* User `user`'s (global id) row of user table `table` (0-based, slab order among the
 * user tables), or NULL (not one of its users, no such table, not joined yet). */
FR_API const float *fr_netc_private_row(const fr_netc *c, uint32_t user, int table);

#ifdef __cplusplus
}
#endif
#endif
