#pragma once
// Test support for fipsproxy (std + POSIX only: this file is linked into every test binary).
// STYLE.md 5.7: every wait and loop here is bounded in time *and* count.

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace fp::test {

using Millis = std::chrono::milliseconds;

// ---- files and dirs -------------------------------------------------------------------------

// A fresh directory (mkdtemp under $TMPDIR or /tmp), removed recursively on destruction.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "fpt");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  void keep() { keep_ = true; }  // leave it on disk (debugging)

 private:
  std::string path_;
  bool keep_ = false;
};

void remove_tree(const std::string& path);
bool file_exists(const std::string& path);
std::string read_file(const std::string& path);  // "" if missing
void write_file(const std::string& path, const std::string& content, int mode = 0644);

// A short unix socket path (< 108 bytes) under /tmp, unique in this process; the caller may
// unlink it. `tag` is truncated.
std::string short_uds_path(const std::string& tag);

// A TCP port that was free a moment ago on `host` ("127.0.0.1" or "::1"); 0 on failure.
uint16_t free_tcp_port(const std::string& host = "127.0.0.1");

// ---- waiting ------------------------------------------------------------------------------

// Polls `pred` every `poll` until it returns true or `timeout` passes; at most
// timeout/poll + 2 calls. Returns the last result of pred.
bool wait_until(const std::function<bool()>& pred, Millis timeout, Millis poll = Millis(20));

// ---- processes ----------------------------------------------------------------------------

struct ExitStatus {
  bool exited = false;    // normal exit: code is valid
  int code = -1;
  int signal = 0;         // killed by this signal
  bool timed_out = false; // still running after wait_exit's timeout
  std::string str() const;
};

// A child process: fork/exec argv[0] (PATH lookup) with extra env entries, stdout and stderr
// captured to files. Killed on destruction: SIGTERM, then SIGKILL after `term_grace`.
class Process {
 public:
  struct Options {
    std::vector<std::string> argv;
    std::vector<std::string> env;     // "K=V" added to (or replacing in) the parent's environment
    std::string stdin_path = "/dev/null";
    bool stdin_pipe = false;          // give the child a pipe; write_stdin()/close_stdin()
    std::string cwd;                  // "" = inherit
    Millis term_grace = Millis(2000);
  };
  explicit Process(Options opts);
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  bool started() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }
  bool running();  // reaps if it exited
  // Waits up to `timeout` for exit. Returns exited/code or signal, or timed_out.
  ExitStatus wait_exit(Millis timeout);
  void signal(int sig);
  // SIGTERM, wait up to term_grace, then SIGKILL. Returns how it ended.
  ExitStatus terminate();
  void kill_now();

  std::string read_stdout() const { return read_file(out_path_); }
  std::string read_stderr() const { return read_file(err_path_); }
  const std::string& stdout_path() const { return out_path_; }
  const std::string& stderr_path() const { return err_path_; }
  bool write_stdin(const std::string& data);
  void close_stdin();

 private:
  Options opts_;
  std::unique_ptr<TempDir> dir_;
  std::string out_path_, err_path_;
  pid_t pid_ = -1;
  int stdin_fd_ = -1;
  std::optional<ExitStatus> status_;
};

// Runs a command to completion (bounded): returns status; stdout/stderr into the strings.
ExitStatus run_command(const std::vector<std::string>& argv, Millis timeout, std::string* out = nullptr,
                       std::string* err = nullptr, const std::vector<std::string>& env = {},
                       const std::string& stdin_path = "/dev/null");

// ---- paths of things under test -----------------------------------------------------------

std::string proxy_binary();   // FP_BINARY_DIR "/fipsproxy"
std::string apps_dir();       // FP_SOURCE_DIR "/tests/support/apps"
// Runs tests/certs/gen.sh once per process into a temp dir and returns that dir (README lists
// the files). Throws std::runtime_error if generation fails.
const std::string& test_certs();
std::string cert(const std::string& name);  // test_certs() + "/" + name

// ---- the proxy ----------------------------------------------------------------------------

