/* The `sim` runtime: a federation in one process. Every user of the training set is a
 * client (or a partition groups users into silos: client c holds the users of part c).
 * Each round the round controller (fr_round) samples the clients and makes the TASK; the
 * clients run on an fr_pool, each worker decoding the round's TASK once into its own
 * fr_task and stepping its clients with its own scratch (fr_client_step); each RESULT is
 * encoded to bytes and submitted to the controller, exactly as a networked client would
 * send it, so the bytes counted are the real ones.
 *
 * Invariants:
 *   - The runtime holds no learning math: sampling, the TASK, aggregation and the
 *     strategies are the controller's, the local fit and quantization the client step's.
 *     It schedules clients, passes bytes in memory and keeps the clients' private state.
 *   - The client-state store is the private suffix of `full` (one row per user; with
 *     keep_private_optim also the moments of those rows, same layout, and a step count
 *     per client): a user's rows are handed only to the step of the client holding it
 *     (a partition holds each user at most once, checked); the shared prefix of `full`
 *     is synced from the controller only when someone asks for the model.
 *   - A compact store (fri_sim_create_share, a process > 0 of several, a user each): `full`
 *     holds only the rows of its users u % priv_n == priv_at, user u at row u / priv_n,
 *     each initialised as the whole store would hold it (one RNG stream per global user,
 *     fri_model_user_row_init); such a sim's model is not the federation's (its owner,
 *     process 0, gathers the rows) and it does not save checkpoints, it only loads its
 *     rows from them.
 *   - A client without interactions is not sent a TASK and sends nothing. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/core.h"
#include "fedrec/privacy.h"
#include "fedrec/runtime.h"
#include "fl/fl_internal.h"
#include "model/model_internal.h"
#include "runtime/runtime_internal.h"

typedef struct sim_worker {
    fr_client_ws *ws;       /* client scratch */
    fr_task *task;          /* the round's TASK, decoded by this worker */
    uint64_t task_epoch;    /* the sim epoch it was decoded in (0: none) */
    fr_result *res;         /* what the client sends, in memory (wire off) */
    fr_client_user *users;  /* [cap_users] a silo's users */
    float **rows;           /* [3 * n_user_t * cap_users] rows, m1, m2 pointers of a step */
    uint32_t cap_users;
    uint32_t at;            /* the position of its current client in the round */
    uint32_t pos;           /* its index in the controller's sampled list (a share's `at`
                               is in its own list) */
    char apart[64];         /* written at every client: no cache line shared with the next worker's */
} sim_worker;

/* Secure aggregation of a round (fr_sim_set_secagg): the privacy layer's server and one
 * party per sampled client (by position), each client's forwarded shares, and per worker
 * a dense vector. */
typedef struct sim_secagg {
    fr_sa_server *server;
    fr_sa_client **clients; /* [k] */
    uint8_t **fwd;          /* [k] the server's forwarded shares for each */
    size_t *fwd_n;
    uint32_t k;
    int64_t *dense;         /* [n_workers * len] */
    size_t len;
    pthread_mutex_t lock;   /* the server takes one masked input at a time */
} sim_secagg;

struct fr_sim {
    fr_fl_config cfg;       /* federation settings */
    fr_model_config mcfg;   /* n_users = users of the data */
    const fr_dataset *train;/* every client's data (each step gets only its slice) */
    fr_pool *pool;          /* schedules clients */
    fr_pool *own_pool;      /* created when none was given */
    fr_round *ctl;          /* the server */
    fr_model *full;         /* shared prefix (synced on demand) + the client-state store */
    uint32_t n_clients;
    uint64_t *part_ptr;     /* [n_clients + 1] silos: offsets into part_users, or NULL (a user each) */
    uint32_t *part_users;   /* silos: their users */
    uint32_t part_crc;      /* CRC-32C of the partition (checkpoints must match it) */
    fr_fingerprint data_fp; /* the training data's (checkpoints must match it) */
    float *km1, *km2;       /* keep_private_optim: moments of the private suffix of full */
    uint64_t *ksteps;       /* [n_clients] their step counts */
    float *resid;           /* top-k compression: [n_clients * dense values] each client's
                               error-feedback residual, or NULL */
    size_t resid_len;       /* dense values per client */
    size_t n_priv;          /* floats of full's private suffix */
    size_t n_priv_all;      /* floats of the whole store's (checkpoints hold these) */
    uint32_t priv_at, priv_n; /* compact store: users u % priv_n == priv_at, at row u / priv_n
                                 (priv_n 0: every user, at row u) */
    int n_workers;
    sim_worker *w;          /* [n_workers] */
    const uint32_t *ids;    /* this round's clients (the controller's) */
    size_t n_ids;           /* how many */
    size_t grain;           /* the client loop's chunk (client_grain) */
    uint64_t epoch;         /* rounds begun by this sim: names the TASK workers hold */
    fri_latch err;          /* the first failure of a round */
    bool wire;              /* encode + submit bytes (default), else accept in memory */
    bool secagg;            /* dense results under secure aggregation (fr_sim_set_secagg) */
    sim_secagg *sa;         /* the open round's, under secagg */
    fr_sim_observer observe;/* sees every RESULT's bytes (fr_sim_set_observer), or NULL */
    void *observe_ctx;
    int user_t[FR_MODEL_MAX_TENSORS]; /* user tables of full, slab order */
    int n_user_t;
    /* a share of a federation run by several processes (fri_sim_set_share): this one runs
     * the sampled clients c with c % share_n == share_at, then `reduce` meets the sums */
    uint32_t share_at, share_n;
    fri_sim_reduce reduce;
    void *reduce_ctx;
    uint32_t *mine;         /* [its clients c % share_n == share_at] this share's clients of the round */
    uint32_t *mine_pos;     /* [the same] their indices in the controller's list */
    /* simulated attacks (fr_sim_set_attack) */
    fr_sim_attack atk;      /* kind NONE: none */
    uint32_t n_fake;        /* promotion: fake clients n_clients .. n_clients + n_fake - 1 */
    uint8_t *bad;           /* [n_clients] model poisoning: compromised, or NULL */
    uint32_t *ref_pop;      /* promote-pop: [atk.n_ref] the reference items */
    fr_update **fupd;       /* [n_workers] a malicious client's float update */
    uint32_t **fref;        /* [n_workers] promote: its drawn reference items */
    /* simulated faults (fr_sim_set_faults) */
    fr_sim_faults flt;
    bool faults;            /* any fault on: results are held and delivered in simulated time */
    uint32_t *all_ids;      /* over-selection: 0 .. n_total - 1 */
    uint8_t **slot;         /* [n_total] per position: the RESULT's bytes held */
    size_t *slot_n, *slot_cap;
    uint32_t n_slot;        /* positions slot holds */
    uint64_t *slot_work;    /* per position: its interactions * local epochs */
    uint8_t *slot_state;    /* per position: 0 nothing, 1 crashed, 2 a result held */
    uint32_t attempt;       /* the open round's attempt, 0-based */
    fr_sim_fault_stats fst; /* the last round's */
    uint32_t *taken;        /* [n_total] the last attempt's accepted clients */
    uint32_t n_taken;
};

void fr_sim_free(fr_sim *s) {
    if (!s) return;
    if (s->w)
        for (int i = 0; i < s->n_workers; i++) {
            fr_client_ws_free(s->w[i].ws);
            fr_task_free(s->w[i].task);
            fr_result_free(s->w[i].res);
            fri_free(s->w[i].users);
            fri_free(s->w[i].rows);
        }
    fri_free(s->w);
    fr_round_free(s->ctl);
    fr_model_free(s->full);
    fr_pool_free(s->own_pool);
    fri_free(s->part_ptr);
    fri_free(s->part_users);
    fri_free(s->km1);
    fri_free(s->km2);
    fri_free(s->ksteps);
    fri_free(s->resid);
    fri_free(s->mine);
    fri_free(s->mine_pos);
    fri_free(s->bad);
    fri_free(s->ref_pop);
    for (int i = 0; s->fupd && i < s->n_workers; i++) fr_update_free(s->fupd[i]);
    fri_free(s->fupd);
    for (int i = 0; s->fref && i < s->n_workers; i++) fri_free(s->fref[i]);
    fri_free(s->fref);
    fri_free(s->all_ids);
    for (uint32_t i = 0; s->slot && i < s->n_slot; i++) fri_free(s->slot[i]);
    fri_free(s->slot);
    fri_free(s->slot_n);
    fri_free(s->slot_cap);
    fri_free(s->slot_work);
    fri_free(s->slot_state);
    fri_free(s->taken);
    fri_free(s);
}

