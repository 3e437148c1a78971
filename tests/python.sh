#!/usr/bin/env bash
# The Python package (python/): builds it against the already built libfedrec_embed (no
# second build of the library) into OUT, and runs its pytest suite against the fedrec
# program. Exits 77 (ctest: skipped) with the reason when python3 or one of the Debian
# packages it needs (python3-cffi, python3-numpy, python3-pandas, python3-pytest,
# python3-setuptools, python3-dev) is missing.
# usage: tests/python.sh LIBFEDREC_EMBED FEDREC_BIN OUT
set -euo pipefail
lib=$1 bin=$2 out=$3
src=$(cd "$(dirname "$0")/.." && pwd)
# Debian's interpreter (its python3-* packages), unless FEDREC_PYTHON names another
py=${FEDREC_PYTHON:-/usr/bin/python3}
[ -x "$py" ] || py=$(command -v python3 || true)
if [ -z "$py" ]; then echo "python: SKIPPED: no python3 (scripts/install-deps.sh installs it)"; exit 77; fi
if ! missing=$("$py" -c '
import importlib.util, sys
need = ["cffi", "numpy", "pandas", "pytest", "setuptools"]
gone = [m for m in need if importlib.util.find_spec(m) is None]
import sysconfig, os
if not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")): gone.append("Python.h (python3-dev)")
print(" ".join(gone)); sys.exit(1 if gone else 0)' 2>&1); then
    echo "python: SKIPPED: $py lacks $missing (scripts/install-deps.sh installs python3-cffi python3-numpy python3-pandas python3-pytest python3-setuptools python3-dev)"
    exit 77
fi
rm -rf "$out"
mkdir -p "$out"
(cd "$src/python" && FEDREC_EMBED_LIB="$lib" "$py" setup.py -q build --build-base "$out/build" --build-lib "$out/lib" \
    >"$out/build.log" 2>&1) || { cat "$out/build.log"; echo "python: building the package failed"; exit 1; }
rm -rf "$src/python/fedrec.egg-info"
cd "$out"
PYTHONPATH="$out/lib" FEDREC_BIN="$bin" "$py" -m pytest -q -p no:cacheprovider "$src/python/tests"
