#include "certs/inspect.h"

#include <arpa/inet.h>

#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/nid.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>

#include "certs/cert_info.h"
#include "certs/pem.h"
#include "certs/policy.h"

namespace fp::certs {
namespace {

std::string ia5(const ASN1_IA5STRING* s) {
  return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                     static_cast<size_t>(ASN1_STRING_length(s)));
}

std::string ip_string(const ASN1_OCTET_STRING* s) {
  char buf[INET6_ADDRSTRLEN] = {};
  const int len = ASN1_STRING_length(s);
  const uint8_t* p = ASN1_STRING_get0_data(s);
  if (len == 4 && inet_ntop(AF_INET, p, buf, sizeof buf)) return buf;
  if (len == 16 && inet_ntop(AF_INET6, p, buf, sizeof buf)) return buf;
  return "<" + std::to_string(len) + "-byte address>";
}

std::vector<std::string> sans_of(X509* x) {
  std::vector<std::string> out;
  bssl::UniquePtr<GENERAL_NAMES> names(
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(x, NID_subject_alt_name, nullptr, nullptr)));
  if (!names) return out;
  for (size_t i = 0; i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* g = sk_GENERAL_NAME_value(names.get(), i);
    switch (g->type) {
      case GEN_DNS: out.push_back("DNS:" + ia5(g->d.dNSName)); break;
      case GEN_URI: out.push_back("URI:" + ia5(g->d.uniformResourceIdentifier)); break;
      case GEN_EMAIL: out.push_back("email:" + ia5(g->d.rfc822Name)); break;
      case GEN_IPADD: out.push_back("IP:" + ip_string(g->d.iPAddress)); break;
      case GEN_DIRNAME: out.push_back("DirName"); break;
      case GEN_OTHERNAME: out.push_back("othername"); break;
      default: out.push_back("other(" + std::to_string(g->type) + ")"); break;
    }
  }
  return out;
}

// EKU short names; `present` false when the extension is absent.
std::vector<std::string> eku_of(X509* x, bool& present, bool& parse_error) {
  std::vector<std::string> out;
  int crit = 0;
  bssl::UniquePtr<EXTENDED_KEY_USAGE> eku(
      static_cast<EXTENDED_KEY_USAGE*>(X509_get_ext_d2i(x, NID_ext_key_usage, &crit, nullptr)));
  present = eku != nullptr || crit != -1;
  parse_error = !eku && crit != -1;
  if (!eku) return out;
  for (size_t i = 0; i < sk_ASN1_OBJECT_num(eku.get()); ++i) {
    const ASN1_OBJECT* o = sk_ASN1_OBJECT_value(eku.get(), i);
    const int nid = OBJ_obj2nid(o);
    const char* sn = nid == NID_undef ? nullptr : OBJ_nid2sn(nid);
    if (sn) {
      out.emplace_back(sn);
    } else {
      char buf[80];
      OBJ_obj2txt(buf, sizeof buf, o, 1);
      out.emplace_back(buf);
    }
  }
  return out;
}

bool is_self_signed(X509* x) {
  if (X509_NAME_cmp(X509_get_issuer_name(x), X509_get_subject_name(x)) != 0) return false;
  bssl::UniquePtr<EVP_PKEY> key(X509_get_pubkey(x));
  const bool ok = key && X509_verify(x, key.get()) == 1;
  ERR_clear_error();
  return ok;
}

long days_until(const ASN1_TIME* t) {
  bssl::UniquePtr<ASN1_TIME> now(ASN1_TIME_new());
  if (!now || X509_gmtime_adj(now.get(), 0) == nullptr) return 0;
  int days = 0, secs = 0;
  if (ASN1_TIME_diff(&days, &secs, now.get(), t) != 1) return 0;
  return days;
}

void add_unique(std::vector<std::string>& v, const std::string& s) {
  if (!s.empty() && std::find(v.begin(), v.end(), s) == v.end()) v.push_back(s);
}

bool has(const std::vector<std::string>& v, const char* s) { return std::find(v.begin(), v.end(), s) != v.end(); }

}  // namespace

