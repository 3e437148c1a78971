/* The `sim` runtime: a federation in one process. Every user of the training set is a
 * client; clients of a round run on an fr_pool, each worker with its own client scratch;
 * each update is encoded to bytes (counted as bytes up) and decoded with the server's
 * shape before the server accumulates it, exactly as a networked server would.
 *
 * Invariants:
 *   - The runtime holds no learning math: sampling, fitting and aggregation are
 *     fr_server_* and fr_client_fit.
 *   - The client-state store is the private suffix of `full` (one user row per client):
 *     row c is handed only to client c's fit; the shared prefix of `full` is synced from
 *     the server only when someone asks for the model (eval, model file, checkpoint).
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
    fri_free(s);
}

fr_err fr_sim_create(fr_sim **out, const fr_model_config *mcfg, const fr_fl_config *cfg, const fr_dataset *train,
                     fr_pool *pool) {
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

static fr_err run_client(fr_sim *s, size_t pos, int worker) {
    sim_worker *w = &s->w[worker];
    uint32_t c = s->ids[pos];
    const uint32_t *items;
    const float *ratings;
    size_t n = fr_dataset_user(s->train, c, &items, &ratings, NULL);
    s->done[pos] = false;
    if (n == 0) return FR_OK; /* nothing to learn from: no update */
    fr_client_data d = {c, items, ratings, n, s->mcfg.n_items};
    float *priv[FR_MODEL_MAX_TENSORS];
    float *p = fr_model_params(s->full);
    for (int i = 0; i < s->n_user_t; i++) {
        const fr_tensor *tt = fr_model_tensor(s->full, s->user_t[i]);
        priv[i] = p + tt->offset + (size_t)c * tt->cols;
    }
    fr_client_report rep;
    uint32_t round = fr_server_round(s->server) + 1;
    fr_err e = fr_client_fit(w->ws, round, c, &d, fr_server_model(s->server), priv, w->up, &rep);
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

#define CKPT_MAGIC "FRCKPT\0\0"
#define CKPT_VERSION 1

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
    for (size_t i = 0; st.m && i < ns; i++) fri_buf_f32(&b, st.m[i]);
    for (size_t i = 0; st.v && i < ns; i++) fri_buf_f32(&b, st.v[i]);
    fri_buf_u64(&b, mn);
    fri_buf_put(&b, mb, mn);
    fr_model_bytes_free(mb);
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
    const size_t fixed = 8 + 4 + 4 + 8 + 4 + 8 + 4 + 4;
    if (n < fixed + 8 + 4 || memcmp(d, CKPT_MAGIC, 8) != 0) {
        e = fri_fail(FR_ERR_FORMAT, "%s: not a fedrec checkpoint (bad magic or too short: %zu bytes)", path, n);
        goto done;
    }
    if (fri_get_u32(d + n - 4) != fr_crc32c(0, d, n - 4)) {
        e = fri_fail(FR_ERR_CHECKSUM, "%s: checkpoint is damaged (CRC-32C mismatch)", path);
        goto done;
    }
    const uint8_t *p = d + 8;
    uint32_t ver = fri_get_u32(p), round = fri_get_u32(p + 4);
    uint64_t seed = fri_get_u64(p + 8);
    uint32_t strat = fri_get_u32(p + 16);
    uint64_t cns = fri_get_u64(p + 20);
    uint32_t has_m = fri_get_u32(p + 28), has_v = fri_get_u32(p + 32);
    p = d + fixed;
    if (ver != CKPT_VERSION) {
        e = fri_fail(FR_ERR_VERSION, "%s: checkpoint version %u, expected %d", path, ver, CKPT_VERSION);
        goto done;
    }
    if (seed != s->cfg.seed || strat != (uint32_t)s->cfg.strategy || cns != ns) {
        e = fri_fail(FR_ERR_INVALID,
                     "%s: checkpoint of another run (seed %llu, strategy %s, %llu shared parameters; this run: "
                     "seed %llu, strategy %s, %zu)",
                     path, (unsigned long long)seed, fr_strategy_name((fr_strategy)strat), (unsigned long long)cns,
                     (unsigned long long)s->cfg.seed, fr_strategy_name(s->cfg.strategy), ns);
        goto done;
    }
    fr_server_state st;
    fr_server_state_get(s->server, &st);
    if ((has_m != 0) != (st.m != NULL) || (has_v != 0) != (st.v != NULL) || has_m > 1 || has_v > 1) {
        e = fri_fail(FR_ERR_FORMAT, "%s: server moments do not match the strategy", path);
        goto done;
    }
    size_t body = (size_t)(d + n - 4 - p);
    size_t mom = ((size_t)has_m + has_v) * ns * 4;
    if (body < mom + 8) { e = fri_fail(FR_ERR_FORMAT, "%s: checkpoint truncated in the server moments", path); goto done; }
    const uint8_t *mp = p;
    p += mom;
    uint64_t mn = fri_get_u64(p);
    p += 8;
    if (mn != (uint64_t)(d + n - 4 - p)) {
        e = fri_fail(FR_ERR_FORMAT, "%s: model length %llu, %zu bytes remain", path, (unsigned long long)mn,
                     (size_t)(d + n - 4 - p));
        goto done;
    }
    e = fr_model_decode(&m, p, (size_t)mn, path, NULL);
    if (e) goto done;
    if (fr_model_n_params(m) != fr_model_n_params(s->full) || fr_model_n_shared(m) != ns) {
        e = fri_fail(FR_ERR_INVALID, "%s: checkpoint model has %zu parameters, this run's has %zu", path,
                     fr_model_n_params(m), fr_model_n_params(s->full));
        goto done;
    }
    for (size_t i = 0; has_m && i < ns; i++) st.m[i] = fri_get_f32(mp + 4 * i);
    mp += has_m ? ns * 4 : 0;
    for (size_t i = 0; has_v && i < ns; i++) st.v[i] = fri_get_f32(mp + 4 * i);
    memcpy(fr_model_params(s->full), fr_model_params_const(m), fr_model_n_params(m) * sizeof(float));
    fr_model_set_shared(fr_server_model(s->server), fr_model_params_const(m));
    fr_server_set_round(s->server, round);
done:
    fr_model_free(m);
    fri_free(d);
    return e;
}
