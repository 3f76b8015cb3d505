#include "tests/unit/certs/tls_harness.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>

#include <stdexcept>

#include "certs/libssl_patch.h"
#include "tests/support/support.h"
#include "tests/unit/certs/test_pki.h"

namespace fp::certs::testing {
namespace {

void set_timeouts(int fd) {
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

Outcome run_blocking_handshake(SSL* ssl, Side side) {
  Outcome o;
  ERR_clear_error();
  const int r = SSL_do_handshake(ssl);
  if (r == 1) {
    o.ok = true;
    o.info = describe_handshake(ssl);
    o.extms = SSL_get_extms_support(ssl) == 1;
    o.negotiated = check_negotiated(ssl, config::Profile::Strict);
  } else {
    o.error = classify_handshake_failure(ssl, side);
  }
  o.refusal = patch_get_refusal(ssl);
  return o;
}

}  // namespace

PairOutcome handshake_in_memory(SSL* client, SSL* server) {
  BIO* bc = nullptr;
  BIO* bs = nullptr;
  if (BIO_new_bio_pair(&bc, 0, &bs, 0) != 1) throw std::runtime_error("BIO_new_bio_pair");
  SSL_set_bio(client, bc, bc);  // one reference each, owned by the SSL from here on
  SSL_set_bio(server, bs, bs);

  PairOutcome out;
  struct Party {
    SSL* ssl;
    Side side;
    Outcome* o;
    bool settled = false;
  } parties[2] = {{client, Side::Upstream, &out.client}, {server, Side::Downstream, &out.server}};
  for (int round = 0; round < 64 && !(parties[0].settled && parties[1].settled); ++round) {
    for (Party& p : parties) {
      if (p.settled) continue;
      ERR_clear_error();
      const int r = SSL_do_handshake(p.ssl);
      if (r == 1) {
        p.settled = true;
        p.o->ok = true;
        p.o->info = describe_handshake(p.ssl);
        p.o->extms = SSL_get_extms_support(p.ssl) == 1;
        p.o->negotiated = check_negotiated(p.ssl, config::Profile::Strict);
      } else {
        const int e = SSL_get_error(p.ssl, r);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) continue;
        p.settled = true;
        p.o->error = classify_handshake_failure(p.ssl, p.side);  // drains this side's errors now
      }
      p.o->refusal = patch_get_refusal(p.ssl);
    }
  }
  return out;
}

bssl::UniquePtr<SSL_CTX> plain_ctx(const std::string& cert, const std::string& key) {
  bssl::UniquePtr<SSL_CTX> ctx(SSL_CTX_new(TLS_method()));
  if (!cert.empty() && (SSL_CTX_use_certificate_chain_file(ctx.get(), cert.c_str()) != 1 ||
                        SSL_CTX_use_PrivateKey_file(ctx.get(), key.c_str(), SSL_FILETYPE_PEM) != 1)) {
    throw std::runtime_error("plain_ctx: cannot load " + cert);
  }
  return ctx;
}

config::TlsConfig server_config(const std::string& leaf, bool require_client_cert) {
  config::TlsConfig c;
  c.cert = pki().path(leaf + ".pem");
  c.key = pki().path(leaf + ".key");
  c.ca = pki().ca;
  c.require_client_cert = require_client_cert;
  return c;
}

config::TlsConfig client_config(const std::string& leaf) {
  config::TlsConfig c;
  if (!leaf.empty()) {
    c.cert = pki().path(leaf + ".pem");
    c.key = pki().path(leaf + ".key");
  }
  c.ca = pki().ca;
  c.sni = "server.test";
  return c;
}

std::shared_ptr<const TlsContext> must_build(Role role, const config::TlsConfig& cfg) {
  auto r = build_context(role, role == Role::Server ? "test-listener" : "test-cluster", cfg);
  if (!r) throw std::runtime_error("build_context: " + r.error().message());
  return r.value();
}

LoopbackServer::LoopbackServer(std::shared_ptr<const TlsContext> tc, SSL_CTX* plain)
    : tc_(std::move(tc)), plain_(plain) {
  listen_fd_ = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (listen_fd_ < 0 || bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      listen(listen_fd_, 4) != 0 || getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    throw std::runtime_error("LoopbackServer: cannot listen");
  }
  port_ = ntohs(a.sin_port);
  thread_ = std::thread([this] {
    pollfd p{listen_fd_, POLLIN, 0};
    if (poll(&p, 1, 10000) != 1) {
      outcome_.error = make_error(Code::Internal, Side::Downstream, "no connection within 10 s");
      return;
    }
    const int fd = accept(listen_fd_, nullptr, nullptr);
    if (fd < 0) return;
    set_timeouts(fd);
    bssl::UniquePtr<SSL> ssl = tc_ ? tc_->new_ssl("") : bssl::UniquePtr<SSL>(SSL_new(plain_));
    SSL_set_fd(ssl.get(), fd);
    SSL_set_accept_state(ssl.get());
    outcome_ = run_blocking_handshake(ssl.get(), Side::Downstream);
    if (outcome_.ok) SSL_shutdown(ssl.get());
    close(fd);
  });
}

LoopbackServer::~LoopbackServer() {
  if (thread_.joinable()) thread_.join();
  if (listen_fd_ >= 0) close(listen_fd_);
}

Outcome LoopbackServer::finish() {
  if (thread_.joinable()) thread_.join();
  return outcome_;
}

Outcome connect_and_handshake(SSL* ssl, uint16_t port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  Outcome o;
  if (fd < 0 || connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    if (fd >= 0) close(fd);
    o.error = make_error(Code::UpstreamConnectFailed, Side::Upstream, "connect failed");
    return o;
  }
  set_timeouts(fd);
  SSL_set_fd(ssl, fd);
  o = run_blocking_handshake(ssl, Side::Upstream);
  if (o.ok) SSL_shutdown(ssl);
  close(fd);
  return o;
}

std::string noems_openssl_conf() {
  const std::string path = pki().path("noems.cnf");
  if (!fp::test::file_exists(path)) {
    fp::test::write_file(path,
                         "openssl_conf = openssl_init\n"
                         "[openssl_init]\n"
                         "ssl_conf = ssl_sect\n"
                         "[ssl_sect]\n"
                         "system_default = system_default_sect\n"
                         "[system_default_sect]\n"
                         "Options = -ExtendedMasterSecret\n");
  }
  return path;
}

}  // namespace fp::certs::testing