Result<std::vector<InspectedCert>> inspect_file(const std::string& path, config::Profile profile) {
  auto certs = load_certs(path);
  if (!certs) return certs.error();
  auto infos = describe_chain_file(path);
  if (!infos) return infos.error();
  if (infos->size() != certs->size()) {
    return make_error(Code::CertInvalid, Side::Internal, path + ": file changed while reading");
  }
  std::vector<InspectedCert> out;
  for (size_t i = 0; i < certs->size(); ++i) {
    X509* x = (*certs)[i].get();
    const CertInfo& info = (*infos)[i];
    InspectedCert c;
    c.subject = info.subject;
    c.issuer = info.issuer;
    c.serial = info.serial;
    c.key = info.key;
    c.signature = info.signature;
    c.sig_hash = info.sig_hash;
    c.not_before = info.not_before;
    c.not_after = info.not_after;
    c.sha256 = info.sha256;
    c.version = X509_get_version(x) + 1;
    c.ca = X509_check_ca(x) > 0 && X509_get_ext_by_NID(x, NID_basic_constraints, -1) >= 0;
    c.self_signed = is_self_signed(x);
    c.sans = sans_of(x);
    bool eku_present = false, eku_bad = false;
    c.eku = eku_of(x, eku_present, eku_bad);
    c.days_left = days_until(X509_get0_notAfter(x));

    // Key type and size (every certificate, trust anchors included).
    bssl::UniquePtr<EVP_PKEY> key(X509_get_pubkey(x));
    if (std::string why = key_policy_violation(key.get(), profile); !why.empty()) {
      if (profile != config::Profile::Extended && key_policy_violation(key.get(), config::Profile::Extended).empty()) {
        why += "; allowed only with profile = \"extended\"";
      }
      c.violations.push_back(why);
    }
    // Signature hash: every certificate except a self-signed trust anchor (its self-signature
    // is not what trust rests on; FIPS-POLICY §8 "Certificate signature hashes").
    if (c.self_signed) {
      c.notes.push_back("self-signed trust anchor: its own signature (" + c.signature +
                        ") is not checked by the policy");
    } else if (!policy::cert_signature_allowed(X509_get_signature_nid(x))) {
      c.violations.push_back("signature algorithm " + c.signature +
                             " not allowed (FIPS policy: SHA-256/384/512 with RSA, RSA-PSS or ECDSA)");
    }
    // Leaf profile (v3, SAN, EKU) for each role the certificate can serve.
    if (!c.ca) {
      std::vector<LeafUse> uses;
      if (eku_bad) {
        c.violations.push_back("unparsable extendedKeyUsage extension");
      } else if (!eku_present) {
        uses = {LeafUse::Server, LeafUse::Client};
        if (c.version == 3) c.notes.push_back("no extendedKeyUsage: usable as server and client certificate");
      } else {
        if (has(c.eku, "serverAuth") || has(c.eku, "anyExtendedKeyUsage")) uses.push_back(LeafUse::Server);
        if (has(c.eku, "clientAuth")) uses.push_back(LeafUse::Client);
        if (uses.empty()) {
          std::string names;
          for (const auto& e : c.eku) names += (names.empty() ? "" : ",") + e;
          c.violations.push_back("extended key usage has neither serverAuth nor clientAuth (has: " + names + ")");
          uses.push_back(LeafUse::Server);  // still report v3 / SAN problems
        }
      }
      for (LeafUse u : uses) {
        std::string why = leaf_profile_violation(x, u, false);
        // With no usable EKU the Server check repeats the EKU complaint: keep the first one.
        if (why.rfind("extended key usage lacks", 0) == 0 && !c.violations.empty()) continue;
        add_unique(c.violations, why);
      }
    } else if (c.version != 3) {
      c.violations.push_back("X.509 v" + std::to_string(c.version) + " certificate not allowed (FIPS policy: v3 only)");
    }
    // Validity.
    if (X509_cmp_current_time(X509_get0_notAfter(x)) <= 0) {
      c.violations.push_back("certificate expired (notAfter " + c.not_after + ")");
    } else if (X509_cmp_current_time(X509_get0_notBefore(x)) >= 0) {
      c.violations.push_back("certificate not yet valid (notBefore " + c.not_before + ")");
    }
    out.push_back(std::move(c));
  }
  ERR_clear_error();
  return out;
}

}  // namespace fp::certs
