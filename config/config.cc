// TOML -> validated config::Snapshot. Every error is collected (never stop at the first) and
// carries file:line:col plus the dotted key path (STYLE.md 5.4). The loader never throws.
// The schema (which keys each table accepts) lives in one place, kSchema, which also drives
// unknown-key detection and documented_keys().

#include "config/config.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <glob.h>
#include <toml++/toml.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <tuple>

namespace fp::config {
namespace fs = std::filesystem;

// ---------------------------------------------------------------------------------------------
// Schema
// ---------------------------------------------------------------------------------------------
namespace {

struct TableSchema {
  const char* path;  // "" for the root, "listener.tls", ...
  std::vector<const char*> keys;
};

const std::vector<TableSchema>& schema() {
  static const std::vector<TableSchema> kSchema = {
      {"",
       {"include", "workers", "log_level", "access_log", "drain_timeout", "limits", "admin", "fips", "audit", "process",
        "listener", "cluster", "egress"}},
      {"egress",
       {"ca", "connect_timeout", "dns_ttl", "max_idle_per_destination", "idle_connection_timeout",
        "destination"}},
      {"egress.destination", {"host", "ports", "upstream_port", "ca", "cert", "key", "sni"}},
      {"limits", {"high_watermark", "low_watermark"}},
      {"admin", {"address", "max_connections", "tls"}},
      {"fips", {"selfprobe_interval", "baseline", "require_kernel_fips"}},
      {"audit", {"path", "max_size", "keep"}},
      {"process", {"user", "group", "allow_root", "seccomp", "key_permissions"}},
      {"listener",
       {"name", "address", "cluster", "mode", "max_connections", "handshake_timeout",
        "idle_timeout", "request_header_timeout", "allow_remote_plaintext", "tls", "http", "proxy_protocol",
        "egress"}},
      {"listener.http",
       {"max_header_bytes", "max_headers", "max_uri_bytes", "max_body_bytes", "allow_spiffe_ids",
        "allow_trust_domains", "allow_dns", "route", "sni_host_check"}},
      {"listener.http.route", {"prefix", "allow_spiffe_ids", "allow_trust_domains", "allow_dns"}},
      {"listener.tls",
       {"cert", "key", "ca", "crl", "require_client_cert", "allow_spiffe", "allow_dns", "alpn",
        "profile", "min_version", "max_version"}},
      {"cluster",
       {"name", "type", "port", "endpoints", "weights", "lb_policy", "connect_retries", "no_healthy",
        "connect_timeout", "allow_remote_plaintext", "tls", "health_check", "outlier_detection",
        "max_idle_connections", "idle_connection_timeout"}},
      {"cluster.health_check",
       {"type", "interval", "timeout", "healthy_threshold", "unhealthy_threshold", "path", "host",
        "expected_status"}},
      {"cluster.outlier_detection",
       {"consecutive_failures", "base_ejection", "max_ejection", "max_ejection_percent"}},
      {"cluster.tls",
       {"cert", "key", "ca", "crl", "sni", "allow_spiffe", "allow_dns", "alpn", "profile",
        "min_version", "max_version"}},
  };
  return kSchema;
}

const std::vector<const char*>& keys_of(const char* path) {
  for (const auto& t : schema()) {
    if (std::strcmp(t.path, path) == 0) return t.keys;
  }
  static const std::vector<const char*> kNone;
  return kNone;
}

constexpr int64_t kMaxDurationMs = 24LL * 3600 * 1000;
constexpr uint64_t kMaxSize = 4ULL << 30;  // 4 GiB

// FIPS-POLICY.md table: the only names these keys could ever hold. The keys are still rejected
// (the profile fixes them), but naming a non-approved value gets the sharper reason.
const char* const kApprovedSuites[] = {
    "TLS_AES_128_GCM_SHA256",      "TLS_AES_256_GCM_SHA384",        "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384"};
const char* const kApprovedGroups[] = {"P-256", "P-384", "secp256r1", "secp384r1", "prime256v1"};
const char* const kApprovedSigalgs[] = {"rsa_pss_rsae_sha256",    "rsa_pss_rsae_sha384",
                                        "rsa_pss_rsae_sha512",    "ecdsa_secp256r1_sha256",
                                        "ecdsa_secp384r1_sha384", "rsa_pkcs1_sha256",
                                        "rsa_pkcs1_sha384",       "rsa_pkcs1_sha512"};

std::string lower(std::string_view s) {
  std::string out;
  for (char c : s) out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  return out;
}

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t sub = prev[j - 1] + (std::tolower(static_cast<unsigned char>(a[i - 1])) !=
                                  std::tolower(static_cast<unsigned char>(b[j - 1])));
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

// The closest candidate if it is close enough to be a plausible typo, else "".
template <class Range>
std::string did_you_mean(std::string_view word, const Range& candidates) {
  std::string best;
  size_t best_d = SIZE_MAX;
  for (const auto& c : candidates) {
    std::string_view cand(c);
    size_t d = edit_distance(word, cand);
    size_t limit = std::clamp<size_t>(cand.size() / 3, 1, 3);
    if (d <= limit && d < best_d) {
      best_d = d;
      best = std::string(cand);
    }
  }
  return best;
}

std::string with_suggestion(std::string reason, std::string_view word,
                            const std::vector<const char*>& candidates) {
  std::string s = did_you_mean(word, candidates);
  if (!s.empty()) reason += " (did you mean '" + s + "'?)";
  return reason;
}

const char* type_name(toml::node_type t) {
  switch (t) {
    case toml::node_type::table:
      return "table";
    case toml::node_type::array:
      return "array";
    case toml::node_type::string:
      return "string";
    case toml::node_type::integer:
      return "integer";
    case toml::node_type::floating_point:
      return "float";
    case toml::node_type::boolean:
      return "boolean";
    case toml::node_type::date:
      return "date";
    case toml::node_type::time:
      return "time";
    case toml::node_type::date_time:
      return "date-time";
    default:
      return "nothing";
  }
}

// ---------------------------------------------------------------------------------------------
// Loader context and typed getters
// ---------------------------------------------------------------------------------------------

struct Ctx {
  std::string file;      // the main file, as named by the caller
  std::string base_dir;  // its directory
  // Every file read (main and included), by the name used in errors -> its absolute directory,
  // against which relative paths written in that file resolve.
  std::map<std::string, std::string> dirs;
  std::vector<std::string> files;  // the same names, in the order the files were read
  bool incomplete = false;          // an included file could not be read or parsed
  std::vector<ConfigError> errors;

  // The file a node came from: toml++ records the name each file was parsed under.
  const std::string& file_of(const toml::source_region& r) const {
    return r.path && !r.path->empty() ? *r.path : file;
  }
  SourceLoc loc(const toml::source_region& r) const {
    const std::string& f = file_of(r);
    SourceLoc l{f, static_cast<int>(r.begin.line), static_cast<int>(r.begin.column)};
    if (l.line <= 0) l = SourceLoc{f, 1, 1};
    return l;
  }
  // The directory relative paths written at `n` resolve against.
  const std::string& dir_of(const toml::node& n) const {
    auto it = dirs.find(file_of(n.source()));
    return it == dirs.end() ? base_dir : it->second;
  }
  void err(const toml::node& n, std::string key, std::string reason) {
    errors.push_back({loc(n.source()), std::move(key), std::move(reason)});
  }
  void err(const SourceLoc& l, std::string key, std::string reason) {
    errors.push_back({l, std::move(key), std::move(reason)});
  }
};

std::string join(const std::string& prefix, std::string_view key) {
  return prefix.empty() ? std::string(key) : prefix + "." + std::string(key);
}

void type_error(Ctx& c, const toml::node& n, const std::string& key, const char* expected) {
  c.err(n, key, std::string("expected ") + expected + ", got " + type_name(n.type()));
}

std::optional<std::string> get_string(Ctx& c, const toml::node& n, const std::string& key) {
  if (n.is_string()) return n.as_string()->get();
  type_error(c, n, key, "a string");
  return std::nullopt;
}

std::optional<bool> get_bool(Ctx& c, const toml::node& n, const std::string& key) {
  if (n.is_boolean()) return n.as_boolean()->get();
  type_error(c, n, key, "a boolean");
  return std::nullopt;
}

std::optional<int64_t> get_int(Ctx& c, const toml::node& n, const std::string& key, int64_t lo,
                               int64_t hi) {
  if (!n.is_integer()) {
    type_error(c, n, key, "an integer");
    return std::nullopt;
  }
  int64_t v = n.as_integer()->get();
  if (v < lo || v > hi) {
    c.err(n, key,
          "must be between " + std::to_string(lo) + " and " + std::to_string(hi) + ", got " +
              std::to_string(v));
    return std::nullopt;
  }
  return v;
}

// An array of strings; each bad element is reported as key[i].
struct Item {
  std::string value;
  const toml::node* node;
  std::string key;
};
std::optional<std::vector<Item>> get_string_array(Ctx& c, const toml::node& n,
                                                  const std::string& key) {
  const toml::array* arr = n.as_array();
  if (!arr) {
    type_error(c, n, key, "an array of strings");
    return std::nullopt;
  }
  std::vector<Item> out;
  bool ok = true;
  for (size_t i = 0; i < arr->size(); ++i) {
    const toml::node& e = *arr->get(i);
    std::string ekey = key + "[" + std::to_string(i) + "]";
    if (!e.is_string()) {
      type_error(c, e, ekey, "a string");
      ok = false;
      continue;
    }
    out.push_back({e.as_string()->get(), &e, ekey});
  }
  if (!ok) return std::nullopt;
  return out;
}

// "250ms", "10s", "5m", "1h", or an integer number of seconds; > 0 and <= 24h.
std::optional<Millis> get_duration(Ctx& c, const toml::node& n, const std::string& key) {
  int64_t ms = 0;
  if (n.is_integer()) {
    int64_t s = n.as_integer()->get();
    if (s <= 0 || s > kMaxDurationMs / 1000) {
      c.err(n, key, "duration must be > 0 and <= 24h, got " + std::to_string(s) + "s");
      return std::nullopt;
    }
    ms = s * 1000;
  } else if (n.is_string()) {
    const std::string& s = n.as_string()->get();
    const char* hint =
        " (expected e.g. \"250ms\", \"10s\", \"5m\", \"1h\" or an integer of seconds)";
    int64_t num = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), num);
    std::string_view unit(end, static_cast<size_t>(s.data() + s.size() - end));
    int64_t mult = 0;
    if (unit == "ms")
      mult = 1;
    else if (unit == "s")
      mult = 1000;
    else if (unit == "m")
      mult = 60 * 1000;
    else if (unit == "h")
      mult = 3600 * 1000;
    if (ec != std::errc() || end == s.data() || mult == 0 || s[0] == '-' || s[0] == '+') {
      c.err(n, key, "invalid duration '" + s + "'" + hint);
      return std::nullopt;
    }
    if (num <= 0 || num > kMaxDurationMs / mult) {
      c.err(n, key, "duration must be > 0 and <= 24h, got '" + s + "'");
      return std::nullopt;
    }
    ms = num * mult;
  } else {
    type_error(c, n, key, "a duration string or an integer of seconds");
    return std::nullopt;
  }
  return Millis(ms);
}

