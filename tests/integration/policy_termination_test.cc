// FIPS-POLICY §11.1 T1–T21: the proxy as TLS server, probed from outside with Debian's openssl 3
// s_client, gnutls-cli and Python's ssl. Every negative has a positive control: the same client
// command against a permissive `openssl s_server` succeeds, so the offer was really made. Each
// negative asserts the failure, the alert where stable, the access-log close_reason and that no
// byte reached the backend (a `record` app).
#include <map>

#include "tests/integration/policy_matrix_support.h"

using namespace fp::test;
using namespace fp::test::policy;

namespace {

struct Term {
  TempDir rec{"fpprec"};
  AppServer app{"tcp:127.0.0.1:0", {"record", rec.path()}};
  PProxy px;
  uint16_t ec = 0, rsa = 0, ext = 0;
  std::string hello;  // what every client sends after its handshake

  Term() {
    REQUIRE(app.ok());
    hello = rec.file("hello.txt.in");
    write_file(hello, "HELLO-POLICY\n");
    ec = free_tcp_port();
    rsa = free_tcp_port();
    ext = free_tcp_port();
    PTls t_ec;
    PTls t_rsa;
    t_rsa.cert = "server-rsa";
    PTls t_ext;
    t_ext.profile = "extended";
    const bool ok = px.start({{"ec", addr(ec), "app", t_ec}, {"rsa", addr(rsa), "app", t_rsa}, {"ext", addr(ext), "app", t_ext}},
                             {{"app", app.endpoint(), std::nullopt}});
    INFO(px.log());
    REQUIRE(ok);
  }
  size_t backend_bytes() const { return recorded_bytes(rec.path()); }
  std::string name_of(uint16_t port) const { return port == ec ? "ec" : port == rsa ? "rsa" : "ext"; }
};

// The permissive control server: ECDSA and RSA certs, every suite and group, SECLEVEL 0, and it
// asks for (but does not insist on) a client certificate.
std::unique_ptr<SServer> control(std::vector<std::string> extra = {}, const std::string& leaf = "server") {
  std::vector<std::string> args = {"-dcert", pp("server-rsa.pem"), "-dkey", pp("server-rsa.key"), "-verify", "1",
                                   "-CAfile", pp("ca.pem")};
  args.insert(args.end(), extra.begin(), extra.end());
  auto s = std::make_unique<SServer>(leaf, args);
  REQUIRE(s->ready());
  return s;
}

// One negative probe with its control. Also asserts the per-reason counter on the admin
// endpoint's /metrics went up by exactly one.
void refused(Term& t, uint16_t port, const std::vector<std::string>& args, int alert, const std::string& reason,
             const std::vector<std::string>& env = {}, SServer* ctl = nullptr) {
  const size_t n = t.px.entries();
  const size_t bytes = t.backend_bytes();
  const std::string key = rejection_key(t.name_of(port), reason);
  const double before = t.px.counter(key);
  Tool r = s_client(port, with_cert(args), env, t.hello);
  INFO("s_client " << args.size() << " args: " << r.status.str() << "\n" << r.all());
  CHECK_FALSE(sc_ok(r));
  if (alert >= 0) CHECK(sc_alert(r) == alert);
  JsonObject e = t.px.entry(n + 1);
  INFO("access log: " << e.raw());
  CHECK(e.str("close_reason") == reason);
  CHECK(e.str("tls_version").empty());
  CHECK(t.backend_bytes() == bytes);
  INFO("metrics: " << key);
  CHECK(t.px.counter_settled(key, before + 1) == before + 1);
  if (ctl != nullptr) {
    Tool c = s_client(ctl->port(), with_cert(args), env, t.hello);
    INFO("control: " << c.status.str() << "\n" << c.all());
    CHECK(sc_ok(c));
  }
}

// A positive probe: the handshake completes and the bytes reach the backend.
Tool accepted(Term& t, uint16_t port, const std::vector<std::string>& args, const std::vector<std::string>& env = {}) {
  const size_t bytes = t.backend_bytes();
  Tool r = s_client(port, with_cert(args), env, t.hello);
  INFO("s_client: " << r.status.str() << "\n" << r.all() << "\nproxy: " << t.px.log());
  CHECK(sc_ok(r));
  CHECK(wait_until([&] { return t.backend_bytes() >= bytes + 13; }, Millis(5000)));
  return r;
}

}  // namespace

