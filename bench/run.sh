#!/usr/bin/env bash
# fipsproxy vs HAProxy vs nginx, per core, same FIPS policy, same certs, same backend, one run.
#   bench/run.sh [--quick] [--rounds N] [--targets fipsproxy,haproxy,nginx] [--tests LIST]
#                [--no-coldstart] [--results DIR]
# --quick: 1 round, 3 s steps, 3 cold starts. Default: 3 rounds, 10 s steps, 10 cold starts.
# With more than one target, `latency` is not measured in the per-target rounds but afterwards, with all
# targets running at once: LAT_SLICES (6) slices of DURATION s per target, round-robin (lib/latency.sh),
# so every target sees the same hypervisor steal; with one target it stays a step of its rounds.
# Prints BENCH label=… metric=… value=… unit=… round=… lines and a markdown table (median per
# metric, ratio fipsproxy / best peer). Writes bench/results/<utc-ts>/{results.tsv,run.log,table.md,policy.txt}.
# Installs nothing: a missing tool is named with its Debian package and the run stops.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib/common.sh"
ROUNDS=3; QUICK=0; TARGETS=fipsproxy,haproxy,nginx; COLD=1; RESULTS=""; TESTS_ARG=""
while (( $# )); do
  case $1 in
    --quick) QUICK=1; ROUNDS=1 ;;
    --rounds) ROUNDS=${2:?}; shift ;;
    --targets) TARGETS=${2:?}; shift ;;
    --tests) TESTS_ARG=${2:?}; shift ;;
    --no-coldstart) COLD=0 ;;
    --results) RESULTS=${2:?}; shift ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
[[ $QUICK == 1 ]] && { export DURATION=${DURATION:-3} HS_TIME=${HS_TIME:-3} IDLE_HOLD=${IDLE_HOLD:-2}; COLD_RUNS=${COLD_RUNS:-3}; }
COLD_RUNS=${COLD_RUNS:-10}
ALL_TESTS=${TESTS_ARG:-${TESTS:-$BENCH_TESTS_ALL}}

