#include "filters/http1/parser.h"

#include <llhttp.h>

#include <algorithm>
#include <array>
#include <deque>
#include <optional>

namespace fp::filters::http1 {

std::string_view reason_token(Reason r, bool upstream) noexcept {
  switch (r) {
#define FP_X(name, token, status) \
  case Reason::name: return upstream ? std::string_view("upstream_" token) : std::string_view(token);
    FP_HTTP1_REASONS(FP_X)
#undef FP_X
  }
  return upstream ? "upstream_parser_rejected" : "parser_rejected";
}

namespace {

int reason_status(Reason r) noexcept {
  switch (r) {
#define FP_X(name, token, status) \
  case Reason::name: return status;
    FP_HTTP1_REASONS(FP_X)
#undef FP_X
  }
  return 400;
}

constexpr std::array<bool, 256> make_tchar() {
  std::array<bool, 256> t{};
  for (int c = '0'; c <= '9'; ++c) t[static_cast<size_t>(c)] = true;
  for (int c = 'a'; c <= 'z'; ++c) t[static_cast<size_t>(c)] = true;
  for (int c = 'A'; c <= 'Z'; ++c) t[static_cast<size_t>(c)] = true;
  for (char c : std::string_view("!#$%&'*+-.^_`|~")) t[static_cast<unsigned char>(c)] = true;
  return t;
}
constexpr std::array<bool, 256> kTchar = make_tchar();

inline bool is_tchar(char c) noexcept { return kTchar[static_cast<unsigned char>(c)]; }
// field-vchar / SP / HTAB / obs-text: everything but CTLs (except HTAB) and DEL.
inline bool is_value_char(char ch) noexcept {
  const auto c = static_cast<unsigned char>(ch);
  return c == '\t' || (c >= 0x20 && c != 0x7f);
}
inline bool is_ows(char c) noexcept { return c == ' ' || c == '\t'; }
inline int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string_view trim_ows(std::string_view v) noexcept {
  while (!v.empty() && is_ows(v.front())) v.remove_prefix(1);
  while (!v.empty() && is_ows(v.back())) v.remove_suffix(1);
  return v;
}

// A field line "name: value" (no CRLF). Sets name and the OWS-trimmed value.
std::optional<Reason> check_field_line(std::string_view line, std::string_view& name,
                                       std::string_view& value) noexcept {
  if (is_ows(line.front())) return Reason::ObsFold;
  size_t i = 0;
  while (i < line.size() && is_tchar(line[i])) ++i;
  if (i == line.size()) return Reason::MissingColon;
  if (line[i] != ':') {
    if (!is_ows(line[i])) return Reason::BadHeaderName;
    size_t j = i;
    while (j < line.size() && is_ows(line[j])) ++j;
    if (j < line.size() && line[j] == ':') return Reason::SpaceBeforeColon;
    return Reason::BadHeaderName;
  }
  if (i == 0) return Reason::EmptyHeaderName;
  name = line.substr(0, i);
  std::string_view v = line.substr(i + 1);
  for (char c : v) {
    if (!is_value_char(c)) return Reason::BadHeaderValue;
  }
  value = trim_ows(v);
  return std::nullopt;
}

// "HTTP/1.1" → minor 1. BadVersion for malformed, UnsupportedVersion for well-formed others.
std::optional<Reason> check_version(std::string_view v, int& minor) noexcept {
  if (v.size() != 8 || v.substr(0, 5) != "HTTP/" || v[6] != '.' || v[5] < '0' || v[5] > '9' ||
      v[7] < '0' || v[7] > '9') {
    return Reason::BadVersion;
  }
  if (v[5] != '1' || (v[7] != '0' && v[7] != '1')) return Reason::UnsupportedVersion;
  minor = v[7] - '0';
  return std::nullopt;
}

// Connection: comma-separated tokens.
void scan_connection(std::string_view v, bool& close, bool& keep_alive) noexcept {
  while (!v.empty()) {
    size_t comma = v.find(',');
    std::string_view tok = trim_ows(v.substr(0, comma));
    if (iequals(tok, "close")) close = true;
    if (iequals(tok, "keep-alive")) keep_alive = true;
    if (comma == std::string_view::npos) break;
    v.remove_prefix(comma + 1);
  }
}

bool contains_token_ci(std::string_view v, std::string_view needle) noexcept {
  while (!v.empty()) {
    size_t comma = v.find(',');
    std::string_view tok = trim_ows(v.substr(0, comma));
    size_t slash = tok.find('/');  // "h2c/1" style product version
    if (iequals(tok.substr(0, slash), needle)) return true;
    if (comma == std::string_view::npos) break;
    v.remove_prefix(comma + 1);
  }
  return false;
}

bool valid_host(std::string_view h) noexcept {
  if (h.empty()) return false;
  for (char ch : h) {
    const auto c = static_cast<unsigned char>(ch);
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    std::string_view("-._~!$&'()*+,;=%:[]").find(ch) != std::string_view::npos;
    if (!ok) return false;
  }
  return true;
}

constexpr std::string_view kCrlf = "\r\n";

}  // namespace

std::string_view event_name(EventKind k) noexcept {
  switch (k) {
    case EventKind::NeedMore: return "need_more";
    case EventKind::Head: return "head";
    case EventKind::Body: return "body";
    case EventKind::MessageComplete: return "message_complete";
    case EventKind::Error: return "error";
    case EventKind::Discard: return "discard";
  }
  return "?";
}

namespace detail {

class Core {
 public:
  Core(bool request, const Limits& limits) : request_(request), limits_(limits) {
    llhttp_settings_init(&settings_);
    settings_.on_message_begin = &Core::cb_plain;
    settings_.on_url = &Core::cb_data;
    settings_.on_status = &Core::cb_data;
    settings_.on_method = &Core::cb_data;
    settings_.on_version = &Core::cb_data;
    settings_.on_header_field = &Core::cb_data;
    settings_.on_header_value = &Core::cb_data;
    settings_.on_chunk_extension_name = &Core::cb_data;
    settings_.on_chunk_extension_value = &Core::cb_data;
    settings_.on_headers_complete = &Core::cb_headers_complete;
    settings_.on_body = &Core::cb_body;
    settings_.on_message_complete = &Core::cb_message_complete;
    settings_.on_chunk_header = &Core::cb_plain;
    settings_.on_chunk_complete = &Core::cb_plain;
    llhttp_init(&llhttp_, request ? HTTP_REQUEST : HTTP_RESPONSE, &settings_);
    llhttp_.data = this;
    phase_ = request ? Phase::Head : Phase::Idle;
  }

