#include "certs/tls_context.h"

#include <openssl/ssl.h>

#include <catch2/catch.hpp>

#include "certs/libssl_patch.h"
#include "certs/pem.h"
#include "tests/support/support.h"
#include "tests/unit/certs/test_pki.h"
#include "tests/unit/certs/tls_harness.h"

using namespace fp::certs;
using namespace fp::certs::testing;
using fp::Code;
using fp::config::Profile;
using fp::config::TlsConfig;

namespace {

std::string detail_of(const fp::Result<std::shared_ptr<const TlsContext>>& r) {
  return r ? std::string("(built)") : r.error().detail;
}

// Our server (cfg) vs our client (ccfg), in memory.
PairOutcome ours_vs_ours(const TlsConfig& scfg, const TlsConfig& ccfg, const std::string& sni = "server.test") {
  auto s = must_build(Role::Server, scfg);
  auto c = must_build(Role::Client, ccfg);
  auto server = s->new_ssl("");
  auto client = c->new_ssl(sni);
  return handshake_in_memory(client.get(), server.get());
}

// A plain BoringSSL server that verifies client certs against the test CA (no policy, no
// identity checks): the control showing the client really presented that certificate.
bssl::UniquePtr<SSL_CTX> plain_mtls_server() {
  auto ctx = plain_ctx(pki().path("server.pem"), pki().path("server.key"));
  REQUIRE(SSL_CTX_load_verify_locations(ctx.get(), pki().ca.c_str(), nullptr) == 1);
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  return ctx;
}

// A plain client presenting `leaf` (our own client context would refuse to load a non-compliant
// certificate) against `server_ssl`.
PairOutcome plain_client_with_cert(const std::string& leaf, SSL* server_ssl) {
  auto cctx = plain_ctx(pki().path(leaf + ".pem"), pki().path(leaf + ".key"));
  bssl::UniquePtr<SSL> client(SSL_new(cctx.get()));
  SSL_set_connect_state(client.get());
  return handshake_in_memory(client.get(), server_ssl);
}

PairOutcome plain_client_cert_vs_ours(const std::string& leaf, const TlsConfig& scfg) {
  auto s = must_build(Role::Server, scfg);
  auto server = s->new_ssl("");
  return plain_client_with_cert(leaf, server.get());
}

PairOutcome plain_client_cert_vs_plain_mtls(const std::string& leaf) {
  auto sctx = plain_mtls_server();
  bssl::UniquePtr<SSL> server(SSL_new(sctx.get()));
  SSL_set_accept_state(server.get());
  return plain_client_with_cert(leaf, server.get());
}

}  // namespace

// ---- build_context ----------------------------------------------------------------------------

TEST_CASE("build_context builds server and client contexts with both patch bits", "[fast][context]") {
  auto s = build_context(Role::Server, "l", server_config());
  REQUIRE(s.ok());
  CHECK(patch_get_policy(s.value()->ctx()) == (kPolicyTls13AesGcmOnly | kPolicyRequireEms));
  CHECK(SSL_CTX_get_min_proto_version(s.value()->ctx()) == TLS1_2_VERSION);
  CHECK(SSL_CTX_get_max_proto_version(s.value()->ctx()) == TLS1_3_VERSION);
  auto c = build_context(Role::Client, "c", client_config());
  REQUIRE(c.ok());
  CHECK(patch_get_policy(c.value()->ctx()) == (kPolicyTls13AesGcmOnly | kPolicyRequireEms));
  CHECK(SSL_CTX_get_verify_mode(c.value()->ctx()) == SSL_VERIFY_PEER);

  TlsConfig t12 = server_config();
  t12.profile = Profile::Tls12Only;
  auto s12 = build_context(Role::Server, "l", t12);
  REQUIRE(s12.ok());
  CHECK(SSL_CTX_get_max_proto_version(s12.value()->ctx()) == TLS1_2_VERSION);
}