fr_err fr_sim_create(fr_sim **out, const fr_model_config *mcfg, const fr_fl_config *cfg, const fr_dataset *train,
                     fr_pool *pool) {
    return fr_sim_create_silos(out, mcfg, cfg, train, NULL, pool);
}

/* Copies a partition after checking it: users in range, each held at most once. */
static fr_err take_partition(fr_sim *s, const fr_partition *p) {
    uint32_t nu = fr_dataset_n_users(s->train);
    if (p->n_clients == 0) return fri_fail(FR_ERR_INVALID, "federated training: the partition has no client");
    uint64_t n = p->ptr[p->n_clients];
    if (p->ptr[0] != 0 || n > nu)
        return fri_fail(FR_ERR_INVALID, "federated training: the partition holds %llu users, the data %u",
                        (unsigned long long)n, nu);
    s->part_ptr = fri_malloc(((size_t)p->n_clients + 1) * sizeof *s->part_ptr);
    s->part_users = fri_malloc((n ? n : 1) * sizeof *s->part_users);
    uint8_t *seen = fri_calloc(nu, 1);
    fr_err e = FR_OK;
    if (!s->part_ptr || !s->part_users || !seen) e = FR_ERR_NOMEM;
    for (uint32_t c = 0; !e && c < p->n_clients; c++) {
        if (p->ptr[c + 1] < p->ptr[c]) {
            e = fri_fail(FR_ERR_INVALID, "federated training: partition offsets decrease at client %u", c);
            break;
        }
        for (uint64_t k = p->ptr[c]; k < p->ptr[c + 1]; k++) {
            uint32_t u = p->users[k];
            if (u >= nu || seen[u]) {
                e = fri_fail(FR_ERR_INVALID, "federated training: partition client %u holds user %u, which is %s", c,
                             u, u >= nu ? "out of range" : "held by another client too");
                break;
            }
            seen[u] = 1;
        }
    }
    fri_free(seen);
    if (e) return e;
    memcpy(s->part_ptr, p->ptr, ((size_t)p->n_clients + 1) * sizeof *s->part_ptr);
    memcpy(s->part_users, p->users, n * sizeof *s->part_users);
    s->n_clients = p->n_clients;
    s->part_crc = fr_crc32c(fr_crc32c(0, s->part_ptr, ((size_t)p->n_clients + 1) * sizeof *s->part_ptr),
                            s->part_users, n * sizeof *s->part_users);
    return FR_OK;
}

/* The client-state store: `full` with every user's rows, or (priv_n set) only those of
 * users u % priv_n == priv_at, at row u / priv_n: the shared prefix does not depend on the
 * users (the controller's model has one), and each row starts from its global user's
 * stream, as the whole store's would. The whole store is never made first. */
static fr_err make_store(fr_sim *s) {
    if (!s->priv_n) return fr_model_create(&s->full, &s->mcfg);
    uint32_t nu = s->mcfg.n_users, at = s->priv_at, n = s->priv_n, own = at < nu ? (nu - at + n - 1) / n : 0;
    fr_model_config mc = s->mcfg;
    mc.n_users = own ? own : 1; /* a model has a user; a process without one keeps a row it never uses */
    fr_err e = fr_model_create(&s->full, &mc);
    if (e) return e;
    float *p = fr_model_params(s->full);
    for (int t = 0; t < fr_model_n_tensors(s->full); t++) {
        const fr_tensor *tt = fr_model_tensor(s->full, t);
        if (tt->kind != FR_TENSOR_USER_TABLE) continue;
        for (uint32_t j = 0; j < mc.n_users; j++)
            fri_model_user_row_init(s->full, t, at + j * n, p + tt->offset + (size_t)j * tt->cols);
    }
    return FR_OK;
}

static fr_err sim_create(fr_sim **out, const fr_model_config *mcfg, const fr_fl_config *cfg, const fr_dataset *train,
                         const fr_partition *part, fr_pool *pool, uint32_t share_at, uint32_t share_n);

fr_err fr_sim_create_silos(fr_sim **out, const fr_model_config *mcfg, const fr_fl_config *cfg, const fr_dataset *train,
                           const fr_partition *part, fr_pool *pool) {
    return sim_create(out, mcfg, cfg, train, part, pool, 0, 1);
}

fr_err fri_sim_create_share(fr_sim **out, const fr_model_config *mcfg, const fr_fl_config *cfg,
                            const fr_dataset *train, const fr_partition *part, fr_pool *pool, uint32_t at, uint32_t n) {
    if (n == 0 || at >= n) return fri_fail(FR_ERR_INVALID, "share %u of %u", at, n);
    return sim_create(out, mcfg, cfg, train, part, pool, at, n);
}

static fr_err sim_create(fr_sim **out, const fr_model_config *mcfg, const fr_fl_config *cfg, const fr_dataset *train,
                         const fr_partition *part, fr_pool *pool, uint32_t share_at, uint32_t share_n) {
    *out = NULL;
    if (!train || fr_dataset_n_users(train) == 0 || fr_dataset_n_items(train) == 0)
        return fri_fail(FR_ERR_EMPTY, "federated training: the training set has no user or no item");
    fr_sim *s = fri_calloc(1, sizeof *s);
    if (!s) return FR_ERR_NOMEM;
    s->cfg = *cfg;
    /* confidence weights need ratings that are weights: data without them trains (and its
     * TASK says so) with alpha 0, every positive alike, as the centralized trainer does */
    if (!fr_dataset_weighted(train)) s->cfg.confidence_alpha = 0;
    cfg = &s->cfg;
    s->mcfg = *mcfg;
    s->mcfg.n_users = fr_dataset_n_users(train);
    s->mcfg.n_items = fr_dataset_n_items(train);
    s->mcfg.seed = cfg->seed;
    s->train = train;
    s->wire = true;
    s->n_clients = s->mcfg.n_users;
    fr_dataset_fingerprint(train, &s->data_fp);
    fri_latch_reset(&s->err);
    fr_err e = FR_OK;
    if (part) e = take_partition(s, part);
    if (e) goto fail;
    if (share_at > 0 && !s->part_ptr) { /* a compact store (silos: fri_sim_owners, the whole store) */
        s->priv_at = share_at;
        s->priv_n = share_n;
    }
    if (!pool) { e = fr_pool_create(&s->own_pool, 1); pool = s->own_pool; }
    if (e) goto fail;
    s->pool = pool;
    s->n_workers = fr_pool_size(pool);
    e = fr_round_create(&s->ctl, &s->mcfg, cfg, s->n_clients, s->n_workers);
    if (!e) fr_round_set_pool(s->ctl, pool); /* the DP noise's chunks (idle at the round's end) */
    if (!e) e = make_store(s);
    if (e) goto fail;
    if (fr_model_needs_graph(s->full)) { /* the global model is scored through the training graph */
        fr_model_graph g = fr_model_graph_dataset(train);
        fr_model_set_graph(s->full, &g);
    }
    s->w = fri_calloc((size_t)s->n_workers, sizeof *s->w);
    e = FR_ERR_NOMEM;
    if (!s->w) goto fail;
    for (int i = 0; i < s->n_workers; i++) {
        e = fr_client_ws_create(&s->w[i].ws, &s->mcfg, cfg);
        if (!e) e = fr_task_create(&s->w[i].task);
        if (!e) e = fr_result_create(&s->w[i].res);
        if (e) goto fail;
    }
    if (cfg->decoys > 0 || cfg->neg_sampler == FR_NEG_POPULARITY) {
        /* the public popularity decoys and popularity negatives follow: training
         * interactions + 1 per item (the centralized trainer's, fri_item_popularity) */
        uint32_t ni = s->mcfg.n_items;
        double *pop = fri_malloc((size_t)(ni ? ni : 1) * sizeof *pop);
        e = FR_ERR_NOMEM;
        if (!pop) goto fail;
        for (uint32_t i = 0; i < ni; i++) pop[i] = 1;
        for (uint32_t u = 0; u < fr_dataset_n_users(train); u++) {
            const uint32_t *it;
            size_t n = fr_dataset_user(train, u, &it, NULL, NULL);
            for (size_t j = 0; j < n; j++) pop[it[j]] += 1;
        }
        e = FR_OK;
        for (int i = 0; i < s->n_workers && !e; i++) e = fr_client_ws_set_popularity(s->w[i].ws, pop, ni);
        fri_free(pop);
        if (e) goto fail;
    }
    for (int t = 0; t < fr_model_n_tensors(s->full); t++)
        if (fr_model_tensor(s->full, t)->kind == FR_TENSOR_USER_TABLE) s->user_t[s->n_user_t++] = t;
    s->n_priv = s->n_priv_all = fr_model_n_params(s->full) - fr_model_n_shared(s->full);
    if (s->priv_n) { /* a compact store: the whole one's size, which checkpoints hold */
        s->n_priv_all = 0;
        for (int i = 0; i < s->n_user_t; i++)
            s->n_priv_all += (size_t)s->mcfg.n_users * fr_model_tensor(s->full, s->user_t[i])->cols;
    }
    if (cfg->keep_private_optim) {
        s->km1 = fri_calloc(s->n_priv ? s->n_priv : 1, sizeof *s->km1);
        s->km2 = fri_calloc(s->n_priv ? s->n_priv : 1, sizeof *s->km2);
        s->ksteps = fri_calloc(s->n_clients ? s->n_clients : 1, sizeof *s->ksteps);
        e = FR_ERR_NOMEM;
        if (!s->km1 || !s->km2 || !s->ksteps) goto fail;
    }
    if (cfg->compress_topk) { /* error feedback: a residual per client, zero at first */
        s->resid_len = fr_round_shape(s->ctl)->dense_len;
        e = FR_ERR_NOMEM;
        if (!(s->resid = fri_calloc((size_t)s->n_clients * s->resid_len + 1, sizeof *s->resid))) goto fail;
    }
    *out = s;
    return FR_OK;
fail:
    fr_sim_free(s);
    return e;
}

