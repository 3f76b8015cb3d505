#include "proxy/stats.h"

#include <cstdio>

namespace fp::proxy {

std::string series(std::string_view name, const Labels& labels) {
  std::string s(name);
  if (labels.empty()) return s;
  s += '{';
  bool first = true;
  for (const auto& [k, v] : labels) {
    if (!first) s += ',';
    first = false;
    s += k;
    s += "=\"";
    for (char c : v) {
      if (c == '\\') {
        s += "\\\\";
      } else if (c == '"') {
        s += "\\\"";
      } else if (c == '\n') {
        s += "\\n";
      } else {
        s += c;
      }
    }
    s += '"';
  }
  s += '}';
  return s;
}

const std::vector<MetricHelp>& metric_catalogue() {
  static const std::vector<MetricHelp> kMetrics = {
      {"fipsproxy_build_info", "gauge", "fipsproxy version and the FIPS module it runs on"},
      {"fipsproxy_fips_mode", "gauge", "1 when the BoringCrypto module reports FIPS mode"},
      {"fipsproxy_fips_module_version", "gauge", "FIPS_version() of the loaded module"},
      {"fipsproxy_fips_self_test_passed", "gauge", "1 when the startup self-tests and checks passed"},
      {"fipsproxy_ready", "gauge", "1 when /ready answers 200"},
      {"fipsproxy_selfprobe_passed", "gauge", "1 when the last in-memory policy self-probe of every context passed"},
      {"fipsproxy_selfprobe_runs_total", "counter", "periodic policy self-probe runs"},
      {"fipsproxy_config_generation", "gauge", "generation of the running configuration"},
      {"fipsproxy_reloads_total", "counter", "configuration reloads and certificate rotations by result"},
      {"fipsproxy_downstream_connections_total", "counter", "connections accepted per listener"},
      {"fipsproxy_downstream_connections_active", "gauge", "connections open per listener"},
      {"fipsproxy_accept_errors_total", "counter", "failed accepts per listener and error (e.g. EMFILE: the pending connection is dropped)"},
      {"fipsproxy_connection_closes_total", "counter", "connections closed per listener, reason and side"},
      {"fipsproxy_tls_handshakes_total", "counter", "completed TLS handshakes by role, version, suite, group and signature algorithm"},
      {"fipsproxy_tls_policy_rejections_total", "counter", "handshakes refused or closed by the FIPS policy or peer verification, by reason"},
      {"fipsproxy_bytes_total", "counter", "plaintext bytes per listener and direction"},
      {"fipsproxy_audit_records_total", "counter", "handshake audit records written to the chain"},
      {"fipsproxy_audit_dropped_total", "counter", "audit records dropped because the writer queue was full (the chain records each gap)"},
      {"fipsproxy_audit_write_errors_total", "counter", "audit log write errors"},
      {"fipsproxy_upstream_endpoint_healthy", "gauge", "1 when the active health checks consider the endpoint up"},
      {"fipsproxy_health_checks_total", "counter", "active health check results per endpoint"},
      {"fipsproxy_upstream_active_connections", "gauge", "connections in flight per upstream endpoint (all workers)"},
      {"fipsproxy_upstream_endpoint_ejected", "gauge", "workers on which the endpoint is currently ejected"},
      {"fipsproxy_upstream_connect_retries_total", "counter", "upstream connects retried on another endpoint"},
      {"fipsproxy_socket_writes_total", "counter", "Socket writes by path: direct (uv_try_write took every byte at once, no copy, no request) or queued (the rest went through uv_write)"},
      {"fipsproxy_write_copied_bytes_total", "counter", "Plaintext payload bytes copied because the socket did not take them at once (0 while no socket pushes back)"},
      {"fipsproxy_write_coalesced_bytes_total", "counter", "http1: response bytes copied to be sealed as one TLS record with the rebuilt head (a head and a body that fit 16 KiB; larger bodies are sealed in place)"},
      {"fipsproxy_upstream_retries_total", "counter", "HTTP/1 requests sent again on a new upstream connection because a reused one closed before any byte of the answer (idempotent, bodyless requests, once each)"},
      {"fipsproxy_upstream_pool_reuses_total", "counter", "HTTP/1 requests sent on a pooled keep-alive upstream connection"},
      {"fipsproxy_upstream_pool_closed_total", "counter", "upstream connections not kept or closed by the keep-alive pool, by reason"},
      {"fipsproxy_http1_requests_total", "counter", "HTTP/1 requests answered per listener and status class"},
      {"fipsproxy_egress_requests_total", "counter", "egress requests allowed per destination rule"},
      {"fipsproxy_egress_denied_total", "counter", "egress requests refused (403/400) by reason"},
      {"fipsproxy_egress_dns_lookups_total", "counter", "egress name lookups: resolved, or served from the dns_ttl cache"},
      {"fipsproxy_upstream_ejections_total", "counter", "endpoints ejected by passive outlier detection"},
      {"fipsproxy_upstream_ejections_skipped_total", "counter", "ejections skipped because max_ejection_percent was reached"},
      {"fipsproxy_upstream_no_healthy_total", "counter", "connections refused because no endpoint was eligible"},
      {"fipsproxy_http1_rejections_total", "counter", "HTTP/1 requests refused (strict parsing, limits, filters) and invalid upstream responses, by reason"},
      {"fipsproxy_http1_authz_denied_total", "counter", "HTTP/1 requests refused with 403 by identity_authz, per listener and reason (identity_missing, identity_denied)"},
      {"fipsproxy_cert_not_after_timestamp_seconds", "gauge", "expiry (notAfter, Unix seconds) of each loaded certificate"},
      {"fipsproxy_admin_requests_total", "counter", "admin endpoint requests by path and status"},
  };
  return kMetrics;
}

std::string render_prometheus(const std::map<std::string, double>& values) {
  std::string out;
  for (const MetricHelp& m : metric_catalogue()) {
    const std::string name = m.name;
    bool header = false;
    for (const auto& [key, value] : values) {
      // Exact name, then either end or '{'.
      if (key.compare(0, name.size(), name) != 0) continue;
      if (key.size() != name.size() && key[name.size()] != '{') continue;
      if (!header) {
        out += "# HELP " + name + " " + m.help + "\n# TYPE " + name + " " + m.type + "\n";
        header = true;
      }
      char buf[64];
      if (value >= -9.0e15 && value <= 9.0e15 && value == static_cast<double>(static_cast<int64_t>(value))) {
        std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(value));
      } else {
        std::snprintf(buf, sizeof buf, "%.6g", value);
      }
      out += key + " " + buf + "\n";
    }
  }
  return out;
}

}  // namespace fp::proxy
