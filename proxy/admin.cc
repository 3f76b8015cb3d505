#include "proxy/admin.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "proxy/base/log.h"
#include "proxy/tls_transport.h"

namespace fp::proxy {

namespace {
constexpr size_t kMaxHead = 8192;
constexpr uint64_t kClientTimeoutMs = 5000;

const char* reason_phrase(int status) {
  switch (status) {
    case 200: return "OK";
    case 202: return "Accepted";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Unknown";
  }
}
}  // namespace

struct AdminServer::Conn {
  AdminServer* server = nullptr;
  StreamHandle h;
  uv_timer_t timer;
  std::string in;
  std::unique_ptr<TlsTransport> tls;  // [admin.tls]: mTLS before any request is read
  int writes_pending = 0;
  bool close_when_written = false;
  bool responded = false;
  bool closing = false;
  int pending_closes = 0;
  // Set to false when the connection goes away before an asynchronous response arrives.
  std::shared_ptr<bool> alive = std::make_shared<bool>(true);
};

bool unix_socket_live(const std::string& path) {
  struct sockaddr_un sun;
  std::memset(&sun, 0, sizeof sun);
  sun.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof sun.sun_path) return false;
  std::memcpy(sun.sun_path, path.data(), path.size());
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  // A Unix-socket connect completes or fails at once: ECONNREFUSED or ENOENT for a stale file;
  // EAGAIN (a full backlog) is a live listener too.
  const bool live = ::connect(fd, reinterpret_cast<sockaddr*>(&sun), sizeof sun) == 0 || errno == EAGAIN;
  ::close(fd);
  return live;
}

AdminServer::~AdminServer() = default;

Result<void> AdminServer::start(const config::Admin& cfg) {
  cfg_ = cfg;
  if (cfg.tls) {
    auto ctx = certs::build_context(certs::Role::Server, "admin", *cfg.tls);
    if (!ctx) return ctx.error();
    tls_ = std::move(ctx.value());
  }
  const config::Address& a = cfg.address;
  int rc = 0;
  if (a.is_unix()) {
    struct stat st;
    if (::lstat(a.path.c_str(), &st) == 0) {
      if (!S_ISSOCK(st.st_mode)) {
        return make_error(Code::Io, Side::Internal, a.text + ": exists and is not a socket");
      }
      if (unix_socket_live(a.path)) {  // another process serves it: never take it over
        return make_error(Code::Io, Side::Internal,
                          "admin " + a.text + ": bind: address already in use (a live socket: another process listens there)");
      }
      ::unlink(a.path.c_str());
    }
    uv_pipe_init(loop_, &h_.pipe, 0);
    open_ = true;
    h_.handle.data = this;
    rc = uv_pipe_bind(&h_.pipe, a.path.c_str());
    if (rc == 0) ::chmod(a.path.c_str(), 0660);
  } else {
    struct sockaddr_storage ss;
    std::memset(&ss, 0, sizeof ss);
    if (uv_ip4_addr(a.host.c_str(), a.port, reinterpret_cast<sockaddr_in*>(&ss)) != 0 &&
        uv_ip6_addr(a.host.c_str(), a.port, reinterpret_cast<sockaddr_in6*>(&ss)) != 0 &&
        uv_ip4_addr("127.0.0.1", a.port, reinterpret_cast<sockaddr_in*>(&ss)) != 0) {
      return make_error(Code::ConfigInvalid, Side::Internal, a.text + ": bad admin address");
    }
    uv_tcp_init(loop_, &h_.tcp);
    open_ = true;
    h_.handle.data = this;
    rc = uv_tcp_bind(&h_.tcp, reinterpret_cast<sockaddr*>(&ss), 0);
  }
  if (rc == 0) rc = uv_listen(&h_.stream, 64, on_connection);
  if (rc != 0) {
    return make_error(Code::Io, Side::Internal, "admin " + a.text + ": bind: " + uv_strerror(rc));
  }
  return {};
}

void AdminServer::close() {
  if (!open_) return;
  open_ = false;
  if (!uv_is_closing(&h_.handle)) uv_close(&h_.handle, nullptr);
  if (cfg_.address.is_unix()) ::unlink(cfg_.address.path.c_str());
}

namespace {
// Queues bytes on the admin connection; with `last`, the connection closes once every write
// has completed.
struct AdminWrite {
  uv_write_t req;
  std::string data;
};
}  // namespace

void AdminServer::send(Conn* c, std::string bytes, bool last) {
  if (c->closing) return;
  if (last) c->close_when_written = true;
  if (bytes.empty()) {
    if (last && c->writes_pending == 0) finish(c);
    return;
  }
  auto* w = new AdminWrite{{}, std::move(bytes)};
  w->req.data = c;
  uv_buf_t b = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
  ++c->writes_pending;
  if (uv_write(&w->req, &c->h.stream, &b, 1, [](uv_write_t* req, int) {
        auto* conn = static_cast<Conn*>(req->data);
        delete reinterpret_cast<AdminWrite*>(req);
        if (--conn->writes_pending == 0 && conn->close_when_written) conn->server->finish(conn);
      }) != 0) {
    --c->writes_pending;
    delete w;
    finish(c);
  }
}

