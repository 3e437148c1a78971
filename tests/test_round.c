/* The round controller and the client step, driven by hand as a network server or an
 * MPI rank would drive them:
 *   - a plain loop over begin / task / step (bytes to bytes) / submit / end gives a model
 *     file bit-identical to the simulator's;
 *   - a late, duplicate, foreign, unknown or damaged RESULT is refused with a message
 *     saying which and leaves the round as if it never came;
 *   - a round below the quorum applies nothing and is retried with the same clients;
 *   - lanes, arrival order and merging controllers do not change a bit, nor do sums folded
 *     and added across controllers as the MPI runtime adds them;
 *   - save / load between rounds resumes exactly; damaged or foreign state is refused;
 *   - sampling among given clients: with every id and no over-selection it is
 *     fr_round_begin's sample (and TASK) for many seeds, sizes and rounds; over-selection
 *     samples more and takes only the target's results, the rest refused as late;
 *     merge and save / load keep working with it;
 *   - TASK decoding: truncations, byte flips and body checks;
 *   - an allocation-failure sweep over a whole round. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/core.h"
#include "fedrec/fl.h"
#include "fedrec/runtime.h"
#include "fl/fl_internal.h"
#include "testutil.h"

static fr_dataset *synthetic(void) { return tu_generate(50, 70, 1200, 5); }

static void configs(fr_model_config *mc, fr_fl_config *cfg, const fr_dataset *d) {
    fr_model_config_default(mc, FR_MODEL_NEUMF);
    fr_fl_config_default(cfg, FR_MODEL_NEUMF);
    cfg->seed = 7;
    cfg->strategy = FR_STRATEGY_FEDADAM;
    cfg->server_lr = 0.01f;
    cfg->clients_per_round = 0.5;
    cfg->availability = 0.9;
    cfg->local_epochs = 2;
    cfg->batch = 16;
    cfg->row_norm = true;
    mc->n_users = fr_dataset_n_users(d);
    mc->n_items = fr_dataset_n_items(d);
    mc->seed = cfg->seed; /* as the sim does */
}

/* The client-state store by hand: a model with every user's private rows. */
typedef struct store {
    fr_model *full;
    float *rows[2];
    const fr_dataset *d;
} store;

/* Client c's data and private rows (a client per user). Returns its interactions. */
static size_t client_of(store *s, uint32_t c, fr_client_data *cd, fr_client_private *priv) {
    const uint32_t *items;
    const float *ratings;
    size_t n = fr_dataset_user(s->d, c, &items, &ratings, NULL);
    *cd = (fr_client_data){c, items, ratings, n, fr_dataset_n_items(s->d), 0, NULL};
    int k = 0;
    for (int t = 0; t < fr_model_n_tensors(s->full); t++) {
        const fr_tensor *tt = fr_model_tensor(s->full, t);
        if (tt->kind == FR_TENSOR_USER_TABLE) s->rows[k++] = fr_model_params(s->full) + tt->offset + (size_t)c * tt->cols;
    }
    *priv = (fr_client_private){s->rows, NULL, NULL, NULL};
    return n;
}

/* One round by hand: every sampled client with data gets the TASK bytes, steps bytes to
 * bytes, and its RESULT bytes are submitted (in reverse id order, to lanes by parity). */
static void round_by_hand(fr_round *r, fr_client_ws *ws, store *s, fr_round_stats *st) {
    const uint32_t *ids;
    uint32_t k;
    cr_assert_eq(fr_round_begin(r, &ids, &k), FR_OK, "%s", fr_errmsg());
    for (uint32_t i = k; i-- > 0;) {
        fr_client_data cd;
        fr_client_private priv;
        if (!client_of(s, ids[i], &cd, &priv)) continue;
        const uint8_t *task, *out;
        size_t tn, on;
        cr_assert_eq(fr_round_task(r, ids[i], &task, &tn), FR_OK, "%s", fr_errmsg());
        cr_assert_eq(fr_client_step_bytes(ws, task, tn, ids[i], &cd, &priv, &out, &on), FR_OK, "%s", fr_errmsg());
        cr_assert_eq(fr_round_submit(r, out, on, (int)(ids[i] % 2)), FR_OK, "%s", fr_errmsg());
    }
    cr_assert_eq(fr_round_end(r, st), FR_OK, "%s", fr_errmsg());
}

static uint8_t *model_bytes(fr_model *m, size_t *n) {
    uint8_t *b = NULL;
    fr_model_meta meta = {0};
    cr_assert_eq(fr_model_encode(m, &meta, &b, n), FR_OK);
    return b;
}

static uint8_t *sim_bytes(const fr_dataset *d, int rounds, size_t *n) {
    fr_model_config mc;
    fr_fl_config cfg;
    configs(&mc, &cfg, d);
    fr_pool *pool = NULL;
    cr_assert_eq(fr_pool_create(&pool, 2), FR_OK);
    fr_sim *s = NULL;
    cr_assert_eq(fr_sim_create(&s, &mc, &cfg, d, pool), FR_OK);
    for (int i = 0; i < rounds; i++) {
        fr_round_stats st;
        cr_assert_eq(fr_sim_round(s, &st), FR_OK, "%s", fr_errmsg());
    }
    uint8_t *b = model_bytes(fr_sim_model(s), n);
    fr_sim_free(s);
    fr_pool_free(pool);
    return b;
}

Test(round, by_hand_equals_the_simulator_bit_for_bit) {
    fr_dataset *d = synthetic();
    fr_model_config mc;
    fr_fl_config cfg;
    configs(&mc, &cfg, d);
    store s = {NULL, {NULL, NULL}, d};
    cr_assert_eq(fr_model_create(&s.full, &mc), FR_OK);
    fr_round *r = NULL;
    cr_assert_eq(fr_round_create(&r, &mc, &cfg, fr_dataset_n_users(d), 2), FR_OK);
    /* a client makes its workspace from the first TASK it receives */
    cr_assert_eq(fr_round_begin(r, NULL, NULL), FR_OK);
    fr_task *t = NULL;
    const uint8_t *tb;
    size_t tn;
    const uint32_t *ids;
    uint32_t k;
    fr_round_abort(r);
    cr_assert_eq(fr_round_begin(r, &ids, &k), FR_OK);
    cr_assert_eq(fr_round_task(r, ids[0], &tb, &tn), FR_OK);
    cr_assert_eq(fr_task_create(&t), FR_OK);
    cr_assert_eq(fr_task_decode(t, tb, tn), FR_OK, "%s", fr_errmsg());
    cr_assert_eq(fr_task_round(t), 1);
    cr_assert_eq(fr_task_config_crc(t), fr_round_config_crc(r));
    fr_client_ws *ws = NULL;
    cr_assert_eq(fr_client_ws_create(&ws, fr_task_model_config(t), fr_task_fl_config(t)), FR_OK);
    fr_round_abort(r);
    uint64_t down = 0, up = 0;
    for (int i = 0; i < 4; i++) {
        fr_round_stats st;
        round_by_hand(r, ws, &s, &st);
        cr_assert_eq(st.round, (uint32_t)i + 1);
        cr_assert(st.clients > 0 && st.clients <= st.sampled && isfinite(st.loss));
        cr_assert_eq(st.bytes_down, (uint64_t)st.clients * tn, "every client that stepped got the whole TASK");
        down += st.bytes_down;
        up += st.bytes_up;
    }
    cr_assert(up > 0 && down > 0);
    cr_assert_eq(fr_round_completed(r), 4);
    fr_model_set_shared(s.full, fr_model_params_const(fr_round_model(r)));
    size_t n1, n2;
    uint8_t *a = model_bytes(s.full, &n1), *b = sim_bytes(d, 4, &n2);
    cr_assert(n1 == n2 && memcmp(a, b, n1) == 0, "by hand vs fr_sim");
    fr_model_bytes_free(a);
    fr_model_bytes_free(b);
    fr_task_free(t);
    fr_client_ws_free(ws);
    fr_round_free(r);
    fr_model_free(s.full);
    fr_dataset_free(d);
}

