/* Fuzz entry points (see targets.h). Each writes the input to a private temp file when
 * the code under test reads files, so readers are fuzzed through their real path. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/dataset.h"
#include "fuzz/targets.h"

#include "fedrec/fl.h"
#include "fl/fl_internal.h"
#include "fedrec/runtime.h"
#include "runtime/runtime_internal.h"
#include "runtime/net/pack.h"
#include "runtime/net/transport.h"
#include "runtime/net/wire.h"
#include "fedrec/net_client.h"
#include "fedrec/model.h"
#include "fedrec/pairset.h"
#include "fedrec/privacy.h"

/* Rewrites the header's length and CRC of a message of n bytes, so that mutations reach
 * the body parser. */
static void reseal(uint8_t *m, size_t n) {
    uint64_t len = n;
    uint32_t crc = fr_crc32c(0, m + FR_MSG_HEADER_BYTES, n - FR_MSG_HEADER_BYTES);
    for (int i = 0; i < 8; i++) m[8 + i] = (uint8_t)(len >> (8 * i));
    for (int i = 0; i < 4; i++) m[16 + i] = (uint8_t)(crc >> (8 * i));
}

/* result: the RESULT decoder against a fixed shape (dense 3, tables of widths 4 and 1 with
 * 16 and 1000 rows), on the raw bytes and again resealed. Whatever decodes must re-encode
 * to the same bytes (the encoding is canonical). */
static int run_result(const uint8_t *data, size_t n) {
    static const uint32_t widths[2] = {4, 1}, rows[2] = {16, 1000};
    const fr_update_shape shape = {3, 2, widths, rows};
    uint8_t *m = malloc(n ? n : 1);
    fr_result *r = NULL;
    if (!m || fr_result_create(&r) != FR_OK) { free(m); return 0; }
    if (n) memcpy(m, data, n);
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) {
            if (n < FR_MSG_HEADER_BYTES) break;
            reseal(m, n);
        }
        if (fr_result_decode(r, m, n, &shape) != FR_OK) continue;
        uint8_t *b = NULL;
        size_t bn = 0;
        if (fr_result_encoded_size(r) != n) abort();
        if (fr_result_encode(r, &b, &bn) != FR_OK || bn != n || memcmp(b, m, n) != 0) abort();
        fr_msg_free(b);
    }
    fr_result_free(r);
    free(m);
    return 0;
}

/* cresult: the compressed RESULT decoder (fri_result_decompress) against the result
 * target's shape, on the raw bytes and resealed. What decodes is an ordinary result: its
 * uncompressed encoding decodes to the same values. */
static int run_cresult(const uint8_t *data, size_t n) {
    static const uint32_t widths[2] = {4, 1}, rows[2] = {16, 1000};
    const fr_update_shape shape = {3, 2, widths, rows};
    uint8_t *m = malloc(n ? n : 1);
    fr_result *r = NULL, *r2 = NULL;
    if (!m || fr_result_create(&r) != FR_OK || fr_result_create(&r2) != FR_OK) goto done;
    if (n) memcpy(m, data, n);
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) {
            if (n < FR_MSG_HEADER_BYTES) break;
            reseal(m, n);
        }
        if (fri_result_decompress(r, m, n, &shape) != FR_OK) continue;
        r->flags = 0;
        uint8_t *b = NULL;
        size_t bn = 0;
        if (fr_result_encode(r, &b, &bn) != FR_OK || fr_result_decode(r2, b, bn, &shape) != FR_OK) abort();
        if (memcmp(r->dense, r2->dense, 3 * sizeof *r->dense) != 0) abort();
        fr_msg_free(b);
    }
done:
    fr_result_free(r);
    fr_result_free(r2);
    free(m);
    return 0;
}

/* task: the TASK decoder on the raw bytes and resealed. A task that decodes must
 * re-encode to the same bytes from its decoded parts (round, configs, parameters). */
