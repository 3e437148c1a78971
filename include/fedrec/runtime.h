/* fedrec runtimes: what carries a federation's bytes and schedules its clients. The round
 * controller and the client (fedrec/fl.h) are the same code in every runtime. */
#ifndef FEDREC_RUNTIME_H
#define FEDREC_RUNTIME_H

#include "fedrec/fl.h"
#include "fedrec/run.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ simulation runtime */

/* The `sim` runtime (src/runtime/sim.c): every user of a dataset is a client (or silos
 * of users are, fr_sim_create_silos). A round is the round controller's (fr_round): it
 * samples the clients and makes the TASK; the clients run fr_client_step on a pool; each
 * RESULT is encoded to bytes and submitted as in a networked federation, so the bytes
 * counted are the real ones. The sim also holds the client-state store: each client's
 * private rows, kept across rounds (the private suffix of a model with one user row per
 * user). */
typedef struct fr_sim fr_sim;

/* mcfg: n_users and n_items are set from train. pool may be NULL (one thread). train
 * must outlive the sim. cfg->confidence_alpha applies when train's ratings are weights
 * (fr_dataset_weighted); on other data the sim runs, and its TASK says, alpha 0. Errors
 * FR_ERR_INVALID, FR_ERR_EMPTY, FR_ERR_NOMEM. */
FR_API FR_NODISCARD fr_err fr_sim_create(fr_sim **out, const fr_model_config *mcfg, const fr_fl_config *cfg,
                                  const fr_dataset *train, fr_pool *pool);
/* The same with clients holding users as `part` says (fr_partition_make: IID or
 * Dirichlet silos, silos by attribute; NULL: one user per client). Client c holds the
 * users of part c and their private rows; a user no client holds never trains. part is
 * copied. FR_ERR_INVALID if a user is out of range or held by two clients. */
FR_API FR_NODISCARD fr_err fr_sim_create_silos(fr_sim **out, const fr_model_config *mcfg, const fr_fl_config *cfg,
                                        const fr_dataset *train, const fr_partition *part, fr_pool *pool);
FR_API void fr_sim_free(fr_sim *s);
/* Whether results go through the wire encoding (encode, then the controller decodes them:
 * default true). false hands each client's result to the controller in memory
 * (fr_round_accept, which counts fr_result_encoded_size as bytes up): the same model
 * bits, less work at scale. */
FR_API void fr_sim_set_wire(fr_sim *s, bool encode);
/* Whether rounds run under secure aggregation (privacy.h; default false): each client's
 * result is made dense over the whole shared prefix (item rows it did not touch carry 0,
 * so which items it touched is hidden too), plus its per-row weights (item_agg rows) and
 * n_k, masked, and only the sum of a round's vectors is seen by the controller. The same
 * model bit for bit as without; 8 bytes per shared parameter up per client. k and t of
 * fr_sa_params_choose(clients, words, 0.1, 40). A round needs at least 2 clients, except
 * under DP (Poisson sampling), where a round of 1 runs without masks and one of 0 is the
 * server's noise alone (the network server does the same). */
FR_API void fr_sim_set_secagg(fr_sim *s, bool on);
/* What an honest-but-curious server would see of each client: fn(ctx, client, bytes, n)
 * gets every RESULT's bytes before the controller takes them (wire mode only; under
 * secure aggregation no per-client result exists and fn is not called). Called from the
 * pool's workers, concurrently: fn must lock what it shares. NULL: none (default). */
typedef void (*fr_sim_observer)(void *ctx, uint32_t client, const uint8_t *bytes, size_t n);
FR_API void fr_sim_set_observer(fr_sim *s, fr_sim_observer fn, void *ctx);
/* Runs one round: begin, every sampled client with data steps on the pool, end. A
 * client's error fails the round ("round R: client C: ..."), which then applies nothing.
 * Errors of fr_round_end (a round below the quorum: FR_ERR_EMPTY). */
FR_API FR_NODISCARD fr_err fr_sim_round(fr_sim *s, fr_round_stats *st);
/* The round controller inside the sim (the server: its model, config, rounds completed). */
FR_API fr_round *fr_sim_controller(fr_sim *s);
/* Clients of the federation (users, or silos). */
FR_API uint32_t fr_sim_n_clients(const fr_sim *s);
/* A model with the global shared parameters and every client's private rows (synced on
 * each call; valid until the next round). For evaluation and the model file. */
