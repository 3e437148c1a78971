/* Evaluation metrics over a scoring callback (definitions in include/fedrec/eval.h).
 *
 * Invariants:
 *   - Users are cut into fixed blocks of USERS_PER_BLOCK; each block's sums are taken in
 *     user order into its own slot, and the slots are added in block order. The pool only
 *     decides who computes a block, never the order of any floating-point sum, so every
 *     figure is bit-identical for any thread count.
 *   - All scratch is allocated before the parallel loop (per worker), so workers never
 *     allocate and an allocation failure returns cleanly before any work.
 *   - Full-catalogue ranking streams the catalogue in blocks through a bounded heap of
 *     the best max(K) candidates: O(block + K + |test items|) memory per worker. */
#include <math.h>
#include <stdio.h>

#include "data/dataset.h"
#include "eval/eval_internal.h"
#include "fedrec/eval.h"

#define USERS_PER_BLOCK 64

void fr_eval_opts_default(fr_eval_opts *o) {
    memset(o, 0, sizeof *o);
    o->ks[0] = 5;
    o->ks[1] = 10;
    o->ks[2] = 20;
    o->n_ks = 3;
    o->clip = true;
    o->clip_lo = 1.0f;
    o->clip_hi = 5.0f;
    o->block = 4096;
    o->exposure_k = 10;
}

fr_err fr_eval_opts_check(const fr_eval_opts *o) {
    if (!o) return fri_fail(FR_ERR_INVALID, "eval options: NULL");
    if (o->n_ks < 1 || o->n_ks > FR_EVAL_MAX_K)
        return fri_fail(FR_ERR_INVALID, "eval options: n_ks = %zu, expected 1..%d", o->n_ks, FR_EVAL_MAX_K);
    for (size_t i = 0; i < o->n_ks; i++)
        if (o->ks[i] < 1) return fri_fail(FR_ERR_INVALID, "eval options: ks[%zu] = %u, expected >= 1", i, o->ks[i]);
    if (o->clip && !(o->clip_lo <= o->clip_hi))
        return fri_fail(FR_ERR_INVALID, "eval options: clip range [%g, %g] is empty", (double)o->clip_lo,
                        (double)o->clip_hi);
    if (o->block < 1) return fri_fail(FR_ERR_INVALID, "eval options: block = 0, expected >= 1");
    if (o->exposure && o->exposure_k < 1)
        return fri_fail(FR_ERR_INVALID, "eval options: exposure_k = 0, expected >= 1");
    return FR_OK;
}

void fr_eval_result_init(fr_eval_result *r, const fr_eval_opts *o) {
    memset(r, 0, sizeof *r);
    r->n_ks = o->n_ks <= FR_EVAL_MAX_K ? o->n_ks : FR_EVAL_MAX_K;
    for (size_t i = 0; i < r->n_ks; i++) r->ks[i] = o->ks[i];
}

/* ------------------------------------------------------------ shared machinery */

typedef struct acc {               /* one block of users' sums */
    double hr[FR_EVAL_MAX_K], ndcg[FR_EVAL_MAX_K], mrr[FR_EVAL_MAX_K];
    double prec[FR_EVAL_MAX_K], rec[FR_EVAL_MAX_K];
    double auc;                    /* sum of per-user AUC */
    uint64_t auc_users;            /* users with at least one AUC pair */
    uint64_t users, tests;         /* users ranked, test items ranked */
    double se, ae, se_raw, ae_raw; /* squared / absolute errors (ratings) */
    uint64_t n;                    /* ratings scored */
} acc;

typedef struct cand {              /* a candidate in the top-K heap */
    float s;
    uint32_t id;
} cand;

typedef struct scratch {           /* one worker's buffers, sized before the loop */
    uint32_t *items;               /* [cap] ids to score */
    float *scores;                 /* [cap] */
    uint8_t *isrel;                /* [cap] candidate is relevant (full catalogue) */
    uint32_t *rel;                 /* [relcap] the user's distinct test items, ascending */
    float *rel_s;                  /* [relcap] their scores */
    uint64_t *less, *eq;           /* [relcap] non-relevant scored below / equal (AUC) */
    cand *heap;                    /* [kmax] */
} scratch;

typedef struct job {
    fr_score_fn score;
    void *ctx;
    const fr_dataset *train, *test;
    const fr_negatives *negs;
    const fr_eval_opts *o;
    uint32_t kmax;                 /* largest cut-off */
    uint32_t n_users;              /* users to walk */
    uint32_t n_items;              /* catalogue size (full) */
    size_t block;                  /* catalogue block (full) */
    acc *blocks;                   /* [ceil(n_users / USERS_PER_BLOCK)] */
    scratch *ws;                   /* [workers] */
    int workers;
} job;

