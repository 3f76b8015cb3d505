#pragma once
// Worker: one thread, one uv loop, its own listening sockets (SO_REUSEPORT for TCP) and its
// own connections. The data path takes no locks; the only cross-thread traffic is the command
// queue (mutex + uv_async), used for unix-socket hand-off, runtime swaps (reload), drain and
// force-close.

#include <uv.h>

#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "proxy/runtime.h"
#include "proxy/stats.h"
#include "proxy/upstream_pool.h"

namespace fp::proxy {

class Connection;
class Server;

// (listener address text, fd) pairs handed to one worker.
using ListenFds = std::vector<std::pair<std::string, int>>;

class Worker {
 public:
  static constexpr size_t kReadBufferSize = 64 * 1024;
  static constexpr size_t kPumpBufferSize = 256 * 1024;  // decrypted plaintext, coalesced

  Worker(Server& server, unsigned id);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Starts the thread; returns once its listeners are open (or failed). Takes the fds.
  Result<void> start(std::shared_ptr<const Runtime> rt, ListenFds fds);
  void join();

  // Thread-safe commands. post() is false once the worker has stopped (fn is not run).
  bool post(std::function<void(Worker&)> fn);
  void drain();
  void force_close();
  // New connections use `rt` from now on; listeners whose address is gone are closed (their
  // live connections finish on the old generation); `fds` are sockets for added addresses.
  void swap_runtime(std::shared_ptr<const Runtime> rt, ListenFds fds);

  // Worker-thread API used by connections.
  unsigned id() const { return id_; }
  uv_loop_t* loop() { return &loop_; }
  char* read_buffer() { return read_buf_.get(); }
  char* pump_buffer() { return pump_buf_.get(); }
  // Small plaintext pieces for a corked TLS side, sealed as one record at the uncork (one
  // connection at a time: a cork lasts one synchronous read callback, and ends empty).
  std::string& cork_buffer() { return cork_buf_; }
  Stats& stats() { return stats_; }
  // Idle upstream connections for HTTP/1 reuse (per worker, no locks).
  UpstreamPool& pool() { return *pool_; }
  // Egress name resolution cache (per worker): addresses for host:port until `expires_ms`.
  struct DnsEntry {
    std::vector<struct sockaddr_storage> addrs;
    uint64_t expires_ms = 0;
  };
  const DnsEntry* dns_lookup(const std::string& host_port);
  void dns_store(const std::string& host_port, std::vector<struct sockaddr_storage> addrs, uint64_t ttl_ms);
  // Takes an LB slot on `index` again (a pooled connection to that endpoint is reused).
  void hold_endpoint(const ClusterRuntime& cluster, int index);
  // Load balancing (per worker, no locks). pick_endpoint: an eligible endpoint index not in
  // `tried` (healthy per the active checks, not ejected), chosen by the cluster's policy; -1
  // when there is none (with no_healthy = "use_all", health and ejection are ignored when no
  // endpoint is eligible). Counts the pick as an active connection until release_endpoint.
  int pick_endpoint(const ClusterRuntime& cluster, const std::vector<bool>& tried);
  void release_endpoint(const ClusterRuntime& cluster, int index);
  // A connect attempt's outcome, for passive outlier ejection.
  void endpoint_result(const ClusterRuntime& cluster, int index, bool ok);
  // Adds this worker's active connections and ejections per endpoint (gauges, summed over
  // workers) to `out`.
  void lb_gauges(std::map<std::string, uint64_t>& out);
  void connection_finished(Connection* conn);   // stopped serving; handles closing
  void connection_destroyed(Connection* conn);  // last handle closed: delete it

 private:
  struct Listener;

  void run(ListenFds fds);
  Result<void> open_listener(const std::string& address, int fd);
  void apply_runtime(std::shared_ptr<const Runtime> rt, ListenFds fds);
  void close_listener(Listener* l);
  void close_listeners();
  void maybe_stop();
  void new_connection(const std::string& address, uv_stream_t* server, int unix_fd);
  void accept_unix(Listener& l);
  void adopt_unix_fd(const std::string& address, int fd);

  static void on_async(uv_async_t* a) noexcept;
  static void on_tcp_connection(uv_stream_t* server, int status) noexcept;
  static void on_unix_readable(uv_poll_t* p, int status, int events) noexcept;
  static void on_unix_backoff(uv_timer_t* t) noexcept;
  static void on_listener_closed(uv_handle_t* h) noexcept;

  Server& server_;
  const unsigned id_;
  std::shared_ptr<const Runtime> rt_;
  uv_loop_t loop_;
  uv_async_t async_;
  std::thread thread_;
  std::mutex mu_;
  std::deque<std::function<void(Worker&)>> queue_;  // guarded by mu_
  bool accepting_posts_ = false;                     // guarded by mu_
  std::unique_ptr<char[]> read_buf_;
  std::unique_ptr<char[]> pump_buf_;
  std::string cork_buf_;
  Stats stats_;
  std::unique_ptr<UpstreamPool> pool_;
  std::unordered_map<std::string, DnsEntry> dns_;
  std::map<std::string, Listener*> listeners_;  // by address text; freed in their close callback
  std::unordered_map<Connection*, std::unique_ptr<Connection>> conns_;
  size_t live_ = 0;  // connections not yet finished
  struct LbState {
    std::vector<int64_t> current_weight;  // smooth weighted round robin
    std::vector<uint32_t> active;         // connections in flight per endpoint
    std::vector<uint32_t> failures;       // consecutive connect failures
    std::vector<uint64_t> ejected_until;  // loop time (ms)
    std::vector<uint32_t> ejections;      // times ejected (back-off exponent)
  };
  LbState& lb_state(const ClusterRuntime& cluster);
  std::map<std::string, LbState> lb_;  // by cluster name; reset when its endpoint count changes
  // The last lb_state() lookup (map nodes are never erased, so the pointer stays valid): an
  // HTTP/1 keep-alive request looks its cluster up four times.
  const std::string* lb_last_name_ = nullptr;
  LbState* lb_last_ = nullptr;
  std::vector<size_t> eligible_;  // pick_endpoint scratch
  uint64_t rng_ = 0x9e3779b97f4a7c15ull;
  uint64_t next_conn_id_ = 0;
  unsigned next_unix_target_ = 0;
  bool draining_ = false;
  bool stopping_ = false;
  // start() handshake with the thread
  std::mutex start_mu_;
  std::condition_variable start_cv_;
  bool start_done_ = false;
  std::optional<Error> start_error_;
};

}  // namespace fp::proxy
