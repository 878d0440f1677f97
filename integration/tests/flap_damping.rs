//! Flap damping against an FRR edge: three `mooring standalone` nodes serve
//! a Local Service; n1's endpoint flaps ready / not ready. Each withdrawal
//! leaves the router's FIB at once; the first return is immediate; after
//! the second flap n1's path stays out while its endpoint is ready, for the
//! hold-down the penalty gives, and then comes back. Through all of it the
//! router's FIB never loses the other nodes' next hops and never re-adds n1
//! during the suppression — each add or remove of n1 would rehash the flows
//! through n2 and n3.

use std::path::Path;
use std::time::{Duration, Instant};

use mooring_lab::{edge_frr, fib_nexthops, poll, require_lab, run, Lab, Node, Proc, RouteMonitor};

const ID: u8 = 52;
const LOCAL_VIP: &str = "203.0.113.101";
const ADMIN: &str = "127.0.0.1:9473";
/// Short timings for the lab: a penalty half-life of 10 s (two flaps a
/// second apart: penalty ≈ 1900, below the reuse threshold 750 about 13 s
/// later) and 3 s of stability.
const FLAGS: &[&str] = &["--flap-half-life-seconds", "10", "--flap-stable-seconds", "3"];
/// A withdrawal or an immediate return must reach the FIB within this
/// (standalone.rs measured 75–156 ms for a manifest change).
const CHANGE_WINDOW: Duration = Duration::from_secs(3);

fn manifests(router: &str, nodes: &[Node]) -> String {
    let mut docs = vec![format!(
        "apiVersion: mooring.io/v1alpha1\nkind: BgpConf\nmetadata: {{name: default}}\nspec: {{as: 64513}}\n---\n\
         apiVersion: mooring.io/v1alpha1\nkind: BgpPeer\nmetadata: {{name: edge}}\n\
         spec: {{peerAddress: {router}, peerAs: 64512, holdTime: 3s, families: [ipv4-unicast]}}\n---\n\
         apiVersion: mooring.io/v1alpha1\nkind: Eip\nmetadata: {{name: pool}}\nspec: {{address: 203.0.113.101-203.0.113.102}}\n---\n\
         apiVersion: v1\nkind: Service\nmetadata: {{name: web-local, namespace: default}}\n\
         spec: {{type: LoadBalancer, externalTrafficPolicy: Local, ports: [{{port: 8080, protocol: TCP}}]}}\n"
    )];
    for (i, n) in nodes.iter().enumerate() {
        docs.push(format!(
            "apiVersion: v1\nkind: Node\nmetadata: {{name: n{}}}\nstatus: {{addresses: [{{type: InternalIP, address: {}}}]}}\n",
            i + 1,
            n.v4
        ));
    }
    docs.join("---\n")
}

/// web-local's EndpointSlice: an endpoint on each node, ready on n2, n3 and (when `n1`) n1.
fn slice(n1: bool) -> String {
    let eps: Vec<String> = [("n1", n1), ("n2", true), ("n3", true)]
        .iter()
        .map(|(n, r)| format!("- {{addresses: [10.1.0.1], nodeName: {n}, conditions: {{ready: {r}}}}}"))
        .collect();
    format!(
        "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n\
         metadata: {{name: web-local-1, namespace: default, labels: {{kubernetes.io/service-name: web-local}}}}\n\
         addressType: IPv4\nendpoints:\n{}\n",
        eps.join("\n")
    )
}

fn write(dir: &Path, name: &str, text: &str) {
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, dir.join(name)).unwrap();
}

/// One metric of n1's admin server (fails the test when it cannot be read).
fn metric(ns: &str, name: &str) -> i64 {
    let (ok, out, err) = run(&["ip", "netns", "exec", ns, "curl", "-sf", &format!("http://{ADMIN}/metrics")]);
    assert!(ok, "reading n1's metrics: {err}");
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in n1's metrics:\n{out}"))
}