static void scratch_free(scratch *ws, int n) {
    if (!ws) return;
    for (int i = 0; i < n; i++) {
        fri_free(ws[i].items); fri_free(ws[i].scores); fri_free(ws[i].isrel);
        fri_free(ws[i].rel); fri_free(ws[i].rel_s); fri_free(ws[i].less); fri_free(ws[i].eq);
        fri_free(ws[i].heap);
    }
    fri_free(ws);
}

static fr_err scratch_alloc(scratch **out, int n, size_t cap, size_t relcap, size_t kmax) {
    *out = NULL;
    scratch *ws = fri_calloc((size_t)n, sizeof *ws);
    if (!ws) return FR_ERR_NOMEM;
    size_t c = cap ? cap : 1, r = relcap ? relcap : 1, k = kmax ? kmax : 1;
    for (int i = 0; i < n; i++) {
        scratch *w = &ws[i];
        w->items = fri_calloc(c, sizeof *w->items);
        w->scores = fri_calloc(c, sizeof *w->scores);
        w->isrel = fri_calloc(c, 1);
        w->rel = fri_calloc(r, sizeof *w->rel);
        w->rel_s = fri_calloc(r, sizeof *w->rel_s);
        w->less = fri_calloc(r, sizeof *w->less);
        w->eq = fri_calloc(r, sizeof *w->eq);
        w->heap = fri_calloc(k, sizeof *w->heap);
        if (!w->items || !w->scores || !w->isrel || !w->rel || !w->rel_s || !w->less || !w->eq || !w->heap) {
            scratch_free(ws, n);
            return FR_ERR_NOMEM;
        }
    }
    *out = ws;
    return FR_OK;
}

/* Runs fn over all user blocks (on pool when given) and adds the block sums in order. */
static fr_err run_blocks(job *j, fr_pool *pool, fr_task_fn fn, size_t cap, size_t relcap, acc *total) {
    memset(total, 0, sizeof *total);
    size_t nb = ((size_t)j->n_users + USERS_PER_BLOCK - 1) / USERS_PER_BLOCK;
    j->workers = pool ? fr_pool_size(pool) : 1;
    j->blocks = fri_calloc(nb ? nb : 1, sizeof *j->blocks);
    if (!j->blocks) return FR_ERR_NOMEM;
    fr_err e = scratch_alloc(&j->ws, j->workers, cap, relcap, j->kmax);
    if (e) { fri_free(j->blocks); return e; }
    if (pool) {
        fr_pool_for(pool, nb, 1, fn, j);
    } else {
        for (size_t b = 0; b < nb; b++) fn(j, b, 0);
    }
    for (size_t b = 0; b < nb; b++) {
        const acc *a = &j->blocks[b];
        for (size_t k = 0; k < FR_EVAL_MAX_K; k++) {
            total->hr[k] += a->hr[k]; total->ndcg[k] += a->ndcg[k]; total->mrr[k] += a->mrr[k];
            total->prec[k] += a->prec[k]; total->rec[k] += a->rec[k];
        }
        total->auc += a->auc; total->auc_users += a->auc_users;
        total->users += a->users; total->tests += a->tests;
        total->se += a->se; total->ae += a->ae; total->se_raw += a->se_raw; total->ae_raw += a->ae_raw;
        total->n += a->n;
    }
    fri_free(j->blocks);
    j->blocks = NULL;
    scratch_free(j->ws, j->workers);
    j->ws = NULL;
    return FR_OK;
}

/* Copies user u's distinct test items (ascending) into rel; returns the count. */
static size_t distinct_items(const fr_dataset *d, uint32_t u, uint32_t *rel) {
    if (u >= d->n_users) return 0;
    const uint32_t *a = d->sorted + d->ptr[u];
    size_t n = (size_t)(d->ptr[u + 1] - d->ptr[u]), m = 0;
    for (size_t i = 0; i < n; i++)
        if (m == 0 || a[i] != rel[m - 1]) rel[m++] = a[i];
    return m;
}

static size_t max_user_len(const fr_dataset *d) {
    uint64_t m = 0;
    for (uint32_t u = 0; u < d->n_users; u++)
        if (d->ptr[u + 1] - d->ptr[u] > m) m = d->ptr[u + 1] - d->ptr[u];
    return (size_t)m;
}

/* ------------------------------------------------------------ ratings */

