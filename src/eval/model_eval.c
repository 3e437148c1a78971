/* Metrics for an fr_model (see include/fedrec/model_eval.h). The scorer fills a per-worker
 * users array once and scores items in chunks of its workspace, so a callback allocates
 * nothing; errors inside a callback (which returns void) are latched for the caller. */
#include <math.h>
#include <stdio.h>

#include "core/core.h"
#include "fedrec/model_eval.h"
#include "model/model_internal.h"

#define CHUNK 1024 /* items per fr_model_score call */

typedef struct worker_scratch {
    fr_model_ws *ws;      /* model workspace */
    uint32_t users[CHUNK];/* the user row, repeated */
    uint32_t items[CHUNK];/* mapped items */
    uint32_t *hist;       /* [L] a sequence model's history of the user being scored */
} worker_scratch;

struct fr_model_scorer {
    const fr_model *m;          /* scored model (not owned) */
    const uint32_t *user_map;   /* eval user -> model row, or NULL */
    const uint32_t *item_map;   /* eval item -> model row, or NULL */
    int n_workers;              /* entries of w */
    worker_scratch *w;          /* [n_workers] */
    uint32_t L;                 /* the model's history length (0: it reads none) */
    const fr_dataset *hist;     /* histories: its user rows in time order (eval ids), or NULL */
    fri_latch err;              /* first error met by a callback */
};

void fr_model_scorer_free(fr_model_scorer *s) {
    if (!s) return;
    for (int i = 0; i < s->n_workers; i++) {
        fr_model_ws_free(s->w[i].ws);
        fri_free(s->w[i].hist);
    }
    fri_free(s->w);
    fri_free(s);
}

fr_err fr_model_scorer_create(fr_model_scorer **out, const fr_model *m, fr_pool *pool, const uint32_t *user_map,
                              const uint32_t *item_map) {
    *out = NULL;
    fr_model_scorer *s = fri_calloc(1, sizeof *s);
    if (!s) return FR_ERR_NOMEM;
    fri_latch_reset(&s->err);
    s->m = m;
    s->user_map = user_map;
    s->item_map = item_map;
    s->L = fr_model_history_len(m);
    int n = fr_pool_size(pool);
    s->w = fri_calloc((size_t)n, sizeof *s->w);
    if (!s->w) { fri_free(s); return FR_ERR_NOMEM; }
    for (int i = 0; i < n; i++) {
        fr_err e = fr_model_ws_create(&s->w[i].ws, m, 256);
        s->n_workers = i + 1;
        if (!e && s->L && !(s->w[i].hist = fri_malloc(s->L * sizeof(uint32_t)))) e = FR_ERR_NOMEM;
        if (e) { fr_model_scorer_free(s); return e; }
    }
    *out = s;
    return FR_OK;
}

void fr_model_scorer_set_history(fr_model_scorer *s, const fr_dataset *d) { s->hist = d; }

/* A sequence model's history of eval user `user` into w->hist: its last L items in d
 * (time order) that the model knows, as model rows, FR_NO_ITEM-padded on the left. */
static void user_history(const fr_model_scorer *s, worker_scratch *w, uint32_t user) {
    const uint32_t L = s->L;
    for (uint32_t t = 0; t < L; t++) w->hist[t] = FR_NO_ITEM;
    if (!s->hist || user >= fr_dataset_n_users(s->hist)) return;
    const uint32_t *it;
    size_t n = fr_dataset_user(s->hist, user, &it, NULL, NULL);
    uint32_t t = L;
    for (size_t x = n; x-- > 0 && t > 0;) {
        uint32_t r = s->item_map ? s->item_map[it[x]] : it[x];
        if (r != UINT32_MAX) w->hist[--t] = r;
    }
}

