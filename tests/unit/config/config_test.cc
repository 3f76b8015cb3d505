// config/ loader: values, defaults, and every error's exact file:line:col and key.

#include "config/config.h"

#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace fs = std::filesystem;
using namespace fp::config;

namespace {

// A fresh directory with certs/{server.pem,server.key,ca.pem,client.pem,client.key}; removed on
// destruction. The loader only checks the files are readable, so contents are placeholders.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "fp-config-test-XXXXXX").string();
    char* p = ::mkdtemp(tmpl.data());
    REQUIRE(p != nullptr);
    path_ = p;
    fs::create_directories(path_ / "certs");
    for (const char* f : {"server.pem", "server.key", "ca.pem", "client.pem", "client.key"}) {
      write("certs/" + std::string(f), "placeholder\n");
    }
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  std::string write(const std::string& rel, const std::string& text) const {
    fs::path p = path_ / rel;
    std::ofstream(p, std::ios::binary) << text;
    return p.string();
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// Loads `text` as <dir>/x.toml through load_string so error locations read "x.toml:L:C".
LoadResult load(const TempDir& d, const std::string& text) {
  return load_string(text, "x.toml", d.path().string());
}

std::vector<std::string> strs(const LoadResult& r) {
  std::vector<std::string> out;
  for (const auto& e : r.errors) out.push_back(e.str());
  return out;
}

std::string dump(const LoadResult& r) {
  std::string s;
  for (const auto& e : r.errors) s += e.str() + "\n";
  return s;
}

// The single error of `r`, which must have exactly one.
ConfigError only_error(const LoadResult& r) {
  INFO(dump(r));
  REQUIRE(!r.snapshot);
  REQUIRE(r.errors.size() == 1);
  return r.errors[0];
}

const char* kMinimal = R"(
[[listener]]
name = "in"
address = "127.0.0.1:8080"
cluster = "app"

[[cluster]]
name = "app"
endpoints = ["unix:/run/app.sock"]
)";

const char* kFull = R"(workers = 2
log_level = "debug"
access_log = "access.jsonl"
drain_timeout = "45s"

[limits]
high_watermark = "1MiB"
low_watermark = "256KiB"

[[listener]]
name = "inbound"
address = "0.0.0.0:8443"
cluster = "app"
mode = "http1"
max_connections = 5000
handshake_timeout = "250ms"
idle_timeout = "5m"
  [listener.tls]
  cert = "certs/server.pem"
  key = "certs/server.key"
  ca = "certs/ca.pem"
  require_client_cert = true
  allow_spiffe = ["spiffe://example.org/ns/default/sa/web", "spiffe://example.org/"]
  allow_dns = ["client.example.org", "*.svc.example.org"]
  alpn = ["h2", "http/1.1"]
  profile = "tls12-only"
  min_version = "1.2"

[[listener]]
name = "outbound"
address = "unix:/run/fp/out.sock"
cluster = "peers"

[[cluster]]
name = "app"
endpoints = ["unix:/run/app.sock", "127.0.0.1:9000"]
connect_timeout = 2

[[cluster]]
name = "peers"
endpoints = ["[2001:db8::1]:8443", "peer.example.org:8443"]
  [cluster.tls]
  cert = "certs/client.pem"
  key = "certs/client.key"
  ca = "certs/ca.pem"
  sni = "backend.example.org"
  allow_spiffe = ["spiffe://example.org/ns/peers/sa/api"]
  alpn = ["h2"]
  profile = "extended"
  min_version = "1.3"
  max_version = "1.3"
)";

}  // namespace

