#!/usr/bin/env bash
# fedrec train --attack and the simulated faults end to end: a promotion attack adds er@10
# to every evaluated round's metrics (and --exposure-item without an attack), and the
# final er@10 equals the share of users, among those who did not train on the target,
# whose `fedrec recommend` top-10 holds it (an independent path: the saved model, the
# recommend command's top-K); a run with an attack and faults is the same model with 1 and
# 2 threads; faults report their attempts, crashes and late results; bad specs and
# combinations are refused with exit 2 naming the option, the value and what was expected.
set -euo pipefail
bin="$1"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail() { echo "cli_attack: FAIL: $*" >&2; exit 1; }
"$bin" data generate --users 30 --items 50 --interactions 600 --seed 3 --out "$tmp/g.tsv" >/dev/null
sort -k2,2n -k1,1n "$tmp/g.tsv" > "$tmp/r.tsv" # items first seen in id order: dense id = raw id
base=(train --model bpr --dim 8 --data "$tmp/r.tsv" --implicit --rounds 3 --quiet)
run() { # NAME ARGS...
    local name=$1; shift
    "$bin" "${base[@]}" "$@" --out "$tmp/$name.fr" --metrics-out "$tmp/$name.jsonl" >/dev/null 2>"$tmp/$name.err" \
        || fail "$name: $(cat "$tmp/$name.err")"
}
target=16
run atk --attack promote-pop:$target:0.1:3 --threads 2
run atk1 --attack promote-pop:$target:0.1:3 --threads 1
run plain --threads 2
run expo --exposure-item $target --threads 2
cmp -s "$tmp/atk.fr" "$tmp/atk1.fr" || fail "attack: 1 and 2 threads differ"
cmp -s "$tmp/plain.fr" "$tmp/expo.fr" || fail "--exposure-item changed the model"
[ "$(grep -c '^{"round"' "$tmp/atk.jsonl")" = 3 ] || fail "attack: expected 3 round records"
[ "$(grep '^{"round"' "$tmp/atk.jsonl" | grep -c '"er@10"')" = 3 ] || fail "attack: er@10 missing from a round"
grep -q '"er@10"' "$tmp/plain.jsonl" && fail "er@10 without an attack or --exposure-item"
grep '^{"round"' "$tmp/expo.jsonl" | grep -q '"er@10"' || fail "--exposure-item: no er@10"
# the final er@10 against fedrec recommend's top-10 of every user
python3 - "$bin" "$tmp" $target <<'PY' || fail "er@10 differs from recommend's top-10"
import json, subprocess, sys
bin, tmp, target = sys.argv[1], sys.argv[2], int(sys.argv[3])
er = [json.loads(l)["er@10"] for l in open(f"{tmp}/atk.jsonl") if l.startswith('{"round"')][-1]
users = sorted({int(l.split()[0]) for l in open(f"{tmp}/r.tsv")})
n = hit = 0
for u in users:
    top = lambda k: [x["item"] for x in json.loads(subprocess.run([bin, "recommend", "--model", f"{tmp}/atk.fr", "--user",
                     str(u), "-k", str(k), "--json"], capture_output=True, text=True, check=True).stdout)["items"]]
    if target not in top(100000): continue # trained on it: not a candidate, not counted
    n += 1
    hit += target in top(10)
