#!/usr/bin/env python3
"""Soak: mixed mTLS load through fipsproxy for a set time, with a config reload (SIGHUP) every
5 s and a Kubernetes-style certificate rotation every 30 s (RELIABILITY.md, issue #11).

Load: --clients threads, each looping over new mTLS connections to two listeners:
  tcp    -> echo app (tests/support/apps/app_server.py): 1 KiB or 64 KiB, echoed and compared
  http1  -> keep-alive app (tests/support/apps/fault_upstream.py http-ok): 1-3 requests per
            connection, each must answer 200 "ok"
A request is failed if it does not complete with the exact expected bytes. Every 5 s: SIGHUP,
and a sample of the proxy's RSS and fd count; every 30 s: a new cert+key directory published
by renaming the ..data symlink (what the kubelet does). At the end: the proxy is stopped with
SIGTERM (must exit 0), the slopes of RSS (KiB/min) and fds (fds/min) are printed (least squares
over the samples after the first minute), and `fipsproxy audit verify` checks the audit chain.

Exit status 0 only if: no failed request, every reload and rotation was applied, exit 0, the
audit chain verifies.

Usage: bench/soak.py [--minutes 10] [--binary build/fipsproxy] [--clients 4] [--workers 2]
"""
import argparse, json, os, shutil, signal, socket, ssl, subprocess, sys, tempfile, threading, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
APPS = os.path.join(ROOT, "tests", "support", "apps")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def proc_sample(pid):
    rss = None
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    return rss, fds


def slope_per_min(points):
    """Least-squares slope of (t seconds, v) in units per minute."""
    n = len(points)
    if n < 2:
        return 0.0
    mt = sum(t for t, _ in points) / n
    mv = sum(v for _, v in points) / n
    den = sum((t - mt) ** 2 for t, _ in points)
    return 0.0 if den == 0 else 60.0 * sum((t - mt) * (v - mv) for t, v in points) / den


def k8s_publish(secret, name, crt, key):
    d = os.path.join(secret, ".." + name)
    os.mkdir(d)
    shutil.copy(crt, os.path.join(d, "tls.crt"))
    shutil.copy(key, os.path.join(d, "tls.key"))
    os.chmod(os.path.join(d, "tls.key"), 0o600)
    tmp = os.path.join(secret, "..data_tmp")
    if os.path.lexists(tmp):
        os.unlink(tmp)
    os.symlink(".." + name, tmp)
    os.rename(tmp, os.path.join(secret, "..data"))


