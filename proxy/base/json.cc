#include "proxy/base/json.h"

#include <cstdio>

namespace fp::base {

void append_json_string(std::string& out, std::string_view value) {
  out += '"';
  const auto* p = reinterpret_cast<const unsigned char*>(value.data());
  const size_t n = value.size();
  for (size_t i = 0; i < n; ++i) {
    const unsigned char c = p[i];
    switch (c) {
      case '"': out += "\\\""; continue;
      case '\\': out += "\\\\"; continue;
      case '\n': out += "\\n"; continue;
      case '\r': out += "\\r"; continue;
      case '\t': out += "\\t"; continue;
      default: break;
    }
    if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
      continue;
    }
    if (c < 0x80) {
      out += static_cast<char>(c);
      continue;
    }
    // Copy a well-formed UTF-8 sequence; escape each byte of a malformed one.
    size_t len = (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
    bool ok = len != 0 && i + len <= n;
    for (size_t k = 1; ok && k < len; ++k) ok = (p[i + k] & 0xc0) == 0x80;
    if (ok) {
      out.append(reinterpret_cast<const char*>(p + i), len);
      i += len - 1;
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    }
  }
  out += '"';
}

namespace {

void skip_ws(std::string_view t, size_t& i) {
  while (i < t.size() && (t[i] == ' ' || t[i] == '\n' || t[i] == '\r' || t[i] == '\t')) ++i;
}

bool read_string(std::string_view t, size_t& i, std::string& out) {
  if (i >= t.size() || t[i] != '"') return false;
  ++i;
  while (i < t.size()) {
    char c = t[i++];
    if (c == '"') return true;
    if (c != '\\') {
      out += c;
      continue;
    }
    if (i >= t.size()) return false;
    char e = t[i++];
    switch (e) {
      case 'n': out += '\n'; break;
      case 'r': out += '\r'; break;
      case 't': out += '\t'; break;
      case 'b': out += '\b'; break;
      case 'f': out += '\f'; break;
      case 'u': {
        if (i + 4 > t.size()) return false;
        unsigned v = 0;
        for (int k = 0; k < 4; ++k) {
          char h = t[i++];
          v <<= 4;
          if (h >= '0' && h <= '9') v |= static_cast<unsigned>(h - '0');
          else if (h >= 'a' && h <= 'f') v |= static_cast<unsigned>(h - 'a' + 10);
          else if (h >= 'A' && h <= 'F') v |= static_cast<unsigned>(h - 'A' + 10);
          else return false;
        }
        out += v < 0x80 ? static_cast<char>(v) : '?';
        break;
      }
      default: out += e;
    }
  }
  return false;
}

// Skips one value of any kind (nested arrays/objects included).
bool skip_value(std::string_view t, size_t& i) {
  skip_ws(t, i);
  if (i >= t.size()) return false;
  if (t[i] == '"') {
    std::string ignored;
    return read_string(t, i, ignored);
  }
  if (t[i] == '{' || t[i] == '[') {
    int depth = 0;
    while (i < t.size()) {
      char c = t[i];
      if (c == '"') {
        std::string ignored;
        if (!read_string(t, i, ignored)) return false;
        continue;
      }
      if (c == '{' || c == '[') ++depth;
      if (c == '}' || c == ']') --depth;
      ++i;
      if (depth == 0) return true;
    }
    return false;
  }
  while (i < t.size() && t[i] != ',' && t[i] != '}' && t[i] != ']') ++i;
  return true;
}

}  // namespace

std::optional<std::map<std::string, std::string>> parse_flat_json(std::string_view t) {
  std::map<std::string, std::string> out;
  size_t i = 0;
  skip_ws(t, i);
  if (i >= t.size() || t[i] != '{') return std::nullopt;
  ++i;
  skip_ws(t, i);
  if (i < t.size() && t[i] == '}') return out;
  while (i < t.size()) {
    skip_ws(t, i);
    std::string key;
    if (!read_string(t, i, key)) return std::nullopt;
    skip_ws(t, i);
    if (i >= t.size() || t[i] != ':') return std::nullopt;
    ++i;
    skip_ws(t, i);
    if (i < t.size() && t[i] == '"') {
      std::string v;
      if (!read_string(t, i, v)) return std::nullopt;
      out[key] = v;
    } else if (i < t.size() && (t[i] == '{' || t[i] == '[')) {
      if (!skip_value(t, i)) return std::nullopt;
    } else {
      const size_t start = i;
      if (!skip_value(t, i)) return std::nullopt;
      std::string v(t.substr(start, i - start));
      while (!v.empty() && (v.back() == ' ' || v.back() == '\n' || v.back() == '\r' || v.back() == '\t')) v.pop_back();
      out[key] = v;
    }
    skip_ws(t, i);
    if (i < t.size() && t[i] == ',') {
      ++i;
      continue;
    }
    if (i < t.size() && t[i] == '}') return out;
    return std::nullopt;
  }
  return std::nullopt;
}

void JsonObject::key(std::string_view k) {
  if (!first_) out_ += ',';
  first_ = false;
  append_json_string(out_, k);
  out_ += ':';
}

JsonObject& JsonObject::str(std::string_view k, std::string_view value) {
  key(k);
  append_json_string(out_, value);
  return *this;
}
JsonObject& JsonObject::num(std::string_view k, int64_t value) {
  key(k);
  out_ += std::to_string(value);
  return *this;
}
JsonObject& JsonObject::unum(std::string_view k, uint64_t value) {
  key(k);
  out_ += std::to_string(value);
  return *this;
}
JsonObject& JsonObject::dbl(std::string_view k, double value) {
  key(k);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f", value);
  out_ += buf;
  return *this;
}
JsonObject& JsonObject::boolean(std::string_view k, bool value) {
  key(k);
  out_ += value ? "true" : "false";
  return *this;
}
JsonObject& JsonObject::str_array(std::string_view k, const std::vector<std::string>& values) {
  key(k);
  out_ += '[';
  for (size_t i = 0; i < values.size(); ++i) {
    if (i) out_ += ',';
    append_json_string(out_, values[i]);
  }
  out_ += ']';
  return *this;
}
JsonObject& JsonObject::raw(std::string_view k, std::string_view json) {
  key(k);
  out_ += json;
  return *this;
}

}  // namespace fp::base
