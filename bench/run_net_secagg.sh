#!/usr/bin/env bash
# Secure aggregation over the network (issue 13's target: "secure aggregation with 100
# clients per round adds at most 50% to a plain round's wall time for mf d=32 on ml-100k
# (report key agreement, masking, recovery separately); with 10% dropouts mid-round it
# still completes"), on loopback:
#   ml-100k u1.base sharded (fedrec data shard, leave-one-out: 943 clients; u1.test leaves
#   some users without a test row, which a client shard cannot hold), mf --dim 32,
#   100 clients per round (sampled among the 943 connected), the load generator hosting
#   every client, over tls+tcp and plain tcp as run_net.sh does:
#     plain    the ordinary protocol (sparse RESULTs)
#     secagg   fedrec server --secagg (dense masked vectors; stages: 0 training and the
#              keys' adverts, 1 key agreement and shares, 2 masked inputs, 3 unmasking and
#              the server's recovery of the sum)
#     drop10   --secagg with 10% of the clients (ids 849..942, a second load-generator
#              process, a thread each) waiting past the unmasking deadline: the ~10 of them
#              sampled each round drop out between masking and unmasking, and the protocol
#              rebuilds their masks
#   Each prints seconds per round (rounds 2..R: round 1 pays the TLS handshakes) and, for
#   the secure runs, the mean stage times and the clients' compute in key agreement,
#   masking and unmasking; then secagg / plain.
# Usage: bench/run_net_secagg.sh [TLS|TCP ...]  (default both); ROUNDS (default 5), THREADS
# (the load generator's, default 2), FEDREC_BIN (default build/fedrec), FEDREC_DATA
# (default ../shared/data beside the project).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${FEDREC_BIN:-$root/build/fedrec}
data=${FEDREC_DATA:-$root/../shared/data}/ml-100k
rounds=${ROUNDS:-5}
threads=${THREADS:-2}
modes=${*:-TLS TCP}
[[ -f $data/u1.base ]] || { echo "run_net_secagg.sh: $data/u1.base is absent"; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/fedrec-bench-netsa.XXXXXX")
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; [[ -n ${KEEP:-} ]] || rm -rf "$work"' EXIT
"$root/scripts/make-certs.sh" "$work/certs" >/dev/null
"$bin" data shard --data "$data/u1.base" --out "$work/shards" >/dev/null   # held out: each user's latest (loo)
n=$(awk '$1 == "clients" {print $2}' "$work/shards/federation.txt")
"$bin" tokens --clients "$n" --out "$work/tok" >/dev/null 2>&1
slow=$((n / 10))          # the last 10% of the ids drop out mid-round in drop10
first_slow=$((n - slow))

# run NAME TLS|TCP [server options...]: a server and the load generator(s); leaves
# $work/NAME.metrics and $work/NAME.client.out.
run() {
  local name=$1 mode=$2
  shift 2
  local port url sopts copts
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  if [[ $mode == TLS ]]; then
    url="tls+tcp://127.0.0.1:$port"
    sopts=(--cert "$work/certs/server.crt" --key "$work/certs/server.key")
    copts=(--ca "$work/certs/ca.crt")
  else
    url="tcp://127.0.0.1:$port"
    sopts=(--insecure)
    copts=(--insecure)
  fi
  "$bin" server --listen "$url" --federation "$work/shards" --tokens "$work/tok/tokens.hash" "${sopts[@]}" \
    --model mf --dim 32 --clients-per-round 100 --rounds "$rounds" --min-clients "$n" --retry 0.02 --linger 30 \
    --deadline 120 --quiet --metrics-out "$work/$name.metrics" "$@" 2>"$work/$name.server.log" &
  local spid=$!
  pids+=("$spid")
  sleep 0.3
  local gen=(client --connect "$url" "${copts[@]}" --token-file "$work/tok/tokens.secret" --shards "$work/shards"
             --no-state --no-eval --give-up 60)
  if [[ $name == drop10* ]]; then
    "$bin" "${gen[@]}" --first "$first_slow" --clients "$slow" --threads "$slow" --delay-unmask 8 \
      >"$work/$name.slow.out" 2>"$work/$name.slow.log" &
    pids+=("$!")
    "$bin" "${gen[@]}" --first 0 --clients "$first_slow" --threads "$threads" >"$work/$name.client.out" \
      2>"$work/$name.client.log"
  else
    "$bin" "${gen[@]}" --threads "$threads" >"$work/$name.client.out" 2>"$work/$name.client.log"
  fi
  wait "$spid"
  wait || true
  python3 - "$work/$name.metrics" "$work/$name.client.out" "$name" "$threads" <<'PY'
import json, re, sys
ms = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
ok = [m for m in ms if m.get("applied")]
name, threads = sys.argv[3], int(sys.argv[4])
steady = ok[1:] if len(ok) > 1 else ok
wall = sum(m["seconds"] for m in steady) / len(steady)
line = f"{name:14s} rounds {len(ok)} applied ({len(ms) - len(ok)} retried)  {wall:.3f} s/round (rounds 2..)"
line += f"  up {sum(m['bytes_up'] for m in ok) / len(ok) / 1e6:.1f} MB/round"
if "secagg_seconds" in ok[0]:
    st = [sum(m["secagg_seconds"][i] for m in steady) / len(steady) for i in range(4)]
    surv = sum(m["secagg_survivors"] for m in ok) / len(ok)
    line += (f"  stages: train+adverts {st[0]:.3f}, key agreement {st[1]:.3f}, masking {st[2]:.3f}, "
             f"unmask+recovery {st[3]:.3f} s; {surv:.1f} of {ok[0]['sampled']} summed")
print(line)
out = open(sys.argv[2]).read()
R = len(ms)
comp = float(re.search(r"([0-9.]+) s computing", out).group(1)) / R
m = re.search(r"compute ([0-9.]+) s key agreement, ([0-9.]+) s masking, ([0-9.]+) s unmasking", out)
sa = [float(m.group(i)) / R for i in (1, 2, 3)] if m else [0.0, 0.0, 0.0]
# the clients' compute as wall time on the load generator's threads (devices would work in
# parallel): what is left of a round is the server's and the network's share
rest = wall - (comp + sum(sa)) / threads
print(f"{'':14s} clients' compute per round (summed over the ~100 sampled): training {comp:.3f} s, key agreement "
      f"{sa[0]:.3f} s, masking {sa[1]:.3f} s, unmasking {sa[2]:.3f} s; the rest (server, network) {rest:.3f} s/round")
print(json.dumps({"run": name, "seconds_per_round": round(wall, 4), "rest_seconds_per_round": round(rest, 4),
                  "rounds_applied": len(ok), "rounds_retried": len(ms) - len(ok)}))
PY
}

for mode in $modes; do
  echo "== $mode: ml-100k u1.base, mf d=32, $n clients, 100 per round, $rounds rounds"
  run "plain-$mode" "$mode" | tee "$work/plain-$mode.out"
  run "secagg-$mode" "$mode" --secagg --secagg-deadline 10 | tee "$work/secagg-$mode.out"
  run "drop10-$mode" "$mode" --secagg --secagg-deadline 6 | tee "$work/drop10-$mode.out"
  python3 - "$work/plain-$mode.metrics" "$work/secagg-$mode.metrics" "$mode" <<'PY'
import json, sys
def per_round(p):
    ms = [json.loads(l) for l in open(p) if l.strip()]
    ms = [m for m in ms if m.get("applied")]
    s = ms[1:] if len(ms) > 1 else ms
    return sum(m["seconds"] for m in s) / len(s)
a, b = per_round(sys.argv[1]), per_round(sys.argv[2])
print(f"{sys.argv[3]}: secagg / plain = {b / a:.2f}x ({(b / a - 1) * 100:+.0f}%; target: at most +50%)")
PY
  grep -h '"rest_seconds' "$work/plain-$mode.out" "$work/secagg-$mode.out" | python3 -c "
import json, sys
a, b = [json.loads(l)['rest_seconds_per_round'] for l in sys.stdin]
print(f'$mode: without the clients\' compute: secagg {b:.3f} s / plain {a:.3f} s = {b / a:.2f}x')"
done
