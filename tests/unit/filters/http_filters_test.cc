// RELIABILITY §3 A11: forwarding-header spoofing and injection (XFCC, XFF, XFP), header rules,
// access-log escaping.

#include <catch2/catch.hpp>

#include <string>

#include "filters/http1/forwarded.h"
#include "filters/http1/log_fields.h"
#include "filters/http1/parser.h"
#include "filters/http1/xfcc.h"
#include "proxy/base/json.h"

using namespace fp::filters::http1;
using fp::certs::PeerIdentity;
using namespace std::string_literals;

namespace {

PeerIdentity peer() {
  PeerIdentity p;
  p.present = true;
  p.spiffe_id = "spiffe://example.org/ns/default/sa/client";
  p.uris = {p.spiffe_id};
  p.dns = {"client.example.org", "www.example.org"};
  p.subject = "CN=client,O=Example\\, Inc.";
  p.sha256 = "468ed33be74eee6556d90c0149c1309e9ba61d6425303443c0748a02dd8de688";
  return p;
}

RequestHead parse(const std::string& in) {
  RequestParser p;
  Event ev = p.next(in);
  REQUIRE(ev.kind == EventKind::Head);
  return p.request();
}

}  // namespace

TEST_CASE("xfcc: Envoy format, field order, quoting", "[fast][xfcc]") {
  const PeerIdentity p = peer();
  auto v = build_xfcc(p, XfccConfig{});
  REQUIRE(v);
  CHECK(*v ==
        "Hash=468ed33be74eee6556d90c0149c1309e9ba61d6425303443c0748a02dd8de688;"
        "Subject=\"CN=client,O=Example\\\\, Inc.\";"
        "URI=spiffe://example.org/ns/default/sa/client;DNS=client.example.org;DNS=www.example.org");
  XfccConfig by;
  by.by = "spiffe://example.org/ns/proxy";
  auto vb = build_xfcc(p, by);
  REQUIRE(vb);
  CHECK(vb->rfind("By=spiffe://example.org/ns/proxy;Hash=", 0) == 0);
}

TEST_CASE("xfcc: quoting and escaping of hostile SAN contents", "[fast][xfcc]") {
  CHECK(*xfcc_quote("plain.example", false) == "plain.example");
  CHECK(*xfcc_quote("plain", true) == "\"plain\"");
  CHECK(*xfcc_quote("a,b", false) == "\"a,b\"");
  CHECK(*xfcc_quote("a;b", false) == "\"a;b\"");
  CHECK(*xfcc_quote("a=b", false) == "\"a=b\"");
  CHECK(*xfcc_quote("a\"b", false) == "\"a\\\"b\"");
  CHECK(*xfcc_quote("a\\b", false) == "\"a\\\\b\"");
  CHECK(*xfcc_quote("\";By=spiffe://evil;\"", false) == "\"\\\";By=spiffe://evil;\\\"\"");
  CHECK_FALSE(xfcc_quote("a\r\nX-Evil: 1", false));
  CHECK_FALSE(xfcc_quote("a\nb", false));
  CHECK_FALSE(xfcc_quote("a\0b"s, false));
  CHECK_FALSE(xfcc_quote("a\x1b[31m", true));

  PeerIdentity p = peer();
  p.uris = {"spiffe://example.org/a,URI=spiffe://example.org/admin"};
  auto v = build_xfcc(p, XfccConfig{});
  REQUIRE(v);
  CHECK(v->find("URI=\"spiffe://example.org/a,URI=spiffe://example.org/admin\"") != std::string::npos);
}

