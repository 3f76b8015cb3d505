#include "certs/tls_context.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

#include "certs/libssl_patch.h"
#include "certs/pem.h"
#include "certs/policy.h"
#include "proxy/base/log.h"

namespace fp::certs {
namespace {

// Per-SSL state behind ONE ex_data index (STYLE.md 5.3 BoringSSL rule 4): the name the client
// expects, and the reason our verify callback refused (callbacks only record; the transport
// reads it after SSL_do_handshake returns, via classify_handshake_failure).
struct SslState {
  std::string expected_name;  // client role: SNI / expected server identity
  bool failed = false;
  Code code = Code::Ok;
  std::string detail;
};

void free_state(void* /*parent*/, void* ptr, CRYPTO_EX_DATA* /*ad*/, int /*index*/, long /*argl*/,
                void* /*argp*/) {
  delete static_cast<SslState*>(ptr);
}

int state_index() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, free_state);
  return index;
}

SslState* find_state(const SSL* ssl) {
  return static_cast<SslState*>(SSL_get_ex_data(ssl, state_index()));
}

SslState* ensure_state(SSL* ssl) {
  SslState* st = find_state(ssl);
  if (st == nullptr) {
    st = new SslState;
    if (SSL_set_ex_data(ssl, state_index(), st) != 1) {
      delete st;
      return nullptr;
    }
  }
  return st;
}

void record(SSL* ssl, Code code, std::string detail) {
  SslState* st = ssl ? ensure_state(ssl) : nullptr;
  if (st == nullptr || st->failed) return;  // keep the first reason
  st->failed = true;
  st->code = code;
  st->detail = std::move(detail);
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

bool is_ip_literal(const std::string& host) {
  std::string h = host;
  if (h.size() > 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  unsigned char buf[16];
  return inet_pton(AF_INET, h.c_str(), buf) == 1 || inet_pton(AF_INET6, h.c_str(), buf) == 1;
}

void extract_sans(X509* cert, std::vector<std::string>& dns, std::vector<std::string>& uris) {
  bssl::UniquePtr<GENERAL_NAMES> names(
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr)));
  if (!names) return;
  for (size_t i = 0; i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* gn = sk_GENERAL_NAME_value(names.get(), i);
    if (gn->type != GEN_DNS && gn->type != GEN_URI) continue;
    const ASN1_IA5STRING* s = gn->type == GEN_DNS ? gn->d.dNSName : gn->d.uniformResourceIdentifier;
    std::string v(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                  static_cast<size_t>(ASN1_STRING_length(s)));
    if (v.find('\0') != std::string::npos) continue;  // embedded NUL: never match on it
    (gn->type == GEN_DNS ? dns : uris).push_back(std::move(v));
  }
}

bool spiffe_allowed(const std::string& id, const std::vector<std::string>& allow) {
  for (const std::string& a : allow) {
    if (!a.empty() && a.back() == '/' ? id.starts_with(a) : id == a) return true;
  }
  return false;
}

bool dns_allowed(const std::string& san_in, const std::vector<std::string>& allow) {
  const std::string san = lower(san_in);
  for (const std::string& a_in : allow) {
    const std::string a = lower(a_in);
    if (a.starts_with("*.")) {
      // One label only: "*.example.com" matches "a.example.com", not "a.b.example.com".
      const std::string suffix = a.substr(1);
      if (san.size() > suffix.size() && san.ends_with(suffix)) {
        const std::string label = san.substr(0, san.size() - suffix.size());
        if (label.find('.') == std::string::npos && label != "*") return true;
      }
    } else if (san == a) {
      return true;
    }
  }
  return false;
}

