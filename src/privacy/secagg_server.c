/* The secure aggregation server (privacy.h): collects each stage's messages, closes the
 * stage (who has not sent has dropped out), produces each client's next message, and at
 * the end removes the masks.
 * Invariants: level[u] is the last stage client u completed (0 none, 1 advertised, 2
 * shared, 3 masked, 4 answered), so the clients still in at stage s are those with
 * level >= s; the masked inputs are summed as they arrive (mod 2^64), never kept; a
 * message that is refused changes nothing; the shares it receives live in sodium_malloc'd
 * memory; the sum is written only when every needed secret was rebuilt and checked. */
#include <pthread.h>
#include <sodium.h>

#include "privacy/secagg_internal.h"

struct fr_sa_server {
    fr_sa_params p;
    fr_sa_stage stage;
    uint32_t k;
    uint32_t *nbs;      /* n × k: each client's neighbours, ascending */
    uint8_t *level;     /* n: the last stage each client completed */
    uint8_t *pks;       /* n × (c_pk ‖ s_pk) */
    uint8_t *commit;    /* n × 32: hash of each client's self-mask seed */
    uint8_t *cts;       /* n × k × FRI_SA_CT: ciphertext from u to its j-th neighbour */
    uint8_t *has_ct;    /* n × k */
    uint64_t *acc;      /* len: Σ y_u mod 2^64 */
    uint8_t *shares;    /* sodium: n × k × (x, share): share of u's secret from its j-th neighbour */
    uint8_t *has_share; /* n × k */
    uint32_t masked;    /* clients whose masked input arrived */
    uint8_t *arriving;  /* n: a masked input begun (fr_sa_server_masked_begin), not yet ended */
    uint32_t n_arriving;/* how many: the stage cannot close while one is being added */
};
#define SLOT (1u + FRI_SA_KEY)

void fr_sa_server_free(fr_sa_server *s) {
    if (!s) return;
    fri_free(s->nbs);
    fri_free(s->level);
    fri_free(s->pks);
    fri_free(s->commit);
    fri_free(s->cts);
    fri_free(s->has_ct);
    fri_free(s->acc);
    if (s->shares) sodium_free(s->shares);
    fri_free(s->has_share);
    fri_free(s->arriving);
    fri_free(s);
}

fr_sa_stage fr_sa_server_stage(const fr_sa_server *s) { return s ? s->stage : FR_SA_FAILED; }

fr_err fr_sa_server_create(fr_sa_server **out, const fr_sa_params *p) {
    if (!out) return fri_fail(FR_ERR_INVALID, "fr_sa_server_create: out is NULL");
    *out = NULL;
    fr_err e = fr_sa_params_check(p);
    if (e || (e = fri_sodium_init())) return e;
    size_t nk;
    if (fri_mul_size(p->n, p->k, &nk) || nk > SIZE_MAX / FRI_SA_CT)
        return fri_fail(FR_ERR_NOMEM, "secure aggregation: %u clients × %u neighbours is too large", p->n, p->k);
    fr_sa_server *s = fri_calloc(1, sizeof *s);
    if (!s) return FR_ERR_NOMEM;
    s->p = *p;
    s->k = p->k;
    s->stage = FR_SA_ADVERTISE;
    s->nbs = fri_malloc(nk * sizeof *s->nbs);
    s->level = fri_calloc(p->n, 1);
    s->pks = fri_calloc(p->n, 2 * FRI_SA_KEY);
    s->commit = fri_calloc(p->n, FRI_SA_KEY);
    s->cts = fri_malloc(nk * FRI_SA_CT);
    s->has_ct = fri_calloc(nk, 1);
    s->acc = fri_calloc((size_t)p->len, 8);
    s->has_share = fri_calloc(nk, 1);
    s->arriving = fri_calloc(p->n, 1);
    fri_sa_graph g = {0};
    if (!s->nbs || !s->level || !s->pks || !s->commit || !s->cts || !s->has_ct || !s->acc || !s->has_share ||
        !s->arriving ||
        (e = fri_sa_graph_init(&g, p))) {
        fr_sa_server_free(s);
        return FR_ERR_NOMEM;
    }
    for (uint32_t u = 0; u < p->n; u++) fri_sa_graph_nb(&g, u, s->nbs + (size_t)u * s->k);
    fri_sa_graph_free(&g);
    *out = s;
    return FR_OK;
}

