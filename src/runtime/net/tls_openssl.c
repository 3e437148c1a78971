/* fedrec's TLS engine for nng 1.5.2, on OpenSSL 3 (tls_engine.h says why and what).
 *
 * How nng drives an engine: nng keeps a 16 KiB buffer each way per connection and calls
 * the connection ops (handshake, send, recv) with the connection's lock held, from the
 * caller's thread or from the completion of a TCP send or receive. The engine moves
 * ciphertext with nng_tls_engine_send/recv, which return NNG_EAGAIN when the buffer is
 * full (send) or empty (recv, which then starts a TCP receive); an op that cannot go on
 * returns NNG_EAGAIN and nng calls it again, with the same arguments, once the TCP
 * operation completed.
 *
 * Here every SSL has one BIO of our own whose read and write are those two calls, EAGAIN
 * becoming OpenSSL's retry. Invariants:
 *   - An SSL is used by one thread at a time (nng's connection lock).
 *   - A send takes the whole buffer nng offers (SSL_write without partial writes): a
 *     1 MiB message is one send op that nng repeats as the TCP side drains, not 64
 *     completions that each go through nng's task queue. A repeated call gets the same
 *     bytes, as OpenSSL requires after a retry.
 *   - A record is exactly nng's 16 KiB send buffer (TLS 1.3 AES-GCM: 16362 bytes of
 *     plaintext, 22 of framing), and the BIO hands it to nng directly from OpenSSL's
 *     write buffer: a full buffer is a retry, the record staying in OpenSSL until nng
 *     repeats the op once its TCP send completed. So every TCP send is a whole record and
 *     the ciphertext is copied once (into nng's buffer), with one record encrypted ahead.
 *   - Inside an SP frame, a send of a few bytes (the transport's 8-byte length, REQ/REP's
 *     4-byte header) is held back and leads the first record of the frame's next send,
 *     so a message leaves as one TCP send as over plain tcp ("small sends" below).
 *   - A receive fills the caller's whole buffer before it completes (nng's tls+tcp
 *     transport asks for exactly the 8-byte header, then exactly the body): each 16 KiB
 *     of ciphertext costs nng one TCP receive, not also a completion through its task
 *     queue and a new receive op from the transport. The bytes decrypted so far stay
 *     in the caller's buffer; nng repeats the op with the same buffer.
 *   - A connection's first fatal error is kept and returned by every later op. OpenSSL's
 *     per-thread error queue is emptied after every call that failed (and after the
 *     configuration calls), so it is empty when any call starts: one connection's errors
 *     never show up on another served by the same nng thread.
 *   - Handshake failures over a certificate (unknown CA, none given, wrong name, refused
 *     by the peer) are NNG_EPEERAUTH, other TLS failures NNG_ECRYPTO: nng counts both as
 *     the endpoint's "auth" statistic, which the transport reports as TLS failures. */
#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/supplemental/tls/engine.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "runtime/net/tls_engine.h"

/* Suites in order of preference; the server's order decides (both sides are ours). */
#define TLS13_SUITES "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
#define TLS12_SUITES                                                                                                   \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"                       \
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

/* nng 1.5.2's send buffer per connection (NNG_TLS_MAX_SEND_SIZE): a TCP send takes what
 * it holds when the previous one completes. */
#define NNG_RING 16384
/* TLS 1.3 record framing: a 5-byte header, the content type, a 16-byte AEAD tag (TLS 1.2
 * connections are set to their own framing when their handshake ends). */
#define RECORD_PLAIN (NNG_RING - 22)

struct nng_tls_engine_config {
    SSL_CTX *ctx;             /* certificates, CA store, verification mode, versions */
    nng_tls_mode mode;
    char *server_name;        /* client: the name the server's certificate must carry */
};

/* the most plaintext held back from small sends (tlstran's 8-byte length and REQ/REP's
 * 4-byte header, with room to spare) */
#define PEND_MAX 64

