/* The networked runtime's message codec (layouts and invariants in wire.h). One table of
 * field checks serves the decoder (FR_ERR_FORMAT: the peer sent it) and the encoder
 * (FR_ERR_INVALID: this process built it), so both refuse the same messages and what
 * decodes re-encodes to the same bytes. */
#include <math.h>

#include "fedrec/privacy.h"
#include "runtime/net/wire.h"

#define WHAT "network message"

/* Fixed payload bytes of each type, before its variable part (token, text, opaque tail). */
#define HELLO_FIXED 14  /* client, caps, model round, token length */
#define WAIT_FIXED 9    /* retry, rounds done, reason */
#define TASK_FIXED 24   /* round, deadline, ticket */
#define EVAL_BYTES 36   /* users, hit sum, ndcg sum, rated, squared-error sum */
#define RESULT_FIXED (24 + EVAL_BYTES) /* client, round, ticket, evaluation */
#define ACK_FIXED 7     /* round, status, text length */
#define REFUSE_FIXED 3  /* code, text length */
#define DONE_FIXED 4    /* rounds done */
#define SA_TASK_FIXED 72 /* round, deadline, ticket, party, n, k, t, len, bound, session, graph seed */
#define SA_DOWN_FIXED 9  /* round, deadline, stage */
#define SA_UP_FIXED 57   /* client, round, ticket, stage, config CRC, flags, weight, examples, loss */
#define ROWS_REQ_FIXED 28 /* client, round, ticket, count */
#define ROWS_FIXED 8      /* round, count */

const char *fri_net_type_name(unsigned type) {
    switch (type) {
    case FRI_NET_HELLO: return "HELLO";
    case FRI_NET_WAIT: return "WAIT";
    case FRI_NET_TASK: return "TASK";
    case FRI_NET_RESULT: return "RESULT";
    case FRI_NET_ACK: return "ACK";
    case FRI_NET_REFUSE: return "REFUSE";
    case FRI_NET_DONE: return "DONE";
    case FRI_NET_SA_TASK: return "SA_TASK";
    case FRI_NET_SA_DOWN: return "SA_DOWN";
    case FRI_NET_SA_UP: return "SA_UP";
    case FRI_NET_ROWS_REQ: return "ROWS_REQ";
    case FRI_NET_ROWS: return "ROWS";
    }
    return "unknown";
}

uint32_t fri_net_idle_retry_ms(uint32_t retry_ms, uint64_t elapsed_ms, uint64_t expect_ms, uint32_t cap_ms) {
    uint64_t lo = retry_ms ? retry_ms : 1, hi = cap_ms > lo ? cap_ms : lo;
    if (hi > FRI_NET_RETRY_MAX_MS) hi = FRI_NET_RETRY_MAX_MS;
    if (lo > hi) lo = hi;
    uint64_t est = expect_ms > elapsed_ms ? (expect_ms - elapsed_ms) / 2 : 0;
    return (uint32_t)(est < lo ? lo : est > hi ? hi : est);
}

uint32_t fri_net_stage_retry_ms(uint32_t retry_ms, uint64_t elapsed_ms, uint32_t answered, uint32_t outstanding) {
    if (answered == 0 || retry_ms <= 1) return retry_ms ? retry_ms : 1;
    /* the floor: retry_ms / 8, and the waiting parties together at most 32 polls per
     * retry_ms (answered × retry_ms / 32, rounded up), never above retry_ms */
    uint64_t lo = retry_ms / 8, share = ((uint64_t)answered * retry_ms + 31) / 32;
    if (lo < share) lo = share;
    if (lo < 1) lo = 1;
    if (lo > retry_ms) lo = retry_ms;
    /* elapsed × outstanding / answered without overflow: a product past retry_ms × answered
     * is capped anyway */
    uint64_t est = retry_ms;
    if (outstanding == 0) est = 0;
    else if (elapsed_ms < ((uint64_t)retry_ms * answered + outstanding - 1) / outstanding)
        est = elapsed_ms * outstanding / answered;
    if (est < lo) est = lo;
    return est < retry_ms ? (uint32_t)est : retry_ms;
}

const char *fri_net_wait_reason_name(unsigned reason) {
    switch (reason) {
    case FRI_NET_WAIT_NO_ROUND: return "no round open";
    case FRI_NET_WAIT_NOT_SAMPLED: return "not sampled this round";
    case FRI_NET_WAIT_ROUND_FULL: return "the round already has its results";
    case FRI_NET_WAIT_FEW_CLIENTS: return "waiting for enough clients";
    case FRI_NET_WAIT_HAVE_RESULT: return "result already received";
    }
    return "unknown";
}

const char *fri_net_refuse_code_name(unsigned code) {
    switch (code) {
    case FRI_NET_REFUSE_BAD_TOKEN: return "bad token";
    case FRI_NET_REFUSE_UNKNOWN_CLIENT: return "unknown client";
    case FRI_NET_REFUSE_VERSION: return "protocol version";
    case FRI_NET_REFUSE_MALFORMED: return "malformed message";
    case FRI_NET_REFUSE_TOO_LARGE: return "message too large";
    case FRI_NET_REFUSE_BUSY: return "busy";
    case FRI_NET_REFUSE_FEDERATION: return "another federation";
    }
    return "unknown";
}

