/* The networked runtime's messages: an envelope around the round controller's opaque
 * TASK and RESULT bytes (src/fl/msg.c), plus the scheduling messages between them.
 *
 * Every message is a 16-byte header, then the payload (little-endian):
 *   magic "FRNT" | u8 version (1) | u8 type | u16 flags (FRI_NET_FLAG_*, else 0)
 *   | u32 payload length | u32 CRC-32C of header bytes [0, 12) followed by the payload
 * The CRC also covers the header's magic, version, type, flags and length, so a damaged
 * type (a TASK turned into a DONE by one bit) is caught like a damaged payload; the
 * header fields are also checked one by one, for precise errors and so a server can read
 * a header (fri_net_peek_header) before it has the body.
 *
 * Over TLS the payload's CRC is redundant: every TLS record carries an AEAD tag
 * (AES-GCM or ChaCha20-Poly1305) over its bytes, so a byte damaged or altered in transit
 * fails the record's authentication and the connection, and nothing of that record is
 * ever handed to the decoder. A sender on an authenticated channel therefore sets flag
 * FRI_NET_FLAG_HEADER_CRC: the CRC then covers header bytes [0, 12) only (the type and
 * length keep their guard against a fault between the TLS layer and the decoder), and
 * the payload's own checks stay: every field of the envelope, and the fl TASK / RESULT
 * bytes' own CRC-32C and decoders (src/fl/msg.c). A decoder accepts the flag only when
 * told that its channel is authenticated (fri_net_decode_on); on plain tcp:// it is
 * refused, so there every payload byte is still checked by the CRC.
 *
 * Payloads by type:
 *   1 HELLO   c->s  u32 client | u32 capabilities | u32 model round | u16 token length
 *                   (1..256) | token (printable ASCII, no space)
 *   2 WAIT    s->c  u32 retry after ms (<= FRI_NET_RETRY_MAX_MS) | u32 rounds completed
 *                   | u8 reason (fri_net_wait_reason)
 *   3 TASK    s->c  u32 round (>= 1) | u32 deadline ms left (1..FRI_NET_DEADLINE_MAX_MS)
 *                   | ticket[16] | the fl TASK bytes (>= 1 byte, opaque here)
 *   4 RESULT  c->s  u32 client | u32 round (>= 1) | ticket[16] | u32 users evaluated
 *                   | f64 hit sum | f64 ndcg sum | u64 rated pairs | f64 squared-error sum
 *                   | the fl RESULT bytes (>= 1 byte, opaque here; packed with flag
 *                   FRI_NET_FLAG_PACKED: src/runtime/net/pack.h)
 *   5 ACK     s->c  u32 round (>= 1) | u8 status (fri_net_ack_status) | u16 text length
 *                   (<= 512) | text
 *   6 REFUSE  s->c  u8 code (fri_net_refuse_code) | u16 text length (<= 512) | text
 *   7 DONE    s->c  u32 rounds completed | the final global model (opaque, may be empty)
 * Secure aggregation (a server with secagg on; the privacy layer's fr_sa_* bytes, opaque
 * here, checked by their own decoders):
 *   8 SA_TASK s->c  u32 round (>= 1) | u32 deadline ms left | ticket[16] | u32 party (the
 *                   client's id in the session, < n) | u32 n | u32 k | u32 t | u64 len
 *                   | u64 bound | u64 session | u64 graph seed (fr_sa_params_check holds,
 *                   test seed 0) | the fl TASK bytes (>= 1 byte): a TASK under secure
 *                   aggregation, answered by SA_UP stage 0 (the advertised keys)
 *   9 SA_DOWN s->c  u32 round (>= 1) | u32 deadline ms left of the stage | u8 stage (1: the
 *                   neighbours' keys, 2: the forwarded shares, 3: the unmasking request)
 *                   | the server's secagg message (>= 1 byte)
 *  10 SA_UP   c->s  u32 client | u32 round (>= 1) | ticket[16] | u8 stage (0 keys, 1 shares,
 *                   2 masked input, 3 unmasking answer) | u32 config CRC | u32 result flags
 *                   | u64 weight | u64 examples | f64 loss sum (finite; all five 0 unless
 *                   stage 2: the RESULT's header without its values) | the client's secagg
 *                   message (>= 1 byte)
 * Rows on request (docs/ARCHITECTURE.md, "The downlink"): a client that said FRI_NET_CAP_ROWS
 * may get a TASK whose fl bytes are a rows TASK (dense tensors only, src/fl/msg.c); it
 * asks for the item rows its step will read and gets them from the round's global model:
 *  11 ROWS_REQ c->s u32 client | u32 round (>= 1) | ticket[16] | u32 count (>= 1) | count
 *                   u32 item ids, strictly increasing (checked against the catalogue by
 *                   the server)
 *  12 ROWS    s->c  u32 round (>= 1) | u32 count (>= 1, the request's) | the rows block
 *                   (>= 1 byte: per item table, the rows in the request's order, f32)
 * Texts are bytes (not NUL-terminated) without control characters (< 0x20, 0x7f), so a
 * log can print them; they never hold a token (the codec refuses one containing "frt_").
 * The evaluation sums are finite and >= 0, hits and ndcg sums <= users, squared error 0
 * when no pair was rated; all zero from a client without FRI_NET_CAP_EVAL.
 *
 * Invariants: the decoder allocates nothing and returns views into the bytes it was
 * given; it checks every field before use and the exact end. The encoding is canonical:
 * whatever decodes re-encodes to the same bytes, and the encoder refuses what the
 * decoder would refuse. Thread-safe (no state). */
