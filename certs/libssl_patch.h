#pragma once
// Entry points added by our libssl patch (deploy/boringssl/fipsproxy-libssl.patch). BoringSSL's
// public headers are untouched; the patch exports these with C linkage.

#include <openssl/ssl.h>

#include <cstdint>

extern "C" {
const char* FIPSPROXY_libssl_patch_marker(void);
int FIPSPROXY_SSL_CTX_set_policy(SSL_CTX* ctx, uint32_t bits);
uint32_t FIPSPROXY_SSL_CTX_get_policy(const SSL_CTX* ctx);
int FIPSPROXY_SSL_get_refusal(const SSL* ssl);
}

namespace fp::certs {
inline constexpr uint32_t kPolicyTls13AesGcmOnly = 0x1;  // server never picks, client never offers ChaCha20
inline constexpr uint32_t kPolicyRequireEms = 0x2;       // TLS 1.2 without EMS: handshake_failure
inline constexpr int kRefusalTls13ChachaOfferedOnly = 1;
inline constexpr int kRefusalTls13ChachaSelected = 2;
inline constexpr int kRefusalNoEms = 3;

// The patch's entry points, resolved with dlsym at first use instead of being linked: an
// unpatched libssl (LD_LIBRARY_PATH, a distro upgrade) must make `fips-status` refuse with a
// clear sentence (FIPS-POLICY §10 check 8), not make the dynamic loader fail before main.
// Call these, never the FIPSPROXY_* symbols above directly.
//
// patch_marker(): the marker string, or nullptr when the patch is absent.
const char* patch_marker();
// patch_set_policy(): 1 on success; 0 when the bits are rejected or the patch is absent.
int patch_set_policy(SSL_CTX* ctx, uint32_t bits);
// patch_get_policy(): the bits in force, 0 when the patch is absent.
uint32_t patch_get_policy(const SSL_CTX* ctx);
// patch_get_refusal(): a kRefusal* value, 0 when none or the patch is absent.
int patch_get_refusal(const SSL* ssl);
}  // namespace fp::certs