// Peer identity allow-lists (TlsConfig::allow_spiffe / allow_dns). Empty when allowed.
std::string identity_violation(X509* leaf, const config::TlsConfig& cfg, Role role,
                               const std::string& expected_name) {
  std::vector<std::string> dns, uris;
  extract_sans(leaf, dns, uris);
  if (!cfg.allow_spiffe.empty() || !cfg.allow_dns.empty()) {
    for (const std::string& u : uris) {
      if (u.starts_with("spiffe://") && spiffe_allowed(u, cfg.allow_spiffe)) return {};
    }
    for (const std::string& d : dns) {
      if (dns_allowed(d, cfg.allow_dns)) return {};
    }
    std::string ids;
    for (const std::string& u : uris) ids += (ids.empty() ? "" : ",") + u;
    for (const std::string& d : dns) ids += (ids.empty() ? "" : ",") + d;
    return "peer identity [" + ids + "] not in allow_spiffe/allow_dns";
  }
  if (role == Role::Client && !expected_name.empty()) {
    if (is_ip_literal(expected_name)) {
      std::string ip = expected_name;
      if (ip.front() == '[') ip = ip.substr(1, ip.size() - 2);
      if (X509_check_ip_asc(leaf, ip.c_str(), 0) != 1) {
        return "server certificate has no IP SAN matching " + expected_name;
      }
    } else if (X509_check_host(leaf, expected_name.data(), expected_name.size(),
                               X509_CHECK_FLAG_NEVER_CHECK_SUBJECT, nullptr) != 1) {
      return "server certificate has no DNS SAN matching " + expected_name;
    }
  }
  return {};
}

// ---- Chain policy hook (FIPS-POLICY §8 "Peer certificate keys" and "Certificate signature
// hashes"): every element of the *verified* chain, trust anchor included, must carry an RSA
// 2048/3072/4096 or EC P-256/P-384 key; every element but a self-signed anchor must be signed
// with SHA-256/384/512. BoringSSL alone accepts RSA-1024 and SHA-1 leaves [E3].
std::string chain_policy_hook(X509_STORE_CTX* store, config::Profile profile) {
  STACK_OF(X509)* chain = X509_STORE_CTX_get0_chain(store);
  if (chain == nullptr) return "no verified chain";
  std::vector<X509*> v;
  for (size_t i = 0; i < sk_X509_num(chain); ++i) v.push_back(sk_X509_value(chain, i));
  return chain_policy_violation(v, profile);
}

std::string ssl_error_reason();

std::string serial_hex(X509* cert) {
  bssl::UniquePtr<BIGNUM> bn(ASN1_INTEGER_to_BN(X509_get_serialNumber(cert), nullptr));
  if (!bn) return "?";
  bssl::UniquePtr<char> hex(BN_bn2hex(bn.get()));
  return hex ? std::string(hex.get()) : "?";
}

// ---- CRLs (TlsConfig::crl): every CRL in every file goes into the trust store; the whole chain
// is checked (CRL_CHECK | CRL_CHECK_ALL), so every CA in the peer's chain needs a CRL. Errors
// name the file: "PATH: reason".
Result<std::vector<bssl::UniquePtr<X509_CRL>>> load_crls(const std::string& path) {
  auto fail = [&](const std::string& why) {
    return make_error(Code::CertInvalid, Side::Internal, path + ": " + why);
  };
  errno = 0;
  bssl::UniquePtr<BIO> bio(BIO_new_file(path.c_str(), "r"));
  if (!bio) {
    ERR_clear_error();
    return fail(std::string("cannot read: ") + (errno ? std::strerror(errno) : "open failed"));
  }
  std::vector<bssl::UniquePtr<X509_CRL>> out;
  for (;;) {
    bssl::UniquePtr<X509_CRL> crl(PEM_read_bio_X509_CRL(bio.get(), nullptr, nullptr, nullptr));
    if (!crl) {
      const uint32_t e = ERR_peek_last_error();
      if (ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE) {
        ERR_clear_error();
        break;  // end of file
      }
      return fail("bad PEM CRL: " + ssl_error_reason());
    }
    out.push_back(std::move(crl));
  }
  if (out.empty()) return fail("no CRL found");
  return out;
}

