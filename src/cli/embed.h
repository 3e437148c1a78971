/* `fedrec train` as a function, for a program that embeds it (the Python package,
 * python/): the same options, parsed and checked by the same code, the same data rules,
 * the same run, and the trained model handed back instead of freed. The Python keyword
 * arguments are the command's options, so their names, defaults and checks cannot drift.
 *
 * The command still reports a usage error or a failure on standard error (the embedder
 * captures it); with `silent` it prints nothing else (no header, progress or summary).
 * Not reentrant: one embedded run at a time in a process (the embedder serialises them).
 * Exported from the embedding library (libfedrec_embed, CMakeLists.txt) only. */
#ifndef FEDREC_SRC_CLI_EMBED_H
#define FEDREC_SRC_CLI_EMBED_H
#include "fedrec/fedrec.h"

#define CLI_EMBED_API __attribute__((visibility("default")))

typedef struct cli_train_embed {
    /* in */
    const fr_dataset *dataset; /* data in memory to split by the options (--split, --seed),
                                  as fr_data_from_dataset; NULL: --data or the synthetic set */
    const char *describe;      /* its name in messages and provenance (NULL: "data in memory") */
    fr_loop_callback on_step;  /* called after the command's own handling of each step; its
                                  nonzero return stops the run after that step */
    void *user;
    bool silent;               /* no header, progress lines or summary */
    /* out, on success (status 0): the caller owns model, data and prov */
    fr_model *model;           /* the trained model */
    fr_data *data;             /* the data it was trained and evaluated on */
    fr_provenance prov;        /* what fr_provenance_save_model records (as --out) */
    fr_loop_summary summary;   /* how the loop ended, its final and best metrics */
} cli_train_embed;

/* Runs `fedrec train` with argv (argv[0] is "train") and the embedder's hooks. Returns the
 * command's exit status: 0, 1 (a failure), 2 (a usage error); the message is on standard
 * error. On success e's out fields are set (release them with cli_train_embed_free). */
CLI_EMBED_API int cli_train_embedded(int argc, char **argv, cli_train_embed *e);
/* Frees e's out fields (model, data, provenance). */
CLI_EMBED_API void cli_train_embed_free(cli_train_embed *e);

/* A model file loaded as `fedrec eval` and `fedrec recommend` load it: the model, the data
 * its provenance records (or `data` instead) reloaded and checked against its fingerprint,
 * and the maps from the data's dense ids to the model's rows (UINT32_MAX: a row the model
 * lacks); a graph model gets its training graph. */
typedef struct cli_model_embed {
    fr_model *model;
    const fr_model_meta *meta;      /* the file's meta (ids, config_json) */
    fr_data *data;
    const uint32_t *user_map, *item_map;
    void *priv_;
} cli_model_embed;
/* 0, or the exit status (1, 2) after printing why on standard error. */
CLI_EMBED_API int cli_load_embedded(const char *model_path, const char *data, const fr_dataset *dataset,
                                    const char *describe, cli_model_embed *out);
CLI_EMBED_API void cli_load_embed_free(cli_model_embed *m);

/* The data of a run as the command loads it: the embedded run's dataset when there is
 * one (cli_embed_set_dataset), else fr_data_load(s). */
fr_err cli_data_load(fr_data **out, const fr_source *s);
/* Sets (NULL: clears) the dataset cli_data_load splits, and its description. */
void cli_embed_set_dataset(const fr_dataset *d, const char *describe);

#endif