// Bytes: an integer, or "512B", "64KiB", "1MiB", "1GiB".
std::optional<uint64_t> get_size(Ctx& c, const toml::node& n, const std::string& key) {
  uint64_t bytes = 0;
  if (n.is_integer()) {
    int64_t v = n.as_integer()->get();
    if (v <= 0 || static_cast<uint64_t>(v) > kMaxSize) {
      c.err(n, key, "size must be > 0 and <= 4GiB, got " + std::to_string(v));
      return std::nullopt;
    }
    bytes = static_cast<uint64_t>(v);
  } else if (n.is_string()) {
    const std::string& s = n.as_string()->get();
    uint64_t num = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), num);
    std::string_view unit(end, static_cast<size_t>(s.data() + s.size() - end));
    uint64_t mult = 0;
    if (unit.empty() || unit == "B")
      mult = 1;
    else if (unit == "KiB")
      mult = 1ULL << 10;
    else if (unit == "MiB")
      mult = 1ULL << 20;
    else if (unit == "GiB")
      mult = 1ULL << 30;
    if (ec != std::errc() || end == s.data() || mult == 0) {
      c.err(n, key,
            "invalid size '" + s +
                "' (expected an integer of bytes or e.g. \"64KiB\", \"1MiB\", \"1GiB\")");
      return std::nullopt;
    }
    if (num == 0 || num > kMaxSize / mult) {
      c.err(n, key, "size must be > 0 and <= 4GiB, got '" + s + "'");
      return std::nullopt;
    }
    bytes = num * mult;
  } else {
    type_error(c, n, key, "a size (integer or string like \"1MiB\")");
    return std::nullopt;
  }
  return bytes;
}

// Resolves `value` against the config directory and checks it can be opened for reading.
std::optional<std::string> get_file(Ctx& c, const toml::node& n, const std::string& key) {
  auto v = get_string(c, n, key);
  if (!v) return std::nullopt;
  if (v->empty()) {
    c.err(n, key, "must not be empty");
    return std::nullopt;
  }
  fs::path p(*v);
  if (p.is_relative()) p = fs::path(c.dir_of(n)) / p;
  std::error_code ec;
  fs::path abs = fs::absolute(p, ec);
  if (ec) abs = p;
  abs = abs.lexically_normal();
  std::string shown = abs.string();
  fs::file_status st = fs::status(abs, ec);
  if (ec || !fs::exists(st)) {
    c.err(n, key, "cannot read '" + shown + "': no such file");
    return std::nullopt;
  }
  if (!fs::is_regular_file(st)) {
    c.err(n, key, "cannot read '" + shown + "': not a regular file");
    return std::nullopt;
  }
  int fd = ::open(shown.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    c.err(n, key, "cannot read '" + shown + "': " + std::strerror(errno));
    return std::nullopt;
  }
  ::close(fd);
  return shown;
}

// Reports keys the schema does not know. Returns false if any were found (callers still go on,
// so all errors surface at once).
void check_unknown_keys(Ctx& c, const toml::table& t, const std::string& prefix,
                        const char* schema_path, bool is_tls) {
  const auto& known = keys_of(schema_path);
  for (auto&& [k, v] : t) {
    std::string_view name = k.str();
    if (std::find_if(known.begin(), known.end(), [&](const char* s) { return name == s; }) !=
        known.end()) {
      continue;
    }
    std::string key = join(prefix, name);
    SourceLoc at = c.loc(k.source());
    if (is_tls) {
      // FIPS-POLICY.md: these are fixed by the profile; naming them is an error, never a silent
      // drop (DESIGN.md §5, FIPS-POLICY C2).
      std::string lname = lower(name);
      std::vector<std::string> values;
      if (v.is_string()) values.push_back(v.as_string()->get());
      if (const toml::array* arr = v.as_array()) {
        for (const auto& e : *arr) {
          if (e.is_string()) values.push_back(e.as_string()->get());
        }
      }
      auto first_unapproved = [&](const auto& approved) -> std::string {
        for (const auto& val : values) {
          // OpenSSL-style lists: "A:B" or "A,B".
          std::string item;
          std::stringstream ss(val);
          while (std::getline(ss, item, ':')) {
            std::stringstream ss2(item);
            std::string part;
            while (std::getline(ss2, part, ',')) {
              if (part.empty()) continue;
              bool ok = std::any_of(std::begin(approved), std::end(approved),
                                    [&](const char* a) { return part == a; });
              if (!ok) return part;
            }
          }
        }
        return "";
      };
      if (lname == "early_data" || lname == "enable_early_data" || lname == "zero_rtt") {
        c.err(at, key, "early_data is never allowed (FIPS policy: no 0-RTT)");
        continue;
      }
      if (lname == "ciphers" || lname == "cipher_suites" || lname == "ciphersuites" ||
          lname == "cipher_list") {
        std::string bad = first_unapproved(kApprovedSuites);
        std::string r = "cipher suites are fixed by the FIPS profile";
        r += bad.empty() ? "; remove this key and choose a profile instead"
                         : "; " + bad + " is not approved";
        c.err(at, key, r);
        continue;
      }
      if (lname == "groups" || lname == "curves" || lname == "ecdh_curves" ||
          lname == "supported_groups") {
        std::string bad = first_unapproved(kApprovedGroups);
        std::string r = "key exchange groups are fixed by the FIPS profile (P-256, P-384)";
        r += bad.empty() ? "; remove this key" : "; " + bad + " is not approved";
        c.err(at, key, r);
        continue;
      }
      if (lname == "sigalgs" || lname == "signature_algorithms") {
        std::string bad = first_unapproved(kApprovedSigalgs);
        std::string r = "signature algorithms are fixed by the FIPS profile";
        r += bad.empty() ? "; remove this key" : "; " + bad + " is not approved";
        c.err(at, key, r);
        continue;
      }
    }
    std::string why = "unknown key '" + std::string(name) + "'";
    if (std::strcmp(schema_path, "cluster.tls") == 0 && name == "require_client_cert") {
      c.err(at, key,
            "require_client_cert is not valid in a cluster tls block (the proxy is the TLS client "
            "there; set cert and key to present a client certificate)");
      continue;
    }
    c.err(at, key, with_suggestion(why, name, known));
  }
}

std::optional<uint16_t> get_version(Ctx& c, const toml::node& n, const std::string& key) {
  if (n.is_floating_point()) {
    c.err(n, key, "expected a string, got float (write the version quoted, e.g. \"1.2\")");
    return std::nullopt;
  }
  auto v = get_string(c, n, key);
  if (!v) return std::nullopt;
  if (*v == "1.2") return uint16_t{0x0303};
  if (*v == "1.3") return uint16_t{0x0304};
  std::string s = lower(*v);
  for (const char* prefix : {"tlsv", "tls"}) {
    if (s.rfind(prefix, 0) == 0) {
      s = s.substr(std::strlen(prefix));
      break;
    }
  }
  if (!s.empty() && s[0] == ' ') s = s.substr(1);
  const char* policy = " is not allowed (FIPS policy: TLS 1.2 and 1.3 only)";
  if (s == "1.0" || s == "1" || s == "1.1") {
    c.err(n, key, "TLS " + std::string(s == "1" ? "1.0" : s) + policy);
  } else if (s.find("ssl") != std::string::npos) {
    c.err(n, key, "SSL" + std::string(policy));
  } else {
    c.err(n, key, "unknown TLS version '" + *v + "' (expected \"1.2\" or \"1.3\")");
  }
  return std::nullopt;
}

bool valid_name(const std::string& s) {
  if (s.empty()) return false;
  return std::all_of(s.begin(), s.end(), [](char ch) {
    return std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' || ch == '.' || ch == '-';
  });
}

bool valid_dns_pattern(const std::string& s, bool allow_wildcard) {
  std::string rest = s;
  if (allow_wildcard && rest.rfind("*.", 0) == 0) rest = rest.substr(2);
  if (rest.empty() || rest.size() > 253) return false;
  std::string reason;
  auto a = parse_address(rest + ":1", reason);
  return a.has_value() && rest.find('*') == std::string::npos;
}

// ---------------------------------------------------------------------------------------------
// Sections
// ---------------------------------------------------------------------------------------------

