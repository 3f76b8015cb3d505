// Process hardening (issue #11, proxy/sandbox.h): the root rule, dropping to [process] user,
// NoNewPrivs + seccomp on every thread (a forbidden syscall kills the process in a test build),
// no core files and not dumpable, private-key file permissions. The suite runs as root; the
// tests that need root say so and skip otherwise.

#include <dirent.h>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <csignal>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/harness.h"

using namespace fp::test;
using namespace std::chrono_literals;

namespace {

constexpr uid_t kNobody = 65534;
constexpr gid_t kNogroup = 65534;

bool contains(const std::string& s, const std::string& needle) { return s.find(needle) != std::string::npos; }

// "Uid:\t0\t0\t0\t0" -> "0 0 0 0" for field "Uid".
std::string status_field(pid_t pid, const std::string& field) {
  const std::string text = read_file("/proc/" + std::to_string(pid) + "/status");
  const size_t at = text.find("\n" + field + ":");
  if (at == std::string::npos) return "";
  const size_t start = at + field.size() + 2, end = text.find('\n', start);
  std::string v = text.substr(start, end - start);
  for (char& c : v) {
    if (c == '\t') c = ' ';
  }
  while (!v.empty() && v.front() == ' ') v.erase(0, 1);
  while (!v.empty() && v.back() == ' ') v.pop_back();
  return v;
}

std::vector<std::string> list_dir(const std::string& path) {
  std::vector<std::string> out;
  if (DIR* d = ::opendir(path.c_str())) {
    while (dirent* e = ::readdir(d)) {
      if (e->d_name[0] != '.') out.push_back(e->d_name);
    }
    ::closedir(d);
  }
  return out;
}

void make_dir(const std::string& path) { REQUIRE((::mkdir(path.c_str(), 0755) == 0 || errno == EEXIST)); }

// The TLS files of test_certs(), copied into `dir` and owned by nobody:nogroup (keys 0600), so a
// proxy running as nobody can read them on reload and rotation.
struct NobodyCerts {
  std::string dir;
  explicit NobodyCerts(const TempDir& t) : dir(t.file("pki")) {
    make_dir(dir);
    for (const char* f : {"server.pem", "ca.pem"}) write_file(dir + "/" + f, read_file(cert(f)), 0644);
    write_file(dir + "/server.key", read_file(cert("server.key")), 0600);
    for (const char* f : {"", "/server.pem", "/ca.pem", "/server.key"}) {
      REQUIRE(::chown((dir + f).c_str(), kNobody, kNogroup) == 0);
    }
  }
};

// An mTLS listener on 127.0.0.1:port in front of `endpoint`; `pki` holds server.pem/.key, ca.pem.
std::string mtls_config(const std::string& pki, uint16_t port, const std::string& endpoint,
                        const std::string& access_log, const std::string& process_table) {
  return "workers = 2\naccess_log = \"" + access_log + "\"\ndrain_timeout = \"2s\"\n" + process_table +
         "\n[[listener]]\nname = \"in\"\naddress = \"127.0.0.1:" + std::to_string(port) +
         "\"\ncluster = \"app\"\n  [listener.tls]\n  cert = \"" + pki + "/server.pem\"\n  key = \"" + pki +
         "/server.key\"\n  ca = \"" + pki + "/ca.pem\"\n  allow_spiffe = [\"spiffe://example.org/ns/default/sa/client\"]\n" +
         "[[cluster]]\nname = \"app\"\nendpoints = [\"" + endpoint + "\"]\n";
}

ClientResult ping(uint16_t port) {
  auto a = tls_args("client");
  a.insert(a.end(), {"--send-text", "ping through a hardened proxy\\n", "--half-close"});
  return run_client("127.0.0.1:" + std::to_string(port), a, Millis(15000));
}

std::string testhooks_binary() { return std::string(FP_BINARY_DIR) + "/fipsproxy_testhooks"; }

std::unique_ptr<Process> start(const std::string& binary, const std::string& config_file,
                               std::vector<std::string> env = {}) {
  Process::Options o;
  o.argv = {binary, "run", "-c", config_file};
  o.env = std::move(env);
  o.term_grace = Millis(5000);
  return std::make_unique<Process>(o);
}

bool wait_ready(Process& p) {
  return wait_until([&] { return contains(p.read_stderr(), "msg=ready") || !p.running(); }, 10s) &&
         contains(p.read_stderr(), "msg=ready") && p.running();
}

}  // namespace

TEST_CASE("hardening: as root without [process] user or allow_root the proxy refuses to start, allow_root starts it",
          "[fast][hardening]") {
  if (::geteuid() != 0) {
    WARN("not running as root: the root rule cannot be exercised");
    return;
  }
  TempDir d("fphr1");
  AppServer app("tcp:127.0.0.1:0", {"echo"});
  REQUIRE(app.ok());
  const uint16_t port = free_tcp_port();
  const std::string cfg = d.file("proxy.toml");
  write_file(cfg, mtls_config(std::string(test_certs()), port, app.endpoint(), "off", ""));
  std::string out, err;
  ExitStatus st = run_command({proxy_binary(), "run", "-c", cfg}, 15s, &out, &err);
  INFO(st.str() << "\n" << err);
  CHECK(st.exited);
  CHECK(st.code == 2);
  CHECK(contains(err, "fipsproxy: refusing to run as root: set [process] user = \"<account>\""));
  CHECK(contains(err, "or allow_root = true"));
  CHECK_FALSE(connect_tcp("127.0.0.1", port, Millis(300)).valid());  // never bound
  // `check` validates the config, not who runs it: ok.
  st = run_command({proxy_binary(), "check", "-c", cfg}, 15s, &out, &err);
  CHECK(st.code == 0);

  // Control: the same config with allow_root = true starts and serves, as root.
  write_file(cfg, mtls_config(std::string(test_certs()), port, app.endpoint(), "off", "[process]\nallow_root = true\n"));
  auto p = start(proxy_binary(), cfg);
  REQUIRE(wait_ready(*p));
  CHECK(status_field(p->pid(), "Uid") == "0 0 0 0");
  ClientResult r = ping(port);
  INFO(r.describe());
  CHECK(r.ok());
  CHECK(r.json.str("recv_head") == "ping through a hardened proxy\n");
}

TEST_CASE("hardening: an unknown [process] user is a config error in run and check", "[fast][hardening]") {
  TempDir d("fphr2");
  const std::string cfg = d.file("proxy.toml");
  write_file(cfg, mtls_config(std::string(test_certs()), free_tcp_port(), "127.0.0.1:9", "off",
                              "[process]\nuser = \"fp-no-such-user\"\n"));
  for (const char* cmd : {"run", "check"}) {
    std::string out, err;
    ExitStatus st = run_command({proxy_binary(), cmd, "-c", cfg}, 15s, &out, &err);
    INFO(cmd << ": " << st.str() << "\n" << err);
    CHECK(st.code == 2);
    CHECK(contains(err, cfg + ":5:8: process.user: no such user 'fp-no-such-user'"));
  }
}

