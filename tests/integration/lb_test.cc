// Load-balancer front (issue #9): distribution, weights, least-request, health checks, the TLS
// policy as a health criterion, outlier ejection, connect retries and the no-healthy behaviour,
// against several real backends on loopback.

#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/socket.h>

#include <memory>
#include <thread>

#include "tests/support/harness.h"

using namespace fp::test;
using namespace std::chrono_literals;

namespace {

std::string tcp_addr(uint16_t port) { return "127.0.0.1:" + std::to_string(port); }

// One plaintext request through a plaintext listener; true when the echo came back.
bool roundtrip(uint16_t port, const std::string& payload = "ping\n") {
  Fd fd = connect_tcp("127.0.0.1", port, 2000ms);
  if (!fd.valid()) return false;
  if (!send_all(fd.get(), payload, 2000ms)) return false;
  ::shutdown(fd.get(), SHUT_WR);
  ReadResult r = read_until_close(fd.get(), 3000ms);
  return r.data == payload;
}

// A proxy with one plaintext listener in front of `cluster_toml` (a [[cluster]] named "app").
struct Lb {
  TempDir dir{"fplb"};
  uint16_t port = free_tcp_port();
  std::string admin = short_uds_path("lbadm");
  std::unique_ptr<ProxyProcess> proxy;

  bool start(const std::string& cluster_toml) {
    const std::string cfg = "workers = 1\naccess_log = \"" + dir.file("access.log") +
                            "\"\n[admin]\naddress = \"unix:" + admin +
                            "\"\n[[listener]]\nname = \"front\"\naddress = \"" + tcp_addr(port) +
                            "\"\ncluster = \"app\"\n" + cluster_toml;
    proxy = std::make_unique<ProxyProcess>(cfg, dir.path());
    return proxy->start();
  }
  std::string get(const std::string& path) const {
    Fd fd = connect_unix(admin);
    if (!fd.valid()) return "";
    send_all(fd.get(), "GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n", 2000ms);
    return read_until_close(fd.get(), 5000ms).data;
  }
  double metric(const std::string& key) const {
    const std::string m = get("/metrics");
    const size_t p = m.find("\n" + key + " ");
    return p == std::string::npos ? -1 : std::stod(m.substr(p + key.size() + 2));
  }
};

std::string endpoints_toml(const std::vector<AppServer*>& apps) {
  std::string s = "endpoints = [";
  for (size_t i = 0; i < apps.size(); ++i) s += (i ? ", \"" : "\"") + apps[i]->endpoint() + "\"";
  return s + "]\n";
}

}  // namespace

TEST_CASE("lb: round robin and random spread 3000 requests within 10 %, weights are honoured",
          "[fast][lb]") {
  for (const char* policy : {"round_robin", "random", "weighted"}) {
    DYNAMIC_SECTION(policy) {
      AppServer a("tcp:127.0.0.1:0", {"echo"}), b("tcp:127.0.0.1:0", {"echo"}), c("tcp:127.0.0.1:0", {"echo"});
      REQUIRE((a.ok() && b.ok() && c.ok()));
      Lb lb;
      const bool weighted = std::string(policy) == "weighted";
      std::string cluster = "[[cluster]]\nname = \"app\"\n" + endpoints_toml({&a, &b, &c}) +
                            (weighted ? "weights = [1, 2, 3]\nlb_policy = \"round_robin\"\n"
                                      : "lb_policy = \"" + std::string(policy) + "\"\n");
      REQUIRE(lb.start(cluster));
      const int n = 3000;
      int ok = 0;
      for (int i = 0; i < n; ++i) ok += roundtrip(lb.port) ? 1 : 0;
      CHECK(ok == n);
      REQUIRE(wait_until([&] { return a.accepts() + b.accepts() + c.accepts() == n; }, 5s));
      const double expect[3] = {weighted ? n / 6.0 : n / 3.0, weighted ? n / 3.0 : n / 3.0,
                                weighted ? n / 2.0 : n / 3.0};
      const int got[3] = {a.accepts(), b.accepts(), c.accepts()};
      for (int i = 0; i < 3; ++i) {
        INFO(policy << " endpoint " << i << ": " << got[i] << " of " << n << ", expected ~" << expect[i]);
        CHECK(got[i] >= expect[i] * 0.9);
        CHECK(got[i] <= expect[i] * 1.1);
      }
    }
  }
}

