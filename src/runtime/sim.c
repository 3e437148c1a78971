/* The `sim` runtime: a federation in one process. Every user of the training set is a
 * client (or a partition groups users into silos: client c holds the users of part c);
 * clients of a round run on an fr_pool, each worker with its own client scratch;
 * each update is encoded to bytes (counted as bytes up) and decoded with the server's
 * shape before the server accumulates it, exactly as a networked server would.
 *
 * Invariants:
 *   - The runtime holds no learning math: sampling, fitting and aggregation are
 *     fr_server_* and fr_client_fit.
 *   - The client-state store is the private suffix of `full` (one row per user; with
 *     keep_private_optim also the moments of those rows, same layout, and a step count
 *     per client): a user's rows are handed only to the fit of the client holding it
 *     (a partition holds each user at most once, checked); the shared prefix of `full`
 *     is synced from the server only when someone asks for the model (eval, model file,
 *     checkpoint).
 *   - Per-client figures (loss, bytes) are summed in client-id order after the round, so
 *     they too are identical for any thread count. */
#include <math.h>
#include <stdio.h>

#include "core/core.h"
#include "fedrec/runtime.h"

typedef struct sim_worker {
    fr_client_ws *ws;       /* client scratch */
    fr_update *up;          /* what the client built */
    fr_update *in;          /* what the server decoded */
    uint8_t *buf;           /* wire bytes */
    size_t cap;
    fr_client_user *users;  /* [cap_users] a silo's users */
    float **rows;           /* [3 * n_user_t * cap_users] rows, m1, m2 pointers of a fit */
    uint32_t cap_users;
    fr_err err;             /* first error of this worker in the round */
    char msg[256];          /* its message */
} sim_worker;

struct fr_sim {
    fr_fl_config cfg;       /* federation settings */
    fr_model_config mcfg;   /* n_users = clients */
    const fr_dataset *train;/* every client's data (each fit gets only its slice) */
    fr_pool *pool;          /* schedules clients */
    fr_pool *own_pool;      /* created when none was given */
    fr_server *server;
    fr_model *full;         /* shared prefix (synced on demand) + the client-state store */
    uint32_t n_clients;
    uint64_t *part_ptr;     /* [n_clients + 1] silos: offsets into part_users, or NULL (a user each) */
    uint32_t *part_users;   /* silos: their users */
    uint32_t part_crc;      /* CRC-32C of the partition (checkpoints must match it) */
    float *km1, *km2;       /* keep_private_optim: moments of the private suffix of full */
    uint64_t *ksteps;       /* [n_clients] their step counts */
    size_t n_priv;          /* floats of full's private suffix */
    int n_workers;
    sim_worker *w;          /* [n_workers] */
    uint32_t *ids;          /* [n_clients] this round's clients */
    uint32_t k;             /* how many */
    double *loss;           /* [n_clients] per position in ids */
    uint64_t *examples, *up, *down; /* [n_clients] */
    bool *done;             /* [n_clients] position trained (clients with data) */
    bool wire;              /* encode + decode every update (default) */
    int user_t[FR_MODEL_MAX_TENSORS]; /* user tables of full, slab order */
    int n_user_t;
};

