#include "proxy/connection.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <deque>
#include <optional>
#include <cstring>
#include <ctime>

#include "certs/audit_chain.h"
#include "filters/http1/log_fields.h"
#include "filters/http1/parser.h"
#include "filters/proxy_protocol.h"
#include "proxy/base/json.h"
#include "proxy/base/log.h"
#include "proxy/original_dst.h"
#include "proxy/worker.h"

namespace fp::proxy {

namespace {

// How long a failing connection may take to flush what is queued (a TLS alert) before close.
constexpr uint64_t kLingerMs = 1000;

std::string sockaddr_text(const struct sockaddr_storage& ss) {
  char host[INET6_ADDRSTRLEN] = {0};
  if (ss.ss_family == AF_INET) {
    const auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
    uv_ip4_name(a, host, sizeof host);
    return std::string(host) + ":" + std::to_string(ntohs(a->sin_port));
  }
  if (ss.ss_family == AF_INET6) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
    uv_ip6_name(a, host, sizeof host);
    return "[" + std::string(host) + "]:" + std::to_string(ntohs(a->sin6_port));
  }
  return "unix";
}

// Access-log time: UTC, second resolution.
std::string utc_timestamp() {
  char ts[40];
  const time_t now = time(nullptr);
  struct tm tm;
  gmtime_r(&now, &tm);
  strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return ts;
}

bool is_ip_literal(const std::string& host) {
  unsigned char buf[sizeof(struct in6_addr)];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

// tcp mode, proxy_protocol = "v2": the header for this client connection (`h` is the
// downstream handle; `tls` the finished downstream handshake, or null on a plaintext listener).
std::string proxy_v2_header(uv_handle_t* h, const config::Address& listener, const certs::HandshakeInfo* tls) {
  filters::ProxyV2Info pp;
  if (listener.is_unix()) {
    pp.family = filters::ProxyV2Info::Family::Unix;
    char path[256] = {0};
    size_t len = sizeof path;
    if (uv_pipe_getpeername(reinterpret_cast<uv_pipe_t*>(h), path, &len) == 0) pp.src_path.assign(path, len);
    pp.dst_path = listener.path;
  } else {
    struct sockaddr_storage peer{}, local{};
    int plen = sizeof peer, llen = sizeof local;
    auto* tcp = reinterpret_cast<uv_tcp_t*>(h);
    if (uv_tcp_getpeername(tcp, reinterpret_cast<sockaddr*>(&peer), &plen) == 0 &&
        uv_tcp_getsockname(tcp, reinterpret_cast<sockaddr*>(&local), &llen) == 0 && peer.ss_family == local.ss_family) {
      if (peer.ss_family == AF_INET) {
        const auto* p = reinterpret_cast<const sockaddr_in*>(&peer);
        const auto* l = reinterpret_cast<const sockaddr_in*>(&local);
        pp.family = filters::ProxyV2Info::Family::Inet;
        std::memcpy(pp.src_addr.data(), &p->sin_addr, 4);
        std::memcpy(pp.dst_addr.data(), &l->sin_addr, 4);
        pp.src_port = ntohs(p->sin_port);
        pp.dst_port = ntohs(l->sin_port);
      } else if (peer.ss_family == AF_INET6) {
        const auto* p = reinterpret_cast<const sockaddr_in6*>(&peer);
        const auto* l = reinterpret_cast<const sockaddr_in6*>(&local);
        pp.family = filters::ProxyV2Info::Family::Inet6;
        std::memcpy(pp.src_addr.data(), &p->sin6_addr, 16);
        std::memcpy(pp.dst_addr.data(), &l->sin6_addr, 16);
        pp.src_port = ntohs(p->sin6_port);
        pp.dst_port = ntohs(l->sin6_port);
      }
    }
    if (pp.family == filters::ProxyV2Info::Family::Unspec) pp.local = true;  // addresses unknown
  }
  if (tls != nullptr) {
    pp.ssl = true;
    pp.alpn = tls->alpn;
    pp.authority = tls->sni;
    pp.ssl_version = tls->version;
    pp.ssl_cipher = tls->cipher;
    if (tls->peer.present) {
      // Only verified certificates get this far (an unverified one fails the handshake).
      pp.cert_sess = true;
      pp.cert_conn = !tls->resumed;
      pp.verify = 0;
      pp.ssl_cn = filters::subject_cn(tls->peer.subject);
      pp.spiffe_id = tls->peer.spiffe_id;
    }
  }
  return filters::encode_proxy_v2(pp);
}

}  // namespace

struct Connection::Http {
  explicit Http(const filters::http1::Limits& request_limits) : req(request_limits) {}
  filters::http1::RequestParser req;
  // One response parser per upstream connection: a new one each time another is bound.
  std::unique_ptr<filters::http1::ResponseParser> resp = std::make_unique<filters::http1::ResponseParser>();
  filters::http1::Http1Chain chain;
  uint64_t requests = 0;            // request heads forwarded
  uint64_t responses = 0;           // final responses completed
  bool response_head_sent = false;  // of the response in progress
  bool close_after_response = false;
  // RELIABILITY C16 (slowloris): when the current request's first byte arrived; 0 while no
  // request head is in progress. request_header_timeout runs from here to the Head event.
  uint64_t head_started_ms = 0;
  bool awaiting_head = true;
  std::string remote_ip;
  std::string head;                 // serialisation scratch
  // Upstream binding (keep-alive pool, egress routing).
  bool req_in_progress = false;     // a request's head was dispatched, its end not yet seen
  bool waiting = false;             // a request waits for an upstream: downstream reads paused
  std::string pending_head;         // its serialized head (kept after sending, for a retry)
  bool pending_retryable = false;   // idempotent method, no body: may be sent again
  // Retry on a fresh connection (once per request) when a reused upstream connection closes
  // before any byte of the answer: the server's idle timeout raced our reuse.
  bool retry_armed = false;         // the request in flight went out on a reused connection
  uint64_t retry_mark = 0;          // up_->bytes_in when it went out
  bool retrying = false;            // re-sending: the parser has already seen the request
  bool fresh_only = false;          // the next upstream is a new connection, not a pooled one
  std::string pending_method;
  std::string held;                 // downstream bytes that followed it, not yet parsed
  bool release_pending = false;     // the bound upstream finished its exchange cleanly
  bool up_stray = false;            // ... and then sent more bytes: never reuse it
  std::string up_key;               // pool key of the bound upstream ("" when none)
  std::string target_key;           // pool key the parked request needs
  bool refusing = false;            // http_refuse is answering: fail() must not answer again
  // egress: the destination of the request being routed
  int egress_index = -1;
  std::string egress_host;
  uint16_t egress_port = 0;
  std::vector<struct sockaddr_storage> egress_addrs;  // tried in order until one connects
  size_t egress_next = 0;
  // per-request access log (requests are answered in order)
  struct Exchange {
    std::string method, path, authority, upstream;
    uint64_t start_ms = 0;
    uint64_t req_bytes = 0;   // downstream plaintext while this request was being sent
    uint64_t resp_bytes = 0;  // upstream plaintext of its response
    bool reused = false;
  };
  std::deque<Exchange> exchanges;
  uint64_t upstream_reuses = 0;
  int resp_status = 0;              // of the response in progress
  // A request refused while earlier pipelined ones still wait for their responses: those are
  // answered first (in order), then this refusal and the close.
  struct Refusal {
    int status;
    std::string token;
    Code code;
    std::string detail;
  };
  std::optional<Refusal> deferred;
  bool down_eof_pending = false;    // the client finished sending while its request was parked
  bool client_http10 = false;       // the request being answered came as HTTP/1.0
  // Per-connection caches for the per-request path.
  bool log_requests = false;              // the access log is on
  std::string cluster_key;                // pool key prefix of the listener's cluster
  std::array<std::string, 6> status_series;  // fipsproxy_http1_requests_total per status class
  std::string reuse_series_label, reuse_series;  // fipsproxy_upstream_pool_reuses_total
};

struct Connection::WriteReq {
  uv_write_t req;
  Connection* conn;
  Endpoint* ep;
  std::unique_ptr<char[]> data;
  size_t len;
};

Connection::Connection(Worker& worker, std::shared_ptr<const Runtime> rt,
                       const ListenerRuntime& listener, uint64_t id)
    : worker_(worker), rt_(std::move(rt)), listener_(listener), id_(id) {
  down_.is_down = true;
  up_->is_down = false;
  started_ms_ = last_activity_ms_ = uv_now(worker_.loop());
}

Connection::~Connection() = default;

bool Connection::accept_from(uv_stream_t* server) {
  if (uv_tcp_init(worker_.loop(), &down_.h.tcp) != 0) return false;
  down_.inited = true;
  down_.h.handle.data = this;
  int rc = uv_accept(server, &down_.h.stream);
  if (rc != 0) {
    FP_LOG_DEBUG("accept failed", {"err", uv_err_name(rc)});
    return false;
  }
  uv_tcp_nodelay(&down_.h.tcp, 1);
  struct sockaddr_storage ss;
  int len = sizeof ss;
  if (uv_tcp_getpeername(&down_.h.tcp, reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
    peer_addr_ = sockaddr_text(ss);
  }
  return true;
}

bool Connection::adopt_pipe_fd(int fd) {
  if (uv_pipe_init(worker_.loop(), &down_.h.pipe, 0) != 0) {
    ::close(fd);
    return false;
  }
  down_.inited = true;
  down_.h.handle.data = this;
  int rc = uv_pipe_open(&down_.h.pipe, fd);  // the handle owns fd from here
  if (rc != 0) {
    ::close(fd);
    return false;
  }
  peer_addr_ = "unix:" + listener_.cfg->address.path;
  return true;
}

void Connection::start(bool over_limit) {
  worker_.stats().add(series("fipsproxy_downstream_connections_total",
                             {{"listener", listener_.cfg->name}}));
  if (uv_timer_init(worker_.loop(), &timer_) == 0) {
    timer_inited_ = true;
    timer_.data = this;
  }
  if (over_limit) {
    fail(make_error(Code::ConnectionLimit, Side::Downstream,
                    "max_connections " + std::to_string(listener_.cfg->max_connections) +
                        " reached on listener " + listener_.cfg->name));
    return;
  }
  counted_ = true;  // the worker took a slot in listener_.active for us
  if (listener_.cfg->mode == config::Mode::Http1) {
    http_ = std::make_unique<Http>(listener_.http_limits);
    http_->log_requests = rt_->access_log && rt_->access_log->enabled();
    for (const auto& f : listener_.http_filters) http_->chain.push_back(f->create());
    const size_t colon = peer_addr_.rfind(':');
    http_->remote_ip = colon == std::string::npos ? peer_addr_ : peer_addr_.substr(0, colon);
    if (!http_->remote_ip.empty() && http_->remote_ip.front() == '[') {
      http_->remote_ip = http_->remote_ip.substr(1, http_->remote_ip.size() - 2);
    }
  }
  if (listener_.tls) {
    down_.tls = TlsTransport::create(listener_.tls, "");
    if (!down_.tls) {
      fail(make_error(Code::TlsSetupFailed, Side::Internal, "SSL_new failed"));
      return;
    }
    state_ = State::Handshaking;
    arm_timer(static_cast<uint64_t>(listener_.cfg->handshake_timeout.count()));
    start_reading(down_);
  } else if (http_) {
    established();  // http1: the upstream is chosen per request
  } else {
    state_ = State::Connecting;
    connect_upstream();
  }
}

void Connection::force_close(Code code) {
  fail(make_error(code, Side::Internal, "closed by the proxy"));
  // No lingering on a forced close.
  finish_close();
}

// --- reading ------------------------------------------------------------------------------

void Connection::start_reading(Endpoint& ep) {
  if (!ep.inited || ep.reading || ep.read_eof || closing_) return;
  if (http_ && ep.is_down && (http_->waiting || http_->deferred)) return;  // see http_send_pending
  int rc = uv_read_start(&ep.h.stream, on_alloc, on_read);
  if (rc != 0) {
    fail(make_error(Code::Io, side_of(ep), std::string("uv_read_start: ") + uv_err_name(rc)));
    return;
  }
  ep.reading = true;
}

void Connection::stop_reading(Endpoint& ep) {
  if (!ep.reading) return;
  uv_read_stop(&ep.h.stream);
  ep.reading = false;
}

void Connection::on_alloc(uv_handle_t* h, size_t, uv_buf_t* buf) noexcept {
  // One buffer per worker: every read is consumed (fed to TLS or queued as a copy) before
  // the callback returns, so an idle connection holds no read buffer.
  auto* self = static_cast<Connection*>(h->data);
  *buf = uv_buf_init(self->worker_.read_buffer(), Worker::kReadBufferSize);
}

void Connection::on_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) noexcept {
  auto* self = static_cast<Connection*>(s->data);
  Endpoint& ep = (s == &self->down_.h.stream) ? self->down_ : *self->up_;
  if (self->closing_) return;
  if (nread > 0) {
    self->on_data(ep, buf->base, static_cast<size_t>(nread));
  } else if (nread == UV_EOF) {
    self->on_eof(ep);
  } else if (nread < 0) {
    const bool down = ep.is_down;
    if (!down && self->http_ && (!self->http_in_flight() || self->http_->release_pending)) {
      self->http_->release_pending = false;
      self->release_upstream(false);  // an idle upstream went away: the next request gets another
      return;
    }
    if (!down && self->http_ && self->state_ == State::Established &&
        !self->http_->response_head_sent && self->http_->responses < self->http_->requests) {
      // RELIABILITY F33: the upstream reset before the response head: 502, not a bare close.
      self->http_refuse(502, "upstream_reset", Code::UpstreamReset, Side::Upstream,
                        std::string("read: ") + uv_err_name(static_cast<int>(nread)));
      return;
    }
    self->fail(make_error(down ? Code::DownstreamReset : Code::UpstreamReset, self->side_of(ep),
                          std::string("read: ") + uv_err_name(static_cast<int>(nread))));
  }
}

void Connection::on_data(Endpoint& ep, const char* data, size_t len) {
  touch();
  if (ep.tls) {
    // The session reads the records straight from the worker's read buffer; what it leaves
    // unread (the rest after a backpressure stop) is copied when `lend` ends.
    TlsTransport::Lend lend(*ep.tls, data, len);
    if (!ep.tls->handshake_done()) {
      drive_handshake(ep);
    } else if (state_ == State::Established) {
      pump(ep);
    }
    return;
  }
  if (state_ != State::Established) {
    // Plain side speaking before the other side is ready cannot happen: we do not read it
    // until established. Anything else is a bug in the state machine.
    fail(make_error(Code::Internal, side_of(ep), "data before established"));
    return;
  }
  forward(ep, data, len);
  http_settle();
}

void Connection::on_eof(Endpoint& ep) {
  stop_reading(ep);
  if (ep.tls && !ep.tls->handshake_done()) {
    fail(make_error(ep.is_down ? Code::DownstreamReset : Code::UpstreamReset, side_of(ep),
                    "peer closed during the TLS handshake"));
    return;
  }
  if (state_ != State::Established) {
    fail(make_error(ep.is_down ? Code::DownstreamReset : Code::UpstreamReset, side_of(ep),
                    "peer closed before the connection was established"));
    return;
  }
  if (ep.tls) pump(ep);  // deliver what is still buffered (read_eof is set on close_notify)
  if (closing_ || ep.read_eof) return;
  // EOF without close_notify: treat as end of stream (the peer may have truncated).
  source_finished(ep);
}

// Moves decrypted plaintext from `ep` to the other side while the other side has room.
void Connection::pump(Endpoint& ep) {
  Endpoint& to = other(ep);
  const uint64_t high = rt_->cfg.limits.high_watermark;
  // Decrypted records are coalesced in the worker's pump buffer (no per-read allocation or
  // zero fill) and forwarded in chunks of up to kPumpBufferSize. Nothing re-enters pump on this
  // worker while forward() runs (writes complete asynchronously), so one buffer suffices.
  char* buf = worker_.pump_buffer();
  size_t used = 0;
  constexpr size_t kRecord = 16384 + 512;
  while (!closing_ && !ep.read_eof) {
    if (to.queued + used >= high) {
      if (used != 0) break;
      stop_reading(ep);
      ep.paused = true;
      break;
    }
    TlsTransport::ReadResult r = ep.tls->read(buf + used, Worker::kPumpBufferSize - used);
    used += r.bytes;
    if (r.bytes > 0) {
      if (Worker::kPumpBufferSize - used < kRecord) {
        forward(ep, buf, used);
        used = 0;
      }
      continue;
    }
    flush(ep);  // a read may produce records (KeyUpdate response, alerts)
    if (r.want_read) break;
    if (r.eof) {
      if (used != 0) {
        forward(ep, buf, used);
        used = 0;
      }
      stop_reading(ep);
      source_finished(ep);
      return;
    }
    fail(ep.tls->failure(side_of(ep)));
    return;
  }
  if (used != 0 && !closing_) forward(ep, buf, used);
  if (!closing_ && ep.paused == false && !ep.read_eof) start_reading(ep);
  http_settle();  // `ep` may be an upstream that just finished its exchange
}

void Connection::forward(Endpoint& from, const char* data, size_t len) {
  if (http_) {
    if (from.is_down) {
      http_from_down(data, len);
    } else {
      // A response read usually yields a rebuilt head and then the body that came with it:
      // both are sealed as they come and leave in one send (one write syscall, not two).
      down_.corked = true;
      http_from_up(data, len);
      uncork(down_);
    }
    return;
  }
  forward_raw(from, data, len);
}

void Connection::send_down(const std::string& bytes) {
  down_.bytes_out += bytes.size();
  if (down_.tls) {
    if (!seal_corked(down_)) return;  // in order behind what waits for the uncork
    if (!down_.tls->write(bytes.data(), bytes.size())) return;
    flush(down_);
  } else {
    write_copy(down_, bytes.data(), bytes.size());
  }
}

void Connection::http_refuse(int status, std::string_view token, Code code, Side side,
                             std::string detail) {
  if (closing_) return;
  // A later pipelined request refused (its head failed, or a filter said no) while earlier
  // ones still wait for responses: answer those first. Not for the request in progress itself
  // (a stalled body, a timeout): that answer is due now.
  if (side == Side::Downstream && !http_->refusing && !http_->deferred && !http_->req_in_progress &&
      http_->responses < http_->requests) {
    http_->deferred = Http::Refusal{status, std::string(token), code, std::move(detail)};
    stop_reading(down_);  // nothing after the refused request is read or forwarded
    return;
  }
  http_->refusing = true;
  worker_.stats().add(series("fipsproxy_http1_rejections_total",
                             {{"listener", listener_.cfg->name}, {"reason", token}}));
  const char* phrase = status == 400   ? "Bad Request"
                       : status == 403 ? "Forbidden"
                       : status == 408 ? "Request Timeout"
                       : status == 413 ? "Payload Too Large"
                       : status == 414 ? "URI Too Long"
                       : status == 417 ? "Expectation Failed"
                       : status == 421 ? "Misdirected Request"
                       : status == 431 ? "Request Header Fields Too Large"
                       : status == 501 ? "Not Implemented"
                       : status == 502 ? "Bad Gateway"
                       : status == 503 ? "Service Unavailable"
                       : status == 504 ? "Gateway Timeout"
                       : status == 505 ? "HTTP Version Not Supported"
                                       : "Error";
  // The body names the reason token and, for upstream and egress refusals, what the operator
  // can act on (one line, control characters replaced).
  std::string body(token);
  if (!detail.empty() && (side == Side::Upstream || code == Code::EgressDenied)) {
    body += ": ";
    for (char ch : detail.substr(0, 512)) body += (ch < 0x20 || ch == 0x7f) ? ' ' : ch;
  }
  body += "\n";
  write_request_log(status, token);
  send_down("HTTP/1.1 " + std::to_string(status) + " " + phrase +
            "\r\nContent-Type: text/plain\r\nContent-Length: " + std::to_string(body.size()) +
            "\r\nConnection: close\r\n\r\n" + body);
  do_shutdown(down_);
  fail(make_error(code, side, std::string(token) + (detail.empty() ? "" : ": " + detail)));
}

bool Connection::http_in_flight() const {
  return http_->waiting || http_->req_in_progress || http_->responses < http_->requests;
}

namespace {

// Egress: "host[:port]" of an authority, lower-cased; port 0 when absent. False if malformed.
bool split_authority(std::string_view a, std::string& host, uint16_t& port) {
  port = 0;
  if (a.empty()) return false;
  std::string_view h = a;
  std::string_view p;
  if (a.front() == '[') {
    const size_t close = a.find(']');
    if (close == std::string_view::npos) return false;
    h = a.substr(1, close - 1);
    std::string_view rest = a.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return false;
      p = rest.substr(1);
    }
  } else if (const size_t colon = a.rfind(':'); colon != std::string_view::npos) {
    h = a.substr(0, colon);
    p = a.substr(colon + 1);
    if (h.find(':') != std::string_view::npos) return false;
  }
  if (h.empty() || h.size() > 253) return false;
  host.clear();
  for (char c : h) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (!(std::isalnum(u) || c == '-' || c == '.' || c == ':' || c == '_')) return false;
    host.push_back(static_cast<char>(std::tolower(u)));
  }
  if (!p.empty()) {
    unsigned v = 0;
    for (char c : p) {
      if (c < '0' || c > '9' || v > 6553) return false;
      v = v * 10 + static_cast<unsigned>(c - '0');
    }
    if (v == 0 || v > 65535) return false;
    port = static_cast<uint16_t>(v);
  }
  return true;
}

