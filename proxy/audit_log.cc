#include "proxy/audit_log.h"

#include <chrono>

#include "certs/audit_chain.h"
#include "proxy/base/json.h"
#include "proxy/base/log.h"

namespace fp::proxy {

// Vyukov's bounded MPMC ring cell: `seq` says whose turn the cell is.
struct AuditLog::Cell {
  std::atomic<size_t> seq{0};
  std::string data;
};

Result<std::unique_ptr<AuditLog>> AuditLog::open(const std::string& path, uint64_t max_bytes, unsigned keep,
                                                 size_t queue_capacity) {
  auto chain = certs::AuditChain::open(path, max_bytes, keep);
  if (!chain) return std::move(chain).error();
  // Make the header line (genesis or rotate) durable now, so an open that fails is visible at
  // startup rather than on the first handshake.
  if (auto r = (*chain)->sync(); !r) return std::move(r).error();
  std::unique_ptr<AuditLog> log(new AuditLog());
  log->path_ = path;
  log->chain_ = std::move(chain).value();
  size_t cap = 2;
  while (cap < queue_capacity) cap <<= 1;
  log->cells_.reset(new Cell[cap]);
  for (size_t i = 0; i < cap; ++i) log->cells_[i].seq.store(i, std::memory_order_relaxed);
  log->mask_ = cap - 1;
  log->writer_ = std::thread([raw = log.get()] { raw->run(); });
  return log;
}

AuditLog::~AuditLog() { close(); }

bool AuditLog::push(std::string& record) noexcept {
  size_t pos = enqueue_pos_.load(std::memory_order_relaxed);
  Cell* cell;
  for (;;) {
    cell = &cells_[pos & mask_];
    size_t seq = cell->seq.load(std::memory_order_acquire);
    auto dif = static_cast<intptr_t>(seq) - static_cast<intptr_t>(pos);
    if (dif == 0) {
      if (enqueue_pos_.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed)) break;
    } else if (dif < 0) {
      return false;  // full
    } else {
      pos = enqueue_pos_.load(std::memory_order_relaxed);
    }
  }
  cell->data = std::move(record);
  cell->seq.store(pos + 1, std::memory_order_release);
  return true;
}

bool AuditLog::pop(std::string& out) noexcept {
  // One consumer (the writer thread).
  size_t pos = dequeue_pos_.load(std::memory_order_relaxed);
  Cell& cell = cells_[pos & mask_];
  size_t seq = cell.seq.load(std::memory_order_acquire);
  if (static_cast<intptr_t>(seq) - static_cast<intptr_t>(pos + 1) < 0) return false;  // empty (or not yet published)
  out = std::move(cell.data);
  cell.data = std::string();
  cell.seq.store(pos + mask_ + 1, std::memory_order_release);
  dequeue_pos_.store(pos + 1, std::memory_order_relaxed);
  return true;
}

bool AuditLog::submit(std::string record) noexcept {
  if (closed_.load(std::memory_order_acquire) || stopping_.load(std::memory_order_acquire)) {
    dropped_total_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  if (!push(record)) {
    dropped_pending_.fetch_add(1, std::memory_order_relaxed);
    dropped_total_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  wake_.fetch_add(1, std::memory_order_release);
  wake_.notify_one();
  return true;
}

void AuditLog::note_error(const std::string& what) {
  uint64_t n = write_errors_.fetch_add(1, std::memory_order_relaxed) + 1;
  // Rate-limited: the first error and then every 1000th.
  if (n == 1 || n % 1000 == 0) {
    base::log_write(base::Level::Error, "audit log write failed",
                    {{"path", path_}, {"error", what}, {"errors_total", n}});
  }
}

void AuditLog::write_dropped_record() {
  uint64_t n = dropped_pending_.exchange(0, std::memory_order_relaxed);
  if (n == 0) return;
  base::JsonObject o;
  o.str("type", "dropped").str("ts", certs::audit_timestamp_now());
  o.unum("count", n).unum("dropped_total", dropped_total_.load(std::memory_order_relaxed));
  o.str("reason", "audit_queue_full");
  if (auto r = chain_->append(o.done()); !r) note_error(r.error().message());
}

void AuditLog::run() {
  std::string rec;
  for (;;) {
    // Read the wake counter before draining: a submit after the drain changes it, so the wait
    // below returns at once (no lost wake-up).
    uint32_t seen = wake_.load(std::memory_order_acquire);
    bool stop = stopping_.load(std::memory_order_acquire);
    uint64_t batch = 0;
    for (;;) {
      // Drops first: they happened before the records now queued were accepted.
      write_dropped_record();
      if (!pop(rec)) break;
      if (auto r = chain_->append(rec); !r) note_error(r.error().message());
      ++batch;
      written_.fetch_add(1, std::memory_order_relaxed);
    }
    write_dropped_record();
    if (batch > 0) {
      if (auto r = chain_->flush(); !r) note_error(r.error().message());
    }
    if (stop) {
      // close() set stopping_ after every submit that happened before it; one more pass picks
      // up a publish that landed between the pop above and here.
      while (pop(rec)) {
        if (auto r = chain_->append(rec); !r) note_error(r.error().message());
        written_.fetch_add(1, std::memory_order_relaxed);
      }
      write_dropped_record();
      if (auto r = chain_->sync(); !r) note_error(r.error().message());
      return;
    }
    wake_.wait(seen, std::memory_order_acquire);
  }
}

void AuditLog::close() {
  if (closed_.exchange(true, std::memory_order_acq_rel)) return;
  stopping_.store(true, std::memory_order_release);
  wake_.fetch_add(1, std::memory_order_release);
  wake_.notify_one();
  if (writer_.joinable()) writer_.join();
  // Submits racing close() (callers stop their workers first) may have left records behind:
  // count them as dropped, they never reach the chain.
  std::string rec;
  while (pop(rec)) dropped_total_.fetch_add(1, std::memory_order_relaxed);
  chain_.reset();
}

}  // namespace fp::proxy