std::string name_string(X509_NAME* name) {
  bssl::UniquePtr<BIO> b(BIO_new(BIO_s_mem()));
  if (!b || X509_NAME_print_ex(b.get(), name, 0, XN_FLAG_RFC2253) < 0) return "?";
  const uint8_t* data = nullptr;
  size_t len = 0;
  BIO_mem_contents(b.get(), &data, &len);
  return std::string(reinterpret_cast<const char*>(data), len);
}

// Loads every CRL of cfg.crl into `store` and turns on whole-chain checking. Each CRL must be
// current and verify under a CA of `cas` when it names one; each CA of `cas` needs a CRL.
Result<void> add_crls(X509_STORE* store, const config::TlsConfig& cfg,
                      const std::vector<bssl::UniquePtr<X509>>& cas) {
  std::vector<bool> covered(cas.size(), false);
  for (const std::string& path : cfg.crl) {
    auto crls = load_crls(path);
    if (!crls) return crls.error();
    for (auto& crl : crls.value()) {
      X509_NAME* issuer = X509_CRL_get_issuer(crl.get());
      const ASN1_TIME* next = X509_CRL_get0_nextUpdate(crl.get());
      if (next != nullptr && X509_cmp_current_time(next) < 0) {
        return make_error(Code::CertInvalid, Side::Internal,
                          path + ": CRL from '" + name_string(issuer) + "' has expired (nextUpdate passed)");
      }
      for (size_t i = 0; i < cas.size(); ++i) {
        if (X509_NAME_cmp(issuer, X509_get_subject_name(cas[i].get())) != 0) continue;
        bssl::UniquePtr<EVP_PKEY> pub(X509_get_pubkey(cas[i].get()));
        if (!pub || X509_CRL_verify(crl.get(), pub.get()) != 1) {
          ERR_clear_error();
          continue;  // same name, other key: another CA may still match
        }
        covered[i] = true;
      }
      if (X509_STORE_add_crl(store, crl.get()) != 1) {  // takes its own reference
        return make_error(Code::CertInvalid, Side::Internal, path + ": cannot add CRL: " + ssl_error_reason());
      }
    }
  }
  for (size_t i = 0; i < cas.size(); ++i) {
    if (covered[i]) continue;
    return make_error(Code::CertInvalid, Side::Internal,
                      cfg.crl.front() + ": no CRL from CA '" + subject_string(cas[i].get()) + "' (in " + cfg.ca +
                          "); with crl set, every CA in the chain needs a current CRL signed by it");
  }
  if (X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL) != 1) {
    return make_error(Code::TlsSetupFailed, Side::Internal, cfg.crl.front() + ": cannot enable CRL checking");
  }
  return {};
}

