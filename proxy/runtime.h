#pragma once
// What the workers run from: the validated config plus everything built from it at startup
// (TLS contexts, the access log). Immutable while workers run, except the per-listener
// connection counters.

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "certs/tls_context.h"
#include "config/config.h"
#include "proxy/access_log.h"

namespace fp::proxy {

struct ClusterRuntime {
  const config::Cluster* cfg = nullptr;
  std::shared_ptr<const certs::TlsContext> tls;  // null: plaintext upstream
};

struct ListenerRuntime {
  size_t index = 0;
  const config::Listener* cfg = nullptr;
  std::shared_ptr<const certs::TlsContext> tls;  // null: plaintext listener
  const ClusterRuntime* cluster = nullptr;
  std::atomic<uint32_t> active{0};  // connections open on this listener, all workers
  std::vector<int> fds;             // listening sockets: one per worker (TCP) or one (UDS)
};

struct Runtime {
  config::Snapshot cfg;
  std::vector<std::unique_ptr<ClusterRuntime>> clusters;
  std::vector<std::unique_ptr<ListenerRuntime>> listeners;
  std::unique_ptr<AccessLog> access_log;
  unsigned workers = 1;
};

}  // namespace fp::proxy
