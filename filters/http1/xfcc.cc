#include "filters/http1/xfcc.h"

namespace fp::filters::http1 {

std::optional<std::string> xfcc_quote(std::string_view value, bool always_quote) {
  bool quote = always_quote;
  for (char ch : value) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7f) return std::nullopt;  // CR, LF, NUL, HTAB, any CTL
    if (c == '"' || c == '\\' || c == ',' || c == ';' || c == '=') quote = true;
  }
  if (!quote) return std::string(value);
  std::string out;
  out.reserve(value.size() + 2);
  out += '"';
  for (char c : value) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  out += '"';
  return out;
}

std::optional<std::string> build_xfcc(const certs::PeerIdentity& peer, const XfccConfig& config) {
  std::string out;
  bool ok = true;
  auto pair = [&](std::string_view key, std::string_view value, bool always_quote) {
    std::optional<std::string> q = xfcc_quote(value, always_quote);
    if (!q) {
      ok = false;
      return;
    }
    if (!out.empty()) out += ';';
    out += key;
    out += '=';
    out += *q;
  };
  if (!config.by.empty()) pair("By", config.by, false);
  if (config.hash && !peer.sha256.empty()) pair("Hash", peer.sha256, false);
  if (config.subject && !peer.subject.empty()) pair("Subject", peer.subject, true);
  if (config.uri) {
    if (peer.uris.empty() && !peer.spiffe_id.empty()) pair("URI", peer.spiffe_id, false);
    for (const std::string& u : peer.uris) pair("URI", u, false);
  }
  if (config.dns) {
    for (const std::string& d : peer.dns) pair("DNS", d, false);
  }
  if (!ok) return std::nullopt;
  return out;
}

HeadVerdict apply_xfcc(Headers& headers, const certs::PeerIdentity* peer, const XfccConfig& config) {
  headers.remove(kXfccHeader);
  if (peer == nullptr || !peer->present) return HeadVerdict::Continue();
  std::optional<std::string> v = build_xfcc(*peer, config);
  if (!v) return HeadVerdict::Respond(400, std::string(kXfccInvalidValue));
  if (!v->empty()) headers.add(std::string(kXfccHeader), std::move(*v));
  return HeadVerdict::Continue();
}

namespace {
class XfccFilter final : public Http1Filter {
 public:
  explicit XfccFilter(std::shared_ptr<const XfccConfig> c) : config_(std::move(c)) {}
  std::string_view name() const override { return "xfcc"; }
  HeadVerdict on_request_head(RequestHead& head, const ConnContext& ctx) override {
    return apply_xfcc(head.headers, ctx.peer, *config_);
  }

 private:
  std::shared_ptr<const XfccConfig> config_;
};
}  // namespace

std::unique_ptr<Http1Filter> XfccFilterFactory::create() const { return std::make_unique<XfccFilter>(config_); }

}  // namespace fp::filters::http1
