#include "certs/demo_pki.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec_key.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/nid.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cerrno>
#include <cstring>

#include "certs/pem.h"

namespace fp::certs {
namespace {

constexpr long kNotBeforeSeconds = -3600;        // now - 1h (clock skew)
constexpr long kNotAfterSeconds = 90L * 86400;   // now + 90 days
constexpr const char kTrustDomain[] = "spiffe://example.org/ns/default/sa/";

// Thrown inside the builder only; turned into an Error at the boundary.
struct Failure {
  std::string why;
  Code code = Code::CertInvalid;  // Io for file-system failures
};

void check(bool ok, const char* what) {
  if (ok) return;
  const uint32_t e = ERR_peek_last_error();
  ERR_clear_error();
  const char* r = e ? ERR_reason_error_string(e) : nullptr;
  throw Failure{std::string(what) + " failed" + (r ? std::string(": ") + r : std::string())};
}

// P-256 key from the module: EC_KEY_generate_key_fips draws from the module's DRBG and runs the
// pairwise consistency test.
bssl::UniquePtr<EVP_PKEY> new_p256_key() {
  bssl::UniquePtr<EC_KEY> ec(EC_KEY_new_by_curve_name(NID_X9_62_prime256v1));
  check(ec != nullptr, "EC_KEY_new_by_curve_name(P-256)");
  check(EC_KEY_generate_key_fips(ec.get()) == 1, "EC_KEY_generate_key_fips");
  bssl::UniquePtr<EVP_PKEY> key(EVP_PKEY_new());
  check(key && EVP_PKEY_assign_EC_KEY(key.get(), ec.release()) == 1, "EVP_PKEY_assign_EC_KEY");
  return key;
}

// 128 random bits (RAND_bytes: the module's CTR-DRBG), positive and non-zero.
void set_random_serial(X509* x) {
  uint8_t buf[16];
  check(RAND_bytes(buf, sizeof buf) == 1, "RAND_bytes");
  buf[0] &= 0x7f;
  buf[0] |= 0x40;  // keep 16 bytes of DER content and non-zero
  bssl::UniquePtr<BIGNUM> bn(BN_bin2bn(buf, sizeof buf, nullptr));
  check(bn != nullptr, "BN_bin2bn");
  check(BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(x)) != nullptr, "BN_to_ASN1_INTEGER");
}

// RFC 7093 section 2 method 1: the leftmost 160 bits of SHA-256 of subjectPublicKey.
std::string key_id(X509* x) {
  const ASN1_BIT_STRING* pub = X509_get0_pubkey_bitstr(x);
  check(pub != nullptr, "X509_get0_pubkey_bitstr");
  uint8_t md[SHA256_DIGEST_LENGTH];
  SHA256(ASN1_STRING_get0_data(pub), static_cast<size_t>(ASN1_STRING_length(pub)), md);
  return std::string(reinterpret_cast<const char*>(md), 20);
}

void add_conf_ext(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  bssl::UniquePtr<X509_EXTENSION> ext(X509V3_EXT_nconf_nid(nullptr, &ctx, nid, value.c_str()));
  check(ext != nullptr, "X509V3_EXT_nconf_nid");
  check(X509_add_ext(cert, ext.get(), -1) == 1, "X509_add_ext");
}

void add_key_ids(X509* cert, const std::string& ski, const std::string* issuer_ski) {
  bssl::UniquePtr<ASN1_OCTET_STRING> os(ASN1_OCTET_STRING_new());
  check(os && ASN1_OCTET_STRING_set(os.get(), reinterpret_cast<const uint8_t*>(ski.data()),
                                    static_cast<int>(ski.size())) == 1,
        "subjectKeyIdentifier");
  check(X509_add1_ext_i2d(cert, NID_subject_key_identifier, os.get(), 0, X509V3_ADD_DEFAULT) == 1,
        "X509_add1_ext_i2d(subjectKeyIdentifier)");
  if (issuer_ski == nullptr) return;
  bssl::UniquePtr<AUTHORITY_KEYID> akid(AUTHORITY_KEYID_new());
  check(akid != nullptr, "AUTHORITY_KEYID_new");
  akid->keyid = ASN1_OCTET_STRING_new();
  check(akid->keyid && ASN1_OCTET_STRING_set(akid->keyid, reinterpret_cast<const uint8_t*>(issuer_ski->data()),
                                             static_cast<int>(issuer_ski->size())) == 1,
        "authorityKeyIdentifier");
  check(X509_add1_ext_i2d(cert, NID_authority_key_identifier, akid.get(), 0, X509V3_ADD_DEFAULT) == 1,
        "X509_add1_ext_i2d(authorityKeyIdentifier)");
}

struct Spec {
  std::string cn;
  bool ca = false;
  std::vector<std::string> sans;  // "DNS:x", "IP:1.2.3.4", "URI:spiffe://..."
  std::string eku;                // "serverAuth", "clientAuth", "serverAuth,clientAuth"
};

struct Issued {
  bssl::UniquePtr<X509> cert;
  bssl::UniquePtr<EVP_PKEY> key;
  std::string ski;
};

Issued issue(const Spec& spec, const Issued* issuer) {
  Issued out;
  out.key = new_p256_key();
  bssl::UniquePtr<X509> x(X509_new());
  check(x && X509_set_version(x.get(), X509_VERSION_3) == 1, "X509_set_version");
  set_random_serial(x.get());
  X509_NAME* name = X509_get_subject_name(x.get());
  check(X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                                   reinterpret_cast<const uint8_t*>("fipsproxy demo"), -1, -1, 0) == 1 &&
            X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                       reinterpret_cast<const uint8_t*>(spec.cn.c_str()), -1, -1, 0) == 1,
        "subject");
  check(X509_set_issuer_name(x.get(), issuer ? X509_get_subject_name(issuer->cert.get()) : name) == 1, "issuer");
  check(X509_gmtime_adj(X509_getm_notBefore(x.get()), kNotBeforeSeconds) != nullptr &&
            X509_gmtime_adj(X509_getm_notAfter(x.get()), kNotAfterSeconds) != nullptr,
        "validity");
  check(X509_set_pubkey(x.get(), out.key.get()) == 1, "X509_set_pubkey");
  X509* iss = issuer ? issuer->cert.get() : x.get();
  if (spec.ca) {
    add_conf_ext(x.get(), iss, NID_basic_constraints, "critical,CA:TRUE,pathlen:0");
    add_conf_ext(x.get(), iss, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    add_conf_ext(x.get(), iss, NID_basic_constraints, "critical,CA:FALSE");
    add_conf_ext(x.get(), iss, NID_key_usage, "critical,digitalSignature");
    add_conf_ext(x.get(), iss, NID_ext_key_usage, spec.eku);
  }
  if (!spec.sans.empty()) {
    std::string v;
    for (const std::string& s : spec.sans) v += (v.empty() ? "" : ",") + s;
    add_conf_ext(x.get(), iss, NID_subject_alt_name, v);
  }
  out.ski = key_id(x.get());
  add_key_ids(x.get(), out.ski, issuer ? &issuer->ski : nullptr);
  EVP_PKEY* signer = issuer ? issuer->key.get() : out.key.get();
  check(X509_sign(x.get(), signer, EVP_sha256()) > 0, "X509_sign (ECDSA P-256 with SHA-256)");
  out.cert = std::move(x);
  return out;
}

