#include "proxy/tls_transport.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <cstring>
#include <vector>

namespace fp::proxy {

namespace {

// Empties the thread's error queue before a libssl call (STYLE: errors from an earlier call
// must not be blamed on this one). BoringSSL's ERR_clear_error walks and frees all 16 slots
// even when the queue is empty (~2.5 % of a keep-alive request's CPU in perf: ERR_clear_error
// plus its OPENSSL_free calls, three times per request); peeking first costs one check.
inline void clear_errors() {
  if (ERR_peek_error() != 0) ERR_clear_error();
}

// One allocation of pending ciphertext; handed to the caller as is when it is the only one.
struct Chunk {
  std::unique_ptr<char[]> data;
  size_t len = 0;
  size_t cap = 0;
};

// Smallest chunk for output that comes without a size hint (handshake flights, tickets, alerts).
constexpr size_t kMinChunk = 4096;
// Worst-case ciphertext expansion per record under the policy's suites (TLS 1.2 AES-GCM: 5-byte
// header, 8-byte explicit nonce, 16-byte tag; TLS 1.3: header, content type, tag), rounded up.
constexpr size_t kRecordOverhead = 32;
constexpr size_t kMaxPlainRecord = 16384;

}  // namespace

struct TlsTransport::Impl {
  std::shared_ptr<const certs::TlsContext> ctx;  // keeps the SSL_CTX alive for this session
  bssl::UniquePtr<SSL> ssl;

  // Input: the owned remainder is read first, then the lent span.
  std::unique_ptr<char[]> in;  // null when empty
  size_t in_off = 0, in_len = 0, in_cap = 0;
  const char* lent = nullptr;
  size_t lent_len = 0;
  Lend* lend = nullptr;  // the Lend in scope, if any

  // Output: ciphertext in order, first chunk then `more` (rare: output beyond the size hint).
  Chunk out;
  std::vector<Chunk> more;
  size_t out_bytes = 0;
  size_t out_hint = 0;  // expected ciphertext of the write in progress

  uint64_t input_copied = 0;
  uint64_t output_copied = 0;

  void append_input(const char* data, size_t len) {
    if (len == 0) return;
    input_copied += len;
    if (in != nullptr && in_off + in_len + len <= in_cap) {
      std::memcpy(in.get() + in_off + in_len, data, len);
      in_len += len;
      return;
    }
    // Geometric growth: unread bytes that pile up over many callbacks are moved O(1) times each.
    const size_t cap = std::max(in_len + len, 2 * in_len);
    std::unique_ptr<char[]> grown(new char[cap]);  // no zero fill
    if (in_len != 0) std::memcpy(grown.get(), in.get() + in_off, in_len);
    std::memcpy(grown.get() + in_len, data, len);
    in = std::move(grown);
    in_off = 0;
    in_len += len;
    in_cap = cap;
  }

  int read(char* dst, size_t want) {
    size_t n = 0;
    if (in_len != 0) {
      const size_t k = std::min(want, in_len);
      std::memcpy(dst, in.get() + in_off, k);
      in_off += k;
      in_len -= k;
      n += k;
      if (in_len == 0) {  // empty: give the memory back at once
        in.reset();
        in_off = in_cap = 0;
      }
    }
    if (n < want && lent_len != 0) {
      const size_t k = std::min(want - n, lent_len);
      std::memcpy(dst + n, lent, k);
      lent += k;
      lent_len -= k;
      n += k;
    }
    return static_cast<int>(n);
  }