  Event next(std::string_view in) noexcept {
    switch (phase_) {
      case Phase::Failed: return error_event();
      case Phase::Closed: return Event{EventKind::Discard, in.size(), 0, 0, {}, false};
      case Phase::Idle:
        if (in.empty()) return Event{EventKind::NeedMore, 0, 0, 0, {}, false};
        return fail(Reason::UnsolicitedResponse, "bytes from the upstream with no request outstanding");
      case Phase::Head: return scan_head(in);
      case Phase::PendingComplete: return complete(0, {});
      case Phase::BodyLength: return body_length(in);
      case Phase::BodyChunked: return body_chunked(in);
      case Phase::Trailers: return trailers(in);
      case Phase::BodyEof: return body_eof(in);
    }
    return fail(Reason::ParserDesync, "bad phase");
  }

  Event finish() noexcept {
    switch (phase_) {
      case Phase::Failed: return error_event();
      case Phase::Closed:
      case Phase::Idle: return Event{EventKind::NeedMore, 0, 0, 0, {}, false};
      case Phase::Head:
        if (head_.empty() && !prev_cr_ && request_) return Event{EventKind::NeedMore, 0, 0, 0, {}, false};
        return fail(Reason::Truncated, "EOF inside a message head");
      case Phase::PendingComplete: return complete(0, {});
      case Phase::BodyEof: {
        llhttp_errno_t e = llhttp_finish(&llhttp_);
        if (e != HPE_OK) return llhttp_failed(e);
        return complete(0, {});
      }
      default: return fail(Reason::Truncated, "EOF inside a message body");
    }
  }

  void expect_response(std::string_view method) noexcept {
    expected_head_.push_back(method == "HEAD");
    if (phase_ == Phase::Idle) phase_ = Phase::Head;
  }

  RequestHead req;
  ResponseHead resp;
  ParseError err;
  ParserStats stats;
  bool reusable = false;

  size_t retained_bytes() const noexcept { return head_.capacity() + trailer_line_.capacity(); }
  // Between messages with nothing outstanding: what a fresh response parser would be.
  bool idle() const noexcept { return phase_ == Phase::Idle && expected_head_.empty(); }

 private:
  enum class Phase { Idle, Head, PendingComplete, BodyLength, BodyChunked, Trailers, BodyEof, Closed, Failed };
  enum class ChunkState { Size, Ext, SizeLf, Data, DataCr, DataLf };

