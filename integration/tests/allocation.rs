//! The allocation the "Why" got wrong, against FRR: one Eip of two addresses, a
//! Cluster Service `web` asking for the first with `spec.loadBalancerIP`, a Local Service
//! `api` asking for nothing (and sorting first), three `mooring standalone` nodes. `web` gets
//! .10 from all three nodes, `api` .11 from the two with its endpoints, on every node alike.

use std::path::Path;
use std::time::Duration;

use mooring_lab::{edge_frr, fib_nexthops, poll, require_lab, Lab, Node, Proc};

const ID: u8 = 16;
const WEB: &str = "203.0.113.10";
const API: &str = "203.0.113.11";

fn manifests(router: &str, nodes: &[Node]) -> String {
    let mut m = format!(
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
metadata: {{name: eip}}
spec: {{address: {WEB}-{API}}}
---
apiVersion: v1
kind: Service
metadata: {{name: web, namespace: default}}
spec: {{type: LoadBalancer, externalTrafficPolicy: Cluster, loadBalancerIP: {WEB}, ports: [{{port: 80, protocol: TCP}}]}}
---
apiVersion: v1
kind: Service
metadata: {{name: api, namespace: default}}
spec: {{type: LoadBalancer, externalTrafficPolicy: Local, selector: {{app: api}}, ports: [{{port: 80, protocol: TCP}}]}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {{name: api-1, namespace: default, labels: {{kubernetes.io/service-name: api}}}}
addressType: IPv4
endpoints:
- {{addresses: [10.1.0.1], nodeName: n1, conditions: {{ready: true}}}}
- {{addresses: [10.1.0.2], nodeName: n2, conditions: {{ready: true}}}}
"
    );
    for (i, n) in nodes.iter().enumerate() {
        m.push_str(&format!(
            "---\napiVersion: v1\nkind: Node\nmetadata: {{name: n{}}}\nstatus: {{addresses: [{{type: InternalIP, address: {}}}]}}\n",
            i + 1,
            n.v4
        ));
    }
    m
}

fn start(lab: &Lab, n: &Node, name: &str, config: &Path) -> Proc {
    let state = lab.path(&format!("{name}-state"));
    lab.mooring_standalone(&n.ns, name, name, config, &["--state-dir", state.to_str().unwrap()])
}

#[test]
fn the_service_that_asks_for_an_address_gets_it_at_the_router() {
    require_lab!();
    let lab = Lab::new(ID);
    let nodes: Vec<Node> = ["n1", "n2", "n3"].iter().map(|n| lab.node(n)).collect();
    let _frr = edge_frr(&lab, &[], None);
    let config = lab.path("manifests");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(config.join("all.yaml"), manifests(&lab.router_v4, &nodes)).unwrap();
    let procs: Vec<Proc> =
        nodes.iter().enumerate().map(|(i, n)| start(&lab, n, &format!("n{}", i + 1), &config)).collect();
    let v4: Vec<String> = nodes.iter().map(|n| n.v4.clone()).collect();

    poll("web's .10 via all three nodes", Duration::from_secs(20), || {
        (fib_nexthops(&lab.router, WEB) == v4).then_some(())
    });
    poll("api's .11 via n1 and n2", Duration::from_secs(5), || {
        (fib_nexthops(&lab.router, API) == v4[..2]).then_some(())
    });
    for p in &procs {
        let assigned = p.lines_with("assigned");
        let has = |svc: &str, ip: &str| {
            assigned.iter().any(|l| l.contains(svc) && l.contains(&format!("assigned {ip} (pool eip)")))
        };
        assert!(has("default/web", WEB) && has("default/api", API), "{assigned:?}");
        assert!(p.lines_with("AddressInUse").is_empty(), "nobody was refused: {:?}", p.lines_with("AddressInUse"));
    }
}