static void ratings_block(void *ctx, size_t b, int worker) {
    job *j = ctx;
    scratch *w = &j->ws[worker];
    acc *a = &j->blocks[b];
    const fr_dataset *t = j->test;
    uint32_t end = (uint32_t)((b + 1) * USERS_PER_BLOCK < j->n_users ? (b + 1) * USERS_PER_BLOCK : j->n_users);
    for (uint32_t u = (uint32_t)(b * USERS_PER_BLOCK); u < end; u++) {
        size_t n = (size_t)(t->ptr[u + 1] - t->ptr[u]);
        if (n == 0) continue;
        const uint32_t *items = t->item + t->ptr[u];
        const float *r = t->rating + t->ptr[u];
        j->score(j->ctx, u, items, n, w->scores, worker);
        for (size_t i = 0; i < n; i++) {
            double p = w->scores[i], err_raw = p - r[i];
            double pc = p;
            if (j->o->clip) {
                if (pc < j->o->clip_lo) pc = j->o->clip_lo;
                if (pc > j->o->clip_hi) pc = j->o->clip_hi;
            }
            double err = pc - r[i];
            a->se += err * err;
            a->ae += fabs(err);
            a->se_raw += err_raw * err_raw;
            a->ae_raw += fabs(err_raw);
        }
        a->n += n;
        a->users++;
    }
}

/* Adds a run's sums into s (of the run's kind). */
static void add_acc(fr_eval_sums *s, const acc *t) {
    for (size_t k = 0; k < FR_EVAL_MAX_K; k++) {
        s->hr[k] += t->hr[k]; s->ndcg[k] += t->ndcg[k]; s->mrr[k] += t->mrr[k];
        s->precision[k] += t->prec[k]; s->recall[k] += t->rec[k];
    }
    s->auc += t->auc; s->auc_users += t->auc_users;
    s->users += t->users; s->tests += t->tests;
    s->se += t->se; s->ae += t->ae; s->se_raw += t->se_raw; s->ae_raw += t->ae_raw;
    s->ratings += t->n;
}

static fr_err sums_check(const fr_eval_sums *s, fr_eval_sums_kind kind, const fr_eval_opts *o, const char *fn) {
    if (s->kind != kind) return fri_fail(FR_ERR_INVALID, "%s: sums of another kind (%d, expected %d)", fn, (int)s->kind,
                                         (int)kind);
    if (s->n_ks != o->n_ks || memcmp(s->ks, o->ks, o->n_ks * sizeof *o->ks) != 0)
        return fri_fail(FR_ERR_INVALID, "%s: sums of other cut-offs than the options'", fn);
    return FR_OK;
}

fr_err fri_eval_ratings_sums(fr_score_fn score, void *ctx, const fr_dataset *test, const fr_eval_opts *o,
                             fr_pool *pool, fr_eval_sums *s) {
    fr_err e = fr_eval_opts_check(o);
    if (!e) e = sums_check(s, FR_EVAL_SUMS_RATING, o, "rating evaluation");
    if (e) return e;
    job j = {.score = score, .ctx = ctx, .test = test, .o = o, .kmax = 1, .n_users = test->n_users};
    acc t;
    e = run_blocks(&j, pool, ratings_block, max_user_len(test), 1, &t);
    if (!e) add_acc(s, &t);
    return e;
}

fr_err fr_eval_ratings(fr_score_fn score, void *ctx, const fr_dataset *test, const fr_eval_opts *o,
                       fr_pool *pool, fr_eval_result *r) {
    fr_err e = fr_eval_opts_check(o);
    if (e) return e;
    if (!score || !test || !r) return fri_fail(FR_ERR_INVALID, "fr_eval_ratings: NULL argument");
    if (test->n == 0) return fri_fail(FR_ERR_EMPTY, "rating evaluation: the test set has no interaction");
    fr_eval_sums t;
    fr_eval_sums_init(&t, FR_EVAL_SUMS_RATING, o);
    e = fri_eval_ratings_sums(score, ctx, test, o, pool, &t);
    return e ? e : fr_eval_sums_result(&t, r);
}

/* ------------------------------------------------------------ sampled candidates */

/* A NaN score (a diverged model) is the lowest possible score: it ties with -inf and
 * ranks below everything else. */
static inline float clean_score(float s) { return isnan(s) ? -INFINITY : s; }

/* The ranking metrics of one relevant item at (0-based, possibly fractional) position
 * `pos`: an item tied with others takes the mean position of its tie group, so a model
 * that scores everything alike ranks like a coin, never first. */
