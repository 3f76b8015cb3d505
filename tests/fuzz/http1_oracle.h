#pragma once
// A deliberately simple, strict HTTP/1.1 request parser used as a differential oracle by the
// http1_request fuzz target. It is written from the policy (filters/http1/parser.h, RFC 9112),
// not from parser.cc: it sees the whole input at once (no incremental state), finds each head
// by its blank line, splits lines on CRLF and checks every rule with plain loops. It implements
// no size limits (those are the production parser's business) and does not know llhttp's method
// list.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace fp::fuzz::oracle {

struct Head {
  std::string method, target;
  int minor = 1;
  size_t header_count = 0;
  bool chunked = false;
  bool has_cl = false;
  uint64_t content_length = 0;
  bool keep_alive = true;
};

struct Message {
  Head head;
  bool complete = false;  // the body was read and is valid
  std::string forwarded;  // the body bytes the proxy must forward (chunked: framing included,
                          // trailers dropped, ending "0...\r\n" + "\r\n")
};

enum class Outcome { Done, Incomplete, Reject };

struct Result {
  std::vector<Message> messages;  // the last one may be incomplete/rejected in its body
  Outcome outcome = Outcome::Done;
  bool head_rejected = false;     // Reject: the head of message messages.size() was refused
  std::string why;
};

inline bool tchar(unsigned char c) {
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
}
inline bool vchar_or_ws(unsigned char c) { return c == '\t' || (c >= 0x20 && c != 0x7f); }
inline bool ieq(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    unsigned char x = static_cast<unsigned char>(a[i]), y = static_cast<unsigned char>(b[i]);
    if (x >= 'A' && x <= 'Z') x = static_cast<unsigned char>(x + 32);
    if (y >= 'A' && y <= 'Z') y = static_cast<unsigned char>(y + 32);
    if (x != y) return false;
  }
  return true;
}
inline std::string_view trim(std::string_view v) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  return v;
}
inline bool host_ok(std::string_view h) {
  if (h.empty()) return false;
  for (char ch : h) {
    unsigned char c = static_cast<unsigned char>(ch);
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              std::string_view("-._~!$&'()*+,;=%:[]").find(ch) != std::string_view::npos;
    if (!ok) return false;
  }
  return true;
}
// "name: value" with no CR/LF. Fills the trimmed value.
inline bool field_line(std::string_view line, std::string_view& name, std::string_view& value) {
  size_t colon = line.find(':');
  if (colon == std::string_view::npos || colon == 0) return false;
  name = line.substr(0, colon);
  for (char c : name) {
    if (!tchar(static_cast<unsigned char>(c))) return false;
  }
  std::string_view v = line.substr(colon + 1);
  for (char c : v) {
    if (!vchar_or_ws(static_cast<unsigned char>(c))) return false;
  }
  value = trim(v);
  return true;
}
// Comma-separated list contains `tok` (case-insensitive, OWS trimmed).
inline bool list_has(std::string_view v, std::string_view tok) {
  while (true) {
    size_t comma = v.find(',');
    if (ieq(trim(v.substr(0, comma)), tok)) return true;
    if (comma == std::string_view::npos) return false;
    v.remove_prefix(comma + 1);
  }
}

