// `fipsproxy check -c FILE --explain` (issue #6): the effective TLS policy per listener and
// cluster, and a digest that changes with the certificate and is stable otherwise.

#include <catch2/catch.hpp>

#include <string>

#include "tests/support/harness.h"

using namespace fp::test;
using namespace std::chrono_literals;

namespace {

struct Explained {
  ExitStatus status;
  std::string out, err;
};

Explained explain(const TempDir& dir, const std::string& cfg, bool json = false) {
  const std::string path = dir.file("explain.toml");
  write_file(path, cfg);
  Explained e;
  std::vector<std::string> argv = {proxy_binary(), "check", "-c", path, "--explain"};
  if (json) argv.push_back("--json");
  e.status = run_command(argv, 30s, &e.out, &e.err);
  return e;
}

std::string config(const std::string& server_cert, const std::string& listener_name = "inbound") {
  return "[[listener]]\nname = \"" + listener_name +
         "\"\naddress = \"127.0.0.1:0\"\ncluster = \"app\"\n  [listener.tls]\n  cert = \"" + cert(server_cert + ".pem") +
         "\"\n  key = \"" + cert(server_cert + ".key") + "\"\n  ca = \"" + cert("ca.pem") +
         "\"\n  allow_spiffe = [\"spiffe://example.org/ns/default/sa/client\"]\n  alpn = [\"h2\", \"http/1.1\"]\n"
         "[[cluster]]\nname = \"app\"\nendpoints = [\"server.example.org:9443\"]\n  [cluster.tls]\n  cert = \"" +
         cert("client.pem") + "\"\n  key = \"" + cert("client.key") + "\"\n  ca = \"" + cert("ca.pem") +
         "\"\n  sni = \"server.example.org\"\n  profile = \"tls12-only\"\n";
}

// The value of "  KEY: value" in the block that starts with `header`.
std::string field(const std::string& out, const std::string& header, const std::string& key) {
  size_t at = out.find(header + "\n");
  if (at == std::string::npos) return "<no block " + header + ">";
  size_t end = out.find("\n\n", at);
  const std::string block = out.substr(at, end == std::string::npos ? std::string::npos : end - at);
  size_t k = block.find("\n  " + key + ": ");
  if (k == std::string::npos) return "<no " + key + ">";
  k += 3 + key.size() + 2;
  return block.substr(k, block.find('\n', k) - k);
}

}  // namespace

