/* Networked clients (fedrec/net.h): the exchange loop of one client process, and the load
 * generator that runs many clients in one process over the same loop.
 *
 * A client is a small state machine, one exchange per tick: HELLO -> WAIT (sleep as
 * told), TASK (train with fr_netc, answer with a RESULT, read the ACK), DONE (keep the
 * final model, stop) or REFUSE (stop, unless the server is busy). A request that gets no
 * reply (server down, connection lost) is retried after a backoff; the transport
 * reconnects by itself. The client's state is saved after every step, before its RESULT
 * is sent, so a client killed at any point restarts from its last step.
 *
 * The load generator gives each of T threads a share of the clients and ticks whichever
 * is due; each client has its own connection, as separate devices would. */
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>

#include "core/core.h"
#include "fedrec/net.h"
#include "runtime/net/netlog.h"
#include "runtime/net/transport.h"
#include "runtime/net/wire.h"

typedef enum { VC_RUN, VC_DONE, VC_FAILED } vc_state;

typedef struct vclient {
    fr_netc *st;
    const fr_dataset *test;   /* its held-out data (NULL: no evaluation) */
    const fr_negatives *negs;
    uint32_t id;
    const char *token;
    fri_net_client *tx;
    uint64_t next_at;        /* monotonic ms of its next tick */
    uint32_t backoff_ms;     /* after a failed request */
    uint64_t last_reply;     /* monotonic ms of the last reply */
    vc_state state;
    fr_err err;              /* VC_FAILED: why */
    char why[256];
    fr_net_client_stats stats;
} vclient;

/* The client's own evaluation (fr_netc_evaluate) as a RESULT carries it: HR@10 and
 * NDCG@10 sums (the cut-off 10, or the nearest one evaluated) or squared errors. */
static fr_err evaluate(vclient *v, fri_net_eval *out) {
    fr_eval_sums s;
    fr_err e = fr_netc_evaluate(v->st, v->test, v->negs, NULL, &s);
    if (e == FR_ERR_EMPTY || e == FR_ERR_STATE) return FR_OK; /* nothing to evaluate: report none */
    if (e) return e;
    if (s.kind == FR_EVAL_SUMS_RATING) {
        out->rated = s.ratings;
        out->sq_err_sum = s.ratings ? s.se : 0;
        return FR_OK;
    }
    size_t k = 0;
    for (size_t i = 0; i < s.n_ks; i++)
        if (s.ks[i] == 10 || (s.ks[k] != 10 && i > k)) k = i;
    if (!s.n_ks || s.users == 0) return FR_OK;
    out->users = (uint32_t)s.users;
    out->hit_sum = s.hr[k] > (double)s.users ? (double)s.users : s.hr[k];
    out->ndcg_sum = s.ndcg[k] > (double)s.users ? (double)s.users : s.ndcg[k];
    return FR_OK;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void fr_net_client_config_default(fr_net_client_config *c) {
    memset(c, 0, sizeof *c);
    c->timeout_ms = 30000;
    c->give_up_ms = 300000;
    c->evaluate = true;
    c->save_state = true;
    c->dial_stall_ms = 15000;
}

static fr_err config_check(const fr_net_client_config *c) {
    if (!c->connect) return fri_fail(FR_ERR_INVALID, "client: no server URL (--connect)");
    if (c->timeout_ms < 10) return fri_fail(FR_ERR_INVALID, "client: request timeout %d ms: expected >= 10", c->timeout_ms);
    return FR_OK;
}

static fr_err open_tx(const fr_net_client_config *c, fri_net_client **tx) {
    fri_net_client_opts o;
    fri_net_client_opts_default(&o);
    o.url = c->connect;
    o.ca_file = c->ca;
    o.server_name = c->server_name;
    o.cert_file = c->cert;
    o.key_file = c->key;
    o.insecure = c->insecure;
    o.dial_stall_ms = c->dial_stall_ms;
    return fri_net_client_open(tx, &o);
}

/* One request; on success *rep (decoded into m) must be freed with fri_net_reply_free. */
static fr_err exchange(const fr_net_client_config *c, vclient *v, const fri_buf *req, uint8_t **rep, size_t *rn,
                       fri_net_msg *m) {
    /* Not connected: a short wait tells whether the dialer got through, so that one thread
     * of the load generator is not held for the whole timeout by each of its clients while
     * the server is away (the request is tried again after the backoff). */
    int wait = c->timeout_ms;
    if (!fri_net_client_connected(v->tx) && wait > 1000) wait = 1000;
    fr_err e = fri_net_request(v->tx, req->data, req->len, rep, rn, wait);
    if (e) return e;
    v->stats.bytes_up += req->len;
    v->stats.bytes_down += *rn;
    e = fri_net_decode(*rep, *rn, SIZE_MAX, m);
    if (e) { fri_net_reply_free(*rep); *rep = NULL; return fri_fail_prefix(e, "the server's reply"); }
    v->last_reply = fri_net_now_ms();
    return FR_OK;
}

static void failed(vclient *v, fr_err e, const char *fmt, ...) {
    v->state = VC_FAILED;
    v->err = e;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v->why, sizeof v->why, fmt, ap);
    va_end(ap);
}