static int run_task(const uint8_t *data, size_t n) {
    uint8_t *m = malloc(n ? n : 1);
    fr_task *t = NULL;
    if (!m || fr_task_create(&t) != FR_OK) { free(m); return 0; }
    if (n) memcpy(m, data, n);
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) {
            if (n < FR_MSG_HEADER_BYTES) break;
            reseal(m, n);
        }
        if (fr_task_decode(t, m, n) != FR_OK) continue;
        fri_buf cb = {0}, tb = {0};
        if (fri_fl_config_block(&cb, fr_task_model_config(t), fr_task_fl_config(t)) != FR_OK) abort();
        if (fr_crc32c(0, cb.data, cb.len) != fr_task_config_crc(t)) abort();
        fr_err e = fri_task_rows_only(t) /* a rows TASK: the dense tensors only */
                       ? fri_task_encode_rows(&tb, fr_task_round(t), cb.data, cb.len, fr_task_config_crc(t),
                                              fr_task_bound(t), fr_task_dp_clip(t), fr_task_model(t))
                       : fri_task_encode_dp(&tb, fr_task_round(t), cb.data, cb.len, fr_task_config_crc(t),
                                            fr_task_bound(t), fr_task_dp_clip(t), fr_task_model(t));
        if (e != FR_OK) abort();
        /* quantized parameters (flag bit 1) are not re-encoded: their scales are the sender's choice */
        bool quantized = fri_get_u32(m + FR_MSG_HEADER_BYTES + 12) & 2;
        if (!quantized && (tb.len != n || memcmp(tb.data, m, n) != 0)) abort();
        fri_buf_free(&cb);
        fri_buf_free(&tb);
    }
    fr_task_free(t);
    free(m);
    return 0;
}

/* Writes the CRC-32C of data[0, n-4) into its last 4 bytes (little-endian): the model
 * file, the server state and the checkpoint all end with one, and a fuzzer almost never
 * gets past it on its own. */
static void fix_tail_crc(uint8_t *m, size_t n) {
    if (n < 4) return;
    uint32_t c = fr_crc32c(0, m, n - 4);
    for (int i = 0; i < 4; i++) m[n - 4 + i] = (uint8_t)(c >> (8 * i));
}

/* The model-file decoder on arbitrary bytes (decoded in memory, as fr_model_load does
 * after reading the file). */
static int fuzz_modelfile(const uint8_t *data, size_t n) {
    fr_model *m = NULL;
    fr_model_meta meta;
    if (fr_model_decode(&m, data, n, "<fuzz>", &meta) == FR_OK) {
        fr_model_meta_destroy(&meta);
        fr_model_free(m);
    }
    return 0;
}

/* Writes bytes to dir/name (dir NULL: a fresh temp file named like name). Returns a
 * malloc'd path or NULL. */
static char *write_temp(const uint8_t *data, size_t n, const char *dir, const char *name) {
    const char *base = getenv("TMPDIR");
    if (!base || !*base) base = "/tmp";
    size_t cap = strlen(base) + strlen(name) + (dir ? strlen(dir) : 0) + 64;
    char *p = malloc(cap);
    if (!p) return NULL;
    int fd;
    if (dir) {
        snprintf(p, cap, "%s/%s", dir, name);
        FILE *f = fopen(p, "wb");
        if (!f) { free(p); return NULL; }
        if (n && fwrite(data, 1, n, f) != n) { fclose(f); free(p); return NULL; }
        fclose(f);
        return p;
    }
    /* The name's suffix matters for detection (".rating"), so it goes last. */
    snprintf(p, cap, "%s/fedrec-fuzz-XXXXXX", base);
    fd = mkstemp(p);
    if (fd < 0) { free(p); return NULL; }
    size_t off = 0;
    while (off < n) {
        ssize_t w = write(fd, data + off, n - off);
        if (w <= 0) break;
        off += (size_t)w;
    }
    close(fd);
    return p;
}

static int run_format(const uint8_t *data, size_t n, fr_format fmt, bool skip) {
    char *p = write_temp(data, n, NULL, "r");
    if (!p) return 0;
    fr_load_opts o;
    fr_load_opts_default(&o);
    o.format = fmt;
    o.skip_bad_lines = skip;
    fr_dataset *d = NULL;
    fr_load_stats st;
    if (fr_dataset_load(&d, p, &o, &st) == FR_OK) {
        /* Touch the result so a broken build shows. */
        for (uint32_t u = 0; u < fr_dataset_n_users(d); u++) (void)fr_dataset_user(d, u, NULL, NULL, NULL);
        fr_dataset_free(d);
    }
    unlink(p);
    free(p);
    return 0;
}

/* The last input byte picks strict or skip_bad_lines, so both paths are fuzzed. */
static bool skip_flag(const uint8_t *data, size_t n) { return n && (data[n - 1] & 0x80); }

