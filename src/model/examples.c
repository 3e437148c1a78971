/* Training examples, the one minibatch loop and its plain step rule (see examples.h). */
#include "model/examples.h"

#include "fedrec/features.h"

void fri_examples_clear(fri_examples *ex) { ex->n = 0; }

void fri_examples_free(fri_examples *ex) {
    fri_free(ex->user);
    fri_free(ex->item);
    fri_free(ex->neg);
    fri_free(ex->label);
    fri_free(ex->wt);
    fri_free(ex->hist);
    fri_free(ex->hneg);
    fri_free(ex->key);
    fri_free(ex->mark);
    memset(ex, 0, sizeof *ex);
}

void fri_example_rows_free(fri_example_rows *r) {
    fri_free(r->p);
    r->p = NULL;
    r->bytes = 0;
}

fr_err fri_examples_reserve(fri_examples *ex, size_t n) {
    if (n <= ex->cap) return FR_OK;
    size_t cap = ex->cap ? ex->cap : 256;
    while (cap < n) cap = cap > SIZE_MAX / 4 ? n : cap * 2;
    uint32_t *u = fri_realloc(ex->user, cap * sizeof *u);
    if (!u) return FR_ERR_NOMEM;
    ex->user = u;
    uint32_t *i = fri_realloc(ex->item, cap * sizeof *i);
    if (!i) return FR_ERR_NOMEM;
    ex->item = i;
    uint32_t *g = fri_realloc(ex->neg, cap * sizeof *g);
    if (!g) return FR_ERR_NOMEM;
    ex->neg = g;
    float *l = fri_realloc(ex->label, cap * sizeof *l);
    if (!l) return FR_ERR_NOMEM;
    ex->label = l;
    float *w = fri_realloc(ex->wt, cap * sizeof *w);
    if (!w) return FR_ERR_NOMEM;
    ex->wt = w;
    if (ex->hist_len) {
        size_t L = ex->hist_len;
        if (cap > SIZE_MAX / sizeof(uint32_t) / L) return FR_ERR_NOMEM;
        uint32_t *h = fri_realloc(ex->hist, cap * L * sizeof *h);
        if (!h) return FR_ERR_NOMEM;
        ex->hist = h;
        uint32_t *hn = fri_realloc(ex->hneg, cap * L * sizeof *hn);
        if (!hn) return FR_ERR_NOMEM;
        ex->hneg = hn;
        uint64_t *k = fri_realloc(ex->key, cap * sizeof *k);
        if (!k) return FR_ERR_NOMEM;
        ex->key = k;
    }
    ex->cap = cap;
    return FR_OK;
}

/* A uniform item the user never touched and that is not absent (fr_dataset_absent_items:
 * a cold split's held-out items); UINT32_MAX if there is none. Membership is a
 * bit test when mark holds the user's items (set by the caller), else a binary search;
 * the draws are the same either way. The words come through a batch reader (fr_rng_below's
 * values and words, fri_rng_batch_below). */
typedef struct neg_ctx {
    uint32_t n_items;
    const uint8_t *absent; /* fr_dataset_absent_items (never in a user's items) */
    bool none;             /* the user's items and the absent ones are the catalogue */
} neg_ctx;

static neg_ctx neg_ctx_of(const fr_dataset *d, size_t deg) {
    uint32_t n_absent = 0;
    neg_ctx c = {fr_dataset_n_items(d), fr_dataset_absent_items(d, &n_absent), false};
    c.none = deg + n_absent >= c.n_items;
    return c;
}

static uint32_t draw_negative(const fr_dataset *d, uint32_t user, const neg_ctx *c, fri_rng_batch *rng,
                              const uint64_t *mark, const fri_negpop *pop) {
    const uint32_t n_items = c->n_items;
    const uint8_t *absent = c->absent;
    if (c->none) return UINT32_MAX;
    for (;;) {
        uint32_t j = pop ? fri_negpop_draw(pop, rng) : fri_rng_batch_below(rng, n_items);
        if (absent && absent[j]) continue;
        if (mark ? !(mark[j >> 6] >> (j & 63) & 1) : !fr_dataset_has(d, user, j)) return j;
    }
}

