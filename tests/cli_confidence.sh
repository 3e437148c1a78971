#!/usr/bin/env bash
# Confidence weights from the command line (issue 11): `fedrec train` on a generated
# play-count file (userID artistID weight) weighs each positive by 1 + α·log(1 + count),
# says so in its header, summary and metrics, records α in the model file, and refuses
# --confidence-alpha where there is nothing to weigh.
set -euo pipefail
# (output goes to a file before grep -q: with pipefail, grep -q closing the pipe early
# would fail the writer with SIGPIPE)
bin="$1"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail() { echo "cli_confidence: FAIL: $*" >&2; exit 1; }
# expect RC REGEX CMD...: CMD exits RC and its stderr matches REGEX (grep -E)
expect() {
    local want=$1 re=$2; shift 2
    set +e; "$@" >"$tmp/out" 2>"$tmp/err"; local rc=$?; set -e
    [ $rc -eq "$want" ] || fail "$* should exit $want, got $rc: $(cat "$tmp/err")"
    grep -Eq -- "$re" "$tmp/err" || fail "$*: stderr should match '$re': $(cat "$tmp/err")"
}
# play counts, tab-separated, with the last.fm header
awk 'BEGIN { srand(11); printf "userID\tartistID\tweight\n";
             for (u = 1; u <= 80; u++) { n = 0; for (i = 1; i <= 60 && n < 10; i++) if (rand() < 0.25) { printf "%d\t%d\t%d\n", u, i, 1 + int(rand() * rand() * 3000); n++ } } }' \
    >"$tmp/counts.tsv"

# the default model (neumf, chosen from the data), federated, alpha 1 by default
"$bin" train --data "$tmp/counts.tsv" --implicit-weight --rounds 2 --threads 1 >"$tmp/out" 2>"$tmp/err" \
    || fail "train on the counts: $(cat "$tmp/err")"
grep -q "model neumf chosen from the data" "$tmp/out" || fail "neumf is the default: $(cat "$tmp/out")"
grep -q "positives weighted 1 + 1·log(1 + weight)" "$tmp/err" || fail "the header says the weights: $(cat "$tmp/err")"
grep -q "^  positives weighted by their counts: confidence 1 + 1·log(1 + weight) (--confidence-alpha)" "$tmp/out" \
    || fail "the summary says the weights: $(cat "$tmp/out")"

# centralized bpr with another alpha: header, summary, metrics record, provenance
"$bin" train --data "$tmp/counts.tsv" --implicit-weight --model bpr --centralized --epochs 2 --threads 1 \
    --confidence-alpha 0.5 --metrics-out "$tmp/m.jsonl" --out "$tmp/b.fr" >"$tmp/out" 2>"$tmp/err" \
    || fail "centralized bpr with --confidence-alpha: $(cat "$tmp/err")"
grep -q "4 negatives per positive, positives weighted 1 + 0.5·log(1 + weight), 2 epochs" "$tmp/out" \
    || fail "the centralized header says alpha 0.5: $(cat "$tmp/out")"
grep -q "confidence 1 + 0.5·log(1 + weight)" "$tmp/out" || fail "the summary says alpha 0.5: $(cat "$tmp/out")"
grep -q '"summary":true.*"confidence_alpha":0.5' "$tmp/m.jsonl" || fail "the summary record: $(tail -1 "$tmp/m.jsonl")"
grep -aq '"confidence_alpha":0.5' "$tmp/b.fr" || fail "the model file's provenance records alpha"
"$bin" eval --model "$tmp/b.fr" >"$tmp/out" 2>"$tmp/err" || fail "eval of the weighted model: $(cat "$tmp/err")"
grep -q "^hr@10" "$tmp/out" || fail "eval prints hr@10: $(cat "$tmp/out")"

# alpha 0 is the counts ignored: the same model as --implicit (the same evaluation, to the digit)
for mode in "--centralized --epochs 2" "--rounds 2"; do
    # shellcheck disable=SC2086
    "$bin" train --data "$tmp/counts.tsv" --implicit-weight --confidence-alpha 0 --model bpr $mode --threads 1 \
        --quiet --out "$tmp/z.fr" >/dev/null 2>"$tmp/err" || fail "alpha 0 ($mode): $(cat "$tmp/err")"
    # shellcheck disable=SC2086
    "$bin" train --data "$tmp/counts.tsv" --implicit --model bpr $mode --threads 1 --quiet --out "$tmp/i.fr" \
        >/dev/null 2>"$tmp/err" || fail "--implicit ($mode): $(cat "$tmp/err")"
    # (without the "model" key: the file names differ)
    "$bin" eval --model "$tmp/z.fr" --json | sed 's/"model":"[^"]*",//' >"$tmp/z.json" \
        && "$bin" eval --model "$tmp/i.fr" --json | sed 's/"model":"[^"]*",//' >"$tmp/i.json" \
        || fail "eval of the alpha 0 and --implicit models"
    cmp -s "$tmp/z.json" "$tmp/i.json" || fail "alpha 0 ($mode) differs from --implicit: $(cat "$tmp/z.json") vs $(cat "$tmp/i.json")"
    # and alpha 1 does not
    # shellcheck disable=SC2086
    "$bin" train --data "$tmp/counts.tsv" --implicit-weight --model bpr $mode --threads 1 --quiet --out "$tmp/w.fr" \
        >/dev/null 2>"$tmp/err" || fail "alpha 1 ($mode): $(cat "$tmp/err")"
    "$bin" eval --model "$tmp/w.fr" --json | sed 's/"model":"[^"]*",//' >"$tmp/w.json" || fail "eval of the alpha 1 model"
    ! cmp -s "$tmp/z.json" "$tmp/w.json" || fail "alpha 1 ($mode) trained the same model as alpha 0"
done

# nothing to weigh: refused, saying why and what to do
expect 2 "^fedrec train: --confidence-alpha weighs each positive by its count or weight, but .* has none: read its count column with --implicit-weight" \
    "$bin" train --data "$tmp/counts.tsv" --implicit --confidence-alpha 1 --rounds 1 --quiet
expect 2 "^fedrec train: --confidence-alpha .* the built-in synthetic data has no counts" \
    "$bin" train --confidence-alpha 1 --rounds 1 --quiet
expect 2 "^fedrec train: --confidence-alpha weighs implicit positives by their counts; mf predicts ratings" \
    "$bin" train --data "$tmp/counts.tsv" --implicit-weight --model mf --confidence-alpha 1 --rounds 1
expect 2 "^fedrec train: --confidence-alpha .*; pop is a baseline fitted in closed form" \
    "$bin" train --data "$tmp/counts.tsv" --implicit-weight --model pop --centralized --confidence-alpha 1
expect 2 "confidence-alpha" "$bin" train --data "$tmp/counts.tsv" --implicit-weight --confidence-alpha -1
"$bin" train --help >"$tmp/out" || fail "train --help"
grep -q -- "--confidence-alpha" "$tmp/out" && grep -q "1 + α·log(1 + w)" "$tmp/out" \
    || fail "--help explains the confidence: $(grep -n confidence "$tmp/out")"
echo "cli_confidence: ok"
