/* The network protocol's messages (src/runtime/net/wire.c): round trips of every type at
 * its boundary values, exact bytes against an independent bitwise CRC-32C, every
 * truncation and every single-bit flip refused, oversize refused with the size, each field
 * check behind a valid CRC (decoder) and before writing (encoder), the header peek, and the
 * named seeds of fuzz/make_seeds.py (an independent encoder). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/core.h"
#include "fl/fl_internal.h"
#include "runtime/net/pack.h"
#include "runtime/net/transport.h"
#include "runtime/net/wire.h"

#define MAXP ((size_t)1 << 20)

/* CRC-32C bit by bit, independent of src/core/crc.c (tables, SSE4.2). */
static uint32_t crc_bitwise(uint32_t crc, const uint8_t *p, size_t n) {
    crc = ~crc;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++) crc = (crc >> 1) ^ ((crc & 1) ? 0x82F63B78u : 0);
    }
    return ~crc;
}

static const uint8_t TICKET[16] = {0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17,
                                   0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f};
static uint8_t TOKEN[256], TEXT[512], BODY[1000];

static void fill(void) {
    for (int i = 0; i < 256; i++) TOKEN[i] = (uint8_t)(0x21 + i % 94);
    for (int i = 0; i < 512; i++) TEXT[i] = (uint8_t)(0x20 + i % 95); /* every printable byte */
    for (int i = 0; i < 1000; i++) BODY[i] = (uint8_t)(i * 7 + 3);
}

/* Valid messages at the boundaries of every field. */
#define N_SAMPLES 29
static const uint8_t ROW_IDS[12] = {0, 0, 0, 0, 5, 0, 0, 0, 0xff, 0xff, 0xff, 0xff}; /* 0, 5, 2^32 - 1 */
static fri_net_msg sample(int k) {
    fill();
    fri_net_msg m;
    memset(&m, 0, sizeof m);
    switch (k) {
    case 0: m.type = FRI_NET_HELLO; m.hello.client = 0; m.hello.caps = 0; m.hello.model_round = 0;
        m.hello.token = TOKEN; m.hello.token_len = 1; break;
    case 1: m.type = FRI_NET_HELLO; m.hello.client = UINT32_MAX; m.hello.caps = FRI_NET_CAP_EVAL;
        m.hello.model_round = UINT32_MAX; m.hello.token = TOKEN; m.hello.token_len = 256; break;
    case 2: m.type = FRI_NET_WAIT; m.wait.retry_ms = 0; m.wait.rounds_done = 0; m.wait.reason = 0; break;
    case 3: m.type = FRI_NET_WAIT; m.wait.retry_ms = FRI_NET_RETRY_MAX_MS; m.wait.rounds_done = UINT32_MAX;
        m.wait.reason = FRI_NET_WAIT_HAVE_RESULT; break;
    case 4: m.type = FRI_NET_TASK; m.task.round = 1; m.task.deadline_ms = 1; m.task.ticket = TICKET;
        m.task.body = BODY; m.task.body_len = 1; break;
    case 5: m.type = FRI_NET_TASK; m.task.round = UINT32_MAX; m.task.deadline_ms = FRI_NET_DEADLINE_MAX_MS;
        m.task.ticket = TICKET; m.task.body = BODY; m.task.body_len = 1000; break;
    case 6: m.type = FRI_NET_RESULT; m.result.client = 0; m.result.round = 1; m.result.ticket = TICKET;
        m.result.body = BODY; m.result.body_len = 1; break; /* no evaluation: all zero */
    case 7: m.type = FRI_NET_RESULT; m.result.client = UINT32_MAX; m.result.round = UINT32_MAX;
        m.result.ticket = TICKET; m.result.eval = (fri_net_eval){UINT32_MAX, 4294967295.0, 4294967295.0, UINT64_MAX, 1e300};
        m.result.body = BODY; m.result.body_len = 1000; break;
    case 8: m.type = FRI_NET_RESULT; m.result.client = 5; m.result.round = 3; m.result.ticket = TICKET;
        m.result.eval = (fri_net_eval){10, 3.0, 2.125, 40, 31.5}; m.result.body = BODY; m.result.body_len = 17; break;
    case 9: m.type = FRI_NET_ACK; m.ack.round = 1; m.ack.status = FRI_NET_ACK_ACCEPTED; break;
    case 10: m.type = FRI_NET_ACK; m.ack.round = UINT32_MAX; m.ack.status = FRI_NET_ACK_REFUSED; m.ack.text = TEXT;
        m.ack.text_len = 512; break;
    case 11: m.type = FRI_NET_ACK; m.ack.round = 9; m.ack.status = FRI_NET_ACK_LATE; m.ack.text = TEXT;
        m.ack.text_len = 1; break;
    case 12: m.type = FRI_NET_REFUSE; m.refuse.code = 1; break;
    case 13: m.type = FRI_NET_REFUSE; m.refuse.code = FRI_NET_REFUSE_FEDERATION; m.refuse.text = TEXT;
        m.refuse.text_len = 512; break;
    case 14: m.type = FRI_NET_DONE; m.done.rounds_done = 0; break;
    case 15: m.type = FRI_NET_DONE; m.done.rounds_done = UINT32_MAX; m.done.model = BODY; m.done.model_len = 1000; break;
    case 21: m.type = FRI_NET_SA_TASK; m.sa_task.round = 1; m.sa_task.deadline_ms = 1; m.sa_task.ticket = TICKET;
        m.sa_task.party = 0; m.sa_task.n = 2; m.sa_task.k = 1; m.sa_task.t = 1; m.sa_task.len = 1;
        m.sa_task.body = BODY; m.sa_task.body_len = 1; break;
    case 22: m.type = FRI_NET_SA_TASK; m.sa_task.round = UINT32_MAX; m.sa_task.deadline_ms = FRI_NET_DEADLINE_MAX_MS;
        m.sa_task.ticket = TICKET; m.sa_task.party = UINT32_MAX - 1; m.sa_task.n = UINT32_MAX; m.sa_task.k = 254;
        m.sa_task.t = 254; m.sa_task.len = (uint64_t)1 << 32; m.sa_task.bound = (uint64_t)INT64_MAX / UINT32_MAX;
        m.sa_task.session = UINT64_MAX; m.sa_task.graph_seed = UINT64_MAX; m.sa_task.body = BODY;
        m.sa_task.body_len = 1000; break;
    case 23: m.type = FRI_NET_SA_DOWN; m.sa_down.round = 1; m.sa_down.deadline_ms = 1; m.sa_down.stage = 1;
        m.sa_down.body = BODY; m.sa_down.body_len = 1; break;
    case 24: m.type = FRI_NET_SA_DOWN; m.sa_down.round = UINT32_MAX; m.sa_down.deadline_ms = FRI_NET_DEADLINE_MAX_MS;
        m.sa_down.stage = 3; m.sa_down.body = BODY; m.sa_down.body_len = 1000; break;
    case 25: m.type = FRI_NET_SA_UP; m.sa_up.client = 0; m.sa_up.round = 1; m.sa_up.ticket = TICKET; m.sa_up.stage = 0;
        m.sa_up.body = BODY; m.sa_up.body_len = 1; break;
    case 26: m.type = FRI_NET_SA_UP; m.sa_up.client = UINT32_MAX; m.sa_up.round = UINT32_MAX; m.sa_up.ticket = TICKET;
        m.sa_up.stage = 2; m.sa_up.config_crc = 0xdeadbeefu; m.sa_up.flags = 1; m.sa_up.weight = UINT64_MAX;
        m.sa_up.examples = 7; m.sa_up.loss_sum = -1.5; m.sa_up.body = BODY; m.sa_up.body_len = 1000; break;
    case 27: m.type = FRI_NET_ROWS_REQ; m.rows_req.client = 3; m.rows_req.round = 1; m.rows_req.ticket = TICKET;
        m.rows_req.count = 3; m.rows_req.ids = ROW_IDS; break;
    case 28: m.type = FRI_NET_ROWS; m.rows.round = UINT32_MAX; m.rows.count = 1; m.rows.body = BODY;
        m.rows.body_len = 1000; break;
    default: /* 16..20: every WAIT reason and REFUSE code in between */
        if (k < 19) { m.type = FRI_NET_WAIT; m.wait.retry_ms = 250; m.wait.rounds_done = 7; m.wait.reason = (uint8_t)(k - 15); }
        else { m.type = FRI_NET_REFUSE; m.refuse.code = (uint8_t)(k - 17); m.refuse.text = TEXT; m.refuse.text_len = 40; }
        break;
    }
    return m;
}

