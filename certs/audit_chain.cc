#include "certs/audit_chain.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <ctime>
#include <fstream>

#include "proxy/base/json.h"

namespace fp::certs {

const char kAuditGenesisPrev[] = "0000000000000000000000000000000000000000000000000000000000000000";

namespace {

constexpr size_t kHexLen = 64;
constexpr std::string_view kPrevKey = "\"prev\":\"";
constexpr size_t kFlushAt = 64 * 1024;

Error io_error(const std::string& what) {
  return make_error(Code::Io, Side::Internal, what + ": " + std::strerror(errno));
}

bool is_hex64(std::string_view s) {
  if (s.size() != kHexLen) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

std::string base_name(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

std::string genesis_record() {
  base::JsonObject o;
  o.str("type", "genesis").str("ts", audit_timestamp_now());
  const char* name = FIPS_module_name();
  o.str("module", name ? name : "").unum("module_version", FIPS_version());
  return o.done();
}

// Reads the last line of an open file (without its newline). Sets `ends_with_newline`.
// Returns false on a read error.
bool read_last_line(int fd, uint64_t size, std::string& line, bool& ends_with_newline) {
  line.clear();
  ends_with_newline = true;
  if (size == 0) return true;
  std::string tail;
  uint64_t end = size;
  bool checked_last = false;
  constexpr uint64_t kChunk = 64 * 1024;
  while (end > 0) {
    uint64_t start = end > kChunk ? end - kChunk : 0;
    std::string chunk(end - start, '\0');
    ssize_t n = ::pread(fd, chunk.data(), chunk.size(), static_cast<off_t>(start));
    if (n != static_cast<ssize_t>(chunk.size())) return false;
    tail.insert(0, chunk);
    end = start;
    if (!checked_last) {
      ends_with_newline = tail.back() == '\n';
      checked_last = true;
    }
    size_t body_end = ends_with_newline ? tail.size() - 1 : tail.size();
    size_t nl = body_end == 0 ? std::string::npos : tail.rfind('\n', body_end - 1);
    if (nl != std::string::npos) {
      line = tail.substr(nl + 1, body_end - nl - 1);
      return true;
    }
    if (end == 0) {
      line = tail.substr(0, body_end);
      return true;
    }
  }
  return true;
}

uint64_t count_lines(int fd, uint64_t size) {
  uint64_t lines = 0;
  std::string chunk(64 * 1024, '\0');
  for (uint64_t off = 0; off < size;) {
    ssize_t n = ::pread(fd, chunk.data(), chunk.size(), static_cast<off_t>(off));
    if (n <= 0) break;
    lines += static_cast<uint64_t>(std::count(chunk.data(), chunk.data() + n, '\n'));
    off += static_cast<uint64_t>(n);
  }
  return lines;
}

}  // namespace

std::string sha256_hex(std::string_view data) {
  uint8_t md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const uint8_t*>(data.data()), data.size(), md);
  static const char kDigits[] = "0123456789abcdef";
  std::string out(2 * SHA256_DIGEST_LENGTH, '0');
  for (size_t i = 0; i < SHA256_DIGEST_LENGTH; ++i) {
    out[2 * i] = kDigits[md[i] >> 4];
    out[2 * i + 1] = kDigits[md[i] & 0xf];
  }
  return out;
}

std::string audit_timestamp_now() {
  auto now = std::chrono::system_clock::now();
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  time_t secs = static_cast<time_t>(ms / 1000);
  struct tm tm_utc {};
  gmtime_r(&secs, &tm_utc);
  char buf[40];
  size_t n = std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm_utc);
  std::snprintf(buf + n, sizeof(buf) - n, ".%03dZ", static_cast<int>(ms % 1000));
  return buf;
}

std::string audit_chain_line(std::string_view record, std::string_view prev_hex) {
  std::string line;
  line.reserve(record.size() + kPrevKey.size() + kHexLen + 4);
  // Drop the closing brace (and any whitespace before it), then add the last field.
  size_t end = record.size();
  while (end > 0 && (record[end - 1] == ' ' || record[end - 1] == '\t' || record[end - 1] == '\r')) --end;
  if (end > 0 && record[end - 1] == '}') --end;
  line.append(record.substr(0, end));
  bool empty_object = true;
  for (size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (c == '{' || c == ' ' || c == '\t') continue;
    empty_object = false;
    break;
  }
  if (line.empty()) line = "{";
  if (!empty_object) line += ',';
  line.append(kPrevKey);
  line.append(prev_hex);
  line.append("\"}");
  return line;
}

namespace {

void append_key_fields(base::JsonObject& o, const std::string& key_type) {
  // "EC P-256" → EC, 256; "RSA 2048" → RSA, 2048; "Ed25519" → Ed25519.
  size_t sp = key_type.find(' ');
  std::string type = key_type.substr(0, sp);
  o.str("key_type", type);
  if (sp == std::string::npos) return;
  std::string_view rest(key_type);
  rest.remove_prefix(sp + 1);
  if (rest.size() > 2 && rest[0] == 'P' && rest[1] == '-') rest.remove_prefix(2);
  unsigned bits = 0;
  auto [ptr, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), bits);
  if (ec == std::errc() && ptr == rest.data() + rest.size()) o.unum("key_bits", bits);
  o.str("key", key_type);
}

}  // namespace

