#include "proxy/cli_certs.h"

#include <cstdio>
#include <string>
#include <vector>

#include "certs/demo_pki.h"
#include "certs/inspect.h"
#include "config/config.h"
#include "proxy/cli.h"

namespace fp::proxy {
namespace {

constexpr const char kCertsUsage[] =
    "usage: fipsproxy certs demo --out DIR [--force]\n"
    "       fipsproxy certs inspect [--profile strict|tls12-only|extended] FILE...\n"
    "\n"
    "  demo     make a demo PKI with the FIPS module (ECDSA P-256, SHA-256): ca.pem,\n"
    "           server.pem/.key, client.pem/.key, peer.pem/.key; keys 0600, DIR 0700\n"
    "  inspect  every certificate in each PEM file with its FIPS-POLICY verdict;\n"
    "           exit 0 all pass, 1 any violates, 2 unreadable file or bad usage\n";

int certs_usage(const std::string& msg) {
  std::fprintf(stderr, "fipsproxy: certs: %s\n%s", msg.c_str(), kCertsUsage);
  return kExitUsage;
}

int cmd_demo(const std::vector<std::string>& args) {
  std::string out;
  bool force = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--out" || a == "-o") {
      if (i + 1 >= args.size()) return certs_usage(a + " needs a directory");
      out = args[++i];
    } else if (a.rfind("--out=", 0) == 0) {
      out = a.substr(6);
    } else if (a == "--force" || a == "-f") {
      force = true;
    } else {
      return certs_usage("demo: unknown option '" + a + "'");
    }
  }
  if (out.empty()) return certs_usage("demo: missing --out DIR");
  auto files = certs::make_demo_pki(out, force);
  if (!files) {
    std::fprintf(stderr, "fipsproxy: %s\n", files.error().detail.c_str());
    switch (files.error().code) {
      case Code::Usage: return kExitUsage;
      case Code::FipsCheckFailed: return kExitFips;
      default: return kExitRuntime;
    }
  }
  std::printf("demo PKI in %s (keys and serials from the FIPS module's DRBG; ECDSA P-256, SHA-256; valid 90 days):\n",
              out.c_str());
  for (const auto& f : *files) std::printf("  %-11s %s\n", f.name.c_str(), f.summary.c_str());
  std::printf("check them with: fipsproxy certs inspect %s/*.pem\n", out.c_str());
  return kExitOk;
}

std::string join(const std::vector<std::string>& v, const char* sep) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : sep) + x;
  return s;
}

int cmd_inspect(const std::vector<std::string>& args) {
  config::Profile profile = config::Profile::Strict;
  std::vector<std::string> files;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--profile") {
      if (i + 1 >= args.size()) return certs_usage("inspect: --profile needs strict, tls12-only or extended");
      const std::string& p = args[++i];
      if (p == "strict") {
        profile = config::Profile::Strict;
      } else if (p == "tls12-only") {
        profile = config::Profile::Tls12Only;
      } else if (p == "extended") {
        profile = config::Profile::Extended;
      } else {
        return certs_usage("inspect: unknown profile '" + p + "' (strict, tls12-only, extended)");
      }
    } else if (a.size() > 1 && a[0] == '-') {
      return certs_usage("inspect: unknown option '" + a + "'");
    } else {
      files.push_back(a);
    }
  }
  if (files.empty()) return certs_usage("inspect: no FILE given");
  bool unreadable = false, violation = false;
  size_t total = 0, failed = 0;
  for (const std::string& path : files) {
    auto certs = certs::inspect_file(path, profile);
    if (!certs) {
      std::fflush(stdout);
      std::fprintf(stderr, "%s\n", certs.error().detail.c_str());
      unreadable = true;
      continue;
    }
    for (size_t i = 0; i < certs->size(); ++i) {
      const certs::InspectedCert& c = (*certs)[i];
      ++total;
      std::printf("%s [%zu]: %s\n", path.c_str(), i, c.subject.c_str());
      std::printf("  issuer:     %s\n", c.issuer.c_str());
      std::printf("  kind:       %s, X.509 v%ld, serial %s\n",
                  c.ca ? (c.self_signed ? "CA (self-signed trust anchor)" : "CA (intermediate)") : "end entity",
                  c.version, c.serial.c_str());
      std::printf("  SANs:       %s\n", c.sans.empty() ? "(none)" : join(c.sans, ", ").c_str());
      if (!c.ca) std::printf("  EKU:        %s\n", c.eku.empty() ? "(none)" : join(c.eku, ", ").c_str());
      std::printf("  key:        %s\n", c.key.c_str());
      std::printf("  signature:  %s (%s)\n", c.signature.c_str(), c.sig_hash.empty() ? "hash unknown" : c.sig_hash.c_str());
      std::printf("  validity:   %s .. %s (%ld days %s)\n", c.not_before.c_str(), c.not_after.c_str(),
                  c.days_left < 0 ? -c.days_left : c.days_left, c.days_left < 0 ? "ago" : "left");
      std::printf("  sha256:     %s\n", c.sha256.c_str());
      for (const auto& n : c.notes) std::printf("  note:       %s\n", n.c_str());
      if (c.violations.empty()) {
        std::printf("  FIPS-POLICY: pass (profile %s)\n", config::profile_name(profile));
      } else {
        violation = true;
        ++failed;
        std::printf("  FIPS-POLICY: FAIL (profile %s)\n", config::profile_name(profile));
        for (const auto& v : c.violations) std::printf("    - %s\n", v.c_str());
      }
    }
  }
  std::printf("%zu certificate(s), %zu pass, %zu fail%s\n", total, total - failed, failed,
              unreadable ? ", some files unreadable" : "");
  if (unreadable) return kExitUsage;
  return violation ? kExitRuntime : kExitOk;
}

}  // namespace

int cmd_certs(const std::vector<std::string>& args) {
  if (args.empty()) return certs_usage("missing subcommand (demo or inspect)");
  const std::vector<std::string> rest(args.begin() + 1, args.end());
  if (args[0] == "demo") return cmd_demo(rest);
  if (args[0] == "inspect") return cmd_inspect(rest);
  if (args[0] == "help" || args[0] == "--help" || args[0] == "-h") {
    std::fputs(kCertsUsage, stdout);
    return kExitOk;
  }
  return certs_usage("unknown subcommand '" + args[0] + "'");
}

}  // namespace fp::proxy
