// The admin endpoint (issue #7): health, readiness, metrics, FIPS evidence, config, reload and
// drain, over a Unix socket, through the real binary.

#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/socket.h>

#include <thread>

#include "tests/support/harness.h"

using namespace fp::test;
using namespace std::chrono_literals;

namespace {

struct HttpReply {
  int status = 0;
  std::string body;
};

// One request over the admin Unix socket, parsed just enough for the tests.
HttpReply admin_request(const std::string& sock, const std::string& method, const std::string& path) {
  HttpReply r;
  Fd fd = connect_unix(sock);
  if (!fd.valid()) return r;
  if (!send_all(fd.get(), method + " " + path + " HTTP/1.1\r\nHost: admin\r\n\r\n", 2000ms)) return r;
  ReadResult rr = read_until_close(fd.get(), 5000ms);
  const std::string& d = rr.data;
  if (d.rfind("HTTP/1.1 ", 0) != 0 || d.size() < 12) return r;
  r.status = std::stoi(d.substr(9, 3));
  const size_t hdr_end = d.find("\r\n\r\n");
  if (hdr_end != std::string::npos) r.body = d.substr(hdr_end + 4);
  return r;
}

// The value of one Prometheus series line ("name{labels} value"), or -1.
double metric(const std::string& text, const std::string& series_key) {
  size_t pos = 0;
  while ((pos = text.find(series_key + " ", pos)) != std::string::npos) {
    if (pos == 0 || text[pos - 1] == '\n') return std::stod(text.substr(pos + series_key.size() + 1));
    ++pos;
  }
  return -1;
}

std::string tcp_addr(uint16_t port) { return "127.0.0.1:" + std::to_string(port); }

}  // namespace

TEST_CASE("admin: healthz, ready, metrics, fips, config, reload and drain", "[fast][admin]") {
  TempDir rec("fpadm");
  AppServer app("tcp:127.0.0.1:0", {"record", rec.path()});
  REQUIRE(app.ok());
  ProxyEnv env;
  const std::string sock = short_uds_path("adm");
  const uint16_t port = free_tcp_port();
  ListenerSpec l;
  l.address = tcp_addr(port);
  l.tls = server_tls();
  ClusterSpec c;
  c.endpoints = {app.endpoint()};
  env.proxy = std::make_unique<ProxyProcess>(
      render_config(env.access_log, {l}, {c}, "5s", "[admin]\naddress = \"unix:" + sock + "\"\n"),
      env.dir.path());
  REQUIRE(env.proxy->start());
  INFO(env.log());

  CHECK(admin_request(sock, "GET", "/healthz").status == 200);
  HttpReply ready = admin_request(sock, "GET", "/ready");
  CHECK(ready.status == 200);
  CHECK(ready.body == "ready\n");

  // One good mTLS connection and one without a client certificate.
  auto good = run_client(tcp_addr(port), [] {
    auto a = tls_args("client");
    a.insert(a.end(), {"--send-text", "hello\n", "--half-close"});
    return a;
  }());
  CHECK(good.ok());
  auto bad = run_client(tcp_addr(port), [] {
    auto a = tls_args("");
    a.insert(a.end(), {"--send-text", "nope\n", "--half-close"});
    return a;
  }());
  CHECK_FALSE(bad.ok());
  env.access(2);

  HttpReply m = admin_request(sock, "GET", "/metrics");
  REQUIRE(m.status == 200);
  INFO(m.body);
  CHECK(metric(m.body, "fipsproxy_fips_mode") == 1);
  CHECK(metric(m.body, "fipsproxy_fips_module_version") == 2022061300);
  CHECK(metric(m.body, "fipsproxy_ready") == 1);
  CHECK(metric(m.body, "fipsproxy_downstream_connections_total{listener=\"inbound\"}") == 2);
  CHECK(metric(m.body, "fipsproxy_connection_closes_total{listener=\"inbound\",reason=\"completed\",side=\"internal\"}") == 1);
  CHECK(metric(m.body, "fipsproxy_tls_policy_rejections_total{listener=\"inbound\",role=\"server\",reason=\"peer_cert_missing\"}") == 1);
  CHECK(m.body.find("fipsproxy_tls_handshakes_total{listener=\"inbound\",role=\"server\",version=\"TLSv1.3\"") != std::string::npos);
  CHECK(m.body.find("# TYPE fipsproxy_tls_policy_rejections_total counter") != std::string::npos);

  HttpReply f = admin_request(sock, "GET", "/fips");
  CHECK(f.status == 200);
  CHECK(f.body.find("2022061300") != std::string::npos);
  CHECK(f.body.find("\"fips_mode\":true") != std::string::npos);

  HttpReply cfg = admin_request(sock, "GET", "/config");
  CHECK(cfg.status == 200);
  CHECK(cfg.body.find("\"generation\":1") != std::string::npos);
  CHECK(cfg.body.find("\"profile\":\"strict\"") != std::string::npos);
  CHECK(cfg.body.find("\"effective_policy\":{") != std::string::npos);
  CHECK(cfg.body.find("digest") != std::string::npos);

  HttpReply certs = admin_request(sock, "GET", "/certs");
  CHECK(certs.status == 200);
  CHECK(certs.body.find("\"subject\":\"CN=server.example.org") != std::string::npos);
  CHECK(certs.body.find("\"days_left\":") != std::string::npos);
  HttpReply cbom = admin_request(sock, "GET", "/cbom");
  CHECK(cbom.status == 200);
  CHECK(cbom.body.find("\"bomFormat\":\"CycloneDX\"") != std::string::npos);

  CHECK(admin_request(sock, "GET", "/nope").status == 404);
  CHECK(admin_request(sock, "POST", "/metrics").status == 405);
  CHECK(admin_request(sock, "GARBAGE", "").status == 400);

  // Reload through the admin endpoint: good, then broken (500, still serving generation 2).
  HttpReply rl = admin_request(sock, "POST", "/reload");
  CHECK(rl.status == 200);
  CHECK(rl.body.find("generation 2") != std::string::npos);
  write_file(env.proxy->config_path(), read_file(env.proxy->config_path()) + "\nworkers = \"many\"\n");
  HttpReply broken = admin_request(sock, "POST", "/reload");
  CHECK(broken.status == 500);
  CHECK(broken.body.find("still serving generation 2") != std::string::npos);
  CHECK(metric(admin_request(sock, "GET", "/metrics").body, "fipsproxy_reloads_total{result=\"failure\"}") == 1);

  // Drain: /ready turns 503 while live connections finish, then the process exits 0.
  auto held = spawn_client(tcp_addr(port), [] {
    auto a = tls_args("client");
    a.insert(a.end(), {"--hold", "1", "--send-text", "held\n", "--half-close"});
    return a;
  }());
  // The held connection must be live before the drain (a drain with nothing live exits at
  // once); a fixed sleep lost that race on a loaded machine.
  REQUIRE(wait_until([&] {
    return metric(admin_request(sock, "GET", "/metrics").body,
                  "fipsproxy_downstream_connections_active{listener=\"inbound\"}") == 1;
  }, 10s, 50ms));
  CHECK(admin_request(sock, "POST", "/drain").status == 202);
  HttpReply during = admin_request(sock, "GET", "/ready");
  CHECK(during.status == 503);
  CHECK(during.body.find("draining") != std::string::npos);
  // Kubernetes order: preStop POSTs /drain, then SIGTERM arrives. That first signal must not
  // cut live connections.
  env.proxy->signal(SIGTERM);
  CHECK(client_result(*held, 10s).ok());
  CHECK(env.log().find("already draining") != std::string::npos);
  ExitStatus st = env.proxy->wait_exit(10s);
  INFO(st.str());
  CHECK(st.exited);
  CHECK(st.code == 0);
}

