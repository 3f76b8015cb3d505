// config/ includes: `include = [...]` globs, nested includes, cycles, arrays that concatenate
// across files, duplicate keys naming both places, and errors that name the included file.

#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <string>

#include "config/config.h"

namespace fs = std::filesystem;
using namespace fp::config;

namespace {

class Dir {
 public:
  Dir() {
    std::string tmpl = (fs::temp_directory_path() / "fp-include-test-XXXXXX").string();
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    path_ = tmpl;
    fs::create_directories(path_ / "certs");
    for (const char* f : {"server.pem", "server.key", "ca.pem"}) write("certs/" + std::string(f), "x\n");
  }
  ~Dir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string write(const std::string& rel, const std::string& text) const {
    fs::path p = path_ / rel;
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << text;
    return p.string();
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

std::string dump(const LoadResult& r) {
  std::string s;
  for (const auto& e : r.errors) s += e.str() + "\n";
  return s;
}

std::string listener(const std::string& name, int port) {
  return "[[listener]]\nname = \"" + name + "\"\naddress = \"127.0.0.1:" + std::to_string(port) +
         "\"\ncluster = \"app\"\n";
}
const char* kCluster = "[[cluster]]\nname = \"app\"\nendpoints = [\"127.0.0.1:9000\"]\n";

}  // namespace

TEST_CASE("include: globs sorted, arrays concatenate, nested includes", "[config][include]") {
  Dir d;
  std::string main = d.write("main.toml", "include = [\"conf.d/*.toml\", \"extra.toml\"]\nworkers = 2\n" +
                                              listener("main", 8001));
  d.write("conf.d/20-b.toml", listener("b", 8003));
  d.write("conf.d/10-a.toml", "include = [\"../nested/*.toml\"]\n" + listener("a", 8002));
  d.write("conf.d/README", "not toml {");
  fs::create_directories(d.path() / "conf.d" / "dir.toml");  // a directory is skipped
  d.write("nested/n.toml", "log_level = \"debug\"\n");
  d.write("extra.toml", kCluster);
  LoadResult r = load_file(main);
  INFO(dump(r));
  REQUIRE(r.snapshot);
  const Snapshot& s = *r.snapshot;
  REQUIRE(s.listeners.size() == 3);
  CHECK(s.listeners[0].name == "main");
  CHECK(s.listeners[1].name == "a");
  CHECK(s.listeners[2].name == "b");
  CHECK(s.listeners[1].loc.file == d.path().string() + "/conf.d/10-a.toml");
  CHECK(s.clusters.size() == 1);
  CHECK(s.workers == 2);
  CHECK(s.log_level == "debug");
}

TEST_CASE("include: a glob matching nothing is fine, a missing literal file is an error",
          "[config][include]") {
  Dir d;
  std::string body = listener("in", 8001) + kCluster;
  LoadResult ok = load_string("include = [\"conf.d/*.toml\"]\n" + body, "x.toml", d.path().string());
  INFO(dump(ok));
  CHECK(ok.snapshot);
  LoadResult bad = load_string("include = [\"nope.toml\"]\n" + body, "x.toml", d.path().string());
  REQUIRE(bad.errors.size() == 1);
  CHECK(bad.errors[0].str() == "x.toml:1:12: include[0]: cannot read 'nope.toml': no such file");
}

TEST_CASE("include: errors inside an included file name that file and line", "[config][include]") {
  Dir d;
  d.write("conf.d/a.toml", listener("a", 8002) + "idle_timeout = \"5 minutes\"\nbogus = 1\n");
  std::string main = d.write("main.toml", "include = [\"conf.d/a.toml\"]\n" + std::string(kCluster));
  LoadResult r = load_file(main);
  INFO(dump(r));
  REQUIRE(r.errors.size() == 2);
  const std::string f = d.path().string() + "/conf.d/a.toml";
  CHECK(r.errors[0].str().rfind(f + ":5:16: listener[0].idle_timeout: invalid duration", 0) == 0);
  CHECK(r.errors[1].str() == f + ":6:1: listener[0].bogus: unknown key 'bogus'");

  // A syntax error in an included file is reported there; the rest is not checked.
  d.write("conf.d/a.toml", "workers = \n");
  r = load_file(main);
  INFO(dump(r));
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors[0].str().rfind(f + ":1:", 0) == 0);
  CHECK(r.errors[0].key.empty());

