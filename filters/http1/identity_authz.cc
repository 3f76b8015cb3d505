#include "filters/http1/identity_authz.h"

namespace fp::filters::http1 {

namespace {

bool td_char(char c) noexcept { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_'; }
bool path_char(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
}
int hex(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
bool unreserved(unsigned char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
         c == '_' || c == '~';
}

}  // namespace

AuthzConfig authz_config_from(const config::HttpOptions& http) {
  AuthzConfig c;
  c.allow = http.allow;
  for (const config::HttpRoute& r : http.routes) c.routes.push_back(AuthzRoute{r.prefix, r.allow});
  return c;
}

bool spiffe_id_well_formed(std::string_view id) noexcept {
  constexpr std::string_view kScheme = "spiffe://";
  if (id.size() > 2048 || id.substr(0, kScheme.size()) != kScheme) return false;
  std::string_view rest = id.substr(kScheme.size());
  const size_t slash = rest.find('/');
  std::string_view td = rest.substr(0, slash);
  if (td.empty() || td.size() > 255) return false;
  for (char c : td) {
    if (!td_char(c)) return false;
  }
  if (slash == std::string_view::npos) return true;
  std::string_view path = rest.substr(slash);
  while (!path.empty()) {
    path.remove_prefix(1);  // the '/'
    const size_t next = path.find('/');
    std::string_view seg = path.substr(0, next);
    if (seg.empty() || seg == "." || seg == "..") return false;
    for (char c : seg) {
      if (!path_char(c)) return false;
    }
    path = next == std::string_view::npos ? std::string_view() : path.substr(next);
  }
  return true;
}

std::string_view route_path(std::string_view path_and_query) noexcept {
  return path_and_query.substr(0, path_and_query.find('?'));
}

bool path_normalized(std::string_view path) noexcept {
  if (path.empty() || path.front() != '/') return false;
  if (path.find("//") != std::string_view::npos || path.find('\\') != std::string_view::npos) return false;
  for (size_t i = 0; i < path.size(); ++i) {
    if (path[i] != '%') continue;
    if (i + 2 >= path.size()) return false;
    const int hi = hex(path[i + 1]), lo = hex(path[i + 2]);
    if (hi < 0 || lo < 0) return false;
    const auto c = static_cast<unsigned char>(hi * 16 + lo);
    if (unreserved(c) || c == '/' || c == '\\' || c == ';' || c == 0) return false;
    i += 2;
  }
  // Segments: "." and ".." are refused, with or without ";params" ("..;" is ".." to Tomcat).
  std::string_view rest = path.substr(1);
  for (;;) {
    const size_t slash = rest.find('/');
    std::string_view seg = rest.substr(0, slash);
    std::string_view name = seg.substr(0, seg.find(';'));
    if (name == "." || name == "..") return false;
    if (slash == std::string_view::npos) break;
    rest.remove_prefix(slash + 1);
  }
  return true;
}

bool prefix_covers(std::string_view prefix, std::string_view path) noexcept {
  if (prefix.empty() || path.substr(0, prefix.size()) != prefix) return false;
  if (path.size() == prefix.size() || prefix.back() == '/') return true;
  const char next = path[prefix.size()];
  return next == '/' || next == ';';
}

const AuthzRoute* match_route(const AuthzConfig& config, std::string_view path) noexcept {
  const AuthzRoute* best = nullptr;
  for (const AuthzRoute& r : config.routes) {
    if ((best == nullptr || r.prefix.size() > best->prefix.size()) && prefix_covers(r.prefix, path)) best = &r;
  }
  return best;
}

bool identity_allowed(const config::IdentityAllow& allow, const certs::PeerIdentity& peer) noexcept {
  if (!peer.present) return false;
  for (const std::string& uri : peer.uris) {
    if (!spiffe_id_well_formed(uri)) continue;
    for (const std::string& id : allow.spiffe_ids) {
      if (uri == id) return true;
    }
    for (const std::string& td : allow.trust_domains) {
      // "spiffe://" + td + "/": the byte after the trust domain must be the path's '/'.
      constexpr size_t kScheme = 9;
      if (uri.size() > kScheme + td.size() + 1 && uri.compare(kScheme, td.size(), td) == 0 &&
          uri[kScheme + td.size()] == '/') {
        return true;
      }
    }
  }
  for (const std::string& name : peer.dns) {
    for (const std::string& d : allow.dns) {
      if (iequals(name, d)) return true;
    }
  }
  return false;
}

HeadVerdict authorize(const AuthzConfig& config, const RequestHead& head, const certs::PeerIdentity* peer) {
  if (config.empty()) return HeadVerdict::Continue();
  const std::string full = head.path();
  const std::string_view path = route_path(full);
  const config::IdentityAllow* allow = &config.allow;
  std::string where = "listener default";
  if (!config.routes.empty()) {
    if (!path_normalized(path)) {
      HeadVerdict v = HeadVerdict::Respond(400, std::string(kPathNotNormalized));
      v.detail = "path is not in normal form";
      return v;
    }
    if (const AuthzRoute* r = match_route(config, path)) {
      allow = &r->allow;
      where = "route " + r->prefix;
    }
  }
  if (allow->empty()) return HeadVerdict::Continue();
  if (peer == nullptr || !peer->present) {
    HeadVerdict v = HeadVerdict::Respond(403, std::string(kIdentityMissing));
    v.detail = where + ": no verified client certificate";
    return v;
  }
  if (identity_allowed(*allow, *peer)) return HeadVerdict::Continue();
  HeadVerdict v = HeadVerdict::Respond(403, std::string(kIdentityDenied));
  v.detail = where + ": " + (peer->spiffe_id.empty() ? "no SPIFFE ID" : peer->spiffe_id) + " not allowed";
  return v;
}

namespace {
class IdentityAuthzFilter final : public Http1Filter {
 public:
  explicit IdentityAuthzFilter(std::shared_ptr<const AuthzConfig> c) : config_(std::move(c)) {}
  std::string_view name() const override { return "identity_authz"; }
  HeadVerdict on_request_head(RequestHead& head, const ConnContext& ctx) override {
    return authorize(*config_, head, ctx.peer);
  }

 private:
  std::shared_ptr<const AuthzConfig> config_;
};
}  // namespace

std::unique_ptr<Http1Filter> IdentityAuthzFilterFactory::create() const {
  return std::make_unique<IdentityAuthzFilter>(config_);
}

}  // namespace fp::filters::http1
