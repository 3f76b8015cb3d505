#pragma once
// hop_by_hop: the connection-scoped fields of a message are for the proxy, never forwarded
// (RFC 9110 §7.6.1), and Expect is checked (RFC 9110 §10.1.1).
//
// Removed from every request and response head (after the parser has read what it needs from
// them: keep-alive, Upgrade, framing):
// * Connection, and every field it names, except the ones listed below as protected;
// * Keep-Alive, Proxy-Connection, TE, Trailer (trailers are dropped by the parser anyway) and
//   Upgrade (a request with Upgrade never gets here: the parser answers 501).
// Transfer-Encoding is the message's framing: bodies are forwarded as received, so it stays.
// Proxy-Authorization / Proxy-Authenticate are forwarded unchanged (fipsproxy does no proxy
// authentication; an upstream that wants them sees them).
//
// Protected (a Connection token naming them is ignored): Host, Content-Length and
// Transfer-Encoding (dropping them would change the framing the upstream sees, a smuggling
// vector), and X-Forwarded-Client-Cert / X-Forwarded-For / -Proto / -Host, which the xfcc and
// forwarded filters own. The filter runs first on requests, so the headers those filters set
// are added after it and cannot be removed by a client-listed token either way.
//
// The proxy's own persistence decision is unaffected: the parser derived keep-alive before this
// filter ran, and the proxy adds "Connection: close" to a response itself when it will close.
//
// Expect: exactly one field whose value is "100-continue" (case-insensitive) is forwarded on
// HTTP/1.1 so that the upstream answers 100 Continue; on HTTP/1.0 it is removed (a server MUST
// ignore it there). Any other Expect (another value, a list, repeated fields) is answered 417
// with reason "expectation_failed" and nothing is forwarded.

#include <memory>
#include <string_view>

#include "filters/http1/http_filter.h"

namespace fp::filters::http1 {

inline constexpr std::string_view kExpectationFailed = "expectation_failed";

// Removes the hop-by-hop fields; returns how many field lines were removed.
size_t strip_hop_by_hop(Headers& headers);
// Continue, or Respond(417, expectation_failed). May remove Expect (HTTP/1.0).
HeadVerdict check_expect(RequestHead& head);

class HopByHopFilterFactory final : public Http1FilterFactory {
 public:
  std::string_view name() const override { return "hop_by_hop"; }
  std::unique_ptr<Http1Filter> create() const override;
};

}  // namespace fp::filters::http1