/* ------------------------------------------------------------------ refusals */

/* A result of client c for the open round of r (stepped on its TASK), as bytes. */
static uint8_t *result_of(fr_round *r, fr_client_ws *ws, store *s, uint32_t c, size_t *n) {
    fr_client_data cd;
    fr_client_private priv;
    float keep[2][64];
    cr_assert(client_of(s, c, &cd, &priv) > 0);
    /* the private rows are restored: the refusal tests step clients more than once */
    memcpy(keep[0], priv.rows[0], 8 * 4);
    memcpy(keep[1], priv.rows[1], 32 * 4);
    const uint8_t *task, *out;
    size_t tn, on;
    cr_assert_eq(fr_round_task(r, c, &task, &tn), FR_OK, "%s", fr_errmsg());
    cr_assert_eq(fr_client_step_bytes(ws, task, tn, c, &cd, &priv, &out, &on), FR_OK, "%s", fr_errmsg());
    memcpy(priv.rows[0], keep[0], 8 * 4);
    memcpy(priv.rows[1], keep[1], 32 * 4);
    uint8_t *b = malloc(on);
    memcpy(b, out, on);
    *n = on;
    return b;
}

static uint8_t *global_bytes(const fr_round *r, size_t *n) {
    *n = fr_model_n_shared(fr_round_model(r)) * sizeof(float);
    uint8_t *b = malloc(*n);
    memcpy(b, fr_model_params_const(fr_round_model(r)), *n);
    return b;
}

Test(round, refused_results_change_nothing) {
    fr_dataset *d = synthetic();
    fr_model_config mc;
    fr_fl_config cfg;
    configs(&mc, &cfg, d);
    cfg.clients_per_round = 0;
    cfg.availability = 1;
    store s = {NULL, {NULL, NULL}, d};
    cr_assert_eq(fr_model_create(&s.full, &mc), FR_OK);
    fr_round *r = NULL, *ref = NULL, *other = NULL;
    cr_assert_eq(fr_round_create(&r, &mc, &cfg, 3, 1), FR_OK);   /* clients 0, 1, 2 */
    cr_assert_eq(fr_round_create(&ref, &mc, &cfg, 3, 1), FR_OK);
    fr_fl_config oc = cfg;
    oc.batch = 8; /* another federation */
    cr_assert_eq(fr_round_create(&other, &mc, &oc, 3, 1), FR_OK);
    fr_client_ws *ws = NULL, *wo = NULL;
    cr_assert_eq(fr_client_ws_create(&ws, &mc, &cfg), FR_OK);
    cr_assert_eq(fr_client_ws_create(&wo, &mc, &oc), FR_OK);
    /* round 1 in both: r also gets a stale result kept for later */
    cr_assert_eq(fr_round_begin(r, NULL, NULL), FR_OK);
    cr_assert_eq(fr_round_begin(ref, NULL, NULL), FR_OK);
    size_t n0, n1, stale_n;
    uint8_t *r0 = result_of(r, ws, &s, 0, &n0), *stale = result_of(r, ws, &s, 1, &stale_n);
    cr_assert_eq(fr_round_submit(r, r0, n0, 0), FR_OK);
    cr_assert_eq(fr_round_submit(ref, r0, n0, 0), FR_OK);
    free(r0);
    cr_assert_eq(fr_round_end(r, NULL), FR_OK);
    cr_assert_eq(fr_round_end(ref, NULL), FR_OK);
    /* round 2: the good results, and every kind of bad one into r only */
    cr_assert_eq(fr_round_begin(r, NULL, NULL), FR_OK);
    cr_assert_eq(fr_round_begin(ref, NULL, NULL), FR_OK);
    uint8_t *g0 = result_of(r, ws, &s, 0, &n0), *g1 = result_of(r, ws, &s, 2, &n1);
    cr_assert_eq(fr_round_submit(r, g0, n0, 0), FR_OK);
    cr_assert_eq(fr_round_submit(ref, g0, n0, 0), FR_OK);
    /* late: client 1's result of round 1 */
    cr_assert_eq(fr_round_submit(r, stale, stale_n, 0), FR_ERR_STATE);
    cr_assert(strstr(fr_errmsg(), "client 1 for round 1 refused: the open round is 2 (late)") != NULL, "%s", fr_errmsg());
    /* duplicate */
    cr_assert_eq(fr_round_submit(r, g0, n0, 0), FR_ERR_INVALID);
    cr_assert(strstr(fr_errmsg(), "a duplicate") != NULL, "%s", fr_errmsg());
    /* foreign: another federation's result for the same round and client */
    cr_assert_eq(fr_round_begin(other, NULL, NULL), FR_OK);
    cr_assert_eq(fr_round_end(other, NULL), FR_OK);
    cr_assert_eq(fr_round_begin(other, NULL, NULL), FR_OK);
    size_t fn;
    uint8_t *foreign = result_of(other, wo, &s, 1, &fn);
    cr_assert_eq(fr_round_submit(r, foreign, fn, 0), FR_ERR_INVALID);
    cr_assert(strstr(fr_errmsg(), "another federation") != NULL, "%s", fr_errmsg());
    /* a TASK of another federation is refused by the client too */
    const uint8_t *otask;
    size_t otn;
    cr_assert_eq(fr_round_task(other, 1, &otask, &otn), FR_OK);
    fr_client_data cd;
    fr_client_private priv;
    client_of(&s, 1, &cd, &priv);
    const uint8_t *out;
    size_t on;
    cr_assert_eq(fr_client_step_bytes(ws, otask, otn, 1, &cd, &priv, &out, &on), FR_ERR_INVALID);
    cr_assert(strstr(fr_errmsg(), "the TASK is of another federation") != NULL, "%s", fr_errmsg());
    /* unknown: a client the round did not sample (re-labelled: resealed so only that differs) */
    uint8_t *unknown = malloc(n1);
    memcpy(unknown, g1, n1);
    fri_put_u32(unknown + 24, 7);
    fri_put_u32(unknown + 16, fr_crc32c(0, unknown + 24, n1 - 24));
    cr_assert_eq(fr_round_submit(r, unknown, n1, 0), FR_ERR_INVALID);
    cr_assert(strstr(fr_errmsg(), "client 7 refused: the client was not sampled in round 2") != NULL, "%s",
              fr_errmsg());
    /* damaged */
    uint8_t *damaged = malloc(n1);
    memcpy(damaged, g1, n1);
    damaged[n1 / 2] ^= 0x20;
    cr_assert_eq(fr_round_submit(r, damaged, n1, 0), FR_ERR_CHECKSUM);
    cr_assert(strstr(fr_errmsg(), "RESULT: damaged") != NULL, "%s", fr_errmsg());
    /* a TASK for an unsampled client, a lane out of range */
    cr_assert_eq(fr_round_task(r, 9, &otask, &otn), FR_ERR_INVALID);
    cr_assert_eq(fr_round_submit(r, g1, n1, 1), FR_ERR_INVALID);
    cr_assert_eq(fr_round_results(r), 1);
    /* then the good one; r and ref must now agree to the bit */
    cr_assert_eq(fr_round_submit(r, g1, n1, 0), FR_OK);
    cr_assert_eq(fr_round_submit(ref, g1, n1, 0), FR_OK);
    fr_round_stats sr, sf;
    cr_assert_eq(fr_round_end(r, &sr), FR_OK);
    cr_assert_eq(fr_round_end(ref, &sf), FR_OK);
    cr_assert_eq(sr.clients, 2);
    cr_assert(sr.loss == sf.loss && sr.bytes_up == sf.bytes_up && sr.examples == sf.examples);
    size_t na, nb;
    uint8_t *a = global_bytes(r, &na), *b = global_bytes(ref, &nb);
    cr_assert(na == nb && memcmp(a, b, na) == 0, "a refused result changed the model");
    /* no round open: nothing is taken */
    cr_assert_eq(fr_round_submit(r, g1, n1, 0), FR_ERR_STATE);
    cr_assert_eq(fr_round_end(r, NULL), FR_ERR_STATE);
    cr_assert_eq(fr_round_task(r, 0, &otask, &otn), FR_ERR_STATE);
    free(a); free(b); free(g0); free(g1); free(stale); free(foreign); free(unknown); free(damaged);
    fr_client_ws_free(ws);
    fr_client_ws_free(wo);
    fr_round_free(r);
    fr_round_free(ref);
    fr_round_free(other);
    fr_model_free(s.full);
    fr_dataset_free(d);
}