fr_round *fr_sim_controller(fr_sim *s) { return s->ctl; }
void fr_sim_set_wire(fr_sim *s, bool encode) { s->wire = encode; }
void fr_sim_set_observer(fr_sim *s, fr_sim_observer fn, void *ctx) {
    s->observe = fn;
    s->observe_ctx = ctx;
}
void fr_sim_set_secagg(fr_sim *s, bool on) { s->secagg = on; }
uint32_t fr_sim_n_clients(const fr_sim *s) { return s->n_clients; }
fr_pool *fri_sim_pool(void *s) { return ((fr_sim *)s)->pool; }

fr_model *fr_sim_model(fr_sim *s) {
    fr_model_set_shared(s->full, fr_model_params_const(fr_round_model(s->ctl)));
    return s->full;
}

/* Room for a silo of u users in a worker's per-fit arrays. */
static fr_err worker_users(sim_worker *w, int n_user_t, uint32_t u) {
    if (u <= w->cap_users) return FR_OK;
    fr_client_user *us = fri_realloc(w->users, (size_t)u * sizeof *us);
    if (!us) return FR_ERR_NOMEM;
    w->users = us;
    float **r = fri_realloc(w->rows, 3 * (size_t)(n_user_t ? n_user_t : 1) * u * sizeof *r);
    if (!r) return FR_ERR_NOMEM;
    w->rows = r;
    w->cap_users = u;
    return FR_OK;
}

/* ------------------------------------------------------------------ secure aggregation */
/* Under secagg a round runs the privacy layer's protocol around the clients' steps: key
 * advertisement and share exchange before (one party per sampled client, in position
 * order), then each client's result densified (fri_round_accept_dense: every item row,
 * untouched ones 0, so the server cannot tell which items it touched), masked on its
 * worker and summed by the server, then the unmasking answers and the sum handed to the
 * controller. The controller never sees one client's sums; the model is the plain
 * round's, bit for bit. Bytes up count the masked input (8 bytes per word). A sampled
 * client without data sends no masked input, a dropout after ShareKeys: the protocol
 * rebuilds its pairwise masks. A client's error fails the round, as without secagg. */

static void secagg_free(sim_secagg *a) {
    if (!a) return;
    for (uint32_t i = 0; i < a->k; i++) {
        if (a->clients) fr_sa_client_free(a->clients[i]);
        if (a->fwd) fr_sa_bytes_free(a->fwd[i], a->fwd_n[i]);
    }
    fri_free(a->clients);
    fri_free(a->fwd);
    fri_free(a->fwd_n);
    fri_free(a->dense);
    fr_sa_server_free(a->server);
    pthread_mutex_destroy(&a->lock);
    fri_free(a);
}

/* One exchange of stage st for every client still in: the server's messages (made first,
 * in order), the clients' steps (on the pool: they are independent), then the server takes
 * the answers in order. */
typedef struct secagg_job {
    sim_secagg *a;
    int st;
    uint8_t **in, **out;  /* [k] */
    size_t *in_n, *out_n; /* [k] */
    fri_latch err;
} secagg_job;

static void secagg_step(void *ctx, size_t i, int worker) {
    (void)worker;
    secagg_job *j = ctx;
    fr_sa_client *c = j->a->clients[i];
    if (fri_latch_failed(&j->err) || !j->in[i]) return;
    fr_err e = j->st == 0 ? fr_sa_client_advertise(c, &j->out[i], &j->out_n[i])
             : j->st == 1 ? fr_sa_client_share(c, j->in[i], j->in_n[i], &j->out[i], &j->out_n[i])
                          : fr_sa_client_unmask(c, j->in[i], j->in_n[i], &j->out[i], &j->out_n[i]);
    if (e) fri_latch_set(&j->err, e, NULL);
}

static fr_err secagg_stage(fr_sim *s, int st) {
    sim_secagg *a = s->sa;
    static uint8_t none; /* stage 0: no message, but the client is in */
    secagg_job j = {a, st, fri_calloc(a->k, sizeof *j.in), fri_calloc(a->k, sizeof *j.out),
                    fri_calloc(a->k, sizeof *j.in_n), fri_calloc(a->k, sizeof *j.out_n), {0}};
    fr_err e = j.in && j.out && j.in_n && j.out_n ? FR_OK : FR_ERR_NOMEM;
    for (uint32_t i = 0; !e && i < a->k; i++) {
        if (!fr_sa_server_has(a->server, i)) continue;
        if (st == 0) j.in[i] = &none;
        else e = fr_sa_server_message(a->server, i, &j.in[i], &j.in_n[i]);
    }
    if (!e) {
        fri_latch_reset(&j.err);
        fr_pool_for(s->pool, a->k, 1, secagg_step, &j);
        e = fri_latch_get(&j.err);
    }
    for (uint32_t i = 0; !e && i < a->k; i++)
        if (j.out[i]) e = fr_sa_server_receive(a->server, j.out[i], j.out_n[i]);
    for (uint32_t i = 0; j.in && j.out && i < a->k; i++) {
        if (st > 0) fr_sa_bytes_free(j.in[i], j.in_n[i]);
        fr_sa_bytes_free(j.out[i], j.out_n[i]);
    }
    fri_free(j.in);
    fri_free(j.out);
    fri_free(j.in_n);
    fri_free(j.out_n);
    return e;
}

/* Opens the protocol for the round's k clients, up to the forwarded shares. */
static fr_err secagg_open(fr_sim *s, uint32_t round, uint32_t k) {
    if (k < 2)
        return fri_fail(FR_ERR_INVALID, "secure aggregation needs at least 2 clients a round, %u sampled", k);
    sim_secagg *a = fri_calloc(1, sizeof *a);
    if (!a) return FR_ERR_NOMEM;
    pthread_mutex_init(&a->lock, NULL);
    s->sa = a;
    a->len = fri_round_dense_len(s->ctl);
    fr_sa_params p;
    /* k and t tolerate 10% of the clients dropping out: a round fails (retried) with chance 2^-30, the
     * survivors' graph splits with chance 2^-40 (fr_sa_params_choose_split) */
    fr_err e = fr_sa_params_choose_split(&p, k, a->len, FR_SA_ROUND_DROPOUT, FR_SA_ROUND_SIGMA,
                                         FR_SA_ROUND_ETA);
    if (e) return e;
    p.session = round;
    p.graph_seed = s->cfg.seed ^ ((uint64_t)round << 32);
    a->clients = fri_calloc(k, sizeof *a->clients);
    a->fwd = fri_calloc(k, sizeof *a->fwd);
    a->fwd_n = fri_calloc(k, sizeof *a->fwd_n);
    a->dense = fri_malloc((size_t)s->n_workers * a->len * sizeof *a->dense);
    if (!a->clients || !a->fwd || !a->fwd_n || !a->dense) return FR_ERR_NOMEM;
    a->k = k;
    if ((e = fr_sa_server_create(&a->server, &p))) return e;
    for (uint32_t i = 0; i < k; i++)
        if ((e = fr_sa_client_create(&a->clients[i], &p, i))) return e;
    if ((e = secagg_stage(s, 0)) || (e = fr_sa_server_close(a->server)) || (e = secagg_stage(s, 1)) ||
        (e = fr_sa_server_close(a->server)))
        return e;
    for (uint32_t i = 0; i < k; i++)
        if (fr_sa_server_has(a->server, i) && (e = fr_sa_server_message(a->server, i, &a->fwd[i], &a->fwd_n[i])))
            return e;
    return FR_OK;
}

