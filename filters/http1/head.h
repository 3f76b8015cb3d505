#pragma once
// HTTP/1 message heads as the HTTP/1 filter chain sees them (STYLE.md 5.2): a small ordered
// vector of (name, value) with case-insensitive lookup. Names keep the case the peer sent and
// the order is preserved, so a head that no filter touched serializes to what was received
// (modulo OWS around values, which the parser trims).

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace fp::filters::http1 {

bool iequals(std::string_view a, std::string_view b) noexcept;

struct Header {
  std::string name;
  std::string value;
};

class Headers {
 public:
  // First value of `name`, or nullptr. O(number of headers).
  const std::string* get(std::string_view name) const noexcept;
  size_t count(std::string_view name) const noexcept;
  bool has(std::string_view name) const noexcept { return get(name) != nullptr; }
  // Appends a new field line (never merges with an existing one).
  void add(std::string name, std::string value);
  // Removes every `name` and adds one `name: value` where the first one was (or at the end).
  void set(std::string_view name, std::string value);
  // Removes every `name`; returns how many were removed.
  size_t remove(std::string_view name);
  // Appends `value` to the first `name` as ", value", or adds the header if absent.
  void append(std::string_view name, std::string_view value);

  const std::vector<Header>& items() const noexcept { return items_; }
  size_t size() const noexcept { return items_.size(); }
  bool empty() const noexcept { return items_.empty(); }
  void clear() noexcept { items_.clear(); }
  void reserve(size_t n) { items_.reserve(n); }

 private:
  std::vector<Header> items_;
};

// How a message body is delimited (RFC 9112 §6.3).
enum class Framing {
  None,            // no body (no CL/TE on a request; HEAD/1xx/204/304 responses)
  ContentLength,   // exactly content_length bytes (0 is possible)
  Chunked,         // Transfer-Encoding: chunked
  CloseDelimited,  // responses only: the body runs to the upstream's EOF
};
std::string_view framing_name(Framing f) noexcept;

struct RequestHead {
  std::string method;  // as sent (case-sensitive token)
  std::string target;  // request-target as sent (origin-form, absolute-form or "*")
  int version_minor = 1;  // HTTP/1.<minor>: 0 or 1
  Headers headers;
  // Facts the strictness layer derived; filters read them and must not contradict them.
  Framing framing = Framing::None;
  uint64_t content_length = 0;  // Framing::ContentLength only
  bool keep_alive = true;       // the client may send another request on this connection
  bool absolute_form = false;   // target is http(s)://authority/...
  std::string path() const;     // the path+query of the target ("/" for "*" or an empty path)

  // "METHOD target HTTP/1.x\r\n" + "name: value\r\n"... + "\r\n".
  std::string serialize() const;
  void serialize_to(std::string& out) const;
  // Back to a default-constructed head, keeping the buffers (the next head reuses them).
  void reset();
};

struct ResponseHead {
  int status = 0;
  std::string reason;
  int version_minor = 1;
  Headers headers;
  Framing framing = Framing::None;
  uint64_t content_length = 0;
  bool keep_alive = true;      // the upstream connection may be reused after this response
  bool informational = false;  // 1xx (not 101): the final response still follows

  std::string serialize() const;
  void serialize_to(std::string& out) const;
  // Back to a default-constructed head, keeping the buffers (the next head reuses them).
  void reset();
};

}  // namespace fp::filters::http1
