#!/usr/bin/env bash
# The lab demo: an FRR edge router with multipath, three nodes each running
# `mooring standalone` from the same manifests (integration/lab/: a
# BgpConf, a BgpPeer to the router, an Eip, two Services — one Local, one
# Cluster — with EndpointSlices placing endpoints on some nodes), a TCP
# responder per node, and a client. Prints the router's BGP table and
# kernel multipath route for each VIP, fires connections at each VIP and
# prints how they spread over the nodes.
#
#   sudo integration/demo.sh          # build, run, tear down
#   sudo integration/demo.sh --keep   # leave the lab up (tear down: --down)
#
# Needs: frr, iproute2, python3 (Debian packages; installed with apt-get when
# missing, as test.sh does) and cargo.
set -euo pipefail
cd "$(dirname "$0")/.."

RUN=${DEMO_RUN:-/tmp/mooring-demo}
VIPS=(203.0.113.10 203.0.113.11)   # web-cluster, web-local: assigned by the model from the Eip
NODES=(demo-node1 demo-node2 demo-node3)
EDGE=demo-edge CLIENT=demo-client
EDGE_AS=64512 NODE_AS=64513
CONNECTIONS=${CONNECTIONS:-300}

down() {
  for f in "$RUN"/*.pid; do [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true; done
  sleep 0.3
  for ns in "$EDGE" "$CLIENT" "${NODES[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
  rm -rf "$RUN" /var/run/frr/"$EDGE"
}

if [ "${1:-}" = --down ]; then down; exit 0; fi
[ "$(id -u)" = 0 ] || { echo "run as root (network namespaces)" >&2; exit 1; }
missing() {
  for b in /usr/lib/frr/zebra /usr/lib/frr/bgpd vtysh ip python3; do
    command -v "$b" >/dev/null || [ -x "$b" ] || echo "$b"
  done
}
if [ -n "$(missing)" ]; then
  # As test.sh does (integration/apt.sh): a fresh Debian machine gets what the demo runs.
  . integration/apt.sh
  apt_install "frr iproute2 python3 (missing: $(missing | tr '\n' ' '))" frr iproute2 python3
fi
if [ -n "$(missing)" ]; then
  echo "missing $(missing | tr '\n' ' '): install frr iproute2 python3" >&2
  exit 1
fi
command -v cargo >/dev/null || { echo "missing cargo: install Rust (https://rustup.rs)" >&2; exit 1; }

echo "== building mooring"
cargo build -q -p mooring-agent --bin mooring
MOORING=$(pwd)/target/debug/mooring

down >/dev/null 2>&1 || true
[ "${1:-}" = --keep ] || trap down EXIT
mkdir -p "$RUN"

echo "== network: edge router, ${#NODES[@]} nodes, client"
for ns in "$EDGE" "$CLIENT" "${NODES[@]}"; do ip netns add "$ns"; ip -n "$ns" link set lo up; done
ip -n "$EDGE" link add br0 type bridge && ip -n "$EDGE" link set br0 up
ip -n "$EDGE" addr add 198.18.0.1/24 dev br0
i=1
for n in "${NODES[@]}"; do
  ip link add "e-$n" type veth peer name eth0 netns "$n"
  ip link set "e-$n" netns "$EDGE"
  ip -n "$EDGE" link set "e-$n" master br0 up
  ip -n "$n" addr add "198.18.0.1$i/24" dev eth0 && ip -n "$n" link set eth0 up
  ip -n "$n" route add default via 198.18.0.1
  for v in "${VIPS[@]}"; do ip -n "$n" addr add "$v/32" dev lo; done
  i=$((i + 1))
done
ip link add e-client type veth peer name eth0 netns "$CLIENT"
ip link set e-client netns "$EDGE"
ip -n "$EDGE" addr add 198.19.0.1/24 dev e-client && ip -n "$EDGE" link set e-client up
ip -n "$CLIENT" addr add 198.19.0.2/24 dev eth0 && ip -n "$CLIENT" link set eth0 up
ip -n "$CLIENT" route add default via 198.19.0.1
ip netns exec "$EDGE" sysctl -qw net.ipv4.ip_forward=1 net.ipv4.fib_multipath_hash_policy=1

echo "== FRR edge (AS $EDGE_AS, multipath)"
cat >"$RUN/frr.conf" <<CONF
frr defaults datacenter
hostname edge
router bgp $EDGE_AS
 bgp router-id 198.18.0.1
 no bgp ebgp-requires-policy
 bgp bestpath as-path multipath-relax
 neighbor NODES peer-group
 neighbor NODES remote-as external
 neighbor NODES timers 1 3
 bgp listen range 198.18.0.0/24 peer-group NODES
 address-family ipv4 unicast
  maximum-paths 16
 exit-address-family
CONF
chown -R frr:frr "$RUN"
ip netns exec "$EDGE" /usr/lib/frr/zebra -d -N "$EDGE" -i "$RUN/zebra.pid"
ip netns exec "$EDGE" /usr/lib/frr/bgpd -d -N "$EDGE" -f "$RUN/frr.conf" -i "$RUN/bgpd.pid"

echo "== mooring standalone and a TCP responder on each node"
cp -r integration/lab "$RUN/manifests"
for n in "${NODES[@]}"; do
  ip netns exec "$n" env MOORING_LOG=info "$MOORING" standalone --node "$n" --config "$RUN/manifests" \
    --state-dir "$RUN/$n-state" >"$RUN/$n.log" 2>&1 &
  echo $! >"$RUN/$n-speaker.pid"
  ip netns exec "$n" python3 -c "
import socketserver
class H(socketserver.BaseRequestHandler):
    def handle(self): self.request.sendall(b'$n\\n')
socketserver.ThreadingTCPServer.allow_reuse_address = True
socketserver.ThreadingTCPServer(('0.0.0.0', 8080), H).serve_forever()" >/dev/null 2>&1 &
  echo $! >"$RUN/$n-responder.pid"
done

want() { case $1 in 203.0.113.10) echo 3 ;; *) echo 2 ;; esac; }
for v in "${VIPS[@]}"; do
  for _ in $(seq 100); do
    [ "$(ip -n "$EDGE" route show "$v" | grep -c 'nexthop via')" -ge "$(want "$v")" ] && break; sleep 0.2
  done
done
echo; echo "== what node1 assigned (every node computes the same)"
grep -h assigned "$RUN/demo-node1.log" | sed 's/.*INFO //'
echo; echo "== edge: BGP sessions"
vtysh -N "$EDGE" -c 'show bgp ipv4 unicast summary' 2>/dev/null | sed -n '/Neighbor/,/^$/p'
fail=0
for v in "${VIPS[@]}"; do
  echo "== edge: BGP table for $v"
  vtysh -N "$EDGE" -c "show bgp ipv4 unicast $v/32" 2>/dev/null | grep -E 'Paths|from|Community' || true
  echo "== edge: kernel route for $v"
  ip -n "$EDGE" route show "$v"
  echo "== $CONNECTIONS connections from the client to $v:8080 (want $(want "$v") nodes)"
  ip netns exec "$CLIENT" python3 -c "
import socket, collections
c = collections.Counter()
for _ in range($CONNECTIONS):
    s = socket.create_connection(('$v', 8080), timeout=2); c[s.recv(64).decode().strip()] += 1; s.close()
for k, n in sorted(c.items()): print(f'  {k}: {n} ({100*n/$CONNECTIONS:.0f}%)')
if len(c) != $(want "$v"): raise SystemExit('traffic did not reach the expected nodes')" || fail=1
done
if [ "${1:-}" = --keep ]; then echo "lab left up (manifests in $RUN/manifests; edit them and watch the router); tear down with: sudo $0 --down"; fi
exit $fail
