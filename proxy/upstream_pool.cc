#include "proxy/upstream_pool.h"

#include <algorithm>

#include "proxy/base/log.h"

namespace fp::proxy {

namespace {
constexpr size_t kScratch = 16 * 1024 + 512;
constexpr uint64_t kSweepMs = 1000;
}  // namespace

struct UpstreamPool::Entry {
  UpstreamPool* pool = nullptr;
  std::string key;
  std::string label;
  std::unique_ptr<StreamEnd> s;
  uint64_t parked_ms = 0;
  uint64_t expires_ms = 0;
  bool closing = false;
};

UpstreamPool::UpstreamPool(uv_loop_t* loop, Stats& stats)
    : loop_(loop), stats_(stats), scratch_(new char[kScratch]) {}

UpstreamPool::~UpstreamPool() = default;

bool UpstreamPool::put(const std::string& key, const std::string& label, std::unique_ptr<StreamEnd> s,
                       size_t max_idle, uint64_t idle_timeout_ms) {
  if (!s || !s->inited || uv_is_closing(&s->h.handle)) return false;
  auto refuse = [&](const char* why) {
    stats_.add(series("fipsproxy_upstream_pool_closed_total", {{"upstream", label}, {"reason", why}}));
    close_socket(std::move(s));
    return false;
  };
  if (max_idle == 0) return refuse("disabled");
  if (s->queued != 0 || s->shutdown_started || s->read_eof) return refuse("not_clean");
  if (s->tls) {
    // Plaintext already buffered inside the TLS session would be a stray byte for the next
    // request: such a connection is never reused.
    TlsTransport::ReadResult r = s->tls->read(scratch_.get(), kScratch);
    if (r.bytes != 0 || r.eof || r.failed || s->tls->pending_output() != 0) return refuse("stray_bytes");
  }
  s->paused = false;
  if (!sweep_inited_) {
    uv_timer_init(loop_, &sweep_);
    sweep_.data = this;
    uv_unref(reinterpret_cast<uv_handle_t*>(&sweep_));  // never keeps the loop alive by itself
    sweep_inited_ = true;
  }
  if (!uv_is_active(reinterpret_cast<uv_handle_t*>(&sweep_))) {
    uv_timer_start(&sweep_, on_sweep, kSweepMs, kSweepMs);
  }
  auto* e = new Entry();
  e->pool = this;
  e->key = key;
  e->label = label;
  e->s = std::move(s);
  e->parked_ms = uv_now(loop_);
  e->expires_ms = e->parked_ms + idle_timeout_ms;
  if (!hand_over(*e->s, e, on_alloc, on_read)) {
    e->closing = true;
    uv_read_stop(&e->s->h.stream);
    uv_close(&e->s->h.handle, on_entry_closed);
    stats_.add(series("fipsproxy_upstream_pool_closed_total", {{"upstream", label}, {"reason", "error"}}));
    return false;
  }
  // A key's queue stays when it empties (take() does not erase it): the next put() of a
  // keep-alive exchange finds it without allocating. sweep() drops empty queues.
  std::deque<Entry*>& q = by_key_[key];
  q.push_back(e);
  ++count_;
  while (q.size() > max_idle) close_entry(q.front(), "overflow");  // oldest first
  return true;
}

std::unique_ptr<StreamEnd> UpstreamPool::take(const std::string& key, void* data, uv_alloc_cb alloc_cb,
                                              uv_read_cb read_cb) {
  const uint64_t now = uv_now(loop_);
  for (;;) {
    auto it = by_key_.find(key);
    if (it == by_key_.end() || it->second.empty()) return nullptr;
    Entry* e = it->second.back();  // most recent: the least likely to have been closed by the server
    if (e->expires_ms <= now) {
      close_entry(e, "idle_timeout");  // removes it
      continue;
    }
    it->second.pop_back();
    --count_;
    std::unique_ptr<StreamEnd> s = std::move(e->s);
    const std::string label = std::move(e->label);
    delete e;
    if (!hand_over(*s, data, alloc_cb, read_cb)) {
      stats_.add(series("fipsproxy_upstream_pool_closed_total", {{"upstream", label}, {"reason", "error"}}));
      close_socket(std::move(s));
      continue;
    }
    return s;
  }
}

bool UpstreamPool::hand_over(StreamEnd& s, void* data, uv_alloc_cb alloc_cb, uv_read_cb read_cb) {
  s.h.handle.data = data;
  if (s.reading) {
    // uv_read_start() stores exactly these two fields; while the stream is reading, libuv reads
    // them at each readable event.
    s.h.stream.alloc_cb = alloc_cb;
    s.h.stream.read_cb = read_cb;
    return true;
  }
  if (uv_read_start(&s.h.stream, alloc_cb, read_cb) != 0) return false;
  s.reading = true;
  return true;
}

void UpstreamPool::close_entry(Entry* e, const char* why) {
  if (e->closing) return;
  e->closing = true;
  auto it = by_key_.find(e->key);
  if (it != by_key_.end()) {
    auto& q = it->second;
    q.erase(std::remove(q.begin(), q.end(), e), q.end());
  }
  --count_;
  stats_.add(series("fipsproxy_upstream_pool_closed_total", {{"upstream", e->label}, {"reason", why}}));
  FP_LOG_DEBUG("pooled upstream closed", {"upstream", e->label}, {"addr", e->s->addr}, {"reason", why});
  uv_read_stop(&e->s->h.stream);
  uv_close(&e->s->h.handle, on_entry_closed);
}

void UpstreamPool::on_entry_closed(uv_handle_t* h) noexcept { delete static_cast<Entry*>(h->data); }

void UpstreamPool::close_all() {
  std::vector<Entry*> all;
  for (auto& [k, q] : by_key_) all.insert(all.end(), q.begin(), q.end());
  for (Entry* e : all) close_entry(e, "drain");
  if (sweep_inited_ && !uv_is_closing(reinterpret_cast<uv_handle_t*>(&sweep_))) {
    uv_close(reinterpret_cast<uv_handle_t*>(&sweep_), nullptr);
  }
}

void UpstreamPool::sweep() {
  const uint64_t now = uv_now(loop_);
  std::vector<Entry*> expired;
  for (auto& [k, q] : by_key_) {
    for (Entry* e : q) {
      if (e->expires_ms <= now) expired.push_back(e);
    }
  }
  for (Entry* e : expired) close_entry(e, "idle_timeout");
  std::erase_if(by_key_, [](const auto& kv) { return kv.second.empty(); });  // old generations' keys
  if (count_ == 0 && sweep_inited_) uv_timer_stop(&sweep_);
}

void UpstreamPool::on_sweep(uv_timer_t* t) noexcept { static_cast<UpstreamPool*>(t->data)->sweep(); }

void UpstreamPool::on_alloc(uv_handle_t* h, size_t, uv_buf_t* buf) noexcept {
  auto* e = static_cast<Entry*>(h->data);
  *buf = uv_buf_init(e->pool->scratch_.get(), static_cast<unsigned>(kScratch));
}

void UpstreamPool::on_read(uv_stream_t* st, ssize_t nread, const uv_buf_t* buf) noexcept {
  auto* e = static_cast<Entry*>(st->data);
  if (e->closing) return;
  UpstreamPool* pool = e->pool;
  if (nread == 0) return;
  if (nread < 0) {
    pool->close_entry(e, nread == UV_EOF ? "peer_closed" : "error");
    return;
  }
  if (!e->s->tls) {
    pool->close_entry(e, "stray_bytes");  // a plaintext server spoke while idle
    return;
  }
  e->s->tls->feed(buf->base, static_cast<size_t>(nread));
  TlsTransport::ReadResult r = e->s->tls->read(pool->scratch_.get(), kScratch);
  if (r.bytes != 0) {
    pool->close_entry(e, "stray_bytes");
  } else if (r.eof) {
    pool->close_entry(e, "peer_closed");  // close_notify
  } else if (!r.want_read || e->s->tls->pending_output() != 0) {
    pool->close_entry(e, "error");  // an alert, or a message that wants an answer (KeyUpdate)
  }
  // want_read with nothing to send: a NewSessionTicket or similar; stay parked.
}

void UpstreamPool::close_socket(std::unique_ptr<StreamEnd> s) {
  if (!s) return;
  if (!s->inited) return;  // no handle was ever opened: just free it
  if (uv_is_closing(&s->h.handle)) {
    (void)s.release();  // its close callback owns it already
    return;
  }
  StreamEnd* raw = s.release();
  uv_read_stop(&raw->h.stream);
  raw->h.handle.data = raw;
  uv_close(&raw->h.handle, on_socket_closed);
}

void UpstreamPool::on_socket_closed(uv_handle_t* h) noexcept { delete static_cast<StreamEnd*>(h->data); }

}  // namespace fp::proxy
