/* The secure aggregation client (privacy.h): a state machine ADVERTISE → SHARE → MASK →
 * UNMASK → DONE; any error leaves it FAILED.
 * Invariants: its secrets (two X25519 secret keys, the self-mask seed b, the shares it
 * holds for its neighbours) live in one sodium_malloc'd block; the keys and the seed are
 * wiped once the masked input is made, the held shares once they are answered; it answers
 * one unmasking request, and only one naming each neighbour it holds shares of exactly
 * once (never both shares of one neighbour). */
#include <sodium.h>
#include <stdlib.h>

#include "privacy/secagg_internal.h"

enum { NB_NONE = 0, NB_KEYS = 1, NB_SHARED = 2 }; /* what the client knows of a neighbour */

/* The secret block: keys and seed, then per neighbour index j the share pair it holds. */
typedef struct secrets {
    uint8_t c_sk[FRI_SA_KEY]; /* channel key (encrypts shares) */
    uint8_t s_sk[FRI_SA_KEY]; /* mask key (pairwise masks) */
    uint8_t b[FRI_SA_KEY];    /* self-mask seed */
    uint8_t held[];           /* k × (x, share of b, share of s_sk, channel key) of neighbour j */
} secrets;
#define HELD (1u + 2u * FRI_SA_KEY)      /* what an unmasking answer draws from */
#define SLOT (HELD + FRI_SA_KEY)         /* and the key agreed with that neighbour */

struct fr_sa_client {
    fr_sa_params p;
    uint32_t id;
    fr_sa_stage stage;
    uint32_t *nb;             /* the k neighbours, ascending */
    uint8_t *known;           /* per neighbour: NB_* */
    uint8_t *pks;             /* per neighbour: c_pk ‖ s_pk (from the keys message) */
    uint8_t c_pk[FRI_SA_KEY], s_pk[FRI_SA_KEY];
    secrets *sec;             /* sodium_malloc'd */
    fri_sa_graph graph;       /* to check the x-coordinates of shares it receives */
    uint32_t *scratch;        /* k: another client's neighbours */
    fri_sa_rng rng;           /* CSPRNG, or the test stream */
};

void fr_sa_client_free(fr_sa_client *c) {
    if (!c) return;
    if (c->sec) sodium_free(c->sec);
    fri_free(c->nb);
    fri_free(c->known);
    fri_free(c->pks);
    fri_free(c->scratch);
    fri_sa_graph_free(&c->graph);
    sodium_memzero(&c->rng, sizeof c->rng);
    fri_free(c);
}

fr_sa_stage fr_sa_client_stage(const fr_sa_client *c) { return c ? c->stage : FR_SA_FAILED; }

fr_err fr_sa_client_create(fr_sa_client **out, const fr_sa_params *p, uint32_t id) {
    if (!out) return fri_fail(FR_ERR_INVALID, "fr_sa_client_create: out is NULL");
    *out = NULL;
    fr_err e = fr_sa_params_check(p);
    if (e) return e;
    if (id >= p->n) return fri_fail(FR_ERR_INVALID, "secure aggregation: client id %u, expected below %u", id, p->n);
    if ((e = fri_sodium_init())) return e;
    fr_sa_client *c = fri_calloc(1, sizeof *c);
    if (!c) return FR_ERR_NOMEM;
    c->p = *p;
    c->id = id;
    c->stage = FR_SA_ADVERTISE;
    c->nb = fri_malloc((size_t)p->k * sizeof *c->nb);
    c->scratch = fri_malloc((size_t)p->k * sizeof *c->scratch);
    c->known = fri_calloc(p->k, 1);
    c->pks = fri_calloc(p->k, 2 * FRI_SA_KEY);
    c->sec = fri_sa_secret_alloc(sizeof(secrets) + (size_t)p->k * SLOT);
    if (!c->nb || !c->scratch || !c->known || !c->pks || !c->sec || (e = fri_sa_graph_init(&c->graph, p))) {
        fr_sa_client_free(c);
        return FR_ERR_NOMEM;
    }
    fri_sa_graph_nb(&c->graph, id, c->nb);
    fri_sa_rng_init(&c->rng, p, id);
    fri_sa_random(&c->rng, c->sec->c_sk, FRI_SA_KEY);
    fri_sa_random(&c->rng, c->sec->s_sk, FRI_SA_KEY);
    fri_sa_random(&c->rng, c->sec->b, FRI_SA_KEY);
    if (crypto_scalarmult_base(c->c_pk, c->sec->c_sk) || crypto_scalarmult_base(c->s_pk, c->sec->s_sk)) {
        fr_sa_client_free(c);
        return fri_fail(FR_ERR_INTERNAL, "secure aggregation: X25519 key generation failed");
    }
    *out = c;
    return FR_OK;
}