#ifndef FEDREC_SRC_RUNTIME_NET_WIRE_H
#define FEDREC_SRC_RUNTIME_NET_WIRE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

#define FRI_NET_MAGIC 0x544e5246u        /* "FRNT" read as a little-endian u32 */
#define FRI_NET_VERSION 3        /* 2: header flags HEADER_CRC and PACKED; 3: rows on request */
#define FRI_NET_HEADER_BYTES 16
#define FRI_NET_SMALL_MAX 4096           /* payload cap of HELLO, WAIT, ACK, REFUSE */
#define FRI_NET_TICKET_BYTES 16
#define FRI_NET_TOKEN_MAX 256
#define FRI_NET_TEXT_MAX 512
#define FRI_NET_RETRY_MAX_MS 3600000u    /* a WAIT asks for at most an hour */
#define FRI_NET_DEADLINE_MAX_MS 86400000u /* a TASK's deadline is at most a day away */
/* The longest header + fixed payload fields (an ACK with the longest text): the bytes
 * fri_net_encode_prefix may write. */
#define FRI_NET_PREFIX_MAX (FRI_NET_HEADER_BYTES + 4 + 1 + 2 + FRI_NET_TEXT_MAX)
/* Header flags. HEADER_CRC: the CRC covers header bytes [0, 12) only (the message travels
 * over TLS). PACKED (RESULT only): its fl RESULT bytes are packed (pack.h), the receiver
 * unpacks them before use. */
#define FRI_NET_FLAG_HEADER_CRC 1u
#define FRI_NET_FLAG_PACKED 2u
#define FRI_NET_FLAGS_KNOWN 3u

/* HELLO capability bits. */
#define FRI_NET_CAP_EVAL 1u     /* the client reports evaluation metrics in its RESULTs */
#define FRI_NET_CAP_HOLD 2u     /* secure aggregation: a party that has answered the open stage
                                   may be held (long poll) until the next stage opens, up to
                                   FRI_NET_HOLD_MAX_MS, instead of being told to WAIT */
#define FRI_NET_CAP_ROWS 4u     /* the client can take a rows TASK and fetch its rows (ROWS_REQ) */
#define FRI_NET_CAPS_KNOWN 7u   /* every bit this version defines; others are refused */
#define FRI_NET_HOLD_MAX_MS 1000u

