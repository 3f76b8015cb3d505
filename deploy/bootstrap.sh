#!/usr/bin/env bash
# fipsproxy bootstrap: from a fresh Debian 12 (bookworm) machine with only Debian's archive
# reachable, as root, to a built fipsproxy linked against our own BoringCrypto FIPS build.
#
#   deploy/bootstrap.sh [--no-apt] [--build-type Release|Debug] [--sanitize] [--build-dir DIR]
#
# Steps (each printed with its time):
#   1. apt: build, runtime and test packages (skipped when all are present, or with --no-apt)
#   2. source: a deb-src entry for bookworm, then `apt-get source android-platform-external-boringssl`
#   3. patch: our libssl patch (deploy/boringssl/fipsproxy-libssl.patch; ssl/ only, never
#      crypto/fipsmodule)
#   4. BoringSSL: `crypto` and `ssl`, clang, -DFIPS=1 -DBUILD_SHARED_LIBS=1, Release, into
#      $FIPSPROXY_CACHE/boringssl-<source version>-<patch sha256[:16]>-<recipe>/ ; plus a reference
#      build (no FIPS, no patch) used only by the startup-check tests S2/S3
#   5. fipsproxy: CMake + Ninja in build/ (or --build-dir), rpath set to the prefix above
# A second run with nothing changed finishes in seconds.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
cache=${FIPSPROXY_CACHE:-/var/cache/fipsproxy}
build_dir=$root/build
build_type=RelWithDebInfo
sanitize=OFF
do_apt=1
while [ $# -gt 0 ]; do
  case "$1" in
    --no-apt) do_apt=0 ;;
    --build-type) build_type=$2; shift ;;
    --sanitize) sanitize=ON ;;
    --build-dir) build_dir=$2; shift ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "bootstrap: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
fmt_ms() { printf '%d.%ds' $(( $1 / 1000 )) $(( $1 % 1000 / 100 )); }
t_all=$(now_ms)
step() { step_name=$1; step_t0=$(now_ms); echo "==> [$step_name] $2"; }
done_step() { echo "    [$step_name] done in $(fmt_ms $(( $(now_ms) - step_t0 )))"; }

packages=(
  # build
  clang cmake ninja-build golang-go googletest perl dpkg-dev pkg-config binutils patch
  libuv1-dev node-llhttp libtomlplusplus-dev catch2
  # tests: real TLS peers and tools
  openssl curl gnutls-bin python3 python3-jsonschema nghttp2-client procps iproute2 util-linux file
  # egress: Python requests through HTTP_PROXY; the system CA bundle egress uses by default
  python3-requests ca-certificates
  # transparent capture test (original_dst): nat REDIRECT in a network namespace
  iptables
  # slow tier: independent scanners; promtool (prometheus) lints /metrics
  sslscan testssl.sh nmap prometheus
  # abuse tests: slow-attack tool + its client-cert wrapper (C16/C18), raw TLS records (C21)
  slowhttptest socat python3-cryptography
)
# --sanitize: clang's ASan/UBSan runtimes and the sanitizer interface headers (not pulled in by
# clang without recommends; a fresh Debian root failed the CI sanitizer build without them).
if [ "$sanitize" = ON ]; then
  packages+=(libclang-rt-14-dev)
fi