/* Checks the call is allowed now, and clears the outputs. */
static fr_err step_begin(fr_sa_client *c, fr_sa_stage want, uint8_t **out, size_t *out_n, const char *what) {
    if (out) *out = NULL;
    if (out_n) *out_n = 0;
    if (!c || !out || !out_n) return fri_fail(FR_ERR_INVALID, "secure aggregation %s: NULL argument", what);
    if (c->stage != want)
        return fri_fail(FR_ERR_STATE, "secure aggregation client %u: %s called in stage %d, expected stage %d", c->id,
                        what, (int)c->stage, (int)want);
    return FR_OK;
}

/* Ends a step: the next stage on success, FAILED (and secrets wiped) otherwise. */
static fr_err step_end(fr_sa_client *c, fr_err e, fr_sa_stage next) {
    if (e) {
        c->stage = FR_SA_FAILED;
        sodium_memzero(c->sec, sizeof(secrets) + (size_t)c->p.k * SLOT);
        return e;
    }
    c->stage = next;
    return FR_OK;
}

fr_err fr_sa_client_advertise(fr_sa_client *c, uint8_t **out, size_t *out_n) {
    fr_err e = step_begin(c, FR_SA_ADVERTISE, out, out_n, "advertise");
    if (e) return e;
    fri_buf b = {0};
    fri_sa_begin(&b, FRI_SA_MSG_ADVERTISE, c->p.session, c->id, FRI_SA_SERVER);
    fri_buf_put(&b, c->c_pk, FRI_SA_KEY);
    fri_buf_put(&b, c->s_pk, FRI_SA_KEY);
    return step_end(c, fri_sa_end(&b, out, out_n), FR_SA_SHARE);
}

/* Reads the keys message into known/pks; the count of neighbours listed in *count. */
static fr_err read_keys(fr_sa_client *c, const uint8_t *m, size_t n, uint32_t *count) {
    fri_rd r;
    uint32_t from, cnt;
    fr_err e = fri_sa_open(&r, m, n, FRI_SA_MSG_KEYS, &c->p, FRI_SA_SERVER, c->id, &from, "keys message");
    if (e || (e = fri_rd_u32(&r, &cnt, "count"))) return e;
    if (cnt > c->p.k)
        return fri_fail(FR_ERR_FORMAT, "secure aggregation keys message: %u clients, more than the %u neighbours", cnt,
                        c->p.k);
    if ((e = fri_rd_need_n(&r, cnt, 4 + 2 * FRI_SA_KEY, "keys"))) return e;
    long last = -1;
    for (uint32_t i = 0; i < cnt; i++) {
        uint32_t v;
        const uint8_t *pk;
        if ((e = fri_rd_u32(&r, &v, "client id")) || (e = fri_rd_bytes(&r, &pk, 2 * FRI_SA_KEY, "keys"))) return e;
        long j = fri_sa_find(c->nb, c->p.k, v);
        if (j < 0)
            return fri_fail(FR_ERR_FORMAT, "secure aggregation keys message: client %u is not a neighbour of %u", v,
                            c->id);
        if (j <= last)
            return fri_fail(FR_ERR_FORMAT, "secure aggregation keys message: client %u listed out of order or twice", v);
        last = j;
        c->known[j] = NB_KEYS;
        memcpy(c->pks + (size_t)j * 2 * FRI_SA_KEY, pk, 2 * FRI_SA_KEY);
    }
    if ((e = fri_rd_end(&r, "keys"))) return e;
    *count = cnt;
    return FR_OK;
}

