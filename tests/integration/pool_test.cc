// http1 upstream keep-alive pool (issue #8) through the real mTLS listener: requests from
// separate client connections reuse one upstream connection; an upstream that answered badly,
// sent stray bytes or closed is never reused; max_idle_connections = 0 is the control.

#include <catch2/catch.hpp>

#include "tests/integration/upstream_support.h"

using namespace fp::test;
using namespace std::chrono_literals;

namespace {

struct PoolEnv {
  TempDir dir{"fppool"};
  std::string admin = short_uds_path("pooladm");
  uint16_t port = free_tcp_port();
  std::unique_ptr<ProxyProcess> proxy;

  bool start(const std::string& endpoint, int max_idle) {
    std::string cfg = "workers = 1\naccess_log = \"" + dir.file("access.log") + "\"\n[admin]\naddress = \"unix:" +
                      admin + "\"\n[[listener]]\nname = \"in\"\naddress = \"127.0.0.1:" + std::to_string(port) +
                      "\"\ncluster = \"app\"\nmode = \"http1\"\n  [listener.tls]\n  cert = \"" + cert("server.pem") +
                      "\"\n  key = \"" + cert("server.key") + "\"\n  ca = \"" + cert("ca.pem") +
                      "\"\n[[cluster]]\nname = \"app\"\nendpoints = [\"" + endpoint +
                      "\"]\nmax_idle_connections = " + std::to_string(max_idle) + "\n";
    proxy = std::make_unique<ProxyProcess>(cfg, dir.path());
    return proxy->start();
  }
  // One client connection per call (a new curl process), one request.
  std::string get(const std::string& path) const { return get_many({path}); }
  // One client connection (a new curl process), the paths requested one after another on it.
  std::string get_many(const std::vector<std::string>& paths) const {
    const std::string p = std::to_string(port);
    std::vector<std::string> args = {"--cacert", cert("ca.pem"), "--cert", cert("client.pem"), "--key",
                                     cert("client.key"), "--resolve", "server.example.org:" + p + ":127.0.0.1"};
    for (const std::string& path : paths) args.push_back("https://server.example.org:" + p + path);
    return curl(args);
  }
  std::vector<JsonObject> requests(size_t n) const { return wait_request_log(dir.file("access.log"), n); }
  std::string metrics() const { return admin_get(admin, "/metrics"); }
};

}  // namespace

TEST_CASE("http1 pool: requests from separate client connections reuse one upstream connection",
          "[fast][http1][pool]") {
  KaServer app("unix:" + short_uds_path("poolapp"));
  REQUIRE(app.ok());
  PoolEnv px;
  REQUIRE(px.start(app.endpoint(), 16));
  for (int i = 1; i <= 3; ++i) {
    const std::string r = px.get("/n" + std::to_string(i));
    INFO(r << "\n" << px.proxy->stderr_text());
    CHECK(r.rfind("200\n", 0) == 0);
    CHECK(r.find("conn=1 req=" + std::to_string(i) + " path=/n" + std::to_string(i)) != std::string::npos);
  }
  CHECK(app.accepts() == 1);
  auto reqs = px.requests(3);
  REQUIRE(reqs.size() == 3);
  CHECK_FALSE(reqs[0].boolean("upstream_reused"));
  CHECK(reqs[1].boolean("upstream_reused"));
  CHECK(reqs[2].boolean("upstream_reused"));
  CHECK(reqs[2].str("method") == "GET");
  CHECK(reqs[2].str("path") == "/n3");
  CHECK(reqs[2].num("status") == 200);
  CHECK(reqs[2].str("peer_spiffe") == "spiffe://example.org/ns/default/sa/client");
  CHECK(metric_value(px.metrics(), "fipsproxy_upstream_pool_reuses_total{upstream=\"app\"}") == 2);
}

