#pragma once
// The audit log writer (issue 7 "Audit log"): workers submit one JSON record per handshake
// attempt; one writer thread chains them (certs::AuditChain: `prev` = module SHA-256 of the
// previous line) and writes them with size-based rotation.
//
// submit() never blocks and takes no lock: a bounded lock-free ring (multi-producer, one
// consumer) plus a futex wake-up (std::atomic::notify_one). When the ring is full the record is
// dropped and counted; the next time the writer runs it first writes a chain record
//   {"type":"dropped","ts":"...","count":N,"dropped_total":M,"prev":"..."}
// so the gap itself is in the chain. close() (or the destructor) writes everything submitted
// before it, then syncs the file.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "proxy/base/result.h"

namespace fp::certs {
class AuditChain;
}

namespace fp::proxy {

class AuditLog {
 public:
  static constexpr size_t kDefaultQueueCapacity = 4096;

  // Opens (or continues) the chain at `path`; see certs::AuditChain::open for max_bytes and
  // keep. queue_capacity is rounded up to a power of two. Starts the writer thread.
  static Result<std::unique_ptr<AuditLog>> open(const std::string& path, uint64_t max_bytes, unsigned keep,
                                                size_t queue_capacity = kDefaultQueueCapacity);
  ~AuditLog();
  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;

  // Any thread. `record` is one JSON object without "prev" and without a newline (e.g.
  // certs::audit_record(event)). False when the queue is full or the log is closed: the record
  // is dropped and counted.
  bool submit(std::string record) noexcept;

  // Writes everything submitted before the call, syncs, stops the writer. Idempotent; not
  // concurrent with itself.
  void close();

  uint64_t written_total() const { return written_.load(std::memory_order_relaxed); }   // submitted records on disk
  uint64_t dropped_total() const { return dropped_total_.load(std::memory_order_relaxed); }
  uint64_t write_errors_total() const { return write_errors_.load(std::memory_order_relaxed); }
  const std::string& path() const { return path_; }

 private:
  struct Cell;
  AuditLog() = default;
  bool push(std::string& record) noexcept;
  bool pop(std::string& out) noexcept;
  void run();
  void write_dropped_record();
  void note_error(const std::string& what);

  std::string path_;
  std::unique_ptr<certs::AuditChain> chain_;
  std::unique_ptr<Cell[]> cells_;
  size_t mask_ = 0;
  alignas(64) std::atomic<size_t> enqueue_pos_{0};
  alignas(64) std::atomic<size_t> dequeue_pos_{0};
  alignas(64) std::atomic<uint32_t> wake_{0};
  std::atomic<bool> stopping_{false};
  std::atomic<bool> closed_{false};
  std::atomic<uint64_t> dropped_pending_{0};
  std::atomic<uint64_t> dropped_total_{0};
  std::atomic<uint64_t> written_{0};
  std::atomic<uint64_t> write_errors_{0};
  std::thread writer_;
};

}  // namespace fp::proxy
