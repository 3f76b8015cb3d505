#pragma once
// Server: the startup sequence (fail closed, DESIGN.md §2) and the control thread.
//   FIPS checks -> config -> certs and TLS contexts -> bind -> workers -> ready
// Then, on the control loop: SIGTERM/SIGINT drain with a deadline (a second signal closes
// everything at once); SIGHUP reload (config + certs); certificate rotation (inotify on the
// directories of every cert, key and CA file, plus a polling fallback). A reload or rotation
// that fails anywhere keeps the old generation serving and says why.

#include <uv.h>

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "certs/fips_self_check.h"
#include "proxy/admin.h"
#include "proxy/health_check.h"
#include "proxy/runtime.h"
#include "proxy/worker.h"

namespace fp::proxy {

class Server {
 public:
  Server();
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
  struct DirWatch;

  // Re-reads the config (reload) or only the certificates (rotation) and publishes a new
  // generation. False (old generation kept) on any error, each logged.
  bool reload(bool reread_config, const char* why);
  // from_signal: a SIGTERM/SIGINT (a second one while a signal-started drain runs closes
  // everything at once); false: the admin endpoint.
  void begin_drain(const char* why, bool from_signal);
  void watch_cert_dirs();
  void check_cert_files(const char* why);
  std::string cert_fingerprint() const;
  void handle_admin(const std::string& method, const std::string& path,
                    std::function<void(AdminResponse)> respond);
  std::string metrics_text();
  std::string config_json() const;
  // Empty when ready; otherwise why not.
  std::string not_ready_reason() const;

  static void on_signal(uv_signal_t* s, int signum) noexcept;
  static void on_drain_deadline(uv_timer_t* t) noexcept;
  static void on_worker_exit(uv_async_t* a) noexcept;
  static void on_dir_event(uv_fs_event_t* h, const char* file, int events, int status) noexcept;
  static void on_cert_timer(uv_timer_t* t) noexcept;
  static void on_cert_poll(uv_timer_t* t) noexcept;
  static void on_probe_timer(uv_timer_t* t) noexcept;

  std::string config_path_;
  std::shared_ptr<const Runtime> rt_;
  uint64_t generation_ = 0;
  std::map<std::string, BoundSockets> bound_;  // by address text; fds already handed out are -1
  std::vector<std::unique_ptr<Worker>> workers_;
  uv_loop_t loop_;
  uv_signal_t sigterm_, sigint_, sighup_;
  uv_timer_t drain_timer_;
  uv_timer_t cert_debounce_;
  uv_timer_t cert_poll_;
  uv_timer_t probe_timer_;
  std::string probe_error_;  // last periodic self-probe failure; empty when passing
  uint64_t probe_runs_ = 0;
  std::string probe_last_;  // time of the last periodic self-probe (UTC)
  uv_async_t exit_async_;
  std::vector<std::unique_ptr<DirWatch>> dir_watches_;
  std::string cert_fp_;
  std::unique_ptr<AdminServer> admin_;
  std::shared_ptr<AuditLog> audit_;
  std::unique_ptr<HealthChecker> health_;
  std::string clusters_json();
  // Every worker's counters and LB gauges, merged (bounded wait).
  std::map<std::string, uint64_t> gather_workers();
  certs::FipsReport fips_;
  bool ready_ = false;
  std::string last_reload_error_;
  std::map<std::string, uint64_t> admin_requests_;
  std::atomic<unsigned> exited_{0};
  bool draining_ = false;
  bool drain_by_signal_ = false;
  uint64_t reload_ok_ = 0;
  uint64_t reload_failed_ = 0;
};

// Builds one generation from a loaded config (TLS contexts, access log). Errors name the file
// and reason. Used by `run`, reload and `check`. `previous` (may be null) lends connection
// counters to listeners that keep their name.
Result<std::shared_ptr<Runtime>> build_runtime(config::Snapshot cfg, const Runtime* previous);
// Test builds only (fipsproxy_testhooks): reports injected drift to the periodic self-probe.
extern bool (*g_test_inject_drift)(char* why, unsigned long why_len);

// The in-memory policy self-probe of every context in `rt` (FIPS-POLICY §10 check 9).
Result<void> probe_runtime(const Runtime& rt);

}  // namespace fp::proxy
