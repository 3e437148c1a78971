/* fedrec's networked runtime (src/runtime/net): a server process and client processes,
 * each client holding only its own data, over nng on tls+tcp:// (tcp:// only when asked
 * for by name). The server is the round controller (fr_round) behind a socket: it
 * samples among the clients connected, hands out the round's TASK, takes RESULTs until
 * the round's target or its deadline, applies the round or retries it, and saves its
 * state after every round. A client runs the same client step as the simulator
 * (fr_netc). Neither holds learning math of its own, so with every client connected and
 * the same seed the global model is bit-identical to the simulator's.
 *
 * Protocol (src/runtime/net/wire.h): clients start every exchange. HELLO (client id,
 * token) -> WAIT (retry after), TASK (round, deadline, ticket, the controller's TASK
 * bytes) or DONE (the final global model); RESULT (ticket, evaluation sums, the client
 * step's RESULT bytes) -> ACK (accepted, late, refused). A RESULT is taken only with the
 * ticket its TASK carried, so only the client the token named can answer.
 *
 * Differential privacy (the federation's dp_clip > 0): a round samples every client of
 * the federation on its own with probability q (Poisson over all N, fr_round_begin), as
 * the accountant assumes, whether connected or not. A sampled client that is not
 * connected, or does not answer by the deadline, is simply absent: it lowers the round's
 * participation, and the server still divides by q N and adds the full noise. The round
 * closes when every sampled client that was connected at its start (or took its TASK
 * since) has answered, or at the deadline; it is never retried for too few results (that
 * would reveal how many took part). Over-selection and a quorum are refused. Clients of a
 * DP federation report no evaluation of their own.
 *
 * Secure aggregation (c->secagg; the privacy layer's fr_sa_* parties): a round's sampled
 * clients are the session's parties (by position). HELLO -> SA_TASK (the TASK and the
 * session's parameters); the client trains, turns its RESULT into the round's dense vector
 * (every item row, untouched ones 0) and answers SA_UP stage 0 with its public keys; then,
 * polling with HELLO, it gets SA_DOWN stage 1 (its neighbours' keys) and answers its
 * encrypted shares, stage 2 (the shares forwarded to it) and answers its masked vector
 * (with its RESULT's header: loss, examples, flags, weight), stage 3 (the unmasking
 * request) and answers the shares asked for. Each stage closes when every client still in
 * has answered or at its deadline (deadline_ms for the first, which includes training;
 * secagg_stage_ms for the others): a client that misses one has dropped out and the
 * protocol recovers its masks while at least t of its neighbours remain; otherwise the
 * round is retried with nothing applied. The server sees only the sum. Over-selection is
 * refused (every party's masked input counts).
 *
 * Nothing here prints or exits: what happens goes to a log callback as one line per
 * event, without tokens or keys. */
#ifndef FEDREC_NET_H
#define FEDREC_NET_H

#include "fedrec/core.h"
#include "fedrec/fl.h"
#include "fedrec/model.h"
#include "fedrec/net_client.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A line for the operator's log (no newline). level 0: information, 1: warning. Called on
 * any of the server's threads, one call at a time. */
typedef void (*fr_net_log_fn)(void *user, int level, const char *line);

