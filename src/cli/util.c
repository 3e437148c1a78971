/* What every command shares: failure messages, JSON strings, the thread cap, and the
 * check that standard output took everything a command printed. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"

int cli_fail(fr_err e, const char *what) {
    const char *m = fr_errmsg();
    fprintf(stderr, "fedrec: %s: %s\n", what, m && *m ? m : fr_strerror(e));
    return 1;
}

void cli_json_str(FILE *f, const char *s) {
    if (!s) { fputs("null", f); return; }
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c < 0x20) fprintf(f, "\\u%04x", c);
        else fputc(c, f);
    }
    fputc('"', f);
}

uint64_t cli_max_threads(void) {
    long c = sysconf(_SC_NPROCESSORS_ONLN);
    uint64_t m = 4 * (uint64_t)(c > 0 ? c : 1);
    return m > 1024 ? 1024 : m;
}

static int stdout_errno; /* the reason of the first failed flush of standard output */

void cli_flush_stdout(void) {
    errno = 0;
    if (fflush(stdout) != 0 && !stdout_errno) stdout_errno = errno;
}

int cli_finish_stdout(const char *cmd, int rc) {
    cli_flush_stdout();
    if (!stdout_errno && !ferror(stdout)) return rc;
    fprintf(stderr, "fedrec %s: writing to standard output failed: %s\n", cmd,
            stdout_errno ? strerror(stdout_errno) : "a write failed");
    return rc ? rc : 1;
}
