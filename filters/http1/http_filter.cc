#include "filters/http1/http_filter.h"

namespace fp::filters::http1 {

HeadVerdict run_on_request_head(const Http1Chain& chain, RequestHead& head, const ConnContext& ctx) {
  for (const auto& f : chain) {
    HeadVerdict v = f->on_request_head(head, ctx);
    if (v.respond) return v;
  }
  return HeadVerdict::Continue();
}

void run_on_response_head(const Http1Chain& chain, ResponseHead& head, const ConnContext& ctx) {
  for (auto it = chain.rbegin(); it != chain.rend(); ++it) (*it)->on_response_head(head, ctx);
}

bool valid_header_name(std::string_view name) noexcept {
  if (name.empty()) return false;
  for (char c : name) {
    const bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                    std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
    if (!ok) return false;
  }
  return true;
}

bool valid_header_value(std::string_view value) noexcept {
  for (char ch : value) {
    const auto c = static_cast<unsigned char>(ch);
    if (c != '\t' && (c < 0x20 || c == 0x7f)) return false;
  }
  return value.empty() || (value.front() != ' ' && value.front() != '\t' && value.back() != ' ' &&
                           value.back() != '\t');
}

void apply_header_op(Headers& headers, HeaderOpKind kind, std::string_view name, std::string_view value) {
  switch (kind) {
    case HeaderOpKind::Set: headers.set(name, std::string(value)); break;
    case HeaderOpKind::Append: headers.append(name, value); break;
    case HeaderOpKind::Remove: headers.remove(name); break;
    case HeaderOpKind::SanitizeSet:
      headers.remove(name);
      if (!value.empty()) headers.add(std::string(name), std::string(value));
      break;
  }
}

std::optional<HeaderProgram> HeaderProgram::compile(const std::vector<HeaderRule>& rules, std::string& error) {
  HeaderProgram p;
  for (size_t i = 0; i < rules.size(); ++i) {
    const HeaderRule& r = rules[i];
    const std::string where = "rules[" + std::to_string(i) + "]: ";
    HeaderOp op;
    if (r.op == "set") {
      op.kind = HeaderOpKind::Set;
    } else if (r.op == "append") {
      op.kind = HeaderOpKind::Append;
    } else if (r.op == "remove") {
      op.kind = HeaderOpKind::Remove;
    } else if (r.op == "sanitize_set") {
      op.kind = HeaderOpKind::SanitizeSet;
    } else {
      error = where + "unknown op \"" + r.op + "\" (set, append, remove, sanitize_set)";
      return std::nullopt;
    }
    if (!valid_header_name(r.name)) {
      error = where + "invalid header name \"" + r.name + "\"";
      return std::nullopt;
    }
    // Framing and hop-by-hop fields belong to the parser and the proxy, never to rules.
    for (std::string_view reserved : {"content-length", "transfer-encoding", "host", "connection", "upgrade",
                                      "te", "trailer", "keep-alive", "proxy-connection"}) {
      if (iequals(r.name, reserved)) {
        error = where + "header \"" + r.name + "\" cannot be edited by rules";
        return std::nullopt;
      }
    }
    if (op.kind == HeaderOpKind::Remove && !r.value.empty()) {
      error = where + "remove takes no value";
      return std::nullopt;
    }
    if (!valid_header_value(r.value) || ((op.kind == HeaderOpKind::Set || op.kind == HeaderOpKind::Append) &&
                                         r.value.empty())) {
      error = where + "invalid header value for \"" + r.name + "\"";
      return std::nullopt;
    }
    op.name = r.name;
    op.value = r.value;
    p.ops_.push_back(std::move(op));
  }
  return p;
}

void HeaderProgram::apply(Headers& headers) const {
  for (const HeaderOp& op : ops_) apply_header_op(headers, op.kind, op.name, op.value);
}

namespace {
class HeaderRulesFilter final : public Http1Filter {
 public:
  HeaderRulesFilter(std::shared_ptr<const HeaderProgram> req, std::shared_ptr<const HeaderProgram> resp)
      : req_(std::move(req)), resp_(std::move(resp)) {}
  std::string_view name() const override { return "headers"; }
  HeadVerdict on_request_head(RequestHead& head, const ConnContext&) override {
    req_->apply(head.headers);
    return HeadVerdict::Continue();
  }
  void on_response_head(ResponseHead& head, const ConnContext&) override { resp_->apply(head.headers); }

 private:
  std::shared_ptr<const HeaderProgram> req_;
  std::shared_ptr<const HeaderProgram> resp_;
};
}  // namespace

std::unique_ptr<Http1Filter> HeaderRulesFilterFactory::create() const {
  return std::make_unique<HeaderRulesFilter>(request_, response_);
}

}  // namespace fp::filters::http1
