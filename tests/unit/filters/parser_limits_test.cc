// Configurable request limits ([listener.http], issue #8): each limit refuses exactly one byte
// past its configured value and accepts a request at it (the positive control).

#include <catch2/catch.hpp>

#include "tests/unit/filters/http1_harness.h"

using namespace fp::filters::http1;
using namespace fp::filters::http1::test;

namespace {

// A GET whose head is exactly `total` bytes (final CRLF included), padded in one header.
std::string head_of(size_t total) {
  const std::string start = "GET / HTTP/1.1\r\nHost: a\r\nX-Pad: ";
  const std::string end = "\r\n\r\n";
  REQUIRE(total >= start.size() + end.size() + 1);
  return start + std::string(total - start.size() - end.size(), 'p') + end;
}

}  // namespace

TEST_CASE("limits: max_header_bytes counts the whole head, final CRLF included", "[fast][limits]") {
  Limits l;
  l.max_header_bytes = 1024;
  for (size_t piece : {0, 1, 7}) {
    INFO("piece " << piece);
    RequestParser at(l);
    Outcome ok = drive(at, head_of(1024), piece);
    CHECK_FALSE(ok.error);
    CHECK(ok.heads == 1);
    RequestParser over(l);
    Outcome bad = drive(over, head_of(1025), piece);
    REQUIRE(bad.error);
    CHECK(bad.err.status == 431);
    CHECK(bad.err.token() == "header_too_large");
    CHECK(bad.heads == 0);
  }
}

TEST_CASE("limits: max_header_count, max_uri_bytes and max_body_bytes as configured", "[fast][limits]") {
  Limits l;
  l.max_header_count = 3;
  l.max_uri_bytes = 100;
  l.max_body_bytes = 10;
  {
    RequestParser p(l);  // Host + 2 = 3 fields: allowed
    CHECK_FALSE(drive(p, "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n\r\n").error);
  }
  {
    RequestParser p(l);
    Outcome o = drive(p, "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n");
    REQUIRE(o.error);
    CHECK(o.err.status == 431);
    CHECK(o.err.token() == "too_many_headers");
  }
  {
    RequestParser p(l);
    CHECK_FALSE(drive(p, "GET /" + std::string(99, 'u') + " HTTP/1.1\r\nHost: a\r\n\r\n").error);
  }
  {
    RequestParser p(l);
    Outcome o = drive(p, "GET /" + std::string(100, 'u') + " HTTP/1.1\r\nHost: a\r\n\r\n");
    REQUIRE(o.error);
    CHECK(o.err.status == 414);
  }
  {
    RequestParser p(l);
    CHECK_FALSE(drive(p, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n0123456789").error);
  }
  {
    // Refused at the head, before a body byte is read, also with Expect: 100-continue.
    RequestParser p(l);
    Outcome o = drive(p, "POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 11\r\n\r\n");
    REQUIRE(o.error);
    CHECK(o.err.status == 413);
    CHECK(o.heads == 0);
  }
}