bool host_matches(const std::string& pattern, const std::string& host) {
  if (pattern.rfind("*.", 0) == 0) {
    const std::string suffix = pattern.substr(1);  // ".example.com"
    return host.size() > suffix.size() && host.compare(host.size() - suffix.size(), suffix.size(), suffix) == 0;
  }
  return pattern == host;
}

}  // namespace

bool Connection::http_dispatch(filters::http1::RequestHead& head, std::string_view rest) {
  std::string key;
  if (listener_.cfg->egress) {
    // Egress (issue #13): the destination is the absolute-form authority or Host.
    std::string authority;
    uint16_t default_port = 80;
    if (head.absolute_form) {
      std::string_view t = head.target;
      const size_t scheme_end = t.find("://");
      std::string scheme(t.substr(0, scheme_end));
      for (char& ch : scheme) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      if (scheme == "https") default_port = 443;
      t.remove_prefix(scheme_end + 3);
      const size_t path_at = t.find_first_of("/?");
      authority = std::string(t.substr(0, path_at));
      std::string path = path_at == std::string_view::npos ? "/" : std::string(t.substr(path_at));
      if (path.front() == '?') path = "/" + path;
      head.target = path;  // origin-form for the destination
      head.absolute_form = false;
    } else if (const std::string* h = head.headers.get("Host")) {
      authority = *h;
    }
    std::string host;
    uint16_t port = 0;
    if (!split_authority(authority, host, port)) {
      worker_.stats().add(series("fipsproxy_egress_denied_total", {{"listener", listener_.cfg->name}, {"reason", "bad_authority"}}));
      http_refuse(400, "egress_bad_authority", Code::EgressDenied, Side::Downstream,
                  "no usable host in the request target or Host header");
      return false;
    }
    if (port == 0) port = default_port;
    const config::Egress& eg = *rt_->egress->cfg;
    int match = -1;
    bool host_known = false;
    for (size_t i = 0; i < eg.destinations.size(); ++i) {
      const config::EgressDestination& d = eg.destinations[i];
      if (!host_matches(d.host, host)) continue;
      host_known = true;
      if (std::find(d.ports.begin(), d.ports.end(), port) != d.ports.end()) {
        match = static_cast<int>(i);
        break;
      }
    }
    if (match < 0 || !rt_->egress->tls[static_cast<size_t>(match)]) {
      const std::string why = host_known ? "port_denied" : "destination_denied";
      const std::string detail = host + ":" + std::to_string(port) +
                                 (host_known ? " port is not in the destination's ports"
                                             : " is not an allowed [[egress.destination]]");
      worker_.stats().add(series("fipsproxy_egress_denied_total", {{"listener", listener_.cfg->name}, {"reason", why}}));
      FP_LOG_WARN("egress request denied", {"conn", id_}, {"listener", listener_.cfg->name},
                  {"destination", host + ":" + std::to_string(port)}, {"reason", why});
      if (AuditLog* log = rt_->audit.get()) {
        certs::AuditEvent ev;
        ev.listener = listener_.cfg->name;
        ev.role = "egress";
        ev.peer_address = host + ":" + std::to_string(port);
        ev.sni = host;
        ev.verdict = "rejected";
        ev.reason = "egress_" + why;
        ev.detail = detail;
        log->submit(certs::audit_record(ev));
      }
      http_->exchanges.push_back({head.method, head.target, host + ":" + std::to_string(port), "", uv_now(worker_.loop()), 0, 0, false});
      http_refuse(403, "egress_" + why, Code::EgressDenied, Side::Downstream, detail);
      return false;
    }
    const config::EgressDestination& d = eg.destinations[static_cast<size_t>(match)];
    uint16_t up_port = d.upstream_port != 0 ? d.upstream_port : (port == 80 ? 443 : port);
    // Hop-by-hop headers meant for us as a proxy never travel on.
    head.headers.remove("Proxy-Connection");
    head.headers.remove("Proxy-Authorization");
    http_->egress_index = match;
    http_->egress_host = host;
    http_->egress_port = up_port;
    key = std::to_string(rt_->generation) + "|egress|" + std::to_string(match) + "|" + host + ":" +
          std::to_string(up_port);
    worker_.stats().add(series("fipsproxy_egress_requests_total", {{"destination", d.host}}));
  } else {
    // Cluster: the endpoint is chosen (and the pool consulted) when an upstream is acquired.
    if (http_->cluster_key.empty()) {
      http_->cluster_key = std::to_string(rt_->generation) + "|cluster|" + listener_.cluster->cfg->name;
    }
    key = http_->cluster_key;
  }

  if (http_->log_requests) {
    http_->exchanges.push_back({head.method, head.path(),
                                head.headers.get("Host") ? *head.headers.get("Host") : std::string(),
                                "", uv_now(worker_.loop()), 0, 0, false});
  } else {
    http_->exchanges.push_back({});  // counts and ordering only: no access log to write
  }
  http_->pending_method = head.method;
  http_->client_http10 = head.version_minor == 0;
  http_->pending_head.clear();
  head.serialize_to(http_->pending_head);
  {
    const std::string& m = head.method;
    const bool idempotent = m == "GET" || m == "HEAD" || m == "OPTIONS" || m == "TRACE" || m == "DELETE" ||
                            m == "PUT";
    const bool bodyless = head.framing == filters::http1::Framing::None ||
                          (head.framing == filters::http1::Framing::ContentLength && head.content_length == 0);
    http_->pending_retryable = idempotent && bodyless;
  }
  http_->req_in_progress = true;
  http_->target_key = key;

  const bool bound = up_->inited && !http_->up_key.empty();
  const bool same = bound && http_->up_key.rfind(key, 0) == 0;
  if (bound && same && !http_->release_pending) {
    http_send_pending(false);  // pipelined (or keep-alive) on the same upstream
    return !closing_;
  }
  // Park the request (and whatever followed it) until an upstream is ready.
  http_->waiting = true;
  http_->held.assign(rest.data(), rest.size());
  if (bound && !http_->release_pending && http_->responses < http_->requests) {
    stop_reading(down_);
    return false;  // another destination's response is in flight: wait for it (http_settle)
  }
  if (bound) release_upstream(!http_->up_stray && http_->release_pending);
  http_->release_pending = false;
  connect_for_request();
  // A pooled upstream was bound at once (and the request sent): the client was never paused.
  // Otherwise its reads stop until the upstream is ready (each pause and resume costs libuv
  // two epoll_ctl calls, so only a real wait pays them).
  if (http_->waiting && !closing_) stop_reading(down_);
  return false;
}

