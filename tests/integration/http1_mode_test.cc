// HTTP/1 mode features through the real mTLS listener with a recording app (issue #8): identity
// authz per route, configured parser limits, hop-by-hop headers, Expect: 100-continue. Every
// refusal is checked for its status, its reason and zero bytes at the app, next to an allowed
// control.

#include <catch2/catch.hpp>

#include <fstream>
#include <thread>

#include "tests/support/harness.h"

using namespace fp::test;
using namespace std::chrono_literals;

namespace {

std::string tcp_addr(uint16_t port) { return "127.0.0.1:" + std::to_string(port); }

// Everything the recording app received, all connections concatenated in order.
std::string all_recorded(const std::string& dir) {
  std::string out;
  for (int i = 1; i < 1000; ++i) {
    const std::string p = dir + "/conn-" + std::to_string(i) + ".bin";
    if (!file_exists(p)) break;
    out += read_file(p);
  }
  return out;
}

struct ModeEnv {
  TempDir rec{"fph1m"};
  std::unique_ptr<AppServer> app;
  ProxyEnv env;
  uint16_t port = free_tcp_port();
  std::string admin = short_uds_path("h1madm");

  // `http_toml`: the body of [listener.http] and any [[listener.http.route]] (may be empty).
  // mtls = false: server-only TLS (no client certificate is asked for).
  bool start(const std::string& http_toml, const std::vector<std::string>& app_mode = {}, bool mtls = true) {
    app = std::make_unique<AppServer>("unix:" + short_uds_path("h1mapp"),
                                      app_mode.empty() ? std::vector<std::string>{"http", rec.path()} : app_mode);
    if (!app->ok()) return false;
    ListenerSpec l;
    l.address = tcp_addr(port);
    l.tls = server_tls();
    l.tls->allow_spiffe = {"spiffe://example.org/"};  // client and client2 (the intruder) both pass TLS
    if (!mtls) {
      l.tls->require_client_cert = false;
      l.tls->allow_spiffe.clear();
    }
    ClusterSpec c;
    c.endpoints = {app->endpoint()};
    std::string cfg = render_config(env.access_log, {l}, {c}, "5s", "[admin]\naddress = \"unix:" + admin + "\"\n");
    cfg.insert(cfg.find("max_connections = 100"), "mode = \"http1\"\n");
    if (!http_toml.empty()) cfg.insert(cfg.find("\n[[cluster]]"), "\n[listener.http]\n" + http_toml);
    env.proxy = std::make_unique<ProxyProcess>(cfg, env.dir.path());
    return env.proxy->start();
  }
  ClientResult send(const std::string& raw, const std::string& client_cert = "client") {
    auto a = tls_args(client_cert);
    a.insert(a.end(), {"--send-text", raw, "--half-close"});
    return run_client(tcp_addr(port), a);
  }
  double metric(const std::string& key) const {
    Fd fd = connect_unix(admin);
    if (!fd.valid()) return -1;
    send_all(fd.get(), "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", 2000ms);
    const std::string m = read_until_close(fd.get(), 5000ms).data;
    const size_t p = m.find("\n" + key + " ");
    return p == std::string::npos ? 0 : std::stod(m.substr(p + key.size() + 2));
  }
};

std::string status_of(const ClientResult& r) { return r.json.str("recv_head").substr(0, 12); }

}  // namespace

