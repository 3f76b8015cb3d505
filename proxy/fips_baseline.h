#pragma once
// Compliance drift: compare the running process with a baseline an assessor approved
// (`fipsproxy fips-status --json > baseline.json`). Used by `fips-status --diff FILE` and by
// `[fips] baseline = "FILE"` at startup.

#include <string>
#include <vector>

#include "certs/fips_self_check.h"
#include "proxy/base/result.h"

namespace fp::proxy {

// Field-by-field differences ("module_hash_loaded: baseline X, running Y"), empty when none.
// Errors: the file cannot be read or is not a fips-status --json report.
Result<std::vector<std::string>> fips_baseline_diff(const certs::FipsReport& running,
                                                    const std::string& baseline_path);

}  // namespace fp::proxy
