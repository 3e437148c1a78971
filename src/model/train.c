/* Centralized training (see include/fedrec/train.h).
 *
 * Invariants that make the model independent of the thread count:
 *   - examples are built per user from the user's own stream, in fixed user blocks that
 *     are concatenated in block order;
 *   - a minibatch is cut into cfg.shards shards (a fixed split of its examples); shard s
 *     always goes to grad g[s] and workspace ws[s], whichever thread computes it, and the
 *     shard gradients and losses are combined in shard order by one thread;
 *   - dense optimizer (the default): each thread sums the shard gradients over its own
 *     slab range, elementwise in shard order, and applies the update rule there; the
 *     update is elementwise, so the split of the slab changes no float;
 *   - sparse-row optimizer: one thread combines the shard gradients (fr_grad_combine, in
 *     shard order) and takes the step.
 * The minibatch loop (fri_examples_run, with this file's step rule) runs inside ONE
 * fr_pool_for per epoch: each pool worker takes one role, runs the loop over the same
 * minibatches, and the roles meet at a barrier twice per minibatch (three times in sparse
 * mode): a condvar wake-up per phase would cost more than a NeuMF shard's compute. The
 * first error of any role is latched (fri_latch) and acted on after a barrier. */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include "fedrec/features.h"
#include "fedrec/train.h"
#include "model/examples.h"
#include "model/family.h"
#include "model/model_internal.h"

#define SMALL_BATCH 128 /* below this, the minibatch loop runs on one thread */
#define N_BLOCKS 64 /* user blocks for example building (fixed: part of no result) */
#define RANGE_CHUNK 2048 /* floats of gradient summed at a time before the update */

void fr_train_config_default(fr_train_config *c) {
    memset(c, 0, sizeof *c);
    c->batch = 256;
    c->negatives = 4;
    c->shards = 2;
    fr_optim_config_default(&c->optim, FR_OPTIM_ADAM);
    c->seed = 1;
    c->threads = 0;
    c->confidence_alpha = 0; /* weights off; the presets turn them on for weighted data */
}

fr_err fr_train_config_check(const fr_train_config *c) {
    if (c->batch == 0 || c->batch > (1u << 24))
        return fri_fail(FR_ERR_INVALID, "train config: batch %u: expected 1..16777216", c->batch);
    if (c->negatives > 1000)
        return fri_fail(FR_ERR_INVALID, "train config: negatives %u: expected 0..1000", c->negatives);
    if (c->shards == 0 || c->shards > FR_TRAIN_MAX_SHARDS)
        return fri_fail(FR_ERR_INVALID, "train config: shards %u: expected 1..%d", c->shards, FR_TRAIN_MAX_SHARDS);
    if (c->threads > 1024)
        return fri_fail(FR_ERR_INVALID, "train config: threads %d: expected <= 1024", c->threads);
    if (!(c->confidence_alpha >= 0) || !isfinite(c->confidence_alpha))
        return fri_fail(FR_ERR_INVALID, "train config: confidence alpha %g: expected a finite number >= 0",
                        (double)c->confidence_alpha);
    if (c->neg_sampler > FR_NEG_POPULARITY)
        return fri_fail(FR_ERR_INVALID, "train config: negative sampler %u: expected 0 (uniform) or 1 (pop)",
                        c->neg_sampler);
    if (!(c->neg_pop_exp >= 0 && c->neg_pop_exp <= 4))
        return fri_fail(FR_ERR_INVALID, "train config: popularity exponent %g: expected (0, 4], or 0 for 1",
                        (double)c->neg_pop_exp);
    return fr_optim_config_check(&c->optim);
}

/* A reusable barrier for `n` parties: spin briefly (a phase is a few microseconds of
 * work), then sleep on a condition variable, so a machine with more runnable threads
 * than cores does not burn the time slices the other parties need. */
