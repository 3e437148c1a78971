#!/usr/bin/env bash
# A whole federation on this machine: throw-away certificates and tokens, a TLS server
# and CLIENTS client processes on loopback, each with its own user's data from the
# built-in synthetic set, ROUNDS rounds; prints the final metrics, stops everything it
# started and exits 0.
#   scripts/federation-demo.sh [CLIENTS] [ROUNDS]      (default 20 clients, 10 rounds)
# FEDREC_BIN names the fedrec program (default build/fedrec, built if missing); KEEP=1
# keeps the working directory (its path is printed).
set -euo pipefail
clients=${1:-20}
rounds=${2:-10}
[[ $clients =~ ^[1-9][0-9]*$ && $clients -le 2000 ]] || { echo "usage: $0 [CLIENTS 1..2000] [ROUNDS]" >&2; exit 2; }
[[ $rounds =~ ^[1-9][0-9]*$ ]] || { echo "usage: $0 [CLIENTS] [ROUNDS >= 1]" >&2; exit 2; }
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${FEDREC_BIN:-$root/build/fedrec}
if [[ ! -x $bin ]]; then
  echo "federation-demo: building fedrec" >&2
  cmake -S "$root" -B "$root/build" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$root/build" -j"$(nproc)" --target fedrec >/dev/null
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/fedrec-demo.XXXXXX")
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [[ ${KEEP:-0} == 1 ]]; then echo "federation-demo: kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

# A free port on loopback (the kernel's pick, released at once).
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null ||
       echo $((20000 + RANDOM % 20000)))
url="tls+tcp://127.0.0.1:$port"

echo "== 1. data: the built-in synthetic set, a directory per client"
"$bin" data shard --out "$work/shards" | sed 's/^/   /'
echo "== 2. throw-away certificates (CA, server) and a token per client"
"$root/scripts/make-certs.sh" "$work/certs" >/dev/null
"$bin" tokens --clients 2000 --out "$work/tokens" >/dev/null 2>&1
echo "   $work/certs/{ca.crt,server.crt,server.key}; $work/tokens/tokens.hash (server), tokens.secret (clients)"
echo "== 3. the server on $url, waiting for $clients clients; $rounds rounds"
"$bin" server --listen "$url" --federation "$work/shards" --tokens "$work/tokens/tokens.hash" \
  --cert "$work/certs/server.crt" --key "$work/certs/server.key" --rounds "$rounds" --min-clients "$clients" \
  --retry 0.1 --linger 5 --out "$work/model.fr" --metrics-out "$work/metrics.jsonl" \
  >"$work/server.out" 2>"$work/server.log" &
spid=$!
pids+=("$spid")
echo "== 4. $clients client processes, each holding one user's data"
for ((c = 0; c < clients; c++)); do
  "$bin" client --connect "$url" --ca "$work/certs/ca.crt" --token-file "$work/tokens/tokens.secret" \
    --data "$work/shards/c$c" --timeout 10 --give-up 120 >"$work/client$c.out" 2>"$work/client$c.log" &
  pids+=("$!")
done
status=0
wait "$spid" || status=$?
if [[ $status -ne 0 ]]; then
  echo "federation-demo: the server failed (exit $status):" >&2
  tail -n 20 "$work/server.log" >&2
  exit 1
fi
failed=0
for p in "${pids[@]:1}"; do wait "$p" || failed=$((failed + 1)); done
echo "== 5. what happened"
grep -E "^round" "$work/server.out" | tail -n 3 | sed 's/^/   /'
echo "   server log: $(grep -c 'joined' "$work/server.log") clients joined, $(grep -c 'closed' "$work/server.log") rounds closed, $(grep -c 'warning' "$work/server.log" || true) warnings"
echo "   clients: $((clients - failed)) of $clients finished cleanly"
echo "   client 0's own top 5, offline from the final model:"
"$bin" client recommend --data "$work/shards/c0" -k 5 | sed 's/^/     /'
final=$(tail -n 1 "$work/metrics.jsonl")
echo "== final metrics: $final"
[[ $failed -eq 0 ]]
