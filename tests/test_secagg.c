/* Secure aggregation (privacy.h): Shamir sharing against an independent GF(2^8)
 * interpolation, the mask generator against one ChaCha20 call, the graph, the parameter
 * choice against a direct binomial sum; whole sessions whose unmasked sum equals the
 * plain sum exactly, under every dropout pattern of a small federation (checked against
 * a set model of who can finish, written here independently of the server) and random
 * ones of a sparse graph; fewer than t shares abort with the sum untouched; a masked
 * upload is uniform (chi-square); a server asking for both shares of one client, for a
 * non-neighbour or leaving one out is refused; damaged and truncated messages are
 * refused cleanly. */
#include <criterion/criterion.h>
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "fedrec/privacy.h"
#include "privacy/secagg_internal.h"

#define MAXN 64

/* ------------------------------------------------------------------ helpers */

static fr_sa_params params(uint32_t n, uint32_t k, uint32_t t, uint64_t len, uint64_t seed) {
    fr_sa_params p = {0};
    p.n = n;
    p.k = k;
    p.t = t;
    p.len = len;
    p.session = 77;
    p.graph_seed = 5;
    p.test_seed = seed;
    return p;
}

static uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* Random vectors in [-bound, bound], with the extremes mixed in. */
static int64_t **vectors(const fr_sa_params *p, uint64_t seed) {
    uint64_t bound = p->bound ? p->bound : (uint64_t)INT64_MAX / p->n, st = seed;
    int64_t **x = malloc(p->n * sizeof *x);
    for (uint32_t u = 0; u < p->n; u++) {
        x[u] = malloc(p->len * sizeof **x);
        for (uint64_t i = 0; i < p->len; i++) {
            uint64_t r = splitmix(&st);
            switch (r % 4) {
            case 0: x[u][i] = (int64_t)bound; break;
            case 1: x[u][i] = -(int64_t)bound; break;
            default: x[u][i] = (int64_t)(splitmix(&st) % (2 * bound + 1)) - (int64_t)bound; break;
            }
        }
    }
    return x;
}
static void free_vectors(const fr_sa_params *p, int64_t **x) {
    for (uint32_t u = 0; u < p->n; u++) free(x[u]);
    free(x);
}

/* A session in process. stop[u]: 0 takes part to the end, 1 never advertises, 2 stops
 * before sending its shares, 3 before its masked input, 4 before its unmasking answer.
 * in_m[u] gets whether its masked input was accepted. The error of the server (a close
 * or the finish). Every message a client makes must be accepted by the server. */
static fr_err run(const fr_sa_params *p, const uint8_t *stop, int64_t *const *x, int64_t *sum, uint32_t *surv,
                  bool *in_m) {
    fr_sa_server *s = NULL;
    fr_sa_client *c[MAXN] = {0};
    cr_assert_eq(fr_sa_server_create(&s, p), FR_OK, "%s", fr_errmsg());
    for (uint32_t u = 0; u < p->n; u++) {
        cr_assert_eq(fr_sa_client_create(&c[u], p, u), FR_OK, "%s", fr_errmsg());
        if (in_m) in_m[u] = false;
    }
    fr_err e = FR_OK;
    for (int stage = 0; stage < 4 && !e; stage++) {
        for (uint32_t u = 0; u < p->n; u++) {
            if (stop[u] == stage + 1 || fr_sa_client_stage(c[u]) != (fr_sa_stage)stage) continue;
            if (stage > 0 && !fr_sa_server_has(s, u)) continue;
            uint8_t *in = NULL, *out = NULL;
            size_t in_n = 0, out_n = 0;
            if (stage > 0) cr_assert_eq(fr_sa_server_message(s, u, &in, &in_n), FR_OK, "%s", fr_errmsg());
            fr_err ce;
            switch (stage) {
            case 0: ce = fr_sa_client_advertise(c[u], &out, &out_n); break;
            case 1: ce = fr_sa_client_share(c[u], in, in_n, &out, &out_n); break;
            case 2: ce = fr_sa_client_mask(c[u], x[u], in, in_n, &out, &out_n); break;
            default: ce = fr_sa_client_unmask(c[u], in, in_n, &out, &out_n); break;
            }
            fr_sa_bytes_free(in, in_n);
            if (ce) {
                cr_assert_eq(ce, FR_ERR_EMPTY, "client %u stage %d: %s", u, stage, fr_errmsg());
                cr_assert_null(out);
                cr_assert_eq(fr_sa_client_stage(c[u]), FR_SA_FAILED);
                continue;
            }
            cr_assert_eq(fr_sa_server_receive(s, out, out_n), FR_OK, "client %u stage %d: %s", u, stage, fr_errmsg());
            if (stage == 2 && in_m) in_m[u] = true;
            fr_sa_bytes_free(out, out_n);
        }
        if (stage < 3) e = fr_sa_server_close(s);
    }
    if (!e) e = fr_sa_server_finish(s, sum, surv);
    for (uint32_t u = 0; u < p->n; u++) fr_sa_client_free(c[u]);
    fr_sa_server_free(s);
    return e;
}

static uint32_t count_in(const uint32_t *nb, uint32_t k, const bool *set) {
    uint32_t m = 0;
    for (uint32_t j = 0; j < k; j++) m += set[nb[j]];
    return m;
}

/* Who can finish, from the rules of the protocol as sets: returns whether the session
 * should succeed, and the survivors in m[]. */
static bool predict(const fr_sa_params *p, const uint8_t *stop, bool *m) {
    uint32_t n = p->n, k = p->k, t = p->t;
    static uint32_t nb[MAXN][MAXN];
    bool a[MAXN], s2[MAXN], ans[MAXN];
    for (uint32_t u = 0; u < n; u++) cr_assert_eq(fr_sa_neighbours(p, u, nb[u]), FR_OK);
    uint32_t na = 0, ns = 0, nm = 0;
    for (uint32_t u = 0; u < n; u++) na += a[u] = stop[u] != 1;
    for (uint32_t u = 0; u < n; u++) ns += s2[u] = a[u] && stop[u] != 2 && count_in(nb[u], k, a) >= t;
    for (uint32_t u = 0; u < n; u++) nm += m[u] = s2[u] && stop[u] != 3 && count_in(nb[u], k, s2) >= t;
    for (uint32_t u = 0; u < n; u++) ans[u] = m[u] && stop[u] != 4;
    if (!na || !ns || !nm) return false;
    for (uint32_t u = 0; u < n; u++) {
        bool need = m[u] || (s2[u] && count_in(nb[u], k, m) > 0);
        if (!need) continue;
        uint32_t holders = 0;
        for (uint32_t j = 0; j < k; j++) holders += s2[nb[u][j]] && ans[nb[u][j]];
        if (holders < t) return false;
    }
    return true;
}

