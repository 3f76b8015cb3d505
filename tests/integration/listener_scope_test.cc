// RELIABILITY D25 and D26 through the real binary: what a TLS session or a server name obtained
// on one listener is worth on another.
//
// D25: a session (TLS 1.3 ticket, TLS 1.2 session) made on listener A never resumes on listener B
// of the same proxy, whatever B's client CA or client-certificate requirement; in particular a
// session from a listener that asks for no client certificate never lets a client without one
// into an mTLS listener (nginx CVE-2025-23419). Each listener has its own SSL_CTX, so its own
// session cache, ticket keys and session id context (certs/tls_context.cc). Positive control in
// every case: the same session file resumes ("Reused,") on the listener that issued it.
//
// D26: SNI and Host on http1 listeners (filters/http1/sni_host.h): with
// listener.http.sni_host_check a request whose host is not the SNI gets 421
// sni_host_mismatch and nothing reaches the app; no SNI is not checked; an unknown SNI is
// served with the listener's one certificate (there is no SNI routing) and then binds Host.
#include "tests/integration/policy_matrix_support.h"

using namespace fp::test;
using namespace fp::test::policy;
using namespace std::chrono_literals;

namespace {

// ---- D25 ----------------------------------------------------------------------------------

struct Scope {
  TempDir rec{"fpscrec"};
  AppServer app{"tcp:127.0.0.1:0", {"record", rec.path()}};
  PProxy px;
  // a: mTLS, clients from ca; b: mTLS, clients from other-ca; c: same server cert, no client
  // certificate asked for.
  uint16_t a = free_tcp_port(), b = free_tcp_port(), c = free_tcp_port();
  std::string hello;

  Scope() {
    REQUIRE(app.ok());
    hello = rec.file("hello.txt.in");
    write_file(hello, "HELLO-SCOPE\n");
    PTls ta;
    PTls tb;
    tb.ca = "other-ca";
    PTls tc;
    tc.mtls = false;
    const bool ok = px.start({{"a", addr(a), "app", ta}, {"b", addr(b), "app", tb}, {"c", addr(c), "app", tc}},
                             {{"app", app.endpoint(), std::nullopt}});
    INFO(px.log());
    REQUIRE(ok);
  }
  size_t backend_bytes() const { return recorded_bytes(rec.path()); }
};

bool reused(const Tool& t) { return t.out.find("Reused, TLSv1.") != std::string::npos; }
bool fresh(const Tool& t) { return t.out.find("New, TLSv1.") != std::string::npos; }

}  // namespace

TEST_CASE("D25 a session from listener A does not resume on listener B (other client CA), and resumes on A",
          "[fast][reliability][d25]") {
  Scope s;
  TempDir d("fpd25");
  for (const std::string v : {"-tls1_3", "-tls1_2"}) {
    INFO(v);
    const std::string sess = d.file("a" + v);
    Tool first = s_client_linger(s.a, with_cert({v, "-sess_out", sess}), s.hello);
    INFO(first.all());
    REQUIRE(sc_ok(first));
    REQUIRE(file_exists(sess));
    // B trusts other-ca: other-client is a valid client there. Offered A's session, B makes a
    // full handshake (and verifies other-client's certificate).
    const size_t before = s.backend_bytes();
    Tool on_b = s_client_linger(s.b, with_cert({v, "-sess_in", sess}, "other-client"), s.hello, "0.1");
    INFO("on b: " << on_b.all());
    CHECK(sc_ok(on_b));
    CHECK_FALSE(reused(on_b));
    CHECK(fresh(on_b));
    CHECK(wait_until([&] { return s.backend_bytes() >= before + 12; }, 5s));
    // C asks for no client certificate: the mTLS session from A does not resume there either.
    Tool on_c = s_client_linger(s.c, {v, "-sess_in", sess}, s.hello, "0.1");
    INFO("on c: " << on_c.all());
    CHECK(sc_ok(on_c));
    CHECK_FALSE(reused(on_c));
    CHECK(fresh(on_c));
    // Positive control: the same file resumes on A, the listener that issued it.
    Tool on_a = s_client_linger(s.a, with_cert({v, "-sess_in", sess}), s.hello, "0.1");
    INFO("on a: " << on_a.all());
    CHECK(reused(on_a));
  }
}