typedef struct spin_barrier {
    atomic_uint count;    /* parties arrived in this generation */
    atomic_uint gen;      /* bumped when all have arrived */
    atomic_uint sleepers; /* parties waiting on cv */
    unsigned n;           /* parties */
    pthread_mutex_t mu;   /* guards the sleep */
    pthread_cond_t cv;    /* signalled on a new generation with sleepers */
} spin_barrier;

#define SPINS 20000

static void barrier_wait(spin_barrier *b) {
    if (b->n <= 1) return;
    unsigned g = atomic_load(&b->gen);
    if (atomic_fetch_add(&b->count, 1) == b->n - 1) {
        atomic_store(&b->count, 0);
        atomic_fetch_add(&b->gen, 1);
        if (atomic_load(&b->sleepers)) {
            pthread_mutex_lock(&b->mu);
            pthread_cond_broadcast(&b->cv);
            pthread_mutex_unlock(&b->mu);
        }
        return;
    }
    for (unsigned spins = 0; spins < SPINS; spins++) {
        if (atomic_load_explicit(&b->gen, memory_order_acquire) != g) return;
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
    }
    pthread_mutex_lock(&b->mu);
    atomic_fetch_add(&b->sleepers, 1);
    while (atomic_load(&b->gen) == g) pthread_cond_wait(&b->cv, &b->mu);
    atomic_fetch_sub(&b->sleepers, 1);
    pthread_mutex_unlock(&b->mu);
}

struct fr_trainer {
    fr_model *m;                              /* trained in place (not owned) */
    const fr_dataset *d;                      /* training data (not owned) */
    fr_train_config cfg;                      /* as created */
    fr_loss loss;                             /* the model's loss */
    fr_pool *pool;                            /* owned */
    unsigned parties;                         /* pool workers taking part in the fit loop */
    fri_examples ex;                          /* this epoch's examples, shuffled */
    fri_examples blk[N_BLOCKS];               /* per user block, concatenated into ex */
    fr_err blk_err[N_BLOCKS];                 /* per block build status */
    size_t n_blocks;                          /* used blocks (<= N_BLOCKS) */
    bool blocks_fixed;                        /* blk holds every epoch's examples (mse: no draws) */
    fri_example_rows rows;                    /* shuffle scratch (builds never overlap) */
    fr_model_ws *ws[FR_TRAIN_MAX_SHARDS];     /* per shard */
    fr_grad *g[FR_TRAIN_MAX_SHARDS];          /* per shard; g[0] receives the combination */
    fr_optim *o;                              /* optimizer state */
    uint64_t epoch;                           /* epochs done */
    /* fit loop state, shared by the roles */
    spin_barrier bar;
    double shard_loss[FR_TRAIN_MAX_SHARDS];   /* mean loss of each shard this step */
    size_t shard_n[FR_TRAIN_MAX_SHARDS];      /* examples of each shard this step */
    fri_latch err;                            /* the first error of any role; read after a barrier */
    double loss_sum;                          /* example-weighted loss sum of the epoch (role 0) */
    bool no_fused;                            /* tests: always the generic loop */
    int cores;                                /* CPUs the process may use (fr_cpu_count) */
    /* fused SGD on two or more threads: while one thread steps through this epoch's
     * examples, another builds the next epoch's (they depend only on the seed, the epoch
     * and the data, so the bits are those of building them in turn) */
    fri_examples ex_next;                     /* the next epoch's examples, shuffled */
    bool next_ready;                          /* ex_next holds epoch `epoch`'s examples */
    uint64_t build_epoch;                     /* the epoch build_block builds for */
    bool fused_rows;                          /* the fused pass is the family's rows_pass */
    bool no_negs;                             /* BPR examples built without negatives: rows_pass draws them */
    uint64_t *pos;                            /* with no_negs: the users' items and the absent ones as bits
                                               * (fri_examples.pos), which rows_pass's draws reject */
    float fused_lr;                           /* the fused pass's learning rate */
    double fused_sum;                         /* the fused pass's loss sum */
    fr_err fused_err;                         /* the fused pass's result */
    fri_negpop negpop;                        /* popularity negatives' table, or empty */
};

