#pragma once
// identity_authz: per listener and per request path prefix, allow-lists of the verified client
// certificate's SPIFFE IDs, SPIFFE trust domains and DNS names ([listener.http] and
// [[listener.http.route]], config/REFERENCE.md). A refused request gets 403 with a reason token
// and nothing reaches the upstream.
//
// Matching is exact everywhere:
// * allow_spiffe_ids: a URI SAN equal to the entry, byte for byte (no prefix, no truncation);
// * allow_trust_domains: a URI SAN that is a well-formed SPIFFE ID (spec §2: lowercase trust
//   domain, non-empty path segments of [A-Za-z0-9._-], no "."/".." segments) and starts with
//   exactly "spiffe://<td>/";
// * allow_dns: a DNS SAN equal to the entry, ASCII case-insensitive (no wildcards either side).
// URI-SAN entries never match DNS SANs, DNS entries never match URI SANs.
//
// Routes: the path is the request-target's path (absolute-form reduced to its path, "*" to "/"),
// compared case-sensitively and raw (no decoding), query excluded. A route prefix covers the path
// equal to it and, segment-aware, the paths below it: "/admin" covers "/admin", "/admin/x" and
// "/admin;p" (a path parameter) but not "/administrator"; a prefix ending in '/' covers what
// starts with it ("/admin/" does not cover "/admin"). The longest covering prefix wins; with
// none, the listener default applies; with no default either, the request is allowed.
//
// So that no other spelling of a path can reach what a route protects, while routes are
// configured a request whose path the upstream could read differently is refused with 400
// path_not_normalized: "//", a "." or ".." segment (also with ";params"), a literal '\', a
// malformed %-escape, or a %-escape of an unreserved character (%61 = 'a', %2E = '.'), '/', '\',
// ';' or NUL. Case (/ADMIN) and double encoding (%2561) are not normalized: an upstream that
// treats paths case-insensitively or decodes twice needs routes for those spellings.

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "certs/handshake_info.h"
#include "config/config.h"
#include "filters/http1/http_filter.h"

namespace fp::filters::http1 {

inline constexpr std::string_view kIdentityMissing = "identity_missing";  // no verified client cert
inline constexpr std::string_view kIdentityDenied = "identity_denied";    // cert matches no entry
inline constexpr std::string_view kPathNotNormalized = "path_not_normalized";

struct AuthzRoute {
  std::string prefix;
  config::IdentityAllow allow;
};

struct AuthzConfig {
  config::IdentityAllow allow;     // listener default (empty: allow)
  std::vector<AuthzRoute> routes;  // any order; the longest covering prefix wins
  bool empty() const { return allow.empty() && routes.empty(); }
};

AuthzConfig authz_config_from(const config::HttpOptions& http);

// SPIFFE ID syntax check (the same rules as the config loader's).
bool spiffe_id_well_formed(std::string_view id) noexcept;
// The path used for route matching: the target's path without its query.
std::string_view route_path(std::string_view path_and_query) noexcept;
// False if `path` could reach the upstream as a different path (see above).
bool path_normalized(std::string_view path) noexcept;
// Segment-aware prefix coverage.
bool prefix_covers(std::string_view prefix, std::string_view path) noexcept;
// The longest covering route, or nullptr.
const AuthzRoute* match_route(const AuthzConfig& config, std::string_view path) noexcept;
// True if some SAN of `peer` matches `allow` (an empty `allow` matches nobody: callers decide).
bool identity_allowed(const config::IdentityAllow& allow, const certs::PeerIdentity& peer) noexcept;

// Respond(400, path_not_normalized) / Respond(403, identity_missing | identity_denied) with a
// detail naming the route, or Continue.
HeadVerdict authorize(const AuthzConfig& config, const RequestHead& head, const certs::PeerIdentity* peer);

class IdentityAuthzFilterFactory final : public Http1FilterFactory {
 public:
  explicit IdentityAuthzFilterFactory(AuthzConfig c) : config_(std::make_shared<const AuthzConfig>(std::move(c))) {}
  std::string_view name() const override { return "identity_authz"; }
  std::unique_ptr<Http1Filter> create() const override;

 private:
  std::shared_ptr<const AuthzConfig> config_;
};

}  // namespace fp::filters::http1