/* The index of v among u's neighbours, or -1. */
static long nb_index(const fr_sa_server *s, uint32_t u, uint32_t v) {
    return fri_sa_find(s->nbs + (size_t)u * s->k, s->k, v);
}

/* Whether u sent its shares to v (then u and v mask with each other, if both reached
 * stage 2). */
static bool sent(const fr_sa_server *s, uint32_t u, uint32_t v) {
    long j = nb_index(s, u, v);
    return j >= 0 && s->level[u] >= 2 && s->has_ct[(size_t)u * s->k + (size_t)j];
}

static fr_err recv_advertise(fr_sa_server *s, fri_rd *r, uint32_t u) {
    const uint8_t *pk;
    fr_err e = fri_rd_bytes(r, &pk, 2 * FRI_SA_KEY, "public keys");
    if (e || (e = fri_rd_end(r, "public keys"))) return e;
    memcpy(s->pks + (size_t)u * 2 * FRI_SA_KEY, pk, 2 * FRI_SA_KEY);
    return FR_OK;
}

static fr_err recv_shares(fr_sa_server *s, fri_rd *r, uint32_t u) {
    const uint8_t *commit;
    uint32_t cnt;
    fr_err e = fri_rd_bytes(r, &commit, FRI_SA_KEY, "commitment");
    if (e || (e = fri_rd_u32(r, &cnt, "count"))) return e;
    if (cnt > s->k || cnt < s->p.t)
        return fri_fail(FR_ERR_FORMAT, "secure aggregation shares of client %u: %u recipients, expected %u..%u", u, cnt,
                        s->p.t, s->k);
    if ((e = fri_rd_need_n(r, cnt, 4 + FRI_SA_CT, "shares"))) return e;
    fri_rd check = *r;
    long last = -1;
    for (uint32_t i = 0; i < cnt; i++) { /* every entry is checked before any is kept */
        uint32_t v;
        const uint8_t *ct;
        if ((e = fri_rd_u32(&check, &v, "recipient")) || (e = fri_rd_bytes(&check, &ct, FRI_SA_CT, "ciphertext")))
            return e;
        long j = v < s->p.n ? nb_index(s, u, v) : -1;
        if (j < 0 || j <= last || s->level[v] < 1)
            return fri_fail(FR_ERR_FORMAT, "secure aggregation shares of client %u: recipient %u is not a neighbour that "
                            "advertised keys, or is listed twice or out of order", u, v);
        last = j;
    }
    if ((e = fri_rd_end(&check, "shares"))) return e;
    for (uint32_t i = 0; i < cnt; i++) {
        uint32_t v;
        const uint8_t *ct;
        if ((e = fri_rd_u32(r, &v, "recipient")) || (e = fri_rd_bytes(r, &ct, FRI_SA_CT, "ciphertext"))) return e;
        size_t slot = (size_t)u * s->k + (size_t)nb_index(s, u, v);
        memcpy(s->cts + slot * FRI_SA_CT, ct, FRI_SA_CT);
        s->has_ct[slot] = 1;
    }
    memcpy(s->commit + (size_t)u * FRI_SA_KEY, commit, FRI_SA_KEY);
    return FR_OK;
}

/* The words of client u's masked input (p.len of them, little-endian) into *y. */
static fr_err masked_words(const fr_sa_server *s, fri_rd *r, uint32_t u, const uint8_t **y) {
    uint64_t len;
    fr_err e = fri_rd_u64(r, &len, "length");
    if (e) return e;
    if (len != s->p.len)
        return fri_fail(FR_ERR_FORMAT, "secure aggregation masked input of client %u: %llu words, expected %llu", u,
                        (unsigned long long)len, (unsigned long long)s->p.len);
    if ((e = fri_rd_bytes(r, y, (size_t)len * 8, "words")) || (e = fri_rd_end(r, "words"))) return e;
    return FR_OK;
}