_Static_assert(FR_TRAIN_MAX_SHARDS <= FRI_STEP_MAX_PARTS, "a minibatch's shards are its loss parts");

void fr_trainer_free(fr_trainer *t) {
    if (!t) return;
    fri_examples_free(&t->ex);
    fri_examples_free(&t->ex_next);
    fri_example_rows_free(&t->rows);
    for (size_t b = 0; b < N_BLOCKS; b++) fri_examples_free(&t->blk[b]);
    for (int s = 0; s < FR_TRAIN_MAX_SHARDS; s++) {
        fr_model_ws_free(t->ws[s]);
        fr_grad_free(t->g[s]);
    }
    fr_optim_free(t->o);
    fr_pool_free(t->pool);
    pthread_mutex_destroy(&t->bar.mu);
    pthread_cond_destroy(&t->bar.cv);
    fri_negpop_free(&t->negpop);
    fri_free(t->pos);
    fri_free(t);
}

static void set_no_negs(fr_trainer *t, bool on);

/* The most bytes the users' item bits (t->pos) may take; above it the trainer draws the
 * negatives itself (the examples keep them), as for a model whose pass does not */
#define POS_BYTES_MAX ((size_t)256 << 20)

/* t->pos: a row of bits over the model's items for each of the data's users, set for the
 * user's items and the absent ones (draw_negative's exclusions). Left NULL (FR_OK) when it
 * would take more than POS_BYTES_MAX. */
static fr_err build_pos(fr_trainer *t) {
    const uint32_t nu = fr_dataset_n_users(t->d), ni = fr_model_config_of(t->m)->n_items;
    const size_t words = ((size_t)ni + 63) / 64;
    size_t n;
    if (fri_mul_size((size_t)nu, words, &n) || n > POS_BYTES_MAX / sizeof(uint64_t)) return FR_OK;
    uint64_t *pos = fri_calloc(n ? n : 1, sizeof *pos);
    if (!pos) return FR_ERR_NOMEM;
    uint32_t n_absent = 0;
    const uint8_t *absent = fr_dataset_absent_items(t->d, &n_absent);
    const uint32_t nd = fr_dataset_n_items(t->d);
    if (absent && n_absent && nu) { /* the absent bits in the first row, copied to the others */
        for (uint32_t j = 0; j < nd && j < ni; j++)
            if (absent[j]) pos[j >> 6] |= (uint64_t)1 << (j & 63);
        for (uint32_t u = 1; u < nu; u++) memcpy(pos + (size_t)u * words, pos, words * sizeof *pos);
    }
    for (uint32_t u = 0; u < nu; u++) {
        uint64_t *row = pos + (size_t)u * words;
        const uint32_t *items;
        const float *r;
        size_t deg = fr_dataset_user(t->d, u, &items, &r, NULL);
        for (size_t x = 0; x < deg; x++) row[items[x] >> 6] |= (uint64_t)1 << (items[x] & 63);
    }
    t->pos = pos;
    t->ex.pos = t->ex_next.pos = pos;
    t->ex.pos_words = t->ex_next.pos_words = words;
    return FR_OK;
}