static int run_ml100k(const uint8_t *data, size_t n) { return run_format(data, n, FR_FORMAT_ML100K, skip_flag(data, n)); }
static int run_ml1m(const uint8_t *data, size_t n) { return run_format(data, n, FR_FORMAT_ML1M, skip_flag(data, n)); }
static int run_csv(const uint8_t *data, size_t n) { return run_format(data, n, FR_FORMAT_CSV, skip_flag(data, n)); }
static int run_ncf(const uint8_t *data, size_t n) { return run_format(data, n, FR_FORMAT_NCF, skip_flag(data, n)); }

/* Delimited: the first byte chooses the delimiter, header and columns; the rest is the file. */
static int run_delimited(const uint8_t *data, size_t n) {
    if (n == 0) return 0;
    uint8_t c = data[0];
    static const char *const delims[8] = {NULL, "\t", ",", ";", "|", "::", " ", NULL};
    static const char *const named[4][4] = {
        {"user", "item", "rating", "time"}, {"u", "i", NULL, NULL}, {"userId", "movieId", "rating", NULL},
        {"item", "user", NULL, "ts"}};
    static const char *const pos[4][4] = {{"1", "2", "3", "4"}, {"1", "2", NULL, NULL}, {"2", "1", "3", NULL},
                                          {"3", "1", NULL, "2"}};
    fr_load_opts o;
    fr_load_opts_default(&o);
    o.format = (c & 0x40) ? FR_FORMAT_AUTO : FR_FORMAT_DELIMITED;
    o.delimiter = delims[c & 7];
    o.has_header = (c >> 3) & 1;
    const char *const *cols = o.has_header ? named[(c >> 4) & 3] : pos[(c >> 4) & 3];
    o.col_user = cols[0];
    o.col_item = cols[1];
    o.col_rating = cols[2];
    o.col_time = cols[3];
    o.skip_bad_lines = c & 0x80;
    o.implicit = (c & 0x30) == 0x30;
    o.implicit_threshold = 3;
    /* AUTO: counts kept as weights, or a first line that is data whatever it holds. */
    o.implicit_weight = (c & 0x70) == 0x60;
    o.no_header = (c & 0x78) == 0x50;
    char *p = write_temp(data + 1, n - 1, NULL, "d");
    if (!p) return 0;
    fr_dataset *d = NULL;
    if (fr_dataset_load(&d, p, &o, NULL) == FR_OK) fr_dataset_free(d);
    unlink(p);
    free(p);
    return 0;
}

static fr_dataset *like_dataset(void) {
    int64_t u[64], i[64];
    for (int k = 0; k < 64; k++) { u[k] = k % 16; i[k] = (k * 5) % 40; }
    fr_dataset *d = NULL;
    if (fr_dataset_from_arrays(&d, 64, u, i, NULL, NULL) != FR_OK) return NULL;
    return d;
}

/* Negatives: the first byte chooses dense ids (no dataset) or mapping through one. */
static int run_negatives(const uint8_t *data, size_t n) {
    if (n == 0) return 0;
    fr_dataset *like = (data[0] & 1) ? like_dataset() : NULL;
    char *p = write_temp(data + 1, n - 1, NULL, "n");
    if (p) {
        fr_negatives *ng = NULL;
        if (fr_negatives_load(&ng, p, like) == FR_OK) {
            uint64_t sum = 0;
            for (uint32_t u = 0; u < ng->n_users; u++) sum += ng->ptr[u + 1] - ng->ptr[u];
            if (sum != ng->ptr[ng->n_users]) abort();
            fri_free(ng->ptr);
            fri_free(ng->items);
            fri_free(ng);
        }
        unlink(p);
        free(p);
    }
    fr_dataset_free(like);
    return 0;
}

