/* The networked runtime's transport: opaque byte messages over nng REQ/REP, on
 * tls+tcp:// (or tcp:// only when asked for by name). Clients start every exchange, so a
 * device behind NAT can take part; each request gets exactly one reply. What the bytes
 * mean is not this file's business (the message envelope is wire.c's).
 *
 * Server: one REP socket, one listener, `contexts` nng contexts each running its own
 * state machine (receive -> handler -> send reply -> receive), so that many requests are
 * in progress at once. A watchdog thread closes connections that deliver no complete
 * request for idle_ms and turns nng's listener counters (TLS handshake failures, peers
 * that do not speak the protocol) into events.
 *
 * Client: one REQ socket and one dialer per object (~100 KB with a TLS session, none of
 * it per request), so a load generator can hold a thousand in one process. The dialer
 * connects in the background and reconnects by itself with backoff; fri_net_request
 * waits at most timeout_ms. A client object makes one request at a time (calls from
 * several threads are serialised); use one object per simulated device.
 *
 * Nothing here prints or exits: failures are fr_err codes with a message naming the URL
 * and what happened; things that happen on their own (connections, refusals) go to the
 * server's event callback for the caller to log. Internal to the library (fri_ prefix). */
#ifndef FEDREC_SRC_RUNTIME_NET_TRANSPORT_H
#define FEDREC_SRC_RUNTIME_NET_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fedrec/core.h"

/* Room for a peer address as text: "[ffff:...:ffff]:65535" and its NUL. */
#define FRI_NET_ADDR_MAX 56

/* Defaults of the options (also the values _default() fills in). */
#define FRI_NET_DEFAULT_MAX_MSG ((size_t)64 << 20)    /* largest request a server takes */
#define FRI_NET_DEFAULT_MAX_REPLY ((size_t)256 << 20) /* largest reply a client takes */
#define FRI_NET_DEFAULT_CONTEXTS 64
#define FRI_NET_DEFAULT_IDLE_MS 30000
#define FRI_NET_DEFAULT_RECONNECT_MIN_MS 100
#define FRI_NET_DEFAULT_RECONNECT_MAX_MS 5000
#define FRI_NET_DEFAULT_DIAL_STALL_MS 120000
#define FRI_NET_DEFAULT_CLOSE_WAIT_MS 10000

/* Who sent a request: valid only during the handler call. */
typedef struct fri_net_peer {
    const char *addr;   /* remote address as text, "127.0.0.1:50312" or "[::1]:50312" */
    uint32_t pipe;      /* nng pipe id: names one connection for its lifetime */
    void *tx;           /* the transport's (fri_net_reply_alloc) */
} fri_net_peer;

/* A reply buffer of n bytes that the transport sends as it is, without a copy: a handler
 * may fill it and return it as *reply with *reply_n = n (at most one per call; any other
 * use of it is freed by the transport). NULL when out of memory. During the handler call
 * only. */
uint8_t *fri_net_reply_alloc(const fri_net_peer *peer, size_t n);

/* Handles one request: req[0, n) is the request (valid during the call only). Returns 0
 * and sets *reply / *reply_n to the reply, allocated with fri_malloc (the transport frees
 * it with fri_free; NULL with 0 bytes sends an empty reply). Returns non-zero to refuse
 * the request: no reply is sent and the connection is closed (FRI_NET_EV_REFUSED); a
 * refusing handler sets *reply to nothing (anything set is freed). Called on nng's
 * threads, possibly by several of them at once (up to `contexts` concurrent calls):
 * it must be thread-safe, should be quick, and must not stop the server. */
typedef int (*fri_net_handler)(void *ctx, const uint8_t *req, size_t n, uint8_t **reply, size_t *reply_n,
                               const fri_net_peer *peer);

/* A handler's return that holds the request (a long poll): no reply now, *reply left
 * NULL; the request's context stays with it (one of `contexts`) until the caller answers
 * with fri_net_server_reply_held(peer->tx, ...), from any thread, exactly once. The
 * connection counts as busy meanwhile (the watchdog leaves it open). */
#define FRI_NET_HELD 2

/* Sends the reply b[0, n) to a request its handler held (held = that call's peer->tx);
 * copies b. Out of memory: the connection is closed instead (the client retries). */
void fri_net_server_reply_held(void *held, const uint8_t *b, size_t n);

