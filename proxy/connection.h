#pragma once
// Connection: a downstream transport paired with an upstream transport (DESIGN.md §4).
//
// Life cycle: Handshaking (TLS listener) -> Connecting (upstream connect + TLS handshake) ->
// Established (bytes flow both ways) -> Closing (flush what is queued, e.g. a TLS alert, for
// at most kLingerMs) -> Closed (every handle closed; the worker deletes it).
//
// Invariants:
// - Every uv handle is a member; memory is freed only after the last close callback.
// - Callbacks never delete the connection: fail() marks it and handles close asynchronously.
// - Per direction, at most high_watermark bytes are queued to the sink before reading from
//   the source stops; reading resumes below low_watermark.
// - EOF from one side becomes a shutdown (close_notify + FIN) on the other after its queue
//   drains (uv_shutdown waits for queued writes). The connection completes when both
//   directions are shut down.

#include <uv.h>

#include "proxy/uv_handles.h"

#include <cstdint>
#include <memory>
#include <string>

#include "certs/handshake_info.h"
#include "filters/http1/head.h"
#include "proxy/base/result.h"
#include "proxy/runtime.h"
#include "proxy/tls_transport.h"
#include "proxy/upstream_pool.h"

namespace fp::proxy {

class Worker;
struct OriginalDst;

class Connection {
 public:
  Connection(Worker& worker, std::shared_ptr<const Runtime> rt, const ListenerRuntime& listener,
             uint64_t id);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  uint64_t id() const { return id_; }
  // Takes the accepted socket from a TCP listener.
  bool accept_from(uv_stream_t* server);
  // Takes an accepted unix-socket fd (handed over by the accepting worker).
  bool adopt_pipe_fd(int fd);
  // Starts the state machine; `over_limit` closes at once with connection_limit.
  void start(bool over_limit);
  // Drain deadline passed or a second SIGTERM: close now.
  void force_close(Code code);
  bool closing() const { return closing_; }

 private:
  enum class State { New, Handshaking, Connecting, Established, Closing };
  using Endpoint = StreamEnd;
  struct WriteReq;

  Endpoint& other(Endpoint& ep) { return ep.is_down ? *up_ : down_; }
  Side side_of(const Endpoint& ep) const { return ep.is_down ? Side::Downstream : Side::Upstream; }

  void start_reading(Endpoint& ep);
  void stop_reading(Endpoint& ep);
  void on_data(Endpoint& ep, const char* data, size_t len);
  void on_eof(Endpoint& ep);
  void drive_handshake(Endpoint& ep);
  void pump(Endpoint& ep);
  // Plaintext from `from` for the other side: tcp mode forwards it as is; http1 mode runs it
  // through the HTTP/1 parsers and filters first.
  void forward(Endpoint& from, const char* data, size_t len);
  void forward_raw(Endpoint& from, const char* data, size_t len);
  // http1 mode (DESIGN.md §6): requests and responses parsed in lockstep.
  struct Http;
  void http_from_down(const char* data, size_t len);
  void http_from_up(const char* data, size_t len);
  void http_finish_side(Endpoint& from);  // EOF from `from`: let the parser conclude
  // Answers the client with `status` and closes; nothing more is forwarded.
  void http_refuse(int status, std::string_view token, Code code, Side side, std::string detail);
  // A request head passed the filters: route it (cluster or egress destination), then send it
  // on the bound upstream, or park it (with the bytes after it) until an upstream is ready.
  // Returns false when the caller must stop feeding the parser (waiting or refused).
  bool http_dispatch(filters::http1::RequestHead& head, std::string_view rest);
  bool http_in_flight() const;    // a request was sent (or waits) and its response is not done
  // Sends the parked head; `replay`: then parses what was held after it (the upstream just
  // became ready), else the caller's parser loop goes on (same upstream, nothing parked).
  void http_send_pending(bool replay);
  void http_settle();             // after upstream bytes: park or drop a finished upstream
  // Detaches the bound upstream: parks it in the worker's pool when `reuse` and it is clean,
  // else closes it. The connection then has no upstream until the next request.
  void release_upstream(bool reuse);
  bool http_retry_fresh(std::string_view why);
  std::unique_ptr<Endpoint> take_pooled();
  void connect_for_request();
  void bind_pooled(std::unique_ptr<Endpoint> ep);
  void connect_egress();
  void connect_egress_next();  // the next resolved address of the destination
  std::string upstream_label() const;  // cluster name, or "egress:<host>"
  void write_request_log(int status, std::string_view reason);
  void send_down(const std::string& bytes);
  void flush(Endpoint& ep);
  void uncork(Endpoint& ep);
  bool seal_corked(Endpoint& ep);  // seals what the cork holds; false after a TLS failure
  static constexpr size_t kCorkRecord = 16384;  // plaintext of one TLS record
  // Queues `len` bytes of `data` (owned) on the socket.
  void write_raw(Endpoint& ep, std::unique_ptr<char[]> data, size_t len);
  void write_copy(Endpoint& ep, const char* data, size_t len);
  size_t try_write_now(Endpoint& ep, const char* data, size_t len);
  void queue_write(Endpoint& ep, std::unique_ptr<char[]> data, size_t offset, size_t len);
  void after_write(Endpoint& ep);
  void source_finished(Endpoint& from);
  void do_shutdown(Endpoint& ep);
  void check_done();
  void connect_upstream();
  // A connect error or timeout before the upstream socket was connected: outlier accounting,
  // then another endpoint if retries are left, else fail.
  void connect_failed(Error error);
  static void on_retry_closed(uv_handle_t* h) noexcept;
  void connect_tcp(const struct sockaddr* addr);
  void upstream_connected();
  void established();
  void arm_timer(uint64_t ms);
  void on_timer();
  void touch();
  void fail(Error error);
  void finish_close();
  void count_close();
  // One audit record per handshake attempt (both roles, failures too); at most once per side.
  void audit_handshake(Endpoint& ep, const Error* failure);
  void write_access_log();
  void handle_closed();