TEST_CASE("hardening: user = nobody drops every id after binding, serves mTLS, reloads, no capabilities",
          "[fast][hardening]") {
  if (::geteuid() != 0 || ::getpwnam("nobody") == nullptr) {
    WARN("needs root and a 'nobody' account: skipped");
    return;
  }
  TempDir d("fphr3");
  REQUIRE(::chown(d.path().c_str(), kNobody, kNogroup) == 0);
  NobodyCerts pki(d);
  AppServer app("tcp:127.0.0.1:0", {"echo"});
  REQUIRE(app.ok());
  const uint16_t port = free_tcp_port();
  const std::string cfg = d.file("proxy.toml"), log = d.file("access.log");
  write_file(cfg, mtls_config(pki.dir, port, app.endpoint(), log, "[process]\nuser = \"nobody\"\n"));
  auto p = start(proxy_binary(), cfg);
  REQUIRE(wait_ready(*p));
  const std::string stderr_text = p->read_stderr();
  INFO(stderr_text);
  CHECK(contains(stderr_text, "msg=\"process hardened\" user=nobody group=nogroup seccomp=kill"));
  // Every id of every kind, and the supplementary groups; no capability left.
  CHECK(status_field(p->pid(), "Uid") == "65534 65534 65534 65534");
  CHECK(status_field(p->pid(), "Gid") == "65534 65534 65534 65534");
  CHECK(status_field(p->pid(), "Groups") == "65534");
  CHECK(status_field(p->pid(), "CapEff") == "0000000000000000");
  CHECK(status_field(p->pid(), "CapPrm") == "0000000000000000");
  CHECK(status_field(p->pid(), "NoNewPrivs") == "1");
  CHECK(status_field(p->pid(), "Seccomp") == "2");
  // The same for every thread (workers existed before the drop).
  int threads = 0;
  for (const std::string& tid : list_dir("/proc/" + std::to_string(p->pid()) + "/task")) {
    const std::string st = read_file("/proc/" + std::to_string(p->pid()) + "/task/" + tid + "/status");
    CHECK(contains(st, "\nUid:\t65534\t65534\t65534\t65534\n"));
    CHECK(contains(st, "\nSeccomp:\t2\n"));
    ++threads;
  }
  CHECK(threads >= 3);  // control + 2 workers
  // The access log was created as root and handed over, so reloads can reopen it.
  struct stat st;
  REQUIRE(::stat(log.c_str(), &st) == 0);
  CHECK(st.st_uid == kNobody);

  ClientResult r = ping(port);
  INFO(r.describe());
  CHECK(r.ok());
  CHECK(r.json.str("recv_head") == "ping through a hardened proxy\n");
  // SIGHUP as nobody under seccomp: config, certificate and key re-read, new SSL_CTX, access
  // log reopened.
  p->signal(SIGHUP);
  CHECK(wait_until([&] { return contains(p->read_stderr(), "msg=reloaded"); }, 10s));
  CHECK_FALSE(contains(p->read_stderr(), "reload failed"));
  r = ping(port);
  CHECK(r.ok());
  CHECK(p->running());
  ExitStatus end = p->terminate();
  CHECK(end.exited);
  CHECK(end.code == 0);
}

TEST_CASE("hardening: dropping to a user who cannot read the key refuses to start, naming the file",
          "[fast][hardening]") {
  if (::geteuid() != 0 || ::getpwnam("nobody") == nullptr) {
    WARN("needs root and a 'nobody' account: skipped");
    return;
  }
  TempDir d("fphr4");
  // test_certs() keys are root's, 0600: fine for root, unreadable by nobody after the drop, and
  // rotation would fail later. Refused now instead.
  const uint16_t port = free_tcp_port();
  const std::string cfg = d.file("proxy.toml");
  write_file(cfg, mtls_config(std::string(test_certs()), port, "127.0.0.1:9", "off", "[process]\nuser = \"nobody\"\n"));
  std::string out, err;
  ExitStatus st = run_command({proxy_binary(), "run", "-c", cfg}, 15s, &out, &err);
  INFO(st.str() << "\n" << err);
  CHECK(st.code == 2);
  CHECK(contains(err, cert("server.key") + ": not readable by nobody:nogroup after dropping privileges"));
  CHECK(contains(err, "fipsproxy: not started"));
}

TEST_CASE("hardening: started as a non-root user the proxy is not dumpable and has no core limit",
          "[fast][hardening]") {
  if (::geteuid() != 0 || !file_exists("/usr/bin/setpriv")) {
    WARN("needs root and setpriv (util-linux): skipped");
    return;
  }
  TempDir d("fphr5");
  REQUIRE(::chown(d.path().c_str(), kNobody, kNogroup) == 0);
  NobodyCerts pki(d);
  const uint16_t port = free_tcp_port();
  const std::string cfg = d.file("proxy.toml");
  write_file(cfg, mtls_config(pki.dir, port, "127.0.0.1:9", "off", ""));
  const std::vector<std::string> as_nobody = {"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"};
  // Control: an ordinary process of nobody's is dumpable, so its /proc/PID files (environ, mem,
  // fd/, ...) belong to nobody.
  Process::Options so;
  so.argv = as_nobody;
  so.argv.insert(so.argv.end(), {"sleep", "10"});
  Process sleeper(so);
  REQUIRE(wait_until([&] { return status_field(sleeper.pid(), "Uid") == "65534 65534 65534 65534"; }, 5s));
  struct stat st;
  REQUIRE(::stat(("/proc/" + std::to_string(sleeper.pid()) + "/environ").c_str(), &st) == 0);
  CHECK(st.st_uid == kNobody);

  Process::Options o;
  o.argv = as_nobody;
  o.argv.insert(o.argv.end(), {proxy_binary(), "run", "-c", cfg});
  Process p(o);
  REQUIRE(wait_until([&] { return contains(p.read_stderr(), "msg=ready") || !p.running(); }, 10s));
  INFO(p.read_stderr());
  REQUIRE(p.running());
  CHECK(status_field(p.pid(), "Uid") == "65534 65534 65534 65534");
  CHECK(contains(p.read_stderr(), "user=(unchanged)"));
  // PR_SET_DUMPABLE 0: the kernel hands the files under /proc/PID to root, so nobody's other
  // processes cannot ptrace it or read its memory or environment.
  REQUIRE(::stat(("/proc/" + std::to_string(p.pid()) + "/environ").c_str(), &st) == 0);
  CHECK(st.st_uid == 0);
  // RLIMIT_CORE 0.
  const std::string limits = read_file("/proc/" + std::to_string(p.pid()) + "/limits");
  CHECK(std::regex_search(limits, std::regex("Max core file size +0 +0 +bytes")));
  CHECK(status_field(p.pid(), "Seccomp") == "2");
}

