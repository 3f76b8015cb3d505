#include "certs/self_probe.h"

#include <openssl/bio.h>
#include <openssl/bytestring.h>
#include <openssl/ec_key.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/nid.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <functional>
#include <mutex>
#include <optional>

#include "certs/libssl_patch.h"
#include "certs/policy.h"
#include "proxy/base/error.h"

namespace fp::certs {
namespace {

constexpr uint16_t kChacha13 = 0x1303;   // TLS_CHACHA20_POLY1305_SHA256
constexpr uint16_t kExtEms = 0x0017;     // extended_master_secret
constexpr uint16_t kExtVersions = 0x002b;  // supported_versions
constexpr uint16_t kExtKeyShare = 0x0033;  // key_share
constexpr uint8_t kClientHello = 1, kServerHello = 2;

// SHA-256("HelloRetryRequest"), RFC 8446 §4.1.3.
constexpr uint8_t kHrrRandom[32] = {0xCF, 0x21, 0xAD, 0x74, 0xE5, 0x9A, 0x61, 0x11, 0xBE, 0x1D, 0x8C,
                                    0x02, 0x1E, 0x65, 0xB8, 0x91, 0xC2, 0xA2, 0x11, 0x16, 0x7A, 0xBB,
                                    0x8C, 0x5E, 0x07, 0x9E, 0x09, 0xE2, 0xC8, 0xA8, 0x33, 0x9C};

std::string hex16(uint16_t v) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%04x", v);
  return buf;
}

std::string cipher_name(uint16_t id) {
  const SSL_CIPHER* c = SSL_get_cipher_by_value(id);
  return c ? std::string(SSL_CIPHER_standard_name(c)) + " (" + hex16(id) + ")" : hex16(id);
}

std::string group_name(uint16_t id) {
  const char* n = SSL_get_curve_name(id);
  return n ? n : hex16(id);
}

std::string version_name(uint16_t v) {
  switch (v) {
    case TLS1_3_VERSION: return "TLS 1.3";
    case TLS1_2_VERSION: return "TLS 1.2";
    case TLS1_1_VERSION: return "TLS 1.1";
    case TLS1_VERSION: return "TLS 1.0";
    default: return hex16(v);
  }
}

// ---- the throwaway identity for in-memory servers (client-context probes) -------------------

struct ProbeIdentity {
  bssl::UniquePtr<EVP_PKEY> key;
  bssl::UniquePtr<X509> cert;
  std::string der;
};

std::unique_ptr<ProbeIdentity> make_identity() {
  auto id = std::make_unique<ProbeIdentity>();
  bssl::UniquePtr<EC_KEY> ec(EC_KEY_new_by_curve_name(NID_X9_62_prime256v1));
  if (!ec || EC_KEY_generate_key(ec.get()) != 1) return nullptr;
  id->key.reset(EVP_PKEY_new());
  if (!id->key || EVP_PKEY_assign_EC_KEY(id->key.get(), ec.release()) != 1) return nullptr;
  id->cert.reset(X509_new());
  X509* x = id->cert.get();
  if (!x || X509_set_version(x, X509_VERSION_3) != 1 || ASN1_INTEGER_set(X509_get_serialNumber(x), 1) != 1) {
    return nullptr;
  }
  X509_NAME* name = X509_get_subject_name(x);
  static const char kCn[] = "fipsproxy self-probe";
  if (X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const uint8_t*>(kCn), -1, -1, 0) != 1 ||
      X509_set_issuer_name(x, name) != 1 || !X509_gmtime_adj(X509_getm_notBefore(x), -3600) ||
      !X509_gmtime_adj(X509_getm_notAfter(x), 7L * 86400) || X509_set_pubkey(x, id->key.get()) != 1 ||
      X509_sign(x, id->key.get(), EVP_sha256()) <= 0) {
    return nullptr;
  }
  uint8_t* der = nullptr;
  const int len = i2d_X509(x, &der);
  if (len <= 0) return nullptr;
  id->der.assign(reinterpret_cast<const char*>(der), static_cast<size_t>(len));
  OPENSSL_free(der);
  return id;
}

