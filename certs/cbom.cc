#include "certs/cbom.h"

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/obj.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <set>

#include "build_info.h"
#include "certs/audit_chain.h"
#include "certs/pem.h"
#include "certs/policy.h"
#include "config/config.h"
#include "proxy/base/json.h"

namespace fp::certs {

namespace {

using base::JsonObject;

// Not "fips140-3-l1": this build is compiled from source and is not the CMVP-validated binary.
constexpr const char* kCertificationLevel = "none";

#if defined(__x86_64__)
constexpr const char* kPlatform = "x86_64";
#elif defined(__aarch64__)
constexpr const char* kPlatform = "armv8-a";
#else
constexpr const char* kPlatform = "other";
#endif

// Dependency versions (Debian bookworm packages the build uses; deploy/bootstrap.sh pins them).
struct Library {
  const char* ref;
  const char* name;
  const char* version;
  const char* purl;
  const char* description;
};
constexpr Library kLibraries[] = {
    {"lib/libuv", "libuv", "1.44.2", "pkg:deb/debian/libuv1@1.44.2-1%2Bdeb12u1?distro=debian-12",
     "event loop (Debian libuv1 1.44.2-1+deb12u1)"},
    {"lib/llhttp", "llhttp", "8.1.0", "pkg:deb/debian/node-llhttp@8.1.0?distro=debian-12",
     "HTTP/1.1 parser, built from Debian node-llhttp's C sources"},
    {"lib/tomlplusplus", "toml++", "3.3.0", "pkg:deb/debian/libtomlplusplus-dev@3.3.0%2Bds-1?distro=debian-12",
     "TOML configuration parser (Debian libtomlplusplus 3.3.0+ds-1)"},
};

std::string array_of(const std::vector<std::string>& raw_items) {
  std::string out = "[";
  for (size_t i = 0; i < raw_items.size(); ++i) {
    if (i) out += ',';
    out += raw_items[i];
  }
  out += ']';
  return out;
}

std::string property(std::string_view name, std::string_view value) {
  return JsonObject().str("name", name).str("value", value).done();
}

std::string sha256_hash(const std::string& hex) {
  return array_of({JsonObject().str("alg", "SHA-256").str("content", hex).done()});
}

bool is_hex64(const std::string& s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
         });
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::string uuid_v4() {
  uint8_t b[16];
  if (RAND_bytes(b, sizeof(b)) != 1) {
    // RAND_bytes does not fail in BoringSSL (it aborts instead); keep the document valid anyway.
    std::fill(b, b + sizeof(b), 0);
  }
  b[6] = static_cast<uint8_t>((b[6] & 0x0f) | 0x40);
  b[8] = static_cast<uint8_t>((b[8] & 0x3f) | 0x80);
  char out[37];
  std::snprintf(out, sizeof(out), "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
                b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
  return out;
}

std::string rfc3339(time_t t) {
  struct tm tm_utc {};
  gmtime_r(&t, &tm_utc);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm_utc);
  return buf;
}

config::Profile parse_profile(const std::string& name) {
  for (auto p : {config::Profile::Strict, config::Profile::Tls12Only, config::Profile::Extended}) {
    if (name == config::profile_name(p)) return p;
  }
  return config::Profile::Strict;
}

// ---- algorithm components -------------------------------------------------------------------

struct Algo {
  std::string ref;
  std::string name;
  std::string primitive;
  std::string param;      // parameterSetIdentifier
  std::string curve;
  std::string mode;
  std::string padding;
  std::vector<std::string> functions;
  int level = -1;         // classicalSecurityLevel
  std::string oid;
  std::string note;       // description
};

std::string algo_component(const Algo& a) {
  JsonObject ap;
  ap.str("primitive", a.primitive);
  if (!a.param.empty()) ap.str("parameterSetIdentifier", a.param);
  if (!a.curve.empty()) ap.str("curve", a.curve);
  ap.str("executionEnvironment", "software-plain-ram").str("implementationPlatform", kPlatform);
  ap.str_array("certificationLevel", {kCertificationLevel});
  if (!a.mode.empty()) ap.str("mode", a.mode);
  if (!a.padding.empty()) ap.str("padding", a.padding);
  if (!a.functions.empty()) ap.str_array("cryptoFunctions", a.functions);
  if (a.level >= 0) ap.num("classicalSecurityLevel", a.level);
  ap.num("nistQuantumSecurityLevel", 0);
  JsonObject cp;
  cp.str("assetType", "algorithm").raw("algorithmProperties", ap.done());
  if (!a.oid.empty()) cp.str("oid", a.oid);
  JsonObject c;
  c.str("type", "cryptographic-asset").str("bom-ref", a.ref).str("name", a.name);
  if (!a.note.empty()) c.str("description", a.note);
  c.raw("cryptoProperties", cp.done());
  c.raw("properties", array_of({property("fipsproxy:provider", "lib/boringcrypto")}));
  return c.done();
}

struct Curve {
  const char* name;  // "P-256"
  int bits;
  int level;
};

Curve curve_of_group(const std::string& group) {
  if (group.find("384") != std::string::npos) return {"P-384", 384, 192};
  if (group.find("521") != std::string::npos) return {"P-521", 521, 256};
  return {"P-256", 256, 128};
}

std::string hash_bits(const std::string& iana) {  // "..._sha384" → "384"
  size_t at = iana.rfind("sha");
  return at == std::string::npos ? "" : iana.substr(at + 3);
}

// An IANA SignatureScheme name → algorithm component.
Algo sigalg_algo(const std::string& iana) {
  Algo a;
  a.ref = "crypto/algorithm/sigalg/" + iana;
  a.primitive = "signature";
  a.functions = {"sign", "verify"};
  std::string h = hash_bits(iana);
  if (iana.rfind("ecdsa_", 0) == 0) {
    Curve c = curve_of_group(iana);
    a.name = std::string("ECDSA-") + c.name + "-SHA-" + h;
    a.curve = c.name;
    a.param = std::to_string(c.bits);
    a.level = c.level;
    a.oid = h == "256" ? "1.2.840.10045.4.3.2" : h == "384" ? "1.2.840.10045.4.3.3" : "1.2.840.10045.4.3.4";
  } else if (iana.rfind("rsa_pss_", 0) == 0) {
    a.name = "RSASSA-PSS-SHA-" + h;
    a.param = "2048,3072,4096";
    a.level = 112;
    a.oid = "1.2.840.113549.1.1.10";
    a.note = "RSA-PSS with SHA-" + h + " and MGF1; RSA keys of 2048, 3072 or 4096 bits";
  } else if (iana.rfind("rsa_pkcs1_", 0) == 0) {
    a.name = "RSASSA-PKCS1-v1_5-SHA-" + h;
    a.param = "2048,3072,4096";
    a.padding = "pkcs1v15";
    a.level = 112;
    a.oid = h == "256" ? "1.2.840.113549.1.1.11" : h == "384" ? "1.2.840.113549.1.1.12" : "1.2.840.113549.1.1.13";
    a.note = "RSA PKCS#1 v1.5 signatures with SHA-" + h + "; RSA keys of 2048, 3072 or 4096 bits";
  } else {
    a.name = iana;
    a.primitive = "signature";
  }
  if (a.note.empty()) a.note = "TLS SignatureScheme " + iana;
  return a;
}

struct Suite {
  std::string iana;
  uint16_t id;
  std::vector<std::string> refs;
};

// ---- certificates ---------------------------------------------------------------------------

std::string slug(std::string s) {
  for (char& c : s) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') c = '-';
  }
  return s;
}

}  // namespace

