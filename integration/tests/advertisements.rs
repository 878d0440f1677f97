//! Choosing where each VIP is announced, against three FRR routers on one
//! link: two top-of-rack routers (tor-a for rack r1's nodes n1 n2, tor-b
//! for rack r2's n3 n4: `BgpPeer.spec.nodeSelector`) and a core router
//! every node peers with. `BgpAdvertisement`s send the public pool to the
//! racks' routers only (peers by label, with a community) and the private
//! pool to the core only (by name, with a MED). Checked at each router:
//! its FIB has the VIPs it must have via exactly the nodes that must carry
//! them, its BGP table lacks the others, and the attributes are there.

use std::path::Path;
use std::time::Duration;

use mooring_lab::{fib_nexthops, poll, require_lab, Config, Frr, Lab, Neighbor, Node, Proc};
use serde_json::Value;

const ID: u8 = 41;
const PUBLIC: &str = "203.0.113.10";
const LOCAL: &str = "203.0.113.11";
const PRIVATE: &str = "203.0.113.130";

fn manifests(lab: &Lab, nodes: &[Node], routers: &[(&str, &str, &str)]) -> String {
    let mut docs =
        vec!["apiVersion: mooring.io/v1alpha1\nkind: BgpConf\nmetadata: {name: default}\nspec: {as: 64513}\n"
            .to_string()];
    for (name, addr, extra) in routers {
        docs.push(format!(
            "apiVersion: mooring.io/v1alpha1\nkind: BgpPeer\nmetadata: {{name: {name}, labels: {{role: {}}}}}\n\
             spec: {{peerAddress: {addr}, peerAs: 64512, holdTime: 3s, families: [ipv4-unicast]{extra}}}\n",
            if name.starts_with("tor") { "tor" } else { "core" }
        ));
    }
    docs.push(
        "apiVersion: mooring.io/v1alpha1\nkind: Eip\nmetadata: {name: public}\nspec: {address: 203.0.113.0/26}\n"
            .into(),
    );
    docs.push(
        "apiVersion: mooring.io/v1alpha1\nkind: Eip\nmetadata: {name: private}\nspec: {address: 203.0.113.128/26}\n"
            .into(),
    );
    docs.push(
        "apiVersion: mooring.io/v1alpha1\nkind: BgpAdvertisement\nmetadata: {name: public-to-racks}\n\
         spec: {eips: [public], peerSelector: {matchLabels: {role: tor}}, communities: [\"64513:100\"]}\n"
            .into(),
    );
    docs.push(
        "apiVersion: mooring.io/v1alpha1\nkind: BgpAdvertisement\nmetadata: {name: private-to-core}\n\
         spec: {eips: [private], peers: [core], med: 50}\n"
            .into(),
    );
    for (i, n) in nodes.iter().enumerate() {
        let rack = if i < 2 { "r1" } else { "r2" };
        docs.push(format!(
            "apiVersion: v1\nkind: Node\nmetadata: {{name: n{}, labels: {{rack: {rack}}}}}\n\
             status: {{addresses: [{{type: InternalIP, address: {}}}]}}\n",
            i + 1,
            n.v4
        ));
    }
    let svc = |name: &str, pool: &str, ip: &str, policy: &str| {
        format!(
            "apiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: default, annotations: {{mooring.io/eip: {pool}}}}}\n\
             spec: {{type: LoadBalancer, loadBalancerIP: {ip}, externalTrafficPolicy: {policy}, ports: [{{port: 80, protocol: TCP}}]}}\n"
        )
    };
    docs.push(svc("web", "public", PUBLIC, "Cluster"));
    docs.push(svc("api", "public", LOCAL, "Local"));
    docs.push(svc("db", "private", PRIVATE, "Cluster"));
    // api's only ready endpoint is on n3 (rack r2).
    docs.push(
        "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n\
         metadata: {name: api-1, namespace: default, labels: {kubernetes.io/service-name: api}}\n\
         addressType: IPv4\nendpoints:\n- {addresses: [10.1.0.3], nodeName: n3, conditions: {ready: true}}\n"
            .into(),
    );
    let dir = lab.path("manifests");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("all.yaml"), docs.join("---\n")).unwrap();
    dir.to_str().unwrap().to_string()
}

/// An FRR router on the lab's link: AS 64512, the nodes in `nodes` as neighbours.
fn router(lab: &Lab, ns: &str, name: &str, addr: &str, nodes: &[&Node]) -> Frr {
    let mut cfg = Config::new(64512, addr);
    for n in nodes {
        cfg = cfg.neighbor(Neighbor::external(&n.v4).timers(1, 3).connect_retry(1));
    }
    Frr::start_instance(lab, ns, name, &format!("mit{ID}{}", name.replace('-', "")), &cfg)
}

