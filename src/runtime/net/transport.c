/* The networked runtime's transport: opaque byte messages over nng REQ/REP with TLS
 * (transport.h says what it offers). nng 1.5.2 underneath, with fedrec's OpenSSL engine
 * (tls_openssl.c) in place of nng's mbedTLS 2.28 unless FEDREC_TLS_ENGINE=nng.
 *
 * Invariants:
 *   - The server's pipe table holds every open connection (added on nng's ADD_POST, gone
 *     on REM_POST) with the time it last delivered a request or got a reply and how many
 *     of its requests are in the handler; the watchdog closes a connection only when
 *     none is and it has been quiet for idle_ms, and reports it once.
 *   - A server context is always in exactly one of: waiting for a request, in the
 *     handler, sending a reply; its aio callback is the only code that moves it, and it
 *     stops re-arming once the socket is closed, so stopping is: close the socket, then
 *     nng_aio_stop each context (which waits for a handler in progress).
 *   - Events are delivered outside the table's lock.
 *   - nng's pipe callbacks run under the server's gate (read); a stop that gives up on
 *     nng's close detaches it (write) first, so nothing reaches the caller after it.
 *   - Private keys read from files are wiped once nng has parsed them. */
#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/tls/tls.h>
#include <nng/supplemental/util/platform.h>
#include <sodium.h>

#include "core/core.h"
#include "runtime/net/tls_engine.h"
#include "runtime/net/transport.h"

/* nng's size limit counts the whole message, with REQ/REP's routing header: a 4-byte
 * request id, plus 4 bytes per device in between. The limits of the options count the
 * payload, so nng's is set this much higher and the rest checked here. */
#define FRI_NET_HEADER_ROOM 32

/* Server stops and client closes that gave up waiting for nng's close. */
static atomic_uint_fast64_t g_abandoned;

uint64_t fri_net_closes_abandoned(void) { return atomic_load(&g_abandoned); }

/* ---- shared: URLs, files, TLS configuration, addresses ---- */

/* Checks url for a side ("server", "client"); *tls tells which scheme it is. */
static fr_err check_url(const char *who, const char *url, bool insecure, bool *tls) {
    if (!url || !*url)
        return fri_fail(FR_ERR_INVALID, "%s: no URL given (expected tls+tcp://HOST:PORT)", who);
    nng_url *u = NULL;
    int rv = nng_url_parse(&u, url);
    if (rv == NNG_ENOMEM) return fri_fail(FR_ERR_NOMEM, "%s: out of memory parsing URL '%s'", who, url);
    if (rv != 0)
        return fri_fail(FR_ERR_INVALID, "%s: cannot parse URL '%s' (%s); expected tls+tcp://HOST:PORT", who, url,
                        nng_strerror(rv));
    fr_err e = FR_OK;
    bool is_tls = strcmp(u->u_scheme, "tls+tcp") == 0, is_tcp = strcmp(u->u_scheme, "tcp") == 0;
    if (!is_tls && !is_tcp)
        e = fri_fail(FR_ERR_INVALID,
                     "%s: URL '%s' has scheme '%s://'; only tls+tcp:// is supported (or tcp:// with the "
                     "insecure flag)",
                     who, url, u->u_scheme);
    else if (is_tcp && !insecure)
        e = fri_fail(FR_ERR_INVALID,
                     "%s: URL '%s' is plain tcp://, which neither encrypts nor authenticates; use tls+tcp:// "
                     "or set the insecure flag (--insecure) to allow it",
                     who, url);
    else if (!u->u_port || !*u->u_port)
        e = fri_fail(FR_ERR_INVALID, "%s: URL '%s' has no port (expected %s://HOST:PORT)", who, url, u->u_scheme);
    else if (u->u_path && *u->u_path && strcmp(u->u_path, "/") != 0)
        e = fri_fail(FR_ERR_INVALID, "%s: URL '%s' has a path ('%s'); expected %s://HOST:PORT", who, url, u->u_path,
                     u->u_scheme);
    nng_url_free(u);
    *tls = is_tls;
    return e;
}

/* Reads a PEM file into a NUL-terminated string (nng wants text). */
static fr_err read_pem(const char *who, const char *what, const char *path, char **out, size_t *len) {
    uint8_t *d = NULL;
    size_t n = 0;
    *out = NULL;
    fr_err e = fri_read_file(path, &d, &n);
    if (e) return fri_fail_prefix(e, "%s: reading the %s", who, what);
    char *s = fri_malloc(n + 1);
    if (!s) {
        sodium_memzero(d, n);
        fri_free(d);
        return fri_fail_prefix(FR_ERR_NOMEM, "%s: reading the %s '%s'", who, what, path);
    }
    memcpy(s, d, n);
    s[n] = '\0';
    sodium_memzero(d, n);
    fri_free(d);
    if (n == 0 || strlen(s) != n || !strstr(s, "-----BEGIN ")) {
        sodium_memzero(s, n);
        fri_free(s);
        return fri_fail(FR_ERR_FORMAT, "%s: the %s '%s' is not a PEM file (no '-----BEGIN' line)", who, what, path);
    }
    *out = s;
    *len = n;
    return FR_OK;
}

static void free_pem(char *s, size_t n) {
    if (!s) return;
    sodium_memzero(s, n);
    fri_free(s);
}

typedef struct tls_files {
    const char *cert, *key, *ca, *server_name;
} tls_files;

/* An nng TLS configuration from files: own certificate and key when given, the CA to
 * verify the peer when given (required then), the name to verify (clients). */
static fr_err tls_config(nng_tls_config **out, const char *who, bool server, const tls_files *f) {
    *out = NULL;
    nng_tls_config *cfg = NULL;
    char *cert = NULL, *key = NULL, *ca = NULL;
    size_t ncert = 0, nkey = 0, nca = 0;
    int rv = fri_tls_engine_init(); /* before nng's first TLS configuration */
    if (rv) return fri_fail(rv == NNG_ENOMEM ? FR_ERR_NOMEM : FR_ERR_UNSUPPORTED,
                            "%s: cannot register the OpenSSL TLS engine with nng (%s)", who, nng_strerror(rv));
    rv = nng_tls_config_alloc(&cfg, server ? NNG_TLS_MODE_SERVER : NNG_TLS_MODE_CLIENT);
    if (rv) return fri_fail(rv == NNG_ENOMEM ? FR_ERR_NOMEM : FR_ERR_UNSUPPORTED, "%s: TLS is not available (%s)",
                            who, nng_strerror(rv));
    fr_err e = FR_OK;
    if (f->cert) {
        e = read_pem(who, "certificate", f->cert, &cert, &ncert);
        if (!e) e = read_pem(who, "private key", f->key, &key, &nkey);
        if (!e && (rv = nng_tls_config_own_cert(cfg, cert, key, NULL)) != 0)
            e = fri_fail(rv == NNG_ENOMEM ? FR_ERR_NOMEM : FR_ERR_FORMAT,
                         "%s: the TLS engine (%s) does not accept the certificate '%s' with the key '%s' (%s)", who,
                         nng_tls_engine_name(), f->cert, f->key, nng_strerror(rv));
    }
    if (!e && f->ca) {
        e = read_pem(who, "CA certificate", f->ca, &ca, &nca);
        if (!e && (rv = nng_tls_config_ca_chain(cfg, ca, NULL)) != 0)
            e = fri_fail(rv == NNG_ENOMEM ? FR_ERR_NOMEM : FR_ERR_FORMAT,
                         "%s: the TLS engine (%s) does not accept the CA certificate '%s' (%s)", who,
                         nng_tls_engine_name(), f->ca, nng_strerror(rv));
    }
    if (!e) {
        rv = nng_tls_config_auth_mode(cfg, f->ca ? NNG_TLS_AUTH_MODE_REQUIRED : NNG_TLS_AUTH_MODE_NONE);
        if (!rv && f->server_name) rv = nng_tls_config_server_name(cfg, f->server_name);
        if (rv)
            e = fri_fail(rv == NNG_ENOMEM ? FR_ERR_NOMEM : FR_ERR_INTERNAL, "%s: configuring TLS: %s", who,
                         nng_strerror(rv));
    }
    free_pem(cert, ncert);
    free_pem(key, nkey);
    free_pem(ca, nca);
    if (e) {
        nng_tls_config_free(cfg);
        return e;
    }
    *out = cfg;
    return FR_OK;
}

/* "127.0.0.1:5555", "[::1]:5555", or "" when the address is of no IP family. */
static void fmt_addr(const nng_sockaddr *sa, char *buf, size_t n) {
    char ip[INET6_ADDRSTRLEN];
    buf[0] = '\0';
    if (sa->s_family == NNG_AF_INET) {
        if (inet_ntop(AF_INET, &sa->s_in.sa_addr, ip, sizeof ip))
            snprintf(buf, n, "%s:%u", ip, (unsigned)ntohs(sa->s_in.sa_port));
    } else if (sa->s_family == NNG_AF_INET6) {
        if (inet_ntop(AF_INET6, sa->s_in6.sa_addr, ip, sizeof ip))
            snprintf(buf, n, "[%s]:%u", ip, (unsigned)ntohs(sa->s_in6.sa_port));
    }
}

