// RELIABILITY G39, the "port already in use" half: a listen address or the admin address that
// another socket holds makes the proxy refuse to start: non-zero exit, one error line naming the
// address, never "ready", and every other port it would have bound free again afterwards (this
// test binds them itself to prove it). Also when the holder is a SO_REUSEPORT socket of the same
// user (a second fipsproxy: the kernel would otherwise share the port between the two), and when
// a Unix socket path is a live socket (a stale one is replaced, the positive control).
// Positive control for each: the same config starts once the holder is gone.
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "tests/support/harness.h"

using namespace fp::test;
using namespace std::chrono_literals;

namespace {

// A listening TCP socket on 127.0.0.1:port, held by this test process.
Fd hold_tcp(uint16_t port, bool reuseport) {
  Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  int one = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (reuseport) ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_port = htons(port);
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&sin), sizeof sin) != 0 || ::listen(fd.get(), 8) != 0) return Fd();
  return fd;
}

// True if this process can bind (and listen on) 127.0.0.1:port with no sharing option at all:
// nobody holds it.
bool tcp_port_free(uint16_t port) { return hold_tcp(port, false).valid(); }

Fd hold_unix(const std::string& path) {
  Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un sun{};
  sun.sun_family = AF_UNIX;
  std::snprintf(sun.sun_path, sizeof sun.sun_path, "%s", path.c_str());
  ::unlink(path.c_str());
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&sun), sizeof sun) != 0 || ::listen(fd.get(), 8) != 0) return Fd();
  return fd;
}

std::string config(const std::vector<uint16_t>& listen_ports, const std::string& admin, const std::string& app) {
  std::string o = "workers = 2\nlog_level = \"info\"\naccess_log = \"off\"\n";
  o += "[admin]\naddress = \"" + admin + "\"\n";
  for (size_t i = 0; i < listen_ports.size(); ++i) {
    o += "\n[[listener]]\nname = \"l" + std::to_string(i) + "\"\naddress = \"127.0.0.1:" +
         std::to_string(listen_ports[i]) + "\"\ncluster = \"app\"\n";
  }
  o += "\n[[cluster]]\nname = \"app\"\nendpoints = [\"" + app + "\"]\n";
  return o;
}

// Lines of `text` that contain `needle`.
int lines_with(const std::string& text, const std::string& needle) {
  int n = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    if (text.substr(pos, nl - pos).find(needle) != std::string::npos) ++n;
    pos = nl + 1;
  }
  return n;
}

// Starts the proxy, expecting a refusal: not ready, exits non-zero within a few seconds.
// Returns its stderr.
std::string expect_refusal(ProxyProcess& p) {
  const bool ready = p.start(Millis(8000));
  const std::string err = p.stderr_text();
  INFO(err);
  CHECK_FALSE(ready);
  ExitStatus es = p.wait_exit(Millis(5000));
  INFO(es.str());
  CHECK(es.exited);
  CHECK(es.code != 0);
  CHECK(err.find("msg=ready") == std::string::npos);
  return err;
}

}  // namespace

TEST_CASE("G39 a listen port in use: refused with the address named, and no other port left bound",
          "[fast][reliability][g39]") {
  TempDir dir("fpg39");
  const uint16_t l0 = free_tcp_port(), l1 = free_tcp_port(), l2 = free_tcp_port(), admin = free_tcp_port();
  REQUIRE((l0 != l1 && l1 != l2 && l0 != l2 && admin != l0 && admin != l1 && admin != l2));
  const std::string admin_addr = "127.0.0.1:" + std::to_string(admin);
  const std::string app = "127.0.0.1:" + std::to_string(free_tcp_port());
  for (const bool reuseport : {false, true}) {
    INFO((reuseport ? "holder has SO_REUSEPORT (a second fipsproxy)" : "plain holder"));
    {
      Fd holder = hold_tcp(l1, reuseport);
      REQUIRE(holder.valid());
      ProxyProcess p(config({l0, l1, l2}, admin_addr, app), dir.path());
      const std::string err = expect_refusal(p);
      INFO(err);
      const std::string addr = "127.0.0.1:" + std::to_string(l1);
      CHECK(lines_with(err, addr) == 1);
      CHECK(lines_with(err, "in use") == 1);
      CHECK(err.find("listener l1") != std::string::npos);
      // The others are free: the one bound before the failure, the one after, and the admin port.
      CHECK(tcp_port_free(l0));
      CHECK(tcp_port_free(l2));
      CHECK(tcp_port_free(admin));
      // The holder still owns its port (nothing was taken from it).
      CHECK_FALSE(tcp_port_free(l1));
    }
    // Positive control: the holder gone, the same config starts.
    ProxyProcess p(config({l0, l1, l2}, admin_addr, app), dir.path());
    CHECK(p.start());
    INFO(p.stderr_text());
    ExitStatus es = p.terminate();
    CHECK(es.exited);
    CHECK(es.code == 0);
  }
}