struct nng_tls_engine_conn {
    void *tls;                /* nng's connection: the argument of nng_tls_engine_send/recv */
    SSL *ssl;
    int io_err;               /* the last error (not EAGAIN) nng's send/recv gave the BIO */
    int failed;               /* the first fatal error, returned by every later op */
    bool counted;             /* its handshake's outcome is in the statistics */
    size_t wrote;             /* bytes the BIO has put in nng's send buffer */
    bool fail_held;           /* a failed handshake's alert was sent: the failure waits one call */
    const uint8_t *rbuf;      /* a receive in progress: the caller's buffer, its size, */
    size_t rwant, rgot;       /* and the bytes already decrypted into it (rgot > 0) */
    /* a server's connection whose handshake has a deadline (see "handshake deadline") */
    nng_tls_engine_conn *hs_prev, *hs_next;
    uint64_t hs_deadline;     /* CLOCK_MONOTONIC ms */
    bool hs_listed;
    bool hs_taken;            /* its deadline passed: the thread closes it, counted a timeout */
    /* coalescing (see "small sends"): what the SP stream has sent so far */
    bool coal_off;            /* not tlstran's framing: every send goes out as it is */
    uint8_t nego_have;        /* bytes of the 8-byte SP header sent */
    uint8_t len_have;         /* bytes of the current frame's 8-byte length sent */
    uint8_t len_buf[8];
    uint64_t frame_left;      /* the current frame's bytes not yet sent */
    uint8_t pend[PEND_MAX];   /* small sends held back until the rest of their frame */
    size_t npend;
    uint8_t *stage;           /* a send in progress: pend + the head of nng's buffer, */
    size_t stage_len, stage_k, soff; /* the head's size, and where the rest starts */
    const uint8_t *sbuf;      /* the send in progress's buffer and size (checks) */
    size_t slen;
};


/* ---- process-wide state ---- */

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static int g_init_rv;
static bool g_ours;
static BIO_METHOD *g_bio;
static char g_desc[96];
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER; /* guards g_stats */
static fri_tls_stats g_stats;

/* ---- handshake deadline ----
 * nng 1.5.2 never closes a TLS connection whose peer sends nothing: its SP negotiation
 * times out, but the cancellation is lost while the handshake waits for the peer (the
 * negotiation's send is queued behind it and no TCP operation is in flight to abort).
 * So a server's connection gets a deadline when it is set up: a thread of ours closes
 * it (nng_stream_close on nng's connection, whose nng_stream is its first member: nng
 * hands that same pointer to the engine and to the transport) if its handshake has
 * not ended by then. The connection ops run under nng's connection lock and take
 * g_hs_mu inside it; the thread never holds g_hs_mu while closing, and conn_fini waits
 * until a close of its connection in progress has returned, so a connection is never
 * closed after it was finalised. */
static pthread_mutex_t g_hs_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_hs_cv = PTHREAD_COND_INITIALIZER;
static nng_tls_engine_conn *g_hs_head, *g_hs_tail; /* listed connections, oldest first */
static nng_tls_engine_conn *g_hs_busy;             /* being closed by the thread */
static int g_hs_ms = FRI_TLS_DEFAULT_HANDSHAKE_MS;
static bool g_hs_thread;

static uint64_t mono_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000u + (uint64_t)t.tv_nsec / 1000000u;
}

static void hs_unlink(nng_tls_engine_conn *ec) { /* under g_hs_mu */
    if (!ec->hs_listed) return;
    if (ec->hs_prev) ec->hs_prev->hs_next = ec->hs_next;
    else g_hs_head = ec->hs_next;
    if (ec->hs_next) ec->hs_next->hs_prev = ec->hs_prev;
    else g_hs_tail = ec->hs_prev;
    ec->hs_prev = ec->hs_next = NULL;
    ec->hs_listed = false;
}

static void *hs_main(void *arg) {
    (void)arg;
    pthread_mutex_lock(&g_hs_mu);
    for (;;) {
        uint64_t now = mono_ms(), next = UINT64_MAX;
        nng_tls_engine_conn *due = NULL;
        for (nng_tls_engine_conn *c = g_hs_head; c; c = c->hs_next) {
            if (c->hs_deadline <= now) {
                due = c;
                break;
            }
            if (c->hs_deadline < next) next = c->hs_deadline;
        }
        if (due) {
            hs_unlink(due);
            due->hs_taken = true;
            g_hs_busy = due;
            pthread_mutex_unlock(&g_hs_mu);
            pthread_mutex_lock(&g_mu);
            g_stats.handshake_timeouts++;
            pthread_mutex_unlock(&g_mu);
            nng_stream_close((nng_stream *)due->tls);
            pthread_mutex_lock(&g_hs_mu);
            g_hs_busy = NULL;
            pthread_cond_broadcast(&g_hs_cv);
            continue;
        }
        if (next == UINT64_MAX) {
            pthread_cond_wait(&g_hs_cv, &g_hs_mu);
        } else {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            uint64_t wait = next - now;
            ts.tv_sec += (time_t)(wait / 1000);
            ts.tv_nsec += (long)(wait % 1000) * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&g_hs_cv, &g_hs_mu, &ts);
        }
    }
    return NULL;
}