/* Metadata: the first byte names the file written into a fresh directory. */
static int run_meta(const uint8_t *data, size_t n) {
    if (n == 0) return 0;
    static const char *const names[6] = {"u.item", "u.user", "movies.dat", "users.dat", "movies.csv", "u.genre"};
    const char *base = getenv("TMPDIR");
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/fedrec-fuzz-meta-XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(dir)) return 0;
    const char *name = names[data[0] % 6];
    char *p = write_temp(data + 1, n - 1, dir, name);
    char *p2 = NULL;
    if (data[0] % 6 == 5) { /* u.genre is only read with u.item: add a valid one */
        static const char item[] = "1|T (1995)|||u|0|0|0|1|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0\n";
        p2 = write_temp((const uint8_t *)item, sizeof item - 1, dir, "u.item");
    }
    fr_dataset *d = like_dataset();
    if (d && p) {
        if (fr_dataset_load_meta(d, dir) == FR_OK) {
            const fr_meta *m = fr_dataset_meta(d);
            for (uint32_t i = 0; i < fr_dataset_n_items(d); i++) {
                const char *t = fr_meta_item_title(m, i), *g = fr_meta_item_genres(m, i);
                if (t) (void)strlen(t);
                if (g) (void)strlen(g);
            }
            for (uint32_t u = 0; u < fr_dataset_n_users(d); u++) {
                const char *a = fr_meta_user_attr(m, u, "zip");
                if (a) (void)strlen(a);
            }
        }
    }
    fr_dataset_free(d);
    if (p) { unlink(p); free(p); }
    if (p2) { unlink(p2); free(p2); }
    rmdir(dir);
    return 0;
}

/* NCF id maps: a fresh directory holds a small train.rating (users 0..3, items 0..5) and
 * both maps; the first byte chooses which map the input replaces (users.map or
 * items.map). A load that succeeds must give maps that find every raw id they hold. */
static int run_ncfmap(const uint8_t *data, size_t n) {
    if (n == 0) return 0;
    static const char train[] = "0\t0\t5\t1\n0\t1\t4\t2\n1\t2\t3\t1\n2\t3\t2\t2\n3\t5\t1\t1\n";
    static const char users[] = "# source: /nowhere/u.data\n0\t10\n1\t11\n2\t12\n3\t13\n";
    static const char items[] = "0\t7\n1\t5\n2\t3\n3\t1\n4\t100000\n5\t2147483647\n";
    const char *base = getenv("TMPDIR");
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/fedrec-fuzz-ncfmap-XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(dir)) return 0;
    bool fuzz_users = !(data[0] & 1);
    char *pt = write_temp((const uint8_t *)train, sizeof train - 1, dir, "train.rating");
    char *pu = fuzz_users ? write_temp(data + 1, n - 1, dir, "users.map")
                          : write_temp((const uint8_t *)users, sizeof users - 1, dir, "users.map");
    char *pi = fuzz_users ? write_temp((const uint8_t *)items, sizeof items - 1, dir, "items.map")
                          : write_temp(data + 1, n - 1, dir, "items.map");
    if (pt && pu && pi) {
        fr_load_opts o;
        fr_load_opts_default(&o);
        o.format = FR_FORMAT_NCF;
        fr_dataset *d = NULL;
        if (fr_dataset_load(&d, pt, &o, NULL) == FR_OK) {
            const fr_idmap *maps[2] = {fr_dataset_users(d), fr_dataset_items(d)};
            for (int k = 0; k < 2; k++)
                for (uint32_t x = 0; x < fr_idmap_size(maps[k]); x++)
                    if (fr_idmap_find(maps[k], fr_idmap_raw(maps[k], x)) != (int64_t)x) abort();
            if (fr_dataset_source(d)) (void)strlen(fr_dataset_source(d));
            fr_dataset_free(d);
        }
    }
    if (pt) { unlink(pt); free(pt); }
    if (pu) { unlink(pu); free(pu); }
    if (pi) { unlink(pi); free(pi); }
    rmdir(dir);
    return 0;
}

/* modelfile_crc: the model-file decoder with the header's length and the CRC rewritten
 * to match, so mutations reach the config, the tensor table, the ids and the weights. */
static int run_modelfile_crc(const uint8_t *data, size_t n) {
    uint8_t *m = malloc(n ? n : 1);
    if (!m) return 0;
    if (n) memcpy(m, data, n);
    if (n >= 24) {
        for (int i = 0; i < 8; i++) m[12 + i] = (uint8_t)((uint64_t)n >> (8 * i));
        fix_tail_crc(m, n);
    }
    fuzz_modelfile(m, n);
    free(m);
    return 0;
}

/* The federation the state and checkpoint targets load into: a small mf federation over
 * a fixed generated set (the seeds fuzz_seed_state_and_checkpoint writes are its). */