TEST_CASE("build_context errors name the path: missing files", "[fast][context]") {
  fp::test::TempDir dir("fp-certs-err");
  TlsConfig cfg = server_config();
  cfg.cert = dir.file("server.pem");
  auto r = build_context(Role::Server, "l", cfg);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == Code::CertInvalid);
  CHECK(r.error().detail == dir.file("server.pem") + ": cannot read: No such file or directory");

  cfg = server_config();
  cfg.key = dir.file("key.pem");
  r = build_context(Role::Server, "l", cfg);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().detail == dir.file("key.pem") + ": cannot read: No such file or directory");

  cfg = server_config();
  cfg.ca = dir.file("ca.pem");
  r = build_context(Role::Server, "l", cfg);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().detail == dir.file("ca.pem") + ": cannot read: No such file or directory");
}

TEST_CASE("build_context errors name the path: no certificate, no key, key mismatch", "[fast][context]") {
  fp::test::TempDir dir("fp-certs-err");
  // 0600: it also serves as a key below, and an others-readable key is refused before parsing.
  fp::test::write_file(dir.file("empty.pem"), "just some text\n", 0600);
  TlsConfig cfg = server_config();
  cfg.cert = dir.file("empty.pem");
  auto r = build_context(Role::Server, "l", cfg);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == Code::CertInvalid);
  CHECK(r.error().detail == dir.file("empty.pem") + ": no certificate found");

  cfg = server_config();
  cfg.key = dir.file("empty.pem");
  r = build_context(Role::Server, "l", cfg);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().detail == dir.file("empty.pem") + ": no private key found");

  cfg = server_config();
  cfg.key = pki().path("client.key");  // a valid key, but not the server certificate's
  r = build_context(Role::Server, "l", cfg);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == Code::CertInvalid);
  CHECK(r.error().detail.rfind(pki().path("client.key") + ": key does not match certificate", 0) == 0);
}

TEST_CASE("build_context refuses own certificates outside the policy (C1, C3)", "[fast][context]") {
  auto r = build_context(Role::Server, "l", server_config("rsa1024"));
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == Code::CertInvalid);
  CHECK(detail_of(r) == pki().path("rsa1024.pem") + ": RSA key 1024 bits not allowed (FIPS policy: 2048/3072/4096)");
  r = build_context(Role::Server, "l", server_config("sha1"));
  REQUIRE_FALSE(r.ok());
  CHECK(detail_of(r).find("signature algorithm ecdsa-with-SHA1 not allowed") != std::string::npos);
  r = build_context(Role::Server, "l", server_config("p521"));
  REQUIRE_FALSE(r.ok());
  CHECK(detail_of(r).find("EC P-521 key not allowed") != std::string::npos);
  // Controls: compliant keys load; P-521 loads with the Extended opt-in.
  CHECK(build_context(Role::Server, "l", server_config("rsa2048")).ok());
  TlsConfig ext = server_config("p521");
  ext.profile = Profile::Extended;
  CHECK(build_context(Role::Server, "l", ext).ok());
}

TEST_CASE("build_context refuses versions below TLS 1.2", "[fast][context]") {
  TlsConfig cfg = server_config();
  cfg.min_version = TLS1_1_VERSION;
  auto r = build_context(Role::Server, "l", cfg);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == Code::TlsSetupFailed);
  CHECK(r.error().detail.find("below TLS 1.2") != std::string::npos);
}

// ---- handshakes between our contexts ----------------------------------------------------------

TEST_CASE("mTLS between our server and client: TLS 1.3, AES-GCM, P-256, identities described", "[fast][handshake]") {
  TlsConfig scfg = server_config("server", true);
  auto out = ours_vs_ours(scfg, client_config("client"));
  REQUIRE(out.client.ok);
  REQUIRE(out.server.ok);
  const HandshakeInfo& s = out.server.info;
  CHECK(s.version == "TLSv1.3");
  CHECK(s.cipher == "TLS_AES_128_GCM_SHA256");
  CHECK(s.group == "P-256");
  CHECK(s.sigalg == "ecdsa_secp256r1_sha256");
  CHECK(s.sni == "server.test");
  CHECK_FALSE(s.resumed);
  CHECK(s.peer.present);
  CHECK(s.peer.spiffe_id == "spiffe://test.example/ns/prod/sa/client");
  CHECK(s.peer.dns == std::vector<std::string>{"client.test"});
  CHECK(s.peer.subject == "CN=client,O=fipsproxy test");
  CHECK(s.peer.key_type == "EC P-256");
  CHECK(s.peer.sha256.size() == 64);
  CHECK(out.client.info.peer.spiffe_id == "spiffe://test.example/ns/prod/sa/server");
  CHECK(out.server.negotiated.ok());
  CHECK(out.client.negotiated.ok());
}

