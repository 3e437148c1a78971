/* Provenance (fedrec/run.h): what a model file records about the run that made it, as a
 * JSON object through cJSON. The configs are encoded and decoded through field tables
 * (key, type, offset), so a field added to fr_fl_config, fr_model_config,
 * fr_train_config, fr_optim_config or fr_load_opts is one line in its table below.
 *
 * Invariants: decode and set_data build everything on the side and change the struct only
 * when they succeed; the strings a struct owns live in its owned_ list until
 * fr_provenance_destroy; cJSON allocates through fri_malloc/fri_free (its hooks are
 * installed once per process: the same malloc and free underneath, with the test hook). */
#define _XOPEN_SOURCE 700 /* realpath */
#include <cJSON.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/core.h"
#include "fedrec/pairset.h"
#include "fedrec/run.h"

/* ------------------------------------------------------------ owned strings */

typedef struct strlist {
    size_t n, cap;
    char **s;
} strlist;

/* A copy of s kept in l (NULL when out of memory). */
static char *own_dup(strlist *l, const char *s) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 8;
        char **a = fri_realloc(l->s, cap * sizeof *a);
        if (!a) return NULL;
        l->s = a;
        l->cap = cap;
    }
    char *c = fri_strdup(s);
    if (c) l->s[l->n++] = c;
    return c;
}

static void strlist_clear(strlist *l) {
    for (size_t k = 0; k < l->n; k++) fri_free(l->s[k]);
    fri_free(l->s);
    memset(l, 0, sizeof *l);
}

/* Moves the strings of add into *owned (a strlist, allocated on first use); add is then
 * empty. FR_ERR_NOMEM leaves both as they were. */
static fr_err own_merge(void **owned, strlist *add) {
    strlist *l = *owned;
    bool fresh = !l;
    if (fresh && !(l = fri_calloc(1, sizeof *l))) return FR_ERR_NOMEM;
    if (l->n + add->n > l->cap) {
        size_t cap = l->n + add->n;
        char **a = fri_realloc(l->s, cap * sizeof *a);
        if (!a) {
            if (fresh) fri_free(l);
            return FR_ERR_NOMEM;
        }
        l->s = a;
        l->cap = cap;
    }
    if (add->n) memcpy(l->s + l->n, add->s, add->n * sizeof *add->s);
    l->n += add->n;
    fri_free(add->s);
    memset(add, 0, sizeof *add);
    *owned = l;
    return FR_OK;
}

/* ------------------------------------------------------------ structs */

void fr_provenance_init(fr_provenance *p) {
    memset(p, 0, sizeof *p);
    p->version = FR_VERSION_STRING;
    p->mode = FR_RUN_FEDERATED;
    p->seed = 1;
    fr_source_default(&p->source);
    fr_model_config_default(&p->model, FR_MODEL_MF);
    fr_fl_config_default(&p->fl, FR_MODEL_MF);
    fr_train_config_default(&p->train);
    p->lr_decay = 1.0;
    p->dp_epsilon = p->dp_delta = NAN;
}

void fr_provenance_destroy(fr_provenance *p) {
    if (!p) return;
    strlist *l = p->owned_;
    if (l) {
        strlist_clear(l);
        fri_free(l);
    }
    fr_provenance_init(p);
}

fr_err fr_provenance_set_run(fr_provenance *p, const fr_run_config *c, uint64_t completed) {
    char spec[48];
    fr_err e = fr_partition_format(c->partition, c->partition_k, c->partition_alpha, spec, sizeof spec);
    if (e) return e;
    strlist add = {0};
    const char *part = own_dup(&add, spec);
    if (!part || own_merge(&p->owned_, &add)) {
        strlist_clear(&add);
        return FR_ERR_NOMEM;
    }
    p->mode = c->centralized ? FR_RUN_CENTRALIZED : FR_RUN_FEDERATED;
    p->seed = c->centralized ? c->train.seed : c->fl.seed;
    p->model = c->model;
    p->fl = c->fl;
    p->train = c->train;
    p->lr_decay = c->lr_decay;
    p->rounds = c->centralized ? 0 : completed;
    p->epochs = c->centralized ? completed : 0;
    p->partition = part;
    return FR_OK;
}

fr_err fr_provenance_check_data(const fr_provenance *p, const fr_data *d) {
    if (!p->has_fingerprint) return FR_OK;
    fr_fingerprint f;
    fr_dataset_fingerprint(fr_data_train(d), &f);
    if (fr_fingerprint_equal(&f, &p->fingerprint)) return FR_OK;
    char a[96], b[96];
    fr_fingerprint_describe(&p->fingerprint, a, sizeof a);
    fr_fingerprint_describe(&f, b, sizeof b);
    return fri_fail(FR_ERR_INVALID, "model/data mismatch: the model was trained on %s; this training data has %s "
                    "(%s: another file, split or seed, or the file changed since)", a, b, fr_data_describe(d));
}

const char *fr_run_mode_name(fr_run_mode mode) {
    switch (mode) {
    case FR_RUN_FEDERATED: return "federated";
    case FR_RUN_CENTRALIZED: return "centralized";
    }
    return "?";
}

