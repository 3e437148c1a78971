#!/usr/bin/env bash
# End-to-end checks of the fedrec program: exit codes and messages a user relies on.
set -euo pipefail
bin="$1"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail() { echo "cli_smoke: FAIL: $*" >&2; exit 1; }
"$bin" --help | grep -q "usage: fedrec" || fail "--help"
"$bin" version | grep -q "fedrec " || fail "version"
set +e; "$bin" nosuchcommand 2>"$tmp/err"; rc=$?; set -e
[ $rc -eq 2 ] || fail "unknown command should exit 2, got $rc"
grep -q "unknown command" "$tmp/err" || fail "unknown command message"
# train / eval / recommend on small generated data
"$bin" data generate --users 60 --items 40 --interactions 1500 --seed 3 --out "$tmp/r.tsv" >/dev/null || fail "data generate"
# a count of 1 takes the singular, in the headers and the summaries
"$bin" data generate --users 1 --items 1 --interactions 1 --out "$tmp/one.tsv" >"$tmp/out" || fail "data generate 1"
grep -q "^wrote $tmp/one.tsv: 1 user, 1 item, 1 interaction$" "$tmp/out" || fail "generate of 1: $(cat "$tmp/out")"
"$bin" train --centralized --model bpr --data "$tmp/r.tsv" --epochs 1 --neg 1 >"$tmp/out" 2>"$tmp/err" || fail "train 1 epoch"
grep -q "^training bpr centrally .*, 1 negative per positive, 1 epoch$" "$tmp/out" || fail "1 epoch header: $(head -2 "$tmp/out")"
grep -q "^summary: centralized bpr on .*: 1 epoch in" "$tmp/out" || fail "1 epoch summary: $(cat "$tmp/out")"
"$bin" train --model mf --data "$tmp/r.tsv" --rounds 1 --clients-per-round 1 >"$tmp/out" 2>"$tmp/err" || fail "train 1 round"
grep -q "; 1 round (preset fedrec)$" "$tmp/err" || fail "1 round header: $(cat "$tmp/err")"
grep -q "^summary: federated mf on .*: 1 round in" "$tmp/out" || fail "1 round summary: $(cat "$tmp/out")"
"$bin" privacy --noise 1 --sample-rate 0.1 --rounds 1 --delta 1e-5 >"$tmp/out" || fail "privacy 1 round"
grep -q "sample rate 0.1, 1 round, best" "$tmp/out" || fail "privacy of 1 round: $(cat "$tmp/out")"
"$bin" train --centralized --model mf --data "$tmp/r.tsv" --split ratio:0.8 --epochs 3 --threads 2 \
    --out "$tmp/mf.fr" --metrics-out "$tmp/m.jsonl" >"$tmp/out" || fail "train mf"
grep -q "^epoch   3/3 .*rmse" "$tmp/out" || fail "train progress line: $(cat "$tmp/out")"
[ "$(wc -l <"$tmp/m.jsonl")" -eq 4 ] || fail "metrics-out should have 3 epoch lines and the summary"
# the summary: stdout, and the last line of --metrics-out
grep -q '^summary: centralized mf on .*: 3 epochs in' "$tmp/out" || fail "summary line: $(cat "$tmp/out")"
grep -q '^  baseline bias  *rmse [0-9.]*  mae [0-9.]*  (mean + user and item biases on the same split; final rmse' "$tmp/out" \
    || fail "summary baseline: $(cat "$tmp/out")"
grep -q "^  model: $tmp/mf.fr (for fedrec eval and fedrec recommend --model)$" "$tmp/out" || fail "summary names the model file: $(cat "$tmp/out")"
tail -1 "$tmp/m.jsonl" | grep -q '^{"summary":true,"model":"mf","mode":"centralized","epochs":3,"stop":"done",.*"final":{"epoch":3,"rmse":.*"best":{"epoch":[123],"rmse":.*"baseline":{"model":"bias","rmse":.*"out":".*mf.fr","checkpoint":null}$' \
    || fail "metrics-out summary record: $(tail -1 "$tmp/m.jsonl")"
grep -q '^{"epoch":3,"loss":[0-9.e+-]*,.*"rmse":[0-9.]*,.*"seconds":' "$tmp/m.jsonl" || fail "metrics-out keys: $(tail -1 "$tmp/m.jsonl")"
"$bin" eval --model "$tmp/mf.fr" --json >"$tmp/ev" || fail "eval"
grep -q '"rmse":' "$tmp/ev" || fail "eval --json: $(cat "$tmp/ev")"
# eval reports the same RMSE as the last training epoch
r1=$(sed 's/.*"rmse":\([0-9.]*\).*/\1/' "$tmp/ev"); r2=$(grep '^{"epoch"' "$tmp/m.jsonl" | tail -1 | sed 's/.*"rmse":\([0-9.]*\).*/\1/')
[ "$r1" = "$r2" ] || fail "eval rmse $r1 differs from the last epoch's $r2"
user=$(head -1 "$tmp/r.tsv" | cut -f1)
"$bin" recommend --model "$tmp/mf.fr" --user "$user" -k 5 >"$tmp/rec" || fail "recommend"
[ "$(grep -c '^ *[0-9]*\. item' "$tmp/rec")" -eq 5 ] || fail "recommend should list 5 items: $(cat "$tmp/rec")"
"$bin" train --centralized --model neumf --data "$tmp/r.tsv" --epochs 2 --quiet --out "$tmp/nf.fr" >"$tmp/out" || fail "train neumf"
grep -q '^summary: centralized neumf' "$tmp/out" && grep -q '^  baseline pop  *hr@10 ' "$tmp/out" \
    || fail "--quiet keeps the summary, a ranking model beside pop: $(cat "$tmp/out")"
