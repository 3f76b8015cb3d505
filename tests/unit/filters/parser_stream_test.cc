// Incremental correctness (every split point), pipelining, bounded memory for tiny chunks, EOF
// handling, and the response side (framing, HEAD/1xx/204/304, 502 + no reuse).

#include <catch2/catch.hpp>

#include <string>

#include "tests/unit/filters/http1_harness.h"

using namespace fp::filters::http1;
using fp::filters::http1::test::drive;
using fp::filters::http1::test::Outcome;
using fp::filters::http1::test::request;

namespace {

// Feeds `in` as two reads split at every byte boundary, then one byte at a time; the verdict
// and the forwarded bytes must not depend on the split.
template <class MakeParser>
void same_at_every_split(const std::string& in, MakeParser make, bool eof = false) {
  auto p0 = make();
  const Outcome whole = drive(*p0, in, 0, eof);
  for (size_t cut = 1; cut < in.size(); ++cut) {
    auto p = make();
    Outcome o;
    // two reads: [0, cut) and [cut, end)
    {
      std::string_view a(in.data(), cut), b(in.data() + cut, in.size() - cut);
      o = drive(*p, a);
      if (!o.error) {
        Outcome o2 = drive(*p, b, 0, eof);
        o.forwarded += o2.forwarded;
        o.messages += o2.messages;
        o.heads += o2.heads;
        o.error = o2.error;
        o.err = o2.err;
      }
    }
    INFO("cut at " << cut);
    CHECK(o.error == whole.error);
    CHECK(o.err.token() == whole.err.token());
    CHECK(o.heads == whole.heads);
    CHECK(o.messages == whole.messages);
    if (!whole.error) CHECK(o.forwarded == whole.forwarded);
  }
  auto p1 = make();
  Outcome bytewise = drive(*p1, in, 1, eof);
  CHECK(bytewise.error == whole.error);
  CHECK(bytewise.err.token() == whole.err.token());
  CHECK(bytewise.messages == whole.messages);
  if (!whole.error) CHECK(bytewise.forwarded == whole.forwarded);
}

auto req_parser() { return std::make_unique<RequestParser>(); }

}  // namespace

TEST_CASE("incremental: verdicts and bytes do not depend on read boundaries", "[fast][http1][incremental]") {
  SECTION("pipelined: CL body, chunked body with extension and trailers, no body") {
    const std::string in =
        "POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"
        "PUT /b HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3;e=1\r\nabc\r\n10\r\n0123456789abcdef\r\n"
        "0\r\nX-Trailer: t\r\n\r\n"
        "GET /c HTTP/1.1\r\nHost: a\r\n\r\n";
    same_at_every_split(in, req_parser);
    Outcome o = request(in);
    CHECK(o.messages == 3);
    // Trailers dropped, everything else forwarded exactly.
    std::string expect = in;
    expect.erase(expect.find("X-Trailer: t\r\n"), 14);
    CHECK(o.forwarded == expect);
  }
  SECTION("a smuggling attempt is caught at every split") {
    same_at_every_split("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nX",
                        req_parser);
    same_at_every_split("GET / HTTP/1.1\r\nHost: a\r\n\rX: y\r\n\r\n", req_parser);
    same_at_every_split("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0x1\r\n", req_parser);
  }
  SECTION("response with chunked body then a 304, split anywhere") {
    const std::string in =
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nwiki\r\n0\r\n\r\n"
        "HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n";
    auto make = [] {
      auto p = std::make_unique<ResponseParser>();
      p->expect_response("GET");
      p->expect_response("GET");
      return p;
    };
    same_at_every_split(in, make);
    auto p = make();
    Outcome o = drive(*p, in);
    CHECK(o.messages == 2);
    CHECK(o.forwarded == in);
    CHECK(p->reusable());
  }
}

TEST_CASE("pipelining: many requests in one buffer, heads in order", "[fast][http1][pipeline]") {
  std::string in;
  for (int i = 0; i < 50; ++i) {
    in += "POST /" + std::to_string(i) + " HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nok";
  }
  RequestParser p;
  std::string_view view = in;
  int heads = 0, completes = 0;
  for (;;) {
    Event ev = p.next(view);
    if (ev.kind == EventKind::Head) {
      CHECK(p.request().target == "/" + std::to_string(heads));
      ++heads;
    }
    if (ev.kind == EventKind::MessageComplete) ++completes;
    REQUIRE(ev.kind != EventKind::Error);
    view.remove_prefix(ev.consumed);
    if (ev.kind == EventKind::NeedMore) break;
  }
  CHECK(heads == 50);
  CHECK(completes == 50);
  CHECK(p.stats().messages == 50);
}

