#include "tests/support/support.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace fp::test {

namespace {

using Clock = std::chrono::steady_clock;

std::string tmp_root() {
  const char* t = std::getenv("TMPDIR");
  return (t && *t) ? t : "/tmp";
}

}  // namespace

// ---- files --------------------------------------------------------------------------------

TempDir::TempDir(const std::string& prefix) {
  std::string tmpl = tmp_root() + "/" + prefix + "-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (!mkdtemp(buf.data())) throw std::runtime_error("mkdtemp " + tmpl + ": " + std::strerror(errno));
  path_ = buf.data();
}

TempDir::~TempDir() {
  if (!keep_) remove_tree(path_);
}

void remove_tree(const std::string& path) {
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) return;
  if (S_ISDIR(st.st_mode)) {
    if (DIR* d = opendir(path.c_str())) {
      std::vector<std::string> names;
      while (dirent* e = readdir(d)) {
        std::string n = e->d_name;
        if (n != "." && n != "..") names.push_back(n);
      }
      closedir(d);
      for (const auto& n : names) remove_tree(path + "/" + n);
    }
    rmdir(path.c_str());
  } else {
    unlink(path.c_str());
  }
}

bool file_exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return "";
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void write_file(const std::string& path, const std::string& content, int mode) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) throw std::runtime_error("open " + path + ": " + std::strerror(errno));
  size_t off = 0;
  while (off < content.size()) {
    ssize_t n = ::write(fd, content.data() + off, content.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ::close(fd);
      throw std::runtime_error("write " + path);
    }
    off += static_cast<size_t>(n);
  }
  ::close(fd);
}

std::string short_uds_path(const std::string& tag) {
  static std::atomic<int> counter{0};
  std::string t = tag.substr(0, 24);
  std::string p = "/tmp/fpu" + std::to_string(getpid()) + "-" + std::to_string(counter++) + "-" + t + ".sock";
  unlink(p.c_str());
  return p;  // well under sizeof(sockaddr_un::sun_path) == 108
}

uint16_t free_tcp_port(const std::string& host) {
  bool v6 = host.find(':') != std::string::npos;
  int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  sockaddr_storage ss{};
  socklen_t len;
  if (v6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    inet_pton(AF_INET6, host.c_str(), &a->sin6_addr);
    len = sizeof(*a);
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    inet_pton(AF_INET, host.c_str(), &a->sin_addr);
    len = sizeof(*a);
  }
  uint16_t port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&ss), len) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
    port = v6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port)
              : ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  }
  ::close(fd);
  return port;
}

// ---- waiting ------------------------------------------------------------------------------

bool wait_until(const std::function<bool()>& pred, Millis timeout, Millis poll) {
  if (poll.count() <= 0) poll = Millis(1);
  const auto deadline = Clock::now() + timeout;
  const long max_calls = timeout.count() / poll.count() + 2;
  bool r = false;
  for (long i = 0; i < max_calls; ++i) {
    r = pred();
    if (r || Clock::now() >= deadline) return r;
    std::this_thread::sleep_for(poll);
  }
  return r;
}

// ---- processes ----------------------------------------------------------------------------

std::string ExitStatus::str() const {
  if (timed_out) return "still running (timed out)";
  if (exited) return "exit " + std::to_string(code);
  if (signal) return std::string("signal ") + strsignal(signal);
  return "not started";
}

