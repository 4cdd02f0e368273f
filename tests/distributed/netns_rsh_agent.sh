#!/bin/sh
# Open MPI's rsh agent (`--mca plm_rsh_agent`) for "hosts" that are network namespaces of
# this machine: where ssh would log in to a host, this enters its namespace.
#
# Open MPI runs `AGENT [options] HOST WORD...` (options only if plm_rsh_args adds some: 4.1
# passes none to an agent that is not named ssh), and means WORD... as one shell command
# line, quoted for a remote shell ("orted -mca ess \"env\" ..."), as ssh would pass it.
# RESIDUAL_NETNS_HOSTS maps host names to namespaces: "10.250.0.1=nsa 10.250.0.2=nsb".
# Arguments before the first known host name are taken for options and skipped.
set -eu
map=${RESIDUAL_NETNS_HOSTS:?"netns_rsh_agent: RESIDUAL_NETNS_HOSTS is not set"}
all="$*"
while [ $# -gt 0 ]; do
  for pair in $map; do
    if [ "${pair%%=*}" = "$1" ]; then
      shift
      exec ip netns exec "${pair#*=}" /bin/sh -c "$*"
    fi
  done
  shift
done
echo "netns_rsh_agent: no host of RESIDUAL_NETNS_HOSTS ($map) in: $all" >&2
exit 255