/// The prefixes in a router's BGP table.
fn rib(frr: &Frr) -> Vec<String> {
    let t = frr.table(false);
    let routes = t.get("routes").and_then(Value::as_object).unwrap_or_else(|| panic!("no routes in {t}"));
    routes.keys().cloned().collect()
}

fn start(lab: &Lab, n: &Node, name: &str, config: &str) -> Proc {
    let state = lab.path(&format!("{name}-state"));
    lab.mooring_standalone(&n.ns, name, name, Path::new(config), &["--state-dir", state.to_str().unwrap()])
}

#[test]
fn advertisements_and_rack_local_peers() {
    require_lab!();
    let lab = Lab::new(ID);
    let nodes: Vec<Node> = ["n1", "n2", "n3", "n4"].iter().map(|n| lab.node(n)).collect();
    // tor-a is the lab's router (.1); tor-b (.2) and core (.3) are namespaces on its bridge.
    let tor_b_ns = lab.node_at("tor-b", 2);
    let core_ns = lab.node_at("core", 3);
    let v4 = |i: usize| nodes[i].v4.clone();
    let config = manifests(
        &lab,
        &nodes,
        &[
            ("tor-a", &lab.router_v4, ", nodeSelector: {matchLabels: {rack: r1}}"),
            ("tor-b", &tor_b_ns.v4, ", nodeSelector: {matchLabels: {rack: r2}}"),
            ("core", &core_ns.v4, ""),
        ],
    );
    let tor_a = router(&lab, &lab.router, "tor-a", &lab.router_v4, &[&nodes[0], &nodes[1]]);
    let tor_b = router(&lab, &tor_b_ns.ns, "tor-b", &tor_b_ns.v4, &[&nodes[2], &nodes[3]]);
    let core = router(&lab, &core_ns.ns, "core", &core_ns.v4, &nodes.iter().collect::<Vec<_>>());
    let _procs: Vec<Proc> =
        nodes.iter().enumerate().map(|(i, n)| start(&lab, n, &format!("n{}", i + 1), &config)).collect();

    // Positive signals first: each router has what it must, via exactly the right nodes.
    let wait = Duration::from_secs(30);
    poll("tor-a: the public VIP via rack r1 only", wait, || {
        (fib_nexthops(&lab.router, PUBLIC) == [v4(0), v4(1)]).then_some(())
    });
    poll("tor-b: the public VIP via rack r2 only", wait, || {
        (fib_nexthops(&tor_b_ns.ns, PUBLIC) == [v4(2), v4(3)]).then_some(())
    });
    poll("tor-b: the Local VIP via n3, its only endpoint", wait, || {
        (fib_nexthops(&tor_b_ns.ns, LOCAL) == [v4(2)]).then_some(())
    });
    poll("core: the private VIP via all four nodes", wait, || {
        (fib_nexthops(&core_ns.ns, PRIVATE) == [v4(0), v4(1), v4(2), v4(3)]).then_some(())
    });
    // Every session the routers expect is up (so an absent route is not a session still coming).
    for n in &nodes[..2] {
        tor_a.wait_established(&n.v4, wait);
    }
    for n in &nodes[2..] {
        tor_b.wait_established(&n.v4, wait);
    }
    for n in &nodes {
        core.wait_established(&n.v4, wait);
    }
    // tor-a never peers with rack r2's nodes, nor tor-b with r1's: nodeSelector.
    for (frr, others) in [(&tor_a, &nodes[2..]), (&tor_b, &nodes[..2])] {
        for n in others {
            assert_ne!(frr.neighbor_state(&n.v4), "Established", "{} peers with {}", frr.inst, n.v4);
        }
    }

    // And nothing else: each BGP table holds exactly its VIPs.
    assert_eq!(rib(&tor_a), [format!("{PUBLIC}/32")], "tor-a: the Local VIP has no endpoint in r1; no private VIP");
    assert_eq!(rib(&tor_b), [format!("{PUBLIC}/32"), format!("{LOCAL}/32")], "tor-b: no private VIP");
    assert_eq!(rib(&core), [format!("{PRIVATE}/32")], "core: no public VIP");

    // The advertisements' attributes, as the routers received them.
    for p in tor_b.paths(&format!("{PUBLIC}/32")) {
        let c = p.pointer("/community/string").and_then(Value::as_str).unwrap_or_default();
        assert_eq!(c, "64513:100", "{p}");
    }
    for p in core.paths(&format!("{PRIVATE}/32")) {
        assert_eq!(p.get("metric").and_then(Value::as_u64), Some(50), "{p}");
    }
    println!("tor-a {:?}, tor-b {:?}, core {:?}", rib(&tor_a), rib(&tor_b), rib(&core));
}
