// Table-driven config errors (issue #6): one bad value per key (at least), each asserting the
// exact `file:line:col: key` prefix and a fragment of the reason, against a full config in which
// every key sits on a known line.

#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "config/config.h"

namespace fs = std::filesystem;
using namespace fp::config;

namespace {

// Line N of the base config is kBase[N - 1].
const std::vector<std::string> kBase = {
    "workers = 2",                                   // 1
    "log_level = \"info\"",                          // 2
    "access_log = \"stderr\"",                       // 3
    "drain_timeout = \"30s\"",                       // 4
    "[limits]",                                      // 5
    "high_watermark = \"1MiB\"",                     // 6
    "low_watermark = \"256KiB\"",                    // 7
    "[admin]",                                       // 8
    "address = \"127.0.0.1:9901\"",                  // 9
    "max_connections = 16",                          // 10
    "[fips]",                                        // 11
    "selfprobe_interval = \"60s\"",                  // 12
    "[[listener]]",                                  // 13
    "name = \"in\"",                                 // 14
    "address = \"127.0.0.1:8443\"",                  // 15
    "cluster = \"app\"",                             // 16
    "mode = \"tcp\"",                                // 17
    "max_connections = 100",                         // 18
    "handshake_timeout = \"10s\"",                   // 19
    "idle_timeout = \"300s\"",                       // 20
    "allow_remote_plaintext = false",                // 21
    "[listener.tls]",                                // 22
    "cert = \"certs/server.pem\"",                   // 23
    "key = \"certs/server.key\"",                    // 24
    "ca = \"certs/ca.pem\"",                         // 25
    "crl = [\"certs/ca.crl\"]",                      // 26
    "require_client_cert = true",                    // 27
    "allow_spiffe = [\"spiffe://example.org/\"]",    // 28
    "allow_dns = [\"client.example.org\"]",          // 29
    "alpn = [\"h2\"]",                               // 30
    "profile = \"strict\"",                          // 31
    "min_version = \"1.2\"",                         // 32
    "max_version = \"1.3\"",                         // 33
    "[[cluster]]",                                   // 34
    "name = \"app\"",                                // 35
    "endpoints = [\"127.0.0.1:9000\"]",              // 36
    "connect_timeout = \"5s\"",                      // 37
    "allow_remote_plaintext = false",                // 38
    "[cluster.tls]",                                 // 39
    "cert = \"certs/client.pem\"",                   // 40
    "key = \"certs/client.key\"",                    // 41
    "ca = \"certs/ca.pem\"",                         // 42
    "crl = [\"certs/ca.crl\"]",                      // 43
    "sni = \"backend.example.org\"",                 // 44
    "allow_spiffe = [\"spiffe://example.org/ns/x\"]", // 45
    "allow_dns = [\"backend.example.org\"]",         // 46
    "alpn = [\"h2\"]",                               // 47
    "profile = \"strict\"",                          // 48
    "min_version = \"1.2\"",                         // 49
    "max_version = \"1.3\"",                         // 50
    "[cluster.health_check]",                        // 51
    "type = \"tcp\"",                                // 52
    "interval = \"5s\"",                             // 53
    "timeout = \"2s\"",                              // 54
    "healthy_threshold = 2",                         // 55
    "unhealthy_threshold = 3",                       // 56
    "path = \"/healthz\"",                           // 57
    "host = \"backend.example.org\"",                // 58
    "expected_status = [200, 399]",                  // 59
    "[cluster.outlier_detection]",                   // 60
    "consecutive_failures = 5",                      // 61
    "base_ejection = \"30s\"",                       // 62
    "max_ejection = \"300s\"",                       // 63
    "max_ejection_percent = 50",                     // 64
    // A second listener, in http1 mode, with [listener.http] and one route (issue #8).
    "[[listener]]",                                  // 65
    "name = \"web\"",                                // 66
    "address = \"127.0.0.1:8444\"",                  // 67
    "cluster = \"app\"",                             // 68
    "mode = \"http1\"",                              // 69
    "idle_timeout = \"300s\"",                       // 70
    "[listener.http]",                               // 71
    "max_header_bytes = \"16KiB\"",                  // 72
    "max_headers = 50",                              // 73
    "max_uri_bytes = \"4KiB\"",                      // 74
    "max_body_bytes = \"1MiB\"",                     // 75
    "allow_spiffe_ids = [\"spiffe://example.org/ns/a/sa/b\"]",// 76
    "allow_trust_domains = [\"example.org\"]",       // 77
    "allow_dns = [\"client.example.org\"]",          // 78
    "[[listener.http.route]]",                       // 79
    "prefix = \"/admin\"",                           // 80
    "allow_spiffe_ids = [\"spiffe://example.org/ns/ops/sa/admin\"]",// 81
    "allow_trust_domains = [\"ops.example.org\"]",   // 82
    "allow_dns = [\"admin.example.org\"]",           // 83
    // [egress] and one destination (issue #13).
    "[egress]",                                      // 84
    "connect_timeout = \"5s\"",                      // 85
    "dns_ttl = \"30s\"",                             // 86
    "max_idle_per_destination = 8",                  // 87
    "idle_connection_timeout = \"60s\"",             // 88
    "ca = \"certs/ca.pem\"",                         // 89
    "[[egress.destination]]",                        // 90
    "host = \"api.example.com\"",                    // 91
    "ports = [443]",                                 // 92
    "upstream_port = 443",                           // 93
    "ca = \"certs/ca.pem\"",                         // 94
    "sni = \"api.example.com\"",                     // 95
    "cert = \"certs/client.pem\"",                   // 96
    "key = \"certs/client.key\"",                    // 97
};

struct Case {
  int line;              // the base line replaced (several from here if `text` has several)
  std::string text;      // its replacement ("" removes the key: a comment takes its place)
  std::string expected;  // exact "x.toml:L:C: key" prefix of the single error
  std::string reason;    // a fragment of the reason
  size_t count = 1;      // errors expected (the first is checked)
};

const std::string kLongUds = "unix:/" + std::string(120, 'u');

const std::vector<Case> kCases = {
    // upstream keep-alive pool and egress (issues #8, #13)
    {38, "max_idle_connections = -1", "x.toml:38:24: cluster[0].max_idle_connections", "must be between 0 and 1024"},
    {38, "idle_connection_timeout = \"soon\"", "x.toml:38:27: cluster[0].idle_connection_timeout", "invalid duration 'soon'"},
    {17, "egress = 1", "x.toml:17:10: listener[0].egress", "expected a boolean, got integer"},
    {85, "connect_timeout = \"x\"", "x.toml:85:19: egress.connect_timeout", "invalid duration 'x'"},
    {86, "dns_ttl = 0", "x.toml:86:11: egress.dns_ttl", "duration must be > 0"},
    {87, "max_idle_per_destination = 2000", "x.toml:87:28: egress.max_idle_per_destination", "must be between 0 and 1024"},
    {88, "idle_connection_timeout = \"x\"", "x.toml:88:27: egress.idle_connection_timeout", "invalid duration 'x'"},
    {89, "ca = \"certs/missing.pem\"", "x.toml:89:6: egress.ca", "no such file"},
    {91, "host = \"bad host\"", "x.toml:91:8: egress.destination[0].host", "is not a DNS name"},
    {92, "ports = [0]", "x.toml:92:10: egress.destination[0].ports[0]", "must be between 1 and 65535"},
    {93, "upstream_port = 70000", "x.toml:93:17: egress.destination[0].upstream_port", "must be between 1 and 65535"},
    {94, "ca = \"certs/missing.pem\"", "x.toml:94:6: egress.destination[0].ca", "no such file"},
    {95, "sni = \"*.x\"", "x.toml:95:7: egress.destination[0].sni", "is not a DNS name"},
    {96, "cert = \"certs/missing.pem\"", "x.toml:96:8: egress.destination[0].cert", "no such file"},
    {97, "key = \"certs/missing.key\"", "x.toml:97:7: egress.destination[0].key", "no such file"},
    // load balancing (issue #9): cluster-level keys take the place of line 38
    {38, "weights = [0]", "x.toml:38:12: cluster[0].weights[0]", "must be between 1 and 1000"},
    {38, "weights = [1, 2]", "x.toml:38:11: cluster[0].weights", "has 2 entries for 1 endpoints"},
    {38, "lb_policy = \"fastest\"", "x.toml:38:13: cluster[0].lb_policy", "unknown lb_policy 'fastest'"},
    {38, "lb_policy = \"least_requests\"", "x.toml:38:13: cluster[0].lb_policy", "(did you mean 'least_request'?)"},
    {38, "connect_retries = 9", "x.toml:38:19: cluster[0].connect_retries", "must be between 0 and 5"},
    {38, "no_healthy = \"panic\"", "x.toml:38:14: cluster[0].no_healthy", "expected \"fail\" or \"use_all\""},
    // cluster type (issue #12); original_dst's own rules: tests/unit/config/original_dst_config_test.cc
    {38, "type = \"dynamic\"", "x.toml:38:8: cluster[0].type", "unknown cluster type 'dynamic'"},
    {38, "port = 8443", "x.toml:38:8: cluster[0].port", "only valid with type = \"original_dst\""},
    {52, "type = \"icmp\"", "x.toml:52:8: cluster[0].health_check.type", "expected \"tcp\", \"tls\" or \"http\""},
    {53, "interval = \"soon\"", "x.toml:53:12: cluster[0].health_check.interval", "invalid duration 'soon'"},
    {54, "timeout = 0", "x.toml:54:11: cluster[0].health_check.timeout", "duration must be > 0"},
    {55, "healthy_threshold = 0", "x.toml:55:21: cluster[0].health_check.healthy_threshold", "must be between 1 and 100"},
    {56, "unhealthy_threshold = 101", "x.toml:56:23: cluster[0].health_check.unhealthy_threshold", "must be between 1 and 100"},
    {57, "path = \"healthz\"", "x.toml:57:8: cluster[0].health_check.path", "must start with '/'"},
    {58, "host = 5", "x.toml:58:8: cluster[0].health_check.host", "expected a string, got integer"},
    {59, "expected_status = [500, 200]", "x.toml:59:19: cluster[0].health_check.expected_status", "min is greater than max"},
    {59, "expected_status = 200", "x.toml:59:19: cluster[0].health_check.expected_status", "[min, max]"},
    {61, "consecutive_failures = 0", "x.toml:61:24: cluster[0].outlier_detection.consecutive_failures", "must be between 1 and 1000"},
    {62, "base_ejection = \"x\"", "x.toml:62:17: cluster[0].outlier_detection.base_ejection", "invalid duration 'x'"},
    {63, "max_ejection = \"1s\"", "x.toml:60:1: cluster[0].outlier_detection.max_ejection", "must not be less than base_ejection"},
    {64, "max_ejection_percent = 101", "x.toml:64:24: cluster[0].outlier_detection.max_ejection_percent", "must be between 0 and 100"},
    // [fips] baseline / require_kernel_fips take the place of line 12
    {12, "baseline = \"/nonexistent/baseline.json\"", "x.toml:12:12: fips.baseline", "does not exist"},
    {12, "require_kernel_fips = \"yes\"", "x.toml:12:23: fips.require_kernel_fips", "expected a boolean"},
    // [process] takes the place of [fips] (lines 11-12)
    {11, "[process]\nuser = 5", "x.toml:12:8: process.user", "expected a string, got integer"},
    {11, "[process]\nuser = \"bad name\"", "x.toml:12:8: process.user", "is not a valid user name or numeric id"},
    {11, "[process]\ngroup = \"-wheel\"", "x.toml:12:9: process.group", "is not a valid group name or numeric id"},
    {11, "[process]\nallow_root = \"yes\"", "x.toml:12:14: process.allow_root", "expected a boolean"},
    {11, "[process]\nseccomp = \"strict\"", "x.toml:12:11: process.seccomp", "expected \"kill\", \"log\" or \"off\""},
    {11, "[process]\nkey_permissions = \"ignore\"", "x.toml:12:19: process.key_permissions",
     "expected \"refuse\" or \"warn\""},
    {11, "[process]\nuid = 0", "x.toml:12:1: process.uid", "unknown key 'uid'"},
    // top level
    {1, "workers = \"x\"", "x.toml:1:11: workers", "expected an integer, got string"},
    {1, "workers = 300", "x.toml:1:11: workers", "must be between 0 and 256"},
    {1, "wrokers = 2", "x.toml:1:1: wrokers", "unknown key 'wrokers' (did you mean 'workers'?)"},
    {1, "include = [5]", "x.toml:1:12: include[0]", "expected a string, got integer"},
    {1, "include = \"conf.d\"", "x.toml:1:11: include", "expected an array of strings"},
    {1, "include = [\"missing.toml\"]", "x.toml:1:12: include[0]", "cannot read 'missing.toml': no such file"},
    {2, "log_level = \"verbose\"", "x.toml:2:13: log_level", "unknown log level 'verbose'"},
    {2, "log_level = \"debg\"", "x.toml:2:13: log_level", "(did you mean 'debug'?)"},
    {2, "log_level = 3", "x.toml:2:13: log_level", "expected a string, got integer"},
    {3, "access_log = \"\"", "x.toml:3:14: access_log", "must be \"stderr\", \"off\" or a file path"},
    {3, "access_log = \"/nonexistent-dir/a.log\"", "x.toml:3:14: access_log", "directory '/nonexistent-dir' does not exist"},
    {3, "access_log = false", "x.toml:3:14: access_log", "expected a string, got boolean"},
    {4, "drain_timeout = \"5 minutes\"", "x.toml:4:17: drain_timeout", "invalid duration '5 minutes'"},
    {4, "drain_timeout = 0", "x.toml:4:17: drain_timeout", "duration must be > 0 and <= 24h"},
    {4, "drain_timeout = \"25h\"", "x.toml:4:17: drain_timeout", "duration must be > 0 and <= 24h"},
    {4, "drain_timeout = 1.5", "x.toml:4:17: drain_timeout", "expected a duration string or an integer of seconds"},
    // [limits]
    {6, "high_watermark = \"1MB\"", "x.toml:6:18: limits.high_watermark", "invalid size '1MB'"},
    {6, "high_watermark = 0", "x.toml:6:18: limits.high_watermark", "size must be > 0 and <= 4GiB"},
    {7, "low_watermark = \"2MiB\"", "x.toml:7:17: limits.low_watermark", "must be less than high_watermark"},
    {7, "low_watermark = true", "x.toml:7:17: limits.low_watermark", "expected a size"},
    {7, "low_water = 1", "x.toml:7:1: limits.low_water", "unknown key 'low_water'"},
    // [admin]
    {9, "address = \"10.0.0.1:9901\"", "x.toml:9:11: admin.address", "must be a Unix socket or a loopback address"},
    {9, "address = \"nope\"", "x.toml:9:11: admin.address", ""},
    {9, "# no address", "x.toml:8:1: admin.address", "required in a [admin]"},
    {10, "max_connections = 0", "x.toml:10:19: admin.max_connections", "must be between 1 and 1024"},
    // [fips]
    {12, "selfprobe_interval = \"fast\"", "x.toml:12:22: fips.selfprobe_interval", "invalid duration 'fast'"},
    {12, "require_kernel_fips = \"yes\"", "x.toml:12:23: fips.require_kernel_fips", "expected a boolean"},
    {12, "baseline = \"missing.json\"", "x.toml:12:12: fips.baseline", "does not exist"},
    {12, "self_probe = \"1s\"", "x.toml:12:1: fips.self_probe", "unknown key 'self_probe'"},
    // [[listener]]
    {14, "name = \"bad name\"", "x.toml:14:8: listener[0].name", "is not a valid name"},
    {14, "name = 5", "x.toml:14:8: listener[0].name", "expected a string, got integer"},
    {14, "# no name", "x.toml:13:1: listener[0].name", "required in a [[listener]]"},
    {15, "address = \"127.0.0.1\"", "x.toml:15:11: listener[0].address", ""},
    {15, "address = \"" + kLongUds + "\"", "x.toml:15:11: listener[0].address", "the limit is 107 (sun_path)"},
    {15, "# no address", "x.toml:13:1: listener[0].address", "required in a [[listener]]"},
    {16, "cluster = \"ap\"", "x.toml:16:11: listener[0].cluster", "no cluster named 'ap' (did you mean 'app'?)"},
    {16, "cluster = [\"app\"]", "x.toml:16:11: listener[0].cluster", "expected a string, got array"},
    {17, "mode = \"http2\"", "x.toml:17:8: listener[0].mode", "unknown mode 'http2'"},
    {18, "max_connections = 0", "x.toml:18:19: listener[0].max_connections", "must be between 1 and 1000000"},
    {18, "max_connections = 2000000", "x.toml:18:19: listener[0].max_connections", "must be between 1 and 1000000"},
    {18, "max_conections = 5", "x.toml:18:1: listener[0].max_conections", "(did you mean 'max_connections'?)"},
    {19, "handshake_timeout = \"10\"", "x.toml:19:21: listener[0].handshake_timeout", "invalid duration '10'"},
    {20, "idle_timeout = -1", "x.toml:20:16: listener[0].idle_timeout", "duration must be > 0"},
    {21, "request_header_timeout = \"soon\"", "x.toml:21:26: listener[0].request_header_timeout", "invalid duration 'soon'"},
    {21, "allow_remote_plaintext = \"no\"", "x.toml:21:26: listener[0].allow_remote_plaintext", "expected a boolean"},
    // [listener.http] and [[listener.http.route]] (issue #8), listener[1] from line 65
    {21, "http = { max_headers = 5 }", "x.toml:21:8: listener[0].http", "only valid with mode = \"http1\""},
    {21, "proxy_protocol = \"v1\"", "x.toml:21:18: listener[0].proxy_protocol", "unknown proxy_protocol 'v1'"},
    {70, "proxy_protocol = \"v2\"", "x.toml:70:18: listener[1].proxy_protocol", "only valid with mode = \"tcp\""},
    {72, "max_header_bytes = 100", "x.toml:72:20: listener[1].http.max_header_bytes", "between 1KiB and 1MiB"},
    {72, "max_header_bytes = \"2MiB\"", "x.toml:72:20: listener[1].http.max_header_bytes", "between 1KiB and 1MiB"},
    {73, "max_headers = 0", "x.toml:73:15: listener[1].http.max_headers", "must be between 1 and 1000"},
    {74, "max_uri_bytes = \"32KiB\"", "x.toml:74:17: listener[1].http.max_uri_bytes", "must not exceed max_header_bytes"},
    {74, "max_uri_bytes = 10", "x.toml:74:17: listener[1].http.max_uri_bytes", "between 64 and 1MiB"},
    {75, "max_body_bytes = \"lots\"", "x.toml:75:18: listener[1].http.max_body_bytes", "invalid size 'lots'"},
    {75, "sni_host_check = \"strict\"", "x.toml:75:18: listener[1].http.sni_host_check", "unknown sni_host_check 'strict'"},
    {75, "sni_host_check = true", "x.toml:75:18: listener[1].http.sni_host_check", "expected a string, got boolean"},
    {76, "allow_spiffe_ids = [\"spiffe://example.org/ns/\"]", "x.toml:76:21: listener[1].http.allow_spiffe_ids[0]", "is not a SPIFFE ID"},
    {76, "allow_spiffe_ids = [\"spiffe://Example.org/x\"]", "x.toml:76:21: listener[1].http.allow_spiffe_ids[0]", "is not a SPIFFE ID"},
    {76, "allow_spiffe_ids = [\"spiffe://example.org/a/../b\"]", "x.toml:76:21: listener[1].http.allow_spiffe_ids[0]", "is not a SPIFFE ID"},
    {77, "allow_trust_domains = [\"spiffe://example.org\"]", "x.toml:77:24: listener[1].http.allow_trust_domains[0]", "is not a SPIFFE trust domain"},
    {78, "allow_dns = [\"*.example.org\"]", "x.toml:78:14: listener[1].http.allow_dns[0]", "is not an exact DNS name"},
    {78, "allow_dns = \"client.example.org\"", "x.toml:78:13: listener[1].http.allow_dns", "expected an array of strings"},
    {78, "max_body = 5", "x.toml:78:1: listener[1].http.max_body", "unknown key 'max_body'"},
    {80, "prefix = \"admin\"", "x.toml:80:10: listener[1].http.route[0].prefix", "must start with '/'"},
    {80, "prefix = \"/a/../b\"", "x.toml:80:10: listener[1].http.route[0].prefix", "must be normalized"},
    {80, "prefix = \"/a%2Fb\"", "x.toml:80:10: listener[1].http.route[0].prefix", "must be a plain path"},
    {80, "# no prefix", "x.toml:79:1: listener[1].http.route[0].prefix", "required in a [[listener.http.route]]"},
    {82, "[[listener.http.route]]\nprefix = \"/admin\"", "x.toml:83:10: listener[1].http.route[1].prefix", "duplicate prefix '/admin'"},
    {81, "# a\n# b\n# c", "x.toml:79:1: listener[1].http.route[0]", "a route needs at least one entry"},
    {81, "allow_spiffe_ids = [\"example.org\"]", "x.toml:81:21: listener[1].http.route[0].allow_spiffe_ids[0]", "is not a SPIFFE ID"},
    {82, "allow_trust_domains = [\"Ops.example.org\"]", "x.toml:82:24: listener[1].http.route[0].allow_trust_domains[0]", "is not a SPIFFE trust domain"},
    {83, "allow_dns = [\"admin.example.org.\"]", "x.toml:83:14: listener[1].http.route[0].allow_dns[0]", "is not an exact DNS name"},
    {83, "priority = 1", "x.toml:83:1: listener[1].http.route[0].priority", "unknown key 'priority'"},
    // [listener.tls]
    {23, "cert = \"certs/missing.pem\"", "x.toml:23:8: listener[0].tls.cert", "no such file"},
    {23, "cert = \"certs\"", "x.toml:23:8: listener[0].tls.cert", "not a regular file"},
    {23, "# no cert", "x.toml:22:1: listener[0].tls.cert", "required in a listener tls block"},
    {24, "key = \"\"", "x.toml:24:7: listener[0].tls.key", "must not be empty"},
    {24, "# no key", "x.toml:22:1: listener[0].tls.key", "required in a listener tls block (with cert)"},
    {25, "ca = 1", "x.toml:25:6: listener[0].tls.ca", "expected a string, got integer"},
    {25, "# no ca", "x.toml:22:1: listener[0].tls.ca", "required when require_client_cert = true"},
    {26, "crl = [\"certs/missing.crl\"]", "x.toml:26:8: listener[0].tls.crl[0]", "no such file"},
    {26, "crl = \"certs/ca.crl\"", "x.toml:26:7: listener[0].tls.crl", "expected an array of strings"},
    {26, "crl = [\"\"]", "x.toml:26:8: listener[0].tls.crl[0]", "must not be empty"},
    {27, "require_client_cert = \"yes\"", "x.toml:27:23: listener[0].tls.require_client_cert", "expected a boolean"},
    {28, "allow_spiffe = [\"example.org\"]", "x.toml:28:17: listener[0].tls.allow_spiffe[0]", "is not a SPIFFE ID"},
    {28, "allow_spiffe = \"spiffe://x/\"", "x.toml:28:16: listener[0].tls.allow_spiffe", "expected an array of strings"},
    {29, "allow_dns = [\"*.*.example.org\"]", "x.toml:29:14: listener[0].tls.allow_dns[0]", "is not a DNS name"},
    {30, "alpn = [\"\"]", "x.toml:30:9: listener[0].tls.alpn[0]", "1..255 bytes"},
    {30, "alpn = [\"" + std::string(256, 'a') + "\"]", "x.toml:30:9: listener[0].tls.alpn[0]", "1..255 bytes"},
    {30, "ciphers = [\"TLS_CHACHA20_POLY1305_SHA256\"]", "x.toml:30:1: listener[0].tls.ciphers",
     "TLS_CHACHA20_POLY1305_SHA256 is not approved"},
    {30, "cipher_suites = \"ECDHE-RSA-AES128-GCM-SHA256\"", "x.toml:30:1: listener[0].tls.cipher_suites",
     "remove this key and choose a profile instead"},
    {30, "groups = [\"X25519\"]", "x.toml:30:1: listener[0].tls.groups", "X25519 is not approved"},
    {30, "curves = \"P-256\"", "x.toml:30:1: listener[0].tls.curves", "fixed by the FIPS profile"},
    {30, "sigalgs = [\"rsa_pkcs1_sha1\"]", "x.toml:30:1: listener[0].tls.sigalgs", "rsa_pkcs1_sha1 is not approved"},
    {30, "early_data = true", "x.toml:30:1: listener[0].tls.early_data", "early_data is never allowed"},
    {30, "zero_rtt = true", "x.toml:30:1: listener[0].tls.zero_rtt", "early_data is never allowed"},
    {30, "sni = \"x.example.org\"", "x.toml:30:1: listener[0].tls.sni", "unknown key 'sni'"},
    {31, "profile = \"fips\"", "x.toml:31:11: listener[0].tls.profile", "unknown profile 'fips'"},
    {31, "profile = \"strikt\"", "x.toml:31:11: listener[0].tls.profile", "(did you mean 'strict'?)"},
    {31, "profile = \"tls12-only\"", "x.toml:33:15: listener[0].tls.max_version",
     "profile 'tls12-only' allows TLS 1.2 only"},
    {32, "min_version = \"1.1\"", "x.toml:32:15: listener[0].tls.min_version",
     "TLS 1.1 is not allowed (FIPS policy: TLS 1.2 and 1.3 only)"},
    {32, "min_version = \"TLSv1\"", "x.toml:32:15: listener[0].tls.min_version", "TLS 1.0 is not allowed"},
    {32, "min_version = 1.2", "x.toml:32:15: listener[0].tls.min_version", "expected a string, got float"},
    {33, "max_version = \"1.4\"", "x.toml:33:15: listener[0].tls.max_version", "unknown TLS version '1.4'"},
    {33, "max_version = \"SSLv3\"", "x.toml:33:15: listener[0].tls.max_version", "SSL is not allowed"},
    // [[cluster]]
    {35, "name = \"\"", "x.toml:16:11: listener[0].cluster", "no cluster named 'app'", 3},  // + cluster[0].name, listener[1].cluster
    {36, "endpoints = []", "x.toml:36:13: cluster[0].endpoints", "at least one endpoint is required"},
    {36, "endpoints = [\"127.0.0.1:0\"]", "x.toml:36:14: cluster[0].endpoints[0]", "endpoint port must be 1..65535"},
    {36, "endpoints = [5]", "x.toml:36:14: cluster[0].endpoints[0]", "expected a string, got integer"},
    {36, "endpoints = \"127.0.0.1:9000\"", "x.toml:36:13: cluster[0].endpoints", "expected an array of strings"},
    {36, "# no endpoints", "x.toml:34:1: cluster[0].endpoints", "required in a [[cluster]]"},
    {37, "connect_timeout = \"1d\"", "x.toml:37:19: cluster[0].connect_timeout", "invalid duration '1d'"},
    {38, "allow_remote_plaintext = 1", "x.toml:38:26: cluster[0].allow_remote_plaintext", "expected a boolean"},
    {38, "endpoint = 1", "x.toml:38:1: cluster[0].endpoint", "(did you mean 'endpoints'?)"},
    // [cluster.tls]
    {40, "cert = \"certs/nope.pem\"", "x.toml:40:8: cluster[0].tls.cert", "no such file"},
    {41, "# no key", "x.toml:39:1: cluster[0].tls.key", "required with cert"},
    {42, "ca = \"\"", "x.toml:42:6: cluster[0].tls.ca", "must not be empty"},
    {42, "# no ca", "x.toml:39:1: cluster[0].tls.ca", "required in a cluster tls block"},
    {43, "crl = [1]", "x.toml:43:8: cluster[0].tls.crl[0]", "expected a string, got integer"},
    {43, "crl = [\"certs/missing.crl\"]", "x.toml:43:8: cluster[0].tls.crl[0]", "no such file"},
    {44, "sni = \"127.0.0.1\"", "x.toml:44:7: cluster[0].tls.sni", "is not a DNS name"},
    {44, "sni = \"bad host\"", "x.toml:44:7: cluster[0].tls.sni", "is not a DNS name"},
    {45, "allow_spiffe = [1]", "x.toml:45:17: cluster[0].tls.allow_spiffe[0]", "expected a string, got integer"},
    {46, "allow_dns = [\"bad host\"]", "x.toml:46:14: cluster[0].tls.allow_dns[0]", "is not a DNS name"},
    {47, "alpn = \"h2\"", "x.toml:47:8: cluster[0].tls.alpn", "expected an array of strings"},
    {47, "require_client_cert = true", "x.toml:47:1: cluster[0].tls.require_client_cert",
     "require_client_cert is not valid in a cluster tls block"},
    {47, "early_data = true", "x.toml:47:1: cluster[0].tls.early_data", "early_data is never allowed"},
    {48, "profile = \"loose\"", "x.toml:48:11: cluster[0].tls.profile", "unknown profile 'loose'"},
    {49, "min_version = \"1.0\"", "x.toml:49:15: cluster[0].tls.min_version", "TLS 1.0 is not allowed"},
    {49, "min_version = \"1.3\"\nmax_version = \"1.2\"", "x.toml:49:15: cluster[0].tls.min_version",
     "min_version 1.3 is greater than max_version 1.2"},
    {50, "max_version = 3", "x.toml:50:15: cluster[0].tls.max_version", "expected a string, got integer"},
};

class Dir {
 public:
  Dir() {
    std::string tmpl = (fs::temp_directory_path() / "fp-config-table-XXXXXX").string();
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    path_ = tmpl;
    fs::create_directories(path_ / "certs");
    for (const char* f : {"server.pem", "server.key", "ca.pem", "ca.crl", "client.pem", "client.key"}) {
      std::ofstream(path_ / "certs" / f) << "placeholder\n";
    }
  }
  ~Dir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// Replaces base line `replace_line` (and the next ones, when `text` has several lines) by `text`.
std::string render(int replace_line, const std::string& text) {
  std::vector<std::string> lines = kBase;
  if (replace_line > 0) {
    size_t at = static_cast<size_t>(replace_line - 1), start = 0;
    for (;;) {
      const size_t nl = text.find('\n', start);
      lines.at(at++) = text.substr(start, nl == std::string::npos ? std::string::npos : nl - start);
      if (nl == std::string::npos) break;
      start = nl + 1;
    }
  }
  std::string out;
  for (const auto& l : lines) out += l + "\n";
  return out;
}

}  // namespace

TEST_CASE("table: the base config is valid", "[config][table]") {
  Dir d;
  LoadResult r = load_string(render(0, ""), "x.toml", d.path().string());
  std::string all;
  for (const auto& e : r.errors) all += e.str() + "\n";
  INFO(all);
  REQUIRE(r.snapshot);
  CHECK(r.snapshot->listeners.at(0).tls->crl.size() == 1);
  CHECK(r.snapshot->clusters.at(0).tls->crl.size() == 1);
  const Listener& web = r.snapshot->listeners.at(1);
  CHECK(web.http.max_header_bytes == 16 * 1024);
  CHECK(web.http.max_headers == 50);
  CHECK(web.http.max_uri_bytes == 4 * 1024);
  CHECK(web.http.max_body_bytes == 1 << 20);
  CHECK(web.http.allow.trust_domains == std::vector<std::string>{"example.org"});
  REQUIRE(web.http.routes.size() == 1);
  CHECK(web.http.routes[0].prefix == "/admin");
  CHECK(web.http.routes[0].allow.spiffe_ids == std::vector<std::string>{"spiffe://example.org/ns/ops/sa/admin"});
  CHECK(web.http.routes[0].allow.dns == std::vector<std::string>{"admin.example.org"});
  CHECK(r.snapshot->listeners.at(0).proxy_protocol == ProxyProtocol::Off);
}

TEST_CASE("table: every bad value is one error (the first of `count`) at the exact file:line:col: key", "[config][table]") {
  Dir d;
  REQUIRE(kCases.size() >= 90);
  std::vector<std::string> keys_hit;
  for (const Case& c : kCases) {
    const std::string text = render(c.line, c.text);
    LoadResult r = load_string(text, "x.toml", d.path().string());
    std::string all;
    for (const auto& e : r.errors) all += e.str() + "\n";
    INFO("line " << c.line << " -> " << c.text << "\nerrors:\n" << all);
    CHECK_FALSE(r.snapshot);
    REQUIRE(r.errors.size() == c.count);
    const std::string s = r.errors[0].str();
    CHECK(s.rfind(c.expected + ": ", 0) == 0);
    CHECK(s.find(c.reason) != std::string::npos);
    for (const auto& e : r.errors) keys_hit.push_back(e.key);
  }
  // Every leaf key of the schema has at least one case (array elements count for their key).
  for (const std::string& k : documented_keys()) {
    if (k == "limits" || k == "admin" || k == "fips" || k == "process" || k == "audit" || k.rfind("audit.", 0) == 0 ||
        k == "listener" || k == "cluster" || k == "listener.tls" || k == "cluster.tls" ||
        k == "cluster.health_check" || k == "cluster.outlier_detection" || k == "admin.tls" ||
        k == "listener.http" || k == "listener.http.route" || k == "egress" || k == "egress.destination") {
      continue;  // tables; [audit] is covered by its own tests
    }
    bool hit = false;
    for (std::string h : keys_hit) {
      // "listener[0].tls.crl[0]" -> "listener.tls.crl"
      std::string norm;
      for (size_t i = 0; i < h.size(); ++i) {
        if (h[i] == '[') {
          i = h.find(']', i);
          continue;
        }
        norm += h[i];
      }
      hit = hit || norm == k;
    }
    INFO("no table case for " << k);
    CHECK(hit);
  }
}
