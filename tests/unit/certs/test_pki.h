#pragma once
// Test PKI generated in-process with BoringSSL (no files committed, no openssl CLI): a P-256 CA,
// leaves with DNS and SPIFFE SANs, an RSA-1024 leaf, an expired leaf, a SHA-1-signed leaf and a
// second, untrusted CA. Written as PEM into a temp dir once per test process.

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <string>
#include <vector>

#include "tests/support/support.h"

namespace fp::certs::testing {

bssl::UniquePtr<EVP_PKEY> make_ec_key(int curve_nid);
bssl::UniquePtr<EVP_PKEY> make_rsa_key(int bits);

struct CertSpec {
  std::string cn;
  std::vector<std::string> sans;  // "DNS:x", "URI:spiffe://..."
  bool ca = false;
  long not_before_s = -3600;       // relative to now
  long not_after_s = 30L * 86400;
  const EVP_MD* md = nullptr;      // nullptr: SHA-256
  std::string eku = "serverAuth,clientAuth";  // leaves; "" = no extendedKeyUsage extension
  long version = 2;                // X509_set_version value: 2 = v3, 0 = v1 (no extensions at all)
};
// issuer == nullptr: self-signed with `key`.
bssl::UniquePtr<X509> make_cert(const CertSpec& spec, EVP_PKEY* key, X509* issuer, EVP_PKEY* issuer_key);

void write_certs_pem(const std::string& path, const std::vector<X509*>& certs);
void write_key_pem(const std::string& path, EVP_PKEY* key);

// Paths of the generated PKI. "<name>.pem" is the cert (chain: leaf only), "<name>.key" the key.
struct Pki {
  std::string dir;
  std::string ca;        // ca.pem: trusted test CA (EC P-256, self-signed)
  std::string other_ca;  // other-ca.pem: a CA nobody trusts
  std::string path(const std::string& name) const { return dir + "/" + name; }
  // Leaves under `ca` (unless noted):
  //   server: EC P-256, DNS:server.test, URI:spiffe://test.example/ns/prod/sa/server
  //   client: EC P-256, URI:spiffe://test.example/ns/prod/sa/client, DNS:client.test
  //   rsa2048: RSA 2048, DNS:server.test            (policy-compliant RSA control)
  //   rsa1024: RSA 1024, DNS:server.test            (violates §8 peer key size)
  //   sha1: EC P-256 signed with ecdsa-with-SHA1, DNS:server.test
  //   expired: EC P-256, expired yesterday, DNS:server.test
  //   stranger: EC P-256, issued by other_ca, DNS:server.test
  //   p521: EC P-521, DNS:server.test
  //   eku-server / eku-client: EKU serverAuth only / clientAuth only
  //   eku-any: EKU anyExtendedKeyUsage,serverAuth;  eku-none: no EKU extension
  //   v1: an X.509 v1 leaf (no extensions);  nosan: v3 without subjectAltName
};
const Pki& pki();

}  // namespace fp::certs::testing
