#include "proxy/worker.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <climits>
#include <cstring>

#include "proxy/base/log.h"
#include "proxy/connection.h"
#include "proxy/server.h"

namespace fp::proxy {

// One listening socket on this worker. Heap-allocated, freed by its last close callback.
struct Worker::Listener {
  Worker* worker = nullptr;
  std::string address;
  bool is_unix = false;
  bool closing = false;
  int pending_closes = 0;
  uv_tcp_t tcp;       // TCP: owns the socket
  uv_poll_t poll;     // UDS: watches `fd`, which this struct owns
  uv_timer_t backoff; // UDS: accept back-off after EMFILE
  int fd = -1;
  // Accept errors (EMFILE under a flood: RELIABILITY B15) are counted each time but logged at
  // most once a second, with how many were not logged in between.
  uint64_t accept_error_logged_ms = 0;
  uint64_t accept_errors_unlogged = 0;

  // A nested class, so it may read the worker's runtime.
  void note_accept_error(const char* err) {
    const ListenerRuntime* lr = worker->rt_->find_listener(address);
    const std::string name = lr != nullptr ? lr->cfg->name : address;
    worker->stats_.add(series("fipsproxy_accept_errors_total", {{"listener", name}, {"error", err}}));
    const uint64_t now = uv_now(&worker->loop_);
    if (accept_error_logged_ms != 0 && now - accept_error_logged_ms < 1000) {
      ++accept_errors_unlogged;
      return;
    }
    FP_LOG_WARN("accept error", {"listener", name}, {"err", err},
                {"not_logged_since_last", accept_errors_unlogged});
    accept_error_logged_ms = now;
    accept_errors_unlogged = 0;
  }
};

Worker::Worker(Server& server, unsigned id)
    : server_(server), id_(id), read_buf_(new char[kReadBufferSize]), pump_buf_(new char[kPumpBufferSize]) {}

Worker::~Worker() = default;

Result<void> Worker::start(std::shared_ptr<const Runtime> rt, ListenFds fds) {
  rt_ = std::move(rt);
  thread_ = std::thread([this, fds = std::move(fds)]() mutable { run(std::move(fds)); });
  std::unique_lock<std::mutex> lock(start_mu_);
  start_cv_.wait(lock, [this] { return start_done_; });
  if (start_error_) return *start_error_;
  return {};
}

void Worker::join() {
  if (thread_.joinable()) thread_.join();
}

bool Worker::post(std::function<void(Worker&)> fn) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!accepting_posts_) return false;
  queue_.push_back(std::move(fn));
  uv_async_send(&async_);  // under mu_: the handle cannot be closed meanwhile
  return true;
}

void Worker::drain() {
  post([](Worker& w) {
    if (w.draining_) return;
    w.draining_ = true;
    w.close_listeners();
    FP_LOG_INFO("worker draining", {"worker", w.id_}, {"live", w.live_});
    w.maybe_stop();
  });
}

void Worker::force_close() {
  post([](Worker& w) {
    w.draining_ = true;
    w.close_listeners();
    std::vector<Connection*> live;
    for (auto& [ptr, owner] : w.conns_) {
      if (!ptr->closing()) live.push_back(ptr);
    }
    for (Connection* c : live) c->force_close(Code::DrainTimeout);
    w.maybe_stop();
  });
}

void Worker::swap_runtime(std::shared_ptr<const Runtime> rt, ListenFds fds) {
  auto shared_fds = std::make_shared<ListenFds>(std::move(fds));
  const bool posted = post([rt, shared_fds](Worker& w) mutable {
    w.apply_runtime(std::move(rt), std::move(*shared_fds));
    shared_fds->clear();
  });
  if (!posted) {
    for (auto& [addr, fd] : *shared_fds) ::close(fd);
  }
}

void Worker::apply_runtime(std::shared_ptr<const Runtime> rt, ListenFds fds) {
  if (draining_) {
    for (auto& [addr, fd] : fds) ::close(fd);
    return;
  }
  rt_ = std::move(rt);
  // Close listeners whose address is gone: no new connections there; live ones finish.
  std::vector<Listener*> gone;
  for (auto& [addr, l] : listeners_) {
    if (rt_->find_listener(addr) == nullptr) gone.push_back(l);
  }
  for (Listener* l : gone) close_listener(l);
  for (auto& [addr, fd] : fds) {
    if (Result<void> r = open_listener(addr, fd); !r) {
      FP_LOG_ERROR("reload: cannot open listener", {"worker", id_}, {"address", addr},
                   {"detail", r.error().detail});
    }
  }
  FP_LOG_DEBUG("worker runtime swapped", {"worker", id_}, {"generation", rt_->generation});
}