static fr_dataset *g_data;
static fr_sim *g_sim;
static fr_round *g_round;
static int fuzz_federation(void) {
    if (g_sim) return 1;
    fr_gen_opts go;
    fr_gen_opts_default(&go);
    go.users = 12;
    go.items = 10;
    go.interactions = 80;
    go.seed = 3;
    fr_model_config mc;
    fr_fl_config fc;
    fr_model_config_default(&mc, FR_MODEL_MF);
    fr_fl_config_default(&fc, FR_MODEL_MF);
    mc.dim = 2;
    fc.strategy = FR_STRATEGY_FEDADAM; /* server moments in the state too */
    fc.keep_private_optim = true;       /* and kept client state in the checkpoint */
    if (fr_dataset_generate(&g_data, &go) || fr_sim_create(&g_sim, &mc, &fc, g_data, NULL)) return 0;
    mc.n_items = fr_dataset_n_items(g_data);
    mc.seed = fc.seed;
    if (fr_round_create(&g_round, &mc, &fc, fr_dataset_n_users(g_data), 1)) return 0;
    return 1;
}

/* state: the server state loader (fr_round_load) with the CRC rewritten. */
static int run_state(const uint8_t *data, size_t n) {
    if (!fuzz_federation()) return 0;
    uint8_t *m = malloc(n ? n : 1);
    if (!m) return 0;
    if (n) memcpy(m, data, n);
    fix_tail_crc(m, n);
    if (fr_round_load(g_round, m, n, "<fuzz>") == FR_OK) (void)fr_round_completed(g_round);
    free(m);
    return 0;
}

/* checkpoint: the sim's checkpoint loader (controller state + client store) with the
 * outer CRC rewritten (the inner state's CRC is the state target's). */
static int run_checkpoint(const uint8_t *data, size_t n) {
    if (!fuzz_federation()) return 0;
    uint8_t *m = malloc(n ? n : 1);
    if (!m) return 0;
    if (n) memcpy(m, data, n);
    fix_tail_crc(m, n);
    if (fri_sim_checkpoint_decode(g_sim, m, n, "<fuzz>") == FR_OK) (void)fr_sim_model(g_sim);
    free(m);
    return 0;
}

int fuzz_seed_state_and_checkpoint(const char *dir) {
    if (!fuzz_federation()) return 1;
    fr_round_stats st;
    for (int r = 0; r < 2; r++)
        if (fr_sim_round(g_sim, &st)) return 1;
    char p[4096];
    snprintf(p, sizeof p, "%s/checkpoint/valid_two_rounds", dir);
    if (fr_sim_checkpoint_save(g_sim, p)) return 1;
    uint8_t *b = NULL;
    size_t n = 0;
    if (fr_round_save(fr_sim_controller(g_sim), &b, &n)) return 1;
    snprintf(p, sizeof p, "%s/state/valid_two_rounds", dir);
    FILE *f = fopen(p, "wb");
    if (!f || fwrite(b, 1, n, f) != n || fclose(f)) return 1;
    /* the seeds must load into the targets' federation, or fuzzing them tests nothing */
    fr_err e = fr_round_load(g_round, b, n, p);
    fr_msg_free(b);
    snprintf(p, sizeof p, "%s/checkpoint/valid_two_rounds", dir);
    if (!e) e = fr_sim_checkpoint_load(g_sim, p);
    /* a client's state after a step of round 3 (the netc_state target's federation) */
    fr_netc *nc = NULL;
    const uint8_t *tb, *rb;
    size_t tn, rn, sn = 0;
    uint8_t *sb = NULL;
    uint32_t user = 0;
    if (!e) e = fr_netc_create(&nc, g_data, &user, 1, 0, NULL);
    if (!e) e = fr_round_begin(g_round, NULL, NULL);
    if (!e) e = fr_round_task(g_round, 0, &tb, &tn);
    if (!e) e = fr_netc_step(nc, tb, tn, &rb, &rn);
    fr_round_abort(g_round);
    if (!e) e = fr_netc_save_bytes(nc, &sb, &sn);
    if (!e) {
        snprintf(p, sizeof p, "%s/netc_state/valid_round_three", dir);
        f = fopen(p, "wb");
        if (!f || fwrite(sb, 1, sn, f) != sn || fclose(f)) e = FR_ERR_IO;
    }
    fr_msg_free(sb);
    fr_netc_free(nc);
    if (e) fprintf(stderr, "fuzz seeds: %s\n", fr_errmsg());
    return e ? 1 : 0;
}

/* netc_state: a networked client's state file (fr_netc_load_bytes) with its CRC rewritten,
 * loaded into a fresh client 0 of the fixed federation. */
