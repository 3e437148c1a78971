/* Error codes and the per-thread detailed message.
 * The message is thread-local so a failing constructor (which has no object to carry
 * it) can still explain itself; it is overwritten by the next failure on the thread. */
#include <stdio.h>

#include "core/core.h"

static _Thread_local char tl_msg[8192]; /* room for a PATH_MAX path and its reason */

const char *fr_strerror(fr_err err) {
    switch (err) {
    case FR_OK: return "success";
    case FR_ERR_NOMEM: return "out of memory";
    case FR_ERR_IO: return "input/output error";
    case FR_ERR_PARSE: return "malformed input";
    case FR_ERR_FORMAT: return "malformed binary data";
    case FR_ERR_CHECKSUM: return "checksum mismatch";
    case FR_ERR_VERSION: return "unsupported format version";
    case FR_ERR_INVALID: return "invalid argument";
    case FR_ERR_RANGE: return "value out of range";
    case FR_ERR_EMPTY: return "no data";
    case FR_ERR_UNSUPPORTED: return "not supported";
    case FR_ERR_STATE: return "invalid state";
    case FR_ERR_INTERNAL: return "internal error";
    }
    return "unknown error";
}

const char *fr_errmsg(void) { return tl_msg; }

void fr_errmsg_clear(void) { tl_msg[0] = '\0'; }

fr_err fri_fail(fr_err code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tl_msg, sizeof tl_msg, fmt, ap);
    va_end(ap);
    return code;
}

fr_err fri_fail_prefix(fr_err code, const char *fmt, ...) {
    char old[sizeof tl_msg];
    memcpy(old, tl_msg, sizeof old);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tl_msg, sizeof tl_msg, fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n < sizeof tl_msg && old[0])
        snprintf(tl_msg + n, sizeof tl_msg - (size_t)n, ": %s", old);
    return code;
}
