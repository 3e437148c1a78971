/* A packed RESULT: the fl RESULT bytes (src/fl/msg.c) with each block of int64 words
 * stored in the fewest bytes that hold every word of the block, losslessly.
 *
 * A RESULT's values are fixed-point words round(w Δ 2^32), most of whose high bytes are
 * copies of the sign: on ml-100k NeuMF a block's words fit in 45% of their 8 bytes on
 * average. A client packs an uncompressed RESULT before it leaves (wire flag
 * FRI_NET_FLAG_PACKED); the server unpacks it into the exact bytes the client's step made
 * and gives those to the round controller, whose decoder checks them as always, the fl
 * message's own CRC-32C included: a packed body that unpacks to anything else than what
 * was packed is refused there.
 *
 * Layout (little-endian), for fl RESULT bytes B (flags 0: neither quantized nor top-k nor
 * DP) with D dense words and T tables:
 *   B[0, 72)                       the fl header and the RESULT's fixed fields, verbatim
 *   u8 w | D words of w bytes      the dense part
 *   T times: u32 width | u32 count | u32 ids[count] (verbatim) | u8 w | count * width
 *                                  words of w bytes
 * A word of w bytes is the low w bytes of the int64, which is their sign extension. w is
 * 1..8 and the smallest that holds every word of its block (1 for an empty block), so the
 * packing is canonical: unpacking and packing again gives the same bytes. Thread-safe (no
 * state). */
#ifndef FEDREC_SRC_RUNTIME_NET_PACK_H
#define FEDREC_SRC_RUNTIME_NET_PACK_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

/* The bytes before the first packed block: the fl header and the RESULT's fixed part. */
#define FRI_PACK_HEAD 72

/* Packs the fl RESULT b[0, n) into out (out->len = 0 first; the buffer is reused).
 * Returns false, out untouched except its length (0), when b is not a RESULT this packs
 * (too short, flags other than 0, or its sizes do not add up to n exactly): it is then
 * sent as it is. FR_ERR_NOMEM latches in out->err. */
bool fri_pack_result(const uint8_t *b, size_t n, fri_buf *out);

/* Unpacks p[0, n) into out (out->len = 0 first): the fl RESULT bytes, at most max_out of
 * them (FR_ERR_RANGE past it, before allocating). FR_ERR_FORMAT names what is wrong: a
 * width outside 1..8 or not the smallest, a block or table cut short, bytes after the
 * last table, more than FR_UPDATE_MAX_TABLES tables, a RESULT with flags. */
FR_NODISCARD fr_err fri_unpack_result(const uint8_t *p, size_t n, size_t max_out, fri_buf *out);

#endif