TEST_CASE("hardening: seccomp kill: a forbidden syscall on the control or a worker thread kills the process with SIGSYS",
          "[fast][hardening][seccomp]") {
  TempDir d("fphr6");
  const std::string cfg = d.file("proxy.toml");
  write_file(cfg, mtls_config(std::string(test_certs()), free_tcp_port(), "127.0.0.1:9", "off",
                              "[process]\nallow_root = true\n"));  // seccomp defaults to "kill"
  for (const char* thread : {"control", "worker"}) {
    auto p = start(testhooks_binary(), cfg, {"FIPSPROXY_TEST_FORBIDDEN_SYSCALL=" + std::string(thread)});
    ExitStatus st = p->wait_exit(15s);
    INFO(thread << ": " << st.str() << "\n" << p->read_stderr());
    CHECK(contains(p->read_stderr(), std::string("test hook: calling execve on the ") + thread + " thread"));
    CHECK_FALSE(contains(p->read_stderr(), "returned"));  // the call never came back
    CHECK(st.signal == SIGSYS);
  }
}

TEST_CASE("hardening: seccomp off and log let the same syscall through, NoNewPrivs/Seccomp show the mode",
          "[fast][hardening][seccomp]") {
  TempDir d("fphr7");
  AppServer app("tcp:127.0.0.1:0", {"echo"});
  REQUIRE(app.ok());
  // Relative to this process: under Docker's default profile the test runner is filtered already.
  const int own_filters = std::stoi("0" + status_field(::getpid(), "Seccomp_filters"));
  const std::string own_nnp = status_field(::getpid(), "NoNewPrivs");
  struct Mode {
    std::string table;
    int added_filters;
    std::string no_new_privs;
  };
  for (const Mode& m : {Mode{"seccomp = \"off\"", 0, own_nnp}, Mode{"seccomp = \"log\"", 1, "1"}}) {
    const uint16_t port = free_tcp_port();
    const std::string cfg = d.file("proxy.toml");
    write_file(cfg, mtls_config(std::string(test_certs()), port, app.endpoint(), "off",
                                std::string("[process]\nallow_root = true\n") + m.table + "\n"));
    auto p = start(testhooks_binary(), cfg, {"FIPSPROXY_TEST_FORBIDDEN_SYSCALL=control"});
    REQUIRE(wait_ready(*p));
    INFO(m.table << "\n" << p->read_stderr());
    // The probe really ran: execve came back with its ordinary error.
    CHECK(contains(p->read_stderr(), "test hook: execve on the control thread returned -1 (No such file or directory)"));
    CHECK(std::stoi("0" + status_field(p->pid(), "Seccomp_filters")) == own_filters + m.added_filters);
    CHECK(status_field(p->pid(), "NoNewPrivs") == m.no_new_privs);
    CHECK(ping(port).ok());
    CHECK(p->running());
  }
  // The default ("kill") without the hook: filter on, and the proxy serves.
  const uint16_t port = free_tcp_port();
  const std::string cfg = d.file("proxy.toml");
  write_file(cfg, mtls_config(std::string(test_certs()), port, app.endpoint(), "off", "[process]\nallow_root = true\n"));
  auto p = start(proxy_binary(), cfg, {"FIPSPROXY_TEST_FORBIDDEN_SYSCALL=control"});  // no hook in the shipped binary
  REQUIRE(wait_ready(*p));
  CHECK(status_field(p->pid(), "Seccomp") == "2");
  CHECK(std::stoi("0" + status_field(p->pid(), "Seccomp_filters")) == own_filters + 1);
  CHECK(status_field(p->pid(), "NoNewPrivs") == "1");
  CHECK_FALSE(contains(p->read_stderr(), "test hook"));
  CHECK(ping(port).ok());
}