typedef enum fri_net_type {
    FRI_NET_HELLO = 1,
    FRI_NET_WAIT = 2,
    FRI_NET_TASK = 3,
    FRI_NET_RESULT = 4,
    FRI_NET_ACK = 5,
    FRI_NET_REFUSE = 6,
    FRI_NET_DONE = 7,
    FRI_NET_SA_TASK = 8,
    FRI_NET_SA_DOWN = 9,
    FRI_NET_SA_UP = 10,
    FRI_NET_ROWS_REQ = 11,
    FRI_NET_ROWS = 12,
} fri_net_type;
#define FRI_NET_TYPE_MAX 12

typedef enum fri_net_wait_reason {
    FRI_NET_WAIT_NO_ROUND = 0,       /* no round open */
    FRI_NET_WAIT_NOT_SAMPLED = 1,    /* not sampled this round */
    FRI_NET_WAIT_ROUND_FULL = 2,     /* the round already has its results */
    FRI_NET_WAIT_FEW_CLIENTS = 3,    /* waiting for enough clients */
    FRI_NET_WAIT_HAVE_RESULT = 4,    /* this client's result is already in */
} fri_net_wait_reason;
#define FRI_NET_WAIT_REASON_MAX 4

typedef enum fri_net_ack_status {
    FRI_NET_ACK_ACCEPTED = 0,
    FRI_NET_ACK_LATE = 1,
    FRI_NET_ACK_REFUSED = 2,
} fri_net_ack_status;
#define FRI_NET_ACK_STATUS_MAX 2

typedef enum fri_net_refuse_code {
    FRI_NET_REFUSE_BAD_TOKEN = 1,
    FRI_NET_REFUSE_UNKNOWN_CLIENT = 2,
    FRI_NET_REFUSE_VERSION = 3,
    FRI_NET_REFUSE_MALFORMED = 4,
    FRI_NET_REFUSE_TOO_LARGE = 5,
    FRI_NET_REFUSE_BUSY = 6,
    FRI_NET_REFUSE_FEDERATION = 7,   /* another federation */
} fri_net_refuse_code;
#define FRI_NET_REFUSE_CODE_MAX 7

/* A client's evaluation on its own data, summed over its users. */
typedef struct fri_net_eval {
    uint32_t users;     /* users evaluated (ranking) */
    double hit_sum;     /* sum of hit@K over those users, <= users */
    double ndcg_sum;    /* sum of ndcg@K, <= users */
    uint64_t rated;     /* (user, item) pairs with a rating predicted */
    double sq_err_sum;  /* sum of squared rating errors over them */
} fri_net_eval;

/* One message. Pointers view the decoded bytes (or, to encode, the caller's memory);
 * the union member is the one `type` names. */
