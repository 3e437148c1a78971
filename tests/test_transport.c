/* The networked runtime's transport (src/runtime/net/transport.c): nng REQ/REP over
 * tls+tcp:// with throw-away certificates from scripts/make-certs.sh, and over tcp://
 * only when insecure. Every server listens on 127.0.0.1 port 0; every wait is bounded in
 * count and time, and every test has a Criterion timeout (a wedged nng fails that test by
 * name, not CI at its time limit). Raw sockets play the misbehaving peers: garbage, a slow trickle, a
 * length header far over the limit (over TLS, tu_tls_* of testutil.h). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "core/core.h"
#include "runtime/net/tls_engine.h"
#include "runtime/net/transport.h"
#include "testutil.h"


/* ---- helpers ---- */

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* A fresh directory with ca.crt/key, server.crt/key, client.crt/key. */
static char *make_certs(void) {
    char *d = tu_tmpdir();
    char *cmd = NULL;
    cr_assert_geq(asprintf(&cmd, "'%s/scripts/make-certs.sh' '%s' >/dev/null", FR_SOURCE_DIR, d), 0);
    cr_assert_eq(system(cmd), 0, "make-certs.sh failed");
    free(cmd);
    return d;
}

static char *path_in(const char *dir, const char *name) {
    char *p = NULL;
    cr_assert_geq(asprintf(&p, "%s/%s", dir, name), 0);
    return p;
}

/* What the test servers do: echo, count, optionally wait, refuse "REFUSE...". */
typedef struct echo_state {
    atomic_int calls;
    atomic_int in_handler;
    atomic_size_t max_n;
    int delay_ms;
    char peer_addr[FRI_NET_ADDR_MAX]; /* of the last call */
    pthread_mutex_t mu;
} echo_state;

static int echo(void *ctx, const uint8_t *req, size_t n, uint8_t **reply, size_t *reply_n, const fri_net_peer *peer) {
    echo_state *st = ctx;
    atomic_fetch_add(&st->calls, 1);
    atomic_fetch_add(&st->in_handler, 1);
    size_t m = atomic_load(&st->max_n);
    while (n > m && !atomic_compare_exchange_weak(&st->max_n, &m, n)) {
    }
    pthread_mutex_lock(&st->mu);
    snprintf(st->peer_addr, sizeof st->peer_addr, "%s", peer->addr);
    pthread_mutex_unlock(&st->mu);
    if (st->delay_ms) sleep_ms(st->delay_ms);
    atomic_fetch_sub(&st->in_handler, 1);
    if (n >= 6 && memcmp(req, "REFUSE", 6) == 0) return 1;
    *reply = fri_malloc(n);
    if (!*reply) return 1;
    if (n) memcpy(*reply, req, n);
    *reply_n = n;
    return 0;
}

/* Events, by kind, with the last text and address of each. */
typedef struct evlog {
    pthread_mutex_t mu;
    uint64_t n[16];
    char text[16][512];
    char addr[16][FRI_NET_ADDR_MAX];
    int64_t at[16];
} evlog;

static void on_event(void *ctx, const fri_net_event *ev) {
    evlog *l = ctx;
    cr_assert(ev->kind > 0 && ev->kind < 16);
    cr_assert(ev->text && ev->addr);
    pthread_mutex_lock(&l->mu);
    l->n[ev->kind] += ev->kind >= FRI_NET_EV_TLS_FAILED ? ev->count : 1;
    snprintf(l->text[ev->kind], sizeof l->text[0], "%s", ev->text);
    snprintf(l->addr[ev->kind], sizeof l->addr[0], "%s", ev->addr);
    l->at[ev->kind] = now_ms();
    pthread_mutex_unlock(&l->mu);
}

static uint64_t ev_count(evlog *l, fri_net_event_kind k) {
    pthread_mutex_lock(&l->mu);
    uint64_t n = l->n[k];
    pthread_mutex_unlock(&l->mu);
    return n;
}

/* Waits (at most max_ms) until kind k has been reported at least `want` times. */
static bool ev_wait(evlog *l, fri_net_event_kind k, uint64_t want, int max_ms) {
    for (int64_t end = now_ms() + max_ms; now_ms() < end;) {
        if (ev_count(l, k) >= want) return true;
        sleep_ms(10);
    }
    return ev_count(l, k) >= want;
}

typedef struct fixture {
    char *certs;
    char *ca, *srv_crt, *srv_key, *cli_crt, *cli_key;
    echo_state st;
    evlog ev;
    fri_net_server *srv;
    int port;
    char url[64];
} fixture;

static void fx_init(fixture *f, bool tls) {
    memset(f, 0, sizeof *f);
    pthread_mutex_init(&f->st.mu, NULL);
    pthread_mutex_init(&f->ev.mu, NULL);
    if (tls) {
        f->certs = make_certs();
        f->ca = path_in(f->certs, "ca.crt");
        f->srv_crt = path_in(f->certs, "server.crt");
        f->srv_key = path_in(f->certs, "server.key");
        f->cli_crt = path_in(f->certs, "client.crt");
        f->cli_key = path_in(f->certs, "client.key");
    }
}

static void server_opts(fixture *f, fri_net_server_opts *o, bool tls) {
    fri_net_server_opts_default(o);
    o->url = tls ? "tls+tcp://127.0.0.1:0" : "tcp://127.0.0.1:0";
    o->insecure = !tls;
    o->cert_file = tls ? f->srv_crt : NULL;
    o->key_file = tls ? f->srv_key : NULL;
    o->handle = echo;
    o->handle_ctx = &f->st;
    o->event = on_event;
    o->event_ctx = &f->ev;
}

static void fx_start(fixture *f, const fri_net_server_opts *o) {
    fr_err e = fri_net_server_start(&f->srv, o);
    cr_assert_eq(e, FR_OK, "server start: %s", fr_errmsg());
    f->port = fri_net_server_port(f->srv);
    cr_assert_gt(f->port, 0);
    snprintf(f->url, sizeof f->url, "%s://127.0.0.1:%d", strncmp(o->url, "tls", 3) ? "tcp" : "tls+tcp", f->port);
}

static void fx_fini(fixture *f) {
    /* the tests close their clients first; let the server see them go, so that no TLS
     * handshake (a client reconnecting) is in progress when it stops: nng 1.5.2 with its
     * mbedTLS engine (FEDREC_TLS_ENGINE=nng) leaks such a connection, and LeakSanitizer
     * would report it */
    fri_net_server_stats st = {0};
    for (int i = 0; f->srv && i < 200; i++) {
        fri_net_server_stats_get(f->srv, &st);
        if (st.open == 0 && st.refusing == 0) break;
        sleep_ms(10);
    }
    if (f->srv) sleep_ms(150);
    fri_net_server_stop(f->srv);
    free(f->ca);
    free(f->srv_crt);
    free(f->srv_key);
    free(f->cli_crt);
    free(f->cli_key);
    tu_rmtree(f->certs);
    free(f->certs);
    pthread_mutex_destroy(&f->st.mu);
    pthread_mutex_destroy(&f->ev.mu);
}

static void client_opts(const fixture *f, fri_net_client_opts *o) {
    fri_net_client_opts_default(o);
    o->url = f->url;
    o->insecure = strncmp(f->url, "tcp", 3) == 0;
    o->ca_file = o->insecure ? NULL : f->ca;
    o->reconnect_min_ms = 20;
    o->reconnect_max_ms = 200;
}

/* A client the server will refuse dials once (the next attempt would come after 10
 * minutes), so the tests never close it in the middle of a handshake: nng 1.5.2 can leave
 * such a connection unfreed (LeakSanitizer: bug (5) in docs/ARCHITECTURE.md). It used to
 * redial every 2 s, because nng's listener does not count every refused handshake
 * (bug (6)), and a loaded sanitizer run then closed it during its second attempt; the
 * server's event is now fedrec's TLS engine's count, which misses none. */
static void refused_slowly(fri_net_client_opts *o) {
    o->reconnect_min_ms = 600000;
    o->reconnect_max_ms = 600000;
}

static fri_net_client *client_open(const fri_net_client_opts *o) {
    fri_net_client *c = NULL;
    fr_err e = fri_net_client_open(&c, o);
    cr_assert_eq(e, FR_OK, "client open: %s", fr_errmsg());
    return c;
}

/* One request that must come back as its echo. */
static void roundtrip(fri_net_client *c, const char *msg, int timeout_ms) {
    uint8_t *r = NULL;
    size_t rn = 0;
    fr_err e = fri_net_request(c, (const uint8_t *)msg, strlen(msg), &r, &rn, timeout_ms);
    cr_assert_eq(e, FR_OK, "request '%s': %s", msg, fr_errmsg());
    cr_assert_eq(rn, strlen(msg));
    cr_assert(memcmp(r, msg, rn) == 0);
    fri_net_reply_free(r);
}

