// Live change (issue #6): SIGHUP reload and Kubernetes-style certificate rotation, through the
// real binary. A failed reload or rotation must keep the old generation serving.

#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <thread>

#include "tests/integration/policy_matrix_support.h"
#include "tests/support/harness.h"

using namespace fp::test;
using namespace std::chrono_literals;

namespace {

std::string tcp_addr(uint16_t port) { return "127.0.0.1:" + std::to_string(port); }

// One plaintext request through a plaintext (origination-style) listener to an echo app.
bool plain_roundtrip(uint16_t port, const std::string& payload) {
  Fd fd = connect_tcp("127.0.0.1", port, 2000ms);
  if (!fd.valid()) return false;
  if (!send_all(fd.get(), payload, 2000ms)) return false;
  ::shutdown(fd.get(), SHUT_WR);
  ReadResult r = read_until_close(fd.get(), 3000ms);
  return r.data == payload;
}

// SHA-256 fingerprint of the certificate the listener presents to a new handshake.
std::string served_fingerprint(uint16_t port) {
  std::string out;
  std::string cmd = "openssl s_client -connect 127.0.0.1:" + std::to_string(port) +
                    " -servername server.example.org -CAfile " + cert("ca.pem") + " -cert " +
                    cert("client.pem") + " -key " + cert("client.key") +
                    " </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256";
  run_command({"bash", "-c", cmd}, 10s, &out);
  return out;
}

std::string file_fingerprint(const std::string& pem) {
  std::string out;
  run_command({"openssl", "x509", "-in", pem, "-noout", "-fingerprint", "-sha256"}, 10s, &out);
  return out;
}

void copy_file(const std::string& from, const std::string& to) { write_file(to, read_file(from), 0600); }

// Lays out DIR/..<name>/{tls.crt,tls.key} and points DIR/..data at it atomically (the way the
// kubelet updates a Secret volume: a new timestamped dir, then a rename over the ..data link).
void k8s_publish(const std::string& dir, const std::string& name, const std::string& crt,
                 const std::string& key) {
  const std::string d = dir + "/.." + name;
  ::mkdir(d.c_str(), 0755);
  copy_file(crt, d + "/tls.crt");
  copy_file(key, d + "/tls.key");
  const std::string tmp = dir + "/..data_tmp";
  ::unlink(tmp.c_str());
  REQUIRE(::symlink((".." + name).c_str(), tmp.c_str()) == 0);
  REQUIRE(::rename(tmp.c_str(), (dir + "/..data").c_str()) == 0);
}

}  // namespace

TEST_CASE("SIGHUP: a broken config keeps the old one serving, a good one adds a listener",
          "[fast][reload]") {
  AppServer app("tcp:127.0.0.1:0", {"echo"});
  REQUIRE(app.ok());
  ProxyEnv env;
  const uint16_t p1 = free_tcp_port(), p2 = free_tcp_port();
  ListenerSpec a;
  a.name = "a";
  a.address = tcp_addr(p1);
  ClusterSpec c;
  c.endpoints = {app.endpoint()};
  REQUIRE(env.start({a}, {c}));
  REQUIRE(plain_roundtrip(p1, "before\n"));

  // A config with an error: the reload fails, the old listener keeps serving.
  const std::string good = read_file(env.proxy->config_path());
  write_file(env.proxy->config_path(), good + "\nbogus_key = 1\n");
  env.proxy->signal(SIGHUP);
  INFO(env.log());
  REQUIRE(env.proxy->wait_log("reload failed", 5s));
  CHECK(env.log().find("unknown key 'bogus_key'") != std::string::npos);
  CHECK(plain_roundtrip(p1, "still serving\n"));

  // A good config with a second listener: both serve; the first was never closed.
  ListenerSpec b = a;
  b.name = "b";
  b.address = tcp_addr(p2);
  write_file(env.proxy->config_path(), render_config(env.access_log, {a, b}, {c}));
  env.proxy->signal(SIGHUP);
  REQUIRE(env.proxy->wait_log("msg=reloaded", 5s));
  CHECK(plain_roundtrip(p1, "old listener\n"));
  CHECK(plain_roundtrip(p2, "new listener\n"));

  // Removing the first listener closes it for new connections.
  write_file(env.proxy->config_path(), render_config(env.access_log, {b}, {c}));
  env.proxy->signal(SIGHUP);
  REQUIRE(wait_until([&] { return env.log().find("generation=3") != std::string::npos; }, 5s));
  CHECK(wait_until([&] { return !connect_tcp("127.0.0.1", p1, 500ms).valid(); }, 3s));
  CHECK(plain_roundtrip(p2, "after removal\n"));
  CHECK(env.proxy->running());
}