const ProbeIdentity* probe_identity() {
  static std::once_flag once;
  static std::unique_ptr<ProbeIdentity> id;
  std::call_once(once, [] {
    id = make_identity();
    ERR_clear_error();
  });
  return id.get();
}

// The probe client accepts exactly the throwaway certificate (and nothing else): the probes are
// about negotiation; chain verification has its own tests and runs on every real connection.
ssl_verify_result_t accept_probe_cert(SSL* ssl, uint8_t* alert) {
  const ProbeIdentity* id = probe_identity();
  const STACK_OF(CRYPTO_BUFFER)* chain = SSL_get0_peer_certificates(ssl);
  if (id != nullptr && chain != nullptr && sk_CRYPTO_BUFFER_num(chain) >= 1) {
    const CRYPTO_BUFFER* leaf = sk_CRYPTO_BUFFER_value(chain, 0);
    if (CRYPTO_BUFFER_len(leaf) == id->der.size() &&
        std::memcmp(CRYPTO_BUFFER_data(leaf), id->der.data(), id->der.size()) == 0) {
      return ssl_verify_ok;
    }
  }
  *alert = SSL_AD_BAD_CERTIFICATE;
  return ssl_verify_invalid;
}

// ---- wire helpers -------------------------------------------------------------------------

void put_u8(std::string& s, unsigned v) { s += static_cast<char>(v & 0xff); }
void put_u16(std::string& s, unsigned v) {
  put_u8(s, v >> 8);
  put_u8(s, v);
}
void put_u24(std::string& s, size_t v) {
  put_u8(s, static_cast<unsigned>(v >> 16));
  put_u16(s, static_cast<unsigned>(v));
}
std::string cbs_str(const CBS& c) { return std::string(reinterpret_cast<const char*>(CBS_data(&c)), CBS_len(&c)); }

struct HelloEdit {
  std::optional<std::vector<uint16_t>> ciphers;  // replace the cipher list (ServerHello: first entry)
  std::optional<uint16_t> drop_ext;             // remove this extension
};

// Rewrites the (Client|Server)Hello that starts the first record of `flight`; keeps whatever
// follows it. nullopt when the flight does not start with that message.
std::optional<std::string> rewrite_hello(const std::string& flight, uint8_t type, const HelloEdit& edit) {
  CBS in, frag, msg, body;
  CBS_init(&in, reinterpret_cast<const uint8_t*>(flight.data()), flight.size());
  uint8_t rtype, htype;
  uint16_t rversion;
  uint32_t hlen;
  if (!CBS_get_u8(&in, &rtype) || rtype != 0x16 || !CBS_get_u16(&in, &rversion) ||
      !CBS_get_u16_length_prefixed(&in, &frag)) {
    return std::nullopt;
  }
  CBS rest_of_frag = frag;
  if (!CBS_get_u8(&rest_of_frag, &htype) || htype != type || !CBS_get_u24(&rest_of_frag, &hlen) ||
      !CBS_get_bytes(&rest_of_frag, &msg, hlen)) {
    return std::nullopt;
  }
  body = msg;
  CBS version, random, sid, exts;
  if (!CBS_get_bytes(&body, &version, 2) || !CBS_get_bytes(&body, &random, 32) ||
      !CBS_get_u8_length_prefixed(&body, &sid)) {
    return std::nullopt;
  }
  std::string out_body = cbs_str(version) + cbs_str(random);
  put_u8(out_body, static_cast<unsigned>(CBS_len(&sid)));
  out_body += cbs_str(sid);
  if (type == kClientHello) {
    CBS ciphers, comp;
    if (!CBS_get_u16_length_prefixed(&body, &ciphers) || !CBS_get_u8_length_prefixed(&body, &comp)) {
      return std::nullopt;
    }
    if (edit.ciphers) {
      put_u16(out_body, static_cast<unsigned>(edit.ciphers->size() * 2));
      for (uint16_t c : *edit.ciphers) put_u16(out_body, c);
    } else {
      put_u16(out_body, static_cast<unsigned>(CBS_len(&ciphers)));
      out_body += cbs_str(ciphers);
    }
    put_u8(out_body, static_cast<unsigned>(CBS_len(&comp)));
    out_body += cbs_str(comp);
  } else {
    uint16_t cipher;
    uint8_t comp;
    if (!CBS_get_u16(&body, &cipher) || !CBS_get_u8(&body, &comp)) return std::nullopt;
    put_u16(out_body, edit.ciphers && !edit.ciphers->empty() ? edit.ciphers->front() : cipher);
    put_u8(out_body, comp);
  }
  if (CBS_len(&body) != 0) {
    if (!CBS_get_u16_length_prefixed(&body, &exts) || CBS_len(&body) != 0) return std::nullopt;
    std::string out_exts;
    while (CBS_len(&exts) != 0) {
      uint16_t ext_type;
      CBS ext_body;
      if (!CBS_get_u16(&exts, &ext_type) || !CBS_get_u16_length_prefixed(&exts, &ext_body)) return std::nullopt;
      if (edit.drop_ext && *edit.drop_ext == ext_type) continue;
      put_u16(out_exts, ext_type);
      put_u16(out_exts, static_cast<unsigned>(CBS_len(&ext_body)));
      out_exts += cbs_str(ext_body);
    }
    put_u16(out_body, static_cast<unsigned>(out_exts.size()));
    out_body += out_exts;
  }
  std::string new_frag;
  put_u8(new_frag, type);
  put_u24(new_frag, out_body.size());
  new_frag += out_body;
  new_frag += cbs_str(rest_of_frag);
  std::string out;
  put_u8(out, rtype);
  put_u16(out, rversion);
  put_u16(out, static_cast<unsigned>(new_frag.size()));
  out += new_frag;
  out += cbs_str(in);  // the records after the first
  return out;
}

