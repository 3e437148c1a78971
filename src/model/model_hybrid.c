/* The hybrid family (family.h): models whose users and items are sums of feature
 * embeddings, so an item nobody has rated still has a vector (cold start).
 *
 *   lightfm  (Kula 2015): p_u = e_u + sum_f w_uf E_f,  q_i = e_i + sum_g w_ig F_g,
 *            b_u = c_u + sum_f w_uf c_f,  b_i likewise;   logit = p_u . q_i + b_u + b_i
 *   fm       (Rendle 2010), second order over all the pair's features x (the user's id,
 *            its features, the item's id, its features, each with its weight):
 *            logit = w0 + sum_j x_j c_j + sum_{j<l} x_j x_l <v_j, v_l>
 *                  = w0 + b_u + b_i + 0.5 (|a|^2 - sum_k s_k),
 *            a = sum_j x_j v_j = p_u + q_i,  s = sum_j x_j^2 v_j^2 (elementwise): O(k n)
 *            instead of the O(k n^2) double sum (fri_hybrid_fm_naive, held to it by tests).
 * Losses: bce (logistic, on labelled examples), bpr (-log sigmoid(s_pos - s_neg)), and
 * WARP (bpr examples with cfg.warp > 0; below).
 * L2: l2 / B * sum over the batch of |p_u|^2 + |q_i|^2 (+ |q_j|^2 of the negative): the
 * composed vectors, so it reaches every feature row through its weight. Biases are not
 * regularised.
 *
 * Layout (shared first): item_emb [n_items x dim], item_bias [n_items x 1] (item tables);
 * item_feat_emb [n_if x dim], item_feat_bias [n_if x 1], user_feat_emb [n_uf x dim],
 * user_feat_bias [n_uf x 1] (dense: every client may touch any row; n_if, n_uf the
 * vocabulary sizes, at least 1 row each); fm: bias [1 x 1]; then the private user_emb
 * [n_users x dim], user_bias [n_users x 1]. Embeddings N(0, init_std) (0.01 by default:
 * LightFM's init is as small, and a cold item's untrained id row then adds little noise
 * to what its features say), biases 0.
 *
 * Features are structure, not parameters: the config names an interned, immutable feature
 * set (cfg.features, fr_model_config_set_features; CSR of (feature, weight) per user row
 * and per item row, indexed by the data's dense ids). loss_grad and score look a row's
 * features up by its global id: a federated client's compact model maps its rows through
 * fri_model_bind_rows. The parameter block (model file, TASK) holds dim, warp and the
 * feature set: the vocabulary sizes, the item lists, and the user lists only when
 * n_users > 1 (a model file of the whole model). A TASK (n_users 1) thus carries no
 * user's features: in the simulated federation each client's own lists are read in
 * process from the federation's config; a networked client adds its own users' lists to
 * the TASK's set (fri_model_config_user_lists; the encoding, hence the config CRC, is
 * unchanged).
 *
 * WARP (Weston et al. 2011, as LightFM): for a positive (u, i) the candidates are the
 * example's negative, then items drawn uniformly (a stream of (seed, i, u ^ neg)), until
 * one violates the margin, s_j > s_i - 1, or `warp` candidates were tried. A violation
 * at trial t costs L * (1 - s_i + s_j) with L = ln(max(1, floor((N - 1) / t))), N the
 * catalogue; none costs 0. Here candidates are not checked against the user's positives
 * (the model does not hold them; LightFM does), only the positive itself is skipped; the
 * fast path below, given the users' items as bits, checks them as LightFM does. A federated
 * client draws among the item rows it loaded (its positives and sampled negatives), not the
 * catalogue.
 *
 * rows_pass's fast path (the centralized trainer's default; fri_hybrid_stale(0) is the exact
 * path, held to the generic loop bit for bit): lightfm's WARP candidates are screened by a
 * half-float table of the items' id rows plus their feature parts (the feature parts refreshed
 * every HY_STALE minibatches, a row's id part moved with each step of it) and only the one
 * taken is composed; its draws, the first candidate's too (rows_pass_draws: the trainer draws
 * no negatives), come from a splitmix-seeded wyrand stream (hy_draws), the first drawn again
 * while it is one of the user's items or an absent one and a later trial that draws one
 * spent (the trainer's bits, fri_examples.pos: LightFM's rule); Adagrad takes rsqrt
 * without a Newton step (fri_optim_step_rows_clear_fast); bpr's softplus and sigmoid are in
 * float; with one shard the id tables' gradient is kept in compact slots (hy_ws.cg: the same
 * bits as the slab's rows, tested).
 * Tests hold it to the exact path within stated tolerances (tests/test_hybrid.c). */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "core/core.h"
#include "fedrec/features.h"
#include "model/examples.h"
#include "model/family.h"
#include "model/layers.h"
#include "model/v8.h"

/* ---------------------------------------------------------------- the feature store */

/* A row's features in one 64-byte line (the vector kernel's copy of a side whose rows have
 * at most HY_PK features: one load where the CSR takes its offsets, then its lists) */
#define HY_PK 7
typedef struct hy_pk {
    uint32_t n;
    uint32_t id[HY_PK];
    float w[HY_PK];
    uint32_t pad;
} hy_pk;
_Static_assert(sizeof(hy_pk) == 64, "a packed row is a cache line");

typedef struct fri_feat {
    uint32_t rows[2];    /* user rows, item rows */
    uint32_t count[2];   /* vocabulary sizes */
    uint64_t *off[2];    /* [rows + 1] CSR offsets */
    uint32_t *id[2];     /* [nnz] feature ids */
    float *w[2];         /* [nnz] weights */
    hy_pk *pk[2];        /* [rows] the same lists packed (the kernel's), or NULL: a row has more than HY_PK */
    uint32_t crc;        /* of the content, to find an identical set */
} fri_feat;

#define MAX_SETS 4096
static fri_feat *sets[MAX_SETS];           /* handle h is sets[h - 1] */
static atomic_uint n_sets;
static pthread_mutex_t sets_mu = PTHREAD_MUTEX_INITIALIZER;

static const fri_feat *feat_of(uint32_t h) {
    return h && h <= atomic_load_explicit(&n_sets, memory_order_acquire) ? sets[h - 1] : NULL;
}

static void feat_free(fri_feat *f) {
    if (!f) return;
    for (int s = 0; s < 2; s++) { fri_free(f->off[s]); fri_free(f->id[s]); fri_free(f->w[s]); fri_free_aligned(f->pk[s]); }
    fri_free(f);
}

static uint32_t feat_crc(const fri_feat *f) {
    uint32_t c = fr_crc32c(0, f->rows, sizeof f->rows);
    c = fr_crc32c(c, f->count, sizeof f->count);
    for (int s = 0; s < 2; s++) {
        uint64_t nnz = f->off[s][f->rows[s]];
        c = fr_crc32c(c, f->off[s], (f->rows[s] + 1) * sizeof(uint64_t));
        if (nnz) {
            c = fr_crc32c(c, f->id[s], nnz * sizeof(uint32_t));
            c = fr_crc32c(c, f->w[s], nnz * sizeof(float));
        }
    }
    return c;
}

static bool feat_same(const fri_feat *a, const fri_feat *b) {
    if (a->crc != b->crc || memcmp(a->rows, b->rows, sizeof a->rows) || memcmp(a->count, b->count, sizeof a->count))
        return false;
    for (int s = 0; s < 2; s++) {
        uint64_t nnz = a->off[s][a->rows[s]];
        if (memcmp(a->off[s], b->off[s], (a->rows[s] + 1) * sizeof(uint64_t)) ||
            (nnz && (memcmp(a->id[s], b->id[s], nnz * sizeof(uint32_t)) || memcmp(a->w[s], b->w[s], nnz * sizeof(float)))))
            return false;
    }
    return true;
}

/* Allocates a set with the given rows and nnz per side (offsets zeroed). */
static fri_feat *feat_alloc(const uint32_t rows[2], const uint64_t nnz[2]) {
    fri_feat *f = fri_calloc(1, sizeof *f);
    if (!f) return NULL;
    for (int s = 0; s < 2; s++) {
        f->rows[s] = rows[s];
        f->off[s] = fri_calloc((size_t)rows[s] + 1, sizeof(uint64_t));
        f->id[s] = fri_malloc((nnz[s] ? nnz[s] : 1) * sizeof(uint32_t));
        f->w[s] = fri_malloc((nnz[s] ? nnz[s] : 1) * sizeof(float));
        if (!f->off[s] || !f->id[s] || !f->w[s]) { feat_free(f); return NULL; }
    }
    return f;
}

/* f's packed rows (hy_pk) of each side whose rows all fit (none: pk NULL, the CSR is read). */
static void feat_pack(fri_feat *f) {
    for (int s = 0; s < 2; s++) {
        f->pk[s] = NULL;
        bool fits = f->rows[s] > 0;
        for (uint32_t r = 0; r < f->rows[s] && fits; r++) fits = f->off[s][r + 1] - f->off[s][r] <= HY_PK;
        if (!fits || !(f->pk[s] = fri_aligned_alloc((size_t)f->rows[s] * sizeof(hy_pk)))) continue;
        for (uint32_t r = 0; r < f->rows[s]; r++) {
            hy_pk *p = &f->pk[s][r];
            memset(p, 0, sizeof *p);
            const uint64_t a = f->off[s][r];
            p->n = (uint32_t)(f->off[s][r + 1] - a);
            for (uint32_t k = 0; k < p->n; k++) { p->id[k] = f->id[s][a + k]; p->w[k] = f->w[s][a + k]; }
        }
    }
}

/* Takes f over (frees it when an identical set exists or on error); *h its handle. */
static fr_err feat_intern(fri_feat *f, uint32_t *h) {
    f->crc = feat_crc(f);
    pthread_mutex_lock(&sets_mu);
    uint32_t n = atomic_load(&n_sets);
    for (uint32_t i = 0; i < n; i++)
        if (feat_same(sets[i], f)) {
            pthread_mutex_unlock(&sets_mu);
            feat_free(f);
            *h = i + 1;
            return FR_OK;
        }
    if (n >= MAX_SETS) {
        pthread_mutex_unlock(&sets_mu);
        feat_free(f);
        return fri_fail(FR_ERR_RANGE, "hybrid models: more than %d distinct feature sets in one process", MAX_SETS);
    }
    feat_pack(f); /* (without memory: the CSR is read) */
    sets[n] = f;
    atomic_store_explicit(&n_sets, n + 1, memory_order_release);
    pthread_mutex_unlock(&sets_mu);
    *h = n + 1;
    return FR_OK;
}

fr_err fr_model_config_set_features(fr_model_config *c, const fr_features *src) {
    if (!src) { c->features = 0; return FR_OK; }
    const fr_feature_side sd[2] = {FR_FEAT_USER, FR_FEAT_ITEM};
    uint32_t rows[2];
    uint64_t nnz[2] = {0, 0};
    for (int s = 0; s < 2; s++) {
        rows[s] = fr_features_rows(src, sd[s]);
        for (uint32_t r = 0; r < rows[s]; r++) nnz[s] += fr_features_of(src, sd[s], r, NULL, NULL);
    }
    fri_feat *f = feat_alloc(rows, nnz);
    if (!f) return FR_ERR_NOMEM;
    for (int s = 0; s < 2; s++) {
        f->count[s] = fr_features_count(src, sd[s]);
        uint64_t at = 0;
        for (uint32_t r = 0; r < rows[s]; r++) {
            const uint32_t *ids;
            const float *w;
            size_t k = fr_features_of(src, sd[s], r, &ids, &w);
            if (k) {
                memcpy(f->id[s] + at, ids, k * sizeof *ids);
                memcpy(f->w[s] + at, w, k * sizeof *w);
            }
            at += k;
            f->off[s][r + 1] = at;
        }
    }
    return feat_intern(f, &c->features);
}

/* The features of global row r of side s (0 user, 1 item). */
static inline uint32_t feats(const fri_feat *f, int s, uint32_t r, const uint32_t **id, const float **w) {
    if (!f || r >= f->rows[s]) return 0;
    uint64_t a = f->off[s][r];
    *id = f->id[s] + a;
    *w = f->w[s] + a;
    return (uint32_t)(f->off[s][r + 1] - a);
}

static uint32_t vocab(const fr_model_config *c, int s) {
    const fri_feat *f = feat_of(c->features);
    return f ? f->count[s] : 0;
}

/* ---------------------------------------------------------------- config */

enum { IT_EMB, IT_B, IF_EMB, IF_B, UF_EMB, UF_B, W0, US_EMB, US_B };

static bool is_fm(const fr_model_config *c) { return strcmp(fr_model_kind_name(c->kind), "fm") == 0; }

static void config_default(fr_model_config *c) {
    c->dim = 32;
    c->loss = FR_LOSS_BPR;
    c->warp = 0;
}

static fr_err config_check(const fr_model_config *c) {
    const char *k = fr_model_kind_name(c->kind);
    if (c->dim == 0 || c->dim > 4096) return fri_fail(FR_ERR_INVALID, "%s: dim %u: expected 1..4096", k, c->dim);
    if (c->loss != FR_LOSS_BCE && c->loss != FR_LOSS_BPR)
        return fri_fail(FR_ERR_INVALID, "%s: loss %s: expected bce (logistic), bpr or warp (bpr with warp > 0)", k,
                        fri_loss_name(c->loss));
    if (c->warp && c->loss != FR_LOSS_BPR)
        return fri_fail(FR_ERR_INVALID, "%s: warp %u with loss %s: WARP takes bpr's (positive, negative) examples", k,
                        c->warp, fri_loss_name(c->loss));
    if (c->warp > 1000) return fri_fail(FR_ERR_INVALID, "%s: warp %u: expected 0..1000 draws", k, c->warp);
    if (c->features && !feat_of(c->features))
        return fri_fail(FR_ERR_INVALID, "%s: features %u: no such feature set (fr_model_config_set_features)", k,
                        c->features);
    return FR_OK;
}

static void params_put(fri_buf *b, const fr_model_config *c) {
    fri_buf_u32(b, c->dim);
    fri_buf_u32(b, c->warp);
    const fri_feat *f = feat_of(c->features);
    fri_buf_u32(b, f ? 1 : 0);
    if (!f) return;
    for (int s = 1; s >= 0; s--) { /* items, then users */
        bool lists = s == 1 || c->n_users > 1;
        uint32_t rows = lists ? f->rows[s] : 0;
        fri_buf_u32(b, f->count[s]);
        fri_buf_u32(b, rows);
        for (uint32_t r = 0; r < rows; r++) {
            uint64_t a = f->off[s][r], n = f->off[s][r + 1] - a;
            fri_buf_u32(b, (uint32_t)n);
            for (uint64_t k = 0; k < n; k++) {
                fri_buf_u32(b, f->id[s][a + k]);
                fri_buf_f32(b, f->w[s][a + k]);
            }
        }
    }
}

static fr_err params_get(fri_rd *r, fr_model_config *c) {
    fr_err e;
    uint32_t has;
    if ((e = fri_rd_u32(r, &c->dim, "dim")) || (e = fri_rd_u32(r, &c->warp, "warp")) ||
        (e = fri_rd_u32(r, &has, "features")))
        return e;
    c->features = 0;
    if (!has) return FR_OK;
    if (has != 1) return fri_fail(FR_ERR_FORMAT, "%s: %s: features flag %u: expected 0 or 1", r->name, r->kind, has);
    /* two passes: sizes first (bounded by the block), then the content */
    uint32_t rows[2], count[2];
    uint64_t nnz[2] = {0, 0};
    fri_rd probe = *r;
    for (int s = 1; s >= 0; s--) {
        if ((e = fri_rd_u32(&probe, &count[s], "feature count")) || (e = fri_rd_u32(&probe, &rows[s], "feature rows")))
            return e;
        if ((e = fri_rd_need_n(&probe, rows[s], 4, "feature rows"))) return e;
        for (uint32_t x = 0; x < rows[s]; x++) {
            uint32_t n;
            if ((e = fri_rd_u32(&probe, &n, "features of a row")) || (e = fri_rd_need_n(&probe, n, 8, "features")))
                return e;
            probe.at += (size_t)n * 8;
            nnz[s] += n;
        }
    }
    fri_feat *f = feat_alloc(rows, nnz);
    if (!f) return FR_ERR_NOMEM;
    for (int s = 1; s >= 0 && !e; s--) {
        f->count[s] = count[s];
        uint32_t t;
        e = fri_rd_u32(r, &t, "feature count");
        if (!e) e = fri_rd_u32(r, &t, "feature rows");
        uint64_t at = 0;
        for (uint32_t x = 0; x < rows[s] && !e; x++) {
            uint32_t n;
            e = fri_rd_u32(r, &n, "features of a row");
            for (uint32_t k = 0; k < n && !e; k++, at++) {
                e = fri_rd_u32(r, &f->id[s][at], "feature id");
                if (!e) e = fri_rd_f32(r, &f->w[s][at], "feature weight");
                if (!e && f->id[s][at] >= count[s])
                    e = fri_fail(FR_ERR_FORMAT, "%s: %s: %s feature %u of row %u: expected < %u", r->name, r->kind,
                                 s ? "item" : "user", f->id[s][at], x, count[s]);
                if (!e && !isfinite(f->w[s][at]))
                    e = fri_fail(FR_ERR_FORMAT, "%s: %s: %s feature weight of row %u is not finite", r->name, r->kind,
                                 s ? "item" : "user", x);
            }
            f->off[s][x + 1] = at;
        }
    }
    if (e) { feat_free(f); return e; }
    return feat_intern(f, &c->features);
}