std::string cert_pem(X509* x) {
  bssl::UniquePtr<BIO> bio(BIO_new(BIO_s_mem()));
  check(bio && PEM_write_bio_X509(bio.get(), x) == 1, "PEM_write_bio_X509");
  const uint8_t* data = nullptr;
  size_t len = 0;
  BIO_mem_contents(bio.get(), &data, &len);
  return std::string(reinterpret_cast<const char*>(data), len);
}

// PKCS#8 PrivateKeyInfo, unencrypted ("BEGIN PRIVATE KEY").
std::string key_pem(EVP_PKEY* key) {
  bssl::UniquePtr<BIO> bio(BIO_new(BIO_s_mem()));
  check(bio && PEM_write_bio_PKCS8PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) == 1,
        "PEM_write_bio_PKCS8PrivateKey");
  const uint8_t* data = nullptr;
  size_t len = 0;
  BIO_mem_contents(bio.get(), &data, &len);
  std::string out(reinterpret_cast<const char*>(data), len);
  return out;
}

std::string errno_text(const std::string& what) { return what + ": " + std::strerror(errno); }

// mkdir -p with 0700 on the last component (parents: 0755).
void make_dir(const std::string& dir) {
  for (size_t i = 1; i <= dir.size(); ++i) {
    if (i != dir.size() && dir[i] != '/') continue;
    const std::string part = dir.substr(0, i);
    const bool last = i == dir.size();
    if (::mkdir(part.c_str(), last ? 0700 : 0755) != 0 && errno != EEXIST) {
      throw Failure{errno_text("mkdir " + part), Code::Io};
    }
  }
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) throw Failure{errno_text("stat"), Code::Io};
  if (!S_ISDIR(st.st_mode)) throw Failure{"not a directory", Code::Io};
  if (::chmod(dir.c_str(), 0700) != 0) throw Failure{errno_text("chmod 0700"), Code::Io};
}

// True when `dir` exists and has an entry besides . and ..
bool non_empty_dir(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return false;
  bool found = false;
  while (dirent* e = ::readdir(d)) {
    if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) {
      found = true;
      break;
    }
  }
  ::closedir(d);
  return found;
}