fr_err fri_negpop_build(fri_negpop *p, const double *w, uint32_t n, double b) {
    fri_negpop_free(p);
    if (n == 0) return fri_fail(FR_ERR_INVALID, "popularity negatives over an empty catalogue");
    if (!(b >= 0 && b <= 4)) return fri_fail(FR_ERR_INVALID, "popularity exponent %g: expected (0, 4], or 0 for 1", b);
    for (uint32_t i = 0; i < n; i++)
        if (!(w[i] > 0) || !isfinite(w[i]))
            return fri_fail(FR_ERR_INVALID, "popularity of item %u is %g; expected a finite number > 0", i, w[i]);
    fri_alias_col *col = fri_malloc((size_t)n * sizeof *col);
    double *scaled = fri_malloc((size_t)n * sizeof *scaled);
    uint32_t *small = fri_malloc((size_t)n * sizeof *small), *large = fri_malloc((size_t)n * sizeof *large);
    fr_err e = col && scaled && small && large ? FR_OK : FR_ERR_NOMEM;
    const bool tempered = b != 0 && b != 1;
    if (!e && tempered) { /* scaled holds the tempered weights until the build overwrites it */
        double *tw = fri_malloc((size_t)n * sizeof *tw);
        if (!tw) e = FR_ERR_NOMEM;
        /* b = 0.5 (bpr's preset) by the correctly rounded sqrt: the same table on every
         * machine; other exponents by libm's pow */
        for (uint32_t i = 0; !e && i < n; i++) tw[i] = b == 0.5 ? sqrt(w[i]) : pow(w[i], b);
        if (!e) fri_alias_build(col, tw, n, scaled, small, large);
        fri_free(tw);
    } else if (!e) {
        fri_alias_build(col, w, n, scaled, small, large);
    }
    fri_free(scaled);
    fri_free(small);
    fri_free(large);
    if (e) { fri_free(col); return e; }
    p->n = n;
    p->col = col;
    return FR_OK;
}

void fri_negpop_free(fri_negpop *p) {
    fri_free(p->col);
    p->col = NULL;
    p->n = 0;
}

void fri_item_popularity(const fr_dataset *d, double *w) {
    const uint32_t ni = fr_dataset_n_items(d);
    for (uint32_t i = 0; i < ni; i++) w[i] = 1;
    for (uint32_t u = 0; u < fr_dataset_n_users(d); u++) {
        const uint32_t *it;
        size_t n = fr_dataset_user(d, u, &it, NULL, NULL);
        for (size_t j = 0; j < n; j++) w[it[j]] += 1;
    }
}

/* The user's items as bits of ex->mark (grown to the catalogue), or NULL when the scratch
 * cannot be had (the binary search then answers: the same draws, more slowly). */
static const uint64_t *mark_items(fri_examples *ex, uint32_t n_items, const uint32_t *items, size_t deg) {
    if (ex->mark_bits < n_items) {
        size_t words = ((size_t)n_items + 63) / 64;
        uint64_t *m = fri_calloc(words, sizeof *m);
        if (!m) return NULL;
        fri_free(ex->mark);
        ex->mark = m;
        ex->mark_bits = words * 64;
    }
    for (size_t x = 0; x < deg; x++) ex->mark[items[x] >> 6] |= (uint64_t)1 << (items[x] & 63);
    return ex->mark;
}