static int run_netc_state(const uint8_t *data, size_t n) {
    if (!fuzz_federation()) return 0;
    uint8_t *m = malloc(n ? n : 1);
    if (!m) return 0;
    if (n) memcpy(m, data, n);
    fix_tail_crc(m, n);
    fr_netc *nc = NULL;
    uint32_t user = 0;
    if (fr_netc_create(&nc, g_data, &user, 1, 0, NULL) == FR_OK) {
        if (fr_netc_load_bytes(nc, m, n, "<fuzz>") == FR_OK) (void)fr_netc_round(nc);
        fr_netc_free(nc);
    }
    free(m);
    return 0;
}

/* pairset: the text form of a model's training pairs (provenance "train_pairs"), as
 * fr_pairset_decode reads it from a model file; what decodes is queried and re-encoded. */
static int run_pairset(const uint8_t *data, size_t n) {
    char *t = malloc(n + 1);
    if (!t) return 0;
    if (n) memcpy(t, data, n);
    t[n] = 0;
    fr_pairset *s = NULL;
    if (fr_pairset_decode(&s, t) == FR_OK) {
        for (int64_t u = 0; u < 8; u++) (void)fr_pairset_has(s, u, 7 - u);
        char *again = NULL;
        if (fr_pairset_encode(s, &again) == FR_OK) fr_pairset_text_free(again);
        fr_pairset_free(s);
    }
    free(t);
    return 0;
}

/* net: the network protocol's decoder (src/runtime/net/wire.c) on the raw bytes and
 * again with the header's length and CRC rewritten, so mutations reach the field checks.
 * A message that decodes must re-encode to the same bytes (the encoding is canonical),
 * by the whole-message encoder and by the prefix encoder followed by its tail. */
static int run_net(const uint8_t *data, size_t n) {
    uint8_t *m = malloc(n ? n : 1);
    if (!m) return 0;
    if (n) memcpy(m, data, n);
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) {
            if (n < FRI_NET_HEADER_BYTES) break;
            uint32_t len = (uint32_t)(n - FRI_NET_HEADER_BYTES);
            fri_put_u32(m + 8, len);
            uint32_t c = fr_crc32c(0, m, 12); /* a header CRC (flag 1, TLS) or the whole message's */
            if (!(fri_get_u16(m + 6) & FRI_NET_FLAG_HEADER_CRC)) c = fr_crc32c(c, m + FRI_NET_HEADER_BYTES, len);
            fri_put_u32(m + 12, c);
        }
        /* the decoder of an authenticated channel (TLS) takes both CRC forms; the plain
         * one exactly the messages without the flag */
        fri_net_msg msg, plain;
        fr_err e = fri_net_decode_on(m, n, (size_t)1 << 20, true, &msg);
        fr_err ep = fri_net_decode(m, n, (size_t)1 << 20, &plain);
        /* the transport's "server full" reply is never an envelope */
        if (fri_net_full_decode(m, n, NULL, NULL) && (e == FR_OK || ep == FR_OK)) abort();
        if (ep == FR_OK && (e != FR_OK || (msg.flags & FRI_NET_FLAG_HEADER_CRC))) abort();
        if (e != FR_OK) continue;
        if (!(msg.flags & FRI_NET_FLAG_HEADER_CRC) && ep != FR_OK) abort();
        uint8_t type = 0;
        uint32_t plen = 0;
        if (fri_net_peek_header_on(m, n, true, &type, &plen) != FR_OK || type != msg.type ||
            plen != n - FRI_NET_HEADER_BYTES)
            abort();
        fri_buf b = {0};
        if (fri_net_encode(&b, &msg) != FR_OK || b.len != n || memcmp(b.data, m, n) != 0) abort();
        if (fri_net_encoded_size(&msg) != n) abort();
        uint8_t pre[FRI_NET_PREFIX_MAX];
        size_t pn = 0;
        if (fri_net_encode_prefix(&msg, pre, sizeof pre, &pn) != FR_OK || pn > n || memcmp(pre, m, pn) != 0) abort();
        fri_buf_free(&b);
        (void)fri_net_type_name(msg.type);
        /* a packed RESULT's body: what unpacks packs again to the same bytes (canonical) */
        if (msg.type == FRI_NET_RESULT && (msg.flags & FRI_NET_FLAG_PACKED)) {
            fri_buf u = {0}, q = {0};
            if (fri_unpack_result(msg.result.body, msg.result.body_len, (size_t)1 << 22, &u) == FR_OK &&
                (!fri_pack_result(u.data, u.len, &q) || q.len != msg.result.body_len ||
                 memcmp(q.data, msg.result.body, q.len) != 0))
                abort();
            fri_buf_free(&u);
            fri_buf_free(&q);
        }
    }
    free(m);
    return 0;
}

