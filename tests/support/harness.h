#pragma once
// Integration-test harness: renders fipsproxy configs, runs the proxy and the peer scripts.
// Header-only, std + POSIX (through support.h).

#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/support.h"

namespace fp::test {

inline std::string toml_list(const std::vector<std::string>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", \"" : "\"") + v[i] + "\"";
  return s + "]";
}

struct TlsSpec {
  std::string cert, key, ca = "ca.pem";  // names in test_certs(), made absolute when rendered
  std::optional<bool> require_client_cert;
  std::vector<std::string> allow_spiffe, allow_dns, alpn;
  std::string sni;
};

struct ListenerSpec {
  std::string name = "inbound";
  std::string address;  // "127.0.0.1:P", "[::1]:P", "unix:/p"
  std::string cluster = "app";
  std::optional<TlsSpec> tls;
  int max_connections = 100;
  std::string handshake_timeout = "2s";
  std::string idle_timeout = "300s";
};

struct ClusterSpec {
  std::string name = "app";
  std::vector<std::string> endpoints;
  std::optional<TlsSpec> tls;
  std::string connect_timeout = "1s";
  // http1 keep-alive pool off by default, so fd and connection baselines return exactly after
  // each test (tests/integration/pool_test.cc and egress_test.cc cover the pool).
  int max_idle_connections = 0;
};

// The usual mTLS server block: server.pem, clients from ca.pem, the test client's SPIFFE ID.
inline TlsSpec server_tls() {
  TlsSpec t;
  t.cert = "server.pem";
  t.key = "server.key";
  t.require_client_cert = true;
  t.allow_spiffe = {"spiffe://example.org/ns/default/sa/client"};
  return t;
}
// The usual origination block: client.pem, expecting server.example.org.
inline TlsSpec client_tls() {
  TlsSpec t;
  t.cert = "client.pem";
  t.key = "client.key";
  t.sni = "server.example.org";
  t.allow_dns = {"server.example.org"};
  return t;
}

inline void render_tls(std::ostringstream& o, const std::string& table, const TlsSpec& t) {
  o << "  [" << table << ".tls]\n";
  o << "  cert = \"" << cert(t.cert) << "\"\n";
  o << "  key = \"" << cert(t.key) << "\"\n";
  o << "  ca = \"" << cert(t.ca) << "\"\n";
  if (t.require_client_cert) o << "  require_client_cert = " << (*t.require_client_cert ? "true" : "false") << "\n";
  if (!t.allow_spiffe.empty()) o << "  allow_spiffe = " << toml_list(t.allow_spiffe) << "\n";
  if (!t.allow_dns.empty()) o << "  allow_dns = " << toml_list(t.allow_dns) << "\n";
  if (!t.alpn.empty()) o << "  alpn = " << toml_list(t.alpn) << "\n";
  if (!t.sni.empty()) o << "  sni = \"" << t.sni << "\"\n";
}

inline std::string render_config(const std::string& access_log, const std::vector<ListenerSpec>& listeners,
                                 const std::vector<ClusterSpec>& clusters, const std::string& drain_timeout = "5s",
                                 const std::string& extra_top = "") {
  std::ostringstream o;
  o << "workers = 1\nlog_level = \"info\"\n";
  o << "access_log = \"" << access_log << "\"\n";
  o << "drain_timeout = \"" << drain_timeout << "\"\n" << extra_top;
  o << "[limits]\nhigh_watermark = \"1MiB\"\nlow_watermark = \"256KiB\"\n";
  for (const auto& l : listeners) {
    o << "\n[[listener]]\n";
    o << "name = \"" << l.name << "\"\naddress = \"" << l.address << "\"\ncluster = \"" << l.cluster << "\"\n";
    o << "max_connections = " << l.max_connections << "\n";
    o << "handshake_timeout = \"" << l.handshake_timeout << "\"\nidle_timeout = \"" << l.idle_timeout << "\"\n";
    if (l.tls) render_tls(o, "listener", *l.tls);
  }
  for (const auto& c : clusters) {
    o << "\n[[cluster]]\n";
    o << "name = \"" << c.name << "\"\nendpoints = " << toml_list(c.endpoints) << "\n";
    o << "connect_timeout = \"" << c.connect_timeout << "\"\n";
    o << "max_idle_connections = " << c.max_idle_connections << "\n";
    if (c.tls) render_tls(o, "cluster", *c.tls);
  }
  return o.str();
}

// One proxy with its own temp dir and access log. Checks that the fd count returns to the
// post-start baseline (call check_fds_at_baseline() at the end of a test).
struct ProxyEnv {
  TempDir dir{"fpi"};
  std::string access_log = dir.file("access.log");
  std::unique_ptr<ProxyProcess> proxy;
  int fd_baseline = -1;
  std::string fd_baseline_listing;
  int fd_counted_baseline = -1;
  long rss_baseline = -1;

