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
#endif
