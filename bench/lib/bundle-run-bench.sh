#!/usr/bin/env bash
# Entry point of the bench bundle made by bench/pack.sh (this file is copied there as run-bench.sh).
#   ./run-bench.sh [scale] [bench/scale.sh options]   multi-core scaling (default: --workers 1,2,4,8,16)
#   ./run-bench.sh run [bench/run.sh options]         the one-core three-way comparison
#   ./run-bench.sh check                              only the checks below
# The bundle carries fipsproxy (+ its BoringSSL FIPS libcrypto/libssl, libuv, toml++), hsload (static
# Go), and Debian 12's haproxy, nginx + stream module, wrk, openssl, ss with their libraries. Each
# program runs through bin/NAME, which sets LD_LIBRARY_PATH=<bundle>/lib for that program only (host
# tools such as python3 keep the host's libraries); PATH gets <bundle>/bin first.
# Assumed on the target (checked below, nothing is installed): x86-64 Linux, run as root (the
# proxies pin cores, raise the fd limit; nginx drops to www-data), glibc and libstdc++ at least as
# new as MANIFEST.txt's needs_glibc / needs_glibcxx (Debian 12 or newer), a user www-data, python3
# (>= 3.9, standard library only), taskset (util-linux), coreutils (timeout, nproc, readlink ...),
# grep, sed, awk, tar, and a writable /tmp (state under /tmp/fpbench, ports 28401-28600 on 127.0.0.1
# free). Results go to <bundle>/bench/results/.
set -uo pipefail
B=$(cd "$(dirname "$(readlink -f "$0")")" && pwd)
cmd=scale
case ${1:-} in scale|run|check) cmd=$1; shift ;; esac

fail=0
err() { echo "run-bench: $*" >&2; fail=1; }
[[ $(uname -m) == x86_64 ]] || err "this bundle is for x86-64, this machine is $(uname -m)"
[[ $(id -u) == 0 ]] || err "run as root (taskset pinning of the peers, fd limits, nginx's user www-data)"
for c in python3 taskset timeout nproc readlink getconf grep sed awk tar mktemp; do
  command -v "$c" >/dev/null || err "missing $c (Debian: $(case $c in python3) echo python3;; taskset) echo util-linux;; grep|sed|tar) echo "$c";; awk) echo mawk;; *) echo coreutils;; esac))"
done
id www-data >/dev/null 2>&1 || err "no user www-data (nginx's 'user www-data'): useradd -r www-data"
need=$(awk '$1=="needs_glibc:" {print $2}' "$B/MANIFEST.txt")
have=$(getconf GNU_LIBC_VERSION 2>/dev/null | awk '{print $2}')
if [[ -n $need && -n $have && $(printf '%s\n%s\n' "$need" "$have" | sort -V | head -1) != "$need" ]]; then
  err "glibc $have here, the bundled programs need >= $need"
fi
command -v python3 >/dev/null && ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 9))' && err "python3 >= 3.9 needed"
# every bundled program must start here (a missing library or symbol shows now, not mid-run)
for p in "fipsproxy version" "haproxy -v" "nginx -v" "openssl version" "ss -V" "hsload -h"; do
  out=$("$B/bin/"$p 2>&1); rc=$?
  if [[ $p == "hsload -h" ]]; then rc=0; grep -q -- -addr <<<"$out" || rc=1; fi
  (( rc == 0 )) || err "bundled ${p%% *} does not run: $(head -3 <<<"$out")"
done
out=$("$B/bin/wrk" -v 2>&1)   # wrk -v prints its version and usage, and exits 1
grep -q '^wrk .*Copyright' <<<"$out" || err "bundled wrk does not run: $(head -3 <<<"$out")"
(( fail == 0 )) || { echo "run-bench: checks failed, see above" >&2; exit 2; }
echo "# run-bench: bundle $B ok on $(uname -n), $(nproc) cores, glibc $have, $(python3 -V 2>&1)"

# nginx loads the stream module from the bundle (the bundle's own copy of the config is adjusted)
sed -i "s#^load_module .*ngx_stream_module\.so;#load_module $B/nginx/modules/ngx_stream_module.so;#" "$B/bench/conf/nginx-stream.conf"
export PATH=$B/bin:$PATH FIPSPROXY=$B/bin/fipsproxy HSLOAD=$B/bin/hsload
case $cmd in
  check) exit 0 ;;
  scale) exec "$B/bench/scale.sh" "$@" ;;
  run)   exec "$B/bench/run.sh" "$@" ;;
esac