fr_err fri_model_config_user_lists(fr_model_config *cfg, const uint32_t *users, uint32_t n_users,
                                   const uint64_t *off, const uint32_t *ids, const float *w) {
    if (!fr_model_kind_uses_features(cfg->kind)) return FR_OK;
    const fri_feat *src = feat_of(cfg->features);
    uint32_t vocab_u = src ? src->count[0] : 0;
    uint32_t rows[2] = {0, src ? src->rows[1] : 0};
    uint64_t nnz[2] = {off[n_users], src ? src->off[1][src->rows[1]] : 0};
    for (uint32_t j = 0; j < n_users; j++) {
        if (users[j] >= rows[0]) rows[0] = users[j] + 1;
        if (off[j + 1] < off[j]) return fri_fail(FR_ERR_INVALID, "user features: offsets decrease at user %u", users[j]);
    }
    for (uint64_t k = 0; k < nnz[0]; k++)
        if (ids[k] >= vocab_u)
            return fri_fail(FR_ERR_INVALID, "user features: feature %u, the federation's user vocabulary has %u", ids[k],
                            vocab_u);
    fri_feat *f = feat_alloc(rows, nnz);
    if (!f) return FR_ERR_NOMEM;
    f->count[0] = vocab_u;
    f->count[1] = src ? src->count[1] : 0;
    if (src) {
        memcpy(f->off[1], src->off[1], ((size_t)rows[1] + 1) * sizeof(uint64_t));
        if (nnz[1]) {
            memcpy(f->id[1], src->id[1], nnz[1] * sizeof(uint32_t));
            memcpy(f->w[1], src->w[1], nnz[1] * sizeof(float));
        }
    }
    /* per-row counts into off, then prefix sums, then the lists in row order */
    for (uint32_t j = 0; j < n_users; j++) {
        if (f->off[0][users[j] + 1]) { feat_free(f); return fri_fail(FR_ERR_INVALID, "user features: user %u given twice", users[j]); }
        f->off[0][users[j] + 1] = off[j + 1] - off[j];
    }
    for (uint32_t r = 0; r < rows[0]; r++) f->off[0][r + 1] += f->off[0][r];
    for (uint32_t j = 0; j < n_users; j++) {
        uint64_t at = f->off[0][users[j]];
        for (uint64_t k = off[j]; k < off[j + 1]; k++, at++) {
            f->id[0][at] = ids[k];
            f->w[0][at] = w ? w[k] : 1.0f;
        }
    }
    return feat_intern(f, &cfg->features);
}

/* ---------------------------------------------------------------- layout */

static fr_err layout(fr_model *m, const fr_model_config *c) {
    fr_err e = FR_OK;
    uint32_t nif = vocab(c, 1), nuf = vocab(c, 0);
    nif = nif ? nif : 1;
    nuf = nuf ? nuf : 1;
#define ADD(role, name, r, cc, kind, init) \
    do { if ((e = fri_model_add_tensor(m, name, r, cc, kind, init, &m->slot[role])) != FR_OK) return e; } while (0)
    ADD(IT_EMB, "item_emb", c->n_items, c->dim, FR_TENSOR_ITEM_TABLE, FRI_INIT_NORMAL);
    ADD(IT_B, "item_bias", c->n_items, 1, FR_TENSOR_ITEM_TABLE, FRI_INIT_ZERO);
    ADD(IF_EMB, "item_feat_emb", nif, c->dim, FR_TENSOR_DENSE, FRI_INIT_NORMAL);
    ADD(IF_B, "item_feat_bias", nif, 1, FR_TENSOR_DENSE, FRI_INIT_ZERO);
    ADD(UF_EMB, "user_feat_emb", nuf, c->dim, FR_TENSOR_DENSE, FRI_INIT_NORMAL);
    ADD(UF_B, "user_feat_bias", nuf, 1, FR_TENSOR_DENSE, FRI_INIT_ZERO);
    if (is_fm(c)) ADD(W0, "bias", 1, 1, FR_TENSOR_DENSE, FRI_INIT_ZERO);
    ADD(US_EMB, "user_emb", c->n_users, c->dim, FR_TENSOR_USER_TABLE, FRI_INIT_NORMAL);
    ADD(US_B, "user_bias", c->n_users, 1, FR_TENSOR_USER_TABLE, FRI_INIT_ZERO);
#undef ADD
    return FR_OK;
}

/* ---------------------------------------------------------------- workspace */

#define HY_STALE 64 /* rows_pass, lightfm WARP: the screening table is refreshed every HY_STALE minibatches */
#define HY_LW 64 /* WARP: the rank weights of trials 1..HY_LW are kept (hy_ws.lw) */

typedef struct hy_ws {
    float *p, *sp;          /* [dim] user vector, its sum of squares (fm) */
    float *q[3], *sq[3];    /* [dim] item vectors (positive, negative, a WARP draw) and their squares */
    float *a, *cu, *ci;     /* [dim] p + q; the user side's and an item side's coefficient */
    float *s;               /* [n] scores (score) */
    double lw[HY_LW + 1];   /* WARP's ln(max(1, floor((N - 1) / t))) for t = 1..lw_have, catalogue lw_n */
    uint32_t lw_n, lw_have;
    const uint16_t *sq_e;   /* lightfm WARP under rows_pass: each item row's id row plus its feature part
                             * (E + sum_g w F_g) in IEEE half precision (hy_half), the feature part as of
                             * the last refresh (hy_stale), the id part current, to screen the candidates;
                             * NULL: every candidate composed (the reference) */
    const float *sq_b;      /* and B + sum_g w cf_g, in float */
    bool fast;              /* rows_pass's fast path: bpr's softplus and sigmoid in float (hy_softplus_sigmoid_f) */
    bool splitmix;          /* with sq_e: WARP's draws by hy_draws, not the Philox stream */
    uint64_t draw_key;      /* with splitmix and no negatives in the batch (fr_batch.neg NULL): the
                             * minibatch's key (rows_pass: the optimizer's steps so far); WARP's
                             * first candidate is then drawn too, by example x's stream of
                             * (seed + draw_key, item, user ^ x), drawn again while it is one of
                             * the user's items or an absent one (pos) */
    const uint64_t *pos;    /* with draw_key: the users' items and the absent ones as bits, the row of
                             * user row u at pos + u * pos_words (fri_examples.pos) */
    size_t pos_words;
    bool zero_unmarked;     /* the kernel leaves the rows of an example whose gradient is exactly zero
                             * unmarked (set by the fused passes, whose step keeps a row of zero
                             * gradient as it is: fri_optim_zero_keeps; the generic loop's sparse-row
                             * Adam must see them) */
    /* rows_pass's compact gradient (NULL cg: the gradient's own rows): the id tables' rows a
     * minibatch touches get their gradient in slots taken in order of first touch, the
     * gradient rows of a side packed in cg[s] ([slots x dim]) and cgb[s] ([slots]), so the
     * adds stay in a few hot lines instead of scattered rows of the slab's tables */
    float *cg[2], *cgb[2];  /* [side 0 user, 1 item] */
    uint32_t *slot[2];      /* [table rows] the slot of each row, HY_NOSLOT none */
    uint32_t *crow[2];      /* [slots] the row of each slot */
    uint32_t ccount[2];     /* slots taken */
} hy_ws;

#define HY_NOSLOT UINT32_MAX

static size_t ws_carve(void *wsp, float *arena, const fr_model_config *c, size_t B) {
    hy_ws tmp, *w = wsp ? wsp : &tmp;
    fri_carver cv = {arena, 0};
    size_t d = c->dim;
    w->p = fri_carve(&cv, d); w->sp = fri_carve(&cv, d);
    for (int k = 0; k < 3; k++) { w->q[k] = fri_carve(&cv, d); w->sq[k] = fri_carve(&cv, d); }
    w->a = fri_carve(&cv, d); w->cu = fri_carve(&cv, d); w->ci = fri_carve(&cv, d);
    w->s = fri_carve(&cv, B);
    w->zero_unmarked = false;
    w->lw_n = w->lw_have = 0; /* no rank weights yet (rows_pass's and sgd_pass's hy_ws is on the stack) */
    w->sq_e = NULL;
    w->sq_b = NULL;
    w->splitmix = w->fast = false;
    w->draw_key = 0;
    w->pos = NULL;
    w->pos_words = 0;
    for (int s = 0; s < 2; s++) { w->cg[s] = w->cgb[s] = NULL; w->slot[s] = w->crow[s] = NULL; w->ccount[s] = 0; }
    return cv.at;
}

static bool ws_fits(const fr_model_config *a, const fr_model_config *b) { return a->dim == b->dim; }

/* ---------------------------------------------------------------- math */

static const float *P(const fr_model *m, int role) { return fri_model_data(m, m->slot[role]); }
static float *G(fr_grad *g, const fr_model *m, int role) { return fri_grad_of(g, m->slot[role]); }

static inline uint32_t gitem(const fr_model *m, uint32_t r) {
    return m->row_item && r < m->n_row_item ? m->row_item[r] : r;
}
static inline uint32_t guser(const fr_model *m, uint32_t r) {
    return m->row_user && r < m->n_row_user ? m->row_user[r] : r;
}

/* One side's vector: out = E[row] + sum_k w_k F[id_k]; returns the bias c[row] + sum
 * w_k cf[id_k]; sq (fm, may be NULL) = E[row]^2 + sum_k w_k^2 F[id_k]^2. */
static float compose(float *out, float *sq, const float *E, const float *c, uint32_t row, const float *F,
                     const float *cf, const uint32_t *id, const float *w, uint32_t n, size_t d) {
    const float *e = E + (size_t)row * d;
    float b = c[row];
    memcpy(out, e, d * sizeof *out);
    if (sq)
        for (size_t k = 0; k < d; k++) sq[k] = e[k] * e[k];
    for (uint32_t j = 0; j < n; j++) {
        const float *v = F + (size_t)id[j] * d, x = w[j];
        for (size_t k = 0; k < d; k++) out[k] += x * v[k];
        if (sq)
            for (size_t k = 0; k < d; k++) sq[k] += x * x * v[k] * v[k];
        b += x * cf[id[j]];
    }
    return b;
}

/* The score from composed parts: lightfm p.q + b; fm w0 + b + 0.5 (|p+q|^2 - sum sp - sum sq). */
static float pair_score(const fr_model *m, bool fm, const float *p, const float *sp, const float *q, const float *sq,
                        float bias, size_t d) {
    if (!fm) return fri_dot(p, q, d) + bias;
    float t = 0.0f;
    for (size_t k = 0; k < d; k++) {
        float a = p[k] + q[k];
        t += a * a - sp[k] - sq[k];
    }
    return P(m, W0)[0] + bias + 0.5f * t;
}

/* Adds one side's gradient: the id row gets coef (+ the fm self term -cs * v), each
 * feature row w * coef - cs * w^2 * v; the biases db (and w * db). Marks the id row. */
static void scatter(fr_grad *g, const fr_model *m, int emb, int bias, int femb, int fbias, uint32_t row,
                    const uint32_t *id, const float *w, uint32_t n, const float *coef, float cs, float db, size_t d) {
    float *ge = G(g, m, emb) + (size_t)row * d;
    const float *e = P(m, emb) + (size_t)row * d;
    for (size_t k = 0; k < d; k++) ge[k] += coef[k] - cs * e[k];
    G(g, m, bias)[row] += db;
    fr_rowset_add(&g->rows[m->slot[emb]], row);
    fr_rowset_add(&g->rows[m->slot[bias]], row);
    float *gf = G(g, m, femb), *gb = G(g, m, fbias);
    const float *F = P(m, femb);
    for (uint32_t j = 0; j < n; j++) {
        float x = w[j], x2 = cs * x * x;
        float *gr = gf + (size_t)id[j] * d;
        const float *v = F + (size_t)id[j] * d;
        for (size_t k = 0; k < d; k++) gr[k] += x * coef[k] - x2 * v[k];
        gb[id[j]] += x * db;
    }
}

/* The parts of one item (row r of the model) into q, sq; returns its bias. */
static float item_side(const fr_model *m, const fri_feat *f, bool fm, uint32_t r, float *q, float *sq) {
    const uint32_t *id = NULL;
    const float *w = NULL;
    uint32_t n = feats(f, 1, gitem(m, r), &id, &w);
    return compose(q, fm ? sq : NULL, P(m, IT_EMB), P(m, IT_B), r, P(m, IF_EMB), P(m, IF_B), id, w, n, m->cfg.dim);
}

static float user_side(const fr_model *m, const fri_feat *f, bool fm, uint32_t r, float *p, float *sp) {
    const uint32_t *id = NULL;
    const float *w = NULL;
    uint32_t n = feats(f, 0, guser(m, r), &id, &w);
    return compose(p, fm ? sp : NULL, P(m, US_EMB), P(m, US_B), r, P(m, UF_EMB), P(m, UF_B), id, w, n, m->cfg.dim);
}

static void item_grad(fr_grad *g, const fr_model *m, const fri_feat *f, uint32_t r, const float *coef, float cs,
                      float db) {
    const uint32_t *id = NULL;
    const float *w = NULL;
    uint32_t n = feats(f, 1, gitem(m, r), &id, &w);
    scatter(g, m, IT_EMB, IT_B, IF_EMB, IF_B, r, id, w, n, coef, cs, db, m->cfg.dim);
}

static void user_grad(fr_grad *g, const fr_model *m, const fri_feat *f, uint32_t r, const float *coef, float cs,
                      float db) {
    const uint32_t *id = NULL;
    const float *w = NULL;
    uint32_t n = feats(f, 0, guser(m, r), &id, &w);
    scatter(g, m, US_EMB, US_B, UF_EMB, UF_B, r, id, w, n, coef, cs, db, m->cfg.dim);
}

/* WARP's candidates: the example's negative, then uniform draws among the model's item
 * rows (a client's bound rows); the first with s_j > s_i - 1 at trial t. Returns t (0:
 * none) and leaves the violator's parts in q[1], sq[1], *bj, *sj, *j. */
static uint32_t warp_find(const fr_model *m, hy_ws *w, const fri_feat *f, bool fm, uint32_t u, uint32_t i,
                          uint32_t neg, float si, float bu, uint32_t *j, float *bj, float *sj) {
    size_t d = m->cfg.dim;
    uint32_t rows = m->row_item ? m->n_row_item : m->cfg.n_items;
    fr_rng rng;
    fr_rng_init(&rng, m->cfg.seed, gitem(m, i), guser(m, u) ^ (gitem(m, neg) * 2654435761u), FR_PURPOSE_USER + 14);
    uint32_t cand = neg;
    for (uint32_t t = 1; t <= m->cfg.warp; t++) {
        if (t > 1) {
            cand = fr_rng_below(&rng, rows ? rows : 1);
            if (cand == i) continue;
        }
        float b = item_side(m, f, fm, cand, w->q[1], w->sq[1]);
        float s = pair_score(m, fm, w->p, w->sp, w->q[1], w->sq[1], bu + b, d);
        if (s > si - 1.0f) {
            *j = cand;
            *bj = b;
            *sj = s;
            return t;
        }
    }
    /* none: the given negative's parts for the L2 term */
    *j = neg;
    *bj = item_side(m, f, fm, neg, w->q[1], w->sq[1]);
    *sj = pair_score(m, fm, w->p, w->sp, w->q[1], w->sq[1], bu + *bj, d);
    return 0;
}

/* The loss of b and its gradient into g (NULL: the loss alone), the plain way: each
 * side composed (compose), scored (pair_score) and its gradient scattered row by row
 * (scatter). The reference of the vector kernel below (hy_kernel), and the code for dims
 * that are not a multiple of 8. */
static double hy_loss_naive(const fr_model *m, hy_ws *w, const fr_batch *b, fr_grad *g) {
    const fr_model_config *c = &m->cfg;
    const fri_feat *f = feat_of(c->features);
    const bool fm = is_fm(c), pair = c->loss == FR_LOSS_BPR;
    const size_t d = c->dim, B = b->n;
    const double invB = 1.0 / (double)B, l2s = (double)c->l2 * invB;
    const uint32_t N = m->catalogue ? m->catalogue : c->n_items;
    double L = 0.0;
    for (size_t x = 0; x < B; x++) {
        const uint32_t u = b->users[x], i = b->items[x];
        const double wt = b->weight ? (double)b->weight[x] : 1.0;
        float bu = user_side(m, f, fm, u, w->p, w->sp);
        float bi = item_side(m, f, fm, i, w->q[0], w->sq[0]);
        float si = pair_score(m, fm, w->p, w->sp, w->q[0], w->sq[0], bu + bi, d);
        double dsi = 0.0, dsj = 0.0, l;
        uint32_t j = 0;
        if (!pair) {
            double y = b->label[x];
            l = fri_softplus(si) - y * si;
            dsi = fri_sigmoid(si) - y;
        } else if (!c->warp) {
            j = b->neg[x];
            float bj = item_side(m, f, fm, j, w->q[1], w->sq[1]);
            float sj = pair_score(m, fm, w->p, w->sp, w->q[1], w->sq[1], bu + bj, d);
            l = fri_softplus((double)sj - si);
            dsj = fri_sigmoid((double)sj - si);
            dsi = -dsj;
        } else {
            float bj, sj;
            uint32_t t = warp_find(m, w, f, fm, u, i, b->neg[x], si, bu, &j, &bj, &sj);
            double rank = t ? floor((double)(N > 0 ? N - 1 : 0) / t) : 0.0;
            double lw = t ? log(rank > 1.0 ? rank : 1.0) : 0.0;
            l = t ? lw * (1.0 - (double)si + (double)sj) : 0.0;
            dsi = -lw;
            dsj = lw;
        }
        L += wt * l * invB;
        if (l2s > 0) {
            L += l2s * (fri_sumsq(w->p, d) + fri_sumsq(w->q[0], d) + (pair ? fri_sumsq(w->q[1], d) : 0.0));
        }
        if (!g) continue;
        const float gi = (float)(wt * dsi * invB), gj = (float)(wt * dsj * invB), l2f = (float)(2.0 * l2s);
        /* user side: coef = sum_k ds_k q_k (lightfm) or sum_k ds_k (p + q_k) (fm), + 2 l2s p */
        for (size_t k = 0; k < d; k++) {
            float cu = gi * w->q[0][k] + (pair ? gj * w->q[1][k] : 0.0f);
            if (fm) cu += (gi + (pair ? gj : 0.0f)) * w->p[k];
            w->cu[k] = cu + l2f * w->p[k];
        }
        float csu = fm ? gi + (pair ? gj : 0.0f) : 0.0f;
        for (int side = 0; side < (pair ? 2 : 1); side++) {
            float gs = side ? gj : gi;
            const float *q = w->q[side];
            for (size_t k = 0; k < d; k++) w->ci[k] = gs * (fm ? w->p[k] + q[k] : w->p[k]) + l2f * q[k];
            item_grad(g, m, f, side ? j : i, w->ci, fm ? gs : 0.0f, gs);
        }
        user_grad(g, m, f, u, w->cu, csu, gi + (pair ? gj : 0.0f));
        if (fm) G(g, m, W0)[0] += gi + (pair ? gj : 0.0f);
    }
    return L;
}