typedef struct fri_net_msg {
    uint8_t type; /* fri_net_type */
    uint16_t flags; /* FRI_NET_FLAG_HEADER_CRC (only on an authenticated channel), and
                       FRI_NET_FLAG_PACKED on a RESULT whose body is packed (pack.h) */
    union {
        struct {
            uint32_t client, caps, model_round;
            const uint8_t *token; /* token_len bytes, a secret: never logged */
            uint16_t token_len;
        } hello;
        struct {
            uint32_t retry_ms, rounds_done;
            uint8_t reason; /* fri_net_wait_reason */
        } wait;
        struct {
            uint32_t round, deadline_ms;
            const uint8_t *ticket; /* FRI_NET_TICKET_BYTES */
            const uint8_t *body;   /* the fl TASK bytes */
            size_t body_len;
        } task;
        struct {
            uint32_t client, round;
            const uint8_t *ticket; /* FRI_NET_TICKET_BYTES, as the TASK gave it */
            fri_net_eval eval;
            const uint8_t *body;   /* the fl RESULT bytes */
            size_t body_len;
        } result;
        struct {
            uint32_t round;
            uint8_t status; /* fri_net_ack_status */
            const uint8_t *text;
            uint16_t text_len;
        } ack;
        struct {
            uint8_t code; /* fri_net_refuse_code */
            const uint8_t *text;
            uint16_t text_len;
        } refuse;
        struct {
            uint32_t rounds_done;
            const uint8_t *model; /* may be NULL when model_len is 0 */
            size_t model_len;
        } done;
        struct {
            uint32_t round, deadline_ms;
            const uint8_t *ticket; /* FRI_NET_TICKET_BYTES */
            uint32_t party;        /* the client's id in the session */
            uint32_t n, k, t;      /* fr_sa_params (test_seed 0) */
            uint64_t len, bound, session, graph_seed;
            const uint8_t *body;   /* the fl TASK bytes */
            size_t body_len;
        } sa_task;
        struct {
            uint32_t round, deadline_ms;
            uint8_t stage;         /* 1..3 */
            const uint8_t *body;   /* the server's secagg message */
            size_t body_len;
        } sa_down;
        struct {
            uint32_t client, round;
            const uint8_t *ticket;  /* as the SA_TASK gave it */
            uint8_t stage;          /* 0..3 */
            uint32_t config_crc, flags;    /* stage 2: the RESULT's header */
            uint64_t weight, examples;
            double loss_sum;
            const uint8_t *body;    /* the client's secagg message */
            size_t body_len;
        } sa_up;
        struct {
            uint32_t client, round;
            const uint8_t *ticket;  /* as the TASK gave it */
            uint32_t count;         /* >= 1 */
            const uint8_t *ids;     /* count little-endian u32, strictly increasing */
        } rows_req;
        struct {
            uint32_t round, count;  /* >= 1 each */
            const uint8_t *body;    /* the rows block (fl: fri_task_rows_put) */
            size_t body_len;
        } rows;
    };
} fri_net_msg;

/* Checks the 16-byte header at b (n >= 16; the body need not have arrived): magic,
 * version (FR_ERR_VERSION, so a server can answer REFUSE 3), a known type, known flags, and
 * the payload length against the small types' cap (FR_ERR_RANGE). Sets *type and
 * *payload_len; the caller compares payload_len with its own limit before receiving or
 * allocating the body. */
FR_NODISCARD fr_err fri_net_peek_header(const uint8_t *b, size_t n, uint8_t *type, uint32_t *payload_len);
/* The same on a channel that is or is not authenticated (fri_net_decode_on): the plain
 * one refuses FRI_NET_FLAG_HEADER_CRC (FR_ERR_FORMAT). */
FR_NODISCARD fr_err fri_net_peek_header_on(const uint8_t *b, size_t n, bool authenticated, uint8_t *type,
                                           uint32_t *payload_len);

/* Decodes the message b[0, n) into *out, whose pointers view b. max_payload caps the
 * payload of any type (the small types are also capped at FRI_NET_SMALL_MAX). Errors:
 * FR_ERR_VERSION (another protocol version), FR_ERR_RANGE (payload too large: the size is
 * in the message), FR_ERR_CHECKSUM (damaged), FR_ERR_FORMAT (anything else); the message
 * names the field, its value and what was expected, and never quotes a token or text.
 * On failure *out is zeroed. A message with FRI_NET_FLAG_HEADER_CRC is refused
 * (FR_ERR_FORMAT): this is the decoder of a plain channel. */
FR_NODISCARD fr_err fri_net_decode(const uint8_t *b, size_t n, size_t max_payload, fri_net_msg *out);
/* fri_net_decode for a channel that is (authenticated: TLS) or is not authenticated: on an
 * authenticated one, a message whose CRC covers only its header (FRI_NET_FLAG_HEADER_CRC)
 * is accepted as well as one whose CRC covers everything. */