FR_API fr_model *fr_sim_model(fr_sim *s);
/* Checkpoint: magic "FRCKPT\0\0", version, the controller's state (fr_round_save: config,
 * round, strategy moments, global parameters), the partition's CRC, every client's
 * private rows and kept optimizer state (keep_private_optim), CRC-32C; written atomically
 * (temporary file, fsync, rename). */
FR_API FR_NODISCARD fr_err fr_sim_checkpoint_save(fr_sim *s, const char *path);
/* Loads a checkpoint into a sim created with the same config and data. Errors FR_ERR_IO,
 * FR_ERR_FORMAT, FR_ERR_CHECKSUM (damaged), FR_ERR_INVALID (another config or data). */
FR_API FR_NODISCARD fr_err fr_sim_checkpoint_load(fr_sim *s, const char *path);

/* ------------------------------------------------------------------ simulated attacks */

/* Malicious clients in the simulator (fr_sim_set_attack). FRACTION is their share of all
 * the clients of the federation (malicious / (honest + malicious)).
 *   - Item promotion (promote, promote-pop): FAKE users added to the federation, client
 *     ids n_users .. n_users + n_fake - 1, n_fake = round(FRACTION * n_users / (1 -
 *     FRACTION)). They hold no data and are never evaluated. Each round a sampled fake
 *     sends, for the target item's row of every item table and nothing else (dense Δ 0),
 *     Δ = (BOOST * c - w_target) / m, c the mean of the reference items' rows in the
 *     global model it was sent, m the fakes expected in a round (n_fake * the round's
 *     target / all clients, at least 1): together they steer the target's rows to BOOST
 *     times the reference centroid. In the style of PipAttack (its popularity alignment, with
 *     knowledge of popular items) and FedRecAttack (steering the target towards items
 *     users already rank high). promote-pop: the REF most popular items of the training
 *     data (public popularity, ties to the smaller id, the target left out); promote: no
 *     knowledge, REF items drawn uniformly per (round, fake). Weight n_k = REF + 1 (a
 *     fake user's "interactions": the target and its reference items), loss 0.
 *   - Model poisoning (scale, signflip, noise): a share of the EXISTING clients
 *     (round(FRACTION * clients), drawn once from the seed) is compromised: it trains
 *     honestly, then sends its update scaled by FACTOR (scale), negated (signflip), or
 *     replaced by Gaussian noise of std SIGMA on the same coordinates (noise: n_k * N(0,
 *     SIGMA^2) for each value its honest update carried, weighted as the update is).
 *     Values saturate at the round's bound (fr_fl_fixed_bound), which a smart attacker
 *     respects so that the server takes its result.
 * A malicious client draws from (seed, round, client, FR_PURPOSE_ATTACK); who is
 * malicious from (seed, 0, 0, FR_PURPOSE_ATTACK): the same for any thread count. */
typedef enum fr_attack_kind {
    FR_ATTACK_NONE = 0,
    FR_ATTACK_PROMOTE,      /* promote:ITEM:FRACTION[:BOOST[:REF]] */
    FR_ATTACK_PROMOTE_POP,  /* promote-pop:ITEM:FRACTION[:BOOST[:REF]] */
    FR_ATTACK_SCALE,        /* scale:FACTOR:FRACTION */
    FR_ATTACK_SIGNFLIP,     /* signflip:FRACTION */
    FR_ATTACK_NOISE,        /* noise:SIGMA:FRACTION */
} fr_attack_kind;

typedef struct fr_sim_attack {
    fr_attack_kind kind;
    double fraction;        /* (0, 0.5]: the malicious share of the clients */
    uint32_t target;        /* promotion: the dense item id to promote */
    double factor;          /* scale: FACTOR; noise: SIGMA; promotion: BOOST (default 1) */
    uint32_t n_ref;         /* promotion: reference items REF (default 20) */
} fr_sim_attack;

/* Parses an attack spec (the forms above; numbers in C locale). On error FR_ERR_INVALID
 * with a message naming the part, its value and what was expected; *out is then NONE. */
FR_API FR_NODISCARD fr_err fr_sim_attack_parse(const char *spec, fr_sim_attack *out);
/* Whether the attack names a target item (promotion: er@K is then measured). */
FR_API bool fr_sim_attack_has_target(const fr_sim_attack *a);
/* Makes clients malicious as a says (kind NONE: none). Before the first round only (a
 * fresh sim, or right after creating it: a checkpoint is loaded after); a promotion adds
 * its fake clients to the controller (fr_sim_controller changes: take it again). Refused
 * (FR_ERR_INVALID): silos (a partition), secure aggregation's absence is not required but
 * DP and uplink compression are refused (their clip and codec would be the attack's
 * first defence; not simulated), a target beyond the catalogue, a fraction outside (0,
 * 0.5]. */
