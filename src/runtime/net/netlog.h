/* What the networked server and clients share beside the transport: the operator's log
 * (one fr_net_log_fn call at a time, a line per event) and the monotonic clock in ms. */
#ifndef FEDREC_SRC_RUNTIME_NET_NETLOG_H
#define FEDREC_SRC_RUNTIME_NET_NETLOG_H
#include <nng/nng.h>
#include <nng/supplemental/util/platform.h>
#include <pthread.h>
#include <stdint.h>

#include "fedrec/net.h"

typedef struct fri_net_log {
    fr_net_log_fn fn;     /* NULL: nothing is logged */
    void *user;
    pthread_mutex_t mu;   /* one line at a time */
} fri_net_log;

void fri_net_log_init(fri_net_log *l, fr_net_log_fn fn, void *user);
void fri_net_log_destroy(fri_net_log *l);
/* Formats a line (cut at 767 bytes) and hands it to the log. */
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
void fri_net_logf(fri_net_log *l, int level, const char *fmt, ...);

/* Milliseconds on nng's monotonic clock. */
static inline uint64_t fri_net_now_ms(void) { return (uint64_t)nng_clock(); }
#endif