TEST_CASE("admin: over mTLS ([admin.tls]) it answers only clients with a certificate", "[fast][admin]") {
  ProxyEnv env;
  const uint16_t port = free_tcp_port(), admin_port = free_tcp_port();
  ListenerSpec l;
  l.address = "127.0.0.1:" + std::to_string(port);
  l.tls = server_tls();
  ClusterSpec c;
  c.endpoints = {"127.0.0.1:1"};
  const std::string admin = "[admin]\naddress = \"127.0.0.1:" + std::to_string(admin_port) +
                            "\"\n  [admin.tls]\n  cert = \"" + cert("server.pem") + "\"\n  key = \"" +
                            cert("server.key") + "\"\n  ca = \"" + cert("ca.pem") +
                            "\"\n  allow_spiffe = [\"spiffe://example.org/ns/default/sa/client\"]\n";
  env.proxy = std::make_unique<ProxyProcess>(render_config(env.access_log, {l}, {c}, "5s", admin), env.dir.path());
  REQUIRE(env.proxy->start());
  const std::string url = "https://server.example.org:" + std::to_string(admin_port) + "/ready";
  const std::string resolve = "server.example.org:" + std::to_string(admin_port) + ":127.0.0.1";
  std::string out, err;
  ExitStatus ok = run_command({"curl", "-sS", "--cacert", cert("ca.pem"), "--cert", cert("client.pem"), "--key",
                               cert("client.key"), "--resolve", resolve, url},
                              20s, &out, &err);
  INFO(out << err << env.log());
  CHECK(ok.code == 0);
  CHECK(out == "ready\n");
  // No client certificate, or one not on the allow-list: no answer.
  out.clear();
  ExitStatus none = run_command({"curl", "-sS", "--cacert", cert("ca.pem"), "--resolve", resolve, url}, 20s, &out, &err);
  CHECK(none.code != 0);
  CHECK(out.find("ready") == std::string::npos);
  out.clear();
  ExitStatus other = run_command({"curl", "-sS", "--cacert", cert("ca.pem"), "--cert", cert("client2.pem"), "--key",
                                  cert("client2.key"), "--resolve", resolve, url},
                                 20s, &out, &err);
  CHECK(other.code != 0);
  CHECK(out.find("ready") == std::string::npos);
}