TEST_CASE("TLS 1.2-only profile negotiates an allowed ECDHE-GCM suite with EMS", "[fast][handshake]") {
  TlsConfig scfg = server_config();
  scfg.profile = Profile::Tls12Only;
  auto out = ours_vs_ours(scfg, client_config());
  REQUIRE(out.server.ok);
  REQUIRE(out.client.ok);
  CHECK(out.server.info.version == "TLSv1.2");
  CHECK(out.server.info.cipher == "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256");
  CHECK(out.server.extms);
  CHECK(out.client.extms);
  CHECK(out.server.negotiated.ok());
}

TEST_CASE("server requiring a client cert: none sent -> peer_cert_missing", "[fast][verify]") {
  auto out = ours_vs_ours(server_config("server", true), client_config());
  REQUIRE(out.server.error.has_value());
  CHECK(out.server.error->code == Code::PeerCertMissing);
  // Control: the same client is accepted when client certs are not required.
  CHECK(ours_vs_ours(server_config("server", false), client_config()).server.ok);
}

TEST_CASE("client cert from another CA -> peer_cert_untrusted", "[fast][verify]") {
  auto out = ours_vs_ours(server_config("server", true), client_config("stranger"));
  REQUIRE(out.server.error.has_value());
  CHECK(out.server.error->code == Code::PeerCertUntrusted);
  CHECK(out.server.error->detail.find("unable to get local issuer certificate") != std::string::npos);
  // In TLS 1.3 the client has finished its side before the server's verdict; it sees the alert
  // only on its first read, so nothing is asserted for it here.
}

TEST_CASE("expired client cert -> peer_cert_expired", "[fast][verify]") {
  // Our own client context refuses to load an expired certificate (C1), so a plain client sends it.
  auto out = plain_client_cert_vs_ours("expired", server_config("server", true));
  REQUIRE(out.server.error.has_value());
  CHECK(out.server.error->code == Code::PeerCertExpired);
  CHECK(out.server.error->detail.find("expired") != std::string::npos);
}

TEST_CASE("RSA-1024 client cert -> peer_cert_policy, plain BoringSSL accepts it (T21)", "[fast][verify]") {
  auto out = plain_client_cert_vs_ours("rsa1024", server_config("server", true));
  REQUIRE(out.server.error.has_value());
  CHECK(out.server.error->code == Code::PeerCertPolicy);
  CHECK(out.server.error->detail.find("RSA key 1024 bits not allowed") != std::string::npos);
  // Controls: plain BoringSSL verification accepts the same client; RSA-2048 passes our policy.
  CHECK(plain_client_cert_vs_plain_mtls("rsa1024").server.ok);
  CHECK(plain_client_cert_vs_ours("rsa2048", server_config("server", true)).server.ok);
}

TEST_CASE("SHA-1-signed client cert -> peer_cert_policy, plain BoringSSL accepts it (T21, O6)", "[fast][verify]") {
  auto out = plain_client_cert_vs_ours("sha1", server_config("server", true));
  REQUIRE(out.server.error.has_value());
  CHECK(out.server.error->code == Code::PeerCertPolicy);
  CHECK(out.server.error->detail.find("ecdsa-with-SHA1 not allowed") != std::string::npos);
  CHECK(plain_client_cert_vs_plain_mtls("sha1").server.ok);
}

TEST_CASE("P-521 client cert refused in strict, accepted with the Extended profile", "[fast][verify]") {
  auto out = plain_client_cert_vs_ours("p521", server_config("server", true));
  REQUIRE(out.server.error.has_value());
  // Strict's CertificateRequest lists no ecdsa_secp521r1_sha512, so the client cannot sign:
  // it fails with no common signature algorithm and alerts the server.
  INFO(out.server.error->message());
  REQUIRE(out.client.error.has_value());
  CHECK(out.client.error->code == Code::TlsPolicyViolation);
  CHECK(out.server.error->code == Code::TlsAlertReceived);
  TlsConfig ext = server_config("server", true);
  ext.profile = Profile::Extended;
  CHECK(plain_client_cert_vs_ours("p521", ext).server.ok);
}

