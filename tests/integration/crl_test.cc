// CRLs (issue #6): `crl = [...]` in a tls block, checked on the peer's chain, rotated like
// certificates (no SIGHUP), and a revoked peer refused with its own reason.

#include <catch2/catch.hpp>

#include <stdio.h>
#include <sys/stat.h>

#include <string>

#include "tests/support/harness.h"

using namespace fp::test;
using namespace std::chrono_literals;

namespace {

std::string tcp_addr(uint16_t port) { return "127.0.0.1:" + std::to_string(port); }

// A minimal `openssl ca` setup over the test CA (tests/certs/gen.sh) in DIR/.ca: gencrl() writes
// a CRL listing every certificate revoke()d so far.
class TestCrlAuthority {
 public:
  explicit TestCrlAuthority(const std::string& dir) : dir_(dir + "/.ca") {
    ::mkdir(dir_.c_str(), 0700);
    write_file(dir_ + "/index.txt", "");
    write_file(dir_ + "/crlnumber", "01\n");
    write_file(dir_ + "/ca.cnf", "[ca]\ndefault_ca = tca\n[tca]\ndatabase = " + dir_ + "/index.txt\ncrlnumber = " +
                                     dir_ + "/crlnumber\ncertificate = " + cert("ca.pem") + "\nprivate_key = " +
                                     cert("ca.key") + "\ndefault_md = sha256\ndefault_crl_days = 7\n");
  }
  bool revoke(const std::string& pem) { return openssl({"ca", "-config", dir_ + "/ca.cnf", "-revoke", pem}); }
  // Writes the CRL to `path` atomically (a temp file renamed over it).
  bool gencrl(const std::string& path) {
    const std::string tmp = path + ".tmp";
    if (!openssl({"ca", "-gencrl", "-config", dir_ + "/ca.cnf", "-out", tmp})) return false;
    return ::rename(tmp.c_str(), path.c_str()) == 0;
  }

 private:
  bool openssl(std::vector<std::string> args) {
    args.insert(args.begin(), "openssl");
    std::string out, err;
    ExitStatus es = run_command(args, 20s, &out, &err, {"OPENSSL_CONF=/dev/null"});
    INFO("openssl: " << out << err);
    return es.exited && es.code == 0;
  }
  std::string dir_;
};

std::string crl_config(const std::string& access_log, uint16_t port, const std::string& app,
                       const std::string& crl) {
  return "workers = 1\naccess_log = \"" + access_log + "\"\n[[listener]]\nname = \"inbound\"\naddress = \"" +
         tcp_addr(port) + "\"\ncluster = \"app\"\nhandshake_timeout = \"2s\"\n  [listener.tls]\n  cert = \"" +
         cert("server.pem") + "\"\n  key = \"" + cert("server.key") + "\"\n  ca = \"" + cert("ca.pem") +
         "\"\n  crl = [\"" + crl + "\"]\n  allow_spiffe = [\"spiffe://example.org/ns/default/sa/client\"]\n" +
         "[[cluster]]\nname = \"app\"\nendpoints = [\"" + app + "\"]\n";
}

ClientResult send_as(uint16_t port, const std::string& who) {
  auto a = tls_args(who);
  a.insert(a.end(), {"--send-text", "fine", "--half-close"});
  return run_client(tcp_addr(port), a, 15s);
}

size_t count(const std::string& hay, const std::string& needle) {
  size_t n = 0;
  for (size_t pos = 0; (pos = hay.find(needle, pos)) != std::string::npos; ++pos) ++n;
  return n;
}

}  // namespace