/* The fast path's WARP draws: a wyrand sequence (below; splitmix64's where the compiler has
 * no 128-bit integers) whose start is a splitmix64 mix (Steele, Lea, Flood 2014) of the seed
 * and the example's key (the Philox stream's), and a draw below n as
 * the high word of (32 random bits) * n: no rejection, so a value is off by at most
 * n / 2^32 of its probability (4e-7 for 1682 items). Inline, a few instructions a draw
 * where a Philox block of ten rounds makes four. */
typedef struct hy_draws { uint64_t s; } hy_draws;
static FRI_ALWAYS_INLINE uint64_t hy_mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    return z ^ (z >> 31);
}
static FRI_ALWAYS_INLINE hy_draws hy_draws_init(uint64_t seed, uint32_t a, uint32_t b) {
    return (hy_draws){hy_mix64(seed ^ hy_mix64(((uint64_t)a << 32 | b) + 0x9E3779B97F4A7C15u))};
}
#if defined(__SIZEOF_INT128__)
/* wyrand's step (Wang Yi's wyhash family: the state's Weyl sequence through one 64 x 64 ->
 * 128 multiply, its halves xored; passes PractRand and BigCrush), half splitmix's operations */
__extension__ typedef unsigned __int128 hy_u128;
static FRI_ALWAYS_INLINE uint32_t hy_draws_below(hy_draws *h, uint32_t n) {
    h->s += 0xa0761d6478bd642fu;
    const hy_u128 t = (hy_u128)h->s * (h->s ^ 0xe7037ed1a0b428dbu);
    const uint64_t r = (uint64_t)(t >> 64) ^ (uint64_t)t;
    return (uint32_t)(((r >> 32) * (uint64_t)n) >> 32);
}
#else
static FRI_ALWAYS_INLINE uint32_t hy_draws_below(hy_draws *h, uint32_t n) {
    h->s += 0x9E3779B97F4A7C15u;
    return (uint32_t)(((hy_mix64(h->s) >> 32) * (uint64_t)n) >> 32);
}
#endif

/* ---------------------------------------------------------------- the vector kernel
 *
 * hy_loss_naive's loss and gradient for dims that are a multiple of 8, in eight-lane
 * vectors (v8.h), compiled twice: plain, and for AVX2 with FMA where the CPU has both (a
 * multiply and an add contracted into one fused operation, one rounding fewer: not the
 * plain copy's bits, within the same bounds of the plain code, tests/test_hybrid.c; every
 * run on one CPU takes the same copy, so threads, the federation's one step and model
 * files keep their bits). What it saves over the plain code:
 *   - a side is composed in registers a lane block at a time, its id row and feature rows
 *     read once, and lightfm's dot product with the user vector taken in the same pass;
 *   - WARP's first candidate (the example's negative) is kept when no candidate violates,
 *     not composed again, and the rank weights ln(floor((N - 1) / t)) are kept per t;
 *   - lightfm has no self term (fm's -cs v): its scatter adds coef (x coef) and reads no
 *     parameter row;
 *   - an example whose gradient is exactly zero without L2 (WARP with no violation)
 *     only marks its rows (adding zeros would change no value), and under the fused
 *     passes not even that (hy_ws.zero_unmarked: their rule keeps a row of zero
 *     gradient, so stepping it changes nothing either).
 * The same float operations as the plain code wherever the order is the same (a side's
 * vector and bias, lightfm's score: the lanes of fri_dot), so lightfm's scores are the
 * plain code's; fm's sum over the lanes and the skipped self terms (x - 0 v) may differ
 * in the last bit. Tests hold it to the plain code and to central differences. */

/* Tests: the candidates the fast path screens where it draws the first ones (rows_pass_draws),
 * a (global user, positive, candidate, trial) quadruple each into hy_cand_trace[1..] while
 * hy_cand_trace[0] quadruples fit in hy_cand_cap (fri_hybrid_cand_trace; one thread) */
static uint32_t *hy_cand_trace;
static size_t hy_cand_cap;
static void hy_trace_cand(uint32_t *tr, uint32_t u, uint32_t i, uint32_t j, uint32_t t) {
    if (4 * (size_t)tr[0] + 5 > hy_cand_cap) return;
    uint32_t *at = tr + 1 + 4 * (size_t)tr[0]++;
    at[0] = u;
    at[1] = i;
    at[2] = j;
    at[3] = t;
}

uint32_t *fri_hybrid_cand_trace(uint32_t *buf, size_t cap);
uint32_t *fri_hybrid_cand_trace(uint32_t *buf, size_t cap) {
    uint32_t *was = hy_cand_trace;
    if (buf && cap) buf[0] = 0;
    hy_cand_trace = buf && cap ? buf : NULL;
    hy_cand_cap = cap;
    return was;
}

#if FRI_V8
typedef struct hy_tab {
    const float *E[2], *B[2], *F[2], *FB[2]; /* [side 0 user, 1 item]: id rows, biases, feature rows, feature biases */
    float *gE[2], *gB[2], *gF[2], *gFB[2];   /* their gradients (g non-NULL) */
    fr_rowset *rE[2], *rB[2];                /* the id rows touched */
    /* copies of what the loop reads of the feature set and the row binding, so that the
     * rowsets' byte stores (which may alias anything) do not make them loaded again */
    const uint64_t *off[2];                  /* the set's CSR offsets of a side, */
    const uint32_t *fid[2];                  /* its feature ids */
    const float *fw[2];                      /* and weights */
    uint32_t frows[2];                       /* its rows (0: no set) */
    const hy_pk *pk[2];                      /* its packed rows, or NULL */
    const uint32_t *map[2];                  /* row_user, row_item (NULL: rows are global ids) */
    uint32_t nmap[2];
    uint8_t *mk[2];                          /* rE's marks, */
    uint32_t *rl[2];                         /* list */
    uint32_t rc[2];                          /* and count, written back at the end (rB: the same rows) */
    float *cg[2], *cgb[2];                   /* hy_ws's compact gradient (NULL: the slab's rows) */
    uint32_t *slot[2], *crow[2], cc[2];
} hy_tab;

/* The features of row r of side s (feats of its global id). */
static FRI_ALWAYS_INLINE uint32_t kfeats(const hy_tab *T, int s, uint32_t r, const uint32_t **id, const float **w) {
    const uint32_t gr = T->map[s] && r < T->nmap[s] ? T->map[s][r] : r;
    if (gr >= T->frows[s]) return 0;
    if (T->pk[s]) {
        const hy_pk *p = T->pk[s] + gr;
        *id = p->id;
        *w = p->w;
        return p->n;
    }
    const uint64_t a = T->off[s][gr];
    *id = T->fid[s] + a;
    *w = T->fw[s] + a;
    return (uint32_t)(T->off[s][gr + 1] - a);
}

/* Row r of side s composed into out (sq: fm's squares) with its features; returns the
 * bias. With p non-NULL also *dot = p . out, summed as fri_dot sums. Blocks of up to 32
 * floats are held in registers while the rows are read, a broadcast of a weight a row. */
static FRI_ALWAYS_INLINE float kcompose(const hy_tab *T, int s, uint32_t r, float *restrict out, float *restrict sq,
                                        const float *restrict p, float *dot, size_t d, bool fm) {
    const uint32_t *id = NULL;
    const float *w = NULL;
    const uint32_t n = kfeats(T, s, r, &id, &w);
    const float *e = T->E[s] + (size_t)r * d, *F = T->F[s], *FB = T->FB[s];
    float b = T->B[s][r]; /* the bias summed in the first block's pass over the features (one loop) */
    v8f acc = {0};
    for (size_t k0 = 0; k0 < d; k0 += 32) {
        const size_t nb = d - k0 >= 32 ? 4 : (d - k0) / 8;
        v8f o[4], o2[4];
        for (size_t c = 0; c < nb; c++) {
            o[c] = v8_load(e + k0 + 8 * c);
            if (fm) o2[c] = o[c] * o[c];
        }
        for (uint32_t j = 0; j < n; j++) {
            const float *v = F + (size_t)id[j] * d + k0;
            if (k0 == 0) b += w[j] * FB[id[j]];
            const v8f x = v8_splat(w[j]), xx = v8_splat(w[j] * w[j]);
            for (size_t c = 0; c < nb; c++) {
                const v8f vv = v8_load(v + 8 * c), t = x * vv;
                o[c] = o[c] + t;
                if (fm) {
                    const v8f t2 = (xx * vv) * vv;
                    o2[c] = o2[c] + t2;
                }
            }
        }
        for (size_t c = 0; c < nb; c++) {
            v8_store(out + k0 + 8 * c, o[c]);
            if (fm) v8_store(sq + k0 + 8 * c, o2[c]);
            if (p) {
                const v8f t = v8_load(p + k0 + 8 * c) * o[c];
                acc = acc + t;
            }
        }
    }
    if (p) *dot = v8_sum1(acc);
    return b;
}

/* Brings id row r of side s towards L1 (no effect on any value). */
static FRI_ALWAYS_INLINE void kprefetch(const hy_tab *T, int s, uint32_t r, size_t d) {
    for (size_t k = 0; k < d; k += 16) __builtin_prefetch(T->E[s] + (size_t)r * d + k, 0, 3);
}

static FRI_ALWAYS_INLINE void kprefetch_g(const hy_tab *T, int s, uint32_t r, size_t d) {
    for (size_t k = 0; k < d; k += 16) __builtin_prefetch(T->gE[s] + (size_t)r * d + k, 1, 3);
    __builtin_prefetch(T->gB[s] + r, 1, 3);
}

/* The feature list of row r of side s (its ids and weights) towards L1. */
static FRI_ALWAYS_INLINE void kprefetch_list(const hy_tab *T, int s, uint32_t r) {
    const uint32_t gr = T->map[s] && r < T->nmap[s] ? T->map[s][r] : r;
    if (gr >= T->frows[s]) return;
    if (T->pk[s]) {
        __builtin_prefetch(T->pk[s] + gr, 0, 3);
        return;
    }
    const uint64_t a = T->off[s][gr];
    __builtin_prefetch(T->fid[s] + a, 0, 3);
    __builtin_prefetch(T->fw[s] + a, 0, 3);
}

static FRI_ALWAYS_INLINE void kprefetch_off(const hy_tab *T, int s, uint32_t r) {
    const uint32_t gr = T->map[s] && r < T->nmap[s] ? T->map[s][r] : r;
    if (gr < T->frows[s] && !T->pk[s]) __builtin_prefetch(T->off[s] + gr, 0, 3);
}

/* A user's row of bits (hy_ws.pos: its items and the absent ones) towards L1, its first 8 lines. */
static FRI_ALWAYS_INLINE void kprefetch_bits(const uint64_t *row, size_t words) {
    const char *r = (const char *)row;
    const size_t bytes = words * sizeof *row, n = bytes < 512 ? bytes : 512;
    for (size_t o = 0; o < n; o += 64) __builtin_prefetch(r + o, 0, 3);
    __builtin_prefetch(r + n - 1, 0, 3);
}

/* The screening table's rows are IEEE half floats (binary16: 11 significant bits, a value
 * within 2^-11 of its float), one 64-byte line a row at dim 32: a screened candidate reads
 * half the bytes, and the table half the cache. It only chooses which candidate is composed
 * (the chosen one's score and gradient are exact), so a score off by ~1e-3 moves a
 * candidate across the margin rarely. With F16C (the kernel's and rows_pass's AVX2 copies)
 * vcvtph2ps / vcvtps2ph convert eight at a time; the plain copies convert in software (the
 * same values: round to nearest even, subnormals kept). h16: a constant of each copy. */
static FRI_ALWAYS_INLINE float hy_h2f(uint16_t h) {
    const uint32_t sgn = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, mt = h & 0x3ffu;
    if (e == 0) { /* zero or subnormal: mt 2^-24 */
        const float f = (float)mt * 0x1p-24f;
        return sgn ? -f : f;
    }
    const uint32_t x = sgn | (e == 31 ? 0x7f800000u | mt << 13 : (e + 112) << 23 | mt << 13);
    float f;
    memcpy(&f, &x, sizeof f);
    return f;
}
static FRI_ALWAYS_INLINE uint16_t hy_f2h(float f) {
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    const uint32_t sgn = (x >> 16) & 0x8000u;
    x &= 0x7fffffffu;
    if (x > 0x7f800000u) return (uint16_t)(sgn | 0x7e00u | (x >> 13 & 0x3ffu)); /* NaN stays NaN */
    if (x >= 0x477ff000u) return (uint16_t)(sgn | 0x7c00u); /* 65520 and up round to infinity */
    if (x < 0x38800000u) { /* below 2^-14: a subnormal half, round(|f| 2^24) to nearest even */
        float a;
        memcpy(&a, &x, sizeof a);
        const float y = a * 0x1p24f + 0x1p23f; /* the add rounds to an integer (< 2^10) */
        uint32_t yb;
        memcpy(&yb, &y, sizeof yb);
        return (uint16_t)(sgn | (yb - 0x4b000000u));
    }
    uint32_t h = ((x >> 23) - 112) << 10 | (x >> 13 & 0x3ffu);
    const uint32_t rem = x & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1))) h++; /* nearest even (a carry moves the exponent) */
    return (uint16_t)(sgn | h);
}
#if defined(__GNUC__) && !defined(__clang__) && defined(__OPTIMIZE__) && (defined(__x86_64__) || defined(__i386__))
#define HY_F16C 1 /* the builtins below stand in a branch the plain copies drop as dead code */
#include <immintrin.h>
#else
#define HY_F16C 0
#endif
static FRI_ALWAYS_INLINE v8f kh8_load(const uint16_t *p, bool h16) {
#if HY_F16C
    if (h16) {
        __v8hi h;
        memcpy(&h, p, sizeof h);
        return (v8f)__builtin_ia32_vcvtph2ps256(h);
    }
#endif
    (void)h16;
    v8f v;
    for (int k = 0; k < 8; k++) v[k] = hy_h2f(p[k]);
    return v;
}
static FRI_ALWAYS_INLINE void kh8_store(uint16_t *p, v8f v, bool h16) {
#if HY_F16C
    if (h16) {
        const __v8hi h = __builtin_ia32_vcvtps2ph256((__v8sf)v, 0); /* 0: round to nearest even */
        memcpy(p, &h, sizeof h);
        return;
    }
#endif
    (void)h16;
    for (int k = 0; k < 8; k++) p[k] = hy_f2h(v[k]);
}

#if HY_F16C
/* (tests: eight floats to halves by F16C) */
__attribute__((target("avx2,f16c"))) static void halves_hw(const float *in, uint16_t *out) {
    v8f v;
    memcpy(&v, in, sizeof v);
    kh8_store(out, v, true);
}
#endif

/* (the biases, sq_b, are 4 bytes an item: a few KB, kept in cache by the screens themselves) */
static FRI_ALWAYS_INLINE void kprefetch_q(const uint16_t *sq_e, const float *sq_b, uint32_t r, size_t d) {
    (void)sq_b;
    for (size_t k = 0; k < d; k += 32) __builtin_prefetch(sq_e + (size_t)r * d + k, 0, 3);
}

/* lightfm's screening score of item row r for user vector p: p . (E[r] + G[r]) + (B[r] + gb[r]),
 * G and gb the item's feature part as of the last refresh, the sums kept in one row
 * (hy_ws.sq_e, sq_b: rows_pass adds them when it refreshes G and after each step of E, B). */
static FRI_ALWAYS_INLINE float kscreen(const uint16_t *sq_e, const float *sq_b, uint32_t r, const float *restrict p,
                                       size_t d, bool h16) {
    const uint16_t *q = sq_e + (size_t)r * d;
    v8f acc = {0};
    for (size_t k = 0; k < d; k += 8) {
        const v8f t = v8_load(p + k) * kh8_load(q + k, h16);
        acc = acc + t;
    }
    return v8_sum1(acc) + sq_b[r];
}

/* A pair's score from its parts: lightfm dot + bias; fm w0 + bias + 0.5 sum(|p+q|^2 - sp - sq). */
static FRI_ALWAYS_INLINE float kscore(float dot, const float *p, const float *sp, const float *q, const float *sq,
                                      float w0, float bias, size_t d, bool fm) {
    if (!fm) return dot + bias;
    v8f acc = {0};
    for (size_t k = 0; k < d; k += 8) {
        const v8f a = v8_load(p + k) + v8_load(q + k);
        const v8f t = a * a, t1 = t - v8_load(sp + k), t2 = t1 - v8_load(sq + k);
        acc = acc + t2;
    }
    return w0 + bias + 0.5f * v8_sum1(acc);
}

/* Row r of side s and its features get the gradient of coef (fm: minus cs v of each row,
 * weighted by w^2 for a feature row); the biases db. Marks the id row. */
static FRI_ALWAYS_INLINE void kmark(hy_tab *T, int s, uint32_t r) {
    if (!T->mk[s][r]) { T->mk[s][r] = 1; T->rl[s][T->rc[s]++] = r; }
}

