/* Fingerprints of datasets: what a checkpoint or a model file records of the training
 * data it was made from, so a resume or an evaluation on other data (another file, split
 * or seed that happens to have the same shape) is refused instead of silently mixing.
 * The CRC-32C covers the raw ids of both maps (and their strings, for string ids), every user's row offsets, items, ratings
 * and (when the data has them) timestamps: any change of content changes it. Not a
 * cryptographic hash: it catches mistakes, not forgeries. */
#include <stdio.h>

#include "data/dataset.h"

void fr_dataset_fingerprint(const fr_dataset *d, fr_fingerprint *f) {
    memset(f, 0, sizeof *f);
    f->users = d->n_users;
    f->items = d->n_items;
    f->interactions = d->n;
    uint32_t c = 0;
    const fr_idmap *maps[2] = {d->users, d->items};
    for (int k = 0; k < 2; k++)
        if (maps[k] && maps[k]->raw) c = fr_crc32c(c, maps[k]->raw, (size_t)maps[k]->n * sizeof *maps[k]->raw);
    /* String ids: their raw ids are interning numbers, so the strings themselves count
     * (each with its NUL, so "ab","c" differs from "a","bc"); integer maps add nothing. */
    for (int k = 0; k < 2; k++)
        if (maps[k] && maps[k]->str)
            for (uint32_t x = 0; x < maps[k]->n; x++) c = fr_crc32c(c, maps[k]->str[x], strlen(maps[k]->str[x]) + 1);
    c = fr_crc32c(c, d->ptr, ((size_t)d->n_users + 1) * sizeof *d->ptr);
    if (d->n) {
        c = fr_crc32c(c, d->item, (size_t)d->n * sizeof *d->item);
        c = fr_crc32c(c, d->rating, (size_t)d->n * sizeof *d->rating);
        if (d->has_time) c = fr_crc32c(c, d->time, (size_t)d->n * sizeof *d->time);
    }
    f->crc = c;
}

bool fr_fingerprint_equal(const fr_fingerprint *a, const fr_fingerprint *b) {
    return a->users == b->users && a->items == b->items && a->interactions == b->interactions && a->crc == b->crc;
}

void fr_fingerprint_describe(const fr_fingerprint *f, char *buf, size_t cap) {
    snprintf(buf, cap, "%u users, %u items, %llu interactions, CRC-32C %08x", f->users, f->items,
             (unsigned long long)f->interactions, f->crc);
}
