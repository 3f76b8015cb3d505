#include "filters/http1/log_fields.h"

#include "proxy/base/json.h"

namespace fp::filters::http1 {

void append_log_field(std::string& out, std::string_view value, size_t max_bytes) {
  if (value.size() <= max_bytes) {
    base::append_json_string(out, value);
    return;
  }
  size_t cut = max_bytes;
  // Do not split a UTF-8 sequence: back up over continuation bytes (at most 3).
  for (int k = 0; k < 3 && cut > 0 && (static_cast<unsigned char>(value[cut]) & 0xc0) == 0x80; ++k) --cut;
  std::string tmp(value.substr(0, cut));
  tmp += "...";
  base::append_json_string(out, tmp);
}

std::string log_field(std::string_view value, size_t max_bytes) {
  std::string out;
  append_log_field(out, value, max_bytes);
  return out;
}

}  // namespace fp::filters::http1