TEST_CASE("a full config loads with the right values", "[config]") {
  TempDir d;
  std::string path = d.write("x.toml", kFull);
  LoadResult r = load_file(path);
  INFO(dump(r));
  REQUIRE(r.errors.empty());
  REQUIRE(r.snapshot);
  const Snapshot& s = *r.snapshot;
  fs::path dir = d.path();
  CHECK(s.path == path);
  CHECK(s.workers == 2);
  CHECK(s.log_level == "debug");
  CHECK(s.access_log == (dir / "access.jsonl").string());
  CHECK(s.drain_timeout == Millis(45000));
  CHECK(s.limits.high_watermark == 1u << 20);
  CHECK(s.limits.low_watermark == 256u << 10);

  REQUIRE(s.listeners.size() == 2);
  const Listener& in = s.listeners[0];
  CHECK(in.name == "inbound");
  CHECK(in.address.kind == Address::Kind::Tcp);
  CHECK(in.address.host == "0.0.0.0");
  CHECK(in.address.port == 8443);
  CHECK(in.address.text == "0.0.0.0:8443");
  CHECK(in.cluster == "app");
  CHECK(in.mode == Mode::Http1);
  CHECK(in.max_connections == 5000);
  CHECK(in.handshake_timeout == Millis(250));
  CHECK(in.idle_timeout == Millis(300000));
  CHECK_FALSE(in.allow_remote_plaintext);
  CHECK(in.loc.file == path);
  CHECK(in.loc.line == 10);
  REQUIRE(in.tls);
  CHECK(in.tls->cert == (dir / "certs/server.pem").string());
  CHECK(in.tls->key == (dir / "certs/server.key").string());
  CHECK(in.tls->ca == (dir / "certs/ca.pem").string());
  CHECK(in.tls->require_client_cert);
  CHECK(in.tls->allow_spiffe == std::vector<std::string>{"spiffe://example.org/ns/default/sa/web",
                                                         "spiffe://example.org/"});
  CHECK(in.tls->allow_dns == std::vector<std::string>{"client.example.org", "*.svc.example.org"});
  CHECK(in.tls->alpn == std::vector<std::string>{"h2", "http/1.1"});
  CHECK(in.tls->profile == Profile::Tls12Only);
  CHECK(in.tls->min_version == 0x0303);
  CHECK(in.tls->max_version == 0x0303);  // tls12-only caps the default max
  CHECK(in.tls->loc.line == 18);

  const Listener& out = s.listeners[1];
  CHECK(out.address.is_unix());
  CHECK(out.address.path == "/run/fp/out.sock");
  CHECK(out.mode == Mode::Tcp);
  CHECK(out.max_connections == 10000);
  CHECK(out.handshake_timeout == Millis(10000));
  CHECK_FALSE(out.tls);

  REQUIRE(s.clusters.size() == 2);
  const Cluster* app = s.find_cluster("app");
  REQUIRE(app);
  CHECK(app->connect_timeout == Millis(2000));
  REQUIRE(app->endpoints.size() == 2);
  CHECK(app->endpoints[1].host == "127.0.0.1");
  CHECK(app->endpoints[1].port == 9000);
  CHECK_FALSE(app->tls);
  const Cluster* peers = s.find_cluster("peers");
  REQUIRE(peers);
  CHECK(peers->endpoints[0].host == "2001:db8::1");
  CHECK(peers->endpoints[0].port == 8443);
  CHECK(peers->endpoints[1].host == "peer.example.org");
  REQUIRE(peers->tls);
  CHECK(peers->tls->cert == (dir / "certs/client.pem").string());
  CHECK(peers->tls->sni == "backend.example.org");
  CHECK(peers->tls->profile == Profile::Extended);
  CHECK(peers->tls->min_version == 0x0304);
  CHECK(peers->tls->max_version == 0x0304);
  CHECK(s.find_cluster("nope") == nullptr);
  CHECK(std::string(profile_name(Profile::Tls12Only)) == "tls12-only");
  CHECK(std::string(mode_name(Mode::Http1)) == "http1");
}

