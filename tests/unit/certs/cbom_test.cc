// certs/cbom: the CycloneDX 1.6 CBOM, validated against the official schema
// (tests/data/cyclonedx, offline) with Debian's python3-jsonschema.

#include "certs/cbom.h"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "certs/fips_self_check.h"
#include "tests/support/support.h"
#include "tests/unit/certs/test_pki.h"

using fp::certs::CbomCert;
using fp::certs::make_cbom;
using fp::test::Millis;
using fp::test::TempDir;

namespace {

// The Debian interpreter first: python3-jsonschema is installed for it.
std::string python() { return fp::test::file_exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3"; }

struct Validation {
  fp::test::ExitStatus status;
  std::string out, err;
};

Validation validate(const std::string& json) {
  TempDir d;
  std::string f = d.file("cbom.json");
  fp::test::write_file(f, json);
  Validation v;
  v.status = fp::test::run_command({python(), std::string(FP_SOURCE_DIR) + "/tests/data/cyclonedx/validate.py", f},
                                   Millis(60000), &v.out, &v.err);
  return v;
}

size_t count(const std::string& s, const std::string& needle) {
  size_t n = 0;
  for (size_t at = s.find(needle); at != std::string::npos; at = s.find(needle, at + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("cbom_certs_from_files reads subject, issuer, key, signature, expiry", "[cbom]") {
  const auto& pki = fp::certs::testing::pki();
  auto certs = fp::certs::cbom_certs_from_files({pki.path("server.pem"), pki.path("rsa2048.pem"), pki.ca,
                                                 pki.path("server.pem")});
  REQUIRE(certs.ok());
  REQUIRE(certs->size() == 3);  // the duplicate is dropped
  const CbomCert& s = (*certs)[0];
  CHECK(s.path == pki.path("server.pem"));
  CHECK(s.subject.find("CN=") != std::string::npos);
  CHECK(!s.issuer.empty());
  CHECK(s.key_type == "EC");
  CHECK(s.key_bits == 256);
  CHECK(s.key_desc == "EC P-256");
  CHECK(s.sig_alg == "ecdsa-with-SHA256");
  CHECK(s.sig_oid == "1.2.840.10045.4.3.2");
  CHECK(s.sha256.size() == 64);
  CHECK(s.not_after.size() == 20);
  CHECK(s.not_after.back() == 'Z');
  CHECK(s.not_before < s.not_after);
  CHECK((*certs)[1].key_type == "RSA");
  CHECK((*certs)[1].key_bits == 2048);

  auto missing = fp::certs::cbom_certs_from_files({"/nonexistent/cert.pem"});
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().detail.find("/nonexistent/cert.pem") != std::string::npos);
}

TEST_CASE("the CBOM validates against the CycloneDX 1.6 schema", "[cbom]") {
  const auto& pki = fp::certs::testing::pki();
  auto certs = fp::certs::cbom_certs_from_files({pki.path("server.pem"), pki.path("rsa2048.pem"), pki.ca});
  REQUIRE(certs.ok());
  fp::certs::FipsReport fips = fp::certs::run_fips_checks();

  for (const char* profile : {"strict", "tls12-only", "extended"}) {
    INFO(profile);
    std::string bom = make_cbom(fips, *certs, profile);
    auto v = validate(bom);
    INFO(v.out << v.err);
    CHECK(v.status.exited);
    CHECK(v.status.code == 0);

    CHECK(bom.find("\"bomFormat\":\"CycloneDX\",\"specVersion\":\"1.6\"") != std::string::npos);
    CHECK(bom.find("\"serialNumber\":\"urn:uuid:") != std::string::npos);
    CHECK(bom.find("\"fipsproxy:profile\",\"value\":\"" + std::string(profile) + "\"") != std::string::npos);
    // Never claims validation.
    CHECK(bom.find("fips140-3-l1") == std::string::npos);
    CHECK(bom.find("\"certificationLevel\":[\"none\"]") != std::string::npos);
    // Module, libraries.
    CHECK(bom.find("\"bom-ref\":\"lib/boringcrypto\"") != std::string::npos);
    CHECK(bom.find("\"name\":\"boringssl\",\"version\":\"13.0.0+r24-2\"") != std::string::npos);
    CHECK(bom.find("android-platform-external-boringssl") != std::string::npos);
    CHECK(bom.find("\"name\":\"libuv\",\"version\":\"1.44.2\"") != std::string::npos);
    CHECK(bom.find("\"name\":\"llhttp\",\"version\":\"8.1.0\"") != std::string::npos);
    CHECK(bom.find("\"name\":\"toml++\",\"version\":\"3.3.0\"") != std::string::npos);
    // Algorithms the policy allows, nothing it refuses.
    for (const char* a : {"AES-128-GCM", "AES-256-GCM", "ECDH-P-256", "ECDH-P-384", "ECDSA-P-256-SHA-256",
                          "ECDSA-P-384-SHA-384", "RSASSA-PSS-SHA-256", "RSASSA-PKCS1-v1_5-SHA-512", "HMAC-SHA-256",
                          "HMAC-SHA-384", "CTR_DRBG-AES-256"}) {
      INFO(a);
      CHECK(bom.find(std::string("\"name\":\"") + a + "\"") != std::string::npos);
    }
    CHECK(bom.find("CHACHA20") == std::string::npos);
    CHECK(bom.find("X25519") == std::string::npos);
    CHECK((bom.find("ECDH-P-521") != std::string::npos) == (std::string(profile) == "extended"));
    // Protocols and suites.
    CHECK(bom.find("\"version\":\"1.2\",\"cipherSuites\"") != std::string::npos);
    CHECK((bom.find("\"version\":\"1.3\",\"cipherSuites\"") != std::string::npos) ==
          (std::string(profile) != "tls12-only"));
    CHECK(bom.find("\"name\":\"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256\"") != std::string::npos);
    CHECK(bom.find("\"identifiers\":[\"0xC0\",\"0x2B\"]") != std::string::npos);
    if (std::string(profile) != "tls12-only") {
      CHECK(bom.find("\"name\":\"TLS_AES_256_GCM_SHA384\"") != std::string::npos);
    }
    // Certificates with their keys.
    CHECK(count(bom, "\"assetType\":\"certificate\"") == 3);
    CHECK(count(bom, "\"type\":\"public-key\"") == 3);
    CHECK(bom.find("\"name\":\"RSA-2048\"") != std::string::npos);
    CHECK(bom.find("\"notValidAfter\":\"" + (*certs)[0].not_after + "\"") != std::string::npos);
    CHECK(bom.find("\"content\":\"" + (*certs)[0].sha256 + "\"") != std::string::npos);
  }
}

TEST_CASE("the CBOM is valid with no certificates and escapes odd subjects", "[cbom]") {
  fp::certs::FipsReport fips = fp::certs::run_fips_checks();
  CbomCert odd;
  odd.path = "/tmp/a\"b.pem";
  odd.subject = "CN=quote\"back\\slash\nnewline";
  odd.issuer = "CN=issuer";
  odd.not_after = "2030-01-01T00:00:00Z";
  odd.key_type = "EC";
  odd.key_bits = 384;
  odd.key_desc = "EC P-384";
  odd.sig_alg = "ecdsa-with-SHA384";
  odd.sha256 = std::string(64, 'b');
  for (const auto& certs : {std::vector<CbomCert>{}, std::vector<CbomCert>{odd}}) {
    std::string bom = make_cbom(fips, certs, "strict");
    auto v = validate(bom);
    INFO(v.out << v.err);
    CHECK(v.status.code == 0);
  }
}

TEST_CASE("validate.py rejects a document that breaks the schema", "[cbom]") {
  auto v = validate(
      "{\"bomFormat\":\"CycloneDX\",\"specVersion\":\"1.6\",\"components\":[{\"type\":\"cryptographic-asset\","
      "\"name\":\"x\",\"cryptoProperties\":{\"assetType\":\"bogus\"}}]}");
  CHECK(v.status.exited);
  CHECK(v.status.code == 1);
  CHECK(v.err.find("assetType") != std::string::npos);
}

TEST_CASE("two CBOMs have different serial numbers", "[cbom]") {
  fp::certs::FipsReport fips = fp::certs::run_fips_checks();
  auto serial = [](const std::string& bom) {
    size_t at = bom.find("urn:uuid:");
    return bom.substr(at, 45);
  };
  CHECK(serial(make_cbom(fips, {}, "strict")) != serial(make_cbom(fips, {}, "strict")));
}