TEST_CASE("A7 1-byte chunks x 100k are forwarded in bounded memory", "[fast][http1][chunked]") {
  const std::string head = "POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
  RequestParser p;
  REQUIRE(p.next(head).kind == EventKind::Head);
  REQUIRE(p.request().framing == Framing::Chunked);
  const size_t base = p.retained_bytes();
  std::string block;
  for (int i = 0; i < 1000; ++i) block += "1\r\nx\r\n";
  size_t forwarded = 0, body_events = 0;
  for (int round = 0; round < 100; ++round) {
    std::string_view in = block;
    while (!in.empty()) {
      Event ev = p.next(in);
      REQUIRE(ev.kind == EventKind::Body);
      CHECK(ev.offset == 0);
      forwarded += ev.length;
      ++body_events;
      in.remove_prefix(ev.consumed);
    }
    // No per-chunk allocation: what the parser holds does not grow with the body.
    REQUIRE(p.retained_bytes() <= base + 64);
  }
  std::string_view end = "0\r\n\r\n";
  Event ev = p.next(end);
  REQUIRE(ev.kind == EventKind::Body);
  CHECK(end.substr(ev.offset, ev.length) == "0\r\n");
  forwarded += ev.length;
  ++body_events;
  end.remove_prefix(ev.consumed);
  ev = p.next(end);
  REQUIRE(ev.kind == EventKind::MessageComplete);
  CHECK(ev.tail == "\r\n");
  CHECK(forwarded == 100 * block.size() + 3);
  CHECK(body_events == 101);  // one range per read: no per-chunk events
  CHECK(p.stats().chunks == 100001);
  CHECK(p.stats().bytes_scanned <= head.size() + 100 * block.size() + 8);
}

