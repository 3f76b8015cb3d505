// The upstream keep-alive pool's reuse race, made deterministic: the upstream closes a pooled
// connection at the moment the proxy reuses it (ka_server.py /drop-next: it reads the next
// request head and closes without answering, as a server whose idle timeout fires just as a
// request arrives). Nothing of a response came back and the connection was a reused one, so the
// request never reached an application; fipsproxy sends it again on a fresh connection, once,
// when it is idempotent and bodyless (Go's http.Transport and nginx's proxy_next_upstream do the
// same), and answers 502 otherwise (a POST is never sent twice). Each case proves the race was
// hit (the upstream reports the dropped request on the pooled connection).

#include <catch2/catch.hpp>

#include "tests/integration/upstream_support.h"

using namespace fp::test;
using namespace std::chrono_literals;

namespace {

struct RaceEnv {
  TempDir dir{"fprace"};
  std::string admin = short_uds_path("raceadm");
  uint16_t port = free_tcp_port();
  std::unique_ptr<ProxyProcess> proxy;

  std::string metrics() const { return admin_get(admin, "/metrics"); }
  bool start(const std::string& endpoint) {
    std::string cfg = "workers = 1\naccess_log = \"" + dir.file("access.log") + "\"\n[admin]\naddress = \"unix:" +
                      admin + "\"\n[[listener]]\nname = \"in\"\n" +
                      "address = \"127.0.0.1:" + std::to_string(port) + "\"\ncluster = \"app\"\nmode = \"http1\"\n" +
                      "  [listener.tls]\n  cert = \"" + cert("server.pem") + "\"\n  key = \"" + cert("server.key") +
                      "\"\n  ca = \"" + cert("ca.pem") + "\"\n[[cluster]]\nname = \"app\"\nendpoints = [\"" + endpoint +
                      "\"]\nmax_idle_connections = 4\n";
    proxy = std::make_unique<ProxyProcess>(cfg, dir.path());
    return proxy->start();
  }
  std::string post(const std::string& path) const {
    const std::string p = std::to_string(port);
    return curl({"--data", "x=1", "--cacert", cert("ca.pem"), "--cert", cert("client.pem"), "--key", cert("client.key"),
                 "--resolve", "server.example.org:" + p + ":127.0.0.1", "https://server.example.org:" + p + path});
  }
  std::string get(const std::string& path) const {
    const std::string p = std::to_string(port);
    return curl({"--cacert", cert("ca.pem"), "--cert", cert("client.pem"), "--key", cert("client.key"), "--resolve",
                 "server.example.org:" + p + ":127.0.0.1", "https://server.example.org:" + p + path});
  }
};

int dropped(const KaServer& app) {
  int n = 0;
  for (const auto& e : app.events()) n += e.str("event") == "dropped" ? 1 : 0;
  return n;
}

}  // namespace

namespace {

// Runs the race once: returns the second client's "<status>\n<body>". Fails (REQUIRE) unless
// the race was really hit: the first request armed upstream connection 1 and the upstream
// reports dropping the second request on it.
std::string run_race(const KaServer& app, RaceEnv& px, bool post = false) {
  // Client connection 1: answered on upstream connection 1, which goes back to the pool armed.
  const std::string first = px.get("/drop-next");
  INFO(first << "\n" << px.proxy->stderr_text());
  REQUIRE(first.rfind("200\n", 0) == 0);
  REQUIRE(first.find("conn=1 req=1 path=/drop-next") != std::string::npos);
  // Client connection 2: the proxy reuses upstream connection 1; the upstream reads the head and
  // closes without an answer.
  const std::string second = post ? px.post("/after") : px.get("/after");
  INFO("second: " << second << "\n" << app.output());
  REQUIRE(wait_until([&] { return dropped(app) == 1; }, 5s));
  return second;
}

}  // namespace

TEST_CASE("http1 pool race: a pooled upstream closed as it is reused gets a definite answer, the pool recovers",
          "[fast][http1][pool]") {
  KaServer app("unix:" + short_uds_path("raceapp"));
  REQUIRE(app.ok());
  RaceEnv px;
  REQUIRE(px.start(app.endpoint()));
  const std::string second = run_race(app, px);
  INFO("second: " << second << "\n" << app.output() << "\n" << px.proxy->stderr_text());
  // A GET is sent again on a fresh connection (the next test case checks where); never no answer.
  CHECK(second.rfind("200\n", 0) == 0);
  // The dropped connection is not reused again: the next request is answered on a fresh one.
  const std::string third = px.get("/third");
  INFO("third: " << third);
  CHECK(third.rfind("200\n", 0) == 0);
  CHECK(third.find("path=/third") != std::string::npos);
  CHECK(third.find("conn=1 ") == std::string::npos);
}

TEST_CASE("http1 pool race: a pooled upstream closed as it is reused is retried on a fresh connection, not 502",
          "[fast][http1][pool]") {
  KaServer app("unix:" + short_uds_path("raceapp2"));
  REQUIRE(app.ok());
  RaceEnv px;
  REQUIRE(px.start(app.endpoint()));
  const std::string second = run_race(app, px);
  INFO("second: " << second << "\n" << app.output() << "\n" << px.proxy->stderr_text());
  // Expected: the request is retried on upstream connection 2 and answered there.
  CHECK(second.rfind("200\n", 0) == 0);
  CHECK(second.find("conn=2 req=1 path=/after") != std::string::npos);
  CHECK(px.metrics().find("fipsproxy_upstream_retries_total{upstream=\"app\",reason=\"reused_connection_closed\"} 1") !=
        std::string::npos);
}

TEST_CASE("http1 pool race: a POST on a pooled upstream closed as it is reused is not sent twice, the client gets 502",
          "[fast][http1][pool]") {
  KaServer app("unix:" + short_uds_path("raceapp3"));
  REQUIRE(app.ok());
  RaceEnv px;
  REQUIRE(px.start(app.endpoint()));
  const std::string second = run_race(app, px, true);
  INFO("second: " << second << "\n" << app.output() << "\n" << px.proxy->stderr_text());
  CHECK(second.rfind("502\n", 0) == 0);
  CHECK(second.find("upstream_reset") != std::string::npos);
  // The upstream saw the POST once (dropped on connection 1) and never on a second connection.
  CHECK(app.output().find("path=/after") == std::string::npos);
  CHECK(px.metrics().find("fipsproxy_upstream_retries_total") == std::string::npos);
}
