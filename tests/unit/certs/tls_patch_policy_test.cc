// The libssl patch policies against real peers (FIPS-POLICY §11 T1, T2, T11, O1, O4, O8): TLS 1.3
// ChaCha20 and TLS 1.2 without EMS. Peers are Debian's `openssl` (OpenSSL 3) over loopback, and
// plain BoringSSL contexts in memory. Each negative case has a control that succeeds against a
// plain (unpatched-behaviour) context, proving the peer really made that offer.

#include <openssl/ssl.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <vector>

#include "certs/libssl_patch.h"
#include "certs/tls_context.h"
#include "tests/support/support.h"
#include "tests/unit/certs/test_pki.h"
#include "tests/unit/certs/tls_harness.h"

using namespace fp::certs;
using namespace fp::certs::testing;
using fp::Code;
using fp::test::Millis;

namespace {

struct ToolRun {
  fp::test::ExitStatus status;
  std::string out, err;
  std::string all() const { return out + err; }
};

// openssl s_client against 127.0.0.1:port (stdin /dev/null: it quits after the handshake).
ToolRun s_client(uint16_t port, std::vector<std::string> args, std::vector<std::string> env = {}) {
  std::vector<std::string> argv = {"openssl", "s_client", "-connect", "127.0.0.1:" + std::to_string(port),
                                   "-servername", "server.test"};
  argv.insert(argv.end(), args.begin(), args.end());
  ToolRun r;
  r.status = fp::test::run_command(argv, Millis(15000), &r.out, &r.err, env);
  return r;
}

// Our server (or a plain one) vs one s_client run.
struct ServerRun {
  Outcome server;
  ToolRun client;
};
ServerRun serve_once(std::shared_ptr<const TlsContext> ours, std::vector<std::string> args,
                     std::vector<std::string> env = {}) {
  auto plain = plain_ctx(pki().path("server.pem"), pki().path("server.key"));
  LoopbackServer server(std::move(ours), plain.get());
  ServerRun r;
  r.client = s_client(server.port(), std::move(args), std::move(env));
  r.server = server.finish();
  return r;
}

// openssl s_server on a fresh port, one connection; `client` is handshaken against it.
Outcome connect_to_s_server(SSL* client, std::vector<std::string> args, std::vector<std::string> env = {}) {
  const uint16_t port = fp::test::free_tcp_port();
  REQUIRE(port != 0);
  fp::test::Process::Options o;
  o.argv = {"openssl", "s_server", "-4", "-accept", std::to_string(port), "-naccept", "1",
            "-cert", pki().path("server.pem"), "-key", pki().path("server.key")};
  o.argv.insert(o.argv.end(), args.begin(), args.end());
  o.env = std::move(env);
  o.stdin_pipe = true;  // s_server reads commands from stdin; keep it open
  fp::test::Process proc(o);
  REQUIRE(proc.started());
  const bool listening = fp::test::wait_until(
      [&] { return proc.read_stdout().find("ACCEPT") != std::string::npos; }, Millis(10000));
  INFO(proc.read_stderr());
  REQUIRE(listening);
  Outcome out = connect_and_handshake(client, port);
  proc.terminate();
  return out;
}

std::shared_ptr<const TlsContext> our_server() { return must_build(Role::Server, server_config()); }
std::shared_ptr<const TlsContext> our_client() { return must_build(Role::Client, client_config()); }

}  // namespace

// ---- (a) T1: TLS 1.3 client offering only ChaCha20 ---------------------------------------------

TEST_CASE("T1: TLS 1.3 client offering only ChaCha20 is refused with handshake_failure", "[slow][patch]") {
  const std::vector<std::string> args = {"-tls1_3", "-ciphersuites", "TLS_CHACHA20_POLY1305_SHA256"};
  auto r = serve_once(our_server(), args);
  INFO(r.client.all());
  REQUIRE_FALSE(r.server.ok);
  CHECK(r.server.refusal == kRefusalTls13ChachaOfferedOnly);
  REQUIRE(r.server.error.has_value());
  CHECK(r.server.error->code == Code::TlsChacha);
  CHECK(r.client.all().find("alert handshake failure") != std::string::npos);  // alert 40
  CHECK(r.client.out.find("Cipher is TLS_CHACHA20_POLY1305_SHA256") == std::string::npos);

  // Control: the same client against a plain BoringSSL server negotiates ChaCha20.
  auto control = serve_once(nullptr, args);
  INFO(control.client.all());
  REQUIRE(control.server.ok);
  CHECK(control.server.info.cipher == "TLS_CHACHA20_POLY1305_SHA256");
  CHECK(control.client.out.find("Cipher is TLS_CHACHA20_POLY1305_SHA256") != std::string::npos);
  CHECK(control.server.refusal == 0);
  // The post-handshake gate would have caught it too.
  CHECK_FALSE(control.server.negotiated.ok());
}