/* A raw TCP connection to 127.0.0.1:port; *local gets "127.0.0.1:N" of our end. */
static int raw_connect(int port, char *local, size_t n) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(fd, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    if (local) {
        struct sockaddr_in me;
        socklen_t len = sizeof me;
        cr_assert_eq(getsockname(fd, (struct sockaddr *)&me, &len), 0);
        snprintf(local, n, "127.0.0.1:%u", (unsigned)ntohs(me.sin_port));
    }
    return fd;
}

/* Milliseconds until the peer closes fd (reads and drops whatever arrives), or -1 if it
 * is still open after max_ms. */
static int64_t raw_wait_closed(int fd, int max_ms) {
    struct timeval tv = {0, 50000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    int64_t t0 = now_ms();
    while (now_ms() - t0 < max_ms) {
        char b[256];
        ssize_t r = recv(fd, b, sizeof b, 0);
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) return now_ms() - t0;
    }
    return -1;
}

/* Writes the SP handshake of a REQ peer (nng's 8-byte header) and reads the server's. */
static void raw_sp_handshake(int fd) {
    const uint8_t hdr[8] = {0, 'S', 'P', 0, 0, 0x30, 0, 0};
    cr_assert_eq(send(fd, hdr, 8, MSG_NOSIGNAL), 8);
    uint8_t got[8];
    size_t have = 0;
    struct timeval tv = {2, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    while (have < 8) {
        ssize_t r = recv(fd, got + have, 8 - have, 0);
        cr_assert_gt(r, 0, "no SP header from the server");
        have += (size_t)r;
    }
    cr_assert(got[1] == 'S' && got[2] == 'P');
}

/* ---- tests ---- */

Test(transport, echo_over_tls, .timeout = 120) {
    fixture f;
    fx_init(&f, true);
    fri_net_server_opts so;
    server_opts(&f, &so, true);
    so.max_msg = 2u << 20;
    fx_start(&f, &so);
    fri_net_client_opts co;
    client_opts(&f, &co);
    co.server_name = "localhost"; /* explicit name; the URL's 127.0.0.1 is tested below */
    fri_net_client *c = client_open(&co);
    roundtrip(c, "hello over TLS", 5000);
    /* nng 1.5.2 starts a pipe (REQ may send on it) before it runs the ADD_POST callback
     * that marks the client connected, so a reply can come first: wait for the mark */
    for (int i = 0; i < 500 && !fri_net_client_connected(c); i++) sleep_ms(10);
    cr_assert(fri_net_client_connected(c));
    /* an empty request and a 1 MiB one, byte for byte */
    uint8_t *r = NULL;
    size_t rn = 7;
    cr_assert_eq(fri_net_request(c, NULL, 0, &r, &rn, 5000), FR_OK, "%s", fr_errmsg());
    cr_assert_not_null(r);
    cr_assert_eq(rn, 0);
    fri_net_reply_free(r);
    size_t big = 1u << 20;
    uint8_t *b = malloc(big);
    for (size_t i = 0; i < big; i++) b[i] = (uint8_t)(i * 7 + (i >> 11));
    cr_assert_eq(fri_net_request(c, b, big, &r, &rn, 10000), FR_OK, "%s", fr_errmsg());
    cr_assert_eq(rn, big);
    cr_assert(memcmp(r, b, big) == 0);
    fri_net_reply_free(r);
    free(b);
    /* the handler saw the peer's address; the server reported the connection */
    pthread_mutex_lock(&f.st.mu);
    cr_assert(strncmp(f.st.peer_addr, "127.0.0.1:", 10) == 0, "peer %s", f.st.peer_addr);
    pthread_mutex_unlock(&f.st.mu);
    cr_assert(ev_wait(&f.ev, FRI_NET_EV_CONNECT, 1, 15000));
    cr_assert(strncmp(f.ev.addr[FRI_NET_EV_CONNECT], "127.0.0.1:", 10) == 0);
    fri_net_server_stats st;
    fri_net_server_stats_get(f.srv, &st);
    cr_assert_eq(st.requests, 3);
    cr_assert_eq(st.open, 1);
    /* the server name defaults to the URL's host (127.0.0.1, in the certificate) */
    co.server_name = NULL;
    fri_net_client *c2 = client_open(&co);
    roundtrip(c2, "by address", 5000);
    fri_net_client_close(c2);
    fri_net_client_close(c);
    cr_assert(ev_wait(&f.ev, FRI_NET_EV_DISCONNECT, 2, 15000));
    fx_fini(&f);
}

Test(transport, plain_tcp_only_when_insecure, .timeout = 120) {
    fixture f;
    fx_init(&f, false);
    fri_net_server_opts so;
    server_opts(&f, &so, false);
    fx_start(&f, &so);
    fri_net_client_opts co;
    client_opts(&f, &co);
    fri_net_client *c = client_open(&co);
    roundtrip(c, "plain", 5000);
    fri_net_client_close(c);
    fx_fini(&f);

    /* tcp:// without the flag: refused, saying why, on both sides */
    fri_net_server_opts o;
    fri_net_server_opts_default(&o);
    o.url = "tcp://127.0.0.1:0";
    o.handle = echo;
    fri_net_server *s = (fri_net_server *)&o; /* must be reset to NULL */
    cr_assert_eq(fri_net_server_start(&s, &o), FR_ERR_INVALID);
    cr_assert_null(s);
    cr_assert(strstr(fr_errmsg(), "insecure") && strstr(fr_errmsg(), "tcp://127.0.0.1:0"), "%s", fr_errmsg());
    fri_net_client_opts ci;
    fri_net_client_opts_default(&ci);
    ci.url = "tcp://127.0.0.1:9";
    fri_net_client *cc = NULL;
    cr_assert_eq(fri_net_client_open(&cc, &ci), FR_ERR_INVALID);
    cr_assert_null(cc);
    cr_assert(strstr(fr_errmsg(), "insecure"), "%s", fr_errmsg());
    /* other schemes, missing ports, missing certificates */
    const char *bad[] = {"ipc:///tmp/fedrec.ipc", "ws://127.0.0.1:5555", "inproc://x", "tls+tcp://127.0.0.1", "nonsense"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        o.url = bad[i];
        o.insecure = true;
        cr_assert_eq(fri_net_server_opts_check(&o), FR_ERR_INVALID, "%s", bad[i]);
        cr_assert(strstr(fr_errmsg(), bad[i]), "%s: %s", bad[i], fr_errmsg());
        ci.url = bad[i];
        ci.insecure = true;
        cr_assert_eq(fri_net_client_opts_check(&ci), FR_ERR_INVALID, "%s", bad[i]);
    }
    cr_assert(fri_net_server_opts_check(&(fri_net_server_opts){.url = "ipc:///x", .handle = echo, .contexts = 1,
                                                               .idle_ms = 100, .max_msg = 1}) == FR_ERR_INVALID);
    cr_assert(strstr(fr_errmsg(), "scheme 'ipc://'"), "%s", fr_errmsg());
    o.url = "tls+tcp://127.0.0.1:0";
    o.insecure = false;
    cr_assert_eq(fri_net_server_opts_check(&o), FR_ERR_INVALID);
    cr_assert(strstr(fr_errmsg(), "certificate"), "%s", fr_errmsg());
    ci.url = "tls+tcp://127.0.0.1:5555";
    ci.insecure = false;
    cr_assert_eq(fri_net_client_opts_check(&ci), FR_ERR_INVALID);
    cr_assert(strstr(fr_errmsg(), "CA"), "%s", fr_errmsg());
}

Test(transport, certificate_files_are_checked, .timeout = 120) {
    fixture f;
    fx_init(&f, true);
    fri_net_server_opts so;
    server_opts(&f, &so, true);
    so.cert_file = "/nonexistent/fedrec/server.crt";
    cr_assert_eq(fri_net_server_start(&f.srv, &so), FR_ERR_IO);
    cr_assert_null(f.srv);
    cr_assert(strstr(fr_errmsg(), "/nonexistent/fedrec/server.crt"), "%s", fr_errmsg());
    /* a key that is not PEM, and a certificate given as the key */
    char *junk = tu_write(f.certs, "junk.pem", "not a key\n");
    so.cert_file = f.srv_crt;
    so.key_file = junk;
    cr_assert_eq(fri_net_server_start(&f.srv, &so), FR_ERR_FORMAT);
    cr_assert(strstr(fr_errmsg(), "junk.pem"), "%s", fr_errmsg());
    so.key_file = f.srv_crt;
    cr_assert_eq(fri_net_server_start(&f.srv, &so), FR_ERR_FORMAT);
    cr_assert(strstr(fr_errmsg(), "does not accept"), "%s", fr_errmsg());
    free(junk);
    /* the address taken: FR_ERR_IO naming it */
    server_opts(&f, &so, true);
    fx_start(&f, &so);
    char url[64];
    snprintf(url, sizeof url, "tls+tcp://127.0.0.1:%d", f.port);
    so.url = url;
    fri_net_server *s2 = NULL;
    cr_assert_eq(fri_net_server_start(&s2, &so), FR_ERR_IO);
    cr_assert_null(s2);
    cr_assert(strstr(fr_errmsg(), url), "%s", fr_errmsg());
    fx_fini(&f);
}

Test(transport, wrong_ca_fails_and_server_keeps_serving, .timeout = 120) {
    fixture f;
    fx_init(&f, true);
    char *other = make_certs(); /* another CA */
    char *other_ca = path_in(other, "ca.crt");
    fri_net_server_opts so;
    server_opts(&f, &so, true);
    fx_start(&f, &so);
    fri_net_client_opts co;
    client_opts(&f, &co);
    fri_net_client *good = client_open(&co);
    co.ca_file = other_ca;
    refused_slowly(&co);
    fri_net_client *bad = client_open(&co);
    /* the message names the failed handshake once the dialer has counted it (a request
     * may time out before that on a loaded machine: asked again, at most for 15 s) */
    bool named = false;
    for (int64_t end = now_ms() + 15000; !named && now_ms() < end;) {
        uint8_t *r = (uint8_t *)1;
        size_t rn = 1;
        int64_t t0 = now_ms();
        fr_err e = fri_net_request(bad, (const uint8_t *)"x", 1, &r, &rn, 800);
        cr_assert_eq(e, FR_ERR_IO);
        cr_assert_null(r);
        cr_assert_lt(now_ms() - t0, 3000);
        cr_assert(strstr(fr_errmsg(), f.url) && strstr(fr_errmsg(), "never connected"), "%s", fr_errmsg());
        named = strstr(fr_errmsg(), "TLS handshake") != NULL;
    }
    cr_assert(named, "%s", fr_errmsg());
    cr_assert(!fri_net_client_connected(bad));
    roundtrip(good, "still served", 5000);
    cr_assert(ev_wait(&f.ev, FRI_NET_EV_TLS_FAILED, 1, 15000), "no TLS failure reported");
    cr_assert_eq(atomic_load(&f.st.calls), 1);
    fri_net_client_close(bad);
    fri_net_client_close(good);
    free(other_ca);
    tu_rmtree(other);
    free(other);
    fx_fini(&f);
}

Test(transport, mutual_tls_requires_a_client_certificate, .timeout = 120) {
    fixture f;
    fx_init(&f, true);
    fri_net_server_opts so;
    server_opts(&f, &so, true);
    so.ca_file = f.ca;
    fx_start(&f, &so);
    fri_net_client_opts co;
    client_opts(&f, &co);
    refused_slowly(&co);
    fri_net_client *anon = client_open(&co);
    client_opts(&f, &co);
    co.cert_file = f.cli_crt;
    co.key_file = f.cli_key;
    fri_net_client *known = client_open(&co);
    uint8_t *r = NULL;
    size_t rn = 0;
    bool named = false; /* as in wrong_ca_fails_and_server_keeps_serving */
    for (int64_t end = now_ms() + 15000; !named && now_ms() < end;) {
        cr_assert_eq(fri_net_request(anon, (const uint8_t *)"who", 3, &r, &rn, 800), FR_ERR_IO);
        cr_assert(strstr(fr_errmsg(), "never connected"), "%s", fr_errmsg());
        named = strstr(fr_errmsg(), "TLS") != NULL;
    }
    cr_assert(named, "%s", fr_errmsg());
    roundtrip(known, "with a certificate", 5000);
    cr_assert(ev_wait(&f.ev, FRI_NET_EV_TLS_FAILED, 1, 15000));
    fri_net_client_close(anon); /* between its attempts */
    cr_assert_eq(atomic_load(&f.st.calls), 1);
    /* only one of the two: a certificate without its key is an option error */
    co.key_file = NULL;
    fri_net_client *half = NULL;
    cr_assert_eq(fri_net_client_open(&half, &co), FR_ERR_INVALID);
    fri_net_client_close(known);
    fx_fini(&f);
}

Test(transport, oversized_request_dropped_before_allocation, .timeout = 120) {
    fixture f;
    fx_init(&f, true);
    fri_net_server_opts so;
    server_opts(&f, &so, true);
    so.max_msg = 1024;
    fx_start(&f, &so);
    fri_net_client_opts co;
    client_opts(&f, &co);
    fri_net_client *good = client_open(&co), *big = client_open(&co);
    uint8_t blob[4096];
    memset(blob, 'z', sizeof blob);
    uint8_t *r = NULL;
    size_t rn = 0;
    /* Far over the limit: nng drops it as soon as it reads the length and closes the
     * connection, without a reply. The peer is not an nng client: a server dropping a
     * request that its nng client is still sending can wedge nng 1.5.2 in the client's
     * process (docs/ARCHITECTURE.md), which here is the server's too. */
    {
        tu_tls *t = tu_tls_connect(f.port, f.ca);
        cr_assert(t, "TLS connection to the server");
        cr_assert(tu_tls_sp_req_handshake(t), "SP handshake");
        uint8_t frame[12] = {0, 0, 0, 0, 0, 0, 0x10, 0x04, 0x80, 0, 0, 1}; /* 4 + 4096 bytes, request 1 */
        /* the server may close before or after taking all 4 KiB: either write may fail */
        if (tu_tls_write(t, frame, sizeof frame)) (void)tu_tls_write(t, blob, sizeof blob);
        size_t got = 0;
        long ms = tu_tls_wait_closed(t, 5000, &got);
        tu_tls_close(t);
        cr_assert_geq(ms, 0, "the connection stayed open");
        cr_assert_eq(got, 0, "a reply to an oversized request");
    }
    roundtrip(good, "small is fine", 5000);
    cr_assert_eq(fri_net_request(big, blob, 1024, &r, &rn, 5000), FR_OK, "at the limit: %s", fr_errmsg());
    cr_assert_eq(rn, 1024);
    fri_net_reply_free(r);
    /* just over: within nng's header room, so the server sees it, refuses and says so */
    cr_assert_eq(fri_net_request(big, blob, 1025, &r, &rn, 5000), FR_ERR_IO);
    cr_assert(ev_wait(&f.ev, FRI_NET_EV_TOO_LARGE, 1, 15000));
    cr_assert(strstr(f.ev.text[FRI_NET_EV_TOO_LARGE], "1025 bytes (limit 1024)"), "%s", f.ev.text[FRI_NET_EV_TOO_LARGE]);
    roundtrip(good, "still fine", 5000);
    /* big reconnects by itself: let it finish before closing it (nng 1.5.2 can leak a
     * client connection closed in the middle of its reconnection). Its 1025 bytes were
     * all sent before the server saw them, so nng's wedge (above) cannot happen here. */
    roundtrip(big, "reconnected", 5000);
    cr_assert_leq(atomic_load(&f.st.max_n), 1024);
    fri_net_server_stats sst;
    fri_net_server_stats_get(f.srv, &sst);
    cr_assert_eq(sst.too_large, 1);
    fri_net_client_close(big);
    fri_net_client_close(good);
    fx_fini(&f);

    /* A raw peer announcing a 1 TiB message: nng closes at once, allocating nothing (it
     * would wait for the bytes, or fail for lack of memory, if it tried). */
    fx_init(&f, false);
    server_opts(&f, &so, false);
    so.max_msg = 1024;
    fx_start(&f, &so);
    int fd = raw_connect(f.port, NULL, 0);
    raw_sp_handshake(fd);
    const uint8_t len[8] = {0, 0, 1, 0, 0, 0, 0, 0}; /* big-endian 2^40 */
    cr_assert_eq(send(fd, len, 8, MSG_NOSIGNAL), 8);
    int64_t closed = raw_wait_closed(fd, 3000);
    close(fd);
    cr_assert_geq(closed, 0, "the connection stayed open");
    /* (no event is promised: nng may close the connection before announcing it) */
    cr_assert_eq(ev_count(&f.ev, FRI_NET_EV_NOMEM), 0);
    cr_assert_eq(atomic_load(&f.st.calls), 0);
    fri_net_client_opts_default(&co);
    client_opts(&f, &co);
    fri_net_client *c = client_open(&co);
    roundtrip(c, "after the giant", 5000);
    fri_net_client_close(c);
    fx_fini(&f);
}

/* Garbage on a raw socket: nothing crashes, the event is reported, good clients go on. */
static void garbage_case(bool tls, fri_net_event_kind expect) {
    fixture f;
    fx_init(&f, tls);
    fri_net_server_opts so;
    server_opts(&f, &so, tls);
    fx_start(&f, &so);
    fri_net_client_opts co;
    client_opts(&f, &co);
    fri_net_client *good = client_open(&co);
    roundtrip(good, "before", 5000);
    const char *junk[] = {"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "\x16\x03\x01\xff\xff garbage handshake",
                          "\x00SP\x00\x00\x30\x00\x00\xff\xff\xff\xff\xff\xff\xff\xff"};
    for (size_t i = 0; i < sizeof junk / sizeof *junk; i++) {
        int fd = raw_connect(f.port, NULL, 0);
        size_t n = i == 2 ? 16 : strlen(junk[i]);
        send(fd, junk[i], n, MSG_NOSIGNAL);
        raw_wait_closed(fd, 10000); /* the server reads the bytes and closes first (on a loaded
                                       machine it may take a while; closing first races it) */
        close(fd);
        roundtrip(good, "between", 5000);
    }
    /* connections that close at once, or after a byte, before any handshake (nng 1.5.2 had
     * a bug where that stopped a listener: github.com/nanomsg/nng/issues/1518) */
    for (int i = 0; i < 4; i++) {
        int fd = raw_connect(f.port, NULL, 0);
        if (i & 1) send(fd, "\x16", 1, MSG_NOSIGNAL);
        close(fd);
    }
    roundtrip(good, "after hang-ups", 5000);
    /* How many of them are reported. fedrec's TLS engine counts every failed handshake
     * itself: the three pieces of garbage at least (a hang-up after a byte may count
     * too). nng 1.5.2's listener counts a failed negotiation only while it waits for the
     * next connection, not in the 100 ms after the previous failure nor while a new
     * connection is being added (docs/ARCHITECTURE.md, bug (6)): on a loaded machine all
     * of the above can go uncounted. Then more garbage, one connection a second (the
     * listener is idle: nothing else connects), until nng counts one. Over tcp:// only
     * the first two pieces of garbage and the extra ones can be protocol errors. */
    bool exact = tls && fri_tls_engine_ours();
    uint64_t want = exact ? 3 : 1;
    int extra = 0;
    for (int64_t end = now_ms() + 15000; !exact && !ev_wait(&f.ev, expect, 1, 1000) && now_ms() < end; extra++) {
        int fd = raw_connect(f.port, NULL, 0);
        send(fd, junk[0], strlen(junk[0]), MSG_NOSIGNAL);
        cr_assert_geq(raw_wait_closed(fd, 10000), 0, "garbage %d left open", extra);
        close(fd);
    }
    cr_assert(ev_wait(&f.ev, expect, want, 15000), "event %d: %llu reported, %llu expected (%d more pieces of garbage)",
              (int)expect, (unsigned long long)ev_count(&f.ev, expect), (unsigned long long)want, extra);
    cr_assert(strstr(f.ev.text[expect], f.url) || strstr(f.ev.text[expect], "127.0.0.1:0"), "%s", f.ev.text[expect]);
    uint64_t most = tls ? 7 + (uint64_t)extra : 2 + (uint64_t)extra;
    fri_net_server_stats sst;
    fri_net_server_stats_get(f.srv, &sst);
    uint64_t counted = tls ? sst.tls_failed : sst.protocol_errors;
    cr_assert(counted >= want && counted <= most, "%llu counted (%llu .. %llu)", (unsigned long long)counted,
              (unsigned long long)want, (unsigned long long)most);
    cr_assert_leq(ev_count(&f.ev, expect), most);
    cr_assert_eq(atomic_load(&f.st.calls), 5);
    fri_net_client *late = client_open(&co);
    roundtrip(late, "after", 5000);
    fri_net_client_close(late);
    fri_net_client_close(good);
    fx_fini(&f);
}

Test(transport, garbage_on_tls_listener, .timeout = 120) { garbage_case(true, FRI_NET_EV_TLS_FAILED); }
Test(transport, garbage_on_tcp_listener, .timeout = 120) { garbage_case(false, FRI_NET_EV_PROTOCOL); }

typedef struct latency_run {
    fri_net_client *c;
    atomic_bool stop;
    int64_t worst_ms;
    int done, failed;
} latency_run;

static void *latency_main(void *arg) {
    latency_run *l = arg;
    for (int i = 0; i < 100000 && !atomic_load(&l->stop); i++) {
        int64_t t0 = now_ms();
        uint8_t *r = NULL;
        size_t rn = 0;
        if (fri_net_request(l->c, (const uint8_t *)"ping", 4, &r, &rn, 3000) != FR_OK) l->failed++;
        int64_t dt = now_ms() - t0;
        if (dt > l->worst_ms) l->worst_ms = dt;
        fri_net_reply_free(r);
        l->done++;
        sleep_ms(5);
    }
    return NULL;
}

Test(transport, slow_peer_closed_after_the_limit, .timeout = 120) {
    fixture f;
    fx_init(&f, false);
    fri_net_server_opts so;
    server_opts(&f, &so, false);
    so.idle_ms = 1000;
    fx_start(&f, &so);
    fri_net_client_opts co;
    client_opts(&f, &co);
    latency_run l = {.c = client_open(&co)};
    roundtrip(l.c, "warm", 5000);
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, latency_main, &l), 0);
    /* a peer that completes the handshake, announces 100 bytes and sends one a second */
    char local[64];
    int fd = raw_connect(f.port, local, sizeof local);
    raw_sp_handshake(fd);
    int64_t t0 = now_ms();
    const uint8_t len[8] = {0, 0, 0, 0, 0, 0, 0, 100};
    cr_assert_eq(send(fd, len, 8, MSG_NOSIGNAL), 8);
    int64_t closed = -1;
    for (int i = 0; i < 6 && closed < 0; i++) {
        if (send(fd, "x", 1, MSG_NOSIGNAL) != 1) break;
        closed = raw_wait_closed(fd, 1000);
    }
    int64_t after = now_ms() - t0;
    close(fd);
    atomic_store(&l.stop, true);
    pthread_join(th, NULL);
    cr_assert(ev_wait(&f.ev, FRI_NET_EV_IDLE_CLOSED, 1, 15000), "not reported");
    cr_assert_geq(after, 900, "closed after %lld ms, before the limit", (long long)after);
    cr_assert_leq(after, 8000, "closed after %lld ms", (long long)after); /* generous: a loaded machine */
    cr_assert_str_eq(f.ev.addr[FRI_NET_EV_IDLE_CLOSED], local);
    cr_assert(strstr(f.ev.text[FRI_NET_EV_IDLE_CLOSED], "no complete request"), "%s", f.ev.text[FRI_NET_EV_IDLE_CLOSED]);
    /* the good client was never closed (it kept asking) and stayed fast */
    cr_assert_eq(ev_count(&f.ev, FRI_NET_EV_IDLE_CLOSED), 1);
    cr_assert_eq(l.failed, 0);
    cr_assert_gt(l.done, 20);
    cr_assert_lt(l.worst_ms, 2000, "a request took %lld ms while the slow peer was connected", (long long)l.worst_ms);
    /* a client quiet for longer than the limit is closed, reconnects, and is served. It
     * asks again only once the server has closed it and it has reconnected: a request
     * on its way when the close comes could be cut between its pieces, which wedges nng
     * 1.5.2 in the client's process (bug (3) in docs/ARCHITECTURE.md) */
    fri_net_server_stats st0;
    fri_net_server_stats_get(f.srv, &st0);
    cr_assert(ev_wait(&f.ev, FRI_NET_EV_IDLE_CLOSED, 2, 15000), "the quiet client was not closed");
    cr_assert(strstr(f.ev.text[FRI_NET_EV_IDLE_CLOSED], "no complete request"), "%s", f.ev.text[FRI_NET_EV_IDLE_CLOSED]);
    fri_net_server_stats st1 = st0;
    for (int i = 0; i < 1500 && st1.connects == st0.connects; i++) {
        sleep_ms(10);
        fri_net_server_stats_get(f.srv, &st1);
    }
    cr_assert_gt(st1.connects, st0.connects, "the quiet client did not reconnect");
    roundtrip(l.c, "after a pause", 5000);
    fri_net_client_close(l.c);
    fx_fini(&f);
}