// What a peer's first flight says: a Hello (parameters) or an alert.
struct HelloView {
  bool present = false;
  bool hrr = false;
  uint16_t version = 0;  // negotiated (supported_versions wins over legacy_version)
  std::vector<uint16_t> ciphers;  // ServerHello: one entry
  uint16_t group = 0;             // ServerHello key_share / HRR selected group
  std::vector<uint16_t> exts;
};
struct FlightView {
  HelloView hello;
  int alert = -1;  // description of a leading alert record
};

FlightView parse_flight(const std::string& flight, uint8_t type) {
  FlightView v;
  CBS in, frag;
  CBS_init(&in, reinterpret_cast<const uint8_t*>(flight.data()), flight.size());
  uint8_t rtype;
  uint16_t rversion;
  if (!CBS_get_u8(&in, &rtype) || !CBS_get_u16(&in, &rversion) || !CBS_get_u16_length_prefixed(&in, &frag)) {
    return v;
  }
  // A plaintext alert anywhere in the flight (TLS 1.2 servers may send their ServerHello and then
  // fail while signing the ServerKeyExchange).
  {
    CBS scan = in, sfrag;
    uint8_t stype, level, desc;
    uint16_t sver;
    if (rtype == 0x15 && CBS_get_u8(&frag, &level) && CBS_get_u8(&frag, &desc)) {
      v.alert = desc;
      return v;
    }
    while (CBS_get_u8(&scan, &stype) && CBS_get_u16(&scan, &sver) && CBS_get_u16_length_prefixed(&scan, &sfrag)) {
      if (stype == 0x15 && CBS_get_u8(&sfrag, &level) && CBS_get_u8(&sfrag, &desc)) {
        v.alert = desc;
        break;
      }
    }
  }
  uint8_t htype;
  uint32_t hlen;
  CBS body, ver, random, sid;
  if (rtype != 0x16 || !CBS_get_u8(&frag, &htype) || htype != type || !CBS_get_u24(&frag, &hlen) ||
      !CBS_get_bytes(&frag, &body, hlen) || !CBS_get_bytes(&body, &ver, 2) || !CBS_get_bytes(&body, &random, 32) ||
      !CBS_get_u8_length_prefixed(&body, &sid)) {
    return v;
  }
  HelloView& h = v.hello;
  h.version = static_cast<uint16_t>(CBS_data(&ver)[0] << 8 | CBS_data(&ver)[1]);
  if (type == kClientHello) {
    CBS ciphers, comp;
    if (!CBS_get_u16_length_prefixed(&body, &ciphers) || !CBS_get_u8_length_prefixed(&body, &comp)) return v;
    uint16_t c;
    while (CBS_get_u16(&ciphers, &c)) h.ciphers.push_back(c);
  } else {
    uint16_t c;
    uint8_t comp;
    if (!CBS_get_u16(&body, &c) || !CBS_get_u8(&body, &comp)) return v;
    h.ciphers.push_back(c);
    h.hrr = std::memcmp(CBS_data(&random), kHrrRandom, 32) == 0;
  }
  CBS exts;
  if (CBS_len(&body) != 0 && CBS_get_u16_length_prefixed(&body, &exts)) {
    uint16_t t;
    CBS eb;
    while (CBS_get_u16(&exts, &t) && CBS_get_u16_length_prefixed(&exts, &eb)) {
      h.exts.push_back(t);
      uint16_t x;
      if (type == kServerHello && t == kExtVersions && CBS_get_u16(&eb, &x)) h.version = x;
      if (type == kServerHello && t == kExtKeyShare && CBS_get_u16(&eb, &x)) h.group = x;
    }
  }
  h.present = true;
  return v;
}

