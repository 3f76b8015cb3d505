// proxy/tls_transport: the low-copy record path (issue #10). Real BoringSSL sessions (the demo
// PKI, policy contexts from certs/) talk to each other in memory through TlsTransport's own BIO:
// ciphertext lent in 1-byte pieces, partial records, several records in one lend, a backpressure
// stop that leaves whole records unread, output ordering across writes, and no buffer of ours
// held by an idle session. Each "no copy" check has a positive control where a copy must happen.

#include "proxy/tls_transport.h"

#include <catch2/catch.hpp>

#include <cstring>
#include <memory>
#include <string>

#include "certs/demo_pki.h"
#include "certs/tls_context.h"
#include "tests/support/support.h"

using fp::certs::Role;
using fp::config::TlsConfig;
using fp::proxy::TlsTransport;

namespace {

struct Contexts {
  fp::test::TempDir tmp{"fp-tls-transport"};
  std::shared_ptr<const fp::certs::TlsContext> server, client;
  Contexts() {
    const std::string dir = tmp.file("pki");
    auto pki = fp::certs::make_demo_pki(dir, false);
    REQUIRE(pki);
    TlsConfig s;
    s.cert = dir + "/server.pem";
    s.key = dir + "/server.key";
    s.ca = dir + "/ca.pem";
    s.require_client_cert = true;
    TlsConfig c;
    c.cert = dir + "/client.pem";
    c.key = dir + "/client.key";
    c.ca = dir + "/ca.pem";
    auto sc = fp::certs::build_context(Role::Server, "in", s);
    auto cc = fp::certs::build_context(Role::Client, "out", c);
    REQUIRE(sc);
    REQUIRE(cc);
    server = *sc;
    client = *cc;
  }
};

const Contexts& contexts() {
  static Contexts c;
  return c;
}

std::string pattern(size_t n, char seed) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>(seed + (i * 7 + i / 251) % 61);
  return s;
}

// Lends `bytes` to `to` in pieces of `piece` bytes (each piece in its own scratch buffer,
// scribbled over after the Lend ends, as the worker's read buffer would be), driving the
// handshake and draining plaintext into `plain` after each piece.
void deliver(const std::string& bytes, TlsTransport& to, size_t piece, std::string* plain) {
  std::string sink;  // handshake-only deliveries: post-handshake messages yield no plaintext
  if (plain == nullptr) plain = &sink;
  for (size_t at = 0; at < bytes.size(); at += piece) {
    const size_t n = std::min(piece, bytes.size() - at);
    std::unique_ptr<char[]> scratch(new char[n]);
    std::memcpy(scratch.get(), bytes.data() + at, n);
    {
      TlsTransport::Lend lend(to, scratch.get(), n);
      if (!to.handshake_done()) REQUIRE(to.handshake() != TlsTransport::Step::Failed);
      if (to.handshake_done()) {
        char buf[4096];
        for (;;) {
          TlsTransport::ReadResult r = to.read(buf, sizeof buf);
          REQUIRE_FALSE(r.failed);
          if (r.bytes == 0) break;
          plain->append(buf, r.bytes);
        }
      }
    }
    std::memset(scratch.get(), 0x5a, n);  // the lent buffer is reused once the Lend ends
  }
  REQUIRE(sink.empty());
}

struct Pair {
  std::unique_ptr<TlsTransport> server = TlsTransport::create(contexts().server, "");
  std::unique_ptr<TlsTransport> client = TlsTransport::create(contexts().client, "localhost");

  // Runs the handshake, moving each flight in pieces of `piece` bytes.
  void handshake(size_t piece = 1 << 20) {
    REQUIRE(server);
    REQUIRE(client);
    REQUIRE(client->handshake() == TlsTransport::Step::WantRead);
    for (int i = 0; i < 10 && !(server->handshake_done() && client->handshake_done()); ++i) {
      deliver(client->take_output(), *server, piece, nullptr);
      deliver(server->take_output(), *client, piece, nullptr);
    }
    REQUIRE(server->handshake_done());
    REQUIRE(client->handshake_done());
    // Tickets and the last flight: deliver what is left so both sides go idle.
    std::string sink;
    deliver(server->take_output(), *client, piece, &sink);
    deliver(client->take_output(), *server, piece, &sink);
    REQUIRE(sink.empty());
  }
};

