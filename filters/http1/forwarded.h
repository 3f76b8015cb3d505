#pragma once
// forwarded: X-Forwarded-For / X-Forwarded-Proto / X-Forwarded-Host with a trusted-hop count,
// with Envoy's use_remote_address = true semantics for xff_num_trusted_hops:
//
// * trusted_hops = 0 (default, edge): nothing the client sent is trusted. XFF is OVERWRITTEN with
//   the peer address, X-Forwarded-Proto is set from the listener (https on TLS), and
//   X-Forwarded-Host is set from Host (or removed). The trusted client address is the peer.
// * trusted_hops = N > 0: the peer is a trusted proxy. The peer address is APPENDED to the
//   client's XFF (all XFF lines joined in order); the trusted client address is the Nth address
//   from the right of the received XFF, or the peer if it holds fewer than N addresses. A valid
//   client X-Forwarded-Proto / -Host is kept, else set as for N = 0. A received XFF holding
//   anything but IP addresses is not trusted: it is overwritten as for N = 0.

#include <cstdint>
#include <string>
#include <string_view>

#include "filters/http1/http_filter.h"

namespace fp::filters::http1 {

struct ForwardedConfig {
  uint32_t trusted_hops = 0;
  bool set_xff = true;
  bool set_proto = true;
  bool set_host = false;
};

struct ForwardedResult {
  std::string client_address;  // the trusted client address (for authz and the access log)
  bool xff_trusted = false;    // the received XFF was kept (appended to)
};

// True if `s` is a plausible IPv4 or IPv6 address text (digits, hex, '.', ':'; no port).
bool looks_like_ip(std::string_view s) noexcept;

ForwardedResult apply_forwarded(Headers& headers, const ForwardedConfig& config, std::string_view remote_addr,
                                bool tls);

class ForwardedFilterFactory final : public Http1FilterFactory {
 public:
  explicit ForwardedFilterFactory(ForwardedConfig c) : config_(std::make_shared<const ForwardedConfig>(c)) {}
  std::string_view name() const override { return "forwarded"; }
  std::unique_ptr<Http1Filter> create() const override;

 private:
  std::shared_ptr<const ForwardedConfig> config_;
};

}  // namespace fp::filters::http1
