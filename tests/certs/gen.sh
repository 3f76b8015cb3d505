#!/usr/bin/env bash
# Generates the throw-away test PKI into OUTDIR (see README.md for every identity).
# ECDSA P-256 + SHA-256 unless the name says rsa. Idempotent: an OUTDIR that already holds a
# complete set (the .complete stamp) is left alone. No network; about 1 s.
# Usage: tests/certs/gen.sh OUTDIR
set -euo pipefail
OUT=${1:?usage: gen.sh OUTDIR}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
if [[ -f "$OUT/.complete" ]]; then exit 0; fi
cd "$OUT"
umask 077
export OPENSSL_CONF=/dev/null   # no distro defaults leaking in
DAYS=30

ec_key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -pkeyopt ec_param_enc:named_curve -out "$1" 2>/dev/null; }
rsa_key() { openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$1" 2>/dev/null; }

# ca NAME CN
ca() {
  ec_key "$1.key"
  openssl req -x509 -new -key "$1.key" -sha256 -days $DAYS -subj "/O=fipsproxy tests/CN=$2" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -addext "subjectKeyIdentifier=hash" -out "$1.pem"
}

# leaf NAME KEYTYPE(ec|rsa) ISSUER CN EKU SAN
leaf() {
  local name=$1 kt=$2 issuer=$3 cn=$4 eku=$5 san=$6
  if [[ $kt == rsa ]]; then rsa_key "$name.key"; else ec_key "$name.key"; fi
  cat > "$name.ext" <<X
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature$([[ $kt == rsa ]] && echo ",keyEncipherment")
extendedKeyUsage=$eku
subjectAltName=$san
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
X
  openssl req -new -key "$name.key" -subj "/O=fipsproxy tests/CN=$cn" -out "$name.csr"
  openssl x509 -req -in "$name.csr" -CA "$issuer.pem" -CAkey "$issuer.key" -set_serial "0x$(openssl rand -hex 8)" \
    -days $DAYS -sha256 -extfile "$name.ext" -out "$name.pem" 2>/dev/null
  rm -f "$name.csr" "$name.ext"
}

SERVER_SAN="DNS:server.example.org,DNS:localhost,IP:127.0.0.1,IP:::1,URI:spiffe://example.org/ns/default/sa/server"
CLIENT_SAN="URI:spiffe://example.org/ns/default/sa/client,DNS:client.example.org"

ca ca "fipsproxy test CA"
ca other-ca "fipsproxy other CA"
leaf server ec ca server.example.org "serverAuth,clientAuth" "$SERVER_SAN"
leaf client ec ca client.example.org "clientAuth" "$CLIENT_SAN"
leaf client2 ec ca intruder "clientAuth" "URI:spiffe://example.org/ns/other/sa/intruder"
leaf other-client ec other-ca client.example.org "clientAuth" "$CLIENT_SAN"
leaf wrong-server ec ca wrong.example.org "serverAuth,clientAuth" \
  "DNS:wrong.example.org,IP:127.0.0.1,IP:::1,URI:spiffe://example.org/ns/default/sa/wrong"
leaf server-rsa rsa ca server.example.org "serverAuth,clientAuth" "$SERVER_SAN"
leaf client-rsa rsa ca client.example.org "clientAuth" "$CLIENT_SAN"

# expired-client: same identity as client, validity entirely in the past. `openssl x509 -req`
# in OpenSSL 3.0 cannot set notBefore, so sign it with a minimal `openssl ca` setup.
ec_key expired-client.key
openssl req -new -key expired-client.key -subj "/O=fipsproxy tests/CN=client.example.org" -out expired-client.csr
mkdir -p .ca && : > .ca/index.txt && openssl rand -hex 8 > .ca/serial
cat > .ca/ca.cnf <<X
[ca]
default_ca = tca
[tca]
dir = $OUT/.ca
database = \$dir/index.txt
serial = \$dir/serial
new_certs_dir = \$dir
certificate = $OUT/ca.pem
private_key = $OUT/ca.key
default_md = sha256
policy = pol
copy_extensions = none
unique_subject = no
[pol]
commonName = supplied
organizationName = optional
[ext]
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth
subjectAltName=$CLIENT_SAN
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
X
openssl ca -batch -config .ca/ca.cnf -extensions ext -startdate 20200101000000Z -enddate 20200201000000Z \
  -notext -in expired-client.csr -out expired-client.pem 2>/dev/null
rm -rf .ca expired-client.csr

# Convenience bundles (leaf + CA) and a combined key+cert for tools that want one file.
cat server.pem ca.pem > server-chain.pem
cat client.pem ca.pem > client-chain.pem
cat ca.pem other-ca.pem > both-ca.pem
rm -f ./*.srl
chmod 600 ./*.key
chmod 644 ./*.pem
: > .complete