typedef struct fr_net_server_config {
    const char *listen;        /* "tls+tcp://HOST:PORT" (PORT 0: any free port) or
                                  "tcp://HOST:PORT" with insecure */
    bool insecure;             /* allow tcp:// */
    const char *cert, *key;    /* the server's certificate and key (PEM), for tls+tcp */
    const char *client_ca;     /* NULL, or clients must present a certificate of this CA */
    const char *tokens;        /* the token hash file (fedrec tokens); required */
    const char *state;         /* the server state, saved after every round (NULL: none) */
    bool resume;               /* start from `state` */
    uint32_t rounds;           /* rounds in all (a resumed server continues to it) */
    uint32_t min_clients;      /* connected clients a round waits for (0: the round's
                                  target, clients_per_round of all); real ones: an
                                  attack's fakes are added to it */
    double over_select;        /* sample this fraction more than the target (0) */
    uint32_t deadline_ms;      /* a round's deadline (60000) */
    uint32_t retry_ms;         /* how long a WAIT asks a client to wait (250) */
    uint32_t presence_ms;      /* a client counts as connected this long after its last
                                  message (15000) */
    uint32_t linger_ms;        /* after the last round, answer DONE this long, or until
                                  every client that took part has had it (10000) */
    uint32_t max_attempts;     /* short rounds in a row before the server gives up (0:
                                  never) */
    int idle_ms;               /* a connection with no request for this long is closed
                                  (30000) */
    int contexts;              /* requests served at once (64) */
    double target_epsilon;     /* DP: stop before the round whose epsilon would exceed it
                                  (0: none) */
    bool secagg;               /* rounds under secure aggregation (see below) */
    uint32_t secagg_stage_ms;  /* secagg: the deadline of each stage after the keys' (10000);
                                  the keys' stage, which includes training, has deadline_ms */
    uint32_t max_conns;        /* connections open at once; one more is closed as soon as
                                  it has connected, and logged (0: no limit) */
    uint32_t handshake_ms;     /* tls+tcp://: a connection whose TLS handshake has not ended
                                  this long after it was accepted is closed and logged
                                  (15000; 0: no limit, as nng, which never closes a peer
                                  that sends nothing) */
    const struct fr_sim_attack *attack; /* NULL, or a promotion attack (fedrec/runtime.h:
                                  promote, promote-pop) whose fake clients the server runs
                                  itself, as the simulator does: clients n_clients ..
                                  n_clients + n_fake - 1 of its controller, always
                                  connected, their RESULTs added before a round opens to
                                  the real clients. Poisoning real clients (scale,
                                  signflip, noise) is refused: their bytes are their own.
                                  Refused with DP, secure aggregation and uplink
                                  compression, as in the simulator. */
    const double *popularity;  /* promote-pop: the items' public popularity [n_items]
                                  (fr_popularity_load of the shard directory's
                                  popularity.txt); its reference items are the most
                                  popular, as the simulator's from the training counts */
    bool full_downlink;        /* every TASK carries the whole shared model (the broadcast).
                                  false (default): a client that can (it does not evaluate)
                                  gets the TASK without the item tables and fetches the item
                                  rows its step reads (ROWS_REQ), where that tells the server
                                  nothing its RESULT does not: not with secure aggregation,
                                  decoys or a compressed downlink, which always broadcast
                                  (docs/ARCHITECTURE.md, "The downlink") */
} fr_net_server_config;

FR_API void fr_net_server_config_default(fr_net_server_config *c);

/* What a round did, for the status line and --metrics-out. */
typedef struct fr_net_round_info {
    fr_round_stats st;         /* round, results, sampled, loss, bytes (st.round is the
                                  round tried; applied says whether it counted) */
    bool applied;              /* false: short of the quorum, nothing applied, retried */
    uint32_t attempt;          /* 1 on the first try of this round */
    uint32_t connected;        /* clients connected when it began */
    double seconds;            /* wall time from begin to end */
    /* the clients' own evaluation, on the model of the round before (summed) */
    uint32_t eval_users;
    double hit_sum, ndcg_sum;
    uint64_t rated;
    double sq_err_sum;
    /* differential privacy (the federation's dp_clip > 0): the epsilon spent by the rounds
       applied so far (fr_fl_dp_epsilon at its delta; NaN without DP, inf without noise)
       and the round's clip (0 without DP) */
    double epsilon;
    double dp_clip;
    /* secure aggregation: wall seconds of its stages (0: training and the keys' adverts,
       1: key agreement and shares, 2: masked inputs, 3: unmasking and the server's
       recovery of the sum), and the clients whose masked input counted */
    double sa_seconds[4];
    uint32_t sa_survivors;
    double sa_recovery_seconds; /* of sa_seconds[3]: the server's rebuilding of the sum
                                   (fr_sa_server_finish) once the answers are in */
} fr_net_round_info;

