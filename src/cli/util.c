/* What every command shares: failure messages, JSON strings, the thread cap, the check
 * that an output file can be written before the work starts, and the check that standard
 * output took everything a command printed. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"

/* The library's detailed message is cut at this many bytes (src/core/error.c). */
#define LIB_MSG_MAX 1023

int cli_fail(fr_err e, const char *what) {
    const char *m = fr_errmsg();
    if (!m || !*m) m = fr_strerror(e);
    /* "data split" and a library message "split: ..." would say "split: split:" */
    const char *last = strrchr(what, ' ');
    last = last ? last + 1 : what;
    size_t n = strlen(last);
    if (!strncmp(m, last, n) && m[n] == ':' && m[n + 1] == ' ') m += n + 2;
    if (strlen(m) >= LIB_MSG_MAX) /* a long path filled it: keep the reason */
        fprintf(stderr, "fedrec: %s: %s... (message cut; %s)\n", what, m, fr_strerror(e));
    else
        fprintf(stderr, "fedrec: %s: %s\n", what, m);
    return 1;
}

/* Length of the valid UTF-8 sequence at s, or 0. */
static size_t utf8_len(const unsigned char *s) {
    unsigned c = s[0];
    size_t n = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
    if (n == 0 || (n == 2 && c < 0xc2) || (n == 4 && c > 0xf4)) return 0;
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xc0) != 0x80) return 0;
    if (n == 3) {
        unsigned cp = ((c & 0x0fu) << 12) | ((s[1] & 0x3fu) << 6) | (s[2] & 0x3fu);
        if (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
    }
    if (n == 4) {
        unsigned cp = ((c & 0x07u) << 18) | ((s[1] & 0x3fu) << 12);
        if (cp < 0x10000 || cp > 0x10ffff) return 0;
    }
    return n;
}

void cli_json_str(FILE *f, const char *s) {
    if (!s) { fputs("null", f); return; }
    fputc('"', f);
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned c = *p;
        size_t n = utf8_len(p);
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c < 0x20 || c == 0x7f) fprintf(f, "\\u%04x", c);
        else if (n > 1) fwrite(p, 1, n, f);
        else if (n == 1) fputc((int)c, f);
        else fprintf(f, "\\u%04x", c); /* not UTF-8: read the byte as Latin-1 (ml-100k's u.item) */
        p += n ? n : 1;
    }
    fputc('"', f);
}

uint64_t cli_max_threads(void) {
    long c = sysconf(_SC_NPROCESSORS_ONLN);
    uint64_t m = 4 * (uint64_t)(c > 0 ? c : 1);
    return m > 1024 ? 1024 : m;
}

int cli_check_input(const char *cmd, const char *opt, const char *path) {
    if (!path || access(path, R_OK) == 0) return 0;
    fprintf(stderr, "fedrec %s: %s: cannot read '%s': %s\n", cmd, opt, path, strerror(errno));
    return 1;
}

int cli_check_output(const char *cmd, const char *opt, const char *path, bool in_place) {
    struct stat st;
    errno = 0;
    bool exists = stat(path, &st) == 0;
    if (!exists && errno != ENOENT) { /* a name too long, a file where a directory should be */
        fprintf(stderr, "fedrec %s: %s: cannot write '%s': %s\n", cmd, opt, path, strerror(errno));
        return 1;
    }
    if (exists && S_ISDIR(st.st_mode)) {
        fprintf(stderr, "fedrec %s: %s: cannot write '%s': it is a directory\n", cmd, opt, path);
        return 1;
    }
    if (exists && in_place) {
        if (access(path, W_OK) == 0) return 0;
        fprintf(stderr, "fedrec %s: %s: cannot write '%s': %s\n", cmd, opt, path, strerror(errno));
        return 1;
    }
    const char *slash = strrchr(path, '/');
    char *dir = slash ? malloc((size_t)(slash - path) + 2) : NULL;
    if (slash && !dir) { fprintf(stderr, "fedrec %s: out of memory\n", cmd); return 1; }
    if (dir) {
        size_t n = slash == path ? 1 : (size_t)(slash - path); /* "/x" is in "/" */
        memcpy(dir, path, n);
        dir[n] = '\0';
    }
    const char *d = dir ? dir : ".";
    const char *why = NULL;
    errno = 0;
    if (stat(d, &st) != 0) why = strerror(errno);
    else if (!S_ISDIR(st.st_mode)) why = "not a directory";
    else if (access(d, W_OK | X_OK) != 0) why = strerror(errno);
    if (why) fprintf(stderr, "fedrec %s: %s: cannot write '%s': directory '%s': %s\n", cmd, opt, path, d, why);
    free(dir);
    return why ? 1 : 0;
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

double cli_now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}