// The `tls` table of a listener (server role) or cluster (client role).
std::optional<TlsConfig> parse_tls(Ctx& c, const toml::node& node, const std::string& prefix,
                                   bool server) {
  const toml::table* t = node.as_table();
  if (!t) {
    type_error(c, node, prefix, "a table");
    return std::nullopt;
  }
  size_t errors_before = c.errors.size();
  check_unknown_keys(c, *t, prefix, server ? "listener.tls" : "cluster.tls", true);
  TlsConfig tls;
  tls.loc = c.loc(t->source());

  const toml::node* cert = t->get("cert");
  const toml::node* key = t->get("key");
  const toml::node* ca = t->get("ca");
  if (cert) {
    if (auto v = get_file(c, *cert, prefix + ".cert")) tls.cert = *v;
  }
  if (key) {
    if (auto v = get_file(c, *key, prefix + ".key")) tls.key = *v;
  }
  if (ca) {
    if (auto v = get_file(c, *ca, prefix + ".ca")) tls.ca = *v;
  }
  if (const toml::node* n = t->get("crl")) {
    if (auto items = get_string_array(c, *n, prefix + ".crl")) {
      for (const auto& it : *items) {
        if (auto v = get_file(c, *it.node, it.key)) tls.crl.push_back(*v);
      }
    }
    if (server && !tls.require_client_cert) {
      c.err(*n, prefix + ".crl", "crl has no effect when require_client_cert = false");
    }
  }
  if (server) {
    if (const toml::node* n = t->get("require_client_cert")) {
      if (auto v = get_bool(c, *n, prefix + ".require_client_cert")) tls.require_client_cert = *v;
    }
    if (!cert) c.err(tls.loc, prefix + ".cert", "required in a listener tls block");
    if (!key) c.err(tls.loc, prefix + ".key", "required in a listener tls block (with cert)");
    if (!ca && tls.require_client_cert) {
      c.err(tls.loc, prefix + ".ca",
            "required when require_client_cert = true (the default); set require_client_cert = "
            "false for TLS without client certificates");
    }
  } else {
    if (!ca)
      c.err(tls.loc, prefix + ".ca", "required in a cluster tls block (to verify the server)");
    if (key && !cert) c.err(tls.loc, prefix + ".cert", "required with key");
    if (cert && !key) c.err(tls.loc, prefix + ".key", "required with cert");
    if (const toml::node* n = t->get("sni")) {
      if (auto v = get_string(c, *n, prefix + ".sni")) {
        std::string reason;
        unsigned char buf[16];
        if (!valid_dns_pattern(*v, false) || inet_pton(AF_INET, v->c_str(), buf) == 1) {
          c.err(*n, prefix + ".sni", "'" + *v + "' is not a DNS name");
        } else {
          tls.sni = *v;
        }
      }
    }
  }

  if (const toml::node* n = t->get("allow_spiffe")) {
    if (auto items = get_string_array(c, *n, prefix + ".allow_spiffe")) {
      for (const auto& it : *items) {
        if (it.value.rfind("spiffe://", 0) != 0 || it.value.size() <= 9) {
          c.err(*it.node, it.key,
                "'" + it.value + "' is not a SPIFFE ID (expected \"spiffe://trust.domain/path\")");
        } else {
          tls.allow_spiffe.push_back(it.value);
        }
      }
    }
  }
  if (const toml::node* n = t->get("allow_dns")) {
    if (auto items = get_string_array(c, *n, prefix + ".allow_dns")) {
      for (const auto& it : *items) {
        if (!valid_dns_pattern(it.value, true)) {
          c.err(
              *it.node, it.key,
              "'" + it.value + "' is not a DNS name or \"*.domain\" pattern (one-label wildcard)");
        } else {
          tls.allow_dns.push_back(it.value);
        }
      }
    }
  }
  if (server && !tls.require_client_cert) {
    for (const char* k : {"allow_spiffe", "allow_dns"}) {
      if (const toml::node* n = t->get(k)) {
        c.err(*n, prefix + "." + k,
              std::string(k) + " has no effect when require_client_cert = false");
      }
    }
  }
  if (const toml::node* n = t->get("alpn")) {
    if (auto items = get_string_array(c, *n, prefix + ".alpn")) {
      for (const auto& it : *items) {
        if (it.value.empty() || it.value.size() > 255) {
          c.err(*it.node, it.key, "ALPN protocol names are 1..255 bytes (RFC 7301 §3.1)");
        } else {
          tls.alpn.push_back(it.value);
        }
      }
    }
  }

  const toml::node* profile = t->get("profile");
  if (profile) {
    if (auto v = get_string(c, *profile, prefix + ".profile")) {
      if (*v == "strict")
        tls.profile = Profile::Strict;
      else if (*v == "tls12-only")
        tls.profile = Profile::Tls12Only;
      else if (*v == "extended")
        tls.profile = Profile::Extended;
      else {
        c.err(*profile, prefix + ".profile",
              with_suggestion(
                  "unknown profile '" + *v + "' (expected strict, tls12-only or extended)", *v,
                  {"strict", "tls12-only", "extended"}));
      }
    }
  }
  if (tls.profile == Profile::Tls12Only) tls.max_version = 0x0303;
  const toml::node* minv = t->get("min_version");
  const toml::node* maxv = t->get("max_version");
  std::optional<uint16_t> min_parsed, max_parsed;
  if (minv) min_parsed = get_version(c, *minv, prefix + ".min_version");
  if (maxv) max_parsed = get_version(c, *maxv, prefix + ".max_version");
  if (max_parsed) {
    if (tls.profile == Profile::Tls12Only && *max_parsed > 0x0303) {
      c.err(*maxv, prefix + ".max_version",
            "profile 'tls12-only' allows TLS 1.2 only; max_version must be \"1.2\"");
    } else {
      tls.max_version = *max_parsed;
    }
  }
  if (min_parsed) tls.min_version = *min_parsed;
  if (tls.min_version > tls.max_version && (min_parsed || max_parsed)) {
    c.err(min_parsed ? *minv : *maxv, prefix + (min_parsed ? ".min_version" : ".max_version"),
          std::string("min_version ") + (tls.min_version == 0x0304 ? "1.3" : "1.2") +
              " is greater than max_version " + (tls.max_version == 0x0304 ? "1.3" : "1.2"));
  }
  if (c.errors.size() != errors_before) return std::nullopt;
  return tls;
}

struct Located {
  const toml::node* node = nullptr;
  std::string key;
};

struct ListenerSrc {
  Listener l;
  Located name, address, cluster;
  bool ok = true;
};
struct ClusterSrc {
  Cluster cl;
  Located name;
  std::vector<Located> endpoints;
  bool ok = true;
};

// Required key: reports at the table's position when missing.
const toml::node* require(Ctx& c, const toml::table& t, const char* k, const std::string& prefix,
                          const char* what) {
  const toml::node* n = t.get(k);
  if (!n) c.err(c.loc(t.source()), prefix + "." + k, std::string("required in a ") + what);
  return n;
}

// SPIFFE ID / trust domain syntax (SPIFFE ID spec §2): "spiffe://" + trust domain (lowercase
// letters, digits, '.', '-', '_') + optional path of non-empty segments of letters, digits,
// '.', '-', '_' (no "." or ".." segments, no trailing '/'); at most 2048 bytes.
bool valid_trust_domain(std::string_view td) {
  if (td.empty() || td.size() > 255) return false;
  return std::all_of(td.begin(), td.end(), [](char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '.' || ch == '-' || ch == '_';
  });
}

bool valid_spiffe_id(std::string_view id) {
  constexpr std::string_view kScheme = "spiffe://";
  if (id.size() > 2048 || id.substr(0, kScheme.size()) != kScheme) return false;
  std::string_view rest = id.substr(kScheme.size());
  const size_t slash = rest.find('/');
  if (!valid_trust_domain(rest.substr(0, slash))) return false;
  if (slash == std::string_view::npos) return true;
  std::string_view path = rest.substr(slash);  // "/seg/seg"
  while (!path.empty()) {
    path.remove_prefix(1);
    const size_t next = path.find('/');
    std::string_view seg = path.substr(0, next);
    if (seg.empty() || seg == "." || seg == "..") return false;
    for (char ch : seg) {
      const bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                      ch == '.' || ch == '-' || ch == '_';
      if (!ok) return false;
    }
    path = next == std::string_view::npos ? std::string_view() : path.substr(next);
  }
  return true;
}

// An exact DNS name: labels of letters, digits and '-' (not at either end), 1..63 bytes each,
// 253 in all; no wildcard, no trailing dot.
bool valid_exact_dns(std::string_view s) {
  if (s.empty() || s.size() > 253) return false;
  while (true) {
    const size_t dot = s.find('.');
    std::string_view label = s.substr(0, dot);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') return false;
    for (char ch : label) {
      if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '-') return false;
    }
    if (dot == std::string_view::npos) return true;
    s.remove_prefix(dot + 1);
  }
}

// allow_spiffe_ids / allow_trust_domains / allow_dns of [listener.http] or one of its routes.
void parse_identity_allow(Ctx& c, const toml::table& t, const std::string& prefix, IdentityAllow& out) {
  if (const toml::node* n = t.get("allow_spiffe_ids")) {
    if (auto items = get_string_array(c, *n, prefix + ".allow_spiffe_ids")) {
      for (const auto& it : *items) {
        if (!valid_spiffe_id(it.value)) {
          c.err(*it.node, it.key,
                "'" + it.value + "' is not a SPIFFE ID (expected \"spiffe://trust.domain/path\"; exact match, "
                                 "use allow_trust_domains for a whole trust domain)");
        } else {
          out.spiffe_ids.push_back(it.value);
        }
      }
    }
  }
  if (const toml::node* n = t.get("allow_trust_domains")) {
    if (auto items = get_string_array(c, *n, prefix + ".allow_trust_domains")) {
      for (const auto& it : *items) {
        if (!valid_trust_domain(it.value)) {
          c.err(*it.node, it.key,
                "'" + it.value + "' is not a SPIFFE trust domain (expected e.g. \"example.org\": lowercase "
                                 "letters, digits, '.', '-', '_'; no scheme, no path)");
        } else {
          out.trust_domains.push_back(it.value);
        }
      }
    }
  }
  if (const toml::node* n = t.get("allow_dns")) {
    if (auto items = get_string_array(c, *n, prefix + ".allow_dns")) {
      for (const auto& it : *items) {
        if (!valid_exact_dns(it.value)) {
          c.err(*it.node, it.key, "'" + it.value + "' is not an exact DNS name (no wildcards, no trailing dot)");
        } else {
          out.dns.push_back(it.value);
        }
      }
    }
  }
}

