#!/usr/bin/env bash
# End-to-end checks of the hybrid models (lightfm, fm): features from MovieLens metadata
# beside the data and from feature files, train -> eval -> recommend with the model file
# alone, federated, the WARP option, cold-start items (fraction and file), and the
# errors a bad feature file gets (file:line, value, expected).
set -euo pipefail
bin="$1"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail() { echo "cli_hybrid: FAIL: $*" >&2; exit 1; }
# ml-100k-shaped data: 60 users, 50 items; user u likes items of genre (u % 3)
awk 'BEGIN { srand(3); t = 880000000
  for (u = 1; u <= 60; u++) for (k = 0; k < 14; k++) {
    i = 1 + int(rand() * 50); if (rand() < 0.8) i = 1 + 3 * int(rand() * 16) + (u % 3); if (i > 50) i = 50
    print u "\t" i "\t" (1 + int(rand() * 5)) "\t" (t++) } }' >"$tmp/u.data"
awk 'BEGIN { for (u = 1; u <= 60; u++) print u "|" (15 + u % 40) "|" (u % 2 ? "M" : "F") "|occ" (u % 3) "|0000" u }' >"$tmp/u.user"
awk 'BEGIN { for (i = 1; i <= 50; i++) { g = ""; for (k = 0; k < 19; k++) g = g "|" (k == (i - 1) % 3 ? 1 : 0)
  print i "|Movie " i " (" (1990 + i % 5) ")|01-Jan-1995||http://x" g } }' >"$tmp/u.item"

"$bin" train --data "$tmp/u.data" --model lightfm --centralized --epochs 3 --out "$tmp/l.fr" >"$tmp/out" 2>"$tmp/err" ||
    fail "train lightfm: $(cat "$tmp/err")"
grep -q "features: 11 user features (3.0 per user), 8 item features (2.0 per item)" "$tmp/err" ||
    fail "features from u.user and u.item: $(cat "$tmp/err")"
grep -q "hr@10" "$tmp/out" || fail "train prints metrics: $(cat "$tmp/out")"
"$bin" eval --model "$tmp/l.fr" >"$tmp/ev" 2>&1 || fail "eval: $(cat "$tmp/ev")"
grep -q "^hr@10" "$tmp/ev" || fail "eval metrics: $(cat "$tmp/ev")"
"$bin" recommend --model "$tmp/l.fr" --user 7 -k 3 >"$tmp/rec" 2>&1 || fail "recommend: $(cat "$tmp/rec")"
[ "$(grep -c "^  [0-9]\." "$tmp/rec")" -eq 3 ] || fail "recommend 3 items: $(cat "$tmp/rec")"
# the model file keeps the features: scoring the same pair twice gives the same numbers
"$bin" recommend --model "$tmp/l.fr" --user 7 -k 3 | cmp -s - "$tmp/rec" || fail "recommend is deterministic"

# fm, federated, with WARP, and a feature file adding to the metadata
printf '# extra\n1\tvip:2\n2\tvip:0.5 night\n999\tvip\n' >"$tmp/uf.tsv"
"$bin" train --data "$tmp/u.data" --model fm --rounds 2 --warp 5 --user-features "$tmp/uf.tsv" --out "$tmp/f.fr" \
    >"$tmp/out" 2>"$tmp/err" || fail "train fm federated: $(cat "$tmp/err")"
grep -q "features: 13 user features" "$tmp/err" || fail "file features added: $(cat "$tmp/err")"
grep -q "uf.tsv: 1 line names a user the data does not have; skipped (the first: .*uf.tsv:4: user id \"999\")" "$tmp/err" || fail "unknown id noted: $(cat "$tmp/err")"
"$bin" eval --model "$tmp/f.fr" >"$tmp/ev" 2>&1 || fail "eval fm: $(cat "$tmp/ev")"
grep -q "^model .*f.fr (fm, round 2)$" "$tmp/ev" || fail "eval names a federated model's round alone: $(cat "$tmp/ev")"
"$bin" eval --model "$tmp/l.fr" >"$tmp/ev" 2>&1 || fail "eval lightfm: $(cat "$tmp/ev")"
grep -q "^model .*l.fr (lightfm, epoch 3)$" "$tmp/ev" || fail "eval names a centralized model's epoch alone: $(cat "$tmp/ev")"

# cold start: a fraction, then the same items from a file
"$bin" train --data "$tmp/u.data" --model lightfm --centralized --epochs 3 --cold-items 0.2 --metrics-out "$tmp/m.jsonl" \
    >"$tmp/out" 2>"$tmp/err" || fail "cold items: $(cat "$tmp/err")"
grep -q "cold start: 10 items (--cold-items 0.2) held out" "$tmp/err" || fail "cold note: $(cat "$tmp/err")"
grep -Eq "^cold start: 10 items held out, ranked among themselves for [0-9]+ users: auc 0\.[0-9]+  precision@10 " "$tmp/out" ||
    fail "cold line: $(cat "$tmp/out")"
