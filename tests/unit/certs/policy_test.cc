#include "certs/policy.h"

#include <openssl/nid.h>
#include <openssl/ssl.h>

#include <catch2/catch.hpp>

namespace policy = fp::certs::policy;
using fp::config::Profile;

TEST_CASE("policy table: versions per profile", "[fast][policy]") {
  CHECK(policy::version_allowed(Profile::Strict, TLS1_2_VERSION));
  CHECK(policy::version_allowed(Profile::Strict, TLS1_3_VERSION));
  CHECK_FALSE(policy::version_allowed(Profile::Strict, TLS1_1_VERSION));
  CHECK_FALSE(policy::version_allowed(Profile::Tls12Only, TLS1_3_VERSION));
  CHECK(policy::version_allowed(Profile::Tls12Only, TLS1_2_VERSION));
}

TEST_CASE("policy table: exactly the 4 TLS 1.2 suites and 2 TLS 1.3 suites", "[fast][policy]") {
  CHECK(policy::tls12_cipher_list() ==
        "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
        "ECDHE-RSA-AES256-GCM-SHA384");
  // Every name maps to the id we claim, in this libssl.
  for (const auto& s : policy::tls12_suites()) {
    const SSL_CIPHER* c = SSL_get_cipher_by_value(s.id);
    REQUIRE(c != nullptr);
    CHECK(std::string(SSL_CIPHER_get_name(c)) == s.name);
  }
  CHECK(policy::cipher_allowed(Profile::Strict, TLS1_3_VERSION, 0x1301));
  CHECK(policy::cipher_allowed(Profile::Strict, TLS1_3_VERSION, 0x1302));
  CHECK_FALSE(policy::cipher_allowed(Profile::Strict, TLS1_3_VERSION, 0x1303));  // ChaCha20
  CHECK_FALSE(policy::cipher_allowed(Profile::Strict, TLS1_2_VERSION, 0xCCA9));  // ECDHE-ECDSA-CHACHA20
  CHECK_FALSE(policy::cipher_allowed(Profile::Strict, TLS1_2_VERSION, 0x009C));  // RSA key transport
  CHECK_FALSE(policy::cipher_allowed(Profile::Strict, TLS1_2_VERSION, 0xC009));  // CBC
  CHECK(policy::cipher_allowed(Profile::Strict, TLS1_2_VERSION, 0xC030));
  CHECK_FALSE(policy::cipher_allowed(Profile::Tls12Only, TLS1_3_VERSION, 0x1301));
}

TEST_CASE("policy table: groups and sigalgs, P-521 only with Extended", "[fast][policy]") {
  CHECK(policy::groups_list(Profile::Strict) == "P-256:P-384");
  CHECK(policy::groups_list(Profile::Extended) == "P-256:P-384:P-521");
  CHECK_FALSE(policy::group_allowed(Profile::Strict, SSL_CURVE_X25519));
  CHECK_FALSE(policy::group_allowed(Profile::Strict, SSL_CURVE_SECP521R1));
  CHECK(policy::group_allowed(Profile::Extended, SSL_CURVE_SECP521R1));

  CHECK(policy::sigalgs(Profile::Strict).size() == 8);
  CHECK(policy::sigalgs(Profile::Extended).size() == 9);
  for (const auto& s : policy::sigalgs(Profile::Extended)) {
    CHECK(std::string(SSL_get_signature_algorithm_name(s.id, 1)) == s.name);
  }
  CHECK_FALSE(policy::sigalg_allowed(Profile::Strict, SSL_SIGN_RSA_PKCS1_SHA1));
  CHECK_FALSE(policy::sigalg_allowed(Profile::Strict, SSL_SIGN_ECDSA_SHA1));
  CHECK_FALSE(policy::sigalg_allowed(Profile::Strict, SSL_SIGN_ED25519));
  CHECK_FALSE(policy::sigalg_allowed(Profile::Strict, SSL_SIGN_ECDSA_SECP521R1_SHA512));
  CHECK(policy::sigalg_allowed(Profile::Extended, SSL_SIGN_ECDSA_SECP521R1_SHA512));
}

TEST_CASE("policy table: certificate keys and signature hashes", "[fast][policy]") {
  CHECK(policy::rsa_bits_allowed(2048));
  CHECK(policy::rsa_bits_allowed(3072));
  CHECK(policy::rsa_bits_allowed(4096));
  CHECK_FALSE(policy::rsa_bits_allowed(1024));
  CHECK_FALSE(policy::rsa_bits_allowed(8192));
  CHECK_FALSE(policy::rsa_bits_allowed(2047));
  CHECK(policy::ec_curve_allowed(Profile::Strict, NID_X9_62_prime256v1));
  CHECK(policy::ec_curve_allowed(Profile::Strict, NID_secp384r1));
  CHECK_FALSE(policy::ec_curve_allowed(Profile::Strict, NID_secp521r1));
  CHECK_FALSE(policy::ec_curve_allowed(Profile::Strict, NID_secp224r1));
  CHECK(policy::ec_curve_allowed(Profile::Extended, NID_secp521r1));
  CHECK(policy::cert_signature_allowed(NID_ecdsa_with_SHA256));
  CHECK(policy::cert_signature_allowed(NID_sha384WithRSAEncryption));
  CHECK_FALSE(policy::cert_signature_allowed(NID_sha1WithRSAEncryption));
  CHECK_FALSE(policy::cert_signature_allowed(NID_ecdsa_with_SHA1));
  CHECK_FALSE(policy::cert_signature_allowed(NID_md5WithRSAEncryption));
}
