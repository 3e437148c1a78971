/* The operator's log of the networked runtime (netlog.h). */
#include <stdarg.h>
#include <stdio.h>

#include "runtime/net/netlog.h"

void fri_net_log_init(fri_net_log *l, fr_net_log_fn fn, void *user) {
    l->fn = fn;
    l->user = user;
    pthread_mutex_init(&l->mu, NULL);
}

void fri_net_log_destroy(fri_net_log *l) { pthread_mutex_destroy(&l->mu); }

void fri_net_logf(fri_net_log *l, int level, const char *fmt, ...) {
    if (!l->fn) return;
    char line[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&l->mu);
    l->fn(l->user, level, line);
    pthread_mutex_unlock(&l->mu);
}