/* Σ x_u over the set, modulo 2^64, as int64 (the values fit: the bound). */
static void plain_sum(const fr_sa_params *p, int64_t *const *x, const bool *set, int64_t *out) {
    for (uint64_t i = 0; i < p->len; i++) {
        __extension__ __int128 acc = 0;
        for (uint32_t u = 0; u < p->n; u++)
            if (set[u]) acc += x[u][i];
        cr_assert(acc >= INT64_MIN && acc <= INT64_MAX);
        out[i] = (int64_t)acc;
    }
}

/* ------------------------------------------------------------------ building blocks */

/* GF(2^8) with the polynomial x^8 + x^4 + x^3 + x^2 + 1 (0x11d), as libgfshare. */
static uint8_t gf_mul(uint8_t a, uint8_t b) {
    uint8_t r = 0;
    while (b) {
        if (b & 1) r ^= a;
        a = (uint8_t)((a << 1) ^ (a & 0x80 ? 0x1d : 0));
        b >>= 1;
    }
    return r;
}
static uint8_t gf_inv(uint8_t a) {
    for (int b = 1; b < 256; b++)
        if (gf_mul(a, (uint8_t)b) == 1) return (uint8_t)b;
    return 0;
}

Test(secagg, shamir_against_independent_interpolation) {
    cr_assert_eq(fri_sodium_init(), FR_OK);
    fr_sa_params p = params(8, 7, 4, 1, 3);
    fri_sa_rng r;
    fri_sa_rng_init(&r, &p, 1);
    uint8_t secret[64], shares[7 * 64], xs[7] = {1, 2, 3, 4, 5, 6, 7}, got[32];
    for (int i = 0; i < 64; i++) secret[i] = (uint8_t)(i * 37 + 11);
    cr_assert_eq(fri_sa_split(&r, secret, 64, 7, 4, xs, shares), FR_OK);
    /* every 4-subset rebuilds both halves, by the library and by Lagrange at 0 here */
    int subsets = 0;
    for (int mask = 0; mask < 128; mask++) {
        if (__builtin_popcount(mask) != 4) continue;
        uint8_t sx[4], sh[4 * 32], sk[4 * 32];
        int m = 0;
        for (int i = 0; i < 7; i++)
            if (mask >> i & 1) {
                sx[m] = xs[i];
                memcpy(sh + 32 * m, shares + 64 * i, 32);
                memcpy(sk + 32 * m, shares + 64 * i + 32, 32);
                m++;
            }
        cr_assert_eq(fri_sa_join(4, sx, sh, 32, got), FR_OK);
        cr_assert_arr_eq(got, secret, 32);
        cr_assert_eq(fri_sa_join(4, sx, sk, 32, got), FR_OK);
        cr_assert_arr_eq(got, secret + 32, 32);
        for (int byte = 0; byte < 32; byte++) {
            uint8_t acc = 0;
            for (int i = 0; i < 4; i++) {
                uint8_t l = 1;
                for (int j = 0; j < 4; j++)
                    if (j != i) l = gf_mul(l, gf_mul(sx[j], gf_inv(sx[j] ^ sx[i])));
                acc ^= gf_mul(sh[32 * i + byte], l);
            }
            cr_assert_eq(acc, secret[byte]);
        }
        subsets++;
    }
    cr_assert_eq(subsets, 35);
    /* three shares do not give the secret */
    uint8_t sh3[3 * 32];
    for (int i = 0; i < 3; i++) memcpy(sh3 + 32 * i, shares + 64 * i, 32);
    cr_assert_eq(fri_sa_join(3, xs, sh3, 32, got), FR_OK);
    cr_assert(memcmp(got, secret, 32) != 0);
}

Test(secagg, prg_is_one_chacha20_stream) {
    cr_assert_eq(fri_sodium_init(), FR_OK);
    uint8_t seed[32];
    for (int i = 0; i < 32; i++) seed[i] = (uint8_t)(200 - i);
    const uint64_t lens[] = {1, 7, 512, 513, 3000};
    for (size_t c = 0; c < sizeof lens / sizeof lens[0]; c++) {
        uint64_t len = lens[c];
        uint8_t *ks = malloc(len * 8), nonce[12] = {0};
        fri_put_u64(nonce, 99);
        nonce[8] = FRI_SA_PAIR;
        crypto_stream_chacha20_ietf(ks, len * 8, nonce, seed);
        uint64_t *y = calloc(len, 8);
        for (uint64_t i = 0; i < len; i++) y[i] = i * 3;
        fri_sa_prg_add(y, len, seed, 99, FRI_SA_PAIR, +1);
        for (uint64_t i = 0; i < len; i++) cr_assert_eq(y[i], i * 3 + fri_get_u64(ks + 8 * i), "len %lu word %lu", len, i);
        fri_sa_prg_add(y, len, seed, 99, FRI_SA_PAIR, -1);
        for (uint64_t i = 0; i < len; i++) cr_assert_eq(y[i], i * 3);
        free(ks);
        free(y);
    }
}

/* Ranges of the stream added separately (as the server's recovery threads do) give the
 * words of one libsodium call, whatever the split. */
Test(secagg, prg_ranges_are_the_stream_split) {
    cr_assert_eq(fri_sodium_init(), FR_OK);
    uint8_t seed[32];
    for (int i = 0; i < 32; i++) seed[i] = (uint8_t)(7 * i + 1);
    const uint64_t len = 5 * FRI_SA_PRG_ALIGN + 77;
    uint8_t *ks = malloc(len * 8), nonce[12] = {0};
    fri_put_u64(nonce, 5);
    nonce[8] = FRI_SA_SELF;
    crypto_stream_chacha20_ietf(ks, len * 8, nonce, seed);
    const uint64_t cuts[] = {0, FRI_SA_PRG_ALIGN, 2 * FRI_SA_PRG_ALIGN, 5 * FRI_SA_PRG_ALIGN, len};
    uint64_t *y = calloc(len, 8);
    for (size_t c = 0; c + 1 < sizeof cuts / sizeof cuts[0]; c++)
        fri_sa_prg_add_range(y, cuts[c], cuts[c + 1], seed, 5, FRI_SA_SELF, -1);
    for (uint64_t i = 0; i < len; i++) cr_assert_eq(y[i], (uint64_t)0 - fri_get_u64(ks + 8 * i), "word %lu", i);
    free(ks);
    free(y);
}

Test(secagg, graph_is_symmetric_and_regular) {
    const uint32_t cases[][2] = {{10, 4}, {31, 8}, {9, 8}, {7, 6}, {5, 4}, {40, 2}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        fr_sa_params p = params(cases[c][0], cases[c][1], cases[c][1] / 2 + 1, 1, 0);
        static uint32_t nb[MAXN][MAXN];
        for (uint32_t u = 0; u < p.n; u++) cr_assert_eq(fr_sa_neighbours(&p, u, nb[u]), FR_OK, "%s", fr_errmsg());
        for (uint32_t u = 0; u < p.n; u++)
            for (uint32_t j = 0; j < p.k; j++) {
                uint32_t v = nb[u][j];
                cr_assert_neq(v, u);
                cr_assert_lt(v, p.n);
                if (j) cr_assert_gt(v, nb[u][j - 1]); /* ascending, distinct */
                bool back = false;
                for (uint32_t i = 0; i < p.k; i++) back |= nb[v][i] == u;
                cr_assert(back, "n %u k %u: %u→%u but not back", p.n, p.k, u, v);
            }
    }
}