fr_err fr_provenance_set_data(fr_provenance *p, const fr_source *s, const fr_data *d) {
    strlist add = {0};
    fr_source src = *s;
    const char **paths[3] = {&src.data, &src.test, &src.negatives};
    for (int k = 0; k < 3; k++) {
        if (!*paths[k]) continue;
        char buf[PATH_MAX];
        const char *abs = realpath(*paths[k], buf) ? buf : *paths[k];
        if (!(*paths[k] = own_dup(&add, abs))) goto nomem;
    }
    const char **strs[5] = {&src.load.delimiter, &src.load.col_user, &src.load.col_item, &src.load.col_rating,
                            &src.load.col_time};
    for (int k = 0; k < 5; k++)
        if (*strs[k] && !(*strs[k] = own_dup(&add, *strs[k]))) goto nomem;
    const char *describe = NULL;
    if (d && !(describe = own_dup(&add, fr_data_describe(d)))) goto nomem;
    const char *pairs = NULL;
    if (d) { /* the training pairs, for an evaluation to tell a test set it trained on */
        fr_pairset *ps = NULL;
        char *text = NULL;
        fr_err e = fr_pairset_build(&ps, fr_data_train(d), 0);
        if (!e) e = fr_pairset_encode(ps, &text);
        if (!e && !(pairs = own_dup(&add, text))) e = FR_ERR_NOMEM;
        fr_pairset_free(ps);
        fr_pairset_text_free(text);
        if (e) goto nomem;
    }
    if (own_merge(&p->owned_, &add)) goto nomem;
    p->source = src;
    p->synthetic = d ? fr_data_is_synthetic(d) : !s->data;
    p->describe = describe;
    p->has_fingerprint = d != NULL;
    if (d) fr_dataset_fingerprint(fr_data_train(d), &p->fingerprint);
    p->train_pairs = pairs;
    return FR_OK;
nomem:
    strlist_clear(&add);
    return FR_ERR_NOMEM;
}

/* ------------------------------------------------------------ names */

typedef struct name { const char *s; int v; } name;

static const name loss_names[] = {{"mse", FR_LOSS_MSE}, {"bce", FR_LOSS_BCE}, {"bpr", FR_LOSS_BPR}, {"ce", FR_LOSS_CE}, {NULL, 0}};
static const name format_names[] = {{"auto", FR_FORMAT_AUTO}, {"ml100k", FR_FORMAT_ML100K}, {"ml1m", FR_FORMAT_ML1M},
                                    {"csv", FR_FORMAT_CSV}, {"ncf", FR_FORMAT_NCF},
                                    {"delimited", FR_FORMAT_DELIMITED}, {NULL, 0}};
static const name mode_names[] = {{"federated", FR_RUN_FEDERATED}, {"centralized", FR_RUN_CENTRALIZED}, {NULL, 0}};

static const char *name_of(const name *t, int v) {
    for (; t->s; t++)
        if (t->v == v) return t->s;
    return NULL;
}

static bool value_of(const name *t, const char *s, int *v) {
    for (; t->s; t++)
        if (!strcmp(t->s, s)) { *v = t->v; return true; }
    return false;
}

/* ------------------------------------------------------------ field tables */

typedef enum ftype {
    T_BOOL, T_U32, T_INT, T_U64, T_F32, T_F64, T_STR, /* plain values (T_STR: a string or null) */
    T_MODEL_KIND, T_LOSS, T_STRATEGY, T_OPTIM_KIND, T_FORMAT, /* enums by name */
    T_LAYERS,                                                  /* fr_model_config.layers[n_layers] */
    T_OPTIM,                                                   /* a nested fr_optim_config */
} ftype;

typedef struct field {
    const char *key;
    ftype type;
    size_t off;
} field;

#define FIELD(type_, member, t) {#member, t, offsetof(type_, member)}

static const field optim_fields[] = {
    FIELD(fr_optim_config, kind, T_OPTIM_KIND),
    FIELD(fr_optim_config, lr, T_F32),
    FIELD(fr_optim_config, momentum, T_F32),
    FIELD(fr_optim_config, beta1, T_F32),
    FIELD(fr_optim_config, beta2, T_F32),
    FIELD(fr_optim_config, eps, T_F32),
    FIELD(fr_optim_config, weight_decay, T_F32),
    FIELD(fr_optim_config, sparse_rows, T_BOOL),
};

static const field model_fields[] = {
    FIELD(fr_model_config, kind, T_MODEL_KIND),
    FIELD(fr_model_config, n_users, T_U32),
    FIELD(fr_model_config, n_items, T_U32),
    FIELD(fr_model_config, dim, T_U32),
    FIELD(fr_model_config, mlp_dim, T_U32),
    FIELD(fr_model_config, n_layers, T_U32),
    FIELD(fr_model_config, layers, T_LAYERS),
    FIELD(fr_model_config, loss, T_LOSS),
    FIELD(fr_model_config, l2, T_F32),
    FIELD(fr_model_config, bias_l2, T_F32),
    FIELD(fr_model_config, mu, T_F32),
    FIELD(fr_model_config, init_std, T_F32),
    FIELD(fr_model_config, seed, T_U64),
    FIELD(fr_model_config, reg_user, T_F32),
    FIELD(fr_model_config, reg_item, T_F32),
};