TEST_CASE("http1 authz: per-route SPIFFE allow-lists, listener default, 403 with reason, zero bytes",
          "[fast][http1][authz]") {
  ModeEnv h;
  REQUIRE(h.start("allow_trust_domains = [\"example.org\"]\n"
                  "[[listener.http.route]]\nprefix = \"/admin\"\n"
                  "allow_spiffe_ids = [\"spiffe://example.org/ns/default/sa/client\"]\n"));
  // Controls: the allowed identity reaches /admin; the intruder reaches other paths (default:
  // the example.org trust domain), including /administrator (segment-aware prefix).
  auto ok = h.send("GET /admin/users HTTP/1.1\\r\\nHost: a\\r\\n\\r\\n", "client");
  INFO(ok.describe() << h.env.log());
  CHECK(status_of(ok) == "HTTP/1.1 200");
  auto other = h.send("GET /administrator HTTP/1.1\\r\\nHost: a\\r\\n\\r\\n", "client2");
  CHECK(status_of(other) == "HTTP/1.1 200");
  REQUIRE(wait_until([&] { return all_recorded(h.rec.path()).find("GET /administrator") != std::string::npos; }, 5s));
  const size_t before = all_recorded(h.rec.path()).size();

  struct Case {
    const char* target;
    const char* status;
    const char* token;
  };
  const std::vector<Case> cases = {
      {"/admin", "HTTP/1.1 403", "identity_denied"},
      {"/admin/users?x=1", "HTTP/1.1 403", "identity_denied"},
      {"/admin;jsessionid=1", "HTTP/1.1 403", "identity_denied"},
      {"/%61dmin", "HTTP/1.1 400", "path_not_normalized"},
      {"//admin", "HTTP/1.1 400", "path_not_normalized"},
      {"/./admin", "HTTP/1.1 400", "path_not_normalized"},
      {"/x/../admin", "HTTP/1.1 400", "path_not_normalized"},
      {"/x/..;/admin", "HTTP/1.1 400", "path_not_normalized"},
      {"/x%2F..%2Fadmin", "HTTP/1.1 400", "path_not_normalized"},
  };
  for (const Case& c : cases) {
    INFO(c.target);
    auto r = h.send(std::string("GET ") + c.target + " HTTP/1.1\\r\\nHost: a\\r\\n\\r\\n", "client2");
    INFO(r.describe());
    CHECK(status_of(r) == c.status);
    CHECK(r.json.str("recv_head").find(c.token) != std::string::npos);
    CHECK(r.json.str("recv_head").find("Connection: close") != std::string::npos);
  }
  // Nothing of a refused request reached the app.
  std::this_thread::sleep_for(200ms);
  CHECK(all_recorded(h.rec.path()).size() == before);
  // Counted per listener and reason, and logged with the route.
  CHECK(h.metric("fipsproxy_http1_authz_denied_total{listener=\"inbound\",reason=\"identity_denied\"}") == 3);
  CHECK(h.metric("fipsproxy_http1_rejections_total{listener=\"inbound\",reason=\"path_not_normalized\"}") == 6);
  auto e = h.env.entry(3);
  INFO(e.raw());
  CHECK(e.str("close_reason") == "peer_identity_denied");
  CHECK(e.str("detail").find("identity_denied: route /admin") != std::string::npos);
}

TEST_CASE("http1 authz: DNS and trust-domain routes match exactly",
          "[fast][http1][authz]") {
  ModeEnv h;
  REQUIRE(h.start("[[listener.http.route]]\nprefix = \"/dns/\"\nallow_dns = [\"client.example.org\"]\n"
                  "[[listener.http.route]]\nprefix = \"/td\"\nallow_trust_domains = [\"example.org\"]\n"
                  "[[listener.http.route]]\nprefix = \"/other-td\"\nallow_trust_domains = [\"example.com\"]\n"
                  "allow_dns = [\"example.org\"]\n"));
  CHECK(status_of(h.send("GET /dns/x HTTP/1.1\\r\\nHost: a\\r\\n\\r\\n", "client")) == "HTTP/1.1 200");
  CHECK(status_of(h.send("GET /dns/x HTTP/1.1\\r\\nHost: a\\r\\n\\r\\n", "client2")) == "HTTP/1.1 403");
  CHECK(status_of(h.send("GET /dns HTTP/1.1\\r\\nHost: a\\r\\n\\r\\n", "client2")) == "HTTP/1.1 200");  // "/dns/" does not cover "/dns"
  CHECK(status_of(h.send("GET /td/x HTTP/1.1\\r\\nHost: a\\r\\n\\r\\n", "client2")) == "HTTP/1.1 200");
  // Neither the trust domain nor a DNS name that is only a suffix of client.example.org.
  CHECK(status_of(h.send("GET /other-td HTTP/1.1\\r\\nHost: a\\r\\n\\r\\n", "client")) == "HTTP/1.1 403");
  // No routes cover /free and there is no default: allowed for anyone the TLS layer let in.
  CHECK(status_of(h.send("GET /free HTTP/1.1\\r\\nHost: a\\r\\n\\r\\n", "client2")) == "HTTP/1.1 200");
}