typedef enum fri_net_event_kind {
    /* about one connection (pipe, addr) */
    FRI_NET_EV_CONNECT = 1,   /* a connection completed its handshakes */
    FRI_NET_EV_DISCONNECT,    /* a connection ended; count = requests it made. nng 1.5.2
                                 does not say why: the peer closed it, the network failed,
                                 or it sent a message far over max_msg (which nng drops
                                 unread, before allocating it, closing the connection) */
    FRI_NET_EV_IDLE_CLOSED,   /* closed by the server: no complete request for idle_ms
                                 (a slow or silent peer); count = ms it was quiet */
    FRI_NET_EV_REFUSED,       /* closed by the server: the handler refused a request */
    FRI_NET_EV_TOO_LARGE,     /* closed by the server: a request just over max_msg (within
                                 the room nng's limit leaves for headers); count = size */
    FRI_NET_EV_CONN_LIMIT,    /* refused by the server: max_conns connections were open;
                                 count = connections open */
    /* counted by nng's listener, which names no connection: count = how many since the
     * last report (addr "", pipe 0). nng 1.5.2 misses a failure that comes within 100 ms
     * of the previous one, or while a new connection is being added, so these counts are
     * lower bounds, except where fedrec's TLS engine counts (TLS failures, TLS timeouts) */
    FRI_NET_EV_TLS_FAILED,    /* TLS handshakes that failed (a client without a valid
                                 certificate, a client that distrusts ours, not TLS); with
                                 fedrec's engine, its count of failed server handshakes in
                                 the whole process (as for the timeouts below) */
    FRI_NET_EV_PROTOCOL,      /* connections that sent bytes that are not nng's SP
                                 protocol (garbage on a tcp:// listener) */
    FRI_NET_EV_HANDSHAKE_TIMEOUT, /* connections that did not finish their handshake in
                                     time: nng's protocol handshake (10 s, tcp://), or the
                                     TLS one (handshake_ms; fedrec's TLS engine counts them
                                     for the whole process, so with several TLS servers in
                                     one process each reports all of them) */
    FRI_NET_EV_REJECTED,      /* peers of the wrong SP protocol (not REQ) */
    FRI_NET_EV_NOMEM,         /* connections dropped for lack of memory (also sent for one
                                 connection, with its pipe, when the server is short) */
} fri_net_event_kind;

/* Something the server's caller may want to log. Valid only during the callback. */
typedef struct fri_net_event {
    fri_net_event_kind kind;
    uint32_t pipe;      /* the connection, or 0 for the counted kinds */
    const char *addr;   /* its remote address, or "" when nng gives none */
    uint64_t count;     /* see the kinds above */
    const char *text;   /* one sentence for a log line, naming the listen URL */
} fri_net_event;

/* Called on nng's threads and on the watchdog thread, possibly concurrently; must not
 * call back into the server. */
typedef void (*fri_net_event_fn)(void *ctx, const fri_net_event *ev);

typedef struct fri_net_server_opts {
    const char *url;          /* "tls+tcp://HOST:PORT" (PORT 0: any free port), or
                                 "tcp://HOST:PORT" with insecure */
    const char *cert_file;    /* the server's certificate (PEM; may hold its chain) */
    const char *key_file;     /* its private key (PEM, unencrypted) */
    const char *ca_file;      /* NULL: any client may connect; else clients must present
                                 a certificate signed by this CA (mutual TLS) */
    bool insecure;            /* allow tcp:// (no encryption, no authentication) */
    size_t max_msg;           /* largest request in bytes: a larger one closes its
                                 connection (nng drops one over max_msg + 32 unread,
                                 before allocating it) */
    int contexts;             /* requests in progress at once (1..4096) */
    int idle_ms;              /* a connection with no complete request for this long is
                                 closed (>= 10), unless one of its requests is in the
                                 handler. nng does not show partial messages, so a slow
                                 trickle and a silent connection share this one limit:
                                 clients must make a request at least this often (a closed
                                 client reconnects by itself, at the cost of a handshake) */
    int handshake_ms;         /* tls+tcp:// with fedrec's engine: a connection whose TLS
                                 handshake has not ended this long after it was accepted
                                 is closed (nng never closes a peer that sends nothing);
                                 0: no limit. Process-wide: the last server started sets it */
    uint32_t max_conns;       /* connections served at once (0: no limit); one more is
                                 reported (FRI_NET_EV_CONN_LIMIT) and never served: each of
                                 its requests gets the "server full" reply (below), on
                                 which fedrec's client closes it; one that stays open is
                                 closed FRI_NET_REFUSED_GRACE_MS after (or idle_ms after it
                                 came, if it sends nothing). Past FRI_NET_REFUSING_MAX such
                                 connections open at once, one more is closed at once */
    fri_net_handler handle;   /* required */
    void *handle_ctx;
    fri_net_event_fn event;   /* may be NULL */
    void *event_ctx;
    int close_wait_ms;        /* how long fri_net_server_stop waits for nng's close (>= 1;
                                 0: FRI_NET_DEFAULT_CLOSE_WAIT_MS); see there */
} fri_net_server_opts;