  // Relative names stay relative in errors: the including file's name + the pattern.
  r = load_string("include = [\"conf.d/a.toml\"]\n", "etc/main.toml", d.path().string());
  REQUIRE(!r.errors.empty());
  CHECK(r.errors[0].loc.file == "etc/conf.d/a.toml");
}

TEST_CASE("include: relative cert paths resolve against the including file's directory",
          "[config][include]") {
  Dir d;
  d.write("sub/certs/s.pem", "x\n");
  d.write("sub/l.toml", listener("a", 8002) + "  [listener.tls]\n  cert = \"certs/s.pem\"\n  key = \"certs/s.pem\"\n"
                                            "  require_client_cert = false\n");
  std::string main = d.write("main.toml", "include = [\"sub/l.toml\"]\n" + std::string(kCluster));
  LoadResult r = load_file(main);
  INFO(dump(r));
  REQUIRE(r.snapshot);
  CHECK(r.snapshot->listeners[0].tls->cert == (d.path() / "sub/certs/s.pem").string());
}

TEST_CASE("include: a key defined in two files is an error naming both", "[config][include]") {
  Dir d;
  d.write("a.toml", "workers = 3\n[limits]\nhigh_watermark = \"2MiB\"\n");
  std::string main = d.write("main.toml", "include = [\"a.toml\"]\nworkers = 2\n[limits]\nlow_watermark = 1024\n" +
                                              listener("in", 8001) + kCluster);
  LoadResult r = load_file(main);
  INFO(dump(r));
  REQUIRE(r.errors.size() == 2);
  const std::string m = d.path().string() + "/main.toml", a = d.path().string() + "/a.toml";
  CHECK(r.errors[0].str() == a + ":1:1: workers: 'workers' is already defined at " + m +
                                 ":2:1 (only [[listener]] and [[cluster]] may appear in more than one file)");
  CHECK(r.errors[1].str().rfind(a + ":2:2: limits: 'limits' is already defined at " + m + ":3:2", 0) == 0);
}

TEST_CASE("include: cycles and double inclusion are errors", "[config][include]") {
  Dir d;
  d.write("a.toml", "include = [\"b.toml\"]\n");
  d.write("b.toml", "include = [\"a.toml\"]\n");
  std::string main = d.write("main.toml", "include = [\"a.toml\"]\n" + listener("in", 8001) + kCluster);
  LoadResult r = load_file(main);
  INFO(dump(r));
  REQUIRE(r.errors.size() == 1);
  const std::string dir = d.path().string();
  CHECK(r.errors[0].str() == dir + "/b.toml:1:12: include[0]: include cycle: " + dir + "/a.toml -> " + dir +
                                 "/b.toml -> " + dir + "/a.toml");

  d.write("self.toml", "include = [\"self.toml\"]\n");
  r = load_file(d.path().string() + "/self.toml");
  REQUIRE(r.errors.size() == 2);  // the cycle, and no [[listener]]
  CHECK(r.errors[1].reason.find("include cycle: ") != std::string::npos);

  d.write("c.toml", "log_level = \"warn\"\n");
  main = d.write("main2.toml", "include = [\"c.toml\", \"./c.toml\"]\n" + listener("in", 8001) + kCluster);
  r = load_file(main);
  INFO(dump(r));
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors[0].str() == dir + "/main2.toml:1:22: include[1]: '" + dir + "/c.toml' is already included (at " +
                                 dir + "/main2.toml:1:12)");
}

TEST_CASE("include: wrong shapes", "[config][include]") {
  Dir d;
  std::string body = listener("in", 8001) + kCluster;
  LoadResult r = load_string("include = \"a.toml\"\n" + body, "x.toml", d.path().string());
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors[0].str() == "x.toml:1:11: include: expected an array of strings, got string");
  r = load_string("include = [1]\n" + body, "x.toml", d.path().string());
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors[0].str() == "x.toml:1:12: include[0]: expected a string, got integer");
  r = load_string("include = [\"\"]\n" + body, "x.toml", d.path().string());
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors[0].str() == "x.toml:1:12: include[0]: must not be empty");
  r = load_string(body + "[limits]\ninclude = [\"a.toml\"]\n", "x.toml", d.path().string());
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors[0].key == "limits.include");
}