void check_idle(const TlsTransport& t) {
  const TlsTransport::BufferStats b = t.buffer_stats();
  CHECK(b.input_buffered == 0);
  CHECK(b.input_capacity == 0);
  CHECK(b.output_capacity == 0);
  CHECK(t.pending_output() == 0);
}

// Reads everything the session can decrypt now, without feeding.
std::string drain(TlsTransport& t) {
  std::string out;
  char buf[16384];
  for (;;) {
    TlsTransport::ReadResult r = t.read(buf, sizeof buf);
    REQUIRE_FALSE(r.failed);
    if (r.bytes == 0) break;
    out.append(buf, r.bytes);
  }
  return out;
}

}  // namespace

TEST_CASE("tls transport: handshake and data lent in 1-byte pieces", "[fast][tls_transport]") {
  Pair p;
  p.handshake(1);
  const std::string msg = pattern(40000, 'a');  // three records, each arriving a byte at a time
  REQUIRE(p.client->write(msg.data(), msg.size()));
  std::string got;
  deliver(p.client->take_output(), *p.server, 1, &got);
  CHECK(got == msg);
  check_idle(*p.server);
  check_idle(*p.client);
}

TEST_CASE("tls transport: whole records lent are read in place, output moves without a copy",
          "[fast][tls_transport]") {
  Pair p;
  p.handshake();
  const std::string msg = pattern(100000, 'b');  // 7 records of up to 16 KiB
  const auto before_out = p.client->buffer_stats();
  REQUIRE(p.client->write(msg.data(), msg.size()));
  CHECK(p.client->buffer_stats().output_capacity >= p.client->pending_output());
  std::unique_ptr<char[]> wire;
  const size_t n = p.client->take_output(wire);
  REQUIRE(n > msg.size());
  CHECK(p.client->buffer_stats().output_copied == before_out.output_copied);  // chunk moved out
  check_idle(*p.client);

  const auto before_in = p.server->buffer_stats();
  std::string got;
  {
    TlsTransport::Lend lend(*p.server, wire.get(), n);
    got = drain(*p.server);
  }
  CHECK(got == msg);
  CHECK(p.server->buffer_stats().input_copied == before_in.input_copied);  // nothing copied
  check_idle(*p.server);

  // Positive control: the copying feed() does copy every byte.
  REQUIRE(p.client->write(msg.data(), msg.size()));
  const std::string wire2 = p.client->take_output();
  const uint64_t copied0 = p.server->buffer_stats().input_copied;
  p.server->feed(wire2.data(), wire2.size());
  CHECK(p.server->buffer_stats().input_copied - copied0 == wire2.size());
  CHECK(drain(*p.server) == msg);
  check_idle(*p.server);
}

TEST_CASE("tls transport: a partial record goes to the library's record buffer, not ours",
          "[fast][tls_transport]") {
  // BoringSSL reads a record's header, then asks for exactly the rest of the record; a partial
  // record is therefore moved (once) into its own record buffer and our input buffer stays empty.
  Pair p;
  p.handshake();
  const std::string msg = pattern(1000, 'c');  // one record
  REQUIRE(p.client->write(msg.data(), msg.size()));
  const std::string wire = p.client->take_output();
  REQUIRE(wire.size() > 500);
  const uint64_t copied0 = p.server->buffer_stats().input_copied;
  std::string got;
  deliver(wire.substr(0, 500), *p.server, 500, &got);
  CHECK(got.empty());
  CHECK(p.server->buffer_stats().input_buffered == 0);
  CHECK(p.server->buffer_stats().input_capacity == 0);
  CHECK(p.server->buffer_stats().input_copied == copied0);
  deliver(wire.substr(500), *p.server, wire.size(), &got);
  CHECK(got == msg);
  check_idle(*p.server);

  // Positive control: lent bytes the session is not asked to read (the handshake is done and
  // nobody calls read(), as while the upstream is still connecting) are kept by copying them.
  REQUIRE(p.client->write(msg.data(), msg.size()));
  const std::string wire2 = p.client->take_output();
  {
    TlsTransport::Lend lend(*p.server, wire2.data(), wire2.size());
  }
  CHECK(p.server->buffer_stats().input_buffered == wire2.size());
  CHECK(p.server->buffer_stats().input_copied - copied0 == wire2.size());
  CHECK(drain(*p.server) == msg);
  check_idle(*p.server);
}

