#pragma once
// The CBOM (issue 7 "CBOM", DESIGN §8): CycloneDX 1.6 JSON describing the cryptographic module,
// the algorithms and protocols the FIPS policy allows (read from certs/policy.h, the one
// allow-list), each loaded certificate and the dependency versions. Served by `fipsproxy cbom`
// and `GET /cbom`; validated against the official 1.6 schema in tests.
//
// Honesty: the document never claims the binary is CMVP-validated. Algorithm components carry
// certificationLevel ["none"] (this BoringSSL is built from the Debian source package, not the
// validated BoringCrypto binary) and the module component's description is
// FipsReport::statement() ("BoringCrypto FIPS build … self-tests passed").

#include <string>
#include <vector>

#include "certs/fips_self_check.h"
#include "proxy/base/result.h"

namespace fp::certs {

// One certificate as the CBOM describes it (no key material).
struct CbomCert {
  std::string path;        // the PEM file it came from
  std::string subject;     // RFC 2253
  std::string issuer;      // RFC 2253
  std::string not_before;  // RFC 3339 UTC, "2024-01-01T00:00:00Z"
  std::string not_after;
  std::string key_type;    // "RSA", "EC", "Ed25519", ...
  unsigned key_bits = 0;   // 2048, 256, ...
  std::string key_desc;    // describe_key(): "RSA 2048", "EC P-256"
  std::string sig_alg;     // certificate signature algorithm, OpenSSL long name: "ecdsa-with-SHA256"
  std::string sig_oid;     // "1.2.840.10045.4.3.2"
  std::string sha256;      // hex SHA-256 of the DER
};

// Every certificate in each PEM file (a chain file gives leaf and intermediates), in order,
// without duplicates (same SHA-256). Error: the first file that fails to load
// ("PATH: reason", Code::CertInvalid).
Result<std::vector<CbomCert>> cbom_certs_from_files(const std::vector<std::string>& paths);

// The CycloneDX 1.6 document (one JSON object, pretty-printing not attempted). `profile` is a
// config profile name ("strict", "tls12-only", "extended"); an unknown name is treated as
// "strict". serialNumber is a v4 UUID from the module's DRBG (RAND_bytes).
std::string make_cbom(const FipsReport& fips, const std::vector<CbomCert>& certs, const std::string& profile);

}  // namespace fp::certs
