/* Secure aggregation: what the client and the server share (privacy.h, secagg_internal.h):
 * parameters and their choice, the message header, the neighbourhood graph, the key
 * agreement, the mask generator and Shamir sharing.
 * Invariants: a seed is expanded whole (256 bits keying ChaCha20), never folded; every
 * temporary secret is in sodium_malloc'd memory or wiped before its stack frame ends. */
#include <libgfshare.h>
#include <openssl/evp.h>
#include <math.h>
#include <pthread.h>
#include <sodium.h>

#include "privacy/secagg_internal.h"

size_t fr_sa_header_bytes(void) { return FR_SA_HEADER_BYTES; }

/* ------------------------------------------------------------------ parameters */

/* log P[Binomial(k, q) >= m] (log-sum-exp over the terms). */
static double log_binom_tail(uint32_t k, double q, uint32_t m) {
    if (m == 0) return 0.0;
    if (m > k || q <= 0.0) return -INFINITY;
    double best = -INFINITY, terms[FR_SA_MAX_K + 2];
    for (uint32_t i = m; i <= k; i++) {
        double l = lgamma(k + 1.0) - lgamma(i + 1.0) - lgamma(k - i + 1.0) + i * log(q) + (k - i) * log1p(-q);
        terms[i - m] = l;
        if (l > best) best = l;
    }
    double s = 0;
    for (uint32_t i = m; i <= k; i++) s += exp(terms[i - m] - best);
    return best + log(s);
}

fr_err fr_sa_params_choose(fr_sa_params *p, uint32_t n, uint64_t len, double dropout, uint32_t sigma) {
    return fr_sa_params_choose_split(p, n, len, dropout, sigma, sigma);
}

fr_err fr_sa_params_choose_split(fr_sa_params *p, uint32_t n, uint64_t len, double dropout, uint32_t sigma,
                                 uint32_t eta) {
    if (!p) return fri_fail(FR_ERR_INVALID, "fr_sa_params_choose: p is NULL");
    if (n < 2) return fri_fail(FR_ERR_INVALID, "secure aggregation: n = %u clients, expected at least 2", n);
    if (!(dropout >= 0.0 && dropout < 0.5))
        return fri_fail(FR_ERR_INVALID, "secure aggregation: dropout = %g, expected in [0, 0.5)", dropout);
    if (sigma < 1 || sigma > 128)
        return fri_fail(FR_ERR_INVALID, "secure aggregation: sigma = %u, expected 1..128", sigma);
    if (eta < 1 || eta > 128) return fri_fail(FR_ERR_INVALID, "secure aggregation: eta = %u, expected 1..128", eta);
    memset(p, 0, sizeof *p);
    p->n = n;
    p->len = len;
    double correct = -(double)eta * log(2.0) - log((double)n), secure = -(double)sigma * log(2.0) - log((double)n);
    for (uint32_t k = 2; k < n - 1 && k < FR_SA_MAX_K; k += 2) {
        uint32_t t = k / 2 + 1;
        bool split_ok = dropout <= 0.0 || (double)(k / 2) * log(dropout) <= secure;
        if (log_binom_tail(k, dropout, k - t + 1) <= correct && split_ok) {
            p->k = k;
            p->t = t;
            return fr_sa_params_check(p);
        }
    }
    if (n - 1 > FR_SA_MAX_K)
        return fri_fail(FR_ERR_RANGE, "secure aggregation: no neighbourhood of at most %u clients tolerates a dropout "
                        "of %g among %u clients at 2^-%u", FR_SA_MAX_K, dropout, n, sigma);
    p->k = n - 1;
    p->t = (n - 1) / 2 + 1;
    return fr_sa_params_check(p);
}

