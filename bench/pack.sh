#!/usr/bin/env bash
# Build a self-contained bench bundle for a machine that reaches no package archive:
#   bench/pack.sh OUTDIR            -> OUTDIR/ and OUTDIR.tar.gz
# OUTDIR holds: run-bench.sh (the entry point; see its header), bin/ (one small wrapper per bundled
# program, setting LD_LIBRARY_PATH=OUTDIR/lib for that program only), libexec/ (the programs),
# lib/ (their shared libraries), nginx/modules/ngx_stream_module.so, etc/openssl.cnf (Debian's),
# bench/ (the scripts and configs of this checkout, without results) and MANIFEST.txt (packages,
# versions, the newest glibc symbol version the binaries need, sha256 of every file).
# Bundled: our fipsproxy ($FIPSPROXY, default build/fipsproxy) with the exact BoringSSL FIPS
# libcrypto.so / libssl.so it links (read from ldd) and Debian's libuv / toml++; hsload (Go, static,
# CGO_ENABLED=0); from Debian .deb files (apt-get download of the installed version, dpkg -x):
# haproxy, nginx + libnginx-mod-stream, wrk, openssl, iproute2's ss, and every shared library they
# load except glibc's and the GCC runtime (libc, libm, libpthread, libdl, librt, ld-linux,
# libstdc++, libgcc_s), which the target must provide (Debian 12 or any glibc/libstdc++ as new).
# Needs here: the package archive (apt-get download), the peers installed (ldd resolves their
# libraries, dpkg -S names the packages), go, readelf/objdump (binutils). Root not required.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
OUT=${1:?usage: bench/pack.sh OUTDIR}
FIPSPROXY=${FIPSPROXY:-$REPO/build/fipsproxy}
[[ -x $FIPSPROXY ]] || { echo "no $FIPSPROXY (build it, or set FIPSPROXY)" >&2; exit 2; }
for c in apt-get dpkg dpkg-query ldd go readelf objdump sha256sum tar; do
  command -v "$c" >/dev/null || { echo "pack.sh needs $c" >&2; exit 2; }
done
mkdir -p "$OUT"; OUT=$(cd "$OUT" && pwd)
[[ -z $(ls -A "$OUT") ]] || { echo "$OUT is not empty" >&2; exit 2; }
WORK=$(mktemp -d /tmp/fp-pack.XXXXXX); trap 'rm -rf "$WORK"' EXIT
STAGE=$WORK/root; mkdir -p "$STAGE" "$WORK/debs"; chmod 755 "$WORK" "$WORK/debs"

# program name -> its path on this machine (and inside the .deb)
declare -A PROG=([haproxy]=/usr/sbin/haproxy [nginx]=/usr/sbin/nginx [wrk]=/usr/bin/wrk
                 [openssl]=/usr/bin/openssl [ss]=/usr/bin/ss)
MODULE=/usr/lib/nginx/modules/ngx_stream_module.so
for p in "${!PROG[@]}"; do [[ -x ${PROG[$p]} ]] || { echo "not installed here: ${PROG[$p]} (apt-get install $p)" >&2; exit 2; }; done
[[ -f $MODULE ]] || { echo "not installed here: $MODULE (apt-get install libnginx-mod-stream)" >&2; exit 2; }

SKIP='^(linux-vdso\.so|libc\.so|libm\.so|libpthread\.so|libdl\.so|librt\.so|libresolv\.so|libutil\.so|ld-linux|libstdc\+\+\.so|libgcc_s\.so)'
pkg_of() {  # the Debian package owning FILE (tries the /usr-merged spellings)
  local f=$1 r c
  r=$(readlink -f "$f")
  for c in "$f" "$r" "${f#/usr}" "/usr${f#/usr}" "${r#/usr}" "/usr${r#/usr}"; do
    dpkg -S "$c" 2>/dev/null | grep -v '^diversion' | head -1 | cut -d: -f1 && return 0
  done
  echo "no package owns $f" >&2; return 1
}