static uint8_t *encode(const fri_net_msg *m, size_t *n) {
    fri_buf b = {0};
    cr_assert_eq(fri_net_encode(&b, m), FR_OK, "%s", fr_errmsg());
    *n = b.len;
    return b.data;
}

static void assert_same(const fri_net_msg *a, const fri_net_msg *b) {
    cr_assert_eq(a->type, b->type);
    switch (a->type) {
    case FRI_NET_HELLO:
        cr_assert(a->hello.client == b->hello.client && a->hello.caps == b->hello.caps &&
                  a->hello.model_round == b->hello.model_round && a->hello.token_len == b->hello.token_len);
        cr_assert(memcmp(a->hello.token, b->hello.token, a->hello.token_len) == 0);
        break;
    case FRI_NET_WAIT:
        cr_assert(a->wait.retry_ms == b->wait.retry_ms && a->wait.rounds_done == b->wait.rounds_done &&
                  a->wait.reason == b->wait.reason);
        break;
    case FRI_NET_TASK:
        cr_assert(a->task.round == b->task.round && a->task.deadline_ms == b->task.deadline_ms);
        cr_assert(memcmp(a->task.ticket, b->task.ticket, 16) == 0);
        cr_assert(a->task.body_len == b->task.body_len && memcmp(a->task.body, b->task.body, a->task.body_len) == 0);
        break;
    case FRI_NET_RESULT:
        cr_assert(a->result.client == b->result.client && a->result.round == b->result.round);
        cr_assert(memcmp(a->result.ticket, b->result.ticket, 16) == 0);
        cr_assert(a->result.eval.users == b->result.eval.users && a->result.eval.hit_sum == b->result.eval.hit_sum &&
                  a->result.eval.ndcg_sum == b->result.eval.ndcg_sum && a->result.eval.rated == b->result.eval.rated &&
                  a->result.eval.sq_err_sum == b->result.eval.sq_err_sum);
        cr_assert(a->result.body_len == b->result.body_len &&
                  memcmp(a->result.body, b->result.body, a->result.body_len) == 0);
        break;
    case FRI_NET_ACK:
        cr_assert(a->ack.round == b->ack.round && a->ack.status == b->ack.status && a->ack.text_len == b->ack.text_len);
        cr_assert(a->ack.text_len == 0 || memcmp(a->ack.text, b->ack.text, a->ack.text_len) == 0);
        break;
    case FRI_NET_REFUSE:
        cr_assert(a->refuse.code == b->refuse.code && a->refuse.text_len == b->refuse.text_len);
        cr_assert(a->refuse.text_len == 0 || memcmp(a->refuse.text, b->refuse.text, a->refuse.text_len) == 0);
        break;
    case FRI_NET_DONE:
        cr_assert(a->done.rounds_done == b->done.rounds_done && a->done.model_len == b->done.model_len);
        cr_assert(a->done.model_len == 0 || memcmp(a->done.model, b->done.model, a->done.model_len) == 0);
        break;
    case FRI_NET_SA_TASK:
        cr_assert(a->sa_task.round == b->sa_task.round && a->sa_task.deadline_ms == b->sa_task.deadline_ms &&
                  a->sa_task.party == b->sa_task.party && a->sa_task.n == b->sa_task.n && a->sa_task.k == b->sa_task.k &&
                  a->sa_task.t == b->sa_task.t && a->sa_task.len == b->sa_task.len &&
                  a->sa_task.bound == b->sa_task.bound && a->sa_task.session == b->sa_task.session &&
                  a->sa_task.graph_seed == b->sa_task.graph_seed);
        cr_assert(memcmp(a->sa_task.ticket, b->sa_task.ticket, 16) == 0);
        cr_assert(a->sa_task.body_len == b->sa_task.body_len &&
                  memcmp(a->sa_task.body, b->sa_task.body, a->sa_task.body_len) == 0);
        break;
    case FRI_NET_SA_DOWN:
        cr_assert(a->sa_down.round == b->sa_down.round && a->sa_down.deadline_ms == b->sa_down.deadline_ms &&
                  a->sa_down.stage == b->sa_down.stage && a->sa_down.body_len == b->sa_down.body_len);
        cr_assert(memcmp(a->sa_down.body, b->sa_down.body, a->sa_down.body_len) == 0);
        break;
    case FRI_NET_SA_UP:
        cr_assert(a->sa_up.client == b->sa_up.client && a->sa_up.round == b->sa_up.round &&
                  a->sa_up.stage == b->sa_up.stage && a->sa_up.config_crc == b->sa_up.config_crc &&
                  a->sa_up.flags == b->sa_up.flags && a->sa_up.weight == b->sa_up.weight &&
                  a->sa_up.examples == b->sa_up.examples && a->sa_up.loss_sum == b->sa_up.loss_sum);
        cr_assert(memcmp(a->sa_up.ticket, b->sa_up.ticket, 16) == 0);
        cr_assert(a->sa_up.body_len == b->sa_up.body_len &&
                  memcmp(a->sa_up.body, b->sa_up.body, a->sa_up.body_len) == 0);
        break;
    case FRI_NET_ROWS_REQ:
        cr_assert(a->rows_req.client == b->rows_req.client && a->rows_req.round == b->rows_req.round &&
                  a->rows_req.count == b->rows_req.count);
        cr_assert(memcmp(a->rows_req.ticket, b->rows_req.ticket, 16) == 0);
        cr_assert(memcmp(a->rows_req.ids, b->rows_req.ids, 4 * (size_t)a->rows_req.count) == 0);
        break;
    case FRI_NET_ROWS:
        cr_assert(a->rows.round == b->rows.round && a->rows.count == b->rows.count &&
                  a->rows.body_len == b->rows.body_len && memcmp(a->rows.body, b->rows.body, a->rows.body_len) == 0);
        break;
    default: cr_assert_fail("type %u", a->type);
    }
}

/* Rewrites the length and CRC (with the independent CRC) after editing a message. */
static void reseal(uint8_t *b, size_t n) {
    fri_put_u32(b + 8, (uint32_t)(n - 16));
    uint32_t c = crc_bitwise(crc_bitwise(0, b, 12), b + 16, n - 16);
    fri_put_u32(b + 12, c);
}

static fr_err decode_err(const uint8_t *b, size_t n) {
    fri_net_msg m;
    return fri_net_decode(b, n, MAXP, &m);
}

#define assert_msg(sub) cr_assert(strstr(fr_errmsg(), (sub)) != NULL, "expected \"%s\" in: %s", (sub), fr_errmsg())

/* ------------------------------------------------------------------ round trips */