TEST_CASE("http1 pool: max_idle_connections = 0 opens one upstream per client connection (control)",
          "[fast][http1][pool]") {
  KaServer app("unix:" + short_uds_path("poolapp0"));
  REQUIRE(app.ok());
  PoolEnv px;
  REQUIRE(px.start(app.endpoint(), 0));
  for (int i = 1; i <= 3; ++i) {
    const std::string r = px.get("/x");
    INFO(r);
    CHECK(r.find("conn=" + std::to_string(i) + " req=1") != std::string::npos);
  }
  CHECK(app.accepts() == 3);
}

TEST_CASE("http1 pool: no reuse after a bad response, stray bytes or Connection: close", "[fast][http1][pool]") {
  KaServer app("unix:" + short_uds_path("poolbad"));
  REQUIRE(app.ok());
  PoolEnv px;
  REQUIRE(px.start(app.endpoint(), 16));
  std::string r = px.get("/ok");
  CHECK(r.find("conn=1 req=1") != std::string::npos);
  // CL + TE in a response: 502 to the client, that upstream connection is dropped.
  r = px.get("/bad");
  INFO(r);
  CHECK(r.rfind("502\n", 0) == 0);
  CHECK(r.find("upstream_cl_te") != std::string::npos);
  r = px.get("/after-bad");
  CHECK(r.find("conn=2 req=1") != std::string::npos);
  // A good response followed by stray bytes: delivered, the bytes never reach anyone, no reuse.
  r = px.get("/stray");
  CHECK(r.rfind("200\n", 0) == 0);
  CHECK(r.find("XSTRAY") == std::string::npos);
  r = px.get("/after-stray");
  CHECK(r.find("XSTRAY") == std::string::npos);
  CHECK(r.find("conn=3 req=1") != std::string::npos);
  // The upstream said Connection: close: the next request gets a new upstream, the client
  // connection was not closed for it (curl reuses nothing across processes, so check the log).
  r = px.get("/close");
  CHECK(r.rfind("200\n", 0) == 0);
  r = px.get("/after-close");
  CHECK(r.find("conn=4 req=1") != std::string::npos);
  CHECK(app.accepts() == 4);
  const std::string m = px.metrics();
  INFO(m);
  CHECK(metric_value(m, "fipsproxy_upstream_pool_closed_total{upstream=\"app\",reason=\"stray_bytes\"}") >= 1);
}

TEST_CASE("http1 pool: keep-alive client requests through one connection stay on one upstream",
          "[fast][http1][pool]") {
  KaServer app("unix:" + short_uds_path("poolka"));
  REQUIRE(app.ok());
  PoolEnv px;
  REQUIRE(px.start(app.endpoint(), 16));
  const std::string p = std::to_string(px.port);
  const std::string base = "https://server.example.org:" + p;
  const std::string r =
      curl({"--cacert", cert("ca.pem"), "--cert", cert("client.pem"), "--key", cert("client.key"), "--resolve",
            "server.example.org:" + p + ":127.0.0.1", base + "/a", base + "/b", base + "/close", base + "/c"});
  INFO(r);
  CHECK(r.find("conn=1 req=1 path=/a") != std::string::npos);
  CHECK(r.find("conn=1 req=2 path=/b") != std::string::npos);
  CHECK(r.find("conn=1 req=3 path=/close") != std::string::npos);
  CHECK(r.find("conn=2 req=1 path=/c") != std::string::npos);  // after the upstream closed
  auto conns = wait_access_log(px.dir.file("access.log"), 1);
  REQUIRE(!conns.empty());
  CHECK(conns[0].num("http_requests") == 4);  // one client connection carried all four
}

