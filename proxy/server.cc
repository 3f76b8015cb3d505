#include "proxy/server.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <cstring>
#include <thread>

#include "certs/cbom.h"
#include "certs/fips_self_check.h"
#include "certs/self_probe.h"
#include "proxy/base/log.h"
#include "build_info.h"
#include "proxy/base/json.h"
#include "filters/http1/forwarded.h"
#include "filters/http1/hop_by_hop.h"
#include "filters/http1/identity_authz.h"
#include "filters/http1/sni_host.h"
#include "filters/http1/xfcc.h"
#include "proxy/cli.h"
#include "proxy/explain.h"
#include "proxy/fips_baseline.h"
#include "proxy/sandbox.h"
#include "proxy/stats.h"

namespace fp::proxy {

namespace {

// `probe`: bind without SO_REUSEPORT and without listening, to find out whether anyone holds
// the address (see bind_address).
Result<int> open_tcp_listener(const config::Address& a, bool reuseport, bool probe = false) {
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
  if (::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 || (!probe && ::listen(fd, 1024) != 0)) {
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
    if (unix_socket_live(a.path)) {  // another process serves it: never take it over
      return make_error(Code::Io, Side::Internal,
                        a.text + ": bind: address already in use (a live socket: another process listens there)");
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

namespace {

Result<std::vector<int>> bind_address(const config::Address& a, unsigned workers) {
  std::vector<int> fds;
  const unsigned n = a.is_unix() ? 1 : workers;
  if (!a.is_unix() && a.port != 0) {
    // SO_REUSEPORT lets any socket of the same user join a port that such a socket holds: a
    // second fipsproxy would share the port with the first, not fail. A socket without it
    // cannot bind there while anyone else listens, so bind one first, then let it go.
    Result<int> probe = open_tcp_listener(a, false, true);
    if (!probe) return probe.error();
    ::close(*probe);
  }
  for (unsigned i = 0; i < n; ++i) {
    Result<int> fd = a.is_unix() ? open_unix_listener(a) : open_tcp_listener(a, true);
    if (!fd) {
      for (int f : fds) ::close(f);
      return fd.error();
    }
    fds.push_back(*fd);
  }
  return fds;
}

// stat() follows symlinks, so a Kubernetes `..data` swap changes the inode seen here.
std::string file_stamp(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return path + "=missing;";
  return path + "=" + std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino) + ":" +
         std::to_string(st.st_size) + ":" + std::to_string(st.st_mtim.tv_sec) + "." +
         std::to_string(st.st_mtim.tv_nsec) + ";";
}

std::vector<std::string> tls_files(const config::Snapshot& cfg) {
  std::vector<std::string> files;
  auto add = [&](const std::optional<config::TlsConfig>& t) {
    if (!t) return;
    for (const std::string* f : {&t->cert, &t->key, &t->ca}) {
      if (!f->empty()) files.push_back(*f);
    }
    files.insert(files.end(), t->crl.begin(), t->crl.end());  // CRLs rotate like certificates
  };
  for (const auto& l : cfg.listeners) add(l.tls);
  for (const auto& c : cfg.clusters) add(c.tls);
  if (cfg.egress) {
    for (const auto& d : cfg.egress->destinations) add(d.tls);
  }
  return files;
}

}  // namespace

Result<void> probe_runtime(const Runtime& rt) {
  for (const auto& l : rt.listeners) {
    if (l->tls) {
      if (Result<void> r = certs::self_probe(*l->tls); !r) return r;
    }
  }
  for (const auto& c : rt.clusters) {
    if (c->tls) {
      if (Result<void> r = certs::self_probe(*c->tls); !r) return r;
    }
  }
  if (rt.egress) {
    for (const auto& t : rt.egress->tls) {
      if (t) {
        if (Result<void> r = certs::self_probe(*t); !r) return r;
      }
    }
  }
  return {};
}

Result<std::shared_ptr<Runtime>> build_runtime(config::Snapshot cfg, const Runtime* previous) {
  auto rt = std::make_shared<Runtime>();
  rt->cfg = std::move(cfg);
  std::string errors;
  auto add_error = [&](const std::string& e) { errors += (errors.empty() ? "" : "\n") + e; };
  for (const config::Cluster& c : rt->cfg.clusters) {
    auto cr = std::make_unique<ClusterRuntime>();
    cr->cfg = &c;
    cr->health = std::make_shared<ClusterHealth>(c);
    if (previous != nullptr) {
      for (const auto& old : previous->clusters) {
        if (old->cfg->name == c.name && old->health && old->health->endpoints == cr->health->endpoints) {
          cr->health = old->health;
        }
      }
    }
    if (c.tls) {
      auto ctx = certs::build_context(certs::Role::Client, c.name, *c.tls);
      if (!ctx) {
        add_error(ctx.error().detail);
      } else {
        cr->tls = std::move(ctx.value());
      }
    }
    rt->clusters.push_back(std::move(cr));
  }
  if (rt->cfg.egress) {
    rt->egress = std::make_unique<EgressRuntime>();
    rt->egress->cfg = &*rt->cfg.egress;
    for (const config::EgressDestination& d : rt->cfg.egress->destinations) {
      auto ctx = certs::build_context(certs::Role::Client, "egress:" + d.host, d.tls);
      if (!ctx) {
        add_error(ctx.error().detail);
        rt->egress->tls.push_back(nullptr);
      } else {
        rt->egress->tls.push_back(std::move(ctx.value()));
      }
    }
  }
  for (size_t i = 0; i < rt->cfg.listeners.size(); ++i) {
    const config::Listener& l = rt->cfg.listeners[i];
    auto lr = std::make_unique<ListenerRuntime>();
    lr->index = i;
    lr->cfg = &l;
    for (auto& cr : rt->clusters) {
      if (cr->cfg->name == l.cluster) lr->cluster = cr.get();
    }
    if (lr->cluster == nullptr && !l.egress) {
      add_error("listener " + l.name + ": no cluster named '" + l.cluster + "'");
    }
    if (l.mode == config::Mode::Http1) {
      lr->http_limits.max_header_bytes = l.http.max_header_bytes;
      lr->http_limits.max_header_count = l.http.max_headers;
      lr->http_limits.max_uri_bytes = l.http.max_uri_bytes;
      lr->http_limits.max_body_bytes = l.http.max_body_bytes;
      // Downstream → upstream order: hop_by_hop first (and last on responses), so a Connection
      // token can only name fields the client sent, never the ones the later filters set; then
      // identity authz (a refused request costs nothing more), X-Forwarded-*, the client cert.
      lr->http_filters.push_back(std::make_shared<filters::http1::HopByHopFilterFactory>());
      // A request for another name than the SNI the client was admitted under: 421, before authz.
      using SniHostCheck = config::HttpOptions::SniHostCheck;
      if (l.tls && (l.http.sni_host_check == SniHostCheck::Always ||
                    (l.http.sni_host_check == SniHostCheck::Mtls && l.tls->require_client_cert))) {
        lr->http_filters.push_back(std::make_shared<filters::http1::SniHostFilterFactory>());
      }
      filters::http1::AuthzConfig authz = filters::http1::authz_config_from(l.http);
      if (!authz.empty()) {
        lr->http_filters.push_back(std::make_shared<filters::http1::IdentityAuthzFilterFactory>(std::move(authz)));
      }
      if (!l.egress) {
        // Egress requests go to external hosts: they never learn our internal addresses.
        filters::http1::ForwardedConfig fwd;
        lr->http_filters.push_back(std::make_shared<filters::http1::ForwardedFilterFactory>(fwd));
      }
      if (l.tls) {
        lr->http_filters.push_back(
            std::make_shared<filters::http1::XfccFilterFactory>(filters::http1::XfccConfig{}));
      }
    }
    if (previous != nullptr) {
      for (const auto& old : previous->listeners) {
        if (old->cfg->name == l.name) lr->active = old->active;
      }
    }
    if (l.tls) {
      auto ctx = certs::build_context(certs::Role::Server, l.name, *l.tls);
      if (!ctx) {
        add_error(ctx.error().detail);
      } else {
        lr->tls = std::move(ctx.value());
      }
    }
    rt->listeners.push_back(std::move(lr));
  }
  if (!errors.empty()) return make_error(Code::CertInvalid, Side::Internal, errors);
  auto log = AccessLog::open(rt->cfg.access_log);
  if (!log) return log.error();
  rt->access_log = std::move(log.value());
  unsigned n = rt->cfg.workers;
  if (n == 0) n = std::max(1u, std::thread::hardware_concurrency());
  rt->workers = n;
  return rt;
}

struct Server::DirWatch {
  Server* server = nullptr;
  std::string dir;
  uv_fs_event_t handle;
};

Server::Server() = default;

Server::~Server() {
  for (auto& [addr, b] : bound_) {
    for (int fd : b.fds) {
      if (fd >= 0) ::close(fd);
    }
    if (b.address.is_unix()) ::unlink(b.address.path.c_str());
  }
}

int Server::run(const std::string& config_path) {
  std::signal(SIGPIPE, SIG_IGN);
  config_path_ = config_path;
  // Hardening step 1 (proxy/sandbox.h): no core file and no same-uid ptrace or /proc/PID/mem
  // reader from here on, before any key is read.
  const Result<void> no_core = sandbox::disable_core_dumps();
  // 1. FIPS checks, fail closed.
  fips_ = certs::run_fips_checks();
  const certs::FipsReport& fips = fips_;
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
  if (loaded.snapshot->fips.require_kernel_fips && fips.kernel_fips != "1") {
    std::fprintf(stderr, "fipsproxy: FIPS check failed: kernel_fips: the node is not in FIPS mode "
                 "(/proc/sys/crypto/fips_enabled: %s) and [fips] require_kernel_fips = true\n",
                 fips.kernel_fips.c_str());
    return kExitFips;
  }
  if (!loaded.snapshot->fips.baseline.empty()) {
    certs::hash_files(fips_);
    auto diff = fips_baseline_diff(fips, loaded.snapshot->fips.baseline);
    if (!diff) {
      std::fprintf(stderr, "fipsproxy: %s\n", diff.error().detail.c_str());
      return kExitUsage;
    }
    if (!diff->empty()) {
      std::fprintf(stderr, "fipsproxy: FIPS check failed: baseline: drift from %s:\n",
                   loaded.snapshot->fips.baseline.c_str());
      for (const auto& d : *diff) std::fprintf(stderr, "  %s\n", d.c_str());
      return kExitFips;
    }
  }
  FP_LOG_INFO("fips self-check passed", {"module", fips.module_name},
              {"module_version", fips.module_version}, {"module_hash", fips.module_hash_loaded},
              {"statement", fips.statement()});
  // 3. Certs and TLS contexts.
  auto built = build_runtime(std::move(*loaded.snapshot), nullptr);
  if (!built) {
    std::fprintf(stderr, "%s\nfipsproxy: not started\n", built.error().detail.c_str());
    return kExitUsage;
  }
  std::shared_ptr<Runtime> rt = std::move(built.value());
  rt->generation = ++generation_;
  if (rt->cfg.audit) {
    auto audit = AuditLog::open(rt->cfg.audit->path, rt->cfg.audit->max_bytes, rt->cfg.audit->keep);
    if (!audit) {
      std::fprintf(stderr, "fipsproxy: audit log: %s\nfipsproxy: not started\n", audit.error().detail.c_str());
      return kExitUsage;
    }
    audit_ = std::move(audit.value());
    rt->audit = audit_;
  }
  // 3b. Policy self-probe of every context (FIPS-POLICY §10 check 9), still before any bind.
  if (Result<void> p = probe_runtime(*rt); !p) {
    std::fprintf(stderr, "fipsproxy: policy self-probe failed: %s\n", p.error().detail.c_str());
    return kExitFips;
  }
  // Hardening step 2: who we will run as once bound. Refuses root without [process] user or
  // allow_root, and unknown users or groups, before anything is bound.
  auto identity = sandbox::resolve_identity(rt->cfg.process, true);
  if (!identity) {
    std::fprintf(stderr, "%s\nfipsproxy: not started\n", identity.error().detail.c_str());
    return kExitUsage;
  }
  if (!no_core) FP_LOG_WARN("cannot disable core dumps", {"detail", no_core.error().detail});
  // 4. Bind (only now). The admin socket is bound later, on the control loop, after the workers
  // start accepting: an admin address someone else holds is refused here, before anything is
  // bound or served (AdminServer::start checks again).
  if (rt->cfg.admin) {
    const config::Address& a = rt->cfg.admin->address;
    std::string held;
    if (a.is_unix()) {
      if (unix_socket_live(a.path)) {
        held = a.text + ": bind: address already in use (a live socket: another process listens there)";
      }
    } else if (a.port != 0) {
      Result<int> probe = open_tcp_listener(a, false, true);
      if (probe) {
        ::close(*probe);
      } else if (probe.error().code == Code::Io) {
        held = probe.error().detail;
      }
    }
    if (!held.empty()) {
      std::fprintf(stderr, "fipsproxy: admin %s\n", held.c_str());
      return kExitRuntime;
    }
  }
  for (const auto& l : rt->listeners) {
    const config::Address& a = l->cfg->address;
    auto fds = bind_address(a, rt->workers);
    if (!fds) {
      std::fprintf(stderr, "fipsproxy: listener %s: %s\n", l->cfg->name.c_str(), fds.error().detail.c_str());
      return kExitRuntime;
    }
    bound_[a.text] = BoundSockets{a, std::move(fds.value())};
  }
  rt_ = rt;
  // 5. Control loop and workers.
  uv_loop_init(&loop_);
  for (uv_signal_t* s : {&sigterm_, &sigint_, &sighup_}) {
    uv_signal_init(&loop_, s);
    s->data = this;
  }
  uv_signal_start(&sigterm_, on_signal, SIGTERM);
  uv_signal_start(&sigint_, on_signal, SIGINT);
  uv_signal_start(&sighup_, on_signal, SIGHUP);
  for (uv_timer_t* t : {&drain_timer_, &cert_debounce_, &cert_poll_, &probe_timer_}) {
    uv_timer_init(&loop_, t);
    t->data = this;
  }
  uv_async_init(&loop_, &exit_async_, on_worker_exit);
  exit_async_.data = this;
  // Every early return from here on: close what is still open on the control loop and free the
  // loop (LeakSanitizer found it left allocated on the hardening-error path).
  auto close_loop = [this] {
    uv_walk(&loop_, [](uv_handle_t* h, void*) {
      if (!uv_is_closing(h)) uv_close(h, nullptr);
    }, nullptr);
    uv_run(&loop_, UV_RUN_DEFAULT);
    uv_loop_close(&loop_);
  };
  for (unsigned i = 0; i < rt_->workers; ++i) workers_.push_back(std::make_unique<Worker>(*this, i));
  for (auto& w : workers_) {
    ListenFds fds;
    for (auto& [addr, b] : bound_) {
      const size_t i = b.address.is_unix() ? 0 : w->id();
      if (b.address.is_unix() && w->id() != 0) continue;  // accepted on worker 0, handed out
      fds.emplace_back(addr, b.fds[i]);
      b.fds[i] = -1;  // the worker owns it now
    }
    if (Result<void> r = w->start(rt_, std::move(fds)); !r) {
      std::fprintf(stderr, "fipsproxy: worker %u: %s\n", w->id(), r.error().detail.c_str());
      for (auto& other : workers_) other->force_close();
      for (auto& other : workers_) other->join();
      close_loop();
      return kExitRuntime;
    }
  }
  cert_fp_ = cert_fingerprint();
  watch_cert_dirs();
  health_ = std::make_unique<HealthChecker>(&loop_, rt_);
  uv_timer_start(&cert_poll_, on_cert_poll, 2000, 2000);
  const uint64_t probe_ms = static_cast<uint64_t>(rt_->cfg.fips.selfprobe_interval.count());
  uv_timer_start(&probe_timer_, on_probe_timer, probe_ms, probe_ms);
  if (rt_->cfg.admin) {
    admin_ = std::make_unique<AdminServer>(&loop_, [this](const std::string& m, const std::string& p,
                                                          std::function<void(AdminResponse)> r) {
      handle_admin(m, p, std::move(r));
    });
    if (Result<void> r = admin_->start(*rt_->cfg.admin); !r) {
      std::fprintf(stderr, "fipsproxy: %s\n", r.error().detail.c_str());
      admin_->close();
      for (auto& w : workers_) w->force_close();
      uv_run(&loop_, UV_RUN_DEFAULT);
      for (auto& w : workers_) w->join();
      close_loop();
      return kExitRuntime;
    }
  }
  // Hardening steps 3 and 4: every listener and the admin socket are bound; drop privileges,
  // check the dropped user can still reach what reload and rotation re-open, then the filter.
  {
    std::string harden_error;
    int harden_exit = kExitRuntime;
    harden_error = sandbox::hand_over_log_files(rt_->cfg, *identity);
    if (!harden_error.empty()) {
      // reported below
    } else if (Result<void> d = sandbox::drop_privileges(*identity); !d) {
      harden_error = d.error().detail;
    } else if (identity->change) {
      harden_error = sandbox::check_access_after_drop(rt_->cfg, config_path, *identity);
      harden_exit = kExitUsage;
    }
    if (harden_error.empty()) {
      if (Result<void> f = sandbox::install_seccomp(rt_->cfg.process.seccomp); !f) {
        harden_error = f.error().detail;
        harden_exit = kExitRuntime;
      }
    }
    if (!harden_error.empty()) {
      std::fprintf(stderr, "%s\nfipsproxy: not started\n", harden_error.c_str());
      if (admin_) admin_->close();
      for (auto& w : workers_) w->force_close();
      uv_run(&loop_, UV_RUN_DEFAULT);
      for (auto& w : workers_) w->join();
      close_loop();
      return harden_exit;
    }
    FP_LOG_INFO("process hardened", {"user", identity->change ? identity->user : std::string("(unchanged)")},
                {"group", identity->change ? identity->group : std::string("(unchanged)")},
                {"seccomp", config::seccomp_mode_name(rt_->cfg.process.seccomp)},
                {"allowed_syscalls", rt_->cfg.process.seccomp == config::SeccompMode::Off
                                         ? size_t{0}
                                         : sandbox::allowed_syscall_count()},
                {"status", sandbox::status_summary()});
    if (sandbox::g_test_after_sandbox != nullptr) {
      // Test builds only: a forbidden call on this thread, and on a worker thread (the filter
      // reached threads that existed before it: TSYNC).
      sandbox::g_test_after_sandbox("control");
      (void)workers_.front()->post([](Worker&) { sandbox::g_test_after_sandbox("worker"); });
    }
  }
  ready_ = true;
  FP_LOG_INFO("ready", {"listeners", rt_->listeners.size()}, {"workers", rt_->workers},
              {"generation", rt_->generation}, {"config", config_path});
  uv_run(&loop_, UV_RUN_DEFAULT);
  for (auto& w : workers_) w->join();
  uv_walk(&loop_, [](uv_handle_t* h, void*) {
    if (!uv_is_closing(h)) uv_close(h, nullptr);
  }, nullptr);
  uv_run(&loop_, UV_RUN_DEFAULT);
  uv_loop_close(&loop_);
  if (audit_) audit_->close();  // workers are stopped: flush and sync the chain
  FP_LOG_INFO("stopped", {"reason", draining_ ? "drained" : "exit"});
  return kExitOk;
}

bool Server::reload(bool reread_config, const char* why) {
  auto failed = [&](const std::string& detail) {
    ++reload_failed_;
    last_reload_error_ = detail;
    FP_LOG_ERROR("reload failed: keeping the running configuration and certificates",
                 {"trigger", why}, {"generation", rt_->generation}, {"detail", detail},
                 {"reload_failure_total", reload_failed_});
    return false;
  };
  config::Snapshot cfg;
  if (reread_config) {
    config::LoadResult loaded = config::load_file(config_path_);
    if (!loaded.errors.empty()) {
      std::string all;
      for (const auto& e : loaded.errors) {
        FP_LOG_ERROR("config error", {"error", e.str()});
        all += (all.empty() ? "" : "; ") + e.str();
      }
      return failed(all);
    }
    cfg = std::move(*loaded.snapshot);
  } else {
    cfg = rt_->cfg;
  }
  auto built = build_runtime(std::move(cfg), rt_.get());
  if (!built) return failed(built.error().detail);
  std::shared_ptr<Runtime> next = std::move(built.value());
  next->audit = audit_;
  if ((next->cfg.audit ? next->cfg.audit->path : "") != (audit_ ? audit_->path() : "")) {
    FP_LOG_WARN("reload: a change of [audit] takes effect only after a restart");
  }
  if (Result<void> p = probe_runtime(*next); !p) return failed("policy self-probe failed: " + p.error().detail);
  {
    const config::ProcessSettings& was = rt_->cfg.process;
    const config::ProcessSettings& now = next->cfg.process;
    if (was.user != now.user || was.group != now.group || was.allow_root != now.allow_root ||
        was.seccomp != now.seccomp) {
      FP_LOG_WARN("reload: a change of [process] user, group, allow_root or seccomp takes effect only after a restart");
    }
  }
  if (next->workers != workers_.size()) {
    FP_LOG_WARN("reload: a change of 'workers' takes effect only after a restart",
                {"running", workers_.size()}, {"configured", next->workers});
    next->workers = static_cast<unsigned>(workers_.size());
  }
  // Bind added addresses first: if any bind fails, nothing changes.
  std::map<std::string, BoundSockets> added;
  for (const auto& l : next->listeners) {
    const config::Address& a = l->cfg->address;
    if (bound_.count(a.text) || added.count(a.text)) continue;
    auto fds = bind_address(a, next->workers);
    if (!fds) {
      for (auto& [addr, b] : added) {
        for (int fd : b.fds) ::close(fd);
      }
      return failed("listener " + l->cfg->name + ": " + fds.error().detail);
    }
    added[a.text] = BoundSockets{a, std::move(fds.value())};
  }
  std::vector<std::string> removed;
  for (auto& [addr, b] : bound_) {
    if (next->find_listener(addr) == nullptr) removed.push_back(addr);
  }
  const base::Level lvl = [&] {
    base::Level l = base::Level::Info;
    base::parse_level(next->cfg.log_level, l);
    return l;
  }();
  next->generation = ++generation_;
  rt_ = next;
  for (auto& w : workers_) {
    ListenFds fds;
    for (auto& [addr, b] : added) {
      if (b.address.is_unix() && w->id() != 0) continue;
      const size_t i = b.address.is_unix() ? 0 : w->id();
      fds.emplace_back(addr, b.fds[i]);
      b.fds[i] = -1;
    }
    w->swap_runtime(rt_, std::move(fds));
  }
  for (const std::string& addr : removed) {
    if (bound_[addr].address.is_unix()) ::unlink(bound_[addr].address.path.c_str());
    bound_.erase(addr);
  }
  for (auto& [addr, b] : added) bound_[addr] = std::move(b);
  if (health_) health_->stop();
  health_ = std::make_unique<HealthChecker>(&loop_, rt_);
  base::set_log_level(lvl);
  ++reload_ok_;
  cert_fp_ = cert_fingerprint();
  watch_cert_dirs();
  FP_LOG_INFO("reloaded", {"trigger", why}, {"generation", rt_->generation},
              {"listeners", rt_->listeners.size()}, {"added", added.size()},
              {"removed", removed.size()}, {"reload_ok_total", reload_ok_});
  return true;
}

std::string Server::cert_fingerprint() const {
  std::string fp;
  for (const std::string& f : tls_files(rt_->cfg)) fp += file_stamp(f);
  return fp;
}

void Server::watch_cert_dirs() {
  std::vector<std::string> dirs;
  for (const std::string& f : tls_files(rt_->cfg)) {
    const size_t slash = f.find_last_of('/');
    std::string d = slash == std::string::npos ? "." : (slash == 0 ? "/" : f.substr(0, slash));
    if (std::find(dirs.begin(), dirs.end(), d) == dirs.end()) dirs.push_back(d);
  }
  // Keep watches that are still wanted; drop the others (their memory is freed on close).
  std::vector<std::unique_ptr<DirWatch>> keep;
  for (auto& w : dir_watches_) {
    auto it = std::find(dirs.begin(), dirs.end(), w->dir);
    if (it != dirs.end()) {
      dirs.erase(it);
      keep.push_back(std::move(w));
    } else {
      DirWatch* raw = w.release();
      uv_close(reinterpret_cast<uv_handle_t*>(&raw->handle),
               [](uv_handle_t* h) { delete static_cast<DirWatch*>(h->data); });
    }
  }
  dir_watches_ = std::move(keep);
  for (const std::string& d : dirs) {
    auto w = std::make_unique<DirWatch>();
    w->server = this;
    w->dir = d;
    uv_fs_event_init(&loop_, &w->handle);
    w->handle.data = w.get();
    if (int rc = uv_fs_event_start(&w->handle, on_dir_event, d.c_str(), 0); rc != 0) {
      // The poll timer still catches changes.
      FP_LOG_WARN("cannot watch certificate directory; polling only", {"dir", d}, {"err", uv_err_name(rc)});
      DirWatch* raw = w.release();
      uv_close(reinterpret_cast<uv_handle_t*>(&raw->handle),
               [](uv_handle_t* h) { delete static_cast<DirWatch*>(h->data); });
      continue;
    }
    dir_watches_.push_back(std::move(w));
  }
}

void Server::check_cert_files(const char* why) {
  if (draining_) return;
  std::string fp = cert_fingerprint();
  if (fp == cert_fp_) return;
  // Remember what we saw even if the rotation fails: a broken pair is reported once, and the
  // next change of the files triggers a new attempt.
  cert_fp_ = fp;
  FP_LOG_INFO("certificate files changed: rotating", {"trigger", why});
  reload(false, "certificate rotation");
}

void Server::on_dir_event(uv_fs_event_t* h, const char*, int, int) noexcept {
  auto* w = static_cast<DirWatch*>(h->data);
  // Debounce: a Secret update is several renames; act once they have settled.
  uv_timer_start(&w->server->cert_debounce_, on_cert_timer, 200, 0);
}

void Server::on_cert_timer(uv_timer_t* t) noexcept { static_cast<Server*>(t->data)->check_cert_files("inotify"); }
void Server::on_cert_poll(uv_timer_t* t) noexcept { static_cast<Server*>(t->data)->check_cert_files("poll"); }

void Server::worker_exited(unsigned) {
  exited_.fetch_add(1);
  uv_async_send(&exit_async_);
}

void Server::on_worker_exit(uv_async_t* a) noexcept {
  auto* self = static_cast<Server*>(a->data);
  if (self->exited_.load() < self->workers_.size()) return;
  if (self->health_) self->health_->stop();
  uv_walk(&self->loop_, [](uv_handle_t* h, void*) {
    if (!uv_is_closing(h)) {
      if (h->type == UV_FS_EVENT) {
        uv_close(h, [](uv_handle_t* x) { delete static_cast<DirWatch*>(x->data); });
      } else {
        uv_close(h, nullptr);
      }
    }
  }, nullptr);
  for (auto& w : self->dir_watches_) w.release();  // freed by their close callbacks
  // Every worker is done; what is left is closing handles and freeing memory. Closing the signal
  // handles gave SIGTERM/SIGINT/SIGHUP their default action back: a stop signal now (the
  // kubelet's SIGTERM racing an admin /drain) must not turn this clean exit into death by signal.
  std::signal(SIGTERM, SIG_IGN);
  std::signal(SIGINT, SIG_IGN);
  std::signal(SIGHUP, SIG_IGN);
  self->dir_watches_.clear();
}

void Server::begin_drain(const char* why, bool from_signal) {
  if (draining_) {
    if (from_signal && drain_by_signal_) {
      FP_LOG_WARN("second stop signal: closing all connections now", {"signal", why});
      for (auto& w : workers_) w->force_close();
      return;
    }
    // E.g. Kubernetes: preStop POSTs /drain, then the kubelet sends SIGTERM. That SIGTERM is the
    // first signal: keep draining; only a further one closes everything at once.
    if (from_signal) drain_by_signal_ = true;
    FP_LOG_INFO("already draining", {"trigger", why});
    return;
  }
  drain_by_signal_ = from_signal;
  draining_ = true;
  uv_timer_stop(&cert_poll_);
  // The admin endpoint stays up while draining so /ready can say so; it closes with the loop.
  FP_LOG_INFO("draining", {"signal", why}, {"deadline_ms", rt_->cfg.drain_timeout.count()});
  for (auto& w : workers_) w->drain();
  uv_timer_start(&drain_timer_, on_drain_deadline, static_cast<uint64_t>(rt_->cfg.drain_timeout.count()), 0);
}

std::string Server::not_ready_reason() const {
  if (!ready_) return "starting";
  if (draining_) return "draining";
  if (!fips_.ok()) return "fips self-check failed";
  if (!probe_error_.empty()) return "policy self-probe failed: " + probe_error_;
  return "";
}

// Set only by the fipsproxy_testhooks test build (tests/hooks/drift_hook.cc, a static
// initialiser); null in the shipped binary, which has no symbol that could set it.
bool (*g_test_inject_drift)(char* why, unsigned long why_len) = nullptr;

void Server::on_probe_timer(uv_timer_t* t) noexcept {
  auto* self = static_cast<Server*>(t->data);
  Result<void> r = probe_runtime(*self->rt_);
  char injected[256];
  if (r && g_test_inject_drift != nullptr && g_test_inject_drift(injected, sizeof injected)) {
    r = make_error(Code::TlsSetupFailed, Side::Internal, injected);
  }
  ++self->probe_runs_;
  {
    char ts[40];
    time_t now = time(nullptr);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
    self->probe_last_ = ts;
  }
  if (!r) {
    if (self->probe_error_ != r.error().detail) {
      FP_LOG_ERROR("policy self-probe failed: not ready", {"detail", r.error().detail},
                   {"generation", self->rt_->generation});
    }
    self->probe_error_ = r.error().detail;
  } else {
    if (!self->probe_error_.empty()) FP_LOG_INFO("policy self-probe passes again: ready");
    self->probe_error_.clear();
  }
}

std::string Server::config_json() const {
  const config::Snapshot& c = rt_->cfg;
  auto tls_json = [](const config::TlsConfig& t, bool server) {
    base::JsonObject j;
    j.str("profile", config::profile_name(t.profile))
        .str("min_version", t.min_version == 0x0304 ? "1.3" : "1.2")
        .str("max_version", t.max_version == 0x0304 ? "1.3" : "1.2")
        .str("cert", t.cert)
        .str("key", t.key)  // a path, never key material
        .str("ca", t.ca);
    if (server) j.boolean("require_client_cert", t.require_client_cert);
    if (!server) j.str("sni", t.sni);
    j.str_array("allow_spiffe", t.allow_spiffe).str_array("allow_dns", t.allow_dns).str_array("alpn", t.alpn);
    return j.done();
  };
  std::string listeners = "[";
  for (size_t i = 0; i < c.listeners.size(); ++i) {
    const config::Listener& l = c.listeners[i];
    base::JsonObject j;
    j.str("name", l.name)
        .str("address", l.address.text)
        .str("mode", config::mode_name(l.mode))
        .str("cluster", l.cluster)
        .unum("max_connections", l.max_connections)
        .unum("active_connections", rt_->listeners[i]->active->load(std::memory_order_relaxed))
        .num("handshake_timeout_ms", l.handshake_timeout.count())
        .num("idle_timeout_ms", l.idle_timeout.count());
    if (l.tls) j.raw("tls", tls_json(*l.tls, true));
    listeners += (i ? "," : "") + j.done();
  }
  listeners += "]";
  std::string clusters = "[";
  for (size_t i = 0; i < c.clusters.size(); ++i) {
    const config::Cluster& cl = c.clusters[i];
    std::vector<std::string> eps;
    for (const auto& e : cl.endpoints) eps.push_back(e.text);
    base::JsonObject j;
    j.str("name", cl.name).str_array("endpoints", eps).num("connect_timeout_ms", cl.connect_timeout.count());
    if (cl.tls) j.raw("tls", tls_json(*cl.tls, false));
    clusters += (i ? "," : "") + j.done();
  }
  clusters += "]";
  base::JsonObject root;
  root.str("config", config_path_)
      .unum("generation", rt_->generation)
      .unum("workers", workers_.size())
      .raw("listeners", listeners)
      .raw("clusters", clusters)
      .raw("effective_policy", [&] {
        // What will actually be negotiated per listener and cluster, with the digests an auditor
        // compares across a fleet (the same as `fipsproxy check --explain --json`).
        auto e = explain_config(c, true);
        return e ? *e : std::string("null");
      }())
      .unum("reload_ok_total", reload_ok_)
      .unum("reload_failure_total", reload_failed_)
      .str("last_reload_error", last_reload_error_);
  return root.done();
}

std::string Server::clusters_json() {
  const std::map<std::string, uint64_t> w = gather_workers();
  auto value = [&](const std::string& key) {
    auto it = w.find(key);
    return it == w.end() ? uint64_t{0} : it->second;
  };
  std::string list = "[";
  for (size_t ci = 0; ci < rt_->clusters.size(); ++ci) {
    const ClusterRuntime& c = *rt_->clusters[ci];
    std::string eps = "[";
    for (size_t i = 0; i < c.cfg->endpoints.size(); ++i) {
      base::JsonObject e;
      e.str("address", c.cfg->endpoints[i].text)
          .unum("weight", c.cfg->weights[i])
          .boolean("healthy", c.health->up[i].load(std::memory_order_relaxed))
          .unum("active_connections",
                value(series("fipsproxy_upstream_active_connections",
                             {{"cluster", c.cfg->name}, {"endpoint", c.cfg->endpoints[i].text}})))
          .unum("ejected_on_workers",
                value(series("fipsproxy_upstream_endpoint_ejected",
                             {{"cluster", c.cfg->name}, {"endpoint", c.cfg->endpoints[i].text}})))
          .str("last_check_failure", c.health->reason[i]);
      eps += (i ? "," : "") + e.done();
    }
    eps += "]";
    base::JsonObject j;
    j.str("name", c.cfg->name)
        .str("lb_policy", config::lb_policy_name(c.cfg->lb_policy))
        .unum("connect_retries", c.cfg->connect_retries)
        .str("no_healthy", c.cfg->no_healthy_use_all ? "use_all" : "fail")
        .boolean("health_check", c.cfg->health_check.has_value())
        .boolean("outlier_detection", c.cfg->outlier_detection.has_value())
        .raw("endpoints", eps);
    list += (ci ? "," : "") + j.done();
  }
  list += "]";
  base::JsonObject root;
  root.unum("generation", rt_->generation).raw("clusters", list);
  return root.done();
}

std::map<std::string, uint64_t> Server::gather_workers() {
  // Ask every worker for a copy of its counters and LB gauges (they never wait on us, so this
  // cannot deadlock), bounded by one second.
  struct Gather {
    std::mutex mu;
    std::condition_variable cv;
    std::map<std::string, uint64_t> merged;
    size_t pending = 0;
  };
  auto g = std::make_shared<Gather>();
  for (auto& w : workers_) {
    {
      std::lock_guard<std::mutex> lock(g->mu);
      ++g->pending;
    }
    const bool posted = w->post([g](Worker& wk) {
      std::lock_guard<std::mutex> lock(g->mu);
      wk.stats().merge_into(g->merged);
      wk.lb_gauges(g->merged);
      if (--g->pending == 0) g->cv.notify_all();
    });
    if (!posted) {
      std::lock_guard<std::mutex> lock(g->mu);
      --g->pending;
    }
  }
  std::unique_lock<std::mutex> lock(g->mu);
  g->cv.wait_for(lock, std::chrono::seconds(1), [&] { return g->pending == 0; });
  return g->merged;
}

std::string Server::metrics_text() {
  std::map<std::string, double> values;
  for (const auto& [k, v] : gather_workers()) values[k] = static_cast<double>(v);
  values[series("fipsproxy_build_info", {{"version", build::kVersion},
                                         {"module", fips_.module_name},
                                         {"module_version", std::to_string(fips_.module_version)},
                                         {"module_hash", fips_.module_hash_loaded}})] = 1;
  values["fipsproxy_fips_mode"] = fips_.fips_mode ? 1 : 0;
  values["fipsproxy_fips_module_version"] = static_cast<double>(fips_.module_version);
  values["fipsproxy_fips_self_test_passed"] = fips_.ok() ? 1 : 0;
  values["fipsproxy_ready"] = not_ready_reason().empty() ? 1 : 0;
  values["fipsproxy_selfprobe_passed"] = probe_error_.empty() ? 1 : 0;
  values["fipsproxy_selfprobe_runs_total"] = static_cast<double>(probe_runs_);
  values["fipsproxy_config_generation"] = static_cast<double>(rt_->generation);
  values[series("fipsproxy_reloads_total", {{"result", "ok"}})] = static_cast<double>(reload_ok_);
  values[series("fipsproxy_reloads_total", {{"result", "failure"}})] = static_cast<double>(reload_failed_);
  for (const auto& l : rt_->listeners) {
    values[series("fipsproxy_downstream_connections_active", {{"listener", l->cfg->name}})] =
        l->active->load(std::memory_order_relaxed);
  }
  for (const auto& [k, v] : admin_requests_) values[k] = static_cast<double>(v);
  if (health_) {
    for (const auto& [k, v] : health_->counters()) values[k] = static_cast<double>(v);
  }
  // When each loaded certificate expires.
  {
    std::vector<std::string> files;
    for (const std::string& f : tls_files(rt_->cfg)) {
      if (f.size() > 4 && (f.ends_with(".key") || f.ends_with(".crl"))) continue;
      if (std::find(files.begin(), files.end(), f) == files.end()) files.push_back(f);
    }
    for (const std::string& f : files) {
      auto certs = certs::cbom_certs_from_files({f});
      if (!certs) continue;
      for (const certs::CbomCert& c : *certs) {
        struct tm tm = {};
        if (strptime(c.not_after.c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm) == nullptr) continue;
        // Prometheus convention: a timestamp in seconds; alert on (value - time()) / 86400.
        values[series("fipsproxy_cert_not_after_timestamp_seconds", {{"path", f}, {"subject", c.subject}})] =
            static_cast<double>(timegm(&tm));
      }
    }
  }
  for (const auto& c : rt_->clusters) {
    for (size_t i = 0; i < c->cfg->endpoints.size(); ++i) {
      values[series("fipsproxy_upstream_endpoint_healthy",
                    {{"cluster", c->cfg->name}, {"endpoint", c->cfg->endpoints[i].text}})] =
          c->health->up[i].load(std::memory_order_relaxed) ? 1 : 0;
    }
  }
  if (audit_) {
    values["fipsproxy_audit_records_total"] = static_cast<double>(audit_->written_total());
    values["fipsproxy_audit_dropped_total"] = static_cast<double>(audit_->dropped_total());
    values["fipsproxy_audit_write_errors_total"] = static_cast<double>(audit_->write_errors_total());
  }
  return render_prometheus(values);
}

void Server::handle_admin(const std::string& method, const std::string& path,
                          std::function<void(AdminResponse)> respond) {
  AdminResponse r;
  const bool get = method == "GET" || method == "HEAD";
  if (path == "/healthz" && get) {
    r.body = "ok\n";
  } else if (path == "/ready" && get) {
    const std::string why = not_ready_reason();
    r.status = why.empty() ? 200 : 503;
    r.body = why.empty() ? "ready\n" : "not ready: " + why + "\n";
  } else if (path == "/metrics" && get) {
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    r.body = metrics_text();
  } else if (path == "/fips" && get) {
    r.content_type = "application/json";
    // The startup report plus the last periodic self-probe.
    certs::hash_files(fips_);
    std::string report = fips_.to_json();
    base::JsonObject probe;
    probe.boolean("passed", probe_error_.empty())
        .str("error", probe_error_)
        .unum("runs", probe_runs_)
        .str("last_run", probe_last_);
    report.pop_back();  // '}'
    r.body = report + ",\"selfprobe\":" + probe.done() + "}\n";
  } else if (path == "/config" && get) {
    r.content_type = "application/json";
    r.body = config_json() + "\n";
  } else if ((path == "/certs" || path == "/cbom") && get) {
    std::vector<std::string> files;
    std::string profile = "strict";
    auto add = [&](const std::optional<config::TlsConfig>& t) {
      if (!t) return;
      if (t->profile == config::Profile::Extended) profile = "extended";
      for (const std::string* f : {&t->cert, &t->ca}) {
        if (!f->empty() && std::find(files.begin(), files.end(), *f) == files.end()) files.push_back(*f);
      }
    };
    for (const auto& l : rt_->cfg.listeners) add(l.tls);
    for (const auto& c : rt_->cfg.clusters) add(c.tls);
    auto certs = certs::cbom_certs_from_files(files);
    r.content_type = "application/json";
    if (!certs) {
      r.status = 500;
      std::string e;
      base::append_json_string(e, certs.error().detail);
      r.body = "{\"error\":" + e + "}\n";
    } else if (path == "/cbom") {
      r.body = certs::make_cbom(fips_, *certs, profile) + "\n";
    } else {
      const time_t now = time(nullptr);
      std::string list = "[";
      for (size_t i = 0; i < certs->size(); ++i) {
        const certs::CbomCert& c = (*certs)[i];
        struct tm tm = {};
        long days = -1;
        if (strptime(c.not_after.c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm) != nullptr) {
          days = static_cast<long>((timegm(&tm) - now) / 86400);
        }
        base::JsonObject j;
        j.str("path", c.path)
            .str("subject", c.subject)
            .str("issuer", c.issuer)
            .str("key", c.key_desc)
            .str("signature", c.sig_alg)
            .str("not_before", c.not_before)
            .str("not_after", c.not_after)
            .num("days_left", days)
            .str("sha256", c.sha256)
            .str("verdict", "approved (loaded and checked against the FIPS policy)");
        list += (i ? "," : "") + j.done();
      }
      list += "]";
      base::JsonObject root;
      root.unum("generation", rt_->generation).raw("certs", list).str("last_reload_error", last_reload_error_);
      r.body = root.done() + "\n";
    }
  } else if (path == "/clusters" && get) {
    r.content_type = "application/json";
    r.body = clusters_json() + "\n";
  } else if (path == "/reload" && method == "POST") {
    if (draining_) {
      r.status = 503;
      r.body = "draining\n";
    } else if (reload(true, "admin")) {
      r.body = "reloaded: generation " + std::to_string(rt_->generation) + "\n";
    } else {
      r.status = 500;
      r.body = "reload failed; still serving generation " + std::to_string(rt_->generation) +
               ":\n" + last_reload_error_ + "\n";
    }
  } else if (path == "/drain" && method == "POST") {
    r.status = 202;
    r.body = "draining\n";
    begin_drain("admin", false);
  } else if (path == "/healthz" || path == "/ready" || path == "/metrics" || path == "/fips" ||
             path == "/config" || path == "/certs" || path == "/cbom" || path == "/clusters" || path == "/reload" ||
             path == "/drain") {
    r.status = 405;
    r.body = "method not allowed\n";
  } else {
    r.status = 404;
    r.body = "not found; try /healthz /ready /metrics /fips /config /certs /cbom /clusters, POST /reload /drain\n";
  }
  ++admin_requests_[series("fipsproxy_admin_requests_total",
                           {{"path", r.status == 404 ? "other" : path}, {"status", std::to_string(r.status)}})];
  respond(std::move(r));
}

void Server::on_signal(uv_signal_t* s, int signum) noexcept {
  auto* self = static_cast<Server*>(s->data);
  if (signum == SIGHUP) {
    if (!self->draining_) self->reload(true, "SIGHUP");
    return;
  }
  self->begin_drain(signum == SIGTERM ? "SIGTERM" : "SIGINT", true);
}

void Server::on_drain_deadline(uv_timer_t* t) noexcept {
  auto* self = static_cast<Server*>(t->data);
  FP_LOG_WARN("drain deadline passed: closing remaining connections");
  for (auto& w : self->workers_) w->force_close();
}

}  // namespace fp::proxy