TEST_CASE("defaults", "[config]") {
  TempDir d;
  LoadResult r = load(d, kMinimal);
  INFO(dump(r));
  REQUIRE(r.snapshot);
  const Snapshot& s = *r.snapshot;
  CHECK(s.path == "x.toml");
  CHECK(s.workers == 0);
  CHECK(s.log_level == "info");
  CHECK(s.access_log == "stderr");
  CHECK(s.drain_timeout == Millis(30000));
  CHECK(s.limits.high_watermark == 1u << 20);
  CHECK(s.limits.low_watermark == 256u << 10);
  CHECK(s.listeners[0].idle_timeout == Millis(300000));
  CHECK(s.clusters[0].connect_timeout == Millis(5000));
}

TEST_CASE("bad duration reports exact line, column and key", "[config]") {
  TempDir d;
  LoadResult r = load(d, R"([[cluster]]
name = "app"
endpoints = ["127.0.0.1:9000"]
[[listener]]
name = "in"
address = "127.0.0.1:8080"
      idle_timeout = "5 minutes"
cluster = "app"
)");
  ConfigError e = only_error(r);
  CHECK(e.str().rfind("x.toml:7:22: listener[0].idle_timeout: invalid duration '5 minutes'", 0) ==
        0);
  CHECK(e.loc.file == "x.toml");
  CHECK(e.loc.line == 7);
  CHECK(e.loc.col == 22);
  CHECK(e.key == "listener[0].idle_timeout");
}

TEST_CASE("durations", "[config]") {
  TempDir d;
  auto drain = [&](const std::string& v) {
    return load(d, "drain_timeout = " + v + "\n" + kMinimal);
  };
  CHECK(drain("\"250ms\"").snapshot->drain_timeout == Millis(250));
  CHECK(drain("\"10s\"").snapshot->drain_timeout == Millis(10000));
  CHECK(drain("\"5m\"").snapshot->drain_timeout == Millis(300000));
  CHECK(drain("\"1h\"").snapshot->drain_timeout == Millis(3600000));
  CHECK(drain("7").snapshot->drain_timeout == Millis(7000));
  CHECK(drain("\"24h\"").snapshot->drain_timeout == Millis(86400000));
  for (const char* bad :
       {"0", "-1", "\"0s\"", "\"25h\"", "\"10\"", "\"1d\"", "\"s\"", "\"-5s\"", "1.5", "true"}) {
    INFO(bad);
    ConfigError e = only_error(drain(bad));
    CHECK(e.key == "drain_timeout");
    CHECK(e.loc.line == 1);
    CHECK(e.loc.col == 17);
  }
  CHECK(only_error(drain("true")).reason ==
        "expected a duration string or an integer of seconds, got boolean");
}

