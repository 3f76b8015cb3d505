#include "proxy/connection.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>

#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <ctime>

#include "certs/audit_chain.h"
#include "filters/http1/parser.h"
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

bool is_ip_literal(const std::string& host) {
  unsigned char buf[sizeof(struct in6_addr)];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

}  // namespace

struct Connection::Http {
  explicit Http(const filters::http1::Limits& request_limits) : req(request_limits) {}
  filters::http1::RequestParser req;
  filters::http1::ResponseParser resp;
  filters::http1::Http1Chain chain;
  uint64_t requests = 0;            // request heads forwarded
  uint64_t responses = 0;           // final responses completed
  bool response_head_sent = false;  // of the response in progress
  bool close_after_response = false;
  std::string remote_ip;
  std::string head;                 // serialisation scratch
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
  up_.is_down = false;
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
  Endpoint& ep = (s == &self->down_.h.stream) ? self->down_ : self->up_;
  if (self->closing_) return;
  if (nread > 0) {
    self->on_data(ep, buf->base, static_cast<size_t>(nread));
  } else if (nread == UV_EOF) {
    self->on_eof(ep);
  } else if (nread < 0) {
    const bool down = ep.is_down;
    self->fail(make_error(down ? Code::DownstreamReset : Code::UpstreamReset, self->side_of(ep),
                          std::string("read: ") + uv_err_name(static_cast<int>(nread))));
  }
}

