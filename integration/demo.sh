#!/usr/bin/env bash
# The lab demo: an FRR edge router with multipath, three nodes each running
# Mooring's BGP speaker (`mooring announce`) for the same VIP with
# next-hop self, and a client. Prints the router's BGP table and kernel
# multipath route, fires connections at the VIP and prints how they spread.
#
#   sudo integration/demo.sh          # build, run, tear down
#   sudo integration/demo.sh --keep   # leave the lab up (tear down: --down)
#
# Needs: frr, iproute2, python3 (Debian packages) and cargo.
set -euo pipefail
cd "$(dirname "$0")/.."

RUN=${DEMO_RUN:-/tmp/mooring-demo}
VIP=203.0.113.10
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
for b in /usr/lib/frr/zebra /usr/lib/frr/bgpd vtysh ip python3; do
  command -v "$b" >/dev/null || [ -x "$b" ] || { echo "missing $b: apt-get install frr iproute2 python3" >&2; exit 1; }
done

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
  ip -n "$n" addr add "$VIP/32" dev lo
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

echo "== mooring speakers and a TCP responder on each node"
i=1
for n in "${NODES[@]}"; do
  ip netns exec "$n" "$MOORING" announce --as $NODE_AS --router-id "198.18.0.1$i" --hostname "$n" \
    --peer "198.18.0.1,as=$EDGE_AS,hold=3,connect-retry=1" --prefix "$VIP/32" >"$RUN/$n.log" 2>&1 &
  echo $! >"$RUN/$n-speaker.pid"
  ip netns exec "$n" python3 -c "
import socketserver
class H(socketserver.BaseRequestHandler):
    def handle(self): self.request.sendall(b'$n\n')
socketserver.ThreadingTCPServer.allow_reuse_address = True
socketserver.ThreadingTCPServer(('$VIP', 8080), H).serve_forever()" >/dev/null 2>&1 &
  echo $! >"$RUN/$n-responder.pid"
  i=$((i + 1))
done

for _ in $(seq 100); do
  [ "$(ip -n "$EDGE" route show "$VIP" | grep -c 'nexthop via')" -ge 3 ] && break; sleep 0.2
done
echo; echo "== edge: BGP sessions"
vtysh -N "$EDGE" -c 'show bgp ipv4 unicast summary' 2>/dev/null | sed -n '/Neighbor/,/^$/p'
echo "== edge: BGP table for $VIP"
vtysh -N "$EDGE" -c "show bgp ipv4 unicast $VIP/32" 2>/dev/null
echo "== edge: kernel route for $VIP"
ip -n "$EDGE" route show "$VIP"
echo "== $CONNECTIONS connections from the client to $VIP:8080"
ip netns exec "$CLIENT" python3 -c "
import socket, collections
c = collections.Counter()
for _ in range($CONNECTIONS):
    s = socket.create_connection(('$VIP', 8080), timeout=2); c[s.recv(64).decode().strip()] += 1; s.close()
for k, v in sorted(c.items()): print(f'  {k}: {v} ({100*v/$CONNECTIONS:.0f}%)')
if len(c) != 3: raise SystemExit('traffic did not reach all three nodes')"
if [ "${1:-}" = --keep ]; then echo "lab left up; tear down with: sudo $0 --down"; fi
