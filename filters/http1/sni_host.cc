#include "filters/http1/sni_host.h"

#include <string>

namespace fp::filters::http1 {

std::string_view host_without_port(std::string_view a) noexcept {
  if (!a.empty() && a.front() == '[') {
    const size_t close = a.find(']');
    return close == std::string_view::npos ? a : a.substr(0, close + 1);
  }
  if (const size_t colon = a.rfind(':'); colon != std::string_view::npos) a = a.substr(0, colon);
  if (!a.empty() && a.back() == '.') a.remove_suffix(1);
  return a;
}

HeadVerdict check_sni_host(const RequestHead& head, std::string_view sni) {
  if (sni.empty()) return HeadVerdict::Continue();
  std::string_view authority;
  if (head.absolute_form) {
    std::string_view t = head.target;
    const size_t scheme_end = t.find("://");
    if (scheme_end != std::string_view::npos) {
      t.remove_prefix(scheme_end + 3);
      authority = t.substr(0, t.find_first_of("/?"));
    }
  } else if (const std::string* host = head.headers.get("host")) {
    authority = *host;
  } else {
    return HeadVerdict::Continue();  // HTTP/1.0 without Host: nothing names another server
  }
  const std::string_view host = host_without_port(authority);
  if (iequals(host, sni)) return HeadVerdict::Continue();
  HeadVerdict v = HeadVerdict::Respond(421, std::string(kSniHostMismatch));
  v.detail = "SNI " + std::string(sni.substr(0, 128)) + ", Host " + std::string(host.substr(0, 128));
  for (char& ch : v.detail) {
    if (static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f) ch = ' ';
  }
  return v;
}

namespace {
class SniHostFilter final : public Http1Filter {
 public:
  std::string_view name() const override { return "sni_host"; }
  HeadVerdict on_request_head(RequestHead& head, const ConnContext& ctx) override {
    return check_sni_host(head, ctx.sni);
  }
};
}  // namespace

std::unique_ptr<Http1Filter> SniHostFilterFactory::create() const { return std::make_unique<SniHostFilter>(); }

}  // namespace fp::filters::http1
