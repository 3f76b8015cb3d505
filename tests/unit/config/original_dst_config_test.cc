// type = "original_dst" clusters (transparent outbound capture, issue #12): what loads, and the
// exact file:line:col: key of every refusal.

#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "config/config.h"

namespace fs = std::filesystem;
using namespace fp::config;

namespace {

class Dir {
 public:
  Dir() {
    std::string tmpl = (fs::temp_directory_path() / "fp-config-odst-XXXXXX").string();
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    path_ = tmpl;
    fs::create_directories(path_ / "certs");
    for (const char* f : {"server.pem", "server.key", "ca.pem", "client.pem", "client.key"}) {
      std::ofstream(path_ / "certs" / f) << "placeholder\n";
    }
  }
  ~Dir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string path() const { return path_.string(); }

 private:
  fs::path path_;
};

// Line 1..N: an outbound capture listener and its original_dst cluster; `cluster_extra` is
// inserted as line 8 (before the tls block), `listener_extra` as line 5.
std::string config(const std::string& listener_extra = "", const std::string& cluster_extra = "",
                   const std::string& address = "127.0.0.1:15001") {
  return "[[listener]]\n"                                  // 1
         "name = \"capture\"\n"                            // 2
         "address = \"" + address + "\"\n"                 // 3
         "cluster = \"mesh\"\n"                            // 4
         + (listener_extra.empty() ? "# -\n" : listener_extra + "\n") +  // 5
         "[[cluster]]\n"                                   // 6
         "name = \"mesh\"\n"                               // 7
         + (cluster_extra.empty() ? "# -\n" : cluster_extra + "\n") +  // 8
         "type = \"original_dst\"\n"                       // 9
         "  [cluster.tls]\n"                               // 10
         "  cert = \"certs/client.pem\"\n"                 // 11
         "  key = \"certs/client.key\"\n"                  // 12
         "  ca = \"certs/ca.pem\"\n"                       // 13
         "  allow_spiffe = [\"spiffe://example.org/ns/default/\"]\n";  // 14
}

std::vector<std::string> errors(const LoadResult& r) {
  std::vector<std::string> out;
  for (const auto& e : r.errors) out.push_back(e.str());
  return out;
}

}  // namespace

TEST_CASE("original_dst: a plaintext TCP listener to an original_dst cluster with tls loads", "[config][fast]") {
  Dir d;
  LoadResult r = load_string(config("", "port = 8443"), "x.toml", d.path());
  INFO(errors(r).size() << (r.errors.empty() ? "" : r.errors[0].str()));
  REQUIRE(r.snapshot);
  const Cluster& c = r.snapshot->clusters.at(0);
  CHECK(c.type == ClusterType::OriginalDst);
  CHECK(c.port == 8443);
  CHECK(c.endpoints.empty());
  CHECK(c.connect_retries == 0);
  CHECK(c.tls.has_value());
  // IPv6 listener, no port override: original port kept (0).
  LoadResult r6 = load_string(config("", "", "[::1]:15001"), "x.toml", d.path());
  REQUIRE(r6.snapshot);
  CHECK(r6.snapshot->clusters.at(0).port == 0);
  // A static cluster is the default and says so.
  LoadResult rs = load_string(
      "[[listener]]\nname = \"a\"\naddress = \"127.0.0.1:1\"\ncluster = \"b\"\n[[cluster]]\nname = \"b\"\n"
      "type = \"static\"\nendpoints = [\"127.0.0.1:2\"]\n",
      "x.toml", d.path());
  REQUIRE(rs.snapshot);
  CHECK(rs.snapshot->clusters.at(0).type == ClusterType::Static);
}