TEST_CASE("unknown key gets a did-you-mean suggestion", "[config]") {
  TempDir d;
  ConfigError e = only_error(load(d, std::string(kMinimal) + R"(
[[listener]]
name = "in2"
address = "127.0.0.1:8081"
cluster = "app"
handshake_timout = "5s"
)"));
  CHECK(e.str() ==
        "x.toml:15:1: listener[1].handshake_timout: unknown key 'handshake_timout' (did you mean "
        "'handshake_timeout'?)");

  e = only_error(load(d, std::string("wrokers = 3\n") + kMinimal));
  CHECK(e.str() == "x.toml:1:1: wrokers: unknown key 'wrokers' (did you mean 'workers'?)");

  // Nothing close: no suggestion.
  e = only_error(load(d, std::string("frobnicate = 3\n") + kMinimal));
  CHECK(e.str() == "x.toml:1:1: frobnicate: unknown key 'frobnicate'");
}

TEST_CASE("wrong types", "[config]") {
  TempDir d;
  ConfigError e = only_error(load(d, std::string("log_level = 3\n") + kMinimal));
  CHECK(e.str() == "x.toml:1:13: log_level: expected a string, got integer");
  e = only_error(load(d, std::string("workers = \"2\"\n") + kMinimal));
  CHECK(e.str() == "x.toml:1:11: workers: expected an integer, got string");
  e = only_error(load(d, std::string("workers = 257\n") + kMinimal));
  CHECK(e.str() == "x.toml:1:11: workers: must be between 0 and 256, got 257");
  e = only_error(load(d, std::string(kMinimal) + "allow_remote_plaintext = \"yes\"\n"));
  CHECK(e.str() ==
        "x.toml:10:26: cluster[0].allow_remote_plaintext: expected a boolean, got string");
  e = only_error(load(d, R"([[listener]]
name = "in"
address = "127.0.0.1:8080"
cluster = "app"
[[cluster]]
name = "app"
endpoints = ["unix:/a.sock", 5]
)"));
  CHECK(e.str() == "x.toml:7:30: cluster[0].endpoints[1]: expected a string, got integer");
  e = only_error(
      load(d, std::string("listener = 5\n[[cluster]]\nname = \"a\"\nendpoints = [\"unix:/a\"]\n")));
  CHECK(e.str() ==
        "x.toml:1:12: listener: expected an array of tables ([[listener]]), got integer");
}

TEST_CASE("required keys are reported at the table", "[config]") {
  TempDir d;
  LoadResult r = load(d, R"([[cluster]]
name = "app"
endpoints = ["unix:/a.sock"]

[[listener]]
name = "in"
)");
  INFO(dump(r));
  REQUIRE(r.errors.size() == 2);
  CHECK(strs(r)[0] == "x.toml:5:1: listener[0].address: required in a [[listener]]");
  CHECK(strs(r)[1] == "x.toml:5:1: listener[0].cluster: required in a [[listener]]");

  ConfigError e = only_error(load(d, "[[cluster]]\nname = \"app\"\nendpoints = [\"unix:/a\"]\n"));
  CHECK(e.key == "listener");
  CHECK(e.reason == "at least one [[listener]] is required");
}

TEST_CASE("all errors are reported at once", "[config]") {
  TempDir d;
  LoadResult r = load(d, R"(workers = -1
[[listener]]
name = "in"
address = "127.0.0.1:8080"
cluster = "nope"
idle_timeout = "forever"
[[cluster]]
name = "app"
endpoints = ["unix:/a.sock"]
)");
  INFO(dump(r));
  CHECK_FALSE(r.snapshot);
  REQUIRE(r.errors.size() == 3);
  // Sorted into file order.
  CHECK(strs(r)[0] == "x.toml:1:11: workers: must be between 0 and 256, got -1");
  CHECK(strs(r)[1] == "x.toml:5:11: listener[0].cluster: no cluster named 'nope'");
  CHECK(r.errors[2].key == "listener[0].idle_timeout");
  CHECK(r.errors[2].loc.line == 6);
}

TEST_CASE("missing cluster, with suggestion", "[config]") {
  TempDir d;
  ConfigError e = only_error(load(d, R"([[listener]]
name = "in"
address = "127.0.0.1:8080"
cluster = "ap"
[[cluster]]
name = "app"
endpoints = ["unix:/a.sock"]
)"));
  CHECK(e.str() == "x.toml:4:11: listener[0].cluster: no cluster named 'ap' (did you mean 'app'?)");
}

TEST_CASE("duplicate names and addresses", "[config]") {
  TempDir d;
  LoadResult r = load(d, R"([[listener]]
name = "in"
address = "127.0.0.1:8080"
cluster = "app"
[[listener]]
name = "in"
address = "127.0.0.1:8080"
cluster = "app"
[[listener]]
name = "wild"
address = "0.0.0.0:8080"
cluster = "app"
allow_remote_plaintext = true
[[cluster]]
name = "app"
endpoints = ["unix:/a.sock"]
[[cluster]]
name = "app"
endpoints = ["unix:/b.sock"]
)");
  INFO(dump(r));
  REQUIRE(r.errors.size() == 4);
  CHECK(strs(r)[0] ==
        "x.toml:6:8: listener[1].name: duplicate listener name 'in' (first defined at x.toml:2:8)");
  CHECK(strs(r)[1] ==
        "x.toml:7:11: listener[1].address: address '127.0.0.1:8080' is already used by "
        "listener[0] ('127.0.0.1:8080' at x.toml:3:11)");
  CHECK(r.errors[2].key == "listener[2].address");  // 0.0.0.0 overlaps 127.0.0.1 on one port
  CHECK(r.errors[2].loc.line == 11);
  CHECK(
      strs(r)[3] ==
      "x.toml:18:8: cluster[1].name: duplicate cluster name 'app' (first defined at x.toml:15:8)");

  // Port 0 (kernel-chosen) never conflicts; the same UDS path does.
  r = load(d, R"([[listener]]
name = "a"
address = "127.0.0.1:0"
cluster = "app"
[[listener]]
name = "b"
address = "127.0.0.1:0"
cluster = "app"
[[listener]]
name = "c"
address = "unix:/tmp/x.sock"
cluster = "app"
[[listener]]
name = "d"
address = "unix:/tmp/x.sock"
cluster = "app"
[[cluster]]
name = "app"
endpoints = ["unix:/a.sock"]
)");
  ConfigError e = only_error(r);
  CHECK(e.key == "listener[3].address");
  CHECK(e.loc.line == 15);
}

TEST_CASE("remote plaintext is refused unless allowed", "[config]") {
  TempDir d;
  const char* tmpl = R"([[listener]]
name = "in"
address = "%s"
cluster = "app"%s
[[cluster]]
name = "app"
endpoints = ["unix:/a.sock"]
)";
  auto make = [&](const std::string& addr, const std::string& extra) {
    char buf[1024];
    std::snprintf(buf, sizeof buf, tmpl, addr.c_str(), extra.c_str());
    return load(d, buf);
  };
  ConfigError e = only_error(make("0.0.0.0:8080", ""));
  CHECK(e.key == "listener[0].address");
  CHECK(e.loc.line == 3);
  CHECK(e.loc.col == 11);
  CHECK(e.reason.find("plaintext listener on non-local address '0.0.0.0:8080'") == 0);
  CHECK(only_error(make("10.1.2.3:80", "")).key == "listener[0].address");
  CHECK(only_error(make("[::]:80", "")).key == "listener[0].address");
  CHECK(only_error(make("example.org:80", "")).key == "listener[0].address");
  CHECK(make("0.0.0.0:8080", "\nallow_remote_plaintext = true").snapshot);
  for (const char* local :
       {"127.0.0.1:8080", "127.9.9.9:1", "[::1]:8080", "localhost:8080", "unix:/run/x.sock"}) {
    INFO(local);
    CHECK(make(local, "").snapshot);
  }
  // TLS listeners may bind anywhere.
  CHECK(make("0.0.0.0:8443",
             "\n[listener.tls]\ncert = \"certs/server.pem\"\nkey = \"certs/server.key\"\n"
             "ca = \"certs/ca.pem\"")
            .snapshot);

  // Clusters: each non-local plaintext endpoint is an error at its own position.
  LoadResult r = load(d, R"([[listener]]
name = "in"
address = "127.0.0.1:1"
cluster = "app"
[[cluster]]
name = "app"
endpoints = ["127.0.0.1:9000", "10.0.0.1:9000"]
)");
  e = only_error(r);
  CHECK(e.key == "cluster[0].endpoints[1]");
  CHECK(e.loc.line == 7);
  CHECK(e.loc.col == 32);
  CHECK(e.reason.find("plaintext cluster endpoint '10.0.0.1:9000' is not local") == 0);
  r = load(d, R"([[listener]]
name = "in"
address = "127.0.0.1:1"
cluster = "app"
[[cluster]]
name = "app"
endpoints = ["10.0.0.1:9000"]
allow_remote_plaintext = true
)");
  CHECK(r.snapshot);
}

TEST_CASE("UDS path over 107 bytes", "[config]") {
  TempDir d;
  std::string ok_path = "/" + std::string(106, 'a');    // 107 bytes
  std::string long_path = "/" + std::string(107, 'a');  // 108 bytes
  auto make = [&](const std::string& p) {
    return load(
        d, "[[listener]]\nname = \"in\"\naddress = \"unix:" + p +
               "\"\ncluster = \"app\"\n[[cluster]]\nname = \"app\"\nendpoints = [\"unix:/a\"]\n");
  };
  CHECK(make(ok_path).snapshot);
  ConfigError e = only_error(make(long_path));
  CHECK(e.str() ==
        "x.toml:3:11: listener[0].address: unix socket path is 108 bytes; the limit is "
        "107 (sun_path)");
}

TEST_CASE("cert files must exist, relative paths resolve against the config dir", "[config]") {
  TempDir d;
  LoadResult r = load(d, R"([[listener]]
name = "in"
address = "0.0.0.0:8443"
cluster = "app"
  [listener.tls]
  cert = "certs/missing.pem"
  key = "certs/server.key"
  ca = "certs"
[[cluster]]
name = "app"
endpoints = ["unix:/a.sock"]
)");
  INFO(dump(r));
  REQUIRE(r.errors.size() == 2);
  CHECK(strs(r)[0] == "x.toml:6:10: listener[0].tls.cert: cannot read '" +
                          (d.path() / "certs/missing.pem").string() + "': no such file");
  CHECK(strs(r)[1] == "x.toml:8:8: listener[0].tls.ca: cannot read '" +
                          (d.path() / "certs").string() + "': not a regular file");

  // Absolute paths are used as they are.
  std::string abs = (d.path() / "certs/server.pem").string();
  r = load_string(R"([[listener]]
name = "in"
address = "0.0.0.0:8443"
cluster = "app"
  [listener.tls]
  cert = ")" + abs + R"("
  key = "certs/server.key"
  require_client_cert = false
[[cluster]]
name = "app"
endpoints = ["unix:/a.sock"]
)",
                  "x.toml", "/nonexistent-base");
  INFO(dump(r));
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors[0].key == "listener[0].tls.key");
  CHECK(r.errors[0].reason == "cannot read '/nonexistent-base/certs/server.key': no such file");
}

