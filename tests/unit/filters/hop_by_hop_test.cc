// hop_by_hop (issue #8): Connection and the fields it names, Keep-Alive, Proxy-Connection, TE,
// Trailer and Upgrade never pass the proxy; framing and the proxy's own headers cannot be named
// away; Expect other than one "100-continue" is 417.

#include <catch2/catch.hpp>

#include "filters/http1/forwarded.h"
#include "filters/http1/hop_by_hop.h"
#include "filters/http1/xfcc.h"

using namespace fp::filters::http1;

namespace {

RequestHead request(std::vector<std::pair<std::string, std::string>> fields, int minor = 1) {
  RequestHead h;
  h.method = "POST";
  h.target = "/";
  h.version_minor = minor;
  h.headers.add("Host", "a");
  for (auto& [n, v] : fields) h.headers.add(n, v);
  return h;
}

}  // namespace

TEST_CASE("hop_by_hop: the standard set and every Connection-listed field are removed", "[fast][hop]") {
  RequestHead h = request({{"Connection", "keep-alive, X-Drop-Me"},
                           {"Connection", " x-also "},
                           {"Keep-Alive", "timeout=5"},
                           {"Proxy-Connection", "keep-alive"},
                           {"TE", "trailers"},
                           {"Trailer", "X-Checksum"},
                           {"X-Drop-Me", "1"},
                           {"X-Also", "2"},
                           {"X-Keep-Me", "3"},
                           {"Content-Length", "5"},
                           {"Proxy-Authorization", "Basic eA=="}});
  CHECK(strip_hop_by_hop(h.headers) == 8);
  for (const char* gone : {"Connection", "Keep-Alive", "Proxy-Connection", "TE", "Trailer", "X-Drop-Me", "X-Also"}) {
    INFO(gone);
    CHECK_FALSE(h.headers.has(gone));
  }
  // Controls: unlisted fields, framing and Proxy-Authorization stay, in order.
  CHECK(h.serialize() ==
        "POST / HTTP/1.1\r\nHost: a\r\nX-Keep-Me: 3\r\nContent-Length: 5\r\nProxy-Authorization: Basic eA==\r\n\r\n");
}

TEST_CASE("hop_by_hop: Connection cannot name framing, Host or the proxy's own headers", "[fast][hop]") {
  RequestHead h = request({{"Connection", "Content-Length, Transfer-Encoding, Host, X-Forwarded-Client-Cert, "
                                          "X-Forwarded-For, x-forwarded-proto, X-Forwarded-Host, X-Other"},
                           {"Content-Length", "5"},
                           {"X-Forwarded-Client-Cert", "By=spiffe://evil"},
                           {"X-Forwarded-For", "6.6.6.6"},
                           {"X-Other", "x"}});
  strip_hop_by_hop(h.headers);
  CHECK(h.headers.has("Content-Length"));
  CHECK(h.headers.has("Host"));
  CHECK_FALSE(h.headers.has("X-Other"));
  CHECK_FALSE(h.headers.has("Connection"));
  // The later filters own XFCC and XFF: whatever the client sent is replaced by ours.
  fp::certs::PeerIdentity peer;
  peer.present = true;
  peer.uris = {"spiffe://example.org/ns/default/sa/client"};
  peer.spiffe_id = peer.uris[0];
  peer.sha256 = "ab";
  peer.subject = "CN=client";
  REQUIRE_FALSE(apply_xfcc(h.headers, &peer, XfccConfig{}).respond);
  apply_forwarded(h.headers, ForwardedConfig{}, "127.0.0.1", true);
  CHECK(h.headers.count("X-Forwarded-Client-Cert") == 1);
  CHECK(h.headers.get("X-Forwarded-Client-Cert")->find("spiffe://evil") == std::string::npos);
  CHECK(*h.headers.get("X-Forwarded-For") == "127.0.0.1");
}

TEST_CASE("hop_by_hop: the filter strips responses too, and keeps the parser's keep-alive decision",
          "[fast][hop]") {
  HopByHopFilterFactory f;
  auto filter = f.create();
  CHECK(filter->name() == "hop_by_hop");
  ConnContext ctx{"in", "127.0.0.1", true, nullptr};
  ResponseHead r;
  r.status = 200;
  r.reason = "OK";
  r.keep_alive = false;
  r.headers.add("Connection", "close, X-Internal");
  r.headers.add("X-Internal", "secret");
  r.headers.add("Keep-Alive", "timeout=5");
  r.headers.add("Upgrade", "h2c");
  r.headers.add("Transfer-Encoding", "chunked");
  r.headers.add("X-Public", "1");
  filter->on_response_head(r, ctx);
  CHECK(r.serialize() == "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Public: 1\r\n\r\n");
  CHECK_FALSE(r.keep_alive);  // decided by the parser, unaffected
  RequestHead q = request({{"Connection", "close"}});
  q.keep_alive = false;
  CHECK_FALSE(filter->on_request_head(q, ctx).respond);
  CHECK_FALSE(q.headers.has("Connection"));
  CHECK_FALSE(q.keep_alive);
}

TEST_CASE("hop_by_hop: Expect is 100-continue or 417", "[fast][hop][expect]") {
  {
    RequestHead h = request({{"Expect", "100-Continue"}, {"Content-Length", "5"}});
    CHECK_FALSE(check_expect(h).respond);  // control: forwarded for the upstream's 100
    CHECK(h.headers.has("Expect"));
  }
  {
    RequestHead h = request({{"Expect", "100-continue"}}, 0);
    CHECK_FALSE(check_expect(h).respond);
    CHECK_FALSE(h.headers.has("Expect"));  // HTTP/1.0: ignored, so not forwarded
  }
  CHECK_FALSE(check_expect(*std::make_unique<RequestHead>(request({}))).respond);
  for (const auto& fields : std::vector<std::vector<std::pair<std::string, std::string>>>{
           {{"Expect", "200-ok"}},
           {{"Expect", "100-continue, foo"}},
           {{"Expect", ""}},
           {{"Expect", "100-continue"}, {"Expect", "100-continue"}}}) {
    RequestHead h = request(fields);
    HeadVerdict v = check_expect(h);
    CHECK(v.respond);
    CHECK(v.status == 417);
    CHECK(v.reason == "expectation_failed");
  }
  HopByHopFilterFactory f;
  auto filter = f.create();
  ConnContext ctx{"in", "127.0.0.1", true, nullptr};
  RequestHead bad = request({{"Expect", "something"}});
  CHECK(filter->on_request_head(bad, ctx).status == 417);
}
