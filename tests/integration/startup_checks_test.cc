// FIPS-POLICY §11.4 S1-S3: the real `fipsproxy fips-status` binary with the wrong libraries put in
// front of it through LD_LIBRARY_PATH (the binary's RUNPATH loses to LD_LIBRARY_PATH). Each
// negative has a control: an unmodified copy of our libraries in the same kind of temp dir works.

#include <catch2/catch.hpp>

#include <signal.h>

#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "certs/elf_symtab.h"
#include "tests/support/support.h"

using namespace fp::test;
namespace elf = fp::certs::elf;

namespace {

const std::string kPrefix = FP_BORINGSSL_PREFIX;
const std::string kRef = FP_BORINGSSL_REF;

struct Run {
  ExitStatus status;
  std::string out, err;
};

Run fips_status(const std::string& lib_dir, bool json = false) {
  Run r;
  std::vector<std::string> argv = {proxy_binary(), "fips-status"};
  if (json) argv.push_back("--json");
  std::vector<std::string> env;
  if (!lib_dir.empty()) env.push_back("LD_LIBRARY_PATH=" + lib_dir);
  r.status = run_command(argv, Millis(30000), &r.out, &r.err, env);
  return r;
}

std::vector<unsigned char> read_bytes(const std::string& path) {
  std::vector<unsigned char> v;
  REQUIRE(elf::read_whole_file(path, v));
  return v;
}

void write_bytes(const std::string& path, const std::vector<unsigned char>& v) {
  std::ofstream o(path, std::ios::binary);
  o.write(reinterpret_cast<const char*>(v.data()), static_cast<std::streamsize>(v.size()));
  REQUIRE(o.good());
}

bool exited_with(const ExitStatus& s, int code) { return s.exited && s.code == code; }

bool aborted(const ExitStatus& s) {
  // SIGABRT directly, or 134 when a shell or wrapper reports it.
  return (!s.exited && s.signal == SIGABRT) || (s.exited && s.code == 134);
}

}  // namespace

TEST_CASE("S0: fips-status passes with our libraries (default RUNPATH and an unmodified copy)",
          "[fast][startup]") {
  REQUIRE(file_exists(proxy_binary()));
  Run r = fips_status("");
  INFO(r.status.str() << "\n" << r.out << r.err);
  CHECK(exited_with(r.status, 0));
  CHECK(r.out.find("BoringCrypto FIPS build, module version 2022061300, FIPS mode on, self-tests passed") !=
        std::string::npos);

  Run j = fips_status("", true);
  CHECK(exited_with(j.status, 0));
  CHECK(j.out.find("\"module_version\":2022061300") != std::string::npos);
  CHECK(j.out.find("FIPS validated") == std::string::npos);

  TempDir dir("fp-s0");
  write_bytes(dir.file("libcrypto.so"), read_bytes(kPrefix + "/lib/libcrypto.so"));
  write_bytes(dir.file("libssl.so"), read_bytes(kPrefix + "/lib/libssl.so"));
  Run c = fips_status(dir.path(), true);
  INFO(c.status.str() << "\n" << c.out << c.err);
  CHECK(exited_with(c.status, 0));
  // And it really loaded the copy.
  CHECK(c.out.find("\"libcrypto_path\":\"" + dir.file("libcrypto.so") + "\"") != std::string::npos);
}

TEST_CASE("S1: one flipped byte in the module text aborts before main (SIGABRT, 134)", "[fast][startup]") {
  const std::vector<unsigned char> orig = read_bytes(kPrefix + "/lib/libcrypto.so");
  auto start = elf::find_symbol(orig, "BORINGSSL_bcm_text_start");
  auto end = elf::find_symbol(orig, "BORINGSSL_bcm_text_end");
  REQUIRE(start.has_value());
  REQUIRE(end.has_value());
  REQUIRE(end->file_offset > start->file_offset + 64);
  REQUIRE(end->file_offset <= orig.size());

  // Control: the unflipped copy in a temp dir works.
  TempDir good("fp-s1-good");
  write_bytes(good.file("libcrypto.so"), orig);
  Run c = fips_status(good.path());
  INFO("control: " << c.status.str() << "\n" << c.out << c.err);
  CHECK(exited_with(c.status, 0));

  TempDir bad("fp-s1-bad");
  std::vector<unsigned char> flipped = orig;
  const uint64_t at = start->file_offset + (end->file_offset - start->file_offset) / 2;
  flipped[at] ^= 0x01;
  write_bytes(bad.file("libcrypto.so"), flipped);
  Run r = fips_status(bad.path());
  INFO(r.status.str() << "\n" << r.out << r.err);
  CHECK(aborted(r.status));
  CHECK(r.err.find("FIPS integrity test failed") != std::string::npos);
  CHECK(r.out.find("self-tests passed") == std::string::npos);
}