/* After every round (applied or not), on the thread that runs the server. Nonzero: stop. */
typedef int (*fr_net_round_fn)(void *user, const fr_net_round_info *info);

typedef struct fr_net_server fr_net_server;

/* Makes the server of a federation of n_clients clients (ids 0..n_clients-1, each with
 * a token in c->tokens) for the model and federation configs, loads its state when
 * resuming, and starts listening (the port is known from then on). Errors name the file
 * or option: FR_ERR_INVALID (configs), FR_ERR_IO, FR_ERR_PARSE (token file), the state's
 * errors (fr_round_load), the transport's. */
FR_API FR_NODISCARD fr_err fr_net_server_create(fr_net_server **out, const fr_net_server_config *c,
                                                const fr_model_config *mcfg, const fr_fl_config *fcfg,
                                                uint32_t n_clients, fr_net_log_fn log, void *log_user);
/* The TCP port it listens on. */
FR_API int fr_net_server_port(const fr_net_server *s);
/* Runs rounds until c->rounds are done or, with c->target_epsilon, the next round would
 * spend more than it (then lingers to answer DONE), a callback asks to stop, fr_net_server_interrupt is called, or a round is short max_attempts times in a
 * row (FR_ERR_EMPTY). */
FR_API FR_NODISCARD fr_err fr_net_server_run(fr_net_server *s, fr_net_round_fn on_round, void *user);
/* Asks a running server to stop after the round in progress (which is abandoned:
 * nothing of it is applied). Async-signal-safe. */
FR_API void fr_net_server_interrupt(fr_net_server *s);
/* Rounds applied so far. */
FR_API uint32_t fr_net_server_completed(const fr_net_server *s);
/* The global model (its shared prefix; user rows are the clients' and stay zero). */
FR_API const fr_model *fr_net_server_model(const fr_net_server *s);
FR_API void fr_net_server_free(fr_net_server *s);

/* ------------------------------------------------------------------ clients */

/* What a client computed in one step (fr_net_client_config.on_compute). */
typedef enum fr_net_step {
    FR_NET_STEP_TRAIN = 0,     /* the TASK: training (and evaluation, state saving, densifying) */
    FR_NET_STEP_SA_KEYS,       /* secure aggregation: its key pairs and their advert */
    FR_NET_STEP_SA_SHARE,      /* key agreement with its neighbours, the encrypted shares */
    FR_NET_STEP_SA_MASK,       /* the masked input */
    FR_NET_STEP_SA_UNMASK      /* the unmasking answer */
} fr_net_step;

typedef struct fr_net_compute {
    uint32_t client, round;
    int thread;                /* the load generator's thread that ran it (0 for one client) */
    fr_net_step step;
    double wall_seconds, cpu_seconds; /* monotonic clock; the thread's CPU clock */
    double end_seconds;        /* CLOCK_MONOTONIC when the step ended (the machine's clock: a
                                  benchmark lines the steps up with the server's stages) */
} fr_net_compute;