Test(net_wire, every_type_round_trips_at_its_boundaries) {
    for (int k = 0; k < N_SAMPLES; k++) {
        fri_net_msg m = sample(k), d;
        size_t n = 0;
        uint8_t *b = encode(&m, &n);
        cr_assert_eq(fri_net_encoded_size(&m), n, "sample %d", k);
        cr_assert_eq(fri_net_decode(b, n, MAXP, &d), FR_OK, "sample %d: %s", k, fr_errmsg());
        assert_same(&m, &d);
        /* views into the bytes, no copies */
        if (d.type == FRI_NET_TASK) cr_assert(d.task.body == b + 16 + 24);
        if (d.type == FRI_NET_HELLO) cr_assert(d.hello.token == b + 16 + 14);
        size_t n2 = 0;
        uint8_t *b2 = encode(&d, &n2);
        cr_assert(n2 == n && memcmp(b, b2, n) == 0, "sample %d: re-encoding differs", k);
        /* the prefix, then the tail, is the message */
        uint8_t pre[FRI_NET_PREFIX_MAX];
        size_t pn = 0;
        cr_assert_eq(fri_net_encode_prefix(&m, pre, sizeof pre, &pn), FR_OK);
        cr_assert(pn <= n && memcmp(pre, b, pn) == 0);
        size_t tail = m.type == FRI_NET_TASK ? m.task.body_len : m.type == FRI_NET_RESULT ? m.result.body_len
                    : m.type == FRI_NET_DONE ? m.done.model_len : m.type == FRI_NET_SA_TASK ? m.sa_task.body_len
                    : m.type == FRI_NET_SA_DOWN ? m.sa_down.body_len : m.type == FRI_NET_SA_UP ? m.sa_up.body_len
                    : m.type == FRI_NET_ROWS_REQ ? 4 * (size_t)m.rows_req.count : m.type == FRI_NET_ROWS ? m.rows.body_len
                    : 0;
        if (d.type == FRI_NET_SA_TASK) cr_assert(d.sa_task.body == b + 16 + 72);
        if (d.type == FRI_NET_SA_UP) cr_assert(d.sa_up.body == b + 16 + 57);
        cr_assert_eq(pn + tail, n, "sample %d", k);
        cr_assert_eq(fri_net_encode_prefix(&m, pre, pn - 1, &pn), FR_ERR_RANGE);
        /* the peek agrees with the header from its first 16 bytes alone */
        uint8_t type = 0;
        uint32_t len = 0;
        cr_assert_eq(fri_net_peek_header(b, 16, &type, &len), FR_OK);
        cr_assert(type == m.type && len == n - 16);
        free(b);
        free(b2);
    }
}

Test(net_wire, a_buffer_is_reused) {
    fri_buf b = {0};
    fri_net_msg big = sample(15), small = sample(2);
    cr_assert_eq(fri_net_encode(&b, &big), FR_OK);
    cr_assert_eq(b.len, 16 + 4 + 1000);
    cr_assert_eq(fri_net_encode(&b, &small), FR_OK);
    cr_assert_eq(b.len, 16 + 9);
    fri_net_msg d;
    cr_assert_eq(fri_net_decode(b.data, b.len, MAXP, &d), FR_OK);
    cr_assert_eq(d.type, FRI_NET_WAIT);
    fri_buf_free(&b);
}

/* The exact bytes of a WAIT, written out by hand; the CRC from the bitwise reference. */
Test(net_wire, exact_bytes_of_a_wait) {
    fri_net_msg m = {.type = FRI_NET_WAIT};
    m.wait.retry_ms = 0x00030201;
    m.wait.rounds_done = 0x0a0b0c0d;
    m.wait.reason = 3;
    uint8_t want[25] = {'F', 'R', 'N', 'T', 3, 2, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0,
                        0x01, 0x02, 0x03, 0x00, 0x0d, 0x0c, 0x0b, 0x0a, 3};
    fri_put_u32(want + 12, crc_bitwise(crc_bitwise(0, want, 12), want + 16, 9));
    size_t n = 0;
    uint8_t *b = encode(&m, &n);
    cr_assert_eq(n, 25);
    cr_assert(memcmp(b, want, 25) == 0);
    free(b);
}

/* The library's CRC-32C against the bitwise reference: the standard check value, and the
 * CRC field of every sample (header bytes [0, 12) then the payload). */
Test(net_wire, crc_matches_an_independent_bitwise_crc32c) {
    cr_assert_eq(crc_bitwise(0, (const uint8_t *)"123456789", 9), 0xE3069283u);
    cr_assert_eq(fr_crc32c(0, "123456789", 9), 0xE3069283u);
    for (int k = 0; k < N_SAMPLES; k++) {
        fri_net_msg m = sample(k);
        size_t n = 0;
        uint8_t *b = encode(&m, &n);
        uint32_t want = crc_bitwise(crc_bitwise(0, b, 12), b + 16, n - 16);
        cr_assert_eq(fri_get_u32(b + 12), want, "sample %d", k);
        free(b);
    }
}

/* The CRC of A then B from the CRCs of A and B (fri_crc32c_combine) against the bitwise
 * CRC of the joined bytes, at lengths around the three-stream block and at 0; and a
 * message's prefix encoded with its body's CRC given is the prefix of the whole message. */
Test(net_wire, crc_combine_and_a_prefix_given_its_bodys_crc) {
    static uint8_t buf[3 * 4096 * 2 + 77];
    for (size_t i = 0; i < sizeof buf; i++) buf[i] = (uint8_t)(i * 131u + (i >> 7) * 7u + 3u);
    const size_t cuts[] = {0, 1, 7, 8, 100, 4096, 3 * 4096 - 1, 3 * 4096, 3 * 4096 + 5, sizeof buf};
    for (size_t a = 0; a < sizeof cuts / sizeof *cuts; a++)
        for (size_t b = 0; b < sizeof cuts / sizeof *cuts; b++) {
            size_t na = cuts[a], nb = cuts[b];
            if (na + nb > sizeof buf) continue;
            uint32_t want = crc_bitwise(0, buf, na + nb);
            uint32_t got = fri_crc32c_combine(crc_bitwise(0, buf, na), crc_bitwise(0, buf + na, nb), nb);
            cr_assert_eq(got, want, "A %zu bytes, B %zu bytes", na, nb);
        }
    for (int k = 0; k < N_SAMPLES; k++) {
        fri_net_msg m = sample(k);
        size_t n = 0, pn = 0, qn = 0;
        uint8_t *whole = encode(&m, &n);
        uint8_t pre[FRI_NET_PREFIX_MAX], q[FRI_NET_PREFIX_MAX];
        cr_assert_eq(fri_net_encode_prefix(&m, pre, sizeof pre, &pn), FR_OK);
        size_t tl = n - pn;
        uint32_t tcrc = crc_bitwise(0, whole + pn, tl);
        cr_assert_eq(fri_net_encode_prefix_crc(&m, tcrc, q, sizeof q, &qn), FR_OK);
        cr_assert_eq(qn, pn, "sample %d", k);
        cr_assert(memcmp(q, whole, qn) == 0, "sample %d: the prefix differs", k);
        free(whole);
    }
}

/* ------------------------------------------------------------------ damage */

Test(net_wire, every_truncation_is_refused) {
    for (int k = 0; k < N_SAMPLES; k++) {
        fri_net_msg m = sample(k);
        size_t n = 0;
        uint8_t *b = encode(&m, &n);
        for (size_t cut = 0; cut < n; cut++) {
            uint8_t *c = malloc(cut ? cut : 1); /* exact size: ASan sees any read past it */
            memcpy(c, b, cut);
            fr_err e = decode_err(c, cut);
            cr_assert_eq(e, FR_ERR_FORMAT, "sample %d cut to %zu: %d %s", k, cut, e, fr_errmsg());
            free(c);
        }
        uint8_t *longer = malloc(n + 1);
        memcpy(longer, b, n);
        longer[n] = 0;
        cr_assert_eq(decode_err(longer, n + 1), FR_ERR_FORMAT);
        assert_msg("1 bytes after the");
        free(longer);
        free(b);
    }
    cr_assert_eq(decode_err(NULL, 0), FR_ERR_FORMAT);
    assert_msg("0 bytes, shorter than the 16-byte header");
}

