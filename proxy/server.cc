#include "proxy/server.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <thread>

#include "certs/fips_self_check.h"
#include "proxy/base/log.h"
#include "proxy/cli.h"

namespace fp::proxy {

namespace {

Result<int> open_tcp_listener(const config::Address& a, bool reuseport) {
  struct sockaddr_storage ss;
  std::memset(&ss, 0, sizeof ss);
  socklen_t len = 0;
  int family = AF_INET;
  if (uv_ip4_addr(a.host.c_str(), a.port, reinterpret_cast<sockaddr_in*>(&ss)) == 0) {
    len = sizeof(sockaddr_in);
  } else if (uv_ip6_addr(a.host.c_str(), a.port, reinterpret_cast<sockaddr_in6*>(&ss)) == 0) {
    len = sizeof(sockaddr_in6);
    family = AF_INET6;
  } else if (a.host == "localhost") {
    uv_ip4_addr("127.0.0.1", a.port, reinterpret_cast<sockaddr_in*>(&ss));
    len = sizeof(sockaddr_in);
  } else {
    return make_error(Code::ConfigInvalid, Side::Internal,
                      a.text + ": listener address must be an IP literal");
  }
  int fd = ::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return make_error(Code::Io, Side::Internal, a.text + ": socket: " + std::strerror(errno));
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  // libuv 1.44 has no flag for SO_REUSEPORT: one socket per worker, opened by hand, lets the
  // kernel spread connections across workers.
  if (reuseport) ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  if (family == AF_INET6) ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 || ::listen(fd, 1024) != 0) {
    std::string err = std::strerror(errno);
    ::close(fd);
    return make_error(Code::Io, Side::Internal, a.text + ": bind: " + err);
  }
  return fd;
}

Result<int> open_unix_listener(const config::Address& a) {
  struct sockaddr_un sun;
  std::memset(&sun, 0, sizeof sun);
  sun.sun_family = AF_UNIX;
  if (a.path.size() >= sizeof sun.sun_path) {
    return make_error(Code::ConfigInvalid, Side::Internal, a.text + ": path too long");
  }
  std::memcpy(sun.sun_path, a.path.data(), a.path.size());
  // A stale socket file from an earlier run is replaced; any other file is left alone.
  struct stat st;
  if (::lstat(a.path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return make_error(Code::Io, Side::Internal, a.text + ": exists and is not a socket");
    }
    ::unlink(a.path.c_str());
  }
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return make_error(Code::Io, Side::Internal, a.text + ": socket: " + std::strerror(errno));
  if (::bind(fd, reinterpret_cast<sockaddr*>(&sun), sizeof sun) != 0 || ::listen(fd, 1024) != 0) {
    std::string err = std::strerror(errno);
    ::close(fd);
    return make_error(Code::Io, Side::Internal, a.text + ": bind: " + err);
  }
  return fd;
}

}  // namespace

Result<void> build_runtime(Runtime& rt, config::Snapshot cfg) {
  rt.cfg = std::move(cfg);
  std::string errors;
  for (const config::Cluster& c : rt.cfg.clusters) {
    auto cr = std::make_unique<ClusterRuntime>();
    cr->cfg = &c;
    if (c.tls) {
      auto ctx = certs::build_context(certs::Role::Client, c.name, *c.tls);
      if (!ctx) {
        errors += (errors.empty() ? "" : "\n") + ctx.error().detail;
      } else {
        cr->tls = std::move(ctx.value());
      }
    }
    rt.clusters.push_back(std::move(cr));
  }
  for (size_t i = 0; i < rt.cfg.listeners.size(); ++i) {
    const config::Listener& l = rt.cfg.listeners[i];
    auto lr = std::make_unique<ListenerRuntime>();
    lr->index = i;
    lr->cfg = &l;
    for (auto& cr : rt.clusters) {
      if (cr->cfg->name == l.cluster) lr->cluster = cr.get();
    }
    if (lr->cluster == nullptr) {
      errors += (errors.empty() ? "" : "\n") + ("listener " + l.name + ": no cluster named '" + l.cluster + "'");
    }
    if (l.tls) {
      auto ctx = certs::build_context(certs::Role::Server, l.name, *l.tls);
      if (!ctx) {
        errors += (errors.empty() ? "" : "\n") + ctx.error().detail;
      } else {
        lr->tls = std::move(ctx.value());
      }
    }
    rt.listeners.push_back(std::move(lr));
  }
  if (!errors.empty()) return make_error(Code::CertInvalid, Side::Internal, errors);
  auto log = AccessLog::open(rt.cfg.access_log);
  if (!log) return log.error();
  rt.access_log = std::move(log.value());
  unsigned n = rt.cfg.workers;
  if (n == 0) n = std::max(1u, std::thread::hardware_concurrency());
  rt.workers = n;
  return {};
}

Server::~Server() {
  for (auto& l : rt_.listeners) {
    for (int fd : l->fds) {
      if (fd >= 0) ::close(fd);
    }
    if (l->cfg && l->cfg->address.is_unix()) ::unlink(l->cfg->address.path.c_str());
  }
}

