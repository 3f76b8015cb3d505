#!/usr/bin/env bash
# Reproducible-build check: builds the same commit twice in different directories, at different
# times, and compares the results byte for byte.
#   - libcrypto.so and libssl.so: a second BoringSSL FIPS build in a separate cache directory
#     (FIPSPROXY_CACHE), compared with the one deploy/bootstrap.sh made;
#   - fipsproxy: two builds from two exported copies of HEAD (git archive) in two build
#     directories, against the same BoringSSL prefix (the rpath names that prefix).
# Prints every hash; exits 0 when all pairs are identical, 1 otherwise. Takes a few minutes.
#   deploy/repro-check.sh [WORKDIR]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
work=${1:-$(mktemp -d /tmp/fipsproxy-repro.XXXXXX)}
mkdir -p "$work"
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$root" log -1 --format=%ct)}

echo "==> build 1: deploy/bootstrap.sh (default cache)"
"$here/bootstrap.sh" --no-apt --build-dir "$work/b0" >"$work/b0.log" 2>&1 || { tail -20 "$work/b0.log"; exit 1; }
prefix=$(awk -F'"' '/kBoringsslPrefix/ {print $2}' "$work/b0/generated/build_info.h")

echo "==> build 2: BoringSSL again in another cache directory ($work/cache2)"
sleep 2  # a different wall-clock time for the second build
FIPSPROXY_CACHE=$work/cache2 "$here/bootstrap.sh" --no-apt --build-dir "$work/b-cache2" >"$work/cache2.log" 2>&1 ||
  { tail -20 "$work/cache2.log"; exit 1; }
prefix2=$(awk -F'"' '/kBoringsslPrefix/ {print $2}' "$work/b-cache2/generated/build_info.h")

build_fipsproxy() {  # build_fipsproxy SRC BUILD
  mkdir -p "$1"
  git -C "$root" archive HEAD | tar -x -C "$1"
  cmake -S "$1" -B "$2" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang \
    -DCMAKE_CXX_COMPILER=clang++ -DFIPSPROXY_BORINGSSL_PREFIX="$prefix" >"$2.log" 2>&1
  ninja -C "$2" fipsproxy >>"$2.log" 2>&1 || { tail -20 "$2.log"; exit 1; }
}
echo "==> fipsproxy twice from exported copies of HEAD"
build_fipsproxy "$work/src-a" "$work/build-a"
sleep 2
build_fipsproxy "$work/src-bb" "$work/build-bb"

fail=0
compare() {  # compare LABEL FILE1 FILE2
  local h1 h2
  h1=$(sha256sum "$2" | cut -c1-64)
  h2=$(sha256sum "$3" | cut -c1-64)
  if [ "$h1" = "$h2" ]; then
    echo "identical  $1  $h1"
  else
    echo "DIFFERENT  $1  $h1 != $h2"
    fail=1
  fi
}
compare libcrypto.so "$prefix/lib/libcrypto.so" "$prefix2/lib/libcrypto.so"
compare libssl.so "$prefix/lib/libssl.so" "$prefix2/lib/libssl.so"
compare fipsproxy "$work/build-a/fipsproxy" "$work/build-bb/fipsproxy"
echo "module hash: $(awk -F= '/^module_hash=/ {print $2}' "$prefix/BUILDINFO") / $(awk -F= '/^module_hash=/ {print $2}' "$prefix2/BUILDINFO")"
[ "$fail" = 0 ] && echo "reproducible: yes" || echo "reproducible: NO"
exit "$fail"
