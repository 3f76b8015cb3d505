#!/usr/bin/env bash
# perf profile of fipsproxy (one worker, core 0) under one load step, for finding hot spots.
#   bench/profile.sh [ka1k|kahttp|bulk1m] [SECONDS]      -> results/profile-<ts>/{perf.data,report.txt}
# Uses the same backend, certs and config as run.sh. Needs linux-perf. Not part of run.sh.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib/common.sh"
WHAT=${1:-ka1k}; SECS=${2:-8}
command -v perf >/dev/null || { echo "missing Debian package: linux-perf" >&2; exit 2; }
D=$HERE/results/profile-$(date -u +%Y%m%dT%H%M%SZ); mkdir -p "$D" "$RUN_DIR" "$LOG_DIR"
[[ -s $PKI_DIR/client-openssl.cnf ]] || "$HERE/gen-pki.sh" >/dev/null; make_www
trap 'stop_one fipsproxy >/dev/null; stop_one backend >/dev/null' EXIT
start_one backend && start_one fipsproxy || exit 1
port=28401
case $WHAT in ka1k) path=/1k; c=50 ;; kahttp) path=/1k; c=50; port=28404 ;; bulk1m) path=/1m; c=8 ;; *) echo "ka1k|kahttp|bulk1m" >&2; exit 2 ;; esac
taskset -c "$CLIENT_CPU" env OPENSSL_CONF=$PKI_DIR/client-openssl.cnf timeout $((SECS + 20)) \
  wrk -t1 -c$c -d$((SECS + 2))s https://127.0.0.1:$port$path > "$D/wrk.txt" 2>&1 &
WRK=$!
sleep 1
timeout $((SECS + 10)) perf record -F 999 -g -o "$D/perf.data" -p "$(cat "$RUN_DIR/fipsproxy.pid")" -- sleep "$SECS" 2>"$D/perf.err"
wait "$WRK"  # not a bare wait: the backend and proxy are children too
perf report -i "$D/perf.data" --no-children --stdio --percent-limit 1 2>/dev/null | grep -v '^$' > "$D/report.txt"
perf report -i "$D/perf.data" --no-children --stdio -g none --percent-limit 0.7 2>/dev/null | grep -E '^ +[0-9]' > "$D/flat.txt"
cat "$D/wrk.txt" | grep -E 'Requests/sec|Transfer/sec'; cat "$D/flat.txt" | head -40; echo "profile in $D"