void Connection::on_data(Endpoint& ep, const char* data, size_t len) {
  touch();
  if (ep.tls) {
    ep.tls->feed(data, len);
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
}

void Connection::forward(Endpoint& from, const char* data, size_t len) {
  if (http_) {
    if (from.is_down) {
      http_from_down(data, len);
    } else {
      http_from_up(data, len);
    }
    return;
  }
  forward_raw(from, data, len);
}

void Connection::send_down(const std::string& bytes) {
  down_.bytes_out += bytes.size();
  if (down_.tls) {
    if (!down_.tls->write(bytes.data(), bytes.size())) return;
    flush(down_);
  } else {
    write_copy(down_, bytes.data(), bytes.size());
  }
}

void Connection::http_refuse(int status, std::string_view token, Code code, Side side,
                             std::string detail) {
  if (closing_) return;
  worker_.stats().add(series("fipsproxy_http1_rejections_total",
                             {{"listener", listener_.cfg->name}, {"reason", token}}));
  const char* phrase = status == 400   ? "Bad Request"
                       : status == 413 ? "Payload Too Large"
                       : status == 414 ? "URI Too Long"
                       : status == 417 ? "Expectation Failed"
                       : status == 431 ? "Request Header Fields Too Large"
                       : status == 501 ? "Not Implemented"
                       : status == 502 ? "Bad Gateway"
                       : status == 505 ? "HTTP Version Not Supported"
                       : status == 503 ? "Service Unavailable"
                       : status == 403 ? "Forbidden"
                                       : "Error";
  const std::string body = std::string(token) + "\n";
  send_down("HTTP/1.1 " + std::to_string(status) + " " + phrase +
            "\r\nContent-Type: text/plain\r\nContent-Length: " + std::to_string(body.size()) +
            "\r\nConnection: close\r\n\r\n" + body);
  do_shutdown(down_);
  fail(make_error(code, side, std::string(token) + (detail.empty() ? "" : ": " + detail)));
}

void Connection::http_from_down(const char* data, size_t len) {
  using filters::http1::EventKind;
  std::string_view in(data, len);
  while (!closing_) {
    filters::http1::Event ev = http_->req.next(in);
    switch (ev.kind) {
      case EventKind::NeedMore:
        return;
      case EventKind::Head: {
        filters::http1::RequestHead& head = http_->req.request();
        filters::http1::ConnContext ctx{listener_.cfg->name, http_->remote_ip, down_.tls != nullptr,
                                        down_tls_done_ && down_info_.peer.present ? &down_info_.peer : nullptr};
        filters::http1::HeadVerdict v = filters::http1::run_on_request_head(http_->chain, head, ctx);
        if (v.respond) {
          const bool denied = v.status == 403;  // identity_authz
          if (denied) {
            worker_.stats().add(series("fipsproxy_http1_authz_denied_total",
                                       {{"listener", listener_.cfg->name}, {"reason", v.reason}}));
          }
          http_refuse(v.status, v.reason, denied ? Code::PeerIdentityDenied : Code::Http1BadRequest,
                      Side::Downstream, v.detail);
          return;
        }
        http_->resp.expect_response(head.method);
        ++http_->requests;
        http_->head.clear();
        head.serialize_to(http_->head);
        forward_raw(down_, http_->head.data(), http_->head.size());
        break;
      }
      case EventKind::Body:
        if (ev.length) forward_raw(down_, in.data() + ev.offset, ev.length);
        break;
      case EventKind::MessageComplete:
        if (!ev.tail.empty()) forward_raw(down_, ev.tail.data(), ev.tail.size());
        if (!ev.keep_alive) http_->close_after_response = true;
        break;
      case EventKind::Discard:
        break;  // bytes after a request that closes the connection: never forwarded
      case EventKind::Error: {
        const filters::http1::ParseError& e = http_->req.error();
        if (e.after_head) {
          // Part of this request reached the upstream: that connection cannot be reused.
          worker_.stats().add(series("fipsproxy_http1_rejections_total",
                                     {{"listener", listener_.cfg->name}, {"reason", e.token()}}));
          fail(make_error(Code::Http1BadRequest, Side::Downstream, std::string(e.token()) + ": " + e.detail));
        } else {
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
    filters::http1::Event ev = http_->resp.next(in);
    switch (ev.kind) {
      case EventKind::NeedMore:
        return;
      case EventKind::Head: {
        filters::http1::ResponseHead& head = http_->resp.response();
        filters::http1::ConnContext ctx{listener_.cfg->name, http_->remote_ip, down_.tls != nullptr, nullptr};
        filters::http1::run_on_response_head(http_->chain, head, ctx);
        if (!head.informational) {
          // Passive outlier detection counts 5xx answers like connect failures.
          worker_.endpoint_result(*listener_.cluster, up_index_, head.status < 500);
          http_->response_head_sent = true;
          if (http_->close_after_response || !head.keep_alive) head.headers.set("Connection", "close");
        }
        http_->head.clear();
        head.serialize_to(http_->head);
        forward_raw(up_, http_->head.data(), http_->head.size());
        break;
      }
      case EventKind::Body:
        if (ev.length) forward_raw(up_, in.data() + ev.offset, ev.length);
        break;
      case EventKind::MessageComplete: {
        if (!ev.tail.empty()) forward_raw(up_, ev.tail.data(), ev.tail.size());
        // A 1xx (100 Continue) is not the answer: the final response follows on this exchange.
        if (http_->resp.response().informational) break;
        ++http_->responses;
        http_->response_head_sent = false;
        const bool last = http_->close_after_response && http_->responses >= http_->requests;
        if (last || !http_->resp.reusable()) {
          // The exchange ends here: close both sides once the response is written.
          do_shutdown(down_);
          fail(make_error(Code::Completed, Side::Internal, ""));
          return;
        }
        break;
      }
      case EventKind::Discard:
        break;
      case EventKind::Error: {
        const filters::http1::ParseError& e = http_->resp.error();
        if (!http_->response_head_sent) {
          http_refuse(502, e.token(), Code::Http1BadResponse, Side::Upstream, e.detail);
        } else {
          fail(make_error(Code::Http1BadResponse, Side::Upstream, std::string(e.token()) + ": " + e.detail));
        }
        return;
      }
    }
    in.remove_prefix(ev.consumed);
  }
}

void Connection::http_finish_side(Endpoint& from) {
  std::string none;
  if (from.is_down) {
    filters::http1::Event ev = http_->req.finish();
    if (ev.kind == filters::http1::EventKind::Error) {
      const filters::http1::ParseError& e = http_->req.error();
      fail(make_error(Code::Http1BadRequest, Side::Downstream, std::string(e.token()) + ": " + e.detail));
    }
    return;
  }
  filters::http1::Event ev = http_->resp.finish();
  if (ev.kind == filters::http1::EventKind::MessageComplete) {
    if (!ev.tail.empty()) forward_raw(up_, ev.tail.data(), ev.tail.size());
  } else if (ev.kind == filters::http1::EventKind::Error) {
    const filters::http1::ParseError& e = http_->resp.error();
    if (!http_->response_head_sent && http_->responses < http_->requests) {
      http_refuse(502, e.token(), Code::Http1BadResponse, Side::Upstream, e.detail);
    } else {
      fail(make_error(Code::Http1BadResponse, Side::Upstream, std::string(e.token()) + ": " + e.detail));
    }
  }
}

void Connection::forward_raw(Endpoint& from, const char* data, size_t len) {
  Endpoint& to = other(from);
  from.bytes_in += len;
  to.bytes_out += len;
  if (to.tls) {
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

void Connection::flush(Endpoint& ep) {
  if (!ep.tls || ep.tls->pending_output() == 0) return;
  std::unique_ptr<char[]> out;
  const size_t n = ep.tls->take_output(out);
  write_raw(ep, std::move(out), n);
}

void Connection::write_copy(Endpoint& ep, const char* data, size_t len) {
  if (len == 0) return;
  std::unique_ptr<char[]> copy(new char[len]);
  std::memcpy(copy.get(), data, len);
  write_raw(ep, std::move(copy), len);
}

void Connection::write_raw(Endpoint& ep, std::unique_ptr<char[]> data, size_t len) {
  if (len == 0 || !ep.inited) return;
  auto* req = new WriteReq{{}, this, &ep, std::move(data), len};
  req->req.data = req;
  uv_buf_t buf = uv_buf_init(req->data.get(), static_cast<unsigned>(len));
  ep.queued += len;
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
    if (!finished_ && down_.queued == 0 && up_.queued == 0) finish_close();
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
    http_finish_side(from);
    if (closing_) return;
  }
  do_shutdown(other(from));
  check_done();
}

void Connection::do_shutdown(Endpoint& ep) {
  if (ep.shutdown_started || !ep.inited || closing_) return;
  ep.shutdown_started = true;
  if (ep.tls) {
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
  Endpoint& ep = (req == &self->down_.shutdown_req) ? self->down_ : self->up_;
  ep.shutdown_done = true;
  (void)status;
  if (!self->closing_) self->check_done();
}

void Connection::check_done() {
  if (closing_) return;
  if (down_.read_eof && up_.read_eof && down_.shutdown_done && up_.shutdown_done) {
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
    // Nothing is read from the client until the upstream is ready; the kernel buffers it.
    stop_reading(down_);
    state_ = State::Connecting;
    connect_upstream();
  } else {
    up_info_ = ep.tls->info();
    up_tls_done_ = true;
    worker_.stats().add(series("fipsproxy_tls_handshakes_total",
                               {{"cluster", listener_.cluster->cfg->name},
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
  arm_timer(static_cast<uint64_t>(cluster.cfg->connect_timeout.count()));
  connect_req_.data = this;
  if (addr.is_unix()) {
    up_.h = {};
    if (uv_pipe_init(worker_.loop(), &up_.h.pipe, 0) != 0) {
      fail(make_error(Code::Internal, Side::Upstream, "uv_pipe_init failed"));
      return;
    }
    up_.inited = true;
    up_.h.handle.data = this;
    uv_pipe_connect(&connect_req_, &up_.h.pipe, addr.path.c_str(), on_connect);
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
    self->fail(make_error(Code::UpstreamConnectFailed, Side::Upstream,
                          std::string("resolve: ") + uv_err_name(status)));
    return;
  }
  struct sockaddr_storage ss;
  std::memset(&ss, 0, sizeof ss);
  std::memcpy(&ss, res->ai_addr, res->ai_addrlen);
  uv_freeaddrinfo(res);
  self->connect_tcp(reinterpret_cast<const sockaddr*>(&ss));
}

void Connection::connect_tcp(const struct sockaddr* addr) {
  up_.h = {};
  if (uv_tcp_init(worker_.loop(), &up_.h.tcp) != 0) {
    fail(make_error(Code::Internal, Side::Upstream, "uv_tcp_init failed"));
    return;
  }
  up_.inited = true;
  up_.h.handle.data = this;
  int rc = uv_tcp_connect(&connect_req_, &up_.h.tcp, addr, on_connect);
  if (rc != 0) {
    connect_failed(make_error(Code::UpstreamConnectFailed, Side::Upstream,
                              upstream_addr_ + ": connect: " + uv_err_name(rc)));
  }
}

void Connection::connect_failed(Error error) {
  const ClusterRuntime& cluster = *listener_.cluster;
  worker_.endpoint_result(cluster, up_index_, false);
  const bool more = retries_left_ > 0 &&
                    std::find(tried_.begin(), tried_.end(), false) != tried_.end();
  if (!more || closing_) {
    fail(std::move(error));
    return;
  }
  --retries_left_;
  worker_.stats().add(series("fipsproxy_upstream_connect_retries_total", {{"cluster", cluster.cfg->name}}));
  FP_LOG_DEBUG("upstream connect failed: retrying on another endpoint", {"conn", id_},
               {"cluster", cluster.cfg->name}, {"detail", error.detail});
  worker_.release_endpoint(cluster, up_index_);
  up_index_ = -1;
  if (up_.inited) {
    // The handle must be closed before it can be initialised again for the next endpoint.
    up_.inited = false;
    retry_close_pending_ = true;
    uv_close(&up_.h.handle, on_retry_closed);
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
  if (!upstream_ep_->is_unix()) uv_tcp_nodelay(&up_.h.tcp, 1);
  const ClusterRuntime& cluster = *listener_.cluster;
  if (!cluster.tls) {
    established();
    return;
  }
  std::string sni = cluster.cfg->tls->sni;
  if (sni.empty() && !upstream_ep_->is_unix() && !is_ip_literal(upstream_ep_->host)) {
    sni = upstream_ep_->host;
  }
  up_.tls = TlsTransport::create(cluster.tls, sni);
  if (!up_.tls) {
    fail(make_error(Code::TlsSetupFailed, Side::Upstream, "SSL_new failed"));
    return;
  }
  start_reading(up_);
  drive_handshake(up_);  // sends the ClientHello
}

void Connection::established() {
  state_ = State::Established;
  touch();
  arm_timer(static_cast<uint64_t>(listener_.cfg->idle_timeout.count()));
  FP_LOG_DEBUG("connection established", {"conn", id_}, {"listener", listener_.cfg->name},
               {"upstream", upstream_addr_});
  start_reading(down_);
  start_reading(up_);
  // TLS may hold application data that arrived with the handshake.
  if (down_.tls) pump(down_);
  if (!closing_ && up_.tls) pump(up_);
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
                               std::to_string(listener_.cluster->cfg->connect_timeout.count()) + "ms");
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
      if (now - last_activity_ms_ >= idle) {
        fail(make_error(Code::IdleTimeout, Side::Internal,
                        "idle for " + std::to_string(now - last_activity_ms_) + "ms"));
      } else {
        arm_timer(idle - (now - last_activity_ms_));
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
  ev.listener = ep.is_down ? listener_.cfg->name : listener_.cluster->cfg->name;
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
  // A handshake that ends here unfinished (timeout, reset, drain) is still an attempt.
  if (down_.tls && !down_tls_done_) audit_handshake(down_, &error);
  if (up_.tls && !up_tls_done_) audit_handshake(up_, &error);
  closing_ = true;
  state_ = State::Closing;
  close_reason_ = std::move(error);
  stop_reading(down_);
  stop_reading(up_);
  if (down_.queued == 0 && up_.queued == 0) {
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
  for (Endpoint* ep : {&down_, &up_}) {
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
                  {{upstream ? "cluster" : "listener", upstream ? listener_.cluster->cfg->name : name},
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
  char ts[40];
  {
    time_t now = time(nullptr);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
  }
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
      .unum("bytes_from_downstream", down_.bytes_in)
      .unum("bytes_to_downstream", down_.bytes_out)
      .dbl("duration_ms", dur)
      .str("close_reason", base::token(r.code))
      .str("close_side", base::side_name(r.side))
      .str("detail", r.detail);
  log->write_line(j.done());
}

}  // namespace fp::proxy