  // ---- errors
  Event error_event() const noexcept { return Event{EventKind::Error, 0, 0, 0, {}, false}; }
  Event fail(Reason r, std::string detail) noexcept {
    err.reason = r;
    err.upstream = !request_;
    err.status = request_ ? reason_status(r) : 502;
    err.after_head = phase_ != Phase::Head && phase_ != Phase::Idle;
    err.detail = std::move(detail);
    phase_ = Phase::Failed;
    reusable = false;
    return error_event();
  }
  Event llhttp_failed(llhttp_errno_t e) noexcept {
    std::string d = "llhttp ";
    d += llhttp_errno_name(e);
    if (const char* why = llhttp_get_error_reason(&llhttp_)) {
      d += ": ";
      d += why;
    }
    return fail(Reason::ParserRejected, std::move(d));
  }
  bool feed_llhttp(const char* p, size_t n, Event& out) noexcept {
    if (n == 0) return true;
    stats.llhttp_bytes += n;
    llhttp_errno_t e = llhttp_execute(&llhttp_, p, n);
    if (e != HPE_OK) {
      out = llhttp_failed(e);
      return false;
    }
    return true;
  }

  // ---- head
  Event scan_head(std::string_view in) noexcept {
    if (!in.empty()) begin_head_if_needed();
    size_t i = 0;
    const size_t n = in.size();
    while (i < n) {
      const char c = in[i];
      if (prev_cr_) {
        ++stats.bytes_scanned;
        if (c != '\n') return fail(Reason::BareCr, "CR not followed by LF in the head");
        prev_cr_ = false;
        head_ += c;
        ++i;
        std::string_view line(head_.data() + line_start_, head_.size() - 2 - line_start_);
        if (line.empty()) {
          if (line_no_ == 0) {
            if (!request_ || ++leading_empty_ > limits_.max_leading_empty_lines) {
              return fail(request_ ? Reason::BadRequestLine : Reason::BadStatusLine, "empty start line");
            }
            head_.clear();
            line_start_ = 0;
            continue;
          }
          // The limit covers the whole head, its final CRLF included.
          if (head_.size() > limits_.max_header_bytes) {
            return fail(Reason::HeaderTooLarge, "head over max_header_bytes");
          }
          if (std::optional<Reason> r = finish_head()) return fail(*r, std::move(fail_detail_));
          Event ev;
          if (!feed_llhttp(head_.data(), head_.size(), ev)) return ev;
          if (std::optional<Reason> r = check_llhttp_head()) return fail(*r, std::move(fail_detail_));
          start_body();
          return Event{EventKind::Head, i, 0, 0, {}, false};
        }
        if (std::optional<Reason> r = on_line(line)) return fail(*r, std::move(fail_detail_));
        line_start_ = head_.size();
        continue;
      }
      if (c == '\r') {
        ++stats.bytes_scanned;
        prev_cr_ = true;
        head_ += c;
        ++i;
      } else if (c == '\n') {
        ++stats.bytes_scanned;
        return fail(Reason::BareLf, "LF not preceded by CR in the head");
      } else {
        size_t j = i;
        while (j < n && in[j] != '\r' && in[j] != '\n') ++j;
        stats.bytes_scanned += j - i;
        head_.append(in.data() + i, j - i);
        i = j;
      }
      if (line_no_ == 0 && request_ && head_.size() - line_start_ > limits_.max_uri_bytes + 64) {
        return fail(Reason::UriTooLong, "request line over the URI limit");
      }
      if (head_.size() > limits_.max_header_bytes) {
        return fail(line_no_ == 0 && request_ ? Reason::UriTooLong : Reason::HeaderTooLarge,
                    "head over max_header_bytes");
      }
    }
    return Event{EventKind::NeedMore, n, 0, 0, {}, false};
  }

