/* fedrec's OpenSSL TLS engine for nng (src/runtime/net/tls_openssl.c), driven through nng
 * itself: a REP socket listening on tls+tcp://127.0.0.1:0 and REQ sockets dialling it,
 * with certificates and keys handed to nng as PEM strings (from scripts/make-certs.sh).
 * What the engine negotiates is also checked from outside, with `openssl s_client`. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/tls/tls.h>

#include "runtime/net/tls_engine.h"
#include "testutil.h"

typedef struct certs {
    char *dir;
    char *ca, *srv_crt, *srv_key, *cli_crt, *cli_key; /* PEM text */
} certs;

static char *slurp_in(const char *dir, const char *name) {
    char *p = NULL;
    cr_assert_geq(asprintf(&p, "%s/%s", dir, name), 0);
    char *s = tu_slurp(p, NULL);
    cr_assert_not_null(s, "cannot read %s", p);
    free(p);
    return s;
}

static void certs_make(certs *c) {
    c->dir = tu_tmpdir();
    char *cmd = NULL;
    cr_assert_geq(asprintf(&cmd, "'%s/scripts/make-certs.sh' '%s' >/dev/null", FR_SOURCE_DIR, c->dir), 0);
    cr_assert_eq(system(cmd), 0, "make-certs.sh failed");
    free(cmd);
    c->ca = slurp_in(c->dir, "ca.crt");
    c->srv_crt = slurp_in(c->dir, "server.crt");
    c->srv_key = slurp_in(c->dir, "server.key");
    c->cli_crt = slurp_in(c->dir, "client.crt");
    c->cli_key = slurp_in(c->dir, "client.key");
}

static void certs_free(certs *c) {
    free(c->ca);
    free(c->srv_crt);
    free(c->srv_key);
    free(c->cli_crt);
    free(c->cli_key);
    tu_rmtree(c->dir);
    free(c->dir);
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* A TLS configuration: own certificate and key when given, a CA (then the peer must
 * present a certificate it signed), the server name a client checks. */
static nng_tls_config *tls_cfg(bool server, const char *crt, const char *key, const char *ca, const char *name) {
    cr_assert_eq(fri_tls_engine_init(), 0);
    nng_tls_config *cfg = NULL;
    cr_assert_eq(nng_tls_config_alloc(&cfg, server ? NNG_TLS_MODE_SERVER : NNG_TLS_MODE_CLIENT), 0);
    if (crt) cr_assert_eq(nng_tls_config_own_cert(cfg, crt, key, NULL), 0);
    if (ca) cr_assert_eq(nng_tls_config_ca_chain(cfg, ca, NULL), 0);
    cr_assert_eq(nng_tls_config_auth_mode(cfg, ca ? NNG_TLS_AUTH_MODE_REQUIRED : NNG_TLS_AUTH_MODE_NONE), 0);
    if (name) cr_assert_eq(nng_tls_config_server_name(cfg, name), 0);
    return cfg;
}

typedef struct server {
    nng_socket sock;
    nng_listener l;
    int port;
} server;

static void server_start(server *s, nng_tls_config *cfg) {
    cr_assert_eq(nng_rep0_open(&s->sock), 0);
    cr_assert_eq(nng_socket_set_size(s->sock, NNG_OPT_RECVMAXSZ, 64u << 20), 0);
    cr_assert_eq(nng_socket_set_ms(s->sock, NNG_OPT_RECVTIMEO, 20000), 0);
    cr_assert_eq(nng_socket_set_ms(s->sock, NNG_OPT_SENDTIMEO, 20000), 0);
    cr_assert_eq(nng_listener_create(&s->l, s->sock, "tls+tcp://127.0.0.1:0"), 0);
    cr_assert_eq(nng_listener_set_ptr(s->l, NNG_OPT_TLS_CONFIG, cfg), 0);
    cr_assert_eq(nng_listener_start(s->l, 0), 0);
    cr_assert_eq(nng_listener_get_int(s->l, NNG_OPT_TCP_BOUND_PORT, &s->port), 0);
}

/* A REQ socket dialling the server (in the background: a failed attempt retries after
 * retry_ms; its dialer in *dp when dp is given). */
static nng_socket client_dial(int port, nng_tls_config *cfg, int retry_ms, nng_dialer *dp) {
    nng_socket c;
    char url[64];
    snprintf(url, sizeof url, "tls+tcp://127.0.0.1:%d", port);
    cr_assert_eq(nng_req0_open(&c), 0);
    cr_assert_eq(nng_socket_set_size(c, NNG_OPT_RECVMAXSZ, 64u << 20), 0);
    nng_dialer d;
    cr_assert_eq(nng_dialer_create(&d, c, url), 0);
    cr_assert_eq(nng_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, cfg), 0);
    cr_assert_eq(nng_dialer_set_ms(d, NNG_OPT_RECONNMINT, retry_ms), 0);
    cr_assert_eq(nng_dialer_set_ms(d, NNG_OPT_RECONNMAXT, retry_ms < 200 ? 200 : retry_ms), 0);
    cr_assert_eq(nng_dialer_start(d, NNG_FLAG_NONBLOCK), 0);
    if (dp) *dp = d;
    return c;
}