# ---- which packages and libraries (ldd gives the transitive closure) ----
declare -A PKGS=() LIBS=() BSSL=()
for e in "${PROG[@]}" "$MODULE" "$FIPSPROXY"; do
  [[ $e == "$FIPSPROXY" ]] || PKGS[$(pkg_of "$e")]=1
  while read -r so path; do
    [[ $so =~ $SKIP || -z $path ]] && continue
    [[ $path == not ]] && { echo "$e: $so not found here" >&2; exit 1; }
    if [[ $e == "$FIPSPROXY" && ( $so == libssl.so || $so == libcrypto.so ) ]]; then BSSL[$so]=$path; continue; fi
    LIBS[$so]=1; PKGS[$(pkg_of "$path")]=1
  done < <(ldd "$e" | awk '$2 == "=>" {print $1, $3} $2 != "=>" {print $1, ""}')
done
[[ -n ${BSSL[libssl.so]:-} && -n ${BSSL[libcrypto.so]:-} ]] || { echo "$FIPSPROXY does not link libssl.so/libcrypto.so (BoringSSL)" >&2; exit 1; }

# ---- download the installed versions and unpack them ----
: > "$WORK/packages.txt"
for p in $(printf '%s\n' "${!PKGS[@]}" | sort); do
  v=$(dpkg-query -W -f '${Version}' "$p"); note=""; dd=$WORK/debs/$p
  mkdir -p "$dd"; chmod 755 "$dd"
  if ! ( cd "$dd" && apt-get download -q "$p=$v" >/dev/null 2>"$WORK/apt.err" ); then
    # the installed version may have left the archive: take the archive's candidate, and say so
    ( cd "$dd" && apt-get download -q "$p" >/dev/null 2>>"$WORK/apt.err" ) \
      || { echo "apt-get download $p failed:" >&2; cat "$WORK/apt.err" >&2; exit 1; }
    note=" (installed here: $v, not in the archive)"
  fi
  deb=$(ls "$dd"/*.deb)
  [[ -n $note ]] && echo "pack: $p $v is not in the archive, bundling $(dpkg-deb -f "$deb" Version)" >&2
  printf '%s %s%s\n' "$p" "$(dpkg-deb -f "$deb" Version)" "$note" >> "$WORK/packages.txt"
done
for d in "$WORK"/debs/*/*.deb; do dpkg -x "$d" "$STAGE"; done

mkdir -p "$OUT"/{bin,libexec,lib,nginx/modules,etc,bench}
from_stage() {  # from_stage PATH-ON-HOST DEST: the same file out of the unpacked .debs
  local f=$1 c
  for c in "$STAGE$f" "$STAGE${f#/usr}" "$STAGE/usr${f#/usr}"; do [[ -e $c ]] && { cp -L "$c" "$2"; return 0; }; done
  echo "not in the unpacked packages: $f" >&2; return 1
}
for p in "${!PROG[@]}"; do from_stage "${PROG[$p]}" "$OUT/libexec/$p"; done
from_stage "$MODULE" "$OUT/nginx/modules/"
from_stage /etc/ssl/openssl.cnf "$OUT/etc/openssl.cnf"
for so in "${!LIBS[@]}"; do
  f=$(find "$STAGE/lib" "$STAGE/usr/lib" -name "$so" 2>/dev/null | head -1)
  [[ -n $f ]] || { echo "library $so not in the unpacked packages" >&2; exit 1; }
  cp -L "$f" "$OUT/lib/$so"
done
cp -L "${BSSL[libssl.so]}" "${BSSL[libcrypto.so]}" "$OUT/lib/"
cp "$FIPSPROXY" "$OUT/libexec/fipsproxy"
CGO_ENABLED=0 GOCACHE=/tmp/fpbench/gocache GOPATH=/tmp/fpbench/gopath GOFLAGS=-mod=mod \
  go build -trimpath -o "$OUT/bin/hsload" "$HERE/lib/hsload.go"
readelf -d "$OUT/bin/hsload" 2>/dev/null | grep -q NEEDED && { echo "hsload is not static" >&2; exit 1; }

# ---- wrappers: each bundled program with the bundle's libraries, nothing else's environment changed ----
for p in fipsproxy "${!PROG[@]}"; do
  conf='OPENSSL_CONF=${OPENSSL_CONF:-$d/etc/openssl.cnf} '
  [[ $p == fipsproxy || $p == ss ]] && conf=""
  cat > "$OUT/bin/$p" <<EOF
#!/bin/sh
# bench bundle: run libexec/$p with the bundle's shared libraries (LD_LIBRARY_PATH for it only).
d=\$(dirname "\$(dirname "\$(readlink -f "\$0")")")
LD_LIBRARY_PATH=\$d/lib ${conf}exec "\$d/libexec/$p" "\$@"
EOF
  chmod 755 "$OUT/bin/$p"
done

# ---- scripts and configs ----
tar -C "$REPO" --exclude=bench/results --exclude='__pycache__' --exclude='*.pyc' -cf - bench | tar -C "$OUT" -xf -
touch "$OUT/bin/hsload"   # newer than bench/lib/hsload.go: never rebuilt there
cp "$HERE/lib/bundle-run-bench.sh" "$OUT/run-bench.sh"; chmod 755 "$OUT/run-bench.sh"

# ---- check: every bundled ELF resolves its non-glibc libraries inside OUT/lib only ----
bad=0
for e in "$OUT"/libexec/* "$OUT/nginx/modules/ngx_stream_module.so"; do
  while read -r so path; do
    [[ $so =~ $SKIP ]] && continue
    [[ $path == "$OUT/lib/"* ]] || { echo "$e: $so -> $path (outside the bundle)" >&2; bad=1; }
  done < <(LD_LIBRARY_PATH=$OUT/lib ldd "$e" | awk '$2 == "=>" {print $1, $3}')
done
(( bad == 0 )) || exit 1
glibc=$(for e in "$OUT"/libexec/* "$OUT"/lib/* "$OUT"/nginx/modules/*; do objdump -T "$e" 2>/dev/null; done \
        | grep -o 'GLIBC_[0-9][0-9.]*' | sort -uV | tail -1)
glibcxx=$(for e in "$OUT"/libexec/* "$OUT"/lib/*; do objdump -T "$e" 2>/dev/null; done \
        | grep -o 'GLIBCXX_[0-9][0-9.]*' | sort -uV | tail -1)

{
  echo "# fipsproxy bench bundle, made $(date -u +%FT%TZ) on $(uname -n) ($(. /etc/os-release && echo "$PRETTY_NAME"), $(uname -m))"
  echo "source: $(git -C "$REPO" describe --always --dirty 2>/dev/null || echo unknown)"
  echo "fipsproxy: $FIPSPROXY; $("$OUT/bin/fipsproxy" version 2>&1 | head -3 | paste -sd';')"
  echo "boringssl: ${BSSL[libssl.so]} ${BSSL[libcrypto.so]}"
  echo "hsload: $(go version), CGO_ENABLED=0 (static)"
  echo "needs_glibc: ${glibc#GLIBC_}"
  echo "needs_glibcxx: ${glibcxx#GLIBCXX_}"
  echo "## Debian packages unpacked (dpkg -x), name version"
  cat "$WORK/packages.txt"
  echo "## sha256"
  (cd "$OUT" && find bin libexec lib nginx etc -type f -print0 | sort -z | xargs -0 sha256sum)
} > "$OUT/MANIFEST.txt"
tar -C "$(dirname "$OUT")" -czf "$OUT.tar.gz" "$(basename "$OUT")"
echo "bundle: $OUT ($(du -sh "$OUT" | cut -f1)), $OUT.tar.gz ($(du -h "$OUT.tar.gz" | cut -f1)); needs glibc >= ${glibc#GLIBC_}, libstdc++ with ${glibcxx}"
