#pragma once
// Filter interfaces (STYLE.md 5.2). Filters never own sockets or call libuv: they return
// verdicts and the chain runner in proxy/ acts on them after the filter returns.

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "certs/handshake_info.h"
#include "proxy/base/error.h"

namespace fp::filters {

enum class Direction { Downstream, Upstream };  // data flowing from that side

struct Verdict {
  bool reject = false;
  base::Code code = base::Code::Ok;
  std::string reason;
  static Verdict Continue() { return {}; }
  static Verdict Reject(base::Code c, std::string r) { return {true, c, std::move(r)}; }
};

struct CloseInfo {
  std::string_view listener;
  base::Code reason = base::Code::Completed;
  uint64_t bytes_from_downstream = 0;
  uint64_t bytes_from_upstream = 0;
  double duration_ms = 0;
};

// One instance per connection, built by a factory validated at config load.
class L4Filter {
 public:
  virtual ~L4Filter() = default;
  virtual std::string_view name() const = 0;
  virtual Verdict on_handshake(const certs::HandshakeInfo& info) = 0;
  virtual void on_close(const CloseInfo&) {}
};

class L4FilterFactory {
 public:
  virtual ~L4FilterFactory() = default;
  virtual std::string_view name() const = 0;
  virtual std::unique_ptr<L4Filter> create() const = 0;
};

// Runs a chain in config order; the first Reject wins.
Verdict run_on_handshake(const std::vector<std::unique_ptr<L4Filter>>& chain,
                         const certs::HandshakeInfo& info);

}  // namespace fp::filters