fri_net_refuse_code fri_net_refuse_code_for(fr_err e) {
    if (e == FR_ERR_VERSION) return FRI_NET_REFUSE_VERSION;
    if (e == FR_ERR_RANGE) return FRI_NET_REFUSE_TOO_LARGE;
    return FRI_NET_REFUSE_MALFORMED;
}

static bool is_small(unsigned type) {
    return type == FRI_NET_HELLO || type == FRI_NET_WAIT || type == FRI_NET_ACK || type == FRI_NET_REFUSE;
}

/* The CRC of a message: header bytes [0, 12) then the payload, given in two pieces
 * (the fixed fields and the opaque tail) so the encoder need not join them; the header
 * alone when its flags say so (FRI_NET_FLAG_HEADER_CRC). */
static uint32_t msg_crc(const uint8_t *hdr, const void *a, size_t an, const void *b, size_t bn) {
    uint32_t c = fr_crc32c(0, hdr, 12);
    if (fri_get_u16(hdr + 6) & FRI_NET_FLAG_HEADER_CRC) return c;
    c = fr_crc32c(c, a, an);
    return fr_crc32c(c, b, bn);
}

static fr_err header(const uint8_t *b, size_t n, bool authenticated, uint8_t *type, uint32_t *len) {
    *type = 0;
    *len = 0;
    if (n < FRI_NET_HEADER_BYTES)
        return fri_fail(FR_ERR_FORMAT, WHAT ": %zu bytes, shorter than the %d-byte header", n, FRI_NET_HEADER_BYTES);
    uint32_t magic = fri_get_u32(b);
    if (magic != FRI_NET_MAGIC)
        return fri_fail(FR_ERR_FORMAT, WHAT ": bad magic 0x%08x, expected 0x%08x (\"FRNT\")", magic, FRI_NET_MAGIC);
    if (b[4] != FRI_NET_VERSION)
        return fri_fail(FR_ERR_VERSION, WHAT ": protocol version %u, this build speaks version %d", b[4],
                        FRI_NET_VERSION);
    unsigned t = b[5];
    if (t < FRI_NET_HELLO || t > FRI_NET_TYPE_MAX)
        return fri_fail(FR_ERR_FORMAT, WHAT ": unknown type %u, expected 1..12 (HELLO..ROWS)", t);
    uint16_t flags = fri_get_u16(b + 6);
    if (flags & ~FRI_NET_FLAGS_KNOWN)
        return fri_fail(FR_ERR_FORMAT, WHAT ": %s: flags 0x%04x, expected bits of 0x%04x only", fri_net_type_name(t),
                        flags, FRI_NET_FLAGS_KNOWN);
    if ((flags & FRI_NET_FLAG_PACKED) && t != FRI_NET_RESULT)
        return fri_fail(FR_ERR_FORMAT, WHAT ": %s: flags 0x%04x: only a RESULT is packed", fri_net_type_name(t), flags);
    if ((flags & FRI_NET_FLAG_HEADER_CRC) && !authenticated)
        return fri_fail(FR_ERR_FORMAT,
                        WHAT ": %s: its CRC covers the header only (flags 0x%04x: for TLS, whose records are "
                        "authenticated), but this channel is plain tcp://, where the CRC must cover the payload",
                        fri_net_type_name(t), flags);
    uint32_t l = fri_get_u32(b + 8);
    if (is_small(t) && l > FRI_NET_SMALL_MAX)
        return fri_fail(FR_ERR_RANGE, WHAT ": %s: payload of %u bytes, at most %d for this type", fri_net_type_name(t),
                        l, FRI_NET_SMALL_MAX);
    *type = (uint8_t)t;
    *len = l;
    return FR_OK;
}

fr_err fri_net_peek_header(const uint8_t *b, size_t n, uint8_t *type, uint32_t *payload_len) {
    return fri_net_peek_header_on(b, n, false, type, payload_len);
}

fr_err fri_net_peek_header_on(const uint8_t *b, size_t n, bool authenticated, uint8_t *type, uint32_t *payload_len) {
    if (!type || !payload_len || (!b && n)) return fri_fail(FR_ERR_INVALID, "fri_net_peek_header: NULL argument");
    return header(b, n, authenticated, type, payload_len);
}

/* ------------------------------------------------------------------ field checks */

/* Bytes a log may print: no control characters. Returns the offset of the first bad
 * byte, or len. */
static size_t bad_text_at(const uint8_t *t, size_t len) {
    for (size_t i = 0; i < len; i++)
        if (t[i] < 0x20 || t[i] == 0x7f) return i;
    return len;
}

static bool has_token_mark(const uint8_t *t, size_t len) {
    for (size_t i = 0; i + 4 <= len; i++)
        if (t[i] == 'f' && t[i + 1] == 'r' && t[i + 2] == 't' && t[i + 3] == '_') return true;
    return false;
}

static fr_err check_text(fr_err code, const char *type, const uint8_t *t, size_t len) {
    if (len > FRI_NET_TEXT_MAX)
        return fri_fail(code, WHAT ": %s: text length %zu, expected at most %d", type, len, FRI_NET_TEXT_MAX);
    size_t at = bad_text_at(t, len);
    if (at < len)
        return fri_fail(code, WHAT ": %s: text byte %zu is 0x%02x, expected no control characters", type, at, t[at]);
    if (has_token_mark(t, len))
        return fri_fail(code, WHAT ": %s: the text contains \"frt_\": a text never holds a token", type);
    return FR_OK;
}

