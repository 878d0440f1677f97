//! `mooring standalone` on three nodes from one manifest set, against an
//! FRR edge: VIPs assigned from the pool (the same on every node), the
//! Local VIP announced only from nodes with ready endpoints, the Cluster
//! VIP from all, and manifest changes (an endpoint moves, a Service is
//! deleted, a broken document) reflected at the router within
//! [`CHANGE_WINDOW`], and a broken document changing nothing there.

use std::path::Path;
use std::time::{Duration, Instant};

use mooring_lab::{edge_frr, fib_nexthops, poll, require_lab, Lab, Node, Proc, RouteMonitor};

const ID: u8 = 10;
const CLUSTER_VIP: &str = "203.0.113.100";
const LOCAL_VIP: &str = "203.0.113.101";
/// How long a manifest change may take to reach the router's FIB.
/// Measured here (three agents, the suite's other labs running): 75–156 ms
/// over 8 changes; the latency benchmark's rename → FRR FIB: p50 68 ms, max
/// 80 ms of 30. 3 s is 20 times the slowest, for a loaded 2-core machine.
const CHANGE_WINDOW: Duration = Duration::from_secs(3);

fn bgp_yaml(router: &str) -> String {
    format!(
        "apiVersion: mooring.io/v1alpha1
kind: BgpConf
metadata: {{name: default}}
spec: {{as: 64513}}
---
apiVersion: mooring.io/v1alpha1
kind: BgpPeer
metadata: {{name: edge}}
spec: {{peerAddress: {router}, peerAs: 64512, holdTime: 3s, families: [ipv4-unicast]}}
---
apiVersion: mooring.io/v1alpha1
kind: Eip
metadata: {{name: pool}}
spec: {{address: 203.0.113.100-203.0.113.110}}
"
    )
}

fn nodes_yaml(nodes: &[Node]) -> String {
    nodes
        .iter()
        .enumerate()
        .map(|(i, n)| {
            format!(
                "apiVersion: v1\nkind: Node\nmetadata: {{name: n{}}}\nstatus: {{addresses: [{{type: InternalIP, address: {}}}]}}\n",
                i + 1,
                n.v4
            )
        })
        .collect::<Vec<_>>()
        .join("---\n")
}

fn service(name: &str, policy: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: default}}\n\
         spec: {{type: LoadBalancer, externalTrafficPolicy: {policy}, ports: [{{port: 8080, protocol: TCP}}]}}\n"
    )
}

/// web-local's EndpointSlice with endpoints on `ready` nodes (ready) and the others (not ready).
fn slice(ready: &[&str]) -> String {
    let eps: Vec<String> = ["n1", "n2", "n3"]
        .iter()
        .map(|n| format!("- {{addresses: [10.1.0.1], nodeName: {n}, conditions: {{ready: {}}}}}", ready.contains(n)))
        .collect();
    format!(
        "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n\
         metadata: {{name: web-local-1, namespace: default, labels: {{kubernetes.io/service-name: web-local}}}}\n\
         addressType: IPv4\nendpoints:\n{}\n",
        eps.join("\n")
    )
}

/// Write atomically (rename), as editors and config management do.
fn write(dir: &Path, name: &str, text: &str) {
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, dir.join(name)).unwrap();
}

fn start(lab: &Lab, n: &Node, name: &str, config: &Path) -> Proc {
    let state = lab.path(&format!("{name}-state"));
    lab.mooring_standalone(&n.ns, name, name, config, &["--state-dir", state.to_str().unwrap()])
}