void Worker::run(ListenFds fds) {
  Result<void> opened = [&]() -> Result<void> {
    if (int rc = uv_loop_init(&loop_); rc != 0) {
      return make_error(Code::Internal, Side::Internal, std::string("uv_loop_init: ") + uv_err_name(rc));
    }
    if (int rc = uv_async_init(&loop_, &async_, on_async); rc != 0) {
      return make_error(Code::Internal, Side::Internal, std::string("uv_async_init: ") + uv_err_name(rc));
    }
    async_.data = this;
    pool_ = std::make_unique<UpstreamPool>(&loop_, stats_);
    {
      std::lock_guard<std::mutex> lock(mu_);
      accepting_posts_ = true;
    }
    Result<void> all;
    for (auto& [addr, fd] : fds) {
      if (!all) {
        ::close(fd);
        continue;
      }
      all = open_listener(addr, fd);
    }
    return all;
  }();
  {
    std::lock_guard<std::mutex> lock(start_mu_);
    start_done_ = true;
    if (!opened) start_error_ = opened.error();
  }
  start_cv_.notify_all();
  if (opened) uv_run(&loop_, UV_RUN_DEFAULT);
  // Close whatever is left (STYLE 5.3 rule 7) and make sure the loop really is empty.
  {
    std::lock_guard<std::mutex> lock(mu_);
    accepting_posts_ = false;
  }
  close_listeners();
  uv_walk(&loop_, [](uv_handle_t* h, void*) {
    if (!uv_is_closing(h)) uv_close(h, nullptr);
  }, nullptr);
  uv_run(&loop_, UV_RUN_DEFAULT);
  int rc = uv_loop_close(&loop_);
  if (rc != 0) FP_LOG_WARN("worker loop not empty at exit", {"worker", id_}, {"err", uv_err_name(rc)});
  server_.worker_exited(id_);
}

Result<void> Worker::open_listener(const std::string& address, int fd) {
  const ListenerRuntime* lr = rt_->find_listener(address);
  if (lr == nullptr) {
    ::close(fd);
    return make_error(Code::Internal, Side::Internal, address + ": no listener for this address");
  }
  auto* l = new Listener();
  l->worker = this;
  l->address = address;
  l->is_unix = lr->cfg->address.is_unix();
  if (l->is_unix) {
    l->fd = fd;  // owned by the Listener, closed after its handles
    if (int rc = uv_poll_init(&loop_, &l->poll, fd); rc != 0) {
      ::close(fd);
      delete l;
      return make_error(Code::Internal, Side::Internal, std::string("uv_poll_init: ") + uv_err_name(rc));
    }
    l->poll.data = l;
    uv_timer_init(&loop_, &l->backoff);
    l->backoff.data = l;
    uv_poll_start(&l->poll, UV_READABLE, on_unix_readable);
  } else {
    uv_tcp_init(&loop_, &l->tcp);
    l->tcp.data = l;
    if (int rc = uv_tcp_open(&l->tcp, fd); rc != 0) {
      ::close(fd);
      l->pending_closes = 1;
      uv_close(reinterpret_cast<uv_handle_t*>(&l->tcp), on_listener_closed);
      return make_error(Code::Internal, Side::Internal, std::string("uv_tcp_open: ") + uv_err_name(rc));
    }
    // The handle owns the socket from here.
    if (int rc = uv_listen(reinterpret_cast<uv_stream_t*>(&l->tcp), 1024, on_tcp_connection); rc != 0) {
      l->pending_closes = 1;
      uv_close(reinterpret_cast<uv_handle_t*>(&l->tcp), on_listener_closed);
      return make_error(Code::Internal, Side::Internal, address + ": listen: " + uv_err_name(rc));
    }
  }
  listeners_[address] = l;
  return {};
}

