// Shipping artifacts (issue #12): `certs demo` / `certs inspect` through the real binary, the
// example configs pass `fipsproxy check` against a demo PKI, the Kubernetes manifests parse and
// agree with their configs (mounts, sockets, ports, probes, drain), the Dockerfile names files
// that exist and the libraries the binary needs, and the systemd unit passes
// `systemd-analyze verify`.

#include <sys/stat.h>

#include <catch2/catch.hpp>

#include <regex>
#include <set>
#include <string>
#include <vector>

#include "tests/support/harness.h"

using namespace fp::test;
using namespace std::chrono_literals;

namespace {

std::string repo(const std::string& rel) { return std::string(FP_SOURCE_DIR) + "/" + rel; }

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) s.replace(at, from.size(), to);
  return s;
}

bool contains(const std::string& hay, const std::string& needle) { return hay.find(needle) != std::string::npos; }

void make_dir(const std::string& p) { REQUIRE((::mkdir(p.c_str(), 0755) == 0 || errno == EEXIST)); }

int file_mode(const std::string& p) {
  struct stat st {};
  REQUIRE(::stat(p.c_str(), &st) == 0);
  return static_cast<int>(st.st_mode & 07777);
}

bool have_command(const std::string& cmd) {
  return run_command({"sh", "-c", "command -v " + cmd + " >/dev/null 2>&1"}, 10s).code == 0;
}

struct Run {
  ExitStatus st;
  std::string out, err;
};

Run fipsproxy(const std::vector<std::string>& args, Millis timeout = Millis(60000)) {
  Run r;
  std::vector<std::string> argv = {proxy_binary()};
  argv.insert(argv.end(), args.begin(), args.end());
  r.st = run_command(argv, timeout, &r.out, &r.err);
  return r;
}

// A sandbox laid out like a host: TMP/etc (config dir) with TMP/etc/certs from `certs demo`,
// TMP/log and TMP/run standing in for /var/log/fipsproxy and /run/fipsproxy.
struct Sandbox {
  TempDir tmp{"fp-deploy"};
  std::string etc = tmp.file("etc"), certs = tmp.file("etc/certs"), log = tmp.file("log"), run = tmp.file("run");
  Sandbox() {
    make_dir(etc);
    make_dir(log);
    make_dir(run);
    Run r = fipsproxy({"certs", "demo", "--out", certs});
    INFO(r.out << r.err);
    REQUIRE(r.st.exited);
    REQUIRE(r.st.code == 0);
  }
  // The production paths of a config, pointed into the sandbox.
  std::string localize(std::string cfg) const {
    cfg = replace_all(cfg, "/var/log/fipsproxy/", log + "/");
    cfg = replace_all(cfg, "/run/fipsproxy/", run + "/");
    return cfg;
  }
};

// The value of `key = "..."` / `key = N` at the top of a TOML text (first match).
std::string toml_string(const std::string& text, const std::string& key) {
  std::smatch m;
  if (std::regex_search(text, m, std::regex("(^|\n)\\s*" + key + "\\s*=\\s*\"([^\"]*)\""))) return m[2];
  return {};
}

long seconds_of(const std::string& d) {
  if (d.empty()) return 30;  // default drain_timeout
  const long n = std::stol(d);
  if (d.back() == 'm' && d.find("ms") == std::string::npos) return n * 60;
  if (d.find("ms") != std::string::npos) return 0;
  return n;
}

const std::vector<std::string> kExamples = {"sidecar", "sidecar-capture", "edge", "lb"};

}  // namespace

