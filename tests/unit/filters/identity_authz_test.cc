// identity_authz (issue #8): exact SPIFFE ID / trust domain / DNS matching, segment-aware
// longest-prefix routes, and paths the upstream could read differently refused while routes
// are configured. Each refusal has an allowed control next to it.

#include <catch2/catch.hpp>

#include "filters/http1/identity_authz.h"
#include "filters/http1/parser.h"

using namespace fp::filters::http1;
using fp::certs::PeerIdentity;

namespace {

PeerIdentity peer(std::vector<std::string> uris, std::vector<std::string> dns = {}) {
  PeerIdentity p;
  p.present = true;
  p.uris = std::move(uris);
  for (const auto& u : p.uris) {
    if (u.rfind("spiffe://", 0) == 0 && p.spiffe_id.empty()) p.spiffe_id = u;
  }
  p.dns = std::move(dns);
  return p;
}

RequestHead head(const std::string& target) {
  RequestHead h;
  h.method = "GET";
  h.target = target;
  h.absolute_form = target.rfind("http", 0) == 0;
  h.headers.add("Host", "a");
  return h;
}

// The reason token, or "" for Continue.
std::string decide(const AuthzConfig& c, const std::string& target, const PeerIdentity* p) {
  HeadVerdict v = authorize(c, head(target), p);
  return v.respond ? std::to_string(v.status) + " " + v.reason : "";
}

const std::string kAdmin = "spiffe://example.org/ns/ops/sa/admin";
const std::string kWeb = "spiffe://example.org/ns/default/sa/web";

AuthzConfig routes_config() {
  AuthzConfig c;
  c.allow.trust_domains = {"example.org"};  // default: the whole trust domain
  AuthzRoute admin{"/admin", {}};
  admin.allow.spiffe_ids = {kAdmin};
  AuthzRoute pub{"/admin/public/", {}};
  pub.allow.dns = {"web.example.org"};
  pub.allow.spiffe_ids = {kWeb};
  c.routes = {admin, pub};
  return c;
}

}  // namespace

TEST_CASE("identity_authz: SPIFFE IDs match exactly, never by prefix or truncation", "[fast][authz]") {
  fp::config::IdentityAllow a;
  a.spiffe_ids = {kAdmin};
  CHECK(identity_allowed(a, peer({kAdmin})));                       // control
  CHECK_FALSE(identity_allowed(a, peer({kAdmin + "2"})));           // longer
  CHECK_FALSE(identity_allowed(a, peer({kAdmin + "/x"})));          // below
  CHECK_FALSE(identity_allowed(a, peer({kAdmin.substr(0, kAdmin.size() - 1)})));  // truncated
  CHECK_FALSE(identity_allowed(a, peer({"spiffe://example.org/ns/ops/sa/ADMIN"})));
  CHECK_FALSE(identity_allowed(a, peer({"SPIFFE://example.org/ns/ops/sa/admin"})));
  CHECK_FALSE(identity_allowed(a, peer({}, {kAdmin})));             // a DNS SAN never matches a URI entry
  PeerIdentity absent = peer({kAdmin});
  absent.present = false;
  CHECK_FALSE(identity_allowed(a, absent));
  // Any URI SAN of the certificate may carry the allowed ID.
  CHECK(identity_allowed(a, peer({"spiffe://other.org/x", kAdmin})));
}

TEST_CASE("identity_authz: trust domains match the exact spiffe://<td>/ prefix of a well-formed ID",
          "[fast][authz]") {
  fp::config::IdentityAllow a;
  a.trust_domains = {"example.org"};
  CHECK(identity_allowed(a, peer({"spiffe://example.org/ns/x"})));  // control
  CHECK_FALSE(identity_allowed(a, peer({"spiffe://example.org.evil.com/ns/x"})));
  CHECK_FALSE(identity_allowed(a, peer({"spiffe://example.organization/ns/x"})));
  CHECK_FALSE(identity_allowed(a, peer({"spiffe://sub.example.org/ns/x"})));
  CHECK_FALSE(identity_allowed(a, peer({"spiffe://example.org"})));      // no path: the domain itself
  CHECK_FALSE(identity_allowed(a, peer({"spiffe://example.org/"})));     // empty path
  CHECK_FALSE(identity_allowed(a, peer({"spiffe://Example.org/ns/x"})));  // not well-formed (case)
  CHECK_FALSE(identity_allowed(a, peer({"spiffe://example.org/ns//x"})));
  CHECK_FALSE(identity_allowed(a, peer({"spiffe://example.org/ns/../x"})));
  CHECK_FALSE(identity_allowed(a, peer({"spiffe://example.org/ns/x/"})));
  CHECK_FALSE(identity_allowed(a, peer({"spiffe://example.org/ns/x?y"})));
  CHECK_FALSE(identity_allowed(a, peer({"spiffe://user@example.org/ns/x"})));
  CHECK_FALSE(identity_allowed(a, peer({"https://example.org/ns/x"})));
  CHECK_FALSE(identity_allowed(a, peer({}, {"example.org"})));            // DNS SAN: never
}

TEST_CASE("identity_authz: DNS names match exactly, case-insensitively, never URI SANs", "[fast][authz]") {
  fp::config::IdentityAllow a;
  a.dns = {"web.example.org"};
  CHECK(identity_allowed(a, peer({}, {"web.example.org"})));  // control
  CHECK(identity_allowed(a, peer({}, {"WEB.Example.ORG"})));
  CHECK_FALSE(identity_allowed(a, peer({}, {"web.example.org.evil.com"})));
  CHECK_FALSE(identity_allowed(a, peer({}, {"x.web.example.org"})));
  CHECK_FALSE(identity_allowed(a, peer({}, {"*.example.org"})));
  CHECK_FALSE(identity_allowed(a, peer({}, {"web.example.org."})));
  CHECK_FALSE(identity_allowed(a, peer({"web.example.org"})));  // a URI SAN never matches a DNS entry
}

