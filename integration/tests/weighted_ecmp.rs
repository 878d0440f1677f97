//! Weighted ECMP: with `mooring.io/weighting: endpoints`, each node sends
//! the link-bandwidth extended community in proportion to its ready local
//! endpoints, and FRR (which honours it for multipath by default) installs
//! next-hop weights 1:3 for nodes with 1 and 3 endpoints; client
//! connections split close to 25/75.

use std::time::{Duration, Instant};

use mooring_lab::{edge_frr, fib_weights, poll, require_lab, run_ok, Lab, Node, Proc};

const ID: u8 = 11;
const VIP: &str = "203.0.113.120";

fn manifests(router: &str, nodes: &[Node], ready: [usize; 2]) -> String {
    let mut eps = vec![];
    for (i, n) in ["n1", "n2"].iter().enumerate() {
        for k in 0..ready[i] {
            eps.push(format!("- {{addresses: [10.1.{i}.{k}], nodeName: {n}, conditions: {{ready: true}}}}"));
        }
    }
    format!(
        "apiVersion: mooring.io/v1alpha1\nkind: BgpConf\nmetadata: {{name: default}}\nspec: {{as: 64513}}\n---\n\
         apiVersion: mooring.io/v1alpha1\nkind: BgpPeer\nmetadata: {{name: edge}}\nspec: {{peerAddress: {router}, peerAs: 64512, holdTime: 3s, families: [ipv4-unicast]}}\n---\n\
         apiVersion: mooring.io/v1alpha1\nkind: Eip\nmetadata: {{name: pool}}\nspec: {{address: {VIP}/32}}\n---\n\
         apiVersion: v1\nkind: Node\nmetadata: {{name: n1}}\nstatus: {{addresses: [{{type: InternalIP, address: {}}}]}}\n---\n\
         apiVersion: v1\nkind: Node\nmetadata: {{name: n2}}\nstatus: {{addresses: [{{type: InternalIP, address: {}}}]}}\n---\n\
         apiVersion: v1\nkind: Service\nmetadata: {{name: web, namespace: default, annotations: {{mooring.io/weighting: endpoints}}}}\n\
         spec: {{type: LoadBalancer, externalTrafficPolicy: Local, ports: [{{port: 8080, protocol: TCP}}]}}\n---\n\
         apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n\
         metadata: {{name: web-1, namespace: default, labels: {{kubernetes.io/service-name: web}}}}\naddressType: IPv4\nendpoints:\n{}\n",
        nodes[0].v4,
        nodes[1].v4,
        eps.join("\n")
    )
}

fn write(dir: &std::path::Path, text: &str) {
    let tmp = dir.join(".all.yaml.tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, dir.join("all.yaml")).unwrap();
}

#[test]
fn weighted_ecmp_follows_ready_endpoints() {
    require_lab!();
    let lab = Lab::new(ID);
    let nodes: Vec<Node> = ["n1", "n2"].iter().map(|n| lab.node(n)).collect();
    let client = lab.client();
    let _frr = edge_frr(&lab, &[], None);
    let config = lab.path("manifests");
    std::fs::create_dir_all(&config).unwrap();
    write(&config, &manifests(&lab.router_v4, &nodes, [1, 3]));
    let _procs: Vec<Proc> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| {
            run_ok(&["ip", "-n", &n.ns, "addr", "add", &format!("{VIP}/32"), "dev", "lo"]);
            lab.responder(&n.ns, VIP, 8080, &format!("n{}", i + 1));
            let name = format!("n{}", i + 1);
            lab.mooring_standalone(&n.ns, &name, &name, &config, &[])
        })
        .collect();
    let ratio = |w: &[(String, u32)]| w[1].1 as f64 / w[0].1 as f64;
    let t0 = Instant::now();
    let w = poll("weighted multipath route 1:3", Duration::from_secs(20), || {
        let w = fib_weights(&lab.router, VIP);
        (w.len() == 2 && (ratio(&w) - 3.0).abs() < 0.15).then_some(w)
    });
    println!("edge FIB after {:?}: {w:?}", t0.elapsed());

    // 400 connections: n1's share is binomial(400, 0.25): sd = 2.2 %; allow 4 sd.
    let script = format!(
        "import socket, collections\nc = collections.Counter()\nfor _ in range(400):\n    s = socket.create_connection(('{VIP}', 8080), timeout=2)\n    c[s.recv(64).decode().strip()] += 1\n    s.close()\nprint(c['n1'], c['n2'])\n"
    );
    let out = run_ok(&["ip", "netns", "exec", &client.ns, "python3", "-c", &script]);
    let counts: Vec<f64> = out.split_whitespace().map(|x| x.parse().unwrap()).collect();
    let share = counts[0] / (counts[0] + counts[1]);
    println!("400 connections: n1 {} n2 {} (n1 share {:.1} %, expected 25 %)", counts[0], counts[1], share * 100.0);
    let sd = (0.25f64 * 0.75 / 400.0).sqrt();
    assert!((share - 0.25).abs() < 4.0 * sd, "n1 share {share:.3} is not 0.25 ± {:.3}", 4.0 * sd);

    // Endpoints move (n1: 2, n2: 2): the weights follow.
    write(&config, &manifests(&lab.router_v4, &nodes, [2, 2]));
    let t = Instant::now();
    poll("weights 1:1", Duration::from_secs(10), || {
        let w = fib_weights(&lab.router, VIP);
        (w.len() == 2 && (ratio(&w) - 1.0).abs() < 0.1).then_some(())
    });
    println!("weights rebalanced 1:1 after {:?}", t.elapsed());
}
