// Transparent outbound capture (issue #12): an app's plaintext connection, redirected by the
// shipped deploy/k8s/iptables-init.sh rules (nat OUTPUT REDIRECT), reaches fipsproxy's capture
// listener; fipsproxy reads the original destination (SO_ORIGINAL_DST / IP6T_SO_ORIGINAL_DST)
// and connects there with mTLS under the FIPS policy.
//
// Everything runs inside a fresh network namespace that this test process enters
// (unshare(CLONE_NEWNET)) and leaves again at the end: the proxy, the upstream and the clients
// are its children, and the iptables rules vanish with the namespace. Needs root (CAP_NET_ADMIN,
// iptables, setpriv to run the "app" under another uid than the proxy); skipped with a WARN
// otherwise.

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "tests/support/harness.h"

using namespace fp::test;
using namespace std::chrono_literals;

namespace {

bool contains(const std::string& hay, const std::string& needle) { return hay.find(needle) != std::string::npos; }

// Moves this process (the thread that runs the tests) into a new network namespace, and back on
// destruction. Children started in between stay in the new one.
class NetnsScope {
 public:
  NetnsScope() {
    orig_ = ::open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    if (orig_ < 0) {
      why_ = std::string("open /proc/self/ns/net: ") + std::strerror(errno);
    } else if (::unshare(CLONE_NEWNET) != 0) {
      why_ = std::string("unshare(CLONE_NEWNET): ") + std::strerror(errno);
    } else {
      active_ = true;
    }
  }
  ~NetnsScope() {
    if (active_ && ::setns(orig_, CLONE_NEWNET) != 0) std::abort();  // never run on in the test netns
    if (orig_ >= 0) ::close(orig_);
  }
  NetnsScope(const NetnsScope&) = delete;
  NetnsScope& operator=(const NetnsScope&) = delete;
  bool active() const { return active_; }
  const std::string& why() const { return why_; }

 private:
  int orig_ = -1;
  bool active_ = false;
  std::string why_;
};

bool have_command(const std::string& cmd) {
  return run_command({"sh", "-c", "command -v " + cmd + " >/dev/null 2>&1"}, 10s).code == 0;
}

std::string sh(const std::string& cmd, int* code = nullptr) {
  std::string out, err;
  ExitStatus st = run_command({"sh", "-c", cmd}, 30s, &out, &err);
  if (code) *code = st.exited ? st.code : -1;
  return out + err;
}

// The mesh peer: a TLS 1.2/1.3 server (Python ssl, Debian's OpenSSL) that requires a client
// certificate, reads one line, answers "upstream saw: <line>" and prints one JSON line per
// connection: the negotiated version and suite, the client's URI SANs, or the error.
const char kUpstream[] = R"PY(
import json, socket, ssl, sys, threading
cert, key, ca = sys.argv[1:4]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
ctx.load_verify_locations(ca)
ctx.verify_mode = ssl.CERT_REQUIRED
lock = threading.Lock()
def emit(ev):
    with lock:
        print(json.dumps(ev), flush=True)
def serve(ls):
    while True:
        c, peer = ls.accept()
        c.settimeout(5)
        ev = {"listen": "%s:%d" % ls.getsockname()[:2]}
        try:
            t = ctx.wrap_socket(c, server_side=True)
            ev.update(tls=True, version=t.version(), cipher=t.cipher()[0],
                      peer_uri=[v for k, v in t.getpeercert().get("subjectAltName", ()) if k == "URI"])
            data = b""
            while not data.endswith(b"\n"):
                chunk = t.recv(4096)
                if not chunk:
                    break
                data += chunk
            ev["got"] = data.decode(errors="replace")
            t.sendall(b"upstream saw: " + data)
            t.close()
        except Exception as e:
            ev.update(tls=False, error=str(e))
            c.close()
        emit(ev)
threads = []
for a in sys.argv[4:]:
    host, port = a.rsplit(":", 1)
    host = host.strip("[]")
    s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, int(port)))
    s.listen(16)
    threads.append(threading.Thread(target=serve, args=(s,), daemon=True))
print("READY", flush=True)
for t in threads:
    t.start()
for t in threads:
    t.join()
)PY";

// The app: plain TCP to HOST PORT, one line, prints what came back (until EOF).
const char kApp[] = R"PY(
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
s.sendall(b"hello through capture\n")
data = b""
try:
    while True:
        d = s.recv(4096)
        if not d:
            break
        data += d
except Exception as e:
    print("ERR", e)
print("GOT", repr(data))
)PY";

