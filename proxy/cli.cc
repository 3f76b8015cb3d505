#include "proxy/cli.h"

#include <uv.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include <toml++/toml.h>

#include "certs/audit_chain.h"
#include "certs/cbom.h"
#include "certs/fips_self_check.h"
#include "config/config.h"
#include "build_info.h"
#include "proxy/cli_certs.h"
#include "proxy/fips_baseline.h"
#include "proxy/explain.h"
#include "proxy/sandbox.h"
#include "proxy/server.h"
#include "proxy/speed.h"

namespace fp::proxy {

namespace {

constexpr const char kUsage[] =
    "usage: fipsproxy <command> [options]\n"
    "\n"
    "commands:\n"
    "  run -c FILE            start the proxy (FIPS checks, config, certs, bind, serve)\n"
    "  check -c FILE [--explain [--json]]\n"
    "                         validate the config and load every certificate; exit 0 or 2;\n"
    "                         --explain prints the effective TLS policy per listener/cluster\n"
    "  fips-status [--json]   run the FIPS startup checks and print the report; exit 0 or 3\n"
    "  fips-status --diff F   compare with a baseline saved by `fips-status --json`; exit 0 or 3\n"
    "  version                print versions of fipsproxy, the FIPS module and libraries\n"
    "  cbom [-c FILE]         CycloneDX 1.6 cryptographic bill of materials (JSON)\n"
    "  certs demo --out DIR   a demo PKI (CA, server, client, peer) from the FIPS module's DRBG\n"
    "  certs inspect FILE...  per certificate: key, signature, SANs, validity, FIPS-policy verdict\n"
    "  audit verify FILE...   check the hash chain of audit logs; exit 0 or 1\n"
    "  speed [--seconds S]    the FIPS module's raw limits on this core: AES-128-GCM 16 KiB\n"
    "                         records (MiB/s) and ECDSA P-256 signs/s (bench/ reads them)\n"
    "  help                   this text\n"
    "\n"
    "exit codes: 0 ok, 1 runtime failure, 2 bad usage or config, 3 FIPS self-check failure\n";

int usage_error(const std::string& msg) {
  std::fprintf(stderr, "fipsproxy: %s\n%s", msg.c_str(), kUsage);
  return kExitUsage;
}

// Parses "-c FILE" / "--config FILE" / "--config=FILE".
bool config_arg(const std::vector<std::string>& args, std::string& path, std::string& err) {
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "-c" || a == "--config") {
      if (i + 1 >= args.size()) {
        err = a + " needs a file";
        return false;
      }
      path = args[++i];
    } else if (a.rfind("--config=", 0) == 0) {
      path = a.substr(9);
    } else if (a == "--explain") {
      continue;
    } else {
      err = "unknown option '" + a + "'";
      return false;
    }
  }
  if (path.empty()) {
    err = "missing -c FILE";
    return false;
  }
  return true;
}

int cmd_fips_status(const std::vector<std::string>& args) {
  bool json = false;
  std::string diff_path;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--json") {
      json = true;
    } else if (args[i] == "--diff" && i + 1 < args.size()) {
      diff_path = args[++i];
    } else {
      return usage_error("fips-status: unknown option '" + args[i] + "'");
    }
  }
  certs::FipsReport report = certs::run_fips_checks();
  certs::hash_files(report);
  if (!diff_path.empty()) {
    auto diff = fips_baseline_diff(report, diff_path);
    if (!diff) {
      std::fprintf(stderr, "fipsproxy: %s\n", diff.error().detail.c_str());
      return kExitUsage;
    }
    if (diff->empty()) {
      std::printf("no drift from %s\n", diff_path.c_str());
      return report.ok() ? kExitOk : kExitFips;
    }
    std::printf("drift from %s:\n", diff_path.c_str());
    for (const auto& d : *diff) std::printf("  %s\n", d.c_str());
    return kExitFips;
  }
  std::string out = json ? report.to_json() : report.to_text();
  std::fwrite(out.data(), 1, out.size(), stdout);
  if (!out.empty() && out.back() != '\n') std::fputc('\n', stdout);
  if (!report.ok()) {
    const certs::FipsCheck* f = report.first_failure();
    std::fprintf(stderr, "fipsproxy: FIPS check failed: %s: %s\n", f ? f->name.c_str() : "?",
                 f ? f->detail.c_str() : "?");
    return kExitFips;
  }
  return kExitOk;
}

int cmd_version() {
  certs::FipsReport report = certs::run_fips_checks();
  std::printf("fipsproxy %s\n", build::kVersion);
  std::printf("fips module: %s %lu (%s %s, BoringSSL %s, libssl patch %.16s)\n",
              report.module_name.empty() ? "BoringCrypto" : report.module_name.c_str(),
              report.module_version, build::kSourcePackage, build::kSourceVersion,
              build::kBoringsslRevision, build::kPatchSha256);
  std::printf("libuv %s\n", uv_version_string());
  std::printf("llhttp 8.1.0 (Debian node-llhttp sources)\n");
  std::printf("toml++ %d.%d.%d\n", TOML_LIB_MAJOR, TOML_LIB_MINOR, TOML_LIB_PATCH);
  return kExitOk;
}