TEST_CASE("identity_authz: routes are segment-aware and the longest prefix wins", "[fast][authz]") {
  CHECK(prefix_covers("/admin", "/admin"));
  CHECK(prefix_covers("/admin", "/admin/"));
  CHECK(prefix_covers("/admin", "/admin/users"));
  CHECK(prefix_covers("/admin", "/admin;jsessionid=1"));
  CHECK_FALSE(prefix_covers("/admin", "/administrator"));
  CHECK_FALSE(prefix_covers("/admin", "/admi"));
  CHECK_FALSE(prefix_covers("/admin", "/Admin"));
  CHECK(prefix_covers("/admin/", "/admin/x"));
  CHECK(prefix_covers("/admin/", "/admin/"));
  CHECK_FALSE(prefix_covers("/admin/", "/admin"));
  CHECK(prefix_covers("/", "/anything"));

  const AuthzConfig c = routes_config();
  REQUIRE(match_route(c, "/admin/x") != nullptr);
  CHECK(match_route(c, "/admin/x")->prefix == "/admin");
  CHECK(match_route(c, "/admin/public/x")->prefix == "/admin/public/");
  CHECK(match_route(c, "/administrator") == nullptr);

  const PeerIdentity admin = peer({kAdmin});
  const PeerIdentity web = peer({kWeb}, {"web.example.org"});
  const PeerIdentity outsider = peer({"spiffe://other.org/ns/x"});
  CHECK(decide(c, "/admin", &admin).empty());
  CHECK(decide(c, "/admin/users?x=1", &admin).empty());
  CHECK(decide(c, "/admin", &web) == "403 identity_denied");
  CHECK(decide(c, "/admin;x", &web) == "403 identity_denied");
  CHECK(decide(c, "/admin?x", &web) == "403 identity_denied");
  CHECK(decide(c, "https://a/admin/x", &web) == "403 identity_denied");  // absolute-form
  CHECK(decide(c, "/admin/public/x", &web).empty());    // the longer route
  CHECK(decide(c, "/admin/public/x", &admin) == "403 identity_denied");
  CHECK(decide(c, "/administrator", &web).empty());     // default: example.org
  CHECK(decide(c, "/other", &outsider) == "403 identity_denied");
  CHECK(decide(c, "/other", nullptr) == "403 identity_missing");
  CHECK(decide(c, "/admin", nullptr) == "403 identity_missing");

  // No default: uncovered paths are allowed, also without a certificate.
  AuthzConfig only_routes = c;
  only_routes.allow = {};
  CHECK(decide(only_routes, "/other", nullptr).empty());
  CHECK(decide(only_routes, "/admin", &web) == "403 identity_denied");
  // Nothing configured: everything passes.
  CHECK(decide(AuthzConfig{}, "/admin/../x", nullptr).empty());
}

TEST_CASE("identity_authz: encoded, dotted and doubled paths cannot bypass a route", "[fast][authz]") {
  const AuthzConfig c = routes_config();
  const PeerIdentity web = peer({kWeb}, {"web.example.org"});
  // Each of these would reach /admin on an upstream that decodes or normalizes the path.
  for (const char* t : {"/%61dmin", "/%41dmin", "/adm%69n", "/%2e/admin", "/%2E%2E/admin", "//admin", "/./admin",
                        "/x/../admin", "/admin/..", "/x/..;/admin", "/.;/admin", "/x%2F..%2Fadmin",
                        "/x%2f..%2fadmin", "/admin%3Bx", "/\\admin", "/x%5C..%5Cadmin", "/adm%00in",
                        "/adm%7Ein", "/%", "/%6", "/%zz"}) {
    INFO(t);
    CHECK_FALSE(path_normalized(t));
    CHECK(decide(c, t, &web) == "400 path_not_normalized");
  }
  // Controls: ordinary paths, reserved characters that stay encoded, dots inside names.
  for (const char* t : {"/", "/x", "/admin.html", "/a/b.c/d", "/a/...", "/files/a%20b", "/q%3Fx", "/a%25b",
                        "/a%2Cb", "/admin/", "/a;b=c/d"}) {
    INFO(t);
    CHECK(path_normalized(t));
  }
  CHECK(decide(c, "/files/a%20b", &web).empty());
  // Without routes the path is not policed (nothing could be bypassed).
  AuthzConfig defaults_only;
  defaults_only.allow.trust_domains = {"example.org"};
  CHECK(decide(defaults_only, "/%61dmin", &web).empty());
}

TEST_CASE("identity_authz: the filter refuses before anything is forwarded", "[fast][authz]") {
  IdentityAuthzFilterFactory f(routes_config());
  auto filter = f.create();
  CHECK(filter->name() == "identity_authz");
  const PeerIdentity web = peer({kWeb}, {"web.example.org"});
  ConnContext ctx{"in", "127.0.0.1", true, &web};
  RequestHead h = head("/admin/x");
  HeadVerdict v = filter->on_request_head(h, ctx);
  CHECK(v.respond);
  CHECK(v.status == 403);
  CHECK(v.reason == "identity_denied");
  CHECK(v.detail.find("route /admin") != std::string::npos);
  RequestHead ok = head("/admin/public/x");
  CHECK_FALSE(filter->on_request_head(ok, ctx).respond);
}
