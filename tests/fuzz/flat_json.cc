// Fuzz target: the JSON helpers that log lines and reports rely on (proxy/base/json.h) and the
// access-log field escaping (filters/http1/log_fields.h).
// Invariants:
// * parse_flat_json never crashes on any input; what it returns, written back with JsonObject
//   and parsed again, gives the same map (except that a byte of invalid UTF-8, which the writer
//   escapes as \u00XX with XX >= 0x80, reads back as '?': the parser decodes ASCII escapes only);
// * append_json_string and log_field produce ONE line: no byte below 0x20, no DEL, quoted, and
//   the string round-trips through parse_flat_json (same '?' rule); log_field respects its cap.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "filters/http1/log_fields.h"
#include "proxy/base/json.h"
#include "tests/fuzz/fuzz_common.h"

namespace {

// `got` equals `want` where every difference is a '?' standing for a byte >= 0x80.
bool same_modulo_escaped_high_bytes(std::string_view want, std::string_view got) {
  if (want.size() != got.size()) return false;
  for (size_t i = 0; i < want.size(); ++i) {
    if (want[i] != got[i] && !(got[i] == '?' && static_cast<unsigned char>(want[i]) >= 0x80)) return false;
  }
  return true;
}

void check_one_line(std::string_view s, const char* what) {
  FUZZ_CHECK(s.size() >= 2 && s.front() == '"' && s.back() == '"', "%s: not a quoted string", what);
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    FUZZ_CHECK(c >= 0x20 && c != 0x7f, "%s: control byte 0x%02x in the output", what, c);
  }
}

void check_roundtrip(std::string_view value) {
  std::string js;
  fp::base::append_json_string(js, value);
  check_one_line(js, "append_json_string");
  const auto m = fp::base::parse_flat_json("{\"k\":" + js + "}");
  FUZZ_CHECK(m && m->size() == 1 && m->count("k"), "escaped string does not parse back");
  FUZZ_CHECK(same_modulo_escaped_high_bytes(value, m->at("k")), "escaped string does not round-trip");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 64 * 1024) return 0;
  const std::string_view in(reinterpret_cast<const char*>(data), size);

  check_roundtrip(in);
  const std::string lf = fp::filters::http1::log_field(in, 64);
  check_one_line(lf, "log_field");
  FUZZ_CHECK(lf.size() <= 2 + 6 * 64 + 3, "log_field over its cap: %zu bytes", lf.size());

  const std::optional<std::map<std::string, std::string>> m = fp::base::parse_flat_json(in);
  if (m) {
    fp::base::JsonObject o;
    for (const auto& [k, v] : *m) o.str(k, v);
    const std::string text = o.done();
    FUZZ_CHECK(text.find('\n') == std::string::npos && text.find('\r') == std::string::npos, "written object spans lines");
    const auto again = fp::base::parse_flat_json(text);
    FUZZ_CHECK(again.has_value(), "written object does not parse: %s", text.c_str());
    // Keys can merge when two differ only in escaped high bytes; compare value by value.
    for (const auto& [k, v] : *m) {
      if (again->size() != m->size()) break;
      bool found = false;
      for (const auto& [k2, v2] : *again) {
        if (same_modulo_escaped_high_bytes(k, k2) && same_modulo_escaped_high_bytes(v, v2)) found = true;
      }
      FUZZ_CHECK(found, "key/value does not survive write + parse");
    }
  }
  return 0;
}