TEST_CASE("xfcc filter: client XFCC always removed, one well-formed header, CR/LF/NUL → 400", "[fast][xfcc]") {
  XfccFilterFactory factory(XfccConfig{});
  auto f = factory.create();
  CHECK(f->name() == "xfcc");
  const PeerIdentity p = peer();
  ConnContext ctx;
  ctx.peer = &p;

  SECTION("spoofed XFCC (two lines, odd case) replaced by exactly one") {
    RequestHead h = parse("GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-Client-Cert: By=x;URI=spiffe://evil\r\n"
                          "x-forwarded-client-cert: Hash=00\r\n\r\n");
    CHECK_FALSE(f->on_request_head(h, ctx).respond);
    CHECK(h.headers.count("x-forwarded-client-cert") == 1);
    CHECK(h.headers.get("X-Forwarded-Client-Cert")->find("evil") == std::string::npos);
    const std::string wire = h.serialize();
    CHECK(wire.find("X-Forwarded-Client-Cert: Hash=468ed") != std::string::npos);
  }
  SECTION("no client certificate: spoofed header removed, none set") {
    RequestHead h = parse("GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-Client-Cert: URI=spiffe://evil\r\n\r\n");
    ConnContext anon;
    CHECK_FALSE(f->on_request_head(h, anon).respond);
    CHECK(h.headers.count("x-forwarded-client-cert") == 0);
  }
  for (std::string bad : {"evil\r\nX-Admin: 1"s, "evil\n"s, "ev\0il"s, "ev\ril"s}) {
    SECTION("unsafe certificate value is refused, never emitted: " + std::to_string(bad.size())) {
      for (int field = 0; field < 3; ++field) {
        PeerIdentity q = peer();
        if (field == 0) q.uris = {"spiffe://example.org/" + bad};
        if (field == 1) q.dns = {bad};
        if (field == 2) q.subject = "CN=" + bad;
        ConnContext c;
        c.peer = &q;
        RequestHead h = parse("GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-Client-Cert: spoof\r\n\r\n");
        HeadVerdict v = f->on_request_head(h, c);
        CHECK(v.respond);
        CHECK(v.status == 400);
        CHECK(v.reason == "xfcc_invalid_value");
        CHECK(h.headers.count("x-forwarded-client-cert") == 0);
      }
    }
  }
}

