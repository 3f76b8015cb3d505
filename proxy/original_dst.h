#pragma once
// Transparent outbound capture (issue #12): where a connection was going before an iptables
// REDIRECT (nat OUTPUT, deploy/k8s/iptables-init.sh) brought it to one of our listeners. The
// kernel keeps the original tuple in its conntrack NAT record; SO_ORIGINAL_DST (IPv4) and
// IP6T_SO_ORIGINAL_DST (IPv6) read it back from the accepted socket.

#include <sys/socket.h>

#include <cstdint>
#include <string>

#include "config/config.h"
#include "proxy/base/result.h"

namespace fp::proxy {

// The original destination of the accepted TCP socket `fd`. Errors (OriginalDstUnavailable,
// downstream): no NAT record for the socket (conntrack is not tracking it, e.g. no nat rule was
// ever loaded in this network namespace), or `fd` is not a TCP/IP socket.
Result<sockaddr_storage> original_destination(int fd);

// The upstream of a connection accepted for an original_dst cluster.
struct OriginalDst {
  sockaddr_storage sockaddr{};  // what to connect to
  config::Address address;      // the same as an endpoint: IP literal host, port, text
};

// original_destination(fd), refused with OriginalDstLoop when it equals the socket's own local
// address: the client connected to the listener directly (no redirect happened), and
// connecting there would bring the proxy back to itself. `port` (non-zero) replaces the
// original port (the cluster's `port` key).
Result<OriginalDst> original_dst_target(int fd, uint16_t port);

}  // namespace fp::proxy
