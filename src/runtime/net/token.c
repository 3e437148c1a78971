/* Client tokens and the server's table of their hashes (format and invariants in
 * token.h). The table is one libsodium guarded region: the salt, the client ids in
 * increasing order, then their hashes in the same order; made read-only once filled, so
 * a stray write faults instead of letting a wrong token in. */
#include <errno.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/net/token.h"

#define HEX_LEN (2 * FRI_TOKEN_HASH_BYTES)

struct fri_tokens {
    void *region;          /* sodium_malloc'd: salt | ids[n] | hashes[n] */
    size_t region_bytes;
    size_t n;              /* clients */
    const uint8_t *salt;   /* FRI_TOKEN_SALT_BYTES, in region */
    const uint8_t *ids;    /* n little-endian u32, increasing, in region */
    const uint8_t *hashes; /* n * FRI_TOKEN_HASH_BYTES, in region */
};

/* ------------------------------------------------------------------ tokens */

fr_err fri_token_generate(char out[FRI_TOKEN_LEN + 1]) {
    fr_err e = fri_sodium_init();
    if (e) return e;
    uint8_t raw[FRI_TOKEN_RANDOM_BYTES];
    randombytes_buf(raw, sizeof raw);
    memcpy(out, FRI_TOKEN_PREFIX, 4);
    sodium_bin2base64(out + 4, FRI_TOKEN_LEN + 1 - 4, raw, sizeof raw, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(raw, sizeof raw);
    return FR_OK;
}

static bool is_b64url(uint8_t c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

bool fri_token_well_formed(const uint8_t *s, size_t len) {
    if (!s || len != FRI_TOKEN_LEN || memcmp(s, FRI_TOKEN_PREFIX, 4) != 0) return false;
    for (size_t i = 4; i < len; i++)
        if (!is_b64url(s[i])) return false;
    return true;
}

fr_err fri_token_hash(const uint8_t salt[FRI_TOKEN_SALT_BYTES], const uint8_t *tok, size_t len,
                      uint8_t out[FRI_TOKEN_HASH_BYTES]) {
    fr_err e = fri_sodium_init();
    if (e) return e;
    static const uint8_t none[1] = {0};
    if (crypto_generichash(out, FRI_TOKEN_HASH_BYTES, tok ? tok : none, tok ? len : 0, salt, FRI_TOKEN_SALT_BYTES))
        return fri_fail(FR_ERR_INTERNAL, "token hash: crypto_generichash failed");
    return FR_OK;
}

/* ------------------------------------------------------------------ writing */

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static fr_err check_ids(const uint32_t *ids, size_t n) {
    if (n == 0 || n > FRI_TOKEN_MAX_CLIENTS)
        return fri_fail(FR_ERR_INVALID, "tokens: %zu clients, expected 1..%u", n, FRI_TOKEN_MAX_CLIENTS);
    if (!ids) return fri_fail(FR_ERR_INVALID, "tokens: NULL client ids");
    uint32_t *s = fri_malloc(n * sizeof *s);
    if (!s) return FR_ERR_NOMEM;
    memcpy(s, ids, n * sizeof *s);
    qsort(s, n, sizeof *s, cmp_u32);
    fr_err e = FR_OK;
    for (size_t i = 1; i < n && !e; i++)
        if (s[i] == s[i - 1]) e = fri_fail(FR_ERR_INVALID, "tokens: client id %" PRIu32 " given twice", s[i]);
    fri_free(s);
    return e;
}

/* Longest line of either file: a u32 id, a space, 64 hex digits or a token, a newline. */
#define LINE_MAX_BYTES (10 + 1 + HEX_LEN + 1)

fr_err fri_tokens_write(const char *secret_path, const char *hash_path, const uint32_t *ids, size_t n) {
    if (!secret_path || !hash_path) return fri_fail(FR_ERR_INVALID, "tokens: NULL path");
    fr_err e = fri_sodium_init();
    if (!e) e = check_ids(ids, n);
    if (e) return e;
    /* the secret text in guarded memory; the hash text is not secret */
    size_t cap = n * LINE_MAX_BYTES; /* n <= 2^24: no overflow */
    char *secret = sodium_malloc(cap);
    if (!secret) return fri_fail(FR_ERR_NOMEM, "tokens: no guarded memory for %zu clients' tokens", n);
    uint8_t salt[FRI_TOKEN_SALT_BYTES];
    randombytes_buf(salt, sizeof salt);
    fri_buf hb = {0};
    char line[sizeof FRI_TOKEN_HEADER + HEX_LEN + 2];
    snprintf(line, sizeof line, "%s", FRI_TOKEN_HEADER);
    sodium_bin2hex(line + strlen(line), HEX_LEN + 1, salt, sizeof salt);
    strcat(line, "\n");
    fri_buf_put(&hb, line, strlen(line));
    size_t sn = 0;
    char tok[FRI_TOKEN_LEN + 1], hex[HEX_LEN + 1];
    uint8_t h[FRI_TOKEN_HASH_BYTES];
    for (size_t i = 0; i < n && !e; i++) {
        if ((e = fri_token_generate(tok)) || (e = fri_token_hash(salt, (const uint8_t *)tok, FRI_TOKEN_LEN, h))) break;
        sn += (size_t)snprintf(secret + sn, cap - sn, "%" PRIu32 " %s\n", ids[i], tok);
        sodium_bin2hex(hex, sizeof hex, h, sizeof h);
        int k = snprintf(line, sizeof line, "%" PRIu32 " %s\n", ids[i], hex);
        fri_buf_put(&hb, line, (size_t)k);
    }
    sodium_memzero(tok, sizeof tok);
    sodium_memzero(h, sizeof h);
    if (!e && hb.err) e = fri_fail(hb.err, "tokens: no memory for the hash file of %zu clients", n);
    if (!e) e = fri_write_file_atomic_mode(secret_path, secret, sn, 0600);
    sodium_free(secret); /* wipes */
    if (!e && (e = fri_write_file_atomic_mode(hash_path, hb.data, hb.len, 0644)))
        unlink(secret_path); /* tokens whose hashes no server has are worthless: no orphan secrets */
    fri_buf_free(&hb);
    return e;
}

/* ------------------------------------------------------------------ loading */

typedef struct entry {
    uint32_t id;
    uint32_t line;
    uint8_t hash[FRI_TOKEN_HASH_BYTES];
} entry;

static int cmp_entry(const void *a, const void *b) {
    const entry *x = a, *y = b;
    if (x->id != y->id) return (x->id > y->id) - (x->id < y->id);
    return (x->line > y->line) - (x->line < y->line);
}

static int hex_val(uint8_t c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* A printable rendering of byte c for messages ('x', or \xNN). */
static const char *show(uint8_t c, char buf[8]) {
    if (c >= 0x20 && c < 0x7f) snprintf(buf, 8, "'%c'", c);
    else snprintf(buf, 8, "\\x%02x", c);
    return buf;
}

/* HEX_LEN hex digits at p[0, len) (the rest of the line from column col, 1-based) into
 * out; what names the field. */
static fr_err parse_hex(const char *path, size_t ln, size_t col, const uint8_t *p, size_t len, const char *what,
                        uint8_t out[FRI_TOKEN_HASH_BYTES]) {
    char sb[8];
    size_t k = 0;
    while (k < len && k < HEX_LEN && hex_val(p[k]) >= 0) k++;
    if (k < len && k < HEX_LEN)
        return fri_fail(FR_ERR_PARSE, "%s:%zu: %s: %s at column %zu is not a hex digit, expected %d hex digits", path,
                        ln, what, show(p[k], sb), col + k, HEX_LEN);
    if (k < HEX_LEN)
        return fri_fail(FR_ERR_PARSE, "%s:%zu: %s: %zu hex digits, expected %d (a truncated line?)", path, ln, what, k,
                        HEX_LEN);
    if (len > HEX_LEN)
        return fri_fail(FR_ERR_PARSE, "%s:%zu: %s: unexpected %s at column %zu after its %d hex digits", path, ln,
                        what, show(p[HEX_LEN], sb), col + HEX_LEN, HEX_LEN);
    for (size_t i = 0; i < FRI_TOKEN_HASH_BYTES; i++)
        out[i] = (uint8_t)(hex_val(p[2 * i]) << 4 | hex_val(p[2 * i + 1]));
    return FR_OK;
}

static fr_err parse_header(const char *path, const uint8_t *p, size_t len, uint8_t salt[FRI_TOKEN_SALT_BYTES]) {
    static const char prefix[] = "# fedrec token hashes v";
    size_t hl = sizeof FRI_TOKEN_HEADER - 1, pl = sizeof prefix - 1;
    if (len >= pl && memcmp(p, prefix, pl) == 0 && !(len >= hl && memcmp(p, FRI_TOKEN_HEADER, hl) == 0)) {
        size_t v = pl;
        while (v < len && p[v] != ' ') v++;
        return fri_fail(FR_ERR_PARSE, "%s:1: token hash file version '%.*s', this build reads v1", path,
                        (int)(v - pl > 16 ? 16 : v - pl), (const char *)p + pl);
    }
    if (len < hl || memcmp(p, FRI_TOKEN_HEADER, hl) != 0)
        return fri_fail(FR_ERR_PARSE, "%s:1: not a token hash file: expected the header '" FRI_TOKEN_HEADER
                        "<64 hex digits>'", path);
    return parse_hex(path, 1, hl + 1, p + hl, len - hl, "salt", salt);
}

/* "<id> <64 hex>" at p[0, len) into *en. */
static fr_err parse_client(const char *path, size_t ln, const uint8_t *p, size_t len, entry *en) {
    char sb[8];
    size_t k = 0;
    uint64_t id = 0;
    while (k < len && p[k] >= '0' && p[k] <= '9') {
        if (k == 10) break; /* more digits than a u32 has: reported below */
        id = id * 10 + (uint64_t)(p[k] - '0');
        k++;
    }
    if (k == 0)
        return fri_fail(FR_ERR_PARSE, "%s:%zu: client id: %s at column 1, expected '<client id> <%d hex digits>'", path,
                        ln, show(p[0], sb), HEX_LEN);
    if ((k < len && p[k] >= '0' && p[k] <= '9') || id > UINT32_MAX)
        return fri_fail(FR_ERR_PARSE, "%s:%zu: client id '%.*s' out of range, expected 0..%" PRIu32, path, ln,
                        (int)(k < 20 ? k : 20), (const char *)p, UINT32_MAX);
    if (k > 1 && p[0] == '0')
        return fri_fail(FR_ERR_PARSE, "%s:%zu: client id '%.*s' has a leading zero, expected a plain decimal number",
                        path, ln, (int)k, (const char *)p);
    if (k == len)
        return fri_fail(FR_ERR_PARSE, "%s:%zu: the line ends after the client id, expected ' <%d hex digits>' (a "
                        "truncated line?)", path, ln, HEX_LEN);
    if (p[k] != ' ')
        return fri_fail(FR_ERR_PARSE, "%s:%zu: %s at column %zu after the client id, expected one space", path, ln,
                        show(p[k], sb), k + 1);
    en->id = (uint32_t)id;
    en->line = ln > UINT32_MAX ? UINT32_MAX : (uint32_t)ln;
    return parse_hex(path, ln, k + 2, p + k + 1, len - k - 1, "hash", en->hash);
}

/* Parses the whole file into a table of entries sorted by id (not yet guarded). */
static fr_err parse_file(const char *path, const uint8_t *text, size_t n, uint8_t salt[FRI_TOKEN_SALT_BYTES],
                         entry **out, size_t *count) {
    *out = NULL;
    *count = 0;
    size_t lines = 1;
    for (size_t i = 0; i < n; i++) lines += text[i] == '\n';
    entry *en = fri_malloc(lines * sizeof *en); /* at most one per line: bounded by the file */
    if (!en) return FR_ERR_NOMEM;
    size_t cnt = 0, ln = 0, at = 0;
    fr_err e = FR_OK;
    if (n == 0) e = fri_fail(FR_ERR_PARSE, "%s:1: empty file, expected the header '" FRI_TOKEN_HEADER "<64 hex digits>'", path);
    while (!e && at < n) {
        const uint8_t *p = text + at, *nl = memchr(p, '\n', n - at);
        size_t len = nl ? (size_t)(nl - p) : n - at;
        at += len + (nl ? 1 : 0);
        ln++;
        const uint8_t *cr = memchr(p, '\r', len);
        if (cr) {
            e = fri_fail(FR_ERR_PARSE, "%s:%zu: carriage return at column %zu: Windows (CRLF) line endings, expected LF "
                         "only", path, ln, (size_t)(cr - p) + 1);
            break;
        }
        if (ln == 1) { e = parse_header(path, p, len, salt); continue; }
        if (len == 0 || p[0] == '#') continue;
        if (cnt == FRI_TOKEN_MAX_CLIENTS) {
            e = fri_fail(FR_ERR_PARSE, "%s:%zu: more than %u clients, the most a hash file may hold", path, ln,
                         FRI_TOKEN_MAX_CLIENTS);
            break;
        }
        e = parse_client(path, ln, p, len, &en[cnt]);
        if (!e) cnt++;
    }
    if (!e && cnt == 0) e = fri_fail(FR_ERR_EMPTY, "%s: no client after the header, expected '<client id> <%d hex digits>' lines", path, HEX_LEN);
    if (!e) {
        qsort(en, cnt, sizeof *en, cmp_entry);
        for (size_t i = 1; i < cnt && !e; i++)
            if (en[i].id == en[i - 1].id)
                e = fri_fail(FR_ERR_PARSE, "%s:%" PRIu32 ": client %" PRIu32 " again (first on line %" PRIu32
                             "), expected each client once", path, en[i].line, en[i].id, en[i - 1].line);
    }
    if (e) {
        sodium_memzero(en, lines * sizeof *en);
        fri_free(en);
        return e;
    }
    *out = en;
    *count = cnt;
    return FR_OK;
}

fr_err fri_tokens_load(fri_tokens **out, const char *path) {
    if (!out) return fri_fail(FR_ERR_INVALID, "fri_tokens_load: NULL out");
    *out = NULL;
    if (!path) return fri_fail(FR_ERR_INVALID, "fri_tokens_load: NULL path");
    fr_err e = fri_sodium_init();
    if (e) return e;
    uint8_t *text = NULL;
    size_t n = 0;
    if ((e = fri_read_file(path, &text, &n))) {
        /* the directory fedrec tokens wrote: name the file in it the server reads */
        char hashes[4096];
        struct stat st;
        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode) &&
            (size_t)snprintf(hashes, sizeof hashes, "%s/tokens.hash", path) < sizeof hashes && access(hashes, R_OK) == 0)
            return fri_fail(FR_ERR_IO, "%s: is a directory, expected the hashes file fedrec tokens wrote in it: %s", path,
                            hashes);
        return e;
    }
    uint8_t salt[FRI_TOKEN_SALT_BYTES];
    entry *en = NULL;
    size_t cnt = 0;
    e = parse_file(path, text, n, salt, &en, &cnt);
    sodium_memzero(text, n);
    fri_free(text);
    if (e) { sodium_memzero(salt, sizeof salt); return e; }
    fri_tokens *t = fri_calloc(1, sizeof *t);
    /* salt | ids | hashes, rounded up to 16 so sodium_malloc's region starts aligned */
    size_t bytes = FRI_TOKEN_SALT_BYTES + cnt * (4 + FRI_TOKEN_HASH_BYTES);
    bytes = (bytes + 15) & ~(size_t)15;
    uint8_t *r = t ? sodium_malloc(bytes) : NULL;
    if (!r) {
        e = t ? fri_fail(FR_ERR_NOMEM, "%s: no guarded memory for the hashes of %zu clients (%zu bytes)", path, cnt,
                         bytes)
              : FR_ERR_NOMEM;
        fri_free(t);
    } else {
        t->region = r;
        t->region_bytes = bytes;
        t->n = cnt;
        memset(r, 0, bytes);
        memcpy(r, salt, FRI_TOKEN_SALT_BYTES);
        uint8_t *ids = r + FRI_TOKEN_SALT_BYTES, *hs = ids + cnt * 4;
        for (size_t i = 0; i < cnt; i++) {
            fri_put_u32(ids + 4 * i, en[i].id);
            memcpy(hs + i * FRI_TOKEN_HASH_BYTES, en[i].hash, FRI_TOKEN_HASH_BYTES);
        }
        t->salt = r;
        t->ids = ids;
        t->hashes = hs;
        sodium_mprotect_readonly(r);
        *out = t;
    }
    sodium_memzero(salt, sizeof salt);
    sodium_memzero(en, cnt * sizeof *en);
    fri_free(en);
    return e;
}

void fri_tokens_free(fri_tokens *t) {
    if (!t) return;
    if (t->region) {
        sodium_mprotect_readwrite(t->region);
        sodium_free(t->region); /* wipes */
    }
    fri_free(t);
}

size_t fri_tokens_count(const fri_tokens *t) { return t ? t->n : 0; }

uint32_t fri_tokens_client(const fri_tokens *t, size_t i) { return fri_get_u32(t->ids + 4 * i); }

fri_token_verdict fri_tokens_check(const fri_tokens *t, uint32_t client, const uint8_t *tok, size_t len) {
    if (!t || t->n == 0) return FRI_TOKEN_UNKNOWN_CLIENT;
    uint8_t h[FRI_TOKEN_HASH_BYTES];
    /* the hash first, whether or not the client is known, so the time taken says nothing */
    if (fri_token_hash(t->salt, tok, len, h)) return FRI_TOKEN_WRONG;
    size_t lo = 0, hi = t->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (fri_get_u32(t->ids + 4 * mid) < client) lo = mid + 1;
        else hi = mid;
    }
    fri_token_verdict v;
    if (lo == t->n || fri_get_u32(t->ids + 4 * lo) != client) v = FRI_TOKEN_UNKNOWN_CLIENT;
    else v = sodium_memcmp(h, t->hashes + lo * FRI_TOKEN_HASH_BYTES, FRI_TOKEN_HASH_BYTES) == 0 ? FRI_TOKEN_OK
                                                                                                 : FRI_TOKEN_WRONG;
    sodium_memzero(h, sizeof h);
    return v;
}