static nng_socket client_open(int port, nng_tls_config *cfg) { return client_dial(port, cfg, 50, NULL); }

/* A client whose handshake must be refused dials once: no later attempt is under way when
 * the test closes it. nng 1.5.2 never finalises a TLS connection whose dialer is closed
 * while its SP negotiation is between two steps (tlstran_pipe_nego_cb resubmits on an aio
 * the close has just closed; nni_aio_begin drops it without completing it, so the pipe is
 * never reaped and its connection, SSL, dialer and TLS configuration leak). A client the
 * server refuses reaches that negotiation (its TLS 1.3 handshake ends before the server's
 * refusal arrives), and one redialling every 50-200 ms until the end of the test was
 * caught there by the close about once in 30 sanitizer runs on a loaded machine. */
#define REFUSED_RETRY_MS (10 * 60 * 1000)

static nng_socket refused_client_open(int port, nng_tls_config *cfg, nng_dialer *d) {
    return client_dial(port, cfg, REFUSED_RETRY_MS, d);
}

/* The sum of a dialer's failure counters (nng's statistics of its scope). */
static uint64_t dialer_failures(nng_dialer d) {
    static const char *const names[] = {"auth", "other", "disconnect", "refused", "timeout",
                                        "proto", "canceled", "reject", "oom"};
    nng_stat *all = NULL;
    uint64_t v = 0;
    cr_assert_eq(nng_stats_get(&all), 0);
    for (nng_stat *sc = nng_stat_child(all); sc; sc = nng_stat_next(sc)) {
        if (nng_stat_type(sc) != NNG_STAT_SCOPE || strcmp(nng_stat_name(sc), "dialer") != 0) continue;
        nng_stat *id = nng_stat_find(sc, "id");
        if (!id || nng_stat_value(id) != (uint64_t)nng_dialer_id(d)) continue;
        for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
            nng_stat *a = nng_stat_find(sc, names[i]);
            if (a) v += nng_stat_value(a);
        }
    }
    nng_stats_free(all);
    return v;
}

/* Sends msg[0, n) from c, receives it at the server, sends back its bytes reversed, and
 * checks the reply (so data crosses both ways and the directions differ). */
static void exchange(nng_socket c, server *s, const uint8_t *msg, size_t n) {
    cr_assert_eq(nng_socket_set_ms(c, NNG_OPT_SENDTIMEO, 20000), 0);
    cr_assert_eq(nng_socket_set_ms(c, NNG_OPT_RECVTIMEO, 20000), 0);
    cr_assert_eq(nng_send(c, (void *)msg, n, 0), 0);
    nng_msg *m = NULL;
    cr_assert_eq(nng_recvmsg(s->sock, &m, 0), 0, "the server received nothing");
    cr_assert_eq(nng_msg_len(m), n);
    cr_assert(memcmp(nng_msg_body(m), msg, n) == 0, "request corrupted");
    uint8_t *b = nng_msg_body(m);
    for (size_t i = 0; i < n / 2; i++) {
        uint8_t t = b[i];
        b[i] = b[n - 1 - i];
        b[n - 1 - i] = t;
    }
    cr_assert_eq(nng_sendmsg(s->sock, m, 0), 0);
    nng_msg *r = NULL;
    cr_assert_eq(nng_recvmsg(c, &r, 0), 0, "no reply");
    cr_assert_eq(nng_msg_len(r), n);
    const uint8_t *rb = nng_msg_body(r);
    for (size_t i = 0; i < n; i++)
        if (rb[i] != msg[n - 1 - i]) cr_assert_fail("reply byte %zu of %zu differs", i, n);
    nng_msg_free(r);
}

/* Waits (at most ms) until dialer d has counted a failed attempt; whether it has. */
static bool wait_dialer_failure(nng_dialer d, int ms) {
    for (int i = 0; i < ms / 10; i++) {
        if (dialer_failures(d) > 0) return true;
        sleep_ms(10);
    }
    return false;
}

/* A request that must not get through: the handshake is refused, so the client never
 * connects and its receive times out. Returns once the client's one attempt has failed
 * (its dialer then waits REFUSED_RETRY_MS: nothing is under way when the test closes it)
 * or has not failed within 5 s: a client the server refused after the client's TLS 1.3
 * handshake ended can wait for ever for the SP header's receive (nng 1.5.2 dropped the TCP
 * receive it needs, bug (4) in docs/ARCHITECTURE.md; seen in 2 of 65 loaded runs), and
 * so is past the step where a close leaks it: nng's close fails that waiting receive. */