Test(transport, handler_refusal_closes_the_connection, .timeout = 120) {
    fixture f;
    fx_init(&f, false);
    fri_net_server_opts so;
    server_opts(&f, &so, false);
    fx_start(&f, &so);
    fri_net_client_opts co;
    client_opts(&f, &co);
    fri_net_client *c = client_open(&co);
    uint8_t *r = NULL;
    size_t rn = 0;
    cr_assert_eq(fri_net_request(c, (const uint8_t *)"REFUSE me", 9, &r, &rn, 300), FR_ERR_IO);
    cr_assert(ev_wait(&f.ev, FRI_NET_EV_REFUSED, 1, 15000));
    roundtrip(c, "fine again", 5000);
    fri_net_client_close(c);
    fx_fini(&f);
}

typedef struct many_arg {
    const fri_net_client_opts *o;
    int id, ok;
    char err[256];
} many_arg;

static void *many_main(void *arg) {
    many_arg *a = arg;
    fri_net_client *c = NULL;
    if (fri_net_client_open(&c, a->o) != FR_OK) {
        snprintf(a->err, sizeof a->err, "open: %s", fr_errmsg());
        return NULL;
    }
    for (int k = 0; k < 5; k++) {
        char msg[64];
        int n = snprintf(msg, sizeof msg, "client %d request %d", a->id, k);
        uint8_t *r = NULL;
        size_t rn = 0;
        if (fri_net_request(c, (const uint8_t *)msg, (size_t)n, &r, &rn, 20000) != FR_OK) {
            snprintf(a->err, sizeof a->err, "%s", fr_errmsg());
            break;
        }
        if (rn == (size_t)n && memcmp(r, msg, rn) == 0) a->ok++;
        fri_net_reply_free(r);
    }
    fri_net_client_close(c);
    return NULL;
}

