// Fuzz target: the HTTP/1 upstream-response parser (ResponseParser): response splitting, CL/TE,
// 1xx, HEAD / 204 / 304 with a body, close-delimited bodies, stray bytes after the response.
//
// Input: the first byte picks 1 to 4 outstanding requests (bit k set: request k was HEAD, else
// GET); the rest is what the upstream sends, fed in input-derived chunks. Invariants:
// * split independence (one piece vs random pieces: same events, bytes, reason, reusability);
// * every error is an upstream error answered 502 and the connection is never reusable after it;
// * no more final responses complete than requests were sent (no response splitting), and
//   bytes beyond them are an error or discarded, never handed out as another response's body;
// * HEAD / 1xx / 204 / 304 carry no body; a Content-Length body forwards exactly that many
//   bytes; a chunked body forwarded ends with the last-chunk line and "\r\n";
// * progress and bounded retained memory.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "filters/http1/parser.h"
#include "tests/fuzz/fuzz_common.h"

namespace {

using namespace fp::filters::http1;

struct Msg {
  int status = 0;
  Framing framing = Framing::None;
  uint64_t content_length = 0;
  bool informational = false;
  std::string body;
  bool complete = false;
  bool keep_alive = false;
  // A body cut by an error may be handed out further with other read sizes: prefix rule.
  bool operator==(const Msg& o) const {
    if (status != o.status || framing != o.framing || content_length != o.content_length ||
        informational != o.informational || complete != o.complete || keep_alive != o.keep_alive) {
      return false;
    }
    if (complete) return body == o.body;
    const std::string& s = body.size() < o.body.size() ? body : o.body;
    const std::string& l = body.size() < o.body.size() ? o.body : body;
    return l.compare(0, s.size(), s) == 0;
  }
};

struct Run {
  std::vector<Msg> msgs;
  bool error = false;
  Reason reason = Reason::ParserRejected;
  bool after_head = false;
  bool discarded = false;
  bool reusable = false;
  bool operator==(const Run& o) const {
    // parser_rejected vs our own token may depend on read sizes (see http1_request.cc).
    const bool llhttp_race = reason == Reason::ParserRejected || o.reason == Reason::ParserRejected;
    return msgs == o.msgs && error == o.error && discarded == o.discarded && reusable == o.reusable &&
           (!error || llhttp_race || (reason == o.reason && after_head == o.after_head));
  }
};

Run run(std::string_view data, const std::vector<bool>& heads, bool split) {
  Limits lim;
  lim.max_header_bytes = 4096;
  lim.max_header_count = 32;
  lim.max_trailer_bytes = 1024;
  lim.max_chunk_ext_bytes = 256;
  ResponseParser p(lim);
  for (bool h : heads) p.expect_response(h ? "HEAD" : "GET");
  Run r;
  size_t finals = 0;
  fp::fuzz::Splitter splitter(data);
  auto handle = [&](const Event& ev, std::string_view in) -> bool {
    switch (ev.kind) {
      case EventKind::Head: {
        const ResponseHead& h = p.response();
        FUZZ_CHECK(h.status >= 100 && h.status <= 599 && h.status != 101, "status %d handed out", h.status);
        FUZZ_CHECK(finals < heads.size(), "a response head beyond the %zu requests sent", heads.size());
        const bool no_body = heads[finals] || h.status < 200 || h.status == 204 || h.status == 304;
        if (no_body) FUZZ_CHECK(h.framing == Framing::None, "HEAD/1xx/204/304 response with body framing");
        r.msgs.push_back(Msg{h.status, h.framing, h.content_length, h.informational, {}, false, false});
        return true;
      }
      case EventKind::Body:
        FUZZ_CHECK(!r.msgs.empty() && !r.msgs.back().complete, "Body without an open response");
        FUZZ_CHECK(r.msgs.back().framing != Framing::None, "Body for a response without body framing");
        FUZZ_CHECK(ev.length > 0 && ev.offset + ev.length <= in.size(), "Body range outside the input");
        r.msgs.back().body.append(in.substr(ev.offset, ev.length));
        return true;
      case EventKind::MessageComplete: {
        FUZZ_CHECK(!r.msgs.empty() && !r.msgs.back().complete, "MessageComplete without an open response");
        Msg& m = r.msgs.back();
        m.body.append(ev.tail);
        m.complete = true;
        m.keep_alive = ev.keep_alive;
        if (m.framing == Framing::ContentLength) {
          FUZZ_CHECK(m.body.size() == m.content_length, "CL %llu but %zu bytes forwarded",
                     static_cast<unsigned long long>(m.content_length), m.body.size());
        }
        if (m.framing == Framing::Chunked) {
          FUZZ_CHECK(m.body.size() >= 5 && m.body.substr(m.body.size() - 2) == "\r\n", "chunked body must end in CRLF");
        }
        if (!m.informational) ++finals;
        return true;
      }
      case EventKind::Error:
        r.error = true;
        r.reason = p.error().reason;
        r.after_head = p.error().after_head;
        FUZZ_CHECK(p.error().upstream && p.error().status == 502, "response error not upstream/502");
        FUZZ_CHECK(!p.reusable(), "reusable after an error");
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
      Event ev = p.next(in);
      FUZZ_CHECK(ev.consumed <= in.size(), "consumed more than given");
      const bool more = handle(ev, in);
      FUZZ_CHECK(p.retained_bytes() <= 4 * lim.max_header_bytes + 2 * lim.max_trailer_bytes + 64 * 1024,
                 "parser retains %zu bytes", p.retained_bytes());
      in.remove_prefix(ev.consumed);
      if (!more) {
        if (ev.kind != EventKind::NeedMore) stopped = true;
        break;
      }
    }
  }
  if (!stopped) {
    for (int k = 0; k < 4; ++k) {
      if (!handle(p.finish(), {})) break;
    }
  }
  r.reusable = p.reusable();
  if (r.reusable) FUZZ_CHECK(!r.error && finals > 0, "reusable without a completed final response");
  FUZZ_CHECK(finals <= heads.size(), "%zu final responses for %zu requests", finals, heads.size());
  return r;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1 || size > 64 * 1024) return 0;
  const uint8_t sel = data[0];
  std::vector<bool> heads;
  for (unsigned k = 0; k < 1u + ((sel >> 4) & 3u); ++k) heads.push_back((sel >> k) & 1u);
  const std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);
  const Run whole = run(in, heads, false);
  const Run pieces = run(in, heads, true);
  FUZZ_CHECK(whole == pieces, "split changed the result (%zu vs %zu responses, error %d/%d %s/%s)", whole.msgs.size(),
             pieces.msgs.size(), whole.error, pieces.error, std::string(reason_token(whole.reason, true)).c_str(),
             std::string(reason_token(pieces.reason, true)).c_str());
  return 0;
}