/* acc += y (mod 2^64): the O(len) part of a masked input, which touches nothing else. */
static void add_words(fr_sa_server *s, const uint8_t *y) {
    for (uint64_t i = 0; i < s->p.len; i++) s->acc[i] += fri_get_u64(y + 8 * i);
}

/* The neighbours whose shares client w holds (they sent to w and w to them): the ones an
 * unmasking request names, with the share wanted: the seed of a survivor, the key of one
 * that dropped. */
static uint32_t request_of(const fr_sa_server *s, uint32_t w, uint32_t *ids, uint8_t *kinds) {
    uint32_t m = 0;
    const uint32_t *nb = s->nbs + (size_t)w * s->k;
    for (uint32_t j = 0; j < s->k; j++) {
        uint32_t u = nb[j];
        if (!sent(s, u, w) || !sent(s, w, u)) continue;
        ids[m] = u;
        kinds[m++] = s->level[u] >= 3 ? FRI_SA_KIND_SEED : FRI_SA_KIND_KEY;
    }
    return m;
}

static fr_err recv_answer(fr_sa_server *s, fri_rd *r, uint32_t w) {
    uint32_t ids[FR_SA_MAX_K], cnt;
    uint8_t kinds[FR_SA_MAX_K];
    uint32_t m = request_of(s, w, ids, kinds);
    fr_err e = fri_rd_u32(r, &cnt, "count");
    if (e) return e;
    if (cnt != m)
        return fri_fail(FR_ERR_FORMAT, "secure aggregation answer of client %u: %u shares, %u were asked", w, cnt, m);
    if ((e = fri_rd_need_n(r, cnt, FRI_SA_ANSWER_ENTRY, "shares"))) return e;
    fri_rd check = *r;
    for (uint32_t i = 0; i < cnt; i++) {
        uint32_t u;
        const uint8_t *h;
        if ((e = fri_rd_u32(&check, &u, "client id")) || (e = fri_rd_bytes(&check, &h, 2 + FRI_SA_KEY, "share")))
            return e;
        long x = u < s->p.n ? nb_index(s, u, w) + 1 : 0;
        if (u != ids[i] || h[0] != kinds[i] || h[1] != x)
            return fri_fail(FR_ERR_FORMAT, "secure aggregation answer of client %u: entry %u is (client %u, kind %u, x "
                            "%u), expected (client %u, kind %u, x %ld)", w, i, u, h[0], h[1], ids[i], kinds[i],
                            (long)nb_index(s, ids[i], w) + 1);
    }
    if ((e = fri_rd_end(&check, "shares"))) return e;
    if (!s->shares) {
        s->shares = fri_sa_secret_alloc((size_t)s->p.n * s->k * SLOT);
        if (!s->shares) return FR_ERR_NOMEM;
    }
    for (uint32_t i = 0; i < cnt; i++) {
        uint32_t u;
        const uint8_t *h;
        if ((e = fri_rd_u32(r, &u, "client id")) || (e = fri_rd_bytes(r, &h, 2 + FRI_SA_KEY, "share"))) return e;
        size_t slot = (size_t)u * s->k + (size_t)nb_index(s, u, w);
        memcpy(s->shares + slot * SLOT, h + 1, SLOT);
        s->has_share[slot] = 1;
    }
    return FR_OK;
}

/* Opens msg as the current stage's message of a client still at that stage (its sender
 * into *u, r at its body). Changes nothing. */
static fr_err open_stage_msg(const fr_sa_server *s, const uint8_t *msg, size_t n, fri_rd *r, uint32_t *u) {
    static const uint16_t types[4] = {FRI_SA_MSG_ADVERTISE, FRI_SA_MSG_SHARES, FRI_SA_MSG_MASKED, FRI_SA_MSG_ANSWER};
    static const char *const kinds[4] = {"public keys", "shares", "masked input", "unmasking answer"};
    if (s->stage > FR_SA_UNMASK)
        return fri_fail(FR_ERR_STATE, "secure aggregation server: a message after the session ended");
    fr_err e = fri_sa_open(r, msg, n, types[s->stage], &s->p, FRI_SA_ANY, FRI_SA_SERVER, u, kinds[s->stage]);
    if (e) return e;
    if (s->level[*u] != s->stage || s->arriving[*u])
        return fri_fail(FR_ERR_STATE, "secure aggregation server: %s from client %u, which %s", kinds[s->stage], *u,
                        s->level[*u] < s->stage ? "dropped out earlier" : "already sent it");
    return FR_OK;
}