TEST_CASE("tls block required keys", "[config]") {
  TempDir d;
  LoadResult r = load(d, R"([[listener]]
name = "in"
address = "0.0.0.0:8443"
cluster = "app"
  [listener.tls]
  alpn = ["h2"]
[[cluster]]
name = "app"
endpoints = ["10.0.0.1:443"]
  [cluster.tls]
  key = "certs/client.key"
  require_client_cert = true
)");
  INFO(dump(r));
  REQUIRE(r.errors.size() == 6);
  CHECK(strs(r)[0] == "x.toml:5:3: listener[0].tls.cert: required in a listener tls block");
  CHECK(r.errors[1].key == "listener[0].tls.key");
  CHECK(r.errors[2].key == "listener[0].tls.ca");
  CHECK(r.errors[2].reason.find("required when require_client_cert = true") == 0);
  CHECK(strs(r)[3] ==
        "x.toml:10:3: cluster[0].tls.ca: required in a cluster tls block (to verify the server)");
  CHECK(strs(r)[4] == "x.toml:10:3: cluster[0].tls.cert: required with key");
  CHECK(strs(r)[5] ==
        "x.toml:12:3: cluster[0].tls.require_client_cert: require_client_cert is not valid in a "
        "cluster tls block (the proxy is the TLS client there; set cert and key to present a "
        "client certificate)");
}

