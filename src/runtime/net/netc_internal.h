/* What the networked client loop (client.c) needs of fr_netc beyond its public API. */
#ifndef FEDREC_SRC_RUNTIME_NET_NETC_INTERNAL_H
#define FEDREC_SRC_RUNTIME_NET_NETC_INTERNAL_H
#include "fedrec/net_client.h"
#include "fl/fl_internal.h"

/* Secure aggregation: the words of the dense vector of the round last stepped (0 before
 * any step). */
size_t fri_netc_dense_len(const fr_netc *c);
/* The RESULT the last step returned (result[0, n)) as that round's dense vector out[len]
 * (fri_secure_densify with the stepped TASK's layout and config) and its header. */
FR_NODISCARD fr_err fri_netc_densify(const fr_netc *c, const uint8_t *result, size_t n, int64_t *out, size_t len,
                                     fri_secure_header *h);
/* Rows on request: decodes the TASK task[0, task_n) into the scratch and, if it is a rows
 * TASK, sets ids[0, *n) to the item rows client c's step will read (the scratch
 * workspace's, valid until its next use); *n 0 for a TASK with the whole model. */
FR_NODISCARD fr_err fri_netc_plan_rows(fr_netc *c, fr_netc_scratch *s, const uint8_t *task, size_t task_n,
                                       const uint32_t **ids, size_t *n);
/* Fills those rows (the ROWS reply's block) into the scratch's rows TASK, before the step
 * (fr_netc_step_shared on the same TASK bytes). */
FR_NODISCARD fr_err fri_netc_fill_rows(fr_netc_scratch *s, const uint32_t *ids, size_t n, const uint8_t *rows,
                                       size_t rows_n);
#endif
