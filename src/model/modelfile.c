/* The model file: a self-describing header, the raw user/item ids, the little-endian
 * slab and a CRC-32C over everything before it.
 *
 *   "FRMODEL\0" | u32 version (2) | u64 total length
 *   config (fri_model_config_put; also the model part of a federation's TASK):
 *       u32 name length (1..31) + the kind's name ("neumf", no NUL)
 *       u32 loss, n_users, n_items; u64 seed; f32 l2, init_std
 *       u32 block length + the kind's parameter block (written and read by its family:
 *           dim, MLP widths, bias_l2, mu... see the family files)
 *   u32 n_tensors, then per tensor: name[32] (NUL padded), u32 kind, rows, cols, u64 offset
 *   meta: u64 round, epoch, seed; u32 json length + bytes
 *   u32 flags (1 = user ids, 2 = item ids), then i64[n_users], i64[n_items] as flagged
 *   u64 n_params, f32[n_params]
 *   u32 CRC-32C of all the bytes above
 * A kind is stored by name and its parameters in a block of its own length, so a new
 * model family needs no new format version. Version 1 (kind as a number 1..5 and a fixed
 * config: u32 kind, loss, n_users, n_items, dim, mlp_dim, n_layers, layers[8]; f32 l2,
 * mu, init_std; u64 seed) is still read, with bias_l2 = 0 (it did not store it: "as
 * l2"), so older models and checkpoints stay usable; it is never written.
 * Invariants: the decoder checks every length against the bytes left before reading or
 * allocating, checks the CRC before trusting any content, and accepts a tensor table
 * only if it is exactly the layout the stored config gives. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/core.h"
#include "model/family.h"
#include "model/model_internal.h"

static const uint8_t MAGIC[8] = {'F', 'R', 'M', 'O', 'D', 'E', 'L', 0};
#define JSON_MAX (1u << 20)

void fr_model_meta_destroy(fr_model_meta *meta) {
    if (!meta) return;
    fri_free(meta->config_json);
    fri_free(meta->user_ids);
    fri_free(meta->item_ids);
    memset(meta, 0, sizeof *meta);
}

void fr_model_bytes_free(uint8_t *bytes) { fri_free(bytes); }

void fri_model_config_put(fri_buf *b, const fr_model_config *c) {
    const char *name = fr_model_kind_name(c->kind);
    const fri_model_family *f = fri_model_family_of(c->kind);
    size_t nl = strlen(name);
    fri_buf_u32(b, (uint32_t)nl);
    fri_buf_put(b, name, nl);
    fri_buf_u32(b, (uint32_t)c->loss);
    fri_buf_u32(b, c->n_users);
    fri_buf_u32(b, c->n_items);
    fri_buf_u64(b, c->seed);
    fri_buf_f32(b, c->l2);
    fri_buf_f32(b, c->init_std);
    /* the block's length is patched once the family has written it */
    size_t at = b->len;
    fri_buf_u32(b, 0);
    if (f) f->params_put(b, c);
    if (!b->err) fri_put_u32(b->data + at, (uint32_t)(b->len - at - 4));
}

