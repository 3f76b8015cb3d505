#pragma once
// `fipsproxy certs inspect FILE…`: every certificate in a PEM file with the FIPS-POLICY §8
// verdict, from the same checks `run` applies (key_policy_violation, the certificate signature
// table, leaf_profile_violation). Plain types, so proxy/ can print them.

#include <string>
#include <vector>

#include "config/config.h"
#include "proxy/base/result.h"

namespace fp::certs {

struct InspectedCert {
  std::string subject;                // RFC 2253
  std::string issuer;                 // RFC 2253
  std::string serial;                 // hex
  bool ca = false;                    // basicConstraints CA:TRUE
  bool self_signed = false;           // a trust anchor (issuer == subject, verifies itself)
  long version = 0;                   // 1, 2 or 3
  std::vector<std::string> sans;      // "DNS:x", "IP:127.0.0.1", "URI:spiffe://...", "email:..."
  std::vector<std::string> eku;       // "serverAuth", "clientAuth", ... (empty: no extension)
  std::string key;                    // "EC P-256", "RSA 2048", ...
  std::string signature;              // "ecdsa-with-SHA256"
  std::string sig_hash;               // "SHA-256", "SHA-1", ... ("" when unknown)
  std::string not_before, not_after;  // "2026-11-23T12:46:27Z"
  long days_left = 0;                 // whole days until notAfter (negative: expired)
  std::string sha256;                 // hex SHA-256 of the DER encoding
  // The verdict for the profile asked for: empty `violations` = passes.
  std::vector<std::string> violations;
  std::vector<std::string> notes;     // facts that are not violations ("trust anchor: ...")
};

// Every certificate in `path`, each with its verdict under `profile`. A P-521 key fails under
// strict and tls12-only and the reason says it passes with profile = "extended".
// Errors: "PATH: reason" (unreadable file, no certificate, bad PEM).
Result<std::vector<InspectedCert>> inspect_file(const std::string& path, config::Profile profile);

}  // namespace fp::certs
