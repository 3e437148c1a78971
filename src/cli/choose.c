/* The model of `fedrec train` when --model is not given, and the check of one that is:
 * the data decides (see choose.h). */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/choose.h"
#include "cli/cli.h"
#include "cli/embed.h"
#include "fedrec/run.h"

/* The evaluation negatives the data comes with: --negatives, or an NCF directory's
 * test.negative; NULL if none (a malloc'd path otherwise). */
static char *given_negatives(const fr_source *src) {
    const char *p = src->negatives;
    char *path = NULL;
    if (!p && src->data && !src->test) {
        struct stat st;
        size_t n = strlen(src->data) + sizeof "/test.negative";
        if (stat(src->data, &st) == 0 && S_ISDIR(st.st_mode) && (path = malloc(n))) {
            snprintf(path, n, "%s/test.negative", src->data);
            if (stat(path, &st) != 0) { free(path); path = NULL; }
        }
        return path;
    }
    return p ? strdup(p) : NULL;
}

int cli_choose_model(const char *model, fr_model_kind *kind, fr_source *src, fr_data **data, const char **why,
                     const char **note) {
    const fr_dataset *tr = fr_data_train(*data), *te = fr_data_test(*data);
    *why = *note = NULL;
    float v = 0;
    if (model) {
        if (fr_run_check_data(*kind, tr, te)) {
            fprintf(stderr, "fedrec train: --model %s: %s\n", model, fr_errmsg());
            return 2;
        }
        /* a ranking model asked for on explicit ratings, with no evaluation negatives given
         * (an NCF split's say that ranking is meant): every rated item becomes a positive */
        char *negs = given_negatives(src);
        if (!fr_model_kind_is_explicit(*kind) && *kind != FR_MODEL_POP && !negs && !fr_dataset_implicit(tr) &&
            !fr_run_data_implicit(tr, te, &v))
            *note = "the ratings differ (explicit feedback), and a ranking model learns which items each user "
                    "rated: every rating is a positive, a low one as much as a high one (--model mf predicts the "
                    "ratings instead)";
        free(negs);
        return 0;
    }
    char *negs = given_negatives(src);
    bool implicit = fr_run_data_implicit(tr, te, &v);
    bool read_implicit = fr_dataset_implicit(tr); /* --implicit, a count column, no rating column */
    if (!implicit && !read_implicit && !negs) {
        *kind = FR_MODEL_MF;
        *why = "the ratings differ (explicit feedback), so a rating model; --model bias is its baseline";
        return 0;
    }
    static char because[1024];
    if (read_implicit)
        snprintf(because, sizeof because, "the file was read as implicit feedback (every row a positive; a count "
                 "or weight column is not a rating), so a ranking model; --model bpr, gmf, mlp or pop for others");
    else if (implicit)
        snprintf(because, sizeof because, "every rating is %g (implicit feedback), so a ranking model; --model bpr, "
                 "gmf, mlp or pop for others", (double)v);
    else
        snprintf(because, sizeof because, "the data comes with evaluation negatives (%s), so a ranking model; "
                 "--model mf predicts its ratings instead", negs);
    free(negs);
    *why = because;
    *kind = FR_MODEL_NEUMF;
    src->explicit_ratings = false; /* a ranking model is evaluated on negatives: load them */
    fr_data_free(*data);
    *data = NULL;
    fr_err e = cli_data_load(data, src);
    return e ? cli_fail(e, "train") : 0;
}