TEST_CASE("certs demo and certs inspect through the binary", "[fast][deploy]") {
  Sandbox sb;
  CHECK(file_mode(sb.certs) == 0700);
  for (const char* f : {"ca.pem", "server.pem", "client.pem", "peer.pem"}) CHECK(file_mode(sb.certs + "/" + f) == 0644);
  for (const char* f : {"server.key", "client.key", "peer.key"}) CHECK(file_mode(sb.certs + "/" + f) == 0600);

  // A second run refuses the non-empty directory (exit 2); --force replaces the files.
  Run again = fipsproxy({"certs", "demo", "--out", sb.certs});
  CHECK(again.st.code == 2);
  CHECK(contains(again.err, sb.certs + ": directory is not empty"));
  Run forced = fipsproxy({"certs", "demo", "--out", sb.certs, "--force"});
  CHECK(forced.st.code == 0);

  Run ok = fipsproxy({"certs", "inspect", sb.certs + "/ca.pem", sb.certs + "/server.pem", sb.certs + "/client.pem",
                      sb.certs + "/peer.pem"});
  INFO(ok.out << ok.err);
  CHECK(ok.st.code == 0);
  CHECK(contains(ok.out, "4 certificate(s), 4 pass, 0 fail"));
  CHECK(contains(ok.out, "URI:spiffe://example.org/ns/default/sa/server"));
  CHECK(contains(ok.out, "IP:::1"));
  CHECK(contains(ok.out, "key:        EC P-256"));
  CHECK(contains(ok.out, "signature:  ecdsa-with-SHA256 (SHA-256)"));
  CHECK(contains(ok.out, "FIPS-POLICY: pass (profile strict)"));

  // A non-compliant certificate (expired) -> 1 with the reason; an unreadable file -> 2.
  Run bad = fipsproxy({"certs", "inspect", cert("expired-client.pem")});
  INFO(bad.out << bad.err);
  CHECK(bad.st.code == 1);
  CHECK(contains(bad.out, "FIPS-POLICY: FAIL (profile strict)"));
  CHECK(contains(bad.out, "certificate expired"));
  const std::string missing = sb.tmp.file("missing.pem");
  Run gone = fipsproxy({"certs", "inspect", missing, sb.certs + "/ca.pem"});
  CHECK(gone.st.code == 2);
  CHECK(contains(gone.err, missing + ": cannot read: No such file or directory"));
  CHECK(contains(gone.out, "FIPS-POLICY: pass"));  // the readable file is still reported
  CHECK(fipsproxy({"certs", "frobnicate"}).st.code == 2);
  CHECK(fipsproxy({"certs", "demo"}).st.code == 2);
}

TEST_CASE("deploy/examples: each passes fipsproxy check against a certs demo PKI", "[fast][deploy]") {
  Sandbox sb;
  for (const std::string& name : kExamples) {
    const std::string text = read_file(repo("deploy/examples/" + name + ".toml"));
    REQUIRE_FALSE(text.empty());
    // Every certificate path is relative to the config dir and one `certs demo` writes.
    std::set<std::string> refs;
    const std::regex ref("\"(certs/[^\"]+)\"");
    for (auto it = std::sregex_iterator(text.begin(), text.end(), ref); it != std::sregex_iterator(); ++it) {
      refs.insert((*it)[1]);
    }
    INFO(name);
    CHECK_FALSE(refs.empty());
    for (const std::string& r : refs) {
      INFO(r);
      CHECK(file_exists(sb.etc + "/" + r));
    }
    const std::string path = sb.etc + "/" + name + ".toml";
    write_file(path, sb.localize(text));
    Run r = fipsproxy({"check", "-c", path});
    INFO(r.out << r.err);
    CHECK(r.st.exited);
    CHECK(r.st.code == 0);
    CHECK(contains(r.out, path + ": ok"));
    // Every example has an admin socket at the path the Dockerfile and the probes use.
    CHECK(contains(text, "address = \"unix:/run/fipsproxy/admin.sock\""));
  }
}

// A Python (PyYAML + tomllib) cross-check of deploy/k8s/*.yaml against the configs they carry.
// Prints "FAIL: ..." per problem and "CONFIG <name> <file>" per extracted config.
static const char kK8sCheck[] = R"PY(
import glob, os, re, sys, tomllib, yaml
src, out = sys.argv[1], sys.argv[2]
docs = []
for f in sorted(glob.glob(os.path.join(src, "deploy/k8s/*.yaml"))):
    for d in yaml.safe_load_all(open(f)):
        if d: docs.append((os.path.basename(f), d))
print("DOCS", len(docs))
def fail(msg): print("FAIL:", msg)
cms = {d["metadata"]["name"]: d for _, d in docs if d["kind"] == "ConfigMap"}
def secs(d):
    m = re.fullmatch(r"(\d+)(ms|s|m|h)?", str(d))
    n, u = int(m.group(1)), m.group(2) or "s"
    return {"ms": n / 1000, "s": n, "m": 60 * n, "h": 3600 * n}[u]
