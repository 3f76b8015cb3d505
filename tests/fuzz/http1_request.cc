// Fuzz target: the HTTP/1 request parser (filters/http1/parser.h: llhttp + our strictness
// layer), fed in chunks whose sizes derive from the input, with three oracles:
//
// 1. Split independence: the same bytes fed in one piece and in random pieces give the same
//    events (heads, forwarded body bytes, completion, keep-alive, error reason).
// 2. Differential (http1_oracle.h, a simple whole-buffer strict parser):
//    * ENFORCED, soundness: every head we hand out and every message we complete is one the
//      oracle also accepts, with the same method, target, version, header count, framing,
//      keep-alive and exactly the same forwarded body bytes; whenever the oracle rejects a
//      message, we reject it too (no Head for a rejected head, no MessageComplete for a
//      rejected body).
//    * ENFORCED, completeness modulo limits and llhttp: when the oracle accepts everything, we
//      accept everything, unless our reason is a size limit (the oracle has none) or
//      parser_rejected (llhttp's own stricter rules, e.g. its fixed method list).
// 3. Re-serialisation: each accepted head, after the forwarding filters (XFF/XFP/XFH, XFCC)
//    edit it, serializes to a head the oracle parses to the same method/target/version and
//    header count.
// Plus: the parser's retained memory stays bounded by the limits, and it makes progress.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "certs/handshake_info.h"
#include "filters/http1/forwarded.h"
#include "filters/http1/parser.h"
#include "filters/http1/xfcc.h"
#include "tests/fuzz/fuzz_common.h"
#include "tests/fuzz/http1_oracle.h"

namespace {

using namespace fp::filters::http1;
namespace oracle = fp::fuzz::oracle;

Limits fuzz_limits() {
  Limits l;
  l.max_header_bytes = 4096;
  l.max_header_count = 32;
  l.max_uri_bytes = 1024;
  l.max_body_bytes = 1 << 20;
  l.max_chunk_ext_bytes = 256;
  l.max_trailer_bytes = 1024;
  return l;
}

struct OurMessage {
  std::string method, target;
  int minor = 0;
  size_t header_count = 0;
  Framing framing = Framing::None;
  uint64_t content_length = 0;
  bool head_keep_alive = false;
  std::string body;  // Body ranges + MessageComplete tail
  bool complete = false;
  bool keep_alive = false;
};

// Bodies must be equal, except for a message cut by an error: how much of it was handed out
// before the error depends on the read sizes, so one must be a prefix of the other.
bool same_body(const OurMessage& a, const OurMessage& b) {
  if (a.complete || b.complete) return a.body == b.body;
  const std::string& shorter = a.body.size() < b.body.size() ? a.body : b.body;
  const std::string& longer = a.body.size() < b.body.size() ? b.body : a.body;
  return longer.compare(0, shorter.size(), shorter) == 0;
}

struct Run {
  std::vector<OurMessage> messages;
  bool error = false;
  Reason reason = Reason::ParserRejected;
  bool after_head = false;
  int status = 0;
  bool discarded = false;