# the baselines: fitted centrally in one pass, refused federated, evaluated and recommended from
"$bin" train --centralized --model bias --data "$tmp/r.tsv" --split ratio:0.8 --quiet --out "$tmp/bias.fr" \
    --metrics-out "$tmp/b.jsonl" >"$tmp/out" || fail "train bias"
grep -q '^  final (epoch 1) *rmse ' "$tmp/out" || fail "bias summary: $(cat "$tmp/out")"
r1=$("$bin" eval --model "$tmp/bias.fr" --json | sed 's/.*"rmse":\([0-9.]*\).*/\1/'); r2=$(head -1 "$tmp/b.jsonl" | sed 's/.*"rmse":\([0-9.]*\).*/\1/')
[ -n "$r1" ] && [ "$r1" = "$r2" ] || fail "eval of bias: rmse '$r1' vs training's '$r2'"
"$bin" recommend --model "$tmp/bias.fr" --user "$(head -1 "$tmp/r.tsv" | cut -f1)" -k 2 | grep -c '^ *[0-9]*\. item' | grep -q '^2$' \
    || fail "recommend from bias"
"$bin" train --centralized --model pop --data "$tmp/r.tsv" --quiet --out "$tmp/pop.fr" >/dev/null || fail "train pop"
"$bin" eval --model "$tmp/pop.fr" | grep -q "^hr@10" || fail "eval pop prints hr@10"
set +e
"$bin" train --model pop --data "$tmp/r.tsv" 2>"$tmp/err"; rc=$?
[ $rc -eq 2 ] && grep -q "^fedrec train: --model pop is a baseline fitted in closed form on all the training data: add --centralized" "$tmp/err" \
    || fail "federated pop: $rc $(cat "$tmp/err")"
set -e
# the default model follows the data: implicit (all ones) -> neumf; mf there is refused with advice
awk -F'\t' 'BEGIN { OFS = "\t" } { $3 = 1; print }' "$tmp/r.tsv" >"$tmp/ones.tsv"
"$bin" train --centralized --data "$tmp/ones.tsv" --epochs 1 --quiet >"$tmp/out" 2>"$tmp/err" || fail "default model on implicit data: $(cat "$tmp/err")"
grep -q '^summary: centralized neumf' "$tmp/out" && grep -q '^  model neumf chosen from the data: every rating is 1 (implicit feedback)' "$tmp/out" \
    || fail "implicit data should default to neumf and say why: $(cat "$tmp/out")"
"$bin" train --centralized --data "$tmp/r.tsv" --epochs 1 2>"$tmp/err" | grep -q '^summary: centralized mf' || fail "explicit data defaults to mf"
grep -q "^fedrec train: no --model: mf chosen: the ratings differ" "$tmp/err" || fail "default mf note: $(cat "$tmp/err")"
set +e
"$bin" train --centralized --model mf --data "$tmp/ones.tsv" --epochs 1 2>"$tmp/err"; rc=$?
[ $rc -eq 2 ] && grep -q "^fedrec train: --model mf: mf predicts ratings, and every rating of this data is 1 (implicit feedback).*use a ranking model such as neumf, bpr" "$tmp/err" \
    || fail "mf on constant ratings: $rc $(cat "$tmp/err")"
