#include "filters/http1/head.h"

namespace fp::filters::http1 {

namespace {
inline char lower(char c) noexcept { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }
}  // namespace

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

const std::string* Headers::get(std::string_view name) const noexcept {
  for (const auto& h : items_) {
    if (iequals(h.name, name)) return &h.value;
  }
  return nullptr;
}

size_t Headers::count(std::string_view name) const noexcept {
  size_t n = 0;
  for (const auto& h : items_) n += iequals(h.name, name) ? 1 : 0;
  return n;
}

void Headers::add(std::string name, std::string value) {
  items_.push_back(Header{std::move(name), std::move(value)});
}

void Headers::set(std::string_view name, std::string value) {
  size_t out = 0;
  bool placed = false;
  for (size_t i = 0; i < items_.size(); ++i) {
    if (iequals(items_[i].name, name)) {
      if (placed) continue;
      placed = true;
      items_[i].value = std::move(value);
    }
    if (out != i) items_[out] = std::move(items_[i]);
    ++out;
  }
  items_.resize(out);
  if (!placed) items_.push_back(Header{std::string(name), std::move(value)});
}

size_t Headers::remove(std::string_view name) {
  size_t out = 0;
  const size_t before = items_.size();
  for (size_t i = 0; i < items_.size(); ++i) {
    if (iequals(items_[i].name, name)) continue;
    if (out != i) items_[out] = std::move(items_[i]);
    ++out;
  }
  items_.resize(out);
  return before - out;
}

void Headers::append(std::string_view name, std::string_view value) {
  for (auto& h : items_) {
    if (iequals(h.name, name)) {
      if (h.value.empty()) {
        h.value.assign(value);
      } else {
        h.value += ", ";
        h.value += value;
      }
      return;
    }
  }
  items_.push_back(Header{std::string(name), std::string(value)});
}

std::string_view framing_name(Framing f) noexcept {
  switch (f) {
    case Framing::None: return "none";
    case Framing::ContentLength: return "content-length";
    case Framing::Chunked: return "chunked";
    case Framing::CloseDelimited: return "close-delimited";
  }
  return "none";
}

void RequestHead::reset() {
  // Every field back to its default (a new field needs no change here), the buffers kept.
  std::string m = std::move(method), t = std::move(target);
  Headers h = std::move(headers);
  m.clear();
  t.clear();
  h.clear();
  *this = RequestHead{};
  method = std::move(m);
  target = std::move(t);
  headers = std::move(h);
}

void ResponseHead::reset() {
  std::string r = std::move(reason);
  Headers h = std::move(headers);
  r.clear();
  h.clear();
  *this = ResponseHead{};
  reason = std::move(r);
  headers = std::move(h);
}

std::string RequestHead::path() const {
  if (target == "*") return "/";
  if (!absolute_form) return target;
  // http(s)://authority[/path][?query]
  size_t p = target.find("://");
  p = (p == std::string::npos) ? 0 : p + 3;
  size_t slash = target.find_first_of("/?", p);
  if (slash == std::string::npos) return "/";
  if (target[slash] == '?') return "/" + target.substr(slash);
  return target.substr(slash);
}

namespace {
void put_headers(std::string& out, const Headers& h) {
  for (const auto& f : h.items()) {
    out += f.name;
    out += ": ";
    out += f.value;
    out += "\r\n";
  }
  out += "\r\n";
}
}  // namespace

void RequestHead::serialize_to(std::string& out) const {
  out += method;
  out += ' ';
  out += target;
  out += version_minor == 0 ? " HTTP/1.0\r\n" : " HTTP/1.1\r\n";
  put_headers(out, headers);
}

std::string RequestHead::serialize() const {
  std::string out;
  serialize_to(out);
  return out;
}

void ResponseHead::serialize_to(std::string& out) const {
  out += version_minor == 0 ? "HTTP/1.0 " : "HTTP/1.1 ";
  char code[4] = {static_cast<char>('0' + (status / 100) % 10),
                  static_cast<char>('0' + (status / 10) % 10), static_cast<char>('0' + status % 10), 0};
  out += code;
  out += ' ';
  out += reason;
  out += "\r\n";
  put_headers(out, headers);
}

std::string ResponseHead::serialize() const {
  std::string out;
  serialize_to(out);
  return out;
}

}  // namespace fp::filters::http1
