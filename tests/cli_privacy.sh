#!/usr/bin/env bash
# fedrec privacy end to end: ε for a noise multiplier (text and JSON) against the Gaussian
# mechanism's closed form, the σ search's round trip, usage errors and --help.
set -euo pipefail
bin="$1"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail() { echo "cli_privacy: FAIL: $*" >&2; exit 1; }
# q = 1, σ = 2, R = 3: RDP 3α/8; ε = min over the orders of 3α/8 + ln(1 − 1/α) − (ln δ + ln α)/(α − 1).
# The best default order lies in 1.1..10.9 (step 0.1), which awk walks on its own.
want=$(awk 'BEGIN { best = 1e300; for (k = 11; k <= 109; k++) { a = k / 10;
    e = 3 * a / 8 + log(1 - 1 / a) - (log(1e-5) + log(a)) / (a - 1); if (e < best) { best = e; at = a } }
    printf "%.12g %g", best, at }')
"$bin" privacy --noise 2 --sample-rate 1 --rounds 3 --delta 1e-5 --json >"$tmp/j" 2>"$tmp/err" || fail "json: $(cat "$tmp/err")"
grep -Eq '^\{"epsilon":[0-9.e+-]+,"delta":1e-05,"noise":2,"sample_rate":1,"rounds":3,"order":[0-9.]+\}$' "$tmp/j" \
    || fail "json form: $(cat "$tmp/j")"
got=$(sed 's/.*"epsilon":\([^,]*\),.*"order":\([^}]*\)}/\1 \2/' "$tmp/j")
awk -v g="$got" -v w="$want" 'BEGIN { split(g, a, " "); split(w, b, " ");
    exit !(a[2] == b[2] && (a[1] - b[1]) / b[1] < 1e-12 && (b[1] - a[1]) / b[1] < 1e-12) }' \
    || fail "epsilon (order) $got, closed form $want"
"$bin" privacy --noise 2 --sample-rate 1 --rounds 3 --delta 1e-5 >"$tmp/out" || fail "text"
grep -Eq '^epsilon [0-9.]+ at delta 1e-05 \(noise multiplier 2, sample rate 1, 3 rounds, best Rényi order [0-9.]+\)$' "$tmp/out" \
    || fail "text form: $(cat "$tmp/out")"
# --target-epsilon: σ for the ε of σ = 1.3 comes back as 1.3 (to 1e-6), and meets the target
eps=$("$bin" privacy --noise 1.3 --sample-rate 0.01 --rounds 5000 --delta 1e-5 --json | sed 's/.*"epsilon":\([^,]*\),.*/\1/')
"$bin" privacy --target-epsilon "$eps" --sample-rate 0.01 --rounds 5000 --delta 1e-5 --json >"$tmp/t" || fail "target"
grep -q "\"target_epsilon\":$eps}" "$tmp/t" || fail "target json: $(cat "$tmp/t")"
s=$(sed 's/.*"noise":\([^,]*\),.*/\1/' "$tmp/t"); e=$(sed 's/.*"epsilon":\([^,]*\),.*/\1/' "$tmp/t")
awk -v s="$s" -v e="$e" -v t="$eps" 'BEGIN { exit !(s >= 1.3 && s < 1.3 * (1 + 2e-6) && e <= t) }' \
    || fail "round trip: sigma $s epsilon $e target $eps"
"$bin" privacy --target-epsilon 1 --sample-rate 0.01 --rounds 1000 --delta 1e-5 >"$tmp/out" || fail "target text"
grep -Eq '^noise multiplier [0-9.]+: epsilon [0-9.]+ at delta 1e-05 \(target 1; sample rate 0.01, 1000 rounds, best Rényi order [0-9.]+\)$' \
    "$tmp/out" || fail "target text form: $(cat "$tmp/out")"
# nothing spent
"$bin" privacy --noise 1 --sample-rate 0 --rounds 100 --delta 1e-5 --json | grep -q '^{"epsilon":0,' || fail "q = 0"
[ "$("$bin" privacy --noise 1 --sample-rate 0.1 --rounds 0 --delta 1e-5)" = \
  "epsilon 0 at delta 1e-05 (noise multiplier 1, sample rate 0.1, 0 rounds)" ] || fail "rounds 0"
# usage errors (2) and failures (1)
u() { # expected-rc expected-stderr-regex args...
    local want_rc="$1" re="$2"; shift 2
    set +e; "$bin" privacy "$@" >"$tmp/out" 2>"$tmp/err"; local rc=$?; set -e
    [ "$rc" -eq "$want_rc" ] && grep -Eq "$re" "$tmp/err" && [ ! -s "$tmp/out" ] \
        || fail "privacy $*: rc $rc (want $want_rc), stderr: $(cat "$tmp/err")"
}
u 2 '^fedrec privacy: --noise σ or --target-epsilon E is required$' --sample-rate 0.1 --rounds 10 --delta 1e-5
u 2 '^fedrec privacy: give either --noise σ or --target-epsilon E, not both$' --noise 1 --target-epsilon 1 --sample-rate 0.1 --rounds 10 --delta 1e-5
u 2 '^fedrec privacy: --sample-rate q is required$' --noise 1 --rounds 10 --delta 1e-5
u 2 '^fedrec privacy: --rounds R is required$' --noise 1 --sample-rate 0.1 --delta 1e-5
u 2 '^fedrec privacy: --delta δ is required$' --noise 1 --sample-rate 0.1 --rounds 10
u 2 "^fedrec privacy: --noise: expected a number > 0, got '0' \(out of range\)" --noise 0 --sample-rate 0.1 --rounds 10 --delta 1e-5
u 2 "^fedrec privacy: --noise: expected a number > 0, got 'abc'" --noise abc --sample-rate 0.1 --rounds 10 --delta 1e-5
u 2 "^fedrec privacy: --sample-rate: expected a number in \[0, 1\], got '1.5'" --noise 1 --sample-rate 1.5 --rounds 10 --delta 1e-5
u 2 "^fedrec privacy: --delta: expected a number in \(0, 1\), got '1'" --noise 1 --sample-rate 0.1 --rounds 10 --delta 1
u 2 "^fedrec privacy: --rounds: expected an integer >= 0, got '-3'" --noise 1 --sample-rate 0.1 --rounds -3 --delta 1e-5
u 2 "^fedrec privacy: --target-epsilon: expected a number > 0, got '0'" --target-epsilon 0 --sample-rate 0.1 --rounds 10 --delta 1e-5
u 2 '^fedrec privacy: --target-epsilon: --sample-rate 0 spends no privacy' --target-epsilon 1 --sample-rate 0 --rounds 10 --delta 1e-5
u 2 '^fedrec privacy: --target-epsilon: --rounds 0 spends no privacy' --target-epsilon 1 --sample-rate 0.1 --rounds 0 --delta 1e-5
u 2 "^fedrec privacy: unknown option '--sigma'" --sigma 1 --sample-rate 0.1 --rounds 10 --delta 1e-5
u 1 '^fedrec privacy: no noise multiplier up to 1e\+06 reaches epsilon 0.0001' --target-epsilon 1e-4 --sample-rate 1 --rounds 1 --delta 1e-12
"$bin" privacy --help | grep -q '^usage: fedrec privacy (--noise σ | --target-epsilon E) --sample-rate q --rounds R --delta δ \[--json\]$' \
    || fail "--help"
"$bin" --help | grep -q '^  privacy --noise σ --sample-rate q --rounds R --delta δ' || fail "fedrec --help lists privacy"
echo "cli_privacy: ok"
