//! Two "clusters" of two nodes each (two manifest sets, AS 64513 and
//! 64514) announce the same VIP to one FRR edge: equal (ECMP over all four
//! nodes), weighted (link bandwidth by ready endpoints, across clusters),
//! primary/backup (the backup cluster prepends its AS by Service
//! annotation), then failover when the primary cluster stops.

use std::time::{Duration, Instant};

use mooring_lab::{edge_frr, fib_nexthops, fib_weights, poll, require_lab, Lab, Node, Proc};

const ID: u8 = 12;
const VIP: &str = "203.0.113.130";

/// `weights`: ready endpoints on the cluster's two nodes (Local policy,
/// weighted ECMP); `None`: Cluster policy, unweighted.
fn manifests(asn: u32, router: &str, nodes: &[&Node], prepend: u8, weights: Option<[usize; 2]>) -> String {
    let node_docs: Vec<String> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| format!("apiVersion: v1\nkind: Node\nmetadata: {{name: n{i}}}\nstatus: {{addresses: [{{type: InternalIP, address: {}}}]}}\n", n.v4))
        .collect();
    format!(
        "apiVersion: mooring.io/v1alpha1\nkind: BgpConf\nmetadata: {{name: default}}\nspec: {{as: {asn}}}\n---\n\
         apiVersion: mooring.io/v1alpha1\nkind: BgpPeer\nmetadata: {{name: edge}}\nspec: {{peerAddress: {router}, peerAs: 64512, holdTime: 3s, families: [ipv4-unicast]}}\n---\n\
         apiVersion: mooring.io/v1alpha1\nkind: Eip\nmetadata: {{name: vip}}\nspec: {{address: {VIP}/32}}\n---\n\
         apiVersion: v1\nkind: Service\nmetadata: {{name: web, namespace: default, annotations: {{mooring.io/as-path-prepend: \"{prepend}\", mooring.io/weighting: {w}}}}}\n\
         spec: {{type: LoadBalancer, externalTrafficPolicy: {policy}, ports: [{{port: 80, protocol: TCP}}]}}\n---\n{}{slice}",
        node_docs.join("---\n"),
        w = if weights.is_some() { "endpoints" } else { "none" },
        policy = if weights.is_some() { "Local" } else { "Cluster" },
        slice = weights.map(slice).unwrap_or_default(),
    )
}

fn slice(w: [usize; 2]) -> String {
    let eps: Vec<String> = (0..2)
        .flat_map(|i| {
            (0..w[i])
                .map(move |k| format!("- {{addresses: [10.1.{i}.{k}], nodeName: n{i}, conditions: {{ready: true}}}}"))
        })
        .collect();
    format!(
        "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n\
         metadata: {{name: web-1, namespace: default, labels: {{kubernetes.io/service-name: web}}}}\naddressType: IPv4\nendpoints:\n{}\n",
        eps.join("\n")
    )
}

fn write(dir: &std::path::Path, text: &str) {
    std::fs::create_dir_all(dir).unwrap();
    let tmp = dir.join(".all.yaml.tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, dir.join("all.yaml")).unwrap();
}

#[test]
fn equal_then_primary_backup_then_failover() {
    require_lab!();
    let lab = Lab::new(ID);
    let nodes: Vec<Node> = ["a0", "a1", "b0", "b1"].iter().map(|n| lab.node(n)).collect();
    let _frr = edge_frr(&lab, &[], None);
    let (dir_a, dir_b) = (lab.path("cluster-a"), lab.path("cluster-b"));
    let (a, b) = ([&nodes[0], &nodes[1]], [&nodes[2], &nodes[3]]);
    write(&dir_a, &manifests(64513, &lab.router_v4, &a, 0, None));
    write(&dir_b, &manifests(64514, &lab.router_v4, &b, 0, None));
    let start = |n: &Node, name: &str, dir: &std::path::Path| -> Proc {
        lab.mooring_standalone(&n.ns, &format!("{}-{name}", n.ns), name, dir, &[])
    };
    let pa = [start(&nodes[0], "n0", &dir_a), start(&nodes[1], "n1", &dir_a)];
    let _pb = [start(&nodes[2], "n0", &dir_b), start(&nodes[3], "n1", &dir_b)];
    let all: Vec<String> = nodes.iter().map(|n| n.v4.clone()).collect();
    let only = |ns: [&Node; 2]| -> Vec<String> { ns.iter().map(|n| n.v4.clone()).collect() };

    // Equal: ECMP over both clusters' nodes.
    let t = Instant::now();
    poll("ECMP over four nodes", Duration::from_secs(20), || (fib_nexthops(&lab.router, VIP) == all).then_some(()));
    println!("equal: four next hops after {:?}", t.elapsed());

    // Weighted across clusters: endpoints 1, 1 (A) and 1, 3 (B): weights 1:1:1:3.
    write(&dir_a, &manifests(64513, &lab.router_v4, &a, 0, Some([1, 1])));
    write(&dir_b, &manifests(64514, &lab.router_v4, &b, 0, Some([1, 3])));
    let t = Instant::now();
    let w = poll("weights 1:1:1:3", Duration::from_secs(10), || {
        let w = fib_weights(&lab.router, VIP);
        let ok = w.len() == 4 && {
            let base = w[0].1 as f64;
            let r: Vec<f64> = w.iter().map(|(_, x)| *x as f64 / base).collect();
            (r[1] - 1.0).abs() < 0.15 && (r[2] - 1.0).abs() < 0.15 && (r[3] - 3.0).abs() < 0.3
        };
        ok.then_some(w)
    });
    println!("weighted across clusters after {:?}: {w:?}", t.elapsed());

    // Primary/backup: cluster B prepends twice; only A's nodes carry traffic.
    write(&dir_a, &manifests(64513, &lab.router_v4, &a, 0, None));
    write(&dir_b, &manifests(64514, &lab.router_v4, &b, 2, None));
    let t = Instant::now();
    poll("primary only", Duration::from_secs(5), || (fib_nexthops(&lab.router, VIP) == only(a)).then_some(()));
    println!("primary/backup: primary's two next hops after {:?}", t.elapsed());

    // The primary cluster stops: traffic fails over to the backup.
    let t = Instant::now();
    for p in &pa {
        p.signal(libc::SIGTERM);
    }
    poll("failover to the backup", Duration::from_secs(10), || {
        (fib_nexthops(&lab.router, VIP) == only(b)).then_some(())
    });
    println!("failover to the backup cluster after {:?}", t.elapsed());
}
