#include "filters/http1/forwarded.h"

#include <vector>

namespace fp::filters::http1 {

namespace fwd_impl {

std::string_view trim(std::string_view v) noexcept {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  return v;
}

// Splits the joined XFF lines into addresses; false if any element is not an IP address.
bool split_xff(const Headers& headers, std::vector<std::string_view>& out) {
  for (const Header& h : headers.items()) {
    if (!iequals(h.name, "x-forwarded-for")) continue;
    std::string_view v = h.value;
    for (;;) {
      size_t comma = v.find(',');
      std::string_view e = trim(v.substr(0, comma));
      if (!looks_like_ip(e)) return false;
      out.push_back(e);
      if (comma == std::string_view::npos) break;
      v.remove_prefix(comma + 1);
    }
  }
  return true;
}

}  // namespace fwd_impl

bool looks_like_ip(std::string_view s) noexcept {
  if (s.empty() || s.size() > 45) return false;
  bool colon = false, dot = false;
  for (char c : s) {
    if (c == ':') {
      colon = true;
    } else if (c == '.') {
      dot = true;
    } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
      return false;
    }
  }
  if (!colon && !dot) return false;
  if (!colon) {  // IPv4: digits and dots only
    for (char c : s) {
      if (c != '.' && (c < '0' || c > '9')) return false;
    }
  }
  return true;
}

ForwardedResult apply_forwarded(Headers& headers, const ForwardedConfig& config, std::string_view remote_addr,
                                bool tls) {
  ForwardedResult r;
  r.client_address.assign(remote_addr);
  const bool trusted_peer = config.trusted_hops > 0;

  if (config.set_xff) {
    std::vector<std::string_view> chain;
    const bool present = headers.has("x-forwarded-for");
    const bool valid = present && fwd_impl::split_xff(headers, chain);
    if (trusted_peer && valid) {
      if (chain.size() >= config.trusted_hops) r.client_address.assign(chain[chain.size() - config.trusted_hops]);
      std::string joined;
      for (std::string_view e : chain) {
        joined.append(e);
        joined += ", ";
      }
      joined.append(remote_addr);
      headers.set("X-Forwarded-For", std::move(joined));
      r.xff_trusted = true;
    } else {
      headers.set("X-Forwarded-For", std::string(remote_addr));
    }
  }

  if (config.set_proto) {
    const std::string* p = headers.get("x-forwarded-proto");
    const bool keep = trusted_peer && p != nullptr && headers.count("x-forwarded-proto") == 1 &&
                      (*p == "http" || *p == "https");
    if (!keep) headers.set("X-Forwarded-Proto", tls ? "https" : "http");
  }

  if (config.set_host) {
    const bool keep = trusted_peer && headers.count("x-forwarded-host") == 1 &&
                      valid_header_value(*headers.get("x-forwarded-host"));
    if (!keep) {
      const std::string* host = headers.get("host");
      if (host != nullptr) {
        headers.set("X-Forwarded-Host", *host);
      } else {
        headers.remove("x-forwarded-host");
      }
    }
  }
  return r;
}

namespace {
class ForwardedFilter final : public Http1Filter {
 public:
  explicit ForwardedFilter(std::shared_ptr<const ForwardedConfig> c) : config_(std::move(c)) {}
  std::string_view name() const override { return "forwarded"; }
  HeadVerdict on_request_head(RequestHead& head, const ConnContext& ctx) override {
    (void)apply_forwarded(head.headers, *config_, ctx.remote_addr, ctx.tls);
    return HeadVerdict::Continue();
  }

 private:
  std::shared_ptr<const ForwardedConfig> config_;
};
}  // namespace

std::unique_ptr<Http1Filter> ForwardedFilterFactory::create() const {
  return std::make_unique<ForwardedFilter>(config_);
}

}  // namespace fp::filters::http1
