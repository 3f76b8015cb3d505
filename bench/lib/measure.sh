#!/usr/bin/env bash
# Measure one running target (adapted from ../shared/bench-peers/run.sh).
#   lib/measure.sh NAME        (ports from TARGETS_TABLE in lib/common.sh; the target must be running,
#                               its PID in $RUN_DIR/NAME.pid)
# Env: ROUND(1) DURATION(10) CONNS(50) LAT_CONNS(10) DELAY_MS(10) BULK_CONNS(8) IDLE_CONNS(2000)
#   IDLE_HOLD(5) HS_CONC(32) HS_TIME(10) HS_MAX(200000) KA_MAX(50000000)
#   TESTS(idle,hs13,hs12,hsmtls,cps,keepalive,kamtls,kahttp,latency,bulk,orig; an empty TESTS measures none)
#   OUT (TSV to append: label metric value unit round)
#   WRK_THREADS(1) HS_GOMAXPROCS(1): load-generator threads (bench/scale.sh raises them with the client cores)
# Prints: BENCH label=L metric=M value=V unit=U round=R. Every load step is bounded (duration + timeout).
# Each load step also gives STEP_steal_proxy_pct / STEP_steal_client_pct: the % of the step's wall
# time the hypervisor stole from the proxy core(s) / the client core(s) (/proc/stat steal, mean per
# core); a '# STEAL' line flags a step above STEAL_WARN_PCT (5) on either.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/common.sh"
LABEL=${1:?usage: measure.sh NAME}
PORT=$(target_field "$LABEL" 2); MTLS_PORT=$(target_field "$LABEL" 3); ORIG_PORT=$(target_field "$LABEL" 4)
HTTP_PORT=$(target_field "$LABEL" 5)
ROUND=${ROUND:-1}
DURATION=${DURATION:-10}; CONNS=${CONNS:-50}; LAT_CONNS=${LAT_CONNS:-10}; DELAY_MS=${DELAY_MS:-10}
BULK_CONNS=${BULK_CONNS:-8}; IDLE_CONNS=${IDLE_CONNS:-2000}; IDLE_HOLD=${IDLE_HOLD:-5}
HS_CONC=${HS_CONC:-32}; HS_TIME=${HS_TIME:-10}; HS_MAX=${HS_MAX:-200000}; KA_MAX=${KA_MAX:-50000000}
TESTS=${TESTS-$BENCH_TESTS_ALL}; OUT=${OUT:-}
CLIENT_CNF=$PKI_DIR/client-openssl.cnf
CLK=$(getconf CLK_TCK)
TMP=$(mktemp -d "$FB_ROOT/measure.XXXXXX")
PY=python3
want() { [[ ",$TESTS," == *",$1,"* ]]; }
now() { date +%s.%N; }
emit() {  # emit METRIC VALUE UNIT
  echo "BENCH label=$LABEL metric=$1 value=$2 unit=$3 round=$ROUND"
  [[ -n $OUT ]] && printf '%s\t%s\t%s\t%s\t%s\n' "$LABEL" "$1" "$2" "$3" "$ROUND" >> "$OUT"
  return 0
}
emit_steal() {  # emit_steal PREFIX: the steal of the last steal_begin/steal_end pair
  emit "${1}_steal_proxy_pct" "$ST_proxy" %; emit "${1}_steal_client_pct" "$ST_client" %
  steal_high && echo "# STEAL $1 ($LABEL): ${ST_proxy} % of the proxy core(s) $PROXY_CPU, ${ST_client} % of the client core(s) $CLIENT_CPU stolen by the hypervisor (> $STEAL_WARN_PCT %): noisy step"
  return 0
}
div() { awk -v a="$1" -v b="$2" -v f="${3:-%.1f}" 'BEGIN{ if (b+0 > 0 && a != "NA") printf f, a/b; else printf "NA" }'; }
client() { taskset -c "$CLIENT_CPU" env OPENSSL_CONF="$CLIENT_CNF" "$@"; }