Test(transport, two_hundred_concurrent_clients, .timeout = 120) {
    enum { N = 200 };
    fixture f;
    fx_init(&f, true);
    fri_net_server_opts so;
    server_opts(&f, &so, true);
    fx_start(&f, &so);
    fri_net_client_opts co;
    client_opts(&f, &co);
    pthread_t th[N];
    many_arg *a = calloc(N, sizeof *a);
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setstacksize(&at, 256 << 10);
    for (int i = 0; i < N; i++) {
        a[i].o = &co;
        a[i].id = i;
        cr_assert_eq(pthread_create(&th[i], &at, many_main, &a[i]), 0);
    }
    pthread_attr_destroy(&at);
    int ok = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        cr_expect_eq(a[i].ok, 5, "client %d: %d of 5 (%s)", i, a[i].ok, a[i].err);
        ok += a[i].ok;
    }
    cr_assert_eq(ok, 5 * N);
    cr_assert_eq(atomic_load(&f.st.calls), 5 * N);
    free(a);
    fx_fini(&f);
}

typedef struct wait_arg {
    fri_net_client *c;
    fr_err e;
    int64_t ms;
} wait_arg;

static void *wait_main(void *arg) {
    wait_arg *a = arg;
    uint8_t *r = NULL;
    size_t rn = 0;
    int64_t t0 = now_ms();
    a->e = fri_net_request(a->c, (const uint8_t *)"slow", 4, &r, &rn, 1500);
    a->ms = now_ms() - t0;
    fri_net_reply_free(r);
    return NULL;
}