#[test]
fn a_flapping_node_stays_out_after_the_second_flap() {
    require_lab!();
    let lab = Lab::new(ID);
    let mut mon = RouteMonitor::start(&lab, &lab.router);
    let nodes: Vec<Node> = ["n1", "n2", "n3"].iter().map(|n| lab.node(n)).collect();
    let _frr = edge_frr(&lab, &[], None);
    let config = lab.path("manifests");
    std::fs::create_dir_all(&config).unwrap();
    write(&config, "lab.yaml", &manifests(&lab.router_v4, &nodes));
    write(&config, "slices.yaml", &slice(true));
    let procs: Vec<Proc> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let name = format!("n{}", i + 1);
            let mut args = FLAGS.to_vec();
            if i == 0 {
                args.extend(["--metrics-addr", ADMIN]);
            }
            lab.mooring_standalone(&n.ns, &name, &name, &config, &args)
        })
        .collect();
    let v4 = |i: usize| nodes[i].v4.clone();
    let all = vec![v4(0), v4(1), v4(2)];
    let others = vec![v4(1), v4(2)];
    let fib = || fib_nexthops(&lab.router, LOCAL_VIP);
    poll("the Local VIP via all three nodes", Duration::from_secs(20), || (fib() == all).then_some(()));
    mon.skip();

    // First flap: out at once, back at once.
    let t = Instant::now();
    write(&config, "slices.yaml", &slice(false));
    poll("n1 withdrawn (first flap)", CHANGE_WINDOW, || (fib() == others).then_some(()));
    println!("first withdrawal in the FIB after {:?}", t.elapsed());
    let t = Instant::now();
    write(&config, "slices.yaml", &slice(true));
    poll("n1 back at once after one flap", CHANGE_WINDOW, || (fib() == all).then_some(()));
    println!("first return in the FIB after {:?}", t.elapsed());

    // Second flap: out at once, then held back while ready.
    let t = Instant::now();
    write(&config, "slices.yaml", &slice(false));
    poll("n1 withdrawn (second flap)", CHANGE_WINDOW, || (fib() == others).then_some(()));
    let withdrawn = Instant::now();
    println!("second withdrawal in the FIB after {:?}", t.elapsed());
    procs[0].wait_line("suppressed after 2 flaps", CHANGE_WINDOW);
    assert_eq!(metric(&nodes[0].ns, "mooring_path_suppressions_total"), 1);
    write(&config, "slices.yaml", &slice(true));
    // The positive signal that n1 has taken the ready endpoint and holds its path back.
    poll("n1 holds its path back", CHANGE_WINDOW, || {
        (metric(&nodes[0].ns, "mooring_paths_suppressed") == 1).then_some(())
    });
    let held = Instant::now();
    assert_eq!(fib(), others, "n1 re-added while suppressed");
    // It comes back on its own, once the penalty has decayed and it has been stable.
    procs[0].wait_line("announced again", Duration::from_secs(40));
    let reused = Instant::now();
    poll("n1 back after the hold-down", CHANGE_WINDOW, || (fib() == all).then_some(()));
    let hold = reused - withdrawn;
    println!("n1 held back for {hold:?} after the second withdrawal ({:?} while ready)", reused - held);
    assert!(hold >= Duration::from_secs(8), "held back only {hold:?} (penalty ≈ 1900, half-life 10 s: ~13 s)");
    assert_eq!(metric(&nodes[0].ns, "mooring_paths_suppressed"), 0);

    // The router's FIB over the whole run: the other nodes never left, and
    // n1 was added only twice (after the first flap, after the hold-down).
    let events: Vec<_> = mon.drain().into_iter().filter(|e| e.is_for(LOCAL_VIP)).collect();
    println!("FIB changes of the Local VIP: {events:#?}");
    assert!(events.iter().all(|e| !e.deleted), "the VIP left the FIB: {events:?}");
    assert!(
        events.iter().all(|e| e.vias.contains(&v4(1)) && e.vias.contains(&v4(2))),
        "a change without n2 or n3: {events:?}"
    );
    let n1_states: Vec<bool> = events.iter().map(|e| e.vias.contains(&v4(0))).collect();
    let mut transitions = n1_states.clone();
    transitions.dedup();
    assert_eq!(transitions, [false, true, false, true], "n1 out, in, out, in: {events:?}");
}
