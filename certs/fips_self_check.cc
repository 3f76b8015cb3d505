#include "certs/fips_self_check.h"

#include <dlfcn.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string_view>

#include "build_info.h"
#include "proxy/base/json.h"
#include "certs/elf_symtab.h"
#include "certs/libssl_patch.h"

namespace fp::certs {
namespace {

// Symbols a non-FIPS libcrypto lacks (integrity test), or an older/newer one may lack, are
// resolved at run time: the check must report them missing, never fail to link or load.
void* sym(const char* name) { return dlsym(RTLD_DEFAULT, name); }

std::string hex(const unsigned char* p, size_t n) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(n * 2);
  for (size_t i = 0; i < n; ++i) {
    out += kDigits[p[i] >> 4];
    out += kDigits[p[i] & 0xf];
  }
  return out;
}

std::string sha256_hex(elf::Image data) {
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(data.data(), data.size(), md);  // the module's own SHA-256
  return hex(md, sizeof md);
}

// SHA-256 of a file, mapped (no copy); empty when it cannot be read.
std::string sha256_of_file(const std::string& path) {
  if (path.empty()) return {};
  elf::MappedFile f(path);
  return f.ok() ? sha256_hex(f) : std::string();
}

std::string path_of(const void* addr) {
  Dl_info info;
  if (dladdr(addr, &info) == 0 || info.dli_fname == nullptr) return {};
  return info.dli_fname;
}

// JSON strings through the one escaper the project has (proxy/base/json.h).
void json_escape(std::string& out, std::string_view s) { base::append_json_string(out, s); }

void add(FipsReport& r, const char* name, bool ok, std::string detail) {
  r.checks.push_back(FipsCheck{name, ok, std::move(detail)});
}

}  // namespace

bool FipsReport::ok() const { return !checks.empty() && first_failure() == nullptr; }

const FipsCheck* FipsReport::first_failure() const {
  for (const FipsCheck& c : checks) {
    if (!c.ok) return &c;
  }
  return nullptr;
}

std::string FipsReport::statement() const {
  if (ok()) {
    return "BoringCrypto FIPS build, module version " + std::to_string(module_version) +
           ", FIPS mode on, self-tests passed; not a CMVP-validated binary unless built per the "
           "module's security policy";
  }
  const FipsCheck* f = first_failure();
  if (f == nullptr) return "FIPS checks did not run; refusing to operate";
  return "FIPS check failed: " + f->name + ": " + f->detail + "; refusing to operate";
}

std::string FipsReport::to_text() const {
  std::string out;
  char buf[64];
  out += "module:            " + (module_name.empty() ? std::string("(unknown)") : module_name) + "\n";
  out += "module version:    " + std::to_string(module_version) + "\n";
  out += std::string("fips mode:         ") + (fips_mode ? "on" : "off") + "\n";
  out += "module hash:       " + module_hash_loaded + "\n";
  out += "expected hash:     " + module_hash_expected + "\n";
  out += "libcrypto:         " + libcrypto_path + "\n";
  out += "libcrypto sha256:  " + libcrypto_sha256 + "\n";
  out += "libssl:            " + libssl_path + "\n";
  out += "libssl sha256:     " + libssl_sha256 + "\n";
  out += "libssl patch:      " + (patch_marker.empty() ? std::string("(missing)") : patch_marker) + "\n";
  out += "fipsproxy binary:  " + binary_path + "\n";
  out += "binary sha256:     " + binary_sha256 + "\n";
  out += "kernel fips mode:  " + kernel_fips + " (/proc/sys/crypto/fips_enabled)\n";
  std::snprintf(buf, sizeof buf, "%.2f", self_test_ms);
  out += std::string("self-test time:    ") + buf + " ms\n";
  out += "checks:\n";
  for (const FipsCheck& c : checks) {
    out += std::string("  [") + (c.ok ? "ok" : "FAIL") + "] " + c.name + ": " + c.detail + "\n";
  }
  out += statement() + "\n";
  return out;
}

