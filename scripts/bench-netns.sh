#!/usr/bin/env bash
# Run a command in a fresh network namespace made for the load benchmarks
# (docs/PERFORMANCE.md): `lo` up, plus a veth pair bench0/bench1 carrying
# 127.0.0.2 and 127.0.0.3, because libnice (Janus) skips loopback interfaces
# when gathering candidates (../shared/notes/machine-facts.md). Nothing in the
# namespace can reach another host; it disappears with its last process.
#
#   scripts/bench-netns.sh CMD [ARGS...]
set -euo pipefail
if [ "${1:-}" != "--inside" ]; then
  if [ "$(id -u)" -eq 0 ]; then exec unshare -n "$0" --inside "$@"; fi
  exec unshare -n -r "$0" --inside "$@"
fi
shift
ip link set lo up
ip link add bench0 type veth peer name bench1
ip addr add 127.0.0.2/32 dev bench0
ip addr add 127.0.0.3/32 dev bench1
ip link set bench0 up
ip link set bench1 up
for i in all default lo bench0 bench1; do
  for k in route_localnet=1 rp_filter=0 accept_local=1; do
    sysctl -qw "net.ipv4.conf.$i.$k" || true
  done
done
exec "$@"