fr_err fri_model_config_get(fri_rd *r, fr_model_config *c) {
    memset(c, 0, sizeof *c);
    uint32_t nl;
    const uint8_t *name;
    fr_err e;
    if ((e = fri_rd_u32(r, &nl, "kind name length"))) return e;
    if (nl == 0 || nl >= FRI_MODEL_KIND_NAME_MAX)
        return fri_fail(FR_ERR_FORMAT, "%s: %s: kind name of %u bytes: expected 1..%d", r->name, r->kind, nl,
                        FRI_MODEL_KIND_NAME_MAX - 1);
    if ((e = fri_rd_bytes(r, &name, nl, "kind name"))) return e;
    fr_model_kind kind = fri_model_kind_find((const char *)name, nl);
    if (!kind) {
        char shown[FRI_MODEL_KIND_NAME_MAX], known[512];
        for (uint32_t i = 0; i < nl; i++) shown[i] = name[i] >= 0x20 && name[i] < 0x7f ? (char)name[i] : '?';
        shown[nl] = 0;
        fri_model_kind_list(known, sizeof known);
        return fri_fail(FR_ERR_FORMAT, "%s: %s: model kind '%s' is unknown to this build (it knows %s)", r->name,
                        r->kind, shown, known);
    }
    /* the kind's defaults under what is stored: fields the kind does not use keep them */
    fr_model_config_default(c, kind);
    uint32_t loss, blen;
    if ((e = fri_rd_u32(r, &loss, "loss")) || (e = fri_rd_u32(r, &c->n_users, "n_users")) ||
        (e = fri_rd_u32(r, &c->n_items, "n_items")) || (e = fri_rd_u64(r, &c->seed, "seed")) ||
        (e = fri_rd_f32(r, &c->l2, "l2")) || (e = fri_rd_f32(r, &c->init_std, "init_std")) ||
        (e = fri_rd_u32(r, &blen, "parameter block length")) || (e = fri_rd_need(r, blen, "parameter block")))
        return e;
    c->loss = (fr_loss)loss;
    /* the family reads its block through a reader that ends with it */
    fri_rd blk = *r;
    blk.n = r->at + blen;
    if ((e = fri_model_family_of(kind)->params_get(&blk, c))) return e;
    if (blk.at != blk.n)
        return fri_fail(FR_ERR_FORMAT, "%s: %s: %zu unexpected bytes in the %s parameter block", r->name, r->kind,
                        blk.n - blk.at, fr_model_kind_name(kind));
    r->at = blk.n;
    if (fr_model_config_check(c) != FR_OK) return fri_fail_prefix(FR_ERR_FORMAT, "%s: bad model config", r->name);
    return FR_OK;
}

/* The config of a version 1 file: fixed fields, the kind as its number. */
static fr_err config_get_v1(fri_rd *r, fr_model_config *c) {
    memset(c, 0, sizeof *c);
    uint32_t v[7];
    static const char *fields[7] = {"kind", "loss", "n_users", "n_items", "dim", "mlp_dim", "n_layers"};
    fr_err e;
    for (int i = 0; i < 7; i++)
        if ((e = fri_rd_u32(r, &v[i], fields[i]))) return e;
    if (v[0] < 1 || v[0] > FRI_MODEL_V1_KINDS)
        return fri_fail(FR_ERR_FORMAT, "%s: %s: model kind %u: version 1 files hold kinds 1..%d", r->name, r->kind,
                        v[0], FRI_MODEL_V1_KINDS);
    c->kind = (fr_model_kind)v[0];
    c->loss = (fr_loss)v[1];
    c->n_users = v[2];
    c->n_items = v[3];
    c->dim = v[4];
    c->mlp_dim = v[5];
    c->n_layers = v[6];
    for (int l = 0; l < FR_MODEL_MAX_LAYERS; l++)
        if ((e = fri_rd_u32(r, &c->layers[l], "layers"))) return e;
    if ((e = fri_rd_f32(r, &c->l2, "l2")) || (e = fri_rd_f32(r, &c->mu, "mu")) ||
        (e = fri_rd_f32(r, &c->init_std, "init_std")) || (e = fri_rd_u64(r, &c->seed, "seed")))
        return e;
    c->bias_l2 = 0.0f; /* not stored by version 1: "as l2" */
    if (fr_model_config_check(c) != FR_OK) return fri_fail_prefix(FR_ERR_FORMAT, "%s: bad model config", r->name);
    return FR_OK;
}