  std::optional<Reason> on_line(std::string_view line) noexcept {
    const size_t index = line_no_++;
    if (index == 0) return request_ ? request_line(line) : status_line(line);
    if (line_no_ - 1 > limits_.max_header_count) return Reason::TooManyHeaders;
    std::string_view name, value;
    if (std::optional<Reason> r = check_field_line(line, name, value)) return r;
    Headers& h = request_ ? req.headers : resp.headers;
    switch (name.size()) {
      case 4:
        if (iequals(name, "host")) {
          if (host_count_++ == 0) host_idx_ = h.size();
        }
        break;
      case 7:
        if (iequals(name, "upgrade")) {
          has_upgrade_ = true;
          if (contains_token_ci(value, "h2c")) has_h2c_ = true;
        }
        break;
      case 10:
        if (iequals(name, "connection")) scan_connection(value, conn_close_, conn_keep_alive_);
        break;
      case 14:
        if (iequals(name, "content-length")) {
          if (cl_count_++ == 0) cl_idx_ = h.size();
        } else if (iequals(name, "http2-settings")) {
          has_h2c_ = true;
        }
        break;
      case 17:
        if (iequals(name, "transfer-encoding")) {
          if (te_count_++ == 0) te_idx_ = h.size();
        }
        break;
      default: break;
    }
    h.add(std::string(name), std::string(value));
    return std::nullopt;
  }

  std::optional<Reason> request_line(std::string_view line) noexcept {
    if (is_ows(line.front())) return Reason::BadRequestLine;
    size_t sp1 = line.find(' ');
    std::string_view method = line.substr(0, sp1);
    if (method.empty()) return Reason::BadRequestLine;
    for (char c : method) {
      if (!is_tchar(c)) return Reason::BadMethod;
    }
    if (sp1 == std::string_view::npos) return Reason::BadRequestLine;
    std::string_view rest = line.substr(sp1 + 1);
    size_t sp2 = rest.find(' ');
    std::string_view target = rest.substr(0, sp2);
    if (target.empty()) return Reason::BadRequestLine;
    if (target.size() > limits_.max_uri_bytes) return Reason::UriTooLong;
    for (char ch : target) {
      const auto c = static_cast<unsigned char>(ch);
      if (c == '#') return Reason::FragmentInTarget;
      if (c < 0x21 || c > 0x7e) return Reason::BadTarget;
    }
    if (sp2 == std::string_view::npos) return Reason::Http09;
    std::string_view version = rest.substr(sp2 + 1);
    if (version.find(' ') != std::string_view::npos || version.empty()) return Reason::BadRequestLine;
    if (std::optional<Reason> r = check_version(version, req.version_minor)) return r;
    req.method.assign(method);
    req.target.assign(target);
    return std::nullopt;
  }

  std::optional<Reason> status_line(std::string_view line) noexcept {
    if (line.size() < 8) return Reason::BadStatusLine;
    if (std::optional<Reason> r = check_version(line.substr(0, 8), resp.version_minor)) return r;
    if (line.size() < 12 || line[8] != ' ') return Reason::BadStatusLine;
    int status = 0;
    for (size_t k = 9; k < 12; ++k) {
      if (line[k] < '0' || line[k] > '9') return Reason::BadStatusLine;
      status = status * 10 + (line[k] - '0');
    }
    if (status < 100 || status > 599) return Reason::BadStatusLine;
    std::string_view reason;
    if (line.size() > 12) {
      if (line[12] != ' ') return Reason::BadStatusLine;
      reason = line.substr(13);
      for (char c : reason) {
        if (!is_value_char(c)) return Reason::BadStatusLine;
      }
    }
    resp.status = status;
    resp.reason.assign(reason);
    return std::nullopt;
  }

  const Headers& headers() const noexcept { return request_ ? req.headers : resp.headers; }
  std::string_view header_value(size_t idx) const noexcept { return headers().items()[idx].value; }

  std::optional<Reason> parse_content_length(uint64_t& out) noexcept {
    if (cl_count_ > 1) return Reason::RepeatedContentLength;
    const std::string_view cl_value = header_value(cl_idx_);
    if (cl_value.empty() || cl_value.size() > 15) {
      fail_detail_ = "Content-Length must be 1 to 15 digits";
      return Reason::BadContentLength;
    }
    uint64_t v = 0;
    for (char c : cl_value) {
      if (c < '0' || c > '9') {
        fail_detail_ = "Content-Length must be digits only";
        return Reason::BadContentLength;
      }
      v = v * 10 + static_cast<uint64_t>(c - '0');
    }
    out = v;
    return std::nullopt;
  }

  std::optional<Reason> check_transfer_encoding(int minor) noexcept {
    if (te_count_ > 1) return Reason::RepeatedTransferEncoding;
    if (minor == 0) return Reason::TeHttp10;
    if (!iequals(header_value(te_idx_), "chunked")) return Reason::BadTransferEncoding;
    return std::nullopt;
  }

  // Semantic checks once the whole head is in; sets framing. Single pass over saved facts.
  std::optional<Reason> finish_head() noexcept {
    if (line_no_ == 0) return request_ ? Reason::BadRequestLine : Reason::BadStatusLine;
    return request_ ? finish_request() : finish_response();
  }

