// Fuzz target: the config loader and validator (config::load_string), TOML text in.
// Invariants: never throws; exactly one of snapshot / errors; every error renders as
// "file:line:col: key: reason" with a file, a line and a reason (whole-file errors may lack the
// key); the result is deterministic; a snapshot is internally consistent (every listener's
// cluster exists, TLS blocks name cert and key, version range ordered).
//
// Paths: relative paths resolve against a private temp directory holding a few small files
// (an include and placeholder PEMs). Inputs that could reach special files (/dev, /proc, /sys),
// climb out with "..", use TOML \u escapes (to spell those), or glob at the root are skipped:
// an include of /dev/zero or a FIFO is an operator's choice, not an input we defend against.

#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include "config/config.h"
#include "tests/fuzz/fuzz_common.h"

namespace {

std::string make_base_dir() {
  namespace fs = std::filesystem;
  std::string tmpl = (fs::temp_directory_path() / "fp-fuzz-config-XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) std::abort();
  const fs::path d(tmpl);
  fs::create_directories(d / "conf.d");
  auto put = [&](const fs::path& p, std::string_view text) { std::ofstream(p, std::ios::binary) << text; };
  put(d / "cert.pem", "placeholder\n");
  put(d / "key.pem", "placeholder\n");
  put(d / "ca.pem", "placeholder\n");
  put(d / "crl.pem", "placeholder\n");
  put(d / "conf.d/10-cluster.toml", "[[cluster]]\nname = \"inc\"\nendpoints = [\"127.0.0.1:9000\"]\n");
  put(d / "conf.d/20-bad.toml", "[[cluster]]\nname = 5\n");
  return tmpl;
}

const std::string& base_dir() {
  static const std::string dir = make_base_dir();
  return dir;
}

bool unsafe(std::string_view in) {
  for (std::string_view bad : {"/dev", "/proc", "/sys", "..", "\\u", "\\U", "/*", "/?", "/["}) {
    if (in.find(bad) != std::string_view::npos) return true;
  }
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 16 * 1024) return 0;
  const std::string text(reinterpret_cast<const char*>(data), size);
  if (unsafe(text)) return 0;
  fp::config::LoadResult r, again;
  try {
    r = fp::config::load_string(text, "fuzz.toml", base_dir());
    again = fp::config::load_string(text, "fuzz.toml", base_dir());
  } catch (...) {
    FUZZ_CHECK(false, "load_string threw");
  }
  FUZZ_CHECK(r.snapshot.has_value() == r.errors.empty(), "snapshot and errors both set or both empty");
  FUZZ_CHECK(r.errors.size() == again.errors.size(), "non-deterministic error count");
  for (size_t i = 0; i < r.errors.size(); ++i) {
    const fp::config::ConfigError& e = r.errors[i];
    const std::string s = e.str();
    FUZZ_CHECK(s == again.errors[i].str(), "non-deterministic error: %s", s.c_str());
    FUZZ_CHECK(!e.loc.file.empty() && !e.reason.empty(), "error without file or reason: %s", s.c_str());
    FUZZ_CHECK(e.loc.line >= 1 && e.loc.col >= 0, "error without a line: %s", s.c_str());
    FUZZ_CHECK(s.rfind(e.loc.file + ":" + std::to_string(e.loc.line) + ":", 0) == 0, "error not file:line: %s",
               s.c_str());
    FUZZ_CHECK(e.key.empty() || s.find(e.key) != std::string::npos, "error does not name its key: %s", s.c_str());
    FUZZ_CHECK(s.find('\n') == std::string::npos || e.reason.find('\n') != std::string::npos,
               "multi-line error: %s", s.c_str());
  }
  if (r.snapshot) {
    const fp::config::Snapshot& snap = *r.snapshot;
    for (const auto& l : snap.listeners) {
      FUZZ_CHECK(snap.find_cluster(l.cluster) != nullptr, "listener %s names unknown cluster %s", l.name.c_str(),
                 l.cluster.c_str());
      if (l.tls) {
        FUZZ_CHECK(!l.tls->cert.empty() && !l.tls->key.empty(), "listener %s: TLS without cert/key", l.name.c_str());
        FUZZ_CHECK(l.tls->min_version <= l.tls->max_version, "listener %s: min_version > max_version", l.name.c_str());
      }
    }
    for (const auto& c : snap.clusters) {
      FUZZ_CHECK(!c.endpoints.empty(), "cluster %s without endpoints", c.name.c_str());
      FUZZ_CHECK(c.weights.empty() || c.weights.size() == c.endpoints.size(), "cluster %s: weights/endpoints",
                 c.name.c_str());
      if (c.tls) FUZZ_CHECK(c.tls->min_version <= c.tls->max_version, "cluster %s: min_version > max_version", c.name.c_str());
    }
  }
  return 0;
}