/* Lists a new server connection with its deadline (none when the limit is 0, or when the
 * thread cannot be started: nng's behaviour, no worse). */
static void hs_list(nng_tls_engine_conn *ec) {
    pthread_mutex_lock(&g_hs_mu);
    if (g_hs_ms > 0 && !g_hs_thread) {
        pthread_t th;
        pthread_attr_t at;
        if (pthread_attr_init(&at) == 0) {
            pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
            g_hs_thread = pthread_create(&th, &at, hs_main, NULL) == 0;
            pthread_attr_destroy(&at);
        }
    }
    if (g_hs_ms > 0 && g_hs_thread) {
        ec->hs_deadline = mono_ms() + (uint64_t)g_hs_ms;
        ec->hs_prev = g_hs_tail;
        ec->hs_next = NULL;
        if (g_hs_tail) g_hs_tail->hs_next = ec;
        else g_hs_head = ec;
        g_hs_tail = ec;
        ec->hs_listed = true;
        if (g_hs_head == ec) pthread_cond_broadcast(&g_hs_cv);
    }
    pthread_mutex_unlock(&g_hs_mu);
}

/* Takes the connection off the deadline list; true when the thread had already taken it
 * (its deadline passed before its handshake ended: it is closed and counted a timeout). */
static bool hs_done(nng_tls_engine_conn *ec, bool fini) {
    pthread_mutex_lock(&g_hs_mu);
    hs_unlink(ec);
    bool taken = ec->hs_taken;
    while (fini && g_hs_busy == ec) pthread_cond_wait(&g_hs_cv, &g_hs_mu);
    pthread_mutex_unlock(&g_hs_mu);
    return taken;
}

void fri_tls_engine_set_handshake_ms(int ms) {
    pthread_mutex_lock(&g_hs_mu);
    g_hs_ms = ms > 0 ? ms : 0;
    pthread_mutex_unlock(&g_hs_mu);
}

static void note_handshake(nng_tls_engine_conn *ec, bool ok) {
    if (ec->counted) return;
    ec->counted = true;
    /* a handshake that ends just after its deadline was taken is closed all the same, and
     * is counted once, as the timeout it was, not also as completed or failed */
    if (hs_done(ec, false)) return;
    if (ok && SSL_version(ec->ssl) == TLS1_2_VERSION) {
        /* TLS 1.2 frames a record with an 8-byte explicit nonce and a 16-byte tag
         * (AES-GCM), or the tag alone (ChaCha20-Poly1305): records of nng's buffer too */
        const char *c = SSL_get_cipher_name(ec->ssl);
        size_t over = 5 + 16 + (c && strstr(c, "CHACHA") ? 0 : 8);
        (void)SSL_set_max_send_fragment(ec->ssl, (long)(NNG_RING - over));
    }
    pthread_mutex_lock(&g_mu);
    if (ok) {
        g_stats.handshakes++;
        snprintf(g_stats.version, sizeof g_stats.version, "%s", SSL_get_version(ec->ssl));
        const char *c = SSL_get_cipher_name(ec->ssl);
        snprintf(g_stats.cipher, sizeof g_stats.cipher, "%s", c ? c : "");
    } else {
        g_stats.failures++;
        if (SSL_is_server(ec->ssl)) g_stats.server_failures++;
    }
    pthread_mutex_unlock(&g_mu);
}

/* ---- the BIO: OpenSSL's ciphertext through nng's buffers ---- */

/* OpenSSL's records go straight into nng's send buffer, as much as it has room for; a
 * full buffer is a retry (OpenSSL keeps the rest and writes it again when the op is
 * repeated, after nng's TCP send completed). */
static int bio_write(BIO *b, const char *buf, int len) {
    nng_tls_engine_conn *ec = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if (len <= 0) return 0;
    if (ec->io_err) return -1;
    size_t n = (size_t)len;
    int rv = nng_tls_engine_send(ec->tls, (const uint8_t *)buf, &n);
    if (rv == NNG_EAGAIN) {
        BIO_set_retry_write(b);
        return -1;
    }
    if (rv != 0) {
        ec->io_err = rv;
        return -1;
    }
    ec->wrote += n;
    return (int)n;
}