TEST_CASE("CRL: a client revoked by a new CRL file is refused (peer_cert_revoked) without SIGHUP",
          "[fast][crl][rotation]") {
  TempDir rec("fprec");
  AppServer app("unix:" + short_uds_path("rec"), {"record", rec.path()});
  REQUIRE(app.ok());
  ProxyEnv env;
  TestCrlAuthority authority(env.dir.path());
  const std::string crl_dir = env.dir.file("crl");
  ::mkdir(crl_dir.c_str(), 0755);
  const std::string crl = crl_dir + "/ca.crl";
  REQUIRE(authority.gencrl(crl));  // nothing revoked yet

  const uint16_t port = free_tcp_port();
  env.proxy = std::make_unique<ProxyProcess>(crl_config(env.access_log, port, app.endpoint(), crl), env.dir.path());
  REQUIRE(env.proxy->start());
  INFO("proxy:\n" << env.log());
  int good_sends = 0;

  // Before: both clients of the test CA pass.
  for (const char* who : {"client", "client-rsa"}) {
    ClientResult r = send_as(port, who);
    INFO(who << " " << r.describe());
    CHECK(r.ok());
    CHECK(r.json.str("recv_head") == "ok\n");
    ++good_sends;
  }

  // Revoke client-rsa and publish the new CRL: new handshakes see it within ~2 s.
  REQUIRE(authority.revoke(cert("client-rsa.pem")));
  REQUIRE(authority.gencrl(crl));
  const auto t0 = std::chrono::steady_clock::now();
  int attempts = 0;
  bool refused = false;
  ClientResult last;
  wait_until(
      [&] {
        ++attempts;
        last = send_as(port, "client-rsa");
        if (last.ok()) ++good_sends;
        refused = !last.ok();
        return refused;
      },
      4000ms, 100ms);
  const auto took = std::chrono::steady_clock::now() - t0;
  INFO("last revoked attempt: " << last.describe() << " after " << attempts << " attempts");
  REQUIRE(refused);
  CHECK(took < 3500ms);
  CHECK(last.json.num("recv_bytes") == 0);

  auto entries = env.access(static_cast<size_t>(2 + attempts));
  REQUIRE(entries.size() >= static_cast<size_t>(2 + attempts));
  const JsonObject& e = entries.back();
  INFO(e.raw());
  CHECK(e.str("close_reason") == "peer_cert_revoked");
  CHECK(e.num("bytes_to_downstream") == 0);
  CHECK(e.str("detail").find("revoked") != std::string::npos);

  // The non-revoked client still passes.
  ClientResult g = send_as(port, "client");
  INFO("control " << g.describe());
  CHECK(g.ok());
  CHECK(g.json.str("recv_head") == "ok\n");
  ++good_sends;
  // Only the accepted connections' bytes reached the app ("fine" = 4 bytes each).
  CHECK(recorded_bytes(rec.path()) == static_cast<size_t>(4 * good_sends));

  // A broken CRL rotation keeps the last good CRL and names the file.
  const size_t failures = count(env.log(), "reload failed");
  write_file(crl + ".tmp", "-----BEGIN X509 CRL-----\nnot base64\n-----END X509 CRL-----\n");
  REQUIRE(::rename((crl + ".tmp").c_str(), crl.c_str()) == 0);
  CHECK(wait_until([&] { return count(env.log(), "reload failed") > failures; }, 5s, 50ms));
  CHECK(env.log().find(crl + ": bad PEM CRL") != std::string::npos);
  ClientResult still = send_as(port, "client-rsa");
  CHECK_FALSE(still.ok());
  CHECK(send_as(port, "client").ok());
  CHECK(env.proxy->running());
}

TEST_CASE("CRL: check refuses a missing CRL for a CA in the bundle and a non-CRL file", "[fast][crl]") {
  TempDir dir("fpcrl");
  TestCrlAuthority authority(dir.path());
  const std::string crl = dir.file("ca.crl");
  REQUIRE(authority.gencrl(crl));
  auto check = [&](const std::string& ca, const std::string& crl_path, std::string& err) {
    std::string cfg = "[[listener]]\nname = \"in\"\naddress = \"127.0.0.1:0\"\ncluster = \"app\"\n  [listener.tls]\n"
                      "  cert = \"" + cert("server.pem") + "\"\n  key = \"" + cert("server.key") + "\"\n  ca = \"" +
                      ca + "\"\n  crl = [\"" + crl_path + "\"]\n[[cluster]]\nname = \"app\"\nendpoints = [\"127.0.0.1:9\"]\n";
    const std::string path = dir.file("c.toml");
    write_file(path, cfg);
    std::string out;
    err.clear();
    ExitStatus es = run_command({proxy_binary(), "check", "-c", path}, 30s, &out, &err);
    INFO(out << err);
    return es.exited ? es.code : -1;
  };
  std::string err;
  CHECK(check(cert("ca.pem"), crl, err) == 0);
  CHECK(check(cert("both-ca.pem"), crl, err) == 2);
  CHECK(err.find(crl + ": no CRL from CA 'CN=fipsproxy other CA,O=fipsproxy tests'") != std::string::npos);
  CHECK(check(cert("ca.pem"), cert("ca.pem"), err) == 2);
  CHECK(err.find(cert("ca.pem") + ": no CRL found") != std::string::npos);
  CHECK(check(cert("ca.pem"), dir.file("absent.crl"), err) == 2);
  CHECK(err.find("listener[0].tls.crl[0]: cannot read '" + dir.file("absent.crl") + "': no such file") !=
        std::string::npos);
}
