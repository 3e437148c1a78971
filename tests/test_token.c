/* Client tokens (src/runtime/net/token.c): their form, the secret and hash files (modes,
 * the hash against an independent crypto_generichash call), the check (every wrong token
 * refused), the cost of a check, and the loader's errors on damaged hash files. */
#include <criterion/criterion.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/core.h"
#include "runtime/net/token.h"
#include "testutil.h"

#define assert_msg(sub) cr_assert(strstr(fr_errmsg(), (sub)) != NULL, "expected \"%s\" in: %s", (sub), fr_errmsg())

Test(token, generated_tokens_are_well_formed_and_fresh) {
    char a[FRI_TOKEN_LEN + 1], b[FRI_TOKEN_LEN + 1];
    cr_assert_eq(fri_token_generate(a), FR_OK);
    cr_assert_eq(fri_token_generate(b), FR_OK);
    cr_assert_eq(strlen(a), 47);
    cr_assert(strncmp(a, "frt_", 4) == 0);
    cr_assert(fri_token_well_formed((const uint8_t *)a, 47));
    cr_assert_str_neq(a, b);
    /* 43 base64url characters are the 32 random bytes */
    uint8_t raw[64];
    size_t rn = 0;
    cr_assert_eq(sodium_base642bin(raw, sizeof raw, a + 4, 43, NULL, &rn, NULL, sodium_base64_VARIANT_URLSAFE_NO_PADDING), 0);
    cr_assert_eq(rn, 32);
    /* not well formed: length, prefix, alphabet */
    cr_assert(!fri_token_well_formed((const uint8_t *)a, 46));
    cr_assert(!fri_token_well_formed(NULL, 0));
    char c[FRI_TOKEN_LEN + 1];
    memcpy(c, a, sizeof c);
    c[0] = 'F';
    cr_assert(!fri_token_well_formed((const uint8_t *)c, 47));
    const char bad[] = {'+', '/', '=', ' ', '.'};
    for (size_t i = 0; i < sizeof bad; i++) {
        memcpy(c, a, sizeof c);
        c[20] = bad[i];
        cr_assert(!fri_token_well_formed((const uint8_t *)c, 47), "'%c'", bad[i]);
    }
}

/* The secret file's lines, in order: ids and tokens. */
static size_t read_secret(const char *path, uint32_t *ids, char (*toks)[FRI_TOKEN_LEN + 1], size_t max) {
    FILE *f = fopen(path, "r");
    cr_assert(f);
    size_t n = 0;
    unsigned id;
    char t[128];
    while (n < max && fscanf(f, "%u %127s", &id, t) == 2) {
        cr_assert_eq(strlen(t), FRI_TOKEN_LEN);
        ids[n] = id;
        memcpy(toks[n], t, FRI_TOKEN_LEN + 1);
        n++;
    }
    fclose(f);
    return n;
}

static char *path_in(const char *dir, const char *name) {
    char *p = malloc(strlen(dir) + strlen(name) + 2);
    sprintf(p, "%s/%s", dir, name);
    return p;
}

static fri_token_verdict check(const fri_tokens *t, uint32_t id, const char *tok) {
    return fri_tokens_check(t, id, (const uint8_t *)tok, strlen(tok));
}

#define NC 6
static const uint32_t IDS[NC] = {5, 0, 1000000, 1, UINT32_MAX, 2};