/* A client's result, densified, masked and given to the server (on its worker). */
static fr_err secagg_submit(fr_sim *s, sim_worker *w, int worker) {
    sim_secagg *a = s->sa;
    int64_t *x = a->dense + (size_t)worker * a->len;
    uint8_t *out = NULL;
    size_t out_n = 0;
    fr_err e = fri_round_accept_dense(s->ctl, w->res, FR_SA_HEADER_BYTES + 8 + 8 * (uint64_t)a->len, worker, x);
    if (!e) e = fr_sa_client_mask(a->clients[w->at], x, a->fwd[w->at], a->fwd_n[w->at], &out, &out_n);
    if (!e) {
        pthread_mutex_lock(&a->lock);
        e = fr_sa_server_receive(a->server, out, out_n);
        pthread_mutex_unlock(&a->lock);
    }
    fr_sa_bytes_free(out, out_n);
    return e;
}

/* Unmasking, and the sum to the controller. */
static fr_err secagg_close(fr_sim *s) {
    sim_secagg *a = s->sa;
    fr_err e = fr_sa_server_close(a->server);
    if (!e) e = secagg_stage(s, 3);
    if (!e) e = fr_sa_server_finish(a->server, a->dense, NULL);
    if (!e) e = fri_round_add_dense_sum(s->ctl, a->dense);
    return e;
}

/* ------------------------------------------------------------------ attacks and faults */
/* Malicious clients (fr_sim_set_attack) and faults (fr_sim_set_faults): see
 * fedrec/runtime.h for what they do. A malicious client's result is made in memory
 * (fr_client_step, or crafted for a fake), corrupted, then sent as an honest one is
 * (encoded and submitted, accepted in memory, or masked under secure aggregation). With
 * faults on, every result's bytes are held per position and delivered after the clients
 * ran, in order of simulated arrival (the main thread, lane 0): which results a round
 * takes depends on the seed only, never on the threads. */

static uint32_t n_total(const fr_sim *s) { return s->n_clients + s->n_fake; }

/* The round word of the fault and attack streams: the round, its attempt above bit 24. */
static uint32_t stream_round(const fr_sim *s, uint32_t round) { return round | (s->attempt << 24); }

static bool crashes(const fr_sim *s, uint32_t round, uint32_t c) {
    if (!(s->flt.crash_rate > 0)) return false;
    fr_rng r;
    fr_rng_init(&r, s->cfg.seed, stream_round(s, round), c, FR_PURPOSE_FAULT);
    return fr_rng_double(&r) < s->flt.crash_rate;
}

/* Client c's simulated seconds: compute then both ways of the network. */
static double sim_time(const fr_sim *s, uint32_t round, uint32_t c, uint64_t work, size_t task_n, size_t res_n) {
    fr_rng r;
    fr_rng_init(&r, s->cfg.seed, stream_round(s, round), c, FR_PURPOSE_FAULT);
    (void)fr_rng_double(&r); /* the crash draw */
    double u = 1.0 + 0.5 * fr_rng_double(&r);
    bool slow = fr_rng_double(&r) < s->flt.straggler_rate;
    double comp = (double)work * s->flt.sec_per_example * u * (slow ? s->flt.straggler_slowdown : 1.0);
    return comp + 2.0 * s->flt.latency + (double)(task_n + res_n) / s->flt.bandwidth;
}

/* A result's bytes: held for delivery (faults), or submitted now. */
static fr_err deliver(fr_sim *s, sim_worker *w, int worker, const uint8_t *msg, size_t len, uint64_t work) {
    if (!s->faults) return fr_round_submit(s->ctl, msg, len, worker);
    uint32_t at = w->at;
    if (len > s->slot_cap[at]) {
        uint8_t *p = fri_realloc(s->slot[at], len);
        if (!p) return FR_ERR_NOMEM;
        s->slot[at] = p;
        s->slot_cap[at] = len;
    }
    memcpy(s->slot[at], msg, len);
    s->slot_n[at] = len;
    s->slot_work[at] = work;
    s->slot_state[at] = 2;
    return FR_OK;
}

/* w->res, made in memory, sent as an honest client's result would be. */
static fr_err send_res(fr_sim *s, sim_worker *w, int worker, uint32_t c, uint64_t work) {
    if (s->sa) return secagg_submit(s, w, worker);
    if (!s->wire && !s->faults) return fri_round_accept_at(s->ctl, w->res, worker, w->pos);
    uint8_t *msg = NULL;
    size_t len = 0;
    fr_err e = fr_result_encode(w->res, &msg, &len);
    if (!e && s->observe) s->observe(s->observe_ctx, c, msg, len);
    if (!e) e = deliver(s, w, worker, msg, len, work);
    fr_msg_free(msg);
    return e;
}

static inline int64_t sat(double v, uint64_t bound) {
    double b = (double)bound;
    if (!(v == v)) return 0;
    if (v > b) v = b;
    if (v < -b) v = -b;
    int64_t x = (int64_t)llround(v);
    if (x > (int64_t)bound) x = (int64_t)bound; /* the double of bound may round up */
    if (x < -(int64_t)bound) x = -(int64_t)bound;
    return x;
}

/* Model poisoning of a compromised client's honest result res (fixed point, in place). */
static void poison(const fr_sim *s, uint32_t round, fr_result *res) {
    uint64_t bound = fr_fl_fixed_bound(fr_round_target(s->ctl));
    fr_rng r;
    fr_rng_init(&r, s->cfg.seed, round, res->client, FR_PURPOSE_ATTACK);
    double f = s->atk.factor;
    /* noise: n_k * N(0, SIGMA^2) for the dense part, w * N(0, SIGMA^2) for item rows */
    double wd = (double)res->weight * FR_FL_FIXED_SCALE, wi = (s->cfg.item_sum ? 1.0 : (double)res->weight) * FR_FL_FIXED_SCALE;
    for (uint32_t i = 0; i < res->dense_len; i++)
        res->dense[i] = s->atk.kind == FR_ATTACK_NOISE ? sat(wd * f * fr_rng_normal(&r), bound)
                                                       : sat((double)res->dense[i] * f, bound);
    for (uint32_t t = 0; t < res->n_tables; t++) {
        fr_result_table *tb = &res->tables[t];
        size_t nv = (size_t)tb->count * tb->width;
        for (size_t i = 0; i < nv; i++)
            tb->values[i] = s->atk.kind == FR_ATTACK_NOISE ? sat(wi * f * fr_rng_normal(&r), bound)
                                                           : sat((double)tb->values[i] * f, bound);
    }
}

/* A fake client of a promotion attack (fri_attack_fake_result, shared with the networked
 * server), sent as an honest client's result would be. */
static fr_err run_fake(fr_sim *s, uint32_t c, int worker) {
    sim_worker *w = &s->w[worker];
    fr_err e = fri_attack_fake_result(s->ctl, &s->atk, s->n_fake, s->ref_pop, s->fref[worker], c, s->fupd[worker], w->res);
    if (e) return e;
    return send_res(s, w, worker, c, ((uint64_t)s->atk.n_ref + 1) * s->cfg.local_epochs);
}

static bool sim_direct = true; /* tests: false makes every in-memory client's fr_result */

bool fri_sim_direct_allow(bool allow) {
    bool was = sim_direct;
    sim_direct = allow;
    return was;
}

