# Shared settings for bench/ (sourced). All runtime state under $FB_ROOT (scratch, /tmp/fpbench:
# the conf/ files hard-code that path). Nothing listens or connects beyond 127.0.0.1 / Unix sockets.
FB_ROOT=/tmp/fpbench
PKI_DIR=$FB_ROOT/pki
RUN_DIR=$FB_ROOT/run
LOG_DIR=$FB_ROOT/log
WWW_DIR=$FB_ROOT/www
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REPO_DIR=$(cd "$BENCH_DIR/.." && pwd)
CONF_DIR=${CONF_DIR:-$BENCH_DIR/conf}   # bench/scale.sh points this at generated per-N configs
FIPSPROXY=${FIPSPROXY:-$REPO_DIR/build/fipsproxy}
PROXY_CPU=${PROXY_CPU:-0}      # the proxy under test
CLIENT_CPU=${CLIENT_CPU:-1}    # load generators and the plaintext backend / TLS origin
BACKEND_CPU=${BACKEND_CPU:-$CLIENT_CPU}
HSLOAD=${HSLOAD:-$FB_ROOT/bin/hsload}   # a prebuilt one in the bench/pack.sh bundle

# name       tls    mtls   orig   http   (orig = plaintext in -> mTLS out to the nginx TLS origin
#                                        :28600; http = TLS, L7 HTTP/1.1 proxy: fipsproxy mode http1,
#                                        HAProxy mode http, nginx http {})
TARGETS_TABLE='
fipsproxy    28401  28402  28403  28404
haproxy      28421  28422  28423  28424
nginx        28411  28412  28413  28414
'
BACKEND_SOCK=$RUN_DIR/backend.sock
ORIGIN_PORT=28600
ADMIN_SOCK=$RUN_DIR/fipsproxy-admin.sock

# All load steps of lib/measure.sh, in their order (bench/run.sh and measure.sh default to these).
BENCH_TESTS_ALL=idle,hs13,hs12,hsmtls,cps,keepalive,kamtls,kahttp,latency,bulk,orig

# Hypervisor steal: the 8th value of a cpuN line of /proc/stat ("steal", ticks of CLK_TCK) is the
# time the VM's vCPU wanted to run but the host ran something else. Measured per step on the proxy
# and client cores; a step with a few % steal has noisy tail latency whatever the proxy.
STEAL_WARN_PCT=${STEAL_WARN_PCT:-5}
cpu_list_expand() {  # "0-3,5" -> "0 1 2 3 5" (a taskset list)
  local part parts out=()
  IFS=, read -ra parts <<<"$1"
  for part in "${parts[@]}"; do
    if [[ $part == *-* ]]; then out+=($(seq "${part%-*}" "${part#*-}")); else out+=("$part"); fi
  done
  echo "${out[*]}"
}
steal_ticks() {  # steal_ticks CPULIST -> steal ticks summed over those cores
  awk -v l=" $(cpu_list_expand "$1") " '$1 ~ /^cpu[0-9]+$/ && index(l, " " substr($1, 4) " ") {s += $9}
       END {print s + 0}' /proc/stat
}
steal_begin() { ST_t0=$(date +%s.%N); ST_p0=$(steal_ticks "$PROXY_CPU"); ST_c0=$(steal_ticks "$CLIENT_CPU"); }
steal_end() {  # sets ST_proxy / ST_client: % of the wall time since steal_begin stolen (mean per core)
  local t1 p1 c1 np nc clk
  t1=$(date +%s.%N); p1=$(steal_ticks "$PROXY_CPU"); c1=$(steal_ticks "$CLIENT_CPU"); clk=$(getconf CLK_TCK)
  np=$(wc -w <<<"$(cpu_list_expand "$PROXY_CPU")"); nc=$(wc -w <<<"$(cpu_list_expand "$CLIENT_CPU")")
  read -r ST_proxy ST_client < <(awk -v dp=$((p1 - ST_p0)) -v dc=$((c1 - ST_c0)) -v np="$np" -v nc="$nc" \
    -v k="$clk" -v w="$(awk -v a="$ST_t0" -v b="$t1" 'BEGIN{print b-a}')" \
    'BEGIN { if (w <= 0 || np < 1 || nc < 1) print "NA NA"; else printf "%.1f %.1f\n", 100*dp/k/np/w, 100*dc/k/nc/w }')
}
steal_high() { awk -v a="$ST_proxy" -v b="$ST_client" -v t="$STEAL_WARN_PCT" 'BEGIN{exit !(a+0 > t || b+0 > t)}'; }

