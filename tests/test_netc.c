/* The networked client's library side (fr_netc), without a network: N clients, each
 * holding only its own users' data, fed the round controller's TASK bytes (sampling
 * among every client with fr_round_begin_among), give the simulator's global model and
 * private rows bit for bit:
 *   - mf (explicit) and neumf (implicit), a user per client and silos (given in a
 *     non-increasing order), kept private optimizer state on and off, all clients or a
 *     sample per round;
 *   - a client saved and reloaded between rounds (a process restart) changes nothing;
 *   - so with q8 and q16 compression up and down;
 *   - state files of another client, another silo, another federation, truncated at
 *     every length or with any byte flipped are refused, the client unchanged; a missing
 *     file is a fresh client;
 *   - a TASK of another federation or an older round is refused and changes nothing;
 *   - recommend gives the simulator's top-k; local evaluation sums give the simulator's
 *     metrics;
 *   - a user's initial row made alone is fr_model_create's, for every model kind;
 *   - fr_dataset_select_users keeps ids and order;
 *   - an allocation-failure sweep over create, step, save, load, recommend, evaluate. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "fedrec/features.h"
#include "fedrec/model_eval.h"
#include "fedrec/net_client.h"
#include "fedrec/runtime.h"
#include "model/model_internal.h"
#include "testutil.h"

static fr_dataset *synthetic(void) { return tu_generate(40, 60, 900, 11); }

static uint32_t g_compress; /* compress_up and compress_down of the configs (each Test is its own process) */
static uint32_t g_topk;      /* compress_topk of the configs */
static fr_features *g_feat;  /* side features of the hybrid kinds' configs, or NULL */
static bool g_feat_withheld; /* the clients are not given their users' lists */

static void configs(fr_model_config *mc, fr_fl_config *cfg, const fr_dataset *d, fr_model_kind kind, bool keep,
                    double cpr) {
    fr_model_config_default(mc, kind);
    fr_fl_config_default(cfg, kind);
    cfg->compress_up = cfg->compress_down = g_compress;
    cfg->compress_topk = g_topk;
    cfg->seed = 5;
    cfg->keep_private_optim = keep;
    cfg->clients_per_round = cpr;
    cfg->local_epochs = 2;
    cfg->batch = 16;
    if (kind == FR_MODEL_MF && keep) { /* a kept state with moments */
        fr_optim_config_default(&cfg->local, FR_OPTIM_ADAM);
        cfg->local.lr = 0.01f;
    }
    mc->n_users = fr_dataset_n_users(d);
    mc->n_items = fr_dataset_n_items(d);
    mc->seed = cfg->seed; /* as the sim does */
    if (g_feat && fr_model_kind_uses_features(kind)) cr_assert_eq(fr_model_config_set_features(mc, g_feat), FR_OK);
}

/* Side features of the synthetic data: each user two or three of 7 names (weights not 1),
 * each item one or two of 5. */
static fr_features *side_features(const fr_dataset *d) {
    fr_features *f = NULL;
    cr_assert_eq(fr_features_create(&f, fr_dataset_n_users(d), fr_dataset_n_items(d)), FR_OK);
    char nm[32];
    for (uint32_t u = 0; u < fr_dataset_n_users(d); u++)
        for (uint32_t k = 0; k < 2 + u % 2; k++) {
            int n = snprintf(nm, sizeof nm, "uf%u", (u * 3 + k * 5) % 7);
            cr_assert_eq(fr_features_add(f, FR_FEAT_USER, u, nm, (size_t)n, 0.5f + 0.25f * (float)k), FR_OK);
        }
    for (uint32_t i = 0; i < fr_dataset_n_items(d); i++)
        for (uint32_t k = 0; k < 1 + i % 2; k++) {
            int n = snprintf(nm, sizeof nm, "if%u", (i + k * 2) % 5);
            cr_assert_eq(fr_features_add(f, FR_FEAT_ITEM, i, nm, (size_t)n, 1.0f), FR_OK);
        }
    return f;
}

/* Silos: client c holds the users u with u % K == c, in decreasing order. */
#define K_SILOS 6
static fr_partition *silos(const fr_dataset *d) {
    uint32_t nu = fr_dataset_n_users(d);
    fr_partition *p = calloc(1, sizeof *p);
    p->n_clients = K_SILOS;
    p->ptr = calloc(K_SILOS + 1, sizeof *p->ptr);
    p->users = calloc(nu, sizeof *p->users);
    uint64_t at = 0;
    for (uint32_t c = 0; c < K_SILOS; c++) {
        p->ptr[c] = at;
        for (uint32_t u = nu; u-- > 0;)
            if (u % K_SILOS == c) p->users[at++] = u;
    }
    p->ptr[K_SILOS] = at;
    return p;
}
static void silos_free(fr_partition *p) {
    if (!p) return;
    free(p->ptr);
    free(p->users);
    free(p);
}

/* The client processes: each its own data (its users' interactions only) and state. */
typedef struct fleet {
    uint32_t n;
    fr_netc **c;           /* [n]; NULL for a client without data (the sim skips it too) */
    fr_dataset **data;     /* [n] */
    const uint32_t **users;/* [n] */
    uint32_t *nu;          /* [n] */
    uint32_t *one;         /* [n] a user each: user c */
    char *dir;
} fleet;

static char *state_path(const fleet *f, uint32_t c) {
    static char path[1024];
    snprintf(path, sizeof path, "%s/client-%u.state", f->dir, c);
    return path;
}

static fr_netc *make_client(fleet *f, uint32_t c) {
    fr_netc *x = NULL;
    cr_assert_eq(fr_netc_create(&x, f->data[c], f->users[c], f->nu[c], c, state_path(f, c)), FR_OK, "%s",
                 fr_errmsg());
    if (g_feat && !g_feat_withheld) { /* its own users' lists only, in the federation's vocabulary */
        uint64_t off[64] = {0};
        uint32_t ids[256];
        float w[256];
        cr_assert(f->nu[c] < 64);
        for (uint32_t j = 0; j < f->nu[c]; j++) {
            const uint32_t *fi;
            const float *fw;
            size_t k = fr_features_of(g_feat, FR_FEAT_USER, f->users[c][j], &fi, &fw);
            cr_assert(off[j] + k <= 256);
            memcpy(ids + off[j], fi, k * sizeof *fi);
            memcpy(w + off[j], fw, k * sizeof *fw);
            off[j + 1] = off[j] + k;
        }
        cr_assert_eq(fr_netc_set_user_features(x, off, ids, w), FR_OK, "%s", fr_errmsg());
    }
    return x;
}

