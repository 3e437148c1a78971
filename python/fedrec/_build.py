"""cffi API-mode builder of fedrec._fedrec: the part of libfedrec's public API the package
calls (include/fedrec/*.h) and the embedded `fedrec train` (src/cli/embed.h). Struct
layouts are taken from the headers by the C compiler (the `...;` entries), so nothing
here restates them."""
import os

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.environ.get("FEDREC_SOURCE_DIR") or os.path.dirname(os.path.dirname(HERE))

CDEF = r"""
typedef enum fr_err { FR_OK, FR_ERR_NOMEM, FR_ERR_IO, FR_ERR_PARSE, FR_ERR_FORMAT, FR_ERR_CHECKSUM,
                      FR_ERR_VERSION, FR_ERR_INVALID, FR_ERR_RANGE, FR_ERR_EMPTY, FR_ERR_UNSUPPORTED,
                      FR_ERR_STATE, FR_ERR_INTERNAL, ... } fr_err;
const char *fr_strerror(fr_err err);
const char *fr_errmsg(void);
void fr_errmsg_clear(void);
static const char *const FR_VERSION_STRING;

typedef struct fr_idmap fr_idmap;
typedef struct fr_dataset fr_dataset;
typedef struct fr_negatives fr_negatives;
typedef struct fr_data fr_data;
typedef struct fr_model fr_model;
typedef struct fr_pool fr_pool;
typedef struct fr_model_scorer fr_model_scorer;

uint32_t fr_idmap_size(const fr_idmap *m);
int64_t fr_idmap_raw(const fr_idmap *m, uint32_t dense);
bool fr_idmap_is_str(const fr_idmap *m);
const char *fr_idmap_raw_str(const fr_idmap *m, uint32_t dense);

typedef enum fr_split_kind { FR_SPLIT_LOO, FR_SPLIT_TEMPORAL, FR_SPLIT_RATIO, FR_SPLIT_TEMPORAL_USER, ... } fr_split_kind;
typedef struct fr_load_opts { ...; } fr_load_opts;
void fr_load_opts_default(fr_load_opts *o);
fr_err fr_dataset_load(fr_dataset **out, const char *path, const fr_load_opts *o, void *stats);
fr_err fr_dataset_from_arrays(fr_dataset **out, size_t n, const int64_t *users, const int64_t *items,
                              const float *ratings, const int64_t *times);
fr_err fr_dataset_set_id_strings(fr_dataset *d, const char *const *users, uint32_t n_users,
                                 const char *const *items, uint32_t n_items);
fr_err fr_dataset_split(const fr_dataset *d, fr_split_kind kind, double ratio, uint64_t seed,
                        fr_dataset **train, fr_dataset **test);
fr_err fr_source_parse_split(const char *text, fr_split_kind *kind, double *ratio);
void fr_dataset_free(fr_dataset *d);
uint32_t fr_dataset_n_users(const fr_dataset *d);
uint32_t fr_dataset_n_items(const fr_dataset *d);
uint64_t fr_dataset_n_interactions(const fr_dataset *d);
bool fr_dataset_has_time(const fr_dataset *d);
size_t fr_dataset_user(const fr_dataset *d, uint32_t user, const uint32_t **items, const float **ratings,
                       const int64_t **times);
const fr_idmap *fr_dataset_users(const fr_dataset *d);
const fr_idmap *fr_dataset_items(const fr_dataset *d);

void fr_data_free(fr_data *d);
const fr_dataset *fr_data_train(const fr_data *d);
const fr_dataset *fr_data_test(const fr_data *d);
const fr_negatives *fr_data_negatives(const fr_data *d);
const char *fr_data_describe(const fr_data *d);

typedef enum fr_model_kind { FR_MODEL_MF, ... } fr_model_kind;
typedef struct fr_model_config { fr_model_kind kind; uint32_t n_users; uint32_t n_items; ...; } fr_model_config;
const fr_model_config *fr_model_config_of(const fr_model *m);
const char *fr_model_kind_name(fr_model_kind kind);
bool fr_model_kind_is_explicit(fr_model_kind kind);
size_t fr_model_n_params(const fr_model *m);
const float *fr_model_params_const(const fr_model *m);
typedef struct fr_model_meta { uint64_t round; uint64_t epoch; uint64_t seed; char *config_json;
                               int64_t *user_ids; int64_t *item_ids; ...; } fr_model_meta;
fr_err fr_model_save(const fr_model *m, const char *path, const fr_model_meta *meta);

typedef struct fr_eval_result { ...; } fr_eval_result;
typedef struct fr_eval_opts { ...; } fr_eval_opts;
fr_err fr_eval_result_json(const fr_eval_result *r, char *buf, size_t cap, size_t *len);
typedef void (*fr_score_fn)(void *ctx, uint32_t user, const uint32_t *items, size_t n, float *scores_out, int worker);
fr_err fr_eval_topk(fr_score_fn score, void *ctx, const fr_dataset *train, uint32_t user, size_t k,
                    bool exclude_seen, uint32_t *out_items, float *out_scores, size_t *out_n);
fr_err fr_model_scorer_create(fr_model_scorer **out, const fr_model *m, fr_pool *pool,
                              const uint32_t *user_map, const uint32_t *item_map);
void fr_model_scorer_free(fr_model_scorer *s);
void fr_model_scorer_set_history(fr_model_scorer *s, const fr_dataset *d);
void fr_model_scorer_fn(void *ctx, uint32_t user, const uint32_t *items, size_t n, float *scores_out, int worker);
fr_err fr_model_scorer_status(const fr_model_scorer *s);
fr_err fr_model_evaluate_with(fr_model_scorer *s, const fr_model *m, const fr_dataset *train,
                              const fr_dataset *test, const fr_negatives *negs, const fr_eval_opts *o,
                              fr_pool *pool, fr_eval_result *r);

typedef enum fr_loop_stop { FR_LOOP_DONE, FR_LOOP_CALLBACK, FR_LOOP_PATIENCE, FR_LOOP_TIME, FR_LOOP_PRIVACY, ... } fr_loop_stop;
const char *fr_loop_stop_name(fr_loop_stop s);
typedef struct fr_loop_step { ...; } fr_loop_step;
typedef int (*fr_loop_callback)(void *user, const fr_loop_step *step);
fr_err fr_loop_step_json(const fr_loop_step *s, char *buf, size_t cap, size_t *len);
typedef struct fr_loop_summary { uint32_t completed; uint32_t ran; fr_loop_stop stop; bool evaluated;
                                 fr_eval_result last; uint32_t best_step; double best; fr_eval_result best_eval;
                                 double epsilon; ...; } fr_loop_summary;
typedef struct fr_provenance { ...; } fr_provenance;
fr_err fr_provenance_save_model(const fr_model *m, const char *path, const fr_provenance *p, const fr_data *d);

typedef struct cli_train_embed {
    const fr_dataset *dataset;
    const char *describe;
    fr_loop_callback on_step;
    void *user;
    bool silent;
    fr_model *model;
    fr_data *data;
    fr_provenance prov;
    fr_loop_summary summary;
    ...;
} cli_train_embed;
int cli_train_embedded(int argc, char **argv, cli_train_embed *e);
void cli_train_embed_free(cli_train_embed *e);
typedef struct cli_model_embed {
    fr_model *model;
    const fr_model_meta *meta;
    fr_data *data;
    const uint32_t *user_map;
    const uint32_t *item_map;
    ...;
} cli_model_embed;
int cli_load_embedded(const char *model_path, const char *data, const fr_dataset *dataset, const char *describe,
                      cli_model_embed *out);
void cli_load_embed_free(cli_model_embed *m);

extern "Python" int _fedrec_on_step(void *user, const fr_loop_step *step);
"""

ffibuilder = FFI()
ffibuilder.cdef(CDEF)
ffibuilder.set_source(
    "fedrec._fedrec",
    '#include "fedrec/fedrec.h"\n#include "cli/embed.h"\n',
    include_dirs=[os.path.join(ROOT, "include"), os.path.join(ROOT, "src")],
    libraries=["fedrec_embed"],
    extra_link_args=["-Wl,-rpath,$ORIGIN"],
    extra_compile_args=["-std=c11", "-D_POSIX_C_SOURCE=200809L"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
