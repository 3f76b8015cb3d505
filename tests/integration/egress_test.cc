// Egress (issue #13): the app speaks plain HTTP to an egress listener on loopback, fipsproxy
// resolves the destination, originates TLS under the FIPS policy (SNI = host, chain and host
// name verified) and forwards the request. Default deny: only [[egress.destination]] hosts and
// ports pass; everything else is 403 and no upstream connection is opened. Destinations that
// speak only non-approved TLS, or present a wrong name or an unknown CA, get 502 with a reason.

#include <catch2/catch.hpp>

#include <fstream>
#include <thread>

#include "tests/integration/policy_matrix_support.h"
#include "tests/integration/upstream_support.h"

using namespace fp::test;
using namespace fp::test::policy;
using namespace std::chrono_literals;

namespace {

struct Dest {
  std::string host;
  std::vector<int> ports;
  std::string extra;  // more TOML lines for the destination
};

struct EgressEnv {
  TempDir dir{"fpegress"};
  std::string admin = short_uds_path("egadm");
  uint16_t port = free_tcp_port();
  std::unique_ptr<ProxyProcess> proxy;

  std::string config(const std::vector<Dest>& dests, const std::string& egress_extra) const {
    std::string cfg = "workers = 1\naccess_log = \"" + dir.file("access.log") + "\"\n[audit]\npath = \"" +
                      dir.file("audit.log") + "\"\n[admin]\naddress = \"unix:" + admin +
                      "\"\n[[listener]]\nname = \"egress\"\naddress = \"127.0.0.1:" + std::to_string(port) +
                      "\"\nmode = \"http1\"\negress = true\n[egress]\nca = \"" + pp("ca.pem") + "\"\n" +
                      egress_extra;
    for (const Dest& d : dests) {
      cfg += "[[egress.destination]]\nhost = \"" + d.host + "\"\nports = [";
      for (size_t i = 0; i < d.ports.size(); ++i) cfg += (i ? ", " : "") + std::to_string(d.ports[i]);
      cfg += "]\n" + d.extra;
    }
    return cfg;
  }
  bool start(const std::vector<Dest>& dests, const std::string& egress_extra = "") {
    proxy = std::make_unique<ProxyProcess>(config(dests, egress_extra), dir.path());
    return proxy->start();
  }
  std::string proxy_url() const { return "http://127.0.0.1:" + std::to_string(port); }
  // curl with the proxy, as an app with HTTP_PROXY would.
  std::string get(const std::string& url) const { return curl({"-x", proxy_url(), url}); }
  std::string metrics() const { return admin_get(admin, "/metrics"); }
  // The audit chain is written by its own thread: wait (bounded) until `needle` is in it.
  std::string audit(const std::string& needle = "") const {
    std::string a;
    wait_until([&] { return (a = read_file(dir.file("audit.log"))).find(needle) != std::string::npos; }, 5s);
    return a;
  }
  std::string log() const { return proxy ? proxy->stderr_text() : ""; }
};

std::string url(int port, const std::string& path = "/", const std::string& host = "localhost") {
  return "http://" + host + ":" + std::to_string(port) + path;
}

Tool control_client(uint16_t port, std::vector<std::string> extra = {}, std::vector<std::string> env = {}) {
  std::vector<std::string> args = {"-cipher", "ALL:@SECLEVEL=0", "-ciphersuites",
                                   "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256",
                                   "-groups", "X25519:P-256:P-384:P-521:ffdhe2048"};
  args.insert(args.end(), extra.begin(), extra.end());
  return s_client(port, args, std::move(env));
}

}  // namespace

