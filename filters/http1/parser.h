#pragma once
// Incremental HTTP/1.1 parsing for http1 listeners: llhttp (Debian 8.1.0, no lenient flags) run
// in lockstep with our own strictness layer, which is stricter than llhttp and decides first.
//
// The caller feeds whatever bytes it has; each next() call returns ONE event and how many bytes
// of the given buffer it consumed:
//
//   std::string_view in = read_buffer;
//   for (;;) {
//     Event ev = parser.next(in);
//     switch (ev.kind) {
//       case EventKind::Head:            run filters on parser.request(); write the head; break;
//       case EventKind::Body:            forward in.substr(ev.offset, ev.length) untouched; break;
//       case EventKind::MessageComplete: forward ev.tail; ev.keep_alive says if more may follow;
//                                        break;
//       case EventKind::NeedMore:        read more (everything given was consumed); goto read;
//       case EventKind::Error:           respond ev.error.status, close (see below); goto close;
//       case EventKind::Discard:         bytes after a non-keep-alive message: drop them; ...
//     }
//     in.remove_prefix(ev.consumed);
//   }
//
// * Heads are copied into the parser (bounded by Limits); nothing of a head is forwarded before
//   Head is returned, so every head-phase Error means "zero bytes reached the upstream".
// * Bodies are never copied: Body ranges point into the caller's buffer and include chunked
//   framing (size lines, extensions, CRLFs) exactly as received. Chunked trailers are validated
//   and DROPPED (never merged into the head, never forwarded): the range stops after the
//   last-chunk line ("0\r\n") and MessageComplete carries tail = "\r\n", which ends the chunked
//   body for the upstream. Without trailers the bytes forwarded are exactly the bytes received.
// * An Error after a Head (a bad chunk, a body over the limit, EOF mid-body) means the upstream
//   saw part of a message: the caller must close that upstream connection, never reuse it.
// * Errors are sticky; a parser that returned Error returns it again.
// * CPU and memory are linear in the input: each byte is examined a bounded number of times,
//   the head buffer is capped by Limits, chunk data is skipped in bulk without allocation.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "filters/http1/head.h"

