#pragma once
// Shared helpers for the libFuzzer targets in tests/fuzz (see README.md). Each target defines
// LLVMFuzzerTestOneInput; it is linked either with libFuzzer (-DFIPSPROXY_FUZZ=ON) or with
// replay_main.cc, which runs every file of a corpus directory through it (ctest, label "fast").
//
// FUZZ_CHECK aborts with a message: libFuzzer (and the replay) report an abort as a crash, so a
// broken invariant is saved as a reproducer exactly like a memory error.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#define FUZZ_CHECK(cond, ...)                                                      \
  do {                                                                             \
    if (!(cond)) {                                                                 \
      std::fprintf(stderr, "%s:%d: invariant failed: %s\n  ", __FILE__, __LINE__, #cond); \
      std::fprintf(stderr, __VA_ARGS__);                                           \
      std::fprintf(stderr, "\n");                                                  \
      std::abort();                                                                \
    }                                                                              \
  } while (0)

namespace fp::fuzz {

// Deterministic chunk sizes derived from the input itself, so a corpus file stays a plain byte
// string (a readable HTTP message) and every mutation also changes how it is split across reads.
class Splitter {
 public:
  explicit Splitter(std::string_view data) {
    uint64_t h = 1469598103934665603ull;  // FNV-1a
    for (unsigned char c : data) h = (h ^ c) * 1099511628211ull;
    state_ = h | 1;
  }
  // Next chunk length in [1, remaining]: mostly small (1..16), sometimes large.
  size_t next(size_t remaining) {
    state_ ^= state_ << 13;
    state_ ^= state_ >> 7;
    state_ ^= state_ << 17;
    size_t n;
    switch (state_ % 4) {
      case 0: n = 1; break;
      case 1: n = 1 + (state_ >> 8) % 16; break;
      case 2: n = 1 + (state_ >> 8) % 512; break;
      default: n = remaining; break;
    }
    return n < remaining ? n : remaining;
  }

 private:
  uint64_t state_;
};

// Reads one byte as a small integer (0 when the input is exhausted) and advances.
inline uint8_t take_byte(std::string_view& in) {
  if (in.empty()) return 0;
  uint8_t b = static_cast<uint8_t>(in.front());
  in.remove_prefix(1);
  return b;
}

// Splits off the text up to the first `sep` (or everything) and advances past it.
inline std::string_view take_field(std::string_view& in, char sep) {
  size_t at = in.find(sep);
  std::string_view out = in.substr(0, at);
  in.remove_prefix(at == std::string_view::npos ? in.size() : at + 1);
  return out;
}

}  // namespace fp::fuzz