/* The REFUSE text, printable, for a message. */
static void refuse_text(const fri_net_msg *m, char *buf, size_t cap) {
    size_t n = m->refuse.text_len < cap - 1 ? m->refuse.text_len : cap - 1;
    memcpy(buf, m->refuse.text, n);
    buf[n] = '\0';
}

/* One tick of client v: an exchange and what follows it. */
static void tick(const fr_net_client_config *c, vclient *v, fri_net_log *lg, fri_buf *req) {
    uint64_t now = fri_net_now_ms();
    fri_net_msg hello = {.type = FRI_NET_HELLO};
    hello.hello.client = v->id;
    hello.hello.caps = c->evaluate ? FRI_NET_CAP_EVAL : 0;
    hello.hello.model_round = fr_netc_round(v->st);
    hello.hello.token = (const uint8_t *)v->token;
    hello.hello.token_len = (uint16_t)strlen(v->token);
    fr_err e = fri_net_encode(req, &hello);
    if (e) { failed(v, e, "client %u: %s", v->id, fr_errmsg()); return; }
    uint8_t *rep = NULL;
    size_t rn = 0;
    fri_net_msg m;
    e = exchange(c, v, req, &rep, &rn, &m);
    if (e) {
        v->stats.retries++;
        if (c->give_up_ms && now - v->last_reply > c->give_up_ms) {
            failed(v, e, "client %u: no reply from the server for %u s: %s", v->id, c->give_up_ms / 1000, fr_errmsg());
            return;
        }
        if (v->backoff_ms == 0 || v->stats.retries == 1) fri_net_logf(lg, 1, "client %u: %s; retrying", v->id, fr_errmsg());
        v->backoff_ms = v->backoff_ms ? (v->backoff_ms * 2 > 5000 ? 5000 : v->backoff_ms * 2) : 100;
        v->next_at = fri_net_now_ms() + v->backoff_ms;
        return;
    }
    v->backoff_ms = 0;
    switch (m.type) {
    case FRI_NET_WAIT:
        v->next_at = fri_net_now_ms() + m.wait.retry_ms;
        break;
    case FRI_NET_REFUSE: {
        char t[FRI_NET_TEXT_MAX + 1];
        refuse_text(&m, t, sizeof t);
        if (m.refuse.code == FRI_NET_REFUSE_BUSY) { v->next_at = fri_net_now_ms() + 1000; break; }
        failed(v, FR_ERR_INVALID, "client %u: the server refused it: %s (%s)", v->id,
               fri_net_refuse_code_name(m.refuse.code), t);
        break;
    }
    case FRI_NET_DONE:
        e = m.done.model_len ? fr_netc_sync(v->st, m.done.model, m.done.model_len) : FR_OK;
        if (!e && c->save_state) e = fr_netc_save(v->st);
        if (e) failed(v, e, "client %u: the final model: %s", v->id, fr_errmsg());
        else v->state = VC_DONE;
        v->stats.rounds_done = m.done.rounds_done;
        break;
    case FRI_NET_TASK: {
        uint32_t round = m.task.round;
        uint8_t ticket[FRI_NET_TICKET_BYTES];
        memcpy(ticket, m.task.ticket, sizeof ticket);
        const uint8_t *res = NULL;
        size_t resn = 0;
        if (c->delay_ms) nng_msleep((nng_duration)c->delay_ms);
        double t0 = now_s();
        e = fr_netc_step(v->st, m.task.body, m.task.body_len, &res, &resn);
        fri_net_eval ev = {0};
        if (!e && c->evaluate && v->test && !fr_netc_dp(v->st)) e = evaluate(v, &ev); /* DP: nothing beyond the update */
        if (!e && c->save_state) e = fr_netc_save(v->st); /* before the RESULT leaves */
        v->stats.compute_seconds += now_s() - t0;
        fri_net_reply_free(rep);
        rep = NULL;
        if (e) { failed(v, e, "client %u: round %u: %s", v->id, round, fr_errmsg()); return; }
        fri_net_msg r = {.type = FRI_NET_RESULT};
        r.result.client = v->id;
        r.result.round = round;
        r.result.ticket = ticket;
        r.result.eval = ev;
        r.result.body = res;
        r.result.body_len = resn;
        if ((e = fri_net_encode(req, &r))) { failed(v, e, "client %u: %s", v->id, fr_errmsg()); return; }
        /* the RESULT, retried while the round may still take it */
        for (int attempt = 0;; attempt++) {
            e = exchange(c, v, req, &rep, &rn, &m);
            if (!e) break;
            if (attempt >= 3) {
                fri_net_logf(lg, 1, "client %u: round %u: the result was not delivered: %s", v->id, round, fr_errmsg());
                v->next_at = fri_net_now_ms() + 100;
                return;
            }
            nng_msleep((nng_duration)100u << attempt);
        }
        if (m.type == FRI_NET_ACK) {
            if (m.ack.status == FRI_NET_ACK_ACCEPTED) v->stats.results++;
            else v->stats.late++;
        }
        v->stats.tasks++;
        v->next_at = fri_net_now_ms();
        break;
    }
    default:
        failed(v, FR_ERR_FORMAT, "client %u: the server answered a HELLO with a %s", v->id,
               fri_net_type_name(m.type));
        break;
    }
    fri_net_reply_free(rep);
}