TEST_CASE("FIPS-POLICY C2: non-approved TLS parameters are config errors", "[config][fips]") {
  TempDir d;
  auto with_tls = [&](const std::string& line) {
    return load(d, R"([[listener]]
name = "in"
address = "0.0.0.0:8443"
cluster = "app"
[listener.tls]
cert = "certs/server.pem"
key = "certs/server.key"
ca = "certs/ca.pem"
)" + line + R"(
[[cluster]]
name = "app"
endpoints = ["unix:/a.sock"]
)");
  };
  ConfigError e = only_error(with_tls("cipher_suites = [\"TLS_CHACHA20_POLY1305_SHA256\"]"));
  CHECK(e.str() ==
        "x.toml:9:1: listener[0].tls.cipher_suites: cipher suites are fixed by the FIPS profile; "
        "TLS_CHACHA20_POLY1305_SHA256 is not approved");
  e = only_error(
      with_tls("ciphers = \"ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305\""));
  CHECK(
      e.reason ==
      "cipher suites are fixed by the FIPS profile; ECDHE-ECDSA-CHACHA20-POLY1305 is not approved");
  e = only_error(with_tls("ciphers = \"TLS_AES_128_GCM_SHA256\""));
  CHECK(e.reason.find("cipher suites are fixed by the FIPS profile") == 0);

  e = only_error(with_tls("early_data = true"));
  CHECK(e.str() ==
        "x.toml:9:1: listener[0].tls.early_data: early_data is never allowed (FIPS policy: no "
        "0-RTT)");
  e = only_error(with_tls("groups = [\"P-256\", \"X25519\"]"));
  CHECK(e.key == "listener[0].tls.groups");
  CHECK(e.reason.find("X25519 is not approved") != std::string::npos);
  e = only_error(with_tls("curves = \"X25519\""));
  CHECK(e.key == "listener[0].tls.curves");
  e = only_error(with_tls("sigalgs = [\"rsa_pkcs1_sha1\"]"));
  CHECK(e.key == "listener[0].tls.sigalgs");
  CHECK(e.reason.find("rsa_pkcs1_sha1 is not approved") != std::string::npos);

  e = only_error(with_tls("min_version = \"1.1\""));
  CHECK(e.str() ==
        "x.toml:9:15: listener[0].tls.min_version: TLS 1.1 is not allowed (FIPS policy: "
        "TLS 1.2 and 1.3 only)");
  e = only_error(with_tls("min_version = \"1.0\""));
  CHECK(e.reason == "TLS 1.0 is not allowed (FIPS policy: TLS 1.2 and 1.3 only)");
  e = only_error(with_tls("max_version = \"1.4\""));
  CHECK(e.reason == "unknown TLS version '1.4' (expected \"1.2\" or \"1.3\")");
  e = only_error(with_tls("min_version = 1.2"));
  CHECK(e.reason.find("expected a string, got float") == 0);
  e = only_error(with_tls("min_version = \"1.3\"\nmax_version = \"1.2\""));
  CHECK(
      e.str() ==
      "x.toml:9:15: listener[0].tls.min_version: min_version 1.3 is greater than max_version 1.2");
  e = only_error(with_tls("profile = \"tls12-only\"\nmax_version = \"1.3\""));
  CHECK(e.key == "listener[0].tls.max_version");
  CHECK(e.loc.line == 10);
  e = only_error(with_tls("profile = \"strct\""));
  CHECK(
      e.reason ==
      "unknown profile 'strct' (expected strict, tls12-only or extended) (did you mean 'strict'?)");

  LoadResult r = with_tls("min_version = \"1.3\"");
  REQUIRE(r.snapshot);
  CHECK(r.snapshot->listeners[0].tls->min_version == 0x0304);

  // The same checks apply in a cluster tls block.
  r = load(d, R"([[listener]]
name = "in"
address = "127.0.0.1:1"
cluster = "app"
[[cluster]]
name = "app"
endpoints = ["10.0.0.1:443"]
  [cluster.tls]
  ca = "certs/ca.pem"
  cipher_suites = ["TLS_CHACHA20_POLY1305_SHA256"]
  early_data = true
  min_version = "1.1"
)");
  INFO(dump(r));
  REQUIRE(r.errors.size() == 3);
  CHECK(strs(r)[0] ==
        "x.toml:10:3: cluster[0].tls.cipher_suites: cipher suites are fixed by the FIPS profile; "
        "TLS_CHACHA20_POLY1305_SHA256 is not approved");
  CHECK(strs(r)[1] ==
        "x.toml:11:3: cluster[0].tls.early_data: early_data is never allowed (FIPS policy: no "
        "0-RTT)");
  CHECK(strs(r)[2] ==
        "x.toml:12:17: cluster[0].tls.min_version: TLS 1.1 is not allowed (FIPS policy: TLS 1.2 "
        "and 1.3 only)");
}

