#pragma once
// `fipsproxy speed`: the raw limits of the FIPS module this binary runs, on the calling core, so
// that bench/ can read each figure as a share of the physical limit (issue #10): AES-128-GCM
// sealing of 16 KiB records (the bulk path's cipher and record size) and ECDSA P-256 signing
// (the server's handshake signature). Same library, same FIPS mode as `fipsproxy run`.

#include <string>
#include <vector>

namespace fp::proxy {

struct SpeedResult {
  double aes128gcm_16k_mib_s = 0;  // MiB of plaintext sealed per second
  double p256_sign_per_s = 0;      // ECDSA P-256 signatures per second
  double seconds = 0;              // measured per test
};

// Runs each test for `seconds` (wall clock) on the calling thread. Empty `error` on success.
SpeedResult measure_speed(double seconds, std::string& error);

int cmd_speed(const std::vector<std::string>& args);

}  // namespace fp::proxy