TEST_CASE("EOF handling", "[fast][http1]") {
  SECTION("clean EOF between requests") {
    RequestParser p;
    Outcome o = drive(p, "GET / HTTP/1.1\r\nHost: a\r\n\r\n", 0, true);
    CHECK_FALSE(o.error);
    CHECK(o.messages == 1);
  }
  SECTION("EOF inside a head: truncated, nothing forwarded") {
    RequestParser p;
    Outcome o = drive(p, "GET / HTTP/1.1\r\nHost: a\r\n", 0, true);
    REQUIRE(o.error);
    CHECK(o.err.token() == "truncated");
    CHECK_FALSE(o.err.after_head);
    CHECK(o.forwarded.empty());
  }
  SECTION("EOF inside a body: truncated after the head (the upstream must be closed)") {
    RequestParser p;
    Outcome o = drive(p, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc", 0, true);
    REQUIRE(o.error);
    CHECK(o.err.token() == "truncated");
    CHECK(o.err.after_head);
  }
  SECTION("errors are sticky") {
    RequestParser p;
    CHECK(p.next("GET / HTTP/1.1\nHost: a\r\n\r\n").kind == EventKind::Error);
    CHECK(p.next("GET / HTTP/1.1\r\nHost: a\r\n\r\n").kind == EventKind::Error);
    CHECK(p.error().token() == "bare_lf");
  }
}

namespace {
Outcome respond(const std::string& in, std::string_view method = "GET", bool eof = false, ResponseParser* out = nullptr) {
  ResponseParser local;
  ResponseParser& p = out ? *out : local;
  p.expect_response(method);
  return drive(p, in, 0, eof);
}
}  // namespace

TEST_CASE("A9 upstream side: invalid or ambiguous responses → 502 and no reuse", "[fast][http1][response]") {
  auto bad = [](const std::string& in, std::string_view token) {
    INFO("response: " << in);
    ResponseParser p;
    Outcome o = respond(in, "GET", false, &p);
    REQUIRE(o.error);
    CHECK(o.err.token() == token);
    CHECK(o.err.status == 502);
    CHECK(o.err.upstream);
    CHECK_FALSE(p.reusable());
    CHECK(o.forwarded.empty());
  };
  bad("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "upstream_cl_te");
  bad("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello", "upstream_repeated_content_length");
  bad("HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\nhello", "upstream_bad_content_length");
  bad("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", "upstream_bad_transfer_encoding");
  bad("HTTP/1.1 200 OK\r\nX: a\nContent-Length: 0\r\n\r\n", "upstream_bare_lf");
  bad("HTTP/1.1 200 OK\r\nX: a\r\n Content-Length: 0\r\n\r\n", "upstream_obs_fold");
  bad("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", "upstream_unexpected_101");
  bad("HTTP/2.0 200 OK\r\n\r\n", "upstream_unsupported_version");
  bad("HTTP/1.1 20 OK\r\n\r\n", "upstream_bad_status_line");
  bad("HTTP/1.1 600 Nope\r\n\r\n", "upstream_bad_status_line");
  bad("garbage\r\n\r\n", "upstream_bad_status_line");
  bad("HTTP/1.x 200 OK\r\n\r\n", "upstream_bad_version");

  SECTION("extra bytes after a complete response, before another request was sent") {
    ResponseParser p;
    const std::string r = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    Outcome o = respond(r + "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nevil", "GET", false, &p);
    CHECK(o.messages == 1);
    CHECK(o.forwarded == r);  // the stray response never reaches anyone
    REQUIRE(o.error);
    CHECK(o.err.token() == "upstream_unsolicited_response");
    CHECK(o.err.status == 502);
    CHECK_FALSE(p.reusable());
    // Even one stray byte.
    ResponseParser q;
    Outcome o2 = respond(r + "\r", "GET", false, &q);
    CHECK(o2.err.token() == "upstream_unsolicited_response");
    // Bytes before any request at all.
    ResponseParser idle;
    CHECK(idle.next("HTTP/1.1 200 OK\r\n").kind == EventKind::Error);
  }
  SECTION("a bad chunk mid-body: error after the head, no reuse") {
    ResponseParser p;
    Outcome o = respond("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX", "GET", false, &p);
    REQUIRE(o.error);
    CHECK(o.err.token() == "upstream_chunk_missing_crlf");
    CHECK(o.err.after_head);
    CHECK_FALSE(p.reusable());
  }
  SECTION("EOF inside a CL body: truncated, no reuse") {
    ResponseParser p;
    Outcome o = respond("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", "GET", true, &p);
    REQUIRE(o.error);
    CHECK(o.err.token() == "upstream_truncated");
  }
}

TEST_CASE("response framing: CL, chunked, close-delimited, HEAD/1xx/204/304", "[fast][http1][response]") {
  SECTION("CL, keep-alive → reusable") {
    ResponseParser p;
    const std::string r = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
    Outcome o = respond(r, "GET", false, &p);
    CHECK(o.forwarded == r);
    CHECK(o.framings == std::vector<Framing>{Framing::ContentLength});
    CHECK(p.reusable());
  }
  SECTION("Connection: close → not reusable, later bytes discarded") {
    ResponseParser p;
    const std::string r = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
    Outcome o = respond(r + "junk", "GET", false, &p);
    CHECK_FALSE(o.error);
    CHECK(o.forwarded == r);
    CHECK(o.discarded == 4);
    CHECK_FALSE(p.reusable());
  }
  SECTION("close-delimited body runs to EOF, never reusable") {
    ResponseParser p;
    const std::string r = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall of this until EOF";
    Outcome o = respond(r, "GET", true, &p);
    CHECK_FALSE(o.error);
    CHECK(o.messages == 1);
    CHECK(o.forwarded == r);
    CHECK(o.framings == std::vector<Framing>{Framing::CloseDelimited});
    CHECK_FALSE(p.reusable());
  }
  SECTION("HEAD: Content-Length and chunked announce, no body follows") {
    ResponseParser p;
    p.expect_response("HEAD");
    p.expect_response("GET");
    const std::string r1 = "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n";
    const std::string r2 = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    Outcome o = drive(p, r1 + r2);
    CHECK_FALSE(o.error);
    CHECK(o.messages == 2);
    CHECK(o.forwarded == r1 + r2);
    CHECK(o.framings == std::vector<Framing>{Framing::None, Framing::ContentLength});
    CHECK(p.reusable());
  }
  SECTION("100 Continue then the final response for the same request") {
    ResponseParser p;
    p.expect_response("POST");
    const std::string r = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n";
    Outcome o = drive(p, r);
    CHECK_FALSE(o.error);
    CHECK(o.messages == 2);
    CHECK(o.methods == std::vector<std::string>{"100", "201"});
    CHECK(p.reusable());
    CHECK(p.next("x").kind == EventKind::Error);  // nothing else outstanding
  }
  SECTION("204 and 304 have no body even with Content-Length") {
    for (const char* r : {"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n",
                          "HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n"}) {
      ResponseParser p;
      Outcome o = respond(r, "GET", false, &p);
      CHECK_FALSE(o.error);
      CHECK(o.messages == 1);
      CHECK(p.reusable());
    }
  }
  SECTION("HTTP/1.0 response without keep-alive is not reusable") {
    ResponseParser p;
    Outcome o = respond("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", "GET", false, &p);
    CHECK(o.messages == 1);
    CHECK_FALSE(p.reusable());
  }
  SECTION("chunked response with trailers: trailers dropped") {
    ResponseParser p;
    Outcome o = respond("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nGrpc-Status: 0\r\n\r\n",
                        "GET", false, &p);
    CHECK(o.forwarded == "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n");
    CHECK(p.response().headers.count("grpc-status") == 0);
    CHECK(p.reusable());
  }
}