  std::optional<Reason> finish_request() noexcept {
    RequestHead& h = req;
    if (h.method == "CONNECT") return Reason::ConnectRefused;
    if (has_h2c_) return Reason::H2cRefused;
    if (has_upgrade_) return Reason::UpgradeRefused;
    if (cl_count_ > 0 && te_count_ > 0) return Reason::ClTe;
    if (te_count_ > 0) {
      if (std::optional<Reason> r = check_transfer_encoding(h.version_minor)) return r;
      h.framing = Framing::Chunked;
    } else if (cl_count_ > 0) {
      if (std::optional<Reason> r = parse_content_length(h.content_length)) return r;
      h.framing = Framing::ContentLength;
    } else {
      h.framing = Framing::None;
    }
    if (host_count_ > 1) return Reason::RepeatedHost;
    const std::string_view host_value = host_count_ ? header_value(host_idx_) : std::string_view();
    if (host_count_ == 0 && h.version_minor == 1) return Reason::MissingHost;
    if (host_count_ == 1 && !valid_host(host_value)) return Reason::BadHost;
    // request-target form (RFC 9112 §3.2)
    const std::string& t = h.target;
    if (t[0] == '/') {
      h.absolute_form = false;
    } else if (t == "*") {
      if (h.method != "OPTIONS") return Reason::BadTarget;
    } else {
      size_t scheme_end = t.find("://");
      if (scheme_end == std::string::npos ||
          !(iequals(std::string_view(t).substr(0, scheme_end), "http") ||
            iequals(std::string_view(t).substr(0, scheme_end), "https"))) {
        return Reason::BadTarget;
      }
      std::string_view rest = std::string_view(t).substr(scheme_end + 3);
      std::string_view authority = rest.substr(0, rest.find_first_of("/?"));
      if (authority.empty() || authority.find('@') != std::string_view::npos || !valid_host(authority)) {
        return Reason::BadTarget;
      }
      if (host_count_ == 1 && !iequals(authority, host_value)) return Reason::HostMismatch;
      h.absolute_form = true;
    }
    if (h.framing == Framing::ContentLength && h.content_length > limits_.max_body_bytes) {
      return Reason::BodyTooLarge;
    }
    h.keep_alive = h.version_minor == 1 ? !conn_close_ : (conn_keep_alive_ && !conn_close_);
    skip_body_ = false;
    return std::nullopt;
  }

  std::optional<Reason> finish_response() noexcept {
    ResponseHead& h = resp;
    const bool head_request = !expected_head_.empty() && expected_head_.front();
    if (h.status == 101) return Reason::UnexpectedUpgrade;
    if (cl_count_ > 0 && te_count_ > 0) return Reason::ClTe;
    if (te_count_ > 0) {
      if (std::optional<Reason> r = check_transfer_encoding(h.version_minor)) return r;
    }
    if (cl_count_ > 0) {
      if (std::optional<Reason> r = parse_content_length(h.content_length)) return r;
    }
    h.informational = h.status < 200;
    skip_body_ = head_request || h.informational || h.status == 204 || h.status == 304;
    if (skip_body_) {
      h.framing = Framing::None;
    } else if (te_count_ > 0) {
      h.framing = Framing::Chunked;
    } else if (cl_count_ > 0) {
      h.framing = Framing::ContentLength;
    } else {
      h.framing = Framing::CloseDelimited;
    }
    h.keep_alive = (h.version_minor == 1 ? !conn_close_ : (conn_keep_alive_ && !conn_close_)) &&
                   h.framing != Framing::CloseDelimited;
    return std::nullopt;
  }

  // What llhttp concluded from the same head must match what we concluded.
  std::optional<Reason> check_llhttp_head() noexcept {
    const int minor = request_ ? req.version_minor : resp.version_minor;
    const Framing f = request_ ? req.framing : resp.framing;
    const uint64_t cl = request_ ? req.content_length : resp.content_length;
    if (!ll_headers_done_ || llhttp_get_http_major(&llhttp_) != 1 ||
        llhttp_get_http_minor(&llhttp_) != minor) {
      fail_detail_ = "llhttp did not finish the head like we did";
      return Reason::ParserDesync;
    }
    if (f == Framing::Chunked && !(ll_flags_ & F_CHUNKED)) {
      fail_detail_ = "llhttp disagrees on chunked framing";
      return Reason::ParserDesync;
    }
    if (f == Framing::ContentLength && (!(ll_flags_ & F_CONTENT_LENGTH) || ll_content_length_ != cl)) {
      fail_detail_ = "llhttp disagrees on Content-Length";
      return Reason::ParserDesync;
    }
    if (f != Framing::ContentLength && f != Framing::Chunked && !skip_body_ &&
        (ll_flags_ & (F_CHUNKED | F_CONTENT_LENGTH))) {
      fail_detail_ = "llhttp sees a body we do not";
      return Reason::ParserDesync;
    }
    return std::nullopt;
  }

