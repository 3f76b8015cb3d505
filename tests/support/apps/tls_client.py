#!/usr/bin/env python3
"""Test client for fipsproxy: plaintext or TLS (optionally with a client cert), over TCP or a
unix socket. One single-threaded non-blocking loop (ssl.MemoryBIO), so it can send and receive
at the same time and half-close cleanly (TLS: close_notify, then keep reading; plain:
shutdown(SHUT_WR)).

Prints exactly one JSON object on stdout, e.g.
  {"ok": true, "stage": "done", "version": "TLSv1.3", "cipher": "TLS_AES_128_GCM_SHA256",
   "alpn": "h2", "sent_bytes": 5, "sent_sha256": "...", "recv_bytes": 3, "recv_sha256": "...",
   "recv_head": "ok\\n", "eof": "clean"|"unclean"|"reset"|null, "error": null, "seconds": 0.1}
stage is where it stopped: connect, handshake, io, done. Exit status 0 if ok.

Options: --connect HOST:PORT | --unix PATH, --tls, --cert/--key/--ca, --sni NAME (also the name
verified; --no-verify-name to skip), --alpn h2,http/1.1, --send-text S | --send-file F |
--send-pattern N, --half-close (after sending), --close-after-send, --wait-first-byte,
--max-recv N, --timeout S (whole run), --hold S (stay connected S seconds before sending).
"""
import argparse, hashlib, json, os, selectors, socket, ssl, struct, sys, time

BLOCK = bytes((i * 131 + 7) & 0xFF for i in range(65536))


def pattern_chunks(n):
    k = 0
    while n > 0:
        chunk = struct.pack(">Q", k) + BLOCK[8:]
        chunk = chunk[: min(n, len(chunk))]
        n -= len(chunk)
        k += 1
        yield chunk


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--connect")
    p.add_argument("--unix")
    p.add_argument("--tls", action="store_true")
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--ca")
    p.add_argument("--sni", default="server.example.org")
    p.add_argument("--no-verify-name", action="store_true")
    p.add_argument("--alpn")
    p.add_argument("--tls-version", choices=["1.2", "1.3"])
    p.add_argument("--send-text")
    p.add_argument("--send-file")
    p.add_argument("--send-pattern", type=int)
    p.add_argument("--half-close", action="store_true")
    p.add_argument("--close-after-send", action="store_true")
    p.add_argument("--max-recv", type=int, default=1 << 62)
    p.add_argument("--timeout", type=float, default=30.0)
    p.add_argument("--hold", type=float, default=0.0)
    a = p.parse_args()

    t0 = time.monotonic()
    deadline = t0 + a.timeout
    res = {"ok": False, "stage": "connect", "version": None, "cipher": None, "alpn": None,
           "sent_bytes": 0, "sent_sha256": None, "recv_bytes": 0, "recv_sha256": None,
           "recv_head": "", "eof": None, "error": None, "seconds": 0.0}
    sent_h, recv_h = hashlib.sha256(), hashlib.sha256()
    head = bytearray()

    def source():
        if a.send_text is not None:
            yield a.send_text.encode().decode("unicode_escape").encode("latin-1")
        if a.send_file:
            with open(a.send_file, "rb") as f:
                while True:
                    d = f.read(262144)
                    if not d:
                        break
                    yield d
        if a.send_pattern:
            yield from pattern_chunks(a.send_pattern)

    try:
        if a.unix:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(max(0.1, deadline - time.monotonic()))
            sock.connect(a.unix)
        else:
            host, _, port = a.connect.rpartition(":")
            sock = socket.create_connection((host.strip("[]"), int(port)),
                                            timeout=max(0.1, deadline - time.monotonic()))
        sock.setblocking(False)
        res["stage"] = "handshake"
        obj = inb = outb = None
        if a.tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            # Report a close without close_notify as "unclean" on every Python: Debian's build
            # sets OP_IGNORE_UNEXPECTED_EOF by default (a truncation would read as a clean EOF).
            ctx.options &= ~getattr(ssl, "OP_IGNORE_UNEXPECTED_EOF", 0)
            if a.ca:
                ctx.load_verify_locations(a.ca)
            else:
                ctx.verify_mode = ssl.CERT_NONE
            if a.no_verify_name or not a.ca:
                ctx.check_hostname = False
            if a.cert:
                ctx.load_cert_chain(a.cert, a.key)
            if a.alpn:
                ctx.set_alpn_protocols(a.alpn.split(","))
            if a.tls_version == "1.2":
                ctx.maximum_version = ssl.TLSVersion.TLSv1_2
            elif a.tls_version == "1.3":
                ctx.minimum_version = ssl.TLSVersion.TLSv1_3
            inb, outb = ssl.MemoryBIO(), ssl.MemoryBIO()
            obj = ctx.wrap_bio(inb, outb, server_hostname=a.sni)

        sel = selectors.DefaultSelector()
        sel.register(sock, selectors.EVENT_READ)
        out = bytearray()           # bytes waiting for the socket
        src = source()
        src_done = False
        shut_sent = False
        hs_done = not a.tls
        eof = False
        hold_until = None

        def pump_out():
            if obj is not None:
                d = outb.read()
                if d:
                    out.extend(d)

        def on_recv(d):
            res["recv_bytes"] += len(d)
            recv_h.update(d)
            if len(head) < 200:
                head.extend(d[: 200 - len(head)])

        while True:
            now = time.monotonic()
            if now > deadline:
                raise TimeoutError("timeout in stage " + res["stage"])
            if not hs_done:
                try:
                    obj.do_handshake()
                    hs_done = True
                    res["version"] = obj.version()
                    res["cipher"] = obj.cipher()[0]
                    res["alpn"] = obj.selected_alpn_protocol()
                    res["stage"] = "io"
                except ssl.SSLWantReadError:
                    pass
                pump_out()
            elif res["stage"] == "handshake":
                res["stage"] = "io"
            if hs_done and hold_until is None:
                hold_until = now + a.hold
            if hs_done and now >= hold_until and not src_done and len(out) < (1 << 20):
                try:
                    d = next(src)
                    if obj is not None:
                        obj.write(d)
                    else:
                        out.extend(d)
                    res["sent_bytes"] += len(d)
                    sent_h.update(d)
                except StopIteration:
                    src_done = True
                pump_out()
            if src_done and not shut_sent and not out and (a.half_close or a.close_after_send):
                if a.close_after_send:
                    break
                if obj is not None:
                    try:
                        obj.unwrap()
                    except (ssl.SSLWantReadError, ssl.SSLError):
                        pass
                    pump_out()
                    if out:
                        continue
                sock.shutdown(socket.SHUT_WR)
                shut_sent = True
            if eof:
                # The peer's half-close does not stop our sending; a reset, a close during the
                # handshake or hold, or having sent everything does.
                if res["eof"] == "reset" or not hs_done or now < (hold_until or now):
                    break
                if src_done and not out and (shut_sent or not a.half_close):
                    break
            if res["recv_bytes"] >= a.max_recv:
                break
            want = selectors.EVENT_READ | (selectors.EVENT_WRITE if out else 0)
            sel.modify(sock, want)
            busy = (hs_done and now >= (hold_until or now) and not src_done and len(out) < (1 << 20))
            timeout = 0 if busy else min(0.1, max(0.0, deadline - now))
            for _, ev in sel.select(timeout):
                if ev & selectors.EVENT_WRITE and out:
                    try:
                        n = sock.send(out)
                        del out[:n]
                    except (BlockingIOError, InterruptedError):
                        pass
                    except (BrokenPipeError, ConnectionResetError):
                        res["eof"] = "reset"
                        eof = True
                        out.clear()
                if ev & selectors.EVENT_READ:
                    try:
                        d = sock.recv(262144)
                    except (BlockingIOError, InterruptedError):
                        d = None
                    except ConnectionResetError:
                        res["eof"] = "reset"
                        eof = True
                        d = None
                    if d is not None:
                        if obj is None:
                            if d:
                                on_recv(d)
                            else:
                                eof = True
                                res["eof"] = "clean"
                        else:
                            if d:
                                inb.write(d)
                            else:
                                inb.write_eof()
                            while True:
                                try:
                                    r = obj.read(262144)
                                    if not r:
                                        eof = True
                                        res["eof"] = res["eof"] or "clean"
                                        break
                                    on_recv(r)
                                except ssl.SSLWantReadError:
                                    break
                                except ssl.SSLZeroReturnError:
                                    eof = True
                                    res["eof"] = "clean"
                                    break
                                except ssl.SSLEOFError:
                                    eof = True
                                    res["eof"] = "unclean"
                                    break
                                except ssl.SSLError as e:
                                    # Python 3.11.2 (Debian) reports OpenSSL 3's unexpected EOF
                                    # as a plain SSLError; later releases as SSLEOFError.
                                    if "UNEXPECTED_EOF" not in str(e):
                                        raise
                                    eof = True
                                    res["eof"] = "unclean"
                                    break
                            pump_out()
                            if not hs_done and eof:
                                raise ConnectionError("closed during handshake")
            if eof and res["eof"] == "reset":
                break
        res["stage"] = "done"
        res["ok"] = True
    except ssl.SSLError as e:
        res["error"] = "%s: %s" % (type(e).__name__, e)
    except Exception as e:  # report, never hang
        res["error"] = "%s: %s" % (type(e).__name__, e)
    res["sent_sha256"] = sent_h.hexdigest()
    res["recv_sha256"] = recv_h.hexdigest()
    res["recv_head"] = head.decode("latin-1")
    res["seconds"] = round(time.monotonic() - t0, 3)
    print(json.dumps(res), flush=True)
    sys.exit(0 if res["ok"] else 1)


if __name__ == "__main__":
    main()