std::string FipsReport::to_json() const {
  std::string out = "{";
  auto field = [&](const char* key, std::string_view value) {
    if (out.size() > 1) out += ',';
    json_escape(out, key);
    out += ':';
    json_escape(out, value);
  };
  auto raw = [&](const char* key, const std::string& value) {
    if (out.size() > 1) out += ',';
    json_escape(out, key);
    out += ':';
    out += value;
  };
  raw("ok", ok() ? "true" : "false");
  field("module_name", module_name);
  raw("module_version", std::to_string(module_version));
  raw("fips_mode", fips_mode ? "true" : "false");
  field("module_hash_expected", module_hash_expected);
  field("module_hash_loaded", module_hash_loaded);
  field("libcrypto_path", libcrypto_path);
  field("libcrypto_sha256", libcrypto_sha256);
  field("libssl_path", libssl_path);
  field("libssl_sha256", libssl_sha256);
  field("patch_marker", patch_marker);
  field("binary_path", binary_path);
  field("binary_sha256", binary_sha256);
  field("kernel_fips", kernel_fips);
  {
    std::string libs = "[";
    for (size_t i = 0; i < crypto_libraries.size(); ++i) {
      if (i) libs += ',';
      json_escape(libs, crypto_libraries[i]);
    }
    raw("crypto_libraries", libs + "]");
  }
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.3f", self_test_ms);
  raw("self_test_ms", buf);
  field("statement", statement());
  out += ",\"checks\":[";
  for (size_t i = 0; i < checks.size(); ++i) {
    if (i) out += ',';
    out += "{\"name\":";
    json_escape(out, checks[i].name);
    out += ",\"ok\":";
    out += checks[i].ok ? "true" : "false";
    out += ",\"detail\":";
    json_escape(out, checks[i].detail);
    out += '}';
  }
  out += "]}";
  return out;
}

