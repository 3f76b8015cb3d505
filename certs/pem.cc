#include "certs/pem.h"

#include <openssl/bio.h>
#include <openssl/bytestring.h>
#include <openssl/ec.h>
#include <openssl/ec_key.h>
#include <openssl/err.h>
#include <openssl/nid.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>

#include <fcntl.h>
#include <openssl/mem.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>

#include "certs/policy.h"
#include "proxy/base/log.h"

namespace fp::certs {
namespace {

Error cert_error(const std::string& path, const std::string& reason) {
  return make_error(Code::CertInvalid, Side::Internal, path + ": " + reason);
}

std::string last_ssl_error() {
  const uint32_t e = ERR_peek_last_error();
  ERR_clear_error();
  if (e == 0) return "unknown error";
  const char* r = ERR_reason_error_string(e);
  return r ? r : "unknown error";
}

// Reads the whole file; on failure returns the errno sentence.
bool read_file(const std::string& path, std::string& out, std::string& why) {
  errno = 0;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    why = std::string("cannot read: ") + std::strerror(errno ? errno : ENOENT);
    return false;
  }
  out.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  if (in.bad()) {
    why = std::string("cannot read: ") + std::strerror(errno ? errno : EIO);
    return false;
  }
  return true;
}

std::string hex(const unsigned char* p, size_t n) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < n; ++i) {
    out += kDigits[p[i] >> 4];
    out += kDigits[p[i] & 0xf];
  }
  return out;
}

bool self_signed(X509* cert) {
  // Issuer == subject and the key verifies its own signature: a trust anchor whose
  // self-signature is not validated (FIPS-POLICY §8 "Certificate signature hashes").
  if (X509_NAME_cmp(X509_get_issuer_name(cert), X509_get_subject_name(cert)) != 0) return false;
  bssl::UniquePtr<EVP_PKEY> key(X509_get_pubkey(cert));
  return key && X509_verify(cert, key.get()) == 1;
}

}  // namespace