Test(round, below_quorum_applies_nothing_and_retries) {
    fr_dataset *d = synthetic();
    fr_model_config mc;
    fr_fl_config cfg;
    configs(&mc, &cfg, d);
    cfg.clients_per_round = 4;
    cfg.availability = 1;
    cfg.min_results = 3;
    store s = {NULL, {NULL, NULL}, d};
    cr_assert_eq(fr_model_create(&s.full, &mc), FR_OK);
    fr_round *r = NULL;
    cr_assert_eq(fr_round_create(&r, &mc, &cfg, 2, 1), FR_ERR_INVALID, "a quorum no federation can reach");
    cr_assert(strstr(fr_errmsg(), "a quorum of 3 results, but the federation has 2 clients") != NULL, "%s",
              fr_errmsg());
    cr_assert_eq(fr_round_create(&r, &mc, &cfg, fr_dataset_n_users(d), 1), FR_OK);
    fr_client_ws *ws = NULL;
    cr_assert_eq(fr_client_ws_create(&ws, &mc, &cfg), FR_OK);
    const uint32_t *ids;
    uint32_t k, first[4];
    cr_assert_eq(fr_round_begin(r, &ids, &k), FR_OK);
    cr_assert_eq(k, 4);
    memcpy(first, ids, sizeof first);
    cr_assert_eq(fr_round_begin(r, NULL, NULL), FR_ERR_STATE);
    size_t n0, n1;
    uint8_t *a0 = result_of(r, ws, &s, ids[0], &n0), *a1 = result_of(r, ws, &s, ids[1], &n1);
    cr_assert_eq(fr_round_submit(r, a0, n0, 0), FR_OK);
    cr_assert_eq(fr_round_submit(r, a1, n1, 0), FR_OK);
    size_t nw;
    uint8_t *before = global_bytes(r, &nw);
    fr_round_stats st;
    cr_assert_eq(fr_round_end(r, &st), FR_ERR_EMPTY);
    cr_assert(strstr(fr_errmsg(), "round 1: 2 results of 4 sampled clients, the quorum is 3: nothing applied") != NULL,
              "%s", fr_errmsg());
    cr_assert_eq(st.clients, 2);
    cr_assert_eq(fr_round_completed(r), 0);
    cr_assert(!fr_round_is_open(r));
    size_t nw2;
    uint8_t *after = global_bytes(r, &nw2);
    cr_assert(memcmp(before, after, nw) == 0, "a round below quorum changed the model");
    /* the retry samples the same clients; with enough results it applies */
    cr_assert_eq(fr_round_begin(r, &ids, &k), FR_OK);
    cr_assert(k == 4 && memcmp(ids, first, sizeof first) == 0);
    for (int i = 0; i < 3; i++) {
        size_t n;
        uint8_t *b = result_of(r, ws, &s, ids[i], &n);
        cr_assert_eq(fr_round_submit(r, b, n, 0), FR_OK, "%s", fr_errmsg());
        free(b);
    }
    cr_assert_eq(fr_round_end(r, &st), FR_OK);
    cr_assert_eq(fr_round_completed(r), 1);
    free(a0); free(a1); free(before); free(after);
    fr_client_ws_free(ws);
    fr_round_free(r);
    fr_model_free(s.full);
    fr_dataset_free(d);
}

/* ------------------------------------------------------------------ lanes, order, merge */

Test(round, merging_controllers_equals_one) {
    fr_dataset *d = synthetic();
    fr_model_config mc;
    fr_fl_config cfg;
    configs(&mc, &cfg, d);
    store s = {NULL, {NULL, NULL}, d};
    cr_assert_eq(fr_model_create(&s.full, &mc), FR_OK);
    uint32_t nc = fr_dataset_n_users(d);
    fr_round *one = NULL, *a = NULL, *b = NULL;
    cr_assert_eq(fr_round_create(&one, &mc, &cfg, nc, 1), FR_OK);
    cr_assert_eq(fr_round_create(&a, &mc, &cfg, nc, 3), FR_OK); /* lane counts do not matter either */
    cr_assert_eq(fr_round_create(&b, &mc, &cfg, nc, 2), FR_OK);
    fr_client_ws *ws = NULL;
    cr_assert_eq(fr_client_ws_create(&ws, &mc, &cfg), FR_OK);
    for (int round = 0; round < 3; round++) {
        const uint32_t *ids;
        uint32_t k;
        cr_assert_eq(fr_round_begin(one, &ids, &k), FR_OK);
        cr_assert_eq(fr_round_begin(a, NULL, NULL), FR_OK);
        cr_assert_eq(fr_round_begin(b, NULL, NULL), FR_OK);
        /* results in id order into `one`; the same bytes split by parity into a and b,
         * in reverse order, over their lanes */
        uint8_t *msg[64];
        size_t len[64];
        cr_assert(k <= 64);
        for (uint32_t i = 0; i < k; i++) {
            fr_client_data cd;
            fr_client_private priv;
            msg[i] = NULL;
            if (!client_of(&s, ids[i], &cd, &priv)) continue;
            msg[i] = result_of(one, ws, &s, ids[i], &len[i]);
            cr_assert_eq(fr_round_submit(one, msg[i], len[i], 0), FR_OK);
        }
        uint32_t in_a = 0, in_b = 0;
        for (uint32_t i = k; i-- > 0;) {
            if (!msg[i]) continue;
            fr_round *to = i % 2 ? a : b;
            cr_assert_eq(fr_round_submit(to, msg[i], len[i], (int)(i % (i % 2 ? 3 : 2))), FR_OK, "%s", fr_errmsg());
            /* counted in its lane (every sampled client fits the target): the sum over the lanes */
            *(i % 2 ? &in_a : &in_b) += 1;
            cr_assert_eq(fr_round_results(a), in_a);
            cr_assert_eq(fr_round_results(b), in_b);
            /* the same result again, in another lane of its controller: refused, not counted */
            cr_assert_eq(fr_round_submit(to, msg[i], len[i], (int)((i + 1) % 2)), FR_ERR_INVALID);
            cr_assert(strstr(fr_errmsg(), "a duplicate") != NULL, "%s", fr_errmsg());
            cr_assert_eq(fr_round_results(to), i % 2 ? in_a : in_b);
        }
        cr_assert_eq(fr_round_results(one), in_a + in_b);
        cr_assert_eq(fr_round_merge(a, b), FR_OK, "%s", fr_errmsg());
        cr_assert_eq(fr_round_results(a), in_a + in_b, "a merge adds the other controller's lanes' counts");
        cr_assert_eq(fr_round_merge(a, b), FR_ERR_INVALID, "merging twice counts clients twice");
        fr_round_stats s1, s2;
        cr_assert_eq(fr_round_end(one, &s1), FR_OK);
        cr_assert_eq(fr_round_end(a, &s2), FR_OK);
        fr_round_abort(b);
        cr_assert(s1.clients == s2.clients && s1.loss == s2.loss && s1.bytes_up == s2.bytes_up);
        /* b follows a's model for the next round (a merge is within one round) */
        uint8_t *st = NULL;
        size_t sn;
        cr_assert_eq(fr_round_save(a, &st, &sn), FR_OK);
        cr_assert_eq(fr_round_load(b, st, sn, "a"), FR_OK);
        fr_msg_free(st);
        size_t n1, n2;
        uint8_t *w1 = global_bytes(one, &n1), *w2 = global_bytes(a, &n2);
        cr_assert(memcmp(w1, w2, n1) == 0, "round %d: merged controllers differ from one", round + 1);
        free(w1); free(w2);
        for (uint32_t i = 0; i < k; i++) free(msg[i]);
    }
    fr_client_ws_free(ws);
    fr_round_free(one);
    fr_round_free(a);
    fr_round_free(b);
    fr_model_free(s.full);
    fr_dataset_free(d);
}