fr_err fr_sa_params_check(const fr_sa_params *p) {
    if (!p) return fri_fail(FR_ERR_INVALID, "secure aggregation: parameters are NULL");
    if (p->n < 2) return fri_fail(FR_ERR_INVALID, "secure aggregation: n = %u clients, expected at least 2", p->n);
    if (p->k > FR_SA_MAX_K)
        return fri_fail(FR_ERR_INVALID, "secure aggregation: k = %u neighbours, expected at most %u", p->k, FR_SA_MAX_K);
    if (p->k != p->n - 1 && (p->k < 2 || p->k % 2 || p->k > p->n - 1))
        return fri_fail(FR_ERR_INVALID, "secure aggregation: k = %u neighbours among n = %u, expected n-1 = %u or an "
                        "even number in 2..%u", p->k, p->n, p->n - 1, p->n - 2);
    if (p->t <= p->k / 2 || p->t > p->k)
        return fri_fail(FR_ERR_INVALID, "secure aggregation: threshold t = %u with k = %u, expected %u..%u (t > k/2)",
                        p->t, p->k, p->k / 2 + 1, p->k);
    if (p->len < 1 || p->len > ((uint64_t)1 << 32))
        return fri_fail(FR_ERR_INVALID, "secure aggregation: len = %llu words, expected 1..2^32",
                        (unsigned long long)p->len);
    uint64_t most = (uint64_t)INT64_MAX / p->n;
    if (p->bound > most)
        return fri_fail(FR_ERR_INVALID, "secure aggregation: bound = %llu, expected at most INT64_MAX / n = %llu "
                        "(the sum of n clients must fit in int64)", (unsigned long long)p->bound,
                        (unsigned long long)most);
    return FR_OK;
}

void fr_sa_bytes_free(uint8_t *bytes, size_t n) {
    if (!bytes) return;
    sodium_memzero(bytes, n);
    fri_free(bytes);
}

/* ------------------------------------------------------------------ messages */

void fri_sa_begin(fri_buf *b, uint16_t type, uint64_t session, uint32_t from, uint32_t to) {
    uint8_t h[FR_SA_HEADER_BYTES];
    fri_put_u32(h, FRI_SA_MAGIC);
    fri_put_u16(h + 4, FRI_SA_VERSION);
    fri_put_u16(h + 6, type);
    fri_put_u64(h + 8, session);
    fri_put_u32(h + 16, from);
    fri_put_u32(h + 20, to);
    fri_put_u64(h + 24, 0);
    fri_buf_put(b, h, sizeof h);
}

fr_err fri_sa_end(fri_buf *b, uint8_t **out, size_t *out_n) {
    if (b->err || b->len < FR_SA_HEADER_BYTES) {
        if (b->data) sodium_memzero(b->data, b->len);
        fri_buf_free(b);
        return fri_fail(FR_ERR_NOMEM, "secure aggregation: out of memory encoding a message");
    }
    fri_put_u64(b->data + 24, b->len - FR_SA_HEADER_BYTES);
    *out = b->data;
    *out_n = b->len;
    b->data = NULL;
    b->len = b->cap = 0;
    return FR_OK;
}

fr_err fri_sa_open(fri_rd *r, const uint8_t *m, size_t n, uint16_t type, const fr_sa_params *p,
                   uint32_t from_expect, uint32_t to, uint32_t *from, const char *kind) {
    if (!m && n) return fri_fail(FR_ERR_INVALID, "secure aggregation: %s is NULL", kind);
    fri_rd_init(r, m, n, "<memory>", kind);
    uint32_t magic, f, t;
    uint16_t ver, ty;
    uint64_t session, body;
    fr_err e;
    if ((e = fri_rd_u32(r, &magic, "magic"))) return e;
    if (magic != FRI_SA_MAGIC)
        return fri_fail(FR_ERR_FORMAT, "secure aggregation %s: magic 0x%08x, expected 0x%08x", kind, magic, FRI_SA_MAGIC);
    if ((e = fri_rd_u16(r, &ver, "version")) || (e = fri_rd_u16(r, &ty, "type"))) return e;
    if (ver != FRI_SA_VERSION)
        return fri_fail(FR_ERR_VERSION, "secure aggregation %s: version %u, this build reads %u", kind, ver,
                        FRI_SA_VERSION);
    if (ty != type) return fri_fail(FR_ERR_FORMAT, "secure aggregation %s: message type %u, expected %u", kind, ty, type);
    if ((e = fri_rd_u64(r, &session, "session")) || (e = fri_rd_u32(r, &f, "sender")) ||
        (e = fri_rd_u32(r, &t, "recipient")) || (e = fri_rd_u64(r, &body, "body length")))
        return e;
    if (session != p->session)
        return fri_fail(FR_ERR_FORMAT, "secure aggregation %s: session %llu, expected %llu", kind,
                        (unsigned long long)session, (unsigned long long)p->session);
    bool any = from_expect == FRI_SA_ANY;
    if (any ? f >= p->n : f != from_expect) {
        if (any) return fri_fail(FR_ERR_FORMAT, "secure aggregation %s: sender %u, expected below %u", kind, f, p->n);
        return fri_fail(FR_ERR_FORMAT, "secure aggregation %s: sender %u, expected %u", kind, f, from_expect);
    }
    if (t != to) return fri_fail(FR_ERR_FORMAT, "secure aggregation %s: recipient %u, expected %u", kind, t, to);
    if (body != fri_rd_left(r))
        return fri_fail(FR_ERR_FORMAT, "secure aggregation %s: body of %llu bytes announced, %zu present", kind,
                        (unsigned long long)body, fri_rd_left(r));
    *from = f;
    return FR_OK;
}