static inline void rank_metrics(double pos, const fr_eval_opts *o, double *hr, double *nd, double *mr) {
    for (size_t k = 0; k < o->n_ks; k++)
        if (pos < (double)o->ks[k]) {
            hr[k] += 1.0;
            nd[k] += 1.0 / log2(pos + 2.0);
            mr[k] += 1.0 / (pos + 1.0);
        }
}

static void sampled_block(void *ctx, size_t b, int worker) {
    job *j = ctx;
    scratch *w = &j->ws[worker];
    acc *a = &j->blocks[b];
    const fr_negatives *ng = j->negs;
    const fr_eval_opts *o = j->o;
    uint32_t end = (uint32_t)((b + 1) * USERS_PER_BLOCK < j->n_users ? (b + 1) * USERS_PER_BLOCK : j->n_users);
    for (uint32_t u = (uint32_t)(b * USERS_PER_BLOCK); u < end; u++) {
        if (u >= ng->n_users) break;
        size_t nn = (size_t)(ng->ptr[u + 1] - ng->ptr[u]);
        size_t nt = distinct_items(j->test, u, w->items);
        if (nt == 0 || nn == 0) continue;
        /* one call, test items first then the negatives (the anchors' layout) */
        memcpy(w->items + nt, ng->items + ng->ptr[u], nn * sizeof *w->items);
        j->score(j->ctx, u, w->items, nt + nn, w->scores, worker);
        for (size_t i = 0; i < nt + nn; i++) w->scores[i] = clean_score(w->scores[i]);
        const float *neg = w->scores + nt;
        double hr[FR_EVAL_MAX_K] = {0}, nd[FR_EVAL_MAX_K] = {0}, mr[FR_EVAL_MAX_K] = {0}, auc = 0;
        for (size_t t = 0; t < nt; t++) {
            float st = w->scores[t];
            uint64_t above = 0, below = 0, tie = 0;
            for (size_t i = 0; i < nn; i++) {
                if (neg[i] > st) above++;
                else if (neg[i] < st) below++;
                else if (neg[i] == st) tie++;
            }
            rank_metrics((double)above + 0.5 * (double)tie, o, hr, nd, mr);
            auc += ((double)below + 0.5 * (double)tie) / (double)nn;
        }
        for (size_t k = 0; k < o->n_ks; k++) {
            a->hr[k] += hr[k] / (double)nt;
            a->ndcg[k] += nd[k] / (double)nt;
            a->mrr[k] += mr[k] / (double)nt;
        }
        a->auc += auc / (double)nt;
        a->auc_users++;
        a->users++;
        a->tests += nt;
    }
}

fr_err fr_eval_sampled(fr_score_fn score, void *ctx, const fr_dataset *test, const fr_negatives *negs,
                       const fr_eval_opts *o, fr_pool *pool, fr_eval_result *r) {
    fr_err e = fr_eval_opts_check(o);
    if (e) return e;
    if (!score || !test || !negs || !r) return fri_fail(FR_ERR_INVALID, "fr_eval_sampled: NULL argument");
    fr_eval_sums t;
    fr_eval_sums_init(&t, FR_EVAL_SUMS_SAMPLED, o);
    e = fri_eval_sampled_sums(score, ctx, test, negs, o, pool, &t);
    return e ? e : fr_eval_sums_result(&t, r);
}

fr_err fri_eval_sampled_sums(fr_score_fn score, void *ctx, const fr_dataset *test, const fr_negatives *negs,
                             const fr_eval_opts *o, fr_pool *pool, fr_eval_sums *s) {
    fr_err e = fr_eval_opts_check(o);
    if (!e) e = sums_check(s, FR_EVAL_SUMS_SAMPLED, o, "sampled ranking");
    if (e) return e;
    uint64_t maxneg = 0;
    for (uint32_t u = 0; u < negs->n_users; u++)
        if (negs->ptr[u + 1] - negs->ptr[u] > maxneg) maxneg = negs->ptr[u + 1] - negs->ptr[u];
    size_t maxt = max_user_len(test);
    job j = {.score = score, .ctx = ctx, .test = test, .negs = negs, .o = o, .kmax = 1,
             .n_users = test->n_users < negs->n_users ? test->n_users : negs->n_users};
    acc t;
    e = run_blocks(&j, pool, sampled_block, maxt + (size_t)maxneg, 1, &t);
    if (!e) add_acc(s, &t);
    return e;
}

/* ------------------------------------------------------------ bounded heap */