void AdminServer::on_connection(uv_stream_t* server, int status) noexcept {
  auto* self = static_cast<AdminServer*>(server->data);
  if (status < 0) return;
  auto* c = new Conn();
  c->server = self;
  if (self->cfg_.address.is_unix()) {
    uv_pipe_init(self->loop_, &c->h.pipe, 0);
  } else {
    uv_tcp_init(self->loop_, &c->h.tcp);
  }
  c->h.handle.data = c;
  uv_timer_init(self->loop_, &c->timer);
  c->timer.data = c;
  if (uv_accept(server, &c->h.stream) != 0 || self->active_ >= self->cfg_.max_connections) {
    self->finish(c);  // over budget: close at once
    return;
  }
  ++self->active_;
  c->pending_closes = -1;  // marks "counted in active_"
  if (self->tls_) c->tls = TlsTransport::create(self->tls_, "");
  uv_timer_start(&c->timer, [](uv_timer_t* t) {
    auto* conn = static_cast<Conn*>(t->data);
    conn->server->finish(conn);
  }, kClientTimeoutMs, 0);
  uv_read_start(
      &c->h.stream,
      [](uv_handle_t*, size_t, uv_buf_t* buf) {
        static thread_local char scratch[4096];
        *buf = uv_buf_init(scratch, sizeof scratch);
      },
      [](uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
        auto* conn = static_cast<Conn*>(s->data);
        AdminServer* srv = conn->server;
        if (n < 0) {
          srv->finish(conn);
          return;
        }
        if (conn->tls) {
          // mTLS first: nothing is parsed before the client certificate passed our policy.
          conn->tls->feed(buf->base, static_cast<size_t>(n));
          if (!conn->tls->handshake_done()) {
            TlsTransport::Step st = conn->tls->handshake();
            srv->send(conn, conn->tls->take_output(), false);
            if (st == TlsTransport::Step::Failed) {
              Error e = conn->tls->failure(Side::Downstream);
              FP_LOG_WARN("admin: TLS handshake refused", {"reason", base::token(e.code)},
                          {"detail", e.detail});
              srv->send(conn, "", true);
              return;
            }
            if (st == TlsTransport::Step::WantRead) return;
            if (Result<void> gate = conn->tls->check_negotiated(); !gate) {
              srv->send(conn, "", true);
              return;
            }
          }
          char plain[4096];
          for (;;) {
            TlsTransport::ReadResult r = conn->tls->read(plain, sizeof plain);
            if (r.bytes == 0) break;
            conn->in.append(plain, r.bytes);
          }
        } else {
          conn->in.append(buf->base, static_cast<size_t>(n));
        }
        auto respond_now = [conn](AdminResponse r) {
          if (!*conn->alive || conn->responded) return;
          conn->responded = true;
          std::string o = "HTTP/1.1 " + std::to_string(r.status) + " " + reason_phrase(r.status) + "\r\n";
          o += "Content-Type: " + r.content_type + "\r\n";
          o += "Content-Length: " + std::to_string(r.body.size()) + "\r\n";
          o += "Cache-Control: no-store\r\nConnection: close\r\n\r\n";
          o += r.body;
          if (conn->tls) {
            conn->tls->write(o.data(), o.size());
            conn->tls->shutdown();
            o = conn->tls->take_output();
          }
          conn->server->send(conn, std::move(o), true);
        };
        const size_t end = conn->in.find("\r\n\r\n");
        if (end == std::string::npos) {
          if (conn->in.size() > kMaxHead) {
            uv_read_stop(s);
            respond_now({431, "text/plain; charset=utf-8", "request head too large\n"});
          }
          return;
        }
        uv_read_stop(s);
        // Request line: METHOD SP target SP HTTP/1.x
        const std::string line = conn->in.substr(0, conn->in.find("\r\n"));
        const size_t sp1 = line.find(' ');
        const size_t sp2 = sp1 == std::string::npos ? sp1 : line.find(' ', sp1 + 1);
        if (sp1 == std::string::npos || sp2 == std::string::npos ||
            (line.compare(sp2 + 1, std::string::npos, "HTTP/1.1") != 0 &&
             line.compare(sp2 + 1, std::string::npos, "HTTP/1.0") != 0)) {
          respond_now({400, "text/plain; charset=utf-8", "bad request line\n"});
          return;
        }
        std::string method = line.substr(0, sp1);
        std::string path = line.substr(sp1 + 1, sp2 - sp1 - 1);
        const bool method_ok = !method.empty() && method.find_first_not_of(
                                                      "ABCDEFGHIJKLMNOPQRSTUVWXYZ") == std::string::npos;
        if (!method_ok || path.empty() || path[0] != '/') {
          respond_now({400, "text/plain; charset=utf-8", "bad request line\n"});
          return;
        }
        if (const size_t q = path.find('?'); q != std::string::npos) path.resize(q);
        std::weak_ptr<bool> alive = conn->alive;
        srv->handler_(method, path, [alive, respond_now](AdminResponse r) {
          if (auto a = alive.lock(); a && *a) respond_now(std::move(r));
        });
      });
}

void AdminServer::finish(Conn* c) {
  if (c->closing) return;
  c->closing = true;
  *c->alive = false;
  if (c->pending_closes == -1) --active_;
  c->pending_closes = 2;
  auto on_closed = [](uv_handle_t* h) {
    auto* conn = static_cast<Conn*>(h->data);
    if (--conn->pending_closes == 0) delete conn;
  };
  uv_close(&c->h.handle, on_closed);
  uv_close(reinterpret_cast<uv_handle_t*>(&c->timer), on_closed);
}

}  // namespace fp::proxy