  bool operator==(const Run& o) const {
    if (messages.size() != o.messages.size() || error != o.error || discarded != o.discarded) return false;
    // Where llhttp is stricter than our layer (e.g. obs-text in a chunk extension), which of the
    // two sees the bad byte first depends on the read sizes: parser_rejected vs our token.
    const bool llhttp_race = reason == Reason::ParserRejected || o.reason == Reason::ParserRejected;
    if (error && !llhttp_race && (reason != o.reason || after_head != o.after_head || status != o.status)) return false;
    for (size_t i = 0; i < messages.size(); ++i) {
      const OurMessage &a = messages[i], &b = o.messages[i];
      if (a.method != b.method || a.target != b.target || a.minor != b.minor || a.header_count != b.header_count ||
          a.framing != b.framing || a.content_length != b.content_length || !same_body(a, b) ||
          a.complete != b.complete || a.keep_alive != b.keep_alive || a.head_keep_alive != b.head_keep_alive) {
        return false;
      }
    }
    return true;
  }
};

void check_reserialized(RequestHead head, size_t index) {
  // What the proxy forwards: the head after the forwarding filters.
  ForwardedConfig fc;
  fc.trusted_hops = static_cast<uint32_t>(index % 3);
  fc.set_host = index % 2 == 0;
  apply_forwarded(head.headers, fc, "192.0.2.7", true);
  fp::certs::PeerIdentity peer;
  peer.present = true;
  peer.subject = "CN=client,O=Example\\, Inc.";
  peer.sha256 = std::string(64, 'a');
  peer.uris = {"spiffe://example.org/ns/default/sa/client"};
  peer.dns = {"client.example.org"};
  HeadVerdict v = apply_xfcc(head.headers, &peer, XfccConfig{});
  (void)v;
  const std::string wire = head.serialize();
  FUZZ_CHECK(wire.size() >= 4 && wire.substr(wire.size() - 4) == "\r\n\r\n", "serialized head must end in a blank line");
  oracle::Head h;
  std::string why;
  FUZZ_CHECK(oracle::parse_head(std::string_view(wire).substr(0, wire.size() - 2), h, why),
             "re-serialized head rejected by the oracle (%s): %s", why.c_str(), wire.c_str());
  FUZZ_CHECK(h.method == head.method && h.target == head.target && h.minor == head.version_minor &&
                 h.header_count == head.headers.size(),
             "re-serialized head differs: %s", wire.c_str());
}

// Feeds `data` in the given pieces; returns what happened.
Run run(std::string_view data, bool split, bool check_reserialize) {
  RequestParser parser(fuzz_limits());
  const Limits lim = fuzz_limits();
  Run r;
  fp::fuzz::Splitter splitter(data);
  OurMessage* cur = nullptr;
  auto handle = [&](const Event& ev, std::string_view in) -> bool {  // false: stop feeding
    switch (ev.kind) {
      case EventKind::Head: {
        const RequestHead& h = parser.request();
        r.messages.push_back(OurMessage{h.method, h.target, h.version_minor, h.headers.size(), h.framing,
                                        h.content_length, h.keep_alive, {}, false, false});
        cur = &r.messages.back();
        if (check_reserialize) check_reserialized(h, r.messages.size() - 1);
        return true;
      }
      case EventKind::Body:
        FUZZ_CHECK(cur != nullptr && !cur->complete, "Body without an open message");
        FUZZ_CHECK(ev.length > 0 && ev.offset + ev.length <= in.size(), "Body range outside the input");
        cur->body.append(in.substr(ev.offset, ev.length));
        return true;
      case EventKind::MessageComplete:
        FUZZ_CHECK(cur != nullptr && !cur->complete, "MessageComplete without an open message");
        cur->body.append(ev.tail);
        cur->complete = true;
        cur->keep_alive = ev.keep_alive;
        return true;
      case EventKind::Error:
        r.error = true;
        r.reason = parser.error().reason;
        r.after_head = parser.error().after_head;
        r.status = parser.error().status;
        FUZZ_CHECK(!parser.error().upstream, "request-side error marked upstream");
        return false;
      case EventKind::Discard:
        r.discarded = true;
        return false;
      case EventKind::NeedMore:
        return false;
    }
    return false;
  };
  std::string_view rest = data;
  bool stopped = false;
  while (!rest.empty() && !stopped) {
    const size_t n = split ? splitter.next(rest.size()) : rest.size();
    std::string_view in = rest.substr(0, n);
    rest.remove_prefix(n);
    for (size_t guard = 0;; ++guard) {
      FUZZ_CHECK(guard <= 4 * n + 16, "no progress feeding %zu bytes", n);
      Event ev = parser.next(in);
      FUZZ_CHECK(ev.consumed <= in.size(), "consumed more than given");
      if (ev.kind == EventKind::NeedMore) FUZZ_CHECK(ev.consumed == in.size(), "NeedMore left bytes unconsumed");
      const bool more = handle(ev, in);
      FUZZ_CHECK(parser.retained_bytes() <= 4 * lim.max_header_bytes + 2 * lim.max_trailer_bytes + 64 * 1024,
                 "parser retains %zu bytes", parser.retained_bytes());
      in.remove_prefix(ev.consumed);
      if (!more) {
        if (ev.kind != EventKind::NeedMore) stopped = true;
        break;
      }
    }
  }
  if (!stopped) {
    for (int k = 0; k < 4; ++k) {
      Event ev = parser.finish();
      if (!handle(ev, {})) break;
    }
  }
  // Errors are sticky.
  if (r.error) FUZZ_CHECK(parser.next("GET / HTTP/1.1\r\n").kind == EventKind::Error, "error not sticky");
  return r;
}

bool limit_or_llhttp(Reason r) {
  switch (r) {
    case Reason::ParserRejected:
    case Reason::UriTooLong:
    case Reason::HeaderTooLarge:
    case Reason::TooManyHeaders:
    case Reason::BodyTooLarge:
    case Reason::ChunkExtTooLong:
    case Reason::TrailerTooLarge:
      return true;
    default:
      return false;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 64 * 1024) return 0;
  const std::string_view in(reinterpret_cast<const char*>(data), size);

  const Run whole = run(in, false, true);
  const Run pieces = run(in, true, false);
  FUZZ_CHECK(whole == pieces, "split changed the result (whole: %zu msgs error=%d %s; pieces: %zu msgs error=%d %s)",
             whole.messages.size(), whole.error, std::string(reason_token(whole.reason)).c_str(),
             pieces.messages.size(), pieces.error, std::string(reason_token(pieces.reason)).c_str());

  const oracle::Result o = oracle::parse_requests(in);
  // Soundness: everything we handed out, the oracle accepts identically.
  for (size_t i = 0; i < whole.messages.size(); ++i) {
    const OurMessage& m = whole.messages[i];
    FUZZ_CHECK(i < o.messages.size(), "we accepted head %zu, the oracle did not (%s)", i, o.why.c_str());
    const oracle::Message& s = o.messages[i];
    FUZZ_CHECK(m.method == s.head.method && m.target == s.head.target && m.minor == s.head.minor &&
                   m.header_count == s.head.header_count && m.head_keep_alive == s.head.keep_alive,
               "head %zu differs from the oracle: %s %s 1.%d %zu headers ka=%d vs %s %s 1.%d %zu headers ka=%d", i,
               m.method.c_str(), m.target.c_str(), m.minor, m.header_count, m.head_keep_alive,
               s.head.method.c_str(), s.head.target.c_str(), s.head.minor, s.head.header_count, s.head.keep_alive);
    const Framing want = s.head.chunked ? Framing::Chunked : s.head.has_cl ? Framing::ContentLength : Framing::None;
    FUZZ_CHECK(m.framing == want && (want != Framing::ContentLength || m.content_length == s.head.content_length),
               "framing of message %zu differs from the oracle", i);
    if (m.complete) {
      FUZZ_CHECK(s.complete, "we completed message %zu, the oracle rejects its body (%s)", i, o.why.c_str());
      FUZZ_CHECK(m.body == s.forwarded, "message %zu: forwarded body differs (%zu vs %zu bytes)", i, m.body.size(),
                 s.forwarded.size());
      FUZZ_CHECK(m.keep_alive == s.head.keep_alive, "keep-alive of message %zu differs", i);
    }
  }
  size_t ours_complete = 0;
  for (const OurMessage& m : whole.messages) ours_complete += m.complete;
  size_t oracle_complete = 0;
  for (const oracle::Message& m : o.messages) oracle_complete += m.complete;
  if (o.outcome == oracle::Outcome::Reject) {
    FUZZ_CHECK(whole.error, "the oracle rejects message %zu (%s), we did not reject", o.messages.size(), o.why.c_str());
    FUZZ_CHECK(ours_complete <= oracle_complete, "we completed a message the oracle rejects");
    if (o.head_rejected) FUZZ_CHECK(whole.messages.size() <= o.messages.size(), "we accepted a head the oracle rejects");
  }
  // Completeness modulo limits and llhttp.
  if (o.outcome == oracle::Outcome::Done) {
    if (!whole.error || !limit_or_llhttp(whole.reason)) {
      FUZZ_CHECK(!whole.error, "the oracle accepts all %zu messages, we fail with %s", oracle_complete,
                 std::string(reason_token(whole.reason)).c_str());
      FUZZ_CHECK(ours_complete == oracle_complete, "message count: ours %zu, oracle %zu", ours_complete,
                 oracle_complete);
    }
  }
  if (o.outcome == oracle::Outcome::Incomplete && !whole.error) {
    FUZZ_CHECK(false, "the oracle sees an incomplete message, we did not report truncation");
  }
  return 0;
}