void Connection::http_send_pending(bool replay) {
  if (closing_) return;
  http_->waiting = false;
  http_->resp->expect_response(http_->pending_method);
  ++http_->requests;
  ++up_->requests;
  if (!http_->exchanges.empty()) {
    auto& x = http_->exchanges.back();
    x.upstream = upstream_addr_;
    x.reused = up_->requests > 1;
  }
  const bool retry = http_->retrying;
  http_->retrying = false;
  http_->retry_armed = up_->requests > 1 && !retry && http_->pending_retryable &&
                       http_->requests == http_->responses + 1;
  http_->retry_mark = up_->bytes_in;
  forward_raw(down_, http_->pending_head.data(), http_->pending_head.size());
  if (closing_ || !replay || retry) return;
  // The parser continues from the parked head: even with no bytes held it may owe events
  // (a bodyless request's MessageComplete).
  const std::string again = std::move(http_->held);
  http_->held.clear();
  http_from_down(again.data(), again.size());
  if (http_->down_eof_pending && !http_->waiting && !closing_) {
    http_->down_eof_pending = false;
    http_finish_side(down_);
  }
}

void Connection::http_from_down(const char* data, size_t len) {
  using filters::http1::EventKind;
  std::string_view in(data, len);
  while (!closing_) {
    if (http_->deferred) return;  // a refused request: nothing after it is parsed
    if (http_->waiting) {
      http_->held.append(in.data(), in.size());  // parsed once the upstream is ready
      return;
    }
    if (http_->awaiting_head && http_->head_started_ms == 0 && !in.empty() &&
        !http_->close_after_response) {
      // A request head begins: bound it by request_header_timeout (the timer may be armed
      // for the much longer idle_timeout).
      http_->head_started_ms = uv_now(worker_.loop());
      const uint64_t limit = static_cast<uint64_t>(listener_.cfg->request_header_timeout.count());
      if (timer_inited_ && uv_timer_get_due_in(&timer_) > limit) arm_timer(limit);
    }
    filters::http1::Event ev = http_->req.next(in);
    switch (ev.kind) {
      case EventKind::NeedMore:
        return;
      case EventKind::Head: {
        http_->awaiting_head = false;
        http_->head_started_ms = 0;
        filters::http1::RequestHead& head = http_->req.request();
        filters::http1::ConnContext ctx{listener_.cfg->name, http_->remote_ip, down_.tls != nullptr,
                                        down_tls_done_ && down_info_.peer.present ? &down_info_.peer : nullptr,
                                        down_tls_done_ ? std::string_view(down_info_.sni) : std::string_view()};
        filters::http1::HeadVerdict v = filters::http1::run_on_request_head(http_->chain, head, ctx);
        if (v.respond) {
          const bool denied = v.status == 403;  // identity_authz
          if (denied) {
            worker_.stats().add(series("fipsproxy_http1_authz_denied_total",
                                       {{"listener", listener_.cfg->name}, {"reason", v.reason}}));
          }
          http_->exchanges.push_back({head.method, head.path(),
                                      head.headers.get("Host") ? *head.headers.get("Host") : std::string(),
                                      "", uv_now(worker_.loop()), 0, 0, false});
          http_refuse(v.status, v.reason, denied ? Code::PeerIdentityDenied : Code::Http1BadRequest,
                      Side::Downstream, v.detail);
          return;
        }
        in.remove_prefix(ev.consumed);
        if (!http_dispatch(head, in)) return;
        continue;
      }
      case EventKind::Body:
        if (ev.length) {
          if (!http_->exchanges.empty()) http_->exchanges.back().req_bytes += ev.length;
          forward_raw(down_, in.data() + ev.offset, ev.length);
        } else if (ev.consumed == 0) {
          return;  // no progress without more bytes
        }
        break;
      case EventKind::MessageComplete:
        if (!ev.tail.empty()) forward_raw(down_, ev.tail.data(), ev.tail.size());
        if (!ev.keep_alive) http_->close_after_response = true;
        http_->awaiting_head = true;
        http_->req_in_progress = false;
        break;
      case EventKind::Discard:
        // Bytes after a request that closes the connection: never forwarded. With nothing
        // left to discard the parser has nothing more to say.
        if (ev.consumed == 0) return;
        break;
      case EventKind::Error: {
        const filters::http1::ParseError& e = http_->req.error();
        if (e.after_head) {
          // Part of this request reached the upstream: that connection cannot be reused.
          worker_.stats().add(series("fipsproxy_http1_rejections_total",
                                     {{"listener", listener_.cfg->name}, {"reason", e.token()}}));
          write_request_log(0, e.token());
          http_->refusing = true;
          fail(make_error(Code::Http1BadRequest, Side::Downstream, std::string(e.token()) + ": " + e.detail));
        } else {
          http_->exchanges.push_back({"", "", "", "", uv_now(worker_.loop()), 0, 0, false});
          http_refuse(e.status, e.token(), Code::Http1BadRequest, Side::Downstream, e.detail);
        }
        return;
      }
    }
    in.remove_prefix(ev.consumed);
  }
}

