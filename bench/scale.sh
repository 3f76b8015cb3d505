#!/usr/bin/env bash
# Multi-core scaling: keep-alive 1 KiB req/s and TLS 1.3 full handshakes/s with N proxy workers,
# for fipsproxy (`workers = N`), HAProxy (`nbthread N` + cpu-map) and nginx (`worker_processes N`
# + worker_cpu_affinity), and the scaling efficiency rate(N) / (N x rate(1)).
#   bench/scale.sh [--workers 1,2,4,8,16] [--targets fipsproxy,haproxy,nginx] [--tests keepalive,hs13]
#                  [--duration S] [--cap] [--results DIR]
# Pinning: the proxy on cores 0..N-1 (HAProxy threads and nginx workers one per core; fipsproxy's
# N threads confined to those cores); the plaintext backend (nginx, one worker per client core, at
# most 8) and the load generators (wrk -t K, hsload GOMAXPROCS=K) on the K = nproc-N other cores.
# N > nproc is skipped with a message. N = nproc leaves no core for load and backend: the run says
# so and they share all cores with the proxy (that row is marked "shared" and is not comparable);
# with --cap such an N runs as nproc-2 workers instead, and the cap is printed.
# Load grows with N: 50 x N wrk connections, 32 x N handshakes in flight. --duration S (10) per step.
# Prints BENCH label=... metric=... workers=N value=... unit=... lines and markdown tables
# (rate, proxy cores used, efficiency). Writes RESULTS/{scale.tsv,run.log,table.md,conf-N/}
# (default bench/results/scale-<utc-ts>/); the configs are generated from bench/conf per N, never
# edited in place. Installs nothing: a missing tool is named with its Debian package.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib/common.sh"
BASE_CONF=$CONF_DIR
WORKERS=1,2,4,8,16; TARGETS=fipsproxy,haproxy,nginx; TESTS_ARG=keepalive,hs13; DUR=10; CAP=0; RESULTS=""
while (( $# )); do
  case $1 in
    --workers) WORKERS=${2:?}; shift ;;
    --targets) TARGETS=${2:?}; shift ;;
    --tests) TESTS_ARG=${2:?}; shift ;;
    --duration) DUR=${2:?}; shift ;;
    --cap) CAP=1 ;;
    --results) RESULTS=${2:?}; shift ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
