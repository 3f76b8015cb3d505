#pragma once
// TlsTransport: one BoringSSL session run over our own BIO, never over the fd (Node's
// crypto_tls, Envoy's transport sockets). The connection feeds it ciphertext from the socket,
// pulls plaintext out, pushes plaintext in and takes ciphertext to write. It never touches
// libuv. Callbacks inside the library only record decisions (certs/); this class reports them
// after each call returns.
//
// Low-copy record path (issue #10, DESIGN.md §4): the BIO reads ciphertext straight from the
// caller's read buffer while a Lend is in scope (BoringSSL asks for a record header, then exactly
// the rest of the record, so a partial record moves once into its own record buffer). Only what
// the session is not asked to read before the Lend ends (everything after a backpressure stop,
// or records that arrive while nobody reads) is copied into a per-session buffer, which is freed
// as soon as it empties. Ciphertext records are appended to an output chunk sized for the
// whole write and the chunk itself is handed to the caller (take_output) without a copy. An idle
// session holds no buffers of ours (BoringSSL frees its own record buffers when empty).

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "certs/handshake_info.h"
#include "certs/tls_context.h"
#include "proxy/base/result.h"

namespace fp::proxy {

class TlsTransport {
 public:
  enum class Step { Done, WantRead, Failed };
  // Result of read(): bytes > 0; 0 with want_read: need more ciphertext; eof: close_notify.
  struct ReadResult {
    size_t bytes = 0;
    bool want_read = false;
    bool eof = false;
    bool failed = false;
  };

  static std::unique_ptr<TlsTransport> create(std::shared_ptr<const certs::TlsContext> ctx,
                                              const std::string& sni);
  ~TlsTransport();
  TlsTransport(const TlsTransport&) = delete;
  TlsTransport& operator=(const TlsTransport&) = delete;

  // Ciphertext received from the socket, copied into the session's input buffer.
  void feed(const char* data, size_t len);

  // Lends `data` (ciphertext just read from the socket) to the session for the lifetime of this
  // object: handshake()/read() consume it in place. On destruction, what is left unread is
  // copied into the session's input buffer (it must outlive the caller's buffer). Safe if the
  // session is destroyed first. A second Lend (or feed()) on the same session settles the first.
  class Lend {
   public:
    Lend(TlsTransport& t, const char* data, size_t len);
    ~Lend();
    Lend(const Lend&) = delete;
    Lend& operator=(const Lend&) = delete;

   private:
    friend class TlsTransport;
    TlsTransport* t_;
  };

  // Buffer accounting for tests and bench (deterministic; no timing).
  struct BufferStats {
    size_t input_buffered = 0;  // owned ciphertext not yet read by the session
    size_t input_capacity = 0;  // bytes allocated for it (0 when empty)
    size_t output_capacity = 0; // bytes allocated for pending ciphertext (0 when taken)
    uint64_t input_copied = 0;  // ciphertext bytes copied into the input buffer, ever
    uint64_t output_copied = 0; // ciphertext bytes copied by take_output (chunk joins), ever
  };
  BufferStats buffer_stats() const;

  struct Impl;  // opaque; public only for the BIO callbacks in tls_transport.cc
  // Advances the handshake. Failed: see failure().
  Step handshake();
  bool handshake_done() const { return handshake_done_; }
  ReadResult read(char* buf, size_t cap);
  // Encrypts all of `data` (records go to the output). False on a fatal error.
  bool write(const char* data, size_t len);
  // Queues close_notify.
  void shutdown();
  // Ciphertext waiting to be written to the socket.
  size_t pending_output() const;
  std::string take_output();
  // Moves all pending ciphertext into a fresh uninitialised buffer (no zero fill); returns its
  // size (0: nothing pending, `out` untouched).
  size_t take_output(std::unique_ptr<char[]>& out);

  certs::HandshakeInfo info() const;
  Result<void> check_negotiated() const;
  // Why the handshake (or a later read) failed.
  Error failure(Side side) const;

 private:
  TlsTransport() = default;
  void settle_lend();
  std::unique_ptr<Impl> impl_;
  bool handshake_done_ = false;
  mutable Error failure_;
  bool failure_set_ = false;
};

}  // namespace fp::proxy
