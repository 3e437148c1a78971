#!/usr/bin/env bash
# What a new user meets first, on small generated files of the shapes people bring: the
# summary's "best" line, sasrec on data without timestamps, Goodreads-style headers and
# the messages for a malformed quoted line or date.
set -euo pipefail
bin="$1"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail() { echo "cli_newuser: FAIL: $*" >&2; exit 1; }
# expect RC REGEX CMD...: CMD exits RC and its stderr matches REGEX (grep -E)
expect() {
    local want=$1 re=$2; shift 2
    set +e; "$@" >"$tmp/out" 2>"$tmp/err"; local rc=$?; set -e
    [ $rc -eq "$want" ] || fail "$* should exit $want, got $rc: $(cat "$tmp/err")"
    grep -Eq -- "$re" "$tmp/err" || fail "$*: stderr should match '$re': $(cat "$tmp/err")"
}

# 1. "best" is shown only when it beats the final step: three users, four items, every
# test item ranked first or second from the first epoch on (hr@10 1 throughout), so no
# step is better than the last and the summary has no "best" line.
printf '1\t1\t1\n1\t2\t1\n2\t2\t1\n2\t3\t1\n3\t1\t1\n3\t3\t1\n' >"$tmp/tr.tsv"
printf '1\t9\t1\n2\t1\t1\n3\t2\t1\n' >"$tmp/te.tsv"
"$bin" train --data "$tmp/tr.tsv" --test "$tmp/te.tsv" --model lightgcn-full --centralized --epochs 5 --quiet \
    --metrics-out "$tmp/m.jsonl" >"$tmp/out" || fail "lightgcn-full on the tiny file"
grep -q '^  final (epoch 5)' "$tmp/out" || fail "no final line: $(cat "$tmp/out")"
if grep -q '^  best ' "$tmp/out"; then
    fin=$(grep '^  final' "$tmp/out" | grep -o 'hr@10_full [0-9.]*' | cut -d' ' -f2)
    best=$(grep '^  best' "$tmp/out" | grep -o 'hr@10_full [0-9.]*' | cut -d' ' -f2)
    awk -v b="$best" -v f="$fin" 'BEGIN { exit !(b > f) }' ||
        fail "a best line no better than the final: $(cat "$tmp/out")"
fi
# the metrics file still records the best step (the first of the ties)
tail -1 "$tmp/m.jsonl" | grep -q '"best":{"epoch":' || fail "summary record: $(tail -1 "$tmp/m.jsonl")"
echo "cli_newuser: ok"
