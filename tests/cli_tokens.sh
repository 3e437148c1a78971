#!/usr/bin/env bash
# fedrec tokens end to end: the two files, the secret's mode, no token on the terminal,
# an earlier run's files kept unless --force, usage errors.
set -euo pipefail
bin="$1"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail() { echo "cli_tokens: FAIL: $*" >&2; exit 1; }
umask 022 # the secret must be 0600 whatever the umask lets through
"$bin" tokens --clients 5 --out "$tmp/t" >"$tmp/out" 2>"$tmp/err" || fail "tokens: $(cat "$tmp/err")"
s="$tmp/t/tokens.secret"; h="$tmp/t/tokens.hash"
[ -f "$s" ] && [ -f "$h" ] || fail "files not made: $(ls -la "$tmp/t")"
[ "$(stat -c %a "$s")" = 600 ] || fail "tokens.secret has mode $(stat -c %a "$s"), expected 600"
[ "$(stat -c %a "$tmp/t")" = 700 ] || fail "the directory made has mode $(stat -c %a "$tmp/t"), expected 700"
[ "$(wc -l <"$s")" -eq 5 ] || fail "tokens.secret should have 5 lines: $(wc -l <"$s")"
grep -Eqv '^[0-4] frt_[A-Za-z0-9_-]{43}$' "$s" && fail "tokens.secret lines: $(sed 's/frt_.*/frt_.../' "$s")"
[ "$(cut -d' ' -f1 "$s" | tr '\n' ' ')" = "0 1 2 3 4 " ] || fail "client ids 0..4 in order"
head -1 "$h" | grep -Eq '^# fedrec token hashes v1 salt=[0-9a-f]{64}$' || fail "hash header: $(head -1 "$h")"
[ "$(tail -n +2 "$h" | grep -Ec '^[0-4] [0-9a-f]{64}$')" -eq 5 ] || fail "hash lines: $(cat "$h")"
# no token, nor any piece of one, on the terminal or in the hash file
for tok in $(cut -d' ' -f2 "$s"); do
    for f in "$tmp/out" "$tmp/err" "$h"; do grep -qF "${tok:4:20}" "$f" && fail "a token leaked into $f"; done
done
grep -q "frt_" "$tmp/out" "$tmp/err" && fail "frt_ printed"
grep -q "^wrote tokens for 5 clients (ids 0..4):$" "$tmp/out" || fail "stdout: $(cat "$tmp/out")"
"$bin" tokens --clients 1 --out "$tmp/one" >"$tmp/out1" || fail "tokens --clients 1"
grep -q "^wrote a token for 1 client (id 0):$" "$tmp/out1" || fail "stdout of 1: $(cat "$tmp/out1")"
grep -qF "$s" "$tmp/out" && grep -qF "$h" "$tmp/out" || fail "stdout names both files: $(cat "$tmp/out")"
grep -q "^fedrec tokens: warning: .*tokens.secret holds every client's secret: give each client its own line only, then delete the file; it must never be kept on the server" "$tmp/err" \
    || fail "warning: $(cat "$tmp/err")"
# an earlier run's files are kept unless --force
cp "$s" "$tmp/before"
set +e; "$bin" tokens --clients 5 --out "$tmp/t" >"$tmp/out" 2>"$tmp/err"; rc=$?; set -e
[ $rc -eq 1 ] && grep -q "already exists: .* add --force to replace it" "$tmp/err" || fail "overwrite: $rc $(cat "$tmp/err")"
cmp -s "$s" "$tmp/before" || fail "a refused run changed tokens.secret"
"$bin" tokens --clients 2 --out "$tmp/t" --force >/dev/null 2>&1 || fail "--force"
[ "$(wc -l <"$s")" -eq 2 ] && [ "$(stat -c %a "$s")" = 600 ] || fail "--force rewrote tokens.secret"
ls "$tmp/t" | grep -q tmp && fail "a temporary file was left: $(ls "$tmp/t")"
# usage errors
set +e
"$bin" tokens --out "$tmp/u" 2>"$tmp/err"; rc=$?
[ $rc -eq 2 ] && grep -q "^fedrec tokens: --clients N is required" "$tmp/err" || fail "missing --clients: $rc $(cat "$tmp/err")"
"$bin" tokens --clients 3 2>"$tmp/err"; rc=$?
[ $rc -eq 2 ] && grep -q "^fedrec tokens: --out DIR is required" "$tmp/err" || fail "missing --out: $rc $(cat "$tmp/err")"
"$bin" tokens --clients 16777217 --out "$tmp/u" 2>"$tmp/err"; rc=$?
[ $rc -eq 2 ] && grep -q "^fedrec tokens: --clients: expected an integer in 1..16777216, got '16777217' (out of range)" "$tmp/err" \
    || fail "--clients range: $rc $(cat "$tmp/err")"
"$bin" tokens --clients 3 --out /proc/nowhere/x 2>"$tmp/err"; rc=$?
[ $rc -eq 1 ] && grep -q "^fedrec tokens: --out: cannot make directory '/proc/nowhere/x'" "$tmp/err" || fail "bad --out: $rc $(cat "$tmp/err")"
set -e
"$bin" tokens --help | grep -q "^usage: fedrec tokens --clients N --out DIR" || fail "--help"
"$bin" --help | grep -q "^  tokens --clients N --out DIR" || fail "fedrec --help lists tokens"
echo "cli_tokens: ok"