static int bio_read(BIO *b, char *buf, int len) {
    nng_tls_engine_conn *ec = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if (len <= 0) return 0;
    size_t n = (size_t)len;
    int rv = nng_tls_engine_recv(ec->tls, (uint8_t *)buf, &n);
    if (rv == 0) return (int)n;
    if (rv == NNG_EAGAIN) {
        BIO_set_retry_read(b);
        return -1;
    }
    ec->io_err = rv;
    return -1;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr) {
    (void)b;
    (void)num;
    (void)ptr;
    return cmd == BIO_CTRL_FLUSH ? 1 : 0; /* nng sends what it holds by itself */
}

/* ---- errors ---- */

/* Whether the error at the head of OpenSSL's queue is about a certificate. */
static bool cert_error(SSL *ssl) {
    if (SSL_get_verify_result(ssl) != X509_V_OK) return true;
    unsigned long e = ERR_peek_error();
    if (ERR_GET_LIB(e) != ERR_LIB_SSL) return false;
    switch (ERR_GET_REASON(e)) {
    case SSL_R_CERTIFICATE_VERIFY_FAILED:
    case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
    case SSL_R_NO_SHARED_CIPHER:
    case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED:
    case SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE:
    case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
    case SSL_R_TLSV1_ALERT_ACCESS_DENIED:
    case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
        return true;
    default:
        return false;
    }
}

/* The nng code for an SSL call that returned r (<= 0 or 0 for the _ex calls); fatal
 * errors are kept in ec->failed. */
static int ssl_fail(nng_tls_engine_conn *ec, int r) {
    int rv;
    switch (SSL_get_error(ec->ssl, r)) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE: /* nothing was queued */
        return NNG_EAGAIN;
    /* The peer going away is NNG_ECONNSHUT, never NNG_ECLOSED: nng 1.5.2's dialer takes
     * NNG_ECLOSED from a connection attempt to mean that the dialer itself was closed and
     * stops redialling for good (a client whose server was killed in the middle of a
     * handshake never came back). */
    case SSL_ERROR_ZERO_RETURN: /* the peer's close_notify */
        rv = NNG_ECONNSHUT;
        break;
    case SSL_ERROR_SYSCALL: /* the BIO failed: nng's error, or the stream ended */
        rv = ec->io_err && ec->io_err != NNG_ECLOSED ? ec->io_err : NNG_ECONNSHUT;
        break;
    case SSL_ERROR_SSL:
        rv = cert_error(ec->ssl) ? NNG_EPEERAUTH : NNG_ECRYPTO;
        if (!SSL_is_init_finished(ec->ssl)) note_handshake(ec, false);
        break;
    default:
        rv = NNG_ECRYPTO;
        break;
    }
    ERR_clear_error();
    ec->failed = rv;
    hs_done(ec, false); /* a failed handshake has ended too */
    return rv;
}

/* ---- configuration ops ---- */

static void config_fini(nng_tls_engine_config *cfg) {
    SSL_CTX_free(cfg->ctx);
    free(cfg->server_name);
    cfg->ctx = NULL;
    cfg->server_name = NULL;
}

