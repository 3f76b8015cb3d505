#!/usr/bin/env python3
"""Cold start: exec -> TCP listening (a connect succeeds), -> first full TLS handshake completes,
and (with --ready-unix) -> the admin endpoint's GET /ready answers 200. Repeated --runs times; the
server is started pinned to --cpu and stopped (SIGTERM, SIGKILL after 10 s) after each run.
Bounded: --deadline seconds per run. Prints one line per run and medians as key=value.
  coldstart.py --port P [--ready-unix SOCK] [--runs N] [--cpu C] -- CMD...
"""
import argparse, os, signal, socket, ssl, statistics, subprocess, sys, time

def try_connect(port):
    s = socket.socket(); s.settimeout(0.2)
    try:
        s.connect(("127.0.0.1", port)); return s
    except OSError:
        s.close(); return None

def try_tls(port, ctx):
    s = try_connect(port)
    if not s:
        return False
    try:
        s.settimeout(1.0)
        with ctx.wrap_socket(s, server_hostname="localhost"):
            return True
    except (OSError, ssl.SSLError):
        return False

def try_ready(path):
    s = socket.socket(socket.AF_UNIX); s.settimeout(0.5)
    try:
        s.connect(path); s.sendall(b"GET /ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        d = s.recv(64)
        return d.startswith(b"HTTP/1.") and d[8:13] == b" 200 "
    except OSError:
        return False
    finally:
        s.close()

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--ready-unix")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--cpu", default="0")
    ap.add_argument("--deadline", type=float, default=15)
    ap.add_argument("--log", default="/dev/null")
    ap.add_argument("cmd", nargs="+")
    a = ap.parse_args()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
    res = {"listen_ms": [], "tls_ms": [], "ready_ms": []}
    for i in range(a.runs):
        for _ in range(200):  # a leftover server on the port would fake a 0 ms start: wait, else fail
            s = try_connect(a.port)
            if not s:
                break
            s.close(); time.sleep(0.05)
        else:
            sys.exit(f"port {a.port} is still accepting before the start; not measuring")
        log = open(a.log, "ab")
        t0 = time.monotonic()
        p = subprocess.Popen(["taskset", "-c", a.cpu] + a.cmd, stdout=log, stderr=log)
        tl = tt = tr = None
        end = t0 + a.deadline
        while time.monotonic() < end and p.poll() is None:
            now = time.monotonic()
            if tl is None:
                s = try_connect(a.port)
                if s:
                    s.close(); tl = now
            if tl is not None and tt is None and try_tls(a.port, ctx):
                tt = time.monotonic()
            if a.ready_unix and tr is None and try_ready(a.ready_unix):
                tr = time.monotonic()
            if tt is not None and (tr is not None or not a.ready_unix):
                break
            time.sleep(0.0005)
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill(); p.wait()
        log.close()
        ms = lambda t: round((t - t0) * 1000, 1) if t is not None else None
        row = {"listen_ms": ms(tl), "tls_ms": ms(tt), "ready_ms": ms(tr)}
        print("# run %d %s" % (i + 1, " ".join(f"{k}={v}" for k, v in row.items())), file=sys.stderr)
        for k, v in row.items():
            if v is not None:
                res[k].append(v)
        time.sleep(0.3)
    out = {k: statistics.median(v) for k, v in res.items() if v}
    print(" ".join(f"{k}={v}" for k, v in out.items()), f"runs={a.runs}")

if __name__ == "__main__":
    main()
