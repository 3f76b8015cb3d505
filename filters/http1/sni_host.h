#pragma once
// sni_host: a request whose Host names another server than the TLS SNI the client sent is
// misdirected (RFC 9110 §15.5.20): 421 with reason "sni_host_mismatch", nothing forwarded.
//
// Why: on a listener that authenticates clients, the TLS layer admitted the client for the name
// it asked for in the ClientHello. Routing its requests by a different Host would let a client
// that passed one name's checks reach another name's backend (nginx answers 421 on
// ssl_verify_client servers for the same reason; Emissary CVE-2021-36371 was the bypass).
//
// The compared host: the authority of an absolute-form target, else the Host field (the parser
// already refused a Host that disagrees with an absolute-form authority). Its port is dropped,
// one trailing dot is dropped, and it is compared with the SNI ASCII case-insensitively; an
// IP-literal Host never equals a (DNS-only) SNI. A connection without SNI (clients that dial an
// IP address) is not checked, nor is a request with no host at all (HTTP/1.0 without Host).
//
// Config: listener.http.sni_host_check = "mtls" (only on listeners with require_client_cert, as
// nginx does for ssl_verify_client), "always" (every TLS listener) or "off" (the default, as
// Envoy: a sidecar chain sends its cluster.tls.sni with the Host its app used). The factory is
// built only where the check applies, so the filter itself has no mode.

#include <memory>
#include <string_view>

#include "filters/http1/http_filter.h"

namespace fp::filters::http1 {

inline constexpr std::string_view kSniHostMismatch = "sni_host_mismatch";

// The host part of a Host value or an absolute-form authority: without the port, without one
// trailing dot; an IPv6 literal keeps its brackets. Empty if there is none.
std::string_view host_without_port(std::string_view authority) noexcept;

// Continue, or Respond(421, sni_host_mismatch) when the request's host is not `sni`. An empty
// `sni` always continues.
HeadVerdict check_sni_host(const RequestHead& head, std::string_view sni);

class SniHostFilterFactory final : public Http1FilterFactory {
 public:
  std::string_view name() const override { return "sni_host"; }
  std::unique_ptr<Http1Filter> create() const override;
};

}  // namespace fp::filters::http1
