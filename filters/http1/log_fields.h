#pragma once
// Access-log escaping for request fields that come from the peer (path, User-Agent, Host, SAN
// values, reason details): the result is always ONE line of valid JSON text. CR, LF, ESC (ANSI
// sequences), every other control byte and each byte of invalid UTF-8 are escaped as \uXXXX
// (fp::base::append_json_string); over-long values are cut at a UTF-8 boundary and marked.

#include <cstddef>
#include <string>
#include <string_view>

namespace fp::filters::http1 {

inline constexpr size_t kLogFieldMax = 2048;

// Appends `value` as a quoted JSON string, cut to at most `max_bytes` input bytes (then "...").
void append_log_field(std::string& out, std::string_view value, size_t max_bytes = kLogFieldMax);
// The same, returned (quotes included).
std::string log_field(std::string_view value, size_t max_bytes = kLogFieldMax);

}  // namespace fp::filters::http1