  void start_body() noexcept {
    const Framing f = request_ ? req.framing : resp.framing;
    const uint64_t cl = request_ ? req.content_length : resp.content_length;
    body_bytes_ = 0;
    if (f == Framing::ContentLength && cl > 0) {
      remaining_ = cl;
      phase_ = Phase::BodyLength;
    } else if (f == Framing::Chunked) {
      cs_ = ChunkState::Size;
      chunk_size_ = 0;
      size_digits_ = 0;
      phase_ = Phase::BodyChunked;
    } else if (f == Framing::CloseDelimited) {
      phase_ = Phase::BodyEof;
    } else {
      phase_ = Phase::PendingComplete;
    }
    // The head bytes are in llhttp and in the parsed head; keep a small buffer only.
    if (head_.capacity() > 16 * 1024) {
      std::string().swap(head_);
    } else {
      head_.clear();
    }
    line_start_ = 0;
  }

  // ---- bodies
  Event body_length(std::string_view in) noexcept {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(in.size(), remaining_));
    if (n == 0) return Event{EventKind::NeedMore, 0, 0, 0, {}, false};
    ++stats.bytes_scanned;
    Event ev;
    if (!feed_llhttp(in.data(), n, ev)) return ev;
    remaining_ -= n;
    body_bytes_ += n;
    if (remaining_ == 0) phase_ = Phase::PendingComplete;
    return Event{EventKind::Body, n, 0, n, {}, false};
  }

  Event body_eof(std::string_view in) noexcept {
    if (in.empty()) return Event{EventKind::NeedMore, 0, 0, 0, {}, false};
    ++stats.bytes_scanned;
    Event ev;
    if (!feed_llhttp(in.data(), in.size(), ev)) return ev;
    body_bytes_ += in.size();
    return Event{EventKind::Body, in.size(), 0, in.size(), {}, false};
  }

  Event body_chunked(std::string_view in) noexcept {
    const size_t n = in.size();
    size_t i = 0;
    bool last_chunk = false;
    while (i < n && !last_chunk) {
      const char c = in[i];
      ++stats.bytes_scanned;
      switch (cs_) {
        case ChunkState::Size: {
          const int v = hex_value(c);
          if (v >= 0) {
            if (++size_digits_ > 16) return fail(Reason::BadChunkSize, "chunk size over 16 hex digits");
            chunk_size_ = (chunk_size_ << 4) | static_cast<uint64_t>(v);
          } else if (size_digits_ == 0) {
            return fail(Reason::BadChunkSize, "chunk size must start with a hex digit");
          } else if ((c == ';' || c == '\r') && request_ &&
                     chunk_size_ > limits_.max_body_bytes - body_bytes_) {
            return fail(Reason::BodyTooLarge, "chunked body over max_body_bytes");
          } else if (c == ';') {
            ext_bytes_ = 0;
            cs_ = ChunkState::Ext;
          } else if (c == '\r') {
            cs_ = ChunkState::SizeLf;
          } else if (c == '\n') {
            return fail(Reason::BareLf, "LF without CR after a chunk size");
          } else {
            return fail(Reason::BadChunkSize, "unexpected byte after a chunk size");
          }
          ++i;
          break;
        }
        case ChunkState::Ext:
          if (c == '\r') {
            cs_ = ChunkState::SizeLf;
          } else if (c == '\n') {
            return fail(Reason::BareLf, "LF without CR after a chunk extension");
          } else if (!is_value_char(c) || (static_cast<unsigned char>(c) & 0x80) != 0) {
            // RFC 9112 §7.1.1: chunk-ext is tokens and quoted strings; llhttp (strict) refuses
            // obs-text there, so we refuse it first, whatever the read boundaries (fuzz find).
            return fail(Reason::BadChunkExt, "control or non-ASCII byte in a chunk extension");
          } else if (++ext_bytes_ > limits_.max_chunk_ext_bytes) {
            return fail(Reason::ChunkExtTooLong, "chunk extension over max_chunk_ext_bytes");
          }
          ++i;
          break;
        case ChunkState::SizeLf:
          if (c != '\n') return fail(Reason::BareCr, "CR not followed by LF after a chunk size");
          ++i;
          ++stats.chunks;
          if (chunk_size_ == 0) {
            last_chunk = true;
          } else {
            remaining_ = chunk_size_;
            body_bytes_ += chunk_size_;
            cs_ = ChunkState::Data;
          }
          chunk_size_ = 0;
          size_digits_ = 0;
          break;
        case ChunkState::Data: {
          const size_t take = static_cast<size_t>(std::min<uint64_t>(remaining_, n - i));
          i += take;
          remaining_ -= take;
          if (remaining_ == 0) cs_ = ChunkState::DataCr;
          break;
        }
        case ChunkState::DataCr:
          if (c != '\r') return fail(Reason::ChunkMissingCrlf, "chunk data not followed by CRLF");
          cs_ = ChunkState::DataLf;
          ++i;
          break;
        case ChunkState::DataLf:
          if (c != '\n') return fail(Reason::ChunkMissingCrlf, "chunk data not followed by CRLF");
          cs_ = ChunkState::Size;
          ++i;
          break;
      }
    }
    if (i == 0) return Event{EventKind::NeedMore, 0, 0, 0, {}, false};
    Event ev;
    if (!feed_llhttp(in.data(), i, ev)) return ev;
    if (last_chunk) {
      phase_ = Phase::Trailers;
      trailer_bytes_ = 0;
      t_prev_cr_ = false;
      trailer_line_.clear();
    }
    return Event{EventKind::Body, i, 0, i, {}, false};
  }