fr_err fr_trainer_create(fr_trainer **out, fr_model *m, const fr_dataset *d, const fr_train_config *cfg) {
    *out = NULL;
    fr_err e = fr_train_config_check(cfg);
    if (e) return e;
    const fr_model_config *mc = fr_model_config_of(m);
    if (fr_dataset_n_users(d) > mc->n_users || fr_dataset_n_items(d) > mc->n_items)
        return fri_fail(FR_ERR_INVALID, "trainer: the data has %u users and %u items, the model rows for %u and %u",
                        fr_dataset_n_users(d), fr_dataset_n_items(d), mc->n_users, mc->n_items);
    if (fr_dataset_n_interactions(d) == 0) return fri_fail(FR_ERR_EMPTY, "trainer: no training interaction");
    if (cfg->seq_stride && !fr_model_history_len(m))
        return fri_fail(FR_ERR_INVALID, "trainer: sequence stride %u for a model that reads no history (sasrec only)",
                        cfg->seq_stride);
    if (cfg->seq_stride > fr_model_history_len(m))
        return fri_fail(FR_ERR_INVALID, "trainer: sequence stride %u: expected 1..%u (the history length)",
                        cfg->seq_stride, fr_model_history_len(m));
    fr_trainer *t = fri_calloc(1, sizeof *t);
    if (!t) return FR_ERR_NOMEM;
    t->m = m;
    t->d = d;
    t->cfg = *cfg;
    if (fr_model_needs_graph(m) && !fr_model_graph_of(m).items) { /* a graph kind propagates over d */
        fr_model_graph gr = fr_model_graph_dataset(d);
        fr_model_set_graph(m, &gr);
    }
    t->loss = mc->loss;
    /* confidence weights: only where the ratings are weights and the loss ranks */
    float alpha = cfg->confidence_alpha > 0 && mc->loss != FR_LOSS_MSE && fr_dataset_weighted(d) ? cfg->confidence_alpha
                                                                                                  : 0.0f;
    t->ex.alpha = t->ex_next.alpha = alpha;
    for (size_t b = 0; b < N_BLOCKS; b++) t->blk[b].alpha = alpha;
    /* a sequence model: examples carry histories (fri_examples_add_user_seq) */
    const uint32_t hist_len = fr_model_history_len(m);
    t->ex.hist_len = t->ex_next.hist_len = hist_len;
    t->ex.stride = t->ex_next.stride = cfg->seq_stride; /* 0: the history length */
    for (size_t b = 0; b < N_BLOCKS; b++) t->blk[b].hist_len = hist_len, t->blk[b].stride = cfg->seq_stride;
    pthread_mutex_init(&t->bar.mu, NULL);
    pthread_cond_init(&t->bar.cv, NULL);
    uint32_t nu = fr_dataset_n_users(d);
    t->n_blocks = nu < N_BLOCKS ? (nu ? nu : 1) : N_BLOCKS;
    size_t shard_max = (cfg->batch + cfg->shards - 1) / cfg->shards;
    e = fr_pool_create(&t->pool, cfg->threads);
    for (uint32_t s = 0; !e && s < cfg->shards; s++) {
        e = fr_model_ws_create(&t->ws[s], m, shard_max);
        if (!e) e = fr_grad_create(&t->g[s], m);
    }
    if (!e) e = fr_optim_create(&t->o, m, &cfg->optim);
    if (e) { fr_trainer_free(t); return e; }
    if (cfg->neg_sampler == FR_NEG_POPULARITY && !hist_len && mc->loss != FR_LOSS_MSE) {
        /* popularity negatives: the items' interactions in d + 1, as the public popularity */
        uint32_t ni = fr_dataset_n_items(d);
        double *w = fri_malloc((size_t)(ni ? ni : 1) * sizeof *w);
        e = w ? FR_OK : FR_ERR_NOMEM;
        if (w) fri_item_popularity(d, w);
        if (!e) e = fri_negpop_build(&t->negpop, w, ni, cfg->neg_pop_exp);
        fri_free(w);
        if (e) { fr_trainer_free(t); return e; }
        for (size_t b = 0; b < N_BLOCKS; b++) t->blk[b].pop = &t->negpop;
    }
    t->parties = (unsigned)fr_pool_size(t->pool);
    if (t->parties > cfg->shards && !fri_optim_is_dense(t->o)) t->parties = cfg->shards;
    /* small minibatches: two barriers per step cost more than the step; one party runs
     * the same shards in the same order, so the result does not change */
    if (cfg->batch < SMALL_BATCH) t->parties = 1;
    /* more parties than cores only wait on each other at the barriers */
    t->cores = fr_cpu_count();
    if (t->parties > (unsigned)t->cores) t->parties = (unsigned)t->cores;
    t->bar.n = t->parties;
    /* a fused rows_pass that draws its own negatives: none drawn with the examples */
    float lr;
    const bool sgd1 = cfg->batch == 1 && t->m->fam->sgd_pass && fri_optim_plain_sgd(t->o, &lr);
    if (!sgd1 && mc->loss == FR_LOSS_BPR && !hist_len && t->m->fam->rows_pass && t->m->fam->rows_pass_draws &&
        !fri_optim_is_dense(t->o) && fri_optim_zero_keeps(t->o) && t->m->fam->rows_pass_draws(t->m) &&
        t->negpop.col == NULL && (e = build_pos(t)) == FR_OK && t->pos)
        set_no_negs(t, true);
    if (e) { fr_trainer_free(t); return e; }
    *out = t;
    return FR_OK;
}