TEST_CASE("forwarded: XFF trusted hops (Envoy use_remote_address semantics), XFP, XFH", "[fast][forwarded]") {
  const std::string spoof = "GET / HTTP/1.1\r\nHost: app.example\r\nX-Forwarded-For: 203.0.113.128, 203.0.113.10\r\n"
                            "X-Forwarded-For: 203.0.113.1\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: evil\r\n\r\n";
  SECTION("trusted_hops = 0: client values overwritten, never appended") {
    RequestHead h = parse(spoof);
    ForwardedConfig c;
    c.set_host = true;
    ForwardedResult r = apply_forwarded(h.headers, c, "192.0.2.5", true);
    CHECK(r.client_address == "192.0.2.5");
    CHECK_FALSE(r.xff_trusted);
    CHECK(h.headers.count("x-forwarded-for") == 1);
    CHECK(*h.headers.get("x-forwarded-for") == "192.0.2.5");
    CHECK(*h.headers.get("x-forwarded-proto") == "https");
    CHECK(*h.headers.get("x-forwarded-host") == "app.example");
  }
  SECTION("trusted_hops = 2: appended; client is the 2nd from the right (Envoy example 3)") {
    RequestHead h = parse(spoof);
    ForwardedConfig c;
    c.trusted_hops = 2;
    ForwardedResult r = apply_forwarded(h.headers, c, "192.0.2.5", true);
    CHECK(r.xff_trusted);
    CHECK(r.client_address == "203.0.113.10");
    CHECK(h.headers.count("x-forwarded-for") == 1);
    CHECK(*h.headers.get("x-forwarded-for") == "203.0.113.128, 203.0.113.10, 203.0.113.1, 192.0.2.5");
    CHECK(*h.headers.get("x-forwarded-proto") == "http");  // a trusted proxy saw plain http
  }
  SECTION("trusted_hops = 1: the rightmost received address") {
    RequestHead h = parse(spoof);
    ForwardedConfig c;
    c.trusted_hops = 1;
    CHECK(apply_forwarded(h.headers, c, "10.0.0.1", true).client_address == "203.0.113.1");
  }
  SECTION("trusted_hops larger than the chain: fall back to the peer") {
    RequestHead h = parse(spoof);
    ForwardedConfig c;
    c.trusted_hops = 5;
    CHECK(apply_forwarded(h.headers, c, "10.0.0.1", true).client_address == "10.0.0.1");
  }
  SECTION("trusted, but the received XFF is not a list of IPs: overwritten") {
    RequestHead h = parse("GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 1.2.3.4, evil<script>\r\n\r\n");
    ForwardedConfig c;
    c.trusted_hops = 1;
    ForwardedResult r = apply_forwarded(h.headers, c, "10.0.0.1", false);
    CHECK_FALSE(r.xff_trusted);
    CHECK(*h.headers.get("x-forwarded-for") == "10.0.0.1");
    CHECK(*h.headers.get("x-forwarded-proto") == "http");
  }
  SECTION("no XFF at all: set to the peer; IPv6 peer") {
    RequestHead h = parse("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    ForwardedConfig c;
    c.trusted_hops = 1;
    ForwardedResult r = apply_forwarded(h.headers, c, "2001:db8::1", true);
    CHECK(r.client_address == "2001:db8::1");
    CHECK(*h.headers.get("x-forwarded-for") == "2001:db8::1");
  }
  SECTION("filter via the chain runner") {
    Http1Chain chain;
    chain.push_back(ForwardedFilterFactory(ForwardedConfig{}).create());
    chain.push_back(XfccFilterFactory(XfccConfig{}).create());
    RequestHead h = parse(spoof);
    const PeerIdentity p = peer();
    ConnContext ctx;
    ctx.remote_addr = "198.51.100.7";
    ctx.peer = &p;
    CHECK_FALSE(run_on_request_head(chain, h, ctx).respond);
    CHECK(*h.headers.get("x-forwarded-for") == "198.51.100.7");
    CHECK(h.headers.count("x-forwarded-client-cert") == 1);
  }
  CHECK(looks_like_ip("10.0.0.1"));
  CHECK(looks_like_ip("::1"));
  CHECK_FALSE(looks_like_ip("unknown"));
  CHECK_FALSE(looks_like_ip("1.2.3.4:80x"));
  CHECK_FALSE(looks_like_ip("abc.def"));
}

TEST_CASE("header rules: compiled at load, applied in order", "[fast][headers]") {
  std::string err;
  auto prog = HeaderProgram::compile({{"remove", "X-Debug", ""},
                                      {"set", "X-Env", "prod"},
                                      {"append", "Via", "1.1 fipsproxy"},
                                      {"sanitize_set", "X-Internal", "yes"}},
                                     err);
  REQUIRE(prog);
  CHECK(prog->ops().size() == 4);
  RequestHead h = parse("GET / HTTP/1.1\r\nHost: a\r\nX-Debug: 1\r\nX-Env: dev\r\nX-Env: dev2\r\nVia: 1.0 a\r\n"
                        "X-Internal: spoof\r\nX-Internal: spoof2\r\n\r\n");
  prog->apply(h.headers);
  CHECK(h.serialize() == "GET / HTTP/1.1\r\nHost: a\r\nX-Env: prod\r\nVia: 1.0 a, 1.1 fipsproxy\r\nX-Internal: yes\r\n\r\n");

  for (const HeaderRule& bad : std::vector<HeaderRule>{{"replace", "X-A", "b"},
                                                       {"set", "X A", "b"},
                                                       {"set", "", "b"},
                                                       {"set", "X-A", "b\r\nX-Evil: 1"},
                                                       {"set", "X-A", "b\0"s},
                                                       {"set", "X-A", ""},
                                                       {"remove", "X-A", "b"},
                                                       {"set", "Content-Length", "0"},
                                                       {"remove", "Transfer-Encoding", ""},
                                                       {"set", "host", "evil"}}) {
    std::string e;
    CHECK_FALSE(HeaderProgram::compile({{"set", "X-Ok", "1"}, bad}, e));
    CHECK(e.rfind("rules[1]: ", 0) == 0);
  }
  HeaderRulesFilterFactory factory(*HeaderProgram::compile({{"set", "X-Req", "1"}}, err),
                                   *HeaderProgram::compile({{"remove", "Server", ""}}, err));
  auto f = factory.create();
  RequestHead r = parse("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
  CHECK_FALSE(f->on_request_head(r, ConnContext{}).respond);
  CHECK(*r.headers.get("x-req") == "1");
  ResponseHead resp;
  resp.status = 200;
  resp.headers.add("Server", "app");
  f->on_response_head(resp, ConnContext{});
  CHECK(resp.headers.empty());
}

TEST_CASE("access-log fields: one line whatever the input", "[fast][access_log]") {
  const std::string hostile = "/a\r\nfake: line\n\x1b[2J\xff\xfe\xc3(\0end"s;
  const std::string out = log_field(hostile);
  CHECK(out.find('\n') == std::string::npos);
  CHECK(out.find('\r') == std::string::npos);
  CHECK(out.find('\x1b') == std::string::npos);
  CHECK(out.find('\0') == std::string::npos);
  CHECK(out.find("\\u001b") != std::string::npos);
  CHECK(out.find("\\u00ff") != std::string::npos);
  CHECK(out.find("\\r\\n") != std::string::npos);
  // It is a JSON string that reads back to the original printable parts.
  auto obj = fp::base::parse_flat_json("{\"path\":" + out + "}");
  REQUIRE(obj);
  CHECK(obj->at("path").find("fake: line") != std::string::npos);
  // Valid UTF-8 is kept; long values are cut at a character boundary.
  CHECK(log_field("caf\xc3\xa9") == "\"caf\xc3\xa9\"");
  const std::string longv = std::string(10, 'a') + "\xc3\xa9" + std::string(10, 'b');
  CHECK(log_field(longv, 11) == "\"aaaaaaaaaa...\"");
  CHECK(log_field(std::string(5000, 'x')).size() == kLogFieldMax + 5);
}
