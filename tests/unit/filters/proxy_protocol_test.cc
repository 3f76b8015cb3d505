// PROXY protocol v2 encoder (issue #8): a byte-exact header for a fixed input, address block
// lengths per family, TLV lengths and the CRC32c.

#include <catch2/catch.hpp>

#include "filters/proxy_protocol.h"

using namespace fp::filters;

namespace {

std::string bytes(std::initializer_list<int> v) {
  std::string s;
  for (int b : v) s += static_cast<char>(b);
  return s;
}

ProxyV2Info inet_info() {
  ProxyV2Info i;
  i.family = ProxyV2Info::Family::Inet;
  i.src_addr = {127, 0, 0, 2};
  i.dst_addr = {127, 0, 0, 1};
  i.src_port = 0x1234;
  i.dst_port = 8443;
  return i;
}

}  // namespace

TEST_CASE("proxy v2: CRC32c test vectors", "[fast][proxy_protocol]") {
  CHECK(crc32c("123456789") == 0xE3069283u);
  CHECK(crc32c("") == 0u);
  CHECK(crc32c(std::string(32, '\0')) == 0x8A9136AAu);  // RFC 3720 B.4
}

TEST_CASE("proxy v2: byte-exact TCP4 header with TLS TLVs and the SPIFFE ID", "[fast][proxy_protocol]") {
  ProxyV2Info i = inet_info();
  i.authority = "srv";
  i.ssl = true;
  i.cert_conn = true;
  i.cert_sess = true;
  i.ssl_version = "TLSv1.3";
  i.ssl_cn = "c";
  i.ssl_cipher = "X";
  i.spiffe_id = "spiffe://t/a";
  i.crc32c = false;
  const std::string got = encode_proxy_v2(i);
  std::string want = std::string("\r\n\r\n\0\r\nQUIT\n", 12) + bytes({0x21, 0x11});
  std::string body = bytes({127, 0, 0, 2, 127, 0, 0, 1, 0x12, 0x34, 0x20, 0xFB});  // 8443 = 0x20FB
  body += bytes({0x02, 0x00, 0x03}) + "srv";
  // SSL: client 0x07, verify 0, then version (7), CN (1), cipher (1): 1+4 + 10 + 4 + 4 = 23
  body += bytes({0x20, 0x00, 23, 0x07, 0, 0, 0, 0});
  body += bytes({0x21, 0x00, 0x07}) + "TLSv1.3";
  body += bytes({0x22, 0x00, 0x01}) + "c";
  body += bytes({0x23, 0x00, 0x01}) + "X";
  body += bytes({0xE5, 0x00, 12}) + "spiffe://t/a";
  want += bytes({0x00, static_cast<int>(body.size())}) + body;
  CHECK(got == want);
  CHECK(got.size() == 16 + 12 + 6 + 26 + 15);
}

TEST_CASE("proxy v2: families, LOCAL, omitted values and the CRC32c field", "[fast][proxy_protocol]") {
  ProxyV2Info v6;
  v6.family = ProxyV2Info::Family::Inet6;
  v6.src_addr[15] = 1;
  v6.dst_addr[15] = 1;
  v6.crc32c = false;
  std::string h = encode_proxy_v2(v6);
  CHECK(h[13] == 0x21);
  CHECK(h.size() == 16 + 36);
  CHECK(static_cast<uint8_t>(h[15]) == 36);

  ProxyV2Info ux;
  ux.family = ProxyV2Info::Family::Unix;
  ux.dst_path = "/run/in.sock";
  ux.crc32c = false;
  h = encode_proxy_v2(ux);
  CHECK(h[13] == 0x31);
  CHECK(h.size() == 16 + 216);
  CHECK(h.substr(16, 108) == std::string(108, '\0'));  // unnamed client socket
  CHECK(h.substr(16 + 108, 12) == "/run/in.sock");

  ProxyV2Info local = inet_info();
  local.local = true;
  local.crc32c = false;
  h = encode_proxy_v2(local);
  CHECK(h[12] == 0x20);
  CHECK(h[13] == 0x00);
  CHECK(h.size() == 16);

  // No TLS: no SSL TLV; an over-long value is left out, never truncated.
  ProxyV2Info plain = inet_info();
  plain.crc32c = false;
  plain.authority = std::string(kMaxTlvValue + 1, 'a');
  CHECK(encode_proxy_v2(plain).size() == 16 + 12);

  ProxyV2Info c = inet_info();
  c.ssl = true;
  c.ssl_version = "TLSv1.2";
  h = encode_proxy_v2(c);
  REQUIRE(h.size() == 16 + 12 + 3 + 5 + 3 + 7 + 7);
  const std::string field = h.substr(h.size() - 7);
  CHECK(field.substr(0, 3) == bytes({0x03, 0x00, 0x04}));
  std::string zeroed = h;
  zeroed.replace(h.size() - 4, 4, std::string(4, '\0'));
  const uint32_t crc = crc32c(zeroed);
  CHECK(h.substr(h.size() - 4) == bytes({static_cast<int>(crc >> 24), static_cast<int>((crc >> 16) & 0xff),
                                         static_cast<int>((crc >> 8) & 0xff), static_cast<int>(crc & 0xff)}));
}

TEST_CASE("proxy v2: the subject CN from an RFC 2253 string", "[fast][proxy_protocol]") {
  CHECK(subject_cn("CN=client.example.org,O=fipsproxy tests") == "client.example.org");
  CHECK(subject_cn("O=x,CN=a\\,b") == "a,b");
  CHECK(subject_cn("CN=caf\\C3\\A9,O=x") == "caf\xC3\xA9");
  CHECK(subject_cn("OU=CN=fake,CN=real") == "real");
  CHECK(subject_cn("O=x") == "");
}
