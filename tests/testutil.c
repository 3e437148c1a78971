#define _GNU_SOURCE
#include "testutil.h"

#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

char *tu_tmpdir(void) {
    const char *base = getenv("TMPDIR");
    char *t = NULL;
    if (asprintf(&t, "%s/fedrec-test-XXXXXX", base && *base ? base : "/tmp") < 0) abort();
    if (!mkdtemp(t)) abort();
    return t;
}

static int rm_cb(const char *p, const struct stat *s, int f, struct FTW *w) {
    (void)s; (void)f; (void)w;
    return remove(p);
}

void tu_rmtree(const char *dir) {
    if (dir) nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

char *tu_write(const char *dir, const char *name, const char *text) {
    char *p = NULL;
    if (asprintf(&p, "%s/%s", dir, name) < 0) abort();
    FILE *f = fopen(p, "wb");
    if (!f) abort();
    fwrite(text, 1, strlen(text), f);
    fclose(f);
    return p;
}

char *tu_shared(const char *rel) {
    char *p = NULL;
    if (asprintf(&p, "%s/data/%s", FR_SHARED_DIR, rel) < 0) abort();
    if (access(p, R_OK) != 0) { free(p); return NULL; }
    return p;
}

char *tu_slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) { free(b); b = NULL; }
    if (b) b[n] = 0;
    fclose(f);
    if (len) *len = (size_t)n;
    return b;
}

fr_dataset *tu_generate(uint32_t users, uint32_t items, uint64_t interactions, uint64_t seed) {
    fr_gen_opts go;
    fr_gen_opts_default(&go);
    go.users = users;
    go.items = items;
    go.interactions = interactions;
    go.seed = seed;
    fr_dataset *d = NULL;
    if (fr_dataset_generate(&d, &go) != FR_OK) {
        fprintf(stderr, "tu_generate: %s\n", fr_errmsg());
        abort();
    }
    return d;
}

fr_err tu_load_text(fr_dataset **d, const char *dir, const char *name, const char *text, const fr_load_opts *o,
                    fr_load_stats *st) {
    char *p = tu_write(dir, name, text);
    fr_err e = fr_dataset_load(d, p, o, st);
    free(p);
    return e;
}

bool tu_find_row(const fr_dataset *d, int64_t ru, int64_t ri, float *r, int64_t *t) {
    int64_t u = fr_idmap_find(fr_dataset_users(d), ru), i = fr_idmap_find(fr_dataset_items(d), ri);
    if (u < 0 || i < 0) return false;
    const uint32_t *it;
    const float *rt;
    const int64_t *tt;
    size_t n = fr_dataset_user(d, (uint32_t)u, &it, &rt, &tt);
    for (size_t k = 0; k < n; k++)
        if (it[k] == (uint32_t)i) {
            if (r) *r = rt[k];
            if (t) *t = tt[k];
            return true;
        }
    return false;
}

bool tu_sgd_step_diff(fr_model *ref, const fr_model *fed, const fr_batch *b, double lr, double *maxdiff,
                      double *maxmove) {
    fr_grad *g = NULL;
    fr_model_ws *ws = NULL;
    double loss;
    bool ok = fr_grad_create(&g, ref) == FR_OK && fr_model_ws_create(&ws, ref, b->n) == FR_OK;
    if (ok) fr_grad_zero(g);
    ok = ok && fr_model_loss_grad(ref, ws, b, g, &loss) == FR_OK && fr_model_n_shared(ref) == fr_model_n_shared(fed);
    *maxdiff = *maxmove = 0;
    if (ok) {
        const float *w = fr_model_params(ref), *gr = fr_grad_data(g), *wf = fr_model_params_const(fed);
        for (size_t q = 0; q < fr_model_n_shared(ref); q++) {
            double want = (double)w[q] - lr * (double)gr[q];
            *maxdiff = fmax(*maxdiff, fabs(want - (double)wf[q]));
            *maxmove = fmax(*maxmove, fabs(lr * (double)gr[q]));
        }
    }
    fr_model_ws_free(ws);
    fr_grad_free(g);
    return ok;
}

/* ---- a TLS peer without nng ---- */

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>

struct tu_tls {
    int fd;
    SSL_CTX *ctx;
    SSL *ssl;
};

static long tu_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void tu_tls_close(tu_tls *t) {
    if (!t) return;
    SSL_free(t->ssl);
    SSL_CTX_free(t->ctx);
    if (t->fd >= 0) close(t->fd);
    ERR_clear_error();
    free(t);
}

tu_tls *tu_tls_connect(int port, const char *ca_file) {
    signal(SIGPIPE, SIG_IGN);
    tu_tls *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {5, 0}; /* no call waits forever */
    if (t->fd < 0 || setsockopt(t->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0 ||
        setsockopt(t->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0 ||
        connect(t->fd, (struct sockaddr *)&a, sizeof a) != 0)
        goto fail;
    t->ctx = SSL_CTX_new(TLS_client_method());
    if (!t->ctx || SSL_CTX_load_verify_locations(t->ctx, ca_file, NULL) != 1) goto fail;
    SSL_CTX_set_verify(t->ctx, SSL_VERIFY_PEER, NULL);
    t->ssl = SSL_new(t->ctx);
    if (!t->ssl || X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), "127.0.0.1") != 1 ||
        SSL_set_fd(t->ssl, t->fd) != 1 || SSL_connect(t->ssl) != 1)
        goto fail;
    return t;
fail:
    tu_tls_close(t);
    return NULL;
}

bool tu_tls_write(tu_tls *t, const void *b, size_t n) {
    size_t done = 0;
    while (done < n) {
        size_t k = 0;
        if (SSL_write_ex(t->ssl, (const char *)b + done, n - done, &k) != 1) {
            ERR_clear_error();
            return false;
        }
        done += k;
    }
    return true;
}

bool tu_tls_sp_req_handshake(tu_tls *t) {
    const uint8_t hdr[8] = {0, 'S', 'P', 0, 0, 0x30, 0, 0}; /* REQ v0 */
    if (!tu_tls_write(t, hdr, sizeof hdr)) return false;
    uint8_t got[8];
    size_t have = 0;
    while (have < sizeof got) {
        size_t k = 0;
        if (SSL_read_ex(t->ssl, got + have, sizeof got - have, &k) != 1) {
            ERR_clear_error();
            return false;
        }
        have += k;
    }
    return got[0] == 0 && got[1] == 'S' && got[2] == 'P' && got[3] == 0;
}

long tu_tls_wait_closed(tu_tls *t, int max_ms, size_t *got) {
    struct timeval tv = {0, 50000};
    setsockopt(t->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    long t0 = tu_now_ms();
    while (tu_now_ms() - t0 < max_ms) {
        char b[4096];
        size_t k = 0;
        errno = 0;
        if (SSL_read_ex(t->ssl, b, sizeof b, &k) == 1) {
            if (got) *got += k;
            continue;
        }
        int e = SSL_get_error(t->ssl, 0);
        bool again = (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_SYSCALL) &&
                     (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR);
        ERR_clear_error();
        if (e == SSL_ERROR_WANT_READ || again) continue;
        return tu_now_ms() - t0; /* close_notify, end of stream, reset */
    }
    return -1;
}