TEST_CASE("limits", "[config]") {
  TempDir d;
  ConfigError e = only_error(load(
      d, std::string("[limits]\nhigh_watermark = \"64KiB\"\nlow_watermark = 65536\n") + kMinimal));
  CHECK(e.str() ==
        "x.toml:3:17: limits.low_watermark: low_watermark (65536) must be less than high_watermark "
        "(65536)");
  e = only_error(load(d, std::string("[limits]\nhigh_watermark = \"1MB\"\n") + kMinimal));
  CHECK(e.key == "limits.high_watermark");
  CHECK(e.reason.find("invalid size '1MB'") == 0);
  LoadResult r = load(
      d, std::string("[limits]\nhigh_watermark = \"1GiB\"\nlow_watermark = 4096\n") + kMinimal);
  REQUIRE(r.snapshot);
  CHECK(r.snapshot->limits.high_watermark == 1ull << 30);
  CHECK(r.snapshot->limits.low_watermark == 4096);
}

TEST_CASE("TOML syntax error is one error at toml++'s position", "[config]") {
  TempDir d;
  LoadResult r = load(d, "workers = 2\nlog_level = \"info\n");
  ConfigError e = only_error(r);
  CHECK(e.loc.file == "x.toml");
  CHECK(e.loc.line == 2);
  CHECK(e.key.empty());
  CHECK(e.reason.find("TOML syntax error: ") == 0);
  CHECK(e.str().rfind("x.toml:2:", 0) == 0);
}