int on_verify_cert(X509_STORE_CTX* store, void* arg) noexcept {
  const auto* tc = static_cast<const TlsContext*>(arg);
  auto* ssl = static_cast<SSL*>(X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()));
  const config::TlsConfig& cfg = tc->config();

  if (X509_verify_cert(store) != 1) {
    const int err = X509_STORE_CTX_get_error(store);
    const int depth = X509_STORE_CTX_get_error_depth(store);
    if (err == X509_V_ERR_INVALID_PURPOSE) {
      // The chain is trusted but a certificate's key usage / EKU does not fit the peer's role:
      // a policy refusal (FIPS-POLICY §8 "Other certificate profile rules"), with the detail.
      X509* bad = X509_STORE_CTX_get_current_cert(store);
      const LeafUse use = tc->role() == Role::Client ? LeafUse::Server : LeafUse::Client;
      std::string why = bad && depth == 0 ? leaf_profile_violation(bad, use, false) : std::string();
      if (why.empty()) why = X509_verify_cert_error_string(err);
      record(ssl, Code::PeerCertPolicy,
             "certificate " + std::to_string(depth) + " (" + (bad ? subject_string(bad) : "?") + "): " + why);
      return 0;
    }
    if (err == X509_V_ERR_CERT_REVOKED) {
      X509* bad = X509_STORE_CTX_get_current_cert(store);
      record(ssl, Code::PeerCertRevoked,
             "certificate " + std::to_string(depth) + " (" + (bad ? subject_string(bad) : "?") +
                 ", serial " + (bad ? serial_hex(bad) : "?") + ") is revoked");
      return 0;
    }
    const Code code = (err == X509_V_ERR_CERT_HAS_EXPIRED || err == X509_V_ERR_CERT_NOT_YET_VALID)
                          ? Code::PeerCertExpired
                          : Code::PeerCertUntrusted;
    record(ssl, code, std::string(X509_verify_cert_error_string(err)) + " at depth " + std::to_string(depth));
    return 0;
  }

  std::string why = chain_policy_hook(store, cfg.profile);
  if (why.empty()) {
    // The peer's leaf profile: v3, SAN, EKU for its role (a client verifies a server leaf).
    const LeafUse use = tc->role() == Role::Client ? LeafUse::Server : LeafUse::Client;
    why = leaf_profile_violation(X509_STORE_CTX_get0_cert(store), use, false);
    if (!why.empty()) why = "certificate 0 (" + subject_string(X509_STORE_CTX_get0_cert(store)) + "): " + why;
  }
  if (!why.empty()) {
    X509_STORE_CTX_set_error(store, X509_V_ERR_CERT_REJECTED);  // alert bad_certificate (42)
    record(ssl, Code::PeerCertPolicy, why);
    return 0;
  }

  // Belt and braces on the client: the cipher the server picked, and EMS in TLS 1.2, are
  // re-checked here, before we send anything under the new keys (FIPS-POLICY §9 item 3).
  if (tc->role() == Role::Client && ssl != nullptr) {
    const SSL_CIPHER* c = SSL_get_pending_cipher(ssl);
    const uint16_t version = SSL_version(ssl);
    if (c != nullptr && !policy::cipher_allowed(cfg.profile, version, SSL_CIPHER_get_protocol_id(c))) {
      X509_STORE_CTX_set_error(store, X509_V_ERR_APPLICATION_VERIFICATION);
      record(ssl, Code::TlsPolicyViolation,
             std::string("server selected ") + SSL_CIPHER_standard_name(c));
      return 0;
    }
    if (version == TLS1_2_VERSION && SSL_get_extms_support(ssl) != 1) {
      X509_STORE_CTX_set_error(store, X509_V_ERR_APPLICATION_VERIFICATION);
      record(ssl, Code::TlsNoEms, "server did not negotiate Extended Master Secret in TLS 1.2");
      return 0;
    }
  }

  X509* leaf = X509_STORE_CTX_get0_cert(store);
  const SslState* st = ssl ? find_state(ssl) : nullptr;
  why = identity_violation(leaf, cfg, tc->role(), st ? st->expected_name : std::string());
  if (!why.empty()) {
    X509_STORE_CTX_set_error(store, X509_V_ERR_CERT_REJECTED);
    record(ssl, Code::PeerIdentityDenied, why);
    return 0;
  }
  return 1;
}

int on_alpn_select(SSL* /*ssl*/, const uint8_t** out, uint8_t* out_len, const uint8_t* in, unsigned in_len,
                   void* arg) noexcept {
  const auto* tc = static_cast<const TlsContext*>(arg);
  const std::vector<std::string>& ours = tc->config().alpn;
  // The first of the *client's* protocols that we support (RFC 7301 §3.2 leaves the choice to
  // the server; the client's order is its preference).
  for (unsigned i = 0; i < in_len;) {
    const unsigned len = in[i];
    if (len == 0 || i + 1 + len > in_len) break;
    const std::string_view proto(reinterpret_cast<const char*>(in + i + 1), len);
    if (std::find(ours.begin(), ours.end(), proto) != ours.end()) {
      *out = in + i + 1;
      *out_len = static_cast<uint8_t>(len);
      return SSL_TLSEXT_ERR_OK;
    }
    i += 1 + len;
  }
  return SSL_TLSEXT_ERR_NOACK;
}