static int config_init(nng_tls_engine_config *cfg, nng_tls_mode mode) {
    ERR_clear_error();
    cfg->mode = mode;
    cfg->ctx = SSL_CTX_new(TLS_method());
    if (!cfg->ctx) {
        ERR_clear_error();
        return NNG_ENOMEM;
    }
    SSL_CTX *c = cfg->ctx;
    if (!SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION) || !SSL_CTX_set_max_proto_version(c, TLS1_3_VERSION) ||
        !SSL_CTX_set_ciphersuites(c, TLS13_SUITES) || !SSL_CTX_set_cipher_list(c, TLS12_SUITES)) {
        config_fini(cfg);
        ERR_clear_error();
        return NNG_ENOTSUP;
    }
    SSL_CTX_set_options(c, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                               SSL_OP_NO_TICKET);
    SSL_CTX_set_mode(c, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_num_tickets(c, 0);
    SSL_CTX_set_read_ahead(c, 1); /* take whatever nng's buffer holds in one BIO read */
    SSL_CTX_set_max_send_fragment(c, RECORD_PLAIN); /* a TLS 1.3 record fills nng's buffer */
    /* nng's defaults: a client verifies the server, a server asks nothing */
    SSL_CTX_set_verify(c, mode == NNG_TLS_MODE_CLIENT ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
    return 0;
}

static int config_server(nng_tls_engine_config *cfg, const char *name) {
    char *dup = NULL;
    if (name && !(dup = strdup(name))) return NNG_ENOMEM;
    free(cfg->server_name);
    cfg->server_name = dup;
    return 0;
}

static int config_auth(nng_tls_engine_config *cfg, nng_tls_auth_mode mode) {
    switch (mode) {
    case NNG_TLS_AUTH_MODE_NONE:
        SSL_CTX_set_verify(cfg->ctx, SSL_VERIFY_NONE, NULL);
        return 0;
    case NNG_TLS_AUTH_MODE_OPTIONAL:
        SSL_CTX_set_verify(cfg->ctx, SSL_VERIFY_PEER, NULL);
        return 0;
    case NNG_TLS_AUTH_MODE_REQUIRED:
        SSL_CTX_set_verify(cfg->ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
        return 0;
    }
    return NNG_EINVAL;
}

/* Adds every certificate (or CRL) of the PEM text to the CTX's store; how many, or -1
 * when out of memory. Other PEM blocks are skipped. */
static int add_pem(SSL_CTX *ctx, const char *pem, bool crl) {
    X509_STORE *st = SSL_CTX_get_cert_store(ctx);
    BIO *b = BIO_new_mem_buf(pem, -1);
    if (!b) return -1;
    int n = 0;
    for (;;) {
        int ok;
        if (crl) {
            X509_CRL *x = PEM_read_bio_X509_CRL(b, NULL, NULL, NULL);
            if (!x) break;
            ok = X509_STORE_add_crl(st, x);
            X509_CRL_free(x);
        } else {
            X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
            if (!x) break;
            ok = X509_STORE_add_cert(st, x);
            X509_free(x);
        }
        if (!ok) {
            n = -1;
            break;
        }
        n++;
    }
    BIO_free(b);
    ERR_clear_error(); /* the read past the last block */
    return n;
}

static int config_ca_chain(nng_tls_engine_config *cfg, const char *certs, const char *crl) {
    int n = add_pem(cfg->ctx, certs, false);
    if (n < 0) return NNG_ENOMEM;
    if (n == 0) return NNG_EINVAL;
    if (crl) {
        int k = add_pem(cfg->ctx, crl, true);
        if (k < 0) return NNG_ENOMEM;
        if (k > 0)
            X509_STORE_set_flags(SSL_CTX_get_cert_store(cfg->ctx), X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL);
    }
    return 0;
}

/* The key's password: the one given, or none (never a prompt on the terminal). */
static int pass_cb(char *buf, int size, int rwflag, void *u) {
    (void)rwflag;
    const char *pass = u;
    if (!pass || size <= 0) return 0;
    size_t n = strlen(pass);
    if (n > (size_t)size) n = (size_t)size;
    memcpy(buf, pass, n);
    return (int)n;
}

static int config_own_cert(nng_tls_engine_config *cfg, const char *cert, const char *key, const char *pass) {
    int rv = NNG_EINVAL;
    BIO *cb = BIO_new_mem_buf(cert, -1), *kb = BIO_new_mem_buf(key, -1);
    X509 *leaf = NULL;
    EVP_PKEY *pk = NULL;
    if (!cb || !kb) {
        rv = NNG_ENOMEM;
        goto done;
    }
    leaf = PEM_read_bio_X509(cb, NULL, NULL, NULL);
    pk = PEM_read_bio_PrivateKey(kb, NULL, pass_cb, (void *)pass);
    if (!leaf || !pk || SSL_CTX_use_certificate(cfg->ctx, leaf) != 1 || SSL_CTX_use_PrivateKey(cfg->ctx, pk) != 1 ||
        SSL_CTX_check_private_key(cfg->ctx) != 1)
        goto done;
    /* the rest of the file is the chain sent with the leaf */
    for (X509 *x; (x = PEM_read_bio_X509(cb, NULL, NULL, NULL)) != NULL;) {
        if (SSL_CTX_add0_chain_cert(cfg->ctx, x) != 1) {
            X509_free(x);
            rv = NNG_ENOMEM;
            goto done;
        }
    }
    rv = 0;
done:
    X509_free(leaf);
    EVP_PKEY_free(pk);
    BIO_free(cb);
    BIO_free(kb);
    ERR_clear_error();
    return rv;
}

static int config_version(nng_tls_engine_config *cfg, nng_tls_version lo, nng_tls_version hi) {
    /* TLS 1.0 and 1.1 are never offered: the range is cut to 1.2 .. 1.3 */
    int min = (int)lo < TLS1_2_VERSION ? TLS1_2_VERSION : (int)lo;
    int max = (int)hi > TLS1_3_VERSION ? TLS1_3_VERSION : (int)hi;
    if (min > max) return NNG_ENOTSUP;
    if (!SSL_CTX_set_min_proto_version(cfg->ctx, min) || !SSL_CTX_set_max_proto_version(cfg->ctx, max)) {
        ERR_clear_error();
        return NNG_ENOTSUP;
    }
    return 0;
}

/* ---- connection ops ---- */

static void conn_fini(nng_tls_engine_conn *ec) {
    hs_done(ec, true);
    if (ec->ssl) {
        pthread_mutex_lock(&g_mu);
        g_stats.live--;
        pthread_mutex_unlock(&g_mu);
    }
    SSL_free(ec->ssl); /* and its BIO */
    ec->ssl = NULL;
    free(ec->stage);
    ec->stage = NULL;
}

static int conn_init(nng_tls_engine_conn *ec, void *tls, nng_tls_engine_config *cfg) {
    ec->tls = tls;
    ec->ssl = SSL_new(cfg->ctx);
    BIO *b = ec->ssl ? BIO_new(g_bio) : NULL;
    if (!b) {
        SSL_free(ec->ssl); /* fini sees a connection without SSL */
        ec->ssl = NULL;
        ERR_clear_error();
        return NNG_ENOMEM;
    }
    BIO_set_data(b, ec);
    BIO_set_init(b, 1);
    SSL_set_bio(ec->ssl, b, b); /* the SSL owns it */
    pthread_mutex_lock(&g_mu);
    g_stats.live++;
    pthread_mutex_unlock(&g_mu);
    if (cfg->mode == NNG_TLS_MODE_SERVER) {
        SSL_set_accept_state(ec->ssl);
        hs_list(ec);
        return 0;
    }
    SSL_set_connect_state(ec->ssl);
    const char *name = cfg->server_name;
    if (name && *name) {
        /* an address is checked against the certificate's IP entries and sent without
         * SNI (RFC 6066 allows host names only); a name against its DNS entries */
        char host[64];
        size_t n = strlen(name);
        if (n >= 2 && n < sizeof host && name[0] == '[' && name[n - 1] == ']') { /* "[::1]" */
            memcpy(host, name + 1, n - 2);
            host[n - 2] = '\0';
        } else {
            snprintf(host, sizeof host, "%s", n < sizeof host ? name : "");
        }
        unsigned char addr[16];
        bool ip = inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1;
        X509_VERIFY_PARAM *vp = SSL_get0_param(ec->ssl);
        X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        int ok = ip ? X509_VERIFY_PARAM_set1_ip_asc(vp, host)
                    : SSL_set_tlsext_host_name(ec->ssl, name) && X509_VERIFY_PARAM_set1_host(vp, name, 0);
        if (!ok) {
            ERR_clear_error();
            return NNG_EINVAL;
        }
    }
    return 0;
}

static void conn_close(nng_tls_engine_conn *ec) {
    /* a close_notify when the session is up and nng's buffer has room; whether it leaves
     * before nng closes the TCP connection does not matter (nng's framing says where
     * messages end) */
    if (ec->ssl && !ec->failed && SSL_is_init_finished(ec->ssl)) {
        (void)SSL_shutdown(ec->ssl);
        ERR_clear_error();
    }
    /* Closed: every later op fails at once. nng 1.5.2 fails the ops queued when the
     * stream is closed, but not one queued after it (its connection is not marked closed):
     * that op would wait for a TCP operation nng never starts again (its TCP aios are
     * closed), and nng's close of the pipe would wait for it forever. */
    if (!ec->failed) ec->failed = NNG_ECONNSHUT;
}

static int conn_handshake(nng_tls_engine_conn *ec) {
    if (ec->failed) return ec->failed;
    /* done once our last flight is in nng's hands (a full buffer is a retry: nng calls
     * again when its send ends) */
    size_t before = ec->wrote;
    int r = SSL_do_handshake(ec->ssl);
    if (r != 1) {
        int rv = ssl_fail(ec, r);
        /* A handshake that fails tells the peer why with an alert, which OpenSSL has just
         * put in nng's send buffer. nng 1.5.2 closes the TCP connection as soon as it gets
         * the error, and the alert, still in its buffer, was lost about once in 20 (the
         * peer then saw a hang-up: a server did not count the refusal, a client could not
         * tell why). So the error waits for nng's next call, which comes when that send
         * has ended (or failed: nng closes the connection either way). Every op after
         * this one returns the error at once (ec->failed). */
        if (rv != NNG_EAGAIN && ec->wrote > before && !ec->fail_held) {
            ec->fail_held = true;
            return NNG_EAGAIN;
        }
        return rv;
    }
    note_handshake(ec, true);
    return 0;
}

static int conn_recv(nng_tls_engine_conn *ec, uint8_t *buf, size_t *szp) {
    if (ec->failed) return ec->failed;
    size_t want = *szp, got = 0;
    if (ec->rgot) {
        /* nng repeats the op of the receive in progress (it only ever drops it by
         * closing the connection): anything else would lose the bytes decrypted so far */
        if (buf != ec->rbuf || want != ec->rwant) return ec->failed = NNG_EINTERNAL;
        got = ec->rgot;
        ec->rgot = 0;
    }
    int rv = 0;
    while (got < want) {
        size_t n = 0;
        if (SSL_read_ex(ec->ssl, buf + got, want - got, &n)) {
            got += n;
            continue;
        }
        rv = ssl_fail(ec, 0);
        break;
    }
    if (!ec->counted && SSL_is_init_finished(ec->ssl)) note_handshake(ec, true);
    if (rv == NNG_EAGAIN) {
        /* the caller's buffer is not full yet: keep what it holds, complete later */
        if (got) {
            ec->rbuf = buf;
            ec->rwant = want;
            ec->rgot = got;
        }
        return NNG_EAGAIN;
    }
    if (got == 0) return rv;
    *szp = got; /* a fatal error after some data: the data now, the error next time */
    return 0;
}

/* ---- small sends ----
 * nng's tls+tcp transport sends a message as up to three buffers, each a send op of its
 * own: the 8-byte length, the protocol's header (REQ/REP: 4 bytes), the body. Each would
 * be a TLS record and a TCP send of its own, and nng takes the next buffer only once the
 * previous op's completion went through its task queue: two more hops between threads
 * and two more TCP sends a message than over plain tcp (which sends all three at once).
 * So the engine follows the transport's framing (the 8-byte SP header "\0SP\0" with the
 * protocol, then frames of an 8-byte big-endian length and that many bytes) and holds a
 * small send back when more bytes of its frame must follow (the transport sends a message
 * whole or fails the pipe): the held bytes lead the first record of the next send, which
 * leaves in one TCP send with them. A stream that does not start with the SP header is
 * never held back. */

/* Follows the framing over n bytes about to be sent; whether more bytes of the frame they
 * end in must follow. */
static bool frame_feed(nng_tls_engine_conn *ec, const uint8_t *b, size_t n) {
    static const uint8_t sp[4] = {0, 'S', 'P', 0};
    while (n > 0 && !ec->coal_off) {
        if (ec->nego_have < 8) {
            uint8_t i = ec->nego_have++;
            if ((i < 4 && *b != sp[i]) || (i >= 6 && *b != 0)) ec->coal_off = true;
            b++;
            n--;
        } else if (ec->len_have < 8) {
            ec->len_buf[ec->len_have++] = *b++;
            n--;
            if (ec->len_have == 8) {
                uint64_t f = 0;
                for (int i = 0; i < 8; i++) f = f << 8 | ec->len_buf[i];
                ec->frame_left = f;
                if (f == 0) ec->len_have = 0; /* an empty message: its frame has ended */
            }
        } else {
            size_t k = n < ec->frame_left ? n : (size_t)ec->frame_left;
            ec->frame_left -= k;
            b += k;
            n -= k;
            if (ec->frame_left == 0) ec->len_have = 0;
        }
    }
    return !ec->coal_off && ec->nego_have == 8 && ec->len_have > 0;
}

static int conn_send(nng_tls_engine_conn *ec, const uint8_t *buf, size_t *szp) {
    if (ec->failed) return ec->failed;
    size_t len = *szp, n = 0;
    if (!ec->sbuf) { /* a new send (not nng repeating one that was a retry) */
        if (frame_feed(ec, buf, len) && ec->npend + len <= PEND_MAX) {
            memcpy(ec->pend + ec->npend, buf, len);
            ec->npend += len;
            return 0; /* all of it taken */
        }
        ec->sbuf = buf;
        ec->slen = len;
        ec->soff = 0;
        if (ec->npend) {
            /* the held bytes and the head of this buffer: one record */
            size_t k = len < RECORD_PLAIN - ec->npend ? len : RECORD_PLAIN - ec->npend;
            if (!(ec->stage = malloc(ec->npend + k))) return ec->failed = NNG_ENOMEM;
            memcpy(ec->stage, ec->pend, ec->npend);
            memcpy(ec->stage + ec->npend, buf, k);
            ec->stage_len = ec->npend + k;
            ec->soff = k;
            ec->npend = 0;
        }
    } else if (buf != ec->sbuf || len != ec->slen) {
        return ec->failed = NNG_EINTERNAL; /* OpenSSL needs the same bytes again */
    }
    if (ec->stage) {
        int ok = SSL_write_ex(ec->ssl, ec->stage, ec->stage_len, &n);
        if (!ec->counted && SSL_is_init_finished(ec->ssl)) note_handshake(ec, true);
        if (!ok) return ssl_fail(ec, 0);
        free(ec->stage);
        ec->stage = NULL;
    }
    if (ec->soff < len) {
        int ok = SSL_write_ex(ec->ssl, buf + ec->soff, len - ec->soff, &n);
        if (!ec->counted && SSL_is_init_finished(ec->ssl)) note_handshake(ec, true);
        if (!ok) return ssl_fail(ec, 0);
    }
    ec->sbuf = NULL;
    return 0; /* all of it in nng's buffer (or in OpenSSL's, one record ahead) */
}

static bool conn_verified(nng_tls_engine_conn *ec) {
    return ec->ssl && SSL_get0_peer_certificate(ec->ssl) && SSL_get_verify_result(ec->ssl) == X509_V_OK;
}

/* ---- registration ---- */

static nng_tls_engine_config_ops g_config_ops = {
    .size = sizeof(struct nng_tls_engine_config),
    .init = config_init,
    .fini = config_fini,
    .server = config_server,
    .auth = config_auth,
    .ca_chain = config_ca_chain,
    .own_cert = config_own_cert,
    .version = config_version,
};

static nng_tls_engine_conn_ops g_conn_ops = {
    .size = sizeof(struct nng_tls_engine_conn),
    .init = conn_init,
    .fini = conn_fini,
    .close = conn_close,
    .handshake = conn_handshake,
    .recv = conn_recv,
    .send = conn_send,
    .verified = conn_verified,
};

static nng_tls_engine g_engine = {
    .version = NNG_TLS_ENGINE_VERSION,
    .config_ops = &g_config_ops,
    .conn_ops = &g_conn_ops,
    .name = "openssl",
    .description = g_desc,
    .fips_mode = false,
};

static void engine_init(void) {
    /* nng's own initialisation (run by its first call) resets the engine to the
     * built-in one, so it must have happened before ours is registered */
    (void)nng_tls_engine_name();
    const char *env = getenv("FEDREC_TLS_ENGINE");
    if (env && strcmp(env, "nng") == 0) return;
    /* No cleanup at exit: nng's threads outlive main(), and OpenSSL's atexit cleanup
     * deletes the thread-local key whose destructor frees each thread's error state,
     * so a thread ending after it (a client's closer thread) would leak that state;
     * what OpenSSL holds for the process stays reachable until the end. */
    if (!OPENSSL_init_ssl(OPENSSL_INIT_NO_ATEXIT, NULL)) {
        g_init_rv = NNG_ENOMEM;
        return;
    }
    g_bio = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "fedrec nng stream");
    if (!g_bio || !BIO_meth_set_write(g_bio, bio_write) || !BIO_meth_set_read(g_bio, bio_read) ||
        !BIO_meth_set_ctrl(g_bio, bio_ctrl)) {
        g_init_rv = NNG_ENOMEM;
        return;
    }
    snprintf(g_desc, sizeof g_desc, "%s (fedrec engine, TLS 1.3 AES-GCM preferred)",
             OpenSSL_version(OPENSSL_VERSION));
    g_init_rv = nng_tls_engine_register(&g_engine);
    g_ours = g_init_rv == 0;
}

int fri_tls_engine_init(void) {
    pthread_once(&g_once, engine_init);
    return g_init_rv;
}

bool fri_tls_engine_ours(void) {
    pthread_once(&g_once, engine_init);
    return g_ours;
}

bool fri_tls_engine_stats(fri_tls_stats *st) {
    memset(st, 0, sizeof *st);
    if (!fri_tls_engine_ours()) return false;
    pthread_mutex_lock(&g_mu);
    *st = g_stats;
    pthread_mutex_unlock(&g_mu);
    return true;
}