/* The file's bytes up to and with the parameter count (the total length at 12 left 0). */
static fr_err model_header(const fr_model *m, const fr_model_meta *meta, fri_buf *out) {
    const fr_model_config *c = &m->cfg;
    fri_buf b = {0};
    fri_buf_put(&b, MAGIC, 8);
    fri_buf_u32(&b, FR_MODEL_FILE_VERSION);
    fri_buf_u64(&b, 0); /* total length, patched below */
    fri_model_config_put(&b, c);
    fri_buf_u32(&b, (uint32_t)m->n_tensors);
    for (int i = 0; i < m->n_tensors; i++) {
        char name[FR_TENSOR_NAME_MAX] = {0};
        memcpy(name, m->t[i].name, strnlen(m->t[i].name, FR_TENSOR_NAME_MAX - 1));
        fri_buf_put(&b, name, sizeof name);
        fri_buf_u32(&b, (uint32_t)m->t[i].kind);
        fri_buf_u32(&b, m->t[i].rows);
        fri_buf_u32(&b, m->t[i].cols);
        fri_buf_u64(&b, m->t[i].offset);
    }
    const char *json = meta && meta->config_json ? meta->config_json : "";
    size_t jl = strlen(json);
    if (jl > JSON_MAX) {
        fri_buf_free(&b);
        return fri_fail(FR_ERR_INVALID, "model meta: config_json of %zu bytes: at most %u", jl, JSON_MAX);
    }
    fri_buf_u64(&b, meta ? meta->round : 0);
    fri_buf_u64(&b, meta ? meta->epoch : 0);
    fri_buf_u64(&b, meta ? meta->seed : 0);
    fri_buf_u32(&b, (uint32_t)jl);
    fri_buf_put(&b, json, jl);
    int has_u = meta && meta->user_ids, has_i = meta && meta->item_ids;
    fri_buf_u32(&b, (uint32_t)(has_u | (has_i << 1)));
    if (has_u)
        for (uint32_t u = 0; u < c->n_users; u++) fri_buf_u64(&b, (uint64_t)meta->user_ids[u]);
    if (has_i)
        for (uint32_t i = 0; i < c->n_items; i++) fri_buf_u64(&b, (uint64_t)meta->item_ids[i]);
    fri_buf_u64(&b, m->n_params);
    if (b.err) {
        fri_buf_free(&b);
        return fri_fail(FR_ERR_NOMEM, "encoding model: out of memory");
    }
    *out = b;
    return FR_OK;
}

fr_err fr_model_encode(const fr_model *m, const fr_model_meta *meta, uint8_t **bytes, size_t *n) {
    *bytes = NULL;
    *n = 0;
    fri_buf b = {0};
    fr_err e = model_header(m, meta, &b);
    if (e) return e;
    for (size_t i = 0; i < m->n_params; i++) fri_buf_f32(&b, m->params[i]);
    fri_buf_u32(&b, 0); /* CRC placeholder */
    if (b.err) {
        fri_buf_free(&b);
        return fri_fail(FR_ERR_NOMEM, "encoding model: out of memory");
    }
    fri_put_u64(b.data + 12, (uint64_t)b.len);
    fri_put_u32(b.data + b.len - 4, fr_crc32c(0, b.data, b.len - 4));
    *bytes = b.data;
    *n = b.len;
    return FR_OK;
}

#define TRY(x) do { if ((e = (x)) != FR_OK) goto fail; } while (0)