step apt "Debian packages"
if [ "$do_apt" = 1 ]; then
  missing=()
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    [ "$(id -u)" = 0 ] || { echo "bootstrap: need root to install: ${missing[*]}" >&2; exit 1; }
    echo "    installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "    all ${#packages[@]} packages present"
  fi
else
  echo "    skipped (--no-apt)"
fi
done_step

srcpkg=android-platform-external-boringssl
patch_file=$here/boringssl/fipsproxy-libssl.patch
patch_sha=$(sha256sum "$patch_file" | cut -c1-64)

step source "BoringSSL source ($srcpkg, Debian bookworm)"
mkdir -p "$cache"
srcfile=/etc/apt/sources.list.d/fipsproxy-deb-src.sources
version=$( (apt-cache showsrc "$srcpkg" 2>/dev/null || true) | awk '/^Version:/ && !v {v=$2} END {print v}')
if [ -z "$version" ]; then
  [ "$(id -u)" = 0 ] || { echo "bootstrap: need root to add $srcfile" >&2; exit 1; }
  # A deb822 entry: a one-line .list beside debian.sources conflicts with it.
  uri=$(awk '/^URIs:/ && !v {v=$2} END {print v}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  cat >"$srcfile" <<EOF
Types: deb-src
URIs: ${uri:-http://deb.debian.org/debian}
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  apt-get update -qq
  version=$( (apt-cache showsrc "$srcpkg" 2>/dev/null || true) | awk '/^Version:/ && !v {v=$2} END {print v}')
fi
[ -n "$version" ] || { echo "bootstrap: no source package $srcpkg found" >&2; exit 1; }
upstream=${version%-*}
srcdir=$cache/src-$version/$srcpkg-$upstream
if [ ! -f "$srcdir/src/CMakeLists.txt" ]; then
  rm -rf "$cache/src-$version"; mkdir -p "$cache/src-$version"
  (cd "$cache/src-$version" && apt-get source -qq "$srcpkg=$version" >/dev/null 2>&1) ||
    { echo "bootstrap: apt-get source $srcpkg=$version failed" >&2; exit 1; }
fi
echo "    $srcpkg $version ($(cat "$srcdir/BORINGSSL_REVISION" 2>/dev/null || echo '?'))"
done_step

# recipe: bump when the build flags below change, so caches are rebuilt.
recipe=r3
key=$version-${patch_sha:0:16}-$recipe
prefix=$cache/boringssl-$key
ref=$cache/boringssl-ref-$version

# prepare_tree DIR PATCH?: a private copy of the source, made buildable offline.
prepare_tree() {
  local dst=$1 with_patch=$2
  rm -rf "$dst"; mkdir -p "$dst"
  cp -a "$srcdir/src/." "$dst/"
  if [ "$with_patch" = 1 ]; then
    # Our patch touches ssl/ only; refuse anything that reaches the FIPS module.
    if grep -E '^\+\+\+ ' "$patch_file" | grep -qv ' b/ssl/'; then
      echo "bootstrap: patch touches files outside ssl/" >&2; exit 1
    fi
    patch -s -p1 -d "$dst" <"$patch_file"
  fi
  # Go runs only build tools (delocate, inject_hash) offline: cut go.mod to its module and
  # go lines, empty go.sum, no proxy, and a go.work that uses the source dir.
  awk '/^module /||/^go /' "$dst/go.mod" >"$dst/go.mod.new" && mv "$dst/go.mod.new" "$dst/go.mod"
  : >"$dst/go.sum"
  printf 'go 1.19\n\nuse %s\n' "$dst" >"$dst/go.work"
  mkdir -p "$dst/third_party"
  rm -rf "$dst/third_party/googletest"
  ln -s /usr/src/googletest/googletest "$dst/third_party/googletest"
}

# build_bssl SRC BUILD PREFIX FIPS SKIP_RPATH
build_bssl() {
  local src=$1 bld=$2 pfx=$3 fips=$4 skip_rpath=$5
  GOWORK=$src/go.work GOPROXY=off GOCACHE=$cache/gocache \
    cmake -S "$src" -B "$bld" -G Ninja -DCMAKE_BUILD_TYPE=Release \
      -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
      "-DCMAKE_C_FLAGS=-ffile-prefix-map=$src=/boringssl/src -ffile-prefix-map=$bld=/boringssl/build" \
      "-DCMAKE_CXX_FLAGS=-ffile-prefix-map=$src=/boringssl/src -ffile-prefix-map=$bld=/boringssl/build" \
      "-DCMAKE_ASM_FLAGS=-ffile-prefix-map=$src=/boringssl/src -ffile-prefix-map=$bld=/boringssl/build" \
      -DFIPS="$fips" -DBUILD_SHARED_LIBS=1 -DCMAKE_SKIP_RPATH="$skip_rpath" >"$bld.log" 2>&1 ||
    { tail -30 "$bld.log" >&2; echo "bootstrap: BoringSSL configure failed ($bld.log)" >&2; exit 1; }
  GOWORK=$src/go.work GOPROXY=off GOCACHE=$cache/gocache \
    ninja -C "$bld" crypto ssl >>"$bld.log" 2>&1 ||
    { tail -30 "$bld.log" >&2; echo "bootstrap: BoringSSL build failed ($bld.log)" >&2; exit 1; }
  rm -rf "$pfx.tmp"; mkdir -p "$pfx.tmp/lib"
  cp -a "$bld/crypto/libcrypto.so" "$bld/ssl/libssl.so" "$pfx.tmp/lib/"
  cp -a "$src/include" "$pfx.tmp/include"
}

step patch+boringssl "FIPS build of crypto+ssl with our libssl patch -> $prefix"
if [ -f "$prefix/.complete" ]; then
  echo "    cached (source $version, patch sha256 ${patch_sha:0:16})"
else
  work=$cache/work-$key
  prepare_tree "$work/src" 1
  # No RUNPATH in libssl (it would name this build directory): fipsproxy's own RUNPATH loads
  # libcrypto.so first, and libssl's dependency resolves to it by soname.
  build_bssl "$work/src" "$work/build" "$prefix" 1 ON
  # Record the module's build-time integrity hash (local symbol BORINGSSL_bcm_text_hash) and
  # the file hashes, for the startup checks and for `fipsproxy fips-status`.
  lib=$prefix.tmp/lib/libcrypto.so
  line=$(nm "$lib" | awk '$3=="BORINGSSL_bcm_text_hash" {v=$1} END {print v}')
  [ -n "$line" ] || { echo "bootstrap: BORINGSSL_bcm_text_hash not found in $lib" >&2; exit 1; }
  start=$((16#$line)); stop=$((start + 32))
  hash=$(objdump -s --start-address=$start --stop-address=$stop "$lib" |
    awk '/^ [0-9a-f]+ / {for (i=2;i<=5;i++) printf "%s", $i}' | cut -c1-64)
  [ ${#hash} = 64 ] || { echo "bootstrap: could not read the module hash" >&2; exit 1; }
  {
    echo "source_package=$srcpkg"
    echo "source_version=$version"
    echo "boringssl_revision=$(cat "$srcdir/BORINGSSL_REVISION" 2>/dev/null || echo unknown)"
    echo "patch_sha256=$patch_sha"
    echo "module_hash=$hash"
    echo "libcrypto_sha256=$(sha256sum "$lib" | cut -c1-64)"
    echo "libssl_sha256=$(sha256sum "$prefix.tmp/lib/libssl.so" | cut -c1-64)"
    echo "clang=$(clang --version | head -1)"
  } >"$prefix.tmp/BUILDINFO"
  rm -rf "$prefix"; mv "$prefix.tmp" "$prefix"; touch "$prefix/.complete"
  rm -rf "$work"
fi
sed 's/^/    /' "$prefix/BUILDINFO"
done_step

step reference "reference BoringSSL (no FIPS, no patch; for startup-check tests only) -> $ref"
if [ -f "$ref/.complete" ]; then
  echo "    cached"
else
  work=$cache/work-ref-$version
  prepare_tree "$work/src" 0
  build_bssl "$work/src" "$work/build" "$ref" 0 ON
  rm -rf "$ref"; mv "$ref.tmp" "$ref"; touch "$ref/.complete"
  rm -rf "$work"
fi
done_step

step fipsproxy "configure and build ($build_type, sanitizers $sanitize) in $build_dir"
mkdir -p "$build_dir"
cmake -S "$root" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE="$build_type" \
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DFIPSPROXY_BORINGSSL_PREFIX="$prefix" -DFIPSPROXY_BORINGSSL_REF="$ref" \
  -DFIPSPROXY_SANITIZE="$sanitize" >"$build_dir/bootstrap-cmake.log" 2>&1 ||
  { cat "$build_dir/bootstrap-cmake.log" >&2; exit 1; }
ninja -C "$build_dir" >"$build_dir/bootstrap-ninja.log" 2>&1 ||
  { tail -60 "$build_dir/bootstrap-ninja.log" >&2; echo "bootstrap: fipsproxy build failed ($build_dir/bootstrap-ninja.log)" >&2; exit 1; }
done_step
echo "==> bootstrap complete in $(fmt_ms $(( $(now_ms) - t_all ))): $build_dir/fipsproxy"