target_field() { awk -v n="$1" -v c="$2" '$1==n {print $c}' <<<"$TARGETS_TABLE"; }
target_names() { awk 'NF {print $1}' <<<"$TARGETS_TABLE"; }

cmd_for() {  # the server's command line (run in the foreground)
  case $1 in
    backend)   echo "nginx -c $CONF_DIR/backend-nginx.conf -e $LOG_DIR/backend.err" ;;
    fipsproxy) echo "$FIPSPROXY run -c $CONF_DIR/fipsproxy.toml" ;;
    haproxy)   echo "haproxy -db -f $CONF_DIR/haproxy.cfg" ;;
    nginx)     echo "nginx -c $CONF_DIR/nginx-stream.conf -e $LOG_DIR/nginx.err" ;;
    *) return 1 ;;
  esac
}
cpu_for() { [[ $1 == backend ]] && echo "$BACKEND_CPU" || echo "$PROXY_CPU"; }
port_for() { [[ $1 == backend ]] && echo "$ORIGIN_PORT" || target_field "$1" 2; }

wait_port() {  # wait_port PORT [TIMEOUT_S]
  local p=$1 t=${2:-10} i=0
  while (( i < t*20 )); do
    ss -Hltn "sport = :$p" | grep -q . && return 0
    sleep 0.05; i=$((i+1))
  done
  return 1
}
alive() { [[ -f $RUN_DIR/$1.pid ]] && kill -0 "$(cat "$RUN_DIR/$1.pid")" 2>/dev/null; }

start_one() {  # start NAME pinned to its core; PID (the server itself, via exec) in RUN_DIR/NAME.pid
  local name=$1 cmd cpu port
  cmd=$(cmd_for "$name") || { echo "unknown target: $name" >&2; return 1; }
  cpu=$(cpu_for "$name"); port=$(port_for "$name")
  alive "$name" && { echo "$name already running (pid $(cat "$RUN_DIR/$name.pid"))"; return 0; }
  if ss -Hltn "sport = :$port" | grep -q .; then echo "port $port busy, not starting $name" >&2; return 1; fi
  ( ulimit -n "$(ulimit -Hn)"; exec taskset -c "$cpu" $cmd >"$LOG_DIR/$name.log" 2>&1 ) &
  echo $! > "$RUN_DIR/$name.pid"
  if wait_port "$port" 15; then
    echo "# started $name pid=$(cat "$RUN_DIR/$name.pid") port=$port cpu=$cpu"
  else
    echo "FAILED to start $name (log $LOG_DIR/$name.log):" >&2; tail -5 "$LOG_DIR/$name.log" >&2
    stop_one "$name"; return 1
  fi
}

stop_one() {  # TERM the recorded PID (KILL after 10 s), then its recorded children. Nothing else.
  local name=$1 pid kids k i
  [[ -f $RUN_DIR/$name.pid ]] || return 0
  pid=$(cat "$RUN_DIR/$name.pid")
  if kill -0 "$pid" 2>/dev/null; then
    kids=$(python3 "$BENCH_DIR/lib/proc.py" descendants "$pid")
    kill -TERM "$pid" 2>/dev/null
    for i in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    for k in $kids; do kill -0 "$k" 2>/dev/null && kill -TERM "$k" 2>/dev/null; done
    for k in $kids; do  # wait for the recorded children too (an nginx worker may outlive its master)
      for i in $(seq 1 50); do kill -0 "$k" 2>/dev/null || break; sleep 0.1; done
      kill -0 "$k" 2>/dev/null && kill -KILL "$k" 2>/dev/null
    done
    wait "$pid" 2>/dev/null
    echo "# stopped $name (pid $pid)"
  fi
  rm -f "$RUN_DIR/$name.pid"
}

make_www() {
  mkdir -p "$WWW_DIR"
  [[ -s $WWW_DIR/1m ]] || {
    head -c 1024 /dev/urandom > "$WWW_DIR/1k"; head -c 65536 /dev/urandom > "$WWW_DIR/64k"
    head -c 1048576 /dev/urandom > "$WWW_DIR/1m"; }
  chmod 755 "$FB_ROOT" "$WWW_DIR"; chmod 644 "$WWW_DIR"/*
}
