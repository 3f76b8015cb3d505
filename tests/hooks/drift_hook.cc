// Test-only build switch (issue #7): linked into `fipsproxy_testhooks` only, never into the
// shipped `fipsproxy`. While the file named by FIPSPROXY_TEST_DRIFT_FILE exists, the periodic
// policy self-probe reports drift, so a test can watch /ready turn 503 and back to 200.

#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>

#include "proxy/server.h"

namespace {

bool inject_drift(char* why, unsigned long why_len) {
  const char* path = std::getenv("FIPSPROXY_TEST_DRIFT_FILE");
  struct stat st;
  if (path == nullptr || ::stat(path, &st) != 0) return false;
  std::snprintf(why, why_len, "injected drift (test build): %s exists", path);
  return true;
}

// Installed before main() runs.
const bool kInstalled = [] {
  fp::proxy::g_test_inject_drift = inject_drift;
  return true;
}();

}  // namespace