static void refused(nng_socket c, nng_dialer d, server *s) {
    cr_assert_eq(nng_socket_set_ms(c, NNG_OPT_SENDTIMEO, 600), 0);
    cr_assert_eq(nng_socket_set_ms(c, NNG_OPT_RECVTIMEO, 600), 0);
    int rv = nng_send(c, "x", 1, 0);
    if (rv == 0) {
        nng_msg *r = NULL;
        rv = nng_recvmsg(c, &r, 0);
        if (rv == 0) nng_msg_free(r);
    }
    cr_assert_neq(rv, 0, "a request got through");
    nng_msg *m = NULL;
    cr_assert_eq(nng_socket_set_ms(s->sock, NNG_OPT_RECVTIMEO, 50), 0);
    cr_assert_eq(nng_recvmsg(s->sock, &m, 0), NNG_ETIMEDOUT, "the server got the request");
    cr_assert_eq(nng_socket_set_ms(s->sock, NNG_OPT_RECVTIMEO, 20000), 0);
    (void)wait_dialer_failure(d, 5000);
}

/* Waits (up to 15 s) until the engine has counted want failed handshakes of server
 * connections. Not nng's listener statistic "auth": nng 1.5.2 counts a failed handshake
 * there only if the listener's accept is pending at that moment, so it may miss one
 * (docs/ARCHITECTURE.md, nng bug (6)); the engine counts every one. */
static bool wait_server_failures(uint64_t want) {
    for (int i = 0; i < 1500; i++) {
        fri_tls_stats st;
        cr_assert(fri_tls_engine_stats(&st));
        if (st.server_failures >= want) return true;
        sleep_ms(10);
    }
    return false;
}

Test(tls_engine, registered_by_default, .timeout = 120) {
    cr_assert_eq(fri_tls_engine_init(), 0);
    cr_assert(fri_tls_engine_ours());
    cr_assert_str_eq(nng_tls_engine_name(), "openssl");
    cr_assert(strstr(nng_tls_engine_description(), "OpenSSL 3"), "%s", nng_tls_engine_description());
    fri_tls_stats st;
    cr_assert(fri_tls_engine_stats(&st));
    cr_assert_eq(st.handshakes, 0);
}

Test(tls_engine, data_both_ways_and_tls13_aes_gcm, .timeout = 120) {
    certs k;
    certs_make(&k);
    nng_tls_config *sc = tls_cfg(true, k.srv_crt, k.srv_key, NULL, NULL);
    nng_tls_config *cc = tls_cfg(false, NULL, NULL, k.ca, "localhost");
    server s;
    server_start(&s, sc);
    nng_socket c = client_open(s.port, cc);
    const char *hello = "hello through fedrec's engine";
    exchange(c, &s, (const uint8_t *)hello, strlen(hello));
    exchange(c, &s, (const uint8_t *)hello, 0); /* an empty message: a frame of the header only */
    /* many small ones on the same connection */
    for (int i = 1; i <= 50; i++) {
        uint8_t b[300];
        for (int j = 0; j < i * 6; j++) b[j] = (uint8_t)(i * 31 + j);
        exchange(c, &s, b, (size_t)i * 6);
    }
    fri_tls_stats st;
    cr_assert(fri_tls_engine_stats(&st));
    cr_assert_eq(st.handshakes, 2, "one connection seen from both ends");
    cr_assert_eq(st.live, 2);
    cr_assert_eq(st.failures, 0);
    cr_assert_str_eq(st.version, "TLSv1.3");
    cr_assert(strcmp(st.cipher, "TLS_AES_128_GCM_SHA256") == 0 || strcmp(st.cipher, "TLS_AES_256_GCM_SHA384") == 0,
              "cipher %s", st.cipher);
    /* the server's end knows the client only as unverified (no client certificate) */
    nng_close(c);
    nng_close(s.sock);
    nng_tls_config_free(sc);
    nng_tls_config_free(cc);
    certs_free(&k);
}

Test(tls_engine, eight_mib_round_trip_intact, .timeout = 120) {
    certs k;
    certs_make(&k);
    nng_tls_config *sc = tls_cfg(true, k.srv_crt, k.srv_key, NULL, NULL);
    nng_tls_config *cc = tls_cfg(false, NULL, NULL, k.ca, "127.0.0.1"); /* an IP: checked against IP entries */
    server s;
    server_start(&s, sc);
    nng_socket c = client_open(s.port, cc);
    size_t n = (size_t)8 << 20;
    uint8_t *b = malloc(n);
    uint64_t x = 88172645463325252ull; /* xorshift64: no repeating period a shifted copy could hide in */
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        b[i] = (uint8_t)(x >> 32);
    }
    exchange(c, &s, b, n);
    exchange(c, &s, b, n - 12345); /* not a multiple of anything */
    free(b);
    nng_close(c);
    nng_close(s.sock);
    nng_tls_config_free(sc);
    nng_tls_config_free(cc);
    certs_free(&k);
}

