/* Transport benchmark: one echo server and many clients in one process, on loopback,
 * over tls+tcp:// and tcp://. Each client is its own fri_net_client driven by its own
 * thread (as a load generator hosting simulated devices would), so N clients means N
 * requests in flight. Prints one line per case: requests/s, latency percentiles, MB/s
 * of payload each way, and the time for all clients to connect (TLS handshakes).
 *   bench_transport [--clients 1000] [--requests 10] [--big-clients 8] [--big-requests 8]
 *                   [--small 1024] [--big 1048576] [--certs DIR] [--only tls|tcp]
 *                   [--stall MS]  (the clients' dial_stall_ms)
 * Without --certs it runs scripts/make-certs.sh (from the repository root) into a
 * temporary directory. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "core/core.h"
#include "runtime/net/transport.h"

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int echo(void *ctx, const uint8_t *req, size_t n, uint8_t **reply, size_t *reply_n, const fri_net_peer *peer) {
    (void)ctx;
    (void)peer;
    *reply = fri_malloc(n);
    if (!*reply) return 1;
    memcpy(*reply, req, n);
    *reply_n = n;
    return 0;
}

typedef struct run {
    const fri_net_client_opts *co;
    size_t size;
    int requests;
    pthread_barrier_t *go;     /* all connected: start the timed requests together */
    double connect_s;          /* this client's first (untimed) request done, since start */
    double *lat;               /* [requests] seconds */
    int ok;
    char err[300];
    double t0;
} run;

static void *client_main(void *arg) {
    run *r = arg;
    fri_net_client *c = NULL;
    uint8_t *msg = malloc(r->size ? r->size : 1);
    for (size_t i = 0; i < r->size; i++) msg[i] = (uint8_t)(i * 131);
    int opened = fri_net_client_open(&c, r->co) == FR_OK;
    if (!opened) snprintf(r->err, sizeof r->err, "open: %s", fr_errmsg());
    /* warm-up: connect and one small request, so the timed part excludes handshakes */
    uint8_t *rep = NULL;
    size_t rn = 0;
    if (opened && fri_net_request(c, msg, 1, &rep, &rn, 120000) != FR_OK) {
        snprintf(r->err, sizeof r->err, "%s", fr_errmsg());
        opened = 0;
    }
    fri_net_reply_free(rep);
    r->connect_s = now_s() - r->t0;
    pthread_barrier_wait(r->go);
    for (int k = 0; opened && k < r->requests; k++) {
        double t = now_s();
        rep = NULL;
        if (fri_net_request(c, msg, r->size, &rep, &rn, 120000) != FR_OK) {
            snprintf(r->err, sizeof r->err, "%s", fr_errmsg());
            break;
        }
        r->lat[k] = now_s() - t;
        if (rn == r->size) r->ok++;
        fri_net_reply_free(rep);
    }
    fri_net_client_close(c);
    free(msg);
    return NULL;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int stall_ms = FRI_NET_DEFAULT_DIAL_STALL_MS;

static int bench_case(const char *scheme, const char *certs, int n, int requests, size_t size) {
    bool tls = !strcmp(scheme, "tls");
    char crt[4096], key[4096], ca[4096], url[64];
    snprintf(crt, sizeof crt, "%s/server.crt", certs);
    snprintf(key, sizeof key, "%s/server.key", certs);
    snprintf(ca, sizeof ca, "%s/ca.crt", certs);
    fri_net_server_opts so;
    fri_net_server_opts_default(&so);
    so.url = tls ? "tls+tcp://127.0.0.1:0" : "tcp://127.0.0.1:0";
    so.insecure = !tls;
    so.cert_file = tls ? crt : NULL;
    so.key_file = tls ? key : NULL;
    so.handle = echo;
    so.max_msg = size + 4096;
    so.contexts = 256;
    fri_net_server *s = NULL;
    if (fri_net_server_start(&s, &so) != FR_OK) {
        fprintf(stderr, "bench_transport: %s\n", fr_errmsg());
        return 1;
    }
    snprintf(url, sizeof url, "%s://127.0.0.1:%d", tls ? "tls+tcp" : "tcp", fri_net_server_port(s));
    fri_net_client_opts co;
    fri_net_client_opts_default(&co);
    co.url = url;
    co.insecure = !tls;
    co.ca_file = tls ? ca : NULL;
    co.max_reply = size + 4096;
    co.dial_stall_ms = stall_ms;
    run *r = calloc((size_t)n, sizeof *r);
    double *lat = calloc((size_t)n * (size_t)requests, sizeof *lat);
    pthread_t *th = calloc((size_t)n, sizeof *th);
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, (unsigned)n + 1);
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setstacksize(&at, 256 << 10);
    double t0 = now_s();
    for (int i = 0; i < n; i++) {
        r[i] = (run){.co = &co, .size = size, .requests = requests, .go = &go, .lat = lat + (size_t)i * requests, .t0 = t0};
        if (pthread_create(&th[i], &at, client_main, &r[i]) != 0) {
            fprintf(stderr, "bench_transport: cannot start client thread %d\n", i);
            exit(1);
        }
    }
    pthread_barrier_wait(&go);
    double t1 = now_s();
    for (int i = 0; i < n; i++) pthread_join(th[i], NULL);
    double t2 = now_s();
    pthread_attr_destroy(&at);
    pthread_barrier_destroy(&go);
    long ok = 0;
    double connect = 0;
    int failed = 0;
    for (int i = 0; i < n; i++) {
        ok += r[i].ok;
        if (r[i].connect_s > connect) connect = r[i].connect_s;
        if (r[i].err[0] && failed++ < 3) fprintf(stderr, "bench_transport: client %d: %s\n", i, r[i].err);
    }
    size_t m = 0;
    for (int i = 0; i < n; i++)
        for (int k = 0; k < r[i].ok; k++) lat[m++] = r[i].lat[k];
    qsort(lat, m, sizeof *lat, cmp_d);
    double secs = t2 - t1;
    double mb = (double)ok * (double)size / 1e6;
    printf("%-3s %8zu B  clients %5d  requests %7ld/%-7ld  %9.0f req/s  %8.1f MB/s each way  p50 %7.2f ms  p99 %8.2f ms"
           "  all connected in %.2f s  failed clients %d\n",
           scheme, size, n, ok, (long)n * requests, (double)ok / secs, mb / secs, m ? 1e3 * lat[m / 2] : 0.0,
           m ? 1e3 * lat[(size_t)(0.99 * (double)(m - 1))] : 0.0, connect, failed);
    fflush(stdout);
    fri_net_server_stop(s);
    free(r);
    free(lat);
    free(th);
    return failed ? 1 : 0;
}

