#!/usr/bin/env bash
# The networked runtime's benchmarks, on loopback (issue 12's targets):
#   A. 1000 clients (the load generator) for ROUNDS rounds of mf on generated data: the
#      round wall time, the clients' compute per round, the rest (the network and the
#      server), the server's peak memory, bytes per client per round; over tls+tcp and
#      over plain tcp.
#   B. ml-100k NeuMF (../shared/data/ml-100k-loo, 943 clients, all per round): seconds per
#      round of the networked runtime against the simulator (fedrec train) in the same run.
# Usage: bench/run_net.sh [A] [B]  (default both); ROUNDS (default 5), THREADS (the load
# generator's, and the simulator's; default 2), REPS (B this many times, each simulator
# and network run side by side: the machine is shared and noisy; default 1), FEDREC_BIN
# (default build/fedrec).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${FEDREC_BIN:-$root/build/fedrec}
rounds=${ROUNDS:-5}
threads=${THREADS:-2}
reps=${REPS:-1}
parts=${*:-A B}
work=$(mktemp -d "${TMPDIR:-/tmp}/fedrec-bench-net.XXXXXX")
trap 'pkill -P $$ 2>/dev/null || true; rm -rf "$work"' EXIT
"$root/scripts/make-certs.sh" "$work/certs" >/dev/null

# run NAME SHARDS TLS|TCP [server options...]: a server and the load generator; prints a
# line of figures and leaves $work/NAME.metrics.
run() {
  local name=$1 shards=$2 mode=$3
  shift 3
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  local url sopts copts
  if [[ $mode == TLS ]]; then
    url="tls+tcp://127.0.0.1:$port"
    sopts=(--cert "$work/certs/server.crt" --key "$work/certs/server.key")
    copts=(--ca "$work/certs/ca.crt")
  else
    url="tcp://127.0.0.1:$port"
    sopts=(--insecure)
    copts=(--insecure)
  fi
  local n
  n=$(awk '$1 == "clients" {print $2}' "$shards/federation.txt")
  /usr/bin/time -f "%M %U %S" -o "$work/$name.rss" "$bin" server --listen "$url" --federation "$shards" \
    --tokens "$work/tok/tokens.hash" "${sopts[@]}" --rounds "$rounds" --min-clients "$n" --retry 0.02 \
    --linger 60 --quiet --metrics-out "$work/$name.metrics" "$@" 2>"$work/$name.server.log" &
  local spid=$!
  sleep 0.3
  /usr/bin/time -f "%M %U %S" -o "$work/$name.crss" "$bin" client --connect "$url" "${copts[@]}" --token-file "$work/tok/tokens.secret" --shards "$shards" \
    --threads "$threads" --no-state --give-up 30 ${CLIENT_OPTS:-} >"$work/$name.client.out" 2>"$work/$name.client.log"
  wait "$spid"
  python3 - "$work/$name.metrics" "$work/$name.client.out" "$work/$name.rss" "$name" "$n" "$threads" "$work/$name.crss" <<'PY'
import json, re, sys
ms = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
ms = [m for m in ms if m.get("applied")]
out = open(sys.argv[2]).read()
srv = open(sys.argv[3]).read().split("\n")[-2].split()
cli = open(sys.argv[7]).read().split("\n")[-2].split()
rss_kb = int(srv[0])
name, n, threads = sys.argv[4], int(sys.argv[5]), int(sys.argv[6])
comp = float(re.search(r"([0-9.]+) s computing", out).group(1))
R = len(ms)
# the first round pays the TLS handshakes and the clients' first allocations: report 2..R
steady = ms[1:] if R > 1 else ms
wall = sum(m["seconds"] for m in steady) / len(steady)
comp_round = comp / R / threads   # the clients' compute per round, as wall time on the threads
up = sum(m["bytes_up"] for m in ms) / R / n
down = sum(m["bytes_down"] for m in ms) / R / n
# the load generator's count of the bytes it sent and received (the envelopes as they
# travel: a packed RESULT at its packed size; the server's bytes_up are the RESULTs as the
# round controller takes them)
wire = re.search(r"([0-9.]+) MB up, ([0-9.]+) MB down", out)
wup = float(wire.group(1)) * 1e6 / R / n if wire else float("nan")
print(f"{name:28s} rounds {R}  round {wall:.3f} s (first {ms[0]['seconds']:.3f} s)  clients' compute "
      f"{comp_round:.3f} s/round on {threads} threads  rest {wall - comp_round:.3f} s  server peak "
      f"{rss_kb / 1024:.0f} MiB  per client per round {up / 1e3:.1f} kB up ({wup / 1e3:.1f} kB sent), "
      f"{down / 1e3:.1f} kB down")
# CPU-seconds (user + sys, the whole run) are steadier than wall time on a loaded machine
print(f"{'':28s} CPU: server {float(srv[1]) + float(srv[2]):.2f} s, load generator {float(cli[1]) + float(cli[2]):.2f} s "
      f"(peak RSS {int(cli[0]) / 1024:.0f} MiB, {int(cli[0]) / n:.0f} kB per client)")
PY
}

