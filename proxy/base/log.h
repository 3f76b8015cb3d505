#pragma once
// One logger, to stderr (or a test sink): "ts=... level=... msg=... key=value ..." (logfmt).
// The level is checked before any formatting: FP_LOG(Level::Debug, ...) costs one load and
// one compare when debug is off.

#include <atomic>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <string>
#include <string_view>

namespace fp::base {

enum class Level : int { Trace = 0, Debug = 1, Info = 2, Warn = 3, Error = 4, Off = 5 };

std::string_view level_name(Level level) noexcept;
// Parses "trace|debug|info|warn|error|off"; false if unknown.
bool parse_level(std::string_view text, Level& out) noexcept;

// A key=value pair. Values are converted to text only when the line is written.
struct Field {
  Field(std::string_view k, std::string_view v) : key(k), value(v) {}
  Field(std::string_view k, const std::string& v) : key(k), value(v) {}
  Field(std::string_view k, const char* v) : key(k), value(v ? v : "") {}
  Field(std::string_view k, bool v) : key(k), value(v ? "true" : "false") {}
  template <class I, class = std::enable_if_t<std::is_integral_v<I> && !std::is_same_v<I, bool>>>
  Field(std::string_view k, I v) : key(k), value(std::to_string(v)) {}
  Field(std::string_view k, double v);

  std::string_view key;
  std::string value;
};

extern std::atomic<int> g_log_level;

inline bool log_enabled(Level level) noexcept {
  return static_cast<int>(level) >= g_log_level.load(std::memory_order_relaxed);
}
void set_log_level(Level level) noexcept;

// Formats one logfmt line (no trailing newline): values with spaces, quotes, '=' or control
// characters are quoted and escaped, so one event is always one line.
std::string format_line(Level level, std::string_view msg, std::initializer_list<Field> fields);
void log_write(Level level, std::string_view msg, std::initializer_list<Field> fields);

// Tests capture lines by installing a sink; nullptr restores stderr.
using LogSink = std::function<void(std::string_view line)>;
void set_log_sink(LogSink sink);

// Appends `value` to `out` as a logfmt value (quoted when needed).
void append_logfmt_value(std::string& out, std::string_view value);

}  // namespace fp::base

#define FP_LOG(level, msg, ...)                                      \
  do {                                                               \
    if (::fp::base::log_enabled(level)) {                            \
      ::fp::base::log_write(level, msg, {__VA_ARGS__});              \
    }                                                                \
  } while (0)
#define FP_LOG_TRACE(msg, ...) FP_LOG(::fp::base::Level::Trace, msg, __VA_ARGS__)
#define FP_LOG_DEBUG(msg, ...) FP_LOG(::fp::base::Level::Debug, msg, __VA_ARGS__)
#define FP_LOG_INFO(msg, ...) FP_LOG(::fp::base::Level::Info, msg, __VA_ARGS__)
#define FP_LOG_WARN(msg, ...) FP_LOG(::fp::base::Level::Warn, msg, __VA_ARGS__)
#define FP_LOG_ERROR(msg, ...) FP_LOG(::fp::base::Level::Error, msg, __VA_ARGS__)
