// certs/audit_chain: the hash chain, tamper detection (edit, delete, insert, reorder, truncate,
// missing or wrong genesis) and rotation continuity.

#include "certs/audit_chain.h"

#include <catch2/catch.hpp>

#include <sstream>
#include <string>
#include <vector>

#include "tests/support/support.h"

using fp::certs::AuditChain;
using fp::certs::verify_audit_files;
using fp::test::read_file;
using fp::test::TempDir;
using fp::test::write_file;

namespace {

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string l;
  while (std::getline(in, l)) out.push_back(l);
  return out;
}

std::string join_lines(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& l : lines) out += l + "\n";
  return out;
}

std::string record(int i) { return "{\"type\":\"handshake\",\"n\":" + std::to_string(i) + "}"; }

// Writes `n` records into a fresh chain at `path` (no rotation).
void write_chain(const std::string& path, int n) {
  auto c = AuditChain::open(path, 0, 1);
  REQUIRE(c.ok());
  for (int i = 0; i < n; ++i) REQUIRE((*c)->append(record(i)).ok());
  REQUIRE((*c)->flush().ok());
}

}  // namespace

TEST_CASE("sha256_hex uses the module and matches the known vector", "[audit]") {
  CHECK(fp::certs::sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(fp::certs::sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST_CASE("audit_chain_line appends prev as the last field", "[audit]") {
  std::string z = fp::certs::kAuditGenesisPrev;
  CHECK(fp::certs::audit_chain_line("{\"a\":1}", z) == "{\"a\":1,\"prev\":\"" + z + "\"}");
  CHECK(fp::certs::audit_chain_line("{}", z) == "{\"prev\":\"" + z + "\"}");
}

TEST_CASE("a new chain starts with genesis and each prev is the SHA-256 of the previous line", "[audit]") {
  TempDir d;
  std::string p = d.file("audit.log");
  write_chain(p, 5);
  auto lines = lines_of(read_file(p));
  REQUIRE(lines.size() == 6);
  CHECK(lines[0].rfind("{\"type\":\"genesis\",\"ts\":\"", 0) == 0);
  CHECK(lines[0].find("\"module\":\"BoringCrypto\"") != std::string::npos);
  CHECK(lines[0].find("\"module_version\":") != std::string::npos);
  CHECK(lines[0].find(std::string("\"prev\":\"") + fp::certs::kAuditGenesisPrev + "\"}") != std::string::npos);
  for (size_t i = 1; i < lines.size(); ++i) {
    std::string want = ",\"prev\":\"" + fp::certs::sha256_hex(lines[i - 1]) + "\"}";
    CHECK(lines[i].size() > want.size());
    CHECK(lines[i].substr(lines[i].size() - want.size()) == want);
  }
  auto v = verify_audit_files({p});
  INFO(v.first_break);
  CHECK(v.ok);
  CHECK(v.records == 6);
  CHECK(v.anchored_at_genesis);
  CHECK(v.head == fp::certs::sha256_hex(lines.back()));
}

TEST_CASE("reopening continues the chain", "[audit]") {
  TempDir d;
  std::string p = d.file("audit.log");
  write_chain(p, 3);
  {
    auto c = AuditChain::open(p, 0, 1);
    REQUIRE(c.ok());
    REQUIRE((*c)->append(record(99)).ok());
  }
  auto v = verify_audit_files({p});
  INFO(v.first_break);
  CHECK(v.ok);
  CHECK(v.records == 5);
  CHECK(lines_of(read_file(p)).size() == 5);  // one genesis only
}

TEST_CASE("tampering is reported at the first broken link", "[audit]") {
  TempDir d;
  std::string good = d.file("good.log");
  write_chain(good, 8);
  const auto lines = lines_of(read_file(good));
  REQUIRE(lines.size() == 9);
  std::string bad = d.file("audit.log");

  auto expect_break = [&](const std::string& content, size_t line, const std::string& reason_part) {
    write_file(bad, content);
    auto v = verify_audit_files({bad});
    INFO(v.first_break);
    CHECK_FALSE(v.ok);
    CHECK(v.line == line);
    CHECK(v.file == bad);
    CHECK(v.first_break.rfind(bad + ":" + std::to_string(line) + ": ", 0) == 0);
    CHECK(v.first_break.find(reason_part) != std::string::npos);
  };

  SECTION("edited line: the next line's prev no longer matches") {
    auto l = lines;
    l[4].replace(l[4].find("\"n\":3"), 5, "\"n\":7");
    expect_break(join_lines(l), 6, "prev does not match");
  }
  SECTION("edited prev field of a line") {
    auto l = lines;
    l[4][l[4].size() - 3] = l[4][l[4].size() - 3] == 'a' ? 'b' : 'a';
    expect_break(join_lines(l), 5, "prev does not match");
  }
  SECTION("deleted line") {
    auto l = lines;
    l.erase(l.begin() + 3);
    expect_break(join_lines(l), 4, "prev does not match");
  }
  SECTION("inserted line") {
    auto l = lines;
    l.insert(l.begin() + 5, fp::certs::audit_chain_line(record(42), fp::certs::sha256_hex(l[4])));
    expect_break(join_lines(l), 7, "prev does not match");
  }
  SECTION("reordered lines") {
    auto l = lines;
    std::swap(l[2], l[3]);
    expect_break(join_lines(l), 3, "prev does not match");
  }
  SECTION("truncated last line") {
    std::string t = join_lines(lines);
    t.resize(t.size() - 20);
    expect_break(t, 9, "truncated");
  }
  SECTION("line cut in the middle of the file") {
    auto l = lines;
    l[5].resize(l[5].size() / 2);
    expect_break(join_lines(l), 6, "malformed");
  }
  SECTION("missing genesis (first lines deleted)") {
    auto l = lines;
    l.erase(l.begin());
    expect_break(join_lines(l), 1, "missing genesis");
  }
  SECTION("wrong genesis: non-zero prev") {
    auto l = lines;
    l[0][l[0].size() - 3] = '1';
    expect_break(join_lines(l), 1, "genesis record with a non-zero prev");
  }
  SECTION("empty file") { expect_break("", 1, "empty file"); }
}

TEST_CASE("rotation keeps K files and the chain continues across them", "[audit]") {
  TempDir d;
  std::string p = d.file("audit.log");
  {
    auto c = AuditChain::open(p, 2000, 3);
    REQUIRE(c.ok());
    for (int i = 0; i < 60; ++i) REQUIRE((*c)->append(record(i)).ok());  // ~100 bytes each: 4 files, 3 kept
    REQUIRE((*c)->flush().ok());
    CHECK((*c)->rotations() >= 1);
  }
  REQUIRE(fp::test::file_exists(p + ".1"));
  auto live = lines_of(read_file(p));
  REQUIRE(!live.empty());
  CHECK(live[0].rfind("{\"type\":\"rotate\"", 0) == 0);
  CHECK(live[0].find("\"previous_file\":\"audit.log.1\"") != std::string::npos);
  auto older = lines_of(read_file(p + ".1"));
  CHECK(live[0].find("\"prev\":\"" + fp::certs::sha256_hex(older.back()) + "\"") != std::string::npos);
  for (const char* f : {"", ".1", ".2"}) {
    if (fp::test::file_exists(p + f)) CHECK(read_file(p + f).size() <= 2000);
  }

  // With the oldest kept file first: its first line is a rotate record unless it is the genesis.
  std::vector<std::string> files;
  for (const char* f : {".2", ".1", ""}) {
    if (fp::test::file_exists(p + f)) files.push_back(p + f);
  }
  CHECK_FALSE(fp::test::file_exists(p + ".3"));  // keep = 3 files in all
  REQUIRE(files.size() == 3);
  auto v = verify_audit_files(files);
  INFO(v.first_break);
  CHECK(v.ok);
  CHECK_FALSE(v.anchored_at_genesis);  // the genesis file was rotated away
  // Given newest first (a shell glob sorts audit.log audit.log.1 audit.log.2) it reorders.
  std::vector<std::string> glob(files.rbegin(), files.rend());
  auto v2 = verify_audit_files(glob);
  INFO(v2.first_break);
  CHECK(v2.ok);
  CHECK(v2.records == v.records);

  SECTION("a file missing from the middle breaks the chain at the next file's rotate record") {
    REQUIRE(files.size() == 3);
    auto vb = verify_audit_files({files[0], files[2]});
    CHECK_FALSE(vb.ok);
    CHECK(vb.file == files[2]);
    CHECK(vb.line == 1);
  }
  SECTION("files given out of order under other names") {
    REQUIRE(files.size() == 3);
    std::string a = d.file("x"), b = d.file("y");
    write_file(a, read_file(files[1]));
    write_file(b, read_file(files[2]));
    auto vb = verify_audit_files({b, a});
    CHECK_FALSE(vb.ok);
    CHECK(vb.file == a);
    CHECK(vb.line == 1);
  }
  SECTION("the last line of a rotated file deleted") {
    auto l = lines_of(read_file(files[1]));
    l.pop_back();
    write_file(files[1], join_lines(l));
    auto vb = verify_audit_files(files);
    CHECK_FALSE(vb.ok);
    CHECK(vb.file == files[2]);
    CHECK(vb.line == 1);
    CHECK(vb.first_break.find("rotate record's prev does not match") != std::string::npos);
  }
}

TEST_CASE("a chain whose live file vanished after a rotate continues from audit.log.1", "[audit]") {
  TempDir d;
  std::string p = d.file("audit.log");
  write_chain(p, 3);
  REQUIRE(::rename(p.c_str(), (p + ".1").c_str()) == 0);  // as if we crashed inside rotate()
  {
    auto c = AuditChain::open(p, 0, 2);
    REQUIRE(c.ok());
    REQUIRE((*c)->append(record(5)).ok());
  }
  auto v = verify_audit_files({p + ".1", p});
  INFO(v.first_break);
  CHECK(v.ok);
  CHECK(v.records == 6);
}

TEST_CASE("audit_record: one JSON object with every field, escaped", "[audit]") {
  fp::certs::AuditEvent e;
  e.ts = "2024-01-01T00:00:00.000Z";
  e.listener = "edge";
  e.role = "server";
  e.peer_address = "127.0.0.1:5555";
  e.sni = "a\"b\n.example";
  e.offered = "versions=TLSv1.2,TLSv1.3 suites=4 groups=P-256,X25519";
  e.version = "TLSv1.3";
  e.cipher = "TLS_AES_128_GCM_SHA256";
  e.group = "P-256";
  e.sigalg = "ecdsa_secp256r1_sha256";
  e.peer.present = true;
  e.peer.spiffe_id = "spiffe://example.org/client";
  e.peer.dns = {"client.example", "c2.example"};
  e.peer.sha256 = std::string(64, 'a');
  e.peer.key_type = "EC P-256";
  e.verdict = "approved";
  e.reason = "ok";
  std::string r = fp::certs::audit_record(e);
  CHECK(r.find('\n') == std::string::npos);
  auto o = fp::test::JsonObject::parse(r);
  REQUIRE(o.has_value());
  CHECK(o->str("type") == "handshake");
  CHECK(o->str("listener") == "edge");
  CHECK(o->str("role") == "server");
  CHECK(o->str("sni") == "a\"b\n.example");
  CHECK(o->str("verdict") == "approved");
  CHECK(o->str("reason") == "ok");
  CHECK(r.find("\"peer\":{\"present\":true,\"spiffe\":\"spiffe://example.org/client\","
               "\"dns\":[\"client.example\",\"c2.example\"]") != std::string::npos);
  CHECK(r.find("\"key_type\":\"EC\",\"key_bits\":256") != std::string::npos);

  e.role = "client";
  e.listener = "backend";
  e.peer = {};
  e.verdict = "rejected";
  e.reason = "peer_cert_missing";
  r = fp::certs::audit_record(e);
  CHECK(r.find("\"cluster\":\"backend\"") != std::string::npos);
  CHECK(r.find("\"peer\":{\"present\":false}") != std::string::npos);

  e.peer.present = true;
  e.peer.key_type = "RSA 3072";
  r = fp::certs::audit_record(e);
  CHECK(r.find("\"key_type\":\"RSA\",\"key_bits\":3072") != std::string::npos);
}