void Connection::http_from_up(const char* data, size_t len) {
  using filters::http1::EventKind;
  std::string_view in(data, len);
  while (!closing_) {
    if (http_->release_pending || http_->responses >= http_->requests) {
      // No request outstanding on this upstream: whatever it sends is stray. It is never
      // forwarded, and the connection is never reused.
      if (!in.empty()) http_->up_stray = true;
      if (!http_->release_pending && !in.empty()) {
        worker_.stats().add(series("fipsproxy_upstream_pool_closed_total",
                                   {{"upstream", upstream_label()}, {"reason", "stray_bytes"}}));
        http_->release_pending = true;
      }
      return;
    }
    filters::http1::Event ev = http_->resp->next(in);
    switch (ev.kind) {
      case EventKind::NeedMore:
        return;
      case EventKind::Head: {
        filters::http1::ResponseHead& head = http_->resp->response();
        filters::http1::ConnContext ctx{listener_.cfg->name, http_->remote_ip, down_.tls != nullptr, nullptr};
        filters::http1::run_on_response_head(http_->chain, head, ctx);
        if (!head.informational) {
          // Passive outlier detection counts 5xx answers like connect failures.
          if (listener_.cluster != nullptr && up_index_ >= 0) {
            worker_.endpoint_result(*listener_.cluster, up_index_, head.status < 500);
          }
          http_->response_head_sent = true;
          if (!http_->exchanges.empty()) http_->exchanges.front().resp_bytes = 0;
          // The client's connection stays open unless it asked to close, or this response is
          // delimited by the upstream's close (then the client needs the close too).
          const bool close_client = http_->close_after_response || down_.read_eof ||
                                    head.framing == filters::http1::Framing::CloseDelimited;
          if (close_client) {
            head.headers.set("Connection", "close");
          } else if (http_->client_http10) {
            head.headers.set("Connection", "keep-alive");  // an HTTP/1.0 client asked to persist
          } else if (!head.keep_alive) {
            head.headers.remove("Connection");  // the upstream closes; the client may stay
          }
          http_->resp_status = head.status;
        }
        http_->head.clear();
        head.serialize_to(http_->head);
        forward_raw(*up_, http_->head.data(), http_->head.size());
        break;
      }
      case EventKind::Body:
        if (ev.length) {
          if (!http_->exchanges.empty()) http_->exchanges.front().resp_bytes += ev.length;
          forward_raw(*up_, in.data() + ev.offset, ev.length);
        }
        break;
      case EventKind::MessageComplete: {
        if (!ev.tail.empty()) forward_raw(*up_, ev.tail.data(), ev.tail.size());
        // A 1xx (100 Continue) is not the answer: the final response follows on this exchange.
        if (http_->resp->response().informational) break;
        ++http_->responses;
        http_->response_head_sent = false;
        write_request_log(http_->resp_status, "");
        in.remove_prefix(ev.consumed);
        const bool reusable = http_->resp->reusable();
        const bool done = http_->responses >= http_->requests && !http_->req_in_progress;
        if (http_->deferred && http_->responses >= http_->requests) {
          // Every earlier request is answered: now the refused one.
          if (reusable && done && in.empty()) release_upstream(true);
          const Http::Refusal r = *http_->deferred;
          http_->deferred.reset();
          http_refuse(r.status, r.token, r.code, Side::Downstream, r.detail);
          return;
        }
        const bool last = (http_->close_after_response || down_.read_eof) && http_->responses >= http_->requests;
        if (last || (!reusable && !done)) {
          // The exchange ends here: close the client once the response is written. The upstream
          // is parked if it is clean and idle.
          if (reusable && done && in.empty()) release_upstream(true);
          do_shutdown(down_);
          fail(make_error(Code::Completed, Side::Internal, ""));
          return;
        }
        if (done) {
          http_->release_pending = true;  // park or drop it in http_settle(), once this read ends
          if (!reusable || !in.empty()) http_->up_stray = true;
          if (!in.empty() && reusable) {
            worker_.stats().add(series("fipsproxy_upstream_pool_closed_total",
                                       {{"upstream", upstream_label()}, {"reason", "stray_bytes"}}));
          }
          return;
        }
        continue;  // a pipelined request's response follows
      }
      case EventKind::Discard:
        if (ev.consumed == 0) return;
        break;
      case EventKind::Error: {
        const filters::http1::ParseError& e = http_->resp->error();
        if (!http_->response_head_sent) {
          http_refuse(502, e.token(), Code::Http1BadResponse, Side::Upstream, e.detail);
        } else {
          write_request_log(http_->resp_status, e.token());
          http_->refusing = true;
          fail(make_error(Code::Http1BadResponse, Side::Upstream, std::string(e.token()) + ": " + e.detail));
        }
        return;
      }
    }
    in.remove_prefix(ev.consumed);
  }
}

void Connection::http_settle() {
  if (!http_ || closing_ || !http_->release_pending) return;
  http_->release_pending = false;
  const bool reuse = !http_->up_stray;
  http_->up_stray = false;
  release_upstream(reuse);
  if (closing_) return;
  if (http_->waiting) {
    // A request for another destination waited behind that response.
    connect_for_request();
    return;
  }
  if (down_.read_eof && !http_in_flight()) {
    do_shutdown(down_);
    fail(make_error(Code::Completed, Side::Internal, ""));
  }
}

void Connection::http_finish_side(Endpoint& from) {
  if (from.is_down && http_->waiting) {
    // The rest of the request (and this EOF) sits in `held` until an upstream is ready: the
    // parser concludes after the replay (http_send_pending).
    http_->down_eof_pending = true;
    return;
  }
  if (from.is_down && http_->deferred) {
    // A refused pipelined request waits for the responses owed before it (http_from_up sends
    // its status, then closes): the client's EOF behind it changes nothing. Finishing the
    // parser here would turn that refusal into an immediate close that drops those responses.
    return;
  }
  if (from.is_down) {
    filters::http1::Event ev = http_->req.finish();
    if (ev.kind == filters::http1::EventKind::Error) {
      const filters::http1::ParseError& e = http_->req.error();
      http_->refusing = true;
      fail(make_error(Code::Http1BadRequest, Side::Downstream, std::string(e.token()) + ": " + e.detail));
      return;
    }
    // The client finished sending. Responses still owed are delivered, then the client closes;
    // the upstream connection is not shut down (it may be reused).
    if (!http_in_flight()) {
      if (up_->inited && http_->release_pending) http_settle();
      if (closing_) return;
      release_upstream(false);
      do_shutdown(down_);
      fail(make_error(Code::Completed, Side::Internal, ""));
    }
    return;
  }
  if (!http_in_flight() || http_->release_pending) {
    // An idle upstream closed: fine, the next request gets another one.
    http_->release_pending = false;
    release_upstream(false);
    if (down_.read_eof && !closing_) {
      do_shutdown(down_);
      fail(make_error(Code::Completed, Side::Internal, ""));
    }
    return;
  }
  filters::http1::Event ev = http_->resp->finish();
  if (ev.kind == filters::http1::EventKind::MessageComplete) {
    // A close-delimited body ended: the client's connection ends with it.
    if (!ev.tail.empty()) forward_raw(*up_, ev.tail.data(), ev.tail.size());
    ++http_->responses;
    write_request_log(http_->resp_status, "");
    do_shutdown(down_);
    fail(make_error(Code::Completed, Side::Internal, ""));
  } else if (ev.kind == filters::http1::EventKind::Error) {
    // The upstream closed inside its response (an EOF where the framing says more follows).
    // Before the head: like a reset, the client gets 502. After it: a truncated response, the
    // client connection is closed without completing the body (no terminating chunk, no faked
    // length).
    const filters::http1::ParseError& e = http_->resp->error();
    if (!http_->response_head_sent && http_retry_fresh("closed (EOF)")) return;
    if (!http_->response_head_sent) {
      http_refuse(502, "upstream_reset", Code::UpstreamReset, Side::Upstream,
                  std::string("the upstream closed before its response was complete: ") + std::string(e.token()));
    } else {
      write_request_log(http_->resp_status, e.token());
      http_->refusing = true;
      fail(make_error(Code::Http1BadResponse, Side::Upstream, std::string(e.token()) + ": " + e.detail));
    }
  } else {
    // The upstream closed before its response began.
    if (http_retry_fresh("closed (EOF)")) return;
    http_refuse(502, "upstream_reset", Code::UpstreamReset, Side::Upstream,
                "the upstream closed the connection before answering");
  }
}

bool Connection::http_retry_fresh(std::string_view why) {
  if (!http_ || !http_->retry_armed || closing_ || http_->response_head_sent || http_->deferred ||
      http_->waiting || up_->bytes_in != http_->retry_mark || up_->queued != 0 ||
      http_->requests != http_->responses + 1) {
    return false;
  }
  http_->retry_armed = false;
  worker_.stats().add(series("fipsproxy_upstream_retries_total", {{"upstream", upstream_label()}, {"reason", "reused_connection_closed"}}));
  FP_LOG_INFO("a reused upstream connection closed before answering: sending the request again on a new one",
              {"conn", id_}, {"upstream", upstream_addr_}, {"detail", why});
  --http_->requests;  // counted again when it is sent
  http_->release_pending = false;
  release_upstream(false);
  if (closing_) return true;
  http_->waiting = true;
  http_->retrying = true;
  http_->fresh_only = true;
  stop_reading(down_);
  connect_for_request();
  return true;
}

std::string Connection::upstream_label() const {
  if (http_ && http_->egress_index >= 0) return "egress:" + http_->egress_host;
  return listener_.cluster != nullptr ? listener_.cluster->cfg->name : std::string("-");
}