TEST_CASE("tls transport: backpressure stop keeps the unread records for a later read",
          "[fast][tls_transport]") {
  Pair p;
  p.handshake();
  const std::string msg = pattern(3 * 16384, 'd');  // three full records
  REQUIRE(p.client->write(msg.data(), msg.size()));
  const std::string wire = p.client->take_output();
  std::unique_ptr<char[]> scratch(new char[wire.size()]);
  std::memcpy(scratch.get(), wire.data(), wire.size());
  std::string got;
  {
    TlsTransport::Lend lend(*p.server, scratch.get(), wire.size());
    char buf[16384];
    TlsTransport::ReadResult r = p.server->read(buf, sizeof buf);  // then the consumer is full
    REQUIRE(r.bytes == 16384);
    got.append(buf, r.bytes);
  }
  std::memset(scratch.get(), 0, wire.size());
  const size_t kept = p.server->buffer_stats().input_buffered;
  CHECK(kept >= 2 * 16384);
  CHECK(kept < wire.size());
  got += drain(*p.server);  // reading resumes later, with no new bytes from the socket
  CHECK(got == msg);
  check_idle(*p.server);
}

TEST_CASE("tls transport: output keeps its order across writes, joins and close_notify",
          "[fast][tls_transport]") {
  Pair p;
  p.handshake();
  const std::string a = pattern(20000, 'e');
  const std::string b = pattern(300, 'f');
  const std::string c = pattern(70000, 'g');
  REQUIRE(p.client->write(a.data(), a.size()));
  REQUIRE(p.client->write(b.data(), b.size()));
  REQUIRE(p.client->write(c.data(), c.size()));
  p.client->shutdown();
  const uint64_t joined0 = p.client->buffer_stats().output_copied;
  std::unique_ptr<char[]> wire;
  const size_t n = p.client->take_output(wire);
  CHECK(p.client->buffer_stats().output_copied - joined0 == n);  // several chunks, joined once
  check_idle(*p.client);
  std::string got;
  bool eof = false;
  {
    TlsTransport::Lend lend(*p.server, wire.get(), n);
    char buf[8192];
    for (;;) {
      TlsTransport::ReadResult r = p.server->read(buf, sizeof buf);
      REQUIRE_FALSE(r.failed);
      if (r.eof) eof = true;
      if (r.bytes == 0) break;
      got.append(buf, r.bytes);
    }
  }
  CHECK(got == a + b + c);
  CHECK(eof);
}

TEST_CASE("tls transport: an idle session holds no buffers, a session may die inside a lend",
          "[fast][tls_transport]") {
  Pair p;
  p.handshake(7);
  check_idle(*p.server);
  check_idle(*p.client);
  for (int i = 0; i < 3; ++i) {  // request/response rounds leave nothing behind
    const std::string req = pattern(1024, 'h');
    REQUIRE(p.client->write(req.data(), req.size()));
    std::string got;
    deliver(p.client->take_output(), *p.server, 1 << 16, &got);
    CHECK(got == req);
    REQUIRE(p.server->write(req.data(), req.size()));
    got.clear();
    deliver(p.server->take_output(), *p.client, 1 << 16, &got);
    CHECK(got == req);
    check_idle(*p.server);
    check_idle(*p.client);
  }
  // A session destroyed while its Lend is in scope: the Lend does nothing at its end.
  const std::string req = pattern(100, 'i');
  REQUIRE(p.client->write(req.data(), req.size()));
  const std::string wire = p.client->take_output();
  {
    TlsTransport::Lend lend(*p.server, wire.data(), 10);
    p.server.reset();
  }
  SUCCEED("no use after free (run under the sanitizer build)");
}