static const field fingerprint_fields[] = {
    FIELD(fr_fingerprint, users, T_U32),
    FIELD(fr_fingerprint, items, T_U32),
    FIELD(fr_fingerprint, interactions, T_U64),
    FIELD(fr_fingerprint, crc, T_U32),
};

static const field fl_fields[] = {
    FIELD(fr_fl_config, strategy, T_STRATEGY),
    FIELD(fr_fl_config, server_lr, T_F32),
    FIELD(fr_fl_config, server_momentum, T_F32),
    FIELD(fr_fl_config, beta1, T_F32),
    FIELD(fr_fl_config, beta2, T_F32),
    FIELD(fr_fl_config, tau, T_F32),
    FIELD(fr_fl_config, mu, T_F32),
    FIELD(fr_fl_config, row_norm, T_BOOL),
    FIELD(fr_fl_config, item_sum, T_BOOL),
    FIELD(fr_fl_config, local_epochs, T_U32),
    FIELD(fr_fl_config, batch, T_U32),
    FIELD(fr_fl_config, negatives, T_U32),
    FIELD(fr_fl_config, local, T_OPTIM),
    FIELD(fr_fl_config, item_local, T_OPTIM),
    FIELD(fr_fl_config, item_lr_decay, T_F32),
    FIELD(fr_fl_config, keep_private_optim, T_BOOL),
    FIELD(fr_fl_config, dense_steps, T_BOOL),
    FIELD(fr_fl_config, clients_per_round, T_F64),
    FIELD(fr_fl_config, availability, T_F64),
    FIELD(fr_fl_config, min_results, T_U32),
    FIELD(fr_fl_config, seed, T_U64),
    FIELD(fr_fl_config, confidence_alpha, T_F32),
    FIELD(fr_fl_config, dp_clip, T_F64),
    FIELD(fr_fl_config, dp_noise, T_F64),
    FIELD(fr_fl_config, dp_quantile, T_F64),
    FIELD(fr_fl_config, dp_clip_lr, T_F64),
    FIELD(fr_fl_config, dp_count_noise, T_F64),
    FIELD(fr_fl_config, dp_delta, T_F64),
    FIELD(fr_fl_config, ldp_noise, T_F64),
    FIELD(fr_fl_config, dp_seeded_noise, T_BOOL),
    FIELD(fr_fl_config, decoys, T_F64),
    FIELD(fr_fl_config, decoy_zero, T_BOOL),
};

static const field train_fields[] = {
    FIELD(fr_train_config, batch, T_U32),
    FIELD(fr_train_config, negatives, T_U32),
    FIELD(fr_train_config, shards, T_U32),
    FIELD(fr_train_config, optim, T_OPTIM),
    FIELD(fr_train_config, seed, T_U64),
    FIELD(fr_train_config, threads, T_INT),
    FIELD(fr_train_config, confidence_alpha, T_F32),
};

static const field load_fields[] = {
    FIELD(fr_load_opts, format, T_FORMAT),
    FIELD(fr_load_opts, skip_bad_lines, T_BOOL),
    FIELD(fr_load_opts, delimiter, T_STR),
    FIELD(fr_load_opts, has_header, T_BOOL),
    FIELD(fr_load_opts, col_user, T_STR),
    FIELD(fr_load_opts, col_item, T_STR),
    FIELD(fr_load_opts, col_rating, T_STR),
    FIELD(fr_load_opts, col_time, T_STR),
    FIELD(fr_load_opts, rating_min, T_F64),
    FIELD(fr_load_opts, rating_max, T_F64),
    FIELD(fr_load_opts, implicit_threshold, T_F64),
    FIELD(fr_load_opts, implicit, T_BOOL),
    FIELD(fr_load_opts, implicit_weight, T_BOOL),
    FIELD(fr_load_opts, no_header, T_BOOL),
};

#define N_OF(a) (sizeof(a) / sizeof *(a))

/* Enum fields are stored as the compiler's enum type, which holds int values. */
static int get_enum(const void *p) { int v; memcpy(&v, p, sizeof v); return v; }
static void set_enum(void *p, int v) { memcpy(p, &v, sizeof v); }

#define EXACT_U64 9007199254740992.0 /* 2^53: above it a u64 is written as a string */

/* ------------------------------------------------------------ encode */

/* The cJSON allocator: the library's (installed once per process; see the file comment).
 * cJSON reports a failed allocation during a parse as a syntax error, so the allocator
 * notes it in a per-thread flag that decode reads. */
static _Thread_local bool tl_json_oom;
static void *json_malloc(size_t n) {
    void *p = fri_malloc(n);
    if (!p) tl_json_oom = true;
    return p;
}
static pthread_once_t g_hooks_once = PTHREAD_ONCE_INIT;
static void hooks_install(void) {
    cJSON_Hooks h = {json_malloc, fri_free};
    cJSON_InitHooks(&h);
}
static void hooks(void) {
    pthread_once(&g_hooks_once, hooks_install);
    tl_json_oom = false;
}

