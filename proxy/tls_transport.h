#pragma once
// TlsTransport: one BoringSSL session run over memory buffers, never over the fd (Node's
// crypto_tls, Envoy's transport sockets). The connection feeds it ciphertext from the socket,
// pulls plaintext out, pushes plaintext in and takes ciphertext to write. It never touches
// libuv. Callbacks inside the library only record decisions (certs/); this class reports them
// after each call returns.

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

  // Ciphertext received from the socket.
  void feed(const char* data, size_t len);
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
  struct Impl;
  std::unique_ptr<Impl> impl_;
  bool handshake_done_ = false;
  mutable Error failure_;
  bool failure_set_ = false;
};

}  // namespace fp::proxy