// Writes DIR/.NAME.tmp with `mode` (fchmod: the umask does not widen or narrow it), fsyncs, and
// renames it over DIR/NAME: a reader (or fipsproxy's rotation watcher) sees the old file or the
// new one, never a partial one.
void write_atomic(const std::string& dir, const std::string& name, const std::string& data, mode_t mode) {
  const std::string path = dir + "/" + name;
  const std::string tmp = dir + "/." + name + ".tmp";
  ::unlink(tmp.c_str());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
  if (fd < 0) throw Failure{errno_text("create " + tmp), Code::Io};
  bool ok = ::fchmod(fd, mode) == 0;
  size_t off = 0;
  while (ok && off < data.size()) {
    const ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    ok = n > 0;
    if (ok) off += static_cast<size_t>(n);
  }
  ok = ok && ::fsync(fd) == 0;
  const int saved = errno;
  ::close(fd);
  if (!ok) {
    ::unlink(tmp.c_str());
    errno = saved;
    throw Failure{errno_text("write " + tmp), Code::Io};
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int e = errno;
    ::unlink(tmp.c_str());
    errno = e;
    throw Failure{errno_text("rename to " + path), Code::Io};
  }
}

std::string join_sans(const std::vector<std::string>& sans) {
  std::string out;
  for (const std::string& s : sans) out += (out.empty() ? "" : ", ") + s;
  return out;
}

}  // namespace

Result<std::vector<DemoPkiFile>> make_demo_pki(const std::string& dir_arg, bool force) {
  std::string dir = dir_arg;
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  auto fail = [&](const std::string& why, Code code = Code::CertInvalid) {
    return make_error(code, Side::Internal, dir + ": " + why);
  };
  if (dir.empty()) return fail("empty output directory", Code::Usage);
  if (!force && non_empty_dir(dir)) {
    return fail("directory is not empty (use --force to overwrite the demo files)", Code::Usage);
  }
  if (!FIPS_mode()) return fail("the FIPS module is not in FIPS mode; refusing to make keys", Code::FipsCheckFailed);

  try {
    const Spec ca_spec{.cn = "fipsproxy demo CA", .ca = true};
    const Spec server_spec{.cn = "server.example.org",
                           .sans = {"DNS:localhost", "DNS:server.example.org", "IP:127.0.0.1", "IP:::1",
                                    std::string("URI:") + kTrustDomain + "server"},
                           .eku = "serverAuth"};
    const Spec client_spec{.cn = "client.example.org",
                           .sans = {std::string("URI:") + kTrustDomain + "client", "DNS:client.example.org"},
                           .eku = "clientAuth"};
    const Spec peer_spec{.cn = "peer.example.org",
                         .sans = {std::string("URI:") + kTrustDomain + "peer", "DNS:peer.example.org"},
                         .eku = "serverAuth,clientAuth"};

    Issued ca = issue(ca_spec, nullptr);
    Issued server = issue(server_spec, &ca);
    Issued client = issue(client_spec, &ca);
    Issued peer = issue(peer_spec, &ca);

    // Our own policy, exactly as `run` applies it to own certificates at load (strict profile).
    struct Use {
      const char* name;
      Issued* leaf;
      LeafUse use;
    };
    for (const Use& u : {Use{"server", &server, LeafUse::Server}, Use{"client", &client, LeafUse::Client},
                         Use{"peer", &peer, LeafUse::Server}, Use{"peer", &peer, LeafUse::Client}}) {
      std::string why = own_chain_violation({u.leaf->cert.get(), ca.cert.get()}, u.use, config::Profile::Strict);
      if (!why.empty()) return fail(std::string(u.name) + ".pem violates the FIPS policy: " + why);
    }

    make_dir(dir);
    std::vector<DemoPkiFile> files;
    auto put = [&](const std::string& name, const std::string& data, mode_t mode, const std::string& summary) {
      write_atomic(dir, name, data, mode);
      files.push_back({name, dir + "/" + name, summary});
    };
    put("ca.pem", cert_pem(ca.cert.get()), 0644, "demo CA certificate (EC P-256, ecdsa-with-SHA256; key discarded)");
    put("server.pem", cert_pem(server.cert.get()), 0644,
        "server certificate: " + join_sans(server_spec.sans) + " (EKU serverAuth)");
    put("server.key", key_pem(server.key.get()), 0600, "server key (EC P-256, PKCS#8)");
    put("client.pem", cert_pem(client.cert.get()), 0644,
        "client certificate: " + join_sans(client_spec.sans) + " (EKU clientAuth)");
    put("client.key", key_pem(client.key.get()), 0600, "client key (EC P-256, PKCS#8)");
    put("peer.pem", cert_pem(peer.cert.get()), 0644,
        "peer workload certificate: " + join_sans(peer_spec.sans) + " (EKU serverAuth, clientAuth)");
    put("peer.key", key_pem(peer.key.get()), 0600, "peer key (EC P-256, PKCS#8)");
    return files;
  } catch (const Failure& f) {
    return fail(f.why, f.code);
  }
}

}  // namespace fp::certs