  static void on_alloc(uv_handle_t* h, size_t suggested, uv_buf_t* buf) noexcept;
  static void on_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) noexcept;
  static void on_write(uv_write_t* req, int status) noexcept;
  static void on_shutdown(uv_shutdown_t* req, int status) noexcept;
  static void on_connect(uv_connect_t* req, int status) noexcept;
  static void on_resolved(uv_getaddrinfo_t* req, int status, struct addrinfo* res) noexcept;
  static void on_timer_cb(uv_timer_t* t) noexcept;
  static void on_closed(uv_handle_t* h) noexcept;

  Worker& worker_;
  const std::shared_ptr<const Runtime> rt_;  // the generation this connection started with
  const ListenerRuntime& listener_;
  const uint64_t id_;
  State state_ = State::New;
  Endpoint down_;
  std::unique_ptr<Endpoint> up_ = std::make_unique<Endpoint>();  // http1: replaced per upstream
  uv_timer_t timer_;
  bool timer_inited_ = false;
  uv_connect_t connect_req_;
  uv_getaddrinfo_t resolve_req_;
  bool resolving_ = false;
  bool counted_ = false;  // holds a slot in listener_.active
  bool closing_ = false;
  bool finished_ = false;
  int pending_closes_ = 0;
  uint64_t started_ms_ = 0;
  uint64_t last_activity_ms_ = 0;
  std::string peer_addr_;
  std::string upstream_addr_;
  const config::Address* upstream_ep_ = nullptr;
  std::unique_ptr<OriginalDst> original_dst_;  // original_dst cluster: upstream_ep_ is in here
  int up_index_ = -1;           // endpoint picked by the LB (holds an active slot)
  std::vector<bool> tried_;     // endpoints already tried for this connection
  unsigned retries_left_ = 0;
  bool lb_started_ = false;
  bool up_connected_ = false;   // the upstream socket connected (TLS may still be handshaking)
  bool retry_close_pending_ = false;
  certs::HandshakeInfo down_info_;
  certs::HandshakeInfo up_info_;
  bool down_tls_done_ = false;
  bool up_tls_done_ = false;
  bool down_audited_ = false;
  bool up_audited_ = false;
  Error close_reason_{Code::Completed, Side::Internal, ""};
  std::unique_ptr<Http> http_;  // set on http1 listeners
};

}  // namespace fp::proxy
