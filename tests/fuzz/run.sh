#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan+UBSan) in build-fuzz and runs each one time-boxed.
# Usage: tests/fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]     (default 60 s, all targets)
# Env: FUZZ_BUILD_DIR (build-fuzz),
#      FIPSPROXY_BORINGSSL_PREFIX / FIPSPROXY_BORINGSSL_REF (else the newest under /var/cache/fipsproxy).
# New inputs found go to a scratch corpus under the build dir (the committed seed corpus is
# only read); crashes, leaks, timeouts and OOMs are saved under tests/fuzz/crashes/<target>/
# (gitignored). Exit status: 0 when every target ran its time-box clean, 1 otherwise.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
secs="${1:-60}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(http1_request http1_response config_load xfcc pem_load audit_verify flat_json)
build="${FUZZ_BUILD_DIR:-$root/build-fuzz}"
prefix="${FIPSPROXY_BORINGSSL_PREFIX:-$(ls -d /var/cache/fipsproxy/boringssl-[0-9]* 2>/dev/null | sort | tail -1)}"
ref="${FIPSPROXY_BORINGSSL_REF:-$(ls -d /var/cache/fipsproxy/boringssl-ref-* 2>/dev/null | sort | tail -1)}"

cmake -S "$root" -B "$build" -G Ninja -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DFIPSPROXY_BORINGSSL_PREFIX="$prefix" -DFIPSPROXY_BORINGSSL_REF="$ref" \
  -DFIPSPROXY_FUZZ=ON -DFIPSPROXY_SANITIZE=ON >/dev/null || exit 1
ninja -C "$build" $(printf 'fuzz_%s ' "${targets[@]}") || exit 1

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
summary=()
status=0
for t in "${targets[@]}"; do
  crashes="$here/crashes/$t"
  scratch="$build/fuzz-corpus/$t"
  mkdir -p "$crashes" "$scratch"
  log="$build/fuzz-$t.log"
  echo "== $t: ${secs}s (log $log)"
  before=$(ls "$crashes" | wc -l)
  "$build/fuzz_$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
    -print_final_stats=1 -artifact_prefix="$crashes/" \
    "$scratch" "$here/corpus/$t" >"$log" 2>&1
  rc=$?
  after=$(ls "$crashes" | wc -l)
  execs=$(grep -a 'stat::number_of_executed_units' "$log" | tail -1 | awk '{print $2}')
  rate=$(grep -a 'stat::average_exec_per_sec' "$log" | tail -1 | awk '{print $2}')
  cov=$(grep -aoE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+' "$log" | tail -1)
  verdict=clean
  if [ $rc -ne 0 ] || [ "$after" -gt "$before" ]; then
    verdict="FAILED (rc $rc, $((after - before)) new artifact(s) in $crashes)"
    status=1
    grep -aE 'invariant failed|ERROR: (Address|Leak|libFuzzer)|runtime error|SUMMARY' "$log" | head -5
  fi
  summary+=("$(printf '%-15s %10s execs %8s/s  %-36s %s' "$t" "${execs:-?}" "${rate:-?}" "${cov:-?}" "$verdict")")
done
echo
echo "== summary (${secs}s per target)"
printf '%s\n' "${summary[@]}"
exit $status