std::string audit_record(const AuditEvent& e) {
  base::JsonObject o;
  o.str("type", "handshake");
  o.str("ts", e.ts.empty() ? audit_timestamp_now() : e.ts);
  o.str("role", e.role);
  o.str(e.role == "client" ? "cluster" : "listener", e.listener);
  o.str("peer_addr", e.peer_address);
  o.str("sni", e.sni);
  o.str("offered", e.offered);
  o.str("version", e.version);
  o.str("cipher", e.cipher);
  o.str("group", e.group);
  o.str("sigalg", e.sigalg);
  o.boolean("resumed", e.resumed);
  base::JsonObject p;
  p.boolean("present", e.peer.present);
  if (e.peer.present) {
    p.str("spiffe", e.peer.spiffe_id);
    p.str_array("dns", e.peer.dns);
    p.str("sha256", e.peer.sha256);
    append_key_fields(p, e.peer.key_type);
    p.str("subject", e.peer.subject);
  }
  o.raw("peer", p.done());
  o.str("verdict", e.verdict);
  o.str("reason", e.reason);
  o.str("detail", e.detail);
  return o.done();
}

// ---- AuditChain -----------------------------------------------------------------------------

Result<std::unique_ptr<AuditChain>> AuditChain::open(const std::string& path, uint64_t max_bytes,
                                                     unsigned keep) {
  if (path.empty()) return make_error(Code::ConfigInvalid, Side::Internal, "audit log path is empty");
  std::unique_ptr<AuditChain> c(new AuditChain());
  c->path_ = path;
  c->max_bytes_ = max_bytes;
  c->keep_ = keep == 0 ? 1 : keep;
  if (auto r = c->open_live(); !r) return std::move(r).error();
  return c;
}

AuditChain::~AuditChain() {
  (void)flush();
  if (fd_ >= 0) ::close(fd_);
}

Result<void> AuditChain::open_live() {
  int fd = ::open(path_.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (fd < 0) return io_error(path_ + ": cannot open audit log");
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    Error e = io_error(path_ + ": cannot stat audit log");
    ::close(fd);
    return e;
  }
  fd_ = fd;
  file_bytes_ = static_cast<uint64_t>(st.st_size);
  file_records_ = 0;
  if (file_bytes_ == 0) {
    if (!head_.empty()) return {};  // rotate() writes the rotate record
    // A crash between rotate()'s rename and its first line leaves path.1 with the chain's
    // last line: continue from there with a rotate record.
    if (keep_ > 1) {
      std::string older = path_ + ".1";
      int ofd = ::open(older.c_str(), O_RDONLY | O_CLOEXEC);
      if (ofd >= 0) {
        struct stat ost {};
        std::string last;
        bool newline = true;
        bool ok = ::fstat(ofd, &ost) == 0 && ost.st_size > 0 &&
                  read_last_line(ofd, static_cast<uint64_t>(ost.st_size), last, newline) && newline;
        uint64_t older_records = ok ? count_lines(ofd, static_cast<uint64_t>(ost.st_size)) : 0;
        ::close(ofd);
        if (ok) {
          head_ = sha256_hex(last);
          base::JsonObject o;
          o.str("type", "rotate").str("ts", audit_timestamp_now());
          o.str("previous_file", base_name(older)).unum("previous_records", older_records);
          add_line(o.done());
          return {};
        }
      }
    }
    // A new chain.
    head_ = kAuditGenesisPrev;
    add_line(genesis_record());
    return {};
  }
  // An existing file: continue its chain from its last line.
  std::string last;
  bool newline = true;
  if (!read_last_line(fd_, file_bytes_, last, newline)) return io_error(path_ + ": cannot read audit log");
  if (!newline) {
    // A line cut short (crash mid-write): terminate it so the next record starts on its own
    // line. verify reports the cut line; the chain continues from its bytes.
    buf_ += '\n';
    file_bytes_ += 1;
  }
  file_records_ = count_lines(fd_, static_cast<uint64_t>(st.st_size)) + (newline ? 0 : 1);
  head_ = sha256_hex(last);
  return {};
}