void Connection::release_upstream(bool reuse) {
  if (!up_->inited) {
    http_->up_key.clear();
    return;
  }
  if (up_index_ >= 0 && listener_.cluster != nullptr) {
    worker_.release_endpoint(*listener_.cluster, up_index_);
  }
  std::unique_ptr<Endpoint> old = std::move(up_);
  up_ = std::make_unique<Endpoint>();
  old->info = up_info_;
  old->tls_done = up_tls_done_;
  old->endpoint_index = up_index_;
  old->addr = upstream_addr_;
  up_index_ = -1;
  up_connected_ = false;
  up_tls_done_ = false;
  up_audited_ = false;
  const std::string key = std::move(http_->up_key);
  http_->up_key.clear();
  // A parser between messages is as good as a new one for the next upstream (and keeps its
  // buffers); one left mid-message or failed is replaced.
  if (!http_->resp->idle()) http_->resp = std::make_unique<filters::http1::ResponseParser>();
  http_->response_head_sent = false;
  if (!reuse || old->queued != 0 || old->shutdown_started) {
    if (old->queued != 0) {
      // Writes still reference this connection: close it with the connection instead.
      up_ = std::move(old);
      http_->up_key = key;
      fail(make_error(Code::Completed, Side::Internal, ""));
      return;
    }
    UpstreamPool::close_socket(std::move(old));
    return;
  }
  size_t max_idle = 0;
  uint64_t idle_ms = 0;
  if (http_->egress_index >= 0) {
    max_idle = rt_->egress->cfg->max_idle_per_destination;
    idle_ms = static_cast<uint64_t>(rt_->egress->cfg->idle_connection_timeout.count());
  } else if (listener_.cluster != nullptr) {
    max_idle = listener_.cluster->cfg->max_idle_connections;
    idle_ms = static_cast<uint64_t>(listener_.cluster->cfg->idle_connection_timeout.count());
  }
  worker_.pool().put(key, upstream_label(), std::move(old), max_idle, idle_ms);
}

// A parked request needs an upstream: its egress destination, or a pick from the cluster (the
// load balancer starts over: every endpoint may be tried again).
void Connection::connect_for_request() {
  state_ = State::Connecting;
  if (listener_.cfg->egress) {
    connect_egress();
  } else {
    lb_started_ = false;
    connect_upstream();
  }
}

std::unique_ptr<Connection::Endpoint> Connection::take_pooled() {
  if (http_->fresh_only) {  // a retry: the pooled connections may be as stale as the one that failed
    http_->fresh_only = false;
    return nullptr;
  }
  return worker_.pool().take(http_->up_key, this, on_alloc, on_read);
}

void Connection::bind_pooled(std::unique_ptr<Endpoint> ep) {
  up_ = std::move(ep);  // already reading, into this connection (UpstreamPool::take)
  up_->bytes_in = up_->bytes_out = 0;
  up_info_ = up_->info;
  up_tls_done_ = up_->tls_done;
  up_audited_ = true;  // its handshake was audited when it was made
  up_connected_ = true;
  upstream_addr_ = up_->addr;
  ++http_->upstream_reuses;
  std::string label = upstream_label();
  if (label != http_->reuse_series_label) {  // per connection: one series string per upstream
    http_->reuse_series = series("fipsproxy_upstream_pool_reuses_total", {{"upstream", label}});
    http_->reuse_series_label = std::move(label);
  }
  worker_.stats().add(http_->reuse_series);
  established();
}

void Connection::write_request_log(int status, std::string_view reason) {
  if (!http_) return;
  // A refusal before any head was read (a 408, a malformed request line) still gets its line.
  Http::Exchange x;
  x.start_ms = uv_now(worker_.loop());
  if (!http_->exchanges.empty()) {
    x = std::move(http_->exchanges.front());
    http_->exchanges.pop_front();
  }
  const size_t cls = status >= 100 && status < 600 ? static_cast<size_t>(status / 100) : 0;
  std::string& key = http_->status_series[cls];
  if (key.empty()) {
    key = series("fipsproxy_http1_requests_total",
                 {{"listener", listener_.cfg->name},
                  {"code", cls == 0 ? std::string("none") : std::to_string(cls) + "xx"}});
  }
  worker_.stats().add(key);
  AccessLog* log = rt_->access_log.get();
  if (log == nullptr || !log->enabled()) return;
  const std::string ts = utc_timestamp();
  std::string line = "{\"kind\":\"request\",\"ts\":\"";
  line += ts;
  line += "\",\"listener\":";
  filters::http1::append_log_field(line, listener_.cfg->name);
  line += ",\"conn\":" + std::to_string(id_);
  line += ",\"method\":";
  filters::http1::append_log_field(line, x.method, 64);
  line += ",\"path\":";
  filters::http1::append_log_field(line, x.path);
  line += ",\"authority\":";
  filters::http1::append_log_field(line, x.authority, 256);
  line += ",\"status\":" + std::to_string(status);
  line += ",\"reason\":";
  filters::http1::append_log_field(line, reason, 128);
  line += ",\"req_body_bytes\":" + std::to_string(x.req_bytes);
  line += ",\"resp_body_bytes\":" + std::to_string(x.resp_bytes);
  line += ",\"duration_ms\":" + std::to_string(uv_now(worker_.loop()) - x.start_ms);
  line += ",\"upstream\":";
  filters::http1::append_log_field(line, x.upstream, 256);
  line += std::string(",\"upstream_reused\":") + (x.reused ? "true" : "false");
  line += ",\"peer\":";
  filters::http1::append_log_field(line, peer_addr_, 256);
  line += ",\"tls_version\":";
  filters::http1::append_log_field(line, down_tls_done_ ? down_info_.version : "", 32);
  line += ",\"cipher\":";
  filters::http1::append_log_field(line, down_tls_done_ ? down_info_.cipher : "", 64);
  line += ",\"peer_spiffe\":";
  filters::http1::append_log_field(line, down_info_.peer.spiffe_id);
  line += ",\"peer_dns\":";
  filters::http1::append_log_field(line, down_info_.peer.dns.empty() ? "" : down_info_.peer.dns.front());
  line += ",\"up_tls_version\":";
  filters::http1::append_log_field(line, up_tls_done_ ? up_info_.version : "", 32);
  line += ",\"up_cipher\":";
  filters::http1::append_log_field(line, up_tls_done_ ? up_info_.cipher : "", 64);
  line += ",\"up_peer_spiffe\":";
  filters::http1::append_log_field(line, up_info_.peer.spiffe_id);
  line += "}";
  log->write_line(line);
}

void Connection::forward_raw(Endpoint& from, const char* data, size_t len) {
  Endpoint& to = other(from);
  from.bytes_in += len;
  to.bytes_out += len;
  if (to.tls && to.corked) {
    // Pieces that fit one record together (a rebuilt head and a small body) are sealed as one
    // record at the uncork; a larger piece is sealed as it comes (no copy), after what waits.
    std::string& held = worker_.cork_buffer();
    if (held.size() + len <= kCorkRecord) {
      held.append(data, len);
      worker_.stats().writes().coalesced_bytes += len;
    } else {
      if (!seal_corked(to)) return;
      if (!to.tls->write(data, len)) {
        fail(to.tls->failure(side_of(to)));
        return;
      }
    }
  } else if (to.tls) {
    if (!to.tls->write(data, len)) {
      fail(to.tls->failure(side_of(to)));
      return;
    }
    flush(to);
  } else {
    write_copy(to, data, len);
  }
  if (!closing_ && to.queued >= rt_->cfg.limits.high_watermark) {
    stop_reading(from);
    from.paused = true;
  }
}

// --- writing ------------------------------------------------------------------------------

bool Connection::seal_corked(Endpoint& ep) {
  std::string& held = worker_.cork_buffer();
  if (!ep.corked || held.empty()) return true;
  bool ok = closing_ || ep.tls->write(held.data(), held.size());
  held.clear();  // always: the buffer is the worker's, the next cork is another connection's
  if (!ok) fail(ep.tls->failure(side_of(ep)));
  return ok;
}

void Connection::uncork(Endpoint& ep) {
  if (!ep.corked) return;
  const bool ok = seal_corked(ep);
  ep.corked = false;
  if (ok && !closing_) flush(ep);
}

void Connection::flush(Endpoint& ep) {
  if (!ep.tls || ep.tls->pending_output() == 0) return;
  std::unique_ptr<char[]> out;
  const size_t n = ep.tls->take_output(out);
  write_raw(ep, std::move(out), n);
}

// Writes go out synchronously when the socket takes them (uv_try_write: no request, no copy,
// no deferred callback and no epoll_ctl to drop POLLOUT afterwards); only what the kernel did
// not take is queued with uv_write. Returns how many bytes of `data` went out now.
size_t Connection::try_write_now(Endpoint& ep, const char* data, size_t len) {
  if (ep.queued != 0) return 0;  // keep order behind what is already queued
  uv_buf_t buf = uv_buf_init(const_cast<char*>(data), static_cast<unsigned>(len));
  const int n = uv_try_write(&ep.h.stream, &buf, 1);
  if (n <= 0) return 0;  // EAGAIN, still connecting, or an error uv_write will report
  ++worker_.stats().writes().direct_writes;
  if (static_cast<size_t>(n) == len) {
    if (closing_) {
      after_write(ep);  // the queue is empty: a closing connection may finish now
    } else {
      touch();
    }
  }
  return static_cast<size_t>(n);
}

void Connection::write_copy(Endpoint& ep, const char* data, size_t len) {
  if (len == 0 || !ep.inited) return;
  const size_t done = try_write_now(ep, data, len);
  if (done == len) return;
  // Only the part the socket did not take is copied (fipsproxy_write_copied_bytes_total counts them).
  std::unique_ptr<char[]> copy(new char[len - done]);
  std::memcpy(copy.get(), data + done, len - done);
  worker_.stats().writes().copied_bytes += len - done;
  queue_write(ep, std::move(copy), 0, len - done);
}

void Connection::write_raw(Endpoint& ep, std::unique_ptr<char[]> data, size_t len) {
  if (len == 0 || !ep.inited) return;
  const size_t done = try_write_now(ep, data.get(), len);
  if (done == len) return;
  queue_write(ep, std::move(data), done, len - done);
}

