# Sourced by bench/run_lightgcn.sh and bench/lightgcn_full_speed.sh (from the repository's
# root): the split both read, the fedrec binary and RecBole's venv, each overridable, and a
# clear stop when the reference data is absent.
DATA=${DATA:-$(cd .. && pwd)/shared/data/ml-100k-loo}
FEDREC=${FEDREC:-build/fedrec}
VENV=${VENV:-$HOME/.cache/fedrec-ref-venv}
if [[ ! -f $DATA/train.rating ]]; then
  echo "no ml-100k-loo at $DATA (../shared/data beside the repository, or DATA=): nothing to compare" >&2
  exit 1
fi