set -e
"$bin" eval --model "$tmp/nf.fr" | grep -q "^hr@10" || fail "eval neumf prints hr@10"
# error cases: exit codes and messages
set +e
"$bin" train --centralized --data "$tmp/nosuch.tsv" 2>"$tmp/err"; rc=$?
[ $rc -eq 1 ] || fail "missing data file should exit 1, got $rc"
grep -q "nosuch.tsv" "$tmp/err" || fail "missing file message: $(cat "$tmp/err")"
"$bin" train --centralized --split x 2>"$tmp/err"; rc=$?
[ $rc -eq 2 ] || fail "bad --split should exit 2, got $rc"
grep -q "^fedrec train: --split: expected loo, ratio:R, temporal:R or temporal-user:R" "$tmp/err" || fail "bad split message: $(cat "$tmp/err")"
"$bin" train --centralized --model xyz 2>"$tmp/err"; rc=$?
[ $rc -eq 2 ] && grep -q "got 'xyz'" "$tmp/err" || fail "bad --model: $rc $(cat "$tmp/err")"
"$bin" train --centralized --epochs -3 2>"$tmp/err"; rc=$?
[ $rc -eq 2 ] && grep -q "^fedrec train: --epochs: expected an integer in 1..4294967295, got '-3' (out of range)$" "$tmp/err" || fail "bad --epochs: $(cat "$tmp/err")"
"$bin" train --centralized --lr-decay 1.5 2>"$tmp/err"; rc=$?
[ $rc -eq 2 ] && grep -q "^fedrec train: --lr-decay: expected a number in (0, 1\], got '1.5' (out of range)$" "$tmp/err" || fail "bad --lr-decay: $(cat "$tmp/err")"
"$bin" train --centralized --bias-l2 -1 2>"$tmp/err"; rc=$?
[ $rc -eq 2 ] && grep -q "^fedrec train: --bias-l2: expected a number in \[0, 1e30\] (0 = --l2), got '-1' (out of range)$" "$tmp/err" || fail "bad --bias-l2: $(cat "$tmp/err")"
"$bin" train --item-optimizer rmsprop 2>"$tmp/err"; rc=$?
[ $rc -eq 2 ] && grep -q "item-optimizer: expected same, sgd, adam or adagrad, got 'rmsprop'" "$tmp/err" || fail "bad --item-optimizer: $(cat "$tmp/err")"
"$bin" train --item-lr-decay 0 2>"$tmp/err"; rc=$?
[ $rc -eq 2 ] && grep -q "item-lr-decay: expected a number in (0, 1\] (1 = constant), got '0' (out of range)" "$tmp/err" || fail "bad --item-lr-decay: $(cat "$tmp/err")"
"$bin" train --centralized --item-lr-decay 0.9 2>"$tmp/err"; rc=$?
[ $rc -eq 2 ] && grep -q "^fedrec train: --item-lr-decay applies to federated training, not --centralized$" "$tmp/err" || fail "--item-lr-decay with --centralized: $(cat "$tmp/err")"
"$bin" train --item-lr 0.5 --rounds 1 2>"$tmp/err"; rc=$?
[ $rc -eq 2 ] && grep -q "item-lr needs an item optimizer" "$tmp/err" || fail "--item-lr without item optimizer: $(cat "$tmp/err")"
"$bin" train --item-optimizer sgd --item-lr 0.05 --item-lr-decay 0.9 --rounds 2 --quiet --threads 1 2>"$tmp/err" || fail "item optimizer run: $(cat "$tmp/err")"
"$bin" eval --model "$tmp/nosuch.fr" 2>"$tmp/err"; rc=$?
[ $rc -eq 1 ] && grep -q "nosuch.fr" "$tmp/err" || fail "eval of a missing model: $rc $(cat "$tmp/err")"
"$bin" recommend --model "$tmp/mf.fr" --user 999999 2>"$tmp/err"; rc=$?
[ $rc -eq 1 ] && grep -q "user 999999 is not in the model" "$tmp/err" || fail "unknown user: $rc $(cat "$tmp/err")"
printf '5001\t1\t4\t1\n5001\t2\t3\t2\n5002\t1\t5\t1\n5002\t3\t2\t2\n' >"$tmp/other.tsv"
"$bin" eval --model "$tmp/mf.fr" --data "$tmp/other.tsv" 2>"$tmp/err"; rc=$?
[ $rc -eq 1 ] && grep -q "model/data mismatch" "$tmp/err" || fail "model/data mismatch: $rc $(cat "$tmp/err")"
"$bin" train --partition iid:0 2>"$tmp/err"; rc=$?
[ $rc -eq 2 ] && grep -q "partition: expected user, iid:K or dirichlet:K\[:ALPHA\]" "$tmp/err" || fail "bad --partition: $(cat "$tmp/err")"
"$bin" train --centralized --keep-private-optim 2>"$tmp/err"; rc=$?
[ $rc -eq 2 ] && grep -q "^fedrec train: --keep-private-optim applies to federated training, not --centralized$" "$tmp/err" || fail "--keep-private-optim with --centralized: $(cat "$tmp/err")"
"$bin" train --data "$tmp/r.tsv" --partition iid:100 --rounds 1 2>"$tmp/err"; rc=$?
[ $rc -eq 1 ] && grep -q "100 silos for 60 users" "$tmp/err" || fail "too many silos: $rc $(cat "$tmp/err")"
set -e
# silos with kept optimizer state: train, checkpoint, resume
"$bin" train --data "$tmp/r.tsv" --model neumf --partition dirichlet:6:0.5 --keep-private-optim --rounds 2 \
    --threads 2 --quiet --out "$tmp/silo.fr" 2>"$tmp/err" || fail "silo training: $(cat "$tmp/err")"
"$bin" train --data "$tmp/r.tsv" --model neumf --partition dirichlet:6:0.5 --keep-private-optim --rounds 3 \
    --threads 2 --quiet --out "$tmp/silo.fr" --resume 2>"$tmp/err" || fail "silo resume: $(cat "$tmp/err")"
set +e
"$bin" train --data "$tmp/r.tsv" --model neumf --partition iid:6 --keep-private-optim --rounds 4 \
    --quiet --out "$tmp/silo.fr" --resume 2>"$tmp/err"; rc=$?
[ $rc -eq 1 ] && grep -q "another partition" "$tmp/err" || fail "resume with another partition: $rc $(cat "$tmp/err")"
set -e
"$bin" eval --model "$tmp/silo.fr" | grep -q "^hr@10" || fail "eval of a silo model"
# a federated model reloads its data: eval gives the last round's HR@10
"$bin" train --data "$tmp/r.tsv" --model gmf --rounds 2 --threads 2 --quiet --out "$tmp/fed.fr" \
    --metrics-out "$tmp/fm.jsonl" 2>"$tmp/err" || fail "federated training: $(cat "$tmp/err")"
