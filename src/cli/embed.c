/* The data an embedded run or load splits (embed.h): set by cli_train_embedded and
 * cli_load_embedded for the duration of the call. */
#include "cli/embed.h"

static const fr_dataset *embed_dataset;
static const char *embed_describe;

void cli_embed_set_dataset(const fr_dataset *d, const char *describe) {
    embed_dataset = d;
    embed_describe = describe;
}

fr_err cli_data_load(fr_data **out, const fr_source *s) {
    if (embed_dataset) {
        fr_source t = *s; /* the data is the one in memory, whatever a provenance names */
        t.data = t.test = NULL;
        return fr_data_from_dataset(out, embed_dataset, &t, embed_describe);
    }
    return fr_data_load(out, s);
}