#[test]
fn standalone_three_nodes() {
    require_lab!();
    let lab = Lab::new(ID);
    // Every change of the router's FIB, from before FRR starts.
    let mut mon = RouteMonitor::start(&lab, &lab.router);
    let nodes: Vec<Node> = ["n1", "n2", "n3"].iter().map(|n| lab.node(n)).collect();
    let frr = edge_frr(&lab, &[], None);
    let config = lab.path("manifests");
    std::fs::create_dir_all(&config).unwrap();
    write(&config, "bgp.yaml", &bgp_yaml(&lab.router_v4));
    write(&config, "nodes.yaml", &nodes_yaml(&nodes));
    write(&config, "services.yaml", &(service("web-cluster", "Cluster") + "---\n" + &service("web-local", "Local")));
    write(&config, "slices.yaml", &slice(&["n1", "n2"]));
    let mut procs: Vec<Proc> =
        nodes.iter().enumerate().map(|(i, n)| start(&lab, n, &format!("n{}", i + 1), &config)).collect();
    let v4 = |i: usize| nodes[i].v4.clone();

    // Cluster VIP from every node, Local VIP from the nodes with ready endpoints.
    let t0 = Instant::now();
    poll("Cluster VIP via all three nodes", Duration::from_secs(20), || {
        (fib_nexthops(&lab.router, CLUSTER_VIP) == vec![v4(0), v4(1), v4(2)]).then_some(())
    });
    poll("Local VIP via n1 and n2", Duration::from_secs(5), || {
        (fib_nexthops(&lab.router, LOCAL_VIP) == vec![v4(0), v4(1)]).then_some(())
    });
    println!("both VIPs in the edge FIB after {:?}", t0.elapsed());
    // Every node computed the same assignment.
    for p in &procs {
        let assigned = p.lines_with("assigned");
        assert!(
            assigned.iter().any(
                |l| l.contains(&format!("assigned {CLUSTER_VIP} (pool pool)")) && l.contains("default/web-cluster")
            ),
            "{assigned:?}"
        );
        assert!(
            assigned
                .iter()
                .any(|l| l.contains(&format!("assigned {LOCAL_VIP} (pool pool)")) && l.contains("default/web-local")),
            "{assigned:?}"
        );
    }

    // An endpoint moves: n1 not ready, n3 ready.
    let t = Instant::now();
    write(&config, "slices.yaml", &slice(&["n2", "n3"]));
    poll("Local VIP moves to n2 and n3", CHANGE_WINDOW, || {
        (fib_nexthops(&lab.router, LOCAL_VIP) == vec![v4(1), v4(2)]).then_some(())
    });
    println!("endpoint move reflected in the edge FIB after {:?}", t.elapsed());

    // A broken document: reported by file, document and field; the last
    // good config stays. Nothing may change at the router until the next
    // valid change shows up there: the file goes, the Local Service is
    // deleted, and the first FIB changes must be its VIP's withdrawal.
    mon.skip();
    write(
        &config,
        "broken.yaml",
        "apiVersion: mooring.io/v1alpha1\nkind: BgpPeer\nmetadata: {name: edge}\nspec: {peerAddress: 198.18.10.1, peerAs: lots}\n---\n: : :\n",
    );
    procs[0].wait_line("broken.yaml document 0 (BgpPeer edge) field spec.peerAs", Duration::from_secs(3));
    std::fs::remove_file(config.join("broken.yaml")).unwrap();
    let t = Instant::now();
    write(&config, "services.yaml", &service("web-cluster", "Cluster"));
    let seen = mon
        .until(&lab, CHANGE_WINDOW, |e| e.is_for(LOCAL_VIP) && e.deleted)
        .unwrap_or_else(|| panic!("the Local VIP was not withdrawn within {CHANGE_WINDOW:?}"));
    println!("Service deletion reflected in the edge FIB after {:?}", t.elapsed());
    assert!(seen.iter().all(|e| e.is_for(LOCAL_VIP)), "FIB changes besides the Local VIP's withdrawal: {seen:?}");
    assert_eq!(fib_nexthops(&lab.router, CLUSTER_VIP), vec![v4(0), v4(1), v4(2)], "routes unaffected");
    for n in &nodes {
        // The router's view: each node's session came up once and never went down.
        let nb = frr.neighbor(&n.v4).unwrap_or_else(|| panic!("FRR has no session with {}", n.v4));
        assert_eq!(nb["bgpState"], "Established", "{}", n.v4);
        assert_eq!((&nb["connectionsEstablished"], &nb["connectionsDropped"]), (&1.into(), &0.into()), "{}", n.v4);
    }

    // Sticky across a restart: n1 stops, a Service that sorts first appears, n1 comes back.
    procs[0].signal(libc::SIGTERM);
    assert!(lab.wait_exit(&procs[0], Duration::from_secs(5)));
    write(
        &config,
        "services.yaml",
        &(service("aaa", "Cluster")
            + "---\n"
            + &service("web-cluster", "Cluster")
            + "---\n"
            + &service("web-local", "Local")),
    );
    procs[0] = start(&lab, &nodes[0], "n1", &config);
    procs[0].wait_line("service=default/aaa", Duration::from_secs(10));
    procs[0].wait_line("Established", Duration::from_secs(10));
    poll("n1 back in the Cluster VIP's next hops", Duration::from_secs(20), || {
        (fib_nexthops(&lab.router, CLUSTER_VIP) == vec![v4(0), v4(1), v4(2)]).then_some(())
    });
    let second_run: Vec<String> =
        procs[0].lines_with("assigned").into_iter().filter(|l| l.contains("default/aaa")).collect();
    assert!(!second_run.is_empty() && second_run.iter().all(|l| !l.contains(CLUSTER_VIP)), "{second_run:?}");
    println!("after restart: {second_run:?}");
}
