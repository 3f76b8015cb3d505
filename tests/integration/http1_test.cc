// HTTP/1.1 mode through the real mTLS listener (issue #8, RELIABILITY §3 A): requests are
// parsed strictly before anything is forwarded, XFCC and X-Forwarded-* are sanitised and set,
// keep-alive works, and every smuggling input gets its status with zero bytes at the app.

#include <catch2/catch.hpp>

#include <thread>

#include "tests/support/harness.h"

using namespace fp::test;
using namespace std::chrono_literals;

namespace {

std::string tcp_addr(uint16_t port) { return "127.0.0.1:" + std::to_string(port); }

struct Http1Env {
  TempDir rec{"fph1rec"};
  std::unique_ptr<AppServer> app;
  ProxyEnv env;
  uint16_t port = free_tcp_port();

  // app_mode: {"http", rec} records one request per connection and answers 200 "ok".
  bool start(const std::vector<std::string>& app_mode) {
    app = std::make_unique<AppServer>("unix:" + short_uds_path("h1app"), app_mode);
    if (!app->ok()) return false;
    ListenerSpec l;
    l.address = tcp_addr(port);
    l.tls = server_tls();
    ClusterSpec c;
    c.endpoints = {app->endpoint()};
    std::string cfg = render_config(env.access_log, {l}, {c});
    // render_config has no mode key: add it to the listener.
    const size_t at = cfg.find("max_connections");
    cfg.insert(at, "mode = \"http1\"\n");
    env.proxy = std::make_unique<ProxyProcess>(cfg, env.dir.path());
    return env.proxy->start();
  }
  ClientResult send(const std::string& raw, const std::string& client_cert = "client") {
    auto a = tls_args(client_cert);
    a.insert(a.end(), {"--send-text", raw, "--half-close"});
    return run_client(tcp_addr(port), a);
  }
};

}  // namespace

TEST_CASE("http1: XFCC and X-Forwarded-* are sanitised and set, spoofed values never pass",
          "[fast][http1]") {
  Http1Env h;
  REQUIRE(h.start({"http", h.rec.path()}));
  auto r = h.send(
      "GET /hello HTTP/1.1\\r\\nHost: server.example.org\\r\\n"
      "X-Forwarded-Client-Cert: By=spiffe://evil;URI=spiffe://example.org/ns/default/sa/admin\\r\\n"
      "X-Forwarded-For: 6.6.6.6\\r\\nX-Forwarded-Proto: http\\r\\n\\r\\n");
  INFO(r.describe() << "\n" << h.env.log());
  CHECK(r.json.str("recv_head").rfind("HTTP/1.1 200", 0) == 0);
  const std::string got = read_file(h.rec.file("conn-1.bin"));
  INFO(got);
  CHECK(got.rfind("GET /hello HTTP/1.1\r\n", 0) == 0);
  // Exactly one XFCC, ours: the peer's certificate hash and SPIFFE ID.
  size_t n = 0;
  for (size_t p = 0; (p = got.find("X-Forwarded-Client-Cert:", p)) != std::string::npos; ++p) ++n;
  CHECK(n == 1);
  CHECK(got.find("spiffe://evil") == std::string::npos);
  CHECK(got.find("sa/admin") == std::string::npos);
  CHECK(got.find("URI=spiffe://example.org/ns/default/sa/client") != std::string::npos);
  CHECK(got.find("Hash=") != std::string::npos);
  CHECK(got.find("X-Forwarded-For: 127.0.0.1\r\n") != std::string::npos);
  CHECK(got.find("6.6.6.6") == std::string::npos);
  CHECK(got.find("X-Forwarded-Proto: https\r\n") != std::string::npos);
  auto e = h.env.entry(1);
  CHECK(e.str("close_reason") == "completed");
  CHECK(e.num("http_requests") == 1);
}

TEST_CASE("http1: keep-alive carries several requests over one mTLS connection", "[fast][http1]") {
  TempDir d("fph1ka");
  const std::string sock = short_uds_path("h1ka");
  Process::Options o;
  o.argv = {"python3", std::string(FP_SOURCE_DIR) + "/deploy/demo_app.py", sock};
  Process app(o);
  REQUIRE(wait_until([&] { return file_exists(sock); }, 5s));
  ProxyEnv env;
  const uint16_t port = free_tcp_port();
  ListenerSpec l;
  l.address = tcp_addr(port);
  l.tls = server_tls();
  ClusterSpec c;
  c.endpoints = {"unix:" + sock};
  std::string cfg = render_config(env.access_log, {l}, {c});
  cfg.insert(cfg.find("max_connections"), "mode = \"http1\"\n");
  env.proxy = std::make_unique<ProxyProcess>(cfg, env.dir.path());
  REQUIRE(env.proxy->start());
  std::string out;
  ExitStatus st = run_command({"curl", "-sS", "--cacert", cert("ca.pem"), "--cert", cert("client.pem"), "--key",
                               cert("client.key"), "--resolve", "server.example.org:" + std::to_string(port) + ":127.0.0.1",
                               "https://server.example.org:" + std::to_string(port) + "/one",
                               "https://server.example.org:" + std::to_string(port) + "/two",
                               "https://server.example.org:" + std::to_string(port) + "/three"},
                              20s, &out);
  INFO(out << env.log());
  CHECK(st.code == 0);
  CHECK(out.find("GET /one") != std::string::npos);
  CHECK(out.find("GET /three") != std::string::npos);
  auto e = env.entry(1);
  INFO(e.raw());
  CHECK(e.num("http_requests") == 3);  // one connection, three requests
}