  // Trailer section after the last chunk: validated like field lines, then dropped. llhttp is
  // fed exactly what is forwarded ("0\r\n" then "\r\n"), never the dropped trailer lines, so
  // its view of the message is the upstream's view.
  Event trailers(std::string_view in) noexcept {
    const size_t n = in.size();
    size_t i = 0;
    while (i < n) {
      const char c = in[i];
      ++stats.bytes_scanned;
      ++i;
      if (++trailer_bytes_ > limits_.max_trailer_bytes) {
        return fail(Reason::TrailerTooLarge, "trailer section over max_trailer_bytes");
      }
      if (t_prev_cr_) {
        if (c != '\n') return fail(Reason::BadTrailer, "CR not followed by LF in the trailers");
        t_prev_cr_ = false;
        Event ev;
        if (trailer_line_.empty()) {
          if (!feed_llhttp(kCrlf.data(), kCrlf.size(), ev)) return ev;
          return complete(i, kCrlf);
        }
        std::string_view name, value;
        if (check_field_line(trailer_line_, name, value)) {
          return fail(Reason::BadTrailer, "malformed trailer field line");
        }
        trailer_line_.clear();
      } else if (c == '\r') {
        t_prev_cr_ = true;
      } else if (c == '\n') {
        return fail(Reason::BadTrailer, "LF without CR in the trailers");
      } else {
        trailer_line_ += c;
      }
    }
    return Event{EventKind::NeedMore, n, 0, 0, {}, false};
  }

  Event complete(size_t consumed, std::string_view tail) noexcept {
    ++stats.messages;
    if (ll_completed_ != stats.messages) {
      return fail(Reason::ParserDesync, "llhttp did not complete the message where we did");
    }
    bool keep_alive;
    if (request_) {
      keep_alive = req.keep_alive;
    } else {
      keep_alive = resp.keep_alive;
      if (!resp.informational) {
        if (!expected_head_.empty()) expected_head_.pop_front();
        reusable = keep_alive;
      }
    }
    reset_head_state();
    if (!keep_alive) {
      phase_ = Phase::Closed;
    } else if (!request_ && expected_head_.empty()) {
      phase_ = Phase::Idle;
    } else {
      phase_ = Phase::Head;
    }
    return Event{EventKind::MessageComplete, consumed, 0, 0, tail, keep_alive};
  }

  void reset_head_state() noexcept {
    line_start_ = 0;
    line_no_ = 0;
    leading_empty_ = 0;
    prev_cr_ = false;
    cl_count_ = te_count_ = host_count_ = 0;
    cl_idx_ = te_idx_ = host_idx_ = 0;
    has_upgrade_ = has_h2c_ = conn_close_ = conn_keep_alive_ = false;
    ll_headers_done_ = false;
    ll_flags_ = 0;
    ll_content_length_ = 0;
    // The next Head replaces the previous one.
    next_head_clears_ = true;
  }