/* ------------------------------------------------------------------ graph */

fr_err fri_sa_graph_init(fri_sa_graph *g, const fr_sa_params *p) {
    memset(g, 0, sizeof *g);
    g->n = p->n;
    g->k = p->k;
    g->perm = fri_malloc((size_t)p->n * sizeof *g->perm);
    g->pos = fri_malloc((size_t)p->n * sizeof *g->pos);
    if (!g->perm || !g->pos) { fri_sa_graph_free(g); return FR_ERR_NOMEM; }
    for (uint32_t i = 0; i < p->n; i++) g->perm[i] = i;
    fr_rng r;
    fr_rng_init(&r, p->graph_seed, (uint32_t)p->session, 0, FR_PURPOSE_USER + 13);
    fr_rng_shuffle_u32(&r, g->perm, p->n);
    for (uint32_t i = 0; i < p->n; i++) g->pos[g->perm[i]] = i;
    return FR_OK;
}

void fri_sa_graph_free(fri_sa_graph *g) {
    fri_free(g->perm);
    fri_free(g->pos);
    g->perm = g->pos = NULL;
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

void fri_sa_graph_nb(const fri_sa_graph *g, uint32_t id, uint32_t *out) {
    if (g->k == g->n - 1) { /* every other client */
        for (uint32_t v = 0, j = 0; v < g->n; v++)
            if (v != id) out[j++] = v;
        return;
    }
    uint32_t at = g->pos[id], half = g->k / 2;
    for (uint32_t d = 1; d <= half; d++) {
        out[2 * (d - 1)] = g->perm[(at + d) % g->n];
        out[2 * (d - 1) + 1] = g->perm[(at + g->n - d) % g->n];
    }
    qsort(out, g->k, sizeof *out, cmp_u32);
}

long fri_sa_find(const uint32_t *a, uint32_t k, uint32_t v) {
    uint32_t lo = 0, hi = k;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (a[mid] < v) lo = mid + 1;
        else hi = mid;
    }
    return lo < k && a[lo] == v ? (long)lo : -1;
}

fr_err fr_sa_neighbours(const fr_sa_params *p, uint32_t id, uint32_t *out) {
    fr_err e = fr_sa_params_check(p);
    if (e) return e;
    if (id >= p->n) return fri_fail(FR_ERR_INVALID, "secure aggregation: client id %u, expected below %u", id, p->n);
    if (!out) return fri_fail(FR_ERR_INVALID, "fr_sa_neighbours: out is NULL");
    fri_sa_graph g;
    if ((e = fri_sa_graph_init(&g, p))) return e;
    fri_sa_graph_nb(&g, id, out);
    fri_sa_graph_free(&g);
    return FR_OK;
}

/* ------------------------------------------------------------------ randomness */