static fr_err check_eval(fr_err code, const fri_net_eval *e) {
    const struct { const char *name; double v; } sums[3] = {
        {"hit sum", e->hit_sum}, {"ndcg sum", e->ndcg_sum}, {"squared-error sum", e->sq_err_sum}};
    for (int i = 0; i < 3; i++)
        if (!(sums[i].v >= 0) || !isfinite(sums[i].v))
            return fri_fail(code, WHAT ": RESULT: %s %g, expected a finite value >= 0", sums[i].name, sums[i].v);
    if (e->hit_sum > (double)e->users)
        return fri_fail(code, WHAT ": RESULT: hit sum %g over %u users, expected at most one hit per user", e->hit_sum,
                        e->users);
    if (e->ndcg_sum > (double)e->users)
        return fri_fail(code, WHAT ": RESULT: ndcg sum %g over %u users, expected at most 1 per user", e->ndcg_sum,
                        e->users);
    if (e->rated == 0 && e->sq_err_sum != 0)
        return fri_fail(code, WHAT ": RESULT: squared-error sum %g over 0 rated pairs, expected 0", e->sq_err_sum);
    return FR_OK;
}

static fr_err check_ticket(fr_err code, const char *type, const uint8_t *ticket) {
    return ticket ? FR_OK : fri_fail(code, WHAT ": %s: NULL ticket", type);
}

/* Every value check of a message whose lengths are already known to be consistent
 * (decoded) or are about to be written (encoded). code: FR_ERR_FORMAT or FR_ERR_INVALID. */