/* The gradient row of id row r of side s and its bias, marked: the slab's, or a compact slot
 * (taken at the row's first touch: the slab's row is zero then). With fresh NULL a new slot
 * is zeroed; else *fresh says whether the slot is new and its contents are left for the
 * caller to store (kscatter stores its first add, c, where 0 + c would be the same value:
 * only a -0 would become +0, which no step tells from +0). */
static FRI_ALWAYS_INLINE float *kgrow(hy_tab *T, int s, uint32_t r, size_t d, float **gb, bool *fresh) {
    if (fresh) *fresh = false;
    if (!T->cg[s]) {
        kmark(T, s, r);
        *gb = T->gB[s] + r;
        return T->gE[s] + (size_t)r * d;
    }
    uint32_t k = T->slot[s][r];
    if (k == HY_NOSLOT) {
        k = T->cc[s]++;
        T->slot[s][r] = k;
        T->crow[s][k] = r;
        if (fresh) *fresh = true;
        else {
            memset(T->cg[s] + (size_t)k * d, 0, d * sizeof(float));
            T->cgb[s][k] = 0.0f;
        }
    }
    *gb = T->cgb[s] + k;
    return T->cg[s] + (size_t)k * d;
}

/* The kernels' tables (hy_tab) of model m, its feature set f, gradient g (NULL: the loss
 * alone, no gradient tables) and workspace w; mapped: rows are a compact model's (its row
 * maps, by which the global ids are found), else global ids. */
static FRI_ALWAYS_INLINE void ktab_init(hy_tab *T, const fr_model *m, const fri_feat *f, fr_grad *g, const hy_ws *w,
                                        bool mapped) {
    const int roles[2][4] = {{US_EMB, US_B, UF_EMB, UF_B}, {IT_EMB, IT_B, IF_EMB, IF_B}};
    for (int s = 0; s < 2; s++) {
        T->E[s] = P(m, roles[s][0]);
        T->B[s] = P(m, roles[s][1]);
        T->F[s] = P(m, roles[s][2]);
        T->FB[s] = P(m, roles[s][3]);
        T->off[s] = f ? f->off[s] : NULL;
        T->fid[s] = f ? f->id[s] : NULL;
        T->fw[s] = f ? f->w[s] : NULL;
        T->frows[s] = f ? f->rows[s] : 0;
        T->pk[s] = f ? f->pk[s] : NULL;
        T->map[s] = !mapped ? NULL : s ? m->row_item : m->row_user; /* mapped false: both NULL (a constant) */
        T->nmap[s] = !mapped ? 0 : s ? m->n_row_item : m->n_row_user;
        if (g) {
            T->gE[s] = G(g, m, roles[s][0]);
            T->gB[s] = G(g, m, roles[s][1]);
            T->gF[s] = G(g, m, roles[s][2]);
            T->gFB[s] = G(g, m, roles[s][3]);
            T->rE[s] = &g->rows[m->slot[roles[s][0]]];
            T->rB[s] = &g->rows[m->slot[roles[s][1]]];
            T->mk[s] = T->rE[s]->mark;
            T->rl[s] = T->rE[s]->rows;
            T->rc[s] = T->rE[s]->count;
        }
        T->cg[s] = g ? w->cg[s] : NULL;
        T->cgb[s] = w->cgb[s];
        T->slot[s] = w->slot[s];
        T->crow[s] = w->crow[s];
        T->cc[s] = w->ccount[s];
    }
}

/* The counts back after a minibatch: the id rows' marked count, the bias rows marked as the
 * id rows (in the same order), the compact slots taken. */
static FRI_ALWAYS_INLINE void ktab_done(hy_tab *T, hy_ws *w) {
    for (int s = 0; s < 2; s++) {
        fr_rowset *re = T->rE[s], *rb = T->rB[s];
        for (uint32_t k = re->count; k < T->rc[s]; k++) fr_rowset_add(rb, T->rl[s][k]);
        re->count = T->rc[s];
        w->ccount[s] = T->cc[s];
    }
}

/* An example whose gradient is zero: its rows (user u, item i, and the negative j where it has
 * one) marked all the same, with no arithmetic. */
static FRI_ALWAYS_INLINE void kgrow_zero(hy_tab *T, uint32_t u, uint32_t i, uint32_t j, bool has_j, size_t d) {
    float *gbr;
    (void)kgrow(T, 0, u, d, &gbr, NULL);
    (void)kgrow(T, 1, i, d, &gbr, NULL);
    if (has_j) (void)kgrow(T, 1, j, d, &gbr, NULL);
}

static FRI_ALWAYS_INLINE void kscatter(hy_tab *T, int s, uint32_t r, const float *restrict coef, float cs, float db,
                                       size_t d, bool fm) {
    const uint32_t *id = NULL;
    const float *w = NULL;
    const uint32_t n = kfeats(T, s, r, &id, &w);
    float *gbr;
    bool fresh;
    float *ge = kgrow(T, s, r, d, &gbr, &fresh);
    const float *e = T->E[s] + (size_t)r * d;
    const v8f vcs = v8_splat(cs);
    if (fresh) {
        for (size_t k = 0; k < d; k += 8) {
            v8f c = v8_load(coef + k);
            if (fm) {
                const v8f t = vcs * v8_load(e + k);
                c = c - t;
            }
            v8_store(ge + k, c);
        }
        *gbr = db;
    } else {
        for (size_t k = 0; k < d; k += 8) {
            v8f c = v8_load(coef + k);
            if (fm) {
                const v8f t = vcs * v8_load(e + k);
                c = c - t;
            }
            v8_store(ge + k, v8_load(ge + k) + c);
        }
        *gbr += db;
    }
    float *gF = T->gF[s], *gFB = T->gFB[s];
    const float *F = T->F[s];
    for (uint32_t j = 0; j < n; j++) {
        const float x = w[j];
        const v8f vx = v8_splat(x), vx2 = v8_splat(cs * x * x);
        float *gr = gF + (size_t)id[j] * d;
        const float *v = F + (size_t)id[j] * d;
        for (size_t k = 0; k < d; k += 8) {
            v8f t = vx * v8_load(coef + k);
            if (fm) {
                const v8f t2 = vx2 * v8_load(v + k);
                t = t - t2;
            }
            v8_store(gr + k, v8_load(gr + k) + t);
        }
        gFB[id[j]] += x * db;
    }
}

/* sum x_k^2 in eight float lanes (v8_sum1's order). */
static FRI_ALWAYS_INLINE float ksumsq(const float *restrict x, size_t d) {
    v8f acc = {0};
    for (size_t k = 0; k < d; k += 8) {
        const v8f v = v8_load(x + k), t = v * v;
        acc = acc + t;
    }
    return v8_sum1(acc);
}

/* fri_sumsq, out of line: inlined into the kernel with a constant d, GCC 12 warns of an
 * out-of-range iteration of its tail loop that cannot run. */
__attribute__((noinline, noipa)) static double hy_sumsq(const float *x, size_t d) { return fri_sumsq(x, d); }

/* fri_softplus(x) and fri_sigmoid(x) with one exp: both take exp(-|x|), so the same bits. */
static FRI_ALWAYS_INLINE void hy_softplus_sigmoid(double x, double *sp, double *sg) {
    const double e = exp(-fabs(x));
    *sp = (x > 0.0 ? x : 0.0) + log1p(e);
    *sg = x >= 0.0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
}

/* The same in float (the fast path: expf, and logf(1 + e) for log1p(e), whose absolute
 * error (< 1.2e-7: e below float's epsilon is lost) only the reported loss sees; the
 * difference sj - si taken in float). glibc's log1pf is three times logf's cost. Unweighted,
 * the kernel takes no log an example: it multiplies the (1 + e) in double and adds the
 * log of the product once a batch (or when it passes 2^900). */
static FRI_ALWAYS_INLINE void hy_softplus_sigmoid_f(float x, double *sp, double *sg) {
    const float e = expf(-fabsf(x));
    *sp = (double)((x > 0.0f ? x : 0.0f) + logf(1.0f + e));
    *sg = (double)(x >= 0.0f ? 1.0f / (1.0f + e) : e / (1.0f + e));
}

/* WARP's weight of a violation at trial t: ln(max(1, floor((N - 1) / t))). */
static double warp_lw(hy_ws *w, uint32_t N, uint32_t t) {
    if (t > HY_LW) {
        double rank = floor((double)(N > 0 ? N - 1 : 0) / t);
        return log(rank > 1.0 ? rank : 1.0);
    }
    if (w->lw_n != N) { w->lw_n = N; w->lw_have = 0; }
    while (w->lw_have < t) {
        uint32_t u = ++w->lw_have;
        double rank = floor((double)(N > 0 ? N - 1 : 0) / u);
        w->lw[u] = log(rank > 1.0 ? rank : 1.0);
    }
    return w->lw[t];
}

static FRI_ALWAYS_INLINE double hy_kernel_body(const fr_model *m, hy_ws *w, const fr_batch *b, fr_grad *g, size_t d,
                                               bool fm, bool mapped, bool h16) {
    const fr_model_config *c = &m->cfg;
    const fri_feat *f = feat_of(c->features);
    const bool pair = c->loss == FR_LOSS_BPR;
    const size_t B = b->n;
    const double invB = 1.0 / (double)B, l2s = (double)c->l2 * invB;
    const uint32_t N = m->catalogue ? m->catalogue : c->n_items;
    const uint32_t rows = m->row_item ? m->n_row_item : c->n_items, nrows = rows ? rows : 1;
    const float w0 = fm ? P(m, W0)[0] : 0.0f;
    const uint32_t warp = c->warp;
    const uint64_t seed = c->seed;
    /* what the loop reads, in locals (the rowsets' byte stores may alias any memory) */
    const uint32_t *const users = b->users, *const items = b->items, *const negs = b->neg;
    const float *const label = b->label, *const weight = b->weight;
    const uint16_t *const sq_e = fm ? NULL : w->sq_e;
    const float *const sq_b = w->sq_b;
    const bool fast = w->fast, zero_unmarked = w->zero_unmarked, scr = sq_e != NULL, smx = scr && w->splitmix;
    const bool own = smx && pair && warp && !negs; /* WARP's first candidate drawn here too */
    const uint64_t oseed = seed + w->draw_key * 0x9E3779B97F4A7C15u;
    float *const gw0 = fm && g ? G(g, m, W0) : NULL;
    hy_tab T;
    ktab_init(&T, m, f, g, w, mapped);
    float *const p = w->p, *const sp = w->sp, *const q0 = w->q[0], *const sq0 = w->sq[0];
    float *const cu = w->cu, *const ci = w->ci;
    const bool offs = !T.pk[0] || !T.pk[1]; /* a side's lists in the CSR: their offsets asked for early */
    double L = 0.0, lprod = 1.0; /* lprod: the fast path's product of bpr's (1 + e) (hy_softplus_sigmoid_f) */
    /* own draws: example x's stream and first candidate, made an example ahead (its table
     * row prefetched) */
#define HY_OWN_INIT(xx)                                                                                                 \
    hy_draws_init(oseed, T.map[1] && items[xx] < T.nmap[1] ? T.map[1][items[xx]] : items[xx],                         \
                  (T.map[0] && users[xx] < T.nmap[0] ? T.map[0][users[xx]] : users[xx]) ^ ((uint32_t)(xx) * 2654435761u))
    /* the first candidate: drawn again while it is one of the user's items or an absent one
     * (as the trainer's negatives are: draw_negative); the trainer gives no example to a
     * user for whom that leaves nothing */
    const uint64_t *const pos = own ? w->pos : NULL;
    const size_t pw = w->pos_words;
#define HY_OWN_FIRST(xx)                                                                                                \
    do first_next = hy_draws_below(&hd_next, nrows);                                                                    \
    while (pos[(size_t)users[xx] * pw + (first_next >> 6)] >> (first_next & 63) & 1)
    uint32_t *const trace = own ? hy_cand_trace : NULL; /* tests (fri_hybrid_cand_trace) */
    hy_draws hd_next = {0};
    uint32_t first_next = 0;
    if (own && B) {
        hd_next = HY_OWN_INIT(0);
        HY_OWN_FIRST(0);
    }
    for (size_t x = 0; x < B; x++) {
        const uint32_t u = users[x], i = items[x];
        const double wt = weight ? (double)weight[x] : 1.0;
        hy_draws hd_own = hd_next;
        const uint32_t first_own = first_next;
        if (own && x + 1 < B) {
            hd_next = HY_OWN_INIT(x + 1);
            HY_OWN_FIRST(x + 1);
            kprefetch_q(sq_e, sq_b, first_next, d);
        }
        if (x + 1 < B) { /* the next example's id rows (feature rows are few and hot) */
            kprefetch(&T, 0, users[x + 1], d);
            kprefetch(&T, 1, items[x + 1], d);
            /* the negative: bpr composes it; lightfm's screened WARP reads its table row (the
             * first candidate), composing it only when it violates */
            if (own) {
            } else if (smx) kprefetch_q(sq_e, sq_b, negs[x + 1], d);
            else if (pair) kprefetch(&T, 1, negs[x + 1], d);
            if (g && !T.cg[0]) { /* and the gradient rows its scatter adds to */
                kprefetch_g(&T, 0, users[x + 1], d);
                kprefetch_g(&T, 1, items[x + 1], d);
            }
            /* and its feature lists (their offsets were asked for an example ago) */
            kprefetch_list(&T, 0, users[x + 1]);
            kprefetch_list(&T, 1, items[x + 1]);
            if (pair && !smx) kprefetch_list(&T, 1, negs[x + 1]);
        }
        if (offs && x + 2 < B) { /* the offsets of the lists of the example after */
            kprefetch_off(&T, 0, users[x + 2]);
            kprefetch_off(&T, 1, items[x + 2]);
            if (pair && !smx) kprefetch_off(&T, 1, negs[x + 2]);
        }
        float dot = 0.0f;
        const float bu = kcompose(&T, 0, u, p, sp, NULL, NULL, d, fm);
        const float bi = kcompose(&T, 1, i, q0, sq0, fm ? NULL : p, &dot, d, fm);
        const float si = kscore(dot, p, sp, q0, sq0, w0, bu + bi, d, fm);
        double dsi = 0.0, dsj = 0.0, l;
        uint32_t j = 0;
        float *q1 = w->q[1], *sq1 = w->sq[1]; /* the negative's parts */
        if (!pair) {
            double y = label[x];
            hy_softplus_sigmoid(si, &l, &dsi);
            l -= y * si;
            dsi -= y;
        } else if (!warp) {
            j = negs[x];
            const float bj = kcompose(&T, 1, j, q1, sq1, fm ? NULL : p, &dot, d, fm);
            const float sj = kscore(dot, p, sp, q1, sq1, w0, bu + bj, d, fm);
            if (fast && !weight) { /* the log of the product of (1 + e) once a batch */
                const float xf = sj - si, e = expf(-fabsf(xf));
                l = xf > 0.0f ? xf : 0.0f;
                dsj = (double)(xf >= 0.0f ? 1.0f / (1.0f + e) : e / (1.0f + e));
                lprod *= 1.0 + (double)e;
                if (lprod > 0x1p900) { L += log(lprod) * invB; lprod = 1.0; }
            } else if (fast) hy_softplus_sigmoid_f(sj - si, &l, &dsj);
            else hy_softplus_sigmoid((double)sj - si, &l, &dsj);
            dsi = -dsj;
        } else { /* WARP (warp_find's candidates and draws) */
            /* lightfm under rows_pass screens a candidate by its item's feature part as of
             * the last refresh (kscreen) and composes only the one it takes; its draws are
             * a splitmix64 sequence from the same key (hy_draws), not the Philox stream */
            const uint32_t neg = own ? first_own : negs[x];
            const uint32_t key_i = T.map[1] && i < T.nmap[1] ? T.map[1][i] : i;
            const uint32_t gu = T.map[0] && u < T.nmap[0] ? T.map[0][u] : u;
            const uint32_t gn = T.map[1] && neg < T.nmap[1] ? T.map[1][neg] : neg;
            const uint32_t key_u = gu ^ (gn * 2654435761u);
            uint32_t t = 0;
            float sj = 0.0f;
            if (smx) { /* lightfm's fast path: the first candidate the screen passes is taken */
                hy_draws hd = own ? hd_own : hy_draws_init(seed, key_i, key_u);
                const uint64_t *const urow = pos ? pos + (size_t)u * pw : NULL; /* the user's bits */
                /* the draws one trial ahead, so the next candidate's rows are on their way
                 * while this one is screened (the one drawn ahead of a violation is unused) */
                uint32_t cand = neg, ahead = 0;
                if (warp > 1) {
                    ahead = hy_draws_below(&hd, nrows);
                    kprefetch_q(sq_e, sq_b, ahead, d);
                }
                for (uint32_t tt = 1; tt <= warp; tt++) {
                    if (tt > 1) {
                        cand = ahead;
                        if (tt < warp) {
                            ahead = hy_draws_below(&hd, nrows);
                            kprefetch_q(sq_e, sq_b, ahead, d);
                        }
                        /* as LightFM: a trial that draws one of the user's items (or an
                         * absent one) is spent; without the bits, the positive itself */
                        if (pos ? urow[cand >> 6] >> (cand & 63) & 1 : cand == i) continue;
                    }
                    if (trace) hy_trace_cand(trace, gu, key_i, cand, tt);
                    if (kscreen(sq_e, sq_b, cand, p, d, h16) + bu > si - 1.0f) {
                        t = tt;
                        j = cand;
                        break;
                    }
                }
                if (t) {
                    const float bc = kcompose(&T, 1, j, q1, sq1, p, &dot, d, false);
                    sj = kscore(dot, p, sp, q1, sq1, w0, bu + bc, d, false);
                } else {
                    j = neg;
                    if (l2s > 0) kcompose(&T, 1, j, q1, sq1, NULL, NULL, d, false);
                }
            } else {
                fr_rng rng;
                hy_draws hd;
                if (smx) hd = hy_draws_init(seed, key_i, key_u);
                else fr_rng_init(&rng, seed, key_i, key_u, FR_PURPOSE_USER + 14);
#define HY_DRAW() (smx ? hy_draws_below(&hd, nrows) : fr_rng_below(&rng, nrows))
                uint32_t cand = neg;
                /* the stream's draws one trial ahead, so the next candidate's id row is on its
                 * way while this one is scored (the same draws for the same trials; the one
                 * drawn ahead of a violation is not used) */
                uint32_t ahead = 0;
                if (warp > 1) {
                    ahead = HY_DRAW();
                    kprefetch(&T, 1, ahead, d);
                    if (scr) kprefetch_q(sq_e, sq_b, ahead, d);
                }
                bool composed_neg = false;
                for (uint32_t tt = 1; tt <= warp; tt++) {
                    float *qc = tt == 1 ? w->q[1] : w->q[2], *sqc = tt == 1 ? w->sq[1] : w->sq[2];
                    if (tt > 1) {
                        cand = ahead;
                        if (tt < warp) {
                            ahead = HY_DRAW();
                            kprefetch(&T, 1, ahead, d);
                            if (scr) kprefetch_q(sq_e, sq_b, ahead, d);
                        }
                        if (cand == i) continue;
                    }
                    if (scr && !(kscreen(sq_e, sq_b, cand, p, d, h16) + bu > si - 1.0f)) continue;
                    const float bc = kcompose(&T, 1, cand, qc, sqc, fm ? NULL : p, &dot, d, fm);
                    const float sc = kscore(dot, p, sp, qc, sqc, w0, bu + bc, d, fm);
                    if (tt == 1) composed_neg = true;
                    if (scr || sc > si - 1.0f) {
                        t = tt;
                        j = cand;
                        sj = sc;
                        q1 = qc;
                        sq1 = sqc;
                        break;
                    }
                }
#undef HY_DRAW
                if (!t) { /* none: the negative's parts (q[1]) for the L2 term */
                    j = neg;
                    if (!composed_neg && l2s > 0) kcompose(&T, 1, j, w->q[1], w->sq[1], NULL, NULL, d, fm);
                }
            }
            const double lw = !t ? 0.0 : t <= w->lw_have && w->lw_n == N ? w->lw[t] : warp_lw(w, N, t); /* kept */
            l = t ? lw * (1.0 - (double)si + (double)sj) : 0.0;
            dsi = -lw;
            dsj = lw;
        }
        L += wt * l * invB;
        if (l2s > 0) {
            if (fast) /* the fast path: the reported L2 term's squares summed in float lanes */
                L += l2s * ((double)ksumsq(p, d) + (double)ksumsq(q0, d) + (pair ? (double)ksumsq(q1, d) : 0.0));
            else L += l2s * (hy_sumsq(p, d) + hy_sumsq(q0, d) + (pair ? hy_sumsq(q1, d) : 0.0));
        }
        if (!g) continue;
        const float gi = (float)(wt * dsi * invB), gj = (float)(wt * dsj * invB), l2f = (float)(2.0 * l2s);
        if (gi == 0.0f && gj == 0.0f && l2f == 0.0f) { /* a zero gradient: the rows, no arithmetic */
            if (!zero_unmarked) kgrow_zero(&T, u, i, j, pair, d);
            continue;
        }
        const float gij = gi + (pair ? gj : 0.0f);
        const v8f vgi = v8_splat(gi), vgj = v8_splat(gj), vl2 = v8_splat(l2f), vgij = v8_splat(gij);
        for (size_t k = 0; k < d; k += 8) { /* user side: sum_k ds_k q_k (fm: + ds_k p) + 2 l2s p */
            const v8f pv = v8_load(p + k);
            v8f cuv = vgi * v8_load(q0 + k);
            if (pair) {
                const v8f t = vgj * v8_load(q1 + k);
                cuv = cuv + t;
            }
            if (fm) {
                const v8f t = vgij * pv;
                cuv = cuv + t;
            }
            const v8f t = vl2 * pv;
            v8_store(cu + k, cuv + t);
        }
        for (int side = 0; side < (pair ? 2 : 1); side++) {
            const float gs = side ? gj : gi;
            const float *q = side ? q1 : q0;
            const v8f vgs = v8_splat(gs);
            for (size_t k = 0; k < d; k += 8) {
                const v8f qv = v8_load(q + k);
                const v8f a = fm ? v8_load(p + k) + qv : v8_load(p + k);
                const v8f t1 = vgs * a, t2 = vl2 * qv;
                v8_store(ci + k, t1 + t2);
            }
            kscatter(&T, 1, side ? j : i, ci, fm ? gs : 0.0f, gs, d, fm);
        }
        kscatter(&T, 0, u, cu, fm ? gij : 0.0f, gij, d, fm);
        if (fm) gw0[0] += gij;
    }
    if (g) ktab_done(&T, w);
    if (lprod != 1.0) L += log(lprod) * invB;
    return L;
#undef HY_OWN_INIT
#undef HY_OWN_FIRST
}

