#include <catch2/catch.hpp>

#include <set>
#include <string>
#include <vector>

#include "proxy/base/json.h"
#include "proxy/base/log.h"
#include "proxy/base/result.h"

using fp::Code;
using fp::Error;
using fp::Result;
using fp::Side;

namespace {
Result<int> parse_positive(int v) {
  if (v <= 0) return fp::make_error(Code::ConfigInvalid, Side::Internal, "must be > 0");
  return v;
}
}  // namespace

TEST_CASE("Result holds a value or an error", "[fast]") {
  Result<int> ok = parse_positive(7);
  REQUIRE(ok.ok());
  CHECK(*ok == 7);
  Result<int> bad = parse_positive(-1);
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().code == Code::ConfigInvalid);
  CHECK(bad.error().message() == "config_invalid: must be > 0");

  Result<void> v;
  CHECK(v.ok());
  Result<void> e = Error{Code::Io, Side::Upstream, "boom"};
  REQUIRE_FALSE(e.ok());
  CHECK(e.error().side == Side::Upstream);
}

TEST_CASE("every error code has a unique stable token and a sentence", "[fast]") {
  std::set<std::string> seen;
  for (int i = 0; i <= static_cast<int>(Code::Completed); ++i) {
    auto c = static_cast<Code>(i);
    std::string tok(fp::base::token(c));
    CHECK_FALSE(tok.empty());
    CHECK(tok.find(' ') == std::string::npos);
    CHECK(seen.insert(tok).second);
    CHECK_FALSE(fp::base::describe(c).empty());
  }
  // Tokens are an interface (logs, metrics, access log): pin a few.
  CHECK(fp::base::token(Code::PeerCertMissing) == "peer_cert_missing");
  CHECK(fp::base::token(Code::TlsChacha) == "tls13_chacha_refused");
  CHECK(fp::base::token(Code::ConnectTimeout) == "upstream_connect_timeout");
  CHECK(fp::base::side_name(Side::Downstream) == "downstream");
}

TEST_CASE("logfmt lines quote and escape values so one event is one line", "[fast]") {
  std::string line = fp::base::format_line(fp::base::Level::Info, "conn closed",
                                           {{"conn", 42}, {"detail", "a \"b\"\nc=d"}, {"ok", true}});
  CHECK(line.find("level=info") != std::string::npos);
  CHECK(line.find("msg=\"conn closed\"") != std::string::npos);
  CHECK(line.find("conn=42") != std::string::npos);
  CHECK(line.find("detail=\"a \\\"b\\\"\\nc=d\"") != std::string::npos);
  CHECK(line.find("ok=true") != std::string::npos);
  CHECK(line.find('\n') == std::string::npos);
}

TEST_CASE("the log level is checked before formatting", "[fast]") {
  std::vector<std::string> lines;
  fp::base::set_log_sink([&](std::string_view l) { lines.emplace_back(l); });
  fp::base::set_log_level(fp::base::Level::Warn);
  int formatted = 0;
  auto expensive = [&] {
    ++formatted;
    return std::string("x");
  };
  FP_LOG_INFO("hidden", {"v", expensive()});
  FP_LOG_WARN("shown", {"v", expensive()});
  fp::base::set_log_level(fp::base::Level::Info);
  fp::base::set_log_sink(nullptr);
  CHECK(formatted == 1);
  REQUIRE(lines.size() == 1);
  CHECK(lines[0].find("msg=shown") != std::string::npos);

  fp::base::Level lvl;
  CHECK(fp::base::parse_level("debug", lvl));
  CHECK(lvl == fp::base::Level::Debug);
  CHECK_FALSE(fp::base::parse_level("verbose", lvl));
}

TEST_CASE("JSON strings escape control characters and invalid UTF-8", "[fast]") {
  std::string out;
  fp::base::append_json_string(out, std::string("a\"b\\c\r\n\x01\x1b[31m\xff\xc3\xa9", 16));
  CHECK(out == "\"a\\\"b\\\\c\\r\\n\\u0001\\u001b[31m\\u00ff\xc3\xa9\"");
  fp::base::JsonObject j;
  j.str("k", "v").unum("n", 3).str_array("a", {"x", "y"}).boolean("b", false);
  CHECK(j.done() == R"({"k":"v","n":3,"a":["x","y"],"b":false})");
}
