#pragma once
// A minimal JSON object writer for log lines and reports: strings are escaped so a value can
// never break the line (control characters, quotes, invalid UTF-8 bytes as \u00XX).

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace fp::base {

void append_json_string(std::string& out, std::string_view value);

// Reads the top-level fields of one JSON object whose values are strings, numbers, booleans or
// null: strings are unescaped (\uXXXX for ASCII only), numbers/booleans kept as written; nested
// arrays and objects are skipped. nullopt if the text is not a JSON object.
std::optional<std::map<std::string, std::string>> parse_flat_json(std::string_view text);

class JsonObject {
 public:
  JsonObject() { out_ = "{"; }
  JsonObject& str(std::string_view key, std::string_view value);
  JsonObject& num(std::string_view key, int64_t value);
  JsonObject& unum(std::string_view key, uint64_t value);
  JsonObject& dbl(std::string_view key, double value);
  JsonObject& boolean(std::string_view key, bool value);
  JsonObject& str_array(std::string_view key, const std::vector<std::string>& values);
  // `json` must already be valid JSON (an object or array built elsewhere).
  JsonObject& raw(std::string_view key, std::string_view json);
  std::string done() { out_ += '}'; return std::move(out_); }

 private:
  void key(std::string_view k);
  std::string out_;
  bool first_ = true;
};

}  // namespace fp::base
