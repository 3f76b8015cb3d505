// Continuous self-probe and metrics hygiene (issue #7): drift injected through the test-only
// build (fipsproxy_testhooks) turns /ready red within one interval and green again once it is
// removed; `promtool check metrics` accepts /metrics.

#include <catch2/catch.hpp>

#include <thread>

#include "tests/support/harness.h"

using namespace fp::test;
using namespace std::chrono_literals;

namespace {

int admin_status(const std::string& sock, const std::string& path, std::string* body = nullptr) {
  Fd fd = connect_unix(sock);
  if (!fd.valid()) return 0;
  send_all(fd.get(), "GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n", 2000ms);
  const std::string d = read_until_close(fd.get(), 5000ms).data;
  if (d.size() < 12) return 0;
  if (body) *body = d.substr(d.find("\r\n\r\n") + 4);
  return std::stoi(d.substr(9, 3));
}

std::string config(const TempDir& d, const std::string& sock, uint16_t port) {
  return "workers = 1\naccess_log = \"off\"\n[admin]\naddress = \"unix:" + sock +
         "\"\n[fips]\nselfprobe_interval = \"200ms\"\n[[listener]]\nname = \"in\"\naddress = \"127.0.0.1:" +
         std::to_string(port) + "\"\ncluster = \"app\"\n  [listener.tls]\n  cert = \"" + cert("server.pem") +
         "\"\n  key = \"" + cert("server.key") + "\"\n  ca = \"" + cert("ca.pem") +
         "\"\n[[cluster]]\nname = \"app\"\nendpoints = [\"unix:" + d.file("app.sock") + "\"]\n" +
         "[process]\nallow_root = true\n";  // tests run as root (ProxyProcess adds this itself)
}

}  // namespace

TEST_CASE("self-probe: injected drift turns /ready 503 within one interval, and back to 200",
          "[fast][evidence][selfprobe]") {
  TempDir d("fpdrift3");
  const std::string sock = short_uds_path("spadm");
  const std::string drift = d.file("drift");
  write_file(d.file("proxy.toml"), config(d, sock, free_tcp_port()));
  Process::Options o;
  o.argv = {std::string(FP_BINARY_DIR) + "/fipsproxy_testhooks", "run", "-c", d.file("proxy.toml")};
  o.env = {"FIPSPROXY_TEST_DRIFT_FILE=" + drift};
  Process p(o);
  REQUIRE(wait_until([&] { return p.read_stderr().find("msg=ready") != std::string::npos; }, 10s));
  REQUIRE(admin_status(sock, "/ready") == 200);

  write_file(drift, "x");
  std::string body;
  CHECK(wait_until([&] { return admin_status(sock, "/ready", &body) == 503; }, 2s, 50ms));
  CHECK(body.find("policy self-probe failed: injected drift") != std::string::npos);
  std::string metrics;
  admin_status(sock, "/metrics", &metrics);
  CHECK(metrics.find("\nfipsproxy_selfprobe_passed 0\n") != std::string::npos);
  CHECK(metrics.find("\nfipsproxy_ready 0\n") != std::string::npos);
  std::string fips;
  admin_status(sock, "/fips", &fips);
  CHECK(fips.find("\"selfprobe\":{\"passed\":false") != std::string::npos);

  ::unlink(drift.c_str());
  CHECK(wait_until([&] { return admin_status(sock, "/ready") == 200; }, 2s, 50ms));
  INFO(p.read_stderr());
  CHECK(p.read_stderr().find("policy self-probe failed: not ready") != std::string::npos);
  CHECK(p.read_stderr().find("policy self-probe passes again") != std::string::npos);
}

TEST_CASE("self-probe: the shipped binary has no drift hook", "[fast][evidence][selfprobe]") {
  // Control for the test above: the same file and variable do nothing to the real binary.
  TempDir d("fpdrift4");
  const std::string sock = short_uds_path("spadm2");
  const std::string drift = d.file("drift");
  write_file(drift, "x");
  write_file(d.file("proxy.toml"), config(d, sock, free_tcp_port()));
  Process::Options o;
  o.argv = {proxy_binary(), "run", "-c", d.file("proxy.toml")};
  o.env = {"FIPSPROXY_TEST_DRIFT_FILE=" + drift};
  Process p(o);
  REQUIRE(wait_until([&] { return p.read_stderr().find("msg=ready") != std::string::npos; }, 10s));
  std::this_thread::sleep_for(700ms);  // several probe intervals
  CHECK(admin_status(sock, "/ready") == 200);
}

TEST_CASE("metrics: promtool check metrics accepts /metrics", "[fast][evidence][metrics]") {
  if (!file_exists("/usr/bin/promtool")) {
    WARN("promtool (Debian package prometheus) not installed: skipped");
    return;
  }
  TempDir d("fpprom");
  const std::string sock = short_uds_path("promadm");
  const uint16_t port = free_tcp_port();
  write_file(d.file("proxy.toml"), config(d, sock, port));
  ProxyProcess p(read_file(d.file("proxy.toml")), d.path());
  REQUIRE(p.start());
  // Some traffic so labelled series exist: one refused handshake.
  run_command({"bash", "-c", "openssl s_client -connect 127.0.0.1:" + std::to_string(port) +
                                 " -CAfile " + cert("ca.pem") + " </dev/null >/dev/null 2>&1"},
              10s);
  std::string metrics;
  REQUIRE(admin_status(sock, "/metrics", &metrics) == 200);
  write_file(d.file("metrics.txt"), metrics);
  std::string out, err;
  ExitStatus st = run_command({"bash", "-c", "promtool check metrics < " + d.file("metrics.txt")}, 30s, &out, &err);
  INFO(metrics << "\n--- promtool:\n" << out << err);
  CHECK(st.code == 0);
}