FipsReport run_fips_checks() {
  FipsReport r;
  r.module_hash_expected = build::kModuleHash;

  // 1. FIPS mode: compiled in (no runtime switch at this revision, FIPS-POLICY §4.3).
  r.fips_mode = FIPS_mode() == 1;
  add(r, "fips_mode", r.fips_mode, r.fips_mode ? "FIPS_mode() = 1" : "BoringSSL not in FIPS mode");

  // 2. Which module: name and version pinned at build time.
  {
    using NameFn = const char* (*)();
    using VersionFn = uint32_t (*)();
    auto name_fn = reinterpret_cast<NameFn>(sym("FIPS_module_name"));
    auto version_fn = reinterpret_cast<VersionFn>(sym("FIPS_version"));
    const char* name = name_fn ? name_fn() : nullptr;
    r.module_name = name ? name : "";
    r.module_version = version_fn ? version_fn() : 0;
    const bool ok = r.module_name == "BoringCrypto" && r.module_version == build::kExpectedModuleVersion;
    add(r, "module", ok,
        ok ? r.module_name + " " + std::to_string(r.module_version)
           : "unexpected module: name \"" + r.module_name + "\" version " + std::to_string(r.module_version) +
                 ", expected BoringCrypto " + std::to_string(build::kExpectedModuleVersion));
  }

  // 3. All KATs, including the lazy ones (RSA, ECDSA, ECDH, FFDH); returns, never aborts.
  {
    const auto t0 = std::chrono::steady_clock::now();
    const bool ok = BORINGSSL_self_test() == 1;
    r.self_test_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    char buf[96];
    std::snprintf(buf, sizeof buf, "%s in %.2f ms", ok ? "passed" : "FAILED", r.self_test_ms);
    add(r, "self_test", ok, buf);
  }

  // 4. Integrity HMAC again. Only FIPS builds export it; a non-FIPS libcrypto must be refused.
  {
    using Fn = int (*)();
    auto fn = reinterpret_cast<Fn>(sym("BORINGSSL_integrity_test"));
    if (fn == nullptr) {
      add(r, "integrity_test", false, "BORINGSSL_integrity_test not present: not a FIPS build of libcrypto");
    } else {
      const bool ok = fn() == 1;
      add(r, "integrity_test", ok, ok ? "passed" : "integrity test failed");
    }
  }

  // 5. The module hash inside the libcrypto actually loaded (read from the mapped file: only the
  //    ELF headers, the symbol table and 32 bytes are touched). SHA-256 of the whole files is
  //    left to hash_files(), off the start-up path.
  {
    r.libcrypto_path = path_of(reinterpret_cast<const void*>(&FIPS_mode));
    r.libssl_path = path_of(reinterpret_cast<const void*>(&SSL_new));
    std::string problem;
    elf::MappedFile crypto_img(r.libcrypto_path);
    if (r.libcrypto_path.empty() || !crypto_img.ok()) {
      problem = "cannot read loaded libcrypto \"" + r.libcrypto_path + "\"";
    } else {
      auto bytes = elf::symbol_bytes(crypto_img, "BORINGSSL_bcm_text_hash", 32);
      if (bytes.size() == 32) {
        r.module_hash_loaded = hex(bytes.data(), bytes.size());
      } else {
        problem = "BORINGSSL_bcm_text_hash not found in " + r.libcrypto_path + " (not a FIPS build)";
      }
    }
    if (problem.empty() && (r.libssl_path.empty() || ::access(r.libssl_path.c_str(), R_OK) != 0)) {
      problem = "cannot read loaded libssl \"" + r.libssl_path + "\"";
    }
    if (problem.empty() && r.module_hash_loaded != r.module_hash_expected) {
      problem = "module hash " + r.module_hash_loaded + " of " + r.libcrypto_path + " differs from the " +
                "recorded " + r.module_hash_expected + " (wrong library loaded?)";
    }
    add(r, "module_hash", problem.empty(),
        problem.empty() ? r.module_hash_loaded + " (libcrypto " + r.libcrypto_path + ")" : problem);
  }

  // 6. The algorithms we use are approved in this module.
  {
    using Fn = int (*)(const char*);
    auto fn = reinterpret_cast<Fn>(sym("FIPS_query_algorithm_status"));
    static const char* const kAlgs[] = {"AES-GCM", "ECC-SSC", "ECDSA-sign", "ECDSA-verify", "RSA-sign",
                                        "RSA-verify", "HMAC", "SHA2-256", "SHA2-384", "ctrDRBG"};
    std::string bad;
    for (const char* a : kAlgs) {
      if (fn == nullptr || fn(a) != 1) bad += (bad.empty() ? "" : ", ") + std::string(a);
    }
    if (fn == nullptr) {
      add(r, "algorithms", false, "FIPS_query_algorithm_status not present");
    } else {
      add(r, "algorithms", bad.empty(), bad.empty() ? "all 10 approved" : "not approved: " + bad);
    }
  }

  // 7. The DRBG produces output (also runs the CRNG test early).
  {
    unsigned char buf[32];
    const bool ok = RAND_bytes(buf, sizeof buf) == 1;
    add(r, "drbg", ok, ok ? "RAND_bytes ok" : "RAND_bytes failed");
  }

  // 8a. Only one crypto library in the process: ours. Another libcrypto/libssl/GnuTLS/NSS mapped
  // beside it would mean some code path does TLS or crypto outside the boundary.
  {
    std::ifstream maps("/proc/self/maps");
    std::string line, others;
    static const char* const kCrypto[] = {"libcrypto.so", "libssl.so", "libgnutls", "libnss3",
                                          "libwolfssl", "libmbedcrypto", "libmbedtls", "libbotan",
                                          "libnettle", "libgcrypt"};
    while (std::getline(maps, line)) {
      const size_t slash = line.find('/');
      if (slash == std::string::npos) continue;
      const std::string path = line.substr(slash);
      const std::string base = path.substr(path.find_last_of('/') + 1);
      bool crypto = false;
      for (const char* k : kCrypto) crypto = crypto || base.rfind(k, 0) == 0;
      if (!crypto) continue;
      if (std::find(r.crypto_libraries.begin(), r.crypto_libraries.end(), path) != r.crypto_libraries.end()) continue;
      r.crypto_libraries.push_back(path);
      if (path != r.libcrypto_path && path != r.libssl_path) others += (others.empty() ? "" : ", ") + path;
    }
    add(r, "single_crypto_library", others.empty(),
        others.empty() ? "only " + r.libcrypto_path + " and " + r.libssl_path
                       : "other crypto libraries are loaded: " + others);
  }

  // Informational (not checks): the node's FIPS mode and this executable's hash.
  {
    std::ifstream k("/proc/sys/crypto/fips_enabled");
    std::string v;
    r.kernel_fips = (k && std::getline(k, v)) ? v : "unavailable";
    char exe[4096];
    const ssize_t n = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) r.binary_path.assign(exe, static_cast<size_t>(n));
    // The executable's hash is computed on demand (hash_own_binary): hashing ~14 MB on every
    // start would double the cold start for a value only a baseline comparison needs.
  }

  // 8. Our libssl patch: without it TLS 1.3 would negotiate ChaCha20-Poly1305.
  {
    const char* marker = patch_marker();
    r.patch_marker = marker ? marker : "";
    const bool ok = marker != nullptr && std::string_view(marker).starts_with("fipsproxy-libssl-patch/");
    add(r, "libssl_patch", ok,
        ok ? r.patch_marker
           : "libssl patch marker missing: an unpatched libssl would negotiate TLS 1.3 ChaCha20");
  }
  return r;
}

void hash_files(FipsReport& r) {
  if (r.libcrypto_sha256.empty()) r.libcrypto_sha256 = sha256_of_file(r.libcrypto_path);
  if (r.libssl_sha256.empty()) r.libssl_sha256 = sha256_of_file(r.libssl_path);
  if (r.binary_sha256.empty()) r.binary_sha256 = sha256_of_file(r.binary_path);
}

}  // namespace fp::certs