/* ------------------------------------------------------------------ the loop over many */

typedef struct gen {
    const fr_net_client_config *c;
    vclient *v;
    uint32_t n;
    int threads;
    fri_net_log lg;
    atomic_uint left;
    atomic_bool stop;
} gen;

typedef struct gen_thread {
    gen *g;
    int t;
} gen_thread;

static void *gen_main(void *arg) {
    gen_thread *gt = arg;
    gen *g = gt->g;
    fri_buf req = {0};
    for (;;) {
        if (atomic_load(&g->stop)) break;
        uint64_t now = fri_net_now_ms(), next = UINT64_MAX;
        uint32_t running = 0;
        for (uint32_t i = (uint32_t)gt->t; i < g->n; i += (uint32_t)g->threads) {
            vclient *v = &g->v[i];
            if (v->state != VC_RUN) continue;
            running++;
            if (v->next_at <= now) {
                tick(g->c, v, &g->lg, &req);
                if (v->state != VC_RUN) {
                    atomic_fetch_sub(&g->left, 1);
                    if (v->state == VC_FAILED) fri_net_logf(&g->lg, 1, "%s", v->why);
                }
                now = fri_net_now_ms();
            }
            if (v->state == VC_RUN && v->next_at < next) next = v->next_at;
        }
        if (!running) break;
        now = fri_net_now_ms();
        if (next > now) nng_msleep((nng_duration)(next - now > 50 ? 50 : next - now));
    }
    fri_buf_free(&req);
    return NULL;
}