uint64_t fr_trainer_epochs(const fr_trainer *t) { return t->epoch; }
/* Examples with or without their negatives (t->no_negs), every example set of t. */
static void set_no_negs(fr_trainer *t, bool on) {
    t->no_negs = on;
    t->ex.no_negs = t->ex_next.no_negs = on;
    for (size_t b = 0; b < N_BLOCKS; b++) t->blk[b].no_negs = on;
    t->next_ready = false;
    t->blocks_fixed = false;
}

void fri_trainer_no_fused(fr_trainer *t) {
    t->no_fused = true;
    set_no_negs(t, false); /* the generic loop reads the examples' negatives */
}
fr_pool *fr_trainer_pool(fr_trainer *t) { return t->pool; }

/* ------------------------------------------------------------------ examples */

static void build_block(void *ctx, size_t b, int worker) {
    (void)worker;
    fr_trainer *t = ctx;
    uint32_t nu = fr_dataset_n_users(t->d);
    uint32_t u0 = (uint32_t)((uint64_t)nu * b / t->n_blocks), u1 = (uint32_t)((uint64_t)nu * (b + 1) / t->n_blocks);
    fri_examples *ex = &t->blk[b];
    fri_examples_clear(ex);
    t->blk_err[b] = FR_OK;
    for (uint32_t u = u0; u < u1; u++) {
        fr_rng r;
        fr_rng_init(&r, t->cfg.seed, (uint32_t)t->build_epoch, u, FR_PURPOSE_NEGATIVES);
        fr_err e = ex->hist_len ? fri_examples_add_user_seq(ex, t->d, u, u, &r)
                                : fri_examples_add_user(ex, t->d, u, u, t->loss, t->cfg.negatives, &r);
        if (e) { t->blk_err[b] = e; return; }
    }
}

/* Builds epoch `epoch`'s examples into dst: every user block (on the pool, or in turn on
 * this thread), concatenated in block order, shuffled. The same bits either way. Rating
 * examples (mse) draw nothing, so they are the same every epoch: the blocks are built
 * once and only the shuffle is redone. */
static fr_err build_examples_into(fr_trainer *t, uint64_t epoch, fri_examples *dst, bool on_pool) {
    if (!t->blocks_fixed) {
        t->build_epoch = epoch;
        if (on_pool) fr_pool_for(t->pool, t->n_blocks, 1, build_block, t);
        else
            for (size_t b = 0; b < t->n_blocks; b++) build_block(t, b, 0);
        for (size_t b = 0; b < t->n_blocks; b++)
            if (t->blk_err[b]) return fri_fail(FR_ERR_NOMEM, "trainer: out of memory building examples");
        t->blocks_fixed = t->loss == FR_LOSS_MSE || t->no_negs; /* nothing drawn: the same every epoch */
    }
    fr_rng r;
    fr_rng_init(&r, t->cfg.seed, (uint32_t)epoch, 0, FR_PURPOSE_SHUFFLE);
    return fri_examples_concat_shuffled(dst, t->blk, t->n_blocks, &r, &t->rows);
}

static fr_err build_examples(fr_trainer *t) { return build_examples_into(t, t->epoch, &t->ex, true); }

