// `fipsproxy certs demo` (certs/demo_pki) and `certs inspect` (certs/inspect): the demo PKI is
// made by the module, has the promised files, modes and extensions, passes our own policy
// (build_context accepts every identity and real in-memory mTLS handshakes succeed), and inspect
// gives the right verdict for compliant and non-compliant certificates.

#include "certs/demo_pki.h"

#include <sys/stat.h>

#include <openssl/bn.h>
#include <openssl/x509v3.h>

#include <catch2/catch.hpp>

#include <set>

#include "certs/inspect.h"
#include "certs/pem.h"
#include "certs/tls_context.h"
#include "tests/support/support.h"
#include "tests/unit/certs/test_pki.h"
#include "tests/unit/certs/tls_harness.h"

using namespace fp::certs;
using namespace fp::certs::testing;
using fp::config::Profile;
using fp::config::TlsConfig;

namespace {

int mode_of(const std::string& path) {
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return static_cast<int>(st.st_mode & 07777);
}

bool contains(const std::string& hay, const std::string& needle) { return hay.find(needle) != std::string::npos; }

std::string all_violations(const InspectedCert& c) {
  std::string s;
  for (const auto& v : c.violations) s += v + "\n";
  return s;
}

struct Demo {
  fp::test::TempDir tmp{"fp-demo-pki"};
  std::string dir = tmp.file("pki");
  Demo() {
    auto r = make_demo_pki(dir, false);
    INFO((r ? std::string() : r.error().detail));
    REQUIRE(r);
    REQUIRE(r->size() == 7);
  }
  std::string f(const std::string& name) const { return dir + "/" + name; }
};

TlsConfig tls(const Demo& d, const std::string& leaf) {
  TlsConfig t;
  t.cert = d.f(leaf + ".pem");
  t.key = d.f(leaf + ".key");
  t.ca = d.f("ca.pem");
  return t;
}

}  // namespace

TEST_CASE("certs demo writes the PKI with safe modes", "[fast][demo]") {
  Demo d;
  CHECK(mode_of(d.dir) == 0700);
  for (const char* c : {"ca.pem", "server.pem", "client.pem", "peer.pem"}) CHECK(mode_of(d.f(c)) == 0644);
  for (const char* k : {"server.key", "client.key", "peer.key"}) {
    CHECK(mode_of(d.f(k)) == 0600);
    const std::string pem = fp::test::read_file(d.f(k));
    CHECK(pem.rfind("-----BEGIN PRIVATE KEY-----", 0) == 0);  // PKCS#8
    auto key = load_private_key(d.f(k));
    REQUIRE(key);
    CHECK(describe_key(key->get()) == "EC P-256");
  }
  CHECK_FALSE(fp::test::file_exists(d.f("ca.key")));  // the CA key is never written
}