void fr_model_scorer_fn(void *ctx, uint32_t user, const uint32_t *items, size_t n, float *scores_out, int worker) {
    fr_model_scorer *s = ctx;
    worker_scratch *w = &s->w[worker];
    if (s->L) user_history(s, w, user);
    uint32_t row = s->user_map ? s->user_map[user] : user;
    if (row == UINT32_MAX) {
        for (size_t i = 0; i < n; i++) scores_out[i] = -INFINITY;
        return;
    }
    for (size_t i = 0; i < CHUNK; i++) w->users[i] = row;
    for (size_t at = 0; at < n; at += CHUNK) {
        size_t k = n - at < CHUNK ? n - at : CHUNK;
        const uint32_t *it = items + at;
        bool unknown = false;
        if (s->item_map) {
            for (size_t i = 0; i < k; i++) {
                uint32_t r = s->item_map[items[at + i]];
                unknown |= r == UINT32_MAX;
                w->items[i] = r == UINT32_MAX ? 0 : r;
            }
            it = w->items;
        }
        fr_err e = s->L ? fr_model_score_history(s->m, w->ws, w->hist, s->L, it, k, scores_out + at)
                        : fr_model_score(s->m, w->ws, w->users, it, k, scores_out + at);
        if (e) {
            fri_latch_set(&s->err, e, NULL);
            for (size_t i = 0; i < k; i++) scores_out[at + i] = NAN;
            continue;
        }
        if (unknown)
            for (size_t i = 0; i < k; i++)
                if (s->item_map[items[at + i]] == UINT32_MAX) scores_out[at + i] = -INFINITY;
    }
}

fr_err fr_model_scorer_status(const fr_model_scorer *s) { return fri_latch_get(&((fr_model_scorer *)s)->err); }

fr_err fr_model_evaluate_with(fr_model_scorer *s, const fr_model *m, const fr_dataset *train, const fr_dataset *test,
                              const fr_negatives *negs, const fr_eval_opts *o, fr_pool *pool, fr_eval_result *r) {
    fr_eval_opts opts;
    if (o) opts = *o;
    else fr_eval_opts_default(&opts);
    fr_eval_result_init(r, &opts);
    if (s->L && !s->hist) s->hist = train; /* a sequence model reads each user's training items */
    /* the model is not written while it runs (model_eval.h): a score cache is checked once */
    for (int i = 0; i < s->n_workers; i++) fri_model_ws_hold(s->w[i].ws, true);
    fr_err e;
    if (fr_model_kind_is_explicit(fr_model_config_of(m)->kind)) {
        fr_dataset_info in;
        fr_dataset_info_compute(train, &in);
        if (in.interactions && in.rating_max > in.rating_min) {
            opts.clip = true;
            opts.clip_lo = (float)in.rating_min;
            opts.clip_hi = (float)in.rating_max;
        }
        e = fr_eval_ratings(fr_model_scorer_fn, s, test, &opts, pool, r);
    } else if (negs) {
        e = fr_eval_sampled(fr_model_scorer_fn, s, test, negs, &opts, pool, r);
    } else {
        e = fr_eval_full(fr_model_scorer_fn, s, train, test, &opts, pool, r);
    }
    if (!e && opts.exposure) e = fr_eval_exposure(fr_model_scorer_fn, s, train, opts.exposure_item, opts.exposure_k, pool, r);
    for (int i = 0; i < s->n_workers; i++) fri_model_ws_hold(s->w[i].ws, false);
    if (e) return e;
    return fr_model_scorer_status(s);
}

fr_err fr_model_evaluate(const fr_model *m, const fr_dataset *train, const fr_dataset *test, const fr_negatives *negs,
                         const fr_eval_opts *o, fr_pool *pool, fr_eval_result *r) {
    fr_model_scorer *s = NULL;
    fr_err e = fr_model_scorer_create(&s, m, pool, NULL, NULL);
    if (e) return e;
    e = fr_model_evaluate_with(s, m, train, test, negs, o, pool, r);
    fr_model_scorer_free(s);
    return e;
}