// `head` is the head text up to and excluding the blank line: lines, each ending with CRLF.
inline bool parse_head(std::string_view head, Head& out, std::string& why) {
  std::vector<std::string_view> lines;
  while (!head.empty()) {
    size_t crlf = head.find("\r\n");
    if (crlf == std::string_view::npos) return why = "line without CRLF", false;
    lines.push_back(head.substr(0, crlf));
    head.remove_prefix(crlf + 2);
  }
  if (lines.empty()) return why = "no request line", false;
  for (std::string_view l : lines) {
    if (l.find('\r') != std::string_view::npos || l.find('\n') != std::string_view::npos) {
      return why = "bare CR or LF", false;
    }
  }
  // request-line = method SP request-target SP HTTP-version
  std::string_view rl = lines[0];
  size_t sp1 = rl.find(' ');
  if (sp1 == std::string_view::npos) return why = "request line: no SP", false;
  size_t sp2 = rl.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) return why = "request line: one SP", false;
  std::string_view method = rl.substr(0, sp1), target = rl.substr(sp1 + 1, sp2 - sp1 - 1),
                   version = rl.substr(sp2 + 1);
  if (method.empty() || target.empty()) return why = "empty method/target", false;
  for (char c : method) {
    if (!tchar(static_cast<unsigned char>(c))) return why = "method", false;
  }
  for (char ch : target) {
    unsigned char c = static_cast<unsigned char>(ch);
    if (c < 0x21 || c > 0x7e || c == '#') return why = "target byte", false;
  }
  if (version == "HTTP/1.1") {
    out.minor = 1;
  } else if (version == "HTTP/1.0") {
    out.minor = 0;
  } else {
    return why = "version", false;
  }
  out.method = std::string(method);
  out.target = std::string(target);
  size_t cl = 0, te = 0, host = 0;
  std::string_view cl_v, te_v, host_v;
  bool close = false, ka = false;
  for (size_t i = 1; i < lines.size(); ++i) {
    std::string_view name, value;
    if (!field_line(lines[i], name, value)) return why = "field line", false;
    if (ieq(name, "content-length")) ++cl, cl_v = cl == 1 ? value : cl_v;
    if (ieq(name, "transfer-encoding")) ++te, te_v = te == 1 ? value : te_v;
    if (ieq(name, "host")) ++host, host_v = host == 1 ? value : host_v;
    if (ieq(name, "upgrade") || ieq(name, "http2-settings")) return why = "upgrade", false;
    if (ieq(name, "connection")) {
      close = close || list_has(value, "close");
      ka = ka || list_has(value, "keep-alive");
    }
  }
  out.header_count = lines.size() - 1;
  if (method == "CONNECT") return why = "CONNECT", false;
  if (cl && te) return why = "CL+TE", false;
  if (te) {
    if (te != 1 || out.minor != 1 || !ieq(te_v, "chunked")) return why = "TE", false;
    out.chunked = true;
  }
  if (cl) {
    if (cl != 1 || cl_v.empty() || cl_v.size() > 15) return why = "CL", false;
    uint64_t n = 0;
    for (char c : cl_v) {
      if (c < '0' || c > '9') return why = "CL digits", false;
      n = n * 10 + static_cast<uint64_t>(c - '0');
    }
    out.has_cl = true;
    out.content_length = n;
  }
  if (host > 1) return why = "two Hosts", false;
  if (host == 0 && out.minor == 1) return why = "no Host", false;
  if (host == 1 && !host_ok(host_v)) return why = "Host", false;
  if (target[0] == '/') {
    // origin-form
  } else if (target == "*") {
    if (method != "OPTIONS") return why = "* without OPTIONS", false;
  } else {
    size_t s = target.find("://");
    if (s == std::string_view::npos || !(ieq(target.substr(0, s), "http") || ieq(target.substr(0, s), "https"))) {
      return why = "target form", false;
    }
    std::string_view rest = target.substr(s + 3);
    std::string_view auth = rest.substr(0, rest.find_first_of("/?"));
    if (auth.empty() || auth.find('@') != std::string_view::npos || !host_ok(auth)) return why = "authority", false;
    if (host == 1 && !ieq(auth, host_v)) return why = "authority != Host", false;
  }
  out.keep_alive = out.minor == 1 ? !close : (ka && !close);
  return true;
}

inline int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