/* Adds key: value to obj; false when out of memory. */
static bool add(cJSON *obj, const char *key, cJSON *v) {
    if (!v) return false;
    if (!cJSON_AddItemToObject(obj, key, v)) {
        cJSON_Delete(v);
        return false;
    }
    return true;
}

static cJSON *json_u64(uint64_t v) {
    if (v <= (uint64_t)EXACT_U64) return cJSON_CreateNumber((double)v);
    char buf[24];
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)v);
    return cJSON_CreateString(buf);
}

/* The shortest decimal that reads back as f once rounded to float, as a double: 0.1f is
 * written 0.1, not 0.10000000149011612. */
static double float_value(float f) {
    if (!isfinite(f)) return f;
    char buf[32];
    for (int prec = 1; prec <= 9; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, (double)f);
        double d = strtod(buf, NULL);
        if ((float)d == f) return d;
    }
    return f;
}

static cJSON *json_str(const char *s) { return s ? cJSON_CreateString(s) : cJSON_CreateNull(); }

static fr_err put_fields(cJSON *obj, const void *base, const field *f, size_t n, const char *path);

/* The value of one field; *e is set when NULL is returned for another reason than memory. */
static cJSON *put_value(const void *base, const field *f, const char *path, fr_err *e) {
    const char *p = (const char *)base + f->off;
    const char *nm = NULL;
    switch (f->type) {
    case T_BOOL: return cJSON_CreateBool(*(const bool *)p);
    case T_U32: return cJSON_CreateNumber(*(const uint32_t *)p);
    case T_INT: return cJSON_CreateNumber(*(const int *)p);
    case T_U64: return json_u64(*(const uint64_t *)p);
    case T_F32: return cJSON_CreateNumber(float_value(*(const float *)p)); /* not finite: null */
    case T_F64: return cJSON_CreateNumber(*(const double *)p);
    case T_STR: return json_str(*(const char *const *)p);
    case T_MODEL_KIND: nm = fr_model_kind_name((fr_model_kind)get_enum(p)); if (!strcmp(nm, "?")) nm = NULL; break;
    case T_LOSS: nm = name_of(loss_names, get_enum(p)); break;
    case T_STRATEGY: nm = fr_strategy_name((fr_strategy)get_enum(p)); if (!strcmp(nm, "?")) nm = NULL; break;
    case T_OPTIM_KIND: {
        int v = get_enum(p);
        nm = v == 0 ? "same" : fr_optim_kind_name((fr_optim_kind)v);
        if (!strcmp(nm, "?")) nm = NULL;
        break;
    }
    case T_FORMAT: nm = name_of(format_names, get_enum(p)); break;
    case T_LAYERS: {
        const fr_model_config *mc = base;
        uint32_t k = mc->n_layers < FR_MODEL_MAX_LAYERS ? mc->n_layers : FR_MODEL_MAX_LAYERS;
        cJSON *a = cJSON_CreateArray();
        for (uint32_t i = 0; a && i < k; i++)
            if (!cJSON_AddItemToArray(a, cJSON_CreateNumber(mc->layers[i]))) { cJSON_Delete(a); a = NULL; }
        return a;
    }
    case T_OPTIM: {
        cJSON *o = cJSON_CreateObject();
        if (!o) return NULL;
        char sub[96];
        snprintf(sub, sizeof sub, "%s.%s", path, f->key);
        if ((*e = put_fields(o, p, optim_fields, N_OF(optim_fields), sub))) { cJSON_Delete(o); return NULL; }
        return o;
    }
    }
    if (!nm) {
        *e = fri_fail(FR_ERR_INVALID, "provenance: %s.%s is %d, which has no name", path, f->key, get_enum(p));
        return NULL;
    }
    return cJSON_CreateString(nm);
}

static fr_err put_fields(cJSON *obj, const void *base, const field *f, size_t n, const char *path) {
    for (size_t k = 0; k < n; k++) {
        fr_err e = FR_OK;
        cJSON *v = put_value(base, &f[k], path, &e);
        if (e) return e;
        if (!add(obj, f[k].key, v)) return FR_ERR_NOMEM;
    }
    return FR_OK;
}

static fr_err put_object(cJSON *root, const char *key, const void *base, const field *f, size_t n) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return FR_ERR_NOMEM;
    fr_err e = put_fields(o, base, f, n, key);
    if (e) { cJSON_Delete(o); return e; }
    return add(root, key, o) ? FR_OK : FR_ERR_NOMEM;
}

