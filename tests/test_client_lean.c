/* The federated client's fused fit (fri_model_client_sgd, model_mf.c's client_sgd) against
 * the generic loop it stands in for (compact model, gradient, optimizer: the reference,
 * fri_client_lean_allow(false)): the same global model, private rows, round losses and
 * checkpoint bytes, bit for bit, over several rounds, for minibatches that split a client's
 * examples or hold them all, several local epochs, a dim that is not a multiple of 8,
 * L2 off, and the item rows summed or weighted; and the fused path must have run. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "fl/fl_internal.h"
#include "fedrec/fl.h"
#include "fedrec/runtime.h"
#include "model/model_internal.h"
#include "runtime/runtime_internal.h"
#include "testutil.h"

typedef struct variant {
    uint32_t dim, batch, epochs;
    float l2, bias_l2;
    bool item_sum;
    double cpr;
    fr_strategy strategy;
} variant;

static fr_dataset *population_of(uint32_t users, uint32_t items) {
    fr_gen_opts go;
    fr_gen_opts_default(&go);
    go.users = users;
    go.items = items;
    go.interactions = (uint64_t)users * 20; /* power-law activity: some clients hold > 32 */
    go.seed = 21;
    fr_dataset *d = NULL;
    cr_assert_eq(fr_dataset_generate(&d, &go), FR_OK);
    return d;
}
static fr_dataset *population(void) { return population_of(150, 70); }

/* How a run is made: the fused fit or the generic loop, results on the wire or in memory,
 * in memory straight into the lanes (direct) or through an fr_result, the fused fit's AVX2
 * copy or its plain one. */
typedef struct how { bool lean, wire, direct, avx; } how;

/* R rounds of v on d (2 threads, results in memory or on the wire); the model's bytes, the
 * checkpoint's bytes and the rounds' loss sums. */
static void run_how(const fr_dataset *d, const variant *v, how h, uint8_t **model, size_t *model_n, uint8_t **ckpt,
                    size_t *ckpt_n, fr_round_stats st[4]) {
    bool was = fri_client_lean_allow(h.lean), was_direct = fri_sim_direct_allow(h.direct),
         was_avx = fri_mf_sgd_allow_avx(h.avx);
    fr_model_config mc;
    fr_model_config_default(&mc, FR_MODEL_MF);
    mc.dim = v->dim;
    mc.l2 = v->l2;
    mc.bias_l2 = v->bias_l2;
    mc.mu = 3.1f;
    mc.seed = 4;
    fr_fl_config cfg;
    fr_fl_config_default(&cfg, FR_MODEL_MF);
    cfg.seed = 4;
    cfg.batch = v->batch;
    cfg.local_epochs = v->epochs;
    cfg.item_sum = v->item_sum;
    cfg.clients_per_round = v->cpr;
    cfg.strategy = v->strategy;
    cfg.server_lr = v->strategy == FR_STRATEGY_FEDADAM ? 0.01f : 1.0f;
    fr_optim_config_default(&cfg.local, FR_OPTIM_SGD);
    cfg.local.lr = 0.05f;
    fr_pool *pool = NULL;
    cr_assert_eq(fr_pool_create(&pool, 2), FR_OK);
    fr_sim *s = NULL;
    cr_assert_eq(fr_sim_create(&s, &mc, &cfg, d, pool), FR_OK, "%s", fr_errmsg());
    fr_sim_set_wire(s, h.wire);
    for (int r = 0; r < 4; r++) {
        cr_assert_eq(fr_sim_round(s, &st[r]), FR_OK, "%s", fr_errmsg());
        cr_assert(st[r].clients > 0);
    }
    fr_model_meta meta = {0};
    cr_assert_eq(fr_model_encode(fr_sim_model(s), &meta, model, model_n), FR_OK);
    char *dir = tu_tmpdir(), path[1024];
    snprintf(path, sizeof path, "%s/lean.ckpt", dir);
    cr_assert_eq(fr_sim_checkpoint_save(s, path), FR_OK);
    cr_assert_eq(fri_read_file(path, ckpt, ckpt_n), FR_OK);
    tu_rmtree(dir);
    free(dir);
    fr_sim_free(s);
    fr_pool_free(pool);
    fri_client_lean_allow(was);
    fri_sim_direct_allow(was_direct);
    fri_mf_sgd_allow_avx(was_avx);
}