if [[ " $parts " == *" A "* ]]; then
  echo "== A. 1000 clients, mf, generated data (1000 users, 2000 items, 100000 interactions), $rounds rounds"
  "$bin" data generate --users 1000 --items 2000 --interactions 100000 --seed 3 --out "$work/gen.tsv" >/dev/null
  "$bin" data shard --data "$work/gen.tsv" --out "$work/genshards" >/dev/null
  "$bin" tokens --clients 2000 --out "$work/tok" >/dev/null 2>&1
  run "A mf 1000 clients TLS" "$work/genshards" TLS --model mf
  run "A mf 1000 clients TCP" "$work/genshards" TCP --model mf
fi

if [[ " $parts " == *" B "* ]]; then
  data="$root/../shared/data/ml-100k-loo"
  if [[ ! -d $data ]]; then
    echo "== B. skipped: $data is absent (../shared/data beside the project)"
  else
    echo "== B. ml-100k NeuMF, 943 clients, all per round, $rounds rounds: network against the simulator"
    "$bin" data shard --data "$data" --out "$work/ml100k" >/dev/null
    [[ -f $work/tok/tokens.hash ]] || "$bin" tokens --clients 2000 --out "$work/tok" >/dev/null 2>&1
    for rep in $(seq "$reps"); do
      if [[ $reps -gt 1 ]]; then echo "-- run $rep of $reps"; fi
      /usr/bin/time -f "%U %S" -o "$work/sim.time" "$bin" train --data "$data" --model neumf --rounds "$rounds" \
        --threads "$threads" --eval-every 0 --quiet --metrics-out "$work/sim.metrics" >/dev/null
      sim=$(python3 -c "
import json,sys
ms=[json.loads(l) for l in open('$work/sim.metrics') if '\"round\"' in l]
s=ms[1:] if len(ms)>1 else ms
print(sum(m['seconds'] for m in s)/len(s))")
      printf "%-28s round %.3f s (rounds 2..%s, evaluation off), CPU %s s\n" "B simulator" "$sim" "$rounds" \
        "$(awk 'END {print $1 + $2}' "$work/sim.time")"
      CLIENT_OPTS=--no-eval run "B neumf net TLS" "$work/ml100k" TLS --model neumf
      CLIENT_OPTS=--no-eval run "B neumf net TCP" "$work/ml100k" TCP --model neumf
      for m in TLS TCP; do
        python3 - "$work/B neumf net $m.metrics" "$sim" "$m" <<'PY'
import json, sys
ms = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
ms = [m for m in ms if m.get("applied")]
s = ms[1:] if len(ms) > 1 else ms
net = sum(m["seconds"] for m in s) / len(s)
print(f"B network/simulator ({sys.argv[3]}): {net / float(sys.argv[2]):.2f}x  (target: at most 2x)")
PY
      done
    done
  fi
fi
