#include "proxy/cli.h"

#include <cstdio>

namespace fp::proxy {
int cli_main(int, char**) {
  std::fprintf(stderr, "fipsproxy: not yet implemented\n");
  return kExitUsage;
}
}  // namespace fp::proxy
