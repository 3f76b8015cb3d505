#!/usr/bin/env bash
# The demo: set up everything (deploy/bootstrap.sh), make a demo PKI, start a tiny HTTP app on a
# Unix socket and fipsproxy in front of it (mTLS on 127.0.0.1:8443), send one request with
# curl and a client certificate, and show the FIPS status and the access-log record.
#   deploy/demo.sh [--serve]   (--serve keeps the proxy running until Ctrl-C)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
serve=0
[ "${1:-}" = --serve ] && serve=1

"$here/bootstrap.sh"
bin=$root/build/fipsproxy
demo=${FIPSPROXY_DEMO_DIR:-/tmp/fipsproxy-demo}
rm -rf "$demo"; mkdir -p "$demo"
echo "==> [demo] PKI, app and config in $demo"
"$bin" certs demo --out "$demo/pki" >/dev/null
# As root (the usual demo): fipsproxy binds, then drops to nobody ([process] user). Everything it
# re-reads or writes after the drop must be nobody's: the PKI (reload and rotation re-read the
# key), the demo directory (logs; the audit log rotates there), the app's Unix socket (connecting
# needs write permission on it, so the app runs as nobody too).
app=(python3)
process_table=""
if [ "$(id -u)" = 0 ]; then
  if id nobody >/dev/null 2>&1 && command -v setpriv >/dev/null && [ -x /usr/bin/python3 ]; then
    chown -R nobody:"$(id -gn nobody)" "$demo"
    app=(setpriv --reuid=nobody --regid="$(id -gn nobody)" --clear-groups /usr/bin/python3)
    process_table=$'\n[process]\nuser = "nobody"  # drop root after binding\n'
  else
    process_table=$'\n[process]\nallow_root = true  # no nobody account or setpriv here\n'
  fi
fi
cat >"$demo/fipsproxy.toml" <<TOML
# Demo: mTLS on 127.0.0.1:8443 -> HTTP app on a Unix socket.
workers = 1
access_log = "$demo/access.log"
drain_timeout = "5s"

[admin]
address = "unix:$demo/admin.sock"

[audit]
path = "$demo/audit.log"
$process_table
[[listener]]
name = "inbound"
address = "127.0.0.1:8443"
cluster = "app"
  [listener.tls]
  cert = "pki/server.pem"
  key = "pki/server.key"
  ca = "pki/ca.pem"
  require_client_cert = true
  allow_spiffe = ["spiffe://example.org/ns/default/sa/client"]

[[cluster]]
name = "app"
endpoints = ["unix:$demo/app.sock"]
TOML
"${app[@]}" "$here/demo_app.py" "$demo/app.sock" 2>"$demo/app.log" &
app=$!
for _ in $(seq 50); do [ -S "$demo/app.sock" ] && break; sleep 0.1; done
"$bin" run -c "$demo/fipsproxy.toml" 2>"$demo/proxy.log" &
proxy=$!
cleanup() { kill "$proxy" "$app" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT
for _ in $(seq 50); do grep -q 'msg=ready' "$demo/proxy.log" 2>/dev/null && break; sleep 0.1; done
grep -q 'msg=ready' "$demo/proxy.log" || { cat "$demo/proxy.log"; echo "demo: proxy did not start" >&2; exit 1; }

echo "==> [demo] process hardening (config/REFERENCE.md [process]):"
grep -o 'msg="process hardened".*' "$demo/proxy.log" | sed 's/^/    /'
echo "==> [demo] fipsproxy fips-status"
"$bin" fips-status | tail -1
echo "==> [demo] curl --cert client.pem https://localhost:8443/hello  (mTLS, FIPS policy)"
curl -sS --fail --cacert "$demo/pki/ca.pem" --cert "$demo/pki/client.pem" --key "$demo/pki/client.key" \
  https://localhost:8443/hello
echo "==> [demo] the same request without a client certificate is refused:"
curl -sS --cacert "$demo/pki/ca.pem" https://localhost:8443/hello 2>&1 | sed 's/^/    /' || true
sleep 0.2
echo "==> [demo] access log ($demo/access.log):"
sed 's/^/    /' "$demo/access.log"
echo "==> [demo] audit records ($demo/audit.log), hash-chained:"
sed 's/^/    /' "$demo/audit.log"
echo "==> [demo] fipsproxy audit verify $demo/audit.log"
"$bin" audit verify "$demo/audit.log" | sed 's/^/    /'
echo "==> [demo] admin endpoint: curl --unix-socket $demo/admin.sock http://x/ready"
curl -sS --unix-socket "$demo/admin.sock" http://x/ready | sed 's/^/    /'
curl -sS --unix-socket "$demo/admin.sock" http://x/metrics | grep -E '^fipsproxy_(fips_mode|tls_handshakes_total|tls_policy_rejections_total)' | sed 's/^/    /'
if [ "$serve" = 1 ]; then
  echo "==> [demo] serving on 127.0.0.1:8443 (Ctrl-C to stop); config $demo/fipsproxy.toml"
  wait "$proxy"
fi
