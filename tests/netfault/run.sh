#!/usr/bin/env bash
# The network-fault suite: the stand-in on a test host of its own (a network namespace), one
# veth pair away from the client (another namespace): 10.200.0.1/30 (client) and 10.200.0.2/30
# (test host), no other address. tc tbf, a blackhole route and `ip link set down` are real
# kernel faults; tests/netfault/proxy.py, on the test host, does what this kernel cannot
# (no netem): delay with jitter, stalls, resets mid-body, 1-byte segments. Scenarios, checks
# and the cloudauth-vs-libcurl table: tests/netfault/faults.py.
#
#   tests/netfault/run.sh [NAME-PART]   every scenario, or those whose name contains NAME-PART
#
# Needs root (or CAP_NET_ADMIN) for the namespaces. Without it the suite says so loudly and
# exits 0, so that the rest of `make test` still runs. Everything it creates (namespaces, veth,
# qdiscs, routes, processes) is removed on every exit.
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/run/lib.sh
require_library

out=target/netfault
mkdir -p "$out"
${CC:-cc} -std=c99 -Wall -Wextra -Werror -O1 -g -Iinclude tests/netfault/client.c \
  "${LINK[@]}" -lcurl -o "$out/netfault_client"

tag=$$
srv=ca-nf-srv-$tag cli=ca-nf-cli-$tag vs=nfs$tag vc=nfc$tag
dir=$(mktemp -d)
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  ip netns del "$srv" 2>/dev/null || true # takes the veth pair, its qdiscs and routes with it
  ip netns del "$cli" 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

skip_loudly() {
  echo "################################################################################" >&2
  echo "## NETWORK-FAULT SUITE NOT RUN: $1" >&2
  echo "## It needs root or CAP_NET_ADMIN (network namespaces, veth, tc). Nothing was tested." >&2
  echo "################################################################################" >&2
  exit 0
}
command -v ip >/dev/null && command -v tc >/dev/null || skip_loudly "iproute2 (ip, tc) is not installed"
setup() {
  ip netns add "$srv" && ip netns add "$cli" &&
    ip link add "$vc" netns "$cli" type veth peer name "$vs" netns "$srv" &&
    ip -n "$cli" addr add 10.200.0.1/30 dev "$vc" &&
    ip -n "$srv" addr add 10.200.0.2/30 dev "$vs" &&
    ip -n "$cli" link set lo up && ip -n "$srv" link set lo up &&
    ip -n "$cli" link set "$vc" up && ip -n "$srv" link set "$vs" up &&
    ip netns exec "$srv" tc qdisc add dev "$vs" root tbf rate 1mbit burst 4kb latency 1s &&
    ip netns exec "$srv" tc qdisc del dev "$vs" root
}
setup 2>"$dir/err" || skip_loudly "cannot set up the test network: $(grep -v '^$' "$dir/err" | head -1)"
# Small writes go out as they are (the 1-byte segment case); only inside the test host.
ip netns exec "$srv" sysctl -qw net.ipv4.tcp_autocorking=0 2>/dev/null || true

# The stand-in listens on the test host's own 127.0.0.1; the proxy on 10.200.0.2:8080.
ip netns exec "$srv" python3 tests/standin/server.py --port 0 --lifetime 600 --port-file "$dir/port" >/dev/null &
pids+=($!)
echo '{}' >"$dir/mode.json"
for _ in $(seq 1 100); do [[ -s $dir/port ]] && break; sleep 0.1; done
[[ -s $dir/port ]] || { echo "netfault: the stand-in did not start" >&2; exit 1; }
ip netns exec "$srv" python3 tests/netfault/proxy.py --listen 10.200.0.2:8080 \
  --upstream "127.0.0.1:$(<"$dir/port")" --mode-file "$dir/mode.json" --lifetime 600 \
  --ready-file "$dir/proxy" &
pids+=($!)
for _ in $(seq 1 100); do [[ -s $dir/proxy ]] && break; sleep 0.1; done
[[ -s $dir/proxy ]] || { echo "netfault: the proxy did not start" >&2; exit 1; }

python3 tests/netfault/faults.py --srv "$srv" --cli "$cli" --srv-dev "$vs" \
  --client "$out/netfault_client" --mode-file "$dir/mode.json" --standin-port "$(<"$dir/port")" \
  ${1:+--only "$1"}
