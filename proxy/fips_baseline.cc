#include "proxy/fips_baseline.h"

#include <fstream>
#include <sstream>

#include "proxy/base/json.h"

namespace fp::proxy {

Result<std::vector<std::string>> fips_baseline_diff(const certs::FipsReport& r,
                                                    const std::string& path) {
  std::ifstream in(path);
  if (!in) return make_error(Code::ConfigInvalid, Side::Internal, path + ": cannot read baseline");
  std::stringstream ss;
  ss << in.rdbuf();
  auto base = base::parse_flat_json(ss.str());
  if (!base || !base->count("module_version") || !base->count("module_hash_loaded")) {
    return make_error(Code::ConfigInvalid, Side::Internal,
                      path + ": not a `fipsproxy fips-status --json` report");
  }
  const std::vector<std::pair<const char*, std::string>> running = {
      {"module_name", r.module_name},
      {"module_version", std::to_string(r.module_version)},
      {"fips_mode", r.fips_mode ? "true" : "false"},
      {"module_hash_loaded", r.module_hash_loaded},
      {"libcrypto_sha256", r.libcrypto_sha256},
      {"libssl_sha256", r.libssl_sha256},
      {"patch_marker", r.patch_marker},
      {"binary_sha256", r.binary_sha256},
  };
  std::vector<std::string> diff;
  for (const auto& [field, value] : running) {
    auto it = base->find(field);
    if (it == base->end()) {
      diff.push_back(std::string(field) + ": missing from baseline, running " + value);
    } else if (it->second != value) {
      diff.push_back(std::string(field) + ": baseline " + it->second + ", running " + value);
    }
  }
  return diff;
}

}  // namespace fp::proxy