"$bin" eval --model "$tmp/fed.fr" --json >"$tmp/fev" 2>"$tmp/err" || fail "eval of a federated model: $(cat "$tmp/err")"
h1=$(sed 's/.*"hr@10":\([0-9.]*\).*/\1/' "$tmp/fev"); h2=$(grep '^{"round"' "$tmp/fm.jsonl" | tail -1 | sed 's/.*"hr@10":\([0-9.]*\).*/\1/')
[ -n "$h1" ] && [ "$h1" = "$h2" ] || fail "eval hr@10 '$h1' differs from the last round's '$h2'"
"$bin" recommend --model "$tmp/fed.fr" --user "$user" -k 3 | grep -c '^ *[0-9]*\. item' | grep -q '^3$' \
    || fail "recommend from a federated model"
# eval reports the RMSE training reported last, whatever the rating scale (1-5, 0-1, 0.5-5),
# federated and centralized
awk -F'\t' 'BEGIN { OFS = "\t" } { $3 = $3 / 5; print }' "$tmp/r.tsv" >"$tmp/r01.tsv"
awk -F'\t' 'BEGIN { OFS = "\t" } { $3 = $3 - 0.5 * ($1 % 2); print }' "$tmp/r.tsv" >"$tmp/r05.tsv"
for scale in r r01 r05; do
    for mode in "--rounds 3" "--centralized --epochs 2"; do
        "$bin" train --data "$tmp/$scale.tsv" --model mf $mode --threads 2 --quiet --out "$tmp/s.fr" \
            --metrics-out "$tmp/s.jsonl" 2>"$tmp/err" || fail "train on $scale ($mode): $(cat "$tmp/err")"
        "$bin" eval --model "$tmp/s.fr" --json >"$tmp/sev" 2>"$tmp/err" || fail "eval on $scale: $(cat "$tmp/err")"
        r1=$(sed 's/.*"rmse":\([0-9.]*\).*/\1/' "$tmp/sev"); r2=$(grep -v '"summary"' "$tmp/s.jsonl" | tail -1 | sed 's/.*"rmse":\([0-9.]*\).*/\1/')
        [ -n "$r1" ] && [ "$r1" = "$r2" ] || fail "$scale ($mode): eval rmse '$r1' differs from training's last '$r2'"
    done
done
# expect RC REGEX CMD...: CMD exits RC and its stderr matches REGEX (grep -E)
expect() {
    local want=$1 re=$2; shift 2
    set +e; "$@" >"$tmp/out" 2>"$tmp/err"; local rc=$?; set -e
    [ $rc -eq "$want" ] || fail "$* should exit $want, got $rc: $(cat "$tmp/err")"
    grep -Eq -- "$re" "$tmp/err" || fail "$*: stderr should match '$re': $(cat "$tmp/err")"
}
# every numeric option is range-checked by the parser, one message form, exit 2:
# nothing wraps (2^32 + 1 was dim 1), a 0 given is not "the default", no fraction is cut
range="expected an integer in"
expect 2 "^fedrec train: --dim: $range 1\.\.4096, got '4294967297' \(out of range\)$" "$bin" train --dim 4294967297
expect 2 "^fedrec train: --batch: $range 1\.\.16777216, got '4294967297' \(out of range\)$" "$bin" train --batch 4294967297
expect 2 "^fedrec train: --local-epochs: $range 1\.\.1000, got '4294967297'" "$bin" train --local-epochs 4294967297
expect 2 "^fedrec train: --rounds: $range 1\.\.4294967295, got '0' \(out of range\)$" "$bin" train --rounds 0
expect 2 "^fedrec train: --dim: $range 1\.\.4096, got '0'" "$bin" train --dim 0
expect 2 "^fedrec train: --batch: $range 1\.\.16777216, got '0'" "$bin" train --centralized --batch 0
expect 2 "^fedrec train: --epochs: $range 1\.\.4294967295, got '0'" "$bin" train --centralized --epochs 0
expect 2 "^fedrec train: --neg: $range 1\.\.1000, got '0'" "$bin" train --neg 0
expect 2 "^fedrec train: --clients-per-round: expected a fraction in \(0, 1\) or a whole count in 1\.\.4294967295 \(0 = all\), got '1\.5' \(not a whole count\)$" \
    "$bin" train --clients-per-round 1.5
expect 2 "^fedrec train: --threads: $range 0\.\.[0-9]+ \(0 = one per CPU it may use; at most 4 per online core\), got '100000' \(out of range\)$" \
    "$bin" train --threads 100000
expect 2 "^fedrec eval: --threads: $range 0\.\.[0-9]+ .*got '100000'" "$bin" eval --model "$tmp/mf.fr" --threads 100000
expect 2 "^fedrec train: --lr: expected a number in \(0, 1e30\], got '1e400' \(out of range\)$" "$bin" train --lr 1e400
expect 2 "^fedrec train: --lr: expected a number in \(0, 1e30\], got 'abc'$" "$bin" train --lr abc
expect 2 "^fedrec train: --seed: expected an integer >= 0, got '18446744073709551616' \(out of range\)$" \
    "$bin" train --seed 18446744073709551616