static void fleet_make(fleet *f, const fr_dataset *d, const fr_partition *p) {
    memset(f, 0, sizeof *f);
    f->dir = tu_tmpdir();
    f->n = p ? p->n_clients : fr_dataset_n_users(d);
    f->c = calloc(f->n, sizeof *f->c);
    f->data = calloc(f->n, sizeof *f->data);
    f->users = calloc(f->n, sizeof *f->users);
    f->nu = calloc(f->n, sizeof *f->nu);
    f->one = calloc(f->n, sizeof *f->one);
    for (uint32_t c = 0; c < f->n; c++) {
        f->one[c] = c;
        f->users[c] = p ? p->users + p->ptr[c] : &f->one[c];
        f->nu[c] = p ? (uint32_t)(p->ptr[c + 1] - p->ptr[c]) : 1;
        cr_assert_eq(fr_dataset_select_users(&f->data[c], d, f->users[c], f->nu[c]), FR_OK, "%s", fr_errmsg());
        if (fr_dataset_n_interactions(f->data[c]) > 0) f->c[c] = make_client(f, c);
    }
}

static void fleet_free(fleet *f) {
    for (uint32_t c = 0; c < f->n; c++) {
        fr_netc_free(f->c[c]);
        fr_dataset_free(f->data[c]);
    }
    free(f->c);
    free(f->data);
    free(f->users);
    free(f->nu);
    free(f->one);
    tu_rmtree(f->dir);
    free(f->dir);
}

/* Every client process restarts: saves, exits, starts again and loads its state. */
static void restart(fleet *f) {
    for (uint32_t c = 0; c < f->n; c++) {
        if (!f->c[c]) continue;
        uint32_t round = fr_netc_round(f->c[c]);
        cr_assert_eq(fr_netc_save(f->c[c]), FR_OK, "%s", fr_errmsg());
        fr_netc_free(f->c[c]);
        f->c[c] = make_client(f, c);
        bool resumed = false;
        cr_assert_eq(fr_netc_load(f->c[c], &resumed), FR_OK, "%s", fr_errmsg());
        cr_assert(resumed || round == 0);
        cr_assert_eq(fr_netc_round(f->c[c]), round);
    }
}

/* One round by the controller over every client (none missing), as a server would. */
static fr_netc_scratch *g_scratch; /* set: the clients step on one shared scratch (a load generator's thread) */

static void net_round(fr_round *r, fleet *f) {
    uint32_t *all = malloc(f->n * sizeof *all);
    for (uint32_t i = 0; i < f->n; i++) all[i] = i;
    const uint32_t *ids;
    uint32_t k;
    cr_assert_eq(fr_round_begin_among(r, all, f->n, 0.0, &ids, &k), FR_OK, "%s", fr_errmsg());
    cr_assert_eq(fr_round_target(r), k);
    for (uint32_t i = 0; i < k; i++) {
        fr_netc *c = f->c[ids[i]];
        if (!c) continue;
        const uint8_t *tb, *out;
        size_t tn, on;
        cr_assert_eq(fr_round_task(r, ids[i], &tb, &tn), FR_OK, "%s", fr_errmsg());
        if (g_scratch)
            cr_assert_eq(fr_netc_step_shared(c, g_scratch, tb, tn, &out, &on), FR_OK, "%s", fr_errmsg());
        else
            cr_assert_eq(fr_netc_step(c, tb, tn, &out, &on), FR_OK, "%s", fr_errmsg());
        cr_assert_eq(fr_round_submit(r, out, on, 0), FR_OK, "%s", fr_errmsg());
    }
    fr_round_stats st;
    cr_assert_eq(fr_round_end(r, &st), FR_OK, "%s", fr_errmsg());
    free(all);
}

/* After the last round: the server hands every client the final global model (the TASK
 * of the round it would run next, every client sampled), which it keeps without training. */
static void hand_out_final(fr_round *r, fleet *f) {
    uint32_t *all = malloc(f->n * sizeof *all);
    for (uint32_t i = 0; i < f->n; i++) all[i] = i;
    /* all of them: clients_per_round may sample fewer, over-selection takes every one */
    const uint32_t *ids;
    uint32_t k;
    cr_assert_eq(fr_round_begin_among(r, all, f->n, 1e9, &ids, &k), FR_OK, "%s", fr_errmsg());
    for (uint32_t i = 0; i < k; i++) {
        if (!f->c[ids[i]]) continue;
        const uint8_t *tb;
        size_t tn;
        cr_assert_eq(fr_round_task(r, ids[i], &tb, &tn), FR_OK);
        if (g_scratch) cr_assert_eq(fr_netc_sync_shared(f->c[ids[i]], g_scratch, tb, tn), FR_OK, "%s", fr_errmsg());
        else cr_assert_eq(fr_netc_sync(f->c[ids[i]], tb, tn), FR_OK, "%s", fr_errmsg());
        cr_assert_eq(fr_netc_round(f->c[ids[i]]), fr_round_completed(r) + 1);
        cr_assert(memcmp(fr_model_params_const(fr_netc_model(f->c[ids[i]])), fr_model_params_const(fr_round_model(r)),
                         fr_model_n_shared(fr_round_model(r)) * sizeof(float)) == 0);
    }
    fr_round_abort(r);
    free(all);
}

/* The global model and every client's private rows against the sim's, bit for bit. */
static void same_as_sim(fr_round *r, fleet *f, fr_sim *s, const char *what) {
    fr_model *m = fr_sim_model(s);
    size_t ns = fr_model_n_shared(m);
    cr_assert_eq(fr_round_completed(r), fr_round_completed(fr_sim_controller(s)));
    cr_assert(memcmp(fr_model_params_const(fr_round_model(r)), fr_model_params_const(m), ns * sizeof(float)) == 0,
              "%s: the global model differs from the simulator's", what);
    int checked = 0;
    for (uint32_t c = 0; c < f->n; c++) {
        if (!f->c[c]) continue;
        for (uint32_t j = 0; j < f->nu[c]; j++) {
            uint32_t u = f->users[c][j];
            int t = 0;
            for (int i = 0; i < fr_model_n_tensors(m); i++) {
                const fr_tensor *tt = fr_model_tensor(m, i);
                if (tt->kind != FR_TENSOR_USER_TABLE) continue;
                const float *row = fr_netc_private_row(f->c[c], u, t++);
                if (!fr_netc_round(f->c[c])) continue; /* never sampled: no rows yet */
                cr_assert_not_null(row);
                cr_assert(memcmp(row, fr_model_params_const(m) + tt->offset + (size_t)u * tt->cols,
                                 tt->cols * sizeof(float)) == 0,
                          "%s: client %u user %u table %d differs from the simulator's", what, c, u, t - 1);
                checked++;
            }
        }
    }
    cr_assert(checked > 0);
}