/* P[Binomial(k, q) >= m] by a direct sum. */
static double tail(uint32_t k, double q, uint32_t m) {
    double s = 0;
    for (uint32_t i = m; i <= k; i++) {
        double c = 1;
        for (uint32_t j = 0; j < i; j++) c = c * (k - j) / (j + 1);
        s += c * pow(q, i) * pow(1 - q, k - i);
    }
    return s;
}

Test(secagg, params_choice) {
    fr_sa_params p;
    const struct { uint32_t n; double q; uint32_t sigma; } cases[] = {{1000, 0.1, 40}, {100000, 0.05, 40}, {500, 0.2, 30},
                                                                    {100, 0.1, 40}, {10, 0.1, 40}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        cr_assert_eq(fr_sa_params_choose(&p, cases[c].n, 10, cases[c].q, cases[c].sigma), FR_OK, "%s", fr_errmsg());
        cr_assert_eq(fr_sa_params_check(&p), FR_OK);
        double target = pow(2.0, -(double)cases[c].sigma) / cases[c].n;
        if (p.k == p.n - 1) { /* no smaller even k would do */
            for (uint32_t k = 2; k < p.n - 1; k += 2) cr_assert_gt(tail(k, cases[c].q, k - (k / 2 + 1) + 1), target);
            cr_assert_eq(p.t, (p.n - 1) / 2 + 1);
            continue;
        }
        cr_assert_eq(p.k % 2, 0);
        cr_assert_eq(p.t, p.k / 2 + 1);
        cr_assert_leq(tail(p.k, cases[c].q, p.k - p.t + 1), target * (1 + 1e-9), "n %u k %u", p.n, p.k);
        cr_assert_gt(tail(p.k - 2, cases[c].q, p.k - 2 - p.k / 2 + 1), target, "n %u k %u", p.n, p.k);
    }
    /* correctness (eta) and security (sigma) apart: both hold at k, one fails at k - 2;
     * n 100, 10% dropout, sigma 40, eta 30 gives k 46, t 24 (by hand: 100 P[Bin(46, 0.1) >= 23]
     * = 2^-30.2 and 100 * 0.1^23 = 2^-69.8; at k 44 the first is 2^-28.7) */
    const struct { uint32_t n; double q; uint32_t sigma, eta; } split[] = {
        {100, 0.1, 40, 30}, {1000, 0.05, 40, 20}, {100000, 0.1, 60, 20}, {500, 0.2, 40, 40}};
    for (size_t c = 0; c < sizeof split / sizeof split[0]; c++) {
        cr_assert_eq(fr_sa_params_choose_split(&p, split[c].n, 10, split[c].q, split[c].sigma, split[c].eta), FR_OK,
                     "%s", fr_errmsg());
        double corr = pow(2.0, -(double)split[c].eta) / split[c].n, sec = pow(2.0, -(double)split[c].sigma) / split[c].n;
        cr_assert_eq(p.t, p.k / 2 + 1);
        cr_assert_leq(tail(p.k, split[c].q, p.k - p.t + 1), corr * (1 + 1e-9), "n %u k %u", p.n, p.k);
        cr_assert_leq(pow(split[c].q, p.k / 2), sec * (1 + 1e-9), "n %u k %u", p.n, p.k);
        uint32_t k2 = p.k - 2;
        cr_assert(tail(k2, split[c].q, k2 - (k2 / 2 + 1) + 1) > corr || pow(split[c].q, k2 / 2) > sec, "n %u k %u",
                  p.n, p.k);
        fr_sa_params same;
        if (split[c].sigma == split[c].eta) { /* eta = sigma is fr_sa_params_choose */
            cr_assert_eq(fr_sa_params_choose(&same, split[c].n, 10, split[c].q, split[c].sigma), FR_OK);
            cr_assert_eq(same.k, p.k);
        }
    }
    cr_assert_eq(fr_sa_params_choose_split(&p, 100, 10, 0.1, 40, 30), FR_OK);
    cr_assert(p.k == 46 && p.t == 24, "k %u t %u", p.k, p.t);
    cr_assert_eq(fr_sa_params_choose_split(&p, 100, 10, 0.1, 40, 0), FR_ERR_INVALID);
    cr_assert_eq(fr_sa_params_choose(&p, 1000, 10, 0.6, 40), FR_ERR_INVALID);
    fr_sa_params bad = params(10, 5, 3, 4, 0);
    cr_assert_eq(fr_sa_params_check(&bad), FR_ERR_INVALID); /* odd k below n-1 */
    bad = params(10, 4, 2, 4, 0);
    cr_assert_eq(fr_sa_params_check(&bad), FR_ERR_INVALID); /* t <= k/2 */
    bad = params(10, 4, 3, 4, 0);
    bad.bound = (uint64_t)INT64_MAX / 10 + 1;
    cr_assert_eq(fr_sa_params_check(&bad), FR_ERR_INVALID); /* no headroom */
    bad = params(300, 299, 150, 4, 0);
    cr_assert_eq(fr_sa_params_check(&bad), FR_ERR_INVALID); /* more neighbours than GF(2^8) has x-coordinates */
    cr_assert(strstr(fr_errmsg(), "at most 255"), "%s", fr_errmsg());
    bad = params(256, 255, 128, 4, 0);
    cr_assert_eq(fr_sa_params_check(&bad), FR_OK); /* every pair of 256 clients: the largest SecAgg */
    cr_assert_eq(fr_sa_params_choose(&p, 100000, 10, 0.45, 40), FR_ERR_RANGE); /* no k <= 255 tolerates 45% */
    cr_assert_eq(fr_sa_params_choose(&p, 1000, 10, 0.1, 0), FR_ERR_INVALID);
    uint32_t nb[4];
    bad = params(10, 4, 3, 4, 0);
    cr_assert_eq(fr_sa_neighbours(&bad, 10, nb), FR_ERR_INVALID);
}

/* ------------------------------------------------------------------ sessions */

