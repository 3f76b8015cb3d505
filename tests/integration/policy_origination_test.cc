// FIPS-POLICY §11.2 O1–O9 (the proxy as TLS client, upstream = `openssl s_server` with the bad
// offer) and §11.3 C1–C3 (config and certificate load refusals), against the real binary. Each
// bad upstream has a control: a permissive `openssl s_client` completes a handshake with it, so
// the upstream really was configured that way; and no byte of the client's request reaches it.
#include <map>
#include <set>

#include "tests/integration/policy_matrix_support.h"

using namespace fp::test;
using namespace fp::test::policy;

namespace {

const char* kRequest = "HELLO-POLICY\n";

PTls cluster_tls() {
  PTls t;
  t.cert = "client";
  t.sni = "server.example.org";
  t.allow_dns = {"server.example.org"};
  return t;
}

// A plaintext loopback listener in front of a TLS cluster pointing at `upstream_port`.
struct Orig {
  PProxy px;
  uint16_t port = free_tcp_port();
  explicit Orig(uint16_t upstream_port, PTls tls = cluster_tls()) {
    const bool ok = px.start({{"in", addr(port), "up", std::nullopt}}, {{"up", addr(upstream_port), tls}});
    INFO(px.log());
    REQUIRE(ok);
  }
  // The refusal was counted exactly once on /metrics: a refusal by our policy under
  // fipsproxy_tls_policy_rejections_total{cluster="up",role="client",reason=…}; an alert from
  // the upstream (it refused our offer, e.g. O1: we never offer ChaCha20) is not our policy
  // decision and is counted only as a close reason on the upstream side.
  void check_counted(const std::string& reason) const {
    const std::string m = px.metrics();
    INFO("reason " << reason << "\nmetrics:\n" << m);
    if (reason == "tls_alert_received") {
      CHECK(prom_value(m, "fipsproxy_connection_closes_total{listener=\"in\",reason=\"tls_alert_received\",side=\"upstream\"}") == 1);
      CHECK(m.find("fipsproxy_tls_policy_rejections_total{cluster=\"up\"") == std::string::npos);
    } else {
      CHECK(px.counter_settled(rejection_key("up", reason, true), 1) == 1);
    }
  }
  // Sends the request through the proxy; returns what came back before the close.
  ReadResult request() {
    Fd fd = connect_tcp("127.0.0.1", port);
    REQUIRE(fd.valid());
    send_all(fd.get(), kRequest);
    return read_until_close(fd.get(), Millis(8000));
  }
};

// A permissive openssl client (every suite, group and sigalg, SECLEVEL 0) against `port`.
Tool permissive_client(uint16_t port, std::vector<std::string> extra = {}, std::vector<std::string> env = {}) {
  std::vector<std::string> args = {"-cipher", "ALL:@SECLEVEL=0", "-ciphersuites",
                                   "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256",
                                   "-groups", "X25519:P-256:P-384:P-521:ffdhe2048"};
  args.insert(args.end(), extra.begin(), extra.end());
  return s_client(port, args, std::move(env));
}

// One bad upstream: the proxy refuses it, nothing reaches it, the control client can use it.
void upstream_refused(const std::string& leaf, const std::vector<std::string>& server_args,
                      const std::set<std::string>& reasons, const std::vector<std::string>& env = {},
                      const std::vector<std::string>& control_extra = {}) {
  SServer up(leaf, server_args, env);
  REQUIRE(up.ready());
  Tool ctl = permissive_client(up.port(), control_extra);
  INFO("control: " << ctl.all());
  CHECK(sc_ok(ctl));
  Orig o(up.port());
  ReadResult r = o.request();
  JsonObject e = o.px.entry(1);
  INFO("upstream " << leaf << ": " << up.output() << "\naccess log: " << e.raw() << "\nproxy: " << o.px.log());
  CHECK(r.data.empty());
  CHECK(reasons.count(e.str("close_reason")) == 1);
  CHECK(e.str("up_tls_version").empty());
  CHECK(up.output().find("HELLO-POLICY") == std::string::npos);
  o.check_counted(e.str("close_reason"));
}

}  // namespace