/* Every single-bit flip is refused. The header's magic, version, flags and length are
 * refused by their own checks (never by the CRC); a type flipped to another known type
 * (a TASK's bit 2 makes a DONE, which would accept any payload) is caught by the CRC,
 * which covers the header; a payload flip by the CRC. */
Test(net_wire, every_single_bit_flip_is_refused) {
    long flips = 0;
    for (int k = 0; k < N_SAMPLES; k++) {
        fri_net_msg m = sample(k);
        size_t n = 0;
        uint8_t *b = encode(&m, &n);
        for (size_t i = 0; i < n; i++) {
            for (int bit = 0; bit < 8; bit++) {
                b[i] ^= (uint8_t)(1u << bit);
                fri_net_msg d;
                fr_err e = fri_net_decode(b, n, MAXP, &d);
                cr_assert_neq(e, FR_OK, "sample %d: flip of byte %zu bit %d decodes (type %u)", k, i, bit, d.type);
                /* a RESULT's flag bit 1 (FRI_NET_FLAG_PACKED) is a valid flag: the CRC refuses it */
                bool packed_flag = i == 6 && bit == 1 && m.type == FRI_NET_RESULT;
                if ((i < 5 || (i >= 6 && i < 12)) && !packed_flag)
                    cr_assert_neq(e, FR_ERR_CHECKSUM, "sample %d: header byte %zu not checked by itself", k, i);
                if (packed_flag) cr_assert_eq(e, FR_ERR_CHECKSUM);
                if (i == 4) cr_assert_eq(e, FR_ERR_VERSION);
                uint8_t t = 0;
                uint32_t len = 0;
                if (i < 8) { /* the peek sees the same damage (except a length flip it cannot judge) */
                    bool known = (i == 5 && b[5] >= 1 && b[5] <= FRI_NET_TYPE_MAX) || packed_flag;
                    if (!known) cr_assert_neq(fri_net_peek_header(b, n, &t, &len), FR_OK, "byte %zu bit %d", i, bit);
                }
                b[i] ^= (uint8_t)(1u << bit);
                flips++;
            }
        }
        cr_assert_eq(decode_err(b, n), FR_OK);
        free(b);
    }
    cr_assert_gt(flips, 40000);
}

Test(net_wire, oversize_is_refused_with_the_size) {
    fri_net_msg m = sample(5); /* a TASK of 1024 payload bytes */
    size_t n = 0;
    uint8_t *b = encode(&m, &n);
    fri_net_msg d;
    cr_assert_eq(fri_net_decode(b, n, 1024, &d), FR_OK);
    cr_assert_eq(fri_net_decode(b, n, 1023, &d), FR_ERR_RANGE);
    assert_msg("TASK: payload of 1024 bytes, larger than the limit of 1023");
    cr_assert_eq(d.type, 0, "a refused message leaves nothing behind");
    cr_assert_eq(fri_net_refuse_code_for(FR_ERR_RANGE), FRI_NET_REFUSE_TOO_LARGE);
    /* a small type's header announcing more than 4 KiB: refused from the header alone,
     * whatever the caller's limit */
    uint8_t h[16];
    memcpy(h, b, 16);
    h[5] = FRI_NET_HELLO;
    fri_put_u32(h + 8, 4097);
    uint8_t t;
    uint32_t len;
    cr_assert_eq(fri_net_peek_header(h, 16, &t, &len), FR_ERR_RANGE);
    assert_msg("HELLO: payload of 4097 bytes, at most 4096 for this type");
    cr_assert_eq(fri_net_decode(h, 16, SIZE_MAX, &d), FR_ERR_RANGE);
    fri_put_u32(h + 8, 4096);
    cr_assert_eq(fri_net_peek_header(h, 16, &t, &len), FR_OK);
    cr_assert(t == FRI_NET_HELLO && len == 4096);
    /* a large type's header is the caller's to judge, before receiving the body */
    h[5] = FRI_NET_RESULT;
    fri_put_u32(h + 8, UINT32_MAX);
    cr_assert_eq(fri_net_peek_header(h, 16, &t, &len), FR_OK);
    cr_assert_eq(len, UINT32_MAX);
    cr_assert_eq(fri_net_decode(h, 16, MAXP, &d), FR_ERR_RANGE);
    assert_msg("RESULT: payload of 4294967295 bytes, larger than the limit of 1048576");
    free(b);
}

Test(net_wire, header_checks_name_the_field_and_value) {
    fri_net_msg m = sample(2);
    size_t n = 0;
    uint8_t *b = encode(&m, &n), t;
    uint32_t len;
    b[0] = 'X';
    cr_assert_eq(decode_err(b, n), FR_ERR_FORMAT);
    assert_msg("bad magic 0x544e5258, expected 0x544e5246 (\"FRNT\")");
    b[0] = 'F';
    b[4] = 2;
    cr_assert_eq(decode_err(b, n), FR_ERR_VERSION);
    assert_msg("protocol version 2, this build speaks version 3");
    cr_assert_eq(fri_net_peek_header(b, n, &t, &len), FR_ERR_VERSION);
    cr_assert_eq(fri_net_refuse_code_for(FR_ERR_VERSION), FRI_NET_REFUSE_VERSION);
    b[4] = FRI_NET_VERSION;
    b[5] = 0;
    cr_assert_eq(decode_err(b, n), FR_ERR_FORMAT);
    assert_msg("unknown type 0, expected 1..12");
    b[5] = 13;
    cr_assert_eq(decode_err(b, n), FR_ERR_FORMAT);
    assert_msg("unknown type 13");
    b[5] = 2;
    b[7] = 0x80;
    cr_assert_eq(decode_err(b, n), FR_ERR_FORMAT);
    assert_msg("WAIT: flags 0x8000, expected bits of 0x0003 only");
    b[7] = 0;
    b[6] = FRI_NET_FLAG_PACKED; /* a known flag, but only for a RESULT */
    cr_assert_eq(decode_err(b, n), FR_ERR_FORMAT);
    assert_msg("WAIT: flags 0x0002: only a RESULT is packed");
    b[6] = 0;
    b[8] = 10;
    cr_assert_eq(decode_err(b, n), FR_ERR_FORMAT);
    assert_msg("WAIT: truncated: the header announces 10 payload bytes, 9 arrived");
    b[8] = 9;
    b[12] ^= 1;
    cr_assert_eq(decode_err(b, n), FR_ERR_CHECKSUM);
    assert_msg("WAIT: damaged: CRC-32C 0x");
    cr_assert_eq(fri_net_refuse_code_for(FR_ERR_CHECKSUM), FRI_NET_REFUSE_MALFORMED);
    cr_assert_eq(fri_net_refuse_code_for(FR_ERR_FORMAT), FRI_NET_REFUSE_MALFORMED);
    cr_assert_eq(fri_net_peek_header(b, 15, &t, &len), FR_ERR_FORMAT);
    assert_msg("15 bytes, shorter than the 16-byte header");
    free(b);
}

/* ------------------------------------------------------------------ field checks */

/* A message's bytes edited at off, resealed (so only the field check can refuse it):
 * the decoder's error and message. */
static void expect_field(int k, size_t off, const void *val, size_t vn, const char *sub) {
    fri_net_msg m = sample(k);
    size_t n = 0;
    uint8_t *b = encode(&m, &n);
    cr_assert_leq(off + vn, n);
    memcpy(b + off, val, vn);
    reseal(b, n);
    fr_err e = decode_err(b, n);
    cr_assert_eq(e, FR_ERR_FORMAT, "sample %d at %zu: %d %s", k, off, e, fr_errmsg());
    assert_msg(sub);
    free(b);
}