Test(tls_engine, wrong_ca_or_name_refused, .timeout = 120) {
    certs k, other;
    certs_make(&k);
    certs_make(&other);
    nng_tls_config *sc = tls_cfg(true, k.srv_crt, k.srv_key, NULL, NULL);
    server s;
    server_start(&s, sc);
    nng_tls_config *bad_ca = tls_cfg(false, NULL, NULL, other.ca, "localhost");
    nng_dialer d1, d2, d3;
    nng_socket c1 = refused_client_open(s.port, bad_ca, &d1);
    refused(c1, d1, &s);
    cr_assert(wait_server_failures(1), "the server counted no TLS failure");
    nng_tls_config *bad_name = tls_cfg(false, NULL, NULL, k.ca, "not-the-server.example");
    nng_socket c2 = refused_client_open(s.port, bad_name, &d2);
    refused(c2, d2, &s);
    nng_tls_config *bad_ip = tls_cfg(false, NULL, NULL, k.ca, "127.0.0.2");
    nng_socket c3 = refused_client_open(s.port, bad_ip, &d3);
    refused(c3, d3, &s);
    fri_tls_stats st;
    cr_assert(fri_tls_engine_stats(&st));
    cr_assert_eq(st.handshakes, 0);
    cr_assert_geq(st.failures, 3);
    /* and a good client still gets through */
    nng_tls_config *good = tls_cfg(false, NULL, NULL, k.ca, "localhost");
    nng_socket c4 = client_open(s.port, good);
    exchange(c4, &s, (const uint8_t *)"ok", 2);
    nng_close(c1);
    nng_close(c2);
    nng_close(c3);
    nng_close(c4);
    nng_close(s.sock);
    nng_tls_config_free(sc);
    nng_tls_config_free(bad_ca);
    nng_tls_config_free(bad_name);
    nng_tls_config_free(bad_ip);
    nng_tls_config_free(good);
    certs_free(&k);
    certs_free(&other);
}

/* An aio whose operations time out after 20 s. */
static nng_aio *aio_20s(void) {
    nng_aio *a = NULL;
    cr_assert_eq(nng_aio_alloc(&a, NULL, NULL), 0);
    nng_aio_set_timeout(a, 20000);
    return a;
}

/* Raw TLS streams (no SP protocol, no redialling: each dial is one connection): a listener
 * on a free port of 127.0.0.1 with configuration sc, and a dialer to it with cc. */
static void stream_ends(nng_tls_config *sc, nng_tls_config *cc, nng_stream_listener **l, nng_stream_dialer **d) {
    cr_assert_eq(nng_stream_listener_alloc(l, "tls+tcp://127.0.0.1:0"), 0);
    cr_assert_eq(nng_stream_listener_set_ptr(*l, NNG_OPT_TLS_CONFIG, sc), 0);
    cr_assert_eq(nng_stream_listener_listen(*l), 0);
    int port = 0;
    cr_assert_eq(nng_stream_listener_get_int(*l, NNG_OPT_TCP_BOUND_PORT, &port), 0);
    char url[64];
    snprintf(url, sizeof url, "tls+tcp://127.0.0.1:%d", port);
    cr_assert_eq(nng_stream_dialer_alloc(d, url), 0);
    cr_assert_eq(nng_stream_dialer_set_ptr(*d, NNG_OPT_TLS_CONFIG, cc), 0);
}

/* One connection through stream_ends' pair: its client end *cs and server end *ss (the
 * handshakes start with the first send or receive). */
static void stream_connect(nng_stream_listener *l, nng_stream_dialer *d, nng_stream **cs, nng_stream **ss) {
    nng_aio *la = aio_20s(), *da = aio_20s();
    nng_stream_listener_accept(l, la);
    nng_stream_dialer_dial(d, da);
    nng_aio_wait(da);
    cr_assert_eq(nng_aio_result(da), 0);
    nng_aio_wait(la);
    cr_assert_eq(nng_aio_result(la), 0);
    *cs = nng_aio_get_output(da, 0);
    *ss = nng_aio_get_output(la, 0);
    nng_aio_free(la);
    nng_aio_free(da);
}

/* A client that refuses the server's certificate tells it so with an alert, and the server
 * counts the handshake as failed: every time. The alert used to be lost about once in 20
 * attempts on a loaded machine (nng 1.5.2 closes the TCP connection as soon as the engine
 * reports the failure, with the alert maybe still in its send buffer), and the server then
 * saw a hang-up, which is not counted. Streams, not sockets: each attempt is one
 * connection (a socket's dialer redials at random within its back-off). */
