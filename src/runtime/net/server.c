/* The networked server (fedrec/net.h): the round controller behind a socket.
 *
 * Threads: the caller's thread runs the rounds (fr_net_server_run); the transport calls
 * handle() on nng's threads, several at once. One mutex guards the server's bookkeeping
 * (the controller's begin and end, the presence table, the tickets, the round's
 * evaluation sums); a RESULT is decoded and added outside it, on one of FRI_NET_LANES
 * accumulator lanes of its own (the controller's submit is safe per lane), and the round
 * thread stops new RESULTs and waits for those in progress before it ends a round. It
 * waits on a condition variable for enough clients, for the round's target, or for the
 * deadline, releasing the mutex meanwhile.
 *
 * Invariants:
 *   - A round is applied whole or not at all: fr_round_end below the quorum applies
 *     nothing and the same round number is tried again; an interrupted round is aborted.
 *   - A RESULT counts only with the ticket its TASK carried (16 random bytes per sampled
 *     client and round, compared in constant time), for the round open now; anything
 *     else is ACKed late or refused and changes nothing.
 *   - The state file is written after every applied round (temporary file, fsync,
 *     rename), so a killed server resumes from its last applied round.
 *   - No token, ticket or key reaches the log. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>

#include "core/core.h"
#include "fedrec/net.h"
#include "fedrec/privacy.h"
#include "fl/fl_internal.h"
#include "runtime/net/netlog.h"
#include "runtime/runtime_internal.h"
#include "runtime/net/pack.h"
#include "runtime/net/token.h"
#include "runtime/net/transport.h"
#include "runtime/net/wire.h"

/* Accumulator lanes of the controller: RESULTs are decoded and added by up to this many
 * handlers at once, each on its own lane, outside the mutex. */
#define FRI_NET_LANES 4

struct fr_net_server {
    fr_net_server_config c;
    char *state_path;
    fr_round *ctl;
    fri_tokens *tokens;
    fri_net_server *tx;
    uint32_t n_clients;
    fri_net_log lg;           /* the operator's log */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    /* presence: the monotonic ms of each client's last message (0: never) */
    uint64_t *seen;
    uint8_t *joined;          /* [n_clients] said hello at least once */
    uint8_t *done_sent;       /* [n_clients] had DONE */
    uint32_t *avail;          /* scratch: connected ids */
    /* the open round */
    bool open;
    uint32_t round;           /* its number */
    const uint32_t *ids;      /* sampled, increasing (the controller's) */
    uint32_t k, target;
    uint8_t *tickets;         /* [k * 16] */
    uint8_t *got;             /* [k] a result is in */
    uint8_t *busy;            /* [k] a TASK is out (counts as present) */
    uint8_t *pending;         /* [k] its RESULT (or masked input) is being added (outside the mutex) */
    uint8_t *was_on;          /* [k] DP: connected when the round began */
    uint32_t inflight;        /* RESULTs and masked inputs being added now */
    bool closing;             /* the round thread is ending the round: no new RESULT */
    int lanes[FRI_NET_LANES]; /* free accumulator lanes (a stack) */
    fri_buf unpacked[FRI_NET_LANES]; /* a lane's packed RESULT, unpacked (pack.h) */
    size_t max_result;        /* the largest RESULT a packed one may unpack to */
    int n_free;
    uint64_t deadline;        /* monotonic ms */
    uint64_t round_t0;        /* monotonic ms the open round began */
    uint64_t last_ms[3];      /* the last rounds' lengths, newest first (0: none); their
                                 shortest paces the WAITs of the clients a round did not
                                 sample (expected_round_ms) */
    bool tls;                 /* the transport is tls+tcp://: TASK and DONE carry a header CRC
                                 only, and a client's RESULT may (wire.h, FRI_NET_FLAG_HEADER_CRC) */
    bool task_crc_ok;         /* task_crc is the CRC-32C of the open round's TASK bytes */
    uint32_t task_crc;
    bool rows;                /* rows on request (a rows TASK to clients with FRI_NET_CAP_ROWS) */
    bool rows_crc_ok;         /* rows_crc is the CRC-32C of the open round's rows TASK */
    uint32_t rows_crc;
    uint32_t *rows_ids;       /* [n_items] a ROWS_REQ's ids (under the mutex) */
    fri_net_eval eval;        /* sums of the accepted results' evaluations */
    /* the end */
    bool finished;
    bool budget_spent;        /* DP: stopped at the target epsilon */
    bool dp;                  /* the federation is differentially private */
    uint8_t *done_msg;        /* the DONE message, once finished */
    size_t done_n;
    uint32_t done_want, done_count; /* clients that took part / had DONE */
    atomic_bool stop;
    fri_buf scratch;          /* the round thread's */
    /* secure aggregation (c.secagg): the open round's session, all under the mutex but a
     * masked input's O(vector) work (on_sa_masked), which is under sa_mu */
    pthread_mutex_t sa_mu;    /* one masked input at a time: its header into sa_res and
                                 sa_scratch, its words into the session's sum */
    bool sa_closing;          /* the mask stage is closing: no masked input begins */
    fr_sa_server *sa;         /* NULL outside a secure round */
    fr_sa_params sap;
    int sa_stage;             /* the stage whose messages are collected (fr_sa_stage 0..3) */
    uint64_t sa_stage_t0;     /* monotonic ms it opened */
    uint8_t *sa_level;        /* [k] stages answered by each party (0..4) */
    void **sa_held;           /* [k] a party's HELLO held until the next stage opens (the
                                 transport's handle, FRI_NET_HELD), or NULL */
    uint64_t *sa_held_until;  /* [k] monotonic ms at which it is answered WAIT at the latest */
    uint32_t sa_n_held;
    bool sa_broken;           /* a masked input was counted and summed but the session did
                                 not record it (cannot happen: its checks came first): abort */
    size_t sa_len;            /* words of the round's dense vector */
    int64_t *sa_sum;          /* [sa_len] the unmasked sum */
    int64_t *sa_scratch;      /* [sa_len] what accepting a header writes (discarded) */
    fr_result *sa_res;        /* a masked input's RESULT header, values zero */
    /* a promotion attack's fake clients (c.attack): ids n_clients .. n_clients + n_fake - 1 */
    fr_sim_attack atk;        /* kind NONE: none */
    uint32_t n_fake;
    uint32_t *ref_pop;        /* promote-pop: [atk.n_ref] its reference items */
    uint32_t *fref;           /* promote: [atk.n_ref] a fake's drawn ones */
    fr_update *fupd;          /* a fake's float update */
    fr_result *fres;          /* a fake's RESULT */
};

void fr_net_server_config_default(fr_net_server_config *c) {
    memset(c, 0, sizeof *c);
    c->rounds = 10;
    c->deadline_ms = 60000;
    c->retry_ms = 250;
    c->presence_ms = 15000;
    c->linger_ms = 10000;
    c->idle_ms = 30000;
    c->contexts = 64;
    c->secagg_stage_ms = 10000;
    c->handshake_ms = 15000;
}

static fr_err config_check(const fr_net_server_config *c) {
    if (!c->listen) return fri_fail(FR_ERR_INVALID, "server: no listen URL");
    if (!c->tokens) return fri_fail(FR_ERR_INVALID, "server: no token file (make one with fedrec tokens)");
    if (c->rounds == 0) return fri_fail(FR_ERR_INVALID, "server: rounds 0: expected at least 1");
    if (c->resume && !c->state) return fri_fail(FR_ERR_INVALID, "server: resume needs a state file");
    if (!(c->over_select >= 0) || !isfinite(c->over_select) || c->over_select > 10)
        return fri_fail(FR_ERR_INVALID, "server: over-selection %g: expected 0..10", c->over_select);
    if (c->deadline_ms < 10 || c->deadline_ms > FRI_NET_DEADLINE_MAX_MS)
        return fri_fail(FR_ERR_INVALID, "server: deadline %u ms: expected 10..%u", c->deadline_ms,
                        FRI_NET_DEADLINE_MAX_MS);
    if (c->retry_ms < 1 || c->retry_ms > FRI_NET_RETRY_MAX_MS)
        return fri_fail(FR_ERR_INVALID, "server: retry %u ms: expected 1..%u", c->retry_ms, FRI_NET_RETRY_MAX_MS);
    if (!(c->target_epsilon >= 0) || !isfinite(c->target_epsilon))
        return fri_fail(FR_ERR_INVALID, "server: target epsilon %g: expected a finite value >= 0 (0: none)",
                        c->target_epsilon);
    if (c->secagg && c->over_select != 0)
        return fri_fail(FR_ERR_INVALID, "server: over-selection %g with secure aggregation: every party's masked "
                        "input counts, so a round cannot take fewer results than it sampled", c->over_select);
    if (c->secagg && (c->secagg_stage_ms < 10 || c->secagg_stage_ms > FRI_NET_DEADLINE_MAX_MS))
        return fri_fail(FR_ERR_INVALID, "server: secure aggregation stage deadline %u ms: expected 10..%u",
                        c->secagg_stage_ms, FRI_NET_DEADLINE_MAX_MS);
    if (c->presence_ms < c->retry_ms)
        return fri_fail(FR_ERR_INVALID, "server: presence %u ms is shorter than the retry time %u ms: clients would "
                        "never count as connected", c->presence_ms, c->retry_ms);
    return FR_OK;
}