static fr_err check_fields(const fri_net_msg *m, fr_err code) {
    if (m->flags & ~FRI_NET_FLAGS_KNOWN)
        return fri_fail(code, WHAT ": %s: flags 0x%04x, expected bits of 0x%04x only", fri_net_type_name(m->type),
                        m->flags, FRI_NET_FLAGS_KNOWN);
    if ((m->flags & FRI_NET_FLAG_PACKED) && m->type != FRI_NET_RESULT)
        return fri_fail(code, WHAT ": %s: flags 0x%04x: only a RESULT is packed", fri_net_type_name(m->type),
                        m->flags);
    const char *tn = fri_net_type_name(m->type);
    fr_err e;
    switch (m->type) {
    case FRI_NET_HELLO: {
        if (m->hello.caps & ~FRI_NET_CAPS_KNOWN)
            return fri_fail(code, WHAT ": HELLO: capabilities 0x%08x, expected only bits of 0x%08x", m->hello.caps,
                            FRI_NET_CAPS_KNOWN);
        uint16_t tl = m->hello.token_len;
        if (tl < 1 || tl > FRI_NET_TOKEN_MAX)
            return fri_fail(code, WHAT ": HELLO: token length %u, expected 1..%d", tl, FRI_NET_TOKEN_MAX);
        if (!m->hello.token) return fri_fail(code, WHAT ": HELLO: NULL token");
        for (uint16_t i = 0; i < tl; i++) /* the byte itself is never quoted: it is a secret */
            if (m->hello.token[i] <= 0x20 || m->hello.token[i] >= 0x7f)
                return fri_fail(code, WHAT ": HELLO: token byte %u is not printable ASCII (0x21..0x7e)", i);
        return FR_OK;
    }
    case FRI_NET_WAIT:
        if (m->wait.retry_ms > FRI_NET_RETRY_MAX_MS)
            return fri_fail(code, WHAT ": WAIT: retry after %u ms, expected at most %u", m->wait.retry_ms,
                            FRI_NET_RETRY_MAX_MS);
        if (m->wait.reason > FRI_NET_WAIT_REASON_MAX)
            return fri_fail(code, WHAT ": WAIT: reason %u, expected 0..%d", m->wait.reason, FRI_NET_WAIT_REASON_MAX);
        return FR_OK;
    case FRI_NET_TASK:
        if (m->task.round == 0) return fri_fail(code, WHAT ": TASK: round 0, expected >= 1");
        if (m->task.deadline_ms == 0 || m->task.deadline_ms > FRI_NET_DEADLINE_MAX_MS)
            return fri_fail(code, WHAT ": TASK: deadline %u ms, expected 1..%u", m->task.deadline_ms,
                            FRI_NET_DEADLINE_MAX_MS);
        if ((e = check_ticket(code, tn, m->task.ticket))) return e;
        if (m->task.body_len == 0) return fri_fail(code, WHAT ": TASK: no task bytes, expected at least 1");
        if (!m->task.body) return fri_fail(code, WHAT ": TASK: NULL task bytes");
        return FR_OK;
    case FRI_NET_RESULT:
        if (m->result.round == 0) return fri_fail(code, WHAT ": RESULT: round 0, expected >= 1");
        if ((e = check_ticket(code, tn, m->result.ticket)) || (e = check_eval(code, &m->result.eval))) return e;
        if (m->result.body_len == 0) return fri_fail(code, WHAT ": RESULT: no result bytes, expected at least 1");
        if (!m->result.body) return fri_fail(code, WHAT ": RESULT: NULL result bytes");
        return FR_OK;
    case FRI_NET_ACK:
        if (m->ack.round == 0) return fri_fail(code, WHAT ": ACK: round 0, expected >= 1");
        if (m->ack.status > FRI_NET_ACK_STATUS_MAX)
            return fri_fail(code, WHAT ": ACK: status %u, expected 0..%d", m->ack.status, FRI_NET_ACK_STATUS_MAX);
        if (m->ack.text_len && !m->ack.text) return fri_fail(code, WHAT ": ACK: NULL text");
        return check_text(code, tn, m->ack.text, m->ack.text_len);
    case FRI_NET_REFUSE:
        if (m->refuse.code < 1 || m->refuse.code > FRI_NET_REFUSE_CODE_MAX)
            return fri_fail(code, WHAT ": REFUSE: code %u, expected 1..%d", m->refuse.code, FRI_NET_REFUSE_CODE_MAX);
        if (m->refuse.text_len && !m->refuse.text) return fri_fail(code, WHAT ": REFUSE: NULL text");
        return check_text(code, tn, m->refuse.text, m->refuse.text_len);
    case FRI_NET_DONE:
        if (m->done.model_len && !m->done.model) return fri_fail(code, WHAT ": DONE: NULL model bytes");
        return FR_OK;
    case FRI_NET_SA_TASK: {
        if (m->sa_task.round == 0) return fri_fail(code, WHAT ": SA_TASK: round 0, expected >= 1");
        if (m->sa_task.deadline_ms == 0 || m->sa_task.deadline_ms > FRI_NET_DEADLINE_MAX_MS)
            return fri_fail(code, WHAT ": SA_TASK: deadline %u ms, expected 1..%u", m->sa_task.deadline_ms,
                            FRI_NET_DEADLINE_MAX_MS);
        if ((e = check_ticket(code, tn, m->sa_task.ticket))) return e;
        fr_sa_params p = {.n = m->sa_task.n, .k = m->sa_task.k, .t = m->sa_task.t, .len = m->sa_task.len,
                          .bound = m->sa_task.bound, .session = m->sa_task.session,
                          .graph_seed = m->sa_task.graph_seed};
        if (fr_sa_params_check(&p) != FR_OK)
            return fri_fail(code, WHAT ": SA_TASK: secure aggregation parameters n %u, k %u, t %u, len %llu, bound "
                            "%llu do not hold together", p.n, p.k, p.t, (unsigned long long)p.len,
                            (unsigned long long)p.bound);
        if (m->sa_task.party >= p.n)
            return fri_fail(code, WHAT ": SA_TASK: party %u, expected < n = %u", m->sa_task.party, p.n);
        if (m->sa_task.body_len == 0) return fri_fail(code, WHAT ": SA_TASK: no task bytes, expected at least 1");
        if (!m->sa_task.body) return fri_fail(code, WHAT ": SA_TASK: NULL task bytes");
        return FR_OK;
    }
    case FRI_NET_SA_DOWN:
        if (m->sa_down.round == 0) return fri_fail(code, WHAT ": SA_DOWN: round 0, expected >= 1");
        if (m->sa_down.deadline_ms == 0 || m->sa_down.deadline_ms > FRI_NET_DEADLINE_MAX_MS)
            return fri_fail(code, WHAT ": SA_DOWN: deadline %u ms, expected 1..%u", m->sa_down.deadline_ms,
                            FRI_NET_DEADLINE_MAX_MS);
        if (m->sa_down.stage < 1 || m->sa_down.stage > 3)
            return fri_fail(code, WHAT ": SA_DOWN: stage %u, expected 1..3", m->sa_down.stage);
        if (m->sa_down.body_len == 0) return fri_fail(code, WHAT ": SA_DOWN: no secagg bytes, expected at least 1");
        if (!m->sa_down.body) return fri_fail(code, WHAT ": SA_DOWN: NULL secagg bytes");
        return FR_OK;
    case FRI_NET_SA_UP:
        if (m->sa_up.round == 0) return fri_fail(code, WHAT ": SA_UP: round 0, expected >= 1");
        if ((e = check_ticket(code, tn, m->sa_up.ticket))) return e;
        if (m->sa_up.stage > 3) return fri_fail(code, WHAT ": SA_UP: stage %u, expected 0..3", m->sa_up.stage);
        if (!isfinite(m->sa_up.loss_sum))
            return fri_fail(code, WHAT ": SA_UP: loss sum %g, expected a finite value", m->sa_up.loss_sum);
        if (m->sa_up.stage != 2 && (m->sa_up.config_crc || m->sa_up.flags || m->sa_up.weight || m->sa_up.examples ||
                                    m->sa_up.loss_sum != 0 || signbit(m->sa_up.loss_sum)))
            return fri_fail(code, WHAT ": SA_UP: stage %u carries a result header, expected zeros (only stage 2 "
                            "has one)", m->sa_up.stage);
        if (m->sa_up.body_len == 0) return fri_fail(code, WHAT ": SA_UP: no secagg bytes, expected at least 1");
        if (!m->sa_up.body) return fri_fail(code, WHAT ": SA_UP: NULL secagg bytes");
        return FR_OK;
    case FRI_NET_ROWS_REQ: {
        if (m->rows_req.round == 0) return fri_fail(code, WHAT ": ROWS_REQ: round 0, expected >= 1");
        if ((e = check_ticket(code, tn, m->rows_req.ticket))) return e;
        uint32_t k = m->rows_req.count;
        if (k == 0) return fri_fail(code, WHAT ": ROWS_REQ: count 0, expected at least 1");
        if (!m->rows_req.ids) return fri_fail(code, WHAT ": ROWS_REQ: NULL ids");
        for (uint32_t i = 1; i < k; i++) {
            uint32_t a = fri_get_u32(m->rows_req.ids + 4 * (size_t)(i - 1)), b = fri_get_u32(m->rows_req.ids + 4 * (size_t)i);
            if (b <= a) return fri_fail(code, WHAT ": ROWS_REQ: id %u follows %u, expected increasing", b, a);
        }
        return FR_OK;
    }
    case FRI_NET_ROWS:
        if (m->rows.round == 0) return fri_fail(code, WHAT ": ROWS: round 0, expected >= 1");
        if (m->rows.count == 0) return fri_fail(code, WHAT ": ROWS: count 0, expected at least 1");
        if (m->rows.body_len == 0) return fri_fail(code, WHAT ": ROWS: no row bytes, expected at least 1");
        if (!m->rows.body) return fri_fail(code, WHAT ": ROWS: NULL row bytes");
        return FR_OK;
    }
    return fri_fail(code, WHAT ": unknown type %u, expected 1..12 (HELLO..ROWS)", m->type);
}

