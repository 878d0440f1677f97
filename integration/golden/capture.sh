#!/usr/bin/env bash
# Capture real BGP messages exchanged by FRR, GoBGP and BIRD 2 and store them as
# golden fixtures for the bgp codec crate:
#
#   bgp/tests/fixtures/<scenario>.pcap   the raw capture (tshark, pcap format)
#   bgp/tests/fixtures/<scenario>.hex    one BGP message per line:
#                                        "<sender-label> <TYPE> <hex incl. marker>"
#
# Scenarios (each: two network namespaces joined by one veth, an IPv4 and an IPv6
# eBGP session over that link, the "receiver" side is passive):
#   frr    FRR   AS 4200000001  ->  GoBGP AS 64512
#   gobgp  GoBGP AS 4200000002  ->  FRR   AS 64512
#   bird   BIRD  AS 4200000003  ->  GoBGP AS 64512
#
# Usage (from the repo root): sudo integration/golden/capture.sh [scenario...]
# Needs (Debian): frr gobgpd bird2 tshark iproute2 python3. Must run as root.
# Only touches namespaces named mgold-*, a temp dir, /var/run/frr/mgold-* and the
# fixture files. Everything it starts is stopped by PID on exit (also on failure).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
FIX="$REPO/bgp/tests/fixtures"
KEEPALIVE_CAP=3          # keep at most this many KEEPALIVEs per sender in the .hex
SETTLE=${SETTLE:-4}      # seconds to keep capturing after the receiver has the routes