TEST_CASE("O0 control: an approved upstream gets the request", "[policy][fast][origination]") {
  SServer up("server", {});
  REQUIRE(up.ready());
  Orig o(up.port());
  o.request();
  CHECK(wait_until([&] { return up.output().find("HELLO-POLICY") != std::string::npos; }, Millis(5000)));
  JsonObject e = o.px.entry(1);
  INFO(e.raw());
  CHECK(e.str("up_tls_version") == "TLSv1.3");
  CHECK(e.str("up_cipher") == "TLS_AES_128_GCM_SHA256");
}

TEST_CASE("O1 ChaCha20-only TLS 1.3 upstream is refused", "[policy][fast][origination]") {
  upstream_refused("server", {"-tls1_3", "-ciphersuites", "TLS_CHACHA20_POLY1305_SHA256"},
                   {"tls_alert_received", "tls13_chacha_refused"});
}

TEST_CASE("O2 X25519-only upstream is refused", "[policy][fast][origination]") {
  upstream_refused("server", {"-groups", "X25519"}, {"tls_alert_received", "tls_policy_violation"});
}

TEST_CASE("O3 TLS 1.1 upstream is refused", "[policy][fast][origination]") {
  upstream_refused("server", {"-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0"}, {"tls_protocol_version", "tls_alert_received"},
                   {}, {"-tls1_1"});
}

TEST_CASE("O4 TLS 1.2 upstream without EMS is refused", "[policy][fast][origination]") {
  TempDir d("fpems");
  const std::vector<std::string> env = {"OPENSSL_CONF=" + noems_conf(d)};
  SServer up("server", {"-tls1_2"}, env);
  REQUIRE(up.ready());
  Tool ctl = permissive_client(up.port(), {"-tls1_2"});
  INFO(ctl.all());
  CHECK(sc_ok(ctl));
  CHECK(ctl.out.find("Extended master secret: no") != std::string::npos);
  Orig o(up.port());
  ReadResult r = o.request();
  JsonObject e = o.px.entry(1);
  INFO(e.raw());
  CHECK(r.data.empty());
  CHECK(e.str("close_reason") == "tls_no_ems");
  CHECK(up.output().find("HELLO-POLICY") == std::string::npos);
  o.check_counted("tls_no_ems");
}

TEST_CASE("O5 upstream limited to RSA+SHA1 signatures is refused", "[policy][fast][origination]") {
  upstream_refused("server-rsa", {"-tls1_2", "-sigalgs", "RSA+SHA1", "-cipher", "DEFAULT:@SECLEVEL=0"},
                   {"tls_alert_received", "tls_policy_violation"}, {}, {"-sigalgs", "RSA+SHA1"});
}

TEST_CASE("O6 upstream leaf (or intermediate) signed with SHA-1 is refused", "[policy][fast][origination]") {
  upstream_refused("p-sha1-leaf", {}, {"peer_cert_policy"});
  // A SHA-256 leaf under a SHA-1-signed intermediate (s_server sends the chain).
  upstream_refused("p-under-sha1-int", {"-cert_chain", pp("p-sha1-int.pem")}, {"peer_cert_policy"});
}

TEST_CASE("O7 upstream RSA-1024, RSA-8192, Ed25519, P-521 leaves are refused (strict)", "[policy][fast][origination]") {
  upstream_refused("p-rsa1024", {}, {"peer_cert_policy"});
  upstream_refused("p-rsa8192", {}, {"peer_cert_policy"});
  // Ed25519 / P-521 (TLS 1.3) cannot sign with any scheme we offer: the upstream gives up first.
  upstream_refused("p-ed25519", {}, {"peer_cert_policy", "tls_alert_received"});
  upstream_refused("p-p521", {}, {"peer_cert_policy", "tls_alert_received"});
  upstream_refused("p-p521", {"-tls1_2"}, {"peer_cert_policy", "tls_alert_received"});
  // Wrong EKU, anyExtendedKeyUsage, v1, expired, untrusted CA.
  upstream_refused("p-eku-client", {}, {"peer_cert_policy"});
  upstream_refused("p-eku-any", {}, {"peer_cert_policy"});
  upstream_refused("p-v1", {}, {"peer_cert_policy"});
  upstream_refused("p-expired", {}, {"peer_cert_expired"});
  upstream_refused("p-other-ca", {}, {"peer_cert_untrusted"});
}