TEST_CASE("hardening: a private key readable by others is refused as `path: reason`, key_permissions = warn loads it",
          "[fast][hardening][keys]") {
  TempDir d("fphr8");
  AppServer app("tcp:127.0.0.1:0", {"echo"});
  REQUIRE(app.ok());
  const std::string pki = d.file("pki");
  make_dir(pki);
  for (const char* f : {"server.pem", "ca.pem"}) write_file(pki + "/" + f, read_file(cert(f)), 0644);
  const std::string key = pki + "/server.key";
  write_file(key, read_file(cert("server.key")), 0644);
  REQUIRE(::chmod(key.c_str(), 0644) == 0);  // whatever the umask
  const uint16_t port = free_tcp_port();
  const std::string cfg = d.file("proxy.toml");
  const std::string refused = key + ": private key file is accessible by others (mode 0644)";

  write_file(cfg, mtls_config(pki, port, app.endpoint(), "off", "[process]\nallow_root = true\n"));
  std::string out, err;
  ExitStatus st = run_command({proxy_binary(), "check", "-c", cfg}, 15s, &out, &err);
  INFO(err);
  CHECK(st.code == 2);
  CHECK(contains(err, refused));
  CHECK(contains(err, "or set [process] key_permissions = \"warn\""));
  st = run_command({proxy_binary(), "run", "-c", cfg}, 15s, &out, &err);
  CHECK(st.code == 2);
  CHECK(contains(err, refused));
  CHECK_FALSE(connect_tcp("127.0.0.1", port, Millis(300)).valid());

  // Group access: refused unless root owns the key and the group may only read.
  REQUIRE(::chmod(key.c_str(), 0640) == 0);
  if (::geteuid() == 0) {
    st = run_command({proxy_binary(), "check", "-c", cfg}, 15s, &out, &err);
    CHECK(st.code == 0);  // root:root 0640 (the Kubernetes fsGroup / ssl-cert pattern)
    REQUIRE(::chown(key.c_str(), kNobody, static_cast<gid_t>(-1)) == 0);
    st = run_command({proxy_binary(), "check", "-c", cfg}, 15s, &out, &err);
    CHECK(st.code == 2);
    CHECK(contains(err, key + ": private key file is accessible by its group (mode 0640)"));
    REQUIRE(::chown(key.c_str(), 0, static_cast<gid_t>(-1)) == 0);
  }
  REQUIRE(::chmod(key.c_str(), 0644) == 0);

  // key_permissions = "warn": check and run load it and say so.
  write_file(cfg, mtls_config(pki, port, app.endpoint(), "off",
                              "[process]\nallow_root = true\nkey_permissions = \"warn\"\n"));
  st = run_command({proxy_binary(), "check", "-c", cfg}, 15s, &out, &err);
  INFO(err);
  CHECK(st.code == 0);
  CHECK(contains(err, "level=warn"));
  CHECK(contains(err, "private key file permissions are too open"));
  auto p = start(proxy_binary(), cfg);
  REQUIRE(wait_ready(*p));
  CHECK(contains(p->read_stderr(), "path=" + key));
  CHECK(ping(port).ok());
  p->terminate();

  // Control: 0600 loads without a warning.
  REQUIRE(::chmod(key.c_str(), 0600) == 0);
  st = run_command({proxy_binary(), "check", "-c", cfg}, 15s, &out, &err);
  CHECK(st.code == 0);
  CHECK_FALSE(contains(err, "too open"));
}