  bool start(const std::vector<ListenerSpec>& l, const std::vector<ClusterSpec>& c,
             const std::string& drain_timeout = "5s") {
    proxy = std::make_unique<ProxyProcess>(render_config(access_log, l, c, drain_timeout), dir.path());
    bool ok = proxy->start();
    if (ok) {
      // Let start-up settle (lazily opened files, worker threads).
      wait_until([] { return false; }, Millis(100), Millis(50));
      fd_baseline = proxy->fd_count();
      fd_baseline_listing = proxy->fd_listing();
      fd_counted_baseline = counted_fds();
      rss_baseline = proxy->rss_kb();
    }
    return ok;
  }
  // fds other than libuv's EMFILE reserve fds. libuv keeps one reserve fd per loop: it opens
  // /dev/null the first time a stream is initialised on that loop (for a worker fed by
  // hand-off: its first connection), and after an EMFILE accept it closes the reserve, accepts
  // and closes what is queued, then reopens the reserve on "/" (uv__emfile_trick in libuv's
  // src/unix/stream.c: after RELIABILITY B15 a loop's /dev/null has become a "/"). One fd per
  // loop, not a leak, so neither is counted. fipsproxy itself opens neither path; fds on "/"
  // beyond one per thread (every loop has its own thread) are counted, so a leak still shows.
  int counted_fds() const {
    if (!proxy) return -1;
    std::string l = proxy->fd_listing();
    if (l.empty()) return -1;
    long threads = 0;
    {
      std::istringstream st(read_file("/proc/" + std::to_string(proxy->pid()) + "/status"));
      std::string s;
      while (std::getline(st, s))
        if (s.rfind("Threads:", 0) == 0) threads = std::strtol(s.c_str() + 8, nullptr, 10);
    }
    int n = 0;
    long roots = 0;
    size_t pos = 0;
    while (pos < l.size()) {
      size_t nl = l.find('\n', pos);
      if (nl == std::string::npos) nl = l.size();
      std::string line = l.substr(pos, nl - pos);
      pos = nl + 1;
      const size_t arrow = line.find(" -> ");
      if (arrow == std::string::npos) continue;
      const std::string target = line.substr(arrow + 4);
      if (target == "/dev/null") continue;
      if (target == "/" && ++roots <= threads) continue;
      ++n;
    }
    return n;
  }
  // Waits (bounded) for counted_fds() to return to its post-start value; returns the last count.
  int wait_fds_at_baseline(Millis timeout = Millis(5000)) const {
    int last = -1;
    wait_until([&] { return (last = counted_fds()) == fd_counted_baseline; }, timeout, Millis(20));
    return last;
  }
  std::string log() const { return proxy ? proxy->stderr_text() : ""; }
  std::vector<JsonObject> access(size_t n, Millis timeout = Millis(5000)) const {
    return wait_access_log(access_log, n, timeout);
  }
  // The access-log entry that the n-th (1-based) closed connection wrote, after waiting.
  JsonObject entry(size_t n, Millis timeout = Millis(5000)) const {
    auto v = access(n, timeout);
    return v.size() >= n ? v[n - 1] : JsonObject();
  }
};

// Result of tests/support/apps/tls_client.py.
struct ClientResult {
  ExitStatus status;
  JsonObject json;
  std::string out, err;
  bool ok() const { return json.boolean("ok"); }
  std::string describe() const { return "client: " + status.str() + " " + out + err; }
};

inline std::vector<std::string> tls_args(const std::string& client_cert) {
  std::vector<std::string> a = {"--tls", "--ca", cert("ca.pem")};
  if (!client_cert.empty()) {
    a.insert(a.end(), {"--cert", cert(client_cert + ".pem"), "--key", cert(client_cert + ".key")});
  }
  return a;
}

inline ClientResult run_client(const std::string& endpoint, std::vector<std::string> args,
                               Millis timeout = Millis(30000)) {
  std::vector<std::string> argv = {"python3", apps_dir() + "/tls_client.py"};
  if (endpoint.rfind("unix:", 0) == 0) {
    argv.insert(argv.end(), {"--unix", endpoint.substr(5)});
  } else {
    argv.insert(argv.end(), {"--connect", endpoint});
  }
  argv.insert(argv.end(), args.begin(), args.end());
  auto secs = std::to_string(static_cast<double>(timeout.count()) / 1000.0 - 0.5);
  argv.insert(argv.end(), {"--timeout", secs});
  ClientResult r;
  r.status = run_command(argv, timeout + Millis(5000), &r.out, &r.err);
  if (auto j = JsonObject::parse(r.out)) r.json = *j;
  return r;
}

// Starts the client in the background (for concurrent scenarios).
inline std::unique_ptr<Process> spawn_client(const std::string& endpoint, std::vector<std::string> args) {
  Process::Options o;
  o.argv = {"python3", apps_dir() + "/tls_client.py"};
  if (endpoint.rfind("unix:", 0) == 0) {
    o.argv.insert(o.argv.end(), {"--unix", endpoint.substr(5)});
  } else {
    o.argv.insert(o.argv.end(), {"--connect", endpoint});
  }
  o.argv.insert(o.argv.end(), args.begin(), args.end());
  return std::make_unique<Process>(o);
}

inline ClientResult client_result(Process& p, Millis timeout) {
  ClientResult r;
  r.status = p.wait_exit(timeout);
  r.out = p.read_stdout();
  r.err = p.read_stderr();
  if (auto j = JsonObject::parse(r.out)) r.json = *j;
  return r;
}

// Sum of the sizes of DIR/conn-*.bin (what a `record` app received), and how many files.
inline size_t recorded_bytes(const std::string& dir, int* files = nullptr) {
  size_t total = 0;
  int n = 0;
  for (int i = 1; i < 1000; ++i) {
    std::string p = dir + "/conn-" + std::to_string(i) + ".bin";
    if (!file_exists(p)) break;
    total += read_file(p).size();
    ++n;
  }
  if (files) *files = n;
  return total;
}

}  // namespace fp::test