TEST_CASE("egress: curl and Python urllib with HTTP_PROXY reach a TLS destination, TLS 1.3 AES-GCM, our SNI",
          "[fast][egress]") {
  KaServer up("127.0.0.1:0", pp("server.pem"), pp("server.key"));
  REQUIRE(up.ok());
  EgressEnv eg;
  REQUIRE(eg.start({{"localhost", {up.port()}, ""}}));
  std::string r = eg.get(url(up.port(), "/v1/x?q=1"));
  INFO(r << "\n" << up.output() << "\n" << eg.log());
  CHECK(r.rfind("200\n", 0) == 0);
  CHECK(r.find("conn=1 req=1 path=/v1/x?q=1 host=localhost:" + std::to_string(up.port())) != std::string::npos);
  auto ev = up.events();
  REQUIRE(!ev.empty());
  CHECK(ev[0].str("tls_version") == "TLSv1.3");
  CHECK(ev[0].str("cipher").find("GCM") != std::string::npos);
  CHECK(ev[0].str("sni") == "localhost");
  // Python's standard library honours HTTP_PROXY like requests does.
  std::string out, err;
  ExitStatus st = run_command(
      {"python3", "-c",
       "import urllib.request,sys; print(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())",
       url(up.port(), "/py")},
      20s, &out, &err, {"HTTP_PROXY=" + eg.proxy_url(), "http_proxy=" + eg.proxy_url(), "NO_PROXY=", "no_proxy="});
  INFO(out << err);
  CHECK(st.code == 0);
  CHECK(out.find("conn=1 req=2 path=/py") != std::string::npos);  // pooled: same TLS connection
  // ... and Python requests (python3-requests), the way most SDKs call out.
  out.clear();
  err.clear();
  st = run_command({"python3", "-c",
                    "import requests,sys; r = requests.get(sys.argv[1], timeout=10); print(r.status_code, r.text)",
                    url(up.port(), "/requests")},
                   20s, &out, &err, {"HTTP_PROXY=" + eg.proxy_url(), "NO_PROXY=", "no_proxy="});
  INFO(out << err);
  CHECK(st.code == 0);
  CHECK(out.find("200 conn=1 req=3 path=/requests") != std::string::npos);
  CHECK(up.accepts() == 1);
  const std::string m = eg.metrics();
  CHECK(metric_value(m, "fipsproxy_upstream_pool_reuses_total{upstream=\"egress:localhost\"}") == 2);
  auto reqs = wait_request_log(eg.dir.file("access.log"), 3);
  REQUIRE(reqs.size() == 3);
  CHECK(reqs[0].str("up_tls_version") == "TLSv1.3");
  CHECK(reqs[1].boolean("upstream_reused"));
  // The upstream handshake is in the audit chain: approved, with our SNI.
  const std::string audit = eg.audit("\"verdict\":\"approved\"");
  CHECK(audit.find("\"cluster\":\"egress:localhost\"") != std::string::npos);
  CHECK(audit.find("\"verdict\":\"approved\"") != std::string::npos);
}

TEST_CASE("egress: an openssl s_server limited to P-256 answers through the proxy (group control)", "[fast][egress]") {
  SServer up("server", {"-www", "-groups", "P-256", "-tls1_3"});
  REQUIRE(up.ready());
  EgressEnv eg;
  REQUIRE(eg.start({{"localhost", {up.port()}, ""}}));
  const std::string r = eg.get(url(up.port()));
  INFO(r << "\n" << eg.log());
  CHECK(r.rfind("200\n", 0) == 0);
  CHECK(r.find("TLSv1.3") != std::string::npos);
  CHECK(r.find("TLS_AES_128_GCM_SHA256") != std::string::npos);
}

TEST_CASE("egress: unlisted hosts and ports get 403, no connection is opened, CONNECT is refused",
          "[fast][egress]") {
  KaServer up("127.0.0.1:0", pp("server.pem"), pp("server.key"));
  REQUIRE(up.ok());
  EgressEnv eg;
  REQUIRE(eg.start({{"localhost", {up.port()}, ""}, {"*.example.com", {443}, ""}}));
  // Positive control: the listed host and port pass.
  CHECK(eg.get(url(up.port())).rfind("200\n", 0) == 0);
  CHECK(up.accepts() == 1);
  // 127.0.0.1 names the same server but is not on the list; nor is another port of localhost;
  // nor the bare domain of a "*.example.com" rule.
  std::string r = eg.get(url(up.port(), "/", "127.0.0.1"));
  INFO(r);
  CHECK(r.rfind("403\n", 0) == 0);
  CHECK(r.find("egress_destination_denied") != std::string::npos);
  r = eg.get(url(up.port() + 1));
  CHECK(r.rfind("403\n", 0) == 0);
  CHECK(r.find("egress_port_denied") != std::string::npos);
  r = eg.get("http://example.com/");
  CHECK(r.rfind("403\n", 0) == 0);
  // Origin-form with a Host header is routed the same way.
  r = curl({eg.proxy_url() + "/x", "-H", "Host: evil.test:" + std::to_string(up.port())});
  CHECK(r.rfind("403\n", 0) == 0);
  CHECK(up.accepts() == 1);  // no refused request opened a connection
  // CONNECT would let the app do its own TLS: refused with the reason.
  Fd fd = connect_tcp("127.0.0.1", eg.port);
  REQUIRE(fd.valid());
  send_all(fd.get(), "CONNECT localhost:" + std::to_string(up.port()) + " HTTP/1.1\r\nHost: localhost:" +
                         std::to_string(up.port()) + "\r\n\r\n");
  const std::string c = read_until_close(fd.get(), 5000ms).data;
  CHECK(c.rfind("HTTP/1.1 501", 0) == 0);
  CHECK(c.find("connect_refused") != std::string::npos);
  CHECK(up.accepts() == 1);
  const std::string m = eg.metrics();
  CHECK(metric_value(m, "fipsproxy_egress_denied_total{listener=\"egress\",reason=\"destination_denied\"}") >= 3);
  CHECK(metric_value(m, "fipsproxy_egress_denied_total{listener=\"egress\",reason=\"port_denied\"}") == 1);
  CHECK(eg.audit("egress_destination_denied").find("\"reason\":\"egress_destination_denied\"") != std::string::npos);
}