int Server::run(const std::string& config_path) {
  std::signal(SIGPIPE, SIG_IGN);
  // 1. FIPS checks, fail closed.
  certs::FipsReport fips = certs::run_fips_checks();
  if (!fips.ok()) {
    const certs::FipsCheck* f = fips.first_failure();
    std::fprintf(stderr, "fipsproxy: FIPS check failed: %s: %s\n", f ? f->name.c_str() : "?",
                 f ? f->detail.c_str() : "?");
    return kExitFips;
  }
  // 2. Config.
  config::LoadResult loaded = config::load_file(config_path);
  if (!loaded.errors.empty()) {
    for (const auto& e : loaded.errors) std::fprintf(stderr, "%s\n", e.str().c_str());
    std::fprintf(stderr, "fipsproxy: %zu configuration error(s); not started\n", loaded.errors.size());
    return kExitUsage;
  }
  base::Level level;
  if (base::parse_level(loaded.snapshot->log_level, level)) base::set_log_level(level);
  FP_LOG_INFO("fips self-check passed", {"module", fips.module_name},
              {"module_version", fips.module_version}, {"module_hash", fips.module_hash_loaded},
              {"statement", fips.statement()});
  // 3. Certs and TLS contexts.
  if (Result<void> r = build_runtime(rt_, std::move(*loaded.snapshot)); !r) {
    std::fprintf(stderr, "%s\nfipsproxy: not started\n", r.error().detail.c_str());
    return kExitUsage;
  }
  // 4. Bind (only now).
  for (auto& l : rt_.listeners) {
    const config::Address& a = l->cfg->address;
    const unsigned n = a.is_unix() ? 1 : rt_.workers;
    for (unsigned i = 0; i < n; ++i) {
      Result<int> fd = a.is_unix() ? open_unix_listener(a) : open_tcp_listener(a, true);
      if (!fd) {
        std::fprintf(stderr, "fipsproxy: listener %s: %s\n", l->cfg->name.c_str(),
                     fd.error().detail.c_str());
        return kExitRuntime;
      }
      l->fds.push_back(*fd);
    }
  }
  // 5. Control loop and workers.
  uv_loop_init(&loop_);
  uv_signal_init(&loop_, &sigterm_);
  uv_signal_init(&loop_, &sigint_);
  sigterm_.data = sigint_.data = this;
  uv_signal_start(&sigterm_, on_signal, SIGTERM);
  uv_signal_start(&sigint_, on_signal, SIGINT);
  uv_timer_init(&loop_, &drain_timer_);
  drain_timer_.data = this;
  uv_async_init(&loop_, &exit_async_, on_worker_exit);
  exit_async_.data = this;
  for (unsigned i = 0; i < rt_.workers; ++i) {
    workers_.push_back(std::make_unique<Worker>(*this, rt_, i));
  }
  for (auto& w : workers_) {
    if (Result<void> r = w->start(); !r) {
      std::fprintf(stderr, "fipsproxy: worker %u: %s\n", w->id(), r.error().detail.c_str());
      for (auto& other : workers_) other->force_close();
      for (auto& other : workers_) other->join();
      return kExitRuntime;
    }
  }
  FP_LOG_INFO("ready", {"listeners", rt_.listeners.size()}, {"workers", rt_.workers},
              {"config", config_path});
  uv_run(&loop_, UV_RUN_DEFAULT);
  for (auto& w : workers_) w->join();
  uv_walk(&loop_, [](uv_handle_t* h, void*) {
    if (!uv_is_closing(h)) uv_close(h, nullptr);
  }, nullptr);
  uv_run(&loop_, UV_RUN_DEFAULT);
  uv_loop_close(&loop_);
  FP_LOG_INFO("stopped", {"reason", draining_ ? "drained" : "exit"});
  return kExitOk;
}

void Server::worker_exited(unsigned) {
  exited_.fetch_add(1);
  uv_async_send(&exit_async_);
}

void Server::on_worker_exit(uv_async_t* a) noexcept {
  auto* self = static_cast<Server*>(a->data);
  if (self->exited_.load() < self->workers_.size()) return;
  uv_close(reinterpret_cast<uv_handle_t*>(&self->sigterm_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&self->sigint_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&self->drain_timer_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&self->exit_async_), nullptr);
}

void Server::begin_drain(const char* why) {
  if (draining_) {
    FP_LOG_WARN("second stop signal: closing all connections now", {"signal", why});
    for (auto& w : workers_) w->force_close();
    return;
  }
  draining_ = true;
  FP_LOG_INFO("draining", {"signal", why}, {"deadline_ms", rt_.cfg.drain_timeout.count()});
  for (auto& w : workers_) w->drain();
  uv_timer_start(&drain_timer_, on_drain_deadline, static_cast<uint64_t>(rt_.cfg.drain_timeout.count()), 0);
}

void Server::on_signal(uv_signal_t* s, int signum) noexcept {
  static_cast<Server*>(s->data)->begin_drain(signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

void Server::on_drain_deadline(uv_timer_t* t) noexcept {
  auto* self = static_cast<Server*>(t->data);
  FP_LOG_WARN("drain deadline passed: closing remaining connections");
  for (auto& w : self->workers_) w->force_close();
}

}  // namespace fp::proxy