TEST_CASE("lb: least_request prefers the endpoint that is not stalled", "[fast][lb]") {
  AppServer stalled("tcp:127.0.0.1:0", {"sink-stall"}), good("tcp:127.0.0.1:0", {"echo"});
  REQUIRE((stalled.ok() && good.ok()));
  Lb lb;
  REQUIRE(lb.start("[[cluster]]\nname = \"app\"\n" + endpoints_toml({&stalled, &good}) +
                   "lb_policy = \"least_request\"\n"));
  // Hold 6 connections open: whatever lands on the stalled backend stays active there.
  std::vector<Fd> held;
  for (int i = 0; i < 6; ++i) {
    held.push_back(connect_tcp("127.0.0.1", lb.port, 2000ms));
    send_all(held.back().get(), "hold\n", 1000ms);
  }
  REQUIRE(wait_until([&] { return stalled.accepts() + good.accepts() >= 6; }, 5s));
  // Close the held connections the good backend answered: only the stalled ones stay active.
  size_t still_held = 0;
  for (Fd& fd : held) {
    if (read_until_close(fd.get(), 300ms, 5).data == "hold\n") {
      fd.reset();
    } else {
      ++still_held;
    }
  }
  const int stalled_before = stalled.accepts();
  CHECK(stalled_before >= 1);
  CHECK(still_held == static_cast<size_t>(stalled_before));
  // Fresh requests: the stalled endpoint has active connections, the good one none.
  int ok = 0;
  for (int i = 0; i < 100; ++i) ok += roundtrip(lb.port) ? 1 : 0;
  CHECK(ok == 100);
  CHECK(stalled.accepts() == stalled_before);
}

TEST_CASE("lb: health checks take a dead backend out and bring it back, no request fails",
          "[fast][lb][health]") {
  AppServer a("tcp:127.0.0.1:0", {"echo"});
  auto b = std::make_unique<AppServer>("tcp:127.0.0.1:0", std::vector<std::string>{"echo"});
  REQUIRE((a.ok() && b->ok()));
  const int b_port = b->port();
  Lb lb;
  REQUIRE(lb.start("[[cluster]]\nname = \"app\"\nendpoints = [\"" + a.endpoint() + "\", \"" +
                   b->endpoint() + "\"]\nconnect_retries = 0\n  [cluster.health_check]\n  type = \"tcp\"\n"
                   "  interval = \"100ms\"\n  timeout = \"200ms\"\n  unhealthy_threshold = 2\n"
                   "  healthy_threshold = 2\n"));
  CHECK(roundtrip(lb.port));
  b.reset();  // kill backend b
  // Marked down within interval x threshold (plus slack).
  const std::string key = "fipsproxy_upstream_endpoint_healthy{cluster=\"app\",endpoint=\"" +
                          tcp_addr(static_cast<uint16_t>(b_port)) + "\"}";
  REQUIRE(wait_until([&] { return lb.metric(key) == 0; }, 3s, 50ms));
  int ok = 0;
  for (int i = 0; i < 200; ++i) ok += roundtrip(lb.port) ? 1 : 0;
  CHECK(ok == 200);  // no retries configured: every request went to the healthy endpoint
  CHECK(lb.get("/clusters").find("\"healthy\":false") != std::string::npos);

  // Revive b on the same port: back in rotation.
  AppServer revived("tcp:127.0.0.1:" + std::to_string(b_port), {"echo"});
  REQUIRE(revived.ok());
  REQUIRE(wait_until([&] { return lb.metric(key) == 1; }, 3s, 50ms));
  for (int i = 0; i < 20; ++i) CHECK(roundtrip(lb.port));
  CHECK(revived.accepts() >= 5);
  INFO(lb.proxy->stderr_text());
  CHECK(lb.proxy->stderr_text().find("msg=\"endpoint unhealthy\"") != std::string::npos);
  CHECK(lb.proxy->stderr_text().find("msg=\"endpoint healthy\"") != std::string::npos);
}