std::string ssl_error_reason() {
  const uint32_t e = ERR_peek_last_error();
  ERR_clear_error();
  const char* r = e ? ERR_reason_error_string(e) : nullptr;
  return r ? r : "unknown error";
}

std::string hex16(uint16_t v) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%04x", v);
  return buf;
}

}  // namespace

TlsContext::~TlsContext() = default;

bssl::UniquePtr<SSL> TlsContext::new_ssl(const std::string& sni) const {
  bssl::UniquePtr<SSL> ssl(SSL_new(ctx_.get()));
  if (!ssl) return nullptr;
  SslState* st = ensure_state(ssl.get());
  if (st == nullptr) return nullptr;
  if (role_ == Role::Client) {
    st->expected_name = sni.empty() ? cfg_.sni : sni;
    // RFC 6066 §3: SNI carries DNS names only, never IP literals.
    if (!st->expected_name.empty() && !is_ip_literal(st->expected_name) &&
        SSL_set_tlsext_host_name(ssl.get(), st->expected_name.c_str()) != 1) {
      return nullptr;
    }
    SSL_set_connect_state(ssl.get());
  } else {
    SSL_set_accept_state(ssl.get());
  }
  return ssl;
}

Result<std::shared_ptr<const TlsContext>> build_context(Role role, const std::string& name,
                                                        const config::TlsConfig& cfg) {
  auto setup_error = [&](const std::string& reason) {
    return make_error(Code::TlsSetupFailed, Side::Internal, name + ": " + reason);
  };
  auto cert_error = [](const std::string& path, const std::string& reason) {
    return make_error(Code::CertInvalid, Side::Internal, path + ": " + reason);
  };

  std::shared_ptr<TlsContext> tc(new TlsContext());
  tc->role_ = role;
  tc->cfg_ = cfg;
  tc->name_ = name;
  tc->ctx_.reset(SSL_CTX_new(TLS_method()));
  SSL_CTX* ctx = tc->ctx_.get();
  if (ctx == nullptr) return setup_error("SSL_CTX_new failed");

  // Versions (FIPS-POLICY §8): never below TLS 1.2, never above what the profile allows.
  const config::Profile profile = cfg.profile;
  if (cfg.min_version < policy::min_version(profile)) {
    return setup_error("min_version " + hex16(cfg.min_version) + " is below TLS 1.2");
  }
  if (cfg.max_version > TLS1_3_VERSION) return setup_error("max_version " + hex16(cfg.max_version) + " unknown");
  const uint16_t min_v = cfg.min_version;
  const uint16_t max_v = std::min<uint16_t>(cfg.max_version, policy::max_version(profile));
  if (min_v > max_v) return setup_error("min_version is above max_version for this profile");
  if (SSL_CTX_set_min_proto_version(ctx, min_v) != 1 || SSL_CTX_set_max_proto_version(ctx, max_v) != 1) {
    return setup_error("cannot set protocol versions: " + ssl_error_reason());
  }

  // The allow-list, all of it from certs/policy (FIPS-POLICY §9 item 1).
  if (SSL_CTX_set_strict_cipher_list(ctx, policy::tls12_cipher_list().c_str()) != 1) {
    return setup_error("cannot set cipher list: " + ssl_error_reason());
  }
  if (SSL_CTX_set1_curves_list(ctx, policy::groups_list(profile).c_str()) != 1) {
    return setup_error("cannot set groups: " + ssl_error_reason());
  }
  const std::vector<uint16_t> sigalgs = policy::sigalg_ids(profile);
  if (SSL_CTX_set_signing_algorithm_prefs(ctx, sigalgs.data(), sigalgs.size()) != 1 ||
      SSL_CTX_set_verify_algorithm_prefs(ctx, sigalgs.data(), sigalgs.size()) != 1) {
    return setup_error("cannot set signature algorithms: " + ssl_error_reason());
  }
  SSL_CTX_set_early_data_enabled(ctx, 0);  // SP 800-52r2: no 0-RTT; never SSL_MODE_ENABLE_FALSE_START
  if (patch_set_policy(ctx, kPolicyTls13AesGcmOnly | kPolicyRequireEms) != 1) {
    return setup_error("libssl patch missing: an unpatched libssl would negotiate TLS 1.3 ChaCha20");
  }

  // Our identity. Servers must have one; clients present one when configured (mTLS).
  if (role == Role::Server && cfg.cert.empty()) return setup_error("no certificate configured");
  if (!cfg.cert.empty()) {
    if (cfg.key.empty()) return cert_error(cfg.cert, "no private key configured for this certificate");
    auto chain = load_certs(cfg.cert);
    if (!chain) return chain.error();
    auto key = load_private_key(cfg.key, cfg.key_permissions);
    if (!key) return key.error();
    // A Secret update swaps certificate and key together (one rename of ..data), but loading
    // them is two reads: a swap in between yields a pair that does not match (seen in the soak
    // with a reload every 5 s and a rotation every 30 s). Read both again before calling the
    // pair bad; a pair that really does not match fails all three times.
    for (int attempt = 1; X509_check_private_key(chain.value().front().get(), key.value().get()) != 1; ++attempt) {
      ERR_clear_error();
      if (attempt == 3) return cert_error(cfg.key, "key does not match certificate " + cfg.cert);
      std::this_thread::sleep_for(std::chrono::milliseconds(20 * attempt));
      chain = load_certs(cfg.cert);
      if (!chain) return chain.error();
      key = load_private_key(cfg.key, cfg.key_permissions);
      if (!key) return key.error();
    }
    X509* leaf = chain.value().front().get();
    std::vector<X509*> own;
    for (auto& c : chain.value()) own.push_back(c.get());
    // C1/C3: key, signature hash, v3, SAN, EKU for our role, validity, on the leaf; key and hash
    // on the rest of the chain we send.
    const LeafUse use = role == Role::Server ? LeafUse::Server : LeafUse::Client;
    if (std::string why = own_chain_violation(own, use, profile); !why.empty()) return cert_error(cfg.cert, why);
    if (SSL_CTX_use_certificate(ctx, leaf) != 1 || SSL_CTX_use_PrivateKey(ctx, key.value().get()) != 1) {
      return cert_error(cfg.cert, "cannot use certificate: " + ssl_error_reason());
    }
    for (size_t i = 1; i < chain.value().size(); ++i) {
      if (SSL_CTX_add1_chain_cert(ctx, chain.value()[i].get()) != 1) {  // add1: takes its own reference
        return cert_error(cfg.cert, "cannot add chain certificate: " + ssl_error_reason());
      }
    }
  }

  // Trust.
  const bool verify_peer = role == Role::Client || cfg.require_client_cert;
  if (verify_peer && cfg.ca.empty()) return setup_error("no CA bundle configured to verify the peer");
  if (!cfg.ca.empty()) {
    auto cas = load_certs(cfg.ca);
    if (!cas) return cas.error();
    X509_STORE* store = SSL_CTX_get_cert_store(ctx);
    for (auto& c : cas.value()) {
      if (X509_STORE_add_cert(store, c.get()) != 1) {  // takes its own reference
        const uint32_t e = ERR_peek_last_error();
        if (ERR_GET_REASON(e) != X509_R_CERT_ALREADY_IN_HASH_TABLE) {
          return cert_error(cfg.ca, "cannot add CA certificate: " + ssl_error_reason());
        }
        ERR_clear_error();
      }
    }
    if (!cfg.crl.empty()) {
      if (Result<void> r = add_crls(store, cfg, cas.value()); !r) return r.error();
    }
  }
  if (role == Role::Server) {
    SSL_CTX_set_verify(ctx, cfg.require_client_cert ? SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT
                                                    : SSL_VERIFY_NONE,
                       nullptr);
  } else {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
    SSL_CTX_enable_ocsp_stapling(ctx);  // SP 800-52r2 §4.4.1: the client sends status_request
  }
  SSL_CTX_set_cert_verify_callback(ctx, on_verify_cert, tc.get());

  // ALPN.
  if (!cfg.alpn.empty()) {
    if (role == Role::Server) {
      SSL_CTX_set_alpn_select_cb(ctx, on_alpn_select, tc.get());
    } else {
      std::vector<uint8_t> wire;
      for (const std::string& p : cfg.alpn) {
        if (p.empty() || p.size() > 255) return setup_error("bad ALPN protocol name \"" + p + "\"");
        wire.push_back(static_cast<uint8_t>(p.size()));
        wire.insert(wire.end(), p.begin(), p.end());
      }
      if (SSL_CTX_set_alpn_protos(ctx, wire.data(), wire.size()) != 0) {  // 0 is success here
        return setup_error("cannot set ALPN protocols");
      }
    }
  }

  FP_LOG_DEBUG("tls context built", {"name", name}, {"role", role == Role::Server ? "server" : "client"},
               {"profile", config::profile_name(profile)});
  return std::shared_ptr<const TlsContext>(std::move(tc));
}

