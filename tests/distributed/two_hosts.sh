#!/bin/sh
# Two "hosts" on this machine for the multi-host tests: network namespaces residual-ID-a
# and residual-ID-b joined by a veth pair (rsdIDa, 10.250.0.1/24, in the first and rsdIDb,
# 10.250.0.2/24, in the second: interface names have at most 15 characters), each with
# its loopback up. Traffic stays on that pair: the namespaces have no other interface and
# no route anywhere else.
#
#   two_hosts.sh up ID     creates them (ID: the owning process's pid); first removes the
#                          pairs of owners that are gone (a run killed before its clean-up)
#   two_hosts.sh down ID   kills what still runs inside them and removes them
#
# `up` exits 77 (CTest's and the test's "skip") with the reason on stderr where namespaces
# cannot be made here (not root, no `ip`, no CAP_SYS_ADMIN/CAP_NET_ADMIN in a container);
# on any other failure it removes what it made.
set -u
cmd=${1:-}
id=${2:-}
case "$id" in ''|*[!0-9]*) echo "usage: two_hosts.sh up|down PID" >&2; exit 2;; esac
a=residual-$id-a
b=residual-$id-b
va=rsd${id}a
vb=rsd${id}b

remove() {  # remove NS: end its processes (ours: the job's orted and ranks), then it
  for pid in $(ip netns pids "$1" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
  ip netns delete "$1" 2>/dev/null
  return 0
}

case "$cmd" in
  down)
    remove "$a"
    remove "$b"
    exit 0
    ;;
  up) ;;
  *) echo "usage: two_hosts.sh up|down PID" >&2; exit 2;;
esac

skip() { echo "two_hosts.sh: cannot make network namespaces here: $*" >&2; exit 77; }
[ "$(id -u 2>/dev/null)" = 0 ] || skip "not root"
command -v ip >/dev/null 2>&1 || skip "no \`ip\` (Debian: apt-get install iproute2)"

# Leftovers of runs that were killed (SIGKILL leaves no time to clean up).
for ns in $(ip netns list 2>/dev/null | sed -n 's/^\(residual-[0-9][0-9]*-[ab]\)\( .*\)\{0,1\}$/\1/p'); do
  owner=${ns#residual-}
  owner=${owner%-?}
  [ -d "/proc/$owner" ] || remove "$ns"
done

if ! error=$(ip netns add "$a" 2>&1); then
  skip "ip netns add: $error"
fi
trap 'ip link delete "$va" 2>/dev/null; remove "$a"; remove "$b"' EXIT
# `ip netns exec` remounts / as a slave and /sys for the namespace: inside a chroot whose
# root is not a mount point (scripts/check-fresh-machine) that fails.
if ! error=$(ip netns exec "$a" true 2>&1); then
  remove "$a"
  trap - EXIT
  skip "ip netns exec: $error"
fi
set -e
ip netns add "$b"
ip link add "$va" type veth peer name "$vb"
ip link set "$va" netns "$a"
ip link set "$vb" netns "$b"
ip -n "$a" address add 10.250.0.1/24 dev "$va"
ip -n "$b" address add 10.250.0.2/24 dev "$vb"
ip -n "$a" link set lo up
ip -n "$b" link set lo up
ip -n "$a" link set "$va" up
ip -n "$b" link set "$vb" up
# TCP gives up on unacknowledged data after 5 retransmissions (about 13 s here) instead
# of 15 (about 15 minutes): once a link is cut, mpirun and the far orted then learn that
# their control connection is lost, and end, within the cut-link test's limit. The
# setting belongs to the namespace: nothing outside it changes.
for ns in "$a" "$b"; do
  ip netns exec "$ns" sh -c 'echo 5 > /proc/sys/net/ipv4/tcp_retries2'
done
trap - EXIT