class Load:
    def __init__(self, a, pki, tcp_port, http_port):
        self.a, self.tcp_port, self.http_port = a, tcp_port, http_port
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self.ctx.load_verify_locations(os.path.join(pki, "ca.pem"))
        self.ctx.load_cert_chain(os.path.join(pki, "client.pem"), os.path.join(pki, "client.key"))
        self.lock = threading.Lock()
        self.ok = self.failed = 0
        self.kinds = {"tcp_1k": 0, "tcp_64k": 0, "http": 0}
        self.errors = []
        self.stop = threading.Event()

    def conn(self, port):
        raw = socket.create_connection(("127.0.0.1", port), timeout=10)
        return self.ctx.wrap_socket(raw, server_hostname="server.example.org")

    def one_tcp(self, size):
        payload = os.urandom(size)
        s = self.conn(self.tcp_port)
        s.sendall(payload)
        got = b""
        while len(got) < size:
            d = s.recv(65536)
            if not d:
                break
            got += d
        s.close()
        if got != payload:
            raise RuntimeError(f"tcp echo mismatch: sent {size} got {len(got)}")

    def one_http(self, n):
        s = self.conn(self.http_port)
        for i in range(n):
            s.sendall(b"GET /soak/%d HTTP/1.1\r\nHost: soak\r\n\r\n" % i)
            buf = b""
            while b"\r\n\r\nok\n" not in buf:
                d = s.recv(4096)
                if not d:
                    break
                buf += d
            if not buf.startswith(b"HTTP/1.1 200") or b"\r\n\r\nok\n" not in buf:
                raise RuntimeError(f"http request {i + 1}/{n}: {buf[:80]!r}")
        s.close()

    def worker(self, k):
        i = k
        while not self.stop.is_set():
            i += 1
            kind = ("tcp_1k", "http", "tcp_64k", "http")[i % 4]
            try:
                if kind == "tcp_1k":
                    self.one_tcp(1024)
                elif kind == "tcp_64k":
                    self.one_tcp(65536)
                else:
                    self.one_http(1 + i % 3)
                with self.lock:
                    self.ok += 1
                    self.kinds[kind] += 1
            except Exception as e:  # every failure is counted and kept (first 20)
                with self.lock:
                    self.failed += 1
                    if len(self.errors) < 20:
                        self.errors.append(f"{time.strftime('%H:%M:%S')} {kind}: {type(e).__name__}: {e}")
            if self.a.think:
                time.sleep(self.a.think)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=10)
    p.add_argument("--binary", default=os.environ.get("FIPSPROXY", os.path.join(ROOT, "build", "fipsproxy")))
    p.add_argument("--clients", type=int, default=4)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--think", type=float, default=0.0, help="seconds each client sleeps between connections")
    p.add_argument("--reload-every", type=float, default=5)
    p.add_argument("--rotate-every", type=float, default=30)
    p.add_argument("--keep", action="store_true", help="keep the work directory")
    a = p.parse_args()

    work = tempfile.mkdtemp(prefix="fpsoak")
    pki = os.path.join(work, "pki")
    subprocess.run([os.path.join(ROOT, "tests", "certs", "gen.sh"), pki], check=True)
    secret = os.path.join(work, "secret")
    os.mkdir(secret)
    pairs = [("server.pem", "server.key"), ("server-rsa.pem", "server-rsa.key")]
    k8s_publish(secret, "gen0", os.path.join(pki, pairs[0][0]), os.path.join(pki, pairs[0][1]))
    os.symlink("..data/tls.crt", os.path.join(secret, "tls.crt"))
    os.symlink("..data/tls.key", os.path.join(secret, "tls.key"))

    echo_sock, http_sock = os.path.join(work, "echo.sock"), os.path.join(work, "http.sock")
    max_s = str(int(a.minutes * 60 + 120))
    apps = [subprocess.Popen([sys.executable, os.path.join(APPS, "app_server.py"), "--unix", echo_sock,
                              "--max-seconds", max_s, "echo"], stdout=open(os.path.join(work, "echo.out"), "w")),
            subprocess.Popen([sys.executable, os.path.join(APPS, "fault_upstream.py"), "--unix", http_sock,
                              "--max-seconds", max_s, "http-ok"], stdout=open(os.path.join(work, "http.out"), "w"))]
    for path in (echo_sock, http_sock):
        for _ in range(100):
            if os.path.exists(path):
                break
            time.sleep(0.05)

    tcp_port, http_port = free_port(), free_port()
    tls = (f'  [listener.tls]\n  cert = "{secret}/tls.crt"\n  key = "{secret}/tls.key"\n'
           f'  ca = "{pki}/ca.pem"\n  allow_spiffe = ["spiffe://example.org/ns/default/sa/client"]\n')
    cfg = (f'workers = {a.workers}\nlog_level = "info"\naccess_log = "{work}/access.log"\n'
           f'drain_timeout = "10s"\n' + ('' if os.environ.get("SOAK_NO_AUDIT") else f'[audit]\npath = "{work}/audit.log"\nmax_size = "1MiB"\nkeep = 1000\n') +
           f'[[listener]]\nname = "tcp"\naddress = "127.0.0.1:{tcp_port}"\ncluster = "echo"\n{tls}'
           f'[[listener]]\nname = "http"\naddress = "127.0.0.1:{http_port}"\ncluster = "web"\nmode = "http1"\n{tls}'
           f'[[cluster]]\nname = "echo"\nendpoints = ["unix:{echo_sock}"]\n'
           f'[[cluster]]\nname = "web"\nendpoints = ["unix:{http_sock}"]\n')
    conf = os.path.join(work, "proxy.toml")
    # Newer builds refuse to run as root unless told; older ones do not know the key.
    for extra in ("[process]\nallow_root = true\n" if os.geteuid() == 0 else "", ""):
        with open(conf, "w") as f:
            f.write(cfg + extra)
        if subprocess.run([a.binary, "check", "-c", conf], capture_output=True).returncode == 0:
            break
    else:
        print("soak: config check failed:", subprocess.run([a.binary, "check", "-c", conf], capture_output=True, text=True).stderr)
        return 2
    errlog = open(os.path.join(work, "proxy.stderr"), "w")
    proxy = subprocess.Popen([a.binary, "run", "-c", conf], stderr=errlog, stdout=subprocess.DEVNULL)

    def log_text():
        with open(os.path.join(work, "proxy.stderr")) as f:
            return f.read()

    for _ in range(200):
        if "msg=ready" in log_text() or proxy.poll() is not None:
            break
        time.sleep(0.05)
    if "msg=ready" not in log_text():
        print("soak: proxy did not start:\n" + log_text())
        return 2

    time.sleep(float(os.environ.get("SOAK_SETTLE", "1")))
    load = Load(a, pki, tcp_port, http_port)

    def served_der():
        raw = socket.create_connection(("127.0.0.1", tcp_port), timeout=5)
        s = load.ctx.wrap_socket(raw, server_hostname="server.example.org")
        der = s.getpeercert(binary_form=True)
        s.close()
        return der

    def pem_der(path):
        text = open(path).read()
        first = text[:text.index("-----END CERTIFICATE-----") + len("-----END CERTIFICATE-----")]
        return ssl.PEM_cert_to_DER_cert(first)
    threads = [threading.Thread(target=load.worker, args=(k,), daemon=True) for k in range(a.clients)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    samples, reloads, rotations, gen = [], 0, 0, 0
    served, pending = 0, None  # rotations seen on a new handshake; (DER, deadline) being waited for
    next_reload, next_rotate = t0 + a.reload_every, t0 + a.rotate_every
    end = t0 + a.minutes * 60
    load_avg = []
    print(f"soak: {a.minutes} min, {a.clients} clients, workers={a.workers}, reload every {a.reload_every} s, "
          f"rotation every {a.rotate_every} s, binary {a.binary}", flush=True)
    while time.monotonic() < end and proxy.poll() is None:
        now = time.monotonic()
        if now >= next_reload:
            proxy.send_signal(signal.SIGHUP)
            reloads += 1
            next_reload += a.reload_every
            rss, fds = proc_sample(proxy.pid)
            samples.append((now - t0, rss, fds))
            load_avg.append(os.getloadavg()[0])
            if len(samples) % 12 == 0:
                with load.lock:
                    print(f"  t={now - t0:6.0f}s ok={load.ok} failed={load.failed} rss={rss} KiB fds={fds} "
                          f"load={load_avg[-1]:.1f}", flush=True)
        if now >= next_rotate:
            gen += 1
            crt, key = pairs[gen % 2]
            k8s_publish(secret, f"gen{gen}", os.path.join(pki, crt), os.path.join(pki, key))
            rotations += 1
            next_rotate += a.rotate_every
            pending = (pem_der(os.path.join(pki, crt)), now + 10)
        if pending and int(now * 4) % 2 == 0:  # every ~0.5 s: does a new handshake see it yet?
            try:
                if served_der() == pending[0]:
                    served += 1
                    pending = None
            except (OSError, ssl.SSLError):
                pass
            if pending and now > pending[1]:
                pending = None
        time.sleep(0.05)
    load.stop.set()
    for t in threads:
        t.join(30)
    elapsed = time.monotonic() - t0
    time.sleep(1)
    rss_end, fds_end = proc_sample(proxy.pid) if proxy.poll() is None else (None, None)
    proxy.send_signal(signal.SIGTERM)
    try:
        rc = proxy.wait(30)
    except subprocess.TimeoutExpired:
        proxy.kill()
        rc = "timeout"
    for app in apps:
        app.terminate()
        app.wait(10)
    log = log_text()
    import re
    reloaded = len(re.findall(r"msg=reloaded trigger=SIGHUP", log))
    rotated = len(re.findall(r'msg=reloaded trigger="certificate rotation"', log))
    reload_failed = log.count("reload failed")
    audit_files = sorted(f for f in os.listdir(work) if f.startswith("audit.log"))
    v = subprocess.run([a.binary, "audit", "verify"] + [os.path.join(work, f) for f in audit_files],
                       capture_output=True, text=True)

    warm = [s for s in samples if s[0] >= 60] or samples
    rss_slope = slope_per_min([(t, r) for t, r, _ in warm])
    fd_slope = slope_per_min([(t, f) for t, _, f in warm])
    total = load.ok + load.failed
    res = {
        "minutes": round(elapsed / 60, 2), "requests_ok": load.ok, "requests_failed": load.failed,
        "per_kind": load.kinds, "req_per_s": round(total / elapsed, 1),
        "sighup_sent": reloads, "sighup_reloads_logged": reloaded, "reload_failures_logged": reload_failed,
        "rotations": rotations, "rotations_served_within_10s": served, "rotation_reloads_logged": rotated,
        "rss_kib_first": samples[0][1] if samples else None, "rss_kib_last": samples[-1][1] if samples else None,
        "rss_kib_max": max(s[1] for s in samples) if samples else None,
        "rss_slope_kib_per_min": round(rss_slope, 1),
        "fds_first": samples[0][2] if samples else None, "fds_last": samples[-1][2] if samples else None,
        "fds_slope_per_min": round(fd_slope, 2), "fds_after_load": fds_end, "rss_after_load": rss_end,
        "samples": len(samples), "load_avg_mean": round(sum(load_avg) / len(load_avg), 2) if load_avg else None,
        "exit_code": rc, "audit_files": len(audit_files), "audit_verify": (v.stdout + v.stderr).strip(),
        "audit_verify_rc": v.returncode,
    }
    print(json.dumps(res, indent=1))
    for e in load.errors:
        print("  error:", e)
    ok = (load.failed == 0 and rc == 0 and v.returncode == 0 and reload_failed == 0 and
          reloaded >= reloads - 1 and served == rotations)
    print("soak:", "PASS" if ok else "FAIL", f"(work dir {work})" if a.keep or not ok else "")
    if ok and not a.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