Test(tls_engine, every_refusal_reaches_the_server, .timeout = 120) {
    certs k, other;
    certs_make(&k);
    certs_make(&other);
    nng_tls_config *sc = tls_cfg(true, k.srv_crt, k.srv_key, NULL, NULL);
    nng_tls_config *bad_ca = tls_cfg(false, NULL, NULL, other.ca, "localhost");
    nng_stream_listener *l;
    nng_stream_dialer *d;
    stream_ends(sc, bad_ca, &l, &d);
    nng_aio *cr = aio_20s(), *sr = aio_20s();
    enum { N = 64 };
    for (int i = 0; i < N; i++) {
        nng_stream *cs, *ss;
        stream_connect(l, d, &cs, &ss);
        /* a receive at each end drives the handshakes */
        uint8_t cb[16], sb[16];
        nng_iov civ = {.iov_buf = cb, .iov_len = sizeof cb}, siv = {.iov_buf = sb, .iov_len = sizeof sb};
        cr_assert_eq(nng_aio_set_iov(cr, 1, &civ), 0);
        cr_assert_eq(nng_aio_set_iov(sr, 1, &siv), 0);
        nng_stream_recv(ss, sr);
        nng_stream_recv(cs, cr);
        /* the client's end: its own refusal, or (rarely) the hang-up of the server that
         * got the alert first, when nng's receive was pending and ends before its send */
        nng_aio_wait(cr);
        int crv = nng_aio_result(cr);
        cr_assert(crv == NNG_EPEERAUTH || crv == NNG_ECONNSHUT, "attempt %d: the client's end: %s", i, nng_strerror(crv));
        nng_aio_wait(sr);
        int rv = nng_aio_result(sr);
        cr_assert(rv == NNG_EPEERAUTH || rv == NNG_ECRYPTO, "attempt %d: the server's end saw %s, not the alert", i,
                  nng_strerror(rv));
        fri_tls_stats st;
        cr_assert(fri_tls_engine_stats(&st));
        cr_assert_eq(st.server_failures, (uint64_t)i + 1, "attempt %d", i);
        cr_assert_eq(st.failures, 2 * ((uint64_t)i + 1), "attempt %d: each refusal is counted at both ends", i);
        nng_stream_free(cs);
        nng_stream_free(ss);
    }
    nng_aio_free(cr);
    nng_aio_free(sr);
    nng_stream_dialer_free(d);
    nng_stream_listener_free(l);
    nng_tls_config_free(sc);
    nng_tls_config_free(bad_ca);
    certs_free(&k);
    certs_free(&other);
}

Test(tls_engine, mutual_tls, .timeout = 120) {
    certs k, other;
    certs_make(&k);
    certs_make(&other);
    nng_tls_config *sc = tls_cfg(true, k.srv_crt, k.srv_key, k.ca, NULL);
    server s;
    server_start(&s, sc);
    /* no client certificate, then one from another CA: refused */
    nng_tls_config *anon = tls_cfg(false, NULL, NULL, k.ca, "localhost");
    nng_dialer d1, d2;
    nng_socket c1 = refused_client_open(s.port, anon, &d1);
    refused(c1, d1, &s);
    cr_assert(wait_server_failures(1), "the server counted no TLS failure");
    nng_tls_config *stranger = tls_cfg(false, other.cli_crt, other.cli_key, k.ca, "localhost");
    nng_socket c2 = refused_client_open(s.port, stranger, &d2);
    refused(c2, d2, &s);
    cr_assert(wait_server_failures(2));
    /* with the CA's client certificate: served, and the server's end is verified */
    nng_tls_config *known = tls_cfg(false, k.cli_crt, k.cli_key, k.ca, "localhost");
    nng_socket c3 = client_open(s.port, known);
    exchange(c3, &s, (const uint8_t *)"mutual", 6);
    cr_assert_eq(nng_socket_set_ms(c3, NNG_OPT_SENDTIMEO, 5000), 0);
    cr_assert_eq(nng_send(c3, "again", 5, 0), 0);
    nng_msg *m = NULL;
    cr_assert_eq(nng_recvmsg(s.sock, &m, 0), 0);
    bool verified = false;
    cr_assert_eq(nng_pipe_get_bool(nng_msg_get_pipe(m), NNG_OPT_TLS_VERIFIED, &verified), 0);
    cr_assert(verified, "the server's end of a mutual TLS connection is not verified");
    nng_msg_free(m);
    nng_close(c1);
    nng_close(c2);
    nng_close(c3);
    nng_close(s.sock);
    nng_tls_config_free(sc);
    nng_tls_config_free(anon);
    nng_tls_config_free(stranger);
    nng_tls_config_free(known);
    certs_free(&k);
    certs_free(&other);
}

Test(tls_engine, versions_and_bad_pem, .timeout = 120) {
    certs k;
    certs_make(&k);
    cr_assert_eq(fri_tls_engine_init(), 0);
    nng_tls_config *cfg = NULL;
    cr_assert_eq(nng_tls_config_alloc(&cfg, NNG_TLS_MODE_CLIENT), 0);
    /* nothing below TLS 1.2 */
    cr_assert_eq(nng_tls_config_version(cfg, NNG_TLS_1_0, NNG_TLS_1_1), NNG_ENOTSUP);
    cr_assert_eq(nng_tls_config_version(cfg, NNG_TLS_1_0, NNG_TLS_1_2), 0);
    /* PEM that is not what it should be */
    cr_assert_neq(nng_tls_config_ca_chain(cfg, "not a certificate", NULL), 0);
    cr_assert_neq(nng_tls_config_own_cert(cfg, k.srv_crt, k.srv_crt, NULL), 0, "a certificate taken as a key");
    cr_assert_neq(nng_tls_config_own_cert(cfg, k.srv_crt, k.cli_key, NULL), 0, "a key of another certificate");
    cr_assert_eq(nng_tls_config_own_cert(cfg, k.cli_crt, k.cli_key, NULL), 0);
    nng_tls_config_free(cfg);

    /* TLS 1.2 when the client goes no higher: ECDHE with AES-GCM */
    nng_tls_config *sc = tls_cfg(true, k.srv_crt, k.srv_key, NULL, NULL);
    nng_tls_config *cc = tls_cfg(false, NULL, NULL, k.ca, "localhost");
    cr_assert_eq(nng_tls_config_version(cc, NNG_TLS_1_2, NNG_TLS_1_2), 0);
    server s;
    server_start(&s, sc);
    nng_socket c = client_open(s.port, cc);
    exchange(c, &s, (const uint8_t *)"twelve", 6);
    fri_tls_stats st;
    cr_assert(fri_tls_engine_stats(&st));
    cr_assert_str_eq(st.version, "TLSv1.2");
    cr_assert_str_eq(st.cipher, "ECDHE-ECDSA-AES128-GCM-SHA256");
    nng_close(c);
    nng_close(s.sock);
    nng_tls_config_free(sc);
    nng_tls_config_free(cc);
    certs_free(&k);
}