namespace {

struct HelloTrace {
  bool found = false;
  std::vector<unsigned> ciphers, exts, groups, sigalgs;
};

// The first ClientHello in `openssl s_server -trace` output.
HelloTrace parse_trace(const std::string& text) {
  HelloTrace h;
  std::istringstream in(text);
  std::string line, section;
  bool inside = false;
  static const std::regex cipher(R"(\{0x([0-9A-Fa-f]{2}), 0x([0-9A-Fa-f]{2})\})");
  static const std::regex ext(R"(extension_type=[^(]*\((\d+)\))");
  static const std::regex group(R"(\((\d+)\)\s*$)");
  static const std::regex sigalg(R"(\(0x([0-9a-fA-F]{4})\)\s*$)");
  std::smatch m;
  while (std::getline(in, line)) {
    if (!inside) {
      if (line.find("ClientHello, Length") != std::string::npos) inside = h.found = true;
      continue;
    }
    if (line.find("Received Record") != std::string::npos || line.find("Sent Record") != std::string::npos) break;
    if (std::regex_search(line, m, ext)) {
      const unsigned e = static_cast<unsigned>(std::stoul(m[1]));
      h.exts.push_back(e);
      section = e == 10 ? "groups" : e == 13 ? "sigalgs" : "other";
      continue;
    }
    if (line.find("cipher_suites") != std::string::npos) section = "ciphers";
    if (line.find("compression_methods") != std::string::npos) section = "other";
    if (section == "ciphers" && std::regex_search(line, m, cipher)) {
      h.ciphers.push_back(static_cast<unsigned>(std::stoul(m[1].str() + m[2].str(), nullptr, 16)));
    } else if (section == "groups" && std::regex_search(line, m, group)) {
      h.groups.push_back(static_cast<unsigned>(std::stoul(m[1])));
    } else if (section == "sigalgs" && std::regex_search(line, m, sigalg)) {
      h.sigalgs.push_back(static_cast<unsigned>(std::stoul(m[1], nullptr, 16)));
    }
  }
  return h;
}

bool subset(const std::vector<unsigned>& v, const std::set<unsigned>& allowed) {
  for (unsigned x : v) {
    if (!allowed.count(x)) return false;
  }
  return true;
}
bool contains(const std::vector<unsigned>& v, unsigned x) { return std::find(v.begin(), v.end(), x) != v.end(); }

}  // namespace

TEST_CASE("O8 our ClientHello offers exactly the allowed suites, groups, sigalgs, with EMS and RI",
          "[policy][fast][origination]") {
  for (const std::string profile : {"", "extended"}) {
    SServer up("server", {"-trace"});
    REQUIRE(up.ready());
    PTls tls = cluster_tls();
    tls.profile = profile;
    Orig o(up.port(), tls);
    o.request();
    REQUIRE(wait_until([&] { return up.output().find("HELLO-POLICY") != std::string::npos; }, Millis(5000)));
    HelloTrace h = parse_trace(up.output());
    INFO("profile '" << profile << "'\n" << up.output().substr(0, 6000));
    REQUIRE(h.found);
    CHECK(subset(h.ciphers, {0x1301, 0x1302, 0xC02B, 0xC02F, 0xC02C, 0xC030}));
    CHECK_FALSE(contains(h.ciphers, 0x1303));
    CHECK(h.ciphers.size() == 6);
    if (profile.empty()) {
      CHECK(subset(h.groups, {23, 24}));
      CHECK(subset(h.sigalgs, {0x0403, 0x0503, 0x0804, 0x0805, 0x0806, 0x0401, 0x0501, 0x0601}));
      CHECK(h.sigalgs.size() == 8);
    } else {
      CHECK(subset(h.groups, {23, 24, 25}));
      CHECK(contains(h.groups, 25));
      CHECK(subset(h.sigalgs, {0x0403, 0x0503, 0x0603, 0x0804, 0x0805, 0x0806, 0x0401, 0x0501, 0x0601}));
      CHECK(h.sigalgs.size() == 9);
    }
    CHECK(contains(h.groups, 23));
    CHECK(contains(h.exts, 23));     // extended_master_secret
    CHECK(contains(h.exts, 65281));  // renegotiation_info
    CHECK_FALSE(contains(h.exts, 42));  // early_data
  }
}

