#!/usr/bin/env python3
"""Small loopback upstream ("the app") for fipsproxy integration tests.

Listens on --tcp HOST:PORT (port 0 allowed) or --unix PATH. The first stdout line is the bound
TCP port (0 for --unix), flushed once the socket listens. After that, one JSON object per line
per event: {"event":"accept","conn":N} and {"event":"close","conn":N,"recv_bytes":..,
"recv_sha256":..,"sent_bytes":..,"error":..}.

Modes (positional):
  echo                 echo bytes back; on EOF send what is left and shut down writes
  record DIR           write what each connection sends to DIR/conn-N.bin (created at accept);
                       on EOF reply "ok\\n" and close
  sink-stall           accept, never read (until SIGTERM or --max-seconds)
  reply-then-close N   send N pattern bytes, then close (without reading)
  sha256               read to EOF, reply "<hex sha256> <byte count>\\n", close
  blast N              send N pattern bytes, then close
  duplex N             send N pattern bytes (then shut down writes) while reading to EOF
  h2-ok                minimal h2c responder: after the client preface and a HEADERS frame,
                       answer SETTINGS, SETTINGS ack, HEADERS(:status 200), DATA "ok\n"
                       (END_STREAM), GOAWAY; then wait for EOF
  http DIR             read one HTTP/1.x request (head + Content-Length body), record it to
                       DIR/conn-N.bin, answer 200 "ok\n" with Connection: close, close; a head
                       with "Expect: 100-continue" whose body has not arrived yet gets
                       "HTTP/1.1 100 Continue" first (the close event then has "sent_100": true)

  proxy-v2 DIR         expect a PROXY protocol v2 header first: parse it (addresses, TLVs, SSL
                       sub-TLVs, CRC32c check) into DIR/conn-N.json ({"header": null, ...} when
                       the stream does not start with the v2 signature), then echo the rest
Every loop is bounded: --max-seconds (default 300) per process and per connection. SIGTERM or
SIGINT exits promptly.
"""
import argparse, hashlib, json, os, signal, socket, struct, sys, threading, time

BLOCK = bytes((i * 131 + 7) & 0xFF for i in range(65536))


def pattern_chunks(n):
    """N deterministic bytes: 64 KiB blocks, each stamped with its big-endian index."""
    k = 0
    while n > 0:
        chunk = struct.pack(">Q", k) + BLOCK[8:]
        chunk = chunk[: min(n, len(chunk))]
        n -= len(chunk)
        k += 1
        yield chunk


stop = threading.Event()
out_lock = threading.Lock()


def emit(obj):
    with out_lock:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()


def send_pattern(c, n, deadline):
    sent = 0
    for chunk in pattern_chunks(n):
        if stop.is_set() or time.monotonic() > deadline:
            break
        c.sendall(chunk)
        sent += len(chunk)
    return sent


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def parse_proxy_v2(hdr):
    """A complete v2 header -> dict (hex for binary values, names for known TLV types)."""
    out = {"header": True, "version_command": hdr[12], "family": hdr[13], "length": len(hdr) - 16}
    body = hdr[16:]
    fam = hdr[13]
    if fam == 0x11:
        out["src"] = "%d.%d.%d.%d" % tuple(body[0:4])
        out["dst"] = "%d.%d.%d.%d" % tuple(body[4:8])
        out["src_port"], out["dst_port"] = int.from_bytes(body[8:10], "big"), int.from_bytes(body[10:12], "big")
        off = 12
    elif fam == 0x21:
        out["src"] = socket.inet_ntop(socket.AF_INET6, bytes(body[0:16]))
        out["dst"] = socket.inet_ntop(socket.AF_INET6, bytes(body[16:32]))
        out["src_port"], out["dst_port"] = int.from_bytes(body[32:34], "big"), int.from_bytes(body[34:36], "big")
        off = 36
    elif fam == 0x31:
        out["src"] = body[0:108].rstrip(b"\x00").decode("latin-1")
        out["dst"] = body[108:216].rstrip(b"\x00").decode("latin-1")
        off = 216
    else:
        off = 0
    names = {0x01: "alpn", 0x02: "authority", 0x03: "crc32c", 0x20: "ssl", 0xE5: "spiffe_id"}
    sub = {0x21: "ssl_version", 0x22: "ssl_cn", 0x23: "ssl_cipher", 0x24: "ssl_sig_alg", 0x25: "ssl_key_alg"}
    tlvs = []
    while off + 3 <= len(body):
        t, ln = body[off], int.from_bytes(body[off + 1:off + 3], "big")
        v = body[off + 3:off + 3 + ln]
        tlvs.append("%02x:%d" % (t, ln))
        if t == 0x20:
            out["ssl_client"], out["ssl_verify"] = v[0], int.from_bytes(v[1:5], "big")
            so = 5
            while so + 3 <= len(v):
                st_, sl = v[so], int.from_bytes(v[so + 1:so + 3], "big")
                out[sub.get(st_, "ssl_sub_%02x" % st_)] = v[so + 3:so + 3 + sl].decode("latin-1")
                so += 3 + sl
        elif t == 0x03:
            zeroed = hdr[:16 + off + 3] + b"\x00" * 4 + hdr[16 + off + 7:]
            out["crc32c_ok"] = int.from_bytes(v, "big") == crc32c(zeroed)
        else:
            out[names.get(t, "tlv_%02x" % t)] = v.decode("latin-1")
        off += 3 + ln
    out["tlvs"] = tlvs
    out["trailing"] = len(body) - off
    return out