/* From outside: OpenSSL's own client against the engine's server says what was
 * negotiated (s_client offers AES-256 first; the server's preference picks AES-128). */
Test(tls_engine, s_client_sees_tls13_aes_gcm, .timeout = 120) {
    certs k;
    certs_make(&k);
    nng_tls_config *sc = tls_cfg(true, k.srv_crt, k.srv_key, NULL, NULL);
    server s;
    server_start(&s, sc);
    char *cmd = NULL;
    cr_assert_geq(asprintf(&cmd,
                           "openssl s_client -connect 127.0.0.1:%d -CAfile '%s/ca.crt' -verify_return_error "
                           "-servername localhost -brief </dev/null 2>&1",
                           s.port, k.dir),
                  0);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    char out[4096];
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    pclose(p);
    free(cmd);
    cr_assert(strstr(out, "Protocol version: TLSv1.3"), "%s", out);
    cr_assert(strstr(out, "Ciphersuite: TLS_AES_128_GCM_SHA256"), "%s", out);
    cr_assert(strstr(out, "Verification: OK"), "%s", out);
    nng_close(s.sock);
    nng_tls_config_free(sc);
    certs_free(&k);
}

/* Connections cut during the handshake, from either end: nng must finalise every one
 * (the engine's count of live connections returns to 0; LeakSanitizer checks the rest in
 * the sanitizer build). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

/* Waits (at most 5 s) until the engine has no live connection. */
static bool no_live_connections(void) {
    fri_tls_stats st;
    for (int i = 0; i < 500; i++) {
        cr_assert(fri_tls_engine_stats(&st));
        if (st.live == 0) return true;
        sleep_ms(10);
    }
    return false;
}