static void sa_release_all(fr_net_server *s, bool expired);

void fr_net_server_free(fr_net_server *s) {
    if (!s) return;
    uint64_t gave_up = fri_net_closes_abandoned();
    pthread_mutex_lock(&s->mu);
    sa_release_all(s, false); /* a held request is answered before the transport goes */
    pthread_mutex_unlock(&s->mu);
    fri_net_server_stop(s->tx); /* no handler runs after this */
    if (fri_net_closes_abandoned() > gave_up)
        fri_net_logf(&s->lg, 1, "nng's close did not finish within 10 s and was left running: nng 1.5.2 is wedged in "
                                "this process (a connection closed in the middle of a message; docs/ARCHITECTURE.md)");
    if (s->open) fr_round_abort(s->ctl);
    fr_round_free(s->ctl);
    fri_free(s->ref_pop);
    fri_free(s->fref);
    fr_update_free(s->fupd);
    fr_result_free(s->fres);
    fri_tokens_free(s->tokens);
    pthread_mutex_destroy(&s->mu);
    pthread_mutex_destroy(&s->sa_mu);
    pthread_cond_destroy(&s->cv);
    fri_net_log_destroy(&s->lg);
    fri_free(s->seen);
    fri_free(s->joined);
    fri_free(s->done_sent);
    fri_free(s->avail);
    fri_free(s->rows_ids);
    fri_free(s->tickets);
    fri_free(s->got);
    fri_free(s->busy);
    fri_free(s->pending);
    fri_free(s->was_on);
    fr_sa_server_free(s->sa);
    fri_free(s->sa_level);
    fri_free(s->sa_held);
    fri_free(s->sa_held_until);
    fri_free(s->sa_sum);
    fri_free(s->sa_scratch);
    fr_result_free(s->sa_res);
    fri_free(s->done_msg);
    for (int i = 0; i < FRI_NET_LANES; i++) fri_buf_free(&s->unpacked[i]);
    fri_free(s->state_path);
    fri_buf_free(&s->scratch);
    fri_free(s);
}

/* ------------------------------------------------------------------ replies */

/* m encoded into a fresh buffer the transport frees. */
static int reply_msg(const fri_net_msg *m, uint8_t **out, size_t *n) {
    fri_buf b = {0};
    if (fri_net_encode(&b, m) || b.err) { fri_buf_free(&b); return 1; }
    *out = b.data;
    *n = b.len;
    return 0;
}

static int reply_refuse(fri_net_refuse_code code, const char *text, uint8_t **out, size_t *n) {
    fri_net_msg m = {.type = FRI_NET_REFUSE};
    m.refuse.code = (uint8_t)code;
    m.refuse.text = (const uint8_t *)text;
    size_t tl = strlen(text);
    m.refuse.text_len = (uint16_t)(tl > FRI_NET_TEXT_MAX ? FRI_NET_TEXT_MAX : tl);
    return reply_msg(&m, out, n);
}

/* The length the open round is expected to take: the shortest of the last 3 rounds (0:
 * none yet). The shortest, because an idle client that sleeps past a round's end finds
 * the next one late. */
static uint64_t expected_round_ms(const fr_net_server *s) {
    uint64_t e = s->last_ms[0];
    for (int i = 1; i < 3; i++)
        if (s->last_ms[i] && s->last_ms[i] < e) e = s->last_ms[i];
    return e;
}

static int reply_wait(fr_net_server *s, fri_net_wait_reason why, uint8_t **out, size_t *n) {
    fri_net_msg m = {.type = FRI_NET_WAIT};
    m.wait.retry_ms = s->c.retry_ms;
    /* nothing for it before the next round: asked a few times a round, at most half the
     * presence time apart (it stays connected) and a quarter of the round's deadline (a
     * client sampled next is not found late) */
    if (why == FRI_NET_WAIT_NOT_SAMPLED && s->open) {
        uint32_t cap = s->c.presence_ms / 2 < s->c.deadline_ms / 4 ? s->c.presence_ms / 2 : s->c.deadline_ms / 4;
        m.wait.retry_ms = fri_net_idle_retry_ms(s->c.retry_ms, fri_net_now_ms() - s->round_t0, expected_round_ms(s), cap);
    }
    m.wait.rounds_done = fr_round_completed(s->ctl);
    m.wait.reason = (uint8_t)why;
    return reply_msg(&m, out, n);
}

static int reply_ack(uint32_t round, fri_net_ack_status st, const char *text, uint8_t **out, size_t *n) {
    fri_net_msg m = {.type = FRI_NET_ACK};
    m.ack.round = round ? round : 1;
    m.ack.status = (uint8_t)st;
    /* texts have no control characters: keep the first line of a library message */
    size_t tl = strcspn(text, "\r\n\t");
    m.ack.text = (const uint8_t *)text;
    m.ack.text_len = (uint16_t)(tl > FRI_NET_TEXT_MAX ? FRI_NET_TEXT_MAX : tl);
    return reply_msg(&m, out, n);
}

/* Position of client c among the round's sampled ids, or -1. */
static int64_t sampled_pos(const fr_net_server *s, uint32_t c) {
    uint32_t lo = 0, hi = s->k;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (s->ids[mid] < c) lo = mid + 1;
        else hi = mid;
    }
    return lo < s->k && s->ids[lo] == c ? (int64_t)lo : -1;
}

/* The position of client c in round r's sample when the ticket its message quotes is the
 * one of its TASK: then it is marked seen. Otherwise -1, logged as a refused WHAT from the
 * peer, with the refusal encoded into out and its return in *rc. */
static int64_t ticketed_pos(fr_net_server *s, uint32_t c, uint32_t r, const uint8_t *ticket, const fri_net_peer *peer,
                            const char *what, int *rc, uint8_t **out, size_t *n) {
    int64_t pos = sampled_pos(s, c);
    if (pos < 0 || sodium_memcmp(s->tickets + (size_t)pos * FRI_NET_TICKET_BYTES, ticket, FRI_NET_TICKET_BYTES) != 0) {
        fri_net_logf(&s->lg, 1, "refused a %s from %s: client %u, round %u: %s", what, peer->addr, c, r,
                     pos < 0 ? "not sampled" : "the ticket does not match its TASK");
        *rc = reply_ack(r, FRI_NET_ACK_REFUSED, pos < 0 ? "not sampled this round" : "ticket does not match", out, n);
        return -1;
    }
    s->seen[c] = fri_net_now_ms();
    return pos;
}

/* The ms left before the open stage's deadline (at least 1). */
static uint32_t ms_left(const fr_net_server *s) {
    uint64_t now = fri_net_now_ms();
    return s->deadline > now ? (uint32_t)(s->deadline - now) : 1;
}

static int sa_hello(fr_net_server *s, uint32_t c, uint32_t pos, uint32_t caps, const fri_net_peer *peer, uint8_t **out,
                    size_t *n);

/* Answers party pos's held HELLO (if any) as sa_hello would now, or with wait_ms (a WAIT
 * that has the client ask again, for one held past its time). Under the mutex. */
static void sa_release(fr_net_server *s, uint32_t pos, bool expired) {
    void *h = s->sa_held ? s->sa_held[pos] : NULL;
    if (!h) return;
    s->sa_held[pos] = NULL;
    s->sa_n_held--;
    uint8_t *b = NULL;
    size_t bn = 0;
    int rc;
    if (expired || !s->sa) {
        fri_net_msg m = {.type = FRI_NET_WAIT};
        m.wait.retry_ms = expired ? 0 : s->c.retry_ms;
        m.wait.rounds_done = fr_round_completed(s->ctl);
        m.wait.reason = FRI_NET_WAIT_HAVE_RESULT;
        rc = reply_msg(&m, &b, &bn);
    } else
        rc = sa_hello(s, s->ids[pos], pos, 0, NULL, &b, &bn);
    /* rc != 0 (out of memory): an empty reply, which the client takes as a failed request
       and retries after its backoff */
    fri_net_server_reply_held(h, rc ? NULL : b, rc ? 0 : bn);
    fri_free(b);
}

/* Answers every held HELLO (see sa_release). Under the mutex. */
static void sa_release_all(fr_net_server *s, bool expired) {
    for (uint32_t i = 0; s->sa_held && s->sa_n_held && i < s->k; i++) sa_release(s, i, expired);
}

/* Answers the held HELLOs whose time is up; the monotonic ms of the next one's (or
 * UINT64_MAX). Under the mutex. */