expect 2 "^fedrec train: --time-limit: expected a number > 0, got 'inf' \(out of range\)$" "$bin" train --time-limit inf
expect 2 "^fedrec recommend: --user: $range 0\.\.2147483647 \(the data's user ids are integers\), got '9223372036854775808' \(out of range\)$" \
    "$bin" recommend --model "$tmp/mf.fr" --user 9223372036854775808
expect 2 "^fedrec recommend: -k: $range 1\.\.100000, got '0'" "$bin" recommend --model "$tmp/mf.fr" --user "$user" -k 0
expect 2 "^fedrec data split: --ratio: expected a number in \(0, 1\), got '0' \(out of range\)$" \
    "$bin" data split "$tmp/r.tsv" --ratio 0 --out "$tmp/split"
expect 2 "^fedrec data split: --temporal: expected a number in \(0, 1\), got '2'" "$bin" data split "$tmp/r.tsv" --temporal 2 --out "$tmp/split"
expect 2 "^fedrec data generate: --users: $range 1\.\.2147483647, got '0'" "$bin" data generate --users 0 --out "$tmp/g.tsv"
expect 2 "^fedrec data generate: --dim: $range 1\.\.1024, got '2000'" "$bin" data generate --dim 2000 --out "$tmp/g.tsv"
expect 2 "^fedrec data generate: --noise: expected a number in \[0, 100\], got '-1'" "$bin" data generate --noise -1 --out "$tmp/g.tsv"
# a config the library refuses is a usage error too, with the library's reason
expect 2 "^fedrec data generate: .*100 interactions but only 3 users x 3 items" \
    "$bin" data generate --users 3 --items 3 --interactions 100 --out "$tmp/g.tsv"
"$bin" train --help >"$tmp/help" || fail "train --help" # a file: grep -q may close a pipe before the help is written
grep -q -- "--threads .*0\.\.[0-9]*, 0 = one per CPU it may use; at most 4 per online core" "$tmp/help" || fail "--threads help states the cap"
# every write is checked: a full device is a failure naming what could not be written
nospace="writing to standard output failed: No space left on device$"
expect 1 "^fedrec data info: $nospace" sh -c "\"\$0\" data info \"\$1\" >/dev/full" "$bin" "$tmp/r.tsv"
expect 1 "^fedrec data info: $nospace" sh -c "\"\$0\" data info --json \"\$1\" >/dev/full" "$bin" "$tmp/r.tsv"
expect 1 "^fedrec data split: $nospace" sh -c "\"\$0\" data split \"\$1\" --loo --out \"\$1.split\" >/dev/full" "$bin" "$tmp/r.tsv"
expect 1 "^fedrec data generate: $nospace" sh -c "\"\$0\" data generate --users 9 --items 9 --interactions 20 --out \"\$1\" >/dev/full" "$bin" "$tmp/g.tsv"
expect 1 "^fedrec eval: $nospace" sh -c "\"\$0\" eval --model \"\$1\" >/dev/full" "$bin" "$tmp/mf.fr"
expect 1 "^fedrec eval: $nospace" sh -c "\"\$0\" eval --json --model \"\$1\" >/dev/full" "$bin" "$tmp/mf.fr"
expect 1 "^fedrec recommend: $nospace" sh -c "\"\$0\" recommend --model \"\$1\" --user \"\$2\" >/dev/full" "$bin" "$tmp/mf.fr" "$user"
expect 1 "^fedrec train: $nospace" sh -c "\"\$0\" train --centralized --data \"\$1\" --epochs 1 >/dev/full" "$bin" "$tmp/r.tsv"
expect 1 "^fedrec train: --metrics-out: writing '/dev/full' failed: No space left on device$" \
    "$bin" train --data "$tmp/r.tsv" --rounds 1 --quiet --metrics-out /dev/full
# strings in JSON are escaped: a file named with a quote and a backslash
q="$tmp/a\"b\\c.tsv"
cp "$tmp/r.tsv" "$q"
"$bin" data info --json "$q" >"$tmp/info.json" || fail "data info --json of a file named with a quote"
grep -qF '{"file":"'"$tmp"'/a\"b\\c.tsv","format":' "$tmp/info.json" || fail "data info --json escapes: $(cat "$tmp/info.json")"
if command -v python3 >/dev/null; then python3 -m json.tool "$tmp/info.json" >/dev/null || fail "data info --json is not JSON"; fi
l1="$tmp/$(printf 'caf\351')"                       # a Latin-1 name: not UTF-8
cp "$tmp/r.tsv" "$l1"
"$bin" data info --json "$l1" >"$tmp/info.json" || fail "data info --json of a Latin-1 file name"
grep -qF '/caf\u00e9","format":' "$tmp/info.json" || fail "data info --json: a byte that is not UTF-8 is \u00XX: $(cat "$tmp/info.json")"
# resuming a finished run says so (and exits 0: the checkpoint holds what was asked)
expect 0 "^fedrec train: the checkpoint is at round 3, --rounds 2 is already done; nothing was trained" \
    "$bin" train --data "$tmp/r.tsv" --model neumf --partition dirichlet:6:0.5 --keep-private-optim --rounds 2 \
    --quiet --out "$tmp/silo.fr" --resume