void fri_sa_rng_init(fri_sa_rng *r, const fr_sa_params *p, uint32_t party) {
    memset(r, 0, sizeof *r);
    r->det = p->test_seed != 0;
    if (!r->det) return;
    uint8_t in[20];
    fri_put_u64(in, p->test_seed);
    fri_put_u64(in + 8, p->session);
    fri_put_u32(in + 16, party);
    crypto_generichash(r->key, sizeof r->key, in, sizeof in, (const uint8_t *)"fedrec-secagg-test-only", 23);
}

void fri_sa_random(fri_sa_rng *r, void *buf, size_t n) {
    if (!r || !r->det) { randombytes_buf(buf, n); return; }
    uint8_t nonce[crypto_stream_chacha20_ietf_NONCEBYTES] = {0};
    fri_put_u64(nonce, r->ctr++);
    crypto_stream_chacha20_ietf(buf, n, nonce, r->key);
}

/* libgfshare draws its polynomial coefficients through one global hook: it reads the
 * stream of the party that is splitting (thread-local), or the CSPRNG. */
static _Thread_local fri_sa_rng *g_split_rng;
static pthread_once_t g_gf_once = PTHREAD_ONCE_INIT;
static void gf_fill(unsigned char *buf, unsigned int n) { fri_sa_random(g_split_rng, buf, n); }
static void gf_start(void) { gfshare_fill_rand = gf_fill; }

void *fri_sa_secret_alloc(size_t n) {
    void *p = sodium_malloc(n ? n : 1);
    if (!p) { fri_fail(FR_ERR_NOMEM, "secure aggregation: sodium_malloc of %zu bytes failed", n); return NULL; }
    sodium_memzero(p, n ? n : 1);
    return p;
}

/* ------------------------------------------------------------------ cryptography */

fr_err fri_sa_agree(uint8_t out[32], const uint8_t sk[32], const uint8_t my_pk[32], const uint8_t their_pk[32],
                    uint64_t session, uint8_t purpose) {
    uint8_t shared[crypto_scalarmult_BYTES], tail[9];
    if (crypto_scalarmult(shared, sk, their_pk) != 0) {
        sodium_memzero(shared, sizeof shared);
        return fri_fail(FR_ERR_FORMAT, "secure aggregation: a public key is a low-order point");
    }
    int lo = memcmp(my_pk, their_pk, 32) < 0;
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, 32);
    crypto_generichash_update(&st, shared, sizeof shared);
    crypto_generichash_update(&st, lo ? my_pk : their_pk, 32);
    crypto_generichash_update(&st, lo ? their_pk : my_pk, 32);
    fri_put_u64(tail, session);
    tail[8] = purpose;
    crypto_generichash_update(&st, tail, sizeof tail);
    crypto_generichash_final(&st, out, 32);
    sodium_memzero(shared, sizeof shared);
    sodium_memzero(&st, sizeof st);
    return FR_OK;
}

void fri_sa_commit(uint8_t out[32], const uint8_t seed[32], uint64_t session) {
    uint8_t in[32 + 8];
    memcpy(in, seed, 32);
    fri_put_u64(in + 32, session);
    crypto_generichash(out, 32, in, sizeof in, (const uint8_t *)"fedrec-secagg-commit", 20);
    sodium_memzero(in, sizeof in);
}

void fri_sa_prg_add(uint64_t *y, uint64_t len, const uint8_t seed[32], uint64_t session, uint8_t purpose, int sign) {
    fri_sa_prg_add_range(y, 0, len, seed, session, purpose, sign);
}