TEST_CASE("lb: a TLS backend that only offers ChaCha20 is marked unhealthy with the policy reason",
          "[fast][lb][health]") {
  const uint16_t bad_port = free_tcp_port(), good_port = free_tcp_port();
  auto s_server = [](uint16_t port, bool chacha) {
    Process::Options o;
    o.argv = {"openssl", "s_server", "-accept", "127.0.0.1:" + std::to_string(port), "-cert",
              cert("server.pem"), "-key", cert("server.key"), "-naccept", "1000", "-quiet"};
    if (chacha) o.argv.insert(o.argv.end(), {"-tls1_3", "-ciphersuites", "TLS_CHACHA20_POLY1305_SHA256"});
    return std::make_unique<Process>(o);
  };
  auto bad = s_server(bad_port, true);
  auto good = s_server(good_port, false);
  REQUIRE(wait_until([&] { return connect_tcp("127.0.0.1", bad_port, 200ms).valid() &&
                                  connect_tcp("127.0.0.1", good_port, 200ms).valid(); }, 5s));
  Lb lb;
  REQUIRE(lb.start("[[cluster]]\nname = \"app\"\nendpoints = [\"" + tcp_addr(bad_port) + "\", \"" +
                   tcp_addr(good_port) + "\"]\n  [cluster.tls]\n  ca = \"" + cert("ca.pem") +
                   "\"\n  sni = \"server.example.org\"\n  [cluster.health_check]\n  type = \"tls\"\n"
                   "  interval = \"100ms\"\n  timeout = \"1s\"\n  unhealthy_threshold = 1\n"));
  const std::string bad_key = "fipsproxy_upstream_endpoint_healthy{cluster=\"app\",endpoint=\"" + tcp_addr(bad_port) + "\"}";
  const std::string good_key = "fipsproxy_upstream_endpoint_healthy{cluster=\"app\",endpoint=\"" + tcp_addr(good_port) + "\"}";
  REQUIRE(wait_until([&] { return lb.metric(bad_key) == 0; }, 3s, 50ms));
  std::this_thread::sleep_for(300ms);
  CHECK(lb.metric(good_key) == 1);  // control: the approved backend passes the same check
  const std::string clusters = lb.get("/clusters");
  INFO(clusters << "\n" << lb.proxy->stderr_text());
  // The proxy never offers ChaCha20, so the server alerts; the reason says it was TLS.
  CHECK(clusters.find("\"last_check_failure\":\"tls: ") != std::string::npos);
}

TEST_CASE("lb: connect-refused is retried on another endpoint, outlier ejection and its cap",
          "[fast][lb]") {
  AppServer a("tcp:127.0.0.1:0", {"echo"}), b("tcp:127.0.0.1:0", {"echo"});
  REQUIRE((a.ok() && b.ok()));
  const uint16_t dead1 = free_tcp_port(), dead2 = free_tcp_port();  // nothing listens there
  Lb lb;
  REQUIRE(lb.start("[[cluster]]\nname = \"app\"\nendpoints = [\"" + tcp_addr(dead1) + "\", \"" +
                   tcp_addr(dead2) + "\", \"" + a.endpoint() + "\", \"" + b.endpoint() +
                   "\"]\nconnect_retries = 3\n  [cluster.outlier_detection]\n  consecutive_failures = 2\n"
                   "  base_ejection = \"30s\"\n  max_ejection_percent = 25\n"));
  int ok = 0;
  for (int i = 0; i < 40; ++i) ok += roundtrip(lb.port) ? 1 : 0;
  CHECK(ok == 40);  // every request succeeds thanks to retries
  CHECK(lb.metric("fipsproxy_upstream_connect_retries_total{cluster=\"app\"}") > 0);
  // Only one of the two dead endpoints may be ejected (25 % of 4); the other keeps costing
  // retries, and the skip is counted.
  const std::string m = lb.get("/metrics");
  INFO(m);
  int ejected = 0;
  for (uint16_t p : {dead1, dead2}) {
    if (m.find("fipsproxy_upstream_ejections_total{cluster=\"app\",endpoint=\"" + tcp_addr(p) + "\"}") != std::string::npos) ++ejected;
  }
  CHECK(ejected == 1);
  CHECK(lb.metric("fipsproxy_upstream_ejections_skipped_total{cluster=\"app\"}") > 0);
  const std::string clusters = lb.get("/clusters");
  INFO(clusters);
  CHECK(clusters.find("\"ejected_on_workers\":1") != std::string::npos);
  CHECK(clusters.find("\"active_connections\":0") != std::string::npos);
}

