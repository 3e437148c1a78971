/* Side features for the kinds that read them (fr_model_kind_uses_features: lightfm, fm):
 * the metadata found beside the data (fr_data_load_meta: ml-100k's u.user and u.item for
 * ml-100k-loo) and the feature files the user gives, attached to the model config. */
#include <stdio.h>

#include "cli/cli.h"
#include "cli/features.h"

int cli_features_attach(const char *cmd, fr_data *data, const char *user_file, const char *item_file,
                        fr_model_config *mc, bool quiet) {
    if (!fr_model_kind_uses_features(mc->kind)) return 0;
    const fr_dataset *tr = fr_data_train(data), *te = fr_data_test(data);
    fr_err e = fr_data_load_meta(data);
    if (e && !quiet) fprintf(stderr, "fedrec %s: note: metadata beside the data not read: %s\n", cmd, fr_errmsg());
    uint32_t nu = fr_dataset_n_users(tr), ni = fr_dataset_n_items(tr);
    if (te && fr_dataset_n_users(te) > nu) nu = fr_dataset_n_users(te);
    if (te && fr_dataset_n_items(te) > ni) ni = fr_dataset_n_items(te);
    fr_features *f = NULL;
    if ((e = fr_features_create(&f, nu, ni))) return cli_fail(e, cmd);
    e = fr_features_from_meta(f, tr);
    const char *files[2] = {user_file, item_file};
    const fr_feature_side sides[2] = {FR_FEAT_USER, FR_FEAT_ITEM};
    for (int s = 0; s < 2 && !e; s++) {
        if (!files[s]) continue;
        uint64_t skipped = 0;
        e = fr_features_load(f, sides[s], files[s], sides[s] == FR_FEAT_USER ? fr_dataset_users(tr) : fr_dataset_items(tr),
                             &skipped);
        if (!e && skipped && !quiet)
            fprintf(stderr, "fedrec %s: note: %s: %llu lines name %s the data does not have; skipped\n", cmd, files[s],
                    (unsigned long long)skipped, s ? "items" : "users");
    }
    if (!e) e = fr_model_config_set_features(mc, f);
    if (!e && !quiet) {
        uint64_t nnz[2] = {0, 0};
        for (int s = 0; s < 2; s++)
            for (uint32_t r = 0; r < fr_features_rows(f, sides[s]); r++) nnz[s] += fr_features_of(f, sides[s], r, NULL, NULL);
        fprintf(stderr, "fedrec %s: features: %u user features (%.1f per user), %u item features (%.1f per item)%s\n",
                cmd, fr_features_count(f, FR_FEAT_USER), nu ? (double)nnz[0] / nu : 0.0,
                fr_features_count(f, FR_FEAT_ITEM), ni ? (double)nnz[1] / ni : 0.0,
                nnz[0] + nnz[1] ? "" : ": none found (ids only; --user-features / --item-features FILE add some)");
    }
    fr_features_free(f);
    return e ? cli_fail(e, cmd) : 0;
}