for fname, d in docs:
    if d["kind"] != "Deployment": continue
    name = d["metadata"]["name"]
    spec = d["spec"]["template"]["spec"]
    if d["spec"]["selector"]["matchLabels"].items() - d["spec"]["template"]["metadata"]["labels"].items():
        fail(f"{name}: selector does not match the pod labels")
    vols = {v["name"]: v for v in spec["volumes"]}
    psc = spec.get("securityContext", {})
    for c in spec["containers"]:
        sc = c.get("securityContext", {})
        if not (sc.get("runAsNonRoot") or psc.get("runAsNonRoot")): fail(f"{name}/{c['name']}: runAsNonRoot")
        if sc.get("readOnlyRootFilesystem") is not True: fail(f"{name}/{c['name']}: readOnlyRootFilesystem")
        if sc.get("allowPrivilegeEscalation") is not False: fail(f"{name}/{c['name']}: allowPrivilegeEscalation")
        if "ALL" not in sc.get("capabilities", {}).get("drop", []): fail(f"{name}/{c['name']}: capabilities drop ALL")
        if not c.get("resources", {}).get("requests"): fail(f"{name}/{c['name']}: resource requests")
        for m in c.get("volumeMounts", []):
            if m["name"] not in vols: fail(f"{name}/{c['name']}: mount of unknown volume {m['name']}")
    fp = [c for c in spec["containers"] if c["name"] == "fipsproxy"]
    if len(fp) != 1: fail(f"{name}: no fipsproxy container"); continue
    fp = fp[0]
    mounts = {m["mountPath"]: m for m in fp["volumeMounts"]}
    def vol_at(path_dir):
        m = mounts.get(path_dir)
        return (vols.get(m["name"]), m) if m else (None, None)
    cmd = fp["command"]
    if cmd[:2] != ["/usr/local/bin/fipsproxy", "run"] or "-c" not in cmd: fail(f"{name}: command {cmd}")
    cfg_path = cmd[cmd.index("-c") + 1]
    v, m = vol_at(os.path.dirname(cfg_path))
    if not v or "configMap" not in v: fail(f"{name}: {cfg_path} is not in a ConfigMap mount"); continue
    cm = cms.get(v["configMap"]["name"])
    key = os.path.basename(cfg_path)
    if not cm or key not in cm["data"]: fail(f"{name}: ConfigMap {v['configMap']['name']} has no key {key}"); continue
    text = cm["data"][key]
    cfg = tomllib.loads(text)
    outf = os.path.join(out, name + ".toml")
    open(outf, "w").write(text)
    print("CONFIG", name, outf)
    # Certificates: from a Secret mounted as a directory (no subPath: rotation via ..data swaps).
    blocks = [l.get("tls") for l in cfg.get("listener", [])] + [c.get("tls") for c in cfg.get("cluster", [])]
    for t in filter(None, blocks):
        for k in ("cert", "key", "ca"):
            if k not in t: continue
            v, m = vol_at(os.path.dirname(t[k]))
            if not v or "secret" not in v: fail(f"{name}: {t[k]} is not in a Secret mount")
            elif "subPath" in m: fail(f"{name}: Secret mounted with subPath (no rotation)")
    # Admin socket: an emptyDir; the probes and preStop use it.
    admin = cfg.get("admin", {}).get("address", "")
    if not admin.startswith("unix:"): fail(f"{name}: admin is not a Unix socket"); continue
    sock = admin[5:]
    v, m = vol_at(os.path.dirname(sock))
    if not v or "emptyDir" not in v: fail(f"{name}: admin socket dir is not an emptyDir mount")
    def probe(p):
        c = fp.get(p, {}).get("exec", {}).get("command", [])
        return " ".join(c)
    for p, path in (("readinessProbe", "/ready"), ("livenessProbe", "/healthz")):
        c = probe(p)
        if f"--unix-socket {sock}" not in c or not c.endswith(path): fail(f"{name}: {p} {c!r}")
    pre = " ".join(fp.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", []))
    if "/drain" not in pre or sock not in pre or "POST" not in pre: fail(f"{name}: preStop {pre!r}")
    sl = re.search(r"sleep (\d+)", pre)
    drain = secs(cfg.get("drain_timeout", "30s"))
    if not sl or int(sl.group(1)) < drain: fail(f"{name}: preStop sleep shorter than drain_timeout {drain}")
    grace = spec.get("terminationGracePeriodSeconds", 30)
    if sl and grace <= int(sl.group(1)): fail(f"{name}: terminationGracePeriodSeconds {grace} <= preStop sleep")
    # Audit log dir mounted writable.
    if "audit" in cfg:
        v, m = vol_at(os.path.dirname(cfg["audit"]["path"]))
        if not v or m.get("readOnly"): fail(f"{name}: audit dir not a writable mount")
    # Listener ports are container ports; Services target them.
    ports = {p["containerPort"]: p.get("name") for p in fp.get("ports", [])}
    for l in cfg.get("listener", []):
        host, _, port = l["address"].rpartition(":")
        if host not in ("127.0.0.1", "[::1]", "localhost") and int(port) not in ports:
            fail(f"{name}: listener {l['name']} port {port} is not a containerPort")
    # Unix endpoints: in an emptyDir shared with another container of the pod.
    for c in cfg.get("cluster", []):
        for e in c.get("endpoints", []):
            if not e.startswith("unix:"): continue
            dirn = os.path.dirname(e[5:])
            v, m = vol_at(dirn)
            if not v or "emptyDir" not in v: fail(f"{name}: {e} is not in an emptyDir"); continue
            others = [o for o in spec["containers"] if o is not fp and any(mm["name"] == m["name"] for mm in o.get("volumeMounts", []))]
            if not others: fail(f"{name}: {e}: no other container shares volume {m['name']}")
    # Transparent capture (issue #12): a listener forwarding to an original_dst cluster needs the
    # init container's rules, for that listener's port, exempting exactly fipsproxy's uid.
    odst = {c["name"] for c in cfg.get("cluster", []) if c.get("type") == "original_dst"}
    capture = [l for l in cfg.get("listener", []) if l["cluster"] in odst]
    inits = [c for c in spec.get("initContainers", []) if "fipsproxy-iptables-init" in " ".join(c.get("command", []))]
    if capture and len(inits) != 1: fail(f"{name}: capture listener without one fipsproxy-iptables-init init container")
    if capture and len(inits) == 1:
        ic = inits[0]
        argv = ic["command"] + ic.get("args", [])
        def opt(flag): return argv[argv.index(flag) + 1] if flag in argv else None
        uid = fp.get("securityContext", {}).get("runAsUser", psc.get("runAsUser"))
        if argv[0] != "/usr/local/bin/fipsproxy-iptables-init": fail(f"{name}: init command {argv[0]}")
        if opt("--proxy-uid") != str(uid): fail(f"{name}: --proxy-uid {opt('--proxy-uid')} != fipsproxy runAsUser {uid}")
        for o in spec["containers"]:
            if o is not fp and o.get("securityContext", {}).get("runAsUser", psc.get("runAsUser")) == uid:
                fail(f"{name}/{o['name']}: runs as the proxy uid {uid}: its traffic would escape capture")
        port = int(opt("--outbound-port") or 15001)
        for l in capture:
            host, _, lport = l["address"].rpartition(":")
            if int(lport) != port: fail(f"{name}: capture listener {l['name']} port {lport} != --outbound-port {port}")
            if host not in ("127.0.0.1", "[::1]"): fail(f"{name}: capture listener {l['name']} on {host}")
            if host == "[::1]" and "--ipv6" not in argv: fail(f"{name}: [::1] capture listener without --ipv6")
        isc = ic.get("securityContext", {})
        if isc.get("runAsUser") != 0 or "NET_ADMIN" not in isc.get("capabilities", {}).get("add", []):
            fail(f"{name}: init container must run as root with NET_ADMIN")
        for m in ic.get("volumeMounts", []):
            if m["name"] not in vols: fail(f"{name}/{ic['name']}: mount of unknown volume {m['name']}")
        # The shipped script with these arguments (dry run): the rules it would install.
        import subprocess
        r = subprocess.run([os.path.join(src, "deploy/k8s/iptables-init.sh")] + argv[1:] + ["--dry-run"],
                           capture_output=True, text=True)
        if r.returncode != 0: fail(f"{name}: iptables-init.sh {argv[1:]}: {r.stderr}")
        want = [f"-m owner --uid-owner {uid} -j RETURN", f"-p tcp -j REDIRECT --to-ports {port}", "-A OUTPUT -p tcp -j FIPSPROXY_OUTPUT"]
        for w in want:
            if w not in r.stdout: fail(f"{name}: iptables-init.sh dry run lacks '{w}'")
        if r.stdout.find("--uid-owner") > r.stdout.find("REDIRECT"): fail(f"{name}: REDIRECT before the uid exemption")
        print("CAPTURE", name, uid, port)
    labels = d["spec"]["template"]["metadata"]["labels"]
    for _, s in docs:
        if s["kind"] == "Service" and s["spec"]["selector"].items() <= labels.items():
            for p in s["spec"]["ports"]:
                t = p.get("targetPort", p["port"])
                if t not in ports and t not in ports.values(): fail(f"{name}: Service {s['metadata']['name']} targetPort {t}")
    if d["spec"].get("replicas", 1) >= 2:
        if not any(s["kind"] == "PodDisruptionBudget" and s["spec"]["selector"]["matchLabels"].items() <= labels.items() for _, s in docs):
            fail(f"{name}: {d['spec']['replicas']} replicas without a PodDisruptionBudget")
print("DONE")
)PY";