/* Two controllers as two MPI ranks would hold them: each takes its share of the results,
 * folds its lanes (fri_round_fold), the arrays are added by hand as MPI_Allreduce would add
 * them (integers modulo 2^64, doubles, status bits OR-ed) into both, and both end the
 * round: each holds the model and figures of one controller that took every result, round
 * after round, with no state passed between them. */
Test(round, folded_sums_across_processes_equal_one) {
    fr_dataset *d = synthetic();
    fr_model_config mc;
    fr_fl_config cfg;
    configs(&mc, &cfg, d);
    store s = {NULL, {NULL, NULL}, d};
    cr_assert_eq(fr_model_create(&s.full, &mc), FR_OK);
    uint32_t nc = fr_dataset_n_users(d);
    fr_round *one = NULL, *rk[2] = {NULL, NULL};
    cr_assert_eq(fr_round_create(&one, &mc, &cfg, nc, 1), FR_OK);
    cr_assert_eq(fr_round_create(&rk[0], &mc, &cfg, nc, 3), FR_OK);
    cr_assert_eq(fr_round_create(&rk[1], &mc, &cfg, nc, 2), FR_OK);
    fr_client_ws *ws = NULL;
    cr_assert_eq(fr_client_ws_create(&ws, &mc, &cfg), FR_OK);
    for (int round = 0; round < 3; round++) {
        const uint32_t *ids;
        uint32_t k;
        cr_assert_eq(fr_round_begin(one, &ids, &k), FR_OK);
        cr_assert_eq(fr_round_begin(rk[0], NULL, NULL), FR_OK);
        cr_assert_eq(fr_round_begin(rk[1], NULL, NULL), FR_OK);
        cr_assert(k <= 64);
        for (uint32_t i = 0; i < k; i++) {
            fr_client_data cd;
            fr_client_private priv;
            if (!client_of(&s, ids[i], &cd, &priv)) continue;
            size_t n;
            uint8_t *msg = result_of(one, ws, &s, ids[i], &n);
            cr_assert_eq(fr_round_submit(one, msg, n, 0), FR_OK);
            fr_round *to = rk[ids[i] % 2]; /* the share rule: client c on rank c % 2 */
            const uint8_t *task;
            size_t tn;
            cr_assert_eq(fr_round_task(to, ids[i], &task, &tn), FR_OK);
            cr_assert_eq(fr_round_submit(to, msg, n, (int)(i % 2)), FR_OK, "%s", fr_errmsg());
            free(msg);
        }
        fri_round_sums f[2];
        uint8_t st0[64], st1[64];
        for (int r = 0; r < 2; r++) cr_assert_eq(fri_round_fold(rk[r], &f[r]), FR_OK, "%s", fr_errmsg());
        cr_assert(f[0].k == k && f[1].k == k && f[0].n_shared == f[1].n_shared && f[0].n_roww == f[1].n_roww);
        cr_assert(f[0].roww != NULL, "row_norm: the row weights are reduced too");
        for (size_t i = 0; i < f[0].n_shared; i++)
            f[0].acc[i] = f[1].acc[i] = (int64_t)((uint64_t)f[0].acc[i] + (uint64_t)f[1].acc[i]);
        for (size_t i = 0; i < f[0].n_roww; i++) f[0].roww[i] = f[1].roww[i] = f[0].roww[i] + f[1].roww[i];
        *f[0].wsum = *f[1].wsum = *f[0].wsum + *f[1].wsum;
        for (uint32_t i = 0; i < k; i++) {
            f[0].loss[i] = f[1].loss[i] = f[0].loss[i] + f[1].loss[i];
            f[0].examples[i] = f[1].examples[i] = f[0].examples[i] + f[1].examples[i];
            f[0].up[i] = f[1].up[i] = f[0].up[i] + f[1].up[i];
        }
        fri_round_status_get(rk[0], st0);
        fri_round_status_get(rk[1], st1);
        for (uint32_t i = 0; i < k; i++) st0[i] |= st1[i];
        for (int r = 0; r < 2; r++) cr_assert_eq(fri_round_status_set(rk[r], st0), FR_OK, "%s", fr_errmsg());
        fr_round_stats s1, s2[2];
        cr_assert_eq(fr_round_end(one, &s1), FR_OK);
        size_t n1, n2;
        uint8_t *w1 = global_bytes(one, &n1);
        for (int r = 0; r < 2; r++) {
            cr_assert_eq(fr_round_end(rk[r], &s2[r]), FR_OK);
            cr_assert(s1.clients == s2[r].clients && s1.loss == s2[r].loss && s1.bytes_up == s2[r].bytes_up &&
                      s1.bytes_down == s2[r].bytes_down && s1.examples == s2[r].examples,
                      "round %d: the figures of rank %d differ from one controller's", round + 1, r);
            uint8_t *w2 = global_bytes(rk[r], &n2);
            cr_assert(n1 == n2 && memcmp(w1, w2, n1) == 0, "round %d: rank %d's model differs", round + 1, r);
            free(w2);
        }
        free(w1);
    }
    /* more answers across processes than the round takes (over-selection: it samples
     * more than its target) are refused */
    uint32_t avail[64];
    cr_assert(nc <= 64);
    for (uint32_t i = 0; i < nc; i++) avail[i] = i;
    uint32_t k;
    cr_assert_eq(fr_round_begin_among(rk[0], avail, nc, 1.0, NULL, &k), FR_OK, "%s", fr_errmsg());
    cr_assert(fr_round_target(rk[0]) < k, "over-selection samples more than the target");
    uint8_t many[64];
    memset(many, 2, sizeof many); /* every sampled position answered */
    cr_assert_eq(fri_round_status_set(rk[0], many), FR_ERR_STATE);
    fr_round_abort(rk[0]);
    cr_assert_eq(fri_round_fold(rk[0], &(fri_round_sums){0}), FR_ERR_STATE, "no open round");
    fr_client_ws_free(ws);
    fr_round_free(one);
    fr_round_free(rk[0]);
    fr_round_free(rk[1]);
    fr_model_free(s.full);
    fr_dataset_free(d);
}

/* ------------------------------------------------------------------ state */

