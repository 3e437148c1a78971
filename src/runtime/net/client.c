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
#include <sodium.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>

#include "core/core.h"
#include "fedrec/net.h"
#include "fedrec/privacy.h"
#include "runtime/net/netc_internal.h"
#include "runtime/net/netlog.h"
#include "runtime/net/pack.h"
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
    int thread;              /* the load generator's thread that ticks it */
    /* the secure session of the round it is in (sa NULL: none) */
    fr_sa_client *sa;
    uint32_t sa_round;
    uint8_t sa_ticket[FRI_NET_TICKET_BYTES];
    int sa_next;             /* the stage of the SA_DOWN it waits for (1..3) */
    int64_t *sa_x;           /* [sa_len] its round's dense vector */
    size_t sa_len, sa_cap;
    fri_secure_header sa_h;  /* its RESULT's header */
} vclient;

/* Leaves the secure session (wiping its secrets); dropped counts one that did not finish. */
static void sa_leave(vclient *v, bool dropped) {
    if (!v->sa) return;
    fr_sa_client_free(v->sa);
    v->sa = NULL;
    if (v->sa_x) sodium_memzero(v->sa_x, v->sa_cap * sizeof *v->sa_x);
    if (dropped) v->stats.sa_dropped++;
    else v->stats.sa_done++;
}

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

/* The calling thread's CPU seconds. */
static double cpu_s(void) {
    struct timespec ts;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)) return 0;
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* A step's clocks at its start; report() gives its record to c->on_compute. */
typedef struct step_clock {
    double wall, cpu;
} step_clock;

static step_clock clock_start(void) { return (step_clock){now_s(), cpu_s()}; }

/* The step's wall seconds (also returned), reported with its CPU seconds. */
static double report(const fr_net_client_config *c, const vclient *v, uint32_t round, fr_net_step step, step_clock t0) {
    double end = now_s(), wall = end - t0.wall;
    if (c->on_compute) {
        fr_net_compute r = {.client = v->id, .round = round, .thread = v->thread, .step = step,
                            .wall_seconds = wall, .cpu_seconds = cpu_s() - t0.cpu, .end_seconds = end};
        c->on_compute(c->compute_user, &r);
    }
    return wall;
}

void fr_net_client_config_default(fr_net_client_config *c) {
    memset(c, 0, sizeof *c);
    c->timeout_ms = 30000;
    c->give_up_ms = 300000;
    c->evaluate = true;
    c->save_state = true;
    c->dial_stall_ms = 15000;
    c->long_poll = true;
    c->fetch_rows = true;
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
    e = fri_net_decode_on(*rep, *rn, SIZE_MAX, fri_net_client_tls(v->tx), m);
    if (e) { fri_net_reply_free(*rep); *rep = NULL; return fri_fail_prefix(e, "the server's reply"); }
    v->last_reply = fri_net_now_ms();
    return FR_OK;
}

/* exchange, tried up to 4 times 100, 200 and 400 ms apart while the round may still take
 * the message; the last error is returned. */
