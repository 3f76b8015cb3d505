// Fuzz target: the audit-log chain verifier (certs::verify_audit_files).
//
// Input: up to three files separated by a form feed ('\f'): with k parts, the first k-1 become
// audit.log.(k-1) ... audit.log.1 (oldest first) and the last one audit.log, in a private temp
// directory; the paths are passed newest first, so the verifier's own ordering is exercised.
// Invariants: a failure names "FILE:LINE: reason" with one of the files; a success is checked
// independently: walking the files oldest first, every line ends with ,"prev":"<hex>"} where
// <hex> is the SHA-256 of the line before (all 0 for a first-line genesis), a later file starts
// with a rotate record, no genesis inside the chain, every file ends with a newline, and the
// reported head and record count match.

#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "certs/audit_chain.h"
#include "tests/fuzz/fuzz_common.h"

namespace {

const std::string& dir() {
  static const std::string d = [] {
    std::string t = (std::filesystem::temp_directory_path() / "fp-fuzz-audit-XXXXXX").string();
    if (::mkdtemp(t.data()) == nullptr) std::abort();
    return t;
  }();
  return d;
}

bool starts(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 64 * 1024) return 0;
  std::string_view in(reinterpret_cast<const char*>(data), size);
  std::vector<std::string_view> parts;
  while (parts.size() < 2 && in.find('\f') != std::string_view::npos) parts.push_back(fp::fuzz::take_field(in, '\f'));
  parts.push_back(in);

  const std::string base = dir() + "/audit.log";
  for (int k = 1; k <= 3; ++k) std::filesystem::remove(base + "." + std::to_string(k));
  std::vector<std::string> oldest_first;
  for (size_t i = 0; i < parts.size(); ++i) {
    const size_t n = parts.size() - 1 - i;  // rotation index, 0 = live
    std::string p = n == 0 ? base : base + "." + std::to_string(n);
    std::ofstream(p, std::ios::binary | std::ios::trunc).write(parts[i].data(), static_cast<std::streamsize>(parts[i].size()));
    oldest_first.push_back(p);
  }
  std::vector<std::string> newest_first(oldest_first.rbegin(), oldest_first.rend());

  const fp::certs::AuditVerifyResult r = fp::certs::verify_audit_files(newest_first);
  if (!r.ok) {
    FUZZ_CHECK(!r.first_break.empty(), "failure without a reason");
    FUZZ_CHECK(r.first_break.rfind(r.file + ":" + std::to_string(r.line) + ": ", 0) == 0, "break not FILE:LINE: %s",
               r.first_break.c_str());
    bool known = false;
    for (const auto& p : oldest_first) known = known || p == r.file;
    FUZZ_CHECK(known, "break names an unknown file: %s", r.first_break.c_str());
    return 0;
  }
  // Independent check of an accepted chain.
  std::string expected;
  size_t records = 0;
  for (size_t fi = 0; fi < parts.size(); ++fi) {
    std::string_view text = parts[fi];
    FUZZ_CHECK(!text.empty() && text.back() == '\n', "accepted file %zu without a final newline", fi);
    size_t lineno = 0;
    while (!text.empty()) {
      std::string_view line = fp::fuzz::take_field(text, '\n');
      ++lineno;
      const std::string_view suffix_start = ",\"prev\":\"";
      FUZZ_CHECK(line.size() >= 76 && line.front() == '{' && line.substr(line.size() - 2) == "\"}",
                 "accepted line %zu:%zu is not a chained record", fi, lineno);
      std::string_view prev = line.substr(line.size() - 66, 64);
      std::string_view key = line.substr(line.size() - 66 - 8, 8);
      FUZZ_CHECK(key == "\"prev\":\"", "accepted line %zu:%zu lacks a trailing prev", fi, lineno);
      (void)suffix_start;
      const bool genesis = starts(line, "{\"type\":\"genesis\"");
      const bool rotate = starts(line, "{\"type\":\"rotate\"");
      if (fi == 0 && lineno == 1) {
        FUZZ_CHECK(genesis || rotate, "accepted chain starts with neither genesis nor rotate");
        if (genesis) FUZZ_CHECK(prev == fp::certs::kAuditGenesisPrev, "genesis with non-zero prev accepted");
      } else {
        FUZZ_CHECK(!genesis, "genesis inside an accepted chain");
        if (lineno == 1) FUZZ_CHECK(rotate, "accepted file %zu does not start with a rotate record", fi);
        FUZZ_CHECK(prev == expected, "accepted line %zu:%zu has a wrong prev", fi, lineno);
      }
      expected = fp::certs::sha256_hex(line);
      ++records;
    }
  }
  FUZZ_CHECK(r.records == records, "record count %zu, independent %zu", r.records, records);
  FUZZ_CHECK(r.head == expected, "head differs from the independent walk");
  return 0;
}