Test(round, save_load_resumes_exactly_and_refuses_bad_state) {
    fr_dataset *d = synthetic();
    fr_model_config mc;
    fr_fl_config cfg;
    configs(&mc, &cfg, d);
    uint32_t nc = fr_dataset_n_users(d);
    store s1 = {NULL, {NULL, NULL}, d}, s2 = {NULL, {NULL, NULL}, d};
    cr_assert_eq(fr_model_create(&s1.full, &mc), FR_OK);
    cr_assert_eq(fr_model_create(&s2.full, &mc), FR_OK);
    fr_round *r = NULL, *q = NULL;
    cr_assert_eq(fr_round_create(&r, &mc, &cfg, nc, 2), FR_OK);
    cr_assert_eq(fr_round_create(&q, &mc, &cfg, nc, 2), FR_OK);
    fr_client_ws *ws = NULL;
    cr_assert_eq(fr_client_ws_create(&ws, &mc, &cfg), FR_OK);
    fr_round_stats st;
    for (int i = 0; i < 4; i++) round_by_hand(r, ws, &s1, &st);
    for (int i = 0; i < 2; i++) round_by_hand(q, ws, &s2, &st);
    uint8_t *b = NULL;
    size_t n;
    cr_assert_eq(fr_round_save(q, &b, &n), FR_OK);
    fr_round_free(q);
    q = NULL;
    cr_assert_eq(fr_round_create(&q, &mc, &cfg, nc, 2), FR_OK);
    cr_assert_eq(fr_round_load(q, b, n, "q.state"), FR_OK, "%s", fr_errmsg());
    cr_assert_eq(fr_round_completed(q), 2);
    for (int i = 0; i < 2; i++) round_by_hand(q, ws, &s2, &st);
    size_t na, nb;
    uint8_t *wa = global_bytes(r, &na), *wb = global_bytes(q, &nb);
    cr_assert(memcmp(wa, wb, na) == 0, "4 rounds vs 2 + save/load + 2");
    free(wa); free(wb);
    /* while a round is open */
    cr_assert_eq(fr_round_begin(q, NULL, NULL), FR_OK);
    uint8_t *x = NULL;
    size_t xn;
    cr_assert_eq(fr_round_save(q, &x, &xn), FR_ERR_STATE);
    cr_assert_eq(fr_round_load(q, b, n, "q.state"), FR_ERR_STATE);
    fr_round_abort(q);
    /* damaged, truncated, another run */
    for (size_t k = 0; k < n; k += 7) {
        b[k] ^= 0x10;
        fr_err e = fr_round_load(q, b, n, "q.state");
        cr_assert(e == FR_ERR_CHECKSUM || e == FR_ERR_FORMAT, "byte %zu: %s", k, fr_errmsg());
        b[k] ^= 0x10;
    }
    for (size_t k = 0; k < n; k += 5) cr_assert_neq(fr_round_load(q, b, k, "q.state"), FR_OK);
    cr_assert_eq(fr_round_completed(q), 4, "a refused load changed nothing");
    fr_fl_config oc = cfg;
    oc.seed = 99;
    fr_round *o = NULL;
    cr_assert_eq(fr_round_create(&o, &mc, &oc, nc, 1), FR_OK);
    cr_assert_eq(fr_round_load(o, b, n, "q.state"), FR_ERR_INVALID);
    cr_assert(strstr(fr_errmsg(), "q.state: the state of another run (seed 7,") != NULL, "%s", fr_errmsg());
    cr_assert(strstr(fr_errmsg(), "differing: seed)") != NULL, "%s", fr_errmsg());
    fr_round_free(o);
    cr_assert_eq(fr_round_create(&o, &mc, &cfg, nc + 1, 1), FR_OK);
    cr_assert_eq(fr_round_load(o, b, n, "q.state"), FR_ERR_INVALID);
    cr_assert(strstr(fr_errmsg(), "of 50 clients, this one has 51") != NULL, "%s", fr_errmsg());
    fr_round_free(o);
    fr_msg_free(b);
    fr_client_ws_free(ws);
    fr_round_free(r);
    fr_round_free(q);
    fr_model_free(s1.full);
    fr_model_free(s2.full);
    fr_dataset_free(d);
}

/* ------------------------------------------------------------------ sampling among clients */

Test(round, among_every_client_is_begin) {
    fr_dataset *d = synthetic();
    fr_model_config mc;
    fr_fl_config cfg;
    fr_model_config_default(&mc, FR_MODEL_MF);
    mc.n_users = 1;
    mc.n_items = 5;
    mc.dim = 2;
    fr_fl_config_default(&cfg, FR_MODEL_MF);
    const double cprs[] = {0, 0.01, 0.1, 0.33, 0.5, 0.99, 1, 2, 3, 17, 60, 61, 1000};
    const double avs[] = {1, 0.9, 0.35};
    const uint32_t sizes[] = {1, 2, 7, 61};
    uint32_t all[61];
    for (uint32_t i = 0; i < 61; i++) all[i] = i;
    int checked = 0, partial = 0;
    for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++)
        for (uint64_t seed = 1; seed <= 3; seed++)
            for (size_t ci = 0; ci < sizeof cprs / sizeof *cprs; ci++)
                for (size_t ai = 0; ai < sizeof avs / sizeof *avs; ai++) {
                    cfg.seed = seed * 7919;
                    cfg.clients_per_round = cprs[ci];
                    cfg.availability = avs[ai];
                    uint32_t nc = sizes[si];
                    fr_round *a = NULL, *b = NULL;
                    cr_assert_eq(fr_round_create(&a, &mc, &cfg, nc, 1), FR_OK);
                    cr_assert_eq(fr_round_create(&b, &mc, &cfg, nc, 1), FR_OK);
                    for (int round = 1; round <= 12; round++) {
                        const uint32_t *ia, *ib;
                        uint32_t ka, kb;
                        cr_assert_eq(fr_round_begin(a, &ia, &ka), FR_OK);
                        cr_assert_eq(fr_round_begin_among(b, all, nc, 0.0, &ib, &kb), FR_OK, "%s", fr_errmsg());
                        cr_assert(ka == kb && memcmp(ia, ib, ka * sizeof *ia) == 0,
                                  "%u clients, seed %llu, cpr %g, availability %g, round %d: %u vs %u clients", nc,
                                  (unsigned long long)cfg.seed, cfg.clients_per_round, cfg.availability, round, ka, kb);
                        cr_assert_eq(fr_round_target(a), ka);
                        cr_assert_eq(fr_round_target(b), kb);
                        uint32_t want[61], wk;
                        cr_assert_eq(fr_fl_sample(&cfg, (uint32_t)round, nc, want, &wk), FR_OK);
                        cr_assert(wk == ka && memcmp(want, ia, ka * sizeof *ia) == 0);
                        if (ka) {
                            const uint8_t *ta, *tb;
                            size_t na, nb;
                            cr_assert_eq(fr_round_task(a, ia[0], &ta, &na), FR_OK);
                            cr_assert_eq(fr_round_task(b, ib[0], &tb, &nb), FR_OK);
                            cr_assert(na == nb && memcmp(ta, tb, na) == 0, "the same TASK bytes");
                        }
                        partial += ka > 0 && ka < nc;
                        cr_assert_eq(fr_round_end(a, NULL), FR_OK); /* no result, no quorum: the round advances */
                        cr_assert_eq(fr_round_end(b, NULL), FR_OK);
                        checked++;
                    }
                    cr_assert_eq(fr_round_completed(b), 12);
                    cr_assert_eq(fr_round_target(b), 0, "no round open");
                    fr_round_free(a);
                    fr_round_free(b);
                }
    cr_assert(checked == 4 * 3 * 13 * 3 * 12 && partial > 1000, "%d rounds, %d partial samples", checked, partial);
    fr_dataset_free(d);
}