TEST_CASE("deploy/k8s: manifests parse and agree with their configs, the configs pass check", "[fast][deploy]") {
  if (run_command({"python3", "-c", "import yaml, tomllib"}, 30s).code != 0) {
    WARN("python3-yaml (or Python 3.11 tomllib) not installed: deploy/k8s manifests not parsed");
    return;
  }
  Sandbox sb;
  const std::string script = sb.tmp.file("k8s_check.py");
  write_file(script, kK8sCheck);
  std::string out, err;
  ExitStatus st = run_command({"python3", script, FP_SOURCE_DIR, sb.tmp.path()}, 60s, &out, &err);
  INFO(out << err);
  REQUIRE(st.code == 0);
  CHECK(contains(out, "DONE"));
  CHECK_FALSE(contains(out, "FAIL:"));
  // The Secret keys the manifests document, made from the demo PKI (peer.pem: serverAuth +
  // clientAuth, the sidecar's identity in both directions).
  const std::string k8s_certs = sb.tmp.file("k8s-certs");
  make_dir(k8s_certs);
  for (const auto& [key, file] : std::vector<std::pair<std::string, std::string>>{
           {"tls.crt", "peer.pem"}, {"tls.key", "peer.key"}, {"ca.crt", "ca.pem"},
           {"client.crt", "client.pem"}, {"client.key", "client.key"}}) {
    write_file(k8s_certs + "/" + key, read_file(sb.certs + "/" + file), 0600);
  }
  std::set<std::string> names;
  const std::regex line("CONFIG (\\S+) (\\S+)");
  for (auto it = std::sregex_iterator(out.begin(), out.end(), line); it != std::sregex_iterator(); ++it) {
    const std::string name = (*it)[1], path = (*it)[2];
    names.insert(name);
    std::string cfg = replace_all(read_file(path), "/etc/fipsproxy/certs/", k8s_certs + "/");
    write_file(path, sb.localize(cfg));
    Run r = fipsproxy({"check", "-c", path});
    INFO(name << ": " << r.out << r.err);
    CHECK(r.st.code == 0);
  }
  CHECK(names == std::set<std::string>{"web", "edge"});
  CHECK(contains(out, "CAPTURE web 10002 15001"));  // sidecar.yaml: transparent capture is cross-checked
}