/* secagg: the secure aggregation messages. The first byte picks who reads the rest:
 * 0-3 the server collecting the messages of stage 0-3, 4-6 client 0 given the server's
 * keys, forwarded shares or unmasking request. A fixed session (4 clients, every pair,
 * t = 2, 3 words, deterministic secrets) is run up to that point for each input; the
 * message is tried as is and with its body length rewritten (so mutations reach the body
 * parsers). Whatever is accepted must let the session go on without a crash. */
#define SA_N 4
static const int64_t k_sa_x[3] = {5, -7, INT64_MAX / SA_N};

static fr_sa_params sa_params(void) {
    fr_sa_params p = {0};
    p.n = SA_N, p.k = SA_N - 1, p.t = 2, p.len = 3, p.session = 77, p.graph_seed = 1, p.test_seed = 1;
    return p;
}

typedef struct sa_fix {
    fr_sa_server *s;
    fr_sa_client *c[SA_N];
} sa_fix;

static void sa_down(sa_fix *f) {
    for (int u = 0; u < SA_N; u++) fr_sa_client_free(f->c[u]);
    fr_sa_server_free(f->s);
}

/* One client's step of stage st (in: the server's message for it, if any). */
static fr_err sa_step(fr_sa_client *c, int st, const uint8_t *in, size_t in_n, uint8_t **out, size_t *out_n) {
    switch (st) {
    case 0: return fr_sa_client_advertise(c, out, out_n);
    case 1: return fr_sa_client_share(c, in, in_n, out, out_n);
    case 2: return fr_sa_client_mask(c, k_sa_x, in, in_n, out, out_n);
    default: return fr_sa_client_unmask(c, in, in_n, out, out_n);
    }
}

/* Runs every party through stages [0, stage): the server then collects stage `stage`. */
static int sa_up(sa_fix *f, int stage) {
    fr_sa_params p = sa_params();
    memset(f, 0, sizeof *f);
    if (fr_sa_server_create(&f->s, &p)) return -1;
    for (uint32_t u = 0; u < SA_N; u++)
        if (fr_sa_client_create(&f->c[u], &p, u)) return -1;
    for (int st = 0; st < stage; st++) {
        for (uint32_t u = 0; u < SA_N; u++) {
            uint8_t *in = NULL, *out = NULL;
            size_t in_n = 0, out_n = 0;
            if (st > 0 && fr_sa_server_message(f->s, u, &in, &in_n)) return -1;
            fr_err e = sa_step(f->c[u], st, in, in_n, &out, &out_n);
            fr_sa_bytes_free(in, in_n);
            if (!e) e = fr_sa_server_receive(f->s, out, out_n);
            fr_sa_bytes_free(out, out_n);
            if (e) return -1;
        }
        if (fr_sa_server_close(f->s)) return -1;
    }
    return 0;
}

/* Gives the server a message; a refusal is fine (the fuzzed message may have taken this
 * client's place). */
static void sa_offer(fr_sa_server *s, const uint8_t *m, size_t n) {
    if (fr_sa_server_receive(s, m, n)) fr_errmsg_clear();
}

/* Carries an accepted message on to the end of the session. */
static void sa_finish(sa_fix *f) {
    int64_t sum[3];
    while (fr_sa_server_stage(f->s) < FR_SA_UNMASK) {
        int st = (int)fr_sa_server_stage(f->s);
        for (uint32_t u = 0; u < SA_N; u++) {
            if (fr_sa_client_stage(f->c[u]) != (fr_sa_stage)st) continue;
            uint8_t *in = NULL, *out = NULL;
            size_t in_n = 0, out_n = 0;
            if (st > 0 && fr_sa_server_message(f->s, u, &in, &in_n)) continue;
            if (!sa_step(f->c[u], st, in, in_n, &out, &out_n)) sa_offer(f->s, out, out_n);
            fr_sa_bytes_free(in, in_n);
            fr_sa_bytes_free(out, out_n);
        }
        if (fr_sa_server_close(f->s)) return;
    }
    for (uint32_t u = 0; u < SA_N; u++) {
        uint8_t *in = NULL, *out = NULL;
        size_t in_n = 0, out_n = 0;
        if (fr_sa_client_stage(f->c[u]) != FR_SA_UNMASK || fr_sa_server_message(f->s, u, &in, &in_n)) continue;
        if (!fr_sa_client_unmask(f->c[u], in, in_n, &out, &out_n)) sa_offer(f->s, out, out_n);
        fr_sa_bytes_free(in, in_n);
        fr_sa_bytes_free(out, out_n);
    }
    if (fr_sa_server_finish(f->s, sum, NULL)) return; /* an abort is a fine end too */
}

