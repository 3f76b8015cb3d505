#pragma once
// `fipsproxy certs demo --out DIR`: a small demo PKI made entirely inside the FIPS module (keys
// from EC_KEY_generate_key_fips, serials from RAND_bytes, i.e. the module's CTR-DRBG; ECDSA P-256
// with SHA-256 signatures; X.509 v3). Plain types only, so proxy/ can call it.
//
// Files (certificates 0644, keys PKCS#8 PEM 0600, DIR 0700):
//   ca.pem                 demo CA (CA:TRUE, keyCertSign+cRLSign); its key is never written
//   server.pem/.key        SAN DNS:localhost, DNS:server.example.org, IP:127.0.0.1, IP:::1,
//                          URI:spiffe://example.org/ns/default/sa/server; EKU serverAuth
//   client.pem/.key        SAN URI:spiffe://example.org/ns/default/sa/client,
//                          DNS:client.example.org; EKU clientAuth
//   peer.pem/.key          SAN URI:spiffe://example.org/ns/default/sa/peer, DNS:peer.example.org;
//                          EKU serverAuth+clientAuth (a second workload identity)
// Validity: now-1h .. now+90d. Each certificate carries SKI (RFC 7093 method 1: the leftmost
// 160 bits of SHA-256 of the public key, so no SHA-1 anywhere) and, below the CA, AKI.

#include <string>
#include <vector>

#include "proxy/base/result.h"

namespace fp::certs {

struct DemoPkiFile {
  std::string name;     // "server.pem"
  std::string path;     // DIR/server.pem
  std::string summary;  // "server certificate: localhost, server.example.org, ... (serverAuth)"
};

// Creates DIR (mode 0700; parents as needed) and writes the files above. An existing non-empty
// DIR is refused unless `force` (then the files are replaced, each atomically). Every certificate
// is checked against our own policy (own_chain_violation) before anything is written.
// Errors: "DIR: reason" (CertInvalid).
Result<std::vector<DemoPkiFile>> make_demo_pki(const std::string& dir, bool force);

}  // namespace fp::certs