Test(secagg, exact_sum_with_extremes) {
    const uint32_t cases[][3] = {{2, 1, 1}, {5, 4, 3}, {12, 11, 6}, {20, 6, 4}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        fr_sa_params p = params(cases[c][0], cases[c][1], cases[c][2], 1000, 7 + c);
        int64_t **x = vectors(&p, 100 + c), *sum = malloc(p.len * 8), *want = malloc(p.len * 8);
        uint8_t stop[MAXN] = {0};
        bool all[MAXN];
        uint32_t surv = 0;
        for (uint32_t u = 0; u < p.n; u++) all[u] = true;
        /* word 0: every client at +bound; word 1: every client at -bound */
        for (uint32_t u = 0; u < p.n; u++) x[u][0] = (int64_t)(INT64_MAX / p.n), x[u][1] = -(int64_t)(INT64_MAX / p.n);
        cr_assert_eq(run(&p, stop, x, sum, &surv, NULL), FR_OK, "%s", fr_errmsg());
        plain_sum(&p, x, all, want);
        cr_assert_eq(surv, p.n);
        cr_assert_arr_eq(sum, want, p.len * 8);
        cr_assert_eq(sum[0], (int64_t)(INT64_MAX / p.n) * p.n);
        free_vectors(&p, x);
        free(sum);
        free(want);
    }
}

/* The masked inputs taken in three steps (fr_sa_server_masked_begin, _add, _end), the
 * adds in another order than the begins: the sum is the plain one bit for bit. While an
 * input is arriving its client's message is refused again and the stage does not close;
 * an input ended without its add leaves the client as if it had not sent it (it may send
 * it then, or drop out). */
Test(secagg, masked_inputs_in_three_steps) {
    fr_sa_params p = params(6, 5, 3, 40, 11);
    int64_t **x = vectors(&p, 12), *sum = malloc(p.len * 8), *want = malloc(p.len * 8);
    fr_sa_server *s = NULL;
    fr_sa_client *c[6] = {0};
    cr_assert_eq(fr_sa_server_create(&s, &p), FR_OK, "%s", fr_errmsg());
    for (uint32_t u = 0; u < p.n; u++) cr_assert_eq(fr_sa_client_create(&c[u], &p, u), FR_OK);
    uint8_t *msg[6] = {0};
    size_t msg_n[6] = {0};
    for (int stage = 0; stage < 4; stage++) {
        for (uint32_t u = 0; u < p.n; u++) {
            if (!fr_sa_server_has(s, u)) continue;
            uint8_t *in = NULL, *out = NULL;
            size_t in_n = 0, out_n = 0;
            if (stage > 0) cr_assert_eq(fr_sa_server_message(s, u, &in, &in_n), FR_OK, "%s", fr_errmsg());
            switch (stage) {
            case 0: cr_assert_eq(fr_sa_client_advertise(c[u], &out, &out_n), FR_OK); break;
            case 1: cr_assert_eq(fr_sa_client_share(c[u], in, in_n, &out, &out_n), FR_OK); break;
            case 2: cr_assert_eq(fr_sa_client_mask(c[u], x[u], in, in_n, &out, &out_n), FR_OK); break;
            default: cr_assert_eq(fr_sa_client_unmask(c[u], in, in_n, &out, &out_n), FR_OK, "%s", fr_errmsg()); break;
            }
            fr_sa_bytes_free(in, in_n);
            if (stage == 2) { /* kept for the steps below */
                msg[u] = out;
                msg_n[u] = out_n;
                continue;
            }
            if (stage == 1) { /* no masked input before its stage */
                uint32_t id = 99;
                const uint8_t *w = NULL;
                cr_assert_eq(fr_sa_server_masked_begin(s, out, out_n, &id, &w), FR_ERR_STATE);
                cr_assert_eq(id, 99);
            }
            cr_assert_eq(fr_sa_server_receive(s, out, out_n), FR_OK, "%s", fr_errmsg());
            fr_sa_bytes_free(out, out_n);
        }
        if (stage == 2) {
            uint32_t id[6];
            const uint8_t *w[6];
            for (uint32_t u = 0; u < p.n; u++) {
                cr_assert_eq(fr_sa_server_masked_begin(s, msg[u], msg_n[u], &id[u], &w[u]), FR_OK, "%s", fr_errmsg());
                cr_assert_eq(id[u], u);
                cr_assert(w[u] > msg[u] && w[u] + p.len * 8 == msg[u] + msg_n[u]);
            }
            /* arriving: a second message of a client and the close are refused, nothing changes */
            uint32_t id2 = 99;
            const uint8_t *w2 = NULL;
            cr_assert_eq(fr_sa_server_masked_begin(s, msg[0], msg_n[0], &id2, &w2), FR_ERR_STATE);
            cr_assert(strstr(fr_errmsg(), "already sent it"), "%s", fr_errmsg());
            cr_assert_eq(fr_sa_server_receive(s, msg[1], msg_n[1]), FR_ERR_STATE);
            cr_assert_eq(fr_sa_server_close(s), FR_ERR_STATE);
            cr_assert(strstr(fr_errmsg(), "6 masked inputs are being added"), "%s", fr_errmsg());
            cr_assert_eq(fr_sa_server_stage(s), FR_SA_MASK);
            /* the adds in reverse order; client 4's and 5's ended without theirs */
            for (uint32_t u = p.n; u-- > 0;)
                if (u < 4) fr_sa_server_masked_add(s, w[u]);
            for (uint32_t u = 0; u < p.n; u++) cr_assert_eq(fr_sa_server_masked_end(s, u, u < 4), FR_OK);
            cr_assert_eq(fr_sa_server_masked_end(s, 0, true), FR_ERR_STATE); /* none begun */
            cr_assert_eq(fr_sa_server_masked_end(s, 77, true), FR_ERR_STATE);
            /* 4 sends it again, plainly; 5 drops out; 0 cannot send twice */
            cr_assert_eq(fr_sa_server_receive(s, msg[4], msg_n[4]), FR_OK, "%s", fr_errmsg());
            cr_assert_eq(fr_sa_server_masked_begin(s, msg[0], msg_n[0], &id2, &w2), FR_ERR_STATE);
            for (uint32_t u = 0; u < p.n; u++) fr_sa_bytes_free(msg[u], msg_n[u]);
        }
        if (stage < 3) cr_assert_eq(fr_sa_server_close(s), FR_OK, "%s", fr_errmsg());
    }
    uint32_t surv = 0;
    cr_assert_eq(fr_sa_server_finish(s, sum, &surv), FR_OK, "%s", fr_errmsg());
    bool in[6] = {true, true, true, true, true, false};
    plain_sum(&p, x, in, want);
    cr_assert_eq(surv, 5);
    cr_assert_arr_eq(sum, want, p.len * 8);
    for (uint32_t u = 0; u < p.n; u++) fr_sa_client_free(c[u]);
    fr_sa_server_free(s);
    free_vectors(&p, x);
    free(sum);
    free(want);
}