void AuditChain::add_line(std::string_view record) {
  std::string line = audit_chain_line(record, head_);
  head_ = sha256_hex(line);
  buf_ += line;
  buf_ += '\n';
  file_bytes_ += line.size() + 1;
  ++file_records_;
  ++appended_;
}

Result<void> AuditChain::append(std::string_view record) {
  std::string_view body = record;
  while (!body.empty() && (body.back() == '\n' || body.back() == '\r')) body.remove_suffix(1);
  uint64_t line_bytes = body.size() + kPrevKey.size() + kHexLen + 3;
  if (max_bytes_ > 0 && file_records_ > 1 && file_bytes_ + line_bytes > max_bytes_) {
    if (auto r = rotate(); !r) {
      // Keep the record: append to the current file, rotation is retried next time.
      add_line(body);
      return r;
    }
  }
  add_line(body);
  if (buf_.size() >= kFlushAt) return flush();
  return {};
}

Result<void> AuditChain::flush() {
  size_t off = 0;
  while (off < buf_.size()) {
    if (fd_ < 0) return make_error(Code::Io, Side::Internal, path_ + ": audit log is not open");
    ssize_t n = ::write(fd_, buf_.data() + off, buf_.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      Error e = io_error(path_ + ": cannot write audit log");
      buf_.erase(0, off);
      return e;
    }
    off += static_cast<size_t>(n);
  }
  buf_.clear();
  return {};
}

Result<void> AuditChain::sync() {
  if (auto r = flush(); !r) return r;
  if (fd_ >= 0 && ::fdatasync(fd_) != 0) return io_error(path_ + ": cannot sync audit log");
  return {};
}

Result<void> AuditChain::rotate() {
  if (auto r = sync(); !r) return r;
  uint64_t previous_records = file_records_;
  // Shift path.(keep-2) → path.(keep-1), …, path → path.1; the oldest falls off.
  if (keep_ <= 1) {
    if (::unlink(path_.c_str()) != 0 && errno != ENOENT) return io_error(path_ + ": cannot remove audit log");
  } else {
    for (unsigned i = keep_ - 1; i >= 1; --i) {
      std::string from = i == 1 ? path_ : path_ + "." + std::to_string(i - 1);
      std::string to = path_ + "." + std::to_string(i);
      if (::rename(from.c_str(), to.c_str()) != 0 && errno != ENOENT) {
        return io_error(from + ": cannot rotate audit log to " + to);
      }
    }
  }
  ::close(fd_);
  fd_ = -1;
  if (auto r = open_live(); !r) return r;
  ++rotations_;
  base::JsonObject o;
  o.str("type", "rotate").str("ts", audit_timestamp_now());
  o.str("previous_file", keep_ > 1 ? base_name(path_) + ".1" : "");
  o.unum("previous_records", previous_records);
  add_line(o.done());
  return {};
}

// ---- verification ---------------------------------------------------------------------------