TEST_CASE("server allow_spiffe: prefix ending in '/' and exact ids", "[fast][identity]") {
  TlsConfig scfg = server_config("server", true);
  scfg.allow_spiffe = {"spiffe://test.example/ns/prod/"};
  CHECK(ours_vs_ours(scfg, client_config("client")).server.ok);
  scfg.allow_spiffe = {"spiffe://test.example/ns/prod/sa/client"};
  CHECK(ours_vs_ours(scfg, client_config("client")).server.ok);

  for (const char* denied : {"spiffe://test.example/ns/dev/", "spiffe://test.example/ns/prod",
                             "spiffe://test.example/ns/prod/sa/clien"}) {
    scfg.allow_spiffe = {denied};
    auto out = ours_vs_ours(scfg, client_config("client"));
    INFO(denied);
    REQUIRE(out.server.error.has_value());
    CHECK(out.server.error->code == Code::PeerIdentityDenied);
    CHECK(out.server.error->detail.find("spiffe://test.example/ns/prod/sa/client") != std::string::npos);
  }
}

TEST_CASE("server allow_dns: exact and one-label wildcard", "[fast][identity]") {
  TlsConfig scfg = server_config("server", true);
  scfg.allow_dns = {"client.test"};
  CHECK(ours_vs_ours(scfg, client_config("client")).server.ok);
  scfg.allow_dns = {"*.test"};
  CHECK(ours_vs_ours(scfg, client_config("client")).server.ok);
  scfg.allow_dns = {"*.other.test", "other.test"};
  auto out = ours_vs_ours(scfg, client_config("client"));
  REQUIRE(out.server.error.has_value());
  CHECK(out.server.error->code == Code::PeerIdentityDenied);
}

TEST_CASE("client checks the server name against DNS SANs when no allow-list is set", "[fast][identity]") {
  auto ok = ours_vs_ours(server_config(), client_config(), "server.test");
  CHECK(ok.client.ok);
  CHECK(ok.server.info.sni == "server.test");

  auto bad = ours_vs_ours(server_config(), client_config(), "wrong.test");
  REQUIRE(bad.client.error.has_value());
  CHECK(bad.client.error->code == Code::PeerIdentityDenied);
  CHECK(bad.client.error->detail == "server certificate has no DNS SAN matching wrong.test");

  // An IP literal is never sent as SNI, and the certificate has no IP SAN.
  auto ip = ours_vs_ours(server_config(), client_config(), "127.0.0.1");
  REQUIRE(ip.client.error.has_value());
  CHECK(ip.client.error->code == Code::PeerIdentityDenied);

  // Allow-lists replace the name check.
  TlsConfig ccfg = client_config();
  ccfg.allow_spiffe = {"spiffe://test.example/ns/prod/sa/server"};
  CHECK(ours_vs_ours(server_config(), ccfg, "wrong.test").client.ok);
  ccfg.allow_spiffe = {"spiffe://test.example/ns/other/"};
  auto denied = ours_vs_ours(server_config(), ccfg, "server.test");
  REQUIRE(denied.client.error.has_value());
  CHECK(denied.client.error->code == Code::PeerIdentityDenied);
}

TEST_CASE("client refuses a server from another CA and an expired server cert", "[fast][verify]") {
  auto out = ours_vs_ours(server_config("stranger"), client_config());
  REQUIRE(out.client.error.has_value());
  CHECK(out.client.error->code == Code::PeerCertUntrusted);
  REQUIRE(out.server.error.has_value());
  CHECK(out.server.error->code == Code::TlsAlertReceived);
  CHECK(out.server.error->detail.find("(48)") != std::string::npos);  // unknown_ca

  // Our own server context refuses to load an expired certificate (C1): a plain server sends it.
  auto sctx = plain_ctx(pki().path("expired.pem"), pki().path("expired.key"));
  bssl::UniquePtr<SSL> sssl(SSL_new(sctx.get()));
  SSL_set_accept_state(sssl.get());
  auto c = must_build(Role::Client, client_config());
  auto cssl = c->new_ssl("server.test");
  auto expired = handshake_in_memory(cssl.get(), sssl.get());
  REQUIRE(expired.client.error.has_value());
  CHECK(expired.client.error->code == Code::PeerCertExpired);
}

