#!/usr/bin/env bash
# make-certs.sh DIR NAME...: throwaway certificates for the example and the tests.
# Creates DIR/ca.pem and DIR/ca.key (a new CA, unless DIR already has one), then for each NAME a
# key and a certificate signed by that CA: DIR/NAME.key, DIR/NAME.pem, valid for localhost and
# 127.0.0.1, for both server and client authentication (a node uses one certificate for both ends
# of a peer connection). EC P-256, 30 days. Never use these outside a throwaway cluster.
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 DIR NAME..." >&2; exit 2; }
dir=$1
shift
mkdir -p "$dir"
umask 077
# openssl's progress output only when it fails.
quiet() {
    local output
    output=$("$@" 2>&1) || { echo "$output" >&2; return 1; }
}
if [ ! -f "$dir/ca.pem" ] || [ ! -f "$dir/ca.key" ]; then
    # A name of its own per CA (CN is at most 64 characters), so two throwaway CAs never look alike.
    quiet openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
        -keyout "$dir/ca.key" -out "$dir/ca.pem" -subj "/CN=raftgate throwaway CA $(openssl rand -hex 8)" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
fi
extensions=$(mktemp)
trap 'rm -f "$extensions"' EXIT
cat >"$extensions" <<EXT
basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=DNS:localhost,IP:127.0.0.1
EXT
for name in "$@"; do
    quiet openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout "$dir/$name.key" -out "$dir/$name.csr" -subj "/CN=$name"
    quiet openssl x509 -req -in "$dir/$name.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial \
        -days 30 -extfile "$extensions" -out "$dir/$name.pem"
    rm -f "$dir/$name.csr"
done
