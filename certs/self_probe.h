#pragma once
// Startup policy self-probe (FIPS-POLICY §10 check 9): handshakes over in-memory BIOs against a
// built TlsContext, proving that the library, our knobs and the libssl patch still refuse what
// the policy forbids and accept an approved offer. Nothing touches the network.
//
// Server contexts (listeners): a BoringSSL client makes each offer; offers BoringSSL cannot be
// told to make (TLS 1.3 with only ChaCha20, TLS 1.2 without EMS) are made by rewriting its
// ClientHello before our server reads it. The server's answer is judged on the wire at the
// point where it has chosen the parameters (its ServerHello, or the alert it sent instead), so
// a listener that requires a client certificate from its own CA needs no probe client cert.
//   tls13-chacha20-only, x25519-only, tls1.1, sha1-sigalgs, tls12-no-ems: must be refused;
//   approved-tls13 / approved-tls12 (each when the profile allows the version): must get a
//   ServerHello with an allowed version, suite and group (and EMS in TLS 1.2).
// Client contexts (clusters): our client handshakes against in-memory plain BoringSSL servers
// that present a throwaway ECDSA P-256 self-signed certificate (made once per process); the
// probe connection accepts exactly that certificate instead of running the chain verification.
//   approved-server: must complete, pass check_negotiated and use AES-GCM;
//   chacha-offer: our ClientHello must not offer TLS_CHACHA20_POLY1305_SHA256;
//   chacha-selected, tls12-no-ems (the server's ServerHello rewritten), x25519-only-server,
//   tls1.1-server, sha1-server: must be refused.
//
// Safe to call from any thread, any number of times (the admin endpoint may run it
// periodically); takes a few milliseconds per context.

#include <string>
#include <vector>

#include "certs/tls_context.h"
#include "proxy/base/result.h"

namespace fp::certs {

struct ProbeResult {
  std::string probe;   // "tls13-chacha20-only", ...
  bool passed = false;
  std::string what;    // what happened, e.g. "refused: alert 40 (handshake_failure)"
};

// Every probe for this context, in order (none skipped on failure).
std::vector<ProbeResult> run_self_probes(const TlsContext& tc);

// OK when every probe passed. Otherwise Code::TlsSetupFailed with detail
// "<context>: <probe>: <what happened>" for the first failing probe, where <context> is
// "listener NAME" or "cluster NAME". Callers print
// "fipsproxy: policy self-probe failed: " + detail and exit 3 (kExitFips).
Result<void> self_probe(const TlsContext& tc);

// "listener NAME" / "cluster NAME".
std::string probe_context_name(const TlsContext& tc);

}  // namespace fp::certs