static fr_err encode_tree(const fr_provenance *p, cJSON *root) {
    const char *mode = name_of(mode_names, p->mode);
    if (!mode) return fri_fail(FR_ERR_INVALID, "provenance: mode %d; expected federated (1) or centralized (2)",
                               (int)p->mode);
    char split[40];
    fr_err e = fr_source_format_split(p->source.split, p->source.split_ratio, split, sizeof split);
    if (e) return e;
    const fr_source *s = &p->source;
    if (!add(root, "fedrec_version", json_str(p->version)) || !add(root, "mode", cJSON_CreateString(mode)) ||
        !add(root, "seed", json_u64(p->seed)) || !add(root, "data", json_str(s->data)) ||
        !add(root, "test", json_str(s->test)) || !add(root, "negatives", json_str(s->negatives)) ||
        !add(root, "split", cJSON_CreateString(split)) || !add(root, "split_seed", json_u64(s->seed)) ||
        !add(root, "eval_negatives", cJSON_CreateNumber(s->eval_negatives)) ||
        !add(root, "explicit_ratings", cJSON_CreateBool(s->explicit_ratings)))
        return FR_ERR_NOMEM;
    if ((e = put_object(root, "load", &s->load, load_fields, N_OF(load_fields)))) return e;
    if (!add(root, "synthetic", cJSON_CreateBool(p->synthetic)) || !add(root, "source", json_str(p->describe)))
        return FR_ERR_NOMEM;
    if (p->has_fingerprint &&
        (e = put_object(root, "train_fingerprint", &p->fingerprint, fingerprint_fields, N_OF(fingerprint_fields))))
        return e;
    if (p->train_pairs && !add(root, "train_pairs", cJSON_CreateString(p->train_pairs))) return FR_ERR_NOMEM;
    if (p->cold_items && !add(root, "cold_items", cJSON_CreateString(p->cold_items))) return FR_ERR_NOMEM;
    if ((e = put_object(root, "model", &p->model, model_fields, N_OF(model_fields)))) return e;
    if (p->mode == FR_RUN_FEDERATED) {
        if ((e = put_object(root, "fl", &p->fl, fl_fields, N_OF(fl_fields)))) return e;
        if (!add(root, "rounds", json_u64(p->rounds)) ||
            !add(root, "partition", cJSON_CreateString(p->partition ? p->partition : "user")))
            return FR_ERR_NOMEM;
        if (p->fl.dp_clip > 0 && /* a private run: what it spent (null: infinite or unknown) */
            (!add(root, "dp_epsilon", isfinite(p->dp_epsilon) ? cJSON_CreateNumber(p->dp_epsilon) : cJSON_CreateNull()) ||
             !add(root, "dp_delta", isfinite(p->dp_delta) ? cJSON_CreateNumber(p->dp_delta) : cJSON_CreateNull())))
            return FR_ERR_NOMEM;
    } else {
        if ((e = put_object(root, "train", &p->train, train_fields, N_OF(train_fields)))) return e;
        if (!add(root, "epochs", json_u64(p->epochs)) || !add(root, "lr_decay", cJSON_CreateNumber(p->lr_decay)))
            return FR_ERR_NOMEM;
    }
    return FR_OK;
}

fr_err fr_provenance_encode(const fr_provenance *p, char **json) {
    *json = NULL;
    hooks();
    cJSON *root = cJSON_CreateObject();
    if (!root) return FR_ERR_NOMEM;
    fr_err e = encode_tree(p, root);
    if (!e && !(*json = cJSON_PrintUnformatted(root))) e = FR_ERR_NOMEM;
    cJSON_Delete(root);
    if (e == FR_ERR_NOMEM) fri_fail(e, "provenance: out of memory encoding");
    return e;
}

void fr_provenance_json_free(char *json) { fri_free(json); }

/* ------------------------------------------------------------ decode */

static const char *jtype(const cJSON *v) {
    if (cJSON_IsString(v)) return "a string";
    if (cJSON_IsNumber(v)) return "a number";
    if (cJSON_IsBool(v)) return "a boolean";
    if (cJSON_IsNull(v)) return "null";
    if (cJSON_IsArray(v)) return "an array";
    if (cJSON_IsObject(v)) return "an object";
    return "not a value";
}

/* A value of the wrong type: "provenance: "fl.batch" is a string; expected ...". */
static fr_err wrong_type(const char *path, const cJSON *v, const char *expected) {
    return fri_fail(FR_ERR_PARSE, "provenance: \"%s\" is %s; expected %s", path, jtype(v), expected);
}

/* A value of the right type that is not allowed. */
static fr_err bad_value(const char *path, const cJSON *v, const char *expected) {
    if (cJSON_IsString(v))
        return fri_fail(FR_ERR_PARSE, "provenance: \"%s\" is \"%.60s\"; expected %s", path, v->valuestring, expected);
    return fri_fail(FR_ERR_PARSE, "provenance: \"%s\" is %.17g; expected %s", path, v->valuedouble, expected);
}

static fr_err get_u64(const cJSON *v, const char *path, uint64_t *out) {
    static const char want[] = "an integer in [0, 2^64) (above 2^53 as a decimal string)";
    if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;
        if (!(d >= 0 && d <= EXACT_U64 && d == floor(d))) return bad_value(path, v, want);
        *out = (uint64_t)d;
        return FR_OK;
    }
    if (!cJSON_IsString(v)) return wrong_type(path, v, want);
    const char *s = v->valuestring;
    if (!*s || strspn(s, "0123456789") != strlen(s)) return bad_value(path, v, want);
    errno = 0;
    unsigned long long x = strtoull(s, NULL, 10);
    if (errno) return bad_value(path, v, want);
    *out = x;
    return FR_OK;
}

