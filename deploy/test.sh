#!/usr/bin/env bash
# The test command: bootstrap (idempotent: packages, BoringSSL FIPS build, fipsproxy), then the
# whole ctest suite. Default tier: label "fast". `--all` adds the "slow" tier.
#   deploy/test.sh [--all] [--sanitize] [extra ctest args...]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
label=(-L fast)
boot=()
build_dir=$root/build
while [ $# -gt 0 ]; do
  case "$1" in
    --all) label=(); shift ;;
    --sanitize) boot+=(--sanitize); build_dir=$root/build-asan; shift ;;
    *) break ;;
  esac
done
"$here/bootstrap.sh" "${boot[@]}" --build-dir "$build_dir"
echo "==> [tests] ctest ${label[*]:-(all tiers)}"
cd "$build_dir"
ctest --output-on-failure --no-tests=error -j2 "${label[@]}" "$@"
