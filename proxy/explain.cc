#include "proxy/explain.h"

#include <algorithm>

#include "certs/audit_chain.h"  // sha256_hex (FIPS module)
#include "certs/cert_info.h"
#include "certs/policy.h"
#include "proxy/base/json.h"

namespace fp::proxy {
namespace {

namespace policy = certs::policy;

const char* version_name(uint16_t v) {
  switch (v) {
    case 0x0303: return "TLS 1.2";
    case 0x0304: return "TLS 1.3";
    default: return "?";
  }
}

std::vector<std::string> names(const std::vector<policy::NamedId>& v) {
  std::vector<std::string> out;
  for (const auto& n : v) out.push_back(n.name);
  return out;
}

std::string join(const std::vector<std::string>& v, const char* sep = ", ") {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : sep) + s;
  return out;
}

std::string json_objects(const std::vector<std::string>& objs) {
  std::string out = "[";
  for (size_t i = 0; i < objs.size(); ++i) out += (i ? "," : "") + objs[i];
  return out + "]";
}

// One block (a listener's or a cluster's tls), everything explain prints about it.
struct Block {
  std::string kind;  // "listener" | "cluster"
  std::string name;
  std::vector<std::pair<std::string, std::string>> header;  // address, cluster, endpoints...
  bool tls = false;
  // Effective policy.
  std::string role, profile;
  std::vector<std::string> versions, tls12, tls13, groups, sigalgs;
  std::string ems, renegotiation = "off", early_data = "off";
  std::string client_cert;
  std::vector<std::string> allow_spiffe, allow_dns, alpn;
  std::string sni;
  // Material.
  std::string cert_path, key_path, ca_path;
  std::vector<certs::CertInfo> chain, trust;
  std::vector<std::string> crl_paths;
  std::vector<certs::CrlInfo> crls;
  std::string digest;
};

std::string canonical(const Block& b) {
  std::string s;
  auto line = [&](const std::string& k, const std::string& v) { s += k + "=" + v + "\n"; };
  line("tls", b.tls ? "on" : "off");
  if (!b.tls) return s;
  line("role", b.role);
  line("profile", b.profile);
  line("versions", join(b.versions, ":"));
  line("tls12", join(b.tls12, ":"));
  line("tls13", join(b.tls13, ":"));
  line("groups", join(b.groups, ":"));
  line("sigalgs", join(b.sigalgs, ":"));
  line("ems", b.ems);
  line("renegotiation", b.renegotiation);
  line("early_data", b.early_data);
  line("client_cert", b.client_cert);
  line("allow_spiffe", join(b.allow_spiffe, ":"));
  line("allow_dns", join(b.allow_dns, ":"));
  line("alpn", join(b.alpn, ":"));
  line("sni", b.sni);
  for (const auto& c : b.chain) line("cert", c.sha256);
  for (const auto& c : b.trust) line("trust", c.sha256);
  std::vector<std::string> issuers;
  for (const auto& c : b.crls) issuers.push_back(c.issuer);
  std::sort(issuers.begin(), issuers.end());
  issuers.erase(std::unique(issuers.begin(), issuers.end()), issuers.end());
  for (const auto& i : issuers) line("crl_issuer", i);
  return s;
}

Result<void> fill_tls(Block& b, const config::TlsConfig& t, bool server, const std::string& endpoint_sni) {
  b.tls = true;
  b.role = server ? "server" : "client";
  b.profile = config::profile_name(t.profile);
  const uint16_t lo = std::max(t.min_version, policy::min_version(t.profile));
  const uint16_t hi = std::min(t.max_version, policy::max_version(t.profile));
  for (uint16_t v = lo; v <= hi; ++v) b.versions.push_back(version_name(v));
  if (lo <= 0x0303 && hi >= 0x0303) {
    b.tls12 = names(policy::tls12_suites());
    b.ems = "required";
  } else {
    b.ems = "n/a (no TLS 1.2)";
  }
  if (hi >= 0x0304) b.tls13 = names(policy::tls13_suites());
  b.groups = names(policy::groups(t.profile));
  b.sigalgs = names(policy::sigalgs(t.profile));
  if (server) {
    b.client_cert = t.require_client_cert ? "required" : "not requested";
  } else {
    b.client_cert = t.cert.empty() ? "none presented" : "presented";
  }
  b.allow_spiffe = t.allow_spiffe;
  b.allow_dns = t.allow_dns;
  b.alpn = t.alpn;
  if (!server) b.sni = !t.sni.empty() ? t.sni : endpoint_sni;
  b.cert_path = t.cert;
  b.key_path = t.key;
  b.ca_path = t.ca;
  if (!t.cert.empty()) {
    auto c = certs::describe_chain_file(t.cert);
    if (!c) return c.error();
    b.chain = std::move(c.value());
  }
  if (!t.ca.empty()) {
    auto c = certs::describe_chain_file(t.ca);
    if (!c) return c.error();
    b.trust = std::move(c.value());
  }
  // A server can only pick TLS 1.2 suites whose authentication matches its own key.
  if (server && !b.chain.empty()) {
    const bool ec = b.chain.front().key.rfind("EC ", 0) == 0;
    // A plain loop, not erase_if with a lambda: clang 14 embeds a lambda's source path in the
    // binary despite -ffile-prefix-map, which breaks reproducible builds (deploy/repro-check.sh).
    std::vector<std::string> kept;
    for (std::string& n : b.tls12) {
      if (n.find(ec ? "-RSA-" : "-ECDSA-") == std::string::npos) kept.push_back(std::move(n));
    }
    b.tls12 = std::move(kept);
  }
  b.crl_paths = t.crl;
  for (const auto& p : t.crl) {
    auto c = certs::describe_crl_file(p);
    if (!c) return c.error();
    b.crls.insert(b.crls.end(), c.value().begin(), c.value().end());
  }
  return {};
}

std::string cert_line(const certs::CertInfo& c) {
  return c.subject + "; " + c.key + "; " + (c.self_signed ? "self-signed " : "signed ") +
         (c.sig_hash.empty() ? c.signature : c.sig_hash) + "; not after " + c.not_after + "; sha256 " + c.sha256;
}

std::string render_text(const Block& b) {
  std::string o = b.kind + " " + b.name + "\n";
  auto kv = [&](const std::string& k, const std::string& v) { o += "  " + k + ": " + v + "\n"; };
  for (const auto& [k, v] : b.header) kv(k, v);
  if (!b.tls) {
    kv("tls", "off (plaintext)");
    kv("digest", b.digest);
    return o;
  }
  kv("role", b.role == "server" ? "server (TLS termination)" : "client (TLS origination)");
  kv("profile", b.profile);
  kv("versions", join(b.versions));
  kv("tls1.2 suites", b.tls12.empty() ? "(none)" : join(b.tls12));
  kv("tls1.3 suites", b.tls13.empty() ? "(none)" : join(b.tls13));
  kv("groups", join(b.groups));
  kv("sigalgs", join(b.sigalgs));
  kv("extended master secret", b.ems);
  kv("renegotiation", b.renegotiation);
  kv("0-RTT", b.early_data);
  kv("client certificate", b.client_cert);
  const std::string any = "(any identity the CA vouches for)";
  kv("allow_spiffe", b.allow_spiffe.empty() ? (b.allow_dns.empty() ? any : "(none)") : join(b.allow_spiffe));
  kv("allow_dns", b.allow_dns.empty() ? (b.allow_spiffe.empty() ? any : "(none)") : join(b.allow_dns));
  kv("alpn", b.alpn.empty() ? "(none)" : join(b.alpn));
  if (b.role == "client") kv("sni", b.sni.empty() ? "(none sent)" : b.sni);
  if (b.chain.empty()) {
    kv("cert", "(none)");
  } else {
    kv("cert", b.cert_path + " (key " + b.key_path + ")");
    for (size_t i = 0; i < b.chain.size(); ++i) o += "    [" + std::to_string(i) + "] " + cert_line(b.chain[i]) + "\n";
  }
  if (b.trust.empty()) {
    kv("trust", "(none: the peer is not verified)");
  } else {
    kv("trust", b.ca_path);
    for (size_t i = 0; i < b.trust.size(); ++i) o += "    [" + std::to_string(i) + "] " + cert_line(b.trust[i]) + "\n";
  }
  if (b.crl_paths.empty()) {
    kv("crl", "(none: revocation is not checked)");
  } else {
    kv("crl", join(b.crl_paths) + " (whole chain)");
    for (const auto& c : b.crls) {
      o += "    " + c.issuer + "; " + std::to_string(c.revoked) + " revoked; next update " +
           (c.next_update.empty() ? "(none)" : c.next_update) + "\n";
    }
  }
  kv("digest", b.digest);
  return o;
}

std::string cert_json(const certs::CertInfo& c) {
  return base::JsonObject()
      .str("subject", c.subject)
      .str("issuer", c.issuer)
      .str("serial", c.serial)
      .str("key", c.key)
      .str("signature", c.signature)
      .str("sig_hash", c.sig_hash)
      .str("not_before", c.not_before)
      .str("not_after", c.not_after)
      .boolean("self_signed", c.self_signed)
      .str("sha256", c.sha256)
      .done();
}

std::string render_json(const Block& b) {
  base::JsonObject o;
  o.str("kind", b.kind).str("name", b.name);
  for (const auto& [k, v] : b.header) o.str(k, v);
  o.boolean("tls", b.tls);
  if (b.tls) {
    o.str("role", b.role).str("profile", b.profile);
    o.str_array("versions", b.versions).str_array("tls12_suites", b.tls12).str_array("tls13_suites", b.tls13);
    o.str_array("groups", b.groups).str_array("sigalgs", b.sigalgs);
    o.str("extended_master_secret", b.ems).str("renegotiation", b.renegotiation).str("early_data", b.early_data);
    o.str("client_certificate", b.client_cert);
    o.str_array("allow_spiffe", b.allow_spiffe).str_array("allow_dns", b.allow_dns).str_array("alpn", b.alpn);
    if (b.role == "client") o.str("sni", b.sni);
    o.str("cert_file", b.cert_path).str("key_file", b.key_path).str("ca_file", b.ca_path);
    std::vector<std::string> chain, trust, crls;
    for (const auto& c : b.chain) chain.push_back(cert_json(c));
    for (const auto& c : b.trust) trust.push_back(cert_json(c));
    for (const auto& c : b.crls) {
      crls.push_back(base::JsonObject()
                         .str("issuer", c.issuer)
                         .str("last_update", c.last_update)
                         .str("next_update", c.next_update)
                         .unum("revoked", c.revoked)
                         .done());
    }
    o.raw("chain", json_objects(chain)).raw("trust", json_objects(trust));
    o.str_array("crl_files", b.crl_paths).raw("crls", json_objects(crls));
  }
  o.str("digest", b.digest);
  return o.done();
}

}  // namespace