/* a ranks before b: higher score, then smaller id. */
static inline bool better(cand a, cand b) { return a.s > b.s || (a.s == b.s && a.id < b.id); }

/* Min-heap on `better`: the root is the worst of the kept candidates. */
static void heap_push(cand *h, size_t *n, size_t cap, cand c) {
    if (*n < cap) {
        size_t i = (*n)++;
        while (i > 0) {
            size_t p = (i - 1) / 2;
            if (!better(h[p], c)) break;
            h[i] = h[p];
            i = p;
        }
        h[i] = c;
        return;
    }
    if (!better(c, h[0])) return;
    size_t i = 0, m = *n;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, worst = i;
        cand wv = c;
        if (l < m && better(wv, h[l])) { worst = l; wv = h[l]; }
        if (r < m && better(wv, h[r])) { worst = r; wv = h[r]; }
        if (worst == i) break;
        h[i] = h[worst];
        i = worst;
    }
    h[i] = c;
}

/* Sorts the heap in place into best-first order (heapsort: pop the worst to the back). */
static void heap_sort(cand *h, size_t n) {
    for (size_t m = n; m > 1; m--) {
        cand worst = h[0], last = h[m - 1];
        size_t i = 0, k = m - 1;
        for (;;) {
            size_t l = 2 * i + 1, r = l + 1, w = i;
            cand wv = last;
            if (l < k && better(wv, h[l])) { w = l; wv = h[l]; }
            if (r < k && better(wv, h[r])) { w = r; wv = h[r]; }
            if (w == i) break;
            h[i] = h[w];
            i = w;
        }
        h[i] = last;
        h[m - 1] = worst;
    }
}

/* Streams the catalogue for user u: every item not excluded (trained on and not in
 * rel[0..nr)) is scored in blocks and offered to the heap; non-relevant candidates are
 * compared with rel_s for AUC when less/eq are given. Returns the heap size; *n_nonrel
 * gets the number of non-relevant candidates. */
static size_t stream_catalogue(fr_score_fn score, void *ctx, int worker, const fr_dataset *train, uint32_t u,
                               uint32_t n_items, size_t block, bool exclude, const uint32_t *rel, size_t nr,
                               const float *rel_s, uint64_t *less, uint64_t *eq, scratch *w, size_t kcap,
                               uint64_t *n_nonrel) {
    const uint32_t *seen = NULL;
    size_t ns = 0, si = 0, ri = 0, hn = 0;
    if (exclude && u < train->n_users) {
        seen = train->sorted + train->ptr[u];
        ns = (size_t)(train->ptr[u + 1] - train->ptr[u]);
    }
    uint64_t nonrel = 0;
    uint32_t item = 0;
    while (item < n_items) {
        size_t m = 0;
        for (; item < n_items && m < block; item++) {
            while (si < ns && seen[si] < item) si++;
            while (ri < nr && rel[ri] < item) ri++;
            bool is_rel = ri < nr && rel[ri] == item;
            if (!is_rel && si < ns && seen[si] == item) continue;
            w->items[m] = item;
            w->isrel[m] = is_rel;
            m++;
        }
        if (m == 0) break;
        score(ctx, u, w->items, m, w->scores, worker);
        for (size_t i = 0; i < m; i++) {
            cand c = {clean_score(w->scores[i]), w->items[i]};
            if (kcap) heap_push(w->heap, &hn, kcap, c);
            if (!w->isrel[i] && less) {
                nonrel++;
                for (size_t t = 0; t < nr; t++) {
                    if (c.s < rel_s[t]) less[t]++;
                    else if (c.s == rel_s[t]) eq[t]++;
                }
            }
        }
    }
    if (n_nonrel) *n_nonrel = nonrel;
    heap_sort(w->heap, hn);
    return hn;
}


/* ------------------------------------------------------------ full catalogue */