std::string make_cbom(const FipsReport& fips, const std::vector<CbomCert>& certs, const std::string& profile_name) {
  config::Profile profile = parse_profile(profile_name);
  std::vector<std::string> components;
  std::vector<std::string> algo_refs;
  std::vector<std::string> protocol_refs;
  std::set<std::string> seen_refs;
  auto add_algo = [&](const Algo& a) {
    if (!seen_refs.insert(a.ref).second) return;
    components.push_back(algo_component(a));
    algo_refs.push_back(a.ref);
  };

  // Ciphers, hashes, MACs, KDFs, DRBG.
  add_algo({"crypto/algorithm/aes-128-gcm", "AES-128-GCM", "ae", "128", "", "gcm", "", {"encrypt", "decrypt", "tag"}, 128,
            "2.16.840.1.101.3.4.1.6", "TLS record protection"});
  add_algo({"crypto/algorithm/aes-256-gcm", "AES-256-GCM", "ae", "256", "", "gcm", "", {"encrypt", "decrypt", "tag"}, 256,
            "2.16.840.1.101.3.4.1.46", "TLS record protection"});
  for (const char* h : {"256", "384", "512"}) {
    std::string hs = h;
    int level = hs == "256" ? 128 : hs == "384" ? 192 : 256;
    std::string oid = hs == "256" ? "2.16.840.1.101.3.4.2.1" : hs == "384" ? "2.16.840.1.101.3.4.2.2" : "2.16.840.1.101.3.4.2.3";
    add_algo({"crypto/algorithm/sha-" + hs, "SHA-" + hs, "hash", hs, "", "", "", {"digest"}, level, oid,
              "handshake transcripts and signatures"});
  }
  for (const char* h : {"256", "384"}) {
    std::string hs = h;
    int level = hs == "256" ? 128 : 192;
    add_algo({"crypto/algorithm/hmac-sha-" + hs, "HMAC-SHA-" + hs, "mac", hs, "", "", "", {"tag"}, level,
              hs == "256" ? "1.2.840.113549.2.9" : "1.2.840.113549.2.10", "inside the TLS 1.2 PRF and TLS 1.3 HKDF"});
    add_algo({"crypto/algorithm/tls12-prf-sha-" + hs, "TLS12-PRF-HMAC-SHA-" + hs, "kdf", hs, "", "", "", {"keyderive"},
              level, "", "TLS 1.2 key derivation (RFC 5246 PRF with Extended Master Secret, RFC 7627)"});
    add_algo({"crypto/algorithm/hkdf-sha-" + hs, "HKDF-SHA-" + hs, "kdf", hs, "", "", "", {"keyderive"}, level, "",
              "TLS 1.3 key schedule (RFC 8446 section 7.1)"});
  }
  add_algo({"crypto/algorithm/ctr-drbg-aes-256", "CTR_DRBG-AES-256", "drbg", "256", "", "ctr", "", {"generate"}, 256, "",
            "the module's SP 800-90A CTR_DRBG (RAND_bytes)"});

  // Key exchange groups.
  std::vector<std::string> group_refs;
  for (const auto& g : policy::groups(profile)) {
    Curve c = curve_of_group(g.name);
    Algo a{"crypto/algorithm/ecdh-" + lower(c.name), std::string("ECDH-") + c.name, "key-agree", std::to_string(c.bits),
           c.name, "", "", {"keygen", "keyderive"}, c.level, "1.3.132.1.12",
           std::string("ephemeral ECDHE key exchange, TLS NamedGroup ") + g.name};
    add_algo(a);
    group_refs.push_back(a.ref);
  }
  // Handshake signature schemes.
  std::vector<std::string> ecdsa_refs, rsa_refs, sig_refs;
  for (const auto& s : policy::sigalgs(profile)) {
    Algo a = sigalg_algo(s.name);
    add_algo(a);
    sig_refs.push_back(a.ref);
    (std::string(s.name).rfind("ecdsa_", 0) == 0 ? ecdsa_refs : rsa_refs).push_back(a.ref);
  }

  // Protocols.
  auto suite_json = [](const Suite& s) {
    char hi[8], lo[8];
    std::snprintf(hi, sizeof(hi), "0x%02X", s.id >> 8);
    std::snprintf(lo, sizeof(lo), "0x%02X", s.id & 0xff);
    return JsonObject().str("name", s.iana).str_array("algorithms", s.refs).str_array("identifiers", {hi, lo}).done();
  };
  auto iana_name = [](uint16_t id, const char* fallback) {
    const SSL_CIPHER* c = SSL_get_cipher_by_value(id);
    const char* n = c ? SSL_CIPHER_standard_name(c) : nullptr;
    return std::string(n ? n : fallback);
  };
  auto append_refs = [](std::vector<std::string>& to, const std::vector<std::string>& from) {
    to.insert(to.end(), from.begin(), from.end());
  };
  auto protocol = [&](const std::string& version, const std::vector<Suite>& suites, const std::string& note) {
    std::vector<std::string> js;
    for (const auto& s : suites) js.push_back(suite_json(s));
    std::string ref = "crypto/protocol/tls-" + version;
    JsonObject pp;
    pp.str("type", "tls").str("version", version).raw("cipherSuites", array_of(js));
    JsonObject cp;
    cp.str("assetType", "protocol").raw("protocolProperties", pp.done());
    JsonObject c;
    c.str("type", "cryptographic-asset").str("bom-ref", ref).str("name", "TLS").str("version", version);
    c.str("description", note).raw("cryptoProperties", cp.done());
    components.push_back(c.done());
    protocol_refs.push_back(ref);
  };
  if (policy::version_allowed(profile, 0x0303)) {
    std::vector<Suite> suites;
    for (const auto& s : policy::tls12_suites()) {
      Suite su{iana_name(s.id, s.name), s.id, {}};
      std::string n = su.iana;
      su.refs.push_back(n.find("AES_256") != std::string::npos ? "crypto/algorithm/aes-256-gcm" : "crypto/algorithm/aes-128-gcm");
      append_refs(su.refs, group_refs);
      append_refs(su.refs, n.find("ECDSA") != std::string::npos ? ecdsa_refs : rsa_refs);
      std::string h = n.find("SHA384") != std::string::npos ? "384" : "256";
      su.refs.push_back("crypto/algorithm/tls12-prf-sha-" + h);
      suites.push_back(std::move(su));
    }
    protocol("1.2", suites,
             "TLS 1.2: ECDHE with AES-GCM only, Extended Master Secret required, renegotiation refused");
  }
  if (policy::version_allowed(profile, 0x0304)) {
    std::vector<Suite> suites;
    for (const auto& s : policy::tls13_suites()) {
      Suite su{iana_name(s.id, s.name), s.id, {}};
      std::string n = su.iana;
      bool big = n.find("SHA384") != std::string::npos;
      su.refs.push_back(big ? "crypto/algorithm/aes-256-gcm" : "crypto/algorithm/aes-128-gcm");
      su.refs.push_back(big ? "crypto/algorithm/hkdf-sha-384" : "crypto/algorithm/hkdf-sha-256");
      append_refs(su.refs, group_refs);
      append_refs(su.refs, sig_refs);
      suites.push_back(std::move(su));
    }
    protocol("1.3", suites, "TLS 1.3: AES-GCM suites only (ChaCha20-Poly1305 refused), (EC)DHE on the approved groups");
  }

  // Certificates, their public keys, and the algorithms they use.
  std::vector<std::string> cert_refs;
  for (const auto& cert : certs) {
    std::string cert_ref = "crypto/certificate/" + cert.sha256;
    if (!seen_refs.insert(cert_ref).second) continue;
    std::string sig_ref = "crypto/algorithm/cert-signature/" + slug(cert.sig_alg.empty() ? "unknown" : cert.sig_alg);
    if (!seen_refs.count(sig_ref)) {
      Algo a;
      a.ref = sig_ref;
      a.name = cert.sig_alg.empty() ? "unknown" : cert.sig_alg;
      a.primitive = "signature";
      a.functions = {"verify"};
      a.oid = cert.sig_oid;
      if (cert.sig_alg.find("RSA") != std::string::npos && cert.sig_alg.find("PSS") == std::string::npos) a.padding = "pkcs1v15";
      a.note = "certificate signature algorithm";
      add_algo(a);
    }
    std::string key_alg_ref = "crypto/algorithm/key/" + slug(cert.key_desc.empty() ? cert.key_type : cert.key_desc);
    if (!seen_refs.count(key_alg_ref)) {
      Algo a;
      a.ref = key_alg_ref;
      a.primitive = "signature";
      a.functions = {"sign", "verify"};
      if (cert.key_type == "EC") {
        Curve c = curve_of_group(cert.key_desc);
        a.name = std::string("EC-") + c.name;
        a.curve = c.name;
        a.param = std::to_string(c.bits);
        a.level = c.level;
        a.oid = "1.2.840.10045.2.1";
      } else if (cert.key_type == "RSA") {
        a.name = "RSA-" + std::to_string(cert.key_bits);
        a.param = std::to_string(cert.key_bits);
        a.level = cert.key_bits >= 4096 ? 152 : cert.key_bits >= 3072 ? 128 : 112;
        a.oid = "1.2.840.113549.1.1.1";
      } else {
        a.name = cert.key_desc.empty() ? cert.key_type : cert.key_desc;
      }
      a.note = "certificate public key algorithm";
      add_algo(a);
    }
    std::string key_ref = "crypto/key/" + cert.sha256;
    JsonObject kp;
    kp.str("type", "public-key").str("algorithmRef", key_alg_ref);
    if (cert.key_bits > 0) kp.num("size", cert.key_bits);
    kp.str("format", "SubjectPublicKeyInfo");
    JsonObject kc;
    kc.str("type", "cryptographic-asset").str("bom-ref", key_ref).str("name", "public key: " + cert.subject);
    kc.raw("cryptoProperties", JsonObject().str("assetType", "related-crypto-material")
                                   .raw("relatedCryptoMaterialProperties", kp.done())
                                   .done());
    components.push_back(kc.done());
    seen_refs.insert(key_ref);

    JsonObject certp;
    certp.str("subjectName", cert.subject).str("issuerName", cert.issuer);
    if (!cert.not_before.empty()) certp.str("notValidBefore", cert.not_before);
    if (!cert.not_after.empty()) certp.str("notValidAfter", cert.not_after);
    certp.str("signatureAlgorithmRef", sig_ref).str("subjectPublicKeyRef", key_ref);
    certp.str("certificateFormat", "X.509").str("certificateExtension", "pem");
    JsonObject cc;
    cc.str("type", "cryptographic-asset").str("bom-ref", cert_ref).str("name", cert.subject);
    if (is_hex64(cert.sha256)) cc.raw("hashes", sha256_hash(lower(cert.sha256)));
    cc.raw("cryptoProperties", JsonObject().str("assetType", "certificate").raw("certificateProperties", certp.done()).done());
    cc.raw("properties", array_of({property("fipsproxy:path", cert.path), property("fipsproxy:key", cert.key_desc)}));
    components.push_back(cc.done());
    cert_refs.push_back(cert_ref);
  }

  // The module and the libraries.
  std::vector<std::string> libs;
  {
    JsonObject m;
    m.str("type", "library").str("bom-ref", "lib/boringcrypto");
    m.str("name", fips.module_name.empty() ? "BoringCrypto" : fips.module_name);
    m.str("version", std::to_string(fips.module_version));
    m.str("description", fips.statement());
    if (is_hex64(fips.libcrypto_sha256)) m.raw("hashes", sha256_hash(lower(fips.libcrypto_sha256)));
    std::vector<std::string> props = {
        property("fipsproxy:fips_mode", fips.fips_mode ? "true" : "false"),
        property("fipsproxy:self_checks", fips.ok() ? "passed" : "failed"),
        property("fipsproxy:module_hash_expected", fips.module_hash_expected),
        property("fipsproxy:module_hash_loaded", fips.module_hash_loaded),
        property("fipsproxy:libcrypto_path", fips.libcrypto_path),
        property("fipsproxy:libcrypto_sha256", fips.libcrypto_sha256),
        property("fipsproxy:validation",
                 "BoringCrypto module source (FIPS_version " + std::to_string(fips.module_version) +
                     ") built from the Debian source package; it runs the module's power-on self-tests and "
                     "integrity check, but this binary is not itself a CMVP-validated module"),
    };
    for (const auto& c : fips.checks) {
      props.push_back(property("fipsproxy:check:" + c.name, std::string(c.ok ? "ok" : "FAILED") +
                                                                 (c.detail.empty() ? "" : ": " + c.detail)));
    }
    m.raw("properties", array_of(props));
    libs.push_back(m.done());
  }
  {
    JsonObject b;
    b.str("type", "library").str("bom-ref", "lib/boringssl").str("name", "boringssl");
    b.str("version", build::kSourceVersion);
    b.str("description", std::string("BoringSSL (libcrypto + libssl) from the Debian source package ") +
                             build::kSourcePackage + " " + build::kSourceVersion +
                             ", with fipsproxy's libssl policy patch");
    if (is_hex64(fips.libssl_sha256)) b.raw("hashes", sha256_hash(lower(fips.libssl_sha256)));
    b.str("purl", std::string("pkg:deb/debian/") + build::kSourcePackage + "@" + build::kSourceVersion +
                      "?arch=source&distro=debian-12");
    b.raw("properties", array_of({
                            property("fipsproxy:source_package", build::kSourcePackage),
                            property("fipsproxy:boringssl_revision", build::kBoringsslRevision),
                            property("fipsproxy:patch_sha256", build::kPatchSha256),
                            property("fipsproxy:patch_marker", fips.patch_marker),
                            property("fipsproxy:libssl_path", fips.libssl_path),
                        }));
    libs.push_back(b.done());
  }
  for (const auto& l : kLibraries) {
    libs.push_back(JsonObject()
                       .str("type", "library")
                       .str("bom-ref", l.ref)
                       .str("name", l.name)
                       .str("version", l.version)
                       .str("description", l.description)
                       .str("purl", l.purl)
                       .done());
  }
  components.insert(components.begin(), libs.begin(), libs.end());

  // Dependencies.
  std::vector<std::string> app_deps = {"lib/boringssl", "lib/libuv", "lib/llhttp", "lib/tomlplusplus"};
  app_deps.insert(app_deps.end(), cert_refs.begin(), cert_refs.end());
  std::vector<std::string> deps = {
      JsonObject().str("ref", "fipsproxy").str_array("dependsOn", app_deps).done(),
      JsonObject().str("ref", "lib/boringssl").str_array("dependsOn", {"lib/boringcrypto"}).str_array("provides", protocol_refs).done(),
      JsonObject().str("ref", "lib/boringcrypto").str_array("provides", algo_refs).done(),
  };
  for (const char* r : {"lib/libuv", "lib/llhttp", "lib/tomlplusplus"}) deps.push_back(JsonObject().str("ref", r).done());

  // Metadata.
  std::string app = JsonObject()
                        .str("type", "application")
                        .str("bom-ref", "fipsproxy")
                        .str("name", "fipsproxy")
                        .str("version", build::kVersion)
                        .str("description", "FIPS-enforcing TLS proxy")
                        .done();
  std::string tool = JsonObject().str("type", "application").str("name", "fipsproxy").str("version", build::kVersion).done();
  JsonObject meta;
  meta.str("timestamp", rfc3339(std::time(nullptr)));
  meta.raw("tools", JsonObject().raw("components", array_of({tool})).done());
  meta.raw("component", app);
  meta.raw("properties", array_of({
                             property("fipsproxy:profile", config::profile_name(profile)),
                             property("fipsproxy:fips_mode", fips.fips_mode ? "true" : "false"),
                             property("fipsproxy:statement", fips.statement()),
                         }));

  JsonObject bom;
  bom.str("$schema", "http://cyclonedx.org/schema/bom-1.6.schema.json");
  bom.str("bomFormat", "CycloneDX").str("specVersion", "1.6");
  bom.str("serialNumber", "urn:uuid:" + uuid_v4()).num("version", 1);
  bom.raw("metadata", meta.done());
  bom.raw("components", array_of(components));
  bom.raw("dependencies", array_of(deps));
  return bom.done();
}

