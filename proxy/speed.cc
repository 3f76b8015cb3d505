#include "proxy/speed.h"

#include <cstdio>
#include <cstdlib>

#include "certs/fips_self_check.h"
#include "certs/module_speed.h"
#include "proxy/cli.h"

namespace fp::proxy {

int cmd_speed(const std::vector<std::string>& args) {
  double seconds = 1.0;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--seconds" && i + 1 < args.size()) {
      char* end = nullptr;
      seconds = std::strtod(args[++i].c_str(), &end);
      if (end == nullptr || *end != '\0' || !(seconds > 0 && seconds <= 60)) {
        std::fprintf(stderr, "fipsproxy: speed: --seconds needs a number in (0, 60], got '%s'\n", args[i].c_str());
        return kExitUsage;
      }
    } else {
      std::fprintf(stderr, "fipsproxy: speed: unknown option '%s' (usage: fipsproxy speed [--seconds S])\n",
                   args[i].c_str());
      return kExitUsage;
    }
  }
  // The figures are the FIPS module's: measured only when its checks pass, as `run` requires.
  certs::FipsReport report = certs::run_fips_checks();
  if (!report.ok()) {
    std::fprintf(stderr, "fipsproxy: speed: the FIPS startup checks failed (see `fipsproxy fips-status`)\n");
    return kExitFips;
  }
  std::string error;
  const certs::SpeedResult r = certs::measure_speed(seconds, error);
  if (!error.empty()) {
    std::fprintf(stderr, "fipsproxy: speed: %s\n", error.c_str());
    return kExitRuntime;
  }
  std::printf("module=%s version=%lu seconds=%.2f aes_128_gcm_16k_mib_s=%.1f p256_sign_per_s=%.0f\n",
              report.module_name.c_str(), report.module_version, r.seconds, r.aes128gcm_16k_mib_s,
              r.p256_sign_per_s);
  return kExitOk;
}

}  // namespace fp::proxy
