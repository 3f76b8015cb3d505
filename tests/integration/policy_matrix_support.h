#pragma once
// Helpers for the FIPS policy matrix tests (FIPS-POLICY §11) against the real binary: the
// policy PKI (tests/certs/gen-policy.sh, cached under the build dir because RSA-8192 takes
// seconds), config rendering with profiles, a permissive `openssl s_server` (the positive
// control peer), and runners for openssl s_client, gnutls-cli and python ssl.

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <csignal>
#include <ctime>
#include <regex>
#include <sstream>

#include "tests/support/harness.h"

namespace fp::test::policy {

// The policy PKI: base identities (gen.sh) plus the p-* identities, one directory for all test
// processes (generated once, regenerated when older than 7 days; flock against parallel ctest).
inline const std::string& pki_dir() {
  static const std::string dir = [] {
    const std::string d = std::string(FP_BINARY_DIR) + "/policy-pki";
    const std::string stamp = d + "/.complete-policy";
    ::mkdir(d.c_str(), 0700);
    const int lock = ::open((std::string(FP_BINARY_DIR) + "/policy-pki.lock").c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0600);
    if (lock >= 0) ::flock(lock, LOCK_EX);
    struct stat st;
    if (::stat(stamp.c_str(), &st) == 0 && std::time(nullptr) - st.st_mtime > 7 * 86400) {
      remove_tree(d);
      ::mkdir(d.c_str(), 0700);
    }
    std::string out, err;
    ExitStatus es = run_command({std::string(FP_SOURCE_DIR) + "/tests/certs/gen-policy.sh", d}, Millis(120000), &out, &err);
    if (lock >= 0) ::close(lock);
    if (!es.exited || es.code != 0) throw std::runtime_error("gen-policy.sh failed: " + es.str() + " " + err);
    return d;
  }();
  return dir;
}
inline std::string pp(const std::string& name) { return pki_dir() + "/" + name; }

inline std::string addr(uint16_t port) { return "127.0.0.1:" + std::to_string(port); }

// ---- config ---------------------------------------------------------------------------------

struct PTls {
  std::string cert = "server", key;  // names in pki_dir(); key defaults to cert
  std::string chain_file;            // a PEM chain to use instead of <cert>.pem
  std::string ca = "ca";
  bool mtls = true;                  // server role
  std::string profile;               // "" = strict default
  std::vector<std::string> allow_spiffe, allow_dns;
  std::string sni;
};
struct PListener {
  std::string name, address, cluster = "app";
  std::optional<PTls> tls;
  std::string mode;  // "" = tcp (the default)
  PListener() = default;
  PListener(std::string n, std::string a, std::string c = "app", std::optional<PTls> t = std::nullopt,
            std::string m = "")
      : name(std::move(n)), address(std::move(a)), cluster(std::move(c)), tls(std::move(t)), mode(std::move(m)) {}
};
struct PCluster {
  std::string name = "app";
  std::string endpoint;
  std::optional<PTls> tls;
};

inline std::string render(const std::string& access_log, const std::vector<PListener>& ls,
                          const std::vector<PCluster>& cs, const std::string& extra_top = "") {
  std::ostringstream o;
  auto tls = [&](const std::string& table, const PTls& t, bool server) {
    o << "  [" << table << ".tls]\n";
    o << "  cert = \"" << (t.chain_file.empty() ? pp(t.cert + ".pem") : pp(t.chain_file)) << "\"\n";
    o << "  key = \"" << pp((t.key.empty() ? t.cert : t.key) + ".key") << "\"\n";
    o << "  ca = \"" << pp(t.ca + ".pem") << "\"\n";
    if (server) o << "  require_client_cert = " << (t.mtls ? "true" : "false") << "\n";
    if (!t.profile.empty()) o << "  profile = \"" << t.profile << "\"\n";
    if (!t.allow_spiffe.empty()) o << "  allow_spiffe = " << toml_list(t.allow_spiffe) << "\n";
    if (!t.allow_dns.empty()) o << "  allow_dns = " << toml_list(t.allow_dns) << "\n";
    if (!t.sni.empty()) o << "  sni = \"" << t.sni << "\"\n";
  };
  o << "workers = 1\nlog_level = \"info\"\naccess_log = \"" << access_log << "\"\ndrain_timeout = \"2s\"\n" << extra_top;
  for (const auto& l : ls) {
    o << "\n[[listener]]\nname = \"" << l.name << "\"\naddress = \"" << l.address << "\"\ncluster = \"" << l.cluster
      << "\"\nhandshake_timeout = \"3s\"\n";
    if (!l.mode.empty()) o << "mode = \"" << l.mode << "\"\n";
    if (l.tls) tls("listener", *l.tls, true);
  }
  for (const auto& c : cs) {
    o << "\n[[cluster]]\nname = \"" << c.name << "\"\nendpoints = [\"" << c.endpoint << "\"]\nconnect_timeout = \"2s\"\n";
    if (c.tls) tls("cluster", *c.tls, false);
  }
  return o.str();
}

// ---- the admin endpoint (README "Admin endpoint") ------------------------------------------

struct HttpReply {
  int status = 0;
  std::string body;
};

// One request over the admin Unix socket, parsed just enough for the tests.
inline HttpReply admin_request(const std::string& sock, const std::string& method, const std::string& path) {
  HttpReply r;
  Fd fd = connect_unix(sock);
  if (!fd.valid()) return r;
  if (!send_all(fd.get(), method + " " + path + " HTTP/1.1\r\nHost: admin\r\n\r\n", Millis(2000))) return r;
  ReadResult rr = read_until_close(fd.get(), Millis(5000));
  const std::string& d = rr.data;
  if (d.rfind("HTTP/1.1 ", 0) != 0 || d.size() < 12) return r;
  r.status = std::stoi(d.substr(9, 3));
  const size_t hdr_end = d.find("\r\n\r\n");
  if (hdr_end != std::string::npos) r.body = d.substr(hdr_end + 4);
  return r;
}

// The value of one Prometheus series line ("name{labels} value"), or -1 when absent.
inline double prom_value(const std::string& text, const std::string& series_key) {
  size_t pos = 0;
  while ((pos = text.find(series_key + " ", pos)) != std::string::npos) {
    if (pos == 0 || text[pos - 1] == '\n') return std::stod(text.substr(pos + series_key.size() + 1));
    ++pos;
  }
  return -1;
}

// The series key of a per-reason policy rejection: server role (termination, by listener) or
// client role (origination, by cluster).
inline std::string rejection_key(const std::string& name, const std::string& reason, bool upstream = false) {
  return std::string("fipsproxy_tls_policy_rejections_total{") + (upstream ? "cluster" : "listener") + "=\"" + name +
         "\",role=\"" + (upstream ? "client" : "server") + "\",reason=\"" + reason + "\"}";
}

// A running proxy plus its access log and admin socket.
struct PProxy {
  TempDir dir{"fpp"};
  std::string access_log = dir.file("access.log");
  std::string admin_sock = short_uds_path("fppa");
  std::unique_ptr<ProxyProcess> proc;
  int generation = 1;
  std::string admin_block() const { return "\n[admin]\naddress = \"unix:" + admin_sock + "\"\n"; }
  bool start(const std::vector<PListener>& ls, const std::vector<PCluster>& cs) {
    proc = std::make_unique<ProxyProcess>(render(access_log, ls, cs, admin_block()), dir.path());
    return proc->start();
  }
  // Rewrites the config and reloads with SIGHUP; true once the new generation is serving.
  bool reload(const std::vector<PListener>& ls, const std::vector<PCluster>& cs) {
    write_file(proc->config_path(), render(access_log, ls, cs, admin_block()));
    proc->signal(SIGHUP);
    const std::string want = "generation=" + std::to_string(generation + 1);
    if (!wait_until([&] { return log().find(want) != std::string::npos; }, Millis(10000))) return false;
    ++generation;
    return true;
  }
  std::string log() const { return proc ? proc->stderr_text() : ""; }
  // The n-th access-log entry (1-based), waiting for it.
  JsonObject entry(size_t n) const {
    auto v = wait_access_log(access_log, n, Millis(5000));
    return v.size() >= n ? v[n - 1] : JsonObject();
  }
  size_t entries() const { return read_access_log(access_log).size(); }
  std::string metrics() const { return admin_request(admin_sock, "GET", "/metrics").body; }
  // A counter's value; an absent series counts as 0 (counters appear on first increment).
  double counter(const std::string& key) const {
    const double v = prom_value(metrics(), key);
    return v < 0 ? 0 : v;
  }
  // Waits (bounded) for `key` to reach at least `target`, then lets a straggler land and
  // returns the final value (the caller asserts it is exactly `target`).
  double counter_settled(const std::string& key, double target) const {
    wait_until([&] { return counter(key) >= target; }, Millis(5000), Millis(20));
    wait_until([] { return false; }, Millis(150), Millis(50));
    return counter(key);
  }
};

// ---- tools ------------------------------------------------------------------------------------

struct Tool {
  ExitStatus status;
  std::string out, err;
  std::string all() const { return out + err; }
  bool exited0() const { return status.exited && status.code == 0; }
};

inline bool tool_installed(const std::string& name) {
  std::string out;
  ExitStatus es = run_command({"sh", "-c", "command -v " + name}, Millis(5000), &out);
  return es.exited && es.code == 0 && !out.empty();
}

// openssl s_client; `stdin_path` is what it sends after the handshake.
inline Tool s_client(uint16_t port, std::vector<std::string> args, std::vector<std::string> env = {},
                     const std::string& stdin_path = "/dev/null") {
  std::vector<std::string> argv = {"openssl", "s_client", "-connect", addr(port), "-servername", "server.example.org",
                                   "-CAfile", pp("ca.pem")};
  argv.insert(argv.end(), args.begin(), args.end());
  Tool t;
  t.status = run_command(argv, Millis(15000), &t.out, &t.err, env, stdin_path);
  return t;
}
// Like s_client, but stdin stays open `linger_s` seconds after the request, so TLS 1.3
// NewSessionTickets are read (and -sess_out has a ticket) before the client closes.
inline Tool s_client_linger(uint16_t port, std::vector<std::string> args, const std::string& stdin_path,
                            const std::string& linger_s = "0.7") {
  std::string cmd = "(cat '" + stdin_path + "'; sleep " + linger_s + ") | openssl s_client -connect " + addr(port) +
                    " -servername server.example.org -CAfile '" + pp("ca.pem") + "'";
  for (const std::string& a : args) cmd += " '" + a + "'";
  Tool t;
  t.status = run_command({"sh", "-c", cmd}, Millis(15000), &t.out, &t.err);
  return t;
}
// The client certificate for mTLS listeners.
inline std::vector<std::string> with_cert(std::vector<std::string> args, const std::string& leaf = "client") {
  args.insert(args.end(), {"-cert", pp(leaf + ".pem"), "-key", pp(leaf + ".key")});
  return args;
}

// "Cipher is X" with X not (NONE): the handshake completed from the client's view.
inline std::string sc_cipher(const Tool& t) {
  std::smatch m;
  static const std::regex re(R"(Cipher is ([A-Za-z0-9_\-]+))");
  std::string s = t.out;
  std::string last;
  for (auto it = std::sregex_iterator(s.begin(), s.end(), re); it != std::sregex_iterator(); ++it) last = (*it)[1];
  return last;
}
// "SSL alert number N" / "alert number N"; -1 when none.
inline int sc_alert(const Tool& t) {
  std::smatch m;
  static const std::regex re(R"(alert number (\d+))");
  const std::string s = t.all();
  if (std::regex_search(s, m, re)) return std::stoi(m[1]);
  return -1;
}
// Success: exit 0, a cipher, no alert. (A TLS 1.3 failure after the ServerHello still prints
// "Cipher is <suite>", so the cipher line alone proves nothing.)
// The handshake completed when a cipher was printed and either no alert came or the server's
// signature was verified (a "Peer signature type" line; an alert after the handshake, e.g. from
// the control server reading the request, does not undo it).
inline bool sc_ok(const Tool& t) {
  const std::string c = sc_cipher(t);
  if (c.empty() || c == "NONE" || t.out.find("Cipher is (NONE)") != std::string::npos) return false;
  return sc_alert(t) < 0 || t.out.find("Peer signature type") != std::string::npos;
}

inline std::string noems_conf(const TempDir& d) {
  const std::string p = d.file("noems.cnf");
  write_file(p,
             "openssl_conf = oc\n[oc]\nssl_conf = sc\n[sc]\nsystem_default = system_default_sect\n"
             "[system_default_sect]\nOptions = -ExtendedMasterSecret\n");
  return p;
}

// A permissive `openssl s_server` (the positive-control peer, or a deliberately bad upstream).
class SServer {
 public:
  // `args` are added after the defaults; `leaf` is its certificate.
  SServer(const std::string& leaf, std::vector<std::string> args, std::vector<std::string> env = {},
          bool add_permissive = true) {
    port_ = free_tcp_port();
    Process::Options o;
    o.argv = {"openssl", "s_server", "-4", "-accept", std::to_string(port_), "-cert", pp(leaf + ".pem"), "-key",
              pp(leaf + ".key")};
    if (add_permissive) {
      o.argv.insert(o.argv.end(), {"-cipher", "ALL:@SECLEVEL=0", "-ciphersuites",
                                   "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"});
    }
    o.argv.insert(o.argv.end(), args.begin(), args.end());
    o.env = std::move(env);
    o.stdin_pipe = true;
    proc_ = std::make_unique<Process>(o);
    ready_ = wait_until([&] { return proc_->read_stdout().find("ACCEPT") != std::string::npos; }, Millis(10000));
  }
  bool ready() const { return ready_; }
  uint16_t port() const { return port_; }
  std::string output() const { return proc_->read_stdout() + proc_->read_stderr(); }
  Process& proc() { return *proc_; }

 private:
  uint16_t port_ = 0;
  bool ready_ = false;
  std::unique_ptr<Process> proc_;
};

}  // namespace fp::test::policy