/* The family's fused pass over t->ex: per-example SGD (sgd_pass) or minibatches of a
 * sparse-row optimizer (rows_pass). */
static fr_err fused_pass(fr_trainer *t, double *sum) {
    if (!t->fused_rows) return t->m->fam->sgd_pass(t->m, &t->ex, t->fused_lr, sum);
    for (uint32_t s = 0; s < t->cfg.shards; s++) fr_grad_zero(t->g[s]); /* a generic epoch may leave them set */
    return t->m->fam->rows_pass(t->m, &t->ex, t->cfg.batch, t->cfg.shards, t->g, t->o, sum);
}

/* The fused epoch on two threads: role 0 steps through t->ex, role 1 builds the next
 * epoch's examples into t->ex_next (a failure there only means building them later). */
static void fused_role(void *ctx, size_t role, int worker) {
    (void)worker;
    fr_trainer *t = ctx;
    if (role == 0) {
        t->fused_sum = 0;
        t->fused_err = fused_pass(t, &t->fused_sum);
    } else {
        t->next_ready = build_examples_into(t, t->epoch + 1, &t->ex_next, false) == FR_OK;
    }
}

/* ------------------------------------------------------------------ fit loop */

/* One role's view of the step rule (fri_examples_run): every role runs the loop over the
 * same minibatches in lockstep, computes its shards and its part of the update, and meets
 * the others at the barriers. Errors are latched (t->err) and acted on only right after
 * a barrier, where every role sees the same latch and leaves the loop together. */
typedef struct role_rule {
    fr_trainer *t;
    size_t role;
    float tmp[RANGE_CHUNK];   /* dense mode: a chunk of the combined gradient */
} role_rule;

/* Sparse mode, role 0 between the phases: combine the shard gradients into g[0] in shard
 * order and take the (serial) sparse-row optimizer step. */
static void combine_and_step(fr_trainer *t, size_t n) {
    fr_err e = FR_OK;
    if (t->cfg.shards > 1) {
        float w0 = (float)((double)t->shard_n[0] / (double)n);
        bool first = true;
        for (uint32_t s = 1; !e && s < t->cfg.shards; s++) {
            if (!t->shard_n[s]) continue;
            e = fr_grad_combine(t->g[0], first ? w0 : 1.0f, t->g[s], (float)((double)t->shard_n[s] / (double)n));
            first = false;
        }
    }
    if (!e) e = fr_optim_step(t->o, t->m, t->g[0]);
    fri_latch_set(&t->err, e, NULL);
}

/* Dense mode, one role's slab range: g = sum over shards (in shard order) of
 * (n_s / n) * g_s, a chunk at a time into scratch, then the update rule on the chunk. */
static void dense_step_range(fr_trainer *t, size_t lo, size_t hi, size_t n, float *tmp) {
    const size_t S = t->cfg.shards;
    float w[FR_TRAIN_MAX_SHARDS];
    const float *gs[FR_TRAIN_MAX_SHARDS];
    for (size_t s = 0; s < S; s++) {
        w[s] = (float)((double)t->shard_n[s] / (double)n);
        gs[s] = fr_grad_data_const(t->g[s]);
    }
    for (size_t at = lo; at < hi; at += RANGE_CHUNK) {
        size_t c = hi - at < RANGE_CHUNK ? hi - at : RANGE_CHUNK;
        if (S == 1) {
            fri_optim_step_range(t->o, t->m, gs[0] + at, at, c);
            continue;
        }
        for (size_t i = 0; i < c; i++) tmp[i] = w[0] * gs[0][at + i];
        for (size_t s = 1; s < S; s++) {
            if (!t->shard_n[s]) continue;
            const float *g = gs[s] + at;
            const float ws = w[s];
            for (size_t i = 0; i < c; i++) tmp[i] += ws * g[i];
        }
        fri_optim_step_range(t->o, t->m, tmp, at, c);
    }
}