/* the kernel for lightfm and fm, dims 32 and 64 as constants, and rows that are global ids
 * (the centralized model: no row binding) as a constant too */
#define HY_KERNEL_BODY(h16)                                                                                             \
    const bool mapped = m->row_item || m->row_user;                                                                     \
    if (is_fm(&m->cfg)) {                                                                                               \
        switch (m->cfg.dim) {                                                                                           \
        case 32: return hy_kernel_body(m, w, b, g, 32, true, true, h16);                                                \
        default: return hy_kernel_body(m, w, b, g, m->cfg.dim, true, true, h16);                                        \
        }                                                                                                               \
    }                                                                                                                   \
    switch (m->cfg.dim) {                                                                                               \
    case 32:                                                                                                            \
        return mapped ? hy_kernel_body(m, w, b, g, 32, false, true, h16) : hy_kernel_body(m, w, b, g, 32, false, false, h16); \
    case 64: return hy_kernel_body(m, w, b, g, 64, false, true, h16);                                                   \
    default: return hy_kernel_body(m, w, b, g, m->cfg.dim, false, true, h16);                                           \
    }

static double hy_kernel_plain(const fr_model *m, hy_ws *w, const fr_batch *b, fr_grad *g) { HY_KERNEL_BODY(false) }

#if defined(__x86_64__) || defined(__i386__)
#define HY_AVX 1
/* (C11 mode turns GCC's contraction off, -ffp-contract=off: here it is on; clang contracts
 * within an expression by default and has no optimize attribute) */
#if defined(__clang__)
#define HY_CONTRACT
#else
#define HY_CONTRACT __attribute__((optimize("fp-contract=fast")))
#endif
__attribute__((target("avx2,fma,f16c"))) HY_CONTRACT static double
hy_kernel_avx(const fr_model *m, hy_ws *w, const fr_batch *b, fr_grad *g) {
    HY_KERNEL_BODY(true)
}

/* lightfm WARP on rows_pass's fast path where it draws the first candidates itself
 * (rows_pass_draws: the centralized model's rows, splitmix/wyrand draws, the screening
 * table), at the preset's dim 32 in the AVX2 copy: hy_kernel_body's loop for that one case
 * alone, in a function of its own (hy_loss takes it where it applies: hy_warp_applies), so that
 * the other kinds' copies keep their code and bits (the AVX2 copy's contraction chooses which
 * product it fuses by the order the compiler leaves its operations in). The same candidates,
 * trials, loss and gradient; what it does differently, for the time a trial and an example wait
 * on memory (tenth pass, docs/ARCHITECTURE.md):
 *   - a trial's candidate is checked against the user's items only when the screen passes it
 *     (a trial that fails the screen is spent either way: the same trials), so most trials read
 *     no bit;
 *   - the bits of the user after next are asked for an example ahead of the draw that reads them;
 *   - the violator is composed after the positive's scatter (its rows asked for when it is
 *     found): its gradient, loss and the user's coefficient need it, the positive's does not.
 * Held to hy_kernel_body (the same model within the contraction's last bits, the same
 * candidates: tests/test_hybrid.c). */
#define HY_W_AHEAD 2 /* hy_warp_body: an example's trials 2 .. 1 + HY_W_AHEAD drawn an example ahead, then
                      * each trial HY_W_AHEAD ahead of the one that reads it (a power of 2) */
/* the warp kernels' (hy_warp_body, hy_kernel_avx512_warp) example x's stream and first candidate
 * (drawn again while it is one of the user's items or an absent one), made an example ahead, its
 * table row asked for; whether candidate cc is one of the user's items (urow: its row of bits) */
#define HY_W_INIT(xx) hy_draws_init(oseed, items[xx], users[xx] ^ ((uint32_t)(xx) * 2654435761u))
#define HY_W_FIRST(xx)                                                                                                  \
    do first_next = hy_draws_below(&hd_next, nrows);                                                                    \
    while (pos[(size_t)users[xx] * pw + (first_next >> 6)] >> (first_next & 63) & 1)
#define HY_W_SPENT(cc) (urow[(cc) >> 6] >> ((cc) & 63) & 1)
static FRI_ALWAYS_INLINE double hy_warp_body(const fr_model *m, hy_ws *w, const fr_batch *b, fr_grad *g, bool h16) {
    const size_t d = 32;
    const fr_model_config *c = &m->cfg;
    const fri_feat *f = feat_of(c->features);
    const size_t B = b->n;
    const double invB = 1.0 / (double)B, l2s = (double)c->l2 * invB;
    const uint32_t N = m->catalogue ? m->catalogue : c->n_items;
    const uint32_t nrows = c->n_items ? c->n_items : 1;
    const uint32_t warp = c->warp;
    const uint32_t *const users = b->users, *const items = b->items;
    const float *const weight = b->weight;
    const uint16_t *const sq_e = w->sq_e;
    const float *const sq_b = w->sq_b;
    const bool fast = w->fast, zero_unmarked = w->zero_unmarked;
    const uint64_t oseed = c->seed + w->draw_key * 0x9E3779B97F4A7C15u;
    const uint64_t *const pos = w->pos;
    const size_t pw = w->pos_words;
    uint32_t *const trace = hy_cand_trace; /* tests (fri_hybrid_cand_trace) */
    hy_tab T;
    ktab_init(&T, m, f, g, w, false); /* the centralized model: global ids */
    float *const p = w->p, *const q0 = w->q[0], *const q1 = w->q[1];
    float *const cu = w->cu, *const ci = w->ci;
    const bool offs = !T.pk[0] || !T.pk[1];
    double L = 0.0;
    /* and its next HY_W_AHEAD draws (trials 2, 3, ...), their table rows asked for too */
#define HY_W_DRAWS()                                                                                                    \
    for (uint32_t k = 0; k < HY_W_AHEAD; k++) {                                                                         \
        ring_next[k] = hy_draws_below(&hd_next, nrows);                                                                 \
        kprefetch_q(sq_e, sq_b, ring_next[k], d);                                                                       \
    }
    hy_draws hd_next = {0};
    uint32_t first_next = 0, ring_next[HY_W_AHEAD] = {0};
    if (B) {
        if (B > 1) kprefetch_bits(pos + (size_t)users[1] * pw, pw);
        hd_next = HY_W_INIT(0);
        HY_W_FIRST(0);
        kprefetch_q(sq_e, sq_b, first_next, d);
        HY_W_DRAWS();
    }
    for (size_t x = 0; x < B; x++) {
        const uint32_t u = users[x], i = items[x];
        const double wt = weight ? (double)weight[x] : 1.0;
        hy_draws hd = hd_next;
        const uint32_t neg = first_next;
        uint32_t ring[HY_W_AHEAD]; /* the candidates of the next HY_W_AHEAD trials */
        memcpy(ring, ring_next, sizeof ring);
        if ((x & 15) == 0) { /* the examples' ids two lines ahead (past the batch: the next one's, or nothing
                              * read; a prefetch does not fault) */
            __builtin_prefetch((const void *)((uintptr_t)users + (x + 32) * sizeof *users), 0, 3);
            __builtin_prefetch((const void *)((uintptr_t)items + (x + 32) * sizeof *items), 0, 3);
        }
        if (x + 1 < B) {
            if (x + 2 < B) /* the bits of the user after next (the next example's first draw reads them) */
                kprefetch_bits(pos + (size_t)users[x + 2] * pw, pw);
            hd_next = HY_W_INIT(x + 1);
            HY_W_FIRST(x + 1);
            kprefetch_q(sq_e, sq_b, first_next, d);
            HY_W_DRAWS();
            kprefetch(&T, 0, users[x + 1], d); /* the next example's id rows and lists */
            kprefetch(&T, 1, items[x + 1], d);
            if (!T.cg[0]) {
                kprefetch_g(&T, 0, users[x + 1], d);
                kprefetch_g(&T, 1, items[x + 1], d);
            }
            kprefetch_list(&T, 0, users[x + 1]);
            kprefetch_list(&T, 1, items[x + 1]);
        }
        if (offs && x + 2 < B) {
            kprefetch_off(&T, 0, users[x + 2]);
            kprefetch_off(&T, 1, items[x + 2]);
        }
        float dot = 0.0f;
        const float bu = kcompose(&T, 0, u, p, NULL, NULL, NULL, d, false);
        const float bi = kcompose(&T, 1, i, q0, NULL, p, &dot, d, false);
        const float si = dot + (bu + bi);
        /* the trials: the first candidate, then the stream's draws (one ahead, its table row on
         * its way while this one is screened); the first the screen passes that is none of the
         * user's items is taken (as LightFM: a trial that draws one of them is spent) */
        const uint64_t *const urow = pos + (size_t)u * pw;
        const float thr = si - 1.0f;
        uint32_t t = 0, j = neg;
        /* trial tt's candidate in ring[(tt - 2) % HY_W_AHEAD], replaced by trial tt + HY_W_AHEAD's
         * (drawn past the last trial: unused) */
#define HY_W_NEXT()                                                                                                     \
    const uint32_t cand = ring[(tt - 2) % HY_W_AHEAD];                                                                  \
    ring[(tt - 2) % HY_W_AHEAD] = hy_draws_below(&hd, nrows);                                                           \
    kprefetch_q(sq_e, sq_b, ring[(tt - 2) % HY_W_AHEAD], d)
        if (trace) hy_trace_cand(trace, u, i, neg, 1);
        if (kscreen(sq_e, sq_b, neg, p, d, h16) + bu > thr) t = 1;
        else if (trace) /* (tests) every candidate screened and not spent traced */
            for (uint32_t tt = 2; tt <= warp; tt++) {
                HY_W_NEXT();
                const bool spent = HY_W_SPENT(cand);
                if (!spent) hy_trace_cand(trace, u, i, cand, tt);
                if (kscreen(sq_e, sq_b, cand, p, d, h16) + bu > thr && !spent) {
                    t = tt;
                    j = cand;
                    break;
                }
            }
        else
            for (uint32_t tt = 2; tt <= warp; tt++) {
                HY_W_NEXT();
                if (kscreen(sq_e, sq_b, cand, p, d, h16) + bu > thr && !HY_W_SPENT(cand)) {
                    t = tt;
                    j = cand;
                    break;
                }
            }
#undef HY_W_NEXT
        if (t) { /* the violator's rows on their way while the positive's gradient is added */
            kprefetch(&T, 1, j, d);
            kprefetch_list(&T, 1, j);
        } else if (l2s > 0) kcompose(&T, 1, j, q1, NULL, NULL, NULL, d, false); /* none: the negative's, for L2 */
        const double lw = !t ? 0.0 : t <= w->lw_have && w->lw_n == N ? w->lw[t] : warp_lw(w, N, t); /* kept */
        const float gi = (float)(wt * -lw * invB), gj = (float)(wt * lw * invB), l2f = (float)(2.0 * l2s);
        if (!t) { /* l 0 */
            L += wt * 0.0 * invB;
            if (l2s > 0)
                L += l2s * (fast ? (double)ksumsq(p, d) + (double)ksumsq(q0, d) + (double)ksumsq(q1, d)
                                 : hy_sumsq(p, d) + hy_sumsq(q0, d) + hy_sumsq(q1, d));
            if (gi == 0.0f && gj == 0.0f && l2f == 0.0f) { /* a zero gradient: the rows, no arithmetic */
                if (!zero_unmarked) kgrow_zero(&T, u, i, j, true, d);
                continue;
            }
        }
        const float gij = gi + gj;
        const v8f vgi = v8_splat(gi), vgj = v8_splat(gj), vl2 = v8_splat(l2f);
        for (size_t k = 0; k < d; k += 8) { /* the positive's side: gi p + 2 l2s q0 */
            const v8f qv = v8_load(q0 + k);
            const v8f t1 = vgi * v8_load(p + k), t2 = vl2 * qv;
            v8_store(ci + k, t1 + t2);
        }
        kscatter(&T, 1, i, ci, 0.0f, gi, d, false);
        if (t) {
            const float bc = kcompose(&T, 1, j, q1, NULL, p, &dot, d, false);
            const float sj = dot + (bu + bc);
            const double l = lw * (1.0 - (double)si + (double)sj);
            L += wt * l * invB;
            if (l2s > 0)
                L += l2s * (fast ? (double)ksumsq(p, d) + (double)ksumsq(q0, d) + (double)ksumsq(q1, d)
                                 : hy_sumsq(p, d) + hy_sumsq(q0, d) + hy_sumsq(q1, d));
        }
        for (size_t k = 0; k < d; k += 8) { /* the violator's: gj p + 2 l2s q1 */
            const v8f qv = v8_load(q1 + k);
            const v8f t1 = vgj * v8_load(p + k), t2 = vl2 * qv;
            v8_store(ci + k, t1 + t2);
        }
        kscatter(&T, 1, j, ci, 0.0f, gj, d, false);
        for (size_t k = 0; k < d; k += 8) { /* the user's: gi q0 + gj q1 + 2 l2s p */
            const v8f pv = v8_load(p + k);
            v8f cuv = vgi * v8_load(q0 + k);
            const v8f t1 = vgj * v8_load(q1 + k);
            cuv = cuv + t1;
            const v8f t2 = vl2 * pv;
            v8_store(cu + k, cuv + t2);
        }
        kscatter(&T, 0, u, cu, 0.0f, gij, d, false);
    }
    ktab_done(&T, w);
    return L;
#undef HY_W_DRAWS
}

