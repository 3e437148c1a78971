/* fedrec runtimes: what carries a federation's bytes and schedules its clients. The round
 * controller and the client (fedrec/fl.h) are the same code in every runtime. */
#ifndef FEDREC_RUNTIME_H
#define FEDREC_RUNTIME_H

#include "fedrec/fl.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ simulation runtime */

/* The `sim` runtime (src/runtime/sim.c): every user of a dataset is a client (or silos
 * of users are, fr_sim_create_silos); clients run
 * on a pool; updates are encoded to bytes and decoded by the server as in a networked
 * federation. It also holds the client-state store: each client's private rows, kept
 * across rounds (the private suffix of a model with one user row per client). */
typedef struct fr_sim fr_sim;

/* mcfg: n_users and n_items are set from train. pool may be NULL (one thread). train
 * must outlive the sim. Errors FR_ERR_INVALID, FR_ERR_EMPTY, FR_ERR_NOMEM. */
FR_NODISCARD fr_err fr_sim_create(fr_sim **out, const fr_model_config *mcfg, const fr_fl_config *cfg,
                                  const fr_dataset *train, fr_pool *pool);
/* The same with clients holding users as `part` says (fr_partition_make: IID or
 * Dirichlet silos, silos by attribute; NULL: one user per client). Client c holds the
 * users of part c and their private rows; a user no client holds never trains. part is
 * copied. FR_ERR_INVALID if a user is out of range or held by two clients. */
FR_NODISCARD fr_err fr_sim_create_silos(fr_sim **out, const fr_model_config *mcfg, const fr_fl_config *cfg,
                                        const fr_dataset *train, const fr_partition *part, fr_pool *pool);
void fr_sim_free(fr_sim *s);
/* Whether updates go through the wire encoding (encode, then decode with the server's
 * shape: default true). false hands the client's update to the server directly and
 * counts fr_update_encoded_size as bytes up: the same model bits, less work at scale. */
void fr_sim_set_wire(fr_sim *s, bool encode);
/* Runs one round (sample, fit, encode, decode, aggregate in client-id order). */
FR_NODISCARD fr_err fr_sim_round(fr_sim *s, fr_round_stats *st);
/* The server inside the sim. */
fr_server *fr_sim_server(fr_sim *s);
/* A model with the global shared parameters and every client's private rows (synced on
 * each call; valid until the next round). For evaluation and the model file. */
fr_model *fr_sim_model(fr_sim *s);
/* Checkpoint: magic "FRCKPT\0\0", version, round, the config, the partition's CRC, the
 * server moments, the model (shared + every client's private rows), the clients' kept
 * optimizer state (keep_private_optim), CRC-32C; written atomically. */
FR_NODISCARD fr_err fr_sim_checkpoint_save(fr_sim *s, const char *path);
/* Loads a checkpoint into a sim created with the same config and data. Errors FR_ERR_IO,
 * FR_ERR_FORMAT, FR_ERR_CHECKSUM (damaged), FR_ERR_INVALID (another config or data). */
FR_NODISCARD fr_err fr_sim_checkpoint_load(fr_sim *s, const char *path);

#ifdef __cplusplus
}
#endif
#endif