# outputs are checked before the data is loaded and training starts
expect 1 "^fedrec train: --out: cannot write '$tmp/nodir/m\.fr': directory '$tmp/nodir': No such file or directory$" \
    "$bin" train --data "$tmp/r.tsv" --rounds 2000 --out "$tmp/nodir/m.fr"
grep -q "federated" "$tmp/err" && fail "--out in a missing directory was found after training began"
mkdir "$tmp/d.fr.ckpt"
expect 1 "^fedrec train: the checkpoint: cannot write '$tmp/d\.fr\.ckpt': it is a directory$" \
    "$bin" train --data "$tmp/r.tsv" --rounds 2000 --out "$tmp/d.fr"
expect 1 "^fedrec train: --metrics-out: cannot write '$tmp/nodir/m\.jsonl'" \
    "$bin" train --data "$tmp/r.tsv" --rounds 2000 --metrics-out "$tmp/nodir/m.jsonl"
# paths of any length: nothing cut, the reason kept
long="$tmp"; for i in 1 2 3 4 5 6; do long="$long/$(printf '%0200d' "$i")"; done
mkdir -p "$long"
expect 1 "^fedrec data info: FILE: cannot read '$long/x\.tsv': No such file or directory$" "$bin" data info "$long/x.tsv"
expect 1 "^fedrec eval: --model: cannot read '$long/x\.fr': No such file or directory$" "$bin" eval --model "$long/x.fr"
"$bin" train --data "$tmp/r.tsv" --rounds 1 --quiet --threads 2 --out "$long/m.fr" 2>"$tmp/err" || fail "train to a long path: $(cat "$tmp/err")"
[ -f "$long/m.fr.ckpt" ] || fail "the checkpoint beside a long --out is not $long/m.fr.ckpt"
# <out>.ckpt one byte past the system's limit (4095): refused before training, never cut to "<out>.ck"
deep="$tmp"; while [ ${#deep} -lt 3700 ]; do deep="$deep/$(printf '%0200d' 0)"; done
mkdir -p "$deep"
name=$(printf '%0*d' $((4091 - ${#deep} - 1)) 0)
expect 1 "^fedrec train: the checkpoint: cannot write '$deep/$name\.ckpt': File name too long$" \
    "$bin" train --data "$tmp/r.tsv" --rounds 2000 --quiet --out "$deep/$name"
# a model refuses other training data: the file changed since, or another file of the same shape
awk -F'\t' 'BEGIN { OFS = "\t" } NR == 1 { $3 = ($3 == 5 ? 4 : 5) } { print }' "$tmp/r.tsv" >"$tmp/r2.tsv"
"$bin" train --data "$tmp/r2.tsv" --model mf --rounds 2 --quiet --out "$tmp/fp.fr" 2>"$tmp/err" || fail "train for the fingerprint: $(cat "$tmp/err")"
"$bin" eval --model "$tmp/fp.fr" >/dev/null 2>"$tmp/err" || fail "eval on its own data: $(cat "$tmp/err")"
cp "$tmp/r.tsv" "$tmp/r2.tsv" # one rating differs now
set +e
"$bin" eval --model "$tmp/fp.fr" >/dev/null 2>"$tmp/err"; rc=$?
[ $rc -eq 1 ] && grep -q "model/data mismatch: the model was trained on" "$tmp/err" || fail "eval after the data changed: $rc $(cat "$tmp/err")"
"$bin" recommend --model "$tmp/fp.fr" --data "$tmp/r.tsv" --user "$user" >/dev/null 2>"$tmp/err"; rc=$?
[ $rc -eq 1 ] && grep -q "model/data mismatch" "$tmp/err" || fail "recommend --data OTHER: $rc $(cat "$tmp/err")"
set -e
# a split or a run whose users have fewer untouched items than the negatives asked says so
printf '1\t1\t5\t1\n1\t2\t3\t2\n1\t3\t4\t3\n2\t1\t4\t1\n2\t2\t2\t2\n2\t4\t1\t3\n3\t5\t5\t1\n3\t2\t2\t2\n' >"$tmp/five.tsv"
"$bin" data split "$tmp/five.tsv" --loo --negatives 99 --out "$tmp/five" >/dev/null 2>"$tmp/err" || fail "split of five items: $(cat "$tmp/err")"
grep -q "note: 3 test users have fewer than 99 items they never touched; they got all of theirs, as few as 2" "$tmp/err" \
    || fail "short negatives note of data split: $(cat "$tmp/err")"
"$bin" train --data "$tmp/five.tsv" --model bpr --rounds 1 >/dev/null 2>"$tmp/err" || fail "train on five items: $(cat "$tmp/err")"
grep -q "note: 3 test users have fewer than 99 items" "$tmp/err" || fail "short negatives note of train: $(cat "$tmp/err")"
# progress: on a pipe the first and the last round (at most a line every 5 s between),
# on a terminal every round, with --quiet none
"$bin" train --data "$tmp/r.tsv" --model gmf --rounds 3 --threads 2 >/dev/null 2>"$tmp/err" || fail "progress run: $(cat "$tmp/err")"
[ "$(grep -c '^round [0-9]/3 ' "$tmp/err")" -eq 2 ] && grep -q '^round 1/3 ' "$tmp/err" && grep -q '^round 3/3 ' "$tmp/err" \
    || fail "progress on a pipe should show rounds 1 and 3: $(cat "$tmp/err")"
FEDREC_PROGRESS_SECONDS=0 "$bin" train --data "$tmp/r.tsv" --model gmf --rounds 3 --threads 2 2>&1 >/dev/null \
    | grep -c '^round [0-9]/3 ' | grep -q '^3$' || fail "progress with a 0 s interval should show every round"
"$bin" train --data "$tmp/r.tsv" --model mf --centralized --epochs 4 --threads 2 >"$tmp/out" 2>/dev/null || fail "progress (epochs)"
[ "$(grep -c '^epoch   [0-9]/4 ' "$tmp/out")" -eq 2 ] && grep -q '^epoch   4/4 ' "$tmp/out" || fail "epochs on a pipe: $(cat "$tmp/out")"
if command -v script >/dev/null && script -qec true /dev/null >/dev/null 2>&1; then # a pseudo-terminal
    script -qec "\"$bin\" train --data \"$tmp/r.tsv\" --model gmf --rounds 3 --threads 2" /dev/null >"$tmp/out" 2>&1 || fail "train under script"
    [ "$(grep -c 'round [0-9]/3 ' "$tmp/out")" -eq 3 ] || fail "progress on a terminal should show every round: $(cat "$tmp/out")"
fi
"$bin" train --data "$tmp/r.tsv" --model gmf --rounds 3 --threads 2 --quiet >"$tmp/out" 2>&1 || fail "quiet run"
grep -q '^round [0-9]/3 ' "$tmp/out" && fail "--quiet printed progress: $(cat "$tmp/out")"
# an option that does not apply to the chosen mode, strategy or model is refused, saying so
for o in "--rounds 3" "--clients-per-round 5" "--local-epochs 2" "--strategy fedprox" "--item-agg sum" \
         "--server-lr 2" "--server-momentum 0.5" "--mu 0.1" "--tau 0.1" "--beta1 0.5" "--beta2 0.5" \
         "--availability 0.5" "--min-results 2" "--partition iid:2"; do
    expect 2 "^fedrec train: ${o%% *} applies to federated training, not --centralized$" "$bin" train --centralized $o
done
expect 2 "^fedrec train: --checkpoint-every applies to federated training; centralized runs do not checkpoint$" \
    "$bin" train --centralized --checkpoint-every 2
expect 2 "^fedrec train: --epochs applies to --centralized training" "$bin" train --epochs 3
expect 2 "^fedrec train: --mu applies to --strategy fedprox, not fedavg$" "$bin" train --model neumf --mu 0.1
expect 2 "^fedrec train: --mu applies to --strategy fedprox, not fedadam$" "$bin" train --mu 0.1
expect 2 "^fedrec train: --sep says how to read a --data file; without --data, train uses the built-in synthetic data$" "$bin" train --sep tab
expect 2 "^fedrec train: --server-momentum applies to --strategy fedavgm, not fedadam$" "$bin" train --strategy fedadam --server-momentum 0.5
expect 2 "^fedrec train: --tau and --beta1 apply to --strategy fedadam, fedyogi or fedadagrad, not fedprox$" "$bin" train --strategy fedprox --tau 0.1
expect 2 "^fedrec train: --beta2 applies to --strategy fedadam or fedyogi, not fedadagrad$" "$bin" train --strategy fedadagrad --beta2 0.9
expect 2 "^fedrec train: --neg applies to ranking models \(sampled negatives\); mf learns from the ratings alone$" "$bin" train --model mf --neg 3
expect 2 "^fedrec train: --neg applies to ranking models" "$bin" train --model mf --centralized --neg 3
expect 2 "^fedrec train: --negatives applies to ranking models; mf is evaluated by RMSE" "$bin" train --model mf --negatives "$tmp/r.tsv"
expect 2 "^fedrec train: --split applies to one ratings file; with --test the test set is given$" \
    "$bin" train --data "$tmp/r.tsv" --test "$tmp/r.tsv" --split loo
expect 2 "^fedrec train: --split applies to one ratings file; .* is a directory in NCF layout" "$bin" train --data "$tmp/five" --split loo
"$bin" train --data "$tmp/r.tsv" --model gmf --strategy fedprox --mu 0.1 --rounds 1 --quiet --threads 2 || fail "--mu with fedprox"
# --help shows each model's defaults, as the runs use them (read from the presets)
"$bin" train --help >"$tmp/help" || fail "train --help"
grep -q "default per model" "$tmp/help" && fail "--help still says 'default per model'"
for m in mf bpr gmf neumf; do
    "$bin" train --centralized --model $m --data "$tmp/r.tsv" --threads 2 >"$tmp/out" 2>/dev/null || fail "centralized $m"
    # "...; adam lr 0.001, batch 256, 4 negatives per positive, 20 epochs"
    want=$(sed -n 's/^training .*; \([a-z]*\) lr \([0-9.e-]*\), batch \([0-9]*\), .* \([0-9]*\) epochs$/\4 \3 \1 \2/p' "$tmp/out")
    got=$(awk -v m=$m '$1 == "centralized" { c = 1 } c && $1 == m { print $3, $4, $8, $9 }' "$tmp/help")
    [ -n "$want" ] && [ "$want" = "$got" ] || fail "--help's centralized $m row '$got' is not what a run uses: '$want'"
    "$bin" train --model $m --data "$tmp/r.tsv" --rounds 1 --threads 2 >/dev/null 2>"$tmp/err" || fail "federated $m"
    # "..., E=1 B=32 adam lr 0.006, item rows: ..."
    want=$(sed -n 's/^fedrec train: federated .* E=\([0-9]*\) B=\([0-9]*\) \([a-z]*\) lr \([0-9.e-]*\), .*/\1 \2 \3 \4/p' "$tmp/err")
    got=$(awk -v m=$m '$1 == "federated" { f = 1 } $1 == "centralized" { f = 0 } f && $1 == m { print $4, $5, $9, $10 }' "$tmp/help")
    [ -n "$want" ] && [ "$want" = "$got" ] || fail "--help's federated $m row '$got' is not what a run uses: '$want'"
done
"$bin" train --preset textbook --help >"$tmp/help" && grep -q "^defaults of the textbook preset" "$tmp/help" || fail "--preset textbook --help"
expect 2 "^fedrec train: --dim does not size any part of mlp" "$bin" train --model mlp --dim 4
expect 2 "^fedrec train: --bias-l2 applies to models with user and item biases; neumf has none$" "$bin" train --model neumf --bias-l2 0.1
expect 2 "^fedrec train: --bias-l2 applies to models with user and item biases; bpr has none$" "$bin" train --model bpr --centralized --bias-l2 0.1
# eval warns when the test interactions were trained on (the model file records its
# training pairs), and not on the held-out test set
"$bin" data split "$tmp/r.tsv" --loo --negatives 20 --out "$tmp/sp" >/dev/null 2>&1 || fail "split for the leak check"
"$bin" train --data "$tmp/sp" --model gmf --rounds 2 --threads 2 --quiet --out "$tmp/leak.fr" 2>"$tmp/err" || fail "train on a split: $(cat "$tmp/err")"
expect 0 "^fedrec eval: warning: 100% of the test interactions \(1440 of 1440\) were in the model's training data: the metrics are not a held-out evaluation$" \
    "$bin" eval --model "$tmp/leak.fr" --data "$tmp/sp/train.rating" --test "$tmp/sp/train.rating"
"$bin" eval --model "$tmp/leak.fr" >/dev/null 2>"$tmp/err" || fail "eval on the held-out test: $(cat "$tmp/err")"
[ -s "$tmp/err" ] && fail "eval on the held-out test set warned: $(cat "$tmp/err")"
"$bin" eval --model "$tmp/leak.fr" --data "$tmp/sp/train.rating" --test "$tmp/sp/test.rating" --negatives "$tmp/sp/test.negative" \
    >/dev/null 2>"$tmp/err" || fail "eval on the held-out test, given: $(cat "$tmp/err")"
[ -s "$tmp/err" ] && fail "eval on the given held-out test set warned: $(cat "$tmp/err")"
# a split without evaluation negatives is ranked on the full catalogue; the labels read
# "hr@5_full", not "hr@5 _full"
"$bin" data split "$tmp/r.tsv" --loo --negatives 0 --out "$tmp/fullsp" >/dev/null 2>&1 || fail "split without negatives"
"$bin" train --data "$tmp/fullsp" --model bpr --centralized --epochs 1 --threads 2 --quiet --out "$tmp/full.fr" >/dev/null 2>&1 \
    || fail "train on the split without negatives"
"$bin" eval --model "$tmp/full.fr" >"$tmp/out" 2>&1 || fail "eval on the full catalogue: $(cat "$tmp/out")"
grep -q "^hr@5_full   [0-9.]*  ndcg@5_full   [0-9.]*  recall@5_full   [0-9.]*$" "$tmp/out" \
    || fail "full-catalogue labels: $(cat "$tmp/out")"
# secure aggregation: the same model, bit for bit, as the plain rounds; refused centralized
"$bin" train --model mf --data "$tmp/r.tsv" --rounds 2 --clients-per-round 12 --quiet --out "$tmp/plain.fr" >/dev/null \
    || fail "train plain for --secagg"
"$bin" train --model mf --data "$tmp/r.tsv" --rounds 2 --clients-per-round 12 --quiet --secagg --out "$tmp/sa.fr" >/dev/null \
    || fail "train --secagg"
cmp -s "$tmp/plain.fr" "$tmp/sa.fr" || fail "--secagg changed the model"
set +e; "$bin" train --centralized --secagg --data "$tmp/r.tsv" 2>"$tmp/err"; rc=$?; set -e
[ $rc -eq 2 ] && grep -q "secagg applies to federated training" "$tmp/err" || fail "--secagg --centralized: $(cat "$tmp/err")"
echo "cli_smoke: passed"