static void run(const fr_dataset *d, const variant *v, bool lean, bool wire, uint8_t **model, size_t *model_n,
                uint8_t **ckpt, size_t *ckpt_n, double loss[4]) {
    fr_round_stats st[4];
    run_how(d, v, (how){lean, wire, true, true}, model, model_n, ckpt, ckpt_n, st);
    for (int r = 0; r < 4; r++) loss[r] = st[r].loss;
}

static void same_bits(const variant *v, bool wire) {
    fr_dataset *d = population();
    uint8_t *ma, *mb, *ca, *cb;
    size_t man, mbn, can, cbn;
    double la[4], lb[4];
    uint64_t before = fri_client_lean_fits();
    run(d, v, false, wire, &mb, &mbn, &cb, &cbn, lb);
    cr_assert_eq(fri_client_lean_fits(), before, "the reference must not take the fused fit");
    run(d, v, true, wire, &ma, &man, &ca, &can, la);
    cr_assert(fri_client_lean_fits() > before, "the fused fit did not run");
    cr_assert(man == mbn && memcmp(ma, mb, man) == 0, "model: fused and generic fits differ (dim %u batch %u E %u)",
              v->dim, v->batch, v->epochs);
    cr_assert(can == cbn && memcmp(ca, cb, can) == 0, "checkpoint (private rows) differ");
    for (int r = 0; r < 4; r++) cr_assert(memcmp(&la[r], &lb[r], sizeof la[r]) == 0, "round %d loss", r + 1);
    fr_model_bytes_free(ma);
    fr_model_bytes_free(mb);
    fri_free(ca);
    fri_free(cb);
    fr_dataset_free(d);
}

Test(client_lean, one_minibatch_fedadam_item_sum) {
    variant v = {32, 32, 1, 0.1f, 0.01f, true, 0, FR_STRATEGY_FEDADAM};
    same_bits(&v, false);
}

Test(client_lean, several_minibatches_and_epochs_odd_dim) {
    variant v = {13, 4, 3, 0.05f, 0.0f, false, 0.5, FR_STRATEGY_FEDAVG};
    same_bits(&v, false);
}

Test(client_lean, no_l2_sampled_clients_on_the_wire) {
    variant v = {8, 7, 2, 0.0f, 0.0f, true, 0.3, FR_STRATEGY_FEDAVG};
    same_bits(&v, true);
}

/* The sim's direct accept (an in-memory client's float update quantized straight into its
 * lane: fri_round_accept_update) against the fr_result path it stands in for
 * (fr_result_quantize, then fri_round_accept_at), with the fused fit's plain copy on that
 * side too (its AVX2 copy on the other): the same model, checkpoint (private rows) and
 * every round figure, bit for bit. 600 clients on 2 threads, so the client loop runs in
 * chunks (each worker asks for its next client's rows while it trains one); a dim of 32
 * (the vector paths) and of 13 (their tails), FedAdam and FedAvg with weighted item rows
 * and sampling. */
