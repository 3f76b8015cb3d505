#include "certs/module_speed.h"

#include <openssl/aead.h>
#include <openssl/ec_key.h>
#include <openssl/ecdsa.h>
#include <openssl/nid.h>

#include <chrono>
#include <cstring>
#include <memory>

namespace fp::certs {

namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Seals 16 KiB records with one key, nonces counting up, until `seconds` have passed.
bool aes_gcm(double seconds, double& mib_s, std::string& error) {
  constexpr size_t kRecord = 16384;
  const EVP_AEAD* aead = EVP_aead_aes_128_gcm();
  uint8_t key[16];
  std::memset(key, 0x5a, sizeof key);
  bssl::ScopedEVP_AEAD_CTX ctx;
  if (!EVP_AEAD_CTX_init(ctx.get(), aead, key, sizeof key, EVP_AEAD_DEFAULT_TAG_LENGTH, nullptr)) {
    error = "EVP_AEAD_CTX_init(aes-128-gcm) failed";
    return false;
  }
  std::unique_ptr<uint8_t[]> in(new uint8_t[kRecord]);
  std::unique_ptr<uint8_t[]> out(new uint8_t[kRecord + EVP_AEAD_max_overhead(aead)]);
  std::memset(in.get(), 0xa5, kRecord);
  uint8_t nonce[12] = {0};
  uint64_t n = 0, bytes = 0;
  const double start = now_s();
  double elapsed = 0;
  do {
    for (int i = 0; i < 64; ++i) {
      std::memcpy(nonce + 4, &n, sizeof n);
      ++n;
      size_t out_len = 0;
      if (!EVP_AEAD_CTX_seal(ctx.get(), out.get(), &out_len, kRecord + EVP_AEAD_max_overhead(aead), nonce,
                             sizeof nonce, in.get(), kRecord, nullptr, 0)) {
        error = "EVP_AEAD_CTX_seal failed";
        return false;
      }
      bytes += kRecord;
    }
    elapsed = now_s() - start;
  } while (elapsed < seconds);
  mib_s = static_cast<double>(bytes) / (1024.0 * 1024.0) / elapsed;
  return true;
}

bool p256_sign(double seconds, double& per_s, std::string& error) {
  bssl::UniquePtr<EC_KEY> key(EC_KEY_new_by_curve_name(NID_X9_62_prime256v1));
  if (!key || !EC_KEY_generate_key(key.get())) {
    error = "P-256 key generation failed";
    return false;
  }
  uint8_t digest[32];
  std::memset(digest, 0x3c, sizeof digest);
  std::unique_ptr<uint8_t[]> sig(new uint8_t[ECDSA_size(key.get())]);
  uint64_t signs = 0;
  const double start = now_s();
  double elapsed = 0;
  do {
    for (int i = 0; i < 16; ++i) {
      unsigned sig_len = 0;
      if (!ECDSA_sign(0, digest, sizeof digest, sig.get(), &sig_len, key.get())) {
        error = "ECDSA_sign(P-256) failed";
        return false;
      }
      ++signs;
    }
    elapsed = now_s() - start;
  } while (elapsed < seconds);
  per_s = static_cast<double>(signs) / elapsed;
  return true;
}

}  // namespace

SpeedResult measure_speed(double seconds, std::string& error) {
  SpeedResult r;
  r.seconds = seconds;
  if (!aes_gcm(seconds, r.aes128gcm_16k_mib_s, error)) return r;
  p256_sign(seconds, r.p256_sign_per_s, error);
  return r;
}

}  // namespace fp::certs
