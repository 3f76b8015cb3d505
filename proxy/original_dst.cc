#include "proxy/original_dst.h"

#include <arpa/inet.h>
#include <netinet/in.h>
// After <netinet/in.h>: the uapi headers then skip the definitions glibc already made.
#include <linux/netfilter_ipv4.h>
#include <linux/netfilter_ipv6/ip6_tables.h>

#include <cerrno>
#include <cstring>

namespace fp::proxy {

namespace {

// (family, 16 address bytes, port), with IPv4-mapped IPv6 folded to IPv4, so a dual-stack
// socket compares equal to the IPv4 destination the kernel reports for it.
struct Key {
  int family = 0;
  unsigned char addr[16] = {};
  uint16_t port = 0;
  bool operator==(const Key& o) const {
    return family == o.family && port == o.port && std::memcmp(addr, o.addr, sizeof addr) == 0;
  }
};

Key key_of(const sockaddr_storage& ss) {
  Key k;
  if (ss.ss_family == AF_INET) {
    const auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
    k.family = AF_INET;
    std::memcpy(k.addr, &a->sin_addr, 4);
    k.port = ntohs(a->sin_port);
  } else if (ss.ss_family == AF_INET6) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
    k.port = ntohs(a->sin6_port);
    if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr)) {
      k.family = AF_INET;
      std::memcpy(k.addr, a->sin6_addr.s6_addr + 12, 4);
    } else {
      k.family = AF_INET6;
      std::memcpy(k.addr, &a->sin6_addr, 16);
    }
  }
  return k;
}

Error unavailable(const char* what, int err) {
  return make_error(Code::OriginalDstUnavailable, Side::Downstream,
                    std::string(what) + ": " + std::strerror(err) +
                        " (was the connection redirected by iptables REDIRECT in nat OUTPUT?)");
}

}  // namespace

Result<sockaddr_storage> original_destination(int fd) {
  sockaddr_storage local{};
  socklen_t len = sizeof local;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len) != 0) {
    return unavailable("getsockname", errno);
  }
  sockaddr_storage dst{};
  if (local.ss_family == AF_INET6 &&
      !IN6_IS_ADDR_V4MAPPED(&reinterpret_cast<const sockaddr_in6*>(&local)->sin6_addr)) {
    len = sizeof(sockaddr_in6);
    if (::getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, &dst, &len) != 0) {
      return unavailable("getsockopt(IP6T_SO_ORIGINAL_DST)", errno);
    }
    return dst;
  }
  if (local.ss_family != AF_INET && local.ss_family != AF_INET6) {
    return unavailable("not a TCP/IP socket", EAFNOSUPPORT);
  }
  // IPv4, also on a dual-stack socket carrying an IPv4 connection (the NAT record is IPv4).
  len = sizeof(sockaddr_in);
  if (::getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &dst, &len) != 0) {
    return unavailable("getsockopt(SO_ORIGINAL_DST)", errno);
  }
  return dst;
}

Result<OriginalDst> original_dst_target(int fd, uint16_t port) {
  Result<sockaddr_storage> dst = original_destination(fd);
  if (!dst) return std::move(dst).error();
  sockaddr_storage local{};
  socklen_t len = sizeof local;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len) != 0) {
    return unavailable("getsockname", errno);
  }
  OriginalDst out;
  out.sockaddr = *dst;
  char host[INET6_ADDRSTRLEN] = {0};
  if (out.sockaddr.ss_family == AF_INET) {
    auto* a = reinterpret_cast<sockaddr_in*>(&out.sockaddr);
    ::inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
    out.address.host = host;
    out.address.text = out.address.host + ":" + std::to_string(ntohs(a->sin_port));
  } else if (out.sockaddr.ss_family == AF_INET6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&out.sockaddr);
    ::inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
    out.address.host = host;
    out.address.text = "[" + out.address.host + "]:" + std::to_string(ntohs(a->sin6_port));
  } else {
    return unavailable("unexpected address family", EAFNOSUPPORT);
  }
  if (key_of(out.sockaddr) == key_of(local)) {
    return make_error(Code::OriginalDstLoop, Side::Downstream,
                      "original destination " + out.address.text +
                          " is this listener itself: the client connected directly, no redirect "
                          "happened, and forwarding would connect back to the proxy");
  }
  if (port != 0) {
    if (out.sockaddr.ss_family == AF_INET) {
      reinterpret_cast<sockaddr_in*>(&out.sockaddr)->sin_port = htons(port);
      out.address.text = out.address.host + ":" + std::to_string(port);
    } else {
      reinterpret_cast<sockaddr_in6*>(&out.sockaddr)->sin6_port = htons(port);
      out.address.text = "[" + out.address.host + "]:" + std::to_string(port);
    }
  }
  const auto* p = out.sockaddr.ss_family == AF_INET
                      ? &reinterpret_cast<sockaddr_in*>(&out.sockaddr)->sin_port
                      : &reinterpret_cast<sockaddr_in6*>(&out.sockaddr)->sin6_port;
  out.address.port = ntohs(*p);
  return out;
}

}  // namespace fp::proxy
