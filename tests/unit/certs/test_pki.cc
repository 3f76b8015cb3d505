#include "tests/unit/certs/test_pki.h"

#include <sys/stat.h>

#include <openssl/bn.h>
#include <openssl/ec_key.h>
#include <openssl/nid.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

#include <memory>
#include <stdexcept>

namespace fp::certs::testing {
namespace {

void check(bool ok, const char* what) {
  if (!ok) throw std::runtime_error(std::string("test PKI: ") + what + " failed");
}

void add_ext(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  bssl::UniquePtr<X509_EXTENSION> ext(X509V3_EXT_nconf_nid(nullptr, &ctx, nid, value.c_str()));
  check(ext != nullptr, "X509V3_EXT_nconf_nid");
  check(X509_add_ext(cert, ext.get(), -1) == 1, "X509_add_ext");
}

}  // namespace

bssl::UniquePtr<EVP_PKEY> make_ec_key(int curve_nid) {
  bssl::UniquePtr<EC_KEY> ec(EC_KEY_new_by_curve_name(curve_nid));
  check(ec && EC_KEY_generate_key(ec.get()) == 1, "EC_KEY_generate_key");
  bssl::UniquePtr<EVP_PKEY> key(EVP_PKEY_new());
  check(EVP_PKEY_assign_EC_KEY(key.get(), ec.release()) == 1, "EVP_PKEY_assign_EC_KEY");
  return key;
}

bssl::UniquePtr<EVP_PKEY> make_rsa_key(int bits) {
  bssl::UniquePtr<RSA> rsa(RSA_new());
  bssl::UniquePtr<BIGNUM> e(BN_new());
  check(rsa && e && BN_set_word(e.get(), RSA_F4) == 1, "BN_set_word");
  check(RSA_generate_key_ex(rsa.get(), bits, e.get(), nullptr) == 1, "RSA_generate_key_ex");
  bssl::UniquePtr<EVP_PKEY> key(EVP_PKEY_new());
  check(EVP_PKEY_assign_RSA(key.get(), rsa.release()) == 1, "EVP_PKEY_assign_RSA");
  return key;
}

bssl::UniquePtr<X509> make_cert(const CertSpec& spec, EVP_PKEY* key, X509* issuer, EVP_PKEY* issuer_key) {
  static long serial = 1000;
  bssl::UniquePtr<X509> x(X509_new());
  check(x && X509_set_version(x.get(), spec.version) == 1, "X509_set_version");
  check(ASN1_INTEGER_set(X509_get_serialNumber(x.get()), ++serial) == 1, "serial");
  X509_NAME* name = X509_get_subject_name(x.get());
  check(X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, reinterpret_cast<const uint8_t*>("fipsproxy test"),
                                   -1, -1, 0) == 1 &&
            X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                       reinterpret_cast<const uint8_t*>(spec.cn.c_str()), -1, -1, 0) == 1,
        "subject");
  check(X509_set_issuer_name(x.get(), issuer ? X509_get_subject_name(issuer) : name) == 1, "issuer");
  check(X509_gmtime_adj(X509_getm_notBefore(x.get()), spec.not_before_s) != nullptr &&
            X509_gmtime_adj(X509_getm_notAfter(x.get()), spec.not_after_s) != nullptr,
        "validity");
  check(X509_set_pubkey(x.get(), key) == 1, "X509_set_pubkey");
  X509* iss = issuer ? issuer : x.get();
  if (spec.version != 2) {
    // v1: no extensions.
  } else if (spec.ca) {
    add_ext(x.get(), iss, NID_basic_constraints, "critical,CA:TRUE");
    add_ext(x.get(), iss, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    add_ext(x.get(), iss, NID_basic_constraints, "critical,CA:FALSE");
    add_ext(x.get(), iss, NID_key_usage, "critical,digitalSignature,keyEncipherment");
    if (!spec.eku.empty()) add_ext(x.get(), iss, NID_ext_key_usage, spec.eku);
  }
  if (!spec.sans.empty() && spec.version == 2) {
    std::string v;
    for (const std::string& s : spec.sans) v += (v.empty() ? "" : ",") + s;
    add_ext(x.get(), iss, NID_subject_alt_name, v);
  }
  check(X509_sign(x.get(), issuer_key ? issuer_key : key, spec.md ? spec.md : EVP_sha256()) > 0, "X509_sign");
  return x;
}

void write_certs_pem(const std::string& path, const std::vector<X509*>& certs) {
  bssl::UniquePtr<BIO> bio(BIO_new_file(path.c_str(), "w"));
  check(bio != nullptr, "BIO_new_file");
  for (X509* c : certs) check(PEM_write_bio_X509(bio.get(), c) == 1, "PEM_write_bio_X509");
}

