/* fedrec's TLS engine for nng: OpenSSL 3 plugged into nng 1.5.2's engine interface
 * (nng/supplemental/tls/engine.h), in place of the mbedTLS 2.28 that Debian's nng is
 * built with. mbedTLS negotiates ChaCha20-Poly1305 in portable C and nng offers no
 * cipher choice; this engine prefers TLS 1.3 with AES-GCM (AES-NI), so the networked
 * runtime's encryption costs little beside the bytes it moves.
 *
 * Policy: TLS 1.2 at least, 1.3 preferred; AEAD suites with forward secrecy only
 * (TLS 1.3: AES-128-GCM, AES-256-GCM, ChaCha20-Poly1305 in that order; TLS 1.2: ECDHE
 * with the same three); no renegotiation, no compression, no session tickets or cache
 * (a federation's clients do not resume). A client verifies the server's certificate
 * chain against the CA it is given and the server name (an IP literal against the
 * certificate's IP entries, a host name against its DNS entries); a server with a CA
 * requires and verifies client certificates (mutual TLS).
 *
 * The engine is registered with nng once per process, before the transport allocates
 * its first nng_tls_config. FEDREC_TLS_ENGINE=nng in the environment keeps nng's
 * built-in engine instead (for comparison, or as a fallback). Internal (fri_ prefix). */
#ifndef FEDREC_SRC_RUNTIME_NET_TLS_ENGINE_H
#define FEDREC_SRC_RUNTIME_NET_TLS_ENGINE_H

#include <stdbool.h>
#include <stdint.h>

/* Registers the OpenSSL engine with nng, once (later calls return the first result).
 * 0 or an nng error code (NNG_ENOMEM, NNG_ENOTSUP). Thread-safe. */
int fri_tls_engine_init(void);

/* True when fri_tls_engine_init registered this engine (false before it was called,
 * with FEDREC_TLS_ENGINE=nng, or when registering failed). */
bool fri_tls_engine_ours(void);

/* What the engine has seen in this process, both sides of every connection together. */
typedef struct fri_tls_stats {
    uint64_t handshakes;      /* completed */
    uint64_t failures;        /* handshakes that failed (TLS errors, not hang-ups) */
    uint64_t server_failures; /* of those, server connections' (every one: nng 1.5.2's
                                 listener counter misses some, docs/ARCHITECTURE.md) */
    uint64_t live;            /* connections nng has set up and not yet finalised */
    uint64_t handshake_timeouts; /* server connections closed for not finishing their
                                    handshake in time (fri_tls_engine_set_handshake_ms) */
    char version[16];         /* protocol of the last completed handshake: "TLSv1.3" */
    char cipher[64];          /* its cipher suite: "TLS_AES_128_GCM_SHA256"; "" if none */
} fri_tls_stats;

/* A server's connection whose TLS handshake has not ended this many milliseconds after
 * it was accepted (a peer that sends nothing, or stops half-way) is closed by the engine,
 * and counted in handshake_timeouts: nng 1.5.2 itself never closes it. Process-wide;
 * 0 turns it off; applies to connections accepted from then on. */
#define FRI_TLS_DEFAULT_HANDSHAKE_MS 15000
void fri_tls_engine_set_handshake_ms(int ms);

/* Fills *st; false (and *st zeroed) when the engine in use is not this one. */
bool fri_tls_engine_stats(fri_tls_stats *st);

#endif