// [listener.http] (mode = "http1"): parser limits, the default allow-lists and the routes.
void parse_http_options(Ctx& c, const toml::node& node, const std::string& prefix, HttpOptions& h) {
  const toml::table* t = node.as_table();
  if (!t) {
    type_error(c, node, prefix, "a table");
    return;
  }
  check_unknown_keys(c, *t, prefix, "listener.http", false);
  const toml::node* hb = t->get("max_header_bytes");
  if (hb) {
    if (auto v = get_size(c, *hb, prefix + ".max_header_bytes")) {
      if (*v < 1024 || *v > (1u << 20)) {
        c.err(*hb, prefix + ".max_header_bytes", "must be between 1KiB and 1MiB, got " + std::to_string(*v));
      } else {
        h.max_header_bytes = *v;
      }
    }
  }
  if (const toml::node* n = t->get("max_headers")) {
    if (auto v = get_int(c, *n, prefix + ".max_headers", 1, 1000)) h.max_headers = static_cast<uint32_t>(*v);
  }
  if (const toml::node* n = t->get("max_uri_bytes")) {
    if (auto v = get_size(c, *n, prefix + ".max_uri_bytes")) {
      if (*v < 64 || *v > (1u << 20)) {
        c.err(*n, prefix + ".max_uri_bytes", "must be between 64 and 1MiB, got " + std::to_string(*v));
      } else if (*v > h.max_header_bytes) {
        c.err(*n, prefix + ".max_uri_bytes",
              "must not exceed max_header_bytes (" + std::to_string(h.max_header_bytes) +
                  "): the request line is part of the head");
      } else {
        h.max_uri_bytes = *v;
      }
    }
  }
  if (const toml::node* n = t->get("max_body_bytes")) {
    if (auto v = get_size(c, *n, prefix + ".max_body_bytes")) h.max_body_bytes = *v;
  }
  if (const toml::node* n = t->get("sni_host_check")) {
    if (auto v = get_string(c, *n, prefix + ".sni_host_check")) {
      if (*v == "mtls") {
        h.sni_host_check = HttpOptions::SniHostCheck::Mtls;
      } else if (*v == "always") {
        h.sni_host_check = HttpOptions::SniHostCheck::Always;
      } else if (*v == "off") {
        h.sni_host_check = HttpOptions::SniHostCheck::Off;
      } else {
        c.err(*n, prefix + ".sni_host_check",
              "unknown sni_host_check '" + *v + "' (expected \"mtls\", \"always\" or \"off\")");
      }
    }
  }
  parse_identity_allow(c, *t, prefix, h.allow);
  const toml::node* routes = t->get("route");
  if (!routes) return;
  const toml::array* arr = routes->as_array();
  if (!arr || !arr->is_array_of_tables()) {
    type_error(c, *routes, prefix + ".route", "an array of tables ([[listener.http.route]])");
    return;
  }
  for (size_t i = 0; i < arr->size(); ++i) {
    const toml::table& rt = *arr->get(i)->as_table();
    const std::string rp = prefix + ".route[" + std::to_string(i) + "]";
    check_unknown_keys(c, rt, rp, "listener.http.route", false);
    HttpRoute r;
    r.loc = c.loc(rt.source());
    const size_t route_errors = c.errors.size();
    bool ok = true;
    if (const toml::node* n = require(c, rt, "prefix", rp, "[[listener.http.route]]")) {
      if (auto v = get_string(c, *n, rp + ".prefix")) {
        std::string why;
        if (v->empty() || v->front() != '/') {
          why = "must start with '/'";
        } else if (v->size() > 1024) {
          why = "is longer than 1024 bytes";
        } else if (v->find_first_of("?#%;\\") != std::string::npos) {
          why = "must be a plain path (no '?', '#', '%', ';' or '\\')";
        } else if (v->find("//") != std::string::npos || v->find("/./") != std::string::npos ||
                   v->find("/../") != std::string::npos || v->ends_with("/.") || v->ends_with("/..")) {
          why = "must be normalized (no '//' and no '.' or '..' segments)";
        } else {
          for (char ch : *v) {
            if (static_cast<unsigned char>(ch) <= 0x20 || static_cast<unsigned char>(ch) >= 0x7f) {
              why = "must be printable ASCII without spaces";
              break;
            }
          }
        }
        for (const HttpRoute& prev : h.routes) {
          if (why.empty() && prev.prefix == *v) {
            why = "duplicate prefix '" + *v + "' (also at line " + std::to_string(prev.loc.line) + ")";
          }
        }
        if (!why.empty()) {
          c.err(*n, rp + ".prefix", "'" + *v + "' " + why);
          ok = false;
        } else {
          r.prefix = *v;
        }
      } else {
        ok = false;
      }
    } else {
      ok = false;
    }
    parse_identity_allow(c, rt, rp, r.allow);
    if (c.errors.size() == route_errors && r.allow.empty()) {
      c.err(r.loc, rp,
            "a route needs at least one entry in allow_spiffe_ids, allow_trust_domains or allow_dns");
      ok = false;
    }
    if (ok && c.errors.size() == route_errors) h.routes.push_back(std::move(r));
  }
}

void parse_listener(Ctx& c, const toml::table& t, const std::string& prefix, ListenerSrc& out) {
  size_t before = c.errors.size();
  check_unknown_keys(c, t, prefix, "listener", false);
  Listener& l = out.l;
  l.loc = c.loc(t.source());
  if (const toml::node* n = require(c, t, "name", prefix, "[[listener]]")) {
    if (auto v = get_string(c, *n, prefix + ".name")) {
      if (!valid_name(*v)) {
        c.err(*n, prefix + ".name", "'" + *v + "' is not a valid name (use [A-Za-z0-9_.-]+)");
      } else {
        l.name = *v;
        out.name = {n, prefix + ".name"};
      }
    }
  }
  if (const toml::node* n = require(c, t, "address", prefix, "[[listener]]")) {
    if (auto v = get_string(c, *n, prefix + ".address")) {
      std::string reason;
      if (auto a = parse_address(*v, reason)) {
        l.address = *a;
        out.address = {n, prefix + ".address"};
      } else {
        c.err(*n, prefix + ".address", reason);
      }
    }
  }
  if (const toml::node* n = t.get("egress")) {
    if (auto v = get_bool(c, *n, prefix + ".egress")) l.egress = *v;
  }
  if (l.egress) {
    // An egress listener routes each request by the host it names; it has no cluster.
    if (const toml::node* n = t.get("cluster")) {
      c.err(*n, prefix + ".cluster",
            "an egress listener sends each request to the host it names ([egress] destinations); "
            "remove cluster or set egress = false");
    }
    const toml::node* m = t.get("mode");
    if (m == nullptr || !m->is_string() || m->as_string()->get() != "http1") {
      c.err(m ? *m : *t.get("egress"), prefix + (m ? ".mode" : ".egress"),
            "egress = true needs mode = \"http1\" (the destination comes from each request)");
    }
  } else if (const toml::node* n = require(c, t, "cluster", prefix, "[[listener]]")) {
    if (auto v = get_string(c, *n, prefix + ".cluster")) {
      l.cluster = *v;
      out.cluster = {n, prefix + ".cluster"};
    }
  }
  if (const toml::node* n = t.get("mode")) {
    if (auto v = get_string(c, *n, prefix + ".mode")) {
      if (*v == "tcp")
        l.mode = Mode::Tcp;
      else if (*v == "http1")
        l.mode = Mode::Http1;
      else {
        c.err(*n, prefix + ".mode",
              with_suggestion("unknown mode '" + *v + "' (expected tcp or http1)", *v,
                              {"tcp", "http1"}));
      }
    }
  }
  if (const toml::node* n = t.get("max_connections")) {
    if (auto v = get_int(c, *n, prefix + ".max_connections", 1, 1000000)) {
      l.max_connections = static_cast<uint32_t>(*v);
    }
  }
  if (const toml::node* n = t.get("handshake_timeout")) {
    if (auto v = get_duration(c, *n, prefix + ".handshake_timeout")) l.handshake_timeout = *v;
  }
  if (const toml::node* n = t.get("idle_timeout")) {
    if (auto v = get_duration(c, *n, prefix + ".idle_timeout")) l.idle_timeout = *v;
  }
  if (const toml::node* n = t.get("request_header_timeout")) {
    if (auto v = get_duration(c, *n, prefix + ".request_header_timeout")) l.request_header_timeout = *v;
  }
  if (const toml::node* n = t.get("allow_remote_plaintext")) {
    if (auto v = get_bool(c, *n, prefix + ".allow_remote_plaintext")) l.allow_remote_plaintext = *v;
  }
  if (const toml::node* n = t.get("tls")) l.tls = parse_tls(c, *n, prefix + ".tls", true);
  if (const toml::node* n = t.get("http")) {
    if (l.mode != Mode::Http1) {
      c.err(*n, prefix + ".http", "[listener.http] is only valid with mode = \"http1\"");
    } else {
      parse_http_options(c, *n, prefix + ".http", l.http);
    }
  }
  if (const toml::node* n = t.get("proxy_protocol")) {
    if (auto v = get_string(c, *n, prefix + ".proxy_protocol")) {
      if (*v == "off") {
        l.proxy_protocol = ProxyProtocol::Off;
      } else if (*v != "v2") {
        c.err(*n, prefix + ".proxy_protocol", "unknown proxy_protocol '" + *v + "' (expected \"v2\" or \"off\")");
      } else if (l.mode != Mode::Tcp) {
        c.err(*n, prefix + ".proxy_protocol",
              "proxy_protocol is only valid with mode = \"tcp\" (http1 passes identity in X-Forwarded-Client-Cert)");
      } else {
        l.proxy_protocol = ProxyProtocol::V2;
      }
    }
  }
  if (!l.tls && !t.get("tls") && out.address.node && !l.address.is_local() &&
      !l.allow_remote_plaintext) {
    c.err(*out.address.node, out.address.key,
          "plaintext listener on non-local address '" + l.address.text +
              "'; add a [listener.tls] block, or set allow_remote_plaintext = true to accept "
              "unencrypted remote traffic");
  }
  out.ok = c.errors.size() == before;
}

// `type` and `port`. For type = "original_dst" (transparent outbound capture, issue #12) it
// reports every key that only makes sense with a fixed endpoint list, and plaintext toward
// destinations nobody listed. Returns true for original_dst.
bool parse_cluster_type(Ctx& c, const toml::table& t, const std::string& prefix, Cluster& cl,
                        bool plaintext) {
  const toml::node* type = t.get("type");
  if (type) {
    if (auto v = get_string(c, *type, prefix + ".type")) {
      if (*v == "static") {
        cl.type = ClusterType::Static;
      } else if (*v == "original_dst") {
        cl.type = ClusterType::OriginalDst;
      } else {
        c.err(*type, prefix + ".type",
              with_suggestion("unknown cluster type '" + *v + "' (expected static or original_dst)",
                              *v, {"static", "original_dst"}));
      }
    }
  }
  const bool odst = cl.type == ClusterType::OriginalDst;
  if (const toml::node* n = t.get("port")) {
    if (!odst) {
      c.err(*n, prefix + ".port", "port is only valid with type = \"original_dst\" (static "
                                  "clusters name the port in each endpoint)");
    } else if (auto v = get_int(c, *n, prefix + ".port", 1, 65535)) {
      cl.port = static_cast<uint16_t>(*v);
    }
  }
  if (!odst) return false;
  for (const char* k : {"endpoints", "weights", "lb_policy", "connect_retries", "no_healthy",
                        "health_check", "outlier_detection"}) {
    if (const toml::node* n = t.get(k)) {
      c.err(*n, prefix + "." + k,
            std::string(k) + " is not valid with type = \"original_dst\" (each connection has "
                             "one destination, the address the client dialled: nothing to list, "
                             "balance, retry or check)");
    }
  }
  if (plaintext && !cl.allow_remote_plaintext) {
    c.err(*type, prefix + ".type",
          "an original_dst cluster without a [cluster.tls] block sends plaintext to whatever "
          "address the client dialled; add a [cluster.tls] block, or set "
          "allow_remote_plaintext = true");
  }
  cl.connect_retries = 0;
  return true;
}