PID=$(cat "$RUN_DIR/$LABEL.pid" 2>/dev/null) || { echo "$LABEL is not running" >&2; exit 1; }
PIDS="$PID $($PY "$HERE/proc.py" descendants "$PID")"
ticks() { $PY "$HERE/proc.py" snap $PIDS | awk '{print $2}'; }
# Contention probe: ECDSA P-256 signs per wall second on the proxy core (1 s, OpenSSL). ~50k quiet.
calib() { taskset -c "$PROXY_CPU" openssl speed -elapsed -mr -seconds 1 ecdsap256 2>/dev/null \
          | awk -F: '$1=="+F4" {printf "%.0f", $4}'; }

echo "# measure label=$LABEL round=$ROUND tls=$PORT mtls=$MTLS_PORT orig=$ORIG_PORT http=$HTTP_PORT pids=[$PIDS] $(date -u +%FT%TZ) loadavg=$(cut -d' ' -f1-3 /proc/loadavg)"
emit calib_sign_start "$(calib)" sign/wall-s
$PY "$HERE/proc.py" sample $PIDS --max-seconds 900 --stop-file "$TMP/stop" > "$TMP/peak" &
SAMPLER=$!
cleanup() { touch "$TMP/stop"; wait "$SAMPLER" 2>/dev/null; rm -rf "$TMP"; }
trap cleanup EXIT

# RSS per idle TLS connection (first, on a fresh process): handshake + one GET /1k each, then hold.
if want idle; then
  res=$(client timeout 180 $PY "$HERE/idle_conns.py" --port "$PORT" -n "$IDLE_CONNS" --hold "$IDLE_HOLD" \
        --deadline 150 $PIDS 2>"$TMP/idle.err")
  echo "# idle: $res $(head -c 300 "$TMP/idle.err")"
  eval "$(tr ' ' '\n' <<<"$res" | grep -E '^[a-z_]+=[-0-9.]+$' | sed 's/^/I_/')"
  emit idle_conns_open "${I_opened:-0}" conns
  emit rss_base_kib "${I_rss_base_kib:-NA}" KiB
  emit rss_idle_kib "${I_rss_held_kib:-NA}" KiB
  emit idle_bytes_per_conn "${I_per_conn_bytes:-NA}" B/conn
  sleep 1
fi

# New full handshakes/s (never resumed), HS_CONC in flight: hs* = handshake + close_notify,
# cps13 = handshake + GET /1k (Connection: close).
hs_test() {  # hs_test METRIC PORT hsload-args...
  local metric=$1 port=$2; shift 2
  local t0 t1 c0 c1 wall cpu res rate errs p99
  steal_begin; c0=$(ticks); t0=$(now)
  res=$(GOMAXPROCS=${HS_GOMAXPROCS:-1} taskset -c "$CLIENT_CPU" timeout $((HS_TIME + 30)) "$HSLOAD" -addr 127.0.0.1:$port \
        -c "$HS_CONC" -d "${HS_TIME}s" -n "$HS_MAX" "$@")
  t1=$(now); c1=$(ticks); steal_end
  wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')
  cpu=$(awk -v d=$((c1 - c0)) -v k="$CLK" -v w="$wall" 'BEGIN{printf "%.2f", d/k/w}')
  echo "# $metric: $res cpu=$cpu"
  rate=$(grep -o 'rate=[0-9.]*' <<<"$res" | cut -d= -f2); errs=$(grep -o 'errors=[0-9]*' <<<"$res" | cut -d= -f2)
  p99=$(grep -o 'p99_ms=[0-9.]*' <<<"$res" | cut -d= -f2)
  emit "${metric}_per_s" "${rate:-0}" conn/s
  emit "${metric}_proxy_cpu" "$cpu" cores
  emit "${metric}_per_core_s" "$(div "${rate:-0}" "$cpu" %.0f)" conn/core-s
  emit "${metric}_p99_ms" "${p99:-NA}" ms
  emit "${metric}_errors" "${errs:-NA}" count
  emit_steal "$metric"
}
want hs13 && hs_test hs13 "$PORT" -tls 1.3 -mode handshake
# TLS 1.2: Go 1.19's crypto/tls (Debian 12's golang-go) sends no extended_master_secret, which
# fipsproxy's FIPS policy requires (the peers accept 1.2 without EMS). So TLS 1.2 handshakes are
# driven by HS12_PROCS parallel `openssl s_time -new` clients (OpenSSL offers EMS), the same for
# every target. s_time is client-bound (~1-2k/s per client core), so read hs12 per proxy core-s.
hs12_stime() {
  local t0 t1 c0 c1 wall cpu conns i
  steal_begin; c0=$(ticks); t0=$(now)
  for i in $(seq 1 "${HS12_PROCS:-4}"); do
    client timeout $((HS_TIME + 20)) openssl s_time -connect 127.0.0.1:$PORT -new -tls1_2 \
      -cipher ECDHE-ECDSA-AES128-GCM-SHA256 -time "$HS_TIME" > "$TMP/stime.$i" 2>&1 &
  done
  wait $(jobs -p | grep -vx "$SAMPLER")
  t1=$(now); c1=$(ticks); steal_end
  wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')
  cpu=$(awk -v d=$((c1 - c0)) -v k="$CLK" -v w="$wall" 'BEGIN{printf "%.2f", d/k/w}')
  conns=$(cat "$TMP"/stime.* | $PY "$HERE/parse.py" stime | cut -d= -f2)
  echo "# hs12 (s_time x${HS12_PROCS:-4}): conns=$conns wall=$wall cpu=$cpu"
  emit hs12_per_s "$(div "$conns" "$wall" %.0f)" conn/s
  emit hs12_proxy_cpu "$cpu" cores
  emit hs12_per_core_s "$(div "$(div "$conns" "$wall" %.1f)" "$cpu" %.0f)" conn/core-s
  emit_steal hs12
}
want hs12 && hs12_stime
want hsmtls && hs_test hsmtls13 "$MTLS_PORT" -tls 1.3 -mode handshake -cert "$PKI_DIR/client.crt" -key "$PKI_DIR/client.key"
want cps && hs_test cps13 "$PORT" -tls 1.3 -mode request -path /1k