static void full_block(void *ctx, size_t b, int worker) {
    job *j = ctx;
    scratch *w = &j->ws[worker];
    acc *a = &j->blocks[b];
    const fr_eval_opts *o = j->o;
    uint32_t end = (uint32_t)((b + 1) * USERS_PER_BLOCK < j->n_users ? (b + 1) * USERS_PER_BLOCK : j->n_users);
    for (uint32_t u = (uint32_t)(b * USERS_PER_BLOCK); u < end; u++) {
        size_t nr = distinct_items(j->test, u, w->rel);
        if (nr == 0) continue;
        j->score(j->ctx, u, w->rel, nr, w->rel_s, worker);
        for (size_t t = 0; t < nr; t++) w->rel_s[t] = clean_score(w->rel_s[t]);
        memset(w->less, 0, nr * sizeof *w->less);
        memset(w->eq, 0, nr * sizeof *w->eq);
        uint64_t nonrel = 0;
        stream_catalogue(j->score, j->ctx, worker, j->train, u, j->n_items, j->block, true, w->rel, nr, w->rel_s,
                         w->less, w->eq, w, 0, &nonrel);
        /* each relevant item's position: the candidates scored above it, plus half of the
         * others tied with it (its tie group's mean position) */
        double hr[FR_EVAL_MAX_K] = {0}, nd[FR_EVAL_MAX_K] = {0}, mr[FR_EVAL_MAX_K] = {0};
        double first = INFINITY;
        for (size_t t = 0; t < nr; t++) {
            uint64_t above = nonrel - w->less[t] - w->eq[t], tie = w->eq[t];
            for (size_t q = 0; q < nr; q++) {
                if (q == t) continue;
                if (w->rel_s[q] > w->rel_s[t]) above++;
                else if (w->rel_s[q] == w->rel_s[t]) tie++;
            }
            double pos = (double)above + 0.5 * (double)tie;
            rank_metrics(pos, o, hr, nd, mr);
            if (pos < first) first = pos;
        }
        for (size_t k = 0; k < o->n_ks; k++) {
            size_t K = o->ks[k];
            double idcg = 0;
            for (size_t i = 0; i < K && i < nr; i++) idcg += 1.0 / log2((double)i + 2.0);
            a->hr[k] += hr[k] > 0 ? 1.0 : 0.0;
            a->ndcg[k] += nd[k] / idcg;
            a->mrr[k] += first < (double)K ? 1.0 / (first + 1.0) : 0.0;
            a->prec[k] += hr[k] / (double)K;
            a->rec[k] += hr[k] / (double)nr;
        }
        if (nonrel > 0) {
            double s = 0;
            for (size_t t = 0; t < nr; t++) s += (double)w->less[t] + 0.5 * (double)w->eq[t];
            a->auc += s / ((double)nr * (double)nonrel);
            a->auc_users++;
        }
        a->users++;
        a->tests += nr;
    }
}

fr_err fr_eval_full(fr_score_fn score, void *ctx, const fr_dataset *train, const fr_dataset *test,
                    const fr_eval_opts *o, fr_pool *pool, fr_eval_result *r) {
    fr_err e = fr_eval_opts_check(o);
    if (e) return e;
    if (!score || !train || !test || !r) return fri_fail(FR_ERR_INVALID, "fr_eval_full: NULL argument");
    fr_eval_sums t;
    fr_eval_sums_init(&t, FR_EVAL_SUMS_FULL, o);
    e = fri_eval_full_sums(score, ctx, train, test, 0, o, pool, &t);
    return e ? e : fr_eval_sums_result(&t, r);
}

fr_err fri_eval_full_sums(fr_score_fn score, void *ctx, const fr_dataset *train, const fr_dataset *test,
                          uint32_t catalogue, const fr_eval_opts *o, fr_pool *pool, fr_eval_sums *s) {
    fr_err e = fr_eval_opts_check(o);
    if (!e) e = sums_check(s, FR_EVAL_SUMS_FULL, o, "full-catalogue ranking");
    if (e) return e;
    uint32_t n_items = train->n_items > test->n_items ? train->n_items : test->n_items;
    if (catalogue > n_items) n_items = catalogue;
    if (n_items == 0) return fri_fail(FR_ERR_EMPTY, "full-catalogue ranking: the catalogue is empty");
    uint32_t kmax = 0;
    for (size_t k = 0; k < o->n_ks; k++) kmax = o->ks[k] > kmax ? o->ks[k] : kmax;
    if (kmax > n_items) kmax = n_items;
    size_t block = o->block < n_items ? o->block : n_items;
    job j = {.score = score, .ctx = ctx, .train = train, .test = test, .o = o, .kmax = kmax,
             .n_users = test->n_users, .n_items = n_items, .block = block};
    acc t;
    e = run_blocks(&j, pool, full_block, block, max_user_len(test), &t);
    if (!e) add_acc(s, &t);
    return e;
}

/* ------------------------------------------------------------ sums */

void fr_eval_sums_init(fr_eval_sums *s, fr_eval_sums_kind kind, const fr_eval_opts *o) {
    memset(s, 0, sizeof *s);
    s->kind = kind;
    s->n_ks = o->n_ks <= FR_EVAL_MAX_K ? o->n_ks : FR_EVAL_MAX_K;
    for (size_t i = 0; i < s->n_ks; i++) s->ks[i] = o->ks[i];
}