static void expect_u32(int k, size_t off, uint32_t v, const char *sub) {
    uint8_t t[4];
    fri_put_u32(t, v);
    expect_field(k, off, t, 4, sub);
}
static void expect_f64(int k, size_t off, double v, const char *sub) {
    uint8_t t[8];
    fri_put_f64(t, v);
    expect_field(k, off, t, 8, sub);
}

Test(net_wire, each_field_is_checked_behind_a_valid_crc) {
    const size_t P = 16; /* payload offset */
    /* HELLO (sample 1: 256-byte token) */
    expect_u32(1, P + 4, 8, "HELLO: capabilities 0x00000008, expected only bits of 0x00000007");
    uint8_t tl[2];
    fri_put_u16(tl, 0);
    expect_field(1, P + 12, tl, 2, "HELLO: token length 0, expected 1..256");
    fri_put_u16(tl, 257);
    expect_field(1, P + 12, tl, 2, "HELLO: token length 257, expected 1..256");
    fri_put_u16(tl, 255);
    expect_field(1, P + 12, tl, 2, "HELLO: 1 unexpected bytes after the token");
    expect_field(1, P + 14 + 7, " ", 1, "HELLO: token byte 7 is not printable ASCII (0x21..0x7e)");
    expect_field(1, P + 14 + 9, "\x80", 1, "HELLO: token byte 9 is not printable ASCII");
    /* WAIT (sample 3) */
    expect_u32(3, P, FRI_NET_RETRY_MAX_MS + 1, "WAIT: retry after 3600001 ms, expected at most 3600000");
    expect_field(3, P + 8, "\x05", 1, "WAIT: reason 5, expected 0..4");
    /* TASK (sample 5) */
    expect_u32(5, P, 0, "TASK: round 0, expected >= 1");
    expect_u32(5, P + 4, 0, "TASK: deadline 0 ms, expected 1..86400000");
    expect_u32(5, P + 4, FRI_NET_DEADLINE_MAX_MS + 1, "TASK: deadline 86400001 ms, expected 1..86400000");
    /* RESULT (sample 8: 10 users, 40 rated pairs) */
    const size_t E = P + 24;
    expect_u32(8, P + 4, 0, "RESULT: round 0, expected >= 1");
    expect_u32(8, E, 2, "RESULT: hit sum 3 over 2 users, expected at most one hit per user");
    expect_f64(8, E + 4, 10.5, "RESULT: hit sum 10.5 over 10 users");
    expect_f64(8, E + 4, -0.5, "RESULT: hit sum -0.5, expected a finite value >= 0");
    expect_f64(8, E + 12, NAN, "RESULT: ndcg sum nan, expected a finite value >= 0");
    expect_f64(8, E + 12, 10.25, "RESULT: ndcg sum 10.25 over 10 users, expected at most 1 per user");
    expect_f64(8, E + 28, INFINITY, "RESULT: squared-error sum inf, expected a finite value >= 0");
    uint8_t zero8[8] = {0};
    expect_field(8, E + 20, zero8, 8, "RESULT: squared-error sum 31.5 over 0 rated pairs, expected 0");
    /* ACK (sample 11: 1-byte text) */
    expect_u32(11, P, 0, "ACK: round 0, expected >= 1");
    expect_field(11, P + 4, "\x03", 1, "ACK: status 3, expected 0..2");
    expect_field(11, P + 7, "\x1b", 1, "ACK: text byte 0 is 0x1b, expected no control characters");
    expect_field(11, P + 7, "\x7f", 1, "ACK: text byte 0 is 0x7f");
    fri_put_u16(tl, 2);
    expect_field(11, P + 5, tl, 2, "ACK: truncated network message: text needs 2 bytes at offset 23, 1 left");
    fri_put_u16(tl, 0);
    expect_field(11, P + 5, tl, 2, "ACK: 1 unexpected bytes after the text");
    /* REFUSE (sample 13: 512-byte text) */
    expect_field(13, P, "\x00", 1, "REFUSE: code 0, expected 1..7");
    expect_field(13, P, "\x08", 1, "REFUSE: code 8, expected 1..7");
    fri_put_u16(tl, 513);
    expect_field(13, P + 1, tl, 2, "REFUSE: text length 513, expected at most 512");
    expect_field(13, P + 3 + 100, "frt_", 4, "REFUSE: the text contains \"frt_\": a text never holds a token");
    /* SA_TASK (sample 21: n 2, k 1, t 1, len 1) */
    expect_u32(21, P, 0, "SA_TASK: round 0, expected >= 1");
    expect_u32(21, P + 4, 0, "SA_TASK: deadline 0 ms");
    expect_u32(21, P + 24, 2, "SA_TASK: party 2, expected < n = 2");
    expect_u32(21, P + 28, 1, "SA_TASK: secure aggregation parameters n 1, k 1, t 1");
    expect_u32(21, P + 32, 2, "SA_TASK: secure aggregation parameters n 2, k 2, t 1");
    expect_u32(21, P + 36, 0, "do not hold together");
    uint8_t u8[8];
    fri_put_u64(u8, 0);
    expect_field(21, P + 40, u8, 8, "len 0, bound 0 do not hold together");
    fri_put_u64(u8, (uint64_t)INT64_MAX / 2 + 1);
    expect_field(21, P + 48, u8, 8, "do not hold together");
    /* SA_DOWN (sample 23) */
    expect_u32(23, P, 0, "SA_DOWN: round 0, expected >= 1");
    expect_u32(23, P + 4, FRI_NET_DEADLINE_MAX_MS + 1, "SA_DOWN: deadline 86400001 ms");
    expect_field(23, P + 8, "\x00", 1, "SA_DOWN: stage 0, expected 1..3");
    expect_field(23, P + 8, "\x04", 1, "SA_DOWN: stage 4, expected 1..3");
    /* SA_UP (sample 25: stage 0; 26: stage 2 with a header) */
    expect_u32(25, P + 4, 0, "SA_UP: round 0, expected >= 1");
    expect_field(25, P + 24, "\x04", 1, "SA_UP: stage 4, expected 0..3");
    expect_u32(25, P + 25, 7, "SA_UP: stage 0 carries a result header, expected zeros");
    expect_f64(25, P + 49, -0.0, "SA_UP: stage 0 carries a result header");
    expect_f64(26, P + 49, NAN, "SA_UP: loss sum nan, expected a finite value");
    expect_field(26, P + 24, "\x01", 1, "SA_UP: stage 1 carries a result header");
    /* ROWS_REQ (sample 27: ids 0, 5, 2^32 - 1), ROWS (28) */
    expect_u32(27, P + 4, 0, "ROWS_REQ: round 0, expected >= 1");
    expect_u32(27, P + 28 + 4, 0, "ROWS_REQ: id 0 follows 0, expected increasing");
    expect_u32(27, P + 28 + 8, 5, "ROWS_REQ: id 5 follows 5, expected increasing");
    expect_u32(27, P + 24, 2, "ROWS_REQ: 4 unexpected bytes after the ids");
    expect_u32(27, P + 24, 4, "ROWS_REQ");
    expect_u32(28, P, 0, "ROWS: round 0, expected >= 1");
    expect_u32(28, P + 4, 0, "ROWS: count 0, expected at least 1");
}

