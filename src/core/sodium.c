/* libsodium's start-up, once per process. sodium_init is itself safe to call from
 * several threads, but its result is kept so every caller gets the same answer cheaply. */
#include <pthread.h>
#include <sodium.h>

#include "core/core.h"

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static int g_rc = -1;

static void start(void) { g_rc = sodium_init(); }

fr_err fri_sodium_init(void) {
    pthread_once(&g_once, start);
    if (g_rc < 0) return fri_fail(FR_ERR_INTERNAL, "libsodium could not be initialised (sodium_init failed)");
    return FR_OK;
}