TEST_CASE("egress: destinations that only speak non-approved TLS get 502 with the reason, audited",
          "[fast][egress]") {
  struct Bad {
    const char* name;
    std::string leaf;
    std::vector<std::string> server_args;
    std::vector<std::string> control_args;
    std::vector<std::string> reasons;  // one of these tokens is in the 502 body
    bool noems = false;
  };
  const std::vector<Bad> bads = {
      // We never offer ChaCha20 or X25519: the destination gives up (its alert is the reason).
      {"ChaCha20-only", "server", {"-tls1_3", "-ciphersuites", "TLS_CHACHA20_POLY1305_SHA256"}, {},
       {"tls_alert_received", "tls13_chacha_refused"}},
      {"X25519-only", "server", {"-groups", "X25519"}, {}, {"tls_alert_received", "tls_policy_violation"}},
      {"TLS 1.1", "server", {"-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0"}, {"-tls1_1"},
       {"tls_protocol_version", "tls_alert_received"}},
      {"TLS 1.2 without EMS", "server", {"-tls1_2"}, {"-tls1_2"}, {"tls_no_ems"}, true},
      {"RSA-1024 leaf", "p-rsa1024", {}, {}, {"peer_cert_policy"}},
      {"SHA-1 signed leaf", "p-sha1-leaf", {}, {}, {"peer_cert_policy"}},
  };
  for (const Bad& b : bads) {
    DYNAMIC_SECTION(b.name) {
      TempDir d("fpegems");
      std::vector<std::string> env;
      if (b.noems) env.push_back("OPENSSL_CONF=" + noems_conf(d));
      SServer up(b.leaf, b.server_args, env);
      REQUIRE(up.ready());
      // Control: the destination is up and completes a handshake with a permissive client.
      Tool ctl = control_client(up.port(), b.control_args);
      INFO("control: " << ctl.all());
      CHECK(sc_ok(ctl));
      EgressEnv eg;
      REQUIRE(eg.start({{"localhost", {up.port()}, ""}}));
      const std::string r = eg.get(url(up.port(), "/secret"));
      INFO(r << "\n" << eg.log());
      CHECK(r.rfind("502\n", 0) == 0);
      bool named = false;  // the body names the reason the operator can act on
      for (const std::string& t : b.reasons) named = named || r.find("\n" + t) != std::string::npos;
      CHECK(named);
      CHECK(up.output().find("/secret") == std::string::npos);
      const std::string audit = eg.audit("\"verdict\":\"rejected\"");
      CHECK(audit.find("\"cluster\":\"egress:localhost\"") != std::string::npos);
      CHECK(audit.find("\"verdict\":\"rejected\"") != std::string::npos);
    }
  }
}

