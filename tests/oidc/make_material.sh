#!/usr/bin/env bash
# Key and certificate material for the real-provider tests, made fresh into DIR with openssl:
# a test CA and a server certificate for 127.0.0.1 (the provider's and the resource server's
# TLS listeners, trusted by cloudauth through ca_file); client keys of every kind cloudauth
# signs with (RSA in PKCS#8 and PKCS#1, EC P-256 in PKCS#8 and SEC1, P-384, Ed25519); a
# certificate over the RSA key (private_key_jwt's x5t#S256); a CA-issued client certificate
# (tls_client_auth), a self-signed one (self_signed_tls_client_auth); a pinned DPoP key; and
# a key no client registered (the rejected case). Nothing here outlives the test run.
set -euo pipefail
dir=${1:?usage: make_material.sh DIR}
mkdir -p "$dir"
cd "$dir"
umask 077
q() { "$@" 2>/dev/null >/dev/null || { echo "make_material: failed: $*" >&2; exit 1; }; }
days=2

# The CA and the server certificate (rustls wants a v3 CA and a SAN on the leaf).
q openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem \
  -days $days -subj "/CN=cloudauth oidc test CA" \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
issue() { # issue NAME SUBJECT EXTENSIONS: NAME.key (P-256) and NAME.pem signed by the CA
  q openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$1.key" -out "$1.csr" -subj "$2"
  printf '%s\n' "$3" >"$1.ext"
  q openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -set_serial "0x$(openssl rand -hex 8)" \
    -days $days -extfile "$1.ext" -out "$1.pem"
  rm -f "$1.csr" "$1.ext"
}
issue server "/CN=127.0.0.1" "$(printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE')"
issue client_tls "/CN=cloudauth-tls-client" "$(printf 'extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE')"

# Client assertion keys.
q openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out rsa.key
q openssl genrsa -traditional -out rsa_trad.key 2048
q openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ec256.key
q openssl ecparam -name prime256v1 -genkey -noout -out ec256_sec1.key
q openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out ec384.key
q openssl genpkey -algorithm ED25519 -out ed25519.key
q openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out wrong_rsa.key
# A certificate credential (Entra ID's kind): the RSA key's self-signed certificate.
q openssl req -x509 -key rsa.key -out rsa.pem -days $days -subj "/CN=cloudauth-assertion"
# self_signed_tls_client_auth: a self-signed client certificate registered by its thumbprint.
q openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout client_self.key \
  -out client_self.pem -days $days -subj "/CN=cloudauth-self-signed" -addext extendedKeyUsage=clientAuth
# A pinned DPoP key (dpop_key_file), so shared caches may hold its tokens.
q openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out dpop.key
# An encrypted key: cloudauth must refuse it by name, never ask for or guess a passphrase.
q openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -aes-256-cbc -pass pass:not-a-secret -out encrypted.key
# Workload identity: the test's "platform issuer" (signs federated assertions and subject
# tokens) and a service account's key (the test writes it into a Google-format key file).
q openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out platform.key
q openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out sa.key
rm -f ./*.srl