void parse_cluster(Ctx& c, const toml::table& t, const std::string& prefix, ClusterSrc& out) {
  size_t before = c.errors.size();
  check_unknown_keys(c, t, prefix, "cluster", false);
  Cluster& cl = out.cl;
  cl.loc = c.loc(t.source());
  if (const toml::node* n = require(c, t, "name", prefix, "[[cluster]]")) {
    if (auto v = get_string(c, *n, prefix + ".name")) {
      if (!valid_name(*v)) {
        c.err(*n, prefix + ".name", "'" + *v + "' is not a valid name (use [A-Za-z0-9_.-]+)");
      } else {
        cl.name = *v;
        out.name = {n, prefix + ".name"};
      }
    }
  }
  if (const toml::node* n = t.get("allow_remote_plaintext")) {
    if (auto v = get_bool(c, *n, prefix + ".allow_remote_plaintext")) {
      cl.allow_remote_plaintext = *v;
    }
  }
  if (const toml::node* n = t.get("connect_timeout")) {
    if (auto v = get_duration(c, *n, prefix + ".connect_timeout")) cl.connect_timeout = *v;
  }
  if (const toml::node* n = t.get("max_idle_connections")) {
    if (auto v = get_int(c, *n, prefix + ".max_idle_connections", 0, 1024)) {
      cl.max_idle_connections = static_cast<uint32_t>(*v);
    }
  }
  if (const toml::node* n = t.get("idle_connection_timeout")) {
    if (auto v = get_duration(c, *n, prefix + ".idle_connection_timeout")) cl.idle_connection_timeout = *v;
  }
  if (const toml::node* n = t.get("tls")) cl.tls = parse_tls(c, *n, prefix + ".tls", false);
  bool plaintext = !t.get("tls");
  const bool original_dst = parse_cluster_type(c, t, prefix, cl, plaintext);
  if (original_dst) {
    // No endpoints to parse; the LB keys were reported by parse_cluster_type.
  } else if (const toml::node* n = require(c, t, "endpoints", prefix, "[[cluster]]")) {
    if (auto items = get_string_array(c, *n, prefix + ".endpoints")) {
      if (items->empty()) c.err(*n, prefix + ".endpoints", "at least one endpoint is required");
      for (const auto& it : *items) {
        std::string reason;
        auto a = parse_address(it.value, reason);
        if (!a) {
          c.err(*it.node, it.key, reason);
          continue;
        }
        if (!a->is_unix() && a->port == 0) {
          c.err(*it.node, it.key, "endpoint port must be 1..65535");
          continue;
        }
        if (plaintext && !a->is_local() && !cl.allow_remote_plaintext) {
          c.err(*it.node, it.key,
                "plaintext cluster endpoint '" + a->text +
                    "' is not local; add a [cluster.tls] block, or set allow_remote_plaintext = "
                    "true to send unencrypted traffic off-host");
          continue;
        }
        cl.endpoints.push_back(*a);
        out.endpoints.push_back({it.node, it.key});
      }
    }
  }
  if (const toml::node* n = t.get("weights")) {
    const toml::array* arr = n->as_array();
    if (!arr) {
      type_error(c, *n, prefix + ".weights", "an array of integers");
    } else {
      for (size_t i = 0; i < arr->size(); ++i) {
        if (auto w = get_int(c, *arr->get(i), prefix + ".weights[" + std::to_string(i) + "]", 1, 1000)) {
          cl.weights.push_back(static_cast<uint32_t>(*w));
        }
      }
      if (cl.weights.size() != arr->size()) {
        // element errors already reported
      } else if (t.get("endpoints") && cl.weights.size() != cl.endpoints.size() &&
                 c.errors.size() == before) {
        c.err(*n, prefix + ".weights",
              "has " + std::to_string(cl.weights.size()) + " entries for " +
                  std::to_string(cl.endpoints.size()) + " endpoints");
      }
    }
  }
  if (cl.weights.size() != cl.endpoints.size()) cl.weights.assign(cl.endpoints.size(), 1);
  if (const toml::node* n = t.get("lb_policy")) {
    if (auto v = get_string(c, *n, prefix + ".lb_policy")) {
      if (*v == "round_robin") {
        cl.lb_policy = LbPolicy::RoundRobin;
      } else if (*v == "least_request") {
        cl.lb_policy = LbPolicy::LeastRequest;
      } else if (*v == "random") {
        cl.lb_policy = LbPolicy::Random;
      } else {
        c.err(*n, prefix + ".lb_policy",
              with_suggestion("unknown lb_policy '" + *v + "' (expected round_robin, least_request or random)",
                              *v, {"round_robin", "least_request", "random"}));
      }
    }
  }
  if (const toml::node* n = t.get("connect_retries")) {
    if (auto v = get_int(c, *n, prefix + ".connect_retries", 0, 5)) cl.connect_retries = static_cast<unsigned>(*v);
  }
  if (const toml::node* n = t.get("no_healthy")) {
    if (auto v = get_string(c, *n, prefix + ".no_healthy")) {
      if (*v == "fail") {
        cl.no_healthy_use_all = false;
      } else if (*v == "use_all") {
        cl.no_healthy_use_all = true;
      } else {
        c.err(*n, prefix + ".no_healthy", "expected \"fail\" or \"use_all\"");
      }
    }
  }
  if (const toml::node* n = t.get("health_check")) {
    if (const toml::table* h = n->as_table()) {
      const std::string hp = prefix + ".health_check";
      check_unknown_keys(c, *h, hp, "cluster.health_check", false);
      HealthCheck hc;
      if (const toml::node* v = h->get("type")) {
        if (auto s2 = get_string(c, *v, hp + ".type")) {
          if (*s2 == "tcp") hc.type = HealthCheck::Type::Tcp;
          else if (*s2 == "tls") hc.type = HealthCheck::Type::Tls;
          else if (*s2 == "http") hc.type = HealthCheck::Type::Http;
          else c.err(*v, hp + ".type", "expected \"tcp\", \"tls\" or \"http\"");
        }
      }
      if (hc.type == HealthCheck::Type::Tls && !t.get("tls")) {
        c.err(*n, hp + ".type", "a tls health check needs a [cluster.tls] block");
      }
      if (const toml::node* v = h->get("interval")) {
        if (auto d = get_duration(c, *v, hp + ".interval")) hc.interval = *d;
      }
      if (const toml::node* v = h->get("timeout")) {
        if (auto d = get_duration(c, *v, hp + ".timeout")) hc.timeout = *d;
      }
      if (const toml::node* v = h->get("healthy_threshold")) {
        if (auto i = get_int(c, *v, hp + ".healthy_threshold", 1, 100)) hc.healthy_threshold = static_cast<unsigned>(*i);
      }
      if (const toml::node* v = h->get("unhealthy_threshold")) {
        if (auto i = get_int(c, *v, hp + ".unhealthy_threshold", 1, 100)) hc.unhealthy_threshold = static_cast<unsigned>(*i);
      }
      if (const toml::node* v = h->get("path")) {
        if (auto s2 = get_string(c, *v, hp + ".path")) {
          if (s2->empty() || (*s2)[0] != '/' || s2->find_first_of(" \r\n") != std::string::npos) {
            c.err(*v, hp + ".path", "must start with '/' and contain no spaces or line breaks");
          } else {
            hc.path = *s2;
          }
        }
      }
      if (const toml::node* v = h->get("host")) {
        if (auto s2 = get_string(c, *v, hp + ".host")) hc.host = *s2;
      }
      if (const toml::node* v = h->get("expected_status")) {
        const toml::array* arr = v->as_array();
        if (!arr || arr->size() != 2) {
          type_error(c, *v, hp + ".expected_status", "[min, max], e.g. [200, 399]");
        } else {
          auto lo = get_int(c, *arr->get(0), hp + ".expected_status[0]", 100, 599);
          auto hi = get_int(c, *arr->get(1), hp + ".expected_status[1]", 100, 599);
          if (lo && hi) {
            if (*lo > *hi) {
              c.err(*v, hp + ".expected_status", "min is greater than max");
            } else {
              hc.status_min = static_cast<int>(*lo);
              hc.status_max = static_cast<int>(*hi);
            }
          }
        }
      }
      cl.health_check = hc;
    } else {
      type_error(c, *n, prefix + ".health_check", "a table");
    }
  }
  if (const toml::node* n = t.get("outlier_detection")) {
    if (const toml::table* o = n->as_table()) {
      const std::string op = prefix + ".outlier_detection";
      check_unknown_keys(c, *o, op, "cluster.outlier_detection", false);
      OutlierDetection od;
      if (const toml::node* v = o->get("consecutive_failures")) {
        if (auto i = get_int(c, *v, op + ".consecutive_failures", 1, 1000)) od.consecutive_failures = static_cast<unsigned>(*i);
      }
      if (const toml::node* v = o->get("base_ejection")) {
        if (auto d = get_duration(c, *v, op + ".base_ejection")) od.base_ejection = *d;
      }
      if (const toml::node* v = o->get("max_ejection")) {
        if (auto d = get_duration(c, *v, op + ".max_ejection")) od.max_ejection = *d;
      }
      if (const toml::node* v = o->get("max_ejection_percent")) {
        if (auto i = get_int(c, *v, op + ".max_ejection_percent", 0, 100)) od.max_ejection_percent = static_cast<unsigned>(*i);
      }
      if (od.max_ejection < od.base_ejection) {
        c.err(*n, op + ".max_ejection", "must not be less than base_ejection");
      }
      cl.outlier_detection = od;
    } else {
      type_error(c, *n, prefix + ".outlier_detection", "a table");
    }
  }
  out.ok = c.errors.size() == before;
}

std::string loc_str(const SourceLoc& l) {
  return l.file + ":" + std::to_string(l.line) + ":" + std::to_string(l.col);
}

bool same_socket(const Address& a, const Address& b) {
  if (a.kind != b.kind) return false;
  if (a.is_unix()) return a.path == b.path;
  if (a.port != b.port || a.port == 0) return false;  // port 0: the kernel picks distinct ports
  auto wildcard = [](const std::string& h) { return h == "0.0.0.0" || h == "::"; };
  return lower(a.host) == lower(b.host) || wildcard(a.host) || wildcard(b.host);
}