/* The "server full" reply: what a server answers, instead of serving it, to each request of
 * a connection it refused for max_conns. Exactly FRI_NET_FULL_LEN bytes: 16 bytes of magic
 * (0xFF "fedrec serverfu"; never a wire.c message, which starts "FRNT"), then u32
 * connections served and u32 the limit, little-endian. fri_net_request takes it as a
 * refusal: it closes that connection (the server does not, so that no connection is ever
 * cut between the pieces of a message: nng 1.5.2's bug (3) in docs/ARCHITECTURE.md) and
 * fails with FR_ERR_IO; its dialer redials after its backoff. A handler must never reply
 * with exactly these bytes. */
#define FRI_NET_FULL_LEN 24
/* Refused connections open at once (awaiting their request or their client's close). */
#define FRI_NET_REFUSING_MAX 64
/* How long a refused connection that got the reply may stay open. */
#define FRI_NET_REFUSED_GRACE_MS 2000
void fri_net_full_encode(uint8_t out[FRI_NET_FULL_LEN], uint32_t open, uint32_t limit);
/* True when b[0, n) is a "server full" reply; *open, *limit (each may be NULL) get its
 * fields. */
bool fri_net_full_decode(const uint8_t *b, size_t n, uint32_t *open, uint32_t *limit);

/* Counters of a running server (each read atomically; together only roughly consistent). */
typedef struct fri_net_server_stats {
    uint64_t open;            /* connections open now */
    uint64_t connects;        /* connections accepted since start */
    uint64_t requests;        /* requests handed to the handler */
    uint64_t replies;         /* replies sent */
    uint64_t refused;         /* requests the handler refused */
    uint64_t idle_closed;     /* connections closed for idleness */
    uint64_t tls_failed;      /* see the event kinds */
    uint64_t protocol_errors;
    uint64_t handshake_timeouts;
    uint64_t rejected;
    uint64_t too_large;       /* requests over max_msg seen by the server (see the event) */
    uint64_t over_limit;      /* connections refused for max_conns */
    uint64_t refusing;        /* refused connections still open (not counted in open) */
    uint64_t full_replies;    /* "server full" replies sent to refused connections */
} fri_net_server_stats;

typedef struct fri_net_server fri_net_server;

/* Defaults: no URL, files or handler; max_msg FRI_NET_DEFAULT_MAX_MSG, contexts 64,
 * idle_ms 30000, secure. */
void fri_net_server_opts_default(fri_net_server_opts *o);
/* FR_OK, or FR_ERR_INVALID saying what is wrong (a scheme other than tls+tcp://, tcp://
 * without insecure, a missing certificate or handler, a limit out of range). Reads no
 * file. */
FR_NODISCARD fr_err fri_net_server_opts_check(const fri_net_server_opts *o);
/* Checks o, loads the certificates, listens and starts serving. On failure *out is NULL
 * and nothing is left running: FR_ERR_INVALID (options), FR_ERR_IO (a file cannot be
 * read, the address cannot be bound: message names it), FR_ERR_FORMAT (a certificate or
 * key nng cannot parse), FR_ERR_NOMEM. The strings of o are copied. */
FR_NODISCARD fr_err fri_net_server_start(fri_net_server **out, const fri_net_server_opts *o);
/* The bound TCP port (what port 0 in the URL became). */
int fri_net_server_port(const fri_net_server *s);
/* True for a tls+tcp:// URL (the only other scheme the transport takes is tcp://). */
bool fri_net_url_tls(const char *url);
/* True when the server speaks tls+tcp:// (its connections are authenticated and
 * encrypted: fri_net_decode_on's authenticated), false for plain tcp://. */
bool fri_net_server_tls(const fri_net_server *s);
void fri_net_server_stats_get(const fri_net_server *s, fri_net_server_stats *st);
/* Closes the listener and every connection, waits for handlers in progress to return and
 * for the watchdog to end, and frees the server. Requests not yet answered get no reply
 * (their clients time out or retry). Accepts NULL. Events may be delivered until it
 * returns, never after. nng 1.5.2's close can wait forever (a connection closed between
 * the pieces of a message wedges the process's nng: docs/ARCHITECTURE.md); after
 * close_wait_ms it is left on a thread of its own, which frees the server if it ever
 * returns, and counted by fri_net_closes_abandoned. */
void fri_net_server_stop(fri_net_server *s);

