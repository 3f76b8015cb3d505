#include "proxy/worker.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
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
};

Worker::Worker(Server& server, unsigned id)
    : server_(server), id_(id), read_buf_(new char[kReadBufferSize]) {}

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
    // EMFILE and friends: libuv already dropped the pending connection; count and go on.
    FP_LOG_WARN("accept error", {"listener", l->address}, {"err", uv_err_name(status)});
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
      FP_LOG_WARN("accept error", {"listener", l.address}, {"err", std::strerror(errno)});
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

const config::Address& Worker::next_endpoint(const ClusterRuntime& cluster) {
  size_t& i = rr_[cluster.cfg->name];
  const auto& eps = cluster.cfg->endpoints;
  return eps[i++ % eps.size()];
}

void Worker::connection_finished(Connection*) {
  --live_;
  maybe_stop();
}

void Worker::connection_destroyed(Connection* conn) { conns_.erase(conn); }

}  // namespace fp::proxy