fr_err fr_net_clients_run(const fr_net_client_config *c, const fr_net_member *mem, uint32_t n, int threads,
                          fr_net_log_fn log, void *user, fr_net_client_stats *total) {
    if (total) memset(total, 0, sizeof *total);
    fr_err e = config_check(c);
    if (e) return e;
    if (n == 0) return fri_fail(FR_ERR_INVALID, "client: no client to run");
    if (threads < 1) threads = 1;
    if ((uint32_t)threads > n) threads = (int)n;
    gen g = {.c = c, .n = n, .threads = threads};
    fri_net_log_init(&g.lg, log, user);
    atomic_init(&g.left, n);
    atomic_init(&g.stop, false);
    g.v = fri_calloc(n, sizeof *g.v);
    gen_thread *gt = fri_calloc((size_t)threads, sizeof *gt);
    pthread_t *th = fri_calloc((size_t)threads, sizeof *th);
    if (!g.v || !gt || !th) e = FR_ERR_NOMEM;
    uint64_t now = fri_net_now_ms();
    for (uint32_t i = 0; !e && i < n; i++) {
        vclient *v = &g.v[i];
        v->st = mem[i].state;
        v->test = mem[i].test;
        v->negs = mem[i].negs;
        v->id = mem[i].id;
        v->token = mem[i].token;
        if (!v->token) e = fri_fail(FR_ERR_INVALID, "client %u: no token", v->id);
        if (!e) e = fri_sodium_init(); /* before threads */
        if (e) break;
        v->last_reply = now;
        v->next_at = now;
        e = open_tx(c, &v->tx);
    }
    int started = 0;
    for (int t = 0; !e && t < threads; t++) {
        gt[t].g = &g;
        gt[t].t = t;
        if (pthread_create(&th[t], NULL, gen_main, &gt[t]) != 0) {
            e = fri_fail(FR_ERR_NOMEM, "client: cannot start thread %d of %d", t + 1, threads);
            atomic_store(&g.stop, true);
            break;
        }
        started++;
    }
    for (int t = 0; t < started; t++) pthread_join(th[t], NULL);
    uint32_t failed_n = 0;
    const vclient *first = NULL;
    for (uint32_t i = 0; g.v && i < n; i++) {
        vclient *v = &g.v[i];
        fri_net_client_close(v->tx);
        if (v->state == VC_FAILED && !first) first = v;
        failed_n += v->state == VC_FAILED;
        if (total) {
            total->tasks += v->stats.tasks;
            total->results += v->stats.results;
            total->late += v->stats.late;
            total->retries += v->stats.retries;
            total->bytes_up += v->stats.bytes_up;
            total->bytes_down += v->stats.bytes_down;
            total->compute_seconds += v->stats.compute_seconds;
            if (v->stats.rounds_done > total->rounds_done) total->rounds_done = v->stats.rounds_done;
        }
    }
    if (!e && first)
        e = fri_fail(first->err ? first->err : FR_ERR_IO, "%s%s", first->why,
                     failed_n > 1 ? " (and other clients failed too)" : "");
    fri_free(g.v);
    fri_free(gt);
    fri_free(th);
    fri_net_log_destroy(&g.lg);
    return e;
}

fr_err fr_net_client_run(const fr_net_client_config *c, const fr_net_member *m, fr_net_log_fn log, void *user,
                         fr_net_client_stats *stats) {
    return fr_net_clients_run(c, m, 1, 1, log, user, stats);
}