static void check_equals_sim(fr_model_kind kind, bool with_silos, bool keep, double cpr, int rounds,
                             bool restarts) {
    fr_dataset *d = synthetic();
    fr_model_config mc;
    fr_fl_config cfg;
    configs(&mc, &cfg, d, kind, keep, cpr);
    fr_partition *p = with_silos ? silos(d) : NULL;
    fr_sim *s = NULL;
    cr_assert_eq(fr_sim_create_silos(&s, &mc, &cfg, d, p, NULL), FR_OK, "%s", fr_errmsg());
    fleet f;
    fleet_make(&f, d, p);
    fr_round *r = NULL;
    cr_assert_eq(fr_round_create(&r, &mc, &cfg, f.n, 1), FR_OK);
    char what[128];
    snprintf(what, sizeof what, "%s, %s, keep %d, cpr %g%s", fr_model_kind_name(kind), with_silos ? "silos" : "users",
             keep, cpr, restarts ? ", restarts" : "");
    for (int i = 0; i < rounds; i++) {
        fr_round_stats st;
        cr_assert_eq(fr_sim_round(s, &st), FR_OK, "%s", fr_errmsg());
        net_round(r, &f);
        if (restarts) restart(&f);
    }
    same_as_sim(r, &f, s, what);
    fr_round_free(r);
    fleet_free(&f);
    fr_sim_free(s);
    silos_free(p);
    fr_dataset_free(d);
}

Test(netc, mf_a_user_per_client_equals_the_simulator) {
    for (int keep = 0; keep < 2; keep++) {
        check_equals_sim(FR_MODEL_MF, false, keep, 0, 3, false);
        check_equals_sim(FR_MODEL_MF, false, keep, 0.3, 4, false);
    }
}

Test(netc, mf_silos_equal_the_simulator) {
    for (int keep = 0; keep < 2; keep++) {
        check_equals_sim(FR_MODEL_MF, true, keep, 0, 3, false);
        check_equals_sim(FR_MODEL_MF, true, keep, 3, 4, false);
    }
}

Test(netc, neumf_a_user_per_client_equals_the_simulator) {
    for (int keep = 0; keep < 2; keep++) {
        check_equals_sim(FR_MODEL_NEUMF, false, keep, 0, 3, false);
        check_equals_sim(FR_MODEL_NEUMF, false, keep, 0.3, 4, false);
    }
}

Test(netc, neumf_silos_equal_the_simulator) {
    for (int keep = 0; keep < 2; keep++) {
        check_equals_sim(FR_MODEL_NEUMF, true, keep, 0, 3, false);
        check_equals_sim(FR_MODEL_NEUMF, true, keep, 0.5, 4, false);
    }
}

/* Clients stepped one after another on one scratch (the TASK decoded once a round, one
 * workspace: the load generator's threads) give the simulator's model and rows bit for
 * bit, across restarts too; a scratch kept across two federations makes a new workspace. */
Test(netc, clients_sharing_a_scratch_equal_the_simulator) {
    cr_assert_eq(fr_netc_scratch_create(&g_scratch), FR_OK);
    for (int keep = 0; keep < 2; keep++) {
        check_equals_sim(FR_MODEL_NEUMF, false, keep, 0, 3, false);
        check_equals_sim(FR_MODEL_MF, true, keep, 0.5, 3, keep == 1);
    }
    check_equals_sim(FR_MODEL_BPR, false, false, 0.3, 3, true);
    fr_netc_scratch_free(g_scratch);
    g_scratch = NULL;
}

Test(netc, compressed_rounds_equal_the_simulator) {
    g_compress = FR_COMPRESS_Q8; /* q8 RESULTs and TASKs: the same streams in both */
    check_equals_sim(FR_MODEL_NEUMF, false, false, 0.3, 3, true);
    g_compress = FR_COMPRESS_Q16;
    check_equals_sim(FR_MODEL_MF, true, true, 0, 3, false);
}

/* Top-k with error feedback: each client keeps what it did not send (its residual) in its
 * state, so clients that restart from their state files every round give the simulator's
 * model and rows bit for bit (the simulator keeps every client's residual in memory). */
Test(netc, topk_rounds_equal_the_simulator_across_restarts) {
    g_topk = 40;
    check_equals_sim(FR_MODEL_NEUMF, false, false, 0.3, 4, true);
    check_equals_sim(FR_MODEL_NEUMF, false, true, 0, 3, false);
    g_compress = FR_COMPRESS_Q8; /* topk:K,q8 */
    check_equals_sim(FR_MODEL_NEUMF, true, true, 0.5, 3, true);
}

Test(netc, restarted_clients_equal_the_simulator) {
    check_equals_sim(FR_MODEL_NEUMF, true, true, 0.5, 4, true);
    check_equals_sim(FR_MODEL_NEUMF, false, true, 0.3, 3, true);
    check_equals_sim(FR_MODEL_MF, false, false, 0.3, 3, true);
}

/* ------------------------------------------------------------------ state refusals */

/* A federation of neumf clients after two rounds; client 2's state bytes. */
typedef struct world {
    fr_dataset *d;
    fr_model_config mc;
    fr_fl_config cfg;
    fleet f;
    fr_round *r;
} world;

static void world_make(world *w, bool keep) {
    w->d = synthetic();
    configs(&w->mc, &w->cfg, w->d, FR_MODEL_NEUMF, keep, 0);
    fleet_make(&w->f, w->d, NULL);
    cr_assert_eq(fr_round_create(&w->r, &w->mc, &w->cfg, w->f.n, 1), FR_OK);
    for (int i = 0; i < 2; i++) net_round(w->r, &w->f);
}

static void world_free(world *w) {
    fr_round_free(w->r);
    fleet_free(&w->f);
    fr_dataset_free(w->d);
}