void fri_sa_prg_add_range(uint64_t *y, uint64_t from, uint64_t len, const uint8_t seed[32], uint64_t session,
                          uint8_t purpose, int sign) {
    enum { CHUNK = 4096 }; /* bytes per call: 64 ChaCha20 blocks, in L1 (FRI_SA_PRG_ALIGN words) */
    static const uint8_t zeros[CHUNK];
    uint64_t ks[CHUNK / 8]; /* the keystream's words (little-endian bytes, read as words below) */
    uint8_t nonce[crypto_stream_chacha20_ietf_NONCEBYTES] = {0};
    fri_put_u64(nonce, session);
    nonce[8] = purpose;
    /* OpenSSL's ChaCha20 (RFC 8439, the same keystream as libsodium's IETF variant: its
     * 16-byte IV is the 32-bit block counter then the 96-bit nonce) runs about 3x faster
     * here (AVX-512); libsodium's is the fallback should OpenSSL refuse, from the same
     * block, so the words are the same either way (test_secagg checks them against one
     * libsodium call). EVP_CIPHER_CTX_free wipes the key. */
    uint64_t done = from;
    uint32_t block = (uint32_t)(from / 8); /* 8 words per 64-byte block */
    uint8_t iv[16] = {0};
    fri_put_u32(iv, block); /* the block counter, little-endian */
    memcpy(iv + 4, nonce, sizeof nonce);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    bool ossl = ctx && EVP_EncryptInit_ex(ctx, EVP_chacha20(), NULL, seed, iv) == 1;
    while (done < len) {
        uint64_t words = len - done < CHUNK / 8 ? len - done : CHUNK / 8;
        int got = 0;
        if (ossl)
            ossl = EVP_EncryptUpdate(ctx, (uint8_t *)ks, &got, zeros, (int)(words * 8)) == 1 && got == (int)(words * 8);
        if (!ossl) crypto_stream_chacha20_ietf_xor_ic((uint8_t *)ks, zeros, (size_t)words * 8, nonce, block, seed);
#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
        for (uint64_t i = 0; i < words; i++) ks[i] = fri_get_u64((const uint8_t *)&ks[i]);
#endif
        uint64_t *o = y + done;
        if (sign > 0)
            for (uint64_t i = 0; i < words; i++) o[i] += ks[i];
        else
            for (uint64_t i = 0; i < words; i++) o[i] -= ks[i];
        done += words;
        block += CHUNK / 64;
    }
    EVP_CIPHER_CTX_free(ctx);
    sodium_memzero(ks, sizeof ks);
}

fr_err fri_sa_split(fri_sa_rng *r, const uint8_t *secret, uint32_t size, uint32_t count, uint8_t t, const uint8_t *xs,
                    uint8_t *shares) {
    pthread_once(&g_gf_once, gf_start);
    uint8_t nrs[FR_SA_MAX_K];
    memcpy(nrs, xs, count);
    g_split_rng = r;
    gfshare_ctx *g = gfshare_ctx_init_enc(nrs, count, t, size);
    if (!g) { g_split_rng = NULL; return fri_fail(FR_ERR_NOMEM, "secure aggregation: libgfshare could not start a split"); }
    /* setsecret copies the secret into the context, whose coefficients it draws now */
    uint8_t *tmp = fri_sa_secret_alloc(size);
    if (!tmp) { g_split_rng = NULL; gfshare_ctx_free(g); return FR_ERR_NOMEM; }
    memcpy(tmp, secret, size);
    gfshare_ctx_enc_setsecret(g, tmp);
    for (uint32_t i = 0; i < count; i++) gfshare_ctx_enc_getshare(g, (uint8_t)i, shares + (size_t)i * size);
    g_split_rng = NULL; /* the context is overwritten with CSPRNG bytes when freed */
    gfshare_ctx_free(g);
    sodium_free(tmp);
    return FR_OK;
}

fr_err fri_sa_join(uint32_t count, const uint8_t *xs, const uint8_t *shares, uint32_t size, uint8_t *secret) {
    pthread_once(&g_gf_once, gf_start);
    uint8_t nrs[FR_SA_MAX_K];
    memcpy(nrs, xs, count);
    gfshare_ctx *g = gfshare_ctx_init_dec(nrs, count, size);
    if (!g) return fri_fail(FR_ERR_NOMEM, "secure aggregation: libgfshare could not start a reconstruction");
    uint8_t *tmp = fri_sa_secret_alloc(size);
    if (!tmp) { gfshare_ctx_free(g); return FR_ERR_NOMEM; }
    for (uint32_t i = 0; i < count; i++) {
        memcpy(tmp, shares + (size_t)i * size, size);
        gfshare_ctx_dec_giveshare(g, (uint8_t)i, tmp);
    }
    gfshare_ctx_dec_extract(g, secret);
    gfshare_ctx_free(g);
    sodium_free(tmp);
    return FR_OK;
}