bool has(const std::vector<uint16_t>& v, uint16_t x) { return std::find(v.begin(), v.end(), x) != v.end(); }

std::string describe_server_hello(const HelloView& h) {
  std::string s = h.hrr ? "HelloRetryRequest " : "ServerHello ";
  s += version_name(h.version) + ", " + cipher_name(h.ciphers.empty() ? 0 : h.ciphers.front());
  if (h.group != 0) s += ", group " + group_name(h.group);
  if (h.version == TLS1_2_VERSION) s += has(h.exts, kExtEms) ? ", EMS" : ", no EMS";
  return s;
}

// ---- in-memory endpoints and the pump ---------------------------------------------------------

struct End {
  bssl::UniquePtr<SSL> ssl;
  BIO* in = nullptr;   // owned by ssl
  BIO* out = nullptr;  // owned by ssl
  bool done = false;
  bool failed = false;
  std::optional<Error> error;
  int refusal = 0;

  bool attach(bssl::UniquePtr<SSL> s) {
    ssl = std::move(s);
    if (!ssl) return false;
    in = BIO_new(BIO_s_mem());
    out = BIO_new(BIO_s_mem());
    if (in == nullptr || out == nullptr) {
      BIO_free(in);
      BIO_free(out);
      in = out = nullptr;
      return false;
    }
    BIO_set_mem_eof_return(in, -1);
    BIO_set_mem_eof_return(out, -1);
    SSL_set_bio(ssl.get(), in, out);
    return true;
  }
  void step() {
    if (done || failed) return;
    ERR_clear_error();
    const int r = SSL_do_handshake(ssl.get());
    if (r == 1) {
      done = true;
      return;
    }
    const int e = SSL_get_error(ssl.get(), r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return;
    failed = true;
    refusal = patch_get_refusal(ssl.get());
    error = classify_handshake_failure(ssl.get(), Side::Internal);
  }
  std::string take() {
    std::string s;
    char buf[4096];
    for (int i = 0; i < 1024; ++i) {
      const int n = BIO_read(out, buf, sizeof buf);
      if (n <= 0) break;
      s.append(buf, static_cast<size_t>(n));
    }
    return s;
  }
  void give(const std::string& s) {
    if (!s.empty()) BIO_write(in, s.data(), static_cast<int>(s.size()));
  }
};

using Rewrite = std::function<std::optional<std::string>(const std::string&)>;

struct Flow {
  std::string first_c2s;   // the ClientHello as the client sent it
  std::string first_s2c;   // the server's first answer as the server sent it
  bool rewrite_failed = false;
};

// Runs both ends (at most 32 rounds). The first flight in each direction may be rewritten.
// With `stop_after_answer`, stops once the server has answered the first ClientHello.
Flow pump(End& c, End& s, const Rewrite& c2s, const Rewrite& s2c, bool stop_after_answer) {
  Flow f;
  for (int round = 0; round < 32; ++round) {
    c.step();
    std::string bytes = c.take();
    if (!bytes.empty()) {
      if (f.first_c2s.empty()) {
        f.first_c2s = bytes;
        if (c2s) {
          auto r = c2s(bytes);
          if (!r) {
            f.rewrite_failed = true;
            return f;
          }
          bytes = *r;
        }
      }
      s.give(bytes);
    }
    s.step();
    bytes = s.take();
    if (!bytes.empty()) {
      if (f.first_s2c.empty()) {
        f.first_s2c = bytes;
        if (stop_after_answer) return f;
        if (s2c) {
          auto r = s2c(bytes);
          if (!r) {
            f.rewrite_failed = true;
            return f;
          }
          bytes = *r;
        }
      }
      c.give(bytes);
    } else if (stop_after_answer && (s.failed || c.failed)) {
      return f;
    }
    if ((c.done && s.done) || c.failed || (s.failed && bytes.empty())) break;
  }
  // Let the client read a final alert.
  c.step();
  return f;
}

std::string failure_text(const End& e) {
  std::string s;
  if (e.error) s = std::string(base::token(e.error->code)) + ": " + e.error->detail;
  return s;
}

// ---- probe building blocks ----------------------------------------------------------------------

bssl::UniquePtr<SSL_CTX> new_ctx(uint16_t min_v, uint16_t max_v) {
  bssl::UniquePtr<SSL_CTX> ctx(SSL_CTX_new(TLS_method()));
  if (!ctx || SSL_CTX_set_min_proto_version(ctx.get(), min_v) != 1 ||
      SSL_CTX_set_max_proto_version(ctx.get(), max_v) != 1) {
    return nullptr;
  }
  return ctx;
}

// A probe client: P-256/P-384 unless told otherwise, so each probe varies one parameter.
struct ClientOffer {
  uint16_t min_v = TLS1_2_VERSION, max_v = TLS1_3_VERSION;
  const char* curves = "P-256:P-384";
  const char* ciphers = nullptr;  // TLS 1.2 list (nullptr: BoringSSL default)
  std::vector<uint16_t> verify_sigalgs;  // empty: BoringSSL default
  HelloEdit edit;
};

struct ServerAnswer {
  bool setup_ok = false;
  std::string setup_error;
  FlightView view;
  End server;
};

ServerAnswer offer_to(const TlsContext& tc, const ClientOffer& o) {
  ServerAnswer a;
  auto ctx = new_ctx(o.min_v, o.max_v);
  if (!ctx || SSL_CTX_set1_curves_list(ctx.get(), o.curves) != 1 ||
      (o.ciphers && SSL_CTX_set_strict_cipher_list(ctx.get(), o.ciphers) != 1) ||
      (!o.verify_sigalgs.empty() &&
       SSL_CTX_set_verify_algorithm_prefs(ctx.get(), o.verify_sigalgs.data(), o.verify_sigalgs.size()) != 1)) {
    a.setup_error = "cannot build the probe client";
    ERR_clear_error();
    return a;
  }
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_NONE, nullptr);
  End client;
  bssl::UniquePtr<SSL> cssl(SSL_new(ctx.get()));
  if (cssl) SSL_set_connect_state(cssl.get());
  if (!client.attach(std::move(cssl)) || !a.server.attach(tc.new_ssl(""))) {
    a.setup_error = "cannot create probe connections";
    ERR_clear_error();
    return a;
  }
  Rewrite rw;
  if (o.edit.ciphers || o.edit.drop_ext) {
    rw = [&](const std::string& b) { return rewrite_hello(b, kClientHello, o.edit); };
  }
  Flow f = pump(client, a.server, rw, nullptr, true);
  if (f.rewrite_failed) {
    a.setup_error = "cannot rewrite the probe ClientHello";
    return a;
  }
  a.view = parse_flight(f.first_s2c, kServerHello);
  a.setup_ok = true;
  ERR_clear_error();
  return a;
}

