/* fedrec fl internals shared by the files of src/fl and with the tests. */
#ifndef FEDREC_SRC_FL_INTERNAL_H
#define FEDREC_SRC_FL_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"
#include "fedrec/fl.h"

/* acc[i] += round(w * val[i] * 2^32) (two's complement, modulo 2^64), rounded half away
 * from zero, each term saturating at +-4.6e18 units, NaN as the lower bound. `vector`
 * false forces the scalar loop (the reference the vector path must match bit for bit). */
void fri_fl_add_fixed(int64_t *acc, const float *val, size_t n, double w, bool vector);
/* acc[i] += val[i] modulo 2^64 (the server's sum of fixed-point values). */
void fri_fl_add_ints(int64_t *acc, const int64_t *val, size_t n);

/* Sets a result's layout (counts 0; arrays reused) and sizes table t for count rows. */
FR_NODISCARD fr_err fri_result_reset(fr_result *r, uint32_t dense_len, uint32_t n_tables, const uint32_t *widths);
FR_NODISCARD fr_err fri_result_table_resize(fr_result *r, uint32_t t, uint32_t count);

/* The federation config as bytes (every field, little-endian), for the TASK's config
 * block and the round state. get checks the config (FR_ERR_FORMAT naming the field). */
void fri_fl_config_put(fri_buf *b, const fr_fl_config *c);
FR_NODISCARD fr_err fri_fl_config_get(fri_rd *r, fr_fl_config *c);

/* The config block of a federation: the model config (n_users 1) then the fl config. */
FR_NODISCARD fr_err fri_fl_config_block(fri_buf *b, const fr_model_config *mcfg, const fr_fl_config *cfg);
/* Reads a config block (the whole of r). */
FR_NODISCARD fr_err fri_fl_config_block_get(fri_rd *r, fr_model_config *mcfg, fr_fl_config *cfg);

/* A TASK message: header, round, config CRC, config block, the shared prefix of g. */
FR_NODISCARD fr_err fri_task_encode(fri_buf *b, uint32_t round, const uint8_t *config, size_t config_n,
                                    uint32_t config_crc, const fr_model *g);

/* Message header: writes it over buf[0, FR_MSG_HEADER_BYTES) for a message of n bytes
 * whose body follows; checks one (magic, version, type, length, reserved, CRC), naming
 * `what` ("TASK", "RESULT") in messages. */
void fri_msg_seal(uint8_t *buf, size_t n, uint16_t type);
FR_NODISCARD fr_err fri_msg_open(const uint8_t *b, size_t n, uint16_t type, const char *what);

#endif
