#pragma once
// Real handshakes for the certs tests: in memory over a BIO pair, or over loopback TCP against
// a real `openssl` (Debian OpenSSL 3) peer. No mocks: both ends are real TLS stacks.

#include <openssl/ssl.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "certs/handshake_info.h"
#include "certs/tls_context.h"
#include "config/config.h"
#include "proxy/base/result.h"

namespace fp::certs::testing {

struct Outcome {
  bool ok = false;
  std::optional<Error> error;  // classify_handshake_failure, captured right at the failure
  int refusal = 0;             // patch_get_refusal
  HandshakeInfo info;          // describe_handshake when ok
  bool extms = false;          // SSL_get_extms_support when ok
  Result<void> negotiated = Result<void>();  // check_negotiated(Strict) when ok
};

struct PairOutcome {
  Outcome client, server;
};

// Drives SSL_do_handshake on both sides over a fresh BIO pair, at most 64 rounds. Takes the SSLs
// in connect/accept state.
PairOutcome handshake_in_memory(SSL* client, SSL* server);

// A plain BoringSSL context (no policy bits, no verification): the positive control.
bssl::UniquePtr<SSL_CTX> plain_ctx(const std::string& cert = "", const std::string& key = "");

// TlsConfig for our server (mTLS off unless asked) and client roles, from the test PKI.
config::TlsConfig server_config(const std::string& leaf = "server", bool require_client_cert = false);
config::TlsConfig client_config(const std::string& leaf = "");

std::shared_ptr<const TlsContext> must_build(Role role, const config::TlsConfig& cfg);

// One-shot TLS server on 127.0.0.1:<ephemeral> in a thread: accepts one connection (10 s bound),
// runs the handshake on a blocking socket with 10 s timeouts, records the outcome and closes.
class LoopbackServer {
 public:
  // Exactly one of `tc` / `plain` is used; `tc` wins when set.
  LoopbackServer(std::shared_ptr<const TlsContext> tc, SSL_CTX* plain);
  ~LoopbackServer();
  uint16_t port() const { return port_; }
  // Joins the thread (bounded by the thread's own timeouts) and returns the outcome.
  Outcome finish();

 private:
  std::shared_ptr<const TlsContext> tc_;
  SSL_CTX* plain_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::thread thread_;
  Outcome outcome_;
};

// Connects `ssl` (client state) to 127.0.0.1:port and handshakes (10 s bound).
Outcome connect_and_handshake(SSL* ssl, uint16_t port);

// OPENSSL_CONF file turning EMS off in OpenSSL 3 (FIPS-POLICY §11 T11).
std::string noems_openssl_conf();

}  // namespace fp::certs::testing