/* ------------------------------------------------------------------ decode */

static fr_err rd_text(fri_rd *rd, const uint8_t **text, uint16_t *len) {
    fr_err e;
    if ((e = fri_rd_u16(rd, len, "text length"))) return e;
    if (*len > FRI_NET_TEXT_MAX) /* before the bytes: the length is the error */
        return fri_fail(FR_ERR_FORMAT, WHAT ": %s: text length %u, expected at most %d", rd->name, *len,
                        FRI_NET_TEXT_MAX);
    if ((e = fri_rd_bytes(rd, text, *len, "text"))) return e;
    return fri_rd_end(rd, "the text");
}

/* The opaque tail: the rest of the payload, at least min bytes. */
static fr_err rd_tail(fri_rd *rd, const uint8_t **p, size_t *len, size_t min, const char *what) {
    size_t left = fri_rd_left(rd);
    if (left < min)
        return fri_fail(FR_ERR_FORMAT, WHAT ": %s: no %s after the fixed fields, expected at least %zu byte", rd->name,
                        what, min);
    *len = left;
    return fri_rd_bytes(rd, p, left, what);
}

static fr_err decode_payload(fri_rd *rd, fri_net_msg *m) {
    fr_err e = FR_OK;
    uint8_t u8;
    switch (m->type) {
    case FRI_NET_HELLO:
        if ((e = fri_rd_u32(rd, &m->hello.client, "client")) || (e = fri_rd_u32(rd, &m->hello.caps, "capabilities")) ||
            (e = fri_rd_u32(rd, &m->hello.model_round, "model round")) ||
            (e = fri_rd_u16(rd, &m->hello.token_len, "token length")))
            return e;
        if (m->hello.token_len < 1 || m->hello.token_len > FRI_NET_TOKEN_MAX)
            return fri_fail(FR_ERR_FORMAT, WHAT ": HELLO: token length %u, expected 1..%d", m->hello.token_len,
                            FRI_NET_TOKEN_MAX);
        if ((e = fri_rd_bytes(rd, &m->hello.token, m->hello.token_len, "token"))) return e;
        return fri_rd_end(rd, "the token");
    case FRI_NET_WAIT:
        if ((e = fri_rd_u32(rd, &m->wait.retry_ms, "retry after")) ||
            (e = fri_rd_u32(rd, &m->wait.rounds_done, "rounds completed")) ||
            (e = fri_rd_need(rd, 1, "reason")))
            return e;
        m->wait.reason = rd->p[rd->at++];
        return fri_rd_end(rd, "the reason");
    case FRI_NET_TASK:
        if ((e = fri_rd_u32(rd, &m->task.round, "round")) || (e = fri_rd_u32(rd, &m->task.deadline_ms, "deadline")) ||
            (e = fri_rd_bytes(rd, &m->task.ticket, FRI_NET_TICKET_BYTES, "ticket")))
            return e;
        return rd_tail(rd, &m->task.body, &m->task.body_len, 1, "task bytes");
    case FRI_NET_RESULT: {
        fri_net_eval *ev = &m->result.eval;
        if ((e = fri_rd_u32(rd, &m->result.client, "client")) || (e = fri_rd_u32(rd, &m->result.round, "round")) ||
            (e = fri_rd_bytes(rd, &m->result.ticket, FRI_NET_TICKET_BYTES, "ticket")) ||
            (e = fri_rd_u32(rd, &ev->users, "users evaluated")) || (e = fri_rd_f64(rd, &ev->hit_sum, "hit sum")) ||
            (e = fri_rd_f64(rd, &ev->ndcg_sum, "ndcg sum")) || (e = fri_rd_u64(rd, &ev->rated, "rated pairs")) ||
            (e = fri_rd_f64(rd, &ev->sq_err_sum, "squared-error sum")))
            return e;
        return rd_tail(rd, &m->result.body, &m->result.body_len, 1, "result bytes");
    }
    case FRI_NET_ACK:
        if ((e = fri_rd_u32(rd, &m->ack.round, "round")) || (e = fri_rd_need(rd, 1, "status"))) return e;
        m->ack.status = rd->p[rd->at++];
        return rd_text(rd, &m->ack.text, &m->ack.text_len);
    case FRI_NET_REFUSE:
        if ((e = fri_rd_need(rd, 1, "code"))) return e;
        u8 = rd->p[rd->at++];
        m->refuse.code = u8;
        return rd_text(rd, &m->refuse.text, &m->refuse.text_len);
    case FRI_NET_DONE:
        if ((e = fri_rd_u32(rd, &m->done.rounds_done, "rounds completed"))) return e;
        return rd_tail(rd, &m->done.model, &m->done.model_len, 0, "model bytes");
    case FRI_NET_SA_TASK:
        if ((e = fri_rd_u32(rd, &m->sa_task.round, "round")) ||
            (e = fri_rd_u32(rd, &m->sa_task.deadline_ms, "deadline")) ||
            (e = fri_rd_bytes(rd, &m->sa_task.ticket, FRI_NET_TICKET_BYTES, "ticket")) ||
            (e = fri_rd_u32(rd, &m->sa_task.party, "party")) || (e = fri_rd_u32(rd, &m->sa_task.n, "n")) ||
            (e = fri_rd_u32(rd, &m->sa_task.k, "k")) || (e = fri_rd_u32(rd, &m->sa_task.t, "t")) ||
            (e = fri_rd_u64(rd, &m->sa_task.len, "len")) || (e = fri_rd_u64(rd, &m->sa_task.bound, "bound")) ||
            (e = fri_rd_u64(rd, &m->sa_task.session, "session")) ||
            (e = fri_rd_u64(rd, &m->sa_task.graph_seed, "graph seed")))
            return e;
        return rd_tail(rd, &m->sa_task.body, &m->sa_task.body_len, 1, "task bytes");
    case FRI_NET_SA_DOWN:
        if ((e = fri_rd_u32(rd, &m->sa_down.round, "round")) ||
            (e = fri_rd_u32(rd, &m->sa_down.deadline_ms, "deadline")) || (e = fri_rd_need(rd, 1, "stage")))
            return e;
        m->sa_down.stage = rd->p[rd->at++];
        return rd_tail(rd, &m->sa_down.body, &m->sa_down.body_len, 1, "secagg bytes");
    case FRI_NET_SA_UP:
        if ((e = fri_rd_u32(rd, &m->sa_up.client, "client")) || (e = fri_rd_u32(rd, &m->sa_up.round, "round")) ||
            (e = fri_rd_bytes(rd, &m->sa_up.ticket, FRI_NET_TICKET_BYTES, "ticket")) ||
            (e = fri_rd_need(rd, 1, "stage")))
            return e;
        m->sa_up.stage = rd->p[rd->at++];
        if ((e = fri_rd_u32(rd, &m->sa_up.config_crc, "config CRC")) || (e = fri_rd_u32(rd, &m->sa_up.flags, "flags")) ||
            (e = fri_rd_u64(rd, &m->sa_up.weight, "weight")) || (e = fri_rd_u64(rd, &m->sa_up.examples, "examples")) ||
            (e = fri_rd_f64(rd, &m->sa_up.loss_sum, "loss sum")))
            return e;
        return rd_tail(rd, &m->sa_up.body, &m->sa_up.body_len, 1, "secagg bytes");
    case FRI_NET_ROWS_REQ: {
        if ((e = fri_rd_u32(rd, &m->rows_req.client, "client")) || (e = fri_rd_u32(rd, &m->rows_req.round, "round")) ||
            (e = fri_rd_bytes(rd, &m->rows_req.ticket, FRI_NET_TICKET_BYTES, "ticket")) ||
            (e = fri_rd_u32(rd, &m->rows_req.count, "count")) ||
            (e = fri_rd_need_n(rd, m->rows_req.count, 4, "ids")) ||
            (e = fri_rd_bytes(rd, &m->rows_req.ids, (size_t)m->rows_req.count * 4, "ids")))
            return e;
        return fri_rd_end(rd, "the ids");
    }
    case FRI_NET_ROWS:
        if ((e = fri_rd_u32(rd, &m->rows.round, "round")) || (e = fri_rd_u32(rd, &m->rows.count, "count"))) return e;
        return rd_tail(rd, &m->rows.body, &m->rows.body_len, 1, "row bytes");
    }
    return fri_fail(FR_ERR_INTERNAL, WHAT ": type %u passed the header check", m->type);
}

