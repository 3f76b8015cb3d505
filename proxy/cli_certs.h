#pragma once
// `fipsproxy certs demo --out DIR [--force]` and `fipsproxy certs inspect [--profile P] FILE…`.

#include <string>
#include <vector>

namespace fp::proxy {

// args: everything after `certs`. Exit codes: demo 0 ok, 1 could not write, 2 usage (or a
// non-empty DIR without --force), 3 FIPS mode off; inspect 0 every certificate passes, 1 any
// violates, 2 usage or an unreadable file ("PATH: reason" on stderr).
int cmd_certs(const std::vector<std::string>& args);

}  // namespace fp::proxy