TEST_CASE("lb: in http1 mode no healthy endpoint answers 503", "[fast][lb][health][http1]") {
  AppServer a("tcp:127.0.0.1:0", {"echo"});
  REQUIRE(a.ok());
  Lb lb;
  REQUIRE(lb.start("[[cluster]]\nname = \"app\"\nendpoints = [\"" + a.endpoint() +
                   "\"]\n  [cluster.health_check]\n  type = \"http\"\n  interval = \"100ms\"\n"
                   "  timeout = \"200ms\"\n  unhealthy_threshold = 1\n"));
  // (the listener is plaintext tcp in Lb; switch it to http1 through a reload)
  std::string cfg = read_file(lb.proxy->config_path());
  cfg.insert(cfg.find("cluster = \"app\"\n"), "mode = \"http1\"\n");
  write_file(lb.proxy->config_path(), cfg);
  lb.proxy->signal(SIGHUP);
  REQUIRE(lb.proxy->wait_log("msg=reloaded", 5s));
  const std::string key = "fipsproxy_upstream_endpoint_healthy{cluster=\"app\",endpoint=\"" + a.endpoint() + "\"}";
  REQUIRE(wait_until([&] { return lb.metric(key) == 0; }, 3s, 50ms));
  Fd fd = connect_tcp("127.0.0.1", lb.port, 2000ms);
  REQUIRE(fd.valid());
  send_all(fd.get(), "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 2000ms);
  ReadResult r = read_until_close(fd.get(), 3000ms);
  INFO(r.data);
  CHECK(r.data.rfind("HTTP/1.1 503 Service Unavailable\r\n", 0) == 0);
  CHECK(r.data.find("no_healthy_upstream") != std::string::npos);
}

TEST_CASE("lb: in http1 mode upstream 5xx answers count toward outlier ejection", "[fast][lb][http1]") {
  // A backend that answers every request with 500 (bounded: 60 s, then it exits).
  const uint16_t bad_port = free_tcp_port();
  Process::Options o;
  o.argv = {"python3", "-c",
            "import socket,time\n"
            "s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
            "s.bind(('127.0.0.1'," + std::to_string(bad_port) + ")); s.listen(64); s.settimeout(1)\n"
            "end=time.time()+60\n"
            "while time.time()<end:\n"
            "  try: c,_=s.accept()\n"
            "  except socket.timeout: continue\n"
            "  c.settimeout(2)\n"
            "  try: c.recv(65536); c.sendall(b'HTTP/1.1 500 Internal Server Error\\r\\nContent-Length: 4\\r\\nConnection: close\\r\\n\\r\\nbad\\n')\n"
            "  except OSError: pass\n"
            "  c.close()\n"};
  Process bad(o);
  REQUIRE(wait_until([&] { return connect_tcp("127.0.0.1", bad_port, 200ms).valid(); }, 5s));
  TempDir rec("fplb5");
  AppServer good("tcp:127.0.0.1:0", {"http", rec.path()});
  REQUIRE(good.ok());
  Lb lb;
  REQUIRE(lb.start("[[cluster]]\nname = \"app\"\nendpoints = [\"" + tcp_addr(bad_port) + "\", \"" +
                   good.endpoint() + "\"]\n  [cluster.outlier_detection]\n  consecutive_failures = 2\n"
                   "  max_ejection_percent = 50\n"));
  std::string cfg = read_file(lb.proxy->config_path());
  cfg.insert(cfg.find("cluster = \"app\"\n"), "mode = \"http1\"\n");
  write_file(lb.proxy->config_path(), cfg);
  lb.proxy->signal(SIGHUP);
  REQUIRE(lb.proxy->wait_log("msg=reloaded", 5s));
  int fives = 0, oks = 0;
  for (int i = 0; i < 12; ++i) {
    Fd fd = connect_tcp("127.0.0.1", lb.port, 2000ms);
    send_all(fd.get(), "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 2000ms);
    const std::string r = read_until_close(fd.get(), 3000ms).data;
    if (r.rfind("HTTP/1.1 500", 0) == 0) ++fives;
    if (r.rfind("HTTP/1.1 200", 0) == 0) ++oks;
  }
  INFO(lb.proxy->stderr_text());
  CHECK(fives == 2);  // round robin reaches the bad endpoint twice, then it is ejected
  CHECK(oks == 10);
  CHECK(lb.metric("fipsproxy_upstream_ejections_total{cluster=\"app\",endpoint=\"" + tcp_addr(bad_port) + "\"}") == 1);
}

TEST_CASE("lb: all endpoints down fails fast with no_healthy_upstream, or uses all in panic mode",
          "[fast][lb][health]") {
  for (const char* mode : {"fail", "use_all"}) {
    DYNAMIC_SECTION(mode) {
      AppServer a("tcp:127.0.0.1:0", {"echo"});
      REQUIRE(a.ok());
      // The health check targets a path the echo app never answers as HTTP: it always fails.
      Lb lb;
      REQUIRE(lb.start("[[cluster]]\nname = \"app\"\nendpoints = [\"" + a.endpoint() +
                       "\"]\nno_healthy = \"" + mode + "\"\n  [cluster.health_check]\n  type = \"http\"\n"
                       "  interval = \"100ms\"\n  timeout = \"200ms\"\n  unhealthy_threshold = 1\n"));
      const std::string key = "fipsproxy_upstream_endpoint_healthy{cluster=\"app\",endpoint=\"" + a.endpoint() + "\"}";
      REQUIRE(wait_until([&] { return lb.metric(key) == 0; }, 3s, 50ms));
      const bool served = roundtrip(lb.port);
      if (std::string(mode) == "fail") {
        CHECK_FALSE(served);
        CHECK(lb.metric("fipsproxy_upstream_no_healthy_total{cluster=\"app\"}") == 1);
        CHECK(wait_until([&] { return read_file(lb.dir.file("access.log")).find("no_healthy_upstream") != std::string::npos; }, 3s));
      } else {
        CHECK(served);
      }
    }
  }
}