TEST_CASE("T1 TLS 1.3 ChaCha20-only offer is refused (alert 40)", "[policy][fast][termination]") {
  Term t;
  auto ctl = control();
  refused(t, t.ec, {"-tls1_3", "-ciphersuites", "TLS_CHACHA20_POLY1305_SHA256"}, 40, "tls13_chacha_refused", {},
          ctl.get());
}

TEST_CASE("T2 ChaCha20 + AES-128-GCM offer ends on AES-128-GCM", "[policy][fast][termination]") {
  Term t;
  const std::vector<std::string> args = {"-tls1_3", "-ciphersuites",
                                         "TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256"};
  Tool r = accepted(t, t.ec, args);
  CHECK(sc_cipher(r) == "TLS_AES_128_GCM_SHA256");
  CHECK(t.px.entry(1).str("cipher") == "TLS_AES_128_GCM_SHA256");
  // Control: a server that honours the client's order picks ChaCha20 for the same offer.
  auto ctl = control();
  Tool c = s_client(ctl->port(), with_cert(args), {}, t.hello);
  CHECK(sc_cipher(c) == "TLS_CHACHA20_POLY1305_SHA256");
}

TEST_CASE("T3 X25519-only offers are refused in TLS 1.3 and 1.2 (alert 40)", "[policy][fast][termination]") {
  Term t;
  auto ctl = control({"-groups", "X25519:P-256:P-384"});
  refused(t, t.ec, {"-tls1_3", "-groups", "X25519"}, 40, "tls_policy_violation", {}, ctl.get());
  refused(t, t.ec, {"-tls1_2", "-groups", "X25519"}, 40, "tls_policy_violation", {}, ctl.get());
}

TEST_CASE("T4 X25519:P-256 offer proceeds on P-256 via HelloRetryRequest", "[policy][fast][termination]") {
  Term t;
  Tool r = accepted(t, t.ec, {"-tls1_3", "-groups", "X25519:P-256", "-trace"});
  // The HelloRetryRequest is a ServerHello whose random is SHA-256("HelloRetryRequest").
  CHECK(r.out.find("gmt_unix_time=0xCF21AD74") != std::string::npos);
  CHECK(r.out.find("Server Temp Key: ECDH, prime256v1") != std::string::npos);
  CHECK(t.px.entry(1).str("group") == "P-256");
}

TEST_CASE("T5 P-521 group: refused in strict, accepted with the extended profile", "[policy][fast][termination]") {
  Term t;
  auto ctl = control({"-groups", "P-521"});
  refused(t, t.ec, {"-groups", "P-521"}, 40, "tls_policy_violation", {}, ctl.get());
  accepted(t, t.ext, {"-groups", "P-521"});
}

TEST_CASE("T6 ffdhe2048 offer is refused (alert 40)", "[policy][fast][termination]") {
  Term t;
  auto ctl = control({"-groups", "ffdhe2048"});
  refused(t, t.ec, {"-tls1_3", "-groups", "ffdhe2048"}, 40, "tls_policy_violation", {}, ctl.get());
}

TEST_CASE("T7 TLS 1.1 and TLS 1.0 are refused (alert 70)", "[policy][fast][termination]") {
  Term t;
  auto ctl = control();
  refused(t, t.ec, {"-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0"}, 70, "tls_protocol_version", {}, ctl.get());
  refused(t, t.ec, {"-tls1", "-cipher", "DEFAULT:@SECLEVEL=0"}, 70, "tls_protocol_version", {}, ctl.get());
}

TEST_CASE("T8 TLS 1.2 ChaCha20 suites are refused (ECDSA and RSA certs)", "[policy][fast][termination]") {
  Term t;
  auto ctl = control();
  refused(t, t.ec, {"-tls1_2", "-cipher", "ECDHE-ECDSA-CHACHA20-POLY1305"}, 40, "tls_policy_violation", {}, ctl.get());
  refused(t, t.rsa, {"-tls1_2", "-cipher", "ECDHE-RSA-CHACHA20-POLY1305"}, 40, "tls_policy_violation", {}, ctl.get());
}