fr_err fri_examples_add_user(fri_examples *ex, const fr_dataset *d, uint32_t user, uint32_t row, fr_loss loss,
                             uint32_t neg, fr_rng *rng) {
    const uint32_t *items;
    const float *ratings;
    size_t deg = fr_dataset_user(d, user, &items, &ratings, NULL);
    size_t per = loss == FR_LOSS_MSE || loss == FR_LOSS_CE ? 1 : loss == FR_LOSS_BCE ? 1 + (size_t)neg : (neg ? neg : 1);
    fr_err e = fri_examples_reserve(ex, ex->n + deg * per);
    if (e) return e;
    size_t k = ex->n;
    const bool own = loss == FR_LOSS_BPR && ex->no_negs; /* the pass draws the negatives */
    const uint64_t *mark =
        loss != FR_LOSS_MSE && !own && deg >= 8 ? mark_items(ex, fr_dataset_n_items(d), items, deg) : NULL;
    /* the negatives' words from a batch reader (blocks made side by side): rng ends where
     * drawing them one by one leaves it, so the same examples */
    fri_rng_batch rb;
    const bool draws = (loss == FR_LOSS_BPR && !own) || (loss == FR_LOSS_BCE && neg > 0);
    const fri_negpop *pop = ex->pop && ex->pop->col ? ex->pop : NULL; /* two words a draw */
    if (draws) fri_rng_batch_begin_for(&rb, rng, (uint64_t)deg * (loss == FR_LOSS_BCE ? neg : per) * (pop ? 2 : 1));
    const neg_ctx nc = neg_ctx_of(d, deg); /* once a user */
    for (size_t x = 0; x < deg; x++) {
        const size_t k0 = k;
        switch (loss) {
        case FR_LOSS_MSE:
            ex->user[k] = row; ex->item[k] = items[x]; ex->label[k] = ratings[x]; ex->neg[k] = 0;
            k++;
            break;
        case FR_LOSS_BCE:
            ex->user[k] = row; ex->item[k] = items[x]; ex->label[k] = 1.0f; ex->neg[k] = 0;
            k++;
            for (uint32_t q = 0; q < neg; q++) {
                uint32_t j = draw_negative(d, user, &nc, &rb, mark, pop);
                if (j == UINT32_MAX) break;
                ex->user[k] = row; ex->item[k] = j; ex->label[k] = 0.0f; ex->neg[k] = 0;
                k++;
            }
            break;
        case FR_LOSS_CE: /* a softmax over every item: the positive alone */
            ex->user[k] = row; ex->item[k] = items[x]; ex->label[k] = 1.0f; ex->neg[k] = 0;
            k++;
            break;
        case FR_LOSS_BPR:
            for (size_t q = 0; q < per; q++) {
                uint32_t j = own ? (nc.none ? UINT32_MAX : 0) : draw_negative(d, user, &nc, &rb, mark, pop);
                if (j == UINT32_MAX) break;
                ex->user[k] = row; ex->item[k] = items[x]; ex->neg[k] = j; ex->label[k] = 1.0f;
                k++;
            }
            break;
        }
        if (ex->alpha > 0 && k > k0) {
            /* the positive's confidence on its own term (BCE) or on each of its triples
             * (BPR); a rating (MSE) is a label, not a weight */
            const float c = loss == FR_LOSS_MSE ? 1.0f : fri_confidence(ex->alpha, ratings[x]);
            ex->wt[k0] = c;
            for (size_t y = k0 + 1; y < k; y++) ex->wt[y] = loss == FR_LOSS_BPR ? c : 1.0f;
        }
    }
    if (draws) fri_rng_batch_end(&rb);
    if (mark)
        for (size_t x = 0; x < deg; x++) ex->mark[items[x] >> 6] = 0; /* all clear for the next user */
    ex->n = k;
    return FR_OK;
}

fr_err fri_examples_add_seq(fri_examples *ex, const uint32_t *items, size_t deg, uint32_t n_items, fri_item_had had,
                            const void *ctx, uint32_t row, fr_rng *rng) {
    const size_t L = ex->hist_len;
    if (!L) return fri_fail(FR_ERR_INVALID, "sequence examples without a history length");
    const size_t S = ex->stride ? ex->stride : L;
    if (S > L) return fri_fail(FR_ERR_INVALID, "sequence stride %zu: expected 1..%zu (the history length)", S, L);
    if (deg < 2) return FR_OK;
    const size_t windows = deg - 1 <= L ? 1 : 1 + (deg - 1 - L + S - 1) / S;
    fr_err e = fri_examples_reserve(ex, ex->n + windows);
    if (e) return e;
    size_t k = ex->n;
    for (size_t end = deg - 1;; end -= S) {
        /* the oldest window (end <= L) trains every position; another its last S */
        const size_t n_ctx = end <= L ? 0 : L - S;
        ex->user[k] = row; ex->item[k] = items[end]; ex->label[k] = 1.0f; ex->neg[k] = 0;
        if (ex->alpha > 0) ex->wt[k] = 1.0f;
        uint32_t *h = ex->hist + k * L, *hn = ex->hneg + k * L;
        for (size_t t = 0; t < L; t++) {
            if (end + t < L) { /* position t holds s_{end - L + t}, before s_0 */
                h[t] = hn[t] = FR_NO_ITEM;
                continue;
            }
            h[t] = items[end - L + t];
            if (t < n_ctx) { /* context only: its next item is a target of an older window */
                hn[t] = FR_NO_LOSS;
                continue;
            }
            uint32_t j = UINT32_MAX;
            if (deg < n_items)
                do j = fr_rng_below(rng, n_items); while (had(ctx, j));
            hn[t] = j == UINT32_MAX ? FR_NO_ITEM : j;
        }
        ex->key[k] = fr_rng_u64(rng);
        k++;
        if (end <= L) break;
    }
    ex->n = k;
    return FR_OK;
}