# wrk runs; the target's CPU (utime+stime of its process tree) over each run, the steal (ST_*).
wrk_test() {  # wrk_test PREFIX URL CONNS [wrk args...]
  local prefix=$1 url=$2 conns=$3; shift 3
  local t0 t1 c0 c1 wall res
  steal_begin; c0=$(ticks); t0=$(now)
  client timeout $((DURATION + 30)) wrk -t"${WRK_THREADS:-1}" -c"$conns" -d"${DURATION}s" --timeout 5s --latency "$@" "$url" > "$TMP/$prefix.wrk" 2>&1
  t1=$(now); c1=$(ticks); steal_end
  wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')
  W_cpu=$(awk -v d=$((c1 - c0)) -v k="$CLK" -v w="$wall" 'BEGIN{printf "%.2f", d/k/w}')
  res=$($PY "$HERE/parse.py" wrk < "$TMP/$prefix.wrk")
  eval "$(tr ' ' '\n' <<<"$res" | sed 's/^/W_/')"
  echo "# $prefix: $res cpu=$W_cpu steal_proxy=$ST_proxy% steal_client=$ST_client%"
}
URL=https://127.0.0.1:$PORT
if want keepalive; then
  wrk_test ka1k "$URL/1k" "$CONNS"
  emit ka1k_rps "$W_rps" req/s; emit ka1k_p50_ms "$W_p50_ms" ms; emit ka1k_p99_ms "$W_p99_ms" ms
  emit ka1k_proxy_cpu "$W_cpu" cores; emit ka1k_rps_per_core "$(div "$W_rps" "$W_cpu" %.0f)" req/core-s
  emit ka1k_errors $((W_errors + W_non2xx)) count; emit_steal ka1k