Result<std::vector<bssl::UniquePtr<X509>>> load_certs(const std::string& path) {
  std::string data, why;
  if (!read_file(path, data, why)) return cert_error(path, why);
  bssl::UniquePtr<BIO> bio(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
  std::vector<bssl::UniquePtr<X509>> out;
  ERR_clear_error();
  for (;;) {
    bssl::UniquePtr<X509> x(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    if (!x) break;
    out.push_back(std::move(x));
  }
  const uint32_t err = ERR_peek_last_error();
  if (ERR_GET_LIB(err) == ERR_LIB_PEM && ERR_GET_REASON(err) == PEM_R_NO_START_LINE) {
    ERR_clear_error();  // normal end of input
  } else if (err != 0) {
    return cert_error(path, "bad PEM certificate: " + last_ssl_error());
  }
  if (out.empty()) return cert_error(path, "no certificate found");
  return out;
}

std::string key_mode_violation(unsigned mode, unsigned owner_uid) {
  char octal[8];
  std::snprintf(octal, sizeof octal, "%04o", mode & 07777);
  if ((mode & 0007) != 0) {
    return std::string("private key file is accessible by others (mode ") + octal +
           "); chmod 600 (or 640 with a root owner and a dedicated group)";
  }
  // PostgreSQL's rule for ssl_key_file: a root-owned key may be group-readable (never
  // group-writable), so a key shared through a group (Debian's ssl-cert, a Kubernetes fsGroup on
  // a Secret volume) works without giving it to the proxy's user.
  if ((mode & 0070) != 0 && (owner_uid != 0 || (mode & 0030) != 0)) {
    return std::string("private key file is accessible by its group (mode ") + octal +
           "); chmod 600, or make it root-owned with mode 640 or stricter";
  }
  return "";
}

Result<bssl::UniquePtr<EVP_PKEY>> load_private_key(const std::string& path, config::KeyPermissions perms) {
  // Read with open/fstat/read into one buffer that is wiped afterwards: an ifstream would leave
  // copies of the key in its own buffer and in every reallocation of a growing string.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) return cert_error(path, std::string("cannot read: ") + std::strerror(errno));
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    const int e = errno;
    ::close(fd);
    return cert_error(path, std::string("cannot read: ") + std::strerror(e));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return cert_error(path, "cannot read: not a regular file");
  }
  // The mode and owner of the file itself: stat() follows a Kubernetes `..data` symlink.
  if (std::string why = key_mode_violation(st.st_mode, st.st_uid); !why.empty()) {
    if (perms == config::KeyPermissions::Refuse) {
      ::close(fd);
      return cert_error(path, why + ", or set [process] key_permissions = \"warn\"");
    }
    FP_LOG_WARN("private key file permissions are too open (key_permissions = \"warn\")", {"path", path},
                {"reason", why});
  }
  constexpr off_t kMaxKeyFile = 1 << 20;
  if (st.st_size > kMaxKeyFile) {
    ::close(fd);
    return cert_error(path, "cannot read: larger than 1 MiB");
  }
  // Fixed capacity (the size fstat saw, plus one byte to notice growth): never reallocated.
  std::vector<uint8_t> data(static_cast<size_t>(st.st_size) + 1);
  size_t len = 0;
  for (;;) {
    const ssize_t n = ::read(fd, data.data() + len, data.size() - len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int e = errno;
      ::close(fd);
      OPENSSL_cleanse(data.data(), data.size());
      return cert_error(path, std::string("cannot read: ") + std::strerror(e));
    }
    if (n == 0) break;
    len += static_cast<size_t>(n);
    if (len == data.size()) {
      ::close(fd);
      OPENSSL_cleanse(data.data(), data.size());
      return cert_error(path, "cannot read: the file changed while it was read");
    }
  }
  ::close(fd);
  struct Wipe {
    std::vector<uint8_t>& d;
    ~Wipe() { OPENSSL_cleanse(d.data(), d.size()); }
  } wipe{data};
  // PEM decoding allocates through OPENSSL_malloc; BoringSSL's OPENSSL_free wipes every
  // allocation, so the decoded DER and the EVP_PKEY are cleansed when freed.
  bssl::UniquePtr<BIO> bio(BIO_new_mem_buf(data.data(), static_cast<int>(len)));
  ERR_clear_error();
  bssl::UniquePtr<EVP_PKEY> key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (!key) {
    const uint32_t err = ERR_peek_last_error();
    if (ERR_GET_LIB(err) == ERR_LIB_PEM && ERR_GET_REASON(err) == PEM_R_NO_START_LINE) {
      ERR_clear_error();
      return cert_error(path, "no private key found");
    }
    return cert_error(path, "bad PEM private key: " + last_ssl_error());
  }
  return key;
}

std::string describe_key(const EVP_PKEY* key) {
  if (key == nullptr) return "none";
  switch (EVP_PKEY_id(key)) {
    case EVP_PKEY_RSA:
      return "RSA " + std::to_string(EVP_PKEY_bits(key));
    case EVP_PKEY_EC: {
      const EC_GROUP* g = EC_KEY_get0_group(EVP_PKEY_get0_EC_KEY(const_cast<EVP_PKEY*>(key)));
      const int nid = g ? EC_GROUP_get_curve_name(g) : NID_undef;
      switch (nid) {
        case NID_X9_62_prime256v1: return "EC P-256";
        case NID_secp384r1: return "EC P-384";
        case NID_secp521r1: return "EC P-521";
        case NID_secp224r1: return "EC P-224";
        default: return std::string("EC ") + (OBJ_nid2sn(nid) ? OBJ_nid2sn(nid) : "unknown curve");
      }
    }
    case EVP_PKEY_ED25519: return "Ed25519";
    case EVP_PKEY_DSA: return "DSA";
    default: return "unknown key type " + std::to_string(EVP_PKEY_id(key));
  }
}

std::string key_policy_violation(const EVP_PKEY* key, config::Profile profile) {
  if (key == nullptr) return "no public key";
  switch (EVP_PKEY_id(key)) {
    case EVP_PKEY_RSA: {
      const unsigned bits = static_cast<unsigned>(EVP_PKEY_bits(key));
      if (policy::rsa_bits_allowed(bits)) return {};
      return "RSA key " + std::to_string(bits) + " bits not allowed (FIPS policy: 2048/3072/4096)";
    }
    case EVP_PKEY_EC: {
      const EC_GROUP* g = EC_KEY_get0_group(EVP_PKEY_get0_EC_KEY(const_cast<EVP_PKEY*>(key)));
      const int nid = g ? EC_GROUP_get_curve_name(g) : NID_undef;
      if (policy::ec_curve_allowed(profile, nid)) return {};
      return describe_key(key) + " key not allowed (FIPS policy: P-256/P-384" +
             std::string(profile == config::Profile::Extended ? "/P-521" : "") + ")";
    }
    default:
      return describe_key(key) + " key not allowed (FIPS policy: RSA or ECDSA)";
  }
}

std::string chain_policy_violation(const std::vector<X509*>& chain, config::Profile profile) {
  for (size_t i = 0; i < chain.size(); ++i) {
    X509* c = chain[i];
    auto where = [&] { return "certificate " + std::to_string(i) + " (" + subject_string(c) + "): "; };
    bssl::UniquePtr<EVP_PKEY> key(X509_get_pubkey(c));
    std::string why = key_policy_violation(key.get(), profile);
    if (!why.empty()) return where() + why;
    const bool anchor = i + 1 == chain.size() && self_signed(c);
    if (!anchor) {
      const int nid = X509_get_signature_nid(c);
      if (!policy::cert_signature_allowed(nid)) {
        const char* sn = OBJ_nid2ln(nid);
        return where() + "signature algorithm " + (sn ? sn : "unknown") +
               " not allowed (FIPS policy: SHA-256/384/512 with RSA, RSA-PSS or ECDSA)";
      }
    }
  }
  return {};
}

namespace {

std::string signature_violation(X509* c) {
  const int nid = X509_get_signature_nid(c);
  if (policy::cert_signature_allowed(nid)) return {};
  const char* sn = OBJ_nid2ln(nid);
  return std::string("signature algorithm ") + (sn ? sn : "unknown") +
         " not allowed (FIPS policy: SHA-256/384/512 with RSA, RSA-PSS or ECDSA)";
}

}  // namespace

std::string leaf_profile_violation(X509* leaf, LeafUse use, bool check_validity) {
  if (leaf == nullptr) return "no certificate";
  const long version = X509_get_version(leaf);
  if (version != X509_VERSION_3) {
    return "X.509 v" + std::to_string(version + 1) + " certificate not allowed (FIPS policy: v3 only)";
  }
  if (X509_get_ext_by_NID(leaf, NID_subject_alt_name, -1) < 0) {
    return "no subjectAltName (FIPS policy: the identity must be in a DNS, IP or URI SAN)";
  }
  int crit = 0;
  bssl::UniquePtr<EXTENDED_KEY_USAGE> eku(
      static_cast<EXTENDED_KEY_USAGE*>(X509_get_ext_d2i(leaf, NID_ext_key_usage, &crit, nullptr)));
  if (!eku && crit != -1) return "unparsable extendedKeyUsage extension";
  if (eku) {
    bool server = false, client = false, any = false;
    std::string names;
    for (size_t i = 0; i < sk_ASN1_OBJECT_num(eku.get()); ++i) {
      const ASN1_OBJECT* o = sk_ASN1_OBJECT_value(eku.get(), i);
      const int nid = OBJ_obj2nid(o);
      server |= nid == NID_server_auth;
      client |= nid == NID_client_auth;
      any |= nid == NID_anyExtendedKeyUsage;
      char buf[80];
      const char* sn = OBJ_nid2sn(nid);
      if (sn == nullptr || nid == NID_undef) {
        OBJ_obj2txt(buf, sizeof buf, o, 1);
        sn = buf;
      }
      names += (names.empty() ? "" : ",") + std::string(sn);
    }
    if (use == LeafUse::Server && any) {
      return "extended key usage anyExtendedKeyUsage not allowed on a server certificate (has: " + names + ")";
    }
    if (use == LeafUse::Server && !server) return "extended key usage lacks serverAuth (has: " + names + ")";
    if (use == LeafUse::Client && !client) return "extended key usage lacks clientAuth (has: " + names + ")";
  }
  if (check_validity) {
    if (X509_cmp_current_time(X509_get0_notAfter(leaf)) <= 0) return "certificate expired";
    if (X509_cmp_current_time(X509_get0_notBefore(leaf)) >= 0) return "certificate not yet valid";
  }
  return {};
}

std::string own_chain_violation(const std::vector<X509*>& chain, LeafUse use, config::Profile profile) {
  if (chain.empty()) return "no certificate";
  X509* leaf = chain.front();
  bssl::UniquePtr<EVP_PKEY> key(X509_get_pubkey(leaf));
  if (std::string why = key_policy_violation(key.get(), profile); !why.empty()) return why;
  if (std::string why = signature_violation(leaf); !why.empty()) return why;
  if (std::string why = leaf_profile_violation(leaf, use, true); !why.empty()) return why;
  for (size_t i = 1; i < chain.size(); ++i) {
    X509* c = chain[i];
    bssl::UniquePtr<EVP_PKEY> k(X509_get_pubkey(c));
    std::string why = key_policy_violation(k.get(), profile);
    const bool anchor = i + 1 == chain.size() && self_signed(c);
    if (why.empty() && !anchor) why = signature_violation(c);
    if (!why.empty()) return "chain certificate " + std::to_string(i) + " (" + subject_string(c) + "): " + why;
  }
  return {};
}

std::string subject_string(const X509* cert) {
  bssl::UniquePtr<BIO> bio(BIO_new(BIO_s_mem()));
  X509_NAME_print_ex(bio.get(), X509_get_subject_name(cert), 0, XN_FLAG_RFC2253);
  const uint8_t* data = nullptr;
  size_t len = 0;
  BIO_mem_contents(bio.get(), &data, &len);
  return std::string(reinterpret_cast<const char*>(data), len);
}

std::string cert_sha256_hex(const X509* cert) {
  uint8_t* der = nullptr;
  const int len = i2d_X509(const_cast<X509*>(cert), &der);
  if (len <= 0) return {};
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(der, static_cast<size_t>(len), md);
  OPENSSL_free(der);
  return hex(md, sizeof md);
}

}  // namespace fp::certs