void Connection::queue_write(Endpoint& ep, std::unique_ptr<char[]> data, size_t offset, size_t len) {
  auto* req = new WriteReq{{}, this, &ep, std::move(data), len};
  req->req.data = req;
  uv_buf_t buf = uv_buf_init(req->data.get() + offset, static_cast<unsigned>(len));
  ep.queued += len;
  ++worker_.stats().writes().queued_writes;
  int rc = uv_write(&req->req, &ep.h.stream, &buf, 1, on_write);
  if (rc != 0) {
    ep.queued -= len;
    delete req;
    fail(make_error(ep.is_down ? Code::DownstreamReset : Code::UpstreamReset, side_of(ep),
                    std::string("write: ") + uv_err_name(rc)));
  }
}

void Connection::on_write(uv_write_t* req, int status) noexcept {
  auto* w = static_cast<WriteReq*>(req->data);
  Connection* self = w->conn;
  Endpoint& ep = *w->ep;
  ep.queued -= w->len;
  delete w;
  if (status != 0 && status != UV_ECANCELED && !self->closing_) {
    self->fail(make_error(ep.is_down ? Code::DownstreamReset : Code::UpstreamReset,
                          self->side_of(ep), std::string("write: ") + uv_err_name(status)));
  }
  self->after_write(ep);
}

void Connection::after_write(Endpoint& ep) {
  if (closing_) {
    if (!finished_ && down_.queued == 0 && up_->queued == 0) finish_close();
    return;
  }
  touch();
  Endpoint& src = other(ep);
  if (src.paused && ep.queued <= rt_->cfg.limits.low_watermark) {
    src.paused = false;
    if (src.tls) {
      pump(src);
    } else {
      start_reading(src);
    }
  }
}

// --- half-close ---------------------------------------------------------------------------

void Connection::source_finished(Endpoint& from) {
  from.read_eof = true;
  if (http_) {
    http_finish_side(from);  // http1 decides itself when each side ends
    return;
  }
  do_shutdown(other(from));
  check_done();
}

void Connection::do_shutdown(Endpoint& ep) {
  if (ep.shutdown_started || !ep.inited || closing_) return;
  ep.shutdown_started = true;
  if (ep.tls) {
    if (!seal_corked(ep)) return;  // close_notify goes after the data
    ep.tls->shutdown();
    flush(ep);
  }
  ep.shutdown_req.data = this;
  // uv_shutdown runs after every queued write, so the peer gets all data, then close_notify,
  // then FIN.
  int rc = uv_shutdown(&ep.shutdown_req, &ep.h.stream, on_shutdown);
  if (rc != 0) {
    ep.shutdown_done = true;  // the peer is gone; nothing more to send
    check_done();
  }
}

void Connection::on_shutdown(uv_shutdown_t* req, int status) noexcept {
  auto* self = static_cast<Connection*>(req->data);
  Endpoint& ep = (req == &self->down_.shutdown_req) ? self->down_ : *self->up_;
  ep.shutdown_done = true;
  (void)status;
  if (!self->closing_) self->check_done();
}

void Connection::check_done() {
  if (closing_) return;
  if (down_.read_eof && up_->read_eof && down_.shutdown_done && up_->shutdown_done) {
    fail(make_error(Code::Completed, Side::Internal, ""));
  }
}

// --- TLS handshakes -----------------------------------------------------------------------

void Connection::drive_handshake(Endpoint& ep) {
  TlsTransport::Step step = ep.tls->handshake();
  flush(ep);
  if (step == TlsTransport::Step::WantRead) return;
  if (step == TlsTransport::Step::Failed) {
    Error e = ep.tls->failure(side_of(ep));
    audit_handshake(ep, &e);
    fail(std::move(e));
    return;
  }
  // Second gate behind the library: what was negotiated is re-checked against the table.
  Result<void> gate = ep.tls->check_negotiated();
  if (!gate) {
    Error e = gate.error();
    e.side = side_of(ep);
    FP_LOG_ERROR("post-handshake policy gate refused a negotiated parameter", {"conn", id_},
                 {"listener", listener_.cfg->name}, {"side", base::side_name(e.side)},
                 {"detail", e.detail});
    audit_handshake(ep, &e);
    fail(std::move(e));
    return;
  }
  audit_handshake(ep, nullptr);
  if (ep.is_down) {
    down_info_ = ep.tls->info();
    down_tls_done_ = true;
    worker_.stats().add(series("fipsproxy_tls_handshakes_total",
                               {{"listener", listener_.cfg->name},
                                {"role", "server"},
                                {"version", down_info_.version},
                                {"cipher", down_info_.cipher},
                                {"group", down_info_.group},
                                {"sigalg", down_info_.sigalg}}));
    if (http_) {
      established();  // http1: the upstream is chosen per request, from its head
      return;
    }
    // Nothing is read from the client until the upstream is ready; the kernel buffers it.
    stop_reading(down_);
    state_ = State::Connecting;
    connect_upstream();
  } else {
    up_info_ = ep.tls->info();
    up_tls_done_ = true;
    worker_.stats().add(series("fipsproxy_tls_handshakes_total",
                               {{"cluster", upstream_label()},
                                {"role", "client"},
                                {"version", up_info_.version},
                                {"cipher", up_info_.cipher},
                                {"group", up_info_.group},
                                {"sigalg", up_info_.sigalg}}));
    established();
  }
}

// --- upstream -----------------------------------------------------------------------------

void Connection::connect_upstream() {
  const ClusterRuntime& cluster = *listener_.cluster;
  if (cluster.cfg->type == config::ClusterType::OriginalDst) {
    // Transparent capture: the one destination is where the client was going (no LB, no retry).
    uv_os_fd_t fd = -1;
    if (uv_fileno(&down_.h.handle, &fd) != 0) return fail(make_error(Code::Internal, Side::Downstream, "uv_fileno"));
    Result<OriginalDst> dst = original_dst_target(fd, cluster.cfg->port);
    if (!dst) return fail(std::move(dst).error());
    original_dst_ = std::make_unique<OriginalDst>(std::move(*dst));
    upstream_ep_ = &original_dst_->address;
    upstream_addr_ = original_dst_->address.text;
    if (http_) {
      http_->up_key = http_->target_key + "|" + upstream_addr_;
      if (auto pooled = take_pooled()) return bind_pooled(std::move(pooled));
    }
    arm_timer(static_cast<uint64_t>(cluster.cfg->connect_timeout.count()));
    connect_req_.data = this;
    return connect_tcp(reinterpret_cast<const sockaddr*>(&original_dst_->sockaddr));
  }
  if (!lb_started_) {
    lb_started_ = true;
    tried_.assign(cluster.cfg->endpoints.size(), false);
    retries_left_ = cluster.cfg->connect_retries;
  }
  up_index_ = worker_.pick_endpoint(cluster, tried_);
  if (up_index_ < 0) {
    worker_.stats().add(series("fipsproxy_upstream_no_healthy_total", {{"cluster", cluster.cfg->name}}));
    const std::string detail = "cluster " + cluster.cfg->name + ": no healthy endpoint left to try";
    if (http_) {
      // HTTP clients get an answer they can act on (retry elsewhere) instead of a reset.
      http_refuse(503, "no_healthy_upstream", Code::NoHealthyUpstream, Side::Upstream, detail);
    } else {
      fail(make_error(Code::NoHealthyUpstream, Side::Upstream, detail));
    }
    return;
  }
  tried_[static_cast<size_t>(up_index_)] = true;
  const config::Address& addr = cluster.cfg->endpoints[static_cast<size_t>(up_index_)];
  upstream_ep_ = &addr;
  upstream_addr_ = addr.text;
  if (http_) {
    // Keep-alive pool: an idle connection to this endpoint, made under this generation.
    http_->up_key = http_->target_key + "|" + std::to_string(up_index_);
    if (auto pooled = take_pooled()) {
      bind_pooled(std::move(pooled));
      return;
    }
  }
  arm_timer(static_cast<uint64_t>(cluster.cfg->connect_timeout.count()));
  connect_req_.data = this;
  if (addr.is_unix()) {
    up_->h = {};
    if (uv_pipe_init(worker_.loop(), &up_->h.pipe, 0) != 0) {
      fail(make_error(Code::Internal, Side::Upstream, "uv_pipe_init failed"));
      return;
    }
    up_->inited = true;
    up_->h.handle.data = this;
    uv_pipe_connect(&connect_req_, &up_->h.pipe, addr.path.c_str(), on_connect);
    return;
  }
  struct sockaddr_storage ss;
  std::memset(&ss, 0, sizeof ss);
  if (uv_ip4_addr(addr.host.c_str(), addr.port, reinterpret_cast<sockaddr_in*>(&ss)) == 0 ||
      uv_ip6_addr(addr.host.c_str(), addr.port, reinterpret_cast<sockaddr_in6*>(&ss)) == 0) {
    connect_tcp(reinterpret_cast<const sockaddr*>(&ss));
    return;
  }
  // A DNS name: resolve off-loop (libuv's threadpool).
  struct addrinfo hints;
  std::memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  resolve_req_.data = this;
  std::string port = std::to_string(addr.port);
  int rc = uv_getaddrinfo(worker_.loop(), &resolve_req_, on_resolved, addr.host.c_str(),
                          port.c_str(), &hints);
  if (rc != 0) {
    fail(make_error(Code::UpstreamConnectFailed, Side::Upstream,
                    "resolve " + addr.host + ": " + uv_err_name(rc)));
    return;
  }
  resolving_ = true;
}

void Connection::connect_egress() {
  const config::Egress& eg = *rt_->egress->cfg;
  upstream_ep_ = nullptr;
  upstream_addr_ = (http_->egress_host.find(':') != std::string::npos ? "[" + http_->egress_host + "]"
                                                                      : http_->egress_host) +
                   ":" + std::to_string(http_->egress_port);
  http_->up_key = http_->target_key;
  if (auto pooled = take_pooled()) {
    bind_pooled(std::move(pooled));
    return;
  }
  arm_timer(static_cast<uint64_t>(eg.connect_timeout.count()));
  connect_req_.data = this;
  struct sockaddr_storage ss;
  std::memset(&ss, 0, sizeof ss);
  const std::string& host = http_->egress_host;
  http_->egress_addrs.clear();
  http_->egress_next = 0;
  if (uv_ip4_addr(host.c_str(), http_->egress_port, reinterpret_cast<sockaddr_in*>(&ss)) == 0 ||
      uv_ip6_addr(host.c_str(), http_->egress_port, reinterpret_cast<sockaddr_in6*>(&ss)) == 0) {
    http_->egress_addrs.push_back(ss);
    connect_egress_next();
    return;
  }
  if (const Worker::DnsEntry* e = worker_.dns_lookup(upstream_addr_)) {
    worker_.stats().add(series("fipsproxy_egress_dns_lookups_total", {{"result", "cache_hit"}}));
    http_->egress_addrs = e->addrs;
    connect_egress_next();
    return;
  }
  worker_.stats().add(series("fipsproxy_egress_dns_lookups_total", {{"result", "resolved"}}));
  struct addrinfo hints;
  std::memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  resolve_req_.data = this;
  const std::string port = std::to_string(http_->egress_port);
  int rc = uv_getaddrinfo(worker_.loop(), &resolve_req_, on_resolved, host.c_str(), port.c_str(), &hints);
  if (rc != 0) {
    http_refuse(502, "egress_resolve_failed", Code::UpstreamConnectFailed, Side::Upstream,
                "resolve " + host + ": " + uv_err_name(rc));
    return;
  }
  resolving_ = true;
}