TEST_CASE("T9 TLS 1.2 CBC suites are refused", "[policy][fast][termination]") {
  Term t;
  auto ctl = control();
  refused(t, t.ec, {"-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES128-SHA256"}, 40,
          "tls_policy_violation", {}, ctl.get());
}

TEST_CASE("T10 TLS 1.2 RSA key transport is refused", "[policy][fast][termination]") {
  Term t;
  auto ctl = control();
  refused(t, t.rsa, {"-tls1_2", "-cipher", "AES128-GCM-SHA256"}, 40, "tls_policy_violation", {}, ctl.get());
}

TEST_CASE("T11 TLS 1.2 without Extended Master Secret is refused, T12 TLS 1.3 unaffected", "[policy][fast][termination]") {
  Term t;
  TempDir d("fpems");
  const std::vector<std::string> env = {"OPENSSL_CONF=" + noems_conf(d)};
  auto ctl = control();
  // The control proves the offer: "Extended master secret: no" against the permissive server.
  Tool c = s_client(ctl->port(), with_cert({"-tls1_2"}), env, t.hello);
  INFO(c.all());
  CHECK(sc_ok(c));
  CHECK(c.out.find("Extended master secret: no") != std::string::npos);
  Tool y = s_client(ctl->port(), with_cert({"-tls1_2"}), {}, t.hello);
  CHECK(y.out.find("Extended master secret: yes") != std::string::npos);
  refused(t, t.ec, {"-tls1_2"}, 40, "tls_no_ems", env);
  // T12: the same configuration with TLS 1.3 succeeds.
  accepted(t, t.ec, {"-tls1_3"}, env);
}

TEST_CASE("T13 SHA-1-only signature algorithms are refused (ECDSA and RSA certs)", "[policy][fast][termination]") {
  Term t;
  auto ctl = control();
  refused(t, t.ec, {"-tls1_2", "-sigalgs", "ECDSA+SHA1", "-cipher", "DEFAULT:@SECLEVEL=0"}, 40, "tls_policy_violation",
          {}, ctl.get());
  refused(t, t.rsa, {"-tls1_2", "-sigalgs", "RSA+SHA1", "-cipher", "DEFAULT:@SECLEVEL=0"}, 40, "tls_policy_violation",
          {}, ctl.get());
}

TEST_CASE("T14 ECDSA+SHA512 only: refused in strict, accepted with extended", "[policy][fast][termination]") {
  Term t;
  auto ctl = control();
  refused(t, t.ec, {"-tls1_2", "-sigalgs", "ECDSA+SHA512"}, 40, "tls_policy_violation", {}, ctl.get());
  accepted(t, t.ext, {"-tls1_2", "-sigalgs", "ECDSA+SHA512"});
}

TEST_CASE("T15 ed25519-only signature algorithms are refused (weak: documentation)", "[policy][fast][termination]") {
  Term t;
  auto ctl = std::make_unique<SServer>("p-ed25519", std::vector<std::string>{});
  REQUIRE(ctl->ready());
  refused(t, t.ec, {"-tls1_3", "-sigalgs", "ed25519"}, 40, "tls_policy_violation", {}, ctl.get());
}

TEST_CASE("T16 client-initiated renegotiation dies with no_renegotiation (100)", "[policy][fast][termination]") {
  Term t;
  Process::Options o;
  o.argv = {"openssl", "s_client", "-connect", addr(t.ec), "-tls1_2", "-CAfile", pp("ca.pem"), "-cert",
            pp("client.pem"), "-key", pp("client.key")};
  o.stdin_pipe = true;
  Process p(o);
  REQUIRE(wait_until([&] { return p.read_stdout().find("Cipher is ECDHE") != std::string::npos; }, Millis(10000)));
  p.write_stdin("R\n");
  ExitStatus es = p.wait_exit(Millis(10000));
  const std::string all = p.read_stdout() + p.read_stderr();
  INFO(es.str() << "\n" << all);
  CHECK(all.find("RENEGOTIATING") != std::string::npos);
  CHECK((all.find("alert number 100") != std::string::npos || all.find("no renegotiation") != std::string::npos));
  CHECK(t.px.entry(1).str("tls_version") == "TLSv1.2");
}