static void check_pattern(const fr_sa_params *p, const uint8_t *stop, int64_t *const *x, int *ok, int *abort_) {
    int64_t *sum = malloc(p->len * 8), *want = malloc(p->len * 8);
    bool m[MAXN], got_m[MAXN];
    for (uint64_t i = 0; i < p->len; i++) sum[i] = 0x5a5a5a5a;
    bool expect = predict(p, stop, m);
    uint32_t surv = 0;
    fr_err e = run(p, stop, x, sum, &surv, got_m);
    for (uint32_t u = 0; u < p->n; u++) cr_assert_eq(got_m[u], m[u], "client %u masked: %d, predicted %d", u, got_m[u], m[u]);
    if (expect) {
        cr_assert_eq(e, FR_OK, "%s", fr_errmsg());
        plain_sum(p, x, m, want);
        cr_assert_arr_eq(sum, want, p->len * 8);
        uint32_t nm = 0;
        for (uint32_t u = 0; u < p->n; u++) nm += m[u];
        cr_assert_eq(surv, nm);
        (*ok)++;
    } else {
        cr_assert_eq(e, FR_ERR_EMPTY, "%s", fr_errmsg());
        for (uint64_t i = 0; i < p->len; i++) cr_assert_eq(sum[i], 0x5a5a5a5a); /* nothing returned */
        (*abort_)++;
    }
    free(sum);
    free(want);
}

/* Every way at most 3 of 6 clients (k = 5, t = 3) can drop out, at any of the four
 * stages: 1 + 6·4 + 15·16 + 20·64 = 1545 patterns (4 or more dropouts can never finish). */
Test(secagg, every_dropout_pattern_of_six, .timeout = 600) {
    fr_sa_params p = params(6, 5, 3, 9, 21);
    int64_t **x = vectors(&p, 5);
    uint8_t stop[MAXN] = {0};
    int ok = 0, ab = 0, patterns = 0;
    for (int code = 0; code < 15625; code++) {
        int c = code, dropped = 0;
        for (uint32_t u = 0; u < 6; u++) stop[u] = (uint8_t)(c % 5), c /= 5, dropped += stop[u] != 0;
        if (dropped > 3) continue;
        check_pattern(&p, stop, x, &ok, &ab);
        patterns++;
    }
    cr_assert_eq(patterns, 1545);
    cr_assert_gt(ok, 200, "%d recovered", ok);
    cr_assert_gt(ab, 500, "%d aborted", ab);
    free_vectors(&p, x);
}

/* A sparse graph (n = 24, k = 8, t = 5): random dropouts at every stage. */
Test(secagg, random_dropouts_sparse, .timeout = 600) {
    fr_sa_params p = params(24, 8, 5, 300, 33);
    int64_t **x = vectors(&p, 6);
    uint64_t st = 42;
    int ok = 0, ab = 0;
    for (int trial = 0; trial < 150; trial++) {
        uint8_t stop[MAXN] = {0};
        uint32_t rate = trial < 100 ? 8 : 30; /* percent per client */
        for (uint32_t u = 0; u < p.n; u++)
            if (splitmix(&st) % 100 < rate) stop[u] = (uint8_t)(1 + splitmix(&st) % 4);
        p.session = 1000 + (uint64_t)trial;
        check_pattern(&p, stop, x, &ok, &ab);
    }
    cr_assert_gt(ok, 80);
    free_vectors(&p, x);
}

/* A vector long enough for the server's recovery to split its expansions over two threads
 * (at least 8 · FRI_SA_PRG_ALIGN words, an odd length so the halves differ), with clients
 * gone after sharing (their pair masks rebuilt) and before unmasking: the exact plain sum
 * of the survivors. */
Test(secagg, long_vector_recovery_is_exact, .timeout = 600) {
    fr_sa_params p = params(10, 8, 5, 9 * FRI_SA_PRG_ALIGN + 13, 61);
    int64_t **x = vectors(&p, 62);
    const uint8_t stops[][10] = {{0}, {0, 3, 0, 0, 0, 0, 0, 3, 0, 0}, {0, 0, 4, 0, 3, 0, 0, 0, 0, 4}};
    int ok = 0, ab = 0;
    for (size_t c = 0; c < sizeof stops / sizeof stops[0]; c++) {
        uint8_t stop[MAXN] = {0};
        memcpy(stop, stops[c], 10);
        check_pattern(&p, stop, x, &ok, &ab);
    }
    cr_assert_eq(ok, 3);
    free_vectors(&p, x);
}

/* The unmasking stage may close once every needed secret has t shares: with 6 clients on
 * the complete graph (k = 5, t = 3), all masked, survivor u's seed has a share from each
 * answering client other than u, so 3 answers leave the first answerers with 2 (not yet)
 * and the 4th gives everyone at least 3; finishing then gives the plain sum of all 6. */
Test(secagg, can_finish_once_the_shares_suffice) {
    fr_sa_params p = params(6, 5, 3, 40, 71);
    int64_t **x = vectors(&p, 72), sum[40], want[40];
    fr_sa_server *s = NULL;
    fr_sa_client *c[6] = {0};
    cr_assert_eq(fr_sa_server_create(&s, &p), FR_OK);
    for (uint32_t u = 0; u < 6; u++) cr_assert_eq(fr_sa_client_create(&c[u], &p, u), FR_OK);
    for (int stage = 0; stage < 4; stage++) {
        for (uint32_t u = 0; u < 6; u++) {
            uint8_t *in = NULL, *out = NULL;
            size_t in_n = 0, out_n = 0;
            if (stage > 0) cr_assert_eq(fr_sa_server_message(s, u, &in, &in_n), FR_OK);
            fr_err ce = stage == 0   ? fr_sa_client_advertise(c[u], &out, &out_n)
                        : stage == 1 ? fr_sa_client_share(c[u], in, in_n, &out, &out_n)
                        : stage == 2 ? fr_sa_client_mask(c[u], x[u], in, in_n, &out, &out_n)
                                     : fr_sa_client_unmask(c[u], in, in_n, &out, &out_n);
            cr_assert_eq(ce, FR_OK, "%s", fr_errmsg());
            fr_sa_bytes_free(in, in_n);
            if (stage == 3) cr_assert_eq(fr_sa_server_can_finish(s), u >= 4, "after %u answers", u);
            else cr_assert_not(fr_sa_server_can_finish(s));
            cr_assert_eq(fr_sa_server_receive(s, out, out_n), FR_OK);
            fr_sa_bytes_free(out, out_n);
            if (stage == 3 && u == 3) break; /* two never answer */
        }
        if (stage < 3) cr_assert_eq(fr_sa_server_close(s), FR_OK);
    }
    cr_assert(fr_sa_server_can_finish(s));
    uint32_t surv = 0;
    cr_assert_eq(fr_sa_server_finish(s, sum, &surv), FR_OK, "%s", fr_errmsg());
    cr_assert_eq(surv, 6);
    bool all[MAXN];
    for (uint32_t u = 0; u < 6; u++) all[u] = true;
    plain_sum(&p, x, all, want);
    cr_assert_arr_eq(sum, want, sizeof sum);
    for (uint32_t u = 0; u < 6; u++) fr_sa_client_free(c[u]);
    fr_sa_server_free(s);
    free_vectors(&p, x);
}