fr_err fr_sa_server_receive(fr_sa_server *s, const uint8_t *msg, size_t n) {
    if (!s) return fri_fail(FR_ERR_INVALID, "fr_sa_server_receive: s is NULL");
    fri_rd r;
    uint32_t u;
    const uint8_t *y;
    fr_err e = open_stage_msg(s, msg, n, &r, &u);
    if (e) return e;
    switch (s->stage) {
    case FR_SA_ADVERTISE: e = recv_advertise(s, &r, u); break;
    case FR_SA_SHARE: e = recv_shares(s, &r, u); break;
    case FR_SA_MASK:
        if (!(e = masked_words(s, &r, u, &y))) {
            add_words(s, y);
            s->masked++;
        }
        break;
    default: e = recv_answer(s, &r, u); break;
    }
    if (!e) s->level[u]++;
    return e;
}

fr_err fr_sa_server_masked_begin(fr_sa_server *s, const uint8_t *msg, size_t n, uint32_t *id, const uint8_t **words) {
    if (!s || !id || !words) return fri_fail(FR_ERR_INVALID, "fr_sa_server_masked_begin: NULL argument");
    if (s->stage != FR_SA_MASK)
        return fri_fail(FR_ERR_STATE, "secure aggregation server: a masked input in stage %d, expected %d", s->stage,
                        FR_SA_MASK);
    fri_rd r;
    uint32_t u;
    const uint8_t *y;
    fr_err e = open_stage_msg(s, msg, n, &r, &u);
    if (e || (e = masked_words(s, &r, u, &y))) return e;
    s->arriving[u] = 1;
    s->n_arriving++;
    *id = u;
    *words = y;
    return FR_OK;
}

void fr_sa_server_masked_add(fr_sa_server *s, const uint8_t *words) {
    if (s && words) add_words(s, words);
}

fr_err fr_sa_server_masked_end(fr_sa_server *s, uint32_t id, bool added) {
    if (!s || id >= s->p.n || !s->arriving[id])
        return fri_fail(FR_ERR_STATE, "fr_sa_server_masked_end: client %u has no masked input begun", id);
    s->arriving[id] = 0;
    s->n_arriving--;
    if (added) {
        s->level[id]++;
        s->masked++;
    }
    return FR_OK;
}

fr_err fr_sa_server_close(fr_sa_server *s) {
    if (!s) return fri_fail(FR_ERR_INVALID, "fr_sa_server_close: s is NULL");
    if (s->stage > FR_SA_MASK)
        return fri_fail(FR_ERR_STATE, "secure aggregation server: close in stage %d (finish ends the last)", s->stage);
    if (s->n_arriving)
        return fri_fail(FR_ERR_STATE, "secure aggregation server: close while %u masked input%s being added (end "
                        "%s first)", s->n_arriving, s->n_arriving == 1 ? " is" : "s are", s->n_arriving == 1 ? "it" : "them");
    uint32_t in = 0;
    for (uint32_t u = 0; u < s->p.n; u++) in += s->level[u] > s->stage;
    if (in == 0) {
        s->stage = FR_SA_FAILED;
        return fri_fail(FR_ERR_EMPTY, "secure aggregation server: no client is left");
    }
    s->stage++;
    return FR_OK;
}

bool fr_sa_server_has(const fr_sa_server *s, uint32_t id) {
    return s && id < s->p.n && s->stage <= FR_SA_UNMASK && s->level[id] >= s->stage;
}

