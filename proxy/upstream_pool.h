#pragma once
// UpstreamPool: idle upstream connections kept per worker for reuse by later HTTP/1 requests
// (issue #8 "upstream keep-alive pool", #13 per-destination pools). One pool per worker, no
// locks; keyed by "generation|upstream|endpoint", so a reload or a certificate rotation never
// hands a connection made under an old TLS context to a request of the new generation.
//
// Invariants:
// - Only a connection that finished its exchange cleanly is put here: the response parser said
//   reusable, nothing is queued to it, no shutdown was started, no stray byte was seen.
// - While parked, the pool owns the handle (its data points at the entry) and keeps reading it:
//   any plaintext byte, EOF, error or TLS alert closes the entry (a server that talks while idle
//   is not reused); a TLS 1.3 NewSessionTicket is absorbed.
// - Entries older than idle_timeout are closed by a 1 s sweep; more than max_idle per key close
//   the oldest. close_all() runs on drain so the loop can end.

#include <uv.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <unordered_map>

#include "certs/handshake_info.h"
#include "proxy/stats.h"
#include "proxy/tls_transport.h"
#include "proxy/uv_handles.h"

namespace fp::proxy {

// One side of a proxied connection: a socket, its TLS session and its flow-control state.
// The downstream side lives inside its Connection; an upstream side is heap-allocated so that
// it can outlive the downstream connection that opened it (parked here, taken by another).
struct StreamEnd {
  StreamHandle h;
  bool is_down = false;
  bool inited = false;
  std::unique_ptr<TlsTransport> tls;
  bool reading = false;
  bool paused = false;  // reading stopped for backpressure
  bool corked = false;  // TLS: records written to it are sealed now, sent at the uncork
  bool read_eof = false;
  bool shutdown_started = false;
  bool shutdown_done = false;
  size_t queued = 0;
  uint64_t bytes_in = 0;   // plaintext received from this side
  uint64_t bytes_out = 0;  // plaintext sent to this side
  uv_shutdown_t shutdown_req;
  // Upstream sides only: what a reuse needs to know about the connection.
  bool is_unix = false;
  certs::HandshakeInfo info;  // of the handshake that opened it
  bool tls_done = false;
  std::string addr;           // as shown in logs: host:port or unix:path
  int endpoint_index = -1;    // cluster endpoint (LB), -1 for egress destinations
  uint64_t requests = 0;      // requests carried so far
};

class UpstreamPool {
 public:
  UpstreamPool(uv_loop_t* loop, Stats& stats);
  ~UpstreamPool();
  UpstreamPool(const UpstreamPool&) = delete;
  UpstreamPool& operator=(const UpstreamPool&) = delete;

  // Parks `s` under `key`. `label` names the upstream for metrics (cluster or destination).
  // Returns false (and closes `s`) when it cannot be kept (max_idle 0, TLS holds stray data).
  bool put(const std::string& key, const std::string& label, std::unique_ptr<StreamEnd> s,
           size_t max_idle, uint64_t idle_timeout_ms);
  // The most recently parked live socket under `key`, detached from the pool and handed to the
  // caller's read callbacks (`data` becomes the handle's data), or null. It keeps reading
  // throughout: see hand_over().
  std::unique_ptr<StreamEnd> take(const std::string& key, void* data, uv_alloc_cb alloc_cb,
                                  uv_read_cb read_cb);
  // Closes every idle socket (drain, worker stop).
  void close_all();
  size_t idle() const { return count_; }

  // Closes a socket nobody owns any more (its handle's close callback frees it).
  static void close_socket(std::unique_ptr<StreamEnd> s);

  // Points a socket's reads at new callbacks and handle data. A socket that is reading keeps
  // reading: its callbacks are swapped in place. uv_read_stop() + uv_read_start() would cost two
  // epoll_ctl calls per handover in libuv 1.44 (a stop drops the watcher's registered events, the
  // next start re-adds: EPOLL_CTL_ADD fails with EEXIST, then EPOLL_CTL_MOD), and an HTTP/1
  // keep-alive request hands its upstream over twice (to the pool and back). A socket that is not
  // reading is started. Returns false when uv_read_start fails.
  static bool hand_over(StreamEnd& s, void* data, uv_alloc_cb alloc_cb, uv_read_cb read_cb);

 private:
  struct Entry;
  void close_entry(Entry* e, const char* why);
  void sweep();
  static void on_sweep(uv_timer_t* t) noexcept;
  static void on_alloc(uv_handle_t* h, size_t, uv_buf_t* buf) noexcept;
  static void on_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) noexcept;
  static void on_entry_closed(uv_handle_t* h) noexcept;
  static void on_socket_closed(uv_handle_t* h) noexcept;

  uv_loop_t* loop_;
  Stats& stats_;
  uv_timer_t sweep_;
  bool sweep_inited_ = false;
  std::unordered_map<std::string, std::deque<Entry*>> by_key_;
  size_t count_ = 0;
  std::unique_ptr<char[]> scratch_;
};

}  // namespace fp::proxy