static fr_err do_share(fr_sa_client *c, const uint8_t *keys, size_t keys_n, uint8_t **out, size_t *out_n) {
    uint32_t cnt = 0;
    fr_err e = read_keys(c, keys, keys_n, &cnt);
    if (e) return e;
    if (cnt < c->p.t)
        return fri_fail(FR_ERR_EMPTY, "secure aggregation client %u: %u neighbours advertised keys, the threshold is %u",
                        c->id, cnt, c->p.t);
    /* shares of b ‖ s_sk at x = neighbour index + 1, for the neighbours listed */
    uint8_t xs[FR_SA_MAX_K];
    uint32_t to[FR_SA_MAX_K], m = 0;
    for (uint32_t j = 0; j < c->p.k; j++)
        if (c->known[j]) { xs[m] = (uint8_t)(j + 1); to[m++] = j; }
    uint8_t *tmp = fri_sa_secret_alloc(2 * FRI_SA_KEY + (size_t)m * 2 * FRI_SA_KEY + FRI_SA_PLAIN);
    if (!tmp) return FR_ERR_NOMEM;
    uint8_t *secret = tmp, *shares = tmp + 2 * FRI_SA_KEY, *plain = shares + (size_t)m * 2 * FRI_SA_KEY;
    memcpy(secret, c->sec->b, FRI_SA_KEY);
    memcpy(secret + FRI_SA_KEY, c->sec->s_sk, FRI_SA_KEY);
    fri_buf b = {0};
    if ((e = fri_sa_split(&c->rng, secret, 2 * FRI_SA_KEY, m, (uint8_t)c->p.t, xs, shares))) goto done;
    fri_sa_begin(&b, FRI_SA_MSG_SHARES, c->p.session, c->id, FRI_SA_SERVER);
    uint8_t commit[FRI_SA_KEY];
    fri_sa_commit(commit, c->sec->b, c->p.session);
    fri_buf_put(&b, commit, sizeof commit);
    fri_buf_u32(&b, m);
    for (uint32_t i = 0; i < m; i++) {
        uint32_t j = to[i], v = c->nb[j];
        uint8_t *key = c->sec->held + (size_t)j * SLOT + HELD; /* kept to open its shares */
        if ((e = fri_sa_agree(key, c->sec->c_sk, c->c_pk, c->pks + (size_t)j * 2 * FRI_SA_KEY, c->p.session,
                              FRI_SA_CHANNEL)))
            goto done;
        fri_put_u32(plain, c->id);
        fri_put_u32(plain + 4, v);
        fri_put_u64(plain + 8, c->p.session);
        plain[16] = xs[i];
        memcpy(plain + 17, shares + (size_t)i * 2 * FRI_SA_KEY, 2 * FRI_SA_KEY);
        uint8_t ct[FRI_SA_CT];
        fri_sa_random(&c->rng, ct, FRI_SA_NONCE);
        crypto_aead_xchacha20poly1305_ietf_encrypt(ct + FRI_SA_NONCE, NULL, plain, FRI_SA_PLAIN, NULL, 0, NULL, ct, key);
        fri_buf_u32(&b, v);
        fri_buf_put(&b, ct, sizeof ct);
    }
    e = fri_sa_end(&b, out, out_n);
done:
    if (e) fri_buf_free(&b);
    sodium_free(tmp);
    return e;
}

