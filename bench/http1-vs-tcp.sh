#!/usr/bin/env bash
# Keep-alive req/s through fipsproxy's http1 mode next to tcp mode (issue #8), same process,
# same TLS listener settings, same nginx backend on a Unix socket, alternating A/B rounds.
#   bench/http1-vs-tcp.sh [--rounds N] [--duration S] [--conns C]
# Prints one BENCH line per run and a summary (median per mode and the http1/tcp ratio).
# Needs: build/fipsproxy (deploy/bootstrap.sh), nginx, wrk. Traffic stays on 127.0.0.1.
set -euo pipefail
ROUNDS=3 DURATION=5 CONNS=50
while [[ $# -gt 0 ]]; do
  case $1 in
    --rounds) ROUNDS=${2:?}; shift ;;
    --duration) DURATION=${2:?}; shift ;;
    --conns) CONNS=${2:?}; shift ;;
    -h|--help) sed -n '2,6p' "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
HERE=$(cd "$(dirname "$0")/.." && pwd)
FP=${FIPSPROXY:-$HERE/build/fipsproxy}
for t in nginx wrk; do command -v $t >/dev/null || { echo "missing $t (apt-get install -y $t)" >&2; exit 2; }; done
[[ -x $FP ]] || { echo "missing $FP: run deploy/bootstrap.sh" >&2; exit 2; }
W=$(mktemp -d /tmp/fph1bench.XXXXXX)
cleanup() {
  [[ -f $W/nginx.pid ]] && kill "$(cat "$W/nginx.pid")" 2>/dev/null || true
  [[ -n ${FPPID:-} ]] && kill "$FPPID" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$W"
}
trap cleanup EXIT
mkdir -p "$W/www" "$W/pki" "$W/tmp"
head -c 1024 /dev/zero | tr '\0' x > "$W/www/1k"
"$FP" certs demo --out "$W/pki" > /dev/null
chmod 755 "$W" "$W/www"; chmod 644 "$W/www/1k"
cat > "$W/nginx.conf" <<EOF
daemon on; worker_processes 1; pid $W/nginx.pid; error_log $W/nginx.err;
events { worker_connections 4096; }
http {
  access_log off; keepalive_requests 100000000; keepalive_timeout 600s;
  client_body_temp_path $W/tmp; proxy_temp_path $W/tmp; fastcgi_temp_path $W/tmp;
  uwsgi_temp_path $W/tmp; scgi_temp_path $W/tmp;
  server { listen unix:$W/backend.sock; root $W/www; }
}
EOF
nginx -c "$W/nginx.conf"
P_TCP=28711 P_H1=28712
cat > "$W/fp.toml" <<EOF
workers = 1
log_level = "info"
access_log = "off"
[process]
allow_root = true
$(for m in tcp:$P_TCP http1:$P_H1; do cat <<L
[[listener]]
name = "${m%%:*}"
address = "127.0.0.1:${m##*:}"
cluster = "backend"
mode = "${m%%:*}"
idle_timeout = "600s"
  [listener.tls]
  cert = "$W/pki/server.pem"
  key = "$W/pki/server.key"
  require_client_cert = false
L
done)
[[cluster]]
name = "backend"
endpoints = ["unix:$W/backend.sock"]
max_idle_connections = 64
EOF
"$FP" run -c "$W/fp.toml" 2> "$W/fp.log" &
FPPID=$!
for _ in $(seq 50); do grep -q "msg=ready" "$W/fp.log" && break; sleep 0.1; done
grep -q "msg=ready" "$W/fp.log" || { cat "$W/fp.log" >&2; exit 1; }
echo "# $("$FP" version 2>&1 | head -1) | $(nproc) CPUs | $(date -u +%FT%TZ) | rounds=$ROUNDS duration=${DURATION}s conns=$CONNS"
declare -A runs
for r in $(seq "$ROUNDS"); do
  for m in tcp http1; do
    port=$P_TCP; [[ $m == http1 ]] && port=$P_H1
    out=$(timeout $((DURATION + 30)) wrk -t1 -c"$CONNS" -d"${DURATION}s" --timeout 5s "https://127.0.0.1:$port/1k" 2>&1)
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    errs=$(awk '/Non-2xx|Socket errors/ {print}' <<<"$out" | paste -sd' ')
    echo "BENCH mode=$m round=$r req_per_s=${rps:-0} ${errs:+errors=\"$errs\"}"
    runs[$m]+="${rps:-0} "
  done
done
median() { tr ' ' '\n' <<<"$1" | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
t=$(median "${runs[tcp]}"); h=$(median "${runs[http1]}")
echo "median req/s: tcp=$t http1=$h http1/tcp=$(awk -v a="$h" -v b="$t" 'BEGIN {printf "%.2f", a / b}')"