TEST_CASE("ALPN: the server picks the client's first protocol it supports", "[fast][alpn]") {
  TlsConfig scfg = server_config();
  scfg.alpn = {"h2", "http/1.1"};
  TlsConfig ccfg = client_config();
  ccfg.alpn = {"http/1.1", "h2"};
  auto out = ours_vs_ours(scfg, ccfg);
  REQUIRE(out.server.ok);
  CHECK(out.server.info.alpn == "http/1.1");
  CHECK(out.client.info.alpn == "http/1.1");

  ccfg.alpn = {"spdy/3"};
  out = ours_vs_ours(scfg, ccfg);
  REQUIRE(out.server.ok);
  CHECK(out.server.info.alpn.empty());

  scfg.alpn.clear();
  ccfg.alpn = {"h2"};
  out = ours_vs_ours(scfg, ccfg);
  REQUIRE(out.server.ok);
  CHECK(out.server.info.alpn.empty());
}

TEST_CASE("TLS 1.1 client -> tls_protocol_version, a plain server accepts it", "[fast][policy]") {
  auto make_client = [] {
    auto cctx = plain_ctx();
    SSL_CTX_set_min_proto_version(cctx.get(), TLS1_1_VERSION);
    SSL_CTX_set_max_proto_version(cctx.get(), TLS1_1_VERSION);
    return cctx;
  };
  auto cctx = make_client();
  auto s = must_build(Role::Server, server_config());
  auto server = s->new_ssl("");
  bssl::UniquePtr<SSL> client(SSL_new(cctx.get()));
  SSL_set_connect_state(client.get());
  auto out = handshake_in_memory(client.get(), server.get());
  REQUIRE(out.server.error.has_value());
  CHECK(out.server.error->code == Code::TlsProtocolVersion);

  auto sctx = plain_ctx(pki().path("server.pem"), pki().path("server.key"));
  SSL_CTX_set_min_proto_version(sctx.get(), TLS1_1_VERSION);
  bssl::UniquePtr<SSL> pserver(SSL_new(sctx.get()));
  SSL_set_accept_state(pserver.get());
  bssl::UniquePtr<SSL> client2(SSL_new(cctx.get()));
  SSL_set_connect_state(client2.get());
  auto control = handshake_in_memory(client2.get(), pserver.get());
  REQUIRE(control.server.ok);
  CHECK(control.server.info.version == "TLSv1.1");
  // The post-handshake gate flags what the plain server negotiated.
  REQUIRE_FALSE(control.server.negotiated.ok());
  CHECK(control.server.negotiated.error().code == Code::TlsPolicyViolation);
}

TEST_CASE("X25519-only client -> tls_policy_violation, a plain server accepts it (T3)", "[fast][policy]") {
  auto cctx = plain_ctx();
  REQUIRE(SSL_CTX_set1_curves_list(cctx.get(), "X25519") == 1);
  auto s = must_build(Role::Server, server_config());
  auto server = s->new_ssl("");
  bssl::UniquePtr<SSL> client(SSL_new(cctx.get()));
  SSL_set_connect_state(client.get());
  auto out = handshake_in_memory(client.get(), server.get());
  REQUIRE(out.server.error.has_value());
  CHECK(out.server.error->code == Code::TlsPolicyViolation);

  auto sctx = plain_ctx(pki().path("server.pem"), pki().path("server.key"));
  bssl::UniquePtr<SSL> pserver(SSL_new(sctx.get()));
  SSL_set_accept_state(pserver.get());
  bssl::UniquePtr<SSL> client2(SSL_new(cctx.get()));
  SSL_set_connect_state(client2.get());
  auto control = handshake_in_memory(client2.get(), pserver.get());
  REQUIRE(control.server.ok);
  CHECK(control.server.info.group == "X25519");
  REQUIRE_FALSE(control.server.negotiated.ok());
  CHECK(control.server.negotiated.error().detail.find("X25519") != std::string::npos);
}

// ---- leaf profile: X.509 v3, SAN, EKU for the role (issue #5; FIPS-POLICY §8) ----------------

