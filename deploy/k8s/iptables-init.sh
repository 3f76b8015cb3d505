#!/bin/sh
# Transparent outbound capture for a fipsproxy sidecar (issue #12).
#
# Run once per pod network namespace, as root with CAP_NET_ADMIN (a Kubernetes init container;
# see deploy/k8s/sidecar.yaml). Every outbound TCP connection the pod's processes open is
# redirected (nat OUTPUT, REDIRECT) to fipsproxy's plaintext capture listener on
# 127.0.0.1:OUTBOUND_PORT (and [::1]:OUTBOUND_PORT with --ipv6), whose cluster has
# type = "original_dst": fipsproxy reads the original destination (SO_ORIGINAL_DST) and
# connects there with mTLS. Not redirected (RETURN), in this order:
#   - connections opened by fipsproxy itself (its uid, --proxy-uid): without this its own
#     upstream connection would be redirected back to it, a loop;
#   - connections to 127.0.0.1 / ::1 (the app's loopback traffic, fipsproxy's own listeners);
#   - destination ports in --exclude-ports and destination CIDRs in --exclude-cidrs.
# Connections that already exist, UDP (DNS), and inbound traffic are not touched.
#
# Usage:
#   iptables-init.sh --proxy-uid UID [--outbound-port 15001] [--exclude-ports 53,22]
#                    [--exclude-cidrs 10.0.0.0/8,fd00::/8] [--ipv6] [--dry-run]
# --dry-run prints the commands without running them. Idempotent: a second run rebuilds the
# chain and adds the OUTPUT jump only once.
set -eu

chain=FIPSPROXY_OUTPUT
proxy_uid=
outbound_port=15001
exclude_ports=
exclude_cidrs=
ipv6=0
dry_run=0

usage() {
  echo "usage: iptables-init.sh --proxy-uid UID [--outbound-port 15001] [--exclude-ports P,...]" \
    "[--exclude-cidrs CIDR,...] [--ipv6] [--dry-run]" >&2
  exit "$1"
}

while [ $# -gt 0 ]; do
  case "$1" in
    --proxy-uid) proxy_uid=${2-}; shift 2 ;;
    --outbound-port) outbound_port=${2-}; shift 2 ;;
    --exclude-ports) exclude_ports=${2-}; shift 2 ;;
    --exclude-cidrs) exclude_cidrs=${2-}; shift 2 ;;
    --ipv6) ipv6=1; shift ;;
    --dry-run) dry_run=1; shift ;;
    -h|--help) usage 0 ;;
    *) echo "iptables-init.sh: unknown argument '$1'" >&2; usage 2 ;;
  esac
done

is_port() { case "$1" in ''|*[!0-9]*) return 1 ;; esac; [ "$1" -ge 1 ] && [ "$1" -le 65535 ]; }
die() { echo "iptables-init.sh: $*" >&2; exit 2; }

case "$proxy_uid" in
  ''|*[!0-9]*) die "--proxy-uid must be fipsproxy's numeric uid (its container's runAsUser)" ;;
esac
[ "$proxy_uid" -ne 0 ] || [ "$dry_run" = 1 ] || [ "${FIPSPROXY_ALLOW_UID0:-}" = 1 ] ||
  die "--proxy-uid 0 would exempt every root process from capture (set FIPSPROXY_ALLOW_UID0=1 to insist)"
is_port "$outbound_port" || die "--outbound-port must be 1..65535, got '$outbound_port'"
old_ifs=$IFS; IFS=,
for p in $exclude_ports; do is_port "$p" || die "--exclude-ports: '$p' is not a port"; done
for c in $exclude_cidrs; do
  case "$c" in */*) ;; *) die "--exclude-cidrs: '$c' is not a CIDR (address/prefix)" ;; esac
done
IFS=$old_ifs

run() {
  echo "+ $*"
  [ "$dry_run" = 1 ] || "$@"
}

# $1: iptables or ip6tables; $2: the loopback address; $3: 4 or 6 (which CIDRs apply).
capture() {
  ipt=$1
  if [ "$dry_run" = 1 ] || ! "$ipt" -t nat -L "$chain" -n >/dev/null 2>&1; then
    run "$ipt" -t nat -N "$chain"
  else
    run "$ipt" -t nat -F "$chain"
  fi
  run "$ipt" -t nat -A "$chain" -m owner --uid-owner "$proxy_uid" -j RETURN
  run "$ipt" -t nat -A "$chain" -d "$2" -j RETURN
  IFS=,
  for p in $exclude_ports; do
    IFS=$old_ifs
    run "$ipt" -t nat -A "$chain" -p tcp --dport "$p" -j RETURN
    IFS=,
  done
  for c in $exclude_cidrs; do
    IFS=$old_ifs
    case "$c" in *:*) family=6 ;; *) family=4 ;; esac
    if [ "$family" = "$3" ]; then
      run "$ipt" -t nat -A "$chain" -d "$c" -j RETURN
    fi
    IFS=,
  done
  IFS=$old_ifs
  run "$ipt" -t nat -A "$chain" -p tcp -j REDIRECT --to-ports "$outbound_port"
  if [ "$dry_run" = 1 ] || ! "$ipt" -t nat -C OUTPUT -p tcp -j "$chain" 2>/dev/null; then
    run "$ipt" -t nat -A OUTPUT -p tcp -j "$chain"
  fi
}

capture iptables 127.0.0.1/32 4
if [ "$ipv6" = 1 ]; then
  capture ip6tables ::1/128 6
fi
[ "$dry_run" = 1 ] || iptables -t nat -S "$chain"
[ "$dry_run" = 1 ] || [ "$ipv6" = 0 ] || ip6tables -t nat -S "$chain"
echo "iptables-init.sh: outbound TCP redirected to port $outbound_port except uid $proxy_uid" \
  "(ipv6: $([ "$ipv6" = 1 ] && echo yes || echo no))"
