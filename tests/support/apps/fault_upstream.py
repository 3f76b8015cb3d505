#!/usr/bin/env python3
"""Scripted faulty upstreams for fipsproxy's abuse tests (RELIABILITY.md §3 B14, C19, F32, F33).

One thread, one selectors loop, so it holds thousands of connections cheaply. Listens on
--tcp HOST:PORT (port 0 allowed) or --unix PATH; the first stdout line is the bound TCP port
(0 for --unix). Then one JSON line per event: {"event":"accept","conn":N},
{"event":"close","conn":N,"recv_bytes":..}.

Modes (positional):
  hold              read and discard, never write (a sink that keeps connections open)
  accept-rst        accept, then close at once with SO_LINGER 0 (RST)
  http-rst-head     read a request head, then RST without answering
  http-rst-mid N    read a request head, answer 200 chunked with one chunk of N bytes, then RST
  http-cl-half N    read a request head, answer Content-Length N with N/2 body bytes, then FIN
  http-hang         read a request head, never answer
  http-ok           answer every request head 200 "ok\\n" (keep-alive)
  http-slow MS      the same, each answer after MS milliseconds (one connection at a time)

Bounded: --max-seconds (default 300) for the whole process. SIGTERM exits promptly.
"""
import argparse, json, os, selectors, signal, socket, struct, sys, time

BLOCK = bytes((i * 131 + 7) & 0xFF for i in range(65536))


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def rst_close(c):
    try:
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    c.close()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--tcp")
    p.add_argument("--unix")
    p.add_argument("--max-seconds", type=float, default=300)
    p.add_argument("mode", nargs="+")
    a = p.parse_args()
    mode, arg = a.mode[0], (int(a.mode[1]) if len(a.mode) > 1 else 0)
    try:
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 16384), hard))
    except (ValueError, OSError):
        pass
    if a.unix:
        ls = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            os.unlink(a.unix)
        except FileNotFoundError:
            pass
        ls.bind(a.unix)
        port = 0
    else:
        host, _, prt = a.tcp.rpartition(":")
        host = host.strip("[]")
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        ls = socket.socket(fam, socket.SOCK_STREAM)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind((host, int(prt)))
        port = ls.getsockname()[1]
    ls.listen(4096)
    ls.setblocking(False)
    emit_port = str(port)
    sys.stdout.write(emit_port + "\n")
    sys.stdout.flush()

    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    sel = selectors.DefaultSelector()
    sel.register(ls, selectors.EVENT_READ, None)
    state = {}  # conn socket -> dict
    next_id = [0]
    deadline = time.monotonic() + a.max_seconds

    def close(c, rst=False):
        st = state.pop(c, None)
        try:
            sel.unregister(c)
        except (KeyError, ValueError):
            pass
        if rst:
            rst_close(c)
        else:
            c.close()
        if st is not None:
            emit({"event": "close", "conn": st["id"], "recv_bytes": st["recv"]})

    def on_head(c, st):
        if mode == "http-rst-head":
            close(c, rst=True)
            return True
        if mode == "http-rst-mid":
            c.setblocking(True)
            body = (BLOCK * (arg // len(BLOCK) + 1))[:arg]
            try:
                c.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" +
                          b"%x\r\n" % len(body) + body + b"\r\n")
            except OSError:
                pass
            time.sleep(0.2)
            close(c, rst=True)
            return True
        if mode == "http-cl-half":
            c.setblocking(True)
            try:
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % arg + BLOCK[: arg // 2])
            except OSError:
                pass
            close(c)
            return True
        if mode == "http-slow":
            time.sleep(arg / 1000.0)
        if mode in ("http-ok", "http-slow"):
            try:
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n")
            except OSError:
                close(c)
                return True
        return False  # http-hang: keep reading, never answer

    while not stop and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=0.2):
            s = key.fileobj
            if s is ls:
                for _ in range(256):
                    try:
                        c, _addr = ls.accept()
                    except (BlockingIOError, InterruptedError):
                        break
                    except OSError:
                        break
                    next_id[0] += 1
                    emit({"event": "accept", "conn": next_id[0]})
                    if mode == "accept-rst":
                        rst_close(c)
                        emit({"event": "close", "conn": next_id[0], "recv_bytes": 0})
                        continue
                    c.setblocking(False)
                    state[c] = {"id": next_id[0], "recv": 0, "buf": b""}
                    sel.register(c, selectors.EVENT_READ, None)
                continue
            st = state.get(s)
            if st is None:
                continue
            try:
                d = s.recv(65536)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                close(s)
                continue
            if not d:
                close(s)
                continue
            st["recv"] += len(d)
            if mode.startswith("http-"):
                st["buf"] += d
                while b"\r\n\r\n" in st["buf"]:
                    _, _, st["buf"] = st["buf"].partition(b"\r\n\r\n")
                    if on_head(s, st):
                        break
                    if s not in state:
                        break
    for c in list(state):
        close(c)
    ls.close()


if __name__ == "__main__":
    main()