void Worker::close_listener(Listener* l) {
  if (l->closing) return;
  l->closing = true;
  listeners_.erase(l->address);
  if (l->is_unix) {
    l->pending_closes = 2;
    uv_close(reinterpret_cast<uv_handle_t*>(&l->poll), on_listener_closed);
    uv_close(reinterpret_cast<uv_handle_t*>(&l->backoff), on_listener_closed);
  } else {
    l->pending_closes = 1;
    uv_close(reinterpret_cast<uv_handle_t*>(&l->tcp), on_listener_closed);
  }
}

void Worker::on_listener_closed(uv_handle_t* h) noexcept {
  auto* l = static_cast<Listener*>(h->data);
  if (--l->pending_closes > 0) return;
  if (l->fd >= 0) ::close(l->fd);
  delete l;
}

void Worker::close_listeners() {
  std::vector<Listener*> all;
  for (auto& [addr, l] : listeners_) all.push_back(l);
  for (Listener* l : all) close_listener(l);
}

void Worker::maybe_stop() {
  if (!draining_ || stopping_ || live_ != 0) return;
  stopping_ = true;
  if (pool_) pool_->close_all();
  {
    std::lock_guard<std::mutex> lock(mu_);
    accepting_posts_ = false;
  }
  // With the listeners and the async handle closed, the loop ends once the last connection's
  // handles are closed.
  uv_close(reinterpret_cast<uv_handle_t*>(&async_), nullptr);
}

void Worker::on_async(uv_async_t* a) noexcept {
  auto* self = static_cast<Worker*>(a->data);
  std::deque<std::function<void(Worker&)>> work;
  {
    std::lock_guard<std::mutex> lock(self->mu_);
    work.swap(self->queue_);
  }
  for (auto& fn : work) fn(*self);
}

void Worker::on_tcp_connection(uv_stream_t* server, int status) noexcept {
  auto* l = static_cast<Listener*>(server->data);
  if (status < 0) {
    // EMFILE and friends: libuv already dropped the pending connection (its reserve-fd trick
    // accepts and closes what is queued); count, log rate-limited, never uv_accept here.
    l->note_accept_error(uv_err_name(status));
    return;
  }
  l->worker->new_connection(l->address, server, -1);
}

void Worker::on_unix_readable(uv_poll_t* p, int status, int) noexcept {
  auto* l = static_cast<Listener*>(p->data);
  if (status < 0 || l->closing) return;
  l->worker->accept_unix(*l);
}

void Worker::on_unix_backoff(uv_timer_t* t) noexcept {
  auto* l = static_cast<Listener*>(t->data);
  if (l->closing) return;
  uv_poll_start(&l->poll, UV_READABLE, on_unix_readable);
}

void Worker::accept_unix(Listener& l) {
  for (int i = 0; i < 64; ++i) {
    int fd = ::accept4(l.fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
      if (errno == ECONNABORTED) continue;
      // EMFILE/ENFILE/ENOBUFS: pause accepting for a moment instead of spinning.
      l.note_accept_error(uv_err_name(-errno));
      uv_poll_stop(&l.poll);
      uv_timer_start(&l.backoff, on_unix_backoff, 100, 0);
      return;
    }
    const unsigned n = server_.worker_count();
    const unsigned target = next_unix_target_++ % n;
    if (target == id_) {
      new_connection(l.address, nullptr, fd);
      continue;
    }
    std::string address = l.address;
    if (!server_.worker(target).post([address, fd](Worker& w) { w.adopt_unix_fd(address, fd); })) {
      new_connection(l.address, nullptr, fd);  // that worker has stopped: serve it here
    }
  }
}

void Worker::adopt_unix_fd(const std::string& address, int fd) {
  if (draining_) {
    ::close(fd);
    return;
  }
  new_connection(address, nullptr, fd);
}