fr_err fr_model_decode(fr_model **out, const uint8_t *bytes, size_t n, const char *name,
                       fr_model_meta *meta) {
    *out = NULL;
    if (meta) memset(meta, 0, sizeof *meta);
    if (!name) name = "<memory>";
    fr_err e = FR_OK;
    fr_model *m = NULL;
    fr_model_meta mt = {0};
    fri_rd r;
    fri_rd_init(&r, bytes, n, name, "model file");
    if (n < 8 || memcmp(bytes, MAGIC, 8) != 0)
        return fri_fail(FR_ERR_FORMAT, "%s: not a fedrec model file (bad magic)", name);
    r.at = 8;
    uint32_t version;
    uint64_t total;
    if ((e = fri_rd_u32(&r, &version, "version"))) return e;
    if (version != 1 && version != FR_MODEL_FILE_VERSION)
        return fri_fail(FR_ERR_VERSION, "%s: model file version %u: this build reads versions 1 to %u", name,
                        version, FR_MODEL_FILE_VERSION);
    if ((e = fri_rd_u64(&r, &total, "file length"))) return e;
    if (total != n)
        return fri_fail(FR_ERR_FORMAT, "%s: %s model file: its header says %llu bytes, it has %zu", name,
                        total > n ? "truncated" : "oversized", (unsigned long long)total, n);
    if (n < r.at + 4) return fri_fail(FR_ERR_FORMAT, "%s: model file of %zu bytes is too short", name, n);
    uint32_t crc = fr_crc32c(0, bytes, n - 4), want = fri_get_u32(bytes + n - 4);
    if (crc != want)
        return fri_fail(FR_ERR_CHECKSUM, "%s: model file is damaged: CRC-32C %08x, stored %08x", name, crc,
                        want);
    r.n = n - 4; /* the CRC is not content */

    fr_model_config c;
    if ((e = version == 1 ? config_get_v1(&r, &c) : fri_model_config_get(&r, &c))) return e;
    /* the layout the config gives; allocation-free, so checked before allocating */
    fr_model lay;
    memset(&lay, 0, sizeof lay);
    if (fri_model_layout(&lay, &c) != FR_OK) return fri_fail_prefix(FR_ERR_FORMAT, "%s: bad model config", name);
    uint32_t nt;
    if ((e = fri_rd_u32(&r, &nt, "tensor count"))) return e;
    if (nt != (uint32_t)lay.n_tensors)
        return fri_fail(FR_ERR_FORMAT, "%s: %u tensors, a %s model has %d", name, nt,
                        fr_model_kind_name(c.kind), lay.n_tensors);
    for (uint32_t i = 0; i < nt; i++) {
        if ((e = fri_rd_need(&r, FR_TENSOR_NAME_MAX, "tensor name"))) return e;
        const char *nm = (const char *)r.p + r.at;
        r.at += FR_TENSOR_NAME_MAX;
        uint32_t kind, rows, cols;
        uint64_t off;
        if ((e = fri_rd_u32(&r, &kind, "tensor kind")) || (e = fri_rd_u32(&r, &rows, "tensor rows")) ||
            (e = fri_rd_u32(&r, &cols, "tensor cols")) || (e = fri_rd_u64(&r, &off, "tensor offset")))
            return e;
        const fr_tensor *t = &lay.t[i];
        if (strnlen(nm, FR_TENSOR_NAME_MAX) == FR_TENSOR_NAME_MAX || strcmp(nm, t->name) != 0 ||
            kind != (uint32_t)t->kind || rows != t->rows || cols != t->cols || off != t->offset)
            return fri_fail(FR_ERR_FORMAT, "%s: tensor %u does not match the layout of its config "
                            "(expected %s [%u x %u] at %zu)", name, i, t->name, t->rows, t->cols, t->offset);
    }
    uint32_t jl, flags;
    if ((e = fri_rd_u64(&r, &mt.round, "round")) || (e = fri_rd_u64(&r, &mt.epoch, "epoch")) ||
        (e = fri_rd_u64(&r, &mt.seed, "meta seed")) || (e = fri_rd_u32(&r, &jl, "json length")))
        return e;
    if (jl > JSON_MAX) return fri_fail(FR_ERR_FORMAT, "%s: config json of %u bytes: at most %u", name, jl, JSON_MAX);
    if ((e = fri_rd_need(&r, jl, "config json"))) return e;
    if (memchr(r.p + r.at, 0, jl)) return fri_fail(FR_ERR_FORMAT, "%s: config json contains a NUL byte", name);
    if (meta) {
        if (!(mt.config_json = fri_malloc((size_t)jl + 1))) return FR_ERR_NOMEM;
        memcpy(mt.config_json, r.p + r.at, jl);
        mt.config_json[jl] = 0;
    }
    r.at += jl;
    TRY(fri_rd_u32(&r, &flags, "id flags"));
    if (flags > 3) { e = fri_fail(FR_ERR_FORMAT, "%s: id flags %u: expected 0..3", name, flags); goto fail; }
    for (int which = 0; which < 2; which++) {
        if (!(flags & (1u << which))) continue;
        uint32_t cnt = which ? c.n_items : c.n_users;
        TRY(fri_rd_need_n(&r, cnt, 8, which ? "item ids" : "user ids"));
        if (meta) {
            int64_t *ids = fri_malloc(((size_t)cnt ? cnt : 1) * sizeof *ids);
            if (!ids) { e = FR_ERR_NOMEM; goto fail; }
            for (uint32_t k = 0; k < cnt; k++) ids[k] = (int64_t)fri_get_u64(r.p + r.at + (size_t)k * 8);
            if (which) mt.item_ids = ids; else mt.user_ids = ids;
        }
        r.at += (size_t)cnt * 8;
    }
    uint64_t np;
    TRY(fri_rd_u64(&r, &np, "parameter count"));
    if (np != lay.n_params) {
        e = fri_fail(FR_ERR_FORMAT, "%s: %llu parameters, the config gives %zu", name, (unsigned long long)np,
                     lay.n_params);
        goto fail;
    }
    if (np > (r.n - r.at) / 4) {
        e = fri_fail(FR_ERR_FORMAT, "%s: truncated model file: %llu parameters need %llu bytes, %zu left", name,
                     (unsigned long long)np, (unsigned long long)np * 4, r.n - r.at);
        goto fail;
    }
    if (r.n - r.at != np * 4) {
        e = fri_fail(FR_ERR_FORMAT, "%s: %zu unexpected bytes after the parameters", name, r.n - r.at - (size_t)np * 4);
        goto fail;
    }
    if ((e = fri_model_alloc(&m, &c)) != FR_OK) goto fail;
    for (size_t i = 0; i < m->n_params; i++) m->params[i] = fri_get_f32(r.p + r.at + i * 4);
    if (!fri_all_finite(m->params, m->n_params)) { /* a diverged model scores nothing */
        size_t i = 0;
        while (isfinite(m->params[i])) i++;
        int t = m->n_tensors - 1;
        while (t > 0 && m->t[t].offset > i) t--;
        size_t within = i - m->t[t].offset;
        e = fri_fail(FR_ERR_RANGE, "%s: tensor %s, row %zu, column %zu holds %g: the model diverged, it is refused",
                     name, m->t[t].name, within / m->t[t].cols, within % m->t[t].cols, (double)m->params[i]);
        goto fail;
    }
    *out = m;
    if (meta) *meta = mt;
    return FR_OK;
fail:
    fr_model_meta_destroy(&mt);
    fr_model_free(m);
    return e;
}