fr_err fri_net_decode(const uint8_t *b, size_t n, size_t max_payload, fri_net_msg *out) {
    return fri_net_decode_on(b, n, max_payload, false, out);
}

fr_err fri_net_decode_on(const uint8_t *b, size_t n, size_t max_payload, bool authenticated, fri_net_msg *out) {
    if (!out) return fri_fail(FR_ERR_INVALID, "fri_net_decode: NULL message");
    memset(out, 0, sizeof *out);
    if (!b && n) return fri_fail(FR_ERR_INVALID, "fri_net_decode: NULL bytes");
    uint8_t type;
    uint32_t len;
    fr_err e = header(b, n, authenticated, &type, &len);
    if (e) return e;
    const char *tn = fri_net_type_name(type);
    if (len > max_payload)
        return fri_fail(FR_ERR_RANGE, WHAT ": %s: payload of %u bytes, larger than the limit of %zu", tn, len,
                        max_payload);
    if (len > n - FRI_NET_HEADER_BYTES)
        return fri_fail(FR_ERR_FORMAT, WHAT ": %s: truncated: the header announces %u payload bytes, %zu arrived", tn,
                        len, n - FRI_NET_HEADER_BYTES);
    if (len < n - FRI_NET_HEADER_BYTES)
        return fri_fail(FR_ERR_FORMAT, WHAT ": %s: %zu bytes after the %u payload bytes the header announces", tn,
                        n - FRI_NET_HEADER_BYTES - len, len);
    uint16_t flags = fri_get_u16(b + 6);
    uint32_t crc = msg_crc(b, b + FRI_NET_HEADER_BYTES, len, NULL, 0), want = fri_get_u32(b + 12);
    if (crc != want)
        return fri_fail(FR_ERR_CHECKSUM, WHAT ": %s: damaged: CRC-32C 0x%08x, the header says 0x%08x", tn, crc, want);
    fri_rd rd;
    fri_rd_init(&rd, b, n, tn, WHAT);
    rd.at = FRI_NET_HEADER_BYTES;
    out->type = type;
    out->flags = flags;
    if (!(e = decode_payload(&rd, out))) e = check_fields(out, FR_ERR_FORMAT);
    if (e) memset(out, 0, sizeof *out);
    return e;
}