namespace fp::filters::http1 {

// Configurable limits (defaults follow Envoy / nginx orders of magnitude).
struct Limits {
  size_t max_header_bytes = 60 * 1024;       // request/status line + fields + CRLFs  → 431
  size_t max_header_count = 100;             // field lines                          → 431
  size_t max_uri_bytes = 8 * 1024;           // request-target                       → 414
  uint64_t max_body_bytes = 64ull << 20;     // CL (decided before reading) or chunk data → 413
  size_t max_chunk_ext_bytes = 4 * 1024;     // one chunk line's extensions          → 400
  size_t max_trailer_bytes = 16 * 1024;      // trailer section (dropped)            → 400
  size_t max_leading_empty_lines = 4;        // CRLFs tolerated before a request-line (RFC 9112 §2.2)
};

// Stable reason tokens (metric label http1_parse_error{reason=...}, access log, tests).
// Columns: enum, request-side token, default HTTP status for the client.
// Upstream (response-side) errors use the same enum, the token prefixed "upstream_", status 502,
// and always mean "do not reuse this upstream connection".
#define FP_HTTP1_REASONS(X)                                                                 \
  X(BareCr, "bare_cr", 400)                       /* CR not followed by LF in a head */      \
  X(BareLf, "bare_lf", 400)                       /* LF not preceded by CR in a head */      \
  X(ObsFold, "obs_fold", 400)                     /* field line starting with SP/HTAB */     \
  X(BadRequestLine, "bad_request_line", 400)                                                 \
  X(Http09, "http09", 400)                        /* "GET /" with no version */              \
  X(BadMethod, "bad_method", 400)                                                            \
  X(BadTarget, "bad_target", 400)                                                            \
  X(FragmentInTarget, "fragment_in_target", 400)  /* '#' in the request-target */            \
  X(BadVersion, "bad_version", 400)               /* "HTTP/1.01", "http/1.1", ... */         \
  X(UnsupportedVersion, "unsupported_version", 505) /* HTTP/0.9, HTTP/2.0, ... */            \
  X(BadStatusLine, "bad_status_line", 400)                                                   \
  X(EmptyHeaderName, "empty_header_name", 400)                                               \
  X(BadHeaderName, "bad_header_name", 400)        /* non-token character in a name */        \
  X(SpaceBeforeColon, "space_before_colon", 400)                                             \
  X(MissingColon, "missing_colon", 400)                                                      \
  X(BadHeaderValue, "bad_header_value", 400)      /* NUL/CTL/DEL in a value */               \
  X(ClTe, "cl_te", 400)                           /* Content-Length with Transfer-Encoding */\
  X(RepeatedContentLength, "repeated_content_length", 400)                                   \
  X(BadContentLength, "bad_content_length", 400)  /* signed/spaced/empty/list/>15 digits */  \
  X(RepeatedTransferEncoding, "repeated_transfer_encoding", 400)                             \
  X(BadTransferEncoding, "bad_transfer_encoding", 400) /* anything but one "chunked" */      \
  X(TeHttp10, "te_http10", 400)                   /* Transfer-Encoding on HTTP/1.0 */        \
  X(MissingHost, "missing_host", 400)                                                        \
  X(RepeatedHost, "repeated_host", 400)                                                      \
  X(BadHost, "bad_host", 400)                                                                \
  X(HostMismatch, "host_mismatch", 400)           /* absolute-form authority != Host */      \
  X(ConnectRefused, "connect_refused", 501)       /* CONNECT: never a tunnel */              \
  X(UpgradeRefused, "upgrade_refused", 501)       /* Upgrade (websocket, ...) */             \
  X(H2cRefused, "h2c_refused", 501)               /* Upgrade: h2c / HTTP2-Settings */        \
  X(UriTooLong, "uri_too_long", 414)                                                         \
  X(HeaderTooLarge, "header_too_large", 431)      /* head over max_header_bytes */           \
  X(TooManyHeaders, "too_many_headers", 431)                                                 \
  X(BodyTooLarge, "body_too_large", 413)                                                     \
  X(BadChunkSize, "bad_chunk_size", 400)          /* 17 hex digits, "0x1", "1 ", empty */    \
  X(BadChunkExt, "bad_chunk_ext", 400)                                                       \
  X(ChunkExtTooLong, "chunk_ext_too_long", 400)                                              \
  X(ChunkMissingCrlf, "chunk_missing_crlf", 400)  /* chunk data not followed by CRLF */      \
  X(BadTrailer, "bad_trailer", 400)               /* malformed trailer field line */         \
  X(TrailerTooLarge, "trailer_too_large", 400)                                               \
  X(Truncated, "truncated", 400)                  /* EOF inside a message */                 \
  X(ParserRejected, "parser_rejected", 400)       /* llhttp refused what we accepted */      \
  X(ParserDesync, "parser_desync", 400)           /* llhttp and our layer disagree */        \
  X(UnexpectedUpgrade, "unexpected_101", 400)     /* response only: 101 we never asked for */\
  X(UnsolicitedResponse, "unsolicited_response", 400) /* response bytes with no request */

enum class Reason {
#define FP_X(name, token, status) name,
  FP_HTTP1_REASONS(FP_X)
#undef FP_X
};

std::string_view reason_token(Reason r, bool upstream = false) noexcept;

struct ParseError {
  Reason reason = Reason::ParserRejected;
  int status = 400;          // what to answer the client (502 for any upstream error)
  bool upstream = false;     // response-side error: never reuse that upstream connection
  bool after_head = false;   // part of the message was already handed out for forwarding
  std::string detail;        // human detail (never needed for decisions)
  std::string_view token() const noexcept { return reason_token(reason, upstream); }
};

enum class EventKind { NeedMore, Head, Body, MessageComplete, Error, Discard };
std::string_view event_name(EventKind k) noexcept;

struct Event {
  EventKind kind = EventKind::NeedMore;
  size_t consumed = 0;  // bytes of the given buffer consumed by this call
  size_t offset = 0;    // Body: range of the given buffer to forward untouched
  size_t length = 0;
  std::string_view tail;   // MessageComplete: bytes to forward after the body ("\r\n" or "")
  bool keep_alive = false; // MessageComplete: another message may follow on this connection
};

// Counters that let tests prove linear work without timing anything.
struct ParserStats {
  uint64_t bytes_scanned = 0;      // bytes examined by the strictness layer
  uint64_t llhttp_bytes = 0;       // bytes fed to llhttp
  uint64_t llhttp_callbacks = 0;   // llhttp callbacks invoked
  uint64_t messages = 0;           // messages completed
  uint64_t chunks = 0;             // chunk-size lines accepted
};

namespace detail {
class Core;
}

class RequestParser {
 public:
  explicit RequestParser(const Limits& limits = Limits{});
  ~RequestParser();
  RequestParser(const RequestParser&) = delete;
  RequestParser& operator=(const RequestParser&) = delete;

  Event next(std::string_view in) noexcept;
  // The downstream closed its write side: Error(Truncated) if inside a message, else NeedMore.
  Event finish() noexcept;

  // Valid from the Head event until the next message's Head; filters may edit it.
  RequestHead& request() noexcept;
  const ParseError& error() const noexcept;
  const ParserStats& stats() const noexcept;
  // Bytes the parser holds (head buffer, trailer line): proves bounded memory.
  size_t retained_bytes() const noexcept;

 private:
  std::unique_ptr<detail::Core> core_;
};

class ResponseParser {
 public:
  explicit ResponseParser(const Limits& limits = Limits{});
  ~ResponseParser();
  ResponseParser(const ResponseParser&) = delete;
  ResponseParser& operator=(const ResponseParser&) = delete;

  // Call once per request sent upstream, before feeding its response: the method decides
  // HEAD semantics (and CONNECT is never sent). Bytes fed with no request outstanding are an
  // error (UnsolicitedResponse: stray bytes never reach another client).
  void expect_response(std::string_view request_method) noexcept;

  Event next(std::string_view in) noexcept;
  // The upstream closed: completes a close-delimited body, else Error(Truncated) mid-message.
  Event finish() noexcept;

  ResponseHead& response() noexcept;
  const ParseError& error() const noexcept;
  const ParserStats& stats() const noexcept;
  size_t retained_bytes() const noexcept;
  // After MessageComplete of a final response: may this upstream connection be reused?
  bool reusable() const noexcept;
  // Between responses, none outstanding: it may serve the next upstream connection as a new
  // parser would (llhttp is at a message boundary; only buffers and counters carry over).
  bool idle() const noexcept;

 private:
  std::unique_ptr<detail::Core> core_;
};

}  // namespace fp::filters::http1