static fr_err nng_err(int rv, const char *who, const char *what, const char *url) {
    fr_err code = rv == NNG_ENOMEM ? FR_ERR_NOMEM : rv == NNG_EADDRINUSE || rv == NNG_EADDRINVAL ? FR_ERR_IO
                                                                                                   : FR_ERR_INTERNAL;
    return fri_fail(code, "%s: %s '%s': %s", who, what, url, nng_strerror(rv));
}

/* Reads the named counters of a listener or dialer from one nng statistics snapshot. */
typedef struct ep_counts {
    uint64_t auth, proto, timeout, reject, oom, refused, connect, disconnect, other;
} ep_counts;

/* The scope of the listener or dialer (kind) with this id. nng_stat_find_dialer of nng
 * 1.5.2 returns another dialer's scope when there are several, so it is not used. */
static nng_stat *find_scope(nng_stat *all, const char *kind, uint64_t id) {
    for (nng_stat *sc = nng_stat_child(all); sc; sc = nng_stat_next(sc)) {
        if (nng_stat_type(sc) != NNG_STAT_SCOPE || strcmp(nng_stat_name(sc), kind) != 0) continue;
        nng_stat *v = nng_stat_find(sc, "id");
        if (v && nng_stat_value(v) == id) return sc;
    }
    return NULL;
}

static void read_counts(nng_stat *scope, ep_counts *c) {
    memset(c, 0, sizeof *c);
    for (nng_stat *st = scope ? nng_stat_child(scope) : NULL; st; st = nng_stat_next(st)) {
        const char *nm = nng_stat_name(st);
        if (nng_stat_type(st) == NNG_STAT_STRING || nng_stat_type(st) == NNG_STAT_SCOPE) continue;
        uint64_t v = nng_stat_value(st);
        if (!strcmp(nm, "auth")) c->auth = v;
        else if (!strcmp(nm, "proto")) c->proto = v;
        else if (!strcmp(nm, "timeout")) c->timeout = v;
        else if (!strcmp(nm, "reject")) c->reject = v;
        else if (!strcmp(nm, "oom")) c->oom = v;
        else if (!strcmp(nm, "refused")) c->refused = v;
        else if (!strcmp(nm, "connect")) c->connect = v;
        else if (!strcmp(nm, "disconnect")) c->disconnect = v;
        else if (!strcmp(nm, "other")) c->other = v;
    }
}

/* ---- the "server full" reply ---- */

static const uint8_t FULL_MAGIC[16] = {0xff, 'f', 'e', 'd', 'r', 'e', 'c', ' ', 's', 'e', 'r', 'v', 'e', 'r', 'f', 'u'};