static uint64_t sa_release_expired(fr_net_server *s) {
    uint64_t now = fri_net_now_ms(), next = UINT64_MAX;
    for (uint32_t i = 0; s->sa_held && s->sa_n_held && i < s->k; i++) {
        if (!s->sa_held[i]) continue;
        if (s->sa_held_until[i] <= now) sa_release(s, i, true);
        else if (s->sa_held_until[i] < next) next = s->sa_held_until[i];
    }
    return next;
}

/* Whether party pos's HELLO may be held until the next stage opens: it asked (a client
 * with nothing else to do until then), the next stage is one of the session's, and in the
 * keys' stage every party has its SA_TASK already (a load generator's thread held on one
 * client must not be the one that would still fetch another's). Under the mutex. */
static bool sa_may_hold(const fr_net_server *s, uint32_t caps, const fri_net_peer *peer) {
    if (!(caps & FRI_NET_CAP_HOLD) || !peer || !peer->tx || !s->sa_held || s->closing) return false;
    if (s->sa_stage >= FR_SA_UNMASK) return false;
    if (s->sa_stage == FR_SA_ADVERTISE)
        for (uint32_t i = 0; i < s->k; i++)
            if (!s->sa_level[i] && !s->busy[i]) return false;
    return true;
}

/* A sampled client's HELLO in a secure round, under the mutex: the TASK with the session's
 * parameters in the keys' stage, the server's message of the stage open now, or WAIT
 * (FRI_NET_HELD: held until the next stage opens, for a client that asked, see
 * sa_may_hold). */
static int sa_hello(fr_net_server *s, uint32_t c, uint32_t pos, uint32_t caps, const fri_net_peer *peer, uint8_t **out,
                    size_t *n) {
    if (s->sa_level[pos] > (uint8_t)s->sa_stage) { /* answered: wait for the stage to close, at its pace */
        if (sa_may_hold(s, caps, peer)) {
            sa_release(s, pos, true); /* a request it held before (the client has moved on) */
            uint64_t now = fri_net_now_ms(), until = now + FRI_NET_HOLD_MAX_MS;
            if (s->deadline < until) until = s->deadline > now ? s->deadline : now;
            s->sa_held[pos] = peer->tx;
            s->sa_held_until[pos] = until;
            s->sa_n_held++;
            pthread_cond_broadcast(&s->cv); /* the round's loop wakes for its time */
            *out = NULL;
            *n = 0;
            return FRI_NET_HELD;
        }
        uint32_t answered = 0, outstanding = 0;
        for (uint32_t i = 0; i < s->k; i++) {
            if (s->sa_level[i] > (uint8_t)s->sa_stage) answered++;
            else if (fr_sa_server_has(s->sa, i)) outstanding++;
        }
        uint64_t now = fri_net_now_ms();
        fri_net_msg m = {.type = FRI_NET_WAIT};
        m.wait.retry_ms = fri_net_stage_retry_ms(s->c.retry_ms, now - s->sa_stage_t0, answered, outstanding);
        m.wait.rounds_done = fr_round_completed(s->ctl);
        m.wait.reason = FRI_NET_WAIT_HAVE_RESULT;
        return reply_msg(&m, out, n);
    }
    if (s->sa_stage == FR_SA_ADVERTISE) {
        const uint8_t *tb;
        size_t tn;
        if (fr_round_task(s->ctl, c, &tb, &tn)) return 1;
        fri_net_msg t = {.type = FRI_NET_SA_TASK};
        t.sa_task.round = s->round;
        t.sa_task.deadline_ms = ms_left(s);
        t.sa_task.ticket = s->tickets + (size_t)pos * FRI_NET_TICKET_BYTES;
        t.sa_task.party = pos;
        t.sa_task.n = s->sap.n;
        t.sa_task.k = s->sap.k;
        t.sa_task.t = s->sap.t;
        t.sa_task.len = s->sap.len;
        t.sa_task.bound = s->sap.bound;
        t.sa_task.session = s->sap.session;
        t.sa_task.graph_seed = s->sap.graph_seed;
        t.sa_task.body = tb;
        t.sa_task.body_len = tn;
        s->busy[pos] = 1;
        return reply_msg(&t, out, n);
    }
    if (!fr_sa_server_has(s->sa, pos)) return reply_wait(s, FRI_NET_WAIT_NOT_SAMPLED, out, n); /* dropped out */
    uint8_t *b = NULL;
    size_t bn = 0;
    if (fr_sa_server_message(s->sa, pos, &b, &bn)) return 1;
    fri_net_msg d = {.type = FRI_NET_SA_DOWN};
    d.sa_down.round = s->round;
    d.sa_down.deadline_ms = ms_left(s);
    d.sa_down.stage = (uint8_t)s->sa_stage;
    d.sa_down.body = b;
    d.sa_down.body_len = bn;
    int rc = reply_msg(&d, out, n);
    fr_sa_bytes_free(b, bn);
    return rc;
}

/* A TASK message written straight into the transport's reply (one copy of the body, no
 * staging buffer), its CRC from the body's, computed once per round. Under the mutex. */
static int reply_task(fr_net_server *s, const fri_net_msg *t, bool rows, const fri_net_peer *peer, uint8_t **out,
                      size_t *n) {
    bool *ok = rows ? &s->rows_crc_ok : &s->task_crc_ok;
    uint32_t *crc = rows ? &s->rows_crc : &s->task_crc;
    if (!*ok && !(t->flags & FRI_NET_FLAG_HEADER_CRC)) {
        *crc = fr_crc32c(0, t->task.body, t->task.body_len);
        *ok = true;
    }
    uint8_t pre[FRI_NET_PREFIX_MAX];
    size_t pn = 0;
    if (fri_net_encode_prefix_crc(t, *crc, pre, sizeof pre, &pn)) return 1;
    uint8_t *b = fri_net_reply_alloc(peer, pn + t->task.body_len);
    if (!b) return reply_msg(t, out, n); /* not the transport's server (tests), or no memory */
    memcpy(b, pre, pn);
    memcpy(b + pn, t->task.body, t->task.body_len);
    *out = b;
    *n = pn + t->task.body_len;
    return 0;
}

/* A HELLO, under the mutex. */
static int on_hello(fr_net_server *s, const fri_net_msg *m, const fri_net_peer *peer, uint8_t **out, size_t *n) {
    uint32_t c = m->hello.client;
    if (c >= s->n_clients) {
        fri_net_logf(&s->lg, 1, "refused %s: unknown client %u (the federation has %u)", peer->addr, c, s->n_clients);
        return reply_refuse(FRI_NET_REFUSE_UNKNOWN_CLIENT, "unknown client id", out, n);
    }
    fri_token_verdict tc = fri_tokens_check(s->tokens, c, m->hello.token, m->hello.token_len);
    if (tc != FRI_TOKEN_OK) {
        fri_net_logf(&s->lg, 1, "refused %s: client %u: %s", peer->addr, c,
              tc == FRI_TOKEN_UNKNOWN_CLIENT ? "no token on file for this client" : "wrong token");
        return reply_refuse(tc == FRI_TOKEN_UNKNOWN_CLIENT ? FRI_NET_REFUSE_UNKNOWN_CLIENT : FRI_NET_REFUSE_BAD_TOKEN,
                            tc == FRI_TOKEN_UNKNOWN_CLIENT ? "no token on file for this client id" : "wrong token", out, n);
    }
    s->seen[c] = fri_net_now_ms();
    if (!s->joined[c]) {
        s->joined[c] = 1;
        fri_net_logf(&s->lg, 0, "client %u joined from %s", c, peer->addr);
        pthread_cond_broadcast(&s->cv); /* a round may be waiting for clients */
    }
    if (s->finished) {
        if (!s->done_sent[c]) {
            s->done_sent[c] = 1;
            s->done_count++;
            pthread_cond_broadcast(&s->cv);
        }
        uint8_t *b = fri_malloc(s->done_n);
        if (!b) return 1;
        memcpy(b, s->done_msg, s->done_n);
        *out = b;
        *n = s->done_n;
        return 0;
    }
    if (!s->open) return reply_wait(s, FRI_NET_WAIT_NO_ROUND, out, n);
    int64_t pos = sampled_pos(s, c);
    if (pos < 0) return reply_wait(s, FRI_NET_WAIT_NOT_SAMPLED, out, n);
    if (s->sa) return sa_hello(s, c, (uint32_t)pos, m->hello.caps, peer, out, n);
    if (s->got[pos]) return reply_wait(s, FRI_NET_WAIT_HAVE_RESULT, out, n);
    if (fr_round_results(s->ctl) >= s->target) return reply_wait(s, FRI_NET_WAIT_ROUND_FULL, out, n);
    const uint8_t *tb;
    size_t tn;
    bool rows = s->rows && (m->hello.caps & FRI_NET_CAP_ROWS);
    if (rows ? fri_round_task_rows_at(s->ctl, c, (uint32_t)pos, &tb, &tn) : fr_round_task(s->ctl, c, &tb, &tn)) return 1;
    uint64_t now = fri_net_now_ms();
    fri_net_msg t = {.type = FRI_NET_TASK, .flags = s->tls ? FRI_NET_FLAG_HEADER_CRC : 0};
    t.task.round = s->round;
    t.task.deadline_ms = s->deadline > now ? (uint32_t)(s->deadline - now) : 1;
    t.task.ticket = s->tickets + (size_t)pos * FRI_NET_TICKET_BYTES;
    t.task.body = tb;
    t.task.body_len = tn;
    s->busy[pos] = 1;
    return reply_task(s, &t, rows, peer, out, n);
}