// The TLS 1.3 ticket reaches s_client even though it sends nothing: the proxy flushes
// BoringSSL's held NewSessionTicket right after the handshake (proxy/tls_transport.cc).
TEST_CASE("T17 0-RTT: the server never accepts early data", "[policy][fast][termination]") {
  Term t;
  TempDir d("fp0rtt");
  const std::string sess = d.file("sess.pem");
  const std::string early = d.file("early.txt");
  write_file(early, "EARLY-BYTES\n");
  Tool a = s_client_linger(t.ec, with_cert({"-tls1_3", "-sess_out", sess}), t.hello);
  INFO(a.all());
  REQUIRE(sc_ok(a));
  REQUIRE(file_exists(sess));
  // The ticket carries no max_early_data, so OpenSSL does not even send the early data.
  std::string sess_text;
  run_command({"openssl", "sess_id", "-in", sess, "-noout", "-text"}, Millis(5000), &sess_text);
  INFO(sess_text);
  CHECK(sess_text.find("Max Early Data: 0") != std::string::npos);
  Tool b = s_client(t.ec, with_cert({"-tls1_3", "-sess_in", sess, "-early_data", early}), {}, t.hello);
  INFO(b.all());
  CHECK(b.out.find("Reused, TLSv1.3") != std::string::npos);
  CHECK(b.out.find("Early data was accepted") == std::string::npos);
  CHECK(b.out.find("Early data was not sent") != std::string::npos);
  CHECK(read_file(t.rec.path() + "/conn-1.bin").find("EARLY") == std::string::npos);
  int files = 0;
  recorded_bytes(t.rec.path(), &files);
  for (int i = 1; i <= files; ++i) {
    CHECK(read_file(t.rec.path() + "/conn-" + std::to_string(i) + ".bin").find("EARLY-BYTES") == std::string::npos);
  }
}

TEST_CASE("T18 resumption keeps the same suite and group (TLS 1.3 and 1.2 with EMS)",
          "[policy][fast][termination]") {
  Term t;
  TempDir d("fpres");
  for (const std::string v : {"-tls1_3", "-tls1_2"}) {
    const std::string sess = d.file("s" + v);
    Tool a = s_client_linger(t.ec, with_cert({v, "-sess_out", sess}), t.hello);
    REQUIRE(sc_ok(a));
    Tool b = s_client_linger(t.ec, with_cert({v, "-sess_in", sess}), t.hello, "0.1");
    INFO(v << "\n" << b.all());
    CHECK(b.out.find("Reused, ") != std::string::npos);
    CHECK(sc_cipher(b) == sc_cipher(a));
    if (v == "-tls1_2") CHECK(b.out.find("Extended master secret: yes") != std::string::npos);
  }
  // Access log: the resumed connections say so and keep the suite.
  auto v = wait_access_log(t.px.access_log, 4, Millis(5000));
  REQUIRE(v.size() >= 4);
  CHECK(v[1].str("cipher") == v[0].str("cipher"));
}

TEST_CASE("T19 compression: none negotiated", "[policy][fast][termination]") {
  Term t;
  Tool r = s_client(t.ec, with_cert({"-tls1_2", "-comp"}), {}, t.hello);
  INFO(r.all());
  if (!sc_ok(r)) r = s_client(t.ec, with_cert({"-tls1_2"}), {}, t.hello);  // -comp unsupported by this build
  CHECK(sc_ok(r));
  CHECK(r.out.find("Compression: NONE") != std::string::npos);
}

