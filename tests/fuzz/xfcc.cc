// Fuzz target: the XFCC encoder (filters/http1/xfcc.h) with PeerIdentity fields from the input.
//
// Input: a flags byte (which XfccConfig fields are on), then length-prefixed fields (one length
// byte each): by, sha256, subject, then URI SANs and DNS SANs (counts from the flags).
// Invariants:
// * the value never contains CR, LF, NUL or any other control byte (or DEL);
// * it is refused (nullopt) exactly when some value it would carry holds a control byte;
// * it round-trips: a small independent XFCC parser (below) yields exactly the expected
//   (key, value) pairs, in Envoy's order: By, Hash, Subject, URI..., DNS...;
// * apply_xfcc leaves at most one XFCC header, never the client's.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "certs/handshake_info.h"
#include "filters/http1/xfcc.h"
#include "tests/fuzz/fuzz_common.h"

namespace {

using Pairs = std::vector<std::pair<std::string, std::string>>;

// key=value pairs separated by ';' in one element; a value is a token without '"', ',', ';',
// '=' and '\', or a quoted string with backslash escapes. nullopt if malformed.
std::optional<Pairs> parse_xfcc(std::string_view v) {
  Pairs out;
  size_t i = 0;
  if (v.empty()) return out;
  for (;;) {
    size_t eq = v.find('=', i);
    if (eq == std::string_view::npos || eq == i) return std::nullopt;
    std::string key(v.substr(i, eq - i));
    for (char c : key) {
      if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'))) return std::nullopt;
    }
    i = eq + 1;
    std::string value;
    if (i < v.size() && v[i] == '"') {
      ++i;
      bool closed = false;
      while (i < v.size()) {
        char c = v[i++];
        if (c == '"') {
          closed = true;
          break;
        }
        if (c == '\\') {
          if (i >= v.size()) return std::nullopt;
          c = v[i++];
        }
        value += c;
      }
      if (!closed) return std::nullopt;
    } else {
      while (i < v.size() && v[i] != ';' && v[i] != ',') {
        const char c = v[i++];
        if (c == '"' || c == '=' || c == '\\') return std::nullopt;
        value += c;
      }
    }
    out.emplace_back(std::move(key), std::move(value));
    if (i == v.size()) return out;
    if (v[i] != ';') return std::nullopt;  // ',' would start a second element: we emit one
    ++i;
  }
}

bool has_ctl(std::string_view s) {
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7f) return true;
  }
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace fp::filters::http1;
  std::string_view in(reinterpret_cast<const char*>(data), size);
  const uint8_t flags = fp::fuzz::take_byte(in);
  auto field = [&in]() {
    const size_t n = fp::fuzz::take_byte(in);
    std::string_view f = in.substr(0, n);
    in.remove_prefix(f.size());
    return std::string(f);
  };
  XfccConfig cfg;
  cfg.hash = flags & 1;
  cfg.subject = flags & 2;
  cfg.uri = flags & 4;
  cfg.dns = flags & 8;
  fp::certs::PeerIdentity peer;
  peer.present = true;
  if (flags & 16) cfg.by = field();
  peer.sha256 = field();
  peer.subject = field();
  const unsigned n_uri = (flags >> 5) & 3, n_dns = flags >> 7 ? 2 : 0;
  for (unsigned k = 0; k < n_uri; ++k) peer.uris.push_back(field());
  if (n_uri == 0) peer.spiffe_id = field();
  for (unsigned k = 0; k < n_dns; ++k) peer.dns.push_back(field());

  Pairs want;
  if (!cfg.by.empty()) want.emplace_back("By", cfg.by);
  if (cfg.hash && !peer.sha256.empty()) want.emplace_back("Hash", peer.sha256);
  if (cfg.subject && !peer.subject.empty()) want.emplace_back("Subject", peer.subject);
  if (cfg.uri) {
    if (peer.uris.empty() && !peer.spiffe_id.empty()) want.emplace_back("URI", peer.spiffe_id);
    for (const auto& u : peer.uris) want.emplace_back("URI", u);
  }
  if (cfg.dns) {
    for (const auto& d : peer.dns) want.emplace_back("DNS", d);
  }
  bool unsafe = false;
  for (const auto& [k, v] : want) unsafe = unsafe || has_ctl(v);

  const std::optional<std::string> x = build_xfcc(peer, cfg);
  FUZZ_CHECK(x.has_value() == !unsafe, "refused=%d but unsafe=%d", !x.has_value(), unsafe);
  if (x) {
    FUZZ_CHECK(!has_ctl(*x), "XFCC value holds a control byte");
    const std::optional<Pairs> got = parse_xfcc(*x);
    FUZZ_CHECK(got.has_value(), "XFCC value does not parse: %s", x->c_str());
    FUZZ_CHECK(*got == want, "XFCC does not round-trip: %s", x->c_str());
    if (cfg.subject && !peer.subject.empty()) FUZZ_CHECK(x->find("Subject=\"") != std::string::npos, "Subject unquoted");
  }

  Headers h;
  h.add("Host", "a");
  h.add("x-forwarded-client-cert", "By=spoofed");
  h.add("X-Forwarded-Client-Cert", "Hash=spoofed");
  HeadVerdict verdict = apply_xfcc(h, &peer, cfg);
  (void)verdict;
  FUZZ_CHECK(h.count(kXfccHeader) <= 1, "more than one XFCC after apply_xfcc");
  if (const std::string* v = h.get(kXfccHeader)) {
    FUZZ_CHECK(x && *v == *x, "apply_xfcc set something build_xfcc did not build");
  }
  for (const auto& item : h.items()) FUZZ_CHECK(item.value.find("spoofed") == std::string::npos || (x && x->find("spoofed") != std::string::npos), "client XFCC kept");
  return 0;
}
