// Fuzz target: fipsproxy's PEM wrapper (certs/pem.h) and the policy checks that run on what it
// loads. BoringSSL's own read_pem/cert/privkey fuzzers cover the library; this covers our
// wrapper, its error paths and the checks on arbitrary certificates and keys.
//
// The input is written to a memfd and loaded through /proc/self/fd/N, both as a certificate
// chain and as a private key. Invariants: a failure is "PATH: reason" naming that path; a
// success is non-empty; every derived string (subject, SHA-256 hex, key description, policy
// verdicts) is computed without crashing and the hash is 64 lower-case hex digits.

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "certs/pem.h"
#include "tests/fuzz/fuzz_common.h"

namespace {

int memfd() {
  static const int fd = [] {
    int f = ::memfd_create("fp-fuzz-pem", MFD_CLOEXEC);
    if (f < 0) std::abort();
    return f;
  }();
  return fd;
}

bool hex64(const std::string& s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 64 * 1024) return 0;
  const int fd = memfd();
  FUZZ_CHECK(::ftruncate(fd, 0) == 0, "ftruncate");
  FUZZ_CHECK(::fchmod(fd, 0600) == 0, "fchmod");  // a memfd is 0777: a key would be refused
  size_t off = 0;
  while (off < size) {
    const ssize_t w = ::pwrite(fd, data + off, size - off, static_cast<off_t>(off));
    FUZZ_CHECK(w > 0, "pwrite");
    off += static_cast<size_t>(w);
  }
  const std::string path = "/proc/self/fd/" + std::to_string(fd);
  using namespace fp::certs;

  auto certs = load_certs(path);
  if (!certs) {
    FUZZ_CHECK(certs.error().detail.rfind(path + ": ", 0) == 0, "error does not name the path: %s",
               certs.error().detail.c_str());
  } else {
    FUZZ_CHECK(!certs->empty(), "load_certs succeeded with no certificate");
    std::vector<X509*> chain;
    for (auto& c : *certs) {
      chain.push_back(c.get());
      (void)subject_string(c.get());
      FUZZ_CHECK(hex64(cert_sha256_hex(c.get())), "cert_sha256_hex is not 64 hex digits");
    }
    for (auto profile : {fp::config::Profile::Strict, fp::config::Profile::Tls12Only, fp::config::Profile::Extended}) {
      (void)chain_policy_violation(chain, profile);
      (void)own_chain_violation(chain, LeafUse::Server, profile);
      (void)own_chain_violation(chain, LeafUse::Client, profile);
    }
    (void)leaf_profile_violation(chain[0], LeafUse::Server, true);
    (void)leaf_profile_violation(chain[0], LeafUse::Client, false);
  }

  auto key = load_private_key(path);
  if (!key) {
    FUZZ_CHECK(key.error().detail.rfind(path + ": ", 0) == 0, "error does not name the path: %s",
               key.error().detail.c_str());
  } else {
    FUZZ_CHECK(key->get() != nullptr, "null key");
    FUZZ_CHECK(!describe_key(key->get()).empty(), "empty key description");
    for (auto profile : {fp::config::Profile::Strict, fp::config::Profile::Tls12Only, fp::config::Profile::Extended}) {
      (void)key_policy_violation(key->get(), profile);
    }
  }
  return 0;
}
