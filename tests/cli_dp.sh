#!/usr/bin/env bash
# fedrec train with user-level DP end to end: refusals, epsilon per round equal to
# `fedrec privacy` for the same q, sigma, rounds and delta (1/N^1.1), the summary's and
# the model file's epsilon, --target-epsilon stopping before the round that would exceed
# it, seeded noise reproducible and the default noise not, and no DP keys without DP.
set -euo pipefail
bin="$1"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail() { echo "cli_dp: FAIL: $*" >&2; exit 1; }
base=(train --model bpr --clients-per-round 200 --eval-every 0 --quiet --threads 2)

refuse() { # MESSAGE-PART ARGS...: exit 2 naming MESSAGE-PART
    local want=$1; shift
    set +e; "$bin" "${base[@]}" --rounds 1 "$@" >/dev/null 2>"$tmp/err"; local rc=$?; set -e
    [ "$rc" = 2 ] || fail "$* exited $rc, expected 2"
    grep -q -- "$want" "$tmp/err" || fail "$*: '$(cat "$tmp/err")' lacks '$want'"
}
refuse "federated training" --centralized --dp-clip 1
refuse "needs --dp-clip" --dp-noise 1
refuse "needs --dp-noise" --dp-clip 1 --target-epsilon 3
refuse "user-level" --dp-clip 1 --partition iid:4
refuse "item-agg rows" --dp-clip 1 --item-agg rows
refuse "availability" --dp-clip 1 --availability 0.5
refuse "expected a clip" --dp-clip adaptive:2

# fedrec server takes the same DP options by the same rules, and says so as itself
"$bin" data generate --users 20 --items 30 --interactions 300 --out "$tmp/g.tsv" >/dev/null
"$bin" data shard --data "$tmp/g.tsv" --out "$tmp/shards" >/dev/null 2>&1 || fail "data shard"
"$bin" tokens --clients 20 --out "$tmp/tok" >/dev/null 2>&1 || fail "tokens"
srv=(server --listen tcp://127.0.0.1:1 --insecure --federation "$tmp/shards" --tokens "$tmp/tok/tokens.hash")
refuse_server() { # MESSAGE-PART ARGS...
    local want=$1; shift
    set +e; "$bin" "${srv[@]}" "$@" >/dev/null 2>"$tmp/err"; local rc=$?; set -e
    [ "$rc" = 2 ] || fail "server $* exited $rc, expected 2"
    grep -q -- "fedrec server: .*$want" "$tmp/err" || fail "server $*: '$(cat "$tmp/err")' lacks '$want'"
}
refuse_server "needs --dp-clip" --dp-noise 1
refuse_server "needs --dp-noise" --dp-clip 1 --target-epsilon 3
refuse_server "expected a clip" --dp-clip adaptive:2

# 3 rounds, sigma 1.2, q = 200 / 2000 (the built-in data has 2000 users), delta 2000^-1.1
delta=$(awk 'BEGIN { printf "%.17g", exp(-1.1 * log(2000)) }')
"$bin" "${base[@]}" --rounds 3 --dp-clip 0.5 --dp-noise 1.2 --dp-seeded-noise --out "$tmp/a.fr" \
    --metrics-out "$tmp/a.jsonl" >/dev/null 2>&1 || fail "a DP run"
[ "$(grep -c '"epsilon":' "$tmp/a.jsonl")" = 4 ] || fail "epsilon in every round and the summary: $(cat "$tmp/a.jsonl")"
for r in 1 2 3; do
    want=$("$bin" privacy --noise 1.2 --sample-rate 0.1 --rounds $r --delta "$delta" --json | sed 's/.*"epsilon":\([^,]*\),.*/\1/')
    got=$(sed -n "${r}p" "$tmp/a.jsonl" | sed 's/.*"epsilon":\([^,]*\),.*/\1/')
    awk -v g="$got" -v w="$want" 'BEGIN { exit !(g - w < 1e-5 * w && w - g < 1e-5 * w) }' || fail "round $r: epsilon $got, fedrec privacy says $want"
    sed -n "${r}p" "$tmp/a.jsonl" | grep -q '"dp_clip":0.5' || fail "round $r: no clip"
done
tail -1 "$tmp/a.jsonl" | grep -q '"epsilon":[0-9]' || fail "summary: $(tail -1 "$tmp/a.jsonl")"
grep -aq '"dp_epsilon":[0-9]' "$tmp/a.fr" || fail "the model's provenance lacks dp_epsilon"
grep -aq '"dp_noise":1.2' "$tmp/a.fr" || fail "the model's provenance lacks the DP settings"
# seeded noise: the same bits again; the default (libsodium) noise: other bits
"$bin" "${base[@]}" --rounds 3 --dp-clip 0.5 --dp-noise 1.2 --dp-seeded-noise --out "$tmp/b.fr" >/dev/null 2>&1
cmp -s "$tmp/a.fr" "$tmp/b.fr" || fail "seeded DP runs differ"
"$bin" "${base[@]}" --rounds 3 --dp-clip 0.5 --dp-noise 1.2 --out "$tmp/c.fr" >/dev/null 2>&1
"$bin" "${base[@]}" --rounds 3 --dp-clip 0.5 --dp-noise 1.2 --out "$tmp/d.fr" >/dev/null 2>&1
! cmp -s "$tmp/c.fr" "$tmp/d.fr" || fail "CSPRNG noise repeated itself"

# --target-epsilon between epsilon(2) and epsilon(3): the run stops after round 2
e2=$("$bin" privacy --noise 1.2 --sample-rate 0.1 --rounds 2 --delta "$delta" --json | sed 's/.*"epsilon":\([^,]*\),.*/\1/')
e3=$("$bin" privacy --noise 1.2 --sample-rate 0.1 --rounds 3 --delta "$delta" --json | sed 's/.*"epsilon":\([^,]*\),.*/\1/')
t=$(awk -v a="$e2" -v b="$e3" 'BEGIN { printf "%.6f", (a + b) / 2 }')
"$bin" "${base[@]}" --rounds 10 --dp-clip adaptive --dp-noise 1.2 --target-epsilon "$t" \
    --metrics-out "$tmp/t.jsonl" >"$tmp/out" 2>&1 || fail "target run"
tail -1 "$tmp/t.jsonl" | grep -q '"rounds":2,"stop":"privacy budget' || fail "target: $(tail -1 "$tmp/t.jsonl")"
grep -q "stopped at the privacy budget: round 3" "$tmp/out" || fail "target summary: $(cat "$tmp/out")"

# without DP: no DP keys anywhere
"$bin" "${base[@]}" --rounds 2 --metrics-out "$tmp/n.jsonl" >/dev/null 2>&1
! grep -q 'epsilon\|dp_clip' "$tmp/n.jsonl" || fail "DP keys in a run without DP"
echo "cli_dp: ok"
