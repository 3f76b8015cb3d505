#include "proxy/base/log.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>

namespace fp::base {

std::atomic<int> g_log_level{static_cast<int>(Level::Info)};

namespace {
std::mutex g_sink_mu;
LogSink g_sink;  // guarded by g_sink_mu
}  // namespace

Field::Field(std::string_view k, double v) : key(k) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.3f", v);
  value = buf;
}

std::string_view level_name(Level level) noexcept {
  switch (level) {
    case Level::Trace: return "trace";
    case Level::Debug: return "debug";
    case Level::Info: return "info";
    case Level::Warn: return "warn";
    case Level::Error: return "error";
    case Level::Off: return "off";
  }
  return "info";
}

bool parse_level(std::string_view text, Level& out) noexcept {
  for (int i = 0; i <= static_cast<int>(Level::Off); ++i) {
    if (level_name(static_cast<Level>(i)) == text) {
      out = static_cast<Level>(i);
      return true;
    }
  }
  return false;
}

void set_log_level(Level level) noexcept {
  g_log_level.store(static_cast<int>(level), std::memory_order_relaxed);
}

void append_logfmt_value(std::string& out, std::string_view value) {
  bool quote = value.empty();
  for (unsigned char c : value) {
    if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c >= 0x7f) {
      quote = true;
      break;
    }
  }
  if (!quote) {
    out += value;
    return;
  }
  out += '"';
  for (unsigned char c : value) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\x%02x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
}

std::string format_line(Level level, std::string_view msg, std::initializer_list<Field> fields) {
  using namespace std::chrono;
  const auto now = system_clock::now();
  const std::time_t secs = system_clock::to_time_t(now);
  const long ms = static_cast<long>(duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char ts[40];
  std::snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
  std::string line;
  line.reserve(128);
  line += "ts=";
  line += ts;
  line += " level=";
  line += level_name(level);
  line += " msg=";
  append_logfmt_value(line, msg);
  for (const Field& f : fields) {
    line += ' ';
    line += f.key;
    line += '=';
    append_logfmt_value(line, f.value);
  }
  return line;
}

void log_write(Level level, std::string_view msg, std::initializer_list<Field> fields) {
  std::string line = format_line(level, msg, fields);
  std::lock_guard<std::mutex> lock(g_sink_mu);
  if (g_sink) {
    g_sink(line);
    return;
  }
  line += '\n';
  // One write(2) per line so concurrent workers never interleave inside a line.
  ssize_t ignored = ::write(STDERR_FILENO, line.data(), line.size());
  (void)ignored;
}

void set_log_sink(LogSink sink) {
  std::lock_guard<std::mutex> lock(g_sink_mu);
  g_sink = std::move(sink);
}

}  // namespace fp::base