TEST_CASE("own certificates: v3, SAN, EKU for the role, not expired (C1)", "[fast][context][profile]") {
  struct Case {
    std::string leaf;
    Role role;
    std::string reason;  // "" = loads
  };
  const std::vector<Case> cases = {
      {"eku-server", Role::Server, ""},
      {"eku-server", Role::Client, "extended key usage lacks clientAuth (has: serverAuth)"},
      {"eku-client", Role::Client, ""},
      {"eku-client", Role::Server, "extended key usage lacks serverAuth (has: clientAuth)"},
      {"eku-any", Role::Server,
       "extended key usage anyExtendedKeyUsage not allowed on a server certificate (has: anyExtendedKeyUsage,serverAuth)"},
      {"eku-none", Role::Server, ""},
      {"eku-none", Role::Client, ""},
      {"v1", Role::Server, "X.509 v1 certificate not allowed (FIPS policy: v3 only)"},
      {"nosan", Role::Server, "no subjectAltName (FIPS policy: the identity must be in a DNS, IP or URI SAN)"},
      {"expired", Role::Server, "certificate expired"},
      {"expired", Role::Client, "certificate expired"},
  };
  for (const Case& c : cases) {
    TlsConfig cfg = c.role == Role::Server ? server_config(c.leaf) : client_config(c.leaf);
    auto r = build_context(c.role, "x", cfg);
    INFO(c.leaf << (c.role == Role::Server ? " as server" : " as client") << ": " << detail_of(r));
    if (c.reason.empty()) {
      CHECK(r.ok());
    } else {
      REQUIRE_FALSE(r.ok());
      CHECK(r.error().code == Code::CertInvalid);
      CHECK(detail_of(r) == pki().path(c.leaf + ".pem") + ": " + c.reason);
    }
  }
}

TEST_CASE("peer leaf profile: EKU, v1, SAN -> peer_cert_policy, plain BoringSSL accepts v1/no-SAN", "[fast][verify][profile]") {
  // Client certificates presented to our mTLS server (no allow-list: only the profile matters).
  auto server_cfg = server_config("server", true);
  for (const std::string leaf : {"eku-server", "v1", "nosan"}) {
    auto out = plain_client_cert_vs_ours(leaf, server_cfg);
    INFO(leaf);
    REQUIRE(out.server.error.has_value());
    CHECK(out.server.error->code == Code::PeerCertPolicy);
    INFO(out.server.error->detail);
    CHECK(out.server.error->detail.rfind("certificate 0 (", 0) == 0);
  }
  CHECK(plain_client_cert_vs_ours("eku-server", server_cfg).server.error->detail.find("lacks clientAuth") !=
        std::string::npos);
  // Controls: the right EKU, no EKU at all; plain verification accepts v1 and no-SAN leaves.
  CHECK(plain_client_cert_vs_ours("eku-client", server_cfg).server.ok);
  CHECK(plain_client_cert_vs_ours("eku-none", server_cfg).server.ok);
  CHECK(plain_client_cert_vs_plain_mtls("v1").server.ok);
  CHECK(plain_client_cert_vs_plain_mtls("nosan").server.ok);

  // Server certificates seen by our client.
  auto ccfg = client_config();
  for (const std::string leaf : {"eku-client", "eku-any", "v1"}) {
    auto sctx = plain_ctx(pki().path(leaf + ".pem"), pki().path(leaf + ".key"));
    bssl::UniquePtr<SSL> sssl(SSL_new(sctx.get()));
    SSL_set_accept_state(sssl.get());
    auto c = must_build(Role::Client, ccfg);
    auto cssl = c->new_ssl("server.test");
    auto out = handshake_in_memory(cssl.get(), sssl.get());
    INFO(leaf);
    REQUIRE(out.client.error.has_value());
    CHECK(out.client.error->code == Code::PeerCertPolicy);
    INFO(out.client.error->detail);
    if (leaf == "eku-any") CHECK(out.client.error->detail.find("anyExtendedKeyUsage") != std::string::npos);
  }
  auto sctx = plain_ctx(pki().path("eku-server.pem"), pki().path("eku-server.key"));
  bssl::UniquePtr<SSL> sssl(SSL_new(sctx.get()));
  SSL_set_accept_state(sssl.get());
  auto c = must_build(Role::Client, ccfg);
  auto cssl = c->new_ssl("server.test");
  CHECK(handshake_in_memory(cssl.get(), sssl.get()).client.ok);
}