fr_err fr_sa_client_share(fr_sa_client *c, const uint8_t *keys, size_t keys_n, uint8_t **out, size_t *out_n) {
    fr_err e = step_begin(c, FR_SA_SHARE, out, out_n, "share");
    if (e) return e;
    return step_end(c, do_share(c, keys, keys_n, out, out_n), FR_SA_MASK);
}

/* Reads and decrypts the forwarded shares into the held block; their count in *count. */
static fr_err read_forward(fr_sa_client *c, const uint8_t *m, size_t n, uint32_t *count) {
    fri_rd r;
    uint32_t from, cnt;
    fr_err e = fri_sa_open(&r, m, n, FRI_SA_MSG_FORWARD, &c->p, FRI_SA_SERVER, c->id, &from, "forwarded shares");
    if (e || (e = fri_rd_u32(&r, &cnt, "count"))) return e;
    if (cnt > c->p.k)
        return fri_fail(FR_ERR_FORMAT, "secure aggregation forwarded shares: %u, more than the %u neighbours", cnt,
                        c->p.k);
    if ((e = fri_rd_need_n(&r, cnt, 4 + FRI_SA_CT, "shares"))) return e;
    uint8_t *plain = fri_sa_secret_alloc(FRI_SA_PLAIN);
    if (!plain) return FR_ERR_NOMEM;
    long last = -1;
    for (uint32_t i = 0; i < cnt && !e; i++) {
        uint32_t u;
        const uint8_t *ct;
        if ((e = fri_rd_u32(&r, &u, "sender")) || (e = fri_rd_bytes(&r, &ct, FRI_SA_CT, "ciphertext"))) break;
        long j = fri_sa_find(c->nb, c->p.k, u);
        if (j < 0 || c->known[j] != NB_KEYS || j <= last) {
            e = fri_fail(FR_ERR_FORMAT, "secure aggregation forwarded shares: client %u is not a neighbour of %u that "
                         "advertised keys, or is listed twice or out of order", u, c->id);
            break;
        }
        last = j;
        const uint8_t *key = c->sec->held + (size_t)j * SLOT + HELD; /* agreed when sharing */
        if (crypto_aead_xchacha20poly1305_ietf_decrypt(plain, NULL, NULL, ct + FRI_SA_NONCE, FRI_SA_CT - FRI_SA_NONCE,
                                                       NULL, 0, ct, key) != 0) {
            e = fri_fail(FR_ERR_FORMAT, "secure aggregation forwarded shares: the ciphertext from client %u does not "
                         "decrypt", u);
            break;
        }
        fri_sa_graph_nb(&c->graph, u, c->scratch);
        long x = fri_sa_find(c->scratch, c->p.k, c->id) + 1;
        if (fri_get_u32(plain) != u || fri_get_u32(plain + 4) != c->id || fri_get_u64(plain + 8) != c->p.session ||
            plain[16] != x) {
            e = fri_fail(FR_ERR_FORMAT, "secure aggregation forwarded shares: the shares from client %u name another "
                         "sender, recipient, session or x-coordinate", u);
            break;
        }
        memcpy(c->sec->held + (size_t)j * SLOT, plain + 16, HELD);
        c->known[j] = NB_SHARED;
    }
    sodium_free(plain);
    if (!e) e = fri_rd_end(&r, "shares");
    *count = cnt;
    return e;
}

