#pragma once
// `fipsproxy speed`: prints the FIPS module's raw limits on this core (certs/module_speed.h),
// after the FIPS startup checks pass.

#include <string>
#include <vector>

namespace fp::proxy {

int cmd_speed(const std::vector<std::string>& args);

}  // namespace fp::proxy
