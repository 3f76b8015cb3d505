#include "proxy/health_check.h"

#include <cstring>

#include "proxy/base/log.h"
#include "proxy/tls_transport.h"
#include "proxy/uv_handles.h"

namespace fp::proxy {

struct HealthChecker::Target {
  HealthChecker* owner = nullptr;  // null once stopped
  uv_loop_t* loop = nullptr;
  std::shared_ptr<const Runtime> rt;  // keeps cluster/config/context alive
  const ClusterRuntime* cluster = nullptr;
  size_t index = 0;
  uv_timer_t timer;
  unsigned passes = 0, failures = 0;
  bool probing = false;
};

namespace {

// One probe: a socket, a timeout, optional TLS, optional HTTP exchange. Frees itself after its
// handles close.
struct Probe {
  std::shared_ptr<HealthChecker::Target> target;
  StreamHandle h;
  uv_timer_t timeout;
  uv_connect_t connect_req;
  std::unique_ptr<TlsTransport> tls;
  std::string response;
  bool sent_request = false;
  bool done = false;
  int pending_closes = 0;
  char buf[16384];
};

void publish(HealthChecker::Target& t, bool ok, const std::string& reason);
void finish(Probe* p, bool ok, const std::string& reason);

void write_raw(Probe* p, std::string data) {
  if (data.empty()) return;
  struct W {
    uv_write_t req;
    std::string data;
  };
  auto* w = new W{{}, std::move(data)};
  uv_buf_t b = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
  if (uv_write(&w->req, &p->h.stream, &b, 1, [](uv_write_t* r, int) { delete reinterpret_cast<W*>(r); }) != 0) {
    delete w;
  }
}

void send_http_request(Probe* p) {
  const config::Cluster& c = *p->target->cluster->cfg;
  const config::HealthCheck& hc = *c.health_check;
  const config::Address& ep = c.endpoints[p->target->index];
  std::string host = hc.host.empty() ? (ep.is_unix() ? "localhost" : ep.host) : hc.host;
  std::string req = "GET " + hc.path + " HTTP/1.1\r\nHost: " + host +
                    "\r\nUser-Agent: fipsproxy-health-check\r\nConnection: close\r\n\r\n";
  p->sent_request = true;
  if (p->tls) {
    p->tls->write(req.data(), req.size());
    write_raw(p, p->tls->take_output());
  } else {
    write_raw(p, std::move(req));
  }
}

// Judges the status line once it is complete.
void check_http(Probe* p) {
  const size_t eol = p->response.find("\r\n");
  if (eol == std::string::npos) {
    if (p->response.size() > 8192) finish(p, false, "http: no status line");
    return;
  }
  const std::string line = p->response.substr(0, eol);
  if (line.size() < 12 || line.compare(0, 7, "HTTP/1.") != 0 || line[8] != ' ') {
    finish(p, false, "http: bad status line");
    return;
  }
  const int status = std::atoi(line.substr(9, 3).c_str());
  const config::HealthCheck& hc = *p->target->cluster->cfg->health_check;
  if (status >= hc.status_min && status <= hc.status_max) {
    finish(p, true, "");
  } else {
    finish(p, false, "http: status " + std::to_string(status));
  }
}

void on_read(uv_stream_t* s, ssize_t n, const uv_buf_t* b) {
  auto* p = static_cast<Probe*>(s->data);
  if (p->done) return;
  const config::HealthCheck& hc = *p->target->cluster->cfg->health_check;
  if (n < 0) {
    finish(p, false, std::string(p->tls && !p->tls->handshake_done() ? "tls: peer closed: " : "read: ") +
                         uv_err_name(static_cast<int>(n)));
    return;
  }
  if (!p->tls) {
    p->response.append(b->base, static_cast<size_t>(n));
    check_http(p);
    return;
  }
  p->tls->feed(b->base, static_cast<size_t>(n));
  if (!p->tls->handshake_done()) {
    TlsTransport::Step st = p->tls->handshake();
    write_raw(p, p->tls->take_output());
    if (st == TlsTransport::Step::WantRead) return;
    if (st == TlsTransport::Step::Failed) {
      Error e = p->tls->failure(Side::Upstream);
      finish(p, false, "tls: " + std::string(base::token(e.code)) + ": " + e.detail);
      return;
    }
    if (Result<void> gate = p->tls->check_negotiated(); !gate) {
      finish(p, false, "tls: " + std::string(base::token(gate.error().code)) + ": " + gate.error().detail);
      return;
    }
    if (hc.type == config::HealthCheck::Type::Tls) {
      finish(p, true, "");
      return;
    }
    send_http_request(p);
  }
  for (;;) {
    TlsTransport::ReadResult r = p->tls->read(p->buf, sizeof p->buf);
    if (r.bytes > 0) {
      p->response.append(p->buf, r.bytes);
      continue;
    }
    break;
  }
  write_raw(p, p->tls->take_output());
  check_http(p);
}

void on_connect(uv_connect_t* req, int status) {
  auto* p = static_cast<Probe*>(req->data);
  if (p->done) return;
  if (status != 0) {
    finish(p, false, std::string("connect: ") + uv_err_name(status));
    return;
  }
  const ClusterRuntime& c = *p->target->cluster;
  const config::HealthCheck& hc = *c.cfg->health_check;
  const config::Address& ep = c.cfg->endpoints[p->target->index];
  if (hc.type == config::HealthCheck::Type::Tcp) {
    finish(p, true, "");
    return;
  }
  uv_read_start(
      &p->h.stream,
      [](uv_handle_t* hh, size_t, uv_buf_t* b) {
        auto* pr = static_cast<Probe*>(hh->data);
        *b = uv_buf_init(pr->buf, sizeof pr->buf);
      },
      on_read);
  if (c.tls) {
    std::string sni = c.cfg->tls->sni;
    if (sni.empty() && !ep.is_unix()) sni = ep.host;
    p->tls = TlsTransport::create(c.tls, sni);
    if (!p->tls) {
      finish(p, false, "tls: cannot create a session");
      return;
    }
    p->tls->handshake();
    write_raw(p, p->tls->take_output());
    return;
  }
  send_http_request(p);
}

void on_probe_closed(uv_handle_t* hh) {
  auto* p = static_cast<Probe*>(hh->data);
  if (--p->pending_closes == 0) delete p;
}

void finish(Probe* p, bool ok, const std::string& reason) {
  if (p->done) return;
  p->done = true;
  p->target->probing = false;
  if (p->target->owner != nullptr) publish(*p->target, ok, reason);
  p->pending_closes = 2;
  uv_close(&p->h.handle, on_probe_closed);
  uv_close(reinterpret_cast<uv_handle_t*>(&p->timeout), on_probe_closed);
}

void start_probe(const std::shared_ptr<HealthChecker::Target>& t) {
  if (t->probing) return;  // the previous probe is still within its timeout
  const config::Cluster& c = *t->cluster->cfg;
  const config::Address& ep = c.endpoints[t->index];
  auto* p = new Probe();
  p->target = t;
  t->probing = true;
  uv_timer_init(t->loop, &p->timeout);
  p->timeout.data = p;
  p->connect_req.data = p;
  if (ep.is_unix()) {
    uv_pipe_init(t->loop, &p->h.pipe, 0);
    p->h.handle.data = p;
    uv_pipe_connect(&p->connect_req, &p->h.pipe, ep.path.c_str(), on_connect);
  } else {
    uv_tcp_init(t->loop, &p->h.tcp);
    p->h.handle.data = p;
    struct sockaddr_storage ss;
    std::memset(&ss, 0, sizeof ss);
    const std::string host = ep.host == "localhost" ? "127.0.0.1" : ep.host;
    int rc = uv_ip4_addr(host.c_str(), ep.port, reinterpret_cast<sockaddr_in*>(&ss));
    if (rc != 0) rc = uv_ip6_addr(host.c_str(), ep.port, reinterpret_cast<sockaddr_in6*>(&ss));
    if (rc == 0) rc = uv_tcp_connect(&p->connect_req, &p->h.tcp, reinterpret_cast<sockaddr*>(&ss), on_connect);
    if (rc != 0) {
      finish(p, false, std::string("connect: ") + uv_err_name(rc) + " (health checks need an IP literal)");
      return;
    }
  }
  uv_timer_start(&p->timeout, [](uv_timer_t* tm) {
    auto* pr = static_cast<Probe*>(tm->data);
    finish(pr, false, "timeout");
  }, static_cast<uint64_t>(c.health_check->timeout.count()), 0);
}

}  // namespace

HealthChecker::HealthChecker(uv_loop_t* loop, std::shared_ptr<const Runtime> rt) : loop_(loop), rt_(std::move(rt)) {
  for (const auto& c : rt_->clusters) {
    if (!c->cfg->health_check) continue;
    for (size_t i = 0; i < c->cfg->endpoints.size(); ++i) {
      auto t = std::make_shared<Target>();
      t->owner = this;
      t->loop = loop_;
      t->rt = rt_;
      t->cluster = c.get();
      t->index = i;
      uv_timer_init(loop_, &t->timer);
      t->timer.data = t.get();
      // The first probe soon, spread a little so endpoints are not checked in lockstep.
      uv_timer_start(&t->timer, [](uv_timer_t* tm) {
        auto* target = static_cast<Target*>(tm->data);
        // Find our shared_ptr (probes hold one so a stopped checker never frees their target).
        for (auto& sp : target->owner->targets_) {
          if (sp.get() == target) start_probe(sp);
        }
      }, 10 + 5 * i, static_cast<uint64_t>(c->cfg->health_check->interval.count()));
      targets_.push_back(std::move(t));
    }
  }
}

HealthChecker::~HealthChecker() { stop(); }

void HealthChecker::stop() {
  for (auto& t : targets_) {
    if (t->owner == nullptr) continue;
    t->owner = nullptr;
    // The timer is a member of the target; keep the target alive until the close callback.
    auto* keep = new std::shared_ptr<Target>(t);
    t->timer.data = keep;
    uv_close(reinterpret_cast<uv_handle_t*>(&t->timer),
             [](uv_handle_t* h) { delete static_cast<std::shared_ptr<Target>*>(h->data); });
  }
  targets_.clear();
}

namespace {
void publish(HealthChecker::Target& t, bool ok, const std::string& reason) {
  HealthChecker& owner = *t.owner;
  const config::Cluster& c = *t.cluster->cfg;
  const config::HealthCheck& hc = *c.health_check;
  const std::string& ep = c.endpoints[t.index].text;
  ClusterHealth& health = *t.cluster->health;
  owner.count(series("fipsproxy_health_checks_total",
                     {{"cluster", c.name}, {"endpoint", ep}, {"result", ok ? "pass" : "fail"}}));
  const bool up = health.up[t.index].load(std::memory_order_relaxed);
  if (ok) {
    t.failures = 0;
    if (!up && ++t.passes >= hc.healthy_threshold) {
      health.up[t.index].store(true, std::memory_order_relaxed);
      health.reason[t.index].clear();
      t.passes = 0;
      FP_LOG_INFO("endpoint healthy", {"cluster", c.name}, {"endpoint", ep});
    }
    return;
  }
  t.passes = 0;
  health.reason[t.index] = reason;
  if (up && ++t.failures >= hc.unhealthy_threshold) {
    health.up[t.index].store(false, std::memory_order_relaxed);
    t.failures = 0;
    FP_LOG_WARN("endpoint unhealthy", {"cluster", c.name}, {"endpoint", ep}, {"reason", reason});
  }
}
}  // namespace

}  // namespace fp::proxy