TEST_CASE("http1 access log: one line per request, pipelined and refused ones included, fields escaped",
          "[fast][http1][pool]") {
  KaServer app("unix:" + short_uds_path("poollog"));
  REQUIRE(app.ok());
  PoolEnv px;
  REQUIRE(px.start(app.endpoint(), 16));
  // Three pipelined requests on one TLS connection: two good ones (the second with an encoded
  // CR LF and quotes in its path, logged as sent) and a malformed third (obs-fold) that gets 400
  // only after the first two are answered, in order.
  auto a = tls_args("client");
  a.insert(a.end(), {"--send-text",
                     "GET /one HTTP/1.1\\r\\nHost: a\\r\\n\\r\\n"
                     "GET /two%0d%0a%22q%22 HTTP/1.1\\r\\nHost: a\\r\\n\\r\\n"
                     "GET /three HTTP/1.1\\r\\nHost: a\\r\\nX-A: b\\r\\n c\\r\\n\\r\\n",
                     "--half-close"});
  ClientResult c = run_client("127.0.0.1:" + std::to_string(px.port), a);
  INFO(c.describe() << "\n" << px.proxy->stderr_text());
  auto reqs = px.requests(3);
  REQUIRE(reqs.size() == 3);
  CHECK(reqs[0].str("path") == "/one");
  CHECK(reqs[0].num("status") == 200);
  CHECK(reqs[1].str("path") == "/two%0d%0a%22q%22");
  CHECK(reqs[1].num("status") == 200);
  CHECK(reqs[2].num("status") == 400);
  CHECK(reqs[2].str("reason") == "obs_fold");
  // Each line is one JSON object: no raw CR/LF/ESC got into the file.
  const std::string raw = read_file(px.dir.file("access.log"));
  CHECK(raw.find('\r') == std::string::npos);
  // Both good requests went over one upstream connection; the malformed one reached nobody.
  CHECK(app.accepts() == 1);
  for (const auto& e : app.events()) {
    if (e.str("event") == "close") CHECK(e.num("requests") == 2);
  }
}

// Issue #10 (write path): on a keep-alive client connection each exchange costs one socket
// write per direction. The proxy rebuilds the response head and forwards the body that came in
// the same read; both are sealed while the client side is corked and leave in one send (they
// were two). Measured as the difference between 1 and 11 requests on one curl connection, so the
// handshake, ticket and close writes cancel out.
TEST_CASE("http1 keep-alive: one socket write per direction per exchange (head and body in one send)",
          "[fast][http1][pool][writepath]") {
  KaServer app("unix:" + short_uds_path("poolwr"));
  REQUIRE(app.ok());
  PoolEnv px;
  REQUIRE(px.start(app.endpoint(), 16));
  auto writes = [&] {
    const std::string m = px.metrics();
    return metric_value(m, "fipsproxy_socket_writes_total{path=\"direct\"}") +
           metric_value(m, "fipsproxy_socket_writes_total{path=\"queued\"}");
  };
  auto run = [&](int n) {  // n sequential requests on one client connection
    std::vector<std::string> paths;
    for (int i = 0; i < n; ++i) paths.push_back("/w" + std::to_string(i));
    const double before = writes();
    const std::string r = px.get_many(paths);
    INFO(r);
    CHECK(r.rfind("200\n", 0) == 0);
    wait_until([&] { return metric_value(px.metrics(), "fipsproxy_downstream_connections_active{listener=\"in\"}") == 0; },
               5000ms, 20ms);
    return writes() - before;
  };
  const double one = run(1);
  const double eleven = run(11);
  INFO("socket writes: 1 request " << one << ", 11 requests " << eleven);
  // Positive control: the counter sees every write (10 more exchanges are at least 20 writes).
  CHECK(eleven - one >= 20);
  // Two writes per exchange (request to the app, response to the client); three before the cork.
  CHECK(eleven - one <= 22);
  // All on one client connection and one pooled upstream connection.
  CHECK(app.accepts() == 1);
  CHECK(metric_value(px.metrics(), "fipsproxy_upstream_pool_reuses_total{upstream=\"app\"}") == 11);
  // Each small response (head and body) was joined into one record: the copy is counted.
  CHECK(metric_value(px.metrics(), "fipsproxy_write_coalesced_bytes_total") > 12 * 30);
}