/* An integral number in [lo, hi]. */
static fr_err get_int(const cJSON *v, const char *path, double lo, double hi, const char *want, double *out) {
    if (!cJSON_IsNumber(v)) return wrong_type(path, v, want);
    double d = v->valuedouble;
    if (!(d >= lo && d <= hi && d == floor(d))) return bad_value(path, v, want);
    *out = d;
    return FR_OK;
}

/* A name from a list; *out gets its value. */
static fr_err get_name(const cJSON *v, const char *path, const char *want, int *out, bool (*parse)(const char *, int *)) {
    if (!cJSON_IsString(v)) return wrong_type(path, v, want);
    if (!parse(v->valuestring, out)) return bad_value(path, v, want);
    return FR_OK;
}

static bool parse_model_kind(const char *s, int *v) {
    fr_model_kind k;
    if (fr_model_kind_parse(s, &k)) return false;
    *v = (int)k;
    return true;
}
static bool parse_strategy(const char *s, int *v) {
    fr_strategy k;
    if (fr_strategy_parse(s, &k)) return false;
    *v = (int)k;
    return true;
}
static bool parse_optim_kind(const char *s, int *v) {
    if (!strcmp(s, "same")) { *v = 0; return true; }
    fr_optim_kind k;
    if (fr_optim_kind_parse(s, &k)) return false;
    *v = (int)k;
    return true;
}
static bool parse_loss(const char *s, int *v) { return value_of(loss_names, s, v); }
static bool parse_format(const char *s, int *v) { return value_of(format_names, s, v); }

#define WANT_MODEL_KIND "mf, bpr, gmf, mlp or neumf"
#define WANT_OPTIM_KIND "same, sgd, adam or adagrad"

static fr_err get_fields(const cJSON *obj, void *base, const field *f, size_t n, const char *path, strlist *own);

/* An optimizer object: a kind other than the struct's resets it to that kind's defaults. */
static fr_err get_optim(const cJSON *obj, fr_optim_config *oc, const char *path, strlist *own) {
    if (!cJSON_IsObject(obj)) return wrong_type(path, obj, "an object");
    const cJSON *k = cJSON_GetObjectItemCaseSensitive(obj, "kind");
    if (k) {
        char kp[128];
        snprintf(kp, sizeof kp, "%s.kind", path);
        int v = 0;
        fr_err e = get_name(k, kp, WANT_OPTIM_KIND, &v, parse_optim_kind);
        if (e) return e;
        if (v != (int)oc->kind) fr_optim_config_default(oc, (fr_optim_kind)v); /* kind 0: all zero */
    }
    return get_fields(obj, oc, optim_fields, N_OF(optim_fields), path, own);
}

static fr_err get_value(const cJSON *v, void *base, const field *f, const char *path, strlist *own) {
    char *p = (char *)base + f->off;
    double d;
    int ev = 0;
    fr_err e = FR_OK;
    switch (f->type) {
    case T_BOOL:
        if (!cJSON_IsBool(v)) return wrong_type(path, v, "true or false");
        *(bool *)p = cJSON_IsTrue(v);
        return FR_OK;
    case T_U32:
        if ((e = get_int(v, path, 0, UINT32_MAX, "an integer in [0, 4294967295]", &d))) return e;
        *(uint32_t *)p = (uint32_t)d;
        return FR_OK;
    case T_INT:
        if ((e = get_int(v, path, INT_MIN, INT_MAX, "an integer", &d))) return e;
        *(int *)p = (int)d;
        return FR_OK;
    case T_U64: return get_u64(v, path, (uint64_t *)p);
    case T_F32:
    case T_F64:
        if (cJSON_IsNull(v)) d = NAN;
        else if (cJSON_IsNumber(v)) d = v->valuedouble;
        else return wrong_type(path, v, "a number");
        if (f->type == T_F32) *(float *)p = (float)d;
        else *(double *)p = d;
        return FR_OK;
    case T_STR:
        if (cJSON_IsNull(v)) { *(const char **)p = NULL; return FR_OK; }
        if (!cJSON_IsString(v)) return wrong_type(path, v, "a string or null");
        if (!(*(const char **)p = own_dup(own, v->valuestring))) return FR_ERR_NOMEM;
        return FR_OK;
    case T_MODEL_KIND: e = get_name(v, path, WANT_MODEL_KIND, &ev, parse_model_kind); break;
    case T_LOSS: e = get_name(v, path, "mse, bce or bpr", &ev, parse_loss); break;
    case T_STRATEGY:
        e = get_name(v, path, "fedavg, fedavgm, fedprox, fedadam, fedyogi or fedadagrad", &ev, parse_strategy);
        break;
    case T_OPTIM_KIND: e = get_name(v, path, WANT_OPTIM_KIND, &ev, parse_optim_kind); break;
    case T_FORMAT: e = get_name(v, path, "auto, ml100k, ml1m, csv, ncf or delimited", &ev, parse_format); break;
    case T_LAYERS: {
        if (!cJSON_IsArray(v)) return wrong_type(path, v, "an array of layer widths");
        int k = cJSON_GetArraySize(v);
        if (k > FR_MODEL_MAX_LAYERS)
            return fri_fail(FR_ERR_PARSE, "provenance: \"%s\" has %d values; expected at most %d", path, k,
                            FR_MODEL_MAX_LAYERS);
        uint32_t w[FR_MODEL_MAX_LAYERS] = {0};
        for (int i = 0; i < k; i++) {
            char ip[128];
            snprintf(ip, sizeof ip, "%s[%d]", path, i);
            if ((e = get_int(cJSON_GetArrayItem(v, i), ip, 0, UINT32_MAX, "an integer in [0, 4294967295]", &d)))
                return e;
            w[i] = (uint32_t)d;
        }
        memcpy(((fr_model_config *)base)->layers, w, sizeof w);
        return FR_OK;
    }
    case T_OPTIM: return get_optim(v, (fr_optim_config *)p, path, own);
    }
    if (!e) set_enum(p, ev);
    return e;
}