TEST_CASE("T21 client certificates outside the policy are refused, P-256 from the CA is accepted",
          "[policy][fast][termination]") {
  Term t;
  // Control server asks for a client cert and accepts any (-verify, not -Verify).
  auto ctl = control();
  struct Case {
    std::string leaf;
    std::vector<std::string> reasons;  // acceptable close_reason tokens
  };
  // Ed25519 / P-521 certs cannot sign with any scheme our CertificateRequest lists, so OpenSSL
  // sends no certificate at all (peer_cert_missing); the others reach the chain policy.
  const std::vector<Case> cases = {
      {"p-rsa1024", {"peer_cert_policy"}},
      {"p-sha1-leaf", {"peer_cert_policy"}},
      {"p-ed25519", {"peer_cert_policy", "peer_cert_missing"}},
      {"p-p521", {"peer_cert_policy", "peer_cert_missing"}},
      {"p-rsa8192", {"peer_cert_policy"}},
      {"p-eku-server", {"peer_cert_policy"}},
      {"p-v1", {"peer_cert_policy"}},
      {"p-expired", {"peer_cert_expired"}},
      {"other-client", {"peer_cert_untrusted"}},
  };
  for (const Case& c : cases) {
    const std::vector<std::string> args = {"-cert", pp(c.leaf + ".pem"), "-key", pp(c.leaf + ".key"), "-cipher",
                                           "DEFAULT:@SECLEVEL=0"};
    const size_t n = t.px.entries();
    const size_t bytes = t.backend_bytes();
    std::map<std::string, double> before;
    for (const std::string& reason : c.reasons) before[reason] = t.px.counter(rejection_key("ec", reason));
    Tool r = s_client(t.ec, args, {}, t.hello);
    JsonObject e = t.px.entry(n + 1);
    INFO(c.leaf << ": " << r.all() << "\naccess log: " << e.raw());
    CHECK(std::find(c.reasons.begin(), c.reasons.end(), e.str("close_reason")) != c.reasons.end());
    CHECK(t.backend_bytes() == bytes);
    // The counter of the reason logged went up by exactly one.
    if (before.count(e.str("close_reason")) == 1) {
      const std::string key = rejection_key("ec", e.str("close_reason"));
      CHECK(t.px.counter_settled(key, before[e.str("close_reason")] + 1) == before[e.str("close_reason")] + 1);
    }
    if (e.str("close_reason") == "peer_cert_policy") CHECK(!e.str("detail").empty());
    Tool k = s_client(ctl->port(), args, {}, t.hello);
    INFO("control: " << k.all());
    CHECK(sc_ok(k));
  }
  accepted(t, t.ec, {"-tls1_3"});
  accepted(t, t.rsa, {"-tls1_2"});
}

// ---- other client stacks --------------------------------------------------------------------