typedef struct fr_net_client_config {
    const char *connect;       /* the server's URL */
    bool insecure;             /* allow tcp:// */
    const char *ca;            /* the CA that signed the server's certificate (tls+tcp) */
    const char *server_name;   /* the name its certificate must carry (NULL: the URL's host) */
    const char *cert, *key;    /* own certificate and key, for a server that asks (or NULL) */
    bool save_state;           /* save each client's state (fr_netc_save) after every step,
                                  before its RESULT leaves, and at DONE (true) */
    int timeout_ms;            /* one request's wait for its reply (30000) */
    uint32_t give_up_ms;       /* stop after this long without any reply (300000; 0: never) */
    bool evaluate;             /* report the client's own evaluation with each RESULT (true) */
    uint32_t delay_ms;         /* wait this long after a TASK before training: a slow device,
                                  for tests and load generation (0) */
    uint32_t delay_unmask_ms;  /* secure aggregation: wait this long before answering an
                                  unmasking request (a device that goes away after masking,
                                  for tests; 0) */
    bool drop_unmask;          /* secure aggregation: leave each session after masking without
                                  answering its unmasking request, and go on to the next round
                                  (a device that drops out mid-round and is back for the next:
                                  tests and benchmarks; false) */
    int dial_stall_ms;         /* a connection attempt without any outcome for this long (after
                                  the reconnect backoff) is abandoned for a new one: nng 1.5.2's
                                  dialer can give up for good when a server goes away mid-
                                  handshake. 15000 for one client; many clients dialling one
                                  server at once need more (the load generator uses 120000);
                                  0: never */
    /* Called after each client computation of the load generator (and of one client), on
       the thread that ran it, concurrently from the generator's threads (NULL: none): the
       wall and CPU seconds of one client's step of one round, so a benchmark can tell the
       generator's serial compute from what a round would wait for with each client on its
       own device (the slowest client's). */
    void (*on_compute)(void *user, const fr_net_compute *rec);
    void *compute_user;
    bool long_poll;            /* secure aggregation: ask the server to hold a HELLO that
                                  waits for the next stage until it opens (FRI_NET_CAP_HOLD;
                                  false: poll at the pace the server's WAITs give; a server
                                  that predates it refuses the capability) */
    bool fetch_rows;           /* take a TASK without the item tables where the server offers
                                  one and fetch only the rows the step reads (true); a client
                                  that evaluates never does (its evaluation reads the rows of
                                  its held-out items, which the server must not learn) */
} fr_net_client_config;


FR_API void fr_net_client_config_default(fr_net_client_config *c);

/* What clients did (summed over the clients of a load generator). */
typedef struct fr_net_client_stats {
    uint64_t tasks;            /* TASKs trained on */
    uint64_t results;          /* RESULTs accepted */
    uint64_t late;             /* RESULTs ACKed late or refused */
    uint64_t retries;          /* requests that got no reply and were tried again */
    uint64_t bytes_up, bytes_down;
    double compute_seconds;    /* time in the client step, evaluation and state saving */
    uint32_t rounds_done;      /* the rounds the server had completed when it said DONE */
    /* secure aggregation: sessions finished (unmasking answered), sessions dropped, and
       compute seconds in key agreement (adverts and shares), masking, unmasking */
    uint64_t sa_done, sa_dropped;
    double sa_key_seconds, sa_mask_seconds, sa_unmask_seconds;
} fr_net_client_stats;

/* One client as a client process runs it: its state (fr_netc, holding its training
 * data), its held-out data for its own evaluation (test and negs, may be NULL: it then
 * reports none), its id and its token (a secret). */
typedef struct fr_net_member {
    fr_netc *state;
    const fr_dataset *test;
    const fr_negatives *negs;
    uint32_t id;
    const char *token;
} fr_net_member;

/* Runs one client until the server says DONE (FR_OK; the final model is kept in the
 * client's state and saved), refuses it (FR_ERR_INVALID with the server's reason), or
 * gives no reply for give_up_ms (FR_ERR_IO). */
FR_API FR_NODISCARD fr_err fr_net_client_run(const fr_net_client_config *c, const fr_net_member *m,
                                             fr_net_log_fn log, void *user, fr_net_client_stats *stats);
/* The load generator: n clients on `threads` threads in this process, each with its own
 * connection, as fr_net_client_run runs one. Returns when every client has stopped:
 * FR_OK if all ended with DONE, else the first failure (how many failed is in the
 * message). */
FR_API FR_NODISCARD fr_err fr_net_clients_run(const fr_net_client_config *c, const fr_net_member *m, uint32_t n,
                                              int threads, fr_net_log_fn log, void *user, fr_net_client_stats *total);

#ifdef __cplusplus
}
#endif
#endif
