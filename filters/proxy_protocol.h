#pragma once
// PROXY protocol version 2 header (HAProxy's proxy-protocol.txt, §2.2) for tcp-mode listeners
// with proxy_protocol = "v2": a pure encoder, inputs -> bytes. The proxy writes the result to
// the upstream before the first forwarded byte so that a non-HTTP app learns the client's
// address and its verified identity.
//
// Layout: the 12-byte signature, ver_cmd 0x21 (v2, PROXY) or 0x20 (LOCAL), family 0x11 (TCP
// over IPv4), 0x21 (TCP over IPv6), 0x31 (UNIX stream) or 0x00 (UNSPEC), a big-endian length,
// the addresses (12, 36 or 216 bytes), then TLVs in this order, each only when it has a value:
//   0x01 PP2_TYPE_ALPN        negotiated ALPN protocol
//   0x02 PP2_TYPE_AUTHORITY   SNI the client sent
//   0x20 PP2_TYPE_SSL         client flags (PP2_CLIENT_SSL | _CERT_CONN | _CERT_SESS), verify
//                             (uint32 BE; 0 = a client certificate was presented and verified),
//                             then sub-TLVs 0x21 SSL_VERSION ("TLSv1.3"), 0x22 SSL_CN (the
//                             client certificate's subject CN), 0x23 SSL_CIPHER, 0x24 SSL_SIG_ALG,
//                             0x25 SSL_KEY_ALG
//   0xE5 (custom range 0xE0..0xEF) the verified client SPIFFE ID URI. 0xE5 because the ends of
//                             the range are taken by cloud load balancers (GCP 0xE0, AWS 0xEA,
//                             Azure 0xEE).
//   0x03 PP2_TYPE_CRC32C      CRC32c (RFC 4960 App. B) of the whole header with this field
//                             zeroed, big-endian; last, so a reader can check it after the rest
// A value longer than kMaxTlvValue bytes is left out rather than truncated.

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace fp::filters {

inline constexpr std::string_view kProxyV2Signature{"\r\n\r\n\0\r\nQUIT\n", 12};
inline constexpr uint8_t kPp2TypeAlpn = 0x01;
inline constexpr uint8_t kPp2TypeAuthority = 0x02;
inline constexpr uint8_t kPp2TypeCrc32c = 0x03;
inline constexpr uint8_t kPp2TypeSsl = 0x20;
inline constexpr uint8_t kPp2SubtypeSslVersion = 0x21;
inline constexpr uint8_t kPp2SubtypeSslCn = 0x22;
inline constexpr uint8_t kPp2SubtypeSslCipher = 0x23;
inline constexpr uint8_t kPp2SubtypeSslSigAlg = 0x24;
inline constexpr uint8_t kPp2SubtypeSslKeyAlg = 0x25;
inline constexpr uint8_t kPp2TypeSpiffeId = 0xE5;  // fipsproxy: verified client SPIFFE ID URI
inline constexpr uint8_t kPp2ClientSsl = 0x01;
inline constexpr uint8_t kPp2ClientCertConn = 0x02;
inline constexpr uint8_t kPp2ClientCertSess = 0x04;
inline constexpr size_t kMaxTlvValue = 4096;

struct ProxyV2Info {
  enum class Family { Unspec, Inet, Inet6, Unix };
  bool local = false;  // LOCAL command (no addresses are meaningful)
  Family family = Family::Unspec;
  std::array<uint8_t, 16> src_addr{}, dst_addr{};  // network order; Inet uses the first 4
  uint16_t src_port = 0, dst_port = 0;              // host order
  std::string src_path, dst_path;                   // Unix: at most 108 bytes each, NUL-padded
  std::string alpn;
  std::string authority;  // SNI
  bool ssl = false;       // the client connection is TLS
  bool cert_conn = false; // a client certificate was presented on this connection
  bool cert_sess = false; // ... on this TLS session (also when resumed)
  uint32_t verify = 0;    // 0: verified
  std::string ssl_version, ssl_cn, ssl_cipher, ssl_sig_alg, ssl_key_alg;
  std::string spiffe_id;
  bool crc32c = true;
};

// The complete header.
std::string encode_proxy_v2(const ProxyV2Info& info);
// CRC32c (Castagnoli, reflected, init and final xor 0xFFFFFFFF); crc32c("123456789") = 0xE3069283.
uint32_t crc32c(std::string_view data) noexcept;
// The first CN of an RFC 2253 subject string ("CN=a\,b,O=x" -> "a,b"; \XX hex escapes decoded),
// or "" if there is none.
std::string subject_cn(std::string_view rfc2253);

}  // namespace fp::filters