/* A ROWS_REQ, under the mutex: the rows of the round's global model (the one its rows TASK
 * came from: the model changes only when the round ends), written straight into the
 * reply. The request names rows the client's RESULT will carry anyway (docs/ARCHITECTURE.md,
 * "The downlink"), so it is answered only to a sampled client with its ticket. */
static int on_rows_req(fr_net_server *s, const fri_net_msg *m, const fri_net_peer *peer, uint8_t **out, size_t *n) {
    uint32_t c = m->rows_req.client, r = m->rows_req.round;
    if (c >= s->n_clients) return reply_refuse(FRI_NET_REFUSE_UNKNOWN_CLIENT, "unknown client id", out, n);
    if (!s->rows) return reply_refuse(FRI_NET_REFUSE_MALFORMED, "this server sends no rows on request", out, n);
    if (!s->open || r != s->round || s->closing) { /* nothing of the server changes: a rows request only reads */
        const bool early = r > s->round;
        fri_net_logf(&s->lg, 0, "rows request of client %u for round %u refused: that round %s", c, r,
                     early ? "has not begun" : "is closed");
        return reply_ack(r, FRI_NET_ACK_LATE, early ? "that round has not begun" : "late: that round is closed", out, n);
    }
    int rc;
    int64_t pos = ticketed_pos(s, c, r, m->rows_req.ticket, peer, "rows request", &rc, out, n);
    if (pos < 0) return rc;
    if (s->got[pos] || s->pending[pos])
        return reply_ack(r, FRI_NET_ACK_REFUSED, "a result of this client is already in", out, n);
    const fr_model *g = fr_round_model(s->ctl);
    uint32_t k = m->rows_req.count;
    if (k > fr_model_config_of(g)->n_items)
        return reply_refuse(FRI_NET_REFUSE_MALFORMED, "more rows than the catalogue has", out, n);
    for (uint32_t i = 0; i < k; i++) s->rows_ids[i] = fri_get_u32(m->rows_req.ids + 4 * (size_t)i);
    if (fri_task_rows_check(g, s->rows_ids, k)) {
        fri_net_logf(&s->lg, 1, "refused a rows request from %s: client %u: %s", peer->addr, c, fr_errmsg());
        return reply_refuse(FRI_NET_REFUSE_MALFORMED, fr_errmsg(), out, n);
    }
    size_t bn = fri_task_rows_bytes(g, k);
    uint8_t one = 0;
    fri_net_msg t = {.type = FRI_NET_ROWS, .flags = s->tls ? FRI_NET_FLAG_HEADER_CRC : 0};
    t.rows.round = r;
    t.rows.count = k;
    t.rows.body = &one; /* the prefix reads no body with a header CRC; else it is computed below */
    t.rows.body_len = bn;
    uint8_t pre[FRI_NET_PREFIX_MAX];
    size_t pn = 0;
    if (bn == 0 || bn == SIZE_MAX || bn > SIZE_MAX - FRI_NET_PREFIX_MAX) return 1;
    if (fri_net_encode_prefix_crc(&t, 0, pre, sizeof pre, &pn)) return 1; /* its length */
    uint8_t *b = fri_net_reply_alloc(peer, pn + bn);
    bool own = !b;
    if (own && !(b = fri_malloc(pn + bn))) return 1;
    fri_task_rows_put(b + pn, g, s->rows_ids, k);
    if (fri_net_encode_prefix_crc(&t, s->tls ? 0 : fr_crc32c(0, b + pn, bn), b, pn, &pn)) {
        if (own) fri_free(b); /* else the transport's, freed by it */
        return 1;
    }
    *out = b;
    *n = pn + bn;
    fri_round_count_down(s->ctl, pn + bn);
    return 0;
}

static bool eval_ok(const fri_net_eval *e) {
    return e->hit_sum <= e->users && e->ndcg_sum <= e->users; /* the decoder checked the rest */
}

/* A RESULT: checked and reserved under the mutex, decoded and added on a lane of its own
 * outside it (several at once), then recorded under the mutex again. Called with the
 * mutex held; returns with it held. */
static int on_result(fr_net_server *s, const fri_net_msg *m, const fri_net_peer *peer, uint8_t **out, size_t *n) {
    uint32_t c = m->result.client, r = m->result.round;
    if (c >= s->n_clients) return reply_refuse(FRI_NET_REFUSE_UNKNOWN_CLIENT, "unknown client id", out, n);
    if (!s->open || r != s->round || s->closing) {
        fri_net_logf(&s->lg, 0, "late result of client %u for round %u dropped", c, r);
        return reply_ack(r, FRI_NET_ACK_LATE, "late: that round is closed", out, n);
    }
    if (s->sa) return reply_ack(r, FRI_NET_ACK_REFUSED, "this round is under secure aggregation: no plain RESULT", out, n);
    int rc;
    int64_t pos = ticketed_pos(s, c, r, m->result.ticket, peer, "result", &rc, out, n);
    if (pos < 0) return rc;
    if (s->got[pos] || s->pending[pos])
        return reply_ack(r, FRI_NET_ACK_REFUSED, "a result of this client is already in", out, n);
    if (s->n_free == 0) return reply_refuse(FRI_NET_REFUSE_BUSY, "busy: try again", out, n);
    int lane = s->lanes[--s->n_free];
    s->pending[pos] = 1;
    s->inflight++;
    pthread_mutex_unlock(&s->mu);
    const uint8_t *body = m->result.body;
    size_t body_len = m->result.body_len;
    fr_err e = FR_OK;
    if (m->flags & FRI_NET_FLAG_PACKED) { /* the client's exact bytes again; the controller checks them */
        fri_buf *u = &s->unpacked[lane];
        e = fri_unpack_result(body, body_len, s->max_result, u);
        body = u->data;
        body_len = u->len;
    }
    if (!e) e = fr_round_submit(s->ctl, body, body_len, lane);
    char why[FRI_NET_TEXT_MAX + 1] = "";
    if (e) snprintf(why, sizeof why, "%s", fr_errmsg());
    pthread_mutex_lock(&s->mu);
    s->lanes[s->n_free++] = lane;
    s->pending[pos] = 0;
    s->inflight--;
    if (!e) {
        s->got[pos] = 1;
        s->busy[pos] = 0;
        if (eval_ok(&m->result.eval)) {
            s->eval.users += m->result.eval.users;
            s->eval.hit_sum += m->result.eval.hit_sum;
            s->eval.ndcg_sum += m->result.eval.ndcg_sum;
            s->eval.rated += m->result.eval.rated;
            s->eval.sq_err_sum += m->result.eval.sq_err_sum;
        }
    }
    if (s->inflight == 0 || fr_round_results(s->ctl) >= s->target) pthread_cond_broadcast(&s->cv);
    if (e == FR_ERR_STATE) return reply_ack(r, FRI_NET_ACK_LATE, why, out, n);
    if (e) {
        fri_net_logf(&s->lg, 1, "refused the result of client %u, round %u: %s", c, r, why);
        return reply_ack(r, FRI_NET_ACK_REFUSED, why, out, n);
    }
    return reply_ack(r, FRI_NET_ACK_ACCEPTED, "accepted", out, n);
}

/* Party pos's masked input (stage MASK), called with the mutex held; returns with it
 * held. Checked by the session and reserved under the mutex (pending, inflight; the
 * session refuses another of the party and will not close its stage meanwhile); then,
 * under sa_mu alone, so other requests are answered meanwhile, the two O(vector) steps:
 * its RESULT header accepted by the controller (its checks, the client counted, its loss
 * and examples; values zero: the values are in the masked sum) and, if accepted, its
 * words added to the session's sum (mod 2^64: in any order the same sum, so the round's
 * model is bit for bit that of the adds under the mutex); then recorded under the mutex. */
