# Sourced by bench/run_hybrid.sh, run_fm.sh and hybrid_cpu.sh as `. "$here/hybrid_env.sh" "$@"`
# (here: the bench directory): their common start. Sets build, data (the arguments, by
# default build and ../shared/data), venv (FEDREC_REF_VENV, default ~/.cache/fedrec-ref-venv),
# bin, loo (the ml-100k-loo split), tmp (removed on exit) and F, the fedrec options of the
# feature set bench/hybrid_features.py writes from ml-100k's u.user and u.item into
# $tmp/feat. Without the reference data it says so and exits 0; without a built fedrec, 1.
bench_name=$(basename "$0" .sh)
build=${1:-$here/../build}
data=${2:-$here/../../shared/data}
venv=${FEDREC_REF_VENV:-$HOME/.cache/fedrec-ref-venv}
bin=$build/fedrec
loo=$data/ml-100k-loo
[ -d "$loo" ] && [ -d "$data/ml-100k" ] || { echo "$bench_name: $loo or $data/ml-100k is missing: nothing to compare"; exit 0; }
[ -x "$bin" ] || { echo "$bench_name: $bin is not built"; exit 1; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
python3 "$here/hybrid_features.py" "$data/ml-100k" "$tmp/feat"
F=(--user-features "$tmp/feat/users.tsv" --item-features "$tmp/feat/items.tsv")
