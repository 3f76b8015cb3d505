#include <catch2/catch.hpp>

#include "tests/unit/filters/http1_harness.h"

using namespace fp::filters::http1;
using fp::filters::http1::test::request;

TEST_CASE("http1: a simple GET parses and forwards exactly", "[fast][http1]") {
  const std::string in = "GET /a?b=c HTTP/1.1\r\nHost: example.com\r\nUser-Agent: t\r\n\r\n";
  auto o = request(in);
  CHECK_FALSE(o.error);
  CHECK(o.heads == 1);
  CHECK(o.messages == 1);
  CHECK(o.forwarded == in);
}