static fr_err exchange_retried(const fr_net_client_config *c, vclient *v, const fri_buf *req, uint8_t **rep,
                               size_t *rn, fri_net_msg *m) {
    for (int attempt = 0;; attempt++) {
        fr_err e = exchange(c, v, req, rep, rn, m);
        if (!e || attempt >= 3) return e;
        nng_msleep((nng_duration)100u << attempt);
    }
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

/* Sends client v's secagg message of stage st (out[0, n); the RESULT's header with the
 * masked input), retried while the stage may still take it. Whether it was accepted. */
static bool sa_send(const fr_net_client_config *c, vclient *v, fri_net_log *lg, fri_buf *req, int st,
                    const uint8_t *out, size_t n) {
    fri_net_msg u = {.type = FRI_NET_SA_UP};
    u.sa_up.client = v->id;
    u.sa_up.round = v->sa_round;
    u.sa_up.ticket = v->sa_ticket;
    u.sa_up.stage = (uint8_t)st;
    if (st == FR_SA_MASK) {
        u.sa_up.config_crc = v->sa_h.config_crc;
        u.sa_up.flags = v->sa_h.flags;
        u.sa_up.weight = v->sa_h.weight;
        u.sa_up.examples = v->sa_h.examples;
        u.sa_up.loss_sum = v->sa_h.loss_sum;
    }
    u.sa_up.body = out;
    u.sa_up.body_len = n;
    fr_err e = fri_net_encode(req, &u);
    if (e) { fri_net_logf(lg, 1, "client %u: round %u: %s", v->id, v->sa_round, fr_errmsg()); return false; }
    uint8_t *rep = NULL;
    size_t rn = 0;
    fri_net_msg m;
    if ((e = exchange_retried(c, v, req, &rep, &rn, &m))) {
        fri_net_logf(lg, 1, "client %u: round %u: secure aggregation stage %d not delivered: %s", v->id, v->sa_round,
                     st, fr_errmsg());
        return false;
    }
    bool ok = m.type == FRI_NET_ACK && m.ack.status == FRI_NET_ACK_ACCEPTED;
    if (!ok && m.type == FRI_NET_ACK) {
        char t[FRI_NET_TEXT_MAX + 1];
        size_t tl = m.ack.text_len < FRI_NET_TEXT_MAX ? m.ack.text_len : FRI_NET_TEXT_MAX;
        if (tl) memcpy(t, m.ack.text, tl);
        t[tl] = 0;
        fri_net_logf(lg, 1, "client %u: round %u: secure aggregation stage %d not taken: %s", v->id, v->sa_round, st, t);
    }
    fri_net_reply_free(rep);
    return ok;
}

static double now_s(void);

/* An SA_TASK: train as for a TASK, turn the RESULT into the round's dense vector, join the
 * session and send the public keys. Returns the reply buffer still to free (or NULL). */
static uint8_t *sa_task(const fr_net_client_config *c, vclient *v, fri_net_log *lg, fri_buf *req, const fri_net_msg *m,
                        uint8_t *rep, fr_netc_scratch *sc) {
    sa_leave(v, true); /* a session it was still in is over */
    uint32_t round = m->sa_task.round;
    v->sa_round = round;
    memcpy(v->sa_ticket, m->sa_task.ticket, FRI_NET_TICKET_BYTES);
    fr_sa_params p = {.n = m->sa_task.n, .k = m->sa_task.k, .t = m->sa_task.t, .len = m->sa_task.len,
                      .bound = m->sa_task.bound, .session = m->sa_task.session, .graph_seed = m->sa_task.graph_seed};
    uint32_t party = m->sa_task.party;
    const uint8_t *res = NULL;
    size_t resn = 0;
    if (c->delay_ms) nng_msleep((nng_duration)c->delay_ms);
    step_clock t0 = clock_start();
    fr_err e = fr_netc_step_shared(v->st, sc, m->sa_task.body, m->sa_task.body_len, &res, &resn);
    fri_net_reply_free(rep);
    size_t len = e ? 0 : fri_netc_dense_len(v->st);
    if (!e && len != p.len)
        e = fri_fail(FR_ERR_FORMAT, "the session's vectors have %llu words, the round's have %zu",
                     (unsigned long long)p.len, len);
    if (!e && len > v->sa_cap) {
        int64_t *x = fri_realloc(v->sa_x, len * sizeof *x);
        if (!x) e = FR_ERR_NOMEM;
        else { v->sa_x = x; v->sa_cap = len; }
    }
    if (!e) e = fri_netc_densify(v->st, res, resn, v->sa_x, len, &v->sa_h);
    if (!e && c->save_state) e = fr_netc_save(v->st); /* before anything of the step leaves */
    v->stats.compute_seconds += report(c, v, round, FR_NET_STEP_TRAIN, t0);
    if (e) { failed(v, e, "client %u: round %u: %s", v->id, round, fr_errmsg()); return NULL; }
    v->sa_len = len;
    v->stats.tasks++;
    step_clock t1 = clock_start();
    uint8_t *out = NULL;
    size_t on = 0;
    e = fr_sa_client_create(&v->sa, &p, party);
    if (!e) e = fr_sa_client_advertise(v->sa, &out, &on);
    v->stats.sa_key_seconds += report(c, v, round, FR_NET_STEP_SA_KEYS, t1);
    if (e) {
        fri_net_logf(lg, 1, "client %u: round %u: secure aggregation: %s", v->id, round, fr_errmsg());
        sa_leave(v, true);
    } else if (sa_send(c, v, lg, req, FR_SA_ADVERTISE, out, on)) v->sa_next = FR_SA_SHARE;
    else sa_leave(v, true);
    fr_sa_bytes_free(out, on);
    v->next_at = fri_net_now_ms();
    return NULL;
}

/* An SA_DOWN: the next step of the session, answered at once. */
static uint8_t *sa_down(const fr_net_client_config *c, vclient *v, fri_net_log *lg, fri_buf *req, const fri_net_msg *m,
                        uint8_t *rep) {
    int st = m->sa_down.stage;
    if (!v->sa || m->sa_down.round != v->sa_round || st != v->sa_next) {
        /* a session it does not hold (a restarted process) or out of step: it has dropped out */
        sa_leave(v, true);
        v->next_at = fri_net_now_ms() + 100;
        return rep;
    }
    if (st == FR_SA_UNMASK && c->drop_unmask) {
        fri_net_logf(lg, 0, "client %u: round %u: drops out before its unmasking answer", v->id, v->sa_round);
        sa_leave(v, true);
        v->next_at = fri_net_now_ms();
        return rep;
    }
    if (st == FR_SA_UNMASK && c->delay_unmask_ms) {
        fri_net_logf(lg, 0, "client %u: round %u: waiting %u ms before its unmasking answer", v->id, v->sa_round,
                     c->delay_unmask_ms);
        nng_msleep((nng_duration)c->delay_unmask_ms);
    }
    uint8_t *out = NULL;
    size_t on = 0;
    step_clock t0 = clock_start();
    fr_err e = st == FR_SA_SHARE ? fr_sa_client_share(v->sa, m->sa_down.body, m->sa_down.body_len, &out, &on)
             : st == FR_SA_MASK  ? fr_sa_client_mask(v->sa, v->sa_x, m->sa_down.body, m->sa_down.body_len, &out, &on)
                                 : fr_sa_client_unmask(v->sa, m->sa_down.body, m->sa_down.body_len, &out, &on);
    double dt = report(c, v, v->sa_round,
                       st == FR_SA_SHARE ? FR_NET_STEP_SA_SHARE : st == FR_SA_MASK ? FR_NET_STEP_SA_MASK
                                                                   : FR_NET_STEP_SA_UNMASK, t0);
    if (st == FR_SA_SHARE) v->stats.sa_key_seconds += dt;
    else if (st == FR_SA_MASK) v->stats.sa_mask_seconds += dt;
    else v->stats.sa_unmask_seconds += dt;
    fri_net_reply_free(rep);
    if (e) {
        fri_net_logf(lg, 1, "client %u: round %u: secure aggregation stage %d: %s", v->id, v->sa_round, st, fr_errmsg());
        sa_leave(v, true);
    } else if (!sa_send(c, v, lg, req, st, out, on)) sa_leave(v, true);
    else if (st == FR_SA_MASK) { v->stats.results++; v->sa_next = FR_SA_UNMASK; }
    else if (st == FR_SA_UNMASK) sa_leave(v, false);
    else v->sa_next = st + 1;
    fr_sa_bytes_free(out, on);
    v->next_at = fri_net_now_ms();
    return NULL;
}

/* Rows on request: asks for the rows ids[0, k) of round `round` and fills them into the
 * scratch's rows TASK. 1: filled; 0: not now (late, refused, or no reply: the tick ends and
 * the client says hello again); -1: failed (v is marked). */
static int fetch_rows(const fr_net_client_config *c, vclient *v, fri_net_log *lg, fri_buf *req, fr_netc_scratch *sc,
                      uint32_t round, const uint8_t *ticket, const uint32_t *ids, size_t k) {
    if (k > UINT32_MAX) { failed(v, FR_ERR_RANGE, "client %u: %zu rows to ask for", v->id, k); return -1; }
    fri_buf idb = {0};
    for (size_t i = 0; i < k; i++) fri_buf_u32(&idb, ids[i]);
    if (idb.err) { fri_buf_free(&idb); failed(v, FR_ERR_NOMEM, "client %u: out of memory", v->id); return -1; }
    fri_net_msg q = {.type = FRI_NET_ROWS_REQ, .flags = fri_net_client_tls(v->tx) ? FRI_NET_FLAG_HEADER_CRC : 0};
    q.rows_req.client = v->id;
    q.rows_req.round = round;
    q.rows_req.ticket = ticket;
    q.rows_req.count = (uint32_t)k;
    q.rows_req.ids = idb.data;
    fr_err e = fri_net_encode(req, &q);
    fri_buf_free(&idb);
    if (e) { failed(v, e, "client %u: %s", v->id, fr_errmsg()); return -1; }
    uint8_t *rep = NULL;
    size_t rn = 0;
    fri_net_msg m;
    if ((e = exchange_retried(c, v, req, &rep, &rn, &m))) {
        fri_net_logf(lg, 1, "client %u: round %u: no rows: %s", v->id, round, fr_errmsg());
        return 0;
    }
    int rc = 0;
    if (m.type == FRI_NET_ROWS && m.rows.round == round && m.rows.count == k) {
        e = fri_netc_fill_rows(sc, ids, k, m.rows.body, m.rows.body_len);
        if (e) { failed(v, e, "client %u: round %u: the rows: %s", v->id, round, fr_errmsg()); rc = -1; }
        else rc = 1;
    } else if (m.type == FRI_NET_ROWS) {
        failed(v, FR_ERR_FORMAT, "client %u: round %u: asked for %zu rows, the server answered %u rows of round %u",
               v->id, round, k, m.rows.count, m.rows.round);
        rc = -1;
    } else if (m.type == FRI_NET_ACK) {
        v->stats.late++; /* the round closed (or the request was refused): nothing to train on */
    } else if (m.type == FRI_NET_REFUSE && m.refuse.code != FRI_NET_REFUSE_BUSY) {
        char t[FRI_NET_TEXT_MAX + 1];
        refuse_text(&m, t, sizeof t);
        failed(v, FR_ERR_INVALID, "client %u: the server refused its rows request: %s (%s)", v->id,
               fri_net_refuse_code_name(m.refuse.code), t);
        rc = -1;
    }
    fri_net_reply_free(rep);
    return rc;
}

/* One tick of client v: an exchange and what follows it (a step on the thread's scratch). */
static void tick(const fr_net_client_config *c, vclient *v, fri_net_log *lg, fri_buf *req, fri_buf *pk,
                 fr_netc_scratch *sc, bool hold) {
    uint64_t now = fri_net_now_ms();
    fri_net_msg hello = {.type = FRI_NET_HELLO};
    hello.hello.client = v->id;
    hello.hello.caps = c->evaluate ? FRI_NET_CAP_EVAL : 0;
    if (hold && c->long_poll && v->sa) hello.hello.caps |= FRI_NET_CAP_HOLD;
    /* rows on request, unless it evaluates: its evaluation reads its held-out items' rows */
    if (c->fetch_rows && !(c->evaluate && v->test)) hello.hello.caps |= FRI_NET_CAP_ROWS;
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
        e = m.done.model_len ? fr_netc_sync_shared(v->st, sc, m.done.model, m.done.model_len) : FR_OK;
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
        /* a rows TASK: the rows the step reads, from the server */
        const uint32_t *ids = NULL;
        size_t k = 0;
        e = fri_netc_plan_rows(v->st, sc, m.task.body, m.task.body_len, &ids, &k);
        if (e) {
            fri_net_reply_free(rep);
            failed(v, e, "client %u: round %u: %s", v->id, round, fr_errmsg());
            return;
        }
        if (k) {
            int got = fetch_rows(c, v, lg, req, sc, round, ticket, ids, k);
            if (got <= 0) {
                fri_net_reply_free(rep);
                if (got == 0) v->next_at = fri_net_now_ms() + 100;
                return;
            }
        }
        step_clock t0 = clock_start();
        e = fr_netc_step_shared(v->st, sc, m.task.body, m.task.body_len, &res, &resn);
        fri_net_eval ev = {0};
        if (!e && c->evaluate && v->test && !fr_netc_dp(v->st)) e = evaluate(v, &ev); /* DP: nothing beyond the update */
        if (!e && c->save_state) e = fr_netc_save(v->st); /* before the RESULT leaves */
        v->stats.compute_seconds += report(c, v, round, FR_NET_STEP_TRAIN, t0);
        fri_net_reply_free(rep);
        rep = NULL;
        if (e) { failed(v, e, "client %u: round %u: %s", v->id, round, fr_errmsg()); return; }
        /* over TLS the envelope's CRC covers its header only (wire.h): the records' AEAD
         * tags cover every byte, the fl RESULT keeps its own CRC */
        fri_net_msg r = {.type = FRI_NET_RESULT, .flags = fri_net_client_tls(v->tx) ? FRI_NET_FLAG_HEADER_CRC : 0};
        r.result.client = v->id;
        r.result.round = round;
        r.result.ticket = ticket;
        r.result.eval = ev;
        r.result.body = res;
        r.result.body_len = resn;
        /* its int64 words in the fewest bytes per block (pack.h): about half the bytes */
        if (fri_pack_result(res, resn, pk) && !pk->err) {
            r.flags |= FRI_NET_FLAG_PACKED;
            r.result.body = pk->data;
            r.result.body_len = pk->len;
        }
        pk->err = FR_OK;
        if ((e = fri_net_encode(req, &r))) { failed(v, e, "client %u: %s", v->id, fr_errmsg()); return; }
        /* the RESULT, retried while the round may still take it */
        if ((e = exchange_retried(c, v, req, &rep, &rn, &m))) {
            fri_net_logf(lg, 1, "client %u: round %u: the result was not delivered: %s", v->id, round, fr_errmsg());
            v->next_at = fri_net_now_ms() + 100;
            return;
        }
        if (m.type == FRI_NET_ACK) {
            if (m.ack.status == FRI_NET_ACK_ACCEPTED) v->stats.results++;
            else v->stats.late++;
        }
        v->stats.tasks++;
        v->next_at = fri_net_now_ms();
        break;
    }
    case FRI_NET_SA_TASK:
        rep = sa_task(c, v, lg, req, &m, rep, sc);
        break;
    case FRI_NET_SA_DOWN:
        rep = sa_down(c, v, lg, req, &m, rep);
        break;
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

/* One tick of client v, counting it out of g->left when it stops (hold: it may ask the
 * server to hold its HELLO until the next stage opens). */
static void gen_tick(gen *g, vclient *v, fri_buf *req, fri_buf *pk, fr_netc_scratch *sc, bool hold) {
    tick(g->c, v, &g->lg, req, pk, sc, hold);
    if (v->state != VC_RUN) {
        atomic_fetch_sub(&g->left, 1);
        if (v->state == VC_FAILED) fri_net_logf(&g->lg, 1, "%s", v->why);
    }
}

/* Whether a session of the same round on this thread (first, first + step, ...) other than
 * v is due now and still owes the stage v has answered (it waits for that stage's SA_DOWN,
 * one before the one v waits for): the server cannot open v's next stage before it answers
 * (or the stage's deadline passes, by when it is no longer due). */
static bool owed_by_mate(const gen *g, const vclient *v, uint32_t first, uint32_t step, uint64_t now) {
    if (v->sa_next <= FR_SA_SHARE) return false; /* the keys' stage: the mates' SA_TASKs are not known here */
    for (uint32_t j = first; j < g->n; j += step) {
        const vclient *w = &g->v[j];
        if (w != v && w->state == VC_RUN && w->sa && w->sa_round == v->sa_round && w->sa_next == v->sa_next - 1 &&
            w->next_at <= now)
            return true;
    }
    return false;
}

static void *gen_main(void *arg) {
    gen_thread *gt = arg;
    gen *g = gt->g;
    fri_buf req = {0}, pk = {0};
    fr_netc_scratch *sc = NULL;
    if (fr_netc_scratch_create(&sc)) { /* out of memory: its clients fail */
        for (uint32_t i = (uint32_t)gt->t; i < g->n; i += (uint32_t)g->threads) {
            failed(&g->v[i], FR_ERR_NOMEM, "client %u: out of memory", g->v[i].id);
            atomic_fetch_sub(&g->left, 1);
        }
        return NULL;
    }
    /* Clients in a secure session first: each of their stages waits for every party, so
     * one of them queued behind hundreds of idle clients' polls would hold up the whole
     * round (separate devices would answer at once). Idle clients are then ticked in
     * bursts of at most IDLE_BURST from a rotating cursor (each still ticks when due, in
     * turn), going back to the sessions between bursts. */
    enum { IDLE_BURST = 8 };
    const uint32_t first = (uint32_t)gt->t, step = (uint32_t)g->threads;
    const uint32_t mine = g->n > first ? (g->n - first + step - 1) / step : 0;
    uint32_t cursor = 0; /* the next idle client to look at: the cursor-th of this thread's */
    for (;;) {
        if (atomic_load(&g->stop)) break;
        uint64_t now = fri_net_now_ms(), next = UINT64_MAX;
        uint32_t running = 0, ticked = 0;
        for (uint32_t i = first; i < g->n; i += step) { /* the sessions */
            vclient *v = &g->v[i];
            if (v->state != VC_RUN) continue;
            running++;
            if (v->sa && v->next_at <= now && g->c->long_poll && owed_by_mate(g, v, first, step, now)) {
                /* The stage v has answered cannot close before a thread-mate that is due now
                 * answers it too: a device would be held by the server meanwhile (the long
                 * poll), so v does not poll; it is ticked once the mates are through. */
                if (v->next_at < next) next = v->next_at;
                continue;
            }
            if (v->sa && v->next_at <= now) {
                /* A long poll holds this thread: only when every session of the thread waits
                 * for the same stage (none of them has a stage to answer that the one held
                 * would keep waiting). When the stage opens for one, it is open for all the
                 * thread's others that wait for it: they ask at once (as devices held by the
                 * server would be answered at once). */
                bool together = true;
                const uint32_t round = v->sa_round;
                const int waits = v->sa_next;
                for (uint32_t j = first; together && j < g->n; j += step) {
                    const vclient *w = &g->v[j];
                    if (w != v && w->state == VC_RUN && w->sa && (w->sa_round != round || w->sa_next != waits))
                        together = false;
                }
                gen_tick(g, v, &req, &pk, sc, together);
                ticked++;
                now = fri_net_now_ms();
                if (g->c->long_poll && (!v->sa || v->sa_round != round || v->sa_next != waits))
                    for (uint32_t j = first; j < g->n; j += step) {
                        vclient *w = &g->v[j];
                        if (w != v && w->state == VC_RUN && w->sa && w->sa_round == round && w->sa_next == waits &&
                            w->next_at > now)
                            w->next_at = now;
                    }
            }
            if (v->state == VC_RUN && v->sa && v->next_at < next) next = v->next_at;
        }
        if (!running) break;
        uint32_t idle = 0;
        for (uint32_t seen = 0; seen < mine && idle < IDLE_BURST; seen++) { /* a burst of the others */
            vclient *v = &g->v[first + (size_t)cursor * step];
            cursor = cursor + 1 == mine ? 0 : cursor + 1;
            if (v->state != VC_RUN || v->sa) continue;
            if (v->next_at <= now) {
                gen_tick(g, v, &req, &pk, sc, false);
                idle++;
                now = fri_net_now_ms();
            }
            if (v->state == VC_RUN && v->next_at < next) next = v->next_at;
        }
        if (ticked || idle) continue; /* next is complete only after a lap without a tick */
        now = fri_net_now_ms();
        if (next > now) nng_msleep((nng_duration)(next - now > 50 ? 50 : next - now));
    }
    fri_buf_free(&req);
    fri_buf_free(&pk);
    fr_netc_scratch_free(sc);
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
        v->thread = (int)(i % (uint32_t)threads);
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
            total->sa_done += v->stats.sa_done;
            total->sa_dropped += v->stats.sa_dropped;
            total->sa_key_seconds += v->stats.sa_key_seconds;
            total->sa_mask_seconds += v->stats.sa_mask_seconds;
            total->sa_unmask_seconds += v->stats.sa_unmask_seconds;
        }
        sa_leave(v, false);
        fri_free(v->sa_x);
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
