#include "certs/fips_self_check.h"

#include <catch2/catch.hpp>

#include <string>

#include "build_info.h"

using fp::certs::FipsReport;
using fp::certs::run_fips_checks;

TEST_CASE("fips checks all pass in this build", "[fast][fips]") {
  FipsReport r = run_fips_checks();
  // The file hashes are not computed by the start-up checks (hash_files does, on demand).
  CHECK(r.libcrypto_sha256.empty());
  CHECK(r.libssl_sha256.empty());
  fp::certs::hash_files(r);
  INFO(r.to_text());
  REQUIRE(r.ok());
  CHECK(r.first_failure() == nullptr);
  CHECK(r.fips_mode);
  CHECK(r.module_name == "BoringCrypto");
  CHECK(r.module_version == 2022061300UL);
  CHECK(r.module_hash_loaded == fp::build::kModuleHash);
  CHECK(r.module_hash_loaded.size() == 64);
  CHECK(r.libcrypto_sha256 == fp::build::kLibcryptoSha256);
  CHECK(r.libssl_sha256 == fp::build::kLibsslSha256);
  CHECK(r.libcrypto_path.find(FP_BORINGSSL_PREFIX) == 0);
  CHECK(r.patch_marker.rfind("fipsproxy-libssl-patch/", 0) == 0);
  CHECK(r.self_test_ms > 0);

  std::vector<std::string> names;
  for (const auto& c : r.checks) names.push_back(c.name);
  CHECK(names == std::vector<std::string>{"fips_mode", "module", "self_test", "integrity_test", "module_hash",
                                          "algorithms", "drbg", "single_crypto_library",
                                          "libssl_patch"});
}

TEST_CASE("fips statement is the honest sentence, never 'validated'", "[fast][fips]") {
  const FipsReport r = run_fips_checks();
  CHECK(r.statement() ==
        "BoringCrypto FIPS build, module version 2022061300, FIPS mode on, self-tests passed; not a "
        "CMVP-validated binary unless built per the module's security policy");
  for (const std::string& s : {r.to_text(), r.to_json(), r.statement()}) {
    CHECK(s.find("FIPS validated") == std::string::npos);
    CHECK(s.find("FIPS-validated") == std::string::npos);
  }
}

TEST_CASE("fips report to_json is one JSON object with every field and the checks", "[fast][fips]") {
  const std::string j = run_fips_checks().to_json();
  INFO(j);
  REQUIRE(j.front() == '{');
  REQUIRE(j.back() == '}');
  CHECK(j.find('\n') == std::string::npos);
  CHECK(j.find("\"module_version\":2022061300") != std::string::npos);
  CHECK(j.find("\"ok\":true") != std::string::npos);
  CHECK(j.find("\"fips_mode\":true") != std::string::npos);
  CHECK(j.find("\"module_name\":\"BoringCrypto\"") != std::string::npos);
  CHECK(j.find(std::string("\"module_hash_loaded\":\"") + fp::build::kModuleHash + "\"") != std::string::npos);
  for (const char* k : {"module_hash_expected", "libcrypto_path", "libcrypto_sha256", "libssl_path", "libssl_sha256",
                        "patch_marker", "self_test_ms", "statement", "checks"}) {
    CHECK(j.find(std::string("\"") + k + "\":") != std::string::npos);
  }
  CHECK(j.find("{\"name\":\"libssl_patch\",\"ok\":true,") != std::string::npos);
  // Balanced braces/brackets outside strings: a cheap structural check.
  int depth = 0;
  bool in_str = false, esc = false, went_negative = false;
  for (char c : j) {
    if (in_str) {
      if (esc) esc = false;
      else if (c == '\\') esc = true;
      else if (c == '"') in_str = false;
      continue;
    }
    if (c == '"') in_str = true;
    else if (c == '{' || c == '[') ++depth;
    else if (c == '}' || c == ']') went_negative |= --depth < 0;
  }
  CHECK(depth == 0);
  CHECK_FALSE(in_str);
  CHECK_FALSE(went_negative);
}

TEST_CASE("a failed report names the first failing check", "[fast][fips]") {
  FipsReport r = run_fips_checks();
  REQUIRE(r.ok());
  r.checks.back().ok = false;  // libssl_patch is the last check
  r.checks.back().detail = "libssl patch marker missing: an unpatched libssl would negotiate TLS 1.3 ChaCha20";
  CHECK_FALSE(r.ok());
  REQUIRE(r.first_failure() != nullptr);
  CHECK(r.first_failure()->name == "libssl_patch");
  CHECK(r.statement().find("libssl_patch: libssl patch marker missing") != std::string::npos);
  CHECK(r.to_json().find("\"ok\":false") != std::string::npos);
  CHECK(r.to_text().find("[FAIL] libssl_patch") != std::string::npos);
}
