#pragma once
// Errors with stable tokens (HAProxy CO_ER_*): every failure the proxy can report has a code
// whose token() is used in logs, metrics labels and the access log, and whose describe() is a
// sentence for humans. Tokens never change once shipped.

#include <string>
#include <string_view>

namespace fp::base {

#define FP_ERROR_CODES(X)                                                                     \
  X(Ok, "ok", "no error")                                                                     \
  X(Usage, "usage", "bad command-line usage")                                                 \
  X(ConfigInvalid, "config_invalid", "the configuration is invalid")                          \
  X(CertInvalid, "cert_invalid", "a certificate or key failed to load or violates policy")    \
  X(FipsCheckFailed, "fips_check_failed", "a FIPS startup self-check failed")                 \
  X(TlsSetupFailed, "tls_setup_failed", "a TLS context could not be built")                   \
  X(TlsHandshakeFailed, "tls_handshake_failed", "the TLS handshake failed")                   \
  X(TlsPolicyViolation, "tls_policy_violation", "the peer offered only non-approved TLS parameters") \
  X(TlsNoEms, "tls_no_ems", "TLS 1.2 without Extended Master Secret is refused")              \
  X(TlsChacha, "tls13_chacha_refused", "TLS 1.3 ChaCha20-Poly1305 is not FIPS-approved")      \
  X(TlsProtocolVersion, "tls_protocol_version", "the peer offered no TLS 1.2/1.3")            \
  X(TlsAlertReceived, "tls_alert_received", "the peer sent a fatal TLS alert")                \
  X(PeerCertMissing, "peer_cert_missing", "the peer sent no certificate")                     \
  X(PeerCertUntrusted, "peer_cert_untrusted", "the peer certificate does not chain to a trusted CA") \
  X(PeerCertExpired, "peer_cert_expired", "the peer certificate is expired or not yet valid") \
  X(PeerCertRevoked, "peer_cert_revoked", "a certificate in the peer chain is revoked by a configured CRL") \
  X(PeerCertPolicy, "peer_cert_policy", "the peer certificate chain violates the FIPS policy") \
  X(PeerIdentityDenied, "peer_identity_denied", "the peer identity is not on the allow-list")  \
  X(HandshakeTimeout, "handshake_timeout", "the TLS handshake did not finish in time")        \
  X(IdleTimeout, "idle_timeout", "the connection was idle too long")                          \
  X(RequestHeaderTimeout, "request_header_timeout", "the HTTP/1 request head did not arrive in time") \
  X(ConnectTimeout, "upstream_connect_timeout", "the upstream connect did not finish in time") \
  X(UpstreamConnectRefused, "upstream_connect_refused", "the upstream refused the connection") \
  X(UpstreamConnectFailed, "upstream_connect_failed", "the upstream connect failed")          \
  X(UpstreamReset, "upstream_reset", "the upstream connection was reset")                     \
  X(NoHealthyUpstream, "no_healthy_upstream", "no healthy endpoint in the cluster")            \
  X(OriginalDstLoop, "original_dst_loop", "the connection was not redirected: its original destination is the proxy's own listener (forwarding would loop)") \
  X(OriginalDstUnavailable, "original_dst_unavailable", "the original destination of the connection could not be read (SO_ORIGINAL_DST)") \
  X(EgressDenied, "egress_denied", "the egress request names a destination that is not allowed") \
  X(Http1BadRequest, "http1_bad_request", "the HTTP/1 request was refused (see detail)")      \
  X(Http1BadResponse, "http1_bad_response", "the upstream's HTTP/1 response was invalid")     \
  X(DownstreamReset, "downstream_reset", "the downstream connection was reset")               \
  X(ConnectionLimit, "connection_limit", "the listener is at its connection limit")           \
  X(Draining, "draining", "the proxy is draining")                                            \
  X(DrainTimeout, "drain_timeout", "the drain deadline passed")                               \
  X(Io, "io_error", "an I/O error occurred")                                                  \
  X(Internal, "internal_error", "an internal error occurred")                                 \
  X(Completed, "completed", "both directions finished cleanly")

enum class Code {
#define FP_X(name, token, sentence) name,
  FP_ERROR_CODES(FP_X)
#undef FP_X
};

// Which side of the proxy a failure belongs to (Pingora's ErrorSource).
enum class Side { Downstream, Upstream, Internal };

std::string_view token(Code code) noexcept;
std::string_view describe(Code code) noexcept;
std::string_view side_name(Side side) noexcept;

struct Error {
  Code code = Code::Internal;
  Side side = Side::Internal;
  std::string detail;

  // "token: detail" (or the sentence when there is no detail).
  std::string message() const;
};

}  // namespace fp::base
