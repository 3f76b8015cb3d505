#include "filters/proxy_protocol.h"

namespace fp::filters {

namespace {

void put16(std::string& out, size_t v) {
  out += static_cast<char>((v >> 8) & 0xff);
  out += static_cast<char>(v & 0xff);
}

void put32(std::string& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out += static_cast<char>((v >> shift) & 0xff);
}

void tlv(std::string& out, uint8_t type, std::string_view value) {
  if (value.empty() || value.size() > kMaxTlvValue) return;
  out += static_cast<char>(type);
  put16(out, value.size());
  out.append(value);
}

int hexval(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

uint32_t crc32c(std::string_view data) noexcept {
  uint32_t crc = 0xFFFFFFFFu;
  for (char ch : data) {
    crc ^= static_cast<uint8_t>(ch);
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
  }
  return crc ^ 0xFFFFFFFFu;
}

std::string subject_cn(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    // At the start of an attribute: "TYPE=value".
    const bool is_cn = s.substr(i, 3) == "CN=";
    if (is_cn) i += 3;
    std::string value;
    while (i < s.size()) {
      const char c = s[i];
      if (c == ',' || c == '+') break;
      if (c == '\\' && i + 1 < s.size()) {
        if (i + 2 < s.size() && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
          value += static_cast<char>(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
          i += 3;
        } else {
          value += s[i + 1];
          i += 2;
        }
        continue;
      }
      value += c;
      ++i;
    }
    if (is_cn) return value;
    ++i;  // the separator
  }
  return "";
}

std::string encode_proxy_v2(const ProxyV2Info& info) {
  using Family = ProxyV2Info::Family;
  std::string body;  // addresses + TLVs
  uint8_t fam = 0x00;
  if (!info.local) {
    switch (info.family) {
      case Family::Inet:
        fam = 0x11;
        body.append(reinterpret_cast<const char*>(info.src_addr.data()), 4);
        body.append(reinterpret_cast<const char*>(info.dst_addr.data()), 4);
        put16(body, info.src_port);
        put16(body, info.dst_port);
        break;
      case Family::Inet6:
        fam = 0x21;
        body.append(reinterpret_cast<const char*>(info.src_addr.data()), 16);
        body.append(reinterpret_cast<const char*>(info.dst_addr.data()), 16);
        put16(body, info.src_port);
        put16(body, info.dst_port);
        break;
      case Family::Unix: {
        fam = 0x31;
        for (const std::string* p : {&info.src_path, &info.dst_path}) {
          std::string path = p->substr(0, 108);
          path.resize(108, '\0');
          body += path;
        }
        break;
      }
      case Family::Unspec:
        break;
    }
  }
  tlv(body, kPp2TypeAlpn, info.alpn);
  tlv(body, kPp2TypeAuthority, info.authority);
  if (info.ssl) {
    std::string ssl;
    uint8_t client = kPp2ClientSsl;
    if (info.cert_conn) client |= kPp2ClientCertConn;
    if (info.cert_sess) client |= kPp2ClientCertSess;
    ssl += static_cast<char>(client);
    put32(ssl, info.verify);
    tlv(ssl, kPp2SubtypeSslVersion, info.ssl_version);
    tlv(ssl, kPp2SubtypeSslCn, info.ssl_cn);
    tlv(ssl, kPp2SubtypeSslCipher, info.ssl_cipher);
    tlv(ssl, kPp2SubtypeSslSigAlg, info.ssl_sig_alg);
    tlv(ssl, kPp2SubtypeSslKeyAlg, info.ssl_key_alg);
    body += static_cast<char>(kPp2TypeSsl);
    put16(body, ssl.size());
    body += ssl;
  }
  tlv(body, kPp2TypeSpiffeId, info.spiffe_id);
  size_t crc_at = std::string::npos;
  if (info.crc32c) {
    body += static_cast<char>(kPp2TypeCrc32c);
    put16(body, 4);
    crc_at = body.size();
    put32(body, 0);
  }
  std::string out(kProxyV2Signature);
  out += static_cast<char>(info.local ? 0x20 : 0x21);
  out += static_cast<char>(fam);
  put16(out, body.size());  // < 64 KiB: addresses <= 216 bytes, at most 8 TLVs of <= 4 KiB
  if (crc_at != std::string::npos) crc_at += out.size();
  out += body;
  if (crc_at != std::string::npos) {
    const uint32_t crc = crc32c(out);
    for (int k = 0; k < 4; ++k) out[crc_at + k] = static_cast<char>((crc >> (24 - 8 * k)) & 0xff);
  }
  return out;
}

}  // namespace fp::filters