def handle(c, conn_id, args):
    deadline = time.monotonic() + args.max_seconds
    c.settimeout(1.0)
    h = hashlib.sha256()
    st = {"event": "close", "conn": conn_id, "recv_bytes": 0, "sent_bytes": 0}
    rec = None

    def read_to_eof(on_data=None):
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                d = c.recv(262144)
            except socket.timeout:
                continue
            if not d:
                return True
            st["recv_bytes"] += len(d)
            h.update(d)
            if on_data:
                on_data(d)
        return False

    try:
        mode = args.mode[0]
        if mode == "echo":
            read_to_eof(lambda d: (c.sendall(d), st.__setitem__("sent_bytes", st["sent_bytes"] + len(d))))
            c.shutdown(socket.SHUT_WR)
        elif mode == "record":
            rec = open(os.path.join(args.mode[1], "conn-%d.bin" % conn_id), "wb")
            if read_to_eof(lambda d: (rec.write(d), rec.flush())):
                c.sendall(b"ok\n")
                st["sent_bytes"] = 3
        elif mode == "sink-stall":
            while not stop.is_set() and time.monotonic() < deadline:
                time.sleep(0.1)
        elif mode in ("reply-then-close", "blast"):
            st["sent_bytes"] = send_pattern(c, int(args.mode[1]), deadline)
        elif mode == "sha256":
            if read_to_eof():
                reply = ("%s %d\n" % (h.hexdigest(), st["recv_bytes"])).encode()
                c.sendall(reply)
                st["sent_bytes"] = len(reply)
        elif mode == "http":
            rec = open(os.path.join(args.mode[1], "conn-%d.bin" % conn_id), "wb")
            buf = bytearray()
            need = None
            while not stop.is_set() and time.monotonic() < deadline:
                if need is None and b"\r\n\r\n" in buf:
                    head_end = buf.index(b"\r\n\r\n") + 4
                    cl = 0
                    expect = False
                    for line in bytes(buf[:head_end]).split(b"\r\n"):
                        if line.lower().startswith(b"content-length:"):
                            cl = int(line.split(b":", 1)[1])
                        if line.lower().replace(b" ", b"") == b"expect:100-continue":
                            expect = True
                    need = head_end + cl
                    if expect and len(buf) < need:
                        c.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
                        st["sent_100"] = True
                if need is not None and len(buf) >= need:
                    break
                try:
                    d = c.recv(65536)
                except socket.timeout:
                    continue
                if not d:
                    break
                buf.extend(d)
                st["recv_bytes"] += len(d)
                h.update(d)
                rec.write(d)
                rec.flush()
            reply = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n"
            c.sendall(reply)
            st["sent_bytes"] = len(reply)
        elif mode == "proxy-v2":
            buf = bytearray()
            info = {"header": None}

            def need(n):
                while len(buf) < n and not stop.is_set() and time.monotonic() < deadline:
                    try:
                        d = c.recv(65536)
                    except socket.timeout:
                        continue
                    if not d:
                        return False
                    st["recv_bytes"] += len(d)
                    h.update(d)
                    buf.extend(d)
                return len(buf) >= n

            sig = b"\r\n\r\n\x00\r\nQUIT\n"
            got = need(16)
            if got and bytes(buf[:12]) == sig:
                ln = int.from_bytes(buf[14:16], "big")
                if need(16 + ln):
                    info = parse_proxy_v2(bytes(buf[:16 + ln]))
                    del buf[:16 + ln]
            with open(os.path.join(args.mode[1], "conn-%d.json" % conn_id), "w") as f:
                json.dump(info, f)
            if buf:
                c.sendall(bytes(buf))
                st["sent_bytes"] += len(buf)
            read_to_eof(lambda d: (c.sendall(d), st.__setitem__("sent_bytes", st["sent_bytes"] + len(d))))
            c.shutdown(socket.SHUT_WR)
        elif mode == "h2-ok":
            buf = bytearray()
            preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
            stream = None
            while stream is None and not stop.is_set() and time.monotonic() < deadline:
                try:
                    d = c.recv(65536)
                except socket.timeout:
                    continue
                if not d:
                    break
                st["recv_bytes"] += len(d)
                h.update(d)
                buf.extend(d)
                if len(buf) < len(preface):
                    continue
                if bytes(buf[: len(preface)]) != preface:
                    st["error"] = "bad h2 preface"
                    break
                off = len(preface)
                while off + 9 <= len(buf):
                    ln = int.from_bytes(buf[off:off + 3], "big")
                    ftype, flags = buf[off + 3], buf[off + 4]
                    sid = int.from_bytes(buf[off + 5:off + 9], "big") & 0x7FFFFFFF
                    if off + 9 + ln > len(buf):
                        break
                    if ftype == 1 and flags & 0x4:
                        stream = sid
                    off += 9 + ln

            def frame(ftype, flags, sid, payload=b""):
                return len(payload).to_bytes(3, "big") + bytes([ftype, flags]) + sid.to_bytes(4, "big") + payload

            if stream is not None:
                out = (frame(4, 0, 0) + frame(4, 1, 0) + frame(1, 0x4, stream, b"\x88") +
                       frame(0, 0x1, stream, b"ok\n") + frame(7, 0, 0, stream.to_bytes(4, "big") + bytes(4)))
                c.sendall(out)
                st["sent_bytes"] = len(out)
                st["h2_stream"] = stream
                read_to_eof()
        elif mode == "duplex":
            n = int(args.mode[1])

            def sender():
                try:
                    st["sent_bytes"] = send_pattern(c, n, deadline)
                    c.shutdown(socket.SHUT_WR)
                except OSError as e:
                    st["send_error"] = str(e)

            t = threading.Thread(target=sender, daemon=True)
            t.start()
            read_to_eof()
            t.join(max(0.0, deadline - time.monotonic()))
        else:
            st["error"] = "unknown mode " + mode
    except OSError as e:
        st["error"] = str(e)
    finally:
        if rec:
            rec.close()
        st["recv_sha256"] = h.hexdigest()
        try:
            c.close()
        except OSError:
            pass
        emit(st)