__attribute__((target("avx2,fma,f16c"))) HY_CONTRACT __attribute__((noinline)) static double
hy_kernel_avx_warp(const fr_model *m, hy_ws *w, const fr_batch *b, fr_grad *g) {
    return hy_warp_body(m, w, b, g, true);
}

#if HY_F16C
/* hy_warp_body in sixteen-float AVX-512 registers (a dim-32 row in two), where the CPU has
 * AVX-512F: half the vector instructions a row (a composed vector, a screen, a scatter); the
 * same candidates, trials and rules, only the lanes' sums in another order (a dot product over
 * sixteen lanes, then the register's sum), so its bits are its own. hy_loss takes it where
 * hy_warp_applies and the CPU has AVX-512F (tests hold it to hy_kernel_body). */
#define HY_T512 __attribute__((target("avx512f,avx512vl,avx2,fma,f16c")))
typedef struct hy_r32 { __m512 a, b; } hy_r32; /* a dim-32 row */
#define HY_W_ROWS 2 /* the id rows and feature lists asked for HY_W_ROWS examples ahead */
#define HY_W_UNROLL 3 /* a packed row's features added without a test (at most HY_PK) */

HY_T512 static FRI_ALWAYS_INLINE float h5_sum(__m512 v) { return _mm512_reduce_add_ps(v); }

/* row r of side s composed (its id row plus w-weighted feature rows); returns the bias */
HY_T512 static FRI_ALWAYS_INLINE float h5_compose(const hy_tab *T, int s, uint32_t r, hy_r32 *o) {
    const uint32_t *id = NULL;
    const float *w = NULL;
    const uint32_t n = kfeats(T, s, r, &id, &w);
    const float *e = T->E[s] + (size_t)r * 32, *F = T->F[s], *FB = T->FB[s];
    float b = T->B[s][r];
    __m512 a = _mm512_loadu_ps(e), c = _mm512_loadu_ps(e + 16);
    /* a packed row's first HY_W_UNROLL features without a test (past n its slots are feature 0
     * of weight 0: adds of zeros), so that the loop's exit, at a count that varies from row to
     * row, is mispredicted less often */
    const uint32_t j0 = T->pk[s] && n ? HY_W_UNROLL : 0;
    for (uint32_t j = 0; j < j0; j++) {
        const float *v = F + (size_t)id[j] * 32;
        b += w[j] * FB[id[j]];
        const __m512 x = _mm512_set1_ps(w[j]);
        a = _mm512_fmadd_ps(x, _mm512_loadu_ps(v), a);
        c = _mm512_fmadd_ps(x, _mm512_loadu_ps(v + 16), c);
    }
    for (uint32_t j = j0; j < n; j++) {
        const float *v = F + (size_t)id[j] * 32;
        b += w[j] * FB[id[j]];
        const __m512 x = _mm512_set1_ps(w[j]);
        a = _mm512_fmadd_ps(x, _mm512_loadu_ps(v), a);
        c = _mm512_fmadd_ps(x, _mm512_loadu_ps(v + 16), c);
    }
    o->a = a;
    o->b = c;
    return b;
}

HY_T512 static FRI_ALWAYS_INLINE float h5_dot(const hy_r32 *p, const hy_r32 *q) {
    return h5_sum(_mm512_fmadd_ps(p->b, q->b, _mm512_mul_ps(p->a, q->a)));
}

/* the screening score of item row r for user vector p (kscreen's) */
HY_T512 static FRI_ALWAYS_INLINE float h5_screen(const uint16_t *sq_e, const float *sq_b, uint32_t r, const hy_r32 *p) {
    const uint16_t *q = sq_e + (size_t)r * 32;
    const __m512 qa = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)q));
    const __m512 qb = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(q + 16)));
    return h5_sum(_mm512_fmadd_ps(p->b, qb, _mm512_mul_ps(p->a, qa))) + sq_b[r];
}

/* h5_screen of two rows r0, r1 at once (their lanes' sums in one tree of shuffles) */
HY_T512 static FRI_ALWAYS_INLINE void h5_screen2(const uint16_t *sq_e, const float *sq_b, uint32_t r0, uint32_t r1,
                                                const hy_r32 *p, float *s0, float *s1) {
    const uint16_t *q = sq_e + (size_t)r0 * 32, *v = sq_e + (size_t)r1 * 32;
    const __m512 x = _mm512_fmadd_ps(p->b, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(q + 16))),
                                     _mm512_mul_ps(p->a, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)q))));
    const __m512 y = _mm512_fmadd_ps(p->b, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(v + 16))),
                                     _mm512_mul_ps(p->a, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)v))));
    /* [x lo, y lo] + [x hi, y hi]: x's eight sums in lanes 0-7, y's in 8-15; then halved three times */
    __m512 t = _mm512_add_ps(_mm512_shuffle_f32x4(x, y, 0x44), _mm512_shuffle_f32x4(x, y, 0xEE));
    t = _mm512_add_ps(t, _mm512_shuffle_f32x4(t, t, 0xB1));
    t = _mm512_add_ps(t, _mm512_permute_ps(t, 0x4E));
    t = _mm512_add_ps(t, _mm512_permute_ps(t, 0xB1));
    *s0 = _mm512_cvtss_f32(t) + sq_b[r0];
    *s1 = _mm512_cvtss_f32(_mm512_shuffle_f32x4(t, t, 0x02)) + sq_b[r1];
}

/* kscatter (lightfm: no self term) of coef to row r of side s and its features; db the biases' */
HY_T512 static FRI_ALWAYS_INLINE void h5_scatter(hy_tab *T, int s, uint32_t r, const hy_r32 *coef, float db,
                                                float *sink) {
    const uint32_t *id = NULL;
    const float *w = NULL;
    const uint32_t n = kfeats(T, s, r, &id, &w);
    float *gbr;
    bool fresh;
    float *ge = kgrow(T, s, r, 32, &gbr, &fresh);
    if (fresh) {
        _mm512_storeu_ps(ge, coef->a);
        _mm512_storeu_ps(ge + 16, coef->b);
        *gbr = db;
    } else {
        _mm512_storeu_ps(ge, _mm512_add_ps(_mm512_loadu_ps(ge), coef->a));
        _mm512_storeu_ps(ge + 16, _mm512_add_ps(_mm512_loadu_ps(ge + 16), coef->b));
        *gbr += db;
    }
    float *gF = T->gF[s], *gFB = T->gFB[s];
    /* as h5_compose, the first HY_W_UNROLL without a test: a slot past n adds its zeros to
     * sink (33 floats, zero: they stay zero) */
    const uint32_t j0 = T->pk[s] && n ? HY_W_UNROLL : 0;
    for (uint32_t j = 0; j < j0; j++) {
        const float x = w[j];
        const __m512 vx = _mm512_set1_ps(x);
        float *gr = j < n ? gF + (size_t)id[j] * 32 : sink, *gb = j < n ? gFB + id[j] : sink + 32;
        _mm512_storeu_ps(gr, _mm512_fmadd_ps(vx, coef->a, _mm512_loadu_ps(gr)));
        _mm512_storeu_ps(gr + 16, _mm512_fmadd_ps(vx, coef->b, _mm512_loadu_ps(gr + 16)));
        *gb += x * db;
    }
    for (uint32_t j = j0; j < n; j++) {
        const float x = w[j];
        const __m512 vx = _mm512_set1_ps(x);
        float *gr = gF + (size_t)id[j] * 32;
        _mm512_storeu_ps(gr, _mm512_fmadd_ps(vx, coef->a, _mm512_loadu_ps(gr)));
        _mm512_storeu_ps(gr + 16, _mm512_fmadd_ps(vx, coef->b, _mm512_loadu_ps(gr + 16)));
        gFB[id[j]] += x * db;
    }
}

HY_T512 static FRI_ALWAYS_INLINE float h5_sumsq(const hy_r32 *v) {
    return h5_sum(_mm512_fmadd_ps(v->b, v->b, _mm512_mul_ps(v->a, v->a)));
}

HY_T512 HY_CONTRACT __attribute__((noinline)) static double
hy_kernel_avx512_warp(const fr_model *m, hy_ws *w, const fr_batch *b, fr_grad *g) {
    const size_t d = 32;
    const fr_model_config *c = &m->cfg;
    const fri_feat *f = feat_of(c->features);
    const size_t B = b->n;
    const double invB = 1.0 / (double)B, l2s = (double)c->l2 * invB;
    const uint32_t N = m->catalogue ? m->catalogue : c->n_items;
    const uint32_t nrows = c->n_items ? c->n_items : 1;
    const uint32_t warp = c->warp;
    const uint32_t *const users = b->users, *const items = b->items;
    const float *const weight = b->weight;
    const uint16_t *const sq_e = w->sq_e;
    const float *const sq_b = w->sq_b;
    const bool zero_unmarked = w->zero_unmarked;
    const uint64_t oseed = c->seed + w->draw_key * 0x9E3779B97F4A7C15u;
    const uint64_t *const pos = w->pos;
    const size_t pw = w->pos_words;
    uint32_t *const trace = hy_cand_trace; /* tests (fri_hybrid_cand_trace) */
    hy_tab T;
    ktab_init(&T, m, f, g, w, false); /* the centralized model: global ids */
    const bool offs = !T.pk[0] || !T.pk[1];
    double L = 0.0;
    float sink[33] = {0}; /* (h5_scatter) */
#define HY_W_DRAWS()                                                                                                    \
    for (uint32_t k = 0; k < HY_W_AHEAD; k++) {                                                                         \
        ring_next[k] = hy_draws_below(&hd_next, nrows);                                                                 \
        kprefetch_q(sq_e, sq_b, ring_next[k], d);                                                                       \
    }
    hy_draws hd_next = {0};
    uint32_t first_next = 0, ring_next[HY_W_AHEAD] = {0};
    for (size_t x = 1; x < HY_W_ROWS && x < B; x++) {
        kprefetch(&T, 0, users[x], d);
        kprefetch(&T, 1, items[x], d);
        kprefetch_list(&T, 0, users[x]);
        kprefetch_list(&T, 1, items[x]);
    }
    if (B) {
        if (B > 1) kprefetch_bits(pos + (size_t)users[1] * pw, pw);
        hd_next = HY_W_INIT(0);
        HY_W_FIRST(0);
        kprefetch_q(sq_e, sq_b, first_next, d);
        HY_W_DRAWS();
    }
    for (size_t x = 0; x < B; x++) {
        const uint32_t u = users[x], i = items[x];
        const double wt = weight ? (double)weight[x] : 1.0;
        hy_draws hd = hd_next;
        const uint32_t neg = first_next;
        uint32_t ring[HY_W_AHEAD];
        memcpy(ring, ring_next, sizeof ring);
        if ((x & 15) == 0) {
            __builtin_prefetch((const void *)((uintptr_t)users + (x + 32) * sizeof *users), 0, 3);
            __builtin_prefetch((const void *)((uintptr_t)items + (x + 32) * sizeof *items), 0, 3);
        }
        if (x + 1 < B) {
            if (x + 2 < B) kprefetch_bits(pos + (size_t)users[x + 2] * pw, pw);
            hd_next = HY_W_INIT(x + 1);
            HY_W_FIRST(x + 1);
            kprefetch_q(sq_e, sq_b, first_next, d);
            HY_W_DRAWS();
            if (!T.cg[0]) {
                kprefetch_g(&T, 0, users[x + 1], d);
                kprefetch_g(&T, 1, items[x + 1], d);
            }
        }
        if (x + HY_W_ROWS < B) { /* the id rows and lists of the example HY_W_ROWS ahead */
            kprefetch(&T, 0, users[x + HY_W_ROWS], d);
            kprefetch(&T, 1, items[x + HY_W_ROWS], d);
            kprefetch_list(&T, 0, users[x + HY_W_ROWS]);
            kprefetch_list(&T, 1, items[x + HY_W_ROWS]);
        }
        if (offs && x + 2 < B) {
            kprefetch_off(&T, 0, users[x + 2]);
            kprefetch_off(&T, 1, items[x + 2]);
        }
        hy_r32 p, q0, q1 = {_mm512_setzero_ps(), _mm512_setzero_ps()};
        const float bu = h5_compose(&T, 0, u, &p);
        const float bi = h5_compose(&T, 1, i, &q0);
        const float si = h5_dot(&p, &q0) + (bu + bi);
        const uint64_t *const urow = pos + (size_t)u * pw;
        const float thr = si - 1.0f;
        uint32_t t = 0, j = neg;
#define HY_W_NEXT()                                                                                                     \
    const uint32_t cand = ring[(tt - 2) % HY_W_AHEAD];                                                                  \
    ring[(tt - 2) % HY_W_AHEAD] = hy_draws_below(&hd, nrows);                                                           \
    kprefetch_q(sq_e, sq_b, ring[(tt - 2) % HY_W_AHEAD], d)
        if (trace) hy_trace_cand(trace, u, i, neg, 1);
        if (h5_screen(sq_e, sq_b, neg, &p) + bu > thr) t = 1;
        else if (trace)
            for (uint32_t tt = 2; tt <= warp; tt++) {
                HY_W_NEXT();
                const bool spent = HY_W_SPENT(cand);
                if (!spent) hy_trace_cand(trace, u, i, cand, tt);
                if (h5_screen(sq_e, sq_b, cand, &p) + bu > thr && !spent) {
                    t = tt;
                    j = cand;
                    break;
                }
            }
        else /* two trials a turn: their screens summed together, then taken in trial order */
            for (uint32_t tt = 2; tt <= warp; tt += 2) {
                const uint32_t c0 = ring[0], c1 = ring[1];
                ring[0] = hy_draws_below(&hd, nrows); /* trials tt + 2, tt + 3 (past the last: unused) */
                kprefetch_q(sq_e, sq_b, ring[0], d);
                ring[1] = hy_draws_below(&hd, nrows);
                kprefetch_q(sq_e, sq_b, ring[1], d);
                float s0, s1;
                h5_screen2(sq_e, sq_b, c0, c1, &p, &s0, &s1);
                if (s0 + bu > thr && !HY_W_SPENT(c0)) {
                    t = tt;
                    j = c0;
                    break;
                }
                if (tt < warp && s1 + bu > thr && !HY_W_SPENT(c1)) {
                    t = tt + 1;
                    j = c1;
                    break;
                }
            }
#undef HY_W_NEXT
        if (t) {
            kprefetch(&T, 1, j, d);
            kprefetch_list(&T, 1, j);
        } else if (l2s > 0) (void)h5_compose(&T, 1, j, &q1); /* none: the negative's, for L2 */
        const double lw = !t ? 0.0 : t <= w->lw_have && w->lw_n == N ? w->lw[t] : warp_lw(w, N, t);
        const float gi = (float)(wt * -lw * invB), gj = (float)(wt * lw * invB), l2f = (float)(2.0 * l2s);
        if (!t) {
            L += wt * 0.0 * invB;
            if (l2s > 0) L += l2s * ((double)h5_sumsq(&p) + (double)h5_sumsq(&q0) + (double)h5_sumsq(&q1));
            if (gi == 0.0f && gj == 0.0f && l2f == 0.0f) {
                if (!zero_unmarked) kgrow_zero(&T, u, i, j, true, d);
                continue;
            }
        }
        const float gij = gi + gj;
        const __m512 vgi = _mm512_set1_ps(gi), vgj = _mm512_set1_ps(gj), vl2 = _mm512_set1_ps(l2f);
        hy_r32 cf; /* the positive's side: gi p + 2 l2s q0 */
        cf.a = _mm512_fmadd_ps(vl2, q0.a, _mm512_mul_ps(vgi, p.a));
        cf.b = _mm512_fmadd_ps(vl2, q0.b, _mm512_mul_ps(vgi, p.b));
        h5_scatter(&T, 1, i, &cf, gi, sink);
        if (t) {
            const float bc = h5_compose(&T, 1, j, &q1);
            const float sj = h5_dot(&p, &q1) + (bu + bc);
            L += wt * (lw * (1.0 - (double)si + (double)sj)) * invB;
            if (l2s > 0) L += l2s * ((double)h5_sumsq(&p) + (double)h5_sumsq(&q0) + (double)h5_sumsq(&q1));
        }
        cf.a = _mm512_fmadd_ps(vl2, q1.a, _mm512_mul_ps(vgj, p.a)); /* the violator's: gj p + 2 l2s q1 */
        cf.b = _mm512_fmadd_ps(vl2, q1.b, _mm512_mul_ps(vgj, p.b));
        h5_scatter(&T, 1, j, &cf, gj, sink);
        cf.a = _mm512_fmadd_ps(vl2, p.a, _mm512_fmadd_ps(vgj, q1.a, _mm512_mul_ps(vgi, q0.a))); /* the user's */
        cf.b = _mm512_fmadd_ps(vl2, p.b, _mm512_fmadd_ps(vgj, q1.b, _mm512_mul_ps(vgi, q0.b)));
        h5_scatter(&T, 0, u, &cf, gij, sink);
    }
    ktab_done(&T, w);
    return L;
#undef HY_W_DRAWS
}

static bool hy_have_avx512(void) {
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl");
}
#endif /* HY_F16C */
#else
#define HY_AVX 0
#endif
#endif /* FRI_V8 */

#if defined(__x86_64__) || defined(__i386__)
/* the kernel's AVX2 copy fuses multiplies and adds (FMA); rows_pass's (AVX2 only) goes with it */
static bool hy_have_avx2_fma(void) {
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
}
#endif