ProbeResult expect_refused(const std::string& name, ServerAnswer a) {
  ProbeResult r{name, false, {}};
  if (!a.setup_ok) {
    r.what = a.setup_error;
    return r;
  }
  if (!a.server.failed) {
    r.what = a.view.hello.present ? "accepted: server answered with " + describe_server_hello(a.view.hello)
                                  : "server neither answered nor refused";
    return r;
  }
  r.passed = true;
  r.what = a.view.hello.present ? "refused after " + describe_server_hello(a.view.hello) : "refused";
  if (a.view.alert >= 0) {
    r.what += ": alert " + std::to_string(a.view.alert) + " (" + SSL_alert_desc_string_long(a.view.alert) + ")";
  }
  if (std::string t = failure_text(a.server); !t.empty()) r.what += "; " + t;
  return r;
}

ProbeResult expect_approved(const std::string& name, const TlsContext& tc, uint16_t version, ServerAnswer a) {
  ProbeResult r{name, false, {}};
  const config::Profile p = tc.config().profile;
  if (!a.setup_ok) {
    r.what = a.setup_error;
    return r;
  }
  const HelloView& h = a.view.hello;
  if (!h.present) {
    r.what = "refused an approved offer";
    if (a.view.alert >= 0) r.what += ": alert " + std::to_string(a.view.alert);
    if (std::string t = failure_text(a.server); !t.empty()) r.what += "; " + t;
    return r;
  }
  const uint16_t cipher = h.ciphers.empty() ? 0 : h.ciphers.front();
  std::string bad;
  if (h.version != version) bad = "wrong version";
  else if (!policy::cipher_allowed(p, h.version, cipher)) bad = "cipher outside the policy";
  else if (version == TLS1_3_VERSION && !policy::group_allowed(p, h.group)) bad = "group outside the policy";
  else if (version == TLS1_2_VERSION && !has(h.exts, kExtEms)) bad = "no Extended Master Secret";
  else if (a.server.failed) bad = "server failed after its ServerHello: " + failure_text(a.server);
  r.what = describe_server_hello(h);
  if (!bad.empty()) {
    r.what = bad + ": " + r.what;
    return r;
  }
  r.passed = true;
  return r;
}