Process::Process(Options opts) : opts_(std::move(opts)) {
  dir_ = std::make_unique<TempDir>("fpp");
  out_path_ = dir_->file("stdout");
  err_path_ = dir_->file("stderr");
  if (opts_.argv.empty()) return;

  // Build argv/envp before fork (no allocation in the child).
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) {
    std::string kv = *e;
    std::string k = kv.substr(0, kv.find('='));
    bool overridden = false;
    for (const auto& o : opts_.env)
      if (o.substr(0, o.find('=')) == k) overridden = true;
    if (!overridden) env.push_back(kv);
  }
  for (const auto& o : opts_.env) env.push_back(o);
  std::vector<char*> argv, envp;
  for (auto& a : opts_.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);

  int out = ::open(out_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  int err = ::open(err_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  int in = -1;
  int pipefd[2] = {-1, -1};
  if (opts_.stdin_pipe) {
    if (pipe2(pipefd, O_CLOEXEC) != 0) throw std::runtime_error("pipe2");
    in = pipefd[0];
  } else {
    in = ::open(opts_.stdin_path.c_str(), O_RDONLY | O_CLOEXEC);
  }
  if (out < 0 || err < 0 || in < 0) throw std::runtime_error("Process: cannot open stdio files");
  const char* cwd = opts_.cwd.empty() ? nullptr : opts_.cwd.c_str();

  pid_t pid = fork();
  if (pid == 0) {
    setpgid(0, 0);  // own process group: terminate() reaches helpers it spawns
    dup2(in, 0);
    dup2(out, 1);
    dup2(err, 2);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    ::signal(SIGPIPE, SIG_DFL);
    if (cwd && chdir(cwd) != 0) _exit(126);
    execvpe(argv[0], argv.data(), envp.data());
    _exit(127);
  }
  ::close(out);
  ::close(err);
  ::close(in);
  if (pid < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
  pid_ = pid;
  if (opts_.stdin_pipe) stdin_fd_ = pipefd[1];
}

Process::~Process() {
  close_stdin();
  if (pid_ > 0 && !status_) terminate();
}

bool Process::running() {
  if (pid_ <= 0 || status_) return false;
  int st = 0;
  pid_t r = waitpid(pid_, &st, WNOHANG);
  if (r == pid_) {
    ExitStatus es;
    if (WIFEXITED(st)) {
      es.exited = true;
      es.code = WEXITSTATUS(st);
    } else if (WIFSIGNALED(st)) {
      es.signal = WTERMSIG(st);
    }
    status_ = es;
    return false;
  }
  return r == 0;
}

ExitStatus Process::wait_exit(Millis timeout) {
  if (pid_ <= 0) return {};
  wait_until([&] { return !running(); }, timeout, Millis(10));
  if (status_) return *status_;
  ExitStatus es;
  es.timed_out = true;
  return es;
}

void Process::signal(int sig) {
  if (pid_ > 0 && !status_) ::kill(pid_, sig);
}

ExitStatus Process::terminate() {
  if (pid_ <= 0) return {};
  if (status_) return *status_;
  signal(SIGTERM);
  ExitStatus es = wait_exit(opts_.term_grace);
  if (es.timed_out) {
    kill_now();
    es = wait_exit(Millis(5000));
  }
  return es;
}

void Process::kill_now() {
  if (pid_ > 0 && !status_) {
    ::kill(-pid_, SIGKILL);  // the group (helpers), then the child itself
    ::kill(pid_, SIGKILL);
  }
}

bool Process::write_stdin(const std::string& data) {
  if (stdin_fd_ < 0) return false;
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(stdin_fd_, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

void Process::close_stdin() {
  if (stdin_fd_ >= 0) ::close(stdin_fd_);
  stdin_fd_ = -1;
}

ExitStatus run_command(const std::vector<std::string>& argv, Millis timeout, std::string* out, std::string* err,
                       const std::vector<std::string>& env, const std::string& stdin_path) {
  Process::Options o;
  o.argv = argv;
  o.env = env;
  o.stdin_path = stdin_path;
  o.term_grace = Millis(500);
  Process p(o);
  ExitStatus es = p.wait_exit(timeout);
  if (es.timed_out) p.terminate();
  if (out) *out = p.read_stdout();
  if (err) *err = p.read_stderr();
  return es;
}

// ---- paths --------------------------------------------------------------------------------

std::string proxy_binary() { return std::string(FP_BINARY_DIR) + "/fipsproxy"; }
std::string apps_dir() { return std::string(FP_SOURCE_DIR) + "/tests/support/apps"; }

const std::string& test_certs() {
  static std::mutex mu;
  static std::unique_ptr<TempDir> dir;
  static std::string path;
  std::lock_guard<std::mutex> lock(mu);
  if (!dir) {
    auto d = std::make_unique<TempDir>("fpcerts");
    std::string out, err;
    ExitStatus es = run_command({"bash", std::string(FP_SOURCE_DIR) + "/tests/certs/gen.sh", d->path()},
                                Millis(30000), &out, &err);
    if (!es.exited || es.code != 0)
      throw std::runtime_error("tests/certs/gen.sh failed (" + es.str() + "): " + err);
    path = d->path();
    dir = std::move(d);
  }
  return path;
}

std::string cert(const std::string& name) { return test_certs() + "/" + name; }

// ---- ProxyProcess -------------------------------------------------------------------------

ProxyProcess::ProxyProcess(const std::string& config, const std::string& dir) : dir_(dir) {
  config_path_ = dir_ + "/proxy.toml";
  // The tests run as root, and the proxy refuses root unless told (issue #11): a config that
  // says nothing about [process] gets allow_root = true. Tests of the rule itself (hardening_test)
  // write their own [process] table.
  write_file(config_path_, config.find("[process]") == std::string::npos
                               ? config + "\n[process]\nallow_root = true\n"
                               : config);
}

ProxyProcess::~ProxyProcess() = default;  // Process kills it

bool ProxyProcess::start(Millis timeout) {
  Process::Options o;
  o.argv = {proxy_binary(), "run", "-c", config_path_};
  o.term_grace = Millis(5000);
  proc_ = std::make_unique<Process>(o);
  bool ready = false;
  wait_until(
      [&] {
        if (proc_->read_stderr().find("msg=ready") != std::string::npos) {
          ready = true;
          return true;
        }
        return !proc_->running();
      },
      timeout, Millis(20));
  return ready && proc_->running();
}

int ProxyProcess::fd_count() const {
  if (pid() <= 0) return -1;
  std::string p = "/proc/" + std::to_string(pid()) + "/fd";
  DIR* d = opendir(p.c_str());
  if (!d) return -1;
  int n = 0;
  while (dirent* e = readdir(d))
    if (e->d_name[0] != '.') ++n;
  closedir(d);
  return n;
}

std::string ProxyProcess::fd_listing() const {
  if (pid() <= 0) return "";
  std::string dir = "/proc/" + std::to_string(pid()) + "/fd";
  std::string r;
  DIR* d = opendir(dir.c_str());
  if (!d) return "";
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    char buf[512];
    ssize_t n = readlink((dir + "/" + e->d_name).c_str(), buf, sizeof(buf) - 1);
    buf[n > 0 ? n : 0] = '\0';
    r += std::string(e->d_name) + " -> " + buf + "\n";
  }
  closedir(d);
  return r;
}

long ProxyProcess::rss_kb() const {
  if (pid() <= 0) return -1;
  std::istringstream in(read_file("/proc/" + std::to_string(pid()) + "/status"));
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
  return -1;
}

int ProxyProcess::wait_fd_count(int target, Millis timeout) const {
  int last = -1;
  wait_until([&] { return (last = fd_count()) == target; }, timeout, Millis(20));
  return last;
}

bool ProxyProcess::wait_log(const std::string& needle, Millis timeout) const {
  return wait_until([&] { return stderr_text().find(needle) != std::string::npos; }, timeout, Millis(20));
}

// ---- AppServer ----------------------------------------------------------------------------

AppServer::AppServer(const std::string& listen, const std::vector<std::string>& mode) {
  Process::Options o;
  o.argv = {"python3", apps_dir() + "/app_server.py"};
  if (listen.rfind("unix:", 0) == 0) {
    o.argv.push_back("--unix");
    o.argv.push_back(listen.substr(5));
    endpoint_ = listen;
  } else {
    o.argv.push_back("--tcp");
    o.argv.push_back(listen.rfind("tcp:", 0) == 0 ? listen.substr(4) : listen);
  }
  for (const auto& m : mode) o.argv.push_back(m);
  o.term_grace = Millis(3000);
  proc_ = std::make_unique<Process>(o);
  std::string first;
  wait_until(
      [&] {
        std::string s = proc_->read_stdout();
        auto nl = s.find('\n');
        if (nl != std::string::npos) {
          first = s.substr(0, nl);
          return true;
        }
        return !proc_->running();
      },
      Millis(10000), Millis(10));
  if (first.empty()) return;
  port_ = std::atoi(first.c_str());
  if (endpoint_.empty()) {
    std::string l = o.argv[3];
    std::string host = l.substr(0, l.rfind(':'));
    endpoint_ = host + ":" + std::to_string(port_);
  }
}

std::vector<std::string> AppServer::events() const {
  std::vector<std::string> r;
  std::istringstream in(proc_->read_stdout());
  std::string line;
  bool first = true;
  while (std::getline(in, line)) {
    if (first) {
      first = false;
      continue;
    }
    if (!line.empty()) r.push_back(line);
  }
  return r;
}

int AppServer::accepts() const {
  int n = 0;
  for (const auto& e : events())
    if (e.find("\"event\": \"accept\"") != std::string::npos) ++n;
  return n;
}

// ---- JSON ---------------------------------------------------------------------------------

namespace {

struct Parser {
  const std::string& s;
  size_t i = 0;
  void ws() {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n')) ++i;
  }
  bool string(std::string& out) {
    if (i >= s.size() || s[i] != '"') return false;
    ++i;
    while (i < s.size() && s[i] != '"') {
      char c = s[i++];
      if (c != '\\') {
        out += c;
        continue;
      }
      if (i >= s.size()) return false;
      char e = s[i++];
      switch (e) {
        case 'n': out += '\n'; break;
        case 't': out += '\t'; break;
        case 'r': out += '\r'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'u': {
          if (i + 4 > s.size()) return false;
          unsigned cp = static_cast<unsigned>(std::stoul(s.substr(i, 4), nullptr, 16));
          i += 4;
          if (cp < 0x80) {
            out += static_cast<char>(cp);
          } else if (cp < 0x800) {
            out += static_cast<char>(0xC0 | (cp >> 6));
            out += static_cast<char>(0x80 | (cp & 0x3F));
          } else {
            out += static_cast<char>(0xE0 | (cp >> 12));
            out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (cp & 0x3F));
          }
          break;
        }
        default: out += e;
      }
    }
    if (i >= s.size()) return false;
    ++i;
    return true;
  }
  // Skips any value (for nested objects), returning its raw text.
  bool skip(std::string& raw) {
    size_t start = i;
    int depth = 0;
    for (size_t guard = 0; i < s.size() && guard < s.size() + 1; ++guard) {
      char c = s[i];
      if (c == '"') {
        std::string tmp;
        if (!string(tmp)) return false;
        if (depth == 0) break;
        continue;
      }
      if (c == '{' || c == '[') ++depth;
      if (c == '}' || c == ']') {
        if (depth == 0) break;
        --depth;
        ++i;
        if (depth == 0) break;
        continue;
      }
      if (depth == 0 && (c == ',')) break;
      ++i;
    }
    raw = s.substr(start, i - start);
    while (!raw.empty() && (raw.back() == ' ')) raw.pop_back();
    return true;
  }
  bool value(JsonValue& v) {
    ws();
    if (i >= s.size()) return false;
    char c = s[i];
    if (c == '"') {
      v.type = JsonValue::Type::String;
      return string(v.text);
    }
    if (c == '[') {
      size_t save = i;
      ++i;
      v.type = JsonValue::Type::Array;
      ws();
      if (i < s.size() && s[i] == ']') {
        ++i;
        return true;
      }
      for (size_t guard = 0; guard < s.size(); ++guard) {
        JsonValue item;
        if (!value(item)) return false;
        if (item.type == JsonValue::Type::Array || item.type == JsonValue::Type::Other) {
          i = save;
          v.type = JsonValue::Type::Other;
          v.items.clear();
          return skip(v.text);
        }
        v.items.push_back(item.text);
        ws();
        if (i < s.size() && s[i] == ',') {
          ++i;
          continue;
        }
        if (i < s.size() && s[i] == ']') {
          ++i;
          return true;
        }
        return false;
      }
      return false;
    }
    if (c == '{') {
      v.type = JsonValue::Type::Other;
      return skip(v.text);
    }
    size_t start = i;
    while (i < s.size() && s[i] != ',' && s[i] != '}' && s[i] != ']' && s[i] != ' ') ++i;
    v.text = s.substr(start, i - start);
    if (v.text == "null") v.type = JsonValue::Type::Null;
    else if (v.text == "true" || v.text == "false") v.type = JsonValue::Type::Bool;
    else v.type = JsonValue::Type::Number;
    return !v.text.empty();
  }
};

}  // namespace

std::optional<JsonObject> JsonObject::parse(const std::string& line) {
  JsonObject o;
  o.raw_ = line;
  Parser p{line};
  p.ws();
  if (p.i >= line.size() || line[p.i] != '{') return std::nullopt;
  ++p.i;
  p.ws();
  if (p.i < line.size() && line[p.i] == '}') return o;
  for (size_t guard = 0; guard < line.size(); ++guard) {
    p.ws();
    std::string key;
    if (!p.string(key)) return std::nullopt;
    p.ws();
    if (p.i >= line.size() || line[p.i] != ':') return std::nullopt;
    ++p.i;
    JsonValue v;
    if (!p.value(v)) return std::nullopt;
    o.fields_[key] = std::move(v);
    p.ws();
    if (p.i < line.size() && line[p.i] == ',') {
      ++p.i;
      continue;
    }
    if (p.i < line.size() && line[p.i] == '}') return o;
    return std::nullopt;
  }
  return std::nullopt;
}

std::string JsonObject::str(const std::string& key, const std::string& dflt) const {
  auto it = fields_.find(key);
  if (it == fields_.end() || it->second.type == JsonValue::Type::Null) return dflt;
  return it->second.text;
}

double JsonObject::num(const std::string& key, double dflt) const {
  auto it = fields_.find(key);
  if (it == fields_.end()) return dflt;
  const std::string& t = it->second.text;
  char* end = nullptr;
  double d = std::strtod(t.c_str(), &end);
  return (end && end != t.c_str()) ? d : dflt;
}

bool JsonObject::boolean(const std::string& key) const { return str(key) == "true"; }

std::vector<std::string> JsonObject::arr(const std::string& key) const {
  auto it = fields_.find(key);
  if (it == fields_.end()) return {};
  return it->second.items;
}

namespace {
// http1 listeners also write one {"kind":"request",...} line per request.
std::vector<JsonObject> read_log_lines(const std::string& path, bool requests) {
  std::vector<JsonObject> r;
  std::istringstream in(read_file(path));
  std::string line;
  while (std::getline(in, line)) {
    if ((line.rfind("{\"kind\":\"request\"", 0) == 0) != requests) continue;
    if (auto o = JsonObject::parse(line)) r.push_back(std::move(*o));
  }
  return r;
}
}  // namespace

std::vector<JsonObject> read_access_log(const std::string& path) { return read_log_lines(path, false); }

std::vector<JsonObject> read_request_log(const std::string& path) { return read_log_lines(path, true); }

std::vector<JsonObject> wait_request_log(const std::string& path, size_t n, Millis timeout) {
  std::vector<JsonObject> r;
  wait_until([&] { return (r = read_request_log(path)).size() >= n; }, timeout, Millis(20));
  return r;
}

std::vector<JsonObject> wait_access_log(const std::string& path, size_t n, Millis timeout) {
  std::vector<JsonObject> r;
  wait_until([&] { return (r = read_access_log(path)).size() >= n; }, timeout, Millis(20));
  return r;
}

// ---- sockets ------------------------------------------------------------------------------

Fd& Fd::operator=(Fd&& o) noexcept {
  if (this != &o) {
    reset();
    fd_ = o.fd_;
    o.fd_ = -1;
  }
  return *this;
}

void Fd::reset() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

Fd connect_tcp(const std::string& host, uint16_t port, Millis timeout) {
  bool v6 = host.find(':') != std::string::npos;
  Fd fd(socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd.valid()) return Fd();
  sockaddr_storage ss{};
  socklen_t len;
  if (v6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(port);
    if (inet_pton(AF_INET6, host.c_str(), &a->sin6_addr) != 1) return Fd();
    len = sizeof(*a);
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    a->sin_port = htons(port);
    if (inet_pton(AF_INET, host.c_str(), &a->sin_addr) != 1) return Fd();
    len = sizeof(*a);
  }
  if (connect(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    if (errno != EINPROGRESS) return Fd();
    pollfd p{fd.get(), POLLOUT, 0};
    if (poll(&p, 1, static_cast<int>(timeout.count())) != 1) return Fd();
    int err = 0;
    socklen_t el = sizeof(err);
    getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &el);
    if (err != 0) return Fd();
  }
  int flags = fcntl(fd.get(), F_GETFL);
  fcntl(fd.get(), F_SETFL, flags & ~O_NONBLOCK);
  return fd;
}

Fd connect_unix(const std::string& path) {
  Fd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return Fd();
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  if (path.size() >= sizeof(a.sun_path)) return Fd();
  std::memcpy(a.sun_path, path.c_str(), path.size() + 1);
  if (connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) return Fd();
  return fd;
}

bool send_all(int fd, const std::string& data, Millis timeout) {
  const auto deadline = Clock::now() + timeout;
  size_t off = 0;
  for (size_t guard = 0; off < data.size() && guard < data.size() + 1000; ++guard) {
    auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now()).count();
    if (left <= 0) return false;
    pollfd p{fd, POLLOUT, 0};
    if (poll(&p, 1, static_cast<int>(left)) != 1) return false;
    ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return off == data.size();
}

ReadResult read_until_close(int fd, Millis timeout, size_t max) {
  ReadResult r;
  const auto deadline = Clock::now() + timeout;
  char buf[65536];
  for (size_t guard = 0; guard < 1000000; ++guard) {
    auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now()).count();
    if (left <= 0) {
      r.timed_out = true;
      return r;
    }
    pollfd p{fd, POLLIN, 0};
    int pr = poll(&p, 1, static_cast<int>(left));
    if (pr == 0) {
      r.timed_out = true;
      return r;
    }
    if (pr < 0) {
      if (errno == EINTR) continue;
      r.reset = true;
      return r;
    }
    ssize_t n = ::recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (n == 0) {
      r.eof = true;
      return r;
    }
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      r.reset = true;
      return r;
    }
    r.data.append(buf, static_cast<size_t>(n));
    if (r.data.size() >= max) return r;
  }
  r.timed_out = true;
  return r;
}

}  // namespace fp::test