def main():
    p = argparse.ArgumentParser()
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--tcp")
    g.add_argument("--unix")
    p.add_argument("--max-seconds", type=float, default=300.0)
    p.add_argument("--backlog", type=int, default=128)
    p.add_argument("mode", nargs="+")
    args = p.parse_args()

    def on_sig(*_):
        stop.set()

    signal.signal(signal.SIGTERM, on_sig)
    signal.signal(signal.SIGINT, on_sig)

    if args.unix:
        try:
            os.unlink(args.unix)
        except FileNotFoundError:
            pass
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(args.unix)
        port = 0
    else:
        host, _, port_s = args.tcp.rpartition(":")
        host = host.strip("[]")
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host, int(port_s)))
        port = s.getsockname()[1]
    s.listen(args.backlog)
    s.settimeout(0.2)
    print(port, flush=True)

    deadline = time.monotonic() + args.max_seconds
    conn_id = 0
    threads = []
    while not stop.is_set() and time.monotonic() < deadline:
        try:
            c, _ = s.accept()
        except socket.timeout:
            continue
        except OSError:
            if stop.is_set():
                break
            raise
        conn_id += 1
        emit({"event": "accept", "conn": conn_id})
        t = threading.Thread(target=handle, args=(c, conn_id, args), daemon=True)
        t.start()
        threads.append(t)
    stop.set()
    s.close()
    for t in threads:
        t.join(2.0)
    if args.unix:
        try:
            os.unlink(args.unix)
        except OSError:
            pass


if __name__ == "__main__":
    main()