TEST_CASE("deploy/Dockerfile: stages, copied files exist, runtime libraries, health check, entrypoint", "[fast][deploy]") {
  const std::string df = read_file(repo("deploy/Dockerfile"));
  REQUIRE_FALSE(df.empty());
  CHECK(contains(df, "FROM debian:bookworm AS build"));
  CHECK(contains(df, "FROM debian:bookworm-slim"));
  CHECK(contains(df, "RUN deploy/bootstrap.sh"));
  CHECK(contains(df, "fipsproxy fips-status"));
  CHECK(contains(df, "ENTRYPOINT [\"/usr/local/bin/fipsproxy\", \"run\", \"-c\", \"/etc/fipsproxy/fipsproxy.toml\"]"));
  CHECK(contains(df, "--unix-socket\", \"/run/fipsproxy/admin.sock\", \"http://localhost/ready\""));
  std::smatch user;
  REQUIRE(std::regex_search(df, user, std::regex("\nUSER ([^\n]+)")));
  CHECK(user[1] != "root");
  CHECK(user[1].str().rfind("0", 0) != 0);
  // Every build-context COPY source exists.
  const std::regex copy("\nCOPY (?!--from)([^\n]+)");
  size_t copies = 0;
  for (auto it = std::sregex_iterator(df.begin(), df.end(), copy); it != std::sregex_iterator(); ++it) {
    std::vector<std::string> words;
    std::string s = (*it)[1];
    for (size_t p = 0; p < s.size();) {
      size_t q = s.find(' ', p);
      if (q == std::string::npos) q = s.size();
      if (q > p) words.push_back(s.substr(p, q - p));
      p = q + 1;
    }
    REQUIRE(words.size() >= 2);
    for (size_t i = 0; i + 1 < words.size(); ++i) {
      ++copies;
      INFO(words[i]);
      CHECK(file_exists(repo(words[i])));
    }
  }
  CHECK(copies >= 5);
  CHECK(contains(df, "COPY deploy/ deploy/"));
  // The capture init container (deploy/k8s/sidecar.yaml) runs the script from this image.
  CHECK(contains(df, "COPY deploy/k8s/iptables-init.sh /usr/local/bin/fipsproxy-iptables-init\n"));
  CHECK(contains(df, " iptables "));
  // The binary's RUNPATH is the prefix the Dockerfile stages (same absolute path).
  std::string dyn;
  REQUIRE(run_command({"readelf", "-d", proxy_binary()}, 30s, &dyn).code == 0);
  std::smatch rp;
  REQUIRE(std::regex_search(dyn, rp, std::regex("Library runpath: \\[([^\\]]+)\\]")));
  CHECK(std::regex_match(rp[1].str(), std::regex("/var/cache/fipsproxy/boringssl-[^/]+/lib")));
  CHECK(contains(df, "/var/cache/fipsproxy/boringssl-*/lib)"));
  // Every other shared library the binary needs comes from a Debian package the runtime installs.
  const std::regex needed("\\(NEEDED\\)\\s+Shared library: \\[([^\\]]+)\\]");
  for (auto it = std::sregex_iterator(dyn.begin(), dyn.end(), needed); it != std::sregex_iterator(); ++it) {
    const std::string lib = (*it)[1];
    if (lib == "libssl.so" || lib == "libcrypto.so") continue;  // ours, copied from the build stage
    if (std::regex_match(lib, std::regex("lib(c|m|stdc\\+\\+|gcc_s|pthread|dl|rt)\\.so\\.[0-9]+|ld-linux.*"))) continue;
    std::string owner;
    REQUIRE(run_command({"sh", "-c", "dpkg -S '*/" + lib + "' | head -1 | cut -d: -f1"}, 30s, &owner).code == 0);
    while (!owner.empty() && (owner.back() == '\n' || owner.back() == ' ')) owner.pop_back();
    INFO(lib << " is in package '" << owner << "'");
    REQUIRE_FALSE(owner.empty());
    CHECK(contains(df, " " + owner + " "));
  }
}