void fr_sim_free(fr_sim *s) {
    if (!s) return;
    if (s->w)
        for (int i = 0; i < s->n_workers; i++) {
            fr_client_ws_free(s->w[i].ws);
            fr_update_free(s->w[i].up);
            fr_update_free(s->w[i].in);
            fri_free(s->w[i].buf);
            fri_free(s->w[i].users);
            fri_free(s->w[i].rows);
        }
    fri_free(s->w);
    fr_server_free(s->server);
    fr_model_free(s->full);
    fr_pool_free(s->own_pool);
    fri_free(s->ids);
    fri_free(s->loss);
    fri_free(s->examples);
    fri_free(s->up);
    fri_free(s->down);
    fri_free(s->done);
    fri_free(s->part_ptr);
    fri_free(s->part_users);
    fri_free(s->km1);
    fri_free(s->km2);
    fri_free(s->ksteps);
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

fr_err fr_sim_create_silos(fr_sim **out, const fr_model_config *mcfg, const fr_fl_config *cfg, const fr_dataset *train,
                           const fr_partition *part, fr_pool *pool) {
    *out = NULL;
    if (!train || fr_dataset_n_users(train) == 0 || fr_dataset_n_items(train) == 0)
        return fri_fail(FR_ERR_EMPTY, "federated training: the training set has no user or no item");
    fr_sim *s = fri_calloc(1, sizeof *s);
    if (!s) return FR_ERR_NOMEM;
    s->cfg = *cfg;
    s->mcfg = *mcfg;
    s->mcfg.n_users = fr_dataset_n_users(train);
    s->mcfg.n_items = fr_dataset_n_items(train);
    s->mcfg.seed = cfg->seed;
    s->train = train;
    s->wire = true;
    s->n_clients = s->mcfg.n_users;
    fr_err e = FR_OK;
    if (part) e = take_partition(s, part);
    if (e) goto fail;
    if (!pool) { e = fr_pool_create(&s->own_pool, 1); pool = s->own_pool; }
    if (e) goto fail;
    s->pool = pool;
    s->n_workers = fr_pool_size(pool);
    e = fr_server_create(&s->server, &s->mcfg, cfg, s->n_workers);
    if (!e) e = fr_model_create(&s->full, &s->mcfg);
    if (e) goto fail;
    size_t n = s->n_clients;
    s->ids = fri_malloc(n * sizeof *s->ids);
    s->loss = fri_malloc(n * sizeof *s->loss);
    s->examples = fri_malloc(n * sizeof *s->examples);
    s->up = fri_malloc(n * sizeof *s->up);
    s->down = fri_malloc(n * sizeof *s->down);
    s->done = fri_malloc(n * sizeof *s->done);
    s->w = fri_calloc((size_t)s->n_workers, sizeof *s->w);
    e = FR_ERR_NOMEM;
    if (!s->ids || !s->loss || !s->examples || !s->up || !s->down || !s->done || !s->w) goto fail;
    for (int i = 0; i < s->n_workers; i++) {
        e = fr_client_ws_create(&s->w[i].ws, &s->mcfg, cfg);
        if (!e) e = fr_update_create(&s->w[i].up);
        if (!e) e = fr_update_create(&s->w[i].in);
        if (e) goto fail;
    }
    for (int t = 0; t < fr_model_n_tensors(s->full); t++)
        if (fr_model_tensor(s->full, t)->kind == FR_TENSOR_USER_TABLE) s->user_t[s->n_user_t++] = t;
    s->n_priv = fr_model_n_params(s->full) - fr_model_n_shared(s->full);
    if (cfg->keep_private_optim) {
        s->km1 = fri_calloc(s->n_priv ? s->n_priv : 1, sizeof *s->km1);
        s->km2 = fri_calloc(s->n_priv ? s->n_priv : 1, sizeof *s->km2);
        s->ksteps = fri_calloc(n, sizeof *s->ksteps);
        e = FR_ERR_NOMEM;
        if (!s->km1 || !s->km2 || !s->ksteps) goto fail;
    }
    *out = s;
    return FR_OK;
fail:
    fr_sim_free(s);
    return e;
}

fr_server *fr_sim_server(fr_sim *s) { return s->server; }
void fr_sim_set_wire(fr_sim *s, bool encode) { s->wire = encode; }

fr_model *fr_sim_model(fr_sim *s) {
    fr_model_set_shared(s->full, fr_model_params_const(fr_server_model(s->server)));
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

static fr_err run_client(fr_sim *s, size_t pos, int worker) {
    sim_worker *w = &s->w[worker];
    uint32_t c = s->ids[pos];
    s->done[pos] = false;
    /* the client's users: itself, or its silo's */
    uint32_t U = s->part_ptr ? (uint32_t)(s->part_ptr[c + 1] - s->part_ptr[c]) : 1;
    if (U == 0) return FR_OK; /* an empty silo: no update */
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
    if (total == 0) return FR_OK; /* nothing to learn from: no update */
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
            size_t off = tt->offset + (size_t)w->users[j].user * tt->cols;
            rows[i * U + j] = p + off;
            if (s->km1) { m1[i * U + j] = s->km1 + (off - ns); m2[i * U + j] = s->km2 + (off - ns); }
        }
    }
    fr_client_private priv = {rows, s->km1 ? m1 : NULL, s->km1 ? m2 : NULL, s->ksteps ? &s->ksteps[c] : NULL};
    fr_client_report rep;
    uint32_t round = fr_server_round(s->server) + 1;
    e = fr_client_fit(w->ws, round, c, &d, fr_server_model(s->server), &priv, w->up, &rep);
    if (e) return e;
    size_t need = fr_update_encoded_size(w->up), len = need;
    if (!s->wire) {
        e = fr_server_accept(s->server, w->up, worker);
        if (e) return e;
        goto report;
    }
    if (need > w->cap) {
        uint8_t *b = fri_realloc(w->buf, need);
        if (!b) return FR_ERR_NOMEM;
        w->buf = b;
        w->cap = need;
    }
    e = fr_update_encode_to(w->up, w->buf, w->cap, &len);
    if (!e) e = fr_update_decode_into(w->in, w->buf, len, fr_server_shape(s->server));
    if (!e) e = fr_server_accept(s->server, w->in, worker);
    if (e) return e;
report:
    s->loss[pos] = rep.loss_sum;
    s->examples[pos] = rep.examples;
    s->up[pos] = len;
    s->down[pos] = rep.bytes_down;
    s->done[pos] = true;
    return FR_OK;
}