static uint8_t *rows_of(fr_netc *c, uint32_t user, size_t *n) {
    const float *a = fr_netc_private_row(c, user, 0), *b = fr_netc_private_row(c, user, 1);
    cr_assert(a && b);
    *n = (8 + 32) * sizeof(float);
    uint8_t *x = malloc(*n);
    memcpy(x, a, 8 * sizeof(float));
    memcpy(x + 8 * sizeof(float), b, 32 * sizeof(float));
    return x;
}

Test(netc, state_files_of_others_or_damaged_are_refused) {
    world w;
    world_make(&w, true);
    fr_netc *c2 = w.f.c[2];
    uint8_t *st = NULL;
    size_t n = 0;
    cr_assert_eq(fr_netc_save_bytes(c2, &st, &n), FR_OK);
    size_t rn;
    uint8_t *rows = rows_of(c2, 2, &rn);
    /* its own state loads, and changes nothing */
    cr_assert_eq(fr_netc_load_bytes(c2, st, n, "c2.state"), FR_OK, "%s", fr_errmsg());
    size_t rn2;
    uint8_t *rows2 = rows_of(c2, 2, &rn2);
    cr_assert(memcmp(rows, rows2, rn) == 0);
    free(rows2);
    /* another client's */
    cr_assert_eq(fr_netc_load_bytes(w.f.c[3], st, n, "c2.state"), FR_ERR_INVALID);
    cr_assert(strstr(fr_errmsg(), "c2.state: the state of client 2, this is client 3") != NULL, "%s", fr_errmsg());
    /* the same id holding other users */
    fr_netc *other = NULL;
    const uint32_t two_users[] = {2, 3};
    fr_dataset *d23 = NULL;
    cr_assert_eq(fr_dataset_select_users(&d23, w.d, two_users, 2), FR_OK);
    cr_assert_eq(fr_netc_create(&other, d23, two_users, 2, 2, NULL), FR_OK);
    cr_assert_eq(fr_netc_load_bytes(other, st, n, "c2.state"), FR_ERR_INVALID);
    cr_assert(strstr(fr_errmsg(), "the state of a client holding other users") != NULL, "%s", fr_errmsg());
    fr_netc_free(other);
    fr_dataset_free(d23);
    /* another federation: a client 2 that has joined one with another seed */
    fr_fl_config oc = w.cfg;
    oc.seed = 6;
    fr_model_config omc = w.mc;
    omc.seed = 6;
    fr_round *orr = NULL;
    cr_assert_eq(fr_round_create(&orr, &omc, &oc, w.f.n, 1), FR_OK);
    const uint32_t *ids;
    uint32_t k;
    cr_assert_eq(fr_round_begin(orr, &ids, &k), FR_OK);
    const uint8_t *tb, *out;
    size_t tn, on;
    cr_assert_eq(fr_round_task(orr, 2, &tb, &tn), FR_OK);
    cr_assert_eq(fr_netc_create(&other, w.f.data[2], NULL, 0, 2, NULL), FR_OK);
    cr_assert_eq(fr_netc_step(other, tb, tn, &out, &on), FR_OK, "%s", fr_errmsg());
    cr_assert_eq(fr_netc_load_bytes(other, st, n, "c2.state"), FR_ERR_INVALID);
    cr_assert(strstr(fr_errmsg(), "c2.state: the state of another federation (config CRC 0x") != NULL, "%s",
              fr_errmsg());
    cr_assert_eq(fr_netc_round(other), 1, "a refused state changes nothing");
    /* ... and the TASK of another federation is refused by a client of this one */
    cr_assert_eq(fr_netc_step(c2, tb, tn, &out, &on), FR_ERR_INVALID);
    cr_assert(strstr(fr_errmsg(), "client 2: the TASK is of another federation (config CRC 0x") != NULL, "%s",
              fr_errmsg());
    fr_netc_free(other);
    fr_round_free(orr);
    /* every truncation, every flipped byte: refused, the client unchanged */
    for (size_t m = 0; m < n; m++) {
        fr_err e = fr_netc_load_bytes(c2, st, m, "c2.state");
        cr_assert(e == FR_ERR_FORMAT || e == FR_ERR_CHECKSUM, "truncated to %zu: %s", m, fr_errmsg());
    }
    for (size_t m = 0; m < n; m++) {
        st[m] ^= 0x04;
        fr_err e = fr_netc_load_bytes(c2, st, n, "c2.state");
        cr_assert(e == FR_ERR_FORMAT || e == FR_ERR_CHECKSUM, "byte %zu flipped: %s", m, fr_errmsg());
        st[m] ^= 0x04;
    }
    st[n / 2] ^= 0x80;
    cr_assert_eq(fr_netc_load_bytes(c2, st, n, "c2.state"), FR_ERR_CHECKSUM);
    cr_assert(strstr(fr_errmsg(), "c2.state: client state is damaged (CRC-32C mismatch)") != NULL, "%s", fr_errmsg());
    st[n / 2] ^= 0x80;
    /* a consistent file whose fields lie (resealed): precise refusals */
    uint8_t *bad = malloc(n);
    memcpy(bad, st, n);
    fri_put_u32(bad + 8, 3); /* version */
    fri_put_u32(bad + n - 4, fr_crc32c(0, bad, n - 4));
    cr_assert_eq(fr_netc_load_bytes(c2, bad, n, "c2.state"), FR_ERR_VERSION);
    memcpy(bad, st, n);
    fri_put_u32(bad + 20, fri_get_u32(bad + 20) + 1); /* round */
    fri_put_u32(bad + n - 4, fr_crc32c(0, bad, n - 4));
    cr_assert_eq(fr_netc_load_bytes(c2, bad, n, "c2.state"), FR_ERR_FORMAT);
    cr_assert(strstr(fr_errmsg(), "the global model is of config CRC") != NULL, "%s", fr_errmsg());
    memcpy(bad, st, n);
    fri_put_u64(bad + 32, fri_get_u64(bad + 32) + 1000); /* private floats (after one user id) */
    fri_put_u32(bad + n - 4, fr_crc32c(0, bad, n - 4));
    cr_assert_eq(fr_netc_load_bytes(c2, bad, n, "c2.state"), FR_ERR_FORMAT);
    free(bad);
    rows2 = rows_of(c2, 2, &rn2);
    cr_assert(memcmp(rows, rows2, rn) == 0 && fr_netc_round(c2) == 2, "refused states changed the client");
    free(rows2);
    /* a missing file is a fresh client; a file that is not a state is refused */
    fr_netc *fresh = make_client(&w.f, 2);
    bool resumed = true;
    cr_assert_eq(fr_netc_load(fresh, &resumed), FR_OK);
    cr_assert(!resumed && fr_netc_round(fresh) == 0 && fr_netc_model(fresh) == NULL);
    uint8_t *empty = NULL;
    size_t en = 0;
    cr_assert_eq(fr_netc_save_bytes(fresh, &empty, &en), FR_OK);
    cr_assert_eq(fr_netc_load_bytes(fresh, empty, en, "fresh"), FR_OK, "a fresh state loads: %s", fr_errmsg());
    fr_msg_free(empty);
    char *junk = tu_write(w.f.dir, "client-2.state", "not a state");
    free(junk);
    cr_assert_eq(fr_netc_load(fresh, &resumed), FR_ERR_FORMAT);
    cr_assert(strstr(fr_errmsg(), "not a fedrec client state") != NULL, "%s", fr_errmsg());
    fr_netc_free(fresh);
    fr_netc *nopath = NULL;
    cr_assert_eq(fr_netc_create(&nopath, w.f.data[2], NULL, 0, 2, NULL), FR_OK);
    cr_assert_eq(fr_netc_save(nopath), FR_ERR_INVALID);
    cr_assert_eq(fr_netc_load(nopath, NULL), FR_ERR_INVALID);
    fr_netc_free(nopath);
    free(rows);
    fr_msg_free(st);
    world_free(&w);
}