void Worker::new_connection(const std::string& address, uv_stream_t* server, int unix_fd) {
  const ListenerRuntime* l = rt_->find_listener(address);
  if (l == nullptr) {
    if (unix_fd >= 0) ::close(unix_fd);
    return;
  }
  auto conn = std::make_unique<Connection>(*this, rt_, *l,
                                           (static_cast<uint64_t>(id_) << 40) | ++next_conn_id_);
  const bool ok = server != nullptr ? conn->accept_from(server) : conn->adopt_pipe_fd(unix_fd);
  Connection* raw = conn.get();
  conns_.emplace(raw, std::move(conn));
  ++live_;
  if (!ok) {
    raw->force_close(Code::Io);
    return;
  }
  const uint32_t before = l->active->fetch_add(1, std::memory_order_relaxed);
  const bool over = before >= l->cfg->max_connections;
  if (over) l->active->fetch_sub(1, std::memory_order_relaxed);
  raw->start(over);
}

Worker::LbState& Worker::lb_state(const ClusterRuntime& cluster) {
  if (lb_last_ == nullptr || *lb_last_name_ != cluster.cfg->name) {
    auto it = lb_.try_emplace(cluster.cfg->name).first;
    lb_last_name_ = &it->first;
    lb_last_ = &it->second;
  }
  LbState& st = *lb_last_;
  const size_t n = cluster.cfg->endpoints.size();
  if (st.active.size() != n) {
    st.current_weight.assign(n, 0);
    st.active.assign(n, 0);
    st.failures.assign(n, 0);
    st.ejected_until.assign(n, 0);
    st.ejections.assign(n, 0);
  }
  return st;
}

int Worker::pick_endpoint(const ClusterRuntime& cluster, const std::vector<bool>& tried) {
  LbState& st = lb_state(cluster);
  const config::Cluster& c = *cluster.cfg;
  const size_t n = c.endpoints.size();
  const uint64_t now = uv_now(&loop_);
  std::vector<size_t>& eligible = eligible_;
  eligible.clear();
  for (size_t i = 0; i < n; ++i) {
    if (i < tried.size() && tried[i]) continue;
    const bool healthy = !cluster.health || cluster.health->up[i].load(std::memory_order_relaxed);
    if (healthy && st.ejected_until[i] <= now) eligible.push_back(i);
  }
  if (eligible.empty() && c.no_healthy_use_all) {
    for (size_t i = 0; i < n; ++i) {
      if (i >= tried.size() || !tried[i]) eligible.push_back(i);
    }
  }
  if (eligible.empty()) return -1;
  auto next_rand = [this] {  // xorshift64*: cheap, per worker, no locks
    rng_ ^= rng_ >> 12;
    rng_ ^= rng_ << 25;
    rng_ ^= rng_ >> 27;
    return rng_ * 0x2545f4914f6cdd1dull;
  };
  size_t pick = eligible[0];
  switch (c.lb_policy) {
    case config::LbPolicy::RoundRobin: {
      // Smooth weighted round robin (nginx): spreads heavy endpoints out instead of bursts.
      int64_t total = 0;
      int64_t best = INT64_MIN;
      for (size_t i : eligible) {
        st.current_weight[i] += c.weights[i];
        total += c.weights[i];
        if (st.current_weight[i] > best) {
          best = st.current_weight[i];
          pick = i;
        }
      }
      st.current_weight[pick] -= total;
      break;
    }
    case config::LbPolicy::Random: {
      uint64_t total = 0;
      for (size_t i : eligible) total += c.weights[i];
      uint64_t r = next_rand() % total;
      for (size_t i : eligible) {
        if (r < c.weights[i]) {
          pick = i;
          break;
        }
        r -= c.weights[i];
      }
      break;
    }
    case config::LbPolicy::LeastRequest: {
      // Power of two choices on active connections; with two or fewer, compare them all.
      auto better = [&](size_t a, size_t b) {
        // Fewer active per unit of weight wins.
        return static_cast<uint64_t>(st.active[a]) * c.weights[b] <
               static_cast<uint64_t>(st.active[b]) * c.weights[a];
      };
      if (eligible.size() <= 2) {
        pick = eligible[next_rand() % eligible.size()];
        for (size_t i : eligible) {
          if (better(i, pick)) pick = i;
        }
      } else {
        const size_t a = eligible[next_rand() % eligible.size()];
        size_t b = eligible[next_rand() % eligible.size()];
        if (b == a) b = eligible[(std::find(eligible.begin(), eligible.end(), a) - eligible.begin() + 1) % eligible.size()];
        pick = better(b, a) ? b : a;
      }
      break;
    }
  }
  ++st.active[pick];
  return static_cast<int>(pick);
}