fr_err fr_sa_server_message(fr_sa_server *s, uint32_t w, uint8_t **out, size_t *out_n) {
    if (out) *out = NULL;
    if (out_n) *out_n = 0;
    if (!s || !out || !out_n) return fri_fail(FR_ERR_INVALID, "fr_sa_server_message: NULL argument");
    if (s->stage < FR_SA_SHARE || s->stage > FR_SA_UNMASK)
        return fri_fail(FR_ERR_STATE, "secure aggregation server: no message for clients in stage %d", s->stage);
    if (w >= s->p.n || s->level[w] < s->stage)
        return fri_fail(FR_ERR_STATE, "secure aggregation server: client %u is not in the session", w);
    fri_buf b = {0};
    const uint32_t *nb = s->nbs + (size_t)w * s->k;
    if (s->stage == FR_SA_SHARE) {
        fri_sa_begin(&b, FRI_SA_MSG_KEYS, s->p.session, FRI_SA_SERVER, w);
        uint32_t m = 0;
        for (uint32_t j = 0; j < s->k; j++) m += s->level[nb[j]] >= 1;
        fri_buf_u32(&b, m);
        for (uint32_t j = 0; j < s->k; j++) {
            if (s->level[nb[j]] < 1) continue;
            fri_buf_u32(&b, nb[j]);
            fri_buf_put(&b, s->pks + (size_t)nb[j] * 2 * FRI_SA_KEY, 2 * FRI_SA_KEY);
        }
    } else if (s->stage == FR_SA_MASK) {
        fri_sa_begin(&b, FRI_SA_MSG_FORWARD, s->p.session, FRI_SA_SERVER, w);
        uint32_t m = 0;
        for (uint32_t j = 0; j < s->k; j++) m += sent(s, nb[j], w);
        fri_buf_u32(&b, m);
        for (uint32_t j = 0; j < s->k; j++) {
            uint32_t u = nb[j];
            if (!sent(s, u, w)) continue;
            fri_buf_u32(&b, u);
            fri_buf_put(&b, s->cts + ((size_t)u * s->k + (size_t)nb_index(s, u, w)) * FRI_SA_CT, FRI_SA_CT);
        }
    } else {
        uint32_t ids[FR_SA_MAX_K];
        uint8_t kinds[FR_SA_MAX_K];
        uint32_t m = request_of(s, w, ids, kinds);
        fri_sa_begin(&b, FRI_SA_MSG_REQUEST, s->p.session, FRI_SA_SERVER, w);
        fri_buf_u32(&b, m);
        for (uint32_t i = 0; i < m; i++) {
            fri_buf_u32(&b, ids[i]);
            fri_buf_put(&b, &kinds[i], 1);
        }
    }
    return fri_sa_end(&b, out, out_n);
}

/* Rebuilds secret half `half` (0 seed, 1 key) of client u from its first t shares, or
 * FR_ERR_EMPTY when there are fewer. */
static fr_err rebuild(fr_sa_server *s, uint32_t u, int half, uint8_t *xs, uint8_t *buf, uint8_t out[32]) {
    uint32_t m = 0;
    for (uint32_t j = 0; j < s->k && m < s->p.t; j++) {
        size_t slot = (size_t)u * s->k + j;
        if (!s->has_share[slot]) continue;
        xs[m] = s->shares[slot * SLOT];
        memcpy(buf + (size_t)m * FRI_SA_KEY, s->shares + slot * SLOT + 1, FRI_SA_KEY);
        m++;
    }
    if (m < s->p.t)
        return fri_fail(FR_ERR_EMPTY, "secure aggregation aborted: the %s of client %u has %u shares, the threshold is "
                        "%u", half ? "mask key" : "self-mask seed", u, m, s->p.t);
    return fri_sa_join(m, xs, buf, FRI_SA_KEY, out);
}

/* Whether the dropped client u masked with some survivor, so its key must be rebuilt. */
static bool needs_key(const fr_sa_server *s, uint32_t u) {
    if (s->level[u] != 2) return false;
    const uint32_t *nb = s->nbs + (size_t)u * s->k;
    for (uint32_t j = 0; j < s->k; j++)
        if (s->level[nb[j]] >= 3 && sent(s, u, nb[j]) && sent(s, nb[j], u)) return true;
    return false;
}

