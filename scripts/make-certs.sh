#!/usr/bin/env bash
# Makes throw-away certificates for fedrec's networked runtime (tests, demos, a lab):
#   scripts/make-certs.sh [--force] DIR [HOST...]
# writes into DIR (created if missing):
#   ca.crt ca.key          a self-signed CA (basicConstraints CA:TRUE, keyCertSign)
#   server.crt server.key  signed by the CA, for localhost, 127.0.0.1, ::1 and each HOST
#                          (subjectAltName; an address is both an IP and a DNS entry)
#   client.crt client.key  signed by the CA, for mutual TLS (--client-cert/--client-key)
# Keys are EC P-256 (fast to make and to handshake), PKCS#8 PEM, mode 0600; the
# certificates are valid for 30 days. The format is what both TLS engines accept (fedrec's
# OpenSSL one, and nng's mbedTLS 2.28 with FEDREC_TLS_ENGINE=nng): X.509 v3, SAN for the names, key usage digitalSignature, extended key usage
# serverAuth / clientAuth. Existing files are never overwritten without --force.
# Only openssl is used. These are for testing: keep a real CA's key off the server.
set -euo pipefail

usage() { echo "usage: $0 [--force] DIR [HOST...]" >&2; exit 2; }
force=0
if [[ "${1:-}" == "--force" ]]; then force=1; shift; fi
[[ $# -ge 1 ]] || usage
dir=$1; shift
[[ "$dir" != -* ]] || usage
command -v openssl >/dev/null || { echo "make-certs: openssl not found (scripts/install-deps.sh installs it)" >&2; exit 1; }

files=(ca.crt ca.key server.crt server.key client.crt client.key)
mkdir -p "$dir"
if [[ $force -eq 0 ]]; then
  for f in "${files[@]}"; do
    if [[ -e "$dir/$f" ]]; then
      echo "make-certs: $dir/$f exists; not overwriting (use --force)" >&2
      exit 1
    fi
  done
fi

# subjectAltName: the loopback names plus the HOSTs (IPv4/IPv6 literals as IP entries).
# An address is listed twice: as an IP entry (what OpenSSL, fedrec's engine, and browsers
# check) and as a DNS entry with the same text, because mbedTLS 2.28 (nng's own engine,
# FEDREC_TLS_ENGINE=nng) compares the server name only with DNS entries, so
# tls+tcp://127.0.0.1:PORT needs DNS:127.0.0.1 there.
san="DNS:localhost,IP:127.0.0.1,DNS:127.0.0.1,IP:::1,DNS:::1"
cn_server=localhost
for h in "$@"; do
  if [[ "$h" =~ ^[0-9.]+$ || "$h" == *:* ]]; then
    san+=",IP:$h,DNS:$h"
  elif [[ "$h" =~ ^[A-Za-z0-9*]([A-Za-z0-9.*-]*[A-Za-z0-9])?$ ]]; then
    san+=",DNS:$h"
  else
    echo "make-certs: '$h' is neither a host name nor an IP address" >&2
    exit 2
  fi
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/make-certs.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
umask 077 # keys are created private; certificates are made 0644 below

newkey() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

# A config of our own, so the system's openssl.cnf adds nothing.
cat >"$tmp/req.cnf" <<'EOF'
[req]
distinguished_name = dn
prompt = no
x509_extensions = v3_ca
[dn]
CN = fedrec throw-away CA
[v3_ca]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
EOF

# The CA.
newkey "$tmp/ca.key"
openssl req -config "$tmp/req.cnf" -new -x509 -key "$tmp/ca.key" -sha256 -days 30 -out "$tmp/ca.crt"

# A leaf signed by the CA: sign NAME CN EXTFILE.
sign() {
  newkey "$tmp/$1.key"
  openssl req -config "$tmp/req.cnf" -new -key "$tmp/$1.key" -subj "/CN=$2" -out "$tmp/$1.csr"
  openssl x509 -req -in "$tmp/$1.csr" -CA "$tmp/ca.crt" -CAkey "$tmp/ca.key" -CAcreateserial \
    -CAserial "$tmp/ca.srl" -sha256 -days 30 -extfile "$3" -out "$tmp/$1.crt" 2>"$tmp/err" ||
    { cat "$tmp/err" >&2; exit 1; }
}
cat >"$tmp/server.ext" <<EOF
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = $san
authorityKeyIdentifier = keyid
EOF
cat >"$tmp/client.ext" <<'EOF'
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
authorityKeyIdentifier = keyid
EOF
sign server "$cn_server" "$tmp/server.ext"
sign client "fedrec client" "$tmp/client.ext"

# Check the chain before handing it over.
for leaf in server client; do
  openssl verify -CAfile "$tmp/ca.crt" "$tmp/$leaf.crt" >/dev/null ||
    { echo "make-certs: the $leaf certificate does not verify against the CA" >&2; exit 1; }
done

for f in "${files[@]}"; do
  case $f in *.key) chmod 600 "$tmp/$f" ;; *) chmod 644 "$tmp/$f" ;; esac
  mv -f "$tmp/$f" "$dir/$f"
  echo "make-certs: wrote $dir/$f"
done
echo "make-certs: server names: $san"