Test(secagg, fewer_than_t_answers_abort) {
    fr_sa_params p = params(5, 4, 3, 16, 8);
    int64_t **x = vectors(&p, 9), sum[16];
    uint8_t stop[MAXN] = {0, 4, 4, 0, 0}; /* two mask, then vanish before answering */
    for (int i = 0; i < 16; i++) sum[i] = -1;
    cr_assert_eq(run(&p, stop, x, sum, NULL, NULL), FR_ERR_EMPTY);
    cr_assert(strstr(fr_errmsg(), "has 2 shares, the threshold is 3"), "%s", fr_errmsg());
    for (int i = 0; i < 16; i++) cr_assert_eq(sum[i], -1);
    /* one vanishing is recovered: every seed keeps three of its four holders */
    uint8_t stop2[MAXN] = {0, 4, 0, 0, 0};
    bool m[MAXN] = {1, 1, 1, 1, 1};
    int64_t want[16];
    cr_assert_eq(run(&p, stop2, x, sum, NULL, NULL), FR_OK, "%s", fr_errmsg());
    plain_sum(&p, x, m, want);
    cr_assert_arr_eq(sum, want, sizeof sum);
    free_vectors(&p, x);
}

Test(secagg, deterministic_only_with_test_seed) {
    for (int det = 0; det < 2; det++) {
        fr_sa_params p = params(3, 2, 2, 4, det ? 9 : 0);
        fr_sa_client *a = NULL, *b = NULL;
        uint8_t *ma, *mb;
        size_t na, nb;
        cr_assert_eq(fr_sa_client_create(&a, &p, 1), FR_OK);
        cr_assert_eq(fr_sa_client_create(&b, &p, 1), FR_OK);
        cr_assert_eq(fr_sa_client_advertise(a, &ma, &na), FR_OK);
        cr_assert_eq(fr_sa_client_advertise(b, &mb, &nb), FR_OK);
        cr_assert_eq(na, FR_SA_HEADER_BYTES + 64);
        cr_assert_eq(memcmp(ma, mb, na) == 0, det == 1);
        fr_sa_bytes_free(ma, na);
        fr_sa_bytes_free(mb, nb);
        fr_sa_client_free(a);
        fr_sa_client_free(b);
    }
}

/* ------------------------------------------------------------------ one client, by hand */

/* A session of n clients driven up to the unmasking stage; the server's request for
 * client `who` in req. */
typedef struct fixture {
    fr_sa_params p;
    fr_sa_server *s;
    fr_sa_client *c[MAXN];
    uint8_t *masked[MAXN];
    size_t masked_n[MAXN];
    uint8_t *fwd[MAXN];
    size_t fwd_n[MAXN];
} fixture;

static void fixture_up(fixture *f, const fr_sa_params *p, int upto /* 2: forwards made; 3: requests ready */,
                       const int64_t *x) {
    memset(f, 0, sizeof *f);
    f->p = *p;
    cr_assert_eq(fr_sa_server_create(&f->s, p), FR_OK);
    for (uint32_t u = 0; u < p->n; u++) cr_assert_eq(fr_sa_client_create(&f->c[u], p, u), FR_OK);
    for (int stage = 0; stage < upto; stage++) {
        for (uint32_t u = 0; u < p->n; u++) {
            uint8_t *in = NULL, *out = NULL;
            size_t in_n = 0, out_n = 0;
            if (stage > 0) cr_assert_eq(fr_sa_server_message(f->s, u, &in, &in_n), FR_OK);
            if (stage == 0) cr_assert_eq(fr_sa_client_advertise(f->c[u], &out, &out_n), FR_OK);
            if (stage == 1) cr_assert_eq(fr_sa_client_share(f->c[u], in, in_n, &out, &out_n), FR_OK, "%s", fr_errmsg());
            if (stage == 2) {
                cr_assert_eq(fr_sa_client_mask(f->c[u], x, in, in_n, &out, &out_n), FR_OK, "%s", fr_errmsg());
                f->masked[u] = malloc(out_n);
                memcpy(f->masked[u], out, out_n);
                f->masked_n[u] = out_n;
            }
            cr_assert_eq(fr_sa_server_receive(f->s, out, out_n), FR_OK, "%s", fr_errmsg());
            fr_sa_bytes_free(in, in_n);
            fr_sa_bytes_free(out, out_n);
        }
        cr_assert_eq(fr_sa_server_close(f->s), FR_OK);
    }
}

static void fixture_down(fixture *f) {
    for (uint32_t u = 0; u < f->p.n; u++) {
        fr_sa_client_free(f->c[u]);
        free(f->masked[u]);
    }
    fr_sa_server_free(f->s);
}

/* An unmasking request for client `to`, written here from the wire layout. */
static size_t request(uint8_t *m, const fr_sa_params *p, uint32_t to, const uint32_t *ids, const uint8_t *kinds,
                      uint32_t cnt) {
    size_t body = 4 + 5 * (size_t)cnt;
    fri_put_u32(m, 0x41535246);
    fri_put_u16(m + 4, 1);
    fri_put_u16(m + 6, 6);
    fri_put_u64(m + 8, p->session);
    fri_put_u32(m + 16, 0xFFFFFFFF);
    fri_put_u32(m + 20, to);
    fri_put_u64(m + 24, body);
    fri_put_u32(m + 32, cnt);
    for (uint32_t i = 0; i < cnt; i++) {
        fri_put_u32(m + 36 + 5 * i, ids[i]);
        m[40 + 5 * i] = kinds[i];
    }
    return 32 + body;
}