fr_err fr_eval_sums_add(fr_eval_sums *dst, const fr_eval_sums *src) {
    if (dst->kind != src->kind || dst->n_ks != src->n_ks || dst->n_ks > FR_EVAL_MAX_K ||
        memcmp(dst->ks, src->ks, dst->n_ks * sizeof *dst->ks) != 0)
        return fri_fail(FR_ERR_INVALID, "evaluation sums: adding sums of another kind or other cut-offs");
    for (size_t k = 0; k < FR_EVAL_MAX_K; k++) {
        dst->hr[k] += src->hr[k]; dst->ndcg[k] += src->ndcg[k]; dst->mrr[k] += src->mrr[k];
        dst->precision[k] += src->precision[k]; dst->recall[k] += src->recall[k];
    }
    dst->auc += src->auc; dst->auc_users += src->auc_users;
    dst->users += src->users; dst->tests += src->tests;
    dst->ratings += src->ratings;
    dst->se += src->se; dst->ae += src->ae; dst->se_raw += src->se_raw; dst->ae_raw += src->ae_raw;
    return FR_OK;
}

fr_err fr_eval_sums_result(const fr_eval_sums *t, fr_eval_result *r) {
    if (t->n_ks < 1 || t->n_ks > FR_EVAL_MAX_K)
        return fri_fail(FR_ERR_INVALID, "evaluation sums: %zu cut-offs, expected 1..%d", t->n_ks, FR_EVAL_MAX_K);
    if (r->n_ks != t->n_ks || memcmp(r->ks, t->ks, t->n_ks * sizeof *t->ks) != 0)
        return fri_fail(FR_ERR_INVALID, "evaluation sums: the result has other cut-offs");
    switch (t->kind) {
    case FR_EVAL_SUMS_RATING:
        if (t->ratings == 0) return fri_fail(FR_ERR_EMPTY, "rating evaluation: the test set has no interaction");
        r->has_rating = true;
        r->ratings = t->ratings;
        r->rmse = sqrt(t->se / (double)t->ratings);
        r->mae = t->ae / (double)t->ratings;
        r->rmse_raw = sqrt(t->se_raw / (double)t->ratings);
        r->mae_raw = t->ae_raw / (double)t->ratings;
        return FR_OK;
    case FR_EVAL_SUMS_SAMPLED:
        if (t->users == 0)
            return fri_fail(FR_ERR_EMPTY, "sampled ranking: no user has both a test item and negatives");
        r->has_sampled = true;
        r->users_sampled = (uint32_t)t->users;
        r->tests_sampled = t->tests;
        for (size_t k = 0; k < r->n_ks; k++) {
            r->hr[k] = t->hr[k] / (double)t->users;
            r->ndcg[k] = t->ndcg[k] / (double)t->users;
            r->mrr[k] = t->mrr[k] / (double)t->users;
        }
        r->auc = t->auc_users ? t->auc / (double)t->auc_users : NAN;
        return FR_OK;
    case FR_EVAL_SUMS_FULL:
        if (t->users == 0) return fri_fail(FR_ERR_EMPTY, "full-catalogue ranking: no user has a test item");
        r->has_full = true;
        r->users_full = (uint32_t)t->users;
        for (size_t k = 0; k < r->n_ks; k++) {
            r->hr_full[k] = t->hr[k] / (double)t->users;
            r->ndcg_full[k] = t->ndcg[k] / (double)t->users;
            r->mrr_full[k] = t->mrr[k] / (double)t->users;
            r->precision_full[k] = t->precision[k] / (double)t->users;
            r->recall_full[k] = t->recall[k] / (double)t->users;
        }
        r->auc_full = t->auc_users ? t->auc / (double)t->auc_users : NAN;
        return FR_OK;
    }
    return fri_fail(FR_ERR_INVALID, "evaluation sums: kind %d unknown", (int)t->kind);
}

/* ------------------------------------------------------------ top-K */

fr_err fr_eval_topk(fr_score_fn score, void *ctx, const fr_dataset *train, uint32_t user, size_t k, bool exclude_seen,
               uint32_t *out_items, float *out_scores, size_t *out_n) {
    return fri_eval_topk_n(score, ctx, train, train ? train->n_items : 0, user, k, exclude_seen, out_items, out_scores,
                           out_n);
}