static fr_err count_shares(const fr_sa_server *s, uint32_t u, const char *what) {
    uint32_t m = 0;
    for (uint32_t j = 0; j < s->k; j++) m += s->has_share[(size_t)u * s->k + j];
    if (m < s->p.t)
        return fri_fail(FR_ERR_EMPTY, "secure aggregation aborted: the %s of client %u has %u shares, the threshold is "
                        "%u", what, u, m, s->p.t);
    return FR_OK;
}

/* The masks still in the sum: one ChaCha20 expansion each (a seed, its purpose, its sign). */
typedef struct prg_job {
    uint8_t seed[FRI_SA_KEY];
    uint8_t purpose;
    int8_t sign;
} prg_job;

typedef struct prg_range {
    uint64_t *acc;
    const prg_job *jobs;
    uint32_t n_jobs;
    uint64_t from, to, session;
} prg_range;

static void *prg_range_main(void *arg) {
    const prg_range *r = arg;
    for (uint32_t i = 0; i < r->n_jobs; i++)
        fri_sa_prg_add_range(r->acc, r->from, r->to, r->jobs[i].seed, r->session, r->jobs[i].purpose, r->jobs[i].sign);
    return NULL;
}

/* acc += every job's expansion. The words are split in two ranges, the second on a thread
 * of its own (when the vector is long enough for it to pay): each word's additions are the
 * same ones modulo 2^64 in any order, so the sum is the one-thread sum bit for bit. */
static void prg_apply(uint64_t *acc, uint64_t len, const prg_job *jobs, uint32_t n_jobs, uint64_t session) {
    enum { SPLIT_MIN = 8 * FRI_SA_PRG_ALIGN };
    uint64_t half = len / 2 / FRI_SA_PRG_ALIGN * FRI_SA_PRG_ALIGN;
    prg_range a = {acc, jobs, n_jobs, 0, len, session}, b = a;
    pthread_t th;
    bool two = n_jobs > 1 && len >= SPLIT_MIN && fr_cpu_count() > 1;
    if (two) {
        a.to = half;
        b.from = half;
        two = pthread_create(&th, NULL, prg_range_main, &b) == 0;
        if (!two) a.to = len; /* no thread: all on this one */
    }
    prg_range_main(&a);
    if (two) pthread_join(th, NULL);
}