static fr_err do_mask(fr_sa_client *c, const int64_t *x, const uint8_t *fwd, size_t fwd_n, uint8_t **out,
                      size_t *out_n) {
    if (!x) return fri_fail(FR_ERR_INVALID, "secure aggregation mask: x is NULL");
    uint64_t bound = c->p.bound ? c->p.bound : (uint64_t)INT64_MAX / c->p.n;
    for (uint64_t i = 0; i < c->p.len; i++)
        if (x[i] > (int64_t)bound || x[i] < -(int64_t)bound)
            return fri_fail(FR_ERR_RANGE, "secure aggregation client %u: x[%llu] = %lld, expected |x| <= %llu (the sum "
                            "of %u clients must fit in int64)", c->id, (unsigned long long)i, (long long)x[i],
                            (unsigned long long)bound, c->p.n);
    uint32_t cnt = 0;
    fr_err e = read_forward(c, fwd, fwd_n, &cnt);
    if (e) return e;
    if (cnt < c->p.t)
        return fri_fail(FR_ERR_EMPTY, "secure aggregation client %u: %u neighbours shared keys, the threshold is %u",
                        c->id, cnt, c->p.t);
    size_t bytes = FR_SA_HEADER_BYTES + 8 + (size_t)c->p.len * 8;
    uint64_t *y = fri_malloc((size_t)c->p.len * 8);
    uint8_t *seed = fri_sa_secret_alloc(FRI_SA_KEY);
    fri_buf b = {0};
    if (!y || !seed) { e = FR_ERR_NOMEM; goto done; }
    for (uint64_t i = 0; i < c->p.len; i++) y[i] = (uint64_t)x[i];
    fri_sa_prg_add(y, c->p.len, c->sec->b, c->p.session, FRI_SA_SELF, +1);
    for (uint32_t j = 0; j < c->p.k; j++) {
        if (c->known[j] != NB_SHARED) continue;
        if ((e = fri_sa_agree(seed, c->sec->s_sk, c->s_pk, c->pks + (size_t)j * 2 * FRI_SA_KEY + FRI_SA_KEY,
                              c->p.session, FRI_SA_PAIR)))
            goto done;
        fri_sa_prg_add(y, c->p.len, seed, c->p.session, FRI_SA_PAIR, c->nb[j] > c->id ? +1 : -1);
    }
    fri_sa_begin(&b, FRI_SA_MSG_MASKED, c->p.session, c->id, FRI_SA_SERVER);
    fri_buf_u64(&b, c->p.len);
    size_t at = b.len;
    fri_buf_put(&b, y, bytes - at);
    if (!b.err)
        for (uint64_t i = 0; i < c->p.len; i++) fri_put_u64(b.data + at + 8 * i, y[i]);
    e = fri_sa_end(&b, out, out_n);
done:
    /* the keys, the seed and the channel keys are not needed again */
    sodium_memzero(c->sec, sizeof(secrets));
    for (uint32_t j = 0; j < c->p.k; j++) sodium_memzero(c->sec->held + (size_t)j * SLOT + HELD, FRI_SA_KEY);
    if (seed) sodium_free(seed);
    fri_free(y);
    return e;
}

fr_err fr_sa_client_mask(fr_sa_client *c, const int64_t *x, const uint8_t *fwd, size_t fwd_n, uint8_t **out,
                         size_t *out_n) {
    fr_err e = step_begin(c, FR_SA_MASK, out, out_n, "mask");
    if (e) return e;
    return step_end(c, do_mask(c, x, fwd, fwd_n, out, out_n), FR_SA_UNMASK);
}