HandshakeInfo describe_handshake(const SSL* ssl) {
  HandshakeInfo h;
  h.version = SSL_get_version(ssl);
  if (const SSL_CIPHER* c = SSL_get_current_cipher(ssl)) h.cipher = SSL_CIPHER_standard_name(c);
  if (const uint16_t g = SSL_get_curve_id(ssl); g != 0) {
    const char* n = SSL_get_curve_name(g);
    h.group = n ? n : hex16(g);
  }
  if (const uint16_t s = SSL_get_peer_signature_algorithm(ssl); s != 0) {
    const char* n = SSL_get_signature_algorithm_name(s, 1);
    h.sigalg = n ? n : hex16(s);
  }
  const uint8_t* alpn = nullptr;
  unsigned alpn_len = 0;
  SSL_get0_alpn_selected(ssl, &alpn, &alpn_len);
  if (alpn != nullptr) h.alpn.assign(reinterpret_cast<const char*>(alpn), alpn_len);
  if (const char* sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name)) h.sni = sni;
  h.resumed = SSL_session_reused(ssl) == 1;

  bssl::UniquePtr<X509> leaf(SSL_get_peer_certificate(ssl));
  if (leaf) {
    PeerIdentity& p = h.peer;
    p.present = true;
    extract_sans(leaf.get(), p.dns, p.uris);
    for (const std::string& u : p.uris) {
      if (u.starts_with("spiffe://")) {
        p.spiffe_id = u;
        break;
      }
    }
    p.subject = subject_string(leaf.get());
    p.sha256 = cert_sha256_hex(leaf.get());
    bssl::UniquePtr<EVP_PKEY> key(X509_get_pubkey(leaf.get()));
    p.key_type = describe_key(key.get());
  }
  return h;
}