typedef struct had_ds {
    const fr_dataset *d;
    uint32_t user;
    const uint64_t *mark; /* the user's items as bits, or NULL: a binary search */
} had_ds;

static bool had_in_dataset(const void *ctx, uint32_t j) {
    const had_ds *h = ctx;
    return h->mark ? (h->mark[j >> 6] >> (j & 63) & 1) : fr_dataset_has(h->d, h->user, j);
}

fr_err fri_examples_add_user_seq(fri_examples *ex, const fr_dataset *d, uint32_t user, uint32_t row, fr_rng *rng) {
    const uint32_t *items;
    const size_t deg = fr_dataset_user(d, user, &items, NULL, NULL);
    had_ds h = {d, user, deg >= 8 ? mark_items(ex, fr_dataset_n_items(d), items, deg) : NULL};
    fr_err e = fri_examples_add_seq(ex, items, deg, fr_dataset_n_items(d), had_in_dataset, &h, row, rng);
    if (h.mark)
        for (size_t x = 0; x < deg; x++) ex->mark[items[x] >> 6] = 0;
    return e;
}

/* Swaps examples a and b (every array; wt when weighted). */
static inline void swap_examples(fri_examples *ex, size_t a, size_t b, bool weighted) {
    uint32_t t;
    t = ex->user[a]; ex->user[a] = ex->user[b]; ex->user[b] = t;
    t = ex->item[a]; ex->item[a] = ex->item[b]; ex->item[b] = t;
    t = ex->neg[a]; ex->neg[a] = ex->neg[b]; ex->neg[b] = t;
    float l = ex->label[a]; ex->label[a] = ex->label[b]; ex->label[b] = l;
    if (weighted) { l = ex->wt[a]; ex->wt[a] = ex->wt[b]; ex->wt[b] = l; }
    if (ex->hist_len) { /* a sequence model's examples: their histories and keys too */
        const size_t L = ex->hist_len;
        uint32_t *ha = ex->hist + a * L, *hb = ex->hist + b * L, *na = ex->hneg + a * L, *nb = ex->hneg + b * L;
        for (size_t x = 0; x < L; x++) {
            t = ha[x]; ha[x] = hb[x]; hb[x] = t;
            t = na[x]; na[x] = nb[x]; nb[x] = t;
        }
        uint64_t kk = ex->key[a]; ex->key[a] = ex->key[b]; ex->key[b] = kk;
    }
}

/* Fisher-Yates with fr_rng_below64's draws: 64-bit ones while i > 2^32 - 1 (never on a
 * real data set), then fr_rng_below's from a batch reader. */
static inline void shuffle_soa(fri_examples *ex, fr_rng *rng, bool weighted) {
    size_t i = ex->n;
    for (; i > UINT32_MAX; i--) swap_examples(ex, i - 1, (size_t)fr_rng_below64(rng, i), weighted);
    fri_rng_batch b;
    fri_rng_batch_begin_for(&b, rng, i); /* a draw a swap, and a rejection seldom */
    for (; i > 1; i--) swap_examples(ex, i - 1, fri_rng_batch_below(&b, (uint32_t)i), weighted);
    fri_rng_batch_end(&b);
}

void fri_examples_shuffle(fri_examples *ex, fr_rng *rng) {
    if (ex->alpha > 0) shuffle_soa(ex, rng, true); /* the same draws, one more array */
    else shuffle_soa(ex, rng, false);
}

/* An example as one row (fri_examples_concat_shuffled); wt only when weighted. */
typedef struct ex_row { uint32_t user, item, neg; float label; } ex_row;
typedef struct ex_pair { uint32_t user, item; } ex_pair; /* no_negs (bpr): neg 0, label 1 */
typedef struct ex_row_wt { uint32_t user, item, neg; float label, wt; } ex_row_wt;