  void begin_head_if_needed() noexcept {
    if (!next_head_clears_) return;
    next_head_clears_ = false;
    if (request_) {
      req.reset();
    } else {
      resp.reset();
    }
  }
  // ---- llhttp callbacks (noexcept C trampolines)
  static Core* self(llhttp_t* p) noexcept { return static_cast<Core*>(p->data); }
  static int cb_plain(llhttp_t* p) noexcept {
    ++self(p)->stats.llhttp_callbacks;
    return 0;
  }
  static int cb_data(llhttp_t* p, const char*, size_t) noexcept {
    ++self(p)->stats.llhttp_callbacks;
    return 0;
  }
  static int cb_body(llhttp_t* p, const char*, size_t) noexcept {
    ++self(p)->stats.llhttp_callbacks;
    return 0;
  }
  static int cb_headers_complete(llhttp_t* p) noexcept {
    Core* c = self(p);
    ++c->stats.llhttp_callbacks;
    c->ll_headers_done_ = true;
    c->ll_flags_ = p->flags;
    c->ll_content_length_ = p->content_length;
    return c->skip_body_ ? 1 : 0;
  }
  static int cb_message_complete(llhttp_t* p) noexcept {
    Core* c = self(p);
    ++c->stats.llhttp_callbacks;
    ++c->ll_completed_;
    return 0;
  }

  const bool request_;
  const Limits limits_;
  llhttp_settings_t settings_{};
  llhttp_t llhttp_{};
  Phase phase_ = Phase::Head;

  // head scanning
  std::string head_;
  size_t line_start_ = 0;
  size_t line_no_ = 0;
  size_t leading_empty_ = 0;
  bool prev_cr_ = false;
  bool next_head_clears_ = false;
  std::string fail_detail_;
  // facts gathered during the single pass over the field lines (views into head_)
  size_t cl_count_ = 0, te_count_ = 0, host_count_ = 0;
  size_t cl_idx_ = 0, te_idx_ = 0, host_idx_ = 0;  // first of each in the head's headers
  bool has_upgrade_ = false, has_h2c_ = false, conn_close_ = false, conn_keep_alive_ = false;
  bool skip_body_ = false;
  std::deque<bool> expected_head_;  // response side: outstanding requests, true = HEAD

  // llhttp's view
  bool ll_headers_done_ = false;
  uint16_t ll_flags_ = 0;
  uint64_t ll_content_length_ = 0;
  uint64_t ll_completed_ = 0;

  // bodies
  uint64_t remaining_ = 0;
  uint64_t body_bytes_ = 0;
  ChunkState cs_ = ChunkState::Size;
  uint64_t chunk_size_ = 0;
  size_t size_digits_ = 0;
  size_t ext_bytes_ = 0;
  std::string trailer_line_;
  size_t trailer_bytes_ = 0;
  bool t_prev_cr_ = false;
};

}  // namespace detail

// ---- facades

RequestParser::RequestParser(const Limits& limits) : core_(std::make_unique<detail::Core>(true, limits)) {}
RequestParser::~RequestParser() = default;
Event RequestParser::next(std::string_view in) noexcept {
  return core_->next(in);
}
Event RequestParser::finish() noexcept { return core_->finish(); }
RequestHead& RequestParser::request() noexcept { return core_->req; }
const ParseError& RequestParser::error() const noexcept { return core_->err; }
const ParserStats& RequestParser::stats() const noexcept { return core_->stats; }
size_t RequestParser::retained_bytes() const noexcept { return core_->retained_bytes(); }

ResponseParser::ResponseParser(const Limits& limits) : core_(std::make_unique<detail::Core>(false, limits)) {}
ResponseParser::~ResponseParser() = default;
void ResponseParser::expect_response(std::string_view method) noexcept { core_->expect_response(method); }
Event ResponseParser::next(std::string_view in) noexcept {
  return core_->next(in);
}
Event ResponseParser::finish() noexcept { return core_->finish(); }
ResponseHead& ResponseParser::response() noexcept { return core_->resp; }
const ParseError& ResponseParser::error() const noexcept { return core_->err; }
const ParserStats& ResponseParser::stats() const noexcept { return core_->stats; }
size_t ResponseParser::retained_bytes() const noexcept { return core_->retained_bytes(); }
bool ResponseParser::reusable() const noexcept { return core_->reusable; }
bool ResponseParser::idle() const noexcept { return core_->idle(); }

}  // namespace fp::filters::http1