Test(round, among_a_subset_samples_only_from_it_and_checks_its_ids) {
    fr_dataset *d = synthetic();
    fr_model_config mc;
    fr_fl_config cfg;
    configs(&mc, &cfg, d);
    cfg.availability = 1;
    cfg.clients_per_round = 0;
    fr_round *r = NULL;
    cr_assert_eq(fr_round_create(&r, &mc, &cfg, 50, 1), FR_OK);
    const uint32_t sub[] = {2, 3, 11, 30, 49};
    const uint32_t *ids;
    uint32_t k;
    /* every connected client when all are wanted */
    cr_assert_eq(fr_round_begin_among(r, sub, 5, 0.0, &ids, &k), FR_OK);
    cr_assert(k == 5 && memcmp(ids, sub, sizeof sub) == 0 && fr_round_target(r) == 5);
    fr_round_abort(r);
    fr_round_free(r);
    cfg.clients_per_round = 0.5;
    cfg.availability = 0.8;
    cr_assert_eq(fr_round_create(&r, &mc, &cfg, 50, 1), FR_OK);
    uint32_t evens[25];
    for (uint32_t i = 0; i < 25; i++) evens[i] = 2 * i;
    for (int round = 0; round < 10; round++) {
        cr_assert_eq(fr_round_begin_among(r, evens, 25, 0.0, &ids, &k), FR_OK);
        cr_assert(k >= 1 && k <= 13);
        for (uint32_t i = 0; i < k; i++) cr_assert(ids[i] % 2 == 0 && (i == 0 || ids[i] > ids[i - 1]));
        cr_assert_eq(fr_round_end(r, NULL), FR_OK);
    }
    /* bad input: nothing is opened */
    const uint32_t unsorted[] = {3, 2}, dup[] = {4, 4}, out[] = {1, 50};
    cr_assert_eq(fr_round_begin_among(r, unsorted, 2, 0.0, &ids, &k), FR_ERR_INVALID);
    cr_assert(strstr(fr_errmsg(), "id 2 follows 3, expected increasing ids") != NULL, "%s", fr_errmsg());
    cr_assert(ids == NULL && k == 0);
    cr_assert_eq(fr_round_begin_among(r, dup, 2, 0.0, &ids, &k), FR_ERR_INVALID);
    cr_assert_eq(fr_round_begin_among(r, out, 2, 0.0, &ids, &k), FR_ERR_INVALID);
    cr_assert(strstr(fr_errmsg(), "available client 50: out of range, the federation has 50 clients") != NULL, "%s",
              fr_errmsg());
    cr_assert_eq(fr_round_begin_among(r, evens, 25, -0.1, &ids, &k), FR_ERR_INVALID);
    cr_assert(strstr(fr_errmsg(), "over-selection -0.1") != NULL, "%s", fr_errmsg());
    cr_assert_eq(fr_round_begin_among(r, evens, 25, NAN, &ids, &k), FR_ERR_INVALID);
    cr_assert_eq(fr_round_begin_among(r, evens, 25, INFINITY, &ids, &k), FR_ERR_INVALID);
    cr_assert_eq(fr_round_begin_among(r, NULL, 3, 0.0, &ids, &k), FR_ERR_INVALID);
    cr_assert(!fr_round_is_open(r));
    /* nobody connected: an empty round */
    cr_assert_eq(fr_round_begin_among(r, NULL, 0, 0.5, &ids, &k), FR_OK);
    cr_assert(k == 0 && fr_round_target(r) == 0);
    cr_assert_eq(fr_round_end(r, NULL), FR_OK);
    fr_round_free(r);
    fr_dataset_free(d);
}

/* Results of clients ids[0, k) for r's open round (a client per user), as bytes. */
static void results_of(fr_round *r, fr_client_ws *ws, store *s, const uint32_t *ids, uint32_t k, uint8_t **msg,
                       size_t *len) {
    for (uint32_t i = 0; i < k; i++) msg[i] = result_of(r, ws, s, ids[i], &len[i]);
}

Test(round, over_selection_takes_the_target_and_refuses_the_rest_as_late) {
    fr_dataset *d = synthetic();
    fr_model_config mc;
    fr_fl_config cfg;
    configs(&mc, &cfg, d);
    cfg.availability = 1;
    cfg.clients_per_round = 5;
    store s = {NULL, {NULL, NULL}, d};
    cr_assert_eq(fr_model_create(&s.full, &mc), FR_OK);
    uint32_t nc = fr_dataset_n_users(d), all[64];
    for (uint32_t i = 0; i < nc; i++) all[i] = i;
    fr_round *r = NULL, *ref = NULL;
    cr_assert_eq(fr_round_create(&r, &mc, &cfg, nc, 2), FR_OK);
    cr_assert_eq(fr_round_create(&ref, &mc, &cfg, nc, 1), FR_OK);
    fr_client_ws *ws = NULL;
    cr_assert_eq(fr_client_ws_create(&ws, &mc, &cfg), FR_OK);
    const uint32_t *ids;
    uint32_t k;
    /* ceil(1.5 * 5) = 8 sampled, 5 taken; capped at the clients available */
    cr_assert_eq(fr_round_begin_among(r, all, nc, 0.5, &ids, &k), FR_OK);
    cr_assert_eq(k, 8);
    cr_assert_eq(fr_round_target(r), 5);
    fr_round_abort(r);
    cr_assert_eq(fr_round_begin_among(r, all, 6, 0.5, &ids, &k), FR_OK);
    cr_assert(k == 6 && fr_round_target(r) == 5);
    fr_round_abort(r);
    cr_assert_eq(fr_round_begin_among(r, all, 3, 0.5, &ids, &k), FR_OK);
    cr_assert(k == 3 && fr_round_target(r) == 3, "fewer available than wanted: all of them");
    fr_round_abort(r);
    cr_assert_eq(fr_round_begin_among(r, all, nc, 0.1, &ids, &k), FR_OK);
    cr_assert(k == 6 && fr_round_target(r) == 5, "ceil(1.1 * 5) = 6");
    fr_round_abort(r);
    cr_assert_eq(fr_round_begin_among(r, all, nc, 1e300, &ids, &k), FR_OK);
    cr_assert(k == nc && fr_round_target(r) == 5);
    fr_round_abort(r);
    cfg.clients_per_round = 10;
    fr_round *t10 = NULL;
    cr_assert_eq(fr_round_create(&t10, &mc, &cfg, nc, 1), FR_OK);
    cr_assert_eq(fr_round_begin_among(t10, all, nc, 0.1, &ids, &k), FR_OK);
    cr_assert(k == 11 && fr_round_target(t10) == 10, "ceil(1.1 * 10) = 11, not 12: %u", k);
    fr_round_free(t10);
    cfg.clients_per_round = 5;
    /* the TASK's bound is that of 5 results */
    cr_assert_eq(fr_round_begin_among(r, all, nc, 0.5, &ids, &k), FR_OK);
    const uint8_t *tb;
    size_t tn;
    cr_assert_eq(fr_round_task(r, ids[0], &tb, &tn), FR_OK);
    fr_task *t = NULL;
    cr_assert_eq(fr_task_create(&t), FR_OK);
    cr_assert_eq(fr_task_decode(t, tb, tn), FR_OK);
    cr_assert_eq(fr_task_bound(t), fr_fl_fixed_bound(5));
    fr_task_free(t);
    uint32_t got[8];
    memcpy(got, ids, sizeof got);
    uint8_t *msg[8];
    size_t len[8];
    results_of(r, ws, &s, got, 8, msg, len);
    /* they arrive in some order: the first five are taken, over two lanes */
    const int order[8] = {6, 1, 3, 7, 0, 5, 2, 4};
    for (int i = 0; i < 5; i++) {
        cr_assert_eq(fr_round_submit(r, msg[order[i]], len[order[i]], i % 2), FR_OK, "%s", fr_errmsg());
        cr_assert_eq(fr_round_results(r), (uint32_t)i + 1);
    }
    /* a duplicate is still a duplicate; the others are late */
    cr_assert_eq(fr_round_submit(r, msg[order[0]], len[order[0]], 0), FR_ERR_INVALID);
    cr_assert(strstr(fr_errmsg(), "a duplicate") != NULL, "%s", fr_errmsg());
    for (int i = 5; i < 8; i++) {
        cr_assert_eq(fr_round_submit(r, msg[order[i]], len[order[i]], 1), FR_ERR_STATE);
        char want[128];
        snprintf(want, sizeof want, "RESULT of client %u for round 1 refused: late: the round has its 5 results",
                 got[order[i]]);
        cr_assert(strstr(fr_errmsg(), want) != NULL, "%s", fr_errmsg());
    }
    fr_result *res = NULL;
    cr_assert_eq(fr_result_create(&res), FR_OK);
    cr_assert_eq(fr_result_decode(res, msg[order[7]], len[order[7]], fr_round_shape(r)), FR_OK);
    cr_assert_eq(fr_round_accept(r, res, 0), FR_ERR_STATE, "in memory too");
    cr_assert(strstr(fr_errmsg(), "late: the round has its 5 results") != NULL, "%s", fr_errmsg());
    fr_result_free(res);
    cr_assert_eq(fr_round_results(r), 5);
    fr_round_stats st;
    cr_assert_eq(fr_round_end(r, &st), FR_OK);
    cr_assert(st.clients == 5 && st.sampled == 8);
    /* the model is that of exactly those five results (a controller that sampled them) */
    cr_assert_eq(fr_round_begin_among(ref, all, nc, 0.5, &ids, &k), FR_OK);
    for (int i = 4; i >= 0; i--) cr_assert_eq(fr_round_submit(ref, msg[order[i]], len[order[i]], 0), FR_OK);
    cr_assert_eq(fr_round_end(ref, NULL), FR_OK);
    size_t na, nb;
    uint8_t *a = global_bytes(r, &na), *b = global_bytes(ref, &nb);
    cr_assert(memcmp(a, b, na) == 0);
    free(a); free(b);
    for (int i = 0; i < 8; i++) free(msg[i]);
    fr_client_ws_free(ws);
    fr_round_free(r);
    fr_round_free(ref);
    fr_model_free(s.full);
    fr_dataset_free(d);
}