/* Messages sent whole by the pipes of the dialers of url in this process (nng's per-pipe
 * "tx_msgs", bumped once the last piece of a message has left: nothing of it is pending
 * in nng's transport any more). */
static uint64_t dialers_tx_msgs(const char *url) {
    uint64_t dialer[64], tx = 0;
    int nd = 0;
    nng_stat *all = NULL;
    cr_assert_eq(nng_stats_get(&all), 0);
    for (nng_stat *sc = nng_stat_child(all); sc; sc = nng_stat_next(sc)) {
        if (nng_stat_type(sc) != NNG_STAT_SCOPE || strcmp(nng_stat_name(sc), "dialer") != 0) continue;
        nng_stat *u = nng_stat_find(sc, "url"), *id = nng_stat_find(sc, "id");
        if (u && id && nng_stat_type(u) == NNG_STAT_STRING && strcmp(nng_stat_string(u), url) == 0 && nd < 64)
            dialer[nd++] = nng_stat_value(id);
    }
    for (nng_stat *sc = nng_stat_child(all); sc; sc = nng_stat_next(sc)) {
        if (nng_stat_type(sc) != NNG_STAT_SCOPE || strcmp(nng_stat_name(sc), "pipe") != 0) continue;
        nng_stat *d = nng_stat_find(sc, "dialer"), *t = nng_stat_find(sc, "tx_msgs");
        for (int i = 0; d && t && i < nd; i++)
            if (nng_stat_value(d) == dialer[i]) tx += nng_stat_value(t);
    }
    nng_stats_free(all);
    return tx;
}

Test(transport, stop_while_clients_wait_then_a_new_server_on_the_port, .timeout = 120) {
    enum { N = 4 };
    fixture f;
    fx_init(&f, true);
    fri_net_server_opts so;
    server_opts(&f, &so, true);
    so.contexts = 2; /* two requests in the handler, two queued */
    f.st.delay_ms = 300;
    fx_start(&f, &so);
    fri_net_client_opts co;
    client_opts(&f, &co);
    wait_arg a[N];
    pthread_t th[N];
    for (int i = 0; i < N; i++) {
        a[i].c = client_open(&co);
        cr_assert_eq(pthread_create(&th[i], NULL, wait_main, &a[i]), 0);
    }
    /* every client connected (nng 1.5.2 with mbedTLS leaks a TLS connection whose
     * handshake is in progress when its listener closes; see docs/ARCHITECTURE.md) and
     * two requests in the handler */
    fri_net_server_stats sst = {0};
    for (int i = 0; i < 600; i++) {
        fri_net_server_stats_get(f.srv, &sst);
        if (sst.open == N && atomic_load(&f.st.in_handler) == 2) break;
        sleep_ms(5);
    }
    cr_assert_eq(sst.open, N);
    cr_assert_eq(atomic_load(&f.st.in_handler), 2);
    /* and every request has left its client whole. nng's tls+tcp pipe sends a message in
     * pieces, and one closed between two of them (the server stopping while a queued
     * request is still on its way) wedges nng 1.5.2 in the client's process: its reaper
     * waits for ever in req0_pipe_stop, and so does every later close, Criterion's own
     * at the end of the test (nng bug (3) in docs/ARCHITECTURE.md; this test hung so) */
    uint64_t sent = 0;
    for (int i = 0; i < 1000 && (sent = dialers_tx_msgs(f.url)) < N; i++) sleep_ms(5);
    cr_assert_eq(sent, N, "requests sent whole: %llu of %d", (unsigned long long)sent, N);
    int64_t t0 = now_ms();
    fri_net_server_stop(f.srv); /* waits for the two handlers */
    f.srv = NULL;
    int64_t stop_ms = now_ms() - t0;
    cr_assert_lt(stop_ms, 1000, "stop took %lld ms", (long long)stop_ms);
    cr_assert_eq(atomic_load(&f.st.in_handler), 0);
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        cr_assert_eq(a[i].e, FR_ERR_IO, "client %d got %d", i, (int)a[i].e);
        cr_assert_lt(a[i].ms, 3000);
    }
    /* a new server on the same port: the same client objects reconnect by themselves */
    f.st.delay_ms = 0;
    char url[64];
    snprintf(url, sizeof url, "tls+tcp://127.0.0.1:%d", f.port);
    so.url = url;
    so.contexts = 8;
    fr_err e = FR_ERR_IO;
    for (int i = 0; i < 50 && e; i++) { /* the port may take a moment to be free */
        e = fri_net_server_start(&f.srv, &so);
        if (e) sleep_ms(50);
    }
    cr_assert_eq(e, FR_OK, "restart on %s: %s", url, fr_errmsg());
    cr_assert_eq(fri_net_server_port(f.srv), f.port);
    /* (every client was connected when the server stopped, so no dialer is left stuck) */
    for (int i = 0; i < N; i++) {
        roundtrip(a[i].c, "back again", 10000);
        fri_net_client_close(a[i].c);
    }
    fx_fini(&f);
}

/* A server that accepts and never answers the TLS handshake: nng 1.5.2's dialer waits in
 * it forever. The client sees its dialer idle, replaces it, and reaches the real server
 * that has meanwhile taken the port. With short_requests the client asks with timeouts
 * shorter than the stall, as a client polling its server does: the stall is measured
 * across requests, not within one. */