TEST_CASE("G39 the admin port in use: refused with the admin address named, listen ports released",
          "[fast][reliability][g39]") {
  TempDir dir("fpg39a");
  const uint16_t l0 = free_tcp_port(), l1 = free_tcp_port(), admin = free_tcp_port();
  REQUIRE((l0 != l1 && admin != l0 && admin != l1));
  const std::string admin_addr = "127.0.0.1:" + std::to_string(admin);
  const std::string app = "127.0.0.1:" + std::to_string(free_tcp_port());
  {
    Fd holder = hold_tcp(admin, false);
    REQUIRE(holder.valid());
    ProxyProcess p(config({l0, l1}, admin_addr, app), dir.path());
    const std::string err = expect_refusal(p);
    INFO(err);
    CHECK(lines_with(err, admin_addr) == 1);
    CHECK(lines_with(err, "in use") == 1);
    CHECK(err.find("admin") != std::string::npos);
    CHECK(tcp_port_free(l0));
    CHECK(tcp_port_free(l1));
  }
  ProxyProcess p(config({l0, l1}, admin_addr, app), dir.path());
  CHECK(p.start());
  INFO(p.stderr_text());
  CHECK(p.terminate().code == 0);
}

TEST_CASE("G39 a live Unix socket at the admin or listen path is in use, a stale one is replaced",
          "[fast][reliability][g39]") {
  TempDir dir("fpg39u");
  const uint16_t l0 = free_tcp_port();
  const std::string app = "127.0.0.1:" + std::to_string(free_tcp_port());
  const std::string admin_path = short_uds_path("g39adm");
  const std::string listen_path = short_uds_path("g39lis");
  auto cfg = [&](bool unix_listener) {
    std::string c = config({l0}, "unix:" + admin_path, app);
    if (unix_listener) {
      c.insert(c.find("\n[[cluster]]"), "\n[[listener]]\nname = \"u\"\naddress = \"unix:" + listen_path +
                                            "\"\ncluster = \"app\"\n");
    }
    return c;
  };
  for (const std::string& held : {admin_path, listen_path}) {
    INFO("held: " << held);
    Fd holder = hold_unix(held);
    REQUIRE(holder.valid());
    ProxyProcess p(cfg(true), dir.path());
    const std::string err = expect_refusal(p);
    INFO(err);
    CHECK(lines_with(err, held) == 1);
    CHECK(lines_with(err, "in use") == 1);
    CHECK(tcp_port_free(l0));
    // The holder's socket is untouched: still there and still answering.
    CHECK(connect_unix(held).valid());
    holder = Fd();
  }
  // Positive control: both paths now hold stale socket files (their listeners closed); the
  // proxy replaces them and starts.
  REQUIRE(file_exists(admin_path));
  REQUIRE(file_exists(listen_path));
  ProxyProcess p(cfg(true), dir.path());
  CHECK(p.start());
  INFO(p.stderr_text());
  CHECK(connect_unix(admin_path).valid());
  CHECK(connect_unix(listen_path).valid());
  CHECK(p.terminate().code == 0);
  ::unlink(admin_path.c_str());
  ::unlink(listen_path.c_str());
}