// ---- (b) T2: ChaCha20 first, then AES-128-GCM ----------------------------------------------------

TEST_CASE("T2: client preferring ChaCha20 then AES-128-GCM gets TLS_AES_128_GCM_SHA256", "[slow][patch]") {
  const std::vector<std::string> args = {"-tls1_3", "-ciphersuites",
                                         "TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256"};
  auto r = serve_once(our_server(), args);
  INFO(r.client.all());
  REQUIRE(r.server.ok);
  CHECK(r.server.info.cipher == "TLS_AES_128_GCM_SHA256");
  CHECK(r.client.out.find("Cipher is TLS_AES_128_GCM_SHA256") != std::string::npos);
  CHECK(r.server.negotiated.ok());

  auto control = serve_once(nullptr, args);
  REQUIRE(control.server.ok);
  CHECK(control.server.info.cipher == "TLS_CHACHA20_POLY1305_SHA256");
}

// ---- (c) O8/O1: our ClientHello offers no ChaCha20; a ChaCha-preferring server ends on AES-GCM ---

namespace {
std::vector<uint16_t> g_seen_suites;
bool g_seen_ems = false;

ssl_select_cert_result_t record_client_hello(const SSL_CLIENT_HELLO* hello) {
  g_seen_suites.clear();
  for (size_t i = 0; i + 1 < hello->cipher_suites_len; i += 2) {
    g_seen_suites.push_back(static_cast<uint16_t>(hello->cipher_suites[i] << 8 | hello->cipher_suites[i + 1]));
  }
  const uint8_t* data = nullptr;
  size_t len = 0;
  g_seen_ems = SSL_early_callback_ctx_extension_get(hello, 0x0017, &data, &len) == 1;
  return ssl_select_cert_success;
}

std::vector<uint16_t> client_hello_suites(SSL* client, bool* ems) {
  auto sctx = plain_ctx(pki().path("server.pem"), pki().path("server.key"));
  SSL_CTX_set_select_certificate_cb(sctx.get(), record_client_hello);
  bssl::UniquePtr<SSL> server(SSL_new(sctx.get()));
  SSL_set_accept_state(server.get());
  g_seen_suites.clear();
  auto out = handshake_in_memory(client, server.get());
  CHECK(out.server.ok);
  *ems = g_seen_ems;
  return g_seen_suites;
}
}  // namespace

TEST_CASE("O8: our ClientHello offers only allowed suites (no ChaCha20) and EMS", "[fast][patch]") {
  auto c = our_client();
  auto client = c->new_ssl("server.test");
  bool ems = false;
  const auto suites = client_hello_suites(client.get(), &ems);
  const std::vector<uint16_t> allowed = {0x1301, 0x1302, 0xC02B, 0xC02F, 0xC02C, 0xC030};
  REQUIRE_FALSE(suites.empty());
  for (uint16_t s : suites) {
    INFO("suite " << s);
    CHECK(std::find(allowed.begin(), allowed.end(), s) != allowed.end());
  }
  CHECK(std::find(suites.begin(), suites.end(), 0x1303) == suites.end());
  CHECK(std::find(suites.begin(), suites.end(), 0x1301) != suites.end());
  CHECK(ems);

  // Control: a plain BoringSSL client offers ChaCha20 in the same probe.
  auto pctx = plain_ctx();
  bssl::UniquePtr<SSL> plain(SSL_new(pctx.get()));
  SSL_set_connect_state(plain.get());
  const auto plain_suites = client_hello_suites(plain.get(), &ems);
  CHECK(std::find(plain_suites.begin(), plain_suites.end(), 0x1303) != plain_suites.end());
}

