#!/usr/bin/env bash
# Generate a throw-away ECDSA P-256 test PKI for the peer benchmarks.
# Output (default /tmp/fpbench/pki, override with PKI_DIR):
#   ca.crt ca.key                      - self-signed CA (P-256, SHA-256)
#   server.crt server.key              - server leaf, SAN=IP:127.0.0.1,IP:::1,DNS:localhost
#   server-chain.pem                   - server.crt + ca.crt
#   server-combined.pem                - server key + cert + CA (hitch / haproxy 'crt' format)
#   client.crt client.key client-combined.pem - client leaf for mTLS (SAN URI spiffe://bench/client)
#   client-openssl.cnf                 - OPENSSL_CONF for the load clients: TLS1.2+, FIPS suites, P-256 first
set -euo pipefail
PKI_DIR=${PKI_DIR:-/tmp/fpbench/pki}
mkdir -p "$PKI_DIR"; cd "$PKI_DIR"
DAYS=30
ec() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -pkeyopt ec_param_enc:named_curve -out "$1" 2>/dev/null; }

ec ca.key
openssl req -x509 -new -key ca.key -sha256 -days $DAYS -subj "/CN=fpbench test CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" -out ca.crt

ec server.key
openssl req -new -key server.key -subj "/CN=localhost" -out server.csr
cat > server.ext <<X
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost
X
openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days $DAYS -sha256 \
  -extfile server.ext -out server.crt 2>/dev/null

ec client.key
openssl req -new -key client.key -subj "/CN=bench-client" -out client.csr
cat > client.ext <<X
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth
subjectAltName=URI:spiffe://bench/client
X
openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days $DAYS -sha256 \
  -extfile client.ext -out client.crt 2>/dev/null

cat server.crt ca.crt > server-chain.pem
cat server.key server.crt ca.crt > server-combined.pem
cat client.key client.crt > client-combined.pem
chmod 600 ./*.key ./*-combined.pem

# Client-side OpenSSL config so that every load tool (wrk, h2load, openssl s_time, python)
# offers only the FIPS set and sends a P-256 key share first (no HelloRetryRequest).
cat > client-openssl.cnf <<'X'
openssl_conf = bench_init
[bench_init]
ssl_conf = bench_ssl
[bench_ssl]
system_default = bench_sys
[bench_sys]
MinProtocol = TLSv1.2
CipherString = ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384
Ciphersuites = TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384
Groups = P-256:P-384
X
openssl verify -CAfile ca.crt server.crt client.crt
echo "PKI in $PKI_DIR"
