#include "certs/cert_info.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/nid.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cerrno>
#include <cstring>

#include "certs/pem.h"

namespace fp::certs {
namespace {

std::string name_string(const X509_NAME* name) {
  bssl::UniquePtr<BIO> b(BIO_new(BIO_s_mem()));
  if (!b || X509_NAME_print_ex(b.get(), name, 0, XN_FLAG_RFC2253) < 0) return "?";
  const uint8_t* data = nullptr;
  size_t len = 0;
  BIO_mem_contents(b.get(), &data, &len);
  return std::string(reinterpret_cast<const char*>(data), len);
}

std::string time_string(const ASN1_TIME* t) {
  if (t == nullptr) return {};
  bssl::UniquePtr<ASN1_GENERALIZEDTIME> g(ASN1_TIME_to_generalizedtime(t, nullptr));
  if (!g) return "?";
  // YYYYMMDDHHMMSSZ -> YYYY-MM-DDTHH:MM:SSZ
  const std::string s(reinterpret_cast<const char*>(ASN1_STRING_get0_data(g.get())),
                      static_cast<size_t>(ASN1_STRING_length(g.get())));
  if (s.size() != 15 || s.back() != 'Z') return s;
  return s.substr(0, 4) + "-" + s.substr(4, 2) + "-" + s.substr(6, 2) + "T" + s.substr(8, 2) + ":" +
         s.substr(10, 2) + ":" + s.substr(12, 2) + "Z";
}

std::string sig_hash_of(int sig_nid) {
  int md = NID_undef, pk = NID_undef;
  if (OBJ_find_sigid_algs(sig_nid, &md, &pk) != 1) return sig_nid == NID_rsassaPss ? "RSA-PSS (see params)" : "";
  switch (md) {
    case NID_sha1: return "SHA-1";
    case NID_sha224: return "SHA-224";
    case NID_sha256: return "SHA-256";
    case NID_sha384: return "SHA-384";
    case NID_sha512: return "SHA-512";
    case NID_md5: return "MD5";
    default: {
      const char* sn = OBJ_nid2sn(md);
      return sn ? sn : "";
    }
  }
}

Error file_error(const std::string& path, const std::string& why) {
  return make_error(Code::CertInvalid, Side::Internal, path + ": " + why);
}

}  // namespace

Result<std::vector<CertInfo>> describe_chain_file(const std::string& path) {
  auto certs = load_certs(path);
  if (!certs) return certs.error();
  std::vector<CertInfo> out;
  for (const auto& c : certs.value()) {
    X509* x = c.get();
    CertInfo i;
    i.subject = subject_string(x);
    i.issuer = name_string(X509_get_issuer_name(x));
    bssl::UniquePtr<BIGNUM> bn(ASN1_INTEGER_to_BN(X509_get_serialNumber(x), nullptr));
    if (bn) {
      bssl::UniquePtr<char> h(BN_bn2hex(bn.get()));
      if (h) i.serial = h.get();
    }
    bssl::UniquePtr<EVP_PKEY> key(X509_get_pubkey(x));
    i.key = describe_key(key.get());
    const int sig = X509_get_signature_nid(x);
    const char* ln = OBJ_nid2ln(sig);
    i.signature = ln ? ln : "unknown";
    i.sig_hash = sig_hash_of(sig);
    i.not_before = time_string(X509_get0_notBefore(x));
    i.not_after = time_string(X509_get0_notAfter(x));
    i.self_signed = X509_NAME_cmp(X509_get_subject_name(x), X509_get_issuer_name(x)) == 0;
    i.sha256 = cert_sha256_hex(x);
    out.push_back(std::move(i));
  }
  ERR_clear_error();
  return out;
}

Result<std::vector<CrlInfo>> describe_crl_file(const std::string& path) {
  errno = 0;
  bssl::UniquePtr<BIO> bio(BIO_new_file(path.c_str(), "r"));
  if (!bio) {
    ERR_clear_error();
    return file_error(path, std::string("cannot read: ") + (errno ? std::strerror(errno) : "open failed"));
  }
  std::vector<CrlInfo> out;
  for (;;) {
    bssl::UniquePtr<X509_CRL> crl(PEM_read_bio_X509_CRL(bio.get(), nullptr, nullptr, nullptr));
    if (!crl) {
      const uint32_t e = ERR_peek_last_error();
      ERR_clear_error();
      if (ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE) break;
      return file_error(path, "bad PEM CRL");
    }
    CrlInfo i;
    i.issuer = name_string(X509_CRL_get_issuer(crl.get()));
    i.last_update = time_string(X509_CRL_get0_lastUpdate(crl.get()));
    i.next_update = time_string(X509_CRL_get0_nextUpdate(crl.get()));
    STACK_OF(X509_REVOKED)* rev = X509_CRL_get_REVOKED(crl.get());
    i.revoked = rev ? sk_X509_REVOKED_num(rev) : 0;
    out.push_back(std::move(i));
  }
  if (out.empty()) return file_error(path, "no CRL found");
  return out;
}

}  // namespace fp::certs