[[ $DUR =~ ^[0-9]+$ ]] && (( DUR >= 1 && DUR <= 300 )) || { echo "--duration: 1..300 seconds" >&2; exit 2; }
[[ $WORKERS =~ ^[0-9]+(,[0-9]+)*$ ]] || { echo "--workers: a list like 1,2,4" >&2; exit 2; }
for t in ${TESTS_ARG//,/ }; do
  [[ $t == keepalive || $t == hs13 ]] || { echo "--tests: keepalive and/or hs13 (got $t)" >&2; exit 2; }
done

missing=()
need() { command -v "$1" >/dev/null 2>&1 || missing+=("$2"); }
need nginx nginx; need wrk wrk; need openssl openssl; need python3 python3
need taskset util-linux; need ss iproute2; need timeout coreutils
[[ ,$TARGETS, == *,haproxy,* ]] && need haproxy haproxy
[[ -x $HSLOAD ]] || need go golang-go
NGINX_STREAM_MODULE=$(awk '$1=="load_module" {gsub(";","",$2); print $2}' "$BASE_CONF/nginx-stream.conf")
[[ ,$TARGETS, != *,nginx,* || -f $NGINX_STREAM_MODULE ]] || missing+=(libnginx-mod-stream)
if (( ${#missing[@]} )); then
  echo "missing Debian packages: ${missing[*]}" >&2
  echo "install with: apt-get install -y --no-install-recommends ${missing[*]}" >&2; exit 2
fi
[[ -x $FIPSPROXY ]] || { echo "no $FIPSPROXY: build it (deploy/bootstrap.sh) or set FIPSPROXY" >&2; exit 2; }
IFS=, read -ra TLIST <<<"$TARGETS"
for t in "${TLIST[@]}"; do target_field "$t" 2 | grep -q . || { echo "unknown target $t" >&2; exit 2; }; done
NCPU=$(nproc)
mapfile -t NLIST < <(tr , '\n' <<<"$WORKERS" | awk '$1 > 0' | sort -n | uniq)

RESULTS=${RESULTS:-$HERE/results/scale-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$RESULTS" "$RUN_DIR" "$LOG_DIR" "$FB_ROOT/bin"
TSV=$RESULTS/scale.tsv; : > "$TSV"

stop_all() { for t in "${TLIST[@]}"; do stop_one "$t" >/dev/null; done; stop_one backend >/dev/null; }
trap 'stop_all' EXIT
trap 'exit 130' INT TERM

cpus() { (( $1 == $2 )) && echo "$1" || echo "$1-$2"; }   # cpus FIRST LAST -> taskset list
gen_conf() {  # gen_conf DIR N BACKEND_WORKERS: bench/conf with N proxy workers pinned to cores 0..N-1
  local dir=$1 n=$2 bw=$3 masks="" i j m
  mkdir -p "$dir"; cp "$BASE_CONF"/* "$dir/"
  for ((i = 0; i < n; i++)); do
    m=""; for ((j = n - 1; j >= 0; j--)); do (( j == i )) && m+=1 || m+=0; done; masks+=" $m"
  done
  sed -i "s/^workers = 1$/workers = $n/" "$dir/fipsproxy.toml"
  sed -i "s/^\(\s*\)nbthread 1$/\1nbthread $n\n\1cpu-map auto:1\/1-$n 0-$((n - 1))/" "$dir/haproxy.cfg"
  sed -i "s/^worker_processes 1;$/worker_processes $n;\nworker_cpu_affinity$masks;/" "$dir/nginx-stream.conf"
  sed -i "s/^worker_processes 1;$/worker_processes $bw;/" "$dir/backend-nginx.conf"
  grep -q "^workers = $n$" "$dir/fipsproxy.toml" && grep -q "nbthread $n$" "$dir/haproxy.cfg" \
    && grep -q "^worker_processes $n;" "$dir/nginx-stream.conf" \
    && grep -q "^worker_processes $bw;" "$dir/backend-nginx.conf" \
    || { echo "config templates in $BASE_CONF changed shape: cannot set $n workers" >&2; return 1; }
}

{
echo "# bench/scale.sh $(date -u +%FT%TZ) workers=$WORKERS targets=$TARGETS tests=$TESTS_ARG duration=${DUR}s cap=$CAP"
echo "# machine: $NCPU cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), kernel $(uname -r), host $(uname -n)"
echo "# versions: $("$FIPSPROXY" version 2>&1 | head -1) | $(command -v haproxy >/dev/null && haproxy -v | head -1) | $(nginx -v 2>&1) | $(openssl version) | $(wrk -v 2>&1 | head -1)"
echo "# loadavg at start: $(cat /proc/loadavg)"
[[ -s $PKI_DIR/client-openssl.cnf ]] || "$HERE/gen-pki.sh" >/dev/null || exit 1
make_www
if [[ ! -x $HSLOAD ]] || { [[ $HERE/lib/hsload.go -nt $HSLOAD ]] && command -v go >/dev/null; }; then
  GOCACHE=$FB_ROOT/gocache GOPATH=$FB_ROOT/gopath GOFLAGS=-mod=mod go build -o "$HSLOAD" "$HERE/lib/hsload.go" || exit 1
fi
prev=0
for want_n in "${NLIST[@]}"; do
  n=$want_n; shared=0
  if (( n > NCPU )); then echo "# SKIP workers=$n: this machine has only $NCPU cores"; continue; fi
  if (( n == NCPU )); then
    if (( CAP )); then
      n=$((NCPU - 2))
      if (( n < 1 || n <= prev )); then echo "# SKIP workers=$want_n: capped to nproc-2=$n, nothing new to measure"; continue; fi
      echo "# CAP workers=$want_n -> $n (nproc-2 = $n, so that load generators and backend keep 2 cores)"
    else
      shared=1
      echo "# NOTE workers=$n: no free core for load generators and backend on this $NCPU-core machine;" \
           "they share cores 0-$((NCPU - 1)) with the proxy. Rates at workers=$n are not comparable (marked shared)."
    fi
  fi
  prev=$n
  if (( shared )); then k=$NCPU; CLIENT_CPU=$(cpus 0 $((NCPU - 1))); else k=$((NCPU - n)); CLIENT_CPU=$(cpus "$n" $((NCPU - 1))); fi
  PROXY_CPU=$(cpus 0 $((n - 1))); BACKEND_CPU=$CLIENT_CPU
  bw=$(( k < 8 ? k : 8 ))
  CONF_DIR=$RESULTS/conf-$n
  gen_conf "$CONF_DIR" "$n" "$bw" || exit 1
  "$FIPSPROXY" check -c "$CONF_DIR/fipsproxy.toml" >/dev/null || exit 1
  export CONF_DIR PROXY_CPU CLIENT_CPU BACKEND_CPU
  export WRK_THREADS=$k HS_GOMAXPROCS=$k CONNS=$((50 * n)) HS_CONC=$((32 * n)) HS_MAX=$((200000 * n)) DURATION=$DUR HS_TIME=$DUR TESTS=$TESTS_ARG
  echo "## workers=$n proxy cores $PROXY_CPU; backend ($bw nginx workers) + load (wrk -t$k -c$CONNS, hsload GOMAXPROCS=$k -c$HS_CONC) on cores $CLIENT_CPU"
  stop_one backend >/dev/null; start_one backend || exit 1
  for t in "${TLIST[@]}"; do
    echo "## workers=$n target $t"
    start_one "$t" || { echo "# $t failed to start with $n workers (log $LOG_DIR/$t.log)"; continue; }
    sleep 1
    part=$RESULTS/.part.tsv; : > "$part"
    ROUND=$n OUT=$part timeout $((4 * DUR + 180)) "$HERE/lib/measure.sh" "$t" \
      | sed -E 's/^BENCH label=(\S+) metric=(\S+) value=(\S+) unit=(\S+) round=(\S+)$/BENCH label=\1 metric=\2 workers=\5 value=\3 unit=\4/'
    awk -F'\t' -v OFS='\t' -v s="$shared" -v c="$PROXY_CPU/$CLIENT_CPU" '{print $0, s, c}' "$part" >> "$TSV"
    rm -f "$part"
    stop_one "$t"
  done
done
stop_one backend
echo "# loadavg at end: $(cat /proc/loadavg)"
} 2>&1 | tee "$RESULTS/run.log"

python3 "$HERE/lib/scale_table.py" "$TSV" | tee "$RESULTS/table.md"
echo "results in $RESULTS"
