#pragma once
// The validated, immutable configuration (config::Snapshot) and its loader.
// Reference: config/REFERENCE.md (every key: type, default, meaning). Errors are reported all at
// once, each as `file:line:col: key.path: reason`.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace fp::config {

using Millis = std::chrono::milliseconds;

struct SourceLoc {
  std::string file;
  int line = 0;
  int col = 0;
};

// An endpoint: "127.0.0.1:8080", "[::1]:8443", "host.example:443", "0.0.0.0:8443" or
// "unix:/path/to.sock".
struct Address {
  enum class Kind { Tcp, Unix };
  Kind kind = Kind::Tcp;
  std::string host;  // Tcp: literal IPv4/IPv6 (no brackets) or a DNS name
  uint16_t port = 0;
  std::string path;  // Unix
  std::string text;  // as written in the config

  bool is_unix() const { return kind == Kind::Unix; }
  // True for unix sockets, 127.0.0.0/8, ::1 and "localhost".
  bool is_local() const;
};

// Parses an address as written in the config. On failure returns nullopt and sets `reason`.
std::optional<Address> parse_address(const std::string& text, std::string& reason);

enum class Profile { Strict, Tls12Only, Extended };
const char* profile_name(Profile p);

// [process] key_permissions: what to do with a private key file that others may read.
enum class KeyPermissions { Refuse, Warn };
// [process] seccomp: the action for a syscall outside the allow-list (proxy/sandbox.cc).
enum class SeccompMode { Kill, Log, Off };
const char* seccomp_mode_name(SeccompMode m);  // "kill" | "log" | "off"

// A `tls` block: on a listener it makes the listener a TLS server; on a cluster it makes the
// proxy a TLS client (origination) to the cluster's endpoints.
struct TlsConfig {
  std::string cert;  // PEM chain, leaf first
  std::string key;   // PEM private key
  std::string ca;    // PEM bundle used to verify the peer
  // PEM CRL files checked against the peer's whole chain (every issuer needs a CRL here).
  std::vector<std::string> crl;
  // Server role: require and verify a client certificate (mTLS). Default true.
  bool require_client_cert = true;
  // Peer identity allow-lists; empty lists mean "any identity the CA vouches for".
  // allow_spiffe: exact SPIFFE IDs, or a trust-domain / path prefix ending in '/'.
  // allow_dns: DNS SANs, exact or "*.example.com" (one label).
  std::vector<std::string> allow_spiffe;
  std::vector<std::string> allow_dns;
  std::vector<std::string> alpn;  // e.g. ["h2", "http/1.1"]
  std::string sni;                // client role: SNI sent (default: endpoint host if a DNS name)
  Profile profile = Profile::Strict;
  uint16_t min_version = 0x0303;  // TLS 1.2
  uint16_t max_version = 0x0304;  // TLS 1.3
  // Copied from [process] key_permissions into every tls block by the loader, so certs/ can
  // apply it wherever it reads `key` (load, reload, rotation, `check`).
  KeyPermissions key_permissions = KeyPermissions::Refuse;
  SourceLoc loc;                  // where the block starts
};

// Identity allow-lists of [listener.http] and its routes (mode = "http1"): exact matches only.
struct IdentityAllow {
  std::vector<std::string> spiffe_ids;     // exact SPIFFE IDs ("spiffe://td/path")
  std::vector<std::string> trust_domains;  // "td": any well-formed SPIFFE ID "spiffe://td/..."
  std::vector<std::string> dns;            // exact DNS SANs (ASCII case-insensitive)
  bool empty() const { return spiffe_ids.empty() && trust_domains.empty() && dns.empty(); }
};

// [[listener.http.route]]: requests whose path is under `prefix` (segment-aware; the longest
// prefix wins) need a client certificate matching `allow`.
struct HttpRoute {
  std::string prefix;
  IdentityAllow allow;
  SourceLoc loc;
};