static void put_u32le(uint8_t *b, uint32_t v) {
    for (int i = 0; i < 4; i++) b[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_u32le(const uint8_t *b) {
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

void fri_net_full_encode(uint8_t out[FRI_NET_FULL_LEN], uint32_t open, uint32_t limit) {
    memcpy(out, FULL_MAGIC, sizeof FULL_MAGIC);
    put_u32le(out + 16, open);
    put_u32le(out + 20, limit);
}

bool fri_net_full_decode(const uint8_t *b, size_t n, uint32_t *open, uint32_t *limit) {
    if (!b || n != FRI_NET_FULL_LEN || memcmp(b, FULL_MAGIC, sizeof FULL_MAGIC) != 0) return false;
    if (open) *open = get_u32le(b + 16);
    if (limit) *limit = get_u32le(b + 20);
    return true;
}

/* ---- server: the pipe table ---- */

typedef struct pipe_rec {
    uint32_t id;              /* nng pipe id; 0 = empty slot */
    uint32_t busy;            /* its requests in the handler or being answered */
    int64_t last_ms;          /* nng_clock() of connect, last request or last reply */
    uint64_t requests;        /* requests it delivered */
    bool closing;             /* the watchdog closed it (reported once) */
    bool over;                /* refused for max_conns: never served, its requests are
                                 answered with the "server full" reply (fri_net_full_*) */
    bool refused;             /* over, and a "server full" reply has been sent */
    char addr[FRI_NET_ADDR_MAX];
} pipe_rec;

/* Open addressing with linear probing over a power-of-two table, at most half full, so
 * a lookup is O(1) whatever the number of connections (1000s). */
typedef struct pipe_table {
    pipe_rec *slot;
    size_t cap, n;
} pipe_table;

static size_t pt_home(const pipe_table *t, uint32_t id) { return (size_t)(id * 2654435761u) & (t->cap - 1); }

static pipe_rec *pt_find(pipe_table *t, uint32_t id) {
    if (!t->cap) return NULL;
    for (size_t i = pt_home(t, id);; i = (i + 1) & (t->cap - 1)) {
        if (t->slot[i].id == id) return &t->slot[i];
        if (t->slot[i].id == 0) return NULL;
    }
}

static pipe_rec *pt_put_slot(pipe_table *t, uint32_t id) {
    size_t i = pt_home(t, id);
    while (t->slot[i].id != 0 && t->slot[i].id != id) i = (i + 1) & (t->cap - 1);
    return &t->slot[i];
}

/* A record for id (new and zeroed, or the existing one); NULL when out of memory. */
static pipe_rec *pt_insert(pipe_table *t, uint32_t id) {
    if (2 * (t->n + 1) > t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 64;
        pipe_rec *s = fri_calloc(cap, sizeof *s);
        if (!s) return NULL;
        pipe_table nt = {s, cap, t->n};
        for (size_t i = 0; i < t->cap; i++)
            if (t->slot[i].id) *pt_put_slot(&nt, t->slot[i].id) = t->slot[i];
        fri_free(t->slot);
        *t = nt;
    }
    pipe_rec *r = pt_put_slot(t, id);
    if (r->id != id) {
        memset(r, 0, sizeof *r);
        r->id = id;
        t->n++;
    }
    return r;
}

/* Removes r (a slot of t), shifting later members of its probe run back. */
static void pt_remove(pipe_table *t, pipe_rec *r) {
    size_t i = (size_t)(r - t->slot), mask = t->cap - 1;
    t->slot[i].id = 0;
    t->n--;
    for (size_t j = (i + 1) & mask; t->slot[j].id; j = (j + 1) & mask) {
        size_t h = pt_home(t, t->slot[j].id);
        /* slot j may move to the hole at i if its home is not in (i, j] cyclically */
        bool stays = i <= j ? (h > i && h <= j) : (h > i || h <= j);
        if (stays) continue;
        t->slot[i] = t->slot[j];
        t->slot[j].id = 0;
        i = j;
    }
}

/* ---- server ---- */

typedef struct srv_ctx {
    struct fri_net_server *s;
    nng_ctx ctx;
    nng_aio *aio;
    uint32_t pipe;            /* the connection of the request being answered */
    bool sending;             /* the aio carries a reply (else it waits for a request) */
    bool full;                /* that reply is "server full" (not counted as a reply) */
    nng_msg *out;             /* a reply the handler asked for (fri_net_reply_alloc), or NULL */
    /* a held request (FRI_NET_HELD), under hmu: the handler has returned (ctx_cb is done
       with the context) and the reply given before that, sent when it has */
    pthread_mutex_t hmu;
    bool held_back, held_answered;
    nng_msg *held_reply;
} srv_ctx;

uint8_t *fri_net_reply_alloc(const fri_net_peer *peer, size_t n) {
    srv_ctx *c = peer ? peer->tx : NULL;
    if (!c) return NULL;
    if (c->out) { nng_msg_free(c->out); c->out = NULL; }
    if (nng_msg_alloc(&c->out, n) != 0) { c->out = NULL; return NULL; }
    return nng_msg_body(c->out);
}

struct fri_net_server {
    nng_socket sock;
    nng_listener lst;
    bool sock_open;
    char *url;
    int port;
    size_t max_msg;
    int idle_ms;
    fri_net_handler handle;
    void *handle_ctx;
    fri_net_event_fn event;
    void *event_ctx;
    uint32_t max_conns;       /* 0: no limit */
    int handshake_ms;
    uint64_t n_served;        /* guarded by mu: connections in pipes that are not over */
    uint64_t n_refusing;      /* guarded by mu: connections in pipes that are over */
    bool tls_ours;            /* tls+tcp:// with fedrec's engine: its timeouts and failed
                                 handshakes are counted by the engine, not nng */
    uint64_t seen_tls_hto;    /* the engine's handshake timeouts already reported */
    uint64_t seen_tls_fail;   /* the engine's failed server handshakes already reported */
    srv_ctx *ctx;             /* [n_ctx] */
    int n_ctx;
    pthread_mutex_t mu;       /* guards pipes */
    pipe_table pipes;
    pthread_mutex_t wmu;      /* the watchdog's sleep; the closer's outcome */
    pthread_cond_t wcv;
    pthread_t watchdog;
    bool watchdog_running;
    bool wake;                /* guarded by wmu: stop the watchdog */
    bool closed, abandoned;   /* guarded by wmu: nng_close returned / stop stopped waiting */
    int close_wait_ms;
    pthread_rwlock_t gate;    /* held (read) by nng's pipe callbacks */
    bool detached;            /* guarded by gate: the callbacks return at once */
    atomic_bool stopping;
    ep_counts seen;           /* listener counters already reported (watchdog only) */
    atomic_uint_fast64_t n_connects, n_requests, n_replies, n_refused, n_idle, n_tls, n_proto, n_hto, n_reject,
        n_too_large, n_over, n_full_replies;
};

static void emit(fri_net_server *s, fri_net_event_kind kind, uint32_t pipe, const char *addr, uint64_t count,
                 const char *fmt, ...) FR_PRINTF(6, 7);
static void emit(fri_net_server *s, fri_net_event_kind kind, uint32_t pipe, const char *addr, uint64_t count,
                 const char *fmt, ...) {
    if (!s->event) return;
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    fri_net_event ev = {kind, pipe, addr ? addr : "", count, text};
    s->event(s->event_ctx, &ev);
}

/* Removes r (under mu), keeping the counts of served and refused connections. */
static void pipe_drop(fri_net_server *s, pipe_rec *r) {
    if (r->over) s->n_refusing--;
    else s->n_served--;
    pt_remove(&s->pipes, r);
}

static void on_pipe_gated(fri_net_server *s, nng_pipe p, nng_pipe_ev ev) {
    uint32_t id = nng_pipe_id(p);
    char addr[FRI_NET_ADDR_MAX] = "";
    if (ev == NNG_PIPE_EV_ADD_PRE) {
        /* recorded from here to its REM_POST (nng 1.5.2 runs that for every pipe that had
         * an ADD_PRE, also one closed here), before the socket uses it. One over max_conns
         * is not closed here: closed now, its client may be cut off between the pieces of
         * its first request, which wedges nng 1.5.2 in the client's process (bug (3) in
         * docs/ARCHITECTURE.md), or just before its REQ protocol queues a receive, which
         * leaves it on a dead connection (bug (4)). It is let in but never served: each of
         * its requests is answered with the "server full" reply, on which the client
         * closes the connection itself (fri_net_request) and redials after its backoff. */
        nng_sockaddr sa;
        if (nng_pipe_get_addr(p, NNG_OPT_REMADDR, &sa) == 0) fmt_addr(&sa, addr, sizeof addr);
        bool over = false, shut = false;
        pthread_mutex_lock(&s->mu);
        uint64_t open = s->n_served;
        over = s->max_conns && open >= s->max_conns;
        pipe_rec *r = NULL;
        if (!over || s->n_refusing < FRI_NET_REFUSING_MAX) r = pt_insert(&s->pipes, id);
        if (r) {
            r->last_ms = (int64_t)nng_clock();
            r->over = over;
            memcpy(r->addr, addr, sizeof addr);
            if (over) s->n_refusing++;
            else s->n_served++;
        }
        pthread_mutex_unlock(&s->mu);
        if (!r) {
            nng_pipe_close(p);
            shut = true;
        }
        if (over) {
            atomic_fetch_add(&s->n_over, 1);
            if (shut)
                emit(s, FRI_NET_EV_CONN_LIMIT, id, addr, open,
                     "%s: connection %u from %s refused: %llu connections open, the limit (max_conns); closed it "
                     "at once (%d refused ones are open already, or out of memory)",
                     s->url, id, addr, (unsigned long long)open, FRI_NET_REFUSING_MAX);
            else
                emit(s, FRI_NET_EV_CONN_LIMIT, id, addr, open,
                     "%s: connection %u from %s refused: %llu connections open, the limit (max_conns); its "
                     "requests are answered 'server full'",
                     s->url, id, addr, (unsigned long long)open);
        } else if (shut) {
            /* without a record the watchdog could not see it: refuse it */
            emit(s, FRI_NET_EV_NOMEM, id, addr, 1, "%s: out of memory tracking the connection from %s; closed it",
                 s->url, addr);
        }
        return;
    }
    if (ev == NNG_PIPE_EV_ADD_POST) {
        bool served = false;
        pthread_mutex_lock(&s->mu);
        pipe_rec *r = pt_find(&s->pipes, id);
        if (r && !r->over) {
            served = true;
            memcpy(addr, r->addr, sizeof addr);
        }
        pthread_mutex_unlock(&s->mu);
        if (!served) return; /* refused, or gone already */
        atomic_fetch_add(&s->n_connects, 1);
        emit(s, FRI_NET_EV_CONNECT, id, addr, 0, "%s: connection %u from %s", s->url, id, addr);
    } else if (ev == NNG_PIPE_EV_REM_POST) {
        uint64_t reqs = 0;
        bool found = false;
        pthread_mutex_lock(&s->mu);
        pipe_rec *r = pt_find(&s->pipes, id);
        if (r) {
            found = !r->over; /* a refused one was reported when it came */
            reqs = r->requests;
            memcpy(addr, r->addr, sizeof addr);
            pipe_drop(s, r);
        }
        pthread_mutex_unlock(&s->mu);
        if (found)
            emit(s, FRI_NET_EV_DISCONNECT, id, addr, reqs, "%s: connection %u from %s closed after %llu requests",
                 s->url, id, addr, (unsigned long long)reqs);
    }
}

static void on_pipe(nng_pipe p, nng_pipe_ev ev, void *arg) {
    fri_net_server *s = arg;
    pthread_rwlock_rdlock(&s->gate);
    if (!s->detached) on_pipe_gated(s, p, ev);
    pthread_rwlock_unlock(&s->gate);
}

/* A request from pipe id arrived (busy: +1) or its reply left (busy: -1); copies the
 * peer's address out. True when the pipe was refused for max_conns (a request from it is
 * then answered "server full": *open is the connections served now). */
static bool pipe_touch(fri_net_server *s, uint32_t id, int busy, char *addr, uint64_t *open) {
    bool over = false;
    pthread_mutex_lock(&s->mu);
    pipe_rec *r = pt_find(&s->pipes, id);
    if (r) {
        r->last_ms = (int64_t)nng_clock();
        over = r->over;
        if (busy > 0) {
            r->busy++;
            r->requests++;
            if (over) r->refused = true;
        } else if (busy < 0 && r->busy > 0) {
            r->busy--;
        }
        if (addr) memcpy(addr, r->addr, FRI_NET_ADDR_MAX);
    } else if (addr) {
        addr[0] = '\0';
    }
    if (open) *open = s->n_served;
    pthread_mutex_unlock(&s->mu);
    return over;
}

static void ctx_recv(srv_ctx *c) {
    c->sending = false;
    c->full = false;
    c->pipe = 0;
    nng_ctx_recv(c->ctx, c->aio);
}

static void held_send(srv_ctx *c, nng_msg *r);

/* One context's state machine, on nng's threads. */
static void ctx_cb(void *arg) {
    srv_ctx *c = arg;
    fri_net_server *s = c->s;
    int rv = nng_aio_result(c->aio);
    if (c->sending) {
        if (rv != 0) nng_msg_free(nng_aio_get_msg(c->aio)); /* not sent: still ours */
        else if (!c->full) atomic_fetch_add(&s->n_replies, 1);
        pipe_touch(s, c->pipe, -1, NULL, NULL);
        if (rv == NNG_ECLOSED || atomic_load(&s->stopping)) return;
        ctx_recv(c);
        return;
    }
    if (rv != 0) {
        /* closed: done; anything else (a timeout, a receive error) concerns one request */
        if (rv == NNG_ECLOSED || rv == NNG_ECANCELED || atomic_load(&s->stopping)) return;
        ctx_recv(c);
        return;
    }
    nng_msg *m = nng_aio_get_msg(c->aio);
    nng_aio_set_msg(c->aio, NULL);
    nng_pipe p = nng_msg_get_pipe(m);
    c->pipe = nng_pipe_id(p);
    char addr[FRI_NET_ADDR_MAX];
    size_t len = nng_msg_len(m);
    if (len > s->max_msg) {
        /* within nng's header room: over the limit all the same */
        nng_msg_free(m);
        pipe_touch(s, c->pipe, 0, addr, NULL);
        nng_pipe_close(p);
        atomic_fetch_add(&s->n_too_large, 1);
        emit(s, FRI_NET_EV_TOO_LARGE, c->pipe, addr, len,
             "%s: a request of %zu bytes (limit %zu) from connection %u at %s; closed it", s->url, len, s->max_msg,
             c->pipe, addr);
        if (!atomic_load(&s->stopping)) ctx_recv(c);
        return;
    }
    uint64_t open = 0;
    if (pipe_touch(s, c->pipe, +1, addr, &open)) {
        /* refused for max_conns: answered "server full", never served; the client closes
         * the connection once it has the reply (the server does not: closing as its own
         * reply is sent could cut it between pieces, nng 1.5.2's bug (3)) */
        if (nng_msg_realloc(m, FRI_NET_FULL_LEN) != 0) {
            nng_msg_free(m);
            pipe_touch(s, c->pipe, -1, NULL, NULL);
            nng_pipe_close(p);
            if (!atomic_load(&s->stopping)) ctx_recv(c);
            return;
        }
        fri_net_full_encode(nng_msg_body(m), open > UINT32_MAX ? UINT32_MAX : (uint32_t)open, s->max_conns);
        atomic_fetch_add(&s->n_full_replies, 1);
        c->sending = true;
        c->full = true;
        nng_aio_set_msg(c->aio, m);
        nng_ctx_send(c->ctx, c->aio);
        return;
    }
    atomic_fetch_add(&s->n_requests, 1);
    fri_net_peer peer = {addr, c->pipe, c};
    uint8_t *reply = NULL;
    size_t reply_n = 0;
    c->out = NULL;
    int hr = s->handle(s->handle_ctx, nng_msg_body(m), nng_msg_len(m), &reply, &reply_n, &peer);
    if (hr == FRI_NET_HELD) {
        /* the reply comes later (fri_net_server_reply_held), maybe already has */
        fri_free(reply);
        if (c->out) { nng_msg_free(c->out); c->out = NULL; }
        nng_msg_free(m);
        pthread_mutex_lock(&c->hmu);
        bool answered = c->held_answered;
        nng_msg *r = c->held_reply;
        c->held_answered = false;
        c->held_reply = NULL;
        c->held_back = !answered;
        pthread_mutex_unlock(&c->hmu);
        if (answered) held_send(c, r);
        return;
    }
    nng_msg *out = NULL;
    if (c->out && hr == 0 && reply && reply == nng_msg_body(c->out) && reply_n <= nng_msg_len(c->out) &&
        nng_msg_realloc(c->out, reply_n) == 0) {
        out = c->out; /* written in place by the handler: sent as it is */
        reply = NULL;
    } else if (c->out) {
        if (reply && reply == nng_msg_body(c->out)) { /* misused: not the transport's to fri_free */
            reply = NULL;
            if (hr == 0) hr = 1;
        }
        nng_msg_free(c->out);
    }
    c->out = NULL;
    if (hr == 0 && !out) {
        /* reuse the request's message when it is large enough: no allocation per request */
        if (nng_msg_realloc(m, reply_n) == 0) {
            if (reply_n) memcpy(nng_msg_body(m), reply, reply_n);
            out = m;
            m = NULL;
        }
    }
    fri_free(reply);
    if (m) nng_msg_free(m);
    if (!out) {
        atomic_fetch_add(&s->n_refused, 1);
        pipe_touch(s, c->pipe, -1, NULL, NULL);
        nng_pipe_close(p);
        if (hr != 0)
            emit(s, FRI_NET_EV_REFUSED, c->pipe, addr, 1, "%s: the handler refused a request of connection %u from %s; closed it",
                 s->url, c->pipe, addr);
        else
            emit(s, FRI_NET_EV_NOMEM, c->pipe, addr, 1,
                 "%s: out of memory for a reply of %zu bytes to connection %u from %s; closed it", s->url, reply_n,
                 c->pipe, addr);
        if (atomic_load(&s->stopping)) return;
        ctx_recv(c);
        return;
    }
    c->sending = true;
    nng_aio_set_msg(c->aio, out);
    nng_ctx_send(c->ctx, c->aio);
}

/* A held request's reply r (NULL: none could be made) on its context, once ctx_cb is done
 * with it: sent, or the connection closed and the context made to take requests again. */
static void held_send(srv_ctx *c, nng_msg *r) {
    fri_net_server *s = c->s;
    if (!r) {
        nng_pipe p = NNG_PIPE_INITIALIZER;
        pipe_touch(s, c->pipe, -1, NULL, NULL);
        p.id = c->pipe;
        nng_pipe_close(p);
        atomic_fetch_add(&s->n_refused, 1);
        if (!atomic_load(&s->stopping)) ctx_recv(c);
        return;
    }
    c->sending = true;
    nng_aio_set_msg(c->aio, r);
    nng_ctx_send(c->ctx, c->aio);
}

void fri_net_server_reply_held(void *held, const uint8_t *b, size_t n) {
    srv_ctx *c = held;
    nng_msg *r = NULL;
    if (nng_msg_alloc(&r, n) != 0) r = NULL;
    else if (n) memcpy(nng_msg_body(r), b, n);
    pthread_mutex_lock(&c->hmu);
    bool back = c->held_back;
    c->held_back = false;
    if (!back) { /* the handler has not returned yet: ctx_cb sends it when it has */
        c->held_answered = true;
        c->held_reply = r;
    }
    pthread_mutex_unlock(&c->hmu);
    if (back) held_send(c, r);
}

static void emit_tls_failed(fri_net_server *s, uint64_t d) {
    atomic_fetch_add(&s->n_tls, d);
    emit(s, FRI_NET_EV_TLS_FAILED, 0, "", d,
         "%s: %llu TLS handshake(s) failed (a client without a valid certificate, a wrong CA, or not TLS)", s->url,
         (unsigned long long)d);
}

/* Reports what the listener's counters gained since the last look. nng 1.5.2 counts a
 * connection that fails its handshakes only if its listener is waiting for the next
 * connection at that moment: one that fails in the 100 ms after another failure, or
 * while a new connection is being added, is not counted (docs/ARCHITECTURE.md, bug (6)).
 * So with fedrec's engine the failed TLS handshakes are the engine's own count, which
 * misses none; the other counters are lower bounds. */
static void poll_listener(fri_net_server *s) {
    nng_stat *all = NULL;
    if (nng_stats_get(&all) != 0) return;
    ep_counts now;
    read_counts(find_scope(all, "listener", (uint64_t)nng_listener_id(s->lst)), &now);
    nng_stats_free(all);
    ep_counts *was = &s->seen;
    fri_tls_stats ts;
    bool ours = s->tls_ours && fri_tls_engine_stats(&ts);
    if (ours && ts.server_failures > s->seen_tls_fail) {
        uint64_t d = ts.server_failures - s->seen_tls_fail;
        s->seen_tls_fail = ts.server_failures;
        emit_tls_failed(s, d);
    } else if (!s->tls_ours && now.auth > was->auth) {
        emit_tls_failed(s, now.auth - was->auth);
    }
    if (now.proto > was->proto) {
        uint64_t d = now.proto - was->proto;
        atomic_fetch_add(&s->n_proto, d);
        emit(s, FRI_NET_EV_PROTOCOL, 0, "", d, "%s: %llu connection(s) closed for not speaking nng's SP protocol",
             s->url, (unsigned long long)d);
    }
    if (now.timeout > was->timeout) {
        uint64_t d = now.timeout - was->timeout;
        atomic_fetch_add(&s->n_hto, d);
        emit(s, FRI_NET_EV_HANDSHAKE_TIMEOUT, 0, "", d,
             "%s: %llu connection(s) closed for not finishing the protocol handshake in time", s->url,
             (unsigned long long)d);
    }
    if (ours && ts.handshake_timeouts > s->seen_tls_hto) {
        uint64_t d = ts.handshake_timeouts - s->seen_tls_hto;
        s->seen_tls_hto = ts.handshake_timeouts;
        atomic_fetch_add(&s->n_hto, d);
        emit(s, FRI_NET_EV_HANDSHAKE_TIMEOUT, 0, "", d,
             "%s: %llu connection(s) closed for not finishing the TLS handshake within %d ms", s->url,
             (unsigned long long)d, s->handshake_ms);
    }
    if (now.reject > was->reject) {
        uint64_t d = now.reject - was->reject;
        atomic_fetch_add(&s->n_reject, d);
        emit(s, FRI_NET_EV_REJECTED, 0, "", d, "%s: %llu connection(s) rejected: the peer is not a REQ socket",
             s->url, (unsigned long long)d);
    }
    if (now.oom > was->oom) {
        uint64_t d = now.oom - was->oom;
        emit(s, FRI_NET_EV_NOMEM, 0, "", d, "%s: %llu connection(s) dropped for lack of memory", s->url,
             (unsigned long long)d);
    }
    *was = now;
}

/* Closes connections quiet for idle_ms (none of their requests in the handler). */
static void close_idle(fri_net_server *s) {
    enum { BATCH = 64 };
    struct {
        uint32_t id;
        int64_t quiet;
        bool refused;
        char addr[FRI_NET_ADDR_MAX];
    } v[BATCH];
    for (;;) {
        int k = 0;
        int64_t now = (int64_t)nng_clock();
        pthread_mutex_lock(&s->mu);
        for (size_t i = 0; i < s->pipes.cap && k < BATCH; i++) {
            pipe_rec *r = &s->pipes.slot[i];
            /* a refused connection that was told "server full" and did not close is given
             * FRI_NET_REFUSED_GRACE_MS (its reply has long been sent by then) */
            int64_t limit = r->refused && s->idle_ms > FRI_NET_REFUSED_GRACE_MS ? FRI_NET_REFUSED_GRACE_MS
                                                                                 : s->idle_ms;
            if (!r->id || r->closing || r->busy || now - r->last_ms < limit) continue;
            r->closing = true;
            v[k].id = r->id;
            v[k].quiet = now - r->last_ms;
            v[k].refused = r->refused;
            memcpy(v[k].addr, r->addr, FRI_NET_ADDR_MAX);
            k++;
        }
        pthread_mutex_unlock(&s->mu);
        for (int j = 0; j < k; j++) {
            /* nng names pipes by id; one that has gone meanwhile is not found */
            nng_pipe p = {.id = v[j].id};
            if (nng_pipe_close(p) != 0) {
                /* gone already (nng is destroying it; its REM_POST finds no record) */
                bool found = false;
                pthread_mutex_lock(&s->mu);
                pipe_rec *r = pt_find(&s->pipes, v[j].id);
                if (r) {
                    found = !r->over;
                    pipe_drop(s, r);
                }
                pthread_mutex_unlock(&s->mu);
                if (found)
                    emit(s, FRI_NET_EV_DISCONNECT, v[j].id, v[j].addr, 0, "%s: connection %u from %s closed", s->url,
                         v[j].id, v[j].addr);
                continue;
            }
            atomic_fetch_add(&s->n_idle, 1);
            if (v[j].refused)
                emit(s, FRI_NET_EV_IDLE_CLOSED, v[j].id, v[j].addr, (uint64_t)v[j].quiet,
                     "%s: closed connection %u from %s: refused for max_conns and told so, it stayed open %lld ms "
                     "(limit %d ms)",
                     s->url, v[j].id, v[j].addr, (long long)v[j].quiet,
                     s->idle_ms > FRI_NET_REFUSED_GRACE_MS ? FRI_NET_REFUSED_GRACE_MS : s->idle_ms);
            else
                emit(s, FRI_NET_EV_IDLE_CLOSED, v[j].id, v[j].addr, (uint64_t)v[j].quiet,
                     "%s: closed connection %u from %s: no complete request for %lld ms (limit %d ms)", s->url,
                     v[j].id, v[j].addr, (long long)v[j].quiet, s->idle_ms);
        }
        if (k < BATCH) return;
    }
}

static void *watchdog_main(void *arg) {
    fri_net_server *s = arg;
    /* checks often enough to close within ~25% of the limit, at most 4 times a second */
    int tick = s->idle_ms / 4;
    if (tick > 250) tick = 250;
    if (tick < 5) tick = 5;
    pthread_mutex_lock(&s->wmu);
    while (!s->wake) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += (long)tick * 1000000L;
        ts.tv_sec += ts.tv_nsec / 1000000000L;
        ts.tv_nsec %= 1000000000L;
        pthread_cond_timedwait(&s->wcv, &s->wmu, &ts);
        if (s->wake) break;
        pthread_mutex_unlock(&s->wmu);
        close_idle(s);
        poll_listener(s);
        pthread_mutex_lock(&s->wmu);
    }
    pthread_mutex_unlock(&s->wmu);
    return NULL;
}

void fri_net_server_opts_default(fri_net_server_opts *o) {
    memset(o, 0, sizeof *o);
    o->max_msg = FRI_NET_DEFAULT_MAX_MSG;
    o->contexts = FRI_NET_DEFAULT_CONTEXTS;
    o->idle_ms = FRI_NET_DEFAULT_IDLE_MS;
    o->close_wait_ms = FRI_NET_DEFAULT_CLOSE_WAIT_MS;
    o->handshake_ms = FRI_TLS_DEFAULT_HANDSHAKE_MS;
}

fr_err fri_net_server_opts_check(const fri_net_server_opts *o) {
    bool tls;
    fr_err e = check_url("server", o->url, o->insecure, &tls);
    if (e) return e;
    if (tls && (!o->cert_file || !*o->cert_file || !o->key_file || !*o->key_file))
        return fri_fail(FR_ERR_INVALID, "server: %s needs a certificate and its private key (cert_file, key_file)",
                        o->url);
    if (!tls && (o->cert_file || o->ca_file))
        return fri_fail(FR_ERR_INVALID, "server: %s is plain tcp://; certificates apply only to tls+tcp://", o->url);
    if (!o->handle) return fri_fail(FR_ERR_INVALID, "server: no request handler");
    if (o->max_msg < 1 || o->max_msg > ((size_t)1 << 40))
        return fri_fail(FR_ERR_RANGE, "server: max_msg %zu is outside 1 .. 2^40 bytes", o->max_msg);
    if (o->contexts < 1 || o->contexts > 4096)
        return fri_fail(FR_ERR_RANGE, "server: contexts %d is outside 1 .. 4096", o->contexts);
    if (o->idle_ms < 10) return fri_fail(FR_ERR_RANGE, "server: idle_ms %d is below 10 ms", o->idle_ms);
    if (o->close_wait_ms < 0)
        return fri_fail(FR_ERR_RANGE, "server: close_wait_ms %d is negative", o->close_wait_ms);
    if (o->handshake_ms < 0) return fri_fail(FR_ERR_RANGE, "server: handshake_ms %d is negative", o->handshake_ms);
    return FR_OK;
}

fr_err fri_net_server_start(fri_net_server **out, const fri_net_server_opts *o) {
    *out = NULL;
    fr_err e = fri_net_server_opts_check(o);
    if (e) return e;
    fri_net_server *s = fri_calloc(1, sizeof *s);
    if (!s) return FR_ERR_NOMEM;
    /* everything below is undone by fri_net_server_stop, whatever step failed */
    pthread_mutex_init(&s->mu, NULL);
    pthread_mutex_init(&s->wmu, NULL);
    pthread_rwlock_init(&s->gate, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->wcv, &ca);
    pthread_condattr_destroy(&ca);
    s->close_wait_ms = o->close_wait_ms ? o->close_wait_ms : FRI_NET_DEFAULT_CLOSE_WAIT_MS;
    s->max_msg = o->max_msg;
    s->idle_ms = o->idle_ms;
    s->handle = o->handle;
    s->handle_ctx = o->handle_ctx;
    s->event = o->event;
    s->event_ctx = o->event_ctx;
    s->max_conns = o->max_conns;
    s->handshake_ms = o->handshake_ms;
    s->url = fri_strdup(o->url);
    s->ctx = fri_calloc((size_t)o->contexts, sizeof *s->ctx);
    if (!s->url || !s->ctx) {
        fri_net_server_stop(s);
        return FR_ERR_NOMEM;
    }
    nng_tls_config *tc = NULL;
    int rv = nng_rep0_open(&s->sock);
    if (rv) {
        fri_net_server_stop(s);
        return nng_err(rv, "server", "opening a REP socket for", o->url);
    }
    s->sock_open = true;
    if ((rv = nng_socket_set_size(s->sock, NNG_OPT_RECVMAXSZ, o->max_msg + FRI_NET_HEADER_ROOM)) != 0 ||
        (rv = nng_pipe_notify(s->sock, NNG_PIPE_EV_ADD_PRE, on_pipe, s)) != 0 ||
        (rv = nng_pipe_notify(s->sock, NNG_PIPE_EV_ADD_POST, on_pipe, s)) != 0 ||
        (rv = nng_pipe_notify(s->sock, NNG_PIPE_EV_REM_POST, on_pipe, s)) != 0 ||
        (rv = nng_listener_create(&s->lst, s->sock, o->url)) != 0) {
        fri_net_server_stop(s);
        return nng_err(rv, "server", "setting up a listener on", o->url);
    }
    if (strncmp(o->url, "tls+", 4) == 0) {
        tls_files f = {o->cert_file, o->key_file, o->ca_file, NULL};
        e = tls_config(&tc, "server", true, &f);
        if (e) {
            fri_net_server_stop(s);
            return e;
        }
        rv = nng_listener_set_ptr(s->lst, NNG_OPT_TLS_CONFIG, tc);
        nng_tls_config_free(tc); /* the listener holds its own reference */
        s->tls_ours = fri_tls_engine_ours();
        if (s->tls_ours) {
            fri_tls_engine_set_handshake_ms(o->handshake_ms);
            fri_tls_stats ts;
            if (fri_tls_engine_stats(&ts)) {
                s->seen_tls_hto = ts.handshake_timeouts;
                s->seen_tls_fail = ts.server_failures;
            }
        }
        if (rv) {
            fri_net_server_stop(s);
            return nng_err(rv, "server", "setting TLS on", o->url);
        }
    }
    /* the contexts wait for requests before the first connection can deliver one */
    for (int i = 0; i < o->contexts; i++) {
        srv_ctx *c = &s->ctx[i];
        c->s = s;
        pthread_mutex_init(&c->hmu, NULL);
        if ((rv = nng_aio_alloc(&c->aio, ctx_cb, c)) == 0) {
            s->n_ctx = i + 1; /* its aio is freed by stop */
            rv = nng_ctx_open(&c->ctx, s->sock);
        }
        if (rv) {
            fri_net_server_stop(s);
            return nng_err(rv, "server", "opening contexts for", o->url);
        }
    }
    for (int i = 0; i < s->n_ctx; i++) ctx_recv(&s->ctx[i]);
    if ((rv = nng_listener_start(s->lst, 0)) != 0) {
        fri_net_server_stop(s);
        return fri_fail(rv == NNG_ENOMEM ? FR_ERR_NOMEM : FR_ERR_IO, "server: cannot listen on '%s': %s", o->url,
                        nng_strerror(rv));
    }
    if ((rv = nng_listener_get_int(s->lst, NNG_OPT_TCP_BOUND_PORT, &s->port)) != 0) {
        fri_net_server_stop(s);
        return nng_err(rv, "server", "reading the bound port of", o->url);
    }
    if (pthread_create(&s->watchdog, NULL, watchdog_main, s) != 0) {
        fri_net_server_stop(s);
        return fri_fail(FR_ERR_NOMEM, "server: cannot start the watchdog thread for '%s'", o->url);
    }
    s->watchdog_running = true;
    *out = s;
    return FR_OK;
}

int fri_net_server_port(const fri_net_server *s) { return s->port; }

bool fri_net_url_tls(const char *url) { return url && strncmp(url, "tls+", 4) == 0; }
bool fri_net_server_tls(const fri_net_server *s) { return s && fri_net_url_tls(s->url); }

void fri_net_server_stats_get(const fri_net_server *s, fri_net_server_stats *st) {
    fri_net_server *m = (fri_net_server *)s; /* the table's lock */
    pthread_mutex_lock(&m->mu);
    st->open = m->n_served;
    st->refusing = m->n_refusing;
    pthread_mutex_unlock(&m->mu);
    st->connects = atomic_load(&m->n_connects);
    st->requests = atomic_load(&m->n_requests);
    st->replies = atomic_load(&m->n_replies);
    st->refused = atomic_load(&m->n_refused);
    st->idle_closed = atomic_load(&m->n_idle);
    st->tls_failed = atomic_load(&m->n_tls);
    st->protocol_errors = atomic_load(&m->n_proto);
    st->handshake_timeouts = atomic_load(&m->n_hto);
    st->rejected = atomic_load(&m->n_reject);
    st->too_large = atomic_load(&m->n_too_large);
    st->over_limit = atomic_load(&m->n_over);
    st->full_replies = atomic_load(&m->n_full_replies);
}

static void server_free(fri_net_server *s) {
    for (int i = 0; s->ctx && i < s->n_ctx; i++) {
        nng_aio_free(s->ctx[i].aio);
        pthread_mutex_destroy(&s->ctx[i].hmu);
    }
    fri_free(s->pipes.slot);
    fri_free(s->ctx);
    fri_free(s->url);
    pthread_rwlock_destroy(&s->gate);
    pthread_cond_destroy(&s->wcv);
    pthread_mutex_destroy(&s->wmu);
    pthread_mutex_destroy(&s->mu);
    fri_free(s);
}

/* nng_close on a thread of its own (see fri_net_server_stop); frees the server if the
 * stop stopped waiting for it. */
static void *server_closer_main(void *arg) {
    fri_net_server *s = arg;
    nng_close(s->sock);
    pthread_mutex_lock(&s->wmu);
    s->closed = true;
    bool abandoned = s->abandoned;
    pthread_cond_signal(&s->wcv);
    pthread_mutex_unlock(&s->wmu);
    if (abandoned) server_free(s);
    return NULL;
}

/* Closes the socket, waiting at most close_wait_ms; whether nng's close returned. */
static bool server_close(fri_net_server *s) {
    pthread_t th;
    if (pthread_create(&th, NULL, server_closer_main, s) != 0) { /* no thread: close here */
        nng_close(s->sock);
        return true;
    }
    pthread_detach(th);
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += s->close_wait_ms / 1000;
    until.tv_nsec += (long)(s->close_wait_ms % 1000) * 1000000L;
    until.tv_sec += until.tv_nsec / 1000000000L;
    until.tv_nsec %= 1000000000L;
    pthread_mutex_lock(&s->wmu);
    while (!s->closed && pthread_cond_timedwait(&s->wcv, &s->wmu, &until) == 0) {}
    bool closed = s->closed;
    pthread_mutex_unlock(&s->wmu);
    return closed;
}

void fri_net_server_stop(fri_net_server *s) {
    if (!s) return;
    atomic_store(&s->stopping, true);
    if (s->watchdog_running) {
        pthread_mutex_lock(&s->wmu);
        s->wake = true;
        pthread_cond_signal(&s->wcv);
        pthread_mutex_unlock(&s->wmu);
        pthread_join(s->watchdog, NULL);
    }
    /* closing the socket closes the listener, the connections and the contexts: every
     * waiting aio completes with NNG_ECLOSED and is not re-armed */
    bool closed = !s->sock_open || server_close(s);
    if (!closed) {
        /* nng is wedged (or very slow): its pipe callbacks, which may still come, must not
         * reach the caller once this returns */
        pthread_rwlock_wrlock(&s->gate);
        s->detached = true;
        pthread_rwlock_unlock(&s->gate);
    }
    for (int i = 0; s->ctx && i < s->n_ctx; i++)
        if (s->ctx[i].aio) nng_aio_stop(s->ctx[i].aio); /* waits for a handler in progress */
    if (!closed) {
        pthread_mutex_lock(&s->wmu);
        closed = s->closed;
        s->abandoned = !closed; /* the closer frees it, if nng ever returns */
        pthread_mutex_unlock(&s->wmu);
        if (!closed) {
            atomic_fetch_add(&g_abandoned, 1);
            return;
        }
    }
    server_free(s);
}

/* ---- client ---- */

struct fri_net_client {
    nng_socket sock;
    nng_dialer dialer;        /* the current one (see wait_aio) */
    nng_tls_config *tls;      /* held for a new dialer, or NULL */
    nng_aio *aio;
    bool sock_open;
    char *url;
    size_t max_reply;
    int rmin, rmax;           /* reconnect backoff, ms */
    int stall;                /* dial_stall_ms */
    uint64_t stall_last;      /* guarded by mu: the dialer's activity when last seen (see wait_aio) */
    int64_t stall_since;      /* guarded by mu: since when it has not moved, ms */
    pthread_mutex_t mu;       /* one request at a time */
    pthread_mutex_t amu;      /* the aio's completion */
    pthread_cond_t acv;
    bool closed, abandoned;   /* fri_net_client_close's: guarded by amu */
    bool adone;               /* guarded by amu */
    atomic_uint_fast32_t pipe; /* the open connection's nng pipe id, 0 when none */
    int64_t watched;          /* guarded by mu: nng_clock() of the last look at the link, */
    int64_t dial_watched;     /* and of the last look at the dialer's counters (watch_link) */
    atomic_uint_fast64_t connects, losses, redials, dead, full;
};

/* The client's connection by its pipe id (a dialer has one at a time). nng 1.5.2 also
 * runs REM_POST for a pipe that never had an ADD_POST (refused by the REQ protocol), and a
 * replaced dialer's pipe can go after the new one came: only the current pipe's removal
 * counts. */
static void on_client_pipe(nng_pipe p, nng_pipe_ev ev, void *arg) {
    fri_net_client *c = arg;
    uint_fast32_t id = (uint_fast32_t)nng_pipe_id(p);
    if (ev == NNG_PIPE_EV_ADD_POST) {
        atomic_store(&c->pipe, id);
        atomic_fetch_add(&c->connects, 1);
    } else if (ev == NNG_PIPE_EV_REM_POST) {
        if (atomic_compare_exchange_strong(&c->pipe, &id, 0)) atomic_fetch_add(&c->losses, 1);
    }
}

static bool client_connected(fri_net_client *c) { return atomic_load(&c->pipe) != 0; }

static void client_aio_cb(void *arg) {
    fri_net_client *c = arg;
    pthread_mutex_lock(&c->amu);
    c->adone = true;
    pthread_cond_signal(&c->acv);
    pthread_mutex_unlock(&c->amu);
}

/* Creates and starts c->dialer: non-blocking, so the server need not be up; nng keeps
 * trying with backoff. */
static int start_dialer(fri_net_client *c) {
    int rv;
    if ((rv = nng_dialer_create(&c->dialer, c->sock, c->url)) != 0) return rv;
    if ((rv = nng_dialer_set_ms(c->dialer, NNG_OPT_RECONNMINT, c->rmin)) != 0 ||
        (rv = nng_dialer_set_ms(c->dialer, NNG_OPT_RECONNMAXT, c->rmax)) != 0 ||
        (c->tls && (rv = nng_dialer_set_ptr(c->dialer, NNG_OPT_TLS_CONFIG, c->tls)) != 0) ||
        (rv = nng_dialer_start(c->dialer, NNG_FLAG_NONBLOCK)) != 0) {
        nng_dialer_close(c->dialer);
        return rv;
    }
    return 0;
}

/* Every outcome of the current dialer's attempts so far (any change means it is trying). */
static uint64_t dial_activity(fri_net_client *c) {
    ep_counts k;
    nng_stat *all = NULL;
    if (nng_stats_get(&all) != 0) return 0;
    read_counts(find_scope(all, "dialer", (uint64_t)nng_dialer_id(c->dialer)), &k);
    nng_stats_free(all);
    return k.connect + k.refused + k.auth + k.timeout + k.proto + k.reject + k.disconnect + k.other + k.oom;
}

/* How often a waiting request looks at its connection (see wait_aio). */
#define CLIENT_PROBE_MS 250

/* One look at the client's link, under mu (c->watched is when). Two ways nng 1.5.2 can
 * leave a client that never delivers again:
 *   - A connection nng counts as open whose TCP connection has ended. nng's TLS layer
 *     takes an error of its TCP receive as the end of the connection, fails the
 *     operations queued at that moment and never receives again; when none was queued
 *     (a server closing a connection just as the client's SP negotiation ended, before
 *     the REQ protocol posted its receive: a server refusing it over its limit, or killed
 *     at that moment), nothing fails, and the receive posted next waits forever: the
 *     pipe stays open and every request on it times out (sending, once the REQ pipe is
 *     busy). The TCP socket, though, is shut down: its peer address is gone (getpeername
 *     fails once the TCP connection is closed). So when the pipe's peer address cannot be
 *     read, the pipe is closed, which fails what waits on it; the dialer redials.
 *   - A dialer that stopped: with no connection, when the dialer's attempt counters have
 *     not moved for reconnect_max + dial_stall (a backoff wait, then an attempt that shows
 *     no outcome), the dialer is replaced with the same backoff and TLS configuration
 *     (nng 1.5.2's TLS dialer can stop for good when a server closes a connection during
 *     the handshake, and waits forever in a handshake the server never answers). The
 *     stall is measured across requests: a client asking with timeouts shorter than the
 *     stall still sees it. (With nng's mbedTLS engine nng then leaked the abandoned
 *     connection, ~35 KB; fedrec's engine has it finalised: see docs/ARCHITECTURE.md.) */
static void watch_link(fri_net_client *c, bool dial_check) {
    int64_t t = (int64_t)nng_clock();
    c->watched = t;
    uint32_t id = (uint32_t)atomic_load(&c->pipe);
    if (id) {
        nng_pipe p = {.id = id};
        nng_sockaddr sa;
        int rv = nng_pipe_get_addr(p, NNG_OPT_REMADDR, &sa);
        if (rv != 0 && rv != NNG_ENOENT && rv != NNG_ENOMEM && nng_pipe_close(p) == 0) atomic_fetch_add(&c->dead, 1);
    }
    if (id || c->stall == 0) {
        c->stall_last = UINT64_MAX;
        c->stall_since = t;
        return;
    }
    if (!dial_check) return;
    c->dial_watched = t;
    uint64_t now = dial_activity(c);
    if (now != c->stall_last) {
        c->stall_last = now;
        c->stall_since = t;
    } else if (t - c->stall_since >= (int64_t)c->rmax + c->stall) {
        nng_dialer_close(c->dialer);
        if (start_dialer(c) == 0) atomic_fetch_add(&c->redials, 1);
        c->stall_last = UINT64_MAX;
        c->stall_since = t;
    }
}

/* Waits for the aio to complete (its own timeout bounds the wait), looking at the link
 * (watch_link) every CLIENT_PROBE_MS meanwhile, and once more when the aio timed out
 * sooner than that since the last look: a caller asking with short timeouts is watched
 * too. The dialer's counters (a statistics snapshot) are read at most every quarter of
 * the stall. */
static void wait_aio(fri_net_client *c) {
    int64_t every = c->stall / 4 < CLIENT_PROBE_MS ? CLIENT_PROBE_MS : c->stall / 4;
    pthread_mutex_lock(&c->amu);
    while (!c->adone) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += (long)CLIENT_PROBE_MS * 1000000L;
        ts.tv_sec += ts.tv_nsec / 1000000000L;
        ts.tv_nsec %= 1000000000L;
        pthread_cond_timedwait(&c->acv, &c->amu, &ts);
        if (c->adone) continue;
        pthread_mutex_unlock(&c->amu);
        watch_link(c, (int64_t)nng_clock() - c->dial_watched >= every);
        pthread_mutex_lock(&c->amu);
    }
    c->adone = false;
    pthread_mutex_unlock(&c->amu);
    if (nng_aio_result(c->aio) == NNG_ETIMEDOUT && (int64_t)nng_clock() - c->watched >= CLIENT_PROBE_MS)
        watch_link(c, (int64_t)nng_clock() - c->dial_watched >= every);
}

void fri_net_client_opts_default(fri_net_client_opts *o) {
    memset(o, 0, sizeof *o);
    o->reconnect_min_ms = FRI_NET_DEFAULT_RECONNECT_MIN_MS;
    o->reconnect_max_ms = FRI_NET_DEFAULT_RECONNECT_MAX_MS;
    o->dial_stall_ms = FRI_NET_DEFAULT_DIAL_STALL_MS;
    o->max_reply = FRI_NET_DEFAULT_MAX_REPLY;
}

fr_err fri_net_client_opts_check(const fri_net_client_opts *o) {
    bool tls;
    fr_err e = check_url("client", o->url, o->insecure, &tls);
    if (e) return e;
    if (tls && (!o->ca_file || !*o->ca_file))
        return fri_fail(FR_ERR_INVALID,
                        "client: %s needs the CA certificate that signed the server's (ca_file) to verify it",
                        o->url);
    if (!tls && (o->ca_file || o->cert_file || o->server_name))
        return fri_fail(FR_ERR_INVALID, "client: %s is plain tcp://; certificates apply only to tls+tcp://", o->url);
    if (!o->cert_file != !o->key_file)
        return fri_fail(FR_ERR_INVALID, "client: a certificate for mutual TLS needs both cert_file and key_file");
    if (o->reconnect_min_ms < 1 || o->reconnect_max_ms < o->reconnect_min_ms || o->reconnect_max_ms > 3600000)
        return fri_fail(FR_ERR_RANGE, "client: reconnect wait %d .. %d ms is not 1 <= min <= max <= 1 h",
                        o->reconnect_min_ms, o->reconnect_max_ms);
    if (o->dial_stall_ms != 0 && (o->dial_stall_ms < 100 || o->dial_stall_ms > 3600000))
        return fri_fail(FR_ERR_RANGE, "client: dial_stall_ms %d is neither 0 (never) nor 100 ms .. 1 h",
                        o->dial_stall_ms);
    if (o->max_reply < 1 || o->max_reply > ((size_t)1 << 40))
        return fri_fail(FR_ERR_RANGE, "client: max_reply %zu is outside 1 .. 2^40 bytes", o->max_reply);
    return FR_OK;
}

fr_err fri_net_client_open(fri_net_client **out, const fri_net_client_opts *o) {
    *out = NULL;
    fr_err e = fri_net_client_opts_check(o);
    if (e) return e;
    fri_net_client *c = fri_calloc(1, sizeof *c);
    if (!c) return FR_ERR_NOMEM;
    pthread_mutex_init(&c->mu, NULL);
    pthread_mutex_init(&c->amu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&c->acv, &ca);
    pthread_condattr_destroy(&ca);
    c->max_reply = o->max_reply;
    c->rmin = o->reconnect_min_ms;
    c->rmax = o->reconnect_max_ms;
    c->stall = o->dial_stall_ms;
    c->stall_last = UINT64_MAX;
    c->stall_since = (int64_t)nng_clock();
    c->watched = c->dial_watched = c->stall_since;
    c->url = fri_strdup(o->url);
    if (!c->url) {
        fri_net_client_close(c);
        return FR_ERR_NOMEM;
    }
    if (strncmp(o->url, "tls+", 4) == 0) {
        nng_url *u = NULL;
        int rv = nng_url_parse(&u, o->url);
        if (rv) {
            fri_net_client_close(c);
            return nng_err(rv, "client", "parsing", o->url);
        }
        tls_files f = {o->cert_file, o->key_file, o->ca_file, o->server_name ? o->server_name : u->u_hostname};
        e = tls_config(&c->tls, "client", false, &f);
        nng_url_free(u);
        if (e) {
            fri_net_client_close(c);
            return e;
        }
    }
    int rv = nng_req0_open(&c->sock);
    if (rv) {
        fri_net_client_close(c);
        return nng_err(rv, "client", "opening a REQ socket for", o->url);
    }
    c->sock_open = true;
    /* nng never resends a request by itself: not on a timer (a slow handler would see
     * duplicates) and not when the connection is lost (the request fails at once with
     * NNG_ECONNRESET, and the caller, who knows whether it may repeat it, decides). */
    if ((rv = nng_socket_set_size(c->sock, NNG_OPT_RECVMAXSZ, o->max_reply + FRI_NET_HEADER_ROOM)) != 0 ||
        (rv = nng_socket_set_ms(c->sock, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE)) != 0 ||
        (rv = nng_pipe_notify(c->sock, NNG_PIPE_EV_ADD_POST, on_client_pipe, c)) != 0 ||
        (rv = nng_pipe_notify(c->sock, NNG_PIPE_EV_REM_POST, on_client_pipe, c)) != 0 ||
        (rv = nng_aio_alloc(&c->aio, client_aio_cb, c)) != 0) {
        fri_net_client_close(c);
        return nng_err(rv, "client", "setting up a REQ socket for", o->url);
    }
    if ((rv = start_dialer(c)) != 0) {
        fri_net_client_close(c);
        return fri_fail(rv == NNG_ENOMEM ? FR_ERR_NOMEM : FR_ERR_IO, "client: cannot dial '%s': %s", o->url,
                        nng_strerror(rv));
    }
    *out = c;
    return FR_OK;
}

bool fri_net_client_tls(const fri_net_client *c) { return c && fri_net_url_tls(c->url); }

bool fri_net_client_connected(const fri_net_client *c) {
    return client_connected((fri_net_client *)c);
}

/* What the dialer has been through, for a timeout's message. */
static void describe_link(fri_net_client *c, char *buf, size_t n) {
    ep_counts k;
    nng_stat *all = NULL;
    memset(&k, 0, sizeof k);
    if (nng_stats_get(&all) == 0) {
        read_counts(find_scope(all, "dialer", (uint64_t)nng_dialer_id(c->dialer)), &k);
        nng_stats_free(all);
    }
    unsigned long long ok = atomic_load(&c->connects), lost = atomic_load(&c->losses);
    int len;
    if (client_connected(c))
        len = snprintf(buf, n, "connected; the server did not answer");
    else if (ok == 0)
        len = snprintf(buf, n, "never connected");
    else
        len = snprintf(buf, n, "not connected (connection lost %llu time(s); reconnecting)", lost);
    if (len < 0 || (size_t)len >= n) return;
    buf += len;
    n -= (size_t)len;
    /* the current dialer's failed attempts, those that happened */
    const struct {
        uint64_t v;
        const char *what;
    } f[] = {
        {k.refused, "connection refused"},
        {k.auth, "TLS handshake failed (the server's certificate not trusted or not for this name, or ours "
                 "refused)"},
        {k.timeout, "timed out"},
        {k.proto, "not nng's protocol"},
        {k.reject, "peer not a REP socket"},
        {k.disconnect, "disconnected"},
        {k.other, "closed during the handshakes (with TLS: often the server refusing our certificate)"},
    };
    const char *sep = "; failed connection attempts: ";
    for (size_t i = 0; i < sizeof f / sizeof *f; i++) {
        if (!f[i].v) continue;
        len = snprintf(buf, n, "%s%llu %s", sep, (unsigned long long)f[i].v, f[i].what);
        if (len < 0 || (size_t)len >= n) return;
        buf += len;
        n -= (size_t)len;
        sep = ", ";
    }
}

static fr_err request_locked(fri_net_client *c, const uint8_t *req, size_t n, uint8_t **reply, size_t *reply_n,
                             int timeout_ms) {
    nng_msg *m = NULL;
    int rv = nng_msg_alloc(&m, n);
    if (rv) return fri_fail(FR_ERR_NOMEM, "client: %s: out of memory for a request of %zu bytes", c->url, n);
    if (n) memcpy(nng_msg_body(m), req, n);
    nng_time deadline = nng_clock() + (nng_time)timeout_ms;
    nng_aio_set_msg(c->aio, m);
    nng_aio_set_timeout(c->aio, timeout_ms);
    nng_send_aio(c->sock, c->aio);
    wait_aio(c);
    const char *phase = "sending the request";
    if ((rv = nng_aio_result(c->aio)) == 0) {
        nng_time now = nng_clock();
        nng_duration left = now < deadline ? (nng_duration)(deadline - now) : 1;
        phase = "waiting for the reply";
        nng_aio_set_timeout(c->aio, left);
        nng_recv_aio(c->sock, c->aio);
        wait_aio(c);
        rv = nng_aio_result(c->aio);
    } else {
        nng_msg_free(nng_aio_get_msg(c->aio)); /* not sent: still ours */
        nng_aio_set_msg(c->aio, NULL);
    }
    if (rv == NNG_ETIMEDOUT) {
        char link[768];
        describe_link(c, link, sizeof link);
        return fri_fail(FR_ERR_IO, "client: %s: no reply within %d ms (timed out %s; %s)", c->url, timeout_ms,
                        phase, link);
    }
    if (rv == NNG_ECONNRESET || rv == NNG_ECONNSHUT || rv == NNG_ECONNABORTED)
        return fri_fail(FR_ERR_IO,
                        "client: %s: the connection was lost %s (the server closed it or went away; not resent, "
                        "the client reconnects by itself)",
                        c->url, phase);
    if (rv == NNG_ENOMEM) return fri_fail(FR_ERR_NOMEM, "client: %s: out of memory %s", c->url, phase);
    if (rv) return fri_fail(FR_ERR_IO, "client: %s: %s failed: %s", c->url, phase, nng_strerror(rv));
    m = nng_aio_get_msg(c->aio);
    nng_aio_set_msg(c->aio, NULL);
    size_t len = nng_msg_len(m);
    uint32_t open = 0, limit = 0;
    if (fri_net_full_decode(nng_msg_body(m), len, &open, &limit)) {
        /* refused for the server's max_conns: the server leaves closing the connection to
         * us (now, with nothing in flight on it); the dialer redials after its backoff */
        nng_pipe p = nng_msg_get_pipe(m);
        nng_msg_free(m);
        if (nng_pipe_id(p) <= 0) p.id = (uint32_t)atomic_load(&c->pipe);
        if (nng_pipe_id(p) > 0) nng_pipe_close(p);
        atomic_fetch_add(&c->full, 1);
        return fri_fail(FR_ERR_IO,
                        "client: %s: the server is full (%u connections open, its limit %u: max_conns) and refused "
                        "this connection; not served (the client reconnects by itself: retry later)",
                        c->url, open, limit);
    }
    if (len > c->max_reply) {
        nng_msg_free(m);
        return fri_fail(FR_ERR_RANGE, "client: %s: the reply of %zu bytes is over the limit of %zu (max_reply)", c->url,
                        len, c->max_reply);
    }
    /* the reply stays in nng's message (no copy): the message's address goes in front of
     * the body, in the room nng keeps there, for fri_net_reply_free */
    nng_msg *hold = m;
    if (nng_msg_insert(m, &hold, sizeof hold) != 0) {
        nng_msg_free(m);
        return fri_fail_prefix(FR_ERR_NOMEM, "client: %s: the reply", c->url);
    }
    *reply = (uint8_t *)nng_msg_body(m) + sizeof hold;
    *reply_n = len;
    return FR_OK;
}

fr_err fri_net_request(fri_net_client *c, const uint8_t *req, size_t n, uint8_t **reply, size_t *reply_n,
                       int timeout_ms) {
    if (reply) *reply = NULL;
    if (reply_n) *reply_n = 0;
    if (!c || (!req && n) || !reply || !reply_n)
        return fri_fail(FR_ERR_INVALID, "client: fri_net_request needs a client, the request and reply pointers");
    if (timeout_ms <= 0)
        return fri_fail(FR_ERR_INVALID, "client: %s: timeout %d ms is not positive", c->url, timeout_ms);
    pthread_mutex_lock(&c->mu);
    fr_err e = request_locked(c, req, n, reply, reply_n, timeout_ms);
    pthread_mutex_unlock(&c->mu);
    return e;
}

void fri_net_reply_free(uint8_t *reply) {
    if (!reply) return;
    nng_msg *m;
    memcpy(&m, reply - sizeof m, sizeof m);
    nng_msg_free(m);
}

uint64_t fri_net_client_redials(const fri_net_client *c) {
    return atomic_load(&((fri_net_client *)c)->redials);
}

uint64_t fri_net_client_full_refusals(const fri_net_client *c) {
    return atomic_load(&((fri_net_client *)c)->full);
}

uint64_t fri_net_client_dead_links(const fri_net_client *c) {
    return atomic_load(&((fri_net_client *)c)->dead);
}

static void client_free(fri_net_client *c) {
    nng_aio_free(c->aio);
    if (c->tls) nng_tls_config_free(c->tls);
    fri_free(c->url);
    pthread_cond_destroy(&c->acv);
    pthread_mutex_destroy(&c->amu);
    pthread_mutex_destroy(&c->mu);
    fri_free(c);
}

/* nng_close on a thread of its own: nng 1.5.2's close can wait forever for a connection
 * the server closed at the same moment (seen about once in 25 runs of the bad-peer test).
 * The closer frees the client itself if fri_net_client_close stopped waiting for it. */
static void *closer_main(void *arg) {
    fri_net_client *c = arg;
    nng_close(c->sock); /* closes the dialer and its connection */
    pthread_mutex_lock(&c->amu);
    c->closed = true;
    bool abandoned = c->abandoned;
    pthread_cond_signal(&c->acv);
    pthread_mutex_unlock(&c->amu);
    if (abandoned) client_free(c);
    return NULL;
}

/* How long fri_net_client_close waits for nng's close before leaving it to its thread. */
#define CLIENT_CLOSE_WAIT_MS 10000

void fri_net_client_close(fri_net_client *c) {
    if (!c) return;
    pthread_t th;
    if (!c->sock_open) { client_free(c); return; }
    if (pthread_create(&th, NULL, closer_main, c) != 0) { /* no thread: close here */
        nng_close(c->sock);
        client_free(c);
        return;
    }
    pthread_detach(th);
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += CLIENT_CLOSE_WAIT_MS / 1000;
    pthread_mutex_lock(&c->amu);
    while (!c->closed && pthread_cond_timedwait(&c->acv, &c->amu, &until) == 0) {}
    bool closed = c->closed;
    if (!closed) c->abandoned = true; /* the closer frees it, if nng ever returns */
    pthread_mutex_unlock(&c->amu);
    if (closed) client_free(c);
    else atomic_fetch_add(&g_abandoned, 1);
}