TEST_CASE("http1 authz: no client certificate under a route is 403 identity_missing", "[fast][http1][authz]") {
  ModeEnv h;
  REQUIRE(h.start("[[listener.http.route]]\nprefix = \"/admin\"\n"
                  "allow_spiffe_ids = [\"spiffe://example.org/ns/default/sa/client\"]\n",
                  {}, /*mtls=*/false));
  auto pub = h.send("GET /public HTTP/1.1\\r\\nHost: a\\r\\n\\r\\n", "");
  INFO(pub.describe() << h.env.log());
  CHECK(status_of(pub) == "HTTP/1.1 200");
  auto adm = h.send("GET /admin HTTP/1.1\\r\\nHost: a\\r\\n\\r\\n", "");
  INFO(adm.describe());
  CHECK(status_of(adm) == "HTTP/1.1 403");
  CHECK(adm.json.str("recv_head").find("identity_missing") != std::string::npos);
  CHECK(h.metric("fipsproxy_http1_authz_denied_total{listener=\"inbound\",reason=\"identity_missing\"}") == 1);
}

TEST_CASE("http1 limits: max_header_bytes from [listener.http] gives 431 one byte over, 200 at it",
          "[fast][http1][limits]") {
  ModeEnv h;
  REQUIRE(h.start("max_header_bytes = \"1KiB\"\nmax_headers = 5\n"));
  auto head_of = [](size_t total) {
    const std::string start = "GET /lim HTTP/1.1\r\nHost: a\r\nX-Pad: ";
    std::string s = start + std::string(total - start.size() - 4, 'p') + "\r\n\r\n";
    std::string esc;
    for (char ch : s) esc += ch == '\r' ? "\\r" : ch == '\n' ? "\\n" : std::string(1, ch);
    return esc;
  };
  auto at = h.send(head_of(1024));
  INFO(at.describe() << h.env.log());
  CHECK(status_of(at) == "HTTP/1.1 200");
  REQUIRE(wait_until([&] { return all_recorded(h.rec.path()).find("GET /lim") != std::string::npos; }, 5s));
  const size_t before = all_recorded(h.rec.path()).size();
  auto over = h.send(head_of(1025));
  CHECK(status_of(over) == "HTTP/1.1 431");
  CHECK(over.json.str("recv_head").find("header_too_large") != std::string::npos);
  auto many = h.send("GET / HTTP/1.1\\r\\nHost: a\\r\\nA: 1\\r\\nB: 1\\r\\nC: 1\\r\\nD: 1\\r\\nE: 1\\r\\n\\r\\n");
  CHECK(status_of(many) == "HTTP/1.1 431");
  CHECK(many.json.str("recv_head").find("too_many_headers") != std::string::npos);
  std::this_thread::sleep_for(200ms);
  CHECK(all_recorded(h.rec.path()).size() == before);
}

TEST_CASE("http1 hop-by-hop: Connection-listed and hop-by-hop fields never reach the app, ours survive",
          "[fast][http1][hop]") {
  ModeEnv h;
  REQUIRE(h.start(""));
  auto r = h.send(
      "POST /hop HTTP/1.1\\r\\nHost: a\\r\\n"
      "Connection: keep-alive, X-Drop-Me, X-Forwarded-Client-Cert, X-Forwarded-For, Content-Length\\r\\n"
      "Keep-Alive: timeout=5\\r\\nProxy-Connection: keep-alive\\r\\nTE: trailers\\r\\nX-Drop-Me: 1\\r\\n"
      "X-Keep-Me: 2\\r\\nX-Forwarded-Client-Cert: By=spiffe://evil\\r\\nContent-Length: 5\\r\\n\\r\\nhello");
  INFO(r.describe() << h.env.log());
  CHECK(status_of(r) == "HTTP/1.1 200");
  REQUIRE(wait_until([&] { return all_recorded(h.rec.path()).find("hello") != std::string::npos; }, 5s));
  const std::string got = all_recorded(h.rec.path());
  INFO(got);
  CHECK(got.rfind("POST /hop HTTP/1.1\r\n", 0) == 0);
  for (const char* gone : {"Connection:", "Keep-Alive:", "Proxy-Connection:", "TE:", "X-Drop-Me:", "spiffe://evil"}) {
    INFO(gone);
    CHECK(got.find(gone) == std::string::npos);
  }
  // Controls: an unlisted field, the framing, the body and the proxy's own headers arrive.
  CHECK(got.find("X-Keep-Me: 2\r\n") != std::string::npos);
  CHECK(got.find("Content-Length: 5\r\n") != std::string::npos);
  CHECK(got.size() >= 5);
  CHECK(got.substr(got.size() - 9) == "\r\n\r\nhello");
  CHECK(got.find("X-Forwarded-Client-Cert: Hash=") != std::string::npos);
  CHECK(got.find("URI=spiffe://example.org/ns/default/sa/client") != std::string::npos);
  CHECK(got.find("X-Forwarded-For: 127.0.0.1\r\n") != std::string::npos);
}

