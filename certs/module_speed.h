#pragma once
// The FIPS module's raw limits on the calling core (issue #10): AES-128-GCM sealing of 16 KiB
// records (the bulk path's cipher and record size) and ECDSA P-256 signing (the server's
// handshake signature), through the same library and FIPS mode `fipsproxy run` uses.
// `fipsproxy speed` prints them; bench/run.sh reads each figure as a share of them.

#include <string>

namespace fp::certs {

struct SpeedResult {
  double aes128gcm_16k_mib_s = 0;  // MiB of plaintext sealed per second
  double p256_sign_per_s = 0;      // ECDSA P-256 signatures per second
  double seconds = 0;              // measured per test
};

// Runs each test for `seconds` (wall clock) on the calling thread. Empty `error` on success.
SpeedResult measure_speed(double seconds, std::string& error);

}  // namespace fp::certs