static void direct_same(const variant *v) {
    fr_dataset *d = population_of(600, 90);
    uint8_t *ma, *mb, *ca, *cb;
    size_t man, mbn, can, cbn;
    fr_round_stats sa[4], sb[4];
    run_how(d, v, (how){true, false, false, false}, &mb, &mbn, &cb, &cbn, sb);
    run_how(d, v, (how){true, false, true, true}, &ma, &man, &ca, &can, sa);
    cr_assert(man == mbn && memcmp(ma, mb, man) == 0, "model: direct accept and fr_result differ (dim %u)", v->dim);
    cr_assert(can == cbn && memcmp(ca, cb, can) == 0, "checkpoint (private rows) differ");
    for (int r = 0; r < 4; r++) {
        cr_assert(memcmp(&sa[r].loss, &sb[r].loss, sizeof sa[r].loss) == 0, "round %d loss", r + 1);
        cr_assert_eq(sa[r].clients, sb[r].clients);
        cr_assert_eq(sa[r].examples, sb[r].examples);
        cr_assert_eq(sa[r].bytes_up, sb[r].bytes_up, "round %d: bytes up", r + 1);
        cr_assert_eq(sa[r].bytes_down, sb[r].bytes_down);
    }
    fr_model_bytes_free(ma);
    fr_model_bytes_free(mb);
    fri_free(ca);
    fri_free(cb);
    fr_dataset_free(d);
}

Test(client_lean, direct_accept_same_as_results_dim32) {
    variant v = {32, 32, 1, 0.1f, 0.01f, true, 0, FR_STRATEGY_FEDADAM};
    direct_same(&v);
}

Test(client_lean, direct_accept_same_as_results_odd_dim_weighted_sampled) {
    variant v = {13, 4, 2, 0.05f, 0.0f, false, 0.7, FR_STRATEGY_FEDAVG};
    direct_same(&v);
}

/* d = 32 (model_mf.c's lean_batch32, rows in registers) against the generic loop: an odd
 * minibatch (a last chunk of one row in the L2 sums) with L2 on, and L2 off. */
Test(client_lean, dim32_odd_minibatches_l2) {
    variant v = {32, 5, 2, 0.08f, 0.02f, false, 0.6, FR_STRATEGY_FEDAVG};
    same_bits(&v, false);
}

Test(client_lean, dim32_no_l2) {
    variant v = {32, 7, 1, 0.0f, 0.0f, true, 0, FR_STRATEGY_FEDADAM};
    same_bits(&v, false);
}

/* A client's rows ordered by rank (up to 64) or radix sort (more), the ways taken when the
 * catalogue is over 16 times its rows, against the plain scan of the catalogue's marks:
 * 3000 items, so clients of 6 to 187 rows take them (power-law activity: some hold > 64). */
Test(client_lean, rows_ranked_or_radix_sorted_as_scanned) {
    fr_dataset *d = population_of(400, 3000);
    variant v = {32, 32, 1, 0.1f, 0.01f, true, 0, FR_STRATEGY_FEDADAM};
    uint8_t *ma, *mb, *ca, *cb;
    size_t man, mbn, can, cbn;
    fr_round_stats sa[4], sb[4];
    bool was = fri_client_sort_by_scan(true);
    run_how(d, &v, (how){true, false, true, true}, &mb, &mbn, &cb, &cbn, sb);
    fri_client_sort_by_scan(false);
    run_how(d, &v, (how){true, false, true, true}, &ma, &man, &ca, &can, sa);
    fri_client_sort_by_scan(was);
    uint32_t radix = 0; /* clients of more than 64 rows, under 3000 / 16 */
    for (uint32_t u = 0; u < fr_dataset_n_users(d); u++) {
        size_t n = fr_dataset_user(d, u, NULL, NULL, NULL);
        radix += n > 64 && n < 3000 / 16;
    }
    cr_assert(radix > 0, "the population must hold a client the radix sort takes");
    cr_assert(man == mbn && memcmp(ma, mb, man) == 0, "model: sorted and scanned rows differ");
    cr_assert(can == cbn && memcmp(ca, cb, can) == 0, "checkpoint (private rows) differ");
    for (int r = 0; r < 4; r++) cr_assert(memcmp(&sa[r].loss, &sb[r].loss, sizeof sa[r].loss) == 0);
    fr_model_bytes_free(ma);
    fr_model_bytes_free(mb);
    fri_free(ca);
    fri_free(cb);
    fr_dataset_free(d);
}
