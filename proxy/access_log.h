#pragma once
// The access log: one JSON line per downstream connection, written when it closes. A separate
// sink from the process log (STYLE.md 5.5). Lines are written with one write(2) each so
// workers never interleave inside a line.

#include <memory>
#include <mutex>
#include <string>

#include "proxy/base/result.h"

namespace fp::proxy {

class AccessLog {
 public:
  // "stderr", "off", or a file path (opened for append, 0640).
  static Result<std::unique_ptr<AccessLog>> open(const std::string& target);
  ~AccessLog();
  bool enabled() const { return fd_ >= 0; }
  void write_line(std::string line);

 private:
  AccessLog() = default;
  int fd_ = -1;
  bool owns_fd_ = false;
};

}  // namespace fp::proxy