// Iterates an array of tables ([[listener]]), reporting non-table shapes.
template <class F>
void for_each_table(Ctx& c, const toml::node& n, const char* name, F&& f) {
  const toml::array* arr = n.as_array();
  if (!arr) {
    c.err(
        n, name,
        std::string("expected an array of tables ([[") + name + "]]), got " + type_name(n.type()));
    return;
  }
  for (size_t i = 0; i < arr->size(); ++i) {
    const toml::node& e = *arr->get(i);
    std::string key = std::string(name) + "[" + std::to_string(i) + "]";
    if (!e.is_table()) {
      type_error(c, e, key, "a table");
      continue;
    }
    f(*e.as_table(), key);
  }
}

// A listener that forwards to an original_dst cluster receives the app's redirected plaintext:
// SO_ORIGINAL_DST needs a TCP socket, and a TLS block would mean terminating TLS the app meant
// for someone else.
void check_original_dst_listener(Ctx& c, const ListenerSrc& ls, const Cluster& cl) {
  const std::string why = "listener cluster '" + cl.name + "' is type = \"original_dst\"";
  if (ls.l.tls) {
    c.err(ls.l.tls->loc, ls.cluster.key.substr(0, ls.cluster.key.size() - 8) + ".tls",
          why + ": its listener receives the client's redirected plaintext and must have no "
                "[listener.tls] block");
  }
  if (ls.address.node && ls.l.address.is_unix()) {
    c.err(*ls.address.node, ls.address.key,
          why + ": it needs a TCP listener (the original destination comes from the kernel's "
                "NAT record of a TCP connection, SO_ORIGINAL_DST)");
  }
}

// [egress] and its [[egress.destination]] blocks (issue #13). Default deny: a request whose
// host:port no destination allows gets 403.
void parse_egress(Ctx& c, const toml::node& node, Snapshot& s) {
  const toml::table* t = node.as_table();
  if (!t) {
    type_error(c, node, "egress", "a table");
    return;
  }
  check_unknown_keys(c, *t, "egress", "egress", false);
  Egress e;
  e.loc = c.loc(t->source());
  if (const toml::node* n = t->get("ca")) {
    if (auto v = get_file(c, *n, "egress.ca")) e.ca = *v;
  }
  if (const toml::node* n = t->get("connect_timeout")) {
    if (auto v = get_duration(c, *n, "egress.connect_timeout")) e.connect_timeout = *v;
  }
  if (const toml::node* n = t->get("dns_ttl")) {
    if (auto v = get_duration(c, *n, "egress.dns_ttl")) e.dns_ttl = *v;
  }
  if (const toml::node* n = t->get("max_idle_per_destination")) {
    if (auto v = get_int(c, *n, "egress.max_idle_per_destination", 0, 1024)) {
      e.max_idle_per_destination = static_cast<uint32_t>(*v);
    }
  }
  if (const toml::node* n = t->get("idle_connection_timeout")) {
    if (auto v = get_duration(c, *n, "egress.idle_connection_timeout")) e.idle_connection_timeout = *v;
  }
  if (const toml::node* n = t->get("destination")) {
    for_each_table(c, *n, "egress.destination", [&](const toml::table& d, const std::string& prefix) {
      check_unknown_keys(c, d, prefix, "egress.destination", false);
      EgressDestination dst;
      dst.loc = c.loc(d.source());
      dst.tls.loc = dst.loc;
      dst.tls.require_client_cert = false;
      if (const toml::node* h = require(c, d, "host", prefix, "[[egress.destination]]")) {
        if (auto v = get_string(c, *h, prefix + ".host")) {
          std::string host;
          for (char ch : *v) host.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(ch))));
          if (!valid_dns_pattern(host, true)) {
            c.err(*h, prefix + ".host",
                  "'" + *v + "' is not a DNS name, IP literal or \"*.suffix\" pattern");
          } else {
            dst.host = host;
          }
        }
      }
      if (const toml::node* p = d.get("ports")) {
        if (const toml::array* arr = p->as_array()) {
          if (arr->empty()) c.err(*p, prefix + ".ports", "at least one port is required");
          for (size_t i = 0; i < arr->size(); ++i) {
            if (auto v = get_int(c, *arr->get(i), prefix + ".ports[" + std::to_string(i) + "]", 1, 65535)) {
              dst.ports.push_back(static_cast<uint16_t>(*v));
            }
          }
        } else {
          type_error(c, *p, prefix + ".ports", "an array of integers");
        }
      } else {
        dst.ports = {80, 443};
      }
      if (const toml::node* p = d.get("upstream_port")) {
        if (auto v = get_int(c, *p, prefix + ".upstream_port", 1, 65535)) {
          dst.upstream_port = static_cast<uint16_t>(*v);
        }
      }
      if (const toml::node* p = d.get("ca")) {
        if (auto v = get_file(c, *p, prefix + ".ca")) dst.tls.ca = *v;
      }
      const toml::node* cert = d.get("cert");
      const toml::node* key = d.get("key");
      if (cert) {
        if (auto v = get_file(c, *cert, prefix + ".cert")) dst.tls.cert = *v;
      }
      if (key) {
        if (auto v = get_file(c, *key, prefix + ".key")) dst.tls.key = *v;
      }
      if ((cert != nullptr) != (key != nullptr)) {
        c.err(cert ? *cert : *key, prefix + (cert ? ".key" : ".cert"),
              "a client certificate needs both cert and key");
      }
      if (const toml::node* p = d.get("sni")) {
        if (auto v = get_string(c, *p, prefix + ".sni")) {
          if (!valid_dns_pattern(*v, false)) {
            c.err(*p, prefix + ".sni", "'" + *v + "' is not a DNS name");
          } else {
            dst.tls.sni = *v;
          }
        }
      }
      for (const auto& prev : e.destinations) {
        if (!dst.host.empty() && prev.host == dst.host) {
          c.err(*d.get("host"), prefix + ".host",
                "duplicate destination '" + dst.host + "' (first defined at " + loc_str(prev.loc) + ")");
        }
      }
      e.destinations.push_back(std::move(dst));
    });
  }
  if (e.ca.empty()) {
    // The system bundle (Debian: ca-certificates) unless every destination names its own.
    const std::string sys = "/etc/ssl/certs/ca-certificates.crt";
    bool needed = false;
    for (const auto& d : e.destinations) needed = needed || d.tls.ca.empty();
    if (needed && ::access(sys.c_str(), R_OK) != 0) {
      c.err(node, "egress.ca",
            "no CA bundle: " + sys + " is not readable (install ca-certificates) and a destination "
            "has no ca of its own");
    }
    e.ca = sys;
  }
  for (auto& d : e.destinations) {
    if (d.tls.ca.empty()) d.tls.ca = e.ca;
  }
  s.egress = std::move(e);
}

