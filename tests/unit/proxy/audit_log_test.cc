// proxy/audit_log: concurrent submitters, bounded-queue overflow recorded in the chain, flush
// on close.

#include "proxy/audit_log.h"

#include <catch2/catch.hpp>

#include <atomic>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "certs/audit_chain.h"
#include "tests/support/support.h"

using fp::proxy::AuditLog;
using fp::test::read_file;
using fp::test::TempDir;

namespace {

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string l;
  while (std::getline(in, l)) out.push_back(l);
  return out;
}

std::vector<std::string> chain_files(const std::string& p) {
  std::vector<std::string> files;
  for (int i = 20; i >= 1; --i) {
    if (fp::test::file_exists(p + "." + std::to_string(i))) files.push_back(p + "." + std::to_string(i));
  }
  files.push_back(p);
  return files;
}

std::string handshake(int thread, int i) {
  fp::certs::AuditEvent e;
  e.listener = "edge";
  e.role = "server";
  e.peer_address = "127.0.0.1:" + std::to_string(10000 + thread);
  e.version = "TLSv1.3";
  e.cipher = "TLS_AES_128_GCM_SHA256";
  e.verdict = "approved";
  e.reason = "ok";
  e.detail = "t" + std::to_string(thread) + "-" + std::to_string(i);
  return fp::certs::audit_record(e);
}

}  // namespace

TEST_CASE("audit log: concurrent submitters, every record written and chained", "[audit]") {
  TempDir d;
  std::string p = d.file("audit.log");
  constexpr int kThreads = 6, kPer = 500;
  uint64_t accepted = 0;
  {
    auto log = AuditLog::open(p, 0, 1, 8192);
    REQUIRE(log.ok());
    std::atomic<uint64_t> ok{0};
    std::vector<std::thread> ts;
    for (int t = 0; t < kThreads; ++t) {
      ts.emplace_back([&, t] {
        for (int i = 0; i < kPer; ++i) {
          if ((*log)->submit(handshake(t, i))) ok.fetch_add(1);
        }
      });
    }
    for (auto& t : ts) t.join();
    accepted = ok.load();
    (*log)->close();
    CHECK((*log)->written_total() == accepted);
    CHECK((*log)->dropped_total() + accepted == kThreads * kPer);
    CHECK((*log)->write_errors_total() == 0);
    CHECK_FALSE((*log)->submit("{}"));  // closed
  }
  auto lines = lines_of(read_file(p));
  // genesis + accepted handshakes (+ a dropped record per overflow burst, if any).
  size_t handshakes = 0, dropped_records = 0;
  std::set<std::string> details;
  for (const auto& l : lines) {
    if (l.rfind("{\"type\":\"handshake\"", 0) == 0) {
      ++handshakes;
      details.insert(l.substr(l.find("\"detail\":")));
    }
    if (l.rfind("{\"type\":\"dropped\"", 0) == 0) ++dropped_records;
  }
  CHECK(handshakes == accepted);
  CHECK(details.size() == accepted);  // no duplicates
  if (accepted == kThreads * kPer) CHECK(dropped_records == 0);
  auto v = fp::certs::verify_audit_files({p});
  INFO(v.first_break);
  CHECK(v.ok);
  CHECK(v.records == lines.size());
}

TEST_CASE("audit log: a full queue drops and counts, then a dropped record keeps the gap auditable",
          "[audit]") {
  TempDir d;
  std::string p = d.file("audit.log");
  constexpr int kThreads = 4, kPer = 5000;
  uint64_t dropped = 0, written = 0, attempts = 0;
  {
    // A tiny queue and a burst far larger than it: some submits must fail.
    auto log = AuditLog::open(p, 0, 1, 4);
    REQUIRE(log.ok());
    std::vector<std::thread> ts;
    for (int t = 0; t < kThreads; ++t) {
      ts.emplace_back([&, t] {
        for (int i = 0; i < kPer; ++i) (void)(*log)->submit(handshake(t, i));
      });
    }
    for (auto& t : ts) t.join();
    // After the burst there is room again: this one is accepted and lands after a dropped record.
    bool accepted_after = false;
    for (int tries = 0; tries < 2000 && !accepted_after; ++tries) {
      ++attempts;
      accepted_after = (*log)->submit(handshake(99, tries));
      if (!accepted_after) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    CHECK(accepted_after);
    (*log)->close();
    dropped = (*log)->dropped_total();
    written = (*log)->written_total();
  }
  REQUIRE(dropped > 0);
  CHECK(dropped + written == kThreads * kPer + attempts);
  auto lines = lines_of(read_file(p));
  uint64_t sum = 0;
  size_t dropped_records = 0;
  for (const auto& l : lines) {
    if (l.rfind("{\"type\":\"dropped\"", 0) != 0) continue;
    ++dropped_records;
    auto o = fp::test::JsonObject::parse(l);
    REQUIRE(o.has_value());
    sum += static_cast<uint64_t>(o->num("count"));
    CHECK(o->str("reason") == "audit_queue_full");
  }
  CHECK(dropped_records > 0);
  CHECK(sum == dropped);  // every drop is accounted for in the chain
  CHECK(lines.size() == 1 + written + dropped_records);
  auto v = fp::certs::verify_audit_files({p});
  INFO(v.first_break);
  CHECK(v.ok);
}

TEST_CASE("audit log: rotation under load keeps one verifiable chain", "[audit]") {
  TempDir d;
  std::string p = d.file("audit.log");
  {
    auto log = AuditLog::open(p, 64 * 1024, 20, 4096);  // ~300 KiB written: 5-6 files
    REQUIRE(log.ok());
    std::vector<std::thread> ts;
    for (int t = 0; t < 3; ++t) {
      ts.emplace_back([&, t] {
        for (int i = 0; i < 300; ++i) {
          while (!(*log)->submit(handshake(t, i))) std::this_thread::yield();
        }
      });
    }
    for (auto& t : ts) t.join();
  }  // destructor flushes
  auto files = chain_files(p);
  CHECK(files.size() > 3);
  auto v = fp::certs::verify_audit_files(files);
  INFO(v.first_break);
  CHECK(v.ok);
  CHECK(v.anchored_at_genesis);
}

TEST_CASE("audit log: records submitted just before close are on disk", "[audit]") {
  TempDir d;
  std::string p = d.file("audit.log");
  {
    auto log = AuditLog::open(p, 0, 1);
    REQUIRE(log.ok());
    for (int i = 0; i < 100; ++i) REQUIRE((*log)->submit(handshake(0, i)));
  }
  CHECK(lines_of(read_file(p)).size() == 101);
  // Reopen: the chain continues.
  {
    auto log = AuditLog::open(p, 0, 1);
    REQUIRE(log.ok());
    REQUIRE((*log)->submit(handshake(1, 0)));
  }
  auto v = fp::certs::verify_audit_files({p});
  INFO(v.first_break);
  CHECK(v.ok);
  CHECK(v.records == 102);
}

TEST_CASE("audit log: open fails with the path in the reason", "[audit]") {
  auto log = AuditLog::open("/nonexistent-dir/x/audit.log", 0, 1);
  REQUIRE_FALSE(log.ok());
  CHECK(log.error().detail.find("/nonexistent-dir/x/audit.log") != std::string::npos);
}
