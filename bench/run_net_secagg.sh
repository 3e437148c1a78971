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
#              process, a thread each) leaving each session after masking (client
#              --drop-unmask): the ~10 of them sampled each round drop out between masking
#              and unmasking, the protocol rebuilds their masks, and they are back for the
#              next round (a generator without --drop-unmask, an older BASE_BIN's, sleeps
#              8 s instead, --delay-unmask 8, which the next round's keys' stage waits for
#              when it samples one of them again)
#   Each prints seconds per round (rounds 2..R: round 1 pays the TLS handshakes) two ways
#   (bench/net_secagg_report.py): "measured", the server's wall time of the round here, and
#   "deployed", the same with the load generator's serial client compute (all 100 clients'
#   crypto one after the other on its threads, from each client step's times that it logs
#   with --compute-log) replaced by the slowest single client's, per stage: what a round
#   would take with each client on its own device. For the secure runs also each stage's
#   times (train+keys, key agreement, masking, unmasking+recovery), the slowest client's
#   key agreement, masking and unmasking, and the server's recovery of the sum; then
#   secagg / plain, both ways.
# Usage: bench/run_net_secagg.sh [TLS|TCP ...]  (default both); ROUNDS (default 5), THREADS
# (the load generator's, default 2), FEDREC_BIN (default build/fedrec), FEDREC_DATA
# (default ../shared/data beside the project). BASE_BIN=PATH also runs that build (e.g.
# main's: its server and its load generator) side by side, each run just before the same
# run of FEDREC_BIN's.
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

# run NAME TLS|TCP SERVER_BIN "CLIENT OPTS" [server options...]: a server and the load
# generator(s); leaves $work/NAME.metrics, $work/NAME.compute*.jsonl and prints the report.
run() {
  local name=$1 mode=$2 sbin=$3 xopts=$4
  shift 4
  local gbin=$sbin   # the load generator: the same build as the server
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
  echo "# $name: $(uptime | sed 's/.*load/load/')"
  "$sbin" server --listen "$url" --federation "$work/shards" --tokens "$work/tok/tokens.hash" "${sopts[@]}" \
    --model mf --dim 32 --clients-per-round 100 --rounds "$rounds" --min-clients "$n" --retry 0.02 --linger 30 \
    --deadline 120 --quiet --metrics-out "$work/$name.metrics" "$@" 2>"$work/$name.server.log" &
  local spid=$!
  pids+=("$spid")
  sleep 0.3
  # PERF=1: a CPU profile of the server (perf report -i $work/NAME.perf.data; with KEEP=1)
  [[ -n ${PERF:-} ]] && { perf record -q -g -o "$work/$name.perf.data" -p "$spid" 2>/dev/null & }
  # shellcheck disable=SC2206
  local gen=("$gbin" client --connect "$url" "${copts[@]}" --token-file "$work/tok/tokens.secret" --shards "$work/shards"
             --no-state --no-eval --give-up 60 $xopts)
  local logs=("$work/$name.compute.jsonl")
  if [[ $name == drop10* ]]; then
    local drop=(--drop-unmask)
    [[ $("$gbin" client --help 2>&1 || true) == *--drop-unmask* ]] || drop=(--delay-unmask 8)
    "${gen[@]}" --first "$first_slow" --clients "$slow" --threads "$slow" "${drop[@]}" \
      --compute-log "$work/$name.compute-slow.jsonl" >"$work/$name.slow.out" 2>"$work/$name.slow.log" &
    pids+=("$!")
    logs+=("$work/$name.compute-slow.jsonl")
    "${gen[@]}" --first 0 --clients "$first_slow" --threads "$threads" --compute-log "${logs[0]}" \
      >"$work/$name.client.out" 2>"$work/$name.client.log"
  else
    "${gen[@]}" --threads "$threads" --compute-log "${logs[0]}" >"$work/$name.client.out" \
      2>"$work/$name.client.log"
  fi
  wait "$spid"
  wait || true
  python3 "$root/bench/net_secagg_report.py" "$name" "$work/$name.metrics" "${logs[@]}"
}

variants=(new)
[[ -n ${BASE_BIN:-} ]] && variants=(base new)
for mode in $modes; do
  echo "== $mode: ml-100k u1.base, mf d=32, $n clients, 100 per round, $rounds rounds"
  for kind in plain secagg drop10; do
    for var in "${variants[@]}"; do
      if [[ $var == base ]]; then sb=$BASE_BIN; else sb=$bin; fi
      xo=""
      case $kind in
        plain) run "plain-$mode-$var" "$mode" "$sb" "$xo" ;;
        secagg) run "secagg-$mode-$var" "$mode" "$sb" "$xo" --secagg --secagg-deadline 10 ;;
        drop10) run "drop10-$mode-$var" "$mode" "$sb" "$xo" --secagg --secagg-deadline 6 ;;
      esac | tee "$work/$kind-$mode-$var.out"
    done
  done
  for var in "${variants[@]}"; do
    python3 - "$work" "$mode" "$var" <<'PY'
import json, sys
work, mode, var = sys.argv[1:]
def get(kind):
    for l in open(f"{work}/{kind}-{mode}-{var}.out"):
        if l.startswith("{"):
            return json.loads(l)
p, s, d = get("plain"), get("secagg"), get("drop10")
for k, label in (("seconds_per_round", "measured"), ("deployed_seconds_per_round", "deployed")):
    if k in p and k in s:
        print(f"{mode} {var}: {label}: secagg / plain = {s[k]:.3f} / {p[k]:.3f} s = {s[k] / p[k]:.2f}x "
              f"({(s[k] / p[k] - 1) * 100:+.0f}%; target at most +50%); 10% dropout {d.get(k, float('nan')):.3f} s "
              f"= {d.get(k, float('nan')) / p[k]:.2f}x")
PY
  done
done