inline Result parse_requests(std::string_view in, size_t max_leading_empty_lines = 4) {
  Result r;
  size_t p = 0;
  auto done = [&](Outcome o, std::string why) {
    r.outcome = o;
    r.why = std::move(why);
    return r;
  };
  for (;;) {
    size_t empties = 0;
    while (in.substr(p, 2) == "\r\n") {
      if (++empties > max_leading_empty_lines) return r.head_rejected = true, done(Outcome::Reject, "empty lines");
      p += 2;
    }
    if (p == in.size()) return done(Outcome::Done, "");
    size_t end = in.find("\r\n\r\n", p);
    if (end == std::string_view::npos) return done(Outcome::Incomplete, "head");
    Message m;
    std::string why;
    if (!parse_head(in.substr(p, end + 2 - p), m.head, why)) return r.head_rejected = true, done(Outcome::Reject, why);
    p = end + 4;
    if (m.head.has_cl) {
      if (in.size() - p < m.head.content_length) {
        r.messages.push_back(std::move(m));
        return done(Outcome::Incomplete, "body");
      }
      m.forwarded = std::string(in.substr(p, static_cast<size_t>(m.head.content_length)));
      p += static_cast<size_t>(m.head.content_length);
    } else if (m.head.chunked) {
      const size_t body_start = p;
      bool ok = true, more = true;
      Outcome fail = Outcome::Reject;
      while (ok && more) {
        size_t digits = 0;
        uint64_t size = 0;
        while (p < in.size() && hexval(in[p]) >= 0) {
          if (++digits > 16) { ok = false; break; }
          size = size * 16 + static_cast<uint64_t>(hexval(in[p++]));
        }
        if (!ok) break;
        if (p == in.size()) { ok = false; fail = Outcome::Incomplete; break; }
        if (digits == 0) { ok = false; break; }
        if (in[p] == ';') {
          ++p;
          // policy (parser.cc): no obs-text in a chunk extension, even in a quoted string
          while (p < in.size() && in[p] != '\r' && vchar_or_ws(static_cast<unsigned char>(in[p])) &&
                 static_cast<unsigned char>(in[p]) < 0x80) {
            ++p;
          }
          if (p == in.size()) { ok = false; fail = Outcome::Incomplete; break; }
        }
        if (in[p] != '\r') { ok = false; break; }
        if (p + 1 == in.size()) { ok = false; fail = Outcome::Incomplete; break; }
        if (in[p + 1] != '\n') { ok = false; break; }
        p += 2;
        if (size == 0) {
          m.forwarded = std::string(in.substr(body_start, p - body_start)) + "\r\n";
          // trailer section: field lines, then an empty line; dropped
          for (;;) {
            size_t crlf = in.find("\r\n", p);
            std::string_view line = in.substr(p, crlf == std::string_view::npos ? std::string_view::npos : crlf - p);
            if (line.find('\n') != std::string_view::npos) { ok = false; break; }
            size_t cr = line.find('\r');
            // a CR is allowed only as the last byte of the input (its LF may still come)
            if (cr != std::string_view::npos && (crlf != std::string_view::npos || cr + 1 < line.size())) {
              ok = false;
              break;
            }
            if (crlf == std::string_view::npos) { ok = false; fail = Outcome::Incomplete; break; }
            p = crlf + 2;
            if (line.empty()) break;
            std::string_view n, v;
            if (line.front() == ' ' || line.front() == '\t' || !field_line(line, n, v)) { ok = false; break; }
          }
          more = false;
          break;
        }
        if (in.size() - p < size) { ok = false; fail = Outcome::Incomplete; break; }
        p += static_cast<size_t>(size);
        if (p == in.size() || (in[p] == '\r' && p + 1 == in.size())) { ok = false; fail = Outcome::Incomplete; break; }
        if (in[p] != '\r' || in[p + 1] != '\n') { ok = false; break; }
        p += 2;
      }
      if (!ok) {
        r.messages.push_back(std::move(m));
        return done(fail, "chunked body");
      }
    }
    m.complete = true;
    const bool ka = m.head.keep_alive;
    r.messages.push_back(std::move(m));
    if (!ka) return done(Outcome::Done, "closed");
  }
}

}  // namespace fp::fuzz::oracle