static fr_err do_finish(fr_sa_server *s) {
    fr_err e = FR_OK;
    if (s->masked == 0) return fri_fail(FR_ERR_EMPTY, "secure aggregation aborted: no masked input arrived");
    if (!s->shares && !(s->shares = fri_sa_secret_alloc((size_t)s->p.n * s->k * SLOT))) return FR_ERR_NOMEM;
    /* every needed secret has t shares before anything is rebuilt */
    for (uint32_t u = 0; u < s->p.n && !e; u++) {
        if (s->level[u] >= 3) e = count_shares(s, u, "self-mask seed");
        else if (needs_key(s, u)) e = count_shares(s, u, "mask key");
    }
    if (e) return e;
    /* at most one seed per survivor and k per dropped client */
    uint32_t max_jobs = 0;
    for (uint32_t u = 0; u < s->p.n; u++) max_jobs += s->level[u] >= 3 ? 1 : needs_key(s, u) ? s->k : 0;
    uint8_t xs[FR_SA_MAX_K];
    uint8_t *tmp = fri_sa_secret_alloc((size_t)s->p.t * FRI_SA_KEY + 2 * FRI_SA_KEY);
    prg_job *jobs = max_jobs ? fri_sa_secret_alloc((size_t)max_jobs * sizeof *jobs) : NULL;
    if (!tmp || (max_jobs && !jobs)) {
        if (tmp) sodium_free(tmp);
        if (jobs) sodium_free(jobs);
        return FR_ERR_NOMEM;
    }
    uint32_t n_jobs = 0;
    uint8_t *buf = tmp, *secret = tmp + (size_t)s->p.t * FRI_SA_KEY, *seed = secret + FRI_SA_KEY;
    /* every secret rebuilt and checked first, then the expansions (none if one fails) */
    for (uint32_t u = 0; u < s->p.n && !e; u++) {
        if (s->level[u] >= 3) { /* survivor: remove PRG(b_u) */
            uint8_t commit[FRI_SA_KEY];
            if ((e = rebuild(s, u, 0, xs, buf, secret))) break;
            fri_sa_commit(commit, secret, s->p.session);
            if (sodium_memcmp(commit, s->commit + (size_t)u * FRI_SA_KEY, FRI_SA_KEY) != 0) {
                e = fri_fail(FR_ERR_FORMAT, "secure aggregation aborted: the rebuilt self-mask seed of client %u does "
                             "not match its commitment (a share was altered)", u);
                break;
            }
            memcpy(jobs[n_jobs].seed, secret, FRI_SA_KEY);
            jobs[n_jobs].purpose = FRI_SA_SELF;
            jobs[n_jobs++].sign = -1;
        } else if (needs_key(s, u)) { /* dropped after sharing: remove its masks with survivors */
            uint8_t pk[FRI_SA_KEY];
            const uint8_t *upk = s->pks + (size_t)u * 2 * FRI_SA_KEY + FRI_SA_KEY;
            if ((e = rebuild(s, u, 1, xs, buf, secret))) break;
            if (crypto_scalarmult_base(pk, secret) != 0 || sodium_memcmp(pk, upk, FRI_SA_KEY) != 0) {
                e = fri_fail(FR_ERR_FORMAT, "secure aggregation aborted: the rebuilt mask key of client %u does not "
                             "match its public key (a share was altered)", u);
                break;
            }
            const uint32_t *nb = s->nbs + (size_t)u * s->k;
            for (uint32_t j = 0; j < s->k && !e; j++) {
                uint32_t v = nb[j];
                if (s->level[v] < 3 || !sent(s, u, v) || !sent(s, v, u)) continue;
                if ((e = fri_sa_agree(seed, secret, upk, s->pks + (size_t)v * 2 * FRI_SA_KEY + FRI_SA_KEY,
                                      s->p.session, FRI_SA_PAIR)))
                    break;
                /* v added +PRG when u > v, −PRG when u < v */
                memcpy(jobs[n_jobs].seed, seed, FRI_SA_KEY);
                jobs[n_jobs].purpose = FRI_SA_PAIR;
                jobs[n_jobs++].sign = u > v ? -1 : +1;
            }
        }
    }
    if (!e) prg_apply(s->acc, s->p.len, jobs, n_jobs, s->p.session);
    sodium_free(tmp);
    if (jobs) sodium_free(jobs);
    return e;
}

bool fr_sa_server_can_finish(const fr_sa_server *s) {
    if (!s || s->stage != FR_SA_UNMASK || s->masked == 0) return false;
    for (uint32_t u = 0; u < s->p.n; u++) {
        if (s->level[u] < 3 && !needs_key(s, u)) continue;
        uint32_t m = 0;
        for (uint32_t j = 0; j < s->k && m < s->p.t; j++) m += s->has_share[(size_t)u * s->k + j];
        if (m < s->p.t) return false;
    }
    return true;
}

fr_err fr_sa_server_finish(fr_sa_server *s, int64_t *sum, uint32_t *survivors) {
    if (!s || !sum) return fri_fail(FR_ERR_INVALID, "fr_sa_server_finish: NULL argument");
    if (s->stage != FR_SA_UNMASK)
        return fri_fail(FR_ERR_STATE, "secure aggregation server: finish in stage %d, expected %d", s->stage,
                        FR_SA_UNMASK);
    fr_err e = do_finish(s);
    if (s->shares) {
        sodium_free(s->shares);
        s->shares = NULL;
    }
    if (e) {
        s->stage = FR_SA_FAILED;
        return e;
    }
    for (uint64_t i = 0; i < s->p.len; i++) { /* two's complement, without implementation-defined casts */
        uint64_t v = s->acc[i];
        sum[i] = v <= (uint64_t)INT64_MAX ? (int64_t)v : -(int64_t)(~v) - 1;
    }
    if (survivors) *survivors = s->masked;
    s->stage = FR_SA_DONE;
    return FR_OK;
}
