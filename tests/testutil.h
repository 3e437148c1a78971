/* Helpers shared by the test programs. */
#ifndef FEDREC_TESTS_TESTUTIL_H
#define FEDREC_TESTS_TESTUTIL_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fedrec/data.h"
#include "fedrec/model.h"

/* A fresh empty directory under $TMPDIR for one test; removed by tu_rmtree. */
char *tu_tmpdir(void);
void tu_rmtree(const char *dir);
/* Writes text to dir/name and returns the malloc'd path. */
char *tu_write(const char *dir, const char *name, const char *text);
/* Writes text to dir/name (tu_write) and loads it with fr_dataset_load. */
fr_err tu_load_text(fr_dataset **d, const char *dir, const char *name, const char *text, const fr_load_opts *o,
                    fr_load_stats *st);
/* The rating and time of raw (user, item) in d (either pointer may be NULL); false if absent. */
bool tu_find_row(const fr_dataset *d, int64_t ru, int64_t ri, float *r, int64_t *t);
/* Path of a file under ../shared/data, or NULL if it is absent. */
char *tu_shared(const char *rel);
/* Whole file as a malloc'd string (NULL on failure). */
char *tu_slurp(const char *path, size_t *len);
/* A generated dataset (fr_dataset_generate with these sizes and seed, the rest default);
 * aborts the test process if generation fails. */
fr_dataset *tu_generate(uint32_t users, uint32_t items, uint64_t interactions, uint64_t seed);
/* The one-step case of federated training: fed's shared parameters against one plain SGD
 * step of rate lr from ref's on the mean loss of batch b (computed here, in double). Sets
 * the largest difference and the largest move of the step (|lr g|); false when the
 * gradient cannot be had (fr_errmsg says why). */
bool tu_sgd_step_diff(fr_model *ref, const fr_model *fed, const fr_batch *b, double lr, double *maxdiff,
                      double *maxmove);
/* A TLS client made with OpenSSL on a plain socket, without nng: for a misbehaving peer
 * of a server in the test's own process. nng 1.5.2's TLS transport can wedge the whole
 * process's nng when a server drops a request its nng client is still sending (see
 * docs/ARCHITECTURE.md), so a peer whose request the server drops must not be an nng
 * client in the server's process. The server's certificate is checked against ca_file
 * and 127.0.0.1. SIGPIPE is ignored from the first connection on (writes to a connection
 * the server closed must fail, not kill the test). */
typedef struct tu_tls tu_tls;
/* Connects to 127.0.0.1:port and completes the TLS handshake; NULL on failure. */
tu_tls *tu_tls_connect(int port, const char *ca_file);
/* The SP handshake of a REQ peer (nng's 8-byte header each way); false on failure. */
bool tu_tls_sp_req_handshake(tu_tls *t);
/* Writes all n bytes; false once the connection failed (the server closed it). */
bool tu_tls_write(tu_tls *t, const void *b, size_t n);
/* Reads until the server closes the connection (close_notify, end of stream or reset),
 * dropping what arrives and adding its size to *got (if not NULL). Milliseconds it took,
 * or -1 if the connection is still open after max_ms. */
long tu_tls_wait_closed(tu_tls *t, int max_ms, size_t *got);
void tu_tls_close(tu_tls *t);
#endif
