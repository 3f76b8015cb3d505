#include "filters/filter.h"

namespace fp::filters {

Verdict run_on_handshake(const std::vector<std::unique_ptr<L4Filter>>& chain,
                         const certs::HandshakeInfo& info) {
  for (const auto& f : chain) {
    Verdict v = f->on_handshake(info);
    if (v.reject) return v;
  }
  return Verdict::Continue();
}

}  // namespace fp::filters