TEST_CASE("deploy/systemd/fipsproxy.service: reload, stop, restart policy, hardening, systemd-analyze verify",
          "[fast][deploy]") {
  const std::string unit = read_file(repo("deploy/systemd/fipsproxy.service"));
  REQUIRE_FALSE(unit.empty());
  for (const char* line :
       {"Type=simple", "ExecStartPre=/usr/local/bin/fipsproxy check -c /etc/fipsproxy/fipsproxy.toml",
        "ExecStart=/usr/local/bin/fipsproxy run -c /etc/fipsproxy/fipsproxy.toml", "ExecReload=/bin/kill -HUP $MAINPID",
        "KillSignal=SIGTERM", "RestartPreventExitStatus=2 3", "NoNewPrivileges=yes", "ProtectSystem=strict",
        "PrivateTmp=yes", "CapabilityBoundingSet=CAP_NET_BIND_SERVICE", "AmbientCapabilities=CAP_NET_BIND_SERVICE",
        "User=fipsproxy", "RuntimeDirectory=fipsproxy"}) {
    INFO(line);
    CHECK(contains(unit, std::string("\n") + line + "\n"));
  }
  // TimeoutStopSec exceeds every example's drain_timeout.
  std::smatch m;
  REQUIRE(std::regex_search(unit, m, std::regex("\nTimeoutStopSec=(\\d+)s\n")));
  const long stop = std::stol(m[1]);
  for (const std::string& name : kExamples) {
    const long drain = seconds_of(toml_string(read_file(repo("deploy/examples/" + name + ".toml")), "drain_timeout"));
    INFO(name << " drain_timeout " << drain << "s");
    CHECK(stop > drain);
  }
  if (!have_command("systemd-analyze")) {
    WARN("systemd-analyze not installed: the unit was not verified");
    return;
  }
  TempDir tmp("fp-unit");
  const std::string copy = tmp.file("fipsproxy.service");
  write_file(copy, replace_all(unit, "/usr/local/bin/fipsproxy", proxy_binary()));
  std::string out, err;
  ExitStatus st = run_command({"systemd-analyze", "verify", copy}, 60s, &out, &err);
  INFO(out << err);
  CHECK(st.code == 0);
  CHECK_FALSE(contains(err, "fipsproxy.service:"));  // no warnings about our lines
}

