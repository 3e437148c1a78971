/* `fedrec train` embedded (src/cli/embed.h, the Python package's entry): the model, data
 * and provenance are handed over and freed by cli_train_embed_free (LeakSanitizer checks
 * nothing else is kept), the callback is chained and can stop the run, a usage error
 * hands nothing over, a dataset in memory is split as the same rows from a file (the same
 * model), the saved file is the one `--out` writes, and cli_load_embedded reads it back. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/embed.h"
#include "testutil.h"

static int count_steps(void *user, const fr_loop_step *s) {
    int *n = user;
    ++*n;
    return s->index == 2; /* stop after the second */
}

/* Runs the embedded command with a NULL-terminated list of arguments after "train". */
static int embedded(cli_train_embed *e, const char *const *args) {
    char *argv[32];
    int argc = 0;
    argv[argc++] = "train";
    for (; *args; args++) argv[argc++] = (char *)*args;
    argv[argc] = NULL;
    fflush(stderr);
    return cli_train_embedded(argc, argv, e);
}

static char *ratings(const char *dir, int64_t **u, int64_t **i, float **r, int64_t **t, size_t *n) {
    char text[1 << 15], *p = text;
    *u = malloc(600 * sizeof **u), *i = malloc(600 * sizeof **i), *r = malloc(600 * sizeof **r), *t = malloc(600 * sizeof **t);
    *n = 0;
    for (int a = 0; a < 40; a++)
        for (int k = 0; k < 10; k++, ++*n) {
            (*u)[*n] = a + 1;
            (*i)[*n] = 1 + (a * 7 + k * 5) % 50;
            (*r)[*n] = (float)(1 + (a + k) % 5);
            (*t)[*n] = 1000 + 10 * a + k;
            p += sprintf(p, "%lld\t%lld\t%g\t%lld\n", (long long)(*u)[*n], (long long)(*i)[*n], (double)(*r)[*n],
                         (long long)(*t)[*n]);
        }
    return tu_write(dir, "r.tsv", text);
}

Test(embed, hands_the_model_over_and_stops_on_request) {
    char *dir = tu_tmpdir();
    int64_t *u, *i, *t;
    float *r;
    size_t n;
    char *path = ratings(dir, &u, &i, &r, &t, &n);
    int steps = 0;
    cli_train_embed e = {.on_step = count_steps, .user = &steps, .silent = true};
    const char *args[] = {"--data", path, "--rounds", "5", "--quiet", NULL};
    cr_assert_eq(embedded(&e, args), 0);
    cr_assert_eq(steps, 2);
    cr_assert_eq(e.summary.completed, 2);
    cr_assert_eq(e.summary.stop, FR_LOOP_CALLBACK);
    cr_assert_not_null(e.model);
    cr_assert_not_null(e.data);
    cr_assert_eq(fr_dataset_n_users(fr_data_train(e.data)), 40);
    char *saved = malloc(strlen(dir) + 16);
    sprintf(saved, "%s/e.fr", dir);
    cr_assert_eq(fr_provenance_save_model(e.model, saved, &e.prov, e.data), FR_OK, "%s", fr_errmsg());
    cli_train_embed_free(&e);
    cr_assert_null(e.model);
    /* the file loads as fedrec eval loads it, with the data its provenance names */
    cli_model_embed m;
    cr_assert_eq(cli_load_embedded(saved, NULL, NULL, NULL, &m), 0);
    cr_assert_not_null(m.model);
    cr_assert_eq(fr_model_config_of(m.model)->n_users, 40);
    cr_assert_not_null(m.user_map);
    cli_load_embed_free(&m);
    /* a usage error: status 2, nothing handed over */
    const char *bad[] = {"--rounds", "0", NULL};
    cr_assert_eq(embedded(&e, bad), 2);
    cr_assert_null(e.model);
    cr_assert_null(e.data);
    /* a dataset in memory: the same rows as the file give the same model */
    fr_dataset *all = NULL;
    cr_assert_eq(fr_dataset_from_arrays(&all, n, u, i, r, t), FR_OK);
    cli_train_embed a = {.silent = true}, b = {.dataset = all, .describe = "frame", .silent = true};
    const char *fa[] = {"--data", path, "--rounds", "2", NULL}, *fb[] = {"--rounds", "2", NULL};
    cr_assert_eq(embedded(&a, fa), 0);
    cr_assert_eq(embedded(&b, fb), 0);
    size_t np = fr_model_n_params(a.model);
    cr_assert_eq(np, fr_model_n_params(b.model));
    cr_assert_eq(memcmp(fr_model_params_const(a.model), fr_model_params_const(b.model), np * sizeof(float)), 0);
    cr_assert_str_eq(fr_data_describe(b.data), "frame (split loo)");
    /* and a model of data in memory loads again with that data */
    sprintf(saved, "%s/b.fr", dir);
    cr_assert_eq(fr_provenance_save_model(b.model, saved, &b.prov, b.data), FR_OK, "%s", fr_errmsg());
    cr_assert_eq(cli_load_embedded(saved, NULL, all, "frame", &m), 0);
    cr_assert_eq(memcmp(fr_model_params_const(m.model), fr_model_params_const(b.model), np * sizeof(float)), 0);
    cli_load_embed_free(&m);
    cli_train_embed_free(&a);
    cli_train_embed_free(&b);
    fr_dataset_free(all);
    free(u), free(i), free(r), free(t), free(saved), free(path);
    tu_rmtree(dir);
    free(dir);
}
