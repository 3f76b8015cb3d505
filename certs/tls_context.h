#pragma once
// TlsContext: one SSL_CTX with the FIPS policy (FIPS-POLICY §8/§9), an identity and trust, built
// for the server role (a listener) or the client role (a cluster). Immutable once built; shared
// as std::shared_ptr<const TlsContext> so a rotation never frees a context under a live
// connection.

#include <openssl/ssl.h>

#include <memory>
#include <string>
#include <vector>

#include "certs/handshake_info.h"
#include "config/config.h"
#include "proxy/base/result.h"

namespace fp::certs {

enum class Role { Server, Client };

class TlsContext {
 public:
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;
  ~TlsContext();

  SSL_CTX* ctx() const { return ctx_.get(); }
  Role role() const { return role_; }
  const config::TlsConfig& config() const { return cfg_; }
  const std::string& name() const { return name_; }  // listener or cluster name

  // A new SSL for one connection, with our ex_data set. Client role: SNI and expected identity
  // set from `sni` (may be empty: no SNI).
  bssl::UniquePtr<SSL> new_ssl(const std::string& sni) const;

 private:
  friend Result<std::shared_ptr<const TlsContext>> build_context(Role, const std::string&,
                                                                 const config::TlsConfig&);
  TlsContext() = default;
  bssl::UniquePtr<SSL_CTX> ctx_;
  Role role_ = Role::Server;
  config::TlsConfig cfg_;
  std::string name_;
};

// Session resumption and ticket keys (FIPS-POLICY §8 "Session resumption and tickets"):
// - TLS 1.2 resumes only EMS sessions: the libssl patch (kPolicyRequireEms) makes
//   ssl_session_is_resumable() refuse a non-EMS session on the server and keeps the client from
//   offering one; a full handshake then needs EMS anyway.
// - Ticket keys are BoringSSL's built-in ones: RAND_bytes (module CTR-DRBG), AES-128-CBC +
//   HMAC-SHA-256, rotated every 48 h. They live in the SSL_CTX, so they are per TlsContext.
// - Reload: a reload builds NEW TlsContexts (build_context) for every listener whose TLS config
//   or profile changed; new connections use the new SSL_CTX, whose fresh ticket keys cannot
//   decrypt a ticket issued under the old policy, so such a ticket falls back to a full
//   handshake under the new policy. Contexts whose TLS block is unchanged may be kept (their
//   tickets stay valid: same policy). Nothing must copy ticket keys between contexts
//   (never SSL_CTX_set_tlsext_ticket_keys with the old keys). The post-handshake gate
//   (check_negotiated) re-checks resumed sessions against the *new* profile as a backstop.

// Builds a context: versions, the strict suites, P-256:P-384, the 8 sigalgs both ways, no early
// data, no False Start, the patch bits, CA trust, client-cert requirement (server), our verify
// callback (chain policy hook + allow-lists). Errors name the file: "PATH: reason".
Result<std::shared_ptr<const TlsContext>> build_context(Role role, const std::string& name,
                                                        const config::TlsConfig& cfg);

// After a handshake: what was negotiated, and who the peer is.
HandshakeInfo describe_handshake(const SSL* ssl);

// Why a handshake failed, from what our callbacks recorded, the patch's refusal and the error
// queue (which this drains). Returns a code and a short detail, e.g.
// {TlsChacha, "client offered only TLS_CHACHA20_POLY1305_SHA256"}.
Error classify_handshake_failure(const SSL* ssl, Side side);

// Post-handshake gate (a second check behind the library): version, cipher, group and sigalg
// re-checked against the policy table. Returns an error on any violation.
Result<void> check_negotiated(const SSL* ssl, config::Profile profile);

}  // namespace fp::certs