/* Whether some role latched an error: read right after a barrier, so every role sees the
 * same answer and leaves the loop at the same point (the latch keeps the real error and
 * its message; the code returned here only ends the loop). */
static fr_err stopped(fr_trainer *t) { return fri_latch_failed(&t->err) ? FR_ERR_STATE : FR_OK; }

/* Dense mode: role 0 counts the step before the shards' phase (fri_optim_step_begin). */
static fr_err role_before(void *ctx, const fr_batch *b) {
    (void)b;
    role_rule *r = ctx;
    if (r->role == 0) fri_latch_set(&r->t->err, fri_optim_step_begin(r->t->o, r->t->m, r->t->g[0]), NULL);
    return FR_OK;
}

/* Phase A: this role's shards (shard s holds examples [n s / S, n (s+1) / S) of b), then
 * the barrier; role 0 reports every shard's loss. */
static fr_err role_gradient(void *ctx, const fr_batch *b, fri_step_loss *l) {
    role_rule *r = ctx;
    fr_trainer *t = r->t;
    const size_t S = t->cfg.shards, P = t->parties, n = b->n;
    for (size_t s = r->role; s < S; s += P) {
        size_t lo = n * s / S, hi = n * (s + 1) / S;
        t->shard_n[s] = hi - lo;
        t->shard_loss[s] = 0;
        fr_grad_zero(t->g[s]);
        if (hi == lo) continue;
        fr_batch sb = {b->users + lo, b->items + lo, b->label ? b->label + lo : NULL, b->neg ? b->neg + lo : NULL,
                       hi - lo, b->weight ? b->weight + lo : NULL};
        if (b->hist) { /* a sequence model's histories */
            sb.hist = b->hist + lo * b->hist_len;
            sb.hist_neg = b->hist_neg ? b->hist_neg + lo * b->hist_len : NULL;
            sb.key = b->key ? b->key + lo : NULL;
            sb.hist_len = b->hist_len;
        }
        fri_latch_set(&t->err, fr_model_loss_grad(t->m, t->ws[s], &sb, t->g[s], &t->shard_loss[s]), NULL);
    }
    barrier_wait(&t->bar);
    fr_err e = stopped(t);
    if (e) return e;
    l->parts = r->role == 0 ? (uint32_t)S : 0;
    for (uint32_t s = 0; s < l->parts; s++) {
        l->mean[s] = t->shard_loss[s];
        l->n[s] = t->shard_n[s];
    }
    return FR_OK;
}

/* Phase B: dense, each role sums the shard gradients over its slab range and updates it;
 * sparse, role 0 combines in shard order and steps while the others wait. */
static fr_err role_step(void *ctx, const fr_batch *b) {
    role_rule *r = ctx;
    fr_trainer *t = r->t;
    const size_t P = t->parties, role = r->role;
    if (fri_optim_is_dense(t->o)) {
        const size_t np = fr_model_n_params(t->m);
        size_t lo = np * role / P, hi = np * (role + 1) / P;
        lo &= ~(size_t)15;
        hi = role + 1 == P ? np : hi & ~(size_t)15;
        if (hi > lo) dense_step_range(t, lo, hi, b->n, r->tmp);
    } else {
        if (role == 0) combine_and_step(t, b->n);
        barrier_wait(&t->bar);
        fr_err e = stopped(t);
        if (e) return e;
    }
    barrier_wait(&t->bar);
    return FR_OK;
}

static void fit_role(void *ctx, size_t role, int worker) {
    (void)worker;
    fr_trainer *t = ctx;
    role_rule r = {.t = t, .role = role};
    bool dense = fri_optim_is_dense(t->o);
    fri_step_rule rule = {&r, dense ? role_before : NULL, role_gradient, NULL, role_step};
    double ignored = 0; /* role 0 keeps the books */
    fr_err e = fri_examples_run(&t->ex, t->cfg.batch, t->loss, &rule, role == 0 ? &t->loss_sum : &ignored);
    fri_latch_set(&t->err, e, NULL);
}