static fr_err run_client(fr_sim *s, uint32_t c, int worker) {
    sim_worker *w = &s->w[worker];
    uint32_t round = fr_round_completed(s->ctl) + 1;
    if (s->faults && crashes(s, round, c)) { /* it got the TASK, then its result never arrives */
        s->slot_state[w->at] = 1;
        return fr_round_task(s->ctl, c, NULL, NULL);
    }
    if (c >= s->n_clients) return run_fake(s, c, worker);
    /* the client's users: itself, or its silo's */
    uint32_t U = s->part_ptr ? (uint32_t)(s->part_ptr[c + 1] - s->part_ptr[c]) : 1;
    if (U == 0) return FR_OK; /* an empty silo: nothing to send */
    fr_err e = worker_users(w, s->n_user_t, U);
    if (e) return e;
    size_t total = 0;
    for (uint32_t j = 0; j < U; j++) {
        uint32_t u = s->part_ptr ? s->part_users[s->part_ptr[c] + j] : c;
        fr_client_user *cu = &w->users[j];
        cu->user = u;
        cu->n = fr_dataset_user(s->train, u, &cu->items, &cu->ratings, NULL);
        total += cu->n;
    }
    if (total == 0) return FR_OK; /* nothing to learn from: no TASK, no RESULT */
    const uint8_t *tb;
    size_t tn;
    e = fri_round_task_at(s->ctl, c, w->pos, &tb, &tn);
    if (!e && w->task_epoch != s->epoch) { /* this worker's first client of the round */
        e = fr_task_decode(w->task, tb, tn);
        w->task_epoch = e ? 0 : s->epoch;
    }
    if (e) return e;
    fr_client_data d = {w->users[0].user, w->users[0].items, w->users[0].ratings, w->users[0].n, s->mcfg.n_items,
                        s->part_ptr ? U : 0, s->part_ptr ? w->users : NULL};
    /* private state: rows[t * U + j] (and the kept moments, same layout) */
    size_t nr = (size_t)s->n_user_t * U;
    float **rows = w->rows, **m1 = w->rows + nr, **m2 = w->rows + 2 * nr;
    float *p = fr_model_params(s->full);
    size_t ns = fr_model_n_shared(s->full);
    for (int i = 0; i < s->n_user_t; i++) {
        const fr_tensor *tt = fr_model_tensor(s->full, s->user_t[i]);
        for (uint32_t j = 0; j < U; j++) {
            uint32_t u = w->users[j].user;
            size_t off = tt->offset + (size_t)(s->priv_n ? u / s->priv_n : u) * tt->cols;
            rows[i * U + j] = p + off;
            if (s->km1) { m1[i * U + j] = s->km1 + (off - ns); m2[i * U + j] = s->km2 + (off - ns); }
        }
    }
    fr_client_private priv = {rows, s->km1 ? m1 : NULL, s->km1 ? m2 : NULL, s->ksteps ? &s->ksteps[c] : NULL};
    if (s->resid) fri_client_ws_set_residual(w->ws, s->resid + (size_t)c * s->resid_len);
    uint64_t work = (uint64_t)total * s->cfg.local_epochs;
    bool bad = s->bad && s->bad[c];
    if (sim_direct && !s->sa && !bad && !s->wire && !s->faults && !fr_fl_dp_on(&s->cfg) && !fri_result_compress_flags(&s->cfg) &&
        fri_round_takes_updates(s->ctl)) { /* in memory: the update straight into the worker's lane */
        const fr_update *upd;
        fr_client_report rep;
        uint32_t crc;
        e = fri_client_step_update(w->ws, w->task, c, &d, &priv, &upd, &rep, &crc);
        return e ? e : fri_round_accept_update(s->ctl, upd, fr_task_bound(w->task), crc, rep.examples, rep.loss_sum,
                                               worker, w->pos);
    }
    if (s->sa || bad || (!s->wire && !s->faults)) {
        e = fr_client_step(w->ws, w->task, c, &d, &priv, w->res);
        if (!e && bad) poison(s, round, w->res);
        return e ? e : send_res(s, w, worker, c, work);
    }
    const uint8_t *msg;
    size_t len;
    e = fri_client_step_encode(w->ws, w->task, c, &d, &priv, &msg, &len); /* the RESULT's bytes */
    if (!e && s->observe) s->observe(s->observe_ctx, c, msg, len);
    return e ? e : deliver(s, w, worker, msg, len, work);
}

/* The round's client loop hands out chunks of consecutive positions (client_grain), so a
 * worker knows its next client: it asks for that client's item rows (the TASK's model it
 * reads, its lane's accumulator rows it adds to) while it trains this one, and the ~20
 * scattered rows of each arrive in the background instead of stalling the fit and the
 * adds. Only a hint to the cache: which worker runs which client changes no sum. */
static size_t client_grain(const fr_sim *s, size_t k) {
    size_t g = k / ((size_t)s->n_workers * 64);
    return g < 1 ? 1 : g > 64 ? 64 : g;
}

static void prefetch_client(fr_sim *s, sim_worker *w, int worker, uint32_t c) {
    if (s->part_ptr || c >= s->n_clients || w->task_epoch != s->epoch) return;
    const uint32_t *items;
    size_t n = fr_dataset_user(s->train, c, &items, NULL, NULL);
    const fr_model *g = fr_task_model(w->task);
    if (!n || !g) return;
    const float *p = fr_model_params_const(g);
    uint32_t n_items = s->mcfg.n_items;
    for (int t = 0; t < fr_model_n_tensors(g); t++) {
        const fr_tensor *tt = fr_model_tensor(g, t);
        if (tt->kind != FR_TENSOR_ITEM_TABLE) continue;
        for (size_t i = 0; i < n; i++) {
            if (items[i] >= n_items) continue;
            const char *r = (const char *)(p + tt->offset + (size_t)items[i] * tt->cols);
            for (size_t x = 0; x < tt->cols * sizeof(float); x += 64) __builtin_prefetch(r + x, 0, 3);
        }
    }
    fri_round_prefetch_rows(s->ctl, worker, items, n);
    fri_client_ws_prefetch(w->ws, items, n);
}

static void task(void *ctx, size_t index, int worker) {
    fr_sim *s = ctx;
    if (fri_latch_failed(&s->err)) return;
    if (s->grain > 1 && (index + 1) % s->grain && index + 1 < s->n_ids)
        prefetch_client(s, &s->w[worker], worker, s->ids[index + 1]);
    uint32_t c = s->ids[index];
    s->w[worker].at = (uint32_t)index;
    s->w[worker].pos = s->reduce ? s->mine_pos[index] : (uint32_t)index;
    fr_err e = run_client(s, c, worker);
    if (e) {
        char what[64];
        snprintf(what, sizeof what, "client %u", c);
        /* the client's own messages name it already */
        bool named = !strncmp(fr_errmsg(), what, strlen(what)) && fr_errmsg()[strlen(what)] == ':';
        fri_latch_set(&s->err, e, named ? NULL : what);
    }
}

typedef struct arrival { double t; uint32_t c, pos; } arrival;

static int by_arrival(const void *x, const void *y) {
    const arrival *a = x, *b = y;
    if (a->t != b->t) return a->t < b->t ? -1 : 1;
    return (a->c > b->c) - (a->c < b->c);
}

/* Faults: the held results delivered in order of simulated arrival, until the round has
 * its target, none after the deadline. Counts crashes and late results. */
static fr_err deliver_held(fr_sim *s, uint32_t round, uint32_t k) {
    arrival *ar = fri_malloc((size_t)(k ? k : 1) * sizeof *ar);
    if (!ar) return FR_ERR_NOMEM;
    const uint8_t *tb;
    size_t tn = 0;
    uint32_t n = 0;
    fr_err e = FR_OK;
    for (uint32_t i = 0; i < k; i++) {
        if (s->slot_state[i] == 1) s->fst.crashed++;
        if (s->slot_state[i] != 2) continue;
        if (!tn && (e = fr_round_task(s->ctl, s->ids[i], &tb, &tn))) break;
        ar[n++] = (arrival){sim_time(s, round, s->ids[i], s->slot_work[i], tn, s->slot_n[i]), s->ids[i], i};
    }
    qsort(ar, n, sizeof *ar, by_arrival);
    uint32_t target = fr_round_target(s->ctl);
    double last = 0;
    s->n_taken = 0;
    for (uint32_t i = 0; !e && i < n; i++) {
        if ((s->flt.deadline > 0 && ar[i].t > s->flt.deadline) || fr_round_results(s->ctl) >= target) {
            s->fst.late++;
            continue;
        }
        e = fr_round_submit(s->ctl, s->slot[ar[i].pos], s->slot_n[ar[i].pos], 0);
        if (e) e = fri_fail_prefix(e, "client %u", ar[i].c);
        s->taken[s->n_taken++] = ar[i].c;
        last = ar[i].t;
    }
    s->fst.sim_seconds = fr_round_results(s->ctl) >= target || !(s->flt.deadline > 0) ? last : s->flt.deadline;
    fri_free(ar);
    /* increasing ids, for fr_sim_last_taken */
    for (uint32_t i = 1; i < s->n_taken; i++)
        for (uint32_t j = i; j > 0 && s->taken[j - 1] > s->taken[j]; j--) {
            uint32_t x = s->taken[j]; s->taken[j] = s->taken[j - 1]; s->taken[j - 1] = x;
        }
    return e;
}

