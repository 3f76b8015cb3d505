// FIPS-POLICY §11.4 S4: the admin endpoint shows the module evidence (§10): module name
// BoringCrypto, version 2022061300, the module hash (equal to the one the bootstrap recorded in
// BUILDINFO), self-tests passed, FIPS mode on; and /metrics carries the same as gauges.
#include "tests/integration/policy_matrix_support.h"

using namespace fp::test;
using namespace fp::test::policy;

namespace {

// key=value from the BoringSSL build's BUILDINFO (written by deploy/bootstrap.sh).
std::string buildinfo(const std::string& key) {
  std::istringstream in(read_file(std::string(FP_BORINGSSL_PREFIX) + "/BUILDINFO"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key + "=", 0) == 0) return line.substr(key.size() + 1);
  }
  return "";
}

}  // namespace

TEST_CASE("S4 admin endpoint: /fips and /metrics show BoringCrypto 2022061300, module hash, self-tests, FIPS mode",
          "[policy][fast][startup]") {
  TempDir rec("fpprec");
  AppServer app("tcp:127.0.0.1:0", {"record", rec.path()});
  REQUIRE(app.ok());
  PProxy px;
  REQUIRE(px.start({{"ec", addr(free_tcp_port()), "app", PTls{}}}, {{"app", app.endpoint(), std::nullopt}}));
  const std::string want_hash = buildinfo("module_hash");
  REQUIRE(want_hash.size() == 64);

  HttpReply f = admin_request(px.admin_sock, "GET", "/fips");
  INFO("/fips: " << f.status << " " << f.body);
  REQUIRE(f.status == 200);
  // Parsed with python3's json: the top-level fields and every check's name/ok.
  TempDir d("fps4");
  write_file(d.file("fips.json"), f.body);
  std::string out;
  ExitStatus es = run_command({"python3", "-c",
                               "import json,sys\n"
                               "j = json.load(open(sys.argv[1]))\n"
                               "for k in ('ok','module_name','module_version','fips_mode','module_hash_expected','module_hash_loaded'):\n"
                               "    print(k, json.dumps(j.get(k)))\n"
                               "for c in j.get('checks', []):\n"
                               "    print('check', c['name'], json.dumps(c['ok']))\n",
                               d.file("fips.json")},
                              Millis(10000), &out);
  INFO(out);
  REQUIRE(es.exited);
  REQUIRE(es.code == 0);
  CHECK(out.find("ok true\n") != std::string::npos);
  CHECK(out.find("module_name \"BoringCrypto\"\n") != std::string::npos);
  CHECK(out.find("module_version 2022061300\n") != std::string::npos);
  CHECK(out.find("fips_mode true\n") != std::string::npos);
  CHECK(out.find("module_hash_expected \"" + want_hash + "\"\n") != std::string::npos);
  CHECK(out.find("module_hash_loaded \"" + want_hash + "\"\n") != std::string::npos);
  for (const char* c : {"fips_mode", "module", "self_test", "integrity_test", "module_hash", "algorithms", "drbg",
                        "libssl_patch"}) {
    INFO("check " << c);
    CHECK(out.find(std::string("check ") + c + " true\n") != std::string::npos);
  }
  CHECK(out.find(" false\n") == std::string::npos);
  CHECK(f.body.find("FIPS mode on, self-tests passed") != std::string::npos);
  CHECK(f.body.find("FIPS validated") == std::string::npos);

  const std::string m = px.metrics();
  INFO("/metrics:\n" << m);
  CHECK(prom_value(m, "fipsproxy_fips_mode") == 1);
  CHECK(prom_value(m, "fipsproxy_fips_module_version") == 2022061300);
  CHECK(prom_value(m, "fipsproxy_fips_self_test_passed") == 1);
  CHECK(prom_value(m, "fipsproxy_selfprobe_passed") == 1);
}