void Connection::on_resolved(uv_getaddrinfo_t* req, int status, struct addrinfo* res) noexcept {
  auto* self = static_cast<Connection*>(req->data);
  self->resolving_ = false;
  if (self->closing_) {
    uv_freeaddrinfo(res);
    self->handle_closed();  // the resolve was counted as a pending close
    return;
  }
  if (status != 0 || res == nullptr) {
    uv_freeaddrinfo(res);
    if (self->http_) {
      self->http_refuse(502, "upstream_resolve_failed", Code::UpstreamConnectFailed, Side::Upstream,
                        self->upstream_addr_ + ": resolve: " + uv_err_name(status));
      return;
    }
    self->fail(make_error(Code::UpstreamConnectFailed, Side::Upstream,
                          std::string("resolve: ") + uv_err_name(status)));
    return;
  }
  struct sockaddr_storage ss;
  std::memset(&ss, 0, sizeof ss);
  std::memcpy(&ss, res->ai_addr, res->ai_addrlen);
  if (self->http_ && self->http_->egress_index >= 0) {
    // Egress: remember every address for dns_ttl (getaddrinfo reports no TTL of its own).
    std::vector<struct sockaddr_storage> all;
    for (const struct addrinfo* a = res; a != nullptr && all.size() < 16; a = a->ai_next) {
      struct sockaddr_storage one;
      std::memset(&one, 0, sizeof one);
      std::memcpy(&one, a->ai_addr, std::min<size_t>(a->ai_addrlen, sizeof one));
      all.push_back(one);
    }
    self->http_->egress_addrs = all;
    self->http_->egress_next = 0;
    self->worker_.dns_store(self->upstream_addr_, std::move(all),
                            static_cast<uint64_t>(self->rt_->egress->cfg->dns_ttl.count()));
    uv_freeaddrinfo(res);
    self->connect_egress_next();
    return;
  }
  uv_freeaddrinfo(res);
  self->connect_tcp(reinterpret_cast<const sockaddr*>(&ss));
}

void Connection::connect_egress_next() {
  // Each resolved address in turn (a name that resolves to ::1 and 127.0.0.1 with only one of
  // them listening still connects); the connect_timeout covers them all.
  const struct sockaddr_storage a = http_->egress_addrs[http_->egress_next++];
  connect_tcp(reinterpret_cast<const sockaddr*>(&a));
}

void Connection::connect_tcp(const struct sockaddr* addr) {
  up_->h = {};
  if (uv_tcp_init(worker_.loop(), &up_->h.tcp) != 0) {
    fail(make_error(Code::Internal, Side::Upstream, "uv_tcp_init failed"));
    return;
  }
  up_->inited = true;
  up_->h.handle.data = this;
  int rc = uv_tcp_connect(&connect_req_, &up_->h.tcp, addr, on_connect);
  if (rc != 0) {
    connect_failed(make_error(Code::UpstreamConnectFailed, Side::Upstream,
                              upstream_addr_ + ": connect: " + uv_err_name(rc)));
  }
}

void Connection::connect_failed(Error error) {
  if (listener_.cluster == nullptr) {  // egress: one destination, no LB
    if (http_ && !closing_ && error.code != Code::ConnectTimeout &&
        http_->egress_next < http_->egress_addrs.size()) {
      // Another address of the same name: close this handle, then connect again.
      if (up_->inited) {
        up_->inited = false;
        retry_close_pending_ = true;
        uv_close(&up_->h.handle, on_retry_closed);
      } else {
        connect_egress_next();
      }
      return;
    }
    if (http_ && !closing_) {
      const bool timeout = error.code == Code::ConnectTimeout;
      http_refuse(timeout ? 504 : 502, timeout ? "upstream_connect_timeout" : "upstream_connect_failed",
                  error.code, Side::Upstream, error.detail);
      return;
    }
    fail(std::move(error));
    return;
  }
  const ClusterRuntime& cluster = *listener_.cluster;
  worker_.endpoint_result(cluster, up_index_, false);
  const bool more = retries_left_ > 0 &&
                    std::find(tried_.begin(), tried_.end(), false) != tried_.end();
  if (!more || closing_) {
    if (http_ && !closing_) {
      // http1 (RELIABILITY F32): an answer the client can act on instead of a bare close.
      const bool timeout = error.code == Code::ConnectTimeout;
      http_refuse(timeout ? 504 : 502, timeout ? "upstream_connect_timeout" : "upstream_connect_failed",
                  error.code, Side::Upstream, error.detail);
      return;
    }
    fail(std::move(error));
    return;
  }
  --retries_left_;
  worker_.stats().add(series("fipsproxy_upstream_connect_retries_total", {{"cluster", cluster.cfg->name}}));
  FP_LOG_DEBUG("upstream connect failed: retrying on another endpoint", {"conn", id_},
               {"cluster", cluster.cfg->name}, {"detail", error.detail});
  worker_.release_endpoint(cluster, up_index_);
  up_index_ = -1;
  if (up_->inited) {
    // The handle must be closed before it can be initialised again for the next endpoint.
    up_->inited = false;
    retry_close_pending_ = true;
    uv_close(&up_->h.handle, on_retry_closed);
    return;
  }
  connect_upstream();
}

void Connection::on_retry_closed(uv_handle_t* h) noexcept {
  auto* self = static_cast<Connection*>(h->data);
  self->retry_close_pending_ = false;
  if (self->finished_) {
    self->handle_closed();  // counted by finish_close
    return;
  }
  if (self->closing_) return;
  if (self->http_ && self->http_->egress_index >= 0) {
    self->connect_egress_next();
    return;
  }
  self->connect_upstream();
}

void Connection::on_connect(uv_connect_t* req, int status) noexcept {
  auto* self = static_cast<Connection*>(req->data);
  if (self->closing_) return;
  if (status != 0) {
    Code code = status == UV_ECONNREFUSED || status == UV_ENOENT ? Code::UpstreamConnectRefused
                                                                  : Code::UpstreamConnectFailed;
    self->connect_failed(make_error(code, Side::Upstream,
                                    self->upstream_addr_ + ": " + uv_err_name(status)));
    return;
  }
  self->up_connected_ = true;
  // tcp mode: a connect is the whole verdict. http1 mode: the response status decides (a 5xx
  // after a good connect still counts as a failure).
  if (!self->http_) self->worker_.endpoint_result(*self->listener_.cluster, self->up_index_, true);
  self->upstream_connected();
}

void Connection::upstream_connected() {
  std::shared_ptr<const certs::TlsContext> ctx;
  std::string sni;
  if (http_ && http_->egress_index >= 0) {
    // Egress: always TLS, SNI and the verified name = the host the app asked for (or the
    // destination's sni), under the FIPS policy.
    uv_tcp_nodelay(&up_->h.tcp, 1);
    ctx = rt_->egress->tls[static_cast<size_t>(http_->egress_index)];
    const config::EgressDestination& d = rt_->egress->cfg->destinations[static_cast<size_t>(http_->egress_index)];
    sni = d.tls.sni.empty() ? http_->egress_host : d.tls.sni;
  } else {
    if (!upstream_ep_->is_unix()) uv_tcp_nodelay(&up_->h.tcp, 1);
    const ClusterRuntime& cluster = *listener_.cluster;
    ctx = cluster.tls;
    if (ctx) {
      sni = cluster.cfg->tls->sni;
      if (sni.empty() && !upstream_ep_->is_unix() && !is_ip_literal(upstream_ep_->host)) {
        sni = upstream_ep_->host;
      }
    }
  }
  if (!ctx) {
    established();
    return;
  }
  up_->tls = TlsTransport::create(ctx, sni);
  if (!up_->tls) {
    fail(make_error(Code::TlsSetupFailed, Side::Upstream, "SSL_new failed"));
    return;
  }
  start_reading(*up_);
  drive_handshake(*up_);  // sends the ClientHello
}

void Connection::established() {
  state_ = State::Established;
  touch();
  arm_timer(static_cast<uint64_t>(listener_.cfg->idle_timeout.count()));
  FP_LOG_DEBUG("connection established", {"conn", id_}, {"listener", listener_.cfg->name},
               {"upstream", upstream_addr_});
  if (http_) {
    if (!up_->inited) {
      // The client is ready; an upstream is chosen when its first request head arrives.
      start_reading(down_);
      if (down_.tls) pump(down_);  // TLS may hold a request that came with the handshake
      return;
    }
    start_reading(*up_);
    if (http_->waiting) http_send_pending(true);
    if (!closing_ && !http_->waiting && !down_.paused) start_reading(down_);
    return;
  }
  if (listener_.cfg->proxy_protocol == config::ProxyProtocol::V2) {
    // Before any forwarded byte: reading from the client starts below.
    const std::string hdr = proxy_v2_header(&down_.h.handle, listener_.cfg->address,
                                            down_tls_done_ ? &down_info_ : nullptr);
    up_->bytes_out += hdr.size();
    if (up_->tls) {
      if (!up_->tls->write(hdr.data(), hdr.size())) return fail(up_->tls->failure(Side::Upstream));
      flush(*up_);
    } else {
      write_copy(*up_, hdr.data(), hdr.size());
    }
    if (closing_) return;
  }
  start_reading(down_);
  start_reading(*up_);
  // TLS may hold application data that arrived with the handshake.
  if (down_.tls) pump(down_);
  if (!closing_ && up_->tls) pump(*up_);
}

// --- timers -------------------------------------------------------------------------------

void Connection::touch() { last_activity_ms_ = uv_now(worker_.loop()); }

void Connection::arm_timer(uint64_t ms) {
  if (!timer_inited_) return;
  uv_timer_start(&timer_, on_timer_cb, ms, 0);
}

void Connection::on_timer_cb(uv_timer_t* t) noexcept { static_cast<Connection*>(t->data)->on_timer(); }

