#pragma once
// Plain descriptions of certificates and CRLs on disk, for `fipsproxy check --explain` (proxy/
// must not see BoringSSL types). The explain digest uses certs::sha256_hex (audit_chain.h), the
// FIPS module's SHA-256.

#include <string>
#include <vector>

#include "proxy/base/result.h"

namespace fp::certs {

struct CertInfo {
  std::string subject;    // RFC 2253
  std::string issuer;     // RFC 2253
  std::string serial;     // hex
  std::string key;        // "EC P-256", "RSA 2048", ...
  std::string signature;  // "ecdsa-with-SHA256", "sha256WithRSAEncryption", ...
  std::string sig_hash;   // "SHA-256", "SHA-384", "SHA-1", ... ("" when unknown)
  std::string not_before; // "2026-11-23T12:46:27Z"
  std::string not_after;
  bool self_signed = false;
  std::string sha256;     // hex SHA-256 of the DER encoding
};

struct CrlInfo {
  std::string issuer;
  std::string last_update;
  std::string next_update;  // "" when absent
  size_t revoked = 0;
};

// Every certificate in a PEM file, in file order. Errors: "PATH: reason".
Result<std::vector<CertInfo>> describe_chain_file(const std::string& path);
// Every CRL in a PEM file, in file order. Errors: "PATH: reason".
Result<std::vector<CrlInfo>> describe_crl_file(const std::string& path);

}  // namespace fp::certs
