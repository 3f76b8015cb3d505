#include "proxy/worker.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "proxy/base/log.h"
#include "proxy/connection.h"
#include "proxy/server.h"

namespace fp::proxy {

Worker::Worker(Server& server, Runtime& rt, unsigned id)
    : server_(server), rt_(rt), id_(id), read_buf_(new char[kReadBufferSize]) {}

Worker::~Worker() = default;

Result<void> Worker::start() {
  thread_ = std::thread([this] { run(); });
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

void Worker::run() {
  Result<void> opened = [this]() -> Result<void> {
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
    return open_listeners();
  }();
  {
    std::lock_guard<std::mutex> lock(start_mu_);
    start_done_ = true;
    if (!opened) start_error_ = opened.error();
  }
  start_cv_.notify_all();
  if (opened) uv_run(&loop_, UV_RUN_DEFAULT);
  // Close whatever is left (STYLE 5.3 rule 7) and make sure the loop really is empty.
  uv_walk(&loop_, [](uv_handle_t* h, void*) {
    if (!uv_is_closing(h)) uv_close(h, nullptr);
  }, nullptr);
  uv_run(&loop_, UV_RUN_DEFAULT);
  int rc = uv_loop_close(&loop_);
  if (rc != 0) FP_LOG_WARN("worker loop not empty at exit", {"worker", id_}, {"err", uv_err_name(rc)});
  server_.worker_exited(id_);
}

Result<void> Worker::open_listeners() {
  for (auto& lp : rt_.listeners) {
    ListenerRuntime& l = *lp;
    if (l.cfg->address.is_unix()) {
      if (id_ != 0) continue;  // unix sockets are accepted on worker 0 and handed out
      auto ul = std::make_unique<UnixListener>();
      ul->worker = this;
      ul->rt = &l;
      ul->fd = l.fds.at(0);
      if (int rc = uv_poll_init(&loop_, &ul->poll, ul->fd); rc != 0) {
        return make_error(Code::Internal, Side::Internal, std::string("uv_poll_init: ") + uv_err_name(rc));
      }
      ul->poll.data = ul.get();
      uv_timer_init(&loop_, &ul->backoff);
      ul->backoff.data = ul.get();
      uv_poll_start(&ul->poll, UV_READABLE, on_unix_readable);
      unix_listeners_.push_back(std::move(ul));
      continue;
    }
    auto tl = std::make_unique<TcpListener>();
    tl->worker = this;
    tl->rt = &l;
    uv_tcp_init(&loop_, &tl->handle);
    tl->handle.data = tl.get();
    int fd = l.fds.at(id_);
    if (int rc = uv_tcp_open(&tl->handle, fd); rc != 0) {
      return make_error(Code::Internal, Side::Internal, std::string("uv_tcp_open: ") + uv_err_name(rc));
    }
    l.fds[id_] = -1;  // the handle owns the socket now
    if (int rc = uv_listen(reinterpret_cast<uv_stream_t*>(&tl->handle), 1024, on_tcp_connection); rc != 0) {
      return make_error(Code::Internal, Side::Internal,
                        l.cfg->address.text + ": listen: " + uv_err_name(rc));
    }
    tcp_listeners_.push_back(std::move(tl));
  }
  return {};
}

void Worker::close_listeners() {
  for (auto& tl : tcp_listeners_) {
    if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(&tl->handle))) {
      uv_close(reinterpret_cast<uv_handle_t*>(&tl->handle), nullptr);
    }
  }
  for (auto& ul : unix_listeners_) {
    if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(&ul->poll))) {
      uv_close(reinterpret_cast<uv_handle_t*>(&ul->poll), nullptr);
      uv_close(reinterpret_cast<uv_handle_t*>(&ul->backoff), nullptr);
    }
  }
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
  for (auto& fn : work) {
    if (self->stopping_) {
      // Late hand-offs after stop: close their fds rather than leak them.
      continue;
    }
    fn(*self);
  }
}

void Worker::on_tcp_connection(uv_stream_t* server, int status) noexcept {
  auto* tl = static_cast<TcpListener*>(server->data);
  if (status < 0) {
    // EMFILE and friends: libuv already dropped the pending connection; count and go on.
    FP_LOG_WARN("accept error", {"listener", tl->rt->cfg->name}, {"err", uv_err_name(status)});
    return;
  }
  tl->worker->new_connection(*tl->rt, server, -1);
}

void Worker::on_unix_readable(uv_poll_t* p, int status, int) noexcept {
  auto* ul = static_cast<UnixListener*>(p->data);
  if (status < 0) return;
  ul->worker->accept_unix(*ul);
}

void Worker::on_unix_backoff(uv_timer_t* t) noexcept {
  auto* ul = static_cast<UnixListener*>(t->data);
  if (ul->worker->draining_) return;
  uv_poll_start(&ul->poll, UV_READABLE, on_unix_readable);
}

void Worker::accept_unix(UnixListener& ul) {
  for (int i = 0; i < 64; ++i) {
    int fd = ::accept4(ul.fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
      if (errno == ECONNABORTED) continue;
      // EMFILE/ENFILE/ENOBUFS: pause accepting for a moment instead of spinning.
      FP_LOG_WARN("accept error", {"listener", ul.rt->cfg->name}, {"err", std::strerror(errno)});
      uv_poll_stop(&ul.poll);
      uv_timer_start(&ul.backoff, on_unix_backoff, 100, 0);
      return;
    }
    const unsigned n = server_.worker_count();
    const unsigned target = next_unix_target_++ % n;
    if (target == id_) {
      new_connection(*ul.rt, nullptr, fd);
    } else {
      const size_t index = ul.rt->index;
      if (!server_.worker(target).post([index, fd](Worker& w) { w.adopt_unix_fd(index, fd); })) {
        ::close(fd);  // that worker has stopped (drain)
      }
    }
  }
}

void Worker::adopt_unix_fd(size_t listener_index, int fd) {
  if (draining_) {
    ::close(fd);
    return;
  }
  new_connection(*rt_.listeners.at(listener_index), nullptr, fd);
}

void Worker::new_connection(ListenerRuntime& l, uv_stream_t* server, int unix_fd) {
  auto conn = std::make_unique<Connection>(*this, l, (static_cast<uint64_t>(id_) << 48) | ++next_conn_id_);
  const bool ok = server != nullptr ? conn->accept_from(server) : conn->adopt_pipe_fd(unix_fd);
  Connection* raw = conn.get();
  conns_.emplace(raw, std::move(conn));
  ++live_;
  if (!ok) {
    raw->force_close(Code::Io);
    return;
  }
  const uint32_t before = l.active.fetch_add(1, std::memory_order_relaxed);
  const bool over = before >= l.cfg->max_connections;
  if (over) l.active.fetch_sub(1, std::memory_order_relaxed);
  raw->start(over);
}

const config::Address& Worker::next_endpoint(const ClusterRuntime& cluster) {
  size_t& i = rr_[&cluster];
  const auto& eps = cluster.cfg->endpoints;
  return eps[i++ % eps.size()];
}

void Worker::connection_finished(Connection*) {
  --live_;
  maybe_stop();
}

void Worker::connection_destroyed(Connection* conn) { conns_.erase(conn); }

}  // namespace fp::proxy