static void stuck_dialer_case(bool short_requests) {
    fixture f;
    fx_init(&f, true);
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(bind(ls, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(listen(ls, 4), 0);
    socklen_t len = sizeof a;
    cr_assert_eq(getsockname(ls, (struct sockaddr *)&a, &len), 0);
    f.port = ntohs(a.sin_port);
    snprintf(f.url, sizeof f.url, "tls+tcp://127.0.0.1:%d", f.port);
    fri_net_client_opts co;
    client_opts(&f, &co);
    co.dial_stall_ms = 1000;
    fri_net_client *c = client_open(&co);
    int held = -1;
    for (int i = 0; i < 200 && held < 0; i++) { /* the dialer connects: hold it, say nothing */
        struct timeval tv = {0, 10000};
        setsockopt(ls, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        held = accept(ls, NULL, NULL);
    }
    cr_assert_geq(held, 0, "the client never connected");
    close(ls);
    fri_net_server_opts so;
    server_opts(&f, &so, true);
    char url[64];
    snprintf(url, sizeof url, "tls+tcp://127.0.0.1:%d", f.port);
    so.url = url;
    fx_start(&f, &so);
    int64_t t0 = now_ms();
    if (short_requests) {
        /* each request waits 300 ms, a quarter of reconnect_max + stall (1200 ms) */
        fr_err e = FR_ERR_IO;
        uint8_t *r = NULL;
        size_t rn = 0;
        for (int i = 0; i < 40 && e != FR_OK; i++) e = fri_net_request(c, (const uint8_t *)"poll", 4, &r, &rn, 300);
        cr_assert_eq(e, FR_OK, "never got in with 300 ms requests: %s", fr_errmsg());
        cr_assert(rn == 4 && !memcmp(r, "poll", 4));
        fri_net_reply_free(r);
    } else {
        roundtrip(c, "unstuck", 10000); /* 200 + 1000 ms without an outcome, then a new dial */
    }
    cr_assert_geq(fri_net_client_redials(c), 1);
    cr_assert_lt(now_ms() - t0, 6000);
    close(held);
    fri_net_client_close(c);
    fx_fini(&f);
}

Test(transport, client_replaces_a_stuck_dialer, .timeout = 120) { stuck_dialer_case(false); }
Test(transport, client_replaces_a_stuck_dialer_between_short_requests, .timeout = 120) { stuck_dialer_case(true); }

/* nng 1.5.2 runs every pipe's removal callback on its one reaper thread; this callback
 * holds that thread until released, as a wedged nng does (docs/ARCHITECTURE.md). */
typedef struct reaper_hold {
    atomic_bool holding, release;
} reaper_hold;

static void hold_reaper(nng_pipe p, nng_pipe_ev ev, void *arg) {
    (void)p;
    (void)ev;
    reaper_hold *h = arg;
    atomic_store(&h->holding, true);
    for (int i = 0; i < 1000 && !atomic_load(&h->release); i++) sleep_ms(10); /* at most 10 s */
}

static void *close_socket_main(void *arg) {
    nng_close(*(nng_socket *)arg);
    return NULL;
}

typedef struct late_log {
    atomic_bool stopped;
    atomic_int late;          /* events after fri_net_server_stop returned */
} late_log;

static void on_late(void *ctx, const fri_net_event *ev) {
    (void)ev;
    late_log *l = ctx;
    if (atomic_load(&l->stopped)) atomic_fetch_add(&l->late, 1);
}

/* A server whose nng close cannot finish (the reaper is held) stops after close_wait_ms
 * anyway, counts it, and delivers no event after that; the close ends on its own thread
 * once nng goes on. Before, fri_net_server_stop waited for nng for ever. */
Test(transport, stop_gives_up_on_a_close_nng_cannot_finish, .timeout = 120) {
    fixture f;
    fx_init(&f, false);
    fri_net_server_opts so;
    server_opts(&f, &so, false);
    late_log ll = {0};
    so.event = on_late;
    so.event_ctx = &ll;
    so.close_wait_ms = 300;
    fx_start(&f, &so);
    fri_net_client_opts co;
    client_opts(&f, &co);
    fri_net_client *c = client_open(&co);
    roundtrip(c, "before", 5000);
    reaper_hold h = {0};
    nng_socket b;
    cr_assert_eq(nng_req0_open(&b), 0);
    cr_assert_eq(nng_pipe_notify(b, NNG_PIPE_EV_REM_POST, hold_reaper, &h), 0);
    cr_assert_eq(nng_dial(b, f.url, NULL, 0), 0);
    fri_net_server_stats st = {0};
    for (int i = 0; i < 500 && st.open < 2; i++) {
        fri_net_server_stats_get(f.srv, &st);
        sleep_ms(10);
    }
    cr_assert_eq(st.open, 2);
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, close_socket_main, &b), 0);
    for (int i = 0; i < 500 && !atomic_load(&h.holding); i++) sleep_ms(10);
    cr_assert(atomic_load(&h.holding), "the reaper is held");
    uint64_t before = fri_net_closes_abandoned();
    int64_t t0 = now_ms();
    fri_net_server_stop(f.srv);
    int64_t took = now_ms() - t0;
    atomic_store(&ll.stopped, true);
    f.srv = NULL;
    cr_assert_geq(took, 300, "stopped after %lld ms, before nng's close could end", (long long)took);
    cr_assert_lt(took, 3000, "stop waited %lld ms", (long long)took);
    cr_assert_eq(fri_net_closes_abandoned(), before + 1);
    atomic_store(&h.release, true);
    cr_assert_eq(pthread_join(th, NULL), 0);
    fri_net_client_close(c);
    sleep_ms(300); /* the server's close ends and frees it (the sanitizer build checks) */
    cr_assert_eq(fri_net_closes_abandoned(), before + 1);
    cr_assert_eq(atomic_load(&ll.late), 0, "events after the stop returned");
    fx_fini(&f);
}

Test(transport, stop_and_close_accept_null_and_idle_objects, .timeout = 120) {
    fri_net_server_stop(NULL);
    fri_net_client_close(NULL);
    /* a client whose server never existed: open succeeds, requests time out, close is clean */
    fri_net_client_opts co;
    fri_net_client_opts_default(&co);
    co.url = "tcp://127.0.0.1:1";
    co.insecure = true;
    fri_net_client *c = client_open(&co);
    uint8_t *r = NULL;
    size_t rn = 0;
    cr_assert_eq(fri_net_request(c, (const uint8_t *)"x", 1, &r, &rn, 200), FR_ERR_IO);
    cr_assert(strstr(fr_errmsg(), "never connected") && strstr(fr_errmsg(), "refused"), "%s", fr_errmsg());
    cr_assert_eq(fri_net_request(c, (const uint8_t *)"x", 1, &r, &rn, 0), FR_ERR_INVALID);
    fri_net_client_close(c);
}

/* nng 1.5.2 never closes a TLS connection whose peer sends nothing (its SP negotiation
 * times out, but the cancellation is lost behind the TLS handshake): fedrec's engine
 * closes it after handshake_ms, and the server reports it. */
Test(transport, tls_handshake_deadline_closes_silent_peers, .timeout = 120) {
    fixture f;
    fx_init(&f, true);
    fri_net_server_opts so;
    server_opts(&f, &so, true);
    so.handshake_ms = 600;
    fx_start(&f, &so);
    cr_assert(fri_tls_engine_ours(), "this test is about fedrec's engine");
    fri_net_client_opts co;
    client_opts(&f, &co);
    fri_net_client *good = client_open(&co);
    roundtrip(good, "before", 5000);
    fri_tls_stats t0;
    cr_assert(fri_tls_engine_stats(&t0));
    /* one peer silent from the start, one that stops after the first bytes of a ClientHello */
    int64_t start = now_ms();
    int silent = raw_connect(f.port, NULL, 0);
    int half = raw_connect(f.port, NULL, 0);
    cr_assert_eq(send(half, "\x16\x03\x01\x02", 4, MSG_NOSIGNAL), 4);
    int64_t a = raw_wait_closed(silent, 10000), b = raw_wait_closed(half, 10000);
    int64_t both = now_ms() - start;
    close(silent);
    close(half);
    cr_assert_geq(a, 0, "the silent peer is still connected after 10 s");
    cr_assert_geq(b, 0, "the half-way peer is still connected after 10 s");
    cr_assert_geq(both, 500, "closed after %lld ms, before the deadline", (long long)both);
    cr_assert(ev_wait(&f.ev, FRI_NET_EV_HANDSHAKE_TIMEOUT, 2, 15000), "not reported: %llu",
              (unsigned long long)ev_count(&f.ev, FRI_NET_EV_HANDSHAKE_TIMEOUT));
    cr_assert(strstr(f.ev.text[FRI_NET_EV_HANDSHAKE_TIMEOUT], "TLS handshake within 600 ms"), "%s",
              f.ev.text[FRI_NET_EV_HANDSHAKE_TIMEOUT]);
    fri_tls_stats t1;
    cr_assert(fri_tls_engine_stats(&t1));
    cr_assert_eq(t1.handshake_timeouts - t0.handshake_timeouts, 2);
    /* a connection whose handshake ended is not affected: the good client, quiet for longer
     * than the deadline, is still served on its connection */
    sleep_ms(900);
    fri_net_server_stats st;
    fri_net_server_stats_get(f.srv, &st);
    uint64_t connects = st.connects;
    roundtrip(good, "after", 5000);
    fri_net_server_stats_get(f.srv, &st);
    cr_assert_eq(st.connects, connects, "the good client had to reconnect");
    cr_assert_eq(st.handshake_timeouts, 2);
    /* the closed connections were finalised by nng */
    bool freed = false;
    for (int i = 0; i < 300 && !freed; i++) {
        cr_assert(fri_tls_engine_stats(&t1));
        freed = t1.live == t0.live;
        if (!freed) sleep_ms(10);
    }
    cr_assert(freed, "live connections %llu, were %llu", (unsigned long long)t1.live, (unsigned long long)t0.live);
    fri_net_client_close(good);
    fx_fini(&f);
}

static void conn_limit_case(bool tls) {
    fixture f;
    fx_init(&f, tls);
    fri_net_server_opts so;
    server_opts(&f, &so, tls);
    so.max_conns = 2;
    fx_start(&f, &so);
    fri_net_client_opts co;
    client_opts(&f, &co);
    fri_net_client *c1 = client_open(&co), *c2 = client_open(&co);
    roundtrip(c1, "one", 5000);
    roundtrip(c2, "two", 5000);
    fri_net_server_stats st;
    fri_net_server_stats_get(f.srv, &st);
    uint64_t requests = st.requests;
    /* a third is let in but never served: reported with its address, its request answered
     * "server full", on which the client closes that connection itself */
    co.reconnect_min_ms = 100;
    co.reconnect_max_ms = 100;
    co.dial_stall_ms = 1000;
    fri_net_client *c3 = client_open(&co);
    uint8_t *r = NULL;
    size_t rn = 0;
    bool told = false;
    for (int i = 0; i < 40 && !told; i++) {
        cr_assert_eq(fri_net_request(c3, (const uint8_t *)"three", 5, &r, &rn, 1000), FR_ERR_IO);
        told = strstr(fr_errmsg(), "server is full") != NULL;
    }
    cr_assert(told, "the third was not told the server is full: %s", fr_errmsg());
    cr_assert(strstr(fr_errmsg(), "2 connections open, its limit 2"), "%s", fr_errmsg());
    cr_assert_geq(fri_net_client_full_refusals(c3), 1);
    cr_assert(ev_wait(&f.ev, FRI_NET_EV_CONN_LIMIT, 1, 10000), "not reported");
    cr_assert(strstr(f.ev.text[FRI_NET_EV_CONN_LIMIT], "max_conns"), "%s", f.ev.text[FRI_NET_EV_CONN_LIMIT]);
    cr_assert(strstr(f.ev.addr[FRI_NET_EV_CONN_LIMIT], "127.0.0.1:"), "%s", f.ev.addr[FRI_NET_EV_CONN_LIMIT]);
    fri_net_server_stats_get(f.srv, &st);
    cr_assert_geq(st.over_limit, 1);
    cr_assert_geq(st.full_replies, 1);
    cr_assert_eq(st.connects, 2, "the third connection was served");
    cr_assert_eq(st.open, 2);
    cr_assert_eq(st.requests, requests, "the third's request reached the handler");
    /* the two still served; once one leaves, the refused client itself gets in, and its
     * close at the end does not hang */
    roundtrip(c1, "one again", 5000);
    fri_net_client_close(c2);
    /* c3 may redial before the server has seen c2 go (then it is refused again, and its
     * request lost: a client does not resend), so it asks until it gets in */
    fr_err e = FR_ERR_IO;
    for (int i = 0; i < 20 && e != FR_OK; i++) {
        e = fri_net_request(c3, (const uint8_t *)"three", 5, &r, &rn, 2000);
        if (e != FR_OK) sleep_ms(100);
    }
    cr_assert_eq(e, FR_OK, "the third never got in: %s", fr_errmsg());
    cr_assert(rn == 5 && !memcmp(r, "three", 5));
    fri_net_reply_free(r);
    roundtrip(c1, "one still", 5000);
    fri_net_client_close(c3);
    fri_net_client_close(c1);
    cr_assert_eq(fri_net_closes_abandoned(), 0, "a client's close waited for nng in vain");
    fx_fini(&f);
}

Test(transport, connection_limit_tcp, .timeout = 120) { conn_limit_case(false); }

/* A refused peer that is not fedrec's client (a raw nng REQ socket) and keeps its connection
 * open after the "server full" reply is closed by the server a little later; a second
 * request on it is answered the same way, never served. */
Test(transport, refused_connection_left_open_is_closed, .timeout = 120) {
    fixture f;
    fx_init(&f, false);
    fri_net_server_opts so;
    server_opts(&f, &so, false);
    so.max_conns = 1;
    fx_start(&f, &so);
    fri_net_client_opts co;
    client_opts(&f, &co);
    fri_net_client *c = client_open(&co);
    roundtrip(c, "one", 5000);
    nng_socket b;
    cr_assert_eq(nng_req0_open(&b), 0);
    cr_assert_eq(nng_socket_set_ms(b, NNG_OPT_RECVTIMEO, 5000), 0);
    cr_assert_eq(nng_socket_set_ms(b, NNG_OPT_SENDTIMEO, 5000), 0);
    cr_assert_eq(nng_dial(b, f.url, NULL, 0), 0);
    for (int k = 0; k < 2; k++) {
        cr_assert_eq(nng_send(b, "raw", 3, 0), 0);
        char *got = NULL;
        size_t n = 0;
        cr_assert_eq(nng_recv(b, &got, &n, NNG_FLAG_ALLOC), 0);
        uint32_t open = 0, limit = 0;
        cr_assert(fri_net_full_decode((const uint8_t *)got, n, &open, &limit), "reply %d of %zu bytes", k, n);
        cr_assert(open == 1 && limit == 1, "%u %u", open, limit);
        nng_free(got, n);
    }
    fri_net_server_stats st;
    fri_net_server_stats_get(f.srv, &st);
    cr_assert_eq(st.refusing, 1);
    cr_assert_eq(st.full_replies, 2);
    cr_assert_eq(st.open, 1);
    cr_assert(ev_wait(&f.ev, FRI_NET_EV_IDLE_CLOSED, 1, 15000), "the refused connection was left open");
    cr_assert(strstr(f.ev.text[FRI_NET_EV_IDLE_CLOSED], "refused for max_conns"), "%s",
              f.ev.text[FRI_NET_EV_IDLE_CLOSED]);
    nng_close(b); /* its dialer would connect again, and be refused again */
    for (int i = 0; i < 500 && st.refusing; i++) {
        fri_net_server_stats_get(f.srv, &st);
        sleep_ms(10);
    }
    cr_assert_eq(st.refusing, 0);
    cr_assert_geq(ev_count(&f.ev, FRI_NET_EV_CONN_LIMIT), 1);
    cr_assert_eq(f.st.calls, 1, "a refused request reached the handler");
    roundtrip(c, "still", 5000);
    fri_net_client_close(c);
    fx_fini(&f);
}

/* The "server full" reply's bytes, written out by hand from transport.h's description. */
Test(transport, full_reply_bytes, .timeout = 120) {
    const uint8_t want[FRI_NET_FULL_LEN] = {0xff, 'f', 'e', 'd', 'r', 'e', 'c', ' ', 's', 'e', 'r', 'v',
                                            'e',  'r', 'f', 'u', 3,   0,   0,   0,   0x10, 0x27, 0, 0};
    uint8_t b[FRI_NET_FULL_LEN + 1];
    fri_net_full_encode(b, 3, 10000);
    cr_assert(!memcmp(b, want, sizeof want));
    uint32_t open = 0, limit = 0;
    cr_assert(fri_net_full_decode(want, sizeof want, &open, &limit));
    cr_assert(open == 3 && limit == 10000);
    cr_assert(!fri_net_full_decode(want, sizeof want - 1, NULL, NULL));
    b[FRI_NET_FULL_LEN] = 0;
    cr_assert(!fri_net_full_decode(b, sizeof b, NULL, NULL));
    for (size_t i = 0; i < 16; i++) {
        memcpy(b, want, sizeof want);
        b[i] ^= 1;
        cr_assert(!fri_net_full_decode(b, FRI_NET_FULL_LEN, NULL, NULL), "byte %zu", i);
    }
    cr_assert(!fri_net_full_decode((const uint8_t *)"FRNT", 4, NULL, NULL));
    cr_assert(!fri_net_full_decode(NULL, 0, NULL, NULL));
}
Test(transport, connection_limit_tls, .timeout = 120) { conn_limit_case(true); }

/* ------------------------------------------------------------------ held requests */

/* "HOLD" requests are held (FRI_NET_HELD) and answered later by the test; "SELF" ones are
 * answered by the handler itself before it returns FRI_NET_HELD (the reply arrives before
 * the transport is done with the context); others are echoed. */
typedef struct hold_state {
    pthread_mutex_t mu;
    void *held[8];
    char text[8][32];
    int n;
} hold_state;

static int holding(void *ctx, const uint8_t *req, size_t n, uint8_t **reply, size_t *reply_n,
                   const fri_net_peer *peer) {
    hold_state *h = ctx;
    if (n >= 4 && memcmp(req, "SELF", 4) == 0) {
        char a[40];
        int an = snprintf(a, sizeof a, "answer to %.*s", (int)(n < 20 ? n : 20), (const char *)req);
        fri_net_server_reply_held(peer->tx, (const uint8_t *)a, (size_t)an);
        return FRI_NET_HELD;
    }
    if (n >= 4 && memcmp(req, "HOLD", 4) == 0) {
        pthread_mutex_lock(&h->mu);
        cr_assert_lt(h->n, 8);
        h->held[h->n] = peer->tx;
        snprintf(h->text[h->n], sizeof h->text[0], "%.*s", (int)(n < 20 ? n : 20), (const char *)req);
        h->n++;
        pthread_mutex_unlock(&h->mu);
        return FRI_NET_HELD;
    }
    *reply = fri_malloc(n);
    if (!*reply) return 1;
    if (n) memcpy(*reply, req, n);
    *reply_n = n;
    return 0;
}

typedef struct held_arg {
    const fri_net_client_opts *o;
    int id;
    char got[64];
    fr_err e;
} held_arg;

static void *held_main(void *arg) {
    held_arg *a = arg;
    fri_net_client *c = NULL;
    if ((a->e = fri_net_client_open(&c, a->o))) return NULL;
    char msg[32];
    int n = snprintf(msg, sizeof msg, "HOLD %d", a->id);
    uint8_t *r = NULL;
    size_t rn = 0;
    a->e = fri_net_request(c, (const uint8_t *)msg, (size_t)n, &r, &rn, 20000);
    if (!a->e) snprintf(a->got, sizeof a->got, "%.*s", (int)rn, (const char *)r);
    fri_net_reply_free(r);
    fri_net_client_close(c);
    return NULL;
}

Test(transport, held_requests_answered_later_in_any_order, .timeout = 120) {
    fixture f;
    fx_init(&f, false);
    hold_state h = {.mu = PTHREAD_MUTEX_INITIALIZER};
    fri_net_server_opts so;
    server_opts(&f, &so, false);
    so.handle = holding;
    so.handle_ctx = &h;
    so.contexts = 4; /* three held, one left to serve */
    fx_start(&f, &so);
    fri_net_client_opts co;
    client_opts(&f, &co);
    enum { N = 3 };
    held_arg a[N];
    pthread_t th[N];
    for (int i = 0; i < N; i++) {
        a[i] = (held_arg){.o = &co, .id = i};
        cr_assert_eq(pthread_create(&th[i], NULL, held_main, &a[i]), 0);
    }
    for (int64_t end = now_ms() + 15000; now_ms() < end;) {
        pthread_mutex_lock(&h.mu);
        int n = h.n;
        pthread_mutex_unlock(&h.mu);
        if (n == N) break;
        sleep_ms(10);
    }
    cr_assert_eq(h.n, N);
    /* the held requests keep their contexts; the last one still serves, also a request
     * answered from within its handler */
    fri_net_client *c = client_open(&co);
    roundtrip(c, "not held", 5000);
    uint8_t *r = NULL;
    size_t rn = 0;
    cr_assert_eq(fri_net_request(c, (const uint8_t *)"SELF 9", 6, &r, &rn, 5000), FR_OK, "%s", fr_errmsg());
    cr_assert_eq(rn, strlen("answer to SELF 9"));
    cr_assert(memcmp(r, "answer to SELF 9", rn) == 0);
    fri_net_reply_free(r);
    /* answered last first, each with its own text */
    for (int i = N - 1; i >= 0; i--) {
        char ans[64];
        int an = snprintf(ans, sizeof ans, "answer to %s", h.text[i]);
        fri_net_server_reply_held(h.held[i], (const uint8_t *)ans, (size_t)an);
    }
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        cr_assert_eq(a[i].e, FR_OK, "client %d: %s", i, fr_errmsg());
        char want[64];
        snprintf(want, sizeof want, "answer to HOLD %d", i);
        cr_assert_str_eq(a[i].got, want);
    }
    /* the contexts are back: four requests in a row */
    for (int i = 0; i < 4; i++) roundtrip(c, "again", 5000);
    fri_net_client_close(c);
    fx_fini(&f);
}