TEST_CASE("D25 a session from a listener without client certificates never opens an mTLS listener without one",
          "[fast][reliability][d25]") {
  Scope s;
  TempDir d("fpd25c");
  for (const std::string v : {"-tls1_3", "-tls1_2"}) {
    INFO(v);
    const std::string sess = d.file("c" + v);
    Tool first = s_client_linger(s.c, {v, "-sess_out", sess}, s.hello);
    INFO(first.all());
    REQUIRE(sc_ok(first));
    REQUIRE(file_exists(sess));
    // Positive control: it resumes on c.
    Tool again = s_client_linger(s.c, {v, "-sess_in", sess}, s.hello, "0.1");
    INFO("on c: " << again.all());
    CHECK(reused(again));
    // On a (mTLS), offered without a client certificate: no resumption, no handshake, no byte
    // to the app.
    const size_t entries = s.px.entries();
    const size_t before = s.backend_bytes();
    Tool on_a = s_client_linger(s.a, {v, "-sess_in", sess}, s.hello, "0.3");
    INFO("on a: " << on_a.all());
    CHECK_FALSE(reused(on_a));
    JsonObject e = s.px.entry(entries + 1);
    INFO(e.raw());
    CHECK(e.str("close_reason") != "completed");
    CHECK(e.str("tls_version").empty());  // the handshake never completed
    wait_until([] { return false; }, 300ms, 50ms);
    CHECK(s.backend_bytes() == before);
    // With its certificate the same client gets in on a, by a full handshake.
    Tool with = s_client_linger(s.a, with_cert({v, "-sess_in", sess}), s.hello, "0.1");
    INFO("on a with a certificate: " << with.all());
    CHECK(sc_ok(with));
    CHECK(fresh(with));
  }
}

// ---- D26 ----------------------------------------------------------------------------------

namespace {

struct SniEnv {
  TempDir dir{"fpd26"};
  TempDir rec{"fpd26rec"};
  std::unique_ptr<AppServer> app;
  std::string access_log = dir.file("access.log");
  std::string admin_sock = short_uds_path("d26a");
  std::unique_ptr<ProxyProcess> proxy;
  // mtls: mTLS + sni_host_check "mtls"; dflt: mTLS, no key (default "off"); always: no client
  // certificate + "always"; plain: no client certificate + "mtls" (so not checked).
  std::map<std::string, uint16_t> port;

  bool start() {
    app = std::make_unique<AppServer>("unix:" + short_uds_path("d26app"), std::vector<std::string>{"http", rec.path()});
    if (!app->ok()) return false;
    std::ostringstream o;
    o << "workers = 1\nlog_level = \"info\"\naccess_log = \"" << access_log << "\"\ndrain_timeout = \"2s\"\n";
    o << "[admin]\naddress = \"unix:" << admin_sock << "\"\n";
    struct L {
      const char* name;
      bool mtls;
      const char* check;  // "" = key absent
    };
    for (const L& l : {L{"mtls", true, "mtls"}, L{"dflt", true, ""}, L{"always", false, "always"},
                       L{"plain", false, "mtls"}}) {
      port[l.name] = free_tcp_port();
      o << "\n[[listener]]\nname = \"" << l.name << "\"\naddress = \"127.0.0.1:" << port[l.name]
        << "\"\ncluster = \"app\"\nmode = \"http1\"\nhandshake_timeout = \"3s\"\n";
      o << "  [listener.tls]\n  cert = \"" << cert("server.pem") << "\"\n  key = \"" << cert("server.key")
        << "\"\n  ca = \"" << cert("ca.pem") << "\"\n  require_client_cert = " << (l.mtls ? "true" : "false") << "\n";
      if (*l.check) o << "  [listener.http]\n  sni_host_check = \"" << l.check << "\"\n";
    }
    o << "\n[[cluster]]\nname = \"app\"\nendpoints = [\"" << app->endpoint() << "\"]\nconnect_timeout = \"2s\"\n";
    proxy = std::make_unique<ProxyProcess>(o.str(), dir.path());
    return proxy->start();
  }
  // One request over a fresh TLS connection with `sni` (an IP address: no SNI is sent).
  ClientResult send(const std::string& listener, const std::string& sni, const std::string& raw) {
    auto a = tls_args("client");
    a.insert(a.end(), {"--sni", sni, "--send-text", raw, "--half-close"});
    if (sni != "server.example.org" && sni != "127.0.0.1") a.push_back("--no-verify-name");
    return run_client("127.0.0.1:" + std::to_string(port.at(listener)), a);
  }
  int status(const ClientResult& r) const {
    const std::string h = r.json.str("recv_head");
    return h.rfind("HTTP/1.1 ", 0) == 0 && h.size() >= 12 ? std::stoi(h.substr(9, 3)) : 0;
  }
  int app_requests() const {
    int n = 0;
    recorded_bytes(rec.path(), &n);
    return n;
  }
  double rejections(const std::string& listener) const {
    const double v = prom_value(admin_request(admin_sock, "GET", "/metrics").body,
                                "fipsproxy_http1_rejections_total{listener=\"" + listener +
                                    "\",reason=\"sni_host_mismatch\"}");
    return v < 0 ? 0 : v;
  }
};

std::string get(const std::string& host) { return "GET /d26 HTTP/1.1\\r\\nHost: " + host + "\\r\\n\\r\\n"; }

}  // namespace