std::vector<ProbeResult> server_probes(const TlsContext& tc) {
  std::vector<ProbeResult> out;
  const config::TlsConfig& cfg = tc.config();
  const config::Profile p = cfg.profile;
  const uint16_t max_v = std::min<uint16_t>(cfg.max_version, policy::max_version(p));
  const uint16_t min_v = std::max<uint16_t>(cfg.min_version, policy::min_version(p));

  {
    ClientOffer o;
    o.min_v = o.max_v = TLS1_3_VERSION;
    o.edit.ciphers = std::vector<uint16_t>{kChacha13};
    out.push_back(expect_refused("tls13-chacha20-only", offer_to(tc, o)));
  }
  {
    ClientOffer o;
    o.curves = "X25519";
    out.push_back(expect_refused("x25519-only", offer_to(tc, o)));
  }
  {
    ClientOffer o;
    o.min_v = o.max_v = TLS1_1_VERSION;
    out.push_back(expect_refused("tls1.1", offer_to(tc, o)));
  }
  {
    ClientOffer o;
    o.max_v = TLS1_2_VERSION;
    o.verify_sigalgs = {SSL_SIGN_RSA_PKCS1_SHA1, SSL_SIGN_ECDSA_SHA1};
    out.push_back(expect_refused("sha1-sigalgs", offer_to(tc, o)));
  }
  {
    ClientOffer o;
    o.max_v = TLS1_2_VERSION;
    o.edit.drop_ext = kExtEms;
    out.push_back(expect_refused("tls12-no-ems", offer_to(tc, o)));
  }
  const std::string groups = policy::groups_list(p);
  const std::string ciphers = policy::tls12_cipher_list();
  const std::vector<uint16_t> sigalgs = policy::sigalg_ids(p);
  for (uint16_t v : {TLS1_3_VERSION, TLS1_2_VERSION}) {
    if (v < min_v || v > max_v) continue;
    ClientOffer o;
    o.min_v = o.max_v = v;
    o.curves = groups.c_str();
    o.ciphers = ciphers.c_str();
    o.verify_sigalgs = sigalgs;
    out.push_back(expect_approved(v == TLS1_3_VERSION ? "approved-tls13" : "approved-tls12", tc, v, offer_to(tc, o)));
  }
  return out;
}