/* st as a version 1 file (before top-k residuals were kept): without the residual's count
 * and values. *n1 gets its size. */
static uint8_t *as_version_1(const uint8_t *st, size_t n, size_t *n1) {
    uint32_t U = fri_get_u32(st + 24);
    size_t at = 28 + 4 * (size_t)U;
    uint64_t np = fri_get_u64(st + at);
    uint32_t kept = fri_get_u32(st + at + 8);
    at += 12 + 4 * np * (kept ? 3 : 1) + (kept ? 8 : 0); /* the residual's count */
    uint64_t nr = fri_get_u64(st + at);
    size_t cut = 8 + 4 * (size_t)nr;
    uint8_t *v1 = malloc(n - cut);
    memcpy(v1, st, at);
    memcpy(v1 + at, st + at + cut, n - at - cut);
    *n1 = n - cut;
    fri_put_u32(v1 + 8, 1);
    fri_put_u32(v1 + *n1 - 4, fr_crc32c(0, v1, *n1 - 4));
    return v1;
}

/* State files are version 2 (the top-k residual after the private rows). A version 1 file
 * is read when the federation keeps no residual, and refused, saying why, when it does. */
Test(netc, version_1_states_are_read_or_refused) {
    for (int topk = 0; topk < 2; topk++) {
        g_topk = topk ? 40 : 0;
        world w;
        world_make(&w, topk == 0);
        fr_netc *c2 = w.f.c[2];
        uint8_t *st = NULL;
        size_t n = 0, n1 = 0;
        cr_assert_eq(fr_netc_save_bytes(c2, &st, &n), FR_OK);
        cr_assert_eq(fri_get_u32(st + 8), 2, "version");
        size_t rn, rn2;
        uint8_t *rows = rows_of(c2, 2, &rn);
        uint8_t *v1 = as_version_1(st, n, &n1);
        cr_assert_eq(n - n1, topk ? 8 + 4 * (size_t)fr_round_shape(w.r)->dense_len : 8);
        fr_netc *fresh = make_client(&w.f, 2);
        fr_err e = fr_netc_load_bytes(fresh, v1, n1, "old.state");
        if (!topk) {
            cr_assert_eq(e, FR_OK, "%s", fr_errmsg());
            uint8_t *rows2 = rows_of(fresh, 2, &rn2);
            cr_assert(memcmp(rows, rows2, rn) == 0 && fr_netc_round(fresh) == 2);
            free(rows2);
        } else {
            cr_assert_eq(e, FR_ERR_VERSION);
            cr_assert(strstr(fr_errmsg(), "old.state: a version 1 client state keeps no top-k residual") != NULL, "%s",
                      fr_errmsg());
            cr_assert_eq(fr_netc_round(fresh), 0, "a refused state changes nothing");
        }
        fr_netc_free(fresh);
        free(v1);
        free(rows);
        fr_msg_free(st);
        world_free(&w);
    }
}

Test(netc, stale_or_damaged_tasks_change_nothing) {
    world w;
    world_make(&w, false);
    fr_netc *c = w.f.c[4];
    /* round 3's TASK, kept; round 3 runs; then the old TASK comes again */
    const uint32_t *ids;
    uint32_t k;
    cr_assert_eq(fr_round_begin(w.r, &ids, &k), FR_OK);
    const uint8_t *tb, *out;
    size_t tn, on;
    cr_assert_eq(fr_round_task(w.r, 4, &tb, &tn), FR_OK);
    uint8_t *old = malloc(tn);
    memcpy(old, tb, tn);
    fr_round_abort(w.r);
    net_round(w.r, &w.f);
    net_round(w.r, &w.f);
    cr_assert_eq(fr_netc_round(c), 4);
    size_t rn, rn2;
    uint8_t *rows = rows_of(c, 4, &rn);
    cr_assert_eq(fr_netc_step(c, old, tn, &out, &on), FR_ERR_STATE);
    cr_assert(strstr(fr_errmsg(), "client 4: a TASK of round 3, but this client has had round 4's (stale)") != NULL,
              "%s", fr_errmsg());
    old[tn / 2] ^= 1;
    cr_assert_eq(fr_netc_step(c, old, tn, &out, &on), FR_ERR_CHECKSUM);
    cr_assert(strncmp(fr_errmsg(), "client 4: ", 10) == 0, "%s", fr_errmsg());
    uint8_t *rows2 = rows_of(c, 4, &rn2);
    cr_assert(memcmp(rows, rows2, rn) == 0 && fr_netc_round(c) == 4);
    free(rows);
    free(rows2);
    free(old);
    /* a client whose data uses more items than the federation's catalogue */
    fr_model_config small = w.mc;
    small.n_items = 10;
    fr_round *r = NULL;
    cr_assert_eq(fr_round_create(&r, &small, &w.cfg, w.f.n, 1), FR_OK);
    cr_assert_eq(fr_round_begin(r, NULL, NULL), FR_OK);
    cr_assert_eq(fr_round_task(r, 5, &tb, &tn), FR_OK);
    fr_netc *x = NULL;
    cr_assert_eq(fr_netc_create(&x, w.f.data[5], NULL, 0, 5, NULL), FR_OK);
    cr_assert_eq(fr_netc_step(x, tb, tn, &out, &on), FR_ERR_INVALID);
    char want[96];
    snprintf(want, sizeof want, "its data has %u items, the federation's catalogue 10", fr_dataset_n_items(w.d));
    cr_assert(strstr(fr_errmsg(), want) != NULL, "%s", fr_errmsg());
    cr_assert(fr_netc_model(x) == NULL && fr_netc_config_crc(x) == 0, "a failed first step joins nothing");
    fr_netc_free(x);
    fr_round_free(r);
    world_free(&w);
}

