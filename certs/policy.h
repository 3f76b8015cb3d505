#pragma once
// The FIPS allow-list (FIPS-POLICY §8): the ONE place that says which versions, cipher suites,
// groups, signature schemes, certificate keys and certificate signature hashes fipsproxy accepts.
// Context builders, the verify callback, the post-handshake gate and config validation all read
// these tables; nothing else may carry its own copy.

#include <cstdint>
#include <string>
#include <vector>

#include "config/config.h"

namespace fp::certs::policy {

struct NamedId {
  uint16_t id;       // IANA code point (cipher: the 16-bit suite id; group: NamedGroup; sigalg: SignatureScheme)
  const char* name;  // IANA / BoringSSL name
};

// TLS 1.2 and TLS 1.3 versions allowed by the profile (0x0303, 0x0304).
uint16_t min_version(config::Profile p);
uint16_t max_version(config::Profile p);
bool version_allowed(config::Profile p, uint16_t version);

// The 4 TLS 1.2 suites (OpenSSL-style names, for SSL_CTX_set_strict_cipher_list) and their ids.
const std::vector<NamedId>& tls12_suites();
// "ECDHE-ECDSA-AES128-GCM-SHA256:..." for SSL_CTX_set_strict_cipher_list.
std::string tls12_cipher_list();
// TLS_AES_128_GCM_SHA256 (0x1301) and TLS_AES_256_GCM_SHA384 (0x1302); fixed in BoringSSL, enforced
// by the libssl patch (ChaCha20 is never picked or offered).
const std::vector<NamedId>& tls13_suites();
bool cipher_allowed(config::Profile p, uint16_t version, uint16_t suite_id);

// Groups: P-256, P-384 (+ P-521 with Profile::Extended), in preference order.
std::vector<NamedId> groups(config::Profile p);
std::string groups_list(config::Profile p);  // "P-256:P-384" for SSL_CTX_set1_curves_list
bool group_allowed(config::Profile p, uint16_t group_id);

// Signature schemes, both directions: 8 (+ ecdsa_secp521r1_sha512 with Extended).
std::vector<NamedId> sigalgs(config::Profile p);
std::vector<uint16_t> sigalg_ids(config::Profile p);
bool sigalg_allowed(config::Profile p, uint16_t sigalg);

// Certificate keys (own and peer chains): RSA 2048/3072/4096; EC P-256/P-384 (+P-521 Extended).
// `curve_nid` is an OpenSSL NID (NID_X9_62_prime256v1, ...).
bool rsa_bits_allowed(unsigned bits);
bool ec_curve_allowed(config::Profile p, int curve_nid);
// Signature algorithm NID on a certificate (X509_get_signature_nid) that is not a trust anchor.
bool cert_signature_allowed(int sig_nid);

}  // namespace fp::certs::policy
