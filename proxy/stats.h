#pragma once
// Counters. Each worker owns one Stats and is the only thread that changes it (no locks on the
// data path); the control thread asks each worker for a copy on scrape and merges them.
// Series are Prometheus names with labels already rendered: `name{k="v",...}`.

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace fp::proxy {

using Labels = std::vector<std::pair<std::string_view, std::string_view>>;

// Renders `name{k="v",...}` with label values escaped per the Prometheus text format.
std::string series(std::string_view name, const Labels& labels);

// Per-write counters of the byte path: plain integers bumped on every socket write (no map
// lookup on the hot path), rendered as series only on scrape.
struct WriteStats {
  uint64_t direct_writes = 0;  // written at once by uv_try_write: no request, no copy
  uint64_t queued_writes = 0;  // (the rest) queued with uv_write, completed by a callback
  uint64_t copied_bytes = 0;   // payload bytes copied because the socket did not take them at once
  uint64_t coalesced_bytes = 0;  // http1 response bytes joined into one TLS record (head + small body)
};

class Stats {
 public:
  void add(const std::string& series_key, uint64_t n = 1) { counters_[series_key] += n; }
  const std::map<std::string, uint64_t>& counters() const { return counters_; }
  WriteStats& writes() { return writes_; }
  void merge_into(std::map<std::string, uint64_t>& out) const {
    for (const auto& [k, v] : counters_) out[k] += v;
    out["fipsproxy_socket_writes_total{path=\"direct\"}"] += writes_.direct_writes;
    out["fipsproxy_socket_writes_total{path=\"queued\"}"] += writes_.queued_writes;
    out["fipsproxy_write_copied_bytes_total"] += writes_.copied_bytes;
    out["fipsproxy_write_coalesced_bytes_total"] += writes_.coalesced_bytes;
  }

 private:
  std::map<std::string, uint64_t> counters_;
  WriteStats writes_;
};

struct MetricHelp {
  const char* name;
  const char* type;  // "counter" or "gauge"
  const char* help;
};
// Every metric fipsproxy exports, for # HELP / # TYPE lines.
const std::vector<MetricHelp>& metric_catalogue();

// Prometheus text exposition of `values` (series -> value), grouped by metric name with HELP and
// TYPE lines from the catalogue.
std::string render_prometheus(const std::map<std::string, double>& values);

}  // namespace fp::proxy