Error classify_handshake_failure(const SSL* ssl, Side side) {
  // Drain the queue in any case (STYLE.md 5.3 rule 6); keep the first SSL reason.
  int first_lib = 0, first_reason = 0;
  std::string reasons;
  while (const uint32_t e = ERR_get_error()) {
    const char* r = ERR_reason_error_string(e);
    if (first_reason == 0 && ERR_GET_LIB(e) == ERR_LIB_SSL) {
      first_lib = ERR_LIB_SSL;
      first_reason = ERR_GET_REASON(e);
    }
    if (!reasons.empty()) reasons += "; ";
    reasons += r ? r : std::to_string(ERR_GET_REASON(e));
  }

  if (const SslState* st = find_state(ssl); st != nullptr && st->failed) {
    return make_error(st->code, side, st->detail);
  }
  switch (patch_get_refusal(ssl)) {
    case kRefusalTls13ChachaOfferedOnly:
      return make_error(Code::TlsChacha, side, "client offered only TLS_CHACHA20_POLY1305_SHA256 in TLS 1.3");
    case kRefusalTls13ChachaSelected:
      return make_error(Code::TlsChacha, side, "server selected TLS_CHACHA20_POLY1305_SHA256 in TLS 1.3");
    case kRefusalNoEms:
      return make_error(Code::TlsNoEms, side, "peer did not negotiate Extended Master Secret in TLS 1.2");
    default:
      break;
  }
  if (first_lib == ERR_LIB_SSL) {
    if (first_reason >= SSL_AD_REASON_OFFSET) {
      const int alert = first_reason - SSL_AD_REASON_OFFSET;
      return make_error(Code::TlsAlertReceived, side,
                        std::string("received alert ") + SSL_alert_desc_string_long(alert) + " (" +
                            std::to_string(alert) + "): " + reasons);
    }
    switch (first_reason) {
      case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
        return make_error(Code::PeerCertMissing, side, reasons);
      case SSL_R_UNSUPPORTED_PROTOCOL:
        return make_error(Code::TlsProtocolVersion, side, reasons);
      case SSL_R_NO_SHARED_CIPHER:
      case SSL_R_NO_SHARED_GROUP:
      case SSL_R_NO_COMMON_SIGNATURE_ALGORITHMS:
      case SSL_R_WRONG_SIGNATURE_TYPE:
      case SSL_R_WRONG_CURVE:
      case SSL_R_WRONG_CIPHER_RETURNED:
        return make_error(Code::TlsPolicyViolation, side, reasons);
      default:
        break;
    }
  }
  return make_error(Code::TlsHandshakeFailed, side, reasons.empty() ? "no error reported" : reasons);
}

