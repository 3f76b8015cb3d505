#!/usr/bin/env python3
"""A tiny HTTP/1.1 app on a Unix socket for the demo: it answers every request with who the
proxy says is calling (the TLS identity reaches the app through fipsproxy's access log today;
HTTP headers such as XFCC come with the http1 mode)."""
import os
import socketserver
import sys
from http.server import BaseHTTPRequestHandler


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        body = ("hello from the demo app behind fipsproxy: %s %s\n" % (self.command, self.path)).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def address_string(self):
        return "unix"

    def log_message(self, fmt, *args):
        sys.stderr.write("demo-app: " + (fmt % args) + "\n")


class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


def main():
    path = sys.argv[1]
    if os.path.exists(path):
        os.unlink(path)
    with Server(path, Handler) as srv:
        srv.serve_forever()


if __name__ == "__main__":
    main()
