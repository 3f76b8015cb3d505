#pragma once
// The admin endpoint: a small HTTP/1.1 server on the control loop, on a Unix socket or a
// loopback address, with its own connection budget (it keeps answering when the data listeners
// are saturated). One request per connection; the response closes it. Requests are parsed
// strictly: a bad request line gets 400, a head over 8 KiB gets 431, a slow client is closed
// after 5 s.

#include <uv.h>

#include "proxy/uv_handles.h"

#include <functional>
#include <memory>
#include <string>

#include "certs/tls_context.h"
#include "config/config.h"
#include "proxy/base/result.h"

namespace fp::proxy {

// True if a process accepts connections on the Unix socket at `path` (a live socket: binding
// there would take it over); false for a stale socket file nobody listens on, or no file.
bool unix_socket_live(const std::string& path);

struct AdminResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

class AdminServer {
 public:
  // Called on the control loop; `respond` may be called later (asynchronously), exactly once.
  using Handler = std::function<void(const std::string& method, const std::string& path,
                                     std::function<void(AdminResponse)> respond)>;

  AdminServer(uv_loop_t* loop, Handler handler) : loop_(loop), handler_(std::move(handler)) {}
  ~AdminServer();
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  // Binds and listens. Errors name the address.
  Result<void> start(const config::Admin& cfg);
  void close();

 private:
  struct Conn;
  static void on_connection(uv_stream_t* server, int status) noexcept;
  void finish(Conn* c);
  void send(Conn* c, std::string bytes, bool last);

  uv_loop_t* loop_;
  Handler handler_;
  config::Admin cfg_;
  StreamHandle h_;
  bool open_ = false;
  std::shared_ptr<const certs::TlsContext> tls_;  // [admin.tls]
  uint32_t active_ = 0;
};

}  // namespace fp::proxy
