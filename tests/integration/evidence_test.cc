// Operator evidence at the CLI (issue 7): `fipsproxy cbom -c FILE` emits a CycloneDX 1.6 CBOM
// that validates against the official schema (tests/data/cyclonedx, offline), and
// `fipsproxy audit verify FILE…` accepts an intact hash chain and reports the first broken link
// of a tampered one.
//
// The chains here are written by an independent implementation of the format (Python hashlib),
// so the test also pins the on-disk format: each line is a JSON object whose LAST field is
// "prev":"<hex SHA-256 of the previous line without its newline>", starting from a genesis
// record with 64 zeros.

#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "tests/support/harness.h"
#include "tests/support/support.h"

using namespace fp::test;

namespace {

std::string python() { return file_exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3"; }

struct Run {
  ExitStatus status;
  std::string out, err;
  std::string all() const { return out + err; }
};

Run fipsproxy(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {proxy_binary()};
  argv.insert(argv.end(), args.begin(), args.end());
  Run r;
  r.status = run_command(argv, Millis(30000), &r.out, &r.err);
  return r;
}

bool exited_with(const ExitStatus& s, int code) { return s.exited && s.code == code; }

// Writes a chain of `n` handshake records after a genesis (or, with `first_type` = "rotate",
// after a rotate record whose prev is `first_prev`) to `path`; returns the hash of its last line.
std::string write_chain(const std::string& path, int n, const std::string& first_type = "genesis",
                        const std::string& first_prev = std::string(64, '0')) {
  static const char* kScript = R"PY(
import hashlib, sys
path, n, first_type, prev = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
if first_type == "genesis":
    first = '{"type":"genesis","ts":"2024-01-01T00:00:00.000Z","module":"BoringCrypto","module_version":2022061300'
else:
    first = '{"type":"rotate","ts":"2024-01-01T00:00:01.000Z","previous_file":"audit.log.1","previous_records":1'
recs = [first] + ['{"type":"handshake","ts":"2024-01-01T00:00:02.000Z","role":"server","listener":"in","n":%d' % i
                  for i in range(n)]
out = []
for r in recs:
    line = r + ',"prev":"' + prev + '"}'
    prev = hashlib.sha256(line.encode()).hexdigest()
    out.append(line + "\n")
open(path, "w").write("".join(out))
print(prev)
)PY";
  std::string out, err;
  ExitStatus s = run_command({python(), "-c", kScript, path, std::to_string(n), first_type, first_prev}, Millis(30000),
                             &out, &err);
  INFO(err);
  REQUIRE(exited_with(s, 0));
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> v;
  size_t start = 0;
  for (size_t nl; (nl = text.find('\n', start)) != std::string::npos; start = nl + 1) v.push_back(text.substr(start, nl - start));
  if (start < text.size()) v.push_back(text.substr(start));
  return v;
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& l : v) s += l + "\n";
  return s;
}

}  // namespace

TEST_CASE("fipsproxy cbom: a CycloneDX 1.6 CBOM of the config's certificates, schema-valid", "[fast][evidence]") {
  TempDir d("fpev");
  ListenerSpec l;
  l.address = "127.0.0.1:" + std::to_string(free_tcp_port());
  l.tls = server_tls();
  ClusterSpec c;
  c.endpoints = {"127.0.0.1:9"};
  const std::string cfg = d.file("proxy.toml");
  write_file(cfg, render_config(d.file("access.log"), {l}, {c}));

  Run r = fipsproxy({"cbom", "-c", cfg});
  INFO(r.status.str() << "\n" << r.err);
  REQUIRE(exited_with(r.status, 0));
  CHECK(r.out.find("\"bomFormat\":\"CycloneDX\"") != std::string::npos);
  CHECK(r.out.find("\"specVersion\":\"1.6\"") != std::string::npos);
  CHECK(r.out.find("\"assetType\":\"certificate\"") != std::string::npos);
  CHECK(r.out.find("server.example.org") != std::string::npos);
  CHECK(r.out.find("fips140-3-l1") == std::string::npos);  // never claims validation

  const std::string bom = d.file("cbom.json");
  write_file(bom, r.out);
  std::string vout, verr;
  ExitStatus v = run_command({python(), std::string(FP_SOURCE_DIR) + "/tests/data/cyclonedx/validate.py", bom},
                             Millis(60000), &vout, &verr);
  INFO(vout << verr);
  CHECK(exited_with(v, 0));
}

TEST_CASE("fipsproxy audit verify: an intact chain passes", "[fast][evidence]") {
  TempDir d("fpev");
  const std::string log = d.file("audit.log");
  write_chain(log, 5);
  Run r = fipsproxy({"audit", "verify", log});
  INFO(r.status.str() << "\n" << r.all());
  CHECK(exited_with(r.status, 0));
  CHECK(r.out.find("ok: 6 records") != std::string::npos);
}

TEST_CASE("fipsproxy audit verify: rotated files continue the chain, in any argument order", "[fast][evidence]") {
  TempDir d("fpev");
  const std::string log = d.file("audit.log");
  std::string head = write_chain(log + ".1", 3);
  write_chain(log, 2, "rotate", head);
  Run r = fipsproxy({"audit", "verify", log + ".1", log});
  INFO(r.status.str() << "\n" << r.all());
  CHECK(exited_with(r.status, 0));
  CHECK(r.out.find("ok: 7 records") != std::string::npos);
  // As a shell glob would list them (newest first).
  Run g = fipsproxy({"audit", "verify", log, log + ".1"});
  INFO(g.status.str() << "\n" << g.all());
  CHECK(exited_with(g.status, 0));
}

TEST_CASE("fipsproxy audit verify: a tampered chain fails at the first broken link", "[fast][evidence]") {
  TempDir d("fpev");
  const std::string good = d.file("good.log");
  write_chain(good, 6);
  const auto lines = lines_of(read_file(good));
  REQUIRE(lines.size() == 7);
  const std::string bad = d.file("audit.log");

  auto expect = [&](const std::string& content, int line) {
    write_file(bad, content);
    Run r = fipsproxy({"audit", "verify", bad});
    INFO(r.status.str() << "\n" << r.all());
    CHECK(r.status.exited);
    CHECK(r.status.code != 0);
    CHECK(r.all().find(bad + ":" + std::to_string(line) + ":") != std::string::npos);
  };

  SECTION("edited record") {
    auto l = lines;
    l[3].replace(l[3].find("\"n\":2"), 5, "\"n\":9");
    expect(join(l), 5);
  }
  SECTION("deleted record") {
    auto l = lines;
    l.erase(l.begin() + 2);
    expect(join(l), 3);
  }
  SECTION("reordered records") {
    auto l = lines;
    std::swap(l[4], l[5]);
    expect(join(l), 5);
  }
  SECTION("truncated file") {
    std::string t = join(lines);
    t.resize(t.size() - 10);
    expect(t, 7);
  }
  SECTION("missing genesis") {
    auto l = lines;
    l.erase(l.begin());
    expect(join(l), 1);
  }
}
