#pragma once
// FIPS-POLICY.md §10 checks 0-8: the module, its self-tests and hashes, the libraries actually
// loaded, and our libssl patch. `fipsproxy fips-status` prints the report; `run` refuses to start
// (exit 3) when any check fails.

#include <string>
#include <vector>

namespace fp::certs {

struct FipsCheck {
  std::string name;    // stable token, in order: "fips_mode", "module", "self_test", "integrity_test",
                       // "module_hash", "algorithms", "drbg", "libssl_patch"
  bool ok = false;
  std::string detail;  // what was found
};

struct FipsReport {
  std::vector<FipsCheck> checks;
  std::string module_name;          // FIPS_module_name()
  unsigned long module_version = 0; // FIPS_version()
  bool fips_mode = false;
  std::string module_hash_expected; // recorded at build time (BORINGSSL_bcm_text_hash)
  std::string module_hash_loaded;   // read from the loaded libcrypto
  std::string libcrypto_path, libcrypto_sha256;
  std::string libssl_path, libssl_sha256;
  std::string binary_path, binary_sha256;      // this fipsproxy executable (the *_sha256: hash_files)
  std::string kernel_fips;                     // /proc/sys/crypto/fips_enabled: "1", "0" or "unavailable"
  std::vector<std::string> crypto_libraries;   // TLS/crypto libraries mapped into the process
  std::string patch_marker;
  double self_test_ms = 0;

  bool ok() const;
  const FipsCheck* first_failure() const;
  // The honest one-line statement (never "validated").
  std::string statement() const;
  std::string to_text() const;
  std::string to_json() const;
};

// Runs every check; never throws, never aborts (check 0 aborts inside the library, before main).
FipsReport run_fips_checks();

// Fills libcrypto_sha256, libssl_sha256 and binary_sha256 (SHA-256 of the loaded libraries and
// of this executable, computed with the module), once each. Separate from the checks because it
// reads ~25 MB: `fips-status`, `version`, `cbom`, baseline comparisons and the admin /fips report
// call it; a plain start does not pay for it (the module-hash check itself stays at start-up).
void hash_files(FipsReport& report);

}  // namespace fp::certs
