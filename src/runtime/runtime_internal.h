/* Internals shared by the files of src/runtime. */
#ifndef FEDREC_SRC_RUNTIME_INTERNAL_H
#define FEDREC_SRC_RUNTIME_INTERNAL_H
#include "fedrec/runtime.h"

/* The pool a sim schedules its clients on (a loop driver's pool; s is an fr_sim). */
fr_pool *fri_sim_pool(void *s);
/* Tests: whether a sim with results in memory hands each client's float update straight
 * to its lane (fri_round_accept_update; the default) or makes the fr_result first and
 * accepts that (the reference it is checked against). Returns the previous setting. Not
 * thread-safe: set it before training. */
bool fri_sim_direct_allow(bool allow);
/* fr_sim_checkpoint_load on bytes in memory (name in messages): every length checked
 * against what remains; on failure the sim is unchanged. */
FR_NODISCARD fr_err fri_sim_checkpoint_decode(fr_sim *s, const uint8_t *bytes, size_t n, const char *name);
/* A checkpoint's head: its bytes up to the private rows (0 if bytes is too short to say). */
size_t fri_sim_checkpoint_head_len(const uint8_t *bytes, size_t n);
/* A compact store (fri_sim_create_share) loads a checkpoint's head only (the controller's
 * state, every check of fri_sim_checkpoint_decode): its rows are then the caller's to put
 * (fri_sim_private_row_mut), e.g. sent by the process that read the whole file. */
FR_NODISCARD fr_err fri_sim_checkpoint_decode_head(fr_sim *s, const uint8_t *head, size_t n, const char *name);
float *fri_sim_private_row_mut(fr_sim *s, int t, uint32_t u);

/* A federation run by several processes, each with its own sim of the same config and
 * data: this one runs the sampled clients c with c % n == at, then calls
 * reduce(ctx, controller, its own error) with the round still open; reduce meets every
 * process's sums (fri_round_fold) and returns FR_OK, or an error naming the process that
 * failed (the round then applies nothing). FR_ERR_UNSUPPORTED for what keeps per-client
 * state beyond the private rows (secure aggregation, keep_private_optim, top-k
 * residuals); FR_ERR_INVALID (also: a sim made for another share), FR_ERR_NOMEM. */
typedef fr_err (*fri_sim_reduce)(void *ctx, fr_round *ctl, fr_err local);
FR_NODISCARD fr_err fri_sim_set_share(fr_sim *s, uint32_t at, uint32_t n, fri_sim_reduce reduce, void *ctx);
/* fr_sim_create_silos for share `at` of n (then fri_sim_set_share with the same at, n).
 * With at > 0 and a user each (no partition) the client-state store is compact: only the
 * rows of users u % n == at (its own clients), the whole store never allocated; its model
 * is not the federation's (fri_sim_private_row reads its rows), it loads its rows from
 * checkpoints and refuses to save one (FR_ERR_STATE). Otherwise the whole store. */
FR_NODISCARD fr_err fri_sim_create_share(fr_sim **out, const fr_model_config *mcfg, const fr_fl_config *cfg,
                                         const fr_dataset *train, const fr_partition *part, fr_pool *pool,
                                         uint32_t at, uint32_t n);
/* The data fingerprint the sim's checkpoints carry and check (a process holding only its
 * share of the data takes the whole data's, from the process that holds it). */
void fri_sim_set_fingerprint(fr_sim *s, const fr_fingerprint *fp);
/* owner[u] (n_users of the data): the process (of n) whose sim keeps user u's private
 * rows current: the one running its client (0 for users no client holds). */
void fri_sim_owners(const fr_sim *s, uint32_t n, uint32_t *owner);
/* User u's row of the model's user table t in this sim's store, or NULL when the sim does
 * not keep it (a compact store: another process's user) or t is no user table. */
const float *fri_sim_private_row(const fr_sim *s, int t, uint32_t u);
/* Floats of the sim's client-state store (the private rows it keeps). */
size_t fri_sim_store_floats(const fr_sim *s);
/* The sim's model (fr_sim_model: shared prefix synced, every private row), handed to the
 * caller, who frees it: the sim may then only be freed. The run's result without a copy
 * of the whole store. */
fr_model *fri_sim_take_model(fr_sim *s);

/* The promotion attacks' fake clients (fr_sim_attack, promote and promote-pop), shared by
 * the simulator and the networked server: both run them beside their round controller,
 * as clients n_clients .. n_clients + n_fake - 1 of a controller made with both.
 * fri_attack_fakes: how many fakes a federation of n_clients real ones gets (a share
 * `fraction` of all), checking the target and the reference count against n_items.
 * fri_attack_ref_pop: promote-pop's reference items (a->n_ref into ref): the most
 * popular by pop[n_items] but the target, ties to the smaller id.
 * fri_attack_fake_result: fake c's RESULT of the open round in res (u: scratch float
 * update; scratch: a->n_ref ids; ref_pop: promote-pop's), after taking its TASK. */
FR_NODISCARD fr_err fri_attack_fakes(const fr_sim_attack *a, uint32_t n_clients, uint32_t n_items, uint32_t *n_fake);
FR_NODISCARD fr_err fri_attack_ref_pop(const fr_sim_attack *a, const double *pop, uint32_t n_items, uint32_t *ref);
FR_NODISCARD fr_err fri_attack_fake_result(fr_round *ctl, const fr_sim_attack *a, uint32_t n_fake,
                                           const uint32_t *ref_pop, uint32_t *scratch, uint32_t c, fr_update *u,
                                           fr_result *res);
#endif
