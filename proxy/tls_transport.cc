#include "proxy/tls_transport.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

namespace fp::proxy {

struct TlsTransport::Impl {
  std::shared_ptr<const certs::TlsContext> ctx;  // keeps the SSL_CTX alive for this session
  bssl::UniquePtr<SSL> ssl;
  BIO* rbio = nullptr;  // owned by ssl
  BIO* wbio = nullptr;  // owned by ssl
};

std::unique_ptr<TlsTransport> TlsTransport::create(std::shared_ptr<const certs::TlsContext> ctx,
                                                   const std::string& sni) {
  std::unique_ptr<TlsTransport> t(new TlsTransport());
  t->impl_ = std::make_unique<Impl>();
  t->impl_->ctx = std::move(ctx);
  t->impl_->ssl = t->impl_->ctx->new_ssl(sni);
  if (!t->impl_->ssl) return nullptr;
  BIO* rbio = BIO_new(BIO_s_mem());
  BIO* wbio = BIO_new(BIO_s_mem());
  if (rbio == nullptr || wbio == nullptr) {
    BIO_free(rbio);
    BIO_free(wbio);
    return nullptr;
  }
  // An empty memory BIO reports "retry" rather than EOF, so SSL_read asks for more data.
  BIO_set_mem_eof_return(rbio, -1);
  BIO_set_mem_eof_return(wbio, -1);
  t->impl_->rbio = rbio;
  t->impl_->wbio = wbio;
  SSL_set_bio(t->impl_->ssl.get(), rbio, wbio);  // ownership of both BIOs moves to the SSL
  if (t->impl_->ctx->role() == certs::Role::Server) {
    SSL_set_accept_state(t->impl_->ssl.get());
  } else {
    SSL_set_connect_state(t->impl_->ssl.get());
  }
  return t;
}

TlsTransport::~TlsTransport() = default;

void TlsTransport::feed(const char* data, size_t len) {
  // A memory BIO grows as needed; the connection bounds how much it feeds before the
  // plaintext is consumed (backpressure stops socket reads).
  BIO_write(impl_->rbio, data, static_cast<int>(len));
}

TlsTransport::Step TlsTransport::handshake() {
  if (handshake_done_) return Step::Done;
  ERR_clear_error();
  int rc = SSL_do_handshake(impl_->ssl.get());
  if (rc == 1) {
    handshake_done_ = true;
    if (impl_->ctx->role() == certs::Role::Server) {
      // BoringSSL holds TLS 1.3 NewSessionTicket messages until the server's first write
      // (tls13_server.cc); a zero-byte write flushes them, so clients can resume even when the
      // app speaks second or never.
      ERR_clear_error();
      SSL_write(impl_->ssl.get(), "", 0);
      ERR_clear_error();
    }
    return Step::Done;
  }
  int err = SSL_get_error(impl_->ssl.get(), rc);
  if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) return Step::WantRead;
  failure_ = certs::classify_handshake_failure(impl_->ssl.get(), Side::Internal);
  failure_set_ = true;
  return Step::Failed;
}

TlsTransport::ReadResult TlsTransport::read(char* buf, size_t cap) {
  ReadResult r;
  ERR_clear_error();
  int rc = SSL_read(impl_->ssl.get(), buf, static_cast<int>(cap));
  if (rc > 0) {
    r.bytes = static_cast<size_t>(rc);
    return r;
  }
  int err = SSL_get_error(impl_->ssl.get(), rc);
  if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
    r.want_read = true;
  } else if (err == SSL_ERROR_ZERO_RETURN) {
    r.eof = true;
  } else {
    failure_ = certs::classify_handshake_failure(impl_->ssl.get(), Side::Internal);
    failure_set_ = true;
    r.failed = true;
  }
  return r;
}

bool TlsTransport::write(const char* data, size_t len) {
  while (len > 0) {
    ERR_clear_error();
    // STYLE 5.3: after WANT_WRITE retry with the same length; with memory BIOs writes never
    // block, so every call either takes a full chunk or fails.
    const int chunk = static_cast<int>(len > (1u << 30) ? (1u << 30) : len);
    int rc = SSL_write(impl_->ssl.get(), data, chunk);
    if (rc <= 0) {
      failure_ = certs::classify_handshake_failure(impl_->ssl.get(), Side::Internal);
      failure_set_ = true;
      return false;
    }
    data += rc;
    len -= static_cast<size_t>(rc);
  }
  return true;
}

void TlsTransport::shutdown() {
  ERR_clear_error();
  SSL_shutdown(impl_->ssl.get());
  ERR_clear_error();
}

size_t TlsTransport::pending_output() const { return BIO_pending(impl_->wbio); }

std::string TlsTransport::take_output() {
  std::string out;
  const size_t n = BIO_pending(impl_->wbio);
  if (n == 0) return out;
  out.resize(n);
  int got = BIO_read(impl_->wbio, out.data(), static_cast<int>(n));
  out.resize(got > 0 ? static_cast<size_t>(got) : 0);
  return out;
}

size_t TlsTransport::take_output(std::unique_ptr<char[]>& out) {
  const size_t n = BIO_pending(impl_->wbio);
  if (n == 0) return 0;
  out.reset(new char[n]);  // default-initialised: no zero fill
  const int got = BIO_read(impl_->wbio, out.get(), static_cast<int>(n));
  return got > 0 ? static_cast<size_t>(got) : 0;
}

certs::HandshakeInfo TlsTransport::info() const { return certs::describe_handshake(impl_->ssl.get()); }

Result<void> TlsTransport::check_negotiated() const {
  return certs::check_negotiated(impl_->ssl.get(), impl_->ctx->config().profile);
}

Error TlsTransport::failure(Side side) const {
  Error e = failure_set_ ? failure_ : Error{Code::TlsHandshakeFailed, side, ""};
  e.side = side;
  return e;
}

}  // namespace fp::proxy