// [listener.http]: request parser limits and identity authorization (mode = "http1").
struct HttpOptions {
  uint64_t max_header_bytes = 60 * 1024;  // request line + fields + CRLFs -> 431
  uint32_t max_headers = 100;             // field lines -> 431
  uint64_t max_uri_bytes = 8 * 1024;      // request-target -> 414
  uint64_t max_body_bytes = 64ull << 20;  // Content-Length or chunk data -> 413
  IdentityAllow allow;                    // default for paths no route covers
  std::vector<HttpRoute> routes;
  // 421 when Host is not the TLS SNI (filters/http1/sni_host.h): on listeners that require a
  // client certificate (Mtls), on every TLS listener (Always), or never (Off, the default: a
  // sidecar's peers send the SNI of their cluster.tls.sni with the Host their app used).
  enum class SniHostCheck { Mtls, Always, Off } sni_host_check = SniHostCheck::Off;
};

// tcp mode: a PROXY protocol header sent to the upstream before the first forwarded byte.
enum class ProxyProtocol { Off, V2 };

enum class Mode { Tcp, Http1 };
const char* mode_name(Mode m);  // "tcp" | "http1"

struct Listener {
  std::string name;
  Address address;
  std::string cluster;
  Mode mode = Mode::Tcp;
  std::optional<TlsConfig> tls;  // absent: plaintext listener (loopback/UDS unless allowed)
  uint32_t max_connections = 10000;
  Millis handshake_timeout{10000};
  Millis idle_timeout{300000};
  // http1: from the first byte of a request to the end of its head (slowloris, RELIABILITY C16).
  Millis request_header_timeout{10000};
  bool allow_remote_plaintext = false;
  HttpOptions http;                          // mode = "http1"
  ProxyProtocol proxy_protocol = ProxyProtocol::Off;  // mode = "tcp"
  // mode = "http1" without a cluster: each request goes to the host it names, if [egress]
  // allows it (TLS originated by us under the FIPS policy).
  bool egress = false;
  SourceLoc loc;
};

enum class LbPolicy { RoundRobin, LeastRequest, Random };
const char* lb_policy_name(LbPolicy p);

// Active health checks, run from the control thread against every endpoint.
struct HealthCheck {
  enum class Type { Tcp, Tls, Http };
  Type type = Type::Tcp;
  Millis interval{5000};
  Millis timeout{2000};
  unsigned healthy_threshold = 2;    // consecutive passes to mark an endpoint up
  unsigned unhealthy_threshold = 3;  // consecutive failures to mark it down
  std::string path = "/";            // http
  std::string host;                  // http Host header (default: the endpoint host)
  int status_min = 200, status_max = 399;
};

// Passive outlier ejection: consecutive connect failures eject an endpoint for a back-off that
// doubles with each ejection, capped; never more than max_ejection_percent of a cluster.
struct OutlierDetection {
  unsigned consecutive_failures = 5;
  Millis base_ejection{30000};
  Millis max_ejection{300000};
  unsigned max_ejection_percent = 50;
};

// static: the listed endpoints. original_dst: no endpoints; each connection goes to the address
// the client dialled before an iptables REDIRECT brought it to the listener (SO_ORIGINAL_DST,
// proxy/original_dst.h), optionally on `port` instead of the original port.
enum class ClusterType { Static, OriginalDst };

struct Cluster {
  std::string name;
  ClusterType type = ClusterType::Static;
  uint16_t port = 0;  // original_dst: connect to this port instead (0 = the original port)
  std::vector<Address> endpoints;
  std::vector<uint32_t> weights;  // one per endpoint (default 1)
  LbPolicy lb_policy = LbPolicy::RoundRobin;
  unsigned connect_retries = 1;   // further endpoints tried after a connect error or timeout
  bool no_healthy_use_all = false;  // no healthy endpoint: false = fail fast, true = use all
  std::optional<HealthCheck> health_check;
  std::optional<OutlierDetection> outlier_detection;
  std::optional<TlsConfig> tls;  // origination; absent: plaintext (loopback/UDS unless allowed)
  Millis connect_timeout{5000};
  bool allow_remote_plaintext = false;
  // http1 listeners: idle upstream connections kept per worker and endpoint for reuse.
  uint32_t max_idle_connections = 16;  // 0: never reuse (one upstream per request exchange)
  Millis idle_connection_timeout{60000};
  SourceLoc loc;
};

struct Limits {
  uint64_t high_watermark = 1 << 20;  // bytes queued to one side before reading the other stops
  uint64_t low_watermark = 256 << 10; // reading resumes below this
};