FR_NODISCARD fr_err fri_net_decode_on(const uint8_t *b, size_t n, size_t max_payload, bool authenticated,
                                      fri_net_msg *out);

/* The encoded size of m (header included), or 0 if it overflows size_t. */
size_t fri_net_encoded_size(const fri_net_msg *m);

/* Encodes m into b (b->len = 0 first; the buffer is reused): the whole message, its CRC
 * over the header only when m->flags has FRI_NET_FLAG_HEADER_CRC.
 * FR_ERR_INVALID (with the field) for a message the decoder would refuse. */
FR_NODISCARD fr_err fri_net_encode(fri_buf *b, const fri_net_msg *m);

/* Writes the header and the fixed fields of m (everything before the opaque tail: the
 * TASK or RESULT bytes, the DONE model, which the CRC covers) into out[0, *n), so a
 * large body can be sent from where it lies: the message is out[0, *n) then the tail.
 * cap >= FRI_NET_PREFIX_MAX always suffices. */
FR_NODISCARD fr_err fri_net_encode_prefix(const fri_net_msg *m, uint8_t *out, size_t cap, size_t *n);
/* fri_net_encode_prefix given the CRC-32C of the message's tail (its opaque body:
 * fr_crc32c(0, body, body_len)), which it does not read: a TASK body sent to every client
 * of a round costs one CRC a round. The same bytes as fri_net_encode_prefix when tail_crc
 * is right. With FRI_NET_FLAG_HEADER_CRC, tail_crc is not used (any value). */
FR_NODISCARD fr_err fri_net_encode_prefix_crc(const fri_net_msg *m, uint32_t tail_crc, uint8_t *out, size_t cap,
                                              size_t *n);

/* The WAIT a secure-aggregation party that has answered the open stage gets (the server's
 * policy, here to be tested): retry_ms while no party has answered, else the stage's
 * remaining time extrapolated from its pace so far, elapsed_ms × outstanding / answered,
 * kept within [max(1, retry_ms / 8, answered × retry_ms / 32), retry_ms]. A stage about to
 * close is polled again soon, one far from it no more often than retry_ms: short waits only
 * near the close, and the waiting parties together poll at most 32 times per retry_ms (a
 * load generator's threads, which also reach the parties still to answer, are not filled
 * with their polls; from 32 parties on, retry_ms as before). */
uint32_t fri_net_stage_retry_ms(uint32_t retry_ms, uint64_t elapsed_ms, uint32_t answered, uint32_t outstanding);

/* The WAIT a client that the open round did not sample gets (the server's policy, here to
 * be tested): half the time left until the round is expected to end (expect_ms, the
 * server's shortest of its last rounds' lengths; 0: none yet), within [max(1, retry_ms), max(retry_ms, cap_ms)] and
 * FRI_NET_RETRY_MAX_MS. Such a client can get nothing before the next round, so it asks
 * a few times a round (halving towards the expected end) instead of every retry_ms: a
 * secure round of a second with 843 idle clients at retry_ms 20 drew about 40,000 HELLOs
 * a round. A round that ends sooner than the last costs at most half the misjudged time
 * before an idle client sees the next one. */
uint32_t fri_net_idle_retry_ms(uint32_t retry_ms, uint64_t elapsed_ms, uint64_t expect_ms, uint32_t cap_ms);

/* "HELLO", "WAIT", ...; "unknown" for any other value. For logs. */
const char *fri_net_type_name(unsigned type);
/* "no round open", ...; "unknown" for any other value. */
const char *fri_net_wait_reason_name(unsigned reason);
/* "bad token", ...; "unknown" for any other value. */
const char *fri_net_refuse_code_name(unsigned code);
/* The REFUSE code a server answers a message that failed to decode with e:
 * FR_ERR_VERSION -> 3, FR_ERR_RANGE -> 5, anything else -> 4 (malformed). */
fri_net_refuse_code fri_net_refuse_code_for(fr_err e);

#endif