TEST_CASE("http1: smuggling and malformed requests get their status and zero bytes reach the app",
          "[fast][http1][smuggling]") {
  struct Case {
    const char* name;
    std::string raw;
    const char* status;
    const char* token;
  };
  const std::vector<Case> cases = {
      {"CL.TE", "POST / HTTP/1.1\\r\\nHost: a\\r\\nContent-Length: 6\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\n0\\r\\n\\r\\nGET /admin HTTP/1.1\\r\\nHost: a\\r\\n\\r\\n", "400", "cl_te"},
      {"TE.CL", "POST / HTTP/1.1\\r\\nHost: a\\r\\nTransfer-Encoding: chunked\\r\\nContent-Length: 3\\r\\n\\r\\n8\\r\\nSMUGGLED\\r\\n0\\r\\n\\r\\n", "400", "cl_te"},
      {"duplicate CL", "POST / HTTP/1.1\\r\\nHost: a\\r\\nContent-Length: 1\\r\\nContent-Length: 2\\r\\n\\r\\nab", "400", "repeated_content_length"},
      {"TE obfuscation", "POST / HTTP/1.1\\r\\nHost: a\\r\\nTransfer-Encoding: identity, chunked\\r\\n\\r\\n0\\r\\n\\r\\n", "400", "bad_transfer_encoding"},
      {"obs-fold", "GET / HTTP/1.1\\r\\nHost: a\\r\\nX-A: b\\r\\n c\\r\\n\\r\\n", "400", "obs_fold"},
      {"bare LF", "GET / HTTP/1.1\\nHost: a\\r\\n\\r\\n", "400", "bare_lf"},
      {"missing Host", "GET / HTTP/1.1\\r\\n\\r\\n", "400", "missing_host"},
      {"fragment", "GET /a#b HTTP/1.1\\r\\nHost: a\\r\\n\\r\\n", "400", "fragment_in_target"},
      {"h2c upgrade", "GET / HTTP/1.1\\r\\nHost: a\\r\\nConnection: Upgrade, HTTP2-Settings\\r\\nUpgrade: h2c\\r\\nHTTP2-Settings: AAMAAABkAAQAAP__\\r\\n\\r\\n", "501", "h2c_refused"},
      {"CONNECT", "CONNECT example.org:443 HTTP/1.1\\r\\nHost: example.org:443\\r\\n\\r\\n", "501", "connect_refused"},
      {"HTTP/2.0", "GET / HTTP/2.0\\r\\nHost: a\\r\\n\\r\\n", "505", "unsupported_version"},
  };
  Http1Env h;
  REQUIRE(h.start({"http", h.rec.path()}));
  // Positive control first: a well-formed request is forwarded and answered.
  auto ok = h.send("GET / HTTP/1.1\\r\\nHost: a\\r\\n\\r\\n");
  REQUIRE(ok.json.str("recv_head").rfind("HTTP/1.1 200", 0) == 0);
  REQUIRE(wait_until([&] { return h.app->accepts() == 1; }, 5s));
  size_t entries = 1;
  for (const Case& c : cases) {
    INFO(c.name);
    auto r = h.send(c.raw);
    INFO(r.describe());
    CHECK(r.json.str("recv_head").rfind(std::string("HTTP/1.1 ") + c.status, 0) == 0);
    CHECK(r.json.str("recv_head").find(c.token) != std::string::npos);
    ++entries;
    auto e = h.env.entry(entries);
    INFO(e.raw());
    CHECK(e.str("close_reason") == "http1_bad_request");
    CHECK(e.str("detail").rfind(c.token, 0) == 0);
  }
  // The app saw the control request and nothing else: a refused request never forwards a byte
  // (the proxy may have connected, but every later recording is empty).
  int files = 0;
  const size_t bytes = recorded_bytes(h.rec.path(), &files);
  const size_t control = read_file(h.rec.file("conn-1.bin")).size();
  CHECK(bytes == control);
}
