#pragma once
// Plain structs describing a peer and a finished handshake. Filled by certs/ and proxy/tls_*,
// read by filters and logs (filters never see SSL*).

#include <string>
#include <vector>

namespace fp::certs {

struct PeerIdentity {
  bool present = false;          // the peer sent a certificate
  std::string spiffe_id;         // first URI SAN starting with spiffe://, if any
  std::vector<std::string> uris; // all URI SANs
  std::vector<std::string> dns;  // all DNS SANs
  std::string subject;           // RFC 2253 one-line subject
  std::string sha256;            // hex SHA-256 of the leaf DER
  std::string key_type;          // "EC P-256", "RSA 2048", ...
};

struct HandshakeInfo {
  std::string version;   // "TLSv1.3"
  std::string cipher;    // IANA name, e.g. "TLS_AES_128_GCM_SHA256"
  std::string group;     // "P-256"
  std::string sigalg;    // "ecdsa_secp256r1_sha256": the peer's handshake signature; "" when it sent
                         // none (server without client cert, resumption)
  std::string alpn;      // negotiated ALPN or ""
  std::string sni;       // server name sent/received
  bool resumed = false;
  PeerIdentity peer;
};

}  // namespace fp::certs