TEST_CASE("S2: a non-FIPS libcrypto is refused with exit 3", "[fast][startup]") {
  REQUIRE(file_exists(kRef + "/lib/libcrypto.so"));
  TempDir dir("fp-s2");
  write_bytes(dir.file("libcrypto.so"), read_bytes(kRef + "/lib/libcrypto.so"));
  Run r = fips_status(dir.path());
  INFO(r.status.str() << "\n" << r.out << r.err);
  CHECK(exited_with(r.status, 3));
  CHECK(r.err.find("fipsproxy: FIPS check failed: ") != std::string::npos);
  CHECK((r.err.find("not in FIPS mode") != std::string::npos ||
         r.err.find("unexpected module") != std::string::npos));
  CHECK(r.out.find("self-tests passed") == std::string::npos);
}

TEST_CASE("S3: an unpatched libssl is refused with exit 3", "[fast][startup]") {
  REQUIRE(file_exists(kRef + "/lib/libssl.so"));
  TempDir dir("fp-s3");
  write_bytes(dir.file("libssl.so"), read_bytes(kRef + "/lib/libssl.so"));
  Run r = fips_status(dir.path());
  INFO(r.status.str() << "\n" << r.out << r.err);
  CHECK(exited_with(r.status, 3));
  CHECK(r.err.find("fipsproxy: FIPS check failed: libssl_patch: ") != std::string::npos);
  CHECK(r.err.find("patch marker missing") != std::string::npos);
  // Control: the same layout with our patched libssl passes.
  TempDir good("fp-s3-good");
  write_bytes(good.file("libssl.so"), read_bytes(kPrefix + "/lib/libssl.so"));
  CHECK(exited_with(fips_status(good.path()).status, 0));
}

TEST_CASE("S5: another crypto library mapped into the process is refused with exit 3", "[fast][startup]") {
  // Control: our libraries only.
  Run ok = fips_status("");
  INFO(ok.out << ok.err);
  REQUIRE(exited_with(ok.status, 0));
  CHECK(ok.out.find("[ok] single_crypto_library") != std::string::npos);
  // Debian's OpenSSL libcrypto (or GnuTLS) preloaded beside ours.
  for (const char* other : {"/usr/lib/x86_64-linux-gnu/libcrypto.so.3", "/usr/lib/x86_64-linux-gnu/libgnutls.so.30"}) {
    if (!file_exists(other)) {
      WARN(std::string(other) + " not installed: case skipped");
      continue;
    }
    Run r;
    r.status = run_command({proxy_binary(), "fips-status"}, Millis(30000), &r.out, &r.err,
                           {std::string("LD_PRELOAD=") + other});
    INFO(other << "\n" << r.status.str() << "\n" << r.out << r.err);
    // Either our check refuses (exit 3), or, when the other library interposes symbols the
    // module uses, the module's own power-on test aborts before main: both fail closed.
    const bool refused = exited_with(r.status, 3) &&
                         r.err.find("single_crypto_library: other crypto libraries are loaded") != std::string::npos;
    const bool module_aborted = aborted(r.status) && r.err.find("FIPS module") != std::string::npos;
    CHECK((refused || module_aborted));
  }
}

// bench/run.sh reads the module's raw limits from `fipsproxy speed` (issue #10): it measures
// only after the FIPS checks pass, prints both figures, and rejects a bad option.
TEST_CASE("fipsproxy speed: AES-128-GCM and P-256 limits of the FIPS module, bad options are usage errors",
          "[fast][cli][bench]") {
  std::string out, err;
  auto st = run_command({proxy_binary(), "speed", "--seconds", "0.2"}, Millis(30000), &out, &err);
  INFO(st.str() << "\n" << out << err);
  REQUIRE(exited_with(st, 0));
  CHECK(out.find("module=BoringCrypto version=2022061300") != std::string::npos);
  auto field = [&](const std::string& key) {
    const size_t p = out.find(key + "=");
    return p == std::string::npos ? 0.0 : std::stod(out.substr(p + key.size() + 1));
  };
  CHECK(field("aes_128_gcm_16k_mib_s") > 10);  // any working core seals far more than 10 MiB/s
  CHECK(field("p256_sign_per_s") > 10);
  std::string out2, err2;
  auto bad = run_command({proxy_binary(), "speed", "--seconds", "0"}, Millis(10000), &out2, &err2);
  INFO(bad.str() << "\n" << out2 << err2);
  CHECK(exited_with(bad, 2));
  CHECK(err2.find("--seconds needs a number in (0, 60]") != std::string::npos);
  CHECK(out2.find("aes_128_gcm") == std::string::npos);  // nothing measured
}