fr_err fri_eval_topk_n(fr_score_fn score, void *ctx, const fr_dataset *train, uint32_t n_items, uint32_t user,
                       size_t k, bool exclude_seen, uint32_t *out_items, float *out_scores, size_t *out_n) {
    if (out_n) *out_n = 0;
    if (!score || !train || !out_items || !out_n) return fri_fail(FR_ERR_INVALID, "fr_eval_topk: NULL argument");
    if (k == 0) return fri_fail(FR_ERR_INVALID, "fr_eval_topk: k = 0, expected >= 1");
    if (n_items == 0) return FR_OK;
    size_t kcap = k < n_items ? k : n_items, block = n_items < 4096 ? n_items : 4096;
    scratch *w = NULL;
    fr_err e = scratch_alloc(&w, 1, block, 1, kcap);
    if (e) return e;
    size_t hn = stream_catalogue(score, ctx, 0, train, user, n_items, block, exclude_seen, NULL, 0, NULL, NULL,
                                 NULL, w, kcap, NULL);
    for (size_t i = 0; i < hn; i++) {
        out_items[i] = w->heap[i].id;
        if (out_scores) out_scores[i] = w->heap[i].s;
    }
    *out_n = hn;
    scratch_free(w, 1);
    return FR_OK;
}

/* ------------------------------------------------------------ JSON */

typedef struct jw {
    char *buf;
    size_t cap, len;
    bool over;
} jw;

static void jw_num(jw *w, const char *key, uint32_t k, const char *suffix, double v) {
    char name[48];
    if (k) snprintf(name, sizeof name, "%s@%u%s", key, k, suffix);
    else snprintf(name, sizeof name, "%s%s", key, suffix);
    size_t room = w->len < w->cap ? w->cap - w->len : 0;
    int n;
    if (isfinite(v)) n = snprintf(w->buf + w->len, room, "%s\"%s\":%.17g", w->len ? "," : "", name, v);
    else n = snprintf(w->buf + w->len, room, "%s\"%s\":null", w->len ? "," : "", name);
    if (n < 0 || (size_t)n >= room) {
        w->over = true;
        w->len = w->cap ? w->cap - 1 : 0;
        return;
    }
    w->len += (size_t)n;
}

fr_err fr_eval_result_json(const fr_eval_result *r, char *buf, size_t cap, size_t *len) {
    if (len) *len = 0;
    if (!r || !buf || cap == 0) return fri_fail(FR_ERR_INVALID, "fr_eval_result_json: NULL or empty buffer");
    buf[0] = '\0';
    jw w = {buf, cap, 0, false};
    for (size_t k = 0; k < r->n_ks && !w.over; k++) {
        if (!r->has_sampled) break;
        jw_num(&w, "hr", r->ks[k], "", r->hr[k]);
        jw_num(&w, "ndcg", r->ks[k], "", r->ndcg[k]);
        jw_num(&w, "mrr", r->ks[k], "", r->mrr[k]);
    }
    if (r->has_sampled) {
        jw_num(&w, "auc", 0, "", r->auc);
        jw_num(&w, "eval_users", 0, "", (double)r->users_sampled);
    }
    for (size_t k = 0; k < r->n_ks && !w.over; k++) {
        if (!r->has_full) break;
        jw_num(&w, "hr", r->ks[k], "_full", r->hr_full[k]);
        jw_num(&w, "ndcg", r->ks[k], "_full", r->ndcg_full[k]);
        jw_num(&w, "mrr", r->ks[k], "_full", r->mrr_full[k]);
        jw_num(&w, "precision", r->ks[k], "_full", r->precision_full[k]);
        jw_num(&w, "recall", r->ks[k], "_full", r->recall_full[k]);
    }
    if (r->has_full) {
        jw_num(&w, "auc", 0, "_full", r->auc_full);
        jw_num(&w, "eval_users", 0, "_full", (double)r->users_full);
    }
    if (r->has_rating) {
        jw_num(&w, "rmse", 0, "", r->rmse);
        jw_num(&w, "mae", 0, "", r->mae);
        jw_num(&w, "rmse_raw", 0, "", r->rmse_raw);
        jw_num(&w, "mae_raw", 0, "", r->mae_raw);
        jw_num(&w, "eval_ratings", 0, "", (double)r->ratings);
    }
    if (r->has_exposure) jw_num(&w, "er", r->exposure_k, "", r->exposure);
    if (w.over) {
        buf[w.len] = '\0';
        if (len) *len = w.len;
        return fri_fail(FR_ERR_RANGE, "eval JSON: buffer of %zu bytes is too small", cap);
    }
    if (len) *len = w.len;
    return FR_OK;
}