static void task(void *ctx, size_t index, int worker) {
    fr_sim *s = ctx;
    sim_worker *w = &s->w[worker];
    if (w->err) return;
    fr_err e = run_client(s, index, worker);
    if (e) {
        w->err = e;
        snprintf(w->msg, sizeof w->msg, "client %u: %s", s->ids[index], fr_errmsg());
    }
}

fr_err fr_sim_round(fr_sim *s, fr_round_stats *st) {
    memset(st, 0, sizeof *st);
    uint32_t round = fr_server_round(s->server) + 1;
    fr_err e = fr_server_sample(s->server, round, s->n_clients, s->ids, &s->k);
    if (e) return e;
    fr_server_begin_round(s->server);
    for (int i = 0; i < s->n_workers; i++) s->w[i].err = FR_OK;
    fr_pool_for(s->pool, s->k, 1, task, s);
    for (int i = 0; i < s->n_workers; i++)
        if (s->w[i].err) return fri_fail(s->w[i].err, "round %u: %s", round, s->w[i].msg);
    e = fr_server_end_round(s->server);
    if (e) return e;
    double loss = 0;
    for (uint32_t i = 0; i < s->k; i++) {
        if (!s->done[i]) continue;
        st->clients++;
        loss += s->loss[i];
        st->examples += s->examples[i];
        st->bytes_up += s->up[i];
        st->bytes_down += s->down[i];
    }
    st->round = round;
    st->loss = st->examples ? loss / (double)st->examples : NAN;
    return FR_OK;
}

/* ------------------------------------------------------------------ checkpoints */

/* Layout (little-endian), version 2:
 *   "FRCKPT\0\0" | u32 version | u32 round | u64 seed | u32 strategy | u64 n_shared
 *   | u32 has_m | u32 has_v | u32 n_clients | u32 partition CRC-32C (0: a user each)
 *   | f32 m[n_shared] if has_m | f32 v[n_shared] if has_v | u64 model length | model file
 *   | u32 has_kept | if has_kept: u64 n_priv | f32 m1[n_priv] | f32 m2[n_priv]
 *     | u64 steps[n_clients]
 *   | u32 CRC-32C of everything before it.
 * Version 1 (no clients, partition or kept state) still loads into a sim of one user per
 * client without keep_private_optim. */
#define CKPT_MAGIC "FRCKPT\0\0"
#define CKPT_VERSION 2