TEST_CASE("O9 a HelloRequest from a TLS 1.2 upstream does not renegotiate", "[policy][fast][origination]") {
  SServer up("server", {"-tls1_2", "-trace"});
  REQUIRE(up.ready());
  Orig o(up.port());
  Fd fd = connect_tcp("127.0.0.1", o.port);
  REQUIRE(fd.valid());
  send_all(fd.get(), kRequest);
  REQUIRE(wait_until([&] { return up.output().find("HELLO-POLICY") != std::string::npos; }, Millis(5000)));
  up.proc().write_stdin("R\n");  // s_server: send a HelloRequest
  wait_until([&] { return up.output().find("HelloRequest") != std::string::npos; }, Millis(3000));
  wait_until([] { return false; }, Millis(500));
  const std::string out = up.output();
  INFO(out.substr(0, 8000));
  CHECK(out.find("HelloRequest") != std::string::npos);
  // Exactly one ClientHello: no second handshake.
  size_t hellos = 0;
  for (size_t p = out.find("ClientHello, Length"); p != std::string::npos; p = out.find("ClientHello, Length", p + 1)) ++hellos;
  CHECK(hellos == 1);
}

// ---- C1–C3: configuration and load --------------------------------------------------------------

namespace {

struct CheckRun {
  Tool check, run;
};

// `fipsproxy check -c` and `fipsproxy run -c` on a config whose listener uses `leaf`.
CheckRun load_with(const std::string& leaf, const std::string& profile = "", const std::string& chain = "") {
  TempDir d("fpc");
  PTls t;
  t.cert = leaf;
  t.profile = profile;
  t.chain_file = chain;
  const uint16_t port = free_tcp_port();
  const std::string cfg = d.file("proxy.toml");
  write_file(cfg, render(d.file("access.log"), {{"in", addr(port), "app", t}}, {{"app", "127.0.0.1:9", std::nullopt}}));
  CheckRun r;
  r.check.status = run_command({proxy_binary(), "check", "-c", cfg}, Millis(15000), &r.check.out, &r.check.err);
  r.run.status = run_command({proxy_binary(), "run", "-c", cfg}, Millis(15000), &r.run.out, &r.run.err);
  Fd fd = connect_tcp("127.0.0.1", port, Millis(300));
  CHECK_FALSE(fd.valid());  // never bound
  return r;
}

}  // namespace