TEST_CASE("deploy/examples/sidecar.toml serves mTLS to an app on a Unix socket with the demo PKI", "[fast][deploy]") {
  Sandbox sb;
  const std::string sock = short_uds_path("sidecar-app");
  Process app({.argv = {"python3", repo("deploy/demo_app.py"), sock}});
  REQUIRE(wait_until([&] { return file_exists(sock); }, Millis(10000)));
  const uint16_t in_port = free_tcp_port(), out_port = free_tcp_port();
  REQUIRE(in_port != 0);
  REQUIRE(out_port != 0);
  std::string cfg = sb.localize(read_file(repo("deploy/examples/sidecar.toml")));
  cfg = replace_all(cfg, "\"0.0.0.0:8443\"", "\"127.0.0.1:" + std::to_string(in_port) + "\"");
  cfg = replace_all(cfg, "\"127.0.0.1:15001\"", "\"127.0.0.1:" + std::to_string(out_port) + "\"");
  cfg = replace_all(cfg, "unix:/run/app/app.sock", "unix:" + sock);
  ProxyProcess proxy(cfg, sb.etc);
  REQUIRE(proxy.start());
  const std::string url = "https://localhost:" + std::to_string(in_port) + "/hello";
  std::string out, err;
  ExitStatus st = run_command({"curl", "-sS", "--fail", "--max-time", "10", "--cacert", sb.certs + "/ca.pem", "--cert",
                               sb.certs + "/client.pem", "--key", sb.certs + "/client.key", url},
                              20s, &out, &err);
  INFO(out << err << proxy.stderr_text());
  CHECK(st.code == 0);
  CHECK(contains(out, "hello from the demo app behind fipsproxy"));
  // The server certificate is not an allowed client identity (EKU serverAuth only; and not on
  // allow_spiffe): refused.
  st = run_command({"curl", "-sS", "--max-time", "10", "--cacert", sb.certs + "/ca.pem", "--cert", sb.certs + "/server.pem",
                    "--key", sb.certs + "/server.key", url},
                   20s, &out, &err);
  CHECK(st.code != 0);
  // The audit log has both handshakes and its chain verifies.
  CHECK(wait_until([&] { return contains(read_file(sb.log + "/audit.log"), "rejected"); }, Millis(5000)));
  proxy.terminate();
  Run v = fipsproxy({"audit", "verify", sb.log + "/audit.log"});
  INFO(v.out << v.err);
  CHECK(v.st.code == 0);
  ::unlink(sock.c_str());
}