Test(round, over_selection_merges_and_resumes) {
    fr_dataset *d = synthetic();
    fr_model_config mc;
    fr_fl_config cfg;
    configs(&mc, &cfg, d);
    cfg.clients_per_round = 6;
    store s = {NULL, {NULL, NULL}, d};
    cr_assert_eq(fr_model_create(&s.full, &mc), FR_OK);
    uint32_t nc = fr_dataset_n_users(d), conn[64], nconn = 0;
    for (uint32_t i = 0; i < nc; i++)
        if (i % 5 != 3) conn[nconn++] = i; /* some clients are not connected */
    fr_round *one = NULL, *a = NULL, *b = NULL, *c = NULL, *q = NULL;
    cr_assert_eq(fr_round_create(&one, &mc, &cfg, nc, 1), FR_OK);
    cr_assert_eq(fr_round_create(&c, &mc, &cfg, nc, 1), FR_OK);
    cr_assert_eq(fr_round_create(&a, &mc, &cfg, nc, 2), FR_OK);
    cr_assert_eq(fr_round_create(&b, &mc, &cfg, nc, 1), FR_OK);
    cr_assert_eq(fr_round_create(&q, &mc, &cfg, nc, 1), FR_OK);
    fr_client_ws *ws = NULL;
    cr_assert_eq(fr_client_ws_create(&ws, &mc, &cfg), FR_OK);
    for (int round = 0; round < 4; round++) {
        const uint32_t *ids;
        uint32_t k, target;
        cr_assert_eq(fr_round_begin_among(one, conn, nconn, 0.5, &ids, &k), FR_OK);
        cr_assert_eq(fr_round_begin_among(a, conn, nconn, 0.5, NULL, NULL), FR_OK);
        cr_assert_eq(fr_round_begin_among(b, conn, nconn, 0.5, NULL, NULL), FR_OK);
        target = fr_round_target(one);
        cr_assert(target >= 1 && target < k, "round %d: %u of %u", round + 1, target, k);
        uint8_t *msg[64];
        size_t len[64];
        results_of(one, ws, &s, ids, k, msg, len);
        /* one takes the first `target`; a and b split them; then b also has one too many */
        for (uint32_t i = 0; i < target; i++) {
            cr_assert_eq(fr_round_submit(one, msg[i], len[i], 0), FR_OK);
            cr_assert_eq(fr_round_submit(i % 2 ? a : b, msg[i], len[i], 0), FR_OK, "%s", fr_errmsg());
        }
        cr_assert_eq(fr_round_submit(one, msg[target], len[target], 0), FR_ERR_STATE);
        /* c: b's results plus one more: with a's, too many */
        uint8_t *st = NULL;
        size_t sn;
        cr_assert_eq(fr_round_begin_among(c, conn, nconn, 0.5, NULL, NULL), FR_OK);
        for (uint32_t i = 0; i < target; i += 2) cr_assert_eq(fr_round_submit(c, msg[i], len[i], 0), FR_OK);
        cr_assert_eq(fr_round_submit(c, msg[target], len[target], 0), FR_OK);
        cr_assert_eq(fr_round_merge(a, c), FR_ERR_STATE);
        cr_assert(strstr(fr_errmsg(), "results, but round") != NULL && strstr(fr_errmsg(), "(the rest are late)"),
                  "%s", fr_errmsg());
        fr_round_abort(c);
        cr_assert_eq(fr_round_merge(a, b), FR_OK, "%s", fr_errmsg());
        cr_assert_eq(fr_round_results(a), target);
        fr_round_stats s1, s2;
        cr_assert_eq(fr_round_end(one, &s1), FR_OK);
        cr_assert_eq(fr_round_end(a, &s2), FR_OK);
        fr_round_abort(b);
        cr_assert(s1.clients == target && s2.clients == target && s1.loss == s2.loss && s1.sampled == k);
        size_t n1, n2;
        uint8_t *w1 = global_bytes(one, &n1), *w2 = global_bytes(a, &n2);
        cr_assert(memcmp(w1, w2, n1) == 0, "round %d: merged controllers differ from one", round + 1);
        free(w1); free(w2);
        /* b and q follow by save / load: a server restarting between rounds */
        cr_assert_eq(fr_round_save(a, &st, &sn), FR_OK);
        cr_assert_eq(fr_round_load(b, st, sn, "a"), FR_OK);
        cr_assert_eq(fr_round_load(c, st, sn, "a"), FR_OK);
        fr_round_free(q);
        q = NULL;
        cr_assert_eq(fr_round_create(&q, &mc, &cfg, nc, 1), FR_OK);
        cr_assert_eq(fr_round_load(q, st, sn, "a"), FR_OK, "%s", fr_errmsg());
        fr_msg_free(st);
        cr_assert_eq(fr_round_completed(q), (uint32_t)round + 1);
        /* the resumed server samples what the others sample next */
        const uint32_t *qi, *oi;
        uint32_t qk, ok;
        cr_assert_eq(fr_round_begin_among(q, conn, nconn, 0.5, &qi, &qk), FR_OK);
        cr_assert_eq(fr_round_begin_among(one, conn, nconn, 0.5, &oi, &ok), FR_OK);
        cr_assert(qk == ok && memcmp(qi, oi, qk * sizeof *qi) == 0);
        fr_round_abort(q);
        fr_round_abort(one);
        for (uint32_t i = 0; i < k; i++) free(msg[i]);
    }
    fr_client_ws_free(ws);
    fr_round_free(one);
    fr_round_free(a);
    fr_round_free(b);
    fr_round_free(c);
    fr_round_free(q);
    fr_model_free(s.full);
    fr_dataset_free(d);
}

/* ------------------------------------------------------------------ TASK decoding */