Test(netc, create_checks_its_users) {
    fr_dataset *d = synthetic();
    fr_netc *c = NULL;
    const uint32_t dup[] = {3, 3}, out[] = {1, 40};
    cr_assert_eq(fr_netc_create(&c, d, dup, 2, 0, NULL), FR_ERR_INVALID);
    cr_assert(strstr(fr_errmsg(), "client 0: user 3 given twice") != NULL, "%s", fr_errmsg());
    cr_assert_eq(fr_netc_create(&c, d, out, 2, 0, NULL), FR_ERR_INVALID);
    cr_assert(strstr(fr_errmsg(), "user 40 out of range, the data has 40 users") != NULL, "%s", fr_errmsg());
    fr_dataset *none = NULL;
    cr_assert_eq(fr_dataset_select_users(&none, d, NULL, 0), FR_OK);
    cr_assert_eq(fr_netc_create(&c, none, NULL, 0, 0, NULL), FR_ERR_EMPTY);
    cr_assert_null(c);
    /* every user with data when none are named, in id order */
    cr_assert_eq(fr_netc_create(&c, d, NULL, 0, 0, NULL), FR_OK);
    cr_assert_eq(fr_netc_n_users(c), 40);
    uint32_t k[3];
    size_t n;
    cr_assert_eq(fr_netc_recommend(c, 0, 3, k, NULL, &n), FR_ERR_STATE, "no global model yet");
    cr_assert_eq(fr_netc_recommend(c, 77, 3, k, NULL, &n), FR_ERR_INVALID);
    fr_netc_free(c);
    fr_dataset_free(none);
    fr_dataset_free(d);
}

/* ------------------------------------------------------------------ scoring */

Test(netc, recommend_is_the_simulators_top_k) {
    for (int kind = 0; kind < 2; kind++) {
        fr_dataset *d = synthetic();
        fr_model_config mc;
        fr_fl_config cfg;
        configs(&mc, &cfg, d, kind ? FR_MODEL_NEUMF : FR_MODEL_MF, true, 0);
        fr_partition *p = silos(d);
        fr_sim *s = NULL;
        cr_assert_eq(fr_sim_create_silos(&s, &mc, &cfg, d, p, NULL), FR_OK);
        fleet f;
        fleet_make(&f, d, p);
        fr_round *r = NULL;
        cr_assert_eq(fr_round_create(&r, &mc, &cfg, f.n, 1), FR_OK);
        for (int i = 0; i < 3; i++) {
            fr_round_stats st;
            cr_assert_eq(fr_sim_round(s, &st), FR_OK);
            net_round(r, &f);
        }
        hand_out_final(r, &f);
        fr_model_scorer *sc = NULL;
        cr_assert_eq(fr_model_scorer_create(&sc, fr_sim_model(s), NULL, NULL, NULL), FR_OK);
        for (uint32_t c = 0; c < f.n; c++)
            for (uint32_t j = 0; j < f.nu[c]; j++) {
                uint32_t u = f.users[c][j], a[12], b[12];
                float as[12], bs[12];
                size_t na, nb;
                cr_assert_eq(fr_eval_topk(fr_model_scorer_fn, sc, d, u, 12, true, a, as, &na), FR_OK);
                cr_assert_eq(fr_netc_recommend(f.c[c], u, 12, b, bs, &nb), FR_OK, "%s", fr_errmsg());
                cr_assert(na == nb && na == 12 && memcmp(a, b, na * sizeof *a) == 0 &&
                              memcmp(as, bs, na * sizeof *as) == 0,
                          "user %u: the top-12 differs from the simulator's", u);
                for (size_t i = 0; i < nb; i++) cr_assert(!fr_dataset_has(d, u, b[i]), "a seen item recommended");
            }
        cr_assert_eq(fr_netc_recommend(f.c[0], 1, 3, (uint32_t[3]){0}, NULL, &(size_t){0}), FR_ERR_INVALID,
                     "user 1 is in silo 1");
        fr_model_scorer_free(sc);
        fr_round_free(r);
        fleet_free(&f);
        silos_free(p);
        fr_sim_free(s);
        fr_dataset_free(d);
    }
}

static bool near(double a, double b) { return fabs(a - b) <= 1e-12 * (fabs(a) + fabs(b)) + 1e-300; }

