// Address parsing and locality (config/config.h). Pure string work plus inet_pton: no I/O.

#include <arpa/inet.h>

#include <cctype>
#include <charconv>
#include <cstring>

#include "config/config.h"

namespace fp::config {
namespace {

// sun_path is 108 bytes on Linux and needs a terminating NUL.
constexpr size_t kMaxUnixPath = 107;

bool valid_dns_name(const std::string& host) {
  if (host.empty() || host.size() > 253) return false;
  size_t label_len = 0;
  for (size_t i = 0; i < host.size(); ++i) {
    char c = host[i];
    if (c == '.') {
      if (label_len == 0) return false;
      label_len = 0;
      continue;
    }
    bool ok = std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
    if (!ok) return false;
    if (c == '-' && (label_len == 0 || i + 1 == host.size() || host[i + 1] == '.')) return false;
    if (++label_len > 63) return false;
  }
  return true;
}

bool all_digits_and_dots(const std::string& s) {
  for (char c : s) {
    if (!(std::isdigit(static_cast<unsigned char>(c)) || c == '.')) return false;
  }
  return true;
}

bool parse_port(const std::string& text, uint16_t& port, std::string& reason) {
  if (text.empty()) {
    reason = "missing port";
    return false;
  }
  unsigned value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value > 65535) {
    reason = "invalid port '" + text + "' (expected 0..65535)";
    return false;
  }
  port = static_cast<uint16_t>(value);
  return true;
}

}  // namespace

bool Address::is_local() const {
  if (kind == Kind::Unix) return true;
  std::string lower;
  for (char c : host)
    lower.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  if (lower == "localhost") return true;
  unsigned char v4[4];
  if (inet_pton(AF_INET, host.c_str(), v4) == 1) return v4[0] == 127;
  unsigned char v6[16];
  if (inet_pton(AF_INET6, host.c_str(), v6) == 1) {
    static const unsigned char kLoopback[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    if (std::memcmp(v6, kLoopback, 16) == 0) return true;
    // IPv4-mapped ::ffff:127.x.y.z is loopback too.
    static const unsigned char kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    return std::memcmp(v6, kMapped, 12) == 0 && v6[12] == 127;
  }
  return false;
}

std::optional<Address> parse_address(const std::string& text, std::string& reason) {
  Address a;
  a.text = text;
  if (text.empty()) {
    reason = "empty address";
    return std::nullopt;
  }
  if (text.rfind("unix:", 0) == 0) {
    a.kind = Address::Kind::Unix;
    a.path = text.substr(5);
    if (a.path.empty()) {
      reason = "empty unix socket path";
      return std::nullopt;
    }
    if (a.path[0] != '/') {
      reason = "unix socket path '" + a.path + "' must be absolute";
      return std::nullopt;
    }
    if (a.path.find('\0') != std::string::npos) {
      reason = "unix socket path contains a NUL byte";
      return std::nullopt;
    }
    if (a.path.size() > kMaxUnixPath) {
      reason = "unix socket path is " + std::to_string(a.path.size()) +
               " bytes; the limit is 107 (sun_path)";
      return std::nullopt;
    }
    return a;
  }
  a.kind = Address::Kind::Tcp;
  std::string port_text;
  if (text[0] == '[') {
    size_t close = text.find(']');
    if (close == std::string::npos) {
      reason = "missing ']' in IPv6 address '" + text + "'";
      return std::nullopt;
    }
    a.host = text.substr(1, close - 1);
    unsigned char v6[16];
    if (inet_pton(AF_INET6, a.host.c_str(), v6) != 1) {
      reason = "invalid IPv6 address '" + a.host + "'";
      return std::nullopt;
    }
    if (close + 1 >= text.size() || text[close + 1] != ':') {
      reason = "missing port in '" + text + "' (expected \"[v6]:port\")";
      return std::nullopt;
    }
    port_text = text.substr(close + 2);
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string::npos) {
      reason = "missing port in '" + text +
               "' (expected \"host:port\", \"[v6]:port\" or \"unix:/path\")";
      return std::nullopt;
    }
    if (text.find(':') != colon) {
      reason = "IPv6 addresses must be in brackets, e.g. \"[::1]:8443\"";
      return std::nullopt;
    }
    a.host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
    if (a.host.empty()) {
      reason = "missing host in '" + text + "'";
      return std::nullopt;
    }
    unsigned char v4[4];
    if (all_digits_and_dots(a.host)) {
      if (inet_pton(AF_INET, a.host.c_str(), v4) != 1) {
        reason = "invalid IPv4 address '" + a.host + "'";
        return std::nullopt;
      }
    } else if (!valid_dns_name(a.host)) {
      reason = "invalid host name '" + a.host + "'";
      return std::nullopt;
    }
  }
  if (!parse_port(port_text, a.port, reason)) return std::nullopt;
  return a;
}

const char* lb_policy_name(LbPolicy p) {
  switch (p) {
    case LbPolicy::RoundRobin: return "round_robin";
    case LbPolicy::LeastRequest: return "least_request";
    case LbPolicy::Random: return "random";
  }
  return "round_robin";
}

}  // namespace fp::config