/* Refused while the slot is taken, a client must get in by itself once it frees, however
 * its connections were refused (the server answers each request on them "server full",
 * and the client closes them; with short timeouts a request may also time out before the
 * reply, or wait for a connection). Each round: the holder leaves,
 * the refused client must be served on its own (no new client, no close), then it holds
 * the slot while the next one is refused. FEDREC_STRESS_ROUNDS raises the rounds for a
 * stress loop by hand. */
static void refused_recovers_case(bool tls) {
    fixture f;
    fx_init(&f, tls);
    fri_net_server_opts so;
    server_opts(&f, &so, tls);
    so.max_conns = 1;
    fx_start(&f, &so);
    fri_net_client_opts co;
    client_opts(&f, &co);
    co.reconnect_min_ms = 10;
    co.reconnect_max_ms = 50;
    co.dial_stall_ms = 1000;
    int rounds = 2;
    const char *env = getenv("FEDREC_STRESS_ROUNDS");
    if (env && atoi(env) > 0) rounds = atoi(env);
    fri_net_client *hold = client_open(&co);
    roundtrip(hold, "hold", 5000);
    for (int k = 0; k < rounds; k++) {
        uint64_t refused = ev_count(&f.ev, FRI_NET_EV_CONN_LIMIT);
        fri_net_client *next = client_open(&co);
        /* refused several times, asking meanwhile (each request fails: no connection) */
        uint8_t *r = NULL;
        size_t rn = 0;
        for (int i = 0; i < 50 && ev_count(&f.ev, FRI_NET_EV_CONN_LIMIT) < refused + 3; i++) {
            fr_err e = fri_net_request(next, (const uint8_t *)"early", 5, &r, &rn, 50 + 10 * (k % 4));
            if (e == FR_OK) fri_net_reply_free(r);
            cr_assert_neq(e, FR_OK, "round %d: served while the slot was taken", k);
        }
        cr_assert(ev_wait(&f.ev, FRI_NET_EV_CONN_LIMIT, refused + 3, 10000), "round %d: not refused", k);
        fri_net_client_close(hold);
        /* the refused client itself, retrying as a caller does, gets in */
        fr_err e = FR_ERR_IO;
        int64_t until = now_ms() + 30000;
        while (e != FR_OK && now_ms() < until) {
            e = fri_net_request(next, (const uint8_t *)"next", 4, &r, &rn, 1000);
            if (e != FR_OK) sleep_ms(20);
        }
        cr_assert_eq(e, FR_OK, "round %d: the refused client never got in: %s", k, fr_errmsg());
        cr_assert(rn == 4 && !memcmp(r, "next", 4));
        fri_net_reply_free(r);
        hold = next;
    }
    fri_net_client_close(hold);
    cr_assert_eq(fri_net_closes_abandoned(), 0, "a client's close waited for nng in vain");
    fx_fini(&f);
}

Test(transport, refused_client_recovers_tcp, .timeout = 120) { refused_recovers_case(false); }
Test(transport, refused_client_recovers_tls, .timeout = 120) { refused_recovers_case(true); }