/* Local evaluation of every client, summed, against the simulator's model evaluated whole. */
static void check_eval(fr_model_kind kind, bool sampled) {
    fr_dataset *all = synthetic(), *train = NULL, *test = NULL;
    cr_assert_eq(fr_dataset_split(all, FR_SPLIT_LOO, 0, 3, &train, &test), FR_OK);
    fr_negatives *negs = NULL;
    if (sampled) cr_assert_eq(fr_negatives_sample(&negs, all, test, 20, 3), FR_OK);
    fr_model_config mc;
    fr_fl_config cfg;
    configs(&mc, &cfg, train, kind, false, 0);
    fr_partition *p = silos(train);
    fr_sim *s = NULL;
    cr_assert_eq(fr_sim_create_silos(&s, &mc, &cfg, train, p, NULL), FR_OK);
    fleet f;
    fleet_make(&f, train, p);
    fr_round *r = NULL;
    cr_assert_eq(fr_round_create(&r, &mc, &cfg, f.n, 1), FR_OK);
    for (int i = 0; i < 2; i++) {
        fr_round_stats st;
        cr_assert_eq(fr_sim_round(s, &st), FR_OK);
        net_round(r, &f);
    }
    hand_out_final(r, &f);
    fr_eval_opts o;
    fr_eval_opts_default(&o);
    fr_dataset_info in;
    fr_dataset_info_compute(train, &in); /* the server's clip range for ratings: the federation's */
    o.clip_lo = (float)in.rating_min;
    o.clip_hi = (float)in.rating_max;
    fr_eval_result want, got;
    cr_assert_eq(fr_model_evaluate(fr_sim_model(s), train, test, negs, &o, NULL, &want), FR_OK, "%s", fr_errmsg());
    fr_eval_sums total;
    fr_eval_sums_init(&total, fr_model_kind_is_explicit(kind) ? FR_EVAL_SUMS_RATING
                              : sampled                      ? FR_EVAL_SUMS_SAMPLED
                                                             : FR_EVAL_SUMS_FULL,
                      &o);
    for (uint32_t c = 0; c < f.n; c++) {
        fr_dataset *ct = NULL;
        cr_assert_eq(fr_dataset_select_users(&ct, test, f.users[c], f.nu[c]), FR_OK);
        fr_eval_sums part;
        cr_assert_eq(fr_netc_evaluate(f.c[c], ct, negs, &o, &part), FR_OK, "%s", fr_errmsg());
        cr_assert_eq(fr_eval_sums_add(&total, &part), FR_OK);
        if (c == 0) { /* another client's test users are refused */
            fr_dataset *other = NULL;
            cr_assert_eq(fr_dataset_select_users(&other, test, f.users[1], f.nu[1]), FR_OK);
            cr_assert_eq(fr_netc_evaluate(f.c[0], other, negs, &o, &part), FR_ERR_INVALID);
            cr_assert(strstr(fr_errmsg(), "not one of its users") != NULL, "%s", fr_errmsg());
            fr_dataset_free(other);
        }
        fr_dataset_free(ct);
    }
    fr_eval_result_init(&got, &o);
    cr_assert_eq(fr_eval_sums_result(&total, &got), FR_OK);
    if (fr_model_kind_is_explicit(kind)) {
        cr_assert(got.ratings == want.ratings && near(got.rmse, want.rmse) && near(got.mae, want.mae) &&
                      near(got.rmse_raw, want.rmse_raw),
                  "rmse %.17g vs %.17g", got.rmse, want.rmse);
    } else if (sampled) {
        cr_assert_eq(got.users_sampled, want.users_sampled);
        for (size_t k = 0; k < o.n_ks; k++)
            cr_assert(near(got.hr[k], want.hr[k]) && near(got.ndcg[k], want.ndcg[k]) && near(got.auc, want.auc),
                      "@%u: hr %.17g vs %.17g, ndcg %.17g vs %.17g", o.ks[k], got.hr[k], want.hr[k], got.ndcg[k],
                      want.ndcg[k]);
    } else {
        cr_assert_eq(got.users_full, want.users_full);
        for (size_t k = 0; k < o.n_ks; k++)
            cr_assert(near(got.hr_full[k], want.hr_full[k]) && near(got.ndcg_full[k], want.ndcg_full[k]) &&
                          near(got.recall_full[k], want.recall_full[k]),
                      "@%u: hr %.17g vs %.17g", o.ks[k], got.hr_full[k], want.hr_full[k]);
    }
    fr_round_free(r);
    fleet_free(&f);
    silos_free(p);
    fr_sim_free(s);
    fr_negatives_free(negs);
    fr_dataset_free(train);
    fr_dataset_free(test);
    fr_dataset_free(all);
}

Test(netc, local_evaluation_sums_give_the_simulators_metrics) {
    check_eval(FR_MODEL_NEUMF, true);
    check_eval(FR_MODEL_NEUMF, false);
    check_eval(FR_MODEL_MF, false);
}

/* The same with the clients stepped and handed the final model on one scratch: they
 * score a copy of the global model they share, with the simulator's floats. */
Test(netc, clients_sharing_a_scratch_recommend_and_evaluate_as_the_simulator) {
    cr_assert_eq(fr_netc_scratch_create(&g_scratch), FR_OK);
    check_eval(FR_MODEL_NEUMF, true);
    check_eval(FR_MODEL_MF, false);
    fr_netc_scratch_free(g_scratch);
    g_scratch = NULL;
}

static fr_model_kind kind_named(const char *name) {
    fr_model_kind k;
    cr_assert_eq(fr_model_kind_parse(name, &k), FR_OK);
    return k;
}

/* Whether 3 rounds of every client give a global model other than the simulator's. */
static bool differs_from_sim(fr_model_kind kind) {
    fr_dataset *d = synthetic();
    fr_model_config mc;
    fr_fl_config cfg;
    configs(&mc, &cfg, d, kind, false, 0);
    fr_sim *s = NULL;
    cr_assert_eq(fr_sim_create_silos(&s, &mc, &cfg, d, NULL, NULL), FR_OK, "%s", fr_errmsg());
    fleet f;
    fleet_make(&f, d, NULL);
    fr_round *r = NULL;
    cr_assert_eq(fr_round_create(&r, &mc, &cfg, f.n, 1), FR_OK);
    for (int i = 0; i < 3; i++) {
        fr_round_stats st;
        cr_assert_eq(fr_sim_round(s, &st), FR_OK, "%s", fr_errmsg());
        net_round(r, &f);
    }
    bool differs = memcmp(fr_model_params_const(fr_round_model(r)), fr_model_params_const(fr_sim_model(s)),
                          fr_model_n_shared(fr_sim_model(s)) * sizeof(float)) != 0;
    fr_round_free(r);
    fleet_free(&f);
    fr_sim_free(s);
    fr_dataset_free(d);
    return differs;
}

/* lightfm and fm with user and item features: each client given only its own users'
 * feature lists (the TASK has none) trains the simulator's model bit for bit, alone or
 * sharing a scratch, across restarts, and evaluates as the simulator; without its lists
 * the model differs (the lists matter). */
Test(netc, hybrid_clients_with_their_own_user_features_equal_the_simulator) {
    fr_dataset *d = synthetic();
    g_feat = side_features(d);
    check_equals_sim(kind_named("lightfm"), false, false, 0, 3, false);
    check_equals_sim(kind_named("lightfm"), true, false, 0.5, 3, true);
    check_equals_sim(kind_named("fm"), false, false, 0.5, 3, false);
    check_eval(kind_named("lightfm"), true);
    cr_assert_eq(fr_netc_scratch_create(&g_scratch), FR_OK);
    check_equals_sim(kind_named("lightfm"), false, false, 0, 3, false);
    check_equals_sim(kind_named("fm"), true, false, 0, 2, false);
    fr_netc_scratch_free(g_scratch);
    g_scratch = NULL;
    g_feat_withheld = true;
    cr_assert_eq(differs_from_sim(kind_named("lightfm")), true, "withheld user features gave the simulator's model");
    fr_features_free(g_feat);
    g_feat = NULL;
    fr_dataset_free(d);
}