TEST_CASE("original_dst: endpoints, LB and health-check keys are refused at file:line:col: key", "[config][fast]") {
  Dir d;
  struct Case {
    std::string line8, expected, reason;
  };
  const std::vector<Case> cases = {
      {"endpoints = [\"10.0.0.1:8443\"]", "x.toml:8:13: cluster[0].endpoints", "is not valid with type = \"original_dst\""},
      {"weights = [1]", "x.toml:8:11: cluster[0].weights", "nothing to list, balance, retry or check"},
      {"lb_policy = \"random\"", "x.toml:8:13: cluster[0].lb_policy", "lb_policy is not valid"},
      {"connect_retries = 2", "x.toml:8:19: cluster[0].connect_retries", "connect_retries is not valid"},
      {"no_healthy = \"use_all\"", "x.toml:8:14: cluster[0].no_healthy", "no_healthy is not valid"},
      {"health_check = { type = \"tcp\" }", "x.toml:8:16: cluster[0].health_check", "health_check is not valid"},
      {"outlier_detection = { consecutive_failures = 2 }", "x.toml:8:21: cluster[0].outlier_detection",
       "outlier_detection is not valid"},
      {"port = 0", "x.toml:8:8: cluster[0].port", "must be between 1 and 65535"},
      {"port = \"https\"", "x.toml:8:8: cluster[0].port", "expected an integer"},
  };
  for (const Case& c : cases) {
    LoadResult r = load_string(config("", c.line8), "x.toml", d.path());
    const auto all = errors(r);
    std::string joined;
    for (const auto& e : all) joined += e + "\n";
    INFO(c.line8 << "\n" << joined);
    CHECK_FALSE(r.snapshot);
    REQUIRE(all.size() == 1);
    CHECK(all[0].rfind(c.expected + ": ", 0) == 0);
    CHECK(all[0].find(c.reason) != std::string::npos);
  }
}

TEST_CASE("original_dst: the listener must be plaintext TCP, a plaintext upstream needs allow_remote_plaintext",
          "[config][fast]") {
  Dir d;
  // A TLS listener in front of an original_dst cluster.
  {
    const std::string text = config(
        "  [listener.tls]\n  cert = \"certs/server.pem\"\n  key = \"certs/server.key\"\n  ca = \"certs/ca.pem\"");
    LoadResult r = load_string(text, "x.toml", d.path());
    const auto all = errors(r);
    REQUIRE(all.size() == 1);
    CHECK(all[0].rfind("x.toml:5:3: listener[0].tls: ", 0) == 0);
    CHECK(all[0].find("must have no [listener.tls] block") != std::string::npos);
  }
  // A Unix-socket listener: no SO_ORIGINAL_DST.
  {
    LoadResult r = load_string(config("", "", "unix:/tmp/fp-odst.sock"), "x.toml", d.path());
    const auto all = errors(r);
    REQUIRE(all.size() == 1);
    CHECK(all[0].rfind("x.toml:3:11: listener[0].address: ", 0) == 0);
    CHECK(all[0].find("needs a TCP listener") != std::string::npos);
  }
  // No [cluster.tls]: plaintext to any address the app dials is refused unless allowed.
  const std::string plain =
      "[[listener]]\nname = \"capture\"\naddress = \"127.0.0.1:15001\"\ncluster = \"mesh\"\n"
      "[[cluster]]\nname = \"mesh\"\ntype = \"original_dst\"\n";
  {
    LoadResult r = load_string(plain, "x.toml", d.path());
    const auto all = errors(r);
    REQUIRE(all.size() == 1);
    CHECK(all[0].rfind("x.toml:7:8: cluster[0].type: ", 0) == 0);
    CHECK(all[0].find("add a [cluster.tls] block, or set allow_remote_plaintext = true") != std::string::npos);
  }
  {
    LoadResult r = load_string(plain + "allow_remote_plaintext = true\n", "x.toml", d.path());
    CHECK(r.errors.empty());
    CHECK(r.snapshot);
  }
  // Unknown type, with a suggestion; port on a static cluster.
  {
    LoadResult r = load_string(
        "[[listener]]\nname = \"a\"\naddress = \"127.0.0.1:1\"\ncluster = \"b\"\n[[cluster]]\nname = \"b\"\n"
        "type = \"original_dest\"\nendpoints = [\"127.0.0.1:2\"]\n",
        "x.toml", d.path());
    const auto all = errors(r);
    REQUIRE(all.size() == 1);
    CHECK(all[0].rfind("x.toml:7:8: cluster[0].type: unknown cluster type 'original_dest'", 0) == 0);
    CHECK(all[0].find("(did you mean 'original_dst'?)") != std::string::npos);
  }
}