/* fr_model_encode's bytes, streamed to the file: the header (up to the parameter count)
 * is encoded in memory, the parameters go straight from the model, so a model with every
 * user's rows is never copied whole. */
fr_err fr_model_save(const fr_model *m, const char *path, const fr_model_meta *meta) {
    fri_buf b = {0};
    fr_err e = model_header(m, meta, &b);
    if (e) return fri_fail_prefix(e, "saving %s", path);
    fri_put_u64(b.data + 12, (uint64_t)b.len + 4 * (uint64_t)m->n_params + 4);
    fri_wfile w;
    if ((e = fri_wfile_open(&w, path, 0644))) {
        fri_buf_free(&b);
        return e;
    }
    fri_wfile_put(&w, b.data, b.len);
    fri_buf_free(&b);
    fri_wfile_f32s(&w, m->params, m->n_params);
    uint32_t crc = w.crc;
    fri_wfile_u32(&w, crc);
    return fri_wfile_close(&w, FR_OK);
}

fr_err fr_model_load(fr_model **out, const char *path, fr_model_meta *meta) {
    *out = NULL;
    if (meta) memset(meta, 0, sizeof *meta);
    uint8_t *bytes = NULL;
    size_t n = 0;
    fr_err e = fri_read_file(path, &bytes, &n);
    if (e) return e;
    e = fr_model_decode(out, bytes, n, path, meta);
    fri_free(bytes);
    return e;
}
