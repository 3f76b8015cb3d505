#pragma once
// Worker: one thread, one uv loop, its own listening sockets (SO_REUSEPORT for TCP) and its
// own connections. The data path takes no locks; the only cross-thread traffic is the command
// queue (mutex + uv_async), used for unix-socket hand-off, drain and force-close.

#include <uv.h>

#include <condition_variable>
#include <deque>
#include <optional>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "proxy/runtime.h"

namespace fp::proxy {

class Connection;
class Server;

class Worker {
 public:
  static constexpr size_t kReadBufferSize = 64 * 1024;

  Worker(Server& server, Runtime& rt, unsigned id);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Starts the thread; returns once its listeners are open (or failed).
  Result<void> start();
  void join();

  // Thread-safe commands.
  // False once the worker has stopped (the function is not run).
  bool post(std::function<void(Worker&)> fn);
  void drain();
  void force_close();

  // Worker-thread API used by connections.
  unsigned id() const { return id_; }
  uv_loop_t* loop() { return &loop_; }
  Runtime& runtime() { return rt_; }
  char* read_buffer() { return read_buf_.get(); }
  const config::Address& next_endpoint(const ClusterRuntime& cluster);
  void connection_finished(Connection* conn);   // stopped serving; handles closing
  void connection_destroyed(Connection* conn);  // last handle closed: delete it
  // Accept a unix-socket connection handed over by the accepting worker.
  void adopt_unix_fd(size_t listener_index, int fd);

 private:
  struct TcpListener {
    Worker* worker;
    ListenerRuntime* rt;
    uv_tcp_t handle;
  };
  struct UnixListener {
    Worker* worker;
    ListenerRuntime* rt;
    uv_poll_t poll;
    uv_timer_t backoff;
    int fd;
  };

  void run();
  Result<void> open_listeners();
  void close_listeners();
  void maybe_stop();
  void new_connection(ListenerRuntime& l, uv_stream_t* server, int unix_fd);
  void accept_unix(UnixListener& ul);

  static void on_async(uv_async_t* a) noexcept;
  static void on_tcp_connection(uv_stream_t* server, int status) noexcept;
  static void on_unix_readable(uv_poll_t* p, int status, int events) noexcept;
  static void on_unix_backoff(uv_timer_t* t) noexcept;

  Server& server_;
  Runtime& rt_;
  const unsigned id_;
  uv_loop_t loop_;
  uv_async_t async_;
  std::thread thread_;
  std::mutex mu_;
  std::deque<std::function<void(Worker&)>> queue_;  // guarded by mu_
  bool accepting_posts_ = false;                     // guarded by mu_
  std::unique_ptr<char[]> read_buf_;
  std::vector<std::unique_ptr<TcpListener>> tcp_listeners_;
  std::vector<std::unique_ptr<UnixListener>> unix_listeners_;
  std::unordered_map<Connection*, std::unique_ptr<Connection>> conns_;
  size_t live_ = 0;  // connections not yet finished
  std::unordered_map<const ClusterRuntime*, size_t> rr_;
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