fr_err fr_sim_checkpoint_save(fr_sim *s, const char *path) {
    fr_model *m = fr_sim_model(s);
    fr_model_meta meta = {0};
    fr_server_state st;
    fr_server_state_get(s->server, &st);
    meta.round = st.round;
    meta.seed = s->cfg.seed;
    uint8_t *mb = NULL;
    size_t mn = 0;
    fr_err e = fr_model_encode(m, &meta, &mb, &mn);
    if (e) return e;
    size_t ns = fr_model_n_shared(m);
    fri_buf b = {0};
    fri_buf_put(&b, CKPT_MAGIC, 8);
    fri_buf_u32(&b, CKPT_VERSION);
    fri_buf_u32(&b, st.round);
    fri_buf_u64(&b, s->cfg.seed);
    fri_buf_u32(&b, (uint32_t)s->cfg.strategy);
    fri_buf_u64(&b, ns);
    fri_buf_u32(&b, st.m ? 1 : 0);
    fri_buf_u32(&b, st.v ? 1 : 0);
    fri_buf_u32(&b, s->n_clients);
    fri_buf_u32(&b, s->part_ptr ? s->part_crc : 0);
    for (size_t i = 0; st.m && i < ns; i++) fri_buf_f32(&b, st.m[i]);
    for (size_t i = 0; st.v && i < ns; i++) fri_buf_f32(&b, st.v[i]);
    fri_buf_u64(&b, mn);
    fri_buf_put(&b, mb, mn);
    fr_model_bytes_free(mb);
    fri_buf_u32(&b, s->km1 ? 1 : 0);
    if (s->km1) {
        fri_buf_u64(&b, s->n_priv);
        for (size_t i = 0; i < s->n_priv; i++) fri_buf_f32(&b, s->km1[i]);
        for (size_t i = 0; i < s->n_priv; i++) fri_buf_f32(&b, s->km2[i]);
        for (uint32_t c = 0; c < s->n_clients; c++) fri_buf_u64(&b, s->ksteps[c]);
    }
    if (!b.err) fri_buf_u32(&b, fr_crc32c(0, b.data, b.len));
    e = b.err;
    if (!e) e = fri_write_file_atomic(path, b.data, b.len);
    fri_buf_free(&b);
    return e;
}