namespace {

Tool gnutls(uint16_t port, const std::string& priority, const std::string& hello, const std::string& leaf = "client",
            std::vector<std::string> extra = {}) {
  std::vector<std::string> argv = {"gnutls-cli", "--priority", priority, "--x509cafile", pp("ca.pem"),
                                   "--x509certfile", pp(leaf + ".pem"), "--x509keyfile", pp(leaf + ".key"),
                                   "-p", std::to_string(port), "127.0.0.1"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  Tool t;
  t.status = run_command(argv, Millis(15000), &t.out, &t.err, {}, hello);
  return t;
}
bool gnutls_ok(const Tool& t) { return t.out.find("Handshake was completed") != std::string::npos; }

}  // namespace

TEST_CASE("GnuTLS client: ChaCha20, X25519, TLS 1.1 and no-EMS refused, AES-GCM accepted", "[policy][fast][gnutls]") {
  if (!tool_installed("gnutls-cli")) {
    WARN("gnutls-cli not installed (Debian gnutls-bin): skipped");
    return;
  }
  Term t;
  auto ctl = control({"-groups", "X25519:P-256:P-384"});
  struct Case {
    std::string name, priority, reason;
  };
  const std::vector<Case> neg = {
      {"tls13-chacha", "NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:+CHACHA20-POLY1305", "tls13_chacha_refused"},
      {"tls12-chacha", "NORMAL:-VERS-ALL:+VERS-TLS1.2:-CIPHER-ALL:+CHACHA20-POLY1305", "tls_policy_violation"},
      {"x25519", "NORMAL:-GROUP-ALL:+GROUP-X25519", "tls_policy_violation"},
      {"tls11", "NORMAL:-VERS-ALL:+VERS-TLS1.1", "tls_protocol_version"},
      {"no-ems", "NORMAL:-VERS-ALL:+VERS-TLS1.2:%NO_SESSION_HASH", "tls_no_ems"},
  };
  for (const Case& c : neg) {
    const size_t n = t.px.entries();
    const size_t bytes = t.backend_bytes();
    Tool r = gnutls(t.ec, c.priority, t.hello);
    JsonObject e = t.px.entry(n + 1);
    INFO(c.name << ": " << r.status.str() << "\n" << r.all() << "\naccess log: " << e.raw());
    CHECK_FALSE(gnutls_ok(r));
    CHECK(e.str("close_reason") == c.reason);
    CHECK(t.backend_bytes() == bytes);
    Tool k = gnutls(ctl->port(), c.priority, t.hello);
    INFO("control: " << k.all());
    CHECK(gnutls_ok(k));
  }
  for (const std::string p : {"NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:+AES-128-GCM:+AES-256-GCM",
                              "NORMAL:-VERS-ALL:+VERS-TLS1.2:-CIPHER-ALL:+AES-256-GCM"}) {
    const size_t bytes = t.backend_bytes();
    Tool r = gnutls(t.ec, p, t.hello);
    INFO(p << ": " << r.all() << "\n" << t.px.log());
    CHECK(gnutls_ok(r));
    CHECK(r.out.find("AES-") != std::string::npos);
    CHECK(wait_until([&] { return t.backend_bytes() > bytes; }, Millis(5000)));
  }
}

namespace {

// Python's ssl module: one handshake; prints "OK <version> <cipher>" or "ERR <message>".
Tool py(uint16_t port, const std::string& setup) {
  const std::string script =
      "import socket, ssl, sys\n"
      "ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)\n"
      "ctx.load_verify_locations(sys.argv[2])\n"
      "ctx.load_cert_chain(sys.argv[3], sys.argv[4])\n" +
      setup +
      "\ntry:\n"
      "    s = socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=10)\n"
      "    t = ctx.wrap_socket(s, server_hostname='server.example.org')\n"
      "    t.sendall(b'HELLO-POLICY\\n')\n"
      "    print('OK', t.version(), t.cipher()[0])\n"
      "    t.close()\n"
      "except Exception as e:\n"
      "    print('ERR', e)\n";
  Tool t;
  t.status = run_command({"python3", "-c", script, std::to_string(port), pp("ca.pem"), pp("client.pem"),
                          pp("client.key")},
                         Millis(20000), &t.out, &t.err);
  return t;
}

}  // namespace

TEST_CASE("Python ssl client: ChaCha20, TLS 1.1, CBC refused, TLS 1.2/1.3 AES-GCM accepted", "[policy][fast][python]") {
  Term t;
  auto ctl = control();
  struct Case {
    std::string name, setup, reason;
  };
  const std::vector<Case> neg = {
      {"tls12-chacha",
       "ctx.maximum_version = ssl.TLSVersion.TLSv1_2\nctx.set_ciphers('ECDHE-ECDSA-CHACHA20-POLY1305')",
       "tls_policy_violation"},
      {"tls11",
       "ctx.minimum_version = ssl.TLSVersion.TLSv1_1\nctx.maximum_version = ssl.TLSVersion.TLSv1_1\n"
       "ctx.set_ciphers('DEFAULT:@SECLEVEL=0')",
       "tls_protocol_version"},
      {"tls12-cbc", "ctx.maximum_version = ssl.TLSVersion.TLSv1_2\nctx.set_ciphers('ECDHE-ECDSA-AES128-SHA')",
       "tls_policy_violation"},
  };
  for (const Case& c : neg) {
    const size_t n = t.px.entries();
    const size_t bytes = t.backend_bytes();
    Tool r = py(t.ec, c.setup);
    JsonObject e = t.px.entry(n + 1);
    INFO(c.name << ": " << r.all() << "\naccess log: " << e.raw());
    CHECK(r.out.rfind("ERR", 0) == 0);
    CHECK(e.str("close_reason") == c.reason);
    CHECK(t.backend_bytes() == bytes);
    Tool k = py(ctl->port(), c.setup);
    INFO("control: " << k.all());
    CHECK(k.out.rfind("OK", 0) == 0);
  }
  Tool a = py(t.ec, "ctx.minimum_version = ssl.TLSVersion.TLSv1_3");
  INFO(a.all());
  CHECK(a.out.rfind("OK TLSv1.3 TLS_AES_", 0) == 0);
  Tool b = py(t.ec, "ctx.maximum_version = ssl.TLSVersion.TLSv1_2");
  INFO(b.all());
  CHECK(b.out.rfind("OK TLSv1.2 ECDHE-ECDSA-AES", 0) == 0);
}

// T18, second half: "after a policy reload, an old ticket must not resume into a now-disallowed
// parameter" (FIPS-POLICY §8 session resumption: ticket keys rotate when a reload changes the
// policy). A TLS 1.2 session is established on P-521 under `profile = "extended"`; an
// abbreviated TLS 1.2 handshake would reuse that P-521-derived master secret without any new
// key exchange. After SIGHUP switches the same listener to strict (P-256/P-384 only), offering
// that session must give a full handshake ("New,") on an allowed group, never "Reused,".
// Before the reload the same session does resume (the control: the session is resumable).
TEST_CASE("T18 after a reload to strict, a TLS 1.2 session made on P-521 under extended does not resume",
          "[policy][fast][termination]") {
  TempDir rec("fpprec");
  AppServer app("tcp:127.0.0.1:0", {"record", rec.path()});
  REQUIRE(app.ok());
  const std::string hello = rec.file("hello.txt.in");
  write_file(hello, "HELLO-POLICY\n");
  const uint16_t port = free_tcp_port();
  PTls tls;
  tls.profile = "extended";
  PProxy px;
  REQUIRE(px.start({{"rl", addr(port), "app", tls}}, {{"app", app.endpoint(), std::nullopt}}));
  TempDir d("fpres2");
  const std::string sess = d.file("s12");

  Tool a = s_client_linger(port, with_cert({"-tls1_2", "-groups", "P-521:P-256", "-sess_out", sess}), hello);
  INFO("first: " << a.all());
  REQUIRE(sc_ok(a));
  REQUIRE(file_exists(sess));
  CHECK(a.out.find("New, TLSv1.2") != std::string::npos);
  CHECK(px.entry(1).str("group") == "P-521");
  // Control: under the unchanged policy the session resumes.
  Tool b = s_client_linger(port, with_cert({"-tls1_2", "-groups", "P-256:P-521", "-sess_in", sess}), hello, "0.1");
  INFO("control resume: " << b.all());
  CHECK(b.out.find("Reused, TLSv1.2") != std::string::npos);

  tls.profile = "";  // strict: P-521 is now forbidden
  REQUIRE(px.reload({{"rl", addr(port), "app", tls}}, {{"app", app.endpoint(), std::nullopt}}));
  Tool c = s_client_linger(port, with_cert({"-tls1_2", "-groups", "P-256:P-521", "-sess_in", sess}), hello, "0.1");
  INFO("after reload: " << c.all() << "\nproxy: " << px.log());
  CHECK(sc_ok(c));
  CHECK(c.out.find("Reused,") == std::string::npos);
  CHECK(c.out.find("New, TLSv1.2") != std::string::npos);
  JsonObject e = px.entry(3);
  INFO("access log: " << e.raw());
  CHECK(e.str("tls_version") == "TLSv1.2");
  CHECK(e.str("group") == "P-256");
  // And a P-521-only offer is now refused outright.
  Tool f = s_client(port, with_cert({"-tls1_2", "-groups", "P-521", "-sess_in", sess}), {}, hello);
  INFO("P-521 only after reload: " << f.all());
  CHECK_FALSE(sc_ok(f));
  CHECK(px.entry(4).str("close_reason") == "tls_policy_violation");
}