fr_err fr_sim_round(fr_sim *s, fr_round_stats *st) {
    memset(st, 0, sizeof *st);
    memset(&s->fst, 0, sizeof s->fst);
    uint32_t round = fr_round_completed(s->ctl) + 1, k = 0;
    if (s->secagg && fri_result_compress_flags(&s->cfg))
        return fri_fail(FR_ERR_INVALID, "secure aggregation with uplink compression: masks cancel only in a sum of "
                        "words at the same positions, which quantized blocks and top-k values are not");
    for (s->attempt = 0;; s->attempt++) {
        s->fst.attempts = s->attempt + 1;
        fr_err e = s->all_ids ? fr_round_begin_among(s->ctl, s->all_ids, n_total(s), s->flt.over_select, &s->ids, &k)
                              : fr_round_begin(s->ctl, &s->ids, &k);
        if (e) return e;
        s->epoch++;
        /* DP rounds of fewer than 2 sampled clients run without masks (fri_dp_secagg_plain) */
        if (s->secagg && !fri_dp_secagg_plain(&s->cfg, k) && (e = secagg_open(s, round, k))) {
            secagg_free(s->sa);
            s->sa = NULL;
            fr_round_abort(s->ctl);
            return fri_fail_prefix(e, "round %u: secure aggregation", round);
        }
        if (s->faults) memset(s->slot_state, 0, k);
        fri_latch_reset(&s->err);
        if (s->reduce) { /* a share: this process's clients only, then the sums meet (no faults: see set_share) */
            uint32_t n = 0;
            for (uint32_t i = 0; i < k; i++)
                if (s->ids[i] % s->share_n == s->share_at) { s->mine_pos[n] = i; s->mine[n++] = s->ids[i]; }
            s->ids = s->mine;
            s->n_ids = n;
            s->grain = client_grain(s, n);
            fr_pool_for(s->pool, n, s->grain, task, s);
            e = s->reduce(s->reduce_ctx, s->ctl, fri_latch_failed(&s->err) ? fri_latch_get(&s->err) : FR_OK);
            if (e) {
                fr_round_abort(s->ctl);
                return fri_fail_prefix(e, "round %u", round);
            }
            return fr_round_end(s->ctl, st);
        }
        s->n_ids = k;
        s->grain = client_grain(s, k);
        fr_pool_for(s->pool, k, s->grain, task, s);
        e = s->sa && !fri_latch_failed(&s->err) ? secagg_close(s) : FR_OK;
        secagg_free(s->sa);
        s->sa = NULL;
        if (!e && !fri_latch_failed(&s->err) && s->faults) e = deliver_held(s, round, k);
        if (e || fri_latch_failed(&s->err)) {
            fr_round_abort(s->ctl);
            if (!e) e = fri_latch_get(&s->err);
            return fri_fail_prefix(e, "round %u", round);
        }
        if (!s->faults) return fr_round_end(s->ctl, st);
        uint32_t got = fr_round_results(s->ctl), quorum = s->cfg.min_results ? s->cfg.min_results : 1;
        if (got >= quorum) {
            e = fr_round_end(s->ctl, st);
            st->attempts = s->fst.attempts;
            st->crashed = s->fst.crashed;
            st->late = s->fst.late;
            st->sim_seconds = s->fst.sim_seconds;
            s->attempt = 0;
            return e;
        }
        fr_round_abort(s->ctl); /* short: nothing applied, the round again */
        if (s->attempt + 1 >= s->flt.max_attempts) {
            s->attempt = 0;
            return fri_fail(FR_ERR_EMPTY, "round %u: %u result%s of %u sampled client%s, the quorum is %u, in each of %u "
                            "attempt%s: nothing applied (%u crashed, %u late in the last)", round, got, fri_s(got), k,
                            fri_s(k), quorum, s->flt.max_attempts, fri_s(s->flt.max_attempts), s->fst.crashed,
                            s->fst.late);
        }
        s->fst.crashed = s->fst.late = 0;
    }
}

void fr_sim_fault_stats_get(const fr_sim *s, fr_sim_fault_stats *out) { *out = s->fst; }

uint32_t fr_sim_last_taken(const fr_sim *s, uint32_t *out, uint32_t cap) {
    uint32_t n = s->n_taken < cap ? s->n_taken : cap;
    if (n) memcpy(out, s->taken, (size_t)n * sizeof *out);
    return s->n_taken;
}

bool fr_sim_is_malicious(const fr_sim *s, uint32_t c) {
    if (c >= s->n_clients) return c < n_total(s);
    return s->bad && s->bad[c];
}
uint32_t fr_sim_n_fake(const fr_sim *s) { return s->n_fake; }

/* Per-position buffers for n clients (faults) and the malicious clients' scratch. */
static fr_err sim_buffers(fr_sim *s) {
    uint32_t n = n_total(s);
    if (s->faults) {
        for (uint32_t i = 0; s->slot && i < s->n_slot; i++) fri_free(s->slot[i]);
        s->n_slot = 0;
        fri_free(s->slot); fri_free(s->slot_n); fri_free(s->slot_cap); fri_free(s->slot_work);
        fri_free(s->slot_state); fri_free(s->taken); fri_free(s->all_ids);
        s->slot = fri_calloc(n, sizeof *s->slot);
        s->slot_n = fri_calloc(n, sizeof *s->slot_n);
        s->slot_cap = fri_calloc(n, sizeof *s->slot_cap);
        s->slot_work = fri_calloc(n, sizeof *s->slot_work);
        s->slot_state = fri_calloc(n, 1);
        s->taken = fri_calloc(n, sizeof *s->taken);
        s->all_ids = NULL;
        if (s->slot) s->n_slot = n;
        if (!s->slot || !s->slot_n || !s->slot_cap || !s->slot_work || !s->slot_state || !s->taken) return FR_ERR_NOMEM;
        if (s->flt.over_select > 0) {
            if (!(s->all_ids = fri_malloc((size_t)n * sizeof *s->all_ids))) return FR_ERR_NOMEM;
            for (uint32_t i = 0; i < n; i++) s->all_ids[i] = i;
        }
    }
    if (s->atk.kind != FR_ATTACK_NONE && !s->fupd) {
        s->fupd = fri_calloc((size_t)s->n_workers, sizeof *s->fupd);
        s->fref = fri_calloc((size_t)s->n_workers, sizeof *s->fref);
        if (!s->fupd || !s->fref) return FR_ERR_NOMEM;
        for (int i = 0; i < s->n_workers; i++) {
            fr_err e = fr_update_create(&s->fupd[i]);
            if (e) return e;
            if (!(s->fref[i] = fri_malloc(((size_t)s->atk.n_ref + 1) * sizeof *s->fref[i]))) return FR_ERR_NOMEM;
        }
    }
    return FR_OK;
}

fr_err fr_sim_set_faults(fr_sim *s, const fr_sim_faults *f) {
    fr_err e = fr_sim_faults_check(f);
    if (e) return e;
    if (fr_round_completed(s->ctl) || fr_round_is_open(s->ctl))
        return fri_fail(FR_ERR_STATE, "faults: set them before the first round");
    if (s->reduce)
        return fri_fail(FR_ERR_UNSUPPORTED, "simulated faults across processes: the sim runtime runs them (--runtime sim)");
    if (fr_sim_faults_on(f) && s->secagg)
        return fri_fail(FR_ERR_INVALID, "faults with secure aggregation: a dropout there is the protocol's (its "
                        "unmasking), not simulated here");
    if (f->over_select > 0 && fr_fl_dp_on(&s->cfg))
        return fri_fail(FR_ERR_INVALID, "over-selection %g with DP: every client is sampled with probability q "
                        "(Poisson), as the accountant assumes", f->over_select);
    s->flt = *f;
    s->faults = fr_sim_faults_on(f);
    return sim_buffers(s);
}

fr_err fr_sim_set_attack(fr_sim *s, const fr_sim_attack *a) {
    if (fr_round_completed(s->ctl) || fr_round_is_open(s->ctl) || s->atk.kind != FR_ATTACK_NONE)
        return fri_fail(FR_ERR_STATE, "attack: set it once, before the first round");
    if (a->kind == FR_ATTACK_NONE) return FR_OK;
    if (s->reduce)
        return fri_fail(FR_ERR_UNSUPPORTED, "simulated attacks across processes: the sim runtime runs them (--runtime sim)");
    if (!(a->fraction > 0 && a->fraction <= 0.5))
        return fri_fail(FR_ERR_INVALID, "attack: fraction %g, expected (0, 0.5]", a->fraction);
    if (s->part_ptr) return fri_fail(FR_ERR_INVALID, "attack: simulated with one user per client only (not silos)");
    if (fr_fl_dp_on(&s->cfg))
        return fri_fail(FR_ERR_INVALID, "attack with DP: the clip would bound it (not simulated)");
    if (fri_result_compress_flags(&s->cfg) || s->resid)
        return fri_fail(FR_ERR_INVALID, "attack with uplink compression: not simulated");
    uint32_t ni = s->mcfg.n_items, nc = s->n_clients;
    if (fr_sim_attack_has_target(a)) {
        uint32_t nf;
        fr_err e = fri_attack_fakes(a, nc, ni, &nf);
        if (e) return e;
        s->atk = *a;
        s->n_fake = nf;
        if (a->kind == FR_ATTACK_PROMOTE_POP) { /* the public popularity: training interactions per item */
            double *cnt = fri_calloc(ni, sizeof *cnt);
            s->ref_pop = fri_malloc((size_t)a->n_ref * sizeof *s->ref_pop);
            e = cnt && s->ref_pop ? FR_OK : FR_ERR_NOMEM;
            for (uint32_t u = 0; !e && u < fr_dataset_n_users(s->train); u++) {
                const uint32_t *it;
                size_t n = fr_dataset_user(s->train, u, &it, NULL, NULL);
                for (size_t j = 0; j < n; j++) cnt[it[j]]++;
            }
            if (!e) e = fri_attack_ref_pop(a, cnt, ni, s->ref_pop);
            fri_free(cnt);
            if (e) { s->atk.kind = FR_ATTACK_NONE; s->n_fake = 0; return e; }
        }
        /* the controller of a federation with the fakes in it */
        fr_round *ctl = NULL;
        e = fr_round_create(&ctl, &s->mcfg, &s->cfg, nc + s->n_fake, s->n_workers);
        if (e) { s->atk.kind = FR_ATTACK_NONE; s->n_fake = 0; return e; }
        fr_round_set_pool(ctl, s->pool);
        fr_round_free(s->ctl);
        s->ctl = ctl;
    } else {
        uint32_t m = (uint32_t)floor(a->fraction * nc + 0.5);
        if (m < 1) m = 1;
        uint32_t *pick = fri_malloc((size_t)m * sizeof *pick);
        s->bad = fri_calloc(nc, 1);
        if (!pick || !s->bad) { fri_free(pick); fri_free(s->bad); s->bad = NULL; return FR_ERR_NOMEM; }
        fr_rng r;
        fr_rng_init(&r, s->cfg.seed, 0, 0, FR_PURPOSE_ATTACK);
        fr_err e = fr_rng_sample(&r, nc, m, pick);
        for (uint32_t i = 0; !e && i < m; i++) s->bad[pick[i]] = 1;
        fri_free(pick);
        if (e) { fri_free(s->bad); s->bad = NULL; return e; }
        s->atk = *a;
    }
    return sim_buffers(s);
}