grep -q '"auc_cold":' "$tmp/m.jsonl" || fail "cold metrics in --metrics-out"
printf '3\n6\n# comment\n\n9\n' >"$tmp/cold.txt"
"$bin" train --data "$tmp/u.data" --model lightfm --centralized --epochs 2 --cold-items "$tmp/cold.txt" >"$tmp/out" 2>"$tmp/err" ||
    fail "cold file: $(cat "$tmp/err")"
grep -q "cold start: 3 items" "$tmp/err" || fail "cold file note: $(cat "$tmp/err")"
# the run's header counts the interactions it trains on: the cold items' are held out
mkdir "$tmp/sp"
awk 'BEGIN { for (u = 0; u < 40; u++) for (k = 0; k < 10; k++) print u "\t" (u + 3 * k) % 30 "\t1\t" 1000 + k }' >"$tmp/sp/train.rating"
awk 'BEGIN { for (u = 0; u < 40; u++) print u "\t" (u + 1) % 30 "\t1\t2000" }' >"$tmp/sp/test.rating"
printf '3\n6\n' >"$tmp/cold2.txt"
warm=$(awk '$2 != 3 && $2 != 6' "$tmp/sp/train.rating" | wc -l)
"$bin" train --data "$tmp/sp" --model lightfm --centralized --epochs 1 --cold-items "$tmp/cold2.txt" >"$tmp/out" 2>"$tmp/err" ||
    fail "cold items of a split directory: $(cat "$tmp/err")"
grep -q "^training lightfm centrally on .*: 40 users, 30 items, $warm training interactions;" "$tmp/out" ||
    fail "the header counts the warm training interactions ($warm): $(cat "$tmp/out")"

# bad input: file:line, the value, what was expected; exit 1
# refused OPTION FILE MESSAGE WHAT: lightfm training with OPTION FILE fails and says MESSAGE
refused() {
    if "$bin" train --data "$tmp/u.data" --model lightfm --centralized --epochs 1 "$1" "$2" >/dev/null 2>"$tmp/err"; then
        fail "$4 must fail"
    fi
    grep -q -- "$3" "$tmp/err" || fail "$4 message: $(cat "$tmp/err")"
}
printf '1\tvip\nx7\tvip\n' >"$tmp/bad.tsv"
refused --user-features "$tmp/bad.tsv" 'bad.tsv:2: user id "x7"; expected an integer id' "a bad feature file"
printf '1\tvip:nan\n' >"$tmp/bad2.tsv"
refused --item-features "$tmp/bad2.tsv" 'bad2.tsv:1: weight "nan" of feature "vip"; expected a finite number' "a NaN weight"
printf '3\nx\n' >"$tmp/badc.txt"
refused --cold-items "$tmp/badc.txt" 'badc.txt:2: item id "x"; expected one raw item id per line' "a bad cold file"
# a weight that starts as a number but is not one, or an empty one, is refused (a name
# may hold ':' when what follows the last one is not number-like: "url:http" is a name)
printf '1\tvip:1,5\n' >"$tmp/bad3.tsv"
refused --item-features "$tmp/bad3.tsv" 'bad3.tsv:1: weight "1,5" of feature "vip"; expected a number' "a weight 1,5"
printf '1\tvip\n2\tvip:\n' >"$tmp/bad4.tsv"
refused --item-features "$tmp/bad4.tsv" "bad4.tsv:2: feature \"vip:\"; expected a weight after ':'" "an empty weight"
# an unknown id is skipped, and the note names the first one's line and value
printf '1\tvip\n777\tvip\n3\tvip\n778\tvip\n' >"$tmp/unk.tsv"
"$bin" train --data "$tmp/u.data" --model lightfm --centralized --epochs 1 --item-features "$tmp/unk.tsv" >/dev/null 2>"$tmp/err" ||
    fail "unknown ids are skipped: $(cat "$tmp/err")"
grep -q 'unk.tsv: 2 lines name items the data does not have; skipped (the first: .*unk.tsv:2: item id "777")' "$tmp/err" ||
    fail "unknown id note: $(cat "$tmp/err")"
# options of the feature models are refused with another model, as the README says
for opt in "--warp 5" "--item-features $tmp/unk.tsv" "--user-features $tmp/unk.tsv" "--cold-items 0.2"; do
    rc=0
    # shellcheck disable=SC2086
    "$bin" train --data "$tmp/u.data" --model lightgcn --rounds 1 $opt >/dev/null 2>"$tmp/err" || rc=$?
    [ "$rc" = 2 ] || fail "$opt with lightgcn: exit $rc, expected 2: $(cat "$tmp/err")"
    grep -q "lightfm" "$tmp/err" || fail "$opt with lightgcn: the message names the models it applies to: $(cat "$tmp/err")"
done
# metadata: malformed lines skipped are said, with the first one's file and line; a
# missing side is said
mkdir "$tmp/m"
cp "$tmp/u.data" "$tmp/m/u.data"
{ head -n 30 "$tmp/u.user"; echo '31|abc|M|occ1|00031'; echo 'broken'; tail -n +33 "$tmp/u.user"; } >"$tmp/m/u.user"
"$bin" train --data "$tmp/m/u.data" --model lightfm --centralized --epochs 1 >/dev/null 2>"$tmp/err" ||
    fail "metadata with bad lines: $(cat "$tmp/err")"