TEST_CASE("load_file errors", "[config]") {
  TempDir d;
  LoadResult r = load_file((d.path() / "absent.toml").string());
  ConfigError e = only_error(r);
  CHECK(e.str().find("absent.toml:0:0: cannot read") != std::string::npos);

  e = only_error(load_file(d.path().string()));
  CHECK(e.str() == d.path().string() + ":0:0: cannot read: is a directory");

  std::string path = d.write("bad.toml", std::string("workers = \"x\"\n") + kMinimal);
  r = load_file(path);
  REQUIRE(!r.errors.empty());
  CHECK(r.errors[0].str() == path + ":1:11: workers: expected an integer, got string");
}

TEST_CASE("parse_address and is_local", "[config]") {
  std::string why;
  auto a = parse_address("[::1]:8443", why);
  REQUIRE(a);
  CHECK(a->host == "::1");
  CHECK(a->port == 8443);
  CHECK(a->is_local());
  CHECK(parse_address("127.0.0.1:1", why)->is_local());
  CHECK(parse_address("LocalHost:1", why)->is_local());
  CHECK(parse_address("[::ffff:127.0.0.1]:1", why)->is_local());
  CHECK_FALSE(parse_address("128.0.0.1:1", why)->is_local());
  CHECK_FALSE(parse_address("[::]:1", why)->is_local());
  CHECK_FALSE(parse_address("localhost.example.org:1", why)->is_local());
  for (const char* bad :
       {"", "host", "::1:80", "[::1]", "[::1]80", "[zz]:1", "1.2.3.999:1", "h:99999", "h:-1",
        "h:", ":80", "bad_host!:1", "unix:", "unix:rel.sock"}) {
    INFO(bad);
    CHECK_FALSE(parse_address(bad, why));
    CHECK_FALSE(why.empty());
  }
}

TEST_CASE("every schema key is documented in config/REFERENCE.md", "[config][docs]") {
  std::ifstream in(std::string(FP_SOURCE_DIR) + "/config/REFERENCE.md");
  REQUIRE(in);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string doc = ss.str();
  std::vector<std::string> keys = documented_keys();
  REQUIRE(keys.size() > 30);
  CHECK(std::find(keys.begin(), keys.end(), "listener.tls.cert") != keys.end());
  for (const auto& k : keys) {
    INFO(k);
    CHECK(doc.find("`" + k + "`") != std::string::npos);
  }
}