static FRI_ALWAYS_INLINE void swap_rows(unsigned char *rows, size_t size, size_t a, size_t b) {
    unsigned char t[sizeof(ex_row_wt)];
    memcpy(t, rows + a * size, size);
    memcpy(rows + a * size, rows + b * size, size);
    memcpy(rows + b * size, t, size);
}

/* shuffle_soa's swaps over n rows of `size` bytes (a constant where inlined). */
static FRI_ALWAYS_INLINE void shuffle_rows(unsigned char *rows, size_t n, size_t size, fr_rng *rng) {
    size_t i = n;
    for (; i > UINT32_MAX; i--) swap_rows(rows, size, i - 1, (size_t)fr_rng_below64(rng, i));
    fri_rng_batch b;
    fri_rng_batch_begin_for(&b, rng, i);
    for (; i > 1; i--) swap_rows(rows, size, i - 1, fri_rng_batch_below(&b, (uint32_t)i));
    fri_rng_batch_end(&b);
}

fr_err fri_examples_concat_shuffled(fri_examples *dst, const fri_examples *src, size_t nsrc, fr_rng *rng,
                                    fri_example_rows *rows) {
    size_t n = 0;
    for (size_t s = 0; s < nsrc; s++) n += src[s].n;
    if (dst->hist_len) { /* histories: concatenate, then the same swaps in place (the same draws) */
        const size_t L = dst->hist_len;
        fr_err e = fri_examples_reserve(dst, n);
        if (e) return e;
        size_t k = 0;
        for (size_t s = 0; s < nsrc; s++) {
            const fri_examples *x = &src[s];
            memcpy(dst->user + k, x->user, x->n * sizeof *x->user);
            memcpy(dst->item + k, x->item, x->n * sizeof *x->item);
            memcpy(dst->neg + k, x->neg, x->n * sizeof *x->neg);
            memcpy(dst->label + k, x->label, x->n * sizeof *x->label);
            if (dst->alpha > 0) memcpy(dst->wt + k, x->wt, x->n * sizeof *x->wt);
            memcpy(dst->hist + k * L, x->hist, x->n * L * sizeof *x->hist);
            memcpy(dst->hneg + k * L, x->hneg, x->n * L * sizeof *x->hneg);
            memcpy(dst->key + k, x->key, x->n * sizeof *x->key);
            k += x->n;
        }
        dst->n = n;
        (void)rows;
        fri_examples_shuffle(dst, rng);
        return FR_OK;
    }
    const bool w = dst->alpha > 0;
    const size_t size = w ? sizeof(ex_row_wt) : sizeof(ex_row);
    fr_err e = fri_examples_reserve(dst, n);
    if (e) return e;
    size_t bytes;
    if (fri_mul_size(n, size, &bytes)) return fri_fail(FR_ERR_NOMEM, "examples: %zu rows overflow the address space", n);
    if (bytes > rows->bytes) {
        void *r = fri_malloc(bytes);
        if (!r) return FR_ERR_NOMEM;
        fri_free(rows->p);
        rows->p = r;
        rows->bytes = bytes;
    }
    size_t k = 0;
    if (w) {
        ex_row_wt *r = rows->p;
        for (size_t s = 0; s < nsrc; s++)
            for (size_t x = 0; x < src[s].n; x++, k++)
                r[k] = (ex_row_wt){src[s].user[x], src[s].item[x], src[s].neg[x], src[s].label[x], src[s].wt[x]};
        shuffle_rows(rows->p, n, sizeof(ex_row_wt), rng);
        for (size_t x = 0; x < n; x++) {
            dst->user[x] = r[x].user;
            dst->item[x] = r[x].item;
            dst->neg[x] = r[x].neg;
            dst->label[x] = r[x].label;
            dst->wt[x] = r[x].wt;
        }
    } else if (dst->no_negs) { /* no negative, no label: the users and items alone, the same swaps */
        ex_pair *r = rows->p;
        for (size_t s = 0; s < nsrc; s++)
            for (size_t x = 0; x < src[s].n; x++, k++) r[k] = (ex_pair){src[s].user[x], src[s].item[x]};
        shuffle_rows(rows->p, n, sizeof(ex_pair), rng);
        for (size_t x = 0; x < n; x++) {
            dst->user[x] = r[x].user;
            dst->item[x] = r[x].item;
        }
        memset(dst->neg, 0, n * sizeof *dst->neg);
        for (size_t x = 0; x < n; x++) dst->label[x] = 1.0f;
    } else {
        ex_row *r = rows->p;
        for (size_t s = 0; s < nsrc; s++)
            for (size_t x = 0; x < src[s].n; x++, k++)
                r[k] = (ex_row){src[s].user[x], src[s].item[x], src[s].neg[x], src[s].label[x]};
        shuffle_rows(rows->p, n, sizeof(ex_row), rng);
        for (size_t x = 0; x < n; x++) {
            dst->user[x] = r[x].user;
            dst->item[x] = r[x].item;
            dst->neg[x] = r[x].neg;
            dst->label[x] = r[x].label;
        }
    }
    dst->n = n;
    return FR_OK;
}

