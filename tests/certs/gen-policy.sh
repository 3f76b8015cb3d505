#!/usr/bin/env bash
# Extra identities for the FIPS policy matrix (FIPS-POLICY §11 T21, O6, O7, C1, C3), generated at
# test time next to the base PKI (runs tests/certs/gen.sh first if OUTDIR has none). Every leaf
# has EKU serverAuth,clientAuth (unless the name says otherwise) and SANs for both roles, so the
# same file can be a listener cert, an upstream `openssl s_server` cert or an `s_client -cert`.
# Idempotent (OUTDIR/.complete-policy). No network. The RSA-8192 key dominates the run time
# (a few seconds), so keys are generated in parallel.
# Usage: tests/certs/gen-policy.sh OUTDIR
set -euo pipefail
OUT=${1:?usage: gen-policy.sh OUTDIR}
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
"$HERE/gen.sh" "$OUT"
if [[ -f "$OUT/.complete-policy" ]]; then exit 0; fi
cd "$OUT"
umask 077
export OPENSSL_CONF=/dev/null
DAYS=30
SAN="DNS:server.example.org,DNS:localhost,IP:127.0.0.1,IP:::1,URI:spiffe://example.org/ns/default/sa/client,DNS:client.example.org"

# key NAME SPEC: rsaBITS | ec:CURVE | ed25519
key() {
  case $2 in
    rsa*) openssl genpkey -algorithm RSA -pkeyopt "rsa_keygen_bits:${2#rsa}" -out "$1.key" 2>/dev/null ;;
    ec:*) openssl genpkey -algorithm EC -pkeyopt "ec_paramgen_curve:${2#ec:}" -pkeyopt ec_param_enc:named_curve \
            -out "$1.key" 2>/dev/null ;;
    ed25519) openssl genpkey -algorithm ED25519 -out "$1.key" 2>/dev/null ;;
  esac
}

# sign NAME ISSUER MD EXTFILE|"" : CSR from NAME.key, signed by ISSUER
sign() {
  local name=$1 issuer=$2 md=$3 ext=$4
  openssl req -new -key "$name.key" -subj "/O=fipsproxy tests/CN=$name" -out "$name.csr"
  if [[ -n $ext ]]; then
    openssl x509 -req -in "$name.csr" -CA "$issuer.pem" -CAkey "$issuer.key" -set_serial "0x$(openssl rand -hex 8)" \
      -days $DAYS "-$md" -extfile "$ext" -out "$name.pem" 2>/dev/null
  else
    openssl x509 -req -in "$name.csr" -CA "$issuer.pem" -CAkey "$issuer.key" -set_serial "0x$(openssl rand -hex 8)" \
      -days $DAYS "-$md" -out "$name.pem" 2>/dev/null
  fi
  rm -f "$name.csr"
}

leaf_ext() {  # leaf_ext FILE EKU
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    [[ -n $2 ]] && echo "extendedKeyUsage=$2"
    echo "subjectAltName=$SAN"
    echo "subjectKeyIdentifier=hash"
    echo "authorityKeyIdentifier=keyid"
  } > "$1"
}
leaf_ext .leaf.ext "serverAuth,clientAuth"
leaf_ext .eku-client.ext "clientAuth"
leaf_ext .eku-server.ext "serverAuth"
leaf_ext .eku-any.ext "anyExtendedKeyUsage"
cat > .ca.ext <<X
basicConstraints=critical,CA:TRUE
keyUsage=critical,keyCertSign,cRLSign
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
X

# Keys, in parallel (RSA 8192 takes seconds).
declare -A SPEC=(
  [p-rsa1024]=rsa1024 [p-rsa2048]=rsa2048 [p-rsa3072]=rsa3072 [p-rsa4096]=rsa4096 [p-rsa8192]=rsa8192
  [p-p256]=ec:P-256 [p-p384]=ec:P-384 [p-p521]=ec:P-521 [p-p224]=ec:P-224 [p-ed25519]=ed25519
  [p-sha1-leaf]=ec:P-256 [p-sha1-int]=ec:P-256 [p-under-sha1-int]=ec:P-256 [p-eku-client]=ec:P-256
  [p-eku-server]=ec:P-256 [p-eku-any]=ec:P-256 [p-v1]=ec:P-256 [p-expired]=ec:P-256 [p-other-ca]=ec:P-256
)
pids=()
for n in "${!SPEC[@]}"; do key "$n" "${SPEC[$n]}" & pids+=($!); done
for p in "${pids[@]}"; do wait "$p"; done

for n in p-rsa1024 p-rsa2048 p-rsa3072 p-rsa4096 p-rsa8192 p-p256 p-p384 p-p521 p-p224 p-ed25519; do
  sign "$n" ca sha256 .leaf.ext
done
sign p-sha1-leaf ca sha1 .leaf.ext                 # leaf signed with ecdsa-with-SHA1
sign p-sha1-int ca sha1 .ca.ext                    # intermediate CA signed with SHA-1
sign p-under-sha1-int p-sha1-int sha256 .leaf.ext  # a SHA-256 leaf under it
cat p-under-sha1-int.pem p-sha1-int.pem > p-under-sha1-int-chain.pem
sign p-eku-client ca sha256 .eku-client.ext        # clientAuth only: wrong as a server cert
sign p-eku-server ca sha256 .eku-server.ext        # serverAuth only: wrong as a client cert
sign p-eku-any ca sha256 .eku-any.ext              # anyExtendedKeyUsage: refused on a server leaf
sign p-v1 ca sha256 ""                             # no extensions: X.509 v1
sign p-other-ca other-ca sha256 .leaf.ext          # right profile, untrusted CA

# p-expired: validity in the past (openssl ca, as in gen.sh).
openssl req -new -key p-expired.key -subj "/O=fipsproxy tests/CN=p-expired" -out p-expired.csr
mkdir -p .pca && : > .pca/index.txt && openssl rand -hex 8 > .pca/serial
cat > .pca/ca.cnf <<X
[ca]
default_ca = tca
[tca]
dir = $OUT/.pca
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
X
sed -n '1,$p' .leaf.ext | sed '1i [ext]' >> .pca/ca.cnf
openssl ca -batch -config .pca/ca.cnf -extensions ext -startdate 20200101000000Z -enddate 20200201000000Z \
  -notext -in p-expired.csr -out p-expired.pem 2>/dev/null
rm -rf .pca p-expired.csr .leaf.ext .eku-*.ext .ca.ext ./*.srl
chmod 600 ./*.key
chmod 644 ./*.pem
: > .complete-policy
