/* The logging hook. The library never prints: messages go to the handler the
 * application installed, or nowhere. */
#include <stdio.h>

#include "core/core.h"

static fr_log_fn g_fn;
static void *g_user;
static int g_min = FR_LOG_INFO;

void fr_set_log_handler(fr_log_fn fn, void *user, int min_level) {
    g_fn = fn;
    g_user = user;
    g_min = min_level;
}

void fri_log(int level, const char *fmt, ...) {
    if (!g_fn || level < g_min) return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    g_fn(g_user, level, msg);
}
