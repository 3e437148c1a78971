/* The exposure of a target item, ER@K (fedrec/eval.h, fr_eval_exposure): per user, the
 * target's rank among the items the user did not train on, scored in blocks; the count
 * of exposed users is an integer sum, so the figure does not depend on the thread count.
 * Memory: a block of scores and ids per worker, and a byte per item for the user's
 * training items. */
#include <math.h>

#include "core/core.h"
#include "fedrec/eval.h"

#define EXPOSURE_BLOCK 4096

typedef struct exp_job {
    fr_score_fn score;
    void *ctx;
    const fr_dataset *train;
    uint32_t target, k, n_items;
    uint32_t *ids;          /* [workers * EXPOSURE_BLOCK] */
    float *sc;              /* [workers * EXPOSURE_BLOCK] */
    uint8_t *seen;          /* [workers * n_items] the user's training items */
    uint8_t *exposed;       /* [n_users] 1 exposed, 0 not, 2 left out (trained on target) */
} exp_job;

static void exp_user(void *ctx, size_t index, int worker) {
    exp_job *j = ctx;
    uint32_t u = (uint32_t)index;
    const uint32_t *it;
    size_t n = fr_dataset_user(j->train, u, &it, NULL, NULL);
    uint8_t *seen = j->seen + (size_t)worker * j->n_items;
    for (size_t i = 0; i < n; i++)
        if (it[i] < j->n_items) seen[it[i]] = 1;
    if (seen[j->target]) {
        j->exposed[u] = 2;
    } else {
        uint32_t *ids = j->ids + (size_t)worker * EXPOSURE_BLOCK;
        float *sc = j->sc + (size_t)worker * EXPOSURE_BLOCK;
        float ts;
        j->score(j->ctx, u, &j->target, 1, &ts, worker);
        uint32_t ahead = 0;
        if (isnan(ts)) ahead = j->k; /* a NaN target is never exposed */
        for (uint32_t lo = 0; lo < j->n_items && ahead < j->k; lo += EXPOSURE_BLOCK) {
            uint32_t m = 0;
            for (uint32_t i = lo; i < j->n_items && i - lo < EXPOSURE_BLOCK; i++)
                if (!seen[i] && i != j->target) ids[m++] = i;
            if (!m) continue;
            j->score(j->ctx, u, ids, m, sc, worker);
            for (uint32_t x = 0; x < m; x++)
                if (sc[x] > ts || (sc[x] == ts && ids[x] < j->target)) ahead++;
        }
        j->exposed[u] = ahead < j->k;
    }
    for (size_t i = 0; i < n; i++)
        if (it[i] < j->n_items) seen[it[i]] = 0;
}

fr_err fr_eval_exposure(fr_score_fn score, void *ctx, const fr_dataset *train, uint32_t target, uint32_t k,
                        fr_pool *pool, fr_eval_result *r) {
    if (!score || !train || !r) return fri_fail(FR_ERR_INVALID, "fr_eval_exposure: NULL argument");
    uint32_t ni = fr_dataset_n_items(train), nu = fr_dataset_n_users(train);
    if (k == 0) return fri_fail(FR_ERR_INVALID, "exposure: K = 0, expected >= 1");
    if (target >= ni) return fri_fail(FR_ERR_RANGE, "exposure: target item %u, expected < %u (the catalogue)", target, ni);
    int nw = pool ? fr_pool_size(pool) : 1;
    exp_job j = {score, ctx, train, target, k, ni, NULL, NULL, NULL, NULL};
    j.ids = fri_malloc((size_t)nw * EXPOSURE_BLOCK * sizeof *j.ids);
    j.sc = fri_malloc((size_t)nw * EXPOSURE_BLOCK * sizeof *j.sc);
    j.seen = fri_calloc((size_t)nw * ni, 1);
    j.exposed = fri_calloc(nu ? nu : 1, 1);
    fr_err e = FR_OK;
    if (!j.ids || !j.sc || !j.seen || !j.exposed) e = FR_ERR_NOMEM;
    if (!e) {
        if (pool) fr_pool_for(pool, nu, 16, exp_user, &j);
        else
            for (uint32_t u = 0; u < nu; u++) exp_user(&j, u, 0);
        uint64_t hit = 0, users = 0;
        for (uint32_t u = 0; u < nu; u++)
            if (j.exposed[u] != 2) { users++; hit += j.exposed[u]; }
        if (!users) e = fri_fail(FR_ERR_EMPTY, "exposure: every user trained on target item %u", target);
        else {
            r->has_exposure = true;
            r->exposure_k = k;
            r->exposure = (double)hit / (double)users;
            r->exposure_users = (uint32_t)users;
        }
    }
    fri_free(j.ids);
    fri_free(j.sc);
    fri_free(j.seen);
    fri_free(j.exposed);
    return e;
}
