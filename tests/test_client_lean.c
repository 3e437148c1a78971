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
#include "fedrec/fl.h"
#include "fedrec/runtime.h"
#include "model/model_internal.h"
#include "testutil.h"

typedef struct variant {
    uint32_t dim, batch, epochs;
    float l2, bias_l2;
    bool item_sum;
    double cpr;
    fr_strategy strategy;
} variant;

static fr_dataset *population(void) {
    fr_gen_opts go;
    fr_gen_opts_default(&go);
    go.users = 150;
    go.items = 70;
    go.interactions = 150 * 20; /* power-law activity: some clients hold > 32 */
    go.seed = 21;
    fr_dataset *d = NULL;
    cr_assert_eq(fr_dataset_generate(&d, &go), FR_OK);
    return d;
}

/* R rounds of v on d (2 threads, results in memory or on the wire); the model's bytes, the
 * checkpoint's bytes and the rounds' loss sums. */
static void run(const fr_dataset *d, const variant *v, bool lean, bool wire, uint8_t **model, size_t *model_n,
                uint8_t **ckpt, size_t *ckpt_n, double loss[4]) {
    bool was = fri_client_lean_allow(lean);
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
    fr_sim_set_wire(s, wire);
    for (int r = 0; r < 4; r++) {
        fr_round_stats st;
        cr_assert_eq(fr_sim_round(s, &st), FR_OK, "%s", fr_errmsg());
        cr_assert(st.clients > 0);
        loss[r] = st.loss;
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
