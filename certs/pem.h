#pragma once
// PEM loading with reasons that name the file: "PATH: reason" (STYLE.md 5.4). Also the key and
// certificate policy checks shared by own-cert loading and the peer verify callback.

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <string>
#include <vector>

#include "config/config.h"
#include "proxy/base/result.h"

namespace fp::certs {

// All certificates in a PEM file, in order (leaf first for a chain). Error (CertInvalid):
// "PATH: cannot read: <strerror>", "PATH: no certificate found", "PATH: bad PEM certificate: ...".
Result<std::vector<bssl::UniquePtr<X509>>> load_certs(const std::string& path);
// The first private key in a PEM file. "PATH: no private key found" when none. A file that
// group or others may access (key_mode_violation) is refused with "PATH: reason", or loaded with
// a logged warning under KeyPermissions::Warn. The file's bytes are wiped after parsing.
Result<bssl::UniquePtr<EVP_PKEY>> load_private_key(
    const std::string& path, config::KeyPermissions perms = config::KeyPermissions::Refuse);
// Empty when a key file with this mode and owner is private enough, else why not: any access by
// others, or group access unless the owner is root and the group may only read (mode 0640).
std::string key_mode_violation(unsigned mode, unsigned owner_uid);

// "RSA 2048", "EC P-256", "Ed25519", ...
std::string describe_key(const EVP_PKEY* key);
// Empty when the key is allowed by FIPS-POLICY §8 for `profile`, else the reason, e.g.
// "RSA key 1024 bits not allowed (FIPS policy: 2048/3072/4096)".
std::string key_policy_violation(const EVP_PKEY* key, config::Profile profile);
// Checks every certificate of a chain (leaf first) against §8: key type/size on every element,
// signature hash on every element that is not a self-signed trust anchor. Empty when fine, else
// "certificate N (subject): reason".
std::string chain_policy_violation(const std::vector<X509*>& chain, config::Profile profile);

// Which end of a connection a leaf certificate authenticates (FIPS-POLICY §8 "Other
// certificate profile rules").
enum class LeafUse { Server, Client };
// The leaf profile: X.509 v3, a subjectAltName, and when an extendedKeyUsage is present it names
// serverAuth (Server) or clientAuth (Client); anyExtendedKeyUsage on a server leaf is refused.
// With `check_validity`, also not expired and not yet valid (own certificates at load; for peers
// X509_verify_cert already checks time). Empty when fine, else the reason, e.g.
// "extended key usage lacks serverAuth (has: clientAuth)".
std::string leaf_profile_violation(X509* leaf, LeafUse use, bool check_validity);
// Own certificate chain at load (C1/C3): the leaf's key and signature hash and its profile, then
// every further chain element. Empty when fine; else "RSA key 1024 bits not allowed (FIPS
// policy: 2048/3072/4096)" for the leaf, "chain certificate N (subject): reason" for the rest.
std::string own_chain_violation(const std::vector<X509*>& chain, LeafUse use, config::Profile profile);

// RFC 2253 one-line subject.
std::string subject_string(const X509* cert);
// Hex SHA-256 of the DER encoding.
std::string cert_sha256_hex(const X509* cert);

}  // namespace fp::certs