TEST_CASE("reload under load: 20 reloads during a request loop lose no request", "[fast][reload]") {
  AppServer app("tcp:127.0.0.1:0", {"echo"});
  REQUIRE(app.ok());
  ProxyEnv env;
  const uint16_t port = free_tcp_port();
  ListenerSpec l;
  l.address = tcp_addr(port);
  ClusterSpec c;
  c.endpoints = {app.endpoint()};
  REQUIRE(env.start({l}, {c}));

  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, failed{0};
  std::thread loop([&] {
    // Bounded in count and time.
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    for (int i = 0; i < 2000 && !stop && std::chrono::steady_clock::now() < deadline; ++i) {
      if (plain_roundtrip(port, "request " + std::to_string(i) + "\n")) {
        ++ok;
      } else {
        ++failed;
      }
    }
  });
  for (int i = 0; i < 20; ++i) {
    env.proxy->signal(SIGHUP);
    std::this_thread::sleep_for(50ms);
  }
  REQUIRE(wait_until([&] { return env.log().find("generation=21") != std::string::npos; }, 10s));
  std::this_thread::sleep_for(200ms);
  stop = true;
  loop.join();
  INFO(env.log());
  CHECK(failed == 0);
  CHECK(ok > 20);
}

TEST_CASE("Kubernetes-style rotation: new handshakes get the new cert, bad rotations keep the old",
          "[fast][reload][rotation]") {
  AppServer app("tcp:127.0.0.1:0", {"echo"});
  REQUIRE(app.ok());
  ProxyEnv env;
  // The Secret volume: tls.crt -> ..data/tls.crt, ..data -> ..<timestamp>/
  const std::string secret = env.dir.file("secret");
  ::mkdir(secret.c_str(), 0755);
  k8s_publish(secret, "2026_a", cert("server.pem"), cert("server.key"));
  REQUIRE(::symlink("..data/tls.crt", (secret + "/tls.crt").c_str()) == 0);
  REQUIRE(::symlink("..data/tls.key", (secret + "/tls.key").c_str()) == 0);

  const uint16_t port = free_tcp_port();
  const std::string cfg = "workers = 1\naccess_log = \"" + env.access_log +
                          "\"\n[[listener]]\nname = \"inbound\"\naddress = \"" + tcp_addr(port) +
                          "\"\ncluster = \"app\"\n  [listener.tls]\n  cert = \"" + secret +
                          "/tls.crt\"\n  key = \"" + secret + "/tls.key\"\n  ca = \"" +
                          cert("ca.pem") + "\"\n[[cluster]]\nname = \"app\"\nendpoints = [\"" +
                          app.endpoint() + "\"]\n";
  env.proxy = std::make_unique<ProxyProcess>(cfg, env.dir.path());
  REQUIRE(env.proxy->start());
  const std::string fp_a = file_fingerprint(cert("server.pem"));
  const std::string fp_b = file_fingerprint(cert("server-rsa.pem"));
  REQUIRE(fp_a != fp_b);
  REQUIRE(served_fingerprint(port) == fp_a);

  // A connection opened before the rotation finishes normally after it.
  auto held = spawn_client(tcp_addr(port), [] {
    auto a = tls_args("client");
    a.insert(a.end(), {"--hold", "2", "--send-text", "held\n", "--half-close"});
    return a;
  }());
  std::this_thread::sleep_for(300ms);

  // Good rotation (a new RSA-2048 pair from the same CA): seen within 2 s.
  k8s_publish(secret, "2026_b", cert("server-rsa.pem"), cert("server-rsa.key"));
  INFO(env.log());
  CHECK(wait_until([&] { return served_fingerprint(port) == fp_b; }, 2500ms, 100ms));
  ClientResult hr = client_result(*held, 10s);
  INFO(hr.describe());
  CHECK(hr.ok());
  CHECK(hr.json.str("recv_head") == "held\n");

  // Bad rotations keep the last good pair and say why, naming the file.
  struct Bad {
    const char* name;
    std::string crt, key;
    const char* reason;
  };
  const std::string truncated = env.dir.file("truncated.pem");
  {
    std::string pem = read_file(cert("server.pem"));
    write_file(truncated, pem.substr(0, pem.size() / 2));
  }
  std::vector<Bad> bads = {
      {"2026_c", cert("server.pem"), cert("client.key"), "does not match"},
      {"2026_d", truncated, cert("server.key"), "tls.crt"},
      {"2026_e", fp::test::policy::pp("p-rsa1024.pem"), fp::test::policy::pp("p-rsa1024.key"),
       "RSA key 1024 bits not allowed"},
      {"2026_f", fp::test::policy::pp("p-expired.pem"), fp::test::policy::pp("p-expired.key"), "expired"},
  };
  for (const Bad& bad : bads) {
    SECTION(std::string("bad rotation ") + bad.name) {
      const size_t failures_before = [&] {
        size_t n = 0, pos = 0;
        const std::string log = env.log();
        while ((pos = log.find("reload failed", pos)) != std::string::npos) ++n, ++pos;
        return n;
      }();
      k8s_publish(secret, bad.name, bad.crt, bad.key);
      CHECK(wait_until(
          [&] {
            size_t n = 0, pos = 0;
            const std::string log = env.log();
            while ((pos = log.find("reload failed", pos)) != std::string::npos) ++n, ++pos;
            return n > failures_before;
          },
          5s, 50ms));
      CHECK(env.log().find(bad.reason) != std::string::npos);
      CHECK(served_fingerprint(port) == fp_b);
    }
  }
  CHECK(env.proxy->running());
}