/* ------------------------------------------------------------------ shares */

fr_err fri_sim_set_share(fr_sim *s, uint32_t at, uint32_t n, fri_sim_reduce reduce, void *ctx) {
    if (n == 0 || at >= n) return fri_fail(FR_ERR_INVALID, "share %u of %u", at, n);
    if (s->priv_n && (at != s->priv_at || n != s->priv_n))
        return fri_fail(FR_ERR_INVALID, "share %u of %u: this sim's store keeps share %u of %u's rows", at, n,
                        s->priv_at, s->priv_n);
    if (s->secagg || s->km1 || s->resid)
        return fri_fail(FR_ERR_UNSUPPORTED, "%s across processes: the clients' %s is kept by one process (run it on "
                        "the sim runtime)", s->secagg ? "secure aggregation" : s->km1 ? "keep-private-optim" :
                        "top-k compression", s->secagg ? "masking protocol" : "state beyond its rows");
    if (s->faults || s->atk.kind != FR_ATTACK_NONE)
        return fri_fail(FR_ERR_UNSUPPORTED, "simulated %s across processes: the sim runtime runs them (--runtime sim)",
                        s->faults ? "faults" : "attacks");
    /* a round samples each client at most once: at most this share's clients c % n == at */
    size_t own = at < s->n_clients ? ((size_t)s->n_clients - at + n - 1) / n : 1;
    fri_free(s->mine);
    fri_free(s->mine_pos);
    s->mine = fri_malloc(own * sizeof *s->mine);
    s->mine_pos = fri_malloc(own * sizeof *s->mine_pos);
    if (!s->mine || !s->mine_pos) return FR_ERR_NOMEM;
    s->share_at = at;
    s->share_n = n;
    s->reduce = reduce;
    s->reduce_ctx = ctx;
    return FR_OK;
}

size_t fri_sim_store_floats(const fr_sim *s) { return s->n_priv; }

fr_model *fri_sim_take_model(fr_sim *s) {
    fr_model *m = fr_sim_model(s);
    s->full = NULL;
    return m;
}

const float *fri_sim_private_row(const fr_sim *s, int t, uint32_t u) {
    const fr_tensor *tt = fr_model_tensor(s->full, t);
    if (!tt || tt->kind != FR_TENSOR_USER_TABLE || u >= s->mcfg.n_users) return NULL;
    if (s->priv_n && u % s->priv_n != s->priv_at) return NULL;
    return fr_model_params_const(s->full) + tt->offset + (size_t)(s->priv_n ? u / s->priv_n : u) * tt->cols;
}

void fri_sim_set_fingerprint(fr_sim *s, const fr_fingerprint *fp) { s->data_fp = *fp; }

void fri_sim_owners(const fr_sim *s, uint32_t n, uint32_t *owner) {
    uint32_t nu = s->mcfg.n_users;
    if (!s->part_ptr) {
        for (uint32_t u = 0; u < nu; u++) owner[u] = u % n;
        return;
    }
    memset(owner, 0, (size_t)nu * sizeof *owner); /* a user no silo holds never trains: process 0 keeps it */
    for (uint32_t c = 0; c < s->n_clients; c++)
        for (uint64_t j = s->part_ptr[c]; j < s->part_ptr[c + 1]; j++) owner[s->part_users[j]] = c % n;
}

/* ------------------------------------------------------------------ checkpoints */

/* Layout (little-endian), version 3:
 *   "FRCKPT\0\0" | u32 version | u64 state length S | the controller's state[S]
 *   | u32 n_clients | u32 partition CRC-32C (0: a user each)
 *   | the training data's fingerprint: u32 users | u32 items | u64 interactions | u32 CRC-32C
 *   | u64 n_priv | f32 private rows[n_priv]
 *   | u32 has_kept | if has_kept: f32 m1[n_priv] | f32 m2[n_priv] | u64 steps[n_clients]
 *   | with top-k compression only (the config says): f32 residuals[n_clients * dense values]
 *   | u32 CRC-32C of everything before it.
 * The controller's state (fr_round_save) holds the config, the round, the strategy's
 * moments and the global shared parameters; the rest is the client-state store. Older
 * versions (fedrec before the round controller) are refused with their version. */
#define CKPT_MAGIC "FRCKPT\0\0"
#define CKPT_VERSION 3

fr_err fr_sim_checkpoint_save(fr_sim *s, const char *path) {
    if (s->priv_n)
        return fri_fail(FR_ERR_STATE, "%s: a process keeping only its clients' private rows does not save checkpoints "
                        "(process 0 does)", path);
    uint8_t *st = NULL;
    size_t sn = 0;
    fr_err e = fr_round_save(s->ctl, &st, &sn);
    if (e) return e;
    const float *p = fr_model_params_const(s->full) + fr_model_n_shared(s->full);
    /* streamed to the file: the store (every user's rows) is never copied whole */
    fri_wfile w;
    if ((e = fri_wfile_open(&w, path, 0644))) {
        fr_msg_free(st);
        return e;
    }
    fri_wfile_put(&w, CKPT_MAGIC, 8);
    fri_wfile_u32(&w, CKPT_VERSION);
    fri_wfile_u64(&w, sn);
    fri_wfile_put(&w, st, sn);
    fr_msg_free(st);
    fri_wfile_u32(&w, s->n_clients);
    fri_wfile_u32(&w, s->part_ptr ? s->part_crc : 0);
    fri_wfile_u32(&w, s->data_fp.users);
    fri_wfile_u32(&w, s->data_fp.items);
    fri_wfile_u64(&w, s->data_fp.interactions);
    fri_wfile_u32(&w, s->data_fp.crc);
    fri_wfile_u64(&w, s->n_priv);
    fri_wfile_f32s(&w, p, s->n_priv);
    fri_wfile_u32(&w, s->km1 ? 1 : 0);
    if (s->km1) {
        fri_wfile_f32s(&w, s->km1, s->n_priv);
        fri_wfile_f32s(&w, s->km2, s->n_priv);
        for (uint32_t c = 0; c < s->n_clients; c++) fri_wfile_u64(&w, s->ksteps[c]);
    }
    if (s->resid) fri_wfile_f32s(&w, s->resid, (size_t)s->n_clients * s->resid_len);
    uint32_t crc = w.crc;
    fri_wfile_u32(&w, crc);
    return fri_wfile_close(&w, FR_OK);
}

fr_err fr_sim_checkpoint_load(fr_sim *s, const char *path) {
    uint8_t *d = NULL;
    size_t n = 0;
    fr_err e = fri_read_file(path, &d, &n);
    if (!e) e = fri_sim_checkpoint_decode(s, d, n, path);
    fri_free(d);
    return e;
}

static fr_err ckpt_decode(fr_sim *s, const uint8_t *d, size_t n, const char *path, bool head);

fr_err fri_sim_checkpoint_decode(fr_sim *s, const uint8_t *d, size_t n, const char *path) {
    return ckpt_decode(s, d, n, path, false);
}