// ---- certificates from files ----------------------------------------------------------------

namespace {

std::string name_rfc2253(const X509_NAME* name) {
  bssl::UniquePtr<BIO> bio(BIO_new(BIO_s_mem()));
  if (!bio || X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253) < 0) return "";
  const uint8_t* data = nullptr;
  size_t len = 0;
  if (BIO_mem_contents(bio.get(), &data, &len) != 1) return "";
  return std::string(reinterpret_cast<const char*>(data), len);
}

std::string asn1_time_rfc3339(const ASN1_TIME* t) {
  if (!t) return "";
  bssl::UniquePtr<ASN1_TIME> epoch(ASN1_TIME_set(nullptr, 0));
  int days = 0, secs = 0;
  if (!epoch || ASN1_TIME_diff(&days, &secs, epoch.get(), t) != 1) return "";
  return rfc3339(static_cast<time_t>(days) * 86400 + secs);
}

}  // namespace

Result<std::vector<CbomCert>> cbom_certs_from_files(const std::vector<std::string>& paths) {
  std::vector<CbomCert> out;
  std::set<std::string> seen;
  for (const auto& path : paths) {
    auto loaded = load_certs(path);
    if (!loaded) return std::move(loaded).error();
    for (const auto& x : *loaded) {
      CbomCert c;
      c.path = path;
      c.sha256 = cert_sha256_hex(x.get());
      if (!seen.insert(c.sha256).second) continue;
      c.subject = subject_string(x.get());
      c.issuer = name_rfc2253(X509_get_issuer_name(x.get()));
      c.not_before = asn1_time_rfc3339(X509_get0_notBefore(x.get()));
      c.not_after = asn1_time_rfc3339(X509_get0_notAfter(x.get()));
      bssl::UniquePtr<EVP_PKEY> key(X509_get_pubkey(x.get()));
      if (key) {
        c.key_desc = describe_key(key.get());
        c.key_type = c.key_desc.substr(0, c.key_desc.find(' '));
        c.key_bits = static_cast<unsigned>(EVP_PKEY_bits(key.get()));
      }
      int nid = X509_get_signature_nid(x.get());
      const char* ln = OBJ_nid2ln(nid);
      c.sig_alg = ln ? ln : "";
      if (const ASN1_OBJECT* obj = OBJ_nid2obj(nid)) {
        char buf[128];
        int n = OBJ_obj2txt(buf, sizeof(buf), obj, 1);
        if (n > 0 && static_cast<size_t>(n) < sizeof(buf)) c.sig_oid = buf;
      }
      out.push_back(std::move(c));
    }
  }
  return out;
}

}  // namespace fp::certs