void write_key_pem(const std::string& path, EVP_PKEY* key) {
  {
    bssl::UniquePtr<BIO> bio(BIO_new_file(path.c_str(), "w"));
    check(bio != nullptr, "BIO_new_file");
    check(PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) == 1,
          "PEM_write_bio_PrivateKey");
  }
  // Private: the loader refuses a key others may read ([process] key_permissions).
  check(::chmod(path.c_str(), 0600) == 0, "chmod 0600");
}

const Pki& pki() {
  static const Pki* p = [] {
    static fp::test::TempDir dir("fp-certs-pki");
    auto* out = new Pki;
    out->dir = dir.path();
    auto ca_key = make_ec_key(NID_X9_62_prime256v1);
    auto ca = make_cert({.cn = "fipsproxy test CA", .ca = true, .not_after_s = 365L * 86400}, ca_key.get(),
                        nullptr, nullptr);
    auto other_key = make_ec_key(NID_X9_62_prime256v1);
    auto other = make_cert({.cn = "untrusted CA", .ca = true}, other_key.get(), nullptr, nullptr);
    out->ca = out->path("ca.pem");
    out->other_ca = out->path("other-ca.pem");
    write_certs_pem(out->ca, {ca.get()});
    write_certs_pem(out->other_ca, {other.get()});

    auto leaf = [&](const std::string& name, CertSpec spec, bssl::UniquePtr<EVP_PKEY> key, X509* issuer,
                    EVP_PKEY* issuer_key) {
      auto cert = make_cert(spec, key.get(), issuer, issuer_key);
      write_certs_pem(out->path(name + ".pem"), {cert.get()});
      write_key_pem(out->path(name + ".key"), key.get());
    };
    const std::vector<std::string> server_sans = {"DNS:server.test",
                                                  "URI:spiffe://test.example/ns/prod/sa/server"};
    leaf("server", {.cn = "server.test", .sans = server_sans}, make_ec_key(NID_X9_62_prime256v1), ca.get(),
         ca_key.get());
    leaf("client",
         {.cn = "client", .sans = {"URI:spiffe://test.example/ns/prod/sa/client", "DNS:client.test"}},
         make_ec_key(NID_X9_62_prime256v1), ca.get(), ca_key.get());
    leaf("rsa2048", {.cn = "rsa2048", .sans = {"DNS:server.test"}}, make_rsa_key(2048), ca.get(), ca_key.get());
    leaf("rsa1024", {.cn = "rsa1024", .sans = {"DNS:server.test"}}, make_rsa_key(1024), ca.get(), ca_key.get());
    leaf("sha1", {.cn = "sha1", .sans = {"DNS:server.test"}, .md = EVP_sha1()}, make_ec_key(NID_X9_62_prime256v1),
         ca.get(), ca_key.get());
    leaf("expired", {.cn = "expired", .sans = {"DNS:server.test"}, .not_before_s = -3 * 86400, .not_after_s = -86400},
         make_ec_key(NID_X9_62_prime256v1), ca.get(), ca_key.get());
    leaf("stranger", {.cn = "stranger", .sans = server_sans}, make_ec_key(NID_X9_62_prime256v1), other.get(),
         other_key.get());
    leaf("p521", {.cn = "p521", .sans = {"DNS:server.test"}}, make_ec_key(NID_secp521r1), ca.get(), ca_key.get());
    auto p256 = [] { return make_ec_key(NID_X9_62_prime256v1); };
    const std::vector<std::string> both_sans = {"DNS:server.test", "URI:spiffe://test.example/ns/prod/sa/client"};
    leaf("eku-server", {.cn = "eku-server", .sans = both_sans, .eku = "serverAuth"}, p256(), ca.get(), ca_key.get());
    leaf("eku-client", {.cn = "eku-client", .sans = both_sans, .eku = "clientAuth"}, p256(), ca.get(), ca_key.get());
    leaf("eku-any", {.cn = "eku-any", .sans = both_sans, .eku = "anyExtendedKeyUsage,serverAuth"}, p256(), ca.get(),
         ca_key.get());
    leaf("eku-none", {.cn = "eku-none", .sans = both_sans, .eku = ""}, p256(), ca.get(), ca_key.get());
    leaf("v1", {.cn = "server.test", .sans = both_sans, .version = 0}, p256(), ca.get(), ca_key.get());
    leaf("nosan", {.cn = "server.test"}, p256(), ca.get(), ca_key.get());
    return out;
  }();
  return *p;
}

}  // namespace fp::certs::testing