static int hy_mode = 2; /* 0 the plain code, 1 the kernel's plain copy, 2 its AVX2 copy where the CPU has it */
static uint32_t hy_stale = HY_STALE; /* rows_pass, lightfm WARP: minibatches between refreshes of the screening
                                      * table (hy_ws.sq_e); 0 screens nothing (every candidate composed) */

static bool hy_splitmix = true; /* the fast path's WARP draws: hy_draws (false: the Philox stream, tests) */

static bool hy_compact = true; /* rows_pass's fast path: the compact gradient where it applies (false: tests) */
static atomic_ullong hy_compact_passes; /* rows_pass calls that took it (tests: that it ran) */

uint64_t fri_hybrid_compact_passes(void);
uint64_t fri_hybrid_compact_passes(void) { return atomic_load(&hy_compact_passes); }

bool fri_hybrid_compact(bool on);
bool fri_hybrid_compact(bool on) {
    bool was = hy_compact;
    hy_compact = on;
    return was;
}

bool fri_hybrid_splitmix(bool on);
bool fri_hybrid_splitmix(bool on) {
    bool was = hy_splitmix;
    hy_splitmix = on;
    return was;
}

/* Tests: count draws below n of `keys` sequences (keys a = 0.., b = 7 a) of `per` draws. */
void fri_hybrid_draws_count(uint64_t seed, uint32_t keys, uint32_t per, uint32_t n, uint64_t *count);
void fri_hybrid_draws_count(uint64_t seed, uint32_t keys, uint32_t per, uint32_t n, uint64_t *count) {
    for (uint32_t a = 0; a < keys; a++) {
        hy_draws h = hy_draws_init(seed, a, 7 * a);
        for (uint32_t k = 0; k < per; k++) count[hy_draws_below(&h, n)]++;
    }
}

/* Tests: the screening table's conversions, the software ones (the plain copies') and, where
 * the CPU has F16C, the hardware's (n values each; hw false when it has not). */
bool fri_hybrid_halves(const float *in, size_t n, uint16_t *sw, uint16_t *hw, float *back);
bool fri_hybrid_halves(const float *in, size_t n, uint16_t *sw, uint16_t *hw, float *back) {
    for (size_t k = 0; k < n; k++) {
        sw[k] = hy_f2h(in[k]);
        back[k] = hy_h2f(sw[k]);
    }
#if HY_F16C
    if (__builtin_cpu_supports("f16c")) {
        for (size_t k = 0; k + 8 <= n; k += 8) halves_hw(in + k, hw + k);
        for (size_t k = n - n % 8; k < n; k++) hw[k] = sw[k];
        return true;
    }
#endif
    return false;
}

uint32_t fri_hybrid_stale(uint32_t every);
uint32_t fri_hybrid_stale(uint32_t every) {
    uint32_t was = hy_stale;
    hy_stale = every;
    return was;
}

int fri_hybrid_kernel(int mode);
int fri_hybrid_kernel(int mode) {
    int was = hy_mode;
    hy_mode = mode;
#if FRI_V8 && HY_AVX
    if (was == 2 && !hy_have_avx2_fma()) was = 1;
#endif
#if !FRI_V8
    was = 0;
#endif
    return was;
}

static atomic_ullong hy_warp_calls[2]; /* hy_kernel_avx_warp's, hy_kernel_avx512_warp's calls (tests: that they ran) */

uint64_t fri_hybrid_warp_calls(int avx512);
uint64_t fri_hybrid_warp_calls(int avx512) { return atomic_load(&hy_warp_calls[avx512 ? 1 : 0]); }

static bool hy_warp512 = true; /* hy_kernel_avx512_warp where the CPU has AVX-512F (false: tests, the AVX2 copy) */

bool fri_hybrid_warp512(bool on);
bool fri_hybrid_warp512(bool on) {
    bool was = hy_warp512;
    hy_warp512 = on;
    return was;
}

static bool hy_warp_kernel = true; /* hy_kernel_avx_warp where it applies (false: tests, hy_kernel_body) */

bool fri_hybrid_warp_kernel(bool on);
bool fri_hybrid_warp_kernel(bool on) {
    bool was = hy_warp_kernel;
    hy_warp_kernel = on;
    return was;
}

/* hy_kernel_avx_warp's case: lightfm WARP at dim 32 on rows_pass's fast path drawing its own first
 * candidates (hy_kernel_body's `own`: screened, splitmix draws, no negatives given, the users'
 * bits), the centralized model's rows, a gradient to add to */
#if FRI_V8 && HY_AVX
static bool hy_warp_applies(const fr_model *m, const hy_ws *w, const fr_batch *b, const fr_grad *g) {
    const fr_model_config *c = &m->cfg;
    return hy_warp_kernel && g && c->dim == 32 && c->loss == FR_LOSS_BPR && c->warp && w->sq_e && w->splitmix &&
           !b->neg && w->pos && !m->row_item && !m->row_user && !is_fm(c);
}
#endif

static double hy_loss(const fr_model *m, hy_ws *w, const fr_batch *b, fr_grad *g) {
#if FRI_V8
    if (hy_mode && m->cfg.dim % 8 == 0) {
#if HY_AVX
        if (hy_mode == 2 && hy_have_avx2_fma()) {
            if (!hy_warp_applies(m, w, b, g)) return hy_kernel_avx(m, w, b, g);
#if HY_F16C
            if (hy_warp512 && hy_have_avx512()) {
                atomic_fetch_add_explicit(&hy_warp_calls[1], 1, memory_order_relaxed);
                return hy_kernel_avx512_warp(m, w, b, g);
            }
#endif
            atomic_fetch_add_explicit(&hy_warp_calls[0], 1, memory_order_relaxed);
            return hy_kernel_avx_warp(m, w, b, g);
        }
#endif
        return hy_kernel_plain(m, w, b, g);
    }
#endif
    return hy_loss_naive(m, w, b, g);
}

static fr_err loss_grad(const fr_model *m, void *ws, const fr_batch *b, fr_grad *g, double *loss) {
    *loss = hy_loss(m, ws, b, g);
    return FR_OK;
}

/* Plain SGD on the rows of g's table t that the example touched: p -= lr * g, then g = 0
 * (the generic step's floats: g + 0 * p is g for a finite p). */
static void step_row(fr_model *m, fr_grad *g, int role, uint32_t r, float lr) {
    const fr_tensor *t = &m->t[m->slot[role]];
    float *p = m->params + t->offset + (size_t)r * t->cols, *gr = g->g + t->offset + (size_t)r * t->cols;
    for (uint32_t k = 0; k < t->cols; k++) {
        p[k] -= lr * gr[k];
        gr[k] = 0.0f;
    }
}

/* The feature rows of the id rows of table `emb` that g touched (their lists). */
static void step_feats(fr_model *m, fr_grad *g, const fri_feat *f, int side, int emb, int femb, int fbias, float lr) {
    const fr_rowset *rs = &g->rows[m->slot[emb]];
    for (uint32_t x = 0; x < rs->count; x++) {
        const uint32_t *id = NULL;
        const float *w = NULL;
        uint32_t r = rs->rows[x], n = feats(f, side, side ? gitem(m, r) : guser(m, r), &id, &w);
        for (uint32_t j = 0; j < n; j++) {
            step_row(m, g, femb, id[j], lr);
            step_row(m, g, fbias, id[j], lr);
        }
    }
}

/* The fused per-example SGD pass (family.h): each example is hy_loss on a batch of one
 * into a gradient, and the rows it touched (id rows, their features' rows, fm's bias)
 * step p -= lr * g and are zeroed. Rows it did not touch have g = 0, which the generic
 * step leaves bit for bit unchanged, so this is the generic loop's result at batch 1. */
static fr_err sgd_pass(fr_model *m, const fri_examples *ex, float lr, double *loss_sum) {
    fr_grad *g = NULL;
    fr_err e = fr_grad_create(&g, m);
    if (e) return e;
    size_t nf = ws_carve(NULL, NULL, &m->cfg, 1);
    float *arena = fri_aligned_alloc(nf * sizeof(float));
    if (!arena) { fr_grad_free(g); return FR_ERR_NOMEM; }
    memset(arena, 0, nf * sizeof(float));
    hy_ws w;
    ws_carve(&w, arena, &m->cfg, 1);
    w.zero_unmarked = true; /* p - lr * 0 is p */
    const fri_feat *f = feat_of(m->cfg.features);
    const bool pair = m->cfg.loss == FR_LOSS_BPR, fm = is_fm(&m->cfg);
    const int tables[4] = {IT_EMB, IT_B, US_EMB, US_B};
    for (size_t k = 0; k < ex->n; k++) {
        fr_batch b = {&ex->user[k], &ex->item[k], pair ? NULL : &ex->label[k], pair ? &ex->neg[k] : NULL, 1,
                      ex->alpha > 0 ? &ex->wt[k] : NULL};
        *loss_sum += hy_loss(m, &w, &b, g);
        step_feats(m, g, f, 1, IT_EMB, IF_EMB, IF_B, lr);
        step_feats(m, g, f, 0, US_EMB, UF_EMB, UF_B, lr);
        for (int t = 0; t < 4; t++) {
            fr_rowset *rs = &g->rows[m->slot[tables[t]]];
            for (uint32_t x = 0; x < rs->count; x++) step_row(m, g, tables[t], rs->rows[x], lr);
            fr_rowset_clear(rs);
        }
        if (fm) step_row(m, g, W0, 0, lr);
    }
    fri_free_aligned(arena);
    fr_grad_free(g);
    return FR_OK;
}

/* ---------------------------------------------------------------- fused minibatch pass */

/* rows_pass (family.h): the centralized trainer's minibatch step with a sparse-row
 * optimizer, over the rows a minibatch touched only. The generic loop combines and steps
 * the feature tables whole (dense tensors: any client may touch any row) and zeroes them
 * whole, every minibatch; here a minibatch's feature rows are those of the id rows its
 * shards touched (scatter adds to exactly these), and the float operations on them are
 * the generic ones: fr_grad_combine's (a d, then + b s, on table rows; a d + b s on dense
 * rows) and fr_optim_step's, whose rule leaves a row of zero gradient as it is. */

typedef struct touched {
    uint32_t *rows;  /* [vocab] feature rows touched this minibatch */
    uint32_t n;      /* in rows */
    uint32_t *stamp; /* [vocab] the minibatch (counted from 1) that last touched the row */
} touched;

/* Adds to t the features of the id rows in ids (side 0 user, 1 item). */
static FRI_ALWAYS_INLINE void touch_feats(touched *t, const fri_feat *f, const fr_model *m, int side, const fr_rowset *ids,
                        uint32_t stamp) {
    for (uint32_t x = 0; x < ids->count; x++) {
        const uint32_t *id = NULL;
        const float *w = NULL;
        uint32_t r = ids->rows[x], n = feats(f, side, side ? gitem(m, r) : guser(m, r), &id, &w);
        for (uint32_t j = 0; j < n; j++) { /* without a branch: whether a row is new is a coin toss */
            const uint32_t v = id[j], fresh = t->stamp[v] != stamp;
            t->stamp[v] = stamp;
            t->rows[t->n] = v;
            t->n += fresh;
        }
    }
}

static FRI_ALWAYS_INLINE void zero_row(float *d, size_t cols) {
    if (cols == 1) d[0] = 0.0f;
    else memset(d, 0, cols * sizeof *d);
}

/* fr_grad_combine on table `role`: g0's rows d = a d (a != 1), then d += b s on src's
 * rows; src's rows are zeroed and its set cleared (read once, here). */
static FRI_ALWAYS_INLINE void combine_table(fr_grad *g0, float a, fr_grad *src, float b, const fr_model *m, int role) {
    const int ti = m->slot[role];
    const fr_tensor *t = &m->t[ti];
    fr_rowset *rd = &g0->rows[ti], *rs = &src->rows[ti];
    float *d = g0->g + t->offset, *sv = src->g + t->offset;
    const size_t cols = t->cols;
    if (a != 1.0f)
        for (uint32_t r = 0; r < rd->count; r++)
            for (size_t c = 0; c < cols; c++) d[(size_t)rd->rows[r] * cols + c] *= a;
    for (uint32_t r = 0; r < rs->count; r++) {
        size_t o = (size_t)rs->rows[r] * cols;
        for (size_t c = 0; c < cols; c++) d[o + c] += b * sv[o + c];
        zero_row(sv + o, cols);
        fr_rowset_add(rd, rs->rows[r]);
    }
    fr_rowset_clear(rs);
}

/* fr_grad_combine on dense tensor `role`, rows `rows` (the others are 0 in both); src's
 * rows are zeroed. */
static FRI_ALWAYS_INLINE void combine_dense(fr_grad *g0, float a, fr_grad *src, float b, const fr_model *m, int role,
                          const uint32_t *rows, uint32_t n) {
    const fr_tensor *t = &m->t[m->slot[role]];
    float *d = g0->g + t->offset, *sv = src->g + t->offset;
    const size_t cols = t->cols;
    for (uint32_t r = 0; r < n; r++) {
        size_t o = (size_t)rows[r] * cols;
        for (size_t c = 0; c < cols; c++) d[o + c] = a * d[o + c] + b * sv[o + c];
        zero_row(sv + o, cols);
    }
}

/* fr_optim_step on rows `rows` of tensor `role` (the current step's constants), then
 * their gradient zeroed. */
static FRI_ALWAYS_INLINE void step_rows(fr_optim *o, fr_model *m, fr_grad *g, int role, const uint32_t *rows, uint32_t n,
                                        bool fast) {
    const fr_tensor *t = &m->t[m->slot[role]];
    if (fast) (void)fri_optim_step_rows_clear_fast(o, m, g->g, t->offset, t->cols, rows, n);
    else fri_optim_step_rows_clear(o, m, g->g, t->offset, t->cols, rows, n);
}

/* The screening table's row r (hy_ws.sq_e, sq_b): the id row and bias (E, EB: the item
 * tables) plus the feature part kept in ge, gb (the sums kscreen took of them before it
 * read one row). */
static FRI_ALWAYS_INLINE void screen_row(const float *restrict E, const float *restrict EB, const float *restrict ge,
                                         const float *restrict gb, uint16_t *restrict se, float *restrict sb, uint32_t r,
                                         size_t d, bool h16) {
    const float *e = E + (size_t)r * d, *g = ge + (size_t)r * d;
    uint16_t *o = se + (size_t)r * d;
#if FRI_V8
    if (d == 32) /* the preset's dim, unrolled */
        for (size_t k = 0; k < 32; k += 8) kh8_store(o + k, v8_load(e + k) + v8_load(g + k), h16);
    else
        for (size_t k = 0; k < d; k += 8) kh8_store(o + k, v8_load(e + k) + v8_load(g + k), h16);
#else
    (void)h16;
    for (size_t k = 0; k < d; k++) o[k] = hy_f2h(e[k] + g[k]);
#endif
    sb[r] = EB[r] + gb[r];
}

/* screen_row on rows rows[0..n) */
static FRI_ALWAYS_INLINE void screen_rows(const fr_model *m, const float *restrict ge, const float *restrict gb,
                                          uint16_t *restrict se, float *restrict sb, const uint32_t *rows, uint32_t n,
                                          size_t d, bool h16) {
    const float *E = P(m, IT_EMB), *EB = P(m, IT_B);
    if (d == 32)
        for (uint32_t x = 0; x < n; x++) screen_row(E, EB, ge, gb, se, sb, rows[x], 32, h16);
    else
        for (uint32_t x = 0; x < n; x++) screen_row(E, EB, ge, gb, se, sb, rows[x], d, h16);
}

/* The screening table's feature part: each item row's sum_g w_g F_g and sum_g w_g cf_g, from
 * the current feature rows; then every row of the table (screen_row). */
static FRI_ALWAYS_INLINE void stale_refresh_d(const fr_model *m, const fri_feat *f, float *restrict ge,
                                              float *restrict gb, uint16_t *restrict se, float *restrict sb,
                                              uint32_t rows, size_t d, bool h16) {
    const float *F = P(m, IF_EMB), *FB = P(m, IF_B), *E = P(m, IT_EMB), *EB = P(m, IT_B);
    for (uint32_t r = 0; r < rows; r++) {
        const uint32_t *id = NULL;
        const float *w = NULL;
        const uint32_t n = feats(f, 1, gitem(m, r), &id, &w);
        float *o = ge + (size_t)r * d, b = 0.0f;
        memset(o, 0, d * sizeof *o);
        for (uint32_t j = 0; j < n; j++) {
            const float *v = F + (size_t)id[j] * d, x = w[j];
#if FRI_V8
            const v8f vx = v8_splat(x);
            for (size_t k = 0; k < d; k += 8) { /* d is a multiple of 8 here (the kernel's) */
                const v8f t = vx * v8_load(v + k);
                v8_store(o + k, v8_load(o + k) + t);
            }
#else
            for (size_t k = 0; k < d; k++) o[k] += x * v[k];
#endif
            b += x * FB[id[j]];
        }
        gb[r] = b;
        screen_row(E, EB, ge, gb, se, sb, r, d, h16);
    }
}

#if FRI_V8
/* stale_refresh_d at dim 32 where nothing reads the feature parts (ge) after it (the item rows'
 * steps keep the table by the mirror): each row's part summed in registers, not stored; the
 * same operations in the same order, so the same table (and gb, sb). */
