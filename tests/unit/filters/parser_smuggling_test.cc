// RELIABILITY.md §3 A and B, parser level (scenarios 1-13): the exact byte strings, each
// asserting the reason token and the status, that nothing was handed out for forwarding, and a
// positive control (the well-formed neighbour parses and forwards exactly what was received).

#include <catch2/catch.hpp>

#include <string>

#include "tests/unit/filters/http1_harness.h"

using namespace fp::filters::http1;
using fp::filters::http1::test::Outcome;
using fp::filters::http1::test::request;

namespace {

using namespace std::string_literals;

// Rejected in the head: token, status, zero bytes forwarded, no Head event. Also fed one byte at
// a time, which must give the same verdict.
void rejects(const std::string& in, std::string_view token, int status) {
  INFO("input: " << in);
  for (size_t piece : {size_t{0}, size_t{1}}) {
    Outcome o = request(in, piece);
    REQUIRE(o.error);
    CHECK(o.err.token() == token);
    CHECK(o.err.status == status);
    CHECK_FALSE(o.err.upstream);
    CHECK(o.heads == 0);
    CHECK(o.forwarded.empty());
  }
}

// Accepted: every message forwarded byte for byte.
void accepts(const std::string& in, size_t messages = 1) {
  INFO("input: " << in);
  Outcome o = request(in);
  INFO("error: " << o.err.token() << ": " << o.err.detail);
  REQUIRE_FALSE(o.error);
  CHECK(o.messages == messages);
  CHECK(o.forwarded == in);
}

const std::string kSmuggled = "GET /admin HTTP/1.1\r\nHost: a\r\n\r\n";

}  // namespace

