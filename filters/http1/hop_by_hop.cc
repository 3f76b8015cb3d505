#include "filters/http1/hop_by_hop.h"

#include <array>
#include <string>
#include <vector>

namespace fp::filters::http1 {

namespace {

constexpr std::array<std::string_view, 5> kHopByHop = {"keep-alive", "proxy-connection", "te", "trailer", "upgrade"};
constexpr std::array<std::string_view, 7> kProtected = {"host", "content-length", "transfer-encoding",
                                                        "x-forwarded-client-cert", "x-forwarded-for",
                                                        "x-forwarded-proto", "x-forwarded-host"};

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool is_protected(std::string_view name) noexcept {
  for (std::string_view p : kProtected) {
    if (iequals(name, p)) return true;
  }
  return false;
}

}  // namespace

size_t strip_hop_by_hop(Headers& headers) {
  // Collect the names every Connection field lists (all Connection lines count).
  std::vector<std::string> named;
  for (const Header& h : headers.items()) {
    if (!iequals(h.name, "connection")) continue;
    std::string_view v = h.value;
    while (!v.empty()) {
      const size_t comma = v.find(',');
      std::string_view tok = trim(v.substr(0, comma));
      if (!tok.empty() && valid_header_name(tok) && !is_protected(tok)) named.emplace_back(tok);
      if (comma == std::string_view::npos) break;
      v.remove_prefix(comma + 1);
    }
  }
  size_t removed = headers.remove("connection");
  for (std::string_view n : kHopByHop) removed += headers.remove(n);
  for (const std::string& n : named) removed += headers.remove(n);
  return removed;
}

HeadVerdict check_expect(RequestHead& head) {
  const size_t n = head.headers.count("expect");
  if (n == 0) return HeadVerdict::Continue();
  if (n == 1 && iequals(trim(*head.headers.get("expect")), "100-continue")) {
    if (head.version_minor == 0) head.headers.remove("expect");
    return HeadVerdict::Continue();
  }
  HeadVerdict v = HeadVerdict::Respond(417, std::string(kExpectationFailed));
  v.detail = n == 1 ? "Expect: " + *head.headers.get("expect") : std::to_string(n) + " Expect fields";
  if (v.detail.size() > 200) v.detail.resize(200);
  return v;
}

namespace {
class HopByHopFilter final : public Http1Filter {
 public:
  std::string_view name() const override { return "hop_by_hop"; }
  HeadVerdict on_request_head(RequestHead& head, const ConnContext&) override {
    HeadVerdict v = check_expect(head);
    if (v.respond) return v;
    strip_hop_by_hop(head.headers);
    return HeadVerdict::Continue();
  }
  void on_response_head(ResponseHead& head, const ConnContext&) override { strip_hop_by_hop(head.headers); }
};
}  // namespace

std::unique_ptr<Http1Filter> HopByHopFilterFactory::create() const { return std::make_unique<HopByHopFilter>(); }

}  // namespace fp::filters::http1