/* ------------------------------------------------------------------ pieces */

Test(netc, a_users_initial_row_alone_is_fr_model_creates) {
    const fr_model_kind kinds[] = {FR_MODEL_MF, FR_MODEL_BPR, FR_MODEL_GMF, FR_MODEL_MLP, FR_MODEL_NEUMF};
    for (size_t ki = 0; ki < sizeof kinds / sizeof *kinds; ki++) {
        fr_model_config mc;
        fr_model_config_default(&mc, kinds[ki]);
        mc.n_users = 300;
        mc.n_items = 20;
        mc.seed = 77;
        fr_model *full = NULL, *one = NULL;
        cr_assert_eq(fr_model_create(&full, &mc), FR_OK);
        mc.n_users = 1;
        cr_assert_eq(fr_model_create(&one, &mc), FR_OK);
        int tables = 0;
        float row[256];
        for (int t = 0; t < fr_model_n_tensors(full); t++) {
            const fr_tensor *tt = fr_model_tensor(full, t);
            if (tt->kind != FR_TENSOR_USER_TABLE) continue;
            tables++;
            cr_assert(tt->cols <= 256);
            bool nonzero = false;
            for (uint32_t u = 0; u < 300; u++) {
                fri_model_user_row_init(one, t, u, row);
                const float *want = fr_model_params_const(full) + tt->offset + (size_t)u * tt->cols;
                cr_assert(memcmp(row, want, tt->cols * sizeof *row) == 0, "%s: user %u table %s",
                          fr_model_kind_name(kinds[ki]), u, tt->name);
                for (uint32_t i = 0; i < tt->cols; i++) nonzero |= row[i] != 0;
            }
            cr_assert(nonzero || strstr(tt->name, "bias") != NULL, "%s: a table of zeros", tt->name);
        }
        cr_assert(tables >= 1);
        fr_model_free(full);
        fr_model_free(one);
    }
}

Test(netc, select_users_keeps_ids_and_order) {
    fr_dataset *d = synthetic();
    const uint32_t pick[] = {17, 2, 39};
    fr_dataset *s = NULL;
    cr_assert_eq(fr_dataset_select_users(&s, d, pick, 3), FR_OK);
    cr_assert(fr_dataset_n_users(s) == fr_dataset_n_users(d) && fr_dataset_n_items(s) == fr_dataset_n_items(d));
    uint64_t n = 0;
    for (uint32_t u = 0; u < fr_dataset_n_users(d); u++) {
        const uint32_t *a, *b;
        const float *ra, *rb;
        const int64_t *ta, *tb;
        size_t na = fr_dataset_user(d, u, &a, &ra, &ta), nb = fr_dataset_user(s, u, &b, &rb, &tb);
        bool picked = u == 17 || u == 2 || u == 39;
        cr_assert_eq(nb, picked ? na : 0);
        if (picked)
            cr_assert(memcmp(a, b, na * 4) == 0 && memcmp(ra, rb, na * 4) == 0 && memcmp(ta, tb, na * 8) == 0);
        for (size_t i = 0; i < nb; i++) cr_assert(fr_dataset_has(s, u, b[i]));
        n += nb;
    }
    cr_assert_eq(fr_dataset_n_interactions(s), n);
    cr_assert_eq(fr_idmap_raw(fr_dataset_users(s), 17), fr_idmap_raw(fr_dataset_users(d), 17));
    fr_dataset_free(s);
    const uint32_t twice[] = {1, 1}, out[] = {40};
    cr_assert_eq(fr_dataset_select_users(&s, d, twice, 2), FR_ERR_INVALID);
    cr_assert_eq(fr_dataset_select_users(&s, d, out, 1), FR_ERR_RANGE);
    cr_assert_null(s);
    fr_dataset_free(d);
}

Test(netc, allocation_failure_sweep) {
    fr_dataset *d = synthetic();
    fr_model_config mc;
    fr_fl_config cfg;
    configs(&mc, &cfg, d, FR_MODEL_NEUMF, true, 0);
    const uint32_t users[] = {9, 3, 21};
    fr_dataset *cd = NULL;
    cr_assert_eq(fr_dataset_select_users(&cd, d, users, 3), FR_OK);
    fr_round *r = NULL;
    cr_assert_eq(fr_round_create(&r, &mc, &cfg, 5, 1), FR_OK);
    const uint32_t avail[] = {1, 4};
    cr_assert_eq(fr_round_begin_among(r, avail, 2, 0.0, NULL, NULL), FR_OK);
    const uint8_t *tb;
    size_t tn;
    cr_assert_eq(fr_round_task(r, 4, &tb, &tn), FR_OK);
    bool done = false;
    for (long k = 1; k < 5000 && !done; k++) {
        fr_test_fail_alloc(k, false);
        fr_netc *c = NULL;
        uint8_t *st = NULL;
        size_t sn = 0, on = 0;
        const uint8_t *out = NULL;
        fr_eval_sums sums;
        uint32_t top[5];
        size_t nt;
        fr_err e = fr_netc_create(&c, cd, users, 3, 4, NULL);
        if (!e) {
            e = fr_netc_step(c, tb, tn, &out, &on);
            cr_assert(e == FR_OK || fr_netc_round(c) == 0, "a failed step joined or advanced");
        }
        if (!e) e = fr_netc_save_bytes(c, &st, &sn);
        if (!e) e = fr_netc_load_bytes(c, st, sn, "s");
        if (!e) e = fr_netc_recommend(c, 21, 5, top, NULL, &nt);
        if (!e) e = fr_netc_evaluate(c, cd, NULL, NULL, &sums);
        fr_test_fail_alloc(0, false);
        cr_assert(e == FR_OK || e == FR_ERR_NOMEM, "k=%ld: %s: %s", k, fr_strerror(e), fr_errmsg());
        if (e == FR_OK) done = true;
        fr_msg_free(st);
        fr_netc_free(c);
    }
    cr_assert(done);
    fr_round_free(r);
    fr_dataset_free(cd);
    fr_dataset_free(d);
}