TEST_CASE("A1 CL.TE / TE.CL: Content-Length with Transfer-Encoding is rejected", "[fast][http1][smuggling]") {
  const std::string body = "0\r\n\r\n" + kSmuggled;
  rejects("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: " + std::to_string(body.size()) +
              "\r\nTransfer-Encoding: chunked\r\n\r\n" + body,
          "cl_te", 400);
  rejects("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n"
          "5c\r\n" + kSmuggled + "\r\n0\r\n\r\n",
          "cl_te", 400);
  rejects("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n", "cl_te", 400);
  SECTION("controls: each framing alone, with the would-be smuggled request as the body") {
    accepts("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
    accepts("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
            "20\r\n" + kSmuggled + "\r\n0\r\n\r\n");
    // Chunked body ending at the last chunk: the smuggled request is a second, separate message.
    Outcome o = request("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + kSmuggled);
    CHECK(o.messages == 2);
    CHECK(o.methods == std::vector<std::string>{"POST", "GET"});
  }
}

TEST_CASE("A2 duplicate or odd Content-Length", "[fast][http1][smuggling]") {
  const std::string pre = "POST / HTTP/1.1\r\nHost: a\r\n";
  rejects(pre + "Content-Length: 1\r\nContent-Length: 2\r\n\r\nab", "repeated_content_length", 400);
  rejects(pre + "Content-Length: 1\r\nContent-Length: 1\r\n\r\na", "repeated_content_length", 400);
  rejects(pre + "Content-Length: 1, 1\r\n\r\na", "bad_content_length", 400);
  rejects(pre + "Content-Length: +1\r\n\r\na", "bad_content_length", 400);
  rejects(pre + "Content-Length: -1\r\n\r\na", "bad_content_length", 400);
  rejects(pre + "Content-Length: 1 1\r\n\r\na", "bad_content_length", 400);
  rejects(pre + "Content-Length: \r\n\r\n", "bad_content_length", 400);
  rejects(pre + "Content-Length:\r\n\r\n", "bad_content_length", 400);
  rejects(pre + "Content-Length: 12345678901234567890\r\n\r\n", "bad_content_length", 400);
  rejects(pre + "Content-Length: 1234567890123456\r\n\r\n", "bad_content_length", 400);  // 16 digits
  rejects(pre + "Content-Length: 0x1\r\n\r\na", "bad_content_length", 400);
  SECTION("controls") {
    accepts(pre + "Content-Length: 1\r\n\r\na");
    accepts(pre + "Content-Length: 0\r\n\r\n");
    // 15 digits is well-formed: the body limit answers it, with 413, before reading any of it.
    Outcome o = request(pre + "Content-Length: 999999999999999\r\n\r\n");
    REQUIRE(o.error);
    CHECK(o.err.token() == "body_too_large");
    CHECK(o.err.status == 413);
    CHECK(o.forwarded.empty());
  }
}

TEST_CASE("A3 Transfer-Encoding obfuscation: only one final chunked", "[fast][http1][smuggling]") {
  const std::string pre = "POST / HTTP/1.1\r\nHost: a\r\n";
  const std::string body = "\r\n\r\n1\r\na\r\n0\r\n\r\n";
  rejects(pre + "Transfer-Encoding: identity, chunked" + body, "bad_transfer_encoding", 400);
  rejects(pre + "Transfer-Encoding: chunked, identity" + body, "bad_transfer_encoding", 400);
  rejects(pre + "Transfer-Encoding: xchunked" + body, "bad_transfer_encoding", 400);
  rejects(pre + "Transfer-Encoding: chunkedx" + body, "bad_transfer_encoding", 400);
  rejects(pre + "Transfer-Encoding: gzip, chunked" + body, "bad_transfer_encoding", 400);
  // \x0b (VT) is a CTL: the field value itself is invalid.
  rejects(pre + "Transfer-Encoding: \x0b" "chunked" + body, "bad_header_value", 400);
  rejects(pre + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked" + body, "repeated_transfer_encoding", 400);
  rejects(pre + "Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip" + body, "repeated_transfer_encoding", 400);
  rejects("POST / HTTP/1.0\r\nTransfer-Encoding: chunked" + body, "te_http10", 400);
  rejects("POST / HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked" + body, "te_http10", 400);
  SECTION("controls") {
    accepts(pre + "Transfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n\r\n");
    accepts(pre + "Transfer-Encoding: CHUNKED\r\n\r\n1\r\na\r\n0\r\n\r\n");
    accepts("POST / HTTP/1.0\r\nContent-Length: 1\r\n\r\na");
  }
}

TEST_CASE("A4 obs-fold and leading-whitespace lines", "[fast][http1][smuggling]") {
  rejects("POST / HTTP/1.1\r\nHost: a\r\n Content-Length: 5\r\n\r\nhello", "obs_fold", 400);
  rejects("POST / HTTP/1.1\r\n Content-Length: 5\r\nHost: a\r\n\r\nhello", "obs_fold", 400);
  rejects("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n", "obs_fold", 400);
  rejects("GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n\tc\r\n\r\n", "obs_fold", 400);
  rejects(" GET / HTTP/1.1\r\nHost: a\r\n\r\n", "bad_request_line", 400);
  SECTION("controls") {
    accepts("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello");
    accepts("GET / HTTP/1.1\r\nHost: a\r\nX-A: b c\r\n\r\n");
  }
}

TEST_CASE("A5 bare CR / bare LF / CRLF CR X", "[fast][http1][smuggling]") {
  rejects("GET / HTTP/1.1\nHost: a\r\n\r\n", "bare_lf", 400);
  rejects("GET / HTTP/1.1\r\nHost: a\n\r\n", "bare_lf", 400);
  rejects("GET / HTTP/1.1\r\nHost: a\r\n\n", "bare_lf", 400);
  rejects("GET / HTTP/1.1\rHost: a\r\n\r\n", "bare_cr", 400);
  rejects("GET /\r HTTP/1.1\r\nHost: a\r\n\r\n", "bare_cr", 400);
  rejects("GET / HTTP/1.1\r\nHost: a\r\nX-A: b\rc\r\n\r\n", "bare_cr", 400);
  rejects("GET / HTTP/1.1\r\nHost: a\r\n\rX", "bare_cr", 400);
  rejects("GET / HTTP/1.1\r\nHost: a\r\n\rGET /admin HTTP/1.1\r\n\r\n", "bare_cr", 400);
  rejects("\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", "bare_lf", 400);
  SECTION("controls") {
    accepts("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    // One leading empty line is tolerated (RFC 9112 §2.2) and not forwarded.
    Outcome o = request("\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n");
    REQUIRE_FALSE(o.error);
    CHECK(o.forwarded == "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
  }
}

TEST_CASE("A6 malformed field names and values", "[fast][http1][smuggling]") {
  const std::string pre = "GET / HTTP/1.1\r\nHost: a\r\n";
  rejects(pre + ": empty\r\n\r\n", "empty_header_name", 400);
  rejects(pre + "X A: b\r\n\r\n", "bad_header_name", 400);
  rejects(pre + "X-A : b\r\n\r\n", "space_before_colon", 400);
  rejects(pre + "X-A\t: b\r\n\r\n", "space_before_colon", 400);
  rejects("POST / HTTP/1.1\r\nHost: a\r\nContent-Length : 5\r\n\r\nhello", "space_before_colon", 400);
  rejects(pre + "X-A(: b\r\n\r\n", "bad_header_name", 400);
  rejects(pre + "X-\xc3\xa9: b\r\n\r\n", "bad_header_name", 400);
  rejects(pre + "NoColon\r\n\r\n", "missing_colon", 400);
  rejects(pre + "X-A: b\0c\r\n\r\n"s, "bad_header_value", 400);
  rejects(pre + "X-A: b\x01\r\n\r\n", "bad_header_value", 400);
  rejects(pre + "X-A: b\x7f\r\n\r\n", "bad_header_value", 400);
  rejects(pre + "X-A: \x1b[31mred\r\n\r\n", "bad_header_value", 400);
  SECTION("controls: trailing OWS is trimmed before filters see the value; tabs and obs-text allowed") {
    Outcome o = request(pre + "X-A:  b \t\r\nX-B:\tc\td\r\nX-C: caf\xc3\xa9\r\n\r\n");
    REQUIRE_FALSE(o.error);
    CHECK(o.forwarded == pre + "X-A: b\r\nX-B: c\td\r\nX-C: caf\xc3\xa9\r\n\r\n");
    RequestParser p;
    REQUIRE(p.next(pre + "X-A:  b \t\r\n\r\n").kind == EventKind::Head);
    REQUIRE(p.request().headers.get("x-a") != nullptr);
    CHECK(*p.request().headers.get("x-a") == "b");
  }
}

TEST_CASE("A7 chunk abuse", "[fast][http1][smuggling]") {
  const std::string head = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
  auto body_error = [&](const std::string& body, std::string_view token, int status = 400) {
    INFO("body: " << body);
    for (size_t piece : {size_t{0}, size_t{1}}) {
      Outcome o = request(head + body, piece);
      REQUIRE(o.error);
      CHECK(o.err.token() == token);
      CHECK(o.err.status == status);
      CHECK(o.err.after_head);
      CHECK(o.messages == 0);
    }
  };
  body_error("10000000000000001\r\n", "bad_chunk_size");  // 17 hex digits
  body_error("00000000000000001\r\na\r\n0\r\n\r\n", "bad_chunk_size");  // 17 digits, even if zeros
  body_error("0x1\r\na\r\n0\r\n\r\n", "bad_chunk_size");
  body_error("1 \r\na\r\n0\r\n\r\n", "bad_chunk_size");
  body_error(" 1\r\na\r\n0\r\n\r\n", "bad_chunk_size");
  body_error("\r\na\r\n0\r\n\r\n", "bad_chunk_size");
  body_error("-1\r\na\r\n0\r\n\r\n", "bad_chunk_size");
  body_error("1\na\r\n0\r\n\r\n", "bare_lf");
  body_error("1\r\nab\r\n0\r\n\r\n", "chunk_missing_crlf");   // data longer than the size
  body_error("3\r\nabc0\r\n\r\n", "chunk_missing_crlf");       // no CRLF after the data
  body_error("3\r\nabc\n0\r\n\r\n", "chunk_missing_crlf");
  body_error("1;" + std::string(5000, 'a') + "\r\na\r\n0\r\n\r\n", "chunk_ext_too_long");
  body_error("1;a=\x01\r\na\r\n0\r\n\r\n", "bad_chunk_ext");
  // Fuzz find: obs-text in a chunk extension is refused by our layer (not left to llhttp), in
  // one read and byte by byte alike.
  body_error("1;\x8a\r\nx\r\n0\r\n\r\n", "bad_chunk_ext");
  body_error("0\r\nX-T: a\rb\r\n\r\n", "bad_trailer");
  body_error("0\r\nNoColon\r\n\r\n", "bad_trailer");
  body_error("0\r\n X-T: folded\r\n\r\n", "bad_trailer");
  body_error("0\r\nX-T: a\nb\r\n\r\n", "bad_trailer");
  body_error("0\r\nX T: a\r\n\r\n", "bad_trailer");

  SECTION("rejected chunks never reach the upstream: the bad line is not in the forwarded bytes") {
    // Whatever the read boundaries, what was handed out is a prefix of the head and the first
    // (valid) chunk; the bad size line never is. (Bytes of the failing read are not handed out.)
    for (size_t piece : {size_t{0}, size_t{1}, size_t{3}, size_t{70}}) {
      Outcome o = request(head + "5\r\nhello\r\n0x1\r\na\r\n0\r\n\r\n", piece);
      REQUIRE(o.error);
      CHECK(o.err.token() == "bad_chunk_size");
      const std::string valid = head + "5\r\nhello\r\n0";
      CHECK(valid.compare(0, o.forwarded.size(), o.forwarded) == 0);
      CHECK(o.forwarded.size() <= valid.size());
    }
  }
  SECTION("controls: extensions under the cap, upper-case hex, 16 digits") {
    accepts(head + "1;name=value\r\na\r\n0\r\n\r\n");
    accepts(head + "1;x\r\na\r\n0;y=\"q\"\r\n\r\n");
    // llhttp 8.1.0 refuses a second extension after name=value; we run in lockstep, so do we.
    Outcome o = request(head + "1;name=value;x\r\na\r\n0\r\n\r\n");
    CHECK(o.err.token() == "parser_rejected");
    accepts(head + "A\r\n0123456789\r\n0\r\n\r\n");
    accepts(head + "000000000000000a\r\n0123456789\r\n0\r\n\r\n");
    accepts(head + "1;" + std::string(4000, 'a') + "\r\na\r\n0\r\n\r\n");
  }
  SECTION("trailers carrying framing fields are dropped, never merged into the head") {
    RequestParser p;
    const std::string in = head + "1\r\na\r\n0\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\nHost: evil\r\n\r\n";
    Outcome o = fp::filters::http1::test::drive(p, in);
    REQUIRE_FALSE(o.error);
    CHECK(o.messages == 1);
    CHECK(o.forwarded == head + "1\r\na\r\n0\r\n\r\n");
    CHECK(p.request().headers.count("content-length") == 0);
    CHECK(*p.request().headers.get("host") == "a");
  }
}

TEST_CASE("A8 Host, version and request-target validity", "[fast][http1][smuggling]") {
  rejects("GET / HTTP/1.1\r\n\r\n", "missing_host", 400);
  rejects("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "repeated_host", 400);
  rejects("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", "repeated_host", 400);
  rejects("GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", "repeated_host", 400);
  rejects("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", "bad_host", 400);
  rejects("GET / HTTP/1.1\r\nHost: \r\n\r\n", "bad_host", 400);
  rejects("GET http://b/x HTTP/1.1\r\nHost: a\r\n\r\n", "host_mismatch", 400);
  rejects("GET http://a:8443/x HTTP/1.1\r\nHost: a\r\n\r\n", "host_mismatch", 400);
  rejects("GET http://u@a/x HTTP/1.1\r\nHost: a\r\n\r\n", "bad_target", 400);
  rejects("GET ftp://a/x HTTP/1.1\r\nHost: a\r\n\r\n", "bad_target", 400);
  rejects("GET a/x HTTP/1.1\r\nHost: a\r\n\r\n", "bad_target", 400);
  rejects("GET * HTTP/1.1\r\nHost: a\r\n\r\n", "bad_target", 400);
  rejects("GET /\r\n\r\n", "http09", 400);
  rejects("GET /\r\nHost: a\r\n\r\n", "http09", 400);
  rejects("GET / HTTP/0.9\r\nHost: a\r\n\r\n", "unsupported_version", 505);
  rejects("GET / HTTP/2.0\r\nHost: a\r\n\r\n", "unsupported_version", 505);
  rejects("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "unsupported_version", 505);
  rejects("GET / HTTP/1.2\r\nHost: a\r\n\r\n", "unsupported_version", 505);
  rejects("GET / HTTP/1.01\r\nHost: a\r\n\r\n", "bad_version", 400);
  rejects("GET / http/1.1\r\nHost: a\r\n\r\n", "bad_version", 400);
  rejects("GET / HTTP/1\r\nHost: a\r\n\r\n", "bad_version", 400);
  rejects("GET /a#frag HTTP/1.1\r\nHost: a\r\n\r\n", "fragment_in_target", 400);
  rejects("GET /#/../admin HTTP/1.1\r\nHost: a\r\n\r\n", "fragment_in_target", 400);
  rejects("GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", "bad_request_line", 400);
  rejects("GET  / HTTP/1.1\r\nHost: a\r\n\r\n", "bad_request_line", 400);
  rejects("GET / HTTP/1.1 \r\nHost: a\r\n\r\n", "bad_request_line", 400);
  rejects("GET /\x7f HTTP/1.1\r\nHost: a\r\n\r\n", "bad_target", 400);
  rejects("GET /\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n", "bad_target", 400);
  rejects("G(T / HTTP/1.1\r\nHost: a\r\n\r\n", "bad_method", 400);
  SECTION("controls") {
    accepts("GET http://a/x HTTP/1.1\r\nHost: a\r\n\r\n");
    accepts("GET HTTP://A:8443/x?q HTTP/1.1\r\nHost: a:8443\r\n\r\n");
    accepts("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n");
    accepts("GET / HTTP/1.0\r\n\r\n");
    accepts("GET /a%23frag?x=1 HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n");
    RequestParser p;
    REQUIRE(p.next("GET http://a/x?y HTTP/1.1\r\nHost: a\r\n\r\n").kind == EventKind::Head);
    CHECK(p.request().absolute_form);
    CHECK(p.request().path() == "/x?y");
  }
}

TEST_CASE("A9 pipelining, data after Connection: close", "[fast][http1][smuggling]") {
  const std::string r1 = "GET /1 HTTP/1.1\r\nHost: a\r\n\r\n";
  const std::string r2 = "POST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc";
  const std::string r3 = "GET /3 HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx";
  SECTION("three pipelined, the third malformed: the first two complete in order, then 400") {
    for (size_t piece : {size_t{0}, size_t{1}, size_t{7}}) {
      Outcome o = request(r1 + r2 + r3, piece);
      CHECK(o.messages == 2);
      CHECK(o.methods == std::vector<std::string>{"GET", "POST"});
      CHECK(o.forwarded == r1 + r2);
      REQUIRE(o.error);
      CHECK(o.err.token() == "repeated_content_length");
      CHECK_FALSE(o.err.after_head);
    }
  }
  SECTION("three well-formed pipelined requests forward exactly") { accepts(r1 + r2 + r1, 3); }
  SECTION("bytes after a Connection: close request are discarded, never parsed or forwarded") {
    const std::string c = "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
    Outcome o = request(c + r1 + "garbage\n\r\x00"s);
    REQUIRE_FALSE(o.error);
    CHECK(o.messages == 1);
    CHECK(o.forwarded == c);
    CHECK(o.discarded == r1.size() + 10);
  }
  SECTION("HTTP/1.0 without keep-alive closes; with keep-alive continues") {
    Outcome o = request("GET / HTTP/1.0\r\n\r\n" + r1);
    CHECK(o.messages == 1);
    CHECK(o.discarded == r1.size());
    Outcome k = request("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n" + r1);
    CHECK(k.messages == 2);
  }
}

TEST_CASE("A10 Upgrade / CONNECT / h2c are refused with 501, never a tunnel", "[fast][http1][smuggling]") {
  rejects("GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
          "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n",
          "h2c_refused", 501);
  rejects("GET / HTTP/1.1\r\nHost: a\r\nUpgrade: h2c\r\n\r\n", "h2c_refused", 501);
  rejects("GET / HTTP/1.1\r\nHost: a\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n", "h2c_refused", 501);
  rejects("GET /chat HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
          "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
          "upgrade_refused", 501);
  rejects("CONNECT host:443 HTTP/1.1\r\nHost: host:443\r\n\r\n", "connect_refused", 501);
  rejects("CONNECT host:443 HTTP/1.1\r\nHost: host:443\r\n\r\nearly tunnel data", "connect_refused", 501);
  SECTION("control: Connection: upgrade without an Upgrade header is plain HTTP") {
    accepts("GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\n\r\n");
  }
}

TEST_CASE("B12 oversized request line, header, header count", "[fast][http1][limits]") {
  Limits l;
  SECTION("64 KiB URI → 414, decided before the whole line arrives") {
    const std::string in = "GET /" + std::string(64 * 1024, 'a') + " HTTP/1.1\r\nHost: a\r\n\r\n";
    RequestParser p(l);
    Outcome o = fp::filters::http1::test::drive(p, in, 1024);
    REQUIRE(o.error);
    CHECK(o.err.token() == "uri_too_long");
    CHECK(o.err.status == 414);
    CHECK(p.stats().bytes_scanned < l.max_uri_bytes + 2048);
    Outcome control = request("GET /" + std::string(l.max_uri_bytes - 1, 'a') + " HTTP/1.1\r\nHost: a\r\n\r\n");
    CHECK_FALSE(control.error);
  }
  SECTION("1 MiB of headers → 431, memory bounded by the limit") {
    std::string in = "GET / HTTP/1.1\r\nHost: a\r\n";
    for (int i = 0; i < 1024; ++i) in += "X-Big-" + std::to_string(i) + ": " + std::string(1000, 'v') + "\r\n";
    in += "\r\n";
    RequestParser p(l);
    Outcome o = fp::filters::http1::test::drive(p, in, 4096);
    REQUIRE(o.error);
    CHECK(o.err.token() == "header_too_large");
    CHECK(o.err.status == 431);
    CHECK(p.retained_bytes() <= 2 * (l.max_header_bytes + 4096));
  }
  SECTION("10,000 tiny headers → 431 at the count limit") {
    std::string in = "GET / HTTP/1.1\r\nHost: a\r\n";
    for (int i = 0; i < 10000; ++i) in += "x-" + std::to_string(i) + ":\r\n";
    in += "\r\n";
    Outcome o = request(in, 0, l);
    REQUIRE(o.error);
    CHECK(o.err.token() == "too_many_headers");
    CHECK(o.err.status == 431);
    std::string ok = "GET / HTTP/1.1\r\nHost: a\r\n";
    for (size_t i = 0; i + 1 < l.max_header_count; ++i) ok += "x-" + std::to_string(i) + ": v\r\n";
    ok += "\r\n";
    accepts(ok);
  }
}

TEST_CASE("B12 work is linear in the number of headers (counted, not timed)", "[fast][http1][limits]") {
  Limits big;
  big.max_header_count = 20000;
  big.max_header_bytes = 1 << 20;
  auto run = [&](int n) {
    std::string in = "GET / HTTP/1.1\r\nHost: a\r\n";
    for (int i = 0; i < n; ++i) in += "x-" + std::to_string(100000 + i) + ": v\r\n";
    in += "\r\n";
    RequestParser p(big);
    Outcome o = fp::filters::http1::test::drive(p, in, 1500);
    REQUIRE_FALSE(o.error);
    REQUIRE(o.heads == 1);
    REQUIRE(p.request().headers.size() == static_cast<size_t>(n) + 1);
    // Every byte examined a bounded number of times by our layer and once by llhttp.
    CHECK(p.stats().bytes_scanned <= in.size() + 2);
    CHECK(p.stats().llhttp_bytes == in.size());
    return p.stats();
  };
  const auto s1k = run(1000);
  const auto s10k = run(10000);
  // llhttp callbacks per header are constant: 10x the headers is ~10x the callbacks.
  CHECK(s10k.llhttp_callbacks <= 10 * s1k.llhttp_callbacks + 10);
  CHECK(s10k.llhttp_callbacks >= 9 * s1k.llhttp_callbacks);
}

TEST_CASE("B13 body over the limit", "[fast][http1][limits]") {
  Limits l;
  l.max_body_bytes = 1000;
  SECTION("Content-Length: 10^12 → 413 before reading any of the body") {
    Outcome o = request("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000000000\r\n\r\nab", 0, l);
    REQUIRE(o.error);
    CHECK(o.err.token() == "body_too_large");
    CHECK(o.err.status == 413);
    CHECK_FALSE(o.err.after_head);
    CHECK(o.forwarded.empty());
  }
  SECTION("a chunked body is counted and cut at the limit: the chunk that crosses it is not forwarded") {
    const std::string head = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
    const std::string c1 = "1f4\r\n" + std::string(500, 'a') + "\r\n";
    const std::string c2 = "1f5\r\n" + std::string(501, 'b') + "\r\n";
    Outcome o = request(head + c1 + c2 + "0\r\n\r\n", 0, l);
    REQUIRE(o.error);
    CHECK(o.err.token() == "body_too_large");
    CHECK(o.err.status == 413);
    CHECK(o.err.after_head);
    CHECK(o.forwarded.find('b') == std::string::npos);
    Outcome split = request(head + c1 + c2 + "0\r\n\r\n", 64, l);
    CHECK(split.err.token() == "body_too_large");
    // The crossing chunk's data is never handed out (at most the start of its size line).
    const std::string allowed = head + c1 + "1f5";
    CHECK(allowed.compare(0, split.forwarded.size(), split.forwarded) == 0);
    CHECK(split.forwarded.size() <= allowed.size());
    const std::string c2ok = "1f4\r\n" + std::string(500, 'b') + "\r\n";
    Outcome ok = request(head + c1 + c2ok + "0\r\n\r\n", 0, l);
    CHECK_FALSE(ok.error);
    CHECK(ok.forwarded == head + c1 + c2ok + "0\r\n\r\n");
  }
  SECTION("control: exactly the limit by Content-Length") {
    Outcome o = request("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\n" + std::string(1000, 'x'), 0, l);
    CHECK_FALSE(o.error);
    CHECK(o.messages == 1);
  }
}
