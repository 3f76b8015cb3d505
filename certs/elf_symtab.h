#pragma once
// Minimal ELF64 .symtab reader, header-only and std-only so the integration tests (which do not
// link fp_certs) can use it too. Used to find *local* symbols of libcrypto.so that dlsym cannot
// see: BORINGSSL_bcm_text_hash (the module hash the integrity test compares against,
// FIPS-POLICY §4.3) and BORINGSSL_bcm_text_start/end (tests flip a byte in between, §11.4 S1).

#include <elf.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>
#include <vector>

namespace fp::certs::elf {

struct Symbol {
  uint64_t value = 0;        // virtual address (st_value)
  uint64_t size = 0;         // st_size
  uint64_t file_offset = 0;  // where value lies in the file (via its section header)
};

inline bool read_whole_file(const std::string& path, std::vector<unsigned char>& out) {
  // Sized bulk read: an istreambuf_iterator copy costs ~60 % of startup on a 14 MB binary.
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) return false;
  const std::streamoff size = in.tellg();
  if (size < 0) return false;
  out.resize(static_cast<size_t>(size));
  in.seekg(0);
  if (size > 0 && !in.read(reinterpret_cast<char*>(out.data()), size)) return false;
  return true;
}

// A file mapped read-only (no copy, no zero-filled buffer: only the pages looked at are read).
// Startup reads the module hash out of libcrypto.so this way, touching a few pages of 6 MB.
class MappedFile {
 public:
  explicit MappedFile(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    struct stat st;
    if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) {
      void* p = ::mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
      if (p != MAP_FAILED) {
        data_ = static_cast<const unsigned char*>(p);
        size_ = static_cast<size_t>(st.st_size);
      }
    }
    ::close(fd);
  }
  ~MappedFile() {
    if (data_ != nullptr) ::munmap(const_cast<unsigned char*>(data_), size_);
  }
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  bool ok() const { return data_ != nullptr; }
  const unsigned char* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  const unsigned char* data_ = nullptr;
  size_t size_ = 0;
};

// A read-only view of a file image (a vector read by read_whole_file, or a MappedFile).
struct Image {
  const unsigned char* p = nullptr;
  size_t n = 0;
  Image(const std::vector<unsigned char>& v) : p(v.data()), n(v.size()) {}  // NOLINT: implicit
  Image(const MappedFile& m) : p(m.data()), n(m.size()) {}                  // NOLINT: implicit
  const unsigned char* data() const { return p; }
  size_t size() const { return n; }
};

// Looks `name` up in the .symtab (falling back to .dynsym) of an ELF64 little-endian image.
// Returns nullopt when the image is not ELF64, has no such symbol, or is malformed.
inline std::optional<Symbol> find_symbol(Image img, const std::string& name) {
  if (img.size() < sizeof(Elf64_Ehdr)) return std::nullopt;
  Elf64_Ehdr eh;
  std::memcpy(&eh, img.data(), sizeof eh);
  if (std::memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
      eh.e_shentsize != sizeof(Elf64_Shdr)) {
    return std::nullopt;
  }
  if (eh.e_shoff == 0 || eh.e_shoff + uint64_t{eh.e_shnum} * sizeof(Elf64_Shdr) > img.size()) {
    return std::nullopt;
  }
  std::vector<Elf64_Shdr> sh(eh.e_shnum);
  std::memcpy(sh.data(), img.data() + eh.e_shoff, sh.size() * sizeof(Elf64_Shdr));
  auto in_file = [&](uint64_t off, uint64_t len) { return off <= img.size() && len <= img.size() - off; };

  for (uint32_t want : {uint32_t{SHT_SYMTAB}, uint32_t{SHT_DYNSYM}}) {
    for (const Elf64_Shdr& s : sh) {
      if (s.sh_type != want || s.sh_entsize != sizeof(Elf64_Sym) || s.sh_link >= sh.size()) continue;
      const Elf64_Shdr& strtab = sh[s.sh_link];
      if (!in_file(s.sh_offset, s.sh_size) || !in_file(strtab.sh_offset, strtab.sh_size)) continue;
      const size_t n = s.sh_size / sizeof(Elf64_Sym);
      for (size_t i = 0; i < n; ++i) {
        Elf64_Sym sym;
        std::memcpy(&sym, img.data() + s.sh_offset + i * sizeof(Elf64_Sym), sizeof sym);
        if (sym.st_name >= strtab.sh_size) continue;
        const char* sname = reinterpret_cast<const char*>(img.data() + strtab.sh_offset + sym.st_name);
        const size_t max_len = strtab.sh_size - sym.st_name;
        if (strnlen(sname, max_len) != name.size() || name.compare(0, name.size(), sname, name.size()) != 0) {
          continue;
        }
        if (sym.st_shndx == SHN_UNDEF || sym.st_shndx >= sh.size()) return std::nullopt;
        const Elf64_Shdr& sec = sh[sym.st_shndx];
        if (sym.st_value < sec.sh_addr) return std::nullopt;
        Symbol out;
        out.value = sym.st_value;
        out.size = sym.st_size;
        out.file_offset = sec.sh_offset + (sym.st_value - sec.sh_addr);
        return out;
      }
    }
  }
  return std::nullopt;
}

// Reads `len` bytes at symbol `name` from the file image; empty on failure.
inline std::vector<unsigned char> symbol_bytes(Image img, const std::string& name, size_t len) {
  auto sym = find_symbol(img, name);
  if (!sym || sym->file_offset > img.size() || len > img.size() - sym->file_offset) return {};
  return {img.data() + sym->file_offset, img.data() + sym->file_offset + len};
}

}  // namespace fp::certs::elf