size_t fri_sim_checkpoint_head_len(const uint8_t *d, size_t n) {
    if (n < 8 + 4 + 8) return 0;
    uint64_t sn = fri_get_u64(d + 12), h = 8 + 4 + 8 + sn + 4 + 4 + 4 + 4 + 8 + 4 + 8;
    return sn < n && h <= n ? (size_t)h : 0;
}

fr_err fri_sim_checkpoint_decode_head(fr_sim *s, const uint8_t *d, size_t n, const char *path) {
    if (!s->priv_n)
        return fri_fail(FR_ERR_STATE, "%s: a checkpoint's head alone loads only into a compact store", path);
    return ckpt_decode(s, d, n, path, true);
}

float *fri_sim_private_row_mut(fr_sim *s, int t, uint32_t u) { return (float *)fri_sim_private_row(s, t, u); }

/* head: d is the checkpoint up to its private rows (fri_sim_checkpoint_head_len bytes, no
 * CRC: the whole file's was checked by whoever read it); everything is checked and loaded
 * but the rows, which the caller then puts in place. */
static fr_err ckpt_decode(fr_sim *s, const uint8_t *d, size_t n, const char *path, bool head) {
    uint8_t *backup = NULL;
    size_t bn = 0;
    fr_err e = FR_OK;
    if (n < 8 + 4 + 4 || memcmp(d, CKPT_MAGIC, 8) != 0) {
        e = fri_fail(FR_ERR_FORMAT, "%s: not a fedrec checkpoint (bad magic or too short: %zu bytes)", path, n);
        goto done;
    }
    if (!head && fri_get_u32(d + n - 4) != fr_crc32c(0, d, n - 4)) {
        e = fri_fail(FR_ERR_CHECKSUM, "%s: checkpoint is damaged (CRC-32C mismatch)", path);
        goto done;
    }
    fri_rd r;
    fri_rd_init(&r, d, head ? n : n - 4, path, "checkpoint");
    r.at = 8;
    uint32_t ver, nc, pcrc, has_kept = 0;
    uint64_t sn, np;
    fr_fingerprint fp = {0};
    const uint8_t *st, *rows, *kept = NULL;
    if ((e = fri_rd_u32(&r, &ver, "version"))) goto done;
    if (ver != CKPT_VERSION) {
        e = fri_fail(FR_ERR_VERSION, "%s: checkpoint version %u, this build reads version %d (a checkpoint of an "
                     "older fedrec: finish that run with it, or start again)", path, ver, CKPT_VERSION);
        goto done;
    }
    if ((e = fri_rd_u64(&r, &sn, "server state length")) || (e = fri_rd_need_n(&r, sn, 1, "server state")) ||
        (e = fri_rd_bytes(&r, &st, (size_t)sn, "server state")) || (e = fri_rd_u32(&r, &nc, "client count")) ||
        (e = fri_rd_u32(&r, &pcrc, "partition CRC")) || (e = fri_rd_u32(&r, &fp.users, "data users")) ||
        (e = fri_rd_u32(&r, &fp.items, "data items")) || (e = fri_rd_u64(&r, &fp.interactions, "data interactions")) ||
        (e = fri_rd_u32(&r, &fp.crc, "data CRC")) || (e = fri_rd_u64(&r, &np, "private rows")))
        goto done;
    if (head) {
        rows = NULL;
    } else if ((e = fri_rd_need_n(&r, np, 4, "private rows")) ||
               (e = fri_rd_bytes(&r, &rows, (size_t)np * 4, "private rows")) ||
               (e = fri_rd_u32(&r, &has_kept, "kept state flag"))) {
        goto done;
    }
    if (has_kept > 1) { e = fri_fail(FR_ERR_FORMAT, "%s: kept state flag %u, expected 0 or 1", path, has_kept); goto done; }
    if (has_kept) {
        size_t want;
        if (np != s->n_priv_all || s->priv_n || fri_mul_size(s->n_priv, 8, &want) || want > SIZE_MAX - 8 * (size_t)s->n_clients) {
            e = fri_fail(FR_ERR_FORMAT, "%s: kept state of %llu rows, this run has %zu", path, (unsigned long long)np,
                         s->n_priv);
            goto done;
        }
        want += 8 * (size_t)s->n_clients;
        if ((e = fri_rd_bytes(&r, &kept, want, "kept client state"))) goto done;
    }
    const uint8_t *resid = NULL; /* top-k's residuals: read when this run has them and they are there (else
                                    the controller's state names the config that differs) */
    if (!head && s->resid && fri_rd_left(&r) == (size_t)s->n_clients * s->resid_len * 4 &&
        (e = fri_rd_bytes(&r, &resid, fri_rd_left(&r), "residuals")))
        goto done;
    if ((e = fri_rd_end(&r, "the client state"))) goto done;
    if ((e = fr_round_save(s->ctl, &backup, &bn))) goto done;
    /* what is the sim's first (its partition, its store), then the controller's state,
     * which names another run's seed, strategy and what else differs */
    if (!fr_fingerprint_equal(&fp, &s->data_fp)) {
        char a[96], b[96];
        fr_fingerprint_describe(&fp, a, sizeof a);
        fr_fingerprint_describe(&s->data_fp, b, sizeof b);
        e = fri_fail(FR_ERR_INVALID, "%s: checkpoint of other training data (%s; this run's: %s): another file, split "
                     "or seed?", path, a, b);
    } else if (nc != s->n_clients || pcrc != (s->part_ptr ? s->part_crc : 0)) {
        e = fri_fail(FR_ERR_INVALID, "%s: checkpoint of another partition (%u clients%s; this run: %u clients%s)",
                     path, nc, pcrc ? ", silos" : ", a user each", s->n_clients,
                     s->part_ptr ? ", silos" : ", a user each");
    } else if ((has_kept != 0) != (s->km1 != NULL)) {
        e = fri_fail(FR_ERR_INVALID, "%s: checkpoint %s the clients' kept optimizer state; this run %s it", path,
                     has_kept ? "holds" : "lacks", s->km1 ? "keeps" : "does not keep");
    } else if ((e = fr_round_load(s->ctl, st, (size_t)sn, path)) == FR_OK && np != s->n_priv_all) {
        e = fri_fail(FR_ERR_INVALID, "%s: checkpoint of %llu private parameters, this run has %zu", path,
                     (unsigned long long)np, s->n_priv_all); /* same config, other data */
        if (fr_round_load(s->ctl, backup, bn, "<backup>")) { /* cannot fail: it was just saved */ }
    }
    if (e) goto done;
    if (s->resid && !resid) { /* the same config, so the residuals must be there */
        e = fri_fail(FR_ERR_FORMAT, "%s: checkpoint without the clients' top-k residuals", path);
        if (fr_round_load(s->ctl, backup, bn, "<backup>")) { /* cannot fail: it was just saved */ }
        goto done;
    }
    float *p = fr_model_params(s->full) + fr_model_n_shared(s->full);
    if (head) {
        /* the rows follow from the caller */
    } else if (!s->priv_n) {
        for (size_t i = 0; i < s->n_priv; i++) p[i] = fri_get_f32(rows + 4 * i);
    } else { /* a compact store: its users' rows of each table (the whole store's tables follow each other) */
        size_t at = 0, ns = fr_model_n_shared(s->full);
        for (int i = 0; i < s->n_user_t; i++) {
            const fr_tensor *tt = fr_model_tensor(s->full, s->user_t[i]);
            for (uint32_t j = 0; j < tt->rows; j++) {
                uint64_t u = s->priv_at + (uint64_t)j * s->priv_n;
                if (u >= s->mcfg.n_users) break;
                const uint8_t *src = rows + 4 * (at + (size_t)u * tt->cols);
                float *dst = p + (tt->offset - ns) + (size_t)j * tt->cols;
                for (uint32_t k = 0; k < tt->cols; k++) dst[k] = fri_get_f32(src + 4 * (size_t)k);
            }
            at += (size_t)s->mcfg.n_users * tt->cols;
        }
    }
    if (kept) {
        for (size_t i = 0; i < s->n_priv; i++) s->km1[i] = fri_get_f32(kept + 4 * i);
        kept += 4 * s->n_priv;
        for (size_t i = 0; i < s->n_priv; i++) s->km2[i] = fri_get_f32(kept + 4 * i);
        kept += 4 * s->n_priv;
        for (uint32_t c = 0; c < s->n_clients; c++) s->ksteps[c] = fri_get_u64(kept + 8 * (size_t)c);
    }
    for (size_t i = 0; resid && i < (size_t)s->n_clients * s->resid_len; i++) s->resid[i] = fri_get_f32(resid + 4 * i);
    fr_sim_model(s);
done:
    fr_msg_free(backup);
    return e;
}
