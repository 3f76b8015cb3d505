#pragma once
// `fipsproxy check -c FILE --explain`: the EFFECTIVE TLS policy of every listener and cluster
// (what will actually be negotiated), with the certificates, trust and revocation it rests on,
// and a short digest an auditor can compare across a fleet.
//
// Digest: the first 16 hex digits of SHA-256 (FIPS module) over a canonical rendering of one
// block's policy (role, profile, versions, suites, groups, sigalgs, EMS/renegotiation/0-RTT,
// client-cert requirement, allow-lists, ALPN, SNI) plus the SHA-256 fingerprints of its own
// chain and trust anchors and the issuers of its CRLs. Names, addresses and file paths are not
// part of it, so two hosts with the same policy and certificates print the same digest; CRL
// contents (which change with every reissue) are not part of it either. The config digest
// covers every block's name and digest.

#include <string>

#include "config/config.h"
#include "proxy/base/result.h"

namespace fp::proxy {

// Human text (default) or one JSON object. Reads the certificate, CA and CRL files again.
Result<std::string> explain_config(const config::Snapshot& cfg, bool json);

}  // namespace fp::proxy