void validate(Ctx& c, const toml::table& root, Snapshot& s) {
  check_unknown_keys(c, root, "", "", false);

  if (const toml::node* n = root.get("workers")) {
    if (auto v = get_int(c, *n, "workers", 0, 256)) s.workers = static_cast<unsigned>(*v);
  }
  if (const toml::node* n = root.get("log_level")) {
    if (auto v = get_string(c, *n, "log_level")) {
      static const std::vector<const char*> kLevels = {"trace", "debug", "info", "warn", "error"};
      if (std::find_if(kLevels.begin(), kLevels.end(), [&](const char* l) { return *v == l; }) ==
          kLevels.end()) {
        c.err(*n, "log_level",
              with_suggestion(
                  "unknown log level '" + *v + "' (expected trace, debug, info, warn or error)", *v,
                  kLevels));
      } else {
        s.log_level = *v;
      }
    }
  }
  if (const toml::node* n = root.get("access_log")) {
    if (auto v = get_string(c, *n, "access_log")) {
      if (*v == "stderr" || *v == "off") {
        s.access_log = *v;
      } else if (v->empty()) {
        c.err(*n, "access_log", "must be \"stderr\", \"off\" or a file path");
      } else {
        fs::path p(*v);
        if (p.is_relative()) p = fs::path(c.dir_of(*n)) / p;
        std::error_code ec;
        fs::path abs = fs::absolute(p, ec);
        if (ec) abs = p;
        abs = abs.lexically_normal();
        fs::path dir = abs.parent_path();
        if (!fs::is_directory(dir, ec)) {
          c.err(*n, "access_log", "directory '" + dir.string() + "' does not exist");
        } else {
          s.access_log = abs.string();
        }
      }
    }
  }
  if (const toml::node* n = root.get("drain_timeout")) {
    if (auto v = get_duration(c, *n, "drain_timeout")) s.drain_timeout = *v;
  }
  if (const toml::node* n = root.get("limits")) {
    if (const toml::table* t = n->as_table()) {
      check_unknown_keys(c, *t, "limits", "limits", false);
      const toml::node* hi = t->get("high_watermark");
      const toml::node* lo = t->get("low_watermark");
      std::optional<uint64_t> hv, lv;
      if (hi) hv = get_size(c, *hi, "limits.high_watermark");
      if (lo) lv = get_size(c, *lo, "limits.low_watermark");
      if (hv) s.limits.high_watermark = *hv;
      if (lv) s.limits.low_watermark = *lv;
      if ((!hi || hv) && (!lo || lv) && s.limits.low_watermark >= s.limits.high_watermark) {
        c.err(lo ? *lo : (hi ? *hi : *n), lo ? "limits.low_watermark" : "limits.high_watermark",
              "low_watermark (" + std::to_string(s.limits.low_watermark) +
                  ") must be less than high_watermark (" + std::to_string(s.limits.high_watermark) +
                  ")");
      }
    } else {
      type_error(c, *n, "limits", "a table");
    }
  }

  if (const toml::node* n = root.get("fips")) {
    if (const toml::table* t = n->as_table()) {
      check_unknown_keys(c, *t, "fips", "fips", false);
      if (const toml::node* v = t->get("selfprobe_interval")) {
        if (auto d = get_duration(c, *v, "fips.selfprobe_interval")) s.fips.selfprobe_interval = *d;
      }
      if (const toml::node* v = t->get("baseline")) {
        if (auto b = get_string(c, *v, "fips.baseline")) {
          fs::path p(*b);
          if (p.is_relative()) p = fs::path(c.base_dir) / p;
          std::error_code ec;
          if (!fs::is_regular_file(p, ec)) {
            c.err(*v, "fips.baseline", "file '" + p.string() + "' does not exist");
          } else {
            s.fips.baseline = p.lexically_normal().string();
          }
        }
      }
      if (const toml::node* v = t->get("require_kernel_fips")) {
        if (const auto* b = v->as_boolean()) {
          s.fips.require_kernel_fips = b->get();
        } else {
          type_error(c, *v, "fips.require_kernel_fips", "a boolean");
        }
      }
    } else {
      type_error(c, *n, "fips", "a table");
    }
  }
  if (const toml::node* n = root.get("audit")) {
    if (const toml::table* t = n->as_table()) {
      check_unknown_keys(c, *t, "audit", "audit", false);
      Audit audit;
      bool ok = false;
      if (const toml::node* p = require(c, *t, "path", "audit", "[audit]")) {
        if (auto v = get_string(c, *p, "audit.path")) {
          fs::path ap(*v);
          if (ap.is_relative()) ap = fs::path(c.base_dir) / ap;
          std::error_code ec;
          fs::path abs = fs::absolute(ap, ec).lexically_normal();
          if (!fs::is_directory(abs.parent_path(), ec)) {
            c.err(*p, "audit.path", "directory '" + abs.parent_path().string() + "' does not exist");
          } else {
            audit.path = abs.string();
            ok = true;
          }
        }
      }
      if (const toml::node* m = t->get("max_size")) {
        if (auto v = get_size(c, *m, "audit.max_size")) audit.max_bytes = *v;
      }
      if (const toml::node* k = t->get("keep")) {
        if (auto v = get_int(c, *k, "audit.keep", 1, 1000)) audit.keep = static_cast<unsigned>(*v);
      }
      if (ok) s.audit = audit;
    } else {
      type_error(c, *n, "audit", "a table");
    }
  }
  if (const toml::node* n = root.get("process")) {
    if (const toml::table* t = n->as_table()) {
      check_unknown_keys(c, *t, "process", "process", false);
      // A user or group name (POSIX portable: letters, digits, '.', '_', '-', a trailing '$'), or
      // a numeric id. Resolved when the proxy starts (proxy/sandbox.cc), not here.
      auto account = [&](const char* key, std::string& out, SourceLoc& loc) {
        const toml::node* v = t->get(key);
        if (v == nullptr) return;
        auto str = get_string(c, *v, std::string("process.") + key);
        if (!str) return;
        bool ok = !str->empty() && str->size() <= 32 && (*str)[0] != '-';
        for (size_t i = 0; ok && i < str->size(); ++i) {
          const char ch = (*str)[i];
          ok = std::isalnum(static_cast<unsigned char>(ch)) || ch == '.' || ch == '_' || ch == '-' ||
               (ch == '$' && i + 1 == str->size());
        }
        if (!ok) {
          c.err(*v, std::string("process.") + key,
                "'" + *str + "' is not a valid " + key + " name or numeric id");
          return;
        }
        out = *str;
        loc = c.loc(v->source());
      };
      account("user", s.process.user, s.process.user_loc);
      account("group", s.process.group, s.process.group_loc);
      if (const toml::node* v = t->get("allow_root")) {
        if (auto b = get_bool(c, *v, "process.allow_root")) s.process.allow_root = *b;
      }
      if (const toml::node* v = t->get("seccomp")) {
        if (auto m = get_string(c, *v, "process.seccomp")) {
          if (*m == "kill") {
            s.process.seccomp = SeccompMode::Kill;
          } else if (*m == "log") {
            s.process.seccomp = SeccompMode::Log;
          } else if (*m == "off") {
            s.process.seccomp = SeccompMode::Off;
          } else {
            c.err(*v, "process.seccomp", "expected \"kill\", \"log\" or \"off\", got '" + *m + "'");
          }
        }
      }
      if (const toml::node* v = t->get("key_permissions")) {
        if (auto m = get_string(c, *v, "process.key_permissions")) {
          if (*m == "refuse") {
            s.process.key_permissions = KeyPermissions::Refuse;
          } else if (*m == "warn") {
            s.process.key_permissions = KeyPermissions::Warn;
          } else {
            c.err(*v, "process.key_permissions", "expected \"refuse\" or \"warn\", got '" + *m + "'");
          }
        }
      }
    } else {
      type_error(c, *n, "process", "a table");
    }
  }
  if (const toml::node* n = root.get("admin")) {
    if (const toml::table* t = n->as_table()) {
      check_unknown_keys(c, *t, "admin", "admin", false);
      Admin admin;
      bool ok = true;
      if (const toml::node* a = require(c, *t, "address", "admin", "[admin]")) {
        if (auto v = get_string(c, *a, "admin.address")) {
          std::string reason;
          if (auto addr = parse_address(*v, reason)) {
            if (!addr->is_local() && !t->get("tls")) {
              c.err(*a, "admin.address",
                    "the admin endpoint must be a Unix socket or a loopback address, or use "
                    "[admin.tls] (mTLS)");
              ok = false;
            }
            admin.address = *addr;
          } else {
            c.err(*a, "admin.address", reason);
            ok = false;
          }
        } else {
          ok = false;
        }
      } else {
        ok = false;
      }
      if (const toml::node* m = t->get("max_connections")) {
        if (auto v = get_int(c, *m, "admin.max_connections", 1, 1024)) {
          admin.max_connections = static_cast<uint32_t>(*v);
        }
      }
      if (const toml::node* tn = t->get("tls")) {
        admin.tls = parse_tls(c, *tn, "admin.tls", true);
        if (!admin.tls) {
          ok = false;
        } else if (!admin.tls->require_client_cert) {
          c.err(*tn, "admin.tls.require_client_cert",
                "the admin endpoint over TLS always requires a client certificate (mTLS)");
          ok = false;
        } else if (admin.address.is_unix()) {
          c.err(*tn, "admin.tls", "[admin.tls] needs a TCP address, not a Unix socket");
          ok = false;
        }
      }
      if (ok) s.admin = admin;
    } else {
      type_error(c, *n, "admin", "a table");
    }
  }

  std::vector<ClusterSrc> clusters;
  if (const toml::node* n = root.get("cluster")) {
    for_each_table(c, *n, "cluster", [&](const toml::table& t, const std::string& key) {
      clusters.emplace_back();
      parse_cluster(c, t, key, clusters.back());
    });
  }
  std::vector<ListenerSrc> listeners;
  if (const toml::node* n = root.get("listener")) {
    for_each_table(c, *n, "listener", [&](const toml::table& t, const std::string& key) {
      listeners.emplace_back();
      parse_listener(c, t, key, listeners.back());
    });
  }
  if (listeners.empty() && !root.get("listener")) {
    c.err(c.loc(root.source()), "listener", "at least one [[listener]] is required");
  } else if (const toml::array* arr =
                 root.get("listener") ? root.get("listener")->as_array() : nullptr;
             arr && arr->empty()) {
    c.err(*root.get("listener"), "listener", "at least one [[listener]] is required");
  }

  // Cross-section rules.
  std::map<std::string, const ClusterSrc*> cluster_by_name;
  std::vector<std::string> cluster_names;
  for (const auto& cs : clusters) {
    if (!cs.name.node) continue;
    auto [it, inserted] = cluster_by_name.emplace(cs.cl.name, &cs);
    if (!inserted) {
      c.err(*cs.name.node, cs.name.key,
            "duplicate cluster name '" + cs.cl.name + "' (first defined at " +
                loc_str(c.loc(it->second->name.node->source())) + ")");
    } else {
      cluster_names.push_back(cs.cl.name);
    }
  }
  std::map<std::string, const ListenerSrc*> listener_by_name;
  for (size_t i = 0; i < listeners.size(); ++i) {
    const ListenerSrc& ls = listeners[i];
    if (ls.name.node) {
      auto [it, inserted] = listener_by_name.emplace(ls.l.name, &ls);
      if (!inserted) {
        c.err(*ls.name.node, ls.name.key,
              "duplicate listener name '" + ls.l.name + "' (first defined at " +
                  loc_str(c.loc(it->second->name.node->source())) + ")");
      }
    }
    if (ls.address.node) {
      for (size_t j = 0; j < i; ++j) {
        const ListenerSrc& prev = listeners[j];
        if (prev.address.node && same_socket(prev.l.address, ls.l.address)) {
          c.err(*ls.address.node, ls.address.key,
                "address '" + ls.l.address.text + "' is already used by listener[" +
                    std::to_string(j) + "] ('" + prev.l.address.text + "' at " +
                    loc_str(c.loc(prev.address.node->source())) + ")");
          break;
        }
      }
    }
    if (ls.cluster.node && !cluster_by_name.count(ls.l.cluster)) {
      c.err(*ls.cluster.node, ls.cluster.key,
            with_suggestion("no cluster named '" + ls.l.cluster + "'", ls.l.cluster, [&] {
              std::vector<const char*> v;
              for (const auto& nm : cluster_names) v.push_back(nm.c_str());
              return v;
            }()));
    }
    if (auto it = cluster_by_name.find(ls.l.cluster);
        ls.cluster.node && it != cluster_by_name.end() &&
        it->second->cl.type == ClusterType::OriginalDst) {
      check_original_dst_listener(c, ls, it->second->cl);
    }
  }

  if (const toml::node* n = root.get("egress")) parse_egress(c, *n, s);
  for (size_t i = 0; i < listeners.size(); ++i) {
    const ListenerSrc& ls = listeners[i];
    if (ls.l.egress && !root.get("egress")) {
      c.err(ls.l.loc, "listener[" + std::to_string(i) + "].egress",
            "egress = true needs an [egress] table with the allowed [[egress.destination]] hosts");
    }
  }
  for (auto& ls : listeners) s.listeners.push_back(std::move(ls.l));
  for (auto& cs : clusters) s.clusters.push_back(std::move(cs.cl));
  // [process] key_permissions applies wherever a key is read (certs/pem.cc).
  for (auto& l : s.listeners) {
    if (l.tls) l.tls->key_permissions = s.process.key_permissions;
  }
  for (auto& cl : s.clusters) {
    if (cl.tls) cl.tls->key_permissions = s.process.key_permissions;
  }
  if (s.admin && s.admin->tls) s.admin->tls->key_permissions = s.process.key_permissions;
  if (s.egress) {
    for (auto& d : s.egress->destinations) d.tls.key_permissions = s.process.key_permissions;
  }
}

// ---------------------------------------------------------------------------------------------
// Includes: `include = ["conf.d/*.toml", "extra.toml"]` at the top level of any file.
// ---------------------------------------------------------------------------------------------

struct IncludedFile {
  std::string canonical;  // for cycle / duplicate detection
  std::string shown;      // the name used in errors
};

struct IncludeState {
  std::vector<IncludedFile> stack;             // the chain of files being read (cycle check)
  std::map<std::string, SourceLoc> included;   // canonical path -> the include entry that read it
};

bool has_glob_meta(const std::string& s) { return s.find_first_of("*?[") != std::string::npos; }