TEST_CASE("check --explain prints the effective policy per listener and cluster", "[fast][explain]") {
  TempDir dir("fpexp");
  Explained e = explain(dir, config("server"));
  INFO(e.out << e.err);
  REQUIRE(e.status.exited);
  REQUIRE(e.status.code == 0);
  const std::string& o = e.out;
  CHECK(field(o, "listener inbound", "role") == "server (TLS termination)");
  CHECK(field(o, "listener inbound", "profile") == "strict");
  CHECK(field(o, "listener inbound", "versions") == "TLS 1.2, TLS 1.3");
  // An ECDSA server certificate: only the ECDSA TLS 1.2 suites can be negotiated.
  CHECK(field(o, "listener inbound", "tls1.2 suites") == "ECDHE-ECDSA-AES128-GCM-SHA256, ECDHE-ECDSA-AES256-GCM-SHA384");
  CHECK(field(o, "listener inbound", "tls1.3 suites") == "TLS_AES_128_GCM_SHA256, TLS_AES_256_GCM_SHA384");
  CHECK(field(o, "listener inbound", "groups") == "P-256, P-384");
  CHECK(field(o, "listener inbound", "sigalgs").find("ecdsa_secp256r1_sha256") != std::string::npos);
  CHECK(field(o, "listener inbound", "sigalgs").find("sha1") == std::string::npos);
  CHECK(field(o, "listener inbound", "extended master secret") == "required");
  CHECK(field(o, "listener inbound", "renegotiation") == "off");
  CHECK(field(o, "listener inbound", "0-RTT") == "off");
  CHECK(field(o, "listener inbound", "client certificate") == "required");
  CHECK(field(o, "listener inbound", "allow_spiffe") == "spiffe://example.org/ns/default/sa/client");
  CHECK(field(o, "listener inbound", "alpn") == "h2, http/1.1");
  CHECK(field(o, "listener inbound", "crl") == "(none: revocation is not checked)");
  CHECK(o.find("CN=server.example.org,O=fipsproxy tests; EC P-256; signed SHA-256; not after ") != std::string::npos);
  CHECK(o.find("CN=fipsproxy test CA,O=fipsproxy tests; EC P-256; self-signed SHA-256") != std::string::npos);
  CHECK(field(o, "listener inbound", "digest").size() == 16);

  CHECK(field(o, "cluster app", "role") == "client (TLS origination)");
  CHECK(field(o, "cluster app", "profile") == "tls12-only");
  CHECK(field(o, "cluster app", "versions") == "TLS 1.2");
  CHECK(field(o, "cluster app", "tls1.3 suites") == "(none)");
  CHECK(field(o, "cluster app", "sni") == "server.example.org");
  CHECK(field(o, "cluster app", "client certificate") == "presented");
  CHECK(o.find("config digest: ") != std::string::npos);
  CHECK(o.find(": ok (1 listener(s), 1 cluster(s))") != std::string::npos);

  // --json: one object with the same digest.
  Explained j = explain(dir, config("server"), true);
  INFO(j.out << j.err);
  REQUIRE(j.status.code == 0);
  auto obj = JsonObject::parse(j.out);
  REQUIRE(obj);
  const std::string cfg_digest = o.substr(o.find("config digest: ") + 15, 16);
  CHECK(obj->str("digest") == cfg_digest);
  CHECK(j.out.find("\"tls12_suites\":[\"ECDHE-ECDSA-AES128-GCM-SHA256\"") != std::string::npos);
}

TEST_CASE("check --explain: the digest changes with the certificate and is stable otherwise", "[fast][explain]") {
  TempDir dir("fpexp");
  Explained a = explain(dir, config("server"));
  Explained a2 = explain(dir, config("server"));
  Explained renamed = explain(dir, config("server", "other-name"));
  Explained b = explain(dir, config("server-rsa"));
  INFO(a.out << a.err << b.out << b.err);
  REQUIRE(a.status.code == 0);
  REQUIRE(b.status.code == 0);
  REQUIRE(renamed.status.code == 0);
  const std::string da = field(a.out, "listener inbound", "digest");
  CHECK(da.size() == 16);
  CHECK(field(a2.out, "listener inbound", "digest") == da);             // stable
  CHECK(field(renamed.out, "listener other-name", "digest") == da);     // names are not policy
  CHECK(field(b.out, "listener inbound", "digest") != da);              // another certificate
  CHECK(field(b.out, "cluster app", "digest") == field(a.out, "cluster app", "digest"));
  // An RSA server certificate: the RSA TLS 1.2 suites.
  CHECK(field(b.out, "listener inbound", "tls1.2 suites") == "ECDHE-RSA-AES128-GCM-SHA256, ECDHE-RSA-AES256-GCM-SHA384");
  CHECK(b.out.find("RSA 2048") != std::string::npos);
  // The config digest names the blocks, so a rename changes it.
  auto cfg_digest = [](const std::string& o) { return o.substr(o.find("config digest: ") + 15, 16); };
  CHECK(cfg_digest(a.out) == cfg_digest(a2.out));
  CHECK(cfg_digest(a.out) != cfg_digest(renamed.out));
  CHECK(cfg_digest(a.out) != cfg_digest(b.out));

  // A bad config still exits 2 with --explain, and --json alone is a usage error.
  Explained bad = explain(dir, config("server") + "bogus = 1\n");
  CHECK(bad.status.code == 2);
  CHECK(bad.err.find("bogus: unknown key") != std::string::npos);
  std::string out, err;
  ExitStatus es = run_command({proxy_binary(), "check", "-c", dir.file("explain.toml"), "--json"}, 30s, &out, &err);
  CHECK(es.code == 2);
}
