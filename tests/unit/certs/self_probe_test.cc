// The startup policy self-probe (FIPS-POLICY §10 check 9): every probe passes on our contexts,
// and each probe really fails when the thing it guards is switched off (the patch bits cleared,
// X25519 or SHA-1 put back, TLS 1.1 allowed) — the probe's own positive controls.

#include <openssl/ssl.h>

#include <catch2/catch.hpp>

#include <chrono>

#include "certs/libssl_patch.h"
#include "certs/self_probe.h"
#include "certs/tls_context.h"
#include "tests/unit/certs/test_pki.h"
#include "tests/unit/certs/tls_harness.h"

using namespace fp::certs;
using namespace fp::certs::testing;
using fp::config::Profile;

namespace {

std::string dump(const std::vector<ProbeResult>& v) {
  std::string s;
  for (const auto& r : v) s += r.probe + (r.passed ? " ok: " : " FAILED: ") + r.what + "\n";
  return s;
}

const ProbeResult* find(const std::vector<ProbeResult>& v, const std::string& name) {
  for (const auto& r : v) {
    if (r.probe == name) return &r;
  }
  return nullptr;
}

std::vector<std::string> names(const std::vector<ProbeResult>& v) {
  std::vector<std::string> out;
  for (const auto& r : v) out.push_back(r.probe);
  return out;
}

// A context we may break on purpose (a fresh one per test; the knobs are set on its SSL_CTX).
std::shared_ptr<const TlsContext> fresh(Role role, fp::config::TlsConfig cfg) { return must_build(role, cfg); }

}  // namespace

TEST_CASE("self-probe: a strict server context passes every probe", "[fast][probe]") {
  for (const std::string leaf : {"server", "rsa2048"}) {
    for (bool mtls : {false, true}) {
      auto tc = fresh(Role::Server, server_config(leaf, mtls));
      auto v = run_self_probes(*tc);
      INFO(leaf << " mtls=" << mtls << "\n" << dump(v));
      CHECK(names(v) == std::vector<std::string>{"tls13-chacha20-only", "x25519-only", "tls1.1", "sha1-sigalgs",
                                                 "tls12-no-ems", "approved-tls13", "approved-tls12"});
      for (const auto& r : v) CHECK(r.passed);
      CHECK(self_probe(*tc).ok());
    }
  }
}

TEST_CASE("self-probe: refusals carry the alert and reason", "[fast][probe]") {
  auto tc = fresh(Role::Server, server_config());
  auto v = run_self_probes(*tc);
  INFO(dump(v));
  CHECK(find(v, "tls13-chacha20-only")->what.find("alert 40") != std::string::npos);
  CHECK(find(v, "tls13-chacha20-only")->what.find("tls13_chacha_refused") != std::string::npos);
  CHECK(find(v, "tls1.1")->what.find("alert 70") != std::string::npos);
  CHECK(find(v, "tls12-no-ems")->what.find("tls_no_ems") != std::string::npos);
  CHECK(find(v, "x25519-only")->what.find("alert 40") != std::string::npos);
  CHECK(find(v, "approved-tls13")->what.find("TLS_AES_128_GCM_SHA256") != std::string::npos);
  CHECK(find(v, "approved-tls13")->what.find("P-256") != std::string::npos);
  CHECK(find(v, "approved-tls12")->what.find("EMS") != std::string::npos);
}

TEST_CASE("self-probe: profiles (tls12-only, extended)", "[fast][probe]") {
  auto cfg = server_config();
  cfg.profile = Profile::Tls12Only;
  cfg.max_version = TLS1_2_VERSION;
  auto tc = fresh(Role::Server, cfg);
  auto v = run_self_probes(*tc);
  INFO(dump(v));
  CHECK(find(v, "approved-tls13") == nullptr);
  REQUIRE(find(v, "approved-tls12") != nullptr);
  CHECK(self_probe(*tc).ok());

  auto ext = server_config("p521");
  ext.profile = Profile::Extended;
  auto te = fresh(Role::Server, ext);
  INFO(dump(run_self_probes(*te)));
  CHECK(self_probe(*te).ok());

  auto ccfg = client_config("client");
  ccfg.profile = Profile::Tls12Only;
  ccfg.max_version = TLS1_2_VERSION;
  auto tcc = fresh(Role::Client, ccfg);
  auto vc = run_self_probes(*tcc);
  INFO(dump(vc));
  CHECK(self_probe(*tcc).ok());
  CHECK(find(vc, "chacha-selected") == nullptr);
}