TEST_CASE("D26 mTLS listener with sni_host_check: Host other than the SNI is 421 and never forwarded",
          "[fast][reliability][d26]") {
  SniEnv e;
  REQUIRE(e.start());
  INFO(e.proxy->stderr_text());
  int forwarded = 0;
  // Positive controls: Host = SNI, with a port, other case, a trailing dot.
  for (const char* host : {"server.example.org", "server.example.org:8443", "Server.Example.ORG", "server.example.org."}) {
    ClientResult r = e.send("mtls", "server.example.org", get(host));
    INFO(host << ": " << r.describe());
    CHECK(e.status(r) == 200);
    ++forwarded;
    CHECK(wait_until([&] { return e.app_requests() == forwarded; }, 5s));
  }
  // Host names another server: 421, reason in the body, nothing at the app, counted.
  int refused = 0;
  for (const std::string& raw :
       {get("admin.example.org"), get("localhost"), get("127.0.0.1:8443"),
        std::string("GET https://admin.example.org/d26 HTTP/1.1\\r\\nHost: admin.example.org\\r\\n\\r\\n"),
        std::string("GET http://admin.example.org/d26 HTTP/1.0\\r\\n\\r\\n")}) {
    ClientResult r = e.send("mtls", "server.example.org", raw);
    INFO(raw << ": " << r.describe());
    CHECK(r.json.str("recv_head").rfind("HTTP/1.1 421 Misdirected Request\r\n", 0) == 0);
    ++refused;
  }
  wait_until([] { return false; }, 300ms, 50ms);
  CHECK(e.app_requests() == forwarded);
  CHECK(e.rejections("mtls") == refused);
  // One request line per refusal: status 421, reason sni_host_mismatch.
  auto mismatches = [&] {
    int n = 0;
    for (const JsonObject& j : read_request_log(e.access_log)) {
      if (j.str("reason") == "sni_host_mismatch" && j.num("status") == 421) ++n;
    }
    return n;
  };
  CHECK(wait_until([&] { return mismatches() == refused; }, 5s));
}

TEST_CASE("D26 no SNI is not checked, an unknown SNI gets the listener's certificate and binds Host to it",
          "[fast][reliability][d26]") {
  SniEnv e;
  REQUIRE(e.start());
  INFO(e.proxy->stderr_text());
  // No SNI (the client dials an IP address; Python sends no SNI for one): any Host passes.
  ClientResult r = e.send("mtls", "127.0.0.1", get("admin.example.org"));
  INFO(r.describe());
  CHECK(r.ok());
  CHECK(e.status(r) == 200);
  CHECK(wait_until([&] { return e.app_requests() == 1; }, 5s));
  // An SNI the certificate does not cover: the handshake still completes (one certificate per
  // listener, no SNI policy in TLS), and Host must then be that name.
  r = e.send("mtls", "unknown.example.org", get("unknown.example.org"));
  INFO(r.describe());
  CHECK(e.status(r) == 200);
  CHECK(wait_until([&] { return e.app_requests() == 2; }, 5s));
  r = e.send("mtls", "unknown.example.org", get("server.example.org"));
  INFO(r.describe());
  CHECK(e.status(r) == 421);
  wait_until([] { return false; }, 300ms, 50ms);
  CHECK(e.app_requests() == 2);
  CHECK(e.rejections("mtls") == 1);
}

TEST_CASE("D26 sni_host_check: default off forwards a mismatch, always checks without mTLS, mtls skips non-mTLS",
          "[fast][reliability][d26]") {
  SniEnv e;
  REQUIRE(e.start());
  INFO(e.proxy->stderr_text());
  ClientResult r = e.send("dflt", "server.example.org", get("admin.example.org"));
  INFO("dflt: " << r.describe());
  CHECK(e.status(r) == 200);
  r = e.send("plain", "server.example.org", get("admin.example.org"));
  INFO("plain: " << r.describe());
  CHECK(e.status(r) == 200);
  CHECK(wait_until([&] { return e.app_requests() == 2; }, 5s));
  r = e.send("always", "server.example.org", get("admin.example.org"));
  INFO("always: " << r.describe());
  CHECK(e.status(r) == 421);
  r = e.send("always", "server.example.org", get("server.example.org"));
  INFO("always, same name: " << r.describe());
  CHECK(e.status(r) == 200);
  CHECK(wait_until([&] { return e.app_requests() == 3; }, 5s));
  CHECK(e.rejections("always") == 1);
  CHECK(e.rejections("dflt") == 0);
  CHECK(e.rejections("plain") == 0);
}