void Worker::hold_endpoint(const ClusterRuntime& cluster, int index) {
  LbState& st = lb_state(cluster);
  if (index >= 0 && static_cast<size_t>(index) < st.active.size()) ++st.active[index];
}

const Worker::DnsEntry* Worker::dns_lookup(const std::string& host_port) {
  auto it = dns_.find(host_port);
  if (it == dns_.end()) return nullptr;
  if (it->second.expires_ms <= uv_now(&loop_)) {
    dns_.erase(it);
    return nullptr;
  }
  return &it->second;
}

void Worker::dns_store(const std::string& host_port, std::vector<struct sockaddr_storage> addrs,
                       uint64_t ttl_ms) {
  if (ttl_ms == 0 || addrs.empty()) return;
  if (dns_.size() >= 4096) dns_.clear();  // bounded: a flood of names cannot grow it forever
  dns_[host_port] = DnsEntry{std::move(addrs), uv_now(&loop_) + ttl_ms};
}

void Worker::release_endpoint(const ClusterRuntime& cluster, int index) {
  LbState& st = lb_state(cluster);
  if (index >= 0 && static_cast<size_t>(index) < st.active.size() && st.active[index] > 0) {
    --st.active[index];
  }
}

void Worker::lb_gauges(std::map<std::string, uint64_t>& out) {
  const uint64_t now = uv_now(&loop_);
  for (const auto& c : rt_->clusters) {
    auto it = lb_.find(c->cfg->name);
    for (size_t i = 0; i < c->cfg->endpoints.size(); ++i) {
      const std::string& ep = c->cfg->endpoints[i].text;
      const bool known = it != lb_.end() && i < it->second.active.size();
      out[series("fipsproxy_upstream_active_connections", {{"cluster", c->cfg->name}, {"endpoint", ep}})] +=
          known ? it->second.active[i] : 0;
      out[series("fipsproxy_upstream_endpoint_ejected", {{"cluster", c->cfg->name}, {"endpoint", ep}})] +=
          known && it->second.ejected_until[i] > now ? 1 : 0;
    }
  }
}

void Worker::endpoint_result(const ClusterRuntime& cluster, int index, bool ok) {
  LbState& st = lb_state(cluster);
  if (index < 0 || static_cast<size_t>(index) >= st.failures.size()) return;
  const size_t i = static_cast<size_t>(index);
  if (ok) {
    st.failures[i] = 0;
    return;
  }
  const auto& od = cluster.cfg->outlier_detection;
  if (!od || ++st.failures[i] < od->consecutive_failures) return;
  st.failures[i] = 0;
  const uint64_t now = uv_now(&loop_);
  const size_t n = st.ejected_until.size();
  size_t ejected = 0;
  for (size_t k = 0; k < n; ++k) ejected += st.ejected_until[k] > now ? 1 : 0;
  const std::string& name = cluster.cfg->name;
  const std::string& ep = cluster.cfg->endpoints[i].text;
  if ((ejected + 1) * 100 > static_cast<size_t>(od->max_ejection_percent) * n) {
    FP_LOG_WARN("outlier not ejected: max_ejection_percent reached", {"cluster", name},
                {"endpoint", ep}, {"worker", id_}, {"ejected", ejected});
    stats_.add(series("fipsproxy_upstream_ejections_skipped_total", {{"cluster", name}}));
    return;
  }
  const uint32_t shift = std::min<uint32_t>(st.ejections[i]++, 16);
  const uint64_t dur = std::min<uint64_t>(static_cast<uint64_t>(od->base_ejection.count()) << shift,
                                          static_cast<uint64_t>(od->max_ejection.count()));
  st.ejected_until[i] = now + dur;
  FP_LOG_WARN("endpoint ejected after consecutive connect failures", {"cluster", name},
              {"endpoint", ep}, {"worker", id_}, {"ejection_ms", dur});
  stats_.add(series("fipsproxy_upstream_ejections_total", {{"cluster", name}, {"endpoint", ep}}));
}

void Worker::connection_finished(Connection*) {
  --live_;
  maybe_stop();
}

void Worker::connection_destroyed(Connection* conn) { conns_.erase(conn); }

}  // namespace fp::proxy
