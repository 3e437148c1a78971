/* The text toolkit of the data layer (declared in data/text.h): splitting a line into
 * fields, blank lines, control bytes, UTF-8 checks and the Latin-1 to UTF-8 copy used by
 * the metadata readers. Pure functions over (pointer, length); only fri_text_dup
 * allocates. */
#include "data/text.h"

#include "core/core.h"

void fri_text_split(const char *s, size_t n, char delim, bool dcolon, fri_fields *f) {
    const char *end = s + n, *p = s;
    f->n = 0;
    for (;;) {
        const char *q = memchr(p, dcolon ? ':' : delim, (size_t)(end - p));
        while (dcolon && q && !(q + 1 < end && q[1] == ':')) q = memchr(q + 1, ':', (size_t)(end - q - 1));
        const char *fe = q ? q : end;
        if (f->n < FRI_MAX_FIELDS) {
            f->s[f->n] = p;
            f->len[f->n] = (size_t)(fe - p);
        }
        f->n++;
        if (!q) break;
        p = q + (dcolon ? 2 : 1);
    }
}

bool fri_text_blank(const char *s, size_t n) {
    for (size_t k = 0; k < n; k++)
        if (s[k] != ' ' && s[k] != '\t') return false;
    return true;
}

long fri_text_control_byte(const char *s, size_t n) {
    for (size_t k = 0; k < n; k++) {
        unsigned char c = (unsigned char)s[k];
        if ((c < 0x20 && c != '\t') || c == 0x7f) return (long)k;
    }
    return -1;
}

fr_err fri_text_check(const char *path, unsigned long long line, const char *s, size_t n) {
    long k = fri_text_control_byte(s, n);
    if (k < 0) return FR_OK;
    return fri_fail(FR_ERR_PARSE, "%s%s:%llu: binary data (byte 0x%02x at column %ld); expected a text file",
                    FRI_PATH(path), line, (unsigned char)s[k], k + 1);
}

bool fri_text_valid_utf8(const unsigned char *s, size_t n) {
    size_t k = 0;
    while (k < n) {
        unsigned char c = s[k];
        size_t m;
        if (c < 0x80) m = 0;
        else if (c >= 0xC2 && c <= 0xDF) m = 1; /* 0xC0, 0xC1: overlong */
        else if ((c >> 4) == 0xE) m = 2;
        else if (c >= 0xF0 && c <= 0xF4) m = 3;
        else return false;
        if (m > n - k - 1) return false;
        for (size_t j = 1; j <= m; j++)
            if ((s[k + j] & 0xC0) != 0x80) return false;
        k += m + 1;
    }
    return true;
}

char *fri_text_dup(const char *s, size_t n, bool latin1) {
    const unsigned char *u = (const unsigned char *)s;
    bool convert = latin1 && !fri_text_valid_utf8(u, n);
    size_t extra = 0;
    if (convert)
        for (size_t k = 0; k < n; k++) extra += u[k] >= 0x80;
    char *d = fri_malloc(n + extra + 1);
    if (!d) return NULL;
    size_t o = 0;
    for (size_t k = 0; k < n; k++) {
        if (convert && u[k] >= 0x80) {
            d[o++] = (char)(0xC0 | (u[k] >> 6));
            d[o++] = (char)(0x80 | (u[k] & 0x3F));
        } else {
            d[o++] = s[k];
        }
    }
    d[o] = '\0';
    return d;
}