[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
for c in ip tshark python3 gobgpd gobgp bird birdc vtysh /usr/lib/frr/zebra /usr/lib/frr/bgpd; do
  command -v "$c" >/dev/null || { echo "missing $c" >&2; exit 1; }
done

RUN=$(mktemp -d /tmp/mgold.XXXXXX)
chmod 755 "$RUN"
PIDS=()          # every process we started (or pid file of a daemonized one)
FRR_NAMES=()     # FRR instance names (-N), for /var/run/frr/<name>

log() { echo "[capture] $*" >&2; }

kill_pid() {  # kill one pid (TERM, then KILL), never by name
  local p=$1
  [ -n "$p" ] || return 0
  kill "$p" 2>/dev/null || return 0
  for _ in $(seq 30); do kill -0 "$p" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$p" 2>/dev/null || true
}

del_ns() {  # stop whatever still runs inside one of our namespaces, then delete it
  local ns=$1 p
  for p in $(ip netns pids "$ns" 2>/dev/null); do kill_pid "$p"; done
  ip netns del "$ns" 2>/dev/null || true
}

cleanup() {
  local p f n
  for p in "${PIDS[@]}"; do
    if [ -f "$p" ]; then f=$(cat "$p" 2>/dev/null || true); kill_pid "$f"; else kill_pid "$p"; fi
  done
  PIDS=()
  for n in $(ip netns list | awk '{print $1}' | grep '^mgold-' || true); do del_ns "$n"; done
  for n in "${FRR_NAMES[@]}"; do rm -rf "/var/run/frr/$n"; done
  FRR_NAMES=()
}
final_cleanup() { cleanup; rm -rf "$RUN"; }
trap final_cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- topology

# link <scenario-index> <nsA> <nsB>: veth between A (x.1 / ::1) and B (x.2 / ::2)
# IPv4 198.18.<i>.0/30, IPv6 2001:db8:ffff:ff0<i>::/64, fixed MACs so the
# link-local addresses are stable: A fe80::ff:fe00:<i>01, B fe80::ff:fe00:<i>02
link() {
  local i=$1 a=$2 b=$3 ns
  for ns in "$a" "$b"; do
    ip netns add "$ns"
    ip -n "$ns" link set lo up
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=0 \
      net.ipv6.conf.default.accept_dad=0 net.ipv6.conf.all.accept_dad=0
  done
  ip link add "mgold${i}a" netns "$a" address "02:00:00:00:0${i}:01" type veth \
    peer name "mgold${i}b" netns "$b" address "02:00:00:00:0${i}:02"
  ip -n "$a" addr add "198.18.$i.1/30" dev "mgold${i}a"
  ip -n "$b" addr add "198.18.$i.2/30" dev "mgold${i}b"
  ip -n "$a" addr add "2001:db8:ffff:ff0$i::1/64" dev "mgold${i}a" nodad
  ip -n "$b" addr add "2001:db8:ffff:ff0$i::2/64" dev "mgold${i}b" nodad
  ip -n "$a" link set "mgold${i}a" up
  ip -n "$b" link set "mgold${i}b" up
  for _ in $(seq 50); do   # wait until both link-locals are usable
    if ip -n "$a" -6 addr show dev "mgold${i}a" scope link | grep -q 'inet6 fe80' &&
       ip -n "$b" -6 addr show dev "mgold${i}b" scope link | grep -q 'inet6 fe80' &&
       ! ip -n "$a" -6 addr show tentative | grep -q inet6 &&
       ! ip -n "$b" -6 addr show tentative | grep -q inet6; then return 0; fi
    sleep 0.1
  done
  log "link-local addresses not ready"; return 1
}

start_capture() {  # ns iface pcap
  local ns=$1 ifc=$2 out=$3 err="$RUN/tshark-$1.err"
  ip netns exec "$ns" tshark -q -i "$ifc" -f 'tcp port 179' -F pcap -w "$out" 2>"$err" &
  CAP_PID=$!
  PIDS+=("$CAP_PID")
  for _ in $(seq 100); do grep -q 'Capturing on' "$err" 2>/dev/null && return 0; sleep 0.1; done
  cat "$err" >&2; log "tshark did not start"; return 1
}

stop_capture() {
  kill -INT "$CAP_PID" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$CAP_PID" 2>/dev/null || return 0; sleep 0.1; done
  kill_pid "$CAP_PID"
}

wait_for() {  # seconds description command...
  local t=$1 what=$2; shift 2
  for _ in $(seq $((t * 2))); do "$@" >/dev/null 2>&1 && { log "ok: $what"; return 0; }; sleep 0.5; done
  log "TIMEOUT waiting for: $what"; return 1
}

# ---------------------------------------------------------------- daemons

start_frr() {  # ns name(-N) config-text
  local ns=$1 name=$2 d="$RUN/$2"
  mkdir -p "$d"
  cat >"$d/frr.conf"
  chown -R frr:frr "$d"
  FRR_NAMES+=("$name")
  rm -rf "/var/run/frr/$name"
  PIDS+=("$d/zebra.pid" "$d/bgpd.pid")
  ip netns exec "$ns" /usr/lib/frr/zebra -d -N "$name" -i "$d/zebra.pid"
  ip netns exec "$ns" /usr/lib/frr/bgpd -d -N "$name" -f "$d/frr.conf" -i "$d/bgpd.pid"
}
vty() {  # vtysh for one instance; hide the harmless "no vtysh.conf" warning
  local name=$1; shift
  vtysh -N "$name" "$@" 2> >(grep -v "Can't open configuration file" >&2)
}

start_gobgp() {  # ns name config-text
  local ns=$1 name=$2 d="$RUN/$2"
  mkdir -p "$d"
  cat >"$d/gobgp.toml"
  # own UTS namespace so that the FQDN capability carries a fixed hostname (= name)
  ip netns exec "$ns" unshare --uts sh -c "hostname $name && exec gobgpd -f $d/gobgp.toml --api-hosts 127.0.0.1:50051" \
    >"$d/gobgpd.log" 2>&1 &
  PIDS+=("$!")
  wait_for 10 "gobgpd api in $ns" ip netns exec "$ns" gobgp global
}
gob() { local ns=$1; shift; ip netns exec "$ns" gobgp "$@"; }

start_bird() {  # ns name config-text
  local ns=$1 name=$2 d="$RUN/$2"
  mkdir -p "$d"
  cat >"$d/bird.conf"
  PIDS+=("$d/bird.pid")
  ip netns exec "$ns" bird -c "$d/bird.conf" -s "$d/bird.ctl" -P "$d/bird.pid"
}

# gobgp neighbor block: addr peer-as family passive(true/false) admin-down(true/false)
gobgp_neighbor() {
  cat <<EOF
[[neighbors]]
  [neighbors.config]
    neighbor-address = "$1"
    peer-as = $2
    admin-down = $5
  [neighbors.timers.config]
    connect-retry = 2
    hold-time = 9
    keepalive-interval = 3
  [neighbors.transport.config]
    passive-mode = $4
  [neighbors.graceful-restart.config]
    enabled = true
    restart-time = 120
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "$3"
    [neighbors.afi-safis.mp-graceful-restart.config]
      enabled = true
EOF
}

# GoBGP receiver of scenario <i>: AS 64512 in ns B (x.2), passive towards the
# sender A's x.1 and ff0<i>::1 (one IPv4, one IPv6 session).
# start_gobgp_receiver <scenario-index> <ns> <name> <sender-as>
start_gobgp_receiver() {
  local i=$1 ns=$2 name=$3 as=$4
  { cat <<EOF
[global.config]
  as = 64512
  router-id = "198.18.$i.2"
EOF
    gobgp_neighbor "198.18.$i.1" "$as" ipv4-unicast true false
    gobgp_neighbor "2001:db8:ffff:ff0$i::1" "$as" ipv6-unicast true false
  } >"$RUN/$name.toml"
  start_gobgp "$ns" "$name" <"$RUN/$name.toml"
}

# Wait until that receiver has both IPv4 and both IPv6 routes of the sender in
# its adj-in, then print its adj-in.
# gobgp_wait_routes <scenario-index> <ns> <sender> <v4-prefix> <v4-prefix> <v6-prefix> <v6-prefix>
gobgp_wait_routes() {
  local i=$1 ns=$2 who=$3
  wait_for 40 "GoBGP got $who's IPv4 routes" bash -c \
    "ip netns exec $ns gobgp neighbor 198.18.$i.1 adj-in -a ipv4 | grep -q $4 &&
     ip netns exec $ns gobgp neighbor 198.18.$i.1 adj-in -a ipv4 | grep -q $5"
  wait_for 40 "GoBGP got $who's IPv6 routes" bash -c \
    "ip netns exec $ns gobgp neighbor 2001:db8:ffff:ff0$i::1 adj-in -a ipv6 | grep -q $6 &&
     ip netns exec $ns gobgp neighbor 2001:db8:ffff:ff0$i::1 adj-in -a ipv6 | grep -q $7"
  gob "$ns" neighbor "198.18.$i.1" adj-in -a ipv4 >&2
  gob "$ns" neighbor "2001:db8:ffff:ff0$i::1" adj-in -a ipv6 >&2
}

# ---------------------------------------------------------------- extraction

extract() {  # pcap hex scenario-title ip=label...
  python3 - "$@" <<'PY'
import subprocess, sys, collections
pcap, out, title = sys.argv[1:4]
labels = dict(a.split('=', 1) for a in sys.argv[4:])
cap = int(__import__('os').environ.get('KEEPALIVE_CAP', '3'))
TYPES = {1: 'OPEN', 2: 'UPDATE', 3: 'NOTIFICATION', 4: 'KEEPALIVE', 5: 'ROUTE-REFRESH'}
rows = subprocess.run(
    ['tshark', '-r', pcap, '-n', '-o', 'tcp.desegment_tcp_streams:FALSE',
     '-o', 'tcp.relative_sequence_numbers:TRUE', '-Y', 'tcp.len > 0',
     '-T', 'fields', '-E', 'separator=\t', '-e', 'frame.number', '-e', 'tcp.stream',
     '-e', 'ip.src', '-e', 'ipv6.src', '-e', 'tcp.srcport', '-e', 'tcp.dstport',
     '-e', 'tcp.seq', '-e', 'tcp.payload'],
    check=True, capture_output=True, text=True).stdout.splitlines()
dirs = collections.defaultdict(list)     # (stream, src) -> [(seq, frame, bytes)]
for r in rows:
    frame, stream, s4, s6, sport, dport, seq, payload = r.split('\t')
    src = s4 or s6
    dirs[(int(stream), src)].append((int(seq), int(frame), bytes.fromhex(payload.replace(':', ''))))
msgs = []                                 # (frame of first byte, order, label, type, bytes)
for (stream, src), segs in sorted(dirs.items()):
    segs.sort()
    data, owner = bytearray(), []         # owner[i] = frame that carried byte i
    base = segs[0][0]
    for seq, frame, b in segs:
        off = seq - base
        if off > len(data):
            sys.exit(f'gap in stream {stream} from {src} at {len(data)}')
        new = b[len(data) - off:]         # drop retransmitted/overlapping bytes
        data += new; owner += [frame] * len(new)
    label = labels.get(src, src)
    i = 0
    while i < len(data):
        if len(data) - i < 19 or data[i:i + 16] != b'\xff' * 16:
            sys.exit(f'bad BGP framing in stream {stream} from {src} at {i}')
        ln = int.from_bytes(data[i + 16:i + 18], 'big')
        if len(data) - i < ln:
            print(f'# warning: truncated message at end of stream {stream} from {src}', file=sys.stderr)
            break
        msgs.append((owner[i], i, label, TYPES.get(data[i + 18], f'TYPE{data[i + 18]}'), bytes(data[i:i + ln])))
        i += ln
# one block per session (label suffix, e.g. -v4 before -v6), capture order inside it
msgs.sort(key=lambda m: (m[2].rsplit('-', 1)[-1], m[0], m[1]))
seen = collections.Counter(); dropped = collections.Counter(); lines = []
for frame, _, label, typ, b in msgs:
    if typ == 'KEEPALIVE':
        seen[label] += 1
        if seen[label] > cap:
            dropped[label] += 1; continue
    lines.append(f'{label} {typ} {b.hex()}')
counts = collections.Counter(l.split()[0] + ' ' + l.split()[1] for l in lines)
with open(out, 'w') as f:
    f.write(f'# {title}\n')
    f.write('# Generated by integration/golden/capture.sh from the capture next to this file.\n')
    f.write('# Format: <sender-label> <TYPE> <hex of one whole BGP message, marker included>\n')
    f.write('# Grouped by session (-v4 first, then -v6); inside a session in capture order\n# (frame carrying the first byte of the message).\n')
    f.write(f'# KEEPALIVEs capped to the first {cap} per sender; dropped: '
            + (', '.join(f'{k}={v}' for k, v in sorted(dropped.items())) or 'none') + '\n')
    for l in lines:
        f.write(l + '\n')
for k, v in sorted(counts.items()):
    print(f'  {k}: {v}', file=sys.stderr)
PY
}

versions() {
  echo "FRR $(/usr/lib/frr/bgpd --version 2>&1 | awk '/version/{print $3; exit}')," \
       "GoBGP $(gobgpd --version 2>&1 | awk '{print $3; exit}')," \
       "BIRD $(bird --version 2>&1 | awk '/version/{print $3; exit}')"
}

finish() {  # scenario title labels...
  local sc=$1 title=$2; shift 2
  stop_capture
  cp "$RUN/$sc.pcap" "$FIX/$sc.pcap"
  chmod 644 "$FIX/$sc.pcap"
  log "extracting $sc ($(stat -c %s "$FIX/$sc.pcap") bytes of pcap)"
  KEEPALIVE_CAP=$KEEPALIVE_CAP extract "$FIX/$sc.pcap" "$FIX/$sc.hex" "$title; $(versions)" "$@"
  local t
  for t in OPEN UPDATE KEEPALIVE NOTIFICATION ROUTE-REFRESH; do
    grep -q "^[a-z0-9-]* $t " "$FIX/$sc.hex" || { log "FAIL: no $t message in $sc.hex"; exit 1; }
  done
  cleanup
}

# ---------------------------------------------------------------- scenario 1: FRR -> GoBGP

scenario_frr() {
  local A=mgold-frr-a B=mgold-frr-b
  log "scenario frr: FRR AS 4200000001 ($A) -> GoBGP AS 64512 ($B)"
  link 1 "$A" "$B"
  start_capture "$A" mgold1a "$RUN/frr.pcap"
  start_gobgp_receiver 1 "$B" gobgp-frr-b 4200000001
  start_frr "$A" mgold-frr-a <<'EOF'
frr defaults traditional
hostname mgold-frr-a
ip prefix-list AGG4 seq 5 permit 203.0.113.0/24
ipv6 prefix-list AGG6 seq 5 permit 2001:db8:ffff:1::/64
!
route-map OUT4 permit 10
 match ip address prefix-list AGG4
 set community 64512:100 no-export
 set large-community 4200000001:1:2 4200000001:3:4
 set extcommunity rt 64512:100
 set extcommunity bandwidth 100
 set metric 50
 set as-path prepend 4200000011 4200000012
route-map OUT4 permit 20
 set community graceful-shutdown
 set metric 0
!
route-map OUT6 permit 10
 match ipv6 address prefix-list AGG6
 set community 64512:600 no-advertise
 set large-community 4200000001:6:6
 set extcommunity rt 64512:100
 set metric 60
 set as-path prepend 4200000011
route-map OUT6 permit 20
 set community graceful-shutdown
!
router bgp 4200000001
 bgp router-id 198.18.1.1
 no bgp ebgp-requires-policy
 no bgp default ipv4-unicast
 no bgp network import-check
 neighbor 198.18.1.2 remote-as 64512
 neighbor 198.18.1.2 timers 3 9
 neighbor 198.18.1.2 timers connect 2
 neighbor 2001:db8:ffff:ff01::2 remote-as 64512
 neighbor 2001:db8:ffff:ff01::2 timers 3 9
 neighbor 2001:db8:ffff:ff01::2 timers connect 2
 address-family ipv4 unicast
  network 203.0.113.0/24
  network 203.0.113.1/32
  neighbor 198.18.1.2 activate
  neighbor 198.18.1.2 route-map OUT4 out
 exit-address-family
 address-family ipv6 unicast
  network 2001:db8:ffff:1::/64
  network 2001:db8:ffff:1::1/128
  neighbor 2001:db8:ffff:ff01::2 activate
  neighbor 2001:db8:ffff:ff01::2 route-map OUT6 out
 exit-address-family
EOF
  gobgp_wait_routes 1 "$B" FRR 203.0.113.1/32 203.0.113.0/24 2001:db8:ffff:1::/64 2001:db8:ffff:1::1/128
  sleep "$SETTLE"
  log "route refresh: FRR soft in (ipv4 + ipv6)"
  vty mgold-frr-a -c 'clear bgp ipv4 unicast * soft in' -c 'clear bgp ipv6 unicast * soft in'
  sleep 2
  log "withdraw: FRR drops 203.0.113.1/32 and 2001:db8:ffff:1::1/128"
  vty mgold-frr-a -c 'configure terminal' -c 'router bgp 4200000001' \
    -c 'address-family ipv4 unicast' -c 'no network 203.0.113.1/32' -c 'exit-address-family' \
    -c 'address-family ipv6 unicast' -c 'no network 2001:db8:ffff:1::1/128'
  sleep 2
  log "shutdown with message from FRR"
  vty mgold-frr-a -c 'configure terminal' -c 'router bgp 4200000001' \
    -c 'neighbor 198.18.1.2 shutdown message golden capture done (frr v4)' \
    -c 'neighbor 2001:db8:ffff:ff01::2 shutdown message golden capture done (frr v6)'
  sleep 2
  finish frr "frr: FRR AS 4200000001 (198.18.1.1, 2001:db8:ffff:ff01::1) -> GoBGP AS 64512 (198.18.1.2, 2001:db8:ffff:ff01::2)" \
    198.18.1.1=frr-v4 2001:db8:ffff:ff01::1=frr-v6 198.18.1.2=gobgp-v4 2001:db8:ffff:ff01::2=gobgp-v6
}

# ---------------------------------------------------------------- scenario 2: GoBGP -> FRR

scenario_gobgp() {
  local A=mgold-gobgp-a B=mgold-gobgp-b
  log "scenario gobgp: GoBGP AS 4200000002 ($A) -> FRR AS 64512 ($B)"
  link 2 "$A" "$B"
  start_capture "$A" mgold2a "$RUN/gobgp.pcap"
  start_frr "$B" mgold-gobgp-b <<'EOF'
frr defaults traditional
hostname mgold-gobgp-b
router bgp 64512
 bgp router-id 198.18.2.2
 no bgp ebgp-requires-policy
 no bgp default ipv4-unicast
 neighbor 198.18.2.1 remote-as 4200000002
 neighbor 198.18.2.1 passive
 neighbor 198.18.2.1 timers 3 9
 neighbor 2001:db8:ffff:ff02::1 remote-as 4200000002
 neighbor 2001:db8:ffff:ff02::1 passive
 neighbor 2001:db8:ffff:ff02::1 timers 3 9
 address-family ipv4 unicast
  neighbor 198.18.2.1 activate
 exit-address-family
 address-family ipv6 unicast
  neighbor 2001:db8:ffff:ff02::1 activate
 exit-address-family
EOF
  sleep 1
  # sessions start admin-down so that the routes are in the RIB before they come up
  { cat <<EOF
[global.config]
  as = 4200000002
  router-id = "198.18.2.1"
  port = -1
EOF
    gobgp_neighbor 198.18.2.2 64512 ipv4-unicast false true
    gobgp_neighbor 2001:db8:ffff:ff02::2 64512 ipv6-unicast false true
  } >"$RUN/gobgp-gobgp-a.toml"
  start_gobgp "$A" gobgp-gobgp-a <"$RUN/gobgp-gobgp-a.toml"
  gob "$A" global rib -a ipv4 add 203.0.113.64/26 origin egp aspath 4200000021,65001 \
    nexthop 198.18.2.1 med 20 community 64512:200,no-export,65535:0 \
    large-community 4200000002:7:8,4200000002:9:10 aggregator 4200000002:198.18.2.1
  gob "$A" global rib -a ipv4 add 203.0.113.128/25 origin igp nexthop 198.18.2.1 rt 64512:100
  gob "$A" global rib -a ipv6 add 2001:db8:ffff:2::/64 origin igp aspath 4200000022 \
    nexthop 2001:db8:ffff:ff02::1 med 30 community 64512:201,no-peer \
    large-community 4200000002:11:12 rt 64512:100
  gob "$A" global rib -a ipv6 add 2001:db8:ffff:2::2/128 nexthop 2001:db8:ffff:ff02::1
  gob "$A" neighbor 198.18.2.2 enable
  gob "$A" neighbor 2001:db8:ffff:ff02::2 enable
  wait_for 40 "FRR got GoBGP's IPv4 routes" bash -c \
    "vtysh -N mgold-gobgp-b -c 'show bgp ipv4 unicast 203.0.113.64/26' | grep -q 4200000002 &&
     vtysh -N mgold-gobgp-b -c 'show bgp ipv4 unicast 203.0.113.128/25' | grep -q 4200000002"
  wait_for 40 "FRR got GoBGP's IPv6 routes" bash -c \
    "vtysh -N mgold-gobgp-b -c 'show bgp ipv6 unicast 2001:db8:ffff:2::/64' | grep -q 4200000002 &&
     vtysh -N mgold-gobgp-b -c 'show bgp ipv6 unicast 2001:db8:ffff:2::2/128' | grep -q 4200000002"
  vty mgold-gobgp-b -c 'show bgp ipv4 unicast' -c 'show bgp ipv6 unicast' >&2
  sleep "$SETTLE"
  # (gobgp softresetin only re-applies import policy, it sends no ROUTE-REFRESH;
  # the receiver FRR asks GoBGP for a refresh instead, so GoBGP re-sends its UPDATEs)
  log "route refresh: FRR (receiver) soft in (ipv4 + ipv6)"
  vty mgold-gobgp-b -c 'clear bgp ipv4 unicast * soft in' -c 'clear bgp ipv6 unicast * soft in'
  sleep 2
  log "withdraw: GoBGP drops 203.0.113.128/25 and 2001:db8:ffff:2::2/128"
  gob "$A" global rib -a ipv4 del 203.0.113.128/25
  gob "$A" global rib -a ipv6 del 2001:db8:ffff:2::2/128
  sleep 2
  log "shutdown with message from GoBGP"
  gob "$A" neighbor 198.18.2.2 shutdown --reason "golden capture done (gobgp v4)"
  gob "$A" neighbor 2001:db8:ffff:ff02::2 shutdown --reason "golden capture done (gobgp v6)"
  sleep 2
  finish gobgp "gobgp: GoBGP AS 4200000002 (198.18.2.1, 2001:db8:ffff:ff02::1) -> FRR AS 64512 (198.18.2.2, 2001:db8:ffff:ff02::2)" \
    198.18.2.1=gobgp-v4 2001:db8:ffff:ff02::1=gobgp-v6 198.18.2.2=frr-v4 2001:db8:ffff:ff02::2=frr-v6
}

# ---------------------------------------------------------------- scenario 3: BIRD -> GoBGP

scenario_bird() {
  local A=mgold-bird-a B=mgold-bird-b
  log "scenario bird: BIRD AS 4200000003 ($A) -> GoBGP AS 64512 ($B)"
  link 3 "$A" "$B"
  start_capture "$A" mgold3a "$RUN/bird.pcap"
  start_gobgp_receiver 3 "$B" gobgp-bird-b 4200000003
  start_bird "$A" bird-bird-a <<'EOF'
router id 198.18.3.1;
protocol device { scan time 2; }
protocol static s4 {
  ipv4;
  route 203.0.113.96/27 blackhole;
  route 203.0.113.99/32 blackhole;
}
protocol static s6 {
  ipv6;
  route 2001:db8:ffff:3::/64 blackhole;
  route 2001:db8:ffff:3::3/128 blackhole;
}
filter out4 {
  if net = 203.0.113.96/27 then {
    bgp_community.add((64512, 300));
    bgp_community.add((65535, 65281));
    bgp_large_community.add((4200000003, 5, 6));
    bgp_large_community.add((4200000003, 7, 8));
    bgp_ext_community.add((rt, 64512, 100));
    bgp_ext_community.add((rt, 4200000003, 200));
    bgp_ext_community.add((ro, 198.18.3.1, 300));
    bgp_med = 30;
    bgp_path.prepend(4200000033);
    accept;
  }
  bgp_community.add((65535, 0));
  accept;
}
filter out6 {
  if net = 2001:db8:ffff:3::/64 then {
    bgp_community.add((64512, 600));
    bgp_large_community.add((4200000003, 6, 6));
    bgp_ext_community.add((rt, 64512, 100));
    bgp_med = 60;
    bgp_path.prepend(4200000033);
    accept;
  }
  bgp_community.add((65535, 0));
  accept;
}
protocol bgp edge4 {
  local 198.18.3.1 as 4200000003;
  neighbor 198.18.3.2 as 64512;
  hold time 9; keepalive time 3; connect retry time 2;
  ipv4 { import all; export filter out4; };
}
protocol bgp edge6 {
  local 2001:db8:ffff:ff03::1 as 4200000003;
  neighbor 2001:db8:ffff:ff03::2 as 64512;
  hold time 9; keepalive time 3; connect retry time 2;
  ipv6 { import all; export filter out6; };
}
EOF
  local ctl="$RUN/bird-bird-a/bird.ctl"
  gobgp_wait_routes 3 "$B" BIRD 203.0.113.96/27 203.0.113.99/32 2001:db8:ffff:3::/64 2001:db8:ffff:3::3/128
  sleep "$SETTLE"
  log "route refresh: birdc reload in (edge4, edge6)"
  birdc -s "$ctl" reload in edge4 >&2
  birdc -s "$ctl" reload in edge6 >&2
  sleep 2
  log "withdraw: BIRD disables its static protocols (all its routes withdrawn)"
  birdc -s "$ctl" disable s4 >&2
  birdc -s "$ctl" disable s6 >&2
  sleep 2
  log "shutdown with message from BIRD"
  birdc -s "$ctl" disable edge4 '"golden capture done (bird v4)"' >&2
  birdc -s "$ctl" disable edge6 '"golden capture done (bird v6)"' >&2
  sleep 2
  finish bird "bird: BIRD AS 4200000003 (198.18.3.1, 2001:db8:ffff:ff03::1) -> GoBGP AS 64512 (198.18.3.2, 2001:db8:ffff:ff03::2)" \
    198.18.3.1=bird-v4 2001:db8:ffff:ff03::1=bird-v6 198.18.3.2=gobgp-v4 2001:db8:ffff:ff03::2=gobgp-v6
}

# ---------------------------------------------------------------- main

cleanup            # leftovers of an earlier, interrupted run
mkdir -p "$FIX"
SCENARIOS=("$@")
[ ${#SCENARIOS[@]} -gt 0 ] || SCENARIOS=(frr gobgp bird)
for sc in "${SCENARIOS[@]}"; do
  case "$sc" in
    frr|gobgp|bird) "scenario_$sc" ;;
    *) echo "unknown scenario $sc (frr|gobgp|bird)" >&2; exit 2 ;;
  esac
done
log "done: $(cd "$FIX" && echo *)"