Test(secagg, malicious_server_refused) {
    fr_sa_params p = params(7, 4, 3, 8, 17); /* sparse: 2 clients are not neighbours of each */
    int64_t x[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    uint32_t nb[4];
    cr_assert_eq(fr_sa_neighbours(&p, 0, nb), FR_OK);
    uint32_t stranger = 0;
    for (uint32_t v = 1; v < 7; v++)
        if (fri_sa_find(nb, 4, v) < 0) stranger = v;
    cr_assert_neq(stranger, 0);
    uint8_t m[256], *out;
    size_t n, out_n;
    struct { uint32_t ids[5]; uint8_t kinds[5]; uint32_t cnt; const char *why; } bad[] = {
        {{nb[0], nb[0], nb[1], nb[2]}, {1, 2, 1, 1}, 4, "asks twice about"},            /* both shares of nb[0] */
        {{nb[0], nb[1], nb[1], nb[2]}, {1, 1, 1, 1}, 4, "asks twice about"},            /* twice, same kind */
        {{nb[0], nb[0], nb[1], nb[2], nb[3]}, {1, 2, 1, 1, 1}, 5, "more than the 4"},   /* both, and all others */
        {{nb[0], nb[1], nb[2], stranger}, {1, 1, 1, 1}, 4, "not a neighbour"},          /* not a neighbour */
        {{nb[0], nb[1], nb[2]}, {1, 1, 1}, 3, "each must be named once"},              /* one left out */
        {{nb[1], nb[0], nb[2], nb[3]}, {1, 1, 1, 1}, 4, "out of order"},
        {{nb[0], nb[1], nb[2], nb[3]}, {1, 3, 1, 1}, 4, "kind 3"},
        {{nb[0], nb[1], nb[2], 0}, {1, 1, 1, 1}, 4, "not a neighbour"},                 /* itself */
        {{nb[0], nb[1], nb[2], nb[3]}, {1, 2, 2, 1}, 4, "2 of its neighbours survived"}, /* cannot finish */
    };
    for (size_t c = 0; c < sizeof bad / sizeof bad[0]; c++) {
        fixture f;
        fixture_up(&f, &p, 3, x);
        n = request(m, &p, 0, bad[c].ids, bad[c].kinds, bad[c].cnt);
        cr_assert_eq(fr_sa_client_unmask(f.c[0], m, n, &out, &out_n), c == 8 ? FR_ERR_EMPTY : FR_ERR_FORMAT, "case %zu",
                     c);
        cr_assert(strstr(fr_errmsg(), bad[c].why), "case %zu: %s", c, fr_errmsg());
        cr_assert_null(out);
        /* refused for good: even an honest request now */
        uint8_t *req;
        size_t req_n;
        cr_assert_eq(fr_sa_server_message(f.s, 0, &req, &req_n), FR_OK);
        cr_assert_eq(fr_sa_client_unmask(f.c[0], req, req_n, &out, &out_n), FR_ERR_STATE);
        fr_sa_bytes_free(req, req_n);
        fixture_down(&f);
    }
    /* the honest request is answered once, with one share per neighbour */
    fixture f;
    fixture_up(&f, &p, 3, x);
    uint8_t kinds[4] = {1, 2, 1, 1};
    n = request(m, &p, 0, nb, kinds, 4);
    cr_assert_eq(fr_sa_client_unmask(f.c[0], m, n, &out, &out_n), FR_OK, "%s", fr_errmsg());
    cr_assert_eq(out_n, 32 + 4 + 4 * (4 + 1 + 1 + 32));
    fr_sa_bytes_free(out, out_n);
    cr_assert_eq(fr_sa_client_unmask(f.c[0], m, n, &out, &out_n), FR_ERR_STATE);
    fixture_down(&f);
}

/* Chi-square of the top and bottom bytes of one client's masked upload of zeros over
 * 256 bins: df = 255, the 0.001 critical value is 330.5. The same statistic on the
 * plain vector is enormous (the test can fail). */
static double chi2_byte(const uint8_t *words, uint64_t len, int byte) {
    double cnt[256] = {0}, e = (double)len / 256, s = 0;
    for (uint64_t i = 0; i < len; i++) cnt[words[8 * i + byte]]++;
    for (int b = 0; b < 256; b++) s += (cnt[b] - e) * (cnt[b] - e) / e;
    return s;
}

Test(secagg, masked_upload_is_uniform) {
    const uint64_t L = 1 << 16;
    fr_sa_params p = params(4, 3, 2, L, 1234);
    int64_t *x = calloc(L, 8);
    for (uint64_t i = 0; i < L; i++) x[i] = (int64_t)(i % 1000) - 500; /* small, structured */
    fixture f;
    fixture_up(&f, &p, 3, x);
    for (uint32_t u = 0; u < p.n; u++) {
        const uint8_t *w = f.masked[u] + 32 + 8;
        cr_assert_eq(f.masked_n[u], 32 + 8 + L * 8);
        double top = chi2_byte(w, L, 7), low = chi2_byte(w, L, 0);
        cr_assert_lt(top, 330.5, "client %u top byte chi2 %g", u, top);
        cr_assert_lt(low, 330.5, "client %u low byte chi2 %g", u, low);
    }
    uint8_t *plain = malloc(L * 8);
    for (uint64_t i = 0; i < L; i++) fri_put_u64(plain + 8 * i, (uint64_t)x[i]);
    cr_assert_gt(chi2_byte(plain, L, 7), 10000);
    free(plain);
    fixture_down(&f);
    free(x);
}

Test(secagg, out_of_bound_input_refused) {
    fr_sa_params p = params(3, 2, 2, 4, 1);
    p.bound = 1000;
    int64_t x[4] = {0, 1000, -1000, 0};
    fixture f;
    fixture_up(&f, &p, 2, x);
    uint8_t *in, *out;
    size_t in_n, out_n;
    cr_assert_eq(fr_sa_server_message(f.s, 0, &in, &in_n), FR_OK);
    cr_assert_eq(fr_sa_client_mask(f.c[0], x, in, in_n, &out, &out_n), FR_OK, "%s", fr_errmsg());
    fr_sa_bytes_free(out, out_n);
    fr_sa_bytes_free(in, in_n);
    x[3] = -1001;
    cr_assert_eq(fr_sa_server_message(f.s, 1, &in, &in_n), FR_OK);
    cr_assert_eq(fr_sa_client_mask(f.c[1], x, in, in_n, &out, &out_n), FR_ERR_RANGE);
    cr_assert(strstr(fr_errmsg(), "x[3] = -1001"), "%s", fr_errmsg());
    fr_sa_bytes_free(in, in_n);
    fixture_down(&f);
}

/* Every truncation and every single-byte change of each kind of message is refused, or
 * (a masked word, a share) taken as another valid message; nothing crashes. Clients get a
 * fresh fixture per damaged message (a refusal fails them). */
Test(secagg, damaged_messages_refused, .timeout = 600) {
    fr_sa_params p = params(3, 2, 2, 2, 5);
    int64_t x[2] = {3, -4};
    fixture f;
    fixture_up(&f, &p, 2, x);
    /* the server: a truncated or damaged masked input changes nothing */
    uint8_t *in, *out;
    size_t in_n, out_n;
    cr_assert_eq(fr_sa_server_message(f.s, 0, &in, &in_n), FR_OK);
    fr_sa_client *spare = NULL;
    (void)spare;
    cr_assert_eq(fr_sa_client_mask(f.c[0], x, in, in_n, &out, &out_n), FR_OK);
    fr_sa_bytes_free(in, in_n);
    for (size_t cut = 0; cut < out_n; cut++) cr_assert_neq(fr_sa_server_receive(f.s, out, cut), FR_OK, "cut %zu", cut);
    uint8_t *copy = malloc(out_n);
    for (size_t i = 0; i < 40; i++) { /* the header and the length */
        memcpy(copy, out, out_n);
        copy[i] ^= 0x10;
        cr_assert_neq(fr_sa_server_receive(f.s, copy, out_n), FR_OK, "byte %zu", i);
    }
    cr_assert_eq(fr_sa_server_receive(f.s, out, out_n), FR_OK, "%s", fr_errmsg());
    cr_assert_eq(fr_sa_server_receive(f.s, out, out_n), FR_ERR_STATE); /* a second one */
    fr_sa_bytes_free(out, out_n);
    free(copy);
    fixture_down(&f);

    /* a client: each truncation and byte flip of its keys and of its forwarded shares */
    for (int which = 1; which <= 2; which++) {
        fixture g;
        fixture_up(&g, &p, which, x);
        cr_assert_eq(fr_sa_server_message(g.s, 1, &in, &in_n), FR_OK);
        fixture_down(&g);
        for (size_t trial = 0; trial < 2 * in_n; trial++) {
            fixture h;
            fixture_up(&h, &p, which, x);
            uint8_t *d = malloc(in_n);
            memcpy(d, in, in_n);
            size_t dn = in_n;
            if (trial < in_n) dn = trial;
            else d[trial - in_n] ^= 0x01;
            fr_err e = which == 1 ? fr_sa_client_share(h.c[1], d, dn, &out, &out_n)
                                  : fr_sa_client_mask(h.c[1], x, d, dn, &out, &out_n);
            if (e == FR_OK) { /* only a key byte of the keys message can change and stay valid */
                cr_assert_eq(which, 1, "trial %zu", trial);
                fr_sa_bytes_free(out, out_n);
            } else {
                cr_assert(e == FR_ERR_FORMAT || e == FR_ERR_VERSION || e == FR_ERR_EMPTY, "trial %zu: %d %s", trial, e,
                          fr_errmsg());
                cr_assert_null(out);
            }
            free(d);
            fixture_down(&h);
        }
        fr_sa_bytes_free(in, in_n);
    }
}

Test(secagg, wrong_session_and_version) {
    fr_sa_params p = params(3, 2, 2, 2, 5);
    fr_sa_server *s;
    fr_sa_client *c;
    uint8_t *out;
    size_t n;
    cr_assert_eq(fr_sa_server_create(&s, &p), FR_OK);
    fr_sa_params q = p;
    q.session = 78;
    cr_assert_eq(fr_sa_client_create(&c, &q, 0), FR_OK);
    cr_assert_eq(fr_sa_client_advertise(c, &out, &n), FR_OK);
    cr_assert_eq(fr_sa_server_receive(s, out, n), FR_ERR_FORMAT);
    cr_assert(strstr(fr_errmsg(), "session 78"), "%s", fr_errmsg());
    fri_put_u64(out + 8, 77);
    out[4] = 2;
    cr_assert_eq(fr_sa_server_receive(s, out, n), FR_ERR_VERSION);
    out[4] = 1;
    cr_assert_eq(fr_sa_server_receive(s, out, n), FR_OK, "%s", fr_errmsg());
    fr_sa_bytes_free(out, n);
    /* out of order */
    cr_assert_eq(fr_sa_server_finish(s, (int64_t[2]){0}, NULL), FR_ERR_STATE);
    cr_assert_eq(fr_sa_client_advertise(c, &out, &n), FR_ERR_STATE);
    cr_assert_null(out);
    fr_sa_client_free(c);
    fr_sa_server_free(s);
}

/* ------------------------------------------------------------------ out of memory */

static bool nomem_or_empty(fr_err e) { return e == FR_ERR_NOMEM || e == FR_ERR_EMPTY; }

/* A session where any call may fail for memory: a failing client or message drops that
 * client out; every error is FR_ERR_NOMEM or its consequence FR_ERR_EMPTY; a session that
 * finishes gives the exact sum of the clients whose masked input was taken. */
static void run_under_fault(const fr_sa_params *p, int64_t *const *x, long fail_at) {
    fr_sa_server *s = NULL;
    fr_sa_client *c[MAXN] = {0};
    bool in_m[MAXN] = {0};
    fr_test_fail_alloc(fail_at, false);
    fr_err e = fr_sa_server_create(&s, p);
    cr_assert(!e || e == FR_ERR_NOMEM);
    for (uint32_t u = 0; u < p->n && !e; u++) {
        fr_err ce = fr_sa_client_create(&c[u], p, u);
        cr_assert(!ce || ce == FR_ERR_NOMEM);
        if (ce) cr_assert_null(c[u]);
    }
    for (int stage = 0; stage < 4 && !e; stage++) {
        for (uint32_t u = 0; u < p->n; u++) {
            if (!c[u] || fr_sa_client_stage(c[u]) != (fr_sa_stage)stage) continue;
            if (stage > 0 && !fr_sa_server_has(s, u)) continue;
            uint8_t *in = NULL, *out = NULL;
            size_t in_n = 0, out_n = 0;
            fr_err ce = stage > 0 ? fr_sa_server_message(s, u, &in, &in_n) : FR_OK;
            if (!ce) {
                switch (stage) {
                case 0: ce = fr_sa_client_advertise(c[u], &out, &out_n); break;
                case 1: ce = fr_sa_client_share(c[u], in, in_n, &out, &out_n); break;
                case 2: ce = fr_sa_client_mask(c[u], x[u], in, in_n, &out, &out_n); break;
                default: ce = fr_sa_client_unmask(c[u], in, in_n, &out, &out_n); break;
                }
            }
            if (!ce) ce = fr_sa_server_receive(s, out, out_n);
            cr_assert(!ce || nomem_or_empty(ce), "fail at %ld, client %u stage %d: %d %s", fail_at, u, stage, ce,
                      fr_errmsg());
            if (!ce && stage == 2) in_m[u] = true;
            fr_sa_bytes_free(in, in_n);
            fr_sa_bytes_free(out, out_n);
        }
        if (stage < 3) e = fr_sa_server_close(s);
    }
    int64_t sum[8], want[8];
    if (!e) e = fr_sa_server_finish(s, sum, NULL);
    cr_assert(!e || nomem_or_empty(e), "fail at %ld: %d %s", fail_at, e, fr_errmsg());
    if (!e) {
        plain_sum(p, x, in_m, want);
        cr_assert_arr_eq(sum, want, sizeof sum, "fail at %ld", fail_at);
    }
    fr_test_fail_alloc(0, false);
    for (uint32_t u = 0; u < p->n; u++) fr_sa_client_free(c[u]);
    fr_sa_server_free(s);
}

Test(secagg, every_allocation_failure, .timeout = 600) {
    fr_sa_params p = params(5, 4, 3, 8, 3);
    int64_t **x = vectors(&p, 1);
    /* the allocations of a whole session */
    fr_test_fail_alloc(0, false);
    (void)fr_test_alloc_count();
    int64_t sum[8];
    uint8_t stop[MAXN] = {0};
    fr_test_fail_alloc(1 << 30, false); /* counts from here, never fails */
    cr_assert_eq(run(&p, stop, x, sum, NULL, NULL), FR_OK);
    long total = fr_test_alloc_count();
    fr_test_fail_alloc(0, false);
    cr_assert_gt(total, 50);
    for (long n = 1; n <= total + 1; n++) run_under_fault(&p, x, n);
    free_vectors(&p, x);
}