void Connection::on_timer() {
  if (closing_) {
    finish_close();  // linger expired
    return;
  }
  switch (state_) {
    case State::Handshaking:
      fail(make_error(Code::HandshakeTimeout, Side::Downstream,
                      "no TLS handshake within " +
                          std::to_string(listener_.cfg->handshake_timeout.count()) + "ms"));
      return;
    case State::Connecting: {
      Error e = make_error(Code::ConnectTimeout, Side::Upstream,
                           upstream_addr_ + ": no connection within " +
                               std::to_string(listener_.cluster != nullptr
                                              ? listener_.cluster->cfg->connect_timeout.count()
                                              : rt_->egress->cfg->connect_timeout.count()) + "ms");
      if (!up_connected_ && !resolving_) {
        connect_failed(std::move(e));  // may retry on another endpoint
      } else {
        fail(std::move(e));
      }
      return;
    }
    case State::Established: {
      const uint64_t idle = static_cast<uint64_t>(listener_.cfg->idle_timeout.count());
      const uint64_t now = uv_now(worker_.loop());
      uint64_t head_left = UINT64_MAX;
      if (http_ && http_->head_started_ms != 0) {
        const uint64_t limit = static_cast<uint64_t>(listener_.cfg->request_header_timeout.count());
        const uint64_t in_head = now - http_->head_started_ms;
        // Only answer 408 between exchanges: a pipelined head that waits behind a response in
        // flight, or behind upstream backpressure, is checked again later.
        const bool can_answer = http_->responses >= http_->requests && !down_.paused;
        if (in_head >= limit && can_answer) {
          http_refuse(408, "request_header_timeout", Code::RequestHeaderTimeout, Side::Downstream,
                      "request head incomplete after " + std::to_string(in_head) + "ms");
          return;
        }
        head_left = in_head >= limit ? limit : limit - in_head;
      }
      if (now - last_activity_ms_ >= idle) {
        if (http_ && !http_->response_head_sent && http_->responses < http_->requests) {
          // RELIABILITY F33/B13: a request waits for its answer past idle_timeout. Complete
          // request: the upstream sent no response head (504). Body still arriving: the client
          // stalled (408).
          const bool upstream = http_->awaiting_head;
          http_refuse(upstream ? 504 : 408, upstream ? "upstream_timeout" : "request_body_timeout",
                      Code::IdleTimeout, upstream ? Side::Upstream : Side::Downstream,
                      (upstream ? "no response head for " : "request body stalled for ") +
                          std::to_string(now - last_activity_ms_) + "ms");
          return;
        }
        fail(make_error(Code::IdleTimeout, Side::Internal,
                        "idle for " + std::to_string(now - last_activity_ms_) + "ms"));
      } else {
        arm_timer(std::min(idle - (now - last_activity_ms_), head_left));
      }
      return;
    }
    default:
      return;
  }
}

// --- closing ------------------------------------------------------------------------------

void Connection::audit_handshake(Endpoint& ep, const Error* failure) {
  bool& done = ep.is_down ? down_audited_ : up_audited_;
  if (done) return;
  done = true;
  AuditLog* log = rt_->audit.get();
  if (log == nullptr) return;
  certs::AuditEvent ev;
  ev.listener = ep.is_down ? listener_.cfg->name : upstream_label();
  ev.role = ep.is_down ? "server" : "client";
  ev.peer_address = ep.is_down ? peer_addr_ : upstream_addr_;
  if (ep.tls) {
    const certs::HandshakeInfo info = ep.tls->info();
    ev.sni = info.sni;
    ev.version = failure ? "" : info.version;
    ev.cipher = info.cipher;
    ev.group = info.group;
    ev.sigalg = info.sigalg;
    ev.resumed = info.resumed;
    ev.peer = info.peer;
  }
  ev.verdict = failure ? "rejected" : "approved";
  ev.reason = failure ? std::string(base::token(failure->code)) : "ok";
  if (failure) ev.detail = failure->detail;
  log->submit(certs::audit_record(ev));
}

void Connection::fail(Error error) {
  if (closing_) return;
  uncork(down_);  // what was sealed before the failure still goes out (a truncated body, say)
  if (http_ && !http_->refusing && error.side == Side::Upstream && http_in_flight() &&
      !http_->response_head_sent && (down_tls_done_ || !down_.tls)) {
    // http1: an upstream that failed before answering (TLS policy, identity, reset) gets the
    // client a status and the reason instead of a bare close. The handshake is audited first.
    if (up_->tls && !up_tls_done_) audit_handshake(*up_, &error);
    if (error.code == Code::UpstreamReset && http_retry_fresh(error.detail)) return;
    const int status = error.code == Code::ConnectTimeout ? 504
                       : (error.code == Code::UpstreamConnectRefused || error.code == Code::NoHealthyUpstream) ? 503
                                                                                                                 : 502;
    const std::string token(base::token(error.code));
    http_refuse(status, token, error.code, Side::Upstream, error.detail);
    return;
  }
  // A handshake that ends here unfinished (timeout, reset, drain) is still an attempt.
  if (down_.tls && !down_tls_done_) audit_handshake(down_, &error);
  if (up_->tls && !up_tls_done_) audit_handshake(*up_, &error);
  closing_ = true;
  state_ = State::Closing;
  close_reason_ = std::move(error);
  stop_reading(down_);
  stop_reading(*up_);
  if (down_.queued == 0 && up_->queued == 0) {
    finish_close();
    return;
  }
  arm_timer(kLingerMs);  // let a queued alert or reply go out, bounded
}

void Connection::finish_close() {
  if (finished_) return;
  finished_ = true;
  closing_ = true;
  count_close();
  write_access_log();
  if (counted_) {
    listener_.active->fetch_sub(1, std::memory_order_relaxed);
    counted_ = false;
  }
  if (up_index_ >= 0) {
    worker_.release_endpoint(*listener_.cluster, up_index_);
    up_index_ = -1;
  }
  worker_.connection_finished(this);
  pending_closes_ = 1;  // guard: released at the end of this function
  for (Endpoint* ep : {&down_, up_.get()}) {
    if (ep->inited && !uv_is_closing(&ep->h.handle)) {
      ++pending_closes_;
      uv_close(&ep->h.handle, on_closed);
    }
  }
  if (timer_inited_ && !uv_is_closing(reinterpret_cast<uv_handle_t*>(&timer_))) {
    ++pending_closes_;
    uv_close(reinterpret_cast<uv_handle_t*>(&timer_), on_closed);
  }
  if (retry_close_pending_) ++pending_closes_;  // released by on_retry_closed
  if (resolving_) {
    ++pending_closes_;  // released by on_resolved (called with UV_EAI_CANCELED)
    uv_cancel(reinterpret_cast<uv_req_t*>(&resolve_req_));
  }
  handle_closed();
}

void Connection::on_closed(uv_handle_t* h) noexcept { static_cast<Connection*>(h->data)->handle_closed(); }

void Connection::handle_closed() {
  if (--pending_closes_ == 0) worker_.connection_destroyed(this);
}

namespace {
// Reasons that are the FIPS policy or peer verification saying no.
bool is_policy_reason(Code c) {
  switch (c) {
    case Code::TlsPolicyViolation:
    case Code::TlsNoEms:
    case Code::TlsChacha:
    case Code::TlsProtocolVersion:
    case Code::TlsHandshakeFailed:
    case Code::PeerCertMissing:
    case Code::PeerCertUntrusted:
    case Code::PeerCertExpired:
    case Code::PeerCertRevoked:
    case Code::PeerCertPolicy:
    case Code::PeerIdentityDenied:
      return true;
    default:
      return false;
  }
}
}  // namespace

void Connection::count_close() {
  const Error& r = close_reason_;
  const std::string& name = listener_.cfg->name;
  Stats& st = worker_.stats();
  st.add(series("fipsproxy_connection_closes_total",
                {{"listener", name}, {"reason", base::token(r.code)}, {"side", base::side_name(r.side)}}));
  if (is_policy_reason(r.code)) {
    const bool upstream = r.side == Side::Upstream;
    st.add(series("fipsproxy_tls_policy_rejections_total",
                  {{upstream ? "cluster" : "listener", upstream ? upstream_label() : name},
                   {"role", upstream ? "client" : "server"},
                   {"reason", base::token(r.code)}}));
  }
  if (down_.bytes_in) {
    st.add(series("fipsproxy_bytes_total", {{"listener", name}, {"direction", "from_downstream"}}),
           down_.bytes_in);
  }
  if (down_.bytes_out) {
    st.add(series("fipsproxy_bytes_total", {{"listener", name}, {"direction", "to_downstream"}}),
           down_.bytes_out);
  }
}

void Connection::write_access_log() {
  const Error& r = close_reason_;
  const bool ok = r.code == Code::Completed;
  const double dur = static_cast<double>(uv_now(worker_.loop()) - started_ms_);
  if (ok) {
    FP_LOG_DEBUG("connection closed", {"conn", id_}, {"listener", listener_.cfg->name},
                 {"reason", base::token(r.code)});
  } else {
    FP_LOG_INFO("connection closed", {"conn", id_}, {"listener", listener_.cfg->name},
                {"worker", worker_.id()}, {"reason", base::token(r.code)},
                {"side", base::side_name(r.side)}, {"detail", r.detail});
  }
  AccessLog* log = rt_->access_log.get();
  if (log == nullptr || !log->enabled()) return;
  const std::string ts = utc_timestamp();
  base::JsonObject j;
  j.str("ts", ts)
      .str("listener", listener_.cfg->name)
      .unum("conn", id_)
      .unum("worker", worker_.id())
      .str("peer", peer_addr_)
      .str("upstream", upstream_addr_)
      .str("tls_version", down_tls_done_ ? down_info_.version : "")
      .str("cipher", down_tls_done_ ? down_info_.cipher : "")
      .str("group", down_tls_done_ ? down_info_.group : "")
      .str("sigalg", down_tls_done_ ? down_info_.sigalg : "")
      .str("alpn", down_info_.alpn)
      .str("sni", down_info_.sni)
      .str("peer_spiffe", down_info_.peer.spiffe_id)
      .str_array("peer_dns", down_info_.peer.dns)
      .str("peer_sha256", down_info_.peer.sha256)
      .str("up_tls_version", up_tls_done_ ? up_info_.version : "")
      .str("up_cipher", up_tls_done_ ? up_info_.cipher : "")
      .str("up_group", up_tls_done_ ? up_info_.group : "")
      .str("up_peer_spiffe", up_info_.peer.spiffe_id)
      .str_array("up_peer_dns", up_info_.peer.dns)
      .unum("http_requests", http_ ? http_->requests : 0)
      .unum("upstream_reuses", http_ ? http_->upstream_reuses : 0)
      .unum("bytes_from_downstream", down_.bytes_in)
      .unum("bytes_to_downstream", down_.bytes_out)
      .dbl("duration_ms", dur)
      .str("close_reason", base::token(r.code))
      .str("close_side", base::side_name(r.side))
      .str("detail", r.detail);
  log->write_line(j.done());
}

}  // namespace fp::proxy
