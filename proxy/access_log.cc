#include "proxy/access_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

namespace fp::proxy {

Result<std::unique_ptr<AccessLog>> AccessLog::open(const std::string& target) {
  std::unique_ptr<AccessLog> log(new AccessLog());
  if (target == "off") return log;
  if (target == "stderr") {
    log->fd_ = STDERR_FILENO;
    return log;
  }
  int fd = ::open(target.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (fd < 0) {
    return make_error(Code::ConfigInvalid, Side::Internal,
                      target + ": cannot open access log: " + std::strerror(errno));
  }
  log->fd_ = fd;
  log->owns_fd_ = true;
  return log;
}

AccessLog::~AccessLog() {
  if (owns_fd_ && fd_ >= 0) ::close(fd_);
}

void AccessLog::write_line(std::string line) {
  if (fd_ < 0) return;
  line += '\n';
  // O_APPEND + one write per line: atomic for lines under PIPE_BUF on pipes and in practice
  // for regular files; no lock needed.
  ssize_t ignored = ::write(fd_, line.data(), line.size());
  (void)ignored;
}

}  // namespace fp::proxy
