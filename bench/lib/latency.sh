#!/usr/bin/env bash
# Fixed-rate latency, interleaved: every target runs at once (each on its own ports, all pinned to
# the proxy core; a target not being measured is idle), and LAT_SLICES slices of DURATION s each are
# measured round-robin A,B,C,A,B,C,... so that all targets sample the same host noise. Why: on a VM
# the hypervisor steals CPU in bursts of tens of seconds (30-50 % of a core, /proc/stat steal), which
# alone turns a sub-ms p99 into 10-45 ms for any proxy; measured one target after another, each
# target's latency step falls into a different steal window.
#   lib/latency.sh TARGET...      (each target running: its PID in $RUN_DIR/NAME.pid)
# Env: DURATION(10) LAT_SLICES(6) LAT_CONNS(10) DELAY_MS(10) OUT (TSV to append) REF(fipsproxy)
#      STEAL_WARN_PCT(5) WRK_THREADS(1)
# Per slice k (cycle k = the k-th slice of every target): BENCH label=T metric=lat1k_{p50_ms,p99_ms,
# rps,proxy_cpu,errors,steal_proxy_pct,steal_client_pct} value=V unit=U round=sK (lib/table.py's
# median over rounds = the median over slices). Per cycle, for REF against the best (lowest) peer of
# the same cycle: lat1k_p99_paired_ratio and lat1k_p50_paired_ratio, round=sK (median = the paired figure).
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/common.sh"
(( $# )) || { echo "usage: latency.sh TARGET..." >&2; exit 2; }
DURATION=${DURATION:-10}; LAT_SLICES=${LAT_SLICES:-6}; LAT_CONNS=${LAT_CONNS:-10}; DELAY_MS=${DELAY_MS:-10}
OUT=${OUT:-}; REF=${REF:-fipsproxy}
CLK=$(getconf CLK_TCK)
TMP=$(mktemp -d "$FB_ROOT/latency.XXXXXX"); trap 'rm -rf "$TMP"' EXIT

emit() {  # emit LABEL METRIC VALUE UNIT ROUND
  echo "BENCH label=$1 metric=$2 value=$3 unit=$4 round=$5"
  [[ -n $OUT ]] && printf '%s\t%s\t%s\t%s\t%s\n' "$@" >> "$OUT"
  return 0
}

declare -A PIDS PORT
TL=()
for t in "$@"; do
  pid=$(cat "$RUN_DIR/$t.pid" 2>/dev/null) && kill -0 "$pid" 2>/dev/null || { echo "# latency: $t is not running, skipped"; continue; }
  PIDS[$t]="$pid $(python3 "$HERE/proc.py" descendants "$pid")"; PORT[$t]=$(target_field "$t" 2); TL+=("$t")
done
(( ${#TL[@]} )) || { echo "# latency: no target running" >&2; exit 1; }
ticks() { python3 "$HERE/proc.py" snap $1 | awk '{print $2}'; }

echo "# latency (interleaved): targets ${TL[*]}, $LAT_SLICES slices x ${DURATION}s each, round-robin; wrk -c$LAT_CONNS," \
     "DELAY_MS=$DELAY_MS think time; proxy core(s) $PROXY_CPU, client core(s) $CLIENT_CPU; $(date -u +%FT%TZ)"
: > "$TMP/slices"
for k in $(seq 1 "$LAT_SLICES"); do
  for t in "${TL[@]}"; do
    steal_begin; c0=$(ticks "${PIDS[$t]}"); t0=$(date +%s.%N)
    taskset -c "$CLIENT_CPU" env OPENSSL_CONF="$PKI_DIR/client-openssl.cnf" DELAY_MS="$DELAY_MS" \
      timeout $((DURATION + 30)) wrk -t"${WRK_THREADS:-1}" -c"$LAT_CONNS" -d"${DURATION}s" --timeout 5s --latency \
      -s "$HERE/delay.lua" "https://127.0.0.1:${PORT[$t]}/1k" > "$TMP/wrk" 2>&1
    t1=$(date +%s.%N); c1=$(ticks "${PIDS[$t]}"); steal_end
    cpu=$(awk -v d=$((c1 - c0)) -v k="$CLK" -v a="$t0" -v b="$t1" 'BEGIN{ if (b > a) printf "%.2f", d/k/(b-a); else print "NA" }')
    res=$(python3 "$HERE/parse.py" wrk < "$TMP/wrk")
    unset W_rps W_p50_ms W_p99_ms W_errors W_non2xx
    eval "$(tr ' ' '\n' <<<"$res" | grep -E '^[a-z0-9_]+=[-0-9.]*$' | sed 's/^/W_/')"
    echo "# lat1k slice s$k $t: $res cpu=$cpu steal_proxy=$ST_proxy% steal_client=$ST_client%"
    steal_high && echo "# STEAL slice s$k $t: ${ST_proxy} % of the proxy core(s), ${ST_client} % of the client core(s) stolen by the hypervisor (> $STEAL_WARN_PCT %): this slice's latency shows the host, not the proxy"
    emit "$t" lat1k_rps "${W_rps:-0}" req/s "s$k"
    emit "$t" lat1k_p50_ms "${W_p50_ms:-NA}" ms "s$k"; emit "$t" lat1k_p99_ms "${W_p99_ms:-NA}" ms "s$k"
    emit "$t" lat1k_proxy_cpu "$cpu" cores "s$k"
    emit "$t" lat1k_errors $(( ${W_errors:-0} + ${W_non2xx:-0} )) count "s$k"
    emit "$t" lat1k_steal_proxy_pct "$ST_proxy" % "s$k"; emit "$t" lat1k_steal_client_pct "$ST_client" % "s$k"
    printf '%s %s %s %s\n' "$k" "$t" "${W_p50_ms:-NA}" "${W_p99_ms:-NA}" >> "$TMP/slices"
  done
done

# Paired figure: per cycle, REF's percentile / the lowest peer's in the same cycle.
if [[ " ${TL[*]} " == *" $REF "* ]] && (( ${#TL[@]} > 1 )); then
  for col in 3:p50 4:p99; do
    c=${col%%:*}; p=${col#*:}
    awk -v ref="$REF" -v c="$c" '
      $c != "NA" && $c + 0 > 0 { if ($2 == ref) r[$1] = $c; else if (!($1 in b) || $c < b[$1]) b[$1] = $c }
      END { for (k in r) if (k in b) printf "%s %.3f\n", k, r[k] / b[k] }' "$TMP/slices" | sort -n > "$TMP/ratio.$p"
    while read -r k v; do emit "$REF" "lat1k_${p}_paired_ratio" "$v" ratio "s$k"; done < "$TMP/ratio.$p"
    echo "# lat1k paired $p ratio $REF / best peer, per cycle: $(awk '{printf "%s ", $2}' "$TMP/ratio.$p")->" \
         "median $(sort -g -k2 "$TMP/ratio.$p" | awk '{v[NR] = $2} END { if (NR) printf "%.3f", NR % 2 ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2; else print "NA" }')"
  done
fi