grep -q "note: metadata: 1 malformed line skipped (the first: .*u.user:32: " "$tmp/err" ||
    fail "metadata bad lines note: $(cat "$tmp/err")"
grep -q "0 item features.*no u.item, movies.dat or movies.csv beside the data" "$tmp/err" ||
    fail "missing item metadata note: $(cat "$tmp/err")"
# --help's tables: the loss of the feature models (the --warp help points at it), the
# kinds that train centrally only, and the run's header saying the loss it trains
"$bin" train --help >"$tmp/help" || fail "train --help"
grep -q '^  lightfm .*loss: centralized warp 10 (up to 10 draws a positive), federated bpr' "$tmp/help" ||
    fail "--help: lightfm's loss: $(grep lightfm "$tmp/help")"
grep -q '^  lightfm .*bpr (--warp 0), centralized: lr 0.1, l2 0.01, negatives --neg-sampler pop:0.5$' "$tmp/help" ||
    fail "--help: lightfm's bpr settings: $(grep 'warp 0' "$tmp/help")"
for m in lightgcn-full pop bias; do
    awk -v m=$m '$1 == "federated" { f = 1 } $1 == "centralized" { f = 0 } f && $1 == m' "$tmp/help" | grep -q "centralized only" ||
        fail "--help's federated table: $m trains centrally only: $(grep -- "^  $m" "$tmp/help")"
done
# federated rounds: fm 60 (within 0.5% of centralized on ml-100k's validation cut, 4.8%
# on ml-1m's; 40 left it 1.7% and 6.1% below), lightfm 40 (its peak); fixed, not sized
# from the data (rounds grown with the users were worse on ml-1m, docs/ARCHITECTURE.md)
grep -qE '^  \((fm|lightfm): the rounds' "$tmp/help" && fail "--help: fm's or lightfm's rounds sized from the data"
[ "$(awk '$1 == "federated" { f = 1 } $1 == "centralized" { f = 0 } f && $1 == "fm" { print $3 }' "$tmp/help")" = 60 ] ||
    fail "--help: fm's federated rounds: $(grep '^  fm ' "$tmp/help")"
[ "$(awk '$1 == "federated" { f = 1 } $1 == "centralized" { f = 0 } f && $1 == "lightfm" { print $3 }' "$tmp/help")" = 40 ] ||
    fail "--help: lightfm's federated rounds: $(grep '^  lightfm ' "$tmp/help")"
# every row's dim column ends where the others' do (lightgcn-full is the longest name)
awk '$1 == "centralized" { c = 1; next } c && /^  [a-z]/ && match($0, /^  [a-z-]+ +[0-9-]+/) { print RLENGTH }' "$tmp/help" |
    sort -u | awk 'END { if (NR != 1) exit 1 }' || fail "--help: the centralized table's columns are not aligned"
"$bin" train --data "$tmp/u.data" --model lightfm --centralized --epochs 1 >"$tmp/out" 2>/dev/null || fail "lightfm header run"
grep -q "^training lightfm centrally .*, loss warp (up to 10 draws a positive), 1 epoch$" "$tmp/out" || fail "centralized header: $(head -2 "$tmp/out")"
"$bin" train --data "$tmp/u.data" --model fm --rounds 1 >/dev/null 2>"$tmp/err" || fail "fm header run"
grep -q "^fedrec train: federated fm .* E=1 B=32 adam lr 0.006, loss bpr, item rows" "$tmp/err" || fail "federated header: $(grep federated "$tmp/err")"
# bpr's popularity negatives: the header says them; a bad sampler or exponent, or a model
# without sampled negatives, is refused (exit 2) with what is expected
"$bin" train --data "$tmp/u.data" --model lightfm --centralized --warp 0 --epochs 1 >"$tmp/out" 2>/dev/null || fail "lightfm bpr run"
grep -q "^training lightfm centrally .*, loss bpr, 1 negative per positive (by popularity^0.5), 1 epoch$" "$tmp/out" ||
    fail "bpr header: $(head -2 "$tmp/out")"
"$bin" train --data "$tmp/u.data" --model bpr --rounds 1 --neg-sampler pop:0.75 >/dev/null 2>"$tmp/err" || fail "federated pop run"
grep -q "negatives by popularity^0.75" "$tmp/err" || fail "federated header: $(grep federated "$tmp/err")"
for bad in "--model lightfm --neg-sampler zipf" "--model lightfm --neg-sampler pop:5" "--model lightfm --neg-sampler pop:" \
           "--model mf --neg-sampler pop" "--model sasrec --neg-sampler pop"; do
    rc=0
    # shellcheck disable=SC2086
    "$bin" train --data "$tmp/u.data" $bad --rounds 1 >/dev/null 2>"$tmp/err" || rc=$?
    [ "$rc" = 2 ] || fail "$bad: exit $rc, expected 2: $(cat "$tmp/err")"
    grep -q -- "--neg-sampler" "$tmp/err" || fail "$bad: the message names the option: $(cat "$tmp/err")"
done
echo "cli_hybrid: ok"