TEST_CASE("O1: a server preferring ChaCha20 still ends on AES-GCM with our client", "[slow][patch]") {
  const std::vector<std::string> args = {"-tls1_3", "-serverpref", "-ciphersuites",
                                         "TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256"};
  auto c = our_client();
  auto client = c->new_ssl("server.test");
  Outcome ours = connect_to_s_server(client.get(), args);
  REQUIRE(ours.ok);
  CHECK(ours.info.cipher == "TLS_AES_128_GCM_SHA256");
  CHECK(ours.negotiated.ok());

  auto pctx = plain_ctx();
  bssl::UniquePtr<SSL> plain(SSL_new(pctx.get()));
  SSL_set_connect_state(plain.get());
  Outcome control = connect_to_s_server(plain.get(), args);
  REQUIRE(control.ok);
  CHECK(control.info.cipher == "TLS_CHACHA20_POLY1305_SHA256");
}

TEST_CASE("O1: a ChaCha20-only TLS 1.3 server is refused, a plain client connects", "[slow][patch]") {
  const std::vector<std::string> args = {"-tls1_3", "-ciphersuites", "TLS_CHACHA20_POLY1305_SHA256"};
  auto c = our_client();
  auto client = c->new_ssl("server.test");
  Outcome ours = connect_to_s_server(client.get(), args);
  REQUIRE_FALSE(ours.ok);
  REQUIRE(ours.error.has_value());
  INFO(ours.error->message());
  CHECK(ours.error->code == Code::TlsAlertReceived);  // the server found no shared cipher

  auto pctx = plain_ctx();
  bssl::UniquePtr<SSL> plain(SSL_new(pctx.get()));
  SSL_set_connect_state(plain.get());
  Outcome control = connect_to_s_server(plain.get(), args);
  REQUIRE(control.ok);
  CHECK(control.info.cipher == "TLS_CHACHA20_POLY1305_SHA256");
}

// ---- (d) T11/O4: TLS 1.2 without Extended Master Secret ------------------------------------------

TEST_CASE("T11: TLS 1.2 client without EMS is refused by our server", "[slow][patch][ems]") {
  const std::vector<std::string> noems_env = {"OPENSSL_CONF=" + noems_openssl_conf()};
  const std::vector<std::string> args = {"-tls1_2"};
  auto r = serve_once(our_server(), args, noems_env);
  INFO(r.client.all());
  REQUIRE_FALSE(r.server.ok);
  CHECK(r.server.refusal == kRefusalNoEms);
  REQUIRE(r.server.error.has_value());
  CHECK(r.server.error->code == Code::TlsNoEms);
  CHECK(r.client.all().find("alert handshake failure") != std::string::npos);

  // Control 1: the same client *with* EMS succeeds against our server.
  auto with_ems = serve_once(our_server(), args);
  INFO(with_ems.client.all());
  REQUIRE(with_ems.server.ok);
  CHECK(with_ems.server.extms);
  CHECK(with_ems.client.out.find("Extended master secret: yes") != std::string::npos);
  // Control 2: a plain server accepts the no-EMS client, and it really had no EMS.
  auto plain = serve_once(nullptr, args, noems_env);
  INFO(plain.client.all());
  REQUIRE(plain.server.ok);
  CHECK_FALSE(plain.server.extms);
  CHECK(plain.client.out.find("Extended master secret: no") != std::string::npos);
  CHECK_FALSE(plain.server.negotiated.ok());  // the post-handshake gate flags it as well
}

TEST_CASE("O4: TLS 1.2 server without EMS is refused by our client", "[slow][patch][ems]") {
  const std::vector<std::string> noems_env = {"OPENSSL_CONF=" + noems_openssl_conf()};
  const std::vector<std::string> args = {"-tls1_2"};
  {
    auto c = our_client();
    auto client = c->new_ssl("server.test");
    Outcome ours = connect_to_s_server(client.get(), args, noems_env);
    REQUIRE_FALSE(ours.ok);
    CHECK(ours.refusal == kRefusalNoEms);
    REQUIRE(ours.error.has_value());
    CHECK(ours.error->code == Code::TlsNoEms);
  }
  {
    // Control 1: the same server with EMS is accepted.
    auto c = our_client();
    auto client = c->new_ssl("server.test");
    Outcome ours = connect_to_s_server(client.get(), args);
    REQUIRE(ours.ok);
    CHECK(ours.extms);
    CHECK(ours.info.version == "TLSv1.2");
  }
  {
    // Control 2: a plain client accepts the no-EMS server.
    auto pctx = plain_ctx();
    bssl::UniquePtr<SSL> plain(SSL_new(pctx.get()));
    SSL_set_connect_state(plain.get());
    Outcome control = connect_to_s_server(plain.get(), args, noems_env);
    REQUIRE(control.ok);
    CHECK_FALSE(control.extms);
  }
}