static fr_err get_fields(const cJSON *obj, void *base, const field *f, size_t n, const char *path, strlist *own) {
    if (!cJSON_IsObject(obj)) return wrong_type(path, obj, "an object");
    for (size_t k = 0; k < n; k++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, f[k].key);
        if (!v) continue; /* missing: keep the value */
        char fp[128];
        snprintf(fp, sizeof fp, "%s.%s", path, f[k].key);
        fr_err e = get_value(v, base, &f[k], fp, own);
        if (e) return e;
    }
    return FR_OK;
}

/* "model": an object, or (files before this format) a kind name. A kind other than the
 * struct's resets the model config and the federation config to that kind's defaults. */
static fr_err get_model(const cJSON *v, fr_provenance *q, strlist *own) {
    const cJSON *k = cJSON_IsObject(v) ? cJSON_GetObjectItemCaseSensitive(v, "kind") : v;
    if (!cJSON_IsObject(v) && !cJSON_IsString(v)) return wrong_type("model", v, "an object or a model kind name");
    if (k) {
        int kind = 0;
        fr_err e = get_name(k, cJSON_IsObject(v) ? "model.kind" : "model", WANT_MODEL_KIND, &kind, parse_model_kind);
        if (e) return e;
        if (kind != (int)q->model.kind) {
            fr_model_config_default(&q->model, (fr_model_kind)kind);
            fr_fl_config_default(&q->fl, (fr_model_kind)kind);
        }
    }
    return cJSON_IsObject(v) ? get_fields(v, &q->model, model_fields, N_OF(model_fields), "model", own) : FR_OK;
}