print(f"er@10 {er}, recommend: {hit}/{n}")
sys.exit(0 if n and abs(er - hit / n) < 1e-12 else 1)
PY
# model poisoning and faults
run flip --attack signflip:0.2 --threads 2
cmp -s "$tmp/plain.fr" "$tmp/flip.fr" && fail "signflip left the model unchanged"
run flt --crash-rate 0.3 --straggler 0.3:20 --deadline 2 --over-select 0.2 --clients-per-round 20 --threads 2
run flt1 --crash-rate 0.3 --straggler 0.3:20 --deadline 2 --over-select 0.2 --clients-per-round 20 --threads 1
cmp -s "$tmp/flt.fr" "$tmp/flt1.fr" || fail "faults: 1 and 2 threads differ"
grep '^{"round"' "$tmp/flt.jsonl" | grep -q '"attempts":[0-9]*,"crashed":[0-9]*,"late":[0-9]*' || fail "faults: no attempts/crashed/late"
refuse() { # MESSAGE-PART ARGS...: exit 2 naming MESSAGE-PART
    local want=$1; shift
    set +e; "$bin" "$@" >/dev/null 2>"$tmp/err"; local rc=$?; set -e
    [ "$rc" = 2 ] || fail "$* exited $rc, expected 2"
    grep -qF -- "$want" "$tmp/err" || fail "$*: '$(cat "$tmp/err")' lacks '$want'"
}
refuse "--attack promote:x:0.1: item 'x' is not in the training data" "${base[@]}" --attack promote:x:0.1
refuse "--exposure-item: item '99' is not in the training data" "${base[@]}" --exposure-item 99
refuse "ITEM: expected the target's item id as in the data file" "${base[@]}" --attack promote::0.1
refuse "FRACTION '0.9', expected the malicious share of the clients, in (0, 0.5]" "${base[@]}" --attack promote:3:0.9
refuse "kind 'flood', expected promote:ITEM:FRACTION" "${base[@]}" --attack flood:0.1
refuse "FACTOR '0', expected a non-zero number" "${base[@]}" --attack scale:0:0.1
refuse "add --deadline SECONDS" "${base[@]}" --straggler 0.2
refuse "--straggler: expected P[:X]" "${base[@]}" --straggler 2 --deadline 1
refuse "--client-speed: expected SEC_PER_EXAMPLE" "${base[@]}" --client-speed 0 --deadline 1
refuse "crash-rate" "${base[@]}" --crash-rate 1
refuse "--attack promote:3:0.1 with --dp-clip" "${base[@]}" --attack promote:3:0.1 --dp-clip 1
refuse "with secure aggregation" "${base[@]}" --crash-rate 0.1 --secagg
refuse "--attack applies to federated training" train --model bpr --data "$tmp/r.tsv" --implicit --attack promote:3:0.1 --centralized
# a target beyond the catalogue: not an item of the data (exit 2 after the data is read)
refuse "--attack promote:50:0.1: item '50' is not in the training data" "${base[@]}" --attack promote:50:0.1
# string ids: ITEM is the id as in the file (p16). The same run as an integer file's item 16:
# the integer file numbers its users and items in order of first appearance (as strings are
# numbered), so p16 is dense item 16 in both and every client the same
awk -F'\t' -v OFS='\t' '!($1 in u) { u[$1] = n++ } { $1 = u[$1]; print }' "$tmp/r.tsv" > "$tmp/n.tsv"
awk -F'\t' -v OFS='\t' '{ $1 = "u" $1; $2 = "p" $2; print }' "$tmp/n.tsv" > "$tmp/s.tsv"
final() { grep '^{"round"' "$1" | tail -1 | python3 -c 'import json,sys; r=json.loads(sys.stdin.read()); print(r["er@10"], r["hr@10"])'; }
for f in n s; do
    [ $f = s ] && p=p || p=
    sbase=(train --model bpr --dim 8 --data "$tmp/$f.tsv" --implicit --rounds 3 --quiet --threads 2)
    "$bin" "${sbase[@]}" --attack promote-pop:$p$target:0.1:3 --metrics-out "$tmp/${f}atk.jsonl" >/dev/null 2>"$tmp/err" \
        || fail "$f.tsv: --attack promote-pop:$p$target: $(cat "$tmp/err")"
    "$bin" "${sbase[@]}" --exposure-item $p$target --metrics-out "$tmp/${f}expo.jsonl" >/dev/null 2>"$tmp/err" \
        || fail "$f.tsv: --exposure-item $p$target: $(cat "$tmp/err")"
done
[ "$(final "$tmp/satk.jsonl")" = "$(final "$tmp/natk.jsonl")" ] || fail "string ids: attack on p$target $(final "$tmp/satk.jsonl") differs from item $target's $(final "$tmp/natk.jsonl")"
[ "$(final "$tmp/sexpo.jsonl")" = "$(final "$tmp/nexpo.jsonl")" ] || fail "string ids: exposure of p$target differs from item $target's"
[ "$(final "$tmp/satk.jsonl")" = "$(final "$tmp/sexpo.jsonl")" ] && fail "string ids: the attack changed nothing"
refuse "--attack promote:$target:0.1: item '$target' is not in the training data" "${sbase[@]}" --attack promote:$target:0.1
refuse "--attack promote-pop:q1:0.05:2: item 'q1' is not in the training data" "${sbase[@]}" --attack promote-pop:q1:0.05:2
echo "cli_attack: ok"