static int on_sa_masked(fr_net_server *s, const fri_net_msg *m, int64_t pos, uint8_t **out, size_t *n) {
    uint32_t c = m->sa_up.client, r = m->sa_up.round, id;
    const uint8_t *words;
    if (s->sa_closing) return reply_ack(r, FRI_NET_ACK_LATE, "late: the masked inputs' stage is closing", out, n);
    fr_err e = fr_sa_server_masked_begin(s->sa, m->sa_up.body, m->sa_up.body_len, &id, &words);
    if (!e && id != (uint32_t)pos) { /* on_sa_up checked the sender: cannot happen */
        e = fr_sa_server_masked_end(s->sa, id, false);
        if (!e) e = fri_fail(FR_ERR_FORMAT, "the masked input is not from this client's party");
    }
    if (e) {
        char why[FRI_NET_TEXT_MAX + 1];
        snprintf(why, sizeof why, "%s", fr_errmsg());
        fri_net_logf(&s->lg, 1, "refused the masked input of client %u, round %u: %s", c, r, why);
        return reply_ack(r, FRI_NET_ACK_REFUSED, why, out, n);
    }
    s->pending[pos] = 1;
    s->inflight++;
    const fr_update_shape *sh = fr_round_shape(s->ctl);
    fr_sa_server *sa = s->sa; /* kept while inflight > 0: the round thread quiesces first */
    pthread_mutex_unlock(&s->mu);
    pthread_mutex_lock(&s->sa_mu);
    fr_result *res = s->sa_res;
    e = fri_result_reset(res, sh->dense_len, sh->n_tables, sh->widths);
    if (!e) {
        if (sh->dense_len) memset(res->dense, 0, (size_t)sh->dense_len * sizeof *res->dense);
        res->client = c;
        res->round = r;
        res->config_crc = m->sa_up.config_crc;
        res->flags = m->sa_up.flags;
        res->weight = m->sa_up.weight;
        res->examples = m->sa_up.examples;
        res->loss_sum = m->sa_up.loss_sum;
        e = fri_round_accept_dense(s->ctl, res, m->sa_up.body_len, 0, s->sa_scratch);
    }
    if (!e) fr_sa_server_masked_add(sa, words);
    char why[FRI_NET_TEXT_MAX + 1] = "";
    if (e) snprintf(why, sizeof why, "%s", fr_errmsg());
    pthread_mutex_unlock(&s->sa_mu);
    pthread_mutex_lock(&s->mu);
    s->pending[pos] = 0;
    s->inflight--;
    fr_err ee = fr_sa_server_masked_end(sa, id, !e);
    if (ee && !e) s->sa_broken = true; /* counted by the controller and summed, but not in the session */
    pthread_cond_broadcast(&s->cv);
    if (e) {
        fri_net_logf(&s->lg, 1, "refused the masked input of client %u, round %u: %s", c, r, why);
        return reply_ack(r, FRI_NET_ACK_REFUSED, why, out, n);
    }
    if (ee) return reply_ack(r, FRI_NET_ACK_REFUSED, "the session did not take the masked input", out, n);
    s->sa_level[pos] = (uint8_t)(FR_SA_MASK + 1);
    s->got[pos] = 1;
    return reply_ack(r, FRI_NET_ACK_ACCEPTED, "accepted", out, n);
}

/* A client's secagg message (SA_UP), under the mutex: checked like a RESULT (the open
 * round, the ticket its SA_TASK carried, the stage open now, the party's own id as the
 * sender), then given to the session; a masked input by on_sa_masked. */
static int on_sa_up(fr_net_server *s, const fri_net_msg *m, const fri_net_peer *peer, uint8_t **out, size_t *n) {
    uint32_t c = m->sa_up.client, r = m->sa_up.round, st = m->sa_up.stage;
    if (c >= s->n_clients) return reply_refuse(FRI_NET_REFUSE_UNKNOWN_CLIENT, "unknown client id", out, n);
    if (!s->open || !s->sa || r != s->round || s->closing)
        return reply_ack(r, FRI_NET_ACK_LATE, "late: that round is closed", out, n);
    int rc;
    int64_t pos = ticketed_pos(s, c, r, m->sa_up.ticket, peer, "secagg message", &rc, out, n);
    if (pos < 0) return rc;
    if (st != (uint32_t)s->sa_stage || s->sa_level[pos] != st)
        return reply_ack(r, FRI_NET_ACK_LATE, "late: not the secure aggregation stage open now", out, n);
    /* the secagg header's sender (bytes 16..20) must be the party's own id */
    if (m->sa_up.body_len < FR_SA_HEADER_BYTES || fri_get_u32(m->sa_up.body + 16) != (uint32_t)pos)
        return reply_ack(r, FRI_NET_ACK_REFUSED, "the secagg message is not from this client's party", out, n);
    if (st == FR_SA_MASK) return on_sa_masked(s, m, pos, out, n);
    fr_err e = fr_sa_server_receive(s->sa, m->sa_up.body, m->sa_up.body_len);
    if (e) {
        char why[FRI_NET_TEXT_MAX + 1];
        snprintf(why, sizeof why, "%s", fr_errmsg());
        fri_net_logf(&s->lg, 1, "refused the secagg message (stage %u) of client %u, round %u: %s", st, c, r, why);
        return reply_ack(r, FRI_NET_ACK_REFUSED, why, out, n);
    }
    s->sa_level[pos] = (uint8_t)(st + 1);
    if (st == FR_SA_ADVERTISE) s->busy[pos] = 0;
    pthread_cond_broadcast(&s->cv);
    return reply_ack(r, FRI_NET_ACK_ACCEPTED, "accepted", out, n);
}

/* Stops new RESULTs and waits for those being added (under the mutex): then the round
 * may be ended or aborted. */
static void quiesce(fr_net_server *s) {
    s->closing = true;
    while (s->inflight > 0) pthread_cond_wait(&s->cv, &s->mu);
}