TEST_CASE("C1 own certificates with non-approved keys are refused at load", "[policy][fast][config]") {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"p-rsa1024", "RSA key 1024 bits not allowed (FIPS policy: 2048/3072/4096)"},
      {"p-rsa8192", "RSA key 8192 bits not allowed (FIPS policy: 2048/3072/4096)"},
      {"p-ed25519", "Ed25519 key not allowed (FIPS policy: RSA or ECDSA)"},
      {"p-p224", "EC P-224 key not allowed (FIPS policy: P-256/P-384)"},
      {"p-p521", "EC P-521 key not allowed (FIPS policy: P-256/P-384)"},
      {"p-eku-client", "extended key usage lacks serverAuth (has: clientAuth)"},
      {"p-eku-any", "anyExtendedKeyUsage not allowed on a server certificate"},
      {"p-v1", "X.509 v1 certificate not allowed (FIPS policy: v3 only)"},
      {"p-expired", "certificate expired"},
  };
  for (const auto& [leaf, reason] : cases) {
    CheckRun r = load_with(leaf);
    INFO(leaf << "\ncheck: " << r.check.status.str() << " " << r.check.all() << "\nrun: " << r.run.status.str() << " "
              << r.run.all());
    CHECK((r.check.status.exited && r.check.status.code == 2));
    CHECK(r.check.err.find(pp(leaf + ".pem") + ": ") != std::string::npos);
    CHECK(r.check.err.find(reason) != std::string::npos);
    CHECK((r.run.status.exited && r.run.status.code == 2));
    CHECK(r.run.err.find(reason) != std::string::npos);
  }
  // Controls: every approved key size loads; P-521 loads with the extended profile.
  for (const std::string leaf : {"p-rsa2048", "p-rsa3072", "p-rsa4096", "p-p256", "p-p384", "p-eku-server"}) {
    TempDir d("fpc");
    PTls t;
    t.cert = leaf;
    const std::string cfg = d.file("proxy.toml");
    write_file(cfg, render(d.file("a.log"), {{"in", addr(free_tcp_port()), "app", t}}, {{"app", "127.0.0.1:9", std::nullopt}}));
    Tool c;
    c.status = run_command({proxy_binary(), "check", "-c", cfg}, Millis(15000), &c.out, &c.err);
    INFO(leaf << ": " << c.all());
    CHECK(c.exited0());
  }
  TempDir d("fpc");
  PTls t;
  t.cert = "p-p521";
  t.profile = "extended";
  const std::string cfg = d.file("proxy.toml");
  write_file(cfg, render(d.file("a.log"), {{"in", addr(free_tcp_port()), "app", t}}, {{"app", "127.0.0.1:9", std::nullopt}}));
  Tool c;
  c.status = run_command({proxy_binary(), "check", "-c", cfg}, Millis(15000), &c.out, &c.err);
  INFO(c.all());
  CHECK(c.exited0());
}

TEST_CASE("C2 config naming non-approved parameters is refused with file:line:key", "[policy][fast][config]") {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"ciphers = [\"TLS_CHACHA20_POLY1305_SHA256\"]", "ciphers"},
      {"groups = [\"X25519\"]", "groups"},
      {"sigalgs = [\"rsa_pkcs1_sha1\"]", "sigalgs"},
      {"min_version = \"1.1\"", "min_version"},
      {"early_data = true", "early_data"},
  };
  for (const auto& [line, key] : cases) {
    TempDir d("fpc2");
    PTls t;
    std::string cfg_text = render(d.file("a.log"), {{"in", addr(free_tcp_port()), "app", t}},
                                  {{"app", "127.0.0.1:9", std::nullopt}});
    // Insert the line at the end of the [listener.tls] table.
    const size_t at = cfg_text.find("\n[[cluster]]");
    REQUIRE(at != std::string::npos);
    cfg_text.insert(at, "\n  " + line + "\n");
    const std::string cfg = d.file("proxy.toml");
    write_file(cfg, cfg_text);
    // The line number of the inserted key.
    size_t lineno = 1;
    for (size_t i = 0; i < cfg_text.find("  " + line); ++i) lineno += cfg_text[i] == '\n';
    Tool c;
    c.status = run_command({proxy_binary(), "check", "-c", cfg}, Millis(15000), &c.out, &c.err);
    INFO(line << ": " << c.status.str() << " " << c.all());
    CHECK((c.status.exited && c.status.code == 2));
    CHECK(c.err.find(cfg + ":" + std::to_string(lineno) + ":") != std::string::npos);
    CHECK(c.err.find("listener[0].tls." + key) != std::string::npos);
  }
}

TEST_CASE("C3 own leaf or intermediate signed with SHA-1 is refused at load", "[policy][fast][config]") {
  CheckRun r = load_with("p-sha1-leaf");
  INFO(r.check.all());
  CHECK((r.check.status.exited && r.check.status.code == 2));
  CHECK(r.check.err.find(pp("p-sha1-leaf.pem") + ": signature algorithm ecdsa-with-SHA1 not allowed") != std::string::npos);
  CheckRun c = load_with("p-under-sha1-int", "", "p-under-sha1-int-chain.pem");
  INFO(c.check.all());
  CHECK((c.check.status.exited && c.check.status.code == 2));
  CHECK(c.check.err.find("chain certificate 1 (") != std::string::npos);
  CHECK(c.check.err.find("ecdsa-with-SHA1 not allowed") != std::string::npos);
}