int main(int argc, char **argv) {
    int clients = 1000, requests = 10, big_clients = 8, big_requests = 8;
    size_t small = 1024, big = 1u << 20;
    const char *certs = NULL, *only = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "--clients")) clients = atoi(v);
        else if (!strcmp(k, "--requests")) requests = atoi(v);
        else if (!strcmp(k, "--big-clients")) big_clients = atoi(v);
        else if (!strcmp(k, "--big-requests")) big_requests = atoi(v);
        else if (!strcmp(k, "--small")) small = (size_t)atol(v);
        else if (!strcmp(k, "--big")) big = (size_t)atol(v);
        else if (!strcmp(k, "--certs")) certs = v;
        else if (!strcmp(k, "--only")) only = v;
        else if (!strcmp(k, "--stall")) stall_ms = atoi(v);
        else {
            fprintf(stderr, "bench_transport: unknown option %s\n", k);
            return 2;
        }
    }
    if (clients < 1 || requests < 1 || big_clients < 1 || big_requests < 1) {
        fprintf(stderr, "bench_transport: counts must be positive\n");
        return 2;
    }
    /* every client holds a socket and the server one per client */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    char tmp[] = "/tmp/fedrec-bench-certs-XXXXXX";
    bool made = false;
    if (!certs) {
        if (!mkdtemp(tmp)) return 1;
        char cmd[256];
        snprintf(cmd, sizeof cmd, "scripts/make-certs.sh %s >/dev/null", tmp);
        if (system(cmd) != 0) {
            fprintf(stderr, "bench_transport: '%s' failed (run from the repository root, or give --certs DIR)\n", cmd);
            return 1;
        }
        certs = tmp;
        made = true;
    }
    printf("bench_transport: echo server and clients in one process on 127.0.0.1, %ld CPUs online\n",
           sysconf(_SC_NPROCESSORS_ONLN));
    int rc = 0;
    const char *schemes[] = {"tls", "tcp"};
    for (int s = 0; s < 2; s++) {
        if (only && strcmp(only, schemes[s])) continue;
        rc |= bench_case(schemes[s], certs, clients, requests, small);
        rc |= bench_case(schemes[s], certs, big_clients, big_requests, big);
    }
    if (made) {
        char cmd[256];
        snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
        if (system(cmd) != 0) rc = 1;
    }
    return rc;
}