static int handle(void *ctx, const uint8_t *req, size_t n, uint8_t **reply, size_t *reply_n,
                  const fri_net_peer *peer) {
    fr_net_server *s = ctx;
    fri_net_msg m;
    size_t max = SIZE_MAX; /* the transport enforced the byte limit already */
    fr_err e = fri_net_decode_on(req, n, max, s->tls, &m);
    if (e) {
        fri_net_logf(&s->lg, 1, "refused %s: %s", peer->addr, fr_errmsg());
        return reply_refuse(fri_net_refuse_code_for(e), fr_errmsg(), reply, reply_n);
    }
    if (m.type != FRI_NET_HELLO && m.type != FRI_NET_RESULT && m.type != FRI_NET_SA_UP &&
        m.type != FRI_NET_ROWS_REQ) {
        fri_net_logf(&s->lg, 1, "refused %s: a %s from a client (clients send HELLO, RESULT, SA_UP and ROWS_REQ)",
                     peer->addr, fri_net_type_name(m.type));
        return reply_refuse(FRI_NET_REFUSE_MALFORMED, "a client sends HELLO, RESULT, SA_UP or ROWS_REQ", reply, reply_n);
    }
    pthread_mutex_lock(&s->mu);
    int rc = m.type == FRI_NET_HELLO      ? on_hello(s, &m, peer, reply, reply_n)
             : m.type == FRI_NET_RESULT   ? on_result(s, &m, peer, reply, reply_n)
             : m.type == FRI_NET_ROWS_REQ ? on_rows_req(s, &m, peer, reply, reply_n)
                                          : on_sa_up(s, &m, peer, reply, reply_n);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static void on_event(void *ctx, const fri_net_event *ev) {
    fr_net_server *s = ctx;
    int level = ev->kind == FRI_NET_EV_CONNECT || ev->kind == FRI_NET_EV_DISCONNECT ? -1 : 1;
    if (level < 0) return; /* a client's joining is logged once, at its first HELLO */
    fri_net_logf(&s->lg, level, "%s", ev->text);
}

/* ------------------------------------------------------------------ create */

fr_err fr_net_server_create(fr_net_server **out, const fr_net_server_config *c, const fr_model_config *mcfg,
                            const fr_fl_config *fcfg, uint32_t n_clients, fr_net_log_fn log, void *log_user) {
    *out = NULL;
    fr_err e = config_check(c);
    if (e) return e;
    if (n_clients == 0) return fri_fail(FR_ERR_INVALID, "server: a federation of no client");
    if (fr_fl_dp_on(fcfg) && c->over_select != 0)
        return fri_fail(FR_ERR_INVALID, "server: over-selection %g with differential privacy: DP rounds sample every "
                        "client of the federation with probability q (Poisson), as the accountant assumes", c->over_select);
    if (c->secagg && !fr_fl_dp_on(fcfg) && fri_fl_want(fcfg, n_clients) < 2)
        return fri_fail(FR_ERR_INVALID, "server: secure aggregation needs at least 2 clients a round, the federation's "
                        "rounds take %u", fri_fl_want(fcfg, n_clients));
    if (c->target_epsilon > 0 && !(fr_fl_dp_on(fcfg) && fcfg->dp_noise > 0))
        return fri_fail(FR_ERR_INVALID, "server: a target epsilon needs differential privacy with noise (dp_clip > 0, "
                        "dp_noise > 0)");
    uint32_t n_fake = 0;
    if (c->attack && c->attack->kind != FR_ATTACK_NONE) {
        const fr_sim_attack *a = c->attack;
        if (!fr_sim_attack_has_target(a))
            return fri_fail(FR_ERR_UNSUPPORTED, "server: attack '%s': poisoning real clients' results is not simulated "
                            "by the server (a real client's RESULT is its own bytes, which the server only checks and "
                            "adds); only the fake users of promote and promote-pop, which the server runs itself",
                            a->kind == FR_ATTACK_SCALE ? "scale" : a->kind == FR_ATTACK_SIGNFLIP ? "signflip" : "noise");
        if (fr_fl_dp_on(fcfg)) return fri_fail(FR_ERR_INVALID, "server: attack with DP: the clip would bound it (not simulated)");
        if (c->secagg)
            return fri_fail(FR_ERR_INVALID, "server: attack with secure aggregation: the fake clients would have to "
                            "be parties of the masking protocol (not simulated)");
        if (fri_result_compress_flags(fcfg))
            return fri_fail(FR_ERR_INVALID, "server: attack with uplink compression: not simulated");
        if ((e = fri_attack_fakes(a, n_clients, mcfg->n_items, &n_fake))) return fri_fail_prefix(e, "server");
        if (a->kind == FR_ATTACK_PROMOTE_POP && !c->popularity)
            return fri_fail(FR_ERR_INVALID, "server: attack promote-pop: the items' public popularity is needed (the "
                            "shard directory's popularity.txt)");
    }
    fr_err e0 = fri_sodium_init();
    if (e0) return e0;
    fr_net_server *s = fri_calloc(1, sizeof *s);
    if (!s) return FR_ERR_NOMEM;
    s->c = *c;
    s->c.attack = NULL;
    s->c.popularity = NULL; /* not kept */
    s->n_fake = n_fake;
    if (n_fake) s->atk = *c->attack;
    s->c.listen = s->c.cert = s->c.key = s->c.client_ca = s->c.tokens = NULL; /* not kept */
    s->n_clients = n_clients;
    s->dp = fr_fl_dp_on(fcfg);
    fri_net_log_init(&s->lg, log, log_user);
    pthread_mutex_init(&s->mu, NULL);
    pthread_mutex_init(&s->sa_mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    atomic_init(&s->stop, false);
    s->seen = fri_calloc(n_clients, sizeof *s->seen);
    s->joined = fri_calloc(n_clients, 1);
    s->done_sent = fri_calloc(n_clients, 1);
    s->avail = fri_calloc((size_t)n_clients + n_fake, sizeof *s->avail);
    s->state_path = c->state ? fri_strdup(c->state) : NULL;
    if (!s->seen || !s->joined || !s->done_sent || !s->avail || (c->state && !s->state_path)) {
        fr_net_server_free(s);
        return FR_ERR_NOMEM;
    }
    s->c.state = s->state_path;
    e = fr_round_create(&s->ctl, mcfg, fcfg, n_clients + n_fake, FRI_NET_LANES);
    /* rows on request where a client's request names only rows its RESULT names too: its
     * sparse rows in the clear (no secure aggregation, no decoys: their rows are drawn
     * after the fit) and the exact model (no quantized downlink) */
    s->rows = !c->full_downlink && !c->secagg && fcfg->decoys == 0 && fcfg->compress_down == 0;
    if (!e && s->rows) {
        fri_round_set_rows(s->ctl, true);
        if (!(s->rows_ids = fri_malloc(((size_t)mcfg->n_items + 1) * sizeof *s->rows_ids))) e = FR_ERR_NOMEM;
    }
    if (!e && n_fake) {
        s->fref = fri_malloc(((size_t)s->atk.n_ref + 1) * sizeof *s->fref);
        s->ref_pop = fri_malloc(((size_t)s->atk.n_ref + 1) * sizeof *s->ref_pop);
        e = s->fref && s->ref_pop ? FR_OK : FR_ERR_NOMEM;
        if (!e) e = fr_update_create(&s->fupd);
        if (!e) e = fr_result_create(&s->fres);
        if (!e && s->atk.kind == FR_ATTACK_PROMOTE_POP) e = fri_attack_ref_pop(&s->atk, c->popularity, mcfg->n_items, s->ref_pop);
        if (!e)
            fri_net_logf(&s->lg, 0, "attack %s of item %u: the server runs %u fake client%s (ids %u..%u) beside the %u "
                         "real one%s", s->atk.kind == FR_ATTACK_PROMOTE ? "promote" : "promote-pop", s->atk.target, n_fake,
                         fri_s(n_fake), n_clients, n_clients + n_fake - 1, n_clients, fri_s(n_clients));
    }
    for (int l = 0; l < FRI_NET_LANES; l++) s->lanes[s->n_free++] = l;
    if (!e) e = fri_tokens_load(&s->tokens, c->tokens);
    if (!e && c->resume) {
        uint8_t *d = NULL;
        size_t dn = 0;
        e = fri_read_file(c->state, &d, &dn);
        if (!e) e = fr_round_load(s->ctl, d, dn, c->state);
        fri_free(d);
        if (!e) fri_net_logf(&s->lg, 0, "resumed from %s after round %u", c->state, fr_round_completed(s->ctl));
    }
    if (!e && c->secagg) {
        s->sa_len = fri_round_dense_len(s->ctl);
        s->sa_sum = fri_malloc(s->sa_len * sizeof *s->sa_sum);
        s->sa_scratch = fri_malloc(s->sa_len * sizeof *s->sa_scratch);
        if (!s->sa_sum || !s->sa_scratch) e = FR_ERR_NOMEM;
        if (!e) e = fr_result_create(&s->sa_res);
    }
    if (e) { fr_net_server_free(s); return e; }
    fri_net_server_opts o;
    fri_net_server_opts_default(&o);
    o.url = c->listen;
    o.insecure = c->insecure;
    o.cert_file = c->cert;
    o.key_file = c->key;
    o.ca_file = c->client_ca;
    o.idle_ms = c->idle_ms;
    o.contexts = c->contexts;
    o.max_conns = c->max_conns;
    o.handshake_ms = c->handshake_ms > INT32_MAX ? INT32_MAX : (int)c->handshake_ms;
    /* the largest request: a RESULT of every shared parameter at 8 bytes plus its ids */
    size_t ns = fr_model_n_shared(fr_round_model(s->ctl));
    o.max_msg = 16 * ns + ((size_t)1 << 20);
    s->max_result = o.max_msg; /* a packed RESULT unpacks to no more than a plain one may be */
    o.handle = handle;
    o.handle_ctx = s;
    o.event = on_event;
    o.event_ctx = s;
    s->tls = fri_net_url_tls(o.url); /* before the first request can arrive */
    e = fri_net_server_start(&s->tx, &o);
    if (e) { fr_net_server_free(s); return e; }
    *out = s;
    return FR_OK;
}

int fr_net_server_port(const fr_net_server *s) { return fri_net_server_port(s->tx); }
uint32_t fr_net_server_completed(const fr_net_server *s) { return fr_round_completed(s->ctl); }
const fr_model *fr_net_server_model(const fr_net_server *s) { return fr_round_model(s->ctl); }
void fr_net_server_interrupt(fr_net_server *s) { atomic_store(&s->stop, true); }

/* ------------------------------------------------------------------ rounds */

/* Waits on the condition variable until `until` (monotonic ms) at the latest, in slices,
 * so an interrupt is seen within 100 ms. */
static void wait_until(fr_net_server *s, uint64_t until) {
    uint64_t now = fri_net_now_ms();
    if (now >= until) return;
    uint64_t ms = until - now;
    if (ms > 100) ms = 100;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) { ts.tv_sec++; ts.tv_nsec -= 1000000000L; }
    pthread_cond_timedwait(&s->cv, &s->mu, &ts);
}

/* The clients connected now into s->avail (increasing); their count. */
static uint32_t connected(fr_net_server *s) {
    uint64_t now = fri_net_now_ms();
    uint32_t n = 0;
    for (uint32_t c = 0; c < s->n_clients; c++)
        if (s->seen[c] && now - s->seen[c] <= s->c.presence_ms) s->avail[n++] = c;
    for (uint32_t f = 0; f < s->n_fake; f++) s->avail[n++] = s->n_clients + f; /* the server's own: always there */
    return n;
}

static fr_err save_state(fr_net_server *s) {
    if (!s->state_path) return FR_OK;
    uint8_t *b = NULL;
    size_t n = 0;
    fr_err e = fr_round_save(s->ctl, &b, &n);
    if (!e) e = fri_write_file_atomic(s->state_path, b, n);
    fr_msg_free(b);
    return e;
}

/* The DONE message: the final global model as a TASK-format block (fr_task_decode reads
 * it), for clients to rank items with after the federation ends. */
static fr_err make_done(fr_net_server *s) {
    fri_buf cfgb = {0}, task = {0};
    const fr_round *r = s->ctl;
    fr_err e = fri_fl_config_block(&cfgb, fr_round_model_config(r), fr_round_fl_config(r));
    if (!e) e = cfgb.err;
    /* in a DP federation, with the clip the next round would use: a TASK a client could
     * step on, like any other (clients need nothing from it but the model) */
    if (!e) e = fri_task_encode_dp(&task, fr_round_completed(r) + 1, cfgb.data, cfgb.len, fr_round_config_crc(r),
                                   fr_fl_fixed_bound(1), fr_round_dp_clip(r), fr_round_model(r));
    if (!e) e = task.err;
    fri_net_msg m = {.type = FRI_NET_DONE, .flags = s->tls ? FRI_NET_FLAG_HEADER_CRC : 0};
    m.done.rounds_done = fr_round_completed(r);
    m.done.model = task.data;
    m.done.model_len = task.len;
    fri_buf b = {0};
    if (!e) e = fri_net_encode(&b, &m);
    if (!e) e = b.err;
    fri_buf_free(&cfgb);
    fri_buf_free(&task);
    if (e) { fri_buf_free(&b); return e; }
    s->done_msg = b.data;
    s->done_n = b.len;
    return FR_OK;
}

/* DP: whether every sampled client that was connected when the round began, or took its
 * TASK since, has answered (the others are absent: they only lower participation). */
static bool dp_all_in(const fr_net_server *s) {
    for (uint32_t i = 0; i < s->k; i++)
        if (!s->got[i] && (s->was_on[i] || s->busy[i] || s->pending[i])) return false;
    return true;
}

/* The epsilon spent after `rounds` applied rounds (NaN without DP or if it fails). */
static double epsilon_after(const fr_net_server *s, uint32_t rounds) {
    double eps = NAN;
    if (!s->dp || fr_fl_dp_epsilon(fr_round_fl_config(s->ctl), s->n_clients, rounds, &eps)) return NAN;
    return eps;
}

/* Ends the open round's secure session (if any). */
static void sa_close_session(fr_net_server *s) {
    sa_release_all(s, false);
    fr_sa_server_free(s->sa);
    s->sa = NULL;
    s->sa_broken = false;
}

/* The secure session of the round just sampled: its k parties by position, k and t so
 * that 10% of them may drop out (failing with chance 2^-30, splitting with 2^-40), as the
 * simulator's. */
static fr_err sa_open(fr_net_server *s) {
    sa_close_session(s);
    if (s->k < 2)
        return fri_fail(FR_ERR_EMPTY, "secure aggregation needs at least 2 clients a round, %u sampled", s->k);
    fr_sa_params p;
    fr_err e = fr_sa_params_choose_split(&p, s->k, s->sa_len, FR_SA_ROUND_DROPOUT, FR_SA_ROUND_SIGMA,
                                         FR_SA_ROUND_ETA);
    if (e) return e;
    p.session = s->round;
    p.graph_seed = fr_round_fl_config(s->ctl)->seed ^ ((uint64_t)s->round << 32);
    fri_free(s->sa_level);
    fri_free(s->sa_held);
    fri_free(s->sa_held_until);
    s->sa_n_held = 0;
    s->sa_level = fri_calloc(s->k, 1);
    s->sa_held = fri_calloc(s->k, sizeof *s->sa_held);
    s->sa_held_until = fri_calloc(s->k, sizeof *s->sa_held_until);
    if (!s->sa_level || !s->sa_held || !s->sa_held_until) return FR_ERR_NOMEM;
    if ((e = fr_sa_server_create(&s->sa, &p))) return e;
    s->sap = p;
    s->sa_stage = FR_SA_ADVERTISE;
    s->sa_stage_t0 = fri_net_now_ms();
    return FR_OK;
}

/* Whether every party still in the session has answered the open stage. */
static bool sa_all_in(const fr_net_server *s) {
    for (uint32_t i = 0; i < s->k; i++)
        if (fr_sa_server_has(s->sa, i) && s->sa_level[i] <= (uint8_t)s->sa_stage) return false;
    return true;
}

/* Runs the open round's secure session past the keys' stage (whose deadline is the
 * round's): closes each stage when every party still in has answered or at its deadline,
 * then rebuilds the survivors' sum and adds it to the controller. Under the mutex (released
 * while waiting). FR_OK: the sum is in; an error: the round is to be aborted. */
static fr_err sa_run(fr_net_server *s, double secs[4], uint32_t *survivors, double *recovery) {
    fr_err e = FR_OK;
    for (int st = FR_SA_ADVERTISE; st <= FR_SA_UNMASK; st++) {
        uint64_t t0 = fri_net_now_ms();
        if (st > FR_SA_ADVERTISE) {
            s->sa_stage = st;
            s->sa_stage_t0 = t0;
            s->deadline = t0 + s->c.secagg_stage_ms;
            sa_release_all(s, false); /* the parties held for this stage get its message now */
            pthread_cond_broadcast(&s->cv);
        }
        /* the unmasking stage closes as soon as the answers hold every share the sum needs
         * (the same sum as with the rest: fr_sa_server_can_finish), not at its deadline when
         * clients dropped out after masking */
        while (!sa_all_in(s) && !(st == FR_SA_UNMASK && fr_sa_server_can_finish(s->sa)) &&
               fri_net_now_ms() < s->deadline && !atomic_load(&s->stop)) {
            uint64_t next = sa_release_expired(s);
            wait_until(s, next < s->deadline ? next : s->deadline);
        }
        if (atomic_load(&s->stop)) return fri_fail(FR_ERR_STATE, "the server was asked to stop");
        if (st == FR_SA_MASK) { /* the masked inputs being added are in before the stage closes */
            s->sa_closing = true;
            while (s->inflight > 0) pthread_cond_wait(&s->cv, &s->mu);
            s->sa_closing = false;
        }
        if (s->sa_broken) return fri_fail(FR_ERR_FORMAT, "a masked input was summed but the session did not record it");
        uint32_t in = 0, answered = 0;
        for (uint32_t i = 0; i < s->k; i++) {
            in += fr_sa_server_has(s->sa, i);
            answered += s->sa_level[i] > (uint8_t)st;
        }
        if (st < FR_SA_UNMASK) e = fr_sa_server_close(s->sa);
        else {
            struct timespec a, b;
            clock_gettime(CLOCK_MONOTONIC, &a);
            e = fr_sa_server_finish(s->sa, s->sa_sum, survivors);
            clock_gettime(CLOCK_MONOTONIC, &b);
            *recovery = (double)(b.tv_sec - a.tv_sec) + 1e-9 * (double)(b.tv_nsec - a.tv_nsec);
        }
        secs[st] = (double)(fri_net_now_ms() - t0) / 1000.0;
        if (answered < in)
            fri_net_logf(&s->lg, 0, "round %u: secure aggregation stage %d closed with %u of %u part%s (%u dropped out)",
                         s->round, st, answered, in, in == 1 ? "y" : "ies", in - answered);
        if (e) return e;
    }
    return fri_round_add_dense_sum(s->ctl, s->sa_sum);
}

/* The sampled fake clients of a promotion attack (c.attack) make their RESULTs as the
 * simulator's do (fri_attack_fake_result) and the controller takes their bytes as any
 * client's. Under the mutex, before the round is open to the real clients: no RESULT
 * is being added, every lane is free. */
static fr_err run_fakes(fr_net_server *s) {
    for (uint32_t i = 0; i < s->k && s->n_fake; i++) {
        uint32_t c = s->ids[i];
        if (c < s->n_clients) continue;
        fr_err e = fri_attack_fake_result(s->ctl, &s->atk, s->n_fake, s->ref_pop, s->fref, c, s->fupd, s->fres);
        uint8_t *msg = NULL;
        size_t len = 0;
        if (!e) e = fr_result_encode(s->fres, &msg, &len);
        if (!e) e = fr_round_submit(s->ctl, msg, len, 0);
        fr_msg_free(msg);
        if (e) return e;
        s->got[i] = 1;
    }
    return FR_OK;
}

/* Opens the next round among the connected clients, under the mutex. */
static fr_err open_round(fr_net_server *s, uint32_t n_avail) {
    const uint32_t *ids;
    uint32_t k;
    /* DP: Poisson over the whole federation, connected or not (what the accountant assumes) */
    fr_err e = s->dp ? fr_round_begin(s->ctl, &ids, &k)
                     : fr_round_begin_among(s->ctl, s->avail, n_avail, s->c.over_select, &ids, &k);
    if (e) return e;
    uint8_t *t = fri_realloc(s->tickets, ((size_t)k ? k : 1) * FRI_NET_TICKET_BYTES);
    if (!t) { fr_round_abort(s->ctl); return FR_ERR_NOMEM; }
    s->tickets = t;
    fri_free(s->got);
    fri_free(s->busy);
    fri_free(s->pending);
    fri_free(s->was_on);
    s->got = fri_calloc(k ? k : 1, 1);
    s->busy = fri_calloc(k ? k : 1, 1);
    s->pending = fri_calloc(k ? k : 1, 1);
    s->was_on = fri_calloc(k ? k : 1, 1);
    if (!s->got || !s->busy || !s->pending || !s->was_on) { fr_round_abort(s->ctl); return FR_ERR_NOMEM; }
    uint64_t now = fri_net_now_ms();
    for (uint32_t i = 0; i < k; i++)
        s->was_on[i] = ids[i] >= s->n_clients /* an attack's fake: the server's own */ ||
                       (s->seen[ids[i]] && now - s->seen[ids[i]] <= s->c.presence_ms);
    randombytes_buf(s->tickets, (size_t)k * FRI_NET_TICKET_BYTES);
    s->ids = ids;
    s->k = k;
    s->target = fr_round_target(s->ctl);
    s->round = fr_round_completed(s->ctl) + 1;
    /* DP rounds of fewer than 2 sampled clients run without masks (fri_dp_secagg_plain):
     * plain TASKs and RESULTs, as the simulator's */
    if (s->c.secagg && !fri_dp_secagg_plain(fr_round_fl_config(s->ctl), k) && (e = sa_open(s))) {
        fr_round_abort(s->ctl);
        return fri_fail_prefix(e, "round %u: secure aggregation", s->round);
    }
    if ((e = run_fakes(s))) {
        fr_round_abort(s->ctl);
        return fri_fail_prefix(e, "round %u: the attack's fake clients", s->round);
    }
    s->deadline = fri_net_now_ms() + s->c.deadline_ms;
    memset(&s->eval, 0, sizeof s->eval);
    s->closing = false;
    s->round_t0 = fri_net_now_ms();
    s->open = true;
    s->task_crc_ok = false; /* a new TASK (a retried round's too) */
    s->rows_crc_ok = false;
    return FR_OK;
}

fr_err fr_net_server_run(fr_net_server *s, fr_net_round_fn on_round, void *user) {
    fr_err e = FR_OK;
    uint32_t attempt = 0, last_round = 0;
    pthread_mutex_lock(&s->mu);
    while (!e && fr_round_completed(s->ctl) < s->c.rounds && !atomic_load(&s->stop)) {
        /* wait for enough clients */
        uint32_t n = connected(s);
        uint32_t need = s->c.min_clients ? s->c.min_clients + s->n_fake
                                          : fri_fl_want(fr_round_fl_config(s->ctl), s->n_clients + s->n_fake);
        uint64_t next_note = fri_net_now_ms() + 5000;
        while (n < need && !atomic_load(&s->stop)) {
            wait_until(s, fri_net_now_ms() + 100);
            n = connected(s);
            if (fri_net_now_ms() >= next_note) {
                fri_net_logf(&s->lg, 0, "waiting for clients: %u of %u connected", n, need);
                next_note = fri_net_now_ms() + 5000;
            }
        }
        if (atomic_load(&s->stop)) break;
        if (s->c.target_epsilon > 0) { /* the budget is checked before the round: one beyond it never runs */
            uint32_t next = fr_round_completed(s->ctl) + 1;
            double eps = epsilon_after(s, next);
            if (!(eps <= s->c.target_epsilon)) {
                fri_net_logf(&s->lg, 0, "privacy budget reached: round %u would spend epsilon %.4g > %g; stopping after "
                             "round %u", next, eps, s->c.target_epsilon, next - 1);
                s->budget_spent = true;
                break;
            }
        }
        if ((e = open_round(s, n))) break;
        attempt = s->round == last_round ? attempt + 1 : 1;
        last_round = s->round;
        uint64_t t0 = fri_net_now_ms();
        if (s->dp) {
            uint32_t on = 0;
            for (uint32_t i = 0; i < s->k; i++) on += s->was_on[i];
            fri_net_logf(&s->lg, 0, "round %u started: %u of the federation's %u client%s sampled (Poisson, q = %.4g), "
                         "%u of them connected", s->round, s->k, s->n_clients, fri_s(s->n_clients),
                         fr_fl_dp_rate(fr_round_fl_config(s->ctl), s->n_clients), on);
        } else
            fri_net_logf(&s->lg, 0, "round %u started%s: %u of %u connected client%s sampled, %u result%s wanted",
                         s->round, attempt > 1 ? " again" : "", s->k, n, fri_s(n), s->target, fri_s(s->target));
        fr_net_round_info info = {0};
        fr_err sa_e = FR_OK;
        if (s->sa) sa_e = sa_run(s, info.sa_seconds, &info.sa_survivors, &info.sa_recovery_seconds);
        else
            while (fr_round_results(s->ctl) < s->target && fri_net_now_ms() < s->deadline && !atomic_load(&s->stop) &&
                   !(s->dp && dp_all_in(s)))
                wait_until(s, s->deadline);
        quiesce(s);
        if (atomic_load(&s->stop)) {
            fr_round_abort(s->ctl);
            sa_close_session(s);
            s->open = false;
            fri_net_logf(&s->lg, 1, "round %u abandoned: the server was asked to stop", s->round);
            break;
        }
        if (sa_e) {
            char why[512];
            snprintf(why, sizeof why, "%s", fr_errmsg());
            fr_round_abort(s->ctl);
            sa_close_session(s);
            e = fri_fail(FR_ERR_EMPTY, "secure aggregation failed: %s", why);
        } else e = fr_round_end(s->ctl, &info.st);
        sa_close_session(s);
        s->open = false;
        info.applied = e == FR_OK;
        info.attempt = attempt;
        info.connected = n;
        uint64_t took = fri_net_now_ms() - t0;
        s->last_ms[2] = s->last_ms[1];
        s->last_ms[1] = s->last_ms[0];
        s->last_ms[0] = took;
        info.seconds = (double)took / 1000.0;
        info.eval_users = s->eval.users;
        info.hit_sum = s->eval.hit_sum;
        info.ndcg_sum = s->eval.ndcg_sum;
        info.rated = s->eval.rated;
        info.sq_err_sum = s->eval.sq_err_sum;
        info.st.round = s->round;
        info.epsilon = epsilon_after(s, fr_round_completed(s->ctl));
        info.dp_clip = s->dp ? info.st.dp_clip : 0;
        if (e == FR_ERR_EMPTY) {
            fri_net_logf(&s->lg, 1, "round %u short: %s; retrying", s->round, fr_errmsg());
            e = FR_OK;
            if (s->c.max_attempts && attempt >= s->c.max_attempts)
                e = fri_fail(FR_ERR_EMPTY, "round %u fell short %u times in a row: giving up", s->round, attempt);
        } else if (!e) {
            e = save_state(s);
            char dp[160] = "";
            if (s->dp) snprintf(dp, sizeof dp, "; epsilon %.4g, clip %.4g", info.epsilon, info.dp_clip);
            if (s->c.secagg)
                snprintf(dp, sizeof dp, "; secure sum of %u: stages %.3f (train, keys) %.3f (shares) %.3f (mask) %.3f "
                         "(unmask) s", info.sa_survivors, info.sa_seconds[0], info.sa_seconds[1], info.sa_seconds[2],
                         info.sa_seconds[3]);
            fri_net_logf(&s->lg, 0, "round %u closed: %u result%s of %u sampled in %.2f s, %llu bytes up, %llu down%s",
                  s->round, info.st.clients, fri_s(info.st.clients), info.st.sampled, info.seconds, (unsigned long long)info.st.bytes_up,
                  (unsigned long long)info.st.bytes_down, dp);
        }
        if (!e && on_round) {
            pthread_mutex_unlock(&s->mu);
            int stop = on_round(user, &info);
            pthread_mutex_lock(&s->mu);
            if (stop) break;
        }
    }
    /* the end: answer DONE to everyone who took part, for a while */
    if (!e && (fr_round_completed(s->ctl) >= s->c.rounds || s->budget_spent) && (e = make_done(s)) == FR_OK) {
        s->finished = true;
        s->done_want = 0;
        for (uint32_t c = 0; c < s->n_clients; c++) s->done_want += s->joined[c];
        s->done_count = 0;
        for (uint32_t c = 0; c < s->n_clients; c++) s->done_count += s->done_sent[c];
        uint64_t until = fri_net_now_ms() + s->c.linger_ms;
        while (s->done_count < s->done_want && fri_net_now_ms() < until && !atomic_load(&s->stop)) wait_until(s, until);
        /* the last DONE replies are on their way (a reply leaves after its handler
         * returns): a moment for them before the sockets close */
        uint64_t grace = fri_net_now_ms() + (s->c.linger_ms < 2000 ? s->c.linger_ms : 2000);
        while (fri_net_now_ms() < grace && !atomic_load(&s->stop)) wait_until(s, grace);
        fri_net_logf(&s->lg, 0, "finished after round %u: %u of %u client%s told", fr_round_completed(s->ctl),
              s->done_count, s->done_want, s->done_want == 1 ? " was" : "s were");
    }
    pthread_mutex_unlock(&s->mu);
    return e;
}