fr_err fri_examples_run(const fri_examples *ex, size_t batch, fr_loss loss, const fri_step_rule *rule,
                        double *loss_sum) {
    if (batch == 0) return fri_fail(FR_ERR_INVALID, "batch size 0");
    bool bpr = loss == FR_LOSS_BPR;
    for (size_t s = 0; s < ex->n; s += batch) {
        size_t n = ex->n - s < batch ? ex->n - s : batch;
        fr_batch b = {ex->user + s, ex->item + s, bpr ? NULL : ex->label + s, bpr ? ex->neg + s : NULL, n,
                      ex->alpha > 0 ? ex->wt + s : NULL};
        if (ex->hist_len) {
            b.hist = ex->hist + s * ex->hist_len;
            b.hist_neg = ex->hneg + s * ex->hist_len;
            b.key = ex->key + s;
            b.hist_len = ex->hist_len;
        }
        fri_step_loss l;
        l.parts = 0;
        fr_err e = FR_OK;
        if (rule->before) e = rule->before(rule->ctx, &b);
        if (!e) e = rule->gradient(rule->ctx, &b, &l);
        if (!e && rule->after) e = rule->after(rule->ctx, &b);
        if (!e) e = rule->step(rule->ctx, &b);
        if (e) return e;
        for (uint32_t p = 0; p < l.parts && p < FRI_STEP_MAX_PARTS; p++) *loss_sum += l.mean[p] * (double)l.n[p];
    }
    return FR_OK;
}

/* ------------------------------------------------------------------ the plain rule */

typedef struct plain {
    fr_model *m;
    fr_model_ws *ws;
    fr_grad *g;
    fr_optim *o;
} plain;

static fr_err plain_gradient(void *ctx, const fr_batch *b, fri_step_loss *l) {
    plain *p = ctx;
    fr_grad_zero(p->g);
    l->parts = 1;
    l->n[0] = b->n;
    return fr_model_loss_grad(p->m, p->ws, b, p->g, &l->mean[0]);
}

static fr_err plain_step(void *ctx, const fr_batch *b) {
    (void)b;
    plain *p = ctx;
    return fr_optim_step(p->o, p->m, p->g);
}

fr_err fri_examples_fit(const fri_examples *ex, size_t batch, fr_model *m, fr_model_ws *ws, fr_grad *g,
                        fr_optim *o, double *loss_sum) {
    plain p = {m, ws, g, o};
    fri_step_rule rule = {&p, NULL, plain_gradient, NULL, plain_step};
    return fri_examples_run(ex, batch, fr_model_config_of(m)->loss, &rule, loss_sum);
}

const char *fr_neg_sampler_name(fr_neg_sampler s) {
    return s == FR_NEG_UNIFORM ? "uniform" : s == FR_NEG_POPULARITY ? "pop" : "?";
}

fr_err fr_neg_sampler_parse(const char *name, fr_neg_sampler *out) {
    if (name && !strcmp(name, "uniform")) *out = FR_NEG_UNIFORM;
    else if (name && !strcmp(name, "pop")) *out = FR_NEG_POPULARITY;
    else return fri_fail(FR_ERR_INVALID, "unknown negative sampler '%s': expected uniform or pop", name ? name : "(null)");
    return FR_OK;
}