  void write(const char* data, size_t len) {
    Chunk& tail = more.empty() ? out : more.back();
    if (tail.data != nullptr && tail.cap - tail.len >= len) {
      std::memcpy(tail.data.get() + tail.len, data, len);
      tail.len += len;
    } else {
      Chunk c;
      c.cap = std::max({len, out_hint, kMinChunk});
      c.data.reset(new char[c.cap]);  // no zero fill
      std::memcpy(c.data.get(), data, len);
      c.len = len;
      if (out.data == nullptr) {
        out = std::move(c);
      } else {
        more.push_back(std::move(c));
      }
    }
    out_hint = 0;  // one hinted allocation per write
    out_bytes += len;
  }
};

namespace {

TlsTransport::Impl* impl_of(BIO* bio) { return static_cast<TlsTransport::Impl*>(BIO_get_data(bio)); }

int bio_read(BIO* bio, char* out, int len) {
  BIO_clear_retry_flags(bio);
  if (len <= 0) return 0;
  const int n = impl_of(bio)->read(out, static_cast<size_t>(len));
  if (n == 0) {
    // Nothing buffered: "retry", not EOF, so the library reports WANT_READ.
    BIO_set_retry_read(bio);
    return -1;
  }
  return n;
}

int bio_write(BIO* bio, const char* in, int len) {
  BIO_clear_retry_flags(bio);
  if (len <= 0) return 0;
  impl_of(bio)->write(in, static_cast<size_t>(len));
  return len;
}

long bio_ctrl(BIO* bio, int cmd, long num, void* ptr) {
  (void)num;
  (void)ptr;
  TlsTransport::Impl* s = impl_of(bio);
  switch (cmd) {
    case BIO_CTRL_FLUSH:  // libssl flushes after each flight and record; output is kept until taken
      return 1;
    case BIO_CTRL_PENDING:
      return s == nullptr ? 0 : static_cast<long>(s->in_len + s->lent_len);
    case BIO_CTRL_WPENDING:
      return s == nullptr ? 0 : static_cast<long>(s->out_bytes);
    default:
      return 0;
  }
}

// One method for the session's BIO (used for both directions), created once per process.
const BIO_METHOD* transport_method() {
  static const BIO_METHOD* method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "fipsproxy transport");
    if (m != nullptr) {
      BIO_meth_set_read(m, bio_read);
      BIO_meth_set_write(m, bio_write);
      BIO_meth_set_ctrl(m, bio_ctrl);
    }
    return m;
  }();
  return method;
}

}  // namespace

std::unique_ptr<TlsTransport> TlsTransport::create(std::shared_ptr<const certs::TlsContext> ctx,
                                                   const std::string& sni) {
  std::unique_ptr<TlsTransport> t(new TlsTransport());
  t->impl_ = std::make_unique<Impl>();
  t->impl_->ctx = std::move(ctx);
  t->impl_->ssl = t->impl_->ctx->new_ssl(sni);
  if (!t->impl_->ssl) return nullptr;
  const BIO_METHOD* method = transport_method();
  BIO* bio = method == nullptr ? nullptr : BIO_new(method);
  if (bio == nullptr) return nullptr;
  BIO_set_data(bio, t->impl_.get());
  BIO_set_init(bio, 1);
  // The same BIO reads and writes; the SSL takes the one reference (and frees it first in
  // ~Impl, since `ssl` is destroyed before the buffers it points into).
  SSL_set_bio(t->impl_->ssl.get(), bio, bio);
  if (t->impl_->ctx->role() == certs::Role::Server) {
    SSL_set_accept_state(t->impl_->ssl.get());
  } else {
    SSL_set_connect_state(t->impl_->ssl.get());
  }
  return t;
}

TlsTransport::~TlsTransport() {
  if (impl_ && impl_->lend != nullptr) impl_->lend->t_ = nullptr;
  if (impl_) impl_->ssl.reset();  // the BIO (and its pointer to Impl) goes first
}

void TlsTransport::settle_lend() {
  Impl& s = *impl_;
  if (s.lend != nullptr) s.lend->t_ = nullptr;
  s.lend = nullptr;
  s.append_input(s.lent, s.lent_len);
  s.lent = nullptr;
  s.lent_len = 0;
}