static fr_err decode_tree(const cJSON *root, fr_provenance *q, strlist *own) {
    const cJSON *v;
    fr_err e = FR_OK;
#define KEY(k) (v = cJSON_GetObjectItemCaseSensitive(root, k))
    if (KEY("fedrec_version")) {
        field f = {"fedrec_version", T_STR, offsetof(fr_provenance, version)};
        if ((e = get_value(v, q, &f, "fedrec_version", own))) return e;
    }
    if (KEY("mode")) {
        int m;
        if (!cJSON_IsString(v)) return wrong_type("mode", v, "federated or centralized");
        if (!value_of(mode_names, v->valuestring, &m)) return bad_value("mode", v, "federated or centralized");
        q->mode = (fr_run_mode)m;
    } else if (KEY("centralized")) { /* before this format */
        if (!cJSON_IsBool(v)) return wrong_type("centralized", v, "true or false");
        q->mode = cJSON_IsTrue(v) ? FR_RUN_CENTRALIZED : FR_RUN_FEDERATED;
    }
    if (KEY("seed")) {
        if ((e = get_u64(v, "seed", &q->seed))) return e;
        q->source.seed = q->seed; /* before this format the run's seed was the split's too */
    }
    static const field source_fields[] = {
        {"data", T_STR, offsetof(fr_source, data)},
        {"test", T_STR, offsetof(fr_source, test)},
        {"negatives", T_STR, offsetof(fr_source, negatives)},
        {"split_seed", T_U64, offsetof(fr_source, seed)},
        {"eval_negatives", T_U32, offsetof(fr_source, eval_negatives)},
        {"explicit_ratings", T_BOOL, offsetof(fr_source, explicit_ratings)},
    };
    for (size_t k = 0; k < N_OF(source_fields); k++)
        if (KEY(source_fields[k].key) && (e = get_value(v, &q->source, &source_fields[k], source_fields[k].key, own)))
            return e;
    if (KEY("split")) {
        static const char want[] = "loo, ratio:R, temporal:R or temporal-user:R with 0 < R < 1";
        if (!cJSON_IsString(v)) return wrong_type("split", v, want);
        if (fr_source_parse_split(v->valuestring, &q->source.split, &q->source.split_ratio))
            return bad_value("split", v, want);
    }
    if (KEY("load") && (e = get_fields(v, &q->source.load, load_fields, N_OF(load_fields), "load", own))) return e;
    if (KEY("synthetic")) {
        if (!cJSON_IsBool(v)) return wrong_type("synthetic", v, "true or false");
        q->synthetic = cJSON_IsTrue(v);
    }
    if (KEY("source")) {
        field f = {"source", T_STR, offsetof(fr_provenance, describe)};
        if ((e = get_value(v, q, &f, "source", own))) return e;
    }
    if (KEY("train_fingerprint")) {
        if ((e = get_fields(v, &q->fingerprint, fingerprint_fields, N_OF(fingerprint_fields), "train_fingerprint",
                            own)))
            return e;
        q->has_fingerprint = true;
    }
    if (KEY("train_pairs")) {
        field f = {"train_pairs", T_STR, offsetof(fr_provenance, train_pairs)};
        if ((e = get_value(v, q, &f, "train_pairs", own))) return e;
    }
    if (KEY("model") && (e = get_model(v, q, own))) return e;
    if (KEY("fl") && (e = get_fields(v, &q->fl, fl_fields, N_OF(fl_fields), "fl", own))) return e;
    if (KEY("train") && (e = get_fields(v, &q->train, train_fields, N_OF(train_fields), "train", own))) return e;
    if (KEY("rounds") && (e = get_u64(v, "rounds", &q->rounds))) return e;
    if (KEY("partition")) {
        field f = {"partition", T_STR, offsetof(fr_provenance, partition)};
        if ((e = get_value(v, q, &f, "partition", own))) return e;
    }
    if (KEY("cold_items")) {
        field f = {"cold_items", T_STR, offsetof(fr_provenance, cold_items)};
        if ((e = get_value(v, q, &f, "cold_items", own))) return e;
    }
    if (KEY("epochs") && (e = get_u64(v, "epochs", &q->epochs))) return e;
    if (KEY("dp_epsilon") && !cJSON_IsNull(v)) {
        field f = {"dp_epsilon", T_F64, offsetof(fr_provenance, dp_epsilon)};
        if ((e = get_value(v, q, &f, "dp_epsilon", own))) return e;
    }
    if (KEY("dp_delta") && !cJSON_IsNull(v)) {
        field f = {"dp_delta", T_F64, offsetof(fr_provenance, dp_delta)};
        if ((e = get_value(v, q, &f, "dp_delta", own))) return e;
    }
    if (KEY("lr_decay")) {
        field f = {"lr_decay", T_F64, offsetof(fr_provenance, lr_decay)};
        if ((e = get_value(v, q, &f, "lr_decay", own))) return e;
    }
#undef KEY
    return FR_OK;
}

fr_err fr_provenance_decode(fr_provenance *p, const char *json) {
    if (!json) return fri_fail(FR_ERR_PARSE, "provenance: no JSON text");
    hooks();
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithOpts(json, &end, true);
    if (!root && tl_json_oom) return FR_ERR_NOMEM;
    if (!root)
        return fri_fail(FR_ERR_PARSE, "provenance: not valid JSON at byte %td of %zu", end ? end - json : (ptrdiff_t)0,
                        strlen(json));
    fr_err e;
    strlist own = {0};
    fr_provenance q = *p;
    if (!cJSON_IsObject(root))
        e = fri_fail(FR_ERR_PARSE, "provenance: %s; expected a JSON object", jtype(root));
    else
        e = decode_tree(root, &q, &own);
    cJSON_Delete(root);
    if (!e) e = own_merge(&p->owned_, &own);
    if (e) {
        strlist_clear(&own);
        return e;
    }
    q.owned_ = p->owned_;
    *p = q;
    return FR_OK;
}

/* ------------------------------------------------------------ model files */

fr_err fr_provenance_save_model(const fr_model *m, const char *path, const fr_provenance *p, const fr_data *d) {
    fr_model_meta meta = {0};
    fr_err e = fr_provenance_encode(p, &meta.config_json);
    if (e) return e;
    meta.seed = p->seed;
    if (p->mode == FR_RUN_FEDERATED) meta.round = p->rounds;
    else meta.epoch = p->epochs;
    const fr_model_config *mc = fr_model_config_of(m);
    if (d) {
        const fr_idmap *um = fr_dataset_users(fr_data_train(d)), *im = fr_dataset_items(fr_data_train(d));
        meta.user_ids = fri_malloc((size_t)mc->n_users * sizeof *meta.user_ids);
        meta.item_ids = fri_malloc((size_t)mc->n_items * sizeof *meta.item_ids);
        if (!meta.user_ids || !meta.item_ids) {
            e = FR_ERR_NOMEM;
        } else {
            for (uint32_t u = 0; u < mc->n_users; u++) meta.user_ids[u] = u < fr_idmap_size(um) ? fr_idmap_raw(um, u) : -1;
            for (uint32_t i = 0; i < mc->n_items; i++) meta.item_ids[i] = i < fr_idmap_size(im) ? fr_idmap_raw(im, i) : -1;
        }
    }
    if (!e) e = fr_model_save(m, path, &meta);
    fri_free(meta.user_ids);
    fri_free(meta.item_ids);
    fr_provenance_json_free(meta.config_json);
    return e;
}