// Writes `config` to DIR/proxy.toml (with `[process] allow_root = true` appended when it has no
// [process] table: the suite runs as root) and runs `fipsproxy run -c DIR/proxy.toml`.
class ProxyProcess {
 public:
  ProxyProcess(const std::string& config, const std::string& dir);
  ~ProxyProcess();
  // Starts it and waits up to `timeout` for "msg=ready" on stderr, or an early exit. True if
  // ready.
  bool start(Millis timeout = Millis(10000));
  bool running() { return proc_ && proc_->running(); }
  pid_t pid() const { return proc_ ? proc_->pid() : -1; }
  std::string stderr_text() const { return proc_ ? proc_->read_stderr() : ""; }
  const std::string& config_path() const { return config_path_; }
  int fd_count() const;   // entries in /proc/PID/fd; -1 if gone
  std::string fd_listing() const;  // "N -> target" per line, for failure messages
  long rss_kb() const;    // VmRSS from /proc/PID/status; -1 if gone
  void signal(int sig) { if (proc_) proc_->signal(sig); }
  ExitStatus wait_exit(Millis timeout) { return proc_ ? proc_->wait_exit(timeout) : ExitStatus{}; }
  ExitStatus terminate() { return proc_ ? proc_->terminate() : ExitStatus{}; }
  // Waits (bounded) until fd_count() == target; returns the last count seen.
  int wait_fd_count(int target, Millis timeout = Millis(5000)) const;
  // Waits (bounded) for `needle` in stderr.
  bool wait_log(const std::string& needle, Millis timeout = Millis(5000)) const;

 private:
  std::string dir_, config_path_;
  std::unique_ptr<Process> proc_;
};

// ---- the app (tests/support/apps/app_server.py) -------------------------------------------

class AppServer {
 public:
  // listen: "tcp:127.0.0.1:0", "tcp:[::1]:0" or "unix:/path". mode: e.g. {"echo"},
  // {"record", dir}, {"sha256"}, {"blast", "1000"}.
  AppServer(const std::string& listen, const std::vector<std::string>& mode);
  bool ok() const { return port_ >= 0; }
  int port() const { return port_; }
  // The address to put into a cluster's endpoints: "127.0.0.1:P", "[::1]:P" or "unix:/path".
  const std::string& endpoint() const { return endpoint_; }
  // JSON event lines after the port line.
  std::vector<std::string> events() const;
  int accepts() const;
  Process& process() { return *proc_; }

 private:
  std::unique_ptr<Process> proc_;
  int port_ = -1;
  std::string endpoint_;
};

// ---- a flat JSON object (access-log lines, tool output) -----------------------------------

struct JsonValue {
  enum class Type { Null, Bool, Number, String, Array, Other } type = Type::Null;
  std::string text;                // string value (unescaped), number/bool literal, or raw
  std::vector<std::string> items;  // Array of strings/numbers (unescaped)
};

class JsonObject {
 public:
  static std::optional<JsonObject> parse(const std::string& line);
  bool has(const std::string& key) const { return fields_.count(key) != 0; }
  std::string str(const std::string& key, const std::string& dflt = "") const;
  double num(const std::string& key, double dflt = -1) const;
  bool boolean(const std::string& key) const;
  std::vector<std::string> arr(const std::string& key) const;
  const std::string& raw() const { return raw_; }
  const std::map<std::string, JsonValue>& fields() const { return fields_; }

 private:
  std::map<std::string, JsonValue> fields_;
  std::string raw_;
};

// Every parseable connection line of an access log (JSON lines; request lines excluded).
std::vector<JsonObject> read_access_log(const std::string& path);
// The per-request lines ({"kind":"request",...}) http1 listeners write, in order.
std::vector<JsonObject> read_request_log(const std::string& path);
std::vector<JsonObject> wait_request_log(const std::string& path, size_t n, Millis timeout = Millis(5000));
// Waits (bounded) until the file has at least `n` lines; returns them.
std::vector<JsonObject> wait_access_log(const std::string& path, size_t n, Millis timeout = Millis(5000));

// ---- sockets (raw clients) ----------------------------------------------------------------

class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() { reset(); }
  Fd(Fd&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  Fd& operator=(Fd&& o) noexcept;
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  void reset();

 private:
  int fd_ = -1;
};

// Blocking connect (bounded by timeout); invalid Fd on failure.
Fd connect_tcp(const std::string& host, uint16_t port, Millis timeout = Millis(2000));
Fd connect_unix(const std::string& path);
bool send_all(int fd, const std::string& data, Millis timeout = Millis(5000));
struct ReadResult {
  std::string data;
  bool eof = false;     // orderly close by peer
  bool reset = false;   // ECONNRESET etc.
  bool timed_out = false;
};
// Reads until EOF/error, `max` bytes, or timeout.
ReadResult read_until_close(int fd, Millis timeout, size_t max = 1 << 20);

}  // namespace fp::test