Result<void> check_negotiated(const SSL* ssl, config::Profile profile) {
  auto violation = [](std::string what) {
    return make_error(Code::TlsPolicyViolation, Side::Internal, std::move(what));
  };
  const uint16_t version = static_cast<uint16_t>(SSL_version(ssl));
  if (!policy::version_allowed(profile, version)) {
    return violation(std::string("negotiated ") + SSL_get_version(ssl) + " is outside the policy");
  }
  const SSL_CIPHER* c = SSL_get_current_cipher(ssl);
  if (c == nullptr || !policy::cipher_allowed(profile, version, SSL_CIPHER_get_protocol_id(c))) {
    return violation(std::string("negotiated cipher ") + (c ? SSL_CIPHER_standard_name(c) : "(none)") +
                     " is outside the policy");
  }
  const uint16_t group = SSL_get_curve_id(ssl);
  if (!policy::group_allowed(profile, group) && !(group == 0 && SSL_session_reused(ssl))) {
    const char* n = SSL_get_curve_name(group);
    return violation("negotiated group " + std::string(n ? n : hex16(group)) + " is outside the policy");
  }
  const uint16_t sigalg = SSL_get_peer_signature_algorithm(ssl);
  if (sigalg != 0 && !policy::sigalg_allowed(profile, sigalg)) {
    const char* n = SSL_get_signature_algorithm_name(sigalg, 1);
    return violation("peer signature algorithm " + std::string(n ? n : hex16(sigalg)) + " is outside the policy");
  }
  if (version == TLS1_2_VERSION && SSL_get_extms_support(ssl) != 1) {
    return make_error(Code::TlsNoEms, Side::Internal, "TLS 1.2 without Extended Master Secret");
  }
  return {};
}

}  // namespace fp::certs