TEST_CASE("certs demo certificates: v3, P-256/SHA-256, random 128-bit serials, SKI/AKI, SANs, EKU", "[fast][demo]") {
  Demo d;
  auto ca = load_certs(d.f("ca.pem"));
  REQUIRE(ca);
  X509* root = (*ca)[0].get();
  CHECK(X509_check_ca(root) > 0);
  CHECK((X509_get_key_usage(root) & KU_KEY_CERT_SIGN) != 0);
  std::set<std::string> serials;
  for (const char* name : {"ca.pem", "server.pem", "client.pem", "peer.pem"}) {
    INFO(name);
    auto certs = load_certs(d.f(name));
    REQUIRE(certs);
    REQUIRE(certs->size() == 1);
    X509* x = (*certs)[0].get();
    CHECK(X509_get_version(x) == X509_VERSION_3);
    CHECK(X509_get_signature_nid(x) == NID_ecdsa_with_SHA256);
    bssl::UniquePtr<EVP_PKEY> key(X509_get_pubkey(x));
    CHECK(describe_key(key.get()) == "EC P-256");
    CHECK(X509_get_ext_by_NID(x, NID_subject_key_identifier, -1) >= 0);
    bssl::UniquePtr<BIGNUM> bn(ASN1_INTEGER_to_BN(X509_get_serialNumber(x), nullptr));
    REQUIRE(bn);
    CHECK(BN_num_bits(bn.get()) == 127);  // 16 random bytes, top bit clear, next bit set
    serials.insert(bssl::UniquePtr<char>(BN_bn2hex(bn.get())).get());
    // validity now-1h .. now+90d (within a few minutes of slack)
    int days = 0, secs = 0;
    REQUIRE(ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(x), X509_get0_notAfter(x)) == 1);
    CHECK(days * 86400L + secs == 90L * 86400 + 3600);
    if (std::string(name) != "ca.pem") {
      CHECK(X509_get_ext_by_NID(x, NID_authority_key_identifier, -1) >= 0);
      CHECK(X509_check_issued(root, x) == X509_V_OK);
      CHECK(X509_check_ca(x) == 0);
    }
  }
  CHECK(serials.size() == 4);

  auto server = inspect_file(d.f("server.pem"), Profile::Strict);
  REQUIRE(server);
  CHECK((*server)[0].sans == std::vector<std::string>{"DNS:localhost", "DNS:server.example.org", "IP:127.0.0.1",
                                                      "IP:::1", "URI:spiffe://example.org/ns/default/sa/server"});
  CHECK((*server)[0].eku == std::vector<std::string>{"serverAuth"});
  auto client = inspect_file(d.f("client.pem"), Profile::Strict);
  REQUIRE(client);
  CHECK((*client)[0].sans ==
        std::vector<std::string>{"URI:spiffe://example.org/ns/default/sa/client", "DNS:client.example.org"});
  CHECK((*client)[0].eku == std::vector<std::string>{"clientAuth"});
  auto peer = inspect_file(d.f("peer.pem"), Profile::Strict);
  REQUIRE(peer);
  CHECK((*peer)[0].sans[0] == "URI:spiffe://example.org/ns/default/sa/peer");
  CHECK((*peer)[0].eku == std::vector<std::string>{"serverAuth", "clientAuth"});
}

TEST_CASE("certs demo certificates pass our policy: build_context accepts them, mTLS handshakes work",
          "[fast][demo]") {
  Demo d;
  // Inbound: server.pem requires client certs, allows the demo client's SPIFFE ID.
  TlsConfig s = tls(d, "server");
  s.require_client_cert = true;
  s.allow_spiffe = {"spiffe://example.org/ns/default/sa/client"};
  auto server_ctx = build_context(Role::Server, "inbound", s);
  INFO((server_ctx ? std::string() : server_ctx.error().detail));
  REQUIRE(server_ctx);
  // Outbound: client.pem, expects the server's SPIFFE ID.
  TlsConfig c = tls(d, "client");
  c.allow_spiffe = {"spiffe://example.org/ns/default/sa/server"};
  auto client_ctx = build_context(Role::Client, "peer", c);
  INFO((client_ctx ? std::string() : client_ctx.error().detail));
  REQUIRE(client_ctx);
  for (const char* sni : {"server.example.org", "localhost"}) {
    auto sv = (*server_ctx)->new_ssl("");
    auto cl = (*client_ctx)->new_ssl(sni);
    PairOutcome o = handshake_in_memory(cl.get(), sv.get());
    INFO(sni << " client: " << (o.client.error ? o.client.error->detail : "") << " server: "
              << (o.server.error ? o.server.error->detail : ""));
    CHECK(o.client.ok);
    CHECK(o.server.ok);
    CHECK(o.server.info.peer.spiffe_id == "spiffe://example.org/ns/default/sa/client");
  }
  // The second workload identity serves both roles.
  TlsConfig ps = tls(d, "peer");
  ps.require_client_cert = true;
  ps.allow_spiffe = {"spiffe://example.org/ns/default/sa/peer"};
  TlsConfig pc = tls(d, "peer");
  pc.allow_spiffe = {"spiffe://example.org/ns/default/sa/peer"};
  auto peer_server = build_context(Role::Server, "peer-in", ps);
  auto peer_client = build_context(Role::Client, "peer-out", pc);
  REQUIRE(peer_server);
  REQUIRE(peer_client);
  auto sv = (*peer_server)->new_ssl("");
  auto cl = (*peer_client)->new_ssl("peer.example.org");
  PairOutcome o = handshake_in_memory(cl.get(), sv.get());
  CHECK(o.client.ok);
  CHECK(o.server.ok);
  CHECK(o.client.info.peer.spiffe_id == "spiffe://example.org/ns/default/sa/peer");

  // The client certificate is not a server certificate (EKU clientAuth only).
  auto wrong = build_context(Role::Server, "wrong", tls(d, "client"));
  REQUIRE_FALSE(wrong);
  CHECK(contains(wrong.error().detail, "lacks serverAuth"));
}

