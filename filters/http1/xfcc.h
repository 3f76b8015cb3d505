#pragma once
// xfcc: sanitize-and-set X-Forwarded-Client-Cert (Envoy's SanitizeSet): whatever the client sent
// is always removed; when the downstream presented a verified certificate, one element is set:
//
//   By=<our URI>;Hash=<sha256 hex>;Subject="<RFC 2253 subject>";URI=<uri SAN>...;DNS=<dns SAN>...
//
// (Envoy's field order; By only when configured, e.g. on outbound.) Quoting follows Envoy after
// CVE-2023-27493: Subject is always double-quoted; any other value is quoted when it contains
// '"', '\\', ',', ';' or '='; inside quotes '"' and '\\' are backslash-escaped. A certificate
// value containing CR, LF, NUL or any other control byte is never emitted: the request is
// refused with 400 and reason "xfcc_invalid_value".

#include <optional>
#include <string>
#include <string_view>

#include "certs/handshake_info.h"
#include "filters/http1/http_filter.h"

namespace fp::filters::http1 {

inline constexpr std::string_view kXfccHeader = "X-Forwarded-Client-Cert";
inline constexpr std::string_view kXfccInvalidValue = "xfcc_invalid_value";

struct XfccConfig {
  std::string by;        // our own identity (URI SAN); empty = no By element
  bool hash = true;
  bool subject = true;
  bool uri = true;       // every URI SAN (the SPIFFE ID among them)
  bool dns = true;       // every DNS SAN, one DNS= pair each
};

// One XFCC value quoted/escaped per the rules above. nullopt if it holds a control byte.
std::optional<std::string> xfcc_quote(std::string_view value, bool always_quote);

// The header value for `peer`, or nullopt if any certificate-derived value is unsafe.
std::optional<std::string> build_xfcc(const certs::PeerIdentity& peer, const XfccConfig& config);

// Removes every client-sent XFCC and sets ours. Respond(400, xfcc_invalid_value) if unsafe.
HeadVerdict apply_xfcc(Headers& headers, const certs::PeerIdentity* peer, const XfccConfig& config);

class XfccFilterFactory final : public Http1FilterFactory {
 public:
  explicit XfccFilterFactory(XfccConfig config) : config_(std::make_shared<const XfccConfig>(std::move(config))) {}
  std::string_view name() const override { return "xfcc"; }
  std::unique_ptr<Http1Filter> create() const override;

 private:
  std::shared_ptr<const XfccConfig> config_;
};

}  // namespace fp::filters::http1