void TlsTransport::feed(const char* data, size_t len) {
  // The connection bounds how much it feeds before the plaintext is consumed (backpressure
  // stops socket reads).
  settle_lend();
  impl_->append_input(data, len);
}

TlsTransport::Lend::Lend(TlsTransport& t, const char* data, size_t len) : t_(&t) {
  t.settle_lend();
  t.impl_->lent = data;
  t.impl_->lent_len = len;
  t.impl_->lend = this;
}

TlsTransport::Lend::~Lend() {
  if (t_ != nullptr) t_->settle_lend();
}

TlsTransport::BufferStats TlsTransport::buffer_stats() const {
  BufferStats b;
  b.input_buffered = impl_->in_len;
  b.input_capacity = impl_->in_cap;
  b.output_capacity = impl_->out.cap;
  for (const Chunk& c : impl_->more) b.output_capacity += c.cap;
  b.input_copied = impl_->input_copied;
  b.output_copied = impl_->output_copied;
  return b;
}

TlsTransport::Step TlsTransport::handshake() {
  if (handshake_done_) return Step::Done;
  clear_errors();
  int rc = SSL_do_handshake(impl_->ssl.get());
  if (rc == 1) {
    handshake_done_ = true;
    if (impl_->ctx->role() == certs::Role::Server) {
      // BoringSSL holds TLS 1.3 NewSessionTicket messages until the server's first write
      // (tls13_server.cc); a zero-byte write flushes them, so clients can resume even when the
      // app speaks second or never.
      clear_errors();
      SSL_write(impl_->ssl.get(), "", 0);
      clear_errors();
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
  clear_errors();
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
  // Every record of this write lands in one chunk, handed to the socket as is (take_output).
  impl_->out_hint = len + (len / kMaxPlainRecord + 1) * kRecordOverhead;
  while (len > 0) {
    clear_errors();
    // STYLE 5.3: after WANT_WRITE retry with the same length; our BIO's writes never block,
    // so every call either takes a full chunk or fails.
    const int chunk = static_cast<int>(len > (1u << 30) ? (1u << 30) : len);
    int rc = SSL_write(impl_->ssl.get(), data, chunk);
    if (rc <= 0) {
      impl_->out_hint = 0;
      failure_ = certs::classify_handshake_failure(impl_->ssl.get(), Side::Internal);
      failure_set_ = true;
      return false;
    }
    data += rc;
    len -= static_cast<size_t>(rc);
  }
  impl_->out_hint = 0;
  return true;
}

void TlsTransport::shutdown() {
  clear_errors();
  SSL_shutdown(impl_->ssl.get());
  clear_errors();
}

size_t TlsTransport::pending_output() const { return impl_->out_bytes; }

std::string TlsTransport::take_output() {
  std::string out;
  out.reserve(impl_->out_bytes);
  out.append(impl_->out.data.get() == nullptr ? "" : impl_->out.data.get(), impl_->out.len);
  for (const Chunk& c : impl_->more) out.append(c.data.get(), c.len);
  impl_->out = Chunk{};
  std::vector<Chunk>().swap(impl_->more);
  impl_->out_bytes = 0;
  return out;
}

size_t TlsTransport::take_output(std::unique_ptr<char[]>& out) {
  Impl& s = *impl_;
  const size_t n = s.out_bytes;
  if (n == 0) return 0;
  if (s.more.empty()) {
    out = std::move(s.out.data);  // the records were sealed into this chunk: no copy
  } else {
    out.reset(new char[n]);  // output outgrew its chunk: join once
    size_t at = 0;
    std::memcpy(out.get(), s.out.data.get(), s.out.len);
    at += s.out.len;
    for (const Chunk& c : s.more) {
      std::memcpy(out.get() + at, c.data.get(), c.len);
      at += c.len;
    }
    s.output_copied += n;
  }
  s.out = Chunk{};
  std::vector<Chunk>().swap(s.more);
  s.out_bytes = 0;
  return n;
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
