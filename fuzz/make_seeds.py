#!/usr/bin/env python3
"""Named seeds of the message fuzz corpora (fuzz/corpus/result, fuzz/corpus/task,
fuzz/corpus/net), written by an encoder independent of the C code, from the layouts in
include/fedrec/fl.h, src/fl/msg.c and src/runtime/net/wire.h. tests/test_msg.c and
tests/test_net_wire.c check that each decodes (or fails) as its name says.

    python3 fuzz/make_seeds.py        # rewrites the named seeds

RESULT seeds use the shape of the fuzz target and tests: dense 3, tables of widths 4 and 1
over 16 and 1000 rows. TASK seeds carry a small mf model: 10 items, dim 2 (bias_l2 etc.
as the C defaults); only its config block and parameters matter here."""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def crc32c(data, crc=0):
    crc ^= 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def seal(body, mtype=2, version=1):
    n = 24 + len(body)
    return struct.pack("<IHHQII", 0x534D5246, version, mtype, n, crc32c(body), 0) + body


def result(client=3, rnd=2, cfg_crc=0x1234, weight=100, examples=500, loss=12.5,
           dense=(1, -2, 3), tables=(((1, 4, 15), 4), ((0, 7, 999), 1)), values=None):
    body = struct.pack("<IIIIQQdII", client, rnd, cfg_crc, 0, weight, examples, loss, len(dense), len(tables))
    body += struct.pack("<%dq" % len(dense), *dense)
    for t, (ids, width) in enumerate(tables):
        body += struct.pack("<II", width, len(ids)) + struct.pack("<%dI" % len(ids), *ids)
        vals = values[t] if values else [((t + 1) * 1000 + i) * (1 << 32) // 4 for i in range(len(ids) * width)]
        body += struct.pack("<%dq" % len(vals), *vals)
    return body


def cresult(flags=2 | 8, dense_len=3, top=((0, 5), (2, -7)), dense_scale=1000.0,
            tables=(((1, 4, 15), 4, 3.0, (1, 2, 3, -4)), ((0, 7, 999), 1, 0.0, (0,)))):
    """A compressed RESULT (src/fl/compress.c): q8 (flag 2) blocks of an f32 scale and int8
    values; with top-k (flag 8) the dense part is u32 K | u32 idx[K] | the K values. Each
    row repeats its q values."""
    body = struct.pack("<IIIIQQdII", 3, 2, 0x1234, flags, 100, 500, 12.5, dense_len, len(tables))
    body += struct.pack("<I", len(top)) + struct.pack("<%dI" % len(top), *[i for i, _ in top])
    body += struct.pack("<f", dense_scale) + struct.pack("<%db" % len(top), *[q for _, q in top])
    for ids, width, scale, q in tables:
        body += struct.pack("<II", width, len(ids)) + struct.pack("<%dI" % len(ids), *ids)
        for _ in ids:
            body += struct.pack("<f", scale) + struct.pack("<%db" % width, *q)
    return body


def net(mtype, payload, version=3, flags=0, length=None):
    """A network message (src/runtime/net/wire.h): the CRC covers header bytes [0, 12)
    and the payload."""
    head = struct.pack("<IBBHI", 0x544E5246, version, mtype, flags, len(payload) if length is None else length)
    return head + struct.pack("<I", crc32c(head + payload)) + payload


def net_header_crc(mtype, payload):
    """A network message as sent over TLS (flag 1): the CRC covers header bytes [0, 12)
    only."""
    head = struct.pack("<IBBHI", 0x544E5246, 3, mtype, 1, len(payload))
    return head + struct.pack("<I", crc32c(head)) + payload


def pack_fl_result(fl):
    """A packed RESULT body (src/runtime/net/pack.h): the fl RESULT's 72-byte head, then
    each block of int64 words as a width byte and the words' low bytes, the width the
    smallest that holds every word of the block."""
    def block(words):
        w = 1
        while w < 8 and not all(-(1 << (8 * w - 1)) <= v < (1 << (8 * w - 1)) for v in words):
            w += 1
        return bytes([w]) + b"".join(struct.pack("<q", v)[:w] for v in words)
    out = fl[:72]
    d, t = struct.unpack_from("<II", fl, 64)
    at = 72
    out += block(struct.unpack_from("<%dq" % d, fl, at))
    at += 8 * d
    for _ in range(t):
        width, count = struct.unpack_from("<II", fl, at)
        out += fl[at:at + 8 + 4 * count]
        at += 8 + 4 * count
        out += block(struct.unpack_from("<%dq" % (count * width), fl, at))
        at += 8 * count * width
    assert at == len(fl)
    return out


def packed_result_payload():
    fl = seal(result(dense=(1, -2, 3, 70000, -1 << 40), values=[[5, -6, 7, 8] * 3, [1 << 33, -(1 << 20), 0]]))
    return struct.pack("<II", 7, 2) + TICKET + struct.pack("<IddQd", 0, 0.0, 0.0, 0, 0.0) + pack_fl_result(fl)


def net_text(text):
    return struct.pack("<H", len(text)) + text


TICKET = bytes(range(0x10, 0x20))


def net_seeds():
    token = b"frt_" + b"A" * 43
    hello = struct.pack("<IIIH", 7, 1, 3, len(token)) + token
    write("net", "valid_hello", net(1, hello))
    write("net", "valid_wait", net(2, struct.pack("<IIB", 1500, 4, 1)))
    task = struct.pack("<II", 2, 30000) + TICKET + b"fl task bytes"
    write("net", "valid_task", net(3, task))
    write("net", "valid_task_header_crc", net_header_crc(3, task))
    result = struct.pack("<II", 7, 2) + TICKET + struct.pack("<IddQd", 10, 4.0, 2.5, 20, 17.25) + b"fl result"
    write("net", "valid_result", net(4, result))
    write("net", "valid_result_packed", net(4, packed_result_payload(), flags=2))
    write("net", "valid_ack", net(5, struct.pack("<IB", 2, 0) + net_text(b"accepted")))
    write("net", "valid_refuse", net(6, struct.pack("<B", 1) + net_text(b"client 7: wrong token")))
    write("net", "valid_done", net(7, struct.pack("<I", 5) + b"model bytes"))
    write("net", "valid_done_empty", net(7, struct.pack("<I", 5)))
    write("net", "bad_version", net(1, hello, version=2))
    write("net", "bad_type", net(13, hello))
    # rows on request (ROWS_REQ, ROWS): ids strictly increasing; the rows block is opaque here
    write("net", "valid_rows_req", net(11, struct.pack("<II", 7, 2) + TICKET + struct.pack("<I4I", 4, 0, 5, 6, 941)))
    write("net", "valid_rows", net(12, struct.pack("<II", 2, 2) + struct.pack("<4f", 0.5, -1.0, 2.0, 0.25)))
    write("net", "bad_rows_req_order", net(11, struct.pack("<II", 7, 2) + TICKET + struct.pack("<I3I", 3, 0, 6, 6)))
    write("net", "bad_rows_req_count", net(11, struct.pack("<II", 7, 2) + TICKET + struct.pack("<I3I", 4, 0, 5, 6)))
    write("net", "bad_rows_empty", net(12, struct.pack("<II", 2, 2)))
    # secure aggregation (SA_TASK, SA_DOWN, SA_UP): the secagg bytes are opaque here
    sa_task = struct.pack("<II", 2, 30000) + TICKET + struct.pack("<IIIIQQQQ", 3, 8, 7, 4, 55, 0, 2, 99)
    write("net", "valid_sa_task", net(8, sa_task + b"fl task bytes"))
    write("net", "valid_sa_down", net(9, struct.pack("<IIB", 2, 10000, 2) + b"secagg forwarded shares"))
    up = struct.pack("<II", 7, 2) + TICKET
    write("net", "valid_sa_up_keys", net(10, up + struct.pack("<BIIQQd", 0, 0, 0, 0, 0, 0.0) + b"secagg keys"))
    write("net", "valid_sa_up_masked",
          net(10, up + struct.pack("<BIIQQd", 2, 0x1234, 1, 100, 500, 12.5) + b"secagg masked input"))
    write("net", "bad_sa_params", net(8, struct.pack("<II", 2, 30000) + TICKET +
                                      struct.pack("<IIIIQQQQ", 3, 8, 6, 3, 55, 0, 2, 99) + b"x"))
    write("net", "bad_sa_stage", net(9, struct.pack("<IIB", 2, 10000, 0) + b"x"))
    write("net", "bad_sa_header", net(10, up + struct.pack("<BIIQQd", 1, 0x1234, 0, 0, 0, 0.0) + b"x"))
    write("net", "bad_flags", net(1, hello, flags=1))
    write("net", "bad_truncated", net(3, task)[:-1])
    bad = bytearray(net(3, task))
    bad[20] ^= 0x01
    write("net", "bad_crc", bytes(bad))
    bad = bytearray(net(7, struct.pack("<I", 5) + b"model bytes"))
    bad[5] = 3  # a DONE turned into a TASK: only the CRC can tell
    write("net", "bad_type_flip", bytes(bad))
    write("net", "bad_token_length", net(1, struct.pack("<IIIH", 7, 1, 3, 0)))
    write("net", "bad_hits", net(4, struct.pack("<II", 7, 2) + TICKET + struct.pack("<IddQd", 1, 2.0, 0, 0, 0) + b"x"))
    write("net", "bad_text", net(6, struct.pack("<B", 4) + net_text(b"line\nbreak")))
    write("net", "bad_short", net(2, struct.pack("<IIB", 1500, 4, 1))[:12])
    # the transport's "server full" reply (src/runtime/net/transport.h), which a client
    # takes before the envelope's decoder sees anything: never a valid envelope
    write("net", "transport_full", b"\xff" + b"fedrec serverfu" + struct.pack("<II", 2, 2))


def write(folder, name, data):
    with open(os.path.join(HERE, "corpus", folder, name), "wb") as f:
        f.write(data)


def main():
    b = result()
    write("result", "valid_sample", seal(b))
    write("result", "valid_empty_tables", seal(result(tables=(((), 4), ((), 1)))))
    write("result", "valid_full_table0", seal(result(tables=((tuple(range(16)), 4), ((5,), 1)))))
    write("result", "bad_truncated", seal(b)[:-5])
    bad = bytearray(seal(b))
    bad[-1] ^= 0x40
    write("result", "bad_crc", bytes(bad))
    write("result", "bad_version", seal(b, version=2))
    write("result", "bad_unsorted_ids", seal(result(tables=(((4, 1, 15), 4), ((0, 7, 999), 1)))))
    write("result", "bad_width", seal(result(tables=(((1, 4, 15), 5), ((0, 7, 999), 1)))))
    write("result", "bad_short", seal(b)[:20])
    write("result", "bad_type_task", seal(b, mtype=1))

    os.makedirs(os.path.join(HERE, "corpus", "cresult"), exist_ok=True)
    write("cresult", "valid_q8_topk", seal(cresult()))
    write("cresult", "bad_scale_fraction", seal(cresult(dense_scale=2.5)))
    write("cresult", "bad_q_minus_128", seal(cresult(top=((0, 5), (2, -128)))))
    write("cresult", "bad_topk_order", seal(cresult(top=((2, 5), (0, -7)))))
    write("cresult", "bad_q8_and_q16", seal(cresult(flags=2 | 4 | 8)))
    write("cresult", "bad_truncated", seal(cresult())[:-3])

    # TASK: round 1, a config block of arbitrary bytes is refused (its CRC is right, the
    # config is not); a well-formed one comes from the C encoder (tests/test_msg.c writes
    # valid_task). Here: damaged forms only.
    cfg = bytes(range(40))
    body = struct.pack("<IIIIQ", 1, crc32c(cfg), len(cfg), 0, (1 << 63) // 3) + cfg
    pad = (-(24 + len(body))) % 8
    body += b"\0" * pad + struct.pack("<Q", 2) + struct.pack("<2f", 0.5, -1.0)
    write("task", "bad_config", seal(body, mtype=1))
    write("task", "bad_short", seal(body, mtype=1)[:30])
    write("task", "bad_type_result", seal(body, mtype=2))

    os.makedirs(os.path.join(HERE, "corpus", "net"), exist_ok=True)
    net_seeds()


if __name__ == "__main__":
    main()
