//! Three nodes announce the same VIP with next-hop self to one FRR edge;
//! the edge's kernel FIB gets one route with three next hops and client
//! connections (L4 hash, fib_multipath_hash_policy=1) reach all three.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use mooring_lab::{edge_frr, fib_nexthops, poll, require_lab, run_ok, Config, Lab, Mooring, Neighbor};

const ID: u8 = 4;
const VIP: &str = "203.0.113.40";

#[test]
fn ecmp_three_speakers() {
    require_lab!();
    let lab = Lab::new(ID);
    let nodes: Vec<_> = ["n1", "n2", "n3"].iter().map(|n| lab.node(n)).collect();
    let client = lab.client();
    let frr = edge_frr(&lab, &[], None);
    let t0 = Instant::now();
    let mut speakers = vec![];
    for (i, n) in nodes.iter().enumerate() {
        run_ok(&["ip", "-n", &n.ns, "addr", "add", &format!("{VIP}/32"), "dev", "lo"]);
        lab.responder(&n.ns, VIP, 8080, &format!("n{}", i + 1));
        let cfg = Config::new(64513, &n.v4)
            .neighbor(Neighbor::new(&lab.router_v4, 64512).hold(3).connect_retry(1))
            .prefixes([format!("{VIP}/32")]);
        speakers.push(Mooring::start(&lab, &n.ns, &format!("mooring-n{}", i + 1), &cfg));
    }
    let want: Vec<String> = nodes.iter().map(|n| n.v4.clone()).collect();
    poll("edge FIB: VIP with three next hops", Duration::from_secs(20), || {
        (fib_nexthops(&lab.router, VIP) == want).then_some(())
    });
    let fib = run_ok(&["ip", "-n", &lab.router, "route", "show", VIP]);
    println!("edge FIB after {:?}:\n{fib}", t0.elapsed());
    let route_lines = fib.lines().filter(|l| l.starts_with(VIP)).count();
    assert_eq!(route_lines, 1, "one (multipath) route");
    assert_eq!(fib.matches("nexthop via").count(), 3, "three `nexthop via`");
    assert!(fib.contains("proto bgp"), "installed by BGP");
    let paths = frr.paths(&format!("{VIP}/32"));
    assert_eq!(paths.len(), 3, "FRR has three paths");
    let multipath = paths.iter().filter(|p| p["multipath"] == true || p["bestpath"]["overall"] == true).count();
    assert_eq!(multipath, 3, "all three are best or multipath");

    let script = format!(
        "import socket, collections, json
c = collections.Counter()
for _ in range(300):
    s = socket.create_connection(('{VIP}', 8080), timeout=2)
    c[s.recv(64).decode().strip()] += 1
    s.close()
print(json.dumps(c))"
    );
    let out = run_ok(&["ip", "netns", "exec", &client.ns, "python3", "-c", &script]);
    let split: BTreeMap<String, u64> = serde_json::from_str(out.trim()).expect("client output");
    println!("300 connections from {}: {split:?}", client.v4);
    assert_eq!(split.values().sum::<u64>(), 300);
    for n in ["n1", "n2", "n3"] {
        assert!(split.get(n).copied().unwrap_or(0) > 0, "no connection reached {n}: {split:?}");
    }
    drop(speakers);
}