TEST_CASE("certs demo refuses a non-empty directory unless forced", "[fast][demo]") {
  Demo d;
  const std::string before = fp::test::read_file(d.f("server.pem"));
  auto again = make_demo_pki(d.dir, false);
  REQUIRE_FALSE(again);
  CHECK(again.error().code == fp::Code::Usage);
  CHECK(contains(again.error().detail, d.dir + ": directory is not empty"));
  CHECK(fp::test::read_file(d.f("server.pem")) == before);
  auto forced = make_demo_pki(d.dir + "/", true);
  REQUIRE(forced);
  CHECK(fp::test::read_file(d.f("server.pem")) != before);
  CHECK(mode_of(d.f("server.key")) == 0600);
  // An empty existing directory is fine without --force.
  fp::test::TempDir empty("fp-demo-empty");
  CHECK(make_demo_pki(empty.path(), false));
  // A path through a regular file cannot be made.
  fp::test::write_file(d.tmp.file("plain"), "x");
  auto bad = make_demo_pki(d.tmp.file("plain") + "/sub", false);
  REQUIRE_FALSE(bad);
  CHECK(bad.error().code == fp::Code::Io);
}

TEST_CASE("certs inspect: verdicts with reasons for compliant and non-compliant certificates", "[fast][inspect]") {
  Demo d;
  for (const char* name : {"ca.pem", "server.pem", "client.pem", "peer.pem"}) {
    auto r = inspect_file(d.f(name), Profile::Strict);
    REQUIRE(r);
    INFO(name << ": " << all_violations((*r)[0]));
    CHECK((*r)[0].violations.empty());
    CHECK((*r)[0].days_left >= 89);
    CHECK((*r)[0].sig_hash == "SHA-256");
    CHECK((*r)[0].key == "EC P-256");
  }
  auto ca = inspect_file(d.f("ca.pem"), Profile::Strict);
  CHECK((*ca)[0].ca);
  CHECK((*ca)[0].self_signed);

  struct Case {
    const char* file;
    const char* reason;
  };
  for (const Case& k : {Case{"rsa1024.pem", "RSA key 1024 bits not allowed"},
                        Case{"sha1.pem", "signature algorithm ecdsa-with-SHA1 not allowed"},
                        Case{"expired.pem", "certificate expired"},
                        Case{"v1.pem", "X.509 v1 certificate not allowed"},
                        Case{"nosan.pem", "no subjectAltName"},
                        Case{"eku-any.pem", "anyExtendedKeyUsage not allowed on a server certificate"},
                        Case{"p521.pem", "allowed only with profile = \"extended\""}}) {
    auto r = inspect_file(pki().path(k.file), Profile::Strict);
    REQUIRE(r);
    INFO(k.file << ": " << all_violations((*r)[0]));
    CHECK(contains(all_violations((*r)[0]), k.reason));
  }
  for (const char* ok : {"server.pem", "rsa2048.pem", "eku-client.pem", "eku-none.pem"}) {
    auto r = inspect_file(pki().path(ok), Profile::Strict);
    REQUIRE(r);
    INFO(ok << ": " << all_violations((*r)[0]));
    CHECK((*r)[0].violations.empty());
  }
  auto p521 = inspect_file(pki().path("p521.pem"), Profile::Extended);
  REQUIRE(p521);
  CHECK((*p521)[0].violations.empty());
  auto rsa = inspect_file(pki().path("rsa2048.pem"), Profile::Strict);
  CHECK((*rsa)[0].key == "RSA 2048");

  auto missing = inspect_file(d.f("nope.pem"), Profile::Strict);
  REQUIRE_FALSE(missing);
  CHECK(missing.error().detail == d.f("nope.pem") + ": cannot read: No such file or directory");
  fp::test::write_file(d.tmp.file("junk.pem"), "not a certificate\n");
  auto junk = inspect_file(d.tmp.file("junk.pem"), Profile::Strict);
  REQUIRE_FALSE(junk);
  CHECK(contains(junk.error().detail, "junk.pem: no certificate found"));
}