Test(round, task_decoding_refuses_every_damage) {
    fr_dataset *d = synthetic();
    fr_model_config mc;
    fr_fl_config cfg;
    configs(&mc, &cfg, d);
    cfg.clients_per_round = 0;
    cfg.availability = 1;
    fr_round *r = NULL;
    cr_assert_eq(fr_round_create(&r, &mc, &cfg, 3, 1), FR_OK);
    cr_assert_eq(fr_round_begin(r, NULL, NULL), FR_OK);
    const uint8_t *tb;
    size_t n;
    cr_assert_eq(fr_round_task(r, 2, &tb, &n), FR_OK);
    uint8_t *b = malloc(n + 1);
    memcpy(b, tb, n);
    fr_task *t = NULL;
    cr_assert_eq(fr_task_create(&t), FR_OK);
    cr_assert_eq(fr_task_decode(t, b, n), FR_OK, "%s", fr_errmsg());
    cr_assert_eq(memcmp(fr_model_params_const(fr_task_model(t)), fr_model_params_const(fr_round_model(r)),
                        fr_model_n_shared(fr_round_model(r)) * 4), 0, "the TASK carries the global parameters");
    cr_assert_eq(fr_task_fl_config(t)->batch, cfg.batch);
    cr_assert_eq(fr_task_bound(t), INT64_MAX / 3, "the bound of a round of 3 clients");
    cr_assert_eq(fr_task_model_config(t)->n_items, mc.n_items);
    /* a steady client decodes every round without allocating */
    fr_test_fail_alloc(0, false);
    cr_assert_eq(fr_task_decode(t, b, n), FR_OK);
    cr_assert_eq(fr_test_alloc_count(), 0);
    for (size_t k = 0; k < n; k += (k < 400 ? 1 : 97)) {
        fr_err e = fr_task_decode(t, b, k);
        cr_assert_eq(e, FR_ERR_FORMAT, "truncated to %zu: %s", k, fr_errmsg());
        cr_assert_null(fr_task_model(t), "a failed decode leaves the task empty");
    }
    b[n] = 0;
    cr_assert_eq(fr_task_decode(t, b, n + 1), FR_ERR_FORMAT);
    for (size_t k = 24; k < n; k += (k < 400 ? 1 : 97)) {
        b[k] ^= 0x04;
        cr_assert_eq(fr_task_decode(t, b, n), FR_ERR_CHECKSUM, "byte %zu", k);
        b[k] ^= 0x04;
    }
    /* behind a valid CRC: flags beyond DP's, quantization's and rows' bits, quantization in a
     * federation without it, round 0, config CRC, a config that does not check,
     * a bound of 0 or past the largest, padding, parameter count */
    struct { size_t off; uint32_t v; const char *msg; } cases[] = {
        {36, 8, "flags 0x8, expected 0..7 without both 2 and 4"},
        {36, 6, "flags 0x6, expected 0..7 without both 2 and 4"},
        {36, 4, "TASK: 5561 dense parameters, its model config gives 2761"}, /* a rows TASK's count differs */
        {36, 2, "quantized parameters, but the federation compresses no downlink"},
        {24, 0, "round 0"},
        {28, 0x12345678, "config block's CRC-32C"},
        {32, 5, "config"},
        {44, 0x7fffffff, "TASK: bound"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        uint8_t *m = malloc(n);
        memcpy(m, b, n);
        fri_put_u32(m + cases[c].off, cases[c].v);
        fri_put_u32(m + 16, fr_crc32c(0, m + 24, n - 24));
        cr_assert_eq(fr_task_decode(t, m, n), FR_ERR_FORMAT, "case %zu", c);
        cr_assert(strstr(fr_errmsg(), cases[c].msg) != NULL, "case %zu: %s", c, fr_errmsg());
        free(m);
    }
    /* a config that fails its check (batch 0), with every CRC right */
    uint32_t cn = fri_get_u32(b + 32);
    fri_buf cb = {0};
    fr_fl_config bad = cfg;
    bad.batch = 0;
    cr_assert_eq(fri_fl_config_block(&cb, &mc, &bad), FR_OK);
    cr_assert_eq(cb.len, cn);
    uint8_t *m = malloc(n);
    memcpy(m, b, n);
    memcpy(m + 48, cb.data, cn);
    fri_put_u32(m + 28, fr_crc32c(0, cb.data, cn));
    fri_put_u32(m + 16, fr_crc32c(0, m + 24, n - 24));
    cr_assert_eq(fr_task_decode(t, m, n), FR_ERR_FORMAT);
    cr_assert(strstr(fr_errmsg(), "batch 0") != NULL, "%s", fr_errmsg());
    free(m);
    fri_buf_free(&cb);
    /* the parameter count must be the config's shared prefix */
    size_t at = (24 + 24 + cn + 7) & ~(size_t)7;
    m = malloc(n);
    memcpy(m, b, n);
    fri_put_u64(m + at, fri_get_u64(b + at) - 1);
    fri_put_u32(m + 16, fr_crc32c(0, m + 24, n - 24));
    cr_assert_eq(fr_task_decode(t, m, n), FR_ERR_FORMAT);
    free(m);
    if (at > 48 + cn) {
        m = malloc(n);
        memcpy(m, b, n);
        m[48 + cn] = 1;
        fri_put_u32(m + 16, fr_crc32c(0, m + 24, n - 24));
        cr_assert_eq(fr_task_decode(t, m, n), FR_ERR_FORMAT);
        cr_assert(strstr(fr_errmsg(), "padding") != NULL, "%s", fr_errmsg());
        free(m);
    }
    uint16_t type;
    cr_assert_eq(fr_msg_type(b, n, &type), FR_OK);
    cr_assert_eq(type, FR_MSG_TASK);
    fr_result *res = NULL;
    cr_assert_eq(fr_result_create(&res), FR_OK);
    cr_assert_eq(fr_result_decode(res, b, n, fr_round_shape(r)), FR_ERR_FORMAT, "a TASK is not a RESULT");
    fr_result_free(res);
    free(b);
    fr_task_free(t);
    fr_round_free(r);
    fr_dataset_free(d);
}

/* ------------------------------------------------------------------ allocation */

Test(round, allocation_failure_sweep) {
    fr_dataset *d = synthetic();
    fr_model_config mc;
    fr_fl_config cfg;
    configs(&mc, &cfg, d);
    cfg.clients_per_round = 3;
    store s = {NULL, {NULL, NULL}, d};
    cr_assert_eq(fr_model_create(&s.full, &mc), FR_OK);
    bool done = false;
    for (long k = 1; k < 3000 && !done; k++) {
        fr_test_fail_alloc(k, false);
        fr_round *r = NULL;
        fr_client_ws *ws = NULL;
        uint8_t *st = NULL;
        size_t sn = 0;
        fr_err e = fr_round_create(&r, &mc, &cfg, fr_dataset_n_users(d), 2);
        if (!e) e = fr_client_ws_create(&ws, &mc, &cfg);
        const uint32_t *ids = NULL;
        uint32_t kk = 0;
        if (!e) e = fr_round_begin(r, &ids, &kk);
        for (uint32_t i = 0; !e && i < kk; i++) {
            fr_client_data cd;
            fr_client_private priv;
            if (!client_of(&s, ids[i], &cd, &priv)) continue;
            const uint8_t *tb, *out;
            size_t tn, on;
            e = fr_round_task(r, ids[i], &tb, &tn);
            if (!e) e = fr_client_step_bytes(ws, tb, tn, ids[i], &cd, &priv, &out, &on);
            if (!e) e = fr_round_submit(r, out, on, 1);
        }
        if (!e) e = fr_round_end(r, NULL);
        if (!e) e = fr_round_save(r, &st, &sn);
        if (!e) e = fr_round_load(r, st, sn, "s");
        fr_test_fail_alloc(0, false);
        cr_assert(e == FR_OK || e == FR_ERR_NOMEM, "k=%ld: %s: %s", k, fr_strerror(e), fr_errmsg());
        if (e == FR_OK) done = true;
        fr_msg_free(st);
        fr_client_ws_free(ws);
        fr_round_free(r);
    }
    cr_assert(done);
    fr_model_free(s.full);
    fr_dataset_free(d);
}