fr_err fr_sim_checkpoint_load(fr_sim *s, const char *path) {
    uint8_t *d = NULL;
    size_t n = 0;
    fr_err e = fri_read_file(path, &d, &n);
    if (e) return e;
    fr_model *m = NULL;
    size_t ns = fr_model_n_shared(s->full);
    const size_t fixed1 = 8 + 4 + 4 + 8 + 4 + 8 + 4 + 4, fixed2 = fixed1 + 4 + 4;
    if (n < fixed1 + 8 + 4 || memcmp(d, CKPT_MAGIC, 8) != 0) {
        e = fri_fail(FR_ERR_FORMAT, "%s: not a fedrec checkpoint (bad magic or too short: %zu bytes)", path, n);
        goto done;
    }
    if (fri_get_u32(d + n - 4) != fr_crc32c(0, d, n - 4)) {
        e = fri_fail(FR_ERR_CHECKSUM, "%s: checkpoint is damaged (CRC-32C mismatch)", path);
        goto done;
    }
    const uint8_t *p = d + 8, *end = d + n - 4;
    uint32_t ver = fri_get_u32(p), round = fri_get_u32(p + 4);
    uint64_t seed = fri_get_u64(p + 8);
    uint32_t strat = fri_get_u32(p + 16);
    uint64_t cns = fri_get_u64(p + 20);
    uint32_t has_m = fri_get_u32(p + 28), has_v = fri_get_u32(p + 32);
    if (ver != 1 && ver != CKPT_VERSION) {
        e = fri_fail(FR_ERR_VERSION, "%s: checkpoint version %u, expected 1 or %d", path, ver, CKPT_VERSION);
        goto done;
    }
    if (ver >= 2 && n < fixed2 + 8 + 4 + 4) {
        e = fri_fail(FR_ERR_FORMAT, "%s: checkpoint too short (%zu bytes)", path, n);
        goto done;
    }
    uint32_t nc = ver >= 2 ? fri_get_u32(p + 36) : s->mcfg.n_users, pcrc = ver >= 2 ? fri_get_u32(p + 40) : 0;
    p = d + (ver >= 2 ? fixed2 : fixed1);
    if (seed != s->cfg.seed || strat != (uint32_t)s->cfg.strategy || cns != ns) {
        e = fri_fail(FR_ERR_INVALID,
                     "%s: checkpoint of another run (seed %llu, strategy %s, %llu shared parameters; this run: "
                     "seed %llu, strategy %s, %zu)",
                     path, (unsigned long long)seed, fr_strategy_name((fr_strategy)strat), (unsigned long long)cns,
                     (unsigned long long)s->cfg.seed, fr_strategy_name(s->cfg.strategy), ns);
        goto done;
    }
    if (nc != s->n_clients || pcrc != (s->part_ptr ? s->part_crc : 0)) {
        e = fri_fail(FR_ERR_INVALID, "%s: checkpoint of another partition (%u clients%s; this run: %u clients%s)",
                     path, nc, pcrc ? ", silos" : ", a user each", s->n_clients,
                     s->part_ptr ? ", silos" : ", a user each");
        goto done;
    }
    fr_server_state st;
    fr_server_state_get(s->server, &st);
    if ((has_m != 0) != (st.m != NULL) || (has_v != 0) != (st.v != NULL) || has_m > 1 || has_v > 1) {
        e = fri_fail(FR_ERR_FORMAT, "%s: server moments do not match the strategy", path);
        goto done;
    }
    size_t body = (size_t)(end - p);
    size_t mom = ((size_t)has_m + has_v) * ns * 4;
    if (body < mom + 8) { e = fri_fail(FR_ERR_FORMAT, "%s: checkpoint truncated in the server moments", path); goto done; }
    const uint8_t *mp = p;
    p += mom;
    uint64_t mn = fri_get_u64(p);
    p += 8;
    size_t left = (size_t)(end - p);
    if (ver == 1 ? mn != (uint64_t)left : mn + 4 > (uint64_t)left) {
        e = fri_fail(FR_ERR_FORMAT, "%s: model length %llu, %zu bytes remain", path, (unsigned long long)mn, left);
        goto done;
    }
    e = fr_model_decode(&m, p, (size_t)mn, path, NULL);
    if (e) goto done;
    if (fr_model_n_params(m) != fr_model_n_params(s->full) || fr_model_n_shared(m) != ns) {
        e = fri_fail(FR_ERR_INVALID, "%s: checkpoint model has %zu parameters, this run's has %zu", path,
                     fr_model_n_params(m), fr_model_n_params(s->full));
        goto done;
    }
    p += mn;
    /* the kept optimizer state of the private rows */
    uint32_t has_kept = ver >= 2 ? fri_get_u32(p) : 0;
    if (ver >= 2) p += 4;
    if ((has_kept != 0) != (s->km1 != NULL) || has_kept > 1) {
        e = fri_fail(FR_ERR_INVALID, "%s: checkpoint %s the clients' kept optimizer state; this run %s it", path,
                     has_kept ? "holds" : "lacks", s->km1 ? "keeps" : "does not keep");
        goto done;
    }
    size_t want = has_kept ? 8 + s->n_priv * 8 + (size_t)s->n_clients * 8 : 0;
    if ((size_t)(end - p) != want || (has_kept && fri_get_u64(p) != s->n_priv)) {
        e = fri_fail(FR_ERR_FORMAT, "%s: %zu bytes of kept client state, expected %zu", path, (size_t)(end - p),
                     want);
        goto done;
    }
    for (size_t i = 0; has_m && i < ns; i++) st.m[i] = fri_get_f32(mp + 4 * i);
    mp += has_m ? ns * 4 : 0;
    for (size_t i = 0; has_v && i < ns; i++) st.v[i] = fri_get_f32(mp + 4 * i);
    if (has_kept) {
        const uint8_t *k = p + 8;
        for (size_t i = 0; i < s->n_priv; i++) s->km1[i] = fri_get_f32(k + 4 * i);
        k += 4 * s->n_priv;
        for (size_t i = 0; i < s->n_priv; i++) s->km2[i] = fri_get_f32(k + 4 * i);
        k += 4 * s->n_priv;
        for (uint32_t c = 0; c < s->n_clients; c++) s->ksteps[c] = fri_get_u64(k + 8 * (size_t)c);
    }
    memcpy(fr_model_params(s->full), fr_model_params_const(m), fr_model_n_params(m) * sizeof(float));
    fr_model_set_shared(fr_server_model(s->server), fr_model_params_const(m));
    fr_server_set_round(s->server, round);
done:
    fr_model_free(m);
    fri_free(d);
    return e;
}