// The admin endpoint (health, readiness, metrics, FIPS evidence, reload, drain): a Unix socket
// or a loopback address, or any address with [admin.tls] (mTLS).
struct Admin {
  Address address;
  uint32_t max_connections = 16;  // its own budget, apart from the data listeners
  // mTLS under the same FIPS policy; required for an address that is not a Unix socket or
  // loopback.
  std::optional<TlsConfig> tls;
};

// [fips]: runtime evidence settings.
struct Fips {
  Millis selfprobe_interval{60000};  // in-memory policy probe of every live context
  std::string baseline;              // fips-status --json report to compare with at startup
  bool require_kernel_fips = false;  // refuse to start unless /proc/sys/crypto/fips_enabled = 1
};

// [audit]: the hash-chained handshake audit log.
struct Audit {
  std::string path;
  uint64_t max_bytes = 64ull << 20;  // rotate before the live file would exceed this
  unsigned keep = 5;                 // files kept, the live one included
};

// [process]: process hardening (proxy/sandbox.h). Applied once at startup; a reload that
// changes it logs that a restart is needed.
struct ProcessSettings {
  std::string user;   // drop to this user (name or numeric uid) after binding; "" = stay
  std::string group;  // and this group; "" = the user's primary group
  SourceLoc user_loc, group_loc;
  bool allow_root = false;  // run as uid 0 without `user`
  SeccompMode seccomp = SeccompMode::Kill;
  KeyPermissions key_permissions = KeyPermissions::Refuse;
};

// [[egress.destination]]: an external host the app may call through an egress listener.
struct EgressDestination {
  std::string host;               // exact DNS name or IP literal, or "*.suffix" (one or more labels)
  std::vector<uint16_t> ports;    // ports the request may name (default 80 and 443)
  uint16_t upstream_port = 0;     // 0: the requested port, with 80 (or none) mapped to 443
  TlsConfig tls;                  // client role: ca (default egress.ca), optional cert/key, sni
  SourceLoc loc;
};

// [egress]: defaults for every destination; default deny (no destination, no traffic).
struct Egress {
  std::string ca;                       // default CA bundle (the system bundle unless set)
  Millis connect_timeout{5000};         // TCP connect + TLS handshake
  Millis dns_ttl{30000};                // how long a resolved address is reused
  uint32_t max_idle_per_destination = 8;  // pooled idle connections per worker and host:port
  Millis idle_connection_timeout{60000};
  std::vector<EgressDestination> destinations;
  SourceLoc loc;
};

struct Snapshot {
  std::string path;      // the main config file
  unsigned workers = 0;  // 0 = number of CPUs
  std::string log_level = "info";
  std::string access_log = "stderr";  // "stderr", "off", or a file path (JSON lines)
  Millis drain_timeout{30000};
  Limits limits;
  std::optional<Admin> admin;
  Fips fips;
  std::optional<Audit> audit;
  ProcessSettings process;
  std::vector<Listener> listeners;
  std::vector<Cluster> clusters;
  std::optional<Egress> egress;

  const Cluster* find_cluster(const std::string& name) const;
};

struct ConfigError {
  SourceLoc loc;
  std::string key;  // dotted path, e.g. "listener[0].tls.cert"
  std::string reason;
  // "file:line:col: key: reason". `key` is empty only for errors about the whole file (TOML
  // syntax, unreadable file); then it is "file:line:col: reason". Listener and cluster keys use
  // the index in file order: "listener[0].tls.cert", "cluster[1].endpoints[0]".
  std::string str() const;
};

struct LoadResult {
  std::optional<Snapshot> snapshot;  // set only when errors is empty
  std::vector<ConfigError> errors;
};

// Reads, parses and validates `path`. Relative cert/key/ca paths resolve against the config
// file's directory. Never throws.
LoadResult load_file(const std::string& path);
// Same, from text (tests); `name` is used as the file name in errors and `base_dir` resolves
// relative paths.
LoadResult load_string(const std::string& text, const std::string& name, const std::string& base_dir);

// Every key path the schema accepts, tables included ("workers", "limits", "listener.tls",
// "listener.tls.cert", ...), in schema order. Array elements are written without an index. Each
// one is documented in config/REFERENCE.md (a test checks it).
std::vector<std::string> documented_keys();

}  // namespace fp::config
