#pragma once
// Server: the startup sequence (fail closed, DESIGN.md §2) and the control thread: FIPS checks
// -> config -> certs and TLS contexts -> bind -> workers -> ready; then signals (SIGTERM/SIGINT
// drain with a deadline, a second one closes everything at once).

#include <uv.h>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "proxy/runtime.h"
#include "proxy/worker.h"

namespace fp::proxy {

class Server {
 public:
  Server() = default;
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Runs until drained. Returns the process exit code.
  int run(const std::string& config_path);

  unsigned worker_count() const { return static_cast<unsigned>(workers_.size()); }
  Worker& worker(unsigned i) { return *workers_.at(i); }
  // Called from a worker thread when its loop has ended.
  void worker_exited(unsigned id);

 private:
  void begin_drain(const char* why);
  static void on_signal(uv_signal_t* s, int signum) noexcept;
  static void on_drain_deadline(uv_timer_t* t) noexcept;
  static void on_worker_exit(uv_async_t* a) noexcept;

  Runtime rt_;
  std::vector<std::unique_ptr<Worker>> workers_;
  uv_loop_t loop_;
  uv_signal_t sigterm_, sigint_;
  uv_timer_t drain_timer_;
  uv_async_t exit_async_;
  std::atomic<unsigned> exited_{0};
  bool draining_ = false;
};

// Builds everything a run needs from a loaded config (TLS contexts, access log). Errors name
// the file and reason. Used by `run` and `check`.
Result<void> build_runtime(Runtime& rt, config::Snapshot cfg);

}  // namespace fp::proxy
