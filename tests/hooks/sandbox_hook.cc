// Test-only build switch (issue #11): linked into `fipsproxy_testhooks` only, never into the
// shipped `fipsproxy`. With FIPSPROXY_TEST_FORBIDDEN_SYSCALL=control or =worker, the proxy makes
// one syscall that is not on the seccomp allow-list right after the filter is installed, on that
// thread: execve("/nonexistent/fipsproxy-seccomp-probe"). Without a filter it only fails with
// ENOENT (no side effect) and the hook says so on stderr; with seccomp = "kill" the kernel kills
// the whole process with SIGSYS before the call does anything.

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "proxy/sandbox.h"

namespace {

void forbidden_syscall(const char* thread) {
  const char* want = std::getenv("FIPSPROXY_TEST_FORBIDDEN_SYSCALL");
  if (want == nullptr || std::strcmp(want, thread) != 0) return;
  std::fprintf(stderr, "test hook: calling execve on the %s thread\n", thread);
  std::fflush(stderr);
  char* const argv[] = {const_cast<char*>("probe"), nullptr};
  const int rc = ::execve("/nonexistent/fipsproxy-seccomp-probe", argv, nullptr);
  const int e = errno;
  std::fprintf(stderr, "test hook: execve on the %s thread returned %d (%s)\n", thread, rc, std::strerror(e));
  std::fflush(stderr);
}

// Installed before main() runs.
const bool kInstalled = [] {
  fp::proxy::sandbox::g_test_after_sandbox = forbidden_syscall;
  return true;
}();

}  // namespace
