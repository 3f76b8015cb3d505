#pragma once
// A Runtime is one generation of everything the workers serve from: the validated config and
// what was built from it (TLS contexts, the access log). It is immutable once published;
// workers hold it as std::shared_ptr and every connection keeps the generation it started with,
// so a reload or a certificate rotation never frees anything under a live connection.

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "certs/tls_context.h"
#include "config/config.h"
#include "filters/http1/http_filter.h"
#include "filters/http1/parser.h"
#include "proxy/access_log.h"
#include "proxy/audit_log.h"

namespace fp::proxy {

// Endpoint health as seen by the active health checks. Written by the control thread, read by
// workers without locks. Shared by successive generations while a cluster keeps its name and
// endpoint list, so a reload does not forget which endpoints are down.
struct ClusterHealth {
  explicit ClusterHealth(const config::Cluster& c) : up(new std::atomic<bool>[c.endpoints.size()]) {
    for (const auto& e : c.endpoints) endpoints.push_back(e.text);
    for (size_t i = 0; i < endpoints.size(); ++i) up[i].store(true, std::memory_order_relaxed);
    reason.resize(endpoints.size());
  }
  std::vector<std::string> endpoints;  // identity for carrying health across reloads
  std::unique_ptr<std::atomic<bool>[]> up;
  // Control thread only: why each endpoint is down, and check counters, for /clusters.
  std::vector<std::string> reason;
};

struct ClusterRuntime {
  const config::Cluster* cfg = nullptr;
  std::shared_ptr<const certs::TlsContext> tls;  // null: plaintext upstream
  std::shared_ptr<ClusterHealth> health;
};

struct ListenerRuntime {
  size_t index = 0;
  const config::Listener* cfg = nullptr;
  std::shared_ptr<const certs::TlsContext> tls;  // null: plaintext listener
  const ClusterRuntime* cluster = nullptr;
  // Connections open on this listener across workers. Shared with the next generation when the
  // listener keeps its name, so max_connections holds across reloads.
  std::shared_ptr<std::atomic<uint32_t>> active = std::make_shared<std::atomic<uint32_t>>(0);
  // mode = "http1": the HTTP/1 filter chain, built and validated at load (forwarded, xfcc).
  std::vector<std::shared_ptr<const filters::http1::Http1FilterFactory>> http_filters;
  // mode = "http1": request parser limits from [listener.http].
  filters::http1::Limits http_limits;
};

// [egress]: one client TLS context per destination (its CA bundle, optional client cert).
struct EgressRuntime {
  const config::Egress* cfg = nullptr;
  std::vector<std::shared_ptr<const certs::TlsContext>> tls;  // parallel to cfg->destinations
};

struct Runtime {
  uint64_t generation = 0;
  config::Snapshot cfg;
  std::vector<std::unique_ptr<ClusterRuntime>> clusters;
  std::vector<std::unique_ptr<ListenerRuntime>> listeners;
  std::unique_ptr<EgressRuntime> egress;  // set when the config has [egress]
  std::shared_ptr<AccessLog> access_log;
  std::shared_ptr<AuditLog> audit;  // one per process, shared by every generation; may be null
  unsigned workers = 1;

  const ListenerRuntime* find_listener(const std::string& address_text) const {
    for (const auto& l : listeners) {
      if (l->cfg->address.text == address_text) return l.get();
    }
    return nullptr;
  }
};

// Sockets bound for one listener address: one per worker (TCP, SO_REUSEPORT) or one (UDS).
// Owned by the server until a worker's handle takes them.
struct BoundSockets {
  config::Address address;
  std::vector<int> fds;
};

}  // namespace fp::proxy
