// Self-tests of tests/support (helpers must be trustworthy before the proxy tests use them).
#include <catch2/catch.hpp>

#include <signal.h>
#include <unistd.h>

#include "tests/support/support.h"

using namespace fp::test;
using namespace std::chrono_literals;

TEST_CASE("support: JSON line parser reads strings, numbers, arrays and nulls", "[fast][support]") {
  auto o = JsonObject::parse(
      R"({"ts":"2024-01-01T00:00:00Z","conn":42,"peer_dns":["a.example","b\"x"],"alpn":null,"ok":true,"nested":{"a":[1,2]},"d":-1.5e3})");
  REQUIRE(o);
  CHECK(o->str("ts") == "2024-01-01T00:00:00Z");
  CHECK(o->num("conn") == 42);
  CHECK(o->arr("peer_dns") == std::vector<std::string>{"a.example", "b\"x"});
  CHECK(o->str("alpn", "none") == "none");
  CHECK(o->boolean("ok"));
  CHECK(o->num("d") == -1500);
  CHECK(o->has("nested"));
  CHECK_FALSE(JsonObject::parse("not json"));
  CHECK_FALSE(JsonObject::parse(R"({"a":)"));
}

TEST_CASE("support: TempDir is removed recursively and wait_until is bounded", "[fast][support]") {
  std::string p;
  {
    TempDir d;
    p = d.path();
    write_file(d.file("x"), "hello");
    CHECK(read_file(d.file("x")) == "hello");
  }
  CHECK_FALSE(file_exists(p));
  int calls = 0;
  auto t0 = std::chrono::steady_clock::now();
  CHECK_FALSE(wait_until([&] { return ++calls < 0; }, 100ms, 10ms));
  CHECK(calls <= 12);
  CHECK(std::chrono::steady_clock::now() - t0 < 1s);
  CHECK(short_uds_path("a-rather-long-tag-that-gets-truncated-here").size() < 108);
  CHECK(free_tcp_port() > 0);
}

TEST_CASE("support: Process captures output, reports exit codes and kills on request", "[fast][support]") {
  Process::Options o;
  o.argv = {"sh", "-c", "echo out; echo err >&2; exit 7"};
  Process p(o);
  auto es = p.wait_exit(5s);
  CHECK(es.exited);
  CHECK(es.code == 7);
  CHECK(p.read_stdout() == "out\n");
  CHECK(p.read_stderr() == "err\n");

  Process::Options o2;
  o2.argv = {"sh", "-c", "trap '' TERM; echo ready; sleep 30"};
  o2.term_grace = 200ms;
  Process q(o2);
  CHECK(q.running());
  REQUIRE(wait_until([&] { return q.read_stdout() == "ready\n"; }, 5s));
  auto es2 = q.terminate();
  CHECK(es2.signal == SIGKILL);
}

TEST_CASE("support: gen.sh creates every identity in the README", "[fast][support]") {
  for (const char* f : {"ca.pem", "ca.key", "server.pem", "server.key", "client.pem", "client.key", "client2.pem",
                        "other-ca.pem", "other-client.pem", "other-client.key", "expired-client.pem",
                        "expired-client.key", "wrong-server.pem", "wrong-server.key", "server-rsa.pem",
                        "client-rsa.pem"}) {
    INFO(f);
    CHECK(file_exists(cert(f)));
  }
  std::string out, err;
  auto es = run_command({"openssl", "verify", "-CAfile", cert("ca.pem"), cert("server.pem"), cert("client.pem")}, 10s,
                        &out, &err);
  CHECK(es.code == 0);
  es = run_command({"openssl", "verify", "-CAfile", cert("ca.pem"), cert("expired-client.pem")}, 10s, &out, &err);
  CHECK(es.code != 0);
  CHECK((out + err).find("expired") != std::string::npos);
}

TEST_CASE("support: app_server echo and tls_client half-close over TCP and UDS", "[fast][support]") {
  for (std::string listen : {std::string("tcp:127.0.0.1:0"), "unix:" + short_uds_path("echo")}) {
    INFO(listen);
    AppServer app(listen, {"echo"});
    REQUIRE(app.ok());
    std::vector<std::string> argv = {"python3", apps_dir() + "/tls_client.py", "--send-text", "hello",
                                     "--half-close"};
    if (app.endpoint().rfind("unix:", 0) == 0) {
      argv.insert(argv.end(), {"--unix", app.endpoint().substr(5)});
    } else {
      argv.insert(argv.end(), {"--connect", app.endpoint()});
    }
    std::string out;
    auto es = run_command(argv, 20s, &out);
    CHECK(es.code == 0);
    auto r = JsonObject::parse(out);
    REQUIRE(r);
    CHECK(r->str("recv_head") == "hello");
    CHECK(r->str("eof") == "clean");
    CHECK(wait_until([&] { return app.events().size() >= 2; }, 5s));
  }
}