/* ------------------------------------------------------------------ encode */

/* The opaque tail of m (the bytes after its fixed fields), or none. */
static const uint8_t *tail_of(const fri_net_msg *m, size_t *len) {
    switch (m->type) {
    case FRI_NET_TASK: *len = m->task.body_len; return m->task.body;
    case FRI_NET_RESULT: *len = m->result.body_len; return m->result.body;
    case FRI_NET_DONE: *len = m->done.model_len; return m->done.model;
    case FRI_NET_SA_TASK: *len = m->sa_task.body_len; return m->sa_task.body;
    case FRI_NET_SA_DOWN: *len = m->sa_down.body_len; return m->sa_down.body;
    case FRI_NET_SA_UP: *len = m->sa_up.body_len; return m->sa_up.body;
    case FRI_NET_ROWS_REQ: *len = (size_t)m->rows_req.count * 4; return m->rows_req.ids;
    case FRI_NET_ROWS: *len = m->rows.body_len; return m->rows.body;
    default: *len = 0; return NULL;
    }
}

/* The fixed fields (and a HELLO's token, an ACK's or REFUSE's text) into p; returns
 * their length. The message has passed check_fields. */
static size_t put_fixed(const fri_net_msg *m, uint8_t *p) {
    switch (m->type) {
    case FRI_NET_HELLO:
        fri_put_u32(p, m->hello.client);
        fri_put_u32(p + 4, m->hello.caps);
        fri_put_u32(p + 8, m->hello.model_round);
        fri_put_u16(p + 12, m->hello.token_len);
        memcpy(p + HELLO_FIXED, m->hello.token, m->hello.token_len);
        return HELLO_FIXED + (size_t)m->hello.token_len;
    case FRI_NET_WAIT:
        fri_put_u32(p, m->wait.retry_ms);
        fri_put_u32(p + 4, m->wait.rounds_done);
        p[8] = m->wait.reason;
        return WAIT_FIXED;
    case FRI_NET_TASK:
        fri_put_u32(p, m->task.round);
        fri_put_u32(p + 4, m->task.deadline_ms);
        memcpy(p + 8, m->task.ticket, FRI_NET_TICKET_BYTES);
        return TASK_FIXED;
    case FRI_NET_RESULT: {
        const fri_net_eval *ev = &m->result.eval;
        fri_put_u32(p, m->result.client);
        fri_put_u32(p + 4, m->result.round);
        memcpy(p + 8, m->result.ticket, FRI_NET_TICKET_BYTES);
        fri_put_u32(p + 24, ev->users);
        fri_put_f64(p + 28, ev->hit_sum);
        fri_put_f64(p + 36, ev->ndcg_sum);
        fri_put_u64(p + 44, ev->rated);
        fri_put_f64(p + 52, ev->sq_err_sum);
        return RESULT_FIXED;
    }
    case FRI_NET_ACK:
        fri_put_u32(p, m->ack.round);
        p[4] = m->ack.status;
        fri_put_u16(p + 5, m->ack.text_len);
        if (m->ack.text_len) memcpy(p + ACK_FIXED, m->ack.text, m->ack.text_len);
        return ACK_FIXED + (size_t)m->ack.text_len;
    case FRI_NET_REFUSE:
        p[0] = m->refuse.code;
        fri_put_u16(p + 1, m->refuse.text_len);
        if (m->refuse.text_len) memcpy(p + REFUSE_FIXED, m->refuse.text, m->refuse.text_len);
        return REFUSE_FIXED + (size_t)m->refuse.text_len;
    case FRI_NET_DONE:
        fri_put_u32(p, m->done.rounds_done);
        return DONE_FIXED;
    case FRI_NET_SA_TASK:
        fri_put_u32(p, m->sa_task.round);
        fri_put_u32(p + 4, m->sa_task.deadline_ms);
        memcpy(p + 8, m->sa_task.ticket, FRI_NET_TICKET_BYTES);
        fri_put_u32(p + 24, m->sa_task.party);
        fri_put_u32(p + 28, m->sa_task.n);
        fri_put_u32(p + 32, m->sa_task.k);
        fri_put_u32(p + 36, m->sa_task.t);
        fri_put_u64(p + 40, m->sa_task.len);
        fri_put_u64(p + 48, m->sa_task.bound);
        fri_put_u64(p + 56, m->sa_task.session);
        fri_put_u64(p + 64, m->sa_task.graph_seed);
        return SA_TASK_FIXED;
    case FRI_NET_SA_DOWN:
        fri_put_u32(p, m->sa_down.round);
        fri_put_u32(p + 4, m->sa_down.deadline_ms);
        p[8] = m->sa_down.stage;
        return SA_DOWN_FIXED;
    case FRI_NET_SA_UP:
        fri_put_u32(p, m->sa_up.client);
        fri_put_u32(p + 4, m->sa_up.round);
        memcpy(p + 8, m->sa_up.ticket, FRI_NET_TICKET_BYTES);
        p[24] = m->sa_up.stage;
        fri_put_u32(p + 25, m->sa_up.config_crc);
        fri_put_u32(p + 29, m->sa_up.flags);
        fri_put_u64(p + 33, m->sa_up.weight);
        fri_put_u64(p + 41, m->sa_up.examples);
        fri_put_f64(p + 49, m->sa_up.loss_sum);
        return SA_UP_FIXED;
    case FRI_NET_ROWS_REQ:
        fri_put_u32(p, m->rows_req.client);
        fri_put_u32(p + 4, m->rows_req.round);
        memcpy(p + 8, m->rows_req.ticket, FRI_NET_TICKET_BYTES);
        fri_put_u32(p + 24, m->rows_req.count);
        return ROWS_REQ_FIXED;
    case FRI_NET_ROWS:
        fri_put_u32(p, m->rows.round);
        fri_put_u32(p + 4, m->rows.count);
        return ROWS_FIXED;
    }
    return 0;
}