namespace {

// N for "BASE.N", 0 for "BASE", -1 otherwise.
long rotation_index(const std::string& path, const std::string& base) {
  if (path == base) return 0;
  if (path.size() <= base.size() + 1 || path.compare(0, base.size(), base) != 0 || path[base.size()] != '.') {
    return -1;
  }
  long n = 0;
  const char* b = path.data() + base.size() + 1;
  const char* e = path.data() + path.size();
  auto [ptr, ec] = std::from_chars(b, e, n);
  if (ec != std::errc() || ptr != e || n <= 0) return -1;
  return n;
}

std::vector<std::string> chain_order(const std::vector<std::string>& paths) {
  if (paths.size() < 2) return paths;
  // The shortest path is the candidate base.
  std::string base = *std::min_element(paths.begin(), paths.end(),
                                       [](const std::string& a, const std::string& b) { return a.size() < b.size(); });
  std::vector<std::pair<long, std::string>> idx;
  for (const auto& p : paths) {
    long n = rotation_index(p, base);
    if (n < 0) return paths;
    idx.emplace_back(n, p);
  }
  std::sort(idx.begin(), idx.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  std::vector<std::string> out;
  for (auto& [n, p] : idx) out.push_back(std::move(p));
  return out;
}

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

// The `prev` value of a chained line, or "" when the line does not end with a well-formed
// ,"prev":"<64 hex>"} field.
std::string_view prev_of(std::string_view line) {
  size_t need = kPrevKey.size() + kHexLen + 2;  // "prev":"…"}
  if (line.size() < need + 1 || line.front() != '{' || line.substr(line.size() - 2) != "\"}") return {};
  size_t key_at = line.size() - need;
  if (line.substr(key_at, kPrevKey.size()) != kPrevKey) return {};
  char before = line[key_at - 1];
  if (before != ',' && before != '{') return {};
  std::string_view hex = line.substr(key_at + kPrevKey.size(), kHexLen);
  return is_hex64(hex) ? hex : std::string_view{};
}

}  // namespace

AuditVerifyResult verify_audit_files(const std::vector<std::string>& paths) {
  AuditVerifyResult r;
  auto fail = [&r](const std::string& file, size_t line, const std::string& reason) {
    r.ok = false;
    r.file = file;
    r.line = line;
    r.first_break = file + ":" + std::to_string(line) + ": " + reason;
    return r;
  };
  if (paths.empty()) return fail("", 0, "no audit files given");
  std::vector<std::string> files = chain_order(paths);
  std::string expected;       // hash of the previous line; "" before the first line
  std::string previous_file;
  for (size_t fi = 0; fi < files.size(); ++fi) {
    const std::string& file = files[fi];
    std::ifstream in(file, std::ios::binary);
    if (!in) return fail(file, 0, std::string("cannot open: ") + std::strerror(errno));
    std::string line;
    size_t lineno = 0;
    while (std::getline(in, line)) {
      ++lineno;
      bool cut = in.eof();  // no newline after this line
      if (cut) {
        return fail(file, lineno, "truncated line (no newline at end of file)");
      }
      std::string_view prev = prev_of(line);
      if (prev.empty()) {
        return fail(file, lineno, line.empty() ? "empty line" : "malformed record (no trailing \"prev\" field)");
      }
      bool genesis = starts_with(line, "{\"type\":\"genesis\"");
      bool rotate = starts_with(line, "{\"type\":\"rotate\"");
      if (lineno == 1 && fi == 0) {
        if (genesis) {
          if (prev != kAuditGenesisPrev) return fail(file, lineno, "genesis record with a non-zero prev");
          r.anchored_at_genesis = true;
        } else if (!rotate) {
          return fail(file, lineno, "missing genesis record (first line is neither genesis nor rotate)");
        }
        // A rotate record here anchors the chain: the older files were rotated away.
      } else if (lineno == 1) {
        if (!rotate) {
          return fail(file, lineno, "first line is not a rotate record (files out of order, or " +
                                        previous_file + " continues elsewhere)");
        }
        if (prev != expected) {
          return fail(file, lineno, "rotate record's prev does not match the last line of " + previous_file +
                                        " (files out of order, or lines removed at its end)");
        }
      } else {
        if (genesis) return fail(file, lineno, "genesis record inside the chain");
        if (prev != expected) {
          return fail(file, lineno, "prev does not match the SHA-256 of line " + std::to_string(lineno - 1) +
                                        " (a record was edited, deleted, inserted or reordered)");
        }
      }
      expected = sha256_hex(line);
      ++r.records;
    }
    if (in.bad()) return fail(file, lineno, std::string("read error: ") + std::strerror(errno));
    if (lineno == 0) return fail(file, 1, "empty file (no genesis or rotate record)");
    previous_file = file;
  }
  r.ok = true;
  r.head = expected;
  return r;
}

}  // namespace fp::certs
