#!/usr/bin/env python3
"""Keep-alive HTTP/1.1 upstream for the upstream-pool and egress tests (stdlib only).

  ka_server.py --listen HOST:PORT | --unix PATH [--cert C --key K] [--max-seconds N]

First stdout line: the bound TCP port (0 for --unix). Then one JSON line per accepted connection:
{"event":"accept","conn":N,"tls_version":..,"cipher":..,"sni":..}. Every request on connection N
is answered with 200 and the body "conn=N req=M path=P host=H\n" (Content-Length, keep-alive),
except:
  /bad    a response with both Content-Length and Transfer-Encoding (invalid framing)
  /stray  a good response followed by extra bytes ("XSTRAY"), then the connection stays open
  /close  a good response with "Connection: close", then the connection closes
  /drop-next  a good keep-alive response; the NEXT request head on this connection is read and
          the connection is closed without an answer (a server closing an idle keep-alive
          connection just as the client reuses it, made deterministic): {"event":"dropped"}
Request bodies (Content-Length) are read and discarded. Every loop is bounded by --max-seconds.
"""
import argparse, json, os, socket, ssl, sys, threading, time

stop = threading.Event()
lock = threading.Lock()


def emit(obj):
    with lock:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()


def serve(c, conn_id, deadline, info):
    emit(dict(event="accept", conn=conn_id, **info))
    buf = b""
    req = 0
    drop_next = False
    c.settimeout(0.5)
    try:
        while not stop.is_set() and time.monotonic() < deadline:
            if b"\r\n\r\n" not in buf:
                try:
                    d = c.recv(65536)
                except socket.timeout:
                    continue
                if not d:
                    return
                buf += d
                continue
            head, buf = buf.split(b"\r\n\r\n", 1)
            lines = head.decode("latin-1").split("\r\n")
            method, path = lines[0].split(" ")[0:2]
            host, cl = "", 0
            for ln in lines[1:]:
                k, _, v = ln.partition(":")
                if k.strip().lower() == "host":
                    host = v.strip()
                if k.strip().lower() == "content-length":
                    cl = int(v.strip())
            while len(buf) < cl and time.monotonic() < deadline:
                try:
                    d = c.recv(65536)
                except socket.timeout:
                    continue
                if not d:
                    return
                buf += d
            buf = buf[cl:]
            if drop_next:
                emit({"event": "dropped", "conn": conn_id, "path": path})
                return
            drop_next = path == "/drop-next"
            req += 1
            body = ("conn=%d req=%d path=%s host=%s\n" % (conn_id, req, path, host)).encode()
            if method == "HEAD":
                body_out = b""
            else:
                body_out = body
            if path == "/bad":
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n" % len(body) + body)
                continue
            extra = b"Connection: close\r\n" if path == "/close" else b""
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n" % len(body) + extra +
                      b"\r\n" + body_out + (b"XSTRAY" if path == "/stray" else b""))
            if path == "/close":
                return
    except (OSError, ValueError, IndexError) as e:
        emit({"event": "error", "conn": conn_id, "error": str(e)})
    finally:
        try:
            c.close()
        except OSError:
            pass
        emit({"event": "close", "conn": conn_id, "requests": req})


def main():
    p = argparse.ArgumentParser()
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--listen")
    g.add_argument("--unix")
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--max-seconds", type=float, default=120.0)
    a = p.parse_args()
    ctx = None
    sni = {}
    if a.cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(a.cert, a.key)

        def on_sni(sock, name, _ctx):
            sni["last"] = name
        ctx.sni_callback = on_sni
    if a.unix:
        try:
            os.unlink(a.unix)
        except FileNotFoundError:
            pass
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(a.unix)
        port = 0
    else:
        host, _, port_s = a.listen.rpartition(":")
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host, int(port_s)))
        port = s.getsockname()[1]
    s.listen(64)
    s.settimeout(0.2)
    print(port, flush=True)
    deadline = time.monotonic() + a.max_seconds
    n = 0
    while not stop.is_set() and time.monotonic() < deadline:
        try:
            c, _ = s.accept()
        except socket.timeout:
            continue
        n += 1
        info = {}
        if ctx:
            try:
                c.settimeout(5)
                c = ctx.wrap_socket(c, server_side=True)
                info = {"tls_version": c.version(), "cipher": c.cipher()[0], "sni": sni.pop("last", None)}
            except (OSError, ssl.SSLError) as e:
                emit({"event": "tls_error", "conn": n, "error": str(e)})
                c.close()
                continue
        threading.Thread(target=serve, args=(c, n, deadline, info), daemon=True).start()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass
