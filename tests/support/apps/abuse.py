#!/usr/bin/env python3
"""Hostile clients for fipsproxy's abuse tests (RELIABILITY.md §3 B14, C16-C21, F34).

Python standard library, plus python3-cryptography for `records12` (record crypto). Every
command is bounded by --max-seconds and prints exactly one JSON line at the end (`hold` also
prints {"event":"held",...} once its connections are up).

Commands:
  slowloris   TLS, then "GET / HTTP/1.1\\r\\nHost: a\\r\\n" and one more header byte every
              --interval seconds, never finishing the head. Reports the status line received,
              and when the proxy closed.
  sockets     --silent N plain TCP sockets that send nothing, --garbage N that send random
              bytes, --partial N that send a TLS record header announcing 16 KiB and stop.
              Reports how many the proxy closed and the longest time it took.
  hold        --count N mTLS connections (full handshakes), held open without traffic; reports
              how many the proxy closed (idle timeout) before --max-seconds.
  handshakes  --procs P processes doing --count N full mTLS handshakes in total, each
              followed by one byte and a close. Reports ok/failed counts and seconds.
  slowread    TLS with a small receive buffer, sends --send TEXT and then never reads for
              --hold seconds.
  rst         TLS, sends --bytes N, then closes with SO_LINGER 0 (RST) mid-transfer.
  requests    --file F: one request per line (Python-escaped bytes, e.g. "GET / HTTP/1.1\\r\\n"),
              each on its own mTLS connection; replies (up to 4 KiB, latin-1) as a JSON array.
  hello       --variant V: a hostile first flight. plain-http (an HTTP request to the TLS port),
              sslv2 (an SSLv2-compatible ClientHello), split1 (a real ClientHello cut into 1-byte
              records, then the handshake goes on), dup-ext (its first extension twice), huge
              (a 17,000-byte padding extension: the ClientHello spans two records). Reports the
              alert received (if any), whether the handshake completed, and the seconds.
  records12   TLS 1.2 (AES-128-GCM), then raw records built from the key log: --empty N
              zero-length application-data records, --warn N warning alerts (user_canceled),
              --fatal-alert CODE, then --send TEXT; reports what came back (decrypted).
"""
import argparse, hmac, hashlib, json, os, random, select, selectors, socket, ssl, struct, sys, tempfile, time

SNI = "server.example.org"


def tls_ctx(a, version=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(a.ca)
    if a.cert:
        ctx.load_cert_chain(a.cert, a.key)
    if version == "1.2":
        ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def host_port(s):
    h, _, p = s.rpartition(":")
    return h.strip("[]"), int(p)


def out(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def raise_nofile():
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 16384), hard))


def connect_tls(a, ctx, timeout):
    raw = socket.create_connection(host_port(a.connect), timeout=timeout)
    return ctx.wrap_socket(raw, server_hostname=SNI)


# ---- slowloris (C16) ---------------------------------------------------------------------

def cmd_slowloris(a):
    t0 = time.monotonic()
    s = connect_tls(a, tls_ctx(a), a.max_seconds)
    s.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n")
    trickle = b"X-Slow: " + b"a" * 100000
    sent, got, eof = 0, b"", False
    s.settimeout(a.interval)
    while time.monotonic() - t0 < a.max_seconds and not eof:
        try:
            d = s.recv(65536)
            if not d:
                eof = True
            got += d
        except socket.timeout:
            pass
        except (ssl.SSLError, OSError):
            eof = True
        if eof:
            break
        try:
            s.sendall(trickle[sent:sent + 1])
            sent += 1
        except (ssl.SSLError, OSError):
            eof = True
    line = got.split(b"\r\n", 1)[0].decode("latin-1")
    out({"status_line": line, "closed": eof, "seconds": round(time.monotonic() - t0, 3),
         "trickled": sent, "body": got.split(b"\r\n\r\n", 1)[-1].decode("latin-1")})


# ---- silent / garbage sockets (C17) ------------------------------------------------------

def cmd_sockets(a):
    raise_nofile()
    t0 = time.monotonic()
    socks = []
    rnd = random.Random(7)
    for kind, n in (("silent", a.silent), ("garbage", a.garbage), ("partial", a.partial)):
        for _ in range(n):
            s = socket.create_connection(host_port(a.connect), timeout=5)
            if kind == "garbage":
                s.sendall(bytes(rnd.randrange(256) for _ in range(200)))
            elif kind == "partial":
                s.sendall(b"\x16\x03\x01\x40\x00" + bytes(rnd.randrange(256) for _ in range(50)))
            s.setblocking(False)
            socks.append((s, kind))
    opened = time.monotonic() - t0
    sel = selectors.DefaultSelector()
    for s, kind in socks:
        sel.register(s, selectors.EVENT_READ, kind)
    closed = {"silent": 0, "garbage": 0, "partial": 0}
    last = 0.0
    remaining = len(socks)
    while remaining and time.monotonic() - t0 < a.max_seconds:
        for key, _ in sel.select(timeout=0.2):
            try:
                d = key.fileobj.recv(4096)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                d = b""
            if d:
                continue  # an alert; the close follows
            closed[key.data] += 1
            last = time.monotonic() - t0
            sel.unregister(key.fileobj)
            key.fileobj.close()
            remaining -= 1
    for key in list(sel.get_map().values()):
        key.fileobj.close()
    out({"opened": len(socks), "open_seconds": round(opened, 3), "closed": closed,
         "closed_total": sum(closed.values()), "last_close_seconds": round(last, 3)})


# ---- many idle authenticated connections (B14) -------------------------------------------

def cmd_hold(a):
    raise_nofile()
    ctx = tls_ctx(a)
    t0 = time.monotonic()
    conns, failed = [], 0
    for _ in range(a.count):
        if time.monotonic() - t0 > a.max_seconds / 2:
            break
        try:
            s = connect_tls(a, ctx, 10)
            s.setblocking(False)
            conns.append(s)
        except (OSError, ssl.SSLError):
            failed += 1
    up = time.monotonic() - t0
    out({"event": "held", "n": len(conns), "failed": failed, "seconds": round(up, 3)})
    sel = selectors.DefaultSelector()
    for s in conns:
        sel.register(s, selectors.EVENT_READ)
    closed, first, last = 0, None, None
    t1 = time.monotonic()
    while closed < len(conns) and time.monotonic() - t0 < a.max_seconds:
        for key, _ in sel.select(timeout=0.2):
            s = key.fileobj
            try:
                d = s.recv(4096)
            except (ssl.SSLWantReadError, BlockingIOError):
                continue
            except (ssl.SSLError, OSError):
                d = b""
            if d:
                continue
            closed += 1
            now = time.monotonic() - t1
            first = now if first is None else first
            last = now
            sel.unregister(s)
            s.close()
    for key in list(sel.get_map().values()):
        key.fileobj.close()
    out({"held": len(conns), "failed": failed, "connect_seconds": round(up, 3),
         "closed_by_proxy": closed, "first_close_after_held": first, "last_close_after_held": last})


# ---- full-handshake flood (C19) ----------------------------------------------------------

def _handshake_worker(a, n, q):
    ctx = tls_ctx(a)
    ok = failed = 0
    t0 = time.monotonic()
    for _ in range(n):
        if time.monotonic() - t0 > a.max_seconds:
            break
        try:
            s = connect_tls(a, ctx, 10)
            s.sendall(b"x")
            s.close()
            ok += 1
        except (OSError, ssl.SSLError):
            failed += 1
    q.put((ok, failed))


def cmd_handshakes(a):
    import multiprocessing as mp
    q = mp.Queue()
    t0 = time.monotonic()
    per = [a.count // a.procs + (1 if i < a.count % a.procs else 0) for i in range(a.procs)]
    ps = [mp.Process(target=_handshake_worker, args=(a, n, q)) for n in per]
    for p in ps:
        p.start()
    ok = failed = 0
    for _ in ps:
        o, f = q.get(timeout=a.max_seconds + 30)
        ok += o
        failed += f
    for p in ps:
        p.join(5)
    out({"ok": ok, "failed": failed, "seconds": round(time.monotonic() - t0, 3)})


# ---- slow read (C18) and abortive close (F34) --------------------------------------------

def cmd_slowread(a):
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.settimeout(10)
    raw.connect(host_port(a.connect))
    s = tls_ctx(a).wrap_socket(raw, server_hostname=SNI)
    if a.send:
        s.sendall(a.send.encode().decode("unicode_escape").encode("latin-1"))
    t0 = time.monotonic()
    out({"event": "stalled"})
    time.sleep(a.hold)
    # Then read a little: the connection must still be alive (or closed by idle_timeout).
    s.settimeout(2)
    got = 0
    try:
        while got < 1 << 20:
            d = s.recv(65536)
            if not d:
                break
            got += len(d)
    except (socket.timeout, ssl.SSLError, OSError):
        pass
    out({"stalled_seconds": round(time.monotonic() - t0, 3), "read_after": got})


def cmd_rst(a):
    s = connect_tls(a, tls_ctx(a), 10)
    chunk = b"r" * 16384
    sent = 0
    s.settimeout(1.0)  # a stalled path: stop sending after 1 s blocked and reset anyway
    try:
        while sent < a.bytes:
            s.sendall(chunk)
            sent += len(chunk)
    except (socket.timeout, ssl.SSLError, OSError):
        pass
    if a.read_first:
        s.settimeout(5)
        try:
            s.recv(a.read_first)
        except (socket.timeout, ssl.SSLError, OSError):
            pass
    # No close_notify: an abortive close.
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    os.close(s.detach())
    out({"sent": sent, "rst": True})


# ---- one raw request per connection (A, B12, B13 through the binary) --------------------

def cmd_requests(a):
    ctx = tls_ctx(a)
    replies = []
    for line in open(a.file, encoding="latin-1").read().split("\n"):
        if not line:
            continue
        req = line.encode("latin-1").decode("unicode_escape").encode("latin-1")
        got = b""
        try:
            s = connect_tls(a, ctx, 10)
        except (socket.timeout, ssl.SSLError, OSError) as e:
            replies.append("<connect: %s>" % type(e).__name__)
            continue
        # Send and read at once: a refusal may come (and the proxy stop reading) before the
        # whole request is written.
        s.setblocking(False)
        sent, deadline, err = 0, time.monotonic() + a.max_seconds, None
        while time.monotonic() < deadline and len(got) < 4096:
            want_w = sent < len(req)
            r, w, _ = select.select([s], [s] if want_w else [], [], 0.2)
            if w and want_w:
                try:
                    sent += s.send(req[sent:sent + 16384])
                except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                    pass
                except (ssl.SSLError, OSError):
                    sent = len(req)  # the peer stopped reading: keep reading its answer
            if r or s.pending():
                try:
                    d = s.recv(4096)
                except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                    continue
                except (ssl.SSLError, OSError) as e:
                    err = type(e).__name__
                    break
                if not d:
                    break
                got += d
        if err and not got:
            got = ("<%s>" % err).encode()
        s.close()
        replies.append(got[:4096].decode("latin-1"))
    out({"replies": replies})


# ---- hostile ClientHellos (D24) -----------------------------------------------------------

def _read_alert(sock, timeout):
    """Reads until close: returns (alert description or None, 'closed'|'reset'|'timeout')."""
    sock.settimeout(timeout)
    buf, alert = b"", None
    try:
        while True:
            d = sock.recv(65536)
            if not d:
                return alert, "closed"
            buf += d
            while len(buf) >= 5 and len(buf) >= 5 + int.from_bytes(buf[3:5], "big"):
                n = int.from_bytes(buf[3:5], "big")
                if buf[0] == 21 and n == 2:
                    alert = buf[6]
                buf = buf[5 + n:]
    except socket.timeout:
        return alert, "timeout"
    except ConnectionResetError:
        return alert, "reset"


def cmd_hello(a):
    t0 = time.monotonic()
    sock = socket.create_connection(host_port(a.connect), timeout=10)
    res = {"variant": a.variant, "alert": None, "end": None, "handshake": False}
    if a.variant == "plain-http":
        sock.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        res["alert"], res["end"] = _read_alert(sock, a.max_seconds)
    elif a.variant == "sslv2":
        ciphers = bytes.fromhex("c02b00" "c02f00" "009c00" "002f00" "003500" "000a00" "010080")
        body = b"\x01\x03\x01" + len(ciphers).to_bytes(2, "big") + b"\x00\x00" + b"\x00\x10" + ciphers + os.urandom(16)
        sock.sendall(bytes([0x80 | (len(body) >> 8), len(body) & 0xFF]) + body)
        res["alert"], res["end"] = _read_alert(sock, a.max_seconds)
    else:
        inc, outg = ssl.MemoryBIO(), ssl.MemoryBIO()
        obj = tls_ctx(a).wrap_bio(inc, outg, server_hostname=SNI)
        try:
            obj.do_handshake()
        except ssl.SSLWantReadError:
            pass
        rec = outg.read()
        assert rec[0] == 22
        hs = rec[5:5 + int.from_bytes(rec[3:5], "big")]
        if a.variant == "split1":
            sock.sendall(b"".join(b"\x16\x03\x01\x00\x01" + hs[i:i + 1] for i in range(len(hs))))
            # Then the normal handshake continues over the memory BIOs.
            sock.settimeout(a.max_seconds)
            try:
                while True:
                    try:
                        obj.do_handshake()
                        res["handshake"] = True
                        break
                    except ssl.SSLWantReadError:
                        pass
                    d = outg.read()
                    if d:
                        sock.sendall(d)
                    d = sock.recv(65536)
                    if not d:
                        res["end"] = "closed"
                        break
                    inc.write(d)
                if res["handshake"]:
                    d = outg.read()
                    if d:
                        sock.sendall(d)
                    obj.write(b"hello")
                    sock.sendall(outg.read())
                    res["end"] = "open"
            except (ssl.SSLError, OSError) as e:
                res["end"] = type(e).__name__ + ": " + str(e)[:80]
        else:
            # Parse the ClientHello: type(1) len(3) version(2) random(32) sid cs comp ext.
            body = bytearray(hs[4:])
            p = 34
            p += 1 + body[p]
            p += 2 + int.from_bytes(body[p:p + 2], "big")
            p += 1 + body[p]
            ext_len_at = p
            exts = body[p + 2:]
            if a.variant == "dup-ext":
                first_len = 4 + int.from_bytes(exts[2:4], "big")
                exts = exts[:first_len] + exts
            else:  # huge: a padding extension (21) of 17,000 bytes
                exts = exts + (21).to_bytes(2, "big") + (17000).to_bytes(2, "big") + bytes(17000)
            body = body[:ext_len_at] + len(exts).to_bytes(2, "big") + exts
            msg = b"\x01" + len(body).to_bytes(3, "big") + bytes(body)
            out_b = b""
            for i in range(0, len(msg), 16384):
                frag = msg[i:i + 16384]
                out_b += b"\x16\x03\x01" + len(frag).to_bytes(2, "big") + frag
            try:
                sock.sendall(out_b)
            except OSError:
                pass
            res["alert"], res["end"] = _read_alert(sock, a.max_seconds)
    res["seconds"] = round(time.monotonic() - t0, 3)
    out(res)


# ---- raw TLS 1.2 records from the key log (C21) ------------------------------------------

def prf_sha256(secret, label, seed, n):
    seed = label + seed
    res, a_i = b"", seed
    while len(res) < n:
        a_i = hmac.new(secret, a_i, hashlib.sha256).digest()
        res += hmac.new(secret, a_i + seed, hashlib.sha256).digest()
    return res[:n]


def cmd_records12(a):
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    keylog = tempfile.NamedTemporaryFile(prefix="fpkl", delete=False)
    keylog.close()
    ctx = tls_ctx(a, "1.2")
    ctx.set_ciphers("ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256")
    ctx.keylog_filename = keylog.name
    inc, outg = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, outg, server_hostname=SNI)
    sock = socket.create_connection(host_port(a.connect), timeout=10)
    raw_in = bytearray()
    while True:
        try:
            obj.do_handshake()
            break
        except ssl.SSLWantReadError:
            pass
        d = outg.read()
        if d:
            sock.sendall(d)
        d = sock.recv(65536)
        if not d:
            out({"error": "closed during handshake"})
            return
        raw_in += d
        inc.write(d)
    d = outg.read()
    if d:
        sock.sendall(d)
    cipher = obj.cipher()[0]
    line = [l for l in open(keylog.name).read().split("\n") if l.startswith("CLIENT_RANDOM ")][-1]
    os.unlink(keylog.name)
    _, cr_hex, ms_hex = line.split()
    client_random, master = bytes.fromhex(cr_hex), bytes.fromhex(ms_hex)
    assert raw_in[0] == 22 and raw_in[5] == 2, "first record must carry the ServerHello"
    server_random = bytes(raw_in[11:43])
    kb = prf_sha256(master, b"key expansion", server_random + client_random, 40)
    ckey, skey, civ, siv = kb[0:16], kb[16:32], kb[32:36], kb[36:40]
    cseq = [1]  # the client's Finished was record 0 of this epoch

    def seal(rtype, plain):
        seq = cseq[0].to_bytes(8, "big")
        cseq[0] += 1
        aad = seq + bytes([rtype]) + b"\x03\x03" + len(plain).to_bytes(2, "big")
        ct = AESGCM(ckey).encrypt(civ + seq, plain, aad)
        body = seq + ct
        return bytes([rtype]) + b"\x03\x03" + len(body).to_bytes(2, "big") + body

    flood = b""
    for _ in range(a.empty):
        flood += seal(23, b"")
    for _ in range(a.warn):
        flood += seal(21, bytes([1, 90]))  # warning user_canceled
    if a.fatal_alert is not None:
        flood += seal(21, bytes([2, a.fatal_alert]))
    if a.send:
        flood += seal(23, a.send.encode())
    t0 = time.monotonic()
    sent_ok = True
    try:
        sock.sendall(flood)
    except OSError:
        sent_ok = False
    # Read and decrypt what comes back until close or timeout.
    sock.settimeout(a.max_seconds)
    buf, sseq, plain, alert, eof = b"", 1, b"", None, None
    while eof is None:
        try:
            d = sock.recv(65536)
        except socket.timeout:
            eof = "timeout"
            break
        except ConnectionResetError:
            eof = "reset"
            break
        if not d:
            eof = "closed"
            break
        buf += d
        while len(buf) >= 5 and len(buf) >= 5 + int.from_bytes(buf[3:5], "big"):
            n = int.from_bytes(buf[3:5], "big")
            rtype, body, buf = buf[0], buf[5:5 + n], buf[5 + n:]
            seq = sseq.to_bytes(8, "big")
            sseq += 1
            aad = seq + bytes([rtype]) + b"\x03\x03" + (n - 24).to_bytes(2, "big")
            try:
                pt = AESGCM(skey).decrypt(siv + body[:8], body[8:], aad)
            except Exception:
                pt = b"?"
            if rtype == 23:
                plain += pt
                if a.send and len(plain) >= len(a.send):
                    eof = "got_reply"
            elif rtype == 21 and len(pt) == 2:
                alert = pt[1]
    out({"cipher": cipher, "sent_ok": sent_ok, "reply": plain.decode("latin-1"), "alert": alert,
         "end": eof, "seconds": round(time.monotonic() - t0, 3)})


def main():
    p = argparse.ArgumentParser()
    p.add_argument("command")
    p.add_argument("--connect", required=True)
    p.add_argument("--ca")
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--max-seconds", type=float, default=30)
    p.add_argument("--interval", type=float, default=0.2)
    p.add_argument("--silent", type=int, default=0)
    p.add_argument("--garbage", type=int, default=0)
    p.add_argument("--partial", type=int, default=0)
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--procs", type=int, default=1)
    p.add_argument("--send")
    p.add_argument("--hold", type=float, default=1.0)
    p.add_argument("--bytes", type=int, default=65536)
    p.add_argument("--read-first", type=int, default=0)
    p.add_argument("--empty", type=int, default=0)
    p.add_argument("--warn", type=int, default=0)
    p.add_argument("--fatal-alert", type=int)
    p.add_argument("--file")
    p.add_argument("--variant")
    a = p.parse_args()
    {"slowloris": cmd_slowloris, "sockets": cmd_sockets, "hold": cmd_hold,
     "handshakes": cmd_handshakes, "slowread": cmd_slowread, "rst": cmd_rst,
     "records12": cmd_records12, "requests": cmd_requests, "hello": cmd_hello}[a.command](a)


if __name__ == "__main__":
    main()