// ---- client-context probes -------------------------------------------------------------------

struct ServerSetup {
  uint16_t min_v = TLS1_VERSION, max_v = TLS1_3_VERSION;
  const char* curves = nullptr;  // nullptr: BoringSSL default
  std::vector<uint16_t> sign_sigalgs;
  std::optional<HelloEdit> edit;  // rewrite our client's view of the ServerHello
};

struct ClientRun {
  bool setup_ok = false;
  std::string setup_error;
  End client, server;
  Flow flow;
};

ClientRun connect_from(const TlsContext& tc, const ServerSetup& s) {
  ClientRun run;
  const ProbeIdentity* id = probe_identity();
  if (id == nullptr) {
    run.setup_error = "cannot make the throwaway probe identity";
    return run;
  }
  auto ctx = new_ctx(s.min_v, s.max_v);
  if (!ctx || SSL_CTX_use_certificate(ctx.get(), id->cert.get()) != 1 ||
      SSL_CTX_use_PrivateKey(ctx.get(), id->key.get()) != 1 ||
      (s.curves && SSL_CTX_set1_curves_list(ctx.get(), s.curves) != 1) ||
      (!s.sign_sigalgs.empty() &&
       SSL_CTX_set_signing_algorithm_prefs(ctx.get(), s.sign_sigalgs.data(), s.sign_sigalgs.size()) != 1)) {
    run.setup_error = "cannot build the probe server";
    ERR_clear_error();
    return run;
  }
  bssl::UniquePtr<SSL> sssl(SSL_new(ctx.get()));
  if (sssl) SSL_set_accept_state(sssl.get());
  bssl::UniquePtr<SSL> cssl = tc.new_ssl("");
  if (cssl) SSL_set_custom_verify(cssl.get(), SSL_VERIFY_PEER, accept_probe_cert);
  if (!run.server.attach(std::move(sssl)) || !run.client.attach(std::move(cssl))) {
    run.setup_error = "cannot create probe connections";
    ERR_clear_error();
    return run;
  }
  Rewrite rw;
  if (s.edit) {
    const HelloEdit edit = *s.edit;
    rw = [edit](const std::string& b) { return rewrite_hello(b, kServerHello, edit); };
  }
  run.flow = pump(run.client, run.server, nullptr, rw, false);
  if (run.flow.rewrite_failed) {
    run.setup_error = "cannot rewrite the probe ServerHello";
    return run;
  }
  run.setup_ok = true;
  ERR_clear_error();
  return run;
}

ProbeResult client_refused(const std::string& name, ClientRun run, int required_refusal = 0) {
  ProbeResult r{name, false, {}};
  if (!run.setup_ok) {
    r.what = run.setup_error;
    return r;
  }
  if (run.client.done) {
    const HandshakeInfo h = describe_handshake(run.client.ssl.get());
    r.what = "accepted: negotiated " + h.version + " " + h.cipher + " " + h.group;
    return r;
  }
  if (!run.client.failed) {
    r.what = "client neither completed nor refused";
    return r;
  }
  if (required_refusal != 0 && run.client.refusal != required_refusal) {
    r.what = "failed, but not by the policy check (libssl patch refusal " + std::to_string(run.client.refusal) +
             "): " + failure_text(run.client);
    return r;
  }
  r.passed = true;
  r.what = "refused; " + failure_text(run.client);
  return r;
}