TEST_CASE("self-probe: server probes fail when the guard is off (controls)", "[fast][probe]") {
  SECTION("patch bits cleared: ChaCha20-only and no-EMS offers are accepted") {
    auto tc = fresh(Role::Server, server_config());
    REQUIRE(patch_set_policy(tc->ctx(), 0) == 1);
    auto v = run_self_probes(*tc);
    INFO(dump(v));
    CHECK_FALSE(find(v, "tls13-chacha20-only")->passed);
    CHECK(find(v, "tls13-chacha20-only")->what.find("TLS_CHACHA20_POLY1305_SHA256") != std::string::npos);
    CHECK_FALSE(find(v, "tls12-no-ems")->passed);
    CHECK(find(v, "tls12-no-ems")->what.find("no EMS") != std::string::npos);
    auto r = self_probe(*tc);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().detail.rfind("listener test-listener: tls13-chacha20-only: accepted: server answered with "
                                 "ServerHello TLS 1.3, TLS_CHACHA20_POLY1305_SHA256 (0x1303)",
                                 0) == 0);
  }
  SECTION("X25519 allowed again") {
    auto tc = fresh(Role::Server, server_config());
    REQUIRE(SSL_CTX_set1_curves_list(tc->ctx(), "X25519:P-256") == 1);
    auto v = run_self_probes(*tc);
    INFO(dump(v));
    CHECK_FALSE(find(v, "x25519-only")->passed);
    CHECK(find(v, "x25519-only")->what.find("X25519") != std::string::npos);
  }
  SECTION("TLS 1.1 allowed again") {
    auto tc = fresh(Role::Server, server_config());
    REQUIRE(SSL_CTX_set_min_proto_version(tc->ctx(), TLS1_1_VERSION) == 1);
    REQUIRE(SSL_CTX_set_cipher_list(tc->ctx(), "ALL") == 1);
    auto v = run_self_probes(*tc);
    INFO(dump(v));
    CHECK_FALSE(find(v, "tls1.1")->passed);
  }
  SECTION("SHA-1 signing allowed again") {
    auto tc = fresh(Role::Server, server_config());
    const uint16_t prefs[] = {SSL_SIGN_ECDSA_SECP256R1_SHA256, SSL_SIGN_ECDSA_SHA1};
    REQUIRE(SSL_CTX_set_signing_algorithm_prefs(tc->ctx(), prefs, 2) == 1);
    auto v = run_self_probes(*tc);
    INFO(dump(v));
    CHECK_FALSE(find(v, "sha1-sigalgs")->passed);
  }
}

TEST_CASE("self-probe: a client context passes every probe", "[fast][probe]") {
  for (const std::string leaf : {"", "client"}) {
    auto tc = fresh(Role::Client, client_config(leaf));
    auto v = run_self_probes(*tc);
    INFO(dump(v));
    CHECK(names(v) == std::vector<std::string>{"approved-server", "client-offer", "chacha-selected",
                                               "x25519-only-server", "tls1.1-server", "sha1-server",
                                               "tls12-no-ems-server"});
    for (const auto& r : v) CHECK(r.passed);
    CHECK(find(v, "approved-server")->what.find("TLS_AES_128_GCM_SHA256") != std::string::npos);
    CHECK(self_probe(*tc).ok());
  }
}

TEST_CASE("self-probe: client probes fail when the guard is off (controls)", "[fast][probe]") {
  SECTION("patch bits cleared") {
    auto tc = fresh(Role::Client, client_config());
    REQUIRE(patch_set_policy(tc->ctx(), 0) == 1);
    auto v = run_self_probes(*tc);
    INFO(dump(v));
    CHECK_FALSE(find(v, "client-offer")->passed);
    CHECK_FALSE(find(v, "chacha-selected")->passed);
    CHECK_FALSE(find(v, "tls12-no-ems-server")->passed);
    auto r = self_probe(*tc);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().detail.rfind("cluster test-cluster: client-offer: offers TLS_CHACHA20_POLY1305_SHA256", 0) == 0);
  }
  SECTION("X25519 allowed again") {
    auto tc = fresh(Role::Client, client_config());
    REQUIRE(SSL_CTX_set1_curves_list(tc->ctx(), "X25519:P-256") == 1);
    auto v = run_self_probes(*tc);
    INFO(dump(v));
    CHECK_FALSE(find(v, "x25519-only-server")->passed);
  }
  SECTION("TLS 1.1 allowed again") {
    auto tc = fresh(Role::Client, client_config());
    REQUIRE(SSL_CTX_set_min_proto_version(tc->ctx(), TLS1_1_VERSION) == 1);
    REQUIRE(SSL_CTX_set_cipher_list(tc->ctx(), "ALL") == 1);
    auto v = run_self_probes(*tc);
    INFO(dump(v));
    CHECK_FALSE(find(v, "tls1.1-server")->passed);
  }
  SECTION("SHA-1 verification allowed again") {
    auto tc = fresh(Role::Client, client_config());
    const uint16_t prefs[] = {SSL_SIGN_ECDSA_SECP256R1_SHA256, SSL_SIGN_ECDSA_SHA1};
    REQUIRE(SSL_CTX_set_verify_algorithm_prefs(tc->ctx(), prefs, 2) == 1);
    auto v = run_self_probes(*tc);
    INFO(dump(v));
    CHECK_FALSE(find(v, "sha1-server")->passed);
  }
}

TEST_CASE("self-probe: fast enough for every start", "[fast][probe]") {
  auto s = fresh(Role::Server, server_config("server", true));
  auto c = fresh(Role::Client, client_config("client"));
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 5; ++i) {
    CHECK(self_probe(*s).ok());
    CHECK(self_probe(*c).ok());
  }
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
  INFO("5 x (server + client) probes: " << ms << " ms");
  CHECK(ms < 5000);
}