size_t fri_net_encoded_size(const fri_net_msg *m) {
    uint8_t tmp[FRI_NET_PREFIX_MAX];
    size_t n = 0;
    if (fri_net_encode_prefix(m, tmp, sizeof tmp, &n)) return 0;
    size_t tl;
    (void)tail_of(m, &tl);
    return tl > SIZE_MAX - n ? 0 : n + tl;
}

static fr_err encode_prefix(const fri_net_msg *m, uint8_t *out, size_t cap, size_t *n, const uint32_t *tail_crc);

fr_err fri_net_encode_prefix(const fri_net_msg *m, uint8_t *out, size_t cap, size_t *n) {
    return encode_prefix(m, out, cap, n, NULL);
}

fr_err fri_net_encode_prefix_crc(const fri_net_msg *m, uint32_t tail_crc, uint8_t *out, size_t cap, size_t *n) {
    return encode_prefix(m, out, cap, n, &tail_crc);
}

/* The prefix; with tail_crc, the CRC of the tail is that (fr_crc32c(0, tail)), not computed. */
static fr_err encode_prefix(const fri_net_msg *m, uint8_t *out, size_t cap, size_t *n, const uint32_t *tail_crc) {
    if (n) *n = 0;
    if (!m || !out || !n) return fri_fail(FR_ERR_INVALID, "fri_net_encode_prefix: NULL argument");
    fr_err e = check_fields(m, FR_ERR_INVALID);
    if (e) return e;
    uint8_t p[FRI_NET_PREFIX_MAX - FRI_NET_HEADER_BYTES];
    size_t fixed = put_fixed(m, p), tl;
    const uint8_t *tail = tail_of(m, &tl);
    if (tl > (size_t)UINT32_MAX - fixed)
        return fri_fail(FR_ERR_INVALID, WHAT ": %s: payload of %zu bytes, more than a u32 length can say",
                        fri_net_type_name(m->type), tl + fixed);
    size_t total = FRI_NET_HEADER_BYTES + fixed;
    if (cap < total) return fri_fail(FR_ERR_RANGE, WHAT ": needs %zu bytes, buffer has %zu", total, cap);
    fri_put_u32(out, FRI_NET_MAGIC);
    out[4] = FRI_NET_VERSION;
    out[5] = m->type;
    fri_put_u16(out + 6, m->flags);
    fri_put_u32(out + 8, (uint32_t)(fixed + tl));
    if (m->flags & FRI_NET_FLAG_HEADER_CRC) fri_put_u32(out + 12, msg_crc(out, NULL, 0, NULL, 0));
    else if (tail_crc) fri_put_u32(out + 12, fri_crc32c_combine(msg_crc(out, p, fixed, NULL, 0), *tail_crc, tl));
    else fri_put_u32(out + 12, msg_crc(out, p, fixed, tail, tl));
    memcpy(out + FRI_NET_HEADER_BYTES, p, fixed);
    *n = total;
    return FR_OK;
}

fr_err fri_net_encode(fri_buf *b, const fri_net_msg *m) {
    if (!b) return fri_fail(FR_ERR_INVALID, "fri_net_encode: NULL buffer");
    b->len = 0;
    uint8_t pre[FRI_NET_PREFIX_MAX];
    size_t n, tl;
    fr_err e = fri_net_encode_prefix(m, pre, sizeof pre, &n);
    if (e) return e;
    const uint8_t *tail = tail_of(m, &tl);
    fri_buf_put(b, pre, n);
    fri_buf_put(b, tail, tl);
    if (b->err) return fri_fail(b->err, WHAT ": %s: no memory for %zu bytes", fri_net_type_name(m->type), n + tl);
    return FR_OK;
}