fi
# Keep-alive over mTLS (L4, the mTLS port): wrk cannot send a client certificate, so hsload
# -mode keepalive: CONNS connections, each with the client certificate, sequential GET /1k.
if want kamtls; then
  steal_begin; c0=$(ticks); t0=$(now)
  res=$(GOMAXPROCS=${HS_GOMAXPROCS:-1} taskset -c "$CLIENT_CPU" timeout $((DURATION + 30)) "$HSLOAD" \
        -addr 127.0.0.1:$MTLS_PORT -mode keepalive -path /1k -tls 1.3 -c "$CONNS" -d "${DURATION}s" -n "$KA_MAX" \
        -cert "$PKI_DIR/client.crt" -key "$PKI_DIR/client.key")
  t1=$(now); c1=$(ticks); steal_end
  wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')
  cpu=$(awk -v d=$((c1 - c0)) -v k="$CLK" -v w="$wall" 'BEGIN{printf "%.2f", d/k/w}')
  echo "# kamtls: $res cpu=$cpu"
  kv() { grep -o "$1=[0-9.]*" <<<"$res" | cut -d= -f2; }
  rate=$(kv rate)
  emit kamtls1k_rps "${rate:-0}" req/s; emit kamtls1k_p50_ms "$(kv p50_ms)" ms; emit kamtls1k_p99_ms "$(kv p99_ms)" ms
  emit kamtls1k_proxy_cpu "$cpu" cores; emit kamtls1k_rps_per_core "$(div "${rate:-0}" "$cpu" %.0f)" req/core-s
  errs=$(kv errors); emit kamtls1k_errors "${errs:-NA}" count; emit_steal kamtls1k
fi
# Keep-alive through the target's L7 HTTP/1.1 listener (fipsproxy http1, HAProxy mode http, nginx http).
if want kahttp; then
  wrk_test kahttp1k "https://127.0.0.1:$HTTP_PORT/1k" "$CONNS"
  emit kahttp1k_rps "$W_rps" req/s; emit kahttp1k_p50_ms "$W_p50_ms" ms; emit kahttp1k_p99_ms "$W_p99_ms" ms
  emit kahttp1k_proxy_cpu "$W_cpu" cores; emit kahttp1k_rps_per_core "$(div "$W_rps" "$W_cpu" %.0f)" req/core-s
  emit kahttp1k_errors $((W_errors + W_non2xx)) count; emit_steal kahttp1k
fi
if want latency; then  # fixed, light load: LAT_CONNS connections, DELAY_MS think time (~900 req/s)
  DELAY_MS=$DELAY_MS wrk_test lat1k "$URL/1k" "$LAT_CONNS" -s "$HERE/delay.lua"
  emit lat1k_rps "$W_rps" req/s; emit lat1k_p50_ms "$W_p50_ms" ms; emit lat1k_p99_ms "$W_p99_ms" ms
  emit lat1k_proxy_cpu "$W_cpu" cores; emit lat1k_errors $((W_errors + W_non2xx)) count; emit_steal lat1k
fi
if want bulk; then
  wrk_test bulk1m "$URL/1m" "$BULK_CONNS"
  emit bulk1m_mib_s "$W_mib_s" MiB/s; emit bulk1m_proxy_cpu "$W_cpu" cores
  emit bulk1m_mib_s_per_core "$(div "$W_mib_s" "$W_cpu" %.0f)" MiB/core-s
  emit bulk1m_cpu_s_per_gib "$(div "$W_cpu" "$(div "$W_mib_s" 1024 %.4f)" %.2f)" core-s/GiB
  emit bulk1m_errors $((W_errors + W_non2xx)) count; emit_steal bulk1m
fi
# Origination: plaintext HTTP in -> the target opens mTLS to the nginx TLS origin (on the client core).
if want orig; then
  wrk_test orig1k "http://127.0.0.1:$ORIG_PORT/1k" "$CONNS"
  emit orig_ka1k_rps "$W_rps" req/s; emit orig_ka1k_proxy_cpu "$W_cpu" cores
  emit orig_ka1k_rps_per_core "$(div "$W_rps" "$W_cpu" %.0f)" req/core-s
  emit orig_ka1k_errors $((W_errors + W_non2xx)) count; emit_steal orig_ka1k
  wrk_test orig1m "http://127.0.0.1:$ORIG_PORT/1m" "$BULK_CONNS"
  emit orig_bulk1m_mib_s "$W_mib_s" MiB/s; emit orig_bulk1m_proxy_cpu "$W_cpu" cores
  emit orig_bulk1m_mib_s_per_core "$(div "$W_mib_s" "$W_cpu" %.0f)" MiB/core-s
  emit orig_bulk1m_errors $((W_errors + W_non2xx)) count; emit_steal orig_bulk1m
fi

touch "$TMP/stop"; wait "$SAMPLER" 2>/dev/null
emit rss_peak_kib "$(cat "$TMP/peak")" KiB
emit calib_sign_end "$(calib)" sign/wall-s
