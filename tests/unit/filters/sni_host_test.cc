// sni_host (RELIABILITY D26): a request whose host is not the TLS SNI gets 421
// sni_host_mismatch; no SNI, or no host at all, is not checked.

#include <catch2/catch.hpp>

#include "filters/http1/sni_host.h"

using namespace fp::filters::http1;

namespace {

RequestHead with_host(const std::string& host, int minor = 1) {
  RequestHead h;
  h.method = "GET";
  h.target = "/";
  h.version_minor = minor;
  if (!host.empty()) h.headers.add("Host", host);
  return h;
}

}  // namespace

TEST_CASE("sni_host: host_without_port drops the port and one trailing dot, keeps IPv6 brackets", "[fast][sni_host]") {
  CHECK(host_without_port("a.example.org") == "a.example.org");
  CHECK(host_without_port("a.example.org:8443") == "a.example.org");
  CHECK(host_without_port("a.example.org.") == "a.example.org");
  CHECK(host_without_port("a.example.org.:443") == "a.example.org");
  CHECK(host_without_port("[::1]:8443") == "[::1]");
  CHECK(host_without_port("[::1]") == "[::1]");
  CHECK(host_without_port("127.0.0.1:80") == "127.0.0.1");
  CHECK(host_without_port("") == "");
}

TEST_CASE("sni_host: Host equal to the SNI passes, any other host is 421 sni_host_mismatch", "[fast][sni_host]") {
  const std::string sni = "server.example.org";
  for (const char* same : {"server.example.org", "SERVER.Example.ORG", "server.example.org:8443",
                           "server.example.org.", "server.example.org.:1"}) {
    INFO(same);
    CHECK_FALSE(check_sni_host(with_host(same), sni).respond);
  }
  for (const char* other : {"admin.example.org", "server.example.org.evil", "xserver.example.org",
                            "127.0.0.1", "[::1]:8443", "server.example.or", "server.example.org..",
                            "server.example.org%2e"}) {
    INFO(other);
    HeadVerdict v = check_sni_host(with_host(other), sni);
    CHECK(v.respond);
    CHECK(v.status == 421);
    CHECK(v.reason == kSniHostMismatch);
    CHECK(v.detail.find("SNI server.example.org") != std::string::npos);
  }
}

TEST_CASE("sni_host: no SNI or no host is not checked, absolute-form uses the target's authority", "[fast][sni_host]") {
  CHECK_FALSE(check_sni_host(with_host("anything.example.org"), "").respond);
  CHECK_FALSE(check_sni_host(with_host("", 0), "server.example.org").respond);  // HTTP/1.0, no Host
  RequestHead abs = with_host("", 0);
  abs.target = "https://admin.example.org:8443/x?y";
  abs.absolute_form = true;
  CHECK(check_sni_host(abs, "server.example.org").status == 421);
  abs.target = "http://server.example.org/x";
  CHECK_FALSE(check_sni_host(abs, "server.example.org").respond);
}

TEST_CASE("sni_host: the filter reads the SNI from the connection context", "[fast][sni_host]") {
  auto f = SniHostFilterFactory().create();
  CHECK(f->name() == "sni_host");
  RequestHead h = with_host("admin.example.org");
  ConnContext ctx;
  ctx.sni = "server.example.org";
  CHECK(f->on_request_head(h, ctx).status == 421);
  ctx.sni = "admin.example.org";
  CHECK_FALSE(f->on_request_head(h, ctx).respond);
  ctx.sni = {};
  CHECK_FALSE(f->on_request_head(h, ctx).respond);
}