std::vector<ProbeResult> client_probes(const TlsContext& tc) {
  std::vector<ProbeResult> out;
  const config::TlsConfig& cfg = tc.config();
  const config::Profile p = cfg.profile;
  const uint16_t max_v = std::min<uint16_t>(cfg.max_version, policy::max_version(p));
  const uint16_t min_v = std::max<uint16_t>(cfg.min_version, policy::min_version(p));

  // An approved (default BoringSSL) server: the handshake completes inside the policy.
  ClientRun ok = connect_from(tc, ServerSetup{});
  {
    ProbeResult r{"approved-server", false, {}};
    if (!ok.setup_ok) {
      r.what = ok.setup_error;
    } else if (!ok.client.done) {
      r.what = "refused an approved server: " + failure_text(ok.client);
    } else if (Result<void> g = check_negotiated(ok.client.ssl.get(), p); !g) {
      r.what = "negotiated outside the policy: " + g.error().detail;
    } else {
      const HandshakeInfo h = describe_handshake(ok.client.ssl.get());
      r.what = h.version + " " + h.cipher + " " + h.group;
      r.passed = h.cipher.find("_GCM_") != std::string::npos;
      if (!r.passed) r.what = "not AES-GCM: " + r.what;
    }
    out.push_back(std::move(r));
  }
  // Our ClientHello: allowed suites only, never ChaCha20; EMS offered when TLS 1.2 is on.
  {
    ProbeResult r{"client-offer", false, {}};
    const HelloView h = parse_flight(ok.flow.first_c2s, kClientHello).hello;
    if (!h.present) {
      r.what = "no ClientHello captured";
    } else if (has(h.ciphers, kChacha13)) {
      r.what = "offers TLS_CHACHA20_POLY1305_SHA256";
    } else {
      std::string extra;
      for (uint16_t c : h.ciphers) {
        if (!policy::cipher_allowed(p, TLS1_3_VERSION, c) && !policy::cipher_allowed(p, TLS1_2_VERSION, c)) {
          extra += (extra.empty() ? "" : ",") + hex16(c);
        }
      }
      if (!extra.empty()) {
        r.what = "offers suites outside the policy: " + extra;
      } else if (min_v <= TLS1_2_VERSION && !has(h.exts, kExtEms)) {
        r.what = "no extended_master_secret in the ClientHello";
      } else {
        r.passed = true;
        r.what = std::to_string(h.ciphers.size()) + " suites, all allowed";
      }
    }
    out.push_back(std::move(r));
  }
  if (max_v >= TLS1_3_VERSION) {
    ServerSetup s;
    s.min_v = TLS1_3_VERSION;
    s.edit = HelloEdit{std::vector<uint16_t>{kChacha13}, std::nullopt};
    out.push_back(client_refused("chacha-selected", connect_from(tc, s), kRefusalTls13ChachaSelected));
  }
  {
    ServerSetup s;
    s.curves = "X25519";
    out.push_back(client_refused("x25519-only-server", connect_from(tc, s)));
  }
  {
    ServerSetup s;
    s.min_v = s.max_v = TLS1_1_VERSION;
    out.push_back(client_refused("tls1.1-server", connect_from(tc, s)));
  }
  {
    ServerSetup s;
    s.max_v = TLS1_2_VERSION;
    s.sign_sigalgs = {SSL_SIGN_ECDSA_SHA1};
    out.push_back(client_refused("sha1-server", connect_from(tc, s)));
  }
  if (min_v <= TLS1_2_VERSION) {
    ServerSetup s;
    s.max_v = TLS1_2_VERSION;
    s.edit = HelloEdit{std::nullopt, kExtEms};
    out.push_back(client_refused("tls12-no-ems-server", connect_from(tc, s), kRefusalNoEms));
  }
  return out;
}

}  // namespace

std::string probe_context_name(const TlsContext& tc) {
  return (tc.role() == Role::Server ? "listener " : "cluster ") + tc.name();
}

std::vector<ProbeResult> run_self_probes(const TlsContext& tc) {
  std::vector<ProbeResult> r = tc.role() == Role::Server ? server_probes(tc) : client_probes(tc);
  ERR_clear_error();
  return r;
}

Result<void> self_probe(const TlsContext& tc) {
  for (const ProbeResult& r : run_self_probes(tc)) {
    if (!r.passed) {
      return make_error(Code::TlsSetupFailed, Side::Internal, probe_context_name(tc) + ": " + r.probe + ": " + r.what);
    }
  }
  return {};
}

}  // namespace fp::certs
