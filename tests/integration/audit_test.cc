// The handshake audit chain written by the running proxy (issue #7): one record per handshake
// attempt, approved and rejected, verifiable with `fipsproxy audit verify`, tamper-evident.

#include <catch2/catch.hpp>

#include <signal.h>

#include "tests/support/harness.h"

using namespace fp::test;
using namespace std::chrono_literals;

TEST_CASE("audit: approved and rejected handshakes are chained and verifiable", "[fast][evidence][audit]") {
  AppServer app("tcp:127.0.0.1:0", {"echo"});
  REQUIRE(app.ok());
  ProxyEnv env;
  const std::string audit = env.dir.file("audit.log");
  const uint16_t port = free_tcp_port();
  ListenerSpec l;
  l.address = "127.0.0.1:" + std::to_string(port);
  l.tls = server_tls();
  ClusterSpec c;
  c.endpoints = {app.endpoint()};
  env.proxy = std::make_unique<ProxyProcess>(
      render_config(env.access_log, {l}, {c}, "5s", "[audit]\npath = \"" + audit + "\"\n"), env.dir.path());
  REQUIRE(env.proxy->start());

  auto send = [&](const std::string& cert) {
    auto a = tls_args(cert);
    a.insert(a.end(), {"--send-text", "x\n", "--half-close"});
    return run_client("127.0.0.1:" + std::to_string(port), a);
  };
  CHECK(send("client").ok());
  CHECK_FALSE(send("").ok());         // no client certificate
  CHECK_FALSE(send("client2").ok());  // SPIFFE ID not on the allow-list
  env.access(3);
  // SIGTERM flushes and syncs the chain.
  env.proxy->signal(SIGTERM);
  REQUIRE(env.proxy->wait_exit(10s).code == 0);

  const std::string text = read_file(audit);
  INFO(text);
  std::vector<std::string> lines;
  for (size_t p = 0, n; p < text.size(); p = n + 1) {
    n = text.find('\n', p);
    if (n == std::string::npos) n = text.size();
    lines.push_back(text.substr(p, n - p));
  }
  REQUIRE(lines.size() == 4);  // genesis + 3 handshake attempts
  CHECK(lines[0].find("\"type\":\"genesis\"") != std::string::npos);
  CHECK(lines[1].find("\"verdict\":\"approved\"") != std::string::npos);
  CHECK(lines[1].find("spiffe://example.org/ns/default/sa/client") != std::string::npos);
  CHECK(lines[1].find("\"listener\":\"inbound\"") != std::string::npos);
  CHECK(lines[2].find("\"verdict\":\"rejected\"") != std::string::npos);
  CHECK(lines[2].find("peer_cert_missing") != std::string::npos);
  CHECK(lines[3].find("peer_identity_denied") != std::string::npos);
  for (const auto& line : lines) CHECK(line.find("\"prev\":\"") != std::string::npos);

  std::string out;
  ExitStatus ok = run_command({proxy_binary(), "audit", "verify", audit}, 30s, &out);
  INFO(out);
  CHECK(ok.code == 0);
  CHECK(out.find("ok: 4 records") != std::string::npos);

  // Turn the rejection into an approval: the chain breaks at that line.
  std::string forged = text;
  const size_t at = forged.find("\"verdict\":\"rejected\"");
  REQUIRE(at != std::string::npos);
  forged.replace(at, 20, "\"verdict\":\"approved\"");
  write_file(env.dir.file("forged.log"), forged);
  out.clear();
  ExitStatus bad = run_command({proxy_binary(), "audit", "verify", env.dir.file("forged.log")}, 30s, &out);
  INFO(out);
  CHECK(bad.code == 1);
  CHECK(out.find("forged.log:4") != std::string::npos);  // the line after the edit no longer links
}