Result<std::string> explain_config(const config::Snapshot& cfg, bool json) {
  std::vector<Block> blocks;
  for (const config::Listener& l : cfg.listeners) {
    Block b;
    b.kind = "listener";
    b.name = l.name;
    b.header = {{"address", l.address.text}, {"cluster", l.cluster}, {"mode", config::mode_name(l.mode)}};
    if (l.tls) {
      if (Result<void> r = fill_tls(b, *l.tls, true, ""); !r) return r.error();
    }
    blocks.push_back(std::move(b));
  }
  for (const config::Cluster& c : cfg.clusters) {
    Block b;
    b.kind = "cluster";
    b.name = c.name;
    std::vector<std::string> eps;
    for (const auto& e : c.endpoints) eps.push_back(e.text);
    b.header = {{"endpoints", join(eps)}};
    const bool odst = c.type == config::ClusterType::OriginalDst;
    if (odst) {
      b.header = {{"endpoints", "the original destination (type = original_dst)" +
                                    (c.port ? ", port " + std::to_string(c.port) : std::string())}};
    }
    if (c.tls) {
      // Without a configured sni, each endpoint's host is sent when it is a DNS name.
      std::string sni;
      if (c.tls->sni.empty()) sni = odst ? "(none: the destination is an IP address)" : "(each endpoint's host, if a DNS name)";
      if (Result<void> r = fill_tls(b, *c.tls, false, sni); !r) return r.error();
    }
    blocks.push_back(std::move(b));
  }
  std::string all;
  for (Block& b : blocks) {
    b.digest = certs::sha256_hex(canonical(b)).substr(0, 16);
    all += b.kind + " " + b.name + " " + b.digest + "\n";
  }
  const std::string config_digest = certs::sha256_hex(all).substr(0, 16);

  if (json) {
    std::vector<std::string> objs;
    for (const Block& b : blocks) objs.push_back(render_json(b));
    return base::JsonObject()
               .str("config", cfg.path)
               .raw("blocks", json_objects(objs))
               .str("digest", config_digest)
               .done() +
           "\n";
  }
  std::string out = "effective TLS policy of " + cfg.path + "\n\n";
  for (const Block& b : blocks) out += render_text(b) + "\n";
  out += "config digest: " + config_digest + " (listeners and clusters by name and digest)\n";
  return out;
}

}  // namespace fp::proxy
