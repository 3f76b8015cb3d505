#pragma once
// Active health checks (issue #9), on the control loop: per endpoint of every cluster with a
// [cluster.health_check], every `interval` one probe: tcp (connect), tls (a full handshake under
// the cluster's FIPS policy, so a backend that drifts to a non-approved parameter is marked
// down with that reason) or http (GET path over the plain or TLS connection, status in range).
// `healthy_threshold` consecutive passes mark an endpoint up, `unhealthy_threshold` failures
// down; the result is published to workers through ClusterHealth's atomics.

#include <uv.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "proxy/runtime.h"
#include "proxy/stats.h"

namespace fp::proxy {

class HealthChecker {
 public:
  // Starts checking every endpoint of every cluster in `rt` that has a health_check.
  HealthChecker(uv_loop_t* loop, std::shared_ptr<const Runtime> rt);
  ~HealthChecker();
  HealthChecker(const HealthChecker&) = delete;
  HealthChecker& operator=(const HealthChecker&) = delete;

  // Stops the timers; probes in flight finish and free themselves without publishing.
  void stop();
  // Control thread: counters for /metrics ("fipsproxy_health_checks_total{…}").
  const std::map<std::string, uint64_t>& counters() const { return counters_; }
  void count(const std::string& series_key) { ++counters_[series_key]; }

  struct Target;  // one endpoint (public for the implementation's probe type)

 private:
  uv_loop_t* loop_;
  std::shared_ptr<const Runtime> rt_;
  std::vector<std::shared_ptr<Target>> targets_;
  std::map<std::string, uint64_t> counters_;
};

}  // namespace fp::proxy
