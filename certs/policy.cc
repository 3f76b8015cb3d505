#include "certs/policy.h"

#include <openssl/nid.h>
#include <openssl/ssl.h>

#include <algorithm>

namespace fp::certs::policy {
namespace {

using config::Profile;

bool extended(Profile p) { return p == Profile::Extended; }

template <class C>
bool contains_id(const C& c, uint16_t id) {
  return std::any_of(c.begin(), c.end(), [&](const NamedId& n) { return n.id == id; });
}

std::string join_names(const std::vector<NamedId>& v) {
  std::string out;
  for (const NamedId& n : v) {
    if (!out.empty()) out += ':';
    out += n.name;
  }
  return out;
}

}  // namespace

uint16_t min_version(Profile) { return TLS1_2_VERSION; }
uint16_t max_version(Profile p) { return p == Profile::Tls12Only ? TLS1_2_VERSION : TLS1_3_VERSION; }
bool version_allowed(Profile p, uint16_t v) { return v >= min_version(p) && v <= max_version(p); }

const std::vector<NamedId>& tls12_suites() {
  // SP 800-52r2 §3.3.1.1, ECDHE + AES-GCM only (FIPS-POLICY §8). ECDSA first, AES-128 first.
  static const std::vector<NamedId> k = {
      {0xC02B, "ECDHE-ECDSA-AES128-GCM-SHA256"},
      {0xC02F, "ECDHE-RSA-AES128-GCM-SHA256"},
      {0xC02C, "ECDHE-ECDSA-AES256-GCM-SHA384"},
      {0xC030, "ECDHE-RSA-AES256-GCM-SHA384"},
  };
  return k;
}

std::string tls12_cipher_list() { return join_names(tls12_suites()); }

const std::vector<NamedId>& tls13_suites() {
  static const std::vector<NamedId> k = {
      {0x1301, "TLS_AES_128_GCM_SHA256"},
      {0x1302, "TLS_AES_256_GCM_SHA384"},
  };
  return k;
}

bool cipher_allowed(Profile p, uint16_t version, uint16_t suite_id) {
  if (!version_allowed(p, version)) return false;
  return version == TLS1_3_VERSION ? contains_id(tls13_suites(), suite_id)
                                   : contains_id(tls12_suites(), suite_id);
}

std::vector<NamedId> groups(Profile p) {
  std::vector<NamedId> v = {{SSL_CURVE_SECP256R1, "P-256"}, {SSL_CURVE_SECP384R1, "P-384"}};
  if (extended(p)) v.push_back({SSL_CURVE_SECP521R1, "P-521"});
  return v;
}

std::string groups_list(Profile p) { return join_names(groups(p)); }

bool group_allowed(Profile p, uint16_t group_id) { return contains_id(groups(p), group_id); }

std::vector<NamedId> sigalgs(Profile p) {
  std::vector<NamedId> v = {
      {SSL_SIGN_ECDSA_SECP256R1_SHA256, "ecdsa_secp256r1_sha256"},
      {SSL_SIGN_ECDSA_SECP384R1_SHA384, "ecdsa_secp384r1_sha384"},
      {SSL_SIGN_RSA_PSS_RSAE_SHA256, "rsa_pss_rsae_sha256"},
      {SSL_SIGN_RSA_PSS_RSAE_SHA384, "rsa_pss_rsae_sha384"},
      {SSL_SIGN_RSA_PSS_RSAE_SHA512, "rsa_pss_rsae_sha512"},
      // RSASSA-PKCS1-v1_5: TLS 1.2 handshakes and certificates only; BoringSSL never uses it in
      // TLS 1.3 CertificateVerify (RFC 8446 §4.2.3).
      {SSL_SIGN_RSA_PKCS1_SHA256, "rsa_pkcs1_sha256"},
      {SSL_SIGN_RSA_PKCS1_SHA384, "rsa_pkcs1_sha384"},
      {SSL_SIGN_RSA_PKCS1_SHA512, "rsa_pkcs1_sha512"},
  };
  if (extended(p)) v.push_back({SSL_SIGN_ECDSA_SECP521R1_SHA512, "ecdsa_secp521r1_sha512"});
  return v;
}

std::vector<uint16_t> sigalg_ids(Profile p) {
  std::vector<uint16_t> out;
  for (const NamedId& n : sigalgs(p)) out.push_back(n.id);
  return out;
}

bool sigalg_allowed(Profile p, uint16_t sigalg) { return contains_id(sigalgs(p), sigalg); }

bool rsa_bits_allowed(unsigned bits) {
  // The module's approved RSA signing sizes (FIPS-POLICY §4.3); 8192 is not one of them.
  return bits == 2048 || bits == 3072 || bits == 4096;
}

bool ec_curve_allowed(Profile p, int curve_nid) {
  return curve_nid == NID_X9_62_prime256v1 || curve_nid == NID_secp384r1 ||
         (extended(p) && curve_nid == NID_secp521r1);
}

bool cert_signature_allowed(int sig_nid) {
  switch (sig_nid) {
    case NID_sha256WithRSAEncryption:
    case NID_sha384WithRSAEncryption:
    case NID_sha512WithRSAEncryption:
    case NID_ecdsa_with_SHA256:
    case NID_ecdsa_with_SHA384:
    case NID_ecdsa_with_SHA512:
    // BoringSSL's X.509 code only verifies RSASSA-PSS with SHA-256/384/512, MGF1 with the same
    // hash and salt length = hash length (crypto/x509/rsa_pss.c), which is exactly our rule.
    case NID_rsassaPss:
      return true;
    default:
      return false;  // SHA-1, MD5, MD2, SHA-224, DSA, Ed25519, ...
  }
}

}  // namespace fp::certs::policy
