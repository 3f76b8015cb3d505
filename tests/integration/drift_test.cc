// Compliance drift (issue #7): `fips-status --diff` and `[fips] baseline` / `require_kernel_fips`
// at startup, through the real binary.

#include <catch2/catch.hpp>

#include "tests/support/harness.h"

using namespace fp::test;
using namespace std::chrono_literals;

namespace {

std::string replace_field(const std::string& json, const std::string& field, const std::string& value) {
  const std::string key = "\"" + field + "\":\"";
  size_t p = json.find(key);
  if (p == std::string::npos) return json;
  p += key.size();
  const size_t e = json.find('"', p);
  return json.substr(0, p) + value + json.substr(e);
}

std::string minimal_config(const std::string& dir, const std::string& fips_block) {
  return "workers = 1\naccess_log = \"off\"\n" + fips_block + "[[listener]]\nname = \"l\"\naddress = \"127.0.0.1:" +
         std::to_string(free_tcp_port()) + "\"\ncluster = \"c\"\n[[cluster]]\nname = \"c\"\nendpoints = [\"unix:" +
         dir + "/app.sock\"]\n";
}

}  // namespace

TEST_CASE("drift: fips-status --diff against a saved baseline", "[fast][evidence]") {
  TempDir d("fpdrift");
  std::string json;
  REQUIRE(run_command({proxy_binary(), "fips-status", "--json"}, 30s, &json).code == 0);
  write_file(d.file("baseline.json"), json);
  std::string out;
  ExitStatus same = run_command({proxy_binary(), "fips-status", "--diff", d.file("baseline.json")}, 30s, &out);
  INFO(out);
  CHECK(same.code == 0);
  CHECK(out.find("no drift") != std::string::npos);

  // A baseline recorded for another module hash and another binary: drift, exit 3, every field named.
  std::string other = replace_field(json, "module_hash_loaded", std::string(64, '0'));
  other = replace_field(other, "binary_sha256", std::string(64, 'a'));
  write_file(d.file("other.json"), other);
  out.clear();
  ExitStatus drift = run_command({proxy_binary(), "fips-status", "--diff", d.file("other.json")}, 30s, &out);
  INFO(out);
  CHECK(drift.code == 3);
  CHECK(out.find("module_hash_loaded: baseline 0000") != std::string::npos);
  CHECK(out.find("binary_sha256: baseline aaaa") != std::string::npos);

  write_file(d.file("junk.json"), "not json");
  std::string err;
  CHECK(run_command({proxy_binary(), "fips-status", "--diff", d.file("junk.json")}, 30s, nullptr, &err).code == 2);
}

TEST_CASE("drift: [fips] baseline refuses to start on drift and starts when it matches", "[fast][evidence]") {
  TempDir d("fpdrift2");
  std::string json;
  REQUIRE(run_command({proxy_binary(), "fips-status", "--json"}, 30s, &json).code == 0);
  write_file(d.file("good.json"), json);
  write_file(d.file("bad.json"), replace_field(json, "libssl_sha256", std::string(64, 'b')));

  {
    ProxyProcess p(minimal_config(d.path(), "[fips]\nbaseline = \"" + d.file("good.json") + "\"\n"), d.path());
    INFO(p.stderr_text());
    CHECK(p.start());
  }
  {
    ProxyProcess p(minimal_config(d.path(), "[fips]\nbaseline = \"" + d.file("bad.json") + "\"\n"), d.path());
    CHECK_FALSE(p.start(5s));
    ExitStatus st = p.wait_exit(5s);
    INFO(p.stderr_text());
    CHECK(st.code == 3);
    CHECK(p.stderr_text().find("baseline: drift") != std::string::npos);
    CHECK(p.stderr_text().find("libssl_sha256: baseline bbbb") != std::string::npos);
  }
}

TEST_CASE("drift: require_kernel_fips refuses a node that is not in FIPS mode", "[fast][evidence]") {
  std::string kernel = read_file("/proc/sys/crypto/fips_enabled");
  TempDir d("fpkfips");
  ProxyProcess p(minimal_config(d.path(), "[fips]\nrequire_kernel_fips = true\n"), d.path());
  const bool started = p.start(5s);
  INFO(p.stderr_text());
  if (kernel.rfind("1", 0) == 0) {
    CHECK(started);  // this node is in FIPS mode
  } else {
    CHECK_FALSE(started);
    CHECK(p.wait_exit(5s).code == 3);
    CHECK(p.stderr_text().find("not in FIPS mode") != std::string::npos);
    // Control: the same config without the requirement starts.
    ProxyProcess q(minimal_config(d.path(), ""), d.path());
    CHECK(q.start());
  }
}