// Runs the app as uid/gid 65534 (not the proxy's uid 0, so the rules capture it). Debian's
// python3 by absolute path: a PATH shim under /root is not readable for that uid.
std::string run_app(const std::string& host, uint16_t port) {
  std::string out, err;
  run_command({"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/python3", "-c", kApp, host,
               std::to_string(port)},
              20s, &out, &err);
  return out + err;
}

}  // namespace

TEST_CASE("original_dst: redirected plaintext leaves as mTLS to the original destination, direct connections are refused",
          "[fast][original_dst]") {
  if (::geteuid() != 0) {
    WARN("original_dst test skipped: needs root (unshare --net, iptables)");
    return;
  }
  for (const char* cmd : {"iptables", "ip6tables", "ip", "setpriv"}) {
    if (!have_command(cmd)) {
      WARN("original_dst test skipped: '" << cmd << "' not installed (deploy/bootstrap.sh installs it)");
      return;
    }
  }
  const std::string certs = test_certs();  // before entering the namespace (runs gen.sh)
  NetnsScope ns;
  if (!ns.active()) {
    WARN("original_dst test skipped: no network namespace: " << ns.why());
    return;
  }
  int code = -1;
  INFO(sh("ip link set lo up && ip -6 addr add fd00::3/128 dev lo nodad", &code));
  REQUIRE(code == 0);

  TempDir dir("fp-odst");
  Process upstream({.argv = {"python3", "-c", kUpstream, certs + "/server.pem", certs + "/server.key",
                             certs + "/ca.pem", "127.0.0.3:8443", "[fd00::3]:8443"}});
  REQUIRE(wait_until([&] { return contains(upstream.read_stdout(), "READY") || !upstream.running(); }, 10s));
  REQUIRE(contains(upstream.read_stdout(), "READY"));
  auto upstream_events = [&] {
    std::vector<JsonObject> v;
    const std::string out = upstream.read_stdout();
    size_t pos = 0;
    while (pos < out.size()) {
      size_t nl = out.find('\n', pos);
      if (nl == std::string::npos) break;
      if (auto j = JsonObject::parse(out.substr(pos, nl - pos))) v.push_back(*j);
      pos = nl + 1;
    }
    return v;
  };

  const std::string access_log = dir.file("access.log");
  const std::string config =
      "workers = 1\n"
      "access_log = \"" + access_log + "\"\n"
      "drain_timeout = \"2s\"\n"
      "[admin]\naddress = \"127.0.0.1:9901\"\n"
      "[[listener]]\nname = \"capture\"\naddress = \"127.0.0.1:15001\"\ncluster = \"mesh\"\n"
      "[[listener]]\nname = \"capture6\"\naddress = \"[::1]:15001\"\ncluster = \"mesh\"\n"
      "[[cluster]]\nname = \"mesh\"\ntype = \"original_dst\"\nconnect_timeout = \"2s\"\n"
      "  [cluster.tls]\n"
      "  cert = \"" + certs + "/client.pem\"\n"
      "  key = \"" + certs + "/client.key\"\n"
      "  ca = \"" + certs + "/ca.pem\"\n"
      "  allow_spiffe = [\"spiffe://example.org/ns/default/sa/server\"]\n";
  ProxyProcess proxy(config, dir.path());  // runs as root (uid 0): the uid the rules exempt
  REQUIRE(proxy.start());
  INFO(proxy.stderr_text());

  // Control: without the rules the app reaches the upstream directly, in plaintext, and the
  // TLS server refuses it; the proxy sees nothing.
  const std::string direct = run_app("127.0.0.3", 8443);
  INFO("app without rules: " << direct);
  CHECK_FALSE(contains(direct, "upstream saw"));
  REQUIRE(wait_until([&] { return upstream_events().size() == 1; }, 5s));
  CHECK_FALSE(upstream_events()[0].boolean("tls"));
  CHECK(read_access_log(access_log).empty());
  // Without any nat rule in the namespace a direct connection to the capture listener has no
  // NAT record (original_dst_unavailable here; a kernel that tracks every connection reports
  // the listener itself: original_dst_loop). Either way refused, nothing read or forwarded.
  {
    Fd fd = connect_tcp("127.0.0.1", 15001);
    REQUIRE(fd.valid());
    send_all(fd.get(), "hello\n");
    ReadResult rr = read_until_close(fd.get(), 5s);
    CHECK(rr.data.empty());
  }
  auto log = wait_access_log(access_log, 1);
  REQUIRE(log.size() == 1);
  INFO(log[0].raw());
  CHECK((log[0].str("close_reason") == "original_dst_unavailable" || log[0].str("close_reason") == "original_dst_loop"));
  CHECK(log[0].num("bytes_from_downstream") == 0);
  CHECK(upstream_events().size() == 1);

  // The shipped rules, with the proxy's uid (0 here) exempt.
  const std::string rules =
      sh("FIPSPROXY_ALLOW_UID0=1 " + std::string(FP_SOURCE_DIR) +
             "/deploy/k8s/iptables-init.sh --proxy-uid 0 --outbound-port 15001 --exclude-ports 53 --ipv6",
         &code);
  INFO(rules);
  REQUIRE(code == 0);

  // Captured: the same plaintext now leaves as mTLS, to the address the app dialled.
  const std::string captured = run_app("127.0.0.3", 8443);
  INFO("app with rules: " << captured);
  CHECK(contains(captured, "upstream saw: hello through capture"));
  REQUIRE(wait_until([&] { return upstream_events().size() == 2; }, 5s));
  JsonObject up = upstream_events()[1];
  INFO(up.raw());
  CHECK(up.boolean("tls"));
  CHECK(up.str("listen") == "127.0.0.3:8443");
  CHECK(up.str("version") == "TLSv1.3");
  CHECK(contains(up.str("cipher"), "_GCM_"));
  CHECK(up.arr("peer_uri") == std::vector<std::string>{"spiffe://example.org/ns/default/sa/client"});
  CHECK(up.str("got") == "hello through capture\n");
  log = wait_access_log(access_log, 2);
  REQUIRE(log.size() == 2);
  INFO(log[1].raw());
  CHECK(log[1].str("listener") == "capture");
  CHECK(log[1].str("upstream") == "127.0.0.3:8443");
  CHECK(log[1].str("close_reason") == "completed");
  CHECK(log[1].str("up_tls_version") == "TLSv1.3");
  CHECK(log[1].str("up_peer_spiffe") == "spiffe://example.org/ns/default/sa/server");
  CHECK(log[1].num("bytes_from_downstream") == 22);

  // Negative: a connection straight to the capture listener was never redirected. Its original
  // destination is the listener itself; forwarding would loop, so it is refused, nothing read
  // or forwarded, and counted.
  {
    Fd fd = connect_tcp("127.0.0.1", 15001);
    REQUIRE(fd.valid());
    send_all(fd.get(), "GET / HTTP/1.0\r\n\r\n");
    ReadResult rr = read_until_close(fd.get(), 5s);
    CHECK(rr.data.empty());
    CHECK((rr.eof || rr.reset));
  }
  log = wait_access_log(access_log, 3);
  REQUIRE(log.size() == 3);
  INFO(log[2].raw());
  CHECK(log[2].str("close_reason") == "original_dst_loop");
  CHECK(contains(log[2].str("detail"), "original destination 127.0.0.1:15001 is this listener itself"));
  CHECK(log[2].str("upstream").empty());
  CHECK(log[2].num("bytes_from_downstream") == 0);
  CHECK(upstream_events().size() == 2);  // the upstream saw no new connection
  std::string metrics;
  run_command({"curl", "-sS", "--max-time", "5", "http://127.0.0.1:9901/metrics"}, 10s, &metrics);
  const std::string first = log[0].str("close_reason");  // the no-rules refusal above
  const std::string loops = first == "original_dst_loop" ? "2" : "1";
  CHECK(contains(metrics, "fipsproxy_connection_closes_total{listener=\"capture\",reason=\"original_dst_loop\","
                          "side=\"downstream\"} " + loops + "\n"));
  if (first == "original_dst_unavailable") {
    CHECK(contains(metrics, "fipsproxy_connection_closes_total{listener=\"capture\",reason=\"original_dst_unavailable\","
                            "side=\"downstream\"} 1\n"));
  }

  // IPv6: ip6tables REDIRECT to [::1]:15001, IP6T_SO_ORIGINAL_DST names [fd00::3]:8443.
  const std::string captured6 = run_app("fd00::3", 8443);
  INFO("app over IPv6: " << captured6);
  CHECK(contains(captured6, "upstream saw: hello through capture"));
  REQUIRE(wait_until([&] { return upstream_events().size() == 3; }, 5s));
  up = upstream_events()[2];
  CHECK(up.boolean("tls"));
  CHECK(up.str("listen") == "fd00::3:8443");
  CHECK(up.str("version") == "TLSv1.3");
  log = wait_access_log(access_log, 4);
  REQUIRE(log.size() == 4);
  INFO(log[3].raw());
  CHECK(log[3].str("listener") == "capture6");
  CHECK(log[3].str("upstream") == "[fd00::3]:8443");
  CHECK(log[3].str("close_reason") == "completed");

  proxy.terminate();
}