TEST_CASE("http1 hop-by-hop: a client's Connection: close still ends the exchange after its response",
          "[fast][http1][hop]") {
  ModeEnv h;
  REQUIRE(h.start(""));
  // Two pipelined requests, the first with Connection: close: the second is never forwarded.
  auto r = h.send("GET /first HTTP/1.1\\r\\nHost: a\\r\\nConnection: close\\r\\n\\r\\n"
                  "GET /second HTTP/1.1\\r\\nHost: a\\r\\n\\r\\n");
  INFO(r.describe() << h.env.log());
  const std::string head = r.json.str("recv_head");
  CHECK(head.rfind("HTTP/1.1 200", 0) == 0);
  CHECK(head.find("Connection: close") != std::string::npos);
  CHECK(head.find("HTTP/1.1", 5) == std::string::npos);  // one response only
  std::this_thread::sleep_for(200ms);
  const std::string got = all_recorded(h.rec.path());
  INFO(got);
  CHECK(got.find("GET /first") != std::string::npos);  // control
  CHECK(got.find("Connection") == std::string::npos);  // hop-by-hop, stripped
  CHECK(got.find("/second") == std::string::npos);
}

TEST_CASE("http1 Expect: 100-continue flows end to end, other expectations get 417, too big is 413 unread",
          "[fast][http1][expect]") {
  ModeEnv h;
  REQUIRE(h.start("max_body_bytes = \"1KiB\"\n"));
  TempDir d("fph1exp");
  const std::string body(1000, 'b');
  {
    std::ofstream(d.file("body")) << body;
  }
  const std::string port = std::to_string(h.port);
  std::string out, err;
  ExitStatus st = run_command({"curl", "-sS", "-v", "--cacert", cert("ca.pem"), "--cert", cert("client.pem"), "--key",
                               cert("client.key"), "--resolve", "server.example.org:" + port + ":127.0.0.1",
                               "-H", "Expect: 100-continue", "--expect100-timeout", "20", "--data-binary",
                               "@" + d.file("body"), "https://server.example.org:" + port + "/upload"},
                              30s, &out, &err);
  INFO(out << err << h.env.log());
  CHECK(st.code == 0);
  CHECK(out == "ok\n");
  CHECK(err.find("< HTTP/1.1 100 Continue") != std::string::npos);  // the app's 100, relayed
  CHECK(err.find("Done waiting for 100-continue") == std::string::npos);  // curl did not time out
  REQUIRE(wait_until([&] { return all_recorded(h.rec.path()).find(body) != std::string::npos; }, 5s));
  const std::string got = all_recorded(h.rec.path());
  CHECK(got.find("Expect: 100-continue\r\n") != std::string::npos);
  bool sent_100 = false;
  for (const std::string& ev : h.app->events()) sent_100 = sent_100 || ev.find("\"sent_100\": true") != std::string::npos;
  CHECK(sent_100);
  const size_t before = got.size();

  auto bad = h.send("POST /x HTTP/1.1\\r\\nHost: a\\r\\nExpect: 200-ok\\r\\nContent-Length: 2\\r\\n\\r\\nhi");
  CHECK(status_of(bad) == "HTTP/1.1 417");
  CHECK(bad.json.str("recv_head").find("expectation_failed") != std::string::npos);
  // Over max_body_bytes: 413 from the head alone, before the client sends a body byte.
  auto big = h.send("POST /x HTTP/1.1\\r\\nHost: a\\r\\nExpect: 100-continue\\r\\nContent-Length: 2000\\r\\n\\r\\n");
  CHECK(status_of(big) == "HTTP/1.1 413");
  CHECK(big.json.str("recv_head").find("100 Continue") == std::string::npos);
  std::this_thread::sleep_for(200ms);
  CHECK(all_recorded(h.rec.path()).size() == before);
}
