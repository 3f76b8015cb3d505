// Private key file permissions (issue #11, [process] key_permissions): which modes and owners
// load_private_key refuses, the `PATH: reason` it gives, and that "warn" loads the same file.

#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <string>

#include "certs/demo_pki.h"
#include "certs/pem.h"
#include "tests/support/support.h"

using namespace fp::certs;
using fp::config::KeyPermissions;

TEST_CASE("key_mode_violation: others never, group only read, only on a root-owned key", "[fast][keys]") {
  for (unsigned mode : {0600u, 0400u, 0700u}) {
    CHECK(key_mode_violation(mode, 1000).empty());
    CHECK(key_mode_violation(mode, 0).empty());
  }
  CHECK(key_mode_violation(0640, 0).empty());  // Kubernetes fsGroup / ssl-cert group
  CHECK(key_mode_violation(0440, 0).empty());
  CHECK(key_mode_violation(0100640, 0).empty());  // st_mode type bits are ignored
  CHECK(key_mode_violation(0640, 1000) ==
        "private key file is accessible by its group (mode 0640); chmod 600, or make it root-owned with mode 640 or "
        "stricter");
  CHECK_FALSE(key_mode_violation(0660, 0).empty());  // group-writable, even for root
  CHECK_FALSE(key_mode_violation(0610, 0).empty());
  CHECK(key_mode_violation(0644, 0) ==
        "private key file is accessible by others (mode 0644); chmod 600 (or 640 with a root owner and a dedicated "
        "group)");
  CHECK_FALSE(key_mode_violation(0601, 1000).empty());
  CHECK_FALSE(key_mode_violation(0604, 0).empty());
}

TEST_CASE("load_private_key refuses an open key file as `PATH: reason`, warn loads it", "[fast][keys]") {
  fp::test::TempDir tmp("fp-keyperm");
  const std::string dir = tmp.file("pki");
  auto made = make_demo_pki(dir, false);
  REQUIRE(made);
  const std::string key = dir + "/server.key";
  // Control: the demo key is 0600 and loads.
  REQUIRE(load_private_key(key));
  REQUIRE(::chmod(key.c_str(), 0644) == 0);
  auto refused = load_private_key(key);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == fp::Code::CertInvalid);
  CHECK(refused.error().detail == key + ": private key file is accessible by others (mode 0644); chmod 600 (or 640 "
                                        "with a root owner and a dedicated group), or set [process] key_permissions "
                                        "= \"warn\"");
  auto warned = load_private_key(key, KeyPermissions::Warn);
  REQUIRE(warned);
  CHECK(describe_key(warned->get()) == "EC P-256");
  // A missing file still says why.
  auto missing = load_private_key(dir + "/nope.key");
  REQUIRE_FALSE(missing);
  CHECK(missing.error().detail == dir + "/nope.key: cannot read: No such file or directory");
}
