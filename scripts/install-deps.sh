#!/usr/bin/env bash
# Installs every build and test dependency of fedrec from Debian 12's packages.
# Idempotent: packages already present are skipped, and the script is quiet then.
# Usage: scripts/install-deps.sh [--bench]   (--bench adds PyTorch for the reference benchmarks)
set -euo pipefail

pkgs=(
  build-essential cmake pkg-config
  libsodium-dev libgfshare-dev
  libnng-dev libmbedtls-dev libssl-dev openssl
  libopenblas-dev
  libcriterion-dev
  libcjson-dev
  clang-14 libclang-rt-14-dev
  libopenmpi-dev openmpi-bin
  # the Python package (python/): built with cffi and setuptools, tested with pytest
  python3 python3-dev python3-venv python3-pip python3-setuptools python3-cffi
  python3-numpy python3-pandas python3-pytest python3-matplotlib
)
if [[ "${1:-}" == "--bench" ]]; then
  pkgs+=(python3-torch)
fi

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

sudo=""
if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