FR_API FR_NODISCARD fr_err fr_sim_set_attack(fr_sim *s, const fr_sim_attack *a);
/* Whether client c is malicious (fake or compromised), and how many fakes were added. */
FR_API bool fr_sim_is_malicious(const fr_sim *s, uint32_t c);
FR_API uint32_t fr_sim_n_fake(const fr_sim *s);

/* ------------------------------------------------------------------ simulated faults */

/* Faults in the simulator (fr_sim_set_faults), all drawn from (seed, round, client,
 * FR_PURPOSE_FAULT) with the round's attempt folded into the round word, so a retried
 * round draws anew and any thread count gives the same run:
 *   - crash_rate: a sampled client crashes mid-fit with this probability: it got the TASK
 *     (counted down), its result never arrives, its private state is not updated.
 *   - Simulated time (when deadline > 0 or stragglers are on): a client's time is
 *     compute (its training examples * sec_per_example * u, u uniform in [1, 1.5), times
 *     straggler_slowdown for a straggler, drawn with straggler_rate) plus network
 *     (2 * latency + (TASK bytes + RESULT bytes) / bandwidth). Results arrive in order of
 *     time (ties: smaller client id); the round takes them until it has its target
 *     (fr_round_target: with over_select it samples ceil((1 + o) * want) and takes the
 *     first want, as the network server does) and never one after the deadline.
 *   - A round with fewer results than max(1, the quorum min_results) is aborted (nothing
 *     applied) and retried with the same number and sample, up to max_attempts times
 *     (then FR_ERR_EMPTY). A client that ran in a failed attempt keeps its updated
 *     private rows (as a networked client would). */
typedef struct fr_sim_faults {
    double crash_rate;          /* [0, 1) */
    double straggler_rate;      /* [0, 1]: share of a round's clients that are slow */
    double straggler_slowdown;  /* >= 1: their compute time's factor (default 10) */
    double sec_per_example;     /* > 0: compute seconds per training example (default 1e-3) */
    double bandwidth;           /* > 0: bytes per second each way (default 1e6) */
    double latency;             /* >= 0: seconds each way (default 0.05) */
    double deadline;            /* >= 0: simulated seconds a round waits (0: none) */
    double over_select;         /* >= 0: over-selection (0: none) */
    uint32_t max_attempts;      /* >= 1: tries of a round (default 10) */
} fr_sim_faults;

FR_API void fr_sim_faults_default(fr_sim_faults *f);
FR_API FR_NODISCARD fr_err fr_sim_faults_check(const fr_sim_faults *f);
/* Whether f asks for any fault (a crash rate, stragglers, a deadline or over-selection). */
FR_API bool fr_sim_faults_on(const fr_sim_faults *f);
/* Sets the faults (copied; checked). Refused with secure aggregation (FR_ERR_INVALID),
 * with over-selection under DP. */
FR_API FR_NODISCARD fr_err fr_sim_set_faults(fr_sim *s, const fr_sim_faults *f);
/* What the faults did in the last fr_sim_round: per attempt the clients that crashed, the
 * results dropped as late (deadline or the target reached), and the attempts taken; the
 * simulated seconds of the applied attempt (the last arrival it took, or the deadline). */
typedef struct fr_sim_fault_stats {
    uint32_t attempts, crashed, late;
    double sim_seconds;
} fr_sim_fault_stats;
FR_API void fr_sim_fault_stats_get(const fr_sim *s, fr_sim_fault_stats *out);
/* The clients whose results the last attempt of the last round took (increasing ids),
 * into out[cap]; returns how many (for tests). */
FR_API uint32_t fr_sim_last_taken(const fr_sim *s, uint32_t *out, uint32_t cap);

/* The sim as a training-loop driver (fr_loop_run with ctx = the sim): a step is
 * fr_sim_round, the model is fr_sim_model, save/load are the checkpoint functions. */
FR_API void fr_sim_driver(fr_loop_driver *d);

/* ------------------------------------------------------------------ a whole run */

/* Runs a training run of c on (train, test, negs) — the one call the CLI and Python
 * make: federated on the `sim` runtime (clients as c->partition says) or centralized
 * (fr_trainer), through fr_loop_run with c->loop (evaluation, checkpoints, resume, the
 * callback cb with user, stop conditions). The model's n_users and n_items come from the
 * data (centralized: train and test together). *model (may be NULL) gets the final model
 * (the global shared parameters and every user's private rows; free it with
 * fr_model_free); summary (may be NULL) what the loop did. Errors of the configs
 * (FR_ERR_INVALID), the partition, the loop and its driver; FR_ERR_INVALID for a rating
 * model (mf) on implicit training data (fr_dataset_implicit: its ratings are 1s or
 * weights, not ratings). */