static FRI_ALWAYS_INLINE void stale_refresh_32(const fr_model *m, const fri_feat *f, float *restrict gb,
                                               uint16_t *restrict se, float *restrict sb, uint32_t rows, bool h16) {
    const float *F = P(m, IF_EMB), *FB = P(m, IF_B), *E = P(m, IT_EMB), *EB = P(m, IT_B);
    for (uint32_t r = 0; r < rows; r++) {
        const uint32_t *id = NULL;
        const float *w = NULL;
        const uint32_t n = feats(f, 1, gitem(m, r), &id, &w);
        v8f o[4] = {{0}, {0}, {0}, {0}};
        float b = 0.0f;
        for (uint32_t j = 0; j < n; j++) {
            const float *v = F + (size_t)id[j] * 32;
            const v8f vx = v8_splat(w[j]);
            for (int k = 0; k < 4; k++) {
                const v8f t = vx * v8_load(v + 8 * k);
                o[k] = o[k] + t;
            }
            b += w[j] * FB[id[j]];
        }
        gb[r] = b;
        const float *e = E + (size_t)r * 32;
        for (int k = 0; k < 4; k++) kh8_store(se + (size_t)r * 32 + 8 * k, v8_load(e + 8 * k) + o[k], h16);
        sb[r] = EB[r] + b;
    }
}
#endif

/* (the preset's dim a constant: its row's loops unrolled; the same operations). keep_ge: the
 * feature parts stored in ge (something reads them after) */
static FRI_ALWAYS_INLINE void stale_refresh(const fr_model *m, const fri_feat *f, float *restrict ge,
                                            float *restrict gb, uint16_t *restrict se, float *restrict sb,
                                            uint32_t rows, size_t d, bool h16, bool keep_ge) {
#if FRI_V8
    if (d == 32 && !keep_ge) { stale_refresh_32(m, f, gb, se, sb, rows, h16); return; }
#endif
    (void)keep_ge;
    if (d == 32) stale_refresh_d(m, f, ge, gb, se, sb, rows, 32, h16);
    else stale_refresh_d(m, f, ge, gb, se, sb, rows, d, h16);
}

static FRI_ALWAYS_INLINE fr_err rows_pass_body(fr_model *m, const fri_examples *ex, size_t batch, uint32_t shards,
                                               fr_grad *const *g, fr_optim *o, double *loss_sum, bool h16) {
    const fr_model_config *c = &m->cfg;
    if (batch == 0 || shards == 0 || shards > FRI_STEP_MAX_PARTS) return FR_ERR_UNSUPPORTED;
    const fri_feat *f = feat_of(c->features);
    const bool pair = c->loss == FR_LOSS_BPR, fm = is_fm(c);
    const uint32_t nv[2] = {m->t[m->slot[UF_EMB]].rows, m->t[m->slot[IF_EMB]].rows};
    size_t nf = ws_carve(NULL, NULL, c, 1);
    float *arena = fri_aligned_alloc(nf * sizeof(float));
    touched tf[2] = {{0}, {0}};
    /* A small vocabulary (at most 4 rows an example of the minibatch) is stepped whole:
     * a minibatch touches most of its rows anyway, and a row of zero gradient is kept as
     * it is (fri_optim_zero_keeps: the same bits), so listing the touched ones
     * (touch_feats) costs more than it saves. */
    const bool all_feats[2] = {nv[0] <= 4 * batch, nv[1] <= 4 * batch};
    fr_err e = FR_OK;
    for (int s = 0; s < 2 && arena; s++) {
        tf[s].rows = fri_malloc((nv[s] + 1) * sizeof(uint32_t)); /* + 1: touch_feats writes one past */
        tf[s].stamp = fri_calloc(nv[s], sizeof(uint32_t));
        if (!tf[s].rows || !tf[s].stamp) e = FR_ERR_NOMEM;
        else if (all_feats[s])
            for (uint32_t v = 0; v < nv[s]; v++) tf[s].rows[v] = v;
    }
    /* lightfm WARP in the vector kernel: the screening table */
    const uint32_t n_it = m->t[m->slot[IT_EMB]].rows;
    const bool fast = hy_stale != 0; /* the approximate Adagrad (fri_optim_step_rows_clear_fast) */
    const bool stale = !fm && pair && c->warp && hy_stale && hy_mode && FRI_V8 && c->dim % 8 == 0;
    /* [n_it x dim] the feature parts, [n_it] their biases, [n_it] the table's biases; the
     * table's rows in halves (its own block: each row on its own line at dim 32) */
    float *ge = stale ? fri_aligned_alloc(((size_t)n_it * c->dim + 2 * (size_t)n_it) * sizeof(float)) : NULL;
    uint16_t *se = stale ? fri_aligned_alloc((size_t)n_it * c->dim * sizeof(uint16_t)) : NULL;
    float *const gb = ge ? ge + (size_t)n_it * c->dim : NULL, *const sb = ge ? gb + n_it : NULL;
    /* the compact gradient of the id tables (hy_ws.cg): the kernel's, one shard, the fast
     * Adagrad, every feature row stepped whole (no list of touched rows to build) */
    const bool compact = hy_compact && fast && shards == 1 && hy_mode && FRI_V8 && c->dim % 8 == 0 && all_feats[0] &&
                         all_feats[1] && fri_optim_fast_gather(o);
    const uint32_t nrow[2] = {m->t[m->slot[US_EMB]].rows, n_it};
    const size_t cap[2] = {batch, pair ? 2 * batch : batch};
    float *cgbuf = NULL;
    uint32_t *cslot = NULL;
    if (compact) {
        cgbuf = fri_aligned_alloc((cap[0] + cap[1]) * (c->dim + 1) * sizeof(float));
        cslot = fri_malloc(((size_t)nrow[0] + nrow[1] + cap[0] + cap[1]) * sizeof(uint32_t));
        if (!cgbuf || !cslot) e = FR_ERR_NOMEM;
    }
    if (!arena || (stale && (!ge || !se))) e = FR_ERR_NOMEM;
    if (e) goto out;
    memset(arena, 0, nf * sizeof(float));
    hy_ws w;
    ws_carve(&w, arena, c, 1);
    w.zero_unmarked = fri_optim_zero_keeps(o);
    w.fast = fast;
    if (stale) { w.sq_e = se; w.sq_b = sb; w.splitmix = hy_splitmix; }
    const bool own = ex->no_negs && pair; /* WARP's first candidates drawn by the kernel (rows_pass_draws) */
    if (own && !(stale && hy_splitmix)) {
        e = fri_fail(FR_ERR_INVALID, "%s: examples without negatives, but this pass does not draw them",
                     fr_model_kind_name(c->kind));
        goto out;
    }
    if (own && (!ex->pos || ex->pos_words < ((size_t)m->cfg.n_items + 63) / 64)) {
        e = fri_fail(FR_ERR_INVALID, "%s: examples without negatives and without the users' items to draw them from",
                     fr_model_kind_name(c->kind));
        goto out;
    }
    w.pos = own ? ex->pos : NULL;
    w.pos_words = ex->pos_words;
    if (compact) {
        atomic_fetch_add_explicit(&hy_compact_passes, 1, memory_order_relaxed);
        float *at = cgbuf;
        uint32_t *sl = cslot;
        for (int s = 0; s < 2; s++) {
            w.cg[s] = at;
            at += cap[s] * c->dim;
            w.cgb[s] = at;
            at += cap[s];
            w.slot[s] = sl;
            memset(sl, 0xff, nrow[s] * sizeof *sl); /* HY_NOSLOT */
            sl += nrow[s];
            w.crow[s] = sl;
            sl += cap[s];
        }
    }
    /* the feature parts (ge) are read after a refresh only where the item rows' steps do not keep
     * the table (fri_optim_step_gather2_mirror_fast: the compact gradient at dim 32 with F16C) */
    const bool keep_ge = !(compact && c->dim == 32 && h16);
    uint64_t mb = 0;
    const int tables[4] = {IT_EMB, IT_B, US_EMB, US_B};
    const int dense[4] = {IF_EMB, IF_B, UF_EMB, UF_B}; /* sides 1, 1, 0, 0 */
    const uint32_t zero = 0;
    uint32_t stamp = 0;
    for (size_t at = 0; at < ex->n; at += batch) {
        const size_t n = ex->n - at < batch ? ex->n - at : batch;
        double mean[FRI_STEP_MAX_PARTS];
        size_t ns[FRI_STEP_MAX_PARTS];
        if (stale && mb++ % hy_stale == 0) stale_refresh(m, f, ge, gb, se, sb, n_it, c->dim, h16, keep_ge);
        w.draw_key = fr_optim_steps(o); /* a key a minibatch, over every epoch */
        for (uint32_t s = 0; s < shards; s++) {
            size_t lo = n * s / shards, hi = n * (s + 1) / shards, k = at + lo;
            ns[s] = hi - lo;
            mean[s] = 0;
            if (hi == lo) continue;
            fr_batch b = {.users = ex->user + k, .items = ex->item + k, .label = pair ? NULL : ex->label + k,
                          .neg = pair && !own ? ex->neg + k : NULL, .n = hi - lo,
                          .weight = ex->alpha > 0 ? ex->wt + k : NULL};
            mean[s] = hy_loss(m, &w, &b, g[s]);
        }
        stamp++;
        for (int side = 0; side < 2; side++) {
            if (all_feats[side]) { tf[side].n = nv[side]; continue; }
            tf[side].n = 0;
            for (uint32_t s = 0; s < shards; s++)
                touch_feats(&tf[side], f, m, side, &g[s]->rows[m->slot[side ? IT_EMB : US_EMB]], stamp);
        }
        if (shards > 1) { /* combine_and_step's chain; the shards after the first left zero */
            float w0 = (float)((double)ns[0] / (double)n);
            bool first = true;
            for (uint32_t s = 1; s < shards; s++) {
                if (!ns[s]) continue;
                float a = first ? w0 : 1.0f, bs = (float)((double)ns[s] / (double)n);
                for (int k = 0; k < 4; k++) combine_table(g[0], a, g[s], bs, m, tables[k]);
                for (int k = 0; k < 4; k++) {
                    const touched *t = &tf[k < 2 ? 1 : 0];
                    combine_dense(g[0], a, g[s], bs, m, dense[k], t->rows, t->n);
                }
                if (fm) combine_dense(g[0], a, g[s], bs, m, W0, &zero, 1);
                first = false;
            }
        }
        if ((e = fri_optim_step_begin(o, m, g[0]))) goto out;
        if (compact) /* the id tables' rows from their slots; then no slot taken */
            for (int side = 1; side >= 0; side--) {
                const fr_tensor *te = &m->t[m->slot[side ? IT_EMB : US_EMB]], *tb = &m->t[m->slot[side ? IT_B : US_B]];
                const uint32_t *rl = w.crow[side], nr = w.ccount[side];
                /* the item rows' screening rows follow their steps (their changes added in
                 * halves: the table drifts from half(E + G) by a rounding a step until the
                 * next refresh), else are rewritten from E and the feature parts */
                if (!(side && stale &&
                      fri_optim_step_gather2_mirror_fast(o, m, te->offset, te->cols, tb->offset, rl, nr, w.cg[side],
                                                         w.cgb[side], se, sb))) {
                    fri_optim_step_gather2_fast(o, m, te->offset, te->cols, tb->offset, rl, nr, w.cg[side],
                                                w.cgb[side]);
                    if (side && stale) screen_rows(m, ge, gb, se, sb, rl, nr, c->dim, h16);
                }
                for (uint32_t x = 0; x < nr; x++) w.slot[side][rl[x]] = HY_NOSLOT;
                w.ccount[side] = 0;
            }
        for (int k = 0; k < 4; k++) { /* the step, and g[0] left zero */
            fr_rowset *rs = &g[0]->rows[m->slot[tables[k]]];
            step_rows(o, m, g[0], tables[k], rs->rows, rs->count, fast);
            if (stale && k == 1) /* the item rows moved (IT_EMB's rows are IT_B's): their table rows */
                screen_rows(m, ge, gb, se, sb, rs->rows, rs->count, c->dim, h16);
            fr_rowset_clear(rs);
            const touched *t = &tf[k < 2 ? 1 : 0];
            const fr_tensor *dt = &m->t[m->slot[dense[k]]];
            /* a vocabulary stepped whole: as one range (the same bits as its rows in order) */
            if (!(fast && all_feats[k < 2 ? 1 : 0] &&
                  fri_optim_step_range_clear_fast(o, m, g[0]->g, dt->offset, (size_t)dt->rows * dt->cols)))
                step_rows(o, m, g[0], dense[k], t->rows, t->n, fast);
        }
        if (fm) step_rows(o, m, g[0], W0, &zero, 1, fast);
        for (uint32_t s = 0; s < shards; s++) *loss_sum += mean[s] * (double)ns[s];
    }
out:
    fri_free_aligned(cgbuf);
    fri_free(cslot);
    for (int s = 0; s < 2; s++) { fri_free(tf[s].rows); fri_free(tf[s].stamp); }
    fri_free_aligned(arena);
    fri_free_aligned(ge);
    fri_free_aligned(se);
    return e;
}

/* rows_pass compiled twice, as the kernel: plain, and for AVX2 where the CPU has it (and
 * fri_hybrid_kernel's mode is 2). The combine's and the zeroing's loops are products and
 * sums of floats, one IEEE operation each whatever the vector width (no FMA: GCC's avx2
 * target does not contract to it), so both copies give the same bits (tests/test_hybrid.c:
 * rows_pass_equals_generic_loop in both modes). */
static fr_err rows_pass_plain(fr_model *m, const fri_examples *ex, size_t batch, uint32_t shards, fr_grad *const *g,
                              fr_optim *o, double *loss_sum) {
    return rows_pass_body(m, ex, batch, shards, g, o, loss_sum, false);
}

#if defined(__x86_64__) || defined(__i386__)
__attribute__((target("avx2,f16c"))) static fr_err rows_pass_avx(fr_model *m, const fri_examples *ex, size_t batch,
                                                            uint32_t shards, fr_grad *const *g, fr_optim *o,
                                                            double *loss_sum) {
    return rows_pass_body(m, ex, batch, shards, g, o, loss_sum, true);
}
#endif

static fr_err rows_pass(fr_model *m, const fri_examples *ex, size_t batch, uint32_t shards, fr_grad *const *g,
                        fr_optim *o, double *loss_sum) {
#if defined(__x86_64__) || defined(__i386__)
    if (hy_mode == 2 && hy_have_avx2_fma()) return rows_pass_avx(m, ex, batch, shards, g, o, loss_sum);
#endif
    return rows_pass_plain(m, ex, batch, shards, g, o, loss_sum);
}

/* rows_pass draws WARP's first candidates itself where it screens them by splitmix's draws
 * (lightfm, WARP, the kernel's dims, the fast path, the centralized model's rows). */
static bool rows_pass_draws(const fr_model *m) {
    const fr_model_config *c = &m->cfg;
    return !is_fm(c) && c->loss == FR_LOSS_BPR && c->warp && hy_stale && hy_mode && FRI_V8 && c->dim % 8 == 0 &&
           hy_splitmix && !m->row_item && !m->row_user;
}

static void score(const fr_model *m, void *wsp, const uint32_t *users, const uint32_t *items, size_t n, float *out) {
    hy_ws *w = wsp;
    const fri_feat *f = feat_of(m->cfg.features);
    const bool fm = is_fm(&m->cfg);
    const size_t d = m->cfg.dim;
    uint32_t last = UINT32_MAX;
    float bu = 0.0f;
    for (size_t x = 0; x < n; x++) {
        if (users[x] != last) { /* candidates of one user come together */
            bu = user_side(m, f, fm, users[x], w->p, w->sp);
            last = users[x];
        }
        float bi = item_side(m, f, fm, items[x], w->q[0], w->sq[0]);
        out[x] = pair_score(m, fm, w->p, w->sp, w->q[0], w->sq[0], bu + bi, d);
    }
}

/* Tests: FM's logit by the O(k n^2) double sum over the pair's feature positions, in
 * double: w0 + sum_j x_j c_j + sum_{j<l} x_j x_l <v_j, v_l>. */
double fri_hybrid_fm_naive(const fr_model *m, uint32_t user, uint32_t item);
double fri_hybrid_fm_naive(const fr_model *m, uint32_t user, uint32_t item) {
    const fr_model_config *c = &m->cfg;
    const fri_feat *f = feat_of(c->features);
    const size_t d = c->dim;
    const float *v[1024];
    double x[1024], lin = is_fm(c) ? P(m, W0)[0] : 0.0;
    size_t n = 0;
    const uint32_t *id;
    const float *w;
    v[n] = P(m, US_EMB) + (size_t)user * d; x[n++] = 1.0; lin += P(m, US_B)[user];
    uint32_t k = feats(f, 0, guser(m, user), &id, &w);
    for (uint32_t j = 0; j < k && n < 1024; j++) { v[n] = P(m, UF_EMB) + (size_t)id[j] * d; x[n++] = w[j]; lin += w[j] * P(m, UF_B)[id[j]]; }
    v[n] = P(m, IT_EMB) + (size_t)item * d; x[n++] = 1.0; lin += P(m, IT_B)[item];
    k = feats(f, 1, gitem(m, item), &id, &w);
    for (uint32_t j = 0; j < k && n < 1024; j++) { v[n] = P(m, IF_EMB) + (size_t)id[j] * d; x[n++] = w[j]; lin += w[j] * P(m, IF_B)[id[j]]; }
    double s = lin;
    for (size_t a = 0; a < n; a++)
        for (size_t b2 = a + 1; b2 < n; b2++) {
            double dot = 0.0;
            for (size_t t = 0; t < d; t++) dot += (double)v[a][t] * v[b2][t];
            s += x[a] * x[b2] * dot;
        }
    return s;
}

static const fri_model_kind_def kinds[] = {
    {"lightfm", false, false},
    {"fm", false, false},
};

const fri_model_family fri_model_family_hybrid = {
    .name = "hybrid (side features)",
    .kinds = kinds,
    .n_kinds = 2,
    .init_std = 0.01f,
    .side_features = true,
    .config_default = config_default,
    .config_check = config_check,
    .params_put = params_put,
    .params_get = params_get,
    .layout = layout,
    .ws_size = sizeof(hy_ws),
    .ws_carve = ws_carve,
    .ws_fits = ws_fits,
    .loss_grad = loss_grad,
    .score = score,
    .sgd_pass = sgd_pass,
    .rows_pass = rows_pass,
    .rows_pass_draws = rows_pass_draws,
};