std::string canonical_of(const fs::path& p) {
  std::error_code ec;
  fs::path c = fs::weakly_canonical(p, ec);
  return (ec ? p.lexically_normal() : c).string();
}

std::optional<toml::table> parse_toml(Ctx& c, const std::string& text, const std::string& name) {
  try {
    return toml::parse(text, name);
  } catch (const toml::parse_error& e) {
    SourceLoc l{name, static_cast<int>(e.source().begin.line),
                static_cast<int>(e.source().begin.column)};
    c.errors.push_back({l, "", "TOML syntax error: " + std::string(e.description())});
    return std::nullopt;
  }
}

// Moves the keys of an included file's top-level table into `root`. [[listener]] and [[cluster]]
// elements are appended; any other key defined in two files is an error naming both.
void merge_into(Ctx& c, toml::table& root, toml::table& inc) {
  for (auto&& [k, v] : inc) {
    auto it = root.find(k.str());
    if (it == root.end()) {
      root.insert(k, std::move(v));
      continue;
    }
    const bool appendable = k.str() == "listener" || k.str() == "cluster";
    if (appendable && it->second.is_array() && v.is_array()) {
      toml::array& dst = *it->second.as_array();
      for (auto& e : *v.as_array()) dst.push_back(std::move(e));
      continue;
    }
    c.err(c.loc(k.source()), std::string(k.str()),
          "'" + std::string(k.str()) + "' is already defined at " + loc_str(c.loc(it->first.source())) +
              (appendable ? " (as a different type)"
                          : " (only [[listener]] and [[cluster]] may appear in more than one file)"));
  }
}

void process_includes(Ctx& c, toml::table& root, toml::table& file, bool is_root,
                      const std::string& shown, const std::string& abs_dir, IncludeState& st);

// Reads one included file (found by an include entry at `at`) and merges it into root.
void include_file(Ctx& c, toml::table& root, const fs::path& abs, const std::string& shown,
                  const SourceLoc& at, const std::string& key, IncludeState& st) {
  const std::string canon = canonical_of(abs);
  for (size_t i = 0; i < st.stack.size(); ++i) {
    if (st.stack[i].canonical != canon) continue;
    std::string chain;
    for (size_t j = i; j < st.stack.size(); ++j) chain += st.stack[j].shown + " -> ";
    c.err(at, key, "include cycle: " + chain + shown);
    return;
  }
  if (auto it = st.included.find(canon); it != st.included.end()) {
    c.err(at, key, "'" + shown + "' is already included (at " + loc_str(it->second) + ")");
    return;
  }
  st.included.emplace(canon, at);
  std::error_code ec;
  if (fs::is_directory(abs, ec)) {
    c.err(at, key, "cannot read '" + shown + "': is a directory");
    c.incomplete = true;
    return;
  }
  std::ifstream in(abs, std::ios::binary);
  if (!in) {
    c.err(at, key, "cannot read '" + shown + "': " + std::strerror(errno));
    c.incomplete = true;
    return;
  }
  std::stringstream buf;
  buf << in.rdbuf();
  c.dirs[shown] = fs::absolute(abs, ec).lexically_normal().parent_path().string();
  c.files.push_back(shown);
  std::optional<toml::table> tbl = parse_toml(c, buf.str(), shown);
  if (!tbl) {
    c.incomplete = true;
    return;
  }
  st.stack.push_back({canon, shown});
  process_includes(c, root, *tbl, false, shown, c.dirs[shown], st);
  st.stack.pop_back();
}

// Takes `include` out of `file`, merges `file` into `root` (unless it is the root), then reads
// every included file in order: the file's own keys come first, then its includes, depth-first.
void process_includes(Ctx& c, toml::table& root, toml::table& file, bool is_root,
                      const std::string& shown, const std::string& abs_dir, IncludeState& st) {
  struct Entry {
    std::string pattern;
    SourceLoc at;
    std::string key;
  };
  std::vector<Entry> entries;
  if (const toml::node* n = file.get("include")) {
    if (auto items = get_string_array(c, *n, "include")) {
      for (const auto& it : *items) {
        if (it.value.empty()) {
          c.err(*it.node, it.key, "must not be empty");
          continue;
        }
        entries.push_back({it.value, c.loc(it.node->source()), it.key});
      }
    }
    file.erase("include");
  }
  if (!is_root) merge_into(c, root, file);

  const fs::path shown_dir = fs::path(shown).parent_path();
  for (const Entry& e : entries) {
    const fs::path pat(e.pattern);
    const fs::path abs_pat = pat.is_absolute() ? pat : fs::path(abs_dir) / pat;
    auto shown_of = [&](const fs::path& abs) {
      if (pat.is_absolute()) return abs.lexically_normal().string();
      return (shown_dir / abs.lexically_relative(abs_dir)).lexically_normal().string();
    };
    if (!has_glob_meta(e.pattern)) {
      std::error_code ec;
      if (!fs::exists(abs_pat, ec)) {
        c.err(e.at, e.key, "cannot read '" + shown_of(abs_pat) + "': no such file");
        c.incomplete = true;
        continue;
      }
      include_file(c, root, abs_pat, shown_of(abs_pat), e.at, e.key, st);
      continue;
    }
    // A pattern: its matches in byte order; directories are skipped; no match is not an error
    // (an empty conf.d is a valid deployment).
    glob_t g{};
    const int rc = ::glob(abs_pat.c_str(), GLOB_NOSORT | GLOB_MARK, nullptr, &g);
    std::vector<std::string> matches;
    if (rc == 0) {
      for (size_t i = 0; i < g.gl_pathc; ++i) {
        std::string m = g.gl_pathv[i];
        if (!m.empty() && m.back() != '/') matches.push_back(std::move(m));
      }
    }
    ::globfree(&g);
    if (rc != 0 && rc != GLOB_NOMATCH) {
      c.err(e.at, e.key, "cannot expand '" + e.pattern + "'");
      continue;
    }
    std::sort(matches.begin(), matches.end());
    for (const std::string& m : matches) include_file(c, root, fs::path(m), shown_of(fs::path(m)), e.at, e.key, st);
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------------

const char* profile_name(Profile p) {
  switch (p) {
    case Profile::Strict:
      return "strict";
    case Profile::Tls12Only:
      return "tls12-only";
    case Profile::Extended:
      return "extended";
  }
  return "unknown";
}

const char* seccomp_mode_name(SeccompMode m) {
  switch (m) {
    case SeccompMode::Kill:
      return "kill";
    case SeccompMode::Log:
      return "log";
    case SeccompMode::Off:
      return "off";
  }
  return "unknown";
}

const char* mode_name(Mode m) {
  switch (m) {
    case Mode::Tcp:
      return "tcp";
    case Mode::Http1:
      return "http1";
  }
  return "unknown";
}

const Cluster* Snapshot::find_cluster(const std::string& name) const {
  for (const auto& c : clusters) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

std::string ConfigError::str() const {
  std::string s = loc_str(loc) + ": ";
  if (!key.empty()) s += key + ": ";
  return s + reason;
}

std::vector<std::string> documented_keys() {
  std::vector<std::string> out;
  for (const auto& t : schema()) {
    for (const char* k : t.keys) out.push_back(join(t.path, k));
  }
  return out;
}

LoadResult load_string(const std::string& text, const std::string& name,
                       const std::string& base_dir) {
  LoadResult r;
  try {
    Ctx c;
    c.file = name;
    c.base_dir = base_dir.empty() ? "." : base_dir;
    std::error_code ec;
    fs::path abs_dir = fs::absolute(fs::path(c.base_dir), ec);
    if (ec) abs_dir = fs::path(c.base_dir);
    abs_dir = abs_dir.lexically_normal();
    c.dirs[name] = abs_dir.string();
    c.files.push_back(name);
    std::optional<toml::table> root = parse_toml(c, text, name);
    if (!root) {
      r.errors = std::move(c.errors);
      return r;
    }
    IncludeState st;
    st.stack.push_back({canonical_of(abs_dir / fs::path(name).filename()), name});
    process_includes(c, *root, *root, true, name, abs_dir.string(), st);
    Snapshot s;
    s.path = name;
    // A file that could not be read or parsed leaves the merged config incomplete: checking it
    // would only add misleading errors ("at least one [[listener]] is required").
    if (!c.incomplete) validate(c, *root, s);
    // File order reads best (the main file first, then included files in the order they were
    // read); ties keep the order the rules ran in.
    std::map<std::string, size_t> file_rank;
    for (const auto& f : c.files) file_rank.emplace(f, file_rank.size());
    for (const auto& e : c.errors) file_rank.emplace(e.loc.file, file_rank.size());
    std::stable_sort(c.errors.begin(), c.errors.end(),
                     [&](const ConfigError& a, const ConfigError& b) {
                       return std::tuple(file_rank[a.loc.file], a.loc.line, a.loc.col) <
                              std::tuple(file_rank[b.loc.file], b.loc.line, b.loc.col);
                     });
    r.errors = std::move(c.errors);
    if (r.errors.empty()) r.snapshot = std::move(s);
  } catch (const std::exception& e) {
    r.snapshot.reset();
    r.errors.push_back({SourceLoc{name, 0, 0}, "", std::string("internal error: ") + e.what()});
  } catch (...) {
    r.snapshot.reset();
    r.errors.push_back({SourceLoc{name, 0, 0}, "", "internal error"});
  }
  return r;
}

LoadResult load_file(const std::string& path) {
  LoadResult r;
  try {
    std::error_code ec;
    if (fs::is_directory(path, ec)) {
      r.errors.push_back({SourceLoc{path, 0, 0}, "", "cannot read: is a directory"});
      return r;
    }
    std::ifstream in(path, std::ios::binary);
    if (!in) {
      int e = errno;
      r.errors.push_back(
          {SourceLoc{path, 0, 0}, "", std::string("cannot read: ") + std::strerror(e)});
      return r;
    }
    std::stringstream buf;
    buf << in.rdbuf();
    if (in.bad()) {
      r.errors.push_back({SourceLoc{path, 0, 0}, "", "read error"});
      return r;
    }
    fs::path abs = fs::absolute(fs::path(path), ec);
    if (ec) abs = fs::path(path);
    abs = abs.lexically_normal();
    r = load_string(buf.str(), path, abs.parent_path().string());
    if (r.snapshot) r.snapshot->path = abs.string();
  } catch (...) {
    r.snapshot.reset();
    r.errors.push_back({SourceLoc{path, 0, 0}, "", "internal error while reading the file"});
  }
  return r;
}

}  // namespace fp::config