fr_err fr_model_fit(fr_model *m, const fr_dataset *d, double *loss) {
    if (loss) *loss = NAN;
    if (!m || !d) return fri_fail(FR_ERR_INVALID, "fr_model_fit: no model or no data");
    if (!fr_model_kind_is_closed_form(m->cfg.kind))
        return fri_fail(FR_ERR_UNSUPPORTED, "%s is trained by gradient steps (fr_trainer, fr_sim), not fitted in closed form",
                        fr_model_kind_name(m->cfg.kind));
    if (fr_dataset_n_users(d) > m->cfg.n_users || fr_dataset_n_items(d) > m->cfg.n_items)
        return fri_fail(FR_ERR_INVALID, "%s: the data has %u users and %u items, the model rows for %u and %u",
                        fr_model_kind_name(m->cfg.kind), fr_dataset_n_users(d), fr_dataset_n_items(d), m->cfg.n_users,
                        m->cfg.n_items);
    if (fr_dataset_n_interactions(d) == 0)
        return fri_fail(FR_ERR_EMPTY, "%s: no training interaction to fit", fr_model_kind_name(m->cfg.kind));
    double l = 0;
    fr_err e = m->fam->fit(m, d, &l);
    if (!e && loss) *loss = l;
    return e;
}

fr_err fr_trainer_epoch(fr_trainer *t, double *mean_loss) {
    if (fr_model_kind_is_closed_form(fr_model_config_of(t->m)->kind)) { /* a baseline: its fit is the epoch */
        fr_err e = fr_model_fit(t->m, t->d, mean_loss);
        if (!e) t->epoch++;
        return e;
    }
    /* batch 1 with plain SGD: the family's fused loop, the same bits without the minibatch
     * machinery (a minibatch of one is where that machinery costs most); a sparse-row
     * optimizer that keeps rows of zero gradient: the family's fused minibatch loop, which
     * combines and steps only the rows touched, the same bits. With two threads or more
     * the next epoch's examples are built meanwhile */
    fr_err e;
    bool sgd1 = t->cfg.batch == 1 && t->m->fam->sgd_pass && fri_optim_plain_sgd(t->o, &t->fused_lr);
    t->fused_rows = !sgd1 && t->m->fam->rows_pass && !fri_optim_is_dense(t->o) && fri_optim_zero_keeps(t->o);
    if (!t->no_fused && (sgd1 || t->fused_rows)) {
        if (t->next_ready) { /* built during the last epoch */
            fri_examples tmp = t->ex;
            t->ex = t->ex_next;
            t->ex_next = tmp;
            t->next_ready = false;
        } else if ((e = build_examples(t))) {
            return e;
        }
        double sum = 0;
        if (fr_pool_size(t->pool) >= 2 && t->cores >= 2) {
            fr_pool_for(t->pool, 2, 1, fused_role, t);
            e = t->fused_err;
            sum = t->fused_sum;
        } else {
            e = fused_pass(t, &sum);
        }
        if (!e) {
            if (!t->fused_rows) fri_optim_set_steps(t->o, fr_optim_steps(t->o) + t->ex.n); /* rows_pass counts its own */
            t->loss_sum = sum;
            goto done;
        }
        if (e != FR_ERR_UNSUPPORTED) return e; /* UNSUPPORTED: not fused for this loss, the generic loop */
        t->next_ready = false;
    } else if ((e = build_examples(t))) {
        return e;
    }
    t->loss_sum = 0;
    fri_latch_reset(&t->err);
    fr_pool_for(t->pool, t->parties, 1, fit_role, t);
    if ((e = fri_latch_get(&t->err))) return e;
done:
    t->epoch++;
    if (mean_loss) *mean_loss = t->ex.n ? t->loss_sum / (double)t->ex.n : 0.0;
    return FR_OK;
}

fr_err fr_trainer_set_lr(fr_trainer *t, float lr) { return fr_optim_set_lr(t->o, lr); }