static int run_secagg(const uint8_t *data, size_t n) {
    if (n < 1) return 0;
    int role = data[0] % 7;
    const uint8_t *msg = data + 1;
    size_t mn = n - 1;
    uint8_t *m = malloc(mn ? mn : 1);
    if (!m) return 0;
    if (mn) memcpy(m, msg, mn);
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) {
            if (mn < fr_sa_header_bytes()) break;
            uint64_t body = mn - fr_sa_header_bytes();
            for (int i = 0; i < 8; i++) m[24 + i] = (uint8_t)(body >> (8 * i));
        }
        sa_fix f;
        if (sa_up(&f, role < 4 ? role : role - 3)) abort(); /* the fixed session must run */
        if (role < 4) {
            if (fr_sa_server_receive(f.s, m, mn) == FR_OK) sa_finish(&f);
        } else {
            uint8_t *out = NULL;
            size_t out_n = 0;
            if (sa_step(f.c[0], role - 3, m, mn, &out, &out_n) == FR_OK) {
                if (fr_sa_server_receive(f.s, out, out_n) == FR_OK) sa_finish(&f);
            } else if (out) {
                abort(); /* a refused step sends nothing */
            }
            fr_sa_bytes_free(out, out_n);
        }
        sa_down(&f);
    }
    free(m);
    return 0;
}

int fuzz_seed_secagg(const char *dir) {
    for (int role = 0; role < 7; role++) {
        sa_fix f;
        if (sa_up(&f, role < 4 ? role : role - 3)) { sa_down(&f); return 1; }
        uint8_t *out = NULL, *in = NULL;
        size_t out_n = 0, in_n = 0;
        fr_err e;
        if (role < 4) { /* client 0's message of that stage */
            if (role > 0 && fr_sa_server_message(f.s, 0, &in, &in_n)) { sa_down(&f); return 1; }
            e = sa_step(f.c[0], role, in, in_n, &out, &out_n);
            fr_sa_bytes_free(in, in_n);
        } else { /* the server's message to client 0 */
            e = fr_sa_server_message(f.s, 0, &out, &out_n);
        }
        sa_down(&f);
        if (e) return 1;
        char p[4096];
        static const char *const names[7] = {"valid_advertise", "valid_shares", "valid_masked", "valid_answer",
                                             "valid_keys", "valid_forward", "valid_request"};
        snprintf(p, sizeof p, "%s/secagg/%s", dir, names[role]);
        FILE *fp = fopen(p, "wb");
        uint8_t r = (uint8_t)role;
        int bad = !fp || fwrite(&r, 1, 1, fp) != 1 || fwrite(out, 1, out_n, fp) != out_n;
        if (fp && fclose(fp)) bad = 1;
        fr_sa_bytes_free(out, out_n);
        if (bad) return 1;
    }
    return 0;
}

const fr_fuzz_target fr_fuzz_targets[] = {
    {"modelfile_crc", run_modelfile_crc},
    {"state", run_state},
    {"checkpoint", run_checkpoint},
    {"result", run_result},
    {"cresult", run_cresult},
    {"task", run_task},
    {"modelfile", fuzz_modelfile},
    {"ml100k", run_ml100k},
    {"ml1m", run_ml1m},
    {"csv", run_csv},
    {"ncf", run_ncf},
    {"delimited", run_delimited},
    {"negatives", run_negatives},
    {"meta", run_meta},
    {"pairset", run_pairset},
    {"ncfmap", run_ncfmap},
    {"net", run_net},
    {"netc_state", run_netc_state},
    {"secagg", run_secagg},
    {NULL, NULL},
};
