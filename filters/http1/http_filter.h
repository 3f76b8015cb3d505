#pragma once
// HTTP/1 (L7) filter interface (STYLE.md 5.2) and header rules compiled at load time into a list
// of operations applied per request (h2o's header commands). Filters run only on listeners with
// mode = "http1", never own sockets, never call libuv; they edit the head in place and return a
// verdict the chain runner acts on after the filter returns.

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "certs/handshake_info.h"
#include "filters/http1/head.h"

namespace fp::filters::http1 {

// Per-connection facts a filter may read. Filled by proxy/ once per connection.
struct ConnContext {
  std::string_view listener;
  std::string_view remote_addr;                   // the immediate peer's IP, as text, no port
  bool tls = true;                                // the downstream connection is TLS
  const certs::PeerIdentity* peer = nullptr;      // verified client certificate, if any
  std::string_view sni = {};                      // TLS server name the client sent; empty: none
};

struct HeadVerdict {
  bool respond = false;   // stop the chain: answer `status` and close (nothing forwarded)
  int status = 0;
  std::string reason;     // stable token, e.g. "xfcc_invalid_value", "peer_identity_denied"
  std::string detail;     // for the log only (e.g. which route refused); never sent to the client
  static HeadVerdict Continue() { return {}; }
  static HeadVerdict Respond(int status, std::string reason) { return {true, status, std::move(reason), {}}; }
};

class Http1Filter {
 public:
  virtual ~Http1Filter() = default;
  virtual std::string_view name() const = 0;
  virtual HeadVerdict on_request_head(RequestHead& head, const ConnContext& ctx) = 0;
  virtual void on_response_head(ResponseHead&, const ConnContext&) {}
};

class Http1FilterFactory {
 public:
  virtual ~Http1FilterFactory() = default;
  virtual std::string_view name() const = 0;
  virtual std::unique_ptr<Http1Filter> create() const = 0;
};

using Http1Chain = std::vector<std::unique_ptr<Http1Filter>>;

// Config order for requests; the first Respond wins. Responses run in reverse order.
HeadVerdict run_on_request_head(const Http1Chain& chain, RequestHead& head, const ConnContext& ctx);
void run_on_response_head(const Http1Chain& chain, ResponseHead& head, const ConnContext& ctx);

// ---- header rules

enum class HeaderOpKind {
  Set,          // remove every `name`, add one `name: value`
  Append,       // add ", value" to the first `name` (or add it)
  Remove,       // remove every `name`
  SanitizeSet,  // remove every `name` the peer sent, then add `name: value` if value is non-empty
};

struct HeaderRule {  // as written in config
  std::string op;    // "set" | "append" | "remove" | "sanitize_set"
  std::string name;
  std::string value;
};

struct HeaderOp {
  HeaderOpKind kind = HeaderOpKind::Set;
  std::string name;
  std::string value;
};

// Valid header name (token) / value (no CR, LF, NUL or other CTL but HTAB).
bool valid_header_name(std::string_view name) noexcept;
bool valid_header_value(std::string_view value) noexcept;

class HeaderProgram {
 public:
  // Validates every rule at load time. On failure returns nullopt and sets `error` to
  // "rules[i]: reason" (the config layer prefixes file:line:col).
  static std::optional<HeaderProgram> compile(const std::vector<HeaderRule>& rules, std::string& error);
  void apply(Headers& headers) const;
  const std::vector<HeaderOp>& ops() const noexcept { return ops_; }

 private:
  std::vector<HeaderOp> ops_;
};

void apply_header_op(Headers& headers, HeaderOpKind kind, std::string_view name, std::string_view value);

// A filter running compiled request and response header programs.
class HeaderRulesFilterFactory final : public Http1FilterFactory {
 public:
  HeaderRulesFilterFactory(HeaderProgram request, HeaderProgram response)
      : request_(std::make_shared<const HeaderProgram>(std::move(request))),
        response_(std::make_shared<const HeaderProgram>(std::move(response))) {}
  std::string_view name() const override { return "headers"; }
  std::unique_ptr<Http1Filter> create() const override;

 private:
  // Shared with the filters it creates: a reload may drop the factory before its connections end.
  std::shared_ptr<const HeaderProgram> request_;
  std::shared_ptr<const HeaderProgram> response_;
};

}  // namespace fp::filters::http1