static int raw_connect(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(fd, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    return fd;
}

Test(tls_engine, server_stops_during_handshakes, .timeout = 120) {
    certs k;
    certs_make(&k);
    nng_tls_config *sc = tls_cfg(true, k.srv_crt, k.srv_key, NULL, NULL);
    server s;
    server_start(&s, sc);
    /* peers that start a ClientHello and stop, or say nothing at all */
    int fd[4];
    for (int i = 0; i < 4; i++) {
        fd[i] = raw_connect(s.port);
        if (i & 1) cr_assert_eq(send(fd[i], "\x16\x03\x01\x02\x00\x01", 6, MSG_NOSIGNAL), 6);
    }
    fri_tls_stats st;
    for (int i = 0; i < 300; i++) { /* accepted, handshakes under way */
        cr_assert(fri_tls_engine_stats(&st));
        if (st.live == 4) break;
        sleep_ms(10);
    }
    cr_assert_eq(st.live, 4);
    nng_close(s.sock);
    cr_assert(no_live_connections(), "a connection cut during its handshake was never finalised");
    for (int i = 0; i < 4; i++) close(fd[i]);
    nng_tls_config_free(sc);
    certs_free(&k);
}

Test(tls_engine, client_closes_during_its_handshake, .timeout = 120) {
    certs k;
    certs_make(&k);
    /* a listener that accepts and never answers the ClientHello */
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(bind(ls, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(listen(ls, 4), 0);
    socklen_t len = sizeof a;
    cr_assert_eq(getsockname(ls, (struct sockaddr *)&a, &len), 0);
    nng_tls_config *cc = tls_cfg(false, NULL, NULL, k.ca, "localhost");
    nng_socket c = client_open(ntohs(a.sin_port), cc);
    int held = -1;
    for (int i = 0; i < 200 && held < 0; i++) {
        struct timeval tv = {0, 10000};
        setsockopt(ls, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        held = accept(ls, NULL, NULL);
    }
    cr_assert_geq(held, 0, "the client never connected");
    /* the accepted socket inherits the listener's 10 ms receive timeout: too short for a
     * ClientHello on a loaded machine */
    struct timeval tv = {10, 0};
    setsockopt(held, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char hello[5];
    cr_assert_eq(recv(held, hello, 5, MSG_WAITALL), 5, "no ClientHello");
    cr_assert_eq(hello[0], 0x16);
    fri_tls_stats st;
    cr_assert(fri_tls_engine_stats(&st));
    cr_assert_eq(st.live, 1);
    nng_close(c); /* mid-handshake */
    cr_assert(no_live_connections(), "a connection cut during its handshake was never finalised");
    close(held);
    close(ls);
    nng_tls_config_free(cc);
    certs_free(&k);
}

/* What the transport does with a dialer stuck in a handshake: closes that dialer (the
 * socket stays open) and dials anew. The abandoned connection must be finalised too. */
Test(tls_engine, dialer_closed_during_its_handshake, .timeout = 120) {
    certs k;
    certs_make(&k);
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(bind(ls, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(listen(ls, 4), 0);
    socklen_t len = sizeof a;
    cr_assert_eq(getsockname(ls, (struct sockaddr *)&a, &len), 0);
    nng_tls_config *cc = tls_cfg(false, NULL, NULL, k.ca, "localhost");
    nng_socket c;
    nng_dialer d;
    char url[64];
    snprintf(url, sizeof url, "tls+tcp://127.0.0.1:%d", ntohs(a.sin_port));
    cr_assert_eq(nng_req0_open(&c), 0);
    cr_assert_eq(nng_dialer_create(&d, c, url), 0);
    cr_assert_eq(nng_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, cc), 0);
    cr_assert_eq(nng_dialer_start(d, NNG_FLAG_NONBLOCK), 0);
    int held = -1;
    for (int i = 0; i < 200 && held < 0; i++) {
        struct timeval tv = {0, 10000};
        setsockopt(ls, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        held = accept(ls, NULL, NULL);
    }
    cr_assert_geq(held, 0, "the client never connected");
    /* the accepted socket inherits the listener's 10 ms receive timeout: too short for a
     * ClientHello on a loaded machine */
    struct timeval tv = {10, 0};
    setsockopt(held, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char hello[5];
    cr_assert_eq(recv(held, hello, 5, MSG_WAITALL), 5, "no ClientHello");
    nng_dialer_close(d);
    cr_assert(no_live_connections(), "the abandoned connection was never finalised");
    nng_close(c);
    close(held);
    close(ls);
    nng_tls_config_free(cc);
    certs_free(&k);
}

/* ---- record sizes, seen by a raw OpenSSL client ---- */

static size_t g_rec[4096]; /* lengths of the application-data records the client received */
static size_t g_nrec;

static void on_record(int write_p, int version, int content_type, const void *buf, size_t len, SSL *ssl, void *arg) {
    (void)version;
    (void)ssl;
    (void)arg;
    const uint8_t *h = buf;
    if (write_p || content_type != SSL3_RT_HEADER || len < 5 || h[0] != SSL3_RT_APPLICATION_DATA) return;
    if (g_nrec < sizeof g_rec / sizeof *g_rec) g_rec[g_nrec++] = ((size_t)h[3] << 8) | h[4];
}

static void ssl_write_all(SSL *s, const void *p, size_t n) {
    size_t w = 0;
    cr_assert_eq(SSL_write_ex(s, p, n, &w), 1);
    cr_assert_eq(w, n);
}

static void ssl_read_all(SSL *s, uint8_t *p, size_t n) {
    for (size_t got = 0; got < n;) {
        size_t r = 0;
        cr_assert_eq(SSL_read_ex(s, p + got, n - got, &r), 1, "the server's reply ended after %zu of %zu bytes", got,
                     n);
        got += r;
    }
}

/* Every TLS 1.3 record fills nng's 16 KiB send buffer exactly (16362 bytes of plaintext,
 * 16384 on the wire: one TCP send each), so a large reply arrives as full records and one
 * short last one. The client speaks nng's SP protocol over OpenSSL by hand. */
Test(tls_engine, records_fill_nngs_send_buffer, .timeout = 120) {
    certs k;
    certs_make(&k);
    nng_tls_config *sc = tls_cfg(true, k.srv_crt, k.srv_key, NULL, NULL);
    server s;
    server_start(&s, sc);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)s.port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    SSL *ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    SSL_set_msg_callback(ssl, on_record);
    cr_assert_eq(SSL_connect(ssl), 1);
    cr_assert_str_eq(SSL_get_version(ssl), "TLSv1.3");
    /* SP handshake as a REQ peer, then one request: 8-byte length, request id, payload */
    const uint8_t sp[8] = {0, 'S', 'P', 0, 0, 0x30, 0, 0};
    ssl_write_all(ssl, sp, 8);
    uint8_t got[8];
    ssl_read_all(ssl, got, 8);
    cr_assert(got[1] == 'S' && got[2] == 'P' && got[5] == 0x31, "not a REP peer");
    const uint8_t req[8 + 4 + 2] = {0, 0, 0, 0, 0, 0, 0, 6, 0x80, 0, 0, 1, 'h', 'i'};
    ssl_write_all(ssl, req, sizeof req);
    nng_msg *m = NULL;
    cr_assert_eq(nng_recvmsg(s.sock, &m, 0), 0);
    cr_assert_eq(nng_msg_len(m), 2);
    size_t big = 300000;
    cr_assert_eq(nng_msg_realloc(m, big), 0);
    for (size_t i = 0; i < big; i++) ((uint8_t *)nng_msg_body(m))[i] = (uint8_t)(i * 13);
    g_nrec = 0;
    cr_assert_eq(nng_sendmsg(s.sock, m, 0), 0);
    uint8_t *rep = malloc(8 + 4 + big);
    ssl_read_all(ssl, rep, 8 + 4 + big);
    uint64_t len = 0;
    for (int i = 0; i < 8; i++) len = len << 8 | rep[i];
    cr_assert_eq(len, 4 + big);
    cr_assert(rep[8] == 0x80 && rep[11] == 1, "not our request id");
    for (size_t i = 0; i < big; i++)
        if (rep[12 + i] != (uint8_t)(i * 13)) cr_assert_fail("reply byte %zu differs", i);
    /* nng writes the 8-byte length, the 4-byte request id and the body as three sends; the
     * engine holds the two small ones back for the body's first record, so the reply's
     * 8 + 4 + 300000 bytes are records of 16362 (16379 after the header: the content type
     * and the 16-byte tag) and one shorter last one: no short record of its own for the
     * length or the id (each would be a TCP send and a hop through nng's task queue) */
    size_t full = 0, over = 0;
    for (size_t i = 0; i < g_nrec; i++) {
        full += g_rec[i] == 16379;
        over += g_rec[i] > 16379;
    }
    cr_assert_eq(over, 0, "a record longer than nng's buffer");
    cr_assert_eq(full, (8 + 4 + big) / 16362, "%zu full records of %zu", full, g_nrec);
    cr_assert_eq(g_nrec, full + 1, "%zu records, %zu of them full", g_nrec, full);
    cr_assert_eq(g_rec[0], 16379, "the first record: %zu bytes", g_rec[0]);
    /* an empty reply: its length and id are the whole frame, sent at once (not held) */
    ssl_write_all(ssl, req, sizeof req);
    cr_assert_eq(nng_recvmsg(s.sock, &m, 0), 0);
    nng_msg_clear(m);
    g_nrec = 0;
    cr_assert_eq(nng_sendmsg(s.sock, m, 0), 0);
    ssl_read_all(ssl, rep, 12);
    len = 0;
    for (int i = 0; i < 8; i++) len = len << 8 | rep[i];
    cr_assert_eq(len, 4);
    cr_assert(rep[8] == 0x80 && rep[11] == 1, "not our request id");
    cr_assert_eq(g_nrec, 1);
    cr_assert_eq(g_rec[0], 12 + 17);
    free(rep);
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    close(fd);
    nng_close(s.sock);
    nng_tls_config_free(sc);
    certs_free(&k);
}

/* A TLS stream that is not nng's SP protocol (nng_stream over tls+tcp): the engine holds
 * small sends back only inside an SP frame, so three bytes sent alone still arrive. */
Test(tls_engine, raw_stream_small_send_not_held, .timeout = 120) {
    certs k;
    certs_make(&k);
    nng_tls_config *sc = tls_cfg(true, k.srv_crt, k.srv_key, NULL, NULL);
    nng_tls_config *cc = tls_cfg(false, NULL, NULL, k.ca, "localhost");
    nng_stream_listener *l;
    nng_stream_dialer *d;
    stream_ends(sc, cc, &l, &d);
    nng_aio *sa = aio_20s(), *ra = aio_20s();
    nng_stream *cs, *ss;
    stream_connect(l, d, &cs, &ss);
    /* an SP-looking length first would not matter: the stream did not start with "\0SP\0" */
    const uint8_t msg[3] = {0, 0, 7};
    nng_iov iov = {.iov_buf = (void *)msg, .iov_len = sizeof msg};
    cr_assert_eq(nng_aio_set_iov(sa, 1, &iov), 0);
    nng_stream_send(cs, sa);
    uint8_t got[3] = {1, 1, 1};
    size_t have = 0;
    while (have < sizeof got) {
        nng_iov riov = {.iov_buf = got + have, .iov_len = sizeof got - have};
        cr_assert_eq(nng_aio_set_iov(ra, 1, &riov), 0);
        nng_stream_recv(ss, ra);
        nng_aio_wait(ra);
        cr_assert_eq(nng_aio_result(ra), 0, "the three bytes never arrived");
        have += nng_aio_count(ra);
    }
    cr_assert(memcmp(got, msg, sizeof msg) == 0);
    nng_aio_wait(sa);
    cr_assert_eq(nng_aio_result(sa), 0);
    nng_stream_free(cs);
    nng_stream_free(ss);
    nng_aio_free(sa);
    nng_aio_free(ra);
    nng_stream_dialer_free(d);
    nng_stream_listener_free(l);
    nng_tls_config_free(sc);
    nng_tls_config_free(cc);
    certs_free(&k);
}