FR_API FR_NODISCARD fr_err fr_run(const fr_run_config *c, const fr_dataset *train, const fr_dataset *test,
                           const fr_negatives *negs, fr_loop_callback cb, void *user, fr_loop_summary *summary,
                           fr_model **model);

/* ------------------------------------------------------------------ MPI runtime */

/* The `mpi` runtime (src/runtime/mpi): one federation run by the ranks of an Open MPI job
 * (`mpirun -np N fedrec train --runtime mpi ...`). Built when CMake finds Open MPI; in a
 * build without it, fr_mpi_available is false and the functions below return
 * FR_ERR_UNSUPPORTED saying so. */
FR_API bool fr_mpi_available(void);
/* Initialises MPI (once per process; MPI_THREAD_FUNNELED) and gives this process's rank
 * and the number of ranks (either may be NULL). FR_ERR_UNSUPPORTED (no MPI in this
 * build), FR_ERR_IO (MPI_Init failed). */
FR_API FR_NODISCARD fr_err fr_mpi_init(int *rank, int *size);
/* Finalizes MPI if it was initialised. */
FR_API void fr_mpi_finalize(void);
/* Ends every rank of the job with `code` (MPI_Abort): for a front end whose ranks can no
 * longer agree (one failed before the run began). Does nothing without MPI. */
FR_API void fr_mpi_abort(int code);

/* This rank's share of the training data of fr_run_mpi with config c (after fr_mpi_init):
 * the interactions of the users whose clients the rank runs (user u with u % N == r: one
 * user a client), every other user empty, in train's id space (fr_dataset_select_users),
 * so a rank's data takes about 1/N of the whole. The caller may then free train and give
 * fr_run_mpi the share. *out is NULL (keep train) where a rank needs all of it: rank 0 (it
 * evaluates, which reads every user's training items, and it names the data in
 * checkpoints: every rank takes rank 0's fingerprint), a job of one rank, silos (their
 * partition is made from all the data), decoys (their popularity counts every
 * interaction), centralized training. FR_ERR_NOMEM; FR_ERR_UNSUPPORTED without MPI. */
FR_API FR_NODISCARD fr_err fr_mpi_shard(const fr_run_config *c, const fr_dataset *train, fr_dataset **out);

/* What the ranks exchanged (fr_run_mpi). */
typedef struct fr_mpi_stats {
    uint32_t ranks;
    uint64_t rounds;          /* rounds reduced */
    uint64_t dense_rounds;    /* of them, reduced over the whole shared prefix */
    uint64_t words_reduced;   /* 64-bit words of sums reduced (each rank's contribution) */
    uint64_t gather_failures; /* private-row gathers that failed (out of memory on a rank) */
} fr_mpi_stats;

/* fr_run's federated run with its clients spread over the ranks of MPI_COMM_WORLD: every
 * rank calls it with the same config and data (after fr_mpi_init; a rank > 0 may pass its
 * share of the training data, fr_mpi_shard, instead). Rank r runs the sampled
 * clients c with c % N == r and keeps their private rows; the integer sums of a round are
 * reduced across ranks (sparse: only item rows some rank touched travel) and every rank
 * applies the same round: the global model is bit-identical to fr_run's (the sim runtime)
 * with the same config and seed, for any N. Rank 0 runs the loop (evaluation, cb,
 * checkpoints, resume) and gets *model and *summary; the other ranks return FR_OK with
 * *model NULL once rank 0 is done. A failure on any rank ends the round with "round R:
 * rank N: ..." on rank 0. stats (may be NULL): what was reduced. Errors of fr_run;
 * FR_ERR_UNSUPPORTED for differential privacy, secure aggregation, keep_private_optim
 * and top-k compression (per-client state one process keeps), and in a build without
 * MPI; FR_ERR_STATE before fr_mpi_init. */
FR_API FR_NODISCARD fr_err fr_run_mpi(const fr_run_config *c, const fr_dataset *train, const fr_dataset *test,
                                      const fr_negatives *negs, fr_loop_callback cb, void *user,
                                      fr_loop_summary *summary, fr_model **model, fr_mpi_stats *stats);

#ifdef __cplusplus
}
#endif
#endif