/* Fixed fields cut short, or an opaque part missing, behind a valid CRC. */
Test(net_wire, short_payloads_behind_a_valid_crc) {
    struct { int k; size_t keep; const char *sub; } cases[] = {
        {4, 24, "TASK: no task bytes after the fixed fields, expected at least 1 byte"},
        {8, 60, "RESULT: no result bytes after the fixed fields, expected at least 1 byte"},
        {8, 59, "RESULT: truncated network message: squared-error sum needs 8 bytes at offset 68, 7 left"},
        {2, 8, "WAIT: truncated network message: reason needs 1 bytes at offset 24, 0 left"},
        {14, 3, "DONE: truncated network message: rounds completed needs 4 bytes at offset 16, 3 left"},
        {12, 2, "REFUSE: truncated network message: text length needs 2 bytes at offset 17, 1 left"},
        {0, 13, "HELLO: truncated network message: token length needs 2 bytes at offset 28, 1 left"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        fri_net_msg m = sample(cases[c].k);
        size_t n = 0;
        uint8_t *b = encode(&m, &n);
        size_t cut = 16 + cases[c].keep;
        reseal(b, cut);
        cr_assert_eq(decode_err(b, cut), FR_ERR_FORMAT, "case %zu", c);
        assert_msg(cases[c].sub);
        free(b);
    }
}

/* The encoder refuses what the decoder refuses, before writing anything. */
Test(net_wire, the_encoder_refuses_invalid_messages) {
    fri_buf b = {0};
    fri_net_msg m = sample(1);
    m.hello.token_len = 0;
    cr_assert_eq(fri_net_encode(&b, &m), FR_ERR_INVALID);
    assert_msg("HELLO: token length 0, expected 1..256");
    m.hello.token_len = 257;
    cr_assert_eq(fri_net_encode(&b, &m), FR_ERR_INVALID);
    m = sample(1);
    m.hello.token = NULL;
    cr_assert_eq(fri_net_encode(&b, &m), FR_ERR_INVALID);
    m = sample(4);
    m.task.body_len = 0;
    cr_assert_eq(fri_net_encode(&b, &m), FR_ERR_INVALID);
    assert_msg("TASK: no task bytes, expected at least 1");
    m = sample(4);
    m.task.ticket = NULL;
    cr_assert_eq(fri_net_encode(&b, &m), FR_ERR_INVALID);
    assert_msg("TASK: NULL ticket");
    m = sample(8);
    m.result.eval.hit_sum = 11;
    cr_assert_eq(fri_net_encode(&b, &m), FR_ERR_INVALID);
    assert_msg("hit sum 11 over 10 users");
    m = sample(10);
    m.ack.text_len = 513;
    cr_assert_eq(fri_net_encode(&b, &m), FR_ERR_INVALID);
    assert_msg("ACK: text length 513, expected at most 512");
    m = sample(12);
    m.refuse.text = (const uint8_t *)"your token frt_abc is wrong";
    m.refuse.text_len = 27;
    cr_assert_eq(fri_net_encode(&b, &m), FR_ERR_INVALID);
    assert_msg("a text never holds a token");
    cr_assert(strstr(fr_errmsg(), "frt_abc") == NULL);
    m.type = 13;
    cr_assert_eq(fri_net_encode(&b, &m), FR_ERR_INVALID);
    assert_msg("unknown type 13");
    m = sample(15);
    m.done.model = NULL;
    cr_assert_eq(fri_net_encode(&b, &m), FR_ERR_INVALID);
    cr_assert_eq(b.len, 0);
    fri_buf_free(&b);
}

/* A token is a secret: no error message about a HELLO quotes it. */
Test(net_wire, errors_never_quote_the_token) {
    const char *tok = "frt_SECRETSECRETSECRET";
    fri_net_msg m = {.type = FRI_NET_HELLO};
    m.hello.client = 3;
    m.hello.token = (const uint8_t *)tok;
    m.hello.token_len = (uint16_t)strlen(tok);
    size_t n = 0;
    uint8_t *b = encode(&m, &n);
    for (size_t i = 0; i < n; i++) {
        for (int bit = 0; bit < 8; bit++) {
            b[i] ^= (uint8_t)(1u << bit);
            for (int pass = 0; pass < 2; pass++) {
                if (pass) reseal(b, n);
                if (decode_err(b, n) != FR_OK) cr_assert(strstr(fr_errmsg(), "SECRET") == NULL, "%s", fr_errmsg());
            }
            b[i] ^= (uint8_t)(1u << bit);
            reseal(b, n);
        }
    }
    free(b);
}

Test(net_wire, names_for_logs) {
    const char *types[] = {"unknown", "HELLO", "WAIT", "TASK", "RESULT", "ACK", "REFUSE", "DONE",
                           "SA_TASK", "SA_DOWN", "SA_UP", "ROWS_REQ", "ROWS", "unknown"};
    for (unsigned t = 0; t < 14; t++) cr_assert_str_eq(fri_net_type_name(t), types[t]);
    cr_assert_str_eq(fri_net_wait_reason_name(FRI_NET_WAIT_FEW_CLIENTS), "waiting for enough clients");
    cr_assert_str_eq(fri_net_wait_reason_name(5), "unknown");
    cr_assert_str_eq(fri_net_refuse_code_name(FRI_NET_REFUSE_FEDERATION), "another federation");
    cr_assert_str_eq(fri_net_refuse_code_name(0), "unknown");
}

/* The named seeds of fuzz/corpus/net (fuzz/make_seeds.py, an independent encoder)
 * decode or fail as their names say. */
Test(net_wire, fuzz_seeds_decode_as_named) {
    struct { const char *name; fr_err want; uint8_t type; } seeds[] = {
        {"valid_hello", FR_OK, FRI_NET_HELLO}, {"valid_wait", FR_OK, FRI_NET_WAIT},
        {"valid_task", FR_OK, FRI_NET_TASK}, {"valid_result", FR_OK, FRI_NET_RESULT},
        {"valid_ack", FR_OK, FRI_NET_ACK}, {"valid_refuse", FR_OK, FRI_NET_REFUSE},
        {"valid_done", FR_OK, FRI_NET_DONE}, {"valid_done_empty", FR_OK, FRI_NET_DONE},
        {"bad_version", FR_ERR_VERSION, 0}, {"bad_type", FR_ERR_FORMAT, 0}, {"bad_flags", FR_ERR_FORMAT, 0},
        {"bad_truncated", FR_ERR_FORMAT, 0}, {"bad_crc", FR_ERR_CHECKSUM, 0}, {"bad_type_flip", FR_ERR_CHECKSUM, 0},
        {"bad_token_length", FR_ERR_FORMAT, 0}, {"bad_hits", FR_ERR_FORMAT, 0}, {"bad_text", FR_ERR_FORMAT, 0},
        {"bad_short", FR_ERR_FORMAT, 0},
        {"valid_sa_task", FR_OK, FRI_NET_SA_TASK}, {"valid_sa_down", FR_OK, FRI_NET_SA_DOWN},
        {"valid_sa_up_keys", FR_OK, FRI_NET_SA_UP}, {"valid_sa_up_masked", FR_OK, FRI_NET_SA_UP},
        {"bad_sa_params", FR_ERR_FORMAT, 0}, {"bad_sa_stage", FR_ERR_FORMAT, 0}, {"bad_sa_header", FR_ERR_FORMAT, 0},
        {"valid_task_header_crc", FR_ERR_FORMAT, 0}, /* plain channel; over TLS below */
        {"valid_result_packed", FR_OK, FRI_NET_RESULT},
        {"valid_rows_req", FR_OK, FRI_NET_ROWS_REQ}, {"valid_rows", FR_OK, FRI_NET_ROWS},
        {"bad_rows_req_order", FR_ERR_FORMAT, 0}, {"bad_rows_req_count", FR_ERR_FORMAT, 0},
        {"bad_rows_empty", FR_ERR_FORMAT, 0},
        {"transport_full", FR_ERR_FORMAT, 0}, /* the transport's "server full" reply */
    };
    for (size_t k = 0; k < sizeof seeds / sizeof *seeds; k++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/fuzz/corpus/net/%s", FR_SOURCE_DIR, seeds[k].name);
        uint8_t *b = NULL;
        size_t n = 0;
        cr_assert_eq(fri_read_file(path, &b, &n), FR_OK, "%s", fr_errmsg());
        fri_net_msg m;
        fr_err e = fri_net_decode(b, n, MAXP, &m);
        cr_assert_eq(e, seeds[k].want, "%s: %s", seeds[k].name, fr_errmsg());
        if (!e) cr_assert_eq(m.type, seeds[k].type, "%s", seeds[k].name);
        if (!strcmp(seeds[k].name, "valid_task_header_crc")) {
            cr_assert_eq(fri_net_decode_on(b, n, MAXP, true, &m), FR_OK, "%s", fr_errmsg());
            cr_assert(m.type == FRI_NET_TASK && m.flags == FRI_NET_FLAG_HEADER_CRC && m.task.round == 2);
            cr_assert(m.task.body_len == 13 && memcmp(m.task.body, "fl task bytes", 13) == 0);
        }
        if (!strcmp(seeds[k].name, "valid_result_packed")) { /* make_seeds.py's packer agrees with pack.c */
            cr_assert_eq(m.flags, FRI_NET_FLAG_PACKED);
            fri_buf u = {0}, q = {0};
            cr_assert_eq(fri_unpack_result(m.result.body, m.result.body_len, MAXP, &u), FR_OK, "%s", fr_errmsg());
            cr_assert_eq(fri_msg_open(u.data, u.len, FR_MSG_RESULT, "RESULT"), FR_OK, "%s", fr_errmsg());
            cr_assert(fri_pack_result(u.data, u.len, &q) && q.len == m.result.body_len);
            cr_assert(memcmp(q.data, m.result.body, q.len) == 0);
            fri_buf_free(&u);
            fri_buf_free(&q);
        }
        if (!strcmp(seeds[k].name, "transport_full")) {
            uint32_t open = 0, limit = 0;
            cr_assert(fri_net_full_decode(b, n, &open, &limit) && open == 2 && limit == 2);
        }
        if (!strcmp(seeds[k].name, "bad_flags")) { /* flag 1 with a whole-message CRC: damaged over TLS */
            cr_assert_eq(fri_net_decode_on(b, n, MAXP, true, &m), FR_ERR_CHECKSUM);
        }
        if (!strcmp(seeds[k].name, "valid_result")) {
            cr_assert(m.result.client == 7 && m.result.round == 2 && m.result.eval.users == 10);
            cr_assert(m.result.eval.hit_sum == 4.0 && m.result.eval.ndcg_sum == 2.5 && m.result.eval.rated == 20);
            cr_assert(m.result.eval.sq_err_sum == 17.25 && m.result.body_len == 9);
            cr_assert(memcmp(m.result.ticket, TICKET, 16) == 0 && memcmp(m.result.body, "fl result", 9) == 0);
        }
        if (!strcmp(seeds[k].name, "valid_sa_task")) {
            cr_assert(m.sa_task.round == 2 && m.sa_task.deadline_ms == 30000 && m.sa_task.party == 3);
            cr_assert(m.sa_task.n == 8 && m.sa_task.k == 7 && m.sa_task.t == 4 && m.sa_task.len == 55);
            cr_assert(m.sa_task.bound == 0 && m.sa_task.session == 2 && m.sa_task.graph_seed == 99);
            cr_assert(m.sa_task.body_len == 13 && memcmp(m.sa_task.body, "fl task bytes", 13) == 0);
        }
        if (!strcmp(seeds[k].name, "valid_sa_up_masked")) {
            cr_assert(m.sa_up.client == 7 && m.sa_up.round == 2 && m.sa_up.stage == 2);
            cr_assert(m.sa_up.config_crc == 0x1234 && m.sa_up.flags == 1 && m.sa_up.weight == 100);
            cr_assert(m.sa_up.examples == 500 && m.sa_up.loss_sum == 12.5 && m.sa_up.body_len == 19);
        }
        if (!strcmp(seeds[k].name, "valid_hello")) {
            cr_assert(m.hello.client == 7 && m.hello.caps == FRI_NET_CAP_EVAL && m.hello.model_round == 3);
            cr_assert(m.hello.token_len == 47 && memcmp(m.hello.token, "frt_AAAA", 8) == 0);
        }
        if (!strcmp(seeds[k].name, "valid_done_empty")) cr_assert(m.done.rounds_done == 5 && m.done.model_len == 0);
        fri_free(b);
    }
}

/* Over TLS (FRI_NET_FLAG_HEADER_CRC) the CRC covers header bytes [0, 12) only, checked
 * against the bitwise CRC; such a message decodes only on an authenticated channel and
 * re-encodes to the same bytes; a full-CRC message decodes on both. */
Test(net_wire, a_header_crc_message_decodes_only_on_an_authenticated_channel) {
    for (int k = 0; k < N_SAMPLES; k++) {
        fri_net_msg m = sample(k);
        size_t n0 = 0;
        uint8_t *full = encode(&m, &n0);
        fri_net_msg d;
        cr_assert_eq(fri_net_decode_on(full, n0, MAXP, true, &d), FR_OK, "sample %d: %s", k, fr_errmsg());
        cr_assert_eq(d.flags, 0);
        m.flags = FRI_NET_FLAG_HEADER_CRC;
        size_t n = 0;
        uint8_t *b = encode(&m, &n);
        cr_assert_eq(n, n0);
        cr_assert_eq(fri_get_u16(b + 6), FRI_NET_FLAG_HEADER_CRC);
        cr_assert_eq(fri_get_u32(b + 12), crc_bitwise(0, b, 12), "sample %d", k);
        cr_assert(memcmp(b + 16, full + 16, n - 16) == 0, "sample %d: the payload is the same", k);
        cr_assert_eq(fri_net_decode_on(b, n, MAXP, true, &d), FR_OK, "sample %d: %s", k, fr_errmsg());
        cr_assert_eq(d.flags, FRI_NET_FLAG_HEADER_CRC);
        assert_same(&m, &d);
        fri_buf r = {0};
        cr_assert_eq(fri_net_encode(&r, &d), FR_OK);
        cr_assert(r.len == n && memcmp(r.data, b, n) == 0, "sample %d: canonical", k);
        fri_buf_free(&r);
        uint8_t pre[FRI_NET_PREFIX_MAX];
        size_t pn = 0;
        cr_assert_eq(fri_net_encode_prefix_crc(&m, 0xdeadbeefu, pre, sizeof pre, &pn), FR_OK); /* tail CRC unused */
        cr_assert(pn <= n && memcmp(pre, b, pn) == 0, "sample %d", k);
        /* a plain channel refuses it, by the flag (not as damage), and so does its peek */
        cr_assert_eq(fri_net_decode(b, n, MAXP, &d), FR_ERR_FORMAT);
        assert_msg("covers the header only");
        cr_assert_eq(fri_net_decode_on(b, n, MAXP, false, &d), FR_ERR_FORMAT);
        uint8_t t;
        uint32_t len;
        cr_assert_eq(fri_net_peek_header(b, n, &t, &len), FR_ERR_FORMAT);
        cr_assert_eq(fri_net_peek_header_on(b, n, true, &t, &len), FR_OK);
        cr_assert(t == m.type && len == n - 16);
        free(b);
        free(full);
    }
    fri_net_msg m = sample(0);
    m.flags = 4; /* an unknown flag: the encoder refuses it, the decoder too */
    fri_buf b = {0};
    cr_assert_eq(fri_net_encode(&b, &m), FR_ERR_INVALID);
    m.flags = FRI_NET_FLAG_PACKED; /* on a HELLO */
    cr_assert_eq(fri_net_encode(&b, &m), FR_ERR_INVALID);
    m = sample(7); /* a RESULT: packed is its flag, with either CRC */
    m.flags = FRI_NET_FLAG_PACKED | FRI_NET_FLAG_HEADER_CRC;
    cr_assert_eq(fri_net_encode(&b, &m), FR_OK);
    fri_net_msg d;
    cr_assert_eq(fri_net_decode_on(b.data, b.len, MAXP, true, &d), FR_OK, "%s", fr_errmsg());
    cr_assert_eq(d.flags, m.flags);
    m.flags = FRI_NET_FLAG_PACKED;
    cr_assert_eq(fri_net_encode(&b, &m), FR_OK);
    cr_assert_eq(fri_net_decode(b.data, b.len, MAXP, &d), FR_OK, "%s", fr_errmsg());
    cr_assert_eq(d.flags, FRI_NET_FLAG_PACKED);
    fri_buf_free(&b);
}

/* On an authenticated channel every flip in the header is still refused (the header CRC
 * or the field checks): a full-CRC message turned into a header-CRC one by a flag flip
 * fails its CRC, and so does a type flipped to another known type. */
Test(net_wire, header_flips_are_refused_on_an_authenticated_channel) {
    for (int k = 0; k < N_SAMPLES; k++) {
        for (int flag = 0; flag < 2; flag++) {
            fri_net_msg m = sample(k);
            m.flags = flag ? FRI_NET_FLAG_HEADER_CRC : 0;
            size_t n = 0;
            uint8_t *b = encode(&m, &n);
            for (size_t i = 0; i < FRI_NET_HEADER_BYTES; i++) {
                for (int bit = 0; bit < 8; bit++) {
                    b[i] ^= (uint8_t)(1u << bit);
                    fri_net_msg d;
                    cr_assert_neq(fri_net_decode_on(b, n, MAXP, true, &d), FR_OK, "sample %d flag %d: byte %zu bit %d",
                                  k, flag, i, bit);
                    b[i] ^= (uint8_t)(1u << bit);
                }
            }
            free(b);
        }
    }
}

/* What the header CRC leaves to TLS and to the message itself: a TASK whose opaque body
 * is an fl message (src/fl/msg.c, with its own CRC-32C) damaged in its payload decodes on
 * an authenticated channel (TLS would have refused the record), but the fl message's
 * own check refuses it; on a plain channel the envelope's CRC refuses it first. */
Test(net_wire, a_damaged_body_is_still_refused_by_the_fl_message) {
    uint8_t fl[FR_MSG_HEADER_BYTES + 300];
    for (size_t i = 0; i < sizeof fl; i++) fl[i] = (uint8_t)(i * 13 + 1);
    fri_msg_seal(fl, sizeof fl, FR_MSG_TASK);
    cr_assert_eq(fri_msg_open(fl, sizeof fl, FR_MSG_TASK, "TASK"), FR_OK, "%s", fr_errmsg());
    for (int flag = 0; flag < 2; flag++) {
        fri_net_msg m = {.type = FRI_NET_TASK, .flags = flag ? FRI_NET_FLAG_HEADER_CRC : 0};
        m.task.round = 3;
        m.task.deadline_ms = 1000;
        m.task.ticket = TICKET;
        m.task.body = fl;
        m.task.body_len = sizeof fl;
        size_t n = 0;
        uint8_t *b = encode(&m, &n);
        size_t at = n - sizeof fl + FR_MSG_HEADER_BYTES + 100; /* a byte of the fl payload */
        b[at] ^= 0x20;
        fri_net_msg d;
        fr_err e = fri_net_decode_on(b, n, MAXP, true, &d);
        if (!flag) {
            cr_assert_eq(e, FR_ERR_CHECKSUM);
        } else {
            cr_assert_eq(e, FR_OK, "%s", fr_errmsg());
            cr_assert_eq(fri_msg_open(d.task.body, d.task.body_len, FR_MSG_TASK, "TASK"), FR_ERR_CHECKSUM);
        }
        free(b);
    }
}

/* The retry a party told to wait for a secure stage's close gets: retry_ms until some
 * party has answered, then the stage's remaining time extrapolated from its pace
 * (elapsed × outstanding / answered), between a floor (retry_ms / 8, and answered ×
 * retry_ms / 32 rounded up, at least 1) and retry_ms. Values by hand. */
Test(wire, stage_retry_follows_the_stage_pace) {
    cr_assert_eq(fri_net_stage_retry_ms(20, 50, 0, 100), 20);   /* nobody answered yet */
    cr_assert_eq(fri_net_stage_retry_ms(20, 50, 10, 90), 20);   /* 50 × 90 / 10 = 450: capped */
    cr_assert_eq(fri_net_stage_retry_ms(20, 100, 9, 1), 11);    /* 100 / 9 = 11.1; floor 180 / 32 -> 6 */
    cr_assert_eq(fri_net_stage_retry_ms(20, 10, 9, 1), 6);      /* 1.1: raised to the floor 6 */
    cr_assert_eq(fri_net_stage_retry_ms(20, 100, 4, 0), 3);     /* all in: floor max(20 / 8, 80 / 32 -> 3) */
    cr_assert_eq(fri_net_stage_retry_ms(20, 10, 90, 10), 20);   /* 90 waiting: floor 57 > 20, so 20 */
    cr_assert_eq(fri_net_stage_retry_ms(250, 400, 8, 2), 100);  /* 400 × 2 / 8; floor max(31, 63) */
    cr_assert_eq(fri_net_stage_retry_ms(250, 400, 8, 0), 63);   /* 2000 / 32 = 62.5 -> 63 */
    cr_assert_eq(fri_net_stage_retry_ms(250, 400, 99, 1), 250); /* floor 774: retry_ms */
    cr_assert_eq(fri_net_stage_retry_ms(1, 1000, 1, 99), 1);    /* never below 1 */
    cr_assert_eq(fri_net_stage_retry_ms(4, 0, 5, 5), 1);        /* floor max(0, 20 / 32 -> 1) */
    cr_assert_eq(fri_net_stage_retry_ms(0, 0, 5, 5), 1);        /* a zero retry is read as 1 */
    cr_assert_eq(fri_net_stage_retry_ms(FRI_NET_RETRY_MAX_MS, UINT64_MAX / 2, 1, UINT32_MAX), FRI_NET_RETRY_MAX_MS);
}

/* A client not sampled in the open round: half the time left until the round is expected
 * to end (the last round's length), between retry_ms and the cap. Values by hand. */
Test(wire, idle_retry_halves_the_round_left) {
    cr_assert_eq(fri_net_idle_retry_ms(20, 0, 0, 7500), 20);        /* no round measured yet */
    cr_assert_eq(fri_net_idle_retry_ms(20, 0, 1200, 7500), 600);    /* 1200 / 2 */
    cr_assert_eq(fri_net_idle_retry_ms(20, 900, 1200, 7500), 150);  /* 300 left / 2 */
    cr_assert_eq(fri_net_idle_retry_ms(20, 1170, 1200, 7500), 20);  /* 15: raised to retry_ms */
    cr_assert_eq(fri_net_idle_retry_ms(20, 5000, 1200, 7500), 20);  /* past the expected end */
    cr_assert_eq(fri_net_idle_retry_ms(20, 0, 60000, 7500), 7500);  /* capped */
    cr_assert_eq(fri_net_idle_retry_ms(250, 0, 100, 7500), 250);    /* a round shorter than the retry */
    cr_assert_eq(fri_net_idle_retry_ms(250, 0, 10000, 100), 250);   /* a cap below retry_ms: retry_ms */
    cr_assert_eq(fri_net_idle_retry_ms(0, 0, 0, 0), 1);             /* never below 1 */
    cr_assert_eq(fri_net_idle_retry_ms(20, 0, UINT64_MAX, UINT32_MAX), FRI_NET_RETRY_MAX_MS);
}
