#!/usr/bin/env python3
"""One run of bench/run_net_secagg.sh: the server's --metrics-out and the load generators'
--compute-log files -> seconds per round as measured, and as a deployment would see them.

The load generator runs every sampled client's computation on its own few threads, one
client after the other, on the machine that also runs the server; devices would compute at
the same time. For each round and stage (0 training and the keys' adverts, 1 key agreement
and shares, 2 masking, 3 unmasking and the server's recovery; a plain round is one stage,
training) the generators' serial compute is the largest sum, over one thread, of the wall
seconds of the client steps of that stage; the slowest client is the largest one client's
own wall seconds in that stage. "Deployed" = measured - serial + slowest, per stage and per
round: the round's wall time with the generators' serial compute replaced by the slowest
single client's (the same framing as issue 12's "round wall time minus client compute").
An estimate: it assumes the generator's threads ran in parallel and that nothing else waited
on that compute; the clients' wall seconds include the load of the shared machine (their CPU
seconds are given too).

Usage: net_secagg_report.py NAME METRICS COMPUTE_LOG [COMPUTE_LOG...]
Prints one human line and one JSON line.
"""
import collections
import json
import sys

STAGE = {"train": 0, "keys": 0, "share": 1, "mask": 2, "unmask": 3}


def main():
    name, metrics, logs = sys.argv[1], sys.argv[2], sys.argv[3:]
    ms = [json.loads(l) for l in open(metrics) if l.strip()]
    count = collections.Counter(m["round"] for m in ms)
    ok = [m for m in ms if m.get("applied")]
    steady = ok[1:] if len(ok) > 1 else ok  # round 1 pays the TLS handshakes
    steady = [m for m in steady if count[m["round"]] == 1]  # a retried round's logs mix attempts
    secure = "secagg_seconds" in ms[0]
    # per (round, stage): {(log, thread): wall sum}, {client: wall}, {client: cpu}; per (round, step): slowest
    thr = collections.defaultdict(lambda: collections.defaultdict(float))
    cli = collections.defaultdict(lambda: collections.defaultdict(float))
    cpu = collections.defaultdict(lambda: collections.defaultdict(float))
    step_slow = collections.defaultdict(float)
    step_slow_cpu = collections.defaultdict(float)
    key_cli = collections.defaultdict(lambda: collections.defaultdict(float))
    key_cpu = collections.defaultdict(lambda: collections.defaultdict(float))
    for li, path in enumerate(logs):
        for line in open(path):
            if not line.strip():
                continue
            r = json.loads(line)
            k = (r["round"], STAGE[r["step"]])
            thr[k][(li, r["thread"])] += r["wall"]
            cli[k][r["client"]] += r["wall"]
            cpu[k][r["client"]] += r["cpu"]
            sk = (r["round"], r["step"])
            step_slow[sk] = max(step_slow[sk], r["wall"])
            step_slow_cpu[sk] = max(step_slow_cpu[sk], r["cpu"])
            if r["step"] in ("keys", "share"):
                key_cli[r["round"]][r["client"]] += r["wall"]
                key_cpu[r["round"]][r["client"]] += r["cpu"]
    nst = 4 if secure else 1
    rows = []
    for m in steady:
        rd = m["round"]
        stages = m["secagg_seconds"] if secure else [m["seconds"]]
        serial = [max(thr[(rd, s)].values(), default=0.0) for s in range(nst)]
        slow = [max(cli[(rd, s)].values(), default=0.0) for s in range(nst)]
        slow_cpu = [max(cpu[(rd, s)].values(), default=0.0) for s in range(nst)]
        # a stage cannot end before its slowest client's compute
        dep = [max(stages[s] - serial[s] + slow[s], slow[s]) for s in range(nst)]
        rows.append({
            "round": rd, "seconds": m["seconds"], "stages": stages, "serial": serial, "slow": slow,
            "slow_cpu": slow_cpu, "deployed_stages": dep,
            "deployed": max(m["seconds"] - sum(serial) + sum(slow), sum(slow)),
            "recovery": m.get("secagg_recovery_seconds"),
            "slow_train": max(step_slow[(rd, "train")], 0.0),
            "slow_key": max(key_cli[rd].values(), default=0.0), "slow_key_cpu": max(key_cpu[rd].values(), default=0.0),
            "slow_mask": step_slow[(rd, "mask")], "slow_mask_cpu": step_slow_cpu[(rd, "mask")],
            "slow_unmask": step_slow[(rd, "unmask")], "slow_unmask_cpu": step_slow_cpu[(rd, "unmask")],
        })
    if not rows:
        print(f"{name}: no steady round applied")
        print(json.dumps({"run": name, "rounds_applied": len(ok)}))
        return

    def avg(key, i=None):
        xs = [r[key] if i is None else r[key][i] for r in rows]
        xs = [x for x in xs if x is not None]
        return sum(xs) / len(xs) if xs else float("nan")

    out = {"run": name, "rounds_applied": len(ok), "rounds_retried": len(ms) - len(ok), "rounds_averaged": len(rows),
           "seconds_per_round": round(avg("seconds"), 4), "deployed_seconds_per_round": round(avg("deployed"), 4),
           "mb_up_per_round": round(sum(m["bytes_up"] for m in ok) / len(ok) / 1e6, 2),
           "slowest_training_ms": round(1e3 * avg("slow_train"), 2)}
    line = (f"{name:16s} {len(ok)} applied ({len(ms) - len(ok)} retried)  measured {out['seconds_per_round']:.3f} s/round"
            f"  deployed {out['deployed_seconds_per_round']:.3f} s/round (rounds 2..; {out['mb_up_per_round']:.1f} MB up)")
    if secure:
        names = ["train+keys", "key agreement", "masking", "unmask+recovery"]
        out["stages_measured"] = [round(avg("stages", s), 4) for s in range(4)]
        out["stages_serial_compute"] = [round(avg("serial", s), 4) for s in range(4)]
        out["stages_deployed"] = [round(avg("deployed_stages", s), 4) for s in range(4)]
        out["server_recovery_seconds"] = round(avg("recovery"), 4)
        out["survivors"] = sum(m["secagg_survivors"] for m in ok) / len(ok)
        out["slowest_client_ms"] = {
            "key_agreement": round(1e3 * avg("slow_key"), 2), "key_agreement_cpu": round(1e3 * avg("slow_key_cpu"), 2),
            "masking": round(1e3 * avg("slow_mask"), 2), "masking_cpu": round(1e3 * avg("slow_mask_cpu"), 2),
            "unmasking": round(1e3 * avg("slow_unmask"), 2), "unmasking_cpu": round(1e3 * avg("slow_unmask_cpu"), 2)}
        line += "\n" + " " * 17 + "stages measured / generator's serial compute / deployed (s): " + ", ".join(
            f"{n} {a:.3f}/{b:.3f}/{c:.3f}" for n, a, b, c in
            zip(names, out["stages_measured"], out["stages_serial_compute"], out["stages_deployed"]))
        sc = out["slowest_client_ms"]
        line += ("\n" + " " * 17 + f"slowest client (ms, wall/CPU): key agreement {sc['key_agreement']:.1f}/"
                 f"{sc['key_agreement_cpu']:.1f}, masking {sc['masking']:.1f}/{sc['masking_cpu']:.1f}, unmasking "
                 f"{sc['unmasking']:.1f}/{sc['unmasking_cpu']:.1f}; server recovery {1e3 * out['server_recovery_seconds']:.1f}"
                 f" ms; {out['survivors']:.1f} of {ok[0]['sampled']} summed")
    else:
        out["serial_compute"] = round(avg("serial", 0), 4)
        line += f"\n{'':17s}generator's serial training {out['serial_compute']:.3f} s, slowest client {out['slowest_training_ms']:.1f} ms"
    print(line)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
