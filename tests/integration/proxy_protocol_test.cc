// tcp mode with proxy_protocol = "v2" (issue #8): a test app parses the PROXY v2 header the proxy
// sends before the first byte and records the addresses and TLVs (TLS version, cipher, client
// CN, SPIFFE ID, SNI, CRC32c); the payload follows intact. Negative control: without the option
// the app sees no header.

#include <catch2/catch.hpp>

#include "tests/support/harness.h"

using namespace fp::test;
using namespace std::chrono_literals;

namespace {

struct PpEnv {
  TempDir rec{"fppp"};
  std::unique_ptr<AppServer> app;
  ProxyEnv env;

  // listen: "127.0.0.1:P" or "unix:/path".
  bool start(const std::string& listen, bool proxy_v2) {
    app = std::make_unique<AppServer>("unix:" + short_uds_path("ppapp"), std::vector<std::string>{"proxy-v2", rec.path()});
    if (!app->ok()) return false;
    ListenerSpec l;
    l.address = listen;
    l.tls = server_tls();
    ClusterSpec c;
    c.endpoints = {app->endpoint()};
    std::string cfg = render_config(env.access_log, {l}, {c});
    if (proxy_v2) cfg.insert(cfg.find("max_connections = 100"), "proxy_protocol = \"v2\"\n");
    env.proxy = std::make_unique<ProxyProcess>(cfg, env.dir.path());
    return env.proxy->start();
  }
  JsonObject header(int conn) {
    const std::string p = rec.file("conn-" + std::to_string(conn) + ".json");
    wait_until([&] { return file_exists(p) && !read_file(p).empty(); }, 5s);
    auto j = JsonObject::parse(read_file(p));
    return j ? *j : JsonObject();
  }
};

}  // namespace

TEST_CASE("proxy v2: the app learns the client's address and verified identity, then the payload",
          "[fast][proxy_protocol]") {
  PpEnv pp;
  const uint16_t port = free_tcp_port();
  REQUIRE(pp.start("127.0.0.1:" + std::to_string(port), true));
  auto a = tls_args("client");
  a.insert(a.end(), {"--send-text", "hello through PROXY v2", "--half-close"});
  ClientResult r = run_client("127.0.0.1:" + std::to_string(port), a);
  INFO(r.describe() << pp.env.log());
  REQUIRE(r.ok());
  CHECK(r.json.str("recv_head") == "hello through PROXY v2");  // echoed: the payload is intact
  JsonObject h = pp.header(1);
  INFO(h.raw());
  CHECK(h.boolean("header"));
  CHECK(h.num("version_command") == 0x21);
  CHECK(h.num("family") == 0x11);
  CHECK(h.str("src") == "127.0.0.1");
  CHECK(h.num("src_port") > 0);
  CHECK(h.str("dst") == "127.0.0.1");
  CHECK(h.num("dst_port") == port);
  CHECK(h.str("authority") == "server.example.org");
  CHECK(h.num("ssl_client") == 7);  // SSL | CERT_CONN | CERT_SESS
  CHECK(h.num("ssl_verify") == 0);
  CHECK(h.str("ssl_version") == r.json.str("version"));
  CHECK(h.str("ssl_cipher") == r.json.str("cipher"));
  CHECK(h.str("ssl_cn") == "client.example.org");
  CHECK(h.str("spiffe_id") == "spiffe://example.org/ns/default/sa/client");
  CHECK(h.boolean("crc32c_ok"));
  CHECK(h.num("trailing") == 0);
  auto e = pp.env.entry(1);
  CHECK(e.str("close_reason") == "completed");
}

TEST_CASE("proxy v2: a Unix-socket listener sends AF_UNIX addresses", "[fast][proxy_protocol]") {
  PpEnv pp;
  const std::string sock = short_uds_path("ppin");
  REQUIRE(pp.start("unix:" + sock, true));
  auto a = tls_args("client");
  a.insert(a.end(), {"--send-text", "over uds", "--half-close"});
  ClientResult r = run_client("unix:" + sock, a);
  INFO(r.describe() << pp.env.log());
  REQUIRE(r.ok());
  CHECK(r.json.str("recv_head") == "over uds");
  JsonObject h = pp.header(1);
  INFO(h.raw());
  CHECK(h.num("family") == 0x31);
  CHECK(h.str("dst") == sock);
  CHECK(h.str("spiffe_id") == "spiffe://example.org/ns/default/sa/client");
  CHECK(h.boolean("crc32c_ok"));
}

TEST_CASE("proxy v2: without the option no header reaches the app (negative control)", "[fast][proxy_protocol]") {
  PpEnv pp;
  const uint16_t port = free_tcp_port();
  REQUIRE(pp.start("127.0.0.1:" + std::to_string(port), false));
  auto a = tls_args("client");
  a.insert(a.end(), {"--send-text", "plain payload", "--half-close"});
  ClientResult r = run_client("127.0.0.1:" + std::to_string(port), a);
  INFO(r.describe() << pp.env.log());
  REQUIRE(r.ok());
  CHECK(r.json.str("recv_head") == "plain payload");
  JsonObject h = pp.header(1);
  INFO(h.raw());
  CHECK(h.has("header"));
  CHECK_FALSE(h.boolean("header"));
}