static fr_err do_unmask(fr_sa_client *c, const uint8_t *m, size_t n, uint8_t **out, size_t *out_n) {
    fri_rd r;
    uint32_t from, cnt, held = 0;
    fr_err e = fri_sa_open(&r, m, n, FRI_SA_MSG_REQUEST, &c->p, FRI_SA_SERVER, c->id, &from, "unmasking request");
    if (e || (e = fri_rd_u32(&r, &cnt, "count"))) return e;
    for (uint32_t j = 0; j < c->p.k; j++) held += c->known[j] == NB_SHARED;
    if (cnt > c->p.k || (e = fri_rd_need_n(&r, cnt, 5, "entries"))) {
        if (e) return e;
        return fri_fail(FR_ERR_FORMAT, "secure aggregation unmasking request: %u entries, more than the %u neighbours",
                        cnt, c->p.k);
    }
    /* sized once: a buffer that grew by realloc would leave copies of shares behind */
    size_t size = FR_SA_HEADER_BYTES + 4 + (size_t)cnt * FRI_SA_ANSWER_ENTRY;
    fri_buf b = {fri_malloc(size), 0, size, FR_OK};
    if (!b.data) return FR_ERR_NOMEM;
    fri_sa_begin(&b, FRI_SA_MSG_ANSWER, c->p.session, c->id, FRI_SA_SERVER);
    fri_buf_u32(&b, cnt);
    long last = -1;
    uint32_t prev = UINT32_MAX, seeds = 0;
    for (uint32_t i = 0; i < cnt; i++) {
        uint32_t u;
        uint16_t kk;
        const uint8_t *kind;
        if ((e = fri_rd_u32(&r, &u, "client id")) || (e = fri_rd_bytes(&r, &kind, 1, "kind"))) goto fail;
        kk = kind[0];
        if (i > 0 && u == prev) {
            e = fri_fail(FR_ERR_FORMAT, "secure aggregation client %u refuses: the unmasking request asks twice about "
                         "client %u (both its seed and its key would reveal its input)", c->id, u);
            goto fail;
        }
        prev = u;
        long j = fri_sa_find(c->nb, c->p.k, u);
        if (j < 0 || c->known[j] != NB_SHARED) {
            e = fri_fail(FR_ERR_FORMAT, "secure aggregation client %u refuses: the unmasking request names client %u, "
                         "not a neighbour whose shares it holds", c->id, u);
            goto fail;
        }
        if (j <= last) {
            e = fri_fail(FR_ERR_FORMAT, "secure aggregation client %u refuses: the unmasking request lists client %u out "
                         "of order", c->id, u);
            goto fail;
        }
        last = j;
        if (kk != FRI_SA_KIND_SEED && kk != FRI_SA_KIND_KEY) {
            e = fri_fail(FR_ERR_FORMAT, "secure aggregation unmasking request: kind %u for client %u, expected 1 or 2",
                         kk, u);
            goto fail;
        }
        seeds += kk == FRI_SA_KIND_SEED;
        const uint8_t *h = c->sec->held + (size_t)j * SLOT;
        uint8_t head[6];
        fri_put_u32(head, u);
        head[4] = (uint8_t)kk;
        head[5] = h[0];
        fri_buf_put(&b, head, sizeof head);
        fri_buf_put(&b, h + 1 + (kk == FRI_SA_KIND_SEED ? 0 : FRI_SA_KEY), FRI_SA_KEY);
    }
    if ((e = fri_rd_end(&r, "entries"))) goto fail;
    if (cnt != held) {
        e = fri_fail(FR_ERR_FORMAT, "secure aggregation client %u refuses: the unmasking request names %u neighbours, "
                     "it holds the shares of %u (each must be named once)", c->id, cnt, held);
        goto fail;
    }
    /* its own seed is rebuilt from the shares of its surviving neighbours: with fewer than
     * t the session cannot finish, and no mask key share is given away for nothing */
    if (seeds < c->p.t) {
        e = fri_fail(FR_ERR_EMPTY, "secure aggregation client %u refuses: %u of its neighbours survived, the threshold "
                     "is %u (the session cannot finish)", c->id, seeds, c->p.t);
        goto fail;
    }
    e = fri_sa_end(&b, out, out_n);
    sodium_memzero(c->sec->held, (size_t)c->p.k * SLOT);
    return e;
fail:
    if (b.data) sodium_memzero(b.data, b.len);
    fri_buf_free(&b);
    return e;
}

fr_err fr_sa_client_unmask(fr_sa_client *c, const uint8_t *req, size_t req_n, uint8_t **out, size_t *out_n) {
    fr_err e = step_begin(c, FR_SA_UNMASK, out, out_n, "unmask");
    if (e) return e;
    return step_end(c, do_unmask(c, req, req_n, out, out_n), FR_SA_DONE);
}