int cmd_check(const std::vector<std::string>& all_args) {
  // check -c FILE [--explain [--json]]
  bool explain = false, json = false;
  std::vector<std::string> args;
  for (const std::string& a : all_args) {
    if (a == "--explain") {
      explain = true;
    } else if (a == "--json") {
      json = true;
    } else {
      args.push_back(a);
    }
  }
  if (json && !explain) return usage_error("check: --json needs --explain");
  std::string path, err;
  if (!config_arg(args, path, err)) return usage_error("check: " + err);
  config::LoadResult loaded = config::load_file(path);
  if (!loaded.errors.empty()) {
    for (const auto& e : loaded.errors) std::fprintf(stderr, "%s\n", e.str().c_str());
    std::fprintf(stderr, "fipsproxy: %zu configuration error(s)\n", loaded.errors.size());
    return kExitUsage;
  }
  // [process] user/group must exist here too; the root rule depends on who runs `run`, not
  // on the config, so `check` does not apply it.
  if (auto id = sandbox::resolve_identity(loaded.snapshot->process, false); !id) {
    std::fprintf(stderr, "%s\n", id.error().detail.c_str());
    return kExitUsage;
  }
  auto rt = build_runtime(std::move(*loaded.snapshot), nullptr);
  if (!rt) {
    std::fprintf(stderr, "%s\n", rt.error().detail.c_str());
    return kExitUsage;
  }
  if (Result<void> p = probe_runtime(**rt); !p) {
    std::fprintf(stderr, "fipsproxy: policy self-probe failed: %s\n", p.error().detail.c_str());
    return kExitFips;
  }
  if (explain) {
    Result<std::string> text = explain_config((*rt)->cfg, json);
    if (!text) {
      std::fprintf(stderr, "%s\n", text.error().detail.c_str());
      return kExitUsage;
    }
    std::fwrite(text->data(), 1, text->size(), stdout);
    if (json) return kExitOk;  // stdout is one JSON object
  }
  std::printf("%s: ok (%zu listener(s), %zu cluster(s))\n", path.c_str(), (*rt)->listeners.size(),
              (*rt)->clusters.size());
  return kExitOk;
}

// Every cert/CA file a config names, in config order, without repeats.
std::vector<std::string> config_cert_files(const config::Snapshot& cfg) {
  std::vector<std::string> files;
  auto add = [&](const std::optional<config::TlsConfig>& t) {
    if (!t) return;
    for (const std::string* f : {&t->cert, &t->ca}) {
      if (!f->empty() && std::find(files.begin(), files.end(), *f) == files.end()) files.push_back(*f);
    }
  };
  for (const auto& l : cfg.listeners) add(l.tls);
  for (const auto& c : cfg.clusters) add(c.tls);
  return files;
}

int cmd_cbom(const std::vector<std::string>& args) {
  std::vector<std::string> files;
  std::string profile = "strict";
  if (!args.empty()) {
    std::string path, err;
    if (!config_arg(args, path, err)) return usage_error("cbom: " + err);
    config::LoadResult loaded = config::load_file(path);
    if (!loaded.errors.empty()) {
      for (const auto& e : loaded.errors) std::fprintf(stderr, "%s\n", e.str().c_str());
      return kExitUsage;
    }
    files = config_cert_files(*loaded.snapshot);
    for (const auto& l : loaded.snapshot->listeners) {
      if (l.tls && l.tls->profile == config::Profile::Extended) profile = "extended";
    }
  }
  auto certs = certs::cbom_certs_from_files(files);
  if (!certs) {
    std::fprintf(stderr, "fipsproxy: %s\n", certs.error().detail.c_str());
    return kExitUsage;
  }
  certs::FipsReport report = certs::run_fips_checks();
  certs::hash_files(report);
  std::string out = certs::make_cbom(report, *certs, profile);
  std::printf("%s\n", out.c_str());
  return kExitOk;
}

int cmd_audit(const std::vector<std::string>& args) {
  if (args.empty() || args[0] != "verify" || args.size() < 2) {
    return usage_error("audit: expected `audit verify FILE...`");
  }
  std::vector<std::string> files(args.begin() + 1, args.end());
  certs::AuditVerifyResult r = certs::verify_audit_files(files);
  if (!r.ok) {
    std::printf("%s\n", r.first_break.c_str());
    return kExitRuntime;
  }
  std::printf("ok: %zu records%s; head %s\n", r.records,
              r.anchored_at_genesis ? " from genesis" : " (oldest file starts at a rotation)",
              r.head.c_str());
  return kExitOk;
}

int cmd_run(const std::vector<std::string>& args) {
  std::string path, err;
  if (!config_arg(args, path, err)) return usage_error("run: " + err);
  Server server;
  return server.run(path);
}

}  // namespace

int cli_main(int argc, char** argv) {
  if (argc < 2) return usage_error("missing command");
  const std::string cmd = argv[1];
  std::vector<std::string> args(argv + 2, argv + argc);
  if (cmd == "run") return cmd_run(args);
  if (cmd == "check") return cmd_check(args);
  if (cmd == "fips-status") return cmd_fips_status(args);
  if (cmd == "version" || cmd == "--version") return cmd_version();
  if (cmd == "cbom") return cmd_cbom(args);
  if (cmd == "certs") return cmd_certs(args);
  if (cmd == "audit") return cmd_audit(args);
  if (cmd == "speed") return cmd_speed(args);
  if (cmd == "help" || cmd == "--help" || cmd == "-h") {
    std::fputs(kUsage, stdout);
    return kExitOk;
  }
  return usage_error("unknown command '" + cmd + "'");
}

}  // namespace fp::proxy