TEST_CASE("egress: a wrong host name in the certificate or an unknown CA gets 502", "[fast][egress]") {
  SServer good("server", {"-www"});
  REQUIRE(good.ready());
  SServer other_ca("p-other-ca", {"-www"});
  REQUIRE(other_ca.ready());
  EgressEnv eg;
  // 127.0.0.2 reaches the same server, whose certificate names 127.0.0.1 and localhost only.
  REQUIRE(eg.start({{"localhost", {good.port(), other_ca.port()}, ""}, {"127.0.0.2", {good.port()}, ""}}));
  std::string r = eg.get(url(good.port()));
  CHECK(r.rfind("200\n", 0) == 0);  // control
  r = eg.get(url(good.port(), "/", "127.0.0.2"));
  INFO(r << "\n" << eg.log());
  CHECK(r.rfind("502\n", 0) == 0);
  CHECK(r.find("peer_identity_denied") != std::string::npos);
  CHECK(r.find("127.0.0.2") != std::string::npos);
  r = eg.get(url(other_ca.port()));
  CHECK(r.rfind("502\n", 0) == 0);
  CHECK(r.find("peer_cert_untrusted") != std::string::npos);
}

TEST_CASE("egress: the DNS cache honours dns_ttl (names from a private /etc/hosts)", "[fast][egress]") {
  // Two servers on one port, 127.0.0.1 and 127.0.0.2; the name moves from one to the other.
  const uint16_t p = free_tcp_port();
  KaServer a("127.0.0.1:" + std::to_string(p), pp("server.pem"), pp("server.key"));
  KaServer b("127.0.0.2:" + std::to_string(p), pp("server.pem"), pp("server.key"));
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  EgressEnv eg;
  const std::string hosts = eg.dir.file("hosts");
  // dual.test: ::1 first, where nothing listens; the proxy must go on to 127.0.0.1.
  write_file(hosts, "127.0.0.1 localhost\n127.0.0.1 moving.test\n::1 dual.test\n127.0.0.1 dual.test\n");
  // The proxy runs in a private mount namespace where that file is /etc/hosts.
  write_file(eg.dir.file("proxy.toml"),
             eg.config({{"moving.test", {p}, "sni = \"localhost\"\n"}, {"dual.test", {p}, "sni = \"localhost\"\n"}},
                       "dns_ttl = \"1s\"\nmax_idle_per_destination = 0\n") +
                 "\n[process]\nallow_root = true\nseccomp = \"off\"\n");
  std::string probe_err;
  if (run_command({"unshare", "-m", "true"}, 5s, nullptr, &probe_err).code != 0) {
    WARN("unshare -m is not permitted here; DNS TTL test skipped: " << probe_err);
    return;
  }
  Process::Options o;
  o.argv = {"unshare", "-m", "sh", "-c",
            "mount --bind '" + hosts + "' /etc/hosts && exec '" + proxy_binary() + "' run -c '" +
                eg.dir.file("proxy.toml") + "'"};
  Process px(o);
  REQUIRE(wait_until([&] { return px.read_stderr().find("msg=ready") != std::string::npos || !px.running(); }, 15s));
  INFO(px.read_stderr());
  REQUIRE(px.running());
  std::string r = eg.get(url(p, "/dual", "dual.test"));  // every address is tried in turn
  INFO(r);
  CHECK(r.find("path=/dual") != std::string::npos);
  CHECK(a.accepts() == 1);
  r = eg.get(url(p, "/1", "moving.test"));
  CHECK(r.find("conn=2 req=1 path=/1") != std::string::npos);
  CHECK(a.accepts() == 2);
  // Same inode (a bind mount follows the file): rewrite in place.
  {
    std::ofstream f(hosts, std::ios::trunc);
    f << "127.0.0.1 localhost\n127.0.0.2 moving.test\n";
  }
  r = eg.get(url(p, "/2", "moving.test"));  // within the TTL: still the cached address
  CHECK(r.find("path=/2") != std::string::npos);
  CHECK(a.accepts() == 3);
  CHECK(b.accepts() == 0);
  std::this_thread::sleep_for(1300ms);
  r = eg.get(url(p, "/3", "moving.test"));  // TTL passed: resolved again
  INFO(r);
  CHECK(r.find("path=/3") != std::string::npos);
  CHECK(b.accepts() == 1);
  const std::string m = eg.metrics();
  CHECK(metric_value(m, "fipsproxy_egress_dns_lookups_total{result=\"cache_hit\"}") == 1);
  CHECK(metric_value(m, "fipsproxy_egress_dns_lookups_total{result=\"resolved\"}") == 3);
}