typedef struct fri_net_client_opts {
    const char *url;          /* "tls+tcp://HOST:PORT", or "tcp://HOST:PORT" with insecure */
    const char *ca_file;      /* the CA that signed the server's certificate (PEM);
                                 required for tls+tcp */
    const char *server_name;  /* name the server's certificate must carry; NULL: the
                                 URL's host */
    const char *cert_file;    /* own certificate and key for mutual TLS, or both NULL */
    const char *key_file;
    bool insecure;            /* allow tcp:// */
    int reconnect_min_ms;     /* first wait before redialling (>= 1) */
    int reconnect_max_ms;     /* the wait doubles up to this (>= reconnect_min_ms) */
    int dial_stall_ms;        /* a connection attempt with no outcome for this long is
                                 abandoned and the dialer replaced (works around nng
                                 1.5.2's TLS dialer, which can hang or stop; >= 100,
                                 or 0: never).
                                 Keep it far above a handshake's worst time: a server
                                 flooded by 1000 clients at once took 29 s to answer the
                                 last (with nng's mbedTLS engine), and replacing a
                                 dialer mid-handshake cut live handshakes and has
                                 wedged nng's socket close */
    size_t max_reply;         /* largest reply in bytes: a larger one fails the request
                                 (FR_ERR_RANGE, or a lost connection when far over) */
} fri_net_client_opts;

typedef struct fri_net_client fri_net_client;

/* Defaults: no URL or files, reconnect 100 ms doubling to 5 s, dial stall 120 s,
 * max_reply 256 MiB. */
void fri_net_client_opts_default(fri_net_client_opts *o);
/* FR_OK, or FR_ERR_INVALID saying what is wrong. Reads no file. */
FR_NODISCARD fr_err fri_net_client_opts_check(const fri_net_client_opts *o);
/* Checks o, loads the certificates and starts dialling in the background (the server
 * need not be up yet). Errors as fri_net_server_start's; *out is NULL on failure. */
FR_NODISCARD fr_err fri_net_client_open(fri_net_client **out, const fri_net_client_opts *o);
/* Sends req[0, n) and waits for the reply, at most timeout_ms (> 0) in all. On success
 * *reply (nng's message, not copied: free with fri_net_reply_free; non-NULL even when empty) holds
 * *reply_n bytes. A request is never resent by the transport: if the connection is lost
 * while waiting for the reply (the server stopped, closed it as idle, refused the request
 * or found it over max_msg), the call fails at once; the caller, who knows whether the
 * request may be repeated, retries. Until connected, the request waits (up to the
 * timeout) for the dialer. Errors (*reply NULL): FR_ERR_IO when no reply came, naming the
 * URL and what happened: "no reply within N ms" with the connection's state (never
 * connected, and why: refused, TLS handshake failed ...; or lost and reconnecting), or
 * "the connection was lost", or "the server is full" (the server refused the connection
 * for its max_conns and answered the "server full" reply: the call closed that connection,
 * and the dialer redials after its backoff); the same object may be used again and keeps
 * reconnecting. FR_ERR_INVALID (arguments), FR_ERR_NOMEM. Thread-safe: concurrent calls on one object
 * run one after another. */
FR_NODISCARD fr_err fri_net_request(fri_net_client *c, const uint8_t *req, size_t n, uint8_t **reply,
                                    size_t *reply_n, int timeout_ms);
void fri_net_reply_free(uint8_t *reply);
/* True while the client has a connection to the server. */
bool fri_net_client_connected(const fri_net_client *c);
/* True when the client speaks tls+tcp:// (see fri_net_server_tls). */
bool fri_net_client_tls(const fri_net_client *c);
/* How many times a request found the dialer stuck and replaced it (nng 1.5.2's TLS
 * dialer can stop redialling after a handshake cut short; see transport.c). */
uint64_t fri_net_client_redials(const fri_net_client *c);
/* How many requests the server answered "server full" (max_conns): each such connection
 * was closed by the client. */
uint64_t fri_net_client_full_refusals(const fri_net_client *c);
/* How many times a request found the connection nng counted as open dead underneath (its
 * TCP connection ended while nng's TLS layer was not receiving) and closed it, so that the
 * dialer redials (see watch_link in transport.c). */
uint64_t fri_net_client_dead_links(const fri_net_client *c);
/* Closes the connection and frees the client. No request may be in progress on it.
 * Accepts NULL. Waits at most 10 s for nng's close (which can hang in nng 1.5.2); past
 * that the close goes on in the background and frees the client when it returns, and is
 * counted by fri_net_closes_abandoned. */
void fri_net_client_close(fri_net_client *c);
/* How many server stops and client closes in this process gave up waiting for nng's
 * close: not 0 means nng is wedged (every later close will wait forever too). */
uint64_t fri_net_closes_abandoned(void);

#endif