Test(token, write_load_and_check) {
    char *dir = tu_tmpdir(), *sp = path_in(dir, "tokens.secret"), *hp = path_in(dir, "tokens.hash");
    cr_assert_eq(fri_tokens_write(sp, hp, IDS, NC), FR_OK, "%s", fr_errmsg());
    struct stat st;
    cr_assert_eq(stat(sp, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600, "the secret file is mode %o", st.st_mode & 0777);
    uint32_t ids[NC + 1];
    char toks[NC + 1][FRI_TOKEN_LEN + 1];
    cr_assert_eq(read_secret(sp, ids, toks, NC + 1), NC);
    for (int i = 0; i < NC; i++) {
        cr_assert_eq(ids[i], IDS[i], "the secret file keeps the order of the ids");
        cr_assert(fri_token_well_formed((const uint8_t *)toks[i], FRI_TOKEN_LEN));
    }
    fri_tokens *t = NULL;
    cr_assert_eq(fri_tokens_load(&t, hp), FR_OK, "%s", fr_errmsg());
    cr_assert_eq(fri_tokens_count(t), NC);
    const uint32_t sorted[NC] = {0, 1, 2, 5, 1000000, UINT32_MAX};
    for (int i = 0; i < NC; i++) cr_assert_eq(fri_tokens_client(t, (size_t)i), sorted[i]);
    for (int i = 0; i < NC; i++) {
        cr_assert_eq(check(t, ids[i], toks[i]), FRI_TOKEN_OK, "client %u", ids[i]);
        /* another client's token */
        cr_assert_eq(check(t, ids[i], toks[(i + 1) % NC]), FRI_TOKEN_WRONG);
        /* one character off, anywhere */
        for (int k = 0; k < FRI_TOKEN_LEN; k++) {
            char c[FRI_TOKEN_LEN + 1];
            memcpy(c, toks[i], sizeof c);
            c[k] = c[k] == 'A' ? 'B' : 'A';
            cr_assert_eq(check(t, ids[i], c), FRI_TOKEN_WRONG, "client %u, character %d", ids[i], k);
        }
        /* cut short, one more character */
        cr_assert_eq(fri_tokens_check(t, ids[i], (const uint8_t *)toks[i], FRI_TOKEN_LEN - 1), FRI_TOKEN_WRONG);
        char longer[FRI_TOKEN_LEN + 2];
        memcpy(longer, toks[i], FRI_TOKEN_LEN);
        longer[FRI_TOKEN_LEN] = 'x';
        longer[FRI_TOKEN_LEN + 1] = 0;
        cr_assert_eq(check(t, ids[i], longer), FRI_TOKEN_WRONG);
        /* empty */
        cr_assert_eq(fri_tokens_check(t, ids[i], (const uint8_t *)"", 0), FRI_TOKEN_WRONG);
        cr_assert_eq(fri_tokens_check(t, ids[i], NULL, 0), FRI_TOKEN_WRONG);
    }
    /* unknown ids, even with a valid token of someone */
    const uint32_t unknown[] = {3, 4, 6, 999999, 1000001, UINT32_MAX - 1};
    for (size_t i = 0; i < sizeof unknown / sizeof *unknown; i++)
        cr_assert_eq(check(t, unknown[i], toks[0]), FRI_TOKEN_UNKNOWN_CLIENT, "id %u", unknown[i]);
    /* a second run: new salt and tokens; the old tokens are wrong there */
    char *hp2 = path_in(dir, "again.hash"), *sp2 = path_in(dir, "again.secret");
    cr_assert_eq(fri_tokens_write(sp2, hp2, IDS, NC), FR_OK);
    fri_tokens *t2 = NULL;
    cr_assert_eq(fri_tokens_load(&t2, hp2), FR_OK);
    for (int i = 0; i < NC; i++) cr_assert_eq(check(t2, ids[i], toks[i]), FRI_TOKEN_WRONG);
    fri_tokens_free(t2);
    fri_tokens_free(t);
    fri_tokens_free(NULL);
    free(sp); free(hp); free(sp2); free(hp2);
    tu_rmtree(dir);
    free(dir);
}

/* The hash file against crypto_generichash called here: BLAKE2b-256 keyed by the salt of
 * the header, over each token. */
Test(token, the_hash_is_keyed_blake2b_256_of_the_token) {
    char *dir = tu_tmpdir(), *sp = path_in(dir, "s"), *hp = path_in(dir, "h");
    cr_assert_eq(fri_tokens_write(sp, hp, IDS, NC), FR_OK);
    uint32_t ids[NC];
    char toks[NC][FRI_TOKEN_LEN + 1];
    cr_assert_eq(read_secret(sp, ids, toks, NC), NC);
    size_t n = 0;
    char *text = tu_slurp(hp, &n);
    cr_assert(text);
    const char *head = "# fedrec token hashes v1 salt=";
    cr_assert(strncmp(text, head, strlen(head)) == 0, "%s", text);
    uint8_t salt[32];
    size_t sl = 0;
    cr_assert_eq(sodium_hex2bin(salt, 32, text + strlen(head), 64, NULL, &sl, NULL), 0);
    cr_assert_eq(sl, 32);
    cr_assert_eq(text[strlen(head) + 64], '\n');
    char *line = strchr(text, '\n') + 1;
    for (int i = 0; i < NC; i++) {
        uint8_t h[32];
        char hex[65], want[128];
        cr_assert_eq(crypto_generichash(h, 32, (const uint8_t *)toks[i], FRI_TOKEN_LEN, salt, 32), 0);
        sodium_bin2hex(hex, sizeof hex, h, 32);
        snprintf(want, sizeof want, "%u %s\n", IDS[i], hex);
        cr_assert(strncmp(line, want, strlen(want)) == 0, "line %d: %.80s, expected %s", i + 2, line, want);
        line += strlen(want);
        uint8_t h2[32];
        cr_assert_eq(fri_token_hash(salt, (const uint8_t *)toks[i], FRI_TOKEN_LEN, h2), FR_OK);
        cr_assert(memcmp(h, h2, 32) == 0);
    }
    cr_assert_eq(*line, '\0', "nothing after the last client");
    /* no token in the hash file */
    for (int i = 0; i < NC; i++) cr_assert(strstr(text, toks[i] + 4) == NULL);
    free(text);
    free(sp); free(hp);
    tu_rmtree(dir);
    free(dir);
}

/* A HELLO's check must cost next to nothing: 10000 of them (no password hashing, which
 * alone would take minutes) in well under a second, even in a sanitizer build. */
Test(token, checks_are_cheap) {
    char *dir = tu_tmpdir(), *sp = path_in(dir, "s"), *hp = path_in(dir, "h");
    uint32_t ids[1000];
    for (uint32_t i = 0; i < 1000; i++) ids[i] = i * 3;
    cr_assert_eq(fri_tokens_write(sp, hp, ids, 1000), FR_OK);
    uint32_t rid[1000];
    static char toks[1000][FRI_TOKEN_LEN + 1];
    cr_assert_eq(read_secret(sp, rid, toks, 1000), 1000);
    fri_tokens *t = NULL;
    cr_assert_eq(fri_tokens_load(&t, hp), FR_OK);
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    int ok = 0;
    for (int r = 0; r < 10; r++)
        for (int i = 0; i < 1000; i++) ok += check(t, rid[i], toks[i]) == FRI_TOKEN_OK;
    clock_gettime(CLOCK_MONOTONIC, &b);
    double s = (double)(b.tv_sec - a.tv_sec) + 1e-9 * (double)(b.tv_nsec - a.tv_nsec);
    cr_assert_eq(ok, 10000);
    cr_assert_lt(s, 1.0, "10000 checks took %.3f s", s);
    fri_tokens_free(t);
    free(sp); free(hp);
    tu_rmtree(dir);
    free(dir);
}

Test(token, write_refuses_bad_client_lists_and_leaves_no_secret_behind) {
    char *dir = tu_tmpdir(), *sp = path_in(dir, "s"), *hp = path_in(dir, "h");
    const uint32_t dup[3] = {1, 2, 1};
    cr_assert_eq(fri_tokens_write(sp, hp, dup, 3), FR_ERR_INVALID);
    assert_msg("client id 1 given twice");
    cr_assert_eq(fri_tokens_write(sp, hp, dup, 0), FR_ERR_INVALID);
    assert_msg("0 clients, expected 1..16777216");
    cr_assert_neq(access(sp, F_OK), 0);
    /* the hash file cannot be written: the secret file is removed again */
    char *bad = path_in(dir, "nodir/h");
    cr_assert_eq(fri_tokens_write(sp, bad, dup, 2), FR_ERR_IO);
    assert_msg("nodir/h");
    cr_assert_neq(access(sp, F_OK), 0, "an orphan secret file was left");
    free(bad);
    free(sp); free(hp);
    tu_rmtree(dir);
    free(dir);
}

/* ------------------------------------------------------------------ damaged files */

#define SALT "00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF"
#define HASH "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define HEAD "# fedrec token hashes v1 salt=" SALT "\n"

/* Loads text as a hash file: the error, with the message starting "<path>:<where>". */
static fr_err load_text(const char *text, const char *where, const char *sub) {
    char *dir = tu_tmpdir();
    char *p = tu_write(dir, "t.hash", text);
    fri_tokens *t = NULL;
    fr_err e = fri_tokens_load(&t, p);
    if (e) {
        cr_assert_null(t);
        char want[4096];
        snprintf(want, sizeof want, "%s%s: %s", p, where, sub);
        cr_assert(strstr(fr_errmsg(), want) != NULL, "expected \"%s\" in: %s", want, fr_errmsg());
    }
    fri_tokens_free(t);
    free(p);
    tu_rmtree(dir);
    free(dir);
    return e;
}

Test(token, damaged_hash_files_are_refused_naming_file_and_line) {
    /* a good file, with a comment, a blank line, upper-case hex and no final newline */
    cr_assert_eq(load_text(HEAD "# clients of silo A\n7 " HASH "\n\n0 " HASH, "", ""), FR_OK, "%s", fr_errmsg());
    struct { const char *text, *where, *sub; fr_err want; } cases[] = {
        {"", ":1", "empty file, expected the header '# fedrec token hashes v1 salt=<64 hex digits>'", FR_ERR_PARSE},
        {"# fedrec tokens\n7 " HASH "\n", ":1", "not a token hash file: expected the header", FR_ERR_PARSE},
        {"7 " HASH "\n", ":1", "not a token hash file", FR_ERR_PARSE},
        {"# fedrec token hashes v2 salt=" SALT "\n7 " HASH "\n", ":1", "token hash file version '2', this build reads v1",
         FR_ERR_PARSE},
        {"# fedrec token hashes v1 salt=0011\n", ":1", "salt: 4 hex digits, expected 64 (a truncated line?)", FR_ERR_PARSE},
        {"# fedrec token hashes v1 salt=" SALT "0\n", ":1", "salt: unexpected '0' at column 95 after its 64 hex digits",
         FR_ERR_PARSE},
        {HEAD, "", "no client after the header", FR_ERR_EMPTY},
        {HEAD "# only a comment\n\n", "", "no client after the header", FR_ERR_EMPTY},
        /* bad hex */
        {HEAD "7 " HASH "\n8 0123456789abcdeg" HASH "\n", ":3", "hash: 'g' at column 18 is not a hex digit, expected 64 hex digits",
         FR_ERR_PARSE},
        {HEAD "7 " HASH "x\n", ":2", "hash: unexpected 'x' at column 67 after its 64 hex digits", FR_ERR_PARSE},
        /* duplicate id */
        {HEAD "7 " HASH "\n3 " HASH "\n7 " HASH "\n", ":4", "client 7 again (first on line 2), expected each client once",
         FR_ERR_PARSE},
        /* truncated lines */
        {HEAD "7 " HASH "\n5 0123456789ab", ":3", "hash: 12 hex digits, expected 64 (a truncated line?)", FR_ERR_PARSE},
        {HEAD "7 " HASH "\n5", ":3", "the line ends after the client id, expected ' <64 hex digits>' (a truncated line?)",
         FR_ERR_PARSE},
        {HEAD "7 \n", ":2", "hash: 0 hex digits, expected 64", FR_ERR_PARSE},
        /* CRLF */
        {"# fedrec token hashes v1 salt=" SALT "\r\n7 " HASH "\r\n", ":1",
         "carriage return at column 95: Windows (CRLF) line endings, expected LF only", FR_ERR_PARSE},
        {HEAD "7 " HASH "\r\n", ":2", "carriage return at column 67", FR_ERR_PARSE},
        /* ids */
        {HEAD "4294967296 " HASH "\n", ":2", "client id '4294967296' out of range, expected 0..4294967295", FR_ERR_PARSE},
        {HEAD "12345678901234 " HASH "\n", ":2", "client id '1234567890' out of range", FR_ERR_PARSE},
        {HEAD "-1 " HASH "\n", ":2", "client id: '-' at column 1, expected '<client id> <64 hex digits>'", FR_ERR_PARSE},
        {HEAD " 7 " HASH "\n", ":2", "client id: ' ' at column 1", FR_ERR_PARSE},
        {HEAD "07 " HASH "\n", ":2", "client id '07' has a leading zero", FR_ERR_PARSE},
        {HEAD "7  " HASH "\n", ":2", "hash: ' ' at column 3 is not a hex digit", FR_ERR_PARSE},
        {HEAD "7\t" HASH "\n", ":2", "\\x09 at column 2 after the client id, expected one space", FR_ERR_PARSE},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        cr_assert_eq(load_text(cases[i].text, cases[i].where, cases[i].sub), cases[i].want, "case %zu: %s", i,
                     fr_errmsg());
    /* a NUL in the file is a bad byte like any other */
    char *dir = tu_tmpdir(), *p = path_in(dir, "nul.hash");
    FILE *f = fopen(p, "wb");
    fputs(HEAD, f);
    fputs("7 0123", f);
    fputc(0, f);
    fputs("56789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n", f);
    fclose(f);
    fri_tokens *t = NULL;
    cr_assert_eq(fri_tokens_load(&t, p), FR_ERR_PARSE);
    assert_msg(":2: hash: \\x00 at column 7 is not a hex digit");
    cr_assert_eq(fri_tokens_load(&t, "/nonexistent/tokens.hash"), FR_ERR_IO);
    assert_msg("/nonexistent/tokens.hash: cannot open");
    cr_assert_null(t);
    free(p);
    tu_rmtree(dir);
    free(dir);
}