# ---- dependencies (checked, never installed here) ----
missing=()
need() { command -v "$1" >/dev/null 2>&1 || missing+=("$2"); }
need haproxy haproxy; need nginx nginx; need wrk wrk; need openssl openssl; need python3 python3
need taskset util-linux; need ss iproute2; need timeout coreutils
[[ -x $HSLOAD ]] || need go golang-go   # a prebuilt hsload (bench/pack.sh bundle) needs no Go
mod=$(awk '$1=="load_module" {gsub(";","",$2); print $2}' "$CONF_DIR/nginx-stream.conf")
[[ -f $mod ]] || missing+=(libnginx-mod-stream)
if (( ${#missing[@]} )); then
  echo "missing Debian packages: ${missing[*]}" >&2
  echo "install with: apt-get install -y --no-install-recommends ${missing[*]}" >&2; exit 2
fi
[[ -x $FIPSPROXY ]] || { echo "no $FIPSPROXY: build it with deploy/bootstrap.sh (or ninja -C build fipsproxy)" >&2; exit 2; }
NCPU=$(nproc)
(( NCPU > PROXY_CPU && NCPU > CLIENT_CPU )) || { echo "need cores $PROXY_CPU and $CLIENT_CPU" >&2; exit 2; }

RESULTS=${RESULTS:-$HERE/results/$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$RESULTS" "$RUN_DIR" "$LOG_DIR" "$FB_ROOT/bin"
export OUT=$RESULTS/results.tsv; : > "$OUT"
IFS=, read -ra TLIST <<<"$TARGETS"
for t in "${TLIST[@]}"; do target_field "$t" 2 | grep -q . || { echo "unknown target $t" >&2; exit 2; }; done
# latency: interleaved over all targets after the rounds (lib/latency.sh), unless only one target
INTERLEAVE=0
if [[ ",$ALL_TESTS," == *,latency,* && ${#TLIST[@]} -gt 1 ]]; then
  INTERLEAVE=1; ALL_TESTS=$(tr , '\n' <<<"$ALL_TESTS" | grep -vx latency | paste -sd,)
fi
export TESTS=$ALL_TESTS   # what measure.sh runs in the rounds (may be empty: then only start + policy)

stop_all() { for t in "${TLIST[@]}"; do stop_one "$t" >/dev/null; done; stop_one backend >/dev/null; }
trap 'stop_all' EXIT
trap 'exit 130' INT TERM

{
echo "# bench/run.sh $(date -u +%FT%TZ) rounds=$ROUNDS quick=$QUICK targets=$TARGETS"
echo "# machine: $NCPU cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), kernel $(uname -r)."
echo "# pinning: proxy under test on core $PROXY_CPU alone; backend nginx + TLS origin + load generators share core $CLIENT_CPU."
(( NCPU == 2 )) && echo "# NOTE: this machine has only 2 cores: the client core is shared by load, backend and origin; other jobs on the machine add noise. Compare ratios within this run only."
echo "# versions: $("$FIPSPROXY" version 2>&1 | head -3 | paste -sd';') | $(haproxy -v | head -1) | $(nginx -v 2>&1) | $(openssl version) | $(wrk -v 2>&1 | head -1) | $(go version 2>/dev/null || echo "hsload prebuilt")"
echo "# loadavg at start: $(cat /proc/loadavg)"

# ---- PKI (ECDSA P-256), bodies, load tool, backend ----
[[ -s $PKI_DIR/client-openssl.cnf ]] || "$HERE/gen-pki.sh" >/dev/null || exit 1
make_www
if [[ ! -x $HSLOAD ]] || { [[ $HERE/lib/hsload.go -nt $HSLOAD ]] && command -v go >/dev/null; }; then
  GOCACHE=$FB_ROOT/gocache GOPATH=$FB_ROOT/gopath GOFLAGS=-mod=mod go build -o "$HSLOAD" "$HERE/lib/hsload.go" || exit 1
fi
"$FIPSPROXY" check -c "$CONF_DIR/fipsproxy.toml" >/dev/null || exit 1

# ---- raw limits on the proxy core, before any load: AES-128-GCM sealing of 16 KiB records and
#      ECDSA P-256 signs/s of the FIPS module fipsproxy runs (`fipsproxy speed`) and of the
#      peers' OpenSSL (`openssl speed`), so bulk and handshake figures read as a share of them.
raw() { echo "BENCH label=$1 metric=$2 value=$3 unit=$4 round=all"; printf '%s\t%s\t%s\t%s\tall\n' "$1" "$2" "$3" "$4" >> "$OUT"; }
if r=$(taskset -c "$PROXY_CPU" "$FIPSPROXY" speed --seconds 2); then
  echo "# raw limits, fipsproxy speed on core $PROXY_CPU: $r"
  for kv in $r; do
    case ${kv%%=*} in
      aes_128_gcm_16k_mib_s) raw raw_boringcrypto aes_128_gcm_16k_mib_s "${kv#*=}" MiB/s ;;
      p256_sign_per_s) raw raw_boringcrypto p256_sign_per_s "${kv#*=}" sign/s ;;
    esac
  done
fi
r=$( { taskset -c "$PROXY_CPU" openssl speed -mr -seconds 2 -bytes 16384 -evp aes-128-gcm 2>/dev/null
       taskset -c "$PROXY_CPU" openssl speed -mr -seconds 2 ecdsap256 2>/dev/null; } | python3 "$HERE/lib/parse.py" speed)
echo "# raw limits, openssl speed on core $PROXY_CPU: $(tr '\n' ' ' <<<"$r")"
while read -r m v _; do
  case $m in
    aes-128-gcm_16384B) raw raw_openssl aes_128_gcm_16k_mib_s "$v" MiB/s ;;
    ecdsa_p256_sign) raw raw_openssl p256_sign_per_s "$v" sign/s ;;
  esac
done <<<"$r"
start_one backend || exit 1

# ---- rounds: each target started fresh, policy-checked (round 1), measured, stopped.
#      The order rotates every round so no target always runs first after a compile burst.
n=${#TLIST[@]}
for r in $(seq 1 "$ROUNDS"); do
  for i in $(seq 0 $((n - 1))); do
    t=${TLIST[$(( (i + r - 1) % n ))]}
    echo "## round $r target $t"
    start_one "$t" || continue
    sleep 1
    if [[ $r == 1 ]]; then  # the TLS port (L4) and the L7 HTTP/1.1 port
      for f in 2 5; do
        "$HERE/verify-policy.sh" "$(target_field "$t" $f)" | sed "s/^/[$t] /" >> "$RESULTS/policy.txt"
      done
      grep "^\[$t\].*policy=" "$RESULTS/policy.txt"
    fi
    [[ -n $TESTS ]] && ROUND=$r "$HERE/lib/measure.sh" "$t"
    stop_one "$t"
  done
  [[ -z $TESTS ]] && break   # nothing measured per target: one round (the policy checks) is enough
done

# ---- fixed-rate latency, interleaved: all targets up at once, slices round-robin ----
if [[ $INTERLEAVE == 1 ]]; then
  echo "## latency: all targets at once, ${LAT_SLICES:-6} slices x ${DURATION:-10}s each, round-robin"
  up=()
  for t in "${TLIST[@]}"; do start_one "$t" && up+=("$t"); done
  sleep 1
  (( ${#up[@]} )) && timeout $(( ${#up[@]} * ${LAT_SLICES:-6} * (${DURATION:-10} + 35) + 60 )) "$HERE/lib/latency.sh" "${up[@]}"
  for t in "${up[@]}"; do stop_one "$t"; done
fi

# ---- cold start: exec -> listening -> first TLS handshake (-> /ready for fipsproxy) ----
if [[ $COLD == 1 ]]; then
  for t in "${TLIST[@]}"; do
    port=$(target_field "$t" 2); extra=()
    [[ $t == fipsproxy ]] && extra=(--ready-unix "$ADMIN_SOCK")
    res=$(timeout 300 python3 "$HERE/lib/coldstart.py" --port "$port" --runs "$COLD_RUNS" --cpu "$PROXY_CPU" \
          --log "$LOG_DIR/coldstart-$t.log" "${extra[@]}" -- $(cmd_for "$t"))
    echo "# coldstart $t: $res"
    for kv in $res; do
      k=${kv%%=*}; v=${kv#*=}; [[ $k == runs ]] && continue
      echo "BENCH label=$t metric=cold_$k value=$v unit=ms round=all"
      printf '%s\tcold_%s\t%s\tms\tall\n' "$t" "$k" "$v" >> "$OUT"
    done
  done
fi
echo "# loadavg at end: $(cat /proc/loadavg)"
} 2>&1 | tee "$RESULTS/run.log"

python3 "$HERE/lib/table.py" "$OUT" --range | tee "$RESULTS/table.md"
grep -h 'policy=' "$RESULTS/policy.txt" 2>/dev/null
echo "results in $RESULTS"
